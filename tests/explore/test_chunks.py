"""Whole chunks decoded outside h5py's lock equal what h5py reads."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from kikuchi.explore.chunks import ChunkReader


@pytest.mark.parametrize(
    "dtype, options, direct",
    [
        ("uint16", dict(compression="gzip", compression_opts=4, shuffle=True), True),
        ("uint8", dict(compression="gzip", compression_opts=1), True),
        ("float32", dict(shuffle=True), True),
        ("uint16", dict(), True),
        ("uint16", dict(compression="lzf"), False),
        ("uint16", dict(compression="gzip", fletcher32=True), False),
    ],
)
def test_chunks_equal_h5py(tmp_path, rng, dtype, options, direct):
    data = (rng.random((11, 6, 7)) * 200).astype(dtype)
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("p", data=data, chunks=(4, 6, 7), **options)
    with h5py.File(path, "r") as f:
        ds = f["p"]
        reader = ChunkReader(ds, read=lambda a, b: ds[a:b])
        assert reader.direct is direct and reader.chunk == 4
        for chunk, (start, stop) in enumerate(((0, 4), (4, 8), (8, 11))):  # the last chunk is partial
            block = reader.read(chunk)
            assert block.dtype == data.dtype and block.flags.writeable
            np.testing.assert_array_equal(block, data[start:stop])
        with pytest.raises(IndexError, match="chunk 3 is outside the 11 patterns of /p"):
            reader.read(3)


def test_layouts_read_through_h5py(tmp_path, rng):
    data = rng.integers(0, 255, (5, 6, 7), dtype=np.uint8)
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("contiguous", data=data)
        f.create_dataset("by_rows", data=data, chunks=(2, 3, 7), compression="gzip")
        f.create_dataset("unwritten", shape=(5, 6, 7), dtype=np.uint8, chunks=(2, 6, 7), compression="gzip", fillvalue=3)
    with h5py.File(path, "r") as f:
        for name in ("contiguous", "by_rows"):
            reader = ChunkReader(f[name], read=lambda a, b, name=name: f[name][a:b])
            assert not reader.direct
            np.testing.assert_array_equal(reader.read(1), data[reader.chunk : 2 * reader.chunk])
        reader = ChunkReader(f["unwritten"], read=lambda a, b: f["unwritten"][a:b])
        assert reader.direct and (reader.read(1) == 3).all()  # no stored chunk: h5py gives the fill value


def test_cancel_stops_decompression(tmp_path, rng):
    data = rng.integers(0, 60000, (4, 240, 240), dtype=np.uint16)
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("p", data=data, chunks=(4, 240, 240), compression="gzip", shuffle=True)
    with h5py.File(path, "r") as f:
        reader = ChunkReader(f["p"], read=lambda a, b: f["p"][a:b])
        calls = []
        assert reader.read(0, cancel=lambda: calls.append(1) or len(calls) > 2) is None
        assert len(calls) == 3  # looked at between pieces of the compressed input, stopped at once
        np.testing.assert_array_equal(reader.read(0, cancel=lambda: False), data)
