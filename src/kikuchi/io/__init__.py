"""Vendor formats and the kikuchi map store.

- pattern files of every format: :func:`open_map` (``kikuchi.open``) gives an
  :class:`EBSDMap`; :func:`pattern_formats` lists the formats (one module
  each: :mod:`kikuchi.io.mapstore`, ``bruker``, ``h5oina``, ``edax_h5``,
  ``emsoft``, ``ebsp``, ``edax_up``, ``nordif``);
- the map file: :class:`MapWriter`;
- orientation maps: :func:`read_orientation_map`, :func:`write_orientation_map`
  (Oxford CTF, EDAX/TSL ANG), :class:`OrientationMap`, :class:`PhaseInfo`;
- pattern images: :func:`open_image_source`, :func:`read_image` and
  :func:`convert_images` (folders and zips to the map file).
"""

from __future__ import annotations

from kikuchi.io.ang import AngFormatError
from kikuchi.io.convert import convert_images
from kikuchi.io.ctf import CtfFormatError
from kikuchi.io.imagefolder import ImageReadError, ImageSourceError, open_image_source, read_image
from kikuchi.io.mapstore import MapWriter
from kikuchi.io.source import EBSDMap, MapFileError, MapFileWarning, MapPositionError, open_map
from kikuchi.io.source import formats as pattern_formats
from kikuchi.io.orientation_map import OrientationMap, OrientationMapWarning, PhaseInfo, read_orientation_map, write_orientation_map

__all__ = [
    "AngFormatError",
    "CtfFormatError",
    "EBSDMap",
    "ImageReadError",
    "ImageSourceError",
    "MapFileError",
    "MapFileWarning",
    "MapPositionError",
    "MapWriter",
    "OrientationMap",
    "OrientationMapWarning",
    "PhaseInfo",
    "convert_images",
    "open_image_source",
    "open_map",
    "pattern_formats",
    "read_image",
    "read_orientation_map",
    "write_orientation_map",
]
