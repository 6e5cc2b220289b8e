"""map_reduce: the same results serially, on threads and on dask.distributed."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.engine import SchedulerUnreachableError, map_reduce
from kikuchi.io.mapstore import open_map


def pattern_stats(patterns, *, scale=1.0):
    flat = patterns.reshape(len(patterns), -1).astype(np.float64)
    return np.stack([flat.mean(axis=1), flat.std(axis=1)], axis=1) * scale


def with_positions(patterns, *, rows, cols):
    return np.stack([rows, cols, patterns[:, 0, 0]], axis=1)


def neighbour_sum(block, *, have, core):
    """Sum of the mean intensity of the 4 edge neighbours that have a pattern (needs a halo of 1)."""
    means = np.where(have, block.reshape(*have.shape, -1).mean(axis=-1), 0.0)
    padded = np.pad(means, 1)
    s = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:]
    return s[core[0] : core[1]]


def test_serial_matches_direct_numpy(small_map):
    with open_map(small_map) as m:
        got = map_reduce(m, pattern_stats, kwargs={"scale": 2.0}, progress=False, chunk_rows=2)
        direct = pattern_stats(m.read(), scale=2.0)
        on_map = m.index_map[m.index_map >= 0]
    assert got.shape == (35, 2)
    np.testing.assert_array_equal(got[on_map], direct[on_map])
    # the two stored patterns that are not on the map (points without a pattern) are not computed
    assert set(range(35)) - set(on_map.tolist()) == {13, 30}
    assert not got[[13, 30]].any()


def test_positions_are_the_map_positions(small_map):
    with open_map(small_map) as m:
        got = map_reduce(m, with_positions, positions=True, progress=False, chunk_rows=3)
        idx = m.index_map
        for r, c in [(0, 0), (4, 2), (6, 4)]:
            assert tuple(got[idx[r, c], :2]) == (r, c)
            assert got[idx[r, c], 2] == m.pattern(r, c)[0, 0]


def test_halo_rows_see_the_neighbours_across_chunk_borders(small_map):
    with open_map(small_map) as m:
        got = map_reduce(m, neighbour_sum, halo_rows=1, progress=False, chunk_rows=2)
        whole = neighbour_sum(m.read_rows(0, 7), have=m.index_map >= 0, core=(0, 7))
        have = m.index_map >= 0
        np.testing.assert_allclose(got[m.index_map[have]], whole[have], rtol=1e-12)


@pytest.mark.parametrize("executor", ["threads", "distributed"])
def test_threads_and_distributed_equal_serial(small_map, executor, dask_inprocess):
    scheduler = dask_inprocess if executor == "distributed" else None
    with open_map(small_map) as m:
        serial = map_reduce(m, pattern_stats, progress=False, chunk_rows=2)
        other = map_reduce(m, pattern_stats, executor=executor, workers=2, scheduler=scheduler, progress=False, chunk_rows=2)
        halo_serial = map_reduce(m, neighbour_sum, halo_rows=1, progress=False, chunk_rows=2)
        halo_other = map_reduce(
            m, neighbour_sum, halo_rows=1, executor=executor, workers=2, scheduler=scheduler, progress=False, chunk_rows=2
        )
    np.testing.assert_array_equal(serial, other)
    np.testing.assert_array_equal(halo_serial, halo_other)


def neighbour_sum_own_columns(block, *, have, core, core_cols):
    """neighbour_sum that returns only the tile's own columns (the engine then cuts nothing)."""
    return neighbour_sum(block, have=have, core=core)[:, core_cols[0] : core_cols[1]]


@pytest.mark.parametrize("executor", ["serial", "threads", "distributed"])
def test_tiles_equal_bands(small_map, executor, dask_inprocess):
    """Chunks of 2 rows x 2 columns (a tile's halo columns read on either side, the last tile 1 wide):
    the same results as bands of whole rows, with and without positions, the halo cut here or by the function."""
    with open_map(small_map) as m:
        have = m.index_map >= 0
        on_map = m.index_map[have]
        run = dict(progress=False, executor=executor, workers=None if executor == "serial" else 2)
        if executor == "distributed":
            run["scheduler"] = dask_inprocess
        bands = map_reduce(m, pattern_stats, chunk_rows=2, **run)
        tiles = map_reduce(m, pattern_stats, chunk_rows=2, chunk_cols=2, **run)
        np.testing.assert_array_equal(tiles[on_map], bands[on_map])
        got = map_reduce(m, with_positions, positions=True, chunk_rows=3, chunk_cols=2, **run)
        for r, c in [(0, 0), (4, 2), (6, 4), (1, 3)]:
            assert tuple(got[m.index_map[r, c], :2]) == (r, c)
        whole = neighbour_sum(m.read_rows(0, 7), have=have, core=(0, 7))
        for func in (neighbour_sum, neighbour_sum_own_columns):
            # 4 columns: the first tile and its halo column read every column of the map
            for chunk_cols in (2, 4):
                halo = map_reduce(m, func, halo_rows=1, chunk_rows=2, chunk_cols=chunk_cols, **run)
                np.testing.assert_allclose(halo[on_map], whole[have], rtol=1e-12)


def test_wide_maps_of_large_patterns_are_cut_into_tiles():
    """The default chunks of a 1000 x 930 map of 240 x 240 patterns stay within the memory budget."""
    from types import SimpleNamespace

    from kikuchi.engine._chunks import CHUNK_BYTES, HALO_BUDGET, default_chunk_shape

    wide = SimpleNamespace(nav_shape=(1000, 930), pattern_shape=(240, 240))
    per_pattern = 240 * 240 * 4
    # without halo: one row is 214 MB of float32: tiles of one row, 145 patterns (32 MiB) -> 144 (HDF5 chunks of 6)
    assert default_chunk_shape(wide, col_align=6) == (1, 144)
    # a halo of 1: 16 rows (halo work 12.5 %), tiles within 4 x 32 MiB: 580 patterns / 16 rows -> 36 columns
    rows, cols = default_chunk_shape(wide, halo_rows=1, workers=4, col_align=6)
    assert (rows, cols) == (16, 36)
    assert (rows + 2) * (cols + 2) * per_pattern <= 1.3 * HALO_BUDGET * CHUNK_BYTES
    # never tiles when told so (col_align None), and bands when they fit: the 40 x 25 benchmark map
    assert default_chunk_shape(wide, halo_rows=1, col_align=None) == (16, None)
    small = SimpleNamespace(nav_shape=(40, 25), pattern_shape=(240, 240))
    assert default_chunk_shape(small, halo_rows=1, col_align=5) == (16, None)
    assert default_chunk_shape(small, halo_rows=1, workers=2, col_align=5) == (7, None)


def test_unreachable_scheduler_fails_fast(small_map, monkeypatch):
    monkeypatch.setattr("kikuchi.engine._executors.SCHEDULER_TIMEOUT_S", 1.0)
    with open_map(small_map) as m, pytest.raises(SchedulerUnreachableError, match="cannot reach the dask scheduler at tcp://127.0.0.1:9"):
        map_reduce(m, pattern_stats, executor="distributed", scheduler="tcp://127.0.0.1:9", progress=False)


def test_bad_options(small_map):
    with open_map(small_map) as m:
        with pytest.raises(ValueError, match="executor must be one of serial, threads, distributed; got 'gpu'"):
            map_reduce(m, pattern_stats, executor="gpu", progress=False)
        with pytest.raises(ValueError, match="halo_rows must be >= 0"):
            map_reduce(m, pattern_stats, halo_rows=-1, progress=False)
        with pytest.raises(ValueError, match="only used with executor='distributed'"):
            map_reduce(m, pattern_stats, scheduler="tcp://127.0.0.1:9", progress=False)


def wrong_length(patterns):
    return patterns[:1]


def test_wrong_result_length_names_the_rows(small_map):
    with open_map(small_map) as m, pytest.raises(ValueError, match=r"returned 1 results for the 5 patterns of map rows 0:1"):
        map_reduce(m, wrong_length, progress=False, chunk_rows=1)
