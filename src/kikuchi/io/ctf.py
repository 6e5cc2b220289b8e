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
import os
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.io._atomic import atomic_output
from kikuchi.io.orientation_map import (
    OrientationMap,
    OrientationMapError,
    PhaseInfo,
    _as_int,
    _format_column,
    _format_header_value,
    _format_lattice_value,
    _gridded_map,
    _join_rows,
    _maybe_int,
    _parse_number,
    _parse_table,
    _read_lines,
    infer_grid,
    laue_group_of,
    point_group_of_space_group,
)

__all__ = ["CtfFormatError", "COLUMNS", "ERROR_CODES", "LAUE_GROUPS", "read_ctf", "write_ctf", "sniff"]

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


def _phase_line(fields: list[str], *, number: int, fname: str, line: int) -> PhaseInfo:
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
    try:
        laue_code = int(fields[3])
        space_group = int(fields[4]) if fields[4].strip() else 0
    except ValueError:
        raise CtfFormatError(f"{where}: Laue group {fields[3]!r} and space group {fields[4]!r} must be integers") from None
    if laue_code not in LAUE_GROUPS:
        raise CtfFormatError(f"{where}: Laue group code {laue_code} is not one of 1..11")
    if not 0 <= space_group <= 230:
        raise CtfFormatError(f"{where}: space group {space_group} is not in 1..230 (0: not given)")
    laue = LAUE_GROUPS[laue_code]
    sg = space_group or None
    if sg is not None:
        pg = point_group_of_space_group(sg)
        if laue_group_of(pg) != laue:
            raise CtfFormatError(f"{where}: space group {sg} (point group {pg}) does not belong to Laue group {laue} (code {laue_code})")
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
        extra={"ctf_laue_code": laue_code, "ctf_fields": fields[5:7] + [""] * (2 - len(fields[5:7])), "ctf_more": fields[8:]},
    )


def read_ctf(path: str | os.PathLike) -> OrientationMap:
    """Read an Oxford CTF orientation map.

    Parameters
    ----------
    path
        The ``.ctf`` file.

    Returns
    -------
    OrientationMap
        Euler angles converted from degrees to radians, nothing else changed
        (the same rotations orix's CTF reader gives). The grid is found from
        the point coordinates: square, hexagonal (MTEX writes those with
        ``JobMode Grid``) or, for ``JobMode Interactive``, a point list.

    Raises
    ------
    CtfFormatError
        Naming file and line: not a CTF file, missing header fields, bad
        phase table, wrong column count, non-numeric fields, truncated data.
    """
    path = Path(path)
    fname = path.name
    lines = _read_lines(path)
    if not lines or not sniff(lines[0]):
        first = lines[0][:40] if lines else ""
        raise CtfFormatError(f"{fname} line 1: expected 'Channel Text File', found {first!r} (not a CTF file?)")

    header: dict[str, Any] = {}
    phases: list[PhaseInfo] = []
    n_phases: int | None = None
    data_start = None
    i = 1
    while i < len(lines):
        line = lines[i]
        fields = line.split("\t")
        key = fields[0].strip()
        if key == "Phase" and len(fields) > 2 and fields[1].strip() == "X" and fields[2].strip() == "Y":
            names = [f.strip() for f in fields]
            if names != list(COLUMNS[: len(names)]):
                header["Columns"] = names
            data_start = i + 1
            break
        if key.startswith(_CS0_PREFIX):
            header[_CS0_PREFIX] = key[len(_CS0_PREFIX) :].strip()
            pairs = fields[1:]
            for k in range(0, len(pairs) - 1, 2):
                header[pairs[k].strip()] = _parse_number(pairs[k + 1])
        elif key == "Phases":
            try:
                n_phases = int(fields[1])
            except (IndexError, ValueError):
                raise CtfFormatError(f"{fname} line {i + 1}: 'Phases' needs the number of phases, found {line!r}") from None
            for k in range(n_phases):
                if i + 1 + k >= len(lines):
                    raise CtfFormatError(f"{fname}: the file ends inside the phase table ({n_phases} phases announced at line {i + 1})")
                phases.append(_phase_line(lines[i + 1 + k].split("\t"), number=k + 1, fname=fname, line=i + 2 + k))
            i += n_phases
        elif key:
            header[key] = _parse_number("\t".join(fields[1:])) if len(fields) > 1 else ""
        i += 1
    if data_start is None:
        raise CtfFormatError(f"{fname}: no column header line 'Phase\\tX\\tY\\t...' found after {len(lines)} lines (truncated or not a CTF file?)")
    if n_phases is None:
        raise CtfFormatError(f"{fname}: header field 'Phases' missing (the phase table: 'Phases<TAB>N' and N phase lines)")
    job_mode = str(header.get("JobMode", "")).strip()
    if not job_mode:
        raise CtfFormatError(f"{fname}: header field 'JobMode' missing (Grid or Interactive)")
    if job_mode not in ("Grid", "Interactive"):
        raise CtfFormatError(f"{fname}: JobMode {job_mode!r} is neither 'Grid' nor 'Interactive'")
    needed = ("XCells", "YCells", "XStep", "YStep") if job_mode == "Grid" else ()
    for key in needed:
        if key not in header:
            raise CtfFormatError(f"{fname}: header field '{key}' missing (needed for JobMode Grid)")
        if not isinstance(header[key], (int, float)):
            raise CtfFormatError(f"{fname}: header field '{key}' is {header[key]!r}, not a number")
    for key in ("XCells", "YCells", "NoMeas"):
        if key in header and not (isinstance(header[key], int) and header[key] >= 0):
            raise CtfFormatError(f"{fname}: header field '{key}' is {header[key]!r}, not a count")

    body = lines[data_start:]
    while body and not body[-1].strip():
        body.pop()
    if not body:
        raise CtfFormatError(f"{fname}: no data lines after the column header (line {data_start}); truncated file?")
    cols, n_cols = _parse_table(body, sep="\t", first_line=data_start + 1, names=COLUMNS, required=_REQUIRED, fname=fname, error=CtfFormatError)
    phase_id = _as_int(cols[0], name="Phase", fname=fname, first_line=data_start + 1, error=CtfFormatError)  # type: ignore[arg-type]
    bad = (phase_id < 0) | (phase_id > len(phases))
    if bad.any():
        k = int(np.argmax(bad))
        raise CtfFormatError(f"{fname} line {data_start + 1 + k}: phase {phase_id[k]}, but the header lists {len(phases)} phase(s) (0 = not indexed)")
    x, y = cols[1], cols[2]
    euler = np.deg2rad(np.column_stack(cols[5:8]))
    columns: dict[str, np.ndarray] = {}
    for j, key in _COLUMN_KEYS.items():
        if j < len(cols) and cols[j] is not None:
            columns[key] = _maybe_int(cols[j])  # type: ignore[arg-type]
    for j in range(len(COLUMNS), len(cols)):
        if cols[j] is not None:
            name = header.get("Columns", [])[j] if j < len(header.get("Columns", [])) else f"column{j + 1}"
            columns[name.lower()] = _maybe_int(cols[j])  # type: ignore[arg-type]
    missing = [COLUMNS[j] for j in range(3, len(COLUMNS)) if j >= len(cols) or cols[j] is None]
    notes = [f"columns left empty in the file: {' '.join(missing)}"] if missing else []
    if "error" in columns and np.issubdtype(columns["error"].dtype, np.integer):
        unknown = sorted(set(np.unique(columns["error"]).tolist()) - set(ERROR_CODES))
        if unknown:
            notes.append(f"error codes {unknown} are not among the documented codes 0..6")

    n = phase_id.size
    last_line = data_start + n
    if job_mode == "Interactive":
        n_meas = header.get("NoMeas")
        if isinstance(n_meas, int) and n < n_meas:
            raise CtfFormatError(f"{fname}: header NoMeas {n_meas} but the file holds {n} data lines (last at line {last_line}): truncated file?")
        if isinstance(n_meas, int) and n > n_meas:
            notes.append(f"header NoMeas {n_meas} but the file holds {n} points; all are kept")
        step = (float(header.get("YStep", 0.0) or 0.0), float(header.get("XStep", 0.0) or 0.0))
        return OrientationMap(
            euler=euler, phase_id=phase_id, x_um=x, y_um=y, grid="interactive", nav_shape=None, step_um=step,  # type: ignore[arg-type]
            columns=columns, phases=phases, header=header, source_format="ctf", path=path, notes=notes,
        )

    ncols, nrows = int(header["XCells"]), int(header["YCells"])
    expected = ncols * nrows
    truncated = (
        f"{fname}: the header promises XCells {ncols} x YCells {nrows} = {expected} points, "
        f"the file holds {n} data lines (last at line {last_line}): truncated file?"
    )
    try:
        grid = infer_grid(x, y, step_x=float(header["XStep"]), step_y=float(header["YStep"]))  # type: ignore[arg-type]
    except OrientationMapError as exc:
        if n < expected:
            raise CtfFormatError(truncated) from None
        raise CtfFormatError(f"{fname}: {exc} (header: XCells {ncols}, YCells {nrows}, XStep {header['XStep']}, YStep {header['YStep']})") from None
    if grid.kind == "hexagonal":
        notes.append(
            f"the coordinates form a hexagonal grid ({grid.nav_shape[0]} rows {grid.step_um[0]:.4g} µm apart, "  # type: ignore[index]
            f"every other row shifted by {grid.step_um[1] / 2:.4g} µm), which a CTF header cannot say (JobMode Grid)"
        )
    elif grid.nav_shape != (nrows, ncols):
        if n < expected:
            raise CtfFormatError(truncated)
        raise CtfFormatError(f"{fname}: the coordinates form a {grid.nav_shape[0]} x {grid.nav_shape[1]} grid, the header says YCells {nrows} x XCells {ncols}")  # type: ignore[index]
    return _gridded_map(
        grid, euler=euler, phase_id=phase_id, x=x, y=y, columns=columns, notes=notes, fname=fname,  # type: ignore[arg-type]
        phases=phases, header=header, source_format="ctf", path=path,
    )  # fmt: skip


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
    with 4 decimals, integer columns as integers. Columns the map lacks are
    written as 0 (``Error`` as 3, "No solution", where not indexed), so that
    every line has the 11 columns other readers (orix) expect.
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
                    str(p.space_group or 0),
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
        return omap.columns[key] if key in omap.columns else default

    zeros = np.zeros(n, dtype=np.int32)
    error = column("error", np.where(indexed, 0, 3).astype(np.int32))
    euler_deg = np.rad2deg(omap.euler)
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
