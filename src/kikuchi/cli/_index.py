"""``kikuchi index``: Hough or dictionary indexing of a map file to an orientation map (CTF, ANG or HDF5)."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.cli._options import PATTERN_FILE, add_execution_arguments, add_geometry_arguments, check_output, execution_options, execution_text, numbers, positive_int

_logger = logging.getLogger(__name__)

_OUTPUTS = (".ctf", ".ang", ".h5", ".hdf5")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help=PATTERN_FILE)
    parser.add_argument("-o", "--output", type=Path, required=True, help="orientation map: OUT.ctf, OUT.ang or OUT.h5")
    parser.add_argument(
        "--phase", action="append", required=True, metavar="PHASE",
        help="phase to index (repeat for several): a built-in name (ni, al, fe-alpha, ...), a CIF path or NAME:SPACEGROUP:a[,b,c,alpha,beta,gamma]",
    )
    parser.add_argument(
        "--method", choices=("hough", "dictionary"), default="hough",
        help="Hough indexing (default) or dictionary indexing against patterns simulated from master patterns",
    )  # fmt: skip
    g = add_geometry_arguments(parser)
    g.add_argument(
        "--refine-pc", nargs="?", const="mean", choices=("mean", "plane"), default=None,
        help="refine the PC on ~100 patterns spread over the map first (mean: one PC; plane: a PC plane over the map)",
    )
    h = parser.add_argument_group("indexing")
    h.add_argument("--dataset", choices=("RawPatterns", "Patterns"), help="patterns to index (default: the map's default dataset)")
    h.add_argument("--no-background", action="store_true", help="no static/dynamic background removal of raw patterns before detection")
    h.add_argument(
        "--binning", default="auto", metavar="auto|N",
        help="bin the patterns by N after background removal, before band detection (default auto: down to about 80 pixels "
        "on the smaller side, e.g. 240x240 by 3; 1: never)",
    )  # fmt: skip
    h.add_argument("--n-bands", type=positive_int, default=9, help="bands detected per pattern (default 9)")
    h.add_argument("--families", type=positive_int, default=None, help="strongest reflector families per phase (default 5 cubic, 8 others)")
    h.add_argument("--angle-tol", type=float, default=2.0, metavar="DEG", help="interplanar angle tolerance (default 2)")
    h.add_argument("--max-mad", type=float, default=1.5, metavar="DEG", help="largest accepted MAD (default 1.5)")
    h.add_argument("--min-bands", type=positive_int, default=4,
                   help="fewest matched bands for a solution (default 4; one fewer where the band evidence of the solution is strong, see docs/indexing.md)")
    from kikuchi.cli import _index_dictionary

    _index_dictionary.add_arguments(parser)
    add_execution_arguments(parser)
    parser.add_argument("--figure", type=Path, metavar="PNG", help="index summary figure: IPF-Z map (next to the truth when the map has one), MAD, band contrast")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def _binning(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"--binning must be 'auto' or a positive whole number, got {text!r}")
    return value


def _parse_pc(text: str) -> np.ndarray:
    values = numbers(text, 3, float)
    if values is None:
        raise ValueError(f"--pc must be three numbers X,Y,Z, got {text!r}")
    return np.array(values)


def build_detector(ebsd_map: Any, args: argparse.Namespace) -> Any:
    """The detector of the map, with the PC and tilts of the command line where given."""
    from kikuchi.geometry import Detector

    base = ebsd_map.detector if ebsd_map.pattern_centre is not None or args.pc is None else None
    tilt = args.sample_tilt if args.sample_tilt is not None else ebsd_map.sample_tilt_deg
    cam = args.camera_tilt if args.camera_tilt is not None else ebsd_map.camera_tilt_deg
    if args.pc is not None:
        pc = _parse_pc(args.pc)
        return Detector(
            ebsd_map.pattern_shape, pc, convention=args.pc_convention, sample_tilt_deg=tilt, camera_tilt_deg=cam,
            binning=ebsd_map.binning, px_size_um=args.px_size,
        )
    if ebsd_map.pattern_centre is None:
        raise ValueError(f"{ebsd_map.path}: the map has no pattern centre; give one with --pc X,Y,Z [--pc-convention ...]")
    assert base is not None
    px = getattr(args, "px_size", None) or base.px_size_um  # --px-size overrides the file's pixel size
    if args.sample_tilt is None and args.camera_tilt is None and px == base.px_size_um:
        return base
    return Detector(ebsd_map.pattern_shape, base.pc, sample_tilt_deg=tilt, camera_tilt_deg=cam, binning=base.binning, px_size_um=px)


def truth_of(ebsd_map: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """(euler (rows, cols, 3) rad, phase_id (rows, cols)) of the map's truth or reference orientations, or None."""
    euler = ebsd_map.truth_euler
    if euler is None:
        euler = ebsd_map.euler
    if euler is None:
        return None
    known = np.all(np.isfinite(euler), axis=-1)
    recorded = ebsd_map.phase_id  # per point where the file says (synthetic truth, kikuchipy crystal maps)
    pid = np.where(known, 1 if recorded is None else recorded, 0)
    return np.nan_to_num(euler), pid


def accuracy(omap: Any, truth: tuple[np.ndarray, np.ndarray], phases: list[Any]) -> dict[str, Any]:
    """Misorientation (with crystal symmetry, via orix) between indexed points and the truth."""
    from orix.quaternion import Orientation

    euler_t, pid_t = truth
    euler_t = euler_t.reshape(-1, 3)
    pid_t = pid_t.reshape(-1)
    pid = omap.phase_id
    mis = np.full(pid.size, 180.0)
    for k, ph in enumerate(phases, start=1):
        sel = (pid == k) & (pid_t == k)
        if sel.any():
            sym = ph.point_group.laue
            a = Orientation.from_euler(omap.euler[sel], sym)
            b = Orientation.from_euler(euler_t[sel], sym)
            mis[sel] = np.degrees(a.angle_with(b))
    known = pid_t > 0
    m = mis[known]
    good = m < 5
    return {
        "points": int(known.sum()),
        "within_1deg": round(float((m < 1).mean()), 4),
        "within_2deg": round(float((m < 2).mean()), 4),
        "within_5deg": round(float((m < 5).mean()), 4),
        "mean_error_deg_within_5": round(float(m[good].mean()), 4) if good.any() else None,
        "phase_correct": round(float((pid[known] == pid_t[known]).mean()), 4),
    }


def _error_codes() -> dict[str, str]:
    from kikuchi.index import ERROR_CODES

    return {str(k): v for k, v in ERROR_CODES.items()}


def run(args: argparse.Namespace) -> int:
    from kikuchi.crystal import Phase
    from kikuchi.index import index_map
    from kikuchi.io.mapstore import open_map

    suffix = args.output.suffix.lower()
    if suffix not in _OUTPUTS:
        raise ValueError(f"{args.output}: output must end in .ctf, .ang or .h5")
    check_output(args.output, ("the input map file", args.input))
    if args.figure is not None and args.figure.suffix.lower() != ".png":
        raise ValueError(f"{args.figure}: the figure is written as PNG; give a .png name")
    if args.figure is not None:
        check_output(args.figure, ("the input map file", args.input), ("the orientation map of -o", args.output), option="--figure")
    for option, value in (("--sample-tilt", args.sample_tilt), ("--camera-tilt", args.camera_tilt), ("--angle-tol", args.angle_tol), ("--max-mad", args.max_mad), ("--px-size", args.px_size)):
        if value is not None and not np.isfinite(value):
            raise ValueError(f"{option} must be a finite number, got {value}")
    if not args.angle_tol > 0 or not args.max_mad > 0:
        raise ValueError(f"--angle-tol and --max-mad must be positive (degrees), got {args.angle_tol:g} and {args.max_mad:g}")
    if args.px_size is not None and not args.px_size > 0:
        raise ValueError(f"--px-size must be a positive length in µm, got {args.px_size:g}")
    phases = [Phase.parse(p) for p in args.phase]
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise ValueError(f"--phase given twice: {', '.join(names)}")
    execution = execution_options(args)
    if args.method == "dictionary":
        from kikuchi.cli import _index_dictionary

        return _index_dictionary.run(args, phases, execution)
    t0 = time.perf_counter()
    with open_map(args.input, dataset=args.dataset) as m:
        detector = build_detector(m, args)  # of the dataset indexed: a processed dataset may be binned
        indexing = index_map(
            m, phases, detector=detector, static_background=None if args.no_background else "file",
            dynamic=not args.no_background, refine_pc=args.refine_pc, **execution, progress=not args.no_progress,
            n_bands=args.n_bands, n_families=args.families,
            angle_tol_deg=args.angle_tol, max_mad_deg=args.max_mad, min_matched=args.min_bands, binning=_binning(args.binning),
        )
        seconds = time.perf_counter() - t0
        truth = truth_of(m)
        source = m.path.name
        lost = int(getattr(m, "unreadable_points", 0))  # points of damaged chunks read around (--skip-bad-chunks)
        if args.pc is not None:
            pc_from = f"--pc ({args.pc_convention})"
        else:
            pcd = m.pattern_centre
            pc_from = f"the {m.format} file ({pcd.file_convention or pcd.convention} convention, {'per point' if not pcd.is_uniform else 'one for the map'})"
    omap = indexing.to_orientation_map(header={"Prj": source}, format=suffix.lstrip(".") if suffix in (".ctf", ".ang") else None)
    if suffix in (".h5", ".hdf5"):
        # the HDF5 results file keeps how the map was indexed and what the error codes mean
        omap.header.update(indexing_settings=indexing.settings, error_codes=_error_codes())
    omap.write(args.output)
    summary: dict[str, Any] = {"input": str(args.input), "output": str(args.output), **indexing.result.summary()}
    if args.skip_bad_chunks:
        summary["unreadable_points"] = lost
    summary["pattern_centre_bruker"] = indexing.settings.get("pc_in_bruker")
    summary["pattern_centre_from"] = pc_from
    summary["dataset"] = indexing.settings["dataset"]
    summary["seconds"] = round(seconds, 3)
    summary["binning"] = indexing.settings["binning"]
    summary["execution"] = execution_text(execution)
    summary["background_removed"] = {"static": indexing.settings["static_background"], "dynamic": indexing.settings["dynamic_background"]}
    if "pc_refinement" in indexing.settings:
        summary["pc_refinement"] = indexing.settings["pc_refinement"]
    if truth is not None:
        summary["accuracy"] = accuracy(omap, truth, phases)
    if args.figure is not None:
        from kikuchi.index.figures import index_summary_figure

        index_summary_figure(omap, args.figure, truth=truth, phases=phases, title=source)
        summary["figure"] = str(args.figure)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"{source}: indexed {summary['indexed']} of {summary['points']} points ({100 * summary['indexed_fraction']:.1f}%) "
              f"in {seconds:.1f} s ({summary['points'] / max(seconds, 1e-9):.0f} patterns/s, {summary['execution']}), "
              f"mean MAD {summary['mean_mad_deg']} deg, phases {summary['phases']}; "
              f"{summary['no_signal']} point{'s' * (summary['no_signal'] != 1)} without signal "
              "(all one value, or not finite: not indexed, CTF error 6)"
              + (f"; {lost} point{'s' * (lost != 1)} in unreadable chunks (damaged file: not indexed, CTF error 5)" if args.skip_bad_chunks else ""))
        pc = ", ".join(f"{v:.4f}" for v in summary["pattern_centre_bruker"])
        print(f"pattern centre (Bruker, mean) {pc} from {pc_from}; bands detected on patterns binned by {summary['binning']}")
        if "accuracy" in summary:
            a = summary["accuracy"]
            print(f"against the map's truth (or reference) orientations: {100 * a['within_1deg']:.1f}% within 1 deg, "
                  f"{100 * a['within_2deg']:.1f}% within 2 deg, {100 * a['within_5deg']:.1f}% within 5 deg, mean {a['mean_error_deg_within_5']} deg")
        print(f"written: {args.output}" + (f", {args.figure}" if args.figure else ""))
    return 0
