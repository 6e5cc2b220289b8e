"""Hough indexing: detected bands -> crystal orientation, phase and fit quality per pattern.

For every pattern the detected bands (:mod:`kikuchi.bands`) become plane
normals in the sample frame through the detector geometry. Every triplet
of bands is compared with each phase's look-up table of interplanar angles
(:mod:`kikuchi.index.triplets`); every match proposes an orientation (triad
of the band/pole pairs). The proposal whose predicted bands hold the most
of the pattern's filtered Radon transform (its band evidence) is refined by
least squares on the bands it explains (:meth:`HoughIndexer.index`; from
band tables alone, the proposal explaining most bands). With several
phases, the phase explaining most bands (then with the smallest mean
angular deviation) wins.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kikuchi.bands._kernels import COL_INTENSITY, COL_SLOPE, COL_VALID, COL_WIDTH
from kikuchi.bands.radon import BandDetector, check_band_options
from kikuchi.index import _kernels as K
from kikuchi.index.normals import detector_homographies
from kikuchi.index.triplets import TripletTable, triplet_table_for_phase

__all__ = ["HoughIndexer", "IndexResult", "ERROR_CODES"]

_logger = logging.getLogger(__name__)

#: Error codes of the CTF format (Oxford Channel 5) and when the indexer sets them.
ERROR_CODES = {
    0: "Success",
    1: "Low band contrast (fewer than 3 bands detected)",
    2: "Low band slope (band slope below min_band_slope)",
    3: "No solution (fewer than min_matched bands explained by any phase)",
    4: "High MAD (mean angular deviation above max_mad_deg)",
    5: "Not yet analysed (job cancelled before this point)",
    6: "Unexpected error (the pattern holds no signal: all one value, or not finite; not indexed)",
}

#: Scale of the band contrast and band slope analogues to the 0..255 range of CTF files.
_BC_SCALE = 255.0 / 2.0
_BS_SCALE = 255.0 / 1.0


@dataclass
class IndexResult:
    """Per-pattern results of Hough indexing (arrays of length n, storage order).

    Attributes
    ----------
    euler
        (n, 3) Bunge Euler angles, radians (zeros where not indexed).
    phase_id
        (n,) 1-based index into ``phases``; 0 where not indexed.
    n_bands
        (n,) bands detected.
    n_matched
        (n,) bands explained by the solution (CTF "Bands").
    mad_deg
        (n,) mean angular deviation between the band normals and the
        matched theoretical plane normals, degrees.
    band_contrast, band_slope
        (n,) 0..255 analogues of Oxford's BC and BS: the mean filtered Radon
        peak height and peak curvature of the matched bands.
    ci
        (n,) confidence index in [0, 1]: (bands of the best solution minus
        bands of the best solution at least 5 degrees away) / bands detected,
        both counted at the voting tolerance (``vote_tol_deg``).
    error
        (n,) CTF error code (:data:`ERROR_CODES`).
    phases
        Names of the phases (index ``phase_id - 1``).
    tables
        The triplet tables of the phases.
    """

    euler: np.ndarray
    phase_id: np.ndarray
    n_bands: np.ndarray
    n_matched: np.ndarray
    mad_deg: np.ndarray
    band_contrast: np.ndarray
    band_slope: np.ndarray
    ci: np.ndarray
    error: np.ndarray
    phases: list[str] = field(default_factory=list)
    tables: list[TripletTable] = field(default_factory=list, repr=False)

    def __len__(self) -> int:
        return int(self.phase_id.size)

    @property
    def indexed(self) -> np.ndarray:
        """(n,) True where a solution was accepted (error 0)."""
        return self.error == 0

    def as_array(self) -> np.ndarray:
        """(n, 11) float rows: phi1, Phi, phi2, phase_id, n_bands, n_matched, mad_deg, bc, bs, ci, error."""
        return np.column_stack([
            self.euler, self.phase_id, self.n_bands, self.n_matched, self.mad_deg,
            self.band_contrast, self.band_slope, self.ci, self.error,
        ]).astype(np.float64)

    @classmethod
    def from_array(cls, rows: np.ndarray, *, phases: list[str], tables: list[TripletTable] | None = None) -> IndexResult:
        """Inverse of :meth:`as_array`."""
        rows = np.asarray(rows, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != 11:
            raise ValueError(
                "IndexResult.from_array: expected rows (n, 11): phi1, Phi, phi2, phase_id, n_bands, n_matched, mad_deg, bc, bs, ci, error; "
                f"got shape {rows.shape}"
            )
        return cls(
            euler=rows[:, :3].copy(), phase_id=rows[:, 3].astype(np.int64), n_bands=rows[:, 4].astype(np.int64),
            n_matched=rows[:, 5].astype(np.int64), mad_deg=rows[:, 6].copy(), band_contrast=rows[:, 7].copy(),
            band_slope=rows[:, 8].copy(), ci=rows[:, 9].copy(), error=rows[:, 10].astype(np.int64),
            phases=list(phases), tables=list(tables or []),
        )

    def mark_no_signal(self, flagged: np.ndarray) -> None:
        """Mark patterns that hold no signal ((n,) bool): error 6, nothing detected, matched or oriented."""
        flagged = np.asarray(flagged, dtype=bool)
        self.error[flagged] = 6
        self.euler[flagged] = 0.0
        for name in ("phase_id", "n_bands", "n_matched"):
            getattr(self, name)[flagged] = 0
        for name in ("mad_deg", "band_contrast", "band_slope", "ci"):
            getattr(self, name)[flagged] = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready counts and means (``no_signal``: points not indexed because their pattern holds no signal, error 6)."""
        ok = self.indexed
        return {
            "points": len(self),
            "no_signal": int((self.error == 6).sum()),
            "indexed": int(ok.sum()),
            "indexed_fraction": round(float(ok.mean()) if len(self) else 0.0, 4),
            "mean_mad_deg": round(float(self.mad_deg[ok].mean()), 4) if ok.any() else None,
            "mean_bands_matched": round(float(self.n_matched[ok].mean()), 3) if ok.any() else None,
            "mean_ci": round(float(self.ci[ok].mean()), 4) if ok.any() else None,
            "phases": {name: int((self.phase_id == i + 1).sum()) for i, name in enumerate(self.phases)},
            "errors": {ERROR_CODES[c].split(" (")[0]: int((self.error == c).sum()) for c in sorted(set(self.error.tolist()))},
        }


def _matched_at(normals: np.ndarray, band_ok: np.ndarray, rots: np.ndarray, poles: np.ndarray, cos_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Bands (n,) within ``cos_tol`` of a pole under each rotation (crystal -> sample), and their mean deviation (rad)."""
    crystal = np.einsum("nbi,nij->nbj", normals, rots)  # U^T n: the band normals in the crystal frame
    best = np.abs(crystal @ poles.T).max(axis=2)
    matched = band_ok & (best >= cos_tol)
    count = matched.sum(axis=1)
    dev = np.where(matched, np.arccos(np.clip(best, 0.0, 1.0)), 0.0).sum(axis=1)
    return count.astype(np.float64), dev / np.maximum(count, 1)


def _as_table(phase: Any, *, n_families: int | None, kv: float) -> TripletTable:
    if isinstance(phase, TripletTable):
        return phase
    from kikuchi.crystal import Phase

    if not isinstance(phase, Phase):
        phase = Phase.parse(phase)
    return triplet_table_for_phase(phase, n_families=n_families, kv=kv)


class HoughIndexer:
    """Hough indexing of patterns of one detector against one or more phases.

    Parameters
    ----------
    phases
        Phases: :class:`kikuchi.crystal.Phase`, anything ``Phase.parse``
        reads ('ni', 'fe-alpha', a CIF path, ...) or prepared
        :class:`~kikuchi.index.triplets.TripletTable`.
    detector
        :class:`kikuchi.geometry.Detector` (one PC, or one per map point).
    n_bands
        Bands detected per pattern.
    n_families
        Strongest reflector families per phase in the look-up table
        (default 5 for cubic phases, 8 for the others).
    angle_tol_deg
        Tolerance on interplanar angles when matching triplets.
    fit_tol_deg
        A band is explained by an orientation when its normal is within
        this angle of a theoretical plane normal: the bands matched (CTF
        "Bands"), the MAD and the acceptance (``min_matched``) of the
        refined solution count at this tolerance.
    vote_tol_deg
        The looser tolerance at which the proposals of triplet voting are
        scored and the best one is refined by least squares. A proposal
        comes from three bands by the triad method, so the noise of those
        bands tilts it by up to a degree or two: at ``fit_tol_deg`` it would
        miss bands that the refined orientation explains, and lose to a
        wrong proposal. Scoring at 3 degrees and counting at 2 after the
        refinement indexes more noisy patterns and fits better at low noise
        (docs/indexing.md, "High noise").
    min_matched
        Fewest explained bands for a solution (error 3 below), but see
        ``min_evidence``.
    proposal_score
        How the proposals of triplet voting are ranked. 'evidence' (the
        default): patterns indexed from their pixels (:meth:`index`) keep
        their filtered Radon transforms, and the proposal with the most band
        evidence wins: the transform summed along the centre lines of all
        the bands it predicts, detected among the strongest peaks or not.
        'bands': the proposal explaining the most detected bands (then with
        the smallest deviation) wins, as it did before the band evidence;
        so it does in :meth:`index_bands` without transforms. At a few tens of
        counts per pixel most patterns show only three of their bands among
        the detected peaks, and a wrong orientation explains four of them
        by chance about as often as the right one; the transform along the
        other predicted bands tells them apart (docs/indexing.md, "High
        noise").
    min_evidence
        A solution explaining one band fewer than ``min_matched`` (and at
        least 3) is accepted when its band evidence reaches this: the
        transform summed along its predicted bands, in units of the
        transform's root mean square, over the square root of their number
        (a z-score: about 0 for an orientation at random, 10-12 for the
        real Ni patterns). At 3.5, such 3-band solutions of noisy 60 x 60
        patterns are right as often as the 4-band ones (about 60 %).
        None: never.
    max_mad_deg
        Largest accepted mean angular deviation (error 4 above).
    min_band_slope
        Smallest accepted band slope analogue (error 2 below; 0 disables).
    kv
        Accelerating voltage for the reflectors.
    band_options
        Options of :class:`kikuchi.bands.BandDetector`.

    Examples
    --------
    >>> from kikuchi.geometry import Detector
    >>> indexer = HoughIndexer(["ni"], Detector((60, 60), (0.5, 0.2, 0.55)))
    >>> indexer.tables[0].name
    'ni'
    """

    #: Patterns detected and indexed together by :meth:`index` (their filtered transforms are kept meanwhile).
    _BLOCK = 256

    def __init__(
        self,
        phases: Any,
        detector: Any,
        *,
        n_bands: int = 9,
        n_families: int | None = None,
        angle_tol_deg: float = 2.0,
        fit_tol_deg: float = 2.0,
        vote_tol_deg: float = 3.0,
        min_matched: int = 4,
        proposal_score: str = "evidence",
        min_evidence: float | None = 3.5,
        max_mad_deg: float = 1.5,
        min_band_slope: float = 0.0,
        kv: float = 20.0,
        band_options: dict[str, Any] | None = None,
    ):
        if isinstance(phases, (str, TripletTable)) or not hasattr(phases, "__iter__"):
            phases = [phases]
        phases = list(phases)
        if not phases:
            raise ValueError("HoughIndexer: give at least one phase")
        if not 0 < angle_tol_deg < 10 or not 0 < fit_tol_deg < 10 or not 0 < vote_tol_deg < 10:
            raise ValueError(
                "HoughIndexer: angle_tol_deg, fit_tol_deg and vote_tol_deg must be in (0, 10) degrees, "
                f"got {angle_tol_deg}, {fit_tol_deg}, {vote_tol_deg}"
            )
        if min_matched < 3:
            raise ValueError(f"HoughIndexer: min_matched must be at least 3, got {min_matched}")
        if proposal_score not in ("evidence", "bands"):
            raise ValueError(f"HoughIndexer: proposal_score must be 'evidence' or 'bands', got {proposal_score!r}")
        if min_evidence is not None and not np.isfinite(min_evidence):
            raise ValueError(f"HoughIndexer: min_evidence must be a finite number or None, got {min_evidence}")
        if not (max_mad_deg > 0 and min_band_slope >= 0 and kv > 0):
            raise ValueError(f"HoughIndexer: need max_mad_deg > 0, min_band_slope >= 0 and kv > 0 (got {max_mad_deg}, {min_band_slope}, {kv})")
        if n_families is not None and (not float(n_families).is_integer() or n_families < 1):
            raise ValueError(f"HoughIndexer: n_families must be a whole number >= 1 (or None), got {n_families}")
        if not (hasattr(detector, "shape") and hasattr(detector, "pc_as")):
            raise ValueError(f"HoughIndexer: detector must be a kikuchi.geometry.Detector, got {type(detector).__name__}")
        self.tables = [_as_table(p, n_families=n_families, kv=kv) for p in phases]
        self.detector = detector
        self.angle_tol = np.radians(angle_tol_deg)
        self.cos_fit_tol = np.cos(np.radians(fit_tol_deg))
        self.cos_vote_tol = np.cos(np.radians(vote_tol_deg))
        self.min_matched = int(min_matched)
        self.proposal_score = proposal_score
        self.min_evidence = None if min_evidence is None else float(min_evidence)
        self.max_mad_deg = float(max_mad_deg)
        self.min_band_slope = float(min_band_slope)
        check_band_options(dict(band_options or {}), "HoughIndexer band_options")
        self.band_detector = BandDetector(tuple(detector.shape), n_bands=n_bands, **(band_options or {}))
        self._minv_t = detector_homographies(detector)
        self._mt = np.linalg.inv(self._minv_t)  # M^T: plane normal (sample frame) -> its line on the detector

    @property
    def phase_names(self) -> list[str]:
        return [t.name for t in self.tables]

    def with_detector(self, detector: Any) -> HoughIndexer:
        """A copy using another detector (same shape): for pattern centre refinement."""
        if tuple(detector.shape) != tuple(self.detector.shape):
            raise ValueError(
                f"HoughIndexer.with_detector: the detector's pattern shape {tuple(detector.shape)} differs from "
                f"{tuple(self.detector.shape)}, the shape the band detector was made for; make a new HoughIndexer"
            )
        new = object.__new__(HoughIndexer)
        new.__dict__.update(self.__dict__)
        new.detector = detector
        new._minv_t = detector_homographies(detector)
        new._mt = np.linalg.inv(new._minv_t)
        return new

    # -- steps -------------------------------------------------------------------
    def detect(self, patterns: np.ndarray, *, workers: int = 1) -> np.ndarray:
        """Band tables (n, n_bands, 6) of a pattern stack (see :meth:`BandDetector.detect_stack`)."""
        return self.band_detector.detect_stack(patterns, workers=workers)

    def _minv_for(self, index: np.ndarray | None, n: int, *, m: np.ndarray | None = None) -> np.ndarray:
        m = self._minv_t if m is None else m
        if m.ndim == 2:
            return np.broadcast_to(m, (n, 3, 3))
        if index is None:
            if m.shape[0] != n:
                raise ValueError(f"the detector has {m.shape[0]} pattern centres for {n} patterns: pass index= (flat map positions row * cols + col)")
            return m
        return m[np.asarray(index, dtype=np.int64)]

    def index_bands(self, table: np.ndarray, *, index: np.ndarray | None = None, transforms: np.ndarray | None = None) -> IndexResult:
        """Index band tables (n, n_bands, 6) of :meth:`detect`.

        For per-point pattern centres, ``index`` gives each pattern's PC as a
        flat position in ``detector.pc_flat`` (row * cols + col of a map);
        default 0..n-1. ``transforms``: the patterns' filtered Radon
        transforms (n, n_theta, n_rho) from
        :meth:`BandDetector.detect_stack_filtered`; with them the proposals
        are ranked by their band evidence (``proposal_score='evidence'``),
        as :meth:`index` does; without them, or with
        ``proposal_score='bands'``, by the bands they explain.
        """
        table = np.ascontiguousarray(table, dtype=np.float64)
        if table.ndim != 3 or table.shape[2] != 6:
            raise ValueError(f"HoughIndexer.index_bands: expected band tables (n, n_bands, 6) from detect(), got shape {table.shape}")
        n, nb = table.shape[:2]
        h, w = self.detector.shape
        bd = self.band_detector
        scored = bd.searched
        if transforms is None or self.proposal_score == "bands":
            transforms = np.zeros((0,) + scored.shape, dtype=np.float32)
        elif np.shape(transforms) != (n,) + scored.shape:
            raise ValueError(
                f"HoughIndexer.index_bands: expected filtered transforms ({n}, {scored.shape[0]}, {scored.shape[1]}) "
                f"from BandDetector.detect_stack_filtered, got shape {np.shape(transforms)}"
            )
        transforms = np.ascontiguousarray(transforms, dtype=np.float32)
        minv = np.ascontiguousarray(self._minv_for(index, n))
        mt = np.ascontiguousarray(self._minv_for(index, n, m=self._mt))
        half = float(-bd.rho_bins[0] / bd.rho_step)
        normals = np.zeros((n, nb, 3))
        n_valid = np.zeros(n, dtype=np.int64)
        K._band_normals_stack(table, minv, (w - 1) / 2.0, (h - 1) / 2.0, normals, n_valid)
        weights = np.ascontiguousarray(np.clip(table[:, :, COL_INTENSITY], 1e-6, None))
        n_ph = len(self.tables)
        rots = np.empty((n_ph, n, 3, 3))
        voted = np.zeros((n_ph, n, 4))
        # columns: bands matched and MAD (rad) at fit_tol, bands of the best solution >= 5 degrees away and
        # bands matched, both at vote_tol (the confidence index compares those two), band evidence
        results = np.zeros((n_ph, n, 5))
        band_ok = np.arange(nb)[None, :] < n_valid[:, None]
        for k, t in enumerate(self.tables):
            K._index_stack(
                normals, n_valid, weights, t.poles, t.triplets, t.angles, t.sign, t.first_index, self.angle_tol,
                self.cos_vote_tol, t.symmetry, 1.0 + 2.0 * np.cos(np.radians(5.0)), 1024, rots[k], voted[k], self.cos_fit_tol,
                transforms, scored, mt, (w - 1) / 2.0, (h - 1) / 2.0, half, 1.0 / bd.rho_step, bd.n_theta / np.pi,
            )
            results[k, :, 0], results[k, :, 1] = _matched_at(normals, band_ok & (voted[k][:, :1] > 0), rots[k], t.poles, self.cos_fit_tol)
            results[k, :, 2:] = voted[k][:, [2, 0, 3]]
        # most bands explained, then the smallest MAD
        count = results[:, :, 0]
        mad = np.where(count > 0, results[:, :, 1], np.inf)
        top = count.max(axis=0)
        cand = (count == top[None]) & (top[None] > 0)
        mad_c = np.where(cand, mad, np.inf)
        choice = mad_c.argmin(axis=0)
        if n_ph > 1:
            choice = self._break_ties(table, minv, normals, rots, cand, mad_c, choice)
        idx = np.arange(n)
        return self._finish(table, n_valid, rots[choice, idx], results[choice, idx], np.where(top > 0, choice + 1, 0))

    def _break_ties(self, table, minv, normals, rots, cand, mad_c, choice) -> np.ndarray:
        """Phases explaining the same bands equally well (MADs within 0.1 degree): the one whose
        band widths follow its reflectors' Bragg angles best (correlation of widths and 2 theta_B)."""
        close = cand & (mad_c <= mad_c.min(axis=0)[None] + np.radians(0.1))
        tied = np.flatnonzero(close.sum(axis=0) > 1)
        if tied.size == 0 or any(t.bragg_angle is None for t in self.tables):
            return choice
        h, w = self.detector.shape
        widths = self._angular_widths(table[tied], minv[tied], (h, w))
        choice = choice.copy()
        for j, i in enumerate(tied):
            best_k, best_r = choice[i], -np.inf
            for k in np.flatnonzero(close[:, i]):
                t = self.tables[k]
                nrm = normals[i][: widths[j].size]
                m = nrm @ rots[k, i]  # crystal frame: U^T n as rows
                d = np.abs(m @ t.poles.T)
                ok = d.max(axis=1) >= self.cos_fit_tol
                expected = t.bragg_angle[d.argmax(axis=1)][ok]
                got = widths[j][ok]
                if ok.sum() < 3 or expected.std() == 0 or got.std() == 0:
                    continue
                r = float(np.corrcoef(got, expected)[0, 1])
                if r > best_r:
                    best_k, best_r = k, r
            choice[i] = best_k
        return choice

    @staticmethod
    def _angular_widths(table: np.ndarray, minv: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
        """Angle between the planes through the two edges (rho -/+ width / 2) of each valid band."""
        h, w = shape
        out = []
        for rows, m in zip(table, minv):
            rows = rows[rows[:, COL_VALID] > 0]
            lo, hi = rows.copy(), rows.copy()
            lo[:, 0] -= rows[:, COL_WIDTH] / 2
            hi[:, 0] += rows[:, COL_WIDTH] / 2
            na = np.zeros((len(rows), 3))
            nb = np.zeros((len(rows), 3))
            K._band_normals(lo, m, (w - 1) / 2.0, (h - 1) / 2.0, na)
            K._band_normals(hi, m, (w - 1) / 2.0, (h - 1) / 2.0, nb)
            out.append(np.arccos(np.clip(np.abs(np.sum(na * nb, axis=1)), 0.0, 1.0)))
        return out

    def _finish(self, table, n_valid, rot, res, phase) -> IndexResult:
        from kikuchi.geometry import matrix_to_euler

        n = table.shape[0]
        n_matched = res[:, 0].astype(np.int64)
        mad = np.degrees(res[:, 1])
        second = res[:, 2]
        n_voted = res[:, 3]
        evidence = res[:, 4]
        valid = table[:, :, COL_VALID] > 0
        # band contrast / slope analogues over the detected bands
        with np.errstate(invalid="ignore", divide="ignore"):
            cnt = np.maximum(valid.sum(axis=1), 1)
            mean_int = (table[:, :, COL_INTENSITY] * valid).sum(axis=1) / cnt
            mean_slope = (table[:, :, COL_SLOPE] * valid).sum(axis=1) / cnt
        bc = np.clip(np.round(mean_int * _BC_SCALE), 0, 255)
        bs = np.clip(np.round(mean_slope * _BS_SCALE), 0, 255)
        ci = np.clip((n_voted - second) / np.maximum(n_valid, 1), 0.0, 1.0)
        error = np.zeros(n, dtype=np.int64)
        error[n_valid < 3] = 1
        if self.min_band_slope > 0:
            error[(error == 0) & (bs < self.min_band_slope)] = 2
        few = n_matched < self.min_matched
        if self.min_evidence is not None:  # one band fewer, where the other bands of the solution show in the transform
            few &= ~((n_matched >= max(3, self.min_matched - 1)) & (evidence >= self.min_evidence))
        error[(error == 0) & few] = 3
        error[(error == 0) & (mad > self.max_mad_deg)] = 4
        bad = ~np.all(np.isfinite(table[:, :, :COL_VALID]), axis=(1, 2))
        error[bad] = 6
        ok = error == 0
        # orientation matrix g (sample -> crystal) is the transpose of U (crystal -> sample)
        euler = np.zeros((n, 3))
        if ok.any():
            euler[ok] = matrix_to_euler(np.swapaxes(rot[ok], -1, -2))
        return IndexResult(
            euler=euler,
            phase_id=np.where(ok, phase, 0),
            n_bands=n_valid.copy(),
            n_matched=np.where(error == 1, 0, n_matched),
            mad_deg=np.where(ok, mad, 0.0),
            band_contrast=bc,
            band_slope=bs,
            ci=np.where(ok, ci, 0.0),
            error=error,
            phases=self.phase_names,
            tables=self.tables,
        )

    def index(
        self, patterns: np.ndarray, *, index: np.ndarray | None = None, workers: int = 1, no_signal: np.ndarray | None = None
    ) -> IndexResult:
        """Detect bands in (n, h, w) patterns and index them.

        ``index``: flat map positions row * cols + col, for per-point PCs.
        Patterns that hold no signal (all one value, or a value not finite;
        see :func:`kikuchi.process.no_signal.no_signal`), and those flagged in
        ``no_signal`` ((n,) bool, e.g. found on the raw patterns before the
        background removal), are not indexed: error 6 (:data:`ERROR_CODES`),
        and no band, phase or orientation.
        """
        from kikuchi.process.no_signal import no_signal as find_no_signal

        patterns = np.asarray(patterns)
        if patterns.ndim == 2:
            patterns = patterns[None]
        if patterns.ndim != 3 or patterns.shape[1:] != tuple(self.detector.shape):
            raise ValueError(f"HoughIndexer.index: expected patterns (n, {self.detector.shape[0]}, {self.detector.shape[1]}), got {patterns.shape}")
        if patterns.dtype.kind not in "biuf":
            raise ValueError(f"HoughIndexer.index: patterns must be numbers, got dtype {patterns.dtype}")
        n = patterns.shape[0]
        if index is not None:
            index = np.asarray(index)
            if index.shape != (n,) or index.dtype.kind not in "iu":
                raise ValueError(f"HoughIndexer.index: index must be {n} integer map positions (row * cols + col), got {index.dtype} of shape {index.shape}")
            n_pc = self._minv_t.shape[0] if self._minv_t.ndim == 3 else None
            if n_pc is not None and n and (index.min() < 0 or index.max() >= n_pc):
                raise IndexError(f"HoughIndexer.index: map positions {index.min()}..{index.max()} outside the detector's {n_pc} pattern centres")
        bad = find_no_signal(patterns)
        if no_signal is not None:
            flagged = np.asarray(no_signal, dtype=bool)
            if flagged.shape != (n,):
                raise ValueError(f"HoughIndexer.index: no_signal must be {n} flags, got shape {flagged.shape}")
            bad = bad | flagged
        if bad.any():  # no bands are looked for in them (zeros have none), and their rows say error 6
            patterns = patterns.copy()
            patterns[bad] = 0
        result = self._index(patterns, index=index, workers=workers)
        if bad.any():
            result.mark_no_signal(bad)
        return result

    def _index(self, patterns: np.ndarray, *, index: np.ndarray | None, workers: int) -> IndexResult:
        n = patterns.shape[0]
        if n == 0:
            return IndexResult.from_array(np.zeros((0, 11)), phases=self.phase_names, tables=self.tables)
        if index is None:
            self._minv_for(None, n)  # one PC, or one per pattern: else say so
        idx = np.arange(n) if index is None else np.asarray(index)

        def block(s: int, e: int) -> np.ndarray:
            # detection and indexing in blocks: the filtered transforms of a block are kept for the band evidence
            if self.proposal_score == "bands":
                return self.index_bands(self.detect(patterns[s:e]), index=idx[s:e]).as_array()
            parts = []
            for b in range(s, e, self._BLOCK):
                c = min(b + self._BLOCK, e)
                table, filtered = self.band_detector.detect_stack_filtered(patterns[b:c])
                parts.append(self.index_bands(table, index=idx[b:c], transforms=filtered).as_array())
            return np.concatenate(parts)

        if workers <= 1 or n < 512:
            return IndexResult.from_array(block(0, n), phases=self.phase_names, tables=self.tables)
        bounds = np.linspace(0, n, workers * 4 + 1).astype(int)

        def work(k: int) -> np.ndarray:
            return block(bounds[k], bounds[k + 1])

        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(work, range(len(bounds) - 1)))
        return IndexResult.from_array(np.concatenate(parts), phases=self.phase_names, tables=self.tables)
