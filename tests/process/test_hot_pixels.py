"""Hot pixels of a real detector: the average pattern of the ocean map."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.process import find_hot_pixels, partition_static_background, remove_hot_pixels


def test_hot_pixels_of_the_ocean_detector(ocean):
    _, bg = ocean
    hot = find_hot_pixels(bg)
    assert 10 < hot.sum() < 200  # a few dozen pixels of 76,800
    assert hot[152, 229]  # the strongest one (+35 above its neighbours)
    cleaned = remove_hot_pixels(bg, mask=hot)
    small_before = partition_static_background(bg, sigma=5.0)[1]
    small_after = partition_static_background(cleaned, sigma=5.0)[1]
    assert small_before.max() > 30 and small_after.max() < 0.3 * small_before.max()
    np.testing.assert_array_equal(cleaned[~hot], bg[~hot])


def test_per_pattern_search_and_dead_pixels(rng):
    img = rng.normal(100.0, 5.0, (40, 40))
    img[5, 7], img[20, 30] = 400.0, 0.0
    out = remove_hot_pixels(img)
    assert out[5, 7] < 120 and out[20, 30] == 0.0
    out = remove_hot_pixels(img[None], dead=True)[0]
    assert out[20, 30] > 80
    assert np.count_nonzero(out != img) == 2


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"hot pixel mask of shape \(3, 3\) does not fit patterns of shape \(4, 4\)"):
        remove_hot_pixels(np.ones((4, 4)), mask=np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="threshold must be > 0, got 0"):
        find_hot_pixels(np.ones((4, 4)), threshold=0)
