"""Our geometry against 9 real Ni patterns (kikuchipy's nickel_ebsd_small.h5).

The file holds per-point pattern centres (Bruker), the static background and
orientations refined by dictionary indexing. Projected master patterns must
correlate with the background-corrected real patterns, and best at the
reference orientation: rotating it by 1 degree about any sample axis lowers
the correlation for every pattern.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

import kikuchi
from kikuchi.geometry import Detector, axis_angle_matrix, euler_to_matrix, matrix_to_euler
from kikuchi.simulate.master import MasterPattern
from kikuchi.simulate.projection import project_patterns
from tests.conftest import shared_file


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


@pytest.fixture(scope="module")
def ni():
    with kikuchi.open(shared_file("kikuchipy/nickel_ebsd_small.h5")) as m:
        patterns = m.read_all().reshape(-1, *m.pattern_shape).astype(np.float64)
        background = m.static_background.astype(np.float64)
        euler = m.euler.reshape(-1, 3)
        detector = Detector.from_map(m)
    signal = patterns - background
    signal = np.array([p - gaussian_filter(p, 10) for p in signal])  # dynamic background
    return signal, euler, detector


def _rotated(euler: np.ndarray, axis: np.ndarray, angle_deg: float) -> np.ndarray:
    # turn the crystal by angle about a sample axis: g' = g R^T
    return matrix_to_euler(euler_to_matrix(euler) @ axis_angle_matrix(axis, np.radians(angle_deg)).T)


def _check(master: MasterPattern, ni, min_ncc: float, min_mean: float) -> list[float]:
    signal, euler, detector = ni
    assert detector.n_pc == 9 and detector.pc_flat.mean(axis=0) == pytest.approx([0.4251, 0.2134, 0.5007], abs=1e-4)
    sims = project_patterns(master, detector, euler)
    nccs = [_ncc(signal[i], sims[i]) for i in range(9)]
    assert min(nccs) >= min_ncc, nccs
    assert np.mean(nccs) >= min_mean, nccs
    for i in range(9):
        turned = np.array([_rotated(euler[i], ax, s) for ax in np.eye(3) for s in (1.0, -1.0)])
        others = project_patterns(master, detector, turned, pc_index=np.full(6, i))
        worse = [_ncc(signal[i], p) for p in others]
        assert max(worse) < nccs[i], (i, nccs[i], worse)
    return nccs


def test_emsoft_master_pattern_matches_real_ni(ni):
    master = MasterPattern.from_emsoft(shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"))
    # measured: 0.38 .. 0.50, mean 0.43
    _check(master, ni, min_ncc=0.35, min_mean=0.40)


def test_kinematical_master_pattern_matches_real_ni(ni):
    kinematical = pytest.importorskip("kikuchi.simulate.kinematical")
    master = kinematical.kinematical_master_pattern("ni", kv=20.0, cache=False)
    # measured: 0.31 .. 0.42, mean 0.36 (the EMsoft master pattern: 0.38 .. 0.50);
    # the orientation test (1 degree about each sample axis) holds for every pattern
    _check(master, ni, min_ncc=0.28, min_mean=0.33)


def test_reference_orientations_are_symmetry_equivalent_to_the_file(ni):
    # ../shared/data/README.md lists the angles reduced to m-3m: same patterns up to interpolation
    signal, euler, detector = ni
    ref = np.radians([(80.21, 32.89, 268.07), (114.07, 28.29, 268.01), (113.53, 28.17, 268.42)])
    master = MasterPattern.from_emsoft(shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"))
    a = project_patterns(master, detector, ref, pc_index=[0, 1, 2])
    b = project_patterns(master, detector, euler[:3], pc_index=[0, 1, 2])
    for x, y in zip(a, b):
        assert _ncc(x, y) > 0.98


@pytest.mark.parametrize(
    ("shape", "camera_tilt_deg"),
    [((60, 60), 0.0), ((48, 60), 8.0)],  # the file's detector; a rectangular, tilted one
)
def test_projection_agrees_with_kikuchipy_pixel_by_pixel(ni, shape, camera_tilt_deg):
    # the EMsoft master pattern at the file's reference orientations and per-pattern PCs (Bruker), projected by
    # kikuchipy 0.13's EBSDMasterPattern.get_patterns (which rescales each pattern to -1..1). Our projection works in
    # float32 lanes (Lambert coordinates within 3e-5 pixel of float64's): measured 1 - NCC below 1e-10 and, rescaled
    # alike, differences below 2e-5 of the range -1..1 for both detectors (1e-6 when it was float64; the uint8
    # master pattern's own step is 8e-3 of that range)
    kp = pytest.importorskip("kikuchipy")  # the optional 'bench' extra
    from orix.quaternion import Rotation

    _, euler, detector = ni
    pcs = detector.pc_flat
    ours_detector = Detector(shape, pcs, sample_tilt_deg=70.0, camera_tilt_deg=camera_tilt_deg)
    path = shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5")
    ours = project_patterns(MasterPattern.from_emsoft(path), ours_detector, euler).astype(np.float64)
    kp_master = kp.load(path, projection="lambert", hemisphere="both", energy=20)
    kp_detector = kp.detectors.EBSDDetector(shape=shape, pc=pcs, sample_tilt=70.0, tilt=camera_tilt_deg, convention="bruker")
    theirs = kp_master.get_patterns(
        Rotation.from_euler(euler), kp_detector, energy=20, dtype_out=np.float64, compute=True, show_progressbar=False
    ).data
    for a, b in zip(ours, theirs):
        assert 1.0 - _ncc(a, b) < 1e-9
        rescaled = 2.0 * (a - a.min()) / (a.max() - a.min()) - 1.0
        assert np.abs(rescaled - b).max() < 4e-5
