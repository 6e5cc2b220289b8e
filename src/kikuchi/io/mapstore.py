"""The kikuchi map file: an HDF5 store of EBSD patterns and their map.

The layout follows the xcdskd documentation ("HDF5: Convert Directory of
Images"), so that files written by its notebooks and ours are the same kind::

    /Manufacturer, /Version
    /Scan/EBSD/Data/RawPatterns      (N, h, w) uint8|uint16, chunked, compressed
    /Scan/EBSD/Data/Patterns         (N, h, w) processed patterns (optional)
    /Scan/EBSD/Data/StaticBackground (h, w)
    /Scan/EBSD/Data/X BEAM, Y BEAM   (N,) int32: column and row of pattern i
    /Scan/EBSD/Data/PCX, PCY, DD     (N,) float32 pattern centre per pattern
    /Scan/EBSD/Data/phi1, PHI, phi2  (N,) float32 Bunge Euler angles, radians
    /Scan/EBSD/Data/X Position, Y Position (N,) float32, µm
    /Scan/EBSD/Data/bse_map          (rows, cols) mean intensity of each raw pattern
    /Scan/EBSD/Header/NCOLS, NROWS, PatternHeight, PatternWidth,
                      X Resolution, Y Resolution (µm),
                      indexmap (rows, cols; -1: no pattern), maplist (N, 3: index, col, row)

Files of the xcdskd zip notebook (``Scan 0`` group, ``BEAM X``/``BEAM Y``),
files written column by column, and kikuchipy h5ebsd files are read through
their beam positions. New files store patterns row-major
(index = row * NCOLS + col).

kikuchi adds attributes (``PCConvention``, ``SampleTilt``, ``CameraTilt``,
``AcceleratingVoltage``, ``Binning``, ``PixelSize``) and groups (``Phases``,
``Processing``, ``Truth``) to the header; all are optional when reading.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi.io._atomic import atomic_output, partial_path

__all__ = [
    "EBSDMap",
    "MapFileError",
    "MapPositionError",
    "MapWriter",
    "default_chunk_patterns",
    "open_map",
    "RAW",
    "PROCESSED",
    "DEFAULT_COMPRESSION",
]

_logger = logging.getLogger(__name__)

RAW = "RawPatterns"
PROCESSED = "Patterns"
MANUFACTURER = "kikuchi"
FORMAT_VERSION = "1.0"
#: HDF5 filter of new pattern datasets; chosen by measurement, see docs/mapfile.md.
DEFAULT_COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
#: Target uncompressed size of one pattern chunk.
CHUNK_BYTES = 1 << 20
#: Chunk cache per open dataset, so neighbouring patterns are decoded once.
_CACHE_BYTES = 64 << 20
#: Bytes of compressed input inflated between two looks at ``cancel`` (EBSDMap.read_chunk).
_INFLATE_STEP = 1 << 16


def _deflate(raw: np.ndarray, level: int) -> bytes:
    """zlib stream of ``raw`` at ``level``: with ISA-L (package ``isal``) when installed for levels 1-3.

    ISA-L writes standard deflate streams (any zlib inflates them) 4-5 times
    faster than zlib at a slightly better ratio; the stored filter level is
    kept as given. Without ``isal``, zlib.
    """
    if 1 <= level <= 3:
        try:
            from isal import isal_zlib
        except ImportError:
            pass
        else:
            return isal_zlib.compress(raw, level)
    return zlib.compress(raw, level)


class _Cancelled(Exception):
    """``cancel()`` became true while a chunk was inflated."""


def _inflate(raw: bytes, cancel: Callable[[], bool] | None = None) -> bytes:
    """Decompress a zlib stream (ISA-L when the optional package ``isal`` is installed).

    With ``cancel``, the input is inflated in pieces of 64 KiB and
    :class:`_Cancelled` raised as soon as ``cancel()`` is true.
    """
    try:
        from isal import isal_zlib as codec
    except ImportError:
        codec = zlib
    if cancel is None:
        return codec.decompress(raw)
    inflater = codec.decompressobj()
    parts = []
    view = memoryview(raw).cast("B")
    for offset in range(0, len(view), _INFLATE_STEP):
        if cancel():
            raise _Cancelled
        parts.append(inflater.decompress(view[offset : offset + _INFLATE_STEP]))
    parts.append(inflater.flush())
    return b"".join(parts)


def _unshuffle(data: bytes, itemsize: int) -> np.ndarray:
    """Undo HDF5's shuffle filter (byte k of every element was stored in the k-th block): a new uint8 array.

    >>> _unshuffle(bytes([1, 3, 2, 4, 9]), 2).tolist()  # two 2-byte elements (1, 2), (3, 4) and a trailing byte
    [1, 2, 3, 4, 9]
    """
    src = np.frombuffer(data, dtype=np.uint8)
    out = np.empty(src.size, dtype=np.uint8)
    n = src.size // itemsize
    elements = out[: n * itemsize].reshape(n, itemsize)
    for k in range(itemsize):  # one strided copy per byte plane: 6 x faster than a transposed copy (1 MiB uint16)
        elements[:, k] = src[k * n : (k + 1) * n]
    out[n * itemsize :] = src[n * itemsize :]
    return out


class MapFileError(ValueError):
    """A map file is missing something or is inconsistent."""


class MapPositionError(IndexError):
    """A map position outside the map or without a pattern."""


def default_chunk_patterns(pattern_shape: Sequence[int], dtype: Any, n_patterns: int | None = None) -> int:
    """Patterns per HDF5 chunk: about 1 MiB uncompressed, at least one.

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


def _scalar(value: Any) -> Any:
    """Read an HDF5 value stored as a scalar, a length-1 array or bytes."""
    value = np.asarray(value)
    if value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


@dataclass(frozen=True)
class _Layout:
    """Where the parts of one supported file flavour live."""

    scan: str
    flavour: str  # "xcdskd" or "kikuchipy"
    ncols: int
    nrows: int
    patterns: dict[str, str] = field(default_factory=dict)  # name -> dataset path


def _find_layout(f: h5py.File, path: Path, scan: str | None) -> _Layout:
    scans = [scan] if scan else [k for k in f.keys() if isinstance(f[k], h5py.Group) and "EBSD" in f[k]]
    if not scans:
        raise MapFileError(f"{path}: no group with an 'EBSD' subgroup (expected 'Scan/EBSD/...')")
    name = scans[0]
    if name not in f or "EBSD/Header" not in f[name]:
        raise MapFileError(f"{path}: no '{name}/EBSD/Header' group")
    header = f[f"{name}/EBSD/Header"]
    data = f[f"{name}/EBSD/Data"]
    if "NCOLS" in header:
        flavour = "xcdskd"
        ncols, nrows = int(_scalar(header["NCOLS"][()])), int(_scalar(header["NROWS"][()]))
        candidates = {RAW: RAW, PROCESSED: PROCESSED}
    elif "n_columns" in header:
        flavour = "kikuchipy"
        ncols, nrows = int(_scalar(header["n_columns"][()])), int(_scalar(header["n_rows"][()]))
        candidates = {RAW: "patterns"}
    else:
        raise MapFileError(f"{path}: '{name}/EBSD/Header' has neither NCOLS/NROWS nor n_columns/n_rows")
    patterns = {
        key: f"{name}/EBSD/Data/{ds}"
        for key, ds in candidates.items()
        if ds in data and isinstance(data[ds], h5py.Dataset) and data[ds].ndim == 3
    }
    if not patterns:
        raise MapFileError(f"{path}: '{name}/EBSD/Data' holds no pattern dataset ({', '.join(candidates.values())})")
    return _Layout(scan=name, flavour=flavour, ncols=ncols, nrows=nrows, patterns=patterns)


@dataclass(frozen=True)
class PatternCentreData:
    """Pattern centre as stored in the file, one value per map point.

    ``pcx``, ``pcy``, ``dd`` have the map's navigation shape (rows, cols);
    ``convention`` names their meaning (see docs/conventions.md).
    """

    pcx: np.ndarray
    pcy: np.ndarray
    dd: np.ndarray
    convention: str

    @property
    def mean(self) -> tuple[float, float, float]:
        return (float(np.nanmean(self.pcx)), float(np.nanmean(self.pcy)), float(np.nanmean(self.dd)))


class EBSDMap:
    """A pattern map on disk, read lazily.

    Use :func:`kikuchi.open`. Patterns are read only when asked for: one at
    (row, col), a block of map rows, or chunk by chunk in storage order.

    Attributes
    ----------
    nav_shape
        Map shape (rows, cols).
    pattern_shape
        Pattern shape (height, width) in pixels.
    step_um
        Step between map rows and between map columns, µm.
    index_map
        (rows, cols) storage index of the pattern at each point, -1 where none.
    """

    def __init__(self, path: str | os.PathLike, *, scan: str | None = None, dataset: str | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such map file")
        try:
            self._file = h5py.File(self.path, "r", rdcc_nbytes=_CACHE_BYTES, rdcc_nslots=10007)
        except OSError as exc:
            raise MapFileError(f"{self.path}: not a readable HDF5 file ({exc})") from exc
        try:
            self._layout = _find_layout(self._file, self.path, scan)
            names = self._layout.patterns
            if dataset is None:
                dataset = PROCESSED if PROCESSED in names and RAW not in names else RAW if RAW in names else next(iter(names))
            if dataset not in names:
                raise MapFileError(f"{self.path}: no pattern dataset '{dataset}' (has {', '.join(names)})")
            self.dataset = dataset
            self._patterns = self._file[names[dataset]]
            self._index_map = self._read_index_map()
        except BaseException:
            self._file.close()
            raise

    # -- context manager ---------------------------------------------------
    def __enter__(self) -> EBSDMap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        if self._file.id.valid:
            self._file.close()

    def __repr__(self) -> str:
        r, c = self.nav_shape
        h, w = self.pattern_shape
        return f"<EBSDMap {self.path.name}: {r} x {c} map, {h} x {w} {self.dtype} patterns ({self.dataset})>"

    # -- groups ------------------------------------------------------------
    @property
    def scan(self) -> str:
        """Name of the scan group ('Scan', 'Scan 0', 'Scan 1', ...)."""
        return self._layout.scan

    @property
    def flavour(self) -> str:
        """'xcdskd' (this layout, also written by kikuchi) or 'kikuchipy' (h5ebsd)."""
        return self._layout.flavour

    @property
    def header(self) -> h5py.Group:
        return self._file[f"{self.scan}/EBSD/Header"]

    @property
    def data(self) -> h5py.Group:
        return self._file[f"{self.scan}/EBSD/Data"]

    @property
    def h5(self) -> h5py.File:
        """The open h5py file (read-only)."""
        return self._file

    @property
    def datasets(self) -> list[str]:
        """Pattern datasets in the file: 'RawPatterns' and/or 'Patterns'."""
        return list(self._layout.patterns)

    def with_dataset(self, dataset: str) -> EBSDMap:
        """Open the same file again on another pattern dataset."""
        return EBSDMap(self.path, scan=self.scan, dataset=dataset)

    def _attr(self, name: str, default: Any = None) -> Any:
        if name in self.header.attrs:
            return _scalar(self.header.attrs[name])
        return default

    # -- shapes --------------------------------------------------------------
    @property
    def nav_shape(self) -> tuple[int, int]:
        return (self._layout.nrows, self._layout.ncols)

    @property
    def pattern_shape(self) -> tuple[int, int]:
        return tuple(int(s) for s in self._patterns.shape[1:])  # type: ignore[return-value]

    @property
    def n_patterns(self) -> int:
        return int(self._patterns.shape[0])

    @property
    def dtype(self) -> np.dtype:
        return self._patterns.dtype

    @property
    def chunk_patterns(self) -> int:
        """Patterns per stored HDF5 chunk (the natural read size)."""
        chunks = self._patterns.chunks
        return int(chunks[0]) if chunks else default_chunk_patterns(self.pattern_shape, self.dtype, self.n_patterns)

    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step) in µm."""
        h = self.header
        if self.flavour == "kikuchipy":
            return (float(_scalar(h["step_y"][()])), float(_scalar(h["step_x"][()])))
        dy = float(_scalar(h["Y Resolution"][()])) if "Y Resolution" in h else 1.0
        dx = float(_scalar(h["X Resolution"][()])) if "X Resolution" in h else 1.0
        return (dy, dx)

    @property
    def grid_type(self) -> str:
        return str(self._attr("GridType", "square"))

    # -- index map -----------------------------------------------------------
    def _beam(self) -> tuple[np.ndarray, np.ndarray] | None:
        d = self.data
        for xname, yname in (("X BEAM", "Y BEAM"), ("BEAM X", "BEAM Y")):
            if xname in d and yname in d:
                return np.asarray(d[xname][()], dtype=np.int64), np.asarray(d[yname][()], dtype=np.int64)
        return None

    def _read_index_map(self) -> np.ndarray:
        rows, cols = self.nav_shape
        n = self.n_patterns
        if "indexmap" in self.header:
            index_map = np.asarray(self.header["indexmap"][()], dtype=np.int64)
            if index_map.shape != (rows, cols):
                raise MapFileError(f"{self.path}: indexmap shape {index_map.shape} != (NROWS, NCOLS) = {(rows, cols)}")
        else:
            beam = self._beam()
            if beam is not None and beam[0].size == n:
                bx, by = beam
                bad = (bx < 0) | (bx >= cols) | (by < 0) | (by >= rows)
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise MapFileError(f"{self.path}: pattern {i} has beam position (col {bx[i]}, row {by[i]}) outside the {rows} x {cols} map")
                index_map = np.full((rows, cols), -1, dtype=np.int64)
                # the first pattern at a position wins: the xcdskd zip notebook leaves beam
                # (0, 0) on the trailing patterns it never wrote when the zip was short
                _, first = np.unique(by * cols + bx, return_index=True)
                index_map[by[first], bx[first]] = first
                n_dup = n - first.size
                if n_dup:
                    i = int(np.setdiff1d(np.arange(n), first)[0])
                    _logger.warning(
                        "%s: %d patterns share a beam position with an earlier one and are not in the map "
                        "(first: pattern %d at row %d, col %d, which holds pattern %d)",
                        self.path, n_dup, i, by[i], bx[i], index_map[by[i], bx[i]],
                    )
            elif n == rows * cols:
                index_map = np.arange(n, dtype=np.int64).reshape(rows, cols)
            else:
                raise MapFileError(f"{self.path}: {n} patterns for a {rows} x {cols} map and no beam positions")
        if index_map.max(initial=-1) >= n:
            r, c = np.unravel_index(int(np.argmax(index_map)), index_map.shape)
            raise MapFileError(
                f"{self.path}: indexmap refers to pattern {index_map.max()} at (row {r}, col {c}) but the file has {n} patterns"
            )
        if index_map.min(initial=-1) < -1:
            r, c = np.unravel_index(int(np.argmin(index_map)), index_map.shape)
            raise MapFileError(f"{self.path}: indexmap holds {index_map.min()} at (row {r}, col {c}); expected -1 or a pattern index")
        return index_map

    @property
    def index_map(self) -> np.ndarray:
        return self._index_map

    @property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, col) of every stored pattern, in storage order."""
        rows = np.full(self.n_patterns, -1, dtype=np.int64)
        cols = np.full(self.n_patterns, -1, dtype=np.int64)
        r, c = np.nonzero(self._index_map >= 0)
        idx = self._index_map[r, c]
        rows[idx], cols[idx] = r, c
        return rows, cols

    @property
    def is_row_major(self) -> bool:
        """True when pattern i sits at (i // NCOLS, i % NCOLS) for every point."""
        rows, cols = self.nav_shape
        return self.n_patterns == rows * cols and bool(
            np.array_equal(self._index_map.ravel(), np.arange(rows * cols))
        )

    def _index(self, row: int, col: int) -> int:
        rows, cols = self.nav_shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise MapPositionError(f"{self.path}: map position (row {row}, col {col}) is outside the {rows} x {cols} map")
        i = int(self._index_map[row, col])
        if i < 0:
            raise MapPositionError(f"{self.path}: no pattern at map position (row {row}, col {col})")
        return i

    # -- pattern access ------------------------------------------------------
    def pattern(self, row: int, col: int) -> np.ndarray:
        """The pattern at map position (row, col), shape (h, w)."""
        return self._patterns[self._index(row, col)]

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Patterns ``start:stop`` in storage order, shape (n, h, w)."""
        if start < 0:
            raise MapPositionError(f"{self.path}: storage index {start} is negative; the patterns are 0..{self.n_patterns - 1}")
        stop = self.n_patterns if stop is None else min(stop, self.n_patterns)
        out = np.empty((max(0, stop - start), *self.pattern_shape), dtype=self.dtype)
        if out.shape[0] and not self._read_chunks_direct(start, stop, out):
            self._patterns.read_direct(out, np.s_[start:stop])
        return out

    def read_chunk(self, chunk: int, *, cancel: Callable[[], bool] | None = None) -> np.ndarray | None:
        """The patterns of stored HDF5 chunk ``chunk``: storage indices ``chunk * n`` to ``(chunk + 1) * n``.

        ``n`` is :attr:`chunk_patterns`; the last chunk may hold fewer. The
        unit of readers that cache what they decompress (the explorer):
        each stored chunk is inflated once, outside h5py's lock where
        :meth:`read` can (see there).

        Parameters
        ----------
        chunk
            Chunk number, 0 .. ceil(n_patterns / n) - 1.
        cancel
            Looked at between pieces of 64 KiB of compressed input: when it
            returns True, decompression stops and the result is None (a
            read-ahead thread gives way to a request). Chunks that h5py
            reads are read whole.

        Returns
        -------
        numpy.ndarray or None
            (patterns of the chunk, h, w), a new writable array; None when cancelled.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.h5"
        >>> with MapWriter(p, nav_shape=(1, 5), pattern_shape=(2, 3), dtype="uint16", chunk_patterns=2) as w:
        ...     w.write(0, np.arange(30, dtype=np.uint16).reshape(5, 2, 3))
        >>> with open_map(p) as m:
        ...     m.read_chunk(2).tolist()
        [[[24, 25, 26], [27, 28, 29]]]
        """
        n = self.chunk_patterns
        start = chunk * n
        if not 0 <= start < self.n_patterns:
            raise IndexError(f"{self.path}: chunk {chunk} is outside the {self.n_patterns} patterns ({n} per chunk)")
        stop = min(start + n, self.n_patterns)
        if self._chunk_decoder() is not None:
            try:
                block = self._decode_chunk(chunk, cancel)
            except _Cancelled:
                return None
            if block is not None:
                block = block[: stop - start]
                return block if block.flags.writeable else block.copy()
        out = np.empty((stop - start, *self.pattern_shape), dtype=self.dtype)
        self._patterns.read_direct(out, np.s_[start:stop])
        return out

    def _chunk_decoder(self) -> tuple[int, bool, bool] | None:
        """(patterns per chunk, deflate, shuffle) when chunks can be decoded here, else None."""
        if not hasattr(self, "_decoder"):
            self._decoder = None
            d = self._patterns
            if d.chunks is not None and d.chunks[1:] == d.shape[1:] and d.dtype.isnative and d.dtype.kind in "uif":
                plist = d.id.get_create_plist()
                names = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
                known = {h5py.h5z.FILTER_SHUFFLE: "shuffle", h5py.h5z.FILTER_DEFLATE: "deflate"}
                if all(f in known for f in names) and names in ([], [h5py.h5z.FILTER_DEFLATE], [h5py.h5z.FILTER_SHUFFLE],
                                                               [h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE]):
                    self._decoder = (int(d.chunks[0]), h5py.h5z.FILTER_DEFLATE in names, h5py.h5z.FILTER_SHUFFLE in names)
        return self._decoder

    def _decode_chunk(self, k: int, cancel: Callable[[], bool] | None = None) -> np.ndarray | None:
        """Whole chunk ``k`` (patterns per chunk, h, w) from its stored bytes, inflated outside h5py's lock.

        Only when :meth:`_chunk_decoder` allows it. None when h5py must read
        the chunk: not stored (h5py gives the fill value), stored with a
        filter skipped, or of an unexpected size. The array may be a
        read-only view of the inflated bytes. Raises :class:`_Cancelled`.
        """
        per_chunk, deflate, shuffle = self._chunk_decoder()  # type: ignore[misc]
        offset = (k * per_chunk, 0, 0)
        try:
            if not self._patterns.id.get_chunk_info_by_coord(offset).size:  # not stored (raw reads of some fail oddly)
                return None
            mask, raw = self._patterns.id.read_direct_chunk(offset)
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        if mask:
            return None
        data = _inflate(raw, cancel) if deflate else raw
        size = self.dtype.itemsize
        chunk_shape = (per_chunk, *self.pattern_shape)
        if len(data) != size * int(np.prod(chunk_shape)):
            return None
        buf = _unshuffle(data, size) if shuffle and size > 1 else np.frombuffer(data, dtype=np.uint8)
        return buf.view(self.dtype).reshape(chunk_shape)

    def _read_chunks_direct(self, start: int, stop: int, out: np.ndarray) -> bool:
        """Read ``start:stop`` by raw chunk reads, inflating outside h5py's lock.

        h5py serialises every HDF5 call, filters included, so threads reading
        one file decompress one at a time; reading the stored bytes (fast) and
        inflating here (zlib/ISA-L release the GIL) lets them decompress in
        parallel. Only for whole-pattern chunks with deflate and/or shuffle or
        no filter; returns False (the caller reads through h5py) otherwise, or
        when a chunk is not stored or was stored with a filter skipped.
        """
        decoder = self._chunk_decoder()
        if decoder is None:
            return False
        per_chunk = decoder[0]
        for k in range(start // per_chunk, (stop - 1) // per_chunk + 1):
            chunk = self._decode_chunk(k)
            if chunk is None:
                return False
            lo, hi = max(start, k * per_chunk), min(stop, (k + 1) * per_chunk)
            out[lo - start : hi - start] = chunk[lo - k * per_chunk : hi - k * per_chunk]
        return True

    def read_indices(self, indices: np.ndarray) -> np.ndarray:
        """Patterns at arbitrary storage indices (any order, repeats allowed)."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0:
            return np.empty((0, *self.pattern_shape), dtype=self.dtype)
        flat = indices.reshape(-1)
        lo = int(flat[0])
        if 0 <= lo and lo + flat.size <= self.n_patterns and np.array_equal(flat, np.arange(lo, lo + flat.size)):
            # one contiguous run in storage order (row-major maps): read it straight into place
            return self.read(lo, lo + flat.size).reshape(*indices.shape, *self.pattern_shape)
        uniq, inverse = np.unique(indices, return_inverse=True)
        if uniq[0] < 0 or uniq[-1] >= self.n_patterns:
            raise MapPositionError(f"{self.path}: pattern index out of range 0..{self.n_patterns - 1}")
        lo, hi = int(uniq[0]), int(uniq[-1]) + 1
        if hi - lo <= 4 * uniq.size:  # dense enough: one contiguous read
            block = self.read(lo, hi)[uniq - lo]
        else:
            block = np.stack([self._patterns[int(i)] for i in uniq])
        return block[inverse.reshape(indices.shape)]

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

    def iter_chunks(self, chunk_patterns: int | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(start, stop, patterns)`` in storage order, chunk by chunk."""
        n = chunk_patterns or self.chunk_patterns
        for start in range(0, self.n_patterns, n):
            stop = min(start + n, self.n_patterns)
            yield start, stop, self.read(start, stop)

    def __getitem__(self, key: tuple[int, int]) -> np.ndarray:
        row, col = key
        return self.pattern(int(row), int(col))

    # -- per-map data ----------------------------------------------------------
    @property
    def static_background(self) -> np.ndarray | None:
        """The detector's static background (h, w), or None when the file has none."""
        for group, name in ((self.data, "StaticBackground"), (self.header, "StaticBackground"), (self.header, "static_background")):
            if name in group:
                bg = np.asarray(group[name][()])
                if bg.shape == self.pattern_shape:
                    return bg
                _logger.warning("%s: static background of shape %s ignored (patterns are %s)", self.path, bg.shape, self.pattern_shape)
        return None

    @property
    def bse_map(self) -> np.ndarray:
        """Mean intensity of each raw pattern (rows, cols); NaN where there is no pattern.

        Read from the file when stored, otherwise computed chunk by chunk.
        """
        if "bse_map" in self.data and self.data["bse_map"].shape == self.nav_shape:
            return np.asarray(self.data["bse_map"][()], dtype=np.float64)
        means = np.empty(self.n_patterns)
        for start, stop, block in self.iter_chunks():
            means[start:stop] = block.reshape(stop - start, -1).mean(axis=1, dtype=np.float64)
        out = np.full(self.nav_shape, np.nan)
        have = self._index_map >= 0
        out[have] = means[self._index_map[have]]
        return out

    def _per_point(self, names: Sequence[str]) -> np.ndarray | None:
        """Per-pattern dataset (first of ``names`` present) as a (rows, cols) float map, NaN where missing."""
        for name in names:
            if name in self.data and self.data[name].shape == (self.n_patterns,):
                values = np.asarray(self.data[name][()], dtype=np.float64)
                out = np.full(self.nav_shape, np.nan)
                have = self._index_map >= 0
                out[have] = values[self._index_map[have]]
                return out
        return None

    @property
    def pattern_centre(self) -> PatternCentreData | None:
        """Per-point pattern centre and its convention, or None when unknown."""
        if self.flavour == "kikuchipy":
            h = self.header
            if "pcx" not in h:
                return None
            pcs = [np.broadcast_to(np.asarray(h[k][()], dtype=np.float64), self.nav_shape).copy() for k in ("pcx", "pcy", "pcz")]
            return PatternCentreData(*pcs, convention="bruker")
        pcx, pcy, dd = (self._per_point([k]) for k in ("PCX", "PCY", "DD"))
        if pcx is None or pcy is None or dd is None or np.isnan(pcx).all():
            return None  # no datasets, or the NaN placeholders MapWriter creates
        convention = self._attr("PCConvention")
        if convention is None:
            # xcdskd notebooks stored dummies (0.5, 0.5, 1.0): no known convention.
            convention = "unknown"
        return PatternCentreData(pcx, pcy, dd, convention=str(convention))

    @property
    def sample_tilt_deg(self) -> float:
        if self.flavour == "kikuchipy":
            return float(_scalar(self.header["sample_tilt"][()])) if "sample_tilt" in self.header else 70.0
        return float(self._attr("SampleTilt", 70.0))

    @property
    def camera_tilt_deg(self) -> float:
        if self.flavour == "kikuchipy":
            return float(_scalar(self.header["elevation_angle"][()])) if "elevation_angle" in self.header else 0.0
        return float(self._attr("CameraTilt", 0.0))

    @property
    def kv(self) -> float | None:
        """Accelerating voltage in kV, when known."""
        if self.flavour == "kikuchipy":
            sem = f"{self.scan}/SEM/Header/beam_energy"
            return float(_scalar(self._file[sem][()])) if sem in self._file else None
        value = self._attr("AcceleratingVoltage")
        return None if value is None else float(value)

    @property
    def binning(self) -> int:
        if self.flavour == "kikuchipy":
            return int(_scalar(self.header["binning"][()])) if "binning" in self.header else 1
        return int(self._attr("Binning", 1))

    @property
    def detector(self) -> Any:
        """The detector geometry (:class:`kikuchi.geometry.Detector`) of this map."""
        from kikuchi.geometry import Detector

        return Detector.from_map(self)

    @property
    def euler(self) -> np.ndarray | None:
        """Bunge Euler angles (rows, cols, 3) in radians, NaN where unknown; None when the file has none."""
        if self.flavour == "kikuchipy":
            cm = f"{self.scan}/EBSD/CrystalMap/crystal_map/data"
            if cm not in self._file:
                return None
            g = self._file[cm]
            ids = np.asarray(g["id"][()], dtype=np.int64)
            out = np.full((*self.nav_shape, 3), np.nan)
            flat = out.reshape(-1, 3)
            for k, name in enumerate(("phi1", "Phi", "phi2")):
                flat[ids, k] = np.asarray(g[name][()], dtype=np.float64)
            return out
        angles = [self._per_point([name]) for name in ("phi1", "PHI", "phi2")]
        if any(a is None for a in angles):
            return None
        euler = np.stack(angles, axis=-1)
        if np.all(np.nan_to_num(euler) == 0):
            return None  # empty placeholders of the xcdskd notebooks
        return euler

    @property
    def phase_id(self) -> np.ndarray | None:
        """Phase of each point (rows, cols) as ids of :attr:`phases` (0: none), when the file records it.

        From a kikuchipy crystal map (its 0-based phase ids, -1 = not indexed)
        or the ``Truth/phase_id`` of a synthetic map; None otherwise.
        """
        if self.flavour == "kikuchipy":
            cm = f"{self.scan}/EBSD/CrystalMap/crystal_map/data"
            if cm not in self._file or "phase_id" not in self._file[cm]:
                return None
            g = self._file[cm]
            out = np.zeros(self.nav_shape, dtype=np.int64)
            ids = np.asarray(g["id"][()], dtype=np.int64)
            stored = np.asarray(g["phase_id"][()], dtype=np.int64)
            out.reshape(-1)[ids] = np.where(stored >= 0, stored + 1, 0)  # phases are numbered from 1 here
            return out
        truth = self.header.get("Truth/phase_id")
        if isinstance(truth, h5py.Dataset) and truth.shape == self.nav_shape:
            return np.asarray(truth[()], dtype=np.int64)
        return None

    @property
    def phases(self) -> list[dict[str, Any]]:
        """Phases recorded in the file: dicts with ``id``, ``name``, ``space_group``, ``lattice`` (a, b, c in nm, angles in degrees)."""
        out: list[dict[str, Any]] = []
        if "Phases" in self.header:
            for key in sorted(self.header["Phases"], key=int):
                g = self.header["Phases"][key]
                out.append(json.loads(_scalar(g.attrs["json"])) if "json" in g.attrs else {"id": int(key)})
        elif self.flavour == "kikuchipy":
            base = f"{self.scan}/EBSD/CrystalMap/crystal_map/header/phases"
            if base in self._file:
                for key in self._file[base]:
                    g = self._file[base][key]
                    lat = "structure/lattice/abcABG"
                    entry: dict[str, Any] = {
                        "id": int(key) + 1,
                        "name": _scalar(g["name"][()]) if "name" in g else f"phase{key}",
                        "space_group": int(_scalar(g["space_group"][()])) if "space_group" in g else None,
                    }
                    if lat in g:
                        abc = np.asarray(g[lat][()], dtype=float)
                        lengths = abc[:3] / 10.0 if abc[:3].max() > 1.5 else abc[:3]  # Å -> nm when stored in Å
                        entry["lattice"] = [*lengths.tolist(), *abc[3:].tolist()]
                    out.append(entry)
        return out

    @property
    def processing(self) -> dict[str, Any] | None:
        """Parameters of the processing that made the 'Patterns' dataset, when recorded."""
        if "Processing" in self.header and "json" in self.header["Processing"].attrs:
            return json.loads(_scalar(self.header["Processing"].attrs["json"]))
        return None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``kikuchi info``)."""
        pc = self.pattern_centre
        have = int((self._index_map >= 0).sum())
        return {
            "path": str(self.path),
            "kind": "map file",
            "flavour": self.flavour,
            "scan": self.scan,
            "grid": self.grid_type,
            "nav_shape": list(self.nav_shape),
            "points_with_pattern": have,
            "points_without_pattern": int(np.prod(self.nav_shape)) - have,
            "step_um": list(self.step_um),
            "pattern_shape": list(self.pattern_shape),
            "dtype": str(self.dtype),
            "datasets": self.datasets,
            "storage_order": "row-major" if self.is_row_major else "by beam position",
            "chunk_patterns": self.chunk_patterns,
            "compression": self._patterns.compression,
            "compression_opts": self._patterns.compression_opts,
            "shuffle": bool(self._patterns.shuffle),
            "static_background": self.static_background is not None,
            "pattern_centre": None if pc is None else {"convention": pc.convention, "mean": list(pc.mean)},
            "sample_tilt_deg": self.sample_tilt_deg,
            "camera_tilt_deg": self.camera_tilt_deg,
            "kv": self.kv,
            "phases": self.phases,
            "has_orientations": self.euler is not None,
            "processing": self.processing,
        }


def open_map(path: str | os.PathLike, *, scan: str | None = None, dataset: str | None = None) -> EBSDMap:
    """Open an EBSD map file for lazy reading.

    Parameters
    ----------
    path
        HDF5 map file (kikuchi/xcdskd layout or kikuchipy h5ebsd).
    scan
        Scan group to read; by default the first with an ``EBSD`` subgroup.
    dataset
        Pattern dataset: ``'RawPatterns'`` (default when present) or
        ``'Patterns'`` (processed).

    Returns
    -------
    EBSDMap
    """
    return EBSDMap(path, scan=scan, dataset=dataset)


class MapWriter:
    """Write a new map file chunk by chunk, atomically.

    The file is written under a temporary name (``.NAME.partial``) and
    renamed to ``path`` only when the ``with`` block ends without error;
    patterns are stored row-major. The BSE map is accumulated from the raw
    patterns as they are written.

    Parameters
    ----------
    path
        Output file.
    nav_shape
        Map (rows, cols).
    pattern_shape
        (height, width).
    dtype
        Pattern dtype (uint8, uint16 or float32).
    step_um
        (row step, column step) in µm.
    dataset
        'RawPatterns' for acquired patterns, 'Patterns' for processed ones.
    chunk_patterns
        Patterns per HDF5 chunk; default about 1 MiB per chunk.
    compression
        h5py filter keywords; default :data:`DEFAULT_COMPRESSION`.
    manufacturer
        Written to the root ``Manufacturer``.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.h5"
    >>> with MapWriter(p, nav_shape=(2, 3), pattern_shape=(4, 5), dtype="uint8") as w:
    ...     w.write(0, np.arange(6 * 20, dtype=np.uint8).reshape(6, 4, 5))
    >>> with open_map(p) as m:
    ...     int(m.pattern(1, 2)[0, 0])
    100
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        nav_shape: tuple[int, int],
        pattern_shape: tuple[int, int],
        dtype: Any,
        step_um: tuple[float, float] = (1.0, 1.0),
        dataset: str = RAW,
        chunk_patterns: int | None = None,
        compression: dict[str, Any] | None = None,
        manufacturer: str = MANUFACTURER,
    ):
        self.path = Path(path)
        self.nav_shape = (int(nav_shape[0]), int(nav_shape[1]))
        self.pattern_shape = (int(pattern_shape[0]), int(pattern_shape[1]))
        self.dtype = np.dtype(dtype)
        self.step_um = (float(step_um[0]), float(step_um[1]))
        self.dataset = dataset
        self.n_patterns = self.nav_shape[0] * self.nav_shape[1]
        if self.n_patterns <= 0 or min(self.pattern_shape) <= 0:
            raise ValueError(f"empty map or pattern shape: map {self.nav_shape}, pattern {self.pattern_shape}")
        self.chunk_patterns = min(int(chunk_patterns), self.n_patterns) if chunk_patterns else default_chunk_patterns(self.pattern_shape, self.dtype, self.n_patterns)
        self.compression = DEFAULT_COMPRESSION if compression is None else compression
        self.manufacturer = manufacturer
        self._atomic = atomic_output(self.path)
        self._file: h5py.File | None = None
        self._sums = np.zeros(self.n_patterns)
        self._written = np.zeros(self.n_patterns, dtype=bool)

    @property
    def partial_path(self) -> Path:
        return partial_path(self.path)

    # -- context manager -----------------------------------------------------
    def __enter__(self) -> MapWriter:
        tmp = self._atomic.__enter__()
        try:
            self._file = h5py.File(tmp, "w")
            self._init_layout()
        except BaseException as err:  # e.g. a compression h5py does not know: no file left open or behind
            if self._file is not None:
                self._file.close()
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._file is not None
        try:
            if exc_type is None:
                self._finish()
        except BaseException as err:
            self._file.close()
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._file.close()
        return bool(self._atomic.__exit__(exc_type, exc, tb))

    @property
    def h5(self) -> h5py.File:
        """The file being written (for additional groups)."""
        if self._file is None:
            raise RuntimeError("MapWriter is used outside its 'with' block")
        return self._file

    @property
    def data(self) -> h5py.Group:
        return self.h5["Scan/EBSD/Data"]

    @property
    def header(self) -> h5py.Group:
        return self.h5["Scan/EBSD/Header"]

    def _init_layout(self) -> None:
        f = self.h5
        rows, cols = self.nav_shape
        n = self.n_patterns
        f["Manufacturer"] = self.manufacturer
        f["Version"] = FORMAT_VERSION
        data = f.create_group("Scan/EBSD/Data")
        header = f.create_group("Scan/EBSD/Header")
        data.create_dataset(
            self.dataset,
            shape=(n, *self.pattern_shape),
            dtype=self.dtype,
            chunks=(self.chunk_patterns, *self.pattern_shape),
            **self.compression,
        )
        r, c = np.divmod(np.arange(n, dtype=np.int64), cols)
        data["X BEAM"] = c.astype(np.int32)
        data["Y BEAM"] = r.astype(np.int32)
        data["X Position"] = (c * self.step_um[1]).astype(np.float32)
        data["Y Position"] = (r * self.step_um[0]).astype(np.float32)
        for name in ("PCX", "PCY", "DD", "phi1", "PHI", "phi2"):
            data.create_dataset(name, shape=(n,), dtype=np.float32, fillvalue=np.nan)
        header["NCOLS"] = np.int32(cols)
        header["NROWS"] = np.int32(rows)
        header["PatternHeight"] = np.int32(self.pattern_shape[0])
        header["PatternWidth"] = np.int32(self.pattern_shape[1])
        header["X Resolution"] = np.float32(self.step_um[1])
        header["Y Resolution"] = np.float32(self.step_um[0])
        header["indexmap"] = np.arange(n, dtype=np.int64).reshape(rows, cols)
        header["maplist"] = np.stack([np.arange(n), c, r], axis=1).astype(np.int64)
        header.attrs["GridType"] = "square"

    # -- writing -----------------------------------------------------------
    @property
    def can_encode(self) -> bool:
        """True when :meth:`encode_chunk` can produce this file's stored chunks (gzip with or without shuffle, or none)."""
        c = self.compression
        known = {"compression", "compression_opts", "shuffle"}
        return set(c) <= known and c.get("compression") in (None, "gzip")

    def encode_chunk(self, patterns: np.ndarray) -> bytes | None:
        """The stored bytes of one chunk, filtered exactly as HDF5 would (shuffle, deflate).

        Thread-safe and releases the GIL while compressing (zlib), so a pool
        of threads can compress chunks while the main thread writes them with
        ``write(start, patterns, encoded=...)``. ``patterns`` are the chunk's
        patterns (at most :attr:`chunk_patterns`; a short last chunk is
        padded with zeros as HDF5 stores it). Returns None when the filter
        cannot be reproduced here (e.g. lzf); ``write`` then compresses.
        """
        if not self.can_encode:
            return None
        patterns = np.asarray(patterns, dtype=self.dtype)
        n = patterns.shape[0]
        if n > self.chunk_patterns or patterns.shape[1:] != self.pattern_shape:
            raise ValueError(f"a chunk holds at most {self.chunk_patterns} patterns of {self.pattern_shape}, got {patterns.shape}")
        if n < self.chunk_patterns:
            full = np.zeros((self.chunk_patterns, *self.pattern_shape), dtype=self.dtype)
            full[:n] = patterns
            patterns = full
        raw = np.ascontiguousarray(patterns).view(np.uint8)
        size = self.dtype.itemsize
        if self.compression.get("shuffle") and size > 1:
            raw = np.ascontiguousarray(raw.reshape(-1, size).T)
        if self.compression.get("compression") == "gzip":
            level = self.compression.get("compression_opts")
            return _deflate(raw, 4 if level is None else int(level))
        return raw.tobytes()

    def write(self, start: int, patterns: np.ndarray, *, encoded: bytes | None = None) -> None:
        """Write patterns at storage indices ``start:start+len(patterns)`` (row-major).

        ``encoded``: the chunk as made by :meth:`encode_chunk` from the same
        patterns, for a block that is exactly one chunk (``start`` a multiple
        of :attr:`chunk_patterns`); it is stored without compressing again.
        """
        patterns = np.asarray(patterns)
        if patterns.ndim != 3 or patterns.shape[1:] != self.pattern_shape:
            raise ValueError(f"patterns of shape {patterns.shape[1:]} do not fit this map's {self.pattern_shape}")
        stop = start + patterns.shape[0]
        if start < 0 or stop > self.n_patterns:
            raise MapPositionError(f"patterns {start}:{stop} outside the map of {self.n_patterns} patterns")
        if patterns.dtype != self.dtype:
            patterns = patterns.astype(self.dtype)
        one_chunk = start % self.chunk_patterns == 0 and (
            patterns.shape[0] == self.chunk_patterns or stop == self.n_patterns
        ) and patterns.shape[0] <= self.chunk_patterns
        if encoded is not None and one_chunk:
            self.data[self.dataset].id.write_direct_chunk((start, 0, 0), encoded)
        else:
            self.data[self.dataset][start:stop] = patterns
        if self.dataset == RAW:
            self._sums[start:stop] = patterns.reshape(patterns.shape[0], -1).sum(axis=1, dtype=np.float64)
        self._written[start:stop] = True

    def write_rows(self, start_row: int, patterns: np.ndarray) -> None:
        """Write whole map rows, patterns of shape (n_rows, cols, h, w)."""
        self.write(start_row * self.nav_shape[1], np.asarray(patterns).reshape(-1, *self.pattern_shape))

    def set_static_background(self, background: np.ndarray) -> None:
        background = np.asarray(background)
        if background.shape != self.pattern_shape:
            raise ValueError(f"static background of shape {background.shape} does not fit patterns of {self.pattern_shape}")
        if "StaticBackground" in self.data:
            del self.data["StaticBackground"]
        self.data["StaticBackground"] = background

    def set_pattern_centre(self, pcx: Any, pcy: Any, dd: Any, *, convention: str) -> None:
        """Pattern centre, one value for the map or one per point, and its convention."""
        for name, value in (("PCX", pcx), ("PCY", pcy), ("DD", dd)):
            self.data[name][:] = np.broadcast_to(np.asarray(value, dtype=np.float32).reshape(-1), (self.n_patterns,))
        self.header.attrs["PCConvention"] = convention

    def set_euler(self, euler: np.ndarray) -> None:
        """Bunge Euler angles in radians, shape (rows, cols, 3) or (N, 3)."""
        euler = np.asarray(euler, dtype=np.float32).reshape(self.n_patterns, 3)
        for k, name in enumerate(("phi1", "PHI", "phi2")):
            self.data[name][:] = euler[:, k]

    def set_phases(self, phases: Sequence[dict[str, Any]]) -> None:
        """Phases as JSON-ready dicts (``id``, ``name``, ``space_group``, ``lattice``, ...)."""
        if "Phases" in self.header:
            del self.header["Phases"]
        group = self.header.create_group("Phases")
        for i, phase in enumerate(phases, start=1):
            entry = {"id": i, **phase}
            g = group.create_group(str(entry["id"]))
            g.attrs["json"] = json.dumps(entry)

    def set_processing(self, parameters: dict[str, Any]) -> None:
        """Record the parameters that made this file's patterns."""
        g = self.header.require_group("Processing")
        g.attrs["json"] = json.dumps(parameters, default=str)

    def set_attrs(self, **attrs: Any) -> None:
        """Header attributes: SampleTilt, CameraTilt, AcceleratingVoltage, Binning, PixelSize, ..."""
        for key, value in attrs.items():
            if value is not None:
                self.header.attrs[key] = value

    def _finish(self) -> None:
        if not self._written.all():
            missing = int(np.flatnonzero(~self._written)[0])
            row, col = divmod(missing, self.nav_shape[1])
            raise MapFileError(
                f"{self.path}: {int((~self._written).sum())} of {self.n_patterns} patterns were never written "
                f"(first at map position row {row}, col {col})"
            )
        if self.dataset == RAW:
            npx = self.pattern_shape[0] * self.pattern_shape[1]
            self.data["bse_map"] = (self._sums / npx).reshape(self.nav_shape)
