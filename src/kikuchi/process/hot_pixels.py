"""Hot (and dead) pixel detection and removal."""

from __future__ import annotations

from typing import Any

import numpy as np

from kikuchi.process.background import _as_stack

__all__ = ["find_hot_pixels", "remove_hot_pixels"]


def _median3(stack: np.ndarray) -> np.ndarray:
    import scipy.ndimage  # here, not at import: kikuchi's commands start faster

    return scipy.ndimage.median_filter(stack, size=(1, 3, 3), mode="nearest")


def find_hot_pixels(image: Any, *, threshold: float = 6.0, min_relative: float = 0.05, dead: bool = False) -> np.ndarray:
    """Pixels that stand out from their 3 x 3 neighbourhood.

    A pixel is hot when it exceeds the median of its 3 x 3 neighbourhood by
    more than ``threshold`` robust standard deviations (1.4826 x the median
    absolute deviation of image - median over the image) and by more than
    ``min_relative`` of that median (on a smooth image such as an averaged
    static background the MAD is tiny; the relative bound keeps ordinary
    structure out). Best run on the static background or the mean pattern
    of a map: hot pixels are a property of the detector.

    Parameters
    ----------
    image
        One image (h, w).
    threshold
        In robust standard deviations, > 0.
    min_relative
        Least deviation as a fraction of the local median.
    dead
        Also flag pixels as far below their neighbourhood.

    Returns
    -------
    numpy.ndarray
        (h, w) bool mask.

    Examples
    --------
    >>> img = np.random.default_rng(0).normal(10.0, 1.0, (8, 8))
    >>> img[2, 3] = 90.0
    >>> np.argwhere(find_hot_pixels(img)).tolist()
    [[2, 3]]
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"image must be (h, w); got shape {img.shape}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    med = _median3(img[None])[0]
    resid = img - med
    mad = float(np.median(np.abs(resid - np.median(resid))))
    scale = 1.4826 * mad if mad > 0 else float(np.std(resid)) or 1.0
    bound = np.maximum(threshold * scale, min_relative * np.abs(med))
    mask = resid > bound
    if dead:
        mask |= resid < -bound
    return mask


def remove_hot_pixels(patterns: Any, *, mask: Any = None, threshold: float = 6.0, dead: bool = False) -> np.ndarray:
    """Replace hot pixels by the median of their 3 x 3 neighbourhood.

    Parameters
    ----------
    patterns
        One pattern (h, w) or a stack (n, h, w).
    mask
        (h, w) bool mask of the pixels to replace (e.g. from
        :func:`find_hot_pixels` on the static background). Without a mask
        each pattern is searched separately with ``threshold`` and ``dead``.
    threshold, dead
        See :func:`find_hot_pixels`.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype.
    """
    stack, single = _as_stack(patterns)
    out = stack.copy()
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != stack.shape[1:]:
            raise ValueError(f"hot pixel mask of shape {mask.shape} does not fit patterns of shape {stack.shape[1:]}")
        if mask.any():
            med = _median3(stack)
            out[:, mask] = med[:, mask]
    else:
        for i, p in enumerate(stack):
            m = find_hot_pixels(p, threshold=threshold, dead=dead)
            if m.any():
                out[i][m] = _median3(p[None])[0][m]
    return out[0] if single else out
