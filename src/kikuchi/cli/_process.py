"""``kikuchi process``: process a whole map file (background, binning, contrast, averaging).

Writes a new map file whose ``Scan/EBSD/Data/Patterns`` holds the processed
patterns and whose header records every parameter used. The map is streamed
chunk by chunk (memory bounded whatever the map size), serially, on threads
(``--threads N``), on a local cluster of worker processes (``--workers N``)
or on a running dask.distributed cluster (``--scheduler tcp://HOST:PORT``).
An interrupted run keeps its partial output; ``--resume`` continues it.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

from kikuchi.cli._options import PATTERN_FILE, add_execution_arguments, check_output, check_positive_px, execution_options, execution_text
from kikuchi.cli._options import positive_int as _positive_int

_logger = logging.getLogger(__name__)


def _binning(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


def add_processing_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that define the processing (shared with ``kikuchi pattern``)."""
    g = parser.add_argument_group("processing (defaults from the preset)")
    g.add_argument("--static", choices=("divide", "subtract", "none"), help="static background correction (default divide: flat field)")
    g.add_argument(
        "--static-background",
        metavar="FILE|mean|file",
        default="file",
        help="static background: 'file' (stored in the map, default), 'mean' (mean pattern of the map), "
        "or a file: another map file, .npy, .dat/.txt matrix, TIFF/PNG/BMP image",
    )
    g.add_argument("--dynamic", choices=("divide", "subtract", "none"), help="dynamic background: divide (remove_bg, default) or subtract (make_signal_bg)")
    g.add_argument("--sigma", type=float, metavar="PX", help="Gaussian std of the dynamic background, pixels of the binned pattern")
    g.add_argument("--kernel", choices=("documented", "untruncated"), help="documented 3-sigma-support kernel (default) or a full Gaussian")
    g.add_argument("--binning", type=_binning, metavar="N|auto", help="binning factor (indexing preset: auto, about 80 pixels wide)")
    g.add_argument("--binning-mode", choices=("mean", "sum"), help="binning by mean (default) or sum")
    g.add_argument("--hot-pixels", type=float, metavar="T", help="remove hot pixels above T robust standard deviations")
    g.add_argument("--npa", type=int, metavar="N", help="average each pattern with its (2N+1)^2 map neighbours")
    g.add_argument("--npa-weights", choices=("flat", "gaussian"), help="weights of the neighbour averaging")
    g.add_argument(
        "--nlpar", action="store_true", default=None,
        help="non-local pattern averaging (NLPAR, Brewick et al. 2019) instead of --npa: each pattern becomes a mean of the "
        "patterns of its search window weighted by how alike they are against the noise (patterns across a grain "
        "boundary get almost no weight)",
    )
    g.add_argument(
        "--lambda", dest="nlpar_lambda", metavar="auto|X",
        help="with --nlpar: how fast the weights fall off with the noise-normalised distance; 'auto' (default) chooses it "
        "from the map (PyEBSDIndex's opt_lambda targets, a first pass over the map); smaller averages less",
    )
    g.add_argument(
        "--search-radius", dest="nlpar_search_radius", type=int, metavar="N",
        help="with --nlpar: search window of (2N+1)^2 map points (default 3: 7 x 7)",
    )
    g.add_argument(
        "--nlpar-mask", choices=("none", "circle"),
        help="with --nlpar: the pixels compared, all (none, default) or the inscribed circle of the pattern; all are averaged",
    )
    g.add_argument("--contrast", choices=("none", "clahe", "local"), help="extra contrast enhancement before the conversion")
    g.add_argument("--clow", type=float, metavar="PCT", help="percentile mapped to black")
    g.add_argument("--chigh", type=float, metavar="PCT", help="percentile mapped to white")
    g.add_argument("--dtype", choices=("uint8", "uint16", "float32"), help="output pattern type")
    g.add_argument("--mask", action="store_true", default=None, help="zero the pixels outside the inscribed circle")


def settings_from_args(args: argparse.Namespace, preset: str) -> Any:
    """ProcessingSettings: the preset, with the options given on the command line."""
    from kikuchi.process.pipeline import PRESETS

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    check_positive_px(args.sigma, "--sigma")
    if args.npa is not None and args.npa < 0:
        raise ValueError(f"--npa must be >= 0, got {args.npa}")
    if not args.nlpar:
        given = [flag for flag, value in (("--lambda", args.nlpar_lambda), ("--search-radius", args.nlpar_search_radius), ("--nlpar-mask", args.nlpar_mask)) if value is not None]
        if given:
            raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to non-local averaging only: add --nlpar")
    elif args.npa:
        raise ValueError(f"choose one neighbour averaging: --nlpar or --npa (got --npa {args.npa})")
    if args.nlpar_lambda is not None:
        from kikuchi.process.nlpar import check_lambda

        try:
            args.nlpar_lambda = check_lambda(args.nlpar_lambda)
        except ValueError:
            raise ValueError(f"--lambda must be 'auto' or a number > 0, got {args.nlpar_lambda!r}") from None
    if args.nlpar_search_radius is not None and args.nlpar_search_radius < 1:
        raise ValueError(f"--search-radius must be at least 1 map step, got {args.nlpar_search_radius}")
    changes = {
        "static": args.static,
        "dynamic": args.dynamic,
        "sigma": args.sigma,
        "kernel": args.kernel,
        "binning": args.binning,
        "binning_mode": args.binning_mode,
        "hot_pixels": args.hot_pixels,
        "npa": args.npa,
        "npa_weights": args.npa_weights,
        "nlpar": args.nlpar,
        "nlpar_lambda": args.nlpar_lambda,
        "nlpar_search_radius": args.nlpar_search_radius,
        "nlpar_mask": args.nlpar_mask,
        "contrast": args.contrast,
        "clow": args.clow,
        "chigh": args.chigh,
        "dtype": args.dtype,
        "mask": args.mask,
    }
    settings = PRESETS[preset].replace(**changes)
    if args.sigma is not None:  # an explicit sigma replaces the preset's fraction of the width
        settings = settings.replace(sigma=args.sigma)
    return settings


def static_background_source(args: argparse.Namespace) -> Any:
    value = args.static_background
    return value if value in ("file", "mean", "none") else Path(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="input " + PATTERN_FILE)
    parser.add_argument("-o", "--output", type=Path, required=True, help="output map file (.h5), not the input")
    parser.add_argument("--preset", choices=("indexing", "detailed"), default="indexing", help="indexing: ~80x60 uint8 (default); detailed: full resolution uint16")
    parser.add_argument("--dataset", choices=("RawPatterns", "Patterns"), help="pattern dataset of the input (default: raw patterns)")
    add_processing_arguments(parser)
    add_execution_arguments(parser)
    parser.add_argument("--scheduler-timeout", type=float, default=5.0, metavar="S", help="seconds to wait for the scheduler (default 5)")
    parser.add_argument("--chunk-rows", type=_positive_int, metavar="N", help="map rows per chunk (default: about 32 MiB of patterns, at least 16 halos with --npa)")
    parser.add_argument(
        "--chunk-cols", type=_positive_int, metavar="N",
        help="map columns per chunk: tiles (default: whole rows, or tiles where a band would not fit the memory budget)",
    )
    parser.add_argument(
        "--compression", choices=("gzip", "none"), default="gzip",
        help="filter of the output patterns: gzip 1 + shuffle (default) or none (faster, larger: processed 16-bit patterns compress little)",
    )
    parser.add_argument("--resume", action="store_true", help="continue the partial output of an interrupted run with the same options")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from kikuchi.engine import process_map
    from kikuchi.io.mapstore import open_map

    settings = settings_from_args(args, args.preset)
    background = static_background_source(args)
    check_output(args.output, ("the input map file", args.input), ("the --static-background file", background if isinstance(background, Path) else None))
    execution = execution_options(args)
    if args.scheduler:
        from kikuchi.engine import _executors

        _executors.SCHEDULER_TIMEOUT_S = args.scheduler_timeout
    t0 = time.perf_counter()
    with open_map(args.input, dataset=args.dataset) as m:
        n = int((m.index_map >= 0).sum())
        if args.skip_bad_chunks:
            execution["on_bad_chunk"] = "skip"
        out = process_map(
            m,
            args.output,
            settings,
            static_background=static_background_source(args),
            **execution,
            progress=not args.no_progress,
            chunk_rows=args.chunk_rows,
            chunk_cols=args.chunk_cols,
            resume=args.resume,
            compression=args.compression,
        )
    dt = time.perf_counter() - t0
    with open_map(out) as o:
        p = o.processing or {}
        rows, cols = o.nav_shape
        h, w = o.pattern_shape
        bad = int(p.get("no_signal_points", 0))
        lost = int(p.get("unreadable_points", 0))
        if p.get("nlpar"):
            how = "auto" if p.get("nlpar_lambda") == "auto" else "given"
            averaging = f"nlpar lambda {p.get('nlpar_lambda_used'):.4g} ({how}) search radius {p.get('nlpar_search_radius')}"
        else:
            averaging = f"npa {p.get('npa')}"
        print(
            f"wrote {out}: {rows} x {cols} map, {h} x {w} {o.dtype} patterns "
            f"(preset {args.preset}, binning {p.get('binning_factor')}, static {p.get('static')} "
            f"[{p.get('static_background_source')}], dynamic {p.get('dynamic')} sigma {p.get('sigma_px'):.3g} px, "
            f"{averaging}); {n} patterns in {dt:.1f} s ({n / max(dt, 1e-9):.0f} patterns/s, {execution_text(execution)}); "
            f"{bad} point{'s' * (bad != 1)} without signal (all one value, or not finite: zeros, flagged in {p.get('no_signal_map', 'the output')})"
            + (f"; {lost} point{'s' * (lost != 1)} in unreadable chunks of the input (damaged file: no pattern in the output)" if args.skip_bad_chunks else ""),
            file=sys.stdout,
        )
    return 0
