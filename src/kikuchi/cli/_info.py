"""``kikuchi info``: describe a map file, a CTF/ANG orientation map, or an image folder/zip."""

from __future__ import annotations

import argparse
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

_ORIENTATION_SUFFIXES = (".ctf", ".ang")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="a pattern file (kikuchi map file or a vendor's: .h5oina, .ebsp, .h5, .up1/.up2, Pattern.dat), CTF/ANG file, or folder/zip of pattern images")
    parser.add_argument("--json", action="store_true", help="print the description as JSON")


def _is_hdf5(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == _HDF5_SIGNATURE
    except OSError:
        return False


def _is_orientation_h5(path: Path) -> bool:
    """An HDF5 orientation map (``kikuchi index -o OUT.h5``), described like a CTF/ANG file."""
    if not _is_hdf5(path):
        return False
    from kikuchi.io.orientation_h5 import holds_orientation_map

    return holds_orientation_map(path)


def describe_path(path: Path) -> dict[str, Any]:
    """The JSON-ready description of whatever ``path`` is."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    from kikuchi.io.mapstore import refuse_partial_output

    refuse_partial_output(path)  # '.NAME.partial': an output being written, or left by an interrupted command
    if (path.is_dir() and not (path / "Pattern.dat").is_file()) or (
        path.suffix.lower() == ".zip" or (path.is_file() and zipfile.is_zipfile(path))
    ):  # a folder or zip of images; a NORDIF folder (Pattern.dat) is a pattern file
        from kikuchi.io.imagefolder import describe_image_source

        return describe_image_source(path)
    if path.suffix.lower() in _ORIENTATION_SUFFIXES or _is_orientation_h5(path):
        from kikuchi.io.orientation_map import read_orientation_map

        return read_orientation_map(path).describe()
    from kikuchi.io.source import MapFileError, open_map

    try:
        m = open_map(path)
    except MapFileError as exc:
        if "in no pattern format" not in str(exc):
            raise
        raise ValueError(f"{path}: not a pattern file (kikuchi map file or a vendor's), CTF/ANG file, or folder/zip of pattern images") from None
    with m:
        desc = m.describe()
        columns: dict[str, np.ndarray] = {}
        stored_bse = m.stored_bse_map  # stored by the converter; never computed here (it reads every pattern)
        if stored_bse is not None:
            columns["bse"] = stored_bse
        euler = m.euler
        if euler is not None:
            for k, name in enumerate(("phi1_deg", "PHI_deg", "phi2_deg")):
                columns[name] = np.rad2deg(euler[..., k])
        summary = {name: _column_summary(values) for name, values in columns.items()}
        if summary:
            desc["summary"] = summary
        return desc


def _column_summary(values: np.ndarray) -> dict[str, Any]:
    """min, mean, max of the finite values and how many points have none (NaN: no pattern / not indexed)."""
    finite = values[np.isfinite(values)]
    stats = (float(finite.min()), float(finite.mean()), float(finite.max())) if finite.size else (None, None, None)
    return {"min": stats[0], "mean": stats[1], "max": stats[2], "missing": int(values.size - finite.size)}


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list) and all(isinstance(v, (int, float)) for v in value) and value:
        return " x ".join(_format_value(v) for v in value) if len(value) <= 3 else ", ".join(_format_value(v) for v in value)
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        if all("hkl" in v for v in value):  # hkl families: {110} {200} ...
            return " ".join("{" + "".join(str(i) for i in v["hkl"]) + "}" for v in value)
        return f"{len(value)} entries"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value) if value else "(none)"
    if value is None:
        return "-"
    return str(value)


def _format(desc: dict[str, Any], indent: int = 0) -> list[str]:
    pad = " " * indent
    lines: list[str] = []
    width = max((len(k) for k in desc), default=0)
    for key, value in desc.items():
        label = key.replace("_", " ")
        if isinstance(value, dict) and value:
            if all(isinstance(v, dict) for v in value.values()):  # a table, e.g. per-column summary
                lines.append(f"{pad}{label}:")
                for name, row in value.items():
                    cells = ", ".join(f"{k} {_format_value(v)}" for k, v in row.items())
                    lines.append(f"{pad}  {name}: {cells}")
            else:
                lines.append(f"{pad}{label}:")
                lines.extend(_format(value, indent + 2))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{pad}{label}:")
            for item in value:
                shown = {k: v for k, v in item.items() if not isinstance(v, dict) and v not in ([], "", None)}
                lines.append(f"{pad}  - " + ", ".join(f"{k.replace('_', ' ')}: {_format_value(v)}" for k, v in shown.items()))
        elif isinstance(value, list) and not value:
            lines.append(f"{pad}{label:<{width}}  (none)")
        else:
            lines.append(f"{pad}{label.ljust(width)}  {_format_value(value)}")
    return lines


def run(args: argparse.Namespace) -> int:
    from kikuchi.io.orientation_map import _json_ready  # numpy values, paths, NaN -> JSON

    desc = _json_ready(describe_path(args.path))
    if args.json:
        print(json.dumps(desc, indent=2))
    else:
        print("\n".join(_format(desc)))
    return 0
