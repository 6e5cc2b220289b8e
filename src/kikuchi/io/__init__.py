"""Vendor formats and the kikuchi map store."""

from __future__ import annotations

from kikuchi.io.mapstore import EBSDMap, MapFileError, MapPositionError, MapWriter, open_map

__all__ = ["EBSDMap", "MapFileError", "MapPositionError", "MapWriter", "open_map"]
