"""Patterns without signal and static backgrounds that cannot divide: bad points, never the end of the run."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.engine import mean_pattern, process_map
from kikuchi.process import PRESETS, process_patterns, remove_bg, remove_dynamic_background, rescale_to_uint
from kikuchi.process.background import fused_static_dynamic
from kikuchi.process.no_signal import (
    NoSignalWarning,
    StaticBackgroundWarning,
    check_static_background,
    describe_no_signal,
    no_signal,
    no_signal_summary,
)
from tests.engine.conftest import write_map


@pytest.fixture
def stack(rng):
    """Ten 24 x 32 uint8 patterns with bands and noise."""
    yy, xx = np.mgrid[0:24, 0:32]
    bg = 120 + 60 * np.exp(-((yy - 8) ** 2 + (xx - 16) ** 2) / 200.0)
    return np.stack([np.clip(bg + 25 * np.cos(0.4 * xx + k) + rng.normal(0, 5, bg.shape), 0, 255) for k in range(10)]).astype(np.uint8)


def spoil(patterns, which=(1, 4, 7)):
    """Zero, saturated and constant frames at ``which``."""
    bad = patterns.copy()
    for k, value in zip(which, (0, np.iinfo(bad.dtype).max, 117)):
        bad[k] = value
    return bad


def test_no_signal_finds_flat_and_not_finite_patterns(stack):
    assert no_signal(stack).tolist() == [False] * 10
    assert no_signal(spoil(stack)).tolist() == [k in (1, 4, 7) for k in range(10)]
    f = stack.astype(np.float32)
    f[2, 5, 5], f[3, 0, 0], f[5, 23, 31] = np.nan, np.inf, -np.inf
    assert np.flatnonzero(no_signal(f)).tolist() == [2, 3, 5]
    assert no_signal(stack[0]).shape == () and not no_signal(stack[0])
    assert no_signal(np.zeros((2, 3, 4, 4), bool)).shape == (2, 3)
    assert no_signal(np.zeros((0, 4, 4))).shape == (0,)
    with pytest.raises(ValueError, match="patterns must be numbers .* got dtype <U1"):
        no_signal(np.full((2, 2), "a"))
    assert describe_no_signal(np.full((4, 4), 65535, np.uint16)) == "every pixel is 65535 (the maximum of uint16: saturated)"
    assert describe_no_signal(f[2]) == "NaN in 1 pixel"
    assert describe_no_signal(np.full((2, 2), -np.inf)) == "infinite values in 4 pixels"
    flagged = np.zeros((3, 4), bool)
    flagged[0, 1] = flagged[2, 3] = True
    assert no_signal_summary(flagged) == "2 of 12 points hold no signal (all one value, or not finite): (row 0, col 1), (row 2, col 3)"


def test_dark_regions_and_zero_patterns_divide_to_zero_not_an_error(stack):
    """The dynamic division gives 0 where the low-pass is 0: numba raised ZeroDivisionError before."""
    p = stack.astype(np.float32).copy()
    p[0] = 0.0
    p[1, :, :16] = 0.0  # a dark half
    fused = fused_static_dynamic(p, None, sigma=3.0)
    assert not fused[0].any() and np.isfinite(fused).all()
    assert not fused[1, :, :10].any() and fused[1, :, 20:].mean() == pytest.approx(1.0, abs=0.1)
    np.testing.assert_array_equal(remove_bg(np.zeros((24, 32))), 0.0)
    np.testing.assert_array_equal(remove_dynamic_background(np.zeros((24, 32)), method="direct"), 0.0)


@pytest.mark.parametrize("preset", ["indexing", "detailed"])
def test_process_patterns_bad_points_are_zeros_and_change_nothing_else(stack, preset):
    bg = stack.mean(axis=0)
    clean = process_patterns(stack, preset, static_background=bg)
    got = process_patterns(spoil(stack), preset, static_background=bg)
    good = ~np.isin(np.arange(10), (1, 4, 7))
    np.testing.assert_array_equal(got[good], clean[good])  # bit for bit
    assert not got[~good].any()
    # float maps: NaN and infinities
    f = stack.astype(np.float32)
    f[2, 5, 5], f[3] = np.nan, np.inf
    got = process_patterns(f, preset, static_background=bg)
    ok = ~np.isin(np.arange(10), (2, 3))
    np.testing.assert_array_equal(got[ok], process_patterns(stack.astype(np.float32), preset, static_background=bg)[ok])
    assert not got[~ok].any()


def test_averaging_skips_bad_points_as_missing_ones(stack):
    """With npa the bad points are no one's neighbour: the result equals the map with them marked missing."""
    settings = PRESETS["indexing"].replace(npa=1)
    raw = stack.reshape(2, 5, 24, 32)
    bad = spoil(stack).reshape(2, 5, 24, 32)
    have = np.ones((2, 5), bool)
    have.flat[[1, 4, 7]] = False
    np.testing.assert_array_equal(process_patterns(bad, settings, workers=2), process_patterns(raw, settings, have=have))


def test_rescale_to_uint_gives_zeros_for_nan_patterns(rng):
    p = rng.random((3, 8, 8))
    p[1, 2, 2] = np.nan
    out = rescale_to_uint(p, clow=0, chigh=100)
    assert not out[1].any() and out[0].max() == 255 and out[2].max() == 255
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not rescale_to_uint(p)[1].any()  # numpy's percentile of NaN warns no more
    assert rescale_to_uint(np.zeros((0, 4, 4))).shape == (0, 4, 4)


@pytest.mark.parametrize(
    ("background", "message"),
    [
        (np.zeros((24, 32)), "every value is 0 .*; not used"),
        (np.full((24, 32), np.nan), r"no value is finite \(all NaN or infinite\); not used"),
        (-np.ones((24, 32)), "768 of its 768 values are negative .* a flat field divisor is never negative .*; not used"),
    ],
)
def test_a_static_background_that_cannot_divide_is_not_used(stack, background, message):
    with pytest.warns(StaticBackgroundWarning, match="static background: " + message):
        got = process_patterns(stack, "indexing", static_background=background)
    np.testing.assert_array_equal(got, process_patterns(stack, PRESETS["indexing"].replace(static="none")))


def test_dead_pixels_of_a_static_background(stack):
    bg = stack.mean(axis=0)
    holed = bg.copy()
    holed[3, 4] = np.nan
    with pytest.warns(StaticBackgroundWarning, match="1 of its 768 values are not finite .* treated as dead pixels"):
        got = process_patterns(stack, "detailed", static_background=holed)
    zeroed = bg.copy()
    zeroed[3, 4] = 0.0
    np.testing.assert_array_equal(got, process_patterns(stack, "detailed", static_background=zeroed))
    assert check_static_background(bg) == (bg, None)
    assert check_static_background(-bg, operation="subtract", warn=False)[0] is not None  # subtracting a negative one is fine
    assert check_static_background(holed, operation="subtract", warn=False)[0] is None
    with pytest.raises(ValueError, match="must be an image of numbers, got dtype <U1"):
        check_static_background(np.full((2, 2), "a"))


def test_process_map_flags_counts_and_warns(tmp_path, stack):
    raw = stack.reshape(2, 5, 24, 32)
    src = write_map(tmp_path / "m.h5", spoil(stack).reshape(2, 5, 24, 32), background=stack.mean(axis=0).astype(np.float32))
    with pytest.warns(NoSignalWarning, match=r"m.h5: 3 of 10 points hold no signal .*: \(row 0, col 1\), \(row 0, col 4\), \(row 1, col 2\); processed as zeros, flagged in Scan/EBSD/Data/NoSignal of out.h5"):
        out = process_map(src, tmp_path / "out.h5", "indexing", progress=False)
    with kikuchi.open(out) as o, h5py.File(out) as f:
        assert o.processing["no_signal_points"] == 3
        assert np.flatnonzero(f["Scan/EBSD/Data/NoSignal"][()]).tolist() == [1, 4, 7]
        got = o.read_all()
    want = process_patterns(raw, "indexing", static_background=stack.mean(axis=0).astype(np.float32))
    good = np.ones((2, 5), bool)
    good.flat[[1, 4, 7]] = False
    np.testing.assert_array_equal(got[good], want[good])
    assert not got[~good].any()
    # the mean pattern leaves them out
    with kikuchi.open(src) as m:
        np.testing.assert_allclose(mean_pattern(m, progress=False), stack[good.ravel()].mean(axis=0))


def test_process_map_with_a_zero_static_background_and_all_bad_maps(tmp_path, stack):
    src = write_map(tmp_path / "m.h5", stack.reshape(2, 5, 24, 32), background=np.zeros((24, 32), np.float32))
    with pytest.warns(StaticBackgroundWarning, match="m.h5:StaticBackground: every value is 0"):
        out = process_map(src, tmp_path / "out.h5", "indexing", progress=False)
    with kikuchi.open(out) as o:
        p = o.processing
        assert p["static_background_used"] is False and p["no_signal_points"] == 0
        assert p["static_background_source"] == "m.h5:StaticBackground (not used: see static_background_note)"
        assert "every value is 0" in p["static_background_note"]
    dark = write_map(tmp_path / "dark.h5", np.zeros((2, 5, 24, 32), np.uint8))
    with pytest.warns(NoSignalWarning, match="10 of 10 points hold no signal"):
        out = process_map(dark, tmp_path / "dark_out.h5", "indexing", progress=False)
    with kikuchi.open(out) as o:
        assert not o.read_all().any() and o.processing["no_signal_points"] == 10
    with kikuchi.open(dark) as m, pytest.raises(kikuchi.io.MapFileError, match="none of its 10 patterns holds signal .* no mean pattern"):
        mean_pattern(m, progress=False)


def test_boolean_patterns_are_zeros_and_ones(tmp_path, stack):
    binary = stack > 140
    np.testing.assert_array_equal(process_patterns(binary, "detailed"), process_patterns(binary.astype(np.uint8), "detailed"))
    src = write_map(tmp_path / "b.h5", binary.reshape(2, 5, 24, 32).astype(np.uint8))
    with h5py.File(src, "r+") as f:  # a boolean dataset (MapWriter writes numbers only)
        del f["Scan/EBSD/Data/RawPatterns"]
        f["Scan/EBSD/Data/RawPatterns"] = binary
    with pytest.warns(UserWarning, match="b.h5: patterns are stored as booleans"):  # the reader says so
        out = process_map(src, tmp_path / "out.h5", "indexing", progress=False)
    with kikuchi.open(out) as o:
        np.testing.assert_array_equal(o.read_all(), process_patterns(binary.reshape(2, 5, 24, 32).astype(np.uint8), "indexing"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: process_patterns(p, 42), "settings must be a ProcessingSettings or a preset name"),
        (lambda p: process_patterns(p.astype(complex), "indexing"), "patterns must be numbers .* got dtype complex128"),
        (lambda p: process_patterns(p, "detailed", workers=0), "workers must be a whole number >= 1, got 0"),
        (lambda p: process_patterns(p.reshape(2, 5, 24, 32), "detailed", have=np.ones((2, 2), bool)), r"have of shape \(2, 2\) does not fit the 2 x 5 map"),
        (lambda p: PRESETS["indexing"].replace(smoothness=3), "unknown processing setting smoothness; the settings are binning, "),
        (lambda p: PRESETS["indexing"].replace(sigma="3"), "sigma must be a number; got '3'"),
        (lambda p: remove_dynamic_background(p, smooth=True), "remove_bg: unknown option smooth; the options are kernel, method"),
        (lambda p: remove_dynamic_background(p, sigma="wide"), "sigma must be a positive number of pixels, got 'wide'"),
        (lambda p: rescale_to_uint(p, dtype="bogus"), "dtype must be uint8 or uint16, got 'bogus'"),
        (lambda p: kikuchi.process.clahe(p, nbins=0), "nbins must be a whole number >= 2, got 0"),
        (lambda p: kikuchi.process.auto_binning((240,)), r"auto_binning: the pattern shape must be \(h, w\)"),
        (lambda p: kikuchi.process.circular_mask((5,)), r"mask shape must be \(h, w\), got \(5,\)"),
    ],
)
def test_misuse_gets_one_line_errors(stack, call, message):
    with pytest.raises(ValueError, match=message):
        call(stack)
