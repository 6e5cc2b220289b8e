"""From detected bands to plane normals in the sample frame.

The gnomonic projection maps homogeneous pixel coordinates ``(col, row, 1)``
linearly to (unnormalised) directions from the source point: ``u = M p``.
A band centre line ``l . p = 0`` is the trace of the plane through the
source with normal ``n = inv(M).T l`` in the sample frame. ``M`` is the
detector's :meth:`~kikuchi.geometry.Detector.pixel_matrices` (the one place
where the geometry conventions live), so nothing here depends on a PC
convention. :func:`homography_from_directions` estimates ``M`` from any
field of pixel directions (a check, or a detector model of one's own).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kikuchi.index import _kernels as K

__all__ = ["homography_from_directions", "detector_homographies", "band_normals"]


def homography_from_directions(directions: np.ndarray) -> np.ndarray:
    """The 3 x 3 matrix ``M`` with ``directions[row, col] ~ M @ (col, row, 1)`` (up to scale).

    Solved by the direct linear transform on a grid of pixels.

    Examples
    --------
    >>> m = np.array([[1.0, 0, -4.5], [0, -1.0, 3.0], [0.2, 0.1, 6.0]])
    >>> rows, cols = np.mgrid[:8, :10]
    >>> d = np.einsum("ij,rcj->rci", m, np.stack([cols, rows, np.ones_like(rows)], -1).astype(float))
    >>> d /= np.linalg.norm(d, axis=-1, keepdims=True)
    >>> est = homography_from_directions(d)
    >>> bool(np.allclose(est / est[2, 2], m / m[2, 2]))
    True
    """
    d = np.asarray(directions, dtype=np.float64)
    if d.ndim != 3 or d.shape[2] != 3:
        raise ValueError(f"homography_from_directions: expected (h, w, 3) directions, got shape {d.shape}")
    h, w = d.shape[:2]
    rr = np.unique(np.linspace(0, h - 1, 5).round().astype(int))
    cc = np.unique(np.linspace(0, w - 1, 5).round().astype(int))
    r, c = np.meshgrid(rr, cc, indexing="ij")
    p = np.stack([c.ravel(), r.ravel(), np.ones(r.size)], axis=1).astype(np.float64)
    v = d[r.ravel(), c.ravel()]
    # v x (M p) = 0 : two independent rows per point, linear in the 9 entries of M
    rows = []
    for pi, vi in zip(p, v):
        z = np.zeros(3)
        rows.append(np.concatenate([z, -vi[2] * pi, vi[1] * pi]))
        rows.append(np.concatenate([vi[2] * pi, z, -vi[0] * pi]))
        rows.append(np.concatenate([-vi[1] * pi, vi[0] * pi, z]))
    _, _, vt = np.linalg.svd(np.array(rows))
    m = vt[-1].reshape(3, 3)
    # orient M so that directions point towards the detector (as given)
    centre = m @ np.array([(w - 1) / 2.0, (h - 1) / 2.0, 1.0])
    if centre @ d[h // 2, w // 2] < 0:
        m = -m
    return m


def detector_homographies(detector: Any, n_points: int | None = None) -> np.ndarray:
    """``inv(M).T`` for the detector: (3, 3) for one PC, (N, 3, 3) for a PC per map point.

    ``detector`` is a :class:`kikuchi.geometry.Detector`; ``M`` is its
    :meth:`~kikuchi.geometry.Detector.pixel_matrices` in the sample frame.
    ``n_points`` is the number of map points when the PC varies.

    Examples
    --------
    >>> from kikuchi.geometry import Detector
    >>> det = Detector((60, 80), (0.4, 0.2, 0.6))
    >>> m = np.linalg.inv(detector_homographies(det)).T
    >>> u = m @ [20.0, 10.0, 1.0]
    >>> bool(np.allclose(u / np.linalg.norm(u), det.pixel_directions()[10, 20]))
    True
    """
    m = detector.pixel_matrices(frame="sample")
    n = m.shape[0]
    if n == 1:
        return np.linalg.inv(m[0]).T
    if n_points is not None and n != n_points:
        raise ValueError(f"detector has {n} pattern centres for {n_points} map points")
    return np.swapaxes(np.linalg.inv(m), -1, -2)


def band_normals(table: np.ndarray, minv_t: np.ndarray, shape: tuple[int, int]) -> list[np.ndarray]:
    """Unit plane normals (sample frame) of band tables (n, n_bands, 6) through ``inv(M).T`` (3, 3) or (n, 3, 3)."""
    table = np.asarray(table, dtype=np.float64)
    if table.ndim == 2:
        table = table[None]
    if table.ndim != 3 or table.shape[2] != 6:
        raise ValueError(f"band_normals: expected band tables (n_bands, 6) or (n, n_bands, 6), got shape {table.shape}")
    if len(shape) != 2:
        raise ValueError(f"band_normals: the pattern shape must be (h, w), got {tuple(shape)}")
    minv_t = np.asarray(minv_t, dtype=np.float64)
    if minv_t.shape[-2:] != (3, 3) or minv_t.ndim not in (2, 3) or (minv_t.ndim == 3 and len(minv_t) != len(table)):
        raise ValueError(f"band_normals: expected one homography (3, 3) or one per table ({len(table)}, 3, 3), got shape {minv_t.shape}")
    h, w = shape
    out = []
    buf = np.empty((table.shape[1], 3))
    for i in range(table.shape[0]):
        m = minv_t if minv_t.ndim == 2 else minv_t[i]
        k = K._band_normals(table[i], m, (w - 1) / 2.0, (h - 1) / 2.0, buf)
        out.append(buf[:k].copy())
    return out
