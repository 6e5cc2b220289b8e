"""Whole HDF5 chunks of a pattern dataset, decompressed outside h5py's lock.

h5py serialises every call into the HDF5 library with one global lock, and
a chunk read holds it while the chunk is decompressed (about 10 ms for a
1 MiB chunk of nine 240 x 240 uint16 patterns). For the usual filter
pipelines of map files (deflate, with or without shuffle, or none) this
module reads the stored bytes of a chunk under the lock (a fraction of a
millisecond) and undoes the filters itself, outside it (inflating with
ISA-L, which is about twice as fast as zlib): the decompressors release the
GIL, so two chunks decompress at once on two cores, and the read-ahead
thread of the explorer can stop in the middle of a chunk as soon as a
request comes. Any other layout or filter goes through h5py as usual.
"""

from __future__ import annotations

import logging
import zlib as _zlib
from collections.abc import Callable

import h5py
import numpy as np

try:  # ISA-L inflates about twice as fast as zlib (a dependency of kikuchi, optional here)
    from isal import isal_zlib as zlib
except ImportError:  # pragma: no cover - isal is installed with kikuchi
    zlib = _zlib

__all__ = ["ChunkReader"]

_logger = logging.getLogger(__name__)

_DEFLATE = h5py.h5z.FILTER_DEFLATE
_SHUFFLE = h5py.h5z.FILTER_SHUFFLE
#: Bytes of compressed input decompressed between two looks at ``cancel``.
_STEP = 1 << 16


class ChunkReader:
    """Read the patterns of chunk k (patterns ``k * n .. (k + 1) * n``) of a dataset (N, h, w).

    Parameters
    ----------
    dataset
        The pattern dataset of an open map file.
    read
        ``read(start, stop) -> (stop - start, h, w)``: the map store's reader,
        used when the chunks cannot be decoded here.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.h5"
    >>> data = np.arange(5 * 4 * 3, dtype=np.uint16).reshape(5, 4, 3)
    >>> with h5py.File(p, "w") as f:
    ...     _ = f.create_dataset("p", data=data, chunks=(2, 4, 3), compression="gzip", shuffle=True)
    >>> with h5py.File(p, "r") as f:
    ...     reader = ChunkReader(f["p"], read=lambda a, b: f["p"][a:b])
    ...     reader.direct, np.array_equal(reader.read(2), data[4:5])
    (True, True)
    """

    def __init__(self, dataset: h5py.Dataset, *, read: Callable[[int, int], np.ndarray]):
        self.dataset = dataset
        self._read = read
        self.n_patterns = int(dataset.shape[0])
        chunks = dataset.chunks
        self.chunk = int(chunks[0]) if chunks else 1
        self.filters: list[int] = []
        self.direct = False
        if chunks is not None and tuple(chunks[1:]) == tuple(dataset.shape[1:]) and dataset.dtype.kind in "uif":
            plist = dataset.id.get_create_plist()
            self.filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
            self.direct = all(code in (_DEFLATE, _SHUFFLE) for code in self.filters)
        if not self.direct:
            _logger.debug("explorer: chunks of %s are read through h5py (layout %s, filters %s)", dataset.name, chunks, self.filters)

    def read(self, chunk: int, *, cancel: Callable[[], bool] | None = None) -> np.ndarray | None:
        """The patterns of one chunk, or None when ``cancel()`` became true while decompressing."""
        start = chunk * self.chunk
        stop = min(start + self.chunk, self.n_patterns)
        if not 0 <= start < self.n_patterns:
            raise IndexError(f"chunk {chunk} is outside the {self.n_patterns} patterns of {self.dataset.name}")
        if not self.direct:
            return self._read(start, stop)
        offset = (start, 0, 0)
        if self.dataset.id.get_chunk_info_by_coord(offset).size in (None, 0):
            return self._read(start, stop)  # never written: h5py gives the fill value
        mask, raw = self.dataset.id.read_direct_chunk(offset)
        data: bytes | np.ndarray | None = raw
        # undo the filters in the reverse order of the pipeline; bit i of mask: filter i was skipped
        for i in reversed(range(len(self.filters))):
            if mask & (1 << i):
                continue
            if self.filters[i] == _DEFLATE:
                data = _inflate(data, cancel)
                if data is None:
                    return None
            else:
                data = _unshuffle(data, self.dataset.dtype.itemsize)
        shape = (self.chunk, *self.dataset.shape[1:])
        if isinstance(data, np.ndarray):  # our own writable buffer: a view is enough
            return data.view(self.dataset.dtype).reshape(shape)[: stop - start]
        return np.frombuffer(data, dtype=self.dataset.dtype).reshape(shape)[: stop - start].copy()


def _inflate(data: bytes | np.ndarray, cancel: Callable[[], bool] | None) -> bytes | None:
    if cancel is None:
        return zlib.decompress(data)
    inflater = zlib.decompressobj()
    parts = []
    view = memoryview(data).cast("B")
    for offset in range(0, len(view), _STEP):
        if cancel():
            return None
        parts.append(inflater.decompress(view[offset : offset + _STEP]))
    parts.append(inflater.flush())
    return b"".join(parts)


def _unshuffle(data: bytes | np.ndarray, itemsize: int) -> np.ndarray:
    """Undo HDF5's shuffle filter (byte k of every element was stored in the k-th block): a new uint8 array.

    >>> _unshuffle(bytes([1, 3, 2, 4, 9]), 2).tolist()  # two 2-byte elements (1, 2), (3, 4) and a trailing byte
    [1, 2, 3, 4, 9]
    """
    src = np.frombuffer(data, dtype=np.uint8)
    out = np.empty(src.size, dtype=np.uint8)
    n = src.size // itemsize
    elements = out[: n * itemsize].reshape(n, itemsize)
    for k in range(itemsize):  # one strided copy per byte plane: 10 x faster than a transposed copy
        elements[:, k] = src[k * n : (k + 1) * n]
    out[n * itemsize :] = src[n * itemsize :]
    return out
