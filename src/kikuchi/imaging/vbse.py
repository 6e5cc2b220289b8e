"""Virtual BSE arrays: mean intensity of a grid of regions on each pattern.

Each pattern of ``h x w`` pixels is divided into ``grid rows x grid cols``
equal regions. Region borders need not fall on pixel borders: a pixel that
straddles a border contributes the fraction of its area that lies in each
region. With the row weight matrix ``Wr`` (grid rows, h) and the column
weight matrix ``Wc`` (grid cols, w) of :func:`region_weights`, the region
means of a pattern ``P`` are ``Wr @ P @ Wc.T``.

The same machinery gives the virtual forward-scatter diodes (strips at the
top and bottom of the detector, split into left / middle / right) and the
total BSE signal (a 1 x 1 grid).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from kikuchi.imaging import _kernels

__all__ = ["region_weights", "strip_weights", "vbse_array", "diode_array", "total_bse", "parse_grid"]

_logger = logging.getLogger(__name__)


def parse_grid(grid: str | Sequence[int] | int) -> tuple[int, int]:
    """A grid given as ``'7x7'``, ``7`` or ``(7, 7)`` -> (grid rows, grid cols).

    >>> parse_grid("5x3")
    (5, 3)
    >>> parse_grid(4)
    (4, 4)
    """
    if isinstance(grid, str):
        parts = grid.lower().replace("*", "x").split("x")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"grid {grid!r}: expected ROWSxCOLS such as '7x7'") from None
        if len(values) == 1:
            values = values * 2
    elif isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        values = [int(grid)] * 2
    else:
        try:
            values = [int(g) for g in grid]
        except (TypeError, ValueError):
            raise ValueError(f"grid {grid!r}: expected ROWSxCOLS such as '7x7', one number or (rows, cols)") from None
        if any(v != g for v, g in zip(values, grid)):
            raise ValueError(f"grid {grid!r}: region counts must be whole numbers")
    if len(values) != 2 or min(values) < 1:
        raise ValueError(f"grid {grid!r}: expected two positive region counts (ROWSxCOLS such as '7x7')")
    return values[0], values[1]


def strip_weights(n_pixels: int, edges: Sequence[tuple[float, float]]) -> np.ndarray:
    """Weights that average ``n_pixels`` pixels over intervals ``[a, b)`` in pixel units.

    Row ``i`` of the result holds, for each pixel ``p`` (covering
    ``[p, p + 1)``), the length of its overlap with interval ``i`` divided
    by the interval length, so each row sums to 1.

    >>> strip_weights(4, [(0.0, 1.5), (1.5, 4.0)]).round(3).tolist()
    [[0.667, 0.333, 0.0, 0.0], [0.0, 0.2, 0.4, 0.4]]
    """
    if n_pixels < 1:
        raise ValueError(f"need at least one pixel, got {n_pixels}")
    left = np.arange(n_pixels, dtype=np.float64)
    out = np.zeros((len(edges), n_pixels))
    for i, (a, b) in enumerate(edges):
        a, b = float(a), float(b)
        if not (0.0 <= a < b <= n_pixels):
            raise ValueError(f"interval [{a}, {b}) is empty or outside 0..{n_pixels} pixels")
        overlap = np.clip(np.minimum(left + 1, b) - np.maximum(left, a), 0.0, None)
        out[i] = overlap / (b - a)
    return out


def region_weights(n_pixels: int, n_regions: int) -> np.ndarray:
    """(n_regions, n_pixels) weights of ``n_regions`` equal intervals over ``n_pixels`` pixels.

    Region ``i`` spans ``[i n / m, (i + 1) n / m)``; entry ``(i, p)`` is the
    fraction of region ``i``'s length covered by pixel ``p``. The region means
    of a pattern ``P`` are ``region_weights(h, gr) @ P @ region_weights(w, gc).T``.

    Examples
    --------
    Three regions on seven pixels: the pixels 2 and 4 are shared.

    >>> w = region_weights(7, 3)
    >>> (w * 7 / 3).round(3).tolist()[0]
    [1.0, 1.0, 0.333, 0.0, 0.0, 0.0, 0.0]
    >>> w.sum(axis=1).round(12).tolist()
    [1.0, 1.0, 1.0]
    """
    if n_regions < 1:
        raise ValueError(f"need at least one region, got {n_regions}")
    size = n_pixels / n_regions
    return strip_weights(n_pixels, [(i * size, (i + 1) * size) for i in range(n_regions)])


def _check_stack(patterns: np.ndarray) -> np.ndarray:
    patterns = np.asarray(patterns)
    if patterns.ndim == 2:
        patterns = patterns[None]
    if patterns.ndim < 3:
        raise ValueError(f"patterns must be (h, w), (n, h, w) or (rows, cols, h, w), got shape {patterns.shape}")
    if patterns.dtype == np.bool_:
        patterns = patterns.view(np.uint8)  # True/False as intensities 1 and 0
    if patterns.dtype.kind not in "uif":
        raise ValueError(f"patterns must be integer or float, got dtype {patterns.dtype}")
    if min(patterns.shape[-2:]) < 1:
        raise ValueError(f"patterns of shape {patterns.shape} have no pixel")
    if (patterns.dtype.kind == "f" and patterns.dtype != np.float32) or patterns.dtype == np.uint64:
        patterns = patterns.astype(np.float64, copy=False)  # uint64 sums would not fit the int64 accumulator
    return patterns


def weighted_means(patterns: np.ndarray, row_weights: np.ndarray, col_weights: np.ndarray) -> np.ndarray:
    """``row_weights @ P @ col_weights.T`` for each pattern of a stack of any leading shape."""
    patterns = _check_stack(patterns)
    lead, (h, w) = patterns.shape[:-2], patterns.shape[-2:]
    if row_weights.shape[1] != h or col_weights.shape[1] != w:
        raise ValueError(f"weights for {row_weights.shape[1]} x {col_weights.shape[1]} pixels do not fit patterns of {h} x {w}")
    stack = np.ascontiguousarray(patterns.reshape(-1, h, w))
    out = np.empty((stack.shape[0], row_weights.shape[0], col_weights.shape[0]), dtype=np.float64)
    col_sum = np.empty(w, dtype=np.int64 if stack.dtype.kind in "ui" else np.float64)
    _kernels.region_means(
        stack, out, col_sum, *_kernels.interval_segments(row_weights), *_kernels.interval_segments(col_weights)
    )
    return out.reshape(*lead, *out.shape[1:])


def vbse_array(patterns: np.ndarray, *, grid: str | Sequence[int] | int = (7, 7)) -> np.ndarray:
    """Mean intensity of each region of a grid on each pattern.

    Parameters
    ----------
    patterns
        One pattern (h, w), a stack (n, h, w) or a map (rows, cols, h, w).
    grid
        Regions (grid rows, grid cols), ``'7x7'`` or one int for a square
        grid. Regions may cover fractional pixels.

    Returns
    -------
    numpy.ndarray
        float64 of shape (..., grid rows, grid cols): the leading shape of
        ``patterns`` (one pattern gives (1, gr, gc)).

    Examples
    --------
    >>> p = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    >>> vbse_array(p, grid=(1, 2)).tolist()
    [[[4.5, 6.5]]]
    >>> float(vbse_array(p, grid="3x3")[0, 1, 1])  # 4/3 pixel columns
    5.5
    """
    gr, gc = parse_grid(grid)
    patterns = _check_stack(patterns)
    h, w = patterns.shape[-2:]
    return weighted_means(patterns, region_weights(h, gr), region_weights(w, gc))


def diode_weights(shape: tuple[int, int], *, strip: float = 0.15, splits: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Row and column weights of the virtual forward-scatter diodes.

    Two strips of ``strip`` x height pixels, at the top (row 0) and the
    bottom of the detector, each split into ``splits`` equal parts from left
    to right.
    """
    h, w = shape
    if not 0.0 < strip <= 0.5:
        raise ValueError(f"diode strip height {strip} must be a fraction of the pattern height in (0, 0.5]")
    t = strip * h
    rows = strip_weights(h, [(0.0, t), (h - t, float(h))])
    return rows, region_weights(w, splits)


def diode_array(patterns: np.ndarray, *, strip: float = 0.15, splits: int = 3) -> np.ndarray:
    """Virtual forward-scatter diode signals of each pattern.

    Parameters
    ----------
    patterns
        (h, w), (n, h, w) or (rows, cols, h, w).
    strip
        Height of each diode strip as a fraction of the pattern height.
    splits
        Number of diodes per strip (left to right).

    Returns
    -------
    numpy.ndarray
        (..., 2, splits): mean intensity of [top, bottom] x [left ... right].

    Examples
    --------
    >>> p = np.zeros((1, 10, 6)); p[0, -1, :2] = 1.0
    >>> diode_array(p, strip=0.1).tolist()
    [[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]]
    """
    patterns = _check_stack(patterns)
    rows, cols = diode_weights(patterns.shape[-2:], strip=strip, splits=splits)
    return weighted_means(patterns, rows, cols)


def total_bse(patterns: np.ndarray, *, mode: str = "mean") -> np.ndarray:
    """Total BSE signal of each pattern: the mean or the sum of its intensities.

    >>> total_bse(np.ones((2, 3, 4, 5)), mode="sum").tolist()
    [[20.0, 20.0, 20.0], [20.0, 20.0, 20.0]]
    """
    if mode not in ("mean", "sum"):
        raise ValueError(f"mode {mode!r}: expected 'mean' or 'sum'")
    patterns = _check_stack(patterns)
    means = patterns.reshape(*patterns.shape[:-2], -1).mean(axis=-1, dtype=np.float64)
    return means * (patterns.shape[-1] * patterns.shape[-2]) if mode == "sum" else means
