"""Generated pattern-image folders and zips whose content encodes the map position."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

H, W = 16, 12


def pattern(row: int, col: int, dtype=np.uint16, shape=(H, W)) -> np.ndarray:
    """Pixel (0, 0) = row, (0, 1) = col; the rest a position-dependent ramp (fits uint8)."""
    p = (np.add.outer(np.arange(shape[0]), np.arange(shape[1])) + 5 * row + 3 * col) % 120 + 20
    p = p.astype(dtype)
    p[0, 0], p[0, 1] = row, col
    return p


def write_image(path: Path, image: np.ndarray) -> None:
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(path, image)
    else:
        from PIL import Image

        Image.fromarray(image).save(path)


def aztec_name(row: int, col: int, ext: str = "tiff", prefix: str = "") -> str:
    return f"{prefix}{row}_{col}.{ext}"


def edax_name(row: int, col: int, ext: str = "bmp", prefix: str = "Scan1_") -> str:
    return f"{prefix}x{col}y{row}.{ext}"


def make_folder(folder: Path, rows: int, cols: int, *, name=aztec_name, dtype=np.uint16, ext: str = "tiff", skip=()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for r in range(rows):
        for c in range(cols):
            if (r, c) not in skip:
                write_image(folder / name(r, c, ext=ext), pattern(r, c, dtype))
    return folder


def make_zip(folder: Path, zip_path: Path, *, subdir: str = "", order_seed: int | None = 0) -> Path:
    """Zip a folder (in shuffled member order, as a zip's name list may be)."""
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if order_seed is not None:
        np.random.default_rng(order_seed).shuffle(files)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in files:
            zf.write(p, subdir + p.name)
    return zip_path
