"""EDAX OIM h5ebsd (``.h5``, ``.oh5``): pattern maps written by EDAX OIM Analysis / APEX, read lazily.

Layout of OIM 8.x (names are EDAX's)::

    /Manufacturer                         "EDAX"
    /Version                              "OIM Analysis 8.6.103 x64 [29 Sep 2022]"
    /<scan>/EBSD/Data/Pattern             (N, h, w) uint8|uint16, row by row
    /<scan>/EBSD/Data/Phi1, Phi, Phi2     (N,) Bunge Euler angles in radians
    /<scan>/EBSD/Data/CI, IQ, Fit, Phase, Valid, SEM Signal, X Position, Y Position   (N,)
    /<scan>/EBSD/Header/nColumns, nRows, Step X, Step Y (µm), Grid Type ("SqrGrid" | "HexGrid"),
                        Pattern Height, Pattern Width, Sample Tilt, Camera Elevation Angle,
                        Camera Azimuthal Angle, Working Distance (mm),
                        Pattern Center Calibration/x-star, y-star, z-star (EDAX/TSL convention),
                        Phase/<k>/MaterialName, Formula, Lattice Constant a|b|c (Å)|alpha|beta|gamma,
                        Symmetry (TSL code), Point Group, Laue Group

The scan group is ``Scan 1`` (OIM 8) or ``Scan_1`` (OIM 7.2), or a user's
name. OIM 7.2 writes some names with a leading space (``" Manufacturer"``,
``" Version"``): every name here is matched with surrounding spaces ignored
(and, failing that, case ignored).

Hexagonal grids ("HexGrid"): EDAX rows alternate between ``nColumns`` points
(first, third, ... row) and ``nColumns - 1`` points, the short rows shifted
by half a step to the right; patterns are stored row by row. They are placed
on a (nRows, nColumns) index map: point ``c`` of map row ``r`` at column ``c``;
the last column of every short row (odd ``r``, counted from 0) has no pattern
(-1). The physical position of (r, c) is ``x = (c + (r % 2) / 2) * Step X``,
``y = r * Step Y`` (Step Y is the row spacing, ``Step X * sqrt(3) / 2``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi.geometry.pattern_centre import convert_pc
from kikuchi.io._atomic import atomic_output
from kikuchi.io._h5 import H5Map, H5Patterns, header_number, scalar
from kikuchi.io.source import (
    EBSDMap,
    FormatSpec,
    MapFileError,
    PatternCentreData,
    Probe,
    default_chunk_patterns,
    place_patterns,
)

__all__ = ["EdaxH5EBSD", "FORMAT", "hex_index_map", "write_edax_h5"]

_logger = logging.getLogger(__name__)

RAW = "RawPatterns"  # the name every pattern source gives raw patterns; EDAX's dataset is 'Pattern'
PATTERN = "Pattern"
GRIDS = {"sqrgrid": "square", "hexgrid": "hexagonal"}


# -- names with stray spaces ------------------------------------------------------------------
def _key(group: Any, name: str) -> str | None:
    """The member of ``group`` called ``name``, surrounding spaces ignored (then case too); None if absent."""
    if name in group:
        return name
    keys = list(group.keys())
    for k in keys:
        if k.strip() == name:
            return k
    low = name.lower()
    for k in keys:
        if k.strip().lower() == low:
            return k
    return None


def _get(group: Any, name: str) -> Any:
    """``group[name]`` (path parts matched as in :func:`_key`), or None."""
    obj = group
    for part in name.split("/"):
        if not isinstance(obj, h5py.Group):
            return None
        key = _key(obj, part)
        if key is None:
            return None
        obj = obj[key]
    return obj


def _text(group: Any, name: str) -> str | None:
    obj = _get(group, name)
    if isinstance(obj, h5py.Dataset) and obj.size:
        return str(scalar(obj[()])).strip().strip("\x00")
    key = _key(group.attrs, name) if isinstance(group, h5py.Group) else None
    if key is not None:
        return str(scalar(group.attrs[key])).strip().strip("\x00")
    return None


def _scan_groups(f: h5py.File) -> list[str]:
    """Top-level groups holding an ``EBSD`` group, in file order."""
    return [k for k in f.keys() if isinstance(f[k], h5py.Group) and isinstance(_get(f[k], "EBSD"), h5py.Group)]


def hex_index_map(rows: int, ncols_odd: int) -> tuple[np.ndarray, int]:
    """(rows, ncols_odd) index map of an EDAX hexagonal grid stored row by row, and its number of points.

    Rows 0, 2, ... hold ``ncols_odd`` points, rows 1, 3, ... ``ncols_odd - 1``
    (their last column is -1).

    >>> index_map, n = hex_index_map(3, 3)
    >>> index_map.tolist(), n
    ([[0, 1, 2], [3, 4, -1], [5, 6, 7]], 8)
    """
    r = np.arange(rows)
    lengths = np.where(r % 2 == 0, ncols_odd, max(ncols_odd - 1, 0))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    cols = np.arange(ncols_odd)
    index_map = starts[:, None] + cols[None, :]
    index_map[cols[None, :] >= lengths[:, None]] = -1
    return index_map.astype(np.int64), int(lengths.sum())


class EdaxH5EBSD(H5Map):
    """An EDAX OIM h5ebsd file (OIM 7.2 and 8.x layouts), read lazily. Use :func:`kikuchi.open`.

    Parameters
    ----------
    path
        The ``.h5`` / ``.oh5`` file.
    scan
        Scan group (default: the first with an ``EBSD`` group: ``Scan 1``, ``Scan_1``, ...).
    dataset
        ``'RawPatterns'`` (EDAX's ``Pattern`` dataset; also accepted by that name).

    Raises
    ------
    MapFileError
        Not HDF5, no scan, no patterns (an orientation-only file), an empty or
        malformed pattern dataset, a missing or non-numeric header value
        needed for the map.
    """

    format = "edax_h5"

    # -- opening -------------------------------------------------------------------
    def _open(self, *, scan: str | None = None, dataset: str | None = None) -> None:
        f = self._file
        scans = _scan_groups(f)
        if scan is None:
            if not scans:
                raise MapFileError(f"{self.path}: no scan group with an 'EBSD' group (expected e.g. 'Scan 1/EBSD/Data/Pattern')")
            scan = scans[0]
        else:
            key = _key(f, scan)
            if key is None or key not in scans:
                raise MapFileError(f"{self.path}: no scan '{scan}' with an 'EBSD' group (scans: {', '.join(scans) or 'none'})")
            scan = key
        self._scan = scan
        ebsd = _get(f[scan], "EBSD")
        header, data = _get(ebsd, "Header"), _get(ebsd, "Data")
        for name, group in (("Header", header), ("Data", data)):
            if not isinstance(group, h5py.Group):
                raise MapFileError(f"{self.path}: no '{scan}/EBSD/{name}' group")
        self._header, self._data = header, data
        self._manufacturer = _text(f, "Manufacturer")
        self._version = _text(f, "Version")
        if dataset not in (None, RAW, PATTERN):
            raise MapFileError(f"{self.path}: no pattern dataset '{dataset}' (an EDAX file has {RAW}, stored as '{PATTERN}')")
        ds = _get(data, PATTERN)
        if not isinstance(ds, h5py.Dataset):
            if isinstance(_get(data, "Phi1"), h5py.Dataset):
                raise MapFileError(
                    f"{self.path}: an EDAX OIM file with orientations but no patterns ('{scan}/EBSD/Data' has no "
                    f"'{PATTERN}' dataset); read it as an orientation map (export it from OIM Analysis as .ang and "
                    "use kikuchi.read_orientation_map)"
                )
            raise MapFileError(f"{self.path}: an EDAX OIM file without patterns ('{scan}/EBSD/Data' has no '{PATTERN}' dataset)")
        where = f"'{scan}/EBSD/Data/{ds.name.rsplit('/', 1)[-1]}'"
        if ds.ndim != 3:
            raise MapFileError(f"{self.path}: {where} has shape {ds.shape}; patterns are (N, height, width)")
        n, h, w = (int(s) for s in ds.shape)
        if h == 0 or w == 0:
            raise MapFileError(f"{self.path}: {where} has shape {ds.shape}: patterns of {h} x {w} pixels")
        if n == 0:
            raise MapFileError(f"{self.path}: {where} holds no patterns (shape {ds.shape})")
        self._patterns = ds
        self._reader = H5Patterns(ds)
        for name, actual in (("Pattern Height", h), ("Pattern Width", w)):
            value = self._number(name)
            if value is not None and int(value) != actual:
                self._note(f"header '{name}' is {value:g} but the patterns are {h} x {w}; the dataset's shape is used")
        rows, cols = self._count("nRows"), self._count("nColumns")
        grid = _text(header, "Grid Type")
        if grid is None:
            self._note("no 'Grid Type' in the header; the map is read as a square grid")
            grid = "SqrGrid"
        self._grid_stored = grid
        self._grid = GRIDS.get(grid.strip().lower())
        if self._grid is None:
            raise MapFileError(f"{self.path}: 'Grid Type' is '{grid}'; expected 'SqrGrid' or 'HexGrid'")
        if rows == 0 or cols == 0:
            raise MapFileError(f"{self.path}: the header gives a map of nRows {rows} x nColumns {cols} points")
        if self._grid == "hexagonal":
            index_map, points = hex_index_map(rows, cols)
            index_map[index_map >= n] = -1
            layout = f"hexagonal {rows} x {cols} map ({points} points: rows of {cols} and {cols - 1})"
        else:
            index_map, points = None, rows * cols
            layout = f"{rows} x {cols} map ({points} points)"
        if n < points:
            self._note(f"'{PATTERN}' holds {n} patterns for the {layout}: the last {points - n} points have no pattern (a truncated file?)")
        elif n > points:
            self._note(f"'{PATTERN}' holds {n} patterns for the {layout}: the last {n - points} are not on the map")
        self._set_map(nav_shape=(rows, cols), pattern_shape=(h, w), dtype=ds.dtype, n_patterns=n, index_map=index_map)
        self._read_geometry()
        if self._grid == "hexagonal":
            self._check_hex_positions()

    def _number(self, name: str, default: float | None = None, *, required: bool = False, group: Any = None) -> float | None:
        """A numeric header value (scalar or length-1 array); MapFileError when malformed or required and absent."""
        group = self._header if group is None else group
        where = f"'{group.name.lstrip('/')}/{name}'"
        return header_number(_get(group, name), where, self.path, default, required=required)

    def _count(self, name: str) -> int:
        value = self._number(name, required=True)
        assert value is not None
        if value < 0 or value != int(value):
            raise MapFileError(f"{self.path}: '{self._header.name.lstrip('/')}/{name}' is {value:g}; expected a count (0, 1, 2, ...)")
        return int(value)

    def _read_geometry(self) -> None:
        """Header values read once at opening, so a malformed header fails here and not later."""
        sy, sx = self._number("Step Y"), self._number("Step X")
        if sy is None or sx is None:
            missing = " and ".join(k for k, v in (("Step Y", sy), ("Step X", sx)) if v is None)
            self._note(f"no '{missing}' in the header; the step is taken as 1 µm")
        self._step = (1.0 if sy is None else sy, 1.0 if sx is None else sx)
        tilt = self._number("Sample Tilt")
        if tilt is None:
            self._note("no 'Sample Tilt' in the header; the sample tilt is taken as 70°")
            tilt = 70.0
        elif tilt < 0:
            self._note(
                f"'Sample Tilt' is {tilt:g}° in the file; read as {-tilt:g}° "
                "(some OIM versions store the tilt negative; kikuchi's sample tilt is towards the detector, positive)"
            )
            tilt = -tilt
        self._sample_tilt = tilt
        self._camera_tilt = self._number("Camera Elevation Angle", 0.0)
        self._azimuthal = self._number("Camera Azimuthal Angle", 0.0)
        if self._azimuthal:
            self._note(f"'Camera Azimuthal Angle' is {self._azimuthal:g}°; kikuchi's detector of a map does not apply it (camera_azimuthal_deg keeps it)")
        self._wd = self._number("Working Distance")
        pcg = _get(self._header, "Pattern Center Calibration")
        self._pc_edax: tuple[float, float, float] | None = None
        if isinstance(pcg, h5py.Group):
            values = [self._number(k, group=pcg) for k in ("x-star", "y-star", "z-star")]
            if all(v is not None for v in values):
                if values[2] > 0:
                    self._pc_edax = tuple(values)  # type: ignore[assignment]
                else:  # z* = 0 puts the screen on the sample: a PC never calibrated (kikuchipy's EDAX test file has (0, 0, 0))
                    self._note(
                        f"'Pattern Center Calibration' is ({values[0]:g}, {values[1]:g}, {values[2]:g}): z* <= 0 is no "
                        "calibrated pattern centre, so the file gives none"
                    )
            elif any(v is not None for v in values):
                missing = ", ".join(k for k, v in zip(("x-star", "y-star", "z-star"), values) if v is None)
                self._note(f"'Pattern Center Calibration' lacks {missing}; the file's pattern centre is not used")

    def _check_hex_positions(self) -> None:
        """Compare the stored X/Y positions of the first two rows with the hexagonal layout assumed."""
        xs, ys = _get(self._data, "X Position"), _get(self._data, "Y Position")
        rows, cols = self.nav_shape
        k = min(self.n_patterns, 2 * cols - 1 if rows > 1 else cols)
        if not (isinstance(xs, h5py.Dataset) and isinstance(ys, h5py.Dataset)) or min(xs.size, ys.size) < k or cols < 2:
            return
        x = np.asarray(xs[:k], dtype=np.float64)
        y = np.asarray(ys[:k], dtype=np.float64)
        r = (np.arange(k) >= cols).astype(np.float64)
        c = np.where(r == 0, np.arange(k), np.arange(k) - cols)
        dy, dx = self._step
        expect_x = x[0] + (c + r / 2) * dx
        expect_y = y[0] + r * dy
        if not (np.allclose(x, expect_x, atol=0.05 * dx) and np.allclose(y, expect_y, atol=0.05 * max(dy, 1e-12))):
            self._note(
                "'X Position'/'Y Position' of the first two rows do not follow the hexagonal layout assumed "
                f"(rows of {cols} and {cols - 1} points, short rows shifted by half a step); patterns are placed by that layout"
            )

    # -- groups ------------------------------------------------------------------------
    @property
    def header(self) -> h5py.Group:
        return self._header

    @property
    def data(self) -> h5py.Group:
        return self._data

    @property
    def dataset(self) -> str:
        """'RawPatterns' (stored as EDAX's 'Pattern')."""
        return RAW

    @property
    def datasets(self) -> list[str]:
        return [RAW]

    @property
    def open_options(self) -> dict[str, Any]:
        return {"format": self.format, "scan": self.scan, "dataset": RAW}

    # -- shapes ------------------------------------------------------------------------
    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step) in µm: ('Step Y', 'Step X'); for hexagonal grids Step Y is the row spacing."""
        return self._step

    @property
    def grid_type(self) -> str:
        """'square' (SqrGrid) or 'hexagonal' (HexGrid, placed as described in the module docstring)."""
        return self._grid

    @property
    def hex_ncols(self) -> tuple[int, int] | None:
        """(points in rows 0, 2, ..., points in rows 1, 3, ...) of a hexagonal grid, else None."""
        return (self.nav_shape[1], self.nav_shape[1] - 1) if self._grid == "hexagonal" else None

    # -- pattern access ----------------------------------------------------------------
    # -- per-map data --------------------------------------------------------------------
    def point_data(self) -> dict[str, Any]:
        """Per-pattern datasets of ``EBSD/Data`` (storage order): h5py datasets, or arrays cut to the patterns stored."""
        out: dict[str, Any] = {}
        n = self.n_patterns
        for name, ds in self._data.items():
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind not in "iufb":
                continue
            if ds.shape[0] == n:
                out[name.strip()] = ds
            elif ds.shape[0] > n:
                out[name.strip()] = np.asarray(ds[:n])
        return out

    def _placed(self, name: str) -> np.ndarray | None:
        ds = _get(self._data, name)
        if not isinstance(ds, h5py.Dataset) or ds.size == 0:
            return None
        values = self._numeric(ds, f"'{ds.name.lstrip('/')}'")
        if values is None:
            return None
        values = values.reshape(-1)
        n = self.n_patterns
        if values.size < n:
            values = np.concatenate([values, np.full(n - values.size, np.nan)])
        return place_patterns(values[:n], self.index_map)

    @property
    def pattern_centre(self) -> PatternCentreData | None:
        """The file's one PC (x*, y*, z*, EDAX convention) in Bruker's convention at every point with a pattern.

        ``convert_pc(pc, "edax", "bruker", shape=(h, w))``: PCx = x*,
        PCy = 1 - y*, DD = z* min(w, h) / h (docs/conventions.md).
        """
        if self._pc_edax is None:
            return None
        bruker = convert_pc(np.asarray(self._pc_edax), "edax", "bruker", shape=self.pattern_shape)
        have = self.index_map >= 0
        parts = []
        for v in bruker:
            a = np.full(self.nav_shape, np.nan)
            a[have] = v
            parts.append(a)
        return PatternCentreData(*parts, convention="bruker", file_convention="edax")

    @property
    def pattern_centre_edax(self) -> tuple[float, float, float] | None:
        """(x*, y*, z*) as stored in 'Pattern Center Calibration'."""
        return self._pc_edax

    @property
    def sample_tilt_deg(self) -> float:
        """'Sample Tilt' (degrees; a negative value is read as its magnitude, with a note)."""
        return float(self._sample_tilt)

    @property
    def camera_tilt_deg(self) -> float:
        """'Camera Elevation Angle' (degrees; kikuchipy's detector ``tilt``)."""
        return float(self._camera_tilt or 0.0)

    @property
    def camera_azimuthal_deg(self) -> float:
        """'Camera Azimuthal Angle' (degrees)."""
        return float(self._azimuthal or 0.0)

    @property
    def euler(self) -> np.ndarray | None:
        """Bunge Euler angles (rows, cols, 3) in radians from 'Phi1', 'Phi', 'Phi2' (stored in radians); NaN where no pattern."""
        angles = [self._placed(k) for k in ("Phi1", "Phi", "Phi2")]
        if any(a is None for a in angles):
            return None
        return np.stack(angles, axis=-1)  # type: ignore[arg-type]

    def _phase_offset(self) -> int:
        """+1 when the file numbers its phases from 0 (OIM 9, PyEBSDIndex), so that ids start at 1."""
        group = _get(self._header, "Phase")
        if isinstance(group, h5py.Group):
            ids = [int(k) for k in group.keys() if k.strip().isdigit()]
            if ids and min(ids) == 0:
                return 1
        return 0

    @property
    def phase_id(self) -> np.ndarray | None:
        """'Phase' of each point as ids of :attr:`phases` (0: none or no pattern)."""
        phase = self._placed("Phase")
        if phase is None:
            return None
        have = np.isfinite(phase)
        return np.where(have, phase + self._phase_offset(), 0).astype(np.int64)

    @property
    def phases(self) -> list[dict[str, Any]]:
        """'Header/Phase/<k>': id, name, lattice (nm, degrees), formula, TSL symmetry code, point and Laue groups."""
        group = _get(self._header, "Phase")
        out: list[dict[str, Any]] = []
        if not isinstance(group, h5py.Group):
            return out
        offset = self._phase_offset()
        for key in sorted((k for k in group if k.strip().isdigit()), key=lambda k: int(k)):
            g = group[key]
            if not isinstance(g, h5py.Group):
                continue
            entry: dict[str, Any] = {"id": int(key) + offset, "name": _text(g, "MaterialName") or f"phase {key}", "space_group": None}
            lat = []
            for name in ("a", "b", "c", "alpha", "beta", "gamma"):
                obj = _get(g, f"Lattice Constant {name}")
                try:
                    lat.append(float(scalar(obj[()])) if isinstance(obj, h5py.Dataset) and obj.size else np.nan)
                except (TypeError, ValueError):
                    lat.append(np.nan)
            if np.all(np.isfinite(lat)):
                entry["lattice"] = [*(np.asarray(lat[:3]) / 10.0).round(6).tolist(), *np.round(lat[3:], 4).tolist()]  # Å -> nm
            for name, key_out in (("Formula", "formula"), ("Point Group", "point_group"), ("Laue Group", "laue_group")):
                value = _text(g, name)
                if value:
                    entry[key_out] = value
            sym = _get(g, "Symmetry")
            if isinstance(sym, h5py.Dataset) and sym.size:
                try:
                    entry["tsl_symmetry"] = int(scalar(sym[()]))
                except (TypeError, ValueError):
                    pass
            out.append(entry)
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``kikuchi info``)."""
        out = super().describe()
        out.update(
            manufacturer=self._manufacturer,
            version=self._version,
            grid_stored=self._grid_stored,
            hex_ncols=None if self.hex_ncols is None else list(self.hex_ncols),
            pattern_centre_edax=None if self._pc_edax is None else list(self._pc_edax),
            camera_azimuthal_deg=self.camera_azimuthal_deg,
            working_distance_mm=self._wd,
            **self._reader.describe(),
        )
        return out


# -- content test ----------------------------------------------------------------------
def _sniff(probe: Probe) -> bool:
    """An HDF5 file from EDAX (``Manufacturer``, leading spaces allowed), or without one but in OIM's layout."""
    f = probe.h5
    if f is None:
        return False
    scans = _scan_groups(f)
    maker = (_text(f, "Manufacturer") or "").lower()
    if maker.startswith(("edax", "ametek")):
        return bool(scans)
    if maker:
        return False
    for name in scans:
        header = _get(f[name], "EBSD/Header")
        if isinstance(header, h5py.Group) and _key(header, "nColumns") and isinstance(_get(header, "Pattern Center Calibration"), h5py.Group):
            return True
    return False


# -- writer ------------------------------------------------------------------------------
def _string(value: str) -> np.ndarray:
    """A length-1 fixed-length byte string array, as OIM writes text."""
    return np.array([value.encode()])


def write_edax_h5(
    path: str | os.PathLike,
    patterns: Any,
    *,
    step_um: tuple[float, float] = (1.0, 1.0),
    pc: Any = None,
    pc_convention: str = "edax",
    sample_tilt_deg: float = 70.0,
    camera_tilt_deg: float = 0.0,
    grid: str = "square",
    chunks: int | bool | None = None,
    compression: str | None = None,
    euler: np.ndarray | None = None,
    phases: Sequence[dict[str, Any]] | None = None,
    oim_version: str = "8.6",
    scan: str | None = None,
) -> Path:
    """Write patterns as an EDAX OIM h5ebsd file (the layout OIM Analysis writes).

    Parameters
    ----------
    path
        Output file (written under a temporary name, renamed when complete).
    patterns
        (rows, cols, h, w) uint8 or uint16 patterns in map order. For a
        hexagonal grid ``cols`` is the long rows' count; the last column of
        rows 1, 3, ... is not written.
    step_um
        (row step, column step) in µm: 'Step Y', 'Step X' (for hexagonal
        grids the row spacing, usually ``Step X * sqrt(3) / 2``).
    pc
        Pattern centre (3,) for the map, in ``pc_convention``; default
        EDAX (0.5, 0.5, 0.5).
    pc_convention
        Convention of ``pc`` ('edax' or any of :func:`kikuchi.geometry.pattern_centre.convert_pc`).
    sample_tilt_deg, camera_tilt_deg
        'Sample Tilt', 'Camera Elevation Angle'.
    grid
        'square' (SqrGrid) or 'hexagonal' (HexGrid).
    chunks
        Patterns per HDF5 chunk; None: about 1 MiB per chunk; False: contiguous.
    compression
        HDF5 filter of the patterns (default none).
    euler
        (rows, cols, 3) Bunge Euler angles in radians; default zeros.
    phases
        Dicts with ``name``, ``lattice`` (a, b, c in nm, angles in degrees)
        and optionally ``tsl_symmetry``, ``formula``: 'Header/Phase/1', ....
    oim_version
        '8.6' (``Manufacturer``, ``Scan 1``) or '7.2' (``" Manufacturer"``,
        ``" Version"`` with a leading space, ``Scan_1``).
    scan
        Scan group name (default by ``oim_version``).

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "e.h5"
    >>> pats = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    >>> _ = write_edax_h5(p, pats, grid="hexagonal")
    >>> from kikuchi.io.source import open_map
    >>> with open_map(p) as m:
    ...     m.format, m.grid_type, m.index_map.tolist(), int(m.pattern(1, 1)[0, 0])
    ('edax_h5', 'hexagonal', [[0, 1, 2], [3, 4, -1]], 80)
    """
    path = Path(path)
    patterns = np.asarray(patterns)
    if patterns.ndim != 4:
        raise ValueError(f"patterns must be (rows, cols, h, w), got shape {patterns.shape}")
    rows, cols, h, w = patterns.shape
    if min(rows, cols, h, w) <= 0:
        raise ValueError(f"empty map or pattern shape: {patterns.shape}")
    if patterns.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"OIM stores uint8 or uint16 patterns, got {patterns.dtype}")
    if grid not in ("square", "hexagonal"):
        raise ValueError(f"grid must be 'square' or 'hexagonal', got {grid!r}")
    if grid == "hexagonal":
        index_map, n = hex_index_map(rows, cols)
    else:
        index_map, n = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols), rows * cols
    have = index_map >= 0
    r, c = np.nonzero(have)  # row-major, which is storage order here
    stored = np.flatnonzero(have.reshape(-1))
    pc_edax = np.asarray((0.5, 0.5, 0.5) if pc is None else pc, dtype=np.float64).reshape(3)
    if pc is not None:
        pc_edax = convert_pc(pc_edax, pc_convention, "edax", shape=(h, w))
    v7 = str(oim_version).startswith("7")
    scan = scan or ("Scan_1" if v7 else "Scan 1")
    dy, dx = float(step_um[0]), float(step_um[1])
    if chunks is False:
        chunk_shape = None
    else:
        per = default_chunk_patterns((h, w), patterns.dtype, n) if chunks in (None, True) else max(1, min(int(chunks), n))
        chunk_shape = (per, h, w)
    flat = patterns.reshape(rows * cols, h, w)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        version = "OIM Analysis 7.2.1 x64  [01-23-15]" if v7 else f"OIM Analysis {oim_version}.103 x64 [29 Sep 2022]"
        f[" Manufacturer" if v7 else "Manufacturer"] = _string("EDAX")
        f[" Version" if v7 else "Version"] = _string(version)
        data = f.create_group(f"{scan}/EBSD/Data")
        header = f.create_group(f"{scan}/EBSD/Header")
        ds = data.create_dataset(PATTERN, shape=(n, h, w), dtype=patterns.dtype, chunks=chunk_shape, compression=compression)
        if grid == "square":
            ds[...] = flat
        else:  # blocks of ~64 MiB of the points that exist: no per-pattern loop, bounded memory
            block = max(1, (64 << 20) // max(1, h * w * patterns.dtype.itemsize))
            for k in range(0, n, block):
                ds[k : k + block] = flat[stored[k : k + block]]
        angles = np.zeros((n, 3), dtype=np.float32)
        if euler is not None:
            e = np.asarray(euler, dtype=np.float64)
            if e.shape != (rows, cols, 3):
                raise ValueError(f"euler must have shape {(rows, cols, 3)}, got {e.shape}")
            angles = e.reshape(-1, 3)[stored].astype(np.float32)
        data["Phi1"], data["Phi"], data["Phi2"] = (angles[:, k] for k in range(3))
        for name in ("CI", "IQ", "Fit"):
            data[name] = np.zeros(n, dtype=np.float32)
        data["Phase"] = np.full(n, 1 if phases else 0, dtype=np.int8)
        data["Valid"] = np.ones(n, dtype=np.int8)
        data["SEM Signal"] = np.zeros(n, dtype=np.int32)
        data["X Position"] = ((c + (r % 2) / 2.0) * dx if grid == "hexagonal" else c * dx).astype(np.float32)
        data["Y Position"] = (r * dy).astype(np.float32)
        header["nColumns"] = np.array([cols], dtype=np.int32)
        header["nRows"] = np.array([rows], dtype=np.int32)
        header["Step X"] = np.array([dx], dtype=np.float32)
        header["Step Y"] = np.array([dy], dtype=np.float32)
        header["Grid Type"] = _string("HexGrid" if grid == "hexagonal" else "SqrGrid")
        header["Pattern Height"] = np.array([h], dtype=np.int32)
        header["Pattern Width"] = np.array([w], dtype=np.int32)
        header["Sample Tilt"] = np.array([sample_tilt_deg], dtype=np.float32)
        header["Camera Elevation Angle"] = np.array([camera_tilt_deg], dtype=np.float32)
        header["Camera Azimuthal Angle"] = np.array([0.0], dtype=np.float32)
        header["Working Distance"] = np.array([15.0], dtype=np.float32)
        for name, value in zip(("x-star", "y-star", "z-star"), pc_edax):
            header[f"Pattern Center Calibration/{name}"] = np.array([value], dtype=np.float32)
        for i, phase in enumerate(phases or (), start=1):
            g = header.create_group(f"Phase/{i}")
            g["MaterialName"] = _string(str(phase.get("name", f"phase {i}")))
            g["Formula"] = _string(str(phase.get("formula", "")))
            lattice = list(phase.get("lattice", (0.0, 0.0, 0.0, 90.0, 90.0, 90.0)))
            for k, name in enumerate(("a", "b", "c", "alpha", "beta", "gamma")):
                g[f"Lattice Constant {name}"] = np.array([lattice[k] * (10.0 if k < 3 else 1.0)], dtype=np.float32)  # nm -> Å
            g["Symmetry"] = np.array([int(phase.get("tsl_symmetry", 43))], dtype=np.int32)
    return path


def _write_map(path: str | os.PathLike, source: EBSDMap, **options: Any) -> Path:
    """Write an open pattern map as an EDAX OIM h5ebsd file (points without a pattern are written as zeros)."""
    kwargs: dict[str, Any] = {
        "step_um": source.step_um,
        "sample_tilt_deg": source.sample_tilt_deg,
        "camera_tilt_deg": source.camera_tilt_deg,
    }
    pc = source.pattern_centre
    if pc is not None and pc.convention == "bruker":
        kwargs.update(pc=pc.mean, pc_convention="bruker")
    kwargs.update(options)
    return write_edax_h5(path, source.read_all(), **kwargs)


FORMAT = FormatSpec(
    name="edax_h5",
    description="EDAX OIM h5ebsd (OIM 7.2 and 8.x layouts; square and hexagonal grids)",
    # '.h5' files are recognised by content; the extension falls back to the kikuchi map file
    extensions=(".oh5",),
    sniff=_sniff,
    open=EdaxH5EBSD,
    writes=_write_map,
)
