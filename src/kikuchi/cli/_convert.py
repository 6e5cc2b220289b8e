"""``kikuchi convert``: a folder or zip of pattern images to one map file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from kikuchi.cli._options import argument_type, positive_int
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
    parser.add_argument("source", metavar="SRC", type=Path, help="folder or zip of pattern images (TIFF, PNG, BMP)")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.h5", help="map file to write")
    parser.add_argument("--shape", type=argument_type(parse_shape), metavar="ROWSxCOLS", help="map shape (needed for names without positions)")
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


def run(args: argparse.Namespace) -> int:
    from kikuchi.io.convert import convert_images
    from kikuchi.io.mapstore import open_map

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
            f"({m.n_patterns / max(elapsed, 1e-9):.0f} patterns/s)",
            file=sys.stdout,
        )
    return 0
