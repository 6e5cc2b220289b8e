"""Atomic output: write under a temporary name, rename when complete; a failed write said in one line.

Every writer of kikuchi goes through :func:`atomic_output` (a file),
:func:`atomic_directory` (a folder of outputs) and, for HDF5 files,
:class:`OutputH5File`, so an interrupted or failed command (an error,
Ctrl-C, a full disk) never leaves an output under its final name that looks
complete, and a full disk is said in one line (:class:`OutputWriteError`)
instead of a traceback or a crash.

Why HDF5 files need :class:`OutputH5File`: HDF5 defers most writes to when
a file is flushed or closed, and after a write of its own has failed (no
space left, a quota, an I/O error) it cannot close the file any more: the
close fails, the objects of the file can no longer be released, and the
interpreter dies with a segmentation fault when it next touches them or
exits (seen with h5py 3.16 / HDF5 2.0 on a full disk, in ``kikuchi simulate``
and ``kikuchi vbse``). :class:`OutputH5File` gives HDF5 a file object whose
writes never fail: the first failed write is recorded, the rest of the file
is kept in memory as far as HDF5 reads it back, HDF5 closes cleanly, and
the close then raises :class:`OutputWriteError` and removes the partial file.
"""

from __future__ import annotations

import _thread
import contextlib
import errno
import io
import os
import shutil
import signal
import threading
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import h5py

__all__ = [
    "OutputH5File",
    "OutputWriteError",
    "atomic_directory",
    "atomic_output",
    "in_uninterruptible_code",
    "interrupt_again",
    "output_error",
    "partial_path",
    "release_interrupt_guard",
    "take_pending",
]

#: errno values of a write that fails for lack of room (said "no space left on device").
NO_SPACE = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if e is not None)
#: errno values that only a write gives: a failure of the output whatever raised it.
WRITE_ONLY = NO_SPACE | {errno.EROFS}
#: errno values of an output that cannot be made (its folder, its name).
CANNOT_WRITE = WRITE_ONLY | {errno.EIO, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG}
#: Bytes of failed writes kept in memory so that HDF5 reads back what it wrote (metadata, mostly).
_OVERLAY_BYTES = 64 << 20


class OutputWriteError(OSError):
    """An output could not be written (no space left, a quota, a read-only or failing disk); nothing was left under its name."""


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary name under which ``path`` is written until complete."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def _free_space(folder: Path) -> str:
    """'12.3 MiB free in FOLDER' (the nearest folder that exists), or '' when unknown."""
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            try:
                free = shutil.disk_usage(candidate).free
            except OSError:
                return ""
            return f"{free / 2**20:.1f} MiB free in {candidate}"
    return ""


def output_error(path: str | os.PathLike, exc: BaseException, *, codes: frozenset[int] | set[int] = WRITE_ONLY) -> OutputWriteError | None:
    """The one-line error of a failed write of ``path``, or None when ``exc`` is not a failed write.

    A failed write is an :class:`OSError` whose errno is one of ``codes``
    (default :data:`WRITE_ONLY`: no space, a quota, a read-only file system;
    errors a read of the input could also give, such as EIO, only where the
    caller knows it was writing), or an HDF5 error that says so
    (``errno = 28`` in its text).

    >>> str(output_error("out/a.h5", OSError(errno.ENOSPC, "No space left on device"))).startswith(
    ...     "out/a.h5: no space left on device while writing it")
    True
    >>> output_error("a.h5", ValueError("bad")) is None
    True
    """
    if isinstance(exc, OutputWriteError):
        return exc
    path = Path(path)
    if path.name.startswith(".") and path.name.endswith(".partial"):  # say the output's own name
        path = path.with_name(path.name[1 : -len(".partial")])
    code = getattr(exc, "errno", None) if isinstance(exc, OSError) else None
    if code is None and isinstance(exc, (OSError, RuntimeError)):
        text = str(exc)
        for candidate in codes:
            if f"errno = {candidate}," in text or f"[Errno {candidate}]" in text:
                code = candidate
                break
    if code not in codes:
        return None
    if code in NO_SPACE:
        free = _free_space(path.parent)
        what = "no space left on device" if code == errno.ENOSPC else "over the disk quota or the largest file size"
        message = (
            f"{path}: {what} while writing it{f' ({free})' if free else ''}; nothing was left under its name: "
            "free some space or write the output elsewhere"
        )
    else:
        message = f"{path}: cannot be written ({os.strerror(code)}); nothing was left under its name: write the output elsewhere"
    error = OutputWriteError(message)
    error.errno = code
    return error


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, keep_partial: bool = False) -> Iterator[Path]:
    """Yield a temporary path; rename it to ``path`` when the block succeeds.

    Parameters
    ----------
    path
        Final output path.
    keep_partial
        Keep the temporary file when the block fails (used by resumable
        writers); by default it is removed. A failed write (no space left,
        an I/O error) always removes it.

    Raises
    ------
    OutputWriteError
        The output cannot be written (its folder cannot be made, it is a
        folder, the disk is full, ...); the message names the file, what
        failed and what to do.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "a.txt").read_text()
    'done'
    """
    path = Path(path)
    if path.is_dir():
        raise OutputWriteError(f"{path}: is a folder; give the output a file name (nothing was written)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputWriteError(f"{path}: {path.parent} is a file, not a folder; choose another output path (nothing was written)") from None
    except OSError as exc:
        raise output_error(path, exc, codes=CANNOT_WRITE) or exc from None
    tmp = partial_path(path)
    if not keep_partial and tmp.exists():
        tmp.unlink()
    try:
        yield tmp
    except BaseException as exc:
        failed = output_error(path, exc)
        if failed is not None or not keep_partial:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if failed is not None and failed is not exc:
            raise failed from None
        raise
    try:
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise output_error(path, exc, codes=CANNOT_WRITE) or exc from None
    except BaseException:  # Ctrl-C as it is renamed: the partial file goes (the output is there, or not at all)
        if not keep_partial:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, last: Sequence[str] = ("index.html",)) -> Iterator[Path]:
    """Yield a temporary folder; its files become the folder ``path`` when the block succeeds.

    The files are written into ``.NAME.partial/`` beside ``path``. On
    success, a new ``path`` is that folder renamed (all at once); into an
    existing folder the files are moved one by one, those named in ``last``
    (the entry point, ``index.html``) after the others, so the folder never
    shows an index of files that are not there. On failure the temporary
    folder is removed and ``path`` is as it was.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "gallery"
    >>> with atomic_directory(d) as tmp:
    ...     _ = (tmp / "a.txt").write_text("a")
    >>> sorted(p.name for p in d.iterdir())
    ['a.txt']
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputWriteError(f"{path}: is a file, not a folder; give the output folder another name (nothing was written)")
    tmp = partial_path(path)
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    try:
        tmp.mkdir(parents=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputWriteError(f"{path}: {path.parent} is a file, not a folder; choose another output folder (nothing was written)") from None
    except OSError as exc:
        raise output_error(path, exc, codes=CANNOT_WRITE) or exc from None
    try:
        yield tmp
        if not path.exists():
            os.replace(tmp, path)
            return
        names = sorted(p.name for p in tmp.iterdir())
        for name in [n for n in names if n not in last] + [n for n in names if n in last]:
            target = path / name
            if target.is_dir() and not (tmp / name).is_dir():
                raise OutputWriteError(f"{target}: is a folder; remove it or choose another output folder")
            os.replace(tmp / name, target)
        tmp.rmdir()
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        failed = output_error(path, exc)
        if failed is not None and str(tmp) in str(failed):  # name the output folder, not its temporary name
            renamed = OutputWriteError(str(failed).replace(str(tmp), str(path)))
            renamed.errno = failed.errno
            failed = renamed
        if failed is not None and failed is not exc:
            raise failed from None
        raise


_pending_lock = threading.Lock()
_pending: list[int] = []  # signals put off (interrupt_again) and not delivered yet


def interrupt_again(signum: int = signal.SIGINT) -> None:
    """Deliver ``signum`` to the main thread's Python handler again in a moment (from a timer thread).

    Until a handler takes it (:func:`take_pending`), the signal is pending: a
    program that ends before it comes takes it at its end.
    """
    with _pending_lock:
        if signum not in _pending:
            _pending.append(signum)
    timer = threading.Timer(0.02, _deliver_pending)
    timer.daemon = True
    timer.start()


def _deliver_pending() -> None:
    _pending_lock.acquire()
    try:
        if _pending:  # not taken yet (a program that took it at its end gets nothing more)
            _thread.interrupt_main(_pending[-1])
    finally:
        _pending_lock.release()


def take_pending() -> int | None:
    """The signal put off by :func:`interrupt_again` and not delivered yet, or None; it is no longer pending.

    A signal handler that acts on a signal takes it; a program that ends
    takes the one still pending (and acts on it).
    """
    _pending_lock.acquire()
    try:
        signum = _pending[-1] if _pending else None
        _pending.clear()
        return signum
    finally:
        _pending_lock.release()


def in_uninterruptible_code(frame: FrameType | None) -> bool:
    """True when ``frame`` (where a signal handler was called) is code that an exception must not leave.

    The methods of :class:`_GuardedFile`, which HDF5 calls from C while it
    writes an :class:`OutputH5File`: an exception there (Ctrl-C raised as
    KeyboardInterrupt between two bytecodes) fails HDF5's I/O, after which
    HDF5 cannot close the file any more ("Can't decrement id ref count", a
    crash of the interpreter later); also finalizers (``__del__``, weakref
    callbacks), where Python drops the exception with a traceback on stderr.
    A handler that finds itself there delivers the signal again a moment
    later (:func:`interrupt_again`), when HDF5 is back in the caller's code.
    """
    for _ in range(3):
        if frame is None:
            return False
        code = frame.f_code
        if code in _CALLBACK_CODES or code.co_name == "__del__" or code.co_filename == weakref.__file__:
            return True
        frame = frame.f_back
    return False


class _GuardedFile(io.RawIOBase):
    """The file under an :class:`OutputH5File`: HDF5 never sees a write fail.

    The first failed write is kept in :attr:`error`; from then on nothing
    more goes to the disk, and what HDF5 writes is kept in memory (up to
    64 MiB) so that it reads back what it wrote while it closes the file.
    """

    def __init__(self, path: str | os.PathLike, mode: str):
        flags = {"w": os.O_CREAT | os.O_TRUNC, "w-": os.O_CREAT | os.O_EXCL, "x": os.O_CREAT | os.O_EXCL, "r+": 0, "a": os.O_CREAT}
        if mode not in flags:
            raise ValueError(f"OutputH5File writes (mode 'w', 'w-', 'x', 'r+' or 'a'), not mode {mode!r}")
        super().__init__()
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR | flags[mode], 0o666)
        self.error: OSError | None = None
        self._pos = 0
        self._end = os.fstat(self.fd).st_size  # the file's length as HDF5 sees it
        self._overlay: list[tuple[int, bytes]] = []
        self._overlay_bytes = 0

    def __repr__(self) -> str:  # h5py names the file by it (File.filename)
        return str(self.path)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._end}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        size = max(0, min(len(view), self._end - self._pos))
        got = os.preadv(self.fd, [view[:size]], self._pos) if size else 0
        if got < len(view):
            view[got:] = bytes(len(view) - got)  # past what reached the disk: zeros, as a sparse file reads
        for offset, data in self._overlay:  # writes that did not reach the disk, in the order made
            lo, hi = max(offset, self._pos), min(offset + len(data), self._pos + len(view))
            if lo < hi:
                view[lo - self._pos : hi - self._pos] = data[lo - offset : hi - offset]
        self._pos += size
        return size

    def write(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = len(view)
        if self.error is None:
            try:
                done = 0
                while done < n:
                    done += os.pwrite(self.fd, view[done:], self._pos + done)
            except OSError as exc:
                self.error = exc
        if self.error is not None and self._overlay_bytes + n <= _OVERLAY_BYTES:
            self._overlay.append((self._pos, bytes(view)))
            self._overlay_bytes += n
        self._pos += n
        self._end = max(self._end, self._pos)
        return n

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else int(size)
        if self.error is None:
            try:
                os.ftruncate(self.fd, size)
            except OSError as exc:
                self.error = exc
        self._end = size
        return size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            with contextlib.suppress(OSError):
                os.close(self.fd)
        super().close()


_open_outputs = 0
_handler_before: Any = None


def _interrupt_unless_in_callback(signum: int, frame: FrameType | None) -> None:
    """Python's Ctrl-C handler (KeyboardInterrupt), put off while HDF5 is in its I/O callbacks."""
    if in_uninterruptible_code(frame):
        interrupt_again(signum)
        return
    take_pending()
    raise KeyboardInterrupt


def _guard_interrupts(change: int) -> None:
    """Count the open :class:`OutputH5File`; while any is open, Python's default Ctrl-C handler
    (not one a program set) is :func:`_interrupt_unless_in_callback` (the command line has its own)."""
    global _open_outputs, _handler_before
    if threading.current_thread() is not threading.main_thread():
        return
    _open_outputs = max(0, _open_outputs + change)
    if _open_outputs == 1 and change > 0 and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _handler_before = signal.signal(signal.SIGINT, _interrupt_unless_in_callback)
    elif _open_outputs == 0 and _handler_before is not None and signal.getsignal(signal.SIGINT) is _interrupt_unless_in_callback:
        signal.signal(signal.SIGINT, _handler_before)  # (held by another handler for now: restored at the next close)
        _handler_before = None


def release_interrupt_guard() -> None:
    """Put Python's default Ctrl-C handler back when no :class:`OutputH5File` is open any more.

    For code that held signals with a handler of its own while the last
    output was closed, and has just put back the handler it found.
    """
    _guard_interrupts(0)


#: The code of the methods HDF5 calls back from C (see :func:`in_uninterruptible_code`).
_CALLBACK_CODES = frozenset(
    getattr(_GuardedFile, name).__code__ for name in ("seek", "tell", "readinto", "write", "truncate", "flush")
)


class OutputH5File(h5py.File):
    """An HDF5 file opened for writing whose failed writes end in one clear error, never in a crash.

    Use it where ``h5py.File(path, "w")`` would be used on an output (the
    partial path of :func:`atomic_output`). When the disk fills up (or any
    write fails), HDF5 carries on unaware and closes cleanly; :meth:`close`
    then removes the file and raises :class:`OutputWriteError`.
    :meth:`check` raises it as soon as a write has failed, for writers that
    want to stop early.

    Parameters
    ----------
    path
        The file to write.
    mode
        'w' (default: create, truncate), 'w-'/'x' (create, fail if it
        exists), 'r+' or 'a' (read and write an existing file).
    **kwargs
        Keywords of :class:`h5py.File` (chunk cache, libver, ...).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.h5"
    >>> with OutputH5File(p) as f:
    ...     f["x"] = np.arange(3)
    >>> h5py.File(p, "r")["x"][()].tolist()
    [0, 1, 2]
    """

    def __init__(self, path: str | os.PathLike, mode: str = "w", **kwargs: Any):
        guard = _GuardedFile(path, mode)
        _guard_interrupts(+1)
        try:
            super().__init__(guard, mode, **kwargs)
        except BaseException:
            guard.close()
            _guard_interrupts(-1)
            raise
        self._guard = guard

    @property
    def write_error(self) -> OSError | None:
        """The first write that failed, or None."""
        return self._guard.error

    def check(self) -> None:
        """Raise :class:`OutputWriteError` (the file is left open; close it) when a write has failed."""
        if self._guard.error is not None:
            raise output_error(self._guard.path, self._guard.error, codes=CANNOT_WRITE) or OutputWriteError(
                f"{self._guard.path}: cannot be written ({self._guard.error}); nothing was left under its name"
            )

    def close(self) -> None:
        """Close the file; when a write failed, remove it and raise :class:`OutputWriteError`."""
        guard = getattr(self, "_guard", None)
        try:
            super().close()
        finally:
            if guard is not None and not guard.closed:
                guard.close()
                _guard_interrupts(-1)
        if guard is not None and guard.error is not None:
            with contextlib.suppress(FileNotFoundError):
                guard.path.unlink()
            self.check()
