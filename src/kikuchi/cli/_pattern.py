"""``kikuchi pattern``: export one pattern of a map, raw or processed, as TIFF or PNG.

16-bit patterns stay exact in TIFF and PNG (16-bit greyscale); float32
patterns need TIFF.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from kikuchi.cli._options import PATTERN_FILE, check_output
from kikuchi.cli._options import row_col as _position
from kikuchi.cli._process import add_processing_arguments, settings_from_args, static_background_source

SUFFIXES = (".tif", ".tiff", ".png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help=PATTERN_FILE)
    parser.add_argument("--at", type=_position, required=True, metavar="ROW,COL", help="map position of the pattern")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output image: .tif/.tiff or .png")
    parser.add_argument("--dataset", choices=("RawPatterns", "Patterns"), help="pattern dataset (default: raw patterns)")
    parser.add_argument("--process", choices=("indexing", "detailed"), metavar="PRESET", help="process the pattern first (indexing or detailed), with the options below")
    add_processing_arguments(parser)


def write_pattern_image(pattern: np.ndarray, path: Path) -> Path:
    """Write one pattern as TIFF (any dtype, exact) or PNG (uint8/uint16, exact)."""
    from kikuchi.io._atomic import atomic_output

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: unknown image type '{path.suffix}'; use .tif, .tiff or .png")
    if suffix == ".png" and pattern.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: PNG holds 8- or 16-bit integers, not {pattern.dtype}; use .tif")
    with atomic_output(path) as tmp:
        if suffix == ".png":
            from PIL import Image

            Image.fromarray(np.ascontiguousarray(pattern)).save(tmp, format="PNG")
        else:
            import tifffile

            tifffile.imwrite(tmp, np.ascontiguousarray(pattern))
    return path


def run(args: argparse.Namespace) -> int:
    from kikuchi.engine import process_pattern_at
    from kikuchi.io.mapstore import open_map

    background = static_background_source(args)
    check_output(args.output, ("the input map file", args.input), ("the --static-background file", background if isinstance(background, Path) else None))
    if args.output.suffix.lower() not in SUFFIXES:
        raise ValueError(f"{args.output}: unknown image type '{args.output.suffix}'; use .tif, .tiff or .png")
    row, col = args.at
    with open_map(args.input, dataset=args.dataset) as m:
        if args.process:
            settings = settings_from_args(args, args.process)
            pattern = process_pattern_at(m, row, col, settings, static_background=static_background_source(args))
            what = f"processed ({args.process})"
        else:
            pattern = np.asarray(m.pattern(row, col))
            what = f"{m.dataset}"
    write_pattern_image(pattern, args.output)
    h, w = pattern.shape
    print(f"wrote {args.output}: pattern at row {row}, col {col}, {what}, {h} x {w} {pattern.dtype}")
    return 0
