"""Patterns per second: our master pattern projection vs kikuchipy's EBSDMasterPattern.get_patterns.

Both project the same EMsoft Ni master pattern (401 x 401 Lambert, both
hemispheres) onto the same 60 x 60 detector for the same random orientations,
in the same run, after a warm-up (numba compilation) of each. The outputs are
compared too (they agree to float rounding after kikuchipy's min-max rescale).

Run by hand (needs the optional `bench` extra: `.venv/bin/pip install kikuchipy`):

    .venv/bin/python benchmarks/simulate.py [--n 2000] [--repeat 3] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

from kikuchi.geometry import Detector
from kikuchi.simulate.master import MasterPattern
from kikuchi.simulate.projection import project_patterns

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT.parent / "shared" / "data" / "kikuchipy" / "ni_mc_mp_20kv_uint8_gzip_opts9.h5"


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="orientations (patterns) per run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="our threads (default: all CPUs)")
    parser.add_argument("--shape", default="60x60")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import kikuchipy as kp
    from orix.quaternion import Rotation

    h, w = (int(s) for s in args.shape.split("x"))
    rng = np.random.default_rng(0)
    euler = np.column_stack([rng.uniform(0, 2 * np.pi, args.n), np.arccos(rng.uniform(-1, 1, args.n)), rng.uniform(0, 2 * np.pi, args.n)])
    pc = (0.4251, 0.2134, 0.5007)
    pcs = np.column_stack([rng.uniform(0.40, 0.45, args.n), rng.uniform(0.20, 0.23, args.n), rng.uniform(0.49, 0.51, args.n)])

    ours_mp = MasterPattern.from_emsoft(MASTER)
    kp_mp = kp.load(MASTER, projection="lambert", hemisphere="both")
    kp_mp.data = kp_mp.data.astype(np.float32)  # same dtype out as in: no rescaling, as ours
    rot = Rotation.from_euler(euler)

    print(f"CPUs: {len(os.sched_getaffinity(0))}, patterns: {args.n} x {h} x {w}, best of {args.repeat}")
    for label, our_det, kp_det in (
        ("one PC", Detector((h, w), pc), kp.detectors.EBSDDetector(shape=(h, w), pc=pc, sample_tilt=70)),
        ("PC per pattern", Detector((h, w), pcs), kp.detectors.EBSDDetector(shape=(h, w), pc=pcs, sample_tilt=70)),
    ):
        def ours():
            return project_patterns(ours_mp, our_det, euler, workers=args.workers)

        def theirs():
            return kp_mp.get_patterns(rot, kp_det, dtype_out=np.float32, compute=True, show_progressbar=False).data

        a = ours()  # warm-up (numba compile / cache load)
        b = theirs()
        diff = float(np.abs(a.reshape(args.n, -1) - b.reshape(args.n, -1)).max())
        t_ours = best_of(ours, args.repeat)
        t_kp = best_of(theirs, args.repeat)
        print(
            f"{label:15s} kikuchi {args.n / t_ours:9.0f} patterns/s   kikuchipy {args.n / t_kp:9.0f} patterns/s   "
            f"ratio {t_kp / t_ours:5.2f}x   max |difference| {diff:.2e}"
        )


if __name__ == "__main__":
    main()
