"""Pattern-centre calibration: by pattern matching on a grid of a map, and by the moving-screen method.

**Pattern matching** (:func:`calibrate_pc`): patterns on a regular grid over
the map are indexed (Hough, or a given orientation map), their orientation
and PC refined together by NCC against the master pattern
(:func:`kikuchi.refine.refine_patterns`), and one PC or a PC plane is fitted
to the refined PCs weighted by their NCC
(:func:`kikuchi.refine.fit_pc_plane_to_points`).

**Moving screen** (Hjelen et al. 1991; :func:`moving_screen_pc`): patterns of
one beam position recorded with the screen moved back by known distances
``dz``. Moving the screen along its normal scales the gnomonic projection
about the PC by ``s = (DD + dz) / DD``: the pattern further out is the near one
magnified about the PC. Instead of picking the same zone axes by hand in both
patterns (kikuchipy's ``PCCalibrationMovingScreen``), the PC (x, y) and the
distance DD are found by maximising the NCC between each far pattern and the
near pattern scaled about the trial PC, over all pairs at once: DD in the unit
of ``dz``, and PCz in fractions of the pattern height where the detector pixel
size is known.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from kikuchi.refine.map_refine import fit_pc_plane_to_points, prepare_for_matching
from kikuchi.refine.refinement import refine_patterns
from kikuchi.simulate.master import MasterPattern

__all__ = ["calibrate_pc", "moving_screen_pc"]

_logger = logging.getLogger(__name__)


def calibrate_pc(
    ebsd_map: Any,
    master: MasterPattern,
    *,
    orientations: Any = None,
    phases: Any = None,
    detector: Any = None,
    grid: tuple[int, int] = (5, 5),
    model: str = "plane",
    static_background: Any = "file",
    dynamic: bool = True,
    sigma: float | None = None,
    mask: Any = "circular",
    workers: int | None = None,
    **options: Any,
) -> dict[str, Any]:
    """PC of a map (one, or a plane) from orientation + PC refinement of a grid of its patterns.

    Parameters
    ----------
    ebsd_map
        An open pattern map.
    master
        Master pattern of the phase.
    orientations
        Start orientations (an OrientationMap or a CTF/ANG/HDF5 path on the
        map's grid); without them the grid patterns are Hough-indexed with
        ``phases`` at the detector's PC.
    phases
        Phase names or :class:`kikuchi.crystal.Phase` for Hough indexing.
    detector
        Default the map's.
    grid
        (rows, cols) of the grid of patterns refined.
    model
        'plane' (default) or 'mean'.
    static_background, dynamic, sigma, mask
        As for :func:`kikuchi.refine.refine_map`.
    workers
        Threads of the refinement.
    **options
        Options of :func:`kikuchi.refine.refine_patterns` (trust region, ...).

    Returns
    -------
    dict
        JSON-ready: ``pc_bruker`` (mean), ``model``, ``plane`` (coefficients
        per column and row), ``rms_residual``, ``points`` (row, col, PC, NCC
        of each refined grid point), ``pc_start_bruker``, ``mean_ncc``.
    """
    from kikuchi.index import HoughIndexer, prepare_patterns
    from kikuchi.index.map_index import auto_binning, bin_mean, binned_detector, grid_positions

    detector = ebsd_map.detector if detector is None else detector
    rows, cols = grid_positions(ebsd_map.index_map, grid)
    if rows.size < 1:
        raise ValueError(f"{ebsd_map.path}: no pattern on the {grid[0]} x {grid[1]} grid")
    nr, nc = ebsd_map.nav_shape
    flat = rows * nc + cols
    raw = ebsd_map.read_indices(ebsd_map.index_map[rows, cols])
    bg = ebsd_map.static_background if isinstance(static_background, str) and static_background == "file" else static_background
    pcs = detector.pc_flat[flat] if detector.n_pc > 1 else np.broadcast_to(detector.pc_flat[0], (flat.size, 3))
    if orientations is not None:
        from kikuchi.refine.map_refine import _start_orientations

        omap, todo, _ = _start_orientations(orientations, (nr, nc), None)
        euler = omap.euler[flat]
        ok = todo[flat]
        how = "the given orientation map"
    else:
        if phases is None:
            raise ValueError("calibrate_pc: give start orientations or the phases to Hough-index the grid patterns with")
        b = auto_binning(detector.shape)
        indexer = HoughIndexer(phases, binned_detector(detector, b), kv=ebsd_map.kv or master.kv)
        hough = indexer.index(bin_mean(prepare_patterns(raw, static_background=bg), b), index=flat if detector.n_pc > 1 else None)
        euler, ok = hough.euler, hough.indexed
        how = "Hough indexing"
    if not ok.any():
        raise ValueError(
            f"{ebsd_map.path}: none of the {flat.size} grid patterns has a start orientation from {how}; "
            "give a better starting PC (--pc) or start orientations"
        )
    if isinstance(mask, str):
        from kikuchi.process import circular_mask

        mask = circular_mask(tuple(ebsd_map.pattern_shape))
    patterns = prepare_for_matching(raw[ok], static_background=bg, sigma=sigma, dynamic=dynamic)
    res = refine_patterns(patterns, master, detector.with_pc(pcs[ok]), euler[ok], refine="both", mask=mask, workers=workers, **options)
    pc_map, info = fit_pc_plane_to_points(res.pc, rows[ok], cols[ok], (nr, nc), model=model, weights=np.clip(res.ncc, 0, None))
    info.update(
        pc_bruker=info.pop("mean_pc_bruker"), start=how, grid=[int(grid[0]), int(grid[1])],
        pc_start_bruker=[round(float(v), 6) for v in pcs[ok].mean(axis=0)], mean_ncc_start=round(float(res.ncc_start.mean()), 4),
        mean_ncc=round(float(res.ncc.mean()), 4),
        points=[
            {"row": int(r), "col": int(c), "pc_bruker": [round(float(v), 6) for v in p], "ncc": round(float(n), 4)}
            for r, c, p, n in zip(rows[ok], cols[ok], res.pc, res.ncc)
        ],
    )
    info["pc_map_corners_bruker"] = {
        name: [round(float(v), 6) for v in pc_map[r, c]] for name, (r, c) in
        {"top_left": (0, 0), "top_right": (0, nc - 1), "bottom_left": (nr - 1, 0), "bottom_right": (nr - 1, nc - 1)}.items()
    }  # fmt: skip
    return info


def _scaled_ncc(near: np.ndarray, far: np.ndarray, pc_col: float, pc_row: float, scale: float, valid: np.ndarray) -> float:
    """NCC of ``far`` with ``near`` magnified by ``scale`` about (pc_col, pc_row), over ``valid`` pixels inside ``near``."""
    from scipy.ndimage import map_coordinates

    h, w = near.shape
    rr, cc = np.nonzero(valid)
    src_r = pc_row + (rr - pc_row) / scale
    src_c = pc_col + (cc - pc_col) / scale
    inside = (src_r >= 0) & (src_r <= h - 1) & (src_c >= 0) & (src_c <= w - 1)
    if inside.sum() < 16:
        return 0.0
    a = map_coordinates(near, [src_r[inside], src_c[inside]], order=1)
    b = far[rr[inside], cc[inside]]
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else 0.0


def moving_screen_pc(
    pattern_in: Any,
    patterns_out: Any,
    delta_z: Any,
    *,
    px_size: float | None = None,
    sigma: float | None = None,
    mask: Any = "circular",
) -> dict[str, Any]:
    """PC and detector distance from patterns of one beam position with the screen moved back by ``delta_z``.

    Parameters
    ----------
    pattern_in
        (h, w) background-corrected pattern at the operating position.
    patterns_out
        (k, h, w) or (h, w) patterns with the screen moved back (away from the sample).
    delta_z
        (k,) how far each was moved (any length unit, e.g. mm).
    px_size
        Detector pixel size (binned) in the unit of ``delta_z``; gives PCz.
    sigma
        Dynamic background sigma for :func:`prepare_for_matching` (default width / 25).
    mask
        'circular', None or an (h, w) bool array: pixels of the far patterns compared.

    Returns
    -------
    dict
        JSON-ready: ``pc_bruker`` (x, y and, with ``px_size``, z), ``dd`` (in
        the unit of ``delta_z``), ``pairs`` (scale and NCC of each far
        pattern at the solution).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> from scipy.ndimage import gaussian_filter, map_coordinates
    >>> near = gaussian_filter(rng.random((96, 96)), 3)
    >>> rr, cc = np.mgrid[0:96, 0:96].astype(float)
    >>> far = map_coordinates(near, [30 + (rr - 30) / 1.25, 50 + (cc - 50) / 1.25], order=3)  # DD = 20 for dz = 5
    >>> out = moving_screen_pc(near, far, 5.0, mask=None, sigma=20)
    >>> [round(v, 2) for v in out["pc_bruker"][:2]], round(out["dd"])
    ([0.53, 0.32], 20)
    """
    from scipy.optimize import minimize

    near = prepare_for_matching(np.asarray(pattern_in), sigma=sigma).astype(np.float64)
    far = np.asarray(patterns_out)
    far = far[None] if far.ndim == 2 else far
    if far.ndim != 3 or far.shape[1:] != near.shape:
        raise ValueError(f"moving_screen_pc: far patterns of shape {np.shape(patterns_out)} do not fit the near pattern {near.shape}")
    far = prepare_for_matching(far, sigma=sigma).astype(np.float64)
    dz = np.atleast_1d(np.asarray(delta_z, dtype=np.float64))
    if dz.shape != (len(far),) or not np.all(dz > 0):
        raise ValueError(f"moving_screen_pc: give one positive distance per far pattern ({len(far)}), got {np.asarray(delta_z).tolist()}")
    h, w = near.shape
    if isinstance(mask, str):
        from kikuchi.process import circular_mask

        mask = circular_mask((h, w))
    valid = np.ones((h, w), bool) if mask is None else np.asarray(mask, bool)
    from kikuchi.index.map_index import bin_mean

    b = max(1, min(h, w) // 100)  # the coarse search on patterns of about 100 pixels
    hb, wb = h // b, w // b
    levels = {
        1: (near, far, valid),
        b: (bin_mean(near[None, : hb * b, : wb * b], b)[0], bin_mean(far[:, : hb * b, : wb * b], b),
            bin_mean(valid[None, : hb * b, : wb * b].astype(np.float64), b)[0] > 0.99),
    }  # fmt: skip

    def cost(x: np.ndarray, level: int) -> float:
        fx, fy, dd = x  # PC in fractions of width and height (Bruker), DD in the unit of dz
        if dd <= 0.05 * dz.min():
            return 1.0
        n_img, f_img, v_img = levels[level]
        hh, ww = n_img.shape
        return -float(np.mean([_scaled_ncc(n_img, f, fx * ww - 0.5, fy * hh - 0.5, (dd + z) / dd, v_img) for f, z in zip(f_img, dz)]))

    # coarse: PCx at the middle, PCy and DD over wide ranges (DD in multiples of the largest move), binned patterns
    starts = [(0.5, fy, k * dz.max()) for fy in (0.1, 0.3, 0.5, 0.7, 0.9) for k in (0.5, 1.0, 2.0, 3.0, 4.5, 7.0)]
    x0 = np.array(min(starts, key=lambda x: cost(np.array(x), b)))
    simplex = x0 + np.array([[0, 0, 0], [0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.1 * x0[2]]])
    coarse = minimize(cost, x0, args=(b,), method="Nelder-Mead", options={"initial_simplex": simplex, "xatol": 1e-3, "fatol": 1e-5})
    x1 = coarse.x
    simplex = x1 + np.array([[0, 0, 0], [0.01, 0, 0], [0, 0.01, 0], [0, 0, 0.02 * x1[2]]])
    fine = minimize(cost, x1, args=(1,), method="Nelder-Mead", options={"initial_simplex": simplex, "xatol": 1e-5, "fatol": 1e-7, "maxiter": 800})
    fx, fy, dd = (float(v) for v in fine.x)
    pc = [fx, fy]
    pc_col, pc_row = fx * w - 0.5, fy * h - 0.5
    if px_size is not None:
        pc.append(dd / (h * float(px_size)))
    return {
        "pc_bruker": [round(v, 5) for v in pc],
        "dd": round(dd, 4),
        "pairs": [
            {"delta_z": float(z), "scale": round(float((dd + z) / dd), 5), "ncc": round(_scaled_ncc(near, f, pc_col, pc_row, (dd + z) / dd, valid), 4)}
            for f, z in zip(far, dz)
        ],
        "mean_ncc": round(-float(fine.fun), 4),
    }
