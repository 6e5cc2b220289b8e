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
from typing import Any

import h5py
import numpy as np

from kikuchi.io._atomic import OutputH5File, atomic_output
from kikuchi.io.orientation_map import (
    GRID_KINDS,
    OrientationMap,
    OrientationMapError,
    PhaseInfo,
    _report,
    _screen_points,
    laue_group_of,
)

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
    """Write ``omap`` to an HDF5 file (atomic: temporary name, then rename).

    Every dataset carries a Fletcher-32 checksum: a file damaged later is
    refused when read (naming the dataset), never read as other numbers.
    """
    path = Path(path)
    with atomic_output(path) as tmp, OutputH5File(tmp, "w") as f:
        g = f.create_group(GROUP)

        def put(group: h5py.Group, name: str, values: np.ndarray) -> None:
            values = np.asarray(values)
            group.create_dataset(name, data=values, fletcher32=True, chunks=values.shape if values.size else None)

        put(g, "euler", omap.euler)
        put(g, "phase_id", omap.phase_id.astype(np.int32))
        put(g, "x_um", omap.x_um)
        put(g, "y_um", omap.y_um)
        cols = g.create_group("columns")
        for name, values in omap.columns.items():
            put(cols, name, values)
        g.attrs["grid"] = omap.grid
        g.attrs["nav_shape"] = json.dumps(omap.nav_shape)
        g.attrs["hex_ncols"] = json.dumps(omap.hex_ncols)
        g.attrs["step_um"] = np.asarray(omap.step_um, dtype=np.float64)
        g.attrs["source_format"] = omap.source_format
        g.attrs["phases"] = json.dumps([dataclasses.asdict(p) for p in omap.phases], default=str)
        g.attrs["header"] = json.dumps(omap.header, default=str)
        g.attrs["notes"] = json.dumps(omap.notes)
        g.attrs["columns"] = json.dumps(list(omap.columns))
    return path


def _phase_info(entry: Any, *, where: str) -> PhaseInfo:
    if not isinstance(entry, dict) or "id" not in entry or "name" not in entry:
        raise OrientationMapError(f"{where}: a phase entry is {str(entry)[:60]!r}, not a PhaseInfo dict with 'id' and 'name'")
    known = {f.name for f in dataclasses.fields(PhaseInfo)}
    try:
        phase = PhaseInfo(**{k: v for k, v in entry.items() if k in known})
    except (TypeError, ValueError) as exc:
        raise OrientationMapError(f"{where}: phase {entry.get('id')!r} cannot be read: {exc}") from None
    if phase.point_group is not None and laue_group_of(phase.point_group) is None:
        raise OrientationMapError(f"{where}: phase {phase.id} has point group {phase.point_group!r}, not a crystallographic point group")
    return phase


def _json_attr(g: h5py.Group, name: str, default: str, *, where: str) -> Any:
    text = g.attrs.get(name, default)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise OrientationMapError(f"{where}: attribute {name!r} is {str(text)[:40]!r}, not JSON") from None


def _dataset(g: h5py.Group, name: str, *, where: str) -> np.ndarray:
    if name not in g:
        raise OrientationMapError(f"{where}: dataset '{name}' missing (the map is incomplete)")
    item = g[name]
    if not isinstance(item, h5py.Dataset):
        raise OrientationMapError(f"{where}: '{name}' is not a dataset")
    try:
        values = item[()]
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise OrientationMapError(f"{where}: dataset '{name}' cannot be read ({str(exc).splitlines()[0][:120]}): a damaged file") from None
    values = np.asarray(values)
    if not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        raise OrientationMapError(f"{where}: dataset '{name}' holds {values.dtype}, not numbers")
    return values


def _read_group(g: h5py.Group, path: Path, *, strict: bool) -> OrientationMap:
    where = f"{path.name} /{GROUP}"
    euler = _dataset(g, "euler", where=where)
    if euler.ndim != 2 or euler.shape[1] != 3:
        raise OrientationMapError(f"{where}: dataset 'euler' has shape {euler.shape}, not (N, 3)")
    n = euler.shape[0]
    arrays = {}
    for name in ("phase_id", "x_um", "y_um"):
        arrays[name] = _dataset(g, name, where=where)
        if arrays[name].shape != (n,):
            raise OrientationMapError(f"{where}: dataset '{name}' has shape {arrays[name].shape}, not ({n},) like 'euler'")
    columns: dict[str, np.ndarray] = {}
    if "columns" in g:
        if not isinstance(g["columns"], h5py.Group):
            raise OrientationMapError(f"{where}: 'columns' is not a group")
        for name in g["columns"]:
            values = _dataset(g["columns"], name, where=f"{where}/columns")
            if values.shape != (n,):
                raise OrientationMapError(f"{where}/columns: dataset '{name}' has shape {values.shape}, not ({n},) like 'euler'")
            columns[name] = values
    grid = g.attrs.get("grid")
    grid = grid.decode() if isinstance(grid, bytes) else str(grid)
    if grid not in GRID_KINDS:
        raise OrientationMapError(f"{where}: attribute 'grid' is {grid!r}, not one of {GRID_KINDS}")
    nav = _json_attr(g, "nav_shape", "null", where=where)
    hex_ncols = _json_attr(g, "hex_ncols", "null", where=where)
    for name, value in (("nav_shape", nav), ("hex_ncols", hex_ncols)):
        if value is not None and not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
            raise OrientationMapError(f"{where}: attribute {name!r} is {value!r}, not [rows, cols]")
    if (grid != "interactive") == (nav is None):
        raise OrientationMapError(f"{where}: attribute 'grid' is {grid!r} and 'nav_shape' is {nav!r}: they do not agree (a grid has a shape, a point list none)")
    step = np.asarray(g.attrs.get("step_um", [np.nan, np.nan]), dtype=np.float64).reshape(-1)
    if step.size != 2 or not np.isfinite(step).all() or (grid != "interactive" and not (step > 0).all()):
        raise OrientationMapError(f"{where}: attribute 'step_um' is {step.tolist()}, not two positive steps (row, col) in µm")
    phases = [_phase_info(p, where=where) for p in _json_attr(g, "phases", "[]", where=where) or []]
    ids = [p.id for p in phases]
    if len(set(ids)) != len(ids):
        raise OrientationMapError(f"{where}: phase ids {ids} repeat")
    header = _json_attr(g, "header", "{}", where=where)
    stored = _json_attr(g, "notes", "[]", where=where)
    if not isinstance(header, dict) or not isinstance(stored, list):
        raise OrientationMapError(f"{where}: attributes 'header' / 'notes' are not a JSON object / list")
    new: list[str] = []
    listed = _json_attr(g, "columns", "null", where=where)
    if isinstance(listed, list):
        lost = [str(c) for c in listed if c not in columns]
        if lost:
            new.append(f"column(s) {', '.join(lost)} listed in attribute 'columns' have no dataset: the map is read without them")
    euler = euler.astype(np.float64)
    float_columns = {k: v.astype(np.float64) for k, v in columns.items()}
    phase_id, odd = _screen_points(euler=euler, phase=arrays["phase_id"], columns=float_columns, phase_ids=ids, where=None)
    new += odd
    for k, v in float_columns.items():
        if not np.array_equal(v, columns[k].astype(np.float64), equal_nan=True):
            columns[k] = v  # values no instrument writes became NaN
    x, y = arrays["x_um"].astype(np.float64), arrays["y_um"].astype(np.float64)
    if grid == "square" and nav is not None and nav[0] * nav[1] == n:
        r, c = np.divmod(np.arange(n), nav[1])
        finite = np.isfinite(x) & np.isfinite(y)
        k0 = int(np.argmax(finite))
        x0, y0 = (x[k0] - c[k0] * step[1], y[k0] - r[k0] * step[0]) if finite.any() else (0.0, 0.0)
        gx, gy = x0 + c * step[1], y0 + r * step[0]
        with np.errstate(invalid="ignore", over="ignore"):
            off = ~(np.isclose(x, gx, rtol=0, atol=1e-3 * step[1] + 1e-6) & np.isclose(y, gy, rtol=0, atol=1e-3 * step[0] + 1e-6))
        if off.any():
            k = int(np.argmax(off))
            new.append(
                f"point {k}: X {x[k]:g}, Y {y[k]:g} is not the position of row {r[k]}, column {c[k]} of the {nav[0]} x {nav[1]} grid "
                f"of step {step[1]:g} µm ({int(off.sum())} point(s)): the map is laid out by nav_shape; coordinates that are "
                f"not finite numbers are replaced by the grid's, the others kept as stored"
            )
            x, y = np.where(finite, x, gx), np.where(finite, y, gy)
    elif not (np.isfinite(x).all() and np.isfinite(y).all()):
        k = int(np.argmax(~(np.isfinite(x) & np.isfinite(y))))
        raise OrientationMapError(f"{where}: point {k} has coordinates X {x[k]:g}, Y {y[k]:g}, not finite numbers")
    try:
        omap = OrientationMap(
            euler=euler, phase_id=phase_id, x_um=x, y_um=y, grid=grid, nav_shape=None if nav is None else tuple(nav),
            step_um=tuple(step), columns=columns, phases=phases, header=header, source_format="h5",
            hex_ncols=None if hex_ncols is None else tuple(hex_ncols), path=path, notes=[*map(str, stored), *new],
        )  # fmt: skip
    except OrientationMapError as exc:
        raise OrientationMapError(f"{where}: {exc}") from None
    return _report(omap, new=new, fname=path.name, strict=strict, error=OrientationMapError)


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


def read_orientation_h5(path: str | os.PathLike, *, strict: bool = False) -> OrientationMap:
    """Read an orientation map from kikuchi's HDF5 results file or a map file with orientations.

    The notes stored with the map (what its source file had odd) are kept in
    ``omap.notes``; what is odd in the HDF5 file itself (values no
    instrument writes, coordinates off the grid) is an
    :class:`~kikuchi.io.orientation_map.OrientationMapWarning` (with
    ``strict=True``, an error). A damaged or incomplete file is refused with
    an OrientationMapError naming the file and the dataset or attribute.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise OrientationMapError(f"{path}: not a readable HDF5 file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from exc
    with f:
        try:
            has_group = GROUP in f
        except (OSError, RuntimeError, KeyError, ValueError) as exc:
            raise OrientationMapError(f"{path}: the HDF5 file is damaged ({str(exc).splitlines()[0][:120]})") from None
        if has_group:
            if not isinstance(f[GROUP], h5py.Group):
                raise OrientationMapError(f"{path}: '/{GROUP}' is not a group")
            try:
                return _read_group(f[GROUP], path, strict=strict)
            except (OSError, RuntimeError, KeyError, TypeError) as exc:
                raise OrientationMapError(f"{path}: '/{GROUP}' cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}): a damaged file") from None
    return _from_map_file(path)


read = read_orientation_h5
write = write_orientation_h5
