"""The xcdskd documentation's Example 1 with kikuchi's own simulation (issue 13).

The real 800 x 600 Si pattern ``xcdskd/Si_15000_BAM.png`` (15 kV, processed)
against a *kinematical* Si master pattern of kikuchi: Hough indexing of the
same pattern finds a starting orientation and pattern centre, pattern
matching refines both, and the figure shows experiment, simulation and their
difference as the documentation does (both normalised to mean 0, standard
deviation 1; the documentation's dynamical fit reached r = 0.768).

Steps:

1. Hough indexing (``HoughIndexer`` with the Hough-based PC refinement
   ``refine_pattern_centre``) on the pattern binned to 160 x 120, from a
   small grid of starting PCs (the pattern does not record its PC; the
   documentation gives only 800 x 600 pixels, 15 kV and a best-fitting
   energy of about 14 keV: the sample tilt is taken as the usual 70
   degrees, the camera tilt as 0); every solution is scored by its NCC
   with the kinematical simulation and the best one kept;
2. refinement of orientation + PC (``kikuchi.refine.refine_patterns``) on the
   pattern binned to 200 x 150, then on the full 800 x 600 pattern;
3. the same at the energies in ``--kv`` (the documentation's dynamical fit
   was best at about 14 keV for a 15 kV pattern); the best NCC is reported.

Run from the repository root::

    .venv/bin/python docs/examples/si_example1.py [--figure docs/figures/si_example1.png]
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
from PIL import Image

from kikuchi.geometry import Detector
from kikuchi.index import HoughIndexer, prepare_patterns, refine_pattern_centre
from kikuchi.index.map_index import bin_mean
from kikuchi.refine import ncc, refine_patterns
from kikuchi.simulate import kinematical_master_pattern, project_patterns

ROOT = Path(__file__).resolve().parents[2]
PATTERN = ROOT.parent / "shared" / "data" / "xcdskd" / "Si_15000_BAM.png"


def hough_start(pattern: np.ndarray, master, kv: float) -> tuple[float, np.ndarray, np.ndarray, list]:
    """(NCC, PC, Euler) of the best Hough solution over a grid of starting PCs, and all tried."""
    binned = bin_mean(prepare_patterns(pattern[None]), 5)  # 120 x 160 for band detection
    small = bin_mean(pattern[None].astype(np.float32), 4)[0]  # 150 x 200 to score candidates
    tried = []
    for pcy, dd in itertools.product((0.1, 0.2, 0.3, 0.4, 0.5), (0.5, 0.65, 0.8, 1.0)):
        det = Detector(binned.shape[1:], (0.5, pcy, dd))
        indexer = HoughIndexer(["si"], det, kv=kv, n_bands=12)
        try:
            pc = refine_pattern_centre(indexer, binned)["pc"]
        except ValueError:
            continue
        result = indexer.with_detector(det.with_pc(pc)).index(binned)
        if result.error[0] != 0:
            continue
        sim = project_patterns(master, Detector(small.shape, pc), result.euler)[0]
        tried.append((float(ncc(small, sim)), pc, result.euler[0], (0.5, pcy, dd), int(result.n_matched[0]), float(result.mad_deg[0])))
    best = max(tried, key=lambda t: t[0])
    return best[0], best[1], best[2], tried


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "si_example1.png")
    parser.add_argument("--kv", type=float, nargs="+", default=[15.0, 14.0])
    args = parser.parse_args()
    pattern = np.asarray(Image.open(PATTERN).convert("L"), dtype=np.float32)  # 600 x 800, processed
    report = {"pattern": str(PATTERN.relative_to(ROOT.parent)), "shape": list(pattern.shape), "runs": []}
    best_run = None
    for kv in args.kv:
        t0 = time.perf_counter()
        master = kinematical_master_pattern("si", kv=kv)
        c0, pc0, eu0, tried = hough_start(pattern, master, kv)
        t1 = time.perf_counter()
        small = bin_mean(pattern[None], 4)[0]
        coarse = refine_patterns(small, master, Detector(small.shape, pc0), eu0, refine="both", trust_region_deg=3.0,
                                 trust_region_pc=0.05, step_deg=1.0, step_pc=0.01, restarts=3)
        full = refine_patterns(pattern, master, Detector(pattern.shape, coarse.pc[0]), coarse.euler[0], refine="both",
                               trust_region_deg=1.0, trust_region_pc=0.02, step_deg=0.2, step_pc=0.002, restarts=3)
        t2 = time.perf_counter()
        run = {
            "kv": kv,
            "hough_candidates": len(tried),
            "hough_pc_bruker": [round(float(v), 4) for v in pc0], "hough_euler_deg": [round(float(v), 3) for v in np.degrees(eu0)],
            "ncc_hough_200x150": round(c0, 4),
            "ncc_refined_200x150": round(float(coarse.ncc[0]), 4),
            "ncc_refined_800x600": round(float(full.ncc[0]), 4),
            "pc_bruker": [round(float(v), 5) for v in full.pc[0]],
            "euler_deg": [round(float(v), 3) for v in np.degrees(full.euler[0])],
            "evaluations": int(coarse.evaluations[0] + full.evaluations[0]),
            "seconds_hough": round(t1 - t0, 1), "seconds_refine": round(t2 - t1, 1),
        }
        print(json.dumps(run))
        report["runs"].append(run)
        if best_run is None or full.ncc[0] > best_run[0].ncc[0]:
            best_run = (full, master, kv)
    full, master, kv = best_run
    det = Detector(pattern.shape, full.pc[0])
    sim = project_patterns(master, det, full.euler)[0].astype(np.float64)
    exp = (pattern - pattern.mean()) / pattern.std()
    sim = (sim - sim.mean()) / sim.std()
    r = float(np.mean(exp * sim))
    report["best"] = {"kv": kv, "ncc_mean0_std1": round(r, 4), "pc_bruker": [round(float(v), 5) for v in full.pc[0]],
                      "pc_edax": [round(float(v), 5) for v in det.pc_as("edax").reshape(3)],
                      "euler_deg": [round(float(v), 3) for v in np.degrees(full.euler[0])]}
    print(json.dumps(report["best"]))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(4, 9))
    for ax, img, title, cmap, lim in (
        (axes[0], exp, "experiment (Si, 15 kV, 800 x 600)", "gray", 3),
        (axes[1], sim, f"kinematical simulation ({kv:g} kV), r = {r:.3f}", "gray", 3),
        (axes[2], exp - sim, "experiment - simulation", "seismic", 4),
    ):
        ax.imshow(img, cmap=cmap, vmin=-lim, vmax=lim)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
    fig.tight_layout()
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=50)
    Image.open(args.figure).convert("RGB").quantize(64).save(args.figure, optimize=True)  # a small file for the docs
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
