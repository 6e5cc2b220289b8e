"""Orientation maps in HDF5: kikuchi's own results file, and map files with orientations.

Written by ``kikuchi index -o OUT.h5`` and ``omap.write("x.h5")``; read by
:func:`kikuchi.read_orientation_map`. Layout (group ``/OrientationMap``)::

    euler          (N, 3) float64  Bunge Euler angles, radians
    phase_id       (N,)   int32    0 = not indexed
    x_um, y_um     (N,)   float64  point coordinates
    columns/<name> (N,)            per-point columns (bands, error, mad, bc, bs, iq, ci, fit, ...)
    attrs: grid, nav_shape, step_um, hex_ncols, source_format,
           phases (JSON list of PhaseInfo fields), header (JSON), notes (JSON)

Reading also accepts a kikuchi/xcdskd map file or a kikuchipy h5ebsd file
that holds orientations (``phi1``, ``PHI``, ``phi2``, e.g. the truth of a
synthetic map): its Euler angles and phases become the orientation map.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import h5py
import numpy as np

from kikuchi.io._atomic import atomic_output
from kikuchi.io.orientation_map import OrientationMap, OrientationMapError, PhaseInfo

__all__ = ["holds_orientation_map", "read_orientation_h5", "write_orientation_h5", "sniff"]

# plugin metadata
FORMAT_NAME = "h5"
EXTENSIONS = ("h5", "hdf5", "h5ebsd")
READS = True
WRITES = True

GROUP = "OrientationMap"


def sniff(head: str) -> bool:
    """HDF5 signature."""
    return head.startswith("\x89HDF\r\n\x1a\n")


def holds_orientation_map(path: str | os.PathLike) -> bool:
    """True when ``path`` is an HDF5 file with the ``/OrientationMap`` group (not a pattern map file)."""
    try:
        with h5py.File(path, "r") as f:
            return GROUP in f
    except OSError:
        return False


def write_orientation_h5(omap: OrientationMap, path: str | os.PathLike) -> Path:
    """Write ``omap`` to an HDF5 file (atomic: temporary name, then rename)."""
    path = Path(path)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        g = f.create_group(GROUP)
        g["euler"] = omap.euler
        g["phase_id"] = omap.phase_id.astype(np.int32)
        g["x_um"] = omap.x_um
        g["y_um"] = omap.y_um
        cols = g.create_group("columns")
        for name, values in omap.columns.items():
            cols[name] = values
        g.attrs["grid"] = omap.grid
        g.attrs["nav_shape"] = json.dumps(omap.nav_shape)
        g.attrs["hex_ncols"] = json.dumps(omap.hex_ncols)
        g.attrs["step_um"] = np.asarray(omap.step_um, dtype=np.float64)
        g.attrs["source_format"] = omap.source_format
        g.attrs["phases"] = json.dumps([dataclasses.asdict(p) for p in omap.phases], default=str)
        g.attrs["header"] = json.dumps(omap.header, default=str)
        g.attrs["notes"] = json.dumps(omap.notes)
    return path


def _phase_info(entry: dict) -> PhaseInfo:
    known = {f.name for f in dataclasses.fields(PhaseInfo)}
    return PhaseInfo(**{k: v for k, v in entry.items() if k in known})


def _read_group(g: h5py.Group, path: Path) -> OrientationMap:
    try:
        nav = json.loads(g.attrs["nav_shape"])
        hex_ncols = json.loads(g.attrs.get("hex_ncols", "null"))
        return OrientationMap(
            euler=g["euler"][()],
            phase_id=g["phase_id"][()],
            x_um=g["x_um"][()],
            y_um=g["y_um"][()],
            grid=str(g.attrs["grid"]),
            nav_shape=None if nav is None else tuple(nav),
            step_um=tuple(np.asarray(g.attrs["step_um"], dtype=float)),
            columns={k: v[()] for k, v in g["columns"].items()} if "columns" in g else None,
            phases=[_phase_info(p) for p in json.loads(g.attrs.get("phases", "[]"))],
            header=json.loads(g.attrs.get("header", "{}")),
            source_format="h5",
            hex_ncols=None if hex_ncols is None else tuple(hex_ncols),
            path=path,
            notes=json.loads(g.attrs.get("notes", "[]")),
        )
    except KeyError as exc:
        raise OrientationMapError(f"{path}: '/{GROUP}' is incomplete ({exc})") from exc


def _from_map_file(path: Path) -> OrientationMap:
    from kikuchi.io.mapstore import MapFileError, open_map

    try:
        m = open_map(path)
    except MapFileError as exc:
        raise OrientationMapError(f"{path}: neither an orientation map ('/{GROUP}') nor a map file ({exc})") from exc
    with m:
        euler = m.euler
        if euler is None:
            raise OrientationMapError(f"{path}: the map file holds no orientations (phi1, PHI, phi2)")
        known = np.isfinite(euler).all(axis=-1)
        phases = [PhaseInfo.from_map_phase(p) for p in m.phases]
        recorded = m.phase_id  # per point, when the file says (kikuchipy crystal maps, synthetic maps)
        phase_id = np.where(known, (phases[0].id if phases else 0) if recorded is None else recorded, 0)
        return OrientationMap.from_arrays(
            euler=np.nan_to_num(euler),
            phase_id=phase_id,
            nav_shape=m.nav_shape,
            step_um=m.step_um,
            phases=phases,
        )


def read_orientation_h5(path: str | os.PathLike) -> OrientationMap:
    """Read an orientation map from kikuchi's HDF5 results file or a map file with orientations."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise OrientationMapError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        if GROUP in f:
            return _read_group(f[GROUP], path)
    return _from_map_file(path)


read = read_orientation_h5
write = write_orientation_h5
