"""Band detection on binarised patterns: the classic straight-line Hough transform.

The method of the xcdskd documentation ("Kikuchi Band Detection using the
Hough Transform"): the pattern is binarised at a factor of its Otsu
threshold, every bright pixel votes for the lines through it, the vote
accumulator is correlated with the 9 x 9 butterfly mask of Krieger Lassen,
and the strongest peaks at a minimum distance and angle from each other
are the bands. For indexing, :func:`kikuchi.bands.detect_bands` works on
grey levels instead.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from kikuchi.bands._kernels import _hough_binary
from kikuchi.bands.bands import Bands

__all__ = ["BUTTERFLY_9X9", "otsu_binarise", "hough_transform_binary", "hough_peaks", "detect_bands_binary"]

#: The 9 x 9 butterfly mask of N. C. Krieger Lassen (1994) for Hough
#: accumulators with rho along rows and theta along columns.
BUTTERFLY_9X9 = np.array(
    [
        [-10, -15, -22, -22, -22, -22, -22, -15, -10],
        [1, -6, -13, -22, -22, -22, -13, -6, 1],
        [3, 6, 4, -3, -22, -3, 4, 6, 3],
        [3, 11, 19, 28, 42, 28, 19, 11, 3],
        [3, 11, 27, 42, 42, 42, 27, 11, 3],
        [3, 11, 19, 28, 42, 28, 19, 11, 3],
        [3, 6, 4, -3, -22, -3, 4, 6, 3],
        [1, -6, -13, -22, -22, -22, -13, -6, 1],
        [-10, -15, -22, -22, -22, -22, -22, -15, -10],
    ],
    dtype=np.float64,
)


def otsu_binarise(pattern: np.ndarray, *, factor: float = 1.15) -> np.ndarray:
    """Pixels brighter than ``factor`` times the Otsu threshold of ``pattern``.

    Examples
    --------
    >>> img = np.zeros((4, 4), dtype=np.uint8); img[:, 2:] = 200
    >>> otsu_binarise(img, factor=1.0).sum()
    np.int64(8)
    """
    from skimage.filters import threshold_otsu

    pattern = np.asarray(pattern)
    if pattern.ndim != 2 or pattern.size == 0:
        raise ValueError(f"otsu_binarise: expected one 2-D pattern, got shape {pattern.shape}")
    if pattern.dtype.kind not in "biuf":
        raise ValueError(f"otsu_binarise: the pattern must be numbers, got dtype {pattern.dtype}")
    if not factor > 0:
        raise ValueError(f"otsu_binarise: factor must be positive, got {factor}")
    if pattern.dtype.kind == "f" and not np.isfinite(pattern).all():
        raise ValueError("otsu_binarise: the pattern holds values that are not finite (NaN or infinite); it has no threshold")
    if pattern.min() == pattern.max():
        return np.zeros(pattern.shape, dtype=bool)
    return pattern > factor * threshold_otsu(pattern)


def hough_transform_binary(
    binary: np.ndarray, *, theta: np.ndarray | None = None, rho_step: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Straight-line Hough transform of a binary image.

    Parameters
    ----------
    binary
        (h, w) image; non-zero pixels vote.
    theta
        Line normal angles, radians; default 150 angles from -90 to 90 degrees.
    rho_step
        Width of a rho bin, pixels.

    Returns
    -------
    accumulator, theta, rho
        Votes (n_rho, n_theta), the angles and the rho bin centres (pixels,
        from the image centre, see :class:`kikuchi.bands.Bands`).

    Examples
    --------
    >>> img = np.zeros((9, 9), dtype=bool); img[4, :] = True
    >>> acc, theta, rho = hough_transform_binary(img, theta=np.radians([0.0, 90.0]))
    >>> int(acc[:, 1].max()), float(rho[acc[:, 1].argmax()])
    (9, 0.0)
    """
    binary = np.asarray(binary)
    if binary.ndim != 2:
        raise ValueError(f"hough_transform_binary: expected a 2-D image, got shape {binary.shape}")
    if isinstance(rho_step, bool) or not isinstance(rho_step, (int, float, np.integer, np.floating)) or not (np.isfinite(rho_step) and rho_step > 0):
        raise ValueError(f"hough_transform_binary: rho_step must be a positive number of pixels, got {rho_step!r}")
    if theta is not None and (np.ndim(theta) != 1 or np.size(theta) < 1 or not np.isfinite(np.asarray(theta, dtype=np.float64)).all()):
        raise ValueError(f"hough_transform_binary: theta must be a 1-D array of finite angles (radians), got shape {np.shape(theta)}")
    theta = np.radians(np.linspace(-90.0, 90.0, 150)) if theta is None else np.asarray(theta, dtype=np.float64)
    h, w = binary.shape
    half = int(np.ceil(np.hypot(h, w) / 2.0 / rho_step))
    rho = np.arange(-half, half + 1) * rho_step
    rows, cols = np.nonzero(binary)
    xs = cols - (w - 1) / 2.0
    ys = rows - (h - 1) / 2.0
    acc = _hough_binary(xs.astype(np.float64), ys.astype(np.float64), np.cos(theta), np.sin(theta), float(rho[0]), float(rho_step), rho.size)
    return acc, theta, rho


def hough_peaks(
    accumulator: np.ndarray,
    *,
    min_distance: int = 10,
    min_angle: int = 15,
    threshold: float = 0.5,
    num_peaks: int = 12,
    theta: np.ndarray | None = None,
    rho: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Strongest local maxima of an accumulator, at least ``min_distance`` rho bins or ``min_angle`` theta bins apart.

    Parameters
    ----------
    accumulator
        (n_rho, n_theta) array.
    min_distance, min_angle
        Half sizes (in bins) of the neighbourhood suppressed around each accepted peak.
    threshold
        Peaks below ``threshold`` times the accumulator maximum are ignored.
    num_peaks
        Most peaks to return.
    theta, rho
        Bin centres (radians, pixels from the image centre). When given,
        the neighbourhood wraps around theta: the line ``(theta + pi, rho)``
        is ``(theta, -rho)``, so peaks at -90 and +90 degrees are one line.

    Returns
    -------
    rho_index, theta_index
        Bin indices of the peaks, strongest first.

    Examples
    --------
    >>> acc = np.zeros((30, 30)); acc[5, 5] = 2.0; acc[7, 8] = 1.5; acc[20, 25] = 1.0
    >>> hough_peaks(acc, min_distance=3, min_angle=3)
    (array([ 5, 20]), array([ 5, 25]))
    """
    acc = np.asarray(accumulator, dtype=np.float64)
    if acc.ndim != 2:
        raise ValueError(f"hough_peaks: expected a 2-D accumulator, got shape {acc.shape}")
    if min_distance < 0 or min_angle < 0 or num_peaks < 1:
        raise ValueError(f"hough_peaks: need min_distance >= 0, min_angle >= 0, num_peaks >= 1 (got {min_distance}, {min_angle}, {num_peaks})")
    if not np.isfinite(acc).all():
        raise ValueError("hough_peaks: the accumulator holds values that are not finite (NaN or infinite)")
    if theta is not None and rho is not None and (np.size(theta) != acc.shape[1] or np.size(rho) != acc.shape[0]):
        raise ValueError(f"hough_peaks: {np.size(rho)} rho and {np.size(theta)} theta bins do not fit an accumulator of shape {acc.shape} (n_rho, n_theta)")
    if acc.size == 0 or acc.max() == acc.min():  # flat: no peak
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    local_max = (acc == ndimage.maximum_filter(acc, size=3, mode="nearest")) & (acc >= threshold * acc.max())
    r_idx, t_idx = np.nonzero(local_max)
    order = np.argsort(-acc[r_idx, t_idx], kind="stable")
    kept_r: list[int] = []
    kept_t: list[int] = []
    wrap = theta is not None and rho is not None
    if wrap:
        theta = np.asarray(theta, dtype=np.float64)
        rho = np.asarray(rho, dtype=np.float64)
        dtheta = abs(theta[1] - theta[0]) if theta.size > 1 else np.pi
        drho = abs(rho[1] - rho[0]) if rho.size > 1 else 1.0

    def close(r: int, t: int, kr: int, kt: int) -> bool:
        if not wrap:
            return abs(r - kr) <= min_distance and abs(t - kt) <= min_angle
        d_t = abs(theta[t] - theta[kt]) % (2 * np.pi)
        r_other = rho[kr]
        if d_t > np.pi / 2:  # nearer across the wrap: compare with the mirrored line
            d_t = abs(np.pi - d_t)
            r_other = -r_other
        return d_t <= (min_angle + 0.5) * dtheta and abs(rho[r] - r_other) <= (min_distance + 0.5) * drho

    for r, t in zip(r_idx[order], t_idx[order]):
        if any(close(r, t, kr, kt) for kr, kt in zip(kept_r, kept_t)):
            continue
        kept_r.append(int(r))
        kept_t.append(int(t))
        if len(kept_r) >= num_peaks:
            break
    return np.array(kept_r, dtype=np.int64), np.array(kept_t, dtype=np.int64)


def detect_bands_binary(
    pattern: np.ndarray,
    *,
    otsu_factor: float = 1.15,
    n_theta: int = 150,
    min_distance: int = 10,
    min_angle: int = 15,
    threshold: float = 0.5,
    num_peaks: int = 12,
) -> Bands:
    """Bands of a processed pattern by the binary Hough method of the xcdskd documentation.

    Binarise at ``otsu_factor`` times the Otsu threshold, Hough transform
    (``n_theta`` angles from -90 to 90 degrees, 1 pixel rho bins), correlate
    with :data:`BUTTERFLY_9X9`, rescale to [0, 1] and keep the strongest
    ``num_peaks`` peaks above ``threshold`` with :func:`hough_peaks`.

    Returns
    -------
    Bands
        With ``transform`` the rescaled filtered accumulator; ``width`` is the
        distance between the zero crossings of the filtered accumulator
        around each peak, ``slope`` its curvature across rho.

    Examples
    --------
    >>> img = np.zeros((40, 40), dtype=np.uint8); img[18:22, :] = 255; img[:, 8:11] = 255
    >>> bands = detect_bands_binary(img, num_peaks=2, n_theta=181)
    >>> sorted(np.degrees(bands.theta).round().tolist())
    [0.0, 90.0]
    """
    from kikuchi.process.no_signal import no_signal

    pattern = np.asarray(pattern)
    if pattern.ndim != 2 or pattern.size == 0:
        raise ValueError(f"detect_bands_binary: expected one 2-D pattern, got shape {pattern.shape}")
    if pattern.dtype.kind not in "biuf":
        raise ValueError(f"detect_bands_binary: the pattern must be numbers, got dtype {pattern.dtype}")
    if n_theta < 2:
        raise ValueError(f"detect_bands_binary: n_theta must be at least 2, got {n_theta}")
    if no_signal(pattern):  # all one value, or not finite: no bands
        empty = np.zeros(0)
        return Bands(empty, empty, empty, empty, empty, shape=(int(pattern.shape[0]), int(pattern.shape[1])))
    binary = otsu_binarise(pattern, factor=otsu_factor)
    acc, theta, rho = hough_transform_binary(binary, theta=np.radians(np.linspace(-90.0, 90.0, n_theta)))
    acc = acc.astype(np.float64)
    if acc.max() > 0:
        acc /= acc.max()
    filt = ndimage.correlate(acc, BUTTERFLY_9X9, mode="nearest")
    span = filt.max() - filt.min()
    a = (filt - filt.min()) / span if span > 0 else np.zeros_like(filt)
    r_idx, t_idx = hough_peaks(
        a, min_distance=min_distance, min_angle=min_angle, threshold=threshold, num_peaks=num_peaks, theta=theta, rho=rho
    )
    # band width and slope from the zero-mean filtered accumulator across rho
    widths, slopes = [], []
    for r, t in zip(r_idx, t_idx):
        col = filt[:, t]
        lo = r
        while lo > 0 and col[lo - 1] > 0:
            lo -= 1
        hi = r
        while hi < col.size - 1 and col[hi + 1] > 0:
            hi += 1
        widths.append(float(hi - lo + 1) * (rho[1] - rho[0]))
        a0, a1, a2 = a[max(r - 1, 0), t], a[r, t], a[min(r + 1, a.shape[0] - 1), t]
        slopes.append(float(2 * a1 - a0 - a2))
    th = theta[t_idx]
    rh = rho[r_idx]
    flip = th < 0
    th = np.where(flip, th + np.pi, th)
    rh = np.where(flip, -rh, rh)
    th = np.where(th >= np.pi, th - np.pi, th)
    return Bands(
        rho=rh.astype(np.float64),
        theta=th.astype(np.float64),
        intensity=a[r_idx, t_idx].astype(np.float64),
        width=np.array(widths),
        slope=np.array(slopes),
        shape=(int(pattern.shape[0]), int(pattern.shape[1])),
        transform=a,
        rho_bins=rho,
        theta_bins=theta,
    )
