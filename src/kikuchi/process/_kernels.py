"""Kernels of pattern processing, on stacks (n, h, w); no input checks here.

The public functions in the modules of this folder check their inputs and
call these. Stacks are processed as a whole (batched FFTs with
``scipy.fft``, ``workers=``), so a thread pool or a dask worker spends its
time in code that releases the GIL.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numba
import numpy as np
import scipy.fft
import scipy.ndimage

# -- Gaussian low-pass ---------------------------------------------------------


def documented_kernel_1d(sigma: float, support: float) -> np.ndarray:
    """Samples of a Gaussian of std ``sigma`` over an extent of ``support`` pixels.

    The samples sit at ``-(support - 1)/2 + j`` for ``j = 0, 1, ...`` up to
    ``(support - 1)/2``: the grid of the xcdskd/filterfft ``gaussian(sigma,
    shape)`` kernel, which for the documented ``support = 3 sigma`` spans
    about +-1.5 sigma (not centred when ``support`` is not an integer).
    Normalised to sum 1.
    """
    half = (support - 1.0) / 2.0
    x = np.arange(-half, half + 1e-8)
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    return k / k.sum()


def untruncated_kernel_1d(sigma: float, truncate: float = 6.0) -> np.ndarray:
    """A centred, odd-length sampled Gaussian out to ``truncate`` sigma (6: below 1e-8 of the peak)."""
    r = max(1, int(math.ceil(truncate * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2.0 * sigma**2))
    return k / k.sum()


def pow2(n: int) -> int:
    """The next power of two >= n (the FFT size of the documented filter)."""
    return 1 << max(0, int(n) - 1).bit_length()


@functools.lru_cache(maxsize=64)
def _axis_kernel(k: bytes, n: int, size: int, dtype: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a 1D correlation of length-``n`` signals with kernel ``k`` on an FFT of ``size``:
    the conjugated kernel spectrum and the weights of the first and last sample (border replication)."""
    kern = np.frombuffer(k, dtype=np.float64)
    kr = len(kern)
    a0 = kr // 2
    placed = np.zeros(size)
    placed[(np.arange(kr) - a0) % size] = kern  # tap j acts at offset j - a0
    spectrum = np.conj(scipy.fft.rfft(placed))
    cum = np.concatenate([[0.0], np.cumsum(kern)])
    i = np.arange(n)
    first = cum[np.clip(a0 - i, 0, kr)]  # taps that fall before sample 0
    last = cum[kr] - cum[np.clip(n - i + a0, 0, kr)]  # taps that fall after sample n - 1
    ftype = np.dtype(dtype)
    ctype = np.complex64 if ftype == np.float32 else np.complex128
    return spectrum.astype(ctype), first.astype(ftype), last.astype(ftype)


def _correlate_axis(x: np.ndarray, k: np.ndarray, axis: int, fft_size: str, workers: int | None) -> np.ndarray:
    """1D correlation along ``axis`` with borders replicated, by FFT.

    The signal is zero-padded (not extended): a circular FFT of length
    ``n + max(a0, kr - 1 - a0)`` or more is free of wrap-around for the
    outputs inside the signal, and the replicated border samples are added
    as the first and last sample times the sum of the kernel taps that fall
    outside. The result equals the correlation of the replicated extension.
    """
    n = x.shape[axis]
    kr = len(k)
    a0 = kr // 2
    if fft_size == "pow2":
        size = pow2(n + kr - 1)
    else:
        size = scipy.fft.next_fast_len(n + max(a0, kr - 1 - a0), real=True)
    spectrum, first, last = _axis_kernel(k.tobytes(), n, size, str(x.dtype))
    shape = [1] * x.ndim
    shape[axis] = -1
    spec = scipy.fft.rfft(x, n=size, axis=axis, workers=workers)
    spec *= spectrum.reshape(shape)
    y = scipy.fft.irfft(spec, n=size, axis=axis, workers=workers)
    y = y[(slice(None),) * axis + (slice(0, n),)]
    # only the samples within half a kernel of a border receive border weight
    lead = (slice(None),) * axis
    m0 = int(np.count_nonzero(first))
    if m0:
        y[lead + (slice(0, m0),)] += x[lead + (slice(0, 1),)] * first[:m0].reshape(shape)
    m1 = int(np.count_nonzero(last))
    if m1:
        y[lead + (slice(n - m1, n),)] += x[lead + (slice(n - 1, n),)] * last[n - m1 :].reshape(shape)
    return y


def lowpass_fft(
    stack: np.ndarray,
    k_row: np.ndarray,
    k_col: np.ndarray,
    *,
    fft_size: str = "fast",
    workers: int | None = None,
) -> np.ndarray:
    """Correlate each image of ``stack`` with ``outer(k_row, k_col)``, borders replicated.

    Output pixel (i, j) is ``sum K[a, b] * I[i + a - a0, j + b - b0]`` with
    ``a0 = len(k_row) // 2`` (for an even kernel the window is centred and
    its extents rounded down) and pixels outside the image taken from the
    nearest border pixel (corners from the corner pixel): the documented FFT
    filter. The kernel is separable, so the image is filtered by batched 1D
    FFTs along the columns and then along the rows (:func:`_correlate_axis`),
    of the documented power-of-two length (``fft_size='pow2'``) or of the
    shortest fast length free of wrap-around (``'fast'``); the results agree
    to rounding.
    """
    tmp = _correlate_axis(stack, k_col, 2, fft_size, workers)
    return _correlate_axis(tmp, k_row, 1, fft_size, workers)


# -- binning -------------------------------------------------------------------


def bin_sum(stack: np.ndarray, factor: int, dtype: Any) -> np.ndarray:
    n, h, w = stack.shape
    return stack.reshape(n, h // factor, factor, w // factor, factor).sum(axis=(2, 4), dtype=dtype)


# -- neighbour pattern averaging ----------------------------------------------


@numba.njit(nogil=True, cache=True)
def average_neighbours_kernel(block, have, weights, r0, r1, c0, c1, out):  # pragma: no cover - compiled
    """Weighted mean of the patterns in a (2n+1)^2 window, over neighbours that have a pattern.

    ``block`` (rows, cols, h, w) uint8, uint16 or float32 (all exact in the
    float64 sums), ``have`` (rows, cols) bool, ``weights`` (2n+1, 2n+1);
    writes points ``r0:r1, c0:c1`` of ``block`` to ``out`` (r1 - r0,
    c1 - c0, h, w). Points without a pattern stay 0.

    Pattern row by pattern row: the neighbours' rows are summed into one
    float64 row that stays in the L1 cache, scaled and stored once.
    """
    rows, cols, h, w = block.shape
    m = weights.shape[0] // 2
    nmax = weights.shape[0] * weights.shape[1]
    nr = np.empty(nmax, dtype=np.int64)
    nc = np.empty(nmax, dtype=np.int64)
    nw = np.empty(nmax, dtype=np.float64)
    acc = np.empty(w, dtype=np.float64)
    for r in range(r0, r1):
        for c in range(c0, c1):
            if not have[r, c]:
                continue
            k = 0
            total = 0.0
            for dr in range(-m, m + 1):
                rr = r + dr
                if rr < 0 or rr >= rows:
                    continue
                for dc in range(-m, m + 1):
                    cc = c + dc
                    if cc < 0 or cc >= cols or not have[rr, cc]:
                        continue
                    wgt = weights[dr + m, dc + m]
                    if wgt == 0.0:
                        continue
                    nr[k] = rr
                    nc[k] = cc
                    nw[k] = wgt
                    total += wgt
                    k += 1
            if total <= 0.0:
                continue
            inv = 1.0 / total
            o = out[r - r0, c - c0]
            for i in range(h):
                acc[:] = 0.0
                for q in range(k):
                    wgt = nw[q]
                    p = block[nr[q], nc[q], i]
                    for j in range(w):
                        acc[j] += wgt * p[j]
                for j in range(w):
                    o[i, j] = acc[j] * inv


# -- contrast stretch ------------------------------------------------------------


@numba.njit(nogil=True, cache=True)
def stretch(x, lo, hi, span, omax, out):  # pragma: no cover - compiled
    """``out[i] = (clip(x[i], lo[i], hi[i]) - lo[i]) / span[i] * omax`` truncated to out's integer type.

    ``x`` (n, npix) float, ``lo``, ``hi``, ``span`` (n,) in x's float type.
    The operations of ``skimage.exposure.rescale_intensity(x, in_range=(lo, hi),
    out_range=dtype).astype(dtype)`` in x's float type, in the same order (no
    fused or reordered arithmetic), so the integers are the same. Where
    lo == hi: clip to [0, omax].
    """
    for i in range(x.shape[0]):
        a, b, d = lo[i], hi[i], span[i]
        scale = a != b
        for j in range(x.shape[1]):
            v = min(max(x[i, j], a), b)
            if scale:
                v = (v - a) / d
                v = v * omax
            else:
                v = min(max(v, 0), omax)
            out[i, j] = v


# -- local normalisation ---------------------------------------------------------


def local_mean_std(stack: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over a ``size`` x ``size`` window, mirrored at the borders."""
    s = (1, size, size)
    x = stack.astype(np.float64)
    mean = scipy.ndimage.uniform_filter(x, size=s, mode="mirror")
    mean2 = scipy.ndimage.uniform_filter(x * x, size=s, mode="mirror")
    return mean, np.sqrt(np.maximum(mean2 - mean * mean, 0.0))


# -- direct separable Gaussian (numba) ------------------------------------------


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def _correlate_row(row, k, acc):  # pragma: no cover - compiled
    """acc[j] = sum_t k[t] row[j + t] for j < len(acc), the taps in order.

    Four taps per sweep over ``acc`` (one load and one store of ``acc`` per
    four multiply-adds instead of per one); each ``acc[j]`` still receives
    the taps one after the other as fused multiply-adds, so the values are
    those of the one-tap loop to the bit.
    """
    w = acc.shape[0]
    kr = k.shape[0]
    acc[:] = 0.0
    t = 0
    while t + 4 <= kr:
        k0, k1, k2, k3 = k[t], k[t + 1], k[t + 2], k[t + 3]
        for j in range(w):
            acc[j] = acc[j] + k0 * row[j + t] + k1 * row[j + t + 1] + k2 * row[j + t + 2] + k3 * row[j + t + 3]
        t += 4
    while t < kr:
        kt = k[t]
        for j in range(w):
            acc[j] += kt * row[j + t]
        t += 1


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def _correlate_col(img, i, k, acc):  # pragma: no cover - compiled
    """acc[j] = sum_t k[t] img[clamp(i + t - a0), j], the taps in order, four per sweep (see :func:`_correlate_row`)."""
    h, w = img.shape
    kr = k.shape[0]
    a0 = kr // 2
    acc[:] = 0.0
    t = 0
    while t + 4 <= kr:
        k0, k1, k2, k3 = k[t], k[t + 1], k[t + 2], k[t + 3]
        r0 = img[min(max(i + t - a0, 0), h - 1)]
        r1 = img[min(max(i + t + 1 - a0, 0), h - 1)]
        r2 = img[min(max(i + t + 2 - a0, 0), h - 1)]
        r3 = img[min(max(i + t + 3 - a0, 0), h - 1)]
        for j in range(w):
            acc[j] = acc[j] + k0 * r0[j] + k1 * r1[j] + k2 * r2[j] + k3 * r3[j]
        t += 4
    while t < kr:
        kt = k[t]
        r = img[min(max(i + t - a0, 0), h - 1)]
        for j in range(w):
            acc[j] += kt * r[j]
        t += 1


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def _correlate_rows(x, k, out):  # pragma: no cover - compiled
    """out[p, i, j] = sum_t k[t] x[p, i, clamp(j + t - a0)] along the last axis."""
    n, h, w = x.shape
    kr = k.shape[0]
    a0 = kr // 2
    row = np.empty(w + kr - 1, dtype=x.dtype)
    acc = np.empty(w, dtype=x.dtype)
    for p in range(n):
        for i in range(h):
            for j in range(w + kr - 1):
                jj = min(max(j - a0, 0), w - 1)
                row[j] = x[p, i, jj]
            _correlate_row(row, k, acc)
            out[p, i, :] = acc


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def _correlate_cols(x, k, out):  # pragma: no cover - compiled
    """out[p, i, j] = sum_t k[t] x[p, clamp(i + t - a0), j] along the middle axis (rows as vectors)."""
    n, h, w = x.shape
    acc = np.empty(w, dtype=x.dtype)
    for p in range(n):
        for i in range(h):
            _correlate_col(x[p], i, k, acc)
            out[p, i, :] = acc


#: Kernel length up to which the direct sum beats the FFT (measured on 60 to 480 pixel patterns).
DIRECT_MAX_TAPS = 128


def lowpass_direct(stack: np.ndarray, k_row: np.ndarray, k_col: np.ndarray) -> np.ndarray:
    """The correlation of :func:`lowpass_fft` summed directly in real space (numba, nogil).

    Two passes of ``len(k)`` multiply-adds per pixel, vectorised along the
    rows (fused multiply-adds); faster than the FFT for kernels of up to
    :data:`DIRECT_MAX_TAPS` taps, with the same values to rounding.
    """
    x = np.ascontiguousarray(stack)
    tmp = np.empty_like(x)
    _correlate_rows(x, k_col.astype(x.dtype), tmp)
    out = np.empty_like(x)
    _correlate_cols(tmp, k_row.astype(x.dtype), out)
    return out


# -- fused static + dynamic background (numba, one pattern at a time) ----------------


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def background_fused(stack, static, use_static, k_row, k_col, subtract, out):  # pragma: no cover - compiled
    """Static division, Gaussian low-pass (direct sum) and dynamic division or subtraction, pattern by pattern.

    ``stack`` (n, h, w) any real dtype; ``static`` (h, w) float32 (used when
    ``use_static``): ``x = float32(stack) / static``, 0 where static <= 0;
    ``low`` = the correlation of :func:`lowpass_direct` (same loops, same
    order of operations); ``out`` (n, h, w) float32 gets ``x / low`` (0 where
    not finite) or, with ``subtract``, ``x - low``. The same values as
    :func:`remove_static_background`, :func:`lowpass_direct` and
    ``remove_bg`` / ``make_signal_bg`` one after the other, but each
    pattern's intermediate images stay in the cache instead of streaming
    three float stacks through memory.
    """
    n, h, w = stack.shape
    kr = k_col.shape[0]
    a0 = kr // 2
    x = np.empty((h, w), dtype=np.float32)
    tmp = np.empty((h, w), dtype=np.float32)
    row = np.empty(w + kr - 1, dtype=np.float32)
    acc = np.empty(w, dtype=np.float32)
    for p in range(n):
        for i in range(h):
            for j in range(w):
                v = np.float32(stack[p, i, j])
                if use_static:
                    b = static[i, j]
                    v = v / b if b > 0 else np.float32(0.0)
                x[i, j] = v
        # along the rows (the last axis), borders replicated
        for i in range(h):
            for j in range(w + kr - 1):
                jj = min(max(j - a0, 0), w - 1)
                row[j] = x[i, jj]
            _correlate_row(row, k_col, acc)
            tmp[i, :] = acc
        # along the columns, then the dynamic correction of that output row
        for i in range(h):
            _correlate_col(tmp, i, k_row, acc)
            if subtract:
                for j in range(w):
                    out[p, i, j] = x[i, j] - acc[j]
            else:
                for j in range(w):
                    v = x[i, j] / acc[j]
                    out[p, i, j] = v if np.isfinite(v) else np.float32(0.0)
