"""EDAX/TSL ANG: the MTEX S00 file, orix agreement, round trips, 8/10/14 columns, HexGrid, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.io.ang import COLUMN_VARIANTS, SYMMETRY_CODES, AngFormatError, read_ang, write_ang
from kikuchi.io.orientation_map import OrientationMap, OrientationMapError, OrientationMapWarning, PhaseInfo
from tests.conftest import shared_file
from tests.io._omap_helpers import orix_load, write_text

S00 = "mtex/S00.ANG"
#: What the S00 file has odd: the header of the whole scan over a file that holds every fourth point.
S00_NOTE = (
    "the header says 160 rows x 140/140 columns at XSTEP 0.1 µm, the data hold 40 rows x 35 columns at 0.4 µm "
    "(a subsampled or cropped export?); the data coordinates are used"
)


def read_s00():
    """S00.ANG, read with its one warning."""
    with pytest.warns(OrientationMapWarning) as record:
        omap = read_ang(shared_file(S00))
    assert [str(w.message) for w in record] == [f"S00.ANG: {S00_NOTE}"]
    return omap

PHASE_NI = """# Phase 1
# MaterialName  \tNickel
# Formula     \tNi
# Info          \tfrom a test
# Symmetry              43
# LatticeConstants      3.524 3.524 3.524  90.000  90.000  90.000
# NumberFamilies        2
# hklFamilies   \t 1  1  1 1 0.000000 1
# hklFamilies   \t 2  0  0 1 0.000000 1
# Categories 0 0 0 0 0
#"""
PHASE_TI = """# Phase 2
# MaterialName  \tTitanium
# Formula     \tTi
# Info
# Symmetry              62
# LatticeConstants      2.951 2.951 4.684  90.000  90.000 120.000
# NumberFamilies        1
# hklFamilies   \t 1  0  0 1 0.000000 1
#"""


def ang_text(
    *,
    grid: str = "SqrGrid",
    odd: int = 3,
    even: int = 3,
    rows: int = 2,
    ncol: int = 10,
    phases: tuple[str, ...] = (PHASE_NI, PHASE_TI),
    drop: tuple[str, ...] = (),
    extra_header: str = "",
) -> str:
    """A small ANG file with points on the declared grid."""
    xstep = 1.0
    ystep = xstep * np.sqrt(3) / 2 if grid == "HexGrid" else xstep
    head = [
        "# TEM_PIXperUM          1.000000",
        "# x-star                0.500000",
        "# y-star                0.700000",
        "# z-star                0.650000",
        "# WorkingDistance       15.000000",
        "# SampleTiltAngle       70.000000",
        "# CameraElevationAngle  10.000000",
        "# CameraAzimuthalAngle  0.000000",
        "#",
        *phases,
        f"# GRID: {grid}",
        f"# XSTEP: {xstep:.6f}",
        f"# YSTEP: {ystep:.6f}",
        f"# NCOLS_ODD: {odd}",
        f"# NCOLS_EVEN: {even}",
        f"# NROWS: {rows}",
        "#",
        "# OPERATOR: \tkikuchi",
        "#",
        "# SAMPLEID: \ts1",
        "#",
        "# SCANID: \t",
        "#",
    ]
    if extra_header:
        head.append(extra_header)
    head = [h for h in head if not any(h.startswith(f"# {d}") for d in drop)]
    data = []
    k = 0
    for r in range(rows):
        n = odd if r % 2 == 0 else even
        x0 = 0.0 if (grid == "SqrGrid" or r % 2 == 0) else xstep / 2
        for c in range(n):
            phase = (k % 3 == 2) + 1
            ci = -1.0 if k == 1 else 0.1 * (k % 9)
            e = (0.1 * k, 0.05 * k, 0.2 * k)
            values = [f"{e[0]:.5f}", f"{e[1]:.5f}", f"{e[2]:.5f}", f"{x0 + c * xstep:.5f}", f"{r * ystep:.5f}", f"{100 + k:.1f}", f"{ci:.3f}", f"{phase}"]
            values += [f"{50 + k}", f"{0.5 + 0.01 * k:.3f}", "1.0", "2.0", "3.0", "4.0"]
            data.append(" ".join(values[:ncol]))
            k += 1
    return "\n".join(head + data) + "\n"




# ---------------------------------------------------------------- the real file


def test_s00_phase_and_hkl_families():
    omap = read_s00()
    (phase,) = omap.phases
    assert (phase.id, phase.name, phase.extra["formula"]) == (1, "Iron bcc (old)", "No")
    assert phase.extra["ang_symmetry"] == 43 and (phase.point_group, phase.laue_group) == ("432", "m-3m")
    assert phase.lattice_angstrom == (2.866, 2.866, 2.866) and phase.angles_deg == (90.0, 90.0, 90.0)
    assert [f["hkl"] for f in phase.hkl_families] == [(1, 1, 0), (2, 0, 0), (2, 1, 1), (3, 1, 0)]
    assert all(f["use_in_indexing"] == 1 for f in phase.hkl_families)
    h = omap.header
    assert (h["x-star"], h["y-star"], h["z-star"], h["WorkingDistance"]) == (0.523544, 0.876476, 0.594348, 23.0)
    assert h["GRID"] == "SqrGrid" and h["NCOLS_ODD"] == 140


def test_s00_grid_comes_from_the_data_and_the_disagreement_is_reported():
    omap = read_s00()
    # the header describes the 140 x 160 scan at 0.1 µm; the file holds every 4th point
    assert (omap.grid, omap.nav_shape, omap.step_um) == ("square", (40, 35), (0.4, 0.4))
    assert omap.notes == [S00_NOTE]
    assert sorted(omap.columns) == ["ci", "detector_signal", "fit", "iq"]
    assert omap.euler[0] == pytest.approx([4.63245, 0.52904, 1.39061])


def test_s00_agrees_with_orix():
    path = shared_file(S00)
    omap = read_s00()
    xmap = orix_load(path)
    assert xmap.shape == omap.nav_shape
    assert np.allclose(xmap.rotations.data, omap.to_orix().rotations.data, atol=1e-12)
    assert np.array_equal(xmap.phase_id == -1, omap.phase_id == 0)  # CI = -1: not indexed
    assert int((omap.phase_id == 0).sum()) == 342
    assert np.array_equal(xmap.prop["ci"], omap["ci"])


def test_s00_round_trip_and_orix_reads_our_file(tmp_path):
    omap = read_s00()
    path = write_ang(omap, tmp_path / "s00.ang")
    back = read_ang(path)
    assert np.array_equal(back.euler, omap.euler)
    assert np.array_equal(back.phase_id, omap.phase_id)
    assert np.array_equal(back.x_um, omap.x_um) and np.array_equal(back.y_um, omap.y_um)
    for key in omap.columns:
        assert np.array_equal(back.columns[key], omap.columns[key]), key
    assert back.notes == []  # the written header describes the data truthfully
    assert [f["hkl"] for f in back.phases[0].hkl_families] == [(1, 1, 0), (2, 0, 0), (2, 1, 1), (3, 1, 0)]
    xmap = orix_load(path)
    assert np.allclose(xmap.rotations.data, omap.to_orix().rotations.data, atol=1e-12)
    assert np.array_equal(xmap.phase_id == -1, omap.phase_id == 0)


# ---------------------------------------------------------------- column variants and grids


@pytest.mark.parametrize("ncol", [8, 10, 14])
def test_column_variants(tmp_path, ncol):
    omap = read_ang(write_text(tmp_path, "v.ang", ang_text(ncol=ncol)))
    expected = {8: ["ci", "iq"], 10: ["ci", "detector_signal", "fit", "iq"]}
    expected[14] = sorted(expected[10] + ["prias_bottom", "prias_center", "prias_top", "custom"])
    assert sorted(omap.columns) == expected[ncol]
    assert omap.nav_shape == (2, 3)
    assert omap.phase_id.tolist() == [1, 0, 2, 1, 1, 2]
    assert omap["iq"].tolist() == [100, 101, 102, 103, 104, 105]
    back = read_ang(write_ang(omap, tmp_path / "w.ang"))
    assert np.array_equal(back.euler, omap.euler) and np.array_equal(back.phase_id, omap.phase_id)
    for key in omap.columns:
        assert np.array_equal(back.columns[key], omap.columns[key])
    assert len(COLUMN_VARIANTS[ncol]) == ncol


def test_column_headers_line_names_columns(tmp_path):
    names = "phi1, PHI, phi2, x, y, IQ, CI, Phase index, SEM, Fit, PRIAS Bottom Strip, PRIAS Center Square, PRIAS Top Strip, Custom Value"
    omap = read_ang(write_text(tmp_path, "h.ang", ang_text(ncol=14, extra_header=f"# COLUMN_COUNT: 14\n# COLUMN_HEADERS: {names}")))
    assert omap["custom"].tolist() == [4] * 6 and omap["prias_top"].tolist() == [3] * 6


def test_hexagonal_grid(tmp_path):
    text = ang_text(grid="HexGrid", odd=3, even=2, rows=3)
    omap = read_ang(write_text(tmp_path, "hex.ang", text))
    assert omap.grid == "hexagonal" and omap.hex_ncols == (3, 2) and len(omap) == 8
    assert omap.step_um == pytest.approx((np.sqrt(3) / 2, 1.0), abs=1e-6)
    assert omap.notes == []
    with pytest.raises(OrientationMapError, match="needs a square grid; this map is hexagonal"):
        omap.map("ci")
    back = read_ang(write_ang(omap, tmp_path / "hex2.ang"))
    assert back.grid == "hexagonal" and back.hex_ncols == (3, 2)
    assert np.array_equal(back.x_um, omap.x_um) and np.array_equal(back.euler, omap.euler)
    assert "# GRID: HexGrid" in (tmp_path / "hex2.ang").read_text()
    # the same hexagonal map through a CTF file (whose header cannot say hexagonal)
    from kikuchi.io.ctf import read_ctf, write_ctf

    with pytest.warns(OrientationMapWarning, match="hex.ctf: the coordinates form a hexagonal grid .* which a CTF header cannot say"):
        via_ctf = read_ctf(write_ctf(omap, tmp_path / "hex.ctf"))
    assert via_ctf.grid == "hexagonal" and via_ctf.hex_ncols == (3, 2)
    assert np.allclose(via_ctf.euler, omap.euler, atol=1e-6) and np.array_equal(via_ctf.phase_id, omap.phase_id)
    square = omap.to_square_grid()
    assert square.nav_shape == (2, 3)
    # every square position copies its nearest measured point
    assert square.map("iq")[0].tolist() == [100, 101, 102]


def test_oim8_style_header(tmp_path):
    phase = PHASE_NI.replace("# Categories 0 0 0 0 0", "# PointGroupID 131\n" + "\n".join(["# ElasticConstants \t0.000000 0.000000 0.000000 0.000000 0.000000 0.000000"] * 6) + "\n# Categories0 0 0 0 0")
    text = "# HEADER: Start\n" + ang_text(phases=(phase, PHASE_TI), extra_header="# VERSION 8\n# HEADER: End")
    omap = read_ang(write_text(tmp_path, "oim8.ang", text))
    ni = omap.phases[0]
    assert ni.extra["PointGroupID"] == "131" and len(ni.extra["ElasticConstants"]) == 6
    assert ni.extra["Categories"] == "0 0 0 0 0"
    assert omap.header["VERSION"] == 8 and omap.header["SampleTiltAngle"] == 70.0
    back = read_ang(write_ang(omap, tmp_path / "again.ang"))
    assert back.phases[0].extra == ni.extra and back.header["VERSION"] == 8
    assert [f["hkl"] for f in back.phases[0].hkl_families] == [(1, 1, 1), (2, 0, 0)]
    assert back.phases[0].hkl_families[0]["show_bands"] == 1


def test_single_phase_file_uses_phase_zero(tmp_path):
    text = ang_text(phases=(PHASE_NI,))
    lines = text.splitlines()
    data = [ln.rsplit(" ", 3) for ln in lines if not ln.startswith("#")]
    body = [" ".join([d[0], "0", d[2], d[3]]) for d in data]
    head = [ln for ln in lines if ln.startswith("#")]
    omap = read_ang(write_text(tmp_path, "one.ang", "\n".join(head + body) + "\n"))
    assert omap.phase_id.tolist() == [1, 0, 1, 1, 1, 1]  # CI = -1 at point 1


def test_symmetry_codes_match_orix():
    from orix.quaternion.symmetry import _EDAX_POINT_GROUP_ALIASES

    aliases = {code: name for name, codes in _EDAX_POINT_GROUP_ALIASES.items() for code in codes}
    for code, (point_group, _) in SYMMETRY_CODES.items():
        assert aliases.get(str(code), str(code)) == point_group


def test_ctf_to_ang_conversion_keeps_orientations(tmp_path):
    from kikuchi.io.ctf import read_ctf

    gan = read_ctf(shared_file("xcdskd/GaN_polytype_mixing.ctf"))
    back = read_ang(write_ang(gan, tmp_path / "gan.ang"))
    assert back.nav_shape == gan.nav_shape
    assert np.abs(back.euler - gan.euler).max() <= 5e-6
    assert [p.laue_group for p in back.phases] == ["6/mmm", "m-3m"]
    assert np.all(back["ci"][back.phase_id > 0] == 0)  # CTF has no CI: 0, not a claim of confidence


def test_interactive_map_cannot_be_ang(tmp_path):
    omap = OrientationMap(
        euler=np.zeros((2, 3)), phase_id=[0, 0], x_um=[0, 1.5], y_um=[2, 0], grid="interactive", nav_shape=None, step_um=(0, 0)
    )
    with pytest.raises(AngFormatError, match="interactive point list cannot be written as ANG"):
        write_ang(omap, tmp_path / "i.ang")
    assert not (tmp_path / "i.ang").exists()


# ---------------------------------------------------------------- bad input


def _bad(tmp_path, text: str) -> str:
    with pytest.raises(AngFormatError) as info:
        read_ang(write_text(tmp_path, "scan.ang", text))
    assert isinstance(info.value, ValueError)
    return str(info.value)


def _first_data_line(text: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines()) if not ln.startswith("#")) + 1


def _odd(tmp_path, text: str) -> tuple[OrientationMap, list[str]]:
    """Read, returning the map and what the warnings said."""
    with pytest.warns(OrientationMapWarning) as record:
        omap = read_ang(write_text(tmp_path, "scan.ang", text))
    return omap, [str(w.message) for w in record]


def test_wrong_column_count_leaves_the_line_out(tmp_path):
    text = ang_text()
    n = _first_data_line(text)
    lines = text.splitlines()
    lines[n] = " ".join(lines[n].split()[:7])
    omap, said = _odd(tmp_path, "\n".join(lines) + "\n")
    assert said == [
        f"scan.ang: line {n + 1}: expected 10 columns (phi1 Phi phi2 x y IQ CI Phase SEM Fit), found 7: the line is left out; its map position is missing",
        "scan.ang: 1 of the 6 positions of the 2 x 3 grid have no data point: marked not indexed (CI -1)",
    ]
    assert omap.phase_id.tolist() == [1, 0, 2, 1, 1, 2] and omap["ci"][1] == -1 and np.isnan(omap["iq"][1])
    with pytest.raises(AngFormatError, match=rf"^scan.ang: line {n + 1}: expected 10 columns .* \(strict reading refuses"):
        read_ang(tmp_path / "scan.ang", strict=True)


def test_too_few_columns_everywhere(tmp_path):
    text = ang_text(ncol=8)
    lines = [ln if ln.startswith("#") else " ".join(ln.split()[:6]) for ln in text.splitlines()]
    msg = _bad(tmp_path, "\n".join(lines) + "\n")
    assert msg == f"scan.ang line {_first_data_line(text)}: expected 10 columns (phi1 Phi phi2 x y IQ CI Phase SEM Fit), found 6"


def test_non_numeric(tmp_path):
    text = ang_text()
    n = _first_data_line(text)
    lines = text.splitlines()
    fields = lines[n + 1].split()
    fields[6] = "high"
    lines[n + 1] = " ".join(fields)
    omap, said = _odd(tmp_path, "\n".join(lines) + "\n")
    assert said[0] == f"scan.ang: line {n + 2}: column CI: 'high' is not a number: the line is left out; its map position is missing"
    assert omap.phase_id[2] == 0


def test_truncated_reads_the_complete_points(tmp_path):
    text = ang_text(rows=3)
    lines = text.splitlines()
    omap, said = _odd(tmp_path, "\n".join(lines[:-1]) + "\n")
    assert said == [
        "scan.ang: 1 of the 9 positions of the 3 x 3 grid have no data point (the header promises 9 points, the file holds 8: "
        "an acquisition stopped early, or a truncated file): marked not indexed (CI -1)"
    ]
    full = read_ang(write_text(tmp_path, "full.ang", text))
    assert np.array_equal(omap.euler[:8], full.euler[:8]) and omap.phase_id[8] == 0
    assert omap.x_um.tolist() == full.x_um.tolist()
    omap, said = _odd(tmp_path, text.rstrip()[:-12])
    assert said[0] == (
        f"scan.ang: line {len(lines)}: expected 10 columns (phi1 Phi phi2 x y IQ CI Phase SEM Fit), found 7 "
        "(the file ends inside this line: truncated?): the line is left out; its map position is missing"
    )
    # cut inside a line of a file already short of its header's grid: the cut line is left out as such
    omap, said = _odd(tmp_path, "\n".join(lines[:-1])[:-3])
    assert said[0] == f"scan.ang: line {len(lines) - 1}: the file ends inside this line (no line end after it): the line is left out"
    assert omap.phase_id[7:].tolist() == [0, 0]


def test_missing_grid_fields(tmp_path):
    full = read_ang(write_text(tmp_path, "full.ang", ang_text()))
    omap, said = _odd(tmp_path, ang_text(drop=("XSTEP",)))
    assert said == ["scan.ang: header field(s) XSTEP missing: the grid comes from the point coordinates"]
    assert omap.step_um == full.step_um and np.array_equal(omap.euler, full.euler)
    omap, said = _odd(tmp_path, ang_text().replace("# GRID: SqrGrid", "# GRID: Triangles"))
    assert said == ["scan.ang: GRID 'Triangles' is neither SqrGrid nor HexGrid: the grid comes from the point coordinates"]
    assert omap.nav_shape == (2, 3)


def test_bad_phase_blocks(tmp_path):
    text = ang_text().replace("# LatticeConstants      3.524 3.524 3.524  90.000  90.000  90.000", "# LatticeConstants      3.524 3.524 90 90 90")
    assert _bad(tmp_path, text) == "scan.ang line 10: Phase 1: LatticeConstants needs 6 numbers (a b c alpha beta gamma), found 5"
    text = ang_text().replace("# Symmetry              43", "# Symmetry              44")
    assert "Phase 1: Symmetry code 44 is not one of" in _bad(tmp_path, text)
    text = ang_text().replace("# NumberFamilies        2", "# NumberFamilies        3")
    omap, said = _odd(tmp_path, text)
    assert said == ["scan.ang: line 10: Phase 1: NumberFamilies 3 but 2 hklFamilies lines: the 2 lines are read"]
    assert len(omap.phases[0].hkl_families) == 2


def test_unknown_phase_in_data_is_not_indexed(tmp_path):
    text = ang_text(phases=(PHASE_NI, PHASE_TI))
    text = text.replace(" 102.0 0.200 2 ", " 102.0 0.200 5 ")
    omap, said = _odd(tmp_path, text)
    n = _first_data_line(text)
    assert said == [f"scan.ang: line {n + 2}: phase 5 is not in the phase table (phases [1, 2]; 0 = not indexed): marked not indexed"]
    assert omap.phase_id.tolist() == [1, 0, 0, 1, 1, 2]


def test_not_an_ang_file(tmp_path):
    assert _bad(tmp_path, "1 2 3\n") == "scan.ang line 1: expected a '#' header line, found '1 2 3' (not an ANG file?)"


def test_phase_info_round_trip_through_map_phase():
    p = PhaseInfo(3, "Ti", lattice_angstrom=(2.95, 2.95, 4.68), angles_deg=(90, 90, 120), space_group=194)
    q = PhaseInfo.from_map_phase(p.to_map_phase())
    assert (q.id, q.name, q.space_group, q.point_group) == (3, "Ti", 194, "6/mmm")
    assert q.lattice_angstrom == pytest.approx(p.lattice_angstrom)


def test_two_phase_map_written_loads_in_orix(tmp_path, rng):
    euler = rng.uniform(0, 1, (3, 5, 3)) * [2 * np.pi, np.pi, 2 * np.pi]
    pid = rng.integers(0, 3, (3, 5))
    phases = [PhaseInfo(1, "Ni", lattice_angstrom=(3.524,) * 3, space_group=225), PhaseInfo(2, "Ti", lattice_angstrom=(2.95, 2.95, 4.68), angles_deg=(90, 90, 120), space_group=194)]
    omap = OrientationMap.from_arrays(euler=euler, phase_id=pid, step_um=0.2, phases=phases, columns={"iq": rng.random((3, 5)), "ci": rng.random((3, 5))})
    path = write_ang(omap, tmp_path / "two.ang")
    xmap = orix_load(path)
    assert xmap.shape == (3, 5) and xmap.dx == 0.2
    back = read_ang(path)
    assert np.allclose(xmap.rotations.data, back.to_orix().rotations.data, atol=1e-12)
    assert np.abs(back.euler - omap.euler).max() <= 5e-6  # 5 decimals in radians
    assert np.array_equal(np.where(xmap.phase_id == -1, 0, xmap.phase_id), pid.ravel())
    assert [xmap.phases[i].point_group.name for i in (1, 2)] == ["432", "622"]  # orix reads TSL codes 43, 62
