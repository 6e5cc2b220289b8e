"""Images made from a virtual BSE array (map rows, map cols, grid rows, grid cols).

Grayscale images of regions, grid rows and grid columns; colour images from
three regions; "differential" colour images from the ratio of a grid row to
the row above; asymmetry images; and line-by-line removal of scan-line
drifts, which applies to any of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "region_image",
    "grid_row_images",
    "grid_col_images",
    "montage",
    "block_mean",
    "normalise_channel",
    "rgb_image",
    "default_rgb_regions",
    "differential_array",
    "differential_rgb_image",
    "asymmetry",
    "remove_line_gradient",
]


def _floating(a: np.ndarray) -> np.ndarray:
    """The array as it is when floating point (no copy of a map-sized float32 array), else as float64."""
    a = np.asarray(a)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float64)


def _check_vbse(vbse: np.ndarray) -> np.ndarray:
    vbse = _floating(vbse)
    if vbse.ndim != 4:
        raise ValueError(f"virtual BSE array must be (map rows, map cols, grid rows, grid cols), got shape {vbse.shape}")
    return vbse


def region_image(vbse: np.ndarray, region: tuple[int, int]) -> np.ndarray:
    """The map image of one region (grid row, grid col).

    >>> region_image(np.arange(16.0).reshape(1, 1, 4, 4), (2, 1)).tolist()
    [[9.0]]
    """
    vbse = _check_vbse(vbse)
    gr, gc = vbse.shape[2:]
    i, j = (int(v) for v in region)
    if not (-gr <= i < gr and -gc <= j < gc):
        raise IndexError(f"region ({i}, {j}) is outside the {gr} x {gc} grid")
    return vbse[:, :, i, j]


def grid_row_images(vbse: np.ndarray) -> np.ndarray:
    """(grid rows, map rows, map cols): each grid row averaged over its regions."""
    return np.moveaxis(_check_vbse(vbse).mean(axis=3, dtype=np.float64), 2, 0)


def grid_col_images(vbse: np.ndarray) -> np.ndarray:
    """(grid cols, map rows, map cols): each grid column averaged over its regions."""
    return np.moveaxis(_check_vbse(vbse).mean(axis=2, dtype=np.float64), 2, 0)


def _scaled(image: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return (image - lo) / (hi - lo) if hi > lo else np.zeros_like(image)


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean of each ``factor`` x ``factor`` block of a map image, NaN (missing points) left out.

    The blocks at the bottom and right edges may be smaller; a block of only
    NaN gives NaN. Used to draw maps larger than the figure shows them: every
    point counts, where picking one point per block (what a figure's nearest
    resampling does) would alias.

    >>> block_mean(np.array([[1.0, 3.0, 5.0], [np.nan, 5.0, np.nan]]), 2).tolist()
    [[3.0, 5.0]]
    """
    image = np.asarray(image, dtype=np.float64)
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if factor == 1:
        return image
    rows, cols = image.shape
    out_r, out_c = -(-rows // factor), -(-cols // factor)
    total = np.zeros((out_r, out_c))
    count = np.zeros((out_r, out_c))
    for di in range(factor):  # factor^2 strided passes: no padded copy of the image
        for dj in range(factor):
            part = image[di::factor, dj::factor]
            ok = np.isfinite(part)
            total[: part.shape[0], : part.shape[1]] += np.where(ok, part, 0.0)
            count[: part.shape[0], : part.shape[1]] += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def montage(
    images: np.ndarray, *, scale: str = "common", gap: int = 1, percentiles: tuple[float, float] = (0.5, 99.5), max_px: int | None = None
) -> np.ndarray:
    """Tile a grid of map images into one image, separated by NaN gaps.

    Parameters
    ----------
    images
        (grid rows, grid cols, map rows, map cols), or a virtual BSE array
        (map rows, map cols, grid rows, grid cols) passed through
        ``np.moveaxis(vbse, (2, 3), (0, 1))``; a stack (k, rows, cols) is one
        grid row.
    scale
        'common': values kept (one intensity scale for all tiles);
        'individual': each tile stretched to [0, 1] between its own
        ``percentiles``.
    gap
        NaN pixels between tiles.
    max_px
        Largest side of the result: tiles larger than that allows are
        reduced first by :func:`block_mean` (one integer factor for all), so
        that a figure of a map of millions of points is drawn from an image
        of the size it is shown at, gaps kept. ``None``: full size.

    Returns
    -------
    numpy.ndarray
        (gr * rows + (gr - 1) gap, gc * cols + (gc - 1) gap).

    Examples
    --------
    >>> montage(np.ones((2, 2, 1, 1)), gap=1).tolist()
    [[1.0, nan, 1.0], [nan, nan, nan], [1.0, nan, 1.0]]
    """
    images = _floating(images)  # tiles become float64 one at a time
    if not float(gap).is_integer() or gap < 0:
        raise ValueError(f"gap must be a whole number of pixels >= 0, got {gap}")
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"montage needs (grid rows, grid cols, rows, cols) images, got shape {images.shape}")
    if scale not in ("common", "individual"):
        raise ValueError(f"scale {scale!r}: expected 'common' or 'individual'")
    gr, gc, r, c = images.shape
    factor = 1
    if max_px is not None:
        if max_px < 1:
            raise ValueError(f"max_px must be >= 1, got {max_px}")
        factor = max(1, -(-max(gr * r, gc * c) // int(max_px)))
        r, c = -(-r // factor), -(-c // factor)
    out = np.full((gr * r + (gr - 1) * gap, gc * c + (gc - 1) * gap), np.nan)
    for i in range(gr):
        for j in range(gc):
            tile = block_mean(images[i, j], factor)
            if scale == "individual":
                finite = tile[np.isfinite(tile)]
                lo, hi = np.percentile(finite, percentiles) if finite.size else (0.0, 1.0)
                tile = np.clip(_scaled(tile, lo, hi), 0, 1)
            out[i * (r + gap) : i * (r + gap) + r, j * (c + gap) : j * (c + gap) + c] = tile
    return out


def normalise_channel(image: np.ndarray, *, n_std: float = 2.0) -> np.ndarray:
    """Map ``median +- n_std * std`` of an image to [0, 1] (clipped), NaN kept.

    >>> normalise_channel(np.array([1.0, 2.0, 3.0]), n_std=1.0).round(3).tolist()
    [0.0, 0.5, 1.0]
    """
    image = np.asarray(image, dtype=np.float64)
    if n_std <= 0:
        raise ValueError(f"n_std must be > 0, got {n_std}")
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return np.full_like(image, np.nan)
    med, std = float(np.median(finite)), float(np.std(finite))
    if std == 0:
        return np.where(np.isfinite(image), 0.5, np.nan)
    return np.clip(0.5 + (image - med) / (2.0 * n_std * std), 0.0, 1.0)


def default_rgb_regions(grid: tuple[int, int], *, row: int | None = None) -> list[tuple[int, int]]:
    """Left, middle and right region of one grid row (default: the bottom row).

    >>> default_rgb_regions((7, 7))
    [(6, 0), (6, 3), (6, 6)]
    """
    gr, gc = grid
    row = gr - 1 if row is None else row
    if not -gr <= row < gr:
        raise IndexError(f"grid row {row} is outside a grid of {gr} rows")
    return [(row % gr, 0), (row % gr, gc // 2), (row % gr, gc - 1)]


def rgb_image(
    vbse: np.ndarray,
    *,
    regions: Sequence[tuple[int, int]] | None = None,
    n_std: float = 2.0,
) -> np.ndarray:
    """Colour image from three regions of a virtual BSE array.

    Each channel is normalised around its median by its standard deviation
    (:func:`normalise_channel`), so the colour shows how the intensity of
    the three regions changes relative to each other: with orientation,
    the Kikuchi bands move across the regions and each grain takes its own
    colour.

    Parameters
    ----------
    vbse
        (map rows, map cols, grid rows, grid cols).
    regions
        (grid row, grid col) of the red, green and blue channels; default
        the left, middle and right region of the bottom grid row.
    n_std
        Standard deviations either side of the median that span a channel.

    Returns
    -------
    numpy.ndarray
        (map rows, map cols, 3) in [0, 1].
    """
    vbse = _check_vbse(vbse)
    regions = default_rgb_regions(vbse.shape[2:]) if regions is None else list(regions)
    if len(regions) != 3:
        raise ValueError(f"need three regions (red, green, blue), got {len(regions)}")
    return np.stack([normalise_channel(region_image(vbse, reg), n_std=n_std) for reg in regions], axis=-1)


def differential_array(vbse: np.ndarray) -> np.ndarray:
    """Ratio of each grid row to the row above: (map rows, map cols, grid rows - 1, grid cols).

    Row ``k`` of the result is ``vbse[..., k + 1, :] / vbse[..., k, :]``: the
    slow change of the background down the detector cancels, what remains is
    the local change in the diffraction signal.

    >>> differential_array(np.array([1.0, 2.0, 4.0, 8.0]).reshape(1, 1, 2, 2)).tolist()
    [[[[4.0, 4.0]]]]
    """
    vbse = _check_vbse(vbse)
    if vbse.shape[2] < 2:
        raise ValueError("a differential image needs a grid of at least two rows")
    with np.errstate(divide="ignore", invalid="ignore"):
        return vbse[:, :, 1:, :] / vbse[:, :, :-1, :]


def differential_rgb_image(vbse: np.ndarray, *, row: int | None = None, n_std: float = 2.0) -> np.ndarray:
    """Colour image from the left, middle and right ratio of grid row ``row + 1`` to ``row``.

    ``row`` indexes :func:`differential_array` (default: its last row, the
    bottom grid row over the one above it).
    """
    diff = differential_array(vbse)
    return rgb_image(diff, regions=default_rgb_regions(diff.shape[2:], row=row), n_std=n_std)


def asymmetry(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / (a + b)``, NaN where ``a + b`` is 0.

    >>> asymmetry(np.array([3.0, 0.0]), np.array([1.0, 0.0])).tolist()
    [0.5, nan]
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"asymmetry: a {a.shape} and b {b.shape} must be images of the same shape")
    total = a + b
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total != 0, (a - b) / np.where(total != 0, total, 1.0), np.nan)


def remove_line_gradient(image: np.ndarray, *, order: int = 1) -> np.ndarray:
    """Remove scan-line drifts: fit and subtract a polynomial along each map row.

    Each map row (one scan line) gets its own least-squares polynomial of
    ``order`` in the column index (0: an offset, 1: offset and slope); the
    fit is subtracted and the mean of the whole image added back, so the
    intensity level stays. NaN points are ignored in the fit and kept.
    Colour images (rows, cols, 3) are treated channel by channel.

    Examples
    --------
    >>> img = np.array([[1.0, 2.0, 3.0], [11.0, 12.0, 13.0]])
    >>> remove_line_gradient(img).round(6).tolist()
    [[7.0, 7.0, 7.0], [7.0, 7.0, 7.0]]
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3:
        return np.stack([remove_line_gradient(image[..., k], order=order) for k in range(image.shape[2])], axis=-1)
    if image.ndim != 2:
        raise ValueError(f"image must be (rows, cols) or (rows, cols, 3), got shape {image.shape}")
    if order not in (0, 1, 2):
        raise ValueError(f"polynomial order {order} along scan lines: expected 0, 1 or 2")
    out = image.copy()
    x = np.arange(image.shape[1], dtype=np.float64)
    x = x - x.mean()
    level = float(np.nanmean(image)) if np.isfinite(image).any() else 0.0
    basis = np.stack([x**k for k in range(order + 1)], axis=1)
    for r in range(image.shape[0]):
        ok = np.isfinite(image[r])
        if ok.sum() <= order:
            continue
        coef, *_ = np.linalg.lstsq(basis[ok], image[r, ok], rcond=None)
        out[r] = image[r] - basis @ coef + level
    return out
