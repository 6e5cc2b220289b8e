"""Base maps (file datasets, orientations, computed images) and the band overlay of the explorer."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

import kikuchi
from kikuchi.bands import detect_bands
from kikuchi.explore import MapSource, explore
from kikuchi.explore.layers import render
from kikuchi.explore.source import PatternQuery, RequestError
from kikuchi.figures import ipf_rgb
from kikuchi.imaging import quality_maps, rgb_image, vbse_map
from kikuchi.io.orientation_map import OrientationMap

from .conftest import NAV_SHAPE, get, synthetic_patterns, write_map

NI = {"name": "Ni", "space_group": 225, "lattice": [0.35236, 0.35236, 0.35236, 90.0, 90.0, 90.0]}


def png_array(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)))


@pytest.fixture(scope="module")
def small_patterns():
    return synthetic_patterns((3, 4), (60, 60), seed=3)


@pytest.fixture(scope="module")
def euler_grid():
    rng = np.random.default_rng(5)
    euler = rng.uniform(0, 1, (3, 4, 3)) * np.array([2 * np.pi, np.pi / 2, 2 * np.pi])
    return euler


def test_orientations_in_the_map_file_give_ipf_and_phase_maps(tmp_path, small_patterns, euler_grid):
    path = tmp_path / "oriented.h5"
    euler = euler_grid.copy()
    euler[0, 0] = np.nan  # not indexed
    with kikuchi.MapWriter(path, nav_shape=(3, 4), pattern_shape=(60, 60), dtype="uint16") as w:
        w.write_rows(0, small_patterns)
        w.set_euler(euler)
        w.set_phases([NI])
    with MapSource(path) as source:
        names = list(source.layers)
        assert names[:1] == ["bse"] and {"ipf-z", "ipf-x", "ipf-y", "phase", "vbse", "iq", "adp"} <= set(names)
        png, meta = source.map_png("ipf-z")
        image = png_array(png)
        assert image.shape == (3, 4, 4)  # RGBA: the point without orientation is transparent
        assert image[0, 0, 3] == 0 and (image[1:, :, 3] == 255).all()
        phase_id = np.ones((3, 4), int)
        phase_id[0, 0] = 0
        with kikuchi.open(path) as m:
            expected = ipf_rgb(m.euler, phase_id, m.phases, direction="z")
        np.testing.assert_allclose(image[1:, :, :3], np.rint(expected[1:] * 255), atol=1)
        _, meta = source.map_png("phase")
        assert meta["legend"] == [{"value": 0, "label": "not indexed", "colour": "#000000"}, {"value": 1, "label": "Ni", "colour": "#e63946"}]
        assert source.info()["orientations"] == "oriented.h5 (Euler angles)"


def test_orientation_map_file_adds_its_columns(tmp_path, small_patterns, euler_grid):
    path = write_map(tmp_path / "plain.h5", small_patterns, static_background=False)
    bc = np.arange(12, dtype=float).reshape(3, 4) * 10
    mad = np.linspace(0.1, 1.2, 12).reshape(3, 4)
    omap = OrientationMap.from_arrays(euler=euler_grid, phases=[{"id": 1, **NI}], step_um=(0.5, 0.25), columns={"bc": bc, "mad": mad, "bands": np.full((3, 4), 8)})
    ctf = omap.write(tmp_path / "indexed.ctf")
    with explore(path, orientations=ctf) as ex:
        info = json.loads(get(ex.url + "api/info")[2])
        labels = {m["name"]: m["label"] for m in info["maps"]}
        assert labels["omap:bc"] == "band contrast" and labels["omap:mad"] == "MAD (°)" and "ipf-z" in labels
        assert info["orientations"] == "indexed.ctf"
        status, headers, body = get(ex.url + "api/map?name=omap:bc")
        assert status == 200
        grey = png_array(body)
        assert grey.shape == (3, 4) and grey[0, 0] < grey[1, 1] < grey[2, 3]
        assert json.loads(headers["X-Map-Info"])["vmin"] == pytest.approx(np.percentile(bc, 0.5))


def test_orientation_map_of_another_grid_is_refused(tmp_path, small_patterns, euler_grid):
    path = write_map(tmp_path / "plain.h5", small_patterns, static_background=False)
    omap = OrientationMap.from_arrays(euler=euler_grid[:2], phases=[{"id": 1, **NI}])
    ctf = omap.write(tmp_path / "other.ctf")
    with pytest.raises(ValueError, match=r"other.ctf: orientation map of square grid \(2, 4\) does not match the pattern map's 3 x 4 points"):
        MapSource(path, orientations=ctf)


def test_computed_images_equal_the_imaging_api(map_file):
    with MapSource(map_file) as source:
        image = png_array(source.map_png("vbse")[0])
        iq_png, iq_meta = source.map_png("iq")
        with kikuchi.open(map_file) as m:
            colour = rgb_image(vbse_map(m, grid=(7, 7), progress=False))
            iq = quality_maps(m, progress=False).iq
        np.testing.assert_allclose(image, np.rint(colour * 255), atol=1)
        assert png_array(iq_png).shape == NAV_SHAPE
        assert iq_meta["vmin"] == pytest.approx(np.percentile(iq, 0.5)) and iq_meta["vmax"] == pytest.approx(np.percentile(iq, 99.5))


def test_render_categorical_and_flat_maps():
    png, meta = render(np.array([[1.0, 2.0], [np.nan, 1.0]]), "categorical", classes={1: "a"})
    assert [item["label"] for item in meta["legend"]] == ["a", "2"]
    assert png_array(png).shape == (2, 2, 4)
    png, meta = render(np.full((2, 2), 3.0), "scalar")
    assert (png_array(png) == 128).all() and meta == {"vmin": 3.0, "vmax": 3.0}


def test_bands_overlay_equals_detect_bands(explorer, map_file):
    status, _, body = get(explorer.url + "api/bands?row=2&col=3&signal=processed&n_bands=6")
    assert status == 200
    answer = json.loads(body)
    with kikuchi.open(map_file) as m:
        from kikuchi.process import process_patterns

        pattern = process_patterns(m.pattern(2, 3), "detailed", static_background=m.static_background)
    bands = detect_bands(pattern, n_bands=6)
    assert answer["shape"] == [240, 240] and len(answer["bands"]) == len(bands) == 6
    ends = bands.endpoints(pattern.shape)
    for got, e, t in zip(answer["bands"], ends, bands.theta):
        assert [got["x0"], got["y0"], got["x1"], got["y1"]] == pytest.approx(e.tolist())
        assert got["theta_deg"] == pytest.approx(np.degrees(t))
    for query, message in (("api/bands?row=2&col=3&n_bands=0", "n_bands=0: detect 1..30 bands"), ("api/bands?row=9&col=3", "outside the 6 x 8 map")):
        status, _, body = get(explorer.url + query)
        assert status in (400, 404) and message in json.loads(body)["error"]


def test_bands_request_checks_its_count(map_file):
    with MapSource(map_file) as source, pytest.raises(RequestError, match="n_bands=31: detect 1..30 bands"):
        source.bands(PatternQuery(row=0, col=0), n_bands=31)


def test_ipf_colour_key(tmp_path, small_patterns, euler_grid):
    path = tmp_path / "oriented.h5"
    with kikuchi.MapWriter(path, nav_shape=(3, 4), pattern_shape=(60, 60), dtype="uint16") as w:
        w.write_rows(0, small_patterns)
        w.set_euler(euler_grid)
        w.set_phases([NI])
    with explore(path) as ex:
        info = json.loads(get(ex.url + "api/info")[2])
        ipf = next(m for m in info["maps"] if m["name"] == "ipf-z")
        assert ipf["ipf_keys"] == [{"phase": 1, "name": "Ni"}]
        status, headers, body = get(ex.url + "api/ipf-key?phase=1")
        assert status == 200 and headers["Content-Type"] == "image/png"
        key = png_array(body)
        assert key.ndim == 3 and key.shape[2] == 4 and (key[..., 3] == 0).any() and (key[..., 3] == 255).any()
        # the [001] corner of the cubic sector is red
        opaque = key[..., 3] == 255
        assert (key[opaque][:, 0] > 200).any()
        for query, status_code, message in (("phase=2", 404, "phase=2: no such phase (the orientations have [1])"), ("phase=x", 400, "is not an integer")):
            status, _, body = get(ex.url + "api/ipf-key?" + query)
            assert status == status_code and message in json.loads(body)["error"]


def test_orientation_map_object_from_python(tmp_path, small_patterns, euler_grid):
    path = write_map(tmp_path / "plain.h5", small_patterns, static_background=False)
    omap = OrientationMap.from_arrays(euler=euler_grid, phases=[{"id": 1, **NI}], columns={"ci": np.linspace(0, 1, 12)})
    with MapSource(path, orientations=omap) as source:
        assert {"ipf-z", "phase", "omap:ci"} <= set(source.layers)
        assert source.info()["orientations"] == "orientation map"
        np.testing.assert_allclose(source.orientations.euler, euler_grid)


def test_map_values_for_the_readout(explorer):
    status, headers, body = get(explorer.url + "api/map-values?name=data:MAD")
    assert status == 200 and headers["X-Map-Shape"] == "6,8"
    values = np.frombuffer(body, dtype="<f4").reshape(6, 8)
    np.testing.assert_allclose(values.ravel(), np.linspace(0.2, 1.5, 48), rtol=1e-6)
    for query, code, message in (
        ("name=vbse", 404, "base map 'vbse' is a colour image: it has no values"),
        ("name=nothing", 404, "no base map 'nothing'"),
        ("name=data:MAD&x=1", 400, "unknown parameter 'x'"),
    ):
        status, _, body = get(explorer.url + "api/map-values?" + query)
        assert status == code and message in json.loads(body)["error"]
