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
