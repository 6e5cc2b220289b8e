"""Pattern quality: Krieger Lassen's image quality and the neighbour dot product.

Image quality (IQ)
    The metric ``Q`` of N. C. Krieger Lassen (PhD thesis "Automated
    determination of crystal orientations from electron backscattering
    patterns", Technical University of Denmark, 1994), in the notation of
    Marquardt et al., Materials Characterization 129 (2017) 112 (used by
    kikuchipy's ``get_image_quality``)::

        Q     = 1 - J / (J_res w_tot)
        J     = sum_{h,k} w(h, k) |q|^2
        J_res = (1 / N^2) sum_{h,k} |q|^2
        w_tot = sum_{h,k} w(h, k)

    with ``q = (h, k)`` the integer frequency vector of the 2-D FFT of the
    pattern normalised to zero mean and unit standard deviation, and
    ``w = |F(h, k)|`` the modulus of that FFT. (kikuchipy's documentation
    calls ``w`` the power spectrum, but its code, like ours, weights by the
    modulus; with the modulus the noise floor counts more and ``Q`` falls
    when the Kikuchi bands blur into the noise, which is what an IQ map is
    for. Our ``|q|^2`` are the exact integer frequencies; kikuchipy's are
    offset by one on the positive half axes, a difference of about 1 % in
    ``Q``.) ``J / w_tot`` is the spectrum's moment of inertia: white noise
    has ``J / w_tot = J_res`` (Q = 0), strong Kikuchi bands with little
    noise approach 1. Compute it on the Kikuchi signal (background
    removed): the smooth background of a raw pattern puts nearly all
    amplitude at the lowest frequencies.

Average neighbour dot product (ADP)
    The mean over the four nearest map neighbours of the normalised dot
    product (the Pearson correlation) of two patterns: high inside grains,
    low at boundaries and for poor patterns.
"""

from __future__ import annotations

import numpy as np

from kikuchi.imaging import _kernels
from kikuchi.imaging.vbse import _check_stack
from kikuchi.process.no_signal import no_signal

__all__ = ["image_quality", "neighbour_dot_product", "normalised_patterns"]


def image_quality(patterns: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Krieger Lassen's image quality ``Q`` of each pattern (see the module notes).

    Parameters
    ----------
    patterns
        (h, w), (n, h, w) or (rows, cols, h, w).
    chunk
        Patterns per FFT batch (bounds the temporary memory).

    Returns
    -------
    numpy.ndarray
        Shape of the leading axes of ``patterns``; NaN for a pattern that
        holds no signal (all one value, or a value not finite).

    Examples
    --------
    Smooth content scores higher than white noise (Q near 0):

    >>> rng = np.random.default_rng(0)
    >>> y, x = np.mgrid[:64, :64]
    >>> smooth = np.sin(x / 6.0) + np.cos(y / 9.0)
    >>> q = image_quality(np.stack([smooth, rng.normal(size=(64, 64))]))
    >>> bool(q[0] > 0.9), bool(abs(q[1]) < 0.05)
    (True, True)
    """
    patterns = _check_stack(patterns)
    if not float(chunk).is_integer() or chunk < 1:
        raise ValueError(f"chunk must be a whole number of patterns >= 1, got {chunk}")
    lead, (h, w) = patterns.shape[:-2], patterns.shape[-2:]
    stack = patterns.reshape(-1, h, w)
    q2 = _kernels.half_q2((h, w))
    out = np.empty(stack.shape[0])
    for start in range(0, stack.shape[0], chunk):
        out[start : start + chunk] = 1.0 - _kernels.spectral_inertia(stack[start : start + chunk], q2)
    out[no_signal(stack)] = np.nan  # all one value, or not finite: no spectrum to weigh
    return out.reshape(lead)


def normalised_patterns(patterns: np.ndarray) -> np.ndarray:
    """Patterns flattened to zero mean and unit norm: (..., h * w) float64."""
    patterns = _check_stack(patterns)
    lead, (h, w) = patterns.shape[:-2], patterns.shape[-2:]
    stack = np.ascontiguousarray(patterns.reshape(-1, h, w))
    out = np.empty((stack.shape[0], h * w), dtype=np.float64)
    _kernels.normalise_stack(stack, out)
    return out.reshape(*lead, h * w)


def neighbour_dot_product(patterns: np.ndarray, *, have: np.ndarray | None = None, core: tuple[int, int] | None = None) -> np.ndarray:
    """Average normalised dot product of each pattern with its 4 nearest map neighbours.

    Parameters
    ----------
    patterns
        Map (rows, cols, h, w).
    have
        (rows, cols) bool: points with a pattern (default all). Points
        without one give NaN and are no one's neighbour; so do points whose
        pattern holds no signal (all one value, or a value not finite: its
        correlation with anything is undefined).
    core
        Only compute map rows ``core[0]:core[1]`` (the others serve as
        neighbours); default all rows.

    Returns
    -------
    numpy.ndarray
        (core rows, cols) in [-1, 1]; NaN for a point without a neighbour.

    Examples
    --------
    Two identical patterns and one negated: the middle point averages 1 and -1.

    >>> p = np.random.default_rng(1).normal(size=(8, 8))
    >>> neighbour_dot_product(np.stack([p, p, -p])[None]).round(6).tolist()
    [[1.0, 0.0, -1.0]]
    """
    patterns = np.asarray(patterns)
    if patterns.ndim != 4:
        raise ValueError(f"patterns must be a map (rows, cols, h, w), got shape {patterns.shape}")
    rows, cols = patterns.shape[:2]
    have = np.ones((rows, cols), dtype=bool) if have is None else np.asarray(have, dtype=bool)
    if have.shape != (rows, cols):
        raise ValueError(f"have mask of shape {have.shape} does not fit the {rows} x {cols} map")
    r0, r1 = (0, rows) if core is None else core
    if not (0 <= r0 <= r1 <= rows):
        raise ValueError(f"core rows {r0}:{r1} must lie within the {rows} map rows")
    lo, hi = max(0, r0 - 1), min(rows, r1 + 1)
    norm = normalised_patterns(patterns[lo:hi])  # (hi - lo, cols, m)
    ok = have[lo:hi] & ~no_signal(patterns[lo:hi])
    total = np.zeros((hi - lo, cols))
    count = np.zeros((hi - lo, cols))
    right = np.empty((hi - lo, max(cols - 1, 0)))
    down = np.empty((max(hi - lo - 1, 0), cols))
    _kernels.neighbour_dots(norm, right, down)

    def add(a_sl: tuple[slice, slice], b_sl: tuple[slice, slice], dots: np.ndarray) -> None:
        pair = ok[a_sl] & ok[b_sl]
        d = np.where(pair, dots, 0.0)
        total[a_sl] += d
        count[a_sl] += pair
        total[b_sl] += d
        count[b_sl] += pair

    add((slice(None), slice(0, cols - 1)), (slice(None), slice(1, cols)), right)  # right neighbour
    add((slice(0, hi - lo - 1), slice(None)), (slice(1, hi - lo), slice(None)), down)  # neighbour below
    with np.errstate(invalid="ignore", divide="ignore"):
        adp = np.where(ok & (count > 0), total / np.where(count > 0, count, 1), np.nan)
    return adp[r0 - lo : r1 - lo]
