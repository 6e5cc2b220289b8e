"""Whole chunks as the explorer reads them (EBSDMap.read_chunk): what h5py reads, decoded outside its lock where possible."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from kikuchi.io.mapstore import open_map
from kikuchi.io.source import MapFileWarning


def _map_file(path, data, *, write=True, **dataset_options):
    """A map file of one map row whose pattern dataset has the given chunks and filters."""
    with h5py.File(path, "w") as f:
        f["Scan/EBSD/Header/NCOLS"] = data.shape[0]
        f["Scan/EBSD/Header/NROWS"] = 1
        d = f.create_dataset("Scan/EBSD/Data/RawPatterns", shape=data.shape, dtype=data.dtype, **dataset_options)
        if write:
            d[...] = data


@pytest.mark.parametrize(
    "dtype, options, direct",
    [
        ("uint16", dict(compression="gzip", compression_opts=4, shuffle=True), True),
        ("uint8", dict(compression="gzip", compression_opts=1), True),
        ("float32", dict(shuffle=True), True),
        ("uint16", dict(), True),
        ("uint16", dict(compression="lzf"), True),
        ("uint16", dict(compression="gzip", fletcher32=True), False),
    ],
)
def test_chunks_equal_h5py(tmp_path, rng, dtype, options, direct):
    data = (rng.random((11, 6, 7)) * 200).astype(dtype)
    path = tmp_path / "c.h5"
    _map_file(path, data, chunks=(4, 6, 7), **options)
    with open_map(path) as m:
        assert (m._reader.decoder() is not None) is direct and m.chunk_patterns == 4
        for chunk, (start, stop) in enumerate(((0, 4), (4, 8), (8, 11))):  # the last chunk is partial
            block = m.read_chunk(chunk)
            assert block.dtype == data.dtype and block.flags.writeable
            np.testing.assert_array_equal(block, data[start:stop])
        with pytest.raises(IndexError, match=r"c.h5: chunk 3 is outside the 11 patterns \(4 per chunk\)"):
            m.read_chunk(3)


def test_layouts_read_through_h5py(tmp_path, rng):
    data = rng.integers(0, 255, (5, 6, 7), dtype=np.uint8)
    for name, options in (("contiguous", {}), ("by_rows", dict(chunks=(2, 3, 7), compression="gzip"))):
        path = tmp_path / f"{name}.h5"
        _map_file(path, data, **options)
        with open_map(path) as m:
            assert m._reader.decoder() is None
            n_chunks = -(-len(data) // m.chunk_patterns)
            assert n_chunks == (1 if name == "contiguous" else 3)
            np.testing.assert_array_equal(np.concatenate([m.read_chunk(k) for k in range(n_chunks)]), data)
    path = tmp_path / "unwritten.h5"
    _map_file(path, data, write=False, chunks=(2, 6, 7), compression="gzip", fillvalue=3)
    with pytest.warns(MapFileWarning, match="chunks that were never written"), open_map(path) as m:
        assert (m.index_map < 0).all()  # said, and the points marked missing
        assert m._reader.decoder() is not None and (m.read_chunk(1) == 3).all()  # no stored chunk: h5py gives the fill value


def test_cancel_stops_decompression(tmp_path, rng):
    data = rng.integers(0, 60000, (4, 240, 240), dtype=np.uint16)
    path = tmp_path / "c.h5"
    _map_file(path, data, chunks=(4, 240, 240), compression="gzip", shuffle=True)
    with open_map(path) as m:
        calls = []
        assert m.read_chunk(0, cancel=lambda: calls.append(1) or len(calls) > 2) is None
        assert len(calls) == 3  # looked at between pieces of the compressed input, stopped at once
        np.testing.assert_array_equal(m.read_chunk(0, cancel=lambda: False), data)
