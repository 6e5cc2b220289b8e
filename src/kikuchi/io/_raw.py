"""Positional reads of binary pattern files (.ebsp, .up1/.up2, NORDIF Pattern.dat).

:class:`RawFile` holds one file descriptor and reads with ``os.preadv``
straight into the caller's buffers: no file position is shared, so the
threads of the engine read one open map in parallel. Where the platform has
no ``preadv`` (Windows), a lock serialises seek + read. The descriptor is
closed by :meth:`RawFile.close` or when the object is collected.
:class:`FixedPatterns` reads patterns of one byte size laid end to end.
"""

from __future__ import annotations

import os
import threading
import weakref
from pathlib import Path

import numpy as np

from kikuchi.io.source import MapFileError

__all__ = ["FixedPatterns", "RawFile"]


class RawFile:
    """A file read by position."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._closer = weakref.finalize(self, os.close, self.fd)
        self._lock = threading.Lock()

    @property
    def closed(self) -> bool:
        return not self._closer.alive

    @property
    def size(self) -> int:
        """Size of the file in bytes, now."""
        return os.fstat(self.fd).st_size

    def close(self) -> None:
        self._closer()

    def pread(self, n: int, offset: int) -> bytes:
        """Up to ``n`` bytes at ``offset`` (fewer at the end of the file)."""
        self._check()
        return os.pread(self.fd, n, offset)

    def readinto(self, buffer: np.ndarray | memoryview, offset: int) -> int:
        """Fill ``buffer`` (a writable C-contiguous array or memoryview) from ``offset``; the bytes read (fewer at the end)."""
        self._check()
        view = memoryview(buffer).cast("B")
        done = 0
        preadv = getattr(os, "preadv", None)
        while done < len(view):
            if preadv is not None:
                n = preadv(self.fd, [view[done:]], offset + done)
            else:  # pragma: no cover - platforms without preadv (Windows)
                with self._lock:
                    os.lseek(self.fd, offset + done, os.SEEK_SET)
                    chunk = os.read(self.fd, len(view) - done)
                n = len(chunk)
                view[done : done + n] = chunk
            if n == 0:
                break
            done += n
        return done

    def _check(self) -> None:
        if self.closed:
            raise MapFileError(f"{self.path}: the file is closed")


class FixedPatterns(RawFile):
    """Patterns of ``pattern_bytes`` bytes each at ``offset + i * pattern_bytes`` (UP1/UP2, NORDIF)."""

    def __init__(self, path: str | os.PathLike, *, offset: int, pattern_bytes: int):
        super().__init__(path)
        self.offset = int(offset)
        self.pattern_bytes = int(pattern_bytes)

    def read_into(self, start: int, stop: int, out: np.ndarray) -> None:
        """Fill ``out`` (``stop - start`` patterns) with the bytes of patterns ``start:stop``, straight into it where it is contiguous."""
        target = out if out.flags.c_contiguous and out.flags.writeable else np.empty(out.shape, out.dtype)
        nbytes = target.nbytes
        if nbytes != (stop - start) * self.pattern_bytes:
            raise ValueError(f"{self.path}: buffer of {nbytes} bytes for {stop - start} patterns of {self.pattern_bytes} bytes")
        position = self.offset + start * self.pattern_bytes
        got = self.readinto(target, position)
        if got != nbytes:
            raise MapFileError(
                f"{self.path}: file ends at byte {position + got}, before the patterns asked for (did it shrink after it was opened?)"
            )
        if target is not out:
            out[...] = target
