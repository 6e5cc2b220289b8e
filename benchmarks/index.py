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

``--noise-study`` (issue 12) measures instead how Hough indexing holds up at
high noise::

    .venv/bin/python benchmarks/index.py --noise-study             # 2,000 patterns per level
    .venv/bin/python benchmarks/index.py --noise-study --n 500 --sides 60

1. Maps of random orientations (as many Voronoi grains as points, no
   in-grain gradient) simulated from the dynamical EMsoft Ni master pattern
   (``ni_mc_mp_20kv_uint8_gzip_opts9.h5`` of ../shared/data) for 60 x 60 and
   120 x 120 patterns at 2000, 300 and 60 counts per pixel (Poisson noise),
   with the detection model's static background, smooth backscatter
   gradient and detector response, at the Kikuchi contrast of real Ni
   patterns (``--contrast``, default
   :data:`kikuchi.simulate.detection.REAL_NI_CONTRAST`, 0.02; the default
   0.12 of :func:`kikuchi.simulate.simulate` indexes 100 % for both at every
   level here). PC (Bruker) (0.5, 0.3, 0.6), the same for both indexers.
2. The same processed patterns (static + dynamic background) to kikuchi
   ``HoughIndexer`` with the settings of before issue 12 (line means,
   ``line_statistic='mean'``, proposals scored at the fit tolerance,
   ``vote_tol_deg=2``, and ranked by the bands they explain,
   ``proposal_score='bands'``: what the code did before), with the first
   changes of issue 12 only ("by bands": line sums, proposals scored and
   refined at 3 degrees, still ranked by bands), with today's defaults
   (the proposal with the most band evidence in the filtered transform,
   3-band solutions accepted on strong evidence), and to PyEBSDIndex
   ``EBSDIndexer`` (defaults, CPU), on ``--threads`` cores each. kikuchi's
   runs are interleaved, best of ``--rounds`` rounds, so that their ratios
   of time per pattern are measured under the same load (wall-clock, and the
   CPU time of the process, which other work on a shared machine disturbs
   less). The rates within
   2 degrees come with their standard errors (binomial, sqrt(p (1 - p) / n)).
3. A grain map of the same noise (40 x 50 points, 25 grains, 60 x 60
   patterns, 60 counts per pixel): the rate within 2 degrees of each
   indexer before and after NLPAR (:func:`kikuchi.process.nlpar`, lambda
   chosen automatically, search radius 3, on the background-corrected
   patterns as ``kikuchi process --nlpar`` does); and of dictionary
   indexing as ``kikuchi index --method dictionary`` does it (EMsoft Ni
   master pattern, ``--dictionary-resolution`` degrees, default 3, exact
   NCC on the patterns smoothed by 1 pixel) and then refined from those
   matches as ``--refine`` does (orientation, trust region of the
   resolution), before and after NLPAR.
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


MASTER_PATTERN = ROOT.parent / "shared" / "data" / "kikuchipy" / "ni_mc_mp_20kv_uint8_gzip_opts9.h5"
NOISE_PC = (0.5, 0.3, 0.6)


def _noisy_map(workdir: Path, *, side: int, shape: tuple[int, int], grains: int, counts: float, contrast: float, seed: int):
    """(raw patterns, static background, truth Euler angles, detector) of a cached dynamical Ni map."""
    import kikuchi
    from kikuchi.simulate import simulate

    path = workdir / f"ni_dyn_{shape[0]}x{shape[1]}_g{grains}_{side}px_{counts:g}cpp_c{contrast:g}_s{seed}.h5"
    if not path.exists():
        simulate(path, phase="ni", shape=shape, pattern_shape=(side, side), grains=grains, gradient_deg=0.0, noise=counts,
                 contrast=contrast, seed=seed, master_pattern=MASTER_PATTERN, pc=NOISE_PC, progress=False)
    with kikuchi.open(path) as m:
        return m.read_all().reshape(-1, side, side), m.static_background, m.euler.reshape(-1, 3), m.detector


def _pei_index(patterns: np.ndarray, detector, threads: int) -> tuple[np.ndarray, np.ndarray, float]:
    import numba
    from orix.quaternion import Rotation
    from pyebsdindex import ebsd_index

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    pei = ebsd_index.EBSDIndexer(
        phaselist=["FCC"], vendor="KIKUCHIPY", PC=detector.pc_mean, sampleTilt=detector.sample_tilt_deg,
        camElev=detector.camera_tilt_deg, patDim=tuple(detector.shape),
    )
    pei.index_pats(patsin=patterns[:64], verbose=0)
    t0 = time.perf_counter()
    data = pei.index_pats(patsin=patterns, verbose=0)[0][-1]
    dt = time.perf_counter() - t0
    return Rotation(data["quat"]).to_euler(), data["phase"] >= 0, dt


def _ours_interleaved(patterns: np.ndarray, detector, threads: int, rounds: int) -> dict[str, tuple]:
    """kikuchi with the settings of before issue 12, with its first changes only and with today's defaults, interleaved, best of ``rounds``."""
    from kikuchi.index import HoughIndexer

    indexers = {
        "before": HoughIndexer(["ni"], detector, vote_tol_deg=2.0, band_options={"line_statistic": "mean"}, proposal_score="bands"),
        "by bands": HoughIndexer(["ni"], detector, proposal_score="bands"),
        "today": HoughIndexer(["ni"], detector),
    }
    for ix in indexers.values():
        ix.index(patterns[:64], workers=threads)
    best: dict[str, tuple] = {}
    for _ in range(rounds):
        for name, ix in indexers.items():
            t0, c0 = time.perf_counter(), time.process_time()
            r = ix.index(patterns, workers=threads)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            prev = best.get(name, (r, np.inf, np.inf))
            best[name] = (r, min(dt, prev[1]), min(dc, prev[2]))
    return best


def noise_study(args: argparse.Namespace) -> int:
    from kikuchi.index import prepare_patterns
    from kikuchi.process import nlpar

    if not MASTER_PATTERN.exists():
        print(f"the EMsoft master pattern {MASTER_PATTERN} is missing", file=sys.stderr)
        return 1
    args.workdir.mkdir(parents=True, exist_ok=True)
    n = args.n
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    print(f"dynamical Ni (EMsoft master pattern), random orientations ({rows * cols} points), Kikuchi contrast {args.contrast:g}, "
          f"PC (Bruker) {list(NOISE_PC)}, {args.threads} core(s) for each indexer")
    header = (f"{'pattern':>8}{'counts/px':>10}  {'indexer':<18}{'<1 deg':>8}{'<2 deg':>8}{'+-':>7}{'<5 deg':>8}{'mean deg':>9}"
              f"{'indexed':>9}{'patterns/s':>12}")
    print(header)
    ratios = []
    for side in args.sides:
        for counts in args.counts:
            raw, bg, truth, detector = _noisy_map(args.workdir, side=side, shape=(rows, cols), grains=rows * cols, counts=counts,
                                                  contrast=args.contrast, seed=args.seed)
            patterns = prepare_patterns(raw, static_background=bg)
            best = _ours_interleaved(patterns, detector, args.threads, args.rounds)
            pei_euler, pei_ok, t_pei = _pei_index(patterns, detector, args.threads)
            rows_out = [(f"kikuchi {name}", best[name][0].euler, best[name][0].indexed, best[name][1]) for name in best]
            rows_out.append(("PyEBSDIndex", pei_euler, pei_ok, t_pei))
            within2 = {}
            for name, euler, ok, dt in rows_out:
                a = _accuracy(euler, truth, ok)
                within2[name] = a["within_2"]
                print(f"{side:>5} px{counts:>10g}  {name:<18}{a['within_1']:>8.3f}{a['within_2']:>8.3f}{_standard_error(a['within_2'], len(truth)):>7.3f}"
                      f"{a['within_5']:>8.3f}{a['mean_deg']:>9.3f}{a['indexed']:>9.3f}{len(patterns) / dt:>12,.0f}")
            ratios.append({"wall": best["today"][1] / best["before"][1], "cpu": best["today"][2] / best["before"][2],
                           "cpu_bands": best["today"][2] / best["by bands"][2]})
            gap = within2["kikuchi today"] - within2["PyEBSDIndex"]
            gap_se = np.hypot(_standard_error(within2["kikuchi today"], len(truth)), _standard_error(within2["PyEBSDIndex"], len(truth)))
            print(f"{'':>20}time per pattern today / before: {ratios[-1]['wall']:.2f}x, CPU time {ratios[-1]['cpu']:.2f}x "
                  f"(today / by bands: {ratios[-1]['cpu_bands']:.2f}x); today - PyEBSDIndex within 2 deg: {100 * gap:+.1f} +- {100 * gap_se:.1f} points")
    # a grain map at the high noise: NLPAR then Hough
    counts = min(args.counts)
    raw, bg, truth, detector = _noisy_map(args.workdir, side=60, shape=(40, 50), grains=25, counts=counts, contrast=args.contrast, seed=args.seed)
    patterns = prepare_patterns(raw, static_background=bg)
    t0 = time.perf_counter()
    averaged = nlpar(patterns.reshape(40, 50, 60, 60), lam="auto", workers=args.threads).reshape(patterns.shape)
    t_nlpar = time.perf_counter() - t0
    print(f"\ngrain map 40 x 50 (25 grains), 60 x 60 patterns, {counts:g} counts/px, contrast {args.contrast:g}: "
          f"within 2 deg before -> after NLPAR (lambda auto, search radius 3; {patterns.shape[0] / t_nlpar:,.0f} patterns/s)")
    for label, stack in (("before NLPAR", patterns), ("after NLPAR", averaged)):
        best = _ours_interleaved(stack, detector, args.threads, 1)
        pei_euler, pei_ok, _ = _pei_index(stack, detector, args.threads)
        rows_out = [(f"kikuchi {name}", best[name][0].euler, best[name][0].indexed) for name in best] + [("PyEBSDIndex", pei_euler, pei_ok)]
        line = "  ".join(f"{name} {_accuracy(e, truth, ok)['within_2']:.3f}" for name, e, ok in rows_out)
        print(f"  {label:<13} {line}")
    if args.dictionary_resolution:
        _nlpar_dictionary(args, raw, bg, patterns, averaged, truth, detector)

    def listed(key: str) -> str:
        return ", ".join(f"{r[key]:.2f}x" for r in ratios)

    print(f"\ntime per pattern today / before, per level (best of {args.rounds} interleaved rounds): wall {listed('wall')}; "
          f"CPU time of the process {listed('cpu')} (today / by bands: {listed('cpu_bands')})")
    return 0


def _standard_error(p: float, n: int) -> float:
    """Binomial standard error of a rate ``p`` measured on ``n`` patterns."""
    return float(np.sqrt(p * (1 - p) / n))


def _nlpar_dictionary(args: argparse.Namespace, raw, bg, patterns, averaged, truth, detector) -> None:
    """Dictionary indexing of the grain map before and after NLPAR, then refined, with ``kikuchi index --method dictionary --refine``'s defaults.

    Before NLPAR the raw patterns are prepared as the command prepares a map's patterns (static and dynamic backgrounds
    subtracted, sigma height / 8, smoothed by 1 pixel) and refined as it refines them (:func:`kikuchi.refine.prepare_for_matching`'s
    defaults), from its ``--refine-candidates`` best matches; after NLPAR the averaged background-corrected patterns
    (what ``kikuchi process --nlpar`` writes) are matched smoothed by 1 pixel and refined as they are, from as many matches.
    """
    from kikuchi.cli._index_dictionary import REFINE_CANDIDATES
    from kikuchi.index import PatternDictionary, dictionary_index
    from kikuchi.index.dictionary import smooth_patterns
    from kikuchi.refine import prepare_for_matching, refine_patterns
    from kikuchi.simulate import MasterPattern

    t0 = time.perf_counter()
    master = MasterPattern.from_emsoft(MASTER_PATTERN)
    dictionary = PatternDictionary.from_resolution(master, detector, args.dictionary_resolution, phases="ni").prepare()
    trust = max(2.0, args.dictionary_resolution)
    print(f"dictionary indexing, {len(dictionary):,} orientations ({args.dictionary_resolution:g} deg, EMsoft Ni master pattern, exact NCC, "
          f"backgrounds subtracted, patterns smoothed by 1 px; made in {time.perf_counter() - t0:.1f} s), then refined (orientation, trust "
          f"region {trust:g} deg, the best {REFINE_CANDIDATES} matches screened): within 1 / 2 / 5 deg")
    matched = smooth_patterns(prepare_for_matching(raw, static_background=bg, sigma=raw.shape[-2] / 8), 1.0)
    for label, stack, for_refine in (("before NLPAR", matched, prepare_for_matching(raw, static_background=bg)),
                                     ("after NLPAR", smooth_patterns(averaged, 1.0), averaged)):  # fmt: skip
        t0 = time.perf_counter()
        matches = dictionary_index(stack, dictionary, top_k=REFINE_CANDIDATES, workers=args.threads)
        t_match = time.perf_counter() - t0
        t0 = time.perf_counter()
        refined = refine_patterns(for_refine, master, detector, matches.top_k_euler, trust_region_deg=trust, workers=args.threads)
        t_refine = time.perf_counter() - t0
        cells = []
        for name, euler, dt in (("dictionary", matches.euler, t_match), ("+ refinement", refined.euler, t_refine)):
            a = _accuracy(euler, truth, np.ones(len(truth), dtype=bool))
            cells.append(f"{name} {a['within_1']:.3f} / {a['within_2']:.3f} / {a['within_5']:.3f} ({len(truth) / dt:,.0f} patterns/s)")
        print(f"  {label:<13} " + "  ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="patterns (a square-ish map is simulated)")
    parser.add_argument("--noise", default="medium", help="noise level of the synthetic map (low, medium, high)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cores for both indexers")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kikuchi-bench", help="where the synthetic map is cached")
    parser.add_argument("--skip-first-call", action="store_true", help="do not measure the cold start")
    parser.add_argument("--noise-study", action="store_true", help="dynamical simulations at 2000/300/60 counts per pixel and NLPAR on a grain map (issue 12)")
    parser.add_argument("--sides", type=lambda t: [int(v) for v in t.split(",")], default=[60, 120], help="--noise-study: pattern sides (default 60,120)")
    parser.add_argument("--counts", type=lambda t: [float(v) for v in t.split(",")], default=[2000.0, 300.0, 60.0], help="--noise-study: counts per pixel")
    parser.add_argument("--contrast", type=float, default=None, help="--noise-study: Kikuchi contrast (default that of real Ni patterns, 0.02)")
    parser.add_argument("--rounds", type=int, default=2, help="--noise-study: interleaved rounds of kikuchi's two runs (best taken)")
    parser.add_argument("--seed", type=int, default=12, help="--noise-study: seed of the simulations")
    parser.add_argument("--dictionary-resolution", type=float, default=3.0,
                        help="--noise-study: dictionary sampling (degrees) for NLPAR then dictionary indexing on the grain map (0: skip)")
    args = parser.parse_args()
    if args.noise_study:
        from kikuchi.simulate.detection import REAL_NI_CONTRAST

        if args.contrast is None:
            args.contrast = REAL_NI_CONTRAST
        if "--n" not in sys.argv:
            args.n = 2000
        return noise_study(args)

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
    pei_euler, pei_indexed, t_pei = _pei_index(patterns, detector, args.threads)
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
