"""Image quality (Krieger Lassen) and the average neighbour dot product."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from kikuchi.imaging import image_quality, neighbour_dot_product
from tests.conftest import shared_file


def iq_by_definition(pattern: np.ndarray) -> float:
    """Q = 1 - J / (J_res w_tot) with the full 2-D spectrum |F|, written out."""
    p = (pattern - pattern.mean()) / pattern.std()
    w = np.abs(np.fft.fft2(p))
    h = np.fft.fftfreq(p.shape[0]) * p.shape[0]
    k = np.fft.fftfreq(p.shape[1]) * p.shape[1]
    q2 = h[:, None] ** 2 + k[None, :] ** 2
    j = (w * q2).sum()
    j_res = q2.sum() / q2.size
    return 1 - j / (j_res * w.sum())


@pytest.mark.parametrize("shape", [(60, 60), (31, 44), (45, 33)])
def test_image_quality_matches_the_definition(rng, shape):
    patterns = ndimage.gaussian_filter(rng.normal(size=(3, *shape)), (0, 1.5, 1.5)) + rng.normal(0, 0.1, (3, *shape))
    np.testing.assert_allclose(image_quality(patterns), [iq_by_definition(p) for p in patterns], rtol=1e-5)


def test_image_quality_higher_for_sharp_than_for_blurred_patterns(rng):
    import kikuchi

    with kikuchi.open(shared_file("kikuchipy/nickel_ebsd_small.h5")) as m:
        raw = m.read(0, 9).astype(np.float64)
    signal = raw - ndimage.gaussian_filter(raw, (0, 8.0, 8.0))  # the Kikuchi signal
    noise = rng.normal(0, 0.3 * signal.std(), signal.shape)
    sharp = signal + noise
    blurred = ndimage.gaussian_filter(signal, (0, 2.0, 2.0)) + noise
    iq_sharp, iq_blurred = image_quality(sharp), image_quality(blurred)
    assert np.all(iq_sharp > iq_blurred + 0.03)
    assert np.all((iq_sharp > 0) & (iq_sharp < 1))


def test_image_quality_of_flat_and_noise(rng):
    q = image_quality(np.stack([np.full((16, 16), 3.0), rng.normal(size=(16, 16))]))
    assert np.isnan(q[0])
    assert abs(q[1]) < 0.1


def test_neighbour_dot_product_is_low_at_a_grain_boundary(rng):
    a, b = rng.normal(size=(2, 20, 20))
    patterns = np.where((np.arange(6) < 3)[None, :, None, None], a, b) + rng.normal(0, 0.2, (4, 6, 20, 20))
    adp = neighbour_dot_product(patterns)
    assert adp.shape == (4, 6)
    inside = adp[:, [0, 5]]
    boundary = adp[:, [2, 3]]
    assert inside.min() > 0.9
    # one of three (inner rows: four) neighbours is across the boundary
    assert boundary.max() < 0.8
    np.testing.assert_allclose(adp[0, 2], (2 * np.mean(inside) + 0) / 3, atol=0.1)


def test_neighbour_dot_product_with_missing_points_and_core(rng):
    patterns = rng.normal(size=(3, 4, 8, 8))
    have = np.ones((3, 4), dtype=bool)
    have[1, 1] = False
    adp = neighbour_dot_product(patterns, have=have)
    assert np.isnan(adp[1, 1])
    flat = patterns.reshape(3, 4, -1)
    norm = (flat - flat.mean(-1, keepdims=True)) / np.linalg.norm(flat - flat.mean(-1, keepdims=True), axis=-1, keepdims=True)
    # (0, 1): neighbours (0, 0), (0, 2); (1, 1) has no pattern
    expected = (norm[0, 1] @ norm[0, 0] + norm[0, 1] @ norm[0, 2]) / 2
    assert adp[0, 1] == pytest.approx(expected)
    np.testing.assert_allclose(neighbour_dot_product(patterns, have=have, core=(1, 3)), adp[1:3])
    with pytest.raises(ValueError, match=r"must be a map \(rows, cols, h, w\)"):
        neighbour_dot_product(patterns[0])
    with pytest.raises(ValueError, match="does not fit the 3 x 4 map"):
        neighbour_dot_product(patterns, have=have[:2])
