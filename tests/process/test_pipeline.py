"""The combined pipeline and its presets against the documented process_ebsp steps."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.process import PRESETS, ProcessingSettings, process_patterns
from kikuchi.process.pipeline import prepare
from tests.process.conftest import direct_lowpass, downsample_mean, img_to_uint


def documented_process_ebsp(raw, static_background, sigma, clow, chigh, dtype, binning):
    """process_ebsp of the documentation, step by step, with the slow direct low-pass."""
    raw = raw.astype(float)
    if binning > 1:
        raw = downsample_mean(raw, binning)
        static_background = downsample_mean(static_background, binning)
    flat = raw / static_background
    if sigma is None:
        sigma = flat.shape[0] / 8
    corrected = flat / direct_lowpass(flat, sigma)
    return corrected, img_to_uint(corrected, clow, chigh, dtype)


def test_indexing_preset_on_ocean(ocean):
    raw, bg = ocean
    # indexing: binned to 80 x 60, sigma 3 px at 80 px, stretch 10..90 %, uint8
    floats = process_patterns(raw, PRESETS["indexing"].replace(dtype="float32"), static_background=bg)
    ref_float, ref_uint = documented_process_ebsp(raw, bg, 3.0, 10, 90, np.uint8, 4)
    assert floats.shape == (60, 80) and floats.dtype == np.float32
    np.testing.assert_allclose(floats, ref_float, rtol=1e-5)
    out = process_patterns(raw, "indexing", static_background=bg)
    assert out.shape == (60, 80) and out.dtype == np.uint8
    # float32 against float64: the truncation to integers may differ by one grey level, rarely
    diff = np.abs(out.astype(int) - ref_uint.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_detailed_preset_on_ocean(ocean):
    raw, bg = ocean
    settings = PRESETS["detailed"]  # sigma 40 px at 800 px width: 16 px at 320
    assert settings.resolved_sigma(raw.shape) == pytest.approx(16.0)
    floats = process_patterns(raw, settings.replace(dtype="float32"), static_background=bg)
    ref_float, ref_uint = documented_process_ebsp(raw, bg, 16.0, 0.001, 99.999, np.uint16, 1)
    np.testing.assert_allclose(floats[8:-8, 8:-8], ref_float[8:-8, 8:-8], rtol=1e-5)
    out = process_patterns(raw, "detailed", static_background=bg)
    assert out.shape == (240, 320) and out.dtype == np.uint16
    assert np.abs(out.astype(int) - ref_uint.astype(int)).max() <= 1


def test_map_with_neighbour_averaging_on_nickel(nickel):
    patterns, bg = nickel
    settings = ProcessingSettings(npa=1, dtype="float32", sigma=6.0)
    out = process_patterns(patterns, settings, static_background=bg)
    each = process_patterns(patterns.reshape(9, 60, 60), settings.replace(npa=0), static_background=bg)
    expected_centre = each.mean(axis=0)  # (1, 1): the flat mean of all nine
    np.testing.assert_allclose(out[1, 1], expected_centre, rtol=1e-5)
    np.testing.assert_allclose(out[0, 0], each[[0, 1, 3, 4]].mean(axis=0), rtol=1e-5)
    # averaging reduces the noise: the difference to the (smooth) two-grain mean shrinks
    assert np.std(out[1, 1] - each[4]) < np.std(each[4])


def test_subtract_hot_pixels_mask_and_contrast(nickel):
    patterns, bg = nickel
    stack = patterns.reshape(9, 60, 60)
    s = ProcessingSettings(static="subtract", dynamic="subtract", hot_pixels=8.0, mask=True, contrast="clahe", dtype="uint16")
    out = process_patterns(stack, s, static_background=bg)
    assert out.shape == (9, 60, 60) and out.dtype == np.uint16
    assert out[:, 0, 0].max() == 0 and out[:, 30, 30].min() >= 0
    local = process_patterns(stack, s.replace(contrast="local", dtype="float32", mask=False), static_background=bg)
    assert abs(float(local.mean())) < 0.2


def test_prepare_records_every_parameter(ocean):
    raw, bg = ocean
    prep = prepare(PRESETS["indexing"], raw.shape, bg)
    d = prep.describe()
    assert d["binning_factor"] == 4 and d["output_pattern_shape"] == [60, 80] and d["sigma_px"] == pytest.approx(3.0)
    assert d["static_background_used"] and d["clow"] == 10.0 and d["dtype"] == "uint8"
    assert prep.static_background.shape == (60, 80)
    # a background already binned is accepted
    assert prepare(PRESETS["indexing"], raw.shape, downsample_mean(bg, 4)).static_background.shape == (60, 80)


def test_bad_settings(ocean):
    raw, bg = ocean
    with pytest.raises(ValueError, match=r"static background of shape \(10, 10\) fits neither the patterns \(240, 320\) nor the binned patterns \(60, 80\)"):
        process_patterns(raw, "indexing", static_background=np.ones((10, 10)))
    with pytest.raises(ValueError, match="binning factor 7 does not divide the pattern shape 240 x 320"):
        process_patterns(raw, ProcessingSettings(binning=7))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        ProcessingSettings(sigma=0.0)
    with pytest.raises(ValueError, match="static must be one of divide, subtract, none; got 'add'"):
        ProcessingSettings(static="add")
    with pytest.raises(ValueError, match="unknown preset 'fast'; choose one of indexing, detailed"):
        process_patterns(raw, "fast")
    with pytest.raises(ValueError, match=r"neighbour averaging \(npa > 0\) needs the map"):
        process_patterns(raw, ProcessingSettings(npa=1))


def test_threads_give_the_same_result(nickel):
    patterns, bg = nickel
    settings = ProcessingSettings(npa=1, sigma=5.0, dtype="uint16")
    one = process_patterns(patterns, settings, static_background=bg)
    np.testing.assert_array_equal(process_patterns(patterns, settings, static_background=bg, workers=2), one)
    stack = patterns.reshape(9, 60, 60)
    s0 = settings.replace(npa=0)
    np.testing.assert_array_equal(
        process_patterns(stack, s0, static_background=bg, workers=3), process_patterns(stack, s0, static_background=bg)
    )
