"""Points without signal in Hough indexing: error 6, nothing else changed; clear errors for misuse."""

from __future__ import annotations

import shutil
import warnings

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.geometry import Detector
from kikuchi.index import HoughIndexer, IndexResult, index_map, prepare_patterns
from kikuchi.process.no_signal import NoSignalWarning, StaticBackgroundWarning

BAD = {(0, 0): 0, (2, 3): 255, (4, 5): 117}


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    d = tmp_path_factory.mktemp("index_bad_points")
    clean = kikuchi.simulate(d / "clean.h5", phase="ni", shape=(5, 6), pattern_shape=(40, 40), noise="low", progress=False)
    bad_path = d / "bad.h5"
    shutil.copyfile(clean, bad_path)
    with h5py.File(bad_path, "r+") as f:
        for (r, c), value in BAD.items():
            f["Scan/EBSD/Data/RawPatterns"][r * 6 + c] = value
    mask = np.zeros((5, 6), bool)
    mask[tuple(np.array(list(BAD)).T)] = True
    with kikuchi.open(clean) as m, warnings.catch_warnings():
        warnings.simplefilter("error")
        want = index_map(m, ["ni"], progress=False)
    return clean, bad_path, mask, want


def test_index_map_marks_error_6_and_changes_nothing_else(maps):
    _, bad_path, bad, want = maps
    with kikuchi.open(bad_path) as m, pytest.warns(NoSignalWarning, match=r"bad.h5: 3 of 30 points hold no signal .*: \(row 0, col 0\), \(row 2, col 3\), \(row 4, col 5\); not indexed \(CTF error 6\)"):
        got = index_map(m, ["ni"], progress=False, executor="threads", workers=2)
    rows = got.result.as_array().reshape(5, 6, 11)
    np.testing.assert_array_equal(rows[~bad], want.result.as_array().reshape(5, 6, 11)[~bad])
    r = got.result
    flat = bad.ravel()
    assert (r.error[flat] == 6).all() and not r.phase_id[flat].any() and not r.n_bands[flat].any() and not r.euler[flat].any()
    assert got.settings["no_signal_points"] == 3 and r.summary()["no_signal"] == 3
    assert r.summary()["errors"]["Unexpected error"] == 3
    omap = got.to_orientation_map(format="ctf")
    assert (omap.columns["error"].reshape(5, 6)[bad] == 6).all()


def test_refinement_leaves_bad_points_out(maps):
    _, bad_path, bad, _ = maps
    with kikuchi.open(bad_path) as m, pytest.warns(NoSignalWarning):
        got = index_map(m, ["ni"], progress=False, refine_pc="mean", refine_points=30)
    assert (got.result.error.reshape(5, 6)[bad] == 6).all() and got.result.indexed.sum() >= 25


def test_a_static_background_that_cannot_divide_is_not_used(maps, tmp_path):
    clean, _, _, _ = maps
    nan_bg = tmp_path / "nan_bg.h5"
    shutil.copyfile(clean, nan_bg)
    with h5py.File(nan_bg, "r+") as f:
        f["Scan/EBSD/Data/StaticBackground"][...] = np.nan
    with kikuchi.open(nan_bg) as m, pytest.warns(StaticBackgroundWarning, match="nan_bg.h5: its static background: no value is finite"):
        got = index_map(m, ["ni"], progress=False)
    with kikuchi.open(clean) as m:
        want = index_map(m, ["ni"], progress=False, static_background=None)
    np.testing.assert_array_equal(got.result.as_array(), want.result.as_array())
    assert got.settings["static_background"] is False


def test_indexer_and_prepare_patterns_on_arrays():
    det = Detector((40, 40), (0.5, 0.3, 0.6))
    indexer = HoughIndexer(["ni"], det)
    p = np.zeros((3, 40, 40), np.float32)
    p[1] = np.nan
    p[2] = np.random.default_rng(0).random((40, 40))
    np.testing.assert_array_equal(prepare_patterns(p)[:2], 0.0)
    result = indexer.index(p, no_signal=np.array([False, False, True]))
    assert result.error.tolist() == [6, 6, 6]
    assert len(indexer.index(np.zeros((0, 40, 40)))) == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda det: HoughIndexer(["ni"], "detector"), "HoughIndexer: detector must be a kikuchi.geometry.Detector, got str"),
        (lambda det: HoughIndexer(["ni"], det, band_options={"sharpness": 1}), "HoughIndexer band_options: unknown band detection option sharpness; the options are n_bands, "),
        (lambda det: HoughIndexer(["ni"], det, kv=-20), r"HoughIndexer: need max_mad_deg > 0, min_band_slope >= 0 and kv > 0 \(got 1.5, 0.0, -20\)"),
        (lambda det: HoughIndexer(["ni"], det, n_families=0), r"HoughIndexer: n_families must be a whole number >= 1 \(or None\), got 0"),
        (lambda det: HoughIndexer(["ni"], det).index(np.full((1, 40, 40), "a")), "HoughIndexer.index: patterns must be numbers, got dtype <U1"),
        (lambda det: HoughIndexer(["ni"], det).index(np.zeros((2, 40, 40)), index=np.arange(3)), r"index must be 2 integer map positions \(row \* cols \+ col\)"),
        (lambda det: HoughIndexer(["ni"], det).index_bands(np.zeros((2, 3))), r"expected band tables \(n, n_bands, 6\) from detect\(\), got shape \(2, 3\)"),
        (lambda det: IndexResult.from_array(np.zeros((2, 7)), phases=["ni"]), r"IndexResult.from_array: expected rows \(n, 11\): phi1, .*; got shape \(2, 7\)"),
        (lambda det: prepare_patterns(np.full((2, 40, 40), "a")), "prepare_patterns: patterns must be numbers, got dtype <U1"),
        (lambda det: prepare_patterns(np.zeros((2, 40, 40)), static_background=np.ones((3, 3))), r"static background of shape \(3, 3\) does not fit patterns of shape \(40, 40\)"),
        (lambda det: index_map("map.h5", ["ni"]), r"index_map: give an open map \(kikuchi.open\(path\)\), not str"),
        (lambda det: kikuchi.index.band_normals(np.zeros((3, 2)), np.eye(3), (40, 40)), r"band_normals: expected band tables \(n_bands, 6\) or \(n, n_bands, 6\)"),
    ],
)
def test_misuse_gets_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(Detector((40, 40), (0.5, 0.3, 0.6)))
