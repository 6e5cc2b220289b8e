"""The result of a band detection: lines in Hesse normal form with their properties."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Bands", "line_endpoints"]


def line_endpoints(rho: np.ndarray, theta: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Where the lines ``x cos(theta) + y sin(theta) = rho`` cross the image border.

    ``x = col - (w - 1) / 2`` and ``y = row - (h - 1) / 2`` are measured from
    the image centre (rows down). Returns (n, 4) ``x0, y0, x1, y1`` in pixel
    coordinates (x = column, y = row) on the border of the image rectangle
    ``[-0.5, w - 0.5] x [-0.5, h - 0.5]``; NaN for lines that miss it.

    Examples
    --------
    >>> line_endpoints(np.array([0.0]), np.array([0.0]), (5, 5)).round(2).tolist()
    [[2.0, -0.5, 2.0, 4.5]]
    """
    rho = np.atleast_1d(np.asarray(rho, dtype=np.float64))
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))
    h, w = shape
    xc, yc = (w - 1) / 2.0, (h - 1) / 2.0
    x_lo, x_hi, y_lo, y_hi = -0.5 - xc, w - 0.5 - xc, -0.5 - yc, h - 0.5 - yc
    out = np.full((rho.size, 4), np.nan)
    for i, (r, t) in enumerate(zip(rho, theta)):
        c, s = np.cos(t), np.sin(t)
        pts: list[tuple[float, float]] = []
        if abs(s) > 1e-12:
            for x in (x_lo, x_hi):
                y = (r - x * c) / s
                if y_lo - 1e-9 <= y <= y_hi + 1e-9:
                    pts.append((x, y))
        if abs(c) > 1e-12:
            for y in (y_lo, y_hi):
                x = (r - y * s) / c
                if x_lo - 1e-9 <= x <= x_hi + 1e-9:
                    pts.append((x, y))
        if len(pts) < 2:
            continue
        pts_a = np.array(pts)
        # the two crossings farthest apart (corners may appear twice)
        d = np.linalg.norm(pts_a[:, None] - pts_a[None], axis=-1)
        a, b = np.unravel_index(np.argmax(d), d.shape)
        out[i] = [pts_a[a, 0] + xc, pts_a[a, 1] + yc, pts_a[b, 0] + xc, pts_a[b, 1] + yc]
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
