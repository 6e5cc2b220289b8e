"""Refinement speed and final NCC against kikuchipy 0.13, on the same patterns, starts, mask and cores.

Run by hand (needs the optional ``bench`` extra: kikuchipy)::

    .venv/bin/python benchmarks/refine.py                 # 9 real Ni patterns + 500 synthetic 60 x 60
    .venv/bin/python benchmarks/refine.py --n 2000 --rounds 3

Data sets:

* ``ni9``: the 9 real Ni patterns of ``kikuchipy/nickel_ebsd_small.h5``
  (../shared/data), static and dynamic background subtracted
  (:func:`kikuchi.refine.prepare_for_matching`), their per-pattern PCs, and
  the start of kikuchi's Hough indexing of the same patterns;
* ``synthetic``: ``--n`` patterns of 60 x 60 projected from the same EMsoft
  master pattern at random orientations, PC (0.5, 0.3, 0.6), Poisson noise
  (``--counts`` per pixel), the start turned 1 degree about a random axis
  from the truth.

Both sides get the same float32 patterns, the same EMsoft master pattern
(``ni_mc_mp_20kv_uint8_gzip_opts9.h5``, 20 keV bin), the same start
orientations and PCs and the same circular signal mask (kikuchipy's
``signal_mask`` is True where pixels are left out: its complement), on the
same cores (our threads; kikuchipy's dask threaded scheduler). kikuchipy:
``EBSD.refine_orientation`` (and ``refine_orientation_projection_center``
for ``--mode both``), its defaults (scipy Nelder-Mead on the Euler angles,
trust region 1 degree: here ``--trust-region``, also given to ours).
kikuchi: :func:`kikuchi.refine.refine_patterns` with its defaults. The final
NCC of both is recomputed by one function (:func:`kikuchi.refine.ncc`, mask
applied) from the orientations each returned, so the scores compare; each
side is warmed up first (numba compilation) and the best of ``--rounds``
interleaved rounds is reported.

Prints one line per data set: patterns/s of each, the speed ratio, mean final
NCC of each, and for the real patterns the error to the reference orientations.

``--noise-study`` measures instead the accuracy of refinement after Hough
indexing on dynamical Ni simulations (issue 13)::

    .venv/bin/python benchmarks/refine.py --noise-study --n 500

maps of ``--n`` random orientations (one grain per point), 60 x 60 patterns
from the EMsoft Ni master pattern with the detection model's static
background, backscatter gradient and Poisson noise at 2000, 300 and 60
counts per pixel, at the Kikuchi contrast of real Ni patterns
(:data:`kikuchi.simulate.detection.REAL_NI_CONTRAST`), PC (0.5, 0.3, 0.6);
kikuchi's Hough indexing, then :func:`kikuchi.refine.refine_patterns` of the
indexed points (static and dynamic background subtracted, circular mask, the
same master pattern). Fraction of all points within 1, 2, 5 degrees of the
truth and the mean error of those within 5, before and after refinement.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MASTER = SHARED / "kikuchipy" / "ni_mc_mp_20kv_uint8_gzip_opts9.h5"
NI = SHARED / "kikuchipy" / "nickel_ebsd_small.h5"


def ni9():
    import kikuchi
    from kikuchi.index import index_map
    from kikuchi.refine import prepare_for_matching

    with kikuchi.open(NI) as m:
        hough = index_map(m, ["ni"], progress=False)
        patterns = prepare_for_matching(m.read_all().reshape(-1, *m.pattern_shape), static_background=m.static_background)
        det = m.detector
        reference = m.euler.reshape(-1, 3)
    return patterns, det, hough.result.euler, reference


def synthetic(master, n: int, counts: float, seed: int = 0):
    from kikuchi.geometry import Detector, axis_angle_matrix, euler_to_matrix, matrix_to_euler
    from kikuchi.simulate import project_patterns

    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    from orix.quaternion import Rotation

    truth = Rotation(q).to_euler()
    det = Detector((60, 60), (0.5, 0.3, 0.6))
    sims = project_patterns(master, det, truth).astype(np.float64)
    lo = sims.min(axis=(1, 2), keepdims=True)
    hi = sims.max(axis=(1, 2), keepdims=True)
    patterns = rng.poisson(counts * (0.5 + 0.5 * (sims - lo) / (hi - lo))).astype(np.float32)
    axes = rng.normal(size=(n, 3))
    start = np.array([
        matrix_to_euler(euler_to_matrix(e) @ axis_angle_matrix(a / np.linalg.norm(a), np.radians(1.0)).T) for e, a in zip(truth, axes)
    ])  # fmt: skip
    return patterns, det, start, truth


def kikuchipy_refine(patterns, det, start, kp_master, mask, mode: str, trust_deg: float, trust_pc: float):
    import kikuchipy as kp
    from orix.crystal_map import CrystalMap, PhaseList
    from orix.quaternion import Rotation

    n = len(patterns)
    signal = kp.signals.EBSD(np.asarray(patterns))
    pcs = det.pc_flat if det.n_pc > 1 else np.broadcast_to(det.pc_flat[0], (n, 3))
    detector = kp.detectors.EBSDDetector(shape=patterns.shape[1:], pc=np.array(pcs), sample_tilt=det.sample_tilt_deg, tilt=det.camera_tilt_deg)
    xmap = CrystalMap(rotations=Rotation.from_euler(start), x=np.arange(n, dtype=float), phase_list=PhaseList(kp_master.phase))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "orientation":
            out = signal.refine_orientation(
                xmap=xmap, detector=detector, master_pattern=kp_master, energy=20, signal_mask=~mask, trust_region=[trust_deg] * 3,
                compute=True, navigation_mask=None,
            )
            return out.rotations.to_euler(), pcs
        out, det_out = signal.refine_orientation_projection_center(
            xmap=xmap, detector=detector, master_pattern=kp_master, energy=20, signal_mask=~mask,
            trust_region=[trust_deg] * 3 + [trust_pc] * 3, compute=True,
        )
        return out.rotations.to_euler(), det_out.pc.reshape(-1, 3)


def final_ncc(patterns, master, det, euler, pcs, mask):
    from kikuchi.refine import ncc
    from kikuchi.simulate import project_patterns

    return ncc(patterns, project_patterns(master, det.with_pc(pcs), euler), mask)


def error_deg(euler, reference):
    from orix.quaternion import Orientation
    from orix.quaternion.symmetry import Oh

    return np.degrees(Orientation.from_euler(euler, Oh).angle_with(Orientation.from_euler(reference, Oh)))


def noise_study(args: argparse.Namespace) -> None:
    import kikuchi
    from kikuchi.index import HoughIndexer, prepare_patterns
    from kikuchi.process import circular_mask
    from kikuchi.refine import load_master_pattern, prepare_for_matching, refine_patterns
    from kikuchi.simulate import simulate
    from kikuchi.simulate.detection import REAL_NI_CONTRAST

    master = load_master_pattern(MASTER)
    mask = circular_mask((60, 60))
    rows = max(1, int(np.sqrt(args.n)))
    cols = max(1, args.n // rows)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for counts in (2000.0, 300.0, 60.0):
        path = workdir / f"ni_dyn_{rows}x{cols}_60px_{counts:g}cpp.h5"
        if not path.exists():
            simulate(path, phase="ni", shape=(rows, cols), pattern_shape=(60, 60), grains=rows * cols, gradient_deg=0.0, noise=counts,
                     contrast=REAL_NI_CONTRAST, seed=11, master_pattern=MASTER, pc=(0.5, 0.3, 0.6), progress=False)
        with kikuchi.open(path) as m:
            raw = m.read_all().reshape(-1, 60, 60)
            bg = m.static_background
            truth = m.euler.reshape(-1, 3)
            det = m.detector
        t0 = time.perf_counter()
        hough = HoughIndexer(["ni"], det).index(prepare_patterns(raw, static_background=bg), workers=args.threads)
        t_hough = time.perf_counter() - t0
        ok = hough.indexed
        euler = hough.euler.copy()
        t0 = time.perf_counter()
        res = refine_patterns(prepare_for_matching(raw[ok], static_background=bg), master, det, hough.euler[ok], mask=mask,
                              trust_region_deg=args.trust_region, workers=args.threads)
        t_refine = time.perf_counter() - t0
        refined = euler.copy()
        refined[ok] = res.euler
        row = {"counts_per_px": counts, "points": int(len(raw)), "hough_indexed": round(float(ok.mean()), 4)}
        for name, e in (("hough", euler), ("refined", refined)):
            err = np.where(ok, error_deg(e, truth), 180.0)
            row[name] = {f"within_{k}deg": round(float((err < k).mean()), 4) for k in (1, 2, 5)}
            row[name]["mean_deg_within_5"] = round(float(err[err < 5].mean()), 4) if (err < 5).any() else None
        row.update(hough_patterns_per_s=round(len(raw) / t_hough, 1), refine_patterns_per_s=round(ok.sum() / t_refine, 1),
                   mean_ncc=round(float(res.ncc.mean()), 4))
        print(json.dumps(row), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=500, help="synthetic patterns (default 500)")
    parser.add_argument("--counts", type=float, default=300.0, help="Poisson counts per pixel of the synthetic patterns")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--mode", choices=("orientation", "both"), default="orientation")
    parser.add_argument("--trust-region", type=float, default=2.0, help="degrees, both sides (default 2)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--noise-study", action="store_true", help="accuracy after Hough indexing on dynamical Ni simulations at 3 noise levels")
    parser.add_argument("--workdir", default=str(ROOT / "benchmarks" / "_data"), help="where the simulated maps are cached")
    args = parser.parse_args()
    if args.noise_study:
        noise_study(args)
        return

    import dask
    import kikuchipy as kp

    from kikuchi.process import circular_mask
    from kikuchi.refine import load_master_pattern, refine_patterns

    dask.config.set(scheduler="threads", num_workers=args.threads)
    master = load_master_pattern(MASTER)
    kp_master = kp.load(MASTER, projection="lambert", hemisphere="both", energy=20)
    mask = circular_mask((60, 60))
    sets = {"ni9": ni9(), "synthetic": synthetic(master, args.n, args.counts)}
    # warm-up: compile both
    p, det, start, _ = sets["ni9"]
    refine_patterns(p[:2], master, det.with_pc(det.pc_flat[:2]), start[:2], refine=args.mode, mask=mask, workers=1)
    kikuchipy_refine(p[:2], det.with_pc(det.pc_flat[:2]), start[:2], kp_master, mask, args.mode, args.trust_region, 0.05)
    for name, (patterns, det, start, reference) in sets.items():
        n = len(patterns)
        t_ours, t_kp = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            ours = refine_patterns(patterns, master, det, start, refine=args.mode, mask=mask, trust_region_deg=args.trust_region, workers=args.threads)
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            kp_euler, kp_pc = kikuchipy_refine(patterns, det, start, kp_master, mask, args.mode, args.trust_region, 0.05)
            t_kp.append(time.perf_counter() - t0)
        ncc_ours = final_ncc(patterns, master, det, ours.euler, ours.pc, mask)
        ncc_kp = final_ncc(patterns, master, det, kp_euler, kp_pc, mask)
        ncc_start = final_ncc(patterns, master, det, start, det.pc_flat if det.n_pc > 1 else np.broadcast_to(det.pc_flat[0], (n, 3)), mask)
        row = {
            "set": name, "mode": args.mode, "patterns": n, "threads": args.threads,
            "kikuchi_patterns_per_s": round(n / min(t_ours), 1), "kikuchipy_patterns_per_s": round(n / min(t_kp), 1),
            "speed_ratio": round(min(t_kp) / min(t_ours), 2),
            "mean_ncc_start": round(float(ncc_start.mean()), 5),
            "mean_ncc_kikuchi": round(float(ncc_ours.mean()), 5), "mean_ncc_kikuchipy": round(float(ncc_kp.mean()), 5),
            "kikuchi_ncc_higher_or_equal": round(float((ncc_ours >= ncc_kp - 1e-5).mean()), 4),
            "mean_evaluations_kikuchi": round(float(ours.evaluations.mean()), 1),
        }
        if reference is not None:
            e_ours, e_kp = error_deg(ours.euler, reference), error_deg(kp_euler, reference)
            row.update(
                mean_error_deg_kikuchi=round(float(e_ours.mean()), 4), max_error_deg_kikuchi=round(float(e_ours.max()), 4),
                mean_error_deg_kikuchipy=round(float(e_kp.mean()), 4), max_error_deg_kikuchipy=round(float(e_kp.max()), 4),
            )
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
