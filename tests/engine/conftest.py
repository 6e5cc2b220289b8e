"""Small generated maps and one in-process dask cluster for the engine tests."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.io.mapstore import MapWriter


def write_map(path, patterns, *, step_um=(1.0, 1.0), background=None, missing=()):
    """Write a (rows, cols, h, w) array as a map file; ``missing`` (row, col) points get no pattern."""
    rows, cols, h, w = patterns.shape
    with MapWriter(path, nav_shape=(rows, cols), pattern_shape=(h, w), dtype=patterns.dtype, step_um=step_um) as wr:
        wr.write_rows(0, patterns)
        if background is not None:
            wr.set_static_background(background)
        if missing:
            index_map = np.arange(rows * cols).reshape(rows, cols)
            for r, c in missing:
                index_map[r, c] = -1
            wr.header["indexmap"][...] = index_map
    return path


@pytest.fixture
def small_map(tmp_path, rng):
    """A 7 x 5 map of 24 x 32 uint8 patterns: smooth background + bands + noise, two points without pattern."""
    rows, cols, h, w = 7, 5, 24, 32
    yy, xx = np.mgrid[0:h, 0:w]
    bg = 120 + 60 * np.exp(-((yy - h / 3) ** 2 + (xx - w / 2) ** 2) / (2 * (w / 2) ** 2))
    pats = np.empty((rows, cols, h, w), np.uint8)
    for r in range(rows):
        for c in range(cols):
            band = 25 * np.cos(0.4 * (xx * np.cos(0.3 * r) + yy * np.sin(0.2 * c)))
            pats[r, c] = np.clip(bg + band + rng.normal(0, 6, (h, w)), 0, 255).astype(np.uint8)
    return write_map(tmp_path / "small.h5", pats, background=bg.astype(np.float32), missing=[(2, 3), (6, 0)])


def local_cluster(*, processes: bool):
    """A LocalCluster of 2 single-threaded workers (threads of this process, or processes with nannies) and its client."""
    distributed = pytest.importorskip("distributed")
    import logging

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=processes, dashboard_address=":0", silence_logs=logging.ERROR
    )
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def dask_inprocess():
    """One LocalCluster in this process (threads) for the whole session: fast to start."""
    yield from local_cluster(processes=False)
