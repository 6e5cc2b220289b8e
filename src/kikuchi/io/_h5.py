"""HDF5 helpers shared by the pattern sources that live in HDF5 files.

- :func:`scalar`, :func:`text`, :func:`number`: header values as vendors store
  them (scalars, length-1 arrays, bytes, (1, 3) arrays);
- :class:`H5Map`: the base of the pattern sources in HDF5 files (opening,
  closing, reads, chunks);
- :class:`H5Patterns`: one ``(N, h, w)`` pattern dataset read fast: chunks
  stored with deflate and/or shuffle (or none) are read as raw bytes and
  inflated outside h5py's lock, so threads decompress in parallel; other
  filters (LZF, ...) go through h5py.

A stored chunk that cannot be decoded (a damaged file: flipped bytes, a
chunk index pointing past the end) raises :class:`BadChunkError`, which
names the file, the chunk and the patterns (and map rows) it holds, whichever
path read it. :meth:`H5Map.mark_unreadable` turns those patterns into points
without a pattern, for runs that carry on past a damaged chunk
(``on_bad_chunk='skip'`` of :func:`kikuchi.engine.map_reduce`).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import weakref
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi.io.source import EBSDMap, MapFileError, default_chunk_patterns, short_repr

_logger = logging.getLogger(__name__)

__all__ = [
    "BadChunkError", "CACHE_BYTES", "Cancelled", "H5Map", "H5Patterns", "deflate", "header_number", "inflate", "number", "scalar",
    "shuffle", "text", "unshuffle",
]  # fmt: skip

#: Bytes of compressed input inflated between two looks at ``cancel``.
_INFLATE_STEP = 1 << 16

#: What to do about a damaged chunk, said in every :class:`BadChunkError`.
BAD_CHUNK_ADVICE = (
    "copy the file again from its source, or carry on without those points "
    "(--skip-bad-chunks; on_bad_chunk='skip' in Python)"
)


class BadChunkError(MapFileError):
    """A stored chunk of patterns cannot be decoded: the file is damaged there.

    Attributes
    ----------
    path
        The file.
    dataset
        The HDF5 dataset of the patterns.
    chunk
        The HDF5 chunk number (storage order), or None for a dataset stored
        without chunks.
    start, stop
        The storage indices of the patterns the chunk holds (``start:stop``).
    cause
        What the decoder (or HDF5) said.
    """

    def __init__(
        self, message: str, *, path: Any = None, dataset: str = "", chunk: int | None = None, start: int = 0, stop: int = 0, cause: str = ""
    ):
        super().__init__(message)
        self.path = path
        self.dataset = dataset
        self.chunk = chunk
        self.start = int(start)
        self.stop = int(stop)
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:  # travels back from dask workers with its attributes
        return (_bad_chunk_error, (str(self), self.path, self.dataset, self.chunk, self.start, self.stop, self.cause))


def _bad_chunk_error(message: str, path: Any, dataset: str, chunk: int | None, start: int, stop: int, cause: str = "") -> BadChunkError:
    return BadChunkError(message, path=path, dataset=dataset, chunk=chunk, start=start, stop=stop, cause=cause)


def _reason(exc: BaseException) -> str:
    """One line of what a decoder or HDF5 said."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


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
        raise MapFileError(f"{where or group.file.filename}: '{group.name}/{name}' is {short_repr(value)}, not a number") from None


def header_number(
    obj: Any, where: str, path: Any, default: float | None = None, *, required: bool = False
) -> float | None:
    """A numeric header value found at ``where`` (``obj``, None when absent), strictly.

    A scalar or length-1 dataset; ``default`` when absent, unless
    ``required``. :class:`MapFileError` naming the file and the dataset when
    it is missing and required, a group, empty, not a number or not finite.
    float32 values come back as the decimal they were written from (0.3,
    not 0.30000001).
    """
    if obj is None:
        if required:
            raise MapFileError(f"{path}: header value {where} is missing")
        return default
    if not isinstance(obj, h5py.Dataset):
        raise MapFileError(f"{path}: {where} is a group, not a number")
    raw = np.asarray(obj[()])
    if raw.size == 0:
        raise MapFileError(f"{path}: {where} is empty (shape {raw.shape}); expected a number")
    value = scalar(raw) if raw.size == 1 else raw
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MapFileError(f"{path}: {where} is {short_repr(value)}, not a number") from None
    if not np.isfinite(number):
        raise MapFileError(f"{path}: {where} is {number}, not a finite number")
    if raw.dtype.kind == "f" and raw.dtype.itemsize < 8:
        number = float(str(raw.reshape(-1)[0]))
    return number


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
    if not inflater.eof:  # what decompress() says of a stream cut short
        raise zlib.error("incomplete or truncated stream")
    return b"".join(parts)


def shuffle(raw: np.ndarray, itemsize: int) -> np.ndarray:
    """HDF5's shuffle filter: byte k of every element into the k-th block of a new uint8 array.

    >>> shuffle(np.array([1, 2, 3, 4, 9], np.uint8), 2).tolist()  # two 2-byte elements (1, 2), (3, 4) and a trailing byte
    [1, 3, 2, 4, 9]
    """
    src = np.asarray(raw).reshape(-1).view(np.uint8)
    out = np.empty(src.size, dtype=np.uint8)
    n = src.size // itemsize
    elements = src[: n * itemsize].reshape(n, itemsize)
    for k in range(itemsize):  # one strided copy per byte plane: 1.8 x faster than a transposed copy (1 MiB uint16)
        out[k * n : (k + 1) * n] = elements[:, k]
    out[n * itemsize :] = src[n * itemsize :]
    return out


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


#: HDF5 filters decoded here, by filter id (h5py's LZF filter is 32000).
_FILTERS = {h5py.h5z.FILTER_SHUFFLE: "shuffle", h5py.h5z.FILTER_DEFLATE: "deflate", 32000: "lzf"}


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
        self.path = Path(dataset.file.filename)
        #: ``where(start, stop) -> str``: where the patterns at storage indices ``start:stop`` lie on
        #: the map ("map rows 3..5"), for the message of a damaged chunk; set by the map that reads them.
        self.where: Callable[[int, int], str] | None = None
        self._decoder: tuple[int, tuple[str, ...]] | None | bool = False  # False: not looked at yet
        self._local = threading.local()  # each thread's buffer of stored chunk bytes
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] | None | bool = False  # (file offset, size, mask) per chunk
        self._table_lock = threading.Lock()
        self._fd = -1

    def close(self) -> None:
        """Close the file descriptor of positional reads (the h5py file is the caller's)."""
        if self._fd >= 0:
            self._close_fd()
            self._fd = -1

    def bad_chunk(self, k: int | None, cause: str, start: int | None = None, stop: int | None = None) -> BadChunkError:
        """The error of HDF5 chunk ``k`` (of whole patterns; None: the patterns ``start:stop``) that cannot be decoded."""
        per = self.stored_chunk
        if k is not None and per is not None:
            start, stop = k * per, min((k + 1) * per, self.shape[0])
        start = 0 if start is None else int(start)
        stop = self.shape[0] if stop is None else int(stop)
        where = ""
        if self.where is not None:
            try:
                where = f": {self.where(start, stop)}"
            except Exception:  # noqa: BLE001 - the description is a courtesy; the error must still be raised
                where = ""
        what = f"HDF5 chunk {k} of '{self.ds.name}'" if k is not None and per is not None else f"'{self.ds.name}'"
        held = f"pattern {start}" if stop - start == 1 else f"patterns {start}..{stop - 1}"
        return BadChunkError(
            f"{self.path}: {what} ({held}{where}) cannot be decoded ({cause}): the file is damaged there; {BAD_CHUNK_ADVICE}",
            path=self.path, dataset=self.ds.name, chunk=k if per is not None else None, start=start, stop=stop, cause=cause,
        )  # fmt: skip

    def _max_stored(self, nbytes: int) -> int:
        """The most bytes a stored chunk of ``nbytes`` can take (LZF grows incompressible data by 1/32, deflate by 0.03 %)."""
        return nbytes + nbytes // 16 + 4096

    def _h5py_read(self, start: int, stop: int, out: np.ndarray) -> None:
        """Patterns ``start:stop`` into ``out`` through h5py; a chunk HDF5 cannot read raises :class:`BadChunkError` naming it."""
        try:
            if out.dtype == self.dtype and out.flags.c_contiguous:
                self.ds.read_direct(out, np.s_[start:stop])
            else:
                out[...] = self.ds[start:stop]
        except (OSError, RuntimeError) as exc:
            raise self._locate(start, stop, exc) from None

    def _locate(self, start: int, stop: int, exc: BaseException) -> BadChunkError:
        """The first HDF5 chunk of patterns ``start:stop`` that h5py cannot read (one read per chunk: only after a failure)."""
        cause = _reason(exc)
        chunks = self.ds.chunks
        if chunks is None:
            return self.bad_chunk(None, cause, start, stop)
        per = int(chunks[0])
        for k in range(start // per, (stop - 1) // per + 1):
            lo, hi = max(start, k * per), min(stop, (k + 1) * per)
            try:
                self.ds[lo:hi]
            except (OSError, RuntimeError) as again:
                if self.stored_chunk is not None:
                    return self.bad_chunk(k, _reason(again))
                return self.bad_chunk(None, _reason(again), k * per, min((k + 1) * per, self.shape[0]))
        return self.bad_chunk(None, cause, start, stop)

    def pattern(self, i: int) -> np.ndarray:
        """The pattern at storage index ``i`` (one read through h5py's chunk cache)."""
        try:
            return self.ds[i]
        except (OSError, RuntimeError) as exc:
            raise self._locate(i, i + 1, exc) from None

    def _h5py_chunk(self, k: int, into: np.ndarray | None, cause: str) -> np.ndarray:
        """Chunk ``k`` read by h5py where the decoder here could not decode it; :class:`BadChunkError` when h5py cannot either."""
        per = self.stored_chunk
        assert per is not None
        start, stop = k * per, min((k + 1) * per, self.shape[0])
        target = np.empty((per, *self.shape[1:]), dtype=self.dtype) if into is None else into
        try:
            self.ds.read_direct(target, np.s_[start:stop], np.s_[0 : stop - start])
        except (OSError, RuntimeError, TypeError, ValueError):
            raise self.bad_chunk(k, cause) from None
        _logger.debug("%s: chunk %d read by h5py, not decoded here (%s)", self.path, k, cause)
        return target

    def _chunk_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Where every stored chunk is: (file offset, size, filter mask) by chunk number, size 0 where not stored.

        Made once, in one pass over HDF5's chunk index (``H5Dchunk_iter``,
        about 1 µs a chunk): looking chunks up one by one costs HDF5 a scan
        of its index each time (4 ms a chunk in a file of 20,000). With it,
        stored bytes are read with positional reads on a file descriptor of
        our own, outside h5py's lock. None where that cannot be done (another
        file driver, an HDF5 without chunk iteration).
        """
        if self._table is False:
            with self._table_lock:
                if self._table is False:
                    self._table = self._make_table()
        return self._table  # type: ignore[return-value]

    def _make_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        per_chunk = self.stored_chunk
        f = self.ds.file
        if per_chunk is None or f.driver != "sec2" or not hasattr(self.ds.id, "chunk_iter"):
            return None
        n_chunks = -(-self.shape[0] // per_chunk)
        offsets = np.zeros(n_chunks, dtype=np.int64)
        sizes = np.zeros(n_chunks, dtype=np.int64)
        masks = np.zeros(n_chunks, dtype=np.uint32)

        def visit(info: Any) -> None:
            k = info.chunk_offset[0] // per_chunk
            offsets[k], sizes[k], masks[k] = info.byte_offset, info.size, info.filter_mask

        try:
            self.ds.id.chunk_iter(visit)
            fd = os.open(f.filename, os.O_RDONLY)
        except (OSError, RuntimeError, ValueError, TypeError):
            return None
        self._fd = fd
        self._close_fd = weakref.finalize(self, os.close, fd)  # closed with the reader, or when it is collected
        offsets += f.userblock_size
        stored = np.flatnonzero(sizes)
        if stored.size:  # check the first stored chunk against h5py's own raw read
            k = int(stored[0])
            _, expected = self.ds.id.read_direct_chunk((k * per_chunk, 0, 0))
            if os.pread(fd, int(sizes[k]), int(offsets[k])) != expected:
                self.close()
                return None
        return offsets, sizes, masks

    def _buffer(self, size: int) -> np.ndarray:
        """This thread's buffer of at least ``size`` bytes."""
        buf = getattr(self._local, "buf", None)
        if buf is None or buf.size < size:
            buf = self._local.buf = np.empty(max(size, 1 << 16), dtype=np.uint8)
        return buf

    @functools.cached_property
    def stored_chunk(self) -> int | None:
        """Patterns per HDF5 chunk when each chunk holds whole patterns, else None.

        Looked up once: h5py's ``chunks`` asks HDF5 under its global lock, which cost a fifth of the
        time of processing a chunk when it was asked for each chunk read.
        """
        c = self.ds.chunks
        return int(c[0]) if c is not None and tuple(c[1:]) == self.shape[1:] else None

    def decoder(self) -> tuple[int, tuple[str, ...]] | None:
        """(patterns per chunk, filters in pipeline order) when chunks can be decoded here, else None.

        Decoded here: chunks of whole patterns of a native numeric dtype with
        shuffle, deflate and/or LZF (h5py's, AZtec's), in any order.
        """
        if self._decoder is False:
            self._decoder = None
            d = self.ds
            if self.stored_chunk is not None and d.dtype.isnative and d.dtype.kind in "uif":
                plist = d.id.get_create_plist()
                ids = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
                if all(f in _FILTERS for f in ids):
                    self._decoder = (self.stored_chunk, tuple(_FILTERS[f] for f in ids))
        return self._decoder  # type: ignore[return-value]

    def _raw_chunk(self, k: int) -> tuple[int, np.ndarray] | None:
        """(filter mask, stored bytes) of chunk ``k``, read into this thread's buffer; None when not stored.

        A buffer kept per thread: a new one per chunk would cost its page
        faults on every read (7 x slower for 100 KiB chunks).
        """
        table = self._chunk_table()
        if table is not None:
            offsets, sizes, masks = table
            size = int(sizes[k])
            if not size:
                return None
            if size > self._max_stored(self.dtype.itemsize * int(np.prod((self.stored_chunk, *self.shape[1:])))):
                raise self.bad_chunk(k, f"HDF5's index says it takes {size:,} bytes, more than any encoding of it")
            buf = self._buffer(size)
            if os.preadv(self._fd, [buf[:size]], int(offsets[k])) != size:
                return None
            return int(masks[k]), buf[:size]
        per_chunk = self.decoder()[0]  # type: ignore[index]
        try:
            info = self.ds.id.get_chunk_info_by_coord((k * per_chunk, 0, 0))
            if not info.size:  # not stored: h5py gives the fill value (raw reads of some fail oddly)
                return None
            if info.size > self._max_stored(self.dtype.itemsize * int(np.prod((per_chunk, *self.shape[1:])))):
                raise self.bad_chunk(k, f"HDF5's index says it takes {info.size:,} bytes, more than any encoding of it")
            buf = self._buffer(info.size)
            mask, view = self.ds.id.read_direct_chunk((k * per_chunk, 0, 0), out=buf)
        except (OSError, ValueError, KeyError, RuntimeError, TypeError):
            return None
        return int(mask), buf[: len(view)]

    def decode_chunk(
        self, k: int, cancel: Callable[[], bool] | None = None, *, into: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Whole chunk ``k`` (patterns per chunk, h, w) from its stored bytes, decompressed outside h5py's lock.

        Filters that the chunk's mask says were skipped (HDF5 stores a chunk
        as it is when compression would enlarge it) are not undone. ``into``:
        a C-contiguous array of the chunk's shape and dtype to decompress
        into (no copy); otherwise a new array. None when h5py must read the
        chunk: not stored (h5py gives the fill value). A chunk that does not
        decode here is read by h5py; :class:`BadChunkError` (naming the chunk
        and the patterns it holds) when h5py cannot read it either. Raises
        :class:`Cancelled`.
        """
        decoder = self.decoder()
        if decoder is None:
            return None
        per_chunk, filters = decoder
        stored = self._raw_chunk(k)
        if stored is None:
            return None
        mask, raw = stored
        size = self.dtype.itemsize
        chunk_shape = (per_chunk, *self.shape[1:])
        nbytes = size * int(np.prod(chunk_shape))
        todo = [f for i, f in enumerate(filters) if not mask & (1 << i)]
        target = np.empty(chunk_shape, dtype=self.dtype) if into is None else into
        flat = target.reshape(-1).view(np.uint8)
        if todo == ["lzf"]:  # AZtec's H5OINA: straight into the target
            from kikuchi.io._kernels import lzf_decompress

            if lzf_decompress(raw, nbytes, out=flat) is not None:
                return target
            return self._h5py_chunk(k, target, f"LZF: not a stream of the chunk's {nbytes:,} bytes")
        data: Any = raw
        for name in reversed(todo):  # undo the pipeline, last filter first
            if name == "deflate":
                try:
                    data = inflate(data, cancel)
                except Cancelled:
                    raise
                except Exception as exc:  # noqa: BLE001 - zlib.error, isal's IsalError: a damaged stream
                    return self._h5py_chunk(k, into, f"deflate: {_reason(exc)}")
            elif name == "lzf":
                from kikuchi.io._kernels import lzf_decompress

                data = lzf_decompress(data, nbytes)
                if data is None:
                    return self._h5py_chunk(k, into, f"LZF: not a stream of the chunk's {nbytes:,} bytes")
            elif size > 1:
                if len(data) != nbytes:
                    return self._h5py_chunk(k, into, f"{len(data):,} bytes to unshuffle where the chunk holds {nbytes:,}")
                data = unshuffle(data, size)
        if len(data) != nbytes:
            return self._h5py_chunk(k, into, f"{len(data):,} bytes decoded where the chunk holds {nbytes:,}")
        flat[...] = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
        return target

    def read_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Patterns ``start:stop`` into ``out`` (``stop - start`` patterns).

        Runs of whole chunks without filters or with LZF are read with one
        positional read (straight into ``out`` when stored back to back);
        other chunks with filters are decompressed here one by one, outside
        h5py's lock; the rest goes through h5py.
        """
        if stop <= start:
            return
        decoder = self.decoder()
        if decoder is not None:
            per_chunk, filters = decoder
            direct = out.flags.c_contiguous and out.dtype == self.dtype
            k_first, k_last = -(-start // per_chunk), stop // per_chunk  # whole chunks: k_first .. k_last - 1
            if direct and filters in ((), ("lzf",)) and k_last > k_first and self._chunk_table() is not None:
                lo, hi = k_first * per_chunk, k_last * per_chunk
                if self._read_run(k_first, k_last, out[lo - start : hi - start], filters):
                    if start < lo:
                        self.read_into(start, lo, out[: lo - start])
                    if hi < stop:
                        self.read_into(hi, stop, out[hi - start :])
                    return
            if filters:
                for k in range(start // per_chunk, (stop - 1) // per_chunk + 1):
                    lo, hi = max(start, k * per_chunk), min(stop, (k + 1) * per_chunk)
                    whole = direct and hi - lo == per_chunk
                    chunk = self.decode_chunk(k, into=out[lo - start : hi - start] if whole else None)
                    if chunk is None:
                        break  # not stored: h5py reads the range (the fill value)
                    if not whole:
                        out[lo - start : hi - start] = chunk[lo - k * per_chunk : hi - k * per_chunk]
                else:
                    return
        self._h5py_read(start, stop, out)

    def _read_run(self, k0: int, k1: int, out: np.ndarray, filters: tuple[str, ...]) -> bool:
        """Whole chunks ``k0 .. k1 - 1`` (no filters, or LZF) into ``out`` with one positional read of the bytes they span.

        Outside h5py's lock, so threads read in parallel; back-to-back raw
        chunks land straight in ``out``, LZF chunks (AZtec stores one pattern
        per chunk: per-chunk Python would cost more than the decompression)
        are decoded in one kernel call. False (nothing read) when the chunks
        are not in file order or far apart, one is missing, or one does not
        decode.
        """
        from kikuchi.io._kernels import lzf_chunks

        offsets, sizes, masks = self._chunk_table()  # type: ignore[misc]
        off, size, mask = offsets[k0:k1], sizes[k0:k1], masks[k0:k1]
        if not size.all() or np.any(off[1:] < off[:-1] + size[:-1]):
            return False  # a chunk missing, or chunks not in file order
        if int(size.max()) > self._max_stored(out.nbytes // (k1 - k0)):
            return False  # a damaged index: read chunk by chunk, which names the chunk
        span = int(off[-1] + size[-1] - off[0])
        target = out.reshape(-1).view(np.uint8)
        raw = np.ones(k1 - k0, dtype=np.bool_) if not filters else (mask & 1).astype(np.bool_)
        if raw.all() and span == target.size:  # stored back to back as they are: one read into out
            return os.preadv(self._fd, [target], int(off[0])) == span
        if span > 2 * int(size.sum()) + (1 << 16):
            return False  # far apart in the file (HDF5 puts its index nodes between chunks: small gaps are read through)
        buf = self._buffer(span)
        if os.preadv(self._fd, [buf[:span]], int(off[0])) != span:
            return False
        return lzf_chunks(buf, off - off[0], size, raw, target, target.size // (k1 - k0)) < 0

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
            raise MapFileError(unreadable_hdf5(self.path, exc)) from None
        try:
            self._open(**options)
            self._check_unstored()
        except BaseException:
            self._file.close()
            raise
        reader = getattr(self, "_reader", None)
        if isinstance(reader, H5Patterns):
            where = weakref.WeakMethod(self._where)
            reader.where = lambda start, stop: where()(start, stop)  # type: ignore[misc]

    def _open(self, **options: Any) -> None:
        raise NotImplementedError  # pragma: no cover - every HDF5 format implements it

    def _check_unstored(self) -> None:
        """The chunk index of the pattern dataset, looked at once: damaged, refused; chunks never written, their points missing.

        HDF5 reads a chunk that was never written (an interrupted writer) as
        its fill value, and a damaged index (a flipped byte in a chunk's key)
        as another chunk's data: never patterns without a word. One pass over
        the index (about 1 µs a chunk).
        """
        reader = getattr(self, "_reader", None)
        ds = getattr(reader, "ds", None)
        if ds is None or ds.chunks is None or not self.n_patterns or not hasattr(ds.id, "chunk_iter"):
            return
        per_chunk = int(ds.chunks[0])
        if tuple(ds.chunks[1:]) != tuple(ds.shape[1:]):
            return  # chunks that split patterns: HDF5 alone knows them (no layout of a pattern file does this)
        n = ds.id.get_num_chunks() if hasattr(ds.id, "get_num_chunks") else -(-int(ds.shape[0]) // per_chunk)
        first = np.empty(n, dtype=np.int64)
        where = np.empty(n, dtype=np.int64)
        count = [0]

        def visit(info: Any) -> None:
            k = count[0]
            if k < n:
                first[k], where[k] = info.chunk_offset[0], info.byte_offset
            count[0] = k + 1

        ds.id.chunk_iter(visit)
        first, where = first[: min(n, count[0])], where[: min(n, count[0])]
        bad = (first % per_chunk != 0) | (first < 0) | (first >= ds.shape[0])
        bad[1:] |= first[1:] <= first[:-1]
        if bad.any() or count[0] > n:
            i = int(np.argmax(bad)) if bad.any() else n - 1
            after = f"after the chunk of patterns from {first[i - 1]}" if i and not (first[i] % per_chunk or first[i] >= ds.shape[0]) else "not a chunk of the dataset"
            raise MapFileError(
                f"{self.path}: the chunk index of '{ds.name.lstrip('/')}' is damaged: the chunk at byte {where[i]} claims patterns "
                f"from {first[i]}, {after}; its patterns cannot be told apart: copy the file again from its source"
            )
        stored = np.zeros(ds.shape[0], dtype=bool)
        starts = first[:, None] + np.arange(per_chunk)
        stored[starts[starts < ds.shape[0]]] = True
        name = ds.name.lstrip("/")
        unstored = np.flatnonzero(~stored)
        hit = (self._index_map >= 0) & np.isin(self._index_map, unstored)
        if hit.any():
            rows = np.flatnonzero(hit.any(axis=1))
            self._index_map = np.where(hit, -1, self._index_map)
            self._note(
                f"'{name}' has {unstored.size} pattern(s) in chunks that were never written (storage index "
                f"{unstored[0]} first; an interrupted or damaged file): their {int(hit.sum())} map point(s) "
                f"(map rows {rows[0]}..{rows[-1]}) are read as missing"
            )

    def close(self) -> None:
        """Close the file."""
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
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
        return self._reader.pattern(self._index(row, col))

    # -- damaged chunks ------------------------------------------------------
    def _where(self, start: int, stop: int) -> str:
        """Where the patterns at storage indices ``start:stop`` lie on the map, in words."""
        rows = self.positions[0][start:stop]
        rows = rows[rows >= 0]
        if not rows.size:
            return "no map point"
        lo, hi = int(rows.min()), int(rows.max())
        return f"map row {lo}" if lo == hi else f"map rows {lo}..{hi}"

    @property
    def unreadable_points(self) -> int:
        """Map points read as points without a pattern because their chunk cannot be decoded (:meth:`mark_unreadable`)."""
        return int(getattr(self, "_unreadable_points", 0))

    def mark_unreadable(self, indices: Any, error: BadChunkError) -> int:
        """Read the patterns at storage ``indices`` (those of a damaged chunk) as missing from now on.

        The points that hold them get -1 in the index map (a new array:
        code holding the old one is not disturbed), are counted in
        :attr:`unreadable_points`, and the damage is noted (a
        :class:`~kikuchi.io.source.MapFileWarning`, in ``notes``). Used by
        the engine's ``on_bad_chunk='skip'``. Returns the number of points
        newly marked.
        """
        idx = np.unique(np.asarray(indices, dtype=np.int64))
        hit = (self._index_map >= 0) & np.isin(self._index_map, idx)
        n = int(hit.sum())
        if n:
            rows = np.flatnonzero(hit.any(axis=1))
            self._index_map = np.where(hit, -1, self._index_map)
            self._unreadable_points = self.unreadable_points + n
            span = f"map row {rows[0]}" if rows[0] == rows[-1] else f"map rows {rows[0]}..{rows[-1]}"
            what = f"HDF5 chunk {error.chunk} of '{error.dataset}'" if error.chunk is not None else f"'{error.dataset}'"
            cause = error.cause or str(error)
            self._note(
                f"{what} cannot be decoded ({cause}); its {n} point{'s' * (n != 1)} ({span}) "
                "are read as points without a pattern"
            )
        return n

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
        if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)):
            raise TypeError(f"{self.path}: chunk={chunk!r}: expected a chunk number (a whole number)")
        if not 0 <= chunk * n < self.n_patterns:
            raise IndexError(f"{self.path}: chunk {chunk} is outside the {self.n_patterns} patterns ({n} per chunk)")
        return self._reader.read_chunk(int(chunk), n, cancel)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(self._reader.describe())
        if self.unreadable_points:
            out["unreadable_points"] = self.unreadable_points
        return out


def unreadable_hdf5(path: Path, exc: BaseException) -> str:
    """What to say of an HDF5 file that h5py cannot open: a file cut short is said so, with what is there."""
    text = " ".join(str(exc).split())
    cut = re.search(r"truncated file: eof = (\d+).*?stored_eof = (\d+)", text)
    if cut:
        have, want = int(cut.group(1)), int(cut.group(2))
        return (
            f"{path}: the HDF5 file is cut short: {have:,} of its {want:,} bytes are there ({100 * have / max(want, 1):.1f} %), "
            "as after an interrupted copy, download or acquisition; HDF5 keeps part of its index at the end, so no "
            "pattern in it can be located: copy the file again from its source"
        )
    return f"{path}: not a readable HDF5 file ({text})"
