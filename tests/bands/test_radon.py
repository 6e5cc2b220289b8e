"""Grey-level Radon band detection: positions, widths, stacks, masks, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.bands import BandDetector, butterfly_kernels, detect_bands, detect_bands_stack
from tests.conftest import shared_file


def _band_image(shape, lines, *, sigma=1.5, noise=0.0, rng=None):
    """Sum of Gaussian-profile bright bands ``(rho, theta_deg)`` in our line convention."""
    h, w = shape
    rows, cols = np.mgrid[:h, :w]
    x, y = cols - (w - 1) / 2, rows - (h - 1) / 2
    img = np.zeros(shape)
    for rho, theta in lines:
        t = np.radians(theta)
        d = x * np.cos(t) + y * np.sin(t) - rho
        img += np.exp(-0.5 * (d / sigma) ** 2)
    if noise:
        img += noise * rng.standard_normal(shape)
    return img.astype(np.float32)


def _match(bands, rho, theta_deg):
    t = np.radians(theta_deg)
    dt = np.abs(bands.theta - t)
    wrap = dt > np.pi / 2
    dt = np.where(wrap, np.pi - dt, dt)
    dr = np.where(wrap, np.abs(bands.rho + rho), np.abs(bands.rho - rho))
    k = np.argmin(np.degrees(dt) + dr)
    return np.degrees(dt[k]), dr[k]


def test_subpixel_positions_of_known_bands(rng):
    lines = [(3.3, 17.0), (-11.6, 71.3), (8.2, 128.4), (-2.7, 163.9)]
    img = _band_image((60, 60), lines, noise=0.1, rng=rng)
    bands = detect_bands(img, n_bands=4)
    assert len(bands) == 4
    for rho, theta in lines:
        dt, dr = _match(bands, rho, theta)
        assert dt < 0.6 and dr < 0.35, (rho, theta, dt, dr)
    assert np.all(np.diff(bands.intensity) <= 0)  # strongest first
    assert np.all((bands.theta >= 0) & (bands.theta < np.pi))


def test_width_grows_with_band_width():
    narrow = detect_bands(_band_image((80, 80), [(0.0, 40.0)], sigma=1.0), n_bands=1)
    wide = detect_bands(_band_image((80, 80), [(0.0, 40.0)], sigma=3.0), n_bands=1)
    assert wide.width[0] > narrow.width[0] > 0


def test_stack_equals_single_and_threads(rng):
    imgs = np.stack([_band_image((48, 64), [(rng.uniform(-10, 10), rng.uniform(0, 180))] * 1 + [(rng.uniform(-10, 10), rng.uniform(0, 180))], noise=0.2, rng=rng) for _ in range(7)])
    det = BandDetector((48, 64), n_bands=3)
    table = det.detect_stack(imgs, block=2)
    threaded = det.detect_stack(imgs, workers=2, block=2)
    np.testing.assert_array_equal(table, threaded)
    for i in range(7):
        single = det.detect(imgs[i])
        np.testing.assert_allclose(single.rho, det.bands_from_table(table[i]).rho)
    listed = detect_bands_stack(imgs, n_bands=3)
    assert len(listed) == 7 and np.allclose(listed[3].theta, single.theta if i == 3 else listed[3].theta)


def test_stack_with_filtered_transforms(rng):
    imgs = np.stack([_band_image((48, 64), [(rng.uniform(-10, 10), rng.uniform(0, 180))], noise=0.2, rng=rng) for _ in range(5)])
    det = BandDetector((48, 64), n_bands=3)
    table, filtered = det.detect_stack_filtered(imgs)
    np.testing.assert_array_equal(table, det.detect_stack(imgs))
    assert filtered.shape == (5, det.n_theta, det.rho_bins.size) and filtered.dtype == np.float32
    np.testing.assert_array_equal(filtered[2], det.transform(imgs[2])[1].T)
    assert det.searched.shape == filtered.shape[1:] and not filtered[:, ~det.searched].any()
    with pytest.raises(ValueError, match=r"expected patterns of shape \(n, 48, 64\), got \(48, 64\)"):
        det.detect_stack_filtered(imgs[0])


def test_mask_restricts_to_the_circle():
    det = BandDetector((40, 60))
    assert det.mask.sum() < 40 * 60 and det.mask[20, 30] and not det.mask[0, 0]
    full = BandDetector((40, 60), mask=None)
    assert full.mask.all()
    custom = np.zeros((40, 60), bool); custom[5:35, 10:50] = True
    assert BandDetector((40, 60), mask=custom).mask.sum() == 30 * 40
    assert len(detect_bands_stack(np.stack([_band_image((40, 60), [(2.0, 30.0)])] * 2), mask=custom, n_bands=1)) == 2
    # a bright corner outside the circle is not a band
    img = _band_image((40, 60), [(5.0, 60.0)])
    img[:6, :6] += 20
    b = det.detect(img)
    dt, dr = _match(b, 5.0, 60.0)
    assert dt < 1 and dr < 0.5


def test_flat_pattern_has_no_bands():
    assert len(detect_bands(np.full((32, 32), 7.0))) == 0


def test_transform_shapes():
    det = BandDetector((30, 30), n_theta=60)
    radon, filt = det.transform(np.random.default_rng(0).random((30, 30)))
    assert radon.shape == filt.shape == (det.rho_bins.size, 60)
    assert det.theta_bins[0] == 0 and det.theta_bins[-1] < np.pi


def test_butterfly_kernels_sum():
    kr, kt = butterfly_kernels(2.0, 1.5)
    assert abs(kr.sum()) < 1e-6 and abs(kt.sum() - 1) < 1e-6 and kr.argmax() == kr.size // 2


def test_bad_input_messages():
    with pytest.raises(ValueError, match="both at least 8 pixels"):
        BandDetector((4, 60))
    with pytest.raises(ValueError, match="mask must be 'circle'"):
        BandDetector((30, 30), mask="square")
    with pytest.raises(ValueError, match="mask shape"):
        BandDetector((30, 30), mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="min_line_fraction"):
        BandDetector((30, 30), min_line_fraction=1.5)
    with pytest.raises(ValueError, match=r"expected patterns of shape \(n, 30, 30\)"):
        BandDetector((30, 30)).detect_stack(np.zeros((2, 20, 20)))
    with pytest.raises(ValueError, match="expected one 2-D pattern"):
        detect_bands(np.zeros((2, 30, 30)))
    with pytest.raises(ValueError, match="sigmas must be positive"):
        butterfly_kernels(0, 1)


def test_real_si_pattern_strong_bands_found():
    """The grey-level detector finds the strongest bands of the documented example too."""
    import tifffile

    from kikuchi.bands import detect_bands_binary

    p = tifffile.imread(shared_file("xcdskd/Si_img8_binned.tif"))
    ref = detect_bands_binary(p)
    grey = detect_bands(p, n_bands=9)
    hits = 0
    for r, t in zip(ref.rho[:5], ref.theta[:5]):
        dt, dr = _match(grey, r, np.degrees(t))
        hits += dt < 2.5 and dr < 1.5
    assert hits >= 4  # the 6th lies outside the circular mask of this 80 x 60 pattern
