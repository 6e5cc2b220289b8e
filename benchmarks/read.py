"""Benchmark: streaming every pattern of a vendor's file, chunk by chunk, through a no-op.

Files are written with kikuchi's own writers of each format (realistic
patterns: a real raw pattern over its map's mean, shifted, with shot noise;
see ``_patterns.py``), in ``benchmarks/_data/read/`` (kept between runs;
``--rebuild`` writes them again):

* 100,000 patterns of 60 x 60 uint8 (a 250 x 400 map): H5OINA (LZF, as AZtec
  writes), Oxford ``.ebsp`` (version 2), Bruker Esprit h5ebsd, EDAX ``.up1``
  (UP2 holds 16-bit patterns only: the 8-bit EDAX file is its UP1 twin);
* 10,000 patterns of 240 x 240 uint16 (a 100 x 100 map): H5OINA, ``.ebsp``,
  Bruker h5ebsd, EDAX ``.up2``.

For each file, in the same run, each contender runs in its own subprocess
(so its peak memory is its own) on a file already in the page cache (the
file is read once before each timing), its modules imported before the clock
starts (opening the file is timed), best of ``--repeat``:

* ``kikuchi``: ``kikuchi.open(path)`` and ``for start, stop, block in m.iter_chunks(): pass``
  with the defaults (storage order, the chunk size kikuchi chooses, the next
  chunks read ahead on all cores), and ``kikuchi 1 thread``: the same with
  ``iter_chunks(workers=1)``;
* ``kikuchipy``: ``kp.load(path, lazy=True)`` and ``dask.array.store`` of its
  data into a target that drops what it gets (dask's threads, all cores);
* ``floor``: the raw read of the same bytes: ``os.preadv`` of every byte of
  the file in 1 MiB blocks (binary files), or h5py ``read_direct`` of each
  stored chunk, decompression included (HDF5 files).

Printed: patterns/s and MiB/s (of pattern bytes) for each, and the ratios
kikuchipy time / kikuchi time (target >= 5), kikuchi time / floor time
(target <= 1.3) and the same for kikuchi on one thread against the
one-thread floor; then the peak RSS of the kikuchi reader on a quarter of the
map and on the whole map (flat as the map grows). kikuchipy is an optional
benchmark dependency (``make bench``), never imported by ``kikuchi``.

Run: ``.venv/bin/python benchmarks/read.py [--repeat 3] [--formats h5oina,ebsp,bruker,up] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "_data" / "read"
FORMATS = ("h5oina", "ebsp", "bruker", "up")
SIZES = {"60x60 uint8": ((250, 400), (60, 60), "uint8"), "240x240 uint16": ((100, 100), (240, 240), "uint16")}
QUICK = {"60x60 uint8": ((50, 400), (60, 60), "uint8"), "240x240 uint16": ((25, 100), (240, 240), "uint16")}


def _patterns(nav_shape: tuple[int, int], shape: tuple[int, int], dtype: str, seed: int = 0) -> np.ndarray:
    """(rows, cols, h, w): a pool of 512 realistic patterns, drawn at random over the map."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _patterns import PatternMaker

    pool = PatternMaker(shape, dtype, seed=seed).stack(512)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(pool), nav_shape[0] * nav_shape[1])
    return pool[pick].reshape(*nav_shape, *shape)


def file_name(fmt: str, label: str, nav_shape: tuple[int, int]) -> Path:
    ext = {"h5oina": ".h5oina", "ebsp": ".ebsp", "bruker": ".h5", "up": ".up1" if "uint8" in label else ".up2"}[fmt]
    return DATA / f"{fmt}_{label.replace(' ', '_')}_{nav_shape[0]}x{nav_shape[1]}{ext}"


def write(fmt: str, path: Path, patterns: np.ndarray, step_um: tuple[float, float] = (1.5, 1.5)) -> None:
    """Write ``patterns`` (rows, cols, h, w) with kikuchi's writer of ``fmt``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "h5oina":
        from kikuchi.io.h5oina import write_h5oina

        write_h5oina(tmp, patterns, step_um=step_um, lzf=True)
    elif fmt == "ebsp":
        from kikuchi.io.ebsp import write_ebsp

        write_ebsp(tmp, patterns, version=2, step_um=step_um)
    elif fmt == "bruker":
        from kikuchi.io.bruker import write_bruker_h5

        write_bruker_h5(tmp, patterns, step_um=step_um)
    else:
        from kikuchi.io.edax_up import write_up

        write_up(tmp, patterns, version=3, step_um=step_um)
    os.replace(tmp, path)


# -- the contenders, each run in a subprocess ------------------------------------------------
def _warm(path: Path) -> None:
    """Read the whole file once, so every contender reads from the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def measure_kikuchi(path: Path, workers: int | None = None) -> int:
    import kikuchi

    n = 0
    with kikuchi.open(path) as m:
        for start, stop, _block in m.iter_chunks(workers=workers):
            n += stop - start
    return n


def measure_kikuchipy(path: Path) -> int:
    import warnings

    warnings.simplefilter("ignore")
    import dask
    import dask.array as da
    import kikuchipy as kp

    class Drop:
        def __setitem__(self, key, value):  # noqa: ANN001 - dask's target protocol
            pass

    s = kp.load(path, lazy=True)
    data = s.data
    with dask.config.set(scheduler="threads"):
        da.store(data, Drop(), lock=False)
    return int(np.prod(data.shape[:-2]))


def measure_floor(path: Path) -> int:
    """The same bytes read without kikuchi's reader (a binary file is opened with kikuchi only to count its patterns)."""
    import h5py

    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            found: list = []
            f.visititems(lambda name, obj: found.append(obj) if isinstance(obj, h5py.Dataset) and obj.ndim == 3 and obj.size > 1 else None)
            ds = max(found, key=lambda d: d.size)
            n = ds.shape[0]
            per_mib = max(1, (1 << 20) // int(np.prod(ds.shape[1:]) * ds.dtype.itemsize))
            stored = ds.chunks[0] if ds.chunks else 1
            step = max(stored, per_mib // stored * stored)  # whole stored chunks, about 1 MiB: h5py's best read
            buf = np.empty((step, *ds.shape[1:]), dtype=ds.dtype)
            for start in range(0, n, step):
                stop = min(start + step, n)
                ds.read_direct(buf[: stop - start], np.s_[start:stop])
            return n
    import kikuchi

    with kikuchi.open(path) as m:  # the pattern count only: the bytes are read below
        n = m.n_patterns
    size = os.path.getsize(path)
    buf = bytearray(1 << 20)
    fd = os.open(path, os.O_RDONLY)
    try:
        offset = 0  # every byte of the file (patterns, their headers and footers)
        while offset < size:
            got = os.preadv(fd, [buf], offset)
            if not got:
                break
            offset += got
    finally:
        os.close(fd)
    return n


def _peak_rss_mib() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss it does not carry the parent's over exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _imports(kind: str) -> None:
    """Import (and load the compiled kernels of) the contender before the clock starts: reading is timed, not start-up."""
    import h5py  # noqa: F401

    if kind in ("kikuchi", "kikuchi1", "floor"):  # the floor of a binary file opens it with kikuchi for its pattern count
        from kikuchi.io._kernels import lzf_decompress
        from kikuchi.io.source import formats

        formats()
        lzf_decompress(bytes([0, 0]), 1)
    elif kind == "kikuchipy":
        import dask.array  # noqa: F401
        import kikuchipy  # noqa: F401


def _child(kind: str, path: Path) -> None:
    _imports(kind)
    _warm(path)
    t0 = time.perf_counter()
    measure = {"kikuchi": measure_kikuchi, "kikuchi1": lambda p: measure_kikuchi(p, 1), "kikuchipy": measure_kikuchipy, "floor": measure_floor}
    n = measure[kind](path)
    seconds = time.perf_counter() - t0
    rss_mib = _peak_rss_mib()
    print(json.dumps({"n": n, "seconds": seconds, "rss_mib": rss_mib}))


def run_child(kind: str, path: Path, repeat: int) -> dict:
    best: dict | None = None
    for _ in range(repeat):
        proc = subprocess.run([sys.executable, __file__, "--child", kind, str(path)], capture_output=True, text=True, timeout=3600)
        if proc.returncode != 0:
            return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:200]}
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if best is None or result["seconds"] < best["seconds"]:
            best = result
    assert best is not None
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--quick", action="store_true", help="a quarter of the maps (and no memory run)")
    parser.add_argument("--rebuild", action="store_true", help="write the files again")
    parser.add_argument("--no-kikuchipy", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], Path(args.child[1]))
        return
    formats = [f for f in args.formats.split(",") if f]
    sizes = QUICK if args.quick else SIZES
    print(f"cores: {os.cpu_count()}; each figure the best of {args.repeat} runs in a fresh process, file in the page cache")
    header = (
        f"{'file':<36} {'patterns':>9} | {'kikuchi p/s':>12} {'MiB/s':>7} | {'1 thread p/s':>12} | {'kikuchipy p/s':>13} {'MiB/s':>7} | "
        f"{'floor p/s':>11} {'MiB/s':>7} | {'kp/ours':>7} {'ours/floor':>10} {'1 thread/floor':>14} | {'RSS MiB':>7}"
    )
    print(header)
    print("-" * len(header))
    for label, (nav_shape, shape, dtype) in sizes.items():
        patterns = None
        for fmt in formats:
            path = file_name(fmt, label, nav_shape)
            if args.rebuild or not path.exists():
                if patterns is None:
                    patterns = _patterns(nav_shape, shape, dtype)
                write(fmt, path, patterns)
            mib = int(np.prod(nav_shape)) * int(np.prod(shape)) * np.dtype(dtype).itemsize / 2**20
            ours = run_child("kikuchi", path, args.repeat)
            one = run_child("kikuchi1", path, args.repeat)
            kp = {"error": "skipped"} if args.no_kikuchipy else run_child("kikuchipy", path, args.repeat)
            floor = run_child("floor", path, args.repeat)

            def cells(r: dict) -> str:
                if "error" in r:
                    return f"{'(' + r['error'][:11] + ')':>13} {'':>7}" if r is kp else f"{'error':>12} {'':>7}"
                return f"{r['n'] / r['seconds']:>12,.0f} {mib / r['seconds']:>7.0f}"

            ratio_kp = f"{kp['seconds'] / ours['seconds']:>7.1f}" if "error" not in kp and "error" not in ours else f"{'-':>7}"
            ratio_floor = f"{ours['seconds'] / floor['seconds']:>10.2f}" if "error" not in floor and "error" not in ours else f"{'-':>10}"
            ratio_one = f"{one['seconds'] / floor['seconds']:>14.2f}" if "error" not in floor and "error" not in one else f"{'-':>14}"
            one_rate = f"{one['n'] / one['seconds']:>12,.0f}" if "error" not in one else f"{'error':>12}"
            print(
                f"{path.name:<36} {int(np.prod(nav_shape)):>9,} | {cells(ours)} | {one_rate} | {cells(kp):>21} | {cells(floor)} | {ratio_kp} {ratio_floor} {ratio_one} | "
                f"{ours.get('rss_mib', float('nan')):>7.0f}",
                flush=True,
            )
            if "error" in ours:
                print(f"   kikuchi: {ours['error']}")
            if "error" in kp and kp["error"] != "skipped":
                print(f"   kikuchipy: {kp['error']}")
    if not args.quick:
        print("\npeak RSS of the kikuchi reader as the map grows (60x60 uint8):")
        for fmt in formats:
            small = file_name(fmt, "60x60 uint8", QUICK["60x60 uint8"][0])
            if not small.exists():
                write(fmt, small, _patterns(*QUICK["60x60 uint8"]))
            big = file_name(fmt, "60x60 uint8", SIZES["60x60 uint8"][0])
            a, b = run_child("kikuchi", small, 1), run_child("kikuchi", big, 1)
            print(f"  {fmt:<7} 20,000 patterns: {a.get('rss_mib', float('nan')):.0f} MiB; 100,000 patterns: {b.get('rss_mib', float('nan')):.0f} MiB")


if __name__ == "__main__":
    main()
