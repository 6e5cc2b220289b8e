"""Grey-level Radon/Hough band detection: the detector used for indexing.

No binarisation: the sum of the standardised intensities along every line
``(rho, theta)`` through the detector's useful area (a circular mask by
default) is computed with a precomputed lookup table that shares each pixel
linearly between its two nearest rho bins. Summing (rather than averaging)
weighs each line by the evidence it holds: a band's signal grows with the
length of its line and the noise only with its square root, so in noisy
patterns short lines near the rim no longer outrank long ones. The
transform is filtered
with a butterfly kernel (the negative second derivative of a Gaussian across
the band, a Gaussian along theta; theta wraps around with rho mirrored),
and its strongest local maxima, located to a fraction of a bin by parabolas
through their neighbours, are the bands. Their width is the distance
between the zero crossings of the filtered profile across the band.

Stacks of patterns go through one numba kernel (no GIL) per block of
patterns, blocks spread over threads.
"""

from __future__ import annotations

import functools
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from kikuchi.bands import _kernels as K
from kikuchi.bands.bands import Bands

__all__ = ["BandDetector", "detect_bands", "detect_bands_stack", "butterfly_kernels"]

_logger = logging.getLogger(__name__)


def butterfly_kernels(rho_sigma: float, theta_sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Separable butterfly filter: ``-d2/drho2`` of a Gaussian (zero sum) and a Gaussian along theta (unit sum).

    Sigmas are in bins. A bright band of about ``2 * rho_sigma`` bins
    width gives the strongest positive response; its dark edges are
    penalised by the negative lobes.

    Examples
    --------
    >>> kr, kt = butterfly_kernels(1.5, 1.0)
    >>> round(float(kr.sum()), 6), round(float(kt.sum()), 6), bool(kr[kr.size // 2] > 0)
    (0.0, 1.0, True)
    """
    if not (rho_sigma > 0 and theta_sigma > 0):
        raise ValueError(f"butterfly_kernels: sigmas must be positive, got rho_sigma={rho_sigma}, theta_sigma={theta_sigma}")
    hr = max(2, int(math.ceil(3.0 * rho_sigma)))
    x = np.arange(-hr, hr + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / rho_sigma) ** 2)
    kr = (1.0 - (x / rho_sigma) ** 2) * g  # -d2/dx2 of the Gaussian, up to a factor
    kr -= kr.mean()
    kr /= np.abs(kr).sum()
    ht = max(1, int(math.ceil(2.5 * theta_sigma)))
    y = np.arange(-ht, ht + 1, dtype=np.float64)
    kt = np.exp(-0.5 * (y / theta_sigma) ** 2)
    kt /= kt.sum()
    return kr.astype(np.float32), kt.astype(np.float32)


@dataclass(frozen=True)
class _Table:
    pix: np.ndarray
    ptr: np.ndarray
    idx: np.ndarray
    wts: np.ndarray
    count: np.ndarray
    divisor: np.ndarray
    valid: np.ndarray
    rho_bins: np.ndarray
    theta_bins: np.ndarray


class BandDetector:
    """Grey-level Radon band detection for patterns of one shape, with its lookup tables computed once.

    Parameters
    ----------
    shape
        Pattern shape (h, w).
    n_bands
        Most bands to return per pattern.
    n_theta
        Theta bins over 180 degrees.
    rho_step
        Rho bin width, pixels.
    mask
        'circle' (the detector's round useful area: the largest centred
        circle), None (the whole rectangle) or a boolean (h, w) array.
    min_line_fraction
        Lines shorter than this fraction of the longest line through the
        mask are not searched.
    line_statistic
        'sum' (default): each bin holds the sum of the standardised pixels on
        its line, divided by the longest line's length (so a line through
        the centre gives its mean); 'mean': the mean along each line, which
        gives short lines near the rim the same weight as long ones and
        lets their noise outrank real bands in noisy patterns (the
        behaviour before issue 12; see docs/indexing.md).
    rho_sigma, theta_sigma
        Butterfly filter widths in bins; ``rho_sigma`` default scales with
        the pattern size (bands are wider on larger patterns).
    min_distance_rho, min_distance_theta
        Half sizes in bins of the neighbourhood suppressed around a peak.
    threshold
        Peaks below this fraction of the strongest are ignored.

    Examples
    --------
    >>> det = BandDetector((40, 40), n_bands=3)
    >>> img = np.zeros((40, 40), np.float32); img[18:22, :] = 1.0
    >>> bands = det.detect(img)
    >>> round(float(np.degrees(bands.theta[0]))), abs(round(float(bands.rho[0]), 1))
    (90, 0.0)
    """

    def __init__(
        self,
        shape: tuple[int, int],
        *,
        n_bands: int = 9,
        n_theta: int = 120,
        rho_step: float = 1.0,
        mask: str | np.ndarray | None = "circle",
        min_line_fraction: float = 0.5,
        line_statistic: str = "sum",
        rho_sigma: float | None = None,
        theta_sigma: float = 1.0,
        min_distance_rho: int = 3,
        min_distance_theta: int = 3,
        threshold: float = 0.1,
    ):
        if len(shape) != 2 or min(shape) < 8:
            raise ValueError(f"BandDetector: pattern shape must be (h, w) with both at least 8 pixels, got {tuple(shape)}")
        if n_bands < 1 or n_theta < 8 or not rho_step > 0:
            raise ValueError(f"BandDetector: need n_bands >= 1, n_theta >= 8, rho_step > 0 (got {n_bands}, {n_theta}, {rho_step})")
        if not (0.0 <= threshold <= 1.0) or min_distance_rho < 0 or min_distance_theta < 0:
            raise ValueError(
                f"BandDetector: need 0 <= threshold <= 1 and min_distance_rho, min_distance_theta >= 0 "
                f"(got {threshold}, {min_distance_rho}, {min_distance_theta})"
            )
        if not 0.0 <= min_line_fraction < 1.0:
            raise ValueError(f"BandDetector: min_line_fraction must be in [0, 1), got {min_line_fraction}")
        if line_statistic not in ("sum", "mean"):
            raise ValueError(f"BandDetector: line_statistic must be 'sum' or 'mean', got {line_statistic!r}")
        self.line_statistic = line_statistic
        self.shape = (int(shape[0]), int(shape[1]))
        self.n_bands = int(n_bands)
        self.n_theta = int(n_theta)
        self.rho_step = float(rho_step)
        self.min_distance_rho = int(min_distance_rho)
        self.min_distance_theta = int(min_distance_theta)
        self.threshold = float(threshold)
        if rho_sigma is None:
            rho_sigma = max(1.0, 0.02 * min(self.shape) / self.rho_step)
        self.rho_sigma = float(rho_sigma)
        self.theta_sigma = float(theta_sigma)
        self.k_rho, self.k_theta = butterfly_kernels(self.rho_sigma, self.theta_sigma)
        self.mask = self._make_mask(mask)
        self._table = self._make_table(min_line_fraction)

    def _make_mask(self, mask: str | np.ndarray | None) -> np.ndarray:
        h, w = self.shape
        if mask is None:
            return np.ones(self.shape, dtype=bool)
        if isinstance(mask, str):
            if mask != "circle":
                raise ValueError(f"BandDetector: mask must be 'circle', None or a boolean array, got {mask!r}")
            rr, cc = np.mgrid[:h, :w]
            radius = min(h, w) / 2.0
            return (cc - (w - 1) / 2.0) ** 2 + (rr - (h - 1) / 2.0) ** 2 <= radius**2
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.shape:
            raise ValueError(f"BandDetector: mask shape {mask.shape} differs from the pattern shape {self.shape}")
        if mask.sum() < 16:
            raise ValueError("BandDetector: the mask keeps fewer than 16 pixels")
        return mask

    def _make_table(self, min_line_fraction: float) -> _Table:
        h, w = self.shape
        rows, cols = np.nonzero(self.mask)
        x = cols - (w - 1) / 2.0
        y = rows - (h - 1) / 2.0
        rho_max = float(np.sqrt(x**2 + y**2).max()) + 1.0
        half = int(math.ceil(rho_max / self.rho_step))
        n_rho = 2 * half + 1
        rho_bins = (np.arange(n_rho) - half) * self.rho_step
        theta_bins = np.arange(self.n_theta) * (np.pi / self.n_theta)
        f = (np.cos(theta_bins)[:, None] * x[None] + np.sin(theta_bins)[:, None] * y[None]) / self.rho_step + half
        lo = np.floor(f).astype(np.int32)
        wt = (f - lo).astype(np.float32)
        count = np.zeros((self.n_theta, n_rho), dtype=np.float32)
        t_idx = np.broadcast_to(np.arange(self.n_theta)[:, None], lo.shape)
        np.add.at(count, (t_idx, lo), 1.0 - wt)
        np.add.at(count, (t_idx, lo + 1), wt)
        valid = count >= min_line_fraction * count.max()
        divisor = count if self.line_statistic == "mean" else np.full_like(count, count.max())
        pix = (rows * w + cols).astype(np.int64)
        # compressed rows: for every (theta, rho) bin its pixels and their shares
        p_idx = np.broadcast_to(np.arange(x.size)[None], lo.shape)
        bins = np.concatenate([(t_idx * n_rho + lo).ravel(), (t_idx * n_rho + lo + 1).ravel()])
        who = np.concatenate([p_idx.ravel(), p_idx.ravel()])
        share = np.concatenate([(1.0 - wt).ravel(), wt.ravel()]).astype(np.float32)
        keep = share > 0
        bins, who, share = bins[keep], who[keep], share[keep]
        order = np.lexsort((who, bins))
        ptr = np.zeros(self.n_theta * n_rho + 1, dtype=np.int64)
        np.cumsum(np.bincount(bins, minlength=self.n_theta * n_rho), out=ptr[1:])
        return _Table(pix, ptr, who[order].astype(np.int32), share[order], count, divisor, valid, rho_bins, theta_bins)

    @property
    def rho_bins(self) -> np.ndarray:
        """Rho bin centres, pixels from the pattern centre."""
        return self._table.rho_bins

    @property
    def theta_bins(self) -> np.ndarray:
        """Theta bin centres, radians in [0, pi)."""
        return self._table.theta_bins

    def _check(self, patterns: np.ndarray) -> np.ndarray:
        """float32 (n, h, w); patterns that hold no signal (all one value, or not finite) become zeros: no bands."""
        from kikuchi.process.no_signal import no_signal

        patterns = np.asarray(patterns)
        if patterns.ndim == 2:
            patterns = patterns[None]
        if patterns.ndim != 3 or patterns.shape[1:] != self.shape:
            raise ValueError(f"BandDetector: expected patterns of shape (n, {self.shape[0]}, {self.shape[1]}), got {patterns.shape}")
        if patterns.dtype.kind not in "biuf":
            raise ValueError(f"BandDetector: patterns must be numbers, got dtype {patterns.dtype}")
        out = np.ascontiguousarray(patterns, dtype=np.float32)
        bad = no_signal(out)  # after the cast: values beyond float32 become infinite
        if bad.any():
            out = out.copy() if out is patterns else out
            out[bad] = 0.0
        return out

    def _run(self, patterns: np.ndarray, keep: int = 0, keep_filtered: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Band rows of ``patterns``, the transforms of the first ``keep`` and the filtered ones of the first ``keep_filtered`` (default ``keep``)."""
        t = self._table
        n = patterns.shape[0]
        out = np.zeros((n, self.n_bands, K.N_COLS), dtype=np.float64)
        radon = np.zeros((keep, self.n_theta, t.rho_bins.size), dtype=np.float32)
        filt = np.zeros((keep if keep_filtered is None else keep_filtered, self.n_theta, t.rho_bins.size), dtype=np.float32)
        K._detect_stack(
            patterns, t.pix, t.ptr, t.idx, t.wts, t.divisor, t.valid, t.rho_bins, self.rho_step, self.k_rho, self.k_theta,
            self.n_bands, self.min_distance_rho, self.min_distance_theta, self.threshold, out, radon, filt,
        )
        return out, radon, filt

    def transform(self, pattern: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Radon transform of the standardised pattern and its butterfly-filtered version, both (n_rho, n_theta)."""
        _, radon, filt = self._run(self._check(pattern)[:1], keep=1)
        return radon[0].T.copy(), filt[0].T.copy()

    def detect(self, pattern: np.ndarray, *, keep_transform: bool = True) -> Bands:
        """Bands of one pattern (h, w), strongest first."""
        patterns = self._check(pattern)
        if patterns.shape[0] != 1:
            raise ValueError(f"BandDetector.detect: expected one pattern, got {patterns.shape[0]}; use detect_stack")
        out, _, filt = self._run(patterns, keep=1 if keep_transform else 0)
        bands = self.bands_from_table(out[0])
        if keep_transform:
            bands.transform = filt[0].T.copy()
            bands.rho_bins = self.rho_bins
            bands.theta_bins = self.theta_bins
        return bands

    def bands_from_table(self, rows: np.ndarray) -> Bands:
        """:class:`Bands` from the (n_bands, 6) rows of :meth:`detect_stack` (invalid rows dropped)."""
        rows = rows[rows[:, K.COL_VALID] > 0]
        return Bands(
            rho=rows[:, K.COL_RHO].copy(),
            theta=rows[:, K.COL_THETA].copy(),
            intensity=rows[:, K.COL_INTENSITY].copy(),
            width=rows[:, K.COL_WIDTH].copy(),
            slope=rows[:, K.COL_SLOPE].copy(),
            shape=self.shape,
        )

    def detect_stack(self, patterns: np.ndarray, *, workers: int = 1, block: int = 256) -> np.ndarray:
        """Bands of a stack (n, h, w) as a table (n, n_bands, 6).

        Columns: rho (px), theta (rad), intensity, width (px), slope, valid
        (1 for a band, 0 for an unused row). ``workers`` threads share the
        stack in blocks of ``block`` patterns (the kernel releases the GIL).
        """
        patterns = np.asarray(patterns)
        if patterns.ndim != 3 or patterns.shape[1:] != self.shape:
            raise ValueError(f"BandDetector: expected patterns of shape (n, {self.shape[0]}, {self.shape[1]}), got {patterns.shape}")
        if not float(block).is_integer() or block < 1 or not float(workers).is_integer() or workers < 1:
            raise ValueError(f"BandDetector.detect_stack: block and workers must be whole numbers >= 1, got {block}, {workers}")
        n = patterns.shape[0]
        starts = list(range(0, n, block))
        if workers <= 1 or len(starts) == 1:
            return np.concatenate([self._run(self._check(patterns[s : s + block]))[0] for s in starts]) if n else np.zeros((0, self.n_bands, K.N_COLS))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda s: self._run(self._check(patterns[s : s + block]))[0], starts))
        return np.concatenate(parts)

    def detect_stack_filtered(self, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Band table (n, n_bands, 6) of a stack (as :meth:`detect_stack`) and its filtered transforms (n, n_theta, n_rho).

        The filtered transforms (float32, theta-major: bin ``(t, r)`` is the
        line at :attr:`theta_bins` ``[t]`` and :attr:`rho_bins` ``[r]``, zero
        outside :attr:`searched`) let an indexer weigh every band an
        orientation predicts, not only the detected peaks
        (:class:`kikuchi.index.HoughIndexer`). One thread; callers split large
        stacks (a 60 x 60 pattern's filtered transform is 30 kB).
        """
        patterns = np.asarray(patterns)
        if patterns.ndim != 3 or patterns.shape[1:] != self.shape:
            raise ValueError(f"BandDetector: expected patterns of shape (n, {self.shape[0]}, {self.shape[1]}), got {patterns.shape}")
        out, _, filt = self._run(self._check(patterns), keep=0, keep_filtered=patterns.shape[0])
        return out, filt

    @property
    def searched(self) -> np.ndarray:
        """(n_theta, n_rho) bool: the bins whose lines are searched for bands (long enough, see ``min_line_fraction``)."""
        return self._table.valid


def check_band_options(options: dict, where: str) -> None:
    """Raise a ValueError naming the options of :class:`BandDetector` when ``options`` has others."""
    import inspect

    known = [p for p in inspect.signature(BandDetector.__init__).parameters if p not in ("self", "shape")]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown band detection option{'s' * (len(unknown) > 1)} {', '.join(unknown)}; the options are {', '.join(known)}")


@functools.lru_cache(maxsize=8)
def _detector(shape: tuple[int, int], options: tuple) -> BandDetector:
    return BandDetector(shape, **dict(options))


def _detector_for(shape: tuple[int, int], options: dict) -> BandDetector:
    """A cached detector for hashable options; a new one when an option is an array (a custom mask)."""
    check_band_options(options, "detect_bands")
    if any(isinstance(v, np.ndarray) for v in options.values()):
        return BandDetector(shape, **options)
    return _detector(shape, tuple(sorted(options.items())))


def detect_bands(pattern: np.ndarray, **options) -> Bands:
    """Kikuchi bands of one pattern by the grey-level Radon transform.

    Parameters
    ----------
    pattern
        (h, w) pattern, any numeric type (background-corrected patterns
        work best).
    **options
        Keyword options of :class:`BandDetector` (``n_bands``, ``n_theta``,
        ``mask``, ``rho_sigma``, ...). Detectors are cached per shape and options.

    Returns
    -------
    Bands
        Strongest first, with the filtered transform for figures.

    Examples
    --------
    >>> img = np.zeros((60, 60), np.float32); img[:, 28:32] = 1.0; img[10:14, :] += 1.0
    >>> b = detect_bands(img, n_bands=2)
    >>> sorted(np.abs(np.cos(b.theta)).round(2).tolist())  # one vertical, one horizontal band
    [0.0, 1.0]
    """
    pattern = np.asarray(pattern)
    if pattern.ndim != 2:
        raise ValueError(f"detect_bands: expected one 2-D pattern, got shape {pattern.shape}")
    return _detector_for(tuple(pattern.shape), options).detect(pattern)


def detect_bands_stack(patterns: np.ndarray, *, workers: int = 1, **options) -> list[Bands]:
    """Bands of every pattern of a stack (n, h, w) (see :func:`detect_bands`); ``workers`` threads."""
    patterns = np.asarray(patterns)
    if patterns.ndim != 3:
        raise ValueError(f"detect_bands_stack: expected a stack (n, h, w), got shape {patterns.shape}")
    det = _detector_for(tuple(patterns.shape[1:]), options)
    table = det.detect_stack(patterns, workers=workers)
    return [det.bands_from_table(rows) for rows in table]
