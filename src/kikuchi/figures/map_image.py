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

__all__ = ["nice_scale_bar_um", "render_map_image", "save_map_image"]

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
) -> Any:
    """The figure of :func:`save_map_image` (a matplotlib ``Figure`` on an Agg canvas)."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch, Rectangle
    from matplotlib.patheffects import withStroke

    img = np.ma.asanyarray(image)
    if img.ndim == 3 and img.shape[2] in (3, 4):
        rgb = True
    elif img.ndim == 2:
        rgb = False
    else:
        raise ValueError(f"image must be (rows, cols) or (rows, cols, 3|4), got shape {img.shape}")
    rows, cols = img.shape[:2]
    if rows == 0 or cols == 0:
        raise ValueError(f"image is empty (shape {img.shape})")
    img = _drawn_pixels(img)
    sy, sx = _steps(step_um)
    width_um, height_um = cols * sx, rows * sy

    aspect = height_um / width_um
    fixed = legend is None and key_image is None  # laid out here, drawn once (no bbox_inches='tight')
    if fixed:
        # inches: the map 6 wide (or 14 high), a title band above, a colour bar and its labels to the right
        map_w = 6.0
        map_h = map_w * aspect
        if map_h > 14.0:
            map_w, map_h = 14.0 / aspect, 14.0
        map_h = max(map_h, 0.3)  # a map of a few rows: drawn stretched, still visible
        bar = colorbar_label is not None and not rgb
        pad, top = 0.05, (0.45 if title else 0.05)
        right = 1.25 if bar else pad
        fig_w, fig_h = pad + map_w + right, top + map_h + pad
        fig = Figure(figsize=(fig_w, fig_h), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((pad / fig_w, pad / fig_h, map_w / fig_w, map_h / fig_h))
        cax = fig.add_axes(((pad + map_w + 0.15) / fig_w, pad / fig_h, 0.18 / fig_w, map_h / fig_h)) if bar else None
    else:
        side = True
        fig_w = 6.0
        fig_h = float(np.clip(fig_w * aspect, 1.2, 14.0)) + (0.4 if title else 0.0)
        fig = Figure(figsize=(fig_w + (1.8 if side else 0.0), fig_h), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        cax = None
    extent = (0.0, width_um, height_um, 0.0)
    if rgb:
        data = np.ma.getdata(img)
        if np.issubdtype(data.dtype, np.floating):
            data = np.clip(np.nan_to_num(data), 0.0, 1.0)
        im = ax.imshow(data, extent=extent, interpolation="nearest", aspect="auto" if fixed else "equal")
    else:
        colour_map = colormaps[cmap].with_extremes(bad=bad_colour)
        values = np.ma.masked_invalid(img.astype(np.float64))
        im = ax.imshow(values, extent=extent, cmap=colour_map, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="auto" if fixed else "equal")
    ax.set_axis_off()
    if title and fixed:  # placed in its band: ax.set_title would measure every tick of the axes to place it
        fig.text((pad + map_w / 2) / fig_w, 1.0 - 0.08 / fig_h, title, ha="center", va="top", fontsize="large")
    elif title:
        ax.set_title(title)
    if scale_bar:
        length = nice_scale_bar_um(width_um)
        bar_h = max(height_um * 0.015, sy * 0.5)
        x0, y0 = width_um * 0.04, height_um * 0.96 - bar_h
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
    fig = render_map_image(
        image, step_um=step_um, title=title, cmap=cmap, colorbar_label=colorbar_label, vmin=vmin, vmax=vmax,
        legend=legend, key_image=key_image, key_label=key_label, bad_colour=bad_colour, scale_bar=scale_bar,
    )
    path = Path(path)
    laid_out = legend is None and key_image is None  # render_map_image placed everything: one draw
    with atomic_output(path) as tmp:
        # PNG level 3: a third of the time of the default level for files a few % larger
        fig.savefig(tmp, format="png", dpi=dpi, pil_kwargs={"compress_level": 3}, **({} if laid_out else {"bbox_inches": "tight", "pad_inches": 0.05}))
    _logger.info("wrote %s", path)
    return path
