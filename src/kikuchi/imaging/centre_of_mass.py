"""Centre of mass of pattern intensities and hill-shading from it.

The centre of mass of a pattern moves when the backscattered intensity is
redistributed on the detector: by the surface tilt (topography) and by the
orientation (Kikuchi bands). Its map, shown as a shaded relief, reveals
topography much like a multi-segment BSE detector.
"""

from __future__ import annotations

import numpy as np

from kikuchi.imaging import _kernels
from kikuchi.imaging.vbse import _check_stack

__all__ = ["centre_of_mass", "pattern_moments", "hillshade"]


def pattern_moments(patterns: np.ndarray) -> np.ndarray:
    """Mean, standard deviation and centre of mass of each pattern.

    Returns
    -------
    numpy.ndarray
        (..., 4): mean, std, x (column), y (row); see :func:`centre_of_mass`.
    """
    patterns = _check_stack(patterns)
    lead, (h, w) = patterns.shape[:-2], patterns.shape[-2:]
    stack = np.ascontiguousarray(patterns.reshape(-1, h, w))
    out = np.empty((stack.shape[0], 4), dtype=np.float64)
    _kernels.moments(stack, out, True)
    return out.reshape(*lead, 4)


def centre_of_mass(patterns: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre of each pattern, in pixels.

    ``x = sum(I c) / sum(I)`` and ``y = sum(I r) / sum(I)`` with the
    column ``c`` and row ``r`` of each pixel centre (0 at the first pixel).
    A pattern with negative values (a Kikuchi signal after subtracting the
    background) is offset by its minimum first, so all weights are >= 0.
    NaN for a pattern without intensity.

    Parameters
    ----------
    patterns
        (h, w), (n, h, w) or (rows, cols, h, w).

    Returns
    -------
    numpy.ndarray
        (..., 2): (x, y) = (column, row) of the centre of mass.

    Examples
    --------
    >>> p = np.zeros((1, 5, 7)); p[0, 1, 5] = 3.0; p[0, 3, 5] = 1.0
    >>> centre_of_mass(p).tolist()
    [[5.0, 1.5]]
    """
    return pattern_moments(patterns)[..., 2:4]


def hillshade(
    com: np.ndarray,
    *,
    azimuth_deg: float = 315.0,
    altitude_deg: float = 45.0,
    scale: float | None = None,
) -> np.ndarray:
    """Shaded relief of a centre-of-mass map, read as a surface gradient.

    The centre-of-mass shift from its median is taken as the local slope
    ``(dz/dx, dz/dy) = scale * (x - median x, y - median y)``; the image is
    the Lambertian shading ``max(0, n . l)`` of that surface lit from
    ``azimuth_deg`` (clockwise from the top of the image) at
    ``altitude_deg`` above the horizon.

    Parameters
    ----------
    com
        (rows, cols, 2) centre of mass (x, y) in pixels, NaN where unknown.
    azimuth_deg, altitude_deg
        Direction of the light.
    scale
        Slope per pixel of centre-of-mass shift; by default ``1 / s`` with
        ``s`` the standard deviation of the shifts, so that typical slopes
        are near 1 whatever the detector size.

    Returns
    -------
    numpy.ndarray
        (rows, cols) in [0, 1], NaN where ``com`` is NaN.

    Examples
    --------
    A flat map (no shift) is lit by ``sin(altitude)``:

    >>> round(float(hillshade(np.ones((2, 2, 2)), altitude_deg=30)[0, 0]), 6)
    0.5
    """
    com = np.asarray(com, dtype=np.float64)
    if com.ndim != 3 or com.shape[2] != 2:
        raise ValueError(f"centre of mass map must be (rows, cols, 2), got shape {com.shape}")
    if not np.isfinite(com).any():  # no centre known (every point without a pattern or without signal)
        return np.full(com.shape[:2], np.nan)
    d = com - np.nanmedian(com.reshape(-1, 2), axis=0)
    if scale is None:
        s = float(np.nanstd(d))
        scale = 1.0 / s if s > 0 else 1.0
    gx, gy = scale * d[..., 0], scale * d[..., 1]
    az, alt = np.radians(azimuth_deg), np.radians(altitude_deg)
    # light direction in image axes (x right, y down, z out of the image)
    lx, ly, lz = np.cos(alt) * np.sin(az), -np.cos(alt) * np.cos(az), np.sin(alt)
    shade = (-gx * lx - gy * ly + lz) / np.sqrt(1.0 + gx**2 + gy**2)
    return np.clip(shade, 0.0, 1.0)
