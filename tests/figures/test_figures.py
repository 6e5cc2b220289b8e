"""Figures: PNG map images with scale bar and colour bar, IPF/phase/Euler colours."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.figures import (
    euler_rgb,
    ipf_colours,
    ipf_key_image,
    ipf_rgb,
    nice_scale_bar_um,
    phase_colours,
    phase_rgb,
    render_map_image,
    save_map_image,
)
from kikuchi.io.orientation_map import PhaseInfo

NI = PhaseInfo(1, "Ni", lattice_angstrom=(3.524,) * 3, space_group=225)
TI = PhaseInfo(2, "Ti", lattice_angstrom=(2.951, 2.951, 4.684), angles_deg=(90, 90, 120), space_group=194)


def _png_size(path):
    from PIL import Image

    with Image.open(path) as im:
        return im.format, im.size


def test_save_map_image_png_with_colour_bar(tmp_path, rng):
    image = np.ma.masked_less(rng.random((40, 60)), 0.1)
    out = save_map_image(image, tmp_path / "bc.png", step_um=0.15, title="BC", colorbar_label="band contrast")
    fmt, (w, h) = _png_size(out)
    assert fmt == "PNG" and w > h > 100
    assert not (tmp_path / ".bc.png.partial").exists()


def test_figure_parts(rng):
    fig = render_map_image(rng.random((20, 30)), step_um=(0.5, 0.5), colorbar_label="MAD (°)")
    assert len(fig.axes) == 2  # map and colour bar
    assert fig.axes[1].get_ylabel() == "MAD (°)"
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["2 µm"]  # 15 µm wide: a 2 µm bar (1, 2, 5 x 10^k near a fifth of the width)
    no_bar = render_map_image(rng.random((20, 30)), step_um=1.0)
    assert len(no_bar.axes) == 1
    rgb = render_map_image(rng.random((20, 30, 3)), step_um=1.0, colorbar_label="ignored for RGB")
    assert len(rgb.axes) == 1
    legend = render_map_image(np.zeros((4, 4, 3)), step_um=1.0, legend=[("Ni", (1, 0, 0)), ("Ti", (0, 1, 0))])
    assert [t.get_text() for t in legend.axes[0].get_legend().get_texts()] == ["Ni", "Ti"]
    small = render_map_image(np.zeros((10, 10)), step_um=0.01)
    assert [t.get_text() for t in small.axes[0].texts] == ["20 nm"]


def test_a_map_reaches_matplotlib_as_the_pixels_of_its_axes(rng):
    """A 3000 x 5000 map (15 million points) in a 600-pixel figure: matplotlib gets the 360 x 600 RGBA pixels its
    axes cover, each the colour of the map point under the pixel's centre (the colour scale of the whole map);
    its extent and scale bar stay the map's."""
    from matplotlib import colormaps

    image = rng.random((3000, 5000)).astype(np.float32)
    image[0, 0], image[1499, -1] = -1.0, 3.0  # the scale's ends, at points no pixel shows
    image[1500:, :] = np.nan
    fig = render_map_image(image, step_um=0.1, colorbar_label="x")
    drawn = fig.axes[0].images[0].get_array()
    assert drawn.shape == (360, 600, 4) and drawn.dtype == np.uint8
    gray = colormaps["gray"]
    for i, j in [(0, 0), (17, 421), (179, 599)]:
        value = image[int((i + 0.5) * 3000 / 360), int((j + 0.5) * 5000 / 600)]
        np.testing.assert_array_equal(drawn[i, j], gray((value + 1.0) / 4.0, bytes=True))
    np.testing.assert_array_equal(drawn[180:, :], np.broadcast_to([0, 0, 0, 255], (180, 600, 4)))  # NaN: black
    assert fig.axes[0].images[0].get_extent() == [0.0, 500.0, 300.0, 0.0]
    assert [t.get_text() for t in fig.axes[0].texts] == ["100 µm"]
    assert fig.axes[1].get_ylim() == (-1.0, 3.0)  # the colour bar: the whole map's range


def test_a_map_with_a_legend_is_drawn_from_a_subsample(rng):
    """Laid out by matplotlib (a legend): the map reaches it as every 3rd point of a 3000 x 5000 map."""
    image = rng.random((3000, 5000, 3)).astype(np.float32)
    fig = render_map_image(image, step_um=0.1, legend=[("Ni", (1, 0, 0))])
    drawn = fig.axes[0].images[0].get_array()
    assert drawn.shape == (1000, 1667, 3)
    np.testing.assert_array_equal(drawn[1, 2], image[3, 6])
    assert fig.axes[0].images[0].get_extent() == [0.0, 500.0, 300.0, 0.0]
    small = render_map_image(image[:100, :200], step_um=0.1, legend=[("Ni", (1, 0, 0))])
    assert small.axes[0].images[0].get_array().shape == (100, 200, 3)


def test_drawn_pixels_are_the_png(tmp_path, rng):
    """save_map_image writes the pixels draw_map_image drew: RGB, the figure's size at its dpi."""
    from PIL import Image

    from kikuchi.figures.map_image import draw_map_image

    image = rng.random((40, 60))
    pixels = draw_map_image(image, step_um=1.0, title="t", colorbar_label="c", dpi=50)
    out = save_map_image(image, tmp_path / "a.png", step_um=1.0, title="t", colorbar_label="c", dpi=50)
    with Image.open(out) as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), pixels)
    assert pixels.shape == (round((0.45 + 4.0 + 0.05) * 50), round((0.05 + 6.0 + 1.25) * 50), 3)


def test_no_pyplot_state_is_left(tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    save_map_image(np.zeros((5, 5)), tmp_path / "z.png", step_um=1.0, colorbar_label="zero")
    assert plt.get_fignums() == before


def test_bad_images(tmp_path):
    with pytest.raises(ValueError, match=r"image must be \(rows, cols\) or \(rows, cols, 3\|4\), got shape \(5,\)"):
        save_map_image(np.zeros(5), tmp_path / "a.png", step_um=1.0)
    with pytest.raises(ValueError, match="step_um must be positive"):
        save_map_image(np.zeros((5, 5)), tmp_path / "a.png", step_um=0.0)
    with pytest.raises(ValueError, match="map width must be positive"):
        nice_scale_bar_um(0.0)
    assert not (tmp_path / "a.png").exists()


def test_ipf_colours_of_cubic_directions():
    # identity: [001] || z red; [100] || x red too; a 45° turn about x puts [011] || z: green
    assert ipf_colours(np.zeros((1, 3)), NI, "z")[0] == pytest.approx([1, 0, 0], abs=1e-6)
    assert ipf_colours(np.zeros((1, 3)), NI, "x")[0] == pytest.approx([1, 0, 0], abs=1e-6)
    green = ipf_colours(np.radians([[0.0, 45.0, 0.0]]), NI, "z")[0]
    assert green == pytest.approx([0, 1, 0], abs=0.01)  # orix key: 0.005 red left at the [101] corner
    # [111] || z: blue (the crystal direction along sample z is (sin phi2 sin Phi, cos phi2 sin Phi, cos Phi))
    blue = ipf_colours(np.array([[0.0, np.arccos(1 / np.sqrt(3)), np.pi / 4]]), "m-3m", "z")[0]
    assert blue == pytest.approx([0, 0, 1], abs=0.01)


def test_ipf_colours_agree_with_orix(rng):
    from orix.plot import IPFColorKeyTSL
    from orix.quaternion import Orientation
    from orix.vector import Vector3d

    euler = rng.uniform(0, 1, (50, 3)) * [2 * np.pi, np.pi, 2 * np.pi]
    ori = Orientation.from_euler(euler, symmetry=TI.to_orix().point_group)
    expected = IPFColorKeyTSL(ori.symmetry, direction=Vector3d.yvector()).orientation2color(ori)
    assert np.allclose(ipf_colours(euler, TI, "y"), expected)
    assert np.allclose(ipf_colours(ori, TI, "y"), expected)


def test_ipf_rgb_of_a_two_phase_map(rng):
    euler = rng.uniform(0, 1, (3, 4, 3))
    pid = np.array([[1, 1, 0, 2], [2, 2, 1, 1], [0, 0, 1, 2]])
    rgb = ipf_rgb(euler, pid, [NI, TI], direction="z")
    assert rgb.shape == (3, 4, 3)
    assert np.all(rgb[pid == 0] == 0)
    assert np.allclose(rgb[pid == 2], ipf_colours(euler[pid == 2], TI, "z"))
    dict_phases = [NI.to_map_phase(), TI.to_map_phase()]
    assert np.allclose(ipf_rgb(euler, pid, dict_phases), rgb)


def test_ipf_key_image():
    key = ipf_key_image("m-3m", size=200)
    assert key.ndim == 3 and key.shape[2] == 4
    alpha = key[..., 3]
    assert 0 < alpha.mean() < 1  # the sector and transparent surroundings
    colours = key[alpha > 0, :3]
    for corner in ([1, 0, 0], [0, 1, 0], [0, 0, 1]):
        assert np.min(np.linalg.norm(colours - corner, axis=1)) < 0.15
    with pytest.raises(ValueError, match="IPF direction must be 'x', 'y', 'z' or a vector"):
        ipf_colours(np.zeros((1, 3)), NI, "w")


def test_phase_and_euler_colours():
    colours = phase_colours([NI, TI])
    assert colours[0] == (0.0, 0.0, 0.0) and colours[1] != colours[2]
    rgb, legend = phase_rgb(np.array([[1, 2], [0, 1]]), [NI, TI])
    assert rgb[0, 0].tolist() == list(colours[1]) and rgb[1, 0].tolist() == [0, 0, 0]
    assert [label for label, _ in legend] == ["not indexed", "Ni", "Ti"]
    e = euler_rgb(np.array([[np.pi, np.pi / 2, np.pi / 2]]), np.array([1]))
    assert e[0] == pytest.approx([0.5, 0.5, 0.25])
    assert euler_rgb(np.ones((1, 3)), np.array([0]))[0].tolist() == [0, 0, 0]


def test_ipf_colours_in_blocks_equal_one_block(rng, monkeypatch):
    """Large maps are coloured block by block (bounded memory): the blocks, split anywhere, give the same colours."""
    from orix.quaternion import Rotation

    from kikuchi.figures import colours

    euler = rng.random((2500, 3)) * [2 * np.pi, np.pi, 2 * np.pi]
    whole = ipf_colours(euler, "m-3m")
    monkeypatch.setattr(colours, "_IPF_BLOCK", 999)
    np.testing.assert_array_equal(ipf_colours(euler, "m-3m"), whole)
    np.testing.assert_allclose(ipf_colours(Rotation.from_euler(euler), "m-3m"), whole, atol=1e-12)
    assert ipf_colours(np.zeros((0, 3)), "m-3m").shape == (0, 3)
