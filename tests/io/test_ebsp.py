"""Oxford Instruments .ebsp pattern files: the vendor files, the writer's round trips, and broken files."""

from __future__ import annotations

import struct
import threading

import numpy as np
import pytest

import kikuchi
from kikuchi.io.ebsp import FORMAT, EbspFile, write_ebsp, write_ebsp_map
from kikuchi.io.source import MapFileError, MapFileWarning, Probe, identify
from tests.io._vendor import assert_matches_manifest, manifest, vendor_file

VENDOR_EBSP = sorted(name for name in manifest() if name.startswith("ebsp_"))
WITH_POSITIONS = [name for name in VENDOR_EBSP if name != "ebsp_v0_u8_3x4.ebsp"]


def encoded(rows: int, cols: int, h: int = 6, w: int = 7, dtype=np.uint8) -> np.ndarray:
    """(rows, cols, h, w) patterns that say where they belong: pixel (0, 0) = flat index, (0, 1) = row, (0, 2) = col."""
    p = (np.arange(rows * cols * h * w) % 97).astype(dtype).reshape(rows, cols, h, w)
    for r in range(rows):
        for c in range(cols):
            p[r, c, 0, :3] = (r * cols + c, r, c)
    if dtype == np.uint16:
        p[..., 1, :] += 40000  # values above 8 bits, so both bytes matter
    return p


def table_start(version: int) -> int:
    return 0 if version == 0 else 8 if version <= 3 else 9


def patch_int64(path, at: int, value: int) -> None:
    data = bytearray(path.read_bytes())
    data[at : at + 8] = struct.pack("<q", value)
    path.write_bytes(bytes(data))


def table_of(path, version: int, n: int) -> np.ndarray:
    return np.frombuffer(path.read_bytes()[table_start(version) : table_start(version) + 8 * n], "<i8").copy()


# -- the vendor files ---------------------------------------------------------------------
@pytest.mark.parametrize("name", WITH_POSITIONS)
def test_vendor_files_open_by_content_and_match_the_manifest(name):
    path = vendor_file(name)
    assert identify(path).name == "ebsp"
    assert FORMAT.sniff(Probe(path))
    with kikuchi.open(path) as m:
        assert isinstance(m, EbspFile) and m.format == "ebsp"
        assert m.version == int(name.split("_v")[1][0])
        assert m.notes == []
        data = assert_matches_manifest(m, name)
        assert m.pattern_centre is None
        d = m.describe()
        assert d["ebsp_version"] == m.version and d["format"] == "ebsp" and d["regular_layout"] is True
        # the same map again through its open options (the engine's workers)
        with kikuchi.open(path, **m.open_options) as again:
            np.testing.assert_array_equal(again.index_map, m.index_map)
            np.testing.assert_array_equal(again.read_all(), data)


def test_v0_has_no_positions_read_as_one_row_with_a_warning():
    path = vendor_file("ebsp_v0_u8_3x4.ebsp")
    assert identify(path).name == "ebsp"
    with pytest.warns(MapFileWarning, match=r"nothing in the file records the map shape .* 1 x 12 map; open with nav_shape"):
        m = kikuchi.open(path)
    with m:
        assert m.nav_shape == (1, 12) and m.version == 0 and m.step_um == (1.0, 1.0)
        sums = m.read_all().reshape(12, -1).sum(axis=1, dtype=np.int64)
        assert sums.tolist() == manifest()["ebsp_v0_u8_3x4.ebsp"]["pattern_sums_map_order"]
        assert m.open_options == {"format": "ebsp", "nav_shape": (1, 12)}
        assert "1 x 12 map" in m.notes[0]
        with kikuchi.open(path, **m.open_options) as again:  # no second warning
            assert again.nav_shape == (1, 12) and again.notes == []


def test_v0_with_nav_shape_and_step_matches_the_manifest():
    path = vendor_file("ebsp_v0_u8_3x4.ebsp")
    with kikuchi.open(path, nav_shape=(3, 4), step_um=(1.5, 1.5)) as m:
        assert m.notes == []
        assert_matches_manifest(m, "ebsp_v0_u8_3x4.ebsp")
        assert m.open_options == {"format": "ebsp", "nav_shape": (3, 4), "step_um": (1.5, 1.5)}


@pytest.mark.parametrize("name", ["ebsp_v2_u8_shuffled.ebsp", "ebsp_v6_u8_shuffled.ebsp"])
def test_shuffled_files_store_in_file_order_and_place_by_position(name):
    with kikuchi.open(vendor_file(name)) as m:
        assert not m.is_row_major
        assert m.describe()["storage_order"] == "by beam position"
        # storage order is the order in the file: the first pattern in the file is map point (0, 3)
        first = m.read(0, 1)[0]
        assert first[0, :3].tolist() == [3, 0, 3]
        assert m.index_map[0, 3] == 0 and m.index_map[0, 0] == 3
        x, y = m.beam_positions_um
        assert (x[0], y[0]) == (4.5, 0.0)
        assert m.pattern(2, 1)[0, :3].tolist() == [9, 2, 1]


def test_missing_patterns_have_no_index():
    with kikuchi.open(vendor_file("ebsp_v2_u8_missing.ebsp")) as m:
        assert m.n_patterns == 9
        assert np.flatnonzero(m.index_map.ravel() < 0).tolist() == [0, 5, 11]
        assert m.describe()["points_without_pattern"] == 3
        assert m.read_rows(0, 1, fill=7)[0, 0].min() == 7


def test_kikuchipy_file_rolled_offsets():
    with kikuchi.open(vendor_file("ebsp_kpdata_v2.ebsp")) as m:
        # the offsets table is rolled by one: map point (0, 0) is the last pattern in the file
        assert m.index_map.ravel().tolist() == [8, 0, 1, 2, 3, 4, 5, 6, 7]
        assert m.step_um == (1.5, 1.5)


def test_unequal_steps():
    with kikuchi.open(vendor_file("ebsp_v2_u8_unequalstep.ebsp")) as m:
        assert m.step_um == (1.0, 2.0) and m.nav_shape == (3, 4)


@pytest.mark.parametrize("name", ["ebsp_v5_u8_3x4.ebsp", "ebsp_v6_u8_shuffled.ebsp"])
def test_v5_headers_hold_the_grid_position(name):
    with kikuchi.open(vendor_file(name)) as m:
        rows, cols = m.positions
        data = m.point_data()
        np.testing.assert_array_equal(data["header_row"], rows)
        np.testing.assert_array_equal(data["header_col"], cols)


def test_v6_without_beam_positions_is_placed_by_its_headers(tmp_path):
    patterns = encoded(3, 4)
    order = np.array([5, 0, 11, 3, 1, 2, 4, 6, 7, 8, 9, 10])
    path = write_ebsp(tmp_path / "v6.ebsp", patterns, version=6, order=order)
    data = bytearray(path.read_bytes())
    for offset in table_of(path, 6, 12):
        end = int(offset) + 24 + 42
        data[end] = data[end + 9] = 0  # has_x, has_y: no beam position
        data[end + 1 : end + 9] = bytes(8)
    path.write_bytes(bytes(data))
    with kikuchi.open(path) as m:
        assert m.map_from == "offsets table, checked against the grid positions of the pattern headers"
        assert "beam_x_um" not in m.point_data()
        np.testing.assert_array_equal(m.read_all(), patterns)
        assert m.read(0, 1)[0, 0, :3].tolist() == [5, 1, 1]


def test_other_formats_are_not_claimed():
    for name in ("up1_v1_3x4.up1", "up1_v3_3x4.up1", "up2_v3_3x4.up2", "up2_kpdata_v3_hex.up2", "bruker_kpdummy_full.h5",
                 "nordif_kpdata/Pattern.dat"):
        assert not FORMAT.sniff(Probe(vendor_file(name))), name


# -- the writer -----------------------------------------------------------------------------
@pytest.mark.parametrize("version", range(7))
def test_round_trip_every_version(tmp_path, version):
    patterns = encoded(3, 5)
    path = write_ebsp(tmp_path / f"v{version}.ebsp", patterns, version=version, step_um=(0.5, 0.25))
    assert identify(path).name == "ebsp"
    options = {"nav_shape": (3, 5), "step_um": (0.5, 0.25)} if version == 0 else {}
    with kikuchi.open(path, **options) as m:
        assert m.version == version and m.notes == []
        assert m.nav_shape == (3, 5) and m.pattern_shape == (6, 7) and m.step_um == (0.5, 0.25)
        assert m.is_row_major
        np.testing.assert_array_equal(m.read_all(), patterns)
        if version >= 1:
            rows, cols = m.positions
            np.testing.assert_allclose(m.point_data()["beam_x_um"], cols * 0.25)
            np.testing.assert_allclose(m.point_data()["beam_y_um"], rows * 0.5)
    header = 24 if version >= 5 else 16
    footer = (0, 16, 18, 18, 18, 18, 18)[version]
    expected = table_start(version) + 8 * 15 + 15 * (header + 6 * 7 + footer)
    assert path.stat().st_size == expected


def test_round_trip_out_of_order_missing_16bit_centred(tmp_path, rng):
    patterns = encoded(4, 6, h=5, w=8, dtype=np.uint16)
    order = rng.permutation(24)
    missing = [0, 7, 23]
    path = write_ebsp(tmp_path / "m.ebsp", patterns, version=2, step_um=(0.3, 0.2), order=order, missing=missing,
                      origin_um=(-0.45, -0.5))
    with kikuchi.open(path) as m:
        assert m.dtype == np.uint16 and m.n_patterns == 21 and m.notes == []
        assert m.nav_shape == (4, 6)
        np.testing.assert_allclose(m.step_um, (0.3, 0.2))
        assert np.flatnonzero(m.index_map.ravel() < 0).tolist() == missing
        stored = order[~np.isin(order, missing)]
        np.testing.assert_array_equal(m.read(0, 21), patterns.reshape(24, 5, 8)[stored])  # storage order = file order
        full = m.read_all()
        keep = np.ones(24, bool)
        keep[missing] = False
        np.testing.assert_array_equal(full.reshape(24, 5, 8)[keep], patterns.reshape(24, 5, 8)[keep])
        assert (full.reshape(24, -1)[missing] == 0).all()


def test_missing_edge_columns_and_rows_keep_the_map(tmp_path):
    """Positions span less than the map when whole edge rows/columns are missing; the table gives the map back."""
    patterns = encoded(5, 6)
    missing = [r * 6 + 0 for r in range(5)] + [r * 6 + 5 for r in range(5)] + list(range(24, 30))
    path = write_ebsp(tmp_path / "edges.ebsp", patterns, missing=missing, step_um=(2.0, 1.0), origin_um=(10.0, 3.0))
    with kikuchi.open(path) as m:
        assert m.nav_shape == (5, 6) and m.n_patterns == 30 - len(set(missing))
        assert m.step_um == (2.0, 1.0)
        assert m.pattern(2, 3)[0, :3].tolist() == [15, 2, 3]
        assert (m.index_map[:, 0] == -1).all() and (m.index_map[4] == -1).all()


def test_positions_that_disagree_with_the_table_win(tmp_path):
    patterns = encoded(3, 4)
    path = write_ebsp(tmp_path / "swap.ebsp", patterns)
    table = table_of(path, 2, 12)
    patch_int64(path, 8 + 8 * 1, int(table[6]))  # entries 1 and 6 swapped: the footers still say where each pattern was taken
    patch_int64(path, 8 + 8 * 6, int(table[1]))
    with pytest.warns(MapFileWarning, match="do not fit one row-major map; patterns placed by beam position"):
        m = kikuchi.open(path)
    with m:
        np.testing.assert_array_equal(m.read_all(), patterns)


def test_single_row_and_single_column_maps(tmp_path):
    for shape in ((1, 9), (9, 1)):
        patterns = encoded(*shape)
        path = write_ebsp(tmp_path / f"line{shape[0]}.ebsp", patterns, step_um=(0.7, 0.7))
        with kikuchi.open(path) as m:
            assert m.nav_shape == shape and m.step_um == (0.7, 0.7)
            np.testing.assert_array_equal(m.read_all(), patterns)


def test_nav_shape_override(tmp_path):
    path = vendor_file("ebsp_v2_u8_3x4.ebsp")
    with kikuchi.open(path, nav_shape=(2, 6)) as m:
        assert m.nav_shape == (2, 6) and m.step_um == (1.5, 1.5)
        assert m.pattern(1, 0)[0, :3].tolist() == [6, 1, 2]  # table order, reshaped
        assert m.open_options == {"format": "ebsp", "nav_shape": (2, 6)}
        assert m.map_from.startswith("nav_shape option")
    with kikuchi.open(path, nav_shape=(4, 4)) as m:  # more points than patterns: the rest have none
        assert (m.index_map.ravel()[12:] == -1).all()
    with pytest.raises(MapFileError, match=r"ebsp_v2_u8_3x4.ebsp: the offsets table lists 12 map points, more than the 2 x 5 map"):
        kikuchi.open(path, nav_shape=(2, 5))


CTF_HEADER = (
    "Channel Text File\nPrj\tx.cpr\nAuthor\t[Unknown]\nJobMode\tGrid\nXCells\t4\nYCells\t3\nXStep\t1.5\nYStep\t1.5\n"
    "AcqE1\t0\nAcqE2\t0\nAcqE3\t0\nEuler angles refer to Sample Coordinate system (CS0)!\tMag\t400\tCoverage\t100\tDevice\t0"
    "\tKV\t15\tTiltAngle\t69.5\tTiltAxis\t0\nPhases\t1\n3.524;3.524;3.524\t90;90;90\tNi\t11\t225\n"
    "Phase\tX\tY\tBands\tError\tEuler1\tEuler2\tEuler3\tMAD\tBC\tBS\n"
)


def test_companion_ctf_gives_the_map(tmp_path):
    path = tmp_path / "scan.ebsp"
    path.write_bytes(vendor_file("ebsp_v0_u8_3x4.ebsp").read_bytes())
    (tmp_path / "scan.ctf").write_text(CTF_HEADER)
    with kikuchi.open(path) as m:
        assert m.notes == []
        assert_matches_manifest(m, "ebsp_v0_u8_3x4.ebsp")
        assert m.sample_tilt_deg == 69.5 and m.kv == 15.0
        assert m.describe()["companion"].endswith("scan.ctf")
        assert m.map_from == "companion scan.ctf (offsets table order)"


def test_companion_cpr_gives_the_map(tmp_path):
    path = tmp_path / "scan.ebsp"
    path.write_bytes(vendor_file("ebsp_v0_u8_3x4.ebsp").read_bytes())
    (tmp_path / "scan.cpr").write_text("[General]\nJobMode=RegularGrid\n[Job]\nxCells=4\nyCells=3\nGridDistX=1.5\nGridDistY=1.5\n")
    with kikuchi.open(path) as m:
        assert_matches_manifest(m, "ebsp_v0_u8_3x4.ebsp")


def test_companion_that_disagrees_with_the_positions(tmp_path):
    path = tmp_path / "scan.ebsp"
    path.write_bytes(vendor_file("ebsp_v2_u8_3x4.ebsp").read_bytes())
    (tmp_path / "scan.ctf").write_text(CTF_HEADER.replace("XCells\t4\nYCells\t3", "XCells\t6\nYCells\t2"))
    with pytest.warns(MapFileWarning, match=r"the companion scan.ctf says 2 x 6 points, the beam positions 3 x 4; the file is followed"):
        m = kikuchi.open(path)
    with m:
        assert m.nav_shape == (3, 4)


def test_write_any_source_as_ebsp(tmp_path):
    with kikuchi.open(vendor_file("ebsp_v2_u8_missing.ebsp")) as src:
        out = FORMAT.writes(tmp_path / "copy.ebsp", src, version=6)
        assert FORMAT.writes is write_ebsp_map
        with kikuchi.open(out) as m:
            assert m.version == 6 and m.nav_shape == (3, 4) and m.step_um == (1.5, 1.5)
            np.testing.assert_array_equal(m.index_map, src.index_map)
            np.testing.assert_array_equal(m.read_all(), src.read_all())


# -- reading: one read per regular run -------------------------------------------------------
def test_regular_files_read_a_range_in_one_call(tmp_path, monkeypatch):
    patterns = encoded(40, 50, h=4, w=5, dtype=np.uint16)
    path = write_ebsp(tmp_path / "big.ebsp", patterns)
    with kikuchi.open(path) as m:
        calls = []
        real = m._raw.readinto
        monkeypatch.setattr(m._raw, "readinto", lambda buf, offset: calls.append(offset) or real(buf, offset))
        block = m.read(0, 2000)
        assert len(calls) == 1
        np.testing.assert_array_equal(block, patterns.reshape(2000, 4, 5))
        np.testing.assert_array_equal(m.read_indices([1999, 3, 1000, 3]), patterns.reshape(2000, 4, 5)[[1999, 3, 1000, 3]])


def test_irregular_offsets_are_read_pattern_by_pattern(tmp_path):
    patterns = encoded(3, 4)
    path = write_ebsp(tmp_path / "gap.ebsp", patterns)
    data = bytearray(path.read_bytes())
    table = table_of(path, 2, 12)
    at = int(table[5])  # 11 bytes of padding before pattern 5; later offsets move
    data[at:at] = b"\xee" * 11
    for i in range(5, 12):
        data[8 + 8 * i : 16 + 8 * i] = struct.pack("<q", int(table[i]) + 11)
    path.write_bytes(bytes(data))
    with kikuchi.open(path) as m:
        assert m.describe()["regular_layout"] is False
        np.testing.assert_array_equal(m.read_all(), patterns)
        np.testing.assert_array_equal(m.read(3, 7), patterns.reshape(12, 6, 7)[3:7])


def test_threads_read_the_same_open_map(tmp_path):
    patterns = encoded(20, 30, h=8, w=8, dtype=np.uint16)
    path = write_ebsp(tmp_path / "t.ebsp", patterns)
    flat = patterns.reshape(600, 8, 8)
    errors = []
    with kikuchi.open(path) as m:
        def work(seed):
            r = np.random.default_rng(seed)
            for _ in range(50):
                a = int(r.integers(0, 590))
                if not np.array_equal(m.read(a, a + 10), flat[a : a + 10]):
                    errors.append(a)

        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []


# -- broken files -------------------------------------------------------------------------------
def test_truncated_file_reads_the_complete_patterns(tmp_path):
    patterns = encoded(3, 4)
    path = write_ebsp(tmp_path / "cut.ebsp", patterns)
    record = 16 + 42 + 18
    path.write_bytes(path.read_bytes()[: -record - record // 2])
    assert identify(path).name == "ebsp"  # recognised although two offsets point past the end
    with pytest.warns(MapFileWarning, match=r"the file ends at byte \d+, inside or before the last 2 of 12 patterns .* read as missing"):
        m = kikuchi.open(path)
    with m:
        assert m.nav_shape == (3, 4) and m.n_patterns == 10
        assert m.index_map.ravel()[10:].tolist() == [-1, -1]
        np.testing.assert_array_equal(m.read(0, 10), patterns.reshape(12, 6, 7)[:10])


def test_offset_past_the_end_of_the_file(tmp_path):
    path = write_ebsp(tmp_path / "far.ebsp", encoded(3, 4))
    patch_int64(path, 8 + 8 * 5, 10**9)
    with pytest.raises(MapFileError, match=r"far.ebsp: offsets table entry 5 points to byte 1000000000, past the end of the file"):
        kikuchi.open(path)


def test_overlapping_offsets(tmp_path):
    path = write_ebsp(tmp_path / "overlap.ebsp", encoded(3, 4))
    table = table_of(path, 2, 12)
    patch_int64(path, 8 + 8 * 3, int(table[2]) + 20)
    with pytest.raises(MapFileError, match=r"overlap.ebsp: the patterns of offsets table entries 2 \(byte \d+\) and 3 \(byte \d+\) overlap: 20 bytes apart"):
        kikuchi.open(path)
    patch_int64(path, 8 + 8 * 3, int(table[2]))  # two entries, one pattern
    with pytest.raises(MapFileError, match=r"entries 2 \(byte \d+\) and 3 \(byte \d+\) overlap: 0 bytes apart"):
        kikuchi.open(path)


def test_header_that_disagrees_with_the_first(tmp_path):
    path = write_ebsp(tmp_path / "hdr.ebsp", encoded(3, 4))
    table = table_of(path, 2, 12)
    data = bytearray(path.read_bytes())
    data[int(table[7]) + 4 : int(table[7]) + 8] = struct.pack("<i", 5)  # height 5 instead of 6
    path.write_bytes(bytes(data))
    with pytest.raises(
        MapFileError,
        match=rf"hdr.ebsp: the pattern of offsets table entry 7 \(byte {table[7]}\) has header compressed 0, 5 x 7 pixels, 42 bytes, unlike the first",
    ):
        kikuchi.open(path)


def test_compressed_patterns_are_refused(tmp_path):
    path = write_ebsp(tmp_path / "zip.ebsp", encoded(2, 2))
    data = bytearray(path.read_bytes())
    first = 8 + 8 * 4
    data[first : first + 4] = struct.pack("<i", 1)
    path.write_bytes(bytes(data))
    with pytest.raises(MapFileError, match=r"zip.ebsp: the patterns are compressed .* byte 40\); kikuchi reads uncompressed"):
        kikuchi.open(path, format="ebsp")


def test_zero_patterns(tmp_path):
    path = tmp_path / "empty.ebsp"
    path.write_bytes(struct.pack("<q", -2))
    with pytest.raises(MapFileError, match=r"empty.ebsp: 8 bytes, too short for an Oxford .ebsp pattern file"):
        kikuchi.open(path)
    path.write_bytes(struct.pack("<q", -2) + bytes(8 * 5))
    with pytest.raises(MapFileError, match=r"empty.ebsp: has no pattern offset in its offsets table \(5 entries, all 0\)"):
        kikuchi.open(path)


def test_bad_tables(tmp_path):
    path = write_ebsp(tmp_path / "neg.ebsp", encoded(2, 2))
    patch_int64(path, 8 + 8 * 2, -5)
    with pytest.raises(MapFileError, match=r"neg.ebsp: offsets table entry 2 \(byte 24\) is negative \(-5\)"):
        kikuchi.open(path)
    path = write_ebsp(tmp_path / "inside.ebsp", encoded(2, 2))
    patch_int64(path, 8 + 8 * 3, 16)
    with pytest.raises(MapFileError, match=r"inside.ebsp: offsets table entry 3 points to byte 16, inside the offsets table"):
        kikuchi.open(path)


def test_garbage_with_the_extension(tmp_path, rng):
    text = tmp_path / "notes.ebsp"
    text.write_text("these are my notes, not patterns\n" * 20)
    with pytest.raises(MapFileError, match=r"notes.ebsp: the first pattern would begin at byte \d+, past the end of the file .* not an Oxford .ebsp"):
        kikuchi.open(text)
    noise = tmp_path / "noise.ebsp"
    noise.write_bytes(struct.pack("<q", -123456789) + rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(MapFileError, match=r"noise.ebsp: not an Oxford .ebsp pattern file \(starts with -123456789, not a version marker"):
        kikuchi.open(noise)
    assert not FORMAT.sniff(Probe(text)) and not FORMAT.sniff(Probe(noise))


def test_writer_refuses_bad_input(tmp_path):
    with pytest.raises(ValueError, match=r"patterns must be \(rows, cols, height, width\) uint8 or uint16"):
        write_ebsp(tmp_path / "a.ebsp", np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(ValueError, match=r"version must be one of 0..6, not 7"):
        write_ebsp(tmp_path / "a.ebsp", np.zeros((1, 2, 3, 4), np.uint8), version=7)
    with pytest.raises(ValueError, match=r"order must be a permutation"):
        write_ebsp(tmp_path / "a.ebsp", np.zeros((1, 2, 3, 4), np.uint8), order=[0, 0])


@pytest.mark.parametrize("version", [2, 5])
def test_large_patterns_are_read_scattered_into_place(tmp_path, version):
    """Patterns of 16 KiB and more are read with scattered reads (headers and footers skipped): same values, any range."""
    patterns = encoded(5, 9, h=100, w=96, dtype=np.uint16)  # 19,200 bytes a pattern
    order = np.random.default_rng(3).permutation(45)
    path = write_ebsp(tmp_path / "big.ebsp", patterns, version=version, order=order, step_um=(0.5, 0.5))
    with kikuchi.open(path) as m:
        np.testing.assert_array_equal(m.read_all(), patterns)
        flat = patterns.reshape(45, 100, 96)[m.positions[0] * 9 + m.positions[1]]  # storage order
        for start, stop in [(0, 45), (3, 40), (44, 45)]:
            np.testing.assert_array_equal(m.read(start, stop), flat[start:stop])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30000])  # the last pattern cut short: the complete ones are read
    with pytest.warns(MapFileWarning), kikuchi.open(path) as m:
        have = m.index_map >= 0
        assert have.sum() < 45
        np.testing.assert_array_equal(m.read_all()[have], patterns[have])
