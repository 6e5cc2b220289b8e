"""EDAX OIM h5ebsd: the vendor files, OIM 7.2 names, hexagonal grids, the pattern centre, bad files."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.geometry.pattern_centre import convert_pc
from kikuchi.io import edax_h5
from kikuchi.io._h5 import H5Patterns
from kikuchi.io.edax_h5 import EdaxH5EBSD, hex_index_map, write_edax_h5
from kikuchi.io.source import MapFileError, MapFileWarning, MapPositionError, identify
from tests.conftest import shared_file
from tests.io._vendor import assert_matches_manifest, manifest, vendor_file

CUSTOM = "edax_custom_oim86.h5"


def marked(rows: int, cols: int, h: int = 6, w: int = 5, dtype=np.uint16) -> np.ndarray:
    """(rows, cols, h, w) patterns that say where they belong: [0, 0] flat index, [0, 1] row, [0, 2] col."""
    rng = np.random.default_rng(rows * 100 + cols)
    p = rng.integers(0, 200, size=(rows, cols, h, w)).astype(dtype)
    r, c = np.mgrid[:rows, :cols]
    p[..., 0, 0], p[..., 0, 1], p[..., 0, 2] = r * cols + c, r, c
    return p


def copy_of(name: str, tmp_path):
    path = tmp_path / name
    shutil.copyfile(vendor_file(name), path)
    return path


def edit(path, func) -> None:
    with h5py.File(path, "a") as f:
        func(f)


def _set(path: str, value):
    def func(f):
        del f[path]
        f[path] = value

    return func


# -- the vendor files ------------------------------------------------------------------


def test_custom_oim86_file_opens_by_content_and_matches_the_manifest():
    path = vendor_file(CUSTOM)
    entry = manifest()[CUSTOM]
    assert identify(path).name == "edax_h5"
    with kikuchi.open(path) as m:
        assert isinstance(m, EdaxH5EBSD) and m.scan == "Scan 1" and m.notes == []
        assert_matches_manifest(m, CUSTOM)
        assert m.is_row_major and m.grid_type == "square" and m.dataset == "RawPatterns"
        assert m.camera_tilt_deg == 10.0 and m.camera_azimuthal_deg == 0.0
        pc = m.pattern_centre
        assert pc.convention == "bruker" and pc.file_convention == "edax" and pc.is_uniform
        # 48 x 60: PCx = x*, PCy = 1 - y*, DD = z* min(w, h) / h = z*
        np.testing.assert_allclose(pc.mean, entry["pc_bruker_kikuchipy"], atol=1e-6)
        np.testing.assert_allclose(m.pattern_centre_edax, entry["pc_tsl"], atol=1e-6)
        assert m.euler.shape == (3, 4, 3) and m.phase_id.tolist() == [[0] * 4] * 3
        assert set(m.point_data()) >= {"CI", "IQ", "Fit", "Phase", "X Position", "Y Position"}
        d = m.describe()
        json.dumps(d)
        assert d["version"].startswith("OIM Analysis 8.6") and d["working_distance_mm"] == 15.0


def test_kikuchipys_oim72_file_with_patterns_and_an_uncalibrated_pc():
    path = shared_file("kikuchipy/edax_h5ebsd/patterns.h5")  # ' Manufacturer', ' Version' (OIM 7.2), 'Scan 1'
    assert identify(path).name == "edax_h5"
    with pytest.warns(MapFileWarning, match=r"'Pattern Center Calibration' is \(0, 0, 0\): z\* <= 0 is no calibrated pattern centre"):
        m = kikuchi.open(path)
    with m:
        assert (m.nav_shape, m.pattern_shape, str(m.dtype)) == ((3, 3), (60, 60), "uint8")
        assert m.pattern_centre is None and m.sample_tilt_deg == 75.7 and m.step_um == (1.5, 1.5)
        sums = m.read_all().reshape(9, -1).sum(axis=1, dtype=np.int64)
        # the same nine Ni patterns as kikuchipy's Bruker dummy; kikuchipy wrote their sums to 'SEM Signal'
        assert sums.tolist() == manifest()["bruker_kpdummy_full.h5"]["pattern_sums_map_order"]
        assert sums.tolist() == m.point_data()["SEM Signal"][()].tolist()
        assert m.phases[0]["name"] == "Nickel" and m.phases[0]["lattice"] == [0.356, 0.356, 0.356, 90.0, 90.0, 90.0]
        assert m.phases[0]["point_group"] == "Cubic (Oh) [m3m]"
        np.testing.assert_allclose(m.euler, 3.14, atol=1e-6)  # radians as stored


def test_orientation_only_file_gets_a_clear_error():
    path = vendor_file("real/EbsdLib_EdaxAngOnly.h5")
    assert identify(path).name == "edax_h5"  # recognised by its ' Manufacturer' (leading space), OIM 7.2
    with pytest.raises(MapFileError, match=r"an EDAX OIM file with orientations but no patterns .*read it as an orientation map") as err:
        kikuchi.open(path)
    assert str(err.value).startswith(f"{path}: ") and "'Scan_1/EBSD/Data' has no 'Pattern' dataset" in str(err.value)


# -- OIM 7.2 names, tilt sign, PC ---------------------------------------------------------


def test_oim72_layout_with_leading_spaces_and_negative_tilt(tmp_path):
    pats = marked(3, 4, h=8, w=6, dtype=np.uint8)
    path = write_edax_h5(tmp_path / "v72.h5", pats, oim_version="7.2", sample_tilt_deg=-70.0, step_um=(0.5, 0.5))
    with h5py.File(path) as f:
        assert " Manufacturer" in f and " Version" in f and "Scan_1" in f
    assert identify(path).name == "edax_h5"
    with pytest.warns(MapFileWarning, match=r"'Sample Tilt' is -70° in the file; read as 70°"):
        m = kikuchi.open(path)
    with m:
        assert m.scan == "Scan_1" and m.sample_tilt_deg == 70.0 and len(m.notes) == 1
        np.testing.assert_array_equal(m.read_all(), pats)
        assert m.describe()["version"].startswith("OIM Analysis 7.2")
        with pytest.warns(MapFileWarning, match="Sample Tilt"), kikuchi.open(path, **m.open_options) as again:
            assert again.sample_tilt_deg == 70.0 and again.scan == "Scan_1"


def test_names_match_with_stray_spaces(tmp_path):
    path = write_edax_h5(tmp_path / "s.h5", marked(2, 3))

    def spaced(f):
        f.move("Scan 1/EBSD/Header/nColumns", "Scan 1/EBSD/Header/ nColumns")
        f.move("Scan 1/EBSD/Header/Step X", "Scan 1/EBSD/Header/Step X ")
        f.move("Scan 1/EBSD/Data/Pattern", "Scan 1/EBSD/Data/ Pattern")

    edit(path, spaced)
    with kikuchi.open(path) as m:
        assert m.nav_shape == (2, 3) and m.step_um == (1.0, 1.0)
        np.testing.assert_array_equal(m.read_all(), marked(2, 3))


@pytest.mark.parametrize("shape", [(48, 60), (60, 48), (50, 50)])
def test_pattern_centre_converted_with_the_detector_aspect(tmp_path, shape):
    h, w = shape
    edax = np.array([0.45, 0.72, 0.63])
    path = write_edax_h5(tmp_path / "pc.h5", np.zeros((2, 2, h, w), np.uint8), pc=edax)
    with kikuchi.open(path) as m:
        pc = m.pattern_centre
        expected = [edax[0], 1 - edax[1], edax[2] * min(h, w) / h]
        np.testing.assert_allclose(pc.mean, expected, atol=1e-6)
        np.testing.assert_allclose(pc.mean, convert_pc(edax, "edax", "bruker", shape=(h, w)), atol=1e-6)
        np.testing.assert_allclose(m.detector.pc_as("edax").reshape(-1, 3)[0], edax, atol=1e-6)
    # a Bruker PC given to the writer is stored as EDAX's and read back as the same Bruker PC
    path = write_edax_h5(tmp_path / "pc2.h5", np.zeros((1, 2, h, w), np.uint8), pc=(0.5, 0.3, 0.7), pc_convention="bruker")
    with kikuchi.open(path) as m:
        np.testing.assert_allclose(m.pattern_centre.mean, (0.5, 0.3, 0.7), atol=1e-6)


# -- hexagonal grids ------------------------------------------------------------------------


def test_hex_index_map():
    index_map, n = hex_index_map(4, 3)
    assert n == 10
    assert index_map.tolist() == [[0, 1, 2], [3, 4, -1], [5, 6, 7], [8, 9, -1]]


def test_hexagonal_grid_round_trip(tmp_path):
    pats = marked(5, 4)
    dx = 0.4
    path = write_edax_h5(tmp_path / "hex.h5", pats, grid="hexagonal", step_um=(dx * np.sqrt(3) / 2, dx), chunks=3)
    with h5py.File(path) as f:
        assert f["Scan 1/EBSD/Data/Pattern"].shape == (18, 6, 5)  # 3 rows of 4, 2 rows of 3
        assert f["Scan 1/EBSD/Data/X Position"][4:7].tolist() == pytest.approx([0.2, 0.6, 1.0])
    with kikuchi.open(path) as m:
        assert m.notes == [] and m.grid_type == "hexagonal" and m.hex_ncols == (4, 3)
        assert m.nav_shape == (5, 4) and m.n_patterns == 18
        assert (m.index_map[1::2, 3] == -1).all() and (m.index_map[::2] >= 0).all()
        with pytest.raises(MapPositionError, match=r"no pattern at map position \(row 1, col 3\)"):
            m.pattern(1, 3)
        data = m.read_all()
        have = m.index_map >= 0
        np.testing.assert_array_equal(data[have], pats[have])
        assert (data[~have] == 0).all()
        for k in (0, 4, 7, 17):  # storage order and map position agree
            r, c = np.argwhere(m.index_map == k)[0]
            np.testing.assert_array_equal(m.read(k, k + 1)[0], m[r, c])
        assert m.step_um == pytest.approx((dx * np.sqrt(3) / 2, dx))
        assert np.isnan(m.pattern_centre.pcx[1, 3]) and m.describe()["hex_ncols"] == [4, 3]


def test_hexagonal_grid_with_positions_of_another_layout(tmp_path):
    path = write_edax_h5(tmp_path / "hex.h5", marked(3, 4), grid="hexagonal")
    edit(path, lambda f: f["Scan 1/EBSD/Data/X Position"].__setitem__(slice(4, 7), [0.0, 1.0, 2.0]))
    with pytest.warns(MapFileWarning, match=r"do not follow the hexagonal layout assumed \(rows of 4 and 3 points"):
        kikuchi.open(path).close()


def test_truncated_hexagonal_grid(tmp_path):
    path = write_edax_h5(tmp_path / "hex.h5", marked(3, 4), grid="hexagonal")
    edit(path, _set("Scan 1/EBSD/Data/Pattern", np.ones((9, 6, 5), np.uint16)))
    with pytest.warns(MapFileWarning, match=r"holds 9 patterns for the hexagonal 3 x 4 map \(11 points: rows of 4 and 3\): the last 2"):
        m = kikuchi.open(path)
    with m:
        assert m.index_map.tolist() == [[0, 1, 2, 3], [4, 5, 6, -1], [7, 8, -1, -1]]


# -- round trips, laziness ----------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "chunks", "compression"), [(np.uint8, None, None), (np.uint16, 5, "gzip"), (np.uint16, False, None)])
def test_square_round_trip(tmp_path, dtype, chunks, compression):
    pats = marked(4, 6, dtype=dtype)
    euler = np.random.default_rng(2).uniform(0, np.pi, size=(4, 6, 3))
    phases = [{"name": "Nickel", "lattice": [0.3524, 0.3524, 0.3524, 90, 90, 90], "tsl_symmetry": 43, "formula": "Ni"}]
    path = write_edax_h5(tmp_path / "e.oh5", pats, chunks=chunks, compression=compression, euler=euler, phases=phases,
                         step_um=(0.3, 0.2), camera_tilt_deg=5.0)
    assert identify(path).name == "edax_h5"
    with kikuchi.open(path) as m:
        np.testing.assert_array_equal(m.read_all(), pats)
        np.testing.assert_array_equal(np.concatenate([b for _, _, b in m.iter_chunks()]), pats.reshape(24, 6, 5))
        if chunks == 5:
            assert m.chunk_patterns % 5 == 0 and m.describe()["compression"] == "gzip"
        np.testing.assert_allclose(m.euler, euler, atol=1e-6)  # radians as stored
        assert m.phases == [{"id": 1, "name": "Nickel", "space_group": None, "lattice": [0.3524, 0.3524, 0.3524, 90.0, 90.0, 90.0],
                             "formula": "Ni", "tsl_symmetry": 43}]
        assert (m.phase_id == 1).all()
        assert (m.step_um, m.camera_tilt_deg, m.sample_tilt_deg) == ((0.3, 0.2), 5.0, 70.0)


def test_phases_numbered_from_zero(tmp_path):
    path = write_edax_h5(tmp_path / "p.h5", marked(2, 2), phases=[{"name": "Fe", "lattice": [0.287, 0.287, 0.287, 90, 90, 90]}])

    def renumber(f):
        f.move("Scan 1/EBSD/Header/Phase/1", "Scan 1/EBSD/Header/Phase/0")
        f["Scan 1/EBSD/Data/Phase"][...] = 0

    edit(path, renumber)
    with kikuchi.open(path) as m:
        assert [p["id"] for p in m.phases] == [1] and (m.phase_id == 1).all()


def test_write_through_the_format_and_dataset_names(tmp_path):
    with kikuchi.open(vendor_file(CUSTOM)) as m:
        out = edax_h5.FORMAT.writes(tmp_path / "copy.h5", m)
        with kikuchi.open(out, dataset="Pattern") as copy:
            np.testing.assert_array_equal(copy.read_all(), m.read_all())
            np.testing.assert_allclose(copy.pattern_centre.mean, m.pattern_centre.mean, atol=1e-6)
            assert copy.step_um == m.step_um
        with pytest.raises(MapFileError, match=r"no pattern dataset 'Patterns' \(an EDAX file has RawPatterns, stored as 'Pattern'\)"):
            kikuchi.open(m.path, dataset="Patterns")


def test_opening_reads_no_pattern(tmp_path, monkeypatch):
    path = write_edax_h5(tmp_path / "e.h5", marked(3, 4), grid="hexagonal")

    def refuse(*args, **kwargs):
        raise AssertionError("patterns read")

    monkeypatch.setattr(H5Patterns, "read_into", refuse)
    monkeypatch.setattr(H5Patterns, "decode_chunk", refuse)
    monkeypatch.setattr(h5py.Dataset, "read_direct", refuse)
    with kikuchi.open(path) as m:
        m.describe(), m.pattern_centre, m.euler, m.point_data()
    monkeypatch.undo()
    with kikuchi.open(path) as m:
        assert m.read(4, 5)[0, 0, :3].tolist() == [4, 1, 0]


def test_oim_layout_without_manufacturer_is_recognised(tmp_path):
    path = copy_of(CUSTOM, tmp_path)
    edit(path, lambda f: f.__delitem__("Manufacturer"))
    assert identify(path).name == "edax_h5"


# -- edge cases -----------------------------------------------------------------------------


def test_truncated_square_map(tmp_path):
    path = copy_of(CUSTOM, tmp_path)
    edit(path, lambda f: _set("Scan 1/EBSD/Data/Pattern", f["Scan 1/EBSD/Data/Pattern"][:10])(f))
    with pytest.warns(MapFileWarning, match=r"holds 10 patterns for the 3 x 4 map \(12 points\): the last 2 points have no pattern"):
        m = kikuchi.open(path)
    with m:
        assert m.index_map.ravel().tolist() == list(range(10)) + [-1, -1]
        sums = m.read_all().reshape(12, -1).sum(axis=1, dtype=np.int64)
        assert sums[:10].tolist() == manifest()[CUSTOM]["pattern_sums_map_order"][:10] and sums[10:].tolist() == [0, 0]
        assert np.isnan(m.pattern_centre.pcx[2, 2:]).all() and np.isnan(m.euler[2, 3]).all()


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda f: f.__delitem__("Scan 1/EBSD/Header/nRows"), r"header value 'Scan 1/EBSD/Header/nRows' is missing"),
        (_set("Scan 1/EBSD/Header/nColumns", np.zeros(0, np.int32)), r"'Scan 1/EBSD/Header/nColumns' is empty"),
        (_set("Scan 1/EBSD/Header/Step X", np.array([b"two"])), r"'Scan 1/EBSD/Header/Step X' is 'two', not a number"),
        (_set("Scan 1/EBSD/Header/Pattern Center Calibration/z-star", np.array([b"?"])),
         r"'Scan 1/EBSD/Header/Pattern Center Calibration/z-star' is '\?', not a number"),
        (_set("Scan 1/EBSD/Header/nRows", np.array([0], np.int32)), r"the header gives a map of nRows 0 x nColumns 4 points"),
        (_set("Scan 1/EBSD/Header/Grid Type", np.array([b"TriGrid"])), r"'Grid Type' is 'TriGrid'; expected 'SqrGrid' or 'HexGrid'"),
        (_set("Scan 1/EBSD/Data/Pattern", np.zeros((0, 48, 60), np.uint16)), r"'Scan 1/EBSD/Data/Pattern' holds no patterns \(shape \(0, 48, 60\)\)"),
        (_set("Scan 1/EBSD/Data/Pattern", np.zeros((12, 2880), np.uint16)), r"has shape \(12, 2880\); patterns are \(N, height, width\)"),
        (lambda f: (f.__delitem__("Scan 1/EBSD/Data/Pattern"), f.__delitem__("Scan 1/EBSD/Data/Phi1")),
         r"an EDAX OIM file without patterns \('Scan 1/EBSD/Data' has no 'Pattern' dataset\)"),
        (lambda f: f.__delitem__("Scan 1/EBSD/Header"), r"no 'Scan 1/EBSD/Header' group"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, func, message):
    path = copy_of(CUSTOM, tmp_path)
    edit(path, func)
    with pytest.raises(MapFileError, match=message) as err:
        kikuchi.open(path)
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda f: f.__delitem__("Scan 1/EBSD/Header/Grid Type"), r"no 'Grid Type' in the header; the map is read as a square grid"),
        (lambda f: f.__delitem__("Scan 1/EBSD/Header/Sample Tilt"), r"no 'Sample Tilt' in the header; the sample tilt is taken as 70°"),
        (lambda f: f.__delitem__("Scan 1/EBSD/Header/Step Y"), r"no 'Step Y' in the header; the step is taken as 1 µm"),
        (_set("Scan 1/EBSD/Header/Camera Azimuthal Angle", np.array([4.0], np.float32)), r"'Camera Azimuthal Angle' is 4°"),
        (lambda f: f.__delitem__("Scan 1/EBSD/Header/Pattern Center Calibration/y-star"),
         r"'Pattern Center Calibration' lacks y-star; the file's pattern centre is not used"),
        (_set("Scan 1/EBSD/Header/Pattern Height", np.array([60], np.int32)), r"header 'Pattern Height' is 60 but the patterns are 48 x 60"),
    ],
)
def test_oddities_are_read_around_with_a_warning(tmp_path, func, message):
    path = copy_of(CUSTOM, tmp_path)
    edit(path, func)
    with pytest.warns(MapFileWarning, match=message):
        m = kikuchi.open(path)
    with m:
        assert len(m.notes) == 1
        assert_matches_manifest(m, CUSTOM, pc=False)
        if "y-star" in message:
            assert m.pattern_centre is None


def test_unknown_scan(tmp_path):
    with pytest.raises(MapFileError, match=r"no scan 'Scan 2' with an 'EBSD' group \(scans: Scan 1\)"):
        kikuchi.open(vendor_file(CUSTOM), scan="Scan 2")
