"""EDAX/TSL ANG orientation maps: read and write.

A header of ``#`` lines, then whitespace-separated data::

    # TEM_PIXperUM          1.000000
    # x-star                0.523544       (pattern centre, EDAX convention)
    # y-star                0.876476
    # z-star                0.594348
    # WorkingDistance       23.000000      (mm)
    # SampleTiltAngle       70.000000      (newer files)
    # CameraElevationAngle  10.000000
    # CameraAzimuthalAngle  0.000000
    #
    # Phase 1
    # MaterialName          Iron bcc (old)
    # Formula               Fe
    # Info
    # Symmetry              43             (TSL symmetry code, see SYMMETRY_CODES)
    # LatticeConstants      2.866 2.866 2.866 90 90 90   (Å, degrees)
    # NumberFamilies        4
    # hklFamilies           1  1  0 1 0.000000     (h k l, used in indexing, intensity[, shown])
    # Categories 0 0 0 0 0
    #
    # GRID: SqrGrid                         (or HexGrid)
    # XSTEP: 0.1
    # YSTEP: 0.1
    # NCOLS_ODD: 140
    # NCOLS_EVEN: 140
    # NROWS: 160
    # OPERATOR: / SAMPLEID: / SCANID:
    phi1 Phi phi2 x y IQ CI Phase [SEM Fit [PRIAS bottom, centre, top, custom]]

Euler angles are Bunge, in radians. 8, 10 and 14 columns exist (and a
``# COLUMN_HEADERS:`` line names them in OIM 8 files). Points with CI = -1
are not indexed (as in orix); in a single-phase file the phase column is 0
(or 1) for that phase.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from kikuchi.io.orientation_map import OrientationMap, PhaseInfo
>>> omap = OrientationMap.from_arrays(euler=np.array([[[0.1, 0.2, 0.3], [1.0, 0.5, 2.0]]]), step_um=0.5,
...     phases=[PhaseInfo(1, "Fe", lattice_angstrom=(2.87, 2.87, 2.87), space_group=229)])
>>> back = read_ang(write_ang(omap, pathlib.Path(tempfile.mkdtemp()) / "fe.ang"))
>>> back.euler.round(5).tolist(), back.phases[0].extra["ang_symmetry"]
([[0.1, 0.2, 0.3], [1.0, 0.5, 2.0]], 43)
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.io._atomic import atomic_output
from kikuchi.io.orientation_map import (
    OrientationMap,
    OrientationMapError,
    OrientationMapWarning,
    PhaseInfo,
    _bad_rows_note,
    _Declared,
    _format_column,
    _format_header_value,
    _format_lattice_value,
    _grid_map,
    _join_rows,
    _parse_number,
    _parse_table,
    _read_text,
    _report,
    _screen_points,
    _writable_euler,
)

__all__ = ["AngFormatError", "OrientationMapWarning", "ASTAR_COLUMNS", "COLUMN_VARIANTS", "SYMMETRY_CODES", "read_ang", "write_ang", "sniff"]

_logger = logging.getLogger(__name__)

# plugin metadata
FORMAT_NAME = "ang"
EXTENSIONS = ("ang",)
READS = True
WRITES = True

_BASE = ("phi1", "Phi", "phi2", "x", "y", "IQ", "CI", "Phase")
#: Data column names by column count (file names; keys in ``columns`` are lower case, see _KEYS).
COLUMN_VARIANTS = {
    8: _BASE,
    10: (*_BASE, "SEM", "Fit"),
    14: (*_BASE, "SEM", "Fit", "PRIAS Bottom Strip", "PRIAS Center Square", "PRIAS Top Strip", "Custom Value"),
}
#: Data columns of NanoMegas ASTAR Index files (TEM orientation mapping; 'ACOM' in the header), as orix names them.
ASTAR_COLUMNS = (*_BASE[:5], "ind", "rel", "Phase", "relx100")
_KEYS = {
    "IQ": "iq",
    "CI": "ci",
    "SEM": "detector_signal",
    "Fit": "fit",
    "PRIAS Bottom Strip": "prias_bottom",
    "PRIAS Center Square": "prias_center",
    "PRIAS Top Strip": "prias_top",
    "Custom Value": "custom",
}
_FILE_NAMES = {v: k for k, v in _KEYS.items()}
#: TSL symmetry codes -> point group as orix reads the code (its _EDAX_POINT_GROUP_ALIASES) and Laue group.
SYMMETRY_CODES = {
    1: ("1", "-1"),
    2: ("2/m", "2/m"),
    20: ("121", "2/m"),
    22: ("222", "mmm"),
    4: ("4", "4/m"),
    42: ("422", "4/mmm"),
    3: ("3", "-3"),
    32: ("321", "-3m"),
    6: ("6", "6/m"),
    62: ("622", "6/mmm"),
    23: ("23", "m-3"),
    43: ("432", "m-3m"),
}
_CODE_OF_LAUE = {"-1": 1, "2/m": 2, "mmm": 22, "4/m": 4, "4/mmm": 42, "-3": 3, "-3m": 32, "6/m": 6, "6/mmm": 62, "m-3": 23, "m-3m": 43}
_PHASE_KEYS = ("MaterialName", "Formula", "Info", "Symmetry", "PointGroupID", "LatticeConstants", "NumberFamilies", "hklFamilies", "ElasticConstants", "Categories")
_GRID_KEYS = ("GRID", "XSTEP", "YSTEP", "NCOLS_ODD", "NCOLS_EVEN", "NROWS")
#: Map-level fields that say something about every point: given twice with other values, the first is used (and a warning says so).
_MAP_KEYS = (*_GRID_KEYS, "TEM_PIXperUM", "x-star", "y-star", "z-star", "WorkingDistance", "SampleTiltAngle", "CameraElevationAngle", "CameraAzimuthalAngle")


class AngFormatError(OrientationMapError):
    """A malformed ANG file; the message names the file and line."""


def sniff(head: str) -> bool:
    """True when the text starts like an ANG file (a ``#`` header with ANG keys)."""
    head = head.lstrip("\ufeff")
    return head.startswith("#") and any(k in head for k in ("TEM_PIXperUM", "x-star", "GRID:", "NCOLS_ODD", "Phase"))


def _split_key(content: str) -> tuple[str, str]:
    """'GRID: SqrGrid' -> ('GRID', 'SqrGrid'); 'x-star   0.5' -> ('x-star', '0.5')."""
    if content.startswith("Categories"):  # OIM writes "Categories0 0 0 0 0"
        return "Categories", content[len("Categories") :].strip()
    head, colon, rest = content.partition(":")
    if colon and head.strip() and not any(c in head.strip() for c in " \t"):
        return head.strip(), rest.strip()
    parts = content.split(None, 1)
    return parts[0], (parts[1].strip() if len(parts) > 1 else "")


def _numbers(text: str, *, what: str, where: str) -> list[float]:
    try:
        return [float(v) for v in text.split()]
    except ValueError:
        raise AngFormatError(f"{where}: {what} {text!r} are not numbers") from None


def _has_lines(block: dict[str, Any]) -> bool:
    return any(k != "id" and not k.startswith("_") for k in block)


def _finish_phase(block: dict[str, Any], *, fname: str, notes: list[str]) -> PhaseInfo:
    where = f"{fname} line {block['_line']}: Phase {block['id']}"
    lattice = block.get("LatticeConstants")
    if lattice is None:
        raise AngFormatError(f"{where}: no LatticeConstants line (a b c alpha beta gamma)")
    values = _numbers(lattice, what="LatticeConstants", where=where)
    if len(values) != 6:
        raise AngFormatError(f"{where}: LatticeConstants needs 6 numbers (a b c alpha beta gamma), found {len(values)}")
    if not all(math.isfinite(v) and v > 0 for v in values[:3]) or not all(math.isfinite(v) and 0 < v < 180 for v in values[3:]):
        raise AngFormatError(f"{where}: LatticeConstants {lattice!r} are not positive lengths and angles between 0 and 180°")
    code_text = str(block.get("Symmetry", "")).strip()
    try:
        code = int(code_text)
    except ValueError:
        raise AngFormatError(f"{where}: Symmetry {code_text!r} is not a TSL symmetry code ({sorted(SYMMETRY_CODES)})") from None
    if code not in SYMMETRY_CODES:
        raise AngFormatError(f"{where}: Symmetry code {code} is not one of {sorted(SYMMETRY_CODES)}")
    point_group, laue = SYMMETRY_CODES[code]
    families = []
    for text in block.get("hklFamilies", []):
        fields = text.split()
        try:
            hkl = tuple(int(v) for v in fields[:3])
            rest = [_parse_number(v) for v in fields[3:]]
        except ValueError:
            raise AngFormatError(f"{where}: hklFamilies {text!r} must start with three integers h k l") from None
        if len(hkl) != 3:
            raise AngFormatError(f"{where}: hklFamilies {text!r} must start with three integers h k l")
        family: dict[str, Any] = {"hkl": hkl}
        for name, value in zip(("use_in_indexing", "intensity", "show_bands"), rest):
            family[name] = value
        if len(rest) > 3:
            family["more"] = rest[3:]
        families.append(family)
    n_fam = block.get("NumberFamilies")
    if n_fam is not None and str(n_fam).strip().isdigit() and int(n_fam) != len(families):
        notes.append(f"line {block['_line']}: Phase {block['id']}: NumberFamilies {n_fam} but {len(families)} hklFamilies lines: the {len(families)} lines are read")
    extra = {"ang_symmetry": code, "formula": block.get("Formula", "")}
    for key in ("ElasticConstants", "Categories", "PointGroupID"):
        if key in block:
            extra[key] = block[key]
    return PhaseInfo(
        id=block["id"],
        name=str(block.get("MaterialName", f"phase{block['id']}")).strip(),
        lattice_angstrom=tuple(values[:3]),  # type: ignore[arg-type]
        angles_deg=tuple(values[3:]),  # type: ignore[arg-type]
        space_group=None,
        laue_group=laue,
        point_group=point_group,
        hkl_families=families,
        comment=str(block.get("Info", "")).strip(),
        extra=extra,
    )


def _column_names(header: dict[str, Any], n: int, *, astar: bool) -> list[str]:
    names = header.get("COLUMN_HEADERS")
    if isinstance(names, str):
        listed = [s.strip() for s in names.split(",")]
        if len(listed) == n:
            mapped = [_BASE[j] if j < 8 else listed[j] for j in range(n)]
            return mapped
    if astar and n >= 8:
        return [*ASTAR_COLUMNS[:n], *(f"column{j + 1}" for j in range(len(ASTAR_COLUMNS), n))]
    if n in COLUMN_VARIANTS:
        return list(COLUMN_VARIANTS[n])
    if n > 10:
        return [*COLUMN_VARIANTS[10], *(f"column{j + 1}" for j in range(10, n))]
    return [*_BASE, *(f"column{j + 1}" for j in range(8, n))]


def _grid_fields(header: dict[str, Any], notes: list[str]) -> _Declared:
    """What the header's grid lines say (fields missing or not numbers: None, with a note)."""
    present = [k for k in _GRID_KEYS if k in header]
    if not present:
        notes.append("the header has no grid lines (GRID, XSTEP, YSTEP, NCOLS_ODD, NCOLS_EVEN, NROWS): the grid comes from the point coordinates")
        return _Declared()
    absent = [k for k in _GRID_KEYS if k not in header]
    if absent:
        notes.append(f"header field(s) {', '.join(absent)} missing: the grid comes from the point coordinates")
    kind = None
    if "GRID" in header:
        decl = str(header["GRID"]).strip().rstrip("#").strip()
        if decl in ("SqrGrid", "HexGrid"):
            kind = "square" if decl == "SqrGrid" else "hexagonal"
        else:
            notes.append(f"GRID {header['GRID']!r} is neither SqrGrid nor HexGrid: the grid comes from the point coordinates")
    steps = {}
    for key in ("XSTEP", "YSTEP"):
        value = header.get(key)
        if key in header and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            notes.append(f"header field {key} is {value!r}, not a positive step: ignored, the step comes from the point coordinates")
            value = None
        steps[key] = float(value) if value is not None else None
    counts = {}
    for key in ("NCOLS_ODD", "NCOLS_EVEN", "NROWS"):
        value = header.get(key)
        if key in header and not (isinstance(value, int) and value > 0):
            notes.append(f"header field {key} is {value!r}, not a count: ignored, the grid comes from the point coordinates")
            value = None
        counts[key] = value
    odd, even, rows = counts["NCOLS_ODD"], counts["NCOLS_EVEN"], counts["NROWS"]
    promised = None
    if odd and rows and kind:
        promised = odd * rows if kind == "square" else odd * ((rows + 1) // 2) + (even or odd) * (rows // 2)
    return _Declared(
        kind=kind,
        shape=(rows, odd) if rows and odd else None,
        hex_ncols=(odd, even or odd) if odd and kind == "hexagonal" else None,
        step=(steps["YSTEP"], steps["XSTEP"]),
        text=f"{header.get('NROWS')} rows x {header.get('NCOLS_ODD')}/{header.get('NCOLS_EVEN')} columns at XSTEP {header.get('XSTEP')} µm",
        promised=promised,
    )


def read_ang(path: str | os.PathLike, *, strict: bool = False) -> OrientationMap:
    """Read an EDAX/TSL ANG orientation map.

    The file is read as far as it can be interpreted (docs/formats.md,
    "Reading rule"); every oddity is an :class:`OrientationMapWarning`
    naming the file and line, kept in ``omap.notes``.

    Parameters
    ----------
    path
        The ``.ang`` file.
    strict
        Refuse any oddity (the first warning becomes an AngFormatError).

    Returns
    -------
    OrientationMap
        Euler angles as stored (radians; the rotations orix's ANG reader
        gives). Points with CI = -1 get phase 0 (not indexed). Each point is
        placed by its coordinates on the grid they form (``HexGrid`` stays
        hexagonal); where the header's GRID/steps/counts disagree with the
        data (e.g. a subsampled export) the data win, and where a header
        has no grid lines (TEM orientation-mapping software) the grid comes
        from the coordinates. Phase lines outside a ``# Phase N`` block
        (TEM software writes them so) are read as phases 1, 2, ...

    Raises
    ------
    AngFormatError
        Naming file and line: no ``#`` header, a phase block that cannot be
        read, no data, fewer than half of the data lines readable,
        coordinates that form no grid.
    """
    path = Path(path)
    fname = path.name
    lines, complete = _read_text(path)
    head = [(k + 1, ln[1:].strip()) for k, ln in enumerate(lines) if ln.startswith("#")]
    if not lines or not head or not any(ln.startswith("#") for ln in lines[:50]):
        first = lines[0][:40] if lines else ""
        raise AngFormatError(f"{fname} line 1: expected a '#' header line, found {first!r} (not an ANG file?)")
    header: dict[str, Any] = {}
    notes: list[str] = []
    blocks: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    outside: list[int] = []
    for number, content in head:
        if not content:
            continue
        key, value = _split_key(content)
        if key == "Phase" and value.split() and value.split()[0].isdigit():
            current = {"id": int(value.split()[0]), "_line": number}
            blocks.append(current)
            continue
        if key in _PHASE_KEYS:
            if current is None or (current.get("_implicit") and key == "MaterialName" and "MaterialName" in current):
                current = {"id": max([b["id"] for b in blocks], default=0) + 1, "_line": number, "_implicit": True}
                blocks.append(current)
                outside.append(number)
            if key in ("hklFamilies", "ElasticConstants"):
                current.setdefault(key, []).append(value)
            elif key in current and current[key] != value:
                notes.append(f"line {number}: {key} again in Phase {current['id']}, now {value!r} (first {current[key]!r}): the first is used")
            else:
                current[key] = value
            continue
        current = None if key in _GRID_KEYS else current
        if key == "Column names" or content.startswith("Column names"):
            header["Column names"] = content.partition(":")[2].strip()
            continue
        parsed = _parse_number(value) if key not in ("COLUMN_HEADERS", "COLUMN_UNITS", "COLUMN_NOTES") else value
        if key in header and header[key] != parsed and key in _MAP_KEYS:
            notes.append(f"line {number}: header field {key} again, now {parsed!r} (first {header[key]!r}): the first is used")
        elif key not in header or key not in _MAP_KEYS:
            header[key] = parsed  # other repeated fields (OIM 8: HEADER Start ... HEADER End): the last
    if outside:
        notes.append(
            f"line {outside[0]}: phase lines (MaterialName, Formula, ...) outside a '# Phase N' block, as TEM "
            f"orientation-mapping software writes them: read as phase{'s' if len(outside) > 1 else ''} "
            f"{', '.join(str(b['id']) for b in blocks if b.get('_implicit'))}"
        )
    for b in blocks:
        if b["id"] == 0:
            b["id"] = max(c["id"] for c in blocks) + 1
            notes.append(f"line {b['_line']}: '# Phase 0', but phase numbers start at 1 (0 marks points not indexed): read as phase {b['id']}")
        if not _has_lines(b):  # a '# Phase N' line with no phase lines after it
            notes.append(f"line {b['_line']}: Phase {b['id']} has no phase lines (MaterialName, Symmetry, LatticeConstants, ...): ignored")
    phases = [_finish_phase(b, fname=fname, notes=notes) for b in blocks if _has_lines(b)]
    ids = [p.id for p in phases]
    if len(set(ids)) != len(ids):
        raise AngFormatError(f"{fname}: phase numbers {ids} repeat")
    declared = _grid_fields(header, notes)
    astar = any("ACOM" in content for _, content in head[:10])

    at = [(k + 1, ln) for k, ln in enumerate(lines) if not ln.startswith("#") and ln.strip()]
    if not at:
        raise AngFormatError(f"{fname}: no data lines after the header (line {head[-1][0]}); truncated file?")
    counts = np.array([len(ln.split()) for _, ln in at])
    values, freq = np.unique(counts, return_counts=True)
    first_count = int(values[np.argmax(freq)])
    if first_count < 8:
        raise AngFormatError(f"{fname} line {at[0][0]}: expected 10 columns ({' '.join(COLUMN_VARIANTS[10])}), found {first_count}")
    if not complete:
        last = at[-1][0]
        if declared.promised is not None and len(at) < declared.promised:
            at.pop()
            notes.append(f"line {last}: the file ends inside this line (no line end after it): the line is left out")
            complete = True  # the cut line is gone
            if not at:
                raise AngFormatError(f"{fname}: no complete data line after the header; truncated file?")
    names = _column_names(header, first_count, astar=astar)
    table = _parse_table(
        [ln for _, ln in at], sep=None, line_numbers=np.array([k for k, _ in at]), names=names, required=8, fname=fname,
        error=AngFormatError, default_count=first_count,
    )  # fmt: skip
    if not complete and table.line[-1] == at[-1][0]:
        notes.append(f"line {at[-1][0]}: the file ends without a line end after this last line: its last value may be cut short")
    if table.bad:
        notes.append(_bad_rows_note(table.bad, what="its map position is missing"))
    cols, n_cols = table.cols, table.n_cols
    euler = np.column_stack(cols[0:3])  # type: ignore[arg-type]
    x, y = cols[3], cols[4]
    raw_phase = cols[7].copy()  # type: ignore[union-attr]
    columns: dict[str, np.ndarray] = {}
    for j in range(5, n_cols):
        if j == 7 or cols[j] is None:
            continue
        key = _KEYS.get(names[j], names[j].lower().replace(" ", "_"))
        columns[key] = cols[j]  # type: ignore[assignment]
    # a single-phase file writes 0 (or its number) for its phase
    if len(phases) == 1:
        raw_phase[raw_phase == 0] = phases[0].id
    if "ci" in columns:
        raw_phase[columns["ci"] == -1] = 0  # not indexed (as orix reads it)
    phase_id, odd = _screen_points(
        euler=euler, phase=raw_phase, columns=columns, phase_ids=ids, where=table.line, names=_FILE_NAMES,
        euler_text=lambda e: ", ".join(f"{v:g}" for v in e) + " rad",
    )  # fmt: skip
    notes += odd
    if astar:
        x, y = x / 1000.0, y / 1000.0  # type: ignore[operator]
        declared.step = tuple(None if v is None else v / 1000.0 for v in declared.step)  # type: ignore[assignment]
        notes.append("NanoMegas ASTAR file ('ACOM' in the header): coordinates in nm (as orix reads them), divided by 1000 to µm")
    elif n_cols not in COLUMN_VARIANTS:
        notes.append(f"{n_cols} data columns (known variants: 8, 10, 14); extra columns kept as {names[8:]}")
    omap = _grid_map(
        euler=euler, phase_id=phase_id, x=x, y=y, columns=columns, where=table.line, declared=declared,  # type: ignore[arg-type]
        fill={"ci": -1.0}, fill_text=" (CI -1)", notes=notes, fname=fname, n_lines=len(at), error=AngFormatError,
        phases=phases, header=header, source_format="ang", path=path,
    )  # fmt: skip
    if declared.kind is not None and omap.grid != declared.kind:
        omap.notes.append(f"the header says GRID {header['GRID']}, the coordinates form a {omap.grid} grid; the coordinates are used")
    return _report(omap, new=omap.notes, fname=fname, strict=strict, error=AngFormatError)


def _fmt(value: Any) -> str:
    return _format_header_value(value, 6)


def _symmetry_code(phase: PhaseInfo) -> int:
    code = phase.extra.get("ang_symmetry")
    if code in SYMMETRY_CODES and SYMMETRY_CODES[code][1] == phase.laue_group:
        return int(code)
    if phase.laue_group not in _CODE_OF_LAUE:
        raise AngFormatError(f"phase {phase.id} ({phase.name}): Laue group {phase.laue_group!r} has no TSL symmetry code; give a space group or point group")
    return _CODE_OF_LAUE[phase.laue_group]  # type: ignore[index]


def write_ang(omap: OrientationMap, path: str | os.PathLike) -> Path:
    """Write an orientation map as an EDAX/TSL ANG file (atomic: temporary name, then rename).

    10 columns (14 when the map has the PRIAS/custom columns): Euler angles
    in radians and x, y, IQ, CI, SEM signal and fit with 5 decimals. Points
    that are not indexed get CI = -1 and phase 0; a map without CI (e.g. from
    a CTF file) gets CI = 0 on indexed points. Columns the map lacks, and
    values it has not (NaN), are 0: a whitespace-separated line has no empty
    field. A map with an indexed point whose Euler angles are not finite is
    refused.
    Header fields of ``omap.header`` are written back; the grid fields come
    from the map itself (GRID HexGrid with NCOLS_ODD/EVEN for hexagonal maps).
    An interactive point list has no ANG form and is refused.
    """
    path = Path(path)
    if omap.grid == "interactive":
        raise AngFormatError(f"{path.name}: an interactive point list cannot be written as ANG (ANG files hold SqrGrid or HexGrid maps)")
    h = omap.header
    out: list[str] = []
    for key, default in (("TEM_PIXperUM", 1.0), ("x-star", 0.0), ("y-star", 0.0), ("z-star", 0.0), ("WorkingDistance", 0.0)):
        out.append(f"# {key:<22}{_fmt(h.get(key, default))}")
    for key in ("SampleTiltAngle", "CameraElevationAngle", "CameraAzimuthalAngle", "CameraDistance"):
        if key in h:
            out.append(f"# {key:<22}{_fmt(h[key])}")
    out.append("#")
    for p in omap.phases:
        out += [
            f"# Phase {p.id}",
            f"# MaterialName  \t{p.name}",
            f"# Formula     \t{p.extra.get('formula', '') or p.name}",
            f"# Info          \t{p.comment}".rstrip(),
            f"# Symmetry              {_symmetry_code(p)}",
        ]
        if "PointGroupID" in p.extra:
            out.append(f"# PointGroupID  {p.extra['PointGroupID']}")
        out.append("# LatticeConstants      " + " ".join(_format_lattice_value(v) for v in (*p.lattice_angstrom, *p.angles_deg)))
        out.append(f"# NumberFamilies        {len(p.hkl_families)}")
        for fam in p.hkl_families:
            fields = [f"{v:3d}" for v in fam["hkl"]]
            for name in ("use_in_indexing", "intensity", "show_bands"):
                if name in fam:
                    v = fam[name]
                    fields.append(f"{v:.6f}" if isinstance(v, float) else str(v))
            fields += [str(v) for v in fam.get("more", [])]
            out.append("# hklFamilies   \t" + " ".join(fields))
        for text in p.extra.get("ElasticConstants", []):
            out.append(f"# ElasticConstants \t{text}")
        if "Categories" in p.extra:
            out.append(f"# Categories {p.extra['Categories']}")
        out.append("#")
    if omap.grid == "hexagonal":
        odd, even = omap.hex_ncols  # type: ignore[misc]
        rows = omap.nav_shape[0]  # type: ignore[index]
        grid_lines = ["# GRID: HexGrid", f"# XSTEP: {_fmt(omap.step_um[1])}", f"# YSTEP: {_fmt(omap.step_um[0])}"]
    else:
        rows, odd = omap.nav_shape  # type: ignore[misc]
        even = odd
        grid_lines = ["# GRID: SqrGrid", f"# XSTEP: {_fmt(omap.step_um[1])}", f"# YSTEP: {_fmt(omap.step_um[0])}"]
    out += [*grid_lines, f"# NCOLS_ODD: {odd}", f"# NCOLS_EVEN: {even}", f"# NROWS: {rows}", "#"]
    for key in ("OPERATOR", "SAMPLEID", "SCANID"):
        out += [f"# {key}: \t{_fmt(h.get(key, ''))}".rstrip(), "#"]
    skip = {
        "TEM_PIXperUM", "x-star", "y-star", "z-star", "WorkingDistance", "SampleTiltAngle", "CameraElevationAngle",
        "CameraAzimuthalAngle", "CameraDistance", "OPERATOR", "SAMPLEID", "SCANID", "COLUMN_COUNT", "COLUMN_HEADERS",
        "COLUMN_UNITS", "COLUMN_NOTES", "Column names", "HEADER", "NOTES", *_GRID_KEYS,
    }  # fmt: skip
    for key, value in h.items():
        if key not in skip and not isinstance(value, (dict, list)) and re.fullmatch(r"[A-Za-z][\w\-]*", key):
            out.append(f"# {key}: {_fmt(value)}")
    wide = any(k in omap.columns for k in ("prias_bottom", "prias_center", "prias_top", "custom"))
    names = COLUMN_VARIANTS[14 if wide else 10]
    out.append(f"# COLUMN_COUNT: {len(names)}")
    out.append("# COLUMN_HEADERS: " + ", ".join("Phase index" if nm == "Phase" else nm for nm in names))
    out.append("#")

    n = len(omap)
    indexed = omap.phase_id > 0
    euler = _writable_euler(omap, fname=path.name, error=AngFormatError)
    parts = [_format_column(euler[:, k], 5) for k in range(3)]
    parts += [_format_column(omap.x_um, 5), _format_column(omap.y_um, 5)]
    for name in names[5:]:
        if name == "Phase":
            parts.append(_format_column(np.where(indexed, omap.phase_id, 0).astype(np.int32), 0))
            continue
        key = _KEYS[name]
        values = np.asarray(omap.columns[key], dtype=np.float64) if key in omap.columns else np.zeros(n)
        if key == "ci":
            clash = int((indexed & (values == -1)).sum())
            if clash:
                _logger.warning("%s: %d indexed points have CI = -1, which ANG readers take as not indexed", path.name, clash)
            values = np.where(indexed, values, -1.0)
        parts.append(_format_column(np.where(np.isfinite(values), values, 0.0), 5))  # no value (NaN): 0, never an empty field
    text = "\n".join(out) + "\n" + _join_rows(parts, "  ")
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# plugin entry points
read = read_ang
write = write_ang
