"""``kikuchi bands``: detect Kikuchi bands in one pattern and draw them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.cli._options import PATTERN_FILE, check_output, numbers

_IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a pattern image (TIFF, PNG, BMP) or a " + PATTERN_FILE)
    parser.add_argument("--at", default=None, metavar="ROW,COL", help="map position of the pattern (map files; default: the map centre)")
    parser.add_argument("--dataset", default=None, choices=("RawPatterns", "Patterns"), help="pattern dataset of a pattern file")
    parser.add_argument(
        "--method", default="radon", choices=("radon", "binary"),
        help="radon: grey-level Radon transform (the indexing detector); binary: Otsu binarisation + Hough transform + 9x9 butterfly (xcdskd)",
    )
    parser.add_argument("--n-bands", type=int, default=None, help="most bands to find (default 9 radon, 12 binary)")
    parser.add_argument(
        "--background", default="auto", choices=("auto", "none", "dynamic", "static+dynamic"),
        help="background removal before detection; auto: static+dynamic for raw map patterns, none for images and processed patterns",
    )
    parser.add_argument("--otsu-factor", type=float, default=1.15, help="binary method: threshold = factor x Otsu threshold")
    parser.add_argument("-o", "--output", type=Path, default=None, help="figure (PNG): pattern, transform, bands drawn on the pattern")
    parser.add_argument("--json", action="store_true", help="print the bands as JSON")


def _read_image(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        img = tifffile.imread(path)
    else:
        from PIL import Image

        with Image.open(path) as im:
            img = np.asarray(im.convert("L") if im.mode not in ("L", "I;16", "I", "F") else im)
    img = np.asarray(img)
    if img.ndim == 3:  # RGB(A) -> grey
        img = img[..., :3].astype(np.float64).mean(axis=-1)
    if img.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D grey pattern image, got shape {img.shape}")
    return img


def _parse_at(text: str | None, nav_shape: tuple[int, int]) -> tuple[int, int]:
    if text is None:
        return nav_shape[0] // 2, nav_shape[1] // 2
    position = numbers(text, 2, int)
    if position is None:
        raise ValueError(f"--at must be ROW,COL (two integers), got {text!r}")
    return position  # type: ignore[return-value]


def load_pattern(path: Path, *, at: str | None, dataset: str | None, background: str) -> tuple[np.ndarray, str]:
    """The pattern to analyse (background-corrected as asked) and a label for the figure.

    A pattern that holds no signal comes back as it was read (no background removed).
    """
    from kikuchi.index.map_index import prepare_patterns
    from kikuchi.process.no_signal import check_static_background, no_signal

    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in _IMAGE_SUFFIXES:
        if at is not None:
            raise ValueError("--at applies to map files only; this is a single pattern image")
        raw = _read_image(path)
        if no_signal(raw):  # nothing to remove a background from: the caller answers "no bands"
            return raw, path.name
        pattern = raw.astype(np.float32)
        if background == "static+dynamic":
            raise ValueError(f"{path}: an image has no static background; use --background dynamic or none")
        if background == "dynamic":
            pattern = prepare_patterns(pattern[None], dynamic=True)[0]
        return pattern, path.name
    from kikuchi.io.mapstore import PROCESSED, open_map

    with open_map(path, dataset=dataset) as m:
        row, col = _parse_at(at, m.nav_shape)
        raw = np.asarray(m.pattern(row, col))
        if no_signal(raw):  # nothing to remove a background from: the caller answers "no bands"
            return raw, f"{path.name} (row {row}, col {col})"
        pattern = np.asarray(raw, dtype=np.float32)
        mode = background
        if mode == "auto":
            mode = "none" if m.dataset == PROCESSED else "static+dynamic"
        if mode != "none":
            bg = m.static_background if mode == "static+dynamic" else None
            bg, _ = check_static_background(bg, source=f"{path.name}: its static background")
            pattern = prepare_patterns(pattern[None], static_background=bg, dynamic=True)[0]
        return pattern, f"{path.name} (row {row}, col {col})"


def bands_figure(pattern: np.ndarray, bands: Any, path: Path, *, title: str = "") -> Path:
    """Three panels: the pattern, the (filtered) transform with the peaks, the bands drawn on the pattern."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from kikuchi.io._atomic import atomic_output

    fig = Figure(figsize=(13, 4.4))
    FigureCanvasAgg(fig)
    ax0, ax1, ax2 = fig.subplots(1, 3)
    h, w = pattern.shape
    ax0.imshow(pattern, cmap="gray")
    ax0.set_title(title or "pattern")
    ax0.set_axis_off()
    if bands.transform is not None:
        th = np.degrees(bands.theta_bins)
        rho = bands.rho_bins
        ax1.imshow(bands.transform, cmap="gray", aspect="auto", extent=(th[0], th[-1], rho[-1], rho[0]))
        # binary-method theta may run from -90: show the peaks where they were found
        t_plot = np.degrees(bands.theta)
        r_plot = bands.rho.copy()
        low = t_plot > th[-1] + 1e-9
        t_plot[low] -= 180.0
        r_plot[low] *= -1
        ax1.plot(t_plot, r_plot, "o", mfc="none", mec="r", ms=12, mew=0.8)
        for k, (t, r) in enumerate(zip(t_plot, r_plot)):
            ax1.annotate(str(k + 1), (t, r), color="y", fontsize=8, xytext=(4, 4), textcoords="offset points")
    ax1.set_xlabel("theta (degrees)")
    ax1.set_ylabel("rho (pixels from the centre)")
    ax1.set_title("filtered transform")
    ax2.imshow(pattern, cmap="gray")
    for k, (x0, y0, x1, y1) in enumerate(bands.endpoints()):
        if np.isfinite(x0):
            ax2.plot((x0, x1), (y0, y1), "-r", lw=1)
            ax2.annotate(str(k + 1), (x0, y0), color="y", fontsize=8)
    ax2.set_xlim(-0.5, w - 0.5)
    ax2.set_ylim(h - 0.5, -0.5)
    ax2.set_title(f"{len(bands)} bands")
    ax2.set_axis_off()
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return path


def _no_bands(pattern: np.ndarray, label: str, args: argparse.Namespace) -> int:
    """The answer for a pattern without signal: no bands, said in one line (exit 0; see docs/indexing.md)."""
    from kikuchi.bands import Bands
    from kikuchi.process.no_signal import describe_no_signal

    why = describe_no_signal(pattern)
    shape = (int(pattern.shape[0]), int(pattern.shape[1]))
    if args.output is not None:  # the pattern alone (run() checked the name)
        empty = np.zeros(0)
        bands_figure(np.asarray(pattern, dtype=np.float32), Bands(empty, empty, empty, empty, empty, shape), args.output, title=label)
    if args.json:
        print(json.dumps({"source": label, "method": args.method, "shape": list(shape), "bands": [], "no_signal": why}, indent=2))
    else:
        print(f"{label}: no bands: the pattern holds no signal ({why})" + (f"; figure: {args.output}" if args.output else ""))
    return 0


def run(args: argparse.Namespace) -> int:
    from kikuchi.bands import detect_bands, detect_bands_binary
    from kikuchi.process.no_signal import no_signal

    n_bands = args.n_bands if args.n_bands is not None else (9 if args.method == "radon" else 12)
    if n_bands < 1:
        raise ValueError(f"--n-bands must be at least 1, got {n_bands}")
    if args.output is not None:
        if args.output.suffix.lower() != ".png":
            raise ValueError(f"{args.output}: the figure is written as PNG; give a .png name")
        check_output(args.output, ("the input file", args.path))
    if not (np.isfinite(args.otsu_factor) and args.otsu_factor > 0):
        raise ValueError(f"--otsu-factor must be a positive number, got {args.otsu_factor:g}")
    pattern, label = load_pattern(args.path, at=args.at, dataset=args.dataset, background=args.background)
    if no_signal(pattern):
        return _no_bands(pattern, label, args)
    if args.method == "radon":
        bands = detect_bands(pattern, n_bands=n_bands)
    else:
        bands = detect_bands_binary(pattern, num_peaks=n_bands, otsu_factor=args.otsu_factor)
    if args.output is not None:
        if args.output.suffix.lower() != ".png":
            raise ValueError(f"{args.output}: the figure is written as PNG; give a .png name")
        bands_figure(pattern, bands, args.output, title=label)
    if args.json:
        out = {"source": label, "method": args.method, **bands.to_dict()}
        print(json.dumps(out, indent=2))
    else:
        print(f"{label}: {len(bands)} bands ({args.method})")
        print(f"{'#':>3} {'rho_px':>8} {'theta_deg':>9} {'intensity':>9} {'width_px':>8}")
        for k, (r, t, i, wd) in enumerate(zip(bands.rho, bands.theta, bands.intensity, bands.width)):
            print(f"{k + 1:>3} {r:8.2f} {np.degrees(t):9.2f} {i:9.3f} {wd:8.2f}")
        if args.output is not None:
            print(f"figure: {args.output}")
    return 0
