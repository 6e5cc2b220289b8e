"""Space groups: symmetry operations, site orbits, systematic absences, point groups.

The 230 space groups come from diffpy.structure (installed with orix), in the
settings diffpy uses by default (origin choice 1 where ITA lists two, e.g.
Fd-3m with an atom of diamond at 0, 0, 0; hexagonal axes for trigonal groups).
Point groups are orix :class:`~orix.quaternion.Symmetry` objects.
"""

from __future__ import annotations

import functools
import re

import numpy as np

__all__ = [
    "absent_by_symmetry",
    "default_space_group",
    "expand_site",
    "laue_group_name",
    "point_group",
    "space_group_number",
    "space_group_symbol",
    "symmetry_operations",
]

# Symmorphic (mostly primitive) representative space group of each point group
# and of the usual Laue group spellings: the space group assumed when a file
# names only the crystal symmetry (EDAX ANG headers give only a Laue class).
_POINT_GROUP_TO_SPACE_GROUP = {
    "1": 1, "-1": 2, "2": 3, "m": 6, "2/m": 10, "222": 16, "mm2": 25, "mmm": 47,
    "4": 75, "-4": 81, "4/m": 83, "422": 89, "4mm": 99, "-42m": 111, "4/mmm": 123,
    "3": 143, "-3": 147, "32": 150, "321": 150, "312": 149, "3m": 156, "3m1": 156,
    "31m": 157, "-3m": 164, "-3m1": 164, "-31m": 162, "6": 168, "-6": 174, "6/m": 175,
    "622": 177, "6mm": 183, "-6m2": 187, "-62m": 189, "6/mmm": 191, "23": 195, "m-3": 200,
    "432": 207, "-43m": 215, "m-3m": 221,
}
# Centred cubic representatives: (Laue class, centring) -> space group.
_CENTRED_CUBIC = {("m-3m", "F"): 225, ("m-3m", "I"): 229, ("m-3", "F"): 202, ("m-3", "I"): 204}


def _diffpy_space_group(value: int | str):
    from diffpy.structure.spacegroups import GetSpaceGroup

    try:
        return GetSpaceGroup(value)
    except (ValueError, KeyError) as exc:
        raise ValueError(
            f"unknown space group {value!r}: give the International Tables number 1-230 "
            "or a Hermann-Mauguin symbol such as 'Fm-3m' or 'P63/mmc'"
        ) from exc


def space_group_number(value: int | str) -> int:
    """International Tables number of a space group given as number or symbol.

    Parameters
    ----------
    value
        Number (1-230, also as text) or Hermann-Mauguin symbol ('Fm-3m',
        'F m -3 m', 'P6_3mc', 'P63/mmc').

    Raises
    ------
    ValueError
        If the space group is not known.

    Examples
    --------
    >>> space_group_number("P6_3mc"), space_group_number("F m -3 m"), space_group_number("227")
    (186, 225, 227)
    """
    if isinstance(value, (int, np.integer)):
        number = int(value)
        if not 1 <= number <= 230:
            raise ValueError(f"space group number must be 1-230, got {number}")
        return number
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return space_group_number(int(text))
    compact = text.replace(" ", "").replace("_", "")
    for candidate in (text, compact):
        try:
            return int(_diffpy_space_group(candidate).number)
        except ValueError:
            continue
    raise ValueError(
        f"unknown space group {value!r}: give the International Tables number 1-230 "
        "or a Hermann-Mauguin symbol such as 'Fm-3m' or 'P63/mmc'"
    )


def space_group_symbol(number: int) -> str:
    """Short Hermann-Mauguin symbol of a space group ('Fm-3m').

    Examples
    --------
    >>> space_group_symbol(194)
    'P63/mmc'
    """
    return str(_diffpy_space_group(int(number)).short_name)


@functools.lru_cache(maxsize=None)
def symmetry_operations(number: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotation parts (m, 3, 3) and translations (m, 3) of a space group.

    They act on fractional coordinates as ``x' = R @ x + t``. The arrays are
    read-only (cached).

    Examples
    --------
    >>> R, t = symmetry_operations(225)
    >>> R.shape, t.shape
    ((192, 3, 3), (192, 3))
    """
    sg = _diffpy_space_group(int(number))
    rot = np.array([op.R for op in sg.symop_list], dtype=np.float64)
    trans = np.array([op.t for op in sg.symop_list], dtype=np.float64)
    rot.setflags(write=False)
    trans.setflags(write=False)
    return rot, trans


def expand_site(xyz: np.ndarray, number: int, *, tol: float = 1e-4) -> np.ndarray:
    """Positions (k, 3) in [0, 1) of the orbit of one site under the space group.

    Examples
    --------
    >>> expand_site([0, 0, 0], 227).shape  # diamond: 8 atoms per cell
    (8, 3)
    >>> expand_site([1 / 3, 2 / 3, 0.25], 194).round(4).tolist()
    [[0.3333, 0.6667, 0.25], [0.6667, 0.3333, 0.75]]
    """
    rot, trans = symmetry_operations(int(number))
    pos = np.mod(rot @ np.asarray(xyz, dtype=np.float64) + trans, 1.0)
    unique: list[np.ndarray] = []
    for p in pos:
        if not any(np.all(np.abs((p - q + 0.5) % 1.0 - 0.5) < tol) for q in unique):
            unique.append(p)
    out = np.array(unique)
    out[np.abs(out - 1.0) < tol] = 0.0
    return out


def absent_by_symmetry(hkl: np.ndarray, number: int) -> np.ndarray:
    """Systematic absences (n,) bool of reflections hkl (n, 3) from the symmetry operations.

    A reflection h is absent when an operation (R, t) of the group maps it onto
    itself (h R = h) while h . t is not an integer: then
    F(h) = exp(2 pi i h.t) F(h R) = exp(2 pi i h.t) F(h) forces F(h) = 0.
    Centring, screw axes and glide planes are all covered, no table is used.
    Absences caused only by the atom positions (e.g. 222 of diamond) are not
    systematic: they show up as a vanishing structure factor.

    Examples
    --------
    >>> absent_by_symmetry([[1, 0, 0], [1, 1, 0], [1, 1, 1]], 225).tolist()
    [True, True, False]
    >>> absent_by_symmetry([[0, 0, 1], [0, 0, 2]], 186).tolist()  # 6_3 screw axis
    [True, False]
    """
    hkl = np.atleast_2d(np.asarray(hkl, dtype=np.float64))
    rot, trans = symmetry_operations(int(number))
    out = np.zeros(len(hkl), dtype=bool)
    for start in range(0, len(hkl), 4096):  # bounded memory: (block, m, 3)
        h = hkl[start : start + 4096]
        mapped = np.einsum("ni,mij->nmj", h, rot)  # h R for every operation
        fixed = np.all(np.abs(mapped - h[:, None, :]) < 1e-8, axis=2)
        phase = h @ trans.T  # (n, m)
        non_integer = np.abs(phase - np.round(phase)) > 1e-6
        out[start : start + 4096] = np.any(fixed & non_integer, axis=1)
    return out


@functools.lru_cache(maxsize=None)
def point_group(number: int):
    """orix point group (:class:`~orix.quaternion.Symmetry`) of a space group.

    Examples
    --------
    >>> point_group(186).name
    '6mm'
    """
    from orix.quaternion.symmetry import get_point_group

    return get_point_group(int(number), proper=False)


def laue_group_name(number: int) -> str:
    """Name of the Laue class of a space group ('m-3m', '6/mmm', ...).

    Examples
    --------
    >>> laue_group_name(216)
    'm-3m'
    """
    return str(point_group(int(number)).laue.name)


def _normalise_point_group(symbol: str) -> str:
    return str(symbol).strip().replace(" ", "").replace("_", "")


def default_space_group(symbol: str, *, centring: str = "P") -> int:
    """Representative space group of a point or Laue group named by symbol.

    Used when a file gives the crystal symmetry but no space group: the
    symmorphic group of that point group, with the lattice centring F or I for
    cubic Laue classes when it is known (from the hkl families of an ANG header).

    Raises
    ------
    ValueError
        If the symbol is not one of the 32 point groups.

    Examples
    --------
    >>> default_space_group("m-3m"), default_space_group("m-3m", centring="F")
    (221, 225)
    >>> default_space_group("6/mmm")
    191
    """
    key = _normalise_point_group(symbol)
    if key not in _POINT_GROUP_TO_SPACE_GROUP:
        raise ValueError(
            f"unknown point group {symbol!r}; known: {', '.join(_POINT_GROUP_TO_SPACE_GROUP)}"
        )
    number = _POINT_GROUP_TO_SPACE_GROUP[key]
    if centring.upper() in ("F", "I"):
        laue = laue_group_name(number)
        number = _CENTRED_CUBIC.get((laue, centring.upper()), number)
    return number
