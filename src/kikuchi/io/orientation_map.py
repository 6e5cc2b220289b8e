"""Orientation maps: per-point crystal orientations from vendor files or an indexer.

An :class:`OrientationMap` holds what an Oxford CTF or an EDAX/TSL ANG file
holds, in one vendor-neutral form:

* ``euler`` (N, 3) Bunge Euler angles in radians, exactly as the file gives
  them (orix reads them the same way; see docs/formats.md);
* ``phase_id`` (N,) with 0 for points that are not indexed;
* ``x_um``, ``y_um`` (N,) point coordinates and the grid they form:
  ``'square'`` (``nav_shape`` rows x cols, points stored row-major),
  ``'hexagonal'`` (rows of alternating length, points in file order, never
  reshaped onto a square grid) or ``'interactive'`` (a list of points);
* ``columns``: the other per-point columns (``bands``, ``error``, ``mad``,
  ``bc``, ``bs`` for CTF; ``iq``, ``ci``, ``sem_signal``, ``fit``, ... for ANG);
* ``phases`` (:class:`PhaseInfo`) and ``header`` (every header field).

Formats are plugins (:mod:`kikuchi.io.ctf`, :mod:`kikuchi.io.ang`) with
declared metadata (``FORMAT_NAME``, ``EXTENSIONS``, ``READS``, ``WRITES``,
``sniff``); :func:`read_orientation_map` dispatches by extension, then by
content.

Examples
--------
>>> import numpy as np
>>> omap = OrientationMap.from_arrays(
...     euler=np.zeros((2, 3, 3)), phase_id=np.array([[1, 1, 0], [1, 1, 1]]),
...     step_um=0.5, columns={"bc": np.arange(6).reshape(2, 3)},
...     phases=[PhaseInfo(1, "Ni", lattice_angstrom=(3.52, 3.52, 3.52), space_group=225)])
>>> omap.nav_shape, omap.grid
((2, 3), 'square')
>>> omap.select("bc", omap["bc"] > 1, phase=1).compressed().tolist()
[3, 4, 5]
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "GRID_KINDS",
    "OrientationMap",
    "OrientationMapError",
    "OrientationMapWarning",
    "PhaseInfo",
    "read_orientation_map",
    "write_orientation_map",
    "laue_group_of",
    "point_group_of_space_group",
]

_logger = logging.getLogger(__name__)

GRID_KINDS = ("square", "hexagonal", "interactive")

#: Format plugins, in the order they are tried when sniffing content.
_PLUGINS = ("kikuchi.io.ctf", "kikuchi.io.ang", "kikuchi.io.orientation_h5")


class OrientationMapError(ValueError):
    """An orientation map that cannot be built, read or written as asked."""


class OrientationMapWarning(UserWarning):
    """An orientation map file has an oddity that was read around (the message names the file, the line and what was done).

    Every such warning is also kept in ``OrientationMap.notes``. ``strict=True``
    (or a warnings filter, ``warnings.simplefilter("error", OrientationMapWarning)``)
    turns them into errors.
    """


# --------------------------------------------------------------------------- phases

_LAUE_OF_POINT_GROUP = {
    **dict.fromkeys(["1", "-1"], "-1"),
    **dict.fromkeys(["2", "m", "2/m", "211", "121", "112", "m11", "1m1", "11m"], "2/m"),
    **dict.fromkeys(["222", "mm2", "mmm"], "mmm"),
    **dict.fromkeys(["4", "-4", "4/m"], "4/m"),
    **dict.fromkeys(["422", "4mm", "-42m", "4/mmm"], "4/mmm"),
    **dict.fromkeys(["3", "-3"], "-3"),
    **dict.fromkeys(["32", "321", "312", "3m", "-3m"], "-3m"),
    **dict.fromkeys(["6", "-6", "6/m"], "6/m"),
    **dict.fromkeys(["622", "6mm", "-6m2", "6/mmm"], "6/mmm"),
    **dict.fromkeys(["23", "m-3", "m3"], "m-3"),
    **dict.fromkeys(["432", "-43m", "m-3m", "m3m"], "m-3m"),
}


def laue_group_of(point_group: str | None) -> str | None:
    """The Laue group symbol (orix spelling) of a point group symbol.

    Examples
    --------
    >>> laue_group_of("6mm"), laue_group_of("432"), laue_group_of(None)
    ('6/mmm', 'm-3m', None)
    """
    if point_group is None:
        return None
    return _LAUE_OF_POINT_GROUP.get(point_group.replace(" ", ""))


#: Last space group number of each crystallographic point group (International Tables order).
_POINT_GROUP_RANGES = (
    (1, "1"), (2, "-1"), (5, "2"), (9, "m"), (15, "2/m"), (24, "222"), (46, "mm2"), (74, "mmm"),
    (80, "4"), (82, "-4"), (88, "4/m"), (98, "422"), (110, "4mm"), (122, "-42m"), (142, "4/mmm"),
    (146, "3"), (148, "-3"), (155, "32"), (161, "3m"), (167, "-3m"), (173, "6"), (174, "-6"),
    (176, "6/m"), (182, "622"), (186, "6mm"), (190, "-6m2"), (194, "6/mmm"), (199, "23"),
    (206, "m-3"), (214, "432"), (220, "-43m"), (230, "m-3m"),
)  # fmt: skip


def point_group_of_space_group(space_group: int) -> str:
    """The point group symbol (orix spelling) of a space group number.

    Examples
    --------
    >>> point_group_of_space_group(186), point_group_of_space_group(225)
    ('6mm', 'm-3m')
    """
    for last, name in _POINT_GROUP_RANGES:
        if space_group <= last:
            return name
    raise OrientationMapError(f"space group {space_group} is not in 1..230")


@dataclass
class PhaseInfo:
    """One phase of an orientation map, as a vendor file describes it.

    Parameters
    ----------
    id
        Phase number used in ``OrientationMap.phase_id`` (1, 2, ...).
    name
        Phase name.
    lattice_angstrom
        Lattice lengths a, b, c in Å (as CTF and ANG files give them).
    angles_deg
        Lattice angles alpha, beta, gamma in degrees.
    space_group
        International Tables number, or None when the file does not say.
    laue_group
        Laue group symbol (orix spelling, e.g. ``'6/mmm'``), or None.
    point_group
        Point group symbol (orix spelling) used for symmetry, e.g. ``'6mm'``;
        derived from the space group when known, else from the file's
        symmetry code (as orix does).
    hkl_families
        Reflector families of the file (ANG ``hklFamilies``): dicts with
        ``hkl`` and the vendor's other fields.
    comment
        Free text (CTF reference column, ANG ``Info``).
    extra
        Other vendor fields, kept so that writing the file back loses nothing.
    """

    id: int
    name: str
    lattice_angstrom: tuple[float, float, float] = (1.0, 1.0, 1.0)
    angles_deg: tuple[float, float, float] = (90.0, 90.0, 90.0)
    space_group: int | None = None
    laue_group: str | None = None
    point_group: str | None = None
    hkl_families: list[dict[str, Any]] = field(default_factory=list)
    comment: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.id = int(self.id)
        self.lattice_angstrom = tuple(float(v) for v in self.lattice_angstrom)  # type: ignore[assignment]
        self.angles_deg = tuple(float(v) for v in self.angles_deg)  # type: ignore[assignment]
        if self.space_group is not None:
            self.space_group = int(self.space_group)
            if not 1 <= self.space_group <= 230:
                raise OrientationMapError(f"phase {self.id} ({self.name}): space group {self.space_group} is not in 1..230")
            if self.point_group is None:
                self.point_group = point_group_of_space_group(self.space_group)
        if self.laue_group is None:
            self.laue_group = laue_group_of(self.point_group)
        if self.point_group is None:
            self.point_group = self.laue_group

    @property
    def lattice_nm(self) -> tuple[float, float, float, float, float, float]:
        """a, b, c in nm and alpha, beta, gamma in degrees (the kikuchi.crystal convention)."""
        return (*(v / 10.0 for v in self.lattice_angstrom), *self.angles_deg)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {
            "id": self.id,
            "name": self.name,
            "lattice_angstrom": list(self.lattice_angstrom),
            "angles_deg": list(self.angles_deg),
            "space_group": self.space_group,
            "laue_group": self.laue_group,
            "point_group": self.point_group,
            "hkl_families": [dict(f, hkl=list(f["hkl"])) for f in self.hkl_families],
            "comment": self.comment,
            "extra": _json_ready(self.extra),
        }

    def to_map_phase(self) -> dict[str, Any]:
        """The phase dict of the map file (``MapWriter.set_phases``): lattice in nm."""
        return {"id": self.id, "name": self.name, "space_group": self.space_group, "lattice": list(self.lattice_nm), "point_group": self.point_group}

    @classmethod
    def from_map_phase(cls, phase: Mapping[str, Any]) -> PhaseInfo:
        """A PhaseInfo from a map file phase dict (``EBSDMap.phases``: lattice in nm)."""
        lattice = list(phase.get("lattice") or [0.1, 0.1, 0.1, 90.0, 90.0, 90.0])
        return cls(
            id=int(phase["id"]),
            name=str(phase.get("name", f"phase{phase['id']}")),
            lattice_angstrom=tuple(round(10.0 * v, 9) for v in lattice[:3]),  # type: ignore[arg-type]
            angles_deg=tuple(lattice[3:6]),  # type: ignore[arg-type]
            space_group=phase.get("space_group"),
            point_group=phase.get("point_group"),
        )

    def to_orix(self) -> Any:
        """This phase as an orix ``Phase`` (lattice in Å, as orix's own readers give it)."""
        from diffpy.structure import Lattice, Structure
        from orix.crystal_map import Phase

        structure = Structure(title=self.name, lattice=Lattice(*self.lattice_angstrom, *self.angles_deg))
        if self.space_group is not None:
            return Phase(name=self.name, space_group=self.space_group, structure=structure)
        return Phase(name=self.name, point_group=self.point_group, structure=structure)


def _json_ready(value: Any) -> Any:
    """A JSON-ready copy: numpy arrays and scalars, paths and mappings as Python values, NaN and infinities as None.

    >>> _json_ready({"a": np.array([1.5, np.nan]), 2: np.float64("inf"), "p": Path("x.ctf")})
    {'a': [1.5, None], '2': None, 'p': 'x.ctf'}
    """
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


# --------------------------------------------------------------------------- grids


@dataclass
class _Grid:
    kind: str
    nav_shape: tuple[int, int] | None
    step_um: tuple[float, float]
    order: np.ndarray | None = None  # permutation of file points into row-major order (square)
    hex_ncols: tuple[int, int] | None = None  # (first row, second row) point counts
    note: str = ""


def _rounded_unique(values: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Unique values up to ``tol`` (sorted) and the index of each value among them."""
    order = np.argsort(values, kind="stable")
    s = values[order]
    new = np.ones(s.size, dtype=bool)
    new[1:] = np.diff(s) > tol
    group = np.cumsum(new) - 1
    inverse = np.empty(values.size, dtype=np.int64)
    inverse[order] = group
    return s[new], inverse


def _uniform_step(u: np.ndarray, fallback: float) -> float | None:
    """The spacing of sorted unique coordinates, or None when not uniform."""
    if u.size < 2:
        return fallback
    d = np.diff(u)
    step = float(np.median(d))
    if step <= 0 or np.max(np.abs(d - step)) > 1e-3 * step + 2e-4:
        return None
    if abs(step - fallback) <= 1e-3 * step + 2e-4:
        return float(fallback)  # the header's step, not its rounded image in the coordinates
    return float(f"{step:.6g}")


def infer_grid(
    x: np.ndarray,
    y: np.ndarray,
    *,
    step_x: float | None,
    step_y: float | None,
    declared: str = "square",
) -> _Grid:
    """Find the grid that the point coordinates form.

    Square: every (x, y) of a rows x cols lattice exactly once. Hexagonal:
    rows ``dx * sqrt(3) / 2`` apart, every other row shifted by ``dx / 2``.
    Raises OrientationMapError when the points form neither.
    """
    n = x.size
    sx = step_x if step_x and step_x > 0 else 1.0
    sy = step_y if step_y and step_y > 0 else sx
    tol = 1e-3 * min(sx, sy) + 5e-5
    ux, ix = _rounded_unique(x, tol)
    uy, iy = _rounded_unique(y, tol)
    if n == 0:
        raise OrientationMapError("the map has no data points")
    # square: a complete lattice of unique x by unique y
    if ux.size * uy.size == n:
        dx, dy = _uniform_step(ux, sx), _uniform_step(uy, sy)
        flat = iy * ux.size + ix
        if dx is not None and dy is not None and np.unique(flat).size == n:
            order = np.argsort(flat, kind="stable")
            if np.array_equal(order, np.arange(n)):
                order = None
            return _Grid("square", (int(uy.size), int(ux.size)), (dy, dx), order=order)
    # hexagonal: rows of alternating offset
    if uy.size >= 2:
        counts = np.bincount(iy, minlength=uy.size)
        row0 = np.sort(x[iy == 0])
        row1 = np.sort(x[iy == 1])
        dx = _uniform_step(row0, sx) if row0.size > 1 else sx
        dy = _uniform_step(uy, sy)
        if dx is not None and dy is not None and row1.size:
            shifted = abs(abs(row1[0] - row0[0]) - dx / 2) < 0.02 * dx
            hex_dy = abs(dy - dx * math.sqrt(3) / 2) < 0.01 * dx
            even, odd = counts[0::2], counts[1::2]
            regular = np.all(even == even[0]) and (odd.size == 0 or np.all(odd == odd[0]))
            if shifted and hex_dy and regular and np.all(np.bincount(iy) > 0):
                # points must be in rows (file order: row by row)
                if np.all(np.diff(iy) >= 0):
                    ncols = (int(even[0]), int(odd[0]) if odd.size else int(even[0]))
                    return _Grid("hexagonal", (int(uy.size), max(ncols)), (dy, dx), hex_ncols=ncols)
    raise OrientationMapError(
        f"the {n} point coordinates form neither a complete square grid "
        f"({uy.size} distinct y x {ux.size} distinct x) nor a hexagonal grid"
    )


# --------------------------------------------------------------------------- the map

_ALIASES = {"phase": "phase_id", "phases": "phase_id", "x": "x_um", "y": "y_um"}


class OrientationMap:
    """Per-point orientations, phases and vendor columns of an EBSD map.

    Build one with :meth:`from_arrays` (an indexer) or
    :func:`read_orientation_map` (a CTF or ANG file). Per-point arrays are
    in storage order: row-major for square grids, file order otherwise.

    Parameters
    ----------
    euler
        (N, 3) Bunge Euler angles in radians.
    phase_id
        (N,) phase numbers, 0 where not indexed.
    x_um, y_um
        (N,) point coordinates in µm.
    grid
        ``'square'``, ``'hexagonal'`` or ``'interactive'``.
    nav_shape
        (rows, cols) of a grid; for hexagonal grids cols is the longer row.
    step_um
        (row step, col step) in µm; for hexagonal grids the row step is the
        distance between rows (``col_step * sqrt(3) / 2``).
    columns
        Other per-point arrays by name (lower case).
    phases
        The phases.
    header
        Every header field of the source file.
    source_format
        ``'ctf'``, ``'ang'`` or ``'arrays'``.
    hex_ncols
        Point counts of the first and second row of a hexagonal grid (ANG
        ``NCOLS_ODD``, ``NCOLS_EVEN``).
    path
        Source file, if any.
    notes
        What the reader found worth telling (e.g. a header that disagrees
        with the data); shown by :meth:`describe`.
    """

    def __init__(
        self,
        *,
        euler: np.ndarray,
        phase_id: np.ndarray,
        x_um: np.ndarray,
        y_um: np.ndarray,
        grid: str,
        nav_shape: tuple[int, int] | None,
        step_um: tuple[float, float],
        columns: Mapping[str, np.ndarray] | None = None,
        phases: Sequence[PhaseInfo] = (),
        header: Mapping[str, Any] | None = None,
        source_format: str = "arrays",
        hex_ncols: tuple[int, int] | None = None,
        path: str | os.PathLike | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        if grid not in GRID_KINDS:
            raise OrientationMapError(f"grid must be one of {GRID_KINDS}, not {grid!r}")
        self.euler = np.asarray(euler, dtype=np.float64).reshape(-1, 3)
        n = self.euler.shape[0]
        self.phase_id = np.asarray(phase_id).astype(np.int32).reshape(-1)
        self.x_um = np.asarray(x_um, dtype=np.float64).reshape(-1)
        self.y_um = np.asarray(y_um, dtype=np.float64).reshape(-1)
        self.columns: dict[str, np.ndarray] = {}
        for name, values in (columns or {}).items():
            arr = np.asarray(values).reshape(-1)
            if arr.size != n:
                raise OrientationMapError(f"column {name!r} has {arr.size} values, the map has {n} points")
            self.columns[name.lower()] = arr
        for name, arr in (("phase_id", self.phase_id), ("x_um", self.x_um), ("y_um", self.y_um)):
            if arr.size != n:
                raise OrientationMapError(f"{name} has {arr.size} values, euler has {n} points")
        self.grid = grid
        self.nav_shape = None if nav_shape is None else (int(nav_shape[0]), int(nav_shape[1]))
        if grid == "square" and (self.nav_shape is None or self.nav_shape[0] * self.nav_shape[1] != n):
            raise OrientationMapError(f"a square grid of shape {self.nav_shape} does not hold {n} points")
        if grid == "interactive":
            self.nav_shape = None
        self.step_um = (float(step_um[0]), float(step_um[1]))
        self.phases = list(phases)
        ids = [p.id for p in self.phases]
        if len(set(ids)) != len(ids):
            raise OrientationMapError(f"phase ids must be unique, got {ids}")
        unknown = sorted(set(np.unique(self.phase_id).tolist()) - set(ids) - {0})
        if unknown:
            raise OrientationMapError(f"points refer to phase ids {unknown} that are not among the phases {ids}")
        self.header: dict[str, Any] = dict(header or {})
        self.source_format = source_format
        self.hex_ncols = None if hex_ncols is None else (int(hex_ncols[0]), int(hex_ncols[1]))
        self.path = None if path is None else Path(path)
        self.notes = list(notes)

    # ---------------------------------------------------------------- construction

    @classmethod
    def from_arrays(
        cls,
        *,
        euler: np.ndarray,
        phase_id: np.ndarray | None = None,
        nav_shape: tuple[int, int] | None = None,
        step_um: float | tuple[float, float] = 1.0,
        phases: Sequence[PhaseInfo | Mapping[str, Any]] = (),
        columns: Mapping[str, np.ndarray] | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> OrientationMap:
        """An orientation map on a square grid from arrays (as an indexer produces them).

        Parameters
        ----------
        euler
            (rows, cols, 3) or (N, 3) Bunge Euler angles in radians.
        phase_id
            Phase numbers (0: not indexed); default all 1 (or 0 with no phases).
        nav_shape
            (rows, cols); taken from ``euler`` when it is (rows, cols, 3).
        step_um
            One step, or (row step, col step), in µm.
        phases
            :class:`PhaseInfo` or map file phase dicts (lattice in nm).
        columns
            Other per-point arrays, e.g. ``{"ci": ..., "fit": ...}``.
        header
            Header fields to keep (written back by the CTF/ANG writers).
        """
        euler = np.asarray(euler, dtype=np.float64)
        if nav_shape is None:
            if euler.ndim != 3:
                raise OrientationMapError("give nav_shape=(rows, cols) or euler of shape (rows, cols, 3)")
            nav_shape = euler.shape[:2]
        rows, cols = int(nav_shape[0]), int(nav_shape[1])
        if euler.size != rows * cols * 3:
            raise OrientationMapError(f"euler holds {euler.size // 3} orientations, nav_shape {nav_shape} needs {rows * cols}")
        phase_list = [p if isinstance(p, PhaseInfo) else PhaseInfo.from_map_phase(p) for p in phases]
        if phase_id is None:
            phase_id = np.full(rows * cols, 1 if phase_list else 0)
        sy, sx = (step_um, step_um) if np.isscalar(step_um) else step_um  # type: ignore[misc]
        r, c = np.divmod(np.arange(rows * cols), cols)
        return cls(
            euler=euler.reshape(-1, 3),
            phase_id=np.asarray(phase_id).reshape(-1),
            x_um=c * float(sx),
            y_um=r * float(sy),
            grid="square",
            nav_shape=(rows, cols),
            step_um=(float(sy), float(sx)),
            columns={k: np.asarray(v).reshape(-1) for k, v in (columns or {}).items()},
            phases=phase_list,
            header=header,
            source_format="arrays",
        )

    # ---------------------------------------------------------------- access

    def __len__(self) -> int:
        return self.euler.shape[0]

    @property
    def n_points(self) -> int:
        """Number of points."""
        return len(self)

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.nav_shape)) if self.nav_shape else f"{len(self)} points"
        src = f" from {self.path.name}" if self.path else ""
        return f"<OrientationMap {self.grid} {shape}, step {self.step_um} µm, {len(self.phases)} phase(s){src}>"

    @property
    def column_names(self) -> list[str]:
        """Names accepted by ``omap[name]``, :meth:`map` and :meth:`select`."""
        return ["phase_id", "x_um", "y_um", "euler1", "euler2", "euler3", *self.columns]

    @property
    def is_indexed(self) -> np.ndarray:
        """(N,) True where the point has a phase."""
        return self.phase_id > 0

    @property
    def euler_deg(self) -> np.ndarray:
        """(N, 3) Euler angles in degrees."""
        return np.rad2deg(self.euler)

    def phase(self, phase_id: int) -> PhaseInfo:
        """The phase with this id."""
        for p in self.phases:
            if p.id == phase_id:
                return p
        raise KeyError(f"no phase with id {phase_id}; the map has {[p.id for p in self.phases]}")

    def __getitem__(self, name: str) -> np.ndarray:
        """A per-point array (N,) by name: a column, ``phase``, ``x``, ``y``, ``euler1``..``euler3`` (rad)."""
        key = _ALIASES.get(name.lower(), name.lower())
        if key in ("phase_id", "x_um", "y_um"):
            return getattr(self, key)
        if key in ("euler1", "euler2", "euler3"):
            return self.euler[:, int(key[-1]) - 1]
        if key == "euler":
            return self.euler
        try:
            return self.columns[key]
        except KeyError:
            raise KeyError(f"no column {name!r} in this map; it has {self.column_names}") from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (_ALIASES.get(name.lower(), name.lower()) in [*self.column_names, "euler"])

    def _require_square(self, what: str) -> tuple[int, int]:
        if self.grid != "square" or self.nav_shape is None:
            hint = (
                " Resample it explicitly with omap.to_square_grid() (nearest neighbour) first."
                if self.grid == "hexagonal"
                else " An interactive point list has no map layout; use the per-point arrays (omap[name], omap.x_um, omap.y_um)."
            )
            raise OrientationMapError(f"{what} needs a square grid; this map is {self.grid}.{hint}")
        return self.nav_shape

    def map(self, column: str) -> np.ndarray:
        """A column as a (rows, cols) image (``'euler'`` gives (rows, cols, 3)).

        Only square grids have an image layout; a hexagonal grid raises
        OrientationMapError pointing to :meth:`to_square_grid`.
        """
        shape = self._require_square(f"map({column!r})")
        values = self[column]
        return values.reshape(*shape, *values.shape[1:])

    def select(
        self,
        column: str,
        where: np.ndarray | None = None,
        *,
        phase: int | Sequence[int] | None = None,
        indexed_only: bool = False,
    ) -> np.ma.MaskedArray:
        """A column where a condition holds, masked elsewhere.

        The xcdskd CTF example ("band contrast of phase 1 where BC > 10") is
        ``omap.select("bc", omap["bc"] > 10, phase=1)``.

        Parameters
        ----------
        column
            Column name (see :attr:`column_names`).
        where
            Boolean array, per point (N,) or per map position (rows, cols).
        phase
            Keep only points of this phase id (or these ids).
        indexed_only
            Keep only indexed points.

        Returns
        -------
        np.ma.MaskedArray
            (rows, cols) for a square grid, (N,) otherwise; ``.compressed()``
            gives the selected values in storage order.
        """
        keep = np.ones(len(self), dtype=bool)
        if where is not None:
            w = np.asarray(where, dtype=bool)
            if w.size != len(self):
                raise OrientationMapError(f"where has {w.size} values, the map has {len(self)} points")
            keep &= w.reshape(-1)
        if phase is not None:
            keep &= np.isin(self.phase_id, np.atleast_1d(phase))
        if indexed_only:
            keep &= self.is_indexed
        values = self[column]
        out = np.ma.MaskedArray(values, mask=~keep if values.ndim == 1 else np.repeat(~keep[:, None], values.shape[1], 1))
        if self.grid == "square" and self.nav_shape is not None:
            return out.reshape(*self.nav_shape, *values.shape[1:])
        return out

    # ---------------------------------------------------------------- conversion

    def to_orix(self) -> Any:
        """This map as an orix ``CrystalMap`` (not indexed points get orix's phase id -1).

        Rotations are ``Rotation.from_euler(euler)``, exactly what orix's own
        CTF/ANG readers build from the same file; columns become ``prop``.
        """
        from orix.crystal_map import CrystalMap, PhaseList
        from orix.quaternion import Rotation

        phase_id = self.phase_id.astype(np.int64).copy()
        phase_id[phase_id == 0] = -1
        phase_list = PhaseList(
            names=[p.name for p in self.phases],
            space_groups=[p.space_group for p in self.phases],
            point_groups=[p.point_group for p in self.phases],
            ids=[p.id for p in self.phases],
            structures=[p.to_orix().structure for p in self.phases],
        ) if self.phases else PhaseList()
        prop = {k: np.asarray(v, dtype=np.float64) for k, v in self.columns.items() if np.issubdtype(np.asarray(v).dtype, np.number)}
        return CrystalMap(
            rotations=Rotation.from_euler(self.euler),
            phase_id=phase_id,
            x=self.x_um,
            y=self.y_um,
            phase_list=phase_list,
            prop=prop,
            scan_unit="um",
        )

    def to_square_grid(self, *, step_um: float | None = None) -> OrientationMap:
        """An explicit nearest-neighbour resampling onto a square grid.

        For hexagonal grids (which :meth:`map` refuses) and interactive point
        lists: every position of a square grid with step ``step_um`` (default:
        the column step) covering the same area takes the values of the
        nearest measured point. Nothing is interpolated; orientations and
        columns are copied, and ``notes`` records the resampling. A square map
        is returned unchanged.
        """
        if self.grid == "square":
            return self
        from scipy.spatial import cKDTree

        step = float(step_um or self.step_um[1])
        if not step > 0:
            raise OrientationMapError(f"to_square_grid needs a positive step_um; this {self.grid} map has none")
        x0, y0 = self.x_um.min(), self.y_um.min()
        cols = int(math.floor((self.x_um.max() - x0) / step + 1e-6)) + 1
        rows = int(math.floor((self.y_um.max() - y0) / step + 1e-6)) + 1
        r, c = np.divmod(np.arange(rows * cols), cols)
        xs, ys = x0 + c * step, y0 + r * step
        _, nearest = cKDTree(np.column_stack([self.x_um, self.y_um])).query(np.column_stack([xs, ys]))
        header = dict(self.header)
        note = f"resampled from a {self.grid} grid to a square grid (nearest neighbour, step {step:g} µm)"
        return OrientationMap(
            euler=self.euler[nearest],
            phase_id=self.phase_id[nearest],
            x_um=xs,
            y_um=ys,
            grid="square",
            nav_shape=(rows, cols),
            step_um=(step, step),
            columns={k: v[nearest] for k, v in self.columns.items()},
            phases=self.phases,
            header=header,
            source_format=self.source_format,
            path=self.path,
            notes=[*self.notes, note],
        )

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: shape, grid kind, steps, phases and a per-column summary.

        The column summary gives min, mean and max over indexed points (all
        points where none is indexed) and ``not_indexed``, the count of points
        with phase 0; NaN (empty fields) are left out. ``error_codes`` counts
        the points of each CTF error code, with its meaning.
        """
        indexed = self.is_indexed
        n_not = int((~indexed).sum())
        summary: dict[str, Any] = {}
        for name in ["euler1", "euler2", "euler3", *self.columns]:
            values = self[name]
            if not np.issubdtype(values.dtype, np.number):
                continue
            v = values[indexed] if indexed.any() else values
            v = v[np.isfinite(v)] if np.issubdtype(v.dtype, np.floating) else v
            if name.startswith("euler"):
                v = np.rad2deg(v)
                name = f"{name}_deg"
            summary[name] = {
                "min": float(v.min()) if v.size else None,
                "mean": float(v.mean()) if v.size else None,
                "max": float(v.max()) if v.size else None,
                "not_indexed": n_not,
            }
        counts = {str(p.id): int((self.phase_id == p.id).sum()) for p in self.phases}
        error_codes = None
        if "error" in self.columns and np.issubdtype(self.columns["error"].dtype, np.integer):
            from kikuchi.io.ctf import ERROR_CODES

            codes, n_code = np.unique(self.columns["error"], return_counts=True)
            error_codes = {f"{c} {ERROR_CODES.get(int(c), 'unknown code')}": int(k) for c, k in zip(codes, n_code)}
        return _json_ready(
            {
                "path": None if self.path is None else str(self.path),
                "kind": "orientation map",
                "format": self.source_format,
                "grid": self.grid,
                "nav_shape": None if self.nav_shape is None else list(self.nav_shape),
                "hex_ncols": None if self.hex_ncols is None else list(self.hex_ncols),
                "n_points": len(self),
                "step_um": list(self.step_um),
                "indexed": int(indexed.sum()),
                "not_indexed": n_not,
                "phases": [dict(p.to_dict(), n_points=counts[str(p.id)]) for p in self.phases],
                "columns": summary,
                "error_codes": error_codes,
                "header": self.header,
                "notes": self.notes,
            }
        )

    def write(self, path: str | os.PathLike, *, format: str | None = None) -> Path:
        """Write to a CTF, ANG or HDF5 file chosen by extension (or ``format``)."""
        return write_orientation_map(self, path, format=format)


# --------------------------------------------------------------------------- dispatch


def _plugins() -> list[ModuleType]:
    return [importlib.import_module(name) for name in _PLUGINS]


def _plugin_for(path: Path, *, format: str | None, need: str) -> ModuleType:
    plugins = _plugins()
    if format is not None:
        for p in plugins:
            if p.FORMAT_NAME == format.lower():
                return p
        raise OrientationMapError(f"unknown orientation map format {format!r}; known: {[p.FORMAT_NAME for p in plugins]}")
    ext = path.suffix.lower().lstrip(".")
    for p in plugins:
        if ext in p.EXTENSIONS and getattr(p, need.upper()):
            return p
    if need == "reads" and path.exists():
        with open(path, "rb") as f:
            head = f.read(4096).decode("latin-1")
        for p in plugins:
            if p.READS and p.sniff(head):
                return p
    known = sorted({e for p in plugins for e in p.EXTENSIONS if getattr(p, need.upper())})
    raise OrientationMapError(f"{path.name}: not a known orientation map format (extensions {known}, or content of a CTF/ANG/HDF5 file)")


def read_orientation_map(path: str | os.PathLike, *, format: str | None = None, strict: bool = False) -> OrientationMap:
    """Read an orientation map (Oxford CTF, EDAX/TSL ANG or kikuchi HDF5) by extension, then content.

    Reading follows one rule (docs/formats.md, "Reading rule"): the file is
    read as far as it can be interpreted; every oddity read around (a
    truncated acquisition, a header that disagrees with the data, a value no
    instrument writes) is an :class:`OrientationMapWarning` that names the
    file and line, and is kept in ``omap.notes``; what cannot be interpreted
    is an error naming the file and line.

    Parameters
    ----------
    path
        The file.
    format
        ``'ctf'``, ``'ang'`` or ``'h5'`` to skip detection.
    strict
        Refuse any oddity: the first warning becomes an error (of the
        format's error type) instead.

    Raises
    ------
    kikuchi.io.ctf.CtfFormatError, kikuchi.io.ang.AngFormatError, OrientationMapError
        Files that cannot be interpreted (or, with ``strict=True``, have an
        oddity), naming the file and line.
    FileNotFoundError
        No such file.
    """
    from kikuchi._args import check_bool, check_path

    path = check_path(path)
    strict = check_bool(strict, "strict")
    if format is not None and not isinstance(format, str):
        raise OrientationMapError(f"{path}: format={format!r}: expected 'ctf', 'ang' or 'h5'")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise OrientationMapError(f"{path}: a folder, not an orientation map file (CTF, ANG or HDF5)")
    return _plugin_for(path, format=format, need="reads").read(path, strict=strict)


def write_orientation_map(omap: OrientationMap, path: str | os.PathLike, *, format: str | None = None) -> Path:
    """Write an orientation map to a CTF, ANG or HDF5 file by extension (atomic: temporary name, then rename)."""
    path = Path(path)
    plugin = _plugin_for(path, format=format, need="writes")
    plugin.write(omap, path)
    return path


def _report(omap: OrientationMap, *, new: Sequence[str], fname: str, strict: bool, error: type[Exception]) -> OrientationMap:
    """Warn about each oddity of ``new`` (already in ``omap.notes``), or with ``strict`` refuse the first.

    The warning names the file; the note itself says where (line, point) and
    what was done about it.
    """
    for note in new:
        if strict:
            raise error(f"{fname}: {note} (strict reading refuses what a plain read warns about)")
        warnings.warn(f"{fname}: {note}", OrientationMapWarning, stacklevel=3)
    return omap


# --------------------------------------------------------------------------- text tables (shared by the plugins)

#: A number as instruments print it (ASCII digits only; no '1_000', no full-width digits, which Python's float() accepts).
_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*|\s*[+-]?(?:nan|inf|infinity)\s*", re.IGNORECASE)


def _is_number(text: str) -> bool:
    return _NUMBER.fullmatch(text) is not None


def _read_text(path: Path) -> tuple[list[str], bool]:
    """The lines of a vendor text file (UTF-8, or Latin-1 where it is not) and whether its last line ends with a line end.

    Lines are split at ``\\n`` only (with a trailing ``\\r`` removed), never at
    the other characters that ``str.splitlines`` takes as line ends (form
    feeds, ``\\x1c``-``\\x1e``, ``\\x85`` of Latin-1 text): a stray byte does not
    renumber the lines.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    complete = lines[-1] == ""
    if complete:
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines], complete


def _parse_number(text: str) -> int | float | str:
    """A header value as int, float or (when not a number as instruments print it) the text itself."""
    t = text.strip()
    if not _is_number(t):
        return t
    try:
        return int(t)
    except ValueError:
        pass
    value = float(t)
    return value if math.isfinite(value) else t


@dataclass
class _Table:
    """The rows of a text table that could be read: columns as float arrays (NaN where a field is empty)."""

    cols: list[np.ndarray | None]
    n_cols: int
    line: np.ndarray  # file line number of each row read
    bad: list[tuple[int, str]]  # (file line, why) of each row left out


def _parse_table(
    lines: list[str],
    *,
    sep: str | None,
    line_numbers: np.ndarray,
    names: Sequence[str],
    required: int,
    fname: str,
    error: type[Exception],
    default_count: int | None = None,
) -> _Table:
    """Columns of a text table; rows that cannot be read are left out and listed in ``bad``.

    ``lines`` are the data lines (no blank ones), ``line_numbers`` their file
    line numbers, fields separated by ``sep`` (None: any whitespace). The
    table's column count is ``default_count`` (or ``len(names)``) when at
    least half of the lines have it, else the count of most lines (a file
    that leaves trailing columns out). A row is left out when its field count
    differs, a field is not a number, or one of the first ``required``
    columns is empty. Refused (``error``): a table whose column count is
    below ``required``, or of which fewer than half the rows can be read.
    Columns beyond ``required`` that are empty on every row come back None.
    """
    n = len(lines)
    full = default_count or len(names)
    try:  # fast path: numpy's C parser, when every field is a number
        flat = np.loadtxt(lines, delimiter=sep, comments=None, dtype=np.float64, ndmin=2)
    except ValueError:
        flat = None
    if flat is not None and flat.shape[0] == n and flat.shape[1] >= required:
        return _Table([flat[:, j].copy() for j in range(flat.shape[1])], int(flat.shape[1]), np.asarray(line_numbers), [])

    def describe(k: int) -> str:
        return " ".join(list(names[:k]) + [f"column{j + 1}" for j in range(len(names), k)])

    rows = [ln.split(sep) for ln in lines]
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
    values, freq = np.unique(counts, return_counts=True)
    expected = full if (counts == full).sum() * 2 >= n else int(values[np.argmax(freq)])
    if expected < required:
        raise error(f"{fname} line {line_numbers[0]}: expected {full} columns ({describe(full)}), found {expected}")
    why: dict[int, str] = {}
    kept: list[list[str]] = []
    kept_at: list[int] = []
    for i, r in enumerate(rows):
        if len(r) > expected and all(f.strip() == "" for f in r[expected:]):
            r = r[:expected]  # a trailing separator leaves empty fields beyond the end
        if len(r) != expected:
            found = len(r) if any(f.strip() for f in r) else 0
            tail = " (the file ends inside this line: truncated?)" if i == n - 1 and found < expected else ""
            why[i] = f"expected {expected} columns ({describe(expected)}), found {found}{tail}"
            continue
        kept.append(r)
        kept_at.append(i)
    m = len(kept)
    ok = np.ones(m, dtype=bool)
    out: list[np.ndarray | None] = []
    if m:
        table = np.array(kept, dtype=str).reshape(m, expected)
        for j in range(expected):
            col = table[:, j]
            name = names[j] if j < len(names) else f"column{j + 1}"
            stripped = np.char.strip(col)
            empty = np.char.str_len(stripped) == 0
            if empty.all() and j >= required:
                out.append(None)
                continue
            number = np.fromiter((e or _is_number(s) for s, e in zip(col.tolist(), empty.tolist())), dtype=bool, count=m)
            for i in np.nonzero(~number & ok)[0]:
                why[kept_at[i]] = f"column {name}: {str(stripped[i])[:20]!r} is not a number"
            ok &= number
            if j < required:
                for i in np.nonzero(empty & ok)[0]:
                    why[kept_at[i]] = f"column {name} is empty"
                ok &= ~empty
            arr = np.full(m, np.nan)
            good = number & ~empty
            arr[good] = stripped[good].astype(np.float64)
            out.append(arr)
    rows_at = np.asarray(kept_at, dtype=np.int64)[ok]
    if rows_at.size * 2 < n:
        i = min(why)
        raise error(
            f"{fname} line {line_numbers[i]}: {why[i]}; {n - rows_at.size} of the {n} data lines cannot be read "
            f"(not a table of {describe(expected)}?)"
        )
    cols = [None if c is None else c[ok] for c in out]
    bad = [(int(line_numbers[i]), why[i]) for i in sorted(why)]
    return _Table(cols, expected, np.asarray(line_numbers)[rows_at], bad)


def _bad_rows_note(bad: list[tuple[int, str]], *, what: str) -> str:
    """The note for data lines left out: the first one, why, and how many."""
    line, why = bad[0]
    more = f" ({len(bad)} lines left out in all)" if len(bad) > 1 else ""
    return f"line {line}: {why}: the line is left out{more}; {what}"


def _maybe_int(values: np.ndarray) -> np.ndarray:
    """Integer array when every value is a whole number (no NaN), else unchanged."""
    if np.isfinite(values).all() and np.array_equal(values, np.round(values)) and np.abs(values).max(initial=0) < 2**31:
        return values.astype(np.int32)
    return values


def _writable_euler(omap: OrientationMap, *, fname: str, error: type[Exception]) -> np.ndarray:
    """The Euler angles to write: refused where an indexed point has none; 0 on points not indexed that have none."""
    finite = np.isfinite(omap.euler).all(axis=1)
    bad = ~finite & (omap.phase_id > 0)
    if bad.any():
        k = int(np.argmax(bad))
        raise error(f"{fname}: point {k} is indexed (phase {omap.phase_id[k]}) but its Euler angles {omap.euler[k].tolist()} are not finite: mark it not indexed (phase 0) first")
    return np.where(finite[:, None], omap.euler, 0.0)


def _filled(values: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """A column to write in a whitespace/tab table: no value (NaN) written as ``fill``, whole numbers then as integers."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.floating) and not np.isfinite(values).all():
        return _maybe_int(np.where(np.isfinite(values), values, fill))
    return values


def _format_column(values: np.ndarray, decimals: int) -> tuple[str, list[Any]]:
    """A column for :func:`_join_rows`: its %-format and its values.

    Integers as such, floats with ``decimals``, NaN (an empty field) as nothing.
    """
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.integer) or values.dtype == bool:
        return "%d", values.astype(np.int64).tolist()
    values = values.astype(np.float64)
    nan = ~np.isfinite(values)
    if nan.any():
        text = [f"{v:.{decimals}f}" for v in values.tolist()]
        for i in np.nonzero(nan)[0]:
            text[i] = ""
        return "%s", text
    return f"%.{decimals}f", values.tolist()


def _join_rows(columns: Sequence[tuple[str, list[Any]]], sep: str) -> str:
    """Rows of formatted columns joined by ``sep``, one line each, with a final newline."""
    if not columns or not columns[0][1]:
        return ""
    fmt = sep.join(c[0] for c in columns)
    return "\n".join([fmt % row for row in zip(*(c[1] for c in columns))]) + "\n"


def _format_header_value(value: Any, decimals: int) -> str:
    """A header value as text: integers as such, floats with ``decimals``."""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{decimals}f}"
    return str(value)


def _format_lattice_value(value: float) -> str:
    """A lattice length or angle with 3 decimals, or more digits where it has them."""
    value = float(value)
    return f"{value:.3f}" if round(value, 3) == value else f"{value:.6g}"


# --------------------------------------------------------------------------- values no instrument writes

#: Euler angles outside this range (degrees) are written by no instrument (EDAX writes 4 pi, 720°, for points not indexed).
EULER_RANGE_DEG = (-360.0, 720.0)
#: Per-point columns and the values instruments write (a value outside, or an infinity, is impossible).
COLUMN_RANGES: dict[str, tuple[float, float]] = {
    "bands": (0, 255),
    "error": (0, 255),
    "mad": (0, 180),
    "bc": (0, 255),
    "bs": (0, 255),
    "ci": (-1, 1),
    "fit": (-1, 180),  # EDAX writes -1 for points not indexed
}


def _screen_points(
    *,
    euler: np.ndarray,
    phase: np.ndarray,
    columns: dict[str, np.ndarray],
    phase_ids: Sequence[int],
    where: np.ndarray | None,
    names: Mapping[str, str] | None = None,
    euler_text: Callable[[np.ndarray], str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Points with values no instrument writes are marked not indexed (arrays changed in place); one note per field.

    * a phase that is not a whole number of the phase table (0: not indexed);
    * Euler angles not finite or outside :data:`EULER_RANGE_DEG` on an
      indexed point: set to 0 (as a CTF file writes for a point not indexed);
    * a column value outside :data:`COLUMN_RANGES`, or an infinity: set to
      NaN (an empty field).

    Returns the integer phase ids and the notes. ``where`` gives the file
    line of each point (None: the point index is named).
    """
    names = names or {}
    notes: list[str] = []

    def at(k: int) -> str:
        return f"line {int(where[k])}" if where is not None else f"point {k}"

    def tally(bad: np.ndarray) -> str:
        n = int(bad.sum())
        return f" ({n} points in all)" if n > 1 else ""

    phase = np.asarray(phase, dtype=np.float64)
    known = np.isfinite(phase) & (phase == np.round(phase)) & np.isin(phase, [0, *phase_ids])
    if not known.all():
        k = int(np.argmax(~known))
        notes.append(
            f"{at(k)}: phase {phase[k]:g} is not in the phase table (phases {list(phase_ids)}; 0 = not indexed)"
            f"{tally(~known)}: marked not indexed"
        )
    phase_id = np.where(known, phase, 0).astype(np.int32)
    deg = np.rad2deg(euler)
    with np.errstate(invalid="ignore"):
        fine = np.all(np.isfinite(deg) & (deg >= EULER_RANGE_DEG[0]) & (deg <= EULER_RANGE_DEG[1] + 0.01), axis=1)
    flagged = ~fine & (phase_id > 0)
    if flagged.any():
        k = int(np.argmax(flagged))
        shown = euler_text(euler[k]) if euler_text else ", ".join(f"{v:g}" for v in deg[k])
        notes.append(
            f"{at(k)}: Euler angles ({shown}) are not finite or outside {EULER_RANGE_DEG[0]:g}..{EULER_RANGE_DEG[1]:g}°, "
            f"which no instrument writes{tally(flagged)}: the angles set to 0 and the point marked not indexed"
        )
    euler[~fine] = 0.0
    phase_id[~fine] = 0
    for key, values in columns.items():
        lo, hi = COLUMN_RANGES.get(key, (-np.inf, np.inf))
        with np.errstate(invalid="ignore"):
            bad = np.isinf(values) | (np.isfinite(values) & ((values < lo) | (values > hi)))
        if bad.any():
            k = int(np.argmax(bad))
            name = names.get(key, key)
            span = f"outside {lo:g}..{hi:g}" if np.isfinite(lo) else "not finite"
            notes.append(
                f"{at(k)}: {name} {values[k]:g} is {span}, which no instrument writes{tally(bad)}: "
                f"set to NaN (empty) and the point marked not indexed"
            )
            values[bad] = np.nan
            phase_id[bad] = 0
    return phase_id, notes


# --------------------------------------------------------------------------- placing points on their grid


@dataclass
class _Declared:
    """What a file's header says about its grid (None where it does not say)."""

    kind: str | None = None  # 'square' or 'hexagonal'
    shape: tuple[int, int] | None = None  # (rows, cols); hexagonal: cols of the first row
    hex_ncols: tuple[int, int] | None = None  # points of the first and second row
    step: tuple[float | None, float | None] = (None, None)  # (row step, col step), µm
    text: str = ""  # how the header says it, for messages
    promised: int | None = None  # points the header promises


def _tolerance(step: float) -> float:
    """How far a coordinate may lie from its grid node: 0.1% of the step, plus the printing precision of 4 decimals (at most 2% of the step)."""
    return 1e-3 * step + min(5e-5, 0.02 * step)


def _scale(x: np.ndarray, y: np.ndarray, steps: Sequence[float | None]) -> float:
    """The grid step to size tolerances by: the header's smallest step, else the smallest typical spacing of the coordinates."""
    given = [v for v in steps if v]
    if given:
        return float(min(given))
    spacing = []
    for v in (x, y):
        d = np.diff(np.unique(v))
        d = d[d > 1e-12]
        if d.size:
            spacing.append(float(np.median(d)))
    return min(spacing) if spacing else 1.0


@dataclass
class _Placement:
    """Where each point of a file goes on its grid."""

    kind: str  # 'square' or 'hexagonal'
    nav_shape: tuple[int, int]
    step: tuple[float, float]  # (row step, col step), µm
    target: np.ndarray  # storage index of each point kept
    keep: np.ndarray  # (points,) True for the points placed
    r: np.ndarray  # (points,) row of each point
    c: np.ndarray  # (points,) column of each point (within its row)
    x: np.ndarray  # (positions,) coordinates of every position of the grid
    y: np.ndarray
    hex_ncols: tuple[int, int] | None = None


def _mode_step(values: np.ndarray, tol: float) -> float | None:
    """The most common spacing of sorted distinct ``values`` (ties: the smallest), or None with fewer than two."""
    u, _ = _rounded_unique(values, tol)
    if u.size < 2:
        return None
    d = np.diff(u)
    groups, inverse = _rounded_unique(d, 1e-3 * float(np.median(d)) + tol)
    counts = np.bincount(inverse, minlength=groups.size)
    best = int(np.argmax(counts))
    return float(np.mean(d[inverse == best]))


def _step_of(data_step: float | None, header: float | None) -> float | None:
    """The header's step where the data agree with it (to printing precision), else the data's (6 digits)."""
    if data_step is None:
        return header
    if header and abs(data_step - header) <= 1e-3 * header + min(2e-4, 0.02 * header):
        return float(header)
    return float(f"{data_step:.6g}")


def _axis_step(values: np.ndarray, header: float | None, tol: float) -> float | None:
    """The grid step along one axis: the header's where the coordinates agree with it, else the coordinates' own.

    A coordinate step that is a whole multiple of the header's is a subsampled
    export (the coordinates win); a smaller one, with most points on the
    header's lattice, comes from a few stray coordinates (the header wins).
    """
    step = _step_of(_mode_step(values, tol), header)
    if header and step is not None and step < header:
        k = (values - values.min()) / header
        if np.mean(np.abs(k - np.rint(k)) * header <= _tolerance(header)) >= 0.5:
            return float(header)
    return step


def _precise(values: np.ndarray, step: float, tol: float) -> float:
    """``step`` to the precision of the coordinates: the mean spacing of their most common spacing, where it agrees with ``step``."""
    data = _mode_step(values, tol)
    return data if data is not None and abs(data - step) <= 0.01 * step else step


def _fits(data_rows: int, data_cols: int, shape: tuple[int, int], n: int) -> bool:
    """True when ``data_rows x data_cols`` points are the start of a ``shape`` scan (whole rows, then at most a part of one)."""
    rows, cols = shape
    whole_rows = data_cols == cols or (data_rows == 1 and data_cols <= cols)
    return data_rows <= rows and whole_rows and rows * cols <= 100 * n + 10_000


def _looks_hexagonal(x: np.ndarray, y: np.ndarray, tol: float) -> tuple[float, float] | None:
    """(row distance, column step) when the points lie in rows ``dx * sqrt(3) / 2`` apart, every other row shifted by ``dx / 2``."""
    uy, iy = _rounded_unique(y, tol)
    if uy.size < 2:
        return None
    dy = _mode_step(y, tol)
    order = np.lexsort((x, iy))
    xs, rs = x[order], iy[order]
    same = np.diff(rs) == 0
    if not same.any() or dy is None:
        return None
    d = np.diff(xs)[same]
    groups, inverse = _rounded_unique(d, tol + 1e-3 * float(np.median(d)))
    dx = float(np.mean(d[inverse == int(np.argmax(np.bincount(inverse)))]))
    if not dx > 0 or abs(dy - dx * math.sqrt(3) / 2) > 0.01 * dx:
        return None
    start = np.array([x[iy == r].min() if (iy == r).any() else np.nan for r in range(min(uy.size, 4))])
    shift = np.abs(np.diff(start)) % dx
    shift = shift[np.isfinite(shift)]
    if not shift.size or np.abs(shift - dx / 2).max() > 0.02 * dx:
        return None
    return dy, dx


def _describe_order(r: np.ndarray, c: np.ndarray) -> str | None:
    """How points (in file order) at rows ``r`` and columns ``c`` are stored, when not row by row from the smallest X and Y."""
    if r.size < 2:
        return None
    r, c = r.astype(np.int64), c.astype(np.int64)
    rows, cols = int(r.max()) + 1, int(c.max()) + 1
    if np.all(np.diff(r * cols + c) > 0):
        return None
    orders = {
        "with X decreasing along each row (a map mirrored left to right)": r * cols + (cols - 1 - c),
        "from the largest Y to the smallest (a map mirrored top to bottom)": (rows - 1 - r) * cols + c,
        "from the largest Y to the smallest and with X decreasing along each row (a map turned by 180°)": (rows - 1 - r) * cols + (cols - 1 - c),
        "column by column": c * rows + r,
    }
    how = next((name for name, key in orders.items() if np.all(np.diff(key) > 0)), "out of row order")
    return (
        f"the points are stored {how}; they are placed by their coordinates and kept row-major "
        f"(rows by increasing Y, columns by increasing X)"
    )


def _grid_map(
    *,
    euler: np.ndarray,
    phase_id: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    columns: dict[str, np.ndarray],
    where: np.ndarray,
    declared: _Declared,
    fill: Mapping[str, float],
    fill_text: str,
    notes: list[str],
    fname: str,
    error: type[Exception],
    n_lines: int,
    **fields: Any,
) -> OrientationMap:
    """The OrientationMap of a reader's points, each placed on its grid by its coordinates.

    The grid (square, or hexagonal: rows ``dx * sqrt(3) / 2`` apart, every
    other row shifted by ``dx / 2``) and its step come from the
    coordinates (the header's step where they agree with it); its size is
    the header's when the points are the start of that scan (an acquisition
    stopped early), else the points' extent. Positions without a point are
    not indexed, with ``fill`` values (NaN for columns not named). Points off
    the grid, at an earlier point's position or without usable coordinates
    are left out. Each of these, a header that disagrees with the data, and
    points stored out of row order, is a note. ``n_lines`` is the number of
    data lines of the file (for the note on a file shorter than its header
    says). Refused (``error``) when fewer than half of the points lie on one
    grid.
    """
    usable = np.isfinite(x) & np.isfinite(y) & (np.abs(x) < 1e9) & (np.abs(y) < 1e9)
    if not usable.all():
        k = int(np.argmax(~usable))
        notes.append(
            f"line {where[k]}: coordinates X {x[k]:g}, Y {y[k]:g} place the point nowhere "
            f"({int((~usable).sum())} point(s)): left out, their map positions are missing"
        )
        euler, phase_id, x, y, where = euler[usable], phase_id[usable], x[usable], y[usable], where[usable]
        columns = {key: v[usable] for key, v in columns.items()}
    n = x.size
    if n == 0:
        raise error(f"{fname}: no data line has usable X/Y coordinates")
    tol = _tolerance(_scale(x, y, declared.step))
    hexagonal = _looks_hexagonal(x, y, tol)
    place = _place_hexagonal if hexagonal else _place_square
    p = place(x, y, declared=declared, hex_steps=hexagonal, where=where, notes=notes, fname=fname, error=error)
    target, keep = p.target, p.keep
    n_pos = p.x.size
    full_euler = np.zeros((n_pos, 3))
    full_euler[target] = euler[keep]
    full_phase = np.zeros(n_pos, dtype=np.int32)
    full_phase[target] = phase_id[keep]
    full_x, full_y = p.x, p.y
    full_x[target], full_y[target] = x[keep], y[keep]
    full_columns = {}
    for key, values in columns.items():
        arr = np.full(n_pos, float(fill.get(key, np.nan)))
        arr[target] = values[keep]
        full_columns[key] = _maybe_int(arr)
    order = _describe_order(p.r[keep], p.c[keep])
    if order:
        notes.append(order)
    missing = n_pos - int(keep.sum())
    if missing:
        shape = f"{p.nav_shape[0]} x {p.nav_shape[1]}" if p.kind == "square" else f"{p.nav_shape[0]}-row hexagonal"
        why = ""
        if declared.promised is not None and declared.promised > n_lines:
            why = f" (the header promises {declared.promised} points, the file holds {n_lines}: an acquisition stopped early, or a truncated file)"
        notes.append(f"{missing} of the {n_pos} positions of the {shape} grid have no data point{why}: marked not indexed{fill_text}")
    return OrientationMap(
        euler=full_euler, phase_id=full_phase, x_um=full_x, y_um=full_y, grid=p.kind, nav_shape=p.nav_shape,
        step_um=p.step, columns=full_columns, hex_ncols=p.hex_ncols, notes=notes, **fields,
    )  # fmt: skip


def _on_lattice(v: np.ndarray, step: float, tol: float) -> np.ndarray:
    """True for the coordinates on the lattice of ``step`` that most of them lie on (a few stray values do not move it)."""
    if v.size < 2 or not step > 0:
        return np.ones(v.size, dtype=bool)
    dev = (v - np.median(v)) / step
    dev -= np.rint(dev)  # -0.5..0.5 of a cell
    width = max(tol / step, 1e-6)
    bins = np.rint(dev / width).astype(np.int64)
    values, counts = np.unique(bins, return_counts=True)
    centre = float(np.mean(dev[bins == values[np.argmax(counts)]]))
    off = np.abs(dev - centre)
    return np.minimum(off, 1.0 - off) * step <= tol


def _axis(v: np.ndarray, step: float, n_cells: int | None, tol: float, on: np.ndarray) -> tuple[np.ndarray, float, float, np.ndarray]:
    """Cell index of each coordinate, the grid origin, the fitted step and each coordinate's distance to its cell.

    The step is fitted to the extent of the coordinates ``on`` the lattice
    (coordinates printed with few decimals do not drift off the grid; stray
    values do not stretch it); the origin is the smallest of them, or, when
    the points run from the largest and stop short of ``n_cells`` (a scan
    stopped early), the largest one at the last cell.
    """
    w = v[on] if on.any() else v
    lo, hi = float(w.min()), float(w.max())
    span = int(round((hi - lo) / step)) if step > 0 else 0
    fitted = (hi - lo) / span if span > 0 else step
    if abs(fitted - step) > 0.01 * step:
        fitted = step
    descending = (v[0] - lo) > (hi - v[0])
    if n_cells is not None and descending and span + 1 < n_cells:
        origin = hi - (n_cells - 1) * fitted
    else:
        origin = lo
    index = np.rint((v - origin) / fitted).astype(np.int64)
    return index, origin, fitted, np.abs(v - (origin + index * fitted))


def _drop_off_grid(off: np.ndarray, *, x: np.ndarray, y: np.ndarray, where: np.ndarray, notes: list[str], grid: str) -> None:
    if off.any():
        k = int(np.argmax(off))
        notes.append(
            f"line {where[k]}: X {x[k]:g}, Y {y[k]:g} is off the {grid} ({int(off.sum())} point(s)): "
            f"left out, its map position is missing"
        )


def _drop_repeats(flat: np.ndarray, keep: np.ndarray, *, x: np.ndarray, y: np.ndarray, where: np.ndarray, notes: list[str]) -> np.ndarray:
    """``keep`` without the points at an earlier kept point's position (noted)."""
    idx = np.nonzero(keep)[0]
    _, first = np.unique(flat[idx], return_index=True)
    repeat = np.ones(idx.size, dtype=bool)
    repeat[first] = False
    if repeat.any():
        k = int(idx[np.argmax(repeat)])
        earlier = int(idx[np.nonzero(flat[idx] == flat[k])[0][0]])
        notes.append(
            f"line {where[k]}: X {x[k]:g}, Y {y[k]:g} is the position of line {where[earlier]} "
            f"({int(repeat.sum())} point(s) at an earlier point's position): left out, the first point is kept"
        )
        keep = keep.copy()
        keep[idx[repeat]] = False
    return keep


def _header_disagrees(declared: _Declared, shape: str, step: tuple[float, float], *, subsampled: bool) -> str:
    hint = " (a subsampled or cropped export?)" if subsampled else ""
    return f"the header says {declared.text}, the data hold {shape} at {step[1]:g} µm{hint}; the data coordinates are used"


def _place_square(
    x: np.ndarray, y: np.ndarray, *, declared: _Declared, hex_steps: Any, where: np.ndarray, notes: list[str], fname: str, error: type[Exception]
) -> _Placement:
    n = x.size
    sy_h, sx_h = declared.step
    tol0 = _tolerance(_scale(x, y, declared.step))
    dx = _axis_step(x, sx_h, tol0)
    dy = _axis_step(y, sy_h, tol0)
    dx = dx or dy or 1.0
    dy = dy or dx
    tol = _tolerance(min(dx, dy))
    on_x = _on_lattice(x, _precise(x, dx, tol0), tol)
    on_y = _on_lattice(y, _precise(y, dy, tol0), tol)
    xs, ys = (x[on_x], y[on_y]) if on_x.any() and on_y.any() else (x, y)
    data_cols = int(round((xs.max() - xs.min()) / dx)) + 1
    data_rows = int(round((ys.max() - ys.min()) / dy)) + 1
    same_step = (sx_h is None or dx == sx_h) and (sy_h is None or dy == sy_h)
    use_header = declared.shape is not None and declared.kind != "hexagonal" and same_step and _fits(data_rows, data_cols, declared.shape, n)
    rows, cols = declared.shape if use_header else (data_rows, data_cols)  # type: ignore[misc]
    if rows * cols > 100 * n + 10_000:
        raise error(
            f"{fname}: the {n} points spread over {data_rows} x {data_cols} positions of a {dy:g} x {dx:g} µm grid: "
            f"their X/Y coordinates do not form a map"
        )
    c, x0, fx, off_x = _axis(x, dx, cols if use_header else None, tol, on_x)
    r, y0, fy, off_y = _axis(y, dy, rows if use_header else None, tol, on_y)
    off = (off_x > tol) | (off_y > tol) | (c < 0) | (c >= cols) | (r < 0) | (r >= rows)
    if int((~off).sum()) * 2 < n:
        raise error(
            f"{fname}: the point coordinates do not form a grid: only {int((~off).sum())} of {n} points lie on a "
            f"{dy:g} x {dx:g} µm grid{' (header: ' + declared.text + ')' if declared.text else ''}"
        )
    _drop_off_grid(off, x=x, y=y, where=where, notes=notes, grid=f"{dy:g} x {dx:g} µm grid")
    keep = _drop_repeats(r * cols + c, ~off, x=x, y=y, where=where, notes=notes)
    if declared.kind == "square" and not use_header and declared.shape is not None and (declared.shape != (rows, cols) or not same_step):
        subsampled = not same_step and sx_h is not None and abs(dx / sx_h - round(dx / sx_h)) < 1e-3 and dx > sx_h
        notes.append(_header_disagrees(declared, f"{rows} rows x {cols} columns", (dy, dx), subsampled=subsampled))
    elif declared.kind == "square" and not same_step:
        notes.append(_header_disagrees(declared, f"{rows} rows x {cols} columns", (dy, dx), subsampled=False))
    rr, cc = np.divmod(np.arange(rows * cols), cols)
    return _Placement(
        "square", (rows, cols), (dy, dx), target=(r * cols + c)[keep], keep=keep, r=r, c=c,
        x=np.round(x0 + cc * fx, 10), y=np.round(y0 + rr * fy, 10),
    )  # fmt: skip


def _place_hexagonal(
    x: np.ndarray, y: np.ndarray, *, declared: _Declared, hex_steps: tuple[float, float], where: np.ndarray, notes: list[str], fname: str, error: type[Exception]
) -> _Placement:
    n = x.size
    sy_h, sx_h = declared.step
    dx = _step_of(hex_steps[1], sx_h)
    dy = _step_of(hex_steps[0], sy_h if declared.kind == "hexagonal" else None)
    tol = _tolerance(dx)
    on_y = _on_lattice(y, _precise(y, dy, tol), tol)
    ys = y[on_y] if on_y.any() else y
    data_rows = int(round((ys.max() - ys.min()) / dy)) + 1
    r, y0, fy, off_y = _axis(y, dy, None, tol, on_y)
    even, odd = (r % 2) == 0, (r % 2) == 1
    start = [float(x[even].min()) if even.any() else float(x.min()) - dx / 2, float(x[odd].min()) if odd.any() else float(x.min()) + dx / 2]
    x_start = np.where(even, start[0], start[1])
    c = np.rint((x - x_start) / dx).astype(np.int64)
    off_x = np.abs(x - (x_start + c * dx))
    data_ncols = (int(c[even].max()) + 1 if even.any() else 0, int(c[odd].max()) + 1 if odd.any() else 0)
    counts = (max(data_ncols[0], 1), max(data_ncols[1], 1))
    rows = data_rows
    header_counts = declared.hex_ncols
    if header_counts is not None and declared.shape is not None:
        same_step = dx == sx_h and (declared.kind != "hexagonal" or dy == sy_h)
        whole = (data_ncols[0] == header_counts[0] and data_ncols[1] in (0, header_counts[1])) or (
            data_rows == 1 and data_ncols[0] <= header_counts[0]
        )
        size = declared.shape[0] * max(header_counts)
        if same_step and whole and data_rows <= declared.shape[0] and size <= 100 * n + 10_000:
            counts, rows = header_counts, declared.shape[0]
        elif declared.kind == "hexagonal":
            notes.append(_header_disagrees(declared, f"{data_rows} rows of {data_ncols[0]}/{data_ncols[1]} points", (dy, dx), subsampled=not same_step))
    if data_ncols[1] == 0 and rows > 1:
        counts = (counts[0], counts[0] - 1 if start[1] > start[0] else counts[0])
    per_row = np.where(np.arange(rows) % 2 == 0, counts[0], counts[1])
    offset = np.concatenate([[0], np.cumsum(per_row)])
    off = (off_y > tol) | (off_x > tol) | (c < 0) | (r >= rows) | (c >= np.where(even, counts[0], counts[1]))
    if int((~off).sum()) * 2 < n:
        raise error(f"{fname}: the point coordinates do not form a grid: only {int((~off).sum())} of {n} points lie on a hexagonal grid of step {dx:g} µm")
    _drop_off_grid(off, x=x, y=y, where=where, notes=notes, grid=f"hexagonal grid of step {dx:g} µm")
    flat = np.where(off, 0, offset[np.clip(r, 0, rows - 1)] + c)
    keep = _drop_repeats(flat, ~off, x=x, y=y, where=where, notes=notes)
    n_pos = int(offset[-1])
    rr = np.repeat(np.arange(rows), per_row)
    cc = np.arange(n_pos) - offset[rr]
    gx = np.where(rr % 2 == 0, start[0], start[1]) + cc * dx
    return _Placement(
        "hexagonal", (rows, int(max(counts))), (dy, dx), target=flat[keep], keep=keep, r=r, c=c,
        x=np.round(gx.astype(np.float64), 10), y=np.round(y0 + rr * fy, 10),
        hex_ncols=(int(counts[0]), int(counts[1]) if rows > 1 else int(counts[0])),
    )  # fmt: skip
