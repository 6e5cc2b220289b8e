"""Map figures drawn straight into pixels: the PNGs of galleries and of :func:`save_map_image`.

The fixed layout of :func:`kikuchi.figures.render_map_image` (map 6 inches
wide, title band above, colour bar to the right, scale bar in the map),
painted with numpy and Pillow instead of a matplotlib ``Figure``:

* the map's pixels come from :func:`kikuchi.figures.map_image._raster`
  (nearest map point, one colour-table lookup);
* the colour bar uses matplotlib's colour tables and its tick locator and
  formatter (``MaxNLocator``, ``ScalarFormatter`` with its offset), so the
  numbers are the ones a matplotlib colour bar shows;
* text is DejaVu Sans (matplotlib's default font, from its data folder)
  rendered by Pillow's FreeType; the scale bar's length with a dark outline.

Why: a matplotlib figure of a map costs 40-45 ms to build and draw (its
axes, tick objects and text layout, all holding the GIL) and 0.3 s of
imports per command; a gallery of 17 maps spent longer drawing than
``kikuchi vbse`` spent computing (issue 11). Painting one takes about 3 ms.
Figures with a legend or a colour key are still laid out by matplotlib.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["paint_map_figure"]


@functools.lru_cache(maxsize=16)
def _font(size_px: int) -> Any:
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(f"{matplotlib.get_data_path()}/fonts/ttf/DejaVuSans.ttf", size_px)


def _nonsingular(lo: float, hi: float) -> tuple[float, float]:
    """The colour bar's range: ``lo, hi``, or a range around them when they are (nearly) one value (a constant map).

    >>> _nonsingular(0.0, 0.0), _nonsingular(5.0, 5.0), _nonsingular(1.0, 2.0)
    ((-0.1, 0.1), (4.5, 5.5), (1.0, 2.0))
    """
    if hi - lo > 1e-12 * max(abs(lo), abs(hi), 1e-300):
        return lo, hi
    if lo == 0.0:
        return -0.1, 0.1
    return lo - 0.1 * abs(lo), hi + 0.1 * abs(hi)


def _ticks(lo: float, hi: float, length_px: int) -> tuple[list[float], list[str], str]:
    """Tick values in [lo, hi], their labels and the offset text, as matplotlib's colour bar axis gives them."""
    from matplotlib.ticker import MaxNLocator, ScalarFormatter

    locator = MaxNLocator(nbins=max(2, min(9, length_px // 45)), steps=[1, 2, 2.5, 5, 10])
    span = hi - lo
    ticks = [float(t) for t in locator.tick_values(lo, hi) if lo - 1e-9 * span <= t <= hi + 1e-9 * span]
    formatter = ScalarFormatter()
    formatter.create_dummy_axis()
    formatter.axis.set_view_interval(lo, hi)
    formatter.axis.set_data_interval(lo, hi)
    formatter.set_locs(ticks)
    return ticks, [formatter(t, i) for i, t in enumerate(ticks)], formatter.get_offset()


def paint_map_figure(
    image: np.ndarray,
    *,
    step_um: float | Sequence[float],
    title: str | None = None,
    cmap: str = "gray",
    colorbar_label: str | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    bad_colour: Any = "black",
    scale_bar: bool = True,
    dpi: int = 100,
) -> np.ndarray:
    """The (rows, cols, 3) uint8 pixels of a map figure; arguments as :func:`kikuchi.figures.save_map_image`.

    Examples
    --------
    >>> pixels = paint_map_figure(np.arange(12.0).reshape(3, 4), step_um=1.0, title="t", colorbar_label="c")
    >>> pixels.shape, pixels.dtype.name
    ((500, 730, 3), 'uint8')
    """
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    from kikuchi.figures.map_image import _format_um, _layout_inches, _map_geometry, _raster, _scale_bar_um

    img, rgb, (sy, _), (height_um, width_um) = _map_geometry(image, step_um)
    bar = colorbar_label is not None and not rgb
    lay = _layout_inches(height_um / width_um, title=bool(title), bar=bar)
    px = lambda inches: int(round(inches * dpi))  # noqa: E731
    pt = dpi / 72.0  # pixels per point
    canvas = np.full((px(lay["fig_h"]), px(lay["fig_w"]), 3), 255, np.uint8)
    x0, y0 = px(lay["pad"]), px(lay["top"])  # the map's top left corner
    w, h = max(1, px(lay["map_w"])), max(1, px(lay["map_h"]))
    colour_map = None if rgb else colormaps[cmap].with_extremes(bad=bad_colour)
    pixels, norm = _raster(img, colour_map, vmin, vmax, (h, w))
    alpha = pixels[..., 3:4].astype(np.float32) / 255.0
    canvas[y0 : y0 + h, x0 : x0 + w] = (pixels[..., :3] * alpha + 255.0 * (1.0 - alpha) + 0.5).astype(np.uint8)
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    if title:
        draw.text((px(lay["pad"] + lay["map_w"] / 2), px(0.08)), title, fill="black", font=_font(round(12 * pt)), anchor="mt")
    if scale_bar:
        length, bx, by, bar_h = _scale_bar_um(width_um, height_um, sy)
        left, right = x0 + bx / width_um * w, x0 + (bx + length) / width_um * w
        top, bottom = y0 + by / height_um * h, y0 + (by + bar_h) / height_um * h
        draw.rectangle((round(left), round(top), round(right), max(round(top) + 2, round(bottom))), fill="white", outline="black", width=max(1, round(0.8 * pt)))
        draw.text(
            ((left + right) / 2, top - 0.01 * h), _format_um(length), fill="white", font=_font(round(10 * pt)),
            anchor="md", stroke_width=max(1, round(1.25 * pt)), stroke_fill="black",
        )  # fmt: skip
    if bar:
        lo, hi = _nonsingular(float(norm.vmin), float(norm.vmax))
        cx0, cw = px(lay["pad"] + lay["map_w"] + 0.15), max(2, px(0.18))
        table = colour_map(np.linspace(0.0, 1.0, colour_map.N), bytes=True)[:, :3]
        levels = ((np.arange(h)[::-1] + 0.5) / h * colour_map.N).astype(np.intp)  # top row: the highest value
        canvas_bar = np.broadcast_to(table[levels][:, None, :], (h, cw, 3))
        picture.paste(Image.fromarray(np.ascontiguousarray(canvas_bar)), (cx0, y0))
        line = max(1, round(0.8 * pt))
        draw.rectangle((cx0, y0, cx0 + cw - 1, y0 + h - 1), outline="black", width=line)
        font = _font(round(10 * pt))
        tick = round(3.5 * pt)
        ticks, labels, offset = _ticks(lo, hi, h)
        widest = 0.0
        for value, text in zip(ticks, labels):
            y = y0 + (h - 1) - (value - lo) / (hi - lo) * (h - 1)
            draw.line((cx0 + cw - 1, round(y), cx0 + cw - 1 + tick, round(y)), fill="black", width=line)
            draw.text((cx0 + cw + tick + round(3.5 * pt), y), text, fill="black", font=font, anchor="lm")
            widest = max(widest, draw.textlength(text, font=font))
        if offset:
            draw.text((cx0, y0 - round(4 * pt)), offset, fill="black", font=font, anchor="ld")
        if colorbar_label:
            size = draw.textbbox((0, 0), colorbar_label, font=font, anchor="lt")
            label = Image.new("L", (size[2] + 2, size[3] + 2), 0)
            ImageDraw.Draw(label).text((1, 1), colorbar_label, fill=255, font=font, anchor="lt")
            label = label.transpose(Image.Transpose.ROTATE_90)  # reads upwards
            lx = cx0 + cw + tick + round(3.5 * pt) + int(np.ceil(widest)) + round(4 * pt)
            ly = y0 + h // 2 - label.height // 2
            picture.paste(Image.new("RGB", label.size, (0, 0, 0)), (lx, max(0, ly)), label)
    return np.asarray(picture)
