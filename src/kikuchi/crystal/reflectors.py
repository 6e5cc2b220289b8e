"""Reflectors of a phase: allowed hkl, kinematical structure factors, Bragg angles.

For a plane hkl with spacing d and s = 1 / (2 d),

    F(hkl) = sum_j occ_j f_j(s) exp(-B_j s^2) exp(2 pi i (h x_j + k y_j + l z_j))

over all atoms j of the unit cell (the asymmetric unit expanded by the space
group), with the electron scattering factors f_j of Peng et al. (1996) (see
:mod:`kikuchi.crystal.scattering`) and the isotropic Debye-Waller factors B_j
(intensity damped by exp(-2 B s^2)). The Bragg angle follows from
sin(theta_B) = lambda / (2 d) with the relativistic electron wavelength.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from kikuchi.crystal import spacegroup as _sg
from kikuchi.crystal.phase import Phase
from kikuchi.crystal.scattering import electron_scattering_factor, electron_wavelength_nm

__all__ = ["Reflectors", "reflectors", "structure_factor", "symmetry_families"]

# |F|^2 below this fraction of the strongest reflector counts as kinematically absent.
_ABSENT_FRACTION = 1e-8


def structure_factor(phase: Phase, hkl: Any) -> np.ndarray:
    """Kinematical structure factors F (n,) complex, in Å, of reflections hkl (n, 3).

    Examples
    --------
    >>> ni = Phase.parse("ni")
    >>> F = structure_factor(ni, [[1, 1, 1], [1, 0, 0]])
    >>> bool(abs(F[1]) < 1e-9), round(float(F[0].real), 3)  # 4 f(s) exp(-B s^2)
    (True, 11.602)
    """
    hkl = np.atleast_2d(np.asarray(hkl, dtype=np.float64))
    elements, xyz, occupancy, b_iso = phase.unit_cell()
    s_nm = 0.5 / phase.d_spacing_nm(hkl)  # (n,)
    elements = np.array(elements)
    # per-atom amplitude occ f(s) exp(-B s^2): (n, m)
    amplitude = np.empty((len(hkl), len(elements)))
    for element in np.unique(elements):
        f = electron_scattering_factor(str(element), s_nm / 10.0)  # table in 1/Å
        for j in np.flatnonzero(elements == element):
            amplitude[:, j] = occupancy[j] * f * np.exp(-b_iso[j] * s_nm**2)
    out = np.zeros(len(hkl), dtype=np.complex128)
    for start in range(0, len(hkl), 8192):  # bounded memory
        sl = slice(start, start + 8192)
        out[sl] = np.sum(amplitude[sl] * np.exp(2j * np.pi * (hkl[sl] @ xyz.T)), axis=1)
    return out


def symmetry_families(phase: Phase, hkl: Any) -> tuple[np.ndarray, np.ndarray]:
    """Family of each reflection under the Laue group: (index (n,), representatives (m, 3)).

    Two reflections belong to one family when an operation of the point group,
    or the inversion (Friedel's law holds kinematically), maps one onto the
    other. The representative is the member with the fewest negative indices,
    then the largest in lexicographic order (111 for {111}; 100 and 110 for
    hexagonal {10-10} and {11-20} in three-index notation).

    Examples
    --------
    >>> idx, rep = symmetry_families(Phase.parse("ni"), [[1, 1, 1], [-1, 1, -1], [2, 0, 0]])
    >>> idx.tolist(), rep.tolist()
    ([0, 0, 1], [[1, 1, 1], [2, 0, 0]])
    """
    hkl = np.atleast_2d(np.asarray(hkl, dtype=np.int64))
    rot, _ = _sg.symmetry_operations(phase.space_group)
    rotations = np.unique(np.round(rot).astype(np.int64), axis=0)
    scale = 2 * int(np.abs(hkl).max(initial=0)) * 3 + 1  # |h R| <= 3 max|h| (hexagonal R has entries up to 1)
    best = np.empty_like(hkl)
    for start in range(0, len(hkl), 2048):  # bounded memory: (block, 2 m, 3)
        block = np.einsum("ni,mij->nmj", hkl[start : start + 2048], rotations)  # h R
        block = np.concatenate([block, -block], axis=1)
        # the member with the fewest minus signs, then the lexicographic maximum
        keys = (block[..., 0] * scale + block[..., 1]) * scale + block[..., 2]
        keys = keys - (block < 0).sum(axis=2) * scale**3
        best[start : start + 2048] = np.take_along_axis(block, keys.argmax(axis=1)[:, None, None], axis=1)[:, 0, :]
    reps, index = np.unique(best, axis=0, return_inverse=True)
    return index.ravel(), reps


@dataclass(frozen=True)
class Reflectors:
    """A set of reflectors (lattice planes) of a phase at an accelerating voltage.

    Each lattice plane appears once: hkl and -h-k-l give the same Kikuchi band.

    Attributes
    ----------
    phase
        The phase.
    kv
        Accelerating voltage in kV.
    hkl
        Miller indices (n, 3), int.
    normals
        Unit plane normals (n, 3) in the Cartesian crystal frame.
    d_nm
        Interplanar spacings (n,) in nm.
    structure_factor
        Kinematical structure factors (n,) complex, in Å.
    structure_factor_sq
        |F|^2 (n,) in Å^2.
    bragg_angle
        Bragg angles theta_B (n,) in radians.
    family
        Index (n,) into :attr:`family_hkl` of each reflector's symmetry family.
    family_hkl
        Representative hkl (m, 3) of each family.
    """

    phase: Phase
    kv: float
    hkl: np.ndarray
    normals: np.ndarray
    d_nm: np.ndarray
    structure_factor: np.ndarray
    structure_factor_sq: np.ndarray
    bragg_angle: np.ndarray
    family: np.ndarray
    family_hkl: np.ndarray

    def __len__(self) -> int:
        return len(self.hkl)

    @property
    def wavelength_nm(self) -> float:
        """Relativistic electron wavelength in nm."""
        return electron_wavelength_nm(self.kv)

    @property
    def hkil(self) -> np.ndarray:
        """Miller-Bravais indices (n, 4) h, k, i = -(h + k), l (for hexagonal phases)."""
        h, k, l = self.hkl.T
        return np.stack([h, k, -(h + k), l], axis=1)

    def select(self, mask: Any) -> Reflectors:
        """The reflectors where ``mask`` (bool (n,) or indices) selects; families are renumbered."""
        idx = np.arange(len(self))[mask]
        used, family = np.unique(self.family[idx], return_inverse=True)
        return replace(
            self,
            hkl=self.hkl[idx],
            normals=self.normals[idx],
            d_nm=self.d_nm[idx],
            structure_factor=self.structure_factor[idx],
            structure_factor_sq=self.structure_factor_sq[idx],
            bragg_angle=self.bragg_angle[idx],
            family=family.ravel(),
            family_hkl=self.family_hkl[used],
        )

    def labels(self) -> list[str]:
        """hkl labels ('111', '-220', or 'hkil' for hexagonal phases)."""
        rows = self.hkil if self.phase.is_hexagonal else self.hkl
        return ["".join(str(int(v)) if abs(v) < 10 else f"({int(v)})" for v in row) for row in rows]


def reflectors(
    phase: Phase | str,
    *,
    kv: float = 20.0,
    d_min_nm: float | None = None,
    n: int | None = None,
    min_intensity: float = 1e-3,
) -> Reflectors:
    """Allowed reflectors of a phase, strongest first.

    Parameters
    ----------
    phase
        A :class:`Phase` or anything :meth:`Phase.parse` reads.
    kv
        Accelerating voltage in kV (for the Bragg angles).
    d_min_nm
        Smallest interplanar spacing kept; by default 0.05 nm (|g| up to
        20 nm^-1, the range that carries visible Kikuchi bands).
    n
        Keep at most this many reflectors, as whole symmetry families, strongest
        first (at least the strongest family).
    min_intensity
        Keep reflectors with |F|^2 >= ``min_intensity`` times the strongest |F|^2.

    Returns
    -------
    Reflectors
        Sorted by decreasing family |F|^2 (ties: larger d first), one entry per
        lattice plane (hkl, not also -h-k-l). Systematic absences (from the
        space group's operations) and kinematically absent reflections
        (|F| = 0 from the atom positions) are left out.

    Raises
    ------
    ValueError
        For a non-positive ``d_min_nm``, ``n`` or a negative ``min_intensity``.

    Examples
    --------
    >>> ref = reflectors("ni", n=20)
    >>> ref.family_hkl.tolist()
    [[1, 1, 1], [2, 0, 0], [2, 2, 0]]
    >>> round(float(np.degrees(ref.bragg_angle[0])), 3)
    1.209
    """
    phase = Phase.parse(phase)
    if not phase.atoms:
        raise ValueError(f"phase {phase.name!r} has no atom sites: structure factors need atoms (give a CIF file or a built-in phase)")
    if d_min_nm is None:
        d_min_nm = 0.05
    if not d_min_nm > 0:
        raise ValueError(f"d_min_nm must be positive, got {d_min_nm}")
    if n is not None and n < 1:
        raise ValueError(f"n must be a positive number of reflectors, got {n}")
    if min_intensity < 0:
        raise ValueError(f"min_intensity must be >= 0, got {min_intensity}")
    wavelength = electron_wavelength_nm(kv)
    if d_min_nm < wavelength / 2:
        raise ValueError(f"d_min_nm {d_min_nm} is below lambda/2 = {wavelength / 2:.5f} nm at {kv} kV: no Bragg angle")

    lengths = np.linalg.norm(phase.direct_matrix, axis=1)
    limits = [int(math.floor(length / d_min_nm)) for length in lengths]
    grids = np.meshgrid(*[np.arange(-m, m + 1) for m in limits], indexing="ij")
    hkl = np.stack([g.ravel() for g in grids], axis=1)
    # one of each Friedel pair: the lexicographically positive one
    positive = (hkl[:, 0] > 0) | ((hkl[:, 0] == 0) & ((hkl[:, 1] > 0) | ((hkl[:, 1] == 0) & (hkl[:, 2] > 0))))
    hkl = hkl[positive]
    d = phase.d_spacing_nm(hkl)
    hkl, d = hkl[d >= d_min_nm * (1 - 1e-12)], d[d >= d_min_nm * (1 - 1e-12)]
    allowed = ~_sg.absent_by_symmetry(hkl, phase.space_group)
    hkl, d = hkl[allowed], d[allowed]
    F = structure_factor(phase, hkl)
    F2 = np.abs(F) ** 2
    if len(F2) == 0 or F2.max() <= 0:
        raise ValueError(f"phase {phase.name!r} has no reflector with d >= {d_min_nm} nm")
    keep = F2 >= max(min_intensity, _ABSENT_FRACTION) * F2.max()
    hkl, d, F, F2 = hkl[keep], d[keep], F[keep], F2[keep]

    family, family_hkl = symmetry_families(phase, hkl)
    # order families by their |F|^2 (largest member, all equal by symmetry), then d
    n_fam = len(family_hkl)
    fam_f2 = np.zeros(n_fam)
    np.maximum.at(fam_f2, family, F2)
    fam_d = np.zeros(n_fam)
    np.maximum.at(fam_d, family, d)
    order_fam = np.lexsort((-fam_d, -np.round(fam_f2, 9)))
    rank = np.empty(n_fam, dtype=np.int64)
    rank[order_fam] = np.arange(n_fam)
    family = rank[family]
    family_hkl = family_hkl[order_fam]
    order = np.lexsort((hkl[:, 2], hkl[:, 1], hkl[:, 0], family))
    hkl, d, F, F2, family = hkl[order], d[order], F[order], F2[order], family[order]

    if n is not None:
        counts = np.bincount(family, minlength=n_fam)
        n_keep = max(1, int(np.searchsorted(np.cumsum(counts), n, side="right")))
        sel = family < n_keep
        hkl, d, F, F2, family = hkl[sel], d[sel], F[sel], F2[sel], family[sel]
        family_hkl = family_hkl[:n_keep]

    return Reflectors(
        phase=phase,
        kv=float(kv),
        hkl=hkl.astype(np.int64),
        normals=phase.plane_normals(hkl),
        d_nm=d,
        structure_factor=F,
        structure_factor_sq=F2,
        bragg_angle=np.arcsin(wavelength / (2.0 * d)),
        family=family.astype(np.int64),
        family_hkl=family_hkl.astype(np.int64),
    )
