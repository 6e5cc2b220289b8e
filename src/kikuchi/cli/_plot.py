"""``kikuchi plot``: map figures of an orientation map (CTF/ANG) or a map file.

The figures of the xcdskd CTF example (band contrast, MAD, band slope) and
more, each with a scale bar in µm and a colour bar, legend or colour key::

    kikuchi plot GaN.ctf --map bc --phase 1 --where "bc>10" -o bc.png
    kikuchi plot GaN.ctf --map ipf-z -o ipf.png
    kikuchi plot scan.h5 --map bse -o bse.png
"""

from __future__ import annotations

import argparse
import operator
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.cli._options import PATTERN_FILE, check_output

MAPS = ("bc", "mad", "bs", "bands", "error", "phase", "euler", "bse", "ipf-x", "ipf-y", "ipf-z", "iq", "ci", "fit")
_LABELS = {
    "bc": "band contrast",
    "mad": "mean angular deviation (°)",
    "bs": "band slope",
    "bands": "number of bands",
    "iq": "image quality",
    "ci": "confidence index",
    "fit": "fit (°)",
    "detector_signal": "detector signal",
    "bse": "mean pattern intensity (BSE)",
}
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne}
_WHERE = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(>=|<=|==|!=|>|<)\s*([-+0-9.eE]+)\s*$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="orientation map (.ctf, .ang, kikuchi index .h5) or a " + PATTERN_FILE)
    parser.add_argument(
        "--map", dest="kind", required=True, metavar="MAP",
        help=f"what to draw: {', '.join(MAPS)} or any column of the file (e.g. detector_signal)",
    )  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True, help="output PNG")
    parser.add_argument("--phase", type=int, action="append", help="only points of this phase id (repeatable)")
    parser.add_argument("--where", action="append", default=[], metavar="EXPR", help="only points where EXPR holds, e.g. 'bc>10' (repeatable)")
    parser.add_argument("--cmap", default=None, help="matplotlib colour map of value maps (default gray)")
    parser.add_argument("--vmin", type=float, default=None, help="lower colour limit")
    parser.add_argument("--vmax", type=float, default=None, help="upper colour limit")
    parser.add_argument("--title", default=None, help="figure title (default: file and map)")


def _is_map_file(path: Path) -> bool:
    """A pattern file of any format, not an orientation map (CTF/ANG, or ``kikuchi index -o OUT.h5``: drawn from its columns)."""
    import h5py

    from kikuchi.io.orientation_h5 import holds_orientation_map
    from kikuchi.io.source import MapFileError, identify

    if path.suffix.lower() in (".ctf", ".ang"):
        return False
    if path.is_file() and h5py.is_hdf5(path) and holds_orientation_map(path):
        return False
    try:
        identify(path)
    except (MapFileError, OSError):
        return False
    return True


def _conditions(omap: Any, args: argparse.Namespace) -> np.ndarray | None:
    keep = None
    for expr in args.where:
        m = _WHERE.match(expr)
        if not m:
            raise ValueError(f"--where {expr!r}: expected COLUMN OP NUMBER, e.g. 'bc>10' (OP one of > >= < <= == !=)")
        name, op, value = m.groups()
        if name not in omap:
            raise ValueError(f"--where {expr!r}: no column {name!r}; the file has {omap.column_names}")
        cond = _OPS[op](omap[name], float(value))
        keep = cond if keep is None else keep & cond
    return keep


def _plot_orientation_map(args: argparse.Namespace, kind: str, title: str) -> Path:
    from kikuchi.figures import euler_rgb, ipf_key_image, ipf_rgb, phase_rgb, save_map_image
    from kikuchi.io.ctf import ERROR_CODES
    from kikuchi.io.orientation_map import read_orientation_map

    omap = read_orientation_map(args.path)
    if omap.grid == "interactive":
        raise ValueError(f"{args.path.name}: an interactive point list ({len(omap)} points) has no map image")
    if omap.grid == "hexagonal":
        omap = omap.to_square_grid()
        print(f"kikuchi plot: note: {args.path.name}: {omap.notes[-1]}", file=sys.stderr)
    keep = _conditions(omap, args)
    step = omap.step_um
    common: dict[str, Any] = {"step_um": step, "title": title}
    if kind == "bse":
        raise ValueError(f"--map bse needs a pattern map file (.h5); {args.path.name} is an orientation map (try bc, iq or ci)")
    if kind in ("phase", "euler") or kind.startswith("ipf-"):
        mask = np.ones(len(omap), dtype=bool) if keep is None else keep
        if args.phase:
            mask &= np.isin(omap.phase_id, args.phase)
        pid = np.where(mask, omap.phase_id, 0).reshape(omap.nav_shape)
        if kind == "phase":
            rgb, legend = phase_rgb(pid, omap.phases)
            return save_map_image(rgb, args.output, legend=legend, **common)
        euler = omap.map("euler")
        if kind == "euler":
            return save_map_image(euler_rgb(euler, pid), args.output, **common)
        direction = kind.split("-")[1]
        rgb = ipf_rgb(euler, pid, omap.phases, direction=direction)
        present = [p for p in omap.phases if (pid == p.id).any()]
        key = ipf_key_image(present[0]) if present else None
        label = f"IPF-{direction.upper()} {present[0].name} ({present[0].point_group})" if present else None
        return save_map_image(rgb, args.output, key_image=key, key_label=label, **common)
    if kind not in omap:
        raise ValueError(f"{args.path.name} has no column {kind!r}; it has {', '.join(omap.column_names)}")
    values = omap.select(kind, keep, phase=args.phase)
    if kind == "error":
        from matplotlib import colormaps

        codes = np.unique(values.compressed()).astype(int).tolist()
        palette = colormaps["tab10"]
        rgb = np.zeros((*omap.nav_shape, 3))  # type: ignore[misc]
        legend = []
        for k, code in enumerate(codes):
            colour = (0.8, 0.8, 0.8) if code == 0 else palette(k % 10)[:3]
            rgb[(values == code).filled(False)] = colour
            legend.append((f"{code}: {ERROR_CODES.get(code, 'unknown code')}", colour))
        rgb[np.ma.getmaskarray(values)] = 1.0
        return save_map_image(rgb, args.output, legend=legend, **common)
    return save_map_image(
        values, args.output, cmap=args.cmap or "gray", colorbar_label=_LABELS.get(kind, kind),
        vmin=args.vmin, vmax=args.vmax, **common,
    )  # fmt: skip


def _plot_map_file(args: argparse.Namespace, kind: str, title: str) -> Path:
    from kikuchi.figures import euler_rgb, save_map_image
    from kikuchi.io.mapstore import open_map

    with open_map(args.path) as ebsd_map:
        step = ebsd_map.step_um
        if kind == "bse":
            bse = np.asarray(ebsd_map.bse_map, dtype=np.float64)
            return save_map_image(
                np.ma.masked_invalid(bse), args.output, step_um=step, title=title, cmap=args.cmap or "gray",
                colorbar_label=_LABELS["bse"], vmin=args.vmin, vmax=args.vmax,
            )  # fmt: skip
        if kind != "euler" and not kind.startswith("ipf-"):
            raise ValueError(f"--map {kind} is not available for a map file; use bse, euler or ipf-x/y/z (and a CTF/ANG for {kind})")
        euler = ebsd_map.euler
        if euler is None:
            raise ValueError(f"{args.path.name} holds no orientations (index it first); --map {kind} needs them")
        if kind == "euler":  # black where unknown, whether or not the file records a phase
            known = np.isfinite(euler).all(axis=-1)
            return save_map_image(euler_rgb(euler, known.astype(np.int32)), args.output, step_um=step, title=title)
        if not ebsd_map.phases:
            raise ValueError(f"{args.path.name} records no phase; IPF colours need its point group")
    # IPF: the map file's orientations read as an orientation map (each point's phase where the file
    # records it, as a synthetic map's truth does), drawn as for a CTF
    return _plot_orientation_map(args, kind, title)


def run(args: argparse.Namespace) -> int:
    kind = args.kind.lower()
    if not args.path.exists():
        raise FileNotFoundError(f"{args.path}: no such file")
    if args.output.suffix.lower() != ".png":
        raise ValueError(f"output {args.output.name}: figures are PNG; give a name ending in .png")
    check_output(args.output, ("the input file", args.path))
    for option, value in (("--vmin", args.vmin), ("--vmax", args.vmax)):
        if value is not None and not np.isfinite(value):
            raise ValueError(f"{option} must be a finite number, got {value}")
    if args.vmin is not None and args.vmax is not None and not args.vmin < args.vmax:
        raise ValueError(f"--vmin {args.vmin:g} must be below --vmax {args.vmax:g}")
    title = args.title if args.title is not None else f"{args.path.name}: {kind}"
    if _is_map_file(args.path):
        out = _plot_map_file(args, kind, title)
    else:
        out = _plot_orientation_map(args, kind, title)
    print(out)
    return 0
