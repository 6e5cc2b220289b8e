"""EDAX/TSL UP1 (8-bit) and UP2 (16-bit) pattern files, read in place.

A little-endian header, then the patterns, one after the other, each
``height`` rows of ``width`` pixels (uint8 in ``.up1``, uint16 in ``.up2``)::

    byte  type     field
       0  int32    version (1, 2, 3 or 4)
       4  int32    pattern width (px)
       8  int32    pattern height (px)
      12  int32    offset of the first pattern (16 in version 1, 42 in version 3)
    -- versions >= 2, when the offset leaves room for them (see below) --
      16  uint8    extra-patterns flag (hexagonal grids, see below)
      17  int32    map width: columns (the long rows, NCOLS_ODD, of a hexagonal grid)
      21  int32    map height: rows
      25  uint8    grid flag: 0 square, 1 hexagonal
      26  float64  x step (µm, along a row)
      34  float64  y step (µm, between rows)
      42  patterns, map order (row after row)

Checked against every file of ``../shared/data/vendor_patterns/up*`` (two
kikuchipy files, three written by the data set's own ``write_up``): the two
flags are single bytes (not int32 as some descriptions say), which is why
the version 3 header is 42 bytes.

Where the descriptions disagree, kikuchi decides so (docs/formats.md):

* **Version 4.** PyEBSDIndex reads the version 3 fields at the same
  positions; EMSphInx ignores them (its "crude hack" treats version 4 as
  version 1, keeping only the offset). kikuchi reads them when the offset
  leaves room for them and they are consistent (positive map shape, flags 0
  or 1, finite steps), and otherwise falls back to version 1 (a note says
  so). Version 2 (which PyEBSDIndex cannot read and kikuchipy refuses) is
  read as version 3, as EMSphInx does. The header's offset is always honoured.
* **Version 1** records no map: the map is 1 x N, unless ``nav_shape=(rows,
  cols)`` is given or an ANG file with the same stem lies next to the file
  (its ``# NCOLS_ODD``, ``# NCOLS_EVEN``, ``# NROWS``, ``# XSTEP``,
  ``# YSTEP``, ``# GRID`` lines give the grid and the step).
* **Hexagonal grids**: rows alternate ``cols`` and ``cols - 1`` points (the
  first row long). Two layouts exist: *packed* (``rows * cols - rows // 2``
  patterns, the short rows stored short; EMSphInx's count without the extra
  flag) and *padded* (``rows * cols`` patterns, one extra pattern ending
  each short row; EMSphInx's count with the extra flag). kikuchi decides by
  the file size, and by the flag when the size fits neither (kikuchipy's
  dummy says 3 x 3 with the flag and holds 10 patterns: it is read padded,
  the 10th pattern left out, with a note). The map is (rows, cols) with the
  missing last point of every short row at index -1.
* **Steps**: ``step_um`` is (row step, column step) = (y step, x step).
  (kikuchipy gives the y step to the x axis of UP files it reads as 1-D.)

A file shorter than its map (an interrupted acquisition) gives the complete
patterns it holds, the remaining points without a pattern, and a warning.

The header does not say the bit depth: the extension does. A file is
recognised by its content (a plausible header whose offset and map fit the
file size in whole 8- or 16-bit patterns); named otherwise than
``.up1``/``.up2``, its bit depth is the one that fits, and ``bits=8|16``
decides where both do (version 1 files, with no map to check against).
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.io._atomic import atomic_output
from kikuchi.io._raw import FixedPatterns
from kikuchi.io.source import EBSDMap, FormatSpec, MapFileError, Probe

__all__ = ["FORMAT", "UpFile", "UpHeader", "read_up_header", "write_up"]

_logger = logging.getLogger(__name__)

#: Header bytes of version 1 (the four int32 fields) and of version 3.
HEADER_V1 = 16
HEADER_V3 = 42
#: Versions kikuchi reads.
VERSIONS = (1, 2, 3, 4)
#: Largest pattern side accepted as plausible (content recognition and garbage).
MAX_PATTERN_SIDE = 16384
#: A header map may need at most this many times the patterns in the file (plus a million) before it is taken for corrupt.
_MAP_SLACK = 100
_V3 = struct.Struct("<BiiBdd")  # bytes 16..41
_DTYPES = {".up1": np.dtype("<u1"), ".up2": np.dtype("<u2")}


@dataclass(frozen=True)
class UpHeader:
    """The header of a UP file, as stored.

    ``n_cols``, ``n_rows``, ``x_step``, ``y_step`` are None when the file
    records no map (version 1, or a version 4 header without the fields).
    """

    version: int
    width: int
    height: int
    offset: int
    extra_patterns: int | None = None
    n_cols: int | None = None
    n_rows: int | None = None
    hexagonal: bool = False
    x_step: float | None = None
    y_step: float | None = None
    #: Why the map fields were not used (a version 4 header without them), or None.
    map_fields_ignored: str | None = None

    @property
    def has_map(self) -> bool:
        return self.n_cols is not None


def read_up_header(head: bytes, *, where: str = "UP file") -> UpHeader:
    """Parse a UP header from the first bytes of a file (at least 42 for versions >= 2).

    Raises :class:`MapFileError` (prefixed ``where``) when the bytes are not
    a UP header kikuchi reads.

    >>> h = read_up_header(struct.pack("<4i", 1, 60, 48, 16))
    >>> h.version, h.width, h.height, h.offset, h.has_map
    (1, 60, 48, 16, False)
    >>> h = read_up_header(struct.pack("<4iBiiBdd", 3, 60, 48, 42, 0, 4, 3, 0, 2.0, 1.0))
    >>> h.n_rows, h.n_cols, h.hexagonal, (h.y_step, h.x_step)
    (3, 4, False, (1.0, 2.0))
    """
    if len(head) < HEADER_V1:
        raise MapFileError(f"{where}: {len(head)} bytes, shorter than the 16-byte header of a UP file")
    version, width, height, offset = struct.unpack_from("<4i", head, 0)
    if version not in VERSIONS:
        raise MapFileError(
            f"{where}: not an EDAX UP file kikuchi reads: header version {version} (expected 1, 2, 3 or 4)"
        )
    if not (1 <= width <= MAX_PATTERN_SIDE and 1 <= height <= MAX_PATTERN_SIDE):
        raise MapFileError(f"{where}: not an EDAX UP file: pattern size {width} x {height} px in the header")
    least = HEADER_V1 if version == 1 else HEADER_V3
    if version in (2, 3) and offset < HEADER_V3:
        raise MapFileError(f"{where}: version {version} header gives the patterns at byte {offset}, inside its own 42 bytes")
    if offset < HEADER_V1:
        raise MapFileError(f"{where}: header gives the patterns at byte {offset}, inside its own 16 bytes")
    if version == 1 or (version == 4 and offset < HEADER_V3):
        why = None if version == 1 else f"version 4 header of {offset} bytes has no room for the map fields"
        return UpHeader(version, width, height, offset, map_fields_ignored=why)
    if len(head) < least:
        raise MapFileError(f"{where}: {len(head)} bytes, shorter than the {least}-byte version {version} header")
    extra, n_cols, n_rows, hex_flag, x_step, y_step = _V3.unpack_from(head, HEADER_V1)
    problems = []
    if n_cols < 1 or n_rows < 1:
        problems.append(f"map of {n_rows} rows x {n_cols} columns")
    if extra not in (0, 1):
        problems.append(f"extra-patterns flag {extra}")
    if hex_flag not in (0, 1):
        problems.append(f"grid flag {hex_flag}")
    if not (math.isfinite(x_step) and math.isfinite(y_step)):
        problems.append(f"steps ({x_step}, {y_step})")
    if problems:
        what = ", ".join(problems)
        if version == 4:  # EMSphInx's reading: no map fields in version 4
            return UpHeader(version, width, height, offset, map_fields_ignored=f"version 4 map fields are implausible ({what})")
        raise MapFileError(f"{where}: version {version} header is corrupt: {what}")
    return UpHeader(
        version, width, height, offset,
        extra_patterns=int(extra), n_cols=int(n_cols), n_rows=int(n_rows), hexagonal=bool(hex_flag),
        x_step=float(x_step), y_step=float(y_step),
    )


def hex_index_map(rows: int, cols: int, *, padded: bool, n_stored: int | None = None) -> np.ndarray:
    """(rows, cols) storage index of each point of a hexagonal grid; -1 at the last point of short rows.

    Rows alternate ``cols`` and ``cols - 1`` points, the first row long.
    ``padded``: every row stores ``cols`` patterns (the last one of a short
    row is not on the map); else short rows are stored short. Points whose
    index is ``n_stored`` or more (a truncated file) get -1 too.

    >>> hex_index_map(3, 3, padded=False).tolist()
    [[0, 1, 2], [3, 4, -1], [5, 6, 7]]
    >>> hex_index_map(3, 3, padded=True).tolist()
    [[0, 1, 2], [3, 4, -1], [6, 7, 8]]
    """
    have = np.ones((rows, cols), dtype=bool)
    have[1::2, cols - 1] = False
    index_map = np.full((rows, cols), -1, dtype=np.int64)
    if padded:
        index_map[have] = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)[have]
    else:
        index_map[have] = np.arange(int(have.sum()), dtype=np.int64)
    if n_stored is not None:
        index_map[index_map >= n_stored] = -1
    return index_map


def hex_counts(rows: int, cols: int) -> tuple[int, int]:
    """Patterns of a hexagonal grid stored packed and padded: ``(rows * cols - rows // 2, rows * cols)``."""
    return rows * cols - rows // 2, rows * cols


# -- companion ANG header ------------------------------------------------------------------
def _companion_ang(path: Path) -> Path | None:
    """The ANG file with the same stem as ``path`` in its folder (any case of ``.ang``), or None."""
    for candidate in (path.with_suffix(".ang"), path.with_suffix(".ANG")):
        if candidate.is_file():
            return candidate
    try:
        for other in path.parent.iterdir():
            if other.stem == path.stem and other.suffix.lower() == ".ang" and other.is_file():
                return other
    except OSError:
        pass
    return None


_ANG_GRID_KEYS = ("GRID", "XSTEP", "YSTEP", "NCOLS_ODD", "NCOLS_EVEN", "NROWS")


def _ang_grid(path: Path) -> dict[str, Any]:
    """The grid fields of an ANG header (only the ``#`` lines are read); missing fields are absent."""
    found: dict[str, Any] = {}
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.lstrip("\ufeff")
            if not line.startswith("#"):
                break
            m = re.match(r"#\s*([A-Z_]+)\s*:\s*(\S+)", line)
            if m and m.group(1) in _ANG_GRID_KEYS:
                key, value = m.groups()
                if key == "GRID":
                    found[key] = value
                else:
                    try:
                        found[key] = int(value) if key.startswith("N") else float(value)
                    except ValueError:
                        pass
    return found


# -- the reader ----------------------------------------------------------------------------
def _nav_option(nav_shape: Any, where: Path) -> tuple[int, int] | None:
    if nav_shape is None:
        return None
    try:
        rows, cols = (int(v) for v in nav_shape)
    except (TypeError, ValueError):
        raise MapFileError(f"{where}: nav_shape={nav_shape!r} is not (rows, cols)") from None
    if rows < 1 or cols < 1:
        raise MapFileError(f"{where}: nav_shape={nav_shape!r} must be two positive counts (rows, cols)")
    return rows, cols


class UpFile(EBSDMap):
    """An EDAX/TSL UP1 or UP2 pattern file, read in place (no copy, no memory map).

    Use :func:`kikuchi.open`. Options: ``nav_shape=(rows, cols)`` for files
    that record no map (version 1), or to override the header's; ``bits=8``
    or ``16`` for a file named without ``.up1``/``.up2`` whose content does
    not tell (the extension gives the bit depth; the header does not).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.up2"
    >>> pats = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    >>> _ = write_up(p, pats, step_um=(0.5, 1.0))
    >>> with UpFile(p) as m:
    ...     m.nav_shape, m.pattern_shape, str(m.dtype), m.step_um, int(m[1, 2][0, 0])
    ((2, 3), (4, 5), 'uint16', (0.5, 1.0), 100)
    """

    format = "edax_up"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        nav_shape: Sequence[int] | None = None,
        bits: int | None = None,
        dataset: str | None = None,
    ):
        self.path = Path(path)
        self.notes = []
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        if dataset not in (None, "RawPatterns"):
            raise MapFileError(f"{self.path}: no pattern dataset '{dataset}' (a UP file has RawPatterns only)")
        if bits not in (None, 8, 16):
            raise MapFileError(f"{self.path}: bits={bits!r}; UP patterns are 8 (.up1) or 16 (.up2) bits")
        self._bits_option = bits
        self._nav_option = _nav_option(nav_shape, self.path)
        size = self.path.stat().st_size
        with open(self.path, "rb") as f:
            head = f.read(HEADER_V3)
        header = read_up_header(head, where=str(self.path))
        if header.offset > size:
            raise MapFileError(f"{self.path}: header gives the patterns at byte {header.offset}, past the end of the {size}-byte file")
        suffix = self.path.suffix.lower()
        if bits is not None:
            dtype, self._bits_from = np.dtype(f"<u{bits // 8}"), "bits option"
        elif suffix in _DTYPES:
            dtype, self._bits_from = _DTYPES[suffix], "extension"
        else:
            dtype, self._bits_from = _content_dtype(header, size, where=self.path), "content"
        self.header = header
        self._file_size = size
        self._pattern_bytes = header.width * header.height * dtype.itemsize
        data_bytes = size - header.offset
        self._in_file = data_bytes // self._pattern_bytes
        self._tail_bytes = data_bytes % self._pattern_bytes
        if self._in_file == 0:
            raise MapFileError(
                f"{self.path}: holds no complete pattern: {data_bytes} bytes after the {header.offset}-byte header, "
                f"one {header.height} x {header.width} {dtype.name} pattern takes {self._pattern_bytes}"
            )
        if header.map_fields_ignored:
            self._note(f"{header.map_fields_ignored}; read as version 1 (no map shape in the file)")
        self._step: tuple[float, float] | None = None
        self._grid = "square"
        self._layout = "row-major"
        self._map_from = "header"
        index_map, n_patterns, nav = self._plan()
        if self._tail_bytes:
            self._note(
                f"{self._tail_bytes} bytes after the last complete pattern (pattern {self._in_file}) are a partial pattern, left out"
            )
        self._raw = FixedPatterns(self.path, offset=header.offset, pattern_bytes=self._pattern_bytes)
        try:
            self._set_map(nav_shape=nav, pattern_shape=(header.height, header.width), dtype=dtype,
                          n_patterns=n_patterns, index_map=index_map)
        except BaseException:
            self._raw.close()
            raise

    # -- the map ------------------------------------------------------------------------------
    def _plan(self) -> tuple[np.ndarray | None, int, tuple[int, int]]:
        """(index map or None for row-major, stored patterns read, (rows, cols)), and the step and grid."""
        h = self.header
        n = self._in_file
        if self._nav_option is not None:
            rows, cols = self._nav_option
            self._map_from = "nav_shape option"
            if h.has_map and h.hexagonal:
                if (rows, cols) != (h.n_rows, h.n_cols):
                    raise MapFileError(
                        f"{self.path}: nav_shape={self._nav_option} for a hexagonal grid of {h.n_rows} x {h.n_cols} in the header; "
                        "a hexagonal map keeps the header's shape"
                    )
                return self._plan_hex(rows, cols, extra_flag=h.extra_patterns)
            if h.has_map:
                self._step = (h.y_step, h.x_step)
            return self._plan_square(rows, cols, "nav_shape")
        if h.has_map and h.n_rows * h.n_cols > _MAP_SLACK * n + 10**6:  # no acquisition stops that early: a corrupt header
            what = f"a map of {h.n_rows} x {h.n_cols} points for the {n} patterns the file holds"
            if h.version != 4:
                raise MapFileError(f"{self.path}: version {h.version} header is corrupt: {what}; pass nav_shape=(rows, cols)")
            self._note(f"version 4 map fields are implausible ({what}); read as version 1 (no map shape in the file)")
        elif h.has_map:
            self._step = (h.y_step, h.x_step)
            if h.hexagonal:
                return self._plan_hex(h.n_rows, h.n_cols, extra_flag=h.extra_patterns)
            return self._plan_square(h.n_rows, h.n_cols, "header")
        ang = _companion_ang(self.path)
        if ang is not None:
            grid = _ang_grid(ang)
            rows, cols = grid.get("NROWS"), grid.get("NCOLS_ODD")
            if isinstance(rows, int) and isinstance(cols, int) and rows > 0 and cols > 0:
                self._map_from = f"companion {ang.name}"
                if "XSTEP" in grid and "YSTEP" in grid:
                    self._step = (float(grid["YSTEP"]), float(grid["XSTEP"]))
                if str(grid.get("GRID", "SqrGrid")).lower().startswith("hex"):
                    return self._plan_hex(rows, cols, extra_flag=None)
                return self._plan_square(rows, cols, ang.name)
            self._note(f"companion {ang.name} gives no NROWS/NCOLS_ODD; the map is 1 x {n}")
        elif not h.map_fields_ignored and not h.has_map:  # (ignored or implausible map fields were said already)
            self._note(
                f"nothing in the file records the map shape (a version {h.version} header, no companion .ang): read as a 1 x {n} map; "
                "open with nav_shape=(rows, cols) to give it"
            )
        self._map_from = "none (1 x N)"
        return None, n, (1, n)

    def _plan_square(self, rows: int, cols: int, source: str) -> tuple[None, int, tuple[int, int]]:
        expected = rows * cols
        n = self._in_file
        if n < expected:
            self._note(
                f"holds {n} complete patterns, the {rows} x {cols} map of the {source} needs {expected} "
                f"(truncated file?); the {expected - n} points from row {n // cols}, col {n % cols} on have no pattern"
            )
        elif n > expected:
            self._note(f"holds {n} patterns, the {rows} x {cols} map of the {source} uses the first {expected}; {n - expected} left out")
        return None, min(n, expected), (rows, cols)

    def _plan_hex(self, rows: int, cols: int, *, extra_flag: int | None) -> tuple[np.ndarray, int, tuple[int, int]]:
        """Layout of a hexagonal grid decided by the file size, then by the extra-patterns flag."""
        self._grid = "hexagonal"
        n = self._in_file
        packed, padded = hex_counts(rows, cols)
        if n == padded and n != packed:
            layout = "padded"
        elif n == packed:
            layout = "packed"
        else:
            layout = "padded" if extra_flag == 1 else "packed"
        if extra_flag is not None and (layout == "padded") != (extra_flag == 1) and n in (packed, padded):
            self._note(
                f"hexagonal {rows} x {cols} grid with extra-patterns flag {extra_flag}, but the file holds {n} patterns, "
                f"the {layout} layout ({packed} packed, {padded} padded); read {layout}"
            )
        expected = padded if layout == "padded" else packed
        if n < expected:
            self._note(
                f"holds {n} complete patterns, the hexagonal {rows} x {cols} grid needs {expected} ({layout}; truncated file?); "
                f"the points of the last {expected - n} patterns have no pattern"
            )
        elif n > expected:
            self._note(
                f"holds {n} patterns, the hexagonal {rows} x {cols} grid needs {packed} packed or {padded} padded; "
                f"read {layout} (extra-patterns flag {extra_flag}), the last {n - expected} left out"
            )
        self._layout = f"hexagonal, {layout}"
        used = min(n, expected)
        return hex_index_map(rows, cols, padded=layout == "padded", n_stored=used), used, (rows, cols)

    def _read_range(self, start: int, stop: int, out: np.ndarray) -> None:
        self._raw.read_into(start, stop, out)

    def close(self) -> None:
        """Close the file."""
        self._raw.close()

    # -- what the file knows ----------------------------------------------------------------
    @property
    def open_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"format": self.format}
        if self._nav_option is not None:
            options["nav_shape"] = tuple(self._nav_option)
        if self._bits_option is not None:
            options["bits"] = self._bits_option
        return options

    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step) = (y step, x step) in µm; (1, 1) where the file records none."""
        if self._step is None:
            return (1.0, 1.0)
        return tuple(float(s) if s > 0 else 1.0 for s in self._step)  # type: ignore[return-value]

    @property
    def grid_type(self) -> str:
        return self._grid

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        h = self.header
        out["up"] = {
            "version": h.version,
            "header_bytes": h.offset,
            "bits": 8 * self.dtype.itemsize,
            "bits_from": self._bits_from,
            "header_map": None if not h.has_map else {
                "rows": h.n_rows, "cols": h.n_cols, "hexagonal": h.hexagonal,
                "extra_patterns_flag": h.extra_patterns, "x_step_um": h.x_step, "y_step_um": h.y_step,
            },
            "map_shape_from": self._map_from,
            "layout": self._layout,
            "complete_patterns_in_file": int(self._in_file),
            "trailing_bytes": int(self._tail_bytes),
            "step_known": self._step is not None,
        }
        return out


# -- recognition ---------------------------------------------------------------------------
def _whole_counts(header: UpHeader, size: int) -> dict[int, int]:
    """{itemsize: patterns} for the bit depths (1 or 2 bytes) that fill the data exactly with at least one pattern."""
    data = size - header.offset
    out = {}
    for itemsize in (1, 2):
        per = header.width * header.height * itemsize
        if data >= per and data % per == 0:
            out[itemsize] = data // per
    return out


def _expected_range(header: UpHeader) -> tuple[int, int] | None:
    """Fewest and most patterns the header's map may hold (hexagonal: packed to padded, plus one extra), or None."""
    if not header.has_map:
        return None
    if header.hexagonal:
        packed, padded = hex_counts(header.n_rows, header.n_cols)
        return packed, padded + 1
    return header.n_rows * header.n_cols, header.n_rows * header.n_cols


def _content_dtype(header: UpHeader, size: int, *, where: Path) -> np.dtype:
    """The bit depth of a UP file without a .up1/.up2 name: the one whose pattern count fits the file (and its map)."""
    counts = _whole_counts(header, size)
    span = _expected_range(header)
    if span is not None:
        fitting = [k for k, n in counts.items() if span[0] <= n <= span[1]]
        counts = {k: counts[k] for k in fitting} if fitting else counts
    if len(counts) == 1:
        return np.dtype(f"<u{next(iter(counts))}")
    why = "8 and 16 bits both fill it" if counts else "neither 8 nor 16 bits fills it with whole patterns"
    raise MapFileError(
        f"{where}: a UP file named without .up1/.up2, and its content does not tell the bit depth ({why}): "
        "pass bits=8 or bits=16, or name it .up1 or .up2"
    )


def _sniff(probe: Probe) -> bool:
    """A UP header, and a file size that fits it.

    ``.up1``/``.up2`` files: a plausible header and at least one pattern. Other
    names (the bit depth unknown): the usual data offset (16, or 42 with the
    map fields) and a whole number of 8- or 16-bit patterns, a number the
    header's map allows where it has one. Never NORDIF's ``Pattern.dat`` (whose
    first pixels could look like a version 1 header).
    """
    if not probe.path.is_file() or probe.path.name.lower() == "pattern.dat":  # NORDIF's name: raw pixels, no header
        return False
    try:
        header = read_up_header(probe.head, where=str(probe.path))
    except MapFileError:
        return False
    size = probe.path.stat().st_size
    suffix = probe.path.suffix.lower()
    if suffix in _DTYPES:
        return header.offset + header.width * header.height * _DTYPES[suffix].itemsize <= size
    if header.offset != (HEADER_V3 if header.has_map else HEADER_V1):
        return False
    counts = _whole_counts(header, size)
    span = _expected_range(header)
    return any(span is None or span[0] <= n <= span[1] for n in counts.values())


# -- writing -------------------------------------------------------------------------------
def _up_header(version: int, width: int, height: int, *, rows: int, cols: int, hexagonal: bool,
               extra: bool, step_um: tuple[float, float]) -> bytes:
    if version == 1:
        return struct.pack("<4i", 1, width, height, HEADER_V1)
    return struct.pack("<4i", version, width, height, HEADER_V3) + _V3.pack(
        int(extra), cols, rows, int(hexagonal), float(step_um[1]), float(step_um[0])
    )


def _check_dtype(path: Path, dtype: np.dtype) -> np.dtype:
    """The stored dtype of ``dtype`` patterns: uint8 or uint16, and the one a ``.up1``/``.up2`` name says."""
    if dtype.kind != "u" or dtype.itemsize not in (1, 2):
        raise ValueError(f"{path}: UP files hold uint8 (.up1) or uint16 (.up2) patterns, got {dtype}; convert them first")
    want = _DTYPES.get(path.suffix.lower())
    if want is not None and dtype.itemsize != want.itemsize:
        raise ValueError(f"{path}: {path.suffix} holds {want.name} patterns, got {dtype}; convert them or name the file .up{dtype.itemsize}")
    return np.dtype(f"<u{dtype.itemsize}")


def write_up(
    path: str | os.PathLike,
    patterns: Any,
    *,
    version: int = 3,
    step_um: Sequence[float] = (1.0, 1.0),
    hexagonal: bool = False,
    hex_padded: bool = False,
) -> Path:
    """Write patterns as an EDAX UP1 (uint8) or UP2 (uint16) file, atomically.

    Parameters
    ----------
    path
        ``.up1`` for uint8 patterns, ``.up2`` for uint16 (other names are
        written too: the reader recognises them by content).
    patterns
        (rows, cols, h, w) map, or (n, h, w) for a 1 x n map.
    version
        1 (16-byte header, no map shape or step) or 3 (42 bytes).
    step_um
        (row step, column step) in µm: the header's (y step, x step).
    hexagonal
        Hexagonal grid (version 3): rows alternate ``cols`` and ``cols - 1``
        points; the last pattern of every odd row of ``patterns`` is not
        written (packed layout, extra-patterns flag 0)...
    hex_padded
        ...unless this is set: every row is written whole and the flag is 1.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        Wrong extension for the dtype, wrong shape, or a map the version cannot hold.
    """
    path = Path(path)
    patterns = np.asarray(patterns)
    if patterns.ndim == 3:
        patterns = patterns[np.newaxis]
    if patterns.ndim != 4 or 0 in patterns.shape:
        raise ValueError(f"{path}: patterns must be (rows, cols, h, w) or (n, h, w), got shape {patterns.shape}")
    dtype = _check_dtype(path, patterns.dtype)
    if version not in (1, 3):
        raise ValueError(f"{path}: kikuchi writes UP versions 1 and 3, not {version}")
    if hexagonal and version == 1:
        raise ValueError(f"{path}: a version 1 header cannot say the grid is hexagonal; write version 3")
    rows, cols, height, width = patterns.shape
    step = (float(step_um[0]), float(step_um[1]))
    header = _up_header(version, width, height, rows=rows, cols=cols, hexagonal=hexagonal, extra=hexagonal and hex_padded, step_um=step)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(header)
        if not hexagonal or hex_padded:
            _write_block(f, patterns, dtype)
        else:
            for r in range(rows):
                _write_block(f, patterns[r, : cols - (r % 2)], dtype)
    return path


def _write_block(f: Any, block: np.ndarray, dtype: np.dtype) -> None:
    """Write ``block`` as ``dtype`` bytes, without a full copy when it is contiguous little-endian."""
    if block.dtype == dtype and block.flags.c_contiguous:
        f.write(memoryview(block).cast("B"))
    elif block.ndim == 4:  # a whole map: one map row at a time, so at most a row is copied
        for row in block:
            _write_block(f, row, dtype)
    else:
        f.write(memoryview(np.ascontiguousarray(block, dtype=dtype)).cast("B"))


def _write_map(path: str | os.PathLike, source: EBSDMap, **options: Any) -> Path:
    """Write an open pattern map as a version 3 UP file, map row by map row (``FORMAT.writes``)."""
    path = Path(path)
    dtype = _check_dtype(path, source.dtype)
    rows, cols = source.nav_shape
    height, width = source.pattern_shape
    hexagonal = source.grid_type == "hexagonal"
    header = _up_header(3, width, height, rows=rows, cols=cols, hexagonal=hexagonal, extra=False, step_um=source.step_um)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(header)
        for r in range(rows):
            row = source.read_rows(r, r + 1)[0]
            _write_block(f, row[: cols - (r % 2)] if hexagonal else row, dtype)
    return path


FORMAT = FormatSpec(
    name="edax_up",
    description="EDAX/TSL UP1/UP2 binary pattern file (8/16-bit, header versions 1-4)",
    extensions=(".up1", ".up2"),
    sniff=_sniff,
    open=UpFile,
    writes=_write_map,
)
