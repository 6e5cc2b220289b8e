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


_F32 = np.float32
_K_BIG32 = np.float32(_K_BIG)
_K_SMALL32 = np.float32(_K_SMALL)


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy", inline="always")
def _atan_unit32(t: float) -> float:
    """:func:`_atan_unit` in float32 arithmetic (16 vector lanes)."""
    t2 = t * t
    p = _F32(_A16)
    p = p * t2 + _F32(_A14)
    p = p * t2 + _F32(_A12)
    p = p * t2 + _F32(_A10)
    p = p * t2 + _F32(_A8)
    p = p * t2 + _F32(_A6)
    p = p * t2 + _F32(_A4)
    p = p * t2 + _F32(_A2)
    return t * (_F32(1.0) + p * t2)


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def _row_to_cells(
    m: np.ndarray, yd: float, n: int, cell: np.ndarray, frac_r: np.ndarray, frac_c: np.ndarray
) -> None:
    """Where the pixels of detector row ``yd`` sample the stacked master pattern, in float32 vector lanes.

    For pixel c: ``cell[c]`` is the flat index of the upper left of its 2 x 2 Lambert cell in the
    (2, n, n) stack (north, then south), ``frac_r[c]`` and ``frac_c[c]`` its bilinear weights. The
    polar distance is written ``2 rho^2 / (r (r + |z|))`` rather than ``2 (1 - |z| / r)``, which loses
    float32 digits near the poles. Lambert coordinates are within 3e-5 pixel of :func:`_row_to_lambert`'s.
    """
    bx = _F32(m[0, 1] * yd + m[0, 2])
    by = _F32(m[1, 1] * yd + m[1, 2])
    bz = _F32(m[2, 1] * yd + m[2, 2])
    m00, m10, m20 = _F32(m[0, 0]), _F32(m[1, 0]), _F32(m[2, 0])
    half = _F32((n - 1) * 0.5)
    last = np.int32(n - 2)
    south = np.int32(n * n)
    side = np.int32(n)
    for c in range(cell.shape[0]):
        xd = _F32(c)
        vx = m00 * xd + bx
        vy = m10 * xd + by
        vz = m20 * xd + bz
        rho2 = vx * vx + vy * vy
        r = math.sqrt(rho2 + vz * vz)
        q = math.sqrt(_F32(2.0) * rho2 / (r * (r + abs(vz))))
        swap = abs(vy) > abs(vx)
        num = vx if swap else vy
        den = vy if swap else vx
        den_safe = den if den != _F32(0.0) else _F32(1.0)
        a = _atan_unit32(num / den_safe)
        sq = q if den >= _F32(0.0) else -q
        big = sq * _K_BIG32
        small = sq * _K_SMALL32 * a
        lx = small if swap else big
        ly = big if swap else small
        rr = (ly + _F32(1.0)) * half
        cc = (lx + _F32(1.0)) * half
        r0 = min(max(np.int32(rr), np.int32(0)), last)
        c0 = min(max(np.int32(cc), np.int32(0)), last)
        frac_r[c] = min(max(rr - _F32(r0), _F32(0.0)), _F32(1.0))
        frac_c[c] = min(max(cc - _F32(c0), _F32(0.0)), _F32(1.0))
        cell[c] = (south if vz < _F32(0.0) else np.int32(0)) + r0 * side + c0


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def project_pc_one(stacked: np.ndarray, n: int, m: np.ndarray, out: np.ndarray) -> float:
    """One pattern (h, w) for the pixel-to-crystal matrix ``m``: pixel (r, c) looks along ``m @ (c, r, 1)``.

    ``stacked`` is the master pattern's (2, n, n) float32 stack (north, south) raveled; ``m = g R^T H``
    with ``H`` the detector's pixel matrix (:meth:`kikuchi.geometry.Detector.pixel_matrices`). Returns
    the pattern's sum (float64). A row's cells are found in vector lanes first (:func:`_row_to_cells`),
    so the per-pixel loop only loads the four corners and interpolates.
    """
    h, w = out.shape
    cell = np.empty(w, dtype=np.int32)
    frac_r = np.empty(w, dtype=np.float32)
    frac_c = np.empty(w, dtype=np.float32)
    total = 0.0
    for r in range(h):
        _row_to_cells(m, float(r), n, cell, frac_r, frac_c)
        for c in range(w):
            k = cell[c]
            a = stacked[k]
            b = stacked[k + 1]
            d = stacked[k + n]
            e = stacked[k + n + 1]
            dc = frac_c[c]
            top = a + (b - a) * dc
            bottom = d + (e - d) * dc
            out[r, c] = top + (bottom - top) * frac_r[c]
        row = 0.0
        for c in range(w):
            row += out[r, c]
        total += row
    return total


@numba.njit(nogil=True, cache=True)
def project_pc_many(stacked: np.ndarray, n: int, m: np.ndarray, out: np.ndarray, sums: np.ndarray) -> None:
    """Patterns i = 0..n-1 with pixel-to-crystal matrices m[i] (see :func:`project_pc_one`) into out (n, h, w),
    their sums into ``sums``."""
    for i in range(m.shape[0]):
        sums[i] = project_pc_one(stacked, n, m[i], out[i])
