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


@functools.lru_cache(maxsize=32)
def _kernel_fft(kr: bytes, kc: bytes, size: tuple[int, int], dtype: str) -> np.ndarray:
    """rfft2 of the separable kernel outer(kr, kc), zero-padded to ``size``, conjugated (correlation)."""
    k_r = np.frombuffer(kr, dtype=np.float64)
    k_c = np.frombuffer(kc, dtype=np.float64)
    fr = scipy.fft.fft(k_r, n=size[0])
    fc = scipy.fft.rfft(k_c, n=size[1])
    ctype = np.complex64 if np.dtype(dtype) == np.float32 else np.complex128
    return np.conj(np.outer(fr, fc)).astype(ctype)


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
    nearest border pixel (corners from the corner pixel). Computed by FFT on
    the image extended by replication to ``(h + kr - 1, w + kc - 1)`` and
    zero-padded to the FFT size: the next power of two (``fft_size='pow2'``,
    as documented) or the next fast length of scipy.fft (``'fast'``, the
    same values up to rounding, faster).
    """
    n, h, w = stack.shape
    kr, kc = len(k_row), len(k_col)
    a0, b0 = kr // 2, kc // 2
    ext = np.pad(stack, ((0, 0), (a0, kr - 1 - a0), (b0, kc - 1 - b0)), mode="edge")
    full = (h + kr - 1, w + kc - 1)
    if fft_size == "pow2":
        size = (pow2(full[0]), pow2(full[1]))
    else:
        size = (scipy.fft.next_fast_len(full[0], real=False), scipy.fft.next_fast_len(full[1], real=True))
    kf = _kernel_fft(k_row.tobytes(), k_col.tobytes(), size, str(stack.dtype))
    spec = scipy.fft.rfft2(ext, s=size, axes=(1, 2), workers=workers)
    spec *= kf
    out = scipy.fft.irfft2(spec, s=size, axes=(1, 2), workers=workers)
    return out[:, :h, :w]


def lowpass_direct(stack: np.ndarray, k_row: np.ndarray, k_col: np.ndarray) -> np.ndarray:
    """The same correlation as :func:`lowpass_fft`, computed directly (separable, scipy.ndimage)."""
    tmp = scipy.ndimage.correlate1d(stack, k_row.astype(stack.dtype), axis=1, mode="nearest")
    return scipy.ndimage.correlate1d(tmp, k_col.astype(stack.dtype), axis=2, mode="nearest")


# -- binning -------------------------------------------------------------------


def bin_sum(stack: np.ndarray, factor: int, dtype: Any) -> np.ndarray:
    n, h, w = stack.shape
    return stack.reshape(n, h // factor, factor, w // factor, factor).sum(axis=(2, 4), dtype=dtype)


# -- neighbour pattern averaging ----------------------------------------------


@numba.njit(nogil=True, cache=True)
def average_neighbours_kernel(block, have, weights, r0, r1, out):  # pragma: no cover - compiled
    """Weighted mean of the patterns in a (2n+1)^2 window, over neighbours that have a pattern.

    ``block`` (rows, cols, h, w) float32, ``have`` (rows, cols) bool,
    ``weights`` (2n+1, 2n+1); writes rows ``r0:r1`` of ``block`` to ``out``
    (r1 - r0, cols, h, w). Points without a pattern stay 0.
    """
    rows, cols, h, w = block.shape
    m = weights.shape[0] // 2
    for r in range(r0, r1):
        for c in range(cols):
            o = out[r - r0, c]
            if not have[r, c]:
                continue
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
                    total += wgt
                    p = block[rr, cc]
                    for i in range(h):
                        for j in range(w):
                            o[i, j] += wgt * p[i, j]
            if total > 0.0:
                inv = 1.0 / total
                for i in range(h):
                    for j in range(w):
                        o[i, j] *= inv


# -- local normalisation ---------------------------------------------------------


def local_mean_std(stack: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over a ``size`` x ``size`` window, mirrored at the borders."""
    s = (1, size, size)
    x = stack.astype(np.float64)
    mean = scipy.ndimage.uniform_filter(x, size=s, mode="mirror")
    mean2 = scipy.ndimage.uniform_filter(x * x, size=s, mode="mirror")
    return mean, np.sqrt(np.maximum(mean2 - mean * mean, 0.0))
