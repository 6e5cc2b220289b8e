"""numba kernels of the crystal package: kinematical band intensities on the sphere.

Private; the public wrapper is :func:`kikuchi.simulate.kinematical.kinematical_master_pattern`.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def band_intensity(
    vectors: np.ndarray,
    normals: np.ndarray,
    theta: np.ndarray,
    edge: np.ndarray,
    weight: np.ndarray,
    line_depth: float,
    line_width: float,
    out: np.ndarray,
) -> None:
    """Sum of band profiles at unit vectors (m, 3) into ``out`` (m,).

    With x = asin(|n_i . v|) the angle of v from the plane of reflector i,
    its contribution is

        weight[i] * ( (1 + tanh((theta[i] - x) / edge[i])) / 2
                      - line_depth * exp(-((x - theta[i] - w) / w)^2 / 2) ),  w = line_width * edge[i],

    a band of half-width theta[i] with smooth edges, bordered outside by dark
    (deficiency) lines. Terms beyond theta + max(8, 6 line_width) edge are
    skipped (below 1e-7 of the weight).
    """
    n_ref = normals.shape[0]
    reach = np.empty(n_ref)
    for i in range(n_ref):
        reach[i] = math.sin(min(theta[i] + max(8.0, 6.0 * line_width) * edge[i], 0.5 * math.pi))
    for k in range(vectors.shape[0]):
        vx, vy, vz = vectors[k, 0], vectors[k, 1], vectors[k, 2]
        total = 0.0
        for i in range(n_ref):
            c = abs(normals[i, 0] * vx + normals[i, 1] * vy + normals[i, 2] * vz)
            if c >= reach[i]:
                continue
            x = math.asin(min(c, 1.0))
            value = 0.5 * (1.0 + math.tanh((theta[i] - x) / edge[i]))
            if line_depth != 0.0:
                w = line_width * edge[i]
                u = (x - theta[i] - w) / w
                value -= line_depth * math.exp(-0.5 * u * u)
            total += weight[i] * value
        out[k] = total
