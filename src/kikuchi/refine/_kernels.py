"""numba kernels of the refinement: NCC of a pattern projected on the fly, Nelder-Mead per pattern.

Private; the public wrappers live in :mod:`kikuchi.refine.refinement`.

The experimental pattern arrives normalised once: zero mean and unit norm over
the signal mask, zero outside it (``e``). For a trial simulation ``s`` the
normalised cross-correlation over the mask's ``n`` pixels is then

    r = sum(e s) / sqrt(sum(s^2) - (sum s)^2 / n),

so one pass over the projected pixels accumulates the three sums: nothing is
allocated per evaluation beyond three row buffers made once per pattern, and
the whole optimisation of a pattern runs inside numba without the GIL.

Parameters of the optimiser (``y``, scaled so that 1 is one initial step):
``y[0:3]`` a rotation vector in the sample frame (radians = y * rot_step)
turning the crystal, ``g = g0 R(x)^T``; ``y[3:6]`` a shift of the Bruker PC
(PC = pc0 + y * pc_step). Only the ``active`` entries move.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from kikuchi.simulate._kernels import _row_to_lambert


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def _pixel_to_crystal(g: np.ndarray, rt: np.ndarray, pc0: float, pc1: float, pc2: float, h: int, w: int, m: np.ndarray) -> None:
    """``m = g @ rt @ H(pc)``: pixel (col, row, 1) to crystal frame (``rt`` = R.T, detector -> sample)."""
    a = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            a[i, j] = g[i, 0] * rt[0, j] + g[i, 1] * rt[1, j] + g[i, 2] * rt[2, j]
    h02 = 0.5 - pc0 * w
    h12 = pc1 * h - 0.5
    h22 = pc2 * h
    for i in range(3):
        m[i, 0] = a[i, 0]
        m[i, 1] = -a[i, 1]
        m[i, 2] = a[i, 0] * h02 + a[i, 1] * h12 + a[i, 2] * h22


@numba.njit(nogil=True, cache=True, fastmath=True, error_model="numpy")
def ncc_projected(
    north: np.ndarray, south: np.ndarray, m: np.ndarray, e: np.ndarray, mask: np.ndarray, n_mask: int,
    rr: np.ndarray, cc: np.ndarray, hemi: np.ndarray,
) -> float:
    """NCC of the normalised experimental pattern ``e`` (h, w) and the pattern projected with ``m`` inside ``mask``.

    ``rr``, ``cc``, ``hemi`` are scratch rows of length w.
    """
    h, w = e.shape
    n = north.shape[0]
    half = (n - 1) * 0.5
    s1 = 0.0
    s2 = 0.0
    se = 0.0
    for r in range(h):
        _row_to_lambert(m, 0.0, float(r), 1.0, half, rr, cc, hemi)
        for c in range(w):
            if not mask[r, c]:
                continue
            # bilinear sampling, written out (float64 here, where the optimiser compares NCCs): an inlined helper
            # function made that kernel 3x slower (measured), so both keep it in the loop
            r0 = min(max(int(rr[c]), 0), n - 2)
            c0 = min(max(int(cc[c]), 0), n - 2)
            dr = min(max(rr[c] - r0, 0.0), 1.0)
            dc = min(max(cc[c] - c0, 0.0), 1.0)
            mp = south if hemi[c] > 0.5 else north
            top = mp[r0, c0] + (mp[r0, c0 + 1] - mp[r0, c0]) * dc
            bottom = mp[r0 + 1, c0] + (mp[r0 + 1, c0 + 1] - mp[r0 + 1, c0]) * dc
            s = top + (bottom - top) * dr
            s1 += s
            s2 += s * s
            se += e[r, c] * s
    var = s2 - s1 * s1 / n_mask
    if var <= 0.0:
        return 0.0
    return se / math.sqrt(var)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _rotvec_matrix(x0: float, x1: float, x2: float, out: np.ndarray) -> None:
    """Active rotation matrix of the rotation vector (x0, x1, x2) (radians; Rodrigues)."""
    t = math.sqrt(x0 * x0 + x1 * x1 + x2 * x2)
    if t < 1e-15:
        for i in range(3):
            for j in range(3):
                out[i, j] = 1.0 if i == j else 0.0
        return
    k0, k1, k2 = x0 / t, x1 / t, x2 / t
    c = math.cos(t)
    s = math.sin(t)
    v = 1.0 - c
    out[0, 0] = c + k0 * k0 * v
    out[0, 1] = k0 * k1 * v - k2 * s
    out[0, 2] = k0 * k2 * v + k1 * s
    out[1, 0] = k1 * k0 * v + k2 * s
    out[1, 1] = c + k1 * k1 * v
    out[1, 2] = k1 * k2 * v - k0 * s
    out[2, 0] = k2 * k0 * v - k1 * s
    out[2, 1] = k2 * k1 * v + k0 * s
    out[2, 2] = c + k2 * k2 * v


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _apply(y: np.ndarray, g0: np.ndarray, pc0: np.ndarray, rot_step: float, pc_step: float, g: np.ndarray, pc: np.ndarray, rot: np.ndarray) -> None:
    """Orientation ``g = g0 R(y[:3] rot_step)^T`` and PC ``pc0 + y[3:] pc_step`` of scaled parameters ``y`` (6,)."""
    _rotvec_matrix(y[0] * rot_step, y[1] * rot_step, y[2] * rot_step, rot)
    for i in range(3):
        for j in range(3):
            g[i, j] = g0[i, 0] * rot[j, 0] + g0[i, 1] * rot[j, 1] + g0[i, 2] * rot[j, 2]
    for k in range(3):
        pc[k] = pc0[k] + y[3 + k] * pc_step


@numba.njit(nogil=True, cache=True, error_model="numpy")
def _cost(
    yfull: np.ndarray, north: np.ndarray, south: np.ndarray, e: np.ndarray, mask: np.ndarray, n_mask: int,
    g0: np.ndarray, pc0: np.ndarray, rt: np.ndarray, rot_step: float, pc_step: float,
    g: np.ndarray, pc: np.ndarray, rot: np.ndarray, m: np.ndarray, rr: np.ndarray, cc: np.ndarray, hemi: np.ndarray,
) -> float:
    h, w = e.shape
    _apply(yfull, g0, pc0, rot_step, pc_step, g, pc, rot)
    if pc[2] <= 0.01:
        return 1.0
    _pixel_to_crystal(g, rt, pc[0], pc[1], pc[2], h, w, m)
    return -ncc_projected(north, south, m, e, mask, n_mask, rr, cc, hemi)


@numba.njit(nogil=True, cache=True, error_model="numpy")
def nelder_mead_one(
    north: np.ndarray, south: np.ndarray, e: np.ndarray, mask: np.ndarray, n_mask: int,
    g0: np.ndarray, pc0: np.ndarray, rt: np.ndarray, active: np.ndarray, rot_step: float, pc_step: float,
    bound: np.ndarray, xatol: float, fatol: float, max_eval: int, y_out: np.ndarray,
) -> tuple[float, int, float]:
    """Nelder-Mead on the active scaled parameters within the box ``|y| <= bound`` (trust region).

    Trial points outside the box are clipped onto it (as scipy's bounded
    Nelder-Mead). Stops when the simplex is within ``xatol`` (scaled units)
    and its values within ``fatol`` of the best, or after ``max_eval``
    evaluations. Returns (best NCC, evaluations, NCC at the start) and the
    full scaled parameters in ``y_out`` (6,).
    """
    h, w = e.shape
    k = active.shape[0]
    g = np.empty((3, 3))
    pc = np.empty(3)
    rot = np.empty((3, 3))
    m = np.empty((3, 3))
    rr = np.empty(w)
    cc = np.empty(w)
    hemi = np.empty(w)
    yfull = np.zeros(6)
    sim = np.zeros((k + 1, k))
    fs = np.empty(k + 1)
    for i in range(k):
        sim[i + 1, i] = 1.0
    for i in range(k + 1):
        for j in range(k):
            yfull[active[j]] = sim[i, j]
        fs[i] = _cost(yfull, north, south, e, mask, n_mask, g0, pc0, rt, rot_step, pc_step, g, pc, rot, m, rr, cc, hemi)
    f_start = fs[0]
    n_eval = k + 1
    xbar = np.empty(k)
    xr = np.empty(k)
    xe = np.empty(k)
    xc = np.empty(k)
    order = np.empty(k + 1, dtype=np.int64)
    tmp_sim = np.empty((k + 1, k))
    tmp_f = np.empty(k + 1)
    while n_eval < max_eval:
        # sort vertices by value
        order[:] = np.argsort(fs)
        for i in range(k + 1):
            tmp_f[i] = fs[order[i]]
            for j in range(k):
                tmp_sim[i, j] = sim[order[i], j]
        fs[:] = tmp_f
        sim[:, :] = tmp_sim
        # convergence (scipy's test)
        dx = 0.0
        df = 0.0
        for i in range(1, k + 1):
            df = max(df, abs(fs[i] - fs[0]))
            for j in range(k):
                dx = max(dx, abs(sim[i, j] - sim[0, j]))
        if dx <= xatol and df <= fatol:
            break
        for j in range(k):
            s = 0.0
            for i in range(k):
                s += sim[i, j]
            xbar[j] = s / k
        # reflection
        for j in range(k):
            xr[j] = min(max(2.0 * xbar[j] - sim[k, j], -bound[active[j]]), bound[active[j]])
            yfull[active[j]] = xr[j]
        fr = _cost(yfull, north, south, e, mask, n_mask, g0, pc0, rt, rot_step, pc_step, g, pc, rot, m, rr, cc, hemi)
        n_eval += 1
        shrink = False
        if fr < fs[0]:
            for j in range(k):
                xe[j] = min(max(3.0 * xbar[j] - 2.0 * sim[k, j], -bound[active[j]]), bound[active[j]])
                yfull[active[j]] = xe[j]
            fe = _cost(yfull, north, south, e, mask, n_mask, g0, pc0, rt, rot_step, pc_step, g, pc, rot, m, rr, cc, hemi)
            n_eval += 1
            if fe < fr:
                sim[k, :] = xe
                fs[k] = fe
            else:
                sim[k, :] = xr
                fs[k] = fr
        elif fr < fs[k - 1]:
            sim[k, :] = xr
            fs[k] = fr
        else:
            if fr < fs[k]:  # outside contraction
                for j in range(k):
                    xc[j] = 1.5 * xbar[j] - 0.5 * sim[k, j]
                    yfull[active[j]] = xc[j]
                fc = _cost(yfull, north, south, e, mask, n_mask, g0, pc0, rt, rot_step, pc_step, g, pc, rot, m, rr, cc, hemi)
                n_eval += 1
                if fc <= fr:
                    sim[k, :] = xc
                    fs[k] = fc
                else:
                    shrink = True
            else:  # inside contraction
                for j in range(k):
                    xc[j] = 0.5 * xbar[j] + 0.5 * sim[k, j]
                    yfull[active[j]] = xc[j]
                fc = _cost(yfull, north, south, e, mask, n_mask, g0, pc0, rt, rot_step, pc_step, g, pc, rot, m, rr, cc, hemi)
                n_eval += 1
                if fc < fs[k]:
                    sim[k, :] = xc
                    fs[k] = fc
                else:
                    shrink = True
            if shrink:
                for i in range(1, k + 1):
                    for j in range(k):
                        sim[i, j] = sim[0, j] + 0.5 * (sim[i, j] - sim[0, j])
                        yfull[active[j]] = sim[i, j]
                    fs[i] = _cost(yfull, north, south, e, mask, n_mask, g0, pc0, rt, rot_step, pc_step, g, pc, rot, m, rr, cc, hemi)
                n_eval += k
    best = 0
    for i in range(1, k + 1):
        if fs[i] < fs[best]:
            best = i
    for j in range(6):
        y_out[j] = 0.0
    for j in range(k):
        y_out[active[j]] = sim[best, j]
    return -fs[best], n_eval, -f_start


@numba.njit(nogil=True, cache=True, error_model="numpy")
def refine_many(
    north: np.ndarray, south: np.ndarray, e: np.ndarray, mask: np.ndarray, n_mask: int,
    g0: np.ndarray, pc0: np.ndarray, rt: np.ndarray, active: np.ndarray, rot_step: float, pc_step: float,
    bound: np.ndarray, xatol: float, fatol: float, max_eval: int, restarts: int,
    g_out: np.ndarray, pc_out: np.ndarray, ncc_out: np.ndarray, ncc_start: np.ndarray, n_eval_out: np.ndarray,
) -> None:
    """Refine patterns i = 0..n-1 (``e[i]`` normalised, starts ``g0[i]``, ``pc0[i]``) into the ``*_out`` arrays.

    ``restarts`` further Nelder-Mead runs start from the best point with a
    fresh simplex (Nelder-Mead can stall on a degenerate simplex); the trust
    region stays centred on the start.
    """
    y = np.zeros(6)
    g = np.empty((3, 3))
    pc = np.empty(3)
    rot = np.empty((3, 3))
    gs = np.empty((3, 3))
    pcs = np.empty(3)
    b = np.empty(6)
    moved = np.empty(6)
    for i in range(e.shape[0]):
        gs[:, :] = g0[i]
        pcs[:] = pc0[i]
        b[:] = bound
        moved[:] = 0.0
        total = 0
        best = -2.0
        first = 0.0
        for run in range(restarts + 1):
            ncc, n_ev, start = nelder_mead_one(
                north, south, e[i], mask, n_mask, gs, pcs, rt, active, rot_step, pc_step, b, xatol, fatol, max_eval, y,
            )
            total += n_ev
            if run == 0:
                first = start
            if ncc <= best + 1e-9 and run > 0:
                break
            best = ncc
            _apply(y, gs, pcs, rot_step, pc_step, g, pc, rot)
            gs[:, :] = g
            pcs[:] = pc
            for j in range(6):  # keep the box within the trust region around the original start
                moved[j] += y[j]
                b[j] = max(bound[j] - abs(moved[j]), 1e-3)
        g_out[i] = gs
        pc_out[i] = pcs
        ncc_out[i] = best
        ncc_start[i] = first
        n_eval_out[i] = total
