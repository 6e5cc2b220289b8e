"""Static and dynamic background: the documented formulas on real patterns."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.process import (
    gaussian_lowpass,
    make_signal_bg,
    partition_static_background,
    remove_bg,
    remove_dynamic_background,
    remove_static_background,
)
from tests.process.conftest import direct_lowpass, documented_fft_lowpass, documented_kernel_2d


def interior(a, m=8):
    return a[..., m:-m, m:-m]


def test_documented_kernel_spans_3_sigma():
    # support 3 sigma: sigma = 4 -> 12 pixels: samples at -5.5 .. 5.5 (+-1.375 sigma)
    k = documented_kernel_2d(4.0)
    assert k.shape == (12, 12)
    assert k.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("sigma", [12.8, 30.0, 7.0])
def test_lowpass_equals_direct_and_documented_fft_on_ocean(ocean, sigma):
    raw, _ = ocean
    img = raw.astype(float)
    ours = gaussian_lowpass(img, sigma=sigma)
    direct = direct_lowpass(img, sigma)
    np.testing.assert_allclose(interior(ours), interior(direct), rtol=1e-5)
    np.testing.assert_allclose(ours, direct, rtol=1e-9)  # borders too: replication is the same
    np.testing.assert_allclose(ours, documented_fft_lowpass(img, sigma), rtol=1e-9)
    for options in ({"method": "fft", "fft_size": "pow2"}, {"method": "direct"}, {"method": "auto"}):
        np.testing.assert_allclose(gaussian_lowpass(img, sigma=sigma, **options), direct, rtol=1e-9)


def test_make_signal_bg_on_ocean(ocean):
    raw, _ = ocean
    img = raw.astype(float)
    signal, background = make_signal_bg(img)  # sigma: width / 25 = 12.8
    reference_bg = direct_lowpass(img, 320 / 25)
    np.testing.assert_allclose(interior(background), interior(reference_bg), rtol=1e-5)
    np.testing.assert_allclose(interior(signal), interior(img - reference_bg), atol=1e-5 * img.max())
    np.testing.assert_allclose(signal + background, img, rtol=1e-12)
    # physics: the low-pass is smoother than the image, the signal is the small-scale part
    assert background.std() < img.std()
    assert np.abs(np.diff(background, axis=1)).mean() < 0.5 * np.abs(np.diff(img, axis=1)).mean()
    assert abs(signal.mean()) < 0.01 * img.mean()


def test_remove_bg_on_flat_fielded_ocean(ocean):
    raw, bg = ocean
    flat = raw / bg
    assert 0.7 < flat.min() and flat.max() < 1.3  # README: raw / average lies in 0.76..1.24
    ours = remove_bg(flat)  # sigma: height / 8 = 30
    reference = flat / direct_lowpass(flat, 240 / 8)
    np.testing.assert_allclose(interior(ours), interior(reference), rtol=1e-5)
    assert ours.mean() == pytest.approx(1.0, abs=0.01)
    # float32 stacks give the same within float32 precision
    stack = np.stack([flat, flat[::-1]]).astype(np.float32)
    got32 = remove_dynamic_background(stack, sigma=30.0, dtype=np.float32)
    assert got32.dtype == np.float32
    np.testing.assert_allclose(interior(got32[0]), interior(reference), rtol=1e-5)
    np.testing.assert_allclose(interior(got32[1]), interior(flat[::-1] / direct_lowpass(flat[::-1], 30.0)), rtol=1e-5)


def test_remove_bg_sets_non_finite_to_zero():
    img = np.zeros((16, 16))
    img[8:, 8:] = 5.0
    out = remove_bg(img, sigma=1.0)
    assert np.isfinite(out).all()
    assert out[0, 0] == 0.0 and out[-1, -1] == pytest.approx(1.0)


def test_untruncated_gaussian_matches_scipy():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(3)
    img = rng.normal(100, 10, (40, 50))
    ours = gaussian_lowpass(img, sigma=3.0, kernel="untruncated")
    np.testing.assert_allclose(ours, gaussian_filter(img, 3.0, mode="nearest", truncate=6.0), rtol=1e-9)
    # the documented kernel (cut at 1.5 sigma) smooths less than the full Gaussian
    doc = gaussian_lowpass(img, sigma=3.0)
    assert ours.std() < doc.std() < img.std()


@pytest.mark.parametrize(
    ("shape", "sigma"),
    [((13, 7), 2.0), ((14, 9), 1.0), ((15, 5), 4.0), ((17, 22), 0.4), ((3, 5), 4.0), ((61, 83), 5.3)],
)
def test_direct_lowpass_on_any_shape_equals_slow_sum(shape, sigma):
    """The blocked direct sum (4 output rows per sweep, the rows done as a pass of the transpose)
    on heights of every remainder mod 4, images smaller than the kernel, 1 to 16 taps, odd and even."""
    rng = np.random.default_rng(int(sigma * 10) + shape[0])
    img = rng.normal(100, 10, shape)
    slow = direct_lowpass(img, sigma)
    np.testing.assert_allclose(gaussian_lowpass(img, sigma=sigma, method="direct"), slow, rtol=1e-12)
    np.testing.assert_allclose(gaussian_lowpass(img, sigma=sigma, method="fft"), slow, rtol=1e-9)
    # float32: one image of a stack equals it alone, to the bit
    stack = np.stack([img, img[::-1], 2 * img]).astype(np.float32)
    alone = gaussian_lowpass(stack[1], sigma=sigma, method="direct")
    np.testing.assert_array_equal(gaussian_lowpass(stack, sigma=sigma, method="direct")[1], alone)
    np.testing.assert_allclose(alone, direct_lowpass(stack[1].astype(float), sigma), rtol=1e-5)


@pytest.mark.parametrize("operation", ["divide", "subtract"])
def test_fused_static_dynamic_equals_the_steps_to_the_bit(ocean, operation):
    from kikuchi.process.background import fused_static_dynamic

    raw, bg = ocean
    stack = np.stack([raw, raw[::-1, ::-1]])
    bg32 = bg.astype(np.float32)
    bg32[5, 7] = 0  # a dead background pixel: 0 after the static division
    for static in (bg32, None):
        x = stack.astype(np.float32) if static is None else remove_static_background(stack, static, dtype=np.float32)
        steps = remove_dynamic_background(x, sigma=9.0, operation=operation, method="direct", dtype=np.float32)
        fused = fused_static_dynamic(stack, static, sigma=9.0, operation=operation)
        np.testing.assert_array_equal(fused, steps)
    # small patterns go 8 at a time side by side (60 x 60): 11 = 8 + 3, each as if alone
    small = np.stack([np.roll(raw[:60, :60], k, axis=1) for k in range(11)])
    fused = fused_static_dynamic(small, bg32[:60, :60], sigma=7.5, operation=operation)
    for k in (0, 7, 8, 10):
        np.testing.assert_array_equal(fused[k], fused_static_dynamic(small[k : k + 1], bg32[:60, :60], sigma=7.5, operation=operation)[0])
    x = remove_static_background(small, bg32[:60, :60], dtype=np.float32)
    np.testing.assert_array_equal(fused, remove_dynamic_background(x, sigma=7.5, operation=operation, method="direct", dtype=np.float32))


def test_static_divide_subtract(ocean):
    raw, bg = ocean
    np.testing.assert_allclose(remove_static_background(raw, bg), raw / bg, rtol=1e-12)
    sub = remove_static_background(raw, bg, operation="subtract")
    np.testing.assert_allclose(sub, raw - raw.mean() / bg.mean() * bg, rtol=1e-9, atol=1e-9)
    assert abs(sub.mean()) < 1e-9
    np.testing.assert_allclose(remove_static_background(raw, bg, operation="subtract", scale=0.5), raw - 0.5 * bg)
    zero_bg = bg.copy()
    zero_bg[0, 0] = 0
    assert remove_static_background(raw, zero_bg)[0, 0] == 0.0


def test_partition_static_background_adds_up(ocean):
    _, bg = ocean
    smooth, small = partition_static_background(bg, sigma=5.0)
    np.testing.assert_allclose(smooth + small, bg, rtol=1e-12)
    # the small-scale part is small and centred on 0; the top rows (hardware lines) stand out
    assert abs(small.mean()) < 0.5
    assert np.abs(small).mean() < 0.05 * bg.mean()


def test_bad_inputs(ocean):
    raw, bg = ocean
    with pytest.raises(ValueError, match=r"sigma must be a positive number of pixels, got 0"):
        remove_bg(raw, sigma=0)
    with pytest.raises(ValueError, match=r"sigma must be a positive number of pixels, got -2"):
        make_signal_bg(raw, sigma=-2)
    with pytest.raises(ValueError, match=r"static background of shape \(60, 80\) does not fit patterns of shape \(240, 320\)"):
        remove_static_background(raw, bg[::4, ::4])
    with pytest.raises(ValueError, match="operation must be 'divide' or 'subtract'; got 'multiply'"):
        remove_static_background(raw, bg, operation="multiply")
    with pytest.raises(ValueError, match=r"one pattern \(h, w\) or a stack \(n, h, w\); got shape \(320,\)"):
        gaussian_lowpass(raw[0], sigma=2)
    with pytest.raises(ValueError, match="kernel must be one of documented, untruncated; got 'box'"):
        gaussian_lowpass(raw, sigma=2, kernel="box")
