"""Band centre lines and zone axes agree with projected patterns; rotations about the PC axis rotate the pattern."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from kikuchi.geometry import Detector, axis_angle_matrix, euler_to_matrix, matrix_to_euler
from kikuchi.simulate.geometric import band_lines, zone_axes
from kikuchi.simulate.lambert import lambert_grid_vectors
from kikuchi.simulate.master import MasterPattern
from kikuchi.simulate.projection import project_patterns

SIGMA = 0.02  # band half-width (rad) of the synthetic master patterns
GRID = lambert_grid_vectors(401)
EULER = np.radians([35.0, 42.0, 17.0])
DET = Detector((90, 120), (0.46, 0.31, 0.58), sample_tilt_deg=70.0, camera_tilt_deg=4.0)
CUBIC = np.eye(3) * 0.36


def _band_master(normal: np.ndarray) -> MasterPattern:
    n = normal / np.linalg.norm(normal)
    return MasterPattern(np.exp(-((GRID[0] @ n) ** 2) / (2 * SIGMA**2)), np.exp(-((GRID[1] @ n) ** 2) / (2 * SIGMA**2)), kv=20)


def _profile(image: np.ndarray, seg, offsets: np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = seg
    t = np.linspace(0.1, 0.9, 80)
    xs, ys = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
    nx, ny = -(y1 - y0), x1 - x0
    nx, ny = nx / np.hypot(nx, ny), ny / np.hypot(nx, ny)
    return np.array([map_coordinates(image, [ys + d * ny, xs + d * nx], order=1, mode="nearest").mean() for d in offsets])


@pytest.mark.parametrize("hkl", [(1, 0, 0), (1, 1, 0), (1, -3, 1), (1, -2, 3), (0, 2, -1), (0, 3, 1)])
def test_band_centre_lines_follow_the_simulated_bands(hkl):
    lines = band_lines(DET, EULER, [hkl], direct_matrix=CUBIC)
    if not lines:
        pytest.skip(f"{hkl} does not cross this detector")
    ((got_hkl, seg),) = lines
    assert got_hkl == hkl
    pattern = project_patterns(_band_master(np.array(hkl, float)), DET, EULER)[0]
    offsets = np.linspace(-3, 3, 61)
    prof = _profile(pattern, seg, offsets)
    assert prof[30] > 0.9  # the line runs along the band crest (bilinear sampling of a ~1 px wide band)
    weight = prof - prof.min()
    centre = float((weight * offsets).sum() / weight.sum())  # centroid of the cross-band profile
    assert abs(centre) <= 0.1, centre
    # and nowhere else on the detector is the band
    far = np.abs(_profile(pattern, seg, np.array([-25.0, 25.0])))
    assert np.all(far < 0.05)


def test_every_visible_band_is_found_and_invisible_ones_are_not():
    hkl = np.array([(h, k, l) for h in range(-2, 3) for k in range(-2, 3) for l in range(0, 3) if (h, k, l) > (0, 0, 0)])
    lines = dict(band_lines(DET, EULER, hkl, direct_matrix=CUBIC))
    d = DET.pixel_directions()
    g = euler_to_matrix(EULER)
    for row in hkl:
        n = row @ np.linalg.inv(CUBIC).T
        n_sample = g.T @ (n / np.linalg.norm(n))
        dots = d @ n_sample  # sign change across the pattern <=> the trace crosses it
        crosses = dots.min() < 0 < dots.max()
        assert crosses == (tuple(row) in lines), row


def test_zone_axes_lie_on_the_bands_of_their_zone():
    refl = [(1, 1, 1), (1, -1, 1), (0, 0, 2), (0, 2, 0), (2, 0, 0), (2, 2, 0), (2, -2, 0), (2, 0, 2), (0, 2, 2), (1, 1, 3)]
    lines = dict(band_lines(DET, EULER, refl, direct_matrix=CUBIC))
    axes = zone_axes(DET, EULER, refl, direct_matrix=CUBIC, max_index=3)
    assert axes
    for uvw, (x, y) in axes:
        for hkl, (x0, y0, x1, y1) in lines.items():
            if np.dot(uvw, hkl) == 0:  # the plane contains the axis: its trace passes through it
                dist = abs((x1 - x0) * (y0 - y) - (x0 - x) * (y1 - y0)) / np.hypot(x1 - x0, y1 - y0)
                assert dist < 1e-6, (uvw, hkl, dist)


def test_with_reflectors_of_a_phase():
    crystal = pytest.importorskip("kikuchi.crystal")
    refl = crystal.reflectors("ni", kv=20.0, n=20)
    lines = band_lines(DET, EULER, refl)
    plain = band_lines(DET, EULER, refl.hkl, direct_matrix=refl.phase.direct_matrix)
    assert [h for h, _ in lines] == [h for h, _ in plain] and len(lines) > 3
    assert zone_axes(DET, EULER, refl)


def test_rotation_about_the_screen_normal_rotates_the_pattern_about_the_pc():
    # turning the crystal by +w about z_d (the direction from the source point to the PC)
    # turns the pattern by +w about the PC, counter-clockwise on the screen seen from behind it
    rng = np.random.default_rng(0)
    v = GRID
    f = lambda u: np.sin(7 * u[..., 0]) + np.cos(5 * u[..., 1] + 3 * u[..., 2]) + u[..., 0] * u[..., 1]  # noqa: E731
    master = MasterPattern(f(v[0]), f(v[1]), kv=20)
    det = Detector((80, 80), (0.5, 0.45, 0.6))
    euler = rng.uniform(0, 1, 3)
    w = np.radians(15.0)
    turned = matrix_to_euler(euler_to_matrix(euler) @ axis_angle_matrix(det.rotation[2], w).T)
    a, b = project_patterns(master, det, np.stack([euler, turned]))
    # pixel (row, col) of b shows what pixel rotated by -w about the PC shows in a
    h, wd = det.shape
    pc_col, pc_row = det.pc[0] * wd - 0.5, det.pc[1] * h - 0.5
    rows, cols = np.mgrid[0:h, 0:wd].astype(float)
    x, y = cols - pc_col, pc_row - rows  # screen coordinates, y up
    xr = np.cos(-w) * x - np.sin(-w) * y
    yr = np.sin(-w) * x + np.cos(-w) * y
    src_r, src_c = pc_row - yr, pc_col + xr
    inside = (src_r > 1) & (src_r < h - 2) & (src_c > 1) & (src_c < wd - 2)
    expected = map_coordinates(a, [src_r, src_c], order=1)
    assert np.abs(expected - b)[inside].max() < 0.05 * np.ptp(a)
    assert np.abs(a - b)[inside].mean() > 0.1 * np.ptp(a)  # and the pattern did change


def test_bad_inputs():
    with pytest.raises(ValueError, match="need direct_matrix"):
        band_lines(DET, EULER, [[1, 0, 0]])
    with pytest.raises(ValueError, match=r"\(n, 3\) Miller indices"):
        band_lines(DET, EULER, [[1, 0]])
    with pytest.raises(ValueError, match=r"\(0 0 0\) has no plane normal"):
        band_lines(DET, EULER, [[0, 0, 0]], direct_matrix=CUBIC)
    with pytest.raises(ValueError, match="needs reflectors or uvw"):
        zone_axes(DET, EULER)
    with pytest.raises(ValueError, match="pass Reflectors with a phase, or direct_matrix"):
        zone_axes(DET, EULER, uvw=[[1, 0, 0]])


def test_kinematical_ni_bands_are_symmetric_about_their_centre_lines():
    kinematical = pytest.importorskip("kikuchi.simulate.kinematical")
    crystal = pytest.importorskip("kikuchi.crystal")
    master = kinematical.kinematical_master_pattern("ni", kv=20.0, cache=False)
    refl = crystal.reflectors("ni", kv=20.0, n=14)  # {111} and {200}
    pattern = project_patterns(master, DET, EULER)[0].astype(float)
    offsets = np.linspace(-6, 6, 121)
    checked = 0
    for hkl, seg in band_lines(DET, EULER, refl):
        if sorted(abs(v) for v in hkl) not in ([1, 1, 1], [0, 0, 2]) or np.hypot(seg[2] - seg[0], seg[3] - seg[1]) < 60:
            continue  # strong bands, long enough that the profile is not dominated by crossing bands
        prof = _profile(pattern, seg, offsets)
        assert np.abs(prof - prof[::-1]).max() < 0.05 * np.ptp(prof), hkl
        checked += 1
    assert checked >= 3
