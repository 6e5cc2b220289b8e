"""Hough indexing: simulated patterns index back to their orientations; the 9 real Ni patterns."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.geometry import Detector, euler_to_matrix
from kikuchi.index import ERROR_CODES, HoughIndexer, IndexResult, index_map, refine_pattern_centre
from tests.conftest import shared_file

PC = (0.4251, 0.2134, 0.5007)


def _misorientation_deg(euler_a, euler_b, phase="ni"):
    from orix.quaternion import Orientation

    from kikuchi.crystal import Phase

    sym = Phase.parse(phase).point_group.laue
    return np.degrees(Orientation.from_euler(euler_a, sym).angle_with(Orientation.from_euler(euler_b, sym)))


@pytest.fixture(scope="module")
def master():
    from kikuchi.simulate.master import MasterPattern

    return MasterPattern.from_emsoft(shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"))


@pytest.fixture(scope="module")
def simulated(master):
    from kikuchi.simulate.projection import project_patterns

    euler = _random_euler(40, 3)
    det = Detector((60, 60), PC)
    patterns = project_patterns(master, det, euler)
    rng = np.random.default_rng(5)
    patterns = patterns + 0.2 * patterns.std() * rng.standard_normal(patterns.shape).astype(np.float32)
    return det, euler, patterns


def _random_euler(n, seed):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0, 2 * np.pi, n), np.arccos(rng.uniform(-1, 1, n)), rng.uniform(0, 2 * np.pi, n)])


def test_simulated_patterns_index_back(simulated):
    det, euler, patterns = simulated
    result = HoughIndexer(["ni"], det).index(patterns)
    mis = _misorientation_deg(result.euler, euler)
    assert result.indexed.all()
    assert (mis < 1.0).mean() >= 0.95 and (mis < 2.0).all()
    assert np.median(mis) < 0.4
    assert np.all(result.n_matched >= 6) and np.all(result.n_matched <= result.n_bands)
    assert np.all(result.mad_deg < 1.5) and np.all((result.ci > 0) & (result.ci <= 1))
    assert np.all((result.band_contrast > 0) & (result.band_contrast <= 255))
    assert set(result.phase_id.tolist()) == {1}


def test_threads_give_the_same_result(simulated):
    det, _, patterns = simulated
    ix = HoughIndexer(["ni"], det)
    many = np.concatenate([patterns] * 13)  # 520 patterns: split over threads
    a = ix.index(many)
    b = ix.index(many, workers=2)
    np.testing.assert_allclose(a.euler, b.euler)
    np.testing.assert_array_equal(a.error, b.error)


def test_phase_selection_between_fcc_and_bcc(simulated):
    det, _, patterns = simulated
    result = HoughIndexer(["fe-alpha", "ni"], det).index(patterns)
    assert result.phases == ["fe-alpha", "ni"]
    # orientations whose bands fit fcc and bcc equally are told apart by the band widths
    assert (result.phase_id == 2).mean() >= 0.95


def test_error_codes_for_flat_and_broken_patterns():
    det = Detector((60, 60), PC)
    pats = np.zeros((3, 60, 60), np.float32)
    pats[1] = 5.0
    pats[2, 10, 10] = np.nan
    result = HoughIndexer(["ni"], det).index(pats)
    # all zero, constant, a NaN pixel: no signal, not indexed (CTF error 6 "Unexpected error")
    assert result.error.tolist() == [6, 6, 6]
    assert np.all(result.phase_id == 0) and np.all(result.euler == 0) and np.all(result.n_bands == 0)
    assert result.summary()["no_signal"] == 3 and result.summary()["errors"] == {"Unexpected error": 3}
    assert ERROR_CODES[6].startswith("Unexpected error (the pattern holds no signal")
    assert ERROR_CODES[3].startswith("No solution") and ERROR_CODES[4].startswith("High MAD")


def test_result_array_round_trip(simulated):
    det, _, patterns = simulated
    r = HoughIndexer(["ni"], det).index(patterns[:5])
    back = IndexResult.from_array(r.as_array(), phases=r.phases)
    np.testing.assert_array_equal(back.error, r.error)
    np.testing.assert_allclose(back.euler, r.euler)
    s = r.summary()
    assert s["points"] == 5 and s["phases"] == {"ni": int((r.phase_id == 1).sum())}


def test_pattern_centre_refinement_recovers_pc(simulated):
    det, euler, patterns = simulated
    wrong = det.with_pc(np.array(PC) + [0.012, -0.01, 0.015])
    ix = HoughIndexer(["ni"], wrong)
    ref = refine_pattern_centre(ix, patterns[:25])
    assert ref["mad_after_deg"] < ref["mad_before_deg"]
    assert np.abs(ref["pc"] - PC).max() < 0.004
    fixed = ix.with_detector(det.with_pc(ref["pc"])).index(patterns)
    assert np.median(_misorientation_deg(fixed.euler, euler)) < 0.5


def test_bad_input_messages():
    det = Detector((60, 60), PC)
    with pytest.raises(ValueError, match="at least one phase"):
        HoughIndexer([], det)
    with pytest.raises(ValueError, match="min_matched must be at least 3"):
        HoughIndexer(["ni"], det, min_matched=2)
    with pytest.raises(ValueError, match=r"angle_tol_deg, fit_tol_deg and vote_tol_deg must be in \(0, 10\) degrees, got 20, 2.0, 3.0"):
        HoughIndexer(["ni"], det, angle_tol_deg=20)
    with pytest.raises(ValueError, match=r"must be in \(0, 10\) degrees, got 2.0, 2.0, 0"):
        HoughIndexer(["ni"], det, vote_tol_deg=0)
    with pytest.raises(ValueError, match=r"expected patterns \(n, 60, 60\)"):
        HoughIndexer(["ni"], det).index(np.zeros((2, 50, 50)))
    with pytest.raises(ValueError, match=r"pattern shape \(50, 50\) differs from \(60, 60\)"):
        HoughIndexer(["ni"], det).with_detector(Detector((50, 50), PC))
    with pytest.raises(ValueError, match="proposal_score must be 'evidence' or 'bands', got 'peaks'"):
        HoughIndexer(["ni"], det, proposal_score="peaks")
    with pytest.raises(ValueError, match="min_evidence must be a finite number or None, got inf"):
        HoughIndexer(["ni"], det, min_evidence=np.inf)
    ix = HoughIndexer(["ni"], det)
    with pytest.raises(ValueError, match=r"expected filtered transforms \(2, 120, 63\) from BandDetector.detect_stack_filtered, got shape \(1, 120, 63\)"):
        ix.index_bands(np.zeros((2, 9, 6)), transforms=np.zeros((1, 120, 63), np.float32))


def test_real_nickel_patterns_match_reference():
    import kikuchi

    with kikuchi.open(shared_file("kikuchipy/nickel_ebsd_small.h5")) as m:
        indexing = index_map(m, ["ni"], progress=False)
        reference = m.euler.reshape(-1, 3)
    r = indexing.result
    assert r.indexed.all()
    mis = _misorientation_deg(r.euler, reference)
    assert np.all(mis < 1.0), mis
    assert mis.mean() < 0.5, mis
    # the two grains of the map: patterns {0, 3, 6} and the rest
    g = euler_to_matrix(r.euler)
    assert _misorientation_deg(r.euler[[0]], r.euler[[3]])[0] < 1 and _misorientation_deg(r.euler[[0]], r.euler[[1]])[0] > 10
    assert g.shape == (9, 3, 3)


def test_pc_plane_follows_the_beam(master):
    from kikuchi.index import fit_pc_plane
    from kikuchi.simulate.projection import project_patterns

    nr, nc = 6, 6
    rr, cc = np.mgrid[:nr, :nc]
    pcs = np.stack([0.45 + 0.004 * cc, 0.25 + 0.003 * rr, np.full(rr.shape, 0.55)], -1).reshape(-1, 3)
    patterns = project_patterns(master, Detector((60, 60), pcs), _random_euler(36, 2), pc_index=np.arange(36))
    ix = HoughIndexer(["ni"], Detector((60, 60), pcs.mean(axis=0)))
    pc_map, info = fit_pc_plane(ix, patterns, rr.ravel(), cc.ravel(), (nr, nc), blocks=2)
    assert pc_map.shape == (6, 6, 3)
    assert np.abs(pc_map.reshape(-1, 3) - pcs).max() < 0.004
    assert 0.003 < info["plane"]["per_col"][0] < 0.0055 and 0.002 < info["plane"]["per_row"][1] < 0.0045


def test_hexagonal_phase_indexes_back():
    """Ti-alpha (6/mmm): kinematical patterns at known orientations index back (8 families by default)."""
    from kikuchi.crystal import Phase
    from kikuchi.simulate.kinematical import kinematical_master_pattern
    from kikuchi.simulate.projection import project_patterns

    ti = Phase.parse("ti-alpha")
    det = Detector((60, 60), PC)
    euler = _random_euler(16, 11)
    patterns = project_patterns(kinematical_master_pattern(ti), det, euler)
    result = HoughIndexer([ti], det).index(patterns)
    assert len(result.tables[0].family) > 12 and int(result.tables[0].family.max()) == 7
    mis = _misorientation_deg(result.euler, euler, phase="ti-alpha")
    assert result.indexed.mean() >= 15 / 16 and np.median(mis) < 0.5
    assert (mis < 2).mean() >= 15 / 16


def test_index_map_with_pc_plane_and_orientation_map(tmp_path):
    import kikuchi
    from kikuchi.cli._index import accuracy, truth_of
    from kikuchi.simulate import simulate

    path = simulate(tmp_path / "syn.h5", phase="ni", shape=(6, 6), grains=4, noise="low", seed=4, progress=False)
    with kikuchi.open(path) as m:
        indexing = index_map(m, ["ni"], refine_pc="plane", refine_points=36, progress=False)
        truth = truth_of(m)
        true_pc = m.detector.pc_mean
    plane = indexing.settings["pc_refinement"]["plane"]
    assert plane is not None and len(plane["constant"]) == 3
    assert np.abs(indexing.detector.pc_mean - true_pc).max() < 0.01
    omap = indexing.to_orientation_map(format="ang")
    assert omap.nav_shape == (6, 6) and {"bands", "error", "mad", "bc", "bs", "iq", "ci", "fit"} <= set(omap.columns)
    assert omap.header["x-star"] > 0 and len(omap.phases[0].hkl_families) == 5
    acc = accuracy(omap, truth, indexing.phases)
    assert acc["within_2deg"] >= 0.95
    with pytest.raises(ValueError, match="refine_pc must be None, 'mean' or 'plane'"):
        with kikuchi.open(path) as m:
            index_map(m, ["ni"], refine_pc="grid", progress=False)


def test_band_widths_break_ties_between_phases(simulated):
    """The angular band widths follow the Bragg angles of the right phase's reflectors."""
    det, _, patterns = simulated
    ix = HoughIndexer(["ni", "fe-alpha"], det)
    table = ix.detect(patterns[:10])
    widths = ix._angular_widths(table, np.broadcast_to(ix._minv_t, (10, 3, 3)), (60, 60))
    assert all(np.all((w > np.radians(0.5)) & (w < np.radians(15))) for w in widths)
    ni = ix.tables[0]
    assert ni.bragg_angle is not None and np.allclose(np.degrees(ni.bragg_angle[ni.family == 0]), 1.209, atol=0.01)
