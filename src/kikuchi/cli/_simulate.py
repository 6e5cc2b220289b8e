"""``kikuchi simulate``: synthetic maps of known truth, or the patterns of an orientation map.

Examples::

    kikuchi simulate -o synthetic.h5 --phase ni --shape 40x50 --pattern-shape 60x60 --grains 25 --noise low --seed 1 --ctf truth.ctf
    kikuchi simulate --from-map twins.ctf --pattern-shape 60x60 --pc 0.5,0.3,0.6 --pc-convention bruker -o twins.h5
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from kikuchi._cpus import available_cpus
from kikuchi.cli._options import check_output, finite_positive, numbers, rows_cols
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
    parser.add_argument(
        "--from-map", type=Path, metavar="MAP",
        help="simulate every point of this orientation map (CTF/ANG), or of the orientations stored in a pattern file "
        "(H5OINA, Bruker/EDAX h5ebsd, ...: its pattern shape, PC and tilts are the defaults)",
    )
    parser.add_argument("--phase", help="phase(s): built-in name (ni, al, fe-alpha, ...), NAME:SG:a[,b,c,al,be,ga] or CIF; several as 'ni,fe-alpha' or separated by ';' (default ni, or the map's)")
    parser.add_argument("--shape", type=rows_cols, default=(40, 50), help="map ROWSxCOLS of a synthetic map (default 40x50)")
    parser.add_argument("--pattern-shape", type=rows_cols, default=None, help="pattern ROWSxCOLS (default 60x60, or the pattern file's)")
    parser.add_argument("--grains", type=int, default=25, help="Voronoi grains of a synthetic map (default 25)")
    parser.add_argument("--noise", type=_noise, default=None, help="low|medium|high or counts per pixel (default: medium for synthetic maps, none with --from-map)")
    parser.add_argument(
        "--contrast", type=finite_positive, default=0.12,
        help="Kikuchi contrast with noise: relative standard deviation of the band signal (default 0.12, clear bands; real Ni patterns measure about 0.02)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--kv", type=finite_positive, default=None, help="accelerating voltage in kV (default 20, or the map header's)")
    parser.add_argument("--master-pattern", type=Path, metavar="FILE.h5", help="EMsoft master pattern file to project instead of the kinematical simulation")
    parser.add_argument("--pc", type=_pc, default=None, metavar="X,Y,Z", help="pattern centre (default 0.5,0.3,0.6 Bruker)")
    parser.add_argument("--pc-convention", default="bruker", choices=[*PC_CONVENTIONS, "tsl"], help="convention of --pc (default bruker)")
    parser.add_argument("--px-size", type=finite_positive, default=None, help="unbinned detector pixel size in µm (needed for EMsoft PCs)")
    parser.add_argument("--binning", type=int, default=1, help="detector binning (default 1)")
    parser.add_argument("--sample-tilt", type=float, default=None, help="sample tilt in degrees (default 70, or the map header's)")
    parser.add_argument("--camera-tilt", type=float, default=None, help="detector tilt in degrees (default 0, or the pattern file's)")
    parser.add_argument("--step", type=finite_positive, default=1.0, help="map step in µm of a synthetic map (default 1)")
    parser.add_argument("--gradient", type=float, default=0.05, help="in-grain orientation gradient, degrees per step (default 0.05)")
    parser.add_argument("--bit-depth", type=int, choices=(8, 16), default=8, help="camera bit depth with noise (default 8)")
    parser.add_argument("--ctf", type=Path, default=None, help="also write the true orientations of a synthetic map as CTF")
    parser.add_argument(
        "--compression", choices=("auto", "gzip", "none"), default="auto",
        help="filter of the stored patterns: gzip 1 + shuffle, none, or auto (default): gzip for camera images (with noise), "
        "none for noise-free float32 patterns (they keep 81%% of their size compressed, at three times the time)",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--allow-large", action="store_true",
        help="simulate more than 4.3 billion pixels in all (4 GiB of 8-bit patterns, about 20 minutes) or patterns wider than 4096 pixels",
    )  # fmt: skip


def _orientations_of(path: Path) -> tuple[Any, dict[str, Any]]:
    """What --from-map simulates: the path of an orientation map, or the orientations of a pattern file and its geometry."""
    import h5py

    from kikuchi.io.orientation_h5 import holds_orientation_map
    from kikuchi.io.source import MapFileError, identify, open_map

    if path.suffix.lower() in (".ctf", ".ang") or (path.is_file() and h5py.is_hdf5(path) and holds_orientation_map(path)):
        return path, {}
    try:
        identify(path)
    except MapFileError:
        return path, {}  # read_orientation_map says what it is not
    with open_map(path) as m:
        omap = m.orientation_map()
        if omap is None:
            raise ValueError(f"{path}: a {m.format} pattern file with no stored orientations; give an orientation map (CTF/ANG) of it")
        geometry: dict[str, Any] = {"pattern_shape": tuple(m.pattern_shape), "kv": m.kv, "sample_tilt_deg": m.sample_tilt_deg, "camera_tilt_deg": m.camera_tilt_deg}
        if m.pattern_centre is not None:
            geometry["pc"] = m.detector.pc
    return omap, geometry


def run(args: argparse.Namespace) -> int:
    from kikuchi.simulate.synthetic import simulate, simulate_from_orientation_map

    check_output(args.output, ("the --from-map file", args.from_map), ("the --ctf file", args.ctf), ("the --master-pattern file", args.master_pattern))
    if args.ctf is not None:
        check_output(args.ctf, ("the --from-map file", args.from_map), ("the --master-pattern file", args.master_pattern), option="--ctf")
    if args.binning < 1:
        raise ValueError(f"--binning must be at least 1, got {args.binning}")
    for option, value in (("--sample-tilt", args.sample_tilt), ("--camera-tilt", args.camera_tilt), ("--gradient", args.gradient)):
        if value is not None and not math.isfinite(value):
            raise ValueError(f"{option} must be a finite number, got {value}")
    if args.from_map is not None:
        if args.ctf is not None:
            raise ValueError("--ctf writes the truth of a synthetic map; with --from-map the truth is the input map")
        if not args.from_map.exists():
            raise FileNotFoundError(f"{args.from_map}: no such orientation map")
        source, geometry = _orientations_of(args.from_map)
        if args.pc is None and "pc" in geometry:
            args.pc, args.pc_convention = geometry["pc"], "bruker"
        if args.pattern_shape is None:
            args.pattern_shape = geometry.get("pattern_shape", (60, 60))
        t0 = time.perf_counter()
        out = simulate_from_orientation_map(
            source,
            args.output,
            pattern_shape=args.pattern_shape,
            pc=args.pc,
            pc_convention=args.pc_convention,
            kv=args.kv if args.kv is not None else geometry.get("kv"),
            master_pattern=args.master_pattern,
            phase=args.phase,
            noise=args.noise,
            contrast=args.contrast,
            seed=args.seed,
            sample_tilt_deg=args.sample_tilt if args.sample_tilt is not None else geometry.get("sample_tilt_deg"),
            camera_tilt_deg=args.camera_tilt if args.camera_tilt is not None else geometry.get("camera_tilt_deg", 0.0),
            px_size_um=args.px_size,
            binning=args.binning,
            bit_depth=args.bit_depth,
            compression=args.compression,
            progress=not args.no_progress,
            allow_large=args.allow_large,
        )
        dt = time.perf_counter() - t0
        print(
            f"wrote {out}: patterns of every point of {args.from_map} ({args.pattern_shape[0]}x{args.pattern_shape[1]}) "
            f"in {dt:.1f} s on {available_cpus()} threads"
        )
        return 0
    if args.pattern_shape is None:
        args.pattern_shape = (60, 60)
    if args.camera_tilt is None:
        args.camera_tilt = 0.0
    if args.grains < 1:
        raise ValueError(f"--grains must be at least 1, got {args.grains}")
    out = simulate(
        args.output,
        phase=args.phase or "ni",
        shape=args.shape,
        pattern_shape=args.pattern_shape,
        grains=args.grains,
        noise=args.noise if args.noise is not None else "medium",
        contrast=args.contrast,
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
        compression=args.compression,
        progress=not args.no_progress,
        allow_large=args.allow_large,
    )
    extra = f", truth in {args.ctf}" if args.ctf else ""
    print(f"wrote {out}: {args.shape[0]}x{args.shape[1]} map of {args.pattern_shape[0]}x{args.pattern_shape[1]} patterns, {args.grains} grains{extra}")
    return 0
