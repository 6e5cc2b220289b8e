"""``kikuchi quality``: pattern quality maps (image quality, neighbour dot product, mean, std).

Writes ``DIR/quality.h5`` (datasets ``iq``, ``adp``, ``mean``, ``std``,
(map rows, map cols) float32), one PNG per map (scale bar in µm, colour
bar) and an ``index.html``. See docs/imaging.md.
"""

from __future__ import annotations

import argparse
import sys
import time

from kikuchi.cli._options import add_execution_arguments, check_output_folder, check_positive_px, execution_options, execution_text
from kikuchi.cli._vbse import add_input_arguments, check_map_request


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_input_arguments(parser, sigma_default="pattern width / 8")
    parser.add_argument(
        "--signal",
        choices=("kikuchi", "raw", "background"),
        default="kikuchi",
        help="patterns of the IQ and dot products: the Kikuchi signal (default), raw patterns or the smooth background",
    )
    add_execution_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import kikuchi
    from kikuchi.imaging import quality_maps
    from kikuchi.imaging.gallery import write_quality_gallery

    check_positive_px(args.sigma, "--sigma")
    check_output_folder(args.output, ("the input file", args.input))
    execution = execution_options(args)
    t0 = time.perf_counter()
    with kikuchi.open(args.input, dataset=args.dataset) as m:
        check_map_request(m, args)
        maps = quality_maps(
            m,
            signal=args.signal,
            sigma=args.sigma,
            static_background=not args.no_static_background,
            progress=not args.quiet and sys.stderr.isatty(),
            **execution,
        )
        n = m.n_patterns
        lost = int(getattr(m, "unreadable_points", 0))
    t1 = time.perf_counter()
    index = write_quality_gallery(maps, args.output, remove_gradient=args.remove_gradient)
    if not args.quiet:
        bad = int(maps.no_signal.sum()) if maps.no_signal is not None else 0
        print(
            f"{n} patterns: quality maps of the {args.signal} signal in {t1 - t0:.1f} s {execution_text(execution)}; figures in {time.perf_counter() - t1:.1f} s: {index}; "
            f"{bad} point{'s' * (bad != 1)} without signal (all one value, or not finite: NaN in the maps)"
            + (f"; {lost} point{'s' * (lost != 1)} in unreadable chunks (damaged file: NaN in the maps)" if args.skip_bad_chunks else "")
        )
    return 0
