"""Neighbour pattern averaging on real Ni patterns against a direct loop."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.process import average_neighbours, neighbour_weights


def direct_npa(patterns, have, n, w):
    rows, cols = have.shape
    out = np.zeros(patterns.shape)
    for r in range(rows):
        for c in range(cols):
            if not have[r, c]:
                continue
            acc, total = 0.0, 0.0
            for i in range(-n, n + 1):
                for j in range(-n, n + 1):
                    rr, cc = r + i, c + j
                    if 0 <= rr < rows and 0 <= cc < cols and have[rr, cc]:
                        acc = acc + w[i + n, j + n] * patterns[rr, cc].astype(float)
                        total += w[i + n, j + n]
            out[r, c] = acc / total
    return out


@pytest.mark.parametrize("weights", ["flat", "gaussian"])
def test_equals_direct_loop_with_a_gap(nickel, weights):
    patterns, _ = nickel
    have = np.ones((3, 3), bool)
    have[0, 2] = False
    got = average_neighbours(patterns, n=1, weights=weights, have=have)
    ref = direct_npa(patterns, have, 1, neighbour_weights(1, weights=weights))
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    assert not got[0, 2].any()
    if weights == "flat":  # the centre of a flat 3x3 window is the plain mean of the 8 patterns present
        np.testing.assert_allclose(got[1, 1], patterns[have].astype(float).mean(axis=0), rtol=1e-5)


def test_storage_order_input_and_noise_reduction(nickel, rng):
    patterns, _ = nickel
    flat = patterns.reshape(9, 60, 60)
    index_map = np.arange(9).reshape(3, 3)[:, ::-1].copy()  # stored column-reversed
    stored = flat[index_map.ravel().argsort()]  # stored[index_map[r, c]] is the pattern at (r, c)
    got = average_neighbours(stored, n=1, index_map=index_map)
    direct = average_neighbours(patterns, n=1)
    np.testing.assert_allclose(got[index_map[1, 2]], direct[1, 2])
    # averaging identical noisy patterns reduces noise by about 1/sqrt(N)
    noisy = 100 + rng.normal(0, 10, (5, 5, 8, 8))
    avg = average_neighbours(noisy, n=1)
    assert avg[2, 2].std() < 0.5 * noisy[2, 2].std()


def test_bad_inputs(nickel):
    patterns, _ = nickel
    with pytest.raises(ValueError, match=r"patterns must be a map \(rows, cols, h, w\) or \(N, h, w\) with index_map; got shape \(9, 60, 60\)"):
        average_neighbours(patterns.reshape(9, 60, 60))
    with pytest.raises(ValueError, match="averaging window half-width n must be an integer >= 0, got -1"):
        average_neighbours(patterns, n=-1)
    with pytest.raises(ValueError, match="weights must be 'flat' or 'gaussian'; got 'box'"):
        average_neighbours(patterns, weights="box")


def test_one_point_by_rows_and_cols_equals_the_whole_map():
    rng = np.random.default_rng(5)
    patterns = rng.integers(0, 4000, (5, 7, 6, 8)).astype(np.uint16)
    have = np.ones((5, 7), dtype=bool)
    have[1, 2] = have[3, 5] = False
    full = average_neighbours(patterns, n=2, have=have)
    # integer patterns are summed as they are, with the same result as after a float32 cast
    np.testing.assert_array_equal(full, average_neighbours(patterns.astype(np.float32), n=2, have=have))
    for r, c in [(0, 0), (2, 3), (4, 6), (3, 4)]:
        one = average_neighbours(patterns, n=2, have=have, rows=(r, r + 1), cols=(c, c + 1))
        assert one.shape == (1, 1, 6, 8)
        np.testing.assert_array_equal(one[0, 0], full[r, c])
    block = average_neighbours(patterns, n=1, have=have, rows=(1, 4), cols=(2, 6))
    np.testing.assert_array_equal(block, average_neighbours(patterns, n=1, have=have)[1:4, 2:6])
    with pytest.raises(ValueError, match=r"rows 0:1 and cols 5:9 must lie within the map \(5, 7\)"):
        average_neighbours(patterns, n=1, rows=(0, 1), cols=(5, 9))
    with pytest.raises(ValueError, match="cols applies to"):
        average_neighbours(patterns.reshape(35, 6, 8), n=1, index_map=np.arange(35).reshape(5, 7), cols=(0, 1))
