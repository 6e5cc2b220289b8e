"""The explorer on vendors' pattern files as written: base maps, the pattern of a point, a point without one."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kikuchi
from kikuchi.explore import explore
from kikuchi.explore.encode import decode_pattern
from tests.explore.conftest import get
from tests.io._vendor import vendor_file


@pytest.mark.parametrize("name", ["oxford_custom_v7_lzf.h5oina", "bruker_kpdummy_roi_nonrect.h5", "ebsp_v2_u8_missing.ebsp", "up2_v3_3x4.up2"])
def test_explorer_serves_a_vendor_file(name):
    path = vendor_file(name)
    with kikuchi.open(path) as m:
        have = m.index_map >= 0
        r, c = (int(v) for v in np.argwhere(have)[-1])
        hole = np.argwhere(~have)
        stored = None
        if "Patterns" in m.datasets:
            with m.with_dataset("Patterns") as p:
                stored = p.pattern(r, c)
        with m.with_dataset("RawPatterns") as raw:
            expected = raw.pattern(r, c)  # the explorer shows the acquired patterns (AZtec's unprocessed ones)
    ex = explore(path)
    try:
        status, _, body = get(ex.url + "api/info")
        assert status == 200
        info = json.loads(body)
        assert info["nav_shape"] == list(have.shape)
        status, _, body = get(ex.url + "api/map?name=bse")
        assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n"
        status, _, body = get(ex.url + f"api/pattern?row={r}&col={c}&signal=raw")
        assert status == 200, body
        np.testing.assert_array_equal(decode_pattern(body).pattern, expected)
        if stored is not None:  # and the vendor's processed patterns as the stored signal
            status, _, body = get(ex.url + f"api/pattern?row={r}&col={c}&signal=stored")
            assert status == 200, body
            np.testing.assert_array_equal(decode_pattern(body).pattern, stored)
        if hole.size:
            status, _, body = get(ex.url + f"api/pattern?row={hole[0][0]}&col={hole[0][1]}")
            assert status in (400, 404) and b"no pattern" in body
    finally:
        ex.stop()
