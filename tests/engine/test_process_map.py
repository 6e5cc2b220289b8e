"""process_map: streamed, identical on every executor, resumable, metadata kept."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import kikuchi
from kikuchi.engine import mean_pattern, process_map, process_pattern_at
from kikuchi.engine import process as process_map_module
from kikuchi.io._atomic import partial_path
from kikuchi.process import ProcessingSettings, process_patterns
from tests.conftest import shared_file

SETTINGS = ProcessingSettings(npa=1, sigma=4.0, dtype="float32")


def read(path):
    with kikuchi.open(path) as m:
        return m.read_all(), m.index_map.copy(), m.processing


def test_equals_in_memory_pipeline_with_gaps(small_map, tmp_path):
    out = process_map(small_map, tmp_path / "out.h5", SETTINGS, progress=False, chunk_rows=2)
    got, index_map, processing = read(out)
    with kikuchi.open(small_map) as m:
        have = m.index_map >= 0
        expected = process_patterns(m.read_all(), SETTINGS, static_background=m.static_background, have=have)
        bse = m.bse_map
    np.testing.assert_array_equal(got, expected)
    assert (index_map == -1).sum() == 2 and index_map[2, 3] == -1
    assert processing["npa"] == 1 and processing["sigma_px"] == 4.0 and processing["static_background_used"]
    with kikuchi.open(out) as o:
        np.testing.assert_allclose(o.bse_map[have], bse[have])
        with pytest.raises(kikuchi.io.MapPositionError, match=r"no pattern at map position \(row 2, col 3\)"):
            o.pattern(2, 3)


@pytest.mark.parametrize("executor", ["threads", "distributed"])
def test_executors_give_identical_files(small_map, tmp_path, executor, dask_inprocess):
    serial = process_map(small_map, tmp_path / "serial.h5", SETTINGS, progress=False, chunk_rows=2)
    other = process_map(
        small_map,
        tmp_path / f"{executor}.h5",
        SETTINGS,
        executor=executor,
        workers=2,
        scheduler=dask_inprocess if executor == "distributed" else None,
        progress=False,
        chunk_rows=2,
    )
    np.testing.assert_array_equal(read(serial)[0], read(other)[0])


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_tiles_give_the_same_file(small_map, tmp_path, executor):
    """Tiles of 2 x 2 map points (halo columns read on either side, row segments written one by one)."""
    s = ProcessingSettings(npa=1, sigma=4.0, dtype="uint16")
    bands = process_map(small_map, tmp_path / "bands.h5", s, progress=False, chunk_rows=2)
    tiles = process_map(
        small_map, tmp_path / "tiles.h5", s, progress=False, chunk_rows=2, chunk_cols=2, executor=executor, workers=2
    )
    a, b = read(bands), read(tiles)
    np.testing.assert_array_equal(b[0], a[0])
    np.testing.assert_array_equal(b[1], a[1])
    with kikuchi.open(bands) as x, kikuchi.open(tiles) as y:
        np.testing.assert_array_equal(y.bse_map, x.bse_map)
        assert y._patterns.chunks[0] == 1  # gcd(5 columns, 2) = 1: every row segment is whole chunks


def test_tiles_of_several_hdf5_chunks_per_row_segment(tmp_path, rng):
    """A 7 x 10 map in tiles of 3 x 4 points: HDF5 chunks of gcd(10, 4) = 2 patterns, row segments
    of 2, 2 and 1 chunks written with their own compressed bytes; the same file as bands."""
    from tests.engine.conftest import write_map

    path = write_map(tmp_path / "wide.h5", rng.integers(50, 200, (7, 10, 20, 24)).astype(np.uint8))
    s = ProcessingSettings(npa=1, sigma=3.0, dtype="uint16")
    bands = process_map(path, tmp_path / "bands.h5", s, progress=False, chunk_rows=2)
    tiles = process_map(path, tmp_path / "tiles.h5", s, progress=False, chunk_rows=3, chunk_cols=4, executor="threads", workers=2)
    with kikuchi.open(bands) as x, kikuchi.open(tiles) as y:
        assert y._patterns.chunks[0] == 2
        np.testing.assert_array_equal(y.read_all(), x.read_all())
        np.testing.assert_array_equal(y.bse_map, x.bse_map)


@pytest.mark.slow  # starting and stopping two worker processes takes about 8 s on 2 cores
def test_local_cluster_of_processes(small_map, tmp_path):
    """One run on real worker processes (LocalCluster, --workers): the same file."""
    s = ProcessingSettings(npa=1, sigma=4.0, dtype="uint16")
    serial = process_map(small_map, tmp_path / "serial.h5", s, progress=False, chunk_rows=3)
    procs = process_map(small_map, tmp_path / "procs.h5", s, executor="distributed", workers=2, progress=False, chunk_rows=3)
    np.testing.assert_array_equal(read(serial)[0], read(procs)[0])


def test_resume_after_interruption_gives_the_same_file(small_map, tmp_path, monkeypatch, caplog):
    whole = process_map(small_map, tmp_path / "whole.h5", SETTINGS, progress=False, chunk_rows=2)
    out = tmp_path / "out.h5"
    real = process_map_module.process_chunk
    calls = []

    def power_cut(block, *, have, core, **kwargs):
        calls.append(core)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(block, have=have, core=core, **kwargs)

    monkeypatch.setattr(process_map_module, "process_chunk", power_cut)
    with caplog.at_level(logging.WARNING), pytest.raises(KeyboardInterrupt):
        process_map(small_map, out, SETTINGS, progress=False, chunk_rows=2)
    assert not out.exists() and partial_path(out).exists()
    assert "run the same command with --resume to continue" in caplog.text
    # other parameters: the partial file is not resumed
    with pytest.raises(kikuchi.io.MapFileError, match="written from another input or with other parameters"):
        process_map(small_map, out, SETTINGS.replace(sigma=5.0), progress=False, chunk_rows=2, resume=True)
    with pytest.raises(kikuchi.io.MapFileError, match="stored in chunks of 10 patterns, this run writes 15; resume with the same --chunk-rows"):
        process_map(small_map, out, SETTINGS, progress=False, chunk_rows=3, resume=True)
    assert partial_path(out).exists()
    calls.clear()
    monkeypatch.setattr(process_map_module, "process_chunk", lambda block, **kw: (calls.append(1), real(block, **kw))[1])
    process_map(small_map, out, SETTINGS, progress=False, chunk_rows=2, resume=True)
    assert len(calls) == 2  # 4 chunks of 2 rows, 2 were complete
    assert out.exists() and not partial_path(out).exists()
    a, b = read(whole), read(out)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]
    with kikuchi.open(out) as o:
        assert "ResumeWritten" not in o.header
        np.testing.assert_allclose(o.bse_map, kikuchi.open(whole).bse_map, equal_nan=True)


def test_resume_in_tiles(small_map, tmp_path, monkeypatch):
    """Interrupted after 3 of 8 tiles (2 x 3 points), resumed: only the other tiles are computed, the same file."""
    s = SETTINGS.replace(dtype="uint16")
    whole = process_map(small_map, tmp_path / "whole.h5", s, progress=False, chunk_rows=2)
    out = tmp_path / "out.h5"
    real = process_map_module.process_chunk
    calls = []

    cut = [True]

    def power_cut(block, **kwargs):  # passes core_cols on to the real chunk function
        calls.append(kwargs.get("core_cols"))
        if len(calls) == 4 and cut[0]:
            raise KeyboardInterrupt
        return real(block, **kwargs)

    monkeypatch.setattr(process_map_module, "process_chunk", power_cut)
    with pytest.raises(KeyboardInterrupt):
        process_map(small_map, out, s, progress=False, chunk_rows=2, chunk_cols=3)
    assert calls[:2] == [(0, 3), (1, 3)]  # the second tile reads one halo column on its left
    assert not out.exists()
    calls.clear()
    cut[0] = False
    process_map(small_map, out, s, progress=False, chunk_rows=2, chunk_cols=3, resume=True)
    assert len(calls) == 5  # 8 tiles, 3 were complete
    np.testing.assert_array_equal(read(out)[0], read(whole)[0])


def test_metadata_copied_from_real_nickel_map(tmp_path):
    src = shared_file("kikuchipy/nickel_ebsd_small.h5")
    out = process_map(src, tmp_path / "ni.h5", "indexing", progress=False)
    with kikuchi.open(src) as m, kikuchi.open(out) as o:
        assert o.dataset == "Patterns" and o.pattern_shape == (60, 60) and o.dtype == np.uint8
        assert o.step_um == m.step_um and o.kv == m.kv and o.sample_tilt_deg == m.sample_tilt_deg
        np.testing.assert_allclose(o.pattern_centre.pcx, m.pattern_centre.pcx, rtol=1e-6)
        assert o.pattern_centre.convention == "bruker"
        np.testing.assert_allclose(o.euler, m.euler, atol=1e-6)
        assert [p["name"] for p in o.phases] == [p["name"] for p in m.phases]
        np.testing.assert_allclose(o.bse_map, m.bse_map)
        assert o.static_background.shape == (60, 60)
        assert o.processing["clow"] == 10.0 and o.processing["input_dataset"] == "RawPatterns"
        # one pattern, processed alone, is the same as in the processed map
        np.testing.assert_array_equal(process_pattern_at(m, 1, 2, "indexing"), o.pattern(1, 2))


def test_static_background_sources(small_map, tmp_path):
    with kikuchi.open(small_map) as m:
        mean = mean_pattern(m, progress=False)
        have = m.index_map >= 0
        np.testing.assert_allclose(mean, m.read_all()[have].mean(axis=0, dtype=np.float64))
    np.save(tmp_path / "bg.npy", mean)
    a = process_map(small_map, tmp_path / "a.h5", SETTINGS, static_background="mean", progress=False)
    b = process_map(small_map, tmp_path / "b.h5", SETTINGS, static_background=tmp_path / "bg.npy", progress=False)
    np.testing.assert_array_equal(read(a)[0], read(b)[0])
    assert read(b)[2]["static_background_source"].endswith("bg.npy")


def test_bad_inputs_write_nothing(small_map, tmp_path):
    before = small_map.read_bytes()
    with pytest.raises(ValueError, match="is the input map file; choose another output path"):
        process_map(small_map, small_map, SETTINGS, progress=False)
    assert small_map.read_bytes() == before
    out = tmp_path / "o.h5"
    with pytest.raises(ValueError, match=r"static background of shape \(3, 3\) fits neither the patterns \(24, 32\)"):
        process_map(small_map, out, SETTINGS, static_background=np.ones((3, 3)), progress=False)
    with pytest.raises(ValueError, match="binning factor 5 does not divide the pattern shape 24 x 32"):
        process_map(small_map, out, SETTINGS.replace(binning=5), progress=False)
    with pytest.raises(FileNotFoundError, match="no such static background file"):
        process_map(small_map, out, SETTINGS, static_background=tmp_path / "nope.dat", progress=False)
    with pytest.raises(ValueError, match="compression must be one of gzip, none; got 'lzf'"):
        process_map(small_map, out, SETTINGS, compression="lzf", progress=False)
    assert not out.exists() and not partial_path(out).exists()


def test_processing_a_processed_file_does_not_apply_the_background_twice(small_map, tmp_path):
    first = process_map(small_map, tmp_path / "a.h5", SETTINGS.replace(npa=0), progress=False)
    again = process_map(first, tmp_path / "b.h5", SETTINGS.replace(npa=0, dynamic="none"), progress=False, dataset="Patterns")
    p = read(again)[2]
    assert p["static_background_source"] == "not used" or p["static_background_source"].startswith("none (already applied")
    assert not p["static_background_used"]
