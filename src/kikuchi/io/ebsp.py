"""Oxford Instruments binary pattern file (``.ebsp``, versions 0-6), read in place and lazily.

Layout (little-endian), as verified on the files of
``../shared/data/vendor_patterns`` and kikuchipy's reader::

    version marker   int64 -version            versions >= 1 (version 0 has none)
    one byte         (0 in every file seen)     versions >= 4
    offsets table    N x int64, one per map point in map order (row-major);
                     0: no pattern stored for that point. The table ends where
                     the first pattern begins, so N = (smallest offset - table start) / 8.
    per pattern, at its offset (any order in the file):
      header         int32 compressed, height, width, n_bytes    (16 bytes)
                     versions >= 5: int32 column, int32 row first (24 bytes):
                     the pattern's grid position
      pattern        height x width uint8 (n_bytes = h w) or uint16 (n_bytes = 2 h w)
      footer         version 0: none
                     version 1: float64 x, float64 y                (µm)
                     versions >= 2: uint8 has_x, [float64 x], uint8 has_y, [float64 y]

The map is ``nav_shape=(rows, cols)`` when given (patterns in table
order); else it comes from the beam positions of the footers (steps may
differ in x and y; positions may be centred or offset), checked against the
order of the offsets table (where they disagree the positions decide, with
a warning); else from the grid positions of the headers (versions >= 5);
else from a companion ``.ctf`` or ``.cpr`` next to the file; else the file
is read as a 1 x N map with a warning. Storage order is the order of the patterns in the
file (sorted by offset), so a run of storage indices is one byte range.

Examples
--------
>>> import tempfile, pathlib
>>> import kikuchi
>>> patterns = np.arange(2 * 3 * 4 * 5, dtype=np.uint8).reshape(2, 3, 4, 5)
>>> path = write_ebsp(pathlib.Path(tempfile.mkdtemp()) / "m.ebsp", patterns, step_um=(0.5, 0.25))
>>> with kikuchi.open(path) as m:
...     m.nav_shape, m.pattern_shape, m.step_um, bool((m.read_all() == patterns).all())
((2, 3), (4, 5), (0.5, 0.25), True)
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.io._atomic import atomic_output
from kikuchi.io._raw import RawFile
from kikuchi.io.source import (
    EBSDMap,
    FormatSpec,
    MapFileError,
    PatternCentreData,
    Probe,
    index_map_from_positions,
)

__all__ = ["EbspFile", "FORMAT", "write_ebsp", "write_ebsp_map"]

_logger = logging.getLogger(__name__)

#: Versions whose layout is known (files of later versions are read as the last one, with a warning).
KNOWN_VERSIONS = range(0, 7)
#: Largest pattern side believed plausible (pixels), for recognising headers.
_MAX_SIDE = 16384
#: Bytes read at once when scanning the offsets table or reading patterns.
_BLOCK_BYTES = 32 << 20
#: Patterns of at least this many bytes are read scattered straight into the result (see EbspFile._read_range).
_SCATTER_BYTES = 1 << 14
#: Buffers of one scattered read (the system's limit, 1024 on Linux).
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") and "SC_IOV_MAX" in getattr(os, "sysconf_names", {}) else 1024
#: Positions are compared in units of 1e-4 µm (closer positions are one position).
_PER_UM = 10_000


def _table_start(version: int) -> int:
    return 0 if version == 0 else 8 if version <= 3 else 9


def _header_size(version: int) -> int:
    return 24 if version >= 5 else 16


@dataclass(frozen=True)
class _Layout:
    """Where the parts of one pattern record lie, relative to its offset."""

    header_size: int  # 16, or 24 with the leading grid column and row (versions >= 5)
    height: int
    width: int
    dtype: np.dtype
    footer: tuple[tuple[str, str, int], ...]  # (name, dtype, offset in the record)
    record_size: int

    @property
    def n_bytes(self) -> int:
        return self.height * self.width * self.dtype.itemsize

    def record_dtype(self) -> np.dtype:
        """Structured dtype of one record (header fields, pattern, footer fields)."""
        names, formats, offsets = [], [], []
        base = self.header_size - 16
        if base:
            names += ["grid_col", "grid_row"]
            formats += ["<i4", "<i4"]
            offsets += [0, 4]
        for i, name in enumerate(("compressed", "height", "width", "n_bytes")):
            names.append(name), formats.append("<i4"), offsets.append(base + 4 * i)
        names.append("pattern"), formats.append((self.dtype.newbyteorder("<"), (self.height, self.width)))
        offsets.append(self.header_size)
        for name, dt, off in self.footer:
            names.append(name), formats.append(dt), offsets.append(off)
        return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": self.record_size})


def _plausible_header(buf: bytes, at: int) -> tuple[int, int, int, int] | None:
    """(compressed, height, width, n_bytes) when the 16 bytes at ``at`` look like a pattern header."""
    if len(buf) < at + 16:
        return None
    compressed, h, w, n = struct.unpack_from("<4i", buf, at)
    if compressed not in (0, 1) or not (0 < h <= _MAX_SIDE and 0 < w <= _MAX_SIDE):
        return None
    if compressed == 0 and n not in (h * w, 2 * h * w):
        return None
    return compressed, h, w, n


# -- recognising the format ----------------------------------------------------------------
def _sniff(probe: Probe) -> bool:
    """A version marker (or none), an offsets table, and a pattern header where its first offset points."""
    head = probe.head
    if len(head) < 8 or not probe.path.is_file():
        return False
    size = probe.path.stat().st_size
    (first,) = struct.unpack_from("<q", head, 0)
    if first < 0:
        version = -first
        if version > 64:
            return False
    else:
        version = 0
    start = _table_start(version)
    end = None
    pos = start
    while pos + 8 <= len(head) and (end is None or pos < end):
        (entry,) = struct.unpack_from("<q", head, pos)
        if entry < 0 or (entry and (entry < start + 8 or entry >= 1 << 40)):
            return False  # (offsets past the end are allowed: a file cut short is still this format)
        if entry and (end is None or entry < end):
            end = entry
        pos += 8
    if end is None or (end - start) % 8 or end + 16 > size:
        return False
    if end + 24 <= len(head):
        buf, at = head, end
    else:
        with open(probe.path, "rb") as f:
            f.seek(end)
            buf, at = f.read(24), 0
    return _plausible_header(buf, at + _header_size(version) - 16) is not None or _plausible_header(buf, at) is not None


# -- companion files -------------------------------------------------------------------------
def _number(text: str) -> float | None:
    try:
        return float(text.strip().replace(",", "."))
    except ValueError:
        return None


def _companion(path: Path) -> dict[str, Any] | None:
    """Map size, step, tilt and kV from a ``.ctf`` or ``.cpr`` of the same name, when there is one."""
    for suffix in (".ctf", ".CTF", ".cpr", ".CPR"):
        other = path.with_suffix(suffix)
        if other.is_file():
            break
    else:
        return None
    values: dict[str, float] = {}
    try:
        with open(other, encoding="latin-1") as f:
            for n, line in enumerate(f):
                if n > 400 or line.startswith("Phase\t"):
                    break
                if suffix.lower() == ".ctf":
                    fields = line.rstrip("\r\n").split("\t")
                    pairs = zip(fields[::2], fields[1::2]) if not line.startswith("Euler angles") else zip(fields[1::2], fields[2::2])
                else:
                    key, sep, value = line.partition("=")
                    pairs = [(key, value)] if sep else []
                for key, value in pairs:
                    number = _number(value)
                    if number is not None:
                        values.setdefault(key.strip().lower(), number)
    except OSError as exc:
        return {"path": other, "problem": f"the companion {other.name} cannot be read ({exc}); not used"}
    cols = values.get("xcells")
    rows = values.get("ycells")
    out: dict[str, Any] = {"path": other}
    if cols and rows and cols > 0 and rows > 0:
        out["nav_shape"] = (int(rows), int(cols))
    dx = values.get("xstep", values.get("griddistx"))
    dy = values.get("ystep", values.get("griddisty"))
    if dx and dx > 0:
        out["step_um"] = (float(dy) if dy and dy > 0 else float(dx), float(dx))
    if "tiltangle" in values:
        out["sample_tilt_deg"] = values["tiltangle"]
    if "kv" in values:
        out["kv"] = values["kv"]
    return out


# -- grids from beam positions ---------------------------------------------------------------
def _axis_grid(values: np.ndarray) -> tuple[np.ndarray, float | None] | None:
    """Integer grid coordinates of positions along one axis and the step (None: one position).

    None when the positions are not on a regular grid.
    """
    keys = np.round(values * _PER_UM).astype(np.int64)
    u = np.unique(keys)
    if u.size == 1:
        return np.zeros(values.size, dtype=np.int64), None
    # positions within two quanta are one position (rounding of the writer)
    cluster = np.r_[0, np.cumsum(np.diff(u) > 2)]
    centres = np.bincount(cluster, weights=u) / np.bincount(cluster)
    if centres.size == 1:
        return np.zeros(values.size, dtype=np.int64), None
    gaps = np.diff(centres)
    ratio = gaps / gaps.min()
    if np.abs(ratio - np.round(ratio)).max() > 0.15:
        return None
    step = (centres[-1] - centres[0]) / np.round(ratio).sum() / _PER_UM
    coord = (values - centres[0] / _PER_UM) / step
    index = np.round(coord).astype(np.int64)
    if np.abs(coord - index).max() > 0.25:
        return None
    return index, float(step)


def _fit_table(k: np.ndarray, ix: np.ndarray, iy: np.ndarray, n_table: int) -> tuple[int, int] | None:
    """(rows, cols) of the row-major map in which table entry ``k`` is at grid point (iy, ix) plus one offset."""
    rows_pos, cols_pos = int(iy.max()) + 1, int(ix.max()) + 1
    if n_table == rows_pos * cols_pos and np.array_equal(k, iy * cols_pos + ix):
        return rows_pos, cols_pos
    if iy.min() == iy.max():
        return None  # one row of positions: the number of columns of the map is not known
    r = k - ix
    a, b = int(np.argmin(iy)), int(np.argmax(iy))
    num, den = int(r[b] - r[a]), int(iy[b] - iy[a])
    if num <= 0 or num % den:
        return None
    cols = num // den
    if cols < cols_pos or n_table % cols:
        return None
    base = int(r[a] - iy[a] * cols)
    if base < 0:
        return None
    oy, ox = divmod(base, cols)
    if ox + cols_pos > cols or iy.max() + oy >= n_table // cols:
        return None
    if not np.array_equal(k, (iy + oy) * cols + ix + ox):
        return None
    return n_table // cols, cols


@dataclass
class _Placement:
    nav_shape: tuple[int, int]
    index_map: np.ndarray
    step_um: tuple[float, float] | None
    how: str
    notes: list[str]


def _table_order(k: np.ndarray, shape: tuple[int, int], step: tuple[float, float] | None, how: str,
                 notes: list[str] | None = None) -> _Placement:
    """Table entry k is map point k (row-major)."""
    index_map = np.full(shape[0] * shape[1], -1, dtype=np.int64)
    index_map[k] = np.arange(k.size)
    return _Placement(shape, index_map.reshape(shape), step, how, list(notes or []))


def _place_on_grid(
    k: np.ndarray, known: np.ndarray, ix: np.ndarray, iy: np.ndarray, n_table: int,
    step: tuple[float, float] | None, what: str, where: str,
) -> _Placement:
    """The map of patterns at integer grid points (iy, ix) (those ``known``), checked against the table order."""
    kk = k[known]
    for flip_y, flip_x in ((False, False), (True, False), (False, True), (True, True)):
        fy = iy.max() - iy if flip_y else iy
        fx = ix.max() - ix if flip_x else ix
        shape = _fit_table(kk, fx, fy, n_table)
        if shape is not None:
            if flip_y or flip_x:
                _logger.debug("%s: %s decrease along %s", where, what, "rows" if flip_y else "columns")
            return _table_order(k, shape, step, f"offsets table, checked against the {what}")
    # the table order and the grid disagree: the grid decides
    shape = (int(iy.max()) + 1, int(ix.max()) + 1)
    idx = np.flatnonzero(known)
    rows = np.full(k.size, -1, dtype=np.int64)
    cols = np.full(k.size, -1, dtype=np.int64)
    rows[idx], cols[idx] = iy, ix
    index_map, n_dup = index_map_from_positions(rows, cols, shape, where=where)
    notes = [
        f"the offsets table ({n_table} entries) and the {what} ({shape[0]} x {shape[1]} grid) "
        f"do not fit one row-major map; patterns placed by {what}"
    ]
    if n_dup:
        notes.append(f"{n_dup} patterns share a grid point with an earlier one and are not in the map")
    if (~known).any():
        notes.append(f"{int((~known).sum())} patterns without a beam position are not in the map")
    return _Placement(shape, index_map, step, what, notes)


def _grid_of_positions(x: np.ndarray, y: np.ndarray, k: np.ndarray) -> tuple[Any, list[str]]:
    """(known, ix, iy, step) of beam positions on a grid, or None (with why in the notes)."""
    known = np.isfinite(x) & np.isfinite(y)
    if not known.any():
        return None, []
    gx, gy = _axis_grid(x[known]), _axis_grid(y[known])
    if gx is None or gy is None:
        i = int(np.flatnonzero(known)[0])
        return None, [f"the beam positions do not lie on a regular grid (table entry {k[i]} at x {x[i]:g}, y {y[i]:g} µm); ignored"]
    (ix, dx), (iy, dy) = gx, gy
    if dx is None and dy is None and known.sum() > 1:
        i = int(np.flatnonzero(known)[0])
        return None, [f"every pattern has the same beam position (x {x[i]:g}, y {y[i]:g} µm); positions ignored"]
    step = None if dx is None and dy is None else (dy if dy is not None else dx, dx if dx is not None else dy)
    return (known, ix, iy, step), []


# -- the reader ------------------------------------------------------------------------------
class EbspFile(EBSDMap):
    """An Oxford Instruments ``.ebsp`` pattern file, read in place and lazily.

    Use :func:`kikuchi.open`. Options: ``nav_shape=(rows, cols)`` (the map
    when the file does not record it, or to override it: patterns are then
    placed in the order of the offsets table), ``step_um=(row step, col
    step)``.

    Attributes
    ----------
    version
        The file's version (0-6).
    """

    format = "ebsp"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        nav_shape: Sequence[int] | None = None,
        step_um: Sequence[float] | None = None,
        dataset: str | None = None,
    ):
        self.path = Path(path)
        self.notes = []
        if dataset not in (None, "RawPatterns"):
            raise MapFileError(f"{self.path}: an .ebsp file holds one pattern dataset, 'RawPatterns', not {dataset!r}")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such file")
        if step_um is not None:
            if isinstance(step_um, (str, bytes)) or np.ndim(step_um) != 1 or len(step_um) != 2:
                raise MapFileError(f"{self.path}: step_um={step_um!r}: expected (row step, column step) in µm")
            if not all(isinstance(v, (int, float, np.number)) and np.isfinite(v) and v > 0 for v in step_um):
                raise MapFileError(f"{self.path}: step_um={tuple(step_um)!r}: steps are numbers greater than 0 (µm)")
        self._raw = RawFile(self.path)
        self._fd = self._raw.fd
        try:
            self._open(nav_shape=nav_shape, step_um=step_um)
        except BaseException:
            self._raw.close()
            raise

    # -- opening -----------------------------------------------------------------------
    def _pread(self, n: int, offset: int) -> bytes:
        return self._raw.pread(n, offset)

    def _open(self, *, nav_shape: Sequence[int] | None, step_um: Sequence[float] | None) -> None:
        path = self.path
        self._size = size = os.fstat(self._fd).st_size
        if size < 8 + 16:
            raise MapFileError(f"{path}: {size} bytes, too short for an Oxford .ebsp pattern file")
        (first,) = struct.unpack("<q", self._pread(8, 0))
        version = -first if first < 0 else 0
        if version > 64:
            raise MapFileError(f"{path}: not an Oxford .ebsp pattern file (starts with {first}, not a version marker or a pattern offset)")
        self.version = version
        if version not in KNOWN_VERSIONS:
            self._note(f"version {version} is newer than the versions kikuchi knows (0-6); read as version 6")
        start = _table_start(version)
        table = self._read_table(start)
        self._n_table = table.size
        present = np.flatnonzero(table)
        offsets = table[present]
        layout = self._layout_at(int(offsets.min()), int(present[np.argmin(offsets)]))
        self._layout = layout

        # storage order: the order in the file
        gaps = np.diff(offsets)
        if gaps.size and gaps.min() <= 0:  # not in map order: sort (most files need not)
            order = np.argsort(offsets, kind="stable")
            k, off = present[order], offsets[order]
            gaps = np.diff(off)
        else:
            k, off = present, offsets
        if gaps.size and gaps.min() < layout.record_size:
            i = int(np.argmin(gaps))
            raise MapFileError(
                f"{path}: the patterns of offsets table entries {k[i]} (byte {off[i]}) and {k[i + 1]} "
                f"(byte {off[i + 1]}) overlap: {gaps[i]} bytes apart, less than one pattern record ({layout.record_size} bytes)"
            )
        if gaps.size and (gaps == gaps[0]).all():
            stride = int(gaps[0])
        elif gaps.size:
            values, counts = np.unique(gaps, return_counts=True)
            stride = int(values[np.argmax(counts)])
        else:
            stride = layout.record_size
        complete = off + layout.record_size <= size
        if not complete.all():
            n_ok = int(complete.sum())
            cut_k, cut_off = k[~complete], off[~complete]
            regular = n_ok > 0 and np.array_equal(cut_off, off[n_ok - 1] + stride * np.arange(1, cut_off.size + 1))
            if not regular:
                raise MapFileError(
                    f"{path}: offsets table entry {cut_k[0]} points to byte {cut_off[0]}, past the end of the file "
                    f"({size} bytes; a pattern record is {layout.record_size} bytes)"
                )
            self._note(
                f"the file ends at byte {size}, inside or before the last {cut_off.size} of {off.size} patterns "
                f"(first cut: offsets table entry {cut_k[0]} at byte {cut_off[0]}); they are read as missing"
            )
            k, off = k[:n_ok], off[:n_ok]
        self._note_unreferenced(k, off, stride, size)
        self._offsets = off
        self._table_index = k
        self._stride = stride
        # runs of patterns at one stride: one read each
        breaks = np.flatnonzero(np.diff(off) != stride) + 1
        self._run_starts = np.r_[0, breaks].astype(np.int64)
        self._run_stops = np.r_[breaks, off.size].astype(np.int64)

        fields = self._scan_records()
        self._x, self._y = fields["x"], fields["y"]
        self._header_grid = (fields["grid_row"], fields["grid_col"]) if "grid_row" in fields else None

        self._companion = _companion(path)
        if self._companion is not None and "problem" in self._companion:
            self._note(self._companion.pop("problem"))
        placement = self._placement(nav_shape, step_um)
        for note in placement.notes:
            self._note(note)
        self._map_from = placement.how
        self._step = placement.step_um
        self._given_nav_shape = None if nav_shape is None else (int(nav_shape[0]), int(nav_shape[1]))
        if placement.how.startswith("1 x N"):
            self._given_nav_shape = placement.nav_shape
        self._given_step = None if step_um is None else (float(step_um[0]), float(step_um[1]))
        self._set_map(
            nav_shape=placement.nav_shape,
            pattern_shape=(layout.height, layout.width),
            dtype=layout.dtype,
            n_patterns=off.size,
            index_map=placement.index_map,
        )
        self._check_header_grid()

    def _note_unreferenced(self, k: np.ndarray, off: np.ndarray, stride: int, size: int) -> None:
        """Pattern records at the file's stride that no offsets table entry points to (a zeroed entry): said, left out."""
        layout = self._layout
        expected = (0, layout.height, layout.width, layout.n_bytes)
        header_at = layout.header_size - 16
        found: list[tuple[int, int]] = []  # (byte, table entry of the pattern before it)
        ends = np.r_[off[1:], size]
        gaps = ends - off
        looks = 0  # bounded: a few thousand header reads at most
        for i in np.flatnonzero(((gaps >= 2 * stride) & (gaps % stride == 0)) | (np.arange(off.size) == off.size - 1)):
            at = int(off[i]) + stride
            while at + layout.record_size <= int(ends[i]) and looks < 4096:
                looks += 1
                if _plausible_header(self._pread(16, at + header_at), 0) == expected:
                    found.append((at, int(k[i])))
                at += stride
        if found:
            at, entry = found[0]
            self._note(
                f"{len(found)} pattern record(s) in the file are in no offsets table entry (first at byte {at}, after the "
                f"pattern of entry {entry}): a damaged table? Their map points are read as missing"
            )

    def _read_table(self, start: int) -> np.ndarray:
        """The offsets table: int64 entries from ``start`` up to the smallest offset in it."""
        path, size = self.path, self._size
        none = np.iinfo(np.int64).max
        blocks = []
        end = none  # the table ends where the first pattern begins: at the smallest offset
        pos = start
        while pos < min(end, size):
            n = min((min(end, size) - pos) // 8, _BLOCK_BYTES // 8)
            block = np.frombuffer(self._pread(8 * n, pos), dtype="<i8") if n else np.empty(0, "<i8")
            if block.size == 0:
                break
            # entry j belongs to the table while it lies before every offset seen so far
            seen = np.minimum.accumulate(np.r_[end, np.where(block > 0, block, none)[:-1]])
            past = np.flatnonzero(pos + 8 * np.arange(block.size) >= seen)
            if past.size:
                block = block[: past[0]]
            negative = np.flatnonzero(block < 0)
            if negative.size:
                i = (pos - start) // 8 + int(negative[0])
                raise MapFileError(f"{path}: offsets table entry {i} (byte {start + 8 * i}) is negative ({block[negative[0]]})")
            if block.size == 0:
                break
            if (block > 0).any():
                end = min(end, int(block[block > 0].min()))
            blocks.append(block)
            pos += 8 * block.size
        table = np.concatenate(blocks) if blocks else np.empty(0, np.int64)
        if end == none:
            what = "holds no pattern" if table.size == 0 else f"has no pattern offset in its offsets table ({table.size} entries, all 0)"
            raise MapFileError(f"{path}: {what}: not an Oxford .ebsp pattern file, or an empty one")
        if end > size:
            raise MapFileError(
                f"{path}: the first pattern would begin at byte {end}, past the end of the file ({size} bytes): "
                "not an Oxford .ebsp pattern file, or one cut short"
            )
        if (end - start) % 8:
            raise MapFileError(
                f"{path}: the offsets table (8-byte entries from byte {start}) does not end where the first pattern "
                f"begins (byte {end}): not an Oxford .ebsp pattern file"
            )
        if start + 8 * table.size > end:
            i = int(np.flatnonzero(table == end)[0])
            raise MapFileError(f"{path}: offsets table entry {i} points to byte {end}, inside the offsets table (entries from byte {start})")
        return table.astype(np.int64)

    def _layout_at(self, offset: int, entry: int) -> _Layout:
        """The record layout, from the header and footer of the first pattern in the file."""
        path, version = self.path, self.version
        expected = _header_size(min(version, 6))
        buf = self._pread(24, offset)
        found = {hs: _plausible_header(buf, hs - 16) for hs in (16, 24)}
        header_size = expected if found[expected] else next((hs for hs in (16, 24) if found[hs]), None)
        if header_size is None:
            values = struct.unpack_from("<4i", buf + bytes(16), expected - 16)
            raise MapFileError(
                f"{path}: the first pattern (offsets table entry {entry}, byte {offset}) has no valid header: "
                f"compressed {values[0]}, {values[1]} x {values[2]} pixels, {values[3]} bytes"
            )
        if header_size != expected:
            self._note(f"version {version} file with {header_size}-byte pattern headers (expected {expected}); read as such")
        compressed, h, w, n_bytes = found[header_size]
        if compressed:
            raise MapFileError(
                f"{path}: the patterns are compressed (first pattern: offsets table entry {entry}, byte {offset}); "
                "kikuchi reads uncompressed .ebsp files only"
            )
        dtype = np.dtype(np.uint8 if n_bytes == h * w else np.uint16)
        end = header_size + n_bytes
        footer: tuple[tuple[str, str, int], ...]
        if version == 0:
            footer = ()
        elif version == 1:
            footer = (("x", "<f8", end), ("y", "<f8", end + 8))
            end += 16
        else:
            # a flag byte before each coordinate; a coordinate whose flag is 0 is not stored (kikuchipy's reading)
            tail = self._pread(18, offset + end) + bytes(18)
            footer, at = (), end
            for name in ("x", "y"):
                has = tail[at - end] != 0
                footer += ((f"has_{name}", "u1", at),)
                at += 1
                if has:
                    footer += ((name, "<f8", at),)
                    at += 8
            end = at
        return _Layout(header_size, h, w, dtype, footer, end)

    def _scan_records(self) -> dict[str, np.ndarray]:
        """Headers and beam positions of every stored pattern, one strided pass per run of regular records."""
        layout, n = self._layout, self._offsets.size
        names = [name for name, _, _ in layout.footer]
        x = np.full(n, np.nan)
        y = np.full(n, np.nan)
        grid = np.empty((n, 2), dtype=np.int64) if layout.header_size == 24 else None
        heads = np.empty((n, 4), dtype=np.int32)
        rec = layout.record_dtype()
        for a, b in zip(self._run_starts, self._run_stops):
            step = max(1, _BLOCK_BYTES // self._stride)
            for s in range(int(a), int(b), step):
                # one block of records mapped at a time, so the pages touched (all of them for small
                # patterns) never add up to the whole file in memory
                e = min(int(b), s + step)
                first = int(self._offsets[s])
                base = first - first % mmap.ALLOCATIONGRANULARITY
                length = first - base + (e - s - 1) * self._stride + layout.record_size
                mm = mmap.mmap(self._fd, length, access=mmap.ACCESS_READ, offset=base)
                try:
                    if self._stride >= 1 << 15 and hasattr(mm, "madvise"):
                        mm.madvise(mmap.MADV_RANDOM)  # large patterns: touch only the pages of headers and footers
                    view = np.ndarray((e - s,), dtype=rec, buffer=mm, offset=first - base, strides=(self._stride,))
                    for j, name in enumerate(("compressed", "height", "width", "n_bytes")):
                        heads[s:e, j] = view[name]
                    if grid is not None:
                        grid[s:e, 0], grid[s:e, 1] = view["grid_row"], view["grid_col"]
                    for name, out in (("x", x), ("y", y)):
                        if name in names:
                            value = view[name].astype(np.float64)
                            flag = f"has_{name}"
                            if flag in names:
                                value[view[flag] != 1] = np.nan
                            out[s:e] = value
                    del view
                finally:
                    try:
                        mm.close()
                    except BufferError:  # pragma: no cover - a view outlived the scan
                        pass
        expected = np.array([0, layout.height, layout.width, layout.n_bytes], dtype=np.int32)
        bad = np.flatnonzero((heads != expected).any(axis=1))
        if bad.size:
            i = int(bad[0])
            c, h, w, nb = heads[i].tolist()
            raise MapFileError(
                f"{self.path}: the pattern of offsets table entry {self._table_index[i]} (byte {self._offsets[i]}) "
                f"has header compressed {c}, {h} x {w} pixels, {nb} bytes, unlike the first pattern "
                f"(compressed 0, {layout.height} x {layout.width}, {layout.n_bytes} bytes)"
            )
        out = {"x": x, "y": y}
        if grid is not None:
            out["grid_row"], out["grid_col"] = grid[:, 0], grid[:, 1]
        return out

    def _placement(self, nav_shape: Sequence[int] | None, step_um: Sequence[float] | None) -> _Placement:
        k, n_table, where = self._table_index, self._n_table, str(self.path)
        companion = self._companion or {}
        grid, notes = _grid_of_positions(self._x, self._y, k)
        given_step = None if step_um is None else (float(step_um[0]), float(step_um[1]))
        step = given_step or (grid[3] if grid else None) or companion.get("step_um")
        if nav_shape is not None:
            rows, cols = int(nav_shape[0]), int(nav_shape[1])
            if rows < 1 or cols < 1:
                raise MapFileError(f"{self.path}: nav_shape {tuple(nav_shape)} is not a map shape (rows, cols >= 1)")
            if n_table > rows * cols:
                raise MapFileError(
                    f"{self.path}: the offsets table lists {n_table} map points, more than the {rows} x {cols} map "
                    f"given as nav_shape"
                )
            return _table_order(k, (rows, cols), step, "nav_shape option (offsets table order)")
        placement = None
        if grid is not None:
            known, ix, iy, _ = grid
            placement = _place_on_grid(k, known, ix, iy, n_table, step, "beam positions", where)
        elif self._header_grid is not None and (self._header_grid[0] >= 0).all() and (self._header_grid[1] >= 0).all():
            hr, hc = self._header_grid
            placement = _place_on_grid(k, np.ones(k.size, bool), hc, hr, n_table, step, "grid positions of the pattern headers", where)
        if placement is not None:
            placement.notes[:0] = notes
            if "nav_shape" in companion and companion["nav_shape"] != placement.nav_shape:
                placement.notes.append(
                    f"the companion {companion['path'].name} says {companion['nav_shape'][0]} x {companion['nav_shape'][1]} "
                    f"points, the {placement.how.split(' against the ')[-1]} {placement.nav_shape[0]} x {placement.nav_shape[1]}; "
                    f"the file is followed"
                )
            return placement
        if "nav_shape" in companion:
            rows, cols = companion["nav_shape"]
            if n_table <= rows * cols:
                return _table_order(k, (rows, cols), step, f"companion {companion['path'].name} (offsets table order)", notes)
            notes.append(
                f"the companion {companion['path'].name} says {rows} x {cols} points but the offsets table lists {n_table}; ignored"
            )
        notes.append(
            f"nothing in the file records the map shape (no beam positions, no companion .ctf/.cpr): read as a 1 x {n_table} map; "
            "open with nav_shape=(rows, cols) to give it"
        )
        return _table_order(k, (1, n_table), step, "1 x N (no map shape recorded)", notes)

    def _check_header_grid(self) -> None:
        """Versions >= 5: the grid position in each pattern header should be where the pattern was placed."""
        if self._header_grid is None or self._map_from.startswith(("nav_shape", "1 x N")):
            return
        rows, cols = self.positions
        hr, hc = self._header_grid
        bad = np.flatnonzero((rows >= 0) & ((hr != rows) | (hc != cols)))
        if bad.size:
            i = int(bad[0])
            self._note(
                f"the grid positions in {bad.size} pattern headers disagree with the map (first: offsets table entry "
                f"{self._table_index[i]} at byte {self._offsets[i]} says row {hr[i]}, col {hc[i]}; placed at row {rows[i]}, "
                f"col {cols[i]}); the headers' positions are ignored"
            )

    # -- reading ---------------------------------------------------------------------------
    def _read_range(self, start: int, stop: int, out: np.ndarray) -> None:
        if self._raw.closed:
            raise MapFileError(f"{self.path}: the file is closed")
        layout = self._layout
        stride = self._stride
        rec = layout.record_dtype()
        r0 = int(np.searchsorted(self._run_stops, start, side="right"))
        per_block = max(1, _BLOCK_BYTES // stride)
        buf = None
        # large patterns: scattered reads straight into out (the headers and footers between them go to a scratch
        # buffer), one copy instead of two; small ones: one block read and a strided copy (fewer buffers)
        scatter = layout.n_bytes >= _SCATTER_BYTES and out.flags.c_contiguous and out.dtype == layout.dtype.newbyteorder("<") and hasattr(os, "preadv")
        for r in range(r0, self._run_starts.size):
            a, b = max(start, int(self._run_starts[r])), min(stop, int(self._run_stops[r]))
            if a >= b:
                break
            if b - a == 1:  # one pattern: read its pixels only
                o = int(self._offsets[a]) + layout.header_size
                data = self._pread(layout.n_bytes, o)
                if len(data) != layout.n_bytes:
                    raise MapFileError(f"{self.path}: the file ends inside the pattern at byte {o} (storage index {a})")
                out[a - start] = np.frombuffer(data, dtype=layout.dtype.newbyteorder("<")).reshape(layout.height, layout.width)
                continue
            if scatter:
                self._scatter_read(a, b, out[a - start : b - start])
                continue
            for s in range(a, b, per_block):
                e = min(b, s + per_block)
                nbytes = (e - s - 1) * stride + layout.header_size + layout.n_bytes
                if buf is None or buf.size < (e - s - 1) * stride + layout.record_size:
                    buf = np.empty((min(per_block, b - a) - 1) * stride + layout.record_size, dtype=np.uint8)
                offset = int(self._offsets[s])
                got = self._raw.readinto(buf[:nbytes], offset)
                if got != nbytes:
                    raise MapFileError(
                        f"{self.path}: the file ends at byte {offset + got}, inside the patterns at storage indices {s}..{e - 1}"
                    )
                view = np.ndarray((e - s,), dtype=rec, buffer=buf, strides=(stride,))
                out[s - start : e - start] = view["pattern"]

    def _scatter_read(self, a: int, b: int, out: np.ndarray) -> None:
        """Regularly spaced patterns ``a:b`` into ``out`` with scattered positional reads (``preadv``), no extra copy."""
        layout, stride = self._layout, self._stride
        gap = stride - layout.n_bytes  # a footer and the next header
        scratch = np.empty(max(gap, layout.header_size, 1), dtype=np.uint8)
        head, between = memoryview(scratch[: layout.header_size]), memoryview(scratch[:gap])
        target = out.reshape(b - a, -1).view(np.uint8)
        per_call = max(1, (_IOV_MAX - 1) // 2)
        for s in range(a, b, per_call):
            e = min(b, s + per_call)
            buffers: list[memoryview] = [head]
            for i in range(s, e):
                buffers.append(memoryview(target[i - a]))
                if i < e - 1:
                    buffers.append(between)
            total = layout.header_size + (e - s) * layout.n_bytes + (e - s - 1) * gap
            offset = int(self._offsets[s])
            got = os.preadv(self._fd, buffers, offset)
            if got != total:
                raise MapFileError(f"{self.path}: the file ends at byte {offset + got}, inside the patterns at storage indices {s}..{e - 1}")

    def close(self) -> None:
        """Close the file."""
        raw = getattr(self, "_raw", None)
        if raw is not None:
            raw.close()

    # -- what the file knows --------------------------------------------------------------
    @property
    def open_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"format": self.format}
        if self._given_nav_shape is not None:
            options["nav_shape"] = self._given_nav_shape
        if self._given_step is not None:
            options["step_um"] = self._given_step
        return options

    @property
    def step_um(self) -> tuple[float, float]:
        """(row step, column step) in µm: from the beam positions, the companion file, or ``step_um=``; else (1, 1)."""
        return self._step if self._step is not None else (1.0, 1.0)

    @property
    def map_from(self) -> str:
        """What gave the map shape and the placement of the patterns."""
        return self._map_from

    @property
    def beam_positions_um(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) beam positions of the stored patterns from their footers, in µm, storage order (NaN where none)."""
        return self._x.copy(), self._y.copy()

    def point_data(self) -> dict[str, Any]:
        """Beam positions (µm) of the footers and, in versions >= 5, the grid row and column of each pattern header; storage order."""
        out: dict[str, Any] = {}
        if np.isfinite(self._x).any() or np.isfinite(self._y).any():
            out["beam_x_um"], out["beam_y_um"] = self._x.copy(), self._y.copy()
        if self._header_grid is not None:
            out["header_row"], out["header_col"] = self._header_grid[0].copy(), self._header_grid[1].copy()
        return out

    @property
    def pattern_centre(self) -> PatternCentreData | None:
        """None: neither the .ebsp file nor a companion .ctf records a pattern centre."""
        return None

    @property
    def sample_tilt_deg(self) -> float:
        return float((self._companion or {}).get("sample_tilt_deg", 70.0))

    @property
    def kv(self) -> float | None:
        value = (self._companion or {}).get("kv")
        return None if value is None else float(value)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["ebsp_version"] = self.version
        out["map_from"] = self._map_from
        out["offsets_table_entries"] = self._n_table
        out["regular_layout"] = bool(self._run_starts.size <= 1)
        out["companion"] = None if self._companion is None else str(self._companion["path"])
        return out


# -- writing -----------------------------------------------------------------------------------
def _write_layout(version: int, height: int, width: int, dtype: np.dtype) -> _Layout:
    header_size = _header_size(version)
    end = header_size + height * width * dtype.itemsize
    if version == 0:
        footer: tuple[tuple[str, str, int], ...] = ()
        size = end
    elif version == 1:
        footer = (("x", "<f8", end), ("y", "<f8", end + 8))
        size = end + 16
    else:
        footer = (("has_x", "u1", end), ("x", "<f8", end + 1), ("has_y", "u1", end + 9), ("y", "<f8", end + 10))
        size = end + 18
    return _Layout(header_size, height, width, dtype, footer, size)


def _file_order(n_points: int, order: Any, missing: Any, where: str) -> np.ndarray:
    """Map indices of the stored patterns, in the order they are written."""
    gone = np.zeros(n_points, dtype=bool)
    if missing is not None:
        missing = np.asarray(missing, dtype=np.int64).reshape(-1)
        if missing.size and (missing.min() < 0 or missing.max() >= n_points):
            raise ValueError(f"{where}: missing map indices must lie in 0..{n_points - 1}")
        gone[missing] = True
    if order is None:
        return np.flatnonzero(~gone)
    order = np.asarray(order, dtype=np.int64).reshape(-1)
    if order.size == n_points:
        if not np.array_equal(np.sort(order), np.arange(n_points)):
            raise ValueError(f"{where}: order must be a permutation of the {n_points} map indices")
        return order[~gone[order]]
    kept = np.flatnonzero(~gone)
    if not np.array_equal(np.sort(order), kept):
        raise ValueError(f"{where}: order must be a permutation of all map indices or of the {kept.size} stored ones")
    return order


def _write_records(
    f: Any, version: int, layout: _Layout, file_order: np.ndarray, cols: int,
    pattern_of: Any, step_um: tuple[float, float], origin_um: tuple[float, float],
) -> None:
    """Write the records of the patterns at map indices ``file_order`` (in that order), block by block.

    ``pattern_of(s, e)`` gives the patterns of ``file_order[s:e]``.
    """
    rec = layout.record_dtype()
    per_block = max(1, (16 << 20) // layout.record_size)
    for s in range(0, file_order.size, per_block):
        idx = file_order[s : s + per_block]
        block = np.zeros(idx.size, dtype=rec)
        if layout.header_size == 24:
            block["grid_col"], block["grid_row"] = idx % cols, idx // cols
        block["height"], block["width"], block["n_bytes"] = layout.height, layout.width, layout.n_bytes
        block["pattern"] = pattern_of(s, s + idx.size)
        if version >= 1:
            block["x"] = origin_um[1] + (idx % cols) * step_um[1]
            block["y"] = origin_um[0] + (idx // cols) * step_um[0]
        if version >= 2:
            block["has_x"], block["has_y"] = 1, 1
        f.write(block.view(np.uint8).data)


def _prelude(version: int, table: np.ndarray) -> bytes:
    head = b"" if version == 0 else struct.pack("<q", -version) + (b"\x00" if version >= 4 else b"")
    return head + table.astype("<i8").tobytes()


def write_ebsp(
    path: str | os.PathLike,
    patterns: np.ndarray,
    *,
    version: int = 2,
    step_um: tuple[float, float] = (1.0, 1.0),
    order: Any = None,
    missing: Any = None,
    origin_um: tuple[float, float] = (0.0, 0.0),
) -> Path:
    """Write a map of patterns as an Oxford Instruments ``.ebsp`` file.

    Parameters
    ----------
    path
        The file to write (replaced when it exists; written under a temporary
        name and renamed when complete).
    patterns
        (rows, cols, height, width) uint8 or uint16.
    version
        File version, 0-6 (3 is written as 2 with its own marker; versions
        >= 5 have 24-byte pattern headers that begin with the grid column and row).
    step_um
        (row step, column step) in µm, for the beam positions of the footers.
    order
        The order of the patterns in the file, as flat map indices (a
        permutation of all map indices, or of the stored ones); default
        row-major. The offsets table stays in map order.
    missing
        Flat map indices whose pattern is left out (offset 0 in the table).
    origin_um
        (y, x) beam position of map point (0, 0), µm (e.g. negative for
        positions centred on the map).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        Patterns not 4-D uint8/uint16, an unknown version, or a bad order.
    """
    path = Path(path)
    patterns = np.asarray(patterns)
    if patterns.ndim != 4 or patterns.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: patterns must be (rows, cols, height, width) uint8 or uint16, not {patterns.shape} {patterns.dtype}")
    if version not in KNOWN_VERSIONS:
        raise ValueError(f"{path}: version must be one of 0..6, not {version}")
    rows, cols, h, w = patterns.shape
    n_points = rows * cols
    if n_points == 0:
        raise ValueError(f"{path}: an .ebsp file needs at least one pattern")
    file_order = _file_order(n_points, order, missing, str(path))
    if file_order.size == 0:
        raise ValueError(f"{path}: every pattern is missing; an .ebsp file needs at least one")
    layout = _write_layout(version, h, w, patterns.dtype)
    first = _table_start(version) + 8 * n_points
    table = np.zeros(n_points, dtype=np.int64)
    table[file_order] = first + layout.record_size * np.arange(file_order.size, dtype=np.int64)
    flat = patterns.reshape(n_points, h, w)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(_prelude(version, table))
        _write_records(f, version, layout, file_order, cols, lambda s, e: flat[file_order[s:e]],
                       (float(step_um[0]), float(step_um[1])), (float(origin_um[0]), float(origin_um[1])))
    return path


def write_ebsp_map(path: str | os.PathLike, source: EBSDMap, *, version: int = 2) -> Path:
    """Write any open pattern source as an ``.ebsp`` file, chunk by chunk (storage order kept, missing points left out).

    The beam positions are the map positions times the source's step.
    """
    path = Path(path)
    if version not in KNOWN_VERSIONS:
        raise ValueError(f"{path}: version must be one of 0..6, not {version}")
    if source.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: .ebsp files hold uint8 or uint16 patterns, not {source.dtype}")
    rows, cols = source.nav_shape
    h, w = source.pattern_shape
    layout = _write_layout(version, h, w, source.dtype)
    r, c = source.positions
    placed = r >= 0
    map_index = np.where(placed, r * cols + c, -1)
    file_order = map_index[placed]
    if file_order.size == 0:
        raise ValueError(f"{path}: the source has no pattern on its map")
    first = _table_start(version) + 8 * rows * cols
    table = np.zeros(rows * cols, dtype=np.int64)
    table[file_order] = first + layout.record_size * np.arange(file_order.size, dtype=np.int64)
    storage = np.flatnonzero(placed)
    step = tuple(float(s) for s in source.step_um)
    with atomic_output(path) as tmp, open(tmp, "wb") as f:
        f.write(_prelude(version, table))
        n = source.chunk_patterns
        for s in range(0, storage.size, n):
            chunk = storage[s : s + n]
            block = source.read_indices(chunk)
            _write_records(f, version, layout, file_order[s : s + n], cols, lambda a, b, blk=block: blk[a:b], step, (0.0, 0.0))
    return path


FORMAT = FormatSpec(
    name="ebsp",
    description="Oxford Instruments binary pattern file (.ebsp, versions 0-6)",
    extensions=(".ebsp",),
    sniff=_sniff,
    open=EbspFile,
    writes=write_ebsp_map,
)
