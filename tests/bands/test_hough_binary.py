"""The binary Hough band detection of the xcdskd documentation."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.bands import BUTTERFLY_9X9, detect_bands_binary, hough_peaks, hough_transform_binary, line_endpoints, otsu_binarise
from tests.conftest import shared_file


def _documented_lines(pattern: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 12 lines of the documented example (skimage's hough_line on the flipped binary image), in our convention."""
    from scipy.ndimage import correlate
    from skimage.filters import threshold_otsu
    from skimage.transform import hough_line, hough_line_peaks

    image = np.flipud((pattern > 1.15 * threshold_otsu(pattern)).astype(int))
    h, theta, d = hough_line(image, theta=np.deg2rad(np.linspace(-90, 90, 150)))
    h = correlate(h / h.max(), BUTTERFLY_9X9, mode="nearest")
    a = (h - h.min()) / (h.max() - h.min())
    _, th, dd = hough_line_peaks(a, theta, d, min_distance=10, min_angle=15, threshold=0.5 * a.max(), num_peaks=12)
    # skimage: col cos(t) + (H-1-row) sin(t) = d, origin at the lower left corner; ours: centred, rows down
    rows, cols = pattern.shape
    phi = -th
    rho = dd - (cols - 1) / 2 * np.cos(th) - (rows - 1) / 2 * np.sin(th)
    flip = phi < 0
    return np.where(flip, -rho, rho), np.where(flip, phi + np.pi, phi)


def _line_distance(r1: float, t1: float, r2: np.ndarray, t2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Angle (deg) and rho (px) differences between a line and others, across the theta wrap."""
    dt = np.abs(t2 - t1)
    wrap = dt > np.pi / 2
    dt = np.where(wrap, np.pi - dt, dt)
    dr = np.where(wrap, np.abs(r2 + r1), np.abs(r2 - r1))
    return np.degrees(dt), dr


def test_documented_example_si_pattern():
    import tifffile

    pattern = tifffile.imread(shared_file("xcdskd/Si_img8_binned.tif"))
    assert pattern.shape == (60, 80)
    bands = detect_bands_binary(pattern)
    assert len(bands) == 12  # num_peaks of the example: it draws 12 lines
    ref_rho, ref_theta = _documented_lines(pattern)
    # the documented lines found again within 1.5 degrees and 1 pixel: the 7 strongest and
    # 8 of all 12 (the weakest differ with the rho binning; two documented ones lie on the border)
    found = []
    for r, t in zip(ref_rho, ref_theta):
        dt, dr = _line_distance(r, t, bands.rho, bands.theta)
        k = np.argmin(dt / 1.5 + dr)
        found.append(bool(dt[k] < 1.5 and dr[k] < 1.0))
    assert all(found[:7]), found
    assert sum(found) >= 8, found
    # every band found is a distinct line
    for i in range(12):
        dt, dr = _line_distance(bands.rho[i], bands.theta[i], np.delete(bands.rho, i), np.delete(bands.theta, i))
        assert np.all((dt > 5) | (dr > 5))
    ends = bands.endpoints()
    assert ends.shape == (12, 4) and np.all(np.isfinite(ends))
    assert np.all((ends[:, [0, 2]] >= -0.5 - 1e-9) & (ends[:, [0, 2]] <= 79.5 + 1e-9))
    assert np.all((ends[:, [1, 3]] >= -0.5 - 1e-9) & (ends[:, [1, 3]] <= 59.5 + 1e-9))


def test_hough_transform_counts_line_pixels():
    img = np.zeros((21, 31), dtype=bool)
    img[:, 20] = True  # vertical line: x = 20 - 15 = 5 -> theta 0, rho 5
    acc, theta, rho = hough_transform_binary(img, theta=np.radians([0.0, 45.0, 90.0]))
    assert acc[:, 0].max() == 21 and rho[acc[:, 0].argmax()] == 5.0
    assert acc.sum() == 21 * 3  # every pixel votes once per angle


def test_hough_peaks_wrap_merges_plus_minus_90():
    theta = np.radians(np.linspace(-90, 90, 5))
    rho = np.arange(-10, 11, dtype=float)
    acc = np.zeros((21, 5))
    acc[15, 4] = 2.0  # theta 90, rho 5
    acc[5, 0] = 1.9  # theta -90, rho -5: the same line
    rr, tt = hough_peaks(acc, min_distance=2, min_angle=1, threshold=0.1, theta=theta, rho=rho)
    assert rr.tolist() == [15] and tt.tolist() == [4]
    rr, tt = hough_peaks(acc, min_distance=2, min_angle=1, threshold=0.1)
    assert len(rr) == 2


def test_otsu_binarise_and_errors():
    img = np.zeros((8, 8)); img[:, 4:] = 10
    assert otsu_binarise(img, factor=1.0).sum() == 32
    assert not otsu_binarise(np.ones((4, 4))).any()
    with pytest.raises(ValueError, match="factor must be positive"):
        otsu_binarise(img, factor=0)
    with pytest.raises(ValueError, match="expected one 2-D pattern"):
        otsu_binarise(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="expected one 2-D pattern"):
        detect_bands_binary(np.zeros(5))
    with pytest.raises(ValueError, match="num_peaks >= 1"):
        hough_peaks(np.zeros((3, 3)), num_peaks=0)


def test_line_endpoints_miss_and_diagonal():
    e = line_endpoints(np.array([100.0, 0.0]), np.radians([0.0, 45.0]), (11, 11))
    assert np.all(np.isnan(e[0]))
    x0, y0, x1, y1 = e[1]
    # x + y = 0 through the centre (5, 5): anti-diagonal from corner to corner
    assert sorted([(round(x0, 6), round(y0, 6)), (round(x1, 6), round(y1, 6))]) == [(-0.5, 10.5), (10.5, -0.5)]
