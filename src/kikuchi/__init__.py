"""kikuchi: Kikuchi diffraction methods in the SEM.

EBSD pattern maps from the detector to crystal orientation maps: read vendor
files, convert pattern folders to one HDF5 map file, process, image, index
and explore them.

The top-level names are imported lazily, so ``import kikuchi`` stays fast.
"""

from __future__ import annotations

from kikuchi._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> "module:attribute"
_EXPORTS = {
    "open": "kikuchi.io.source:open_map",
    "EBSDMap": "kikuchi.io.source:EBSDMap",
    "MapWriter": "kikuchi.io.mapstore:MapWriter",
    "read_orientation_map": "kikuchi.io.orientation_map:read_orientation_map",
    "OrientationMap": "kikuchi.io.orientation_map:OrientationMap",
    "simulate": "kikuchi.simulate",  # callable packages: kikuchi.simulate(...), kikuchi.explore(...)
    "explore": "kikuchi.explore",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
