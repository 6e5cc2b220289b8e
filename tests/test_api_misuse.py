"""Misuse of the Python API is refused in one clear line: what was wrong, where, what to do.

Representative cases of each area with their messages; the whole set
(``benchmarks/hostile.py --only api_misuse``) runs through the sweep's judge
at the end: no call may end in a bare ``KeyError``, ``IndexError`` or a
library's exception, nor be accepted and quietly wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

import kikuchi
from benchmarks.hostile_cases import api_misuse
from benchmarks.hostile_cases.pattern_files import make_map_file
from kikuchi.crystal import Phase, PhaseError
from kikuchi.geometry import Detector, PatternCentreError, convert_pc
from kikuchi.io import MapFileError, MapPositionError, MapWriter, open_image_source
from kikuchi.io.convert import ConversionError, convert_images
from kikuchi.io.export import convert_map


@pytest.fixture
def map_file(tmp_path):
    return make_map_file(tmp_path / "m.h5")


# ---------------------------------------------------------------- kikuchi.open


@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        (123, TypeError, r"path 123: expected a file name \(str or pathlib.Path\), got int"),
        (None, TypeError, r"path None: expected a file name"),
    ],
)
def test_open_path_of_the_wrong_type(path, error, message):
    with pytest.raises(error, match=message):
        kikuchi.open(path)


def test_open_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing.h5: no such map file"):
        kikuchi.open(tmp_path / "missing.h5")
    with pytest.raises(MapFileError, match=r"a folder in no pattern format kikuchi reads; formats: bruker"):
        kikuchi.open(tmp_path)


def test_open_options(map_file):
    with pytest.raises(MapFileError, match=r"m.h5: unknown pattern format 'nope'; use one of bruker, h5oina"):
        kikuchi.open(map_file, format="nope")
    with pytest.raises(MapFileError, match=r"m.h5: no pattern dataset 'Nope' \(has RawPatterns\)"):
        kikuchi.open(map_file, dataset="Nope")
    with pytest.raises(MapFileError, match=r"m.h5: dataset=3: expected the name of a dataset"):
        kikuchi.open(map_file, dataset=3)
    with pytest.raises(TypeError, match=r"m.h5: the kikuchi format has no option 'nav_shape'"):
        kikuchi.open(map_file, nav_shape=(2, 2))


# ---------------------------------------------------------------- EBSDMap methods


def test_map_positions(map_file):
    with kikuchi.open(map_file) as m:
        with pytest.raises(MapPositionError, match=r"m.h5: map position \(row -1, col 0\) is outside the 3 x 4 map"):
            m.pattern(-1, 0)  # never the last row, as Python's negative indices would give
        with pytest.raises(TypeError, match=r"row=1.5: expected a whole number, got float"):
            m.pattern(1.5, 0)
        with pytest.raises(TypeError, match=r"m\[0\]: give a map position m\[row, col\] \(two whole numbers\); for patterns in storage order use m.read"):
            m[0]
        with pytest.raises(MapPositionError, match=r"storage index -3 is negative; the patterns are 0..11"):
            m.read(0, -3)
        with pytest.raises(MapPositionError, match=r"storage index 12: pattern index out of range 0..11"):
            m.read_indices([12])
        with pytest.raises(TypeError, match=r"storage indices of float64 \(\[0, 1.5\]\): expected whole numbers"):
            m.read_indices([0, 1.5])
        with pytest.raises(ValueError, match=r"chunk_patterns=-3: a chunk holds at least 1 pattern"):
            list(m.iter_chunks(-3))
        with pytest.raises(MapPositionError, match=r"map columns 3:1: the end comes before the start"):
            m.read_rows(0, 2, cols=(3, 1))
        assert m.pattern(np.int64(1), np.uint8(2)).shape == (12, 16)
    with pytest.raises(MapFileError, match=r"m.h5: the file is closed; open it again"):
        m.read(0, 1)


# ---------------------------------------------------------------- MapWriter


def test_writer_arguments(tmp_path):
    good = {"nav_shape": (2, 3), "pattern_shape": (4, 5), "dtype": "uint8"}
    with pytest.raises(ValueError, match=r"nav_shape=\(2.5, 3\): expected \(rows, cols\), two whole numbers of at least 1"):
        MapWriter(tmp_path / "a.h5", **{**good, "nav_shape": (2.5, 3)})
    with pytest.raises(ValueError, match=r"dtype='complex64': map files hold patterns of uint8, uint16 or float32"):
        MapWriter(tmp_path / "a.h5", **{**good, "dtype": "complex64"})
    with pytest.raises(ValueError, match=r"step_um=0: expected a number greater than 0 µm"):
        MapWriter(tmp_path / "a.h5", **good, step_um=(0, 1))
    with pytest.raises(ValueError, match=r"dataset='Other': expected 'RawPatterns' \(acquired patterns\) or 'Patterns'"):
        MapWriter(tmp_path / "a.h5", **good, dataset="Other")
    with pytest.raises(ValueError, match=r"chunk_patterns=0: expected a whole number of at least 1"):
        MapWriter(tmp_path / "a.h5", **good, chunk_patterns=0)
    assert not list(tmp_path.iterdir())


def test_writer_values_that_do_not_fit_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"patterns 0:1: values 300..300 do not fit uint8 \(0..255\); scale or clip them first"):
        with MapWriter(tmp_path / "a.h5", nav_shape=(1, 1), pattern_shape=(2, 2), dtype="uint8") as w:
            w.write(0, np.full((1, 2, 2), 300))  # never stored as 44 (300 mod 256)
    with pytest.raises(ValueError, match=r"NaN or infinite values cannot be stored as uint16"):
        with MapWriter(tmp_path / "a.h5", nav_shape=(1, 1), pattern_shape=(2, 2), dtype="uint16") as w:
            w.write(0, np.full((1, 2, 2), np.nan))
    assert not list(tmp_path.iterdir())


def test_writer_used_outside_or_twice(tmp_path):
    w = MapWriter(tmp_path / "a.h5", nav_shape=(1, 1), pattern_shape=(2, 2), dtype="uint8")
    with pytest.raises(ValueError, match=r"MapWriter is used outside its 'with' block"):
        w.write(0, np.zeros((1, 2, 2), np.uint8))
    with w:
        w.write(0, np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"this MapWriter was used already; make a new one for each file"), w:
        pass
    with pytest.raises(ValueError, match=r"MapWriter is used outside its 'with' block"):
        w.write(0, np.zeros((1, 2, 2), np.uint8))


def test_writer_header_values(tmp_path):
    with MapWriter(tmp_path / "a.h5", nav_shape=(1, 2), pattern_shape=(2, 2), dtype="uint8") as w:
        w.write(0, np.zeros((2, 2, 2), np.uint8))
        with pytest.raises(TypeError, match=r"SampleTilt='seventy': expected a number"):
            w.set_attrs(SampleTilt="seventy")
        with pytest.raises(ValueError, match=r"unknown pattern centre convention 'nope'"):
            w.set_pattern_centre(0.5, 0.5, 0.5, convention="nope")
        with pytest.raises(ValueError, match=r"pattern centre PCX holds 4 values; give one for the map or one per point \(2\)"):
            w.set_pattern_centre([0.5] * 4, 0.5, 0.5, convention="bruker")
        with pytest.raises(TypeError, match=r"phases='Ni': expected a list of dicts"):
            w.set_phases("Ni")


# ---------------------------------------------------------------- conversion


def test_convert_arguments(tmp_path, map_file):
    with pytest.raises(ValueError, match=r"step_um=0: expected a number greater than 0 µm"):
        convert_images(tmp_path, tmp_path / "o.h5", step_um=0, progress=False)
    with pytest.raises(ConversionError, match=r"binning 'two': expected a positive integer"):
        convert_images(tmp_path, tmp_path / "o.h5", binning="two", progress=False)
    with pytest.raises(TypeError, match=r"out=123: expected a file name"):
        convert_images(tmp_path, 123, progress=False)
    with pytest.raises(ValueError, match=r"workers=-1: expected a whole number of at least 1"):
        convert_map(map_file, tmp_path / "o.h5", workers=-1, progress=False)
    with pytest.raises(ValueError, match=r"output .*m.h5 is the input file; choose another output path"):
        convert_map(map_file, map_file, progress=False)


# ---------------------------------------------------------------- simulation, crystal, geometry, explorer


def test_simulate_arguments(tmp_path):
    small = {"pattern_shape": (12, 12), "grains": 2, "progress": False}
    with pytest.raises(ValueError, match=r"shape=\(2.5, 3\): expected \(rows, cols\), two whole numbers of at least 1"):
        kikuchi.simulate(tmp_path / "s.h5", shape=(2.5, 3), **small)
    with pytest.raises(ValueError, match=r"step_um=0: expected a number greater than 0 µm"):
        kikuchi.simulate(tmp_path / "s.h5", shape=(2, 2), step_um=0, **small)
    with pytest.raises(ValueError, match=r"unknown pattern centre convention 'nope'"):
        kikuchi.simulate(tmp_path / "s.h5", shape=(2, 2), pc_convention="nope", **small)
    with pytest.raises(ValueError, match=r"sample_tilt_deg=1e\+300: expected a number in -90..90 degrees"):
        kikuchi.simulate(tmp_path / "s.h5", shape=(2, 2), sample_tilt_deg=1e300, **small)
    with pytest.raises(TypeError, match=r"seed='a': expected a whole number, got str"):
        kikuchi.simulate(tmp_path / "s.h5", shape=(2, 2), seed="a", **small)
    assert not list(tmp_path.iterdir())


def test_crystal_and_geometry_arguments():
    with pytest.raises(PhaseError, match=r"phase 'ni:999:0.35': space group number must be 1-230, got 999"):
        Phase.parse("ni:999:0.35")
    with pytest.raises(ValueError, match=r"binning must be a positive integer, got 1.5"):
        Detector((10, 10), binning=1.5)
    with pytest.raises(ValueError, match=r"sample_tilt_deg=nan: expected a finite number"):
        Detector((10, 10), sample_tilt_deg=float("nan"))
    with pytest.raises(PatternCentreError, match=r"pattern centre 'abc': expected numbers \(x, y, z\)"):
        convert_pc("abc", "bruker", "edax", shape=(10, 10))


def test_explore_arguments(map_file):
    with pytest.raises(ValueError, match=r"port=70000: expected a whole number of at least 0 and at most 65535"):
        kikuchi.explore(map_file, port=70000)
    with pytest.raises(TypeError, match=r"open_browser='yes': expected True or False"):
        kikuchi.explore(map_file, open_browser="yes")
    with pytest.raises(OSError, match=r"host '999.1.1.1': .*; give an address of this computer, e.g. 127.0.0.1"):
        kikuchi.explore(map_file, host="999.1.1.1")


def test_image_source_arguments(tmp_path):
    import tifffile

    for c in range(2):
        tifffile.imwrite(tmp_path / f"0_{c}.tiff", np.zeros((4, 4), np.uint8))
    src = open_image_source(tmp_path)
    with pytest.raises(IndexError, match=r"image -1 is not one of the 2 images \(0..1\)"):
        src.read(-1)
    with pytest.raises(TypeError, match=r"nav_shape='ab': expected \(rows, cols\)"):
        src.positions("ab")


# ---------------------------------------------------------------- every case of the sweep


def test_every_misuse_of_the_sweep_is_refused_clearly(tmp_path):
    from benchmarks.hostile_cases._case import judge

    results = [judge(case) for case in api_misuse.cases(tmp_path)]
    others = [f"[{r.cls}] {r.label}: {r.detail}" for r in results if r.outcome == "other"]
    assert not others, "\n".join(others)
    assert len(results) > 300
