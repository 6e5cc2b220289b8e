"""Atomic output: write under a temporary name, rename when complete.

Every writer of kikuchi goes through :func:`atomic_output`, so an interrupted
command (error, Ctrl-C) never leaves a file under the final name that looks
complete.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_output", "partial_path"]


def partial_path(path: str | os.PathLike) -> Path:
    """The temporary name under which ``path`` is written until complete."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, *, keep_partial: bool = False) -> Iterator[Path]:
    """Yield a temporary path; rename it to ``path`` when the block succeeds.

    Parameters
    ----------
    path
        Final output path.
    keep_partial
        Keep the temporary file when the block fails (used by resumable
        writers); by default it is removed.

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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    if not keep_partial and tmp.exists():
        tmp.unlink()
    try:
        yield tmp
    except BaseException:
        if not keep_partial:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    os.replace(tmp, path)
