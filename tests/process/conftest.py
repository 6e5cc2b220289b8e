"""Real patterns and slow, direct reference implementations of the documented steps."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import shared_file


def documented_kernel_2d(sigma, support=None):
    """The documented kernel written out: samples at -(S-1)/2 + j up to (S-1)/2, outer product, sum 1."""
    support = 3.0 * sigma if support is None else support
    half = (support - 1.0) / 2.0
    x = []
    v = -half
    while v <= half + 1e-8:
        x.append(v)
        v += 1.0
    x = np.array(x)
    k = np.exp(-x[:, None] ** 2 / (2 * sigma**2) - x[None, :] ** 2 / (2 * sigma**2))
    return k / k.sum()


def direct_lowpass(img, sigma, support=None):
    """Correlation with the documented kernel, borders replicated, summed in real space (slow)."""
    k = documented_kernel_2d(sigma, support)
    kr, kc = k.shape
    h, w = img.shape
    # the documented FFT filter centres the window and rounds its extents down for even kernels
    ext = np.pad(np.asarray(img, float), ((kr // 2, kr - 1 - kr // 2), (kc // 2, kc - 1 - kc // 2)), mode="edge")
    out = np.zeros((h, w))
    for a in range(kr):
        for b in range(kc):
            out += k[a, b] * ext[a : a + h, b : b + w]
    return out


def documented_fft_lowpass(img, sigma):
    """The documented FFT steps: zero-pad to the next power of two of (image + kernel - 1),
    fill the padding by replicating the nearest border pixel (wrapping to the far end for the
    top and left borders), multiply by the FFT of the flipped kernel, crop."""
    img = np.asarray(img, float)
    k = documented_kernel_2d(sigma)
    (h, w), (kr, kc) = img.shape, k.shape

    def pow2(n):
        p = 1
        while p < n:
            p *= 2
        return p

    P = (pow2(h + kr - 1), pow2(w + kc - 1))
    pad = np.zeros(P)
    pad[:h, :w] = img
    offr, offc = (kr - 1) // 2, (kc - 1) // 2
    wr, wc = kr - offr - 1, kc - offc - 1
    pad[h : h + offr, :w] = img[-1]
    pad[:h, w : w + offc] = img[:, -1:]
    if wr:
        pad[P[0] - wr :, :w] = img[0]
    if wc:
        pad[:h, P[1] - wc :] = img[:, :1]
    pad[h : h + offr, w : w + offc] = img[-1, -1]
    if wr:
        pad[P[0] - wr :, w : w + offc] = img[0, -1]
    if wc:
        pad[h : h + offr, P[1] - wc :] = img[-1, 0]
    if wr and wc:
        pad[P[0] - wr :, P[1] - wc :] = img[0, 0]
    kpad = np.zeros(P)
    kpad[:kr, :kc] = k[::-1, ::-1]
    out = np.fft.irfft2(np.fft.rfft2(pad) * np.fft.rfft2(kpad), P)
    return out[offr : offr + h, offc : offc + w]


def downsample_mean(img, f):
    h, w = img.shape[-2:]
    return img.reshape(*img.shape[:-2], h // f, f, w // f, f).mean(axis=(-3, -1))


def img_to_uint(img, clow, chigh, dtype):
    """The documented conversion, through scikit-image as in the documentation."""
    from skimage import exposure

    lo, hi = np.percentile(img, (clow, chigh))
    return exposure.rescale_intensity(img, in_range=(lo, hi), out_range=dtype).astype(dtype)


@pytest.fixture
def ocean():
    """The real 320 x 240 ocean pattern and the average pattern of its map (its static background)."""
    from PIL import Image

    raw = np.asarray(Image.open(shared_file("xcdskd/ocean_116_176_raw.bmp")))
    background = np.loadtxt(shared_file("xcdskd/ocean_map_average.dat"))
    return raw, background


@pytest.fixture
def nickel():
    """The 3 x 3 map of real Ni patterns (60 x 60 uint8) and its static background."""
    import kikuchi

    with kikuchi.open(shared_file("kikuchipy/nickel_ebsd_small.h5")) as m:
        return m.read_all(), m.static_background
