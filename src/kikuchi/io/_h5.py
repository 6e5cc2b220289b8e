"""HDF5 helpers shared by the pattern sources that live in HDF5 files.

- :func:`scalar`, :func:`text`, :func:`number`: header values as vendors store
  them (scalars, length-1 arrays, bytes, (1, 3) arrays);
- :class:`H5Map`: the base of the pattern sources in HDF5 files (opening,
  closing, reads, chunks);
- :class:`H5Patterns`: one ``(N, h, w)`` pattern dataset read fast: chunks
  stored with deflate and/or shuffle (or none) are read as raw bytes and
  inflated outside h5py's lock, so threads decompress in parallel; other
  filters (LZF, ...) go through h5py.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi.io.source import EBSDMap, MapFileError, default_chunk_patterns

__all__ = ["CACHE_BYTES", "Cancelled", "H5Map", "H5Patterns", "deflate", "inflate", "number", "scalar", "text", "unshuffle"]

#: Bytes of compressed input inflated between two looks at ``cancel``.
_INFLATE_STEP = 1 << 16


def scalar(value: Any) -> Any:
    """A value stored as a scalar, a length-1 array or bytes, as a Python scalar (bytes decoded).

    >>> scalar(np.array([b"EDAX"])), scalar(np.array([[3]]))
    ('EDAX', 3)
    """
    value = np.asarray(value)
    if value.size == 1:
        value = value.reshape(()).item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value


def text(group: h5py.Group, name: str, default: str | None = None) -> str | None:
    """A string dataset or attribute of ``group`` (stripped), or ``default``."""
    if name in group and isinstance(group[name], h5py.Dataset):
        value = scalar(group[name][()])
    elif name in group.attrs:
        value = scalar(group.attrs[name])
    else:
        return default
    return str(value).strip().strip("\x00")


def number(group: h5py.Group, name: str, default: float | None = None, *, where: str = "") -> float | None:
    """A numeric scalar dataset or attribute of ``group``, or ``default`` when absent.

    Raises ValueError naming the dataset when the value is not a number.
    """
    if name in group and isinstance(group[name], h5py.Dataset):
        raw = group[name][()]
    elif name in group.attrs:
        raw = group.attrs[name]
    else:
        return default
    value = scalar(raw)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where or group.file.filename}: '{group.name}/{name}' is {value!r}, not a number") from None


def deflate(raw: np.ndarray | bytes, level: int) -> bytes:
    """zlib stream of ``raw`` at ``level``: with ISA-L (package ``isal``) for levels 1-3.

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


class Cancelled(Exception):
    """``cancel()`` became true while a chunk was inflated."""


def inflate(raw: bytes, cancel: Callable[[], bool] | None = None) -> bytes:
    """Decompress a zlib stream (ISA-L when the optional package ``isal`` is installed).

    With ``cancel``, the input is inflated in pieces of 64 KiB and
    :class:`Cancelled` raised as soon as ``cancel()`` is true.
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
            raise Cancelled
        parts.append(inflater.decompress(view[offset : offset + _INFLATE_STEP]))
    parts.append(inflater.flush())
    return b"".join(parts)


def unshuffle(data: bytes, itemsize: int) -> np.ndarray:
    """Undo HDF5's shuffle filter (byte k of every element was stored in the k-th block): a new uint8 array.

    >>> unshuffle(bytes([1, 3, 2, 4, 9]), 2).tolist()  # two 2-byte elements (1, 2), (3, 4) and a trailing byte
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


class H5Patterns:
    """An ``(N, h, w)`` pattern dataset, read in storage order.

    Parameters
    ----------
    dataset
        The h5py dataset (kept open by the caller's file).
    """

    def __init__(self, dataset: h5py.Dataset):
        if dataset.ndim != 3:
            raise ValueError(f"'{dataset.name}' has shape {dataset.shape}; patterns are (N, height, width)")
        self.ds = dataset
        self.shape = tuple(int(s) for s in dataset.shape)
        self.dtype = dataset.dtype
        self._decoder: tuple[int, bool, bool] | None | bool = False  # False: not looked at yet

    @property
    def stored_chunk(self) -> int | None:
        """Patterns per HDF5 chunk when each chunk holds whole patterns, else None."""
        c = self.ds.chunks
        return int(c[0]) if c is not None and tuple(c[1:]) == self.shape[1:] else None

    def decoder(self) -> tuple[int, bool, bool] | None:
        """(patterns per chunk, deflate, shuffle) when chunks can be decoded here, else None."""
        if self._decoder is False:
            self._decoder = None
            d = self.ds
            if self.stored_chunk is not None and d.dtype.isnative and d.dtype.kind in "uif":
                plist = d.id.get_create_plist()
                names = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
                if names in ([], [h5py.h5z.FILTER_DEFLATE], [h5py.h5z.FILTER_SHUFFLE],
                             [h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_DEFLATE]):
                    self._decoder = (self.stored_chunk, h5py.h5z.FILTER_DEFLATE in names, h5py.h5z.FILTER_SHUFFLE in names)
        return self._decoder  # type: ignore[return-value]

    def decode_chunk(self, k: int, cancel: Callable[[], bool] | None = None) -> np.ndarray | None:
        """Whole chunk ``k`` (patterns per chunk, h, w) from its stored bytes, inflated outside h5py's lock.

        None when h5py must read the chunk: not stored (h5py gives the fill
        value), stored with a filter skipped, or of an unexpected size. The
        array may be a read-only view of the inflated bytes. Raises
        :class:`Cancelled`.
        """
        decoder = self.decoder()
        if decoder is None:
            return None
        per_chunk, deflated, shuffled = decoder
        offset = (k * per_chunk, 0, 0)
        try:
            if not self.ds.id.get_chunk_info_by_coord(offset).size:  # not stored (raw reads of some fail oddly)
                return None
            mask, raw = self.ds.id.read_direct_chunk(offset)
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        if mask:
            return None
        data = inflate(raw, cancel) if deflated else raw
        size = self.dtype.itemsize
        chunk_shape = (per_chunk, *self.shape[1:])
        if len(data) != size * int(np.prod(chunk_shape)):
            return None
        buf = unshuffle(data, size) if shuffled and size > 1 else np.frombuffer(data, dtype=np.uint8)
        return buf.view(self.dtype).reshape(chunk_shape)

    def read_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Patterns ``start:stop`` into ``out`` (``stop - start`` patterns)."""
        if stop <= start:
            return
        decoder = self.decoder()
        if decoder is not None:
            per_chunk = decoder[0]
            done = True
            for k in range(start // per_chunk, (stop - 1) // per_chunk + 1):
                chunk = self.decode_chunk(k)
                if chunk is None:
                    done = False
                    break
                lo, hi = max(start, k * per_chunk), min(stop, (k + 1) * per_chunk)
                out[lo - start : hi - start] = chunk[lo - k * per_chunk : hi - k * per_chunk]
            if done:
                return
        if out.dtype == self.dtype and out.flags.c_contiguous:
            self.ds.read_direct(out, np.s_[start:stop])
        else:
            out[...] = self.ds[start:stop]

    def read_chunk(self, k: int, per_chunk: int, cancel: Callable[[], bool] | None = None) -> np.ndarray | None:
        """Storage indices ``k * per_chunk`` to ``(k + 1) * per_chunk`` as a new writable array; None when cancelled."""
        start = k * per_chunk
        stop = min(start + per_chunk, self.shape[0])
        decoder = self.decoder()
        if decoder is not None and decoder[0] == per_chunk:
            try:
                block = self.decode_chunk(k, cancel)
            except Cancelled:
                return None
            if block is not None:
                block = block[: stop - start]
                return block if block.flags.writeable else block.copy()
        if cancel is not None and cancel():  # h5py reads the chunk whole: give way before, not during
            return None
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        self.read_into(start, stop, out)
        return out

    def describe(self) -> dict[str, Any]:
        """Compression of the dataset, for ``kikuchi info``."""
        return {
            "compression": self.ds.compression,
            "compression_opts": self.ds.compression_opts,
            "shuffle": bool(self.ds.shuffle),
            "hdf5_chunk_patterns": self.stored_chunk,
        }


#: Chunk cache per open pattern dataset, so neighbouring patterns are decoded once.
CACHE_BYTES = 64 << 20


class H5Map(EBSDMap):
    """A pattern source in one HDF5 file: the kikuchi map file and the vendors' HDF5 formats.

    Opens the file with a chunk cache and closes it again when opening fails;
    reads go through :class:`H5Patterns`. Subclasses implement
    ``_open(**options)``, which finds the patterns and sets ``self._reader``
    (an :class:`H5Patterns`), ``self._dataset`` (its kikuchi name,
    'RawPatterns' or 'Patterns'), ``self._datasets`` (the names the file
    has), ``self._scan`` (the scan group, or None) and calls ``_set_map``.
    """

    _scan: str | None = None
    _datasets: list[str] | None = None

    def __init__(self, path: str | os.PathLike, **options: Any):
        self.path = Path(path)
        self.notes = []
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path}: no such map file")
        try:
            self._file = h5py.File(self.path, "r", rdcc_nbytes=CACHE_BYTES, rdcc_nslots=10007)
        except OSError as exc:
            raise MapFileError(f"{self.path}: not a readable HDF5 file ({exc})") from None
        try:
            self._open(**options)
        except BaseException:
            self._file.close()
            raise

    def _open(self, **options: Any) -> None:
        raise NotImplementedError  # pragma: no cover - every HDF5 format implements it

    def close(self) -> None:
        """Close the file."""
        if self._file.id.valid:
            self._file.close()

    @property
    def h5(self) -> h5py.File:
        """The open h5py file (read-only)."""
        return self._file

    @property
    def scan(self) -> str | None:
        """The scan group read, in files that hold several."""
        return self._scan

    @property
    def dataset(self) -> str:
        return self._dataset

    @property
    def datasets(self) -> list[str]:
        return list(self._datasets) if self._datasets else [self.dataset]

    @property
    def open_options(self) -> dict[str, Any]:
        out = {"format": self.format, "dataset": self.dataset}
        if self.scan is not None:
            out["scan"] = self.scan
        return out

    @property
    def chunk_patterns(self) -> int:
        """About 1 MiB of patterns, a whole number of the file's HDF5 chunks (AZtec's LZF chunks hold one pattern)."""
        default = default_chunk_patterns(self.pattern_shape, self.dtype, self.n_patterns)
        stored = self._reader.stored_chunk
        if stored is None:
            return default
        return int(min(self.n_patterns, max(stored, (default // stored) * stored)))

    def _read_range(self, start: int, stop: int, out: np.ndarray) -> None:
        self._reader.read_into(start, stop, out)

    def pattern(self, row: int, col: int) -> np.ndarray:
        """The pattern at map position (row, col), shape (h, w) (one read through h5py's chunk cache)."""
        return self._reader.ds[self._index(row, col)]

    def read_chunk(self, chunk: int, *, cancel: Callable[[], bool] | None = None) -> np.ndarray | None:
        """The patterns of chunk ``chunk`` (storage indices ``chunk * n`` to ``(chunk + 1) * n``, ``n`` = :attr:`chunk_patterns`).

        Chunks stored with deflate and/or shuffle are inflated outside h5py's
        lock; ``cancel`` is looked at between pieces of 64 KiB of compressed
        input and the result is None when it turns true. Chunks that h5py
        reads (other filters) are read whole.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from kikuchi.io.mapstore import MapWriter, open_map
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.h5"
        >>> with MapWriter(p, nav_shape=(1, 5), pattern_shape=(2, 3), dtype="uint16", chunk_patterns=2) as w:
        ...     w.write(0, np.arange(30, dtype=np.uint16).reshape(5, 2, 3))
        >>> with open_map(p) as m:
        ...     m.read_chunk(2).tolist()
        [[[24, 25, 26], [27, 28, 29]]]
        """
        n = self.chunk_patterns
        if not 0 <= chunk * n < self.n_patterns:
            raise IndexError(f"{self.path}: chunk {chunk} is outside the {self.n_patterns} patterns ({n} per chunk)")
        return self._reader.read_chunk(chunk, n, cancel)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(self._reader.describe())
        return out
