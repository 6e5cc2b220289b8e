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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "GRID_KINDS",
    "OrientationMap",
    "OrientationMapError",
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


def read_orientation_map(path: str | os.PathLike, *, format: str | None = None) -> OrientationMap:
    """Read an orientation map (Oxford CTF, EDAX/TSL ANG or kikuchi HDF5) by extension, then content.

    Parameters
    ----------
    path
        The file.
    format
        ``'ctf'``, ``'ang'`` or ``'h5'`` to skip detection.

    Raises
    ------
    kikuchi.io.ctf.CtfFormatError, kikuchi.io.ang.AngFormatError
        Malformed files, naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    return _plugin_for(path, format=format, need="reads").read(path)


def write_orientation_map(omap: OrientationMap, path: str | os.PathLike, *, format: str | None = None) -> Path:
    """Write an orientation map to a CTF, ANG or HDF5 file by extension (atomic: temporary name, then rename)."""
    path = Path(path)
    plugin = _plugin_for(path, format=format, need="writes")
    plugin.write(omap, path)
    return path


# --------------------------------------------------------------------------- text tables (shared by the plugins)


def _read_lines(path: Path) -> list[str]:
    """The lines of a vendor text file: UTF-8, or Latin-1 where it is not (older CTF/ANG exports)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        text = path.read_text(encoding="latin-1")
    return text.splitlines()


def _parse_number(text: str) -> int | float | str:
    """A header value as int, float or (when not a number) the text itself."""
    t = text.strip()
    try:
        return int(t)
    except ValueError:
        pass
    try:
        value = float(t)
    except ValueError:
        return t
    return value if math.isfinite(value) else t


def _parse_table(
    lines: list[str],
    *,
    sep: str | None,
    first_line: int,
    names: Sequence[str],
    required: int,
    fname: str,
    error: type[Exception],
    default_count: int | None = None,
) -> tuple[list[np.ndarray | None], int]:
    """Columns of a text table as float arrays (NaN where a field is empty).

    ``lines`` are the data lines, the first at file line ``first_line``,
    fields separated by ``sep`` (None: any whitespace).
    Every line must have the file's column count: ``default_count`` (or
    ``len(names)``) when most lines have it, else the count of most lines
    (a file that consistently leaves trailing columns out). Columns beyond
    a line's end or empty on every line come back as None.
    """
    n = len(lines)
    full = default_count or len(names)
    try:  # fast path: numpy's C parser, when every field is a number
        flat = np.loadtxt(lines, delimiter=sep, comments=None, dtype=np.float64, ndmin=2)
    except ValueError:
        pass
    else:
        if flat.shape[1] >= required and np.isfinite(flat[:, :required]).all():
            return [flat[:, j].copy() for j in range(flat.shape[1])], int(flat.shape[1])
    rows = [ln.split(sep) for ln in lines]
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=n)
    values, freq = np.unique(counts, return_counts=True)
    expected = full if (counts == full).sum() * 2 >= n else int(values[np.argmax(freq)])

    def describe(k: int) -> str:
        shown = list(names[:k]) + [f"column{j + 1}" for j in range(len(names), k)]
        return " ".join(shown)

    bad = np.nonzero(counts != expected)[0]
    if bad.size:
        # a trailing separator leaves empty fields beyond the end: allowed
        keep = [i for i in bad if not (counts[i] > expected and all(f == "" for f in rows[i][expected:]))]
        if keep:
            i = int(keep[0])
            found = int(counts[i]) if rows[i] != [""] and rows[i] != [] else 0
            tail = " (the file ends inside this line: truncated?)" if i == n - 1 and found < expected else ""
            tail = tail or (" (empty line)" if found == 0 else "")
            raise error(f"{fname} line {first_line + i}: expected {expected} columns ({describe(expected)}), found {found}{tail}")
        rows = [r[:expected] for r in rows]
    if expected < required:
        raise error(f"{fname} line {first_line}: expected {full} columns ({describe(full)}), found {expected}")
    out: list[np.ndarray | None] = []
    table = np.array(rows, dtype=str).reshape(n, expected)
    for j in range(expected):
        col = table[:, j]
        name = names[j] if j < len(names) else f"column{j + 1}"
        empty = np.char.str_len(np.char.strip(col)) == 0
        if empty.all() and j >= required:
            out.append(None)
            continue
        if j < required and empty.any():
            i = int(np.argmax(empty))
            raise error(f"{fname} line {first_line + i}: column {name} is empty")
        try:
            arr = np.where(empty, "nan", col).astype(np.float64)
        except ValueError:
            for i, s in enumerate(col):
                try:
                    float(s)
                except ValueError:
                    raise error(f"{fname} line {first_line + i}: column {name}: {s.strip()!r} is not a number") from None
            raise
        if j < required and not np.isfinite(arr).all():
            i = int(np.argmax(~np.isfinite(arr)))
            raise error(f"{fname} line {first_line + i}: column {name}: {col[i].strip()!r} is not a finite number")
        out.append(arr)
    return out, expected


def _as_int(values: np.ndarray, *, name: str, fname: str, first_line: int, error: type[Exception]) -> np.ndarray:
    """Integer column from floats; refuses fractional values."""
    frac = values != np.round(values)
    if frac.any():
        i = int(np.argmax(frac))
        raise error(f"{fname} line {first_line + i}: column {name}: {values[i]:g} is not an integer")
    return values.astype(np.int32)


def _maybe_int(values: np.ndarray) -> np.ndarray:
    """Integer array when every value is a whole number (no NaN), else unchanged."""
    if np.isfinite(values).all() and np.array_equal(values, np.round(values)) and np.abs(values).max(initial=0) < 2**31:
        return values.astype(np.int32)
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


def _gridded_map(
    grid: _Grid,
    *,
    euler: np.ndarray,
    phase_id: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    columns: dict[str, np.ndarray],
    notes: list[str],
    fname: str,
    **fields: Any,
) -> OrientationMap:
    """The OrientationMap of a reader's points on ``grid`` (reordered row-major when needed)."""
    if grid.order is not None:
        notes.append("points were not stored row by row; they are kept row-major")
        o = grid.order
        euler, phase_id, x, y = euler[o], phase_id[o], x[o], y[o]
        columns = {k: v[o] for k, v in columns.items()}
    for note in notes:
        _logger.info("%s: %s", fname, note)
    return OrientationMap(
        euler=euler, phase_id=phase_id, x_um=x, y_um=y, grid=grid.kind, nav_shape=grid.nav_shape,
        step_um=grid.step_um, columns=columns, hex_ncols=grid.hex_ncols, notes=notes, **fields,
    )  # fmt: skip
