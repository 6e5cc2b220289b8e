"""Images from virtual BSE arrays: regions, rows, colour, differential, asymmetry, line drifts."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.imaging import (
    asymmetry,
    block_mean,
    differential_array,
    differential_rgb_image,
    grid_col_images,
    grid_row_images,
    montage,
    normalise_channel,
    region_image,
    remove_line_gradient,
    rgb_image,
    vbse_array,
)
from tests.conftest import shared_file


def test_grid_row_and_col_images(rng):
    vbse = rng.random((4, 5, 3, 7))
    rows, cols = grid_row_images(vbse), grid_col_images(vbse)
    assert rows.shape == (3, 4, 5) and cols.shape == (7, 4, 5)
    np.testing.assert_allclose(rows[1], vbse[:, :, 1, :].mean(axis=-1))
    np.testing.assert_allclose(cols[6], vbse[:, :, :, 6].mean(axis=-1))
    np.testing.assert_array_equal(region_image(vbse, (2, 3)), vbse[:, :, 2, 3])
    with pytest.raises(IndexError, match=r"region \(3, 0\) is outside the 3 x 7 grid"):
        region_image(vbse, (3, 0))


def test_montage_tiles_and_scales(rng):
    images = rng.random((2, 3, 4, 5)) * 10
    m = montage(images, gap=2)
    assert m.shape == (2 * 4 + 2, 3 * 5 + 4)
    np.testing.assert_array_equal(m[6:10, 7:12], images[1, 1])
    assert np.isnan(m[4:6]).all()
    ind = montage(images, scale="individual", percentiles=(0, 100))
    assert np.nanmin(ind) == 0 and np.nanmax(ind) == 1
    with pytest.raises(ValueError, match="expected 'common' or 'individual'"):
        montage(images, scale="global")


def test_block_mean_averages_blocks_without_missing_points():
    image = np.arange(30.0).reshape(5, 6)
    image[0, 0] = np.nan
    out = block_mean(image, 2)
    assert out.shape == (3, 3)  # the bottom blocks hold one row
    assert out[0, 0] == pytest.approx((1 + 6 + 7) / 3)  # the NaN left out
    assert out[1, 2] == pytest.approx(image[2:4, 4:6].mean())
    np.testing.assert_allclose(out[2], [24.5, 26.5, 28.5])
    assert np.isnan(block_mean(np.full((2, 2), np.nan), 2)).all()
    assert block_mean(image, 1) is not None and np.array_equal(block_mean(image, 1), image, equal_nan=True)
    with pytest.raises(ValueError, match="factor must be >= 1"):
        block_mean(image, 0)


def test_montage_of_large_tiles_fits_max_px_with_its_gaps(rng):
    """A 3 x 2 grid of 100 x 160 images in at most 120 pixels: tiles averaged by 3 x 3 blocks, gaps kept."""
    images = rng.random((3, 2, 100, 160))
    m = montage(images, max_px=120)
    assert max(m.shape) <= 120
    assert m.shape == (3 * 34 + 2, 2 * 54 + 1)
    np.testing.assert_allclose(m[:34, :54], block_mean(images[0, 0], 3))
    np.testing.assert_allclose(m[35:69, 55:], block_mean(images[1, 1], 3))
    assert np.isnan(m[34]).all() and np.isnan(m[:, 54]).all()
    assert montage(images, max_px=10_000).shape == montage(images).shape  # small enough: full size
    with pytest.raises(ValueError, match="max_px must be >= 1"):
        montage(images, max_px=0)


def test_normalise_channel_centres_the_median():
    x = np.array([0.0, 1.0, 2.0, 3.0, 100.0, np.nan])
    out = normalise_channel(x, n_std=2.0)
    assert out[2] == pytest.approx(0.5)
    assert out[4] == 1.0 and np.isnan(out[5])
    with pytest.raises(ValueError, match="n_std must be > 0"):
        normalise_channel(x, n_std=0)


def test_rgb_image_channels_follow_regions(rng):
    vbse = rng.random((6, 7, 5, 5))
    rgb = rgb_image(vbse)
    assert rgb.shape == (6, 7, 3)
    np.testing.assert_allclose(rgb[..., 0], normalise_channel(vbse[:, :, 4, 0]))
    np.testing.assert_allclose(rgb[..., 1], normalise_channel(vbse[:, :, 4, 2]))
    np.testing.assert_allclose(rgb[..., 2], normalise_channel(vbse[:, :, 4, 4]))
    custom = rgb_image(vbse, regions=[(0, 0), (1, 1), (2, 2)])
    np.testing.assert_allclose(custom[..., 2], normalise_channel(vbse[:, :, 2, 2]))
    with pytest.raises(ValueError, match="need three regions"):
        rgb_image(vbse, regions=[(0, 0)])


def test_differential_images(rng):
    vbse = rng.random((3, 4, 5, 5)) + 1
    diff = differential_array(vbse)
    assert diff.shape == (3, 4, 4, 5)
    np.testing.assert_allclose(diff[..., 2, 3], vbse[..., 3, 3] / vbse[..., 2, 3])
    drgb = differential_rgb_image(vbse)
    np.testing.assert_allclose(drgb[..., 0], normalise_channel(vbse[..., 4, 0] / vbse[..., 3, 0]))
    with pytest.raises(ValueError, match="at least two rows"):
        differential_array(vbse[:, :, :1])


def test_asymmetry_bounds(rng):
    a, b = rng.random(50), rng.random(50)
    s = asymmetry(a, b)
    np.testing.assert_allclose(s, (a - b) / (a + b))
    assert np.all(np.abs(s) <= 1)


def test_remove_line_gradient_removes_scan_line_drifts(rng):
    truth = rng.normal(0, 1, (20, 30))
    drift = (np.arange(20)[:, None] * 0.7) + (rng.normal(0, 2, 20)[:, None] * np.linspace(-1, 1, 30)[None, :])
    cleaned = remove_line_gradient(truth + drift + 50)
    # each scan line is flat (no offset, no slope) around the common level
    slopes = np.polyfit(np.arange(30), cleaned.T, 1)[0]
    assert np.abs(slopes).max() < 1e-10
    assert np.corrcoef(cleaned.ravel(), truth.ravel())[0, 1] > 0.95
    assert np.nanmean(cleaned) == pytest.approx(np.mean(truth + drift + 50))
    with_nan = truth + drift
    with_nan[3, 4] = np.nan
    out = remove_line_gradient(with_nan, order=0)
    assert np.isnan(out[3, 4]) and np.isfinite(out[3, 5])
    assert remove_line_gradient(rng.random((4, 5, 3))).shape == (4, 5, 3)
    with pytest.raises(ValueError, match="expected 0, 1 or 2"):
        remove_line_gradient(truth, order=3)


def two_grain_map(rng, *, rows=8, cols=10, noise=2.0) -> tuple[np.ndarray, np.ndarray]:
    """Left half grain A, right half grain B: two real Ni patterns with Poisson-like noise."""
    import kikuchi

    with kikuchi.open(shared_file("kikuchipy/nickel_ebsd_small.h5")) as m:
        a, b = m.pattern(0, 0).astype(float), m.pattern(0, 1).astype(float)
    grain = np.zeros((rows, cols), dtype=int)
    grain[:, cols // 2 :] = 1
    patterns = np.where(grain[..., None, None] == 0, a, b) + rng.normal(0, noise, (rows, cols, *a.shape))
    return np.clip(patterns, 0, 255).astype(np.uint8), grain


def test_colour_image_separates_two_grains(rng):
    patterns, grain = two_grain_map(rng)
    rgb = rgb_image(vbse_array(patterns, grid=(7, 7)))
    mean_a, mean_b = rgb[grain == 0].mean(axis=0), rgb[grain == 1].mean(axis=0)
    spread = max(rgb[grain == 0].std(axis=0).max(), rgb[grain == 1].std(axis=0).max())
    # the two grains have clearly different colours, each grain is uniform
    assert np.linalg.norm(mean_a - mean_b) > 0.3
    assert spread < 0.2 * np.linalg.norm(mean_a - mean_b)
    # every point is nearer to its own grain's colour
    nearer_a = np.linalg.norm(rgb - mean_a, axis=-1) < np.linalg.norm(rgb - mean_b, axis=-1)
    np.testing.assert_array_equal(nearer_a, grain == 0)


@pytest.fixture(scope="module")
def simulated_two_grains(tmp_path_factory):
    """A synthetic 8 x 10 map of two grains (kikuchi.simulate, Ni, low noise) and its true grain ids."""
    import kikuchi

    path = kikuchi.simulate(tmp_path_factory.mktemp("sim") / "two.h5", shape=(8, 10), grains=2, noise="low", seed=5, progress=False)
    with kikuchi.open(path) as m:
        return path, m.read_all(), m.header["Truth/grain_id"][()]


def test_colour_image_separates_two_simulated_grains(simulated_two_grains):
    _, patterns, grain = simulated_two_grains
    assert set(np.unique(grain)) == {0, 1} and min((grain == 0).sum(), (grain == 1).sum()) >= 20
    rgb = rgb_image(vbse_array(patterns, grid=(7, 7)))
    mean_a, mean_b = rgb[grain == 0].mean(axis=0), rgb[grain == 1].mean(axis=0)
    spread = max(rgb[grain == 0].std(axis=0).max(), rgb[grain == 1].std(axis=0).max())
    assert np.linalg.norm(mean_a - mean_b) > 4 * spread
    nearer_a = np.linalg.norm(rgb - mean_a, axis=-1) < np.linalg.norm(rgb - mean_b, axis=-1)
    np.testing.assert_array_equal(nearer_a, grain == 0)


def test_neighbour_dot_product_marks_the_simulated_boundary(simulated_two_grains):
    import kikuchi
    from scipy import ndimage

    from kikuchi.imaging import quality_maps

    path, _, grain = simulated_two_grains
    with kikuchi.open(path) as m:
        q = quality_maps(m, progress=False, chunk_rows=3)
    boundary = ndimage.maximum_filter(grain, size=3) != ndimage.minimum_filter(grain, size=3)
    assert boundary.any()
    assert q.adp[boundary].max() < q.adp[~boundary].min() - 0.1
