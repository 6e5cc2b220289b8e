"""Virtual BSE region means, diodes and total BSE against brute-force definitions."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.imaging import diode_array, parse_grid, region_weights, strip_weights, total_bse, vbse_array


def brute_force_region_means(pattern: np.ndarray, gr: int, gc: int) -> np.ndarray:
    """Mean of each region by an explicit loop over pixels and their covered area."""
    h, w = pattern.shape
    out = np.zeros((gr, gc))
    rh, cw = h / gr, w / gc
    for i in range(gr):
        for j in range(gc):
            top, bottom, left, right = i * rh, (i + 1) * rh, j * cw, (j + 1) * cw
            total = 0.0
            area = 0.0
            for r in range(h):
                dy = min(r + 1, bottom) - max(r, top)
                if dy <= 0:
                    continue
                for c in range(w):
                    dx = min(c + 1, right) - max(c, left)
                    if dx <= 0:
                        continue
                    total += pattern[r, c] * dx * dy
                    area += dx * dy
            assert area == pytest.approx(rh * cw)
            out[i, j] = total / area
    return out


@pytest.mark.parametrize(("shape", "grid"), [((60, 61), (7, 7)), ((13, 9), (5, 4)), ((4, 3), (9, 7)), ((10, 10), (1, 1))])
def test_vbse_equals_brute_force_region_mean(rng, shape, grid):
    patterns = rng.integers(0, 256, size=(2, 3, *shape), dtype=np.uint8)
    vbse = vbse_array(patterns, grid=grid)
    assert vbse.shape == (2, 3, *grid)
    for r in range(2):
        for c in range(3):
            np.testing.assert_allclose(vbse[r, c], brute_force_region_means(patterns[r, c].astype(float), *grid), rtol=1e-12)


def test_vbse_is_the_weight_matrix_product(rng):
    patterns = rng.normal(100, 20, size=(5, 60, 61)).astype(np.float32)
    wr, wc = region_weights(60, 7), region_weights(61, 7)
    expected = wr @ patterns.astype(np.float64) @ wc.T
    np.testing.assert_allclose(vbse_array(patterns, grid="7x7"), expected, rtol=1e-6)
    u16 = rng.integers(0, 65535, size=(3, 60, 61), dtype=np.uint16)
    np.testing.assert_allclose(vbse_array(u16, grid=(7, 7)), wr @ u16.astype(np.float64) @ wc.T, rtol=1e-12)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "uint64", "float32", "float64"])
def test_every_pattern_dtype(rng, dtype):
    patterns = rng.integers(0, 200, size=(2, 9, 11)).astype(dtype)
    expected = region_weights(9, 4) @ patterns.astype(np.float64) @ region_weights(11, 3).T
    np.testing.assert_allclose(vbse_array(patterns, grid=(4, 3)), expected, rtol=1e-12)


def test_region_weights_cover_each_pixel_once():
    w = region_weights(61, 7)
    # every pixel is shared out completely: sum over regions of (weight * region length) == 1
    np.testing.assert_allclose((w * 61 / 7).sum(axis=0), 1.0)
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert (np.count_nonzero(w, axis=0) <= 2).all()


def test_constant_pattern_gives_constant_regions():
    vbse = vbse_array(np.full((3, 17, 23), 42, dtype=np.uint8), grid=(4, 6))
    np.testing.assert_allclose(vbse, 42.0)


def test_single_pattern_and_grid_forms():
    p = np.arange(20.0).reshape(4, 5)
    assert vbse_array(p, grid=1).shape == (1, 1, 1)
    np.testing.assert_allclose(vbse_array(p, grid="2x1")[0, :, 0], [np.mean(p[:2]), np.mean(p[2:])])
    assert parse_grid("7X5") == (7, 5)
    assert parse_grid([3, 2]) == (3, 2)


@pytest.mark.parametrize(
    ("grid", "message"),
    [("7y7", "expected ROWSxCOLS"), ((0, 3), "two positive region counts"), ((1, 2, 3), "two positive region counts")],
)
def test_bad_grid(grid, message):
    with pytest.raises(ValueError, match=message):
        vbse_array(np.zeros((1, 4, 4)), grid=grid)


def test_bad_patterns():
    with pytest.raises(ValueError, match=r"patterns must be \(h, w\)"):
        vbse_array(np.zeros(5))
    with pytest.raises(ValueError, match="integer or float, got dtype <U1"):
        vbse_array(np.full((2, 4, 4), "a"))
    with pytest.raises(ValueError, match=r"patterns of shape \(2, 4, 0\) have no pixel"):
        vbse_array(np.zeros((2, 4, 0)))
    # boolean patterns are intensities 0 and 1
    binary = np.zeros((1, 4, 4), dtype=bool)
    binary[0, :, :2] = True
    assert vbse_array(binary, grid=(1, 2)).tolist() == [[[1.0, 0.0]]]
    with pytest.raises(ValueError, match="outside 0..4 pixels"):
        strip_weights(4, [(0, 5)])


def test_diodes_are_strip_means(rng):
    p = rng.random((4, 40, 30))
    d = diode_array(p, strip=0.1)
    assert d.shape == (4, 2, 3)
    np.testing.assert_allclose(d[:, 0, 0], p[:, :4, :10].mean(axis=(1, 2)))
    np.testing.assert_allclose(d[:, 1, 2], p[:, -4:, 20:].mean(axis=(1, 2)))
    np.testing.assert_allclose(d[:, 1, 1], p[:, -4:, 10:20].mean(axis=(1, 2)))
    with pytest.raises(ValueError, match=r"must be a fraction of the pattern height in \(0, 0.5\]"):
        diode_array(p, strip=0.7)


def test_total_bse(rng):
    p = rng.integers(0, 255, size=(2, 3, 6, 7), dtype=np.uint8)
    np.testing.assert_allclose(total_bse(p), p.mean(axis=(2, 3)))
    np.testing.assert_allclose(total_bse(p, mode="sum"), p.sum(axis=(2, 3), dtype=np.float64))
    with pytest.raises(ValueError, match="expected 'mean' or 'sum'"):
        total_bse(p, mode="median")
