"""Crystal phases: space group, lattice and atom sites, from every source kikuchi reads.

A :class:`Phase` is built from

- a built-in name (:data:`BUILTIN_PHASES`: 'ni', 'al', 'cu', 'fe-alpha', ...),
- a CIF file (:meth:`Phase.from_cif`),
- the compact text ``NAME:SPACEGROUP:a[,b,c,alpha,beta,gamma]`` (:meth:`Phase.parse`),
- a phase of an orientation map header (CTF/ANG ``PhaseInfo``) or of a map file
  (:meth:`Phase.from_phase_info`),
- an orix phase (:meth:`Phase.from_orix`).

Lengths are in nm, angles in degrees. The Cartesian crystal frame is the one of
orix (and diffpy.structure as orix aligns it): x parallel to a, z parallel to
c* (so b lies in the x-y plane; for hexagonal phases b is at 120 degrees from
x). Euler angles therefore mean the same in kikuchi and in orix.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.crystal import spacegroup as _sg
from kikuchi.crystal.scattering import ELEMENTS, normalise_element

__all__ = [
    "Atom",
    "AssumedAtomsWarning",
    "BUILTIN_PHASES",
    "Phase",
    "PhaseError",
    "direct_matrix",
    "reciprocal_matrix",
]

_logger = logging.getLogger(__name__)

#: Debye-Waller factor used for atoms whose source gives none (nm^2, B = 0.5 Å^2).
DEFAULT_B_ISO_NM2 = 0.005


class PhaseError(ValueError):
    """A phase description that cannot be turned into a :class:`Phase`."""


class AssumedAtomsWarning(UserWarning):
    """The source of a phase gave no atoms; an atom site was assumed."""


@dataclass(frozen=True)
class Atom:
    """One atom site of the asymmetric unit.

    Parameters
    ----------
    element
        Element symbol ('Ni'); must have tabulated scattering factors.
    xyz
        Fractional position.
    occupancy
        Site occupancy, 0-1.
    b_iso_nm2
        Isotropic Debye-Waller factor B = 8 pi^2 <u^2> in nm^2
        (1 Å^2 = 0.01 nm^2).
    """

    element: str
    xyz: tuple[float, float, float]
    occupancy: float = 1.0
    b_iso_nm2: float = DEFAULT_B_ISO_NM2

    def __post_init__(self) -> None:
        object.__setattr__(self, "element", normalise_element(self.element))
        xyz = tuple(float(v) for v in np.asarray(self.xyz, dtype=float).ravel())
        if len(xyz) != 3 or not all(math.isfinite(v) for v in xyz):
            raise PhaseError(f"atom {self.element}: fractional position must be 3 finite numbers, got {self.xyz!r}")
        object.__setattr__(self, "xyz", xyz)
        occ = float(self.occupancy)
        if not 0.0 <= occ <= 1.0:
            raise PhaseError(f"atom {self.element} at {xyz}: occupancy must be in 0-1, got {occ}")
        object.__setattr__(self, "occupancy", occ)
        b = float(self.b_iso_nm2)
        if not math.isfinite(b) or b < 0:
            raise PhaseError(f"atom {self.element} at {xyz}: Debye-Waller factor must be >= 0 nm^2, got {b}")
        object.__setattr__(self, "b_iso_nm2", b)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"element": self.element, "xyz": list(self.xyz), "occupancy": self.occupancy, "b_iso_nm2": self.b_iso_nm2}


def angstrom_to_nm(value: float) -> float:
    """Å to nm, rounded to 1e-12 nm so that 3.524 Å gives 0.3524 nm exactly as typed."""
    return round(float(value) / 10.0, 12)


def direct_matrix(lattice: Sequence[float]) -> np.ndarray:
    """Rows a, b, c (3, 3) of the unit cell in the Cartesian crystal frame (x || a, z || c*).

    The same matrix as orix's ``phase.structure.lattice.base`` (in the
    length unit of ``lattice``).

    Examples
    --------
    >>> direct_matrix([0.3, 0.3, 0.5, 90, 90, 120]).round(4).tolist()
    [[0.3, 0.0, 0.0], [-0.15, 0.2598, 0.0], [0.0, 0.0, 0.5]]
    """
    a, b, c, alpha, beta, gamma = (float(v) for v in lattice)
    ca, cb, cg = (math.cos(math.radians(x)) for x in (alpha, beta, gamma))
    sg = math.sin(math.radians(gamma))
    # round cosines of exact right angles to 0 so that cubic axes are exact
    ca, cb, cg = (0.0 if abs(x) < 1e-15 else x for x in (ca, cb, cg))
    cy = (ca - cb * cg) / sg
    cz2 = 1.0 - cb**2 - cy**2
    if cz2 <= 0:
        raise PhaseError(f"lattice angles {alpha}, {beta}, {gamma} do not form a unit cell")
    return np.array([[a, 0.0, 0.0], [b * cg, b * sg, 0.0], [c * cb, c * cy, c * math.sqrt(cz2)]])


def reciprocal_matrix(lattice: Sequence[float]) -> np.ndarray:
    """Rows a*, b*, c* (3, 3) of the reciprocal lattice (a . a* = 1, no 2 pi).

    ``hkl @ reciprocal_matrix(lattice)`` is the reciprocal lattice vector g with
    ``|g| = 1 / d``.
    """
    return np.linalg.inv(direct_matrix(lattice)).T


def _lattice_for_system(space_group: int, values: Sequence[float], source: str) -> tuple[float, ...]:
    """Complete lattice parameters from 1, 2, 3 or 6 values and the crystal system."""
    values = [float(v) for v in values]
    system = _crystal_system(space_group)
    n = len(values)
    if n == 6:
        return tuple(values)
    if n == 1 and system == "cubic":
        a = values[0]
        return (a, a, a, 90.0, 90.0, 90.0)
    if n == 2 and system in ("tetragonal", "hexagonal", "trigonal"):
        a, c = values
        return (a, a, c, 90.0, 90.0, 120.0 if system != "tetragonal" else 90.0)
    if n == 3 and system in ("cubic", "tetragonal", "orthorhombic", "hexagonal", "trigonal"):
        a, b, c = values
        return (a, b, c, 90.0, 90.0, 120.0 if system in ("hexagonal", "trigonal") else 90.0)
    need = {
        "cubic": "a",
        "tetragonal": "a,c",
        "hexagonal": "a,c",
        "trigonal": "a,c (hexagonal axes)",
        "orthorhombic": "a,b,c",
        "monoclinic": "a,b,c,alpha,beta,gamma",
        "triclinic": "a,b,c,alpha,beta,gamma",
    }[system]
    raise PhaseError(
        f"{source}: {n} lattice value(s) given for a {system} space group ({space_group}); "
        f"give {need} or all six a,b,c,alpha,beta,gamma"
    )


def _crystal_system(space_group: int) -> str:
    n = int(space_group)
    for upper, name in ((2, "triclinic"), (15, "monoclinic"), (74, "orthorhombic"), (142, "tetragonal"), (167, "trigonal"), (194, "hexagonal")):
        if n <= upper:
            return name
    return "cubic"


@dataclass(frozen=True)
class Phase:
    """A crystal phase: name, space group, lattice and atom sites.

    Parameters
    ----------
    name
        Phase name.
    space_group
        International Tables number (1-230); a symbol is converted.
    lattice
        a, b, c in nm and alpha, beta, gamma in degrees.
    atoms
        Atom sites of the asymmetric unit; the space group generates the rest
        (:meth:`unit_cell`).
    source
        Where the phase came from ('builtin', a CIF path, 'compact', ...).

    Examples
    --------
    >>> ni = Phase.parse("ni")
    >>> ni.space_group, ni.lattice[0], ni.point_group.name
    (225, 0.3524, 'm-3m')
    >>> round(float(ni.d_spacing_nm([1, 1, 1])[0]), 5)
    0.20346
    """

    name: str
    space_group: int
    lattice: tuple[float, float, float, float, float, float]
    atoms: tuple[Atom, ...] = field(default=())
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "space_group", _sg.space_group_number(self.space_group))
        lattice = tuple(float(v) for v in self.lattice)
        if len(lattice) != 6:
            raise PhaseError(f"phase {self.name!r}: lattice must be (a, b, c, alpha, beta, gamma), got {self.lattice!r}")
        if not all(math.isfinite(v) and v > 0 for v in lattice):
            raise PhaseError(f"phase {self.name!r}: lattice parameters must be positive, got {lattice}")
        if not all(v < 180 for v in lattice[3:]):
            raise PhaseError(f"phase {self.name!r}: lattice angles must be below 180 degrees, got {lattice[3:]}")
        object.__setattr__(self, "lattice", lattice)
        direct_matrix(lattice)  # validates the angles
        atoms = tuple(a if isinstance(a, Atom) else Atom(**a) for a in self.atoms)
        object.__setattr__(self, "atoms", atoms)

    # -- geometry --------------------------------------------------------------
    @property
    def space_group_symbol(self) -> str:
        """Short Hermann-Mauguin symbol ('Fm-3m')."""
        return _sg.space_group_symbol(self.space_group)

    @property
    def crystal_system(self) -> str:
        """'cubic', 'hexagonal', 'trigonal', 'tetragonal', 'orthorhombic', 'monoclinic' or 'triclinic'."""
        return _crystal_system(self.space_group)

    @property
    def is_hexagonal(self) -> bool:
        """True for hexagonal and trigonal space groups (hexagonal axes)."""
        return self.crystal_system in ("hexagonal", "trigonal")

    @property
    def point_group(self):
        """orix point group (:class:`~orix.quaternion.Symmetry`) of the space group."""
        return _sg.point_group(self.space_group)

    @property
    def laue_group(self):
        """orix Laue group: the point group with the inversion added."""
        return self.point_group.laue

    def point_group_matrices(self, *, laue: bool = False) -> np.ndarray:
        """Point group operations (m, 3, 3) as Cartesian matrices in the crystal frame.

        Taken from the rotation parts R of the space group: ``A.T @ R @ inv(A.T)``
        with A the :attr:`direct_matrix`. ``laue=True`` adds the inversion.

        Examples
        --------
        >>> len(Phase.parse("gan-wurtzite").point_group_matrices()), len(Phase.parse("mg").point_group_matrices())
        (12, 24)
        """
        rot, _ = _sg.symmetry_operations(self.space_group)
        rot = np.unique(np.round(rot).astype(np.int64), axis=0).astype(np.float64)
        if laue:
            rot = np.unique(np.concatenate([rot, -rot]).astype(np.int64), axis=0).astype(np.float64)
        at = self.direct_matrix.T
        return at @ rot @ np.linalg.inv(at)

    @property
    def direct_matrix(self) -> np.ndarray:
        """Rows a, b, c (3, 3) in nm in the Cartesian crystal frame (x || a, z || c*)."""
        return direct_matrix(self.lattice)

    @property
    def reciprocal_matrix(self) -> np.ndarray:
        """Rows a*, b*, c* (3, 3) in 1/nm; ``hkl @ reciprocal_matrix`` = g, ``|g| = 1/d``."""
        return reciprocal_matrix(self.lattice)

    @property
    def volume_nm3(self) -> float:
        """Unit cell volume in nm^3."""
        return float(abs(np.linalg.det(self.direct_matrix)))

    def d_spacing_nm(self, hkl: Any) -> np.ndarray:
        """Interplanar spacings d (n,) in nm of planes hkl (n, 3)."""
        g = np.atleast_2d(np.asarray(hkl, dtype=np.float64)) @ self.reciprocal_matrix
        with np.errstate(divide="ignore"):
            return 1.0 / np.linalg.norm(g, axis=1)

    def plane_normals(self, hkl: Any) -> np.ndarray:
        """Unit normals (n, 3) of planes hkl in the Cartesian crystal frame."""
        g = np.atleast_2d(np.asarray(hkl, dtype=np.float64)) @ self.reciprocal_matrix
        return g / np.linalg.norm(g, axis=1, keepdims=True)

    def unit_cell(self) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
        """All atoms of the unit cell: elements, fractional positions (m, 3), occupancies, B (nm^2).

        Each site of :attr:`atoms` is expanded with the space group's operations.

        Examples
        --------
        >>> elements, xyz, occ, b = Phase.parse("gan-wurtzite").unit_cell()
        >>> elements
        ['Ga', 'Ga', 'N', 'N']
        """
        elements: list[str] = []
        positions, occupancy, b_iso = [], [], []
        for atom in self.atoms:
            orbit = _sg.expand_site(atom.xyz, self.space_group)
            elements += [atom.element] * len(orbit)
            positions.append(orbit)
            occupancy += [atom.occupancy] * len(orbit)
            b_iso += [atom.b_iso_nm2] * len(orbit)
        xyz = np.concatenate(positions) if positions else np.zeros((0, 3))
        return elements, xyz, np.array(occupancy, dtype=float), np.array(b_iso, dtype=float)

    # -- conversions -----------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (also the map file's phase dict: ``name``, ``space_group``, ``lattice``)."""
        return {
            "name": self.name,
            "space_group": self.space_group,
            "lattice": list(self.lattice),
            "atoms": [a.to_dict() for a in self.atoms],
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Phase:
        """Inverse of :meth:`to_dict`; without ``atoms`` it behaves as :meth:`from_phase_info`."""
        if not data.get("atoms"):
            return cls.from_phase_info(data)
        return cls(
            name=str(data["name"]),
            space_group=data["space_group"],
            lattice=tuple(data["lattice"]),
            atoms=tuple(Atom(**a) for a in data["atoms"]),
            source=str(data.get("source", "")),
        )

    def to_orix(self):
        """This phase as an :class:`orix.crystal_map.Phase`.

        The diffpy structure holds lengths in Å (the unit of orix, diffpy and
        CIF files) and Uiso = B / (8 pi^2) in Å^2. Its lattice base equals
        :attr:`direct_matrix` (times 10): the same crystal frame.
        """
        from diffpy.structure import Atom as DiffpyAtom
        from diffpy.structure import Lattice, Structure
        from orix.crystal_map import Phase as OrixPhase

        atoms = [
            DiffpyAtom(at.element, list(at.xyz), occupancy=at.occupancy, Uisoequiv=at.b_iso_nm2 * 100.0 / (8 * math.pi**2))
            for at in self.atoms
        ]
        # Build the lattice from our base (x || a, z || c*), orix's alignment: with
        # diffpy's default base orix would re-place the atoms keeping their
        # Cartesian positions, which changes the fractional coordinates of
        # hexagonal phases (Ga at 1/3, 2/3, 0 would move to 0.577, 0.577, 0).
        structure = Structure(atoms=atoms, lattice=Lattice(base=self.direct_matrix * 10.0))
        return OrixPhase(name=self.name, space_group=self.space_group, structure=structure)

    @classmethod
    def from_orix(cls, phase) -> Phase:
        """A phase from an :class:`orix.crystal_map.Phase` (structure lengths in Å)."""
        structure = phase.structure
        lat = structure.lattice
        lattice = (*(angstrom_to_nm(v) for v in (lat.a, lat.b, lat.c)), lat.alpha, lat.beta, lat.gamma)
        if phase.space_group is not None:
            number = int(phase.space_group.number)
        else:
            number = _sg.default_space_group(phase.point_group.name)
        atoms = tuple(
            Atom(at.element, tuple(at.xyz), occupancy=float(at.occupancy), b_iso_nm2=float(at.Uisoequiv) * 8 * math.pi**2 / 100.0)
            for at in structure
        )
        name = phase.name or "phase"
        if not atoms:
            return cls._with_assumed_atoms(name, number, lattice, source="orix")
        return cls(name=name, space_group=number, lattice=lattice, atoms=atoms, source="orix")

    # -- sources ---------------------------------------------------------------
    @classmethod
    def builtin(cls, name: str) -> Phase:
        """A built-in phase by name or alias (case-insensitive).

        Raises
        ------
        PhaseError
            If the name is unknown; the message lists the built-in phases.
        """
        key = _builtin_key(name)
        if key is None:
            raise PhaseError(
                f"unknown phase {name!r}; built-in phases: {', '.join(BUILTIN_PHASES)}; "
                "or give a CIF file or NAME:SPACEGROUP:a[,b,c,alpha,beta,gamma] (lengths in nm)"
            )
        return BUILTIN_PHASES[key]

    @classmethod
    def parse(cls, text: str | Path | Phase | Mapping[str, Any]) -> Phase:
        """A phase from a built-in name, a CIF path or ``NAME:SPACEGROUP:a[,b,c,alpha,beta,gamma]``.

        A :class:`Phase` is returned as it is; a map file phase dict or a
        ``PhaseInfo`` goes to :meth:`from_phase_info`.

        The compact form takes the space group as number or symbol and 1 (cubic),
        2 (a, c: tetragonal, hexagonal, trigonal), 3 (a, b, c with the crystal
        system's angles) or 6 values. Lengths are in nm; a length may carry
        the unit (``3.524A``, ``3.524Å``, ``0.3524nm``); without units, lengths
        whose smallest value is >= 1.5 are read as Å (no lattice of an EBSD phase
        has all edges longer than 1.5 nm, none has an edge shorter than 1.5 Å).
        Atoms: those of the built-in phase of the same name and space group,
        else one atom of the element NAME (or Fe) on the site at the origin,
        with an :class:`AssumedAtomsWarning`.

        Raises
        ------
        PhaseError
            For an unknown name, a malformed compact form, or an unreadable CIF.

        Examples
        --------
        >>> Phase.parse("ni:225:0.352").lattice
        (0.352, 0.352, 0.352, 90.0, 90.0, 90.0)
        >>> Phase.parse("Ti:P63/mmc:2.95,4.68").lattice  # Å, as all lengths are >= 1.5
        (0.295, 0.295, 0.468, 90.0, 90.0, 120.0)
        """
        if isinstance(text, Phase):
            return text
        if isinstance(text, Mapping) or hasattr(text, "lattice_angstrom"):
            return cls.from_phase_info(text)
        if isinstance(text, Path) or str(text).lower().endswith(".cif"):
            return cls.from_cif(text)
        text = str(text).strip()
        if ":" in text:
            return _parse_compact(text)
        return cls.builtin(text)

    @classmethod
    def from_cif(cls, path: str | Path, *, name: str | None = None) -> Phase:
        """A phase from a CIF file (see :mod:`kikuchi.crystal.cif`)."""
        from kikuchi.crystal.cif import read_cif

        return read_cif(path, name=name)

    def to_cif(self, path: str | Path) -> Path:
        """Write this phase as a CIF file (atomically); returns the path."""
        from kikuchi.crystal.cif import write_cif

        return write_cif(self, path)

    @classmethod
    def from_phase_info(cls, info: Any) -> Phase:
        """A phase from an orientation map header phase or a map file phase dict.

        Accepts a ``PhaseInfo`` of the CTF/ANG readers (``name``,
        ``lattice_angstrom``, ``angles_deg``, ``space_group``, ``laue_group``,
        ``point_group``, ``hkl_families``) or a dict of the map file (``name``,
        ``space_group``, ``lattice`` = a, b, c in nm and angles in degrees).

        Such headers carry no atoms. When the name is that of a built-in phase
        ('Ni', 'Nickel', 'Iron bcc', 'Ga N', ...) with the same space group,
        its atoms are taken with the file's lattice. Otherwise one atom is put
        on the site at the origin (Wyckoff site a in the settings used here),
        expanded by the space group, with an :class:`AssumedAtomsWarning`.
        Without a space group (ANG files give only the Laue class), the
        symmorphic group of the point group is assumed, F or I centred when
        the header's hkl families show the centring.

        Raises
        ------
        PhaseError
            If the lattice or the symmetry is missing or invalid.
        """
        name = str(_get(info, "name") or "").strip() or f"phase {_get(info, 'id') or ''}".strip()
        where = f"phase {name!r}"
        lattice_nm = _get(info, "lattice")
        if lattice_nm is not None and len(lattice_nm) == 6:
            lattice = tuple(float(v) for v in lattice_nm)
        else:
            lengths = _get(info, "lattice_angstrom")
            angles = _get(info, "angles_deg")
            if lengths is None or angles is None:
                raise PhaseError(f"{where}: no lattice parameters (need 'lattice' in nm or 'lattice_angstrom' and 'angles_deg')")
            lattice = tuple(angstrom_to_nm(v) for v in lengths) + tuple(float(v) for v in angles)
        number = _get(info, "space_group")
        try:
            number = int(number) if number not in (None, "", 0, "0") else None
        except (TypeError, ValueError):
            number = _sg.space_group_number(number)
        if number is not None and not 1 <= number <= 230:
            number = None
        if number is None:
            symmetry = _get(info, "laue_group") or _get(info, "point_group")
            if symmetry is None:
                raise PhaseError(f"{where}: neither a space group nor a point/Laue group is given")
            try:
                laue = _sg.laue_group_name(_sg.default_space_group(str(symmetry)))
            except ValueError as exc:
                raise PhaseError(f"{where}: {exc}") from None
            centring = _centring_from_families(_get(info, "hkl_families"))
            named = _builtin_key(name)
            if named is not None and _sg.laue_group_name(BUILTIN_PHASES[named].space_group) == laue and centring == "P":
                # a built-in phase of that name and Laue class: take its space group
                number = BUILTIN_PHASES[named].space_group
            else:
                number = _sg.default_space_group(str(symmetry), centring=centring)
            _logger.info("%s: no space group in the file, assuming %s (%d)", where, _sg.space_group_symbol(number), number)
        key = _builtin_key(name, space_group=number)
        if key is not None:
            atoms = BUILTIN_PHASES[key].atoms
            return cls(name=name, space_group=number, lattice=lattice, atoms=atoms, source=f"header (atoms of built-in {key!r})")
        return cls._with_assumed_atoms(name, number, lattice, source="header")

    @classmethod
    def _with_assumed_atoms(cls, name: str, number: int, lattice: Sequence[float], *, source: str) -> Phase:
        element = _element_from_name(name)
        phase = cls(name=name, space_group=number, lattice=tuple(lattice), atoms=(Atom(element, (0.0, 0.0, 0.0)),), source=source)
        n_sites = len(_sg.expand_site((0.0, 0.0, 0.0), number))
        warnings.warn(
            f"phase {name!r} (space group {_sg.space_group_symbol(number)}, {number}) lists no atoms: "
            f"assuming {element} on the site at the origin (Wyckoff site a, {n_sites} atom(s) per cell); "
            "band intensities are approximate, give a CIF file for exact structure factors",
            AssumedAtomsWarning,
            stacklevel=3,
        )
        return phase

    def __str__(self) -> str:
        a, b, c, al, be, ga = self.lattice
        return f"{self.name} ({self.space_group_symbol}, {self.space_group}; a={a:g} b={b:g} c={c:g} nm, {al:g} {be:g} {ga:g} deg; {len(self.atoms)} site(s))"


def _get(info: Any, key: str) -> Any:
    if isinstance(info, Mapping):
        return info.get(key)
    return getattr(info, key, None)


def _centring_from_families(families: Any) -> str:
    """'F' or 'I' when all listed hkl families obey that centring, else 'P'."""
    if families is None:
        return "P"
    try:
        rows = [f.get("hkl") if isinstance(f, Mapping) else f for f in families]
        hkl = np.array([[int(round(float(v))) for v in list(r)[:3]] for r in rows])
    except (TypeError, ValueError):
        return "P"
    if hkl.ndim != 2 or len(hkl) < 2:
        return "P"
    parity = np.mod(hkl, 2)
    if np.all(np.all(parity == parity[:, :1], axis=1)):
        return "F"
    if np.all(np.mod(hkl.sum(axis=1), 2) == 0):
        return "I"
    return "P"


def _element_from_name(name: str) -> str:
    """Element named by a phase name: 'Ni' -> Ni, 'Ga N' -> Ga, 'Glaucophane' -> Fe."""
    key = _norm(name)
    if key in _ELEMENT_NAMES:
        return _ELEMENT_NAMES[key]
    match = re.match(r"\s*([A-Z][a-z]?)(?![a-z])", name)
    if match and match.group(1) in ELEMENTS:
        return match.group(1)
    for token in re.split(r"[^A-Za-z]+", name):
        if token.lower() in _ELEMENT_NAMES:
            return _ELEMENT_NAMES[token.lower()]
        if token and token.lower() in {e.lower() for e in ELEMENTS}:
            return normalise_element(token)
    return "Fe"


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text).lower())


def _parse_length(text: str, where: str) -> tuple[float, str | None]:
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(nm|a|å|ang|angstrom)?\s*", text, flags=re.IGNORECASE)
    if not match:
        raise PhaseError(f"{where}: cannot read the number {text!r}")
    unit = match.group(2)
    if unit is not None:
        unit = "nm" if unit.lower() == "nm" else "A"
    return float(match.group(1)), unit


def _parse_compact(text: str) -> Phase:
    where = f"phase {text!r}"
    usage = "expected NAME:SPACEGROUP:a[,b,c,alpha,beta,gamma], e.g. 'ni:225:0.3524' or 'ti:P63/mmc:0.2951,0.4686'"
    parts = text.split(":")
    if len(parts) != 3 or not parts[0].strip() or not parts[1].strip() or not parts[2].strip():
        raise PhaseError(f"{where}: {usage}")
    name, group, values = (p.strip() for p in parts)
    try:
        number = _sg.space_group_number(group)
    except ValueError as exc:
        raise PhaseError(f"{where}: {exc}") from None
    fields = [v for v in re.split(r"[,;\s]+", values) if v]
    system = _crystal_system(number)
    n_lengths = {1: 1, 2: 2, 3: 3, 6: 3}.get(len(fields))
    if n_lengths is None:
        raise PhaseError(f"{where}: {len(fields)} lattice values; {usage}")
    lengths, units = [], []
    for f in fields[:n_lengths]:
        value, unit = _parse_length(f, where)
        lengths.append(value)
        units.append(unit)
    angles = []
    for f in fields[n_lengths:]:
        try:
            angles.append(float(f))
        except ValueError:
            raise PhaseError(f"{where}: cannot read the angle {f!r}; {usage}") from None
    if any(u == "A" for u in units) or (all(u is None for u in units) and min(lengths) >= 1.5):
        lengths = [angstrom_to_nm(v) if u != "nm" else v for v, u in zip(lengths, units)]
        _logger.info("%s: lattice lengths read as Å and converted to nm", where)
    if min(lengths) < 0.1:
        raise PhaseError(f"{where}: lattice length {min(lengths)} nm is too small; lengths are in nm (or Å when >= 1.5, or with the unit 'A')")
    lattice = _lattice_for_system(number, [*lengths, *angles], where)
    if system == "cubic" and len(fields) in (3, 6) and not np.allclose(lattice[:3], lattice[0]):
        raise PhaseError(f"{where}: a cubic space group ({number}) needs a = b = c, got {lattice[:3]}")
    key = _builtin_key(name, space_group=number)
    if key is not None:
        return Phase(name=name, space_group=number, lattice=lattice, atoms=BUILTIN_PHASES[key].atoms, source="compact")
    return Phase._with_assumed_atoms(name, number, lattice, source="compact")


# -- built-in phases ------------------------------------------------------------
# Lattice parameters: room temperature values of the crystallographic literature
# (Pearson's handbook / ICSD-type data). Debye-Waller factors: room temperature
# B of Peng, Ren, Dudarev & Whelan, Acta Cryst. A52 (1996) 456 (elements); for
# GaN, approximate room temperature values after Schowalter et al., Acta Cryst.
# A65 (2009) 227 (wurtzite) and A65 (2009) 5 (sphalerite).
def _builtin(name: str, sg: int, lattice: Sequence[float], *atoms: tuple) -> Phase:
    return Phase(name=name, space_group=sg, lattice=tuple(lattice), atoms=tuple(Atom(*a) for a in atoms), source="builtin")


def _cubic(a: float) -> tuple[float, ...]:
    return (a, a, a, 90.0, 90.0, 90.0)


def _hexagonal(a: float, c: float) -> tuple[float, ...]:
    return (a, a, c, 90.0, 90.0, 120.0)


BUILTIN_PHASES: dict[str, Phase] = {
    "ni": _builtin("ni", 225, _cubic(0.3524), ("Ni", (0, 0, 0), 1.0, 0.0034)),
    "al": _builtin("al", 225, _cubic(0.40495), ("Al", (0, 0, 0), 1.0, 0.0075)),
    "cu": _builtin("cu", 225, _cubic(0.36149), ("Cu", (0, 0, 0), 1.0, 0.0053)),
    "fe-alpha": _builtin("fe-alpha", 229, _cubic(0.28665), ("Fe", (0, 0, 0), 1.0, 0.0031)),
    "fe-gamma": _builtin("fe-gamma", 225, _cubic(0.3591), ("Fe", (0, 0, 0), 1.0, 0.0053)),
    "si": _builtin("si", 227, _cubic(0.54310), ("Si", (0, 0, 0), 1.0, 0.0046)),
    "gan-wurtzite": _builtin(
        "gan-wurtzite", 186, _hexagonal(0.31890, 0.51855),
        ("Ga", (1 / 3, 2 / 3, 0.0), 1.0, 0.0028), ("N", (1 / 3, 2 / 3, 0.377), 1.0, 0.0032),
    ),
    "gan-zincblende": _builtin(
        "gan-zincblende", 216, _cubic(0.4503), ("Ga", (0, 0, 0), 1.0, 0.0028), ("N", (0.25, 0.25, 0.25), 1.0, 0.0032),
    ),
    "ti-alpha": _builtin("ti-alpha", 194, _hexagonal(0.29508, 0.46855), ("Ti", (1 / 3, 2 / 3, 0.25), 1.0, 0.0049)),
    "mg": _builtin("mg", 194, _hexagonal(0.32094, 0.52107), ("Mg", (1 / 3, 2 / 3, 0.25), 1.0, 0.0173)),
}
"""Built-in phases by name."""

# Alternative names (normalised: lower case, letters and digits only) -> built-in names.
_ALIASES: dict[str, tuple[str, ...]] = {
    "ni": ("ni",), "nickel": ("ni",),
    "al": ("al",), "aluminium": ("al",), "aluminum": ("al",),
    "cu": ("cu",), "copper": ("cu",),
    "fe": ("fe-alpha", "fe-gamma"), "iron": ("fe-alpha", "fe-gamma"),
    "fealpha": ("fe-alpha",), "febcc": ("fe-alpha",), "ironbcc": ("fe-alpha",), "ironalpha": ("fe-alpha",),
    "alphafe": ("fe-alpha",), "alphairon": ("fe-alpha",), "ferrite": ("fe-alpha",),
    "fegamma": ("fe-gamma",), "fefcc": ("fe-gamma",), "ironfcc": ("fe-gamma",), "irongamma": ("fe-gamma",),
    "gammafe": ("fe-gamma",), "gammairon": ("fe-gamma",), "austenite": ("fe-gamma",),
    "si": ("si",), "silicon": ("si",),
    "gan": ("gan-wurtzite", "gan-zincblende"), "galliumnitride": ("gan-wurtzite", "gan-zincblende"),
    "ganwurtzite": ("gan-wurtzite",), "ganhex": ("gan-wurtzite",), "ganzincblende": ("gan-zincblende",),
    "ganzb": ("gan-zincblende",), "gancubic": ("gan-zincblende",), "gansphalerite": ("gan-zincblende",),
    "ti": ("ti-alpha",), "tialpha": ("ti-alpha",), "titanium": ("ti-alpha",), "tihex": ("ti-alpha",),
    "alphati": ("ti-alpha",), "alphatitanium": ("ti-alpha",), "titaniumalpha": ("ti-alpha",),
    "mg": ("mg",), "magnesium": ("mg",),
}
_ELEMENT_NAMES = {
    "nickel": "Ni", "aluminium": "Al", "aluminum": "Al", "copper": "Cu", "iron": "Fe", "ferrite": "Fe",
    "austenite": "Fe", "silicon": "Si", "titanium": "Ti", "magnesium": "Mg", "zirconium": "Zr",
    "molybdenum": "Mo", "tungsten": "W", "gold": "Au", "silver": "Ag", "tin": "Sn", "lead": "Pb",
    "niobium": "Nb", "tantalum": "Ta", "chromium": "Cr", "manganese": "Mn", "cobalt": "Co", "vanadium": "V",
    "zinc": "Zn", "germanium": "Ge", "platinum": "Pt", "palladium": "Pd",
}


def _builtin_key(name: str, *, space_group: int | None = None) -> str | None:
    """Built-in phase name for a name or alias, matching the space group if given."""
    text = str(name)
    keys = [_norm(text), _norm(re.sub(r"\(.*?\)", "", text))]
    for key in keys:
        candidates = _ALIASES.get(key) or tuple(k for k in BUILTIN_PHASES if _norm(k) == key)
        if not candidates:
            continue
        if space_group is None:
            return candidates[0]
        for candidate in candidates:
            if BUILTIN_PHASES[candidate].space_group == space_group:
                return candidate
    return None
