"""``kikuchi calibrate``: the pattern centre of a map, by pattern matching on a grid of patterns or by the moving-screen method."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.cli._options import PATTERN_FILE, add_geometry_arguments, check_output, positive_int, row_col, rows_cols


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from kikuchi.cli._refine import MASTER_PATTERN_HELP, add_matching_arguments

    parser.add_argument("input", type=Path, help=PATTERN_FILE + " (with --moving-screen: the pattern at the operating position)")
    parser.add_argument("-o", "--output", type=Path, metavar="PC.json", help="write the calibration as JSON")
    parser.add_argument("--master-pattern", metavar="F", help=MASTER_PATTERN_HELP + " (pattern matching)")
    parser.add_argument("--energy", default="highest", metavar="highest|weighted|KEV", help="energy bins of an EMsoft master pattern (default highest)")
    parser.add_argument("--orientations", type=Path, metavar="IN", help="start orientations (CTF/ANG/HDF5 on the map's grid); default: Hough indexing with --phase")
    parser.add_argument(
        "--phase", action="append", metavar="PHASE",
        help="phase to Hough-index the grid patterns with (repeat for several): a built-in name, a CIF path or NAME:SPACEGROUP:a,...",
    )  # fmt: skip
    parser.add_argument("--grid", type=rows_cols, default=(5, 5), metavar="ROWSxCOLS", help="grid of patterns refined (default 5x5)")
    parser.add_argument("--pc-model", choices=("plane", "mean"), default="plane", help="fit a PC plane over the map (default) or one PC")
    ms = parser.add_argument_group("moving screen (instead of pattern matching)")
    ms.add_argument(
        "--moving-screen", action="append", metavar="FILE:DZ",
        help="a pattern of the same beam position with the screen moved back by DZ mm (repeat for several distances)",
    )  # fmt: skip
    ms.add_argument("--point", type=row_col, default=(0, 0), metavar="ROW,COL", help="map position of the patterns compared (default 0,0)")
    add_geometry_arguments(parser)
    add_matching_arguments(parser)
    parser.add_argument("--threads", type=positive_int, metavar="N", help="threads of the refinement (default: all cores)")
    parser.add_argument("--json", action="store_true", help="print the calibration as JSON")


def _moving_screen(args: argparse.Namespace) -> dict[str, Any]:
    from kikuchi.io.mapstore import open_map
    from kikuchi.refine.calibration import moving_screen_pc

    def pattern(path: Path) -> tuple[np.ndarray, Any]:
        with open_map(path) as m:
            r, c = args.point
            if not (0 <= r < m.nav_shape[0] and 0 <= c < m.nav_shape[1]):
                raise ValueError(f"{path}: --point {r},{c} is outside its {m.nav_shape[0]} x {m.nav_shape[1]} map")
            p = m.pattern(r, c).astype(np.float32)
            bg = m.static_background
            if bg is not None and not args.no_background:
                p = p - bg.astype(np.float32)
            return p, m.binning

    near, binning = pattern(args.input)
    far, dz = [], []
    for item in args.moving_screen:
        path, sep, dist = item.rpartition(":")
        try:
            value = float(dist)
        except ValueError:
            value = float("nan")
        if not sep or not path or not (np.isfinite(value) and value > 0):
            raise ValueError(f"--moving-screen {item}: expected FILE:DZ with DZ the distance in mm the screen was moved back")
        p, _ = pattern(Path(path))
        if p.shape != near.shape:
            raise ValueError(f"--moving-screen {path}: pattern of shape {p.shape}, the operating-position pattern is {near.shape}")
        far.append(p)
        dz.append(value)
    px_mm = None if args.px_size is None else args.px_size * binning / 1000.0
    out = moving_screen_pc(near, np.array(far), dz, px_size=px_mm, sigma=args.sigma, mask=None if args.no_mask else "circular")
    out["method"] = "moving screen"
    out["dd_mm"] = out.pop("dd")
    return out


def run(args: argparse.Namespace) -> int:
    from kikuchi.cli._refine import check_geometry_numbers, energy_option, matching_options

    check_geometry_numbers(args)
    if args.output is not None:
        if args.output.suffix.lower() != ".json":
            raise ValueError(f"{args.output}: the calibration is written as JSON; give a .json name")
        check_output(args.output, ("the input map file", args.input))
    t0 = time.perf_counter()
    if args.moving_screen:
        if args.master_pattern or args.orientations:
            raise ValueError("--moving-screen compares patterns with each other: leave out --master-pattern and --orientations")
        result = _moving_screen(args)
    else:
        result = _matching(args, energy_option(args.energy), matching_options(args))
    result["seconds"] = round(time.perf_counter() - t0, 3)
    if args.output is not None:
        from kikuchi.io._atomic import atomic_output

        with atomic_output(args.output) as tmp:
            Path(tmp).write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    pc = ", ".join(f"{v:.5f}" for v in result["pc_bruker"])
    if result["method"] == "moving screen":
        z = "" if len(result["pc_bruker"]) == 3 else " (give --px-size for PCz)"
        pairs = "; ".join(f"{p['delta_z']:g} mm: scale {p['scale']:.4f}, NCC {p['ncc']:.3f}" for p in result["pairs"])
        print(f"{args.input.name}: moving screen: PC (Bruker) {pc}{z}, detector distance {result['dd_mm']:.2f} mm ({pairs})")
    else:
        print(
            f"{args.input.name}: {len(result['points'])} grid patterns refined (orientation + PC, start from {result['start']}): "
            f"NCC {result['mean_ncc_start']} -> {result['mean_ncc']}; PC (Bruker, mean) {pc}"
        )
        if result.get("plane"):
            p = result["plane"]
            for k, name in enumerate(("PCx", "PCy", "PCz")):
                print(f"  {name} = {p['constant'][k]:.5f} {p['per_col'][k]:+.3g} col {p['per_row'][k]:+.3g} row (RMS residual {result['rms_residual'][k]:.2g})")
    if args.output is not None:
        print(f"written: {args.output}")
    return 0


def _matching(args: argparse.Namespace, energy: str | float, options: dict[str, Any]) -> dict[str, Any]:
    from kikuchi.cli._index import build_detector
    from kikuchi.crystal import Phase
    from kikuchi.io.mapstore import open_map
    from kikuchi.refine.calibration import calibrate_pc
    from kikuchi.refine.map_refine import load_master_pattern

    if not args.master_pattern:
        raise ValueError("give --master-pattern F (pattern matching) or --moving-screen FILE:DZ")
    if args.orientations is None and not args.phase:
        raise ValueError("give the start: --orientations IN (an orientation map of the map) or --phase P (Hough indexing)")
    phases = None if args.phase is None else [Phase.parse(p) for p in args.phase]
    with open_map(args.input, dataset=args.dataset) as m:
        detector = build_detector(m, args)
        master = load_master_pattern(args.master_pattern, kv=m.kv, energy=energy)
        result = calibrate_pc(
            m, master, orientations=args.orientations, phases=phases, detector=detector, grid=args.grid, model=args.pc_model,
            workers=args.threads, **options,
        )
    result["method"] = "pattern matching"
    result["master_pattern"] = str(args.master_pattern)
    return result
