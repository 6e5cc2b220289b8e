"""Square Lambert projection and master patterns (EMsoft files included)."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.simulate.lambert import lambert_grid_vectors, vectors_to_lambert
from kikuchi.simulate.master import MasterPattern, MasterPatternError
from tests.conftest import shared_file


def test_grid_vectors_are_unit_and_round_trip():
    size = 51
    v = lambert_grid_vectors(size)
    assert v.shape == (2, size, size, 3)
    np.testing.assert_allclose(np.linalg.norm(v, axis=-1), 1.0, atol=1e-12)
    assert np.all(v[0, ..., 2] >= -1e-12) and np.all(v[1, ..., 2] <= 1e-12)
    hemi, row, col = vectors_to_lambert(v[:, 1:-1, 1:-1], size)  # border pixels sit on the equator (either hemisphere)
    rr, cc = np.meshgrid(np.arange(1, size - 1), np.arange(1, size - 1), indexing="ij")
    np.testing.assert_allclose(row, np.broadcast_to(rr, row.shape), atol=1e-9)
    np.testing.assert_allclose(col, np.broadcast_to(cc, col.shape), atol=1e-9)
    assert np.all(hemi[0] == 0) and np.all(hemi[1] == 1)


def test_grid_is_equal_area():
    # every pixel of the square Lambert grid covers the same solid angle: pixel
    # counts in a polar cap are proportional to its area 2 pi (1 - cos t)
    v = lambert_grid_vectors(601)[0, 1:-1, 1:-1].reshape(-1, 3)
    for t_deg in (30, 60):
        frac = np.mean(v[:, 2] >= np.cos(np.radians(t_deg)))
        assert frac == pytest.approx(1 - np.cos(np.radians(t_deg)), rel=0.01)


def test_axes_of_the_grid():
    v = lambert_grid_vectors(5)[0]
    np.testing.assert_allclose(v[2, 4], [1, 0, 0], atol=1e-12)  # column -> +x
    np.testing.assert_allclose(v[4, 2], [0, 1, 0], atol=1e-12)  # row -> +y
    np.testing.assert_allclose(v[2, 0], [-1, 0, 0], atol=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 3 pixels"):
        lambert_grid_vectors(2)
    with pytest.raises(ValueError, match="last axis of length 3"):
        vectors_to_lambert(np.zeros((4, 2)), 11)
    with pytest.raises(ValueError, match="zero vector"):
        vectors_to_lambert(np.zeros((1, 3)), 11)
    with pytest.raises(ValueError, match="square arrays"):
        MasterPattern(np.zeros((3, 4)), np.zeros((3, 4)), kv=20)
    with pytest.raises(ValueError, match="differ in shape"):
        MasterPattern(np.zeros((5, 5)), np.zeros((7, 7)), kv=20)


def test_sample_reproduces_a_smooth_function():
    v = lambert_grid_vectors(201)
    f = lambda u: u[..., 0] + 2 * u[..., 1] ** 2 - u[..., 2]  # noqa: E731
    mp = MasterPattern(f(v[0]), f(v[1]), kv=20)
    rng = np.random.default_rng(1)
    q = rng.normal(size=(500, 3))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(mp.sample(q), f(q), atol=3e-3)
    assert mp.sample(q.reshape(20, 25, 3)).shape == (20, 25)


def test_from_emsoft_ni():
    path = shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5")
    mp = MasterPattern.from_emsoft(path)
    assert mp.size == 401 and mp.kv == 20.0
    assert mp.phase["space_group"] == 225
    assert mp.phase["lattice"][0] == pytest.approx(0.35236)
    assert mp.phase["atoms"][0]["Z"] == 28
    assert mp.north.dtype == np.float32 and 0 <= mp.north.min() and mp.north.max() <= 255
    # m-3m: intensity is the same along symmetry-equivalent directions, in both hemispheres
    d = np.array([[1, 1, 1], [-1, 1, 1], [1, -1, -1], [-1, -1, -1]], float)
    vals = mp.sample(d)
    assert np.ptp(vals) < 0.05 * np.ptp(mp.north)
    d = np.array([[0.3, 0.5, 0.81], [0.5, 0.3, 0.81], [0.3, -0.5, -0.81], [-0.81, 0.3, 0.5]])
    vals = mp.sample(d)
    assert np.ptp(vals) < 0.05 * np.ptp(mp.north)
    assert mp.sample(np.array([0.0, 0.0, 1.0])) == pytest.approx(mp.north[200, 200])
    weighted = MasterPattern.from_emsoft(path, energy="weighted")
    np.testing.assert_allclose(weighted.north, mp.north)  # a single energy bin



def test_emsoft_ni_master_pattern_is_exactly_4mm_but_only_roughly_3_fold_symmetric():
    # What limits orientation refinement against this file to about 0.1 degree (docs/refinement.md): the Lambert
    # arrays repeat exactly under the 4mm operations about z (a grid point goes to a grid point), but the operations
    # that move z (a 4-fold about x, a 3-fold about [111]) give an intensity differing by an RMS of 3.1 (of mean 44),
    # nearly uncorrelated from pixel to pixel: correlation 0.9946 (measured), not better with cubic interpolation. So the
    # 24 equivalent Euler triplets of one orientation sample different values: their simulated 60 x 60 patterns
    # correlate only to 0.9945, and the NCC with a real pattern differs between them by up to 0.0035
    mp = MasterPattern.from_emsoft(shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"))
    v = lambert_grid_vectors(mp.size).reshape(-1, 3)
    values = np.concatenate([mp.north.ravel(), mp.south.ravel()]).astype(np.float64)
    assert np.array_equal(mp.north, np.rot90(mp.north)) and np.array_equal(mp.north, mp.north.T)
    assert np.array_equal(mp.north, mp.south)
    for op in (np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]]), np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])):
        moved = mp.sample(v @ op.T).astype(np.float64)
        r = np.corrcoef(values, moved)[0, 1]
        assert 0.990 < r < 0.998, r
        assert 2.5 < np.sqrt(np.mean((values - moved) ** 2)) < 4.0

def test_from_emsoft_errors(tmp_path):
    import h5py

    with pytest.raises(FileNotFoundError, match="no such master pattern file"):
        MasterPattern.from_emsoft(tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(MasterPatternError, match="not a readable HDF5 file"):
        MasterPattern.from_emsoft(bad)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(MasterPatternError, match="EMData/EBSDmaster/mLPNH"):
        MasterPattern.from_emsoft(other)
    path = shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5")
    with pytest.raises(ValueError, match="'highest', 'weighted' or a number"):
        MasterPattern.from_emsoft(path, energy="lowest")


def test_from_emsoft_energy_bins(tmp_path):
    """A file of 2 atom sites x 3 energy bins: sites summed, the bin (or the histogram-weighted mean) chosen."""
    import h5py

    rng = np.random.default_rng(3)
    north = rng.uniform(0, 1, size=(2, 3, 9, 9))
    south = rng.uniform(0, 1, size=(2, 3, 9, 9))
    path = tmp_path / "mp.h5"
    with h5py.File(path, "w") as f:
        f["EMData/EBSDmaster/mLPNH"] = north
        f["EMData/EBSDmaster/mLPSH"] = south
        f["EMData/EBSDmaster/EkeVs"] = [10.0, 15.0, 20.0]
        f["EMData/MCOpenCL/accum_e"] = np.stack([np.full((4, 4), v) for v in (1.0, 1.0, 2.0)])  # (n_e, x, y)
    mp = MasterPattern.from_emsoft(path)
    assert mp.kv == 20.0
    np.testing.assert_allclose(mp.north, north[:, 2].sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mp.south, south[:, 2].sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(MasterPattern.from_emsoft(path, energy=14.0).north, north[:, 1].sum(axis=0), rtol=1e-6)
    weighted = MasterPattern.from_emsoft(path, energy="weighted")
    expected = np.tensordot([0.25, 0.25, 0.5], north.sum(axis=0), axes=(0, 0))
    np.testing.assert_allclose(weighted.north, expected, rtol=1e-6)
    bad = tmp_path / "bad_shape.h5"
    with h5py.File(bad, "w") as f:
        f["EMData/EBSDmaster/mLPNH"] = np.zeros((3, 9, 8))
    with pytest.raises(MasterPatternError, match=r"has shape \(3, 9, 8\), expected \(\.\.\., n, n\) square Lambert arrays"):
        MasterPattern.from_emsoft(bad)
    mismatch = tmp_path / "mismatch.h5"
    with h5py.File(mismatch, "w") as f:
        f["EMData/EBSDmaster/mLPNH"] = np.zeros((3, 9, 9))
        f["EMData/EBSDmaster/mLPSH"] = np.zeros((2, 9, 9))
    with pytest.raises(MasterPatternError, match=r"mLPNH \(3, 9, 9\) and mLPSH \(2, 9, 9\) differ in shape"):
        MasterPattern.from_emsoft(mismatch)
