"""Map-level passes through the engine agree with the array functions."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.imaging import (
    centre_of_mass,
    diode_array,
    image_quality,
    kikuchi_signal,
    neighbour_dot_product,
    quality_maps,
    vbse_array,
    vbse_map,
    vbse_maps,
)
from kikuchi.imaging.maps import kikuchi_ratio


@pytest.fixture
def small_map(tmp_path, rng):
    path = tmp_path / "m.h5"
    y, x = np.mgrid[:30, :32]
    base = 100 + 60 * np.exp(-((x - 15) ** 2 + (y - 12) ** 2) / 80.0) + 20 * np.sin(x / 2.0)
    patterns = base + rng.normal(0, 5, (5, 6, 30, 32))
    with kikuchi.MapWriter(path, nav_shape=(5, 6), pattern_shape=(30, 32), dtype="uint8", step_um=(0.2, 0.3)) as w:
        w.write_rows(0, np.clip(patterns, 0, 255).astype(np.uint8))
        w.set_static_background(base.astype(np.float32))
    return path


def test_vbse_maps_equal_the_array_functions(small_map):
    with kikuchi.open(small_map) as m:
        patterns = m.read_all()
        maps = vbse_maps(m, grid=(4, 5), progress=False, chunk_rows=2, com_kikuchi=True)
        background = m.static_background
    assert maps.vbse.shape == (5, 6, 4, 5)
    np.testing.assert_allclose(maps.vbse, vbse_array(patterns, grid=(4, 5)))
    np.testing.assert_allclose(maps.bse, patterns.mean(axis=(2, 3)))
    np.testing.assert_allclose(maps.com_raw, centre_of_mass(patterns))
    np.testing.assert_allclose(maps.diodes, diode_array(patterns))
    kik, bg = kikuchi_signal(patterns.reshape(-1, 30, 32), static_background=background)
    np.testing.assert_allclose(maps.com_kikuchi, centre_of_mass(kikuchi_ratio(kik, bg)).reshape(5, 6, 2), rtol=1e-6)
    assert maps.step_um == pytest.approx((0.2, 0.3)) and maps.grid == (4, 5)


def test_vbse_signals_and_executors(small_map):
    with kikuchi.open(small_map) as m:
        patterns = m.read_all().reshape(-1, 30, 32)
        background = m.static_background
        serial = vbse_map(m, grid=3, signal="kikuchi", progress=False)
        threads = vbse_map(m, grid=3, signal="kikuchi", executor="threads", workers=2, progress=False, chunk_rows=1)
        smooth = vbse_maps(m, grid=3, signal="background", com_kikuchi=False, progress=False)
    assert serial.dtype == np.float32
    np.testing.assert_array_equal(serial, threads)
    kik, _ = kikuchi_signal(patterns, static_background=background)
    np.testing.assert_allclose(serial, vbse_array(kik, grid=3).reshape(5, 6, 3, 3), rtol=1e-5, atol=1e-6)
    _, bg = kikuchi_signal(patterns)
    np.testing.assert_allclose(smooth.vbse, vbse_array(bg, grid=3).reshape(5, 6, 3, 3), rtol=1e-5)
    assert smooth.com_kikuchi is None


def test_points_without_pattern_are_nan(small_map):
    with h5py.File(small_map, "r+") as f:
        index_map = f["Scan/EBSD/Header/indexmap"][()]
        index_map[2, 3] = -1
        f["Scan/EBSD/Header/indexmap"][...] = index_map
    with kikuchi.open(small_map) as m:
        maps = vbse_maps(m, progress=False, com_kikuchi=False)
        q = quality_maps(m, signal="raw", progress=False)
    assert np.isnan(maps.vbse[2, 3]).all() and np.isfinite(maps.vbse[2, 2]).all()
    assert np.isnan(q.iq[2, 3]) and np.isnan(q.adp[2, 3]) and np.isfinite(q.adp[2, 2])


def test_quality_maps_equal_the_array_functions(small_map):
    with kikuchi.open(small_map) as m:
        patterns = m.read_all()
        background = m.static_background
        q = quality_maps(m, progress=False, chunk_rows=2)
        raw = quality_maps(m, signal="raw", progress=False, chunk_rows=3)
    # default background width for quality: pattern width / 8
    kik = kikuchi_signal(patterns.reshape(-1, 30, 32), sigma=32 / 8, static_background=background)[0].reshape(patterns.shape)
    np.testing.assert_allclose(q.iq, image_quality(kik), rtol=1e-5)
    np.testing.assert_allclose(q.adp, neighbour_dot_product(kik), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(raw.adp, neighbour_dot_product(patterns), rtol=1e-9)
    np.testing.assert_allclose(q.mean, patterns.mean(axis=(2, 3)))
    np.testing.assert_allclose(q.std, patterns.std(axis=(2, 3)))


def test_bad_signal(small_map):
    with kikuchi.open(small_map) as m:
        with pytest.raises(ValueError, match="expected one of raw, kikuchi, background"):
            vbse_maps(m, signal="processed", progress=False)
        with pytest.raises(ValueError, match="expected one of raw, kikuchi, background"):
            quality_maps(m, signal="x", progress=False)
