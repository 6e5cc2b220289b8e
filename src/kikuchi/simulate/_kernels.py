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


# Abramowitz & Stegun 4.4.49: atan(t) = t (1 + a2 t^2 + ... + a16 t^16), |error| <= 2e-8 rad on |t| <= 1
_A2, _A4, _A6, _A8 = -0.3333314528, 0.1999355085, -0.1420889944, 0.1065626393
_A10, _A12, _A14, _A16 = -0.0752896400, 0.0429096138, -0.0161657367, 0.0028662257
_K_BIG = 1.0 / math.sqrt(2.0)  # (sqrt(pi) / 2) / sqrt(pi / 2)
_K_SMALL = 2.0 * math.sqrt(2.0) / math.pi  # (2 / sqrt(pi)) / sqrt(pi / 2)


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy", inline="always")
def _atan_unit(t: float) -> float:
    """atan(t) for |t| <= 1 by a polynomial (2e-8 rad), faster than math.atan."""
    t2 = t * t
    p = _A16
    p = p * t2 + _A14
    p = p * t2 + _A12
    p = p * t2 + _A10
    p = p * t2 + _A8
    p = p * t2 + _A6
    p = p * t2 + _A4
    p = p * t2 + _A2
    return t * (1.0 + p * t2)


@numba.njit(nogil=True, cache=True, fastmath=True, inline="always")
def _sample_one(north: np.ndarray, south: np.ndarray, vx: float, vy: float, vz: float) -> float:
    """Bilinear master pattern intensity in direction (vx, vy, vz) (any length > 0)."""
    n = north.shape[0]
    half = (n - 1) * 0.5
    inv = 1.0 / math.sqrt(vx * vx + vy * vy + vz * vz)
    az = abs(vz) * inv
    q = math.sqrt(max(2.0 * (1.0 - az), 0.0))
    ax = abs(vx)
    ay = abs(vy)
    if ax == 0.0 and ay == 0.0:
        bx = 0.0
        by = 0.0
    elif ay <= ax:
        s = q if vx >= 0.0 else -q
        bx = s * _K_BIG
        by = s * _K_SMALL * _atan_unit(vy / vx)
    else:
        s = q if vy >= 0.0 else -q
        bx = s * _K_SMALL * _atan_unit(vx / vy)
        by = s * _K_BIG
    r = (by + 1.0) * half
    c = (bx + 1.0) * half
    r0 = int(r)
    c0 = int(c)
    if r0 > n - 2:
        r0 = n - 2
    if c0 > n - 2:
        c0 = n - 2
    if r0 < 0:
        r0 = 0
    if c0 < 0:
        c0 = 0
    dr = min(max(r - r0, 0.0), 1.0)
    dc = min(max(c - c0, 0.0), 1.0)
    mp = north if vz >= 0.0 else south
    top = mp[r0, c0] + (mp[r0, c0 + 1] - mp[r0, c0]) * dc
    bottom = mp[r0 + 1, c0] + (mp[r0 + 1, c0 + 1] - mp[r0 + 1, c0]) * dc
    return top + (bottom - top) * dr


@numba.njit(nogil=True, cache=True)
def sample_master(north: np.ndarray, south: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear master pattern intensity at each (n, 3) vector (normalised here)."""
    n = v.shape[0]
    out = np.empty(n, dtype=np.float32)
    for k in range(n):
        x, y, z = v[k, 0], v[k, 1], v[k, 2]
        out[k] = _sample_one(north, south, x, y, z)
    return out


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def _row_to_lambert(
    m: np.ndarray, x0: float, yd: float, zd: float, half: float, rr: np.ndarray, cc: np.ndarray, south: np.ndarray
) -> None:
    """Lambert (row, col) and hemisphere of the pixels of one detector row; branch-free so that it vectorises."""
    bx = m[0, 1] * yd + m[0, 2] * zd
    by = m[1, 1] * yd + m[1, 2] * zd
    bz = m[2, 1] * yd + m[2, 2] * zd
    m00, m10, m20 = m[0, 0], m[1, 0], m[2, 0]  # locals: no reload after each store, so the loop vectorises
    for c in range(rr.shape[0]):
        xd = x0 + c
        vx = m00 * xd + bx
        vy = m10 * xd + by
        vz = m20 * xd + bz
        inv = 1.0 / math.sqrt(vx * vx + vy * vy + vz * vz)
        q = math.sqrt(max(2.0 * (1.0 - abs(vz) * inv), 0.0))
        swap = abs(vy) > abs(vx)
        num = vx if swap else vy
        den = vy if swap else vx
        den_safe = den if den != 0.0 else 1.0
        a = _atan_unit(num / den_safe)
        sq = q if den >= 0.0 else -q
        big = sq * _K_BIG
        small = sq * _K_SMALL * a
        lx = small if swap else big
        ly = big if swap else small
        rr[c] = (ly + 1.0) * half
        cc[c] = (lx + 1.0) * half
        south[c] = 1.0 if vz < 0.0 else 0.0


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def project_pc_one(north: np.ndarray, south: np.ndarray, m: np.ndarray, out: np.ndarray) -> None:
    """One pattern (h, w) for the pixel-to-crystal matrix ``m``: pixel (r, c) looks along ``m @ (c, r, 1)``.

    ``m = g R^T H`` with ``H`` the detector's pixel matrix (:meth:`kikuchi.geometry.Detector.pixel_matrices`).
    """
    h, w = out.shape
    n = north.shape[0]
    half = (n - 1) * 0.5
    rr = np.empty(w)
    cc = np.empty(w)
    hemi = np.empty(w)
    for r in range(h):
        _row_to_lambert(m, 0.0, float(r), 1.0, half, rr, cc, hemi)
        for c in range(w):
            r0 = min(max(int(rr[c]), 0), n - 2)
            c0 = min(max(int(cc[c]), 0), n - 2)
            dr = min(max(rr[c] - r0, 0.0), 1.0)
            dc = min(max(cc[c] - c0, 0.0), 1.0)
            mp = south if hemi[c] > 0.5 else north
            top = mp[r0, c0] + (mp[r0, c0 + 1] - mp[r0, c0]) * dc
            bottom = mp[r0 + 1, c0] + (mp[r0 + 1, c0 + 1] - mp[r0 + 1, c0]) * dc
            out[r, c] = top + (bottom - top) * dr


@numba.njit(nogil=True, cache=True)
def project_pc_many(north: np.ndarray, south: np.ndarray, m: np.ndarray, out: np.ndarray) -> None:
    """Patterns i = 0..n-1 with pixel-to-crystal matrices m[i] (see :func:`project_pc_one`) into out (n, h, w)."""
    for i in range(m.shape[0]):
        project_pc_one(north, south, m[i], out[i])
