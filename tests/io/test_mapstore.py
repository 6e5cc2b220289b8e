"""The map store: row-major files, the xcdskd notebooks' files, kikuchipy h5ebsd, bad files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.io.source import MapFileWarning
from kikuchi.io.mapstore import (
    DEFAULT_COMPRESSION,
    EBSDMap,
    MapFileError,
    MapPositionError,
    MapWriter,
    default_chunk_patterns,
    open_map,
)
from tests.conftest import shared_file

H, W = 12, 10


def encoded(row: int, col: int, dtype=np.uint16) -> np.ndarray:
    """A pattern that says where it belongs: pixel (0, 0) = row, (0, 1) = col, the rest a gradient."""
    p = (np.arange(H * W).reshape(H, W) + 7 * row + 3 * col) % 200
    p = p.astype(dtype)
    p[0, 0], p[0, 1] = row, col
    return p


def assert_position(pattern: np.ndarray, row: int, col: int) -> None:
    np.testing.assert_array_equal(pattern, encoded(row, col, pattern.dtype))


def write_row_major(path, rows=5, cols=7, dtype=np.uint16, **kw) -> None:
    with MapWriter(path, nav_shape=(rows, cols), pattern_shape=(H, W), dtype=dtype, step_um=(0.2, 0.3), **kw) as w:
        for r in range(rows):
            w.write_rows(r, np.stack([encoded(r, c, dtype) for c in range(cols)])[None])


def write_notebook_dir_file(path, rows, cols, *, indexmap=True) -> None:
    """Exactly the layout of the xcdskd notebook "HDF5: Convert Directory of Images": column by column."""
    n = rows * cols
    data, header = "Scan/EBSD/Data/", "Scan/EBSD/Header/"
    f5 = h5py.File(path, "w")
    f5["Manufacturer"] = "xcdskd"
    f5["Version"] = "0.01"
    for name, dt in (("X BEAM", np.int32), ("Y BEAM", np.int32), ("PCX", np.float32), ("PCY", np.float32), ("DD", np.float32),
                     ("phi1", np.float32), ("PHI", np.float32), ("phi2", np.float32), ("X Position", np.float32), ("Y Position", np.float32)):
        f5.create_dataset(data + name, (n,), dtype=dt, compression="gzip")
    f5[data + "bse_map"] = np.zeros((rows, cols))
    f5[header + "NCOLS"] = cols
    f5[header + "NROWS"] = rows
    f5[header + "PatternHeight"] = H
    f5[header + "PatternWidth"] = W
    f5[header + "X Resolution"] = 0.05
    f5[header + "Y Resolution"] = 0.05
    f5[data + "StaticBackground"] = np.full((H, W), 3, dtype=np.uint16)
    dset = f5.create_dataset(data + "RawPatterns", (n, H, W), dtype=np.uint16, chunks=(1, H, W), compression="gzip", compression_opts=9)
    i = 0
    for iw in range(cols):
        for ih in range(rows):
            dset[i] = encoded(ih, iw)
            f5[data + "X BEAM"][i] = iw
            f5[data + "Y BEAM"][i] = ih
            f5[data + "DD"][i] = 1.0
            f5[data + "PCX"][i] = 0.5
            f5[data + "PCY"][i] = 0.5
            i += 1
    if indexmap:
        xi, yi = f5[data + "X BEAM"][()], f5[data + "Y BEAM"][()]
        lookup = -1 * np.ones((rows, cols), dtype=np.int64)
        maplist = []
        for index in range(n):
            maplist.append([index, xi[index], yi[index]])
            lookup[yi[index], xi[index]] = index
        f5[header + "maplist"] = np.array(maplist)
        f5[header + "indexmap"] = lookup
    f5.close()


def write_notebook_zip_file(path, rows, cols, order, *, n_images=None) -> None:
    """The layout of the xcdskd notebook "Conversion of Image Zip to HDF5": 'Scan 0', 'BEAM X'/'BEAM Y', zip order."""
    n = rows * cols if n_images is None else n_images
    data, header = "Scan 0/EBSD/Data/", "Scan 0/EBSD/Header/"
    f5 = h5py.File(path, "w")
    f5["Manufacturer"] = "pattern_zip_to_hdf5"
    f5["Version"] = "0.1"
    for name in ("BEAM X", "BEAM Y"):
        f5.create_dataset(data + name, (n,), dtype=np.int32, compression="gzip")
    for name in ("PCX", "PCY", "DD", "phi1", "PHI", "phi2", "X Position", "Y Position"):
        f5.create_dataset(data + name, (n,), dtype=np.float32, compression="gzip")
    f5[header + "NCOLS"] = cols
    f5[header + "NROWS"] = rows
    f5[header + "PatternHeight"] = H
    f5[header + "PatternWidth"] = W
    f5[header + "X Resolution"] = 0.15
    f5[header + "Y Resolution"] = 0.1
    dset = f5.create_dataset(data + "RawPatterns", (n, H, W), dtype=np.uint16, chunks=(1, H, W), compression="gzip", compression_opts=9)
    for i, (r, c) in enumerate(order):
        dset[i] = encoded(r, c)
        f5[data + "BEAM X"][i] = c
        f5[data + "BEAM Y"][i] = r
        f5[data + "DD"][i] = 1.0
    f5.close()


# -- row-major files written by MapWriter ------------------------------------------


def test_row_major_round_trip(tmp_path):
    path = tmp_path / "m.h5"
    write_row_major(path)
    with kikuchi.open(path) as m:
        assert isinstance(m, EBSDMap)
        assert m.nav_shape == (5, 7)
        assert m.pattern_shape == (H, W)
        assert m.dtype == np.uint16
        assert m.n_patterns == 35
        assert m.step_um == pytest.approx((0.2, 0.3))
        assert m.is_row_major and m.flavour == "xcdskd" and m.scan == "Scan"
        np.testing.assert_array_equal(m.index_map, np.arange(35).reshape(5, 7))
        for r in range(5):
            for c in range(7):
                assert_position(m.pattern(r, c), r, c)
        assert_position(m[4, 6], 4, 6)
        # storage order is row-major: index = row * NCOLS + col
        assert_position(m.read(23, 24)[0], 23 // 7, 23 % 7)
        rows, cols = m.positions
        np.testing.assert_array_equal(rows, np.arange(35) // 7)
        np.testing.assert_array_equal(cols, np.arange(35) % 7)
        # header datasets of the xcdskd layout
        assert int(m.header["NCOLS"][()]) == 7 and int(m.header["NROWS"][()]) == 5
        np.testing.assert_array_equal(m.data["X BEAM"][()], np.arange(35) % 7)
        np.testing.assert_array_equal(m.data["Y BEAM"][()], np.arange(35) // 7)
        np.testing.assert_array_equal(m.header["maplist"][()], np.stack([np.arange(35), np.arange(35) % 7, np.arange(35) // 7], 1))
        np.testing.assert_allclose(m.data["X Position"][()], (np.arange(35) % 7) * 0.3, rtol=1e-6)
        assert m.h5["Manufacturer"][()] == b"kikuchi"


def test_bse_map_is_the_mean_of_each_pattern(tmp_path):
    path = tmp_path / "m.h5"
    write_row_major(path, rows=3, cols=4)
    with open_map(path) as m:
        expected = np.array([[encoded(r, c).mean() for c in range(4)] for r in range(3)])
        np.testing.assert_allclose(m.bse_map, expected)
        assert "bse_map" in m.data  # stored by the writer, not recomputed


def test_lazy_reads_rows_and_chunks(tmp_path):
    path = tmp_path / "m.h5"
    write_row_major(path, rows=6, cols=5, chunk_patterns=4)
    with open_map(path) as m:
        assert m.chunk_patterns == 4
        block = m.read_rows(2, 4)
        assert block.shape == (2, 5, H, W)
        for r in range(2):
            for c in range(5):
                assert_position(block[r, c], r + 2, c)
        tile = m.read_rows(1, 4, cols=(1, 3))  # a tile: columns 1 and 2 of rows 1..3
        assert tile.shape == (3, 2, H, W)
        for r in range(3):
            for c in range(2):
                assert_position(tile[r, c], r + 1, c + 1)
        np.testing.assert_array_equal(m.read_rows(2, 4, cols=(0, 5)), block)
        starts = []
        for start, stop, patterns in m.iter_chunks():
            assert patterns.shape[0] == stop - start <= 4
            for k in range(start, stop):
                assert_position(patterns[k - start], k // 5, k % 5)
            starts.append(start)
        assert starts == list(range(0, 30, 4))
        assert [p.shape[0] for _, _, p in m.iter_chunks(7)] == [7, 7, 7, 7, 2]
        # arbitrary order with repeats, dense and sparse
        for idx in ([5, 1, 5, 29], [0, 29]):
            got = m.read_indices(np.array(idx))
            for g, i in zip(got, idx):
                assert_position(g, i // 5, i % 5)
        assert m.read_all().shape == (6, 5, H, W)
        # nothing was loaded at open: the dataset stays on disk
        assert isinstance(m._patterns, h5py.Dataset)


def test_per_map_data_round_trip(tmp_path):
    path = tmp_path / "m.h5"
    euler = np.random.default_rng(1).uniform(0, 1, (2, 3, 3))
    phases = [{"name": "ni", "space_group": 225, "lattice": [0.3524, 0.3524, 0.3524, 90, 90, 90]}]
    with MapWriter(path, nav_shape=(2, 3), pattern_shape=(H, W), dtype="uint8") as w:
        w.write(0, np.stack([encoded(i // 3, i % 3, np.uint8) for i in range(6)]))
        w.set_static_background(np.full((H, W), 9, np.uint8))
        w.set_pattern_centre(0.5, 0.25, 0.6, convention="bruker")
        w.set_euler(euler)
        w.set_phases(phases)
        w.set_processing({"binning": 2})
        w.set_attrs(SampleTilt=69.5, CameraTilt=5.0, AcceleratingVoltage=15.0, Binning=2)
    with open_map(path) as m:
        np.testing.assert_array_equal(m.static_background, np.full((H, W), 9))
        pc = m.pattern_centre
        assert pc.convention == "bruker" and pc.mean == pytest.approx((0.5, 0.25, 0.6))
        assert pc.pcx.shape == (2, 3)
        np.testing.assert_allclose(m.euler, euler, rtol=1e-6)
        assert m.phases == [{"id": 1, **phases[0]}]
        assert m.processing == {"binning": 2}
        assert (m.sample_tilt_deg, m.camera_tilt_deg, m.kv, m.binning) == (69.5, 5.0, 15.0, 2)
        desc = m.describe()
        json.dumps(desc)
        assert desc["nav_shape"] == [2, 3] and desc["dtype"] == "uint8" and desc["storage_order"] == "row-major"
        assert desc["compression"] == DEFAULT_COMPRESSION.get("compression")


def test_fresh_file_has_no_pattern_centre_or_orientations(tmp_path):
    path = tmp_path / "m.h5"
    write_row_major(path, rows=2, cols=2)
    with open_map(path) as m:
        assert m.pattern_centre is None
        assert m.euler is None
        assert m.static_background is None
        assert m.phases == []


@pytest.mark.parametrize(
    "compression",
    [None, {}, {"compression": "gzip", "compression_opts": 6}, {"compression": "gzip", "compression_opts": 2, "shuffle": True}, {"compression": "lzf"}],
)
def test_encoded_chunks_read_back_identically(tmp_path, compression):
    """Chunks compressed outside HDF5 (direct chunk write) decode to the same patterns, short last chunk included."""
    path = tmp_path / "m.h5"
    rng = np.random.default_rng(3)
    patterns = rng.integers(0, 4096, (23, H, W)).astype(np.uint16)
    with MapWriter(path, nav_shape=(1, 23), pattern_shape=(H, W), dtype=np.uint16, chunk_patterns=5, compression=compression) as w:
        for s in range(0, 23, 5):
            block = patterns[s : s + 5]
            enc = w.encode_chunk(block)
            assert (enc is None) == (compression == {"compression": "lzf"})
            if not w.compression.get("compression") and len(block) == 5:
                assert np.shares_memory(enc, block)  # unfiltered whole chunks: the patterns' own bytes, no copy
            w.write(s, block, encoded=enc)
    with open_map(path) as m:
        np.testing.assert_array_equal(m.read(), patterns)
        np.testing.assert_allclose(m.bse_map[0], patterns.reshape(23, -1).mean(axis=1))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_chunks_deflate_does_not_shrink_are_stored_unfiltered(tmp_path, dtype):
    """Noise (deflate saves < 10 %) is stored as it is, its filter mask saying so; smooth patterns stay deflated.

    Both kinds read back exactly, through kikuchi's chunk decoder and through h5py (HDF5's own filter pipeline).
    """
    path = tmp_path / "m.h5"
    h, w, cp = 60, 60, 40
    rng = np.random.default_rng(5)
    top = np.iinfo(dtype).max
    noise = rng.integers(0, top, (cp, h, w), endpoint=True).astype(dtype)
    smooth = np.broadcast_to((np.arange(w) * (top // w)).astype(dtype), (cp, h, w)).copy()
    patterns = np.concatenate([noise, smooth, noise[:7]])  # the last chunk short: padded with zeros, so it deflates
    n = len(patterns)
    with MapWriter(path, nav_shape=(1, n), pattern_shape=(h, w), dtype=dtype, chunk_patterns=cp) as wr:
        blobs = [wr.encode_chunk(patterns[s : s + cp]) for s in range(0, n, cp)]
        assert [type(b).__name__ for b in blobs] == ["ndarray", "bytes", "bytes"]
        assert blobs[0].nbytes == cp * h * w * np.dtype(dtype).itemsize
        for s, blob in zip(range(0, n, cp), blobs):
            wr.write(s, patterns[s : s + cp], encoded=blob)
    with h5py.File(path, "r") as f:
        ds = f["Scan/EBSD/Data/RawPatterns"]
        n_filters = ds.id.get_create_plist().get_nfilters()
        assert n_filters == 2  # shuffle, deflate
        masks = [ds.id.get_chunk_info(i).filter_mask for i in range(ds.id.get_num_chunks())]
        sizes = [ds.id.get_chunk_info(i).size for i in range(ds.id.get_num_chunks())]
        assert masks == [3, 0, 0]
        assert sizes[1] < sizes[0] // 10
        np.testing.assert_array_equal(ds[...], patterns)
    with kikuchi.open(path) as m:
        np.testing.assert_array_equal(m.read(), patterns)


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("compression", [None, {}, {"compression": "gzip", "compression_opts": 6}, {"compression": "lzf"}])
def test_blocks_of_any_alignment_are_written_whole(tmp_path, workers, compression):
    """Blocks that start and end inside chunks, span many chunks or fit in one: the file holds exactly the patterns.

    Whole chunks are compressed on the writer's threads and stored directly;
    the partial ends go through h5py; the stored chunks decode with h5py too.
    """
    path = tmp_path / "m.h5"
    rng = np.random.default_rng(5)
    n = 61
    patterns = rng.integers(0, 4096, (n, H, W)).astype(np.uint16)
    edges = [0, 3, 4, 9, 30, 31, 33, 59, 61]  # partial heads, many whole chunks, one-pattern blocks, the short last chunk
    with MapWriter(path, nav_shape=(1, n), pattern_shape=(H, W), dtype=np.uint16, chunk_patterns=5, compression=compression, workers=workers) as w:
        for a, b in zip(edges[:-1], edges[1:]):
            w.write(a, patterns[a:b].astype(np.float64))  # converted to the file's type on the way
    with open_map(path) as m:
        np.testing.assert_array_equal(m.read(), patterns)
        np.testing.assert_allclose(m.bse_map[0], patterns.reshape(n, -1).mean(axis=1))
    with h5py.File(path) as f:
        ds = f["Scan/EBSD/Data/RawPatterns"]
        np.testing.assert_array_equal(ds[...], patterns)
        assert ds.compression == ("gzip" if compression is None else compression.get("compression"))


def test_chunk_larger_than_the_map_is_capped(tmp_path):
    with MapWriter(tmp_path / "m.h5", nav_shape=(1, 3), pattern_shape=(H, W), dtype="uint8", chunk_patterns=100) as w:
        w.write(0, np.ones((3, H, W)))
    with open_map(tmp_path / "m.h5") as m:
        assert m.chunk_patterns == 3


def test_default_chunk_size_is_about_one_mebibyte():
    assert default_chunk_patterns((240, 240), "uint16") * 240 * 240 * 2 <= 1 << 20
    assert default_chunk_patterns((2000, 2000), "uint16") == 1
    assert default_chunk_patterns((60, 60), "uint8", n_patterns=9) == 9


# -- files of the xcdskd notebooks ------------------------------------------------


@pytest.mark.parametrize("indexmap", [True, False])
def test_column_by_column_notebook_file(tmp_path, indexmap):
    path = tmp_path / "GaN_Dislocations_1.hdf5"
    write_notebook_dir_file(path, 4, 6, indexmap=indexmap)
    with open_map(path) as m:
        assert m.nav_shape == (4, 6)
        assert not m.is_row_major
        assert m.step_um == pytest.approx((0.05, 0.05))
        for r in range(4):
            for c in range(6):
                assert_position(m.pattern(r, c), r, c)
        # pattern 1 of the file is (row 1, col 0): stored column by column
        assert_position(m.read(1, 2)[0], 1, 0)
        rows = m.read_rows(1, 3)
        for r in range(2):
            for c in range(6):
                assert_position(rows[r, c], r + 1, c)
        full = m.read_all()
        for r in range(4):
            for c in range(6):
                assert_position(full[r, c], r, c)
        np.testing.assert_array_equal(m.index_map, np.arange(24).reshape(6, 4).T)
        assert m.describe()["storage_order"] == "by beam position"
        # the notebooks' dummy PC (0.5, 0.5, 1.0) has no known convention
        assert m.pattern_centre.convention == "unknown"
        assert m.euler is None  # zero placeholders
        np.testing.assert_array_equal(m.static_background, np.full((H, W), 3))


def test_zip_notebook_file_in_zip_order(tmp_path):
    rows, cols = 3, 5
    order = [(r, c) for r in range(rows) for c in range(cols)]
    np.random.default_rng(0).shuffle(order)  # the order of the zip's name list
    path = tmp_path / "GaN_poly2.hdf5"
    write_notebook_zip_file(path, rows, cols, order)
    with open_map(path) as m:
        assert m.scan == "Scan 0"
        assert m.step_um == pytest.approx((0.1, 0.15))
        for r in range(rows):
            for c in range(cols):
                assert_position(m.pattern(r, c), r, c)
        for i, (r, c) in enumerate(order):
            assert m.index_map[r, c] == i
        block = m.read_rows(0, rows)
        for r in range(rows):
            for c in range(cols):
                assert_position(block[r, c], r, c)


def test_zip_notebook_file_with_fewer_images_than_points(tmp_path):
    """A short zip leaves beam (0, 0) on the unwritten trailing patterns: the first pattern there wins."""
    rows, cols = 2, 3
    order = [(1, 2), (0, 0), (0, 1), (1, 0)]  # (0, 2) and (1, 1) missing
    path = tmp_path / "short.hdf5"
    write_notebook_zip_file(path, rows, cols, order, n_images=6)
    with pytest.warns(MapFileWarning, match=r"share a beam position.*pattern 4 at row 0, col 0"), open_map(path) as m:
        assert "share a beam position" in m.notes[0]
        assert m.index_map[0, 0] == 1
        assert_position(m.pattern(0, 0), 0, 0)
        assert_position(m.pattern(1, 2), 1, 2)
        with pytest.raises(MapPositionError, match=r"no pattern at map position \(row 1, col 1\)"):
            m.pattern(1, 1)
        block = m.read_rows(0, 2, fill=0)
        assert not block[1, 1].any()
        assert_position(block[1, 0], 1, 0)
        tile = m.read_rows(0, 2, cols=(1, 3), fill=7)  # a tile with a gap in each row
        assert (tile[0, 1] == 7).all() and (tile[1, 0] == 7).all()
        assert_position(tile[0, 0], 0, 1)
        assert_position(tile[1, 1], 1, 2)
        bse = m.bse_map  # computed from the patterns: NaN where there is none
        assert np.isnan(bse[0, 2]) and np.isnan(bse[1, 1])
        assert bse[0, 1] == pytest.approx(encoded(0, 1).mean())


# -- kikuchipy h5ebsd ------------------------------------------------------------------


def test_kikuchipy_h5ebsd():
    path = shared_file("kikuchipy/nickel_ebsd_small.h5")
    with open_map(path) as m:
        assert m.flavour == "kikuchipy" and m.scan == "Scan 1"
        assert m.nav_shape == (3, 3)
        assert m.pattern_shape == (60, 60) and m.dtype == np.uint8
        assert m.step_um == pytest.approx((1.5, 1.5))
        with h5py.File(path) as f:
            raw = f["Scan 1/EBSD/Data/patterns"][()]
        for i in range(9):
            np.testing.assert_array_equal(m.pattern(i // 3, i % 3), raw[i])
        assert m.static_background.shape == (60, 60)
        assert m.pattern_centre.mean == pytest.approx((0.4251, 0.2134, 0.5007), abs=1e-4)
        assert m.kv == pytest.approx(20.0)
        assert m.sample_tilt_deg == pytest.approx(70.0)
        assert m.euler.shape == (3, 3, 3)
        assert m.phases[0]["name"] == "ni" and m.phases[0]["space_group"] == 225
        json.dumps(m.describe())
    with open_map(path, scan="Scan 2") as m:
        assert m.scan == "Scan 2" and m.n_patterns == 9


# -- bad files ------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such map file"):
        open_map(tmp_path / "nope.h5")


def test_not_hdf5(tmp_path):
    path = tmp_path / "text.h5"
    path.write_text("not hdf5")
    with pytest.raises(MapFileError, match="not a readable HDF5 file"):
        open_map(path)


def _edit(path, func):
    with h5py.File(path, "a") as f:
        func(f)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.move("Scan/EBSD", "Scan/SEM"), "no group with an 'EBSD' subgroup"),
        (lambda f: f.__delitem__("Scan/EBSD/Header"), "no 'Scan/EBSD/Header' group"),
        (lambda f: (f["Scan/EBSD/Header"].__delitem__("NCOLS")), "neither NCOLS/NROWS nor n_columns/n_rows"),
        (lambda f: f["Scan/EBSD/Data"].__delitem__("RawPatterns"), "holds no pattern dataset"),
        (lambda f: (f["Scan/EBSD/Header"].__delitem__("indexmap"), f["Scan/EBSD/Header"].create_dataset("indexmap", data=np.zeros((2, 2)))),
         r"indexmap shape \(2, 2\) != \(NROWS, NCOLS\) = \(3, 4\)"),
        (lambda f: f["Scan/EBSD/Header/indexmap"].__setitem__((2, 1), 12), r"indexmap refers to pattern 12 at \(row 2, col 1\) but the file has 12 patterns"),
        (lambda f: f["Scan/EBSD/Header/indexmap"].__setitem__((0, 3), -5), r"indexmap holds -5 at \(row 0, col 3\)"),
    ],
)
def test_bad_files(tmp_path, edit, message):
    path = tmp_path / "m.h5"
    write_row_major(path, rows=3, cols=4)
    _edit(path, edit)
    with pytest.raises(MapFileError, match=message):
        open_map(path)


def test_beam_position_outside_the_map(tmp_path):
    path = tmp_path / "m.h5"
    write_notebook_dir_file(path, 3, 4, indexmap=False)
    _edit(path, lambda f: f["Scan/EBSD/Data/Y BEAM"].__setitem__(5, 3))
    with pytest.raises(MapFileError, match=r"pattern 5 has beam position \(col 1, row 3\) outside the 3 x 4 map"):
        open_map(path)


def test_pattern_count_without_beam_positions(tmp_path):
    path = tmp_path / "m.h5"
    write_notebook_dir_file(path, 3, 4, indexmap=False)

    def edit(f):
        del f["Scan/EBSD/Data/X BEAM"], f["Scan/EBSD/Data/Y BEAM"]
        f["Scan/EBSD/Header/NCOLS"][()] = 5

    _edit(path, edit)
    with pytest.raises(MapFileError, match="12 patterns for a 3 x 5 map and no beam positions"):
        open_map(path)


def test_positions_outside_the_map(tmp_path):
    path = tmp_path / "m.h5"
    write_row_major(path, rows=2, cols=3)
    with open_map(path) as m:
        with pytest.raises(MapPositionError, match=r"map position \(row 2, col 0\) is outside the 2 x 3 map"):
            m.pattern(2, 0)
        with pytest.raises(MapPositionError, match="pattern index out of range 0..5"):
            m.read_indices(np.array([0, 6]))
        with pytest.raises(MapPositionError, match=r"storage index -1 is negative; the patterns are 0..5"):
            m.read(-1, 2)
        with pytest.raises(MapFileError, match=r"no pattern dataset 'Patterns' \(has RawPatterns\)"):
            m.with_dataset("Patterns")


# -- atomic writing ---------------------------------------------------------------------


def test_interrupted_writer_leaves_no_file(tmp_path):
    path = tmp_path / "m.h5"
    with pytest.raises(KeyboardInterrupt):
        with MapWriter(path, nav_shape=(2, 2), pattern_shape=(H, W), dtype="uint16") as w:
            w.write(0, np.stack([encoded(0, 0), encoded(0, 1)]))
            assert w.partial_path.exists()
            raise KeyboardInterrupt
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_incomplete_writer_refuses_and_keeps_previous_file(tmp_path):
    path = tmp_path / "m.h5"
    write_row_major(path, rows=2, cols=2)
    before = path.read_bytes()
    with pytest.raises(MapFileError, match=r"3 of 4 patterns were never written \(first at map position row 0, col 1\)"):
        with MapWriter(path, nav_shape=(2, 2), pattern_shape=(H, W), dtype="uint16") as w:
            w.write(0, encoded(0, 0)[None])
    assert path.read_bytes() == before  # the complete file of before is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["m.h5"]


def test_writer_that_cannot_start_leaves_no_file(tmp_path):
    writer = MapWriter(tmp_path / "m.h5", nav_shape=(1, 2), pattern_shape=(H, W), dtype="uint16", compression={"compression": "nonesuch"})
    with pytest.raises(ValueError, match="nonesuch"):
        with writer:
            pass
    assert list(tmp_path.iterdir()) == []  # no partial file behind
    assert not writer.h5.id.valid  # and none left open


def test_writer_rejects_bad_blocks(tmp_path):
    with MapWriter(tmp_path / "m.h5", nav_shape=(1, 2), pattern_shape=(H, W), dtype="uint16") as w:
        with pytest.raises(ValueError, match=r"patterns of shape \(5, 5\) do not fit this map's \(12, 10\)"):
            w.write(0, np.zeros((1, 5, 5)))
        with pytest.raises(MapPositionError, match="patterns 1:3 outside the map of 2 patterns"):
            w.write(1, np.zeros((2, H, W)))
        with pytest.raises(ValueError, match=r"sums of shape \(3,\) for patterns 0:2; expected \(2,\)"):
            w.write(0, np.zeros((2, H, W)), sums=np.zeros(3))
        w.write(0, np.ones((2, H, W)), sums=np.array([7.0, 9.0]))  # sums made off the writer's thread make the BSE map
    with kikuchi.open(tmp_path / "m.h5") as m:
        np.testing.assert_array_equal(m.bse_map.ravel(), [7.0 / (H * W), 9.0 / (H * W)])


# -- raw chunk reads (inflating outside h5py's lock) ----------------------------------------


@pytest.mark.parametrize(
    ("filters", "direct"),
    [
        ({}, True),
        ({"compression": "gzip", "compression_opts": 9}, True),
        ({"compression": "gzip", "shuffle": True}, True),
        ({"shuffle": True}, True),
        ({"compression": "lzf"}, True),
        ({"compression": "lzf", "shuffle": True}, True),
        ({"compression": "gzip", "fletcher32": True}, False),
    ],
)
@pytest.mark.parametrize("dtype", ["<u2", ">u2", "u1", "<f4"])
def test_chunk_reads_equal_h5py_reads(tmp_path, filters, direct, dtype):
    """Whatever the filters, byte order or stored chunks, read() gives what h5py gives."""
    path = tmp_path / "m.h5"
    rng = np.random.default_rng(5)
    patterns = rng.integers(0, 250, (11, H, W)).astype(dtype)
    with h5py.File(path, "w") as f:
        f["Scan/EBSD/Header/NCOLS"] = 4
        f["Scan/EBSD/Header/NROWS"] = 3
        d = f.create_dataset("Scan/EBSD/Data/RawPatterns", shape=(11, H, W), dtype=dtype, chunks=(4, H, W), **filters)
        d[0:8] = patterns[0:8]  # the last chunk is never stored: it reads as the fill value
        f["Scan/EBSD/Data/X BEAM"] = np.arange(11) % 4
        f["Scan/EBSD/Data/Y BEAM"] = np.arange(11) // 4
    expected = patterns.copy()
    expected[8:] = 0
    with pytest.warns(MapFileWarning, match=r"3 pattern\(s\) in chunks that were never written .*map rows 2\.\.2\) are read as missing"):
        m = open_map(path)
    with m:
        assert m.index_map.reshape(-1)[8:].tolist() == [-1] * 4  # the 3 unwritten points and the one past the 11 patterns
        assert (m._reader.decoder() is not None) == (direct and np.dtype(dtype).isnative)
        for start, stop in [(0, 11), (1, 6), (3, 4), (4, 8), (7, 11), (8, 11)]:
            np.testing.assert_array_equal(m.read(start, stop), expected[start:stop])
        np.testing.assert_array_equal(m.read_indices(np.array([10, 2, 5, 2])), expected[[10, 2, 5, 2]])


def test_contiguous_dataset_is_read_by_h5py(tmp_path):
    path = tmp_path / "m.h5"
    patterns = np.arange(6 * H * W, dtype=np.uint16).reshape(6, H, W)
    with h5py.File(path, "w") as f:
        f["Scan/EBSD/Header/NCOLS"] = 3
        f["Scan/EBSD/Header/NROWS"] = 2
        f["Scan/EBSD/Data/RawPatterns"] = patterns
    with open_map(path) as m:
        assert m._reader.decoder() is None
        np.testing.assert_array_equal(m.read(2, 5), patterns[2:5])
        np.testing.assert_array_equal(m.read_all()[1, 2], patterns[5])


def test_without_isal_zlib_encodes_and_inflates(tmp_path, monkeypatch):
    """ISA-L is optional: without it zlib writes and reads the same chunks."""
    import sys

    monkeypatch.setitem(sys.modules, "isal", None)  # import isal -> ImportError
    path = tmp_path / "m.h5"
    rng = np.random.default_rng(9)
    patterns = rng.integers(0, 4000, (7, H, W)).astype(np.uint16)
    with MapWriter(path, nav_shape=(1, 7), pattern_shape=(H, W), dtype=np.uint16, chunk_patterns=3) as w:
        for s in range(0, 7, 3):
            w.write(s, patterns[s : s + 3], encoded=w.encode_chunk(patterns[s : s + 3]))
    with open_map(path) as m:
        assert m._reader.decoder() == (3, ("shuffle", "deflate"))
        np.testing.assert_array_equal(m.read(), patterns)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["Scan/EBSD/Data/RawPatterns"][()], patterns)


def test_lzf_chunks_decoded_here_equal_h5py(tmp_path):
    """LZF chunks (AZtec's H5OINA) are decompressed outside h5py's lock, also those stored as they are."""
    rng = np.random.default_rng(11)
    smooth = np.arange(4 * H * W, dtype=np.uint16).reshape(4, H, W) // 7
    noise = rng.integers(0, 65535, (4, H, W)).astype(np.uint16)  # incompressible: HDF5 skips the filter
    patterns = np.concatenate([smooth, noise])
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["Scan/EBSD/Header/NCOLS"] = 8
        f["Scan/EBSD/Header/NROWS"] = 1
        f.create_dataset("Scan/EBSD/Data/RawPatterns", data=patterns, chunks=(4, H, W), compression="lzf")
    with h5py.File(path) as f:
        masks = [f["Scan/EBSD/Data/RawPatterns"].id.read_direct_chunk((k, 0, 0))[0] for k in (0, 4)]
    assert masks == [0, 1]  # the noise chunk is stored uncompressed
    with open_map(path) as m:
        assert m._reader.decoder() == (4, ("lzf",))
        for k in range(2):
            np.testing.assert_array_equal(m._reader.decode_chunk(k), patterns[4 * k : 4 * k + 4])
        np.testing.assert_array_equal(m.read(), patterns)


def test_lzf_kernel_refuses_corrupt_streams():
    from kikuchi.io._kernels import lzf_decompress

    assert lzf_decompress(bytes([2, 97, 98, 99, 0x60, 2]), 8).tobytes() == b"abcabcab"
    assert lzf_decompress(bytes([2, 97, 98, 99, 0x60, 9]), 8) is None  # a reference before the start
    assert lzf_decompress(bytes([5, 97]), 6) is None  # a literal run past the end of the input
    assert lzf_decompress(bytes([2, 97, 98, 99]), 8) is None  # shorter than the chunk


def test_one_pattern_lzf_chunks_read_in_runs(tmp_path):
    """AZtec's layout (one LZF chunk per pattern, some stored as they are): any range equals h5py's read."""
    rng = np.random.default_rng(12)
    patterns = np.where(rng.random((50, 1, 1)) < 0.5, rng.integers(0, 65535, (50, H, W)), np.arange(H * W).reshape(H, W) // 5).astype(np.uint16)
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["Scan/EBSD/Header/NCOLS"] = 10
        f["Scan/EBSD/Header/NROWS"] = 5
        f.create_dataset("Scan/EBSD/Data/RawPatterns", data=patterns, chunks=(1, H, W), compression="lzf")
    with open_map(path) as m:
        offsets, sizes, masks = m._reader._chunk_table()
        assert set(masks.tolist()) == {0, 1} and sizes.all()
        for start, stop in [(0, 50), (3, 47), (7, 8), (49, 50)]:
            np.testing.assert_array_equal(m.read(start, stop), patterns[start:stop])
        np.testing.assert_array_equal(np.concatenate([b for _, _, b in m.iter_chunks(7)]), patterns)
    assert m._reader._fd == -1  # closed with the map
