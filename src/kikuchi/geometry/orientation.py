"""Orientations: Bunge Euler angles and the sample <-> crystal transformation.

The one place where the orientation convention lives. Euler angles are Bunge
(phi1, Phi, phi2, rotations about z, x', z''), *passive*: the orientation
matrix ``g`` takes the components of a direction in the sample frame to its
components in the crystal frame,

    v_crystal = g @ v_sample,      v_sample = g.T @ v_crystal,

with ``g = Rz(phi2) Rx(Phi) Rz(phi1)`` of passive (frame) rotations. This is
the convention of orix (``Rotation.from_euler(euler).to_matrix()`` is ``g``),
EDAX, Oxford, Bruker and EMsoft; a test compares with orix and another shows
that real Ni patterns are matched at their reference orientations.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "axis_angle_matrix",
    "crystal_to_sample",
    "euler_to_matrix",
    "matrix_to_euler",
    "sample_to_crystal",
]


def euler_to_matrix(euler_rad: Any) -> np.ndarray:
    """Orientation matrices ``g`` (sample -> crystal) of Bunge Euler angles.

    Parameters
    ----------
    euler_rad
        (..., 3) angles (phi1, Phi, phi2) in radians.

    Returns
    -------
    numpy.ndarray
        (..., 3, 3) float64.

    Examples
    --------
    >>> g = euler_to_matrix([np.pi / 2, 0, 0])
    >>> (g @ [1.0, 0, 0]).round(12).tolist()  # sample x seen from a crystal turned by 90 deg about z
    [0.0, -1.0, 0.0]
    """
    e = np.asarray(euler_rad, dtype=np.float64)
    if e.ndim == 0 or e.shape[-1] != 3:
        raise ValueError(f"Euler angles must have 3 values (phi1, Phi, phi2) in the last axis, got shape {e.shape}")
    c1, s1 = np.cos(e[..., 0]), np.sin(e[..., 0])
    c, s = np.cos(e[..., 1]), np.sin(e[..., 1])
    c2, s2 = np.cos(e[..., 2]), np.sin(e[..., 2])
    g = np.empty((*e.shape[:-1], 3, 3))
    g[..., 0, 0] = c1 * c2 - s1 * s2 * c
    g[..., 0, 1] = s1 * c2 + c1 * s2 * c
    g[..., 0, 2] = s2 * s
    g[..., 1, 0] = -c1 * s2 - s1 * c2 * c
    g[..., 1, 1] = -s1 * s2 + c1 * c2 * c
    g[..., 1, 2] = c2 * s
    g[..., 2, 0] = s1 * s
    g[..., 2, 1] = -c1 * s
    g[..., 2, 2] = c
    return g


def matrix_to_euler(g: Any) -> np.ndarray:
    """Bunge Euler angles (radians, phi1 and phi2 in [0, 2 pi), Phi in [0, pi]) of orientation matrices.

    Examples
    --------
    >>> e = np.array([0.3, 0.7, 5.1])
    >>> np.allclose(matrix_to_euler(euler_to_matrix(e)), e)
    True
    """
    g = np.asarray(g, dtype=np.float64)
    if g.shape[-2:] != (3, 3):
        raise ValueError(f"orientation matrices must have shape (..., 3, 3), got {g.shape}")
    phi = np.arccos(np.clip(g[..., 2, 2], -1.0, 1.0))
    general = np.abs(np.sin(phi)) > 1e-9
    phi1 = np.where(general, np.arctan2(g[..., 2, 0], -g[..., 2, 1]), np.arctan2(g[..., 0, 1], g[..., 0, 0]))
    phi2 = np.where(general, np.arctan2(g[..., 0, 2], g[..., 1, 2]), 0.0)
    out = np.stack([np.mod(phi1, 2 * np.pi), phi, np.mod(phi2, 2 * np.pi)], axis=-1)
    out[..., 0][out[..., 0] >= 2 * np.pi] = 0.0
    out[..., 2][out[..., 2] >= 2 * np.pi] = 0.0
    return out


def axis_angle_matrix(axis: Any, angle_rad: Any) -> np.ndarray:
    """Active rotation matrices by ``angle_rad`` about ``axis`` (right-hand rule).

    Parameters
    ----------
    axis
        (..., 3) rotation axes (need not be unit vectors).
    angle_rad
        Angles in radians, broadcast against the leading axes of ``axis``.

    Returns
    -------
    numpy.ndarray
        (..., 3, 3) float64.

    Examples
    --------
    >>> (axis_angle_matrix([0, 0, 1], np.pi / 2) @ [1.0, 0, 0]).round(12).tolist()
    [0.0, 1.0, 0.0]
    >>> axis_angle_matrix([[1, 0, 0], [0, 2, 0]], [0.1, 0.2]).shape
    (2, 3, 3)
    """
    u = np.asarray(axis, dtype=np.float64)
    norm = np.linalg.norm(u, axis=-1, keepdims=True) if u.ndim else np.zeros(1)
    if u.ndim == 0 or u.shape[-1] != 3 or np.any(norm == 0):
        raise ValueError(f"rotation axis must be a non-zero 3-vector, got {axis!r}")
    u = u / norm
    angle = np.asarray(angle_rad, dtype=np.float64)
    c, s = np.cos(angle)[..., None, None], np.sin(angle)[..., None, None]
    k = np.zeros((*u.shape[:-1], 3, 3))
    k[..., 0, 1], k[..., 0, 2] = -u[..., 2], u[..., 1]
    k[..., 1, 0], k[..., 1, 2] = u[..., 2], -u[..., 0]
    k[..., 2, 0], k[..., 2, 1] = -u[..., 1], u[..., 0]
    return c * np.eye(3) + s * k + (1 - c) * u[..., :, None] * u[..., None, :]


def _apply(g: np.ndarray, vectors: Any) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim == 0 or v.shape[-1] != 3:
        raise ValueError(f"vectors must have a last axis of length 3, got shape {v.shape}")
    if g.ndim == 2:
        return v @ g.T
    # one matrix per leading index: g (n, 3, 3), v (n, ..., 3)
    if v.shape[0] != g.shape[0]:
        raise ValueError(f"{g.shape[0]} orientations for vectors of shape {v.shape}: the first axes must agree")
    flat = v.reshape(v.shape[0], -1, 3)
    return np.einsum("nij,nkj->nki", g, flat).reshape(v.shape)


def sample_to_crystal(vectors: Any, euler_rad: Any) -> np.ndarray:
    """Directions in the sample frame -> the same directions in the crystal frame.

    Parameters
    ----------
    vectors
        (..., 3) in the sample frame.
    euler_rad
        (3,) one orientation for all vectors, or (n, 3) with vectors (n, ..., 3).

    Returns
    -------
    numpy.ndarray
        (..., 3) crystal-frame components, ``g @ v``.

    Examples
    --------
    >>> sample_to_crystal([0.0, 0, 1], [0.0, np.pi / 2, 0]).round(12).tolist()
    [0.0, 1.0, 0.0]
    """
    return _apply(euler_to_matrix(euler_rad), vectors)


def crystal_to_sample(vectors: Any, euler_rad: Any) -> np.ndarray:
    """Directions in the crystal frame -> sample frame (``g.T @ v``); see :func:`sample_to_crystal`.

    Examples
    --------
    >>> v = np.array([0.2, -0.5, 0.84])
    >>> np.allclose(crystal_to_sample(sample_to_crystal(v, [1.0, 0.5, 2.0]), [1.0, 0.5, 2.0]), v)
    True
    """
    return _apply(np.swapaxes(euler_to_matrix(euler_rad), -1, -2), vectors)
