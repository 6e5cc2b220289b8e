"""EMsoft's square Lambert projection between the unit sphere and two square grids.

A master pattern is stored as two square arrays of side ``size`` (odd, e.g.
401): the northern hemisphere (z >= 0 of the crystal frame) and the southern
one (z < 0). The square equal-area mapping is Roşca's (2010), as used by
EMsoft (Callahan & De Graef 2013) and kikuchipy. Array element
``[row, col]`` holds the direction at square coordinates
``X = 2 col / (size - 1) - 1`` and ``Y = 2 row / (size - 1) - 1``, so the
column runs along the crystal x axis and the row along the crystal y axis;
the square's centre is the pole (0, 0, +-1) and its border is the equator.
"""

from __future__ import annotations

import numpy as np

from kikuchi.simulate import _kernels

__all__ = ["lambert_grid_vectors", "vectors_to_lambert"]


def _check_size(size: int) -> int:
    size = int(size)
    if size < 3:
        raise ValueError(f"Lambert grid size must be at least 3 pixels, got {size}")
    return size


def as_direction_array(vectors: np.ndarray, what: str) -> tuple[np.ndarray, tuple[int, ...]]:
    """(n, 3) C-contiguous float64 copy of (..., 3) directions and their leading shape; rejects zero vectors."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim == 0 or v.shape[-1] != 3:
        raise ValueError(f"vectors must have a last axis of length 3, got shape {v.shape}")
    flat = np.ascontiguousarray(v.reshape(-1, 3))
    if flat.size and not np.all(np.any(flat != 0, axis=1)):
        raise ValueError(f"{what}: a zero vector has no direction")
    return flat, v.shape[:-1]


def lambert_grid_vectors(size: int) -> np.ndarray:
    """Unit vectors of every pixel of EMsoft's square Lambert grids.

    Parameters
    ----------
    size
        Side of the square grid in pixels (EMsoft uses ``2 * npx + 1``).

    Returns
    -------
    numpy.ndarray
        Shape (2, size, size, 3), float64: ``[0]`` the northern hemisphere
        (z >= 0), ``[1]`` the southern one (the same x, y with z negated).

    Examples
    --------
    >>> v = lambert_grid_vectors(5)
    >>> v.shape
    (2, 5, 5, 3)
    >>> v[0, 2, 2].tolist(), v[1, 2, 2].tolist()
    ([0.0, 0.0, 1.0], [0.0, 0.0, -1.0])
    >>> [round(float(a), 6) for a in v[0, 2, 4]]  # middle of the right edge: +x on the equator
    [1.0, 0.0, 0.0]
    """
    return _kernels.lambert_grid(_check_size(size))


def vectors_to_lambert(vectors: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Square Lambert pixel coordinates of directions.

    Parameters
    ----------
    vectors
        Directions (..., 3) in the crystal frame (need not be normalised).
    size
        Side of the square grid in pixels.

    Returns
    -------
    hemisphere
        (...) int8: 0 north (z >= 0), 1 south.
    row, col
        (...) float64 fractional pixel coordinates in the grid of that
        hemisphere (0 .. size - 1).

    Raises
    ------
    ValueError
        If the last axis is not of length 3 or a vector is zero.

    Examples
    --------
    >>> h, r, c = vectors_to_lambert(np.array([[1.0, 0, 0], [0, 0, -2.0]]), 401)
    >>> h.tolist(), r.tolist(), c.tolist()
    ([0, 1], [200.0, 200.0], [400.0, 200.0])
    """
    size = _check_size(size)
    flat, shape = as_direction_array(vectors, "vectors_to_lambert")
    hemi, rows, cols = _kernels.vectors_to_lambert(flat, size)
    return hemi.reshape(shape), rows.reshape(shape), cols.reshape(shape)
