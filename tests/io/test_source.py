"""The pattern-source layer: the registry of formats, dispatch by content, and the generic EBSDMap reads."""

from __future__ import annotations

import importlib
import shutil

import numpy as np
import pytest

import kikuchi
from kikuchi.io.source import (
    FORMAT_MODULES,
    EBSDMap,
    MapFileError,
    MapPositionError,
    formats,
    identify,
    index_map_from_positions,
    open_map,
)
from tests.io._vendor import manifest, vendor_file


class ArrayMap(EBSDMap):
    """A pattern source over an in-memory (N, h, w) array: the smallest complete format."""

    format = "test-array"
    chunk_patterns = 64

    def __init__(self, patterns, index_map, path="memory"):
        from pathlib import Path

        self.path = Path(path)
        self.notes = []
        self.patterns = np.asarray(patterns)
        self.reads = []
        self._set_map(
            nav_shape=index_map.shape, pattern_shape=self.patterns.shape[1:], dtype=self.patterns.dtype,
            n_patterns=len(self.patterns), index_map=index_map,
        )

    def _read_range(self, start, stop, out):
        self.reads.append((start, stop))
        out[...] = self.patterns[start:stop]


@pytest.fixture
def array_map():
    rng = np.random.default_rng(3)
    patterns = rng.integers(0, 255, (7, 4, 5)).astype(np.uint8)
    index_map = np.array([[6, 0, -1], [2, -1, 5], [1, 3, 4]])
    return ArrayMap(patterns, index_map)


def test_every_format_module_is_registered():
    for name in FORMAT_MODULES:
        spec = importlib.import_module(name).FORMAT
        assert formats()[spec.name] is spec
    assert len(formats()) == len(FORMAT_MODULES) == 8
    assert {"kikuchi", "bruker", "h5oina", "edax_h5", "emsoft", "ebsp", "edax_up", "nordif"} <= set(formats())
    assert list(formats())[-1] == "kikuchi"  # the map file's content test runs last: other layouts resemble it


def test_generic_reads_follow_the_index_map(array_map):
    m = array_map
    assert m.nav_shape == (3, 3) and m.pattern_shape == (4, 5) and m.n_patterns == 7
    np.testing.assert_array_equal(m.pattern(0, 0), m.patterns[6])
    np.testing.assert_array_equal(m[2, 2], m.patterns[4])
    full = m.read_all()
    for (r, c), i in np.ndenumerate(m.index_map):
        np.testing.assert_array_equal(full[r, c], m.patterns[i] if i >= 0 else 0)
    assert (m.read_rows(0, 2, fill=9)[1, 1] == 9).all()
    tile = m.read_rows(1, 3, cols=(1, 3))
    np.testing.assert_array_equal(tile[1, 0], m.patterns[3])
    np.testing.assert_array_equal(m.read_indices([[5, 1], [5, 0]])[0, 0], m.patterns[5])
    rows, cols = m.positions
    assert rows.tolist() == [0, 2, 1, 2, 2, 1, 0] and cols.tolist() == [1, 0, 0, 1, 2, 2, 0]
    assert not m.is_row_major
    bse = m.bse_map
    assert np.isnan(bse[0, 2]) and bse[2, 2] == pytest.approx(m.patterns[4].mean())
    assert m.pattern_centre is None and m.orientation_map() is None and m.static_background is None


def test_sparse_indices_read_runs():
    patterns = np.arange(40 * 6, dtype=np.uint16).reshape(40, 2, 3)
    m = ArrayMap(patterns, np.arange(40).reshape(5, 8))
    m.chunk_patterns = 8
    got = m.read_indices(np.array([39, 0, 1, 0]))  # spread too wide for one read: one read per chunk touched
    np.testing.assert_array_equal(got, patterns[[39, 0, 1, 0]])
    assert m.reads == [(0, 2), (39, 40)]
    m.reads.clear()
    np.testing.assert_array_equal(m.read_indices(np.array([3, 5, 4])), patterns[[3, 5, 4]])
    assert m.reads == [(3, 6)]


def test_positions_errors(array_map):
    with pytest.raises(MapPositionError, match=r"\(row 0, col 2\)"):
        array_map.pattern(0, 2)
    with pytest.raises(MapPositionError, match="outside the 3 x 3 map"):
        array_map.pattern(3, 0)
    with pytest.raises(MapPositionError, match="out of range"):
        array_map.read_indices([0, 9])


def test_index_map_from_positions():
    index_map, dup = index_map_from_positions(np.array([1, 0, 1, -1]), np.array([0, 1, 0, 0]), (2, 2), where="f")
    assert index_map.tolist() == [[-1, 1], [0, -1]] and dup == 1
    with pytest.raises(MapFileError, match=r"f: pattern 0 is at \(row 2, col 0\), outside the 2 x 2 map"):
        index_map_from_positions(np.array([2]), np.array([0]), (2, 2), where="f")


def test_unknown_files_are_refused_clearly(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with pytest.raises(MapFileError, match=r"notes\.txt: a file in no pattern format kikuchi reads; formats: .*h5oina"):
        kikuchi.open(notes)
    with pytest.raises(FileNotFoundError, match="none.h5: no such map file"):
        kikuchi.open(tmp_path / "none.h5")
    with pytest.raises(MapFileError, match="unknown pattern format 'tiff'"):
        kikuchi.open(notes, format="tiff")


@pytest.mark.parametrize("name", sorted(n for n in manifest() if "/" not in n or n.startswith("nordif")))
def test_content_decides_not_the_extension(tmp_path, name):
    """Every vendor file is recognised by its content, also under a misleading name."""
    expected = manifest()[name]["format"]
    src = vendor_file(name)
    spec = identify(src)
    family = {"bruker_h5ebsd": "bruker", "h5oina": "h5oina", "oxford_ebsp": "ebsp", "edax_up1": "edax_up", "edax_up2": "edax_up",
              "edax_h5": "edax_h5", "nordif": "nordif", "emsoft_ebsd": "emsoft"}[expected]
    assert spec.name == family
    if family == "nordif":
        return  # recognised by its file name and Setting.txt beside it
    renamed = tmp_path / "renamed.dat"
    shutil.copy(src, renamed)
    assert identify(renamed).name == family


def test_bruker_file_is_not_taken_for_a_map_file():
    """A Bruker ROI file has NCOLS/NROWS like the map file: it must open as Bruker, with all 6 of its patterns."""
    path = vendor_file("bruker_kpdummy_roi_rect.h5")
    with open_map(path) as m:
        assert m.format == "bruker" and m.nav_shape == (3, 2) and (m.index_map >= 0).sum() == 6
