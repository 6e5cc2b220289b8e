"""numba kernels of Hough indexing (private): band normals, triplet voting, least-squares fit.

Rotations ``U`` map crystal to sample: ``n_sample = U @ n_crystal``.
"""

from __future__ import annotations

import numba
import numpy as np



@numba.njit(nogil=True, cache=True)
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


@numba.njit(nogil=True, cache=True)
def _kabsch(a, b, w, n):
    """Proper rotation ``U`` minimising sum ``w |b - U a|^2`` over the first ``n`` rows."""
    h = np.zeros((3, 3))
    for i in range(n):
        for p in range(3):
            for q in range(3):
                h[p, q] += w[i] * a[i, p] * b[i, q]
    u, s, vt = np.linalg.svd(h)
    # U = V diag(1, 1, d) U^T with d fixing the handedness
    d = np.linalg.det(vt.T @ u.T)
    dm = np.eye(3)
    if d < 0:
        dm[2, 2] = -1.0
    return vt.T @ dm @ u.T


@numba.njit(nogil=True, cache=True)
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


@numba.njit(nogil=True, cache=True)
def _misorientation_cos(r1, r2, sym):
    """Largest cos(angle / 2)-like measure: max over symmetry ops of trace(r1^T r2 S) (higher is closer)."""
    d = r1.T @ r2
    best = -3.0
    for s in range(sym.shape[0]):
        tr = 0.0
        for i in range(3):
            for j in range(3):
                tr += d[i, j] * sym[s, j, i]
        if tr > best:
            best = tr
    return best


@numba.njit(nogil=True, cache=True)
def _refine(rot, normals, nb, weights, poles, cos_tol, best_pole, best_cos, a, bvec, w):
    """Least-squares fit of ``rot`` to the bands matched within ``cos_tol``; two passes."""
    for _ in range(2):
        _evaluate(rot, normals, nb, poles, cos_tol, best_pole, best_cos)
        n = 0
        for b in range(nb):
            if best_cos[b] >= cos_tol:
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
                n += 1
        if n < 2:
            break
        rot = _kabsch(a, bvec, w, n)
    return rot


@numba.njit(nogil=True, cache=True)
def _index_one(
    normals, nb, weights, poles, lut_idx, lut_ang, lut_sign, lut_first, ang_tol, cos_fit_tol, sym, min_sep_trace,
    max_candidates, res_rot,
):
    """Triplet voting for one pattern and one phase.

    Every triplet of bands (strongest first) is compared with the look-up
    table of pole triplets (angles sorted by the first angle, ``lut_first``
    gives the search start per 0.5 degree bin of that angle); every match
    gives a candidate rotation (least squares on the three pairs), scored by
    the number of all bands it explains within ``cos_fit_tol``. The best
    candidate (most bands, then smallest mean deviation) is refined by least
    squares on its matched bands.

    Returns (n_matched, mad_rad, n_second): bands explained by the best and
    by the best candidate at least ``min_sep_trace`` away from it.
    """
    best_count = -1
    best_err = 1e9
    best_rot = np.eye(3)
    bp = np.empty(nb, dtype=np.int64)
    bc = np.empty(nb)
    a = np.empty((max(nb, 3), 3))
    bv = np.empty((max(nb, 3), 3))
    w3 = np.ones(max(nb, 3))
    cand_rot = np.empty((max_candidates, 3, 3))
    cand_cnt = np.empty(max_candidates, dtype=np.int64)
    n_cand = 0
    n_lut = lut_ang.shape[0]
    bin_w = np.pi / 360.0  # 0.5 degree bins of the first angle
    near90 = np.cos(np.pi / 2 - ang_tol)
    for i in range(nb):
        for j in range(i + 1, nb):
            dij = normals[i, 0] * normals[j, 0] + normals[i, 1] * normals[j, 1] + normals[i, 2] * normals[j, 2]
            aij = np.arccos(min(abs(dij), 1.0))
            lo_bin = int((aij - ang_tol) / bin_w)
            if lo_bin < 0:
                lo_bin = 0
            if lo_bin >= lut_first.size:
                continue
            start = lut_first[lo_bin]
            for k in range(j + 1, nb):
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
                    det_p = np.linalg.det(a[:3])
                    det_o = np.linalg.det(bv[:3])
                    if det_p * det_o < 0:
                        for q2 in range(3):
                            for c in range(3):
                                bv[q2, c] = -bv[q2, c]
                    rot = _kabsch(a, bv, w3, 3)
                    cnt, err = _evaluate(rot, normals, nb, poles, cos_fit_tol, bp, bc)
                    if n_cand < max_candidates:
                        cand_rot[n_cand] = rot
                        cand_cnt[n_cand] = cnt
                        n_cand += 1
                    if cnt > best_count or (cnt == best_count and err < best_err):
                        best_count = cnt
                        best_err = err
                        best_rot = rot
    if best_count < 2:
        res_rot[:] = best_rot
        return max(best_count, 0), 0.0, 0
    rot = _refine(best_rot, normals, nb, weights, poles, cos_fit_tol, bp, bc, a, bv, w3)
    cnt, err = _evaluate(rot, normals, nb, poles, cos_fit_tol, bp, bc)
    if cnt < best_count:  # refinement should not lose bands; keep the voted rotation then
        rot = best_rot
        cnt, err = _evaluate(rot, normals, nb, poles, cos_fit_tol, bp, bc)
    res_rot[:] = rot
    second = 0
    for c in range(n_cand):
        if cand_cnt[c] > second and _misorientation_cos(rot, cand_rot[c], sym) < min_sep_trace:
            second = cand_cnt[c]
    return cnt, err / max(cnt, 1), second


@numba.njit(nogil=True, cache=True)
def _index_stack(
    normals, n_valid, weights, poles, lut_idx, lut_ang, lut_sign, lut_first, ang_tol, cos_fit_tol, sym, min_sep_trace,
    max_candidates, out_rot, out_res,
):
    """:func:`_index_one` for a stack: normals (n, nb, 3), n_valid (n,), weights (n, nb).

    Writes rotations (n, 3, 3) and rows (n, 3): n_matched, mad (rad), n_second.
    """
    rot = np.empty((3, 3))
    for i in range(normals.shape[0]):
        nb = n_valid[i]
        if nb < 3:
            out_rot[i] = np.eye(3)
            out_res[i, 0] = 0.0
            out_res[i, 1] = 0.0
            out_res[i, 2] = 0.0
            continue
        cnt, mad, second = _index_one(
            normals[i], nb, weights[i], poles, lut_idx, lut_ang, lut_sign, lut_first, ang_tol, cos_fit_tol, sym,
            min_sep_trace, max_candidates, rot,
        )
        out_rot[i] = rot
        out_res[i, 0] = cnt
        out_res[i, 1] = mad
        out_res[i, 2] = second


@numba.njit(nogil=True, cache=True)
def _band_normals_stack(table, minv_t, xc, yc, out, n_valid):
    """:func:`_band_normals` for a stack: table (n, nb, 6), minv_t (n, 3, 3) -> out (n, nb, 3), n_valid (n,)."""
    for i in range(table.shape[0]):
        n_valid[i] = _band_normals(table[i], minv_t[i], xc, yc, out[i])
