"""Binning: sums preserved, integer dtypes checked for overflow."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.process import BinningOverflowError, auto_binning, bin_patterns
from tests.process.conftest import downsample_mean


def test_sum_preserves_the_total_on_real_patterns(ocean, nickel):
    raw, _ = ocean
    b = bin_patterns(raw, 4)
    assert b.shape == (60, 80) and b.dtype == np.uint16  # 16 x 255 needs 16 bits
    assert int(b.sum(dtype=np.int64)) == int(raw.sum(dtype=np.int64))
    assert int(b[3, 7]) == int(raw[12:16, 28:32].sum())
    patterns, _ = nickel
    stack = patterns.reshape(-1, 60, 60)
    b = bin_patterns(stack, 3)
    np.testing.assert_array_equal(b.sum(axis=(1, 2)), stack.sum(axis=(1, 2), dtype=np.int64))


def test_mean_is_the_documented_downsample(ocean):
    raw, bg = ocean
    np.testing.assert_allclose(bin_patterns(bg, 4, mode="mean"), downsample_mean(bg, 4), rtol=1e-12)
    m = bin_patterns(raw.astype(np.float32), 5, mode="mean")
    assert m.dtype == np.float32
    np.testing.assert_allclose(m, downsample_mean(raw.astype(float), 5), rtol=1e-6)


def test_dtypes_and_overflow():
    p = np.full((2, 4, 4), 65535, dtype=np.uint16)
    assert bin_patterns(p, 2).dtype == np.uint32
    assert bin_patterns(np.full((4, 4), 3, np.uint8), 2, dtype=np.uint8)[0, 0] == 12
    with pytest.raises(BinningOverflowError, match=r"binned sums reach 1020, outside uint8 \(0..255\); use a wider dtype or mode='mean'"):
        bin_patterns(np.full((4, 4), 255, np.uint8), 2, dtype=np.uint8)
    f = bin_patterns(np.ones((4, 4), np.float32), 2)
    assert f.dtype == np.float32 and f[0, 0] == 4.0
    assert np.array_equal(bin_patterns(np.arange(6).reshape(2, 3), 1), np.arange(6).reshape(2, 3))


def test_auto_binning_targets_80_pixels_wide():
    assert auto_binning((240, 320)) == 4
    assert auto_binning((600, 800)) == 10
    assert auto_binning((256, 336)) == 4  # 84 x 64
    assert auto_binning((60, 60)) == 1


def test_bad_factor(ocean):
    raw, _ = ocean
    with pytest.raises(ValueError, match=r"binning factor 7 does not divide the pattern shape 240 x 320; choose a common divisor of 240 and 320 \(1, 2, 4, 5, 8, 10, 16, 20, 40, 80\)"):
        bin_patterns(raw, 7)
    with pytest.raises(ValueError, match="binning factor must be a positive integer, got 0"):
        bin_patterns(raw, 0)
    with pytest.raises(ValueError, match="binning mode must be 'sum' or 'mean'; got 'max'"):
        bin_patterns(raw, 2, mode="max")
