"""Oxford CTF: real files (xcdskd, MTEX), orix agreement, round trips, edge cases, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from kikuchi.io.ctf import COLUMNS, ERROR_CODES, CtfFormatError, read_ctf, write_ctf
from kikuchi.io.orientation_map import OrientationMap, OrientationMapError, OrientationMapWarning, PhaseInfo
from tests.conftest import shared_file
from tests.io._omap_helpers import orix_load, write_text

GAN = "xcdskd/GaN_polytype_mixing.ctf"
CS0 = (
    "Euler angles refer to Sample Coordinate system (CS0)!\tMag\t2000.0000\tCoverage\t100\tDevice\t0\tKV\t20.0000"
    "\tTiltAngle\t70.0000\tTiltAxis\t0\tDetectorOrientationE1\t0.5000\tDetectorOrientationE2\t90.0000"
    "\tDetectorOrientationE3\t0.0000\tWorkingDistance\t15.0000\tInsertionDistance\t180.0000"
)
NI = "3.524;3.524;3.524\t90.000;90.000;90.000\tNickel\t11\t225\t\t\tNi reference"
TI = "2.951;2.951;4.684\t90.000;90.000;120.000\tTitanium\t9\t194\t\t\tTi reference"


def ctf_text(
    rows: int = 2,
    cols: int = 3,
    *,
    job: str = "Grid",
    phases: tuple[str, ...] = (NI, TI),
    data: list[str] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    """A small CTF file; with two phases its first data line is line 17."""
    header = [
        "Channel Text File",
        "Prj\ttest.cpr",
        "Author\tkikuchi",
        f"JobMode\t{job}",
        f"XCells\t{cols}",
        f"YCells\t{rows}",
        "XStep\t0.5000",
        "YStep\t0.5000",
        "AcqE1\t0.0000",
        "AcqE2\t0.0000",
        "AcqE3\t0.0000",
        CS0,
        f"Phases\t{len(phases)}",
        *phases,
        "\t".join(COLUMNS),
    ]
    header = [h for h in header if h.split("\t")[0] not in drop]
    if data is None:
        data = []
        for r in range(rows):
            for c in range(cols):
                k = r * cols + c
                phase = 0 if k == 1 else 1 + (k % 2 == 0 and k > 2)
                error = 3 if phase == 0 else 0
                e = (0.0, 0.0, 0.0) if phase == 0 else (10.0 + k, 20.5 + k, 30.25 + k)
                data.append(
                    f"{phase}\t{c * 0.5:.4f}\t{r * 0.5:.4f}\t{0 if phase == 0 else 8}\t{error}\t"
                    f"{e[0]:.4f}\t{e[1]:.4f}\t{e[2]:.4f}\t{0.1 * k:.4f}\t{100 + k}\t{150 + k}"
                )
    return "\n".join(header + data) + "\n"




# ---------------------------------------------------------------- real files


def test_gan_shape_header_and_phases():
    omap = read_ctf(shared_file(GAN))
    assert omap.grid == "square"
    assert omap.nav_shape == (172, 196)
    assert omap.step_um == (0.15, 0.15)
    h = omap.header
    assert (h["XCells"], h["YCells"], h["JobMode"]) == (196, 172, "Grid")
    assert h["KV"] == 20.0 and h["TiltAngle"] == 69.9204 and h["Mag"] == 10000.0
    assert (h["DetectorOrientationE1"], h["DetectorOrientationE2"], h["DetectorOrientationE3"]) == (1.8438, 104.6036, 0.5993)
    assert (h["WorkingDistance"], h["InsertionDistance"]) == (9.5781, 164.0365)
    assert h["Euler angles refer to"] == "Sample Coordinate system (CS0)!"
    p1, p2 = omap.phases
    assert (p1.id, p1.name, p1.space_group, p1.laue_group, p1.point_group) == (1, "Ga N", 186, "6/mmm", "6mm")
    assert p1.lattice_angstrom == (3.189, 3.189, 5.185) and p1.angles_deg == (90.0, 90.0, 120.0)
    assert p1.comment.startswith("Mod. Phys. Lett. B")
    assert (p2.id, p2.space_group, p2.laue_group, p2.point_group) == (2, 216, "m-3m", "-43m")
    assert p2.lattice_angstrom == (4.364, 4.364, 4.364) and p2.comment == "ICSD[67781]"
    assert p1.lattice_nm[:3] == pytest.approx((0.3189, 0.3189, 0.5185))


def test_gan_band_contrast_selection_as_in_xcdskd():
    omap = read_ctf(shared_file(GAN))
    bc = omap.select("bc", omap["bc"] > 10, phase=1)
    assert isinstance(bc, np.ma.MaskedArray) and bc.shape == (172, 196)
    values = bc.compressed()
    assert values[:3].tolist() == [153, 154, 153]
    assert values[-3:].tolist() == [155, 156, 157]
    assert omap.map("bc")[0, :3].tolist() == [153, 154, 153]
    assert omap.map("mad").dtype == np.float64 and omap.map("bs").shape == (172, 196)


def test_gan_euler_are_degrees_in_file_radians_here_and_agree_with_orix():
    path = shared_file(GAN)
    omap = read_ctf(path)
    assert np.rad2deg(omap.euler[0]) == pytest.approx([179.6377, 120.9077, 58.9279], abs=1e-9)
    xmap = orix_load(path)
    ours = omap.to_orix()
    assert xmap.shape == omap.nav_shape
    assert np.allclose(xmap.rotations.data, ours.rotations.data, atol=1e-12)
    assert np.allclose(xmap.x, omap.x_um) and np.allclose(xmap.y, omap.y_um)
    assert np.array_equal(xmap.prop["BC"], omap["bc"])


def test_gan_round_trip_is_byte_identical(tmp_path):
    path = shared_file(GAN)
    omap = read_ctf(path)
    out = write_ctf(omap, tmp_path / "gan.ctf")
    assert out.read_bytes() == path.read_bytes()
    back = read_ctf(out)
    assert np.array_equal(back.euler, omap.euler)
    assert all(np.array_equal(back.columns[k], omap.columns[k]) for k in omap.columns)


def test_mtex_square_file_with_empty_bs_column():
    with pytest.warns(OrientationMapWarning, match="testdata_sqr.ctf: columns left empty in the file: BS"):
        omap = read_ctf(shared_file("mtex/testdata_sqr.ctf"))
    assert (omap.grid, omap.nav_shape, omap.step_um) == ("square", (30, 30), (1.0, 1.0))
    assert sorted(omap.columns) == ["bands", "bc", "error", "mad"]
    assert any("BS" in note for note in omap.notes)
    (phase,) = omap.phases
    assert (phase.name, phase.laue_group, phase.space_group) == ("Glaucophane", "2/m", None)
    assert phase.angles_deg == (90.0, 103.67, 90.0)
    assert omap.x_um[:2].tolist() == [1.0, 2.0]  # MTEX starts at x = 1


def test_mtex_hexagonal_file_is_recognised():
    with pytest.warns(OrientationMapWarning) as record:
        omap = read_ctf(shared_file("mtex/testdata_hex.ctf"))
    assert [str(w.message) for w in record] == [
        "testdata_hex.ctf: columns left empty in the file: BS",
        "testdata_hex.ctf: the coordinates form a hexagonal grid (30 rows 0.866 µm apart, every other row shifted by 0.5 µm), "
        "which a CTF header cannot say (JobMode Grid)",
    ]
    assert omap.grid == "hexagonal"
    assert omap.hex_ncols == (30, 30) and omap.nav_shape == (30, 30)
    assert omap.step_um == pytest.approx((np.sqrt(3) / 2, 1.0), abs=1e-4)  # rows fitted over the map (the file prints 4 decimals)
    assert any("hexagonal" in note for note in omap.notes)
    # the file order is kept: the second row is shifted by half a step
    assert omap.x_um[30] - omap.x_um[0] == pytest.approx(0.5)
    with pytest.raises(OrientationMapError, match="square grid.*to_square_grid"):
        omap.map("bc")
    square = omap.to_square_grid()
    assert square.grid == "square" and square.nav_shape == (26, 30)  # 29.5 µm x 25.1 µm at 1 µm
    assert "nearest neighbour" in square.notes[-1]


def test_mtex_round_trip_keeps_values(tmp_path):
    for name in ("mtex/testdata_sqr.ctf", "mtex/testdata_hex.ctf"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OrientationMapWarning)  # the BS column left empty; a hexagonal grid
            omap = read_ctf(shared_file(name))
            back = read_ctf(write_ctf(omap, tmp_path / "m.ctf"))
        assert back.grid == omap.grid
        assert np.array_equal(np.rad2deg(back.euler).round(4), np.rad2deg(omap.euler).round(4))
        assert np.array_equal(back.x_um, omap.x_um) and np.array_equal(back.y_um, omap.y_um)
        for key in omap.columns:
            assert np.array_equal(back.columns[key], omap.columns[key])
        assert back.phases[0].extra["ctf_fields"] == ["0_5.0.9.1", "1477773286"]
        # BS was empty: written as 0 so that other readers get 11 columns
        assert np.all(back.columns["bs"] == 0)


# ---------------------------------------------------------------- generated files


def test_generated_file_not_indexed_points_and_error_codes(tmp_path):
    omap = read_ctf(write_text(tmp_path, "t.ctf", ctf_text()))
    assert omap.nav_shape == (2, 3) and omap.step_um == (0.5, 0.5)
    assert omap.phase_id.tolist() == [1, 0, 1, 1, 2, 1]
    assert omap["error"].tolist() == [0, 3, 0, 0, 0, 0]
    assert ERROR_CODES[3] == "No solution" and ERROR_CODES[0] == "Success" and len(ERROR_CODES) == 7
    assert omap.describe()["error_codes"] == {"0 Success": 5, "3 No solution": 1}
    xmap = omap.to_orix()
    assert (xmap.phase_id == -1).sum() == 1
    assert [p.point_group for p in omap.phases] == ["m-3m", "6/mmm"]


def test_written_file_loads_in_orix_as_the_same_orientations(tmp_path, rng):
    euler = rng.uniform(0, 1, (4, 5, 3)) * [2 * np.pi, np.pi, 2 * np.pi]
    phases = [PhaseInfo(1, "Ni", lattice_angstrom=(3.524,) * 3, space_group=225), PhaseInfo(2, "Ti", lattice_angstrom=(2.95, 2.95, 4.68), angles_deg=(90, 90, 120), space_group=194)]
    pid = rng.integers(0, 3, (4, 5))
    omap = OrientationMap.from_arrays(euler=euler, phase_id=pid, step_um=(0.25, 0.5), phases=phases, columns={"mad": rng.random((4, 5))})
    path = write_ctf(omap, tmp_path / "w.ctf")
    xmap = orix_load(path)
    back = read_ctf(path)
    assert xmap.shape == (4, 5) and (xmap.dy, xmap.dx) == (0.25, 0.5)
    assert np.allclose(xmap.rotations.data, back.to_orix().rotations.data, atol=1e-12)
    # the same orientations we hold, to the printed precision (1e-4 degrees)
    assert np.abs(np.rad2deg(back.euler - omap.euler)).max() < 0.6e-4
    assert np.array_equal(back.phase_id, omap.phase_id)
    assert np.array_equal(xmap.phase_id, np.where(pid.ravel() == 0, -1, pid.ravel()))
    assert np.array_equal(back["error"], np.where(pid.ravel() == 0, 3, 0))


def test_empty_columns(tmp_path):
    lines = ctf_text().splitlines()
    data = [ln.rsplit("\t", 2)[0] + "\t\t" for ln in lines[16:]]  # BC and BS left empty
    with pytest.warns(OrientationMapWarning, match="e.ctf: columns left empty in the file: BC BS"):
        omap = read_ctf(write_text(tmp_path, "e.ctf", "\n".join(lines[:16] + data) + "\n"))
    assert "bc" not in omap.columns and "bs" not in omap.columns
    assert any("BC BS" in note for note in omap.notes)
    # partly empty: NaN where the field is empty (no warning: an empty field is no value)
    data[2] = data[2][:-2] + "\t120\t130"
    partly = read_ctf(write_text(tmp_path, "p.ctf", "\n".join(lines[:16] + data) + "\n"))
    assert np.isnan(partly["bc"][0]) and partly["bc"][2] == 120
    desc = partly.describe()
    assert desc["columns"]["bc"]["min"] == 120.0  # NaN left out of the summary


def test_interactive_job_mode(tmp_path, rng):
    xy = [(0.3, 1.7), (2.2, 0.4), (5.0, 5.0), (1.1, 3.3)]
    data = [f"1\t{x:.4f}\t{y:.4f}\t7\t0\t{10 * k:.4f}\t{5 * k:.4f}\t{2 * k:.4f}\t0.5000\t100\t120" for k, (x, y) in enumerate(xy)]
    text = ctf_text(job="Interactive", data=data, drop=("XCells", "YCells")).replace("JobMode\tInteractive", "JobMode\tInteractive\nNoMeas\t4")
    omap = read_ctf(write_text(tmp_path, "i.ctf", text))
    assert omap.grid == "interactive" and omap.nav_shape is None and len(omap) == 4
    assert omap.x_um.tolist() == [0.3, 2.2, 5.0, 1.1]
    with pytest.raises(OrientationMapError, match="interactive point list has no map layout"):
        omap.map("bc")
    assert omap.select("bc", omap["euler1"] > 0).compressed().tolist() == [100, 100, 100]
    back = read_ctf(write_ctf(omap, tmp_path / "i2.ctf"))
    assert back.grid == "interactive" and back.header["NoMeas"] == 4
    assert np.array_equal(back.x_um, omap.x_um) and np.allclose(back.euler, omap.euler, atol=1e-6)


def test_unsorted_grid_points_are_stored_row_major(tmp_path):
    lines = ctf_text().splitlines()
    data = lines[16:]
    shuffled = [data[k] for k in (5, 0, 3, 1, 4, 2)]
    with pytest.warns(OrientationMapWarning, match="s.ctf: the points are stored out of row order; they are placed by their coordinates and kept row-major"):
        omap = read_ctf(write_text(tmp_path, "s.ctf", "\n".join(lines[:16] + shuffled) + "\n"))
    ordered = read_ctf(write_text(tmp_path, "o.ctf", "\n".join(lines) + "\n"))
    assert np.array_equal(omap.euler, ordered.euler)
    assert any("row-major" in note for note in omap.notes)
    assert ordered.notes == []


def test_windows_line_endings(tmp_path):
    path = tmp_path / "crlf.ctf"
    path.write_bytes(ctf_text().replace("\n", "\r\n").encode())
    assert read_ctf(path).nav_shape == (2, 3)


# ---------------------------------------------------------------- bad input


def _bad(tmp_path, text: str, name: str = "twins.ctf") -> str:
    with pytest.raises(CtfFormatError) as info:
        read_ctf(write_text(tmp_path, name, text))
    assert isinstance(info.value, ValueError)
    return str(info.value)


def _odd(tmp_path, text: str, match: str, name: str = "twins.ctf") -> OrientationMap:
    """Read with the one warning that says what was odd (and only that one)."""
    with pytest.warns(OrientationMapWarning) as record:
        omap = read_ctf(write_text(tmp_path, name, text))
    said = [str(w.message) for w in record]
    assert len(said) == 1 and said[0] == match, said
    assert omap.notes == [match.split(": ", 1)[1]]
    return omap


def test_wrong_column_count_leaves_the_line_out_and_names_file_line_and_columns(tmp_path):
    lines = ctf_text().splitlines()
    lines[16] = "\t".join(lines[16].split("\t")[:9])
    with pytest.warns(OrientationMapWarning) as record:
        omap = read_ctf(write_text(tmp_path, "twins.ctf", "\n".join(lines) + "\n"))
    assert [str(w.message) for w in record] == [
        "twins.ctf: line 17: expected 11 columns (Phase X Y Bands Error Euler1 Euler2 Euler3 MAD BC BS), found 9: "
        "the line is left out; its map position is missing",
        "twins.ctf: 1 of the 6 positions of the 2 x 3 grid have no data point: marked not indexed (Error 5, 'Not yet analysed')",
    ]
    full = read_ctf(write_text(tmp_path, "full.ctf", ctf_text()))
    assert omap.nav_shape == (2, 3) and omap.phase_id.tolist() == [0, 0, 1, 1, 2, 1]
    assert omap["error"].tolist() == [5, 3, 0, 0, 0, 0]
    assert np.array_equal(omap.euler[1:], full.euler[1:]) and np.isnan(omap["bc"][0])
    # strict: the first oddity is the error
    with pytest.raises(CtfFormatError, match=r"^twins.ctf: line 17: expected 11 columns .* \(strict reading refuses what a plain read warns about\)$"):
        read_ctf(tmp_path / "twins.ctf", strict=True)


def test_a_table_mostly_unreadable_is_refused(tmp_path):
    lines = ctf_text().splitlines()
    for k in (16, 17, 18, 19):
        lines[k] = lines[k].replace("\t", " ", 3)
    msg = _bad(tmp_path, "\n".join(lines) + "\n")
    assert msg.startswith("twins.ctf line 17: column Phase: '1 0.0000 0.0000 8' is not a number; 6 of the 6 data lines cannot be read")


def test_truncated_inside_last_line(tmp_path):
    text = ctf_text()
    with pytest.warns(OrientationMapWarning) as record:
        omap = read_ctf(write_text(tmp_path, "twins.ctf", text[: text.rstrip().rfind("\t") - 12]))
    said = [str(w.message) for w in record]
    assert said == [
        "twins.ctf: line 22: expected 11 columns (Phase X Y Bands Error Euler1 Euler2 Euler3 MAD BC BS), found 8 "
        "(the file ends inside this line: truncated?): the line is left out; its map position is missing",
        "twins.ctf: 1 of the 6 positions of the 2 x 3 grid have no data point: marked not indexed (Error 5, 'Not yet analysed')",
    ]
    assert omap.phase_id[-1] == 0 and omap["error"][-1] == 5


def test_truncated_at_a_line_end_reads_the_complete_points(tmp_path):
    lines = ctf_text().splitlines()
    omap = _odd(
        tmp_path, "\n".join(lines[:-2]) + "\n",
        "twins.ctf: 2 of the 6 positions of the 2 x 3 grid have no data point (the header promises 6 points, the file holds 4: "
        "an acquisition stopped early, or a truncated file): marked not indexed (Error 5, 'Not yet analysed')",
    )  # fmt: skip
    full = read_ctf(write_text(tmp_path, "full.ctf", ctf_text()))
    assert omap.nav_shape == (2, 3)
    assert np.array_equal(omap.euler[:4], full.euler[:4]) and np.array_equal(omap.phase_id[:4], full.phase_id[:4])
    assert omap.phase_id[4:].tolist() == [0, 0] and omap["error"].tolist() == [0, 3, 0, 0, 5, 5]
    assert omap.x_um.tolist() == full.x_um.tolist() and omap.y_um.tolist() == full.y_um.tolist()
    assert np.isnan(omap["mad"][4:]).all() and omap["bc"][:4].tolist() == [100, 101, 102, 103]


def test_header_only(tmp_path):
    msg = _bad(tmp_path, "\n".join(ctf_text().splitlines()[:10]) + "\n")
    assert "no column header line" in msg and "truncated" in msg
    msg = _bad(tmp_path, "\n".join(ctf_text().splitlines()[:16]) + "\n")
    assert msg == "twins.ctf: no data lines after the column header (line 16); truncated file?"


def test_non_numeric_field(tmp_path):
    lines = ctf_text().splitlines()
    fields = lines[17].split("\t")
    fields[5] = "abc"
    lines[17] = "\t".join(fields)
    with pytest.warns(OrientationMapWarning) as record:
        omap = read_ctf(write_text(tmp_path, "twins.ctf", "\n".join(lines) + "\n"))
    assert str(record[0].message) == "twins.ctf: line 18: column Euler1: 'abc' is not a number: the line is left out; its map position is missing"
    assert omap.phase_id[1] == 0 and omap["error"][1] == 5


def test_fractional_and_unknown_phase_are_not_indexed(tmp_path):
    lines = ctf_text().splitlines()
    lines[18] = "1.5" + lines[18][1:]
    omap = _odd(tmp_path, "\n".join(lines) + "\n", "twins.ctf: line 19: phase 1.5 is not in the phase table (phases [1, 2]; 0 = not indexed): marked not indexed")
    assert omap.phase_id.tolist() == [1, 0, 0, 1, 2, 1]
    lines[18] = "3" + lines[18][3:]
    lines[19] = "7" + lines[19][1:]
    omap = _odd(
        tmp_path, "\n".join(lines) + "\n",
        "twins.ctf: line 19: phase 3 is not in the phase table (phases [1, 2]; 0 = not indexed) (2 points in all): marked not indexed",
    )  # fmt: skip
    assert omap.phase_id.tolist() == [1, 0, 0, 0, 2, 1]


def test_missing_or_bad_header_fields(tmp_path):
    full = read_ctf(write_text(tmp_path, "full.ctf", ctf_text()))
    omap = _odd(tmp_path, ctf_text(drop=("XCells",)), "twins.ctf: header field(s) XCells missing: the grid comes from the point coordinates")
    assert omap.nav_shape == (2, 3) and np.array_equal(omap.euler, full.euler)
    omap = _odd(tmp_path, ctf_text(drop=("JobMode",)), "twins.ctf: header field JobMode missing: read as Grid")
    assert omap.nav_shape == (2, 3)
    text = ctf_text().replace("Phases\t2\n" + NI + "\n" + TI + "\n", "")
    assert "header field 'Phases' missing" in _bad(tmp_path, text)
    omap = _odd(
        tmp_path, ctf_text().replace("YStep\t0.5000", "YStep\tfast"),
        "twins.ctf: header field YStep is 'fast', not a positive step: ignored, the step comes from the point coordinates",
    )  # fmt: skip
    assert omap.step_um == (0.5, 0.5)
    omap = _odd(
        tmp_path, ctf_text().replace("XStep\t0.5000", "XStep\t0.7000"),
        "twins.ctf: the header says XCells 3 x YCells 2 at XStep 0.7 µm, YStep 0.5 µm, the data hold 2 rows x 3 columns at 0.5 µm; "
        "the data coordinates are used",
    )  # fmt: skip
    assert omap.step_um == (0.5, 0.5)


def test_bad_phase_table(tmp_path):
    msg = _bad(tmp_path, ctf_text(phases=("3.524;3.524\t90;90;90\tNi\t11\t225",)))
    assert msg.startswith("twins.ctf line 14: phase 1: expected three lattice lengths and three angles")
    msg = _bad(tmp_path, ctf_text(phases=("3.524;3.524;3.524\t90;90;90\tNi\t12\t225",)))
    assert msg == "twins.ctf line 14: phase 1: Laue group code 12 is not one of 1..11"
    msg = _bad(tmp_path, ctf_text(phases=("3.524;3.524;3.524\t90;90;90",)))
    assert "phase 1: expected 'a;b;c" in msg and "found 2 field(s)" in msg
    # a space group outside the Laue group of its line (MTEX exports): read, the Laue group decides (as orix)
    with pytest.warns(OrientationMapWarning, match="twins.ctf: line 14: phase 1: space group 225 .point group m-3m. does not belong to the Laue group 6/mmm"):
        omap = read_ctf(write_text(tmp_path, "twins.ctf", ctf_text(phases=("3.524;3.524;3.524\t90;90;90\tNi\t9\t225", TI))))
    ni = omap.phases[0]
    assert (ni.space_group, ni.point_group, ni.laue_group, ni.extra["ctf_space_group"]) == (None, "6/mmm", "6/mmm", 225)
    assert "\tNi\t9\t225\t" in write_ctf(omap, tmp_path / "again.ctf").read_text()  # written back as the file had it


def test_not_a_ctf_file(tmp_path):
    assert _bad(tmp_path, "hello\tworld\n") == "twins.ctf line 1: expected 'Channel Text File', found 'hello\\tworld' (not a CTF file?)"


def test_points_off_the_grid(tmp_path):
    lines = ctf_text().splitlines()
    lines[18] = lines[18].replace("\t1.0000\t0.0000\t", "\t1.2000\t0.0000\t")
    with pytest.warns(OrientationMapWarning) as record:
        omap = read_ctf(write_text(tmp_path, "twins.ctf", "\n".join(lines) + "\n"))
    assert len(record) == 2 and "1 of the 6 positions" in str(record[1].message)
    assert str(record[0].message) == "twins.ctf: line 19: X 1.2, Y 0 is off the 0.5 x 0.5 µm grid (1 point(s)): left out, its map position is missing"
    assert omap.phase_id[2] == 0 and omap["error"][2] == 5
    # most points off any grid: not a map
    lines = ctf_text().splitlines()
    for k, x in zip(range(16, 22), (0.0, 0.31, 1.13, 1.77, 2.39, 3.97)):
        fields = lines[k].split("\t")
        fields[1] = f"{x:.4f}"
        lines[k] = "\t".join(fields)
    msg = _bad(tmp_path, "\n".join(lines) + "\n")
    assert msg == (
        "twins.ctf: the point coordinates do not form a grid: only 2 of 6 points lie on a 0.5 x 0.31 µm grid "
        "(header: XCells 3 x YCells 2 at XStep 0.5 µm, YStep 0.5 µm)"
    )


def test_writer_invents_no_microscope_values(tmp_path):
    omap = OrientationMap.from_arrays(euler=np.zeros((1, 2, 3)), phases=[PhaseInfo(1, "Ni", space_group=225)])
    lines = write_ctf(omap, tmp_path / "a.ctf").read_text().splitlines()
    assert lines[11] == "Euler angles refer to Sample Coordinate system (CS0)!"
    back = read_ctf(tmp_path / "a.ctf")
    assert "KV" not in back.header and back.header["Euler angles refer to"] == "Sample Coordinate system (CS0)!"


def test_writer_is_atomic_and_refuses_bad_phase(tmp_path):
    omap = OrientationMap.from_arrays(euler=np.zeros((1, 2, 3)), phases=[PhaseInfo(1, "X", point_group=None)])
    with pytest.raises(CtfFormatError, match="has no CTF code"):
        write_ctf(omap, tmp_path / "x.ctf")
    assert list(tmp_path.iterdir()) == []
