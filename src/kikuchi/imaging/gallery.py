"""Writing imaging results: arrays to HDF5, images to PNG, and an HTML gallery.

Every file goes through :func:`kikuchi.io._atomic.atomic_output` (PNG files
through :func:`kikuchi.figures.map_image.write_map_png`), so an interrupted
run never leaves a complete-looking file behind; a gallery is written into a
temporary folder that becomes the output folder only when every file of it
is written (:func:`kikuchi.io._atomic.atomic_directory`).

A gallery draws its figures on the calling thread and encodes and writes
them, and its HDF5 file, on a few threads meanwhile (:class:`_Gallery`).

A map whose step is not a positive length (0 or NaN in its file) is drawn
with one square pixel per map point and no scale bar, with a warning
(:func:`check_step`): the arrays do not depend on the step, only the length
scale of the images does.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from kikuchi.imaging.centre_of_mass import hillshade
from kikuchi.imaging.images import (
    asymmetry,
    default_rgb_regions,
    differential_rgb_image,
    grid_col_images,
    grid_row_images,
    montage,
    normalise_channel,
    remove_line_gradient,
    rgb_image,
)
from kikuchi.imaging.maps import QualityMaps, VbseMaps
from kikuchi.io._atomic import OutputH5File, atomic_directory, atomic_output
from kikuchi.io.source import MapFileWarning

__all__ = ["GalleryImage", "check_step", "save_vbse_h5", "save_quality_h5", "write_vbse_gallery", "write_quality_gallery", "write_index_html"]

_logger = logging.getLogger(__name__)

#: Most bytes of float32 arrays whose HDF5 file is built in memory, then written in one piece (:func:`_write_h5`).
IN_MEMORY_H5 = 256 << 20

#: Largest side, in pixels, of a montage in the gallery: figures are about 600
#: pixels wide, so larger tiles are block-averaged first (a 7 x 7 montage of a
#: 1000 x 2000 map would be 98 million pixels, gigabytes in matplotlib).
DISPLAY_PX = 2400


@dataclass(frozen=True)
class GalleryImage:
    """One PNG of a gallery and its caption."""

    file: str
    title: str
    caption: str


_STEP_WARNED: set[tuple[str, str]] = set()


def check_step(step_um: Sequence[float], source: str) -> bool:
    """True when the map step (row, col) in µm is a positive length; otherwise warn (once per map and step) and return False.

    Where it is not (0 or NaN in the file), images are drawn with square
    pixels and no scale bar: the images are right, only their length scale
    is unknown.

    >>> check_step((0.5, 0.5), "m.h5")
    True
    """
    try:
        ok = all(math.isfinite(float(v)) and float(v) > 0 for v in step_um) and len(step_um) == 2
    except (TypeError, ValueError):
        ok = False
    if not ok:
        shown = " x ".join(f"{float(v):g}" if isinstance(v, (int, float, np.number)) else repr(v) for v in step_um)
        if (source, shown) in _STEP_WARNED:  # said already (the command checks before it computes, the gallery again)
            return False
        _STEP_WARNED.add((source, shown))
        warnings.warn(
            f"{source}: the map step ({shown} µm) is not a positive length; the images are drawn with one square "
            "pixel per map point and no scale bar (the arrays do not depend on the step)",
            MapFileWarning,
            stacklevel=2,
        )
    return ok


def _write_h5(path: Path, datasets: dict[str, tuple[np.ndarray, str]], attrs: dict[str, object]) -> Path:
    """The arrays as gzip-compressed float32 datasets of a new HDF5 file ``path``.

    Up to :data:`IN_MEMORY_H5` bytes of arrays (maps up to about a million
    points on a 7 x 7 grid), the file is built in memory (HDF5's core
    driver) and written in one piece: HDF5 then compresses without calling
    back into Python for every chunk, so the GIL is free and the gallery
    paints its PNGs meanwhile. Larger, it is written through
    :class:`~kikuchi.io._atomic.OutputH5File`, so that the file's copy in
    memory does not add to the arrays'.
    """

    def fill(f: h5py.File) -> None:
        for name, (data, description) in datasets.items():
            ds = f.create_dataset(name, data=np.asarray(data, dtype=np.float32), compression="gzip", compression_opts=1)
            ds.attrs["description"] = description
        for key, value in attrs.items():
            f.attrs[key] = value if isinstance(value, (int, float, str)) else json.dumps(value)

    if sum(np.size(data) for data, _ in datasets.values()) * 4 > IN_MEMORY_H5:
        with atomic_output(path) as tmp, OutputH5File(tmp, "w") as f:
            fill(f)
        return path
    with h5py.File(f"{path.name}.in-memory", "w", driver="core", backing_store=False) as f:
        fill(f)
        f.flush()
        image = f.id.get_file_image()
    with atomic_output(path) as tmp:
        tmp.write_bytes(image)
    return path


def save_vbse_h5(maps: VbseMaps, path: str | os.PathLike, *, rgb_regions: Sequence[tuple[int, int]] | None = None) -> Path:
    """Write the arrays of :class:`VbseMaps` to ``path`` (float32, NaN where no pattern).

    Datasets: ``vbse`` (rows, cols, grid rows, grid cols), ``bse`` (rows,
    cols), ``com_raw`` and ``com_kikuchi`` (rows, cols, 2: x, y in pixels),
    ``diodes`` (rows, cols, 2, 3: [top, bottom] x [left, middle, right]),
    ``rgb`` (rows, cols, 3). Attributes: grid, signal, step_um,
    pattern_shape, rgb_regions, settings (JSON).
    """
    regions = default_rgb_regions(maps.grid) if rgb_regions is None else [tuple(r) for r in rgb_regions]
    datasets = {
        "vbse": (maps.vbse, f"mean intensity of each of the {maps.grid[0]} x {maps.grid[1]} regions of the {maps.signal} patterns"),
        "bse": (maps.bse, "total BSE image: mean intensity of each raw pattern"),
        "com_raw": (maps.com_raw, "centre of mass (x = column, y = row) of each raw pattern, pixels"),
        "diodes": (maps.diodes, "virtual forward-scatter diodes: [top, bottom] strip x [left, middle, right], mean raw intensity"),
        "rgb": (rgb_image(maps.vbse, regions=regions), f"colour image, red/green/blue = regions {regions}"),
    }
    if maps.com_kikuchi is not None:
        datasets["com_kikuchi"] = (maps.com_kikuchi, "centre of mass of the Kikuchi signal (pattern / background), pixels")
    attrs = {
        "grid": list(maps.grid),
        "signal": maps.signal,
        "step_um": list(maps.step_um),
        "pattern_shape": list(maps.pattern_shape),
        "rgb_regions": [list(r) for r in regions],
        "settings": maps.settings,
    }
    return _write_h5(Path(path), datasets, attrs)


def save_quality_h5(maps: QualityMaps, path: str | os.PathLike) -> Path:
    """Write the quality maps (iq, adp, mean, std; float32) to ``path``."""
    datasets = {
        "iq": (maps.iq, f"Krieger Lassen image quality Q of the {maps.signal} patterns"),
        "adp": (maps.adp, f"average normalised dot product with the 4 nearest neighbours ({maps.signal} patterns)"),
        "mean": (maps.mean, "mean intensity of each raw pattern"),
        "std": (maps.std, "standard deviation of the intensity of each raw pattern"),
    }
    return _write_h5(Path(path), datasets, {"signal": maps.signal, "step_um": list(maps.step_um), "settings": maps.settings})


def write_index_html(directory: str | os.PathLike, images: Sequence[GalleryImage], *, title: str, notes: Sequence[str] = ()) -> Path:
    """A self-contained ``index.html`` showing the images side by side with captions (relative links)."""
    directory = Path(directory)
    cards = "\n".join(
        f'<figure><a href="{html.escape(im.file)}"><img src="{html.escape(im.file)}" alt="{html.escape(im.title)}"></a>'
        f"<figcaption><b>{html.escape(im.title)}</b><br>{html.escape(im.caption)}</figcaption></figure>"
        for im in images
    )
    note_html = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; background: #fafafa; color: #222; }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); gap: 1.2em; }}
figure {{ margin: 0; background: #fff; border: 1px solid #ddd; padding: 0.6em; }}
img {{ width: 100%; height: auto; image-rendering: pixelated; }}
figcaption {{ font-size: 0.9em; margin-top: 0.4em; }}
</style></head>
<body><h1>{html.escape(title)}</h1><ul>{note_html}</ul>
<main>
{cards}
</main></body></html>
"""
    path = directory / "index.html"
    with atomic_output(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path


class _Gallery:
    """Collects the PNGs of a gallery and their captions; a context manager.

    The figures are painted here, on the calling thread
    (:func:`kikuchi.figures.map_image.draw_map_image`: numpy and Pillow);
    their PNG encoding and writing, and the HDF5 file given to
    :meth:`submit`, run on a small pool of threads meanwhile (zlib
    releases the GIL). Leaving the block waits for them and raises the
    first error; leaving it with an exception (Ctrl-C) drops what has not
    started and waits for what has, so nothing writes into the folder after.
    """

    def __init__(self, directory: Path, step_um: tuple[float, float], remove_gradient: bool, *, source: str = "the map"):
        from concurrent.futures import ThreadPoolExecutor

        from kikuchi.figures import map_image

        self._draw, self._write = map_image.draw_map_image, map_image.write_map_png
        self.directory = directory
        self.scale_bar = check_step(step_um, source)
        self.step_um = tuple(float(v) for v in step_um) if self.scale_bar else (1.0, 1.0)
        self.remove_gradient = remove_gradient
        self.images: list[GalleryImage] = []
        self._pool = ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1)), thread_name_prefix="kikuchi-gallery")
        self._pending: list = []

    def __enter__(self) -> _Gallery:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for future in self._pending:
                    future.result()  # the first failure (a full disk) in the order the files were given
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, function, *args, **kwargs) -> None:
        """Run ``function(*args, **kwargs)`` on the gallery's threads (an output that releases the GIL)."""
        self._pending.append(self._pool.submit(function, *args, **kwargs))

    def fix(self, image: np.ndarray) -> np.ndarray:
        """The optional scan-line drift removal, applied to every map image."""
        return remove_line_gradient(image) if self.remove_gradient else image

    def add(self, file: str, image: np.ndarray, title: str, caption: str, *, colorbar_label: str | None = None, cmap: str = "gray", **kwargs) -> None:
        if not np.isfinite(image).any():
            _logger.warning("%s: no finite values, image skipped", file)
            return
        drawn = self._draw(
            image, step_um=self.step_um, title=title, cmap=cmap, colorbar_label=colorbar_label, scale_bar=self.scale_bar, **kwargs,
        )  # fmt: skip
        if isinstance(drawn, np.ndarray):
            self.submit(self._write, drawn, self.directory / file)
        else:  # a matplotlib figure still to be laid out (a legend, a key): on this thread
            self._write(drawn, self.directory / file)
        self.images.append(GalleryImage(file, title, caption))


def write_vbse_gallery(
    maps: VbseMaps,
    directory: str | os.PathLike,
    *,
    rgb_regions: Sequence[tuple[int, int]] | None = None,
    remove_gradient: bool = False,
    region_pngs: bool = False,
    n_std: float = 2.0,
) -> Path:
    """Write ``vbse.h5``, the PNG gallery and ``index.html`` into ``directory``.

    Parameters
    ----------
    maps
        Result of :func:`kikuchi.imaging.vbse_maps`.
    directory
        Output folder (created).
    rgb_regions
        (grid row, grid col) of the red, green and blue channels; default
        left, middle and right of the bottom grid row.
    remove_gradient
        Remove scan-line drifts (:func:`kikuchi.imaging.remove_line_gradient`)
        from every image before it is drawn (``vbse.h5`` keeps the arrays
        as measured).
    region_pngs
        Also write one PNG per region.
    n_std
        Colour channel span, standard deviations either side of the median.

    Returns
    -------
    Path
        The ``index.html``.

    Raises
    ------
    OutputWriteError
        A file cannot be written (a full disk): the folder is left as it was.
    """
    directory = Path(directory)
    gr, gc = maps.grid
    regions = default_rgb_regions(maps.grid) if rgb_regions is None else [tuple(int(v) for v in r) for r in rgb_regions]
    for i, j in regions:
        if not (0 <= i < gr and 0 <= j < gc):
            raise ValueError(f"colour region ({i}, {j}) is outside the {gr} x {gc} grid (rows 0..{gr - 1}, cols 0..{gc - 1})")
    with atomic_directory(directory) as tmp:  # the folder appears complete, or not at all
        _write_vbse_gallery(maps, tmp, regions, remove_gradient=remove_gradient, region_pngs=region_pngs, n_std=n_std)
    return directory / "index.html"


def _write_vbse_gallery(
    maps: VbseMaps, directory: Path, regions: list[tuple[int, int]], *, remove_gradient: bool, region_pngs: bool, n_std: float
) -> Path:
    with _Gallery(directory, maps.step_um, remove_gradient, source=str(maps.settings.get("source", "the map"))) as g:
        g.submit(save_vbse_h5, maps, directory / "vbse.h5", rgb_regions=regions)
        images = _vbse_images(g, maps, regions, region_pngs=region_pngs, n_std=n_std)
    return write_index_html(directory, images, title="Virtual BSE imaging", notes=_vbse_notes(maps, remove_gradient))


def _vbse_images(g: _Gallery, maps: VbseMaps, regions: list[tuple[int, int]], *, region_pngs: bool, n_std: float) -> list[GalleryImage]:
    gr, gc = maps.grid
    unit = "intensity (counts)" if maps.signal == "raw" else f"{maps.signal} signal"
    # every region image, drift-corrected when asked: (gr, gc, rows, cols) and back as a vbse array
    if g.remove_gradient:
        vbse = np.stack([[g.fix(maps.vbse[:, :, i, j]) for j in range(gc)] for i in range(gr)])
    else:  # a view: no copy of an array of map size x regions
        vbse = np.moveaxis(maps.vbse, (2, 3), (0, 1))
    vbse_map = np.moveaxis(vbse, (0, 1), (2, 3))

    g.add("bse.png", g.fix(maps.bse), "Total BSE", "Mean intensity of each raw pattern.", colorbar_label="mean intensity (counts)")
    g.add(
        "vbse_regions_common.png",
        montage(vbse, max_px=DISPLAY_PX),
        f"Virtual BSE array {gr} x {gc}, common scale",
        f"Each tile is the image of one region of the {maps.signal} patterns, placed as the region lies on the detector "
        "(top of the detector at the top); one intensity scale for all.",
        colorbar_label=unit,
    )
    g.add(
        "vbse_regions_individual.png",
        montage(vbse, scale="individual", max_px=DISPLAY_PX),
        f"Virtual BSE array {gr} x {gc}, individual scales",
        "The same tiles, each stretched between its own 0.5 and 99.5 percentiles: contrast within every region.",
    )
    rows_img, cols_img = grid_row_images(vbse_map), grid_col_images(vbse_map)
    g.add("vbse_grid_rows.png", montage(rows_img[:, None], max_px=DISPLAY_PX), "Grid rows", "Each grid row averaged over its regions, top to bottom; common scale.", colorbar_label=unit)
    g.add("vbse_grid_cols.png", montage(cols_img[None], max_px=DISPLAY_PX), "Grid columns", "Each grid column averaged over its regions, left to right; common scale.", colorbar_label=unit)
    g.add(
        "vbse_grid_rows_individual.png",
        montage(rows_img[:, None], scale="individual", max_px=DISPLAY_PX),
        "Grid rows, individual scales",
        "Each grid row image stretched on its own.",
    )
    g.add(
        "vbse_grid_cols_individual.png",
        montage(cols_img[None], scale="individual", max_px=DISPLAY_PX),
        "Grid columns, individual scales",
        "Each grid column image stretched on its own.",
    )
    names = ", ".join(f"({i}, {j})" for i, j in regions)
    g.add(
        "rgb.png",
        rgb_image(vbse_map, regions=regions, n_std=n_std),
        "Colour virtual BSE",
        f"Red, green, blue = regions {names} (grid row, grid col); each channel spans its median +- {n_std:g} standard deviations. "
        "Grains of different orientation take different colours.",
    )
    if gr >= 2:
        g.add(
            "rgb_differential.png",
            differential_rgb_image(vbse_map, n_std=n_std),
            "Differential colour",
            f"Red, green, blue = left, middle, right ratio of grid row {gr - 1} to grid row {gr - 2}: the slow change of the "
            "background down the detector cancels.",
        )
    g.add(
        "asymmetry_left_right.png",
        asymmetry(cols_img[0], cols_img[-1]),
        "Asymmetry left / right",
        "(a - b) / (a + b) of the leftmost (a) and rightmost (b) grid column.",
        colorbar_label="(a - b) / (a + b)",
        cmap="viridis",
    )
    g.add(
        "asymmetry_top_bottom.png",
        asymmetry(rows_img[0], rows_img[-1]),
        "Asymmetry top / bottom",
        "(a - b) / (a + b) of the top (a) and bottom (b) grid row.",
        colorbar_label="(a - b) / (a + b)",
        cmap="viridis",
    )
    for name, com in (("raw", maps.com_raw), ("kikuchi", maps.com_kikuchi)):
        if com is None:
            continue
        what = "raw patterns" if name == "raw" else "Kikuchi signal (pattern / background)"
        cx, cy = g.fix(com[..., 0]), g.fix(com[..., 1])
        g.add(f"com_{name}_x.png", cx, f"Centre of mass x, {name}", f"Column of the intensity centre of mass of the {what}.", colorbar_label="x (pixels)", cmap="viridis")
        g.add(f"com_{name}_y.png", cy, f"Centre of mass y, {name}", f"Row of the intensity centre of mass of the {what}.", colorbar_label="y (pixels)", cmap="viridis")
        g.add(
            f"com_{name}_shaded.png",
            hillshade(np.stack([cx, cy], axis=-1)),
            f"Centre of mass, shaded, {name}",
            "Hill-shading of the centre-of-mass shift read as a surface slope, lit from the upper left: topography.",
        )
    diodes = np.stack([[g.fix(maps.diodes[:, :, i, j]) for j in range(3)] for i in range(2)])
    g.add(
        "diodes.png",
        montage(diodes, max_px=DISPLAY_PX),
        "Virtual forward-scatter diodes",
        "Top row: strip at the top of the detector, bottom row: strip at the bottom; left, middle, right. Mean raw intensity.",
        colorbar_label="mean intensity (counts)",
    )
    for i, strip in enumerate(("top", "bottom")):
        g.add(
            f"diodes_{strip}_rgb.png",
            np.stack([normalise_channel(diodes[i, j], n_std=n_std) for j in range(3)], axis=-1),
            f"Diodes {strip}, colour",
            f"Red, green, blue = left, middle, right diode of the {strip} strip, each around its median +- {n_std:g} std.",
        )
    if region_pngs:
        for i in range(gr):
            for j in range(gc):
                g.add(f"region_{i}_{j}.png", vbse[i, j], f"Region ({i}, {j})", f"Grid row {i}, grid column {j}.", colorbar_label=unit)
    return g.images


def _vbse_notes(maps: VbseMaps, remove_gradient: bool) -> list[str]:
    notes = [
        f"Source: {maps.settings.get('source', '?')} ({maps.settings.get('dataset', '?')}), "
        f"patterns {maps.pattern_shape[0]} x {maps.pattern_shape[1]}, map step {maps.step_um[0]:g} x {maps.step_um[1]:g} µm.",
        f"Signal of the virtual BSE array: {maps.signal}. Arrays: vbse.h5.",
    ]
    if remove_gradient:
        notes.append("Scan-line drifts removed from every image (one straight line fitted and subtracted per map row).")
    return notes


def write_quality_gallery(maps: QualityMaps, directory: str | os.PathLike, *, remove_gradient: bool = False) -> Path:
    """Write ``quality.h5``, the quality map PNGs and ``index.html`` into ``directory`` (all or nothing, as :func:`write_vbse_gallery`)."""
    directory = Path(directory)
    with atomic_directory(directory) as tmp:
        _write_quality_gallery(maps, tmp, remove_gradient=remove_gradient)
    return directory / "index.html"


def _write_quality_gallery(maps: QualityMaps, directory: Path, *, remove_gradient: bool) -> Path:
    with _Gallery(directory, maps.step_um, remove_gradient, source=str(maps.settings.get("source", "the map"))) as g:
        g.submit(save_quality_h5, maps, directory / "quality.h5")
        g.add("iq.png", g.fix(maps.iq), "Image quality", f"Krieger Lassen's Q from the FFT spectrum of the {maps.signal} patterns (0: noise, 1: strong bands).", colorbar_label="image quality Q")
        g.add("adp.png", g.fix(maps.adp), "Neighbour dot product", f"Mean normalised dot product with the 4 nearest neighbours ({maps.signal} patterns): low at boundaries.", colorbar_label="dot product")
        g.add("mean.png", g.fix(maps.mean), "Mean", "Mean intensity of each raw pattern.", colorbar_label="mean intensity (counts)")
        g.add("std.png", g.fix(maps.std), "Standard deviation", "Standard deviation of the intensity of each raw pattern.", colorbar_label="std (counts)")
    notes = [f"Source: {maps.settings.get('source', '?')}; map step {maps.step_um[0]:g} x {maps.step_um[1]:g} µm. Arrays: quality.h5."]
    return write_index_html(directory, g.images, title="Pattern quality maps", notes=notes)
