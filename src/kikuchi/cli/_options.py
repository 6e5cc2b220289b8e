"""Argument types and option groups that several ``kikuchi`` commands share.

Each command keeps its own option names, help texts and error messages; what
is parsed the same way (a positive count, ``ROWSxCOLS``, comma-separated
numbers such as ``ROW,COL`` or ``X,Y,Z``, how a map is streamed) is parsed
here once.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from kikuchi._cpus import available_cpus

_T = TypeVar("_T")

#: What a command that reads patterns takes (``kikuchi.open`` recognises the format by content).
PATTERN_FILE = (
    "pattern file: a kikuchi map file (.h5) or a vendor's file as written: Oxford .h5oina or .ebsp, "
    "Bruker or EDAX .h5, EDAX .up1/.up2, NORDIF Pattern.dat, EMsoft .h5, kikuchipy h5ebsd"
)


def positive_int(text: str) -> int:
    """argparse type of a count of at least 1.

    >>> positive_int("3")
    3
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def check_positive_px(value: float | None, option: str) -> None:
    """Refuse a length in pixels (such as ``--sigma``) that is not positive; None passes.

    >>> check_positive_px(0.0, "--sigma")
    Traceback (most recent call last):
    ...
    ValueError: --sigma must be a positive number of pixels, got 0
    """
    if value is not None and not value > 0:
        raise ValueError(f"{option} must be a positive number of pixels, got {value:g}")


def argument_type(parse: Callable[[str], _T]) -> Callable[[str], _T]:
    """argparse type from a parser that raises ValueError: its message becomes argparse's error.

    >>> from kikuchi.io.imagefolder import parse_shape
    >>> argument_type(parse_shape)("3x4")
    (3, 4)
    """

    def parse_argument(text: str) -> _T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse_argument


def rows_cols(text: str) -> tuple[int, int]:
    """argparse type of a shape ``ROWSxCOLS`` (``x`` in either case), both positive.

    >>> rows_cols("40x50")
    (40, 50)
    """
    try:
        a, b = text.lower().split("x")
        shape = (int(a), int(b))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS such as 40x50, got {text!r}") from None
    if min(shape) < 1:
        raise argparse.ArgumentTypeError(f"shape must be positive, got {text!r}")
    return shape


def numbers(text: str, count: int, kind: Callable[[str], _T]) -> tuple[_T, ...] | None:
    """``count`` comma-separated values of ``kind`` (``'3,4'`` -> ``(3, 4)``), or None when ``text`` is not that.

    >>> numbers("0.5,0.3,0.6", 3, float)
    (0.5, 0.3, 0.6)
    >>> numbers("3", 2, int) is None
    True
    """
    try:
        values = tuple(kind(v) for v in text.split(","))
    except ValueError:
        return None
    return values if len(values) == count else None


def row_col(text: str) -> tuple[int, int]:
    """argparse type of a map position ``ROW,COL``.

    >>> row_col("2,5")
    (2, 5)
    """
    position = numbers(text, 2, int)
    if position is None:
        raise argparse.ArgumentTypeError(f"expected ROW,COL (two integers), got {text!r}")
    return position  # type: ignore[return-value]


def add_geometry_arguments(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The detector geometry options of the commands that project or index (``--pc``, ``--pc-convention``, tilts, ``--px-size``).

    Defaults come from the map file; :func:`kikuchi.cli._index.build_detector`
    reads them back. Returns the group, for options a command adds to it.
    """
    g = parser.add_argument_group("geometry (default: from the map file)")
    g.add_argument("--pc", metavar="X,Y,Z", help="pattern centre for the whole map")
    g.add_argument("--pc-convention", default="bruker", choices=("bruker", "edax", "tsl", "oxford", "emsoft"), help="convention of --pc (default bruker)")
    g.add_argument("--sample-tilt", type=float, metavar="DEG", help="sample tilt in degrees (default: the file's, else 70)")
    g.add_argument("--camera-tilt", type=float, metavar="DEG", help="detector tilt in degrees (default: the file's, else 0)")
    g.add_argument("--px-size", type=float, metavar="UM", help="unbinned detector pixel size in µm (EMsoft PCs; refine --pc-model extrapolate; default the file's)")
    return g


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """How the map is streamed: on threads of all cores (default), on N threads, or on a dask cluster (``--threads/--workers/--scheduler``)."""
    group = parser.add_argument_group("execution")
    g = group.add_mutually_exclusive_group()
    g.add_argument(
        "--threads", type=positive_int, metavar="N",
        help=f"run on N threads of this process (default: all {available_cpus()} cores available; 1: serially)",
    )  # fmt: skip
    g.add_argument("--workers", type=positive_int, metavar="N", help="run on a local dask cluster of N worker processes")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on a running dask.distributed cluster")
    group.add_argument(
        "--skip-bad-chunks", action="store_true",
        help="carry on past chunks of the input that cannot be decoded (a damaged file): their points are read as "
        "points without a pattern, said in a warning and counted in the result line (default: stop with an error naming them)",
    )  # fmt: skip


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same file (the same path, a link to it, or a hard link).

    >>> same_file("x/../a.h5", "a.h5")
    True
    """
    a, b = Path(a), Path(b)
    try:
        if a.resolve() == b.resolve():
            return True
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(output: str | os.PathLike, *inputs: tuple[str, str | os.PathLike | None], option: str = "-o") -> None:
    """Refuse an output (given as ``option``) that is one of the inputs: ``(what it is, path)`` pairs, None paths skipped.

    The same file under another name (``./``, ``..``, a symbolic or hard link) is the same file.

    >>> check_output("a.h5", ("the input map file", "./a.h5"))
    Traceback (most recent call last):
    ...
    ValueError: -o a.h5 is the input map file; choose another output path (nothing was written)
    """
    for what, path in inputs:
        if path is not None and same_file(output, path):
            raise ValueError(f"{option} {output} is {what}; choose another output path (nothing was written)")


def check_output_folder(folder: str | os.PathLike, *inputs: tuple[str, str | os.PathLike | None]) -> None:
    """Refuse an output folder that is an input or an existing file (``kikuchi vbse/quality -o DIR``)."""
    check_output(folder, *inputs)
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"-o {folder} is a file, not a folder; give the output folder another name (nothing was written)")


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(nbytes: float, what: str, advice: str) -> None:
    """Refuse work whose results alone would need more than the memory available (``what`` needs ``nbytes``).

    >>> check_memory(1, "one byte", "")
    """
    available = available_memory()
    if available is not None and nbytes > available:
        raise ValueError(f"{what} would need about {nbytes / 2**30:.1f} GiB of memory, {available / 2**30:.1f} GiB are available; {advice}")


def finite_positive(text: str) -> float:
    """argparse type of a length or energy: a finite number > 0.

    >>> finite_positive("0.5")
    0.5
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def execution_options(args: argparse.Namespace) -> dict[str, Any]:
    """``executor``, ``workers`` and ``scheduler`` keywords of the engine from the options of :func:`add_execution_arguments`.

    With none of them: threads on all cores; ``--threads 1``: serially.

    >>> execution_options(argparse.Namespace(threads=4, workers=None, scheduler=None))
    {'executor': 'threads', 'workers': 4, 'scheduler': None}
    >>> execution_options(argparse.Namespace(threads=1, workers=None, scheduler=None))
    {'executor': 'serial', 'workers': None, 'scheduler': None}
    """
    if args.scheduler:
        return {"executor": "distributed", "workers": None, "scheduler": args.scheduler}
    if args.workers:
        return {"executor": "distributed", "workers": args.workers, "scheduler": None}
    threads = args.threads or available_cpus()
    if threads == 1:
        return {"executor": "serial", "workers": None, "scheduler": None}
    return {"executor": "threads", "workers": threads, "scheduler": None}


def execution_text(execution: dict[str, Any]) -> str:
    """How a command ran, for its result line: 'serially', 'on 8 threads', 'on 2 dask workers', 'on the dask cluster at ...'.

    >>> execution_text({"executor": "threads", "workers": 8, "scheduler": None})
    'on 8 threads'
    """
    if execution["executor"] == "serial":
        return "serially (1 thread)"
    if execution["executor"] == "threads":
        return f"on {execution['workers']} threads"
    if execution.get("scheduler"):
        return f"on the dask cluster at {execution['scheduler']}"
    return f"on {execution['workers']} dask worker processes"
