"""Kernels of the imaging functions: one pass over a stack of patterns.

Private; the public, checked wrappers are in :mod:`kikuchi.imaging.vbse`,
:mod:`kikuchi.imaging.centre_of_mass` and :mod:`kikuchi.imaging.quality`.

The region means of a virtual BSE grid are ``Wr @ P @ Wc.T`` for a pattern
``P`` and two weight matrices (see :func:`kikuchi.imaging.region_weights`).
Each row of ``Wr`` and ``Wc`` averages one interval of pixels: equal
weights on the pixels it covers fully, its own weights on the (at most two)
pixels it covers partly. The kernel uses that structure instead of
multiplying dense matrices: the fully covered pixels are summed as integers
straight from the uint8/uint16 data (vectorised), and only the border
pixels are weighted. The result is the same sum, about 10 x faster than the
batched dense products (measured in benchmarks/imaging.py).
"""

from __future__ import annotations

import numba
import numpy as np

__all__: list[str] = []


def interval_segments(weights: np.ndarray) -> tuple[np.ndarray, ...]:
    """Compact form of a (regions, pixels) matrix whose rows average pixel intervals.

    Row ``i`` must be nonzero on one contiguous run of pixels ``lo..hi``
    with equal weights inside (the pixels fully covered) and its own
    weights at both ends (pixels partly covered), as built by
    :func:`kikuchi.imaging.strip_weights`. Returns ``lo, hi, w_lo, w_hi,
    w_inside``.
    """
    w = np.asarray(weights, dtype=np.float64)
    m = w.shape[0]
    lo = np.empty(m, dtype=np.int64)
    hi = np.empty(m, dtype=np.int64)
    w_lo, w_hi, w_in = np.empty(m), np.empty(m), np.zeros(m)
    for i in range(m):
        nz = np.flatnonzero(w[i])
        if nz.size == 0 or nz[-1] - nz[0] + 1 != nz.size:
            raise ValueError(f"weight row {i} is not one contiguous run of pixels")
        lo[i], hi[i] = nz[0], nz[-1]
        w_lo[i], w_hi[i] = w[i, lo[i]], w[i, hi[i]]
        if nz.size > 2:
            inside = w[i, lo[i] + 1 : hi[i]]
            if np.ptp(inside) > 1e-12 * abs(inside[0]):
                raise ValueError(f"weight row {i} has unequal weights on its fully covered pixels")
            w_in[i] = inside[0]
    return lo, hi, w_lo, w_hi, w_in


@numba.njit(nogil=True, cache=True)
def region_means(patterns, out, col_sum, rlo, rhi, rwl, rwh, rwi, clo, chi, cwl, cwh, cwi):  # pragma: no cover - numba
    """``out[k] = Wr @ patterns[k] @ Wc.T`` for every pattern of an (n, h, w) stack.

    ``Wr`` and ``Wc`` are given by their :func:`interval_segments`. The fully
    covered rows of a region are summed first in ``col_sum`` (int64 for
    integer patterns: exact and vectorised), then the partly covered rows and
    the columns are weighted in float64.
    """
    n, h, w = patterns.shape
    gr, gc = out.shape[1], out.shape[2]
    col = np.empty(w, dtype=np.float64)
    for k in range(n):
        p = patterns[k]
        for i in range(gr):
            lo = rlo[i]
            hi = rhi[i]
            col_sum[:] = 0
            for r in range(lo + 1, hi):
                for c in range(w):
                    col_sum[c] += p[r, c]
            for c in range(w):
                col[c] = col_sum[c] * rwi[i] + np.float64(p[lo, c]) * rwl[i]
            if hi > lo:
                for c in range(w):
                    col[c] += np.float64(p[hi, c]) * rwh[i]
            for j in range(gc):
                a = clo[j]
                b = chi[j]
                s = 0.0
                for c in range(a + 1, b):
                    s += col[c]
                s = s * cwi[j] + col[a] * cwl[j]
                if b > a:
                    s += col[b] * cwh[j]
                out[k, i, j] = s


@numba.njit(nogil=True, cache=True)
def moments(patterns, out, offset):  # pragma: no cover - numba
    """Per pattern: mean, standard deviation and centre of mass (x = col, y = row).

    ``out[k]`` = (mean, std, com_x, com_y). ``offset`` is subtracted from the
    intensities for the centre of mass only when a pattern holds negative
    values: then the pattern minimum is used, so the weights are >= 0.
    """
    n, h, w = patterns.shape
    npx = h * w
    for k in range(n):
        s = 0.0
        s2 = 0.0
        sx = 0.0
        sy = 0.0
        lo = np.inf
        for r in range(h):
            rs = 0.0
            for c in range(w):
                v = np.float64(patterns[k, r, c])
                rs += v
                s2 += v * v
                sx += v * c
                if v < lo:
                    lo = v
            s += rs
            sy += rs * r
        mean = s / npx
        var = s2 / npx - mean * mean
        out[k, 0] = mean
        out[k, 1] = np.sqrt(var) if var > 0.0 else 0.0
        shift = 0.0
        if offset and lo < 0.0:
            shift = lo
        total = s - shift * npx
        if total > 0.0:
            # sum((v - shift) * c) = sx - shift * h * sum(c)
            out[k, 2] = (sx - shift * h * (w * (w - 1) / 2.0)) / total
            out[k, 3] = (sy - shift * w * (h * (h - 1) / 2.0)) / total
        else:
            out[k, 2] = np.nan
            out[k, 3] = np.nan


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def normalise_stack(patterns, out):  # pragma: no cover - numba
    """Zero mean, unit Euclidean norm per pattern (so a dot product is a correlation)."""
    n, h, w = patterns.shape
    npx = h * w
    for k in range(n):
        s = 0.0
        for r in range(h):
            for c in range(w):
                s += np.float64(patterns[k, r, c])
        mean = s / npx
        ss = 0.0
        for r in range(h):
            for c in range(w):
                d = np.float64(patterns[k, r, c]) - mean
                ss += d * d
        scale = 1.0 / np.sqrt(ss) if ss > 0.0 else 0.0
        for r in range(h):
            for c in range(w):
                out[k, r * w + c] = (np.float64(patterns[k, r, c]) - mean) * scale


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract"})
def neighbour_dots(norm, right, down):  # pragma: no cover - numba
    """Dot products of each point of a map (rows, cols, m) with its right and lower neighbours.

    ``right[r, c] = norm[r, c] . norm[r, c + 1]`` (rows, cols - 1) and
    ``down[r, c] = norm[r, c] . norm[r + 1, c]`` (rows - 1, cols), read in
    place (no copies of the shifted maps).
    """
    rows, cols, m = norm.shape
    for r in range(rows):
        for c in range(cols):
            if c + 1 < cols:
                s = 0.0
                for j in range(m):
                    s += norm[r, c, j] * norm[r, c + 1, j]
                right[r, c] = s
            if r + 1 < rows:
                s = 0.0
                for j in range(m):
                    s += norm[r, c, j] * norm[r + 1, c, j]
                down[r, c] = s


def spectral_inertia(patterns: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Krieger Lassen's normalised spectral inertia ``J / (J_res w_tot)`` of each pattern.

    ``q2`` holds the squared integer frequency ``h^2 + k^2`` of every element
    of the 2-D FFT. Patterns are centred to zero mean first, so the zero
    frequency carries no power. (They are not divided by their standard
    deviation: ``J`` and ``w_tot`` are both linear in ``|F|``, so their
    ratio does not change, and ``std`` and the division were a third of
    the time.)
    """
    x = np.array(patterns, dtype=np.float32)  # a copy, centred in place
    x -= x.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(np.float32)
    from scipy import fft as sfft

    power = np.abs(sfft.rfft2(x, workers=1))  # the spectrum's modulus |F|, as kikuchipy computes it
    # rfft2 keeps half of the last axis: weight the columns that stand for two.
    w = x.shape[2]
    mult = np.full(power.shape[2], 2.0, dtype=np.float32)
    mult[0] = 1.0
    if w % 2 == 0:
        mult[-1] = 1.0
    power *= mult
    j = np.einsum("nij,ij->n", power, q2, dtype=np.float64)
    w_tot = power.sum(axis=(1, 2), dtype=np.float64)
    j_res = float(np.mean(_full_q2(x.shape[1:])))
    with np.errstate(invalid="ignore", divide="ignore"):
        return j / (j_res * w_tot)


def _full_q2(shape: tuple[int, int]) -> np.ndarray:
    h = np.fft.fftfreq(shape[0]) * shape[0]
    k = np.fft.fftfreq(shape[1]) * shape[1]
    return (h[:, None] ** 2 + k[None, :] ** 2).astype(np.float32)


def half_q2(shape: tuple[int, int]) -> np.ndarray:
    """Squared integer frequencies on the rfft2 half plane of a (h, w) image."""
    return _full_q2(shape)[:, : shape[1] // 2 + 1].copy()
