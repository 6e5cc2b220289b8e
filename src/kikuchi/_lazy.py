"""Lazy public names of a package (PEP 562), so that importing it stays fast."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str], public: Iterable[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` that import ``"module:attribute"`` targets on first use.

    A target without ``:attribute`` is the module itself (``kikuchi.simulate``
    and ``kikuchi.explore`` are callable packages: the name means the same
    whichever is imported first).

    Examples
    --------
    >>> getattr_, dir_ = lazy_exports("kikuchi", {"open": "kikuchi.io.mapstore:open_map"}, ["open"])
    >>> getattr_("open").__name__, dir_()
    ('open_map', ['open'])
    """
    names = sorted(public)

    def __getattr__(name: str) -> Any:
        try:
            target = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module, _, attr = target.partition(":")
        value = importlib.import_module(module)
        if attr:
            value = getattr(value, attr)
        vars(sys.modules[package])[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
