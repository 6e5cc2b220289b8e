"""process_map with NLPAR: the same file on every executor and chunk layout, resumable, equal to the pipeline in memory."""

from __future__ import annotations

import numpy as np
import pytest

import kikuchi
from kikuchi.engine import process_map, process_pattern_at
from kikuchi.engine import process as process_map_module
from kikuchi.io._atomic import partial_path
from kikuchi.process import ProcessingSettings, process_patterns
from tests.engine.test_process_map import read

#: halo 3 (search radius 2 + 1): chunks of 2 rows read 3 halo rows on either side
SETTINGS = ProcessingSettings(nlpar=True, nlpar_search_radius=2, sigma=4.0, dtype="float32")


def test_equals_in_memory_pipeline_and_records_lambda(small_map, tmp_path):
    out = process_map(small_map, tmp_path / "out.h5", SETTINGS, progress=False, chunk_rows=2)
    got, index_map, processing = read(out)
    with kikuchi.open(small_map) as m:
        have = m.index_map >= 0
        expected = process_patterns(m.read_all(), SETTINGS, static_background=m.static_background, have=have)
    np.testing.assert_array_equal(got, expected)
    assert processing["nlpar"] and processing["nlpar_lambda"] == "auto"
    lam = processing["nlpar_lambda_used"]
    assert 0.001 < lam < 10
    assert processing["nlpar_lambda_choice"].startswith("auto (median of the lambdas for the centre weight shares 0.5: ")
    assert processing["nlpar_lambda_choice"].endswith("; 33 points)")  # 35 points, 2 without a pattern
    given = process_map(small_map, tmp_path / "given.h5", SETTINGS.replace(nlpar_lambda=lam), progress=False, chunk_rows=3)
    np.testing.assert_array_equal(read(given)[0], got)  # the lambda recorded gives the same file
    assert read(given)[2]["nlpar_lambda_choice"] == "given"
    with kikuchi.open(small_map) as m:
        np.testing.assert_array_equal(process_pattern_at(m, 3, 2, SETTINGS), got[3, 2])


@pytest.mark.parametrize("executor", ["threads", "distributed", "tiles"])
def test_executors_and_tiles_give_identical_files(small_map, tmp_path, executor, dask_inprocess):
    serial = process_map(small_map, tmp_path / "serial.h5", SETTINGS.replace(dtype="uint16"), progress=False, chunk_rows=2)
    other = process_map(
        small_map,
        tmp_path / f"{executor}.h5",
        SETTINGS.replace(dtype="uint16"),
        executor="serial" if executor == "tiles" else executor,
        workers=None if executor == "tiles" else 2,
        scheduler=dask_inprocess if executor == "distributed" else None,
        progress=False,
        chunk_rows=2 if executor != "tiles" else 3,
        chunk_cols=2 if executor == "tiles" else None,
    )
    a, b = read(serial), read(other)
    np.testing.assert_array_equal(b[0], a[0])
    assert b[2]["nlpar_lambda_used"] == a[2]["nlpar_lambda_used"]


def test_resume_after_interruption_gives_the_same_file(small_map, tmp_path, monkeypatch):
    whole = process_map(small_map, tmp_path / "whole.h5", SETTINGS, progress=False, chunk_rows=2)
    out = tmp_path / "out.h5"
    real = process_map_module.process_chunk
    calls = []

    def power_cut(block, **kwargs):
        calls.append(kwargs["core"])
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(block, **kwargs)

    monkeypatch.setattr(process_map_module, "process_chunk", power_cut)
    with pytest.raises(KeyboardInterrupt):
        process_map(small_map, out, SETTINGS, progress=False, chunk_rows=2)
    assert partial_path(out).exists() and not out.exists()
    calls.clear()
    monkeypatch.setattr(process_map_module, "process_chunk", lambda block, **kw: (calls.append(1), real(block, **kw))[1])
    process_map(small_map, out, SETTINGS, progress=False, chunk_rows=2, resume=True)
    assert len(calls) == 2  # 4 chunks of 2 rows, 2 were complete; lambda chosen again, the same
    a, b = read(whole), read(out)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]
