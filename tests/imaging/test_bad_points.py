"""Points without signal in the imaging maps: NaN in every image, no one's neighbour, the other points unchanged."""

from __future__ import annotations

import shutil
import warnings

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.imaging import image_quality, neighbour_dot_product, quality_maps, vbse_map, vbse_maps
from kikuchi.process.no_signal import NoSignalWarning, StaticBackgroundWarning

BAD = {(0, 0): 0, (2, 3): 255, (2, 4): 117, (5, 7): 0}


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    d = tmp_path_factory.mktemp("imaging_bad_points")
    clean = kikuchi.simulate(d / "clean.h5", phase="ni", shape=(6, 8), pattern_shape=(40, 40), noise="low", progress=False)
    bad_path = d / "bad.h5"
    shutil.copyfile(clean, bad_path)
    with h5py.File(bad_path, "r+") as f:
        for (r, c), value in BAD.items():
            f["Scan/EBSD/Data/RawPatterns"][r * 8 + c] = value
    mask = np.zeros((6, 8), bool)
    mask[tuple(np.array(list(BAD)).T)] = True
    return clean, bad_path, mask


def clean_run(func, path, **options):
    with kikuchi.open(path) as m, warnings.catch_warnings():
        warnings.simplefilter("error")
        return func(m, progress=False, **options)


@pytest.mark.parametrize("signal", ["raw", "kikuchi"])
def test_vbse_maps(maps, signal):
    clean, bad_path, bad = maps
    with kikuchi.open(bad_path) as m, pytest.warns(NoSignalWarning, match=r"bad.h5: 4 of 48 points hold no signal .*: \(row 0, col 0\), .*; NaN in the images"):
        got = vbse_maps(m, signal=signal, progress=False, chunk_rows=2, com_kikuchi=True)
        only = vbse_map(m, signal=signal, progress=False)
    want = clean_run(vbse_maps, clean, signal=signal, com_kikuchi=True)
    np.testing.assert_array_equal(got.no_signal, bad)
    for name in ("vbse", "bse", "com_raw", "com_kikuchi", "diodes"):
        np.testing.assert_array_equal(getattr(got, name)[~bad], getattr(want, name)[~bad], err_msg=name)
        assert np.isnan(getattr(got, name)[bad]).all(), name
    np.testing.assert_array_equal(only, got.vbse)


def test_quality_maps(maps):
    clean, bad_path, bad = maps
    with kikuchi.open(bad_path) as m, pytest.warns(NoSignalWarning, match="4 of 48 points hold no signal"):
        got = quality_maps(m, progress=False, chunk_rows=2)
    want = clean_run(quality_maps, clean)
    np.testing.assert_array_equal(got.no_signal, bad)
    for name in ("iq", "mean", "std"):
        np.testing.assert_array_equal(getattr(got, name)[~bad], getattr(want, name)[~bad], err_msg=name)
    for name in ("iq", "adp", "mean", "std"):
        assert np.isnan(getattr(got, name)[bad]).all(), name
    # the dot products: as if the bad points had no pattern (their neighbours average the others)
    from kikuchi.imaging.maps import kikuchi_signal

    with kikuchi.open(clean) as m:
        raw, bg = m.read_all(), m.static_background
    signal = kikuchi_signal(raw.reshape(-1, 40, 40), sigma=5.0, static_background=bg)[0].reshape(raw.shape)
    np.testing.assert_array_equal(got.adp, neighbour_dot_product(signal, have=~bad))


def test_a_static_background_that_cannot_divide(maps, tmp_path):
    clean, _, _ = maps
    zero = tmp_path / "zero_bg.h5"
    shutil.copyfile(clean, zero)
    with h5py.File(zero, "r+") as f:
        f["Scan/EBSD/Data/StaticBackground"][...] = 0
    with kikuchi.open(zero) as m, pytest.warns(StaticBackgroundWarning, match="zero_bg.h5: its static background: every value is 0 .*; not used"):
        got = vbse_maps(m, signal="kikuchi", progress=False)
    assert got.settings["static_background"] is False
    want = clean_run(vbse_maps, clean, signal="kikuchi", static_background=False)
    np.testing.assert_array_equal(got.vbse, want.vbse)


def test_array_functions():
    rng = np.random.default_rng(1)
    p = rng.normal(size=(2, 3, 8, 8))
    p[0, 1] = 5.0  # constant
    p[1, 2, 2, 2] = np.nan
    adp = neighbour_dot_product(p)
    assert np.isnan(adp[0, 1]) and np.isnan(adp[1, 2])  # no correlation of a pattern without signal
    a, b = (x.ravel() - x.mean() for x in (p[0, 0], p[1, 0]))
    assert adp[0, 0] == pytest.approx(a @ b / np.sqrt((a @ a) * (b @ b)))  # (0, 1) is no neighbour: only (1, 0) counts
    assert np.isnan(adp[0, 2]) and np.isfinite(adp[1, 1])  # (0, 2): both its neighbours lack signal
    q = image_quality(p)
    assert np.isnan(q[0, 1]) and np.isnan(q[1, 2]) and np.isfinite(q[0, 0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: vbse_map(np.zeros((2, 2, 8, 8))), r"vbse_map: give an open map \(kikuchi.open\(path\)\), not ndarray"),
        (lambda: quality_maps("map.h5"), r"quality_maps: give an open map \(kikuchi.open\(path\)\), not str"),
        (lambda: kikuchi.imaging.vbse_array(np.zeros((2, 8, 8)), grid=None), "grid None: expected ROWSxCOLS such as '7x7', one number or"),
        (lambda: kikuchi.imaging.image_quality(np.zeros((2, 8, 8)), chunk=0), "chunk must be a whole number of patterns >= 1, got 0"),
        (lambda: neighbour_dot_product(np.zeros((2, 2, 8, 8)), core=(1, 5)), "core rows 1:5 must lie within the 2 map rows"),
        (lambda: kikuchi.imaging.montage(np.ones((2, 2, 2, 2)), gap=-1), "gap must be a whole number of pixels >= 0, got -1"),
        (lambda: kikuchi.imaging.asymmetry(np.ones(3), np.ones(4)), r"asymmetry: a \(3,\) and b \(4,\) must be images of the same shape"),
    ],
)
def test_misuse_gets_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_hillshade_of_no_known_centre_is_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(kikuchi.imaging.hillshade(np.full((3, 3, 2), np.nan))).all()
