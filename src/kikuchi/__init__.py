"""kikuchi: Kikuchi diffraction methods in the SEM.

EBSD pattern maps from the detector to crystal orientation maps: read vendor
files, convert pattern folders to one HDF5 map file, process, image, index
and explore them.

The top-level names are imported lazily, so ``import kikuchi`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> "module:attribute"
_EXPORTS = {
    "open": "kikuchi.io.mapstore:open_map",
    "EBSDMap": "kikuchi.io.mapstore:EBSDMap",
    "MapWriter": "kikuchi.io.mapstore:MapWriter",
    "read_orientation_map": "kikuchi.io.orientation_map:read_orientation_map",
    "OrientationMap": "kikuchi.io.orientation_map:OrientationMap",
    "simulate": "kikuchi.simulate:simulate",
    "explore": "kikuchi.explore:explore",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    try:
        target = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'kikuchi' has no attribute {name!r}") from None
    module, attr = target.split(":")
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
