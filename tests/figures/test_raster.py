"""Map figures painted into pixels (kikuchi.figures.raster): the layout, colours and numbers of the matplotlib figure."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib import colormaps

from kikuchi.figures import render_map_image
from kikuchi.figures.raster import _nonsingular, _ticks, paint_map_figure


def test_the_same_size_and_map_pixels_as_the_matplotlib_figure(rng):
    image = rng.random((250, 400)) * 300 + 12000
    image[10:20, 300:320] = np.nan
    pixels = paint_map_figure(image, step_um=1.5, title="T", colorbar_label="counts")
    fig = render_map_image(image, step_um=1.5, title="T", colorbar_label="counts")
    fig.canvas.draw()
    assert pixels.shape == (*np.asarray(fig.canvas.buffer_rgba()).shape[:2], 3) == (425, 730, 3)
    drawn = fig.axes[0].images[0].get_array()  # the map's RGBA pixels, 375 x 600, at (5, 45) from the top left
    np.testing.assert_array_equal(pixels[45:45 + 300, 5:605], drawn[:300, :, :3])  # above the scale bar
    np.testing.assert_array_equal(pixels[45 + 15, 5 + 465], [0, 0, 0])  # NaN: the bad colour
    assert (pixels[:40, :] < 128).any() and not (pixels[:40, 620:] < 250).any()  # a title, centred over the map


def test_colour_bar_spans_the_map_range_with_matplotlibs_ticks(rng):
    image = rng.random((250, 400)) * 300 + 12000
    lo, hi = float(image.min()), float(image.max())
    pixels = paint_map_figure(image, step_um=1.5, colorbar_label="counts", cmap="viridis")
    bar = pixels[5 : 5 + 375, 5 + 600 + 15 + 9]  # the middle column of the bar
    viridis = colormaps["viridis"](np.linspace(0, 1, 256), bytes=True)[:, :3]
    rows = np.arange(2, 373)  # inside the frame: row r from the top shows entry (374 - r + 0.5) / 375 of the table
    np.testing.assert_array_equal(bar[rows], viridis[((374 - rows + 0.5) / 375 * 256).astype(int)])
    np.testing.assert_array_equal(bar[[0, -1]], 0)  # the frame
    ticks, labels, offset = _ticks(lo, hi, 375)
    fig = render_map_image(image, step_um=1.5, colorbar_label="counts", cmap="viridis")
    fig.canvas.draw()
    shown = [(t.get_position()[1], t.get_text()) for t in fig.axes[1].yaxis.get_ticklabels() if lo <= t.get_position()[1] <= hi]
    assert [text for _, text in shown] == labels and [value for value, _ in shown] == pytest.approx(ticks)
    assert labels == ["12050", "12100", "12150", "12200", "12250"] and offset == ""
    small = _ticks(-4e-5, 5e-5, 375)
    assert small[1][:3] == ["−4", "−2", "0"] and small[2] == "1e−5"  # matplotlib's minus sign and offset


def test_constant_rgba_and_no_title(rng):
    flat = paint_map_figure(np.full((20, 30), 7.0), step_um=1.0, colorbar_label="c")
    assert flat.shape == (round(0.05 * 100 + 400 + 5), 730, 3) and _nonsingular(7.0, 7.0) == (6.3, 7.7)
    assert not (flat[:4] < 250).any()  # no title band
    rgba = np.zeros((20, 30, 4))
    rgba[..., 0], rgba[..., 3] = 1.0, 0.5  # half-transparent red over the white figure
    pixels = paint_map_figure(rgba, step_um=1.0, scale_bar=False)
    np.testing.assert_array_equal(pixels[100, 300], [255, 127, 127])  # alpha 0.5 is 128 / 255 as a byte
    with pytest.raises(ValueError, match=r"image must be \(rows, cols\) or \(rows, cols, 3\|4\), got shape \(2, 2, 2\)"):
        paint_map_figure(np.zeros((2, 2, 2)), step_um=1.0)
