"""Measure HDF5 filters for pattern datasets: write speed, read speed, ratio.

Run by hand:  .venv/bin/python benchmarks/compression.py [--n16 1000] [--n8 10000]

Patterns: 240x240 uint16 and 60x60 uint8 built from a real pattern with
Poisson noise (benchmarks/_patterns.py). Times are CPU times of this
process (time.process_time), so that other work on the machine does not
distort them; everything here runs in one thread. Each filter writes the stack in
chunks of about 1 MiB (the map file's chunking) with h5py in one thread, then
reads it back chunk by chunk (as every pipeline stage does) and pattern by
pattern in random order (the explorer). The table goes to docs/mapfile.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _patterns import PatternMaker  # noqa: E402

from kikuchi.io.mapstore import default_chunk_patterns  # noqa: E402

FILTERS = [("none", {})]
for level in (1, 4, 6, 9):
    FILTERS.append((f"gzip {level}", {"compression": "gzip", "compression_opts": level}))
    FILTERS.append((f"gzip {level} + shuffle", {"compression": "gzip", "compression_opts": level, "shuffle": True}))
FILTERS += [("lzf", {"compression": "lzf"}), ("lzf + shuffle", {"compression": "lzf", "shuffle": True})]


def measure(stack: np.ndarray, tmp: Path, name: str, kw: dict) -> dict:
    n = stack.shape[0]
    chunk = default_chunk_patterns(stack.shape[1:], stack.dtype, n)
    path = tmp / "c.h5"
    t0 = time.process_time()
    with h5py.File(path, "w") as f:
        d = f.create_dataset("p", shape=stack.shape, dtype=stack.dtype, chunks=(chunk, *stack.shape[1:]), **kw)
        for s in range(0, n, chunk):
            d[s : s + chunk] = stack[s : s + chunk]
    t_write = time.process_time() - t0
    size = path.stat().st_size
    best_read = np.inf
    for _ in range(2):
        t0 = time.process_time()
        with h5py.File(path, "r") as f:
            d = f["p"]
            out = np.empty((chunk, *stack.shape[1:]), dtype=stack.dtype)
            for s in range(0, n, chunk):
                e = min(s + chunk, n)
                d.read_direct(out[: e - s], np.s_[s:e])
        best_read = min(best_read, time.process_time() - t0)
    idx = np.random.default_rng(1).integers(0, n, 200)
    with h5py.File(path, "r", rdcc_nbytes=0) as f:  # no chunk cache: each pattern decodes its chunk
        d = f["p"]
        t0 = time.process_time()
        for i in idx:
            d[int(i)]
        t_single = (time.process_time() - t0) / idx.size
    mb = stack.nbytes / 2**20
    return {
        "filter": name, "ratio": stack.nbytes / size, "write": mb / t_write, "read": mb / best_read,
        "single_ms": 1e3 * t_single, "chunk": chunk,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n16", type=int, default=1000, help="number of 240x240 uint16 patterns")
    parser.add_argument("--n8", type=int, default=10000, help="number of 60x60 uint8 patterns")
    args = parser.parse_args()
    cases = [("240x240 uint16", PatternMaker((240, 240), "uint16").stack(args.n16)),
             ("60x60 uint8", PatternMaker((60, 60), "uint8").stack(args.n8))]
    with tempfile.TemporaryDirectory() as d:
        for title, stack in cases:
            print(f"\n{title}: {stack.shape[0]} patterns, {stack.nbytes / 2**20:.0f} MiB, values {stack.min()}..{stack.max()}, "
                  f"chunk {default_chunk_patterns(stack.shape[1:], stack.dtype, stack.shape[0])} patterns")
            print("| filter | ratio | write MiB/s | read MiB/s (chunks) | one pattern ms |")
            print("|---|---:|---:|---:|---:|")
            for name, kw in FILTERS:
                r = measure(stack, Path(d), name, kw)
                print(f"| {r['filter']} | {r['ratio']:.2f} | {r['write']:.0f} | {r['read']:.0f} | {r['single_ms']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
