"""Hough indexing speed and accuracy against PyEBSDIndex, on the same patterns, PC and cores.

Run by hand (needs the optional ``bench`` extra: ``pip install pyebsdindex``)::

    .venv/bin/python benchmarks/index.py                 # 10,000 patterns, 60 x 60, medium noise
    .venv/bin/python benchmarks/index.py --n 2000 --noise low --threads 1

Steps:

1. Writes (once, cached under ``--workdir``) a synthetic Ni map of known truth
   with :func:`kikuchi.simulate.simulate` (60 x 60 patterns), reads it and
   removes the static and dynamic background (the same processed float32
   patterns go to both indexers; the processing time is reported apart).
2. The first call in a fresh environment: a subprocess with an empty numba
   cache imports kikuchi and indexes 10 patterns (compilation included).
3. kikuchi ``HoughIndexer.index`` and PyEBSDIndex ``EBSDIndexer.index_pats``
   (CPU, no OpenCL; vendor 'KIKUCHIPY' = Bruker PC, orix frame) on the same
   patterns, same PC, same number of cores (numba threads for PyEBSDIndex,
   our threads for kikuchi), each after a warm-up call.
4. Accuracy of both against the truth: fraction within 1, 2, 5 degrees and
   the mean error, misorientation with symmetry by orix.

Prints a table and the speed ratio measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _accuracy(euler: np.ndarray, truth: np.ndarray, indexed: np.ndarray) -> dict[str, float]:
    from orix.quaternion import Orientation, symmetry

    mis = np.full(len(truth), 180.0)
    if indexed.any():
        a = Orientation.from_euler(euler[indexed], symmetry.Oh)
        b = Orientation.from_euler(truth[indexed], symmetry.Oh)
        mis[indexed] = np.degrees(a.angle_with(b))
    good = mis < 5
    return {
        "within_1": float((mis < 1).mean()),
        "within_2": float((mis < 2).mean()),
        "within_5": float((mis < 5).mean()),
        "mean_deg": float(mis[good].mean()) if good.any() else float("nan"),
        "indexed": float(indexed.mean()),
    }


_FIRST_CALL = r"""
import time, json, sys
t0 = time.perf_counter()
import numpy as np
from kikuchi.geometry import Detector
from kikuchi.index import HoughIndexer
t1 = time.perf_counter()
ix = HoughIndexer(["ni"], Detector((60, 60), (0.4251, 0.2134, 0.5007)))
t2 = time.perf_counter()
ix.index(np.random.default_rng(0).random((10, 60, 60)).astype(np.float32))
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "setup_s": t2 - t1, "first_index_s": t3 - t2, "total_s": t3 - t0}))
"""


def first_call_seconds() -> dict[str, float]:
    """Import + set-up + first index call in a subprocess with an empty numba cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True, check=True)
        cold = json.loads(out.stdout.strip().splitlines()[-1])
        out = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True, text=True, check=True)
        warm = json.loads(out.stdout.strip().splitlines()[-1])
    return {"cold": cold, "cached": warm}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="patterns (a square-ish map is simulated)")
    parser.add_argument("--noise", default="medium", help="noise level of the synthetic map (low, medium, high)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cores for both indexers")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kikuchi-bench", help="where the synthetic map is cached")
    parser.add_argument("--skip-first-call", action="store_true", help="do not measure the cold start")
    args = parser.parse_args()

    import kikuchi
    from kikuchi.index import HoughIndexer, prepare_patterns
    from kikuchi.simulate import simulate

    cols = int(np.ceil(np.sqrt(args.n)))
    rows = int(np.ceil(args.n / cols))
    args.workdir.mkdir(parents=True, exist_ok=True)
    path = args.workdir / f"ni_{rows}x{cols}_{args.noise}.h5"
    if not path.exists():
        t0 = time.perf_counter()
        simulate(path, phase="ni", shape=(rows, cols), grains=max(25, args.n // 100), noise=args.noise, seed=7, progress=True)
        print(f"simulated {path} in {time.perf_counter() - t0:.1f} s")
    with kikuchi.open(path) as m:
        raw = m.read(0, args.n)
        truth = m.euler.reshape(-1, 3)[: args.n]
        bg = m.static_background
        detector = m.detector
    n = raw.shape[0]
    pc = detector.pc_mean
    t0 = time.perf_counter()
    patterns = prepare_patterns(raw, static_background=bg)
    t_prep = time.perf_counter() - t0

    first = None if args.skip_first_call else first_call_seconds()

    # kikuchi
    ix = HoughIndexer(["ni"], detector)
    ix.index(patterns[:64], workers=args.threads)
    t0 = time.perf_counter()
    ours = ix.index(patterns, workers=args.threads)
    t_ours = time.perf_counter() - t0
    acc_ours = _accuracy(ours.euler, truth, ours.indexed)

    # PyEBSDIndex (CPU)
    import numba
    from orix.quaternion import Rotation
    from pyebsdindex import ebsd_index

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    pei = ebsd_index.EBSDIndexer(
        phaselist=["FCC"], vendor="KIKUCHIPY", PC=pc, sampleTilt=detector.sample_tilt_deg, camElev=detector.camera_tilt_deg, patDim=(60, 60),
    )
    pei.index_pats(patsin=patterns[:64], verbose=0)
    t0 = time.perf_counter()
    data = pei.index_pats(patsin=patterns, verbose=0)[0][-1]
    t_pei = time.perf_counter() - t0
    pei_indexed = data["phase"] >= 0
    pei_euler = Rotation(data["quat"]).to_euler()
    acc_pei = _accuracy(pei_euler, truth, pei_indexed)

    rate_ours, rate_pei = n / t_ours, n / t_pei
    print(f"\n{n} patterns 60 x 60, noise {args.noise}, PC (Bruker) {np.round(pc, 4).tolist()}, {args.threads} core(s)")
    print(f"background removal (static + dynamic, both indexers get the result): {n / t_prep:,.0f} patterns/s")
    print(f"{'indexer':<14}{'patterns/s':>12}{'<1 deg':>9}{'<2 deg':>9}{'<5 deg':>9}{'mean deg':>10}{'indexed':>9}")
    for name, rate, acc in (("kikuchi", rate_ours, acc_ours), ("PyEBSDIndex", rate_pei, acc_pei)):
        print(f"{name:<14}{rate:>12,.0f}{acc['within_1']:>9.4f}{acc['within_2']:>9.4f}{acc['within_5']:>9.4f}{acc['mean_deg']:>10.3f}{acc['indexed']:>9.4f}")
    print(f"speed ratio kikuchi / PyEBSDIndex: {rate_ours / rate_pei:.2f}x")
    if first is not None:
        c, w = first["cold"], first["cached"]
        print(f"first call, empty numba cache: {c['total_s']:.1f} s (import {c['import_s']:.1f}, set-up {c['setup_s']:.1f}, index 10 patterns {c['first_index_s']:.1f});"
              f" with the cache: {w['total_s']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
