"""Centre of mass of pattern intensities and hill-shading."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.imaging import centre_of_mass, hillshade, pattern_moments


def blob_pattern(h: int = 48, w: int = 56) -> np.ndarray:
    """A smooth, asymmetric intensity blob that is zero near the borders."""
    y, x = np.mgrid[:h, :w].astype(float)
    p = 200 * np.exp(-((x - 25.3) ** 2 / 40 + (y - 21.7) ** 2 / 25)) + 80 * np.exp(-((x - 30) ** 2 + (y - 26) ** 2) / 10)
    p[p < 1.0] = 0  # compact support: rolling by up to 6 pixels wraps nothing
    return p


def test_shifted_copies_give_the_shifts(rng):
    base = blob_pattern()
    shifts = rng.integers(-6, 7, size=(4, 5, 2))  # (dx, dy) per map point
    patterns = np.empty((4, 5, *base.shape))
    for r in range(4):
        for c in range(5):
            dx, dy = shifts[r, c]
            patterns[r, c] = np.roll(base, (dy, dx), axis=(0, 1))
    com = centre_of_mass(patterns)
    assert com.shape == (4, 5, 2)
    x0, y0 = centre_of_mass(base)[0]
    np.testing.assert_allclose(com - [x0, y0], shifts, atol=1e-9)


def test_centre_of_mass_definition(rng):
    p = rng.random((3, 9, 11))
    y, x = np.mgrid[:9, :11]
    expected = np.stack([(p * x).sum(axis=(1, 2)) / p.sum(axis=(1, 2)), (p * y).sum(axis=(1, 2)) / p.sum(axis=(1, 2))], axis=1)
    np.testing.assert_allclose(centre_of_mass(p), expected)
    m = pattern_moments(p)
    np.testing.assert_allclose(m[:, 0], p.mean(axis=(1, 2)))
    np.testing.assert_allclose(m[:, 1], p.std(axis=(1, 2)))


def test_negative_signal_is_offset_and_empty_pattern_is_nan():
    p = np.zeros((2, 3, 3))
    p[0] = -1.0
    p[0, 0, 2] = 1.0  # after subtracting the minimum only this pixel weighs
    assert centre_of_mass(p)[0].tolist() == [2.0, 0.0]
    assert np.isnan(centre_of_mass(p)[1]).all()


def test_hillshade_lights_slopes_facing_the_light():
    com = np.zeros((3, 3, 2))
    com[0, 0] = (-1.0, -1.0)
    com[2, 2] = (1.0, 1.0)
    shade = hillshade(com, azimuth_deg=315, altitude_deg=45, scale=1.0)
    flat = np.sin(np.radians(45))
    assert shade[1, 1] == pytest.approx(flat)
    # normal (1, 1, 1)/sqrt3 for gradient (-1, -1); light from the NW = (-x, -y): faces away
    assert shade[0, 0] < flat < shade[2, 2]
    assert shade.min() >= 0 and shade.max() <= 1


def test_hillshade_bad_shape():
    with pytest.raises(ValueError, match=r"must be \(rows, cols, 2\)"):
        hillshade(np.zeros((3, 3)))
