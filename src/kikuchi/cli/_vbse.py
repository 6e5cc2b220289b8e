"""``kikuchi vbse``: virtual BSE arrays, colour images, centre of mass and diodes of a map.

Writes ``DIR/vbse.h5`` (dataset ``vbse`` of shape (map rows, map cols, grid
rows, grid cols) float32, plus ``bse``, ``com_raw``, ``com_kikuchi``,
``diodes``, ``rgb``) and a gallery of PNGs (scale bar in µm, colour bar
where the image has units) with an ``index.html`` that shows them side by
side with captions. See docs/imaging.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from kikuchi.cli._options import (
    PATTERN_FILE,
    add_execution_arguments,
    check_memory,
    check_output_folder,
    check_positive_px,
    execution_options,
    execution_text,
)

#: Most regions of ``--region-pngs`` (one PNG each, about 0.1 s apiece).
MAX_REGION_PNGS = 400

_logger = logging.getLogger(__name__)


def add_input_arguments(parser: argparse.ArgumentParser, *, sigma_default: str = "pattern width / 25") -> None:
    parser.add_argument("input", type=Path, metavar="IN", help=PATTERN_FILE)
    parser.add_argument("-o", "--output", type=Path, required=True, metavar="DIR", help="output folder (created)")
    parser.add_argument("--dataset", choices=("RawPatterns", "Patterns"), help="pattern dataset (default: RawPatterns when present)")
    parser.add_argument("--sigma", type=float, metavar="PX", help=f"Gaussian std of the smooth background (default: {sigma_default})")
    parser.add_argument("--no-static-background", action="store_true", help="do not divide by the file's static background first")
    parser.add_argument("--remove-gradient", action="store_true", help="remove scan-line drifts (a line fitted per map row) from every image")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")


def parse_regions(text: str, grid: tuple[int, int]) -> list[tuple[int, int]]:
    """``'6:0,6:3,6:6'`` (grid row:grid col) or ``'42,45,48'`` (row-major region numbers) -> three regions."""
    gr, gc = grid
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise ValueError(f"--rgb {text!r}: expected three regions R,G,B such as '6:0,6:3,6:6' or '42,45,48'")
    regions = []
    for part in parts:
        try:
            if ":" in part:
                i, j = (int(v) for v in part.split(":"))
            else:
                i, j = divmod(int(part), gc)
        except ValueError:
            raise ValueError(f"--rgb {text!r}: region {part!r} is neither ROW:COL nor a region number") from None
        if not (0 <= i < gr and 0 <= j < gc):
            raise ValueError(f"--rgb {text!r}: region {part!r} is outside the {gr} x {gc} grid (ROW 0..{gr - 1}, COL 0..{gc - 1})")
        regions.append((i, j))
    return regions


def check_map_request(m: object, args: argparse.Namespace, *, grid: tuple[int, int] | None = None) -> None:
    """The checks of ``vbse`` and ``quality`` that need the open map, made before any work.

    The map step (a warning when it is not a positive length: the images
    are then drawn without a scale bar), the grid against the pattern size
    (a region smaller than a pixel holds no pixel of its own) and the
    memory of the results (refused when they alone would not fit).
    """
    from kikuchi.imaging.gallery import check_step

    check_step(m.step_um, str(m.path.name))  # type: ignore[attr-defined]
    rows, cols = m.nav_shape  # type: ignore[attr-defined]
    h, w = m.pattern_shape  # type: ignore[attr-defined]
    per_point = 4 * 8  # quality: iq, adp, mean, std (float64, a few copies)
    if grid is not None:
        gr, gc = grid
        if gr > h or gc > w:
            raise ValueError(
                f"--grid {gr}x{gc}: regions smaller than a pixel of the {h} x {w} patterns of {m.path.name} "  # type: ignore[attr-defined]
                f"(a region must hold at least one pixel): use at most {h}x{w}"
            )
        if getattr(args, "region_pngs", False) and gr * gc > MAX_REGION_PNGS:
            raise ValueError(f"--region-pngs writes one PNG per region: {gr * gc} regions are more than {MAX_REGION_PNGS}; use a coarser --grid, or no --region-pngs")
        per_point = (gr * gc + 12) * 4 * 3 + (0 if getattr(args, "no_png", False) else gr * gc * 8 * 4)
    check_memory(
        rows * cols * per_point, f"the images of the {rows} x {cols} map" + (f" on a {grid[0]}x{grid[1]} grid" if grid else ""),
        "use a coarser --grid" + ("" if getattr(args, "no_png", True) else " or --no-png") + ", or a computer with more memory",
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser)
    parser.add_argument("--grid", default="7x7", metavar="ROWSxCOLS", help="regions per pattern (default 7x7; any grid)")
    parser.add_argument(
        "--signal",
        choices=("raw", "kikuchi", "background"),
        default="raw",
        help="what the regions average: raw patterns (default), the Kikuchi signal after background removal, or the smooth background",
    )
    parser.add_argument(
        "--rgb",
        metavar="R,G,B",
        help="regions of the colour image, ROW:COL or row-major numbers (default: left, middle, right of the bottom grid row)",
    )
    parser.add_argument("--n-std", type=float, default=2.0, metavar="K", help="colour channels span median +- K std (default 2)")
    parser.add_argument("--diode-strip", type=float, default=0.15, metavar="F", help="height of the diode strips, fraction of the pattern (default 0.15)")
    parser.add_argument(
        "--kikuchi-com", action="store_true",
        help="also the centre of mass of the Kikuchi signal (pattern / its background): costs a background removal per pattern",
    )  # fmt: skip
    parser.add_argument("--no-kikuchi-com", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
    parser.add_argument("--region-pngs", action="store_true", help="also write one PNG per region")
    parser.add_argument("--no-png", action="store_true", help="write vbse.h5 only (no PNG gallery)")
    add_execution_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import kikuchi
    from kikuchi.imaging import parse_grid, vbse_maps
    from kikuchi.imaging.gallery import save_vbse_h5, write_vbse_gallery

    grid = parse_grid(args.grid)
    regions = parse_regions(args.rgb, grid) if args.rgb else None
    check_positive_px(args.sigma, "--sigma")
    if not args.n_std > 0:
        raise ValueError(f"--n-std must be > 0, got {args.n_std:g}")
    if not 0 < args.diode_strip <= 1:
        raise ValueError(f"--diode-strip is a fraction of the pattern height, 0 < F <= 1; got {args.diode_strip:g}")
    check_output_folder(args.output, ("the input file", args.input))
    t0 = time.perf_counter()
    execution = execution_options(args)
    with kikuchi.open(args.input, dataset=args.dataset) as m:
        check_map_request(m, args, grid=grid)
        maps = vbse_maps(
            m,
            grid=grid,
            signal=args.signal,
            sigma=args.sigma,
            com_kikuchi=args.kikuchi_com,
            diode_strip=args.diode_strip,
            static_background=not args.no_static_background,
            progress=not args.quiet and sys.stderr.isatty(),
            **execution,
        )
        n = m.n_patterns
        lost = int(getattr(m, "unreadable_points", 0))
    t1 = time.perf_counter()
    if args.no_png:
        from kikuchi.io._atomic import atomic_directory

        with atomic_directory(args.output) as tmp:  # the folder appears complete, or not at all
            save_vbse_h5(maps, tmp / "vbse.h5", rgb_regions=regions)
        written = Path(args.output) / "vbse.h5"
    else:
        written = write_vbse_gallery(
            maps, args.output, rgb_regions=regions, remove_gradient=args.remove_gradient, region_pngs=args.region_pngs, n_std=args.n_std
        )
    if not args.quiet:
        bad = int(maps.no_signal.sum()) if maps.no_signal is not None else 0
        print(
            f"{n} patterns, {grid[0]}x{grid[1]} grid of the {args.signal} signal in {t1 - t0:.1f} s {execution_text(execution)}; "
            f"output in {time.perf_counter() - t1:.1f} s: {written}; "
            f"{bad} point{'s' * (bad != 1)} without signal (all one value, or not finite: NaN in the images)"
            + (f"; {lost} point{'s' * (lost != 1)} in unreadable chunks (damaged file: NaN in the images)" if args.skip_bad_chunks else "")
        )
    return 0
