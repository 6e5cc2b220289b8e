"""Damaged chunks and truncated HDF5 files: a one-line error naming the chunk, or (on_bad_chunk='skip') the points marked missing."""

from __future__ import annotations

import pickle
import warnings

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.engine import bad_chunk_policy, map_reduce, process_map
from kikuchi.engine._chunks import resolve_on_bad_chunk
from kikuchi.io._h5 import BadChunkError
from kikuchi.io.mapstore import MapWriter
from kikuchi.io.source import MapFileError, MapFileWarning

ROWS, COLS, H, W = 5, 6, 12, 16
PER = 7  # patterns per HDF5 chunk: chunk 2 holds patterns 14..20, map rows 2..3
DATASET = "Scan/EBSD/Data/RawPatterns"


def write(path, *, dtype="uint8", chunk=PER, **filters):
    rng = np.random.default_rng(1)
    patterns = (rng.integers(20, 200, (ROWS, COLS, H, W))).astype(dtype)
    compression = filters or {"compression": "gzip", "compression_opts": 1, "shuffle": True}
    with MapWriter(path, nav_shape=(ROWS, COLS), pattern_shape=(H, W), dtype=dtype, chunk_patterns=chunk, compression=compression) as w:
        w.write_rows(0, patterns)
    return path, patterns


def damage(path, k, where="middle", n=4):
    """Flip ``n`` bytes of stored chunk ``k`` (its start, middle or end)."""
    with h5py.File(path, "r") as f:
        info = f[DATASET].id.get_chunk_info(k)
    offset = {"start": 0, "middle": info.size // 2, "end": info.size - n}[where]
    data = bytearray(path.read_bytes())
    for i in range(info.byte_offset + offset, info.byte_offset + offset + n):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def lost_points(k, per=PER):
    index = np.arange(ROWS * COLS).reshape(ROWS, COLS)
    return (index >= k * per) & (index < (k + 1) * per)


def mean(patterns):
    return patterns.reshape(len(patterns), -1).mean(axis=1)


@pytest.fixture
def damaged(tmp_path):
    path, patterns = write(tmp_path / "map.h5")
    return damage(path, 2), patterns


@pytest.mark.parametrize(
    ("dtype", "filters"),
    [
        ("uint8", {"compression": "gzip", "compression_opts": 1, "shuffle": True}),
        ("uint16", {"compression": "gzip", "compression_opts": 4}),
        ("float32", {"compression": "gzip", "shuffle": True}),
    ],
)
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_every_read_path_names_the_chunk(tmp_path, dtype, filters, where):
    path, _ = write(tmp_path / "map.h5", dtype=dtype, **filters)
    damage(path, 2, where)
    with kikuchi.open(path) as m:
        with pytest.raises(BadChunkError) as read_all:
            m.read_all()  # the decoder here (ISA-L / zlib outside h5py's lock)
        with pytest.raises(BadChunkError) as one:
            m.pattern(3, 0)  # h5py's own read of one pattern (pattern 18)
        with pytest.raises(BadChunkError) as explorer:
            m.read_chunk(2 * PER // m.chunk_patterns)  # the explorer's chunk reads
        m.pattern(1, 5)  # the chunks around it read as ever
        m.pattern(3, 3)
    for error in (read_all.value, one.value, explorer.value):
        text = str(error)
        assert "\n" not in text
        assert text.startswith(f"{path}: HDF5 chunk 2 of '/{DATASET}' (patterns 14..20: map rows 2..3) cannot be decoded (")
        assert text.endswith(
            "): the file is damaged there; copy the file again from its source, or carry on without those points "
            "(--skip-bad-chunks; on_bad_chunk='skip' in Python)"
        )
        assert (error.chunk, error.start, error.stop, error.dataset) == (2, 14, 21, f"/{DATASET}")
        assert isinstance(error, MapFileError) and isinstance(error, ValueError)


def test_the_cause_is_the_decoders(damaged):
    path, _ = damaged
    with kikuchi.open(path) as m, pytest.raises(BadChunkError, match=r"cannot be decoded \(deflate: Error -\d+ ") as info:
        m.read(0, ROWS * COLS)
    assert info.value.cause.startswith("deflate: ")


def test_skip_marks_the_points_of_the_chunk_missing_and_keeps_the_rest_exact(tmp_path, damaged):
    path, patterns = damaged
    clean, _ = write(tmp_path / "clean.h5")
    with kikuchi.open(clean) as m:
        expected = map_reduce(m, mean, progress=False, chunk_rows=2)
    with kikuchi.open(path) as m:
        with pytest.raises(BadChunkError):
            map_reduce(m, mean, progress=False, chunk_rows=2)  # 'raise' by default
        with pytest.warns(MapFileWarning) as said:
            got = map_reduce(m, mean, progress=False, chunk_rows=2, on_bad_chunk="skip")
        lost = lost_points(2)
        assert np.array_equal(m.index_map < 0, lost)
        assert m.unreadable_points == 7
        assert np.array_equal(got[~lost.reshape(-1)], expected[~lost.reshape(-1)])
        assert got[lost.reshape(-1)].tolist() == [0.0] * 7  # not computed
        (note,) = [str(w.message) for w in said]
        assert note.startswith(f"map.h5: HDF5 chunk 2 of '/{DATASET}' cannot be decoded (deflate: ")
        assert note.endswith("); its 7 points (map rows 2..3) are read as points without a pattern")
        assert m.notes == [note.removeprefix("map.h5: ")]
        assert m.describe()["unreadable_points"] == 7
        with pytest.raises(kikuchi.io.source.MapPositionError, match=r"no pattern at map position \(row 3, col 0\)"):
            m.pattern(3, 0)


def test_skip_on_threads_and_by_policy_equals_serial(damaged):
    path, _ = damaged
    results = []
    for run in (
        lambda m: map_reduce(m, mean, progress=False, chunk_rows=1, on_bad_chunk="skip"),
        lambda m: map_reduce(m, mean, progress=False, chunk_rows=1, executor="threads", workers=2, on_bad_chunk="skip"),
    ):
        with kikuchi.open(path) as m, pytest.warns(MapFileWarning, match="HDF5 chunk 2"):
            results.append((run(m), m.index_map.copy()))
    with kikuchi.open(path) as m, bad_chunk_policy("skip"), pytest.warns(MapFileWarning, match="HDF5 chunk 2"):
        results.append((map_reduce(m, mean, progress=False), m.index_map.copy()))
    for got, index in results[1:]:
        assert np.array_equal(got, results[0][0]) and np.array_equal(index, results[0][1])


def _block_mean(block, *, have, core):
    i0, i1 = core
    out = block[i0:i1].reshape(i1 - i0, block.shape[1], -1).mean(axis=-1)
    return np.where(have[i0:i1], out, np.nan)


def test_skip_with_halo_rows_treats_the_points_as_without_pattern(damaged):
    path, _ = damaged
    with kikuchi.open(path) as m, pytest.warns(MapFileWarning):
        got = map_reduce(m, _block_mean, progress=False, halo_rows=1, chunk_rows=2, on_bad_chunk="skip")
        assert np.array_equal(m.index_map < 0, lost_points(2))
        assert np.isfinite(got[m.index_map[m.index_map >= 0]]).all()  # every readable point computed, none as a zero pattern


def test_two_damaged_chunks_two_notes(tmp_path):
    path, _ = write(tmp_path / "map.h5")
    damage(damage(path, 0, "start"), 3, "end")
    with kikuchi.open(path) as m, pytest.warns(MapFileWarning) as said:
        map_reduce(m, mean, progress=False, on_bad_chunk="skip")
        assert m.unreadable_points == 14
        assert np.array_equal(m.index_map < 0, lost_points(0) | lost_points(3))
    assert [str(w.message).split(" cannot")[0] for w in said] == [
        f"map.h5: HDF5 chunk 0 of '/{DATASET}'",
        f"map.h5: HDF5 chunk 3 of '/{DATASET}'",
    ]


def test_process_map_skip_writes_the_points_without_pattern(tmp_path, damaged):
    path, _ = damaged
    clean, _ = write(tmp_path / "clean.h5")
    process_map(clean, tmp_path / "clean_out.h5", "detailed", progress=False, static_background="none")
    with pytest.raises(BadChunkError, match="HDF5 chunk 2"):
        process_map(path, tmp_path / "raise.h5", "detailed", progress=False, static_background="none")
    assert not (tmp_path / "raise.h5").exists()
    with pytest.warns(MapFileWarning, match="HDF5 chunk 2"):
        process_map(path, tmp_path / "out.h5", "detailed", progress=False, static_background="none", on_bad_chunk="skip")
    lost = lost_points(2)
    with kikuchi.open(tmp_path / "out.h5") as out, kikuchi.open(tmp_path / "clean_out.h5") as ref:
        assert np.array_equal(out.index_map < 0, lost)
        assert out.processing["unreadable_points"] == 7
        assert np.array_equal(out.read_all()[~lost], ref.read_all()[~lost])


def test_a_static_background_from_the_mean_skips_too(tmp_path, damaged):
    path, _ = damaged
    with pytest.warns(MapFileWarning, match="HDF5 chunk 2"):
        process_map(path, tmp_path / "out.h5", "detailed", progress=False, static_background="mean", on_bad_chunk="skip")
    with pytest.raises(BadChunkError):
        process_map(path, tmp_path / "out2.h5", "detailed", progress=False, static_background="mean")


def test_the_error_travels_to_dask_workers_and_back():
    error = BadChunkError("m.h5: chunk 3 ...", path="m.h5", dataset="/d", chunk=3, start=21, stop=28, cause="deflate: bad")
    again = pickle.loads(pickle.dumps(error))
    assert (str(again), again.path, again.dataset, again.chunk, again.start, again.stop, again.cause) == (
        "m.h5: chunk 3 ...", "m.h5", "/d", 3, 21, 28, "deflate: bad"
    )


def test_policy_values():
    assert resolve_on_bad_chunk(None) == "raise"
    with bad_chunk_policy("skip"):
        assert resolve_on_bad_chunk(None) == "skip"
        assert resolve_on_bad_chunk("raise") == "raise"
    with pytest.raises(ValueError, match="on_bad_chunk must be one of 'raise', 'skip', got 'ignore'"):
        resolve_on_bad_chunk("ignore")


@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.3, 0.6, 0.95, 0.999])
def test_a_truncated_hdf5_file_is_said_cut_short(tmp_path, fraction):
    path, _ = write(tmp_path / "map.h5")
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(MapFileError) as info:
            kikuchi.open(cut, format="kikuchi")
    text = str(info.value)
    assert "\n" not in text
    if fraction == 0.0:
        assert text.startswith(f"{cut}: not a readable HDF5 file (")
    else:
        assert text == (
            f"{cut}: the HDF5 file is cut short: {int(len(data) * fraction):,} of its {len(data):,} bytes are there "
            f"({100 * int(len(data) * fraction) / len(data):.1f} %), as after an interrupted copy, download or acquisition; "
            "HDF5 keeps part of its index at the end, so no pattern in it can be located: copy the file again from its source"
        )
