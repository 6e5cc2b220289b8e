"""numba kernels of the crystal package: kinematical band intensities on the sphere.

Private; the public wrapper is :func:`kikuchi.simulate.kinematical.kinematical_intensity`.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def band_intensity(
    vectors: np.ndarray, normals: np.ndarray, reach: np.ndarray, table: np.ndarray, block: int, out: np.ndarray
) -> None:
    """Sum of tabulated band profiles at unit vectors (m, 3) into ``out`` (m,).

    Reflector i contributes ``table[i]`` linearly interpolated at
    c = |n_i . v| on the grid ``c = reach[i] * j / (n_tab - 1)``, nothing where
    c >= reach[i] (the table holds the weight and ends at 0).

    Consecutive vectors are taken in blocks of ``block``: a reflector whose
    band cannot reach the cone around the block's mean direction that holds
    all of its vectors is skipped for the whole block. The result does not
    depend on the order of the vectors; the speed does (neighbours in the
    array should be neighbours on the sphere).
    """
    n_ref, n_tab = table.shape
    scale = np.empty(n_ref)
    reach_angle = np.empty(n_ref)
    for i in range(n_ref):
        scale[i] = (n_tab - 1) / reach[i]
        reach_angle[i] = math.asin(min(reach[i], 1.0))
    last = n_tab - 2
    active = np.empty(n_ref, dtype=np.int64)
    m = vectors.shape[0]
    for start in range(0, m, block):
        stop = min(start + block, m)
        # cone around the block: mean direction and largest angle to it
        cx, cy, cz = 0.0, 0.0, 0.0
        for k in range(start, stop):
            cx += vectors[k, 0]
            cy += vectors[k, 1]
            cz += vectors[k, 2]
        norm = math.sqrt(cx * cx + cy * cy + cz * cz)
        radius = math.pi
        if norm > 1e-12:
            cx, cy, cz = cx / norm, cy / norm, cz / norm
            lowest = 1.0
            for k in range(start, stop):
                d = vectors[k, 0] * cx + vectors[k, 1] * cy + vectors[k, 2] * cz
                lowest = min(lowest, d)
            radius = math.acos(max(-1.0, min(1.0, lowest))) + 1e-9
        n_active = 0
        for i in range(n_ref):
            limit = reach_angle[i] + radius
            if limit < 0.5 * math.pi:
                c = abs(normals[i, 0] * cx + normals[i, 1] * cy + normals[i, 2] * cz)
                if c >= math.sin(limit):
                    continue
            active[n_active] = i
            n_active += 1
        for k in range(start, stop):
            vx, vy, vz = vectors[k, 0], vectors[k, 1], vectors[k, 2]
            total = 0.0
            for a in range(n_active):
                i = active[a]
                c = abs(normals[i, 0] * vx + normals[i, 1] * vy + normals[i, 2] * vz)
                if c >= reach[i]:
                    continue
                pos = c * scale[i]
                j = min(int(pos), last)
                f = pos - j
                total += table[i, j] + f * (table[i, j + 1] - table[i, j])
            out[k] = total
