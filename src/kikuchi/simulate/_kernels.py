"""numba kernels of the simulation: square Lambert mapping, master pattern sampling, projection.

Private; the public wrappers live in :mod:`kikuchi.simulate.lambert`,
:mod:`kikuchi.simulate.master` and :mod:`kikuchi.simulate.projection`.

The square Lambert projection is EMsoft's (Roşca 2010; Callahan & De Graef
2013): a unit vector (x, y, z) maps to the square coordinates (X, Y) in
[-1, 1] (already divided by sqrt(pi/2)); the master pattern array of side
``n`` holds the point (X, Y) at row ``(Y + 1) * (n - 1) / 2`` and column
``(X + 1) * (n - 1) / 2``. Vectors with z >= 0 use the northern array.
"""

from __future__ import annotations

import math

import numba
import numpy as np

_SQRT_PI = math.sqrt(math.pi)
_SQRT_PI_HALF = math.sqrt(math.pi / 2.0)


@numba.njit(nogil=True, cache=True)
def _lambert_xy(x: float, y: float, z: float) -> tuple[float, float]:
    """Square Lambert (X, Y) in [-1, 1] of a unit vector (either hemisphere)."""
    az = abs(z)
    if az >= 1.0:
        return 0.0, 0.0
    q = math.sqrt(2.0 * (1.0 - az))
    if abs(y) <= abs(x):
        s = 1.0 if x >= 0.0 else -1.0
        big = s * q * (_SQRT_PI / 2.0)
        small = s * q * (2.0 / _SQRT_PI) * math.atan(y / x)
        return big / _SQRT_PI_HALF, small / _SQRT_PI_HALF
    s = 1.0 if y >= 0.0 else -1.0
    big = s * q * (_SQRT_PI / 2.0)
    small = s * q * (2.0 / _SQRT_PI) * math.atan(x / y)
    return small / _SQRT_PI_HALF, big / _SQRT_PI_HALF


@numba.njit(nogil=True, cache=True)
def _lambert_vector(bx: float, by: float) -> tuple[float, float, float]:
    """Unit vector of the northern hemisphere at square Lambert (X, Y) in [-1, 1]."""
    xi = bx * _SQRT_PI_HALF
    yi = by * _SQRT_PI_HALF
    ax = abs(xi)
    ay = abs(yi)
    if ax == 0.0 and ay == 0.0:
        return 0.0, 0.0, 1.0
    if ax <= ay:
        q = 2.0 * yi * math.sqrt(max(math.pi - yi * yi, 0.0)) / math.pi
        qq = xi * math.pi * 0.25 / yi
        vx, vy, vz = q * math.sin(qq), q * math.cos(qq), 1.0 - 2.0 * yi * yi / math.pi
    else:
        q = 2.0 * xi * math.sqrt(max(math.pi - xi * xi, 0.0)) / math.pi
        qq = yi * math.pi * 0.25 / xi
        vx, vy, vz = q * math.cos(qq), q * math.sin(qq), 1.0 - 2.0 * xi * xi / math.pi
    norm = math.sqrt(vx * vx + vy * vy + vz * vz)
    return vx / norm, vy / norm, vz / norm


@numba.njit(nogil=True, cache=True)
def lambert_grid(size: int) -> np.ndarray:
    """(2, size, size, 3) unit vectors of the square Lambert grid, [0] north, [1] south."""
    out = np.empty((2, size, size, 3))
    half = (size - 1) / 2.0
    for i in range(size):
        by = (i - half) / half if size > 1 else 0.0
        for j in range(size):
            bx = (j - half) / half if size > 1 else 0.0
            vx, vy, vz = _lambert_vector(bx, by)
            out[0, i, j, 0] = vx
            out[0, i, j, 1] = vy
            out[0, i, j, 2] = vz
            out[1, i, j, 0] = vx
            out[1, i, j, 1] = vy
            out[1, i, j, 2] = -vz
    return out


@numba.njit(nogil=True, cache=True)
def vectors_to_lambert(v: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hemisphere (0 north, 1 south), row, col (float) of each (n, 3) unit vector."""
    n = v.shape[0]
    hemi = np.empty(n, dtype=np.int8)
    rows = np.empty(n)
    cols = np.empty(n)
    half = (size - 1) / 2.0
    for k in range(n):
        x, y, z = v[k, 0], v[k, 1], v[k, 2]
        norm = math.sqrt(x * x + y * y + z * z)
        x /= norm
        y /= norm
        z /= norm
        bx, by = _lambert_xy(x, y, z)
        hemi[k] = 0 if z >= 0.0 else 1
        rows[k] = (by + 1.0) * half
        cols[k] = (bx + 1.0) * half
    return hemi, rows, cols


@numba.njit(nogil=True, cache=True, inline="always")
def _bilinear(mp: np.ndarray, r: float, c: float) -> float:
    n = mp.shape[0]
    r0 = int(math.floor(r))
    c0 = int(math.floor(c))
    if r0 < 0:
        r0 = 0
    if c0 < 0:
        c0 = 0
    if r0 > n - 2:
        r0 = n - 2
    if c0 > n - 2:
        c0 = n - 2
    dr = r - r0
    dc = c - c0
    if dr < 0.0:
        dr = 0.0
    if dr > 1.0:
        dr = 1.0
    if dc < 0.0:
        dc = 0.0
    if dc > 1.0:
        dc = 1.0
    return (
        mp[r0, c0] * (1.0 - dr) * (1.0 - dc)
        + mp[r0, c0 + 1] * (1.0 - dr) * dc
        + mp[r0 + 1, c0] * dr * (1.0 - dc)
        + mp[r0 + 1, c0 + 1] * dr * dc
    )


@numba.njit(nogil=True, cache=True, inline="always")
def _sample_one(north: np.ndarray, south: np.ndarray, x: float, y: float, z: float) -> float:
    half = (north.shape[0] - 1) / 2.0
    bx, by = _lambert_xy(x, y, z)
    r = (by + 1.0) * half
    c = (bx + 1.0) * half
    if z >= 0.0:
        return _bilinear(north, r, c)
    return _bilinear(south, r, c)


@numba.njit(nogil=True, cache=True)
def sample_master(north: np.ndarray, south: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear master pattern intensity at each (n, 3) vector (normalised here)."""
    n = v.shape[0]
    out = np.empty(n, dtype=np.float32)
    for k in range(n):
        x, y, z = v[k, 0], v[k, 1], v[k, 2]
        norm = math.sqrt(x * x + y * y + z * z)
        out[k] = _sample_one(north, south, x / norm, y / norm, z / norm)
    return out


@numba.njit(nogil=True, cache=True)
def project_pc_one(north: np.ndarray, south: np.ndarray, m: np.ndarray, pc: np.ndarray, out: np.ndarray) -> None:
    """One pattern (h, w) for the detector-to-crystal matrix ``m`` and Bruker PC ``pc``.

    The detector-frame vector of pixel (r, c) is (c + 0.5 - PCx w, PCy h - r - 0.5, DD h).
    """
    h, w = out.shape
    x0 = 0.5 - pc[0] * w
    y0 = pc[1] * h - 0.5
    zd = pc[2] * h
    for r in range(h):
        yd = y0 - r
        bx = m[0, 1] * yd + m[0, 2] * zd
        by = m[1, 1] * yd + m[1, 2] * zd
        bz = m[2, 1] * yd + m[2, 2] * zd
        for c in range(w):
            xd = x0 + c
            vx = m[0, 0] * xd + bx
            vy = m[1, 0] * xd + by
            vz = m[2, 0] * xd + bz
            norm = math.sqrt(vx * vx + vy * vy + vz * vz)
            out[r, c] = _sample_one(north, south, vx / norm, vy / norm, vz / norm)


@numba.njit(nogil=True, cache=True)
def project_pc_many(north: np.ndarray, south: np.ndarray, m: np.ndarray, pcs: np.ndarray, pc_index: np.ndarray, out: np.ndarray) -> None:
    """Patterns i = 0..n-1 with matrices m[i] (detector -> crystal) and PCs pcs[pc_index[i]] into out (n, h, w)."""
    for i in range(m.shape[0]):
        project_pc_one(north, south, m[i], pcs[pc_index[i]], out[i])
