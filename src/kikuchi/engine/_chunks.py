"""Chunks of a map and the one task function that every executor runs.

A chunk is a band of map rows ``r0:r1``. The task reads the chunk's
patterns (plus ``halo`` rows above and below when the operation needs
neighbours), calls the user's function and returns its result. Serial,
threaded and distributed runs call the same :func:`run_chunk`, so their
results are identical.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kikuchi.io.mapstore import EBSDMap

_logger = logging.getLogger(__name__)

#: Default target size of one chunk of patterns, as float32, in bytes.
CHUNK_BYTES = 32 << 20


@dataclass(frozen=True)
class MapSource:
    """Where a worker finds the patterns: file, scan group and dataset.

    An open :class:`EBSDMap` cannot travel to another process; this can.
    """

    path: str
    scan: str
    dataset: str

    @classmethod
    def of(cls, ebsd_map: EBSDMap) -> MapSource:
        return cls(str(ebsd_map.path.resolve()), ebsd_map.scan, ebsd_map.dataset)


@dataclass(frozen=True)
class Chunk:
    """Map rows ``r0:r1`` of a chunk, and the rows read with their halo."""

    r0: int
    r1: int
    halo: int
    n_rows: int

    @property
    def lo(self) -> int:
        return max(0, self.r0 - self.halo)

    @property
    def hi(self) -> int:
        return min(self.n_rows, self.r1 + self.halo)


def default_chunk_rows(
    ebsd_map: EBSDMap, *, halo_rows: int = 0, workers: int = 1, chunk_bytes: int = CHUNK_BYTES
) -> int:
    """Map rows per chunk.

    About ``chunk_bytes`` of float32 patterns, and small enough to give each
    of several ``workers`` at least three chunks; with halo rows (read and
    processed twice) at least ``8 * halo_rows`` rows when serial (at most
    25 % more work) and ``4 * halo_rows`` in parallel (balance matters more).
    """
    rows, cols = ebsd_map.nav_shape
    per_row = cols * int(np.prod(ebsd_map.pattern_shape)) * 4
    n = max(1, chunk_bytes // max(per_row, 1))
    if workers > 1:
        n = min(n, -(-rows // (3 * workers)))
    n = max(n, (8 if workers == 1 else 4) * halo_rows, 1)
    return int(min(n, rows))


def plan_chunks(n_rows: int, chunk_rows: int, halo: int = 0) -> list[Chunk]:
    """Split ``n_rows`` map rows into chunks of ``chunk_rows`` rows.

    >>> [(c.r0, c.r1, c.lo, c.hi) for c in plan_chunks(5, 2, halo=1)]
    [(0, 2, 0, 3), (2, 4, 1, 5), (4, 5, 3, 5)]
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if halo < 0:
        raise ValueError(f"halo_rows must be >= 0, got {halo}")
    return [Chunk(r0, min(r0 + chunk_rows, n_rows), halo, n_rows) for r0 in range(0, n_rows, chunk_rows)]


# -- maps opened by workers ---------------------------------------------------
_OPEN: OrderedDict[tuple, EBSDMap] = OrderedDict()
_OPEN_LOCK = threading.Lock()
_OPEN_MAX = 4


def _open_source(source: MapSource) -> EBSDMap:
    """Open (or reuse) the map of ``source`` in this process."""
    st = os.stat(source.path)
    key = (source.path, source.scan, source.dataset, st.st_mtime_ns, st.st_size)
    with _OPEN_LOCK:
        m = _OPEN.get(key)
        if m is not None:
            _OPEN.move_to_end(key)
            return m
        m = EBSDMap(source.path, scan=source.scan, dataset=source.dataset)
        _OPEN[key] = m
        while len(_OPEN) > _OPEN_MAX:
            _, old = _OPEN.popitem(last=False)
            old.close()
        return m


def close_sources() -> int:
    """Close the maps that :func:`run_chunk` opened in this process; returns how many."""
    with _OPEN_LOCK:
        n = len(_OPEN)
        while _OPEN:
            _, m = _OPEN.popitem()
            m.close()
    return n


def run_chunk(
    source: MapSource | EBSDMap,
    chunk: Chunk,
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    *,
    block: bool,
    positions: bool,
) -> tuple[np.ndarray, Any]:
    """Read one chunk, apply ``func``, return ``(storage indices, result)``.

    Parameters
    ----------
    source
        An open map (serial and threaded runs) or a :class:`MapSource`
        (distributed runs: the worker opens the file itself).
    chunk
        The map rows to compute.
    func
        Pattern mode (``block=False``): ``func(patterns (n, h, w), **kwargs)``
        returns one result per pattern, ``(n, ...)``. Block mode
        (``block=True``): ``func(block (r, cols, h, w), have=(r, cols) bool,
        core=(i0, i1), **kwargs)`` receives the chunk's rows with their halo
        (points without a pattern are zeros, ``have`` False) and returns
        results for the core rows ``block[i0:i1]``, shape ``(i1 - i0, cols, ...)``
        (or a tuple of such arrays).
    kwargs
        Keyword arguments of ``func``.
    block
        Block mode (see ``func``).
    positions
        Also pass ``rows=`` and ``cols=``: the map position of each pattern
        (pattern mode, shape (n,)) or of each block row and column (block mode).

    Returns
    -------
    indices
        Storage indices of the patterns of the core rows (pattern mode), or
        the (r1 - r0, cols) index map of the core rows (block mode, -1 where
        no pattern).
    result
        What ``func`` returned.
    """
    m = source if isinstance(source, EBSDMap) else _open_source(source)
    index_map = m.index_map
    kwargs = dict(kwargs)
    if block:
        lo, hi = chunk.lo, chunk.hi
        data = m.read_rows(lo, hi)  # a row-major run without gaps is one read, no copies
        have = index_map[lo:hi] >= 0
        if positions:
            kwargs["rows"] = np.arange(lo, hi)
            kwargs["cols"] = np.arange(m.nav_shape[1])
        core = (chunk.r0 - lo, chunk.r1 - lo)
        result = _call(func, chunk, data, have=have, core=core, **kwargs)
        expected = (chunk.r1 - chunk.r0, m.nav_shape[1])
        first = result[0] if isinstance(result, tuple) else result
        if np.shape(first)[:2] != expected:
            raise ValueError(
                f"{getattr(func, '__name__', func)} returned shape {np.shape(first)} for map rows "
                f"{chunk.r0}:{chunk.r1}; expected (rows, cols, ...) = {expected}"
            )
        return index_map[chunk.r0 : chunk.r1], result
    idx = index_map[chunk.r0 : chunk.r1]
    rr, cc = np.nonzero(idx >= 0)
    indices = idx[rr, cc]
    patterns = m.read_indices(indices)  # one contiguous read when the rows are stored row-major
    if positions:
        kwargs["rows"] = rr + chunk.r0
        kwargs["cols"] = cc
    result = _call(func, chunk, patterns, **kwargs)
    if len(result) != len(indices):
        raise ValueError(
            f"{getattr(func, '__name__', func)} returned {len(result)} results for the "
            f"{len(indices)} patterns of map rows {chunk.r0}:{chunk.r1}; expected one per pattern"
        )
    return indices, result


def _call(func: Callable[..., Any], chunk: Chunk, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        exc.add_note(f"(while processing map rows {chunk.r0}:{chunk.r1})")
        raise
