"""Oxford Instruments Channel Text File (CTF): read and write orientation maps.

Layout (tab separated)::

    Channel Text File
    Prj	<project>
    Author	<author>
    JobMode	Grid                     (or Interactive, with NoMeas <n>)
    XCells	196
    YCells	172
    XStep	0.1500                    (µm)
    YStep	0.1500
    AcqE1	0.0000                    (acquisition Euler angles, degrees)
    AcqE2	0.0000
    AcqE3	0.0000
    Euler angles refer to Sample Coordinate system (CS0)!	Mag	10000	Coverage	100	Device	0	KV	20	TiltAngle	69.92	TiltAxis	0	DetectorOrientationE1	1.84	...	WorkingDistance	9.58	InsertionDistance	164.04
    Phases	2
    3.189;3.189;5.185	90.000;90.000;120.000	Ga N	9	186			<comment>
    (a;b;c Å, alpha;beta;gamma degrees, name, Laue group code 1-11, space group, two internal fields, comment)
    Phase	X	Y	Bands	Error	Euler1	Euler2	Euler3	MAD	BC	BS
    1	0.0000	0.0000	8	0	179.6377	120.9077	58.9279	0.0770	153	166

Euler angles are Bunge, in degrees; phase 0 marks a point that is not
indexed. Files may leave columns empty (MTEX writes no BS column), which are
then absent from ``OrientationMap.columns``.

Examples
--------
>>> import numpy as np, tempfile, pathlib
>>> from kikuchi.io.orientation_map import OrientationMap, PhaseInfo
>>> omap = OrientationMap.from_arrays(euler=np.radians([[[10.0, 20.0, 30.0]]]), step_um=0.5,
...     phases=[PhaseInfo(1, "Ni", lattice_angstrom=(3.524, 3.524, 3.524), space_group=225)])
>>> path = write_ctf(omap, pathlib.Path(tempfile.mkdtemp()) / "ni.ctf")
>>> back = read_ctf(path)
>>> np.degrees(back.euler).round(4).tolist(), back.phases[0].laue_group
([[10.0, 20.0, 30.0]], 'm-3m')
"""

from __future__ import annotations

import logging
import math
import os
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
    _filled,
    _format_column,
    _format_header_value,
    _format_lattice_value,
    _grid_map,
    _is_number,
    _join_rows,
    _maybe_int,
    _parse_number,
    _parse_table,
    _read_text,
    _report,
    _screen_points,
    _writable_euler,
    laue_group_of,
    point_group_of_space_group,
)

__all__ = ["CtfFormatError", "OrientationMapWarning", "COLUMNS", "ERROR_CODES", "LAUE_GROUPS", "read_ctf", "write_ctf", "sniff"]

_logger = logging.getLogger(__name__)

# plugin metadata
FORMAT_NAME = "ctf"
EXTENSIONS = ("ctf",)
READS = True
WRITES = True

#: The data columns of a CTF file, in order.
COLUMNS = ("Phase", "X", "Y", "Bands", "Error", "Euler1", "Euler2", "Euler3", "MAD", "BC", "BS")
#: Meaning of the ``Error`` column.
ERROR_CODES = {
    0: "Success",
    1: "Low BC",
    2: "Low BS",
    3: "No solution",
    4: "High MAD",
    5: "Not yet analysed (job cancelled before this point)",
    6: "Unexpected error",
}
#: CTF Laue group codes (phase table, 4th field) -> Laue group symbol (orix spelling).
LAUE_GROUPS = {1: "-1", 2: "2/m", 3: "mmm", 4: "4/m", 5: "4/mmm", 6: "-3", 7: "-3m", 8: "6/m", 9: "6/mmm", 10: "m-3", 11: "m-3m"}
_LAUE_CODES = {v: k for k, v in LAUE_GROUPS.items()}
#: Keys of the "Euler angles refer to ... (CS0)!" line, in the order Oxford writes them.
CS0_KEYS = (
    "Mag",
    "Coverage",
    "Device",
    "KV",
    "TiltAngle",
    "TiltAxis",
    "DetectorOrientationE1",
    "DetectorOrientationE2",
    "DetectorOrientationE3",
    "WorkingDistance",
    "InsertionDistance",
)
_CS0_PREFIX = "Euler angles refer to"
_REQUIRED = 8  # Phase .. Euler3
_COLUMN_KEYS = {3: "bands", 4: "error", 8: "mad", 9: "bc", 10: "bs"}


class CtfFormatError(OrientationMapError):
    """A malformed CTF file; the message names the file and line."""


def sniff(head: str) -> bool:
    """True when the text starts like a CTF file."""
    return head.lstrip("\ufeff").startswith("Channel Text File")


def _is_column_header(fields: list[str]) -> bool:
    return len(fields) > 2 and fields[0].strip() == "Phase" and fields[1].strip() == "X" and fields[2].strip() == "Y"


def _looks_like_phase(fields: list[str]) -> bool:
    return len(fields) >= 5 and fields[0].count(";") == 2 and fields[1].count(";") == 2


def _looks_like_data(fields: list[str]) -> bool:
    return len(fields) >= _REQUIRED and all(_is_number(f) for f in fields[:_REQUIRED])


def _phase_line(fields: list[str], *, number: int, fname: str, line: int, notes: list[str]) -> PhaseInfo:
    where = f"{fname} line {line}: phase {number}"
    if len(fields) < 5:
        raise CtfFormatError(
            f"{where}: expected 'a;b;c<TAB>alpha;beta;gamma<TAB>name<TAB>Laue group<TAB>space group...', found {len(fields)} field(s)"
        )
    try:
        lattice = [float(v.replace(",", ".")) for v in fields[0].split(";")]
        angles = [float(v.replace(",", ".")) for v in fields[1].split(";")]
    except ValueError:
        raise CtfFormatError(f"{where}: lattice {fields[0]!r} / angles {fields[1]!r} are not numbers 'a;b;c' and 'alpha;beta;gamma'") from None
    if len(lattice) != 3 or len(angles) != 3:
        raise CtfFormatError(f"{where}: expected three lattice lengths and three angles, found {fields[0]!r} and {fields[1]!r}")
    if not all(math.isfinite(v) and v > 0 for v in lattice) or not all(math.isfinite(v) and 0 < v < 180 for v in angles):
        raise CtfFormatError(f"{where}: lattice {fields[0]!r} / angles {fields[1]!r} are not positive lengths and angles between 0 and 180°")
    try:
        laue_code = int(fields[3])
    except ValueError:
        raise CtfFormatError(f"{where}: Laue group {fields[3]!r} must be an integer 1..11") from None
    if laue_code not in LAUE_GROUPS:
        raise CtfFormatError(f"{where}: Laue group code {laue_code} is not one of 1..11")
    laue = LAUE_GROUPS[laue_code]
    extra: dict[str, Any] = {"ctf_laue_code": laue_code, "ctf_fields": fields[5:7] + [""] * (2 - len(fields[5:7])), "ctf_more": fields[8:]}
    sg: int | None = None
    text = fields[4].strip()
    try:
        space_group = int(text) if text else 0
    except ValueError:
        space_group = None
    if space_group is None or not 0 <= space_group <= 230:
        notes.append(f"line {line}: phase {number}: space group {text!r} is not a number 0..230 (0: not given): ignored, the Laue group {laue} (code {laue_code}) gives the symmetry")
        extra["ctf_space_group"] = text
    elif space_group:
        pg = point_group_of_space_group(space_group)
        if laue_group_of(pg) == laue:
            sg = space_group
        else:
            # MTEX exports do this; orix, too, takes the Laue group and drops the space group
            notes.append(
                f"line {line}: phase {number}: space group {space_group} (point group {pg}) does not belong to the Laue group "
                f"{laue} (code {laue_code}) of the same line: the Laue group gives the symmetry (as orix reads it), "
                f"the space group is kept as extra['ctf_space_group']"
            )
            extra["ctf_space_group"] = space_group
    comment = fields[7] if len(fields) > 7 else ""
    return PhaseInfo(
        id=number,
        name=fields[2].strip(),
        lattice_angstrom=tuple(lattice),  # type: ignore[arg-type]
        angles_deg=tuple(angles),  # type: ignore[arg-type]
        space_group=sg,
        laue_group=laue,
        point_group=None if sg else laue,
        comment=comment,
        extra=extra,
    )


def _count(header: dict[str, Any], key: str, notes: list[str]) -> int | None:
    """A header count (XCells, YCells, NoMeas), or None (with a note) when missing or not a count."""
    if key not in header:
        return None
    value = header[key]
    if isinstance(value, int) and value > 0:
        return value
    notes.append(f"header field {key} is {value!r}, not a count: ignored, the grid comes from the point coordinates")
    return None


def _step(header: dict[str, Any], key: str, notes: list[str]) -> float | None:
    if key not in header:
        return None
    value = header[key]
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
        return float(value)
    notes.append(f"header field {key} is {value!r}, not a positive step: ignored, the step comes from the point coordinates")
    return None


def read_ctf(path: str | os.PathLike, *, strict: bool = False) -> OrientationMap:
    """Read an Oxford CTF orientation map.

    The file is read as far as it can be interpreted (docs/formats.md,
    "Reading rule"); every oddity is an :class:`OrientationMapWarning`
    naming the file and line, kept in ``omap.notes``.

    Parameters
    ----------
    path
        The ``.ctf`` file.
    strict
        Refuse any oddity (the first warning becomes a CtfFormatError).

    Returns
    -------
    OrientationMap
        Euler angles converted from degrees to radians, nothing else changed
        (the same rotations orix's CTF reader gives). Each point is placed
        by its coordinates on the grid they form: square, hexagonal (MTEX
        writes those with ``JobMode Grid``) or, for ``JobMode
        Interactive``, a point list. A file shorter than ``XCells x
        YCells`` (an acquisition stopped early) gives the whole map, the
        positions without a point not indexed with Error 5.

    Raises
    ------
    CtfFormatError
        Naming file and line: not a CTF file, no phase table or a phase
        line that cannot be read, no data table, fewer than half of the data
        lines readable, coordinates that form no grid.
    """
    path = Path(path)
    fname = path.name
    lines, complete = _read_text(path)
    if not lines or not sniff(lines[0]):
        first = lines[0][:40] if lines else ""
        raise CtfFormatError(f"{fname} line 1: expected 'Channel Text File', found {first!r} (not a CTF file?)")

    header: dict[str, Any] = {}
    notes: list[str] = []
    phases: list[PhaseInfo] = []
    have_phase_table = False
    data_start = None  # 0-based index of the first data line
    i = 1
    while i < len(lines):
        line = lines[i]
        fields = line.split("\t")
        key = fields[0].strip()
        if _is_column_header(fields):
            names = [f.strip() for f in fields]
            if names != list(COLUMNS[: len(names)]):
                header["Columns"] = names
            data_start = i + 1
            break
        if have_phase_table and _looks_like_data(fields):
            notes.append(f"line {i + 1}: data without the column header line 'Phase<TAB>X<TAB>Y<TAB>...' before it: read as CTF's columns ({' '.join(COLUMNS)})")
            data_start = i
            break
        if key.startswith(_CS0_PREFIX):
            header[_CS0_PREFIX] = key[len(_CS0_PREFIX) :].strip()
            pairs = fields[1:]
            for k in range(0, len(pairs) - 1, 2):
                header[pairs[k].strip()] = _parse_number(pairs[k + 1])
        elif key == "Phases":
            value = _parse_number(fields[1]) if len(fields) > 1 else ""
            if have_phase_table:
                notes.append(f"line {i + 1}: a second phase table ('Phases'): ignored, with the phase lines after it")
                i += 1
                while i < len(lines) and _looks_like_phase(lines[i].split("\t")):
                    i += 1
                continue
            if i + 1 < len(lines) and lines[i + 1].split("\t")[0].strip() == "Phases":
                i += 1  # the line repeated: the table follows the last of them
                continue
            count = value if isinstance(value, int) and value >= 0 else None
            if count is None:
                notes.append(f"line {i + 1}: 'Phases' needs the number of phases, found {line[:40]!r}: the phase lines that follow are read")
            j = i + 1
            while j < len(lines):
                f = lines[j].split("\t")
                if _is_column_header(f) or not (len(phases) < (count or 0) or _looks_like_phase(f)):
                    break
                phases.append(_phase_line(f, number=len(phases) + 1, fname=fname, line=j + 1, notes=notes))
                j += 1
            if count is not None and len(phases) != count:
                notes.append(f"line {i + 1}: Phases {count}, but {len(phases)} phase line(s) follow: the {len(phases)} are read")
            have_phase_table = True
            i = j
            continue
        elif key:
            value = _parse_number("\t".join(fields[1:])) if len(fields) > 1 else ""
            if key in header and header[key] != value:
                notes.append(f"line {i + 1}: header field {key} again, now {value!r} (first {header[key]!r}): the first is used")
            else:
                header[key] = value
        i += 1
    if data_start is None:
        raise CtfFormatError(f"{fname}: no column header line 'Phase\\tX\\tY\\t...' found after {len(lines)} lines (truncated or not a CTF file?)")
    if not have_phase_table:
        raise CtfFormatError(f"{fname}: header field 'Phases' missing (the phase table: 'Phases<TAB>N' and N phase lines)")

    job_mode = str(header.get("JobMode", "")).strip()
    if job_mode not in ("Grid", "Interactive"):
        guess = "Interactive" if "NoMeas" in header and "XCells" not in header else "Grid"
        said = "missing" if not job_mode else f"{job_mode!r}, neither 'Grid' nor 'Interactive'"
        notes.append(f"header field JobMode {said}: read as {guess}")
        job_mode = guess
    n_meas = _count(header, "NoMeas", notes) if job_mode == "Interactive" else None
    ncols, nrows = (_count(header, "XCells", notes), _count(header, "YCells", notes)) if job_mode == "Grid" else (None, None)
    xstep, ystep = _step(header, "XStep", notes), _step(header, "YStep", notes)
    if job_mode == "Grid":
        absent = [k for k in ("XCells", "YCells", "XStep", "YStep") if k not in header]
        if absent:
            notes.append(f"header field(s) {', '.join(absent)} missing: the grid comes from the point coordinates")
    promised = n_meas if job_mode == "Interactive" else (ncols * nrows if ncols and nrows else None)

    at = [(k + 1, ln) for k, ln in enumerate(lines[data_start:], start=data_start) if ln.strip()]
    if not at:
        raise CtfFormatError(f"{fname}: no data lines after the column header (line {data_start}); truncated file?")
    if not complete:
        last = at[-1][0]
        if promised is not None and len(at) < promised:
            at.pop()
            notes.append(f"line {last}: the file ends inside this line (no line end after it): the line is left out")
            complete = True  # the cut line is gone
            if not at:
                raise CtfFormatError(f"{fname}: no complete data line after the column header (line {data_start}); truncated file?")
    table = _parse_table(
        [ln for _, ln in at], sep="\t", line_numbers=np.array([k for k, _ in at]), names=COLUMNS, required=_REQUIRED, fname=fname, error=CtfFormatError
    )
    if not complete and table.line[-1] == at[-1][0]:
        notes.append(f"line {at[-1][0]}: the file ends without a line end after this last line: its last value may be cut short")
    if table.bad:
        notes.append(_bad_rows_note(table.bad, what="its map position is missing" if job_mode == "Grid" else "the point is missing"))
    cols = table.cols
    x, y = cols[1], cols[2]  # type: ignore[index]
    euler = np.deg2rad(np.column_stack(cols[5:8]))  # type: ignore[arg-type]
    columns: dict[str, np.ndarray] = {}
    for j, key in _COLUMN_KEYS.items():
        if j < len(cols) and cols[j] is not None:
            columns[key] = cols[j]  # type: ignore[assignment]
    for j in range(len(COLUMNS), len(cols)):
        if cols[j] is not None:
            name = header.get("Columns", [])[j] if j < len(header.get("Columns", [])) else f"column{j + 1}"
            columns[name.lower()] = cols[j]  # type: ignore[assignment]
    missing = [COLUMNS[j] for j in range(3, len(COLUMNS)) if j >= len(cols) or cols[j] is None]
    if missing:
        notes.append(f"columns left empty in the file: {' '.join(missing)}")
    phase_id, odd = _screen_points(
        euler=euler, phase=cols[0], columns=columns, phase_ids=[p.id for p in phases], where=table.line,  # type: ignore[arg-type]
        names={v: COLUMNS[k] for k, v in _COLUMN_KEYS.items()}, euler_text=lambda e: ", ".join(f"{v:g}" for v in np.rad2deg(e)),
    )  # fmt: skip
    notes += odd

    n = phase_id.size
    if job_mode == "Interactive":
        if n_meas is not None and n != n_meas:
            how = "fewer (a truncated file?)" if n < n_meas else "more"
            notes.append(f"header NoMeas {n_meas} but the file holds {n} points, {how}: the {n} points are read")
        usable = np.isfinite(x) & np.isfinite(y)  # type: ignore[arg-type]
        if not usable.all():
            k = int(np.argmax(~usable))
            notes.append(f"line {table.line[k]}: coordinates X {x[k]:g}, Y {y[k]:g} are not numbers ({int((~usable).sum())} point(s)): left out")  # type: ignore[index]
        if not usable.any():
            raise CtfFormatError(f"{fname}: no data line has usable X/Y coordinates")
        omap = OrientationMap(
            euler=euler[usable], phase_id=phase_id[usable], x_um=x[usable], y_um=y[usable], grid="interactive", nav_shape=None,  # type: ignore[index]
            step_um=(ystep or 0.0, xstep or 0.0), columns={k: _maybe_int(v[usable]) for k, v in columns.items()}, phases=phases,
            header=header, source_format="ctf", path=path, notes=notes,
        )  # fmt: skip
    else:
        declared = _Declared(
            kind="square",
            shape=(nrows, ncols) if nrows and ncols else None,
            hex_ncols=(ncols, ncols) if nrows and ncols else None,
            step=(ystep, xstep),
            text=f"XCells {header.get('XCells')} x YCells {header.get('YCells')} at XStep {header.get('XStep')} µm, YStep {header.get('YStep')} µm",
            promised=promised,
        )
        omap = _grid_map(
            euler=euler, phase_id=phase_id, x=x, y=y, columns=columns, where=table.line, declared=declared,  # type: ignore[arg-type]
            fill={"error": 5}, fill_text=" (Error 5, 'Not yet analysed')", notes=notes, fname=fname, n_lines=len(at), error=CtfFormatError,
            phases=phases, header=header, source_format="ctf", path=path,
        )  # fmt: skip
        if omap.grid == "hexagonal":
            omap.notes.append(
                f"the coordinates form a hexagonal grid ({omap.nav_shape[0]} rows {omap.step_um[0]:.4g} µm apart, "  # type: ignore[index]
                f"every other row shifted by {omap.step_um[1] / 2:.4g} µm), which a CTF header cannot say (JobMode Grid)"
            )
    if "error" in omap.columns and np.issubdtype(omap.columns["error"].dtype, np.integer):
        unknown = sorted(set(np.unique(omap.columns["error"]).tolist()) - set(ERROR_CODES))
        if unknown:
            omap.notes.append(f"error codes {unknown} are not among the documented codes 0..6")
    return _report(omap, new=omap.notes, fname=fname, strict=strict, error=CtfFormatError)


def _fmt_header(value: Any) -> str:
    return _format_header_value(value, 4)


def _laue_code(phase: PhaseInfo) -> int:
    code = phase.extra.get("ctf_laue_code")
    if code in LAUE_GROUPS and LAUE_GROUPS[code] == phase.laue_group:
        return int(code)
    if phase.laue_group not in _LAUE_CODES:
        raise CtfFormatError(f"phase {phase.id} ({phase.name}): Laue group {phase.laue_group!r} has no CTF code; give a space group or point group")
    return _LAUE_CODES[phase.laue_group]  # type: ignore[index]


def write_ctf(omap: OrientationMap, path: str | os.PathLike) -> Path:
    """Write an orientation map as an Oxford CTF file (atomic: temporary name, then rename).

    Header fields of ``omap.header`` are written back (grid fields come from
    the map itself). Euler angles in degrees with 4 decimals, X/Y and MAD
    with 4 decimals, integer columns as integers. Columns the map lacks, and
    values it has not (NaN, e.g. at the positions a truncated file did not
    reach), are written as 0 (``Error`` as 3, "No solution", where not
    indexed), so that every line has the 11 columns other readers (orix)
    expect. A map with an indexed point whose Euler angles are not finite
    is refused.
    """
    path = Path(path)
    h = omap.header
    n = len(omap)
    out = ["Channel Text File", f"Prj\t{_fmt_header(h.get('Prj', ''))}", f"Author\t{_fmt_header(h.get('Author', ''))}"]
    if omap.grid == "interactive":
        out += ["JobMode\tInteractive", f"NoMeas\t{n}"]
    else:
        rows, cols = omap.nav_shape  # type: ignore[misc]
        if omap.grid == "hexagonal" and omap.hex_ncols is not None:
            cols = omap.hex_ncols[0]  # points of the first row; the coordinates carry the layout
        out += ["JobMode\tGrid", f"XCells\t{cols}", f"YCells\t{rows}"]
    xstep = omap.step_um[1] if omap.step_um[1] > 0 else h.get("XStep", 0.0)
    ystep = omap.step_um[0] if omap.grid == "square" else h.get("YStep", xstep)
    out += [f"XStep\t{_fmt_header(float(xstep))}", f"YStep\t{_fmt_header(float(ystep))}"]
    for key in ("AcqE1", "AcqE2", "AcqE3"):
        out.append(f"{key}\t{_fmt_header(h.get(key, 0.0))}")
    cs0 = [_CS0_PREFIX + " " + str(h.get(_CS0_PREFIX, "Sample Coordinate system (CS0)!"))]
    for key in CS0_KEYS:
        if key in h:
            cs0 += [key, _fmt_header(h[key])]
    out.append("\t".join(cs0))
    skip = {"Prj", "Author", "JobMode", "XCells", "YCells", "NoMeas", "XStep", "YStep", "AcqE1", "AcqE2", "AcqE3", _CS0_PREFIX, "Phases", "Columns", *CS0_KEYS}
    for key, value in h.items():
        if key not in skip and not isinstance(value, (dict, list)) and key.isidentifier():
            out.append(f"{key}\t{_fmt_header(value)}")
    # phases are numbered 1..n in a CTF file
    ids = [p.id for p in omap.phases]
    renumber = {pid: k + 1 for k, pid in enumerate(ids)}
    out.append(f"Phases\t{len(omap.phases)}")
    for p in omap.phases:
        fields = p.extra.get("ctf_fields", ["", ""])
        more = p.extra.get("ctf_more", [])
        out.append(
            "\t".join(
                [
                    ";".join(_format_lattice_value(v) for v in p.lattice_angstrom),
                    ";".join(_format_lattice_value(v) for v in p.angles_deg),
                    p.name,
                    str(_laue_code(p)),
                    str(p.space_group or p.extra.get("ctf_space_group", 0) or 0),
                    *[str(f) for f in fields[:2]],
                    p.comment,
                    *[str(f) for f in more],
                ]
            )
        )
    out.append("\t".join(COLUMNS))
    phase = np.zeros(n, dtype=np.int32)
    for pid, k in renumber.items():
        phase[omap.phase_id == pid] = k
    indexed = omap.phase_id > 0

    def column(key: str, default: np.ndarray) -> np.ndarray:
        return _filled(omap.columns[key]) if key in omap.columns else default

    zeros = np.zeros(n, dtype=np.int32)
    error = column("error", np.where(indexed, 0, 3).astype(np.int32))
    euler_deg = np.rad2deg(_writable_euler(omap, fname=path.name, error=CtfFormatError))
    parts = [
        _format_column(phase, 0),
        _format_column(omap.x_um, 4),
        _format_column(omap.y_um, 4),
        _format_column(column("bands", zeros), 4),
        _format_column(error, 4),
        *(_format_column(euler_deg[:, k], 4) for k in range(3)),
        _format_column(column("mad", np.zeros(n)), 4),
        _format_column(column("bc", zeros), 4),
        _format_column(column("bs", zeros), 4),
    ]
    text = "\n".join(out) + "\n" + _join_rows(parts, "\t")
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


# plugin entry points
read = read_ctf
write = write_ctf
