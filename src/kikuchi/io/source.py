"""Pattern sources: every file of EBSD patterns, opened lazily, through one interface.

A *pattern source* is an :class:`EBSDMap`: a map of ``nav_shape`` (rows,
cols) points, each with at most one pattern of ``pattern_shape`` (height,
width). Patterns are read only when asked for: one at (row, col), a block
of map rows, a list of storage indices, or chunk by chunk in storage order
(the order in the file). ``index_map`` (rows, cols) gives the storage index
of the pattern at each point, -1 where the point has none (ROIs,
non-rectangular scans, missing or truncated patterns).

Each file format is a module of :mod:`kikuchi.io` that declares a
:class:`FormatSpec` named ``FORMAT``: its name, extensions, how to recognise
a file by its content, and how to open it. :func:`open_map` (``kikuchi.open``)
recognises the format by content first, then by extension, and opens it.
The kikuchi map file (:mod:`kikuchi.io.mapstore`) is one format among the
others.

Everything downstream (processing, imaging, indexing, the explorer, the
engine's workers) reads through this interface and never needs to know the
format. Geometry is given in kikuchi's conventions: the pattern centre as
:class:`PatternCentreData` in Bruker's convention, with the convention the
file stored recorded in ``file_convention``; tilts in degrees; steps in µm.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import logging
import os
import re
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi._cpus import available_cpus

__all__ = [
    "EBSDMap",
    "FormatSpec",
    "MapFileError",
    "MapPositionError",
    "PatternCentreData",
    "Probe",
    "default_chunk_patterns",
    "formats",
    "identify",
    "open_map",
    "place_patterns",
]

_logger = logging.getLogger(__name__)

#: Target uncompressed size of one pattern chunk (the natural read unit).
CHUNK_BYTES = 1 << 20

#: Modules that declare a ``FORMAT``, in the order their content tests run
#: (specific layouts first; the kikuchi map file, whose layout others resemble, last).
FORMAT_MODULES = (
    "kikuchi.io.bruker",
    "kikuchi.io.h5oina",
    "kikuchi.io.edax_h5",
    "kikuchi.io.emsoft",
    "kikuchi.io.ebsp",
    "kikuchi.io.edax_up",
    "kikuchi.io.nordif",
    "kikuchi.io.mapstore",
)


class MapFileError(ValueError):
    """A pattern file is missing something, is inconsistent, or is not a pattern file.

    The message is one line (line breaks of quoted values are folded).
    """

    def __init__(self, message: object = "") -> None:
        super().__init__(_one_line(message))


class MapPositionError(IndexError):
    """A map position outside the map or without a pattern."""


class MapFileWarning(UserWarning):
    """A pattern file has an oddity that was read around (the message says what and how)."""


#: True while :func:`open_map` opens with ``strict=True``: :meth:`EBSDMap._note` raises instead of warning.
_STRICT: contextvars.ContextVar[bool] = contextvars.ContextVar("kikuchi_strict_open", default=False)


def _whole(value: Any, name: str) -> int:
    """A position or count given as a whole number (Python or numpy int, not bool); TypeError naming it otherwise."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    from kikuchi._args import ArgumentTypeError

    raise ArgumentTypeError(f"{name}={short_repr(value)}: expected a whole number, got {type(value).__name__}")


def _one_line(message: object) -> str:
    """``message`` as one line: line breaks and the indentation after them folded into one space."""
    return re.sub(r"\s*\n\s*", " ", str(message)).strip()


def short_repr(value: Any, limit: int = 60) -> str:
    """A value as it is quoted in messages: one line, at most about ``limit`` characters.

    >>> short_repr("seventy"), short_repr(np.ones((2, 3)))
    ("'seventy'", 'an array of shape (2, 3) float64')
    """
    if isinstance(value, np.ndarray) and value.size != 1:
        return f"an array of shape {value.shape} {value.dtype}"
    if isinstance(value, np.ndarray):
        value = value.reshape(()).item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = _one_line(repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def default_chunk_patterns(pattern_shape: Sequence[int], dtype: Any, n_patterns: int | None = None) -> int:
    """Patterns per chunk: about 1 MiB uncompressed, at least one.

    >>> default_chunk_patterns((60, 60), "uint8")
    291
    >>> default_chunk_patterns((240, 240), "uint16")
    9
    """
    nbytes = int(np.prod(pattern_shape)) * np.dtype(dtype).itemsize
    n = max(1, CHUNK_BYTES // nbytes)
    if n_patterns is not None:
        n = max(1, min(n, n_patterns))
    return int(n)


@dataclass(frozen=True)
class PatternCentreData:
    """Pattern centre, one value per map point.

    ``pcx``, ``pcy``, ``dd`` have the map's navigation shape (rows, cols),
    NaN where unknown; ``convention`` names their meaning (see
    docs/conventions.md). Vendor sources give them in Bruker's convention
    and record the file's own convention in ``file_convention``.
    """

    pcx: np.ndarray
    pcy: np.ndarray
    dd: np.ndarray
    convention: str
    file_convention: str | None = None

    @property
    def mean(self) -> tuple[float, float, float]:
        return (float(np.nanmean(self.pcx)), float(np.nanmean(self.pcy)), float(np.nanmean(self.dd)))

    @property
    def is_uniform(self) -> bool:
        """True when every point has the same PC."""
        stack = np.stack([self.pcx, self.pcy, self.dd], axis=-1).reshape(-1, 3)
        known = stack[np.all(np.isfinite(stack), axis=1)]
        return known.size == 0 or bool(np.allclose(known, known[0], rtol=0, atol=1e-7))


def place_patterns(values: Any, index_map: np.ndarray, *, fill: float = np.nan) -> np.ndarray:
    """Per-pattern values (storage order, first axis) placed on the map: (rows, cols, ...), ``fill`` where no pattern.

    >>> place_patterns([10.0, 20.0], np.array([[1, -1]])).tolist()
    [[20.0, nan]]
    """
    values = np.asarray(values)
    out = np.full((*index_map.shape, *values.shape[1:]), fill, dtype=np.result_type(values.dtype, np.float64) if np.isnan(fill) else values.dtype)
    have = index_map >= 0
    out[have] = values[index_map[have]]
    return out


def index_map_from_positions(
    rows: np.ndarray, cols: np.ndarray, nav_shape: tuple[int, int], *, where: str
) -> tuple[np.ndarray, int]:
    """(rows, cols) index map of patterns at map positions ``(rows[i], cols[i])``, and the number of duplicates.

    Patterns at negative positions are skipped (not placed). The first
    pattern at a position wins; later ones at the same position are counted.
    Raises :class:`MapFileError` for positions past the map.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    nr, nc = nav_shape
    valid = (rows >= 0) & (cols >= 0)
    bad = valid & ((rows >= nr) | (cols >= nc))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MapFileError(f"{where}: pattern {i} is at (row {rows[i]}, col {cols[i]}), outside the {nr} x {nc} map")
    index_map = np.full(nav_shape, -1, dtype=np.int64)
    idx = np.flatnonzero(valid)
    flat = rows[idx] * nc + cols[idx]
    _, first = np.unique(flat, return_index=True)
    index_map.reshape(-1)[flat[first]] = idx[first]
    return index_map, int(idx.size - first.size)


class EBSDMap:
    """A map of EBSD patterns in a file, read lazily (the interface of every pattern source).

    Use :func:`kikuchi.open`. Subclasses (one per file format) set the
    state below in their ``__init__`` (through :meth:`_set_map`) and
    implement :meth:`_read_range` and :meth:`close`; everything else has a
    default here that they override where the file knows more.

    Attributes
    ----------
    path
        The file (or folder) opened.
    nav_shape
        Map shape (rows, cols).
    pattern_shape
        Pattern shape (height, width) in pixels.
    dtype
        Pattern dtype as stored.
    index_map
        (rows, cols) storage index of the pattern at each point, -1 where none.
    notes
        Oddities of the file that were read around (also logged as warnings).
    """

    #: Name of the format (a key of :func:`formats`).
    format: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _guard_members(cls)

    path: Path
    notes: list[str]

    # -- set-up ------------------------------------------------------------------
    def _set_map(
        self,
        *,
        nav_shape: tuple[int, int],
        pattern_shape: tuple[int, int],
        dtype: Any,
        n_patterns: int,
        index_map: np.ndarray | None = None,
    ) -> None:
        """Record the shapes and the index map (default: row-major, every point a pattern)."""
        self._nav_shape = (int(nav_shape[0]), int(nav_shape[1]))
        self._pattern_shape = (int(pattern_shape[0]), int(pattern_shape[1]))
        self._dtype = np.dtype(dtype)
        self._n_patterns = int(n_patterns)
        if min(self._nav_shape) < 1 or min(self._pattern_shape) < 1 or self._n_patterns < 0:
            raise MapFileError(
                f"{self.path}: a map of {self._nav_shape[0]} x {self._nav_shape[1]} points and patterns of "
                f"{self._pattern_shape[0]} x {self._pattern_shape[1]} pixels: nothing to read"
            )
        if self._dtype.kind not in "uifb" or self._dtype.itemsize > 8:
            raise MapFileError(f"{self.path}: patterns stored as {self._dtype}, not numbers; kikuchi reads integer or float patterns")
        if self._dtype.kind == "b":
            self._note("patterns are stored as booleans (0 and 1): read as they are, a pattern of 1 bit per pixel")
        if index_map is None:
            n = self._nav_shape[0] * self._nav_shape[1]
            index_map = np.arange(n, dtype=np.int64).reshape(self._nav_shape)
            index_map[index_map >= self._n_patterns] = -1
        index_map = np.asarray(index_map, dtype=np.int64)
        if index_map.shape != self._nav_shape:
            raise MapFileError(f"{self.path}: index map of shape {index_map.shape} for a {self._nav_shape} map")
        if index_map.size and (index_map.max() >= self._n_patterns or index_map.min() < -1):
            raise MapFileError(f"{self.path}: index map refers to patterns outside 0..{self._n_patterns - 1}")
        self._index_map = index_map

    def _note(self, message: str) -> None:
        """Record an oddity of the file that was read around, and warn about it.

        Opened with ``strict=True`` (:func:`open_map`), the oddity is a
        :class:`MapFileError` instead.
        """
        if not hasattr(self, "notes"):
            self.notes = []
        if _STRICT.get() or getattr(self, "_strict", False):
            raise MapFileError(f"{self.path}: {message} (an error, not a warning, in strict mode)")
        message = _one_line(message)
        self.notes.append(message)
        warnings.warn(f"{self.path.name}: {message}", MapFileWarning, stacklevel=3)

    def _note_once(self, key: Any, message: str) -> None:
        """:meth:`_note`, once per ``key`` (for values read again on every access)."""
        said = self.__dict__.setdefault("_noted_keys", set())
        if key not in said:
            said.add(key)
            self._note(message)

    def _numeric(self, dataset: Any, where: str) -> np.ndarray | None:
        """A per-point dataset's values as float64, or None (said once) when they are not numbers."""
        kind = getattr(getattr(dataset, "dtype", None), "kind", "")
        if kind not in "iufb" or not kind:
            self._note_once(("not numeric", where), f"{where} holds {getattr(dataset, 'dtype', type(dataset).__name__)} values, not numbers; ignored")
            return None
        return np.asarray(dataset[()], dtype=np.float64)

    def _check_plausible(self) -> None:
        """Note geometry that no instrument writes (a step of 0, a tilt of 1e300, a pattern centre of 1e7): read as stored, said."""
        odd = []
        for axis, (step, count) in enumerate(zip(self.step_um, self.nav_shape)):
            if not np.isfinite(step) or (step <= 0 and count > 1):
                odd.append(f"{('row', 'column')[axis]} step {step:g} µm")
        for name, what in (("sample_tilt_deg", "sample tilt"), ("camera_tilt_deg", "camera tilt")):
            value = getattr(self, name)
            if not (np.isfinite(value) and -90.0 <= value <= 90.0):
                odd.append(f"{what} {value:g}° (outside -90..90)")
        kv = self.kv
        if kv is not None and not (np.isfinite(kv) and 0.0 < kv <= 1000.0):
            odd.append(f"accelerating voltage {kv:g} kV")
        px = self.pixel_size_um
        if px is not None and not (np.isfinite(px) and 0.0 < px <= 1e4):
            odd.append(f"detector pixel size {px:g} µm")
        pc = self.pattern_centre
        if pc is not None:
            for name in ("pcx", "pcy", "dd"):
                values = np.asarray(getattr(pc, name), dtype=np.float64)
                known = values[~np.isnan(values)]
                if known.size and not (np.all(np.isfinite(known)) and np.abs(known).max() <= 1e3):
                    odd.append(f"pattern centre {name.upper()} up to {np.abs(known).max():g}")
        if odd:
            self._note(f"geometry no instrument writes: {', '.join(odd)}; read as stored: check the file's header")

    # -- to implement ----------------------------------------------------------------
    def _read_range(self, start: int, stop: int, out: np.ndarray) -> None:
        """Fill ``out`` (``stop - start`` patterns) with the patterns at storage indices ``start:stop``."""
        raise NotImplementedError  # pragma: no cover - every format implements it

    def close(self) -> None:
        """Close the file."""

    # -- context manager -----------------------------------------------------------
    def __enter__(self) -> EBSDMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        r, c = self.nav_shape
        h, w = self.pattern_shape
        return f"<EBSDMap {self.path.name} ({self.format}): {r} x {c} map, {h} x {w} {self.dtype} patterns ({self.dataset})>"

    # -- how to open it again --------------------------------------------------------
    @property
    def open_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`open_map` that open this same map again (workers of the engine)."""
        return {"format": self.format, "dataset": self.dataset}

    def with_dataset(self, dataset: str) -> EBSDMap:
        """Open the same file again on another pattern dataset."""
        if dataset not in self.datasets:
            raise MapFileError(f"{self.path}: no pattern dataset '{dataset}' (has {', '.join(self.datasets)})")
        return open_map(self.path, **{**self.open_options, "dataset": dataset})

    # -- shapes ------------------------------------------------------------------
    @property
    def nav_shape(self) -> tuple[int, int]:
        return self._nav_shape

    @property
    def pattern_shape(self) -> tuple[int, int]:
        return self._pattern_shape

    @property
    def n_patterns(self) -> int:
        """Patterns stored (storage indices 0 .. n_patterns - 1)."""
        return self._n_patterns

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def chunk_patterns(self) -> int:
        """Patterns per natural read (about 1 MiB, or the file's own chunk)."""
        return default_chunk_patterns(self.pattern_shape, self.dtype, self.n_patterns)

    @property
    def dataset(self) -> str:
        """The pattern dataset read: 'RawPatterns' (as acquired) or 'Patterns' (processed)."""
        return "RawPatterns"

    @property
    def datasets(self) -> list[str]:
        """Pattern datasets of the file."""
        return [self.dataset]

    @property
    def scan(self) -> str | None:
        """Scan group (HDF5 files with several scans), or None."""
        return None

    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step) in µm."""
        return (1.0, 1.0)

    @property
    def grid_type(self) -> str:
        """'square' or 'hexagonal'."""
        return "square"

    # -- index map -----------------------------------------------------------------
    @property
    def index_map(self) -> np.ndarray:
        return self._index_map

    @property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of every stored pattern, in storage order (-1 for patterns not on the map)."""
        rows = np.full(self.n_patterns, -1, dtype=np.int64)
        cols = np.full(self.n_patterns, -1, dtype=np.int64)
        r, c = np.nonzero(self._index_map >= 0)
        idx = self._index_map[r, c]
        rows[idx], cols[idx] = r, c
        return rows, cols

    @property
    def is_row_major(self) -> bool:
        """True when pattern i sits at (i // cols, i % cols) for every point."""
        rows, cols = self.nav_shape
        return self.n_patterns == rows * cols and bool(np.array_equal(self._index_map.ravel(), np.arange(rows * cols)))

    def _index(self, row: int, col: int) -> int:
        rows, cols = self.nav_shape
        row, col = _whole(row, "row"), _whole(col, "col")
        if not (0 <= row < rows and 0 <= col < cols):
            raise MapPositionError(f"{self.path}: map position (row {row}, col {col}) is outside the {rows} x {cols} map")
        i = int(self._index_map[row, col])
        if i < 0:
            raise MapPositionError(f"{self.path}: no pattern at map position (row {row}, col {col})")
        return i

    # -- pattern access --------------------------------------------------------------
    def pattern(self, row: int, col: int) -> np.ndarray:
        """The pattern at map position (row, col), shape (h, w)."""
        i = self._index(row, col)
        return self.read(i, i + 1)[0]

    def __getitem__(self, key: tuple[int, int]) -> np.ndarray:
        if not isinstance(key, tuple) or len(key) != 2:
            raise TypeError(
                f"{self.path}: m[{short_repr(key)}]: give a map position m[row, col] (two whole numbers); "
                "for patterns in storage order use m.read(start, stop)"
            )
        row, col = key
        return self.pattern(row, col)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Patterns ``start:stop`` in storage order, shape (n, h, w)."""
        start = _whole(start, "start")
        stop = None if stop is None else _whole(stop, "stop")
        if start < 0 or (stop is not None and stop < 0):
            raise MapPositionError(
                f"{self.path}: storage index {start if start < 0 else stop} is negative; the patterns are 0..{self.n_patterns - 1}"
            )
        stop = self.n_patterns if stop is None else min(stop, self.n_patterns)
        out = np.empty((max(0, stop - start), *self.pattern_shape), dtype=self.dtype)
        if out.shape[0]:
            self._read_range(start, stop, out)
        return out

    def read_chunk(self, chunk: int, *, cancel: Callable[[], bool] | None = None) -> np.ndarray | None:
        """The patterns of chunk ``chunk``: storage indices ``chunk * n`` to ``(chunk + 1) * n``.

        ``n`` is :attr:`chunk_patterns`; the last chunk may hold fewer. The
        unit of readers that cache what they read (the explorer). Formats
        that decompress look at ``cancel`` while they do and return None
        when it turns true.
        """
        n = self.chunk_patterns
        start = _whole(chunk, "chunk") * n
        if not 0 <= start < self.n_patterns:
            raise MapPositionError(f"{self.path}: chunk {chunk} is outside the {self.n_patterns} patterns ({n} per chunk)")
        if cancel is not None and cancel():
            return None
        return self.read(start, min(start + n, self.n_patterns))

    def read_indices(self, indices: Any) -> np.ndarray:
        """Patterns at arbitrary storage indices (any order, repeats allowed), shape (*indices.shape, h, w)."""
        given = np.asarray(indices)
        if given.size and given.dtype.kind not in "iu":
            raise TypeError(f"{self.path}: storage indices of {given.dtype} ({short_repr(indices)}): expected whole numbers")
        indices = given.astype(np.int64, copy=False)
        if indices.size == 0:
            return np.empty((*indices.shape, *self.pattern_shape), dtype=self.dtype)
        flat = indices.reshape(-1)
        lo = int(flat[0])
        if 0 <= lo and lo + flat.size <= self.n_patterns and np.array_equal(flat, np.arange(lo, lo + flat.size)):
            # one contiguous run in storage order (row-major maps): read it straight into place
            return self.read(lo, lo + flat.size).reshape(*indices.shape, *self.pattern_shape)
        uniq, inverse = np.unique(flat, return_inverse=True)
        if uniq[0] < 0 or uniq[-1] >= self.n_patterns:
            bad = int(uniq[0] if uniq[0] < 0 else uniq[-1])
            raise MapPositionError(f"{self.path}: storage index {bad}: pattern index out of range 0..{self.n_patterns - 1}")
        lo, hi = int(uniq[0]), int(uniq[-1]) + 1
        if hi - lo <= 4 * uniq.size:  # dense enough: one contiguous read
            block = self.read(lo, hi)[uniq - lo]
        else:  # sparse (a map row of an out-of-order file): one read per chunk touched, each chunk decoded once
            per = self.chunk_patterns
            block = np.empty((uniq.size, *self.pattern_shape), dtype=self.dtype)
            buf = np.empty((per, *self.pattern_shape), dtype=self.dtype)
            breaks = np.flatnonzero(np.diff(uniq // per)) + 1
            for a, b in zip(np.r_[0, breaks], np.r_[breaks, uniq.size]):
                first, last = int(uniq[a]), int(uniq[b - 1]) + 1
                self._read_range(first, last, buf[: last - first])
                block[a:b] = buf[uniq[a:b] - first]
        return block[inverse].reshape(*indices.shape, *self.pattern_shape)

    def read_rows(
        self, start: int, stop: int, *, cols: tuple[int, int] | None = None, fill: int | float = 0
    ) -> np.ndarray:
        """Map rows ``start:stop`` as (n_rows, n_cols, h, w); points without a pattern are ``fill``.

        ``cols=(c0, c1)``: only map columns ``c0:c1`` of those rows (a tile),
        read row by row, so no more than the tile is decoded and held.
        """
        rows, n_cols = self.nav_shape
        start, stop = max(0, _whole(start, "start")), min(rows, _whole(stop, "stop"))
        if stop < start:
            raise MapPositionError(f"{self.path}: map rows {start}:{stop}: stop comes before start")
        if cols is not None:
            if isinstance(cols, (str, bytes)) or not hasattr(cols, "__len__") or len(cols) != 2:
                raise TypeError(f"{self.path}: cols={short_repr(cols)}: expected (first column, column after the last)")
            cols = (_whole(cols[0], "cols[0]"), _whole(cols[1], "cols[1]"))
            if cols[1] < cols[0]:
                raise MapPositionError(f"{self.path}: map columns {cols[0]}:{cols[1]}: the end comes before the start")
        if cols is not None and (max(0, cols[0]), min(n_cols, cols[1])) != (0, n_cols):
            c0, c1 = max(0, cols[0]), min(n_cols, cols[1])
            idx = self._index_map[start:stop, c0:c1]
            have = idx >= 0
            full = bool(have.all())
            shape = (stop - start, c1 - c0, *self.pattern_shape)
            tile = np.empty(shape, dtype=self.dtype) if full else np.full(shape, fill, dtype=self.dtype)
            for k in range(stop - start):
                if full or have[k].all():
                    tile[k] = self.read_indices(idx[k])  # a row-major row segment: one contiguous read
                elif have[k].any():
                    tile[k, have[k]] = self.read_indices(idx[k][have[k]])
            return tile
        idx = self._index_map[start:stop]
        have = idx >= 0
        if idx.size and have.all():
            # every point has a pattern: no fill; a row-major run is one read without copies
            return self.read_indices(idx)
        out = np.full((stop - start, n_cols, *self.pattern_shape), fill, dtype=self.dtype)
        if have.any():
            out[have] = self.read_indices(idx[have])
        return out

    def read_all(self) -> np.ndarray:
        """Every pattern as a (rows, cols, h, w) array in memory. Only when asked."""
        return self.read_rows(0, self.nav_shape[0])

    def iter_chunks(self, chunk_patterns: int | None = None, *, workers: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, patterns)`` in storage order, chunk by chunk.

        The next chunks are read (and decompressed) ahead by ``workers``
        threads (default: all CPUs; 1: no threads) while the caller works on
        the current one: at most ``2 * workers`` chunks are in flight, so
        memory stays bounded whatever the size of the map.
        """
        n = self.chunk_patterns if chunk_patterns is None else _whole(chunk_patterns, "chunk_patterns")
        if n < 1:
            raise ValueError(f"{self.path}: chunk_patterns={chunk_patterns}: a chunk holds at least 1 pattern")
        starts = range(0, self.n_patterns, n)
        workers = available_cpus() if workers is None else _whole(workers, "workers")
        if workers <= 1 or len(starts) <= 1:
            for start in starts:
                stop = min(start + n, self.n_patterns)
                yield start, stop, self.read(start, stop)
            return
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kikuchi-read")
        try:
            pending: deque[tuple[int, Future]] = deque()
            ahead = iter(starts)
            for start in ahead:
                pending.append((start, pool.submit(self.read, start, start + n)))
                if len(pending) >= 2 * workers:
                    break
            while pending:
                start, future = pending.popleft()
                block = future.result()
                nxt = next(ahead, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(self.read, nxt, nxt + n)))
                yield start, start + block.shape[0], block
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    # -- per-map data (defaults: the file records nothing) ---------------------------
    @property
    def static_background(self) -> np.ndarray | None:
        """The detector's static background (h, w), or None when the file has none."""
        return None

    @property
    def stored_bse_map(self) -> np.ndarray | None:
        """A BSE map (rows, cols) of mean raw intensities stored in the file, or None."""
        return None

    @property
    def bse_map(self) -> np.ndarray:
        """Mean intensity of each raw pattern (rows, cols); NaN where there is no pattern.

        Read from the file when stored, otherwise computed chunk by chunk.
        """
        stored = self.stored_bse_map
        if stored is not None:
            return stored
        means = np.empty(self.n_patterns)
        for start, stop, block in self.iter_chunks():
            means[start:stop] = block.reshape(stop - start, -1).mean(axis=1, dtype=np.float64)
        return place_patterns(means, self._index_map)

    def point_data(self) -> dict[str, Any]:
        """Per-pattern values the file stores beside the patterns (quality, indexing results), storage order.

        Array-likes of shape (n_patterns,): numpy arrays, or h5py datasets
        read when asked (``np.asarray(value[()])``).
        """
        return {}

    @property
    def pattern_centre(self) -> PatternCentreData | None:
        """Per-point pattern centre and its convention, or None when the file has none."""
        return None

    @property
    def sample_tilt_deg(self) -> float:
        return 70.0

    @property
    def camera_tilt_deg(self) -> float:
        return 0.0

    @property
    def kv(self) -> float | None:
        """Accelerating voltage in kV, when known."""
        return None

    @property
    def binning(self) -> int:
        return 1

    @property
    def pixel_size_um(self) -> float | None:
        """Unbinned detector pixel size in µm, when known."""
        return None

    @property
    def detector(self) -> Any:
        """The detector geometry (:class:`kikuchi.geometry.Detector`) of this map."""
        from kikuchi.geometry import Detector

        return Detector.from_map(self)

    @property
    def euler(self) -> np.ndarray | None:
        """Bunge Euler angles (rows, cols, 3) in radians, NaN where unknown; None when the file has none."""
        return None

    @property
    def phase_id(self) -> np.ndarray | None:
        """Phase of each point (rows, cols) as ids of :attr:`phases` (0: none), when the file records it."""
        return None

    @property
    def phases(self) -> list[dict[str, Any]]:
        """Phases recorded in the file: dicts with ``id``, ``name``, ``space_group``, ``lattice`` (nm, degrees)."""
        return []

    def orientation_map(self) -> Any:
        """The orientations stored in the file as a :class:`kikuchi.OrientationMap` on the map's grid, or None.

        Points without a known orientation get phase 0 (not indexed).
        """
        euler = self.euler
        if euler is None:
            return None
        from kikuchi.io.orientation_map import OrientationMap

        phases = self.phases
        known = np.isfinite(euler).all(axis=-1)
        phase_id = self.phase_id
        if phase_id is None:
            phase_id = np.full(self.nav_shape, int(phases[0]["id"]) if len(phases) == 1 else 0)
        phase_id = np.where(known, phase_id, 0)
        if (phase_id < 0).any():
            self._note(f"{int((phase_id < 0).sum())} points have a negative phase id ({int(phase_id.min())} first): read as not indexed")
            phase_id = np.where(phase_id < 0, 0, phase_id)
        phases = [self._checked_phase(dict(p)) for p in phases]
        described = {int(p["id"]) for p in phases}
        undescribed = sorted(set(np.unique(phase_id[phase_id > 0]).tolist()) - described)
        if undescribed:
            self._note(
                f"points refer to phase id(s) {', '.join(map(str, undescribed))}, which the file does not describe: "
                "kept as phases without name, lattice or symmetry"
            )
            phases = [*phases, *({"id": int(k), "name": f"phase {k}"} for k in undescribed)]
        header = {"KV": self.kv, "TiltAngle": self.sample_tilt_deg, "source": str(self.path)}
        return OrientationMap.from_arrays(
            euler=np.where(known[..., None], euler, 0.0), phase_id=phase_id, step_um=self.step_um, phases=phases,
            header={k: v for k, v in header.items() if v is not None},
        )

    def _checked_phase(self, phase: dict[str, Any]) -> dict[str, Any]:
        """A phase of :attr:`phases` with a space group outside 1..230 or a lattice that is no lattice left out (said)."""
        sg = phase.get("space_group")
        if sg is not None and not (isinstance(sg, (int, np.integer)) and 1 <= int(sg) <= 230):
            self._note_once(("space group", phase.get("id")), f"phase {phase.get('id')}: space group {short_repr(sg)} is not in 1..230; left out")
            phase["space_group"] = None
        lattice = phase.get("lattice")
        if lattice is not None:
            values = np.asarray(lattice, dtype=np.float64).reshape(-1) if np.asarray(lattice).dtype.kind in "iuf" else np.zeros(0)
            if values.size != 6 or not (np.all(np.isfinite(values)) and np.all(values[:3] > 0) and np.all((values[3:] > 0) & (values[3:] < 180))):
                self._note_once(("lattice", phase.get("id")), f"phase {phase.get('id')}: lattice {short_repr(lattice)} is not a, b, c > 0 and three angles; left out")
                phase.pop("lattice")
        return phase

    @property
    def truth_euler(self) -> np.ndarray | None:
        """Known true orientations (synthetic maps), (rows, cols, 3) radians, or None."""
        return None

    @property
    def processing(self) -> dict[str, Any] | None:
        """Parameters of the processing that made the patterns, when recorded."""
        return None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``kikuchi info``)."""
        pc = self.pattern_centre
        have = int((self._index_map >= 0).sum())
        out: dict[str, Any] = {
            "path": str(self.path),
            "kind": "map file" if self.format == "kikuchi" else "pattern file",
            "format": self.format,
            "format_description": formats()[self.format].description if self.format in formats() else self.format,
            "scan": self.scan,
            "grid": self.grid_type,
            "nav_shape": list(self.nav_shape),
            "points_with_pattern": have,
            "points_without_pattern": int(np.prod(self.nav_shape)) - have,
            "patterns_stored": self.n_patterns,
            "step_um": list(self.step_um),
            "pattern_shape": list(self.pattern_shape),
            "dtype": str(self.dtype),
            "dataset": self.dataset,
            "datasets": self.datasets,
            "storage_order": "row-major" if self.is_row_major else "by beam position",
            "chunk_patterns": self.chunk_patterns,
            "static_background": self.static_background is not None,
            "pattern_centre": None if pc is None else {
                "convention": pc.convention,
                "file_convention": pc.file_convention or pc.convention,
                "mean": list(pc.mean),
                "per_point": not pc.is_uniform,
            },
            "sample_tilt_deg": self.sample_tilt_deg,
            "camera_tilt_deg": self.camera_tilt_deg,
            "kv": self.kv,
            "binning": self.binning,
            "pixel_size_um": self.pixel_size_um,
            "phases": self.phases,
            "has_orientations": self.euler is not None,
            "processing": self.processing,
            "notes": list(getattr(self, "notes", [])),
        }
        return out


# -- errors of the libraries, said in one line ------------------------------------------------
#: What a source does, by member: an exception that is not kikuchi's own raised there (h5py's on a
#: damaged HDF5 file, numpy's on a value of an unexpected type, ...) becomes one :class:`MapFileError`
#: line that names the file and what was being read.
_GUARDED = {
    "__init__": "opening it",
    "_read_range": "reading its patterns",
    "read": "reading its patterns",
    "read_chunk": "reading a chunk of its patterns",
    "read_indices": "reading its patterns",
    "read_rows": "reading its patterns",
    "pattern": "reading a pattern",
    "describe": "reading its description",
    "orientation_map": "reading its orientations",
    "point_data": "reading its per-point data",
    "static_background": "reading its static background",
    "stored_bse_map": "reading its BSE map",
    "bse_map": "reading its BSE map",
    "pattern_centre": "reading its pattern centre",
    "euler": "reading its Euler angles",
    "phase_id": "reading its phase ids",
    "phases": "reading its phases",
    "step_um": "reading its step",
    "grid_type": "reading its grid type",
    "sample_tilt_deg": "reading its sample tilt",
    "camera_tilt_deg": "reading its camera tilt",
    "kv": "reading its accelerating voltage",
    "binning": "reading its binning",
    "pixel_size_um": "reading its detector pixel size",
    "truth_euler": "reading its true orientations",
    "processing": "reading its processing parameters",
}

#: Exceptions passed on as they are: kikuchi's own, and the operating system's about the file itself.
_PASSED = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, MemoryError, Warning)


def is_foreign(exc: BaseException) -> bool:
    """True for an exception that is neither kikuchi's own nor one that already says what and where (see :data:`_PASSED`)."""
    return isinstance(exc, Exception) and not isinstance(exc, _PASSED) and not type(exc).__module__.startswith("kikuchi")


def _guarded(function: Callable[..., Any], what: str) -> Callable[..., Any]:
    if getattr(function, "_kikuchi_guarded", False):
        return function

    @functools.wraps(function)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.__dict__.get("_closed") and what != "opening it":
            raise MapFileError(f"{self.path}: the file is closed; open it again (kikuchi.open) to read it")
        try:
            return function(self, *args, **kwargs)
        except Exception as exc:
            if not is_foreign(exc):
                raise
            if isinstance(exc, TypeError) and "unexpected keyword argument" in str(exc):
                raise  # an option the format does not have: the caller's mistake, said by Python
            where = getattr(self, "path", None) or (args[0] if args else "pattern file")
            if isinstance(exc, (ValueError, OSError, IndexError, TypeError)) and Path(str(where)).name in str(exc):
                raise  # kikuchi's own message, which names the file already
            raise MapFileError(
                f"{where}: {what} failed ({type(exc).__name__}: {_one_line(exc) or 'no message'}); "
                "the file is damaged or not laid out as its format says"
            ) from exc

    guarded._kikuchi_guarded = True  # type: ignore[attr-defined]
    return guarded


def _closing(function: Callable[..., Any]) -> Callable[..., Any]:
    """``close`` that also marks the source closed (reads after it are refused in one line)."""
    if getattr(function, "_kikuchi_guarded", False):
        return function

    @functools.wraps(function)
    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return function(self, *args, **kwargs)
        finally:
            self.__dict__["_closed"] = True

    close._kikuchi_guarded = True  # type: ignore[attr-defined]
    return close


def _guard_members(cls: type) -> None:
    """Wrap the reading members that ``cls`` defines itself (see :data:`_GUARDED`), and ``close``."""
    if callable(cls.__dict__.get("close")):
        setattr(cls, "close", _closing(cls.__dict__["close"]))
    for name, what in _GUARDED.items():
        member = cls.__dict__.get(name)
        if isinstance(member, property) and member.fget is not None:
            setattr(cls, name, property(_guarded(member.fget, what), member.fset, member.fdel, member.__doc__))
        elif callable(member) and not isinstance(member, (staticmethod, classmethod, type)):
            setattr(cls, name, _guarded(member, what))


_guard_members(EBSDMap)


# -- formats -------------------------------------------------------------------------
class Probe:
    """What the content tests of the formats look at: the path, its first bytes, its HDF5 tree.

    Each is read once, when first asked for.
    """

    def __init__(self, path: Path):
        self.path = path
        self._head: bytes | None = None
        self._h5: Any = False

    @property
    def head(self) -> bytes:
        """The first 4 KiB of the file (empty for folders and unreadable files)."""
        if self._head is None:
            try:
                with open(self.path, "rb") as f:
                    self._head = f.read(4096)
            except OSError:
                self._head = b""
        return self._head

    @property
    def h5(self) -> Any:
        """The file open in h5py when it is HDF5, else None."""
        if self._h5 is False:
            self._h5 = None
            if self.head.startswith(b"\x89HDF\r\n\x1a\n") or (self.path.is_file() and _is_hdf5(self.path)):
                import h5py

                try:
                    self._h5 = h5py.File(self.path, "r")
                except OSError:
                    self._h5 = None
        return self._h5

    def close(self) -> None:
        if self._h5:
            self._h5.close()


def _is_hdf5(path: Path) -> bool:
    import h5py

    try:
        return bool(h5py.is_hdf5(path))
    except OSError:
        return False


@dataclass(frozen=True)
class FormatSpec:
    """What one format module declares.

    Attributes
    ----------
    name
        Short name (``format=`` of :func:`open_map`, shown by ``kikuchi info``).
    description
        One line for people.
    extensions
        File name endings, lower case with the dot.
    sniff
        ``sniff(probe) -> bool``: True when the content is this format.
    open
        ``open(path, **options) -> EBSDMap``.
    writes
        ``write(path, source, **options)`` when kikuchi can write the format, else None.
    """

    name: str
    description: str
    extensions: tuple[str, ...]
    sniff: Callable[[Probe], bool]
    open: Callable[..., EBSDMap]
    writes: Callable[..., Any] | None = field(default=None)


_FORMATS: dict[str, FormatSpec] = {}


def formats() -> dict[str, FormatSpec]:
    """Every known pattern format by name, in the order their content tests run."""
    if not _FORMATS:
        for name in FORMAT_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:  # tests/io/test_source.py checks that every module is there
                if exc.name != name:
                    raise
                _logger.error("pattern format module %s is missing", name)
                continue
            _FORMATS[module.FORMAT.name] = module.FORMAT
    return _FORMATS


def identify(path: str | os.PathLike) -> FormatSpec:
    """The format of ``path``: by content first, then by extension.

    Raises
    ------
    FileNotFoundError
        No such file.
    MapFileError
        Neither the content nor the extension is a pattern format kikuchi reads.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such map file")
    probe = Probe(path)
    try:
        for spec in formats().values():
            try:
                if spec.sniff(probe):
                    return spec
            except Exception as exc:  # a content test must never decide by crashing
                _logger.debug("%s: content test of %s failed: %s", path, spec.name, exc)
        for spec in formats().values():
            if any(path.name.lower().endswith(ext) for ext in spec.extensions):
                return spec
        h5 = probe.h5
    finally:
        probe.close()
    kinds = ", ".join(f"{s.name} ({' '.join(s.extensions) or 'by content'})" for s in formats().values())
    what = "an HDF5 file" if h5 is not None else "a folder" if path.is_dir() else "a file"
    raise MapFileError(f"{path}: {what} in no pattern format kikuchi reads; formats: {kinds}")


def open_map(path: str | os.PathLike, *, format: str | None = None, strict: bool = False, **options: Any) -> EBSDMap:
    """Open a file of EBSD patterns for lazy reading, whatever wrote it.

    Parameters
    ----------
    path
        A kikuchi map file, kikuchipy h5ebsd, Bruker Esprit h5ebsd, EDAX OIM
        h5ebsd, Oxford H5OINA or ``.ebsp``, EDAX ``.up1``/``.up2``, NORDIF
        ``Pattern.dat``, or EMsoft EBSD simulation output (docs/formats.md).
    format
        The format's name (see :func:`formats`); by default recognised from
        the content, then the extension.
    **options
        Options of the format, e.g. ``dataset='Patterns'`` (processed
        patterns where the file has both), ``scan=`` (HDF5 files with
        several scans), ``nav_shape=(rows, cols)`` (files that do not
        record it).
    strict
        Every oddity that is otherwise read around with a
        :class:`MapFileWarning` (a truncated acquisition, a header that
        disagrees with the data, geometry no instrument writes) is a
        :class:`MapFileError` instead, at opening and at every later read.

    Returns
    -------
    EBSDMap
        Its ``notes`` list the oddities read around (each also warned as a
        :class:`MapFileWarning`).

    Raises
    ------
    FileNotFoundError
        No such file.
    MapFileError
        Not a pattern file, or one that cannot be interpreted (the message
        says where and why).
    TypeError
        An option of the wrong type (the message names it).
    """
    path = _check_path(path)
    if not isinstance(strict, bool):
        raise TypeError(f"strict={strict!r}: expected True or False")
    if format is None:
        spec = identify(path)
    else:
        if not isinstance(format, str) or format not in formats():
            raise MapFileError(f"{path}: unknown pattern format {format!r}; use one of {', '.join(formats())}")
        spec = formats()[format]
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such map file")
    options = {k: v for k, v in options.items() if v is not None}
    _check_options(path, options)
    token = _STRICT.set(True) if strict else None
    try:
        try:
            source = spec.open(path, **options)
        except TypeError as exc:
            if "unexpected keyword argument" in str(exc):
                raise TypeError(f"{path}: the {spec.name} format has no option {str(exc).rsplit(' ', 1)[-1]} ({exc})") from None
            raise MapFileError(f"{path}: opening it as {spec.name} failed (TypeError: {_one_line(exc)})") from exc
        except Exception as exc:
            if not is_foreign(exc):
                raise
            raise MapFileError(f"{path}: opening it as {spec.name} failed ({type(exc).__name__}: {_one_line(exc)})") from exc
        try:
            source._check_plausible()
        except BaseException:
            source.close()
            raise
        if strict:
            source._strict = True
    finally:
        if token is not None:
            _STRICT.reset(token)
    return source


def _check_path(path: Any) -> Path:
    """``path`` as a Path; TypeError naming what was given when it is not a path."""
    if isinstance(path, EBSDMap):
        raise TypeError(f"{path!r} is an open map already; give its path ({path.path}) or use it as it is")
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path {short_repr(path)}: expected a file name (str or pathlib.Path), got {type(path).__name__}")
    return Path(path)


def _check_options(path: Path, options: dict[str, Any]) -> None:
    """Options shared by the formats, checked before any file is read (the formats check their own)."""
    for name, kinds in (("scan", (str, int)), ("dataset", (str,))):
        if name in options and (not isinstance(options[name], kinds) or isinstance(options[name], bool)):
            raise MapFileError(f"{path}: {name}={short_repr(options[name])}: expected the name of a {name} (str)")
