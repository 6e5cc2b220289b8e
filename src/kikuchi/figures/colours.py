"""Colours of orientation maps: IPF colours (orix TSL key), its key image, phases, Euler angles.

Not-indexed points are black in every colouring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["euler_rgb", "ipf_colours", "ipf_key_image", "ipf_rgb", "phase_colours", "phase_rgb", "point_group_symmetry"]

#: Phase colours (matplotlib tab10), phase 1 first.
_PHASE_COLOURS = (
    (0.122, 0.467, 0.706),
    (1.000, 0.498, 0.055),
    (0.173, 0.627, 0.173),
    (0.839, 0.153, 0.157),
    (0.580, 0.404, 0.741),
    (0.549, 0.337, 0.294),
    (0.890, 0.467, 0.761),
    (0.498, 0.498, 0.498),
    (0.737, 0.741, 0.133),
    (0.090, 0.745, 0.812),
)


def point_group_symmetry(phase: Any) -> Any:
    """The orix point group ``Symmetry`` of a phase description.

    ``phase`` may be an orix ``Symmetry`` or ``Phase``, a
    :class:`kikuchi.io.orientation_map.PhaseInfo`, a kikuchi.crystal phase
    (anything with a ``point_group`` attribute), a map file phase dict, or a
    point group symbol such as ``'m-3m'``.
    """
    from orix.crystal_map import Phase
    from orix.quaternion import Symmetry

    if isinstance(phase, Symmetry):
        return phase
    if isinstance(phase, Mapping):
        from kikuchi.io.orientation_map import PhaseInfo

        phase = PhaseInfo.from_map_phase(phase)
    pg = getattr(phase, "point_group", phase)
    if isinstance(pg, Symmetry):
        return pg
    if pg is None:
        raise ValueError(f"phase {getattr(phase, 'name', phase)!r} has no point group; IPF colours need one")
    symmetry = Phase(point_group=str(pg)).point_group
    if symmetry is None:
        raise ValueError(f"unknown point group {pg!r}")
    return symmetry


def _phase_id(phase: Any) -> int:
    """The id of a phase object (``.id``) or map file phase dict (``["id"]``)."""
    return int(phase["id"] if isinstance(phase, Mapping) else phase.id)


def _direction(direction: str | Sequence[float]) -> Any:
    from orix.vector import Vector3d

    if isinstance(direction, str):
        axes = {"x": (1.0, 0.0, 0.0), "y": (0.0, 1.0, 0.0), "z": (0.0, 0.0, 1.0)}
        key = direction.lower().removeprefix("ipf-")
        if key not in axes:
            raise ValueError(f"IPF direction must be 'x', 'y', 'z' or a vector, not {direction!r}")
        return Vector3d(axes[key])
    return Vector3d(np.asarray(direction, dtype=np.float64))


#: Points coloured at a time by :func:`ipf_colours` (bounds orix's memory to about 80 MiB).
_IPF_BLOCK = 65_536


def ipf_colours(orientations: Any, phase: Any, direction: str | Sequence[float] = "z") -> np.ndarray:
    """IPF colours (orix ``IPFColorKeyTSL``) of orientations of one phase.

    Parameters
    ----------
    orientations
        (N, 3) Bunge Euler angles in radians, or an orix ``Rotation``/``Orientation``.
    phase
        The phase or its point group (see :func:`point_group_symmetry`).
    direction
        Sample direction shown: ``'x'``, ``'y'``, ``'z'`` or a vector.

    Returns
    -------
    np.ndarray
        (N, 3) RGB in 0..1.

    Examples
    --------
    >>> import numpy as np
    >>> ipf_colours(np.zeros((1, 3)), "m-3m").round(3).tolist()  # [001] || z: red
    [[1.0, 0.0, 0.0]]
    """
    from orix.plot import IPFColorKeyTSL
    from orix.quaternion import Orientation, Rotation

    symmetry = point_group_symmetry(phase)
    if isinstance(orientations, Rotation):
        quats = orientations.data.reshape(-1, 4)
        n = len(quats)

        def block(a: int, b: int) -> Any:
            return Orientation(quats[a:b], symmetry=symmetry)
    else:
        euler = np.asarray(orientations, dtype=np.float64).reshape(-1, 3)
        n = len(euler)

        def block(a: int, b: int) -> Any:
            return Orientation.from_euler(euler[a:b], symmetry=symmetry)
    key = IPFColorKeyTSL(symmetry, direction=_direction(direction))
    out = np.zeros((n, 3))
    # in blocks: orix holds every symmetry-equivalent direction of every point
    # (48 x 3 float64 each for m-3m: 2.5 GB for a map of 2,000,000 points)
    for start in range(0, n, _IPF_BLOCK):
        stop = min(n, start + _IPF_BLOCK)
        out[start:stop] = np.asarray(key.orientation2color(block(start, stop)), dtype=np.float64).reshape(-1, 3)
    return out


def ipf_rgb(euler: np.ndarray, phase_id: np.ndarray, phases: Sequence[Any], *, direction: str | Sequence[float] = "z") -> np.ndarray:
    """IPF colours of a multi-phase map: each phase with its own symmetry, not indexed black.

    Parameters
    ----------
    euler
        (..., 3) Euler angles in radians.
    phase_id
        (...) phase ids (0: not indexed).
    phases
        Phases with an ``id`` (PhaseInfo, map file dicts).
    direction
        Sample direction.

    Returns
    -------
    np.ndarray
        (..., 3) RGB in 0..1.
    """
    euler = np.asarray(euler, dtype=np.float64)
    pid = np.asarray(phase_id)
    flat_e = euler.reshape(-1, 3)
    flat_p = pid.reshape(-1)
    out = np.zeros((flat_p.size, 3))
    for phase in phases:
        ident = _phase_id(phase)
        sel = (flat_p == ident) & np.isfinite(flat_e).all(axis=1)
        if sel.any():
            out[sel] = ipf_colours(flat_e[sel], phase, direction)
    return out.reshape(*pid.shape, 3)


def ipf_key_image(phase: Any, *, size: int = 400) -> np.ndarray:
    """The IPF colour key of a phase: its fundamental sector in stereographic projection.

    Returns
    -------
    np.ndarray
        (h, w, 4) RGBA in 0..1, transparent outside the sector.
    """
    from orix.plot import IPFColorKeyTSL
    from orix.vector import Vector3d

    symmetry = point_group_symmetry(phase)
    key = IPFColorKeyTSL(symmetry)
    laue = key.symmetry
    t = np.linspace(-1.0, 1.0, size)
    X, Y = np.meshgrid(t, -t)
    r2 = X**2 + Y**2
    disk = r2 <= 1.0
    v = np.stack([2 * X, 2 * Y, 1 - r2], axis=-1)[disk] / (1 + r2[disk])[:, None]
    vec = Vector3d(v)
    inside_v = vec.in_fundamental_sector(laue)
    inside = np.linalg.norm(inside_v.data - v, axis=1) < 1e-6
    colours = np.asarray(key.direction_color_key.direction2color(vec[inside]), dtype=np.float64).reshape(-1, 3)
    rgba = np.zeros((size, size, 4))
    idx = np.flatnonzero(disk)[inside]
    flat = rgba.reshape(-1, 4)
    flat[idx, :3] = colours
    flat[idx, 3] = 1.0
    rows = np.flatnonzero(rgba[..., 3].any(axis=1))
    cols = np.flatnonzero(rgba[..., 3].any(axis=0))
    pad = 2
    return rgba[max(rows[0] - pad, 0) : rows[-1] + pad + 1, max(cols[0] - pad, 0) : cols[-1] + pad + 1]


def phase_colours(phases: Sequence[Any]) -> dict[int, tuple[float, float, float]]:
    """A colour per phase id (tab10 order), 0 (not indexed) black."""
    out: dict[int, tuple[float, float, float]] = {0: (0.0, 0.0, 0.0)}
    for k, phase in enumerate(phases):
        ident = _phase_id(phase)
        out[ident] = _PHASE_COLOURS[k % len(_PHASE_COLOURS)]
    return out


def phase_rgb(phase_id: np.ndarray, phases: Sequence[Any]) -> tuple[np.ndarray, list[tuple[str, tuple[float, float, float]]]]:
    """A phase map as RGB and its legend (label, colour) for :func:`save_map_image`.

    Examples
    --------
    >>> rgb, legend = phase_rgb(np.array([[0, 1]]), [{"id": 1, "name": "Ni"}])
    >>> rgb[0, 0].tolist(), [label for label, _ in legend]
    ([0.0, 0.0, 0.0], ['not indexed', 'Ni'])
    """
    colours = phase_colours(phases)
    pid = np.asarray(phase_id)
    rgb = np.zeros((*pid.shape, 3))
    for ident, colour in colours.items():
        rgb[pid == ident] = colour
    legend: list[tuple[str, tuple[float, float, float]]] = []
    if (pid == 0).any():
        legend.append(("not indexed", colours[0]))
    for phase in phases:
        ident = _phase_id(phase)
        name = phase.get("name", f"phase {ident}") if isinstance(phase, Mapping) else phase.name
        legend.append((str(name), colours[ident]))
    return rgb, legend


def euler_rgb(euler: np.ndarray, phase_id: np.ndarray | None = None) -> np.ndarray:
    """Euler colouring: red = phi1 / 360°, green = Phi / 180°, blue = phi2 / 360°.

    The full Bunge ranges are used (no symmetry reduction), so the colours
    show the angles as stored. Not-indexed points (``phase_id == 0``) are black.
    """
    euler = np.asarray(euler, dtype=np.float64)
    rgb = np.stack([np.mod(euler[..., 0], 2 * np.pi) / (2 * np.pi), np.clip(euler[..., 1] / np.pi, 0, 1), np.mod(euler[..., 2], 2 * np.pi) / (2 * np.pi)], axis=-1)
    rgb = np.nan_to_num(rgb)
    if phase_id is not None:
        rgb[np.asarray(phase_id) == 0] = 0.0
    return rgb
