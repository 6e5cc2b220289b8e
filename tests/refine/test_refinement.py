"""Refinement of orientation and pattern centre by NCC against projected master patterns."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.geometry import Detector, axis_angle_matrix, euler_to_matrix, matrix_to_euler
from kikuchi.refine import ncc, normalize_patterns, pseudo_symmetry_operators, refine_patterns
from kikuchi.simulate import kinematical_master_pattern, project_patterns


def _misorientation_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between orientations without symmetry (the refinement never leaves the start's neighbourhood)."""
    ga, gb = euler_to_matrix(a), euler_to_matrix(b)
    tr = np.einsum("...ij,...ij->...", ga, gb)
    return np.degrees(np.arccos(np.clip((tr - 1) / 2, -1, 1)))


@pytest.fixture(scope="module")
def ni_master():
    return kinematical_master_pattern("ni", kv=20.0, size=301)


def test_ncc_of_identical_patterns_is_one_and_invariant_to_contrast(rng):
    p = rng.random((5, 40, 50))
    assert np.allclose(ncc(p, p), 1.0)
    assert np.allclose(ncc(p, 2.5 * p - 7), 1.0)
    assert np.allclose(ncc(p, -p), -1.0)
    mask = np.zeros((40, 50), bool)
    mask[5:30, 10:40] = True
    q = p.copy()
    q[:, ~mask] = rng.random(int((~mask).sum()))  # differences outside the mask do not count
    assert np.allclose(ncc(p, q, mask), 1.0)
    e = normalize_patterns(p, mask)
    assert np.allclose(e[:, mask].sum(axis=1), 0, atol=1e-5) and np.allclose((e * e).sum(axis=(1, 2)), 1, atol=1e-5)
    assert np.all(e[:, ~mask] == 0)


def test_ncc_refuses_patterns_of_other_shapes():
    with pytest.raises(ValueError, match="same \\(h, w\\)"):
        ncc(np.zeros((4, 5)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="signal mask keeps 0 pixels"):
        ncc(np.ones((4, 5)), np.ones((4, 5)), np.zeros((4, 5), bool))


def test_kernel_ncc_equals_numpy_ncc(ni_master):
    det = Detector((50, 60), (0.45, 0.3, 0.6))
    euler = np.radians([[10.0, 30.0, 70.0], [100.0, 20.0, 5.0]])
    sims = project_patterns(ni_master, det, euler)
    res = refine_patterns(sims[0], ni_master, det, euler[1], max_evaluations=1, restarts=0)
    assert res.ncc_start[0] == pytest.approx(ncc(sims[0], sims[1]), abs=1e-5)


def test_orientation_and_pc_refine_back_to_the_truth(ni_master):
    truth_pc = np.array([0.48, 0.31, 0.62])
    truth = np.radians([[35.0, 42.0, 58.0]])
    det = Detector((80, 80), truth_pc)
    pattern = project_patterns(ni_master, det, truth)
    # 1.5 degrees off about a sample axis, the PC 0.01 off in each component
    start = matrix_to_euler(euler_to_matrix(truth) @ axis_angle_matrix([1.0, 2.0, 0.5], np.radians(1.5)).T)
    assert _misorientation_deg(start, truth)[0] == pytest.approx(1.5, abs=1e-6)
    res = refine_patterns(pattern, ni_master, det.with_pc(truth_pc + [0.01, -0.01, 0.01]), start, refine="both", trust_region_deg=3.0)
    assert _misorientation_deg(res.euler, truth)[0] < 0.05
    assert np.abs(res.pc[0] - truth_pc).max() < 0.001
    assert res.ncc[0] > 0.999 and res.ncc_start[0] < 0.9


def test_orientation_only_and_pc_only(ni_master):
    truth_pc = np.array([0.5, 0.25, 0.58])
    truth = np.radians([[200.0, 30.0, 10.0]])
    det = Detector((60, 70), truth_pc)
    pattern = project_patterns(ni_master, det, truth)
    start = matrix_to_euler(euler_to_matrix(truth) @ axis_angle_matrix([0.0, 0.0, 1.0], np.radians(2.0)).T)
    res = refine_patterns(pattern, ni_master, det, start, refine="orientation", trust_region_deg=3.0)
    assert _misorientation_deg(res.euler, truth)[0] < 0.05
    assert np.array_equal(res.pc[0], truth_pc)  # not refined: as given
    res = refine_patterns(pattern, ni_master, det.with_pc(truth_pc - 0.01), truth, refine="pc")
    assert np.abs(res.pc[0] - truth_pc).max() < 0.001
    assert _misorientation_deg(res.euler, truth)[0] < 1e-9


def test_trust_region_bounds_the_change(ni_master):
    det = Detector((40, 40), (0.5, 0.3, 0.6))
    truth = np.radians([[35.0, 42.0, 58.0]])
    pattern = project_patterns(ni_master, det, truth)
    start = matrix_to_euler(euler_to_matrix(truth) @ axis_angle_matrix([0.0, 0.0, 1.0], np.radians(3.0)).T)
    res = refine_patterns(pattern, ni_master, det, start, trust_region_deg=1.0)
    moved = _misorientation_deg(res.euler, start)[0]
    assert moved <= 1.0 * np.sqrt(3) + 1e-6
    assert _misorientation_deg(res.euler, truth)[0] > 1.5


def test_pseudo_symmetry_variant_wins_where_the_start_is_the_variant(ni_master):
    det = Detector((60, 60), (0.5, 0.3, 0.6))
    truth = np.radians([[35.0, 42.0, 58.0]])
    pattern = project_patterns(ni_master, det, truth)
    ops = pseudo_symmetry_operators("1,1,1:30")
    start = matrix_to_euler(ops[0].T @ euler_to_matrix(truth))  # the start is the 30 degree variant of the truth
    res = refine_patterns(pattern, ni_master, det, start, pseudo_symmetry=ops)
    assert res.variant[0] == 1 and _misorientation_deg(res.euler, truth)[0] < 0.05
    with pytest.raises(ValueError, match="U,V,W:ANGLE_DEG"):
        pseudo_symmetry_operators("1,1,1")


def test_candidate_starts_are_screened_and_the_best_refinement_kept(ni_master):
    det = Detector((40, 40), (0.5, 0.3, 0.6))
    truth = np.radians([[35.0, 42.0, 58.0], [10.0, 20.0, 30.0], [120.0, 50.0, 80.0]])
    pattern = project_patterns(ni_master, det, truth)
    near = truth + np.radians([1.0, -1.5, 1.0])  # within the trust region of the truth
    far = [truth + np.radians([30.0, 20.0, 0.0]), truth + np.radians([0.0, 25.0, 40.0])]
    cand = np.stack([far[0], near, far[1]], axis=1)  # pattern 0: its orientation is candidate 1
    cand[1] = [near[1], far[0][1], far[1][1]]  # pattern 1: candidate 0
    cand[2] = [far[0][2], np.full(3, np.nan), near[2]]  # pattern 2: candidate 2; candidate 1 is skipped
    res = refine_patterns(pattern, ni_master, det, cand)
    assert res.candidate.tolist() == [1, 0, 2]
    assert np.all(_misorientation_deg(res.euler, truth) < 0.05) and np.all(res.ncc > 0.999)
    assert res.settings["candidates"] == 3 and res.settings["finalists"] == 2 and res.settings["screen_evaluations"] == 20
    one = refine_patterns(pattern, ni_master, det, near)
    # the screening (20 projections per candidate) and a second finalist cost more than the one refinement
    assert np.all(res.evaluations >= one.evaluations + 2 * 20)
    assert np.allclose(res.ncc, one.ncc, atol=1e-6)
    # one candidate per pattern is the plain refinement
    single = refine_patterns(pattern, ni_master, det, near[:, None])
    assert np.array_equal(single.euler, one.euler) and single.candidate.tolist() == [0, 0, 0]
    # one finalist: the best screened candidate alone is refined in full
    lone = refine_patterns(pattern, ni_master, det, cand, finalists=1)
    assert lone.candidate.tolist() == [1, 0, 2] and np.all(lone.evaluations < res.evaluations)
    with pytest.raises(ValueError, match=r"euler_rad\[0\] is not finite"):
        refine_patterns(pattern, ni_master, det, np.stack([np.full((3, 3), np.nan), near], axis=1))
    with pytest.raises(ValueError, match=r"candidates must be \(n, k, 3\) with n = 3 patterns, got shape \(2, 2, 3\)"):
        refine_patterns(pattern, ni_master, det, cand[:2, :2])
    with pytest.raises(ValueError, match="screen_evaluations must be a whole number >= 1, got 0"):
        refine_patterns(pattern, ni_master, det, cand, screen_evaluations=0)
    with pytest.raises(ValueError, match="finalists must be a whole number >= 1, got 0"):
        refine_patterns(pattern, ni_master, det, cand, finalists=0)


def test_threads_give_the_serial_result(ni_master):
    det = Detector((40, 40), (0.5, 0.3, 0.6))
    truth = np.radians([[35.0, 42.0, 58.0], [10.0, 20.0, 30.0], [120.0, 50.0, 80.0], [300.0, 10.0, 5.0]])
    pattern = project_patterns(ni_master, det, truth)
    a = refine_patterns(pattern, ni_master, det, truth + 0.01, workers=1)
    b = refine_patterns(pattern, ni_master, det, truth + 0.01, workers=3)
    assert np.array_equal(a.euler, b.euler) and np.array_equal(a.ncc, b.ncc)


def test_bad_inputs_say_what_is_wrong(ni_master):
    det = Detector((40, 40), (0.5, 0.3, 0.6))
    p = np.zeros((2, 40, 40))
    with pytest.raises(ValueError, match="refine must be one of orientation, pc, both"):
        refine_patterns(p, ni_master, det, np.zeros((2, 3)), refine="everything")
    with pytest.raises(ValueError, match="do not fit the 40 x 40 detector"):
        refine_patterns(np.zeros((2, 30, 40)), ni_master, det, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one orientation \\(3 angles\\) per pattern"):
        refine_patterns(p, ni_master, det, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="trust_region_deg must be a positive number"):
        refine_patterns(p, ni_master, det, np.zeros((2, 3)), trust_region_deg=0)
    with pytest.raises(TypeError, match="master must be a MasterPattern"):
        refine_patterns(p, "ni", det, np.zeros((2, 3)))


#: ../shared/data/README.md: the reference orientations of the 9 Ni patterns (dictionary indexing + refinement).
NI_REFERENCE_DEG = [
    (80.21, 32.89, 268.07), (114.07, 28.29, 268.01), (113.53, 28.17, 268.42), (80.37, 32.77, 267.87), (113.57, 27.98, 268.38),
    (113.03, 27.88, 268.74), (80.27, 33.21, 268.06), (112.97, 27.80, 268.58), (114.34, 28.22, 267.87),
]  # fmt: skip


def test_candidates_in_the_basin_of_a_better_one_are_skipped(ni_master):
    """A candidate within distinct_deg of a better-ranked one is not screened; the answer is the same, for fewer projections."""
    det = Detector((40, 40), (0.5, 0.3, 0.6))
    truth = np.radians([[30.0, 40.0, 50.0], [100.0, 20.0, 10.0]])
    patterns = project_patterns(ni_master, det, truth)
    near = [truth + np.radians(d) for d in ([1.0, 0.5, 0.0], [1.5, -0.5, 0.5], [-1.0, 1.0, 0.5])]
    far = truth + np.radians([40.0, 20.0, 0.0])
    starts = np.stack([near[0], near[1], far, near[2]], axis=1)  # two near duplicates of the first, one far
    every = refine_patterns(patterns, ni_master, det, starts, distinct_deg=0.0, workers=1)
    fewer = refine_patterns(patterns, ni_master, det, starts, workers=1)  # default: the trust region, 2 degrees
    assert every.settings["candidates_screened"] == 8 and fewer.settings["candidates_screened"] == 4
    assert np.all(fewer.evaluations < every.evaluations)
    np.testing.assert_allclose(fewer.ncc, every.ncc, atol=1e-5)  # another finalist may end a hair apart
    assert np.all(fewer.ncc > 0.999)
