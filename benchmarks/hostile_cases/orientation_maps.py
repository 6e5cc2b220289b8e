"""Orientation maps (Oxford CTF, EDAX/TSL ANG, kikuchi HDF5), mutated: truncated, bytes flipped, lines and fields deleted and duplicated, inconsistent phase tables, values no instrument writes, mirrored and shifted coordinates.

The real files of ``../shared/data`` (xcdskd ``GaN_polytype_mixing.ctf``, MTEX
``testdata_sqr.ctf``, ``testdata_hex.ctf`` and ``S00.ANG``) are read once as
they are (the reference), then mutated and read again through
``kikuchi.read_orientation_map``. The property checked (also, on a bounded
budget, by ``tests/io/test_orientation_robust.py``):

* the mutated file reads **equal to the reference** at every map point whose
  data line the mutation did not touch (same grid, steps, phases' symmetry),
  or
* it reads **with a warning** (``OrientationMapWarning``) saying what was odd, or
* it is refused with **a one-line error** of kikuchi's error types;

and, whatever the outcome, no indexed point carries a value no instrument
writes (Euler angles not finite or outside -360..720°, a phase not in the
table, BC/BS outside 0..255, MAD outside 0..180, CI outside -1..1). Anything
else (another exception, a hang, values that differ without a word) is
judged ``other``. Mirrored and shifted copies must give the same map,
mirrored (each point found at its transformed coordinates), with a warning
when the storage order changed. Kikuchi's HDF5 orientation map is mutated
too (bytes, truncation, datasets and attributes deleted, reshaped,
retyped), each read in a worker process (a corrupt HDF5 file could crash the
HDF5 library). A few cases go through ``kikuchi info`` (one warning line per
oddity, or one error line).

Run: ``.venv/bin/python benchmarks/hostile.py --only orientation_maps``
"""

from __future__ import annotations

import json
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.hostile_cases._case import Case, Worker, run_cli  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
TEXT_FILES = {
    "gan": "xcdskd/GaN_polytype_mixing.ctf",
    "sqr": "mtex/testdata_sqr.ctf",
    "hex": "mtex/testdata_hex.ctf",
    "s00": "mtex/S00.ANG",
}
#: Bytes written over the file's byte at an offset, in turn.
FLIP_BYTES = (b"9", b"X", b"\t", b"\n", b"-", b".", b"e", b"\x00", b"\xff", b" ", b"0", b";", b"#", b"5")
#: Seconds one HDF5 case may take in the worker (the files are tiny: a hang otherwise).
CASE_TIMEOUT_S = 20.0


# -- the reference and the check -------------------------------------------------------------------------------


@dataclass
class Original:
    """A real file, its lines (with byte offsets), which lines hold which map point, and the reference reading."""

    key: str
    path: Path
    blob: bytes
    starts: list[int]  # byte offset of each line
    point_of_line: dict[int, int]  # 0-based line -> point index of the reference (files stored row-major)
    phase_lines: set[int]  # 0-based lines of the phase table
    ref: Any  # OrientationMap

    @property
    def kind(self) -> str:
        return "ANG" if self.path.suffix.lower() == ".ang" else "CTF"

    def line_of(self, offset: int) -> int:
        return int(np.searchsorted(self.starts, offset, side="right") - 1)

    def region(self, line: int) -> str:
        if line in self.point_of_line:
            return "data"
        return "phases" if line in self.phase_lines else "header"


def load_original(key: str) -> Original | None:
    from kikuchi.io.orientation_map import read_orientation_map

    path = SHARED / TEXT_FILES[key]
    if not path.is_file():
        return None
    blob = path.read_bytes()
    lines = blob.split(b"\n")
    starts = list(np.cumsum([0] + [len(ln) + 1 for ln in lines[:-1]]))
    point_of_line: dict[int, int] = {}
    phase_lines: set[int] = set()
    if path.suffix.lower() == ".ctf":
        head = next(i for i, ln in enumerate(lines) if ln.startswith(b"Phase\tX\tY"))
        n_phases = next(int(ln.split(b"\t")[1]) for ln in lines if ln.startswith(b"Phases\t"))
        phase_lines = set(range(head - n_phases - 1, head))
        data = [i for i in range(head + 1, len(lines)) if lines[i].strip()]
    else:
        in_phase = False
        for i, ln in enumerate(lines):
            if ln.startswith(b"# Phase"):
                in_phase = True
            if ln.startswith(b"# GRID"):
                in_phase = False
            if in_phase and ln.startswith(b"#"):
                phase_lines.add(i)
        data = [i for i, ln in enumerate(lines) if ln.strip() and not ln.startswith(b"#")]
    point_of_line = {line: k for k, line in enumerate(data)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = read_orientation_map(path)
    assert len(ref) == len(data), (key, len(ref), len(data))
    return Original(key, path, blob, starts, point_of_line, phase_lines, ref)


def impossible(omap: Any) -> str | None:
    """What a map passes on that no instrument writes (whatever was said about it), or None."""
    from kikuchi.io.orientation_map import COLUMN_RANGES, EULER_RANGE_DEG

    indexed = omap.phase_id > 0
    ids = {p.id for p in omap.phases}
    stray = set(np.unique(omap.phase_id).tolist()) - ids - {0}
    if stray:
        return f"phase ids {sorted(stray)} not in the phase table"
    deg = np.rad2deg(omap.euler[indexed])
    if deg.size and not (np.isfinite(deg).all() and deg.min() >= EULER_RANGE_DEG[0] and deg.max() <= EULER_RANGE_DEG[1] + 0.01):
        return f"indexed points with Euler angles {deg[~np.all(np.isfinite(deg), axis=1)][:1]} / range {np.nanmin(deg):g}..{np.nanmax(deg):g}"
    for key, (lo, hi) in COLUMN_RANGES.items():
        if key in omap.columns:
            v = np.asarray(omap.columns[key], dtype=np.float64)
            bad = np.isinf(v) | (np.isfinite(v) & ((v < lo) | (v > hi)))
            if bad.any():
                return f"column {key} holds {v[bad][0]:g}, outside {lo:g}..{hi:g}"
    if not (np.isfinite(omap.x_um).all() and np.isfinite(omap.y_um).all()):
        return "coordinates that are not finite"
    if omap.grid == "square" and omap.nav_shape[0] * omap.nav_shape[1] != len(omap):
        return f"nav_shape {omap.nav_shape} for {len(omap)} points"
    return None


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per point: equal values (NaN equal to NaN)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    eq = (a == b) | (np.isnan(a) & np.isnan(b))
    return eq.reshape(eq.shape[0], -1).all(axis=1)


def _phase_rank(omap: Any) -> np.ndarray:
    """Each point's phase as its place in the phase table (1, 2, ...; 0 not indexed): a file may number its phases otherwise."""
    rank = {p.id: k + 1 for k, p in enumerate(omap.phases)}
    return np.array([rank.get(int(v), 0) for v in omap.phase_id])


def differing_points(omap: Any, ref: Any) -> tuple[str | None, np.ndarray]:
    """(what differs map-wide, or None; indices of the reference points whose values differ)."""
    if (omap.grid, omap.nav_shape, omap.hex_ncols) != (ref.grid, ref.nav_shape, ref.hex_ncols) or len(omap) != len(ref):
        return f"grid {omap.grid} {omap.nav_shape} {omap.hex_ncols}, the reference {ref.grid} {ref.nav_shape} {ref.hex_ncols}", np.array([])
    if not np.allclose(omap.step_um, ref.step_um, rtol=1e-9, atol=0):
        return f"step {omap.step_um}, the reference {ref.step_um}", np.array([])
    if sorted(omap.columns) != sorted(ref.columns):
        return f"columns {sorted(omap.columns)}, the reference {sorted(ref.columns)}", np.array([])
    if len(omap.phases) != len(ref.phases):
        return f"{len(omap.phases)} phases, the reference {len(ref.phases)}", np.array([])
    same = _same(omap.euler, ref.euler) & _same(_phase_rank(omap), _phase_rank(ref)) & _same(omap.x_um, ref.x_um) & _same(omap.y_um, ref.y_um)
    for key in ref.columns:
        same &= _same(omap.columns[key], ref.columns[key])
    return None, np.nonzero(~same)[0]


def check(omap: Any, warned: bool, orig: Original, touched: set[int], region: str, *, must_warn: bool = False) -> str | None:
    """The verdict on a mutated file's reading (None: fine)."""
    wrong = impossible(omap)
    if wrong:
        return f"silent-wrong: {wrong}"
    if warned:
        return None
    if must_warn:
        return "silent-wrong: read without a word"
    what, points = differing_points(omap, orig.ref)
    if what:
        return f"silent-wrong: {what}"
    moved = sorted(set(points.tolist()) - touched)
    if moved:
        k = moved[0]
        return f"silent-wrong: {len(moved)} untouched point(s) differ, e.g. point {k} (euler {omap.euler[k]}, ref {orig.ref.euler[k]})"
    if region != "phases":
        ours = [(p.id, p.laue_group) for p in omap.phases]
        theirs = [(p.id, p.laue_group) for p in orig.ref.phases]
        if ours != theirs:
            return f"silent-wrong: phases {ours}, the reference {theirs}"
    return None


# -- cases on text files ---------------------------------------------------------------------------------------


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def _read_recorded(path: Path, known: list[str]) -> tuple[Any, list[str]]:
    """Read, returning the map and its oddities that the unmutated file does not have (``known``: its notes).

    Only the warnings of those are re-emitted (for the judge): a mutated file that
    says no more than the real one is judged as read like it.
    """
    from kikuchi.io.orientation_map import read_orientation_map

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        omap = read_orientation_map(path)
    fresh = [note for note in omap.notes if note not in known]
    for w in caught:
        if issubclass(w.category, (DeprecationWarning, ResourceWarning)):
            continue
        if not any(str(w.message).endswith(note) for note in known) or any(str(w.message).endswith(note) for note in fresh):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            fresh = fresh or [str(w.message)]
    return omap, fresh


def text_case(
    cls: str, label: str, orig: Original, blob: bytes, touched: set[int], region: str, workdir: Path, counter: _Counter,
    *, must_warn: bool = False, checker: Callable[[Any, bool], str | None] | None = None,
) -> Case:  # fmt: skip
    path = workdir / f"{orig.key}_{counter()}{orig.path.suffix}"

    def run() -> str | None:
        path.write_bytes(blob)
        try:
            omap, said = _read_recorded(path, orig.ref.notes)
        finally:
            path.unlink(missing_ok=True)
        if checker is not None:
            return checker(omap, bool(said))
        return check(omap, bool(said), orig, touched, region, must_warn=must_warn)

    return Case(cls, f"{orig.path.name}: {label}", run)


def _points_from(orig: Original, line: int) -> set[int]:
    """The reference points of ``line`` and every line after it."""
    return {k for ln, k in orig.point_of_line.items() if ln >= line}


def _touched_by_lines(orig: Original, lines: set[int]) -> tuple[set[int], str]:
    touched = {orig.point_of_line[ln] for ln in lines if ln in orig.point_of_line}
    regions = {orig.region(ln) for ln in lines}
    region = "data" if regions == {"data"} else ("phases" if "phases" in regions else "header")
    return touched, region


def _offsets(orig: Original, n: int, *, header_share: float = 0.5) -> list[int]:
    """About ``n`` byte offsets, ``header_share`` of them in the header (where a flip changes the most), the rest over the data."""
    first_data = orig.starts[min(orig.point_of_line)]
    n_head = int(n * header_share)
    head = np.linspace(0, first_data - 1, n_head).astype(int) if n_head else np.array([], int)
    data = np.linspace(first_data, len(orig.blob) - 1, n - n_head).astype(int)
    return sorted(set(head.tolist()) | set(data.tolist()))


def truncation_cases(orig: Original, n: int, workdir: Path, counter: _Counter) -> Iterator[Case]:
    cls = f"{orig.kind} truncated"
    size = len(orig.blob)
    cuts = set(np.linspace(1, size - 1, n).astype(int).tolist())
    cuts |= set(range(1, orig.starts[min(orig.point_of_line)] + 1, 37))  # in the header
    cuts |= {orig.starts[ln] for ln in list(orig.point_of_line)[-3:]}  # at line ends: complete points only
    cuts |= {size - 1, size - 2, size - 5}
    for cut in sorted(cuts):
        line = orig.line_of(cut)
        touched = _points_from(orig, line)
        region = orig.region(line) if line in orig.point_of_line else "header"
        yield text_case(cls, f"cut at byte {cut} of {size} (line {line + 1})", orig, orig.blob[:cut], touched, region, workdir, counter)


def flip_cases(orig: Original, n: int, workdir: Path, counter: _Counter) -> Iterator[Case]:
    cls = f"{orig.kind} byte flips"
    for j, offset in enumerate(_offsets(orig, n)):
        new = FLIP_BYTES[j % len(FLIP_BYTES)]
        if orig.blob[offset : offset + 1] == new:
            new = FLIP_BYTES[(j + 1) % len(FLIP_BYTES)]
        blob = orig.blob[:offset] + new + orig.blob[offset + 1 :]
        line = orig.line_of(offset)
        lines = {line}
        if orig.blob[offset : offset + 1] == b"\n":
            lines.add(line + 1)  # two lines merge
        touched, region = _touched_by_lines(orig, lines)
        yield text_case(cls, f"byte {offset} (line {line + 1}) {orig.blob[offset:offset + 1]!r} -> {new!r}", orig, blob, touched, region, workdir, counter)


def _lines(orig: Original) -> list[bytes]:
    return orig.blob.split(b"\n")


def _join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines)


def line_cases(orig: Original, workdir: Path, counter: _Counter) -> Iterator[Case]:
    """Each header line deleted and duplicated; data lines (first, second, middle, last) deleted and duplicated."""
    lines = _lines(orig)
    data = sorted(orig.point_of_line)
    header = [i for i in range(len(lines)) if i not in orig.point_of_line and lines[i].strip()]
    picks = header + [data[0], data[1], data[len(data) // 2], data[-1]]
    for i in picks:
        touched, region = _touched_by_lines(orig, {i})
        yield text_case(f"{orig.kind} lines deleted", f"line {i + 1} deleted", orig, _join(lines[:i] + lines[i + 1 :]), touched, region, workdir, counter)
        yield text_case(f"{orig.kind} lines duplicated", f"line {i + 1} duplicated", orig, _join(lines[: i + 1] + lines[i:]), touched, region, workdir, counter)
    # data lines swapped (out of order: placed by the coordinates, with a word)
    a, b = data[2], data[len(data) // 3]
    swapped = list(lines)
    swapped[a], swapped[b] = swapped[b], swapped[a]
    yield text_case(f"{orig.kind} lines duplicated", f"data lines {a + 1} and {b + 1} swapped", orig, _join(swapped), set(), "data", workdir, counter)


def field_cases(orig: Original, workdir: Path, counter: _Counter) -> Iterator[Case]:
    """Each field of each header line, and of a few data lines, deleted and duplicated."""
    lines = _lines(orig)
    sep = b"\t" if orig.kind == "CTF" else None
    data = sorted(orig.point_of_line)
    header = [i for i in range(len(lines)) if i not in orig.point_of_line and lines[i].strip()]
    for i in header + [data[0], data[len(data) // 2], data[-1]]:
        if orig.kind == "ANG" and i in orig.point_of_line:
            fields = lines[i].split()
            joiner = b" "
        elif orig.kind == "ANG":
            fields = lines[i].split()
            joiner = b" "
        else:
            fields = lines[i].split(sep)
            joiner = b"\t"
        if len(fields) < 2:
            continue
        touched, region = _touched_by_lines(orig, {i})
        cls = f"{orig.kind} {'data' if region == 'data' else 'header'} fields deleted/duplicated"
        for f in range(len(fields)):
            gone = joiner.join(fields[:f] + fields[f + 1 :])
            twice = joiner.join(fields[: f + 1] + fields[f:])
            yield text_case(cls, f"line {i + 1} field {f + 1} deleted", orig, _join(lines[:i] + [gone] + lines[i + 1 :]), touched, region, workdir, counter)
            yield text_case(cls, f"line {i + 1} field {f + 1} duplicated", orig, _join(lines[:i] + [twice] + lines[i + 1 :]), touched, region, workdir, counter)


def phase_table_cases(orig: Original, workdir: Path, counter: _Counter) -> Iterator[Case]:
    """CTF phase tables that disagree with themselves or with the data."""
    lines = _lines(orig)
    cls = "CTF inconsistent phase table"
    first = min(orig.phase_lines)  # the 'Phases N' line
    table = sorted(orig.phase_lines - {first})
    n = len(table)
    for k, i in enumerate(table):
        fields = lines[i].split(b"\t")
        for laue in range(1, 12):
            for sg in (b"0", fields[4], b"1", b"225", b"186", b"999", b"abc", b""):
                changed = list(fields)
                changed[3], changed[4] = str(laue).encode(), sg
                blob = _join(lines[:i] + [b"\t".join(changed)] + lines[i + 1 :])
                yield text_case(cls, f"phase {k + 1}: Laue code {laue}, space group {sg.decode()!r}", orig, blob, set(), "phases", workdir, counter)
    for count in (0, n - 1, n + 1, n + 5):
        blob = _join(lines[:first] + [f"Phases\t{count}".encode()] + lines[first + 1 :])
        yield text_case(cls, f"'Phases {count}' over {n} phase lines", orig, blob, set(), "phases", workdir, counter)
    extra = lines[table[-1]]
    yield text_case(cls, "one phase line more than 'Phases' says", orig, _join(lines[: table[-1] + 1] + [extra] + lines[table[-1] + 1 :]), set(), "phases", workdir, counter)
    yield text_case(cls, "last phase line missing", orig, _join(lines[: table[-1]] + lines[table[-1] + 1 :]), set(range(len(orig.ref))), "phases", workdir, counter)
    comma = lines[table[0]].replace(b".", b",", 3)
    yield text_case(cls, "decimal commas in the lattice", orig, _join(lines[: table[0]] + [comma] + lines[table[0] + 1 :]), set(), "phases", workdir, counter)


#: (column index, values no instrument writes) per format.
CTF_IMPOSSIBLE = {
    0: ("7", "-1", "1.5", "nan", "1e300"),
    5: ("1e300", "-1e300", "nan", "inf", "-inf", "1000", "-400"),
    6: ("nan", "1e300"),
    7: ("inf", "721"),
    3: ("-1", "300", "inf"),
    4: ("-3", "nan"),
    8: ("-0.5", "181", "inf", "1e300"),
    9: ("256", "-1", "1e300", "inf"),
    10: ("256", "-2", "nan"),
}
ANG_IMPOSSIBLE = {
    0: ("1e300", "nan", "inf", "-7", "13"),
    1: ("nan", "-1e300"),
    2: ("20", "inf"),
    6: ("1.5", "-2", "inf", "nan"),
    7: ("9", "-3", "0.5", "nan"),
    9: ("-5", "200", "inf"),
    5: ("inf", "-inf"),
}


def impossible_cases(orig: Original, workdir: Path, counter: _Counter) -> Iterator[Case]:
    lines = _lines(orig)
    table = CTF_IMPOSSIBLE if orig.kind == "CTF" else ANG_IMPOSSIBLE
    data = sorted(orig.point_of_line)
    for i in (data[0], data[len(data) // 2], data[-1]):
        fields = lines[i].split(b"\t") if orig.kind == "CTF" else lines[i].split()
        for col, values in table.items():
            if col >= len(fields) or not fields[col].strip():
                continue
            for v in values:
                changed = list(fields)
                changed[col] = v.encode()
                line = (b"\t" if orig.kind == "CTF" else b" ").join(changed)
                blob = _join(lines[:i] + [line] + lines[i + 1 :])
                # NaN in a property column is an empty field (no value): not impossible
                warn = not (v == "nan" and (orig.kind == "CTF" and col in (3, 4, 8, 9, 10) or orig.kind == "ANG" and col in (5, 6, 8, 9)))
                yield text_case(
                    "impossible values", f"line {i + 1} column {col + 1} = {v}", orig, blob, {orig.point_of_line[i]}, "data", workdir, counter,
                    must_warn=warn,
                )  # fmt: skip


def _transform_xy(orig: Original, fx: Callable[[float], float], fy: Callable[[float], float]) -> bytes:
    lines = _lines(orig)
    out = []
    for i, ln in enumerate(lines):
        if i not in orig.point_of_line:
            out.append(ln)
            continue
        if orig.kind == "CTF":
            f = ln.split(b"\t")
            f[1] = f"{fx(float(f[1])):.4f}".encode()
            f[2] = f"{fy(float(f[2])):.4f}".encode()
            out.append(b"\t".join(f))
        else:
            f = ln.split()
            f[3] = f"{fx(float(f[3])):.5f}".encode()
            f[4] = f"{fy(float(f[4])):.5f}".encode()
            out.append(b" ".join(f))
    return _join(out)


def mirrored_checker(orig: Original, fx: Callable[[float], float], fy: Callable[[float], float], *, reordered: bool) -> Callable[[Any, bool], str | None]:
    """The map must hold every reference point at its transformed coordinates, with a warning when the storage order changed."""
    ref = orig.ref

    def key(x: float, y: float) -> tuple[int, int]:
        return (round(x * 1000), round(y * 1000))

    def verdict(omap: Any, warned: bool) -> str | None:
        wrong = impossible(omap)
        if wrong:
            return f"silent-wrong: {wrong}"
        if (omap.grid, len(omap), omap.hex_ncols) != (ref.grid, len(ref), ref.hex_ncols) or not np.allclose(omap.step_um, ref.step_um, rtol=1e-4):
            return f"wrong: {omap.grid} {omap.nav_shape} step {omap.step_um}, the reference {ref.grid} {ref.nav_shape} step {ref.step_um}"
        where = {key(x, y): k for k, (x, y) in enumerate(zip(omap.x_um, omap.y_um))}
        for k in range(len(ref)):
            j = where.get(key(fx(ref.x_um[k]), fy(ref.y_um[k])))
            if j is None or not (np.allclose(omap.euler[j], ref.euler[k], atol=1e-9) and omap.phase_id[j] == ref.phase_id[k]):
                return f"wrong: reference point {k} is not at its transformed position"
        if ref.grid == "square":
            order = np.lexsort((omap.x_um, omap.y_um))
            if not np.array_equal(order, np.arange(len(omap))):
                return "wrong: the map is not stored row-major by its coordinates"
        if reordered and not warned:
            return "silent: the storage order changed without a word"
        return None

    return verdict


def coordinate_cases(orig: Original, workdir: Path, counter: _Counter) -> Iterator[Case]:
    ref = orig.ref
    x0, x1, y0, y1 = ref.x_um.min(), ref.x_um.max(), ref.y_um.min(), ref.y_um.max()
    transforms: list[tuple[str, Callable[[float], float], Callable[[float], float], bool]] = [
        ("x mirrored (max - x)", lambda x: x1 + x0 - x, lambda y: y, True),
        ("y mirrored (max - y)", lambda x: x, lambda y: y1 + y0 - y, True),
        ("x and y mirrored", lambda x: x1 + x0 - x, lambda y: y1 + y0 - y, True),
        ("x negated", lambda x: -x, lambda y: y, True),
        ("y negated", lambda x: x, lambda y: -y, True),
        ("origin shifted by (+1000, -500) µm", lambda x: x + 1000.0, lambda y: y - 500.0, False),
        ("origin shifted by (-37.5, +12.25) µm", lambda x: x - 37.5, lambda y: y + 12.25, False),
        ("x mirrored and shifted negative", lambda x: -x - 250.0, lambda y: y + 3.0, True),
    ]
    for label, fx, fy, reordered in transforms:
        blob = _transform_xy(orig, fx, fy)
        checker = mirrored_checker(orig, fx, fy, reordered=reordered)
        yield text_case("mirrored/shifted coordinates", label, orig, blob, set(), "data", workdir, counter, checker=checker)


def ang_variant_cases(orig: Original, workdir: Path, counter: _Counter) -> Iterator[Case]:
    """ANG headers as other software writes them: TEM orientation mapping (no '# Phase N', no grid lines), ASTAR's 'ACOM' line, OIM 8 columns."""
    lines = _lines(orig)
    grid = {i for i, ln in enumerate(lines) if re.match(rb"# (GRID|XSTEP|YSTEP|NCOLS_ODD|NCOLS_EVEN|NROWS)", ln)}
    phase_line = {i for i, ln in enumerate(lines) if ln.startswith(b"# Phase")}
    cls = "ANG as other software writes it"
    variants = {
        "no '# Phase N' line": phase_line,
        "no grid lines": grid,
        "no '# Phase N' line and no grid lines (TEM orientation mapping)": phase_line | grid,
        "no GRID line only": {min(grid)},
        "no NROWS/NCOLS lines": {i for i in grid if b"NCOLS" in lines[i] or b"NROWS" in lines[i]},
    }
    for label, drop in variants.items():
        blob = _join([ln for i, ln in enumerate(lines) if i not in drop])
        yield text_case(cls, label, orig, blob, set(), "header", workdir, counter)
    # two phases without '# Phase N' lines: the second MaterialName starts phase 2
    block = [ln for i, ln in enumerate(lines) if i in orig.phase_lines and not ln.startswith(b"# Phase")]
    second = [ln.replace(b"Iron bcc (old)", b"Iron fcc") for ln in block]
    rest = [ln for i, ln in enumerate(lines) if i not in orig.phase_lines and i not in grid]
    first_data = min(orig.point_of_line)
    head = [ln for ln in rest[: first_data - len(orig.phase_lines) - len(grid)] if ln.startswith(b"#")]
    body = [ln for i, ln in enumerate(lines) if i in orig.point_of_line]
    yield text_case(cls, "two phases, neither in a '# Phase N' block", orig, _join(head + block + second + body) + b"\n", set(), "phases", workdir, counter)
    acom = _join([b"# File created from ACOM RES results", b"# test.res"] + [ln for i, ln in enumerate(lines) if i not in phase_line | grid])
    yield text_case(cls, "ASTAR: 'ACOM' line, coordinates in nm", orig, acom, set(), "header", workdir, counter, checker=_scaled_checker(orig, 1e-3))
    oim8 = _join(lines[:first_data] + [b"# COLUMN_COUNT: 10", b"# COLUMN_HEADERS: phi1, PHI, phi2, x, y, IQ, CI, Phase index, SEM, Fit", b"#"] + lines[first_data:])
    yield text_case(cls, "OIM 8 column header lines", orig, oim8, set(), "header", workdir, counter)
    crlf = orig.blob.replace(b"\n", b"\r\n")
    yield text_case(cls, "Windows line ends", orig, crlf, set(), "header", workdir, counter)
    yield text_case(cls, "no line end after the last line", orig, orig.blob.rstrip(b"\n"), set(), "data", workdir, counter)
    yield text_case(cls, "blank lines between data lines", orig, orig.blob.replace(b"\n 2.6", b"\n\n 2.6"), set(), "data", workdir, counter)


def _scaled_checker(orig: Original, scale: float) -> Callable[[Any, bool], str | None]:
    def verdict(omap: Any, warned: bool) -> str | None:
        wrong = impossible(omap)
        if wrong:
            return f"silent-wrong: {wrong}"
        if not warned:
            return "silent: the unit change was not said"
        ref = orig.ref
        if omap.nav_shape != ref.nav_shape or not np.allclose(omap.x_um, ref.x_um * scale) or not np.array_equal(omap.euler, ref.euler):
            return f"wrong: {omap.nav_shape} x {omap.x_um[:3]}, the reference {ref.nav_shape} x {ref.x_um[:3] * scale}"
        return None

    return verdict


def text_cases(workdir: Path, counter: _Counter) -> Iterator[Case]:
    for key, n_cut, n_flip in (("sqr", 90, 220), ("hex", 60, 150), ("s00", 90, 220), ("gan", 12, 30)):
        orig = load_original(key)
        if orig is None:
            continue
        yield from truncation_cases(orig, n_cut, workdir, counter)
        yield from flip_cases(orig, n_flip, workdir, counter)
        if key != "gan":
            yield from line_cases(orig, workdir, counter)
            yield from field_cases(orig, workdir, counter)
        if key in ("sqr", "gan"):
            yield from phase_table_cases(orig, workdir, counter)
        if key in ("sqr", "s00", "gan"):
            yield from impossible_cases(orig, workdir, counter)
        yield from coordinate_cases(orig, workdir, counter)
        if key == "s00":
            yield from ang_variant_cases(orig, workdir, counter)


# -- the HDF5 orientation map, in a worker process ------------------------------------------------------------


def _h5_mutations(workdir: Path) -> list[tuple[str, str, Path, Callable[[Any], None] | None, bytes | None]]:
    """(class, label, original .h5, mutation of the open h5py file or None, bytes of the mutated file or None).

    A mutation that changes values (``'holds'`` in the label) touches the point a third of the way into the map:
    that point may read differently without a word (the value itself is valid), no other.
    """
    import h5py

    from kikuchi.io.orientation_map import read_orientation_map

    out: list[tuple[str, str, Path, Callable[[Any], None] | None, bytes | None]] = []
    made = workdir / "made"
    made.mkdir(parents=True, exist_ok=True)
    originals = []
    for key in ("sqr", "s00"):
        src = SHARED / TEXT_FILES[key]
        if src.is_file():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                omap = read_orientation_map(src)
            originals.append(omap.write(made / f"{key}.h5"))
    cls = "HDF5 orientation map mutated"
    for h5 in originals:
        blob = h5.read_bytes()
        for j, offset in enumerate(np.linspace(0, len(blob) - 1, 90).astype(int).tolist()):
            new = bytes([(blob[offset] + 1 + 37 * j) % 256])
            out.append((f"{cls}: bytes", f"{h5.name}: byte {offset} -> {new!r}", h5, None, blob[:offset] + new + blob[offset + 1 :]))
        for cut in np.linspace(0, len(blob) - 1, 25).astype(int).tolist():
            out.append((f"{cls}: truncated", f"{h5.name}: cut at byte {cut} of {len(blob)}", h5, None, blob[:cut]))
        with h5py.File(h5, "r") as f:
            datasets = ["OrientationMap/" + n for n in ("euler", "phase_id", "x_um", "y_um")] + [f"OrientationMap/columns/{c}" for c in f["OrientationMap/columns"]]
            attrs = list(f["OrientationMap"].attrs)

        def deleted(d: str) -> Callable[[Any], None]:
            return lambda f: f.__delitem__(d)

        def halved(d: str) -> Callable[[Any], None]:
            def m(f: Any) -> None:
                v = f[d][()]
                del f[d]
                f[d] = v[: len(v) // 2]

            return m

        def retyped(d: str) -> Callable[[Any], None]:
            def m(f: Any) -> None:
                v = f[d][()]
                del f[d]
                f[d] = np.array([str(x) for x in v.reshape(len(v), -1)[:, 0]], dtype="S12")

            return m

        def spoiled(d: str, value: float) -> Callable[[Any], None]:
            def m(f: Any) -> None:
                v = np.asarray(f[d][()], dtype=np.float64)
                v.reshape(len(v), -1)[len(v) // 3, 0] = value
                del f[d]
                f[d] = v

            return m

        for d in datasets:
            out.append((f"{cls}: datasets", f"{h5.name}: '{d}' deleted", h5, deleted(d), None))
            out.append((f"{cls}: datasets", f"{h5.name}: '{d}' half as long", h5, halved(d), None))
            out.append((f"{cls}: datasets", f"{h5.name}: '{d}' as strings", h5, retyped(d), None))
            for value in (np.nan, np.inf, 1e300, -7.0, 1.5):
                out.append((f"{cls}: values", f"{h5.name}: '{d}' holds {value:g} at one point", h5, spoiled(d, value), None))

        def set_attr(name: str, value: Any) -> Callable[[Any], None]:
            def m(f: Any) -> None:
                f["OrientationMap"].attrs[name] = value

            return m

        def del_attr(name: str) -> Callable[[Any], None]:
            return lambda f: f["OrientationMap"].attrs.__delitem__(name)

        for name in attrs:
            out.append((f"{cls}: attributes", f"{h5.name}: attribute '{name}' deleted", h5, del_attr(name), None))
        bad_values = {
            "grid": ["hexagon", "interactive", ""],
            "nav_shape": ["[3, 3]", "not json", "[0, 5]", "[-30, -30]", "null", "[30, 30, 1]"],
            "hex_ncols": ["[1]", "{}"],
            "step_um": [np.array([0.0, 1.0]), np.array([np.nan, 1.0]), np.array([1.0]), np.array([2.0, 2.0]), "fast"],
            "phases": ["[]", "not json", "[1, 2]", '[{"id": 1}]', '[{"id": 1, "name": "x", "point_group": "7/q"}]',
                       '[{"id": 1, "name": "x", "space_group": 999}]', '[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}]'],
            "header": ["not json", "[1, 2]"],
            "notes": ["not json", "{}"],
            "source_format": [""],
        }  # fmt: skip
        for name, values in bad_values.items():
            for v in values:
                out.append((f"{cls}: attributes", f"{h5.name}: attribute '{name}' = {str(v)[:30]!r}", h5, set_attr(name, v), None))

        def moved(f: Any) -> None:
            x = f["OrientationMap/x_um"][()]
            del f["OrientationMap/x_um"]
            f["OrientationMap/x_um"] = x[::-1]

        out.append((f"{cls}: values", f"{h5.name}: x coordinates reversed", h5, moved, None))
        out.append((f"{cls}: datasets", f"{h5.name}: group renamed", h5, lambda f: f.move("OrientationMap", "OrientationMaps"), None))
    return out


def _serve() -> None:
    """The worker: one JSON request per line (a file to read, its reference), one answer line '@@ {...}'."""
    from kikuchi.io.orientation_h5 import read_orientation_h5

    refs: dict[str, Any] = {}
    for line in sys.stdin:
        req = json.loads(line)
        if req["original"] not in refs:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refs[req["original"]] = read_orientation_h5(req["original"])
        ref = refs[req["original"]]
        answer: dict[str, Any]
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                omap = read_orientation_h5(req["target"])
            said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
            wrong = impossible(omap)
            if wrong:
                answer = {"verdict": f"silent-wrong: {wrong}"}
            elif said:
                answer = {"warning": said[0]}
            else:
                what, points = differing_points(omap, ref)
                ours, theirs = [(p.id, p.point_group) for p in omap.phases], [(p.id, p.point_group) for p in ref.phases]
                moved = sorted(set(points.tolist()) - set(req.get("touched", [])))
                if what:
                    answer = {"verdict": f"silent-wrong: {what}"}
                elif moved:
                    answer = {"verdict": f"silent-wrong: {len(moved)} untouched point(s) differ, e.g. point {moved[0]}"}
                elif ours != theirs:
                    answer = {"verdict": f"silent-wrong: phases {ours}, the reference {theirs}"}
                else:
                    answer = {"ok": True}
        except (ValueError, OSError, IndexError) as exc:
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        except Exception as exc:  # noqa: BLE001 - a defect, reported as such
            answer = {"verdict": f"{type(exc).__name__}: {str(exc)[:200]}"}
        print("@@ " + json.dumps(answer), flush=True)


def _h5_touched(original: Path) -> int:
    import h5py

    with h5py.File(original, "r") as f:
        return len(f["OrientationMap/euler"]) // 3


class _Refused(ValueError):
    """The worker's one-line error, raised here so that the judge sees it."""


def h5_cases(workdir: Path, counter: _Counter, worker: Worker) -> Iterator[Case]:
    import h5py

    for cls, label, original, mutate, blob in _h5_mutations(workdir):
        target = workdir / f"h5_{counter()}.h5"

        def run(original: Path = original, target: Path = target, mutate: Any = mutate, blob: bytes | None = blob, label: str = label) -> str | None:
            if blob is not None:
                target.write_bytes(blob)
            else:
                target.write_bytes(original.read_bytes())
                with h5py.File(target, "r+") as f:
                    mutate(f)
            try:
                touched = [_h5_touched(original)] if "holds" in label else []
                answer = worker.ask({"original": str(original), "target": str(target), "touched": touched}, CASE_TIMEOUT_S)
            finally:
                target.unlink(missing_ok=True)
            if "error" in answer:
                raise _Refused(answer["error"])
            if "warning" in answer:
                warnings.warn(answer["warning"], UserWarning, stacklevel=2)
            return answer.get("verdict")

        yield Case(cls, label, run)


# -- through the command line ----------------------------------------------------------------------------------


def cli_cases(workdir: Path, counter: _Counter) -> Iterator[Case]:
    """``kikuchi info`` on a few hostile files: each oddity one warning line, or one error line; never a traceback."""
    sqr, s00 = load_original("sqr"), load_original("s00")
    if sqr is None or s00 is None:
        return
    lines = _lines(sqr)
    files = {
        "truncated CTF": sqr.blob[: len(sqr.blob) // 2],
        "CTF without its phase table": _join([ln for i, ln in enumerate(lines) if i not in sqr.phase_lines]),
        "CTF with Euler angles of 1e300": sqr.blob.replace(b"31.1500", b"1e300", 1),
        "CTF, header only": _join(lines[:15]),
        "empty CTF": b"",
        "binary junk named .ctf": bytes(range(256)) * 4,
        "ANG without grid lines nor phase blocks": _join([ln for ln in _lines(s00) if not re.match(rb"# (Phase|GRID|XSTEP|YSTEP|NCOLS|NROWS)", ln)]),
        "ANG of one header line": b"# TEM_PIXperUM 1.0\n",
    }
    for label, blob in files.items():
        suffix = ".ang" if label.startswith("ANG") else ".ctf"
        path = workdir / f"cli_{counter()}{suffix}"

        def run(path: Path = path, blob: bytes = blob) -> Any:
            path.write_bytes(blob)
            proc = run_cli("info", path)
            verdict = None
            if proc.returncode == 0 and "1e300" in label and "warning:" not in proc.stderr:
                verdict = "silent-wrong: an impossible value without a warning line"
            return proc, verdict

        yield Case("CLI: kikuchi info on hostile orientation maps", label, run, cli=True)


def cases(workdir: Path) -> Iterator[Case]:
    counter = _Counter()
    worker = Worker("benchmarks.hostile_cases.orientation_maps")
    try:
        yield from text_cases(workdir, counter)
        yield from h5_cases(workdir, counter, worker)
        yield from cli_cases(workdir, counter)
    finally:
        worker.stop()
