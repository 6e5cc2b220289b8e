"""Band lines -> plane normals through the detector geometry."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.bands._kernels import N_COLS
from kikuchi.geometry import Detector
from kikuchi.index import band_normals, detector_homographies, homography_from_directions


def test_homography_reproduces_pixel_directions():
    det = Detector((48, 64), (0.45, 0.3, 0.6), sample_tilt_deg=70, camera_tilt_deg=5)
    d = det.pixel_directions()
    m = homography_from_directions(d)
    rows, cols = np.mgrid[:48, :64]
    u = np.einsum("ij,rcj->rci", m, np.stack([cols, rows, np.ones_like(rows)], -1).astype(float))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    np.testing.assert_allclose(u, d, atol=1e-9)


def test_band_line_gives_the_plane_normal():
    """The trace of a plane on the screen, fitted as a line, returns that plane's normal."""
    det = Detector((60, 60), (0.5, 0.25, 0.55))
    rng = np.random.default_rng(1)
    d = det.pixel_directions()
    for _ in range(5):
        n = rng.normal(size=3)
        n /= np.linalg.norm(n)
        # directions in the plane: pixels where d . n ~ 0
        t = np.linspace(0, 2 * np.pi, 2000)
        a = np.cross(n, [1.0, 0, 0]); a /= np.linalg.norm(a)
        b = np.cross(n, a)
        v = np.cos(t)[:, None] * a + np.sin(t)[:, None] * b
        row, col, vis = det.project(v)
        if vis.sum() < 10:
            continue
        x, y = col[vis] - 29.5, row[vis] - 29.5
        # Hesse form of the (straight) trace from two far-apart points
        p0, p1 = np.array([x[0], y[0]]), np.array([x[-1], y[-1]])
        normal2d = np.array([-(p1 - p0)[1], (p1 - p0)[0]]); normal2d /= np.linalg.norm(normal2d)
        theta = np.arctan2(normal2d[1], normal2d[0]) % np.pi
        rho = x[0] * np.cos(theta) + y[0] * np.sin(theta)
        table = np.zeros((1, N_COLS)); table[0, :2] = rho, theta; table[0, -1] = 1
        got = band_normals(table, detector_homographies(det), (60, 60))[0][0]
        assert abs(abs(got @ n) - 1) < 1e-9
        assert np.allclose(d[30, 30] @ n, d[30, 30] @ got * np.sign(got @ n))


def test_many_pattern_centres_match_the_direct_estimate():
    rr, cc = np.mgrid[:20, :30]
    pcs = np.stack([0.45 + 0.0004 * cc, 0.25 + 0.0003 * rr, 0.55 - 0.0002 * rr], -1)
    det = Detector((40, 50), pcs)
    m = detector_homographies(det)
    assert m.shape == (600, 3, 3)
    for i in (0, 377, 599):
        d = np.linalg.inv(homography_from_directions(det.pixel_directions(i))).T
        a, b = m[i] / np.linalg.norm(m[i]), d / np.linalg.norm(d)
        assert np.allclose(a, b, atol=1e-9) or np.allclose(a, -b, atol=1e-9)


def test_per_point_pattern_centres():
    pcs = np.array([[0.5, 0.25, 0.55], [0.52, 0.2, 0.6]])
    det = Detector((30, 30), pcs)
    m = detector_homographies(det, n_points=2)
    assert m.shape == (2, 3, 3) and not np.allclose(m[0] / m[0, 2, 2], m[1] / m[1, 2, 2])
    with pytest.raises(ValueError, match="2 pattern centres for 5 map points"):
        detector_homographies(det, n_points=5)
    with pytest.raises(ValueError, match=r"expected \(h, w, 3\) directions"):
        homography_from_directions(np.zeros((3, 3)))
