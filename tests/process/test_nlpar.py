"""Non-local pattern averaging (NLPAR): the equations, and what it must do to noisy maps.

The maps are kinematical Ni patterns (40 x 40) of one or two orientations,
scaled to a mean of 30 counts per pixel and drawn with Poisson noise, so the
noise-free pattern of every point is known.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from kikuchi.process import (
    ProcessingSettings,
    average_neighbours,
    nlpar,
    nlpar_lambda,
    nlpar_sigma,
    nlpar_weights,
    process_patterns,
    rescale_to_uint,
)
from kikuchi.process.nlpar import LAMBDA_TARGETS, choose_lambda, neighbour_distances_block

COUNTS = 30.0


@pytest.fixture(scope="module")
def clean():
    """Two noise-free Ni patterns of unrelated orientations (correlation about 0.02), mean 30 counts."""
    from kikuchi.geometry import Detector
    from kikuchi.simulate.kinematical import kinematical_master_pattern
    from kikuchi.simulate.projection import project_patterns

    p = project_patterns(kinematical_master_pattern("ni"), Detector((40, 40), (0.5, 0.3, 0.6)), np.array([[0.3, 0.5, 0.2], [1.2, 0.8, 0.4]]))
    p = p.astype(np.float64)
    return COUNTS * p / p.mean(axis=(1, 2), keepdims=True)


def rms(a, b):
    return float(np.sqrt(((np.asarray(a, float) - b) ** 2).mean()))


def direct_nlpar(x, have, sr, lam, mask=None):
    """The equations written out, in float64: noise from the 8 neighbours, normalised distances, weights, mean."""
    rows, cols = have.shape
    flat = x.reshape(rows, cols, -1).astype(np.float64)
    comp = flat if mask is None else flat[..., mask.ravel()]
    n = comp.shape[2]
    s2 = np.full((rows, cols), np.nan)
    for r in range(rows):
        for c in range(cols):
            if not have[r, c]:
                continue
            d = [((comp[r, c] - comp[rr, cc]) ** 2).sum() for rr in range(r - 1, r + 2) for cc in range(c - 1, c + 2)
                 if (rr, cc) != (r, c) and 0 <= rr < rows and 0 <= cc < cols and have[rr, cc]]
            d = [v for v in d if v > 0]
            s2[r, c] = min(d) / (2 * n) if d else np.nan
    out = np.zeros(flat.shape)
    weights = np.zeros((rows, cols, 2 * sr + 1, 2 * sr + 1))
    for r in range(rows):
        for c in range(cols):
            if not have[r, c]:
                continue
            total, acc = 0.0, 0.0
            for dr in range(-sr, sr + 1):
                for dc in range(-sr, sr + 1):
                    rr, cc = r + dr, c + dc
                    if not (0 <= rr < rows and 0 <= cc < cols and have[rr, cc]):
                        continue
                    if (dr, dc) == (0, 0):
                        w = 1.0
                    else:
                        s = s2[r, c] + s2[rr, cc]
                        d = (((comp[r, c] - comp[rr, cc]) ** 2).sum() - n * s) / (s * math.sqrt(2 * n))
                        w = math.exp(-max(d, 0.0) / lam**2)
                    weights[r, c, dr + sr, dc + sr] = w
                    total += w
                    acc = acc + w * flat[rr, cc]
            out[r, c] = acc / total
    return out.reshape(x.shape), weights, np.sqrt(s2)


def test_equals_the_equations_written_out_with_a_gap_and_a_mask():
    rng = np.random.default_rng(3)
    base = rng.random((2, 9, 11)) * 50 + 20
    grain = (np.arange(7)[None, :] >= 4).astype(int) * np.ones((6, 1), int)
    x = rng.poisson(base[grain]).astype(np.uint16)
    have = np.ones((6, 7), bool)
    have[2, 3] = have[0, 6] = False
    mask = np.ones((9, 11), bool)
    mask[0, :] = mask[:, -2:] = False
    for m in (None, mask):
        ref, ref_w, ref_s = direct_nlpar(x, have, 2, 0.8, m)
        np.testing.assert_allclose(nlpar_sigma(x, have=have, mask=m), ref_s, rtol=1e-6)
        w = nlpar_weights(x, lam=0.8, search_radius=2, have=have, mask=m)
        np.testing.assert_allclose(w, ref_w, rtol=1e-5, atol=1e-6)
        got = nlpar(x, lam=0.8, search_radius=2, have=have, mask=m)
        np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-4)
        assert not got[~have].any()


def test_noise_estimate_is_the_poisson_variance(clean):
    """Poisson noise of mean 30 counts: sigma² about 30 (the most alike of 3 to 8 neighbours: a few % below)."""
    rng = np.random.default_rng(1)
    one = rng.poisson(np.broadcast_to(clean[0], (10, 10, 40, 40))).astype(np.float32)
    ratio = (nlpar_sigma(one) ** 2).mean() / clean[0].mean()
    assert 0.92 < ratio < 1.0, ratio


def test_one_orientation_gets_closer_to_the_noise_free_pattern(clean):
    """10 x 10 points of one orientation: the error to the noise-free pattern falls from 5.46 to about 1.34 counts
    (lambda auto) and 1.01 (lambda 2), close to the flat 7 x 7 mean (0.99), the best any weights can do here."""
    rng = np.random.default_rng(1)
    one = rng.poisson(np.broadcast_to(clean[0], (10, 10, 40, 40))).astype(np.float32)
    before = rms(one, clean[0])
    auto = rms(nlpar(one), clean[0])
    wide = rms(nlpar(one, lam=2.0), clean[0])
    flat = rms(average_neighbours(one, n=3), clean[0])
    assert before == pytest.approx(math.sqrt(COUNTS), rel=0.02)
    assert auto < 0.3 * before
    assert flat <= wide < auto
    assert wide < 1.1 * flat


def test_grain_boundary_is_not_blurred(clean):
    """Two grains side by side: the other grain's patterns get weights below 1e-8; boundary points
    stay their own grain's pattern with the error of the others, where a 3 x 3 flat mean mixes in the other grain."""
    rng = np.random.default_rng(2)
    grain = np.zeros((10, 12), int)
    grain[:, 6:] = 1
    two = rng.poisson(clean[grain]).astype(np.float32)
    lam = nlpar_lambda(two).lam
    w = nlpar_weights(two, lam=lam, search_radius=3)
    cross, own = [], []
    for c in range(12):
        for dc in range(-3, 4):
            if dc and 0 <= c + dc < 12:
                (own if grain[0, c + dc] == grain[0, c] else cross).append(w[:, c, :, dc + 3])
    cross, own = np.concatenate(cross).ravel(), np.concatenate(own).ravel()
    own = own[own > 0]  # rows off the map have no weight
    assert cross.max() < 1e-8
    assert own.mean() > 0.2
    out = nlpar(two, lam=lam)
    npa = average_neighbours(two, n=1)
    inner = rms(out[:, [2, 9]], clean[grain[:, [2, 9]]])
    for c in (5, 6):  # the columns on either side of the boundary
        g = grain[0, c]
        edge = rms(out[:, c], clean[g])
        assert edge < 1.2 * inner + 0.2  # only half a window of its own grain: a little noisier
        assert edge < 0.3 * rms(two[:, c], clean[g])
        assert rms(npa[:, c], clean[g]) > 1.8 * edge
        assert abs(np.corrcoef(out[:, c].ravel(), clean[1 - g][None].repeat(10, 0).ravel())[0, 1]) < 0.1


def test_lambda_to_zero_gives_the_input_back(clean):
    """Where every neighbour differs by more than the noise (distinct patterns, their Poisson noise given), a
    tiny lambda gives the input exactly. Neighbours within the noise (d <= 0) keep weight 1 whatever lambda, as
    the equations say: on a map of one orientation a tiny lambda averages exactly those, and the result moves
    towards the input as lambda falls. (With the noise estimated from the most alike neighbour, that neighbour
    is within the noise by construction whenever its own estimate is no smaller: a tiny lambda still averages it.)"""
    rng = np.random.default_rng(4)
    expected_counts = rng.random((5, 6, 40, 40)) * 60
    distinct = rng.poisson(expected_counts).astype(np.float32)
    poisson_sigma = np.sqrt(expected_counts.mean(axis=(2, 3)))
    np.testing.assert_array_equal(nlpar(distinct, lam=1e-3, sigma=poisson_sigma), distinct)
    assert not np.array_equal(nlpar(distinct, lam=1e-3), distinct)  # the estimate: each point's most alike neighbour
    one = rng.poisson(np.broadcast_to(clean[0], (8, 8, 40, 40))).astype(np.float32)
    moved = [rms(nlpar(one, lam=lam), one) for lam in (2.0, 1.0, 0.5, 0.2, 1e-3)]
    assert moved == sorted(moved, reverse=True) and moved[-1] < 0.85 * moved[0]
    w = nlpar_weights(one, lam=1e-3, search_radius=3)
    assert np.all((w == 1.0) | (w < 1e-100))  # within the noise, or as good as not at all
    on_map = nlpar_weights(one, lam=1e3, search_radius=3) > 0
    assert (w > 0).sum() < 0.2 * on_map.sum()  # about 4 of the 30 neighbours a point has on this map
    kept = w[..., None, None]
    rows = np.arange(8)[:, None, None, None] + np.arange(-3, 4)[None, None, :, None]
    cols = np.arange(8)[None, :, None, None] + np.arange(-3, 4)[None, None, None, :]
    inside = (rows >= 0) & (rows < 8) & (cols >= 0) & (cols < 8)
    neighbours = np.where(inside[..., None, None], one[np.clip(rows, 0, 7), np.clip(cols, 0, 7)], 0.0)
    expected = (kept * neighbours).sum(axis=(2, 3)) / kept.sum(axis=(2, 3))
    np.testing.assert_allclose(nlpar(one, lam=1e-3), expected, rtol=1e-5)


def test_missing_and_no_signal_points_are_not_neighbours(clean):
    rng = np.random.default_rng(5)
    one = rng.poisson(np.broadcast_to(clean[0], (7, 7, 40, 40))).astype(np.float32)
    have = np.ones((7, 7), bool)
    have[3, 3] = have[0, 5] = False
    w = nlpar_weights(one, lam=1.0, search_radius=2, have=have)
    assert w[2, 2, 3, 3] == 0 and w[3, 4, 2, 1] == 0 and w[1, 5, 1, 2] == 0
    assert not w[3, 3].any() and not w[0, 5].any()
    # what a missing point holds changes nothing, anywhere
    other = one.copy()
    other[3, 3] = 5 * clean[1]
    other[0, 5] = rng.random((40, 40)) * 1e4
    a, b = nlpar(one, lam=1.0, have=have), nlpar(other, lam=1.0, have=have)
    np.testing.assert_array_equal(a, b)
    assert not a[3, 3].any()
    # in the pipeline a no-signal pattern (all one value) is a point without a pattern
    s = ProcessingSettings(static="none", dynamic="none", nlpar=True, nlpar_lambda=1.0, dtype="float32")
    flat = other.copy()
    flat[3, 3] = 7.0
    flat[0, 5] = np.nan
    np.testing.assert_array_equal(process_patterns(flat, s), a)
    s_auto = s.replace(nlpar_lambda="auto")
    np.testing.assert_array_equal(process_patterns(flat, s_auto), process_patterns(one, s_auto, have=have))


def test_threads_give_the_serial_result(clean):
    rng = np.random.default_rng(6)
    grain = (np.arange(9)[:, None] + np.arange(8)[None, :] > 8).astype(int)
    two = rng.poisson(clean[grain]).astype(np.float32)
    serial = nlpar(two, lam=0.9)
    for workers in (2, 3, 9):
        np.testing.assert_array_equal(nlpar(two, lam=0.9, workers=workers), serial)
    np.testing.assert_array_equal(nlpar(two, lam=0.9, rows=(2, 7), cols=(1, 6)), serial[2:7, 1:6])
    s = ProcessingSettings(static="none", nlpar=True, nlpar_search_radius=2, dtype="uint16")
    np.testing.assert_array_equal(process_patterns(two, s, workers=3), process_patterns(two, s))


def test_pipeline_output_types(clean):
    """Step 5 of the pipeline on the float patterns of step 4; uint8/uint16 stretch its result as without NLPAR."""
    rng = np.random.default_rng(7)
    one = rng.poisson(np.broadcast_to(clean[0], (5, 6, 40, 40))).astype(np.uint16)
    s = ProcessingSettings(static="none", dynamic="none", nlpar=True, nlpar_lambda=1.2, nlpar_search_radius=2, dtype="float32")
    ref = nlpar(one.astype(np.float32), lam=1.2, search_radius=2)
    np.testing.assert_array_equal(process_patterns(one, s), ref)
    for dtype in ("uint8", "uint16"):
        got = process_patterns(one, s.replace(dtype=dtype, clow=1.0, chigh=99.0))
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, rescale_to_uint(ref.reshape(-1, 40, 40), dtype=dtype, clow=1.0, chigh=99.0).reshape(got.shape))
    circle = process_patterns(one, s.replace(nlpar_mask="circle"))
    assert not np.array_equal(circle, ref)  # fewer pixels compared, other weights
    assert rms(circle, clean[0]) < 0.45 * rms(one, clean[0])


def test_automatic_lambda_minimises_the_documented_objective(clean):
    rng = np.random.default_rng(8)
    one = rng.poisson(np.broadcast_to(clean[0], (9, 9, 40, 40))).astype(np.float32)
    choice = nlpar_lambda(one)
    assert choice.targets == LAMBDA_TARGETS and choice.points == 81
    assert choice.per_target[0] < choice.per_target[1] < choice.per_target[2]  # a larger own share needs a smaller lambda
    assert choice.lam == choice.per_target[1]
    d = neighbour_distances_block(one, np.ones((9, 9), bool), pixels=None, rows=(0, 9), cols=(0, 9)).reshape(-1, 8)

    def objective(lam, t):
        w = np.where(d <= 0, 1.0, np.exp(-np.maximum(d, 0) / lam**2))
        return np.abs(t - 1.0 / (1.0 + w.sum(axis=1))).mean()

    for lam, t in zip(choice.per_target, choice.targets):
        fine = np.geomspace(lam / 1.5, lam * 1.5, 301)
        assert objective(lam, t) <= min(objective(v, t) for v in fine) + 1e-9
    # the 3 x 3 centre share at that lambda is about the target (the mean |t - share| is minimal, not the median)
    share = 1.0 / nlpar_weights(one, lam=choice.lam, search_radius=1).sum(axis=(2, 3))
    assert 0.25 < np.median(share) < 0.4
    assert nlpar(one).tobytes() == nlpar(one, lam=choice.lam).tobytes()
    with pytest.raises(ValueError, match="no map point has a neighbour with a pattern: cannot choose lambda automatically"):
        choose_lambda(np.full((4, 8), np.inf))


def test_bad_inputs():
    x = np.ones((3, 3, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"NLPAR needs a map of patterns \(rows, cols, h, w\); got shape \(9, 4, 4\)"):
        nlpar(x.reshape(9, 4, 4))
    with pytest.raises(ValueError, match="lambda must be a number > 0 or 'auto'; got -1"):
        nlpar(x, lam=-1)
    with pytest.raises(ValueError, match="lambda must be a number > 0 or 'auto'; got 'fast'"):
        nlpar(x, lam="fast")
    with pytest.raises(ValueError, match=r"search radius must be an integer >= 1 \(map steps\); got 0"):
        nlpar(x, lam=1.0, search_radius=0)
    with pytest.raises(ValueError, match=r"mask of shape \(3, 3\) does not fit patterns of shape \(4, 4\)"):
        nlpar(x, lam=1.0, mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="mask selects no pixel"):
        nlpar(x, lam=1.0, mask=np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match=r"have of shape \(2, 3\) does not fit the 3 x 3 map"):
        nlpar(x, lam=1.0, have=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match=r"sigma of shape \(3,\) does not fit the 3 x 3 map"):
        nlpar(x, lam=1.0, sigma=np.ones(3))
    with pytest.raises(ValueError, match="rows 1:5 must lie within 0:3"):
        nlpar(x, lam=1.0, rows=(1, 5))
    with pytest.raises(ValueError, match=r"choose one neighbour averaging: nlpar or npa \(got npa=1 with nlpar\)"):
        ProcessingSettings(nlpar=True, npa=1)
    with pytest.raises(ValueError, match="nlpar_search_radius must be an integer >= 1 \\(map steps\\); got 0"):
        ProcessingSettings(nlpar=True, nlpar_search_radius=0)
    with pytest.raises(ValueError, match="nlpar_mask must be one of none, circle; got 'square'"):
        ProcessingSettings(nlpar=True, nlpar_mask="square")
    with pytest.raises(ValueError, match=r"non-local pattern averaging \(nlpar\) needs the map: give patterns as \(rows, cols, h, w\)"):
        process_patterns(x.reshape(9, 4, 4), ProcessingSettings(nlpar=True))
    assert ProcessingSettings(nlpar=True, nlpar_lambda="0.5").nlpar_lambda == 0.5
