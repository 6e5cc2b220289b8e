"""Checks of the public API's arguments: a wrong type or value is refused in one line that names the argument.

Wrong types raise :class:`ArgumentTypeError` (a ``TypeError``), wrong values
:class:`ArgumentValueError` (a ``ValueError``); both say what was given and
what is expected, e.g. ``nav_shape=(2.5, 3): expected (rows, cols), two whole
numbers of at least 1``. Numbers are taken as Python and numpy numbers, never
as strings or booleans.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path
from typing import Any

__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "check_bool",
    "check_count",
    "check_number",
    "check_pair",
    "check_path",
    "shown",
]


class ArgumentTypeError(TypeError):
    """An argument of the wrong type (the message names it and what is expected)."""


class ArgumentValueError(ValueError):
    """An argument of the right type but a value that cannot be used (the message names it and the range)."""


def shown(value: Any, limit: int = 40) -> str:
    """``value`` as quoted in messages: its repr, one line, at most about ``limit`` characters.

    >>> shown("x" * 100)[-5:], shown([1, 2])
    ('xx...', '[1, 2]')
    """
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_count(value: Any, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """A whole number of at least ``minimum`` (and at most ``maximum``): ints, numpy ints and whole floats.

    >>> check_count(3.0, "grains")
    3
    >>> check_count(2.5, "grains")
    Traceback (most recent call last):
    ...
    kikuchi._args.ArgumentValueError: grains=2.5: expected a whole number of at least 1
    """
    if not _is_number(value):
        raise ArgumentTypeError(f"{name}={shown(value)}: expected a whole number, got {type(value).__name__}")
    upper = "" if maximum is None else f" and at most {maximum}"
    if not math.isfinite(float(value)) or float(value) != int(value) or int(value) < minimum or (maximum is not None and int(value) > maximum):
        raise ArgumentValueError(f"{name}={shown(value)}: expected a whole number of at least {minimum}{upper}")
    return int(value)


def check_number(
    value: Any, name: str, *, positive: bool = False, minimum: float | None = None, maximum: float | None = None, unit: str = ""
) -> float:
    """A finite real number (``positive``: > 0; within ``minimum``..``maximum``).

    >>> check_number(0.5, "step_um", positive=True, unit="µm")
    0.5
    """
    if not _is_number(value):
        raise ArgumentTypeError(f"{name}={shown(value)}: expected a number{' in ' + unit if unit else ''}, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ArgumentValueError(f"{name}={shown(value)}: expected a finite number")
    if positive and number <= 0:
        raise ArgumentValueError(f"{name}={shown(value)}: expected a number greater than 0{' ' + unit if unit else ''}")
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        low = "-inf" if minimum is None else f"{minimum:g}"
        high = "inf" if maximum is None else f"{maximum:g}"
        raise ArgumentValueError(f"{name}={shown(value)}: expected a number in {low}..{high}{' ' + unit if unit else ''}")
    return number


def check_pair(value: Any, name: str, *, what: str = "(rows, cols)", minimum: int = 1) -> tuple[int, int]:
    """Two whole numbers of at least ``minimum``, e.g. a map or pattern shape.

    >>> check_pair((3, 4.0), "nav_shape")
    (3, 4)
    """
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ArgumentTypeError(f"{name}={shown(value)}: expected {what}, two whole numbers")
    a, b = value
    if not (_is_number(a) and _is_number(b)):
        raise ArgumentTypeError(f"{name}={shown(value)}: expected {what}, two whole numbers")
    if not all(math.isfinite(float(v)) and float(v) == int(v) and int(v) >= minimum for v in (a, b)):
        raise ArgumentValueError(f"{name}={shown(value)}: expected {what}, two whole numbers of at least {minimum}")
    return int(a), int(b)


def check_bool(value: Any, name: str) -> bool:
    """True or False (numpy booleans too), nothing else."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise ArgumentTypeError(f"{name}={shown(value)}: expected True or False")


def check_path(value: Any, name: str = "path") -> Path:
    """A file name (str or os.PathLike) as a Path."""
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise ArgumentTypeError(f"{name}={shown(value)}: expected a file name (str or pathlib.Path), got {type(value).__name__}")
