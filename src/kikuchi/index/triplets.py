"""Look-up tables of interplanar angles for triplet voting, one per phase.

A phase's strongest reflector families give a set of band poles (plane
normals in the Cartesian crystal frame, ``n`` and ``-n`` being the same
band). The table holds every ordered triplet of distinct poles up to the
rotational symmetry of the crystal (one triplet per orbit) with its three
acute interplanar angles, sorted by the first angle. A triplet of
detected bands whose angles agree within a tolerance with a table row
gives one orientation candidate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["TripletTable", "build_triplet_table", "triplet_table_for_phase", "DEFAULT_FAMILIES"]

_logger = logging.getLogger(__name__)

#: Number of strongest reflector families used per phase when not given:
#: 5 for cubic phases; lower symmetry has fewer equivalent poles per family
#: (and pseudo-symmetric solutions with few families), so 8.
DEFAULT_FAMILIES = 5
DEFAULT_FAMILIES_LOW_SYMMETRY = 8


def default_families(phase: Any) -> int:
    """Families used for a phase when not given: 5 for cubic phases, 8 for the others."""
    return DEFAULT_FAMILIES if getattr(phase, "crystal_system", "cubic") == "cubic" else DEFAULT_FAMILIES_LOW_SYMMETRY


@dataclass
class TripletTable:
    """Poles and the triplet look-up table of one phase.

    Attributes
    ----------
    name
        Phase name.
    poles
        (P, 3) unit plane normals, Cartesian crystal frame, one per band (no antipodes).
    hkl
        (P, 3) Miller indices of the poles.
    family
        (P,) index of each pole's family (0 = strongest).
    symmetry
        (S, 3, 3) proper rotations of the crystal's Laue group (crystal frame).
    triplets
        (T, 3) pole indices ``(p, q, r)``, one per symmetry orbit of ordered triplets.
    angles
        (T, 3) acute angles (p, q), (p, r), (q, r) in radians, sorted by the first.
    sign
        (T,) sign of the product of the three signed cosines (tells a triplet from its mirror image).
    first_index
        Start row in the table for each 0.5 degree bin of the first angle.
    phase
        The crystal phase the table came from (or None).
    bragg_angle
        (P,) Bragg angle of each pole's reflector (radians; the band is
        about twice as wide), or None when not known.
    """

    name: str
    poles: np.ndarray
    hkl: np.ndarray
    family: np.ndarray
    symmetry: np.ndarray
    triplets: np.ndarray
    angles: np.ndarray
    sign: np.ndarray
    first_index: np.ndarray
    phase: Any = field(default=None, repr=False)
    bragg_angle: np.ndarray | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        fams = sorted(set(map(int, self.family)))
        labels = []
        for f in fams:
            h = self.hkl[np.flatnonzero(self.family == f)[0]]
            labels.append("{" + "".join(str(int(v)) for v in np.abs(h)) + "}")
        return f"<TripletTable {self.name}: {len(self.poles)} poles in families {' '.join(labels)}, {len(self.triplets)} triplets>"


def _unique_lines(normals: np.ndarray) -> np.ndarray:
    """Indices keeping one of each pair ``n, -n`` (and no duplicates)."""
    keep: list[int] = []
    for i, n in enumerate(normals):
        if all(abs(float(n @ normals[k])) < 1 - 1e-6 for k in keep):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


def build_triplet_table(
    normals: np.ndarray,
    hkl: np.ndarray,
    family: np.ndarray,
    symmetry: np.ndarray,
    *,
    name: str = "phase",
    phase: Any = None,
    bragg_angle: np.ndarray | None = None,
) -> TripletTable:
    """Triplet look-up table from the poles of a phase.

    Parameters
    ----------
    normals
        (P, 3) plane normals in the Cartesian crystal frame (all symmetry
        equivalents of the chosen families; antipodes are dropped here).
    hkl
        (P, 3) their Miller indices.
    family
        (P,) family index of each normal.
    symmetry
        (S, 3, 3) proper rotations of the Laue group.
    bragg_angle
        Optional (P,) Bragg angles of the reflectors (radians).

    Examples
    --------
    >>> import itertools
    >>> hkl = np.array([p for p in itertools.product((-1, 1), repeat=3)] + [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    >>> fam = np.array([0] * 8 + [1] * 3)
    >>> rot = np.array([np.eye(3)[list(p)] * s for p in itertools.permutations(range(3))
    ...                 for s in itertools.product((-1, 1), repeat=3)])
    >>> rot = rot[np.isclose(np.linalg.det(rot), 1)]
    >>> t = build_triplet_table(hkl / np.linalg.norm(hkl, axis=1)[:, None], hkl, fam, rot)
    >>> len(t.poles), len(t.symmetry)
    (7, 24)
    """
    normals = np.asarray(normals, dtype=np.float64)
    normals = normals / np.linalg.norm(normals, axis=1, keepdims=True)
    hkl = np.asarray(hkl)
    family = np.asarray(family, dtype=np.int64)
    symmetry = np.asarray(symmetry, dtype=np.float64)
    if normals.ndim != 2 or normals.shape[1] != 3 or len(normals) < 3:
        raise ValueError(f"build_triplet_table: need at least 3 plane normals (P, 3), got shape {normals.shape}")
    if hkl.shape != normals.shape or family.shape != (len(normals),):
        raise ValueError(f"build_triplet_table: hkl {hkl.shape} and family {family.shape} must match normals {normals.shape}")
    keep = _unique_lines(normals)
    poles, hkl, family = normals[keep], hkl[keep], family[keep]
    bragg = None if bragg_angle is None else np.asarray(bragg_angle, dtype=np.float64)[keep]
    n_p = len(poles)
    if n_p < 3:
        raise ValueError(f"build_triplet_table: phase {name!r} has only {n_p} distinct band poles; use more reflector families")
    # permutation of the poles under each symmetry operation
    rotated = np.einsum("sij,pj->spi", symmetry, poles)
    dots = np.abs(np.einsum("spi,qi->spq", rotated, poles))
    perm = dots.argmax(axis=2)
    if not np.allclose(dots.max(axis=2), 1.0, atol=1e-5):
        raise ValueError(f"build_triplet_table: the poles of phase {name!r} are not closed under its symmetry (incomplete families?)")
    # one ordered triplet per orbit: the lexicographically smallest image
    p, q, r = np.meshgrid(np.arange(n_p), np.arange(n_p), np.arange(n_p), indexing="ij")
    distinct = (p != q) & (p != r) & (q != r)
    trip = np.stack([p[distinct], q[distinct], r[distinct]], axis=1)
    code = trip[:, 0] * n_p * n_p + trip[:, 1] * n_p + trip[:, 2]
    images = perm[:, trip[:, 0]] * n_p * n_p + perm[:, trip[:, 1]] * n_p + perm[:, trip[:, 2]]
    canonical = images.min(axis=0)
    trip = trip[code == canonical]
    d = poles @ poles.T
    dpq = d[trip[:, 0], trip[:, 1]]
    dpr = d[trip[:, 0], trip[:, 2]]
    dqr = d[trip[:, 1], trip[:, 2]]
    angles = np.arccos(np.clip(np.abs(np.stack([dpq, dpr, dqr], axis=1)), 0.0, 1.0))
    # drop triplets with two (nearly) parallel poles: they fix no orientation
    ok = (angles[:, 0] > np.radians(2.0)) & (angles[:, 1] > np.radians(2.0)) & (angles[:, 2] > np.radians(2.0))
    trip, angles = trip[ok], angles[ok]
    sign = np.sign(dpq * dpr * dqr)[ok]
    order = np.argsort(angles[:, 0], kind="stable")
    trip, angles, sign = trip[order], angles[order], sign[order]
    bins = np.arange(0, 181) * (np.pi / 360.0)
    first_index = np.searchsorted(angles[:, 0], bins, side="left").astype(np.int64)
    _logger.debug("phase %s: %d poles, %d triplets", name, n_p, len(trip))
    return TripletTable(
        name=name, poles=poles, hkl=hkl, family=family, symmetry=symmetry,
        triplets=np.ascontiguousarray(trip, dtype=np.int64), angles=np.ascontiguousarray(angles),
        sign=np.ascontiguousarray(sign, dtype=np.float64), first_index=first_index, phase=phase, bragg_angle=bragg,
    )


def laue_rotations(phase: Any) -> np.ndarray:
    """(S, 3, 3) proper rotations of the Laue group of a :class:`kikuchi.crystal.Phase` (Cartesian crystal frame)."""
    ops = np.asarray(phase.point_group_matrices(laue=True), dtype=np.float64)
    return ops[np.linalg.det(ops) > 0]


def triplet_table_for_phase(phase: Any, *, n_families: int | None = None, kv: float = 20.0, families: list | None = None) -> TripletTable:
    """Triplet table of a :class:`kikuchi.crystal.Phase` from its strongest reflector families.

    Parameters
    ----------
    phase
        A crystal phase (``Phase.parse('ni')``...).
    n_families
        How many of the strongest families (by |F|^2 d^2) to use; default
        :func:`default_families` (5 cubic, 8 otherwise).
    kv
        Accelerating voltage for the reflectors.
    families
        Explicit families as Miller indices, e.g. ``[(1, 1, 1), (2, 0, 0)]``;
        overrides ``n_families``.
    """
    from kikuchi.crystal import reflectors

    if n_families is None:
        n_families = default_families(phase)
    ref = reflectors(phase, kv=kv)
    hkl = np.asarray(ref.hkl)
    fam = np.asarray(ref.family, dtype=np.int64)
    normals = np.asarray(ref.normals, dtype=np.float64)
    # family strength: |F|^2, one value per family
    fsq = np.asarray(ref.structure_factor_sq, dtype=np.float64)
    fam_ids = np.unique(fam)
    if families is not None:
        wanted = []
        for f_hkl in families:
            f_hkl = np.asarray(f_hkl)
            hit = [f for f in fam_ids if any(np.array_equal(np.sort(np.abs(h)), np.sort(np.abs(f_hkl))) for h in hkl[fam == f])]
            if not hit:
                raise ValueError(f"phase {phase.name}: no reflector family {tuple(int(v) for v in f_hkl)} (allowed reflections at {kv} kV)")
            wanted.extend(hit[:1])
        chosen = wanted
    else:
        # strongest first; among equal strengths the larger d (lower order) first
        d_nm = np.asarray(ref.d_nm, dtype=np.float64)
        score = [(-float(fsq[fam == f].max()) * float(d_nm[fam == f].max()) ** 2, f) for f in fam_ids]
        chosen = []
        seen: list[np.ndarray] = []
        for _, f in sorted(score):
            # a higher order of a chosen family ({222} after {111}) is the same band
            n0 = normals[fam == f][0]
            if any(np.abs(s @ n0).max() > 1 - 1e-6 for s in seen):
                continue
            seen.append(normals[fam == f])
            chosen.append(f)
            if len(chosen) >= n_families:
                break
    sel = np.isin(fam, chosen)
    remap = {f: k for k, f in enumerate(chosen)}
    return build_triplet_table(
        normals[sel], hkl[sel], np.array([remap[f] for f in fam[sel]]), laue_rotations(phase),
        name=str(phase.name), phase=phase, bragg_angle=np.asarray(ref.bragg_angle, dtype=np.float64)[sel],
    )
