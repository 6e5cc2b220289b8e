"""Bruker Esprit h5ebsd: pattern maps written by Bruker Nano's Esprit, read lazily.

Layout (Esprit 2.x; the names are Bruker's)::

    /Manufacturer                       "Bruker Nano"
    /Version                            "Esprit 2.X"
    /<scan>/EBSD/Data/RawPatterns       (N, h, w) uint8|uint16, in storage order
    /<scan>/EBSD/Data/PCX, PCY, DD      (N,) pattern centre per pattern (Bruker convention)
    /<scan>/EBSD/Data/phi1, PHI, phi2   (N,) Bunge Euler angles in degrees
    /<scan>/EBSD/Data/Phase, MAD, ...   (N,) per pattern (Phase 0: not indexed)
    /<scan>/EBSD/Header/NCOLS, NROWS, XSTEP, YSTEP (µm), SampleTilt, CameraTilt, KV,
                        PatternHeight, PatternWidth, StaticBackground (h, w),
                        DetectorFullWidthMicrons, DetectorFullHeightMicrons,
                        UnClippedPatternHeight, TopClip, Grid Type ("isometric"),
                        Phases/<k>/Name, Formula, IT, LatticeConstants (Å, degrees)
    /<scan>/SEM/SEM IX, SEM IY          (N,) map column and row of stored pattern i
    /<scan>/EBSD/SEM/IX, IY             (N,) the same, for ROI files (present only there)

Where each stored pattern goes on the map:

* **ROI files** (``EBSD/SEM/IX, IY`` present): the map is the bounding box of
  the ROI; pattern ``k`` sits at ``(IY[k] - min(IY), IX[k] - min(IX))``; points of
  the box outside a non-rectangular ROI have no pattern.
* **full maps** with ``SEM/SEM IX, SEM IY`` holding one entry per pattern: the
  map is ``NROWS x NCOLS`` and pattern ``i`` sits at ``(SEM IY[i], SEM IX[i])``
  (Esprit may store patterns out of order; EMsoft's ``patternmod.f90`` reorders
  by these).
* otherwise (``SEM IX/IY`` of one element, as kikuchipy's dummy files): row-major.

Patterns are read in storage order; the index map places them. Every
per-pattern value (PC, Euler angles, phase) is placed through the same index
map, so it follows its pattern.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi.io._atomic import atomic_output
from kikuchi.io._h5 import H5Map, H5Patterns, header_number, scalar
from kikuchi.io.source import (
    EBSDMap,
    FormatSpec,
    MapFileError,
    PatternCentreData,
    Probe,
    default_chunk_patterns,
    index_map_from_positions,
    place_patterns,
    short_repr,
)

__all__ = ["BrukerH5EBSD", "FORMAT", "write_bruker_h5"]

_logger = logging.getLogger(__name__)

MANUFACTURER = "Bruker Nano"
RAW = "RawPatterns"
PROCESSED = "Patterns"
#: Chunk cache per open file, so neighbouring patterns are decoded once.


# -- small helpers -------------------------------------------------------------------
def _manufacturer(f: h5py.File) -> str:
    """The root ``Manufacturer`` (dataset or attribute, any surrounding spaces), or ''."""
    for key in list(f.keys()) + list(f.attrs.keys()):
        if key.strip().lower() == "manufacturer":
            try:
                value = f[key][()] if key in f and isinstance(f[key], h5py.Dataset) else f.attrs[key]
                return str(scalar(value)).strip().strip("\x00")
            except (KeyError, TypeError, ValueError, OSError):
                return ""
    return ""


def _scan_groups(f: h5py.File) -> list[str]:
    """Top-level groups with ``EBSD/Data`` and ``EBSD/Header``, in file order."""
    out = []
    for key in f.keys():
        g = f.get(key)
        if isinstance(g, h5py.Group) and isinstance(g.get("EBSD/Data"), h5py.Group) and isinstance(g.get("EBSD/Header"), h5py.Group):
            out.append(key)
    return out


def _per_pattern(ds: Any, n: int) -> tuple[np.ndarray, int]:
    """A per-pattern dataset as float64 (n,), NaN past its end; and its stored length."""
    values = np.asarray(ds[()], dtype=np.float64).reshape(-1)
    m = values.size
    if m == 1:  # one value for the whole map
        return np.full(n, values[0]), m
    if m >= n:
        return values[:n], m
    out = np.full(n, np.nan)
    out[:m] = values
    return out, m


class BrukerH5EBSD(H5Map):
    """A Bruker Esprit h5ebsd file, read lazily. Use :func:`kikuchi.open`.

    Parameters
    ----------
    path
        The ``.h5`` file.
    scan
        Scan group (default: the first with ``EBSD/Data`` and ``EBSD/Header``, e.g. ``'Scan 0'``).
    dataset
        ``'RawPatterns'`` (default) or ``'Patterns'`` where a file has processed patterns too.

    Raises
    ------
    MapFileError
        Not an HDF5 file, no scan group, no pattern dataset, an empty or
        malformed one, a missing or non-numeric map size, positions outside
        the map (the message names the file and the dataset).
    """

    format = "bruker"

    # -- opening -------------------------------------------------------------------
    def _open(self, *, scan: str | None = None, dataset: str | None = None) -> None:
        f = self._file
        scans = _scan_groups(f)
        if scan is None:
            if not scans:
                raise MapFileError(f"{self.path}: no scan group with 'EBSD/Data' and 'EBSD/Header' (expected e.g. 'Scan 0/EBSD/Data/RawPatterns')")
            scan = scans[0]
        elif scan not in scans:
            raise MapFileError(f"{self.path}: no scan '{scan}' with 'EBSD/Data' and 'EBSD/Header' (scans: {', '.join(scans) or 'none'})")
        self._scan = scan
        self._manufacturer = _manufacturer(f)
        self._version = self._root_text("Version")
        data = self.data
        names = [n for n in (RAW, PROCESSED) if isinstance(data.get(n), h5py.Dataset)]
        if not names:
            raise MapFileError(f"{self.path}: '{scan}/EBSD/Data' has no pattern dataset 'RawPatterns'")
        dataset = dataset or (RAW if RAW in names else names[0])
        if dataset not in names:
            raise MapFileError(f"{self.path}: no pattern dataset '{dataset}' in '{scan}/EBSD/Data' (has {', '.join(names)})")
        self._dataset = dataset
        self._datasets = names
        ds = data[dataset]
        where = f"'{scan}/EBSD/Data/{dataset}'"
        if ds.ndim != 3:
            raise MapFileError(f"{self.path}: {where} has shape {ds.shape}; patterns are (N, height, width)")
        n, h, w = (int(s) for s in ds.shape)
        if h == 0 or w == 0:
            raise MapFileError(f"{self.path}: {where} has shape {ds.shape}: patterns of {h} x {w} pixels")
        if n == 0:
            raise MapFileError(f"{self.path}: {where} holds no patterns (shape {ds.shape})")
        self._patterns = ds
        self._reader = H5Patterns(ds)
        self._check_pattern_size(h, w)
        self._roi_origin: tuple[int, int] | None = None
        index_map, nav_shape = self._locate(n)
        self._set_map(nav_shape=nav_shape, pattern_shape=(h, w), dtype=ds.dtype, n_patterns=n, index_map=index_map)
        self._read_geometry()
        self._check_per_point_lengths(n)

    def _root_text(self, name: str) -> str | None:
        for key in self._file.keys():
            if key.strip() == name and isinstance(self._file[key], h5py.Dataset):
                return str(scalar(self._file[key][()])).strip().strip("\x00")
        return None

    def _number(self, group: h5py.Group, name: str, default: float | None = None, *, required: bool = False) -> float | None:
        """A numeric header value (scalar or length-1 array); MapFileError when malformed or required and absent."""
        where = f"'{group.name.lstrip('/')}/{name}'"
        return header_number(group[name] if name in group else None, where, self.path, default, required=required)

    def _count(self, group: h5py.Group, name: str) -> int:
        value = self._number(group, name, required=True)
        assert value is not None
        if value < 0 or value != int(value):
            raise MapFileError(f"{self.path}: '{group.name.lstrip('/')}/{name}' is {value:g}; expected a count (0, 1, 2, ...)")
        return int(value)

    def _check_pattern_size(self, h: int, w: int) -> None:
        header = self.header
        stated = []
        for name, actual in (("PatternHeight", h), ("PatternWidth", w)):
            value = self._number(header, name)
            if value is not None and int(value) != actual:
                stated.append(f"{name} {value:g}")
        if stated:
            self._note(f"header says {' and '.join(stated)}, but '{self._dataset}' holds {h} x {w} patterns; the dataset's shape is used")

    def _locate(self, n: int) -> tuple[np.ndarray | None, tuple[int, int]]:
        """(index map or None for row-major, nav shape) from the ROI or full-map beam positions."""
        scan = self.h5[self._scan]
        roi = scan.get("EBSD/SEM")
        if isinstance(roi, h5py.Group) and isinstance(roi.get("IX"), h5py.Dataset) and isinstance(roi.get("IY"), h5py.Dataset):
            return self._locate_roi(roi, n)
        header = self.header
        rows, cols = self._count(header, "NROWS"), self._count(header, "NCOLS")
        if rows == 0 or cols == 0:
            raise MapFileError(f"{self.path}: the header gives a map of NROWS {rows} x NCOLS {cols} points")
        points = rows * cols
        sem = scan.get("SEM")
        ix = iy = None
        if isinstance(sem, h5py.Group) and isinstance(sem.get("SEM IX"), h5py.Dataset) and isinstance(sem.get("SEM IY"), h5py.Dataset):
            ix = np.asarray(sem["SEM IX"][()]).reshape(-1)
            iy = np.asarray(sem["SEM IY"][()]).reshape(-1)
        if ix is None:
            have = [name for name in ("SEM IX", "SEM IY") if isinstance(sem, h5py.Group) and name in sem]
            self._note(
                f"no map positions ('{self._scan}/SEM/SEM IX, SEM IY' "
                f"{'are not both datasets' if have else 'are missing'}): the patterns are taken as stored row by row"
            )
        if ix is None or max(ix.size, iy.size) <= 1:
            # kikuchipy's dummy writes one element: patterns are stored row-major
            if n < points:
                self._note(
                    f"'{self._dataset}' holds {n} patterns for the {rows} x {cols} map ({points} points): "
                    f"the last {points - n} points have no pattern (a truncated file?)"
                )
            elif n > points:
                self._note(f"'{self._dataset}' holds {n} patterns for the {rows} x {cols} map: the last {n - points} are not on the map")
            return None, (rows, cols)
        if ix.size != iy.size:
            raise MapFileError(f"{self.path}: '{self._scan}/SEM/SEM IX' has {ix.size} entries but 'SEM IY' has {iy.size}")
        ix, iy = self._as_positions(ix, "SEM/SEM IX"), self._as_positions(iy, "SEM/SEM IY")
        m = min(ix.size, n)
        if ix.size < n:
            self._note(f"'SEM IX/IY' give the map position of {ix.size} of the {n} stored patterns; the other {n - ix.size} are not on the map")
        index_map, n_dup = index_map_from_positions(iy[:m], ix[:m], (rows, cols), where=f"{self.path}: '{self._scan}/SEM/SEM IX, SEM IY'")
        self._note_duplicates(n_dup, "SEM IX/IY")
        self._note_truncation(n, ix.size)
        return index_map, (rows, cols)

    def _locate_roi(self, roi: h5py.Group, n: int) -> tuple[np.ndarray, tuple[int, int]]:
        ix = np.asarray(roi["IX"][()]).reshape(-1)
        iy = np.asarray(roi["IY"][()]).reshape(-1)
        if ix.size != iy.size:
            raise MapFileError(f"{self.path}: '{self._scan}/EBSD/SEM/IX' has {ix.size} entries but 'IY' has {iy.size}")
        if ix.size == 0:
            raise MapFileError(f"{self.path}: '{self._scan}/EBSD/SEM/IX, IY' (ROI positions) are empty")
        ix, iy = self._as_positions(ix, "EBSD/SEM/IX"), self._as_positions(iy, "EBSD/SEM/IY")
        r0, c0 = int(iy.min()), int(ix.min())
        nav_shape = (int(iy.max()) - r0 + 1, int(ix.max()) - c0 + 1)
        self._roi_origin = (r0, c0)
        m = min(ix.size, n)
        if ix.size < n:
            self._note(f"the ROI positions 'EBSD/SEM/IX, IY' cover {ix.size} of the {n} stored patterns; the other {n - ix.size} are not on the map")
        index_map, n_dup = index_map_from_positions(iy[:m] - r0, ix[:m] - c0, nav_shape, where=f"{self.path}: '{self._scan}/EBSD/SEM/IX, IY'")
        self._note_duplicates(n_dup, "the ROI positions IX/IY")
        self._note_truncation(n, ix.size)
        return index_map, nav_shape

    def _as_positions(self, values: np.ndarray, name: str) -> np.ndarray:
        if values.dtype.kind not in "iuf":
            raise MapFileError(f"{self.path}: '{self._scan}/{name}' holds {values.dtype} values, not map positions")
        if values.dtype.kind == "f":
            if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
                raise MapFileError(f"{self.path}: '{self._scan}/{name}' holds non-integer map positions")
        values = values.astype(np.int64)
        if values.size and values.min() < 0:
            i = int(np.argmin(values))
            raise MapFileError(f"{self.path}: '{self._scan}/{name}' holds a negative map position ({values[i]} for pattern {i})")
        return values

    def _note_duplicates(self, n_dup: int, what: str) -> None:
        if n_dup:
            self._note(f"{n_dup} patterns share a map position with an earlier one in {what}; the first at each position is used")

    def _note_truncation(self, n: int, positions: int) -> None:
        if positions > n:
            self._note(
                f"'{self._dataset}' holds {n} patterns but the file gives {positions} map positions: "
                f"the last {positions - n} points have no pattern (a truncated file?)"
            )

    def _read_geometry(self) -> None:
        """Header values read once at opening, so a malformed header fails here and not later."""
        h = self.header
        dy, dx = self._number(h, "YSTEP"), self._number(h, "XSTEP")
        if dy is None or dx is None:
            missing = " and ".join(k for k, v in (("YSTEP", dy), ("XSTEP", dx)) if v is None)
            self._note(f"no {missing} in the header; the step is taken as 1 µm")
        self._step = (1.0 if dy is None else dy, 1.0 if dx is None else dx)
        tilt = self._number(h, "SampleTilt")
        if tilt is None:
            tilt = self._number(h, "Sample Tilt")  # not written by Esprit; accepted
        if tilt is None:
            self._note("no SampleTilt in the header; the sample tilt is taken as 70°")
            tilt = 70.0
        self._sample_tilt = tilt
        self._camera_tilt = self._number(h, "CameraTilt", 0.0)
        kv = self._number(h, "KV")
        sem = self.h5[self._scan].get("SEM")
        if kv is None and isinstance(sem, h5py.Group):
            kv = self._number(sem, "SEM KV")
        self._kv = kv
        full_h = self._number(h, "DetectorFullHeightMicrons")
        unclipped = self._number(h, "UnClippedPatternHeight")
        height = self.pattern_shape[0]
        self._px = None
        if full_h is not None and full_h > 0:
            self._px = full_h / (unclipped if unclipped and unclipped > 0 else height)
        if unclipped is not None and int(unclipped) != height:
            self._note(
                f"patterns are clipped (PatternHeight {height} of UnClippedPatternHeight {unclipped:g}, "
                f"TopClip {self._number(h, 'TopClip', 0.0):g}); the pattern centre is used as stored, relative to the stored pattern"
            )
        grid = h.get("Grid Type")
        grid = scalar(grid[()]) if isinstance(grid, h5py.Dataset) and grid.size == 1 else short_repr(grid[()]) if isinstance(grid, h5py.Dataset) else None
        self._grid_stored = None if grid is None else str(grid).strip().strip("\x00")
        if self._grid_stored is not None and self._grid_stored.lower() not in ("isometric", "square", ""):
            self._note(f"Grid Type is '{self._grid_stored}', not 'isometric' (square); the map is read as a square grid")

    def _check_per_point_lengths(self, n: int) -> None:
        short = []
        for name in ("PCX", "PCY", "DD", "phi1", "PHI", "phi2", "Phase"):
            ds = self.data.get(name)
            if isinstance(ds, h5py.Dataset) and ds.ndim <= 1 and 1 < ds.size < n:
                short.append(f"{name} ({ds.size})")
        if short:
            self._note(f"per-pattern datasets shorter than the {n} patterns: {', '.join(short)}; the patterns past their end have NaN there")

    # -- groups ------------------------------------------------------------------------
    @property
    def header(self) -> h5py.Group:
        return self._file[f"{self._scan}/EBSD/Header"]

    @property
    def data(self) -> h5py.Group:
        return self._file[f"{self._scan}/EBSD/Data"]

    @property
    def roi_origin(self) -> tuple[int, int] | None:
        """(row, col) of the map's top-left point in the full scan grid for ROI files, else None."""
        return self._roi_origin

    # -- shapes ------------------------------------------------------------------------
    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step) in µm: (YSTEP, XSTEP)."""
        return self._step

    @property
    def grid_type(self) -> str:
        return "square"

    # -- pattern access ----------------------------------------------------------------
    # -- per-map data --------------------------------------------------------------------
    @property
    def static_background(self) -> np.ndarray | None:
        """``Header/StaticBackground`` (h, w) as stored, or None."""
        ds = self.header.get("StaticBackground")
        if not isinstance(ds, h5py.Dataset):
            return None
        if ds.shape != self.pattern_shape or ds.dtype.kind not in "iufb":
            what = f"of shape {ds.shape}" if ds.dtype.kind in "iufb" else f"of {ds.dtype} values"
            self._note_once("static background", f"'{ds.name.lstrip('/')}' {what} does not fit the {self.pattern_shape} patterns; no static background taken")
            return None
        return np.asarray(ds[()])

    def point_data(self) -> dict[str, Any]:
        """Per-pattern datasets of ``EBSD/Data`` (storage order): h5py datasets, or arrays cut to the patterns stored."""
        out: dict[str, Any] = {}
        n = self.n_patterns
        for name, ds in self.data.items():
            if name in (RAW, PROCESSED) or not isinstance(ds, h5py.Dataset) or ds.ndim != 1 or ds.dtype.kind not in "iufb":
                continue
            if ds.shape[0] == n:
                out[name] = ds
            elif ds.shape[0] > n:
                out[name] = np.asarray(ds[:n])
        return out

    def _placed(self, name: str) -> np.ndarray | None:
        ds = self.data.get(name)
        if not isinstance(ds, h5py.Dataset) or ds.size == 0:
            return None
        if ds.dtype.kind not in "iufb":
            self._note_once(("not numeric", name), f"'{ds.name.lstrip('/')}' holds {ds.dtype} values, not numbers; ignored")
            return None
        values, _ = _per_pattern(ds, self.n_patterns)
        return place_patterns(values, self.index_map)

    @property
    def pattern_centre(self) -> PatternCentreData | None:
        """Per-point PC from ``PCX, PCY, DD`` (Bruker's convention), each following its pattern; None when absent."""
        parts = [self._placed(k) for k in ("PCX", "PCY", "DD")]
        if any(p is None for p in parts):
            return None
        return PatternCentreData(*parts, convention="bruker", file_convention="bruker")  # type: ignore[arg-type]

    @property
    def sample_tilt_deg(self) -> float:
        """``SampleTilt`` (degrees)."""
        return float(self._sample_tilt)

    @property
    def camera_tilt_deg(self) -> float:
        """``CameraTilt`` (degrees; kikuchipy's detector ``tilt``)."""
        return float(self._camera_tilt or 0.0)

    @property
    def kv(self) -> float | None:
        return self._kv

    @property
    def binning(self) -> int:
        """1: Esprit stores no binning; :attr:`pixel_size_um` is the size of a stored (binned) pixel."""
        return 1

    @property
    def pixel_size_um(self) -> float | None:
        """``DetectorFullHeightMicrons / UnClippedPatternHeight``: the size of a stored pixel on the screen (µm)."""
        return self._px

    @property
    def euler(self) -> np.ndarray | None:
        """Bunge Euler angles (rows, cols, 3) in radians from ``phi1, PHI, phi2`` (degrees); NaN where not indexed (Phase 0).

        None when the file has no angles or no point is indexed.
        """
        angles = [self._placed(k) for k in ("phi1", "PHI", "phi2")]
        if any(a is None for a in angles):
            return None
        euler = np.deg2rad(np.stack(angles, axis=-1))  # type: ignore[arg-type]
        phase = self._placed("Phase")
        if phase is not None:
            euler[phase == 0] = np.nan
        return None if np.isnan(euler).all() else euler

    @property
    def phase_id(self) -> np.ndarray | None:
        """``Phase`` of each point (ids of :attr:`phases`, 0: not indexed or no pattern)."""
        phase = self._placed("Phase")
        if phase is None:
            return None
        return np.where(np.isfinite(phase), phase, 0).astype(np.int64)

    @property
    def phases(self) -> list[dict[str, Any]]:
        """``Header/Phases/<k>``: id, name, space group (``IT``), lattice (nm, degrees), formula, space group symbol."""
        group = self.header.get("Phases")
        out: list[dict[str, Any]] = []
        if not isinstance(group, h5py.Group):
            return out
        keys = sorted(group, key=lambda k: (not k.strip().isdigit(), int(k) if k.strip().isdigit() else 0, k))
        for key in keys:
            g = group[key]
            if not isinstance(g, h5py.Group):
                continue

            def text(name: str) -> str | None:
                ds = g.get(name)
                return str(scalar(ds[()])).strip().strip("\x00") if isinstance(ds, h5py.Dataset) else None

            entry: dict[str, Any] = {
                "id": int(key) if key.strip().isdigit() else len(out) + 1,
                "name": text("Name") or f"phase {key}",
                "space_group": None,
            }
            it = g.get("IT")
            if isinstance(it, h5py.Dataset):
                try:
                    entry["space_group"] = int(scalar(it[()]))
                except (TypeError, ValueError):
                    pass
            lat = g.get("LatticeConstants")
            if isinstance(lat, h5py.Dataset) and lat.size == 6:
                abc = np.asarray(lat[()], dtype=np.float64).reshape(6)
                entry["lattice"] = [*(abc[:3] / 10.0).round(6).tolist(), *abc[3:].round(4).tolist()]  # Å (float32) -> nm
            for name, key_out in (("Formula", "formula"), ("SpaceGroup", "space_group_symbol")):
                value = text(name)
                if value:
                    entry[key_out] = value
            out.append(entry)
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``kikuchi info``)."""
        out = super().describe()
        out.update(
            manufacturer=self._manufacturer or None,
            version=self._version,
            grid_stored=self._grid_stored,
            roi_origin=None if self._roi_origin is None else list(self._roi_origin),
            **self._reader.describe(),
        )
        return out


# -- content test ----------------------------------------------------------------------
def _sniff(probe: Probe) -> bool:
    """An HDF5 file whose ``Manufacturer`` is Bruker's, with a scan group of Esprit's layout."""
    f = probe.h5
    if f is None:
        return False
    scans = _scan_groups(f)
    maker = _manufacturer(f).lower()
    if maker.startswith("bruker"):
        return bool(scans)
    if maker:
        return False
    # no Manufacturer: Esprit's own header names (the kikuchi map file writes 'X Resolution', not XSTEP)
    for name in scans:
        header, data = f[f"{name}/EBSD/Header"], f[f"{name}/EBSD/Data"]
        if {"NCOLS", "NROWS", "XSTEP", "YSTEP"} <= set(header.keys()) and RAW in data:
            return True
    return False


# -- writer ------------------------------------------------------------------------------
def _nav_value(value: Any, shape: tuple[int, int], name: str, n: int) -> np.ndarray:
    """A value for the map: one (k,) for all points or (rows, cols, k); returned as (rows * cols, k) float."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1:
        return np.broadcast_to(arr, (shape[0] * shape[1], n)).copy()
    if arr.shape != (*shape, n):
        raise ValueError(f"{name} must have shape ({n},) or {(*shape, n)}, got {arr.shape}")
    return arr.reshape(-1, n)


def write_bruker_h5(
    path: str | os.PathLike,
    patterns: Any,
    *,
    step_um: tuple[float, float] = (1.0, 1.0),
    pc: Any = None,
    sample_tilt_deg: float = 70.0,
    camera_tilt_deg: float = 0.0,
    order: Sequence[int] | np.ndarray | None = None,
    chunks: int | bool | None = None,
    compression: str | None = None,
    mask: np.ndarray | None = None,
    roi_origin: tuple[int, int] | None = None,
    euler: np.ndarray | None = None,
    static_background: np.ndarray | None = None,
    kv: float = 20.0,
    pixel_size_um: float = 1.0,
    scan: str = "Scan 0",
) -> Path:
    """Write patterns as a Bruker Esprit h5ebsd file (the layout Esprit writes).

    Parameters
    ----------
    path
        Output file (written under a temporary name, renamed when complete).
    patterns
        (rows, cols, h, w) patterns in map order, uint8 or uint16.
    step_um
        (row step, column step) in µm: ``YSTEP``, ``XSTEP``.
    pc
        Pattern centre in Bruker's convention: (3,) for the map or
        (rows, cols, 3) per point; default (0.5, 0.5, 0.5).
    sample_tilt_deg, camera_tilt_deg
        ``SampleTilt``, ``CameraTilt``.
    order
        Storage order: stored pattern ``k`` is the map point of flat
        (row-major) index ``order[k]``, recorded in ``SEM IX/IY`` (and ``X BEAM,
        Y BEAM``); default row-major. Per-point values follow it.
    chunks
        Patterns per HDF5 chunk; None: about 1 MiB per chunk; False: one
        contiguous dataset (as Esprit writes).
    compression
        HDF5 filter for the patterns (``'gzip'``, ...); default none, as Esprit.
    mask
        (rows, cols) bool, the points that have a pattern: writes an ROI file
        (``EBSD/SEM/IX, IY``); the others are left out. Implies an ROI.
    roi_origin
        (row, col) of the ROI's top-left point in the full scan: writes an ROI
        file whose full grid (``NROWS``, ``NCOLS``) extends to the ROI's end.
    euler
        (rows, cols, 3) Bunge Euler angles in radians (written in degrees, as
        Esprit); default zeros with ``Phase`` 0 (not indexed).
    static_background
        (h, w) ``Header/StaticBackground``.
    kv, pixel_size_um, scan
        ``KV``; the detector pixel size (``DetectorFullHeightMicrons`` = h × it);
        the scan group's name.

    Returns
    -------
    Path

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.h5"
    >>> pats = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
    >>> _ = write_bruker_h5(p, pats, order=[5, 4, 3, 2, 1, 0])
    >>> from kikuchi.io.source import open_map
    >>> with open_map(p) as m:
    ...     m.format, m.nav_shape, m.index_map.tolist(), bool((m.read_all() == pats).all())
    ('bruker', (2, 3), [[5, 4, 3], [2, 1, 0]], True)
    """
    path = Path(path)
    patterns = np.asarray(patterns)
    if patterns.ndim != 4:
        raise ValueError(f"patterns must be (rows, cols, h, w), got shape {patterns.shape}")
    rows, cols, h, w = patterns.shape
    if min(rows, cols, h, w) <= 0:
        raise ValueError(f"empty map or pattern shape: {patterns.shape}")
    if patterns.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"Esprit stores uint8 or uint16 patterns, got {patterns.dtype}")
    points = rows * cols
    have = np.ones((rows, cols), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if have.shape != (rows, cols):
        raise ValueError(f"mask must have the map's shape {(rows, cols)}, got {have.shape}")
    if order is None:
        stored = np.flatnonzero(have.reshape(-1))
    else:
        stored = np.asarray(order, dtype=np.int64).reshape(-1)
        expected = np.flatnonzero(have.reshape(-1))
        if not np.array_equal(np.sort(stored), expected):
            raise ValueError("order must be a permutation of the flat indices of the points with a pattern")
    n = stored.size
    if n == 0:
        raise ValueError("no point has a pattern")
    r, c = np.divmod(stored, cols)
    is_roi = mask is not None or roi_origin is not None
    r0, c0 = (0, 0) if roi_origin is None else (int(roi_origin[0]), int(roi_origin[1]))
    pcs = _nav_value((0.5, 0.5, 0.5) if pc is None else pc, (rows, cols), "pc", 3)[stored]
    eul = None if euler is None else np.rad2deg(_nav_value(euler, (rows, cols), "euler", 3))[stored]
    flat = patterns.reshape(points, h, w)
    if chunks is False:
        chunk_shape = None
    else:
        per = default_chunk_patterns((h, w), patterns.dtype, n) if chunks in (None, True) else max(1, min(int(chunks), n))
        chunk_shape = (per, h, w)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f["Manufacturer"] = np.array([MANUFACTURER.encode()])
        f["Version"] = np.array([b"Esprit 2.X"])
        g = f.create_group(scan)
        data = g.create_group("EBSD/Data")
        header = g.create_group("EBSD/Header")
        ds = data.create_dataset(RAW, shape=(n, h, w), dtype=patterns.dtype, chunks=chunk_shape, compression=compression)
        if order is None and mask is None:
            ds[...] = flat
        else:  # blocks of ~64 MiB gathered in storage order: no per-pattern loop, bounded memory
            block = max(1, (64 << 20) // max(1, h * w * patterns.dtype.itemsize))
            for k in range(0, n, block):
                ds[k : k + block] = flat[stored[k : k + block]]
        data["PCX"], data["PCY"], data["DD"] = (pcs[:, k].astype(np.float32) for k in range(3))
        angles = np.zeros((n, 3), dtype=np.float32) if eul is None else eul.astype(np.float32)
        data["phi1"], data["PHI"], data["phi2"] = (angles[:, k] for k in range(3))
        data["Phase"] = np.full(n, 0 if eul is None else 1, dtype=np.int32)
        data["MAD"] = np.zeros(n, dtype=np.float32)
        data["NIndexedBands"] = np.zeros(n, dtype=np.float32)
        data["RadonQuality"] = np.zeros(n, dtype=np.float32)
        data["X BEAM"] = (c + c0).astype(np.int32)
        data["Y BEAM"] = (r + r0).astype(np.int32)
        data["X SAMPLE"] = ((c + c0) * step_um[1]).astype(np.float32)
        data["Y SAMPLE"] = ((r + r0) * step_um[0]).astype(np.float32)
        data["Z SAMPLE"] = np.zeros(n, dtype=np.float32)
        header["NCOLS"] = np.int32(cols + c0)
        header["NROWS"] = np.int32(rows + r0)
        header["NPoints"] = np.int32((rows + r0) * (cols + c0))
        header["XSTEP"] = np.float64(step_um[1])
        header["YSTEP"] = np.float64(step_um[0])
        header["PatternHeight"] = np.int32(h)
        header["PatternWidth"] = np.int32(w)
        header["UnClippedPatternHeight"] = np.int32(h)
        header["TopClip"] = np.float64(0.0)
        header["PixelByteCount"] = np.int32(patterns.dtype.itemsize)
        header["SampleTilt"] = np.float64(sample_tilt_deg)
        header["CameraTilt"] = np.float64(camera_tilt_deg)
        header["KV"] = np.float64(kv)
        header["DetectorFullHeightMicrons"] = np.float64(h * pixel_size_um)
        header["DetectorFullWidthMicrons"] = np.float64(w * pixel_size_um)
        header["Grid Type"] = np.array([b"isometric"])
        if static_background is not None:
            bg = np.asarray(static_background)
            if bg.shape != (h, w):
                raise ValueError(f"static background of shape {bg.shape} does not fit patterns of {(h, w)}")
            header["StaticBackground"] = bg.astype(np.uint16)
        sem = g.create_group("SEM")
        sem["SEM ImageHeight"] = np.int32(rows + r0)
        sem["SEM ImageWidth"] = np.int32(cols + c0)
        sem["SEM KV"] = np.float64(kv)
        if is_roi:
            roi = g.create_group("EBSD/SEM")
            roi["IX"] = (c + c0).astype(np.int32)
            roi["IY"] = (r + r0).astype(np.int32)
            sem["SEM IX"] = np.array([1], dtype=np.int32)
            sem["SEM IY"] = np.array([1], dtype=np.int32)
        else:
            sem["SEM IX"] = c.astype(np.int32)
            sem["SEM IY"] = r.astype(np.int32)
    return path


def _write_map(path: str | os.PathLike, source: EBSDMap, **options: Any) -> Path:
    """Write an open pattern map as a Bruker h5ebsd file (points without a pattern: an ROI)."""
    have = source.index_map >= 0
    kwargs: dict[str, Any] = {
        "step_um": source.step_um,
        "sample_tilt_deg": source.sample_tilt_deg,
        "camera_tilt_deg": source.camera_tilt_deg,
        "mask": None if have.all() else have,
    }
    pc = source.pattern_centre
    if pc is not None and pc.convention == "bruker":
        kwargs["pc"] = np.nan_to_num(np.stack([pc.pcx, pc.pcy, pc.dd], axis=-1), nan=0.5)
    kwargs.update(options)
    return write_bruker_h5(path, source.read_all(), **kwargs)


FORMAT = FormatSpec(
    name="bruker",
    description="Bruker Esprit h5ebsd (full maps, out-of-order storage, rectangular and non-rectangular ROIs)",
    # recognised by content only: '.h5' falls back to the kikuchi map file, whose layout Esprit's resembles
    extensions=(),
    sniff=_sniff,
    open=BrukerH5EBSD,
    writes=_write_map,
)
