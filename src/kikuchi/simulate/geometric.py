"""Geometric simulation: Kikuchi band centre lines and zone axes on the detector, for overlays.

The centre line of the band of lattice plane (hkl) is the trace of the plane
through the source point: the gnomonic projection of the great circle normal
to the plane normal n. The detector maps pixels p = (col, row, 1) linearly to
directions H p in the sample frame (:meth:`kikuchi.geometry.Detector.pixel_matrix`),
so the trace is the straight line

    (H^T n) . p = 0,

with n = g^T n_crystal the plane normal in the sample frame (g: orientation matrix). A
zone axis [uvw] (the direction shared by the planes of a zone) projects to
the point where that direction meets the screen.

Coordinates returned are pixel (x = column, y = row), pixel centres at
integers, ready for ``matplotlib``'s ``plot`` over ``imshow``.
"""

from __future__ import annotations

from math import gcd
from typing import Any

import numpy as np

from kikuchi.geometry.detector import Detector, line_segment_in_pattern
from kikuchi.geometry.orientation import euler_to_matrix

__all__ = ["band_lines", "zone_axes"]


def _hkl_and_normals(reflectors: Any, direct_matrix: Any) -> tuple[np.ndarray, np.ndarray]:
    """(n, 3) int Miller indices and (n, 3) unit Cartesian plane normals."""
    if hasattr(reflectors, "hkl") and hasattr(reflectors, "normals"):
        hkl = np.asarray(reflectors.hkl)
        normals = np.asarray(reflectors.normals, dtype=np.float64)
    else:
        hkl = np.atleast_2d(np.asarray(reflectors))
        if hkl.ndim != 2 or hkl.shape[1] != 3:
            raise ValueError(f"reflectors must be a kikuchi.crystal.Reflectors or (n, 3) Miller indices, got shape {hkl.shape}")
        if direct_matrix is None:
            raise ValueError("plain Miller indices need direct_matrix= (rows a, b, c in the Cartesian crystal frame, e.g. phase.direct_matrix)")
        a = np.asarray(direct_matrix, dtype=np.float64)
        if a.shape != (3, 3):
            raise ValueError(f"direct_matrix must be 3 x 3 (rows a, b, c), got shape {a.shape}")
        normals = hkl.astype(np.float64) @ np.linalg.inv(a).T
    norm = np.linalg.norm(normals, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("reflector (0 0 0) has no plane normal")
    return hkl, normals / norm


def _direct_matrix_of(reflectors: Any, direct_matrix: Any) -> np.ndarray | None:
    if direct_matrix is not None:
        return np.asarray(direct_matrix, dtype=np.float64)
    phase = getattr(reflectors, "phase", None)
    if phase is not None and hasattr(phase, "direct_matrix"):
        return np.asarray(phase.direct_matrix, dtype=np.float64)
    return None


def band_lines(
    detector: Detector,
    euler_rad: Any,
    reflectors: Any,
    *,
    index: Any = None,
    direct_matrix: Any = None,
) -> list[tuple[tuple[int, ...], tuple[float, float, float, float]]]:
    """Centre lines of the Kikuchi bands visible on the detector.

    Parameters
    ----------
    detector
        Detector geometry.
    euler_rad
        (3,) Bunge Euler angles in radians of the pattern's orientation.
    reflectors
        A :class:`kikuchi.crystal.Reflectors`, or (n, 3) Miller indices with
        ``direct_matrix``.
    index
        Which pattern centre of a multi-PC detector (flat index into
        ``detector.pc_flat``, row * cols + col for a map, or (row, col)).
    direct_matrix
        (3, 3) rows a, b, c of the unit cell in the Cartesian crystal frame
        (:attr:`kikuchi.crystal.Phase.direct_matrix`); needed for plain hkl.

    Returns
    -------
    list of (hkl, (x0, y0, x1, y1))
        One entry per reflector whose trace crosses the pattern: Miller
        indices as a tuple and the end points (column, row) on the border.

    Examples
    --------
    >>> det = Detector((60, 60), (0.5, 0.5, 0.5))
    >>> lines = band_lines(det, [0.0, 0.0, 0.0], [[1, 0, 0], [0, 1, 0]], direct_matrix=np.eye(3))
    >>> [hkl for hkl, _ in lines]
    [(1, 0, 0), (0, 1, 0)]
    """
    hkl, normals = _hkl_and_normals(reflectors, direct_matrix)
    h, w = detector.shape
    g = euler_to_matrix(np.asarray(euler_rad, dtype=np.float64).reshape(3))
    n_sample = normals @ g  # g^T n_c, as rows
    # the trace n_s . (H p) = 0 of pixels p = (col, row, 1) is the line (H^T n_s) . p = 0
    lines = n_sample @ detector.pixel_matrix(index, frame="sample")
    out = []
    for k in range(len(hkl)):
        a, b, c = lines[k]
        seg = line_segment_in_pattern(a, b, c, (h, w))
        if seg is not None:
            out.append((tuple(int(v) for v in hkl[k]), seg))
    return out


def _reduce(v: np.ndarray) -> tuple[int, int, int]:
    d = 0
    for x in v:
        d = gcd(d, int(abs(x)))
    v = v // d if d else v
    # canonical sign: first non-zero component positive
    nz = v[np.flatnonzero(v)[0]] if np.any(v) else 1
    return tuple(int(x) for x in (v if nz > 0 else -v))  # type: ignore[return-value]


def zone_axes(
    detector: Detector,
    euler_rad: Any,
    reflectors: Any = None,
    *,
    uvw: Any = None,
    index: Any = None,
    direct_matrix: Any = None,
    max_index: int = 3,
    n_reflectors: int = 30,
) -> list[tuple[tuple[int, int, int], tuple[float, float]]]:
    """Zone axes [uvw] visible on the detector.

    Parameters
    ----------
    detector, euler_rad, index, direct_matrix
        As for :func:`band_lines`.
    reflectors
        Zone axes are the cross products of pairs of the first
        ``n_reflectors`` reflectors (reduced, components up to ``max_index``).
    uvw
        Or the zone axes (n, 3) directly.

    Returns
    -------
    list of (uvw, (x, y))
        Each zone axis whose direction (or its opposite) meets the screen
        inside the pattern, with its pixel position (column, row).

    Examples
    --------
    >>> det = Detector((60, 60), (0.5, 0.5, 0.5))
    >>> zone_axes(det, [0.0, 0.0, 0.0], uvw=[[1, 0, 0]], direct_matrix=np.eye(3))  # [100] at 70 deg from the PC
    []
    >>> # [103] is 1.6 deg from the screen normal (sample tilt 70 deg): just above the PC
    >>> [(uvw, (round(x, 3), round(y, 3))) for uvw, (x, y) in zone_axes(det, [0.0, 0.0, 0.0], uvw=[[1, 0, 3]], direct_matrix=np.eye(3))]
    [((1, 0, 3), (29.5, 28.68))]
    """
    a = _direct_matrix_of(reflectors, direct_matrix)
    if uvw is None:
        if reflectors is None:
            raise ValueError("zone_axes needs reflectors or uvw=")
        hkl, _ = _hkl_and_normals(reflectors, direct_matrix)
        hkl = hkl[:n_reflectors]
        seen: set[tuple[int, int, int]] = set()
        axes = []
        for i in range(len(hkl)):
            for j in range(i + 1, len(hkl)):
                v = np.cross(hkl[i], hkl[j])
                if not np.any(v):
                    continue
                r = _reduce(v)
                if max(abs(x) for x in r) <= max_index and r not in seen:
                    seen.add(r)
                    axes.append(r)
        uvw_arr = np.array(axes, dtype=np.int64).reshape(-1, 3)
    else:
        uvw_arr = np.atleast_2d(np.asarray(uvw)).astype(np.int64)
        if uvw_arr.shape[1] != 3:
            raise ValueError(f"uvw must have shape (n, 3), got {uvw_arr.shape}")
    if a is None:
        raise ValueError("zone axes need the lattice: pass Reflectors with a phase, or direct_matrix=")
    dirs = uvw_arr.astype(np.float64) @ a  # rows: Cartesian crystal directions
    g = euler_to_matrix(np.asarray(euler_rad, dtype=np.float64).reshape(3))
    sample = dirs @ g  # g^T d as rows
    out = []
    for k in range(len(uvw_arr)):
        for sign in (1.0, -1.0):
            row, col, visible = detector.project(sign * sample[k], index=index)
            if bool(visible):
                u = uvw_arr[k] if sign > 0 else -uvw_arr[k]
                out.append((tuple(int(x) for x in u), (float(col), float(row))))
    return out
