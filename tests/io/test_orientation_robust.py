"""Orientation maps as real files and hostile files come: read what can be read, refuse the rest clearly, never be silently wrong.

The real files other tools open (an MTEX-style phase table whose space group is
not of its Laue group, a CTF shorter than its grid, a TEM-style ANG), values no
instrument writes, mirrored and shifted coordinates, ``strict=True``, the HDF5
orientation map damaged, and a property-based sweep (hypothesis, bounded) of
truncations, byte flips, line and field deletions and duplications of the
real files. The long sweep is ``benchmarks/hostile.py --only orientation_maps``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kikuchi.io
from kikuchi.io.ang import AngFormatError, read_ang
from kikuchi.io.ctf import CtfFormatError, read_ctf
from kikuchi.io.orientation_map import (
    COLUMN_RANGES,
    EULER_RANGE_DEG,
    OrientationMap,
    OrientationMapError,
    OrientationMapWarning,
    read_orientation_map,
)
from tests.conftest import shared_file
from tests.io._omap_helpers import orix_load

GAN = "xcdskd/GaN_polytype_mixing.ctf"
SQR = "mtex/testdata_sqr.ctf"
HEX = "mtex/testdata_hex.ctf"
S00 = "mtex/S00.ANG"
S00_NOTE = (
    "the header says 160 rows x 140/140 columns at XSTEP 0.1 µm, the data hold 40 rows x 35 columns at 0.4 µm "
    "(a subsampled or cropped export?); the data coordinates are used"
)
GRID_LINES = ("# GRID", "# XSTEP", "# YSTEP", "# NCOLS_ODD", "# NCOLS_EVEN", "# NROWS")


def read_said(path: Path, *, reader=read_orientation_map) -> tuple[OrientationMap, list[str]]:
    """The map and every warning its reading gave (as text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        omap = reader(path)
    assert all(issubclass(w.category, OrientationMapWarning) for w in caught), [w.category for w in caught]
    return omap, [str(w.message) for w in caught]


def quiet(path: Path) -> OrientationMap:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OrientationMapWarning)
        return read_orientation_map(path)


def gan_lines() -> list[str]:
    return shared_file(GAN).read_text().split("\n")


# ---------------------------------------------------------------- the warning type


def test_warning_type_is_a_user_warning_exported_next_to_the_errors():
    assert issubclass(OrientationMapWarning, UserWarning)
    assert kikuchi.io.OrientationMapWarning is OrientationMapWarning
    from kikuchi.io import ang, ctf

    assert ctf.OrientationMapWarning is ang.OrientationMapWarning is OrientationMapWarning


# ---------------------------------------------------------------- real files other tools open


def test_ctf_space_group_outside_its_laue_group_reads_as_orix_reads_it(tmp_path):
    """MTEX exports write a space group that does not belong to the Laue group code of the same line."""
    text = "\n".join(gan_lines()).replace("Ga N\t9\t186", "Ga N\t8\t186")
    path = tmp_path / "mtex_export.ctf"
    path.write_text(text)
    omap, said = read_said(path)
    assert said == [
        "mtex_export.ctf: line 14: phase 1: space group 186 (point group 6mm) does not belong to the Laue group 6/m (code 8) "
        "of the same line: the Laue group gives the symmetry (as orix reads it), the space group is kept as extra['ctf_space_group']"
    ]
    gan = read_ctf(shared_file(GAN))
    p1 = omap.phases[0]
    assert (p1.space_group, p1.point_group, p1.laue_group, p1.extra["ctf_space_group"]) == (None, "6/m", "6/m", 186)
    assert omap.phases[1].space_group == 216  # the consistent line keeps its space group
    np.testing.assert_array_equal(omap.euler, gan.euler)
    xmap = orix_load(path)
    ours = omap.to_orix()
    assert np.allclose(xmap.rotations.data, ours.rotations.data, atol=1e-12)
    assert xmap.phases[1].point_group.name == ours.phases[1].point_group.name == "6/m"
    assert xmap.phases[1].space_group is None and ours.phases[1].space_group is None
    # written back as the file had it
    assert "Ga N\t8\t186\t" in omap.write(tmp_path / "again.ctf").read_text()


def test_ctf_shorter_than_its_grid_reads_the_complete_points(tmp_path):
    """An acquisition stopped early: 1000 points short, and the last line cut inside."""
    lines = gan_lines()
    gan = read_ctf(shared_file(GAN))
    short = tmp_path / "stopped.ctf"
    short.write_text("\n".join(lines[:-1001]) + "\n")
    omap, said = read_said(short)
    assert said == [
        "stopped.ctf: 1000 of the 33712 positions of the 172 x 196 grid have no data point (the header promises 33712 points, "
        "the file holds 32712: an acquisition stopped early, or a truncated file): marked not indexed (Error 5, 'Not yet analysed')"
    ]
    n = 32712
    assert omap.nav_shape == (172, 196) and omap.step_um == (0.15, 0.15)
    np.testing.assert_array_equal(omap.euler[:n], gan.euler[:n])
    np.testing.assert_array_equal(omap.phase_id[:n], gan.phase_id[:n])
    np.testing.assert_array_equal(omap.x_um, gan.x_um)
    np.testing.assert_array_equal(omap.y_um, gan.y_um)
    assert (omap.phase_id[n:] == 0).all() and (omap["error"][n:] == 5).all() and np.isnan(omap["bc"][n:]).all()
    np.testing.assert_array_equal(omap["bc"][:n], gan["bc"][:n])
    # orix reads the same points (as a 167-row map of the complete rows)
    from orix.quaternion import Rotation

    xmap = orix_load(short)
    assert xmap.size == n
    assert np.allclose(xmap.rotations.data, Rotation.from_euler(omap.euler[:n]).data, atol=1e-12)
    # cut inside a line: that line is left out too, and said
    cut = tmp_path / "cut.ctf"
    cut.write_text("\n".join(lines[:-1001])[:-20])
    omap, said = read_said(cut)
    assert said[0] == "cut.ctf: line 32728: the file ends inside this line (no line end after it): the line is left out"
    assert said[1].startswith("cut.ctf: 1001 of the 33712 positions")
    np.testing.assert_array_equal(omap.euler[: n - 1], gan.euler[: n - 1])


def test_ang_as_tem_orientation_mapping_software_writes_it(tmp_path):
    """MaterialName/Formula lines outside any '# Phase N' block, no grid lines: the grid from the coordinates."""
    text = shared_file(S00).read_text().split("\n")
    tem = [ln for ln in text if not ln.startswith("# Phase") and not ln.startswith(GRID_LINES)]
    path = tmp_path / "tem.ang"
    path.write_text("\n".join(tem))
    omap, said = read_said(path)
    assert said == [
        "tem.ang: line 7: phase lines (MaterialName, Formula, ...) outside a '# Phase N' block, as TEM orientation-mapping "
        "software writes them: read as phase 1",
        "tem.ang: the header has no grid lines (GRID, XSTEP, YSTEP, NCOLS_ODD, NCOLS_EVEN, NROWS): the grid comes from the point coordinates",
    ]
    with pytest.warns(OrientationMapWarning):
        s00 = read_ang(shared_file(S00))
    assert (omap.grid, omap.nav_shape, omap.step_um) == ("square", (40, 35), (0.4, 0.4))
    (phase,) = omap.phases
    assert (phase.id, phase.name, phase.point_group) == (1, "Iron bcc (old)", "432")
    np.testing.assert_array_equal(omap.euler, s00.euler)
    np.testing.assert_array_equal(omap.phase_id, s00.phase_id)
    xmap = orix_load(path)
    assert xmap.shape == omap.nav_shape
    assert np.allclose(xmap.rotations.data, omap.to_orix().rotations.data, atol=1e-12)
    assert np.array_equal(xmap.phase_id == -1, omap.phase_id == 0)


def test_astar_ang_coordinates_in_nm(tmp_path):
    """NanoMegas ASTAR ('ACOM' in the header; orix reads its coordinates as nm): scaled to µm, and said."""
    lines = ["# File created from ACOM RES results", "# ni.res", "# MaterialName      Nickel", "# Formula", "# Symmetry          43",
             "# LatticeConstants  3.520  3.520  3.520  90.000  90.000  90.000", "# NumberFamilies    1",
             "# hklFamilies       1  1  1 1 0.000000", "#", "# GRID: SqrGrid#"]  # fmt: skip
    for r in range(3):
        for c in range(4):
            lines.append(f"{0.1 * c:8.6f} 0.792205 1.324879 {c * 2.86:9.3f} {r * 2.86:9.3f}  55.0  0.410  1      41")
    path = tmp_path / "astar.ang"
    path.write_text("\n".join(lines) + "\n")
    omap, said = read_said(path)
    assert said[-1] == "astar.ang: NanoMegas ASTAR file ('ACOM' in the header): coordinates in nm (as orix reads them), divided by 1000 to µm"
    assert omap.nav_shape == (3, 4) and omap.step_um == (0.00286, 0.00286)
    assert sorted(omap.columns) == ["ind", "rel", "relx100"] and (omap.phase_id == 1).all()
    xmap = orix_load(path)
    assert np.allclose(xmap.x, omap.x_um * 1000) and np.allclose(xmap.rotations.data, omap.to_orix().rotations.data, atol=1e-12)


# ---------------------------------------------------------------- never silently wrong

CTF_LINE = "1\t0.0000\t0.0000\t8\t0\t10.0000\t20.0000\t30.0000\t0.5000\t120\t130"


def small_ctf(tmp_path: Path, changed: dict[int, str], name: str = "v.ctf") -> Path:
    """A 2 x 2 single-phase CTF whose first data line has ``changed`` fields."""
    head = ["Channel Text File", "Prj\tx", "Author\tx", "JobMode\tGrid", "XCells\t2", "YCells\t2", "XStep\t1", "YStep\t1",
            "Phases\t1", "3.524;3.524;3.524\t90;90;90\tNi\t11\t225", "Phase\tX\tY\tBands\tError\tEuler1\tEuler2\tEuler3\tMAD\tBC\tBS"]  # fmt: skip
    data = []
    for r in range(2):
        for c in range(2):
            fields = CTF_LINE.split("\t")
            fields[1], fields[2] = f"{c}.0000", f"{r}.0000"
            if r == c == 0:
                for k, v in changed.items():
                    fields[k] = v
            data.append("\t".join(fields))
    path = tmp_path / name
    path.write_text("\n".join(head + data) + "\n")
    return path


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        (5, "1e300", "line 12: Euler angles (1e+300, 20, 30) are not finite or outside -360..720°, which no instrument writes: the angles set to 0 and the point marked not indexed"),
        (6, "nan", "line 12: Euler angles (10, nan, 30) are not finite or outside -360..720°, which no instrument writes: the angles set to 0 and the point marked not indexed"),
        (7, "-inf", "line 12: Euler angles (10, 20, -inf) are not finite or outside -360..720°, which no instrument writes: the angles set to 0 and the point marked not indexed"),
        (9, "300", "line 12: BC 300 is outside 0..255, which no instrument writes: set to NaN (empty) and the point marked not indexed"),
        (10, "-1", "line 12: BS -1 is outside 0..255, which no instrument writes: set to NaN (empty) and the point marked not indexed"),
        (8, "-0.2", "line 12: MAD -0.2 is outside 0..180, which no instrument writes: set to NaN (empty) and the point marked not indexed"),
        (0, "4", "line 12: phase 4 is not in the phase table (phases [1]; 0 = not indexed): marked not indexed"),
        (0, "-1", "line 12: phase -1 is not in the phase table (phases [1]; 0 = not indexed): marked not indexed"),
    ],
)  # fmt: skip
def test_ctf_values_no_instrument_writes_are_said_and_not_indexed(tmp_path, column, value, said):
    omap, messages = read_said(small_ctf(tmp_path, {column: value}))
    assert messages == [f"v.ctf: {said}"]
    assert omap.phase_id.tolist() == [0, 1, 1, 1]
    if 5 <= column <= 7:
        assert omap.euler[0].tolist() == [0.0, 0.0, 0.0]
    if column >= 8:
        key = {8: "mad", 9: "bc", 10: "bs"}[column]
        assert np.isnan(omap[key][0]) and omap[key][1] == float(CTF_LINE.split("\t")[column])
    with pytest.raises(CtfFormatError, match=r"^v.ctf: line 12: .* \(strict reading refuses what a plain read warns about\)$"):
        read_ctf(small_ctf(tmp_path, {column: value}), strict=True)


def test_an_empty_field_is_no_value_and_not_odd(tmp_path):
    omap, said = read_said(small_ctf(tmp_path, {9: ""}))
    assert said == [] and np.isnan(omap["bc"][0]) and omap.phase_id.tolist() == [1, 1, 1, 1]


def test_coordinates_that_place_a_point_nowhere(tmp_path):
    omap, said = read_said(small_ctf(tmp_path, {1: "inf"}))
    assert said == [
        "v.ctf: line 12: coordinates X inf, Y 0 place the point nowhere (1 point(s)): left out, their map positions are missing",
        "v.ctf: 1 of the 4 positions of the 2 x 2 grid have no data point: marked not indexed (Error 5, 'Not yet analysed')",
    ]
    assert omap.nav_shape == (2, 2) and omap.x_um.tolist() == [0.0, 1.0, 0.0, 1.0] and omap["error"].tolist() == [5, 0, 0, 0]
    omap, said = read_said(small_ctf(tmp_path, {2: "0.5000"}))
    assert said[0] == "v.ctf: line 12: X 0, Y 0.5 is off the 1 x 1 µm grid (1 point(s)): left out, its map position is missing"


def test_ang_values_no_instrument_writes(tmp_path):
    head = ["# TEM_PIXperUM 1.0", "# Phase 1", "# MaterialName Fe", "# Symmetry 43", "# LatticeConstants 2.87 2.87 2.87 90 90 90",
            "# GRID: SqrGrid", "# XSTEP: 1.0", "# YSTEP: 1.0", "# NCOLS_ODD: 2", "# NCOLS_EVEN: 2", "# NROWS: 1"]  # fmt: skip
    rows = ["0.1 0.2 0.3 0.0 0.0 100.0 1.7 1 50 0.5", "12.56637 12.56637 12.56637 1.0 0.0 0.0 -1 0 0 -1"]
    path = tmp_path / "v.ang"
    path.write_text("\n".join(head + rows) + "\n")
    omap, said = read_said(path)
    assert said == ["v.ang: line 12: CI 1.7 is outside -1..1, which no instrument writes: set to NaN (empty) and the point marked not indexed"]
    # EDAX's 4 pi and Fit -1 for a point not indexed are what instruments write
    assert omap.phase_id.tolist() == [0, 0] and omap["fit"].tolist() == [0.5, -1.0]
    assert EULER_RANGE_DEG == (-360.0, 720.0) and COLUMN_RANGES["ci"] == (-1, 1)


# ---------------------------------------------------------------- coordinates: placed by coordinates, reordering said


def _rewrite_xy(text: str, fx, fy, *, ctf: bool) -> str:
    out = []
    for ln in text.split("\n"):
        f = ln.split("\t") if ctf else ln.split()
        numeric = ln and not ln.startswith("#") and (not ctf or (len(f) > 8 and f[0].strip().isdigit()))
        if not numeric:
            out.append(ln)
            continue
        x, y = float(f[1 if ctf else 3]), float(f[2 if ctf else 4])
        f[1 if ctf else 3], f[2 if ctf else 4] = f"{fx(x):.4f}", f"{fy(y):.4f}"
        out.append(("\t" if ctf else " ").join(f))
    return "\n".join(out)


MIRRORED = "the points are stored {}; they are placed by their coordinates and kept row-major (rows by increasing Y, columns by increasing X)"


@pytest.mark.parametrize(
    ("label", "fx", "fy", "flip", "order"),
    [
        ("x mirrored", lambda x: 29.25 - x, lambda y: y, (slice(None), slice(None, None, -1)), "with X decreasing along each row (a map mirrored left to right)"),
        ("y negated", lambda x: x, lambda y: -y, (slice(None, None, -1), slice(None)), "from the largest Y to the smallest (a map mirrored top to bottom)"),
        ("turned", lambda x: -x, lambda y: 100 - y, (slice(None, None, -1), slice(None, None, -1)),
         "from the largest Y to the smallest and with X decreasing along each row (a map turned by 180°)"),
        ("shifted", lambda x: x - 1000.5, lambda y: y + 7.05, (slice(None), slice(None)), None),
    ],
)  # fmt: skip
def test_mirrored_and_shifted_gan_is_the_same_map_mirrored(tmp_path, label, fx, fy, flip, order):
    gan = read_ctf(shared_file(GAN))
    path = tmp_path / "m.ctf"
    path.write_text(_rewrite_xy(shared_file(GAN).read_text(), fx, fy, ctf=True))
    omap, said = read_said(path)
    assert said == ([] if order is None else [f"m.ctf: {MIRRORED.format(order)}"])
    assert omap.nav_shape == gan.nav_shape and omap.step_um == gan.step_um
    for name in ("euler", "phase", "bc", "mad"):
        np.testing.assert_array_equal(omap.map(name), gan.map(name)[flip])
    assert np.all(np.diff(omap.map("x"), axis=1) > 0) and np.all(np.diff(omap.map("y"), axis=0) > 0)
    assert omap.x_um.min() == pytest.approx(min(fx(0.0), fx(29.25)))


def test_mirrored_ang_and_hexagonal_ctf(tmp_path):
    with pytest.warns(OrientationMapWarning):
        s00 = read_ang(shared_file(S00))
    path = tmp_path / "m.ang"
    path.write_text(_rewrite_xy(shared_file(S00).read_text(), lambda x: -x, lambda y: y, ctf=False))
    omap, said = read_said(path)
    assert said == [f"m.ang: {S00_NOTE}", f"m.ang: {MIRRORED.format('with X decreasing along each row (a map mirrored left to right)')}"]
    np.testing.assert_array_equal(omap.map("euler"), s00.map("euler")[:, ::-1])
    hexa = quiet(shared_file(HEX))
    path = tmp_path / "h.ctf"
    path.write_text(_rewrite_xy(shared_file(HEX).read_text(), lambda x: 40 - x, lambda y: y, ctf=True))
    omap, said = read_said(path)
    assert f"h.ctf: {MIRRORED.format('with X decreasing along each row (a map mirrored left to right)')}" in said
    assert omap.grid == "hexagonal" and omap.hex_ncols == hexa.hex_ncols and len(omap) == len(hexa)
    where = {(round(x, 3), round(y, 3)): k for k, (x, y) in enumerate(zip(omap.x_um, omap.y_um))}
    moved = [where[(round(40 - x, 3), round(y, 3))] for x, y in zip(hexa.x_um, hexa.y_um)]
    np.testing.assert_array_equal(omap.euler[moved], hexa.euler)


# ---------------------------------------------------------------- strict


def test_strict_refuses_each_oddity_and_a_filter_does_the_same(tmp_path):
    lines = gan_lines()
    short = tmp_path / "stopped.ctf"
    short.write_text("\n".join(lines[:-101]) + "\n")
    with pytest.raises(CtfFormatError, match=r"^stopped.ctf: 100 of the 33712 positions .* \(strict reading refuses"):
        read_orientation_map(short, strict=True)
    with pytest.raises(AngFormatError, match=r"^S00.ANG: the header says 160 rows .* \(strict reading refuses"):
        read_orientation_map(shared_file(S00), strict=True)
    assert len(read_orientation_map(shared_file(GAN), strict=True)) == 33712  # nothing odd: read
    with warnings.catch_warnings():
        warnings.simplefilter("error", OrientationMapWarning)
        with pytest.raises(OrientationMapWarning, match="stopped.ctf: 100 of the 33712 positions"):
            read_orientation_map(short)


# ---------------------------------------------------------------- HDF5 orientation map damaged


@pytest.fixture
def sqr_h5(tmp_path) -> tuple[OrientationMap, Path]:
    omap = quiet(shared_file(SQR))
    return omap, omap.write(tmp_path / "sqr.h5")


def test_h5_round_trip_keeps_notes_without_warning_again(sqr_h5):
    omap, path = sqr_h5
    back, said = read_said(path)
    assert said == [] and back.notes == omap.notes == ["columns left empty in the file: BS"]
    np.testing.assert_array_equal(back.euler, omap.euler)


def test_h5_damaged_data_is_refused_by_its_checksum(sqr_h5):
    _, path = sqr_h5
    with h5py.File(path, "r") as f:
        offset = f["OrientationMap/euler"].id.get_offset() or f["OrientationMap/euler"].id.get_chunk_info(0).byte_offset
    blob = bytearray(path.read_bytes())
    blob[offset + 100] ^= 0x40
    path.write_bytes(bytes(blob))
    with pytest.raises(OrientationMapError, match=r"^sqr.h5 /OrientationMap: dataset 'euler' cannot be read .*: a damaged file$"):
        read_orientation_map(path)


def test_h5_values_and_attributes(sqr_h5):
    omap, path = sqr_h5
    with h5py.File(path, "r+") as f:
        e = f["OrientationMap/euler"][()]
        e[5, 1] = np.nan
        del f["OrientationMap/euler"]
        f["OrientationMap/euler"] = e
        del f["OrientationMap/columns/bc"]
    back, said = read_said(path)
    e1, _, e3 = np.rad2deg(omap.euler[5])
    assert said == [
        "sqr.h5: column(s) bc listed in attribute 'columns' have no dataset: the map is read without them",
        f"sqr.h5: point 5: Euler angles ({e1:g}, nan, {e3:g}) are not finite or outside -360..720°, which no instrument writes: "
        "the angles set to 0 and the point marked not indexed",
    ]
    assert back.phase_id[5] == 0 and "bc" not in back.columns and back.phase_id.sum() == omap.phase_id.sum() - 1
    with h5py.File(path, "r+") as f:
        f["OrientationMap"].attrs["phases"] = "not json"
    with pytest.raises(OrientationMapError, match=r"^sqr.h5 /OrientationMap: attribute 'phases' is 'not json', not JSON$"):
        read_orientation_map(path)


# ---------------------------------------------------------------- property: mutated real files

FLIP_BYTES = (b"9", b"X", b"\t", b"\n", b"-", b".", b"e", b"\x00", b"\xff", b" ", b"0", b";", b"#", b"5")


class Real:
    """A real file, its reference reading and which lines hold which map point (the files are stored row-major)."""

    def __init__(self, relative: str) -> None:
        self.path = shared_file(relative)
        self.blob = self.path.read_bytes()
        self.lines = self.blob.split(b"\n")
        ctf = self.path.suffix.lower() == ".ctf"
        if ctf:
            first = next(i for i, ln in enumerate(self.lines) if ln.startswith(b"Phase\tX\tY")) + 1
            data = [i for i in range(first, len(self.lines)) if self.lines[i].strip()]
        else:
            data = [i for i, ln in enumerate(self.lines) if ln.strip() and not ln.startswith(b"#")]
        self.point = {line: k for k, line in enumerate(data)}
        self.first_data = data[0]
        self.ref = quiet(self.path)
        self.error = CtfFormatError if ctf else AngFormatError

    def touched(self, line: int, *, onwards: bool = False) -> set[int]:
        if onwards:
            return {k for ln, k in self.point.items() if ln >= line}
        return {self.point[line]} if line in self.point else set()


def impossible(omap: OrientationMap) -> str | None:
    indexed = omap.phase_id > 0
    if set(np.unique(omap.phase_id).tolist()) - {0} - {p.id for p in omap.phases}:
        return "phase ids not in the table"
    deg = np.rad2deg(omap.euler[indexed])
    if deg.size and not (np.isfinite(deg).all() and deg.min() >= EULER_RANGE_DEG[0] and deg.max() <= EULER_RANGE_DEG[1] + 0.01):
        return "Euler angles no instrument writes"
    for key, (lo, hi) in COLUMN_RANGES.items():
        v = np.asarray(omap.columns.get(key, []), dtype=float)
        if (np.isinf(v) | (np.isfinite(v) & ((v < lo) | (v > hi)))).any():
            return f"{key} outside {lo}..{hi}"
    if not (np.isfinite(omap.x_um).all() and np.isfinite(omap.y_um).all()):
        return "coordinates not finite"
    return None


def phase_rank(omap: OrientationMap) -> np.ndarray:
    """Each point's phase as its place in the phase table (1, 2, ...; 0 not indexed): a file may number its phases otherwise."""
    rank = {p.id: k + 1 for k, p in enumerate(omap.phases)}
    return np.array([rank.get(int(v), 0) for v in omap.phase_id])


def same_except(omap: OrientationMap, ref: OrientationMap, touched: set[int]) -> str | None:
    if (omap.grid, omap.nav_shape, omap.hex_ncols, len(omap)) != (ref.grid, ref.nav_shape, ref.hex_ncols, len(ref)):
        return f"grid {omap.grid} {omap.nav_shape}, reference {ref.grid} {ref.nav_shape}"
    if omap.step_um != ref.step_um or sorted(omap.columns) != sorted(ref.columns):
        return f"step {omap.step_um} / columns {sorted(omap.columns)}"
    if len(omap.phases) != len(ref.phases):
        return f"{len(omap.phases)} phases, reference {len(ref.phases)}"
    same = np.all(omap.euler == ref.euler, axis=1) & (phase_rank(omap) == phase_rank(ref)) & (omap.x_um == ref.x_um) & (omap.y_um == ref.y_um)
    for key in ref.columns:
        a, b = np.asarray(omap.columns[key], float), np.asarray(ref.columns[key], float)
        same &= (a == b) | (np.isnan(a) & np.isnan(b))
    moved = set(np.nonzero(~same)[0].tolist()) - touched
    return f"untouched points {sorted(moved)[:5]} differ" if moved else None


def mutate(real: Real, kind: str, where: int, arg: int) -> tuple[bytes, set[int]]:
    """The mutated bytes and the reference points whose data lines the mutation touched."""
    lines = list(real.lines)
    line = where % len(lines)
    if kind == "truncate":
        cut = where % len(real.blob)
        return real.blob[:cut], real.touched(real.blob.count(b"\n", 0, cut), onwards=True)
    if kind == "flip":
        offset = where % len(real.blob)
        new = FLIP_BYTES[arg % len(FLIP_BYTES)]
        at = real.blob.count(b"\n", 0, offset)
        touched = real.touched(at) | (real.touched(at + 1) if real.blob[offset : offset + 1] == b"\n" else set())
        return real.blob[:offset] + new + real.blob[offset + 1 :], touched
    if kind in ("delete line", "duplicate line"):
        lines[line : line + 1] = [] if kind == "delete line" else [lines[line]] * 2
        return b"\n".join(lines), real.touched(line)
    sep = b"\t" if real.path.suffix.lower() == ".ctf" else b" "
    fields = lines[line].split(b"\t") if sep == b"\t" else lines[line].split()
    f = arg % max(len(fields), 1)
    fields[f : f + 1] = [] if kind == "delete field" else fields[f : f + 1] * 2
    lines[line] = sep.join(fields)
    return b"\n".join(lines), real.touched(line)


MUTATIONS = st.tuples(
    st.sampled_from(["truncate", "flip", "flip", "delete line", "duplicate line", "delete field", "duplicate field"]),
    st.one_of(st.integers(0, 40), st.integers(0, 2500), st.integers(0, 100_000)),  # the header, the first lines, anywhere
    st.integers(0, 100),
)


def check_mutated(real: Real, mutation: tuple[str, int, int], folder: Path) -> None:
    blob, touched = mutate(real, *mutation)
    path = folder / real.path.name
    path.write_bytes(blob)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            omap = read_orientation_map(path)
    except (ValueError, OSError, IndexError) as exc:
        message = str(exc)
        assert isinstance(exc, real.error), f"{type(exc).__name__}: {message}"
        assert message.startswith(real.path.name) and "\n" not in message, message
        return
    assert all(issubclass(w.category, OrientationMapWarning) for w in caught)
    wrong = impossible(omap)
    assert wrong is None, f"{mutation}: {wrong}"
    if [n for n in omap.notes if n not in real.ref.notes]:
        return  # read, and said what was odd
    moved = same_except(omap, real.ref, touched)
    assert moved is None, f"{mutation}: read without a word, but {moved}"


@pytest.fixture(scope="module")
def reals() -> dict[str, Real]:
    return {"sqr": Real(SQR), "hex": Real(HEX), "s00": Real(S00)}


@pytest.mark.parametrize("key", ["sqr", "hex", "s00"])
def test_mutated_real_files_read_equal_or_warn_or_refuse_in_one_line(reals, key, tmp_path_factory):
    """Random truncations, byte flips, line and field deletions and duplications (bounded; the sweep runs thousands)."""
    real = reals[key]
    folder = tmp_path_factory.mktemp(f"fuzz_{key}")

    @settings(max_examples=70, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutation=MUTATIONS)
    def run(mutation):
        check_mutated(real, mutation, folder)

    run()


def test_a_mutation_that_touches_no_data_reads_equal(reals, tmp_path):
    """A deleted comment-like header line (Prj, Author, TEM_PIXperUM) changes nothing of the map."""
    for key, line in (("sqr", 1), ("sqr", 2), ("s00", 0), ("s00", 29)):
        real = reals[key]
        blob, touched = mutate(real, "delete line", line, 0)
        path = tmp_path / real.path.name
        path.write_bytes(blob)
        omap = quiet(path)
        assert touched == set() and same_except(omap, real.ref, set()) is None and omap.notes == real.ref.notes


def test_a_truncated_map_writes_back_as_files_other_readers_open(tmp_path):
    """The positions a truncated file did not reach have no values (NaN): written as 0, never as empty fields."""
    lines = gan_lines()
    short = tmp_path / "stopped.ctf"
    short.write_text("\n".join(lines[:-101]) + "\n")
    omap = quiet(short)
    for name in ("again.ctf", "again.ang"):
        out = omap.write(tmp_path / name)
        back, said = read_said(out)
        assert said == [] and back.nav_shape == (172, 196)
        np.testing.assert_allclose(back.euler, omap.euler, atol=1e-4)
        np.testing.assert_array_equal(back.phase_id, omap.phase_id)
        assert orix_load(out).size == 33712
    text = (tmp_path / "again.ctf").read_text().splitlines()
    assert text[-1] == "0\t29.2500\t25.6500\t0\t5\t0.0000\t0.0000\t0.0000\t0.0000\t0\t0"
    bad = OrientationMap.from_arrays(euler=np.array([[[np.nan, 0.0, 0.0]]]), phases=omap.phases[:1])
    with pytest.raises(CtfFormatError, match=r"^x.ctf: point 0 is indexed \(phase 1\) but its Euler angles \[nan, 0.0, 0.0\] are not finite"):
        bad.write(tmp_path / "x.ctf")
    assert not (tmp_path / "x.ctf").exists()
