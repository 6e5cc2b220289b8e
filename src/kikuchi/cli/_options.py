"""Argument types and option groups that several ``kikuchi`` commands share.

Each command keeps its own option names, help texts and error messages; what
is parsed the same way (a positive count, ``ROWSxCOLS``, comma-separated
numbers such as ``ROW,COL`` or ``X,Y,Z``, how a map is streamed) is parsed
here once.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, TypeVar

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


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """How the map is streamed: serially (default), on threads or on a dask cluster (``--threads/--workers/--scheduler``)."""
    g = parser.add_argument_group("execution").add_mutually_exclusive_group()
    g.add_argument("--threads", type=positive_int, metavar="N", help="run on N threads of this process")
    g.add_argument("--workers", type=positive_int, metavar="N", help="run on a local dask cluster of N worker processes")
    g.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run on a running dask.distributed cluster")


def execution_options(args: argparse.Namespace) -> dict[str, Any]:
    """``executor``, ``workers`` and ``scheduler`` keywords of the engine from the options of :func:`add_execution_arguments`.

    >>> execution_options(argparse.Namespace(threads=4, workers=None, scheduler=None))
    {'executor': 'threads', 'workers': 4, 'scheduler': None}
    """
    if args.scheduler:
        return {"executor": "distributed", "workers": None, "scheduler": args.scheduler}
    if args.workers:
        return {"executor": "distributed", "workers": args.workers, "scheduler": None}
    if args.threads:
        return {"executor": "threads", "workers": args.threads, "scheduler": None}
    return {"executor": "serial", "workers": None, "scheduler": None}
