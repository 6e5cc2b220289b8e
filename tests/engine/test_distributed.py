"""The engine on a cluster of worker processes: a worker killed mid-run, options shipped once, a quiet log."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

import kikuchi
from kikuchi.engine import map_reduce, process_map
from kikuchi.engine import process as process_map_module
from kikuchi.process import ProcessingSettings
from tests.conftest import run_cli
from tests.engine.conftest import local_cluster, write_map

pytestmark = pytest.mark.slow  # two worker processes: about 8 s to start on 2 cores

SETTINGS = ProcessingSettings(npa=1, sigma=4.0, dtype="uint16")


@pytest.fixture(scope="module")
def process_cluster():
    """A LocalCluster of 2 single-threaded worker processes with nannies: its client."""
    yield from local_cluster(processes=True)


@pytest.fixture
def tall_map(tmp_path, rng):
    """30 x 8 points of 24 x 32 uint8 patterns: with one map row per chunk, 30 chunks."""
    rows, cols, h, w = 30, 8, 24, 32
    yy, xx = np.mgrid[0:h, 0:w]
    bg = 100 + 50 * np.exp(-((yy - h / 3) ** 2 + (xx - w / 2) ** 2) / (2 * (w / 2) ** 2))
    band = 20 * np.cos(0.5 * xx[None, None] + 0.1 * np.arange(rows)[:, None, None, None] + 0.3 * np.arange(cols)[None, :, None, None])
    pats = np.clip(bg + band + rng.normal(0, 5, (rows, cols, h, w)), 0, 255).astype(np.uint8)
    return write_map(tmp_path / "tall.h5", pats, background=bg.astype(np.float32), missing=[(4, 2)])


def read_output(path):
    with kikuchi.open(path) as m:
        return m.read_all(), m.index_map.copy(), m.bse_map.copy(), m.h5["Scan/EBSD/Data/NoSignal"][()]


def test_a_worker_killed_mid_run_is_restarted_and_the_output_equals_serial(tall_map, tmp_path, monkeypatch, process_cluster):
    """SIGKILL of a worker process after 3 of 30 chunks: its nanny starts a new one, the run completes, the file equals a serial run's."""
    client = process_cluster
    client.wait_for_workers(2, timeout=60)
    serial = process_map(tall_map, tmp_path / "serial.h5", SETTINGS, progress=False, chunk_rows=1)
    pids = client.run(os.getpid)
    victim = sorted(pids.items())[0][1]
    seen = []
    real_run_chunks = process_map_module.run_chunks

    def run_chunks_killing_a_worker(ebsd_map, chunks, func, kwargs, on_result, **options):
        def on_result_then_kill(chunk, indices, result):
            on_result(chunk, indices, result)
            seen.append(chunk)
            if len(seen) == 3:
                os.kill(victim, signal.SIGKILL)

        assert len(chunks) == 30
        return real_run_chunks(ebsd_map, chunks, func, kwargs, on_result_then_kill, **options)

    monkeypatch.setattr(process_map_module, "run_chunks", run_chunks_killing_a_worker)
    out = process_map(
        tall_map, tmp_path / "out.h5", SETTINGS, executor="distributed", scheduler=client.scheduler.address, progress=False, chunk_rows=1
    )
    assert len(seen) == 30  # every chunk written once
    client.wait_for_workers(2, timeout=60)
    after = client.run(os.getpid)
    assert len(after) == 2 and victim not in after.values()
    assert len(set(after.values()) - set(pids.values())) == 1  # one new worker process, the other one kept
    for got, want in zip(read_output(out), read_output(serial)):
        np.testing.assert_array_equal(got, want)


class CountsUnpickling:
    """An option of a chunk function that counts, in each process, how often it was unpickled."""

    unpickled = 0

    def __init__(self, value: float):
        self.value = value

    def __reduce__(self):
        return _revive, (self.value,)


def _revive(value: float) -> CountsUnpickling:
    CountsUnpickling.unpickled += 1
    return CountsUnpickling(value)


def _times_option(patterns, *, option):
    return patterns.reshape(len(patterns), -1).mean(axis=1) * option.value


def _unpickled_here():
    return CountsUnpickling.unpickled


def test_options_travel_to_each_worker_once_not_with_every_chunk(tall_map, process_cluster):
    """The chunk function's options (for indexing: the indexer and its tables, about 6 MB) are sent once per run, not per chunk."""
    client = process_cluster
    client.wait_for_workers(2, timeout=60)
    before = sum(client.run(_unpickled_here).values())
    with kikuchi.open(tall_map) as m:
        got = map_reduce(m, _times_option, kwargs={"option": CountsUnpickling(2.0)}, executor="distributed", scheduler=client, chunk_rows=1, progress=False)
        want = map_reduce(m, _times_option, kwargs={"option": CountsUnpickling(2.0)}, progress=False)
    np.testing.assert_array_equal(got, want)
    unpickled = sum(client.run(_unpickled_here).values()) - before
    assert 1 <= unpickled <= 2  # once on each worker that ran chunks (30 chunks)


def test_a_local_cluster_keeps_dask_info_off_the_command_log(tmp_path, small_map):
    """`--workers 2`: no line of dask's INFO log on stderr (about thirty per run before), only the command's result."""
    out = tmp_path / "out.h5"
    proc = run_cli("process", small_map, "-o", out, "--workers", "2", "--no-progress", check=True)
    assert "distributed" not in proc.stderr, proc.stderr
    assert "INFO" not in proc.stderr, proc.stderr
    assert out.exists()
