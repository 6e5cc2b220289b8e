"""Chunks of a map and the one task function that every executor runs.

A chunk is a band of map rows ``r0:r1``, or a tile of columns ``c0:c1`` of
those rows when a band would not fit the memory budget. The task reads the
chunk's patterns (plus ``halo`` rows above and below, and columns on either
side of a tile, when the operation needs neighbours), calls the user's
function and returns its result. Serial,
threaded and distributed runs call the same :func:`run_chunk`, so their
results are identical.

A chunk whose patterns cannot be read because the file is damaged there
(:class:`~kikuchi.io._h5.BadChunkError`) ends the run (``on_bad_chunk='raise'``,
the default) or, with ``on_bad_chunk='skip'``, the patterns of the damaged
chunk are left out: the chunk is computed as if those points had no pattern,
and the engine reports them (see :func:`bad_chunk_policy`).
"""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from kikuchi.io._h5 import BadChunkError
from kikuchi.io.source import EBSDMap, open_map

_logger = logging.getLogger(__name__)

#: Default target size of one chunk of patterns, as float32, in bytes.
CHUNK_BYTES = 32 << 20

#: What a run does about a chunk of the file that cannot be decoded.
ON_BAD_CHUNK = ("raise", "skip")
_ON_BAD_CHUNK: contextvars.ContextVar[str] = contextvars.ContextVar("kikuchi_on_bad_chunk", default="raise")


@contextlib.contextmanager
def bad_chunk_policy(policy: str) -> Iterator[None]:
    """The default ``on_bad_chunk`` of the engine's runs inside the block (as ``numpy.errstate`` for errors).

    For functions that run the engine without taking the option themselves
    (:func:`kikuchi.imaging.vbse_maps`, :func:`kikuchi.index.index_map`, ...):
    ``'skip'`` carries on past damaged chunks, whose points are then read as
    points without a pattern (index map -1, counted in the map's
    ``unreadable_points``, said in a warning and in its ``notes``).

    Examples
    --------
    >>> with bad_chunk_policy("skip"):
    ...     resolve_on_bad_chunk(None)
    'skip'
    >>> resolve_on_bad_chunk(None)
    'raise'
    """
    token = _ON_BAD_CHUNK.set(resolve_on_bad_chunk(policy))
    try:
        yield
    finally:
        _ON_BAD_CHUNK.reset(token)


def resolve_on_bad_chunk(on_bad_chunk: str | None) -> str:
    """``on_bad_chunk`` checked; None: the one of the enclosing :func:`bad_chunk_policy` ('raise' outside any)."""
    if on_bad_chunk is None:
        return _ON_BAD_CHUNK.get()
    if on_bad_chunk not in ON_BAD_CHUNK:
        raise ValueError(f"on_bad_chunk must be one of {', '.join(map(repr, ON_BAD_CHUNK))}, got {on_bad_chunk!r}")
    return on_bad_chunk


#: (the error, storage indices left out) of each damaged chunk a task read around.
Skipped = list[tuple[BadChunkError, np.ndarray]]


def iter_blocks(m: EBSDMap, *, on_bad_chunk: str | None = None) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(start, stop, patterns, read)`` in storage order, chunk by chunk (:meth:`EBSDMap.iter_chunks`).

    ``read`` is True for the patterns read; with ``on_bad_chunk='skip'`` the
    patterns of damaged chunks are zeros and False there (not marked in
    the map: the run that follows meets them again and does).
    """
    if resolve_on_bad_chunk(on_bad_chunk) == "raise":
        for start, stop, block in m.iter_chunks():
            yield start, stop, block, np.ones(stop - start, dtype=bool)
        return
    n = m.chunk_patterns
    for start in range(0, m.n_patterns, n):
        stop = min(start + n, m.n_patterns)
        block, read, _ = read_skipping(m, np.arange(start, stop), on_bad_chunk="skip")
        yield start, stop, block, read


def _read_range_skipping(m: EBSDMap, lo: int, hi: int, out: np.ndarray, bad: np.ndarray, skipped: Skipped) -> None:
    """Patterns ``lo:hi`` into ``out``; the patterns of damaged chunks are left out (``bad`` True) and recorded."""
    if lo >= hi:
        return
    try:
        m._read_range(lo, hi, out)  # noqa: SLF001 - the engine reads runs straight into place, as EBSDMap.read does
        return
    except BadChunkError as exc:
        a, b = max(lo, exc.start), min(hi, exc.stop)
        if a >= b:  # about patterns outside this run: nothing here to leave out
            raise
        bad[a - lo : b - lo] = True
        out[a - lo : b - lo] = 0
        skipped.append((exc, np.arange(a, b, dtype=np.int64)))
        _read_range_skipping(m, lo, a, out[: a - lo], bad[: a - lo], skipped)
        _read_range_skipping(m, b, hi, out[b - lo :], bad[b - lo :], skipped)


def read_skipping(m: EBSDMap, indices: np.ndarray, *, on_bad_chunk: str = "raise") -> tuple[np.ndarray, np.ndarray, Skipped]:
    """The patterns at storage ``indices`` (any shape; -1: no pattern, zeros), those read, and the damaged chunks read around.

    With ``on_bad_chunk='raise'`` a damaged chunk raises its
    :class:`~kikuchi.io._h5.BadChunkError`. With ``'skip'`` the patterns it
    holds are zeros, False in the returned mask, and listed in the third
    value with the error (each run of storage indices is read on its own
    after a first failure, so one damaged chunk costs only its own patterns).
    """
    indices = np.asarray(indices, dtype=np.int64)
    have = indices >= 0
    shape = (*indices.shape, *m.pattern_shape)
    try:
        if have.all():
            return m.read_indices(indices), have, []
        data = np.zeros(shape, dtype=m.dtype)
        if have.any():
            data[have] = m.read_indices(indices[have])
        return data, have, []
    except BadChunkError:
        if on_bad_chunk != "skip":
            raise
    uniq = np.unique(indices[have])
    block = np.empty((uniq.size, *m.pattern_shape), dtype=m.dtype)
    bad = np.zeros(uniq.size, dtype=bool)
    skipped: Skipped = []
    breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
    for a, b in zip(np.r_[0, breaks], np.r_[breaks, uniq.size]):
        a, b = int(a), int(b)
        _read_range_skipping(m, int(uniq[a]), int(uniq[b - 1]) + 1, block[a:b], bad[a:b], skipped)
    data = np.zeros(shape, dtype=m.dtype)
    pos = np.searchsorted(uniq, indices[have])
    data[have] = block[pos]
    have = have.copy()
    have[have] = ~bad[pos]
    return data, have, skipped


@dataclass(frozen=True)
class MapSource:
    """Where a worker finds the patterns: the file and the options that open it (format, scan, dataset, ...).

    An open :class:`EBSDMap` cannot travel to another process; this can.
    """

    path: str
    options: tuple[tuple[str, Any], ...]

    @classmethod
    def of(cls, ebsd_map: EBSDMap) -> MapSource:
        return cls(str(ebsd_map.path.resolve()), tuple(sorted(ebsd_map.open_options.items())))


@dataclass(frozen=True)
class Chunk:
    """Map rows ``r0:r1`` and columns ``c0:c1`` of a chunk, and what is read with its halo.

    A chunk is a band of whole map rows, or a tile (part of the columns)
    when a band would not fit the memory budget.
    """

    r0: int
    r1: int
    halo: int
    n_rows: int
    c0: int = 0
    c1: int = -1  # -1: to the last column (a band of whole rows)

    @property
    def lo(self) -> int:
        return max(0, self.r0 - self.halo)

    @property
    def hi(self) -> int:
        return min(self.n_rows, self.r1 + self.halo)

    def columns(self, n_cols: int) -> tuple[int, int]:
        """The chunk's map columns ``(c0, c1)`` on a map ``n_cols`` wide."""
        return self.c0, n_cols if self.c1 < 0 else self.c1

    def read_columns(self, n_cols: int) -> tuple[int, int]:
        """The columns read with the halo."""
        c0, c1 = self.columns(n_cols)
        return max(0, c0 - self.halo), min(n_cols, c1 + self.halo)


#: Halo rows (and columns) are read and computed twice; chunks of at least this many
#: times the halo keep that extra work at 2 / HALO_FACTOR (12.5 %) or below.
HALO_FACTOR = 16
#: A band of rows with a halo may hold this many times ``chunk_bytes`` before it is cut
#: into tiles (taller chunks waste less on their halo).
HALO_BUDGET = 4


def default_chunk_shape(
    ebsd_map: EBSDMap,
    *,
    halo_rows: int = 0,
    workers: int = 1,
    chunk_bytes: int = CHUNK_BYTES,
    col_align: int | None = 1,
) -> tuple[int, int | None]:
    """Map rows and columns per chunk: ``(rows, cols)``, ``cols`` None for bands of whole rows.

    About ``chunk_bytes`` of float32 patterns per chunk, and small enough to
    give each of several ``workers`` at least three chunks. With halo rows
    (read and processed twice) chunks are at least ``HALO_FACTOR`` halos
    tall (serial) or 4 halos (in parallel, when the map is too short to give
    every worker three such chunks), and up to ``HALO_BUDGET`` times
    ``chunk_bytes``. Where a band of those rows would exceed the budget (wide
    maps of large patterns) the chunks are tiles of ``cols`` columns, a
    multiple of ``col_align`` (None: never tiles), so memory stays bounded
    whatever the width of the map.
    """
    rows, cols = ebsd_map.nav_shape
    per_pattern = int(np.prod(ebsd_map.pattern_shape)) * 4
    target = max(1, chunk_bytes // per_pattern)  # patterns per chunk
    budget = target * (HALO_BUDGET if halo_rows else 1)
    n = max(1, target // cols)
    if halo_rows:
        n = max(n, HALO_FACTOR * halo_rows)
    if workers > 1:
        n = min(n, max(-(-rows // (3 * workers)), 4 * halo_rows))
    n = max(1, min(n, rows))
    if col_align is None or n * cols <= budget:
        return int(n), None
    width = max(col_align, budget // n // col_align * col_align, HALO_FACTOR * halo_rows // col_align * col_align)
    return int(n), (int(width) if width < cols else None)


def plan_chunks(n_rows: int, chunk_rows: int, halo: int = 0, *, n_cols: int | None = None, chunk_cols: int | None = None) -> list[Chunk]:
    """Split ``n_rows`` map rows into chunks of ``chunk_rows`` rows (and, with
    ``chunk_cols``, the ``n_cols`` columns into tiles of that many), row by row.

    >>> [(c.r0, c.r1, c.lo, c.hi) for c in plan_chunks(5, 2, halo=1)]
    [(0, 2, 0, 3), (2, 4, 1, 5), (4, 5, 3, 5)]
    >>> [(c.r0, c.r1, c.c0, c.c1) for c in plan_chunks(3, 2, n_cols=5, chunk_cols=3)]
    [(0, 2, 0, 3), (0, 2, 3, 5), (2, 3, 0, 3), (2, 3, 3, 5)]
    """
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    if halo < 0:
        raise ValueError(f"halo_rows must be >= 0, got {halo}")
    if chunk_cols is None or n_cols is None or chunk_cols >= n_cols:
        return [Chunk(r0, min(r0 + chunk_rows, n_rows), halo, n_rows) for r0 in range(0, n_rows, chunk_rows)]
    if chunk_cols < 1:
        raise ValueError(f"chunk_cols must be at least 1, got {chunk_cols}")
    return [
        Chunk(r0, min(r0 + chunk_rows, n_rows), halo, n_rows, c0, min(c0 + chunk_cols, n_cols))
        for r0 in range(0, n_rows, chunk_rows)
        for c0 in range(0, n_cols, chunk_cols)
    ]


# -- maps opened by workers ---------------------------------------------------
_OPEN: OrderedDict[tuple, EBSDMap] = OrderedDict()
_OPEN_LOCK = threading.Lock()
_OPEN_MAX = 4


def _open_source(source: MapSource) -> EBSDMap:
    """Open (or reuse) the map of ``source`` in this process."""
    st = os.stat(source.path)
    key = (source.path, source.options, st.st_mtime_ns, st.st_size)
    with _OPEN_LOCK:
        m = _OPEN.get(key)
        if m is not None:
            _OPEN.move_to_end(key)
            return m
        m = open_map(source.path, **dict(source.options))
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
    on_bad_chunk: str = "raise",
) -> tuple[np.ndarray, Any, Skipped]:
    """Read one chunk, apply ``func``, return ``(storage indices, result, damaged chunks read around)``.

    Parameters
    ----------
    source
        An open map (serial and threaded runs) or a :class:`MapSource`
        (distributed runs: the worker opens the file itself).
    chunk
        The map rows (and columns) to compute.
    func
        Pattern mode (``block=False``): ``func(patterns (n, h, w), **kwargs)``
        returns one result per pattern, ``(n, ...)``. Block mode
        (``block=True``): ``func(block (r, cols, h, w), have=(r, cols) bool,
        core=(i0, i1), **kwargs)`` receives the chunk's rows with their halo
        (points without a pattern are zeros, ``have`` False) and returns
        results for the core rows ``block[i0:i1]``, shape ``(i1 - i0, cols, ...)``
        (or a tuple of such arrays). For a tile the block also holds the halo
        columns on either side: a function that takes a ``core_cols=(j0, j1)``
        keyword (by name or through ``**kwargs``) gets the tile's own columns
        and returns only those (``(i1 - i0, j1 - j0, ...)``); from any other
        the halo columns of the result are cut off here.
    kwargs
        Keyword arguments of ``func``.
    block
        Block mode (see ``func``).
    positions
        Also pass ``rows=`` and ``cols=``: the map position of each pattern
        (pattern mode, shape (n,)) or of each block row and column (block mode).
    on_bad_chunk
        'raise': a damaged chunk of the file ends the task with its
        :class:`~kikuchi.io._h5.BadChunkError`; 'skip': its patterns are
        computed as points without a pattern (left out in pattern mode,
        ``have`` False in block mode).

    Returns
    -------
    indices
        Storage indices of the patterns of the chunk (pattern mode), or the
        (r1 - r0, c1 - c0) index map of the chunk (block mode, -1 where no
        pattern); patterns of damaged chunks left out.
    result
        What ``func`` returned.
    skipped
        ``(error, storage indices)`` of each damaged chunk read around (empty
        unless ``on_bad_chunk='skip'``).
    """
    m = source if isinstance(source, EBSDMap) else _open_source(source)
    index_map = m.index_map  # one snapshot for the whole task: the run may mark damaged points meanwhile
    skipped: Skipped = []
    n_cols = m.nav_shape[1]
    c0, c1 = chunk.columns(n_cols)
    kwargs = dict(kwargs)
    if block:
        lo, hi = chunk.lo, chunk.hi
        clo, chi = chunk.read_columns(n_cols)
        tile = (c0, c1) != (0, n_cols)
        if on_bad_chunk == "skip":
            data, have, skipped = read_skipping(m, index_map[lo:hi, clo:chi], on_bad_chunk=on_bad_chunk)
        else:
            data = m.read_rows(lo, hi, cols=(clo, chi))  # whole rows without gaps: one read, no copies
            have = index_map[lo:hi, clo:chi] >= 0
        if positions:
            kwargs["rows"] = np.arange(lo, hi)
            kwargs["cols"] = np.arange(clo, chi)
        core = (chunk.r0 - lo, chunk.r1 - lo)
        crop = tile and not _takes(func, "core_cols")
        if tile and not crop:
            kwargs["core_cols"] = (c0 - clo, c1 - clo)
        result = _call(func, chunk, data, have=have, core=core, **kwargs)
        if crop:  # the function computed the halo columns too: keep the chunk's own
            keep = np.s_[:, c0 - clo : c1 - clo]
            result = tuple(np.asarray(r)[keep] for r in result) if isinstance(result, tuple) else np.asarray(result)[keep]
        expected = (chunk.r1 - chunk.r0, c1 - c0)
        first = result[0] if isinstance(result, tuple) else result
        if np.shape(first)[:2] != expected:
            raise ValueError(
                f"{getattr(func, '__name__', func)} returned shape {np.shape(first)} for map rows "
                f"{chunk.r0}:{chunk.r1}, columns {c0}:{c1}; expected (rows, cols, ...) = {expected}"
            )
        core_have = have[chunk.r0 - lo : chunk.r1 - lo, c0 - clo : c1 - clo]
        return np.where(core_have, index_map[chunk.r0 : chunk.r1, c0:c1], -1), result, skipped
    idx = index_map[chunk.r0 : chunk.r1, c0:c1]
    rr, cc = np.nonzero(idx >= 0)
    indices = idx[rr, cc]
    if on_bad_chunk == "skip":
        patterns, read, skipped = read_skipping(m, indices, on_bad_chunk=on_bad_chunk)
        if not read.all():
            patterns, rr, cc, indices = patterns[read], rr[read], cc[read], indices[read]
    else:
        patterns = m.read_indices(indices)  # one contiguous read when the rows are stored row-major
    if positions:
        kwargs["rows"] = rr + chunk.r0
        kwargs["cols"] = cc + c0
    result = _call(func, chunk, patterns, **kwargs)
    if len(result) != len(indices):
        raise ValueError(
            f"{getattr(func, '__name__', func)} returned {len(result)} results for the "
            f"{len(indices)} patterns of map rows {chunk.r0}:{chunk.r1}; expected one per pattern"
        )
    return indices, result, skipped


def _takes(func: Callable[..., Any], name: str) -> bool:
    """True when ``func`` accepts the keyword ``name`` (by name, or through ``**kwargs``: a wrapper passes it on)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _call(func: Callable[..., Any], chunk: Chunk, *args: Any, **kwargs: Any) -> Any:
    try:
        return func(*args, **kwargs)
    except Exception as exc:
        exc.add_note(f"(while processing map rows {chunk.r0}:{chunk.r1})")
        raise
