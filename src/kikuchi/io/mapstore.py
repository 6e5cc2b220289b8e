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

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi.io._atomic import atomic_output, partial_path
from kikuchi.io._h5 import H5Map, H5Patterns, scalar
from kikuchi.io._h5 import deflate as _deflate
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
    "FORMAT",
]

_logger = logging.getLogger(__name__)

RAW = "RawPatterns"
PROCESSED = "Patterns"
MANUFACTURER = "kikuchi"
FORMAT_VERSION = "1.0"
#: HDF5 filter of new pattern datasets; chosen by measurement, see docs/mapfile.md.
DEFAULT_COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1, "shuffle": True}

_scalar = scalar


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
        if name not in f or f"EBSD/{part}" not in f[name]:
            raise MapFileError(f"{path}: no '{name}/EBSD/{part}' group")
    header = f[f"{name}/EBSD/Header"]
    data = f[f"{name}/EBSD/Data"]
    try:
        if "NCOLS" in header:
            flavour = "xcdskd"
            ncols, nrows = int(_scalar(header["NCOLS"][()])), int(_scalar(header["NROWS"][()]))
            candidates = {RAW: RAW, PROCESSED: PROCESSED}
        elif "n_columns" in header:
            flavour = "kikuchipy"
            ncols, nrows = int(_scalar(header["n_columns"][()])), int(_scalar(header["n_rows"][()]))
            candidates = {RAW: "patterns"}
        else:
            raise MapFileError(f"{path}: '{name}/EBSD/Header' has neither NCOLS/NROWS nor n_columns/n_rows")
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, MapFileError):
            raise
        raise MapFileError(f"{path}: '{name}/EBSD/Header' map size is unreadable ({exc})") from None
    if nrows < 0 or ncols < 0:
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

    def _open(self, *, scan: str | None = None, dataset: str | None = None) -> None:
        self._layout = _find_layout(self._file, self.path, scan)
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

    def _number_attr(self, name: str, default: float) -> float:
        value = self._attr(name, default)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise MapFileError(f"{self.path}: header attribute {name} = {value!r} is not a number") from None

    # -- shapes --------------------------------------------------------------
    @property
    def chunk_patterns(self) -> int:
        """Patterns per stored HDF5 chunk (the natural read size)."""
        chunks = self._patterns.chunks
        return int(chunks[0]) if chunks else default_chunk_patterns(self.pattern_shape, self.dtype, self.n_patterns)

    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step) in µm."""
        h = self.header
        if self.flavour == "kikuchipy":
            return (float(_scalar(h["step_y"][()])), float(_scalar(h["step_x"][()])))
        dy = float(_scalar(h["Y Resolution"][()])) if "Y Resolution" in h else 1.0
        dx = float(_scalar(h["X Resolution"][()])) if "X Resolution" in h else 1.0
        return (dy, dx)

    @property
    def grid_type(self) -> str:
        if self.flavour == "kikuchipy" and "grid_type" in self.header:
            return "hexagonal" if "hex" in str(_scalar(self.header["grid_type"][()])).lower() else "square"
        return str(self._attr("GridType", "square"))

    # -- index map -----------------------------------------------------------
    def _beam(self) -> tuple[np.ndarray, np.ndarray] | None:
        d = self.data
        for xname, yname in (("X BEAM", "Y BEAM"), ("BEAM X", "BEAM Y")):
            if xname in d and yname in d:
                return np.asarray(d[xname][()], dtype=np.int64), np.asarray(d[yname][()], dtype=np.int64)
        return None

    def _read_index_map(self, n: int) -> np.ndarray:
        rows, cols = self._layout.nrows, self._layout.ncols
        if "indexmap" in self.header:
            index_map = np.asarray(self.header["indexmap"][()], dtype=np.int64)
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
            if name in group:
                bg = np.asarray(group[name][()])
                if bg.shape == self.pattern_shape:
                    return bg
                _logger.warning("%s: static background of shape %s ignored (patterns are %s)", self.path, bg.shape, self.pattern_shape)
        return None

    @property
    def stored_bse_map(self) -> np.ndarray | None:
        if "bse_map" in self.data and self.data["bse_map"].shape == self.nav_shape:
            return np.asarray(self.data["bse_map"][()], dtype=np.float64)
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
            if name in self.data and self.data[name].shape == (self.n_patterns,):
                return place_patterns(np.asarray(self.data[name][()], dtype=np.float64), self._index_map)
        return None

    @property
    def pattern_centre(self) -> PatternCentreData | None:
        """Per-point pattern centre and its convention, or None when unknown."""
        if self.flavour == "kikuchipy":
            h = self.header
            if "pcx" not in h:
                return None
            pcs = [np.broadcast_to(np.asarray(h[k][()], dtype=np.float64), self.nav_shape).copy() for k in ("pcx", "pcy", "pcz")]
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
        if self.flavour == "kikuchipy":
            return float(_scalar(self.header["sample_tilt"][()])) if "sample_tilt" in self.header else 70.0
        return self._number_attr("SampleTilt", 70.0)

    @property
    def camera_tilt_deg(self) -> float:
        if self.flavour == "kikuchipy":
            return float(_scalar(self.header["elevation_angle"][()])) if "elevation_angle" in self.header else 0.0
        return self._number_attr("CameraTilt", 0.0)

    @property
    def kv(self) -> float | None:
        """Accelerating voltage in kV, when known."""
        if self.flavour == "kikuchipy":
            sem = f"{self.scan}/SEM/Header/beam_energy"
            return float(_scalar(self._file[sem][()])) if sem in self._file else None
        value = self._attr("AcceleratingVoltage")
        return None if value is None else float(value)

    @property
    def binning(self) -> int:
        if self.flavour == "kikuchipy":
            return int(_scalar(self.header["binning"][()])) if "binning" in self.header else 1
        return int(self._attr("Binning", 1))

    @property
    def pixel_size_um(self) -> float | None:
        if self.flavour == "kikuchipy":
            if "detector_pixel_size" in self.header:
                return float(np.asarray(self.header["detector_pixel_size"][()]).ravel()[0]) or None
            return None
        value = self._attr("PixelSize")
        return None if value is None else float(np.asarray(value).ravel()[0])

    @property
    def truth_euler(self) -> np.ndarray | None:
        if "Truth" in self.header and "euler" in self.header["Truth"]:
            return np.asarray(self.header["Truth/euler"][()], dtype=np.float64)
        return None

    @property
    def euler(self) -> np.ndarray | None:
        """Bunge Euler angles (rows, cols, 3) in radians, NaN where unknown; None when the file has none."""
        if self.flavour == "kikuchipy":
            cm = f"{self.scan}/EBSD/CrystalMap/crystal_map/data"
            if cm not in self._file:
                return None
            g = self._file[cm]
            ids = np.asarray(g["id"][()], dtype=np.int64)
            out = np.full((*self.nav_shape, 3), np.nan)
            flat = out.reshape(-1, 3)
            for k, name in enumerate(("phi1", "Phi", "phi2")):
                flat[ids, k] = np.asarray(g[name][()], dtype=np.float64)
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
            cm = f"{self.scan}/EBSD/CrystalMap/crystal_map/data"
            if cm not in self._file or "phase_id" not in self._file[cm]:
                return None
            g = self._file[cm]
            out = np.zeros(self.nav_shape, dtype=np.int64)
            ids = np.asarray(g["id"][()], dtype=np.int64)
            stored = np.asarray(g["phase_id"][()], dtype=np.int64)
            out.reshape(-1)[ids] = np.where(stored >= 0, stored + 1, 0)  # phases are numbered from 1 here
            return out
        truth = self.header.get("Truth/phase_id")
        if isinstance(truth, h5py.Dataset) and truth.shape == self.nav_shape:
            return np.asarray(truth[()], dtype=np.int64)
        return None

    @property
    def phases(self) -> list[dict[str, Any]]:
        """Phases recorded in the file: dicts with ``id``, ``name``, ``space_group``, ``lattice`` (a, b, c in nm, angles in degrees)."""
        out: list[dict[str, Any]] = []
        if "Phases" in self.header:
            for key in sorted(self.header["Phases"], key=int):
                g = self.header["Phases"][key]
                out.append(json.loads(_scalar(g.attrs["json"])) if "json" in g.attrs else {"id": int(key)})
        elif self.flavour == "kikuchipy":
            base = f"{self.scan}/EBSD/CrystalMap/crystal_map/header/phases"
            if base in self._file:
                for key in self._file[base]:
                    g = self._file[base][key]
                    lat = "structure/lattice/abcABG"
                    entry: dict[str, Any] = {
                        "id": int(key) + 1,
                        "name": _scalar(g["name"][()]) if "name" in g else f"phase{key}",
                        "space_group": int(_scalar(g["space_group"][()])) if "space_group" in g else None,
                    }
                    if lat in g:
                        abc = np.asarray(g[lat][()], dtype=float)
                        lengths = abc[:3] / 10.0 if abc[:3].max() > 1.5 else abc[:3]  # Å -> nm when stored in Å
                        entry["lattice"] = [*lengths.tolist(), *abc[3:].tolist()]
                    out.append(entry)
        return out

    @property
    def processing(self) -> dict[str, Any] | None:
        """Parameters of the processing that made the 'Patterns' dataset, when recorded."""
        if "Processing" in self.header and "json" in self.header["Processing"].attrs:
            return json.loads(_scalar(self.header["Processing"].attrs["json"]))
        return None

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``kikuchi info``)."""
        out = super().describe()
        out["flavour"] = self.flavour
        return out


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


def _sniff(probe: Probe) -> bool:
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
    ):
        self.path = Path(path)
        self.nav_shape = (int(nav_shape[0]), int(nav_shape[1]))
        self.pattern_shape = (int(pattern_shape[0]), int(pattern_shape[1]))
        self.dtype = np.dtype(dtype)
        self.step_um = (float(step_um[0]), float(step_um[1]))
        self.dataset = dataset
        self.n_patterns = self.nav_shape[0] * self.nav_shape[1]
        if self.n_patterns <= 0 or min(self.pattern_shape) <= 0:
            raise ValueError(f"empty map or pattern shape: map {self.nav_shape}, pattern {self.pattern_shape}")
        self.chunk_patterns = min(int(chunk_patterns), self.n_patterns) if chunk_patterns else default_chunk_patterns(self.pattern_shape, self.dtype, self.n_patterns)
        self.compression = DEFAULT_COMPRESSION if compression is None else compression
        self.manufacturer = manufacturer
        self._atomic = atomic_output(self.path)
        self._file: h5py.File | None = None
        self._sums = np.zeros(self.n_patterns)
        self._written = np.zeros(self.n_patterns, dtype=bool)

    @property
    def partial_path(self) -> Path:
        return partial_path(self.path)

    # -- context manager -----------------------------------------------------
    def __enter__(self) -> MapWriter:
        tmp = self._atomic.__enter__()
        try:
            self._file = h5py.File(tmp, "w")
            self._init_layout()
        except BaseException as err:  # e.g. a compression h5py does not know: no file left open or behind
            if self._file is not None:
                self._file.close()
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        assert self._file is not None
        try:
            if exc_type is None:
                self._finish()
        except BaseException as err:
            self._file.close()
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._file.close()
        return bool(self._atomic.__exit__(exc_type, exc, tb))

    @property
    def h5(self) -> h5py.File:
        """The file being written (for additional groups)."""
        if self._file is None:
            raise RuntimeError("MapWriter is used outside its 'with' block")
        return self._file

    @property
    def data(self) -> h5py.Group:
        return self.h5["Scan/EBSD/Data"]

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

    def encode_chunk(self, patterns: np.ndarray) -> bytes | None:
        """The stored bytes of one chunk, filtered exactly as HDF5 would (shuffle, deflate).

        Thread-safe and releases the GIL while compressing (zlib), so a pool
        of threads can compress chunks while the main thread writes them with
        ``write(start, patterns, encoded=...)``. ``patterns`` are the chunk's
        patterns (at most :attr:`chunk_patterns`; a short last chunk is
        padded with zeros as HDF5 stores it). Returns None when the filter
        cannot be reproduced here (e.g. lzf); ``write`` then compresses.
        """
        if not self.can_encode:
            return None
        patterns = np.asarray(patterns, dtype=self.dtype)
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
            raw = np.ascontiguousarray(raw.reshape(-1, size).T)
        if self.compression.get("compression") == "gzip":
            level = self.compression.get("compression_opts")
            return _deflate(raw, 4 if level is None else int(level))
        return raw.tobytes()

    def write(self, start: int, patterns: np.ndarray, *, encoded: bytes | None = None) -> None:
        """Write patterns at storage indices ``start:start+len(patterns)`` (row-major).

        ``encoded``: the chunk as made by :meth:`encode_chunk` from the same
        patterns, for a block that is exactly one chunk (``start`` a multiple
        of :attr:`chunk_patterns`); it is stored without compressing again.
        """
        patterns = np.asarray(patterns)
        if patterns.ndim != 3 or patterns.shape[1:] != self.pattern_shape:
            raise ValueError(f"patterns of shape {patterns.shape[1:]} do not fit this map's {self.pattern_shape}")
        stop = start + patterns.shape[0]
        if start < 0 or stop > self.n_patterns:
            raise MapPositionError(f"patterns {start}:{stop} outside the map of {self.n_patterns} patterns")
        if patterns.dtype != self.dtype:
            patterns = patterns.astype(self.dtype)
        one_chunk = start % self.chunk_patterns == 0 and (
            patterns.shape[0] == self.chunk_patterns or stop == self.n_patterns
        ) and patterns.shape[0] <= self.chunk_patterns
        if encoded is not None and one_chunk:
            self.data[self.dataset].id.write_direct_chunk((start, 0, 0), encoded)
        else:
            self.data[self.dataset][start:stop] = patterns
        if self.dataset == RAW:
            self._sums[start:stop] = patterns.reshape(patterns.shape[0], -1).sum(axis=1, dtype=np.float64)
        self._written[start:stop] = True

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
        for name, value in (("PCX", pcx), ("PCY", pcy), ("DD", dd)):
            self.data[name][:] = np.broadcast_to(np.asarray(value, dtype=np.float32).reshape(-1), (self.n_patterns,))
        self.header.attrs["PCConvention"] = convention

    def set_euler(self, euler: np.ndarray) -> None:
        """Bunge Euler angles in radians, shape (rows, cols, 3) or (N, 3)."""
        euler = np.asarray(euler, dtype=np.float32).reshape(self.n_patterns, 3)
        for k, name in enumerate(("phi1", "PHI", "phi2")):
            self.data[name][:] = euler[:, k]

    def set_phases(self, phases: Sequence[dict[str, Any]]) -> None:
        """Phases as JSON-ready dicts (``id``, ``name``, ``space_group``, ``lattice``, ...)."""
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
        """Header attributes: SampleTilt, CameraTilt, AcceleratingVoltage, Binning, PixelSize, ..."""
        for key, value in attrs.items():
            if value is not None:
                self.header.attrs[key] = value

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
