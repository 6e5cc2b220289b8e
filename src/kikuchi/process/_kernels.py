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
    import scipy.fft  # here, not at import: kikuchi's commands start faster
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
    import scipy.fft  # here, not at import: kikuchi's commands start faster
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


@numba.njit(nogil=True, cache=True)
def _bin_sum(stack, factor, col, out):  # pragma: no cover - compiled
    """``out[p, i, j]`` = the sum of the ``factor`` x ``factor`` block of pattern p at (i, j).

    The block's rows are added first, whole rows at a time into ``col`` (w,)
    (a vector loop), then each run of ``factor`` columns. ``col``'s type is
    the sums' (32-bit integers where they cannot overflow: twice the lanes).
    """
    n, ho, wo = out.shape
    for p in range(n):
        for i in range(ho):
            r0 = stack[p, i * factor]
            for c in range(col.shape[0]):
                col[c] = r0[c]
            for r in range(1, factor):
                row = stack[p, i * factor + r]
                for c in range(col.shape[0]):
                    col[c] += row[c]
            dst = out[p, i]
            for j in range(wo):
                s = col[j * factor]
                for c in range(1, factor):
                    s += col[j * factor + c]
                dst[j] = s


#: Stack types of the compiled binning (numba's), and the sums' types.
_BIN_INPUTS = tuple(np.dtype(t) for t in (np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.float32, np.float64))
_BIN_SUMS = (np.dtype(np.int64), np.dtype(np.uint64), np.dtype(np.float64))


def bin_sum(stack: np.ndarray, factor: int, dtype: Any) -> np.ndarray:
    """(n, h // factor, w // factor) sums of ``factor`` x ``factor`` blocks of a stack.

    In ``dtype``, or for 8- and 16-bit integer stacks in 32-bit integers where
    those hold every sum (half the fresh memory, which costs as much as the
    sums on this kind of machine; the callers cast).

    A compiled loop (numpy's reduction over two strided axes took 270 us per
    240 x 240 uint16 pattern, the largest cost of ``kikuchi process`` on such
    maps; this one 21 us); numpy for the dtypes numba does not take (float16, other byte
    orders). Integer sums are exact whatever the order; float sums add the
    block column by column.
    """
    n, h, w = stack.shape
    shape = (n, h // factor, w // factor)
    acc = np.dtype(dtype)
    if stack.dtype not in _BIN_INPUTS or acc not in _BIN_SUMS:  # (a dtype equal to a native one is native)
        return stack.reshape(n, h // factor, factor, w // factor, factor).sum(axis=(2, 4), dtype=acc)
    if stack.dtype == np.bool_:
        stack = stack.view(np.uint8)
    if stack.dtype.kind in "ui" and stack.dtype.itemsize <= 2:  # |sum| < factor^2 * 2^16: 32 bits hold it up to factor 181
        narrow = np.dtype(np.uint32 if stack.dtype.kind == "u" else np.int32)
        if factor * factor * (1 << (8 * stack.dtype.itemsize)) <= np.iinfo(narrow).max:
            acc = narrow
    out = np.empty(shape, dtype=acc)
    _bin_sum(np.ascontiguousarray(stack), factor, np.empty(w // factor * factor, dtype=acc), out)
    return out


# -- neighbour pattern averaging ----------------------------------------------


@numba.njit(nogil=True, cache=True)
def average_neighbours_kernel(block, have, weights, r0, r1, c0, c1, out):  # pragma: no cover - compiled
    """Weighted mean of the patterns in a (2n+1)^2 window, over neighbours that have a pattern.

    ``block`` (rows, cols, h, w) uint8, uint16 or float32 (all exact in the
    float64 sums), ``have`` (rows, cols) bool, ``weights`` (2n+1, 2n+1);
    writes points ``r0:r1, c0:c1`` of ``block`` to ``out`` (r1 - r0,
    c1 - c0, h, w). Points without a pattern stay 0.

    Pattern row by pattern row: the neighbours' rows are summed into one
    float64 row that stays in the L1 cache, four neighbours per sweep (each
    still added after the other, no fused multiply-adds: the same sums as
    one at a time), scaled and stored once.
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
                q = 0
                while q + 4 <= k:  # four neighbours per sweep: one load and store of acc per four
                    w0, w1, w2, w3 = nw[q], nw[q + 1], nw[q + 2], nw[q + 3]
                    p0 = block[nr[q], nc[q], i]
                    p1 = block[nr[q + 1], nc[q + 1], i]
                    p2 = block[nr[q + 2], nc[q + 2], i]
                    p3 = block[nr[q + 3], nc[q + 3], i]
                    for j in range(w):  # added one after the other, as the one-neighbour loop does
                        acc[j] = acc[j] + w0 * p0[j] + w1 * p1[j] + w2 * p2[j] + w3 * p3[j]
                    q += 4
                while q < k:
                    wgt = nw[q]
                    p = block[nr[q], nc[q], i]
                    for j in range(w):
                        acc[j] += wgt * p[j]
                    q += 1
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


@numba.njit(nogil=True, cache=True)
def _bin_of_rank(counts, k):  # pragma: no cover - compiled
    """The bin holding the value of rank ``k`` (0-based) and the number of values in the bins before it."""
    below = 0
    for b in range(counts.shape[0]):
        if below + counts[b] > k:
            return b, below
        below += counts[b]
    return counts.shape[0] - 1, below - counts[counts.shape[0] - 1]


@numba.njit(nogil=True, cache=True)
def _select(a, m, k):  # pragma: no cover - compiled
    """Reorder ``a[:m]`` so that ``a[k]`` holds the value of rank k and nothing before it is larger (quickselect).

    Hand-written rather than ``np.partition``/``np.sort``: a few loops,
    compiled in a fraction of the time numba takes for its sort.
    """
    lo, hi = 0, m - 1
    while hi > lo:
        mid = (lo + hi) // 2  # median of three as the pivot
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i, j = lo, hi
        while i <= j:  # Hoare partition: a[lo..j] <= pivot <= a[i..hi]
            while a[i] < pivot:
                i += 1
            while pivot < a[j]:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@numba.njit(nogil=True, cache=True)
def _smallest_from(a, lo, m):  # pragma: no cover - compiled
    """The smallest of ``a[lo:m]``."""
    v = a[lo]
    for j in range(lo + 1, m):
        if a[j] < v:
            v = a[j]
    return v


#: Ranks this close to either end are found by keeping the extreme values (not by a histogram).
_EXTREME_RANKS = 48
#: Interleaved groups of a row whose minima and maxima bound its extreme values (a multiple of the SIMD width).
_GROUPS = 64


@numba.njit(nogil=True, cache=True, fastmath={"reassoc"})
def _sum(row):  # pragma: no cover - compiled
    """The sum of ``row``, vectorised: NaN when the row holds a NaN (or infinities of both signs)."""
    s = row[0] - row[0]
    for j in range(row.shape[0]):
        s += row[j]
    return s


@numba.njit(nogil=True, cache=True)
def _has_nan(row):  # pragma: no cover - compiled
    """Whether ``row`` holds a NaN: its vectorised sum first, each value only where that sum is NaN."""
    s = _sum(row)
    if s == s:
        return False
    for j in range(row.shape[0]):
        if row[j] != row[j]:
            return True
    return False


@numba.njit(nogil=True, cache=True)
def _group_extremes(row, gmin, gmax):  # pragma: no cover - compiled
    """``gmin[g]``, ``gmax[g]``: the least and greatest of ``row[g::G]`` (G = len(gmin) <= len(row); a row without NaN).

    The groups interleave, so each step compares ``G`` consecutive values
    with ``G`` running extremes, element by element: a vector loop without
    a horizontal reduction.
    """
    n = row.shape[0]
    g_n = gmin.shape[0]
    full = n // g_n
    for g in range(g_n):
        gmin[g] = row[g]
        gmax[g] = row[g]
    for r in range(1, full):
        base = r * g_n
        for g in range(g_n):
            v = row[base + g]
            gmin[g] = v if v < gmin[g] else gmin[g]
            gmax[g] = v if v > gmax[g] else gmax[g]
    base = full * g_n
    for g in range(n - base):
        v = row[base + g]
        gmin[g] = v if v < gmin[g] else gmin[g]
        gmax[g] = v if v > gmax[g] else gmax[g]


@numba.njit(nogil=True, cache=True)
def _insert_low(low, n, v):  # pragma: no cover - compiled
    """Insert ``v`` into the ``n`` smallest values ``low`` (ascending; ``n`` filled of ``len(low)``); returns the new count."""
    k = low.shape[0]
    if n < k:
        j = n
        n += 1
    elif v < low[k - 1]:
        j = k - 1
    else:
        return n
    while j > 0 and low[j - 1] > v:
        low[j] = low[j - 1]
        j -= 1
    low[j] = v
    return n


@numba.njit(nogil=True, cache=True)
def _insert_high(high, n, v):  # pragma: no cover - compiled
    """Insert ``v`` into the ``n`` largest values ``high`` (ascending, filled from the end); returns the new count."""
    k = high.shape[0]
    if n < k:
        j = k - 1 - n
        n += 1
    elif v > high[0]:
        j = 0
    else:
        return n
    while j < k - 1 and high[j + 1] < v:
        high[j] = high[j + 1]
        j += 1
    high[j] = v
    return n


@numba.njit(nogil=True, cache=True)
def _in_bins(row, bins, b0, b1, buf):  # pragma: no cover - compiled
    """Copy the values of ``row`` whose bin is in ``b0..b1`` to ``buf``; returns how many."""
    m = 0
    width = np.uint32(b1 - b0)
    for j in range(row.shape[0]):
        if np.uint32(bins[j] - b0) <= width:
            buf[m] = row[j]
            m += 1
    return m


@numba.njit(nogil=True, cache=True)
def _pair_at(buf, m, r, same):  # pragma: no cover - compiled
    """The values of rank ``r`` and ``r + 1`` (``r`` twice when ``same``) of ``buf[:m]``."""
    _select(buf, m, r)
    if same:
        return buf[r], buf[r]
    return buf[r], _smallest_from(buf, r + 1, m)  # after selection, rank r + 1 is the least of what follows


@numba.njit(nogil=True, cache=True)
def _order_statistics(row, ranks, buf, bins, counts, gmin, gmax, out):  # pragma: no cover - compiled
    """``out[:] = `` the values of ``row`` at ``ranks`` (4 ranks, 0-based, ascending, in pairs k, k+1).

    A histogram of the values over [min, max] in ``len(counts)`` bins finds
    the bins holding each rank; only the values of those bins are searched.
    Bin numbers grow with the values ((v - min) * scale rounds monotonically),
    so ranks inside the bins are ranks of the row. The bin of every value is
    computed once, in a vector loop, into ``bins`` (int32); the extremes come
    from :func:`_group_extremes` (``len(gmin)`` <= len(row)). Values keep the
    row's type. Returns False for a row with a NaN (``out`` untouched); in a
    row with an infinity, the ranks are selected among all values.
    """
    n = row.shape[0]
    if _has_nan(row):
        return False
    _group_extremes(row, gmin, gmax)
    lo = gmin[0]
    hi = gmax[0]
    for g in range(1, gmin.shape[0]):
        lo = gmin[g] if gmin[g] < lo else lo
        hi = gmax[g] if gmax[g] > hi else hi
    if lo == hi:
        out[:] = lo
        return True
    span = float(hi) - float(lo)
    if not (span < np.inf):  # an infinity among the values
        for r in range(0, 4, 2):
            for j in range(n):
                buf[j] = row[j]
            out[r], out[r + 1] = _pair_at(buf, n, ranks[r], ranks[r + 1] == ranks[r])
        return True
    nb = counts.shape[0]
    top = np.int32(nb - 1)
    scale = row.dtype.type((nb - 1) / span)
    low = row.dtype.type(lo)
    for j in range(n):  # monotone in the value, whatever the rounding; min() keeps the top within the bins
        bins[j] = min(np.int32((row[j] - low) * scale), top)
    counts[:] = 0
    for j in range(n):
        counts[bins[j]] += 1
    for p in range(0, 4, 2):
        b0, below = _bin_of_rank(counts, ranks[p])
        b1, _ = _bin_of_rank(counts, ranks[p + 1])
        m = _in_bins(row, bins, b0, b1, buf)
        out[p], out[p + 1] = _pair_at(buf, m, ranks[p] - below, ranks[p + 1] == ranks[p])
    return True


@numba.njit(nogil=True, cache=True)
def _extremes(row, n_low, n_high, low, high, gmin, gmax):  # pragma: no cover - compiled
    """``low[:n_low]`` = the n_low smallest values of ``row`` ascending, ``high[:n_high]`` the n_high largest
    ascending. False for a row with a NaN. ``n_low``, ``n_high`` <= G = len(gmin) <= len(row).

    The minima of G interleaved groups of the row bound the smallest values:
    the n_low-th smallest group minimum t has at least n_low values at or
    below it, so the n_low smallest values are all <= t and lie in groups
    whose minimum is <= t (about n_low of the G). Only those groups are
    searched; the largest values likewise. About 2.5x faster than comparing
    every value with the running bounds, and the same values.
    """
    n = row.shape[0]
    g_n = gmin.shape[0]
    if _has_nan(row):
        return False
    _group_extremes(row, gmin, gmax)
    filled = 0
    for g in range(g_n):
        filled = _insert_low(low, filled, gmin[g])
    t = low[n_low - 1]
    filled = 0
    for g in range(g_n):
        if gmin[g] <= t:
            for r in range((n - g + g_n - 1) // g_n):
                v = row[g + r * g_n]
                if v <= t:
                    filled = _insert_low(low, filled, v)
    filled = 0
    for g in range(g_n):
        filled = _insert_high(high, filled, gmax[g])
    t = high[0]
    filled = 0
    for g in range(g_n):
        if gmax[g] >= t:
            for r in range((n - g + g_n - 1) // g_n):
                v = row[g + r * g_n]
                if v >= t:
                    filled = _insert_high(high, filled, v)
    return True


@numba.njit(nogil=True, cache=True)
def _lerp(a, b, d, t):  # pragma: no cover - compiled
    """numpy's linear interpolation of percentiles (``numpy.lib._function_base_impl._lerp``), same roundings."""
    if t >= 0.5:
        return b - d * (1.0 - t)
    return a + d * t


@numba.njit(nogil=True, cache=True)
def percentile_pair(x, q_lo, q_hi, lo, hi):  # pragma: no cover - compiled
    """``lo[i], hi[i] = numpy.percentile(x[i], (q_lo, q_hi))`` (float64) for each row of ``x`` (n, npix).

    Gives numpy's values exactly (method 'linear': the same virtual index,
    weight and interpolation), where ``numpy.percentile`` partitions every
    row in turn: ranks near both ends (the default 0.25 / 99.75 % of a 60 x
    60 or larger pattern) in one pass that keeps the extreme values, others
    from a histogram (three passes). ``q_lo`` and ``q_hi`` are fractions
    (percent / 100).
    """
    n, npix = x.shape
    buf = np.empty(npix, dtype=x.dtype)
    bins = np.empty(npix, dtype=np.int32)
    counts = np.empty(min(4096, max(2, npix // 4)), dtype=np.int64)
    values = np.empty(4, dtype=x.dtype)
    v_lo = (npix - 1) * q_lo
    v_hi = (npix - 1) * q_hi
    k_lo = int(math.floor(v_lo))
    k_hi = int(math.floor(v_hi))
    t_lo = v_lo - k_lo
    t_hi = v_hi - k_hi
    ranks = np.array([k_lo, min(k_lo + 1, npix - 1), k_hi, min(k_hi + 1, npix - 1)])
    # ranks near both ends (the usual 0.25 / 99.75 %): keep the extremes in one pass
    n_low, n_high = ranks[1] + 1, npix - ranks[2]
    by_extremes = n_low <= _EXTREME_RANKS and n_high <= _EXTREME_RANKS and npix >= _GROUPS
    low = np.empty(n_low, dtype=x.dtype)
    high = np.empty(n_high, dtype=x.dtype)
    gmin = np.empty(min(_GROUPS, npix), dtype=x.dtype)
    gmax = np.empty(min(_GROUPS, npix), dtype=x.dtype)
    for i in range(n):
        if by_extremes:
            if not _extremes(x[i], n_low, n_high, low, high, gmin, gmax):
                lo[i] = hi[i] = np.nan
                continue
            values[0], values[1] = low[ranks[0]], low[ranks[1]]
            values[2], values[3] = high[0], high[ranks[3] - ranks[2]]
        elif not _order_statistics(x[i], ranks, buf, bins, counts, gmin, gmax, values):
            lo[i] = hi[i] = np.nan
            continue
        # numpy takes b - a in the row's type, then interpolates in float64
        lo[i] = _lerp(float(values[0]), float(values[1]), float(values[1] - values[0]), t_lo)
        hi[i] = _lerp(float(values[2]), float(values[3]), float(values[3] - values[2]), t_hi)


# -- local normalisation ---------------------------------------------------------


def local_mean_std(stack: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation over a ``size`` x ``size`` window, mirrored at the borders."""
    import scipy.ndimage  # here, not at import: kikuchi's commands start faster
    s = (1, size, size)
    x = stack.astype(np.float64)
    mean = scipy.ndimage.uniform_filter(x, size=s, mode="mirror")
    mean2 = scipy.ndimage.uniform_filter(x * x, size=s, mode="mirror")
    return mean, np.sqrt(np.maximum(mean2 - mean * mean, 0.0))


# -- direct separable Gaussian (numba) ------------------------------------------
#
# Both passes of the separable correlation run as a *vertical* pass (along the
# first axis, image rows as contiguous vectors): the pass along the rows is a
# vertical pass of the transposed image. The vertical pass computes four output
# rows per sweep over the columns and reads four input rows per sweep, so each
# loaded input value feeds four multiply-adds held in registers (16 per sweep)
# instead of one multiply-add per load and store of an accumulator row; about
# 2.5x faster for the documented 90-tap kernel of 240 x 240 patterns.
# Every output value still receives its taps in order, one fused multiply-add
# after the other, starting from 0: the values are those of the one-tap loop to
# the bit, whatever the blocking.

#: Zeros before the taps in a padded kernel (output row r of a block of 4 uses tap u - r).
_PAD_LEAD = 3
#: Zeros after the taps (the last sweep may read up to 3 input rows beyond the last tap, shifted by 3).
_PAD_TRAIL = 6


def padded_kernel(k: np.ndarray, dtype: Any) -> np.ndarray:
    """The taps of ``k`` between zeros, as :func:`correlate_vertical` reads them."""
    kp = np.zeros(len(k) + _PAD_LEAD + _PAD_TRAIL, dtype=dtype)
    kp[_PAD_LEAD : _PAD_LEAD + len(k)] = k
    return kp


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def correlate_vertical(img, kp, kr, out):  # pragma: no cover - compiled
    """out[i, j] = sum_t k[t] img[clamp(i + t - a0, 0, h - 1), j], the taps in order.

    ``img``, ``out`` (h, w) C-contiguous; ``kp`` = :func:`padded_kernel`
    of the ``kr`` taps ``k``; ``a0 = kr // 2``. Rows beyond the image are
    the border rows (replication). Output rows go four at a time: input
    rows ``i - a0 + u`` for ``u = 0, 1, ...`` are read four per sweep and
    each one is added to the four output rows with taps ``u``, ``u - 1``,
    ``u - 2``, ``u - 3`` (zero outside the kernel: adding 0 * x to a sum
    leaves it unchanged). The last ``h % 4`` rows go one at a time.
    """
    h, w = img.shape
    a0 = kr // 2
    h4 = h - h % 4
    for i in range(0, h4, 4):
        o0 = out[i]
        o1 = out[i + 1]
        o2 = out[i + 2]
        o3 = out[i + 3]
        o0[:] = 0.0
        o1[:] = 0.0
        o2[:] = 0.0
        o3[:] = 0.0
        for u in range(0, kr + 3, 4):
            x0 = img[min(max(i + u - a0, 0), h - 1)]
            x1 = img[min(max(i + u + 1 - a0, 0), h - 1)]
            x2 = img[min(max(i + u + 2 - a0, 0), h - 1)]
            x3 = img[min(max(i + u + 3 - a0, 0), h - 1)]
            b = u + _PAD_LEAD  # kp[b + s - r]: tap u + s - r of output row i + r
            c00, c01, c02, c03 = kp[b], kp[b + 1], kp[b + 2], kp[b + 3]
            c10, c11, c12, c13 = kp[b - 1], kp[b], kp[b + 1], kp[b + 2]
            c20, c21, c22, c23 = kp[b - 2], kp[b - 1], kp[b], kp[b + 1]
            c30, c31, c32, c33 = kp[b - 3], kp[b - 2], kp[b - 1], kp[b]
            for j in range(w):
                v0 = x0[j]
                v1 = x1[j]
                v2 = x2[j]
                v3 = x3[j]
                o0[j] = o0[j] + c00 * v0 + c01 * v1 + c02 * v2 + c03 * v3
                o1[j] = o1[j] + c10 * v0 + c11 * v1 + c12 * v2 + c13 * v3
                o2[j] = o2[j] + c20 * v0 + c21 * v1 + c22 * v2 + c23 * v3
                o3[j] = o3[j] + c30 * v0 + c31 * v1 + c32 * v2 + c33 * v3
    for i in range(h4, h):
        o = out[i]
        o[:] = 0.0
        for u in range(0, kr, 4):
            x0 = img[min(max(i + u - a0, 0), h - 1)]
            x1 = img[min(max(i + u + 1 - a0, 0), h - 1)]
            x2 = img[min(max(i + u + 2 - a0, 0), h - 1)]
            x3 = img[min(max(i + u + 3 - a0, 0), h - 1)]
            b = u + _PAD_LEAD
            c0, c1, c2, c3 = kp[b], kp[b + 1], kp[b + 2], kp[b + 3]
            for j in range(w):
                o[j] = o[j] + c0 * x0[j] + c1 * x1[j] + c2 * x2[j] + c3 * x3[j]


@numba.njit(nogil=True, cache=True)
def transpose_block(src, s0, nr, nc, dst, d0):  # pragma: no cover - compiled
    """dst[j, d0 + i] = src[i, s0 + j] for i < nr, j < nc: source rows read in order, written as columns
    (twice as fast here as reading columns, and as numpy's transposed copy)."""
    for i in range(nr):
        row = src[i]
        c = d0 + i
        for j in range(nc):
            dst[j, c] = row[s0 + j]


#: Images side by side in one pass of :func:`_lowpass_group`: enough for rows of about 512
#: values (short rows cost loop overhead) while three such images stay in a core's L2 cache.
_GROUP_ROW = 512
_GROUP_PIXELS = 1 << 16


def group_size(h: int, w: int) -> int:
    """Patterns filtered side by side: 8 of 60 x 60, 4 of 120 x 120, 1 of 240 x 240."""
    return max(1, min(_GROUP_ROW // max(h, w), _GROUP_PIXELS // (h * w)))


@numba.njit(nogil=True, cache=True)
def _lowpass_group(x, kp_row, kr_row, kp_col, kr_col, a, b):  # pragma: no cover - compiled
    """The low-pass of the g images ``x`` (g, h, w), side by side: returns (h, g * w), image q in columns q*w:(q+1)*w.

    The images are laid side by side transposed, ``(w, g * h)`` in ``a``,
    for the pass along their rows, then side by side ``(h, g * w)`` in
    ``a`` again for the pass along their columns (``b`` holds each pass's
    output): one vertical pass covers all of them with rows g times longer,
    and no column mixes two images, so each output is that of the image
    alone, to the bit. ``a`` and ``b`` hold at least g * h * w values.
    """
    g, h, w = x.shape
    xt = a[: g * h * w].reshape((w, g * h))
    tt = b[: g * h * w].reshape((w, g * h))
    for q in range(g):
        transpose_block(x[q], 0, h, w, xt, q * h)
    correlate_vertical(xt, kp_col, kr_col, tt)  # along the rows of each image
    t = a[: g * h * w].reshape((h, g * w))  # xt is done with
    for q in range(g):
        transpose_block(tt, q * h, w, h, t, q * w)
    low = b[: g * h * w].reshape((h, g * w))  # and tt
    correlate_vertical(t, kp_row, kr_row, low)  # along the columns
    return low


@numba.njit(nogil=True, cache=True)
def _lowpass_stack(x, kp_row, kr_row, kp_col, kr_col, group, out):  # pragma: no cover - compiled
    """out[p] = correlation of x[p] along its rows (``kp_col``), then along its columns (``kp_row``)."""
    n, h, w = x.shape
    a = np.empty(group * h * w, dtype=x.dtype)
    b = np.empty(group * h * w, dtype=x.dtype)
    for p0 in range(0, n, group):
        g = min(group, n - p0)
        low = _lowpass_group(x[p0 : p0 + g], kp_row, kr_row, kp_col, kr_col, a, b)
        for q in range(g):
            out[p0 + q] = low[:, q * w : (q + 1) * w]


#: Kernel length up to which the direct sum beats the FFT (measured on 240 to 800 pixel patterns: the FFT wins from about 250 taps).
DIRECT_MAX_TAPS = 200


def lowpass_direct(stack: np.ndarray, k_row: np.ndarray, k_col: np.ndarray) -> np.ndarray:
    """The correlation of :func:`lowpass_fft` summed directly in real space (numba, nogil).

    Two passes of ``len(k)`` multiply-adds per pixel (first along the rows,
    then along the columns), vectorised along the image rows as fused
    multiply-adds; faster than the FFT for kernels of up to
    :data:`DIRECT_MAX_TAPS` taps, with the same values to rounding.
    """
    x = np.ascontiguousarray(stack)
    out = np.empty_like(x)
    group = group_size(*x.shape[1:])
    _lowpass_stack(
        x, padded_kernel(k_row, x.dtype), len(k_row), padded_kernel(k_col, x.dtype), len(k_col), group, out
    )
    return out


# -- fused static + dynamic background (numba, one pattern at a time) ----------------


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def background_fused(stack, static, use_static, kp_row, kr_row, kp_col, kr_col, group, subtract, out):  # pragma: no cover - compiled
    """Static division, Gaussian low-pass (direct sum) and dynamic division or subtraction, ``group`` patterns at a time.

    ``stack`` (n, h, w) any real dtype; ``static`` (h, w) float32 (used when
    ``use_static``): ``x = float32(stack) / static``, 0 where static <= 0;
    ``low`` = the correlation of :func:`lowpass_direct` (same loops, same
    order of operations; ``kp_*`` from :func:`padded_kernel` in float32,
    ``group`` from :func:`group_size`); ``out`` (n, h, w) float32 gets
    ``x / low`` (0 where not finite, and where ``low`` is 0) or, with ``subtract``, ``x - low``. The
    same values as :func:`remove_static_background`, :func:`lowpass_direct`
    and ``remove_bg`` / ``make_signal_bg`` one after the other, but the
    intermediate images of a group stay in the cache (three images' worth:
    ``x`` and two buffers taking turns) instead of streaming three float
    stacks through memory.
    """
    n, h, w = stack.shape
    x = np.empty((group, h, w), dtype=np.float32)
    a = np.empty(group * h * w, dtype=np.float32)
    b = np.empty(group * h * w, dtype=np.float32)
    for p0 in range(0, n, group):
        g = min(group, n - p0)
        for q in range(g):
            src = stack[p0 + q]
            xq = x[q]
            if use_static:
                for i in range(h):
                    for j in range(w):
                        s = static[i, j]
                        xq[i, j] = np.float32(src[i, j]) / s if s > 0 else np.float32(0.0)
            else:
                for i in range(h):
                    for j in range(w):
                        xq[i, j] = np.float32(src[i, j])
        low = _lowpass_group(x[:g], kp_row, kr_row, kp_col, kr_col, a, b)
        for q in range(g):
            o = out[p0 + q]
            xq = x[q]
            lq = low[:, q * w : (q + 1) * w]
            if subtract:
                for i in range(h):
                    for j in range(w):
                        o[i, j] = xq[i, j] - lq[i, j]
            else:
                for i in range(h):
                    for j in range(w):
                        d = lq[i, j]
                        # 0 where not finite (NaN fails too); a zero low-pass (0 / 0 where a pattern is dark)
                        # is tested first: numba's division by a float 0 raises (error_model 'python')
                        v = xq[i, j] / d if d != 0 else np.float32(np.inf)
                        o[i, j] = v if np.abs(v) < np.inf else np.float32(0.0)


# -- patterns without signal ---------------------------------------------------------


@numba.njit(nogil=True, cache=True)
def flat_stack(stack, out):  # pragma: no cover - compiled
    """``out[p]`` = True when every pixel of pattern ``p`` of ``stack`` (n, h, w) equals its first pixel.

    Row by row (each row's comparisons vectorise), stopping at the first row
    that holds another value: a pattern with signal is decided within a row
    or two.
    """
    n, h, w = stack.shape
    for p in range(n):
        x = stack[p]
        first = x[0, 0]
        flat = True
        for i in range(h):
            row = x[i]
            differs = False
            for j in range(w):
                differs = differs | (row[j] != first)
            if differs:
                flat = False
                break
        out[p] = flat


@numba.njit(nogil=True, cache=True)
def not_finite_stack(bits, exponent, out):  # pragma: no cover - compiled
    """``out[p]`` = True when pattern ``p`` holds a NaN or an infinity.

    ``bits`` is the float stack viewed as unsigned integers of the same
    width, ``exponent`` the mask of the exponent bits: a value is not finite
    when they are all set. Integer operations, so the loop vectorises.
    """
    n, h, w = bits.shape
    for p in range(n):
        x = bits[p]
        bad = False
        for i in range(h):
            row = x[i]
            found = False
            for j in range(w):
                found = found | ((row[j] & exponent) == exponent)
            if found:
                bad = True
                break
        out[p] = bad


# -- non-local pattern averaging (NLPAR) ----------------------------------------

#: Pixels summed in float32 before the sum goes to float64: partial sums short
#: enough to keep the rounding far below the noise term they are compared with.
_NLPAR_BLOCK = 1024
#: Forward neighbours (row, col offsets) of the 3 x 3 window: each pair of points once.
_FORWARD_3X3 = ((0, 1), (1, -1), (1, 0), (1, 1))


@numba.njit(nogil=True, cache=True, fastmath={"reassoc", "contract", "nsz"})
def _partial_squared_distance(a, b):  # pragma: no cover - compiled
    """Σ (a - b)² in float32, in vector lanes (the order is the compiler's, fixed for a length)."""
    s = np.float32(0.0)
    for k in range(a.shape[0]):
        d = a[k] - b[k]
        s += d * d
    return s


@numba.njit(nogil=True, cache=True)
def squared_distance(a, b):  # pragma: no cover - compiled
    """Σ (a - b)² of two float32 vectors of the same length, as float64: float32 sums of
    :data:`_NLPAR_BLOCK` pixels (slices: a loop over an index range does not vectorise here)."""
    n = a.shape[0]
    total = 0.0
    for k0 in range(0, n, _NLPAR_BLOCK):
        k1 = min(n, k0 + _NLPAR_BLOCK)
        total += _partial_squared_distance(a[k0:k1], b[k0:k1])
    return total


@numba.njit(nogil=True, cache=True)
def gather_pixels(x, pixels, out):  # pragma: no cover - compiled
    """``out[i, j, k] = x[i, j, pixels[k]]``: the pixels compared, side by side (10x numpy's fancy indexing here)."""
    rows, cols, _ = x.shape
    m = pixels.shape[0]
    for i in range(rows):
        for j in range(cols):
            src = x[i, j]
            dst = out[i, j]
            for k in range(m):
                dst[k] = src[pixels[k]]


@numba.njit(nogil=True, cache=True)
def nlpar_sigma2(y, have, a0, a1, b0, b1, s2, raw):  # pragma: no cover - compiled
    """Noise variance of the points ``[a0, a1) x [b0, b1)`` of ``y`` from their 3 x 3 neighbours.

    ``y`` (rows, cols, p) float32 (the pixels compared), ``have`` (rows,
    cols) bool. ``s2[r, c]`` = min over the neighbours q that have a pattern
    of ``D(p, q) / (2 p)``, ``D`` the sum of squared differences (a pair of
    equal patterns with independent noise of variance s² each has
    ``E[D] = 2 p s²``); neighbours with ``D == 0`` (the same pattern stored
    twice) are left out; NaN where there is no such neighbour. When
    ``raw.shape[0] > 0`` the ``D`` to the 3 x 3 window (raster order, NaN
    where no neighbour, the centre NaN) go to ``raw`` (a1 - a0, b1 - b0, 9).
    Each pair is compared once.
    """
    rows, cols = have.shape
    keep = raw.shape[0] > 0
    twice_p = 2.0 * y.shape[2]
    for r in range(a0, a1):
        for c in range(b0, b1):
            s2[r, c] = np.inf
    if keep:
        raw[:] = np.nan
    for r in range(max(0, a0 - 1), min(rows, a1)):
        for c in range(max(0, b0 - 1), min(cols, b1 + 1)):
            if not have[r, c]:
                continue
            p_in = r >= a0 and b0 <= c < b1
            for k in range(4):
                dr, dc = _FORWARD_3X3[k]
                rq, cq = r + dr, c + dc
                if rq >= rows or cq < 0 or cq >= cols or not have[rq, cq]:
                    continue
                q_in = a0 <= rq < a1 and b0 <= cq < b1
                if not (p_in or q_in):
                    continue
                d = squared_distance(y[r, c], y[rq, cq])
                v = d / twice_p
                slot = (dr + 1) * 3 + dc + 1
                if p_in:
                    if d > 0.0 and v < s2[r, c]:
                        s2[r, c] = v
                    if keep:
                        raw[r - a0, c - b0, slot] = d
                if q_in:
                    if d > 0.0 and v < s2[rq, cq]:
                        s2[rq, cq] = v
                    if keep:
                        raw[rq - a0, cq - b0, 8 - slot] = d
    for r in range(a0, a1):
        for c in range(b0, b1):
            if s2[r, c] == np.inf:
                s2[r, c] = np.nan


@numba.njit(nogil=True, cache=True)
def nlpar_distances(y, have, s2, sr, r0, r1, c0, c1, dist):  # pragma: no cover - compiled
    """Noise-normalised distances of the points ``[r0, r1) x [c0, c1)`` to their search window.

    ``dist`` (r1 - r0, c1 - c0, (2 sr + 1)²), the window in raster order:
    ``(D - p (s_i² + s_j²)) / ((s_i² + s_j²) sqrt(2 p))`` (D the sum of
    squared differences over the ``p`` pixels of ``y``: 0 on average for two
    equal patterns with independent noise, in units of its standard
    deviation), -inf at the point itself, +inf where the window leaves the
    map, has no pattern or no noise estimate (``s2`` NaN; needed for the
    points within ``sr`` of the region: a point without one is averaged
    with no other and is no one's neighbour). Each pair is compared once.
    """
    rows, cols = have.shape
    m = 2 * sr + 1
    kk = m * m
    n_pix = y.shape[2]
    root = math.sqrt(2.0 * n_pix)
    dist[:] = np.inf
    for r in range(r0, r1):
        for c in range(c0, c1):
            if have[r, c]:
                dist[r - r0, c - c0, sr * m + sr] = -np.inf
    for r in range(max(0, r0 - sr), min(rows, r1)):
        for c in range(max(0, c0 - sr), min(cols, c1 + sr)):
            if not have[r, c] or not s2[r, c] >= 0.0:
                continue
            p_in = r >= r0 and c0 <= c < c1
            for dr in range(0, sr + 1):
                rq = r + dr
                if rq >= rows:
                    break
                for dc in range(-sr, sr + 1):
                    if dr == 0 and dc <= 0:
                        continue
                    cq = c + dc
                    if cq < 0 or cq >= cols or not have[rq, cq] or not s2[rq, cq] >= 0.0:
                        continue
                    q_in = r0 <= rq < r1 and c0 <= cq < c1
                    if not (p_in or q_in):
                        continue
                    d = squared_distance(y[r, c], y[rq, cq])
                    s = s2[r, c] + s2[rq, cq]
                    v = (d - n_pix * s) / (s * root)
                    k = (dr + sr) * m + dc + sr
                    if p_in:
                        dist[r - r0, c - c0, k] = v
                    if q_in:
                        dist[rq - r0, cq - c0, kk - 1 - k] = v


@numba.njit(nogil=True, cache=True)
def nlpar_weight(v, inv_lam2):  # pragma: no cover - compiled
    """``exp(-max(v, 0) / lambda²)``; 1 at or below the noise (v <= 0, the point itself), 0 for +inf."""
    if v <= 0.0:
        return 1.0
    return math.exp(-v * inv_lam2)


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def nlpar_average(x, dist, inv_lam2, sr, r0, c0, out):  # pragma: no cover - compiled
    """Weighted means of the search windows: ``out[i, j] = Σ w_k x_k / Σ w_k``.

    ``x`` (rows, cols, p) float32 (all pixels), ``dist`` from
    :func:`nlpar_distances` for the points ``r0 + i, c0 + j``; ``out``
    (i, j, p) float32, zeros where the point has no weight of its own (no
    pattern). Neighbours of weight 0 are skipped; the others are added in
    the raster order of the window with float32 weights ``w_k / Σ w``, eight
    per sweep of the output (the same sums as one at a time).
    """
    ni, nj, kk = dist.shape
    m = 2 * sr + 1
    n_pix = x.shape[2]
    nr = np.empty(kk, dtype=np.int64)
    nc = np.empty(kk, dtype=np.int64)
    nw = np.empty(kk, dtype=np.float64)
    for i in range(ni):
        for j in range(nj):
            o = out[i, j]
            o[:] = 0.0
            if dist[i, j, sr * m + sr] != -np.inf:
                continue
            k = 0
            total = 0.0
            for a in range(kk):
                v = dist[i, j, a]
                if v == np.inf:
                    continue
                w = nlpar_weight(v, inv_lam2)
                if w == 0.0:
                    continue
                nr[k] = r0 + i + a // m - sr
                nc[k] = c0 + j + a % m - sr
                nw[k] = w
                total += w
                k += 1
            for a in range(k):
                nw[a] = np.float32(nw[a] / total)
            q = 0
            while q + 8 <= k:  # eight neighbours per sweep: one load and store of the output per eight
                w0, w1, w2, w3 = np.float32(nw[q]), np.float32(nw[q + 1]), np.float32(nw[q + 2]), np.float32(nw[q + 3])
                w4, w5, w6, w7 = np.float32(nw[q + 4]), np.float32(nw[q + 5]), np.float32(nw[q + 6]), np.float32(nw[q + 7])
                p0, p1, p2, p3 = x[nr[q], nc[q]], x[nr[q + 1], nc[q + 1]], x[nr[q + 2], nc[q + 2]], x[nr[q + 3], nc[q + 3]]
                p4, p5, p6, p7 = x[nr[q + 4], nc[q + 4]], x[nr[q + 5], nc[q + 5]], x[nr[q + 6], nc[q + 6]], x[nr[q + 7], nc[q + 7]]
                for t in range(n_pix):  # added one after the other, as the one-neighbour loop does
                    o[t] = o[t] + w0 * p0[t] + w1 * p1[t] + w2 * p2[t] + w3 * p3[t] + w4 * p4[t] + w5 * p5[t] + w6 * p6[t] + w7 * p7[t]
                q += 8
            while q + 4 <= k:
                w0, w1, w2, w3 = np.float32(nw[q]), np.float32(nw[q + 1]), np.float32(nw[q + 2]), np.float32(nw[q + 3])
                p0, p1, p2, p3 = x[nr[q], nc[q]], x[nr[q + 1], nc[q + 1]], x[nr[q + 2], nc[q + 2]], x[nr[q + 3], nc[q + 3]]
                for t in range(n_pix):
                    o[t] = o[t] + w0 * p0[t] + w1 * p1[t] + w2 * p2[t] + w3 * p3[t]
                q += 4
            while q < k:
                wq = np.float32(nw[q])
                p = x[nr[q], nc[q]]
                for t in range(n_pix):
                    o[t] = o[t] + wq * p[t]
                q += 1


@numba.njit(nogil=True, cache=True)
def nlpar_lambda_objective(dist, inv_lam2, target):  # pragma: no cover - compiled
    """Mean over the points of ``|target - 1 / W|``, ``W`` the total weight of a 3 x 3 window (its centre 1).

    ``dist`` (n, 8): the normalised distances to the 8 neighbours, +inf where none.
    """
    n, k = dist.shape
    s = 0.0
    for i in range(n):
        total = 1.0
        for a in range(k):
            v = dist[i, a]
            if v != np.inf:
                total += nlpar_weight(v, inv_lam2)
        s += abs(target - 1.0 / total)
    return s / max(n, 1)
