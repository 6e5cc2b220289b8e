"""Projection of a master pattern onto the detector for many orientations.

Layering: the numba kernel :func:`kikuchi.simulate._kernels.project_pc_many`
fills one block of patterns (the GIL released); :func:`project_patterns`
checks inputs and spreads blocks over threads.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from kikuchi._cpus import available_cpus
from kikuchi.geometry.detector import Detector
from kikuchi.geometry.orientation import euler_to_matrix
from kikuchi.simulate import _kernels
from kikuchi.simulate.master import MasterPattern

__all__ = ["project_patterns"]

_logger = logging.getLogger(__name__)


def _pc_index(detector: Detector, n: int, pc_index: Any) -> np.ndarray:
    if pc_index is not None:
        idx = np.asarray(pc_index, dtype=np.int64).reshape(-1)
        if idx.size != n:
            raise ValueError(f"pc_index has {idx.size} entries for {n} orientations")
        if idx.size and (idx.min() < 0 or idx.max() >= detector.n_pc):
            raise IndexError(f"pc_index outside 0..{detector.n_pc - 1}")
        return idx
    if detector.n_pc == 1:
        return np.zeros(n, dtype=np.int64)
    if detector.n_pc == n:
        return np.arange(n, dtype=np.int64)
    raise ValueError(
        f"the detector has {detector.n_pc} pattern centres for {n} orientations: give one PC, one per "
        "orientation, or pc_index= (which PC each orientation uses)"
    )


def project_patterns(
    master: MasterPattern,
    detector: Detector,
    euler_rad: Any,
    *,
    pc_index: Any = None,
    workers: int | None = None,
    out: np.ndarray | None = None,
    sums: np.ndarray | None = None,
) -> np.ndarray:
    """Simulated patterns: the master pattern seen on the detector at each orientation.

    Parameters
    ----------
    master
        Master pattern of the phase (any source).
    detector
        Detector geometry; one PC for all, or one per orientation.
    euler_rad
        (n, 3) or (3,) Bunge Euler angles in radians (sample -> crystal).
    pc_index
        (n,) which of the detector's PCs each orientation uses; default: the
        only PC, or PC i for orientation i.
    workers
        Threads (default: the CPUs available, at most one per 32 patterns).
    out
        A C-contiguous float32 (n, h, w) array to fill (a view into a larger
        one, say), instead of a new array.
    sums
        A float64 (n,) array that receives each pattern's sum of intensities
        (computed while the pattern is in the cache), or None.

    Returns
    -------
    numpy.ndarray
        (n, h, w) float32 intensities in the master pattern's units
        (bilinear interpolation in the square Lambert grid, in float32
        arithmetic: Lambert coordinates within 3e-5 pixel of float64's);
        ``out`` when given.

    Examples
    --------
    >>> from kikuchi.simulate.lambert import lambert_grid_vectors
    >>> v = lambert_grid_vectors(101)
    >>> mp = MasterPattern(v[0, ..., 2], v[1, ..., 2], kv=20)  # intensity = crystal z
    >>> det = Detector((6, 8), (0.5, 0.5, 0.6))
    >>> p = project_patterns(mp, det, [[0.0, 0.0, 0.0]])
    >>> p.shape, p.dtype
    ((1, 6, 8), dtype('float32'))
    >>> bool(np.allclose(p[0], det.pixel_directions()[..., 2], atol=1e-3))
    True
    """
    if not isinstance(master, MasterPattern):
        raise TypeError(f"master must be a MasterPattern, got {type(master).__name__}")
    euler = np.asarray(euler_rad, dtype=np.float64)
    if euler.ndim == 1:
        euler = euler[None]
    if euler.ndim != 2 or euler.shape[1] != 3:
        raise ValueError(f"euler_rad must have shape (n, 3), got {np.shape(euler_rad)}")
    if not np.all(np.isfinite(euler)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(euler), axis=1))[0])
        raise ValueError(f"euler_rad[{bad}] is not finite ({euler[bad].tolist()}); mask unindexed points first")
    n = euler.shape[0]
    idx = _pc_index(detector, n, pc_index)
    h, w = detector.shape
    if out is None:
        out = np.empty((n, h, w), dtype=np.float32)
    elif out.shape != (n, h, w) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(n, h, w)}, got {out.dtype} {out.shape}")
    if sums is None:
        sums = np.empty(n)
    elif sums.shape != (n,) or sums.dtype != np.float64:
        raise ValueError(f"sums must be a float64 array of shape {(n,)}, got {sums.dtype} {sums.shape}")
    if n == 0:
        return out
    # v_crystal = g @ R.T @ H @ (col, row, 1)
    m = np.ascontiguousarray(euler_to_matrix(euler) @ detector.pixel_matrices(frame="sample")[idx])
    if workers is None:
        workers = available_cpus()
    workers = max(1, min(int(workers), (n + 31) // 32))
    stacked, size = master.stacked, master.size
    if workers == 1:
        _kernels.project_pc_many(stacked, size, m, out, sums)
        return out
    bounds = np.linspace(0, n, workers + 1).astype(int)

    def run(k: int) -> None:
        a, b = bounds[k], bounds[k + 1]
        _kernels.project_pc_many(stacked, size, m[a:b], out[a:b], sums[a:b])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(run, range(workers)))
    return out
