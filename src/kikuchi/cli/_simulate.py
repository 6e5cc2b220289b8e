"""``kikuchi simulate``: synthetic maps of known truth, or the patterns of an orientation map.

Examples::

    kikuchi simulate -o synthetic.h5 --phase ni --shape 40x50 --pattern-shape 60x60 --grains 25 --noise low --seed 1 --ctf truth.ctf
    kikuchi simulate --from-map twins.ctf --pattern-shape 60x60 --pc 0.5,0.3,0.6 --pc-convention bruker -o twins.h5
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kikuchi.cli._options import numbers, rows_cols
from kikuchi.geometry.pattern_centre import PC_CONVENTIONS


def _pc(text: str) -> tuple[float, float, float]:
    values = numbers(text, 3, float)
    if values is None:
        raise argparse.ArgumentTypeError(f"expected three numbers X,Y,Z such as 0.5,0.3,0.6, got {text!r}")
    return values  # type: ignore[return-value]


def _noise(text: str) -> str | float:
    if text in ("low", "medium", "high"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"noise must be low, medium, high or counts per pixel, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"counts per pixel must be positive, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", required=True, type=Path, help="output map file (.h5)")
    parser.add_argument("--from-map", type=Path, metavar="MAP", help="simulate every point of this CTF/ANG orientation map")
    parser.add_argument("--phase", help="phase(s): built-in name (ni, al, fe-alpha, ...), NAME:SG:a[,b,c,al,be,ga] or CIF; several as 'ni,fe-alpha' or separated by ';' (default ni, or the map's)")
    parser.add_argument("--shape", type=rows_cols, default=(40, 50), help="map ROWSxCOLS of a synthetic map (default 40x50)")
    parser.add_argument("--pattern-shape", type=rows_cols, default=(60, 60), help="pattern ROWSxCOLS (default 60x60)")
    parser.add_argument("--grains", type=int, default=25, help="Voronoi grains of a synthetic map (default 25)")
    parser.add_argument("--noise", type=_noise, default=None, help="low|medium|high or counts per pixel (default: medium for synthetic maps, none with --from-map)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--kv", type=float, default=None, help="accelerating voltage in kV (default 20, or the map header's)")
    parser.add_argument("--master-pattern", type=Path, metavar="FILE.h5", help="EMsoft master pattern file to project instead of the kinematical simulation")
    parser.add_argument("--pc", type=_pc, default=None, metavar="X,Y,Z", help="pattern centre (default 0.5,0.3,0.6 Bruker)")
    parser.add_argument("--pc-convention", default="bruker", choices=[*PC_CONVENTIONS, "tsl"], help="convention of --pc (default bruker)")
    parser.add_argument("--px-size", type=float, default=None, help="unbinned detector pixel size in µm (needed for EMsoft PCs)")
    parser.add_argument("--binning", type=int, default=1, help="detector binning (default 1)")
    parser.add_argument("--sample-tilt", type=float, default=None, help="sample tilt in degrees (default 70, or the map header's)")
    parser.add_argument("--camera-tilt", type=float, default=0.0, help="detector tilt in degrees (default 0)")
    parser.add_argument("--step", type=float, default=1.0, help="map step in µm of a synthetic map (default 1)")
    parser.add_argument("--gradient", type=float, default=0.05, help="in-grain orientation gradient, degrees per step (default 0.05)")
    parser.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="camera bit depth with noise (default 8)")
    parser.add_argument("--ctf", type=Path, default=None, help="also write the true orientations of a synthetic map as CTF")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from kikuchi.simulate.synthetic import simulate, simulate_from_orientation_map

    if args.from_map is not None:
        if args.ctf is not None:
            raise ValueError("--ctf writes the truth of a synthetic map; with --from-map the truth is the input map")
        if not args.from_map.exists():
            raise FileNotFoundError(f"{args.from_map}: no such orientation map")
        out = simulate_from_orientation_map(
            args.from_map,
            args.output,
            pattern_shape=args.pattern_shape,
            pc=args.pc,
            pc_convention=args.pc_convention,
            kv=args.kv,
            master_pattern=args.master_pattern,
            phase=args.phase,
            noise=args.noise,
            seed=args.seed,
            sample_tilt_deg=args.sample_tilt,
            camera_tilt_deg=args.camera_tilt,
            px_size_um=args.px_size,
            binning=args.binning,
            bit_depth=args.bit_depth,
            progress=not args.no_progress,
        )
        print(f"wrote {out}: patterns of every point of {args.from_map} ({args.pattern_shape[0]}x{args.pattern_shape[1]})")
        return 0
    if args.grains < 1:
        raise ValueError(f"--grains must be at least 1, got {args.grains}")
    out = simulate(
        args.output,
        phase=args.phase or "ni",
        shape=args.shape,
        pattern_shape=args.pattern_shape,
        grains=args.grains,
        noise=args.noise if args.noise is not None else "medium",
        seed=args.seed,
        kv=20.0 if args.kv is None else args.kv,
        master_pattern=args.master_pattern,
        pc=args.pc,
        pc_convention=args.pc_convention,
        sample_tilt_deg=70.0 if args.sample_tilt is None else args.sample_tilt,
        camera_tilt_deg=args.camera_tilt,
        px_size_um=args.px_size,
        binning=args.binning,
        step_um=args.step,
        gradient_deg=args.gradient,
        bit_depth=args.bit_depth,
        ctf=args.ctf,
        progress=not args.no_progress,
    )
    extra = f", truth in {args.ctf}" if args.ctf else ""
    print(f"wrote {out}: {args.shape[0]}x{args.shape[1]} map of {args.pattern_shape[0]}x{args.pattern_shape[1]} patterns, {args.grains} grains{extra}")
    return 0
