"""Contrast: the documented img_to_uint, CLAHE, local normalisation, circular mask."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.process import circular_mask, clahe, normalize_local, remove_bg, rescale_to_uint
from tests.process.conftest import img_to_uint


@pytest.mark.parametrize(("dtype", "clow", "chigh"), [("uint8", 0.25, 99.75), ("uint16", 0.001, 99.999), ("uint8", 10, 90)])
def test_rescale_equals_documented_img_to_uint(ocean, dtype, clow, chigh):
    raw, bg = ocean
    corrected = remove_bg(raw / bg)
    for img in (corrected, corrected.astype(np.float32)):
        ours = rescale_to_uint(img, dtype=dtype, clow=clow, chigh=chigh)
        assert ours.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(ours, img_to_uint(img, clow, chigh, np.dtype(dtype).type))
    # a stack is stretched pattern by pattern
    stack = np.stack([corrected, 2 * corrected + 5])
    out = rescale_to_uint(stack, dtype=dtype, clow=clow, chigh=chigh)
    np.testing.assert_array_equal(out[1], img_to_uint(stack[1], clow, chigh, np.dtype(dtype).type))
    top = np.iinfo(dtype).max
    assert out.min() == 0 and out.max() == top
    assert (out[0] == 0).mean() == pytest.approx(clow / 100, abs=2e-3)


def test_clahe_and_local_normalisation(ocean):
    raw, _ = ocean
    eq = clahe(raw[::4, ::4])
    assert eq.shape == (60, 80) and 0.0 <= eq.min() and eq.max() <= 1.0
    img = raw.astype(float)
    out = normalize_local(img, size=15)
    # a direct computation at one interior pixel
    win = img[100 - 7 : 100 + 8, 150 - 7 : 150 + 8]
    assert out[100, 150] == pytest.approx((img[100, 150] - win.mean()) / win.std(), rel=1e-5)
    assert abs(float(out.mean())) < 0.1 and 0.3 < float(out.std()) < 1.5


def test_circular_mask():
    m = circular_mask((60, 80))
    assert m.shape == (60, 80) and m[30, 40] and not m[0, 0]
    assert m.sum() == pytest.approx(np.pi * 30**2, rel=0.03)


def test_bad_inputs(ocean):
    raw, _ = ocean
    with pytest.raises(ValueError, match="dtype must be uint8 or uint16, got int32"):
        rescale_to_uint(raw, dtype="int32")
    with pytest.raises(ValueError, match=r"contrast percentiles must satisfy 0 <= clow < chigh <= 100; got clow=90, chigh=10"):
        rescale_to_uint(raw, clow=90, chigh=10)
    with pytest.raises(ValueError, match="mask radius must be > 0, got -1"):
        circular_mask((10, 10), radius=-1)


def _percentiles(x: np.ndarray, clow: float, chigh: float) -> tuple[np.ndarray, np.ndarray]:
    from kikuchi.process._kernels import percentile_pair

    lo, hi = np.empty(len(x)), np.empty(len(x))
    percentile_pair(x, clow / 100, chigh / 100, lo, hi)
    return lo, hi


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["normal", "few levels", "heavy tail", "one value", "NaN", "one NaN", "infinities", "both infinities"])
def test_histogram_percentiles_are_numpys_exactly(rng, dtype, kind):
    """The histogram kernel of the contrast stretch gives numpy.percentile's values, bit for bit."""
    for npix in (1, 2, 5, 63, 64, 65, 130, 3600, 6400, 57600):
        x = {
            "normal": lambda: rng.normal(size=(12, npix)),
            "few levels": lambda: rng.integers(0, 4, size=(12, npix)).astype(float),
            "heavy tail": lambda: rng.exponential(size=(12, npix)) ** 4,
            "one value": lambda: np.full((12, npix), 7.5),
            "NaN": lambda: np.where(np.arange(12)[:, None] % 3 == 0, np.nan, rng.normal(size=(12, npix))),
            "one NaN": lambda: np.where(np.arange(npix) == (np.arange(12)[:, None] * 7919) % npix, np.nan, rng.normal(size=(12, npix))),
            "infinities": lambda: np.where((np.arange(npix) == 0) & (np.arange(12)[:, None] % 2 == 0), np.inf, rng.normal(size=(12, npix))),
            "both infinities": lambda: np.where(np.arange(npix) % 61 == 3, np.inf, np.where(np.arange(npix) % 67 == 5, -np.inf, rng.normal(size=(12, npix)))),
        }[kind]().astype(dtype)
        for clow, chigh in ((0.25, 99.75), (1, 99), (50, 50.5), (33.3, 66.6), (0, 100)):
            lo, hi = _percentiles(x, clow, chigh)
            with np.errstate(invalid="ignore"):
                ref_lo, ref_hi = np.percentile(x, (clow, chigh), axis=1).astype(np.float64)
            np.testing.assert_array_equal(lo, ref_lo, err_msg=f"{kind} {npix} {clow}")
            np.testing.assert_array_equal(hi, ref_hi, err_msg=f"{kind} {npix} {chigh}")
    if kind in ("NaN", "one NaN"):
        assert np.isnan(lo[0]) and (np.isfinite(lo[1]) if kind == "NaN" else np.isnan(lo[1]))


def test_histogram_percentiles_on_adversarial_values():
    """Values crowded into one bin of the histogram but one far outlier: still numpy's ranks."""
    rng = np.random.default_rng(7)
    x = 1.0 + rng.random((4, 3600)) * 1e-9
    x[:, 0] = 1e6  # every other value falls into the first bin
    x[1, :100] = -1e300
    for clow, chigh in ((0.25, 99.75), (10, 90)):
        lo, hi = _percentiles(x, clow, chigh)
        np.testing.assert_array_equal(np.stack([lo, hi]), np.percentile(x, (clow, chigh), axis=1))
