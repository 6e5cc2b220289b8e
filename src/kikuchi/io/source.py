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

import importlib
import logging
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

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
    """A pattern file is missing something, is inconsistent, or is not a pattern file."""


class MapPositionError(IndexError):
    """A map position outside the map or without a pattern."""


class MapFileWarning(UserWarning):
    """A pattern file has an oddity that was read around (the message says what and how)."""


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
        """Record an oddity of the file that was read around, and warn about it."""
        if not hasattr(self, "notes"):
            self.notes = []
        self.notes.append(message)
        warnings.warn(f"{self.path.name}: {message}", MapFileWarning, stacklevel=3)

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
        row, col = key
        return self.pattern(int(row), int(col))

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Patterns ``start:stop`` in storage order, shape (n, h, w)."""
        if start < 0:
            raise MapPositionError(f"{self.path}: storage index {start} is negative; the patterns are 0..{self.n_patterns - 1}")
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
        start = chunk * n
        if not 0 <= start < self.n_patterns:
            raise IndexError(f"{self.path}: chunk {chunk} is outside the {self.n_patterns} patterns ({n} per chunk)")
        if cancel is not None and cancel():
            return None
        return self.read(start, min(start + n, self.n_patterns))

    def read_indices(self, indices: Any) -> np.ndarray:
        """Patterns at arbitrary storage indices (any order, repeats allowed), shape (*indices.shape, h, w)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            return np.empty((*indices.shape, *self.pattern_shape), dtype=self.dtype)
        flat = indices.reshape(-1)
        lo = int(flat[0])
        if 0 <= lo and lo + flat.size <= self.n_patterns and np.array_equal(flat, np.arange(lo, lo + flat.size)):
            # one contiguous run in storage order (row-major maps): read it straight into place
            return self.read(lo, lo + flat.size).reshape(*indices.shape, *self.pattern_shape)
        uniq, inverse = np.unique(flat, return_inverse=True)
        if uniq[0] < 0 or uniq[-1] >= self.n_patterns:
            raise MapPositionError(f"{self.path}: pattern index out of range 0..{self.n_patterns - 1}")
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
        start, stop = max(0, start), min(rows, stop)
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
        n = chunk_patterns or self.chunk_patterns
        starts = range(0, self.n_patterns, n)
        workers = (os.cpu_count() or 1) if workers is None else int(workers)
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
        header = {"KV": self.kv, "TiltAngle": self.sample_tilt_deg, "source": str(self.path)}
        return OrientationMap.from_arrays(
            euler=np.where(known[..., None], euler, 0.0), phase_id=phase_id, step_um=self.step_um, phases=phases,
            header={k: v for k, v in header.items() if v is not None},
        )

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


def open_map(path: str | os.PathLike, *, format: str | None = None, **options: Any) -> EBSDMap:
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

    Returns
    -------
    EBSDMap

    Raises
    ------
    MapFileError
        Not a pattern file, or one that cannot be interpreted (the message
        says where and why).
    """
    path = Path(path)
    if format is None:
        spec = identify(path)
    else:
        try:
            spec = formats()[format]
        except KeyError:
            raise MapFileError(f"{path}: unknown pattern format {format!r}; use one of {', '.join(formats())}") from None
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such map file")
    options = {k: v for k, v in options.items() if v is not None}
    return spec.open(path, **options)
