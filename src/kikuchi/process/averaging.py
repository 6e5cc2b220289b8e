"""Neighbour pattern averaging (NPA) over a (2n+1) x (2n+1) window of the map."""

from __future__ import annotations

from typing import Any

import numpy as np

from kikuchi.process import _kernels

__all__ = ["average_neighbours", "neighbour_weights"]

WEIGHTS = ("flat", "gaussian")


def neighbour_weights(n: int = 1, *, weights: str = "flat", sigma: float = 1.0) -> np.ndarray:
    """The (2n+1, 2n+1) window of map-point weights.

    ``'flat'``: all 1; ``'gaussian'``: ``exp(-d^2 / (2 sigma^2))`` with d
    the distance in map steps.

    >>> neighbour_weights(1, weights="gaussian", sigma=1.0).round(3)
    array([[0.368, 0.607, 0.368],
           [0.607, 1.   , 0.607],
           [0.368, 0.607, 0.368]])
    """
    if not float(n).is_integer() or n < 0:
        raise ValueError(f"averaging window half-width n must be an integer >= 0, got {n}")
    n = int(n)
    if weights == "flat":
        return np.ones((2 * n + 1, 2 * n + 1))
    if weights == "gaussian":
        if not sigma > 0:
            raise ValueError(f"sigma of the Gaussian weights must be > 0 map steps, got {sigma}")
        d = np.arange(-n, n + 1)
        return np.exp(-(d[:, None] ** 2 + d[None, :] ** 2) / (2.0 * sigma**2))
    raise ValueError(f"weights must be 'flat' or 'gaussian'; got {weights!r}")


#: Pattern dtypes the averaging kernel sums as they are (exactly representable in float32).
_EXACT_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


def average_neighbours(
    patterns: Any,
    *,
    n: int = 1,
    weights: str | np.ndarray = "flat",
    sigma: float = 1.0,
    index_map: Any = None,
    have: Any = None,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
) -> np.ndarray:
    """Average each pattern with its neighbours on the map.

    The result at (r, c) is the weighted mean of the patterns at
    (r + i, c + j), |i|, |j| <= n, over the points inside the map that have
    a pattern (weights renormalised to the points present, so map borders and
    gaps do not darken the result).

    Parameters
    ----------
    patterns
        (rows, cols, h, w) map of patterns, or (N, h, w) patterns in storage
        order with ``index_map``.
    n
        Half-width of the window: n = 1 averages 3 x 3 patterns.
    weights
        'flat', 'gaussian' or a (2n+1, 2n+1) array.
    sigma
        Std of the Gaussian weights in map steps.
    index_map
        (rows, cols) storage index of each point, -1 where no pattern
        (with (N, h, w) input).
    have
        (rows, cols) bool, points with a pattern (with (rows, cols, h, w)
        input; default all).
    rows
        Compute only map rows ``rows[0]:rows[1]`` (the others serve as
        neighbours: used by the engine for chunks with halo rows).
    cols
        Compute only map columns ``cols[0]:cols[1]`` (with (rows, cols, h, w)
        input; the explorer averages one point this way).

    Returns
    -------
    numpy.ndarray
        float32, (rows, cols, h, w) (or the requested rows), or (N, h, w) in
        storage order with ``index_map``. Points without a pattern are 0.

    Examples
    --------
    >>> p = np.zeros((1, 3, 1, 1)); p[0, 1] = 3.0
    >>> average_neighbours(p, n=1)[0, :, 0, 0]
    array([1.5, 1. , 1.5], dtype=float32)
    """
    a = np.asarray(patterns)
    if index_map is not None:
        idx = np.asarray(index_map)
        if a.ndim != 3 or idx.ndim != 2:
            raise ValueError(f"with index_map, patterns must be (N, h, w) and index_map (rows, cols); got {a.shape}, {idx.shape}")
        if idx.max(initial=-1) >= len(a):
            raise ValueError(f"index_map refers to pattern {idx.max()} but only {len(a)} patterns were given")
        have_ = idx >= 0
        block = np.zeros((*idx.shape, *a.shape[1:]), dtype=np.float32)
        block[have_] = a[idx[have_]]
    else:
        if a.ndim != 4:
            raise ValueError(f"patterns must be a map (rows, cols, h, w) or (N, h, w) with index_map; got shape {a.shape}")
        # uint8/uint16 patterns are summed as they are (exact in float64, as
        # after a cast to float32) without a float copy of the whole window
        block = np.ascontiguousarray(a, dtype=None if a.dtype in _EXACT_DTYPES else np.float32)
        have_ = np.ones(a.shape[:2], dtype=bool) if have is None else np.asarray(have, dtype=bool)
        if have_.shape != a.shape[:2]:
            raise ValueError(f"have of shape {have_.shape} does not fit the map {a.shape[:2]}")
    if isinstance(weights, str):
        w = neighbour_weights(n, weights=weights, sigma=sigma)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != w.shape[1] or w.shape[0] % 2 == 0:
            raise ValueError(f"weights must be a square array of odd size (2n+1, 2n+1); got shape {w.shape}")
    r0, r1 = (0, block.shape[0]) if rows is None else rows
    if cols is not None and index_map is not None:
        raise ValueError("cols applies to (rows, cols, h, w) input, not to (N, h, w) patterns with index_map")
    c0, c1 = (0, block.shape[1]) if cols is None else cols
    if not (0 <= r0 <= r1 <= block.shape[0] and 0 <= c0 <= c1 <= block.shape[1]):
        raise ValueError(f"rows {r0}:{r1} and cols {c0}:{c1} must lie within the map {block.shape[:2]}")
    out = np.zeros((r1 - r0, c1 - c0, *block.shape[2:]), dtype=np.float32)
    _kernels.average_neighbours_kernel(
        block, np.ascontiguousarray(have_), w.astype(np.float64), int(r0), int(r1), int(c0), int(c1), out
    )
    if index_map is not None:
        result = np.zeros((len(a), *a.shape[1:]), dtype=np.float32)
        result[idx[have_]] = out[have_]
        return result
    return out
