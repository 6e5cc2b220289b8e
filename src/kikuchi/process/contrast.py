"""Contrast: percentile stretch to 8/16-bit integers, CLAHE, local normalisation, circular mask."""

from __future__ import annotations

from typing import Any

import numpy as np

from kikuchi.process import _kernels
from kikuchi.process.background import _as_stack

__all__ = ["circular_mask", "clahe", "normalize_local", "rescale_to_uint"]

UINT_DTYPES = ("uint8", "uint16")


def _check_percentiles(clow: float, chigh: float) -> None:
    for value in (clow, chigh):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"contrast percentiles must be numbers; got {value!r}")
    if not (0.0 <= clow < chigh <= 100.0):
        raise ValueError(f"contrast percentiles must satisfy 0 <= clow < chigh <= 100; got clow={clow:g}, chigh={chigh:g}")


def rescale_to_uint(patterns: Any, *, dtype: Any = "uint8", clow: float = 0.25, chigh: float = 99.75) -> np.ndarray:
    """Stretch each pattern between two percentiles to the full range of uint8 or uint16.

    As xcdskd's ``img_to_uint``: per pattern, the values at the ``clow`` and
    ``chigh`` percentiles become 0 and 255 (65535), values outside are
    clipped, and the scaled values are truncated to integers (as
    ``skimage.exposure.rescale_intensity(..., out_range=dtype).astype(dtype)``).

    Parameters
    ----------
    patterns
        One pattern (h, w) or a stack (n, h, w), any real dtype.
    dtype
        'uint8' or 'uint16'.
    clow, chigh
        Percentiles (0..100) mapped to black and white.

    Returns
    -------
    numpy.ndarray
        Same shape, ``dtype``; zeros for a pattern whose percentiles are not
        finite (a NaN among its values, or an infinity where a percentile
        falls): it has no grey levels to stretch. Other infinite values are
        clipped like any value outside the percentiles.

    Examples
    --------
    >>> rescale_to_uint(np.array([[0.0, 0.5], [1.0, 2.0]]), clow=0, chigh=100)
    array([[  0,  63],
           [127, 255]], dtype=uint8)
    """
    stack, single = _as_stack(patterns)
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be uint8 or uint16, got {dtype!r}") from None
    if dtype.name not in UINT_DTYPES:
        raise ValueError(f"dtype must be uint8 or uint16, got {dtype}")
    _check_percentiles(clow, chigh)
    work = stack if stack.dtype.kind == "f" else stack.astype(np.float64)
    n = len(work)
    if n == 0:
        return np.zeros(stack.shape[1:] if single else stack.shape, dtype=dtype)
    flat = work.reshape(n, -1)
    out = np.empty(flat.shape, dtype=dtype)
    ftype = work.dtype.type
    step = max(1, (4 << 20) // max(1, flat[0].nbytes))  # blocks of about 4 MiB stay in cache
    for i0 in range(0, n, step):
        block = flat[i0 : i0 + step]
        if clow == 0.0 and chigh == 100.0:
            # the 0th and 100th percentiles are the extremes, exactly: no partition needed
            lo, hi = block.min(axis=1).astype(np.float64), block.max(axis=1).astype(np.float64)
        else:
            # numpy.percentile's values, from a histogram of each pattern (no partition)
            lo, hi = np.empty(len(block)), np.empty(len(block))
            _kernels.percentile_pair(block, clow / 100.0, chigh / 100.0, lo, hi)
        bad = ~(np.isfinite(lo) & np.isfinite(hi))  # a NaN (or, at 0 or 100 %, an infinity) among the values
        if bad.any():
            lo[bad] = hi[bad] = 0.0
        # the operations and roundings of rescale_intensity, in the patterns' float type
        _kernels.stretch(block, lo.astype(ftype), hi.astype(ftype), (hi - lo).astype(ftype), ftype(np.iinfo(dtype).max), out[i0 : i0 + step])
        if bad.any():  # no grey levels to stretch: zeros
            out[i0 : i0 + step][bad] = 0
    out = out.reshape(stack.shape)
    return out[0] if single else out


def clahe(patterns: Any, *, kernel_size: int | tuple[int, int] | None = None, clip_limit: float = 0.01, nbins: int = 256) -> np.ndarray:
    """Contrast limited adaptive histogram equalisation (``skimage.exposure.equalize_adapthist``).

    Changes relative intensities inside a pattern: use it for band detection,
    not for comparison with simulations. The kernel should be larger than
    the Kikuchi bands.

    Parameters
    ----------
    patterns
        One pattern (h, w) or a stack (n, h, w).
    kernel_size
        Tile size in pixels; default 1/8 of the pattern (skimage's default).
    clip_limit, nbins
        As ``equalize_adapthist``.

    Returns
    -------
    numpy.ndarray
        float64 in 0..1, same shape.
    """
    from skimage.exposure import equalize_adapthist

    stack, single = _as_stack(patterns)
    if not 0 < clip_limit <= 1:
        raise ValueError(f"clip_limit must be in (0, 1], got {clip_limit:g}")
    if not float(nbins).is_integer() or nbins < 2:
        raise ValueError(f"nbins must be a whole number >= 2, got {nbins}")
    out = np.empty(stack.shape, dtype=np.float64)
    for i, p in enumerate(stack):
        x = p.astype(np.float64)
        if not np.isfinite(x).all():  # no grey levels to equalise: zeros, as for a flat pattern
            out[i] = 0.0
            continue
        lo, hi = float(x.min()), float(x.max())
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        out[i] = equalize_adapthist(x, kernel_size=kernel_size, clip_limit=clip_limit, nbins=nbins)
    return out[0] if single else out


def normalize_local(patterns: Any, *, size: int | None = None, dtype: Any = np.float32) -> np.ndarray:
    """Local normalisation: ``(x - local mean) / local std`` over a ``size`` x ``size`` window.

    The window is mirrored at the pattern borders; where the local standard
    deviation is 0 the result is 0.

    Parameters
    ----------
    patterns
        One pattern (h, w) or a stack (n, h, w).
    size
        Odd window size in pixels; default about 1/10 of the pattern width.
    dtype
        Output float dtype.

    Examples
    --------
    >>> p = np.tile([0.0, 2.0], (6, 3))
    >>> normalize_local(p, size=3)[2, :3]
    array([-1.4142135,  1.4142135, -1.4142135], dtype=float32)
    """
    stack, single = _as_stack(patterns)
    if size is None:
        size = max(3, (stack.shape[2] // 10) | 1)
    if not float(size).is_integer() or size < 1:
        raise ValueError(f"window size must be a positive integer, got {size}")
    mean, std = _kernels.local_mean_std(stack, int(size))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(std > 1e-12 * (np.abs(mean) + 1), (stack - mean) / std, 0.0)
    out = out.astype(dtype)
    return out[0] if single else out


def circular_mask(shape: tuple[int, int], *, radius: float | None = None, centre: tuple[float, float] | None = None) -> np.ndarray:
    """Boolean mask, True inside a circle (the usable area of a round phosphor screen).

    Parameters
    ----------
    shape
        (h, w) of the pattern.
    radius
        Radius in pixels; default half the smaller dimension.
    centre
        (row, col) of the centre; default the pattern centre ((h - 1) / 2, (w - 1) / 2).

    Examples
    --------
    >>> circular_mask((5, 5), radius=2).astype(int)
    array([[0, 0, 1, 0, 0],
           [0, 1, 1, 1, 0],
           [1, 1, 1, 1, 1],
           [0, 1, 1, 1, 0],
           [0, 0, 1, 0, 0]])
    """
    if len(shape) != 2:
        raise ValueError(f"mask shape must be (h, w), got {tuple(shape)}")
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise ValueError(f"mask shape must be positive, got {shape}")
    r0, c0 = ((h - 1) / 2.0, (w - 1) / 2.0) if centre is None else centre
    radius = min(h, w) / 2.0 if radius is None else float(radius)
    if radius <= 0:
        raise ValueError(f"mask radius must be > 0, got {radius:g}")
    rr, cc = np.ogrid[0:h, 0:w]
    return (rr - r0) ** 2 + (cc - c0) ** 2 <= radius**2
