"""A map writer whose partial output survives an interruption and can be continued.

:class:`ResumableMapWriter` is a :class:`kikuchi.io.mapstore.MapWriter` that

* keeps the temporary ``.NAME.partial`` file when the run fails or is
  interrupted (unless nothing was written yet);
* records in that file which patterns are complete (a per-pattern flag,
  set after the patterns are flushed to disk) and a fingerprint of the run
  (input and parameters);
* with ``resume=True`` reopens the partial file, checks the fingerprint and
  restores the record, so the engine only computes what is missing;
* writes through :class:`~kikuchi.io._atomic.OutputH5File` and stops at the
  first block after a write failed (a full disk): the partial file, whose
  bytes did not all reach the disk, is removed and the error says so in
  one line.

The record and the fingerprint are removed when the file is complete and
renamed to its final name.

What a resumed run does with the partial file it finds (docs/processing.md,
"Interrupted runs"):

* the same fingerprint and a record of complete patterns: continued; the
  patterns recorded complete whose HDF5 chunks are not in the file (a run
  killed while HDF5 was writing) are computed again;
* another fingerprint, another pattern layout: refused (MapFileError: the
  options or the input changed);
* a file HDF5 cannot read, a file without the record (a run killed while it
  created the file or while it finished it), a file whose record HDF5 reads but
  not its pattern dataset (a run killed inside a flush), a chunk to be written again
  that HDF5 cannot write (its index points past the end of the file HDF5
  recorded: a run killed inside a flush) or nothing complete: replaced, the
  run starts afresh (a :class:`ResumeWarning` says why, except for nothing
  complete). The result is the same either way.

Ctrl-C while the complete file is finished and renamed (milliseconds) is held
until the file is whole under its final name, then raised: the output is
then complete, never half-finished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from kikuchi.io._atomic import OutputH5File, atomic_output, release_interrupt_guard
from kikuchi.io.mapstore import MapFileError, MapWriter

_logger = logging.getLogger(__name__)

_RECORD = "Scan/EBSD/Header/ResumeWritten"
_FINGERPRINT = "ResumeFingerprint"
#: Set on log records whose text the interrupt also carries (a note of the
#: KeyboardInterrupt): the command line prints the note, not the record.
NOTE_ON_INTERRUPT = "kikuchi_note_on_interrupt"


class ResumeWarning(UserWarning):
    """The partial output of an interrupted run cannot be continued as it is (the message says why and what is done)."""


@contextlib.contextmanager
def hold_interrupts(*, deliver: bool = True) -> Iterator[None]:
    """Hold SIGINT and SIGTERM (where Python handles them) until the block is done.

    For short critical sections: finishing and renaming a complete output,
    closing the file of an interrupted run. A signal that arrives meanwhile
    is delivered (its handler called) when the block ends without an
    exception and ``deliver`` is true; otherwise it is dropped (an exception,
    or the interruption being handled, is already on its way). Outside the
    main thread nothing is held.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous: dict[int, Any] = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if callable(handler):  # a Python handler (KeyboardInterrupt): hold it; SIG_DFL/SIG_IGN stay as they are
            previous[signum] = handler
            signal.signal(signum, lambda number, _frame: held.append(number))
    failed = True
    try:
        yield
        failed = False
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        release_interrupt_guard()  # the outputs closed meanwhile: Python's default handler, where it was
        if held and deliver and not failed:
            previous[held[0]](held[0], None)  # raises KeyboardInterrupt (or does what the handler does)


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
        if self.resume:
            if tmp.exists() and self._reopen(tmp):
                return self
            if not tmp.exists():
                _logger.info("%s: no partial output of an interrupted run to continue; starting afresh", tmp)
        if tmp.exists():
            _logger.info("%s: starting afresh; the partial output of an earlier run is replaced", tmp)
            tmp.unlink()
        try:
            self._file = OutputH5File(tmp, "w")
            self._init_layout()
            self.h5.create_dataset(_RECORD, shape=(self.n_patterns,), dtype=np.uint8, fillvalue=0)
            self.header.attrs[_FINGERPRINT] = self.fingerprint
            self.h5.flush()
        except BaseException:  # Ctrl-C or a full disk while creating it: nothing to continue, nothing left behind
            with hold_interrupts(deliver=False):
                if self._file is not None:
                    with contextlib.suppress(Exception):
                        self._file.close()
                    self._file = None
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            raise
        return self

    def _afresh(self, tmp: Any, why: str) -> bool:
        warnings.warn(
            f"{tmp}: the partial output of the interrupted run cannot be continued: {why}; it is replaced and the run starts afresh",
            ResumeWarning,
            stacklevel=4,
        )
        return False

    def _reopen(self, tmp: Any) -> bool:
        """Open the partial output to continue it: True; False when it is to be replaced (said in a warning where it is odd)."""
        try:
            f = OutputH5File(tmp, "r+")
        except (OSError, RuntimeError, ValueError) as exc:
            return self._afresh(tmp, f"HDF5 cannot read it ({' '.join(str(exc).split())[:160]}): the run was killed while HDF5 was writing")
        try:
            try:
                ok = _RECORD in f and "Scan/EBSD/Header" in f and _FINGERPRINT in f["Scan/EBSD/Header"].attrs
                old = f["Scan/EBSD/Header"].attrs[_FINGERPRINT] if ok else None
                record = np.asarray(f[_RECORD][()]) if ok else None
                ds = f.get(f"Scan/EBSD/Data/{self.dataset}")
            except (OSError, RuntimeError, ValueError, KeyError) as exc:
                f.close()
                return self._afresh(tmp, f"HDF5 cannot read its record of complete patterns ({' '.join(str(exc).split())[:160]})")
            if not ok:
                f.close()
                return self._afresh(
                    tmp,
                    "it holds no record of which patterns are complete (the run was stopped while it created or "
                    "finished the file, or the file was not written by a resumable run)",
                )
            if isinstance(old, bytes):
                old = old.decode()
            if old != self.fingerprint:
                raise MapFileError(
                    f"{tmp}: the partial output was written from another input or with other parameters; "
                    "run again without --resume to start afresh (or with the same options to continue it)"
                )
            if ds is None:  # created with the record, before it: its link lost in a flush the kill cut short
                f.close()
                return self._afresh(tmp, "HDF5 finds no pattern dataset in it: the run was killed while HDF5 was writing")
            if ds.shape != (self.n_patterns, *self.pattern_shape) or ds.dtype != self.dtype or record.shape != (self.n_patterns,):
                raise MapFileError(
                    f"{tmp}: partial output holds {ds.shape} {ds.dtype} patterns, expected {(self.n_patterns, *self.pattern_shape)} {self.dtype}; "
                    "run again without --resume to start afresh"
                )
            if ds.chunks is None or ds.chunks[0] != self.chunk_patterns:
                raise MapFileError(
                    f"{tmp}: partial output is stored in chunks of {ds.chunks and ds.chunks[0]} patterns, "
                    f"this run writes {self.chunk_patterns}; resume with the same --chunk-rows, --chunk-cols, --threads "
                    "and --workers as the interrupted run, or run without --resume"
                )
            written = record > 0
            if not written.any():
                f.close()
                _logger.info("%s: nothing was complete in the partial output; starting afresh", tmp)
                return False
            stored = _stored_chunks(ds)
            if stored is not None:
                lost = written & ~np.repeat(stored, self.chunk_patterns)[: self.n_patterns]
                if lost.any():
                    warnings.warn(
                        f"{tmp}: {int(lost.sum())} patterns recorded complete are not stored in the partial output "
                        f"(first: pattern {int(np.flatnonzero(lost)[0])}; the run was killed while HDF5 was writing); "
                        "they are computed again",
                        ResumeWarning,
                        stacklevel=3,
                    )
                    written &= ~lost
                cp = self.chunk_patterns
                whole = np.concatenate([written, np.ones(-self.n_patterns % cp, dtype=bool)]).reshape(-1, cp).all(axis=1)
                for k in np.flatnonzero(stored & ~whole):  # chunks this run writes again: HDF5 must be able to
                    try:
                        ds.id.read_direct_chunk((int(k) * cp, 0, 0))
                    except (OSError, RuntimeError, ValueError) as exc:  # 'addr overflow': its index points past the file HDF5 recorded
                        f.close()
                        return self._afresh(
                            tmp,
                            f"HDF5 cannot write its chunk of patterns {int(k) * cp}.. again ({' '.join(str(exc).split())[:120]}): "
                            "the run was killed while HDF5 was writing",
                        )
        except BaseException:
            f.close()
            raise
        self._file = f
        self._written[:] = written
        self.resumed_patterns = int(written.sum())
        _logger.info("%s: resuming, %d of %d patterns already complete", tmp, self.resumed_patterns, self.n_patterns)
        return True

    def __exit__(self, exc_type, exc, tb) -> bool:
        nothing = not self._written.any()
        try:
            # finishing, closing and renaming take milliseconds: an interruption there would lose a
            # complete result (or, on the way out of an interrupted run, leave the file half closed)
            with hold_interrupts(deliver=exc_type is None):
                try:
                    return super().__exit__(exc_type, exc, tb)
                finally:
                    if exc_type is not None and nothing:
                        with contextlib.suppress(FileNotFoundError):
                            self.partial_path.unlink()
        except KeyboardInterrupt as late:  # held while the file was finished, delivered now
            if exc_type is None and self.path.exists():
                late.add_note(f"the interruption came as the output was finished: {self.path} is complete")
            raise
        finally:
            if isinstance(exc, KeyboardInterrupt):
                self._note_interrupt(exc)

    def _note_interrupt(self, exc: KeyboardInterrupt) -> None:
        """Say on the interrupt (a note, shown by tracebacks and by the command line) and in the log what is left."""
        if self.partial_path.exists():
            note = (
                f"{int(self._written.sum())} of {self.n_patterns} patterns are complete in the partial output "
                f"{self.partial_path}, which is kept: run the same command with --resume to continue"
            )
        else:
            note = f"nothing was complete; no output was left (neither {self.path.name} nor its partial file)"
        if note not in getattr(exc, "__notes__", ()):
            exc.add_note(note)
            _logger.warning("interrupted: %s", note, extra={NOTE_ON_INTERRUPT: True})

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
        self.h5.check()  # a write failed (a full disk): stop now, not at the end of the run
        self.h5[_RECORD][start:stop] = 1
        self.h5.flush()

    def _finish(self) -> None:
        super()._finish()
        del self.h5[_RECORD]
        if _FINGERPRINT in self.header.attrs:
            del self.header.attrs[_FINGERPRINT]


def _stored_chunks(ds: Any) -> np.ndarray | None:
    """(n_chunks,) bool: which HDF5 chunks of a pattern dataset the file holds (one pass over its
    chunk index); None when HDF5 cannot say."""
    per = int(ds.chunks[0])
    stored = np.zeros(-(-int(ds.shape[0]) // per), dtype=bool)
    try:
        ds.id.chunk_iter(lambda info: stored.__setitem__(int(info.chunk_offset[0]) // per, True))
    except (AttributeError, OSError, RuntimeError, ValueError):
        return None
    return stored
