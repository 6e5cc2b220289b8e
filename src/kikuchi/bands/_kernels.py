"""numba kernels of the Hough/Radon band detection (private).

All kernels work on the theta-major accumulator layout ``(n_theta, n_rho)``
and run without the GIL, so that stacks of patterns can be split over
threads. Lines are ``x cos(theta) + y sin(theta) = rho`` with ``x = col - xc``
and ``y = row - yc`` measured from the image centre; ``theta`` in
``[0, pi)`` is sampled at ``t * pi / n_theta`` and the rho bins are centred
on zero, so that the line ``(theta + pi, rho)`` is ``(theta, -rho)``: the
bin ``(t + n_theta, r)`` is ``(t, n_rho - 1 - r)``.
"""

from __future__ import annotations

import numba
import numpy as np

# Columns of the per-band output rows of ``_detect_stack``.
COL_RHO, COL_THETA, COL_INTENSITY, COL_WIDTH, COL_SLOPE, COL_VALID = range(6)
N_COLS = 6
#: Patterns transformed together in one pass over the lookup table.
BLOCK = 8


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _hough_binary(xs, ys, cos_t, sin_t, rho0, drho, n_rho):
    """Count the pixels ``(xs, ys)`` on each line bin: the classic straight-line Hough transform.

    Returns an int32 accumulator ``(n_rho, n_theta)`` (rho along rows, as in the literature).
    """
    n_theta = cos_t.size
    acc = np.zeros((n_rho, n_theta), dtype=np.int32)
    for i in range(xs.size):
        x = xs[i]
        y = ys[i]
        for t in range(n_theta):
            r = int(np.floor((x * cos_t[t] + y * sin_t[t] - rho0) / drho + 0.5))
            if 0 <= r < n_rho:
                acc[r, t] += 1
    return acc


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def _filter_one(radon, valid, k_rho, k_theta, tmp, out):
    """Butterfly filter: ``-d2/drho2`` Gaussian along rho, Gaussian along theta.

    The Radon values are made zero-mean over the valid bins first; invalid
    bins count as the mean (zero). Theta wraps around with rho mirrored.
    ``tmp`` is a work array of shape (n_theta + 2 * (k_theta.size // 2), n_rho + 2 * (k_rho.size // 2)).
    """
    n_theta, n_rho = radon.shape
    hr = k_rho.size // 2
    ht = k_theta.size // 2
    s = 0.0
    n = 0
    for t in range(n_theta):
        for r in range(n_rho):
            if valid[t, r]:
                s += radon[t, r]
                n += 1
    mean = s / max(n, 1)
    # zero-padded along rho, the zero-mean transform (invalid bins zero)
    pad = np.zeros(n_rho + 2 * hr, dtype=np.float32)
    for t in range(n_theta):
        for r in range(n_rho):
            pad[hr + r] = radon[t, r] - mean if valid[t, r] else 0.0
        row = tmp[ht + t]
        for r in range(n_rho):
            acc = 0.0
            for j in range(k_rho.size):
                acc += k_rho[j] * pad[r + j]
            row[r] = acc
    # wrap theta with rho mirrored
    for j in range(ht):
        for r in range(n_rho):
            tmp[j, r] = tmp[ht + n_theta - ht + j, n_rho - 1 - r]
            tmp[ht + n_theta + j, r] = tmp[ht + j, n_rho - 1 - r]
    for t in range(n_theta):
        for r in range(n_rho):
            out[t, r] = 0.0
        for j in range(k_theta.size):
            kj = k_theta[j]
            src = tmp[t + j]
            for r in range(n_rho):
                out[t, r] += kj * src[r]
        for r in range(n_rho):
            if not valid[t, r]:
                out[t, r] = 0.0


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _value(img, t, r):
    """Accumulator value at theta bin ``t`` (any integer) with the rho mirror on wrapping."""
    n_theta, n_rho = img.shape
    if t < 0:
        t += n_theta
        r = n_rho - 1 - r
    elif t >= n_theta:
        t -= n_theta
        r = n_rho - 1 - r
    if r < 0 or r >= n_rho:
        return -np.inf
    return img[t, r]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _peaks_one(filt, valid, n_bands, min_dist_rho, min_dist_theta, threshold, edge, cand_t, cand_r, cand_v, out_t, out_r):
    """Local maxima of ``filt`` above ``threshold``, strongest first, with non-maximum suppression.

    Bins closer than ``edge`` bins (along rho) to the edge of the valid
    region are not searched.

    Returns the number of peaks written to ``out_t``/``out_r`` (bin indices).
    """
    n_theta, n_rho = filt.shape
    n_c = 0
    for t in range(n_theta):
        for r in range(edge, n_rho - edge):
            # away from the edge of the searched region: the filter leaves a ridge there
            if not (valid[t, r - edge] and valid[t, r + edge]):
                continue
            v = filt[t, r]
            if v <= threshold:
                continue
            is_max = True
            for dt in range(-1, 2):
                for dr in range(-1, 2):
                    if dt == 0 and dr == 0:
                        continue
                    u = _value(filt, t + dt, r + dr)
                    # strict on one side so that plateaus give one maximum
                    if u > v or (u == v and (dt < 0 or (dt == 0 and dr < 0))):
                        is_max = False
            if is_max and n_c < cand_v.size:
                cand_t[n_c] = t
                cand_r[n_c] = r
                cand_v[n_c] = v
                n_c += 1
    # strongest remaining candidate first (selection, no sort: n_bands is small)
    n_out = 0
    for _ in range(n_c):
        i = -1
        best = -np.inf
        for c in range(n_c):
            if cand_v[c] > best:
                best = cand_v[c]
                i = c
        if i < 0 or best == -np.inf:
            break
        cand_v[i] = -np.inf
        t = cand_t[i]
        r = cand_r[i]
        ok = True
        for m in range(n_out):
            dt = abs(t - out_t[m])
            rr = out_r[m]
            if dt > n_theta // 2:  # closer across the wrap: compare with the mirrored rho
                dt = n_theta - dt
                rr = n_rho - 1 - rr
            if dt <= min_dist_theta and abs(r - rr) <= min_dist_rho:
                ok = False
                break
        if ok:
            out_t[n_out] = t
            out_r[n_out] = r
            n_out += 1
            if n_out >= n_bands:
                break
    return n_out


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _parabola(a, b, c):
    """Offset of the vertex of the parabola through (-1, a), (0, b), (1, c), clipped to [-0.5, 0.5]."""
    den = a - 2.0 * b + c
    if den >= 0.0:
        return 0.0
    d = 0.5 * (a - c) / den
    if d > 0.5:
        d = 0.5
    elif d < -0.5:
        d = -0.5
    return d


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _describe_peak(filt, t, r, rho_bins, drho, dtheta, out):
    """Sub-bin position, width and slope of the peak at bin ``(t, r)`` written into ``out``."""
    n_theta, n_rho = filt.shape
    v = filt[t, r]
    a = _value(filt, t, r - 1)
    c = _value(filt, t, r + 1)
    dr = 0.0
    if np.isfinite(a) and np.isfinite(c):
        dr = _parabola(a, v, c)
    ta = _value(filt, t - 1, r)
    tc = _value(filt, t + 1, r)
    dt = 0.0
    if np.isfinite(ta) and np.isfinite(tc):
        dt = _parabola(ta, v, tc)
    rho = rho_bins[r] + dr * drho
    theta = (t + dt) * dtheta
    if theta < 0.0:
        theta += np.pi
        rho = -rho
    elif theta >= np.pi:
        theta -= np.pi
        rho = -rho
    # width: distance between the zero crossings of the filtered profile on either side
    left = 0.0
    k = r
    while k > 0 and filt[t, k - 1] > 0.0:
        k -= 1
    if k > 0:
        f0 = filt[t, k]
        f1 = filt[t, k - 1]
        left = (r - k) + f0 / (f0 - f1)
    else:
        left = float(r)
    right = 0.0
    k = r
    while k < n_rho - 1 and filt[t, k + 1] > 0.0:
        k += 1
    if k < n_rho - 1:
        f0 = filt[t, k]
        f1 = filt[t, k + 1]
        right = (k - r) + f0 / (f0 - f1)
    else:
        right = float(n_rho - 1 - r)
    out[COL_RHO] = rho
    out[COL_THETA] = theta
    out[COL_INTENSITY] = v
    out[COL_WIDTH] = (left + right) * drho
    # band slope analogue: curvature of the peak across rho (per pixel^2)
    slope = 0.0
    if np.isfinite(a) and np.isfinite(c):
        slope = (2.0 * v - a - c) / (drho * drho)
    out[COL_SLOPE] = slope
    out[COL_VALID] = 1.0


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def _radon_block(patterns, start, nbk, pix, ptr, idx, wts, divisor, vals, acc, flat):
    """Radon transforms of ``nbk`` standardised patterns from ``start``, sharing one pass over the lookup table.

    The lookup table is in compressed rows: bin ``q = t * n_rho + r``
    gathers pixels ``idx[ptr[q]:ptr[q + 1]]`` (indices into the masked
    pixels) with weights ``wts``. ``vals`` (n_pix, BLOCK) holds the
    standardised masked pixels (zero mean, unit standard deviation per
    pattern), ``acc`` (n_theta, n_rho, BLOCK) the line sums divided by
    ``divisor`` (n_theta, n_rho): the line lengths for line means, or the
    longest line's length for weighted sums; the innermost loop over the
    BLOCK patterns vectorises.
    """
    n_theta, n_rho = divisor.shape
    n_pix = pix.size
    for b in range(nbk):
        img = patterns[start + b].ravel()
        s = 0.0
        s2 = 0.0
        for p in range(n_pix):
            v = img[pix[p]]
            s += v
            s2 += v * v
        mu = s / n_pix
        var = s2 / n_pix - mu * mu
        flat[b] = var <= 1e-10 * (mu * mu + 1e-30)
        sd = np.sqrt(var) if not flat[b] else 1.0
        for p in range(n_pix):
            vals[p, b] = (img[pix[p]] - mu) / sd
    for b in range(nbk, BLOCK):
        for p in range(n_pix):
            vals[p, b] = 0.0
    # gather: each (theta, rho) bin sums its pixels' shares for all B patterns at once
    n_bins = n_theta * n_rho
    s = np.zeros(BLOCK, dtype=np.float32)
    for q in range(n_bins):
        t = q // n_rho
        r = q - t * n_rho
        for b in range(BLOCK):
            s[b] = 0.0
        for e in range(ptr[q], ptr[q + 1]):
            p = idx[e]
            w = wts[e]
            for b in range(BLOCK):
                s[b] += w * vals[p, b]
        c = divisor[t, r]
        inv = 1.0 / c if c > 0.0 else 0.0
        for b in range(BLOCK):
            acc[t, r, b] = s[b] * inv


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _detect_stack(
    patterns, pix, ptr, idx, wts, divisor, valid, rho_bins, drho, k_rho, k_theta,
    n_bands, min_dist_rho, min_dist_theta, rel_threshold, out, radon_out, filt_out,
):
    """Detect up to ``n_bands`` bands in each pattern of ``patterns`` (n, h, w) float32.

    Each pattern is standardised over the mask (zero mean, unit standard
    deviation), Radon transformed (line sums over ``divisor``, see
    ``_radon_block``; blocks of patterns share each pass over the lookup
    table), butterfly filtered and searched for peaks. ``out``
    (n, n_bands, N_COLS) receives the band rows (unused rows keep
    COL_VALID = 0). ``radon_out`` (m, n_theta, n_rho) and ``filt_out``
    (k, n_theta, n_rho) keep the transforms and the filtered transforms of
    the first ``m`` and ``k`` patterns (either may be 0).
    """
    n = patterns.shape[0]
    n_theta, n_rho = divisor.shape
    dtheta = np.pi / n_theta
    block = BLOCK
    vals = np.empty((pix.size, block), dtype=np.float32)
    acc = np.empty((n_theta, n_rho, block), dtype=np.float32)
    flat = np.zeros(block, dtype=np.bool_)
    radon = np.empty((n_theta, n_rho), dtype=np.float32)
    tmp = np.zeros((n_theta + 2 * (k_theta.size // 2), n_rho + 2 * (k_rho.size // 2)), dtype=np.float32)
    filt = np.empty((n_theta, n_rho), dtype=np.float32)
    n_cand = n_theta * n_rho // 2 + 1
    cand_t = np.empty(n_cand, dtype=np.int64)
    cand_r = np.empty(n_cand, dtype=np.int64)
    cand_v = np.empty(n_cand, dtype=np.float32)
    pk_t = np.empty(n_bands, dtype=np.int64)
    pk_r = np.empty(n_bands, dtype=np.int64)
    for start in range(0, n, block):
        nbk = min(block, n - start)
        _radon_block(patterns, start, nbk, pix, ptr, idx, wts, divisor, vals, acc, flat)
        for b in range(nbk):
            i = start + b
            for t in range(n_theta):
                for r in range(n_rho):
                    radon[t, r] = acc[t, r, b]
            _filter_one(radon, valid, k_rho, k_theta, tmp, filt)
            if i < radon_out.shape[0]:
                for t in range(n_theta):
                    for r in range(n_rho):
                        radon_out[i, t, r] = radon[t, r]
            if i < filt_out.shape[0]:
                for t in range(n_theta):
                    for r in range(n_rho):
                        filt_out[i, t, r] = filt[t, r]
            vmax = 0.0
            for t in range(n_theta):
                for r in range(n_rho):
                    if filt[t, r] > vmax:
                        vmax = filt[t, r]
            for bb in range(n_bands):
                for c in range(out.shape[2]):
                    out[i, bb, c] = 0.0
            if flat[b] or vmax <= 1e-6:
                continue
            n_pk = _peaks_one(filt, valid, n_bands, min_dist_rho, min_dist_theta, rel_threshold * vmax,
                              k_rho.size // 4 + 1, cand_t, cand_r, cand_v, pk_t, pk_r)
            for bb in range(n_pk):
                _describe_peak(filt, pk_t[bb], pk_r[bb], rho_bins, drho, dtheta, out[i, bb])
    return out
