"""numba kernels of Hough indexing (private): band normals, triplet voting, least-squares fit.

Rotations ``U`` map crystal to sample: ``n_sample = U @ n_crystal``.
"""

from __future__ import annotations

import numba
import numpy as np



@numba.njit(nogil=True, cache=True, error_model="numpy")
def _band_normals(table, minv_t, xc, yc, out):
    """Plane normals (unit, sample frame) of the bands in ``table`` (nb, 6) through ``minv_t = inv(M).T``.

    ``M`` maps homogeneous pixel coordinates ``(col, row, 1)`` to (unnormalised)
    directions in the sample frame; a line with homogeneous coefficients
    ``l`` has the plane normal ``inv(M).T @ l``. Returns the number of valid bands.
    """
    nb = table.shape[0]
    k = 0
    for b in range(nb):
        if table[b, 5] <= 0.0:
            continue
        rho = table[b, 0]
        c = np.cos(table[b, 1])
        s = np.sin(table[b, 1])
        l0 = c
        l1 = s
        l2 = -(rho + xc * c + yc * s)
        n0 = minv_t[0, 0] * l0 + minv_t[0, 1] * l1 + minv_t[0, 2] * l2
        n1 = minv_t[1, 0] * l0 + minv_t[1, 1] * l1 + minv_t[1, 2] * l2
        n2 = minv_t[2, 0] * l0 + minv_t[2, 1] * l1 + minv_t[2, 2] * l2
        norm = np.sqrt(n0 * n0 + n1 * n1 + n2 * n2)
        out[k, 0] = n0 / norm
        out[k, 1] = n1 / norm
        out[k, 2] = n2 / norm
        k += 1
    return k


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _copy33(src, dst):
    """dst[:] = src for 3 x 3 arrays (explicit loops: no broadcasting code to compile)."""
    for i in range(3):
        for j in range(3):
            dst[i, j] = src[i, j]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _det3(m):
    return (m[0, 0] * (m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1])
            - m[0, 1] * (m[1, 0] * m[2, 2] - m[1, 2] * m[2, 0])
            + m[0, 2] * (m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]))


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _polar(b, guess):
    """Rotation nearest to ``b`` (its orthogonal polar factor) by Newton iterations ``X <- (X + X^-T) / 2``.

    A little of ``guess`` is added so that rank-deficient ``b`` (all poles
    in one zone) still gives a proper rotation close to the guess.
    """
    scale = 0.0
    for i in range(3):
        for j in range(3):
            scale += b[i, j] * b[i, j]
    scale = np.sqrt(scale) + 1e-300
    x = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            x[i, j] = b[i, j] / scale + 1e-3 * guess[i, j]
    cof = np.empty((3, 3))
    for _ in range(30):
        cof[0, 0] = x[1, 1] * x[2, 2] - x[1, 2] * x[2, 1]
        cof[0, 1] = x[1, 2] * x[2, 0] - x[1, 0] * x[2, 2]
        cof[0, 2] = x[1, 0] * x[2, 1] - x[1, 1] * x[2, 0]
        cof[1, 0] = x[0, 2] * x[2, 1] - x[0, 1] * x[2, 2]
        cof[1, 1] = x[0, 0] * x[2, 2] - x[0, 2] * x[2, 0]
        cof[1, 2] = x[0, 1] * x[2, 0] - x[0, 0] * x[2, 1]
        cof[2, 0] = x[0, 1] * x[1, 2] - x[0, 2] * x[1, 1]
        cof[2, 1] = x[0, 2] * x[1, 0] - x[0, 0] * x[1, 2]
        cof[2, 2] = x[0, 0] * x[1, 1] - x[0, 1] * x[1, 0]
        det = x[0, 0] * cof[0, 0] + x[0, 1] * cof[0, 1] + x[0, 2] * cof[0, 2]
        if abs(det) < 1e-300:
            return guess.copy()
        change = 0.0
        for i in range(3):
            for j in range(3):
                v = 0.5 * (x[i, j] + cof[i, j] / det)
                change += abs(v - x[i, j])
                x[i, j] = v
        if change < 1e-13:
            break
    if _det3(x) < 0:
        return guess.copy()
    return x


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _fit_rotation(a, b, w, n, guess):
    """Proper rotation ``U`` maximising sum ``w b . (U a)`` over the first ``n`` pairs (least squares)."""
    h = np.zeros((3, 3))
    for i in range(n):
        for p in range(3):
            for q in range(3):
                h[p, q] += w[i] * b[i, p] * a[i, q]
    return _polar(h, guess)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _triad(a1, a2, b1, b2, out):
    """Rotation taking ``a1`` exactly to ``b1`` and the plane (a1, a2) to (b1, b2)."""
    ta = np.empty((3, 3))
    tb = np.empty((3, 3))
    for c in range(3):
        ta[c, 0] = a1[c]
        tb[c, 0] = b1[c]
    ca0 = a1[1] * a2[2] - a1[2] * a2[1]
    ca1 = a1[2] * a2[0] - a1[0] * a2[2]
    ca2 = a1[0] * a2[1] - a1[1] * a2[0]
    cb0 = b1[1] * b2[2] - b1[2] * b2[1]
    cb1 = b1[2] * b2[0] - b1[0] * b2[2]
    cb2 = b1[0] * b2[1] - b1[1] * b2[0]
    na = np.sqrt(ca0 * ca0 + ca1 * ca1 + ca2 * ca2)
    nb = np.sqrt(cb0 * cb0 + cb1 * cb1 + cb2 * cb2)
    ta[0, 1] = ca0 / na
    ta[1, 1] = ca1 / na
    ta[2, 1] = ca2 / na
    tb[0, 1] = cb0 / nb
    tb[1, 1] = cb1 / nb
    tb[2, 1] = cb2 / nb
    for m in (ta, tb):
        m[0, 2] = m[1, 0] * m[2, 1] - m[2, 0] * m[1, 1]
        m[1, 2] = m[2, 0] * m[0, 1] - m[0, 0] * m[2, 1]
        m[2, 2] = m[0, 0] * m[1, 1] - m[1, 0] * m[0, 1]
    for i in range(3):
        for j in range(3):
            out[i, j] = tb[i, 0] * ta[j, 0] + tb[i, 1] * ta[j, 1] + tb[i, 2] * ta[j, 2]


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _evaluate(rot, normals, nb, poles, cos_tol, best_pole, best_cos):
    """Match each band normal to its nearest pole under ``rot``; returns (count, sum of angles)."""
    count = 0
    ang_sum = 0.0
    n_p = poles.shape[0]
    for b in range(nb):
        # band normal into the crystal frame: rot^T n
        m0 = rot[0, 0] * normals[b, 0] + rot[1, 0] * normals[b, 1] + rot[2, 0] * normals[b, 2]
        m1 = rot[0, 1] * normals[b, 0] + rot[1, 1] * normals[b, 1] + rot[2, 1] * normals[b, 2]
        m2 = rot[0, 2] * normals[b, 0] + rot[1, 2] * normals[b, 1] + rot[2, 2] * normals[b, 2]
        cmax = -1.0
        kbest = -1
        for p in range(n_p):
            c = abs(m0 * poles[p, 0] + m1 * poles[p, 1] + m2 * poles[p, 2])
            if c > cmax:
                cmax = c
                kbest = p
        best_pole[b] = kbest
        best_cos[b] = cmax
        if cmax >= cos_tol:
            count += 1
            ang_sum += np.arccos(min(cmax, 1.0))
    return count, ang_sum


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _misorientation_cos(r1, r2, sym):
    """Largest cos(angle / 2)-like measure: max over symmetry ops of trace(r1^T r2 S) (higher is closer)."""
    d = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            d[i, j] = r1[0, i] * r2[0, j] + r1[1, i] * r2[1, j] + r1[2, i] * r2[2, j]
    best = -3.0
    for s in range(sym.shape[0]):
        tr = 0.0
        for i in range(3):
            for j in range(3):
                tr += d[i, j] * sym[s, j, i]
        if tr > best:
            best = tr
    return best


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _refine(rot, normals, nb, weights, poles, cos_tol, best_pole, best_cos, a, bvec, w):
    """Least-squares fit of ``rot`` to the bands matched within ``cos_tol``.

    Two passes (match, fit), then a robust pass with Cauchy weights
    (``w / (1 + (deviation / 0.5 deg)^2)``) in which a matched band deviating
    by more than twice the mean deviation of the others (and more than 0.5
    degree) is left out, when at least four bands remain.
    """
    for it in range(3):
        _evaluate(rot, normals, nb, poles, cos_tol, best_pole, best_cos)
        drop = -1
        if it == 2:
            n_m = 0
            total = 0.0
            worst = 0.0
            for b in range(nb):
                if best_cos[b] >= cos_tol:
                    dev = np.arccos(min(best_cos[b], 1.0))
                    n_m += 1
                    total += dev
                    if dev > worst:
                        worst = dev
                        drop = b
            if n_m < 5 or worst < 0.0087 or worst <= 2.0 * (total - worst) / (n_m - 1):
                drop = -1
        n = 0
        for b in range(nb):
            if best_cos[b] >= cos_tol and b != drop:
                p = best_pole[b]
                # sign of the pole that matches the band normal
                sgn = 0.0
                for q in range(3):
                    sgn += (rot[q, 0] * poles[p, 0] + rot[q, 1] * poles[p, 1] + rot[q, 2] * poles[p, 2]) * normals[b, q]
                f = 1.0 if sgn >= 0 else -1.0
                for q in range(3):
                    a[n, q] = poles[p, q] * f
                    bvec[n, q] = normals[b, q]
                w[n] = weights[b]
                if it == 2:
                    # Cauchy weights: bands far from their plane count less
                    dev = np.arccos(min(best_cos[b], 1.0)) / 0.0087
                    w[n] = weights[b] / (1.0 + dev * dev)
                n += 1
        if n < 2:
            break
        rot = _fit_rotation(a, bvec, w, n, rot)
    return rot


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _angle_of(c, s):
    """atan2(s, c) for s >= 0, in [0, pi], to 1e-5 rad by a polynomial (with libm's atan2 a reading of
    the band evidence took 1.5x as long)."""
    ac = abs(c)
    if ac >= s:
        x = s / ac if ac > 0.0 else 0.0
        swap = False
    else:
        x = ac / s
        swap = True
    x2 = x * x
    a = x * (0.99997726 + x2 * (-0.33262347 + x2 * (0.19354346 + x2 * (-0.11643287 + x2 * (0.05265332 + x2 * -0.01172120)))))
    if swap:
        a = 0.5 * np.pi - a
    if c < 0.0:
        a = np.pi - a
    return a


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _band_evidence(rot, poles, mt, xc, yc, filt, scored, half, inv_drho, inv_dtheta, rho_lim):
    """Sum of the filtered Radon transform along the band centre lines that ``rot`` predicts, and their number.

    Every pole ``p`` (crystal frame) is a plane with normal ``n = rot @ p``
    in the sample frame, whose trace on the detector is the line
    ``l = M^T n`` (``mt = M^T``, ``M`` the detector's pixel matrix):
    ``x cos(theta) + y sin(theta) = rho`` from the pattern centre ``(xc,
    yc)``. The transform ``filt`` (n_theta, n_rho) is read there by bilinear
    interpolation (theta wrapping with rho mirrored); lines through bins
    outside ``scored`` (too short to be searched, or off the detector: no
    scored bin lies beyond ``rho_lim`` bins from rho 0) are left out.
    """
    n_theta, n_rho = filt.shape
    total = 0.0
    count = 0
    g = np.empty((3, 3))  # M^T rot: pole (crystal frame) -> its line
    for i in range(3):
        for j in range(3):
            g[i, j] = mt[i, 0] * rot[0, j] + mt[i, 1] * rot[1, j] + mt[i, 2] * rot[2, j]
    for p in range(poles.shape[0]):
        l0 = g[0, 0] * poles[p, 0] + g[0, 1] * poles[p, 1] + g[0, 2] * poles[p, 2]
        l1 = g[1, 0] * poles[p, 0] + g[1, 1] * poles[p, 1] + g[1, 2] * poles[p, 2]
        l2 = g[2, 0] * poles[p, 0] + g[2, 1] * poles[p, 1] + g[2, 2] * poles[p, 2]
        s = np.sqrt(l0 * l0 + l1 * l1)
        if s < 1e-12:
            continue
        rb = -(l0 * xc + l1 * yc + l2) / s * inv_drho
        if abs(rb) > rho_lim:
            continue
        c = l0 / s
        sn = l1 / s
        if sn < 0.0 or (sn == 0.0 and c < 0.0):  # theta in [0, pi)
            c = -c
            sn = -sn
            rb = -rb
        tb = _angle_of(c, sn) * inv_dtheta
        rb += half
        t0 = int(np.floor(tb))
        r0 = int(np.floor(rb))
        ft = tb - t0
        fr = rb - r0
        v = 0.0
        inside = True
        for dt in range(2):
            for dr in range(2):
                t = t0 + dt
                r = r0 + dr
                if t >= n_theta:
                    t -= n_theta
                    r = n_rho - 1 - r
                if t < 0 or r < 0 or r >= n_rho or not scored[t, r]:
                    inside = False
                    break
                v += (ft if dt else 1.0 - ft) * (fr if dr else 1.0 - fr) * filt[t, r]
            if not inside:
                break
        if inside:
            total += v
            count += 1
    return total, count


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _slot(keys, key):
    """The slot of ``key`` >= 0 in the open-addressing set ``keys`` (-1: free; its size a power of 2), or the free slot for it."""
    mask = keys.size - 1
    h = (key * 2654435761) & mask
    while keys[h] != -1 and keys[h] != key:
        h = (h + 1) & mask
    return h


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _index_one(
    normals, nb, weights, poles, lut_idx, lut_ang, lut_sign, lut_first, ang_tol, cos_fit_tol, sym, min_sep_trace,
    max_candidates, res_rot, cos_count_tol, filt, scored, filt_sd, mt, xc, yc, half, inv_drho, inv_dtheta, rho_lim,
):
    """Triplet voting for one pattern and one phase.

    Every triplet of bands (strongest first) is compared with the look-up
    table of pole triplets (angles sorted by the first angle; ``lut_first``
    gives the search start per 0.5 degree bin of that angle); every match
    proposes a rotation (triad of the two most perpendicular pairs), scored
    by the number of all bands it explains within ``cos_fit_tol`` (then by
    their mean deviation). The search stops early once the best proposal
    explains all bands but one and has been proposed by three triplets.

    With the pattern's filtered transform (``filt_sd > 0``), the proposal
    whose predicted bands hold the most of it (:func:`_band_evidence`)
    is the best instead: the transform holds the evidence of every band
    of the pattern, the detected peaks only of the strongest few. It is
    read for proposals explaining at least 3 bands, one per set of
    explained bands (the one with the smallest deviation; the others
    refine to the same orientation). The best
    proposal is refined by least squares on its matched bands, unless the
    refined orientation explains fewer bands within ``cos_count_tol`` than
    the voted one.

    Returns (n_matched, mad_rad, n_second, evidence): bands explained by the
    best and by the best proposal at least ``min_sep_trace`` away from it
    (within ``cos_fit_tol``), and the band evidence of the solution: the
    sum of the transform along its predicted bands over ``filt_sd`` times
    the square root of their number (0 without a transform).
    """
    best_count = -1
    best_err = 1e9
    best_rot = np.eye(3)
    confirm = 0
    bp = np.empty(nb, dtype=np.int64)
    bc = np.empty(nb)
    m = max(nb, 3)
    a = np.empty((m, 3))
    bv = np.empty((m, 3))
    w3 = np.ones(m)
    rot = np.empty((3, 3))
    cand_rot = np.empty((max_candidates, 3, 3))
    cand_cnt = np.empty(max_candidates, dtype=np.int64)
    # proposals explaining the same bands refine to the same orientation: the band evidence is read once
    # per set of bands (a bit per band as the key), for the proposal closest to them
    use_evidence = filt_sd > 0.0
    by_bands = use_evidence and nb <= 62
    cand_err = np.empty(max_candidates)
    cand_read = np.ones(max_candidates, dtype=np.bool_)
    size = 2
    while by_bands and size < 2 * max_candidates:
        size *= 2
    seen_key = np.full(size, -1, dtype=np.int64)
    seen_at = np.empty(size, dtype=np.int64)
    n_cand = 0
    n_lut = lut_ang.shape[0]
    bin_w = np.pi / 360.0  # 0.5 degree bins of the first angle
    near90 = np.cos(np.pi / 2 - ang_tol)
    done = False
    for k in range(2, nb):
        if done:
            break
        for j in range(1, k):
            if done:
                break
            for i in range(j):
                dij = normals[i, 0] * normals[j, 0] + normals[i, 1] * normals[j, 1] + normals[i, 2] * normals[j, 2]
                aij = np.arccos(min(abs(dij), 1.0))
                lo_bin = int((aij - ang_tol) / bin_w)
                if lo_bin < 0:
                    lo_bin = 0
                if lo_bin >= lut_first.size:
                    continue
                start = lut_first[lo_bin]
                dik = normals[i, 0] * normals[k, 0] + normals[i, 1] * normals[k, 1] + normals[i, 2] * normals[k, 2]
                djk = normals[j, 0] * normals[k, 0] + normals[j, 1] * normals[k, 1] + normals[j, 2] * normals[k, 2]
                aik = np.arccos(min(abs(dik), 1.0))
                ajk = np.arccos(min(abs(djk), 1.0))
                sgn_obs = dij * dik * djk
                check_sign = abs(dij) > near90 and abs(dik) > near90 and abs(djk) > near90
                for e in range(start, n_lut):
                    if lut_ang[e, 0] > aij + ang_tol:
                        break
                    if abs(lut_ang[e, 0] - aij) > ang_tol:
                        continue
                    if abs(lut_ang[e, 1] - aik) > ang_tol or abs(lut_ang[e, 2] - ajk) > ang_tol:
                        continue
                    if check_sign and (sgn_obs > 0) != (lut_sign[e] > 0):
                        continue
                    p = lut_idx[e, 0]
                    q = lut_idx[e, 1]
                    r = lut_idx[e, 2]
                    dpq = poles[p, 0] * poles[q, 0] + poles[p, 1] * poles[q, 1] + poles[p, 2] * poles[q, 2]
                    dpr = poles[p, 0] * poles[r, 0] + poles[p, 1] * poles[r, 1] + poles[p, 2] * poles[r, 2]
                    fj = 1.0 if (dij >= 0) == (dpq >= 0) else -1.0
                    fk = 1.0 if (dik >= 0) == (dpr >= 0) else -1.0
                    for c in range(3):
                        a[0, c] = poles[p, c]
                        a[1, c] = poles[q, c]
                        a[2, c] = poles[r, c]
                        bv[0, c] = normals[i, c]
                        bv[1, c] = normals[j, c] * fj
                        bv[2, c] = normals[k, c] * fk
                    # same handedness as the poles (lines have no sign: -n is the same band)
                    if _det3(a[:3]) * _det3(bv[:3]) < 0:
                        for q2 in range(3):
                            for c in range(3):
                                bv[q2, c] = -bv[q2, c]
                    # triad on the most perpendicular pair of the three
                    x = 0
                    y = 1
                    smallest = abs(dij)
                    if abs(dik) < smallest:
                        smallest = abs(dik)
                        y = 2
                    if abs(djk) < smallest:
                        x = 1
                        y = 2
                    _triad(a[x], a[y], bv[x], bv[y], rot)
                    cnt, err = _evaluate(rot, normals, nb, poles, cos_fit_tol, bp, bc)
                    if n_cand < max_candidates:
                        _copy33(rot, cand_rot[n_cand])
                        cand_cnt[n_cand] = cnt
                        cand_err[n_cand] = err
                        if by_bands:
                            key = 0
                            for b in range(nb):
                                if bc[b] >= cos_fit_tol:
                                    key |= 1 << b
                            h = _slot(seen_key, key)
                            if seen_key[h] == -1:
                                seen_key[h] = key
                                seen_at[h] = n_cand
                            elif err < cand_err[seen_at[h]]:
                                cand_read[seen_at[h]] = False
                                seen_at[h] = n_cand
                            else:
                                cand_read[n_cand] = False
                        n_cand += 1
                    if cnt > best_count or (cnt == best_count and err < best_err):
                        same = cnt == best_count and _misorientation_cos(best_rot, rot, sym) > min_sep_trace
                        confirm = confirm + 1 if same else 1
                        best_count = cnt
                        best_err = err
                        _copy33(rot, best_rot)
                    elif cnt == best_count and _misorientation_cos(best_rot, rot, sym) > min_sep_trace:
                        confirm += 1
                    if confirm >= 3 and best_count >= nb - 1:
                        done = True
                        break
                if done:
                    break
    if best_count < 2:
        _copy33(best_rot, res_rot)
        return max(best_count, 0), 0.0, 0, 0.0
    if use_evidence and not done:
        # the proposal whose predicted bands hold the most evidence, detected among the peaks or not; a
        # proposal that does not explain the three bands it came from (at the voting tolerance) is none.
        # (When the search stopped early, the best proposal explains all bands but one: no doubt to settle.)
        top, _ = _band_evidence(best_rot, poles, mt, xc, yc, filt, scored, half, inv_drho, inv_dtheta, rho_lim)
        for c in range(n_cand):
            if not cand_read[c] or cand_cnt[c] < 3:
                continue
            ev, _ = _band_evidence(cand_rot[c], poles, mt, xc, yc, filt, scored, half, inv_drho, inv_dtheta, rho_lim)
            if ev > top:
                top = ev
                _copy33(cand_rot[c], best_rot)
    # refinement should not lose bands, counted at the counting tolerance (at the looser voting
    # tolerance the refined orientation may drop a band that the voted one only grazed, and keeping
    # the voted one then costs accuracy); keep the voted rotation if it does
    refined = _refine(best_rot.copy(), normals, nb, weights, poles, cos_fit_tol, bp, bc, a, bv, w3)
    c_refined, _ = _evaluate(refined, normals, nb, poles, cos_count_tol, bp, bc)
    c_voted, _ = _evaluate(best_rot, normals, nb, poles, cos_count_tol, bp, bc)
    if c_voted > c_refined:
        refined = best_rot
    cnt, err = _evaluate(refined, normals, nb, poles, cos_fit_tol, bp, bc)
    _copy33(refined, res_rot)
    second = 0
    for c in range(n_cand):
        if cand_cnt[c] > second and _misorientation_cos(refined, cand_rot[c], sym) < min_sep_trace:
            second = cand_cnt[c]
    evidence = 0.0
    if use_evidence:
        ev, k = _band_evidence(refined, poles, mt, xc, yc, filt, scored, half, inv_drho, inv_dtheta, rho_lim)
        if k > 0:
            evidence = ev / (filt_sd * np.sqrt(k))
    return cnt, err / max(cnt, 1), second, evidence


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _sum_squares(x):
    """Sum of ``x**2`` in eight running sums (one would wait on each addition)."""
    acc = np.zeros(8)
    n8 = x.size - x.size % 8
    for q in range(0, n8, 8):
        for j in range(8):
            v = np.float64(x[q + j])
            acc[j] += v * v
    total = 0.0
    for q in range(n8, x.size):
        v = np.float64(x[q])
        total += v * v
    return total + acc.sum()


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _index_stack(
    normals, n_valid, weights, poles, lut_idx, lut_ang, lut_sign, lut_first, ang_tol, cos_fit_tol, sym, min_sep_trace,
    max_candidates, out_rot, out_res, cos_count_tol, filt, scored, mt, xc, yc, half, inv_drho, inv_dtheta,
):
    """:func:`_index_one` for a stack: normals (n, nb, 3), n_valid (n,), weights (n, nb).

    ``filt`` (n, n_theta, n_rho): the patterns' filtered transforms, or an
    empty (0, n_theta, n_rho) array to score the proposals by their bands
    alone; ``mt`` (n, 3, 3): ``M^T`` per pattern. Writes rotations (n, 3, 3)
    and rows (n, 4): n_matched, mad (rad), n_second, band evidence.
    """
    rot = np.empty((3, 3))
    n_theta, n_rho = scored.shape
    none = np.zeros((1, 1), dtype=filt.dtype)
    n_scored = 0
    rho_lim = 0.0
    for t in range(n_theta):
        for r in range(n_rho):
            if scored[t, r]:
                n_scored += 1
                rho_lim = max(rho_lim, abs(r - half) + 1.0)
    for i in range(normals.shape[0]):
        nb = n_valid[i]
        if nb < 3:
            _copy33(np.eye(3), out_rot[i])
            for c in range(out_res.shape[1]):
                out_res[i, c] = 0.0
            continue
        f = filt[i] if i < filt.shape[0] else none
        # the scale of the transform's noise: its root mean square over the scored bins (it is zero
        # elsewhere, and of zero mean: the butterfly filter sums to zero across the band)
        sd = 0.0
        if i < filt.shape[0]:
            sd = np.sqrt(_sum_squares(f.ravel()) / max(n_scored, 1))
        cnt, mad, second, evidence = _index_one(
            normals[i], nb, weights[i], poles, lut_idx, lut_ang, lut_sign, lut_first, ang_tol, cos_fit_tol, sym,
            min_sep_trace, max_candidates, rot, cos_count_tol, f, scored, sd, mt[i], xc, yc, half, inv_drho, inv_dtheta, rho_lim,
        )
        _copy33(rot, out_rot[i])
        out_res[i, 0] = cnt
        out_res[i, 1] = mad
        out_res[i, 2] = second
        out_res[i, 3] = evidence


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _band_normals_stack(table, minv_t, xc, yc, out, n_valid):
    """:func:`_band_normals` for a stack: table (n, nb, 6), minv_t (n, 3, 3) -> out (n, nb, 3), n_valid (n,)."""
    for i in range(table.shape[0]):
        n_valid[i] = _band_normals(table[i], minv_t[i], xc, yc, out[i])
