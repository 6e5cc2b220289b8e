"""Realistic synthetic EBSD patterns for the benchmarks, built from a real pattern.

The Kikuchi signal is ``ocean_116_176_raw.bmp / ocean_map_average.dat`` (a real
raw pattern over its map's mean pattern, 0.76..1.24); each synthetic pattern
is that signal shifted by a random offset (another orientation, roughly),
times the static background, with Poisson noise. 16-bit patterns are scaled
to about 1000 counts per pixel and multiplied by 8, as the 12-bit-in-16-bit
AZtec TIFFs of the xcdskd examples are (their values are multiples of 8).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xcdskd"


def _sources() -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    raw = np.asarray(Image.open(SHARED / "ocean_116_176_raw.bmp").convert("L"), dtype=np.float64)
    background = np.loadtxt(SHARED / "ocean_map_average.dat")
    signal = raw / np.maximum(background, 1.0)
    return signal, background


class PatternMaker:
    """Make patterns of ``shape`` and ``dtype`` ('uint16' 240x240 or 'uint8' 60x60 ...)."""

    def __init__(self, shape: tuple[int, int] = (240, 240), dtype: str = "uint16", seed: int = 0):
        signal, background = _sources()  # (240, 320)
        self.shape = shape
        self.dtype = np.dtype(dtype)
        h, w = background.shape
        factor = max(1, h // shape[0])
        if factor > 1:
            hh, ww = h // factor, w // factor
            background = background[: hh * factor, : ww * factor].reshape(hh, factor, ww, factor).mean(axis=(1, 3))
            signal = signal[: hh * factor, : ww * factor].reshape(hh, factor, ww, factor).mean(axis=(1, 3))
        self.signal = np.pad(signal, 24 // factor + 2, mode="reflect")
        self.margin = 24 // factor + 2
        self.background = background[: shape[0], : shape[1]] / background.mean()
        self.rng = np.random.default_rng(seed)

    def __call__(self) -> np.ndarray:
        m = self.margin
        dy, dx = self.rng.integers(-m + 1, m, size=2)
        h, w = self.shape
        sig = self.signal[m + dy : m + dy + h, m + dx : m + dx + w]
        brightness = self.rng.uniform(0.9, 1.1)
        if self.dtype == np.uint16:
            lam = 1000.0 * brightness * self.background * sig
            return np.minimum(self.rng.poisson(lam) * 8, 65535).astype(np.uint16)
        lam = 100.0 * brightness * self.background * sig
        return np.minimum(self.rng.poisson(lam), 255).astype(np.uint8)

    def stack(self, n: int) -> np.ndarray:
        return np.stack([self() for _ in range(n)])
