"""A map writer whose partial output survives an interruption and can be continued.

:class:`ResumableMapWriter` is a :class:`kikuchi.io.mapstore.MapWriter` that

* keeps the temporary ``.NAME.partial`` file when the run fails or is
  interrupted (unless nothing was written yet);
* records in that file which patterns are complete (a per-pattern flag,
  set after the patterns are flushed to disk) and a fingerprint of the run
  (input and parameters);
* with ``resume=True`` reopens the partial file, checks the fingerprint and
  restores the record, so the engine only computes what is missing.

The record and the fingerprint are removed when the file is complete and
renamed to its final name.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import h5py
import numpy as np

from kikuchi.io._atomic import atomic_output
from kikuchi.io.mapstore import MapFileError, MapWriter

_logger = logging.getLogger(__name__)

_RECORD = "Scan/EBSD/Header/ResumeWritten"
_FINGERPRINT = "ResumeFingerprint"


class ResumableMapWriter(MapWriter):
    """MapWriter with resumable partial output.

    Parameters
    ----------
    path
        Final output path.
    resume
        Continue the partial file of an interrupted run with the same
        fingerprint, when there is one; otherwise start afresh.
    fingerprint
        JSON-ready description of the run (input, parameters); a partial file
        with another fingerprint is not resumed.
    **kwargs
        Those of :class:`MapWriter`.
    """

    def __init__(self, path: Any, *, resume: bool = False, fingerprint: dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(path, **kwargs)
        self._atomic = atomic_output(self.path, keep_partial=True)
        self.resume = bool(resume)
        self.fingerprint = json.dumps(fingerprint or {}, sort_keys=True, default=str)
        #: Patterns found complete in the partial file when resuming.
        self.resumed_patterns = 0

    def __enter__(self) -> ResumableMapWriter:
        tmp = self._atomic.__enter__()
        if self.resume and tmp.exists():
            self._reopen(tmp)
        else:
            if tmp.exists():
                _logger.info("%s: starting afresh; the partial output of an earlier run is replaced", tmp)
                tmp.unlink()
            self._file = h5py.File(tmp, "w")
            self._init_layout()
            self.h5.create_dataset(_RECORD, shape=(self.n_patterns,), dtype=np.uint8, fillvalue=0)
            self.header.attrs[_FINGERPRINT] = self.fingerprint
            self.h5.flush()
        return self

    def _reopen(self, tmp: Any) -> None:
        try:
            f = h5py.File(tmp, "r+")
        except OSError as exc:
            raise MapFileError(
                f"{tmp}: the partial output of the interrupted run cannot be read ({exc}); "
                "delete it and run again without --resume"
            ) from exc
        try:
            ok = _RECORD in f and _FINGERPRINT in f["Scan/EBSD/Header"].attrs
            old = f["Scan/EBSD/Header"].attrs[_FINGERPRINT] if ok else None
            if isinstance(old, bytes):
                old = old.decode()
            if not ok or old != self.fingerprint:
                raise MapFileError(
                    f"{tmp}: the partial output was written from another input or with other parameters; "
                    "run again without --resume to start afresh (or with the same options to continue it)"
                )
            ds = f[f"Scan/EBSD/Data/{self.dataset}"]
            if ds.shape != (self.n_patterns, *self.pattern_shape) or ds.dtype != self.dtype:
                raise MapFileError(f"{tmp}: partial output holds {ds.shape} {ds.dtype} patterns, expected {(self.n_patterns, *self.pattern_shape)} {self.dtype}")
            if ds.chunks is None or ds.chunks[0] != self.chunk_patterns:
                raise MapFileError(
                    f"{tmp}: partial output is stored in chunks of {ds.chunks and ds.chunks[0]} patterns, "
                    f"this run writes {self.chunk_patterns}; resume with the same --chunk-rows, or run without --resume"
                )
            self._written[:] = f[_RECORD][()] > 0
        except BaseException:
            f.close()
            raise
        self._file = f
        self.resumed_patterns = int(self._written.sum())
        _logger.info("%s: resuming, %d of %d patterns already complete", tmp, self.resumed_patterns, self.n_patterns)

    def __exit__(self, exc_type, exc, tb) -> bool:
        nothing = not self._written.any()
        try:
            return super().__exit__(exc_type, exc, tb)
        finally:
            if exc_type is not None and nothing:
                with contextlib.suppress(FileNotFoundError):
                    self.partial_path.unlink()

    @property
    def written(self) -> np.ndarray:
        """(n_patterns,) bool: patterns complete on disk, in storage order."""
        return self._written.copy()

    def write(self, start: int, patterns: np.ndarray, **kwargs: Any) -> None:
        """Write patterns, flush them, then mark them complete in the partial file."""
        self.write_block(start, patterns, encoded=[kwargs["encoded"]] if kwargs.get("encoded") is not None else None)

    def write_block(self, start: int, patterns: np.ndarray, *, encoded: list[bytes] | None = None) -> None:
        """Write a block of whole HDF5 chunks (``encoded``: one stored chunk each, from
        :meth:`encode_chunk`) or any patterns (``encoded=None``); flush; mark them complete."""
        patterns = np.asarray(patterns)
        if encoded is None:
            super().write(start, patterns)
        else:
            cp = self.chunk_patterns
            for k, blob in enumerate(encoded):
                super().write(start + k * cp, patterns[k * cp : (k + 1) * cp], encoded=blob)
        stop = start + len(patterns)
        self.h5.flush()
        self.h5[_RECORD][start:stop] = 1
        self.h5.flush()

    def _finish(self) -> None:
        super()._finish()
        del self.h5[_RECORD]
        if _FINGERPRINT in self.header.attrs:
            del self.header.attrs[_FINGERPRINT]
