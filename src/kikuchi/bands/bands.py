"""The result of a band detection: lines in Hesse normal form with their properties."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kikuchi.geometry.detector import line_segment_in_pattern

__all__ = ["Bands", "line_endpoints"]


def line_endpoints(rho: np.ndarray, theta: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Where the lines ``x cos(theta) + y sin(theta) = rho`` cross the image border.

    ``x = col - (w - 1) / 2`` and ``y = row - (h - 1) / 2`` are measured from
    the image centre (rows down). Returns (n, 4) ``x0, y0, x1, y1`` in pixel
    coordinates (x = column, y = row) on the border of the image rectangle
    ``[-0.5, w - 0.5] x [-0.5, h - 0.5]``; NaN for lines that miss it
    (:func:`kikuchi.geometry.line_segment_in_pattern`).

    Examples
    --------
    >>> line_endpoints(np.array([0.0]), np.array([0.0]), (5, 5)).round(2).tolist()
    [[2.0, -0.5, 2.0, 4.5]]
    """
    rho = np.atleast_1d(np.asarray(rho, dtype=np.float64))
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    if rho.shape != theta.shape or rho.ndim != 1:
        raise ValueError(f"line_endpoints: rho {rho.shape} and theta {theta.shape} must be two 1-D arrays of the same length")
    if len(shape) != 2:
        raise ValueError(f"line_endpoints: the pattern shape must be (h, w), got {tuple(shape)}")
    h, w = shape
    xc, yc = (w - 1) / 2.0, (h - 1) / 2.0
    out = np.full((rho.size, 4), np.nan)
    for i, (r, t) in enumerate(zip(rho, theta)):
        c, s = np.cos(t), np.sin(t)
        # (col - xc) c + (row - yc) s = rho
        seg = line_segment_in_pattern(c, s, -(r + xc * c + yc * s), (h, w))
        if seg is not None:
            out[i] = seg
    return out


@dataclass
class Bands:
    """Kikuchi bands detected in one pattern, strongest first.

    A band is the line ``x cos(theta) + y sin(theta) = rho`` through its
    centre, with ``x = col - (w - 1) / 2`` and ``y = row - (h - 1) / 2`` in
    pixels from the pattern centre (rows down) and ``theta`` in ``[0, pi)``.

    Attributes
    ----------
    rho
        Signed distance of the band centre line from the pattern centre, pixels.
    theta
        Direction of the line normal, radians, in ``[0, pi)``.
    intensity
        Height of the butterfly-filtered transform peak (band contrast analogue).
    width
        Band width in pixels (between the zero crossings of the filtered profile).
    slope
        Curvature of the filtered peak across the band (band slope analogue).
    shape
        Shape (h, w) of the pattern the bands were found in.
    transform
        Optional filtered transform (n_rho, n_theta) the bands were found in, for figures.
    rho_bins, theta_bins
        Optional bin centres of ``transform``.
    """

    rho: np.ndarray
    theta: np.ndarray
    intensity: np.ndarray
    width: np.ndarray
    slope: np.ndarray
    shape: tuple[int, int]
    transform: np.ndarray | None = field(default=None, repr=False)
    rho_bins: np.ndarray | None = field(default=None, repr=False)
    theta_bins: np.ndarray | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return int(self.rho.size)

    def endpoints(self, shape: tuple[int, int] | None = None) -> np.ndarray:
        """(n, 4) ``x0, y0, x1, y1`` pixel coordinates where each band line crosses the border of ``shape``."""
        return line_endpoints(self.rho, self.theta, tuple(shape or self.shape))  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (angles in degrees)."""
        return {
            "shape": list(self.shape),
            "convention": "x cos(theta) + y sin(theta) = rho; x = col - (w-1)/2, y = row - (h-1)/2, pixels",
            "bands": [
                {
                    "rho_px": round(float(r), 3),
                    "theta_deg": round(float(np.degrees(t)), 3),
                    "intensity": round(float(i), 4),
                    "width_px": round(float(w), 3),
                    "slope": round(float(s), 4),
                }
                for r, t, i, w, s in zip(self.rho, self.theta, self.intensity, self.width, self.slope)
            ],
        }
