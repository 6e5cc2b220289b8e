"""Detection model: a theoretical Kikuchi pattern -> the image a camera records.

The expected number of detected electrons (scintillator photons, in counts)
at pixel p of pattern i is

    lambda_i(p) = counts * B(p) * G(p) * (1 + contrast * k_i(p)),

with ``B`` the smooth backscatter background (the angular distribution of
backscattered electrons, brightest below the pattern centre for a tilted
sample), ``G`` the static detector response (dust specks, unequal CCD
halves), ``k_i`` the theoretical pattern normalised to zero mean and unit
standard deviation, and ``contrast`` the Kikuchi contrast. The camera adds
Poisson (shot) noise to lambda, Gaussian read noise, a dark offset and hot
pixels, and digitises to 8 or 16 bit.

Noise levels are defined by counts: the mean number of counts per pixel.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DEFAULT_CONTRAST", "NOISE_LEVELS", "REAL_NI_CONTRAST", "DetectionModel", "backscatter_background", "detect", "static_response"]

_logger = logging.getLogger(__name__)

#: Mean counts per pixel of each noise level (Poisson noise 1/sqrt(counts): 3 %, 10 %, 25 %).
NOISE_LEVELS: dict[str, float] = {"low": 1000.0, "medium": 100.0, "high": 16.0}
#: Default Kikuchi contrast: clear bands (the relative standard deviation of the band signal).
DEFAULT_CONTRAST = 0.12
#: Kikuchi contrast of the 9 real 60 x 60 Ni patterns of kikuchipy's ``nickel_ebsd_small.h5``:
#: after static and dynamic background removal, the signal common to two patterns of one grain
#: (the covariance of their relative intensities) has a standard deviation of 0.017-0.022, what
#: this model gives at a contrast of 0.019-0.024 (the noise, 0.013-0.017, is that of about 5,000
#: counts per pixel). Real bands are about six times fainter than the default's.
REAL_NI_CONTRAST = 0.02


def _counts(noise: str | float) -> float:
    if isinstance(noise, str):
        try:
            return NOISE_LEVELS[noise]
        except KeyError:
            raise ValueError(f"unknown noise level {noise!r}; use one of {', '.join(NOISE_LEVELS)} or a number of counts per pixel") from None
    value = float(noise)
    if not value > 0:
        raise ValueError(f"counts per pixel must be positive, got {noise!r}")
    return value


def backscatter_background(shape: tuple[int, int], detector: Any = None, *, width_deg: float = 35.0) -> np.ndarray:
    """Smooth backscatter intensity on the screen, mean 1.

    The backscattered electrons of a tilted sample leave mostly in the
    forward direction: a broad lobe around the direction mirrored from the
    beam at the surface, which meets the screen below the pattern centre.
    With a detector, the lobe is a Gaussian in the angle between each pixel's
    direction and that of the specular reflection (width ``width_deg``),
    times the cosine fall-off of the screen; without one, a Gaussian centred
    at 70 % of the height.

    Examples
    --------
    >>> from kikuchi.geometry import Detector
    >>> b = backscatter_background((60, 80), Detector((60, 80), (0.5, 0.3, 0.6)))
    >>> round(float(b.mean()), 6), bool(b[50].mean() > b[5].mean())  # brighter at the bottom
    (1.0, True)
    """
    h, w = (int(s) for s in shape)
    if detector is None:
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
        s = 0.45 * max(h, w)
        b = np.exp(-(((rows - 0.7 * h) ** 2) + (cols - 0.5 * w) ** 2) / (2 * s * s))
    else:
        from kikuchi.geometry import sample_to_detector_matrix

        d = detector.pixel_directions(index=0 if detector.n_pc > 1 else None)
        r = detector.rotation
        # the beam runs down the microscope's vertical: y_d of an untilted camera, whatever the camera tilt
        beam = -sample_to_detector_matrix(detector.sample_tilt_deg)[1]
        normal = np.array([0.0, 0.0, 1.0])
        specular = beam - 2 * np.dot(beam, normal) * normal
        cos_t = np.clip(d @ specular, -1, 1)
        theta = np.arccos(cos_t)
        b = np.exp(-(theta**2) / (2 * np.radians(width_deg) ** 2)) * np.clip(d @ r[2], 0, 1) ** 3
    return b / b.mean()


def static_response(
    shape: tuple[int, int],
    *,
    seed: int | None = 0,
    n_dust: int | None = None,
    halves_ratio: float = 1.04,
    hot_fraction: float = 3e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """A static detector response: gain (h, w) with dust specks and unequal halves, and a hot pixel mask.

    Parameters
    ----------
    shape
        (rows, cols).
    seed
        Random seed (the same detector for the same seed).
    n_dust
        Number of dust specks (default: one per 1500 pixels, at least 2).
    halves_ratio
        Gain of the right half of the chip relative to the left (two read-out
        channels of a CCD).
    hot_fraction
        Fraction of hot (saturated) pixels.

    Returns
    -------
    gain, hot
        (h, w) float64 gain around 1, (h, w) bool.
    """
    h, w = (int(s) for s in shape)
    rng = np.random.default_rng(seed)
    gain = np.ones((h, w))
    gain[:, w // 2 :] *= halves_ratio
    n_dust = max(2, h * w // 1500) if n_dust is None else int(n_dust)
    rows, cols = np.mgrid[0:h, 0:w]
    for _ in range(n_dust):
        r0, c0 = rng.uniform(0, h), rng.uniform(0, w)
        radius = rng.uniform(0.6, 2.5) * max(h, w) / 100.0
        depth = rng.uniform(0.1, 0.35)
        gain *= 1 - depth * np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2 * radius**2))
    # a faint fixed pattern of pixel-to-pixel sensitivity
    from scipy.ndimage import gaussian_filter  # here: scipy.ndimage costs 0.25 s to import, and noise-free runs never need it

    gain *= 1 + 0.01 * gaussian_filter(rng.normal(size=(h, w)), 0.7)
    hot = rng.random((h, w)) < hot_fraction
    return gain, hot


@dataclass
class DetectionModel:
    """Everything that turns theoretical patterns into camera images of one detector.

    Create with :meth:`create`; apply with :meth:`apply`.

    Attributes
    ----------
    counts
        Mean counts per pixel.
    contrast
        Kikuchi contrast: relative standard deviation of the band signal.
    background
        (h, w) backscatter background, mean 1.
    gain
        (h, w) static gain (dust, halves).
    hot
        (h, w) hot pixels.
    read_noise
        Camera read noise in counts (standard deviation).
    dark_offset
        Camera offset in digital units.
    bit_depth
        8 or 16.
    scale
        Digital units per count, chosen so that the brightest expected
        pixel reaches 80 % of the range.
    """

    counts: float
    contrast: float
    background: np.ndarray
    gain: np.ndarray
    hot: np.ndarray
    read_noise: float
    dark_offset: float
    bit_depth: int
    scale: float = field(init=False)

    def __post_init__(self) -> None:
        if self.bit_depth not in (8, 16):
            raise ValueError(f"bit_depth must be 8 or 16, got {self.bit_depth}")
        peak = float((self.counts * self.background * self.gain).max()) * (1 + 3 * self.contrast)
        self.scale = 0.8 * (self.full_scale - self.dark_offset) / peak

    @property
    def full_scale(self) -> int:
        return (1 << self.bit_depth) - 1

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self.bit_depth == 8 else np.uint16)

    @classmethod
    def create(
        cls,
        shape: tuple[int, int],
        *,
        noise: str | float = "medium",
        detector: Any = None,
        contrast: float = DEFAULT_CONTRAST,
        bit_depth: int = 8,
        read_noise: float | None = None,
        seed: int | None = 0,
    ) -> DetectionModel:
        """A detection model for patterns of ``shape`` at a noise level ('low', 'medium', 'high' or counts per pixel)."""
        counts = _counts(noise)
        gain, hot = static_response(shape, seed=seed)
        if read_noise is None:
            read_noise = 0.02 * counts ** 0.5 + 1.0
        full = 255 if bit_depth == 8 else 65535
        return cls(
            counts=counts,
            contrast=float(contrast),
            background=backscatter_background(shape, detector),
            gain=gain,
            hot=hot,
            read_noise=float(read_noise),
            dark_offset=0.03 * full,
            bit_depth=int(bit_depth),
        )

    @property
    def static_background(self) -> np.ndarray:
        """(h, w) float32 expected mean image in digital units (what a map's average pattern converges to)."""
        img = self.dark_offset + self.scale * self.counts * self.background * self.gain
        img = np.where(self.hot, self.full_scale, img)
        return img.astype(np.float32)

    def expected_counts(self, patterns: np.ndarray) -> np.ndarray:
        """(n, h, w) expected counts of theoretical patterns (each normalised to zero mean, unit std)."""
        p = np.asarray(patterns, dtype=np.float64)
        if p.ndim == 2:
            p = p[None]
        if p.shape[1:] != self.background.shape:
            raise ValueError(f"patterns of shape {p.shape[1:]} do not fit this detection model's {self.background.shape}")
        mean = p.mean(axis=(1, 2), keepdims=True)
        std = p.std(axis=(1, 2), keepdims=True)
        k = (p - mean) / np.where(std > 0, std, 1.0)
        return self.counts * self.background * self.gain * np.clip(1 + self.contrast * k, 0, None)

    def apply(self, patterns: np.ndarray, *, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Camera images (n, h, w) uint8|uint16 of theoretical patterns (n, h, w): shot noise, read noise, offset, hot pixels, digitisation."""
        rng = np.random.default_rng(rng)
        lam = self.expected_counts(patterns)
        detected = rng.poisson(lam).astype(np.float64)
        detected += rng.normal(0.0, self.read_noise, size=detected.shape)
        digital = self.dark_offset + self.scale * detected
        digital[:, self.hot] = self.full_scale
        return np.clip(np.rint(digital), 0, self.full_scale).astype(self.dtype)


def detect(
    patterns: np.ndarray,
    *,
    noise: str | float = "medium",
    detector: Any = None,
    contrast: float = DEFAULT_CONTRAST,
    bit_depth: int = 8,
    seed: int | None = 0,
) -> np.ndarray:
    """Camera images of theoretical patterns; see :class:`DetectionModel`.

    Parameters
    ----------
    patterns
        (n, h, w) or (h, w) theoretical patterns (any units).
    noise
        'low', 'medium', 'high' (1000, 100, 16 counts per pixel) or counts per pixel.
    detector
        :class:`kikuchi.geometry.Detector` for the backscatter background geometry.
    contrast
        Kikuchi contrast (relative standard deviation of the band signal):
        :data:`DEFAULT_CONTRAST` (0.12), or :data:`REAL_NI_CONTRAST` (0.02)
        for bands as faint as in real Ni patterns.
    bit_depth
        8 or 16.
    seed
        Random seed of the detector response and the noise.

    Returns
    -------
    numpy.ndarray
        (n, h, w), or (h, w) for one pattern, uint8 or uint16.

    Examples
    --------
    >>> p = np.random.default_rng(0).normal(size=(2, 30, 40))
    >>> img = detect(p, noise="low", seed=1)
    >>> img.shape, img.dtype
    ((2, 30, 40), dtype('uint8'))
    """
    p = np.asarray(patterns)
    single = p.ndim == 2
    p3 = p[None] if single else p
    if p3.ndim != 3:
        raise ValueError(f"patterns must have shape (n, h, w) or (h, w), got {p.shape}")
    model = DetectionModel.create(p3.shape[1:], noise=noise, detector=detector, contrast=contrast, bit_depth=bit_depth, seed=seed)
    out = model.apply(p3, rng=None if seed is None else seed + 1)
    return out[0] if single else out
