"""Orientation and pattern-centre refinement by pattern matching against a master pattern.

For every pattern a local optimiser maximises the normalised cross-correlation
(NCC) between the experimental pattern and the master pattern projected on the
fly at a trial orientation and pattern centre (PC). Both sides are normalised
the same way inside the signal mask: zero mean and unit norm (NCC is then the
mean of the product of the two patterns scaled to mean 0 and standard
deviation 1, the normalisation of the xcdskd documentation's Example 1).

Optimiser: Nelder-Mead in a scaled parameter space, a rotation vector in the
sample frame (the crystal turned about sample axes, ``g = g0 R(x)^T``) and a
shift of the Bruker PC, with a box trust region around the start (trial
points outside it are clipped onto it), run entirely in numba
(:mod:`kikuchi.refine._kernels`) without the GIL; patterns are spread over
threads. Optional pseudo-symmetry variants (crystal-frame rotations ``P``)
start further runs at ``P g0``; the best NCC wins.

Several candidate starts per pattern (the best dictionary matches, say) are
screened first: a short run of ``screen_evaluations`` projections from each,
then the full refinement from the ``finalists`` candidates whose short runs
reached the highest NCC; the best refined NCC wins. On noisy patterns the
best dictionary match is often not the pattern's orientation while one of
the next ones is, and the refined NCC tells them apart where the
dictionary score did not.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kikuchi._cpus import available_cpus
from kikuchi.geometry.detector import Detector
from kikuchi.geometry.orientation import euler_to_matrix, matrix_to_euler
from kikuchi.simulate.master import MasterPattern

__all__ = ["REFINE_MODES", "RefinementResult", "ncc", "normalize_patterns", "refine_patterns", "pseudo_symmetry_operators"]

_logger = logging.getLogger(__name__)

#: What :func:`refine_patterns` can refine: the orientation, the PC, or both.
REFINE_MODES = ("orientation", "pc", "both")
#: Projections of the short run that screens each candidate start (see :func:`refine_patterns`).
SCREEN_EVALUATIONS = 20
#: Candidates refined in full after the screening: the best by their short runs.
FINALISTS = 2

_ACTIVE = {"orientation": (0, 1, 2), "pc": (3, 4, 5), "both": (0, 1, 2, 3, 4, 5)}


@dataclass
class RefinementResult:
    """Per-pattern results of :func:`refine_patterns` (arrays of length n).

    Attributes
    ----------
    euler
        (n, 3) refined Bunge Euler angles, radians.
    pc
        (n, 3) refined pattern centres (Bruker); the given ones where the
        PC was not refined.
    ncc
        (n,) NCC at the refined orientation and PC.
    ncc_start
        (n,) NCC at the start (of the variant kept).
    evaluations
        (n,) projections evaluated (all variants together).
    variant
        (n,) which start won: 0 the given orientation, k the k-th pseudo-symmetry operator.
    settings
        How the refinement ran.
    candidate
        (n,) which candidate start was refined (0: the first, or the only
        one); default zeros.
    """

    euler: np.ndarray
    pc: np.ndarray
    ncc: np.ndarray
    ncc_start: np.ndarray
    evaluations: np.ndarray
    variant: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)
    candidate: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.candidate is None:
            self.candidate = np.zeros(self.ncc.shape, dtype=np.int64)

    def __len__(self) -> int:
        return int(self.ncc.size)

    def summary(self) -> dict[str, Any]:
        """JSON-ready means: NCC before and after, evaluations per pattern, refined mean PC."""
        n = len(self)
        return {
            "patterns": n,
            "mean_ncc_start": round(float(self.ncc_start.mean()), 4) if n else None,
            "mean_ncc": round(float(self.ncc.mean()), 4) if n else None,
            "min_ncc": round(float(self.ncc.min()), 4) if n else None,
            "mean_evaluations": round(float(self.evaluations.mean()), 1) if n else None,
            "mean_pc_bruker": [round(float(v), 5) for v in self.pc.mean(axis=0)] if n else None,
            "variants_kept": {int(k): int(v) for k, v in zip(*np.unique(self.variant, return_counts=True))},
            "candidates_kept": {int(k): int(v) for k, v in zip(*np.unique(self.candidate, return_counts=True))},
        }


def _as_mask(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=np.bool_)
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise ValueError(f"signal mask of shape {m.shape} does not fit patterns of shape {tuple(shape)}")
    m = m.astype(np.bool_)
    if m.sum() < 4:
        raise ValueError(f"the signal mask keeps {int(m.sum())} pixels; keep at least 4 (True where the pattern is used)")
    return np.ascontiguousarray(m)


def normalize_patterns(patterns: Any, mask: Any = None) -> np.ndarray:
    """Patterns scaled to zero mean and unit norm inside ``mask`` and set to zero outside it.

    Parameters
    ----------
    patterns
        (h, w) or (n, h, w) numbers.
    mask
        (h, w) bool, True where the pattern is used; default all pixels.

    Returns
    -------
    numpy.ndarray
        float32 of the same shape. A pattern of one value inside the mask
        becomes zeros (its NCC with anything is 0).

    Examples
    --------
    >>> e = normalize_patterns(np.arange(12.0).reshape(3, 4))
    >>> round(float(e.sum()), 6), round(float((e * e).sum()), 6)
    (0.0, 1.0)
    """
    p = np.asarray(patterns)
    if p.dtype.kind not in "uifb" or p.ndim not in (2, 3):
        raise ValueError(f"normalize_patterns: expected (h, w) or (n, h, w) numbers, got shape {p.shape} of {p.dtype}")
    single = p.ndim == 2
    p = p[None] if single else p
    m = _as_mask(mask, p.shape[1:])
    x = p.astype(np.float64)
    mean = x[:, m].mean(axis=1)
    x = (x - mean[:, None, None]) * m[None]
    norm = np.sqrt((x * x).sum(axis=(1, 2)))
    norm[norm == 0] = np.inf
    out = (x / norm[:, None, None]).astype(np.float32)
    return out[0] if single else out


def ncc(a: Any, b: Any, mask: Any = None) -> np.ndarray | float:
    """Normalised cross-correlation of patterns: both scaled to mean 0, standard deviation 1 inside ``mask``.

    ``r = mean(a' b')`` over the mask's pixels, with ``a'``, ``b'`` the
    patterns normalised to mean 0 and standard deviation 1 there; 1 for
    identical patterns, -1 for inverted ones, invariant to brightness and
    contrast.

    Parameters
    ----------
    a, b
        (h, w) or (n, h, w) patterns (broadcast against each other).
    mask
        (h, w) bool, True where the patterns are compared.

    Returns
    -------
    float or numpy.ndarray
        One value per pattern pair.

    Examples
    --------
    >>> p = np.random.default_rng(0).random((6, 7))
    >>> round(ncc(p, 3 * p + 1), 6), round(ncc(p, -p), 6)
    (1.0, -1.0)
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim < 2 or b.ndim < 2 or a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"ncc: patterns must have the same (h, w), got {a.shape} and {b.shape}")
    m = _as_mask(mask, a.shape[-2:])
    a = a[..., m]
    b = b[..., m]
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    sa = a.std(axis=-1)
    sb = b.std(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).mean(axis=-1) / (sa * sb)
    r = np.where((sa > 0) & (sb > 0), r, 0.0)
    return float(r) if np.ndim(r) == 0 else r


def pseudo_symmetry_operators(spec: Any) -> np.ndarray:
    """(k, 3, 3) crystal-frame rotations from axis-angle pairs: ``[((u, v, w), angle_deg), ...]`` or text ``'u,v,w:angle;...'``.

    The axis is in the crystal's Cartesian frame. A pseudo-symmetry variant of
    ``g`` is ``P g`` (the crystal turned by ``P`` about its own axes).

    Examples
    --------
    >>> pseudo_symmetry_operators("0,0,1:90").round(6).tolist()
    [[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]
    """
    from kikuchi.geometry import axis_angle_matrix

    if spec is None:
        return np.zeros((0, 3, 3))
    if isinstance(spec, str):
        items = []
        for part in filter(None, (s.strip() for s in spec.split(";"))):
            try:
                axis, angle = part.split(":")
                items.append(([float(v) for v in axis.split(",")], float(angle)))
            except ValueError:
                raise ValueError(f"pseudo-symmetry operator {part!r}: expected U,V,W:ANGLE_DEG (e.g. 1,1,1:60)") from None
        spec = items
    arr = np.asarray(spec, dtype=object) if not isinstance(spec, np.ndarray) else spec
    if isinstance(arr, np.ndarray) and arr.dtype != object and arr.ndim == 3 and arr.shape[1:] == (3, 3):
        return np.asarray(arr, dtype=np.float64)
    ops = []
    for axis, angle in spec:
        axis = np.asarray(axis, dtype=np.float64)
        if axis.shape != (3,) or not np.linalg.norm(axis) > 0:
            raise ValueError(f"pseudo-symmetry axis must be three numbers, not all zero; got {axis.tolist()}")
        ops.append(axis_angle_matrix(axis / np.linalg.norm(axis), np.radians(float(angle))))
    return np.array(ops).reshape(-1, 3, 3)


def _threads(workers: int | None, n: int) -> int:
    if workers is None:
        workers = available_cpus()
    return max(1, min(int(workers), n))


def _distinct_candidates(candidates: np.ndarray, usable: np.ndarray, distinct_deg: float) -> np.ndarray:
    """``usable`` with every candidate less than ``distinct_deg`` from a better-ranked usable one of its pattern left out.

    The angle is that of the rotation between the two orientations, without
    crystal symmetry (a symmetry-equivalent pair counts as distinct: never
    wrongly dropped). The first candidate is always kept.
    """
    n, k = usable.shape
    g = euler_to_matrix(np.where(usable[..., None], candidates, 0.0).reshape(-1, 3)).reshape(n, k, 3, 3)
    cos_limit = np.cos(np.radians(distinct_deg))
    kept = usable.copy()
    for c in range(1, k):
        # trace(g_c g_j^T) = 1 + 2 cos(angle): near when the angle is below the limit
        trace = np.einsum("nij,nkij->nk", g[:, c], g[:, :c])
        near = ((trace - 1.0) / 2.0 > cos_limit) & kept[:, :c]
        kept[:, c] &= ~near.any(axis=1)
    return kept


def refine_patterns(
    patterns: Any,
    master: MasterPattern,
    detector: Detector,
    euler_rad: Any,
    *,
    refine: str = "orientation",
    pc_index: Any = None,
    mask: Any = None,
    trust_region_deg: float = 2.0,
    trust_region_pc: float = 0.05,
    step_deg: float = 0.5,
    step_pc: float = 0.005,
    xatol: float = 1e-2,
    fatol: float = 1e-5,
    max_evaluations: int | None = None,
    restarts: int | None = None,
    pseudo_symmetry: Any = None,
    screen_evaluations: int = SCREEN_EVALUATIONS,
    finalists: int = FINALISTS,
    distinct_deg: float | None = None,
    workers: int | None = None,
) -> RefinementResult:
    """Refine orientations and/or pattern centres of patterns by maximising their NCC with projected simulations.

    Parameters
    ----------
    patterns
        (n, h, w) or (h, w) background-corrected patterns (any numbers).
    master
        Master pattern of the phase (EMsoft or kinematical).
    detector
        Detector of the patterns: shape, tilts, one PC or one per pattern.
    euler_rad
        (n, 3) or (3,) starting Bunge Euler angles in radians, or (n, k, 3):
        k candidate starts per pattern (best first, e.g. the top-k
        dictionary matches). Candidates are screened by a short run of
        ``screen_evaluations`` projections each; the ``finalists`` that
        reached the highest NCC are refined in full from their starts, and
        the best refined NCC is kept (``candidate`` of the result).
        Non-finite candidates after the first are skipped.
    refine
        'orientation', 'pc' or 'both' (see :data:`REFINE_MODES`).
    pc_index
        (n,) which of the detector's PCs each pattern starts from; default
        the only PC, or PC i for pattern i.
    mask
        (h, w) bool signal mask, True where pixels are compared; default all.
    trust_region_deg, trust_region_pc
        Largest change allowed: of each rotation-vector component (degrees)
        and of each PC component (fractions, Bruker).
    step_deg, step_pc
        Size of the initial simplex; also the units of ``xatol``.
    xatol, fatol
        Convergence: the simplex within ``xatol`` steps (default 0.01: 0.005
        degree and 5e-5 PC) and its NCCs within ``fatol`` of the best.
    max_evaluations
        Projections per Nelder-Mead run (default 200 per parameter refined).
    restarts
        Further Nelder-Mead runs from the best point with a fresh simplex
        (default 0 for the orientation alone, 1 where the PC is refined: the
        6-parameter simplex can collapse before the optimum).
    pseudo_symmetry
        Crystal-frame rotations (see :func:`pseudo_symmetry_operators`) whose
        variants ``P g`` are refined too; the best NCC is kept.
    screen_evaluations
        Projections of the short run from each candidate start (several
        candidates only; default :data:`SCREEN_EVALUATIONS`). The short runs
        move the orientation only, or the PC only with ``refine='pc'``, in the
        same trust region.
    finalists
        Candidates refined in full after the screening (default
        :data:`FINALISTS`). On two maps of 992 dynamical Ni patterns of
        60 x 60 pixels at 60 counts per pixel, 20 candidates each: full runs
        from every candidate put 99.8% and 99.7% of the patterns within 2
        degrees of the truth; 20 projections of screening and 1 finalist
        99.7% and 99.3%, 2 finalists 99.8% and 99.6%, at a third of the
        cost of full runs; 10 projections lost more.
    distinct_deg
        A candidate less than this rotation angle (degrees, crystal symmetry
        not applied) from a better-ranked candidate of the same pattern
        starts in the same basin and is skipped, as is a finalist whose
        start is the first finalist's. Default the trust region
        (``trust_region_deg``); 0 screens every candidate. On clean patterns
        a dictionary's best matches are mostly the grid points around the
        pattern's orientation, so most of them are skipped.
    workers
        Threads (default: the CPUs available).

    Returns
    -------
    RefinementResult

    Examples
    --------
    >>> from kikuchi.simulate import kinematical_master_pattern, project_patterns
    >>> mp = kinematical_master_pattern("ni", size=201)
    >>> det = Detector((40, 40), (0.5, 0.3, 0.6))
    >>> truth = np.radians([[30.0, 40.0, 50.0]])
    >>> pattern = project_patterns(mp, det, truth)
    >>> res = refine_patterns(pattern, mp, det, truth + np.radians(1.0))
    >>> bool(res.ncc[0] > 0.999)
    True

    Candidates: the second start is the pattern's orientation.

    >>> far = truth + np.radians([40.0, 20.0, 0.0])
    >>> res = refine_patterns(pattern, mp, det, np.stack([far, truth + np.radians(1.0)], axis=1))
    >>> res.candidate.tolist(), bool(res.ncc[0] > 0.999)
    ([1], True)
    """
    from kikuchi.refine import _kernels

    if not isinstance(master, MasterPattern):
        raise TypeError(f"master must be a MasterPattern, got {type(master).__name__}")
    if not isinstance(detector, Detector):
        raise TypeError(f"detector must be a kikuchi.geometry.Detector, got {type(detector).__name__}")
    if refine not in REFINE_MODES:
        raise ValueError(f"refine must be one of {', '.join(REFINE_MODES)}; got {refine!r}")
    p = np.asarray(patterns)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[1:] != tuple(detector.shape):
        raise ValueError(f"patterns of shape {np.shape(patterns)} do not fit the {detector.shape[0]} x {detector.shape[1]} detector")
    n = p.shape[0]
    given = np.asarray(euler_rad, dtype=np.float64)
    if given.ndim == 3:
        if given.shape[0] != n or given.shape[1] < 1 or given.shape[2] != 3:
            raise ValueError(f"euler_rad of candidates must be (n, k, 3) with n = {n} patterns, got shape {given.shape}")
        candidates = given
    else:
        euler = given.reshape(-1, 3) if given.size else np.zeros((0, 3))
        if euler.shape[0] == 1 and n > 1:
            euler = np.repeat(euler, n, axis=0)
        if euler.shape != (n, 3):
            raise ValueError(f"euler_rad must give one orientation (3 angles) per pattern: {n} patterns, got shape {np.shape(euler_rad)}")
        candidates = euler[:, None, :]
    usable = np.all(np.isfinite(candidates), axis=2)
    if not np.all(usable[:, 0]):
        raise ValueError(f"euler_rad[{int(np.flatnonzero(~usable[:, 0])[0])}] is not finite; leave out points without an orientation")
    n_cand = candidates.shape[1]
    distinct = float(trust_region_deg if distinct_deg is None else distinct_deg)
    if not (np.isfinite(distinct) and distinct >= 0):
        raise ValueError(f"distinct_deg must be a number >= 0, got {distinct_deg}")
    if n_cand > 1 and distinct > 0:
        usable = _distinct_candidates(candidates, usable, distinct)
    for name, value in (("screen_evaluations", screen_evaluations), ("finalists", finalists)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    for name, value in (("trust_region_deg", trust_region_deg), ("trust_region_pc", trust_region_pc), ("step_deg", step_deg), ("step_pc", step_pc)):
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value}")
    if restarts is None:
        restarts = 0 if refine == "orientation" else 1
    if restarts < 0:
        raise ValueError(f"restarts must be >= 0, got {restarts}")
    from kikuchi.simulate.projection import _pc_index

    idx = _pc_index(detector, n, pc_index)
    pc0 = np.ascontiguousarray(detector.pc_flat[idx], dtype=np.float64)
    m = _as_mask(mask, detector.shape)
    e = np.ascontiguousarray(normalize_patterns(p, m))
    active = np.array(_ACTIVE[refine], dtype=np.int64)
    max_eval = int(max_evaluations) if max_evaluations is not None else 200 * active.size
    rot_step = np.radians(step_deg)
    bound = np.array([trust_region_deg / step_deg] * 3 + [trust_region_pc / step_pc] * 3)
    rt = np.ascontiguousarray(detector.rotation.T)
    ops = pseudo_symmetry_operators(pseudo_symmetry)
    threads = _threads(workers, n)
    bounds_ = np.linspace(0, n, threads + 1).astype(int)

    def on_threads(func: Any) -> None:
        if not n:
            return
        if threads == 1:
            func(0)
        else:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                list(pool.map(func, range(threads)))

    def refine_rows(a: int, b: int, take: np.ndarray, g0: np.ndarray, act: np.ndarray, evaluations: int, n_restarts: int, outs: tuple) -> None:
        """The kernel on the patterns ``a..b`` where ``take`` is True, from starts ``g0`` (n, 3, 3); results into ``outs``
        (g, pc, ncc, ncc_start, evaluations: arrays over all n patterns) at those patterns, the others left as they are."""
        rows = a + np.flatnonzero(take)
        r = rows.size
        if not r:
            return
        pick: Any = slice(a, b) if r == b - a else rows  # the whole range in place, else gathered and scattered back
        dest = tuple(o[pick] for o in outs) if r == b - a else (np.empty((r, 3, 3)), np.empty((r, 3)), np.empty(r), np.empty(r), np.empty(r, dtype=np.int64))
        _kernels.refine_many(
            master.north, master.south, e[pick], m, int(m.sum()), np.ascontiguousarray(g0[pick]), pc0[pick], rt, act,
            rot_step, step_pc, bound, float(xatol), float(fatol), evaluations, n_restarts, *dest,
        )  # fmt: skip
        if r < b - a:
            for o, d in zip(outs, dest):
                o[rows] = d

    chosen = np.zeros((n, 1), dtype=np.int64)
    screen_eval = np.zeros(n, dtype=np.int64)
    if n_cand > 1:
        g_cand = euler_to_matrix(np.where(usable[..., None], candidates, candidates[:, :1]).reshape(-1, 3)).reshape(n, n_cand, 3, 3)
        screen_active = np.array(_ACTIVE["pc" if refine == "pc" else "orientation"], dtype=np.int64)
        screen_ncc = np.full((n_cand, n), -np.inf)  # per candidate a contiguous row, as the kernel writes it
        screen_n = np.zeros((n_cand, n), dtype=np.int64)
        g_scr, pc_scr, start_scr = np.empty((n, 3, 3)), np.empty((n, 3)), np.empty(n)  # of the short runs: not kept

        def screen(k: int) -> None:
            a, b = bounds_[k], bounds_[k + 1]
            for c in range(n_cand):
                refine_rows(
                    a, b, usable[a:b, c], g_cand[:, c], screen_active, int(screen_evaluations), 0,
                    (g_scr, pc_scr, screen_ncc[c], start_scr, screen_n[c]),
                )

        on_threads(screen)
        # the finalists, best first (stable: of equal NCCs the earlier candidate); a skipped one is replaced by the best
        chosen = np.argsort(-screen_ncc.T, axis=1, kind="stable")[:, : min(int(finalists), n_cand)]
        chosen = np.where(np.isfinite(np.take_along_axis(screen_ncc.T, chosen, axis=1)), chosen, chosen[:, :1])
        screen_eval = np.where(usable, screen_n.T, 0).sum(axis=1)
        firsts = [g_cand[np.arange(n), chosen[:, j]] for j in range(chosen.shape[1])]
    else:
        firsts = [euler_to_matrix(candidates[:, 0])]
    # full runs: every finalist and its pseudo-symmetry variants (start v is finalist v // per, variant v % per)
    per = 1 + len(ops)
    starts = [s for g in firsts for s in [g] + [np.einsum("ij,njk->nik", op, g) for op in ops]]
    n_var = len(starts)
    g_out = np.empty((n_var, n, 3, 3))
    pc_out = np.empty((n_var, n, 3))
    ncc_out = np.empty((n_var, n))
    ncc_start = np.empty((n_var, n))
    n_eval = np.zeros((n_var, n), dtype=np.int64)

    # a later finalist whose start is the first one's (fewer distinct candidates than finalists) is not run again
    needed = np.ones((n_var, n), dtype=bool)
    for v in range(per, n_var):
        needed[v] = chosen[:, v // per] != chosen[:, 0]
    ncc_out[~needed] = -np.inf

    def run(k: int) -> None:
        a, b = bounds_[k], bounds_[k + 1]
        for v, g0 in enumerate(starts):
            refine_rows(a, b, needed[v, a:b], g0, active, max_eval, int(restarts), (g_out[v], pc_out[v], ncc_out[v], ncc_start[v], n_eval[v]))

    on_threads(run)
    best = np.argmax(ncc_out, axis=0) if n else np.zeros(0, dtype=np.int64)
    sel = (best, np.arange(n))
    candidate = chosen[np.arange(n), best // per] if n else np.zeros(0, dtype=np.int64)
    settings = {
        "refine": refine, "trust_region_deg": trust_region_deg, "trust_region_pc": trust_region_pc, "step_deg": step_deg,
        "step_pc": step_pc, "xatol": xatol, "fatol": fatol, "max_evaluations": max_eval, "restarts": restarts,
        "pseudo_symmetry_variants": int(len(ops)), "mask_pixels": int(m.sum()), "threads": threads,
    }
    if n_cand > 1:
        settings.update(
            candidates=int(n_cand), screen_evaluations=int(screen_evaluations), finalists=int(chosen.shape[1]), distinct_deg=distinct,
            candidates_screened=int(usable.sum()),
        )  # fmt: skip
    return RefinementResult(
        euler=matrix_to_euler(g_out[sel]) if n else np.zeros((0, 3)), pc=pc_out[sel], ncc=ncc_out[sel], ncc_start=ncc_start[sel],
        evaluations=n_eval.sum(axis=0) + screen_eval, variant=(best % per).astype(np.int64), settings=settings,
        candidate=candidate.astype(np.int64),
    )
