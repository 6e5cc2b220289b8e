"""The kikuchi map file: an HDF5 store of EBSD patterns and their map.

The layout follows the xcdskd documentation ("HDF5: Convert Directory of
Images"), so that files written by its notebooks and ours are the same kind::

    /Manufacturer, /Version
    /Scan/EBSD/Data/RawPatterns      (N, h, w) uint8|uint16, chunked, compressed
    /Scan/EBSD/Data/Patterns         (N, h, w) processed patterns (optional)
    /Scan/EBSD/Data/StaticBackground (h, w)
    /Scan/EBSD/Data/X BEAM, Y BEAM   (N,) int32: column and row of pattern i
    /Scan/EBSD/Data/PCX, PCY, DD     (N,) float32 pattern centre per pattern
    /Scan/EBSD/Data/phi1, PHI, phi2  (N,) float32 Bunge Euler angles, radians
    /Scan/EBSD/Data/X Position, Y Position (N,) float32, µm
    /Scan/EBSD/Data/bse_map          (rows, cols) mean intensity of each raw pattern
    /Scan/EBSD/Header/NCOLS, NROWS, PatternHeight, PatternWidth,
                      X Resolution, Y Resolution (µm),
                      indexmap (rows, cols; -1: no pattern), maplist (N, 3: index, col, row)

Files of the xcdskd zip notebook (``Scan 0`` group, ``BEAM X``/``BEAM Y``),
files written column by column, and kikuchipy h5ebsd files are read through
their beam positions. New files store patterns row-major
(index = row * NCOLS + col).

kikuchi adds attributes (``PCConvention``, ``SampleTilt``, ``CameraTilt``,
``AcceleratingVoltage``, ``Binning``, ``PixelSize``) and groups (``Phases``,
``Processing``, ``Truth``) to the header; all are optional when reading.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi._args import ArgumentTypeError, ArgumentValueError, check_count, check_number, check_pair, check_path, shown
from kikuchi._cpus import available_cpus
from kikuchi.io._atomic import OutputH5File, atomic_output, partial_path
from kikuchi.io._h5 import H5Map, H5Patterns, header_number, scalar
from kikuchi.io._h5 import deflate as _deflate, shuffle as _shuffle
from kikuchi.io.source import (
    EBSDMap,
    FormatSpec,
    MapFileError,
    MapPositionError,
    PatternCentreData,
    Probe,
    default_chunk_patterns,
    index_map_from_positions,
    place_patterns,
    short_repr,
)
from kikuchi.io.source import open_map as _open_any

__all__ = [
    "EBSDMap",
    "MapFile",
    "MapFileError",
    "MapPositionError",
    "MapWriter",
    "PatternCentreData",
    "default_chunk_patterns",
    "open_map",
    "RAW",
    "PROCESSED",
    "DEFAULT_COMPRESSION",
    "COMPRESSIONS",
    "FORMAT",
]

_logger = logging.getLogger(__name__)

RAW = "RawPatterns"
PROCESSED = "Patterns"
MANUFACTURER = "kikuchi"
FORMAT_VERSION = "1.0"
#: HDF5 filter of new pattern datasets; chosen by measurement, see docs/mapfile.md.
DEFAULT_COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
#: The pattern filters a command may be told to use, by name (``--compression``): the map file default, or
#: none (processed 16-bit patterns stretched over the full range compress little: 1.05x for noisy ones;
#: noise-free float32 simulations keep 81 % of their size at three times the time).
COMPRESSIONS: dict[str, dict[str, Any]] = {"gzip": DEFAULT_COMPRESSION, "none": {}}

#: Deflate is kept for a chunk only when it saves at least this fraction of its bytes (see encode_chunk).
_DEFLATE_MIN_SAVING = 0.10
_PROBES = 4  # pieces of the chunk deflated to judge it
_PROBE_FRACTION = 1 / 64  # the size of each, as a fraction of the chunk


def _deflate_pays(raw: np.ndarray, level: int) -> bool:
    """Whether deflate at ``level`` shrinks the chunk's (filtered) bytes by at least :data:`_DEFLATE_MIN_SAVING`.

    Judged by deflating four evenly spaced pieces of 1/64 of the chunk (at least 4 KiB each): a
    sixteenth of the work of deflating it. Small chunks are always deflated.
    """
    n = raw.size
    piece = max(4096, int(n * _PROBE_FRACTION))
    if n < 4 * _PROBES * piece:
        return True
    offsets = np.linspace(0, n - piece, _PROBES).astype(np.int64)
    packed = sum(len(_deflate(raw[o : o + piece], level)) for o in offsets)
    return packed <= (1.0 - _DEFLATE_MIN_SAVING) * _PROBES * piece


_scalar = scalar
#: Header dataset of the patterns complete in the partial output of ``kikuchi process``
#: (kikuchi.engine._resumable); removed when the file is complete.
_RESUME_RECORD = "ResumeWritten"


@dataclass(frozen=True)
class _Layout:
    """Where the parts of one supported file flavour live."""

    scan: str
    flavour: str  # "xcdskd" or "kikuchipy"
    ncols: int
    nrows: int
    patterns: dict[str, str] = field(default_factory=dict)  # name -> dataset path


def _scan_groups(f: h5py.File) -> list[str]:
    return [k for k in f.keys() if isinstance(f[k], h5py.Group) and "EBSD" in f[k]]


def _find_layout(f: h5py.File, path: Path, scan: str | None) -> _Layout:
    scans = [scan] if scan else _scan_groups(f)
    if not scans:
        raise MapFileError(f"{path}: no group with an 'EBSD' subgroup (expected 'Scan/EBSD/...')")
    name = scans[0]
    for part in ("Header", "Data"):
        if not isinstance(f.get(f"{name}/EBSD/{part}"), h5py.Group):
            raise MapFileError(f"{path}: no '{name}/EBSD/{part}' group")
    header = f[f"{name}/EBSD/Header"]
    data = f[f"{name}/EBSD/Data"]
    if "NCOLS" in header:
        flavour, names, candidates = "xcdskd", ("NCOLS", "NROWS"), {RAW: RAW, PROCESSED: PROCESSED}
    elif "n_columns" in header:
        flavour, names, candidates = "kikuchipy", ("n_columns", "n_rows"), {RAW: "patterns"}
    else:
        raise MapFileError(f"{path}: '{name}/EBSD/Header' has neither NCOLS/NROWS nor n_columns/n_rows")
    counts = []
    for key in names:
        where = f"'{name}/EBSD/Header/{key}'"
        value = header_number(header.get(key), where, path, required=True)
        if value < 0 or value != int(value):  # type: ignore[operator]
            raise MapFileError(f"{path}: {where} is {value:g}; expected a count of map {'columns' if 'c' in key.lower() else 'rows'} (0, 1, 2, ...)")
        counts.append(int(value))  # type: ignore[arg-type]
    ncols, nrows = counts
    if nrows < 1 or ncols < 1:
        raise MapFileError(f"{path}: '{name}/EBSD/Header' gives a map of {nrows} x {ncols} points")
    patterns = {
        key: f"{name}/EBSD/Data/{ds}"
        for key, ds in candidates.items()
        if ds in data and isinstance(data[ds], h5py.Dataset) and data[ds].ndim == 3
    }
    if not patterns:
        raise MapFileError(f"{path}: '{name}/EBSD/Data' holds no pattern dataset ({', '.join(candidates.values())})")
    return _Layout(scan=name, flavour=flavour, ncols=ncols, nrows=nrows, patterns=patterns)


class MapFile(H5Map):
    """The kikuchi map file (also the xcdskd notebooks' files and kikuchipy h5ebsd), read lazily.

    Use :func:`kikuchi.open`.
    """

    format = "kikuchi"

    def __init__(self, path: str | os.PathLike, **options: Any):
        refuse_partial_output(Path(path))  # before HDF5 opens it: a file killed while written may not open at all
        super().__init__(path, **options)

    def _open(self, *, scan: str | None = None, dataset: str | None = None) -> None:
        self._layout = _find_layout(self._file, self.path, scan)
        if _RESUME_RECORD in self._file[f"{self._layout.scan}/EBSD/Header"]:
            raise MapFileError(
                f"{self.path}: an incomplete output of an interrupted `kikuchi process` (its header holds the record "
                f"'{_RESUME_RECORD}' of the patterns done so far; a '.NAME.partial' file renamed?): not read as a map; "
                "give it back its name '.NAME.partial' and run the same command with --resume to complete it"
            )
        names = self._layout.patterns
        if dataset is None:
            dataset = PROCESSED if PROCESSED in names and RAW not in names else RAW if RAW in names else next(iter(names))
        if dataset not in names:
            raise MapFileError(f"{self.path}: no pattern dataset '{dataset}' (has {', '.join(names)})")
        self._scan = self._layout.scan
        self._dataset = dataset
        self._datasets = list(names)
        self._patterns = self._file[names[dataset]]
        self._reader = H5Patterns(self._patterns)
        n = int(self._patterns.shape[0])
        self._set_map(
            nav_shape=(self._layout.nrows, self._layout.ncols),
            pattern_shape=tuple(self._patterns.shape[1:]),
            dtype=self._patterns.dtype,
            n_patterns=n,
            index_map=self._read_index_map(n),
        )
        self._read_geometry()

    # -- groups ------------------------------------------------------------
    @property
    def flavour(self) -> str:
        """'xcdskd' (this layout, also written by kikuchi) or 'kikuchipy' (h5ebsd)."""
        return self._layout.flavour

    @property
    def header(self) -> h5py.Group:
        return self._file[f"{self.scan}/EBSD/Header"]

    @property
    def data(self) -> h5py.Group:
        return self._file[f"{self.scan}/EBSD/Data"]

    def _attr(self, name: str, default: Any = None) -> Any:
        if name in self.header.attrs:
            return _scalar(self.header.attrs[name])
        return default

    def _number_attr(self, name: str, default: float | None, *, unit: str = "") -> float | None:
        """A numeric header attribute (kikuchi's layout), ``default`` when absent; MapFileError naming it when it is not a number."""
        if name not in self.header.attrs:
            return default
        raw = self.header.attrs[name]
        value = _scalar(raw)
        where = f"attribute {name} of '{self.header.name.lstrip('/')}'"
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise MapFileError(
                f"{self.path}: {where} is {short_repr(value)}, not a number{' (' + unit + ')' if unit else ''}; "
                f"correct it (h5py: f['{self.header.name.lstrip('/')}'].attrs['{name}'] = ...) or delete it"
            ) from None
        if not np.isfinite(number):
            raise MapFileError(f"{self.path}: {where} is {number}, not a finite number; correct it or delete it")
        return number

    def _number_ds(self, name: str, default: float | None) -> float | None:
        """A numeric header dataset (kikuchipy's layout), ``default`` when absent; MapFileError naming it when malformed."""
        where = f"'{self.header.name.lstrip('/')}/{name}'"
        return header_number(self.header.get(name), where, self.path, default)

    def _read_geometry(self) -> None:
        """Header values read once at opening, so a malformed header fails here, naming the value, and not later."""
        h = self.header
        if self.flavour == "kikuchipy":
            step = (self._number_ds("step_y", 1.0), self._number_ds("step_x", 1.0))
            tilt = self._number_ds("sample_tilt", 70.0)
            camera = self._number_ds("elevation_angle", 0.0)
            sem = self._file.get(f"{self.scan}/SEM/Header")
            kv = header_number(sem.get("beam_energy"), f"'{self.scan}/SEM/Header/beam_energy'", self.path) if isinstance(sem, h5py.Group) else None
            binning = self._number_ds("binning", 1.0)
            pixel = h.get("detector_pixel_size")
            if isinstance(pixel, h5py.Dataset) and pixel.size > 1 and pixel.dtype.kind in "iuf":
                px = float(np.asarray(pixel[()]).ravel()[0])  # (1, 2) in some kikuchipy versions: the first
            else:
                px = self._number_ds("detector_pixel_size", None)
            px = px or None
            grid = h.get("grid_type")
            grid_text = str(_scalar(grid[()])).lower() if isinstance(grid, h5py.Dataset) else "square"
        else:
            step = (self._number_ds("Y Resolution", 1.0), self._number_ds("X Resolution", 1.0))
            tilt = self._number_attr("SampleTilt", 70.0, unit="degrees")
            camera = self._number_attr("CameraTilt", 0.0, unit="degrees")
            kv = self._number_attr("AcceleratingVoltage", None, unit="kV")
            binning = self._number_attr("Binning", 1.0)
            pixel = self.header.attrs.get("PixelSize")
            if isinstance(pixel, np.ndarray) and pixel.size > 1 and pixel.dtype.kind in "iuf":
                px = float(pixel.ravel()[0])
            else:
                px = self._number_attr("PixelSize", None, unit="µm")
            grid_text = str(self._attr("GridType", "square")).lower()
        if binning is not None and (binning < 1 or binning != int(binning)):
            self._note(f"binning {binning:g} is not a whole number of at least 1; taken as 1")
            binning = 1.0
        self._geometry = {
            "step_um": (float(step[0]), float(step[1])),  # type: ignore[arg-type]
            "sample_tilt_deg": float(tilt),  # type: ignore[arg-type]
            "camera_tilt_deg": float(camera),  # type: ignore[arg-type]
            "kv": kv,
            "binning": int(binning or 1),
            "pixel_size_um": px,
            "grid_type": "hexagonal" if "hex" in grid_text else "square",
        }

    # -- shapes --------------------------------------------------------------
    @property
    def chunk_patterns(self) -> int:
        """Patterns per stored HDF5 chunk (the natural read size)."""
        chunks = self._patterns.chunks
        return int(chunks[0]) if chunks else default_chunk_patterns(self.pattern_shape, self.dtype, self.n_patterns)

    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step) in µm."""
        return self._geometry["step_um"]

    @property
    def grid_type(self) -> str:
        return self._geometry["grid_type"]

    # -- index map -----------------------------------------------------------
    def _beam(self) -> tuple[np.ndarray, np.ndarray] | None:
        d = self.data
        for xname, yname in (("X BEAM", "Y BEAM"), ("BEAM X", "BEAM Y")):
            x, y = d.get(xname), d.get(yname)
            if isinstance(x, h5py.Dataset) and isinstance(y, h5py.Dataset):
                values = []
                for name, ds in ((xname, x), (yname, y)):
                    raw = np.asarray(ds[()]).reshape(-1)
                    if raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and not np.all(np.isfinite(raw) & (raw == np.round(raw)))):
                        raise MapFileError(f"{self.path}: '{ds.name.lstrip('/')}' holds {raw.dtype} values that are not map positions (whole numbers)")
                    values.append(raw.astype(np.int64))
                return values[0], values[1]
        return None

    def _read_index_map(self, n: int) -> np.ndarray:
        rows, cols = self._layout.nrows, self._layout.ncols
        stored = self.header.get("indexmap")
        if stored is not None:
            raw = np.asarray(stored[()]) if isinstance(stored, h5py.Dataset) else None
            if raw is None or raw.dtype.kind not in "iuf" or (raw.dtype.kind == "f" and not np.all(np.isfinite(raw) & (raw == np.round(raw)))):
                raise MapFileError(
                    f"{self.path}: '{self.header.name.lstrip('/')}/indexmap' is not a dataset of pattern indices; "
                    "delete it to place the patterns by their beam positions"
                )
            index_map = raw.astype(np.int64)
            if index_map.shape != (rows, cols):
                raise MapFileError(f"{self.path}: indexmap shape {index_map.shape} != (NROWS, NCOLS) = {(rows, cols)}")
        else:
            beam = self._beam()
            if beam is not None and beam[0].size == n:
                bx, by = beam
                bad = (bx < 0) | (bx >= cols) | (by < 0) | (by >= rows)
                if bad.any():
                    i = int(np.flatnonzero(bad)[0])
                    raise MapFileError(f"{self.path}: pattern {i} has beam position (col {bx[i]}, row {by[i]}) outside the {rows} x {cols} map")
                # the first pattern at a position wins: the xcdskd zip notebook leaves beam
                # (0, 0) on the trailing patterns it never wrote when the zip was short
                index_map, n_dup = index_map_from_positions(by, bx, (rows, cols), where=str(self.path))
                if n_dup:
                    first = index_map[index_map >= 0]
                    i = int(np.setdiff1d(np.arange(n), first)[0])
                    self._note(
                        f"{n_dup} patterns share a beam position with an earlier one and are not in the map "
                        f"(first: pattern {i} at row {by[i]}, col {bx[i]}, which holds pattern {index_map[by[i], bx[i]]})"
                    )
            elif n == rows * cols:
                index_map = np.arange(n, dtype=np.int64).reshape(rows, cols)
            else:
                raise MapFileError(f"{self.path}: {n} patterns for a {rows} x {cols} map and no beam positions")
        if index_map.max(initial=-1) >= n:
            r, c = np.unravel_index(int(np.argmax(index_map)), index_map.shape)
            raise MapFileError(
                f"{self.path}: indexmap refers to pattern {index_map.max()} at (row {r}, col {c}) but the file has {n} patterns"
            )
        if index_map.min(initial=-1) < -1:
            r, c = np.unravel_index(int(np.argmin(index_map)), index_map.shape)
            raise MapFileError(f"{self.path}: indexmap holds {index_map.min()} at (row {r}, col {c}); expected -1 or a pattern index")
        return index_map

    # -- pattern access ------------------------------------------------------
    # -- per-map data ----------------------------------------------------------
    @property
    def static_background(self) -> np.ndarray | None:
        """The detector's static background (h, w), or None when the file has none."""
        for group, name in ((self.data, "StaticBackground"), (self.header, "StaticBackground"), (self.header, "static_background")):
            ds = group.get(name)
            if ds is None:
                continue
            where = f"'{group.name.lstrip('/')}/{name}'"
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iufb":
                self._note(f"{where} is not a numeric dataset; no static background taken")
            elif ds.shape != self.pattern_shape:
                self._note(f"{where} of shape {ds.shape} does not fit the patterns of {self.pattern_shape}; no static background taken")
            else:
                return np.asarray(ds[()])
        return None

    @property
    def stored_bse_map(self) -> np.ndarray | None:
        ds = self.data.get("bse_map")
        if isinstance(ds, h5py.Dataset) and ds.shape == self.nav_shape and ds.dtype.kind in "iuf":
            return np.asarray(ds[()], dtype=np.float64)
        return None

    def point_data(self) -> dict[str, Any]:
        """Per-pattern datasets of the file (h5py datasets, read when asked), storage order."""
        return {
            name: ds
            for name, ds in self.data.items()
            if isinstance(ds, h5py.Dataset) and ds.shape == (self.n_patterns,) and ds.dtype.kind in "iufb"
        }

    def _per_point(self, names: Sequence[str]) -> np.ndarray | None:
        """Per-pattern dataset (first of ``names`` present) as a (rows, cols) float map, NaN where missing."""
        for name in names:
            ds = self.data.get(name)
            if isinstance(ds, h5py.Dataset) and ds.shape == (self.n_patterns,) and ds.dtype.kind in "iufb":
                return place_patterns(np.asarray(ds[()], dtype=np.float64), self._index_map)
        return None

    @property
    def pattern_centre(self) -> PatternCentreData | None:
        """Per-point pattern centre and its convention, or None when unknown."""
        if self.flavour == "kikuchipy":
            h = self.header
            if "pcx" not in h:
                return None
            pcs = []
            for k in ("pcx", "pcy", "pcz"):
                ds = h.get(k)
                where = f"'{h.name.lstrip('/')}/{k}'"
                if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iuf" or ds.size not in (1, self.nav_shape[0] * self.nav_shape[1]):
                    what = "missing" if ds is None else f"of shape {ds.shape}" if isinstance(ds, h5py.Dataset) and ds.dtype.kind in "iuf" else "not numbers"
                    self._note(f"{where} is {what}: one value or one per point of the {self.nav_shape} map expected; no pattern centre taken")
                    return None
                values = np.asarray(ds[()], dtype=np.float64).reshape(-1)
                pcs.append(np.broadcast_to(values, (self.nav_shape[0] * self.nav_shape[1],)).reshape(self.nav_shape).copy())
            return PatternCentreData(*pcs, convention="bruker")
        pcx, pcy, dd = (self._per_point([k]) for k in ("PCX", "PCY", "DD"))
        if pcx is None or pcy is None or dd is None or np.isnan(pcx).all():
            return None  # no datasets, or the NaN placeholders MapWriter creates
        convention = self._attr("PCConvention")
        if convention is None:
            # xcdskd notebooks stored dummies (0.5, 0.5, 1.0): no known convention.
            convention = "unknown"
        return PatternCentreData(pcx, pcy, dd, convention=str(convention))

    @property
    def sample_tilt_deg(self) -> float:
        return self._geometry["sample_tilt_deg"]

    @property
    def camera_tilt_deg(self) -> float:
        return self._geometry["camera_tilt_deg"]

    @property
    def kv(self) -> float | None:
        """Accelerating voltage in kV, when known."""
        return self._geometry["kv"]

    @property
    def binning(self) -> int:
        return self._geometry["binning"]

    @property
    def pixel_size_um(self) -> float | None:
        return self._geometry["pixel_size_um"]

    @property
    def truth_euler(self) -> np.ndarray | None:
        truth = self.header.get("Truth/euler")
        if not isinstance(truth, h5py.Dataset):
            return None
        if truth.shape != (*self.nav_shape, 3):
            self._note(f"'Truth/euler' of shape {truth.shape} does not fit the {self.nav_shape} map; no true orientations taken")
            return None
        return np.asarray(truth[()], dtype=np.float64)

    @property
    def euler(self) -> np.ndarray | None:
        """Bunge Euler angles (rows, cols, 3) in radians, NaN where unknown; None when the file has none."""
        if self.flavour == "kikuchipy":
            cm = self._crystal_map()
            if cm is None:
                return None
            out = np.full((*self.nav_shape, 3), np.nan)
            flat = out.reshape(-1, 3)
            for k, name in enumerate(("phi1", "Phi", "phi2")):
                flat[cm["id"], k] = cm[name]
            return out
        angles = [self._per_point([name]) for name in ("phi1", "PHI", "phi2")]
        if any(a is None for a in angles):
            return None
        euler = np.stack(angles, axis=-1)
        if np.all(np.nan_to_num(euler) == 0):
            return None  # empty placeholders of the xcdskd notebooks
        return euler

    @property
    def phase_id(self) -> np.ndarray | None:
        """Phase of each point (rows, cols) as ids of :attr:`phases` (0: none), when the file records it.

        From a kikuchipy crystal map (its 0-based phase ids, -1 = not indexed)
        or the ``Truth/phase_id`` of a synthetic map; None otherwise.
        """
        if self.flavour == "kikuchipy":
            cm = self._crystal_map()
            if cm is None or "phase_id" not in cm:
                return None
            out = np.zeros(self.nav_shape, dtype=np.int64)
            stored = cm["phase_id"].astype(np.int64)
            out.reshape(-1)[cm["id"]] = np.where(stored >= 0, stored + 1, 0)  # phases are numbered from 1 here
            return out
        truth = self.header.get("Truth/phase_id")
        if isinstance(truth, h5py.Dataset) and truth.shape == self.nav_shape:
            return np.asarray(truth[()], dtype=np.int64)
        return None

    @property
    def phases(self) -> list[dict[str, Any]]:
        """Phases recorded in the file: dicts with ``id``, ``name``, ``space_group``, ``lattice`` (a, b, c in nm, angles in degrees)."""
        if not hasattr(self, "_phases"):
            self._phases = self._read_phases()
        return [dict(p) for p in self._phases]

    def _read_phases(self) -> list[dict[str, Any]]:
        """The phases, read once; a phase whose description cannot be read is kept by its id, with a warning."""
        out: list[dict[str, Any]] = []
        group = self.header.get("Phases")
        if isinstance(group, h5py.Group):
            keys = sorted(group, key=lambda k: (not k.strip().isdigit(), int(k) if k.strip().isdigit() else 0, k))
            for i, key in enumerate(keys, start=1):
                pid = int(key) if key.strip().isdigit() else i
                where = f"'{group.name.lstrip('/')}/{key}'"
                g = group[key]
                entry = _json_attr(g) if isinstance(g, h5py.Group) else None
                if entry is None and isinstance(g, h5py.Group) and "json" not in g.attrs:
                    entry = {"id": pid}
                if not isinstance(entry, dict):
                    self._note(f"{where}: attribute 'json' is not a JSON description of a phase ({_json_problem(g)}); phase {pid} is kept without name or lattice")
                    entry = {"id": pid}
                out.append(entry)
        elif self.flavour == "kikuchipy":
            base = self._file.get(f"{self.scan}/EBSD/CrystalMap/crystal_map/header/phases")
            if isinstance(base, h5py.Group):
                for key in base:
                    g = base[key]
                    where = f"'{base.name.lstrip('/')}/{key}'"
                    try:
                        out.append(_kikuchipy_phase(g, key))
                    except (KeyError, TypeError, ValueError, AttributeError) as exc:
                        self._note(f"{where}: the phase cannot be read ({type(exc).__name__}: {short_repr(str(exc), 80)}); left out")
        return out

    @property
    def processing(self) -> dict[str, Any] | None:
        """Parameters of the processing that made the 'Patterns' dataset, when recorded."""
        g = self.header.get("Processing")
        if not isinstance(g, h5py.Group) or "json" not in g.attrs:
            return None
        value = _json_attr(g)
        if not isinstance(value, dict):
            self._note(f"'{g.name.lstrip('/')}': attribute 'json' is not a JSON object of parameters ({_json_problem(g)}); the processing is not known")
            return None
        return value

    def _crystal_map(self) -> dict[str, np.ndarray] | None:
        """kikuchipy's crystal map (``id``, Euler angles, ``phase_id`` by point), checked once; None (with a warning) when unreadable."""
        if hasattr(self, "_cm"):
            return self._cm
        self._cm: dict[str, np.ndarray] | None = None
        g = self._file.get(f"{self.scan}/EBSD/CrystalMap/crystal_map/data")
        if not isinstance(g, h5py.Group):
            return None
        where = f"'{g.name.lstrip('/')}'"
        out: dict[str, np.ndarray] = {}
        n_points = self.nav_shape[0] * self.nav_shape[1]
        for name in ("id", "phi1", "Phi", "phi2", "phase_id"):
            ds = g.get(name)
            if ds is None and name == "phase_id":
                continue
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iuf":
                self._note(f"{where}: '{name}' is {'missing' if ds is None else 'not a numeric dataset'}; no orientations taken")
                return None
            out[name] = np.asarray(ds[()], dtype=np.float64).reshape(-1)
        sizes = {v.size for v in out.values()}
        ids = out["id"]
        if len(sizes) != 1 or not np.all((ids >= 0) & (ids < n_points) & (ids == np.round(ids))):
            self._note(f"{where}: 'id' and the angles disagree in length or 'id' holds points outside the {self.nav_shape} map; no orientations taken")
            return None
        out["id"] = ids.astype(np.int64)
        self._cm = out
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``kikuchi info``)."""
        out = super().describe()
        out["flavour"] = self.flavour
        return out


#: Header attributes that are numbers (checked when written, read as numbers).
_NUMERIC_ATTRS = ("SampleTilt", "CameraTilt", "AcceleratingVoltage", "Binning", "PixelSize")


def _fitting(patterns: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    """``patterns`` cast to ``dtype``; ValueError when values would change (out of range, NaN, fractions into integers)."""
    if patterns.dtype.kind not in "uifb":
        raise ArgumentTypeError(f"{where}: patterns of {patterns.dtype} are not numbers")
    if dtype.kind in "ui" and patterns.size and patterns.dtype.kind in "fiu":
        info = np.iinfo(dtype)
        if patterns.dtype.kind == "f" and not np.all(np.isfinite(patterns)):
            raise ArgumentValueError(f"{where}: NaN or infinite values cannot be stored as {dtype}; store float32 patterns or fill them first")
        lo, hi = patterns.min(), patterns.max()
        if lo < info.min or hi > info.max:
            raise ArgumentValueError(f"{where}: values {lo:g}..{hi:g} do not fit {dtype} ({info.min}..{info.max}); scale or clip them first")
    return patterns.astype(dtype)


def _bounded_map(pool: cf.Executor, func: Callable[[Any], Any], items: Iterator[Any], ahead: int) -> Iterator[Any]:
    """``pool.map(func, items)`` in order, with at most ``ahead`` items submitted and not yet taken."""
    pending: collections.deque = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(func, item))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for fut in pending:
            fut.cancel()


def _json_attr(group: h5py.Group) -> Any:
    """The attribute ``json`` of ``group`` decoded, or None when it is not JSON text."""
    raw = _scalar(group.attrs["json"]) if "json" in group.attrs else None
    if not isinstance(raw, str):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _json_problem(group: h5py.Group) -> str:
    """Why the attribute ``json`` of ``group`` is not what was expected, in a few words."""
    raw = _scalar(group.attrs["json"]) if "json" in group.attrs else None
    if not isinstance(raw, str):
        return f"it is {short_repr(raw)}"
    try:
        json.loads(raw)
    except ValueError as exc:
        return f"{short_repr(raw, 30)}: {exc}"
    return f"{short_repr(raw, 30)} is not an object"


def _kikuchipy_phase(g: h5py.Group, key: str) -> dict[str, Any]:
    """One phase of kikuchipy's crystal map header (``id`` from 1, lattice lengths in nm)."""
    lat = "structure/lattice/abcABG"
    name = g.get("name")
    sg = g.get("space_group")
    entry: dict[str, Any] = {
        "id": int(key) + 1,
        "name": str(_scalar(name[()])) if isinstance(name, h5py.Dataset) else f"phase{key}",
        "space_group": None,
    }
    if isinstance(sg, h5py.Dataset):
        value = _scalar(sg[()])
        entry["space_group"] = int(value) if str(value).strip().lstrip("-").isdigit() else None
        if entry["space_group"] is None:
            raise ValueError(f"space_group is {short_repr(value)}, not a space group number")
    abc_ds = g.get(lat)
    if isinstance(abc_ds, h5py.Dataset):
        abc = np.asarray(abc_ds[()], dtype=float).reshape(-1)
        if abc.size != 6 or not np.all(np.isfinite(abc)):
            raise ValueError(f"{lat} holds {abc.size} values; expected a, b, c, alpha, beta, gamma")
        lengths = abc[:3] / 10.0 if abc[:3].max() > 1.5 else abc[:3]  # Å -> nm when stored in Å
        entry["lattice"] = [*lengths.tolist(), *abc[3:].tolist()]
    return entry


def open_map(path: str | os.PathLike, *, scan: str | None = None, dataset: str | None = None, **options: Any) -> EBSDMap:
    """Open a file of EBSD patterns for lazy reading (any format: see :func:`kikuchi.io.source.open_map`).

    Parameters
    ----------
    path
        A pattern file: the kikuchi map file, kikuchipy h5ebsd, or a vendor's
        file (docs/formats.md).
    scan
        Scan group to read (HDF5 files); by default the first with patterns.
    dataset
        Pattern dataset: ``'RawPatterns'`` (default when present) or
        ``'Patterns'`` (processed).
    **options
        ``format=`` and the options of the format.

    Returns
    -------
    EBSDMap
    """
    return _open_any(path, scan=scan, dataset=dataset, **options)


def refuse_partial_output(path: Path) -> None:
    """Raise MapFileError when ``path`` is named as an output being written (``.NAME.partial``).

    kikuchi writes every output under ``.NAME.partial`` and renames it to
    ``NAME`` when it is complete (:func:`kikuchi.io._atomic.atomic_output`);
    a file of that name is an output still being written, or left by a
    command that was killed (``kikuchi process`` keeps it on purpose, for
    ``--resume``). It is never read as a map: its patterns may be missing or
    half written.
    """
    name = path.name
    if name.startswith(".") and name.endswith(".partial") and len(name) > len("..partial"):
        final = name[1 : -len(".partial")]
        raise MapFileError(
            f"{path}: an incomplete output (kikuchi writes {final} under this name and renames it when complete; "
            f"this one was killed or interrupted, or is still being written): not read; "
            f"run the command that writes {final} again (`kikuchi process ... --resume` continues it where it stopped)"
        )


def _sniff(probe: Probe) -> bool:
    if probe.path.name.startswith(".") and probe.path.name.endswith(".partial"):
        return True  # an output of kikuchi being written: MapFile refuses it, saying so
    f = probe.h5
    if f is None:
        return False
    for name in _scan_groups(f):
        header = f[name].get("EBSD/Header")
        if isinstance(header, h5py.Group) and ("NCOLS" in header or "n_columns" in header):
            return True
    return False


FORMAT = FormatSpec(
    name="kikuchi",
    description="kikuchi map file (xcdskd layout; also kikuchipy h5ebsd)",
    extensions=(".h5", ".hdf5", ".h5ebsd"),
    sniff=_sniff,
    open=MapFile,
)


class MapWriter:
    """Write a new map file chunk by chunk, atomically.

    The file is written under a temporary name (``.NAME.partial``) and
    renamed to ``path`` only when the ``with`` block ends without error;
    patterns are stored row-major. The BSE map is accumulated from the raw
    patterns as they are written.

    Parameters
    ----------
    path
        Output file.
    nav_shape
        Map (rows, cols).
    pattern_shape
        (height, width).
    dtype
        Pattern dtype (uint8, uint16 or float32).
    step_um
        (row step, column step) in µm.
    dataset
        'RawPatterns' for acquired patterns, 'Patterns' for processed ones.
    chunk_patterns
        Patterns per HDF5 chunk; default about 1 MiB per chunk.
    compression
        h5py filter keywords; default :data:`DEFAULT_COMPRESSION`.
    manufacturer
        Written to the root ``Manufacturer``.
    workers
        Threads that compress the chunks of a block given to :meth:`write`
        (default: all cores).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.h5"
    >>> with MapWriter(p, nav_shape=(2, 3), pattern_shape=(4, 5), dtype="uint8") as w:
    ...     w.write(0, np.arange(6 * 20, dtype=np.uint8).reshape(6, 4, 5))
    >>> with open_map(p) as m:
    ...     int(m.pattern(1, 2)[0, 0])
    100
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        nav_shape: tuple[int, int],
        pattern_shape: tuple[int, int],
        dtype: Any,
        step_um: tuple[float, float] = (1.0, 1.0),
        dataset: str = RAW,
        chunk_patterns: int | None = None,
        compression: dict[str, Any] | None = None,
        manufacturer: str = MANUFACTURER,
        workers: int | None = None,
    ):
        self.path = check_path(path)
        self.nav_shape = check_pair(nav_shape, "nav_shape")
        self.pattern_shape = check_pair(pattern_shape, "pattern_shape", what="(height, width)")
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            raise ArgumentTypeError(f"dtype={shown(dtype)}: expected uint8, uint16 or float32") from None
        if self.dtype.kind not in "uif" or self.dtype.itemsize > 8:
            raise ArgumentValueError(f"dtype={shown(dtype)}: map files hold patterns of uint8, uint16 or float32 (an integer or float type)")
        if not isinstance(step_um, (tuple, list, np.ndarray)) or len(step_um) != 2:
            raise ArgumentTypeError(f"step_um={shown(step_um)}: expected (row step, column step) in µm")
        self.step_um = (check_number(step_um[0], "step_um", positive=True, unit="µm"), check_number(step_um[1], "step_um", positive=True, unit="µm"))
        if dataset not in (RAW, PROCESSED):
            raise ArgumentValueError(f"dataset={shown(dataset)}: expected '{RAW}' (acquired patterns) or '{PROCESSED}' (processed)")
        self.dataset = dataset
        self.n_patterns = self.nav_shape[0] * self.nav_shape[1]
        if chunk_patterns is not None:
            chunk_patterns = check_count(chunk_patterns, "chunk_patterns")
        self.chunk_patterns = min(int(chunk_patterns), self.n_patterns) if chunk_patterns else default_chunk_patterns(self.pattern_shape, self.dtype, self.n_patterns)
        if compression is not None and not isinstance(compression, dict):
            raise ArgumentTypeError(f"compression={shown(compression)}: expected h5py filter keywords, e.g. {{'compression': 'gzip', 'compression_opts': 1}}")
        self.compression = DEFAULT_COMPRESSION if compression is None else compression
        self.manufacturer = manufacturer
        #: Threads that compress chunks (default: all cores).
        self.workers = check_count(workers, "workers") if workers is not None else available_cpus()
        self._pool: cf.ThreadPoolExecutor | None = None
        self._atomic = atomic_output(self.path)
        self._file: h5py.File | None = None
        self._patterns_ds: h5py.Dataset | None = None
        self._sums = np.zeros(self.n_patterns)
        self._n_filters: int | None = None
        self._written = np.zeros(self.n_patterns, dtype=bool)
        self._done = False  # True once the with block has ended

    @property
    def partial_path(self) -> Path:
        return partial_path(self.path)

    # -- context manager -----------------------------------------------------
    def __enter__(self) -> MapWriter:
        if self._file is not None:
            raise ValueError(f"{self.path}: this MapWriter was used already; make a new one for each file")
        tmp = self._atomic.__enter__()
        try:
            self._file = OutputH5File(tmp, "w")  # a full disk: one clear error at close, never a crash of HDF5
            self._init_layout()
        except BaseException as err:  # e.g. a compression h5py does not know: no file left open or behind
            if self._file is not None:
                self._file.close()
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._file is not None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        try:
            if exc_type is None:
                self._finish()
        except BaseException as err:
            self._file.close()
            self._done = True
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._file.close()
        self._done = True
        return bool(self._atomic.__exit__(exc_type, exc, tb))

    @property
    def h5(self) -> h5py.File:
        """The file being written (for additional groups)."""
        if self._file is None or self._done:
            raise ValueError(f"{self.path}: MapWriter is used outside its 'with' block (write inside 'with MapWriter(...) as w:')")
        return self._file

    @property
    def data(self) -> h5py.Group:
        return self.h5["Scan/EBSD/Data"]

    @property
    def _patterns(self) -> h5py.Dataset:
        """The patterns dataset, looked up once (a lookup by path costs about 0.2 ms: per chunk, it showed)."""
        if self._patterns_ds is None or not self._patterns_ds.id.valid:
            self._patterns_ds = self.data[self.dataset]
        return self._patterns_ds

    @property
    def header(self) -> h5py.Group:
        return self.h5["Scan/EBSD/Header"]

    def _init_layout(self) -> None:
        f = self.h5
        rows, cols = self.nav_shape
        n = self.n_patterns
        f["Manufacturer"] = self.manufacturer
        f["Version"] = FORMAT_VERSION
        data = f.create_group("Scan/EBSD/Data")
        header = f.create_group("Scan/EBSD/Header")
        data.create_dataset(
            self.dataset,
            shape=(n, *self.pattern_shape),
            dtype=self.dtype,
            chunks=(self.chunk_patterns, *self.pattern_shape),
            **self.compression,
        )
        r, c = np.divmod(np.arange(n, dtype=np.int64), cols)
        data["X BEAM"] = c.astype(np.int32)
        data["Y BEAM"] = r.astype(np.int32)
        data["X Position"] = (c * self.step_um[1]).astype(np.float32)
        data["Y Position"] = (r * self.step_um[0]).astype(np.float32)
        for name in ("PCX", "PCY", "DD", "phi1", "PHI", "phi2"):
            data.create_dataset(name, shape=(n,), dtype=np.float32, fillvalue=np.nan)
        header["NCOLS"] = np.int32(cols)
        header["NROWS"] = np.int32(rows)
        header["PatternHeight"] = np.int32(self.pattern_shape[0])
        header["PatternWidth"] = np.int32(self.pattern_shape[1])
        header["X Resolution"] = np.float32(self.step_um[1])
        header["Y Resolution"] = np.float32(self.step_um[0])
        header["indexmap"] = np.arange(n, dtype=np.int64).reshape(rows, cols)
        header["maplist"] = np.stack([np.arange(n), c, r], axis=1).astype(np.int64)
        header.attrs["GridType"] = "square"

    # -- writing -----------------------------------------------------------
    @property
    def can_encode(self) -> bool:
        """True when :meth:`encode_chunk` can produce this file's stored chunks (gzip with or without shuffle, or none)."""
        c = self.compression
        known = {"compression", "compression_opts", "shuffle"}
        return set(c) <= known and c.get("compression") in (None, "gzip")

    def encode_chunk(self, patterns: np.ndarray) -> bytes | np.ndarray | None:
        """The stored bytes of one chunk, filtered exactly as HDF5 would (shuffle, deflate).

        Thread-safe and releases the GIL while compressing (zlib), so a pool
        of threads can compress chunks while the main thread writes them with
        ``write(start, patterns, encoded=...)``. ``patterns`` are the chunk's
        patterns (at most :attr:`chunk_patterns`; a short last chunk is
        padded with zeros as HDF5 stores it). Returns None when the filter
        cannot be reproduced here (e.g. lzf); ``write`` then compresses.
        Chunks that deflate would shrink by less than a tenth (noisy 8-bit
        patterns: 2-10 %; judged on a sixteenth of the chunk, see
        :func:`_deflate_pays`) are not compressed: they are returned as their
        unfiltered bytes, and ``write`` stores them with HDF5's filter mask
        saying so, which every HDF5 reader honours. Compressing them cost as
        much CPU as processing them, and every later read as much again.

        Unfiltered bytes are a uint8 array, a view of ``patterns`` where they
        are already the stored bytes (no copy of what can be a GB of output):
        keep ``patterns`` unchanged until the chunk is written. Filtered bytes
        are ``bytes``.
        """
        if not self.can_encode:
            return None
        patterns = np.asarray(patterns)
        if patterns.dtype != self.dtype:
            patterns = _fitting(patterns, self.dtype, f"{self.path}: a chunk of patterns")
        n = patterns.shape[0]
        if n > self.chunk_patterns or patterns.shape[1:] != self.pattern_shape:
            raise ValueError(f"a chunk holds at most {self.chunk_patterns} patterns of {self.pattern_shape}, got {patterns.shape}")
        if n < self.chunk_patterns:
            full = np.zeros((self.chunk_patterns, *self.pattern_shape), dtype=self.dtype)
            full[:n] = patterns
            patterns = full
        raw = np.ascontiguousarray(patterns).view(np.uint8)
        size = self.dtype.itemsize
        if self.compression.get("shuffle") and size > 1:
            raw = _shuffle(raw, size)
        if self.compression.get("compression") == "gzip":
            level = 4 if self.compression.get("compression_opts") is None else int(self.compression["compression_opts"])
            if not _deflate_pays(raw.reshape(-1), level):
                return np.ascontiguousarray(patterns).reshape(-1).view(np.uint8)  # stored as it is, filters marked skipped
            return _deflate(raw, level)
        return raw.reshape(-1)

    def write(
        self, start: int, patterns: np.ndarray, *, encoded: bytes | np.ndarray | None = None, sums: np.ndarray | None = None
    ) -> None:
        """Write patterns at storage indices ``start:start+len(patterns)`` (row-major).

        ``encoded``: the chunk as made by :meth:`encode_chunk` from the same
        patterns, for a block that is exactly one chunk (``start`` a multiple
        of :attr:`chunk_patterns`); it is stored without compressing again.
        ``sums``: each pattern's sum of intensities (float64), when the caller
        computed them off this thread (they make the BSE map).
        """
        patterns = np.asarray(patterns)
        if patterns.ndim != 3:
            raise ValueError(f"{self.path}: patterns of shape {patterns.shape}; expected a stack (n, {self.pattern_shape[0]}, {self.pattern_shape[1]})")
        if patterns.shape[1:] != self.pattern_shape:
            raise ValueError(f"{self.path}: patterns of shape {patterns.shape[1:]} do not fit this map's {self.pattern_shape}")
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
            raise ArgumentTypeError(f"start={shown(start)}: expected the storage index (a whole number) of the first pattern")
        start = int(start)
        stop = start + patterns.shape[0]
        if start < 0 or stop > self.n_patterns:
            raise MapPositionError(f"{self.path}: patterns {start}:{stop} outside the map of {self.n_patterns} patterns")
        if sums is not None and np.shape(sums) != (stop - start,):
            raise ValueError(f"{self.path}: sums of shape {np.shape(sums)} for patterns {start}:{stop}; expected ({stop - start},)")
        if patterns.dtype != self.dtype:
            patterns = _fitting(patterns, self.dtype, f"{self.path}: patterns {start}:{stop}")
        one_chunk = start % self.chunk_patterns == 0 and (
            patterns.shape[0] == self.chunk_patterns or stop == self.n_patterns
        ) and patterns.shape[0] <= self.chunk_patterns
        if encoded is not None and one_chunk:
            self._store_chunk(start, encoded)
        elif self.can_encode:
            self._write_encoded(start, patterns)
        else:
            self._patterns[start:stop] = patterns
        if self.dataset == RAW:
            if sums is not None:
                self._sums[start:stop] = sums
            else:
                self._sums[start:stop] = patterns.reshape(patterns.shape[0], -1).sum(axis=1, dtype=np.float64)
        self._written[start:stop] = True

    def _write_encoded(self, start: int, patterns: np.ndarray) -> None:
        """Store the whole chunks of a block compressed here, on all cores, and the rest through h5py.

        The chunks are deflated by :meth:`encode_chunk` (ISA-L, outside the
        GIL) on a pool of :attr:`workers` threads, a few at a time, and
        stored as they are with ``write_direct_chunk``: no per-pattern work and
        no HDF5 filter pipeline. The parts of the block that fill a chunk
        only partly go through h5py (which merges them with what the chunk
        holds). Returns when everything is written.
        """
        ds = self._patterns
        cp = self.chunk_patterns
        stop = start + len(patterns)
        first = -(-start // cp) * cp  # the first chunk boundary at or after start
        last = stop if stop == self.n_patterns else stop // cp * cp  # the end of the last whole chunk
        if first >= last:
            ds[start:stop] = patterns
            return
        if first > start:
            ds[start:first] = patterns[: first - start]
        offsets = list(range(first, last, cp))
        pieces = (patterns[o - start : min(o + cp, stop) - start] for o in offsets)
        if len(offsets) == 1 or self.workers == 1:
            blobs: Any = map(self.encode_chunk, pieces)
        else:
            blobs = _bounded_map(self._encoder(), self.encode_chunk, pieces, 2 * self.workers)
        for offset, blob in zip(offsets, blobs):
            self._store_chunk(offset, blob)
        if last < stop:
            ds[last:stop] = patterns[last - start :]

    def _store_chunk(self, offset: int, blob: bytes | np.ndarray) -> None:
        """Store one chunk made by :meth:`encode_chunk`: ``bytes`` went through the dataset's filters, a uint8
        array did not (its filter mask marks every filter skipped)."""
        ds = self._patterns
        if isinstance(blob, np.ndarray) and self._n_filters is None:
            self._n_filters = ds.id.get_create_plist().get_nfilters()
        mask = (1 << self._n_filters) - 1 if isinstance(blob, np.ndarray) and self._n_filters else 0
        ds.id.write_direct_chunk((offset, 0, 0), blob, filter_mask=mask)

    def _encoder(self) -> cf.ThreadPoolExecutor:
        if self._pool is None:
            self._pool = cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="kikuchi-deflate")
        return self._pool

    def write_rows(self, start_row: int, patterns: np.ndarray) -> None:
        """Write whole map rows, patterns of shape (n_rows, cols, h, w)."""
        self.write(start_row * self.nav_shape[1], np.asarray(patterns).reshape(-1, *self.pattern_shape))

    def set_missing(self, missing: np.ndarray) -> None:
        """Mark map points (rows, cols) bool that have no pattern (zeros were written there): indexmap -1, BSE NaN."""
        missing = np.asarray(missing, dtype=bool)
        if missing.shape != self.nav_shape:
            raise ValueError(f"missing points of shape {missing.shape} for a {self.nav_shape} map")
        if missing.any():
            index = np.arange(self.n_patterns, dtype=np.int64).reshape(self.nav_shape)
            self.header["indexmap"][...] = np.where(missing, -1, index)
            self._sums[missing.reshape(-1)] = np.nan

    def set_static_background(self, background: np.ndarray) -> None:
        background = np.asarray(background)
        if background.shape != self.pattern_shape:
            raise ValueError(f"static background of shape {background.shape} does not fit patterns of {self.pattern_shape}")
        if "StaticBackground" in self.data:
            del self.data["StaticBackground"]
        self.data["StaticBackground"] = background

    def set_pattern_centre(self, pcx: Any, pcy: Any, dd: Any, *, convention: str) -> None:
        """Pattern centre, one value for the map or one per point, and its convention."""
        from kikuchi.geometry.pattern_centre import normalize_convention

        if convention != "unknown":
            convention = normalize_convention(convention)
        values = []
        for name, value in (("PCX", pcx), ("PCY", pcy), ("DD", dd)):
            array = np.asarray(value)
            if array.dtype.kind not in "iuf":
                raise ArgumentTypeError(f"{self.path}: pattern centre {name} {shown(value)}: expected numbers")
            if array.size not in (1, self.n_patterns):
                raise ArgumentValueError(
                    f"{self.path}: pattern centre {name} holds {array.size} values; give one for the map or one per point ({self.n_patterns})"
                )
            values.append(np.broadcast_to(array.astype(np.float32).reshape(-1), (self.n_patterns,)))
        for name, value in zip(("PCX", "PCY", "DD"), values):
            self.data[name][:] = value
        self.header.attrs["PCConvention"] = convention

    def set_euler(self, euler: np.ndarray) -> None:
        """Bunge Euler angles in radians, shape (rows, cols, 3) or (N, 3)."""
        euler = np.asarray(euler)
        if euler.dtype.kind not in "iuf":
            raise ArgumentTypeError(f"{self.path}: Euler angles of {euler.dtype}: expected numbers (radians)")
        if euler.size != 3 * self.n_patterns or euler.shape[-1] != 3:
            raise ArgumentValueError(
                f"{self.path}: Euler angles of shape {euler.shape}; expected {(*self.nav_shape, 3)} or ({self.n_patterns}, 3)"
            )
        euler = euler.astype(np.float32).reshape(self.n_patterns, 3)
        for k, name in enumerate(("phi1", "PHI", "phi2")):
            self.data[name][:] = euler[:, k]

    def set_phases(self, phases: Sequence[dict[str, Any]]) -> None:
        """Phases as JSON-ready dicts (``id``, ``name``, ``space_group``, ``lattice``, ...)."""
        if isinstance(phases, (str, bytes, dict)) or not all(isinstance(p, dict) for p in phases):
            raise ArgumentTypeError(f"{self.path}: phases={shown(phases)}: expected a list of dicts (id, name, space_group, lattice)")
        if "Phases" in self.header:
            del self.header["Phases"]
        group = self.header.create_group("Phases")
        for i, phase in enumerate(phases, start=1):
            entry = {"id": i, **phase}
            g = group.create_group(str(entry["id"]))
            g.attrs["json"] = json.dumps(entry)

    def set_processing(self, parameters: dict[str, Any]) -> None:
        """Record the parameters that made this file's patterns."""
        g = self.header.require_group("Processing")
        g.attrs["json"] = json.dumps(parameters, default=str)

    def set_attrs(self, **attrs: Any) -> None:
        """Header attributes: SampleTilt, CameraTilt, AcceleratingVoltage, Binning, PixelSize, ... (the first five numbers)."""
        for key, value in attrs.items():
            if value is None:
                continue
            if key in _NUMERIC_ATTRS:
                value = check_number(value, key)
            try:
                self.header.attrs[key] = value
            except TypeError:
                raise ArgumentTypeError(f"{key}={shown(value)}: a header attribute is a number, a string or an array of them") from None

    def _finish(self) -> None:
        if not self._written.all():
            missing = int(np.flatnonzero(~self._written)[0])
            row, col = divmod(missing, self.nav_shape[1])
            raise MapFileError(
                f"{self.path}: {int((~self._written).sum())} of {self.n_patterns} patterns were never written "
                f"(first at map position row {row}, col {col})"
            )
        if self.dataset == RAW:
            npx = self.pattern_shape[0] * self.pattern_shape[1]
            self.data["bse_map"] = (self._sums / npx).reshape(self.nav_shape)
