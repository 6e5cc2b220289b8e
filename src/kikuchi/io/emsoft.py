"""EMsoft EBSD simulation output (the EMEBSD program's HDF5 file), read lazily.

The layout EMsoft 4 and 5 write::

    /Manufacturer ("EMsoft")
    /EMheader/EBSD/ProgramName ("EMEBSD.f90"), Version ("4_2_0_0", "5_0_20200217_0", ...)
    /EMData/EBSD/EBSDPatterns   (N, numsy / binning, numsx / binning)
    /EMData/EBSD/EulerAngles    (N, 3) Bunge angles (radians in the files EMEBSD writes)
    /EMData/EBSD/numangles, xtalname
    /NMLparameters/EBSDNameList/xpc, ypc (unbinned pixels from the screen centre),
        L (µm), delta (unbinned pixel size, µm), numsx, numsy, binning, thetac (camera
        tilt, degrees), energymin, energymax (keV), eulerconvention, makedictionary, ...
    /CrystalData/LatticeParameters (nm, degrees), SpaceGroupNumber, ...

EMsoft simulates a list of orientations, not a map: the map is 1 x N
unless ``nav_shape=(rows, cols)`` is given (rows * cols must be N). The
pattern centre is EMsoft's (version 5 convention unless
``pc_convention='emsoft4'``) converted to Bruker's with the stored pattern
size, the binning and ``delta``. See docs/formats.md.
"""

from __future__ import annotations

import logging
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi.geometry.pattern_centre import PatternCentreError, convert_pc, normalize_convention
from kikuchi.io._h5 import H5Map, H5Patterns, number, scalar, text
from kikuchi.io.source import FormatSpec, MapFileError, PatternCentreData, Probe

__all__ = ["EMsoftEBSDMap", "FORMAT"]

_logger = logging.getLogger(__name__)

PATTERNS = "EMData/EBSD/EBSDPatterns"
EULER = "EMData/EBSD/EulerAngles"
NAMELIST = "NMLparameters/EBSDNameList"
#: Largest |angle| of radians (2π and a little for rounding); larger values are degrees.
_MAX_RADIANS = 2 * np.pi + 1e-3


class EMsoftEBSDMap(H5Map):
    """EMsoft EMEBSD simulation output, read lazily.

    Use :func:`kikuchi.open`.

    Parameters
    ----------
    path
        The HDF5 file EMEBSD wrote.
    nav_shape
        (rows, cols) of a map to lay the N patterns on, row-major; default (1, N).
    dataset
        The one pattern dataset: 'RawPatterns' ('Patterns' when EMsoft
        pre-processed them as a dictionary, ``makedictionary = 'y'``);
        ``'EBSDPatterns'`` is accepted too.
    pc_convention
        'emsoft' (version 5 and later, the default) or 'emsoft4' (xpc of the
        opposite sign, for files of older versions where known to need it).
    """

    format = "emsoft"

    def _open(self, *, nav_shape: Any = None, dataset: str | None = None, pc_convention: str = "emsoft") -> None:
        f = self._file
        program = text(f["EMheader/EBSD"], "ProgramName") if isinstance(f.get("EMheader/EBSD"), h5py.Group) else None
        self._program = program
        ds = f.get(PATTERNS)
        if not isinstance(ds, h5py.Dataset):
            what = f"{program} output" if program else "this file"
            raise MapFileError(f"{self.path}: no '{PATTERNS}' dataset ({what} holds no simulated patterns; EMEBSD writes them)")
        if ds.ndim != 3:
            raise MapFileError(f"{self.path}: '{PATTERNS}' has shape {ds.shape}; patterns are (N, height, width)")
        n, h, w = (int(s) for s in ds.shape)
        if h == 0 or w == 0:
            raise MapFileError(f"{self.path}: '{PATTERNS}' has shape {ds.shape}: patterns of zero size")
        if n == 0:
            raise MapFileError(f"{self.path}: '{PATTERNS}' holds no patterns (shape {ds.shape})")
        try:
            self._pc_convention = normalize_convention(pc_convention)
        except PatternCentreError as exc:
            raise MapFileError(f"{self.path}: {exc}") from None
        if self._pc_convention not in ("emsoft", "emsoft4"):
            raise MapFileError(f"{self.path}: pc_convention {pc_convention!r}; EMsoft files are 'emsoft' (version 5+) or 'emsoft4'")
        nml = f.get(NAMELIST)
        self._nml = nml if isinstance(nml, h5py.Group) else None
        if self._nml is None:
            self._note(f"no '{NAMELIST}' group: no pattern centre, binning, pixel size or energy")
        binning = self._nml_number("binning")
        if binning is not None and not (binning >= 1 and binning == int(binning)):
            raise MapFileError(f"{self.path}: '{NAMELIST}/binning' is {binning:g}; expected a positive whole number")
        self._binning = 1 if binning is None else int(binning)
        numsx, numsy = self._nml_number("numsx"), self._nml_number("numsy")
        if numsx is not None and numsy is not None:
            expected = (int(numsy) // self._binning, int(numsx) // self._binning)
            if expected != (h, w):
                hint = " (stored transposed?)" if expected == (w, h) else ""
                self._note(
                    f"patterns are stored {h} x {w}, but numsy x numsx = {int(numsy)} x {int(numsx)} at binning "
                    f"{self._binning} gives {expected[0]} x {expected[1]}{hint}; the stored size is used"
                )
        numangles = f.get("EMData/EBSD/numangles")
        if isinstance(numangles, h5py.Dataset):
            try:
                count = int(scalar(numangles[()]))
            except (TypeError, ValueError):
                count = n
            if count != n:
                self._note(f"'EMData/EBSD/numangles' is {count} but '{PATTERNS}' holds {n} patterns; the {n} are read")
        if nav_shape is None:
            nav = (1, n)
        else:
            try:
                nav = tuple(int(s) for s in nav_shape)
            except (TypeError, ValueError):
                raise MapFileError(f"{self.path}: nav_shape must be (rows, cols), got {nav_shape!r}") from None
            if len(nav) != 2 or min(nav) < 1 or nav[0] * nav[1] != n:
                raise MapFileError(
                    f"{self.path}: nav_shape {nav_shape!r} does not hold the {n} patterns of the file "
                    f"(rows * cols must be {n}; EMsoft stores a list, the map is 1 x {n} by default)"
                )
        for name in ("xpc", "ypc", "L", "delta", "thetac", "energymin", "energymax"):
            self._nml_number(name)  # read when asked; a value that is not a number fails here, at open
        self._nav_option = None if nav_shape is None else nav
        self._dictionary = (self._nml_text("makedictionary") or "n").lower().startswith("y")
        self._dataset = "Patterns" if self._dictionary else "RawPatterns"
        if dataset is not None and dataset not in (self._dataset, "EBSDPatterns"):
            raise MapFileError(f"{self.path}: no pattern dataset '{dataset}' (has '{self._dataset}', EMsoft's EBSDPatterns)")
        self._patterns = ds
        self._reader = H5Patterns(ds)
        self._set_map(nav_shape=nav, pattern_shape=(h, w), dtype=ds.dtype, n_patterns=n)

    # -- namelist values ---------------------------------------------------------------
    def _nml_number(self, name: str) -> float | None:
        if self._nml is None:
            return None
        try:
            return number(self._nml, name, where=str(self.path))
        except ValueError as exc:
            raise MapFileError(str(exc)) from None

    def _nml_text(self, name: str) -> str | None:
        return None if self._nml is None else text(self._nml, name)

    # -- the file --------------------------------------------------------------------
    @property
    def program(self) -> str | None:
        """``EMheader/EBSD/ProgramName`` (EMEBSD.f90)."""
        return self._program

    @property
    def version(self) -> str | None:
        """EMsoft's version, ``EMheader/EBSD/Version``."""
        group = self._file.get("EMheader/EBSD")
        return text(group, "Version") if isinstance(group, h5py.Group) else None

    @property
    def open_options(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "dataset": self.dataset}
        if self._nav_option is not None:
            out["nav_shape"] = self._nav_option
        if self._pc_convention != "emsoft":
            out["pc_convention"] = self._pc_convention
        return out

    # -- geometry ---------------------------------------------------------------------
    @property
    def binning(self) -> int:
        """``binning`` of the namelist (the stored patterns are numsy / binning x numsx / binning)."""
        return self._binning

    @property
    def pixel_size_um(self) -> float | None:
        """``delta``: the unbinned detector pixel size in µm."""
        delta = self._nml_number("delta")
        return float(delta) if delta is not None and np.isfinite(delta) and delta > 0 else None

    @property
    def kv(self) -> float | None:
        """``energymax`` (keV; the top of the energy range summed, as kikuchipy reads it)."""
        for name in ("energymax", "energymin"):
            value = self._nml_number(name)
            if value is not None and np.isfinite(value):
                return float(value)
        return None

    @property
    def camera_tilt_deg(self) -> float:
        """``thetac``, degrees (EMsoft: positive below horizontal; kikuchipy's detector tilt)."""
        value = self._nml_number("thetac")
        return 0.0 if value is None or not np.isfinite(value) else float(value)

    @property
    def sample_tilt_deg(self) -> float:
        """70°: EMEBSD takes the sample tilt from its Monte Carlo file, which the output does not repeat."""
        return 70.0

    @cached_property
    def pattern_centre(self) -> PatternCentreData | None:
        """(xpc, ypc, L) of the namelist in Bruker's convention, the same at every point."""
        values = {name: self._nml_number(name) for name in ("xpc", "ypc", "L", "delta")}
        if self._nml is None:
            return None
        missing = [k for k, v in values.items() if v is None or not np.isfinite(v)]
        if missing:
            self._note(f"'{NAMELIST}' has no usable {', '.join(missing)}; no pattern centre")
            return None
        if values["delta"] <= 0 or values["L"] <= 0:
            self._note(f"'{NAMELIST}' gives L = {values['L']:g} µm and delta = {values['delta']:g} µm; no pattern centre")
            return None
        if (self._nml_text("anglefiletype") or "").lower() == "orpcdef":
            self._note("anglefiletype 'orpcdef': the per-pattern PCs were in the angle file, not here; the namelist PC is used")
        pc = convert_pc(
            [values["xpc"], values["ypc"], values["L"]], self._pc_convention, "bruker",
            shape=self.pattern_shape, binning=self._binning, px_size_um=values["delta"],
        )
        grids = [np.full(self.nav_shape, v) for v in pc]
        return PatternCentreData(*grids, convention="bruker", file_convention=self._pc_convention)

    # -- orientations and phase ---------------------------------------------------------
    @cached_property
    def _euler_data(self) -> tuple[np.ndarray, str, str] | None:
        """(N, 3) angles in radians, the units found in the file and how they were decided."""
        ds = self._file.get(EULER)
        if not isinstance(ds, h5py.Dataset):
            return None
        if ds.dtype.kind not in "iuf":
            self._note(f"'{EULER}' holds {ds.dtype} values, not angles; no orientations")
            return None
        angles = np.asarray(ds[()], dtype=np.float64)
        n = self.n_patterns
        if angles.shape == (3, n) and n != 3:
            self._note(f"'{EULER}' is stored (3, {n}); read transposed")
            angles = angles.T
        if angles.shape != (n, 3):
            self._note(f"'{EULER}' has shape {ds.shape}, not ({n}, 3) for the {n} patterns; no orientations")
            return None
        unit_attr = next((str(scalar(ds.attrs[k])) for k in ("Unit", "Units", "unit", "units") if k in ds.attrs), "")
        if "deg" in unit_attr.lower():
            units, how = "degrees", f"attribute Unit = {unit_attr!r}"
        elif "rad" in unit_attr.lower():
            units, how = "radians", f"attribute Unit = {unit_attr!r}"
        else:
            largest = float(np.nanmax(np.abs(angles))) if np.isfinite(angles).any() else 0.0
            if largest > _MAX_RADIANS:
                units, how = "degrees", f"values up to {largest:g} > 2π"
            else:
                units, how = "radians", f"values within ±2π (largest {largest:g})"
        if units == "degrees":
            angles = np.radians(angles)
        return angles, units, how

    @property
    def euler(self) -> np.ndarray | None:
        """``EulerAngles`` (Bunge) on the map, radians."""
        found = self._euler_data
        if found is None:
            return None
        return found[0].reshape(*self.nav_shape, 3)

    @property
    def phase_id(self) -> np.ndarray | None:
        """1 at every point (EMsoft simulates one phase)."""
        return np.ones(self.nav_shape, dtype=np.int64) if self.phases else None

    @cached_property
    def phases(self) -> list[dict[str, Any]]:
        """The phase of ``CrystalData``: name from ``xtalname``, space group, lattice (nm, degrees)."""
        crystal = self._file.get("CrystalData")
        if not isinstance(crystal, h5py.Group):
            return []
        xtal = text(self._file["EMData/EBSD"], "xtalname") if isinstance(self._file.get("EMData/EBSD"), h5py.Group) else None
        name = Path(xtal.replace("\\", "/")).stem if xtal else "phase 1"
        entry: dict[str, Any] = {"id": 1, "name": name, "space_group": None}
        try:
            sg = number(crystal, "SpaceGroupNumber", where=str(self.path))
            entry["space_group"] = None if sg is None else int(sg)
        except ValueError as exc:
            self._note(f"{exc}; no space group")
        lattice = crystal.get("LatticeParameters")
        if isinstance(lattice, h5py.Dataset) and lattice.size == 6 and lattice.dtype.kind in "iuf":
            entry["lattice"] = [float(v) for v in np.asarray(lattice[()], dtype=np.float64).reshape(6)]
        return [entry]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (used by ``kikuchi info``)."""
        out = super().describe()
        found = self._euler_data
        out.update(
            program=self.program,
            emsoft_version=self.version,
            euler_units_in_file=None if found is None else f"{found[1]} ({found[2]})",
            euler_convention=self._nml_text("eulerconvention"),
            pc_in_file=None if self._nml is None else {k: self._nml_number(k) for k in ("xpc", "ypc", "L", "delta")},
            **self._reader.describe(),
        )
        return out


def _sniff(probe: Probe) -> bool:
    f = probe.h5
    if f is None or not isinstance(f.get("EMData/EBSD"), h5py.Group):
        return False
    if (text(f, "Manufacturer") or "").lower() == "emsoft":
        return True
    header = f.get("EMheader/EBSD")
    return isinstance(header, h5py.Group) and (text(header, "ProgramName") or "").upper().startswith("EMEBSD")


FORMAT = FormatSpec(
    name="emsoft",
    description="EMsoft EBSD simulation output (EMEBSD, HDF5)",
    extensions=(),
    sniff=_sniff,
    open=EMsoftEBSDMap,
)
