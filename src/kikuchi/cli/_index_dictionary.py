"""``kikuchi index --method dictionary``: dictionary indexing of a map (and ``--refine`` of the matches).

The options and the run of the dictionary method; ``kikuchi.cli._index``
adds them to ``kikuchi index`` and hands over when ``--method dictionary``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np

from kikuchi.cli._options import execution_text, finite_positive, positive_int

#: Best dictionary matches per point that ``--refine`` screens (``--refine-candidates``). On 5 maps of 992 dynamical Ni
#: patterns, 60 x 60 at 60 counts per pixel and the real patterns' contrast (3-degree dictionary), refined within 2
#: degrees: 15 candidates 99.4-99.7%, 20 99.5-99.9%, 10 99.1-99.5% (two maps within 2 patterns of 99%), 5 98.7% (one
#: map). 15 is the fewest that kept 99% with a margin on every map, at 0.8x the refinement time of 20 (docs/dictionary.md,
#: "How many candidates").
REFINE_CANDIDATES = 15


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the dictionary method (a group of ``kikuchi index``)."""
    d = parser.add_argument_group("dictionary indexing (--method dictionary)")
    d.add_argument(
        "--master-pattern", action="append", metavar="F", default=None,
        help="master pattern per --phase, in the same order: an EMsoft EMEBSDmaster .h5 file, 'kinematical' (kikuchi's "
        "kinematical master pattern of that phase at the map's energy) or kinematical:PHASE[@KV]",
    )  # fmt: skip
    d.add_argument(
        "--master-energy", default="highest", metavar="highest|weighted|KEV",
        help="energy of an EMsoft master pattern: its highest bin (default), all bins weighted by the Monte Carlo histogram, or the bin nearest KEV",
    )  # fmt: skip
    d.add_argument("--resolution", type=finite_positive, metavar="DEG", help="orientation sampling of each fundamental zone, degrees (e.g. 3)")
    d.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="best matches kept per point, in the HDF5 output (default 5)")
    mode = d.add_mutually_exclusive_group()
    mode.add_argument(
        "--compressed", dest="compressed", action="store_true", default=False,
        help="score on the leading principal components of the dictionary, then re-score the best candidates exactly (much faster, same answers)",
    )  # fmt: skip
    mode.add_argument("--exact", dest="compressed", action="store_false", help="score every dictionary entry in pixel space (default)")
    d.add_argument(
        "--components", type=positive_int, default=200, metavar="N",
        help="principal components of the compressed mode (default 200; 400 for very noisy patterns, ~60 counts/px)",
    )  # fmt: skip
    d.add_argument("--candidates", type=positive_int, default=30, metavar="N", help="best compressed matches re-scored exactly per pattern (default 30)")
    d.add_argument("--metric", choices=("ncc", "ndp"), default="ncc", help="normalised cross-correlation (default) or normalised dot product")
    d.add_argument("--mask", choices=("none", "circular"), default="none", help="signal mask: every pixel (default) or the largest circle")
    d.add_argument(
        "--background-operation", choices=("subtract", "divide"), default="subtract",
        help="how the static and dynamic backgrounds are removed before matching: subtracted as for the refinement (default; "
        "the better matches of noisy patterns) or divided out as for Hough indexing",
    )  # fmt: skip
    d.add_argument(
        "--smooth", type=float, default=1.0, metavar="PX",
        help="Gaussian smoothing of the background-corrected patterns before matching, pixels (default 1: better matches of noisy patterns; 0: none)",
    )  # fmt: skip
    d.add_argument("--memory", type=finite_positive, default=1024.0, metavar="MB", help="memory budget of the dictionary and the score blocks (default 1024)")
    d.add_argument(
        "--refine", nargs="?", const="orientation", choices=("orientation", "pc", "both"), default=None,
        help="refine the matches before writing (kikuchi.refine: orientation by default, or pc, or both)",
    )  # fmt: skip
    d.add_argument(
        "--refine-candidates", type=positive_int, default=REFINE_CANDIDATES, metavar="K",
        help=f"with --refine: screen the K best matches of each point by a short refinement each, refine the best of them in full and "
        f"keep it (default {REFINE_CANDIDATES}: noisy patterns' best match is often not their orientation; 1: the best match only, "
        "the refinement 5 times faster than 15)",
    )  # fmt: skip


def load_masters(specs: list[str] | None, phases: list[Any], kv: float, energy: str) -> list[Any]:
    """One master pattern per phase from the ``--master-pattern`` values."""
    from kikuchi.cli._refine import energy_option
    from kikuchi.refine import load_master_pattern
    from kikuchi.simulate.kinematical import kinematical_master_pattern

    if not specs:
        raise ValueError("--method dictionary needs --master-pattern F (an EMsoft master pattern file or 'kinematical') for each --phase")
    if len(specs) != len(phases):
        raise ValueError(f"give one --master-pattern per --phase, in the same order: {len(specs)} master patterns for {len(phases)} phases")
    e = energy_option(energy, "--master-energy")
    out = []
    for spec, phase in zip(specs, phases):
        if spec.lower() == "kinematical":
            out.append(kinematical_master_pattern(phase, kv=kv))
        else:
            out.append(load_master_pattern(spec, kv=kv, energy=e))
    return out


def _refine(m: Any, indexing: Any, masters: list[Any], detector: Any, args: argparse.Namespace, execution: dict[str, Any], header: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The orientation map of the matches refined by :func:`kikuchi.refine.refine_map`, phase by phase."""
    from kikuchi.refine import refine_map

    start = indexing.to_orientation_map(header=header)
    top = indexing.top_k_on_map()
    n_candidates = min(int(args.refine_candidates), top["euler"].shape[1])
    out = None
    # a match lies up to about the sampling resolution from the pattern's orientation (2.41 degrees on the real Ni
    # patterns at 3 degrees), so the trust region of each rotation component must reach that far: with the default
    # 2 degrees the refinement of such a point stopped on the region's border (0.32 degree from the reference)
    trust_region_deg = max(2.0, float(args.resolution))
    info: dict[str, Any] = {"mode": args.refine, "trust_region_deg": trust_region_deg, "candidates": n_candidates, "phases": {}}
    for k, master in enumerate(masters, start=1):
        if not np.any(start.phase_id == k):
            continue
        refined = refine_map(
            m, start, master, detector=detector, refine=args.refine, phase_id=k, static_background=None if args.no_background else "file",
            dynamic=not args.no_background, mask=None if args.mask == "none" else args.mask, trust_region_deg=trust_region_deg,
            progress=not args.no_progress, **execution,
            # the best matches of this phase (another phase's are left out: NaN)
            candidates=np.where((top["phase_id"][:, :n_candidates] == k)[..., None], top["euler"][:, :n_candidates], np.nan),
        )  # fmt: skip
        omap = refined.to_orientation_map(header=header)
        sel = refined.refined
        if out is None:
            out = omap
        else:
            out.euler[sel] = omap.euler[sel]
            for name, values in omap.columns.items():
                if name not in out.columns:
                    out.columns[name] = np.full(values.shape, np.nan) if values.dtype.kind == "f" else np.zeros_like(values)
                out.columns[name][sel] = values[sel]
        ncc = np.asarray(omap.columns["ncc"])[sel]
        info["phases"][indexing.phases[k - 1].name] = {
            "points": int(sel.sum()), "mean_ncc": round(float(np.nanmean(ncc)), 4) if ncc.size else None,
            "points_from_another_match": int((refined.result.candidate[sel] > 0).sum()),
        }
    return (start if out is None else out), info


def _keep_top_k(indexing: Any, k: int) -> Any:
    """The indexing with only its ``k`` best matches per point (what ``--top-k`` writes)."""
    import dataclasses

    r = indexing.result
    if r.top_k_index.shape[1] <= k:
        return indexing
    fewer = dataclasses.replace(
        r, top_k_euler=r.top_k_euler[:, :k].copy(), top_k_phase_id=r.top_k_phase_id[:, :k].copy(), top_k_score=r.top_k_score[:, :k].copy(),
        top_k_index=r.top_k_index[:, :k].copy(),
    )  # fmt: skip
    return dataclasses.replace(indexing, result=fewer, settings={**indexing.settings, "top_k": k})


def run(args: argparse.Namespace, phases: list[Any], execution: dict[str, Any]) -> int:
    """``kikuchi index --method dictionary``: index, optionally refine, write, print the result line or JSON."""
    from kikuchi.cli._index import accuracy, build_detector, truth_of
    from kikuchi.index.dictionary import PatternDictionary, index_map_dictionary
    from kikuchi.io.mapstore import open_map

    if args.resolution is None:
        raise ValueError("--method dictionary needs --resolution DEG (the orientation sampling, e.g. 3)")
    if not (math.isfinite(args.smooth) and args.smooth >= 0):
        raise ValueError(f"--smooth must be a number of pixels >= 0 (0: no smoothing), got {args.smooth:g}")
    if args.refine_pc is not None:
        raise ValueError("--refine-pc belongs to Hough indexing; with --method dictionary refine the pattern centre with --refine pc (or both)")
    if args.figure is not None:
        raise ValueError("--figure draws Hough indexing's summary (MAD, band contrast); it is not made for --method dictionary")
    t0 = time.perf_counter()
    with open_map(args.input, dataset=args.dataset) as m:
        detector = build_detector(m, args)
        kv = float(m.kv or 20.0)
        masters = load_masters(args.master_pattern, phases, kv, args.master_energy)
        dictionary = PatternDictionary.from_resolution(
            masters, detector, args.resolution, phases=phases, mask=None if args.mask == "none" else args.mask, metric=args.metric
        )
        t_dict = time.perf_counter()
        dictionary.prepare(memory_mb=args.memory, compressed=args.compressed, n_components=args.components)
        seconds_dictionary = time.perf_counter() - t_dict
        # --refine screens the best --refine-candidates matches: keep that many, write --top-k of them
        keep = max(args.top_k, args.refine_candidates if args.refine is not None else 1)
        indexing = index_map_dictionary(
            m, dictionary, top_k=keep, compressed=args.compressed, memory_mb=args.memory,
            n_components=args.components, n_candidates=args.candidates,
            static_background=None if args.no_background else "file", dynamic=not args.no_background,
            smooth_sigma=args.smooth, background=args.background_operation, progress=not args.no_progress, **execution,
        )  # fmt: skip
        seconds_index = time.perf_counter() - t0
        header = {"Prj": m.path.name}
        refined_info = None
        omap = None
        if args.refine is not None:
            omap, refined_info = _refine(m, indexing, masters, detector, args, execution, header)
        seconds = time.perf_counter() - t0
        indexing = _keep_top_k(indexing, args.top_k)
        truth = truth_of(m)
        source = m.path.name
    indexing.write(args.output, omap=omap, header=header)
    written = omap if omap is not None else indexing.to_orientation_map(header=header)
    summary: dict[str, Any] = {"input": str(args.input), "output": str(args.output), "method": "dictionary", **indexing.result.summary()}
    summary.update(
        dictionary_size=len(dictionary), resolution_deg=args.resolution, compressed=bool(args.compressed),
        dictionary_in_memory=dictionary.in_memory, pattern_centre_bruker=indexing.settings["pc_in_bruker"],
        dataset=indexing.settings["dataset"], seconds_dictionary=round(seconds_dictionary, 3), seconds_indexing=round(seconds_index, 3),
        seconds=round(seconds, 3), execution=execution_text(execution),
        background_removed={"static": indexing.settings["static_background"], "dynamic": indexing.settings["dynamic_background"]},
        background_operation=indexing.settings["background_operation"], smooth_px=indexing.settings["smooth_sigma"],
    )  # fmt: skip
    if args.compressed:
        summary.update(components=indexing.settings["n_components"], candidates=indexing.settings["n_candidates"])
    if refined_info is not None:
        summary["refinement"] = refined_info
    if truth is not None:
        summary["accuracy"] = accuracy(written, truth, phases)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    mode = "compressed" if args.compressed else "exact"
    print(
        f"{source}: dictionary-indexed {summary['indexed']} of {summary['points']} points in {seconds_index:.1f} s "
        f"({summary['points'] / max(seconds_index, 1e-9):.0f} patterns/s, {summary['execution']}) against {len(dictionary)} simulated "
        f"patterns ({args.resolution:g} deg, {mode}, dictionary {seconds_dictionary:.1f} s), mean {args.metric.upper()} "
        f"{summary['mean_score']}, phases {summary['phases']}; {summary['no_signal']} point{'s' * (summary['no_signal'] != 1)} without signal"
    )
    pc = ", ".join(f"{v:.4f}" for v in summary["pattern_centre_bruker"])
    print(f"pattern centre of the dictionary (Bruker) {pc}")
    if refined_info is not None:
        per = ", ".join(
            f"{name}: {v['points']} points, mean NCC {v['mean_ncc']}, {v['points_from_another_match']} from another than the best match"
            for name, v in refined_info["phases"].items()
        )
        k = refined_info["candidates"]
        starts = "the best match" if k == 1 else f"the best {k} matches"
        print(f"refined ({args.refine}) in {seconds - seconds_index:.1f} s, from {starts} of each point: {per or 'nothing indexed'}")
    if "accuracy" in summary:
        a = summary["accuracy"]
        print(f"against the map's truth (or reference) orientations: {100 * a['within_1deg']:.1f}% within 1 deg, "
              f"{100 * a['within_2deg']:.1f}% within 2 deg, {100 * a['within_5deg']:.1f}% within 5 deg, mean {a['mean_error_deg_within_5']} deg")  # fmt: skip
    print(f"written: {args.output}")
    return 0
