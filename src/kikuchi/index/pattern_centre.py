"""Pattern centre refinement by maximising the Hough indexing fit.

The bands of a subset of patterns are detected once. The patterns are
indexed at the starting PC; each indexed band keeps its matched plane
(pole). For a trial PC the band normals are recomputed and each pattern's
orientation refitted by least squares to its matched poles; the objective
is the mean angular deviation over all matched bands, minimised by
Nelder-Mead over (PCx, PCy, PCz). Two rounds (re-indexing at the refined
PC in between) let bands that were missed at the start join.

:func:`fit_pc_plane` refines the PC in blocks of the map and fits a plane
``pc = c0 + c1 col + c2 row`` to each component, as the PC moves linearly
with the beam position.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from kikuchi.index.normals import band_normals, detector_homographies

__all__ = ["refine_pattern_centre", "fit_pc_plane", "PCRefinement"]

_logger = logging.getLogger(__name__)


class PCRefinement(dict):
    """Result of a PC refinement (a dict): ``pc`` (Bruker), ``mad_before_deg``, ``mad_after_deg``, ``n_patterns``, ``evaluations``."""


def _matches(indexer: Any, table: np.ndarray, result: Any, normals: list[np.ndarray]) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(pattern, band indices, matched signed poles (k, 3), weights) for every indexed pattern."""
    from kikuchi.geometry import euler_to_matrix

    out = []
    cos_tol = indexer.cos_fit_tol
    for i in np.flatnonzero(result.indexed):
        t = indexer.tables[result.phase_id[i] - 1]
        u = euler_to_matrix(result.euler[i]).T  # crystal -> sample
        n = normals[i]
        if len(n) < 3:
            continue
        m = n @ u  # crystal frame
        d = m @ t.poles.T
        k = np.abs(d).argmax(axis=1)
        c = d[np.arange(len(n)), k]
        ok = np.abs(c) >= cos_tol
        if ok.sum() < 3:
            continue
        poles = t.poles[k[ok]] * np.sign(c[ok])[:, None]
        w = np.clip(table[i, : len(n), 2][ok], 1e-6, None)
        out.append((int(i), np.flatnonzero(ok), poles, w))
    return out


def _normals_for_pc(indexer: Any, table: np.ndarray, pc: np.ndarray) -> list[np.ndarray]:
    minv = detector_homographies(indexer.detector.with_pc(pc))
    return band_normals(table, minv, tuple(indexer.detector.shape))


def _mean_deviation(matches: list, normals: list[np.ndarray]) -> float:
    """Mean angle (rad) between band normals and their poles after a least-squares rotation per pattern."""
    total = 0.0
    count = 0
    for i, bands, poles, w in matches:
        n = normals[i][bands]
        h = (poles * w[:, None]).T @ n
        u, _, vt = np.linalg.svd(h)
        d = np.sign(np.linalg.det(vt.T @ u.T))
        rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
        fit = poles @ rot.T
        cosang = np.clip(np.abs(np.sum(fit * n, axis=1)), 0.0, 1.0)
        total += float(np.arccos(cosang).sum())
        count += len(bands)
    return total / max(count, 1)


def refine_pattern_centre(
    indexer: Any,
    patterns: np.ndarray,
    *,
    pc: Any = None,
    rounds: int = 2,
    step: float = 0.01,
    table: np.ndarray | None = None,
) -> PCRefinement:
    """Refine one pattern centre (Bruker) for a set of patterns of one detector.

    Parameters
    ----------
    indexer
        A :class:`~kikuchi.index.HoughIndexer` (its detector gives the shape,
        tilts and the starting PC).
    patterns
        (n, h, w) processed patterns (a few dozen spread over the map).
    pc
        Starting PC (Bruker); default the detector's mean PC.
    rounds
        Index / optimise rounds.
    step
        Initial Nelder-Mead step in PC units.
    table
        Band tables of ``patterns`` when already detected.

    Returns
    -------
    PCRefinement
        ``pc`` (3,) Bruker, mean angular deviations before and after (degrees).
    """
    from scipy.optimize import minimize

    pc = np.asarray(indexer.detector.pc_mean if pc is None else pc, dtype=np.float64).copy()
    if pc.shape != (3,):
        raise ValueError(f"refine_pattern_centre: starting PC must be (3,), got shape {pc.shape}")
    if table is None:
        table = indexer.detect(np.asarray(patterns))
    pc0 = pc.copy()
    n_eval = 0
    value = np.nan
    matches: list = []
    for _ in range(max(1, rounds)):
        ix = indexer.with_detector(indexer.detector.with_pc(pc))
        result = ix.index_bands(table)
        normals = _normals_for_pc(indexer, table, pc)
        matches = _matches(indexer, table, result, normals)
        if not matches:
            raise ValueError(
                f"refine_pattern_centre: none of the {len(table)} patterns could be indexed at PC {pc.round(4).tolist()}; "
                "give a better starting PC (--pc) or check the phases"
            )

        def objective(x: np.ndarray) -> float:
            if x[2] <= 0.05:
                return 1.0
            return _mean_deviation(matches, _normals_for_pc(indexer, table, x))

        simplex = np.array([pc, pc + [step, 0, 0], pc + [0, step, 0], pc + [0, 0, step]])
        res = minimize(objective, pc, method="Nelder-Mead", options={"initial_simplex": simplex, "xatol": 1e-5, "fatol": 1e-8, "maxiter": 400})
        n_eval += int(res.nfev)
        pc = np.asarray(res.x, dtype=np.float64)
        value = float(res.fun)
    # the starting PC judged with the final band/plane matches, so both numbers compare
    before = _mean_deviation(matches, _normals_for_pc(indexer, table, pc0))
    if before < value:  # the optimiser did not improve on the start: keep it
        pc, value = pc0, before
    _logger.info("PC refined to %s (mean deviation %.3f -> %.3f deg)", pc.round(5).tolist(), np.degrees(before), np.degrees(value))
    return PCRefinement(
        pc=pc, mad_before_deg=float(np.degrees(before)), mad_after_deg=float(np.degrees(value)),
        n_patterns=int(len(table)), evaluations=n_eval,
    )


def fit_pc_plane(
    indexer: Any,
    patterns: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    nav_shape: tuple[int, int],
    *,
    pc: Any = None,
    blocks: int = 3,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-point PCs (rows, cols, 3) from a plane fitted to PCs refined in ``blocks x blocks`` parts of the map.

    Parameters
    ----------
    patterns
        (n, h, w) processed patterns at map positions ``rows``, ``cols``.
    nav_shape
        Map shape (rows, cols).
    pc
        Starting PC (Bruker); default the detector's mean.
    blocks
        Parts along each map axis.

    Returns
    -------
    pc_map, info
        PCs (rows, cols, 3) in the Bruker convention and a dict with the
        plane coefficients and the block PCs.
    """
    rows = np.asarray(rows)
    cols = np.asarray(cols)
    if rows.shape != cols.shape or rows.shape != (len(np.asarray(patterns)),):
        raise ValueError(
            f"fit_pc_plane: rows {rows.shape} and cols {cols.shape} must give the map position of each of the {len(np.asarray(patterns))} patterns"
        )
    if len(nav_shape) != 2 or min(nav_shape) < 1:
        raise ValueError(f"fit_pc_plane: the map shape must be (rows, cols), got {tuple(nav_shape)}")
    table = indexer.detect(np.asarray(patterns))
    glob = refine_pattern_centre(indexer, patterns, pc=pc, table=table)
    nr, nc = nav_shape
    br = np.minimum((rows * blocks) // max(nr, 1), blocks - 1)
    bc = np.minimum((cols * blocks) // max(nc, 1), blocks - 1)
    centres, values = [], []
    for a in range(blocks):
        for b in range(blocks):
            sel = (br == a) & (bc == b)
            if sel.sum() < 3:
                continue
            try:
                r = refine_pattern_centre(indexer, patterns[sel], pc=glob["pc"], table=table[sel])
            except ValueError:
                continue
            centres.append((float(cols[sel].mean()), float(rows[sel].mean())))
            values.append(r["pc"])
    rr, cc = np.mgrid[:nr, :nc]
    if len(values) < 3:
        _logger.warning("PC plane: only %d blocks refined; using one PC for the whole map", len(values))
        return np.broadcast_to(glob["pc"], (nr, nc, 3)).copy(), {"pc": glob["pc"].tolist(), "plane": None}
    a = np.column_stack([np.ones(len(centres)), np.array(centres)])
    coef, *_ = np.linalg.lstsq(a, np.array(values), rcond=None)  # (3 terms, 3 PC components)
    pc_map = coef[0][None, None] + cc[..., None] * coef[1][None, None] + rr[..., None] * coef[2][None, None]
    info = {
        "pc": glob["pc"].tolist(),
        "plane": {"constant": coef[0].tolist(), "per_col": coef[1].tolist(), "per_row": coef[2].tolist()},
        "blocks": [{"col": c, "row": r, "pc": v.tolist()} for (c, r), v in zip(centres, values)],
    }
    return pc_map, info
