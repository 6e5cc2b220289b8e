"""NLPAR speed and agreement against PyEBSDIndex's NLPAR (CPU), on the same map, in the same run.

Run by hand (needs the optional ``bench`` extra: ``pip install pyebsdindex``)::

    .venv/bin/python benchmarks/nlpar.py                          # 100 x 100 map of 60 x 60 patterns, 16 counts/px
    .venv/bin/python benchmarks/nlpar.py --shape 40x50 --pattern 120 --counts 60 --threads 1

Steps:

1. Simulates (once, cached under ``--workdir``) a noisy Ni map of Voronoi
   grains with :func:`kikuchi.simulate.simulate` (16-bit, Poisson counts of
   ``--counts`` per pixel, detector response), and writes its patterns as
   an EDAX UP2 file with :func:`kikuchi.io.edax_up.write_up`: PyEBSDIndex's
   home format, which kikuchi reads in place too.
2. The same parameters on both sides: lambda (kikuchi's automatic choice,
   given to both), search radius ``--search-radius``, the pixels compared
   (the inscribed circle of the pattern, given to PyEBSDIndex as its
   ``mask``), no saturation protection (PyEBSDIndex's default drops the
   pixels above 99.9 % of the chunk's maximum; kikuchi has no such step),
   the raw counts as float32 (no background removal).
3. Speed, patterns/s, best of ``--rounds`` interleaved rounds after a
   warm-up call (numba compilation), on 1 core and on ``--threads`` cores
   (numba threads for PyEBSDIndex, ours for kikuchi):

   * file to file: kikuchi ``process_map`` (UP2 in, float32 map file out,
     no compression) against PyEBSDIndex ``NLPAR.calcnlpar`` (UP2 in, UP2
     out); each estimates the noise itself;
   * in memory: kikuchi :func:`kikuchi.process.nlpar` against PyEBSDIndex's
     kernels ``NLPAR.sigma_numba`` + ``NLPAR.nlpar_nb`` on the same array;
   * the automatic lambda: kikuchi :func:`kikuchi.process.nlpar_lambda` (in
     memory) against PyEBSDIndex ``opt_lambda`` (reads the file).

4. Agreement, where the parameters are the same: the noise estimates
   (PyEBSDIndex ``sigma_numba`` with nn = 1 against
   :func:`kikuchi.process.nlpar_sigma`); the weights of the search window
   with the same sigma (PyEBSDIndex's normalised distances from
   ``sigma_numba`` with nn = search radius, turned into ``exp(-max(d, 0) /
   lambda²)``, against :func:`kikuchi.process.nlpar_weights` given that
   sigma); the averaged patterns with the same sigma. PyEBSDIndex shifts
   the search window inwards at the map border (kikuchi clips it), so the
   weights and patterns are compared on the points at least one search
   radius from the border. Differences are said relative to the largest
   value, next to float32's resolution (1.2e-7).

Prints the tables; the numbers of a run go into docs/processing.md ("NLPAR").
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

FLOAT32_EPS = float(np.finfo(np.float32).eps)


def _shape(text: str) -> tuple[int, int]:
    rows, cols = (int(v) for v in text.lower().split("x"))
    return rows, cols


def make_map(workdir: Path, shape: tuple[int, int], pattern: int, counts: float, seed: int) -> tuple[Path, np.ndarray]:
    """The simulated map as a UP2 file, and its patterns (rows, cols, h, w) uint16."""
    import kikuchi
    from kikuchi.io.edax_up import write_up
    from kikuchi.simulate import simulate

    rows, cols = shape
    stem = f"ni_{rows}x{cols}_{pattern}px_{counts:g}counts_seed{seed}"
    h5, up2 = workdir / f"{stem}.h5", workdir / f"{stem}.up2"
    if not h5.exists():
        t0 = time.perf_counter()
        simulate(h5, phase="ni", shape=shape, pattern_shape=(pattern, pattern), grains=max(4, rows * cols // 400),
                 noise=counts, bit_depth=16, seed=seed, progress=True)
        print(f"simulated {h5.name} in {time.perf_counter() - t0:.1f} s")
    with kikuchi.open(h5) as m:
        patterns = m.read_rows(0, rows)
    if not up2.exists():
        write_up(up2, patterns)
    return up2, patterns


def best_of(rounds: int, runs: dict[str, callable], outputs: tuple[Path, ...] = ()) -> dict[str, float]:
    """Seconds of each run: the best of ``rounds`` interleaved rounds (all see the same load).

    ``outputs`` are removed before each run, untimed: each side writes a new file, as a user does
    (replacing a file of 100 MB costs its deletion, about 0.1 s here).
    """
    best = {name: float("inf") for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            for path in outputs:
                path.unlink(missing_ok=True)
            t0 = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shape", type=_shape, default=(100, 100), help="map rows x cols (default 100x100)")
    parser.add_argument("--pattern", type=int, default=60, help="pattern side in pixels (default 60)")
    parser.add_argument("--counts", type=float, default=16.0, help="mean counts per pixel (default 16: 'high' noise)")
    parser.add_argument("--search-radius", type=int, default=3, help="search radius (default 3: 7 x 7 window)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cores for both (default all)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "kikuchi-bench", help="where the map is cached")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)

    import numba
    from pyebsdindex.nlpar_cpu import NLPAR

    import kikuchi
    from kikuchi.engine import process_map
    from kikuchi.process import ProcessingSettings, circular_mask, nlpar, nlpar_lambda, nlpar_sigma, nlpar_weights

    up2, raw = make_map(args.workdir, args.shape, args.pattern, args.counts, args.seed)
    rows, cols, h, w = raw.shape
    n = rows * cols
    sr = args.search_radius
    x = raw.astype(np.float32)
    mask = circular_mask((h, w))
    indices = np.flatnonzero(mask).astype(np.int64)
    data = np.ascontiguousarray(x.reshape(n, h * w))
    cores = sorted({1, args.threads})

    # -- lambda: kikuchi's automatic choice, given to both --------------------------------------------
    choice = nlpar_lambda(x, mask=mask)
    lam = choice.lam
    quiet = contextlib.redirect_stdout(io.StringIO())

    def pei_object(**kw):
        obj = NLPAR(filename=str(up2), lam=lam, searchradius=sr, automask=False, saturation_protect=False, **kw)
        obj.mask = mask.astype(np.uint8)
        return obj

    def pei_opt_lambda():
        with quiet:
            return pei_object().opt_lambda(saturation_protect=False, automask=False, verbose=0)

    pei_lambdas = pei_opt_lambda()
    print(f"\n{rows} x {cols} map of {h} x {w} patterns ({n} patterns), {args.counts:g} counts/px, search radius {sr}, "
          f"{indices.size} of {h * w} pixels compared (inscribed circle), {args.threads} core(s) available")
    print(f"lambda, kikuchi auto: {lam:.4f} (per target {', '.join(f'{t:g}: {v:.4f}' for t, v in zip(choice.targets, choice.per_target))}); "
          f"PyEBSDIndex opt_lambda: {', '.join(f'{v:.4f}' for v in pei_lambdas)} (median {np.median(pei_lambdas):.4f}); both runs use {lam:.4f}")

    # -- speed ---------------------------------------------------------------------------------------
    settings = ProcessingSettings(static="none", dynamic="none", nlpar=True, nlpar_lambda=lam, nlpar_search_radius=sr,
                                  nlpar_mask="circle", dtype="float32")
    out_dir = Path(tempfile.mkdtemp(dir=args.workdir))
    rates: dict[tuple[str, int], float] = {}

    def kikuchi_file(k):
        with kikuchi.open(up2) as m:
            process_map(m, out_dir / "kikuchi.h5", settings, static_background="none", executor="serial" if k == 1 else "threads",
                        workers=k, progress=False, compression="none")

    def pei_file(k):
        numba.set_num_threads(k)
        with quiet:
            pei_object().calcnlpar(fileout=str(out_dir / "pei.up2"), verbose=0)

    def pei_memory(k):
        numba.set_num_threads(k)
        calclim = np.array([-1, -1, -1, -1], dtype=np.int64)
        sig = NLPAR.sigma_numba(data, 1, rows, cols, np.array([0, rows], np.int64), np.array([0, cols], np.int64), indices, False)[0]
        return NLPAR.nlpar_nb(data, np.float32(lam), np.int64(sr), np.float32(0.0), sig, np.int64(rows), np.int64(cols),
                              calclim=calclim, indices_in=indices, saturation_protect=False, diff_offset=np.float32(0.0))

    def kikuchi_memory(k):
        return nlpar(x, lam=lam, search_radius=sr, mask=mask, workers=k)

    def kikuchi_lambda(k):
        return nlpar_lambda(x, mask=mask)

    for k in cores:  # warm-up: numba compilation on both sides (PyEBSDIndex compiles per thread count too)
        kikuchi_file(k), pei_file(k), pei_memory(k), kikuchi_memory(k)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for k in cores:
            t = best_of(args.rounds, {
                "kikuchi file": lambda: kikuchi_file(k), "pei file": lambda: pei_file(k),
                "kikuchi memory": lambda: kikuchi_memory(k), "pei memory": lambda: pei_memory(k),
            }, outputs=(out_dir / "kikuchi.h5", out_dir / "pei.up2"))
            for name, seconds in t.items():
                rates[(name, k)] = n / seconds
        t = best_of(args.rounds, {"kikuchi lambda": lambda: kikuchi_lambda(1), "pei lambda": pei_opt_lambda})
        lam_rates = {name: n / seconds for name, seconds in t.items()}

    print(f"\n{'patterns/s':<44}" + "".join(f"{f'{k} core' + 's' * (k > 1):>14}" for k in cores))
    rows_out = [
        ("kikuchi process_map, UP2 -> map file", "kikuchi file"),
        ("PyEBSDIndex calcnlpar, UP2 -> UP2", "pei file"),
        ("kikuchi nlpar, in memory", "kikuchi memory"),
        ("PyEBSDIndex sigma_numba + nlpar_nb, in memory", "pei memory"),
    ]
    for label, key in rows_out:
        print(f"{label:<44}" + "".join(f"{rates[(key, k)]:>14,.0f}" for k in cores))
    for label, a, b in (("ratio, file to file", "kikuchi file", "pei file"), ("ratio, in memory", "kikuchi memory", "pei memory")):
        print(f"{label:<44}" + "".join(f"{rates[(a, k)] / rates[(b, k)]:>13.1f}x" for k in cores))
    print(f"automatic lambda: kikuchi nlpar_lambda {lam_rates['kikuchi lambda']:,.0f} patterns/s (1 core), "
          f"PyEBSDIndex opt_lambda {lam_rates['pei lambda']:,.0f} patterns/s ({numba.get_num_threads()} numba threads)")

    # -- agreement -----------------------------------------------------------------------------------
    numba.set_num_threads(args.threads)
    starts = (np.array([0, rows], np.int64), np.array([0, cols], np.int64))
    pei_sigma = NLPAR.sigma_numba(data, 1, rows, cols, *starts, indices, False)[0]
    ours_sigma = nlpar_sigma(x, mask=mask)
    sigma_rel = float(np.max(np.abs(ours_sigma - pei_sigma) / pei_sigma))

    sig_sr, d_sr, _ = NLPAR.sigma_numba(data, sr, rows, cols, *starts, indices, False)
    m = 2 * sr + 1
    pei_w = np.exp(-np.maximum(d_sr.astype(np.float64), 0.0) / lam**2).reshape(rows, cols, m, m)
    ours_w = nlpar_weights(x, lam=lam, search_radius=sr, mask=mask, sigma=sig_sr)
    inner = (slice(sr, rows - sr), slice(sr, cols - sr))
    dw = np.abs(ours_w - pei_w)[inner]
    w_zero_pei = pei_w[inner] < 1e-6
    w_agree_zero = float(np.mean((ours_w[inner] < 1e-6) == w_zero_pei))

    numba.set_num_threads(args.threads)
    pei_out = NLPAR.nlpar_nb(data, np.float32(lam), np.int64(sr), np.float32(0.0), pei_sigma, np.int64(rows), np.int64(cols),
                             calclim=np.array([-1, -1, -1, -1], np.int64), indices_in=indices, saturation_protect=False,
                             diff_offset=np.float32(0.0)).reshape(rows, cols, h, w)
    same_sigma = nlpar(x, lam=lam, search_radius=sr, mask=mask, sigma=pei_sigma)
    own_sigma = nlpar(x, lam=lam, search_radius=sr, mask=mask)
    scale = float(np.abs(pei_out[inner]).max())
    d_same = float(np.abs(same_sigma - pei_out)[inner].max()) / scale
    d_own = float(np.abs(own_sigma - pei_out)[inner].max()) / scale
    d_border = float(np.abs(same_sigma - pei_out).max()) / scale
    print(f"\nagreement (float32 resolution {FLOAT32_EPS:.1e}):")
    print(f"  noise sigma, 3 x 3 neighbours: max relative difference {sigma_rel:.1e}")
    print(f"  weights, same sigma (PyEBSDIndex's, nn = {sr}), {int(dw.size / m**2)} points >= {sr} from the border: "
          f"max |difference| {dw.max():.1e} (weights 0..1), mean {dw.mean():.1e}; below 1e-6 on both sides for {100 * w_agree_zero:.3f} % of the pairs")
    print(f"  patterns, same sigma: max |difference| / max value {d_same:.1e} ({d_same / FLOAT32_EPS:.0f} float32 steps); "
          f"with each side's own sigma {d_own:.1e}; all points, border included (PyEBSDIndex shifts its window there): {d_border:.1e}")
    shutil.rmtree(out_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
