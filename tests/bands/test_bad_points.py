"""Band detection on patterns without signal: no bands (never a division by zero); clear errors for misuse."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.bands import BandDetector, detect_bands, detect_bands_binary, detect_bands_stack, hough_peaks, hough_transform_binary, line_endpoints


@pytest.mark.parametrize(
    "pattern",
    [np.zeros((40, 40)), np.full((40, 40), 255, np.uint8), np.full((40, 40), 117.0), np.full((40, 40), np.nan), np.full((40, 40), np.inf)],
    ids=["zero", "saturated", "constant", "nan", "inf"],
)
def test_no_bands_in_a_pattern_without_signal(pattern):
    assert len(detect_bands(pattern)) == 0
    assert len(detect_bands_binary(pattern)) == 0


def test_one_bad_pixel_and_stacks():
    rng = np.random.default_rng(2)
    img = np.zeros((40, 40), np.float32)
    img[18:22, :] = 1.0
    img += 0.05 * rng.standard_normal(img.shape).astype(np.float32)
    holed = img.copy()
    holed[3, 3] = np.nan
    assert len(detect_bands(img)) >= 1 and len(detect_bands(holed)) == 0
    stack = np.stack([img, holed, np.zeros_like(img), img])
    table = BandDetector((40, 40)).detect_stack(stack)
    assert (table[:, :, 5].sum(axis=1) > 0).tolist() == [True, False, False, True]
    np.testing.assert_array_equal(table[0], table[3])  # the good ones as alone
    assert np.isnan(stack[1, 3, 3]) and not stack[2].any()  # the caller's stack is left as it was
    assert len(detect_bands_stack(np.zeros((0, 40, 40)))) == 0


def test_a_flat_accumulator_has_no_peak():
    r, t = hough_peaks(np.zeros((20, 30)))
    assert r.size == 0 and t.size == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: detect_bands(np.zeros((40, 40)), sharpness=2), "detect_bands: unknown band detection option sharpness; the options are n_bands, n_theta"),
        (lambda: detect_bands(np.full((40, 40), "a")), "BandDetector: patterns must be numbers, got dtype <U1"),
        (lambda: detect_bands(np.zeros((40, 40)), threshold=float("nan")), r"BandDetector: need 0 <= threshold <= 1"),
        (lambda: BandDetector((40, 40)).detect_stack(np.zeros((2, 40, 40)), block=0), "block and workers must be whole numbers >= 1, got 0, 1"),
        (lambda: detect_bands_binary(np.zeros((40, 40)), n_theta=0), "detect_bands_binary: n_theta must be at least 2, got 0"),
        (lambda: hough_transform_binary(np.ones((8, 8), bool), rho_step=0), "hough_transform_binary: rho_step must be a positive number of pixels, got 0"),
        (lambda: hough_peaks(np.full((5, 5), np.nan)), r"hough_peaks: the accumulator holds values that are not finite \(NaN or infinite\)"),
        (lambda: hough_peaks(np.ones((5, 5)), theta=np.zeros(3), rho=np.zeros(3)), r"hough_peaks: 3 rho and 3 theta bins do not fit an accumulator of shape \(5, 5\)"),
        (lambda: line_endpoints(np.zeros(2), np.zeros(3), (5, 5)), r"line_endpoints: rho \(2,\) and theta \(3,\) must be two 1-D arrays of the same length"),
    ],
)
def test_misuse_gets_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
