"""``kikuchi convert``: a folder or zip of pattern images, or a vendor's pattern file, to one map file.

A vendor's file (H5OINA, .ebsp, Bruker/EDAX h5ebsd, .up1/.up2, NORDIF,
EMsoft, kikuchipy h5ebsd) is written as a kikuchi map file, or with
``--format h5ebsd`` as kikuchipy h5ebsd (which kikuchipy and PyEBSDIndex read).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from kikuchi._cpus import available_cpus
from kikuchi.cli._options import argument_type, check_output, positive_int
from kikuchi.io.imagefolder import SCHEMES, parse_shape


def _step(text: str) -> float | tuple[float, float]:
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"step {text!r}: expected µm, e.g. 0.15 or ROW,COL as 0.15,0.1") from None
    if len(values) not in (1, 2) or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"step {text!r}: expected one or two positive values in µm")
    return values[0] if len(values) == 1 else (values[0], values[1])


def _compression(text: str) -> dict[str, Any]:
    """'gzip', 'gzip:4', 'gzip:4:shuffle', 'lzf', 'lzf:shuffle', 'none'."""
    parts = text.lower().split(":")
    name, rest = parts[0], parts[1:]
    shuffle = "shuffle" in rest
    rest = [p for p in rest if p != "shuffle"]
    if name == "none" and not rest:
        return {"shuffle": shuffle} if shuffle else {}
    if name == "lzf" and not rest:
        return {"compression": "lzf", "shuffle": shuffle}
    if name == "gzip" and len(rest) <= 1:
        level = int(rest[0]) if rest and rest[0].isdigit() else 4 if not rest else -1
        if 0 <= level <= 9:
            return {"compression": "gzip", "compression_opts": level, "shuffle": shuffle}
    raise argparse.ArgumentTypeError(f"compression {text!r}: expected none, lzf, gzip or gzip:LEVEL (0-9), optionally :shuffle")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", metavar="SRC", type=Path,
        help="folder or zip of pattern images (TIFF, PNG, BMP), or a pattern file (.h5oina, .ebsp, Bruker/EDAX .h5, .up1/.up2, NORDIF Pattern.dat, EMsoft .h5)",
    )
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.h5", help="map file to write")
    parser.add_argument(
        "--format", choices=("kikuchi", "h5ebsd"), default="kikuchi",
        help="output: kikuchi map file (default) or kikuchipy h5ebsd (pattern files only)",
    )
    parser.add_argument("--dataset", default=None, help="pattern files with several pattern datasets: which one (e.g. Patterns, RawPatterns)")
    parser.add_argument(
        "--shape", type=argument_type(parse_shape), metavar="ROWSxCOLS",
        help="map shape (image names without positions; pattern files that do not record it)",
    )
    parser.add_argument("--step", type=_step, metavar="UM", help="step in µm: one value, or ROW,COL")
    geometry = parser.add_mutually_exclusive_group()
    geometry.add_argument("--ctf", type=Path, metavar="FILE", help="Oxford CTF of the scan: map shape, steps, orientations")
    geometry.add_argument("--ang", type=Path, metavar="FILE", help="EDAX ANG of the scan: map shape, steps, orientations")
    parser.add_argument(
        "--naming", choices=SCHEMES, default=None,
        help="image naming: aztec (ROW_COL.tiff), edax (..._xXyY), sorted (row by row in natural order); default: recognised",
    )
    parser.add_argument("--background", metavar="FILE|mean", help="static background image/text file, or 'mean' of all patterns")
    parser.add_argument("--binning", type=int, default=1, metavar="N", help="bin patterns N x N (default 1)")
    parser.add_argument("--bin-mode", choices=("sum", "mean"), default="sum", help="sum keeps integer counts (refuses overflow); mean rounds")
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N", help="decoding/compressing threads (default: all CPUs)")
    parser.add_argument(
        "--compression", type=_compression, default=None, metavar="SPEC",
        help="none, lzf, gzip:LEVEL, with :shuffle (default: see docs/mapfile.md)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _is_pattern_file(path: Path) -> bool:
    """A vendor's pattern file (or a NORDIF folder), not a folder or zip of images."""
    import zipfile

    if path.is_dir():
        return (path / "Pattern.dat").is_file()
    return path.is_file() and not (path.suffix.lower() == ".zip" or zipfile.is_zipfile(path))


def _convert_pattern_file(args: argparse.Namespace) -> int:
    from kikuchi.io.export import convert_map
    from kikuchi.io.source import open_map

    for option, value in (("--ctf", args.ctf), ("--ang", args.ang), ("--naming", args.naming), ("--background", args.background), ("--step", args.step)):
        if value is not None:
            raise ValueError(f"{option} applies to folders of pattern images; {args.source.name} is a pattern file with its own geometry")
    if args.binning != 1:
        raise ValueError(f"--binning applies to folders of pattern images; bin {args.source.name} with 'kikuchi process --binning'")
    t0 = time.perf_counter()
    with open_map(args.source, dataset=args.dataset, nav_shape=args.shape) as m:
        out = convert_map(m, args.output, to=args.format, compression=args.compression, workers=args.workers, progress=not args.no_progress)
        elapsed = time.perf_counter() - t0
        rows, cols = m.nav_shape
        h, w = m.pattern_shape
        missing = int((m.index_map < 0).sum())
        print(
            f"{out}: {args.format} file of the {m.format} file {m.path.name}: {rows} x {cols} map"
            f"{f' ({missing} points without a pattern)' if missing else ''}, {m.n_patterns} patterns of {h} x {w} {m.dtype}, "
            f"step {m.step_um[0]:g} x {m.step_um[1]:g} µm, {out.stat().st_size / 2**20:.1f} MiB "
            f"({m.n_patterns / max(elapsed, 1e-9):.0f} patterns/s on {args.workers or available_cpus()} threads)",
            file=sys.stdout,
        )
    return 0


def run(args: argparse.Namespace) -> int:
    from kikuchi.io.convert import convert_images
    from kikuchi.io.mapstore import open_map

    background = Path(args.background) if args.background not in (None, "mean") else None
    check_output(args.output, ("the input file", args.source), ("the --ctf file", args.ctf), ("the --ang file", args.ang), ("the --background file", background))
    if args.binning < 1:
        raise ValueError(f"--binning must be at least 1, got {args.binning}")
    if _is_pattern_file(args.source):
        return _convert_pattern_file(args)
    if args.format != "kikuchi":
        raise ValueError(f"--format {args.format} applies to pattern files; convert the images to a map file first")
    if args.dataset is not None:
        raise ValueError("--dataset applies to pattern files, not to folders of images")
    background: str | Path | None = args.background
    if background is not None and background != "mean":
        background = Path(background)
    t0 = time.perf_counter()
    out = convert_images(
        args.source,
        args.output,
        nav_shape=args.shape,
        step_um=args.step,
        ctf=args.ctf,
        ang=args.ang,
        naming=args.naming,
        background=background,
        binning=args.binning,
        bin_mode=args.bin_mode,
        workers=args.workers,
        progress=not args.no_progress,
        compression=args.compression,
    )
    elapsed = time.perf_counter() - t0
    with open_map(out) as m:
        rows, cols = m.nav_shape
        h, w = m.pattern_shape
        size = out.stat().st_size
        print(
            f"{out}: {rows} x {cols} map, {m.n_patterns} patterns of {h} x {w} {m.dtype}, "
            f"step {m.step_um[0]:g} x {m.step_um[1]:g} µm, {size / 2**20:.1f} MiB "
            f"({m.n_patterns / max(elapsed, 1e-9):.0f} patterns/s on {args.workers or available_cpus()} threads)",
            file=sys.stdout,
        )
    return 0
