"""CIF files: read a phase (through diffpy.structure's CIF parser) and write one.

Lengths in CIF files are in Å and are converted to nm. Isotropic displacement
parameters are read from ``_atom_site_B_iso_or_equiv`` or
``_atom_site_U_iso_or_equiv`` (B = 8 pi^2 U); an atom without one (or with 0)
gets :data:`kikuchi.crystal.phase.DEFAULT_B_ISO_NM2`.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from pathlib import Path

import numpy as np

from kikuchi.crystal import spacegroup as _sg
from kikuchi.crystal.phase import DEFAULT_B_ISO_NM2, Atom, Phase, PhaseError, angstrom_to_nm
from kikuchi.io._atomic import atomic_output

__all__ = ["read_cif", "write_cif"]


def read_cif(path: str | os.PathLike, *, name: str | None = None) -> Phase:
    """A phase from a CIF file: space group, lattice and the asymmetric unit.

    Parameters
    ----------
    path
        CIF file.
    name
        Phase name; by default the CIF data block name, else the file name.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    PhaseError
        If the file is not a readable CIF with a known space group and atoms.
    """
    from diffpy.structure.parsers import getParser

    path = Path(path)
    if path.is_dir():
        raise PhaseError(f"{path}: a folder, not a CIF file")
    if not path.is_file():
        raise FileNotFoundError(f"CIF file {path} not found")
    parser = getParser("cif")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # PyCifRW prints its syntax errors; the error says it
            structure = parser.parseFile(str(path))
    except Exception as exc:  # diffpy raises its own StructureFormatError and others
        raise PhaseError(f"{path}: not a readable CIF file ({' '.join(str(exc).split())})") from None
    if parser.spacegroup is None or not getattr(parser.spacegroup, "number", 0):
        raise PhaseError(f"{path}: no known space group (give _space_group_IT_number or a standard H-M symbol)")
    number = int(parser.spacegroup.number)
    if not 1 <= number <= 230:
        raise PhaseError(f"{path}: space group number {number} is not a standard one (1-230)")
    sites = parser.asymmetric_unit or list(structure)
    if not sites:
        raise PhaseError(f"{path}: no atom sites (_atom_site_fract_x ... loop)")
    shift = _origin_shift(parser, number, path)
    atoms = []
    for site in sites:
        u = float(site.Uisoequiv)
        b_nm2 = u * 8 * math.pi**2 / 100.0 if u > 0 else DEFAULT_B_ISO_NM2
        xyz = np.mod(np.asarray(site.xyz, dtype=np.float64) - shift, 1.0)
        xyz[np.abs(xyz - 1.0) < 1e-9] = 0.0
        try:
            atoms.append(Atom(site.element, tuple(xyz), occupancy=float(site.occupancy), b_iso_nm2=b_nm2))
        except ValueError as exc:
            raise PhaseError(f"{path}: atom {site.label or site.element}: {exc}") from None
    lat = structure.lattice
    lattice = (*(angstrom_to_nm(v) for v in (lat.a, lat.b, lat.c)), lat.alpha, lat.beta, lat.gamma)
    title = name or _data_block_name(path) or path.stem
    return Phase(name=title, space_group=number, lattice=lattice, atoms=tuple(atoms), source=str(path))


_SYMOP_KEYS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz")


def _op_keys(rot: np.ndarray, trans: np.ndarray) -> set[tuple[int, ...]]:
    """Symmetry operations as hashable keys (rotation entries, translations in 1/24 mod 1)."""
    r = np.rint(rot).astype(np.int64).reshape(len(rot), 9)
    t = np.mod(np.rint(np.asarray(trans) * 24.0).astype(np.int64), 24)
    return {tuple(k) for k in np.concatenate([r, t], axis=1)}


def _origin_shift(parser: object, number: int, path: Path) -> np.ndarray:
    """Origin of the setting used here (diffpy.structure's default) in the CIF's coordinates.

    diffpy builds the structure from the space group number alone, in its
    default setting (origin choice 1), whatever operations the CIF lists. A
    CIF in another origin choice (Fd-3m, I4_1/amd, Pn-3m, ... origin choice 2,
    common in databases) would then give a wrong unit cell. The CIF's own
    operations tell the setting: they are the default ones with the origin
    moved by ``s`` (a multiple of 1/8) when ``x_cif = x_default + s``; the
    atoms are moved back by ``s``. Zero when the CIF lists no operations or
    those of the default setting.

    Raises
    ------
    PhaseError
        If the operations are those of no origin shift of the default setting
        (another cell choice or axes): the unit cell would be wrong.
    """
    from diffpy.structure.parsers.p_cif import getSymOp

    texts = None
    ciffile = getattr(parser, "ciffile", None)
    for name in ciffile.keys() if ciffile is not None else ():
        block = ciffile[name]
        texts = next((block[key] for key in _SYMOP_KEYS if key in block), None)
        if texts is not None:
            break
    if not texts:
        return np.zeros(3)
    texts = [texts] if isinstance(texts, str) else list(texts)
    try:
        ops = [getSymOp(str(t)) for t in texts]
    except Exception as exc:  # diffpy evaluates the translation text
        raise PhaseError(f"{path}: unreadable symmetry operation in {texts!r} ({exc})") from None
    cif_ops = _op_keys(np.array([op.R for op in ops]), np.array([op.t for op in ops]))
    rot, trans = _sg.symmetry_operations(number)
    eye_minus = np.eye(3) - rot
    steps = np.arange(8) / 8.0
    candidates = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1).reshape(-1, 3)  # (0, 0, 0) first
    for shift in candidates:
        if cif_ops <= _op_keys(rot, trans + eye_minus @ shift):
            return shift
    raise PhaseError(
        f"{path}: the symmetry operations listed are not those of space group {number} "
        f"({_sg.space_group_symbol(number)}) in the setting used here (diffpy.structure's default: origin choice 1, "
        "hexagonal axes for trigonal groups), not even with the origin moved by multiples of 1/8; "
        "give the CIF in that setting"
    )


def _data_block_name(path: Path) -> str:
    """Name of the first ``data_`` block of a CIF file ('' if none)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stripped = line.strip()
            if stripped.lower().startswith("data_"):
                return stripped[5:].strip()
    return ""


def write_cif(phase: Phase, path: str | os.PathLike) -> Path:
    """Write a phase as a CIF file (atomically), readable by :func:`read_cif` and other programs.

    Returns
    -------
    pathlib.Path
        The written path.
    """
    path = Path(path)
    a, b, c, alpha, beta, gamma = phase.lattice
    rot, trans = _sg.symmetry_operations(phase.space_group)
    block = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in phase.name) or "phase"
    lines = [
        f"data_{block}",
        "# written by kikuchi",
        f"_cell_length_a {a * 10:.6f}",
        f"_cell_length_b {b * 10:.6f}",
        f"_cell_length_c {c * 10:.6f}",
        f"_cell_angle_alpha {alpha:.6f}",
        f"_cell_angle_beta {beta:.6f}",
        f"_cell_angle_gamma {gamma:.6f}",
        f"_space_group_IT_number {phase.space_group}",
        f"_symmetry_space_group_name_H-M '{phase.space_group_symbol}'",
        "",
        "loop_",
        "_symmetry_equiv_pos_as_xyz",
    ]
    lines += [f"'{_xyz_text(r, t)}'" for r, t in zip(rot, trans)]
    lines += [
        "",
        "loop_",
        "_atom_site_label",
        "_atom_site_type_symbol",
        "_atom_site_fract_x",
        "_atom_site_fract_y",
        "_atom_site_fract_z",
        "_atom_site_occupancy",
        "_atom_site_B_iso_or_equiv",
    ]
    for i, atom in enumerate(phase.atoms, start=1):
        x, y, z = atom.xyz
        lines.append(
            f"{atom.element}{i} {atom.element} {x:.8f} {y:.8f} {z:.8f} {atom.occupancy:.6f} {atom.b_iso_nm2 * 100:.6f}"
        )
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _xyz_text(rot: np.ndarray, trans: np.ndarray) -> str:
    """One symmetry operation as CIF text, e.g. '-y,x-y,z+1/2'."""
    parts = []
    for row, t in zip(rot, trans):
        terms = ""
        for coeff, axis in zip(row, "xyz"):
            k = int(round(coeff))
            if k == 0:
                continue
            sign = "-" if k < 0 else ("+" if terms else "")
            terms += f"{sign}{'' if abs(k) == 1 else abs(k)}{axis}"
        frac = _fraction(t)
        if frac:
            terms += frac if frac.startswith("-") else f"+{frac}"
        parts.append(terms or "0")
    return ",".join(parts)


def _fraction(value: float) -> str:
    value = float(value) % 1.0
    if abs(value) < 1e-9 or abs(value - 1) < 1e-9:
        return ""
    for den in (2, 3, 4, 6, 8, 12):
        num = value * den
        if abs(num - round(num)) < 1e-6:
            return f"{int(round(num))}/{den}"
    return f"{value:.6f}"
