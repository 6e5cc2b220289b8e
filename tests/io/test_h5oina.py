"""Oxford Instruments H5OINA: the vendor files, the writer's round trip in every version, placement, bad files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.geometry.pattern_centre import convert_pc
from kikuchi.io.h5oina import H5OINAMap, VERSIONS, write_h5oina
from kikuchi.io.source import MapFileError, MapFileWarning, MapPositionError, identify
from tests.io._vendor import assert_matches_manifest, manifest, vendor_file

OXFORD = ["oxford_kpdummy_v6.h5oina", "oxford_kpdummy_v7.h5oina", "oxford_custom_v7_lzf.h5oina"]
ROWS, COLS, H, W = 3, 4, 6, 5  # non-square patterns: PC aspect errors show


def marked(rows=ROWS, cols=COLS, dtype=np.uint8) -> np.ndarray:
    """Patterns that say where they belong: [0, 0] flat index, [0, 1] row, [0, 2] col, the rest a gradient."""
    p = (np.arange(rows * cols * H * W).reshape(rows, cols, H, W) % 97 + 20).astype(dtype)
    r, c = np.divmod(np.arange(rows * cols), cols)
    p.reshape(-1, H, W)[:, 0, :3] = np.stack([np.arange(rows * cols), r, c], axis=1)
    return p


def pc_grid(rows=ROWS, cols=COLS) -> np.ndarray:
    """A PC that changes with the position (Oxford convention)."""
    r, c = np.mgrid[0:rows, 0:cols]
    return np.stack([0.45 + 0.01 * c, 0.55 + 0.005 * r, 0.5 + 0.002 * (r * cols + c)], axis=-1)


@pytest.fixture
def h5oina(tmp_path):
    """A 3 x 4 map of 6 x 5 patterns, version 7.0, processed and unprocessed, per-point PC."""
    path = tmp_path / "map.h5oina"
    raw = marked().astype(np.int16) * 10 + 7
    write_h5oina(path, marked(), step_um=(1.0, 2.0), pc_oxford=pc_grid(), version="7.0", unprocessed=raw,
                 static_background=np.full((H, W), 9, np.uint8))
    return path


def edit(path, fn) -> None:
    with h5py.File(path, "r+") as f:
        fn(f)


# -- the vendor files ---------------------------------------------------------------------
@pytest.mark.parametrize("name", OXFORD)
def test_vendor_file_is_recognised_by_content_and_matches_manifest(name):
    path = vendor_file(name)
    assert identify(path).name == "h5oina"
    with kikuchi.open(path) as m:
        assert isinstance(m, H5OINAMap) and m.format == "h5oina"
        assert m.dataset == "Patterns" and m.datasets == ["Patterns", "RawPatterns"]
        assert m.placed_by == "X/Y" and m.is_row_major
        assert m.notes == []
        assert_matches_manifest(m, name)
        json.dumps(m.describe())


@pytest.mark.parametrize("name", ["oxford_kpdummy_v6.h5oina", "oxford_kpdummy_v7.h5oina"])
def test_kikuchipy_dummy_geometry(name):
    """kikuchipy's dummy: PC (1, 1, 1) Oxford, Tilt Angle 1.22 rad, Detector Orientation Euler (0, 91.5°, 0)."""
    with kikuchi.open(vendor_file(name)) as m:
        pc = m.pattern_centre
        assert manifest()[name]["pc_oxford_all"] == [1.0, 1.0, 1.0]
        assert pc.file_convention == "oxford" and pc.convention == "bruker" and pc.is_uniform
        assert pc.mean == pytest.approx((1.0, 0.0, 1.0))  # square patterns: (x, 1 - y, z)
        assert m.sample_tilt_deg == 69.9 and m.camera_tilt_deg == 1.5
        assert m.kv == 20.0 and m.binning == 17  # "17x17 (60x60 px)": 1024 / 60
        with h5py.File(m.path) as f:
            np.testing.assert_array_equal(m.static_background, f["1/EBSD/Header/Processed Static Background"][()])
            stored = f["1/EBSD/Data/Euler"][()]
        np.testing.assert_allclose(m.euler.reshape(-1, 3), stored, rtol=1e-6)
        assert m.phase_id.tolist() == [[1] * 3] * 3
        assert m.point_data()["Band Contrast"].shape == (9,)
        assert m.with_dataset("RawPatterns").static_background is None  # no Unprocessed Static Background here


def test_custom_file_pc_per_point_and_header():
    name = "oxford_custom_v7_lzf.h5oina"
    e = manifest()[name]
    with kikuchi.open(vendor_file(name)) as m:
        pc = m.pattern_centre
        got = np.stack([pc.pcx, pc.pcy, pc.dd], axis=-1).reshape(-1, 3)
        np.testing.assert_allclose(got, e["pc_bruker_map_order"], atol=1e-6)
        # 48 x 60: Bruker y = 1 - y* 60/48, DD = z* 60/48, and back again
        assert got[0] == pytest.approx([0.45, 1 - 0.55 * 60 / 48, 0.5 * 60 / 48], abs=1e-6)
        back = convert_pc(got, "bruker", "oxford", shape=(48, 60))
        np.testing.assert_allclose(back, e["pc_oxford_map_order"], atol=1e-6)
        assert m.camera_tilt_deg == 4.0 and m.sample_tilt_deg == 70.0 and m.binning == 8  # Speed 2 (156x128 px)
        assert m.phases == [{"id": 1, "name": "Nickel", "space_group": None, "laue_group": "m-3m",
                             "lattice": [0.352, 0.352, 0.352, 90.0, 90.0, 90.0]}]
        d = m.describe()
        assert d["compression"] == "lzf" and d["hdf5_chunk_patterns"] == 1 and d["format_version"] == "7.0"
        assert m.chunk_patterns == 12  # one-pattern LZF chunks are read many at a time


def test_custom_file_processed_and_unprocessed():
    path = vendor_file("oxford_custom_v7_lzf.h5oina")
    with kikuchi.open(path) as processed, kikuchi.open(path, dataset="Unprocessed Patterns") as raw:
        assert raw.dataset == "RawPatterns" and str(raw.dtype) == "int16" and str(processed.dtype) == "uint8"
        np.testing.assert_array_equal(raw.read_all(), processed.read_all().astype(np.int16) * 10 + 7)
        np.testing.assert_array_equal(raw.static_background, processed.static_background.astype(np.int16) * 10)
        assert raw.open_options == {"format": "h5oina", "scan": "1", "dataset": "RawPatterns"}
        with kikuchi.open(path, **raw.open_options) as again:
            assert again.dataset == "RawPatterns" and again.pattern(2, 3)[0, 0] == 117


# -- the writer's round trip --------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("lzf", [False, True])
def test_round_trip_every_version(tmp_path, version, lzf):
    path = tmp_path / "x.h5oina"
    patterns, raw = marked(), marked().astype(np.int16) * 10 + 7
    write_h5oina(path, patterns, step_um=(0.5, 2.0), pc_oxford=pc_grid(), tilt_deg=65.0, version=version, lzf=lzf,
                 unprocessed=raw, static_background=np.full((H, W), 9, np.uint8), camera_tilt_deg=8.0, kv=15.0,
                 camera_mode="4x4 (311x256 px)")
    with h5py.File(path) as f:  # the header layouts of the versions
        shape = {"5.0": (), "6.0": (), "7.0": (1,), "8.0": (1, 1)}[version]
        assert f["1/EBSD/Header/X Cells"].shape == shape
        assert ("Camera Mode" in f["1/EBSD/Header"]) == (version >= "7.0")
        assert f["1/EBSD/Data/Processed Patterns"].compression == ("lzf" if lzf else None)
    with kikuchi.open(path) as m:
        assert (m.nav_shape, m.pattern_shape, m.step_um) == ((ROWS, COLS), (H, W), (0.5, 2.0))
        assert m.version == version and m.notes == []
        np.testing.assert_array_equal(m.read_all(), patterns)
        pc = m.pattern_centre
        expected = convert_pc(pc_grid(), "oxford", "bruker", shape=(H, W))
        np.testing.assert_allclose(np.stack([pc.pcx, pc.pcy, pc.dd], axis=-1), expected, atol=1e-6)
        assert (m.sample_tilt_deg, m.camera_tilt_deg, m.kv, m.binning) == (65.0, 8.0, 15.0, 4)
        assert m.static_background.dtype == np.uint8 and m.static_background[0, 0] == 9
        assert np.isnan(m.euler).all()  # Phase 0: not indexed, no orientation
        with m.with_dataset("RawPatterns") as r:
            np.testing.assert_array_equal(r.read_all(), raw)
            assert r.static_background.dtype == np.int16


def test_writer_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match="Format Version '4.0'"):
        write_h5oina(tmp_path / "a.h5oina", marked(), version="4.0")
    with pytest.raises(ValueError, match=r"\(rows, cols, height, width\), got shape \(12, 6, 5\)"):
        write_h5oina(tmp_path / "a.h5oina", marked().reshape(-1, H, W))
    assert not (tmp_path / "a.h5oina").exists()


def test_line_scan_y_step_zero(tmp_path):
    path = write_h5oina(tmp_path / "line.h5oina", marked(1, 5), step_um=(0.0, 0.25))
    with kikuchi.open(path) as m:
        assert m.nav_shape == (1, 5) and m.step_um == (0.25, 0.25) and m.placed_by == "X/Y"
        assert m.binning == 1  # no camera mode: unknown
        assert [int(m.pattern(0, c)[0, 2]) for c in range(5)] == [0, 1, 2, 3, 4]


# -- laziness and speed ------------------------------------------------------------------------
def test_nothing_of_the_patterns_is_read_at_open_and_one_read_for_all(h5oina, monkeypatch):
    calls = []
    monkeypatch.setattr(H5OINAMap, "_read_range", lambda self, a, b, out: calls.append((a, b)) or out.fill(1))
    with kikuchi.open(h5oina) as m:
        m.describe(), m.pattern_centre, m.euler, m.point_data(), m.static_background
        assert calls == []
        m.read_all()
        assert calls == [(0, ROWS * COLS)]  # one read, no Python per pattern


def test_read_chunk_and_iter_chunks_cover_the_file(tmp_path):
    path = write_h5oina(tmp_path / "c.h5oina", marked(5, 7), lzf=True)
    with kikuchi.open(path) as m:
        assert m.chunk_patterns == 35
        np.testing.assert_array_equal(m.read_chunk(0), marked(5, 7).reshape(-1, H, W))
        assert m.read_chunk(0, cancel=lambda: True) is None
    path = write_h5oina(tmp_path / "d.h5oina", marked(5, 7), chunks=10)
    with kikuchi.open(path) as m:
        assert m.chunk_patterns == 30  # whole stored chunks of 10, about 1 MiB at most
        np.testing.assert_array_equal(m.read_chunk(1), marked(5, 7).reshape(-1, H, W)[30:])
        assert sum(b - a for a, b, _ in m.iter_chunks()) == 35


# -- where each pattern goes -------------------------------------------------------------------------
def test_stopped_acquisition_reads_the_points_it_has(tmp_path):
    path = write_h5oina(tmp_path / "stopped.h5oina", marked(), pc_oxford=pc_grid(), n_acquired=7)
    with pytest.warns(MapFileWarning, match=r"stopped.h5oina: '/1/EBSD/Data/Processed Patterns' holds 7 patterns for the 3 x 4 map .*5 points"):
        m = kikuchi.open(path)
    with m:
        assert m.n_patterns == 7 and m.index_map.ravel().tolist() == [*range(7), -1, -1, -1, -1, -1]
        data = m.read_all()
        np.testing.assert_array_equal(data.reshape(-1, H, W)[:7], marked().reshape(-1, H, W)[:7])
        assert not data.reshape(-1, H, W)[7:].any()
        assert np.isnan(m.pattern_centre.pcx[1, 3]) and np.isfinite(m.pattern_centre.pcx[1, 2])
        with pytest.raises(MapPositionError, match=r"no pattern at map position \(row 2, col 0\)"):
            m.pattern(2, 0)
        assert "acquisition stopped early" in m.describe()["notes"][0]


def test_stopped_acquisition_with_full_length_data(tmp_path):
    """Per-point data for every point, patterns only for the first 5: orientations stay, PC only where patterns are."""
    path = write_h5oina(tmp_path / "s.h5oina", marked(), pc_oxford=pc_grid())

    def cut(f):
        p = f["1/EBSD/Data/Processed Patterns"][:5]
        del f["1/EBSD/Data/Processed Patterns"]
        f["1/EBSD/Data/Processed Patterns"] = p
        f["1/EBSD/Data/Phase"][...] = 1
        f["1/EBSD/Data/Euler"][...] = 0.25

    edit(path, cut)
    with pytest.warns(MapFileWarning, match="holds 5 patterns for the 3 x 4 map"):
        m = kikuchi.open(path)
    with m:
        assert (m.index_map >= 0).sum() == 5
        assert np.all(m.euler == 0.25)
        assert np.isfinite(m.pattern_centre.pcx).sum() == 5


def test_patterns_placed_by_position_when_stored_out_of_order(tmp_path):
    path = write_h5oina(tmp_path / "o.h5oina", marked(), pc_oxford=pc_grid())
    order = np.random.default_rng(1).permutation(ROWS * COLS)

    def shuffle(f):
        d = f["1/EBSD/Data"]
        for name in ("Processed Patterns", "X", "Y", "Beam Position X", "Beam Position Y", "Pattern Center X"):
            d[name][...] = d[name][()][order]

    edit(path, shuffle)
    with kikuchi.open(path) as m:
        assert not m.is_row_major and m.describe()["storage_order"] == "by beam position"
        np.testing.assert_array_equal(m.read_all(), marked())
        assert m.index_map.ravel()[order].tolist() == list(range(ROWS * COLS))
        np.testing.assert_allclose(m.pattern_centre.pcx, convert_pc(pc_grid(), "oxford", "bruker", shape=(H, W))[..., 0], atol=1e-6)


def test_beam_positions_when_x_y_are_missing(tmp_path):
    path = write_h5oina(tmp_path / "b.h5oina", marked())

    def drop(f):
        del f["1/EBSD/Data/X"], f["1/EBSD/Data/Y"]

    edit(path, drop)
    with kikuchi.open(path) as m:
        assert m.placed_by == "Beam Position X/Beam Position Y"
        np.testing.assert_array_equal(m.read_all(), marked())

    def shift(f):  # the electron image's centre is not the map's
        f["1/EBSD/Data/Beam Position X"][...] += 13.0
        f["1/EBSD/Data/Beam Position Y"][...] -= 7.0

    edit(path, shift)
    with kikuchi.open(path) as m:
        np.testing.assert_array_equal(m.read_all(), marked())


def test_inconsistent_positions_fall_back_with_a_warning(tmp_path):
    path = write_h5oina(tmp_path / "p.h5oina", marked(), step_um=(1.0, 2.0))
    edit(path, lambda f: f["1/EBSD/Data/X"].__setitem__(3, 5.0))  # 2.5 steps
    with pytest.warns(MapFileWarning, match=r"'X' of point 3 \(5 µm\) is not a whole number of 2 µm steps: patterns placed by Beam Position"):
        m = kikuchi.open(path)
    with m:
        np.testing.assert_array_equal(m.read_all(), marked())
    edit(path, lambda f: f["1/EBSD/Data/Beam Position X"].__setitem__(slice(None), 1.0))  # all at one position
    with pytest.warns(MapFileWarning, match=r"share a position .*: patterns placed row-major"):
        m = kikuchi.open(path)
    with m:
        assert m.placed_by == "row-major"
        np.testing.assert_array_equal(m.read_all(), marked())


def test_more_patterns_than_points(tmp_path):
    path = write_h5oina(tmp_path / "x.h5oina", marked())
    edit(path, lambda f: f["1/EBSD/Header/X Cells"].__setitem__((), 3))
    with pytest.warns(MapFileWarning) as record:
        m = kikuchi.open(path)
    with m:
        messages = " | ".join(str(w.message) for w in record)
        assert "'X' of point 3 (3 µm) is outside the 3 columns; 'Beam Position X' of point 0" in messages
        assert "patterns placed row-major" in messages
        assert "holds 12 patterns for the 3 x 3 map: 3 of them are not on the map" in messages
        assert m.nav_shape == (3, 3) and m.index_map.max() == 8


# -- bad files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f["1/EBSD/Header"].__delitem__("X Cells"), r"no '/1/EBSD/Header/X Cells' \(the number of map columns, mandatory"),
        (lambda f: (f["1/EBSD/Header"].__delitem__("Y Step"), f["1/EBSD/Header"].create_dataset("Y Step", data="abc")),
         r"'/1/EBSD/Header/Y Step' is 'abc', not a number"),
        (lambda f: (f["1/EBSD/Header"].__delitem__("Tilt Angle"), f["1/EBSD/Header"].create_dataset("Tilt Angle", data=[b"70"] * 3)),
         r"'/1/EBSD/Header/Tilt Angle' is .*, not a number"),
        (lambda f: f["1/EBSD/Header/Y Cells"].__setitem__((), 0), r"'/1/EBSD/Header/Y Cells' is 0; expected a positive whole number of map rows"),
        (lambda f: (f["1/EBSD/Data"].__delitem__("Processed Patterns"),
                    f["1/EBSD/Data"].create_dataset("Processed Patterns", shape=(0, H, W), dtype=np.uint8)),
         r"'/1/EBSD/Data/Processed Patterns' holds no patterns \(shape \(0, 6, 5\)\)"),
        (lambda f: (f["1/EBSD/Data"].__delitem__("Processed Patterns"),
                    f["1/EBSD/Data"].create_dataset("Processed Patterns", shape=(12, 0, W), dtype=np.uint8)),
         r"'/1/EBSD/Data/Processed Patterns' has shape \(12, 0, 5\): patterns of zero size"),
        (lambda f: (f["1/EBSD/Data"].__delitem__("Processed Patterns"),
                    f["1/EBSD/Data"].create_dataset("Processed Patterns", data=np.zeros((12, 30), np.uint8))),
         r"'/1/EBSD/Data/Processed Patterns' has shape \(12, 30\); patterns are \(N, height, width\)"),
        (lambda f: f["1/EBSD/Data"].__delitem__("Processed Patterns"),
         r"no EBSD patterns \('Processed Patterns' or 'Unprocessed Patterns'\) in any scan; '1/EBSD/Data' holds Band Contrast"),
        (lambda f: f["1/EBSD"].__delitem__("Header"), r"no '/1/EBSD/Header' group"),
    ],
)
def test_bad_files_name_the_file_and_the_fault(tmp_path, change, message):
    path = write_h5oina(tmp_path / "bad.h5oina", marked())
    edit(path, change)
    with pytest.raises(MapFileError, match=rf"bad.h5oina: {message}"):
        kikuchi.open(path)


def test_bad_options(h5oina):
    with pytest.raises(MapFileError, match=r"map.h5oina: no pattern dataset 'Foo' in scan 1 \(has 'Patterns' \(Processed Patterns\), 'RawPatterns'"):
        kikuchi.open(h5oina, dataset="Foo")
    with pytest.raises(MapFileError, match=r"map.h5oina: no scan '2' with an EBSD group \(scans: 1\)"):
        kikuchi.open(h5oina, scan=2)


@pytest.mark.parametrize(
    ("change", "message", "check"),
    [
        (lambda f: f["1/EBSD/Header/Pattern Height"].__setitem__(..., 60),
         r"'/1/EBSD/Header/Pattern Height' is 60 but the patterns in '/1/EBSD/Data/Processed Patterns' are 6 x 5; the stored size is used",
         lambda m: m.pattern_shape == (H, W)),
        (lambda f: f["1/EBSD/Header"].__delitem__("X Step"), r"'/1/EBSD/Header/X Step' is missing; a step of 1 µm is assumed",
         lambda m: m.step_um == (1.0, 1.0)),
        (lambda f: (f["1/EBSD/Header"].__delitem__("Processed Static Background"),
                    f["1/EBSD/Header"].create_dataset("Processed Static Background", data=np.zeros((5, 6), np.uint8))),
         r"'/1/EBSD/Header/Processed Static Background' has shape \(5, 6\), not the patterns' \(6, 5\); no static background",
         lambda m: m.static_background is None),
        (lambda f: (f.__delitem__("Format Version"), f.create_dataset("Format Version", data=np.array([b"9.0"]))),
         r"Format Version 9.0: kikuchi reads H5OINA 5.0-8.0", lambda m: m.version == "9.0"),
        (lambda f: f["1/EBSD/Header/Tilt Angle"].__setitem__(..., 70.0), r"'Tilt Angle' is 70: read as degrees",
         lambda m: m.sample_tilt_deg == 70.0),
    ],
)
def test_oddities_warn_and_are_read_around(tmp_path, change, message, check):
    path = write_h5oina(tmp_path / "odd.h5oina", marked(), version="7.0", static_background=np.ones((H, W)))
    edit(path, change)
    with pytest.warns(MapFileWarning, match=rf"odd.h5oina: {message}"):
        m = kikuchi.open(path)
        m.sample_tilt_deg
    with m:
        assert check(m)
        np.testing.assert_array_equal(m.read_all(), marked())


def test_non_numeric_pattern_centre_is_ignored_with_a_warning(tmp_path):
    path = write_h5oina(tmp_path / "pc.h5oina", marked(), pc_oxford=(0.5, 0.5, 0.6))

    def strings(f):
        del f["1/EBSD/Data/Pattern Center X"]
        f["1/EBSD/Data/Pattern Center X"] = np.array([b"0.5"] * 12)

    edit(path, strings)
    with pytest.warns(MapFileWarning, match=r"'/1/EBSD/Data/Pattern Center X' holds \|S3 values, not numbers; ignored"):
        with kikuchi.open(path) as m:  # said at opening, where the geometry is checked
            assert m.pattern_centre is None


def test_content_not_extension_decides(tmp_path):
    path = write_h5oina(tmp_path / "renamed.h5", marked())
    assert identify(path).name == "h5oina"
    other = tmp_path / "other.h5oina"
    with h5py.File(other, "w") as f:
        f["Format Version"] = "7.0"
        f["Manufacturer"] = "Someone else"
    with pytest.raises(MapFileError, match=r"other.h5oina: no scan group with EBSD data"):
        kikuchi.open(other)  # the extension picks H5OINA; its reader says what is missing


def test_points_outside_an_irregular_acquisition_area_have_no_pattern(tmp_path):
    """H5OINA sets the data of points outside the acquisition area to NaN: those patterns are not on the map."""
    path = write_h5oina(tmp_path / "roi.h5oina", marked())

    def outside(f):
        for name in ("X", "Y"):
            f[f"1/EBSD/Data/{name}"][[0, 5]] = np.nan

    edit(path, outside)
    with kikuchi.open(path) as m:
        assert m.notes == [] and m.placed_by == "X/Y"
        assert m.index_map[0, 0] == -1 and m.index_map[1, 1] == -1 and (m.index_map >= 0).sum() == 10
        assert m.pattern(1, 2)[0, 0] == 6 and not m.read_all()[1, 1].any()
