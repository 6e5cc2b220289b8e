"""Oxford Instruments H5OINA (AZtec): EBSD patterns and their map, read lazily.

The layout is Oxford's published H5OINA specification (``H5OINAFile.md``,
Format Version 5.0, the first with patterns, to 8.0)::

    /Format Version, /Manufacturer ("Oxford Instruments"), /Index, /Software Version
    /1/EBSD/Data/Processed Patterns     (N, h, w) uint8, background corrected (what AZtec indexes)
    /1/EBSD/Data/Unprocessed Patterns   (N, h, w) int16, as acquired
    /1/EBSD/Data/X, Y                   (N,) µm, origin top left
    /1/EBSD/Data/Beam Position X, Y     (N,) µm, origin image centre, Y up
    /1/EBSD/Data/Pattern Center X, Y, Detector Distance (N,) Oxford convention
    /1/EBSD/Data/Euler (N, 3) radians, Phase, Band Contrast, Band Slope, Bands, Error,
                 Mean Angular Deviation, Pattern Quality
    /1/EBSD/Header/X Cells, Y Cells, X Step, Y Step, Pattern Height, Pattern Width,
                   Beam Voltage (kV), Tilt Angle (rad), Detector Orientation Euler (rad),
                   Camera Mode (7.0+; "Camera Binning Mode" before),
                   Processed / Unprocessed Static Background (h, w), Phases/1, 2, ...

Scans are the numbered groups (``scan=``: '1', '2', ...). The pattern
datasets are named as in the rest of kikuchi: ``'Patterns'`` for
``Processed Patterns`` (the default where present) and ``'RawPatterns'``
for ``Unprocessed Patterns``; the file's own names are accepted as
``dataset=`` too. Header values come as scalars, (1,), (1, 1) or (1, 3)
arrays, and fixed or variable length strings depending on the version;
all are read. Patterns are placed on the map by their ``X``/``Y`` positions
(else ``Beam Position X``/``Y``) where these are whole steps inside the map,
otherwise row-major. A pattern dataset shorter than ``X Cells * Y Cells``
(a stopped acquisition) gives the points it has and marks the rest missing,
with a :class:`~kikuchi.io.source.MapFileWarning`. See docs/formats.md.

:func:`write_h5oina` writes the layout AZtec writes (tests, benchmarks).
"""

from __future__ import annotations

import logging
import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi.geometry.pattern_centre import convert_pc
from kikuchi.io._atomic import atomic_output
from kikuchi.io._h5 import H5Map, H5Patterns, number, scalar, text
from kikuchi.io.source import FormatSpec, MapFileError, PatternCentreData, Probe, index_map_from_positions, short_repr

__all__ = ["FORMAT", "H5OINAMap", "PROCESSED", "RAW", "VERSIONS", "write_h5oina"]

_logger = logging.getLogger(__name__)

PROCESSED = "Patterns"
RAW = "RawPatterns"
#: kikuchi's name of each pattern dataset -> the file's name.
_DATASETS = {PROCESSED: "Processed Patterns", RAW: "Unprocessed Patterns"}
_BACKGROUNDS = {PROCESSED: "Processed Static Background", RAW: "Unprocessed Static Background"}
#: Format Versions this reader and the writer know (5.0 added patterns).
VERSIONS = ("5.0", "6.0", "7.0", "8.0")
MANUFACTURER = "Oxford Instruments"
#: A position is on the grid when within this fraction of a step from a whole step.
_STEP_TOLERANCE = 0.1
#: Chunk cache per open dataset (LZF chunks are decoded by h5py).
#: Unbinned height of Oxford's detectors in the camera modes (Oxford, h5oina issue #5).
_UNBINNED_HEIGHT = 1024


def _scan_groups(f: h5py.File) -> list[str]:
    """Numbered groups with an EBSD technique, in number order."""
    names = [k for k in f if k.strip().isdigit() and isinstance(f[k], h5py.Group) and isinstance(f[k].get("EBSD"), h5py.Group)]
    return sorted(names, key=lambda k: int(k))


def _pattern_names(data: h5py.Group) -> dict[str, str]:
    """kikuchi name -> path in ``data`` of the pattern datasets present."""
    return {key: name for key, name in _DATASETS.items() if isinstance(data.get(name), h5py.Dataset)}


class H5OINAMap(H5Map):
    """An Oxford Instruments H5OINA file (AZtec, Format Version 5.0-8.0), read lazily.

    Use :func:`kikuchi.open`.

    Parameters
    ----------
    path
        The ``.h5oina`` file.
    scan
        Scan (slice) group, '1', '2', ...; by default the first with patterns.
    dataset
        ``'Patterns'`` (``Processed Patterns``, the default where present) or
        ``'RawPatterns'`` (``Unprocessed Patterns``); the file's names are accepted too.
    """

    format = "h5oina"

    # -- opening -------------------------------------------------------------------
    def _open(self, *, scan: str | int | None = None, dataset: str | None = None) -> None:
        f = self._file
        self._version = text(f, "Format Version")
        self._check_version()
        self._scan = self._find_scan(scan)
        group = f[self._scan]["EBSD"]
        for part in ("Data", "Header"):
            if not isinstance(group.get(part), h5py.Group):
                raise MapFileError(f"{self.path}: no '{group.name}/{part}' group")
        self._data: h5py.Group = group["Data"]
        self._header: h5py.Group = group["Header"]
        names = _pattern_names(self._data)
        self._datasets = list(names)
        self._dataset = self._choose_dataset(dataset, names)
        ds = self._data[names[self._dataset]]
        if ds.ndim != 3:
            raise MapFileError(f"{self.path}: '{ds.name}' has shape {ds.shape}; patterns are (N, height, width)")
        n, h, w = (int(s) for s in ds.shape)
        if h == 0 or w == 0:
            raise MapFileError(f"{self.path}: '{ds.name}' has shape {ds.shape}: patterns of zero size")
        if n == 0:
            raise MapFileError(f"{self.path}: '{ds.name}' holds no patterns (shape {ds.shape})")
        self._patterns = ds
        self._reader = H5Patterns(ds)
        header = self._header
        cols, rows = self._count("X Cells"), self._count("Y Cells")
        for name, stored in (("Pattern Height", h), ("Pattern Width", w)):
            value = self._number(header, name)
            if value is not None and value != stored:
                self._note(f"'{header.name}/{name}' is {value:g} but the patterns in '{ds.name}' are {h} x {w}; the stored size is used")
        self._step = self._read_step(rows, cols)
        point_map, self._placed_by = self._point_map(n, (rows, cols))
        self._data_rows = point_map
        index_map = np.where(point_map < n, point_map, -1)
        self._set_map(nav_shape=(rows, cols), pattern_shape=(h, w), dtype=ds.dtype, n_patterns=n, index_map=index_map)
        if n < rows * cols:
            missing = int((index_map < 0).sum())
            self._note(
                f"'{ds.name}' holds {n} patterns for the {rows} x {cols} map (acquisition stopped early?): "
                f"the {missing} points without one are read as missing"
            )
        elif n > rows * cols:
            self._note(f"'{ds.name}' holds {n} patterns for the {rows} x {cols} map: {n - rows * cols} of them are not on the map")
        for name in ("Tilt Angle", "Beam Voltage"):  # read when asked; a value that is not a number fails here, at open
            self._number(header, name)
        bg = self._header.get(_BACKGROUNDS[self._dataset])
        self._background = None
        if isinstance(bg, h5py.Dataset):
            if tuple(bg.shape) == (h, w):
                self._background = bg
            else:
                self._note(f"'{bg.name}' has shape {bg.shape}, not the patterns' {(h, w)}; no static background")

    def _check_version(self) -> None:
        version = self._version
        if version is None:
            self._note(f"no 'Format Version'; read as H5OINA {VERSIONS[0]}-{VERSIONS[-1]}")
            return
        try:
            value = float(version)
        except ValueError:
            self._note(f"'Format Version' is {version!r}, not a version number; read as H5OINA {VERSIONS[0]}-{VERSIONS[-1]}")
            return
        if not float(VERSIONS[0]) <= value <= float(VERSIONS[-1]):
            self._note(f"Format Version {version}: kikuchi reads H5OINA {VERSIONS[0]}-{VERSIONS[-1]}; read as those")

    def _find_scan(self, scan: str | int | None) -> str:
        f = self._file
        scans = _scan_groups(f)
        if scan is not None:
            name = str(scan).strip("/")
            if name not in scans:
                have = ", ".join(scans) or "none"
                raise MapFileError(f"{self.path}: no scan '{name}' with an EBSD group (scans: {have})")
            return name
        if not scans:
            raise MapFileError(f"{self.path}: no scan group with EBSD data (expected '1/EBSD/Data', '1/EBSD/Header')")
        for name in scans:
            data = f[name]["EBSD"].get("Data")
            if isinstance(data, h5py.Group) and _pattern_names(data):
                return name
        data = f[scans[0]]["EBSD"].get("Data")
        held = ", ".join(sorted(data)) if isinstance(data, h5py.Group) else "nothing"
        raise MapFileError(
            f"{self.path}: no EBSD patterns ('Processed Patterns' or 'Unprocessed Patterns') in any scan; "
            f"'{scans[0]}/EBSD/Data' holds {held} (export the map from AZtec with patterns)"
        )

    def _choose_dataset(self, dataset: str | None, names: dict[str, str]) -> str:
        if not names:  # a scan chosen by name that has no patterns
            raise MapFileError(f"{self.path}: no 'Processed Patterns' or 'Unprocessed Patterns' in '{self._data.name}'")
        if dataset is None:
            return PROCESSED if PROCESSED in names else RAW
        wanted = {PROCESSED.lower(): PROCESSED, RAW.lower(): RAW, _DATASETS[PROCESSED].lower(): PROCESSED, _DATASETS[RAW].lower(): RAW}
        key = wanted.get(str(dataset).strip().lower())
        if key is None or key not in names:
            have = ", ".join(f"'{k}' ({v})" for k, v in names.items())
            raise MapFileError(f"{self.path}: no pattern dataset '{dataset}' in scan {self._scan} (has {have})")
        return key

    # -- header values -------------------------------------------------------------
    def _number(self, group: h5py.Group, name: str) -> float | None:
        try:
            return number(group, name, where=str(self.path))
        except ValueError as exc:
            raise MapFileError(str(exc)) from None

    def _count(self, name: str) -> int:
        header = self._header
        what = "columns" if name.startswith("X") else "rows"
        value = self._number(header, name)
        if value is None:
            raise MapFileError(f"{self.path}: no '{header.name}/{name}' (the number of map {what}, mandatory in H5OINA)")
        if not (np.isfinite(value) and value >= 1 and value == int(value)):
            raise MapFileError(f"{self.path}: '{header.name}/{name}' is {value:g}; expected a positive whole number of map {what}")
        return int(value)

    def _read_step(self, rows: int, cols: int) -> tuple[float, float]:
        steps = []
        for name, cells in (("Y Step", rows), ("X Step", cols)):
            value = self._number(self._header, name)
            if value is None or not np.isfinite(value) or value < 0 or (value == 0 and cells > 1):
                shown = "missing" if value is None else f"{value:g}"
                self._note(f"'{self._header.name}/{name}' is {shown}; a step of 1 µm is assumed")
                value = None
            steps.append(value)
        dy, dx = steps
        dx = 1.0 if dx is None or dx == 0 else dx
        dy = (dx if rows == 1 else 1.0) if dy is None or dy == 0 else dy  # line scans: Y Step 0
        return (float(dy), float(dx))

    # -- where each pattern goes ---------------------------------------------------
    def _column(self, name: str, width: int = 1, *, quiet: bool = False) -> np.ndarray | None:
        """A per-point dataset of ``Data`` as an (L,) or (L, width) numeric array, or None (a note says why)."""
        ds = self._data.get(name)
        if not isinstance(ds, h5py.Dataset):
            return None
        shape = ds.shape
        ok_shape = (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)) if width == 1 else (len(shape) == 2 and shape[1] == width)
        if not ok_shape:
            if not quiet:
                self._note(f"'{ds.name}' has shape {shape}, expected ({'L' if width == 1 else f'L, {width}'}); ignored")
            return None
        if ds.dtype.kind not in "iufb":
            if not quiet:
                self._note(f"'{ds.name}' holds {ds.dtype} values, not numbers; ignored")
            return None
        arr = np.asarray(ds[()])
        return arr.reshape(-1) if width == 1 else arr

    def _grid_positions(
        self, xname: str, yname: str, nav: tuple[int, int], how: str, n: int
    ) -> tuple[np.ndarray, np.ndarray] | str | None:
        """(row, col) of every data row from positions in µm, the reason they cannot be used, or None when absent."""
        x, y = self._column(xname, quiet=True), self._column(yname, quiet=True)
        if x is None or y is None:
            return None
        if x.size != y.size:
            return f"'{xname}' and '{yname}' have {x.size} and {y.size} values"
        if x.size < n:
            return f"'{xname}'/'{yname}' have {x.size} values for {n} patterns"
        x, y = x.astype(np.float64), y.astype(np.float64)
        rows, cols = nav
        dy, dx = self._step
        if how == "top-left":
            along_x, along_y = x, y
        elif how == "centre":  # origin the map centre, y up
            along_x, along_y = x + (cols - 1) / 2 * dx, (rows - 1) / 2 * dy - y
        else:  # anchored: the leftmost and topmost positions are column and row 0
            if not np.isfinite(x).any() or not np.isfinite(y).any():
                return f"'{xname}'/'{yname}' hold no finite position"
            along_x, along_y = x - np.nanmin(x), np.nanmax(y) - y
        out = []
        for values, step, cells, name in ((along_y, dy, rows, yname), (along_x, dx, cols, xname)):
            finite = np.isfinite(values)
            if not finite.any():
                return f"'{name}' holds no finite position"
            idx = values / step if cells > 1 else np.zeros_like(values)
            whole = np.rint(idx)
            off = finite & (np.abs(idx - whole) > _STEP_TOLERANCE)
            if off.any():
                i = int(np.flatnonzero(off)[0])
                raw = (x if name == xname else y)[i]
                return f"'{name}' of point {i} ({raw:g} µm) is not a whole number of {step:g} µm steps"
            outside = finite & ((whole < 0) | (whole >= cells))
            if outside.any():
                i = int(np.flatnonzero(outside)[0])
                raw = (x if name == xname else y)[i]
                return f"'{name}' of point {i} ({raw:g} µm) is outside the {cells} {'columns' if name == xname else 'rows'}"
            out.append(np.where(finite, whole, -1).astype(np.int64))
        r, c = out
        none = (r < 0) | (c < 0)
        r[none], c[none] = -1, -1
        flat = r[~none] * cols + c[~none]
        uniq, first, counts = np.unique(flat, return_index=True, return_counts=True)
        if uniq.size < flat.size:
            k = int(np.flatnonzero(counts > 1)[0])
            at = np.flatnonzero(~none)[flat == uniq[k]]
            return (
                f"{flat.size - uniq.size} points share a position with another "
                f"(points {at[0]} and {at[1]} at row {r[at[0]]}, col {c[at[0]]})"
            )
        return r, c

    def _point_map(self, n: int, nav: tuple[int, int]) -> tuple[np.ndarray, str]:
        """(rows, cols) map of the data row (= storage index) at each point, -1 where none; and how it was found.

        ``X``/``Y`` (origin top left) first, then ``Beam Position X``/``Y``
        (origin the map centre, y up; else anchored at the leftmost and
        topmost positions, for an image centre that is not the map's), else
        row-major. A note says why positions that are present were not used.
        """
        rejected = []
        for xname, yname, ways in (("X", "Y", ("top-left",)), ("Beam Position X", "Beam Position Y", ("centre", "anchored"))):
            reason = None
            for how in ways:
                found = self._grid_positions(xname, yname, nav, how, n)
                if found is None:
                    break
                if isinstance(found, str):
                    reason = reason or found
                    continue
                label = f"{xname}/{yname}"
                if rejected:
                    self._note(f"{'; '.join(rejected)}: patterns placed by {label}")
                point_map, _ = index_map_from_positions(*found, nav, where=str(self.path))
                return point_map, label
            if reason:
                rejected.append(reason)
        if rejected:
            self._note(f"{'; '.join(rejected)}: patterns placed row-major")
        rows, cols = nav
        return np.arange(rows * cols, dtype=np.int64).reshape(nav), "row-major"

    def _place(self, values: np.ndarray, *, fill: float = np.nan, patterns_only: bool = False) -> np.ndarray:
        """Per-point values (data-row order) on the map, ``fill`` where none."""
        index = self._index_map if patterns_only else self._data_rows
        out = np.full((*index.shape, *values.shape[1:]), fill, dtype=np.float64 if np.isnan(fill) else values.dtype)
        have = (index >= 0) & (index < values.shape[0])
        out[have] = values[index[have]]
        return out

    # -- the file --------------------------------------------------------------------
    @property
    def header(self) -> h5py.Group:
        """The scan's ``EBSD/Header`` group."""
        return self._header

    @property
    def data(self) -> h5py.Group:
        """The scan's ``EBSD/Data`` group."""
        return self._data

    @property
    def version(self) -> str | None:
        """The file's ``Format Version`` (H5OINA, not AZtec)."""
        return self._version

    # -- patterns --------------------------------------------------------------------
    # -- map data ---------------------------------------------------------------------
    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step) in µm: ``Y Step``, ``X Step`` (a line scan's Y Step 0 reads as its X Step)."""
        return self._step

    @property
    def placed_by(self) -> str:
        """How patterns were put on the map: 'X/Y', 'Beam Position X/Beam Position Y' or 'row-major'."""
        return self._placed_by

    @property
    def static_background(self) -> np.ndarray | None:
        """The static background of the dataset read (Processed or Unprocessed Static Background), or None."""
        return None if self._background is None else np.asarray(self._background[()])

    def point_data(self) -> dict[str, Any]:
        """Per-pattern datasets of ``EBSD/Data`` (Band Contrast, Phase, ...), storage order; h5py datasets when they fit."""
        out: dict[str, Any] = {}
        n = self.n_patterns
        for name, ds in self._data.items():
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iufb" or name in _DATASETS.values():
                continue
            if ds.shape == (n,):
                out[name] = ds
            elif ds.ndim in (1, 2) and ds.shape[0] >= n and (ds.ndim == 1 or ds.shape[1] == 1):
                out[name] = np.asarray(ds[:n]).reshape(n)
        return out

    @cached_property
    def pattern_centre(self) -> PatternCentreData | None:
        """Per-point PC in Bruker's convention (from Oxford's x*, y*, z*: fractions of the width, y* from the bottom)."""
        cols = [self._column(name) for name in ("Pattern Center X", "Pattern Center Y", "Detector Distance")]
        names = ("Pattern Center X", "Pattern Center Y", "Detector Distance")
        absent = [name for name in names if name not in self._data]
        if len(absent) == len(names):
            return None
        if absent:
            self._note(f"no {', '.join(absent)} in '{self._data.name}'; no pattern centre")
        if any(c is None for c in cols):  # absent, or not usable (noted by _column)
            return None
        length = min(c.size for c in cols)
        if any(c.size != length for c in cols):
            self._note(f"'Pattern Center X', 'Pattern Center Y', 'Detector Distance' have {[c.size for c in cols]} values; the first {length} are used")
        oxford = np.stack([c[:length].astype(np.float64) for c in cols], axis=-1)
        bruker = convert_pc(oxford, "oxford", "bruker", shape=self.pattern_shape)
        placed = self._place(bruker, patterns_only=True)
        return PatternCentreData(placed[..., 0], placed[..., 1], placed[..., 2], convention="bruker", file_convention="oxford")

    @cached_property
    def sample_tilt_deg(self) -> float:
        """``Tilt Angle`` (radians in the file) in degrees; 70 when absent."""
        value = self._number(self._header, "Tilt Angle")
        if value is None or not np.isfinite(value):
            return 70.0
        if abs(value) > 2 * np.pi:
            self._note(f"'Tilt Angle' is {value:g}: read as degrees (H5OINA stores radians)")
            return float(value)
        return _deg(value)

    @cached_property
    def camera_tilt_deg(self) -> float:
        """Second angle of ``Detector Orientation Euler`` in degrees, less 90 (as kikuchipy); 0 when absent."""
        ds = self._header.get("Detector Orientation Euler")
        if not isinstance(ds, h5py.Dataset):
            return 0.0
        try:
            euler = np.asarray(ds[()], dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            euler = np.empty(0)
        if euler.size != 3 or not np.isfinite(euler[1]):
            self._note(f"'{ds.name}' is {short_repr(np.asarray(ds[()]))}, not three angles; camera tilt 0 assumed")
            return 0.0
        return _deg(euler[1]) - 90.0

    @property
    def kv(self) -> float | None:
        """``Beam Voltage`` in kV."""
        value = self._number(self._header, "Beam Voltage")
        return None if value is None or not np.isfinite(value) else float(value)

    @cached_property
    def binning(self) -> int:
        """From the camera mode's pattern height, ``round(1024 / height)`` (8 for 'Speed 3', 156 x 88); 1 when unknown."""
        mode = text(self._header, "Camera Mode") or text(self._header, "Camera Binning Mode")
        found = re.findall(r"\((\d+)\s*x\s*(\d+)\s*px\)", mode or "")
        if len(found) != 1 or int(found[0][1]) == 0:
            return 1
        height = int(found[0][1])
        return 8 if height == 88 else max(1, int(round(_UNBINNED_HEIGHT / height)))

    @cached_property
    def euler(self) -> np.ndarray | None:
        """``Euler`` (radians, Bunge) on the map; NaN where no data or ``Phase`` is 0 (not indexed)."""
        euler = self._column("Euler", 3)
        if euler is None:
            return None
        euler = euler.astype(np.float64)
        phase = self._column("Phase")
        if phase is not None and phase.size == euler.shape[0]:
            euler[phase == 0] = np.nan
        return self._place(euler)

    @cached_property
    def phase_id(self) -> np.ndarray | None:
        """``Phase`` on the map (ids of :attr:`phases`, 0: not indexed or no data)."""
        phase = self._column("Phase")
        if phase is None:
            return None
        return self._place(phase.astype(np.int64), fill=0)

    @cached_property
    def phases(self) -> list[dict[str, Any]]:
        """``Header/Phases``: name, space group (None when not stored), Laue group, lattice (Å -> nm, radians -> degrees)."""
        group = self._header.get("Phases")
        if not isinstance(group, h5py.Group):
            return []
        out = []
        for key in sorted((k for k in group if k.strip().isdigit()), key=int):
            g = group[key]
            entry: dict[str, Any] = {"id": int(key), "name": text(g, "Phase Name", f"phase {key}")}
            sg = g.get("Space Group")
            entry["space_group"] = int(scalar(sg[()])) if isinstance(sg, h5py.Dataset) and sg.dtype.kind in "iu" else None
            laue = g.get("Laue Group")
            if isinstance(laue, h5py.Dataset):
                entry["laue_group"] = str(scalar(laue.attrs["Symbol"])) if "Symbol" in laue.attrs else scalar(laue[()])
            try:
                lengths = np.asarray(g["Lattice Dimensions"][()], dtype=np.float64).reshape(3) / 10.0
                angles = np.degrees(np.asarray(g["Lattice Angles"][()], dtype=np.float64).reshape(3))
                entry["lattice"] = [*(round(float(v), 6) for v in lengths), *(round(float(v), 4) for v in angles)]
            except (KeyError, TypeError, ValueError):
                self._note(f"'{g.name}' has no usable Lattice Dimensions/Lattice Angles")
            out.append(entry)
        return out

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``kikuchi info``)."""
        out = super().describe()
        out.update(
            format_version=self.version,
            manufacturer=text(self._file, "Manufacturer"),
            software_version=text(self._file, "Software Version"),
            positions=self.placed_by,
            **self._reader.describe(),
        )
        return out


def _deg(radians: float) -> float:
    """Degrees of an angle stored as float32 radians, rounded to 1e-4° (float32 holds about 1e-5°).

    >>> _deg(np.float32(np.radians(69.9)))
    69.9
    """
    return round(float(np.degrees(radians)), 4)


def _sniff(probe: Probe) -> bool:
    f = probe.h5
    if f is None:
        return False
    if "Format Version" in f and "oxford" in (text(f, "Manufacturer") or "").lower():
        return True
    # no Manufacturer: a numbered scan with an H5OINA EBSD header
    return "Format Version" in f and any("X Cells" in f[k]["EBSD"].get("Header", {}) for k in _scan_groups(f))


FORMAT = FormatSpec(
    name="h5oina",
    description="Oxford Instruments H5OINA (AZtec, Format Version 5.0-8.0)",
    extensions=(".h5oina",),
    sniff=_sniff,
    open=H5OINAMap,
)


# -- writing ---------------------------------------------------------------------------
def _header_writer(group: h5py.Group, version: str):
    """A function that writes one header value in the shapes and string types of ``version``."""
    major = int(float(version))

    def put(name: str, value: Any, dtype: Any = None) -> None:
        if isinstance(value, str):
            if major <= 6:  # variable-length string scalar (kikuchipy's 6.0 dummy, AZtec 6.0/6.1)
                group.create_dataset(name, data=value, dtype=h5py.string_dtype())
            elif major == 7:  # fixed-length bytes, shape (1,)
                group.create_dataset(name, data=np.array([value.encode()]))
            else:  # variable-length UTF-8, shape (1, 1) as the specification's (row, column)
                group.create_dataset(name, data=np.array([[value]], dtype=object), dtype=h5py.string_dtype())
            return
        arr = np.asarray(value, dtype=dtype)
        if arr.size == 1:
            arr = arr.reshape(() if major <= 6 else (1,) if major == 7 else (1, 1))
        elif major >= 7 and arr.ndim == 1:
            arr = arr.reshape(1, -1)
        group.create_dataset(name, data=arr)

    return put


def write_h5oina(
    path: str | os.PathLike,
    patterns: Any,
    *,
    step_um: tuple[float, float] = (1.0, 1.0),
    pc_oxford: Any = None,
    tilt_deg: float = 70.0,
    version: str = "6.0",
    lzf: bool = False,
    chunks: int | None = None,
    unprocessed: Any = None,
    static_background: Any = None,
    camera_tilt_deg: float = 0.0,
    kv: float = 20.0,
    n_acquired: int | None = None,
    camera_mode: str | None = None,
) -> Path:
    """Write patterns as AZtec writes an H5OINA file (whole-array writes).

    Parameters
    ----------
    path
        Output ``.h5oina`` file (written under a temporary name, renamed when complete).
    patterns
        (rows, cols, h, w) processed patterns, stored as ``Processed Patterns``.
    step_um
        (row step, column step): ``Y Step``, ``X Step``.
    pc_oxford
        Pattern centre in Oxford's convention, (3,) for the map or (rows, cols, 3)
        per point: ``Pattern Center X``, ``Y``, ``Detector Distance``; none by default.
    tilt_deg
        Sample tilt, stored in radians as ``Tilt Angle``.
    version
        Format Version '5.0' to '8.0'; decides the header layout: scalars and
        variable-length strings (5.0, 6.0), (1,) arrays and fixed-length strings
        (7.0), (1, 1) arrays and variable-length strings (8.0).
    lzf
        LZF-compress the pattern datasets (AZtec 5.0-7.0 did).
    chunks
        Patterns per HDF5 chunk; by default one with ``lzf`` (as AZtec writes),
        contiguous storage without.
    unprocessed
        (rows, cols, h, w) raw patterns for ``Unprocessed Patterns`` (int16 in AZtec).
    static_background
        (h, w) ``Processed Static Background``; with ``unprocessed``, also
        written as ``Unprocessed Static Background`` in its dtype.
    camera_tilt_deg
        Detector tilt: ``Detector Orientation Euler`` = (0, 90° + tilt, 0).
    kv
        ``Beam Voltage``.
    n_acquired
        Write only the first ``n_acquired`` points in row-major order (patterns
        and per-point data), as an acquisition stopped early leaves the file.
    camera_mode
        E.g. ``'4x4 (311x256 px)'``: ``Camera Binning Mode`` before 7.0, ``Camera
        Mode`` from 7.0 (the reader's binning is 1024 / the height in it); none by default.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, pathlib, kikuchi
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "map.h5oina"
    >>> _ = write_h5oina(p, np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5), step_um=(0.5, 1.0))
    >>> with kikuchi.open(p) as m:
    ...     m.format, m.nav_shape, m.step_um, int(m.pattern(1, 2)[0, 0])
    ('h5oina', (2, 3), (0.5, 1.0), 100)
    """
    if version not in VERSIONS:
        raise ValueError(f"H5OINA Format Version {version!r}: write one of {', '.join(VERSIONS)}")
    patterns = np.asarray(patterns)
    if patterns.ndim != 4 or min(patterns.shape) == 0:
        raise ValueError(f"patterns must be (rows, cols, height, width), got shape {patterns.shape}")
    rows, cols, h, w = patterns.shape
    total = rows * cols
    n = total if n_acquired is None else int(n_acquired)
    if not 0 <= n <= total:
        raise ValueError(f"n_acquired = {n_acquired} for a map of {total} points")
    dy, dx = (float(s) for s in step_um)
    r, c = np.divmod(np.arange(n, dtype=np.int64), cols)
    if lzf:
        storage: dict[str, Any] = {"compression": "lzf", "chunks": (max(1, min(chunks or 1, max(n, 1))), h, w)}
    elif chunks:
        storage = {"chunks": (max(1, min(chunks, max(n, 1))), h, w)}
    else:
        storage = {}
    if n == 0:  # nothing acquired: a zero-size contiguous dataset (chunks cannot be)
        storage = {}
    path = Path(path)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        root = _header_writer(f, version)
        root("Manufacturer", MANUFACTURER)
        root("Software Version", "kikuchi")
        root("Format Version", version)
        root("Index", "1")
        f["Index"].attrs["Type"] = "Single"
        data = f.create_group("1/EBSD/Data")
        header = f.create_group("1/EBSD/Header")
        data.create_dataset("Processed Patterns", data=patterns.reshape(total, h, w)[:n], **storage)
        if unprocessed is not None:
            raw = np.asarray(unprocessed)
            if raw.shape != patterns.shape:
                raise ValueError(f"unprocessed patterns of shape {raw.shape} for processed ones of {patterns.shape}")
            data.create_dataset("Unprocessed Patterns", data=raw.reshape(total, h, w)[:n], **storage)
        data["X"] = (c * dx).astype(np.float32)
        data["Y"] = (r * dy).astype(np.float32)
        data["Beam Position X"] = ((c - (cols - 1) / 2) * dx).astype(np.float32)
        data["Beam Position Y"] = (((rows - 1) / 2 - r) * dy).astype(np.float32)
        for name in ("X", "Y", "Beam Position X", "Beam Position Y"):
            data[name].attrs["Unit"] = "um"
        data["Phase"] = np.zeros(n, dtype=np.uint8)
        data["Euler"] = np.zeros((n, 3), dtype=np.float32)
        data["Euler"].attrs["Unit"] = "rad"
        for name in ("Bands", "Error", "Band Contrast", "Band Slope"):
            data[name] = np.zeros(n, dtype=np.uint8)
        data["Mean Angular Deviation"] = np.zeros(n, dtype=np.float32)
        data["Pattern Quality"] = np.zeros(n, dtype=np.float32)
        if pc_oxford is not None:
            pc = np.broadcast_to(np.asarray(pc_oxford, dtype=np.float32), (rows, cols, 3)).reshape(total, 3)[:n]
            for k, name in enumerate(("Pattern Center X", "Pattern Center Y", "Detector Distance")):
                data[name] = np.ascontiguousarray(pc[:, k])
        put = _header_writer(header, version)
        put("X Cells", cols, np.int32)
        put("Y Cells", rows, np.int32)
        put("X Step", dx, np.float32)
        put("Y Step", dy, np.float32)
        put("Pattern Height", h, np.int32)
        put("Pattern Width", w, np.int32)
        put("Beam Voltage", kv, np.float32)
        put("Tilt Angle", np.radians(tilt_deg), np.float32)
        put("Tilt Axis", 0.0, np.float32)
        put("Scanning Rotation Angle", 0.0, np.float32)
        put("Specimen Orientation Euler", np.zeros(3), np.float32)
        put("Detector Orientation Euler", np.radians([0.0, 90.0 + camera_tilt_deg, 0.0]), np.float32)
        if camera_mode is not None:
            put("Camera Mode" if float(version) >= 7 else "Camera Binning Mode", camera_mode)
        for name in ("X Step", "Y Step"):
            header[name].attrs["Unit"] = "um"
        if static_background is not None:
            bg = np.asarray(static_background)
            if bg.shape != (h, w):
                raise ValueError(f"static background of shape {bg.shape} for patterns of {(h, w)}")
            header["Processed Static Background"] = bg.astype(patterns.dtype)
            if unprocessed is not None:
                header["Unprocessed Static Background"] = bg.astype(np.asarray(unprocessed).dtype)
            put("Static Background Correction", True, np.bool_)
        header.create_group("Phases")
    return path
