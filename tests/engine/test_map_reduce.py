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
