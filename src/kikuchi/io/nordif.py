"""NORDIF acquisitions: ``Pattern.dat`` read in place, with ``Setting.txt`` and the bitmaps next to it.

A NORDIF acquisition folder holds::

    Pattern.dat                          uint8 patterns, map order (row after row), no header
    Setting.txt                          tab-separated "key<TAB>value<TAB>unit" lines in [Sections]
    Background acquisition pattern.bmp   the static background (8-bit)
    Background calibration pattern.bmp   the background of the calibration patterns
    Calibration (x,y).bmp                calibration patterns at electron-image pixel (x, y)

From ``Setting.txt`` (NORDIF 3, latin-1 or UTF-8) kikuchi takes:

==================================  ========================================================
``[Acquisition settings]``          ``Resolution`` ``WxH`` px: the pattern shape (h, w)
``[Area]``                          ``Number of samples`` ``AxB``: the map; ``Step size`` µm;
                                    ``Width``, ``Height`` µm (to check the map, below)
``[Microscope]``                    ``Accelerating voltage`` kV, ``Tilt angle`` (sample tilt)
``[Detector angles]``               ``Elevation`` (camera tilt = -elevation, as kikuchipy),
                                    ``Azimuthal`` (in :meth:`NordifFile.describe`)
``[Calibration settings]``          ``Resolution``: the calibration bitmaps' size (``describe``)
``[Calibration patterns]``          the calibration points, ``Calibration (x,y)`` (``describe``)
==================================  ========================================================

**Rows x columns.** ``Number of samples AxB`` is read as A rows by B columns
for non-square maps, as kikuchipy has done since its first NORDIF script
(2018: the first number is the slow axis of its reshape) and does now
(``ny, nx = ...split("x")``). No file here decides it, so where the
``[Area]`` width and height divided by the step give the two counts the
other way round, kikuchi follows ``[Area]`` (width / step = columns) and
says so in a note. Note that ``Resolution`` is width x height (as every
camera resolution): kikuchipy reads it so too.

NORDIF 3 files record no pattern centre; calibration patterns exist to find
one. Without ``Setting.txt``, pass ``pattern_shape=(h, w)`` (and
``nav_shape=(rows, cols)``; without it the map is 1 x N). A ``Pattern.dat``
shorter than its map gives its complete patterns and a warning.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.io._atomic import atomic_output
from kikuchi.io._raw import FixedPatterns
from kikuchi.io.source import EBSDMap, FormatSpec, MapFileError, Probe

__all__ = ["FORMAT", "NordifFile", "NordifSettings", "read_settings", "write_nordif"]

_logger = logging.getLogger(__name__)

PATTERN_FILE = "Pattern.dat"
SETTING_FILE = "Setting.txt"
BACKGROUND_FILE = "Background acquisition pattern.bmp"
CALIBRATION_BACKGROUND_FILE = "Background calibration pattern.bmp"
_CALIBRATION = re.compile(r"Calibration\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)")
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _find(folder: Path, name: str) -> Path | None:
    """``folder/name``, matching the name without regard to case (copies from Windows), or None."""
    exact = folder / name
    if exact.is_file():
        return exact
    try:
        for other in folder.iterdir():
            if other.name.lower() == name.lower() and other.is_file():
                return other
    except OSError:
        pass
    return None


# -- Setting.txt -----------------------------------------------------------------------------
@dataclass
class NordifSettings:
    """The sections of a NORDIF ``Setting.txt``: ``{section: {key: (value, unit)}}``, as written."""

    path: Path
    sections: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)

    def text(self, section: str, key: str) -> str | None:
        """The value of ``key`` in ``[section]``, or None."""
        entry = self.sections.get(section, {}).get(key)
        return entry[0] if entry and entry[0] else None

    def number(self, section: str, key: str) -> float | None:
        """The first number of the value (a decimal comma accepted), or None when there is none."""
        value = self.text(section, key)
        if value is None:
            return None
        m = _NUMBER.search(value.replace(",", ".") if "." not in value else value)
        return float(m.group()) if m else None

    def pair(self, section: str, key: str) -> tuple[int, int] | None:
        """A value ``AxB`` as (A, B), or None."""
        value = self.text(section, key)
        m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", value or "")
        return (int(m.group(1)), int(m.group(2))) if m else None


def read_settings(path: str | os.PathLike) -> NordifSettings:
    """Parse a NORDIF ``Setting.txt`` (UTF-8, else latin-1).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "Setting.txt"
    >>> _ = p.write_bytes(b"[Area]\\t\\t\\r\\nStep size\\t1.500\\t\\xb5m\\r\\nNumber of samples\\t3x4\\t#\\r\\n")
    >>> s = read_settings(p)
    >>> s.number("Area", "Step size"), s.pair("Area", "Number of samples")
    (1.5, (3, 4))
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        content = raw.decode("latin-1")
    settings = NordifSettings(path)
    section: dict[str, tuple[str, str]] | None = None
    for line in content.lstrip("\ufeff").splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        m = re.fullmatch(r"\[(.+)\]", stripped)
        if m:
            section = settings.sections.setdefault(m.group(1).strip(), {})
            continue
        if section is None:
            continue
        parts = line.split("\t")
        key = parts[0].strip()
        if key:
            section.setdefault(key, (parts[1].strip() if len(parts) > 1 else "", parts[2].strip() if len(parts) > 2 else ""))
    return settings


def _shape_option(value: Any, name: str, where: Path) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        a, b = (int(v) for v in value)
    except (TypeError, ValueError):
        raise MapFileError(f"{where}: {name}={value!r} is not a pair of counts") from None
    if a < 1 or b < 1:
        raise MapFileError(f"{where}: {name}={value!r} must be two positive counts")
    return a, b


# -- the reader ------------------------------------------------------------------------------
class NordifFile(EBSDMap):
    """A NORDIF ``Pattern.dat`` (uint8 patterns, no header) with its ``Setting.txt``, read in place.

    Use :func:`kikuchi.open` on ``Pattern.dat`` or on its folder. Options:
    ``pattern_shape=(h, w)`` and ``nav_shape=(rows, cols)`` (needed without
    ``Setting.txt``, or to override it), ``setting_file=`` (another settings
    file).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = write_nordif(d, np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5), step_um=0.5)
    >>> with NordifFile(d) as m:
    ...     m.nav_shape, m.pattern_shape, m.step_um, int(m[1, 2][0, 0])
    ((2, 3), (4, 5), (0.5, 0.5), 100)
    """

    format = "nordif"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        nav_shape: Sequence[int] | None = None,
        pattern_shape: Sequence[int] | None = None,
        setting_file: str | os.PathLike | None = None,
        dataset: str | None = None,
    ):
        path = Path(path)
        if path.is_dir():
            found = _find(path, PATTERN_FILE)
            if found is None:
                raise MapFileError(f"{path}: folder holds no {PATTERN_FILE} (a NORDIF acquisition folder has one)")
            path = found
        self.path = path
        self.notes = []
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        if dataset not in (None, "RawPatterns"):
            raise MapFileError(f"{path}: no pattern dataset '{dataset}' (a NORDIF Pattern.dat has RawPatterns only)")
        self.folder = path.parent
        self._nav_option = _shape_option(nav_shape, "nav_shape", path)
        self._pattern_option = _shape_option(pattern_shape, "pattern_shape", path)
        self._setting_option = None if setting_file is None else Path(setting_file)
        if self._setting_option is not None and not self._setting_option.is_file():
            raise FileNotFoundError(f"{self._setting_option}: no such settings file")
        setting_path = self._setting_option or _find(self.folder, SETTING_FILE)
        self.settings = read_settings(setting_path) if setting_path is not None else None
        self._samples_order = "not from Setting.txt"
        size = path.stat().st_size
        pattern = self._pattern_shape_from(size)
        nav = self._nav_shape_from(size, pattern)
        per = pattern[0] * pattern[1]
        in_file, tail = divmod(size, per)
        self._in_file = in_file
        rows, cols = nav
        expected = rows * cols
        if in_file < expected:
            self._note(
                f"{path.name} holds {in_file} complete {pattern[0]} x {pattern[1]} patterns, the {rows} x {cols} map needs "
                f"{expected} (interrupted acquisition?); the {expected - in_file} points from row {in_file // cols}, "
                f"col {in_file % cols} on have no pattern"
            )
        elif in_file > expected:
            self._note(f"{path.name} holds {in_file} patterns, the {rows} x {cols} map uses the first {expected}; {in_file - expected} left out")
        if tail:
            self._note(f"{tail} bytes after the last complete pattern (pattern {in_file}) are a partial pattern, left out")
        self._raw = FixedPatterns(path, offset=0, pattern_bytes=per)
        self._background: np.ndarray | None | bool = False
        try:
            self._set_map(nav_shape=nav, pattern_shape=pattern, dtype=np.uint8, n_patterns=min(in_file, expected))
        except BaseException:
            self._raw.close()
            raise

    # -- shapes from the settings and the options ------------------------------------------------
    def _where(self, section: str, key: str) -> str:
        return f"{self.settings.path.name} [{section}] {key}" if self.settings else key

    def _pattern_shape_from(self, size: int) -> tuple[int, int]:
        """(h, w): the option, else [Acquisition settings] Resolution (w x h), else inferred or refused."""
        if self._pattern_option is not None:
            shape, source = self._pattern_option, "pattern_shape option"
        elif self.settings is not None and self.settings.pair("Acquisition settings", "Resolution") is not None:
            w, h = self.settings.pair("Acquisition settings", "Resolution")
            shape, source = (h, w), self._where("Acquisition settings", "Resolution") + f" {w}x{h}"
        else:
            guess = self._square_guess(size)
            why = (
                f"no {SETTING_FILE} next to it" if self.settings is None
                else f"{self.settings.path.name} gives no [Acquisition settings] Resolution (WxH px)"
            )
            if guess is None:
                raise MapFileError(
                    f"{self.path}: {why}, so the pattern size is unknown: pass pattern_shape=(height, width)"
                    + ("" if self._nav_option else " and nav_shape=(rows, cols)")
                    + " to kikuchi.open"
                )
            (h, w), (rows, cols) = guess
            self._note(f"{why}; {size} bytes for the {rows} x {cols} map are {h} x {w} patterns (pass pattern_shape= to say otherwise)")
            return h, w
        per = shape[0] * shape[1]
        if size < per:
            hint = self._square_guess(size)
            raise MapFileError(
                f"{self.path}: {size} bytes, less than one {shape[0]} x {shape[1]} pattern ({per} bytes) of the {source}; "
                + (f"the {hint[1][0]} x {hint[1][1]} map fits {hint[0][0]} x {hint[0][1]} patterns: " if hint else "")
                + "pass pattern_shape=(height, width)"
            )
        return shape

    def _square_guess(self, size: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """((h, w), (rows, cols)): square patterns filling ``size`` bytes for the map of nav_shape or the settings, or None."""
        nav = self._nav_option or self._samples_in_settings()
        if nav is None or size % (nav[0] * nav[1]):
            return None
        per = size // (nav[0] * nav[1])
        side = math.isqrt(per)
        return ((side, side), nav) if side > 0 and side * side == per else None

    def _samples_in_settings(self) -> tuple[int, int] | None:
        return None if self.settings is None else self.settings.pair("Area", "Number of samples")

    def _nav_shape_from(self, size: int, pattern: tuple[int, int]) -> tuple[int, int]:
        """(rows, cols): the option, else [Area] Number of samples (rows x cols, checked with [Area]), else 1 x N."""
        if self._nav_option is not None:
            self._samples_order = "nav_shape option"
            return self._nav_option
        samples = self._samples_in_settings()
        n = size // (pattern[0] * pattern[1])
        if samples is None:
            if self.settings is not None:
                self._note(f"{self.settings.path.name} gives no [Area] Number of samples (AxB); the map is 1 x {n} (pass nav_shape=(rows, cols))")
            return (1, n)
        a, b = samples
        if a * b > 100 * n + 10**6:  # no acquisition stops that early: a wrong settings file
            raise MapFileError(
                f"{self.path}: {self.settings.path.name} [Area] Number of samples {a}x{b} for the {n} patterns of {self.path.name}; "
                "pass nav_shape=(rows, cols)"
            )
        rows, cols = a, b
        self._samples_order = "rows x cols"
        step = self.settings.number("Area", "Step size")
        width = self.settings.number("Area", "Width")
        height = self.settings.number("Area", "Height")
        if step and width and height and step > 0:
            along_w, along_h = width / step, height / step
            if abs(along_w - b) < 0.5 and abs(along_h - a) < 0.5:
                if a != b:
                    self._samples_order = "rows x cols (confirmed by [Area] width and height)"
            elif a != b and abs(along_w - a) < 0.5 and abs(along_h - b) < 0.5:
                rows, cols = b, a
                self._samples_order = "cols x rows (from [Area] width and height)"
                self._note(
                    f"{self.settings.path.name}: Number of samples {a}x{b}, and [Area] {width:g} x {height:g} µm (width x height) "
                    f"at step {step:g} µm is {a} columns by {b} rows: read as {rows} rows x {cols} columns"
                )
            else:
                self._note(
                    f"{self.settings.path.name}: [Area] {width:g} x {height:g} µm (width x height) at step {step:g} µm is "
                    f"{along_w:g} x {along_h:g} steps, not the Number of samples {a}x{b}; the step may be wrong (used as is)"
                )
        return rows, cols

    # -- reading -----------------------------------------------------------------------------
    def _read_range(self, start: int, stop: int, out: np.ndarray) -> None:
        self._raw.read_into(start, stop, out)

    def close(self) -> None:
        """Close the file."""
        self._raw.close()

    @property
    def open_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"format": self.format}
        if self._nav_option is not None:
            options["nav_shape"] = tuple(self._nav_option)
        if self._pattern_option is not None:
            options["pattern_shape"] = tuple(self._pattern_option)
        if self._setting_option is not None:
            options["setting_file"] = str(self._setting_option.resolve())
        return options

    # -- what the settings know --------------------------------------------------------------------
    def _setting_number(self, section: str, key: str, *, unknown: str = "unknown") -> float | None:
        """The number of ``[section] key``, None when absent; a value without a number is said once (``unknown``: what is used)."""
        if self.settings is None:
            return None
        number = self.settings.number(section, key)
        text = self.settings.text(section, key)
        if number is None and text is not None:
            said = self.__dict__.setdefault("_said", set())
            if (section, key) not in said:
                said.add((section, key))
                self._note(f"{self._where(section, key)} is {text!r}, not a number; {unknown}")
        return number

    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step): NORDIF's one ``Step size`` for both; (1, 1) when unknown."""
        step = self._setting_number("Area", "Step size", unknown="the step is taken as 1 µm")
        if step is not None and step <= 0:
            said = self.__dict__.setdefault("_said", set())
            if ("Area", "Step size <= 0") not in said:
                said.add(("Area", "Step size <= 0"))
                self._note(f"{self._where('Area', 'Step size')} is {step:g}, not a step; the step is taken as 1 µm")
        return (step, step) if step and step > 0 else (1.0, 1.0)

    @property
    def kv(self) -> float | None:
        return self._setting_number("Microscope", "Accelerating voltage")

    @property
    def sample_tilt_deg(self) -> float:
        tilt = self._setting_number("Microscope", "Tilt angle", unknown="the sample tilt is taken as 70°")
        return 70.0 if tilt is None else tilt

    @property
    def camera_tilt_deg(self) -> float:
        """Minus the ``[Detector angles] Elevation`` (kikuchipy's reading), 0 when absent."""
        elevation = self._setting_number("Detector angles", "Elevation", unknown="the camera tilt is taken as 0°")
        return 0.0 if not elevation else -elevation

    @property
    def static_background(self) -> np.ndarray | None:
        """``Background acquisition pattern.bmp`` as uint8 (h, w), or None (absent, unreadable or another shape)."""
        if self._background is False:
            self._background = self._read_background()
        return self._background  # type: ignore[return-value]

    def _read_background(self) -> np.ndarray | None:
        path = _find(self.folder, BACKGROUND_FILE)
        if path is None:
            return None
        try:
            from PIL import Image

            with Image.open(path) as im:
                bg = np.asarray(im.convert("L") if im.mode not in ("L", "I;16") else im)
        except (OSError, ValueError) as exc:
            self._note(f"{path.name} is not a readable image ({exc}); no static background")
            return None
        if bg.shape != self.pattern_shape:
            self._note(f"{path.name} is {bg.shape[0]} x {bg.shape[1]}, the patterns {self.pattern_shape[0]} x {self.pattern_shape[1]}; no static background")
            return None
        return bg

    def calibration_patterns(self) -> list[dict[str, Any]]:
        """The calibration points: ``file``, electron-image pixel ``x_px``, ``y_px``, ``in_settings``, ``exists``, ``shape``.

        From ``[Calibration patterns]`` (coordinates from the key
        ``Calibration (x,y)``, else from its value ``x,y``) and from the
        ``Calibration (x,y).bmp`` files of the folder; ``shape`` is the
        bitmap's (h, w), None when it is missing or unreadable.
        """
        points: dict[tuple[int, int], dict[str, Any]] = {}
        if self.settings is not None:
            for key, (value, _unit) in self.settings.sections.get("Calibration patterns", {}).items():
                m = _CALIBRATION.fullmatch(key.strip()) or re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*", value)
                if m and key.strip().startswith("Calibration"):
                    x, y = int(m.group(1)), int(m.group(2))
                    points[(x, y)] = {"file": f"Calibration ({x},{y}).bmp", "x_px": x, "y_px": y, "in_settings": True, "exists": False}
        try:
            names = sorted(p.name for p in self.folder.iterdir() if p.suffix.lower() == ".bmp")
        except OSError:
            names = []
        for name in names:
            m = _CALIBRATION.fullmatch(Path(name).stem)
            if m:
                x, y = int(m.group(1)), int(m.group(2))
                entry = points.setdefault((x, y), {"file": name, "x_px": x, "y_px": y, "in_settings": False})
                entry.update(file=name, exists=True)
        for entry in points.values():
            entry["shape"] = _bitmap_shape(self.folder / entry["file"]) if entry["exists"] else None
        return list(points.values())

    def _calibration_resolution(self) -> list[int] | None:
        """[Calibration settings] Resolution as [h, w] (the calibration bitmaps' size), or None."""
        pair = None if self.settings is None else self.settings.pair("Calibration settings", "Resolution")
        return None if pair is None else [pair[1], pair[0]]

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        s = self.settings
        get = (lambda sec, key: s.text(sec, key)) if s is not None else (lambda sec, key: None)
        out["nordif"] = {
            "settings_file": None if s is None else str(s.path),
            "software_version": get("NORDIF", "Software version"),
            "microscope": " ".join(v for v in (get("Microscope", "Manufacturer"), get("Microscope", "Model")) if v) or None,
            "magnification": self._setting_number("Microscope", "Magnification"),
            "working_distance_mm": self._setting_number("Microscope", "Working distance"),
            "elevation_deg": self._setting_number("Detector angles", "Elevation"),
            "azimuthal_deg": self._setting_number("Detector angles", "Azimuthal"),
            "frame_rate_fps": self._setting_number("Acquisition settings", "Frame rate"),
            "exposure_time_us": self._setting_number("Acquisition settings", "Exposure time"),
            "gain": self._setting_number("Acquisition settings", "Gain"),
            "number_of_samples": get("Area", "Number of samples"),
            "number_of_samples_read_as": self._samples_order,
            "scan_time": get("Area", "Scan time"),
            "complete_patterns_in_file": int(self._in_file),
            "background_files": [n for n in (BACKGROUND_FILE, CALIBRATION_BACKGROUND_FILE) if _find(self.folder, n)],
            "calibration_resolution": self._calibration_resolution(),
            "calibration_patterns": self.calibration_patterns(),
        }
        return out


def _bitmap_shape(path: Path) -> tuple[int, int] | None:
    """(h, w) of an image from its header, or None when unreadable."""
    try:
        from PIL import Image

        with Image.open(path) as im:
            return (im.height, im.width)
    except (OSError, ValueError):
        return None


# -- recognition ---------------------------------------------------------------------------------
def _sniff(probe: Probe) -> bool:
    """``Pattern.dat``; a folder holding ``Pattern.dat`` and ``Setting.txt``; a ``.dat`` beside a NORDIF ``Setting.txt``."""
    path = probe.path
    if path.is_dir():
        return _find(path, PATTERN_FILE) is not None and _find(path, SETTING_FILE) is not None
    if not path.is_file():
        return False
    if path.name.lower() == PATTERN_FILE.lower():
        return True
    if path.suffix.lower() != ".dat":
        return False
    settings = _find(path.parent, SETTING_FILE)
    if settings is None:
        return False
    with open(settings, "rb") as f:
        return f.read(64).lstrip(b"\xef\xbb\xbf").startswith(b"[NORDIF]")


# -- writing -------------------------------------------------------------------------------------
_SETTINGS_TEMPLATE = """\
[NORDIF]\t\t
Software version\t3.1.2\t
\t\t
[Microscope]\t\t
Manufacturer\tkikuchi\t
Model\twrite_nordif\t
Magnification\t200\t#
Scan direction\tDirect\t
Accelerating voltage\t{kv:g}\tkV
Working distance\t{wd:g}\tmm
Tilt angle\t{tilt:g}\t\u00b0
\t\t
[Detector angles]\t\t
Euler 1\t0\t\u00b0
Euler 2\t0\t\u00b0
Euler 3\t0\t\u00b0
Azimuthal\t0\t\u00b0
Elevation\t{elevation:g}\t\u00b0
\t\t
[Acquisition settings]\t\t
Frame rate\t{fps:g}\tfps
Resolution\t{w}x{h}\tpx
Exposure time\t{exposure:g}\t\u00b5s
Gain\t0\t
\t\t
[Region of interest]\t\t
\t\t
[Area]\t\t
Top\t0.000 (0)\t\u00b5m (px)
Left\t0.000 (0)\t\u00b5m (px)
Width\t{width:.3f} (0)\t\u00b5m (px)
Height\t{height:.3f} (0)\t\u00b5m (px)
Step size\t{step:.3f}\t\u00b5m
Number of samples\t{rows}x{cols}\t#
Scan time\t00:00:00\t
\t\t
"""


def _as_map(patterns: Any, where: Path) -> np.ndarray:
    patterns = np.asarray(patterns)
    if patterns.ndim == 3:
        patterns = patterns[np.newaxis]
    if patterns.ndim != 4 or 0 in patterns.shape:
        raise ValueError(f"{where}: patterns must be (rows, cols, h, w) or (n, h, w), got shape {patterns.shape}")
    if patterns.dtype != np.uint8:
        raise ValueError(f"{where}: NORDIF patterns are uint8, got {patterns.dtype}; convert them first")
    return patterns


def _single_step(step_um: float | Sequence[float], where: Path) -> float:
    steps = np.atleast_1d(np.asarray(step_um, dtype=float))
    if steps.size not in (1, 2) or not np.all(steps > 0) or not np.allclose(steps, steps[0]):
        raise ValueError(f"{where}: NORDIF records one step size for rows and columns, got step_um={step_um!r}")
    return float(steps[0])


def _settings_text(*, nav: tuple[int, int], pattern: tuple[int, int], step: float, kv: float,
                   sample_tilt_deg: float, camera_tilt_deg: float) -> bytes:
    rows, cols = nav
    h, w = pattern
    text = _SETTINGS_TEMPLATE.format(
        kv=kv, wd=24.7, tilt=sample_tilt_deg, elevation=-camera_tilt_deg + 0.0, fps=200, exposure=3500,
        w=w, h=h, width=cols * step, height=rows * step, step=step, rows=rows, cols=cols,
    )
    return text.replace("\n", "\r\n").encode("latin-1")


def write_nordif(
    folder: str | os.PathLike,
    patterns: Any,
    *,
    step_um: float | Sequence[float] = 1.0,
    kv: float = 20.0,
    sample_tilt_deg: float = 70.0,
    camera_tilt_deg: float = 0.0,
    static_background: Any = None,
    settings: bool = True,
) -> Path:
    """Write a NORDIF acquisition folder: ``Pattern.dat``, ``Setting.txt`` and optionally the background bitmap.

    Parameters
    ----------
    folder
        Folder to write into (created when missing).
    patterns
        uint8 (rows, cols, h, w) map, or (n, h, w) for a 1 x n map.
    step_um
        The step size (NORDIF has one for rows and columns; a pair must be equal).
    kv, sample_tilt_deg, camera_tilt_deg
        Accelerating voltage, ``Tilt angle`` and minus ``Elevation``.
    static_background
        uint8 (h, w): written as ``Background acquisition pattern.bmp``.
    settings
        False: write ``Pattern.dat`` only (an acquisition without its settings).

    Returns
    -------
    pathlib.Path
        The ``Pattern.dat`` written.

    Raises
    ------
    ValueError
        Not uint8, a wrong shape, or unequal steps.
    """
    folder = Path(folder)
    patterns = _as_map(patterns, folder)
    step = _single_step(step_um, folder)
    rows, cols, h, w = patterns.shape
    background = None
    if static_background is not None:
        background = np.asarray(static_background)
        if background.shape != (h, w) or background.dtype != np.uint8:
            raise ValueError(f"{folder}: static_background must be uint8 of the pattern shape {(h, w)}, got {background.dtype} {background.shape}")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / PATTERN_FILE
    with atomic_output(target) as tmp, open(tmp, "wb") as f:
        _write_rows(f, patterns)
    if settings:
        with atomic_output(folder / SETTING_FILE) as tmp:
            tmp.write_bytes(_settings_text(nav=(rows, cols), pattern=(h, w), step=step, kv=kv,
                                           sample_tilt_deg=sample_tilt_deg, camera_tilt_deg=camera_tilt_deg))
    if background is not None:
        from PIL import Image

        with atomic_output(folder / BACKGROUND_FILE) as tmp:
            Image.fromarray(background).save(tmp, format="BMP")
    return target


def _write_rows(f: Any, block: np.ndarray) -> None:
    """Write a uint8 map: in one call when contiguous, else map row by map row."""
    if block.flags.c_contiguous:
        f.write(memoryview(block).cast("B"))
    else:
        for row in block:
            f.write(memoryview(np.ascontiguousarray(row)).cast("B"))


def _write_map(path: str | os.PathLike, source: EBSDMap, **options: Any) -> Path:
    """Write an open uint8 pattern map as a NORDIF folder (``FORMAT.writes``): ``path`` is the folder or its Pattern.dat."""
    path = Path(path)
    folder = path.parent if path.suffix.lower() == ".dat" else path
    if source.dtype != np.uint8:
        raise ValueError(f"{folder}: NORDIF patterns are uint8, the map's are {source.dtype}")
    if source.grid_type != "square":
        raise ValueError(f"{folder}: NORDIF maps are square grids, this one is {source.grid_type}")
    rows, cols = source.nav_shape
    h, w = source.pattern_shape
    step = _single_step(source.step_um, folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_output(folder / PATTERN_FILE) as tmp, open(tmp, "wb") as f:
        for r in range(rows):
            _write_rows(f, source.read_rows(r, r + 1))
    with atomic_output(folder / SETTING_FILE) as tmp:
        tmp.write_bytes(_settings_text(nav=(rows, cols), pattern=(h, w), step=step, kv=source.kv or 20.0,
                                       sample_tilt_deg=source.sample_tilt_deg, camera_tilt_deg=source.camera_tilt_deg))
    return folder / PATTERN_FILE


FORMAT = FormatSpec(
    name="nordif",
    description="NORDIF acquisition: Pattern.dat (uint8, no header) with Setting.txt and bitmaps",
    extensions=(".dat",),
    sniff=_sniff,
    open=NordifFile,
    writes=_write_map,
)
