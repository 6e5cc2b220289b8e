"""Binning of patterns by an integer factor (sum or mean of factor x factor pixels)."""

from __future__ import annotations

from typing import Any

import numpy as np

from kikuchi.process import _kernels
from kikuchi.process.background import _as_stack

__all__ = ["BinningOverflowError", "bin_patterns", "auto_binning"]

MODES = ("sum", "mean")


class BinningOverflowError(ValueError):
    """Summed pixel values do not fit the requested integer dtype."""


def _check_factor(shape: tuple[int, int], factor: int) -> int:
    if isinstance(factor, (bool, str)) or not isinstance(factor, (int, float, np.integer, np.floating)) or not np.isfinite(factor) or int(factor) != factor or factor < 1:
        raise ValueError(f"binning factor must be a positive integer, got {factor!r}")
    factor = int(factor)
    h, w = shape
    if h % factor or w % factor:
        raise ValueError(
            f"binning factor {factor} does not divide the pattern shape {h} x {w}; "
            f"choose a common divisor of {h} and {w} ({', '.join(str(d) for d in common_divisors(h, w))})"
        )
    return factor


def common_divisors(h: int, w: int) -> list[int]:
    """Binning factors that divide both pattern dimensions.

    >>> common_divisors(240, 320)
    [1, 2, 4, 5, 8, 10, 16, 20, 40, 80]
    """
    g = int(np.gcd(h, w))
    return [d for d in range(1, g + 1) if g % d == 0]


def auto_binning(shape: tuple[int, int], *, target_width: int = 80) -> int:
    """The binning factor that brings the pattern width closest to ``target_width``.

    Among the factors that divide both dimensions; on a tie the larger pattern.

    >>> auto_binning((240, 320)), auto_binning((600, 800)), auto_binning((60, 60)), auto_binning((240, 240))
    (4, 10, 1, 3)
    """
    if len(shape) != 2 or min(int(v) for v in shape) < 1:
        raise ValueError(f"auto_binning: the pattern shape must be (h, w) of at least one pixel each; got {tuple(shape)}")
    h, w = (int(v) for v in shape)
    return min(common_divisors(h, w), key=lambda f: (abs(w / f - target_width), f))


def bin_patterns(patterns: Any, factor: int, *, mode: str = "sum", dtype: Any = None) -> np.ndarray:
    """Combine ``factor`` x ``factor`` pixels into one.

    Parameters
    ----------
    patterns
        One pattern (h, w) or a stack (n, h, w); ``factor`` must divide h and w.
    factor
        Binning factor (1: no binning, a copy).
    mode
        ``'sum'``: integer patterns stay integer: by default the smallest
        unsigned dtype that holds ``factor**2`` times the input's maximum
        value (uint8 binned by 4 gives uint16); a ``dtype`` that the sums
        exceed raises :class:`BinningOverflowError`. Float patterns are
        summed in float64 and keep their dtype. ``'mean'``: float mean
        (float32 for float32 input, else float64), as xcdskd's ``downsample``.
    dtype
        Output dtype of ``'sum'`` (checked against overflow).

    Returns
    -------
    numpy.ndarray
        (h / factor, w / factor) or (n, h / factor, w / factor).

    Examples
    --------
    >>> p = np.full((4, 6), 200, dtype=np.uint8)
    >>> b = bin_patterns(p, 2)
    >>> b.dtype, int(b[0, 0]), int(b.sum()) == int(p.sum(dtype=np.int64))
    (dtype('uint16'), 800, True)
    >>> bin_patterns(p, 2, mode="mean")[0, 0]
    np.float64(200.0)
    """
    stack, single = _as_stack(patterns)
    factor = _check_factor(stack.shape[1:], factor)
    if mode not in MODES:
        raise ValueError(f"binning mode must be 'sum' or 'mean'; got {mode!r}")
    kind = stack.dtype.kind
    if mode == "mean":
        out_dtype = np.float32 if stack.dtype == np.float32 else np.float64
        out = _kernels.bin_sum(stack, factor, np.float64) / (factor * factor)
        out = out.astype(out_dtype, copy=False)
    elif kind in "ui":
        wide = np.int64 if kind == "i" else np.uint64
        sums = _kernels.bin_sum(stack, factor, wide)
        if dtype is None:
            top = np.iinfo(stack.dtype).max * factor * factor
            bottom = np.iinfo(stack.dtype).min * factor * factor
            out_dtype = np.result_type(np.min_scalar_type(top), np.min_scalar_type(bottom), stack.dtype)
        else:
            out_dtype = np.dtype(dtype)
        if out_dtype.kind in "ui" and sums.size:
            info = np.iinfo(out_dtype)
            lo, hi = int(sums.min()), int(sums.max())
            if lo < info.min or hi > info.max:
                raise BinningOverflowError(
                    f"binned sums reach {hi if hi > info.max else lo}, outside {out_dtype} "
                    f"({info.min}..{info.max}); use a wider dtype or mode='mean'"
                )
        out = sums.astype(out_dtype, copy=False)
    elif kind == "f":
        out = _kernels.bin_sum(stack, factor, np.float64).astype(dtype or stack.dtype)
    else:
        raise ValueError(f"cannot bin patterns of dtype {stack.dtype}")
    return out[0] if single else out
