"""Bruker Esprit h5ebsd: the vendor files, ROI and out-of-order placement, per-point PCs, bad files."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.io import bruker
from kikuchi.io._h5 import H5Patterns
from kikuchi.io.bruker import BrukerH5EBSD, write_bruker_h5
from kikuchi.io.mapstore import MapWriter
from kikuchi.io.source import MapFileError, MapFileWarning, MapPositionError, identify
from tests.io._vendor import assert_matches_manifest, manifest, vendor_file

BRUKER_FILES = [
    "bruker_kpdummy_full.h5",
    "bruker_kpdummy_roi_rect.h5",
    "bruker_kpdummy_roi_nonrect.h5",
    "bruker_custom_u8_fullmap_shuffled_semIXIY.h5",
    "bruker_custom_u8_ordered.h5",
]


def marked(rows: int, cols: int, h: int = 6, w: int = 5, dtype=np.uint16) -> np.ndarray:
    """(rows, cols, h, w) patterns that say where they belong: [0, 0] flat index, [0, 1] row, [0, 2] col."""
    rng = np.random.default_rng(rows * 100 + cols)
    p = rng.integers(0, 200, size=(rows, cols, h, w)).astype(dtype)
    r, c = np.mgrid[:rows, :cols]
    p[..., 0, 0], p[..., 0, 1], p[..., 0, 2] = r * cols + c, r, c
    return p


def copy_of(name: str, tmp_path):
    path = tmp_path / name
    shutil.copyfile(vendor_file(name), path)  # copyfile: the copy is writable
    return path


def edit(path, func) -> None:
    with h5py.File(path, "a") as f:
        func(f)


# -- the vendor files ------------------------------------------------------------------


@pytest.mark.parametrize("name", BRUKER_FILES)
def test_vendor_files_open_by_content_and_match_the_manifest(name):
    path = vendor_file(name)
    assert manifest()[name]["format"] == "bruker_h5ebsd"
    assert identify(path).name == "bruker"  # not the kikuchi map file, whose header also has NCOLS/NROWS
    with kikuchi.open(path) as m:
        assert isinstance(m, BrukerH5EBSD) and m.format == "bruker" and m.scan == "Scan 0"
        assert m.notes == []
        assert_matches_manifest(m, name)
        assert m.sample_tilt_deg == 70.0  # from 'SampleTilt' (kikuchipy looks for 'Sample Tilt' and gets 0)
        json.dumps(m.describe())


def test_full_map_of_kikuchipys_dummy_is_row_major():
    with kikuchi.open(vendor_file("bruker_kpdummy_full.h5")) as m:
        assert m.is_row_major and m.roi_origin is None
        assert m.step_um == (1.5, 1.5) and m.kv == 20.0 and m.pixel_size_um == 1.0 and m.binning == 1
        assert m.static_background.shape == (60, 60) and m.static_background.dtype == np.uint16
        assert m.phases == [{"id": 1, "name": "Nickel", "space_group": 225, "lattice": [0.356, 0.356, 0.356, 90.0, 90.0, 90.0],
                             "formula": "Ni", "space_group_symbol": "Fm-3m"}]
        np.testing.assert_allclose(m.euler, np.deg2rad(1.0))  # phi1 = PHI = phi2 = 1 (degrees in Esprit files)
        assert m.phase_id.tolist() == [[1] * 3] * 3


def test_rectangular_roi_is_placed_by_its_labels():
    with kikuchi.open(vendor_file("bruker_kpdummy_roi_rect.h5")) as m:
        ix, iy = m.h5["Scan 0/EBSD/SEM/IX"][()], m.h5["Scan 0/EBSD/SEM/IY"][()]
        assert m.nav_shape == (3, 2) and m.roi_origin == (0, 1)  # the ROI's box inside the 3 x 3 scan
        assert m.index_map.tolist() == [[1, 2], [0, 3], [4, 5]]
        for k in range(m.n_patterns):  # storage order and map position agree
            np.testing.assert_array_equal(m.read(k, k + 1)[0], m[iy[k] - iy.min(), ix[k] - ix.min()])
        assert m.describe()["roi_origin"] == [0, 1]


def test_nonrectangular_roi_has_points_without_pattern():
    with kikuchi.open(vendor_file("bruker_kpdummy_roi_nonrect.h5")) as m:
        assert m.nav_shape == (3, 2)
        assert m.index_map.tolist() == [[1, 2], [0, 4], [3, -1]]
        with pytest.raises(MapPositionError, match=r"no pattern at map position \(row 2, col 1\)"):
            m.pattern(2, 1)
        assert (m.read_rows(2, 3, fill=7)[0, 1] == 7).all()
        pc = m.pattern_centre
        assert np.isnan(pc.pcx[2, 1]) and np.isnan(pc.dd[2, 1]) and pc.pcx[0, 0] == 1.0
        assert m.phase_id[2, 1] == 0 and np.isnan(m.euler[2, 1]).all()
        assert m.describe()["points_without_pattern"] == 1


def test_out_of_order_full_map_reads_in_storage_order_and_places_by_sem_ix_iy():
    with kikuchi.open(vendor_file("bruker_custom_u8_fullmap_shuffled_semIXIY.h5")) as m:
        ix, iy = m.h5["Scan 0/SEM/SEM IX"][()], m.h5["Scan 0/SEM/SEM IY"][()]
        assert not m.is_row_major
        assert m.index_map[iy, ix].tolist() == list(range(12))
        stored = m.read()  # storage order
        for k in range(12):
            assert stored[k, 0, :3].tolist() == [iy[k] * 4 + ix[k], iy[k], ix[k]]  # marker: flat index, row, col
            np.testing.assert_array_equal(stored[k], m.pattern(int(iy[k]), int(ix[k])))
        np.testing.assert_array_equal(m.read_rows(1, 2, cols=(1, 3))[0], m.read_all()[1, 1:3])
        rows, cols = m.positions
        assert rows.tolist() == iy.tolist() and cols.tolist() == ix.tolist()


def test_pattern_centre_follows_the_patterns_of_the_shuffled_file():
    with kikuchi.open(vendor_file("bruker_custom_u8_fullmap_shuffled_semIXIY.h5")) as m, \
         kikuchi.open(vendor_file("bruker_custom_u8_ordered.h5")) as ordered:
        assert m.h5["Scan 0/EBSD/Data/PCX"][0] == pytest.approx(0.40)  # stored first: pattern of map (1, 0) ...
        assert m.pattern_centre.pcx[0, 0] == pytest.approx(0.40) and m.pattern_centre.pcy[0, 0] == pytest.approx(0.20)
        assert m.pattern_centre.dd[0, 0] == pytest.approx(0.60)  # ... while map (0, 0) holds stored pattern 3
        a, b = m.pattern_centre, ordered.pattern_centre
        for x, y in ((a.pcx, b.pcx), (a.pcy, b.pcy), (a.dd, b.dd)):
            np.testing.assert_array_equal(x, y)
        assert a.convention == a.file_convention == "bruker" and not a.is_uniform
        np.testing.assert_allclose(m.detector.pc[0, 0], (0.40, 0.20, 0.60), atol=1e-7)
        assert m.camera_tilt_deg == 3.5 and m.step_um == (1.0, 2.0) and m.pixel_size_um == 400.0


def test_pc_follows_the_patterns_of_a_shuffled_nonrectangular_roi(tmp_path):
    """kikuchipy reorders ROI patterns but not their PCs; here each PC stays with its pattern."""
    pats = marked(3, 4)
    mask = np.ones((3, 4), bool)
    mask[0, 3] = mask[2, 0] = False
    r, c = np.mgrid[:3, :4]
    pc = np.stack([0.4 + 0.01 * c, 0.2 + 0.01 * r, 0.6 + 0.001 * (r * 4 + c)], axis=-1)
    order = np.flatnonzero(mask.ravel())[::-1]  # stored backwards
    path = write_bruker_h5(tmp_path / "roi.h5", pats, pc=pc, order=order, mask=mask, roi_origin=(5, 7), step_um=(0.5, 0.25))
    with kikuchi.open(path) as m:
        assert m.roi_origin == (5, 7) and m.nav_shape == (3, 4) and m.step_um == (0.5, 0.25)
        assert m.index_map[0, 3] == m.index_map[2, 0] == -1 and m.index_map[2, 3] == 0
        got = np.stack([m.pattern_centre.pcx, m.pattern_centre.pcy, m.pattern_centre.dd], axis=-1)
        np.testing.assert_allclose(got[mask], pc[mask], atol=1e-7)
        assert np.isnan(got[~mask]).all()
        data = m.read_all()
        np.testing.assert_array_equal(data[mask], pats[mask])
        assert (data[~mask] == 0).all()


# -- the writer: round trips ---------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "chunks", "compression"), [(np.uint8, None, None), (np.uint16, 5, "gzip"), (np.uint8, False, None)])
def test_round_trip_with_a_storage_permutation(tmp_path, dtype, chunks, compression):
    pats = marked(4, 6, dtype=dtype)
    order = np.random.default_rng(1).permutation(24)
    euler = np.deg2rad(np.random.default_rng(2).uniform(0, 90, size=(4, 6, 3)))
    path = write_bruker_h5(tmp_path / "b.h5", pats, order=order, chunks=chunks, compression=compression, euler=euler,
                           sample_tilt_deg=68.0, camera_tilt_deg=-2.0, step_um=(0.3, 0.2), static_background=pats[0, 0])
    with kikuchi.open(path) as m:
        assert m.format == "bruker" and not m.is_row_major and m.notes == []
        np.testing.assert_array_equal(m.read_all(), pats)
        np.testing.assert_array_equal(m.read(), pats.reshape(24, 6, 5)[order])  # storage order
        starts = [start for start, _, _ in m.iter_chunks(7)]
        assert starts == [0, 7, 14, 21]
        np.testing.assert_array_equal(np.concatenate([b for _, _, b in m.iter_chunks()]), m.read())
        if chunks == 5:
            assert m.chunk_patterns % 5 == 0 and m.describe()["compression"] == "gzip"
        np.testing.assert_allclose(m.euler, euler, atol=1e-6)
        assert m.phase_id.min() == 1
        assert (m.sample_tilt_deg, m.camera_tilt_deg, m.step_um) == (68.0, -2.0, (0.3, 0.2))
        np.testing.assert_array_equal(m.static_background, pats[0, 0])
        np.testing.assert_array_equal(m.read_indices([[5, 0], [5, 23]]), m.read()[[[5, 0], [5, 23]]])


def test_unindexed_map_has_no_orientations_and_one_pc_for_the_map(tmp_path):
    path = write_bruker_h5(tmp_path / "b.h5", marked(2, 3), pc=(0.45, 0.25, 0.55))  # no euler: Phase 0 everywhere
    edit(path, lambda f: [_set(f"Scan 0/EBSD/Data/{k}", np.array([v], np.float32))(f) for k, v in (("PCX", 0.4), ("PCY", 0.3), ("DD", 0.5))])
    with kikuchi.open(path) as m:
        assert m.euler is None and (m.phase_id == 0).all()
        assert m.pattern_centre.is_uniform and m.pattern_centre.mean == pytest.approx((0.4, 0.3, 0.5))
        assert m.detector.pc_mean == pytest.approx((0.4, 0.3, 0.5))


def test_reopen_with_open_options_and_write_back_through_the_format(tmp_path):
    with kikuchi.open(vendor_file("bruker_kpdummy_roi_nonrect.h5")) as m:
        assert m.open_options == {"format": "bruker", "scan": "Scan 0", "dataset": "RawPatterns"}
        with kikuchi.open(m.path, **m.open_options) as again:
            np.testing.assert_array_equal(again.index_map, m.index_map)
        out = bruker.FORMAT.writes(tmp_path / "copy.h5", m)
        with kikuchi.open(out) as copy:
            assert copy.nav_shape == m.nav_shape and copy.n_patterns == 5
            np.testing.assert_array_equal(copy.index_map >= 0, m.index_map >= 0)
            np.testing.assert_array_equal(copy.read_all(), m.read_all())


def test_opening_reads_no_pattern(tmp_path, monkeypatch):
    path = write_bruker_h5(tmp_path / "b.h5", marked(3, 4), order=np.arange(12)[::-1])

    def refuse(*args, **kwargs):
        raise AssertionError("patterns read")

    monkeypatch.setattr(H5Patterns, "read_into", refuse)
    monkeypatch.setattr(H5Patterns, "decode_chunk", refuse)
    monkeypatch.setattr(h5py.Dataset, "read_direct", refuse)
    with kikuchi.open(path) as m:
        m.describe(), m.pattern_centre, m.euler, m.point_data()
        assert m.index_map[0, 0] == 11
    monkeypatch.undo()
    with kikuchi.open(path) as m:
        assert m.read(0, 1)[0, 0, 0] == 11


def test_kikuchi_map_file_is_still_the_kikuchi_format(tmp_path):
    path = tmp_path / "mine.h5"
    with MapWriter(path, nav_shape=(2, 2), pattern_shape=(4, 5), dtype="uint8") as w:
        w.write(0, np.zeros((4, 4, 5), np.uint8))
    assert identify(path).name == "kikuchi"


def test_bruker_layout_without_manufacturer_is_recognised(tmp_path):
    path = copy_of("bruker_custom_u8_ordered.h5", tmp_path)
    edit(path, lambda f: f.__delitem__("Manufacturer"))
    assert identify(path).name == "bruker"


# -- edge cases -----------------------------------------------------------------------------


def truncate(path, keep: int) -> None:
    def cut(f):
        d = f["Scan 0/EBSD/Data"]
        kept = d["RawPatterns"][:keep]
        del d["RawPatterns"]
        d["RawPatterns"] = kept

    edit(path, cut)


def test_truncated_out_of_order_file_reads_the_complete_points(tmp_path):
    pats = marked(3, 4)
    order = np.random.default_rng(3).permutation(12)
    path = write_bruker_h5(tmp_path / "t.h5", pats, order=order)
    truncate(path, 10)
    with pytest.warns(MapFileWarning, match=r"holds 10 patterns but the file gives 12 map positions: the last 2 points have no pattern"):
        m = kikuchi.open(path)
    with m:
        missing = order[10:]
        assert sorted(np.flatnonzero(m.index_map.ravel() < 0).tolist()) == sorted(missing.tolist())
        data = m.read_all().reshape(12, 6, 5)
        have = np.setdiff1d(np.arange(12), missing)
        np.testing.assert_array_equal(data[have], pats.reshape(12, 6, 5)[have])
        assert (data[missing] == 0).all()
        assert np.isnan(m.pattern_centre.pcx.ravel()[missing]).all()
        assert len(m.notes) == 1


def test_truncated_row_major_file(tmp_path):
    path = copy_of("bruker_kpdummy_full.h5", tmp_path)
    truncate(path, 7)
    with pytest.warns(MapFileWarning, match=r"holds 7 patterns for the 3 x 3 map \(9 points\): the last 2 points have no pattern"):
        m = kikuchi.open(path)
    with m:
        assert m.index_map.ravel().tolist() == [0, 1, 2, 3, 4, 5, 6, -1, -1]
        assert m.read_all().reshape(9, -1).sum(axis=1).tolist()[:7] == manifest()["bruker_kpdummy_full.h5"]["pattern_sums_map_order"][:7]
        assert m.point_data()["PCX"].shape == (7,)


def test_truncated_roi(tmp_path):
    path = copy_of("bruker_kpdummy_roi_nonrect.h5", tmp_path)
    truncate(path, 4)
    with pytest.warns(MapFileWarning, match="holds 4 patterns but the file gives 5 map positions"):
        m = kikuchi.open(path)
    with m:
        assert m.index_map.tolist() == [[1, 2], [0, -1], [3, -1]]


def _set(path: str, value):
    def func(f):
        del f[path]
        f[path] = value

    return func


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda f: f.__delitem__("Scan 0/EBSD/Header/NCOLS"), r"header value 'Scan 0/EBSD/Header/NCOLS' is missing"),
        (_set("Scan 0/EBSD/Header/NROWS", np.zeros(0, np.int32)), r"'Scan 0/EBSD/Header/NROWS' is empty \(shape \(0,\)\)"),
        (_set("Scan 0/EBSD/Header/NROWS", np.array([b"three"])), r"'Scan 0/EBSD/Header/NROWS' is 'three', not a number"),
        (_set("Scan 0/EBSD/Header/NROWS", 2.5), r"'Scan 0/EBSD/Header/NROWS' is 2.5; expected a count"),
        (_set("Scan 0/EBSD/Header/XSTEP", np.array([b"1.0 um"])), r"'Scan 0/EBSD/Header/XSTEP' is '1.0 um', not a number"),
        (_set("Scan 0/EBSD/Header/SampleTilt", np.float64(np.nan)), r"'Scan 0/EBSD/Header/SampleTilt' is nan, not a finite number"),
        (_set("Scan 0/EBSD/Data/RawPatterns", np.zeros((0, 48, 60), np.uint8)), r"'Scan 0/EBSD/Data/RawPatterns' holds no patterns \(shape \(0, 48, 60\)\)"),
        (_set("Scan 0/EBSD/Data/RawPatterns", np.zeros((12, 0, 60), np.uint8)), r"patterns of 0 x 60 pixels"),
        (_set("Scan 0/EBSD/Data/RawPatterns", np.zeros((12, 48 * 60), np.uint8)), r"has shape \(12, 2880\); patterns are \(N, height, width\)"),
        (lambda f: f.__delitem__("Scan 0/EBSD/Data/RawPatterns"), r"'Scan 0/EBSD/Data' has no pattern dataset 'RawPatterns'"),
        (lambda f: f["Scan 0/SEM/SEM IY"].__setitem__(3, 5), r"pattern 3 is at \(row 5, col 0\), outside the 3 x 4 map"),
        (lambda f: f["Scan 0/SEM/SEM IX"].__setitem__(2, -1), r"'Scan 0/SEM/SEM IX' holds a negative map position \(-1 for pattern 2\)"),
        (_set("Scan 0/SEM/SEM IX", np.arange(11)), r"'Scan 0/SEM/SEM IX' has 11 entries but 'SEM IY' has 12"),
        (lambda f: f.move("Scan 0/EBSD", "Scan 0/XBSD"), r"no scan group with 'EBSD/Data' and 'EBSD/Header'"),
    ],
)
def test_bad_files_get_a_clear_error(tmp_path, func, message):
    path = copy_of("bruker_custom_u8_fullmap_shuffled_semIXIY.h5", tmp_path)
    edit(path, func)
    with pytest.raises(MapFileError, match=message) as err:
        kikuchi.open(path, format="bruker")
    assert str(err.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("func", "message"),
    [
        (lambda f: f.__delitem__("Scan 0/EBSD/Header/XSTEP"), r"no XSTEP in the header; the step is taken as 1 µm"),
        (lambda f: f.__delitem__("Scan 0/EBSD/Header/SampleTilt"), r"no SampleTilt in the header; the sample tilt is taken as 70°"),
        (_set("Scan 0/EBSD/Header/PatternWidth", np.int32(64)), r"header says PatternWidth 64, but 'RawPatterns' holds 48 x 60 patterns"),
        (_set("Scan 0/EBSD/Data/PCX", np.full(8, 0.5, np.float32)), r"per-pattern datasets shorter than the 12 patterns: PCX \(8\)"),
        (_set("Scan 0/EBSD/Header/Grid Type", np.array([b"hexagonal"])), r"Grid Type is 'hexagonal', not 'isometric'"),
        (_set("Scan 0/EBSD/Header/UnClippedPatternHeight", np.int32(60)), r"patterns are clipped \(PatternHeight 48 of UnClippedPatternHeight 60"),
        (lambda f: f["Scan 0/SEM/SEM IX"].__setitem__(2, 0), r"1 patterns share a map position with an earlier one in SEM IX/IY"),
    ],
)
def test_oddities_are_read_around_with_a_warning(tmp_path, func, message):
    path = copy_of("bruker_custom_u8_fullmap_shuffled_semIXIY.h5", tmp_path)
    edit(path, func)
    with pytest.warns(MapFileWarning, match=message):
        m = kikuchi.open(path)
    with m:
        assert len(m.notes) == 1 and m.describe()["notes"] == m.notes
        assert m.read_all().shape == (3, 4, 48, 60)
        if "XSTEP" in message:
            assert m.step_um == (1.0, 1.0)
        if "PCX" in message:
            assert np.isnan(m.pattern_centre.pcx).sum() == 4


def test_roi_positions_of_unequal_length(tmp_path):
    path = copy_of("bruker_kpdummy_roi_rect.h5", tmp_path)
    edit(path, _set("Scan 0/EBSD/SEM/IY", np.array([1, 0, 0], np.int32)))
    with pytest.raises(MapFileError, match=r"'Scan 0/EBSD/SEM/IX' has 6 entries but 'IY' has 3"):
        kikuchi.open(path)


def test_wrong_scan_dataset_and_not_hdf5(tmp_path):
    path = vendor_file("bruker_kpdummy_full.h5")
    with pytest.raises(MapFileError, match=r"no scan 'Scan 1' with 'EBSD/Data' and 'EBSD/Header' \(scans: Scan 0\)"):
        kikuchi.open(path, scan="Scan 1")
    with pytest.raises(MapFileError, match=r"no pattern dataset 'Patterns' in 'Scan 0/EBSD/Data' \(has RawPatterns\)"):
        kikuchi.open(path, dataset="Patterns")
    text = tmp_path / "x.h5"
    text.write_text("not hdf5")
    with pytest.raises(MapFileError, match="not a readable HDF5 file"):
        kikuchi.open(text, format="bruker")
