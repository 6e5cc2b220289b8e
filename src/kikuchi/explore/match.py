"""The explorer's pattern-matching view: experiment, simulation, their difference and the NCC at a map point.

As the xcdskd documentation's Example 1 and as ``kikuchi refine`` compares
them: the experimental pattern prepared for matching the way refinement
prepares it (:func:`kikuchi.refine.prepare_for_matching`: the file's static
background, then the smooth part of the pattern, subtracted), the master
pattern projected at the point's orientation and pattern centre
(:func:`kikuchi.simulate.project_patterns`), both normalised to mean 0 and
standard deviation 1 inside the signal mask (zero outside it), their
difference (experiment - simulation) and their NCC, computed by
:func:`kikuchi.refine.ncc` with the same mask.

The orientation and phase of a point come from the explorer's orientations
(the map file's Euler angles or an orientation map given alongside); its
pattern centre is the orientation map's refined one where it has the
``pcx``, ``pcy``, ``pcz`` columns (an HDF5 map from ``kikuchi refine``),
else the map file's (one PC, or one per point).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from kikuchi.explore.encode import display_uint8, image_png

__all__ = ["MATCH_PANELS", "PatternMatcher", "PointMatch", "match_phase_id", "panel_png"]

_logger = logging.getLogger(__name__)

#: The images of the view, in the order the page shows them.
MATCH_PANELS = ("experiment", "simulation", "difference")
#: Display range of the panels in standard deviations: experiment and simulation
#: in grey, the difference in blue (simulation brighter) - white - red (experiment brighter), as Example 1's figure.
PATTERN_RANGE = 3.0
DIFFERENCE_RANGE = 4.0
#: A diverging colour map: dark blue, blue, white, red, dark red (matplotlib's 'seismic').
_DIVERGING = np.array([(0.0, 0.0, 0.3), (0.0, 0.0, 1.0), (1.0, 1.0, 1.0), (1.0, 0.0, 0.0), (0.5, 0.0, 0.0)])


class NoMatch(LookupError):
    """A map point the view cannot show (no orientation, another phase); the message says why."""


@dataclass(frozen=True)
class PointMatch:
    """Experiment and simulation at one map point, as the pattern-matching view shows them.

    ``experiment``, ``simulation`` and ``difference`` are float32 (h, w):
    the two patterns normalised to mean 0 and standard deviation 1 inside
    ``mask`` and their difference, zero outside the mask; ``ncc`` is
    :func:`kikuchi.refine.ncc` of the prepared pattern and the simulation,
    the mean of ``experiment * simulation`` over the mask.
    """

    row: int
    col: int
    experiment: np.ndarray
    simulation: np.ndarray
    difference: np.ndarray
    mask: np.ndarray
    ncc: float
    euler_rad: np.ndarray
    pc_bruker: np.ndarray
    pc_from: str
    phase: str

    def panel(self, name: str) -> np.ndarray:
        return {"experiment": self.experiment, "simulation": self.simulation, "difference": self.difference}[name]

    def describe(self) -> dict[str, Any]:
        """JSON-ready: the NCC and what made the simulation."""
        d = self.difference[self.mask]
        return {
            "row": self.row,
            "col": self.col,
            "ncc": float(self.ncc),
            "phase": self.phase,
            "euler_deg": [float(v) for v in np.degrees(self.euler_rad)],
            "pc_bruker": [float(v) for v in self.pc_bruker],
            "pc_from": self.pc_from,
            "shape": list(self.experiment.shape),
            "mask_pixels": int(self.mask.sum()),
            "difference_rms": float(np.sqrt(np.mean(d.astype(np.float64) ** 2))) if d.size else 0.0,
            "panels": list(MATCH_PANELS),
        }


def match_phase_id(phases: list[dict[str, Any]], master: Any, phase: str | int | None) -> int:
    """The phase of the orientations that the master pattern is for.

    ``phase`` (an id or a name) when given; else the only phase; else the
    phase named as the master pattern's phase.

    Raises
    ------
    ValueError
        No such phase, or several phases and none named as the master pattern's.

    Examples
    --------
    >>> match_phase_id([{"id": 1, "name": "Ni"}, {"id": 2, "name": "Fe"}], None, "fe")
    2
    """
    if not phases:
        raise ValueError("the orientations name no phase: the master pattern's phase cannot be matched to their points")
    listed = ", ".join(f"{p['id']}: {p.get('name', '?')}" for p in phases)
    if phase is not None:
        text = str(phase).strip()
        for p in phases:
            if text == str(p["id"]) or text.lower() == str(p.get("name", "")).lower():
                return int(p["id"])
        raise ValueError(f"phase {text!r}: the orientations have no such phase ({listed})")
    if len(phases) == 1:
        return int(phases[0]["id"])
    name = _master_phase_name(master)
    for p in phases:
        if name and name.lower() == str(p.get("name", "")).lower():
            return int(p["id"])
    raise ValueError(f"the orientations hold phases {listed}: say which one the master pattern is for (--phase NAME|ID)")


def _master_phase_name(master: Any) -> str:
    phase = getattr(master, "phase", None)
    if phase is None:
        return ""
    return str(phase.get("name", "") if isinstance(phase, dict) else getattr(phase, "name", ""))


class PatternMatcher:
    """Experiment against simulation at the points of a map (see the module docstring).

    Parameters
    ----------
    master
        Master pattern of the phase (:class:`kikuchi.simulate.MasterPattern`).
    detector
        The map's detector (shape, tilts, one PC or one per map point).
    orientations
        :class:`kikuchi.explore.layers.PointOrientations` of the map grid.
    phase
        Phase of the orientations the master pattern is for (id or name;
        see :func:`match_phase_id`).
    static_background
        (h, w) background subtracted before the dynamic one (the map's), or None.
    sigma
        Gaussian sigma of the dynamic background in pixels (default width / 25).
    background
        Subtract the static and dynamic backgrounds (``kikuchi refine --no-background``: False).
    mask
        Compare inside the largest circle of the pattern (``kikuchi refine``'s
        default); False: every pixel (``--no-mask``).
    """

    def __init__(
        self,
        master: Any,
        detector: Any,
        orientations: Any,
        *,
        phase: str | int | None = None,
        static_background: np.ndarray | None = None,
        sigma: float | None = None,
        background: bool = True,
        mask: bool = True,
    ):
        from kikuchi.process import circular_mask

        self.master = master
        self.detector = detector
        self.orientations = orientations
        self.phase_id = match_phase_id(orientations.phases, master, phase)
        self.phase = next(p for p in orientations.phases if int(p["id"]) == self.phase_id)
        if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
            raise ValueError(f"sigma must be a positive number of pixels, got {sigma}")
        self.static_background = static_background if background else None
        self.sigma = sigma
        self.background = bool(background)
        shape = tuple(int(v) for v in detector.shape)
        self.mask = circular_mask(shape) if mask else np.ones(shape, dtype=bool)
        self.use_mask = bool(mask)
        self.nav_shape = tuple(orientations.euler.shape[:2])
        cols = orientations.columns
        pcs = [cols.get(name) for name in ("pcx", "pcy", "pcz")]
        self._pc_map = np.stack(pcs, axis=-1) if all(p is not None for p in pcs) else None
        #: Where the preparation settings come from (set by the explorer's source).
        self.settings_from = "options"

    def describe(self) -> dict[str, Any]:
        """JSON-ready settings, for the page."""
        return {
            "master_pattern": str(self.master.source),
            "kv": float(self.master.kv),
            "master_phase": _master_phase_name(self.master) or None,
            "phase_id": self.phase_id,
            "phase": str(self.phase.get("name", self.phase_id)),
            "static_background": self.static_background is not None,
            "dynamic_background": self.background,
            "sigma": self.sigma,
            "mask": "circular" if self.use_mask else "none",
            "mask_pixels": int(self.mask.sum()),
            "pc_from": "orientation map (pcx, pcy, pcz) where known, else the map file" if self._pc_map is not None else "map file",
            "normalisation": "mean 0, standard deviation 1 inside the mask",
            "settings_from": self.settings_from,
        }

    def pattern_centre(self, row: int, col: int) -> tuple[np.ndarray, str]:
        """The Bruker PC at (row, col) and where it comes from."""
        if self._pc_map is not None:
            pc = self._pc_map[row, col]
            if np.isfinite(pc).all():
                return np.asarray(pc, dtype=np.float64), "orientation map"
        det = self.detector
        flat = row * self.nav_shape[1] + col
        pc = det.pc_flat[flat] if det.n_pc > 1 else det.pc_flat[0]
        return np.asarray(pc, dtype=np.float64), "map file"

    def orientation(self, row: int, col: int) -> np.ndarray:
        """Euler angles (radians) of (row, col).

        Raises
        ------
        NoMatch
            The point has no orientation, or one of another phase.
        """
        o = self.orientations
        phase = o.phase_of(row, col)
        if phase is None:
            raise NoMatch(f"no orientation at (row {row}, col {col})")
        if int(phase["id"]) != self.phase_id:
            raise NoMatch(
                f"(row {row}, col {col}) is of phase {phase.get('name', phase['id'])}; the master pattern is for {self.phase.get('name', self.phase_id)}"
            )
        return np.asarray(o.euler[row, col], dtype=np.float64)

    def match(self, row: int, col: int, pattern: np.ndarray) -> PointMatch:
        """Experiment ``pattern`` (raw, (h, w)) at (row, col) against its simulation.

        Raises
        ------
        NoMatch
            The point has no orientation of the master pattern's phase.
        """
        from kikuchi.refine import ncc, normalize_patterns, prepare_for_matching
        from kikuchi.simulate import project_patterns

        euler = self.orientation(row, col)
        pc, pc_from = self.pattern_centre(row, col)
        prepared = prepare_for_matching(pattern, static_background=self.static_background, sigma=self.sigma, dynamic=self.background)
        simulated = project_patterns(self.master, self.detector.with_pc(pc), euler[None], workers=1)[0]
        r = ncc(prepared, simulated, self.mask)
        scale = np.float32(np.sqrt(self.mask.sum()))  # unit norm -> standard deviation 1
        exp = normalize_patterns(prepared, self.mask) * scale
        sim = normalize_patterns(simulated, self.mask) * scale
        return PointMatch(
            row=row, col=col, experiment=exp, simulation=sim, difference=exp - sim, mask=self.mask, ncc=float(r),
            euler_rad=euler, pc_bruker=pc, pc_from=pc_from, phase=str(self.phase.get("name", self.phase_id)),
        )


def panel_png(match: PointMatch, name: str) -> bytes:
    """PNG of one panel: grey between -3 and +3 standard deviations, the difference in blue-white-red between -4 and +4.

    Pixels outside the mask are transparent.
    """
    values = match.panel(name)
    if name == "difference":
        t = np.clip((values.astype(np.float64) + DIFFERENCE_RANGE) / (2 * DIFFERENCE_RANGE), 0.0, 1.0)
        stops = np.linspace(0.0, 1.0, len(_DIVERGING))
        rgb = np.stack([np.interp(t, stops, _DIVERGING[:, k]) for k in range(3)], axis=-1)
        image = np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
    else:
        image = display_uint8(values, low=-PATTERN_RANGE, high=PATTERN_RANGE)
    return image_png(image, alpha=None if match.mask.all() else match.mask)
