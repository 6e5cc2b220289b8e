"""``kikuchi refine``: orientations (and pattern centres) of an indexed map refined by pattern matching."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.cli._options import (
    PATTERN_FILE,
    add_execution_arguments,
    add_geometry_arguments,
    check_output,
    execution_options,
    execution_text,
    numbers,
    positive_int,
)

_OUTPUTS = (".ctf", ".ang", ".h5", ".hdf5")

MASTER_PATTERN_HELP = (
    "master pattern: an EMsoft EMEBSDmaster .h5 file, or kinematical:PHASE[@KV] for kikuchi's own kinematical master pattern "
    "of a built-in phase (kinematical:si, kinematical:ni@15), a CIF (kinematical:phase.cif) or NAME:SPACEGROUP:a,... "
    "(energy: @KV, else the map's, else 20 kV)"
)


def add_master_pattern_arguments(parser: argparse.ArgumentParser) -> None:
    """``--master-pattern`` and ``--energy`` (shared with ``kikuchi calibrate``)."""
    parser.add_argument("--master-pattern", required=True, metavar="F", help=MASTER_PATTERN_HELP)
    parser.add_argument(
        "--energy", default="highest", metavar="highest|weighted|KEV",
        help="energy bins of an EMsoft master pattern: the highest (default, as kikuchipy), weighted by the Monte Carlo "
        "energy histogram, or the bin nearest KEV",
    )  # fmt: skip


def add_matching_arguments(parser: argparse.ArgumentParser) -> None:
    """Pattern preparation and optimiser options (shared with ``kikuchi calibrate``)."""
    m = parser.add_argument_group("pattern matching")
    m.add_argument("--dataset", choices=("RawPatterns", "Patterns"), help="patterns to refine (default: the map's default dataset)")
    m.add_argument("--no-background", action="store_true", help="no static/dynamic background subtraction before matching")
    m.add_argument("--sigma", type=float, metavar="PX", help="Gaussian sigma of the dynamic background (default width / 25)")
    m.add_argument("--no-mask", action="store_true", help="compare every pixel (default: inside the largest circle of the pattern)")
    m.add_argument(
        "--trust-region", default="2,0.05", metavar="DEG[,PC]",
        help="largest change of each rotation component (degrees) and of each PC component (default 2,0.05)",
    )  # fmt: skip
    m.add_argument("--max-evaluations", type=positive_int, metavar="N", help="projections per optimiser run (default 200 per parameter)")
    m.add_argument(
        "--pseudo-symmetry", metavar="U,V,W:DEG[;...]",
        help="also refine the variants turned by these crystal-frame rotations (e.g. '1,1,1:60'); the best NCC wins",
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help=PATTERN_FILE)
    parser.add_argument("--orientations", type=Path, required=True, metavar="IN", help="start orientations: IN.ctf, IN.ang or IN.h5 on the map's grid (e.g. from kikuchi index)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="refined orientation map: OUT.ctf, OUT.ang or OUT.h5")
    add_master_pattern_arguments(parser)
    parser.add_argument("--refine", choices=("orientation", "pc", "both"), default="orientation", help="what to refine (default orientation)")
    parser.add_argument(
        "--pc-model", choices=("point", "mean", "plane", "extrapolate"), default="point",
        help="PC over the map: each point its own (default), or the mean or a plane fitted to the refined PCs, "
        "the orientations then refined again at them (mean/plane need --refine pc or both); extrapolate: every "
        "point's PC from one PC and the beam position (Singh et al. 2017; needs the pixel size, --px-size): the "
        "mean refined PC with --refine pc/both, the file's or --pc at the map centre with --refine orientation",
    )  # fmt: skip
    parser.add_argument("--phase", metavar="NAME|ID", help="phase of the start map to refine (default: its only phase)")
    add_geometry_arguments(parser)
    add_matching_arguments(parser)
    add_execution_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def energy_option(text: str, option: str = "--energy") -> str | float:
    """The energy of an EMsoft master pattern as ``option`` gives it: 'highest', 'weighted' or keV (> 0)."""
    if text in ("highest", "weighted"):
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{option} must be 'highest', 'weighted' or a positive number of keV, got {text!r}")
    return value


def trust_region(text: str) -> tuple[float, float]:
    values = numbers(text, 2, float) or numbers(text, 1, float)
    if values is None or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"--trust-region must be DEG or DEG,PC with positive numbers, got {text!r}")
    return (values[0], values[1] if len(values) > 1 else 0.05)


def matching_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of :func:`kikuchi.refine.refine_map` from the options of :func:`add_matching_arguments`."""
    from kikuchi.refine import pseudo_symmetry_operators

    deg, pc = trust_region(args.trust_region)
    if args.sigma is not None and not (np.isfinite(args.sigma) and args.sigma > 0):
        raise ValueError(f"--sigma must be a positive number of pixels, got {args.sigma:g}")
    options: dict[str, Any] = {
        "trust_region_deg": deg, "trust_region_pc": pc, "sigma": args.sigma, "dynamic": not args.no_background,
        "mask": None if args.no_mask else "circular",
    }
    if args.no_background:
        options["static_background"] = None
    if args.max_evaluations is not None:
        options["max_evaluations"] = args.max_evaluations
    if args.pseudo_symmetry:
        options["pseudo_symmetry"] = pseudo_symmetry_operators(args.pseudo_symmetry)
    return options


def check_geometry_numbers(args: argparse.Namespace) -> None:
    for option, value in (("--sample-tilt", args.sample_tilt), ("--camera-tilt", args.camera_tilt), ("--px-size", args.px_size)):
        if value is not None and not np.isfinite(value):
            raise ValueError(f"{option} must be a finite number, got {value}")
    if args.px_size is not None and not args.px_size > 0:
        raise ValueError(f"--px-size must be a positive length in µm, got {args.px_size:g}")


def _phase_id(omap: Any, text: str | None) -> int | None:
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    for p in omap.phases:
        if p.name.lower() == text.lower():
            return int(p.id)
    raise ValueError(f"--phase {text}: the start map has no such phase ({', '.join(f'{p.id}: {p.name}' for p in omap.phases) or 'no phases'})")


def run(args: argparse.Namespace) -> int:
    from kikuchi.cli._index import build_detector
    from kikuchi.io.mapstore import open_map
    from kikuchi.io.orientation_map import read_orientation_map
    from kikuchi.refine.map_refine import load_master_pattern, refine_map

    suffix = args.output.suffix.lower()
    if suffix not in _OUTPUTS:
        raise ValueError(f"{args.output}: output must end in .ctf, .ang or .h5")
    check_output(args.output, ("the input map file", args.input), ("the start orientation map", args.orientations))
    check_geometry_numbers(args)
    options = matching_options(args)
    energy = energy_option(args.energy)
    execution = execution_options(args)
    start = read_orientation_map(args.orientations)
    phase_id = _phase_id(start, args.phase)
    t0 = time.perf_counter()
    with open_map(args.input, dataset=args.dataset) as m:
        detector = build_detector(m, args)
        master = load_master_pattern(args.master_pattern, kv=m.kv, energy=energy)
        refinement = refine_map(
            m, start, master, detector=detector, refine=args.refine, pc_model=args.pc_model, phase_id=phase_id,
            progress=not args.no_progress, **execution, **options,
        )
        source = m.path.name
        reference = m.truth_euler if m.truth_euler is not None else m.euler
        reference = None if reference is None else np.asarray(reference, dtype=np.float64).reshape(-1, 3)
    seconds = time.perf_counter() - t0
    omap = refinement.to_orientation_map(header={"Prj": source}, format=suffix.lstrip(".") if suffix in (".ctf", ".ang") else None)
    if suffix in (".h5", ".hdf5"):
        omap.header.update(refinement_settings=json.loads(json.dumps(refinement.settings, default=str)))
    omap.write(args.output)
    r = refinement.result
    done = refinement.refined
    summary: dict[str, Any] = {
        "input": str(args.input), "orientations": str(args.orientations), "output": str(args.output),
        "master_pattern": str(args.master_pattern), "kv": master.kv, "refine": args.refine, "pc_model": args.pc_model,
        "points": int(done.size), "refined": int(done.sum()),
        "mean_ncc_start": round(float(np.mean(r.ncc_start[done])), 4) if done.any() else None,
        "mean_ncc": round(float(np.mean(r.ncc[done])), 4) if done.any() else None,
        "min_ncc": round(float(np.min(r.ncc[done])), 4) if done.any() else None,
        "mean_pc_bruker": [round(float(v), 5) for v in r.pc[done].mean(axis=0)] if done.any() else None,
        "mean_evaluations": round(float(r.evaluations[done].mean()), 1) if done.any() else None,
        "seconds": round(seconds, 3), "execution": execution_text(execution),
    }
    if "pc_fit" in refinement.settings:
        summary["pc_fit"] = refinement.settings["pc_fit"]
    if reference is not None:
        summary["against_reference"] = against_reference(refinement, start, reference)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(
            f"{source}: refined {summary['refined']} of {summary['points']} points ({args.refine}, PC {args.pc_model}) in {seconds:.1f} s "
            f"({summary['refined'] / max(seconds, 1e-9):.0f} patterns/s, {summary['execution']}); NCC {summary['mean_ncc_start']} -> "
            f"{summary['mean_ncc']} (mean), lowest {summary['min_ncc']}; {summary['mean_evaluations']} projections per pattern"
        )
        if summary["mean_pc_bruker"] is not None:
            print(f"pattern centre (Bruker, mean of the refined points) {', '.join(f'{v:.5f}' for v in summary['mean_pc_bruker'])}")
        if "against_reference" in summary:
            a = summary["against_reference"]
            print(
                f"against the map's truth (or reference) orientations: {a['points']} points, start mean {a['mean_start_deg']} deg, "
                f"refined mean {a['mean_deg']} deg, largest {a['max_deg']} deg, {100 * a['within_0.1deg']:.1f}% within 0.1 deg"
            )
        print(f"written: {args.output}")
    return 0


def against_reference(refinement: Any, start: Any, reference: np.ndarray) -> dict[str, Any]:
    """Misorientation (with the phase's Laue symmetry) of the start and refined points to reference orientations (rows * cols, 3)."""
    from orix.quaternion import Orientation

    done = refinement.refined & np.all(np.isfinite(reference), axis=1)
    if not done.any():
        return {"points": 0}
    pid = start.phase_id[done]
    start_deg = np.empty(int(done.sum()))
    refined_deg = np.empty_like(start_deg)
    for ph in start.phases:
        sel = pid == ph.id
        if sel.any():
            sym = ph.to_orix().point_group.laue
            ref = Orientation.from_euler(reference[done][sel], sym)
            start_deg[sel] = np.degrees(Orientation.from_euler(start.euler[done][sel], sym).angle_with(ref))
            refined_deg[sel] = np.degrees(Orientation.from_euler(refinement.result.euler[done][sel], sym).angle_with(ref))
    return {
        "points": int(done.sum()), "mean_start_deg": round(float(start_deg.mean()), 4), "mean_deg": round(float(refined_deg.mean()), 4),
        "max_deg": round(float(refined_deg.max()), 4), "within_0.1deg": round(float((refined_deg < 0.1).mean()), 4),
        "per_point_deg": [round(float(v), 4) for v in refined_deg] if refined_deg.size <= 100 else None,
    }
