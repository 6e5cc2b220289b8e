"""Benchmark ``kikuchi convert`` against the xcdskd notebook's way of converting.

Run by hand (takes minutes; needs about 1.2 GB of disk for the images)::

    .venv/bin/python benchmarks/convert.py [--n 10000] [--baseline-n 2000] [--workers N]

It generates N 16-bit 240 x 240 TIFFs with AZtec names (``row_col.tiff``,
realistic pattern content plus Poisson noise, see benchmarks/_patterns.py)
in benchmarks/_data/ (git-ignored; kept for reruns), then times in the same
run:

* baseline: as the xcdskd notebook "HDF5: Convert Directory of Images" did,
  open each image with PIL and write it to a gzip-9 dataset with chunks of
  one pattern, one pattern at a time (timed on the first ``--baseline-n``
  images and scaled to N, said so in the output);
* kikuchi: ``convert_images`` on all N images (parallel decode + compression,
  one write per chunk, default compression of the map file).

It prints both rates and the speed-up in wall time (target: at least 5x),
and the ratio of CPU times (this process, all threads), which other work on
a shared machine distorts less.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _patterns import PatternMaker  # noqa: E402
from _seed import seed_convert_loop  # noqa: E402

from kikuchi.io.convert import convert_images  # noqa: E402
from kikuchi.io.mapstore import DEFAULT_COMPRESSION, open_map  # noqa: E402

DATA = Path(__file__).resolve().parent / "_data"


def generate(n: int, shape: tuple[int, int]) -> tuple[Path, tuple[int, int]]:
    import tifffile

    cols = int(np.ceil(np.sqrt(n)))
    while n % cols:
        cols += 1
    rows = n // cols
    folder = DATA / f"aztec_{n}_{shape[0]}x{shape[1]}"
    done = folder / ".complete"
    if done.exists():
        return folder, (rows, cols)
    folder.mkdir(parents=True, exist_ok=True)
    print(f"generating {n} TIFFs in {folder} ...", flush=True)
    t0 = time.perf_counter()

    def make(r: int) -> None:
        maker = PatternMaker(shape, "uint16", seed=r)
        for c in range(cols):
            tifffile.imwrite(folder / f"{r}_{c}.tiff", maker())

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(make, range(rows)))
    done.touch()
    print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    return folder, (rows, cols)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000, help="number of images (default 10000)")
    parser.add_argument("--baseline-n", type=int, default=2000, help="images the baseline is timed on, scaled to --n")
    parser.add_argument("--workers", type=int, default=None, help="threads for kikuchi (default: all CPUs)")
    args = parser.parse_args()

    folder, nav_shape = generate(args.n, (240, 240))
    n = nav_shape[0] * nav_shape[1]
    n_base = min(args.baseline_n, n)
    try:
        import isal  # noqa: F401

        deflate = "ISA-L (package isal)"
    except ImportError:
        deflate = "zlib (install the package isal for ISA-L, about 2-3x faster conversion)"
    print(f"{n} images, 240 x 240 uint16, map {nav_shape[0]} x {nav_shape[1]}, {os.cpu_count()} CPUs, deflate by {deflate}", flush=True)
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        t_base, c_base = seed_convert_loop(folder, nav_shape, n_base, Path(tmp) / "baseline.h5")
        t_base_all, c_base_all = t_base * n / n_base, c_base * n / n_base
        note = f" (timed on {n_base} images, scaled to {n})" if n_base < n else ""
        print(f"baseline (PIL + gzip-9, one pattern per write): {n_base / t_base:7.0f} patterns/s -> "
              f"{t_base_all:7.1f} s wall, {c_base_all:7.1f} s CPU{note}", flush=True)

        out = Path(tmp) / "kikuchi.h5"
        t0, c0 = time.perf_counter(), time.process_time()
        convert_images(folder, out, step_um=0.5, workers=args.workers, progress=False)
        t_ours, c_ours = time.perf_counter() - t0, time.process_time() - c0
        print(f"kikuchi convert ({DEFAULT_COMPRESSION}, {args.workers or os.cpu_count()} threads): "
              f"{n / t_ours:7.0f} patterns/s -> {t_ours:7.1f} s wall, {c_ours:7.1f} s CPU", flush=True)

        import tifffile

        with open_map(out) as m:
            for r, c in [(0, 0), (nav_shape[0] - 1, nav_shape[1] - 1), (nav_shape[0] // 2, 3)]:
                assert np.array_equal(m.pattern(r, c), tifffile.imread(folder / f"{r}_{c}.tiff")), (r, c)
            size_ours = out.stat().st_size
        size_base = (Path(tmp) / "baseline.h5").stat().st_size * n / n_base
        print(f"file size: kikuchi {size_ours / 2**20:.0f} MiB, baseline {size_base / 2**20:.0f} MiB (scaled)")
        print(f"speed-up: {t_base_all / t_ours:.1f}x wall time (target >= 5x); CPU time {c_base_all / c_ours:.1f}x less")


if __name__ == "__main__":
    main()
