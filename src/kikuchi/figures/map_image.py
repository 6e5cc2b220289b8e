"""Map images as PNG: a scale bar in µm, a colour bar, a legend or a colour key.

Figures are drawn on a private :class:`matplotlib.figure.Figure` with the Agg
canvas, never through ``pyplot``, so no global figure state is created or
left behind and nothing needs a display.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.io._atomic import atomic_output

__all__ = ["draw_map_image", "nice_scale_bar_um", "render_map_image", "save_map_image", "write_map_png"]

_logger = logging.getLogger(__name__)


def nice_scale_bar_um(width_um: float, *, fraction: float = 0.2) -> float:
    """A round scale bar length (1, 2 or 5 x 10^k µm) near ``fraction`` of the width.

    Examples
    --------
    >>> nice_scale_bar_um(29.4), nice_scale_bar_um(30.0), nice_scale_bar_um(0.9)
    (5.0, 5.0, 0.1)
    """
    if not width_um > 0:
        raise ValueError(f"map width must be positive, got {width_um} µm")
    target = width_um * fraction
    exponent = math.floor(math.log10(target))
    best = 1.0
    for mantissa in (1.0, 2.0, 5.0, 10.0):
        value = mantissa * 10.0**exponent
        if value <= target * 1.0000001:
            best = value
    return float(f"{best:.6g}")


def _format_um(length: float) -> str:
    return f"{length:g} µm" if length >= 1 or length == 0 else f"{length * 1000:g} nm"


def _steps(step_um: float | Sequence[float]) -> tuple[float, float]:
    if np.isscalar(step_um):
        sy = sx = float(step_um)  # type: ignore[arg-type]
    else:
        sy, sx = (float(v) for v in step_um)  # type: ignore[union-attr]
    if not (sy > 0 and sx > 0):
        raise ValueError(f"step_um must be positive, got {step_um}")
    return sy, sx


#: Largest side of the image handed to matplotlib: a map figure is about 600
#: pixels wide, and matplotlib resamples (and first copies and normalises in
#: float64) whatever it is given.
MAX_DRAWN_PX = 2400


def _drawn_pixels(img: np.ndarray) -> np.ndarray:
    """Every k-th row and column of an image larger than :data:`MAX_DRAWN_PX` (a view).

    What nearest-neighbour drawing shows of it anyway, without matplotlib
    copying the full image several times (a map of 2,000,000 points drawn in
    a 600-pixel figure).
    """
    step = -(-max(img.shape[0], img.shape[1]) // MAX_DRAWN_PX)
    return img[::step, ::step] if step > 1 else img


def _raster(img: np.ndarray, colour_map: Any, vmin: float | None, vmax: float | None, size: tuple[int, int]) -> tuple[np.ndarray, Any]:
    """(rows, cols, 4) uint8 RGBA of ``size`` showing ``img``, and the value image's ``Normalize`` (None for RGB).

    Each output pixel shows the map point under its centre (nearest
    neighbour, as ``imshow(interpolation='nearest')`` draws it); values are
    coloured with ``colour_map`` between ``vmin`` and ``vmax`` (default: the
    range of the finite, unmasked values of the whole map), masked and
    non-finite points in its "bad" colour. RGB(A) images: floats clipped to
    0..1 (NaN: 0), uint8 as they are.
    """
    from matplotlib.colors import Normalize

    rows, cols = img.shape[:2]
    out_rows, out_cols = size
    pick_r = np.minimum(((np.arange(out_rows) + 0.5) * (rows / out_rows)).astype(np.intp), rows - 1)
    pick_c = np.minimum(((np.arange(out_cols) + 0.5) * (cols / out_cols)).astype(np.intp), cols - 1)
    shown = img[pick_r[:, None], pick_c[None, :]]  # masked arrays keep their mask
    if colour_map is None:  # RGB(A)
        data = np.ma.getdata(shown)
        if np.issubdtype(data.dtype, np.floating):
            data = (np.clip(np.nan_to_num(data), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        else:
            data = data.astype(np.uint8, copy=False)
        if data.shape[2] == 3:
            data = np.concatenate([data, np.full((*data.shape[:2], 1), 255, np.uint8)], axis=2)
        return data, None
    if vmin is None or vmax is None:
        full = np.ma.masked_invalid(img)
        lo, hi = (float(full.min()), float(full.max())) if full.count() else (0.0, 1.0)
        vmin, vmax = (lo if vmin is None else vmin), (hi if vmax is None else vmax)
    norm = Normalize(vmin=vmin, vmax=vmax)
    values = np.ma.masked_invalid(shown.astype(np.float64))
    return colour_map(norm(values), bytes=True), norm


def _map_geometry(image: np.ndarray, step_um: float | Sequence[float]) -> tuple[np.ndarray, bool, tuple[float, float], tuple[float, float]]:
    """The image checked (a masked array view), whether it is RGB(A), the (row, col) step and the (height, width) in µm."""
    img = np.ma.asanyarray(image)
    rgb = img.ndim == 3 and img.shape[2] in (3, 4)
    if not rgb and img.ndim != 2:
        raise ValueError(f"image must be (rows, cols) or (rows, cols, 3|4), got shape {img.shape}")
    rows, cols = img.shape[:2]
    if rows == 0 or cols == 0:
        raise ValueError(f"image is empty (shape {img.shape})")
    sy, sx = _steps(step_um)
    return img, rgb, (sy, sx), (rows * sy, cols * sx)


def _scale_bar_um(width_um: float, height_um: float, row_step_um: float) -> tuple[float, float, float, float]:
    """The scale bar in map µm (x right, y down): length, left, top, height; its label sits 1 % of the height above it."""
    length = nice_scale_bar_um(width_um)
    bar_h = max(height_um * 0.015, row_step_um * 0.5)
    return length, width_um * 0.04, height_um * 0.96 - bar_h, bar_h


def _layout_inches(aspect: float, *, title: bool, bar: bool) -> dict[str, float]:
    """The fixed layout of a map figure, in inches: the map 6 wide (or 14 high), a title band above, a colour bar and its labels to the right.

    ``aspect`` is the map's height / width; keys: pad, top (the band above the map), map_w, map_h, fig_w, fig_h.
    """
    map_w = 6.0
    map_h = map_w * aspect
    if map_h > 14.0:
        map_w, map_h = 14.0 / aspect, 14.0
    map_h = max(map_h, 0.3)  # a map of a few rows: drawn stretched, still visible
    pad, top = 0.05, (0.45 if title else 0.05)
    right = 1.25 if bar else pad
    return {"pad": pad, "top": top, "map_w": map_w, "map_h": map_h, "fig_w": pad + map_w + right, "fig_h": top + map_h + pad}


def render_map_image(
    image: np.ndarray,
    *,
    step_um: float | Sequence[float],
    title: str | None = None,
    cmap: str = "gray",
    colorbar_label: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    legend: Sequence[tuple[str, Any]] | None = None,
    key_image: np.ndarray | None = None,
    key_label: str | None = None,
    bad_colour: Any = "black",
    scale_bar: bool = True,
    dpi: int = 100,
) -> Any:
    """The figure of :func:`save_map_image` (a matplotlib ``Figure`` on an Agg canvas, at ``dpi``).

    Without a legend or a colour key the layout is fixed here, and the map
    reaches matplotlib as the RGBA pixels its axes cover (:func:`_raster`):
    one nearest-neighbour pick of the points shown and one colour-table
    lookup, not matplotlib's float64 copy, normalisation and resampling of
    the whole map (40 of a figure's 75 ms for a 250 x 400 map, 380 ms for
    a 900 x 1400 montage with gaps).
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.patheffects import withStroke

    img, rgb, (sy, sx), (height_um, width_um) = _map_geometry(image, step_um)
    aspect = height_um / width_um
    fixed = legend is None and key_image is None  # laid out here, drawn once (no bbox_inches='tight')
    if fixed:
        bar = colorbar_label is not None and not rgb
        lay = _layout_inches(aspect, title=bool(title), bar=bar)
        pad, map_w, map_h, fig_w, fig_h = lay["pad"], lay["map_w"], lay["map_h"], lay["fig_w"], lay["fig_h"]
        fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((pad / fig_w, pad / fig_h, map_w / fig_w, map_h / fig_h))
        cax = fig.add_axes(((pad + map_w + 0.15) / fig_w, pad / fig_h, 0.18 / fig_w, map_h / fig_h)) if bar else None
    else:
        side = True
        fig_w = 6.0
        fig_h = float(np.clip(fig_w * aspect, 1.2, 14.0)) + (0.4 if title else 0.0)
        fig = Figure(figsize=(fig_w + (1.8 if side else 0.0), fig_h), dpi=dpi)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        cax = None
    extent = (0.0, width_um, height_um, 0.0)
    colour_map = None if rgb else colormaps[cmap].with_extremes(bad=bad_colour)
    if fixed:
        box = ax.get_window_extent()  # the axes' pixels: the layout above is final
        pixels, norm = _raster(img, colour_map, vmin, vmax, (max(1, round(box.height)), max(1, round(box.width))))
        ax.imshow(pixels, extent=extent, interpolation="nearest", aspect="auto")
        im = None if rgb else ScalarMappable(norm=norm, cmap=colour_map)
    elif rgb:
        data = np.ma.getdata(_drawn_pixels(img))
        if np.issubdtype(data.dtype, np.floating):
            data = np.clip(np.nan_to_num(data), 0.0, 1.0)
        im = ax.imshow(data, extent=extent, interpolation="nearest", aspect="equal")
    else:
        values = np.ma.masked_invalid(_drawn_pixels(img).astype(np.float64))
        im = ax.imshow(values, extent=extent, cmap=colour_map, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="equal")
    ax.set_axis_off()
    if title and fixed:  # placed in its band: ax.set_title would measure every tick of the axes to place it
        fig.text((pad + map_w / 2) / fig_w, 1.0 - 0.08 / fig_h, title, ha="center", va="top", fontsize="large")
    elif title:
        ax.set_title(title)
    if scale_bar:
        length, x0, y0, bar_h = _scale_bar_um(width_um, height_um, sy)
        ax.add_patch(Rectangle((x0, y0), length, bar_h, facecolor="white", edgecolor="black", linewidth=0.8))
        ax.text(
            x0 + length / 2, y0 - height_um * 0.01, _format_um(length), color="white", ha="center", va="bottom",
            fontsize=10, path_effects=[withStroke(linewidth=2.5, foreground="black")],
        )
    if cax is not None:
        fig.colorbar(im, cax=cax, label=colorbar_label)
    elif colorbar_label is not None and not rgb:
        fig.colorbar(im, ax=ax, label=colorbar_label, fraction=0.046, pad=0.02)
    if legend:
        handles = [Patch(facecolor=colour, edgecolor="black", label=str(label)) for label, colour in legend]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=9)
    if key_image is not None:
        kax = fig.add_axes((0.80, 0.35, 0.19, 0.3))
        kax.imshow(np.asarray(key_image), interpolation="nearest")
        kax.set_axis_off()
        if key_label:
            kax.set_title(key_label, fontsize=9)
        fig.subplots_adjust(left=0.02, right=0.78, top=0.92 if title else 0.98, bottom=0.02)
    return fig


def save_map_image(
    image: np.ndarray,
    path: str | os.PathLike,
    *,
    step_um: float | Sequence[float],
    title: str | None = None,
    cmap: str = "gray",
    colorbar_label: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    legend: Sequence[tuple[str, Any]] | None = None,
    key_image: np.ndarray | None = None,
    key_label: str | None = None,
    bad_colour: Any = "black",
    scale_bar: bool = True,
    dpi: int = 100,
) -> Path:
    """Save a map image as PNG with a scale bar in µm.

    Parameters
    ----------
    image
        (rows, cols) values (masked or NaN points drawn in ``bad_colour``)
        or (rows, cols, 3|4) RGB(A), floats in 0..1 or uint8.
    path
        Output PNG; written under a temporary name and renamed when complete.
    step_um
        Map step, one value or (row step, col step), in µm.
    title
        Title above the map.
    cmap
        Matplotlib colour map name for value images.
    colorbar_label
        Label of a colour bar (with the unit); no colour bar when None or for RGB.
    vmin, vmax
        Colour limits (default: data range).
    legend
        (label, colour) pairs, e.g. phase names and colours.
    key_image
        A colour key image (e.g. :func:`kikuchi.figures.ipf_key_image`) drawn beside the map.
    key_label
        Title of the key image.
    bad_colour
        Colour of masked/NaN points.
    scale_bar
        Draw the scale bar.
    dpi
        Resolution of the PNG.

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = save_map_image(np.random.default_rng(0).random((20, 30)),
    ...                      pathlib.Path(tempfile.mkdtemp()) / "bc.png",
    ...                      step_um=0.15, colorbar_label="band contrast")
    >>> out.read_bytes()[:4] == b"\\x89PNG"
    True
    """
    drawn = draw_map_image(
        image, step_um=step_um, title=title, cmap=cmap, colorbar_label=colorbar_label, vmin=vmin, vmax=vmax,
        legend=legend, key_image=key_image, key_label=key_label, bad_colour=bad_colour, scale_bar=scale_bar, dpi=dpi,
    )  # fmt: skip
    return write_map_png(drawn, path)


def draw_map_image(image: np.ndarray, *, dpi: int = 100, **kwargs: Any) -> Any:
    """The first half of :func:`save_map_image` (same arguments but the path): the figure drawn.

    Returns the (rows, cols, 3) uint8 pixels of the PNG when the layout is
    fixed (no legend, no colour key), painted by
    :func:`kikuchi.figures.raster.paint_map_figure` (the layout of
    :func:`render_map_image`, without a matplotlib figure), else the
    figure, to be saved with a tight bounding box. :func:`write_map_png` writes either; it needs no
    matplotlib for pixels, so it can run on another thread (PNG encoding
    and file writing release the GIL) while the next figure is drawn.
    """
    if kwargs.get("legend") is not None or kwargs.get("key_image") is not None:
        return render_map_image(image, dpi=dpi, **kwargs)
    from kikuchi.figures.raster import paint_map_figure

    return paint_map_figure(image, dpi=dpi, **{k: v for k, v in kwargs.items() if k not in ("legend", "key_image", "key_label")})


def write_map_png(drawn: Any, path: str | os.PathLike) -> Path:
    """Write what :func:`draw_map_image` returned as the PNG ``path`` (a temporary name renamed when complete)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        # PNG level 3 (1 for the drawn pixels: 13 against 17 ms for a map figure, 1 % larger): a third of
        # the time of the default level for files a few % larger
        if isinstance(drawn, np.ndarray):
            from PIL import Image

            Image.fromarray(drawn).save(tmp, format="png", compress_level=1)
        else:
            drawn.savefig(tmp, format="png", dpi=drawn.dpi, pil_kwargs={"compress_level": 3}, bbox_inches="tight", pad_inches=0.05)
    _logger.info("wrote %s", path)
    return path
