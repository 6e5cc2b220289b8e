"""The engine on vendors' pattern files: workers reopen any source from its open options, results equal serial ones."""

from __future__ import annotations

import numpy as np
import pytest

import kikuchi
from kikuchi.engine import map_reduce, process_map
from kikuchi.engine._chunks import MapSource
from kikuchi.process import PRESETS
from tests.engine.test_map_reduce import neighbour_sum, with_positions
from tests.io._vendor import vendor_file

# out of order, with missing points, with a map shape only given as an option
FILES = {
    "ebsp_v2_u8_missing.ebsp": {},
    "bruker_custom_u8_fullmap_shuffled_semIXIY.h5": {},
    "bruker_kpdummy_roi_nonrect.h5": {},
    "up1_v1_3x4.up1": {"nav_shape": (3, 4)},
    "oxford_custom_v7_lzf.h5oina": {"dataset": "RawPatterns"},
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_distributed_workers_reopen_the_source(name, dask_inprocess):
    with kikuchi.open(vendor_file(name), **FILES[name]) as m:
        source = MapSource.of(m)
        assert dict(source.options)["format"] == m.format
        for key, value in FILES[name].items():
            assert tuple(np.atleast_1d(dict(source.options)[key])) == tuple(np.atleast_1d(value))
        have = m.index_map >= 0
        serial = map_reduce(m, with_positions, positions=True, progress=False, chunk_rows=1)
        other = map_reduce(m, with_positions, positions=True, executor="distributed", scheduler=dask_inprocess, progress=False, chunk_rows=1)
        np.testing.assert_array_equal(serial, other)
        rows, cols = np.nonzero(have)
        idx = m.index_map[have]
        np.testing.assert_array_equal(serial[idx, 0], rows)
        np.testing.assert_array_equal(serial[idx, 1], cols)
        np.testing.assert_array_equal(serial[idx, 2], m.read_all()[have][:, 0, 0])  # the marker pixel of each point
        halo = map_reduce(m, neighbour_sum, halo_rows=1, executor="distributed", scheduler=dask_inprocess, progress=False, chunk_rows=1)
        whole = neighbour_sum(m.read_rows(0, m.nav_shape[0]), have=have, core=(0, m.nav_shape[0]))
        np.testing.assert_allclose(halo[idx], whole[have], rtol=1e-12)


def test_process_map_of_a_bruker_roi_on_threads(tmp_path):
    """Processed patterns of a non-rectangular ROI: the same on threads as serially; points outside the ROI stay empty."""
    src = vendor_file("bruker_kpdummy_roi_nonrect.h5")
    serial = process_map(src, tmp_path / "s.h5", PRESETS["indexing"], progress=False)
    threads = process_map(src, tmp_path / "t.h5", PRESETS["indexing"], executor="threads", workers=2, progress=False)
    with kikuchi.open(src) as m, kikuchi.open(serial) as s, kikuchi.open(threads) as t:
        np.testing.assert_array_equal(s.read_all(), t.read_all())
        np.testing.assert_array_equal(s.index_map >= 0, m.index_map >= 0)
        assert s.pattern_centre is not None and s.pattern_centre.convention == "bruker"
        np.testing.assert_allclose(s.pattern_centre.pcx[m.index_map >= 0], m.pattern_centre.pcx[m.index_map >= 0], atol=1e-7)
