"""EDAX/TSL UP1/UP2 pattern files: the vendor files, kikuchi's writer, and damaged files."""

from __future__ import annotations

import contextlib
import shutil
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import kikuchi
from kikuchi.io.ang import write_ang
from kikuchi.io.edax_up import FORMAT, UpFile, hex_index_map, read_up_header, write_up
from kikuchi.io.orientation_map import OrientationMap
from kikuchi.io.source import MapFileError, MapFileWarning, Probe, identify
from tests.io._vendor import assert_matches_manifest, manifest, sha16, vendor_file


def _map(rows: int, cols: int, h: int = 6, w: int = 5, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """A (rows, cols, h, w) map whose pattern (r, c) starts with the markers [index, r, c]."""
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 4000
    pats = rng.integers(0, top, size=(rows, cols, h, w)).astype(dtype)
    for r in range(rows):
        for c in range(cols):
            pats[r, c, 0, :3] = (r * cols + c, r, c)
    return pats


# -- the vendor files ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["up1_v3_3x4.up1", "up2_v3_3x4.up2"])
def test_vendor_v3_files_match_manifest(name):
    path = vendor_file(name)
    assert identify(path).name == "edax_up"
    with kikuchi.open(path) as m:
        assert m.format == "edax_up" and m.grid_type == "square"
        data = assert_matches_manifest(m, name)
        assert m.step_um == (1.0, 2.0)  # (y step, x step): the header's x step is 2.0
        assert m.describe()["up"]["version"] == 3 and m.describe()["up"]["header_bytes"] == 42
    assert data.shape == (3, 4, 48, 60)


def test_vendor_v1_is_one_row_without_shape():
    said = r"up1_v1_3x4.up1: nothing in the file records the map shape \(a version 1 header, no companion .ang\): read as a 1 x 12 map; open with nav_shape"
    with pytest.warns(MapFileWarning, match=said), kikuchi.open(vendor_file("up1_v1_3x4.up1")) as m:
        assert m.nav_shape == (1, 12) and m.n_patterns == 12 and m.step_um == (1.0, 1.0)
        assert m.describe()["up"]["map_shape_from"] == "none (1 x N)"
        assert m[0, 5][0, :3].tolist() == [5, 1, 1]  # pattern 5 is map point (1, 1) of the 3 x 4 map


@pytest.mark.parametrize(("name", "nav"), [("up1_v1_3x4.up1", (3, 4)), ("up1_kpdata_v1.up1", (3, 3))])
def test_vendor_v1_with_nav_shape_matches_manifest(name, nav):
    with kikuchi.open(vendor_file(name), nav_shape=nav) as m:
        assert m.nav_shape == nav
        assert_matches_manifest(m, name)
        assert m.open_options == {"format": "edax_up", "nav_shape": nav}


def test_vendor_v1_with_companion_ang(tmp_path):
    path = tmp_path / "scan.up1"
    shutil.copy(vendor_file("up1_v1_3x4.up1"), path)
    omap = OrientationMap.from_arrays(euler=np.zeros((3, 4, 3)), step_um=(1.0, 2.0))
    write_ang(omap, tmp_path / "scan.ang")
    with kikuchi.open(path) as m:
        assert m.describe()["up"]["map_shape_from"] == "companion scan.ang"
        assert m.step_um == (1.0, 2.0)
        assert_matches_manifest(m, "up1_v1_3x4.up1")
        # the caller's nav_shape wins over the .ang
        with kikuchi.open(path, nav_shape=(2, 6)) as other:
            assert other.nav_shape == (2, 6) and other[1, 0][0, 0] == 6


def test_vendor_hex_kikuchipy_dummy():
    name = "up2_kpdata_v3_hex.up2"
    assert "10 patterns" in manifest()[name]["note"]
    with pytest.warns(MapFileWarning, match="holds 10 patterns.*needs 8 packed or 9 padded; read padded"):
        m = kikuchi.open(vendor_file(name))
    with m:
        assert m.grid_type == "hexagonal" and m.nav_shape == (3, 3)
        assert m.index_map.tolist() == [[0, 1, 2], [3, 4, -1], [6, 7, 8]]
        np.testing.assert_allclose(m.step_um, (np.pi / 2, np.pi))  # (y step, x step)
        assert_matches_manifest(m, name)
        assert m.describe()["up"]["layout"] == "hexagonal, padded"
        assert m.describe()["points_without_pattern"] == 1
        # the dummy stores the 9 Ni patterns of kikuchipy's 3 x 3 map in order: the padding pattern is Ni pattern 5
        with kikuchi.open(vendor_file("up1_kpdata_v1.up1"), nav_shape=(3, 3)) as ni:
            assert np.array_equal(m[2, 0].astype(np.int64), ni[2, 0].astype(np.int64))
            assert np.array_equal(m[1, 1].astype(np.int64), ni[1, 1].astype(np.int64))


def test_header_layout_of_vendor_files():
    head = vendor_file("up1_v3_3x4.up1").read_bytes()[:42]
    h = read_up_header(head)
    assert (h.version, h.width, h.height, h.offset) == (3, 60, 48, 42)
    assert (h.extra_patterns, h.n_cols, h.n_rows, h.hexagonal, h.x_step, h.y_step) == (0, 4, 3, False, 2.0, 1.0)
    assert head[16] == 0 and struct.unpack_from("<ii", head, 17) == (4, 3) and head[25] == 0  # one-byte flags
    h = read_up_header(vendor_file("up2_kpdata_v3_hex.up2").read_bytes()[:42])
    assert (h.extra_patterns, h.hexagonal, h.n_rows, h.n_cols) == (1, True, 3, 3)


def test_not_claimed_by_other_formats_nor_claiming_theirs(tmp_path):
    assert not FORMAT.sniff(Probe(vendor_file("ebsp_v2_u8_3x4.ebsp")))
    assert not FORMAT.sniff(Probe(vendor_file("nordif_kpdata/Pattern.dat")))
    assert not FORMAT.sniff(Probe(vendor_file("bruker_custom_u8_ordered.h5")))


@pytest.mark.parametrize("name", ["up1_v3_3x4.up1", "up2_v3_3x4.up2", "up2_kpdata_v3_hex.up2"])
def test_renamed_file_bit_depth_from_content(tmp_path, name):
    renamed = tmp_path / "patterns.bin"
    shutil.copy(vendor_file(name), renamed)
    assert identify(renamed).name == "edax_up"
    with pytest.warns(MapFileWarning) if "hex" in name else contextlib.nullcontext():
        m = kikuchi.open(renamed)
    with m:
        assert m.describe()["up"]["bits_from"] == "content"
        assert_matches_manifest(m, name)


def test_renamed_version_1_needs_bits(tmp_path):
    renamed = tmp_path / "patterns.bin"
    shutil.copy(vendor_file("up1_v1_3x4.up1"), renamed)  # 12 8-bit or 6 16-bit patterns: both fit
    assert identify(renamed).name == "edax_up"
    with pytest.raises(MapFileError, match=r"patterns\.bin: a UP file named without \.up1/\.up2, .*\(8 and 16 bits both fill it\): pass bits=8 or bits=16"):
        kikuchi.open(renamed)
    with kikuchi.open(renamed, bits=8, nav_shape=(3, 4)) as m:
        assert_matches_manifest(m, "up1_v1_3x4.up1")
        assert m.open_options == {"format": "edax_up", "nav_shape": (3, 4), "bits": 8}
    with pytest.raises(MapFileError, match="bits=12; UP patterns are 8"):
        kikuchi.open(renamed, bits=12)


# -- round trips ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("version", [1, 3])
def test_round_trip_square(tmp_path, dtype, version):
    pats = _map(3, 4, dtype=dtype)
    path = write_up(tmp_path / f"m.up{1 if dtype == np.uint8 else 2}", pats, version=version, step_um=(0.25, 0.5))
    assert path.stat().st_size == (16 if version == 1 else 42) + pats.nbytes
    options = {"nav_shape": (3, 4)} if version == 1 else {}
    with kikuchi.open(path, **options) as m:
        assert m.dtype == dtype and m.nav_shape == (3, 4) and m.is_row_major
        assert np.array_equal(m.read_all(), pats)
        assert m.step_um == ((0.25, 0.5) if version == 3 else (1.0, 1.0))
        assert np.array_equal(m.read_indices([7, 2, 7]), pats.reshape(12, 6, 5)[[7, 2, 7]])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("padded", [False, True])
def test_round_trip_hexagonal(tmp_path, dtype, padded):
    pats = _map(5, 4, dtype=dtype)
    path = write_up(tmp_path / f"h.up{1 if dtype == np.uint8 else 2}", pats, step_um=(np.sqrt(3) / 2, 1.0), hexagonal=True, hex_padded=padded)
    n = 20 if padded else 20 - 2
    assert path.stat().st_size == 42 + n * pats[0, 0].nbytes
    with kikuchi.open(path) as m:
        assert m.grid_type == "hexagonal" and m.nav_shape == (5, 4) and m.n_patterns == n
        assert (m.index_map == -1).sum() == 2 and m.index_map[1, 3] == -1 and m.index_map[3, 3] == -1
        assert m.describe()["up"]["layout"] == f"hexagonal, {'padded' if padded else 'packed'}"
        data = m.read_all()
        have = m.index_map >= 0
        assert np.array_equal(data[have], pats[have]) and not data[~have].any()
        np.testing.assert_allclose(m.step_um, (np.sqrt(3) / 2, 1.0))


def test_hex_flag_disagreeing_with_size_warns(tmp_path):
    path = write_up(tmp_path / "h.up1", _map(3, 3), hexagonal=True)  # packed, 8 patterns
    raw = bytearray(path.read_bytes())
    raw[16] = 1  # says padded
    path.write_bytes(bytes(raw))
    with pytest.warns(MapFileWarning, match="extra-patterns flag 1, but the file holds 8 patterns, the packed layout"):
        m = kikuchi.open(path)
    with m:
        assert m.index_map.tolist() == hex_index_map(3, 3, padded=False).tolist()
        assert m[2, 2][0, :3].tolist() == [8, 2, 2]


def test_format_writes_a_map(tmp_path):
    with kikuchi.open(vendor_file("up1_v3_3x4.up1")) as src:
        out = FORMAT.writes(tmp_path / "copy.up1", src)
        with kikuchi.open(out) as m:
            assert np.array_equal(m.read_all(), src.read_all()) and m.step_um == src.step_um


def test_writer_refusals(tmp_path):
    with pytest.raises(ValueError, match=r"\.up1 holds uint8 patterns, got uint16; convert them or name the file \.up2"):
        write_up(tmp_path / "a.up1", _map(1, 2, dtype=np.uint16))
    with pytest.raises(ValueError, match=r"UP files hold uint8 \(\.up1\) or uint16 \(\.up2\) patterns, got int16"):
        write_up(tmp_path / "a.up2", _map(1, 2).astype(np.int16))
    with pytest.raises(ValueError, match="version 1 header cannot say the grid is hexagonal"):
        write_up(tmp_path / "a.up1", _map(2, 2), version=1, hexagonal=True)
    with pytest.raises(ValueError, match="writes UP versions 1 and 3, not 4"):
        write_up(tmp_path / "a.up1", _map(2, 2), version=4)
    with pytest.raises(ValueError, match=r"\(rows, cols, h, w\) or \(n, h, w\), got shape \(5, 6\)"):
        write_up(tmp_path / "a.up1", np.zeros((5, 6), np.uint8))
    assert not list(tmp_path.iterdir())


def test_written_under_another_name(tmp_path):
    pats = _map(3, 4, dtype=np.uint16)
    path = write_up(tmp_path / "map.up2.tmp", pats, step_um=(1.5, 1.5))  # a writer's temporary name
    with kikuchi.open(path) as m:
        assert m.format == "edax_up" and m.describe()["up"]["bits_from"] == "content"
        assert np.array_equal(m.read_all(), pats)


# -- reading: laziness, threads, reopening ------------------------------------------------------
def test_reads_in_threads_and_reopens(tmp_path):
    pats = _map(20, 30, h=8, w=9, dtype=np.uint16)
    path = write_up(tmp_path / "big.up2", pats)
    flat = pats.reshape(600, 8, 9)
    rng = np.random.default_rng(1)
    with kikuchi.open(path) as m:
        picks = [rng.integers(0, 600, 40) for _ in range(16)]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(m.read_indices, picks))
        for idx, got in zip(picks, results):
            assert np.array_equal(got, flat[idx])
        out = np.zeros((10, 9, 8), np.uint16).transpose(0, 2, 1)  # a non-contiguous target
        m._read_range(5, 15, out)
        assert np.array_equal(out, flat[5:15])
        assert np.array_equal(m.read_rows(3, 5, cols=(4, 7)), pats[3:5, 4:7])
        with kikuchi.open(m.path, **m.open_options) as again:
            assert again.nav_shape == m.nav_shape and np.array_equal(again[19, 29], pats[19, 29])
    with pytest.raises(MapFileError, match="the file is closed"):
        m.read(0, 1)


# -- damaged and odd files -------------------------------------------------------------------
def test_truncated_file_reads_complete_patterns(tmp_path):
    pats = _map(3, 4)
    path = write_up(tmp_path / "t.up1", pats)
    per = pats[0, 0].nbytes
    with open(path, "r+b") as f:
        f.truncate(42 + 6 * per + per // 2)
    with pytest.warns(MapFileWarning) as record:
        m = kikuchi.open(path)
    messages = " | ".join(str(w.message) for w in record)
    assert "t.up1: holds 6 complete patterns, the 3 x 4 map of the header needs 12" in messages
    assert f"{per // 2} bytes after the last complete pattern (pattern 6) are a partial pattern" in messages
    with m:
        assert m.n_patterns == 6 and (m.index_map.ravel()[6:] == -1).all()
        data = m.read_all()
        assert np.array_equal(data[:1], pats[:1]) and np.array_equal(data[1, :2], pats[1, :2])
        assert not data[1, 2:].any() and not data[2].any()
        assert m.describe()["points_without_pattern"] == 6 and len(m.notes) == 2


def test_header_claiming_more_patterns_than_the_file_holds(tmp_path):
    path = write_up(tmp_path / "c.up2", _map(3, 4, dtype=np.uint16))
    raw = bytearray(path.read_bytes())
    raw[17:25] = struct.pack("<ii", 4, 5)  # 5 rows x 4 cols: 20 patterns
    path.write_bytes(bytes(raw))
    with pytest.warns(MapFileWarning, match="holds 12 complete patterns, the 5 x 4 map of the header needs 20"):
        m = kikuchi.open(path)
    with m:
        assert m.nav_shape == (5, 4) and (m.index_map >= 0).sum() == 12
        with pytest.raises(kikuchi.io.MapPositionError, match=r"no pattern at map position \(row 4, col 0\)"):
            m[4, 0]


def test_more_patterns_than_the_map_are_left_out(tmp_path):
    path = write_up(tmp_path / "m.up1", _map(3, 4))
    with pytest.warns(MapFileWarning, match="holds 12 patterns, the 2 x 5 map of the nav_shape uses the first 10; 2 left out"):
        m = kikuchi.open(path, nav_shape=(2, 5))
    m.close()


def test_zero_patterns(tmp_path):
    path = tmp_path / "empty.up1"
    path.write_bytes(struct.pack("<4iBiiBdd", 3, 60, 48, 42, 0, 4, 3, 0, 1.0, 1.0))
    with pytest.raises(MapFileError, match=r"empty\.up1: holds no complete pattern: 0 bytes after the 42-byte header, one 48 x 60 uint8 pattern takes 2880"):
        kikuchi.open(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a pattern file, just text" * 10, r"not an EDAX UP file kikuchi reads: header version 1936287860"),
        (b"\x01\x00", r"2 bytes, shorter than the 16-byte header"),
        (struct.pack("<4i", 1, 0, 60, 16) + bytes(100), r"not an EDAX UP file: pattern size 0 x 60 px"),
        (struct.pack("<4i", 1, 4, 4, 9999) + bytes(100), r"patterns at byte 9999, past the end of the 116-byte file"),
        (struct.pack("<4i", 3, 4, 4, 16) + bytes(100), r"version 3 header gives the patterns at byte 16, inside its own 42 bytes"),
        (struct.pack("<4iBiiBdd", 3, 4, 4, 42, 0, 2, 2, 7, 1.0, 1.0) + bytes(64), r"version 3 header is corrupt: grid flag 7"),
        (struct.pack("<4iBiiBdd", 3, 4, 4, 42, 0, -1, 2, 0, 1.0, 1.0) + bytes(64), r"corrupt: map of 2 rows x -1 columns"),
    ],
)
def test_garbage_with_the_right_extension(tmp_path, content, message):
    path = tmp_path / "garbage.up1"
    path.write_bytes(content)
    assert not FORMAT.sniff(Probe(path))
    with pytest.raises(MapFileError, match=message) as err:
        kikuchi.open(path)  # recognised by the extension, then refused with the reason
    assert str(err.value).startswith(str(path))


def test_version_2_and_4_headers(tmp_path):
    pats = _map(3, 4)
    path = write_up(tmp_path / "v.up1", pats, step_um=(1.0, 2.0))
    raw = bytearray(path.read_bytes())
    for version in (2, 4):  # the version 3 fields at the same places: read as version 3
        raw[0:4] = struct.pack("<i", version)
        path.write_bytes(bytes(raw))
        with kikuchi.open(path) as m:
            assert m.nav_shape == (3, 4) and m.step_um == (1.0, 2.0) and np.array_equal(m.read_all(), pats)
    raw[26:34] = struct.pack("<d", float("nan"))  # version 4 with implausible fields: EMSphInx's reading (no map)
    path.write_bytes(bytes(raw))
    with pytest.warns(MapFileWarning, match=r"version 4 map fields are implausible \(steps \(nan, 1.0\)\); read as version 1"):
        m = kikuchi.open(path)
    with m:
        assert m.nav_shape == (1, 12) and np.array_equal(m.read(), pats.reshape(12, 6, 5))
    short = tmp_path / "v4short.up1"
    short.write_bytes(struct.pack("<4i", 4, 5, 6, 16) + pats.tobytes())
    with pytest.warns(MapFileWarning, match="version 4 header of 16 bytes has no room for the map fields"):
        m = kikuchi.open(short, nav_shape=(3, 4))
    with m:
        assert np.array_equal(m.read_all(), pats)


def test_nav_shape_cannot_reshape_a_hexagonal_grid(tmp_path):
    path = write_up(tmp_path / "h.up1", _map(3, 3), hexagonal=True)
    with pytest.raises(MapFileError, match=r"h\.up1: nav_shape=\(1, 8\) for a hexagonal grid of 3 x 3"):
        kikuchi.open(path, nav_shape=(1, 8))
    with pytest.raises(MapFileError, match=r"nav_shape=\(0, 8\) must be two positive counts"):
        kikuchi.open(path, nav_shape=(0, 8))


def test_companion_ang_without_grid_warns(tmp_path):
    path = write_up(tmp_path / "s.up1", _map(2, 3), version=1)
    (tmp_path / "s.ang").write_text("# TEM_PIXperUM 1.0\n0 0 0 0 0 0 0 0 0 0\n")
    with pytest.warns(MapFileWarning, match="companion s.ang gives no NROWS/NCOLS_ODD; the map is 1 x 6"):
        m = kikuchi.open(path)
    m.close()


def test_hex_ang_companion(tmp_path):
    pats = _map(3, 4)
    path = write_up(tmp_path / "hx.up1", pats, hexagonal=True)
    data = path.read_bytes()
    path.write_bytes(struct.pack("<4i", 1, 5, 6, 16) + data[42:])  # the same patterns under a version 1 header
    (tmp_path / "hx.ang").write_text(
        "# GRID: HexGrid\n# XSTEP: 1.0\n# YSTEP: 0.866025\n# NCOLS_ODD: 4\n# NCOLS_EVEN: 3\n# NROWS: 3\n0 0 0\n"
    )
    with kikuchi.open(path) as m:
        assert m.grid_type == "hexagonal" and m.index_map.tolist() == hex_index_map(3, 4, padded=False).tolist()
        assert m[2, 3][0, :3].tolist() == [11, 2, 3] and m.step_um == (0.866025, 1.0)
        assert sha16(m[0, 0]) == sha16(pats[0, 0])


def test_dataset_option(tmp_path):
    path = write_up(tmp_path / "d.up1", _map(1, 2))
    with kikuchi.open(path, dataset="RawPatterns") as m:
        assert m.datasets == ["RawPatterns"]
    with pytest.raises(MapFileError, match="no pattern dataset 'Patterns'"):
        UpFile(path, dataset="Patterns")


def test_a_nordif_pattern_dat_that_looks_like_a_header_is_not_claimed(tmp_path):
    pats = np.zeros((4, 8, 8), np.uint8)
    pats[0, 0, :4] = (1, 0, 0, 0)  # a dark corner: version 1 ...
    pats[0, 0, 4:8] = (8, 0, 0, 0)  # ... width 8
    pats[0, 1, :8] = (8, 0, 0, 0, 16, 0, 0, 0)  # height 8, offset 16
    path = tmp_path / "Pattern.dat"
    path.write_bytes(pats.tobytes())
    other = tmp_path / "other.dat"
    other.write_bytes(pats.tobytes()[:-16])  # 240 bytes after 16: not whole 64-byte patterns ...
    assert not FORMAT.sniff(Probe(other))
    other.write_bytes(pats.tobytes() + bytes(16))  # ... now 4 whole 8-bit (2 16-bit) patterns after the "header"
    assert FORMAT.sniff(Probe(other))
    assert not FORMAT.sniff(Probe(path))


def test_absurd_header_map(tmp_path):
    path = write_up(tmp_path / "a.up1", _map(3, 4))
    raw = bytearray(path.read_bytes())
    raw[17:25] = struct.pack("<ii", 100000, 100000)
    path.write_bytes(bytes(raw))
    with pytest.raises(MapFileError, match=r"a\.up1: version 3 header is corrupt: a map of 100000 x 100000 points for the 12 patterns the file holds; pass nav_shape"):
        kikuchi.open(path)
    with kikuchi.open(path, nav_shape=(3, 4)) as m:
        assert m[2, 3][0, :3].tolist() == [11, 2, 3]
    raw[0:4] = struct.pack("<i", 4)
    path.write_bytes(bytes(raw))
    with pytest.warns(MapFileWarning, match=r"version 4 map fields are implausible \(a map of 100000 x 100000"):
        m = kikuchi.open(path)
    with m:
        assert m.nav_shape == (1, 12)
