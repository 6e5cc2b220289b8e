"""Detector geometry: gnomonic projection, frames, tilts and per-point pattern centres."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.geometry import (
    Detector,
    PatternCentreError,
    axis_angle_matrix,
    crystal_to_sample,
    euler_to_matrix,
    matrix_to_euler,
    sample_to_crystal,
    sample_to_detector_matrix,
)


def test_pattern_centre_pixel_looks_along_the_screen_normal():
    det = Detector((60, 80), (0.25, 0.75, 0.6), sample_tilt_deg=70)
    row, col = 0.75 * 60 - 0.5, 0.25 * 80 - 0.5
    zd = det.rotation[2]
    r, c, vis = det.project(zd)
    assert (float(r), float(c), bool(vis)) == pytest.approx((row, col, True))
    # a pixel of the grid hit exactly at the PC: directions at integer pixels round-trip
    d = det.pixel_directions()
    r, c, vis = det.project(d)
    rr, cc = np.meshgrid(np.arange(60), np.arange(80), indexing="ij")
    np.testing.assert_allclose(r, rr, atol=1e-9)
    np.testing.assert_allclose(c, cc, atol=1e-9)
    assert vis.all()


def test_detector_frame_at_70_degrees():
    r = sample_to_detector_matrix(70.0, 0.0)
    s, c = np.sin(np.radians(70)), np.cos(np.radians(70))
    np.testing.assert_allclose(r, [[0, 1, 0], [-s, 0, c], [c, 0, s]], atol=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    # the screen normal is 20 degrees from the sample normal for a 70 degree tilt and a vertical screen
    assert np.degrees(np.arccos(r[2] @ [0, 0, 1])) == pytest.approx(20.0)
    # camera tilt adds to the angle between screen normal and surface normal... in the opposite sense
    r10 = sample_to_detector_matrix(70.0, 10.0)
    assert np.degrees(np.arccos(r10[2] @ [0, 0, 1])) == pytest.approx(30.0)


def test_gnomonic_distances():
    # the angle between the directions of two pixels equals the gnomonic geometry: tan = distance / DD
    det = Detector((100, 100), (0.5, 0.5, 0.5))
    d = det.pixel_directions()
    centre = det.rotation[2]
    # pixel (50, 99) seen from the PC at (50, 50) pixels from the top-left corner
    ang = np.degrees(np.arccos(d[50, 99] @ centre))
    x = (99 + 0.5) - 50
    y = 50 - 50 - 0.5
    assert ang == pytest.approx(np.degrees(np.arctan(np.hypot(x, y) / 50.0)), abs=1e-9)


def test_per_point_pattern_centres():
    pcs = np.array([[[0.5, 0.5, 0.5], [0.4, 0.5, 0.5]], [[0.5, 0.3, 0.6], [0.5, 0.5, 0.7]]])
    det = Detector((30, 40), pcs)
    assert det.n_pc == 4 and det.pc.shape == (2, 2, 3)
    np.testing.assert_allclose(det.select((1, 0)).pc, [0.5, 0.3, 0.6])
    np.testing.assert_allclose(det.pixel_directions(index=2), det.pixel_directions(index=(1, 0)))
    with pytest.raises(ValueError, match="has 4 pattern centres"):
        det.pixel_directions()
    with pytest.raises(IndexError, match="outside the 2 x 2"):
        det.pixel_directions(index=(2, 0))
    with pytest.raises(IndexError, match="outside 0..3"):
        det.pixel_directions(index=4)
    np.testing.assert_allclose(det.pc_as("edax")[..., 1], 1 - pcs[..., 1])


def test_behind_the_screen_is_invisible():
    det = Detector((60, 60), (0.5, 0.5, 0.5))
    r, c, vis = det.project(-det.rotation[2])
    assert not vis and np.isnan(r) and np.isnan(c)
    r, c, vis = det.project(det.rotation[0] + 0.01 * det.rotation[2])  # far to the right
    assert not vis and c > 60


def test_bad_detector_inputs():
    with pytest.raises(ValueError, match=r"shape must be \(rows, cols\)"):
        Detector(60, (0.5, 0.5, 0.5))
    with pytest.raises(PatternCentreError, match=r"shape \(3,\), \(n, 3\)"):
        Detector((60, 60), (0.5, 0.5))
    with pytest.raises(PatternCentreError, match="must be positive"):
        Detector((60, 60), (0.5, 0.5, 0.0))
    with pytest.raises(PatternCentreError, match="not finite at index"):
        Detector((60, 60), [[0.5, 0.5, 0.5], [np.nan, 0.5, 0.5]])
    with pytest.raises(PatternCentreError, match="pass px_size_um"):
        Detector((60, 60), (10.0, 5.0, 15000.0), convention="emsoft")


def test_orientation_convention_matches_orix():
    from orix.quaternion import Rotation

    e = np.random.default_rng(3).uniform([0, 0, 0], [2 * np.pi, np.pi, 2 * np.pi], (20, 3))
    np.testing.assert_allclose(Rotation.from_euler(e).to_matrix(), euler_to_matrix(e), atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler(euler_to_matrix(e)), e, atol=1e-9)
    # orix: the crystal direction of a sample vector is orientation * vector
    from orix.vector import Vector3d

    v = np.array([0.3, -0.2, 0.9])
    np.testing.assert_allclose((Rotation.from_euler(e[0]) * Vector3d(v)).data[0], sample_to_crystal(v, e[0]), atol=1e-12)


def test_sample_crystal_round_trip_and_broadcasting(rng):
    e = rng.uniform(0, 3, (5, 3))
    v = rng.normal(size=(5, 7, 3))
    c = sample_to_crystal(v, e)
    np.testing.assert_allclose(crystal_to_sample(c, e), v, atol=1e-12)
    np.testing.assert_allclose(c[2], v[2] @ euler_to_matrix(e[2]).T)
    with pytest.raises(ValueError, match="the first axes must agree"):
        sample_to_crystal(rng.normal(size=(4, 3)), e)
    with pytest.raises(ValueError, match=r"3 values \(phi1, Phi, phi2\)"):
        euler_to_matrix([1.0, 2.0])
    # Euler angles at the gimbal lock come back as an equivalent orientation
    g = euler_to_matrix([0.4, 0.0, 0.3])
    np.testing.assert_allclose(euler_to_matrix(matrix_to_euler(g)), g, atol=1e-12)
    np.testing.assert_allclose(axis_angle_matrix([0, 0, 1], 0.5), euler_to_matrix([0.5, 0, 0]).T, atol=1e-12)


def test_from_map(tmp_path):
    from kikuchi.io.mapstore import MapWriter, open_map

    p = tmp_path / "m.h5"
    with MapWriter(p, nav_shape=(2, 3), pattern_shape=(30, 40), dtype="uint8") as w:
        w.write(0, np.zeros((6, 30, 40), np.uint8))
        w.set_pattern_centre(np.linspace(0.4, 0.5, 6), 0.3, 0.6, convention="edax")
        w.set_attrs(SampleTilt=68.0, CameraTilt=5.0, Binning=4, PixelSize=50.0)
    with open_map(p) as m:
        det = Detector.from_map(m)
    assert det.shape == (30, 40) and det.binning == 4 and det.px_size_um == 50.0
    assert det.sample_tilt_deg == 68.0 and det.camera_tilt_deg == 5.0
    assert det.pc.shape == (2, 3, 3)
    np.testing.assert_allclose(det.pc[1, 2], [0.5, 0.7, 0.6], atol=1e-6)


def test_pixel_to_crystal_and_back(rng):
    det = Detector((40, 50), (0.45, 0.35, 0.55), camera_tilt_deg=6.0)
    euler = rng.uniform(0, 3, 3)
    d = det.crystal_directions(euler)
    np.testing.assert_allclose(d, det.pixel_directions() @ euler_to_matrix(euler).T, atol=1e-12)
    r, c, vis = det.project_crystal(d[12, 31], euler)
    assert (float(r), float(c), bool(vis)) == pytest.approx((12.0, 31.0, True))


def test_pixel_matrices_are_the_gnomonic_projection():
    """H @ (col, row, 1) is the pixel direction, for every PC and in both frames; project() inverts it."""
    pcs = np.array([[0.45, 0.3, 0.6], [0.52, 0.25, 0.55]])
    det = Detector((48, 64), pcs, sample_tilt_deg=70, camera_tilt_deg=5, azimuthal_deg=1, twist_deg=2)
    rows, cols = np.mgrid[:48, :64]
    p = np.stack([cols, rows, np.ones_like(rows)], -1).astype(float)
    mats = det.pixel_matrices(frame="sample")
    assert mats.shape == (2, 3, 3)
    for i in range(2):
        u = p @ mats[i].T
        np.testing.assert_allclose(u / np.linalg.norm(u, axis=-1, keepdims=True), det.pixel_directions(i), atol=1e-12)
        np.testing.assert_allclose(det.pixel_matrix(i, frame="sample"), mats[i])
        np.testing.assert_allclose(p @ det.pixel_matrix(i).T, det.detector_vectors(i))
        row, col, vis = det.project(u[7, 11], index=i)
        assert (float(row), float(col), bool(vis)) == (pytest.approx(7.0), pytest.approx(11.0), True)
    with pytest.raises(ValueError, match="frame must be 'detector' or 'sample', got 'crystal'"):
        det.pixel_matrices(frame="crystal")


def test_axis_angle_matrices_broadcast(rng):
    axes = rng.normal(size=(4, 5, 3))
    angles = rng.uniform(-np.pi, np.pi, size=(4, 5))
    many = axis_angle_matrix(axes, angles)
    assert many.shape == (4, 5, 3, 3)
    np.testing.assert_allclose(many[2, 3], axis_angle_matrix(axes[2, 3], angles[2, 3]), atol=1e-14)
    np.testing.assert_allclose(many @ axes[..., None], axes[..., None], atol=1e-12)  # the axis stays put
    with pytest.raises(ValueError, match="rotation axis must be a non-zero 3-vector"):
        axis_angle_matrix([[1.0, 0, 0], [0, 0, 0]], [0.1, 0.2])


# -- per-point PCs from the beam position ------------------------------------------------------------------------


@pytest.mark.parametrize("tilts", [(70.0, 0.0, 0.0, 0.0), (65.0, 8.0, 0.0, 0.0), (70.0, 3.0, 2.0, 1.5)])
def test_extrapolated_pc_sees_the_screen_from_the_moved_source(tilts):
    """The PC of every map point is where the moved source looks perpendicularly at the unmoved screen."""
    sigma, theta, omega, gamma = tilts
    det = Detector((48, 64), (0.46, 0.31, 0.58), sample_tilt_deg=sigma, camera_tilt_deg=theta, azimuthal_deg=omega,
                   twist_deg=gamma, binning=4, px_size_um=30.0)  # fmt: skip
    nav, step = (5, 7), (2.5, 4.0)
    moved = det.extrapolate_pc(nav, step, reference=(1.0, 2.0))
    assert moved.pc.shape == (5, 7, 3)
    np.testing.assert_allclose(moved.pc[1, 2], det.pc, atol=1e-15)  # the reference point keeps the PC
    px = det.px_size_um * det.binning
    screen = det.detector_vectors() * px  # µm from the reference source to each pixel centre, detector frame
    for r, c in [(0, 0), (4, 6), (3, 1), (1, 2)]:
        source = det.rotation @ np.array([-(r - 1.0) * step[0], -(c - 2.0) * step[1], 0.0])  # rows along −x_s, cols along −y_s
        seen = screen - source
        seen /= np.linalg.norm(seen, axis=-1, keepdims=True)
        np.testing.assert_allclose(seen @ det.rotation, moved.pixel_directions((r, c)), atol=1e-12)


def test_extrapolated_pc_matches_kikuchipy():
    """kikuchipy 0.13's EBSDDetector.extrapolate_pc (Singh et al. 2017, appendix A), the optional 'bench' extra."""
    kp = pytest.importorskip("kikuchipy")
    shape, pc, nav, step = (60, 80), np.array([0.42, 0.21, 0.52]), (9, 11), (1.5, 2.0)
    for sigma, theta in [(70.0, 0.0), (68.0, 6.0)]:
        det = Detector(shape, pc, sample_tilt_deg=sigma, camera_tilt_deg=theta, binning=8, px_size_um=59.2)
        theirs = kp.detectors.EBSDDetector(shape=shape, pc=pc, sample_tilt=sigma, tilt=theta, px_size=59.2, binning=8)
        # their reference point is the mean of the positions given with their PCs: one PC, given at the map centre
        expected = theirs.extrapolate_pc(pc_indices=np.array([4, 5]), navigation_shape=nav, step_sizes=step).pc
        np.testing.assert_allclose(det.extrapolate_pc(nav, step).pc, expected, atol=1e-12)


def test_extrapolated_pc_needs_the_pixel_size():
    with pytest.raises(ValueError, match="pixel size"):
        Detector((60, 60), (0.5, 0.3, 0.6)).extrapolate_pc((3, 3), 1.0)
    with pytest.raises(ValueError, match="step_um"):
        Detector((60, 60), (0.5, 0.3, 0.6), px_size_um=50.0).extrapolate_pc((3, 3), -1.0)
