"""Refinement of a whole map on the engine, PC models over the map, and master patterns named on the command line.

A map's patterns are prepared for matching (static background subtracted,
then the dynamic background: the smooth part of each pattern, a Gaussian
low-pass, subtracted as in the seed's ``make_signal_bg``), streamed chunk by
chunk through :func:`kikuchi.refine.refine_patterns` (serial, threads or
dask.distributed), and written as an orientation map with the NCC and the
refined PC of every point.

The pattern centre over the map is one of

* ``'point'``: each point keeps its own PC (refined where ``refine`` is
  'pc' or 'both', else as given);
* ``'mean'``: one PC for the map, the mean of the points' refined PCs;
* ``'plane'``: ``pc = c0 + c_col col + c_row row`` per component, fitted by
  least squares to the points' refined PCs (the PC moves linearly with the
  beam position on the sample);
* ``'extrapolate'``: the PC of every point from one PC, the geometry and the
  beam position (:meth:`kikuchi.geometry.Detector.extrapolate_pc`, Singh et
  al. 2017): with ``refine`` 'pc' or 'both', from the points' mean refined PC
  at their mean position; with 'orientation', from the detector's mean PC at
  the map centre, without refining any PC. Needs the detector pixel size.

For 'mean', 'plane' and 'extrapolate' after a PC refinement the orientations
are refined again at the fitted PCs.

``candidates`` gives every point several start orientations (the top-k
matches of dictionary indexing): each is screened by a short run and the
best two refined in full (:func:`kikuchi.refine.refine_patterns`); the column
``candidate`` says which one won.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.refine.refinement import REFINE_MODES, RefinementResult, refine_patterns
from kikuchi.simulate.master import MasterPattern

__all__ = [
    "MapRefinement",
    "PC_MODELS",
    "fit_pc_plane_to_points",
    "load_master_pattern",
    "prepare_for_matching",
    "refine_map",
]

_logger = logging.getLogger(__name__)

#: How the PC varies over the map after refinement (see the module docstring).
PC_MODELS = ("point", "mean", "plane", "extrapolate")

#: Prefix of a ``--master-pattern`` that asks for kikuchi's own kinematical master pattern.
KINEMATICAL = "kinematical:"


def load_master_pattern(spec: str | Path, *, kv: float | None = None, energy: str | float = "highest") -> MasterPattern:
    """A master pattern from an EMsoft file or ``'kinematical:PHASE'`` (kikuchi's kinematical simulation).

    Parameters
    ----------
    spec
        Path of an EMsoft ``EMEBSDmaster`` HDF5 file, or ``kinematical:PHASE``
        with PHASE anything :meth:`kikuchi.crystal.Phase.parse` reads (a
        built-in name such as ``si`` or ``ni``, a CIF path,
        ``NAME:SPACEGROUP:a,...``); ``kinematical:PHASE@KV`` sets the
        energy in kV.
    kv
        Energy of a kinematical master pattern without ``@KV`` (default 20 kV).
    energy
        Energy bins of an EMsoft file (see :meth:`MasterPattern.from_emsoft`).

    Examples
    --------
    >>> mp = load_master_pattern("kinematical:ni@15", kv=20)
    >>> mp.kv, mp.phase.name
    (15.0, 'ni')
    """
    text = str(spec)
    if text.lower().startswith(KINEMATICAL):
        from kikuchi.simulate.kinematical import kinematical_master_pattern

        phase = text[len(KINEMATICAL):]
        if "@" in phase:
            phase, _, kv_text = phase.rpartition("@")
            try:
                kv = float(kv_text)
            except ValueError:
                raise ValueError(f"master pattern {text!r}: expected kinematical:PHASE@KV with KV in kV, got {kv_text!r}") from None
        if not phase:
            raise ValueError(f"master pattern {text!r}: name a phase after 'kinematical:' (e.g. kinematical:si, kinematical:phase.cif)")
        kv = 20.0 if kv is None else float(kv)
        if not (np.isfinite(kv) and kv > 0):
            raise ValueError(f"master pattern {text!r}: the energy must be a positive number of kV, got {kv}")
        return kinematical_master_pattern(phase, kv=kv)
    return MasterPattern.from_emsoft(Path(text), energy=energy)


def prepare_for_matching(patterns: Any, *, static_background: Any = None, sigma: float | None = None, dynamic: bool = True) -> np.ndarray:
    """float32 patterns for pattern matching: static background subtracted, then the dynamic one.

    Parameters
    ----------
    patterns
        (n, h, w) or (h, w) patterns.
    static_background
        (h, w) detector background, subtracted (scaled to each pattern's
        mean) where given.
    sigma
        Gaussian standard deviation of the dynamic background in pixels;
        default width / 25 (the seed's ``make_signal_bg``).
    dynamic
        Subtract the dynamic background.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``patterns``; patterns that hold no signal
        (one value, or not finite) are zeros.
    """
    from kikuchi.process import remove_dynamic_background, remove_static_background
    from kikuchi.process.no_signal import no_signal

    p = np.asarray(patterns)
    single = p.ndim == 2
    p = p[None] if single else p
    if p.ndim != 3 or p.dtype.kind not in "uifb":
        raise ValueError(f"prepare_for_matching: expected (n, h, w) or (h, w) numbers, got shape {np.shape(patterns)}")
    bad = no_signal(p)
    p = p.astype(np.float32)
    if bad.any():
        p[bad] = 0.0
    if static_background is not None:
        p = remove_static_background(p, static_background, operation="subtract", dtype=np.float32)
    if dynamic:
        p = remove_dynamic_background(p, sigma=sigma, operation="subtract")
    out = np.asarray(p, dtype=np.float32)
    out[bad] = 0.0
    return out[0] if single else out


def fit_pc_plane_to_points(
    pcs: Any,
    rows: Any,
    cols: Any,
    nav_shape: tuple[int, int],
    *,
    model: str = "plane",
    weights: Any = None,
    detector: Any = None,
    step_um: Any = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """PCs of every map point (rows, cols, 3) from PCs known at some points: their (weighted) mean, a plane, or extrapolated.

    Parameters
    ----------
    pcs
        (n, 3) Bruker PCs at map positions ``rows``, ``cols``.
    nav_shape
        (rows, cols) of the map.
    model
        'mean', 'plane' (``pc = c0 + c_col col + c_row row`` per component,
        least squares; needs 3 points not on one line) or 'extrapolate' (the
        weighted mean PC at the points' weighted mean position, carried to
        every point by the geometry: :meth:`kikuchi.geometry.Detector.extrapolate_pc`).
    weights
        (n,) non-negative weights (e.g. the NCC); default equal.
    detector, step_um
        For 'extrapolate': the detector (tilts, pixel size, binning) and the
        map step in µm.

    Returns
    -------
    pc_map, info
        (rows, cols, 3) PCs and a JSON-ready dict: the model, the mean PC, the
        plane coefficients, the RMS residual per component.

    Examples
    --------
    >>> r, c = np.array([0, 0, 4, 4]), np.array([0, 4, 0, 4])
    >>> pcs = np.stack([0.5 + 0.001 * c, 0.2 + 0.002 * r, 0.6 + 0.001 * r], axis=1)
    >>> pc_map, info = fit_pc_plane_to_points(pcs, r, c, (5, 5))
    >>> pc_map[2, 3].round(6).tolist(), info["plane"]["per_row"]
    ([0.503, 0.204, 0.602], [0.0, 0.002, 0.001])
    """
    pcs = np.asarray(pcs, dtype=np.float64).reshape(-1, 3)
    rows = np.asarray(rows, dtype=np.float64).reshape(-1)
    cols = np.asarray(cols, dtype=np.float64).reshape(-1)
    if not (len(pcs) == rows.size == cols.size):
        raise ValueError(f"fit_pc_plane_to_points: {len(pcs)} PCs for {rows.size} rows and {cols.size} columns")
    if model not in ("mean", "plane", "extrapolate"):
        raise ValueError(f"model must be 'mean', 'plane' or 'extrapolate', got {model!r}")
    if model == "extrapolate" and (detector is None or step_um is None):
        raise ValueError("model 'extrapolate' needs the detector and the map step (detector=, step_um=)")
    w = np.ones(len(pcs)) if weights is None else np.clip(np.asarray(weights, dtype=np.float64).reshape(-1), 0, None)
    if w.size != len(pcs) or not w.sum() > 0:
        raise ValueError("fit_pc_plane_to_points: weights must be one non-negative number per PC, not all zero")
    nr, nc = (int(v) for v in nav_shape)
    mean = (pcs * w[:, None]).sum(axis=0) / w.sum()
    info: dict[str, Any] = {"model": model, "points": int(len(pcs)), "mean_pc_bruker": [round(float(v), 6) for v in mean]}
    rr, cc = np.mgrid[:nr, :nc]
    a = np.column_stack([np.ones_like(rows), cols, rows])
    if model == "plane" and np.linalg.matrix_rank(a[w > 0]) < 3:
        _logger.warning("PC plane: the %d points lie on one line; using their mean PC for the whole map", len(pcs))
        model = info["model"] = "mean"
    if model == "mean":
        fitted = np.broadcast_to(mean, (len(pcs), 3))
        pc_map = np.broadcast_to(mean, (nr, nc, 3)).copy()
    elif model == "extrapolate":
        where = (float((rows * w).sum() / w.sum()), float((cols * w).sum() / w.sum()))
        pc_map = detector.with_pc(mean).extrapolate_pc((nr, nc), step_um, reference=where).pc
        fitted = pc_map[rows.astype(np.int64), cols.astype(np.int64)]
        info["reference"] = [round(v, 3) for v in where]
    else:
        sw = np.sqrt(w)[:, None]
        coef, *_ = np.linalg.lstsq(a * sw, pcs * sw, rcond=None)  # (3 terms, 3 components)
        fitted = a @ coef
        pc_map = coef[0][None, None] + cc[..., None] * coef[1][None, None] + rr[..., None] * coef[2][None, None]
        info["plane"] = {
            "constant": [round(float(v), 6) for v in coef[0]],
            "per_col": [round(float(v), 8) for v in coef[1]],
            "per_row": [round(float(v), 8) for v in coef[2]],
        }
    info["rms_residual"] = [round(float(v), 6) for v in np.sqrt(((pcs - fitted) ** 2 * w[:, None]).sum(axis=0) / w.sum())]
    return pc_map, info


def _refine_chunk(
    patterns: np.ndarray, *, rows: np.ndarray, cols: np.ndarray, ncols: int, master: MasterPattern, detector: Any,
    euler_flat: np.ndarray, todo_flat: np.ndarray, static_background: Any, dynamic: bool, sigma: Any, mask: Any,
    refine: str, options: dict[str, Any],
) -> np.ndarray:
    """Engine chunk function: (n, h, w) raw patterns -> (n, 11) rows: euler (3), pc (3), ncc, ncc_start, evaluations, variant, candidate.

    ``euler_flat`` is (N, 3), or (N, k, 3) candidate starts per point.
    """
    flat = np.asarray(rows, dtype=np.int64) * ncols + np.asarray(cols, dtype=np.int64)
    pcs = detector.pc_flat[flat] if detector.n_pc > 1 else np.broadcast_to(detector.pc_flat[0], (len(flat), 3))
    out = np.full((len(flat), 11), np.nan)
    out[:, :3] = euler_flat[flat] if euler_flat.ndim == 2 else euler_flat[flat, 0]
    out[:, 3:6] = pcs
    out[:, 8:] = 0
    todo = todo_flat[flat]
    if todo.any():
        p = prepare_for_matching(patterns[todo], static_background=static_background, sigma=sigma, dynamic=dynamic)
        res = refine_patterns(
            p, master, detector.with_pc(pcs[todo]), euler_flat[flat[todo]], refine=refine, mask=mask, workers=1, **options
        )
        out[todo] = np.column_stack([res.euler, res.pc, res.ncc, res.ncc_start, res.evaluations, res.variant, res.candidate])
    return out


@dataclass
class MapRefinement:
    """Refinement of a map: per-point results in map order (row-major), and how they were obtained.

    ``result`` holds every map point; points not refined (no pattern, not
    indexed, another phase) keep their start and have NCC NaN.
    """

    result: RefinementResult
    refined: np.ndarray
    nav_shape: tuple[int, int]
    step_um: tuple[float, float]
    start: Any
    detector: Any
    settings: dict[str, Any] = field(default_factory=dict)
    candidates: int = 1

    def to_orientation_map(self, *, header: dict[str, Any] | None = None, format: str | None = None) -> Any:
        """The start orientation map with the refined orientations, the NCC and the PCs.

        Columns: ``ncc``, ``ncc_start``, ``pcx``, ``pcy``, ``pcz`` (Bruker),
        ``evaluations``, ``variant``, and with several candidate starts
        ``candidate`` (which one was refined, 0 the first) (all kept in HDF5); at the refined points
        the band contrast ``bc`` becomes ``255 NCC`` (CTF's BC) and the
        confidence index ``ci`` the NCC (ANG's CI), so that vendor tools show
        the match quality; the other columns of the start map are kept.
        """
        from kikuchi.io.orientation_map import OrientationMap

        start = self.start
        r = self.result
        ncc = np.where(self.refined, r.ncc, np.nan)
        columns = dict(start.columns)
        columns.update(
            ncc=ncc, ncc_start=np.where(self.refined, r.ncc_start, np.nan), pcx=r.pc[:, 0], pcy=r.pc[:, 1], pcz=r.pc[:, 2],
            evaluations=r.evaluations.astype(np.int64), variant=r.variant.astype(np.int64),
        )
        if self.candidates > 1:
            columns["candidate"] = r.candidate.astype(np.int64)
        quality = np.nan_to_num(np.clip(ncc, 0, 1))
        columns["bc"] = np.where(self.refined, np.round(255 * quality), columns.get("bc", 0)).astype(np.int64)
        columns["ci"] = np.where(self.refined, quality, columns.get("ci", -1.0))
        info = dict(start.header)
        info.update(header or {})
        det = self.detector
        if format in (None, "ctf"):
            info["Author"] = "kikuchi refinement"
        if format in (None, "ang"):
            x_star, y_star, z_star = (float(v) for v in np.asarray(det.pc_as("edax")).reshape(-1, 3).mean(axis=0))
            info.update({"x-star": x_star, "y-star": y_star, "z-star": z_star})
        return OrientationMap(
            euler=r.euler, phase_id=start.phase_id, x_um=start.x_um, y_um=start.y_um, grid=start.grid, nav_shape=start.nav_shape,
            step_um=start.step_um, columns=columns, phases=start.phases, header=info,
        )


def _start_orientations(orientations: Any, nav_shape: tuple[int, int], phase_id: int | None) -> tuple[Any, np.ndarray, int]:
    """(OrientationMap, which points to refine (n,) bool, phase id) of the start."""
    from kikuchi.io.orientation_map import OrientationMap, read_orientation_map

    omap = orientations if isinstance(orientations, OrientationMap) else read_orientation_map(orientations)
    where = getattr(omap, "path", None) or "the orientation map"
    if omap.grid != "square" or omap.nav_shape != tuple(nav_shape):
        raise ValueError(
            f"{where}: a {omap.grid} grid of {omap.nav_shape} points does not match the {nav_shape[0]} x {nav_shape[1]} pattern map; "
            "give the orientation map of these patterns"
        )
    ids = sorted(set(np.unique(omap.phase_id).tolist()) - {0})
    if phase_id is None:
        if len(ids) > 1:
            raise ValueError(f"{where}: the map holds phases {ids}; say which one the master pattern is for (phase_id / --phase-id)")
        phase_id = ids[0] if ids else 1
    elif phase_id not in ids:
        raise ValueError(f"{where}: no point of phase {phase_id} (the map holds phases {ids or 'none: nothing indexed'})")
    todo = (omap.phase_id == phase_id) & np.all(np.isfinite(omap.euler), axis=1)
    if "error" in omap.columns:
        todo &= np.asarray(omap.columns["error"]) == 0
    return omap, todo, int(phase_id)


def refine_map(
    ebsd_map: Any,
    orientations: Any,
    master: MasterPattern,
    *,
    detector: Any = None,
    refine: str = "orientation",
    pc_model: str = "point",
    phase_id: int | None = None,
    static_background: Any = "file",
    dynamic: bool = True,
    sigma: float | None = None,
    mask: Any = "circular",
    executor: str = "serial",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    candidates: Any = None,
    **options: Any,
) -> MapRefinement:
    """Refine the orientations (and PCs) of every indexed point of a map.

    Parameters
    ----------
    ebsd_map
        An open pattern map (:func:`kikuchi.open`).
    orientations
        The start: an :class:`~kikuchi.io.OrientationMap` or a CTF/ANG/HDF5
        path, on the map's grid. Points with error 0 (where the map has the
        column) of ``phase_id`` are refined.
    master
        Master pattern of the phase.
    detector
        Default the map's (PCs and tilts of the file).
    refine
        'orientation', 'pc' or 'both'.
    pc_model
        'point', 'mean', 'plane' or 'extrapolate' (see the module docstring;
        'mean' and 'plane' need ``refine`` 'pc' or 'both').
    phase_id
        Phase of the start map the master pattern is for (default its only phase).
    static_background, dynamic, sigma
        Pattern preparation (:func:`prepare_for_matching`); 'file': the map's static background.
    mask
        'circular' (the largest circle in the pattern, default), None (all
        pixels) or an (h, w) bool array.
    executor, workers, scheduler, progress
        See :func:`kikuchi.engine.map_reduce`.
    candidates
        (N, k, 3) Bunge Euler angles (radians) of k start orientations per
        map point (map order, row-major; best first), e.g. the top-k matches
        of dictionary indexing, instead of the start map's orientations (which
        still say which points of which phase are refined). Each is screened
        by a short run and the best ones refined in full, the best refined
        NCC kept (see :func:`kikuchi.refine.refine_patterns`); non-finite candidates are
        skipped, the first must be finite at the refined points. After a PC
        fit ('mean', 'plane', 'extrapolate') the orientations are refined
        again from the winners.
    **options
        Options of :func:`kikuchi.refine.refine_patterns` (trust region, tolerances, pseudo-symmetry, ``screen_evaluations``, ``finalists``).

    Returns
    -------
    MapRefinement
    """
    from kikuchi.engine import map_reduce

    if refine not in REFINE_MODES:
        raise ValueError(f"refine must be one of {', '.join(REFINE_MODES)}; got {refine!r}")
    if pc_model not in PC_MODELS:
        raise ValueError(f"pc_model must be one of {', '.join(PC_MODELS)}; got {pc_model!r}")
    if pc_model in ("mean", "plane") and refine == "orientation":
        raise ValueError(f"pc_model {pc_model!r} fits the refined PCs: refine 'pc' or 'both' with it")
    nr, nc = ebsd_map.nav_shape
    detector = ebsd_map.detector if detector is None else detector
    if tuple(detector.shape) != tuple(ebsd_map.pattern_shape):
        raise ValueError(f"{ebsd_map.path}: detector shape {tuple(detector.shape)} differs from the pattern shape {tuple(ebsd_map.pattern_shape)}")
    if detector.n_pc not in (1, nr * nc):
        raise ValueError(f"{ebsd_map.path}: the detector has {detector.n_pc} pattern centres for a {nr} x {nc} map")
    omap, todo, phase_id = _start_orientations(orientations, (nr, nc), phase_id)
    have = (ebsd_map.index_map >= 0).reshape(-1)
    todo &= have
    bg = ebsd_map.static_background if isinstance(static_background, str) and static_background == "file" else static_background
    if isinstance(mask, str):
        if mask != "circular":
            raise ValueError(f"mask must be 'circular', None or an (h, w) bool array, got {mask!r}")
        from kikuchi.process import circular_mask

        mask = circular_mask(tuple(ebsd_map.pattern_shape))
    euler_flat = np.ascontiguousarray(omap.euler, dtype=np.float64)
    euler_flat = np.where(np.isfinite(euler_flat), euler_flat, 0.0)
    n_candidates = 1
    if candidates is not None:
        cand = np.asarray(candidates, dtype=np.float64)
        if cand.ndim == 2 and cand.shape == (nr * nc, 3):
            cand = cand[:, None, :]
        if cand.ndim != 3 or cand.shape[0] != nr * nc or cand.shape[2] != 3 or cand.shape[1] < 1:
            raise ValueError(f"candidates must be (N, k, 3) Euler angles for the N = {nr * nc} map points, got shape {cand.shape}")
        first_bad = todo & ~np.all(np.isfinite(cand[:, 0]), axis=1)
        if first_bad.any():
            raise ValueError(f"candidates: the first candidate of map point {int(np.flatnonzero(first_bad)[0])} (row-major) is not finite")
        n_candidates = int(cand.shape[1])
        euler_flat = np.ascontiguousarray(np.where(todo[:, None, None], cand, euler_flat[:, None, :]))
    kwargs = {
        "ncols": nc, "master": master, "static_background": bg, "dynamic": dynamic, "sigma": sigma, "mask": mask, "options": options,
    }

    def run(det: Any, start: np.ndarray, mode: str) -> np.ndarray:
        rows_out = map_reduce(
            ebsd_map, _refine_chunk, kwargs={**kwargs, "detector": det, "euler_flat": start, "todo_flat": todo, "refine": mode},
            executor=executor, workers=workers, scheduler=scheduler, progress=progress, positions=True,
        )
        flat = np.zeros((nr * nc, 11))
        im = ebsd_map.index_map.reshape(-1)
        flat[have] = rows_out[im[have]]
        flat[~have, :3] = start[~have] if start.ndim == 2 else start[~have, 0]
        flat[~have, 3:6] = det.pc_flat[np.flatnonzero(~have)] if det.n_pc > 1 else det.pc_flat[0]
        flat[~have, 6:8] = np.nan
        return flat

    settings: dict[str, Any] = {
        "refine": refine, "pc_model": pc_model, "phase_id": phase_id, "master_pattern": master.source, "kv": master.kv,
        "static_background": bg is not None, "dynamic_background": dynamic, "sigma": sigma,
        "mask_pixels": None if mask is None else int(np.asarray(mask).sum()), "points_refined": int(todo.sum()),
        "pc_start_bruker": [round(float(v), 6) for v in detector.pc_mean], **{k: v for k, v in options.items() if k != "pseudo_symmetry"},
    }
    if n_candidates > 1:
        settings["candidates"] = n_candidates
    step_um = tuple(float(v) for v in ebsd_map.step_um)
    if pc_model == "extrapolate" and refine == "orientation":  # the PCs from the geometry alone
        detector = detector.with_pc(detector.pc_mean).extrapolate_pc((nr, nc), step_um)
        settings["pc_fit"] = {"model": "extrapolate", "reference": "map centre", "mean_pc_bruker": [round(float(v), 6) for v in detector.pc_mean]}
    flat = run(detector, euler_flat, refine)
    candidate = flat[:, 10].copy()  # a second run (after a PC fit) starts from the winners
    if pc_model != "point" and refine != "orientation":
        if not todo.any():
            raise ValueError(f"{ebsd_map.path}: no point to refine, so no PC to {'extrapolate from' if pc_model == 'extrapolate' else 'fit'}")
        weights = np.clip(flat[todo, 6], 0, None)
        if pc_model == "extrapolate" and not weights.sum() > 0:
            weights = np.ones_like(weights)  # one PC is still needed to extrapolate from: the plain mean
        rr, cc = np.divmod(np.flatnonzero(todo), nc)
        pc_map, info = fit_pc_plane_to_points(
            flat[todo, 3:6], rr, cc, (nr, nc), model=pc_model, weights=weights, detector=detector, step_um=step_um
        )
        settings["pc_fit"] = info
        detector = detector.with_pc(pc_map[0, 0] if pc_model == "mean" else pc_map.reshape(-1, 3))
        flat = run(detector, np.ascontiguousarray(flat[:, :3]), "orientation")
    elif refine != "orientation":
        detector = detector.with_pc(flat[:, 3:6].copy())
    result = RefinementResult(
        euler=flat[:, :3], pc=flat[:, 3:6], ncc=flat[:, 6], ncc_start=flat[:, 7], evaluations=flat[:, 8].astype(np.int64),
        variant=flat[:, 9].astype(np.int64), settings=settings, candidate=candidate.astype(np.int64),
    )
    return MapRefinement(
        result=result, refined=todo, nav_shape=(nr, nc), step_um=tuple(ebsd_map.step_um), start=omap, detector=detector, settings=settings,
        candidates=n_candidates,
    )
