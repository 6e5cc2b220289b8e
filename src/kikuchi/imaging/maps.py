"""Imaging of whole maps: one streamed pass over the patterns through the engine.

:func:`vbse_maps` computes the virtual BSE array, the total BSE image, the
centres of mass and the virtual diodes in one pass; :func:`quality_maps`
the image quality, neighbour dot product, mean and standard deviation maps
in another (with one halo row for the neighbours). Both run serially, on
threads or on a dask cluster (:func:`kikuchi.engine.map_reduce`).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kikuchi.engine import map_reduce
from kikuchi.imaging.centre_of_mass import centre_of_mass, pattern_moments
from kikuchi.imaging.quality import image_quality, neighbour_dot_product
from kikuchi.imaging.vbse import diode_array, parse_grid, vbse_array
from kikuchi.io.mapstore import EBSDMap
from kikuchi.process.no_signal import NoSignalWarning, check_static_background, no_signal, no_signal_summary

__all__ = ["SIGNALS", "vbse_map", "VbseMaps", "QualityMaps", "vbse_maps", "quality_maps", "kikuchi_signal", "kikuchi_ratio", "place_on_map"]

_logger = logging.getLogger(__name__)

#: What the virtual BSE regions average: the raw patterns, the Kikuchi
#: signal after background removal, or the smooth background alone.
SIGNALS = ("raw", "kikuchi", "background")


def kikuchi_signal(
    patterns: np.ndarray,
    *,
    sigma: float | None = None,
    static_background: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Split patterns into the Kikuchi signal and the smooth background.

    The patterns are divided by the static background (when given), then
    separated by :func:`kikuchi.process.make_signal_bg`: a Gaussian
    low-pass is the background, ``signal = pattern - background``.

    Parameters
    ----------
    patterns
        (n, h, w).
    sigma
        Width of the background low-pass in pixels (default of
        :func:`kikuchi.process.make_signal_bg`).
    static_background
        (h, w) detector background, or None.

    Returns
    -------
    signal, background
        Two float32 arrays of the shape of ``patterns``.
    """
    from kikuchi.process import make_signal_bg, remove_static_background

    patterns = np.asarray(patterns)
    if static_background is not None:
        patterns = remove_static_background(patterns, static_background, operation="divide", dtype=np.float32)
    # 'auto': the direct separable Gaussian (numba, no FFT) for the usual widths; the same values up to rounding
    signal, background = make_signal_bg(patterns, sigma=sigma, method="auto")
    return signal.astype(np.float32, copy=False), background.astype(np.float32, copy=False)


def kikuchi_ratio(signal: np.ndarray, background: np.ndarray) -> np.ndarray:
    """``image / background = 1 + signal / background``: the Kikuchi signal as a positive ratio.

    Used for the centre of mass of the Kikuchi signal, which needs weights
    >= 0; 0 where the background is not positive.
    """
    out = np.zeros(signal.shape, dtype=np.float32)
    np.divide(signal, background, out=out, where=background > 0)
    out += np.float32(1.0)
    return out


def place_on_map(values: np.ndarray, index_map: np.ndarray) -> np.ndarray:
    """Per-pattern values (N, ...) in storage order -> (rows, cols, ...) map, NaN where no pattern.

    >>> place_on_map(np.array([1.0, 2.0]), np.array([[1, -1]])).tolist()
    [[2.0, nan]]
    """
    values = np.asarray(values)
    dtype = np.float32 if values.dtype == np.float32 else np.float64  # float32 results stay float32 (memory)
    out = np.full((*index_map.shape, *values.shape[1:]), np.nan, dtype=dtype)
    have = index_map >= 0
    out[have] = values[index_map[have]]
    return out


@dataclass
class VbseMaps:
    """Images of one pass over a map (float32, NaN where the map has no pattern).

    Attributes
    ----------
    vbse
        (rows, cols, grid rows, grid cols) region means of ``signal``.
    bse
        (rows, cols) total BSE image: mean of each raw pattern.
    com_raw
        (rows, cols, 2) centre of mass (x, y) in pixels of the raw patterns.
    com_kikuchi
        (rows, cols, 2) centre of mass of the Kikuchi signal as the ratio
        ``pattern / background`` (positive), or None.
    diodes
        (rows, cols, 2, 3) virtual forward-scatter diodes of the raw
        patterns: [top, bottom] x [left, middle, right].
    no_signal
        (rows, cols) bool: points whose pattern holds no signal (all one
        value, or not finite); NaN in every image.
    """

    vbse: np.ndarray
    bse: np.ndarray
    com_raw: np.ndarray
    com_kikuchi: np.ndarray | None
    diodes: np.ndarray
    grid: tuple[int, int]
    signal: str
    step_um: tuple[float, float]
    pattern_shape: tuple[int, int]
    settings: dict[str, Any] = field(default_factory=dict)
    no_signal: np.ndarray | None = None


def _without_bad(patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The patterns with those that hold no signal replaced by zeros (the others keep their place in
    the stack, so their results are those of the stack without bad patterns, to the bit), and the flags."""
    if patterns.dtype == np.bool_:
        patterns = patterns.view(np.uint8)
    bad = no_signal(patterns)
    if bad.any():
        patterns = patterns.copy()
        patterns[bad] = 0
    return patterns, bad


def _vbse_chunk(
    patterns: np.ndarray,
    *,
    grid: tuple[int, int],
    signal: str,
    sigma: float | None,
    static_background: np.ndarray | None,
    com_kikuchi: bool,
    diode_strip: float,
) -> np.ndarray:
    """Per pattern: [vbse (gr * gc), bse, com raw (2), diodes (6), com kikuchi (2), no signal], float32.

    A pattern without signal (:func:`~kikuchi.process.no_signal.no_signal`) gets NaN everywhere and 1 in the last column.
    """
    patterns, bad = _without_bad(patterns)
    n = patterns.shape[0]
    parts = []
    moments = pattern_moments(patterns)
    if signal == "raw":
        parts.append(vbse_array(patterns, grid=grid).reshape(n, -1))
    elif signal == "background":  # the smooth part of the raw patterns themselves
        parts.append(vbse_array(kikuchi_signal(patterns, sigma=sigma)[1], grid=grid).reshape(n, -1))
    kik = bg = None
    if signal == "kikuchi" or com_kikuchi:
        kik, bg = kikuchi_signal(patterns, sigma=sigma, static_background=static_background)
    if signal == "kikuchi":
        parts.append(vbse_array(kik, grid=grid).reshape(n, -1))
    parts += [moments[:, :1], moments[:, 2:4], diode_array(patterns, strip=diode_strip).reshape(n, -1)]
    if com_kikuchi:
        parts.append(centre_of_mass(kikuchi_ratio(kik, bg)))
    out = np.concatenate(parts, axis=1).astype(np.float32)
    out[bad] = np.nan
    return np.concatenate([out, bad[:, None].astype(np.float32)], axis=1)


def _check_map(ebsd_map: Any, where: str) -> None:
    if not isinstance(ebsd_map, EBSDMap):
        raise ValueError(f"{where}: give an open map (kikuchi.open(path)), not {type(ebsd_map).__name__}; for arrays of patterns use vbse_array, image_quality, ...")


def _stream(
    ebsd_map: EBSDMap,
    func: Any,
    *,
    signal: str,
    static_background: bool,
    engine: dict[str, Any],
    halo_rows: int = 0,
    **kwargs: Any,
) -> tuple[np.ndarray, np.ndarray | None]:
    """One engine pass of ``func``; per-pattern results placed on the map (rows, cols, k), and the static background used.

    The last of the ``k`` values of each point is 1 where its pattern holds
    no signal (the points are counted in a :class:`NoSignalWarning`).
    """
    if signal not in SIGNALS:
        raise ValueError(f"signal {signal!r}: expected one of {', '.join(SIGNALS)}")
    bg = ebsd_map.static_background if static_background else None
    bg, _ = check_static_background(bg, source=f"{ebsd_map.path.name}: its static background")
    flat = map_reduce(ebsd_map, func, kwargs=dict(signal=signal, static_background=bg, **kwargs), halo_rows=halo_rows, **engine)
    if flat.size == 0:
        raise ValueError(f"{ebsd_map.path}: the map has no pattern at any point: there is nothing to image")
    values = place_on_map(flat.reshape(ebsd_map.n_patterns, -1), ebsd_map.index_map)
    flagged = values[..., -1] == 1
    if flagged.any():
        warnings.warn(
            f"{ebsd_map.path.name}: {no_signal_summary(flagged, have=ebsd_map.index_map >= 0)}; NaN in the images",
            NoSignalWarning,
            stacklevel=3,
        )
    return values, bg


def _vbse_only(
    patterns: np.ndarray, *, grid: tuple[int, int], signal: str, sigma: float | None, static_background: np.ndarray | None
) -> np.ndarray:
    """Per pattern: [vbse (gr * gc), no signal]; NaN for a pattern without signal."""
    patterns, bad = _without_bad(patterns)
    if signal == "kikuchi":
        patterns = kikuchi_signal(patterns, sigma=sigma, static_background=static_background)[0]
    elif signal == "background":
        patterns = kikuchi_signal(patterns, sigma=sigma)[1]
    out = vbse_array(patterns, grid=grid).astype(np.float32).reshape(len(patterns), -1)
    out[bad] = np.nan
    return np.concatenate([out, bad[:, None].astype(np.float32)], axis=1)


def vbse_map(
    ebsd_map: EBSDMap,
    *,
    grid: str | Sequence[int] | int = (7, 7),
    signal: str = "raw",
    sigma: float | None = None,
    static_background: bool = True,
    executor: str = "serial",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    chunk_rows: int | None = None,
) -> np.ndarray:
    """The virtual BSE array of a whole map, and nothing else (the fastest pass).

    Parameters are those of :func:`vbse_maps`.

    Returns
    -------
    numpy.ndarray
        (rows, cols, grid rows, grid cols) float32, NaN where the map has no pattern.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from kikuchi.io.mapstore import MapWriter, open_map
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.h5"
    >>> with MapWriter(p, nav_shape=(2, 2), pattern_shape=(4, 6), dtype="uint8") as w:
    ...     w.write(0, np.arange(4 * 24, dtype=np.uint8).reshape(4, 4, 6))
    >>> with open_map(p) as m:
    ...     vbse_map(m, grid=(1, 2), progress=False)[1, 1].tolist()
    [[82.0, 85.0]]
    """
    _check_map(ebsd_map, "vbse_map")
    gr, gc = parse_grid(grid)
    values, _ = _stream(
        ebsd_map, _vbse_only, signal=signal, static_background=static_background, grid=(gr, gc), sigma=sigma,
        engine=dict(executor=executor, workers=workers, scheduler=scheduler, progress=progress, chunk_rows=chunk_rows),
    )  # fmt: skip
    return values[..., :-1].reshape(*ebsd_map.nav_shape, gr, gc)


def vbse_maps(
    ebsd_map: EBSDMap,
    *,
    grid: str | Sequence[int] | int = (7, 7),
    signal: str = "raw",
    sigma: float | None = None,
    com_kikuchi: bool = False,
    diode_strip: float = 0.15,
    static_background: bool = True,
    executor: str = "serial",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    chunk_rows: int | None = None,
) -> VbseMaps:
    """Virtual BSE array, BSE image, centres of mass and diodes of a whole map.

    Parameters
    ----------
    ebsd_map
        The open map.
    grid
        Regions per pattern (grid rows, grid cols), e.g. ``'7x7'``.
    signal
        What the regions average: 'raw' patterns, the 'kikuchi' signal after
        background removal (static background divided out first when
        ``static_background``), or the smooth 'background' of the raw
        patterns alone.
    sigma
        Background low-pass width for 'kikuchi'/'background' (see
        :func:`kikuchi_signal`).
    com_kikuchi
        Also compute the centre of mass of the Kikuchi signal (off by
        default: it costs a background removal of every pattern unless
        ``signal='kikuchi'``; the 'background' signal is taken without the
        static background).
    diode_strip
        Height of the diode strips, fraction of the pattern height.
    static_background
        Divide by the file's static background (when it has one) before
        separating the Kikuchi signal.
    executor, workers, scheduler, progress, chunk_rows
        How the map is streamed (:func:`kikuchi.engine.map_reduce`).

    Returns
    -------
    VbseMaps
    """
    _check_map(ebsd_map, "vbse_maps")
    gr, gc = parse_grid(grid)
    if not 0.0 < diode_strip <= 0.5:
        raise ValueError(f"diode_strip {diode_strip} must be a fraction of the pattern height in (0, 0.5]")
    if sigma is not None and not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number of pixels (or None), got {sigma}")
    values, bg = _stream(
        ebsd_map, _vbse_chunk, signal=signal, static_background=static_background, grid=(gr, gc), sigma=sigma,
        com_kikuchi=com_kikuchi, diode_strip=diode_strip,
        engine=dict(executor=executor, workers=workers, scheduler=scheduler, progress=progress, chunk_rows=chunk_rows),
    )  # fmt: skip
    k = gr * gc
    return VbseMaps(
        vbse=values[..., :k].reshape(*ebsd_map.nav_shape, gr, gc),
        bse=values[..., k],
        com_raw=values[..., k + 1 : k + 3],
        diodes=values[..., k + 3 : k + 9].reshape(*ebsd_map.nav_shape, 2, 3),
        com_kikuchi=values[..., k + 9 : k + 11] if com_kikuchi else None,
        no_signal=values[..., -1] == 1,
        grid=(gr, gc),
        signal=signal,
        step_um=ebsd_map.step_um,
        pattern_shape=ebsd_map.pattern_shape,
        settings={
            "source": str(ebsd_map.path),
            "dataset": ebsd_map.dataset,
            "sigma": sigma,
            "diode_strip": diode_strip,
            "static_background": bg is not None,
        },
    )


@dataclass
class QualityMaps:
    """Quality maps (rows, cols), NaN where the map has no pattern.

    Attributes
    ----------
    iq
        Krieger Lassen image quality of the chosen signal.
    adp
        Average normalised dot product with the 4 nearest neighbours.
    mean, std
        Mean and standard deviation of each raw pattern.
    no_signal
        (rows, cols) bool: points whose pattern holds no signal (all one
        value, or not finite): NaN in every map, and no one's neighbour in
        the dot products.
    """

    iq: np.ndarray
    adp: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    signal: str
    step_um: tuple[float, float]
    settings: dict[str, Any] = field(default_factory=dict)
    no_signal: np.ndarray | None = None


def _quality_block(
    block: np.ndarray,
    have: np.ndarray,
    core: tuple[int, int],
    *,
    signal: str,
    sigma: float | None,
    static_background: np.ndarray | None,
) -> np.ndarray:
    """Per core point: [iq, adp, mean, std, no signal] from a block with one halo row.

    Points whose pattern holds no signal get NaN and 1 in the last column,
    and are no one's neighbour in the dot products.
    """
    rows, cols, h, w = block.shape
    flat, bad = _without_bad(block.reshape(-1, h, w))
    bad = bad.reshape(rows, cols) & have
    block = flat.reshape(rows, cols, h, w)
    have = have & ~bad
    if signal == "raw":
        sig = flat
    else:
        kik, bg = kikuchi_signal(flat, sigma=sigma, static_background=static_background)
        sig = kik if signal == "kikuchi" else bg
    sig = sig.reshape(rows, cols, h, w)
    i0, i1 = core
    out = np.empty((i1 - i0, cols, 5))
    out[..., 0] = image_quality(sig[i0:i1])
    out[..., 1] = neighbour_dot_product(sig, have=have, core=core)
    moments = pattern_moments(block[i0:i1])
    out[..., 2] = moments[..., 0]
    out[..., 3] = moments[..., 1]
    core_bad = bad[i0:i1]
    out[core_bad, :4] = np.nan
    out[..., 4] = core_bad
    return out


def quality_maps(
    ebsd_map: EBSDMap,
    *,
    signal: str = "kikuchi",
    sigma: float | None = None,
    static_background: bool = True,
    executor: str = "serial",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    chunk_rows: int | None = None,
) -> QualityMaps:
    """Image quality, neighbour dot product, mean and standard deviation maps.

    Parameters
    ----------
    ebsd_map
        The open map.
    signal
        Patterns the IQ and dot products are computed on: 'kikuchi'
        (default: background removed, as the IQ definition expects), 'raw'
        or 'background'. Mean and std are always of the raw patterns.
    sigma
        Width (pixels) of the Gaussian background removed before the IQ and
        dot products; default pattern width / 8 (kikuchipy's default for
        its dynamic background), wider than for :func:`vbse_maps`, so the
        Kikuchi bands stay in the signal.
    static_background
        Divide by the file's static background first (see :func:`vbse_maps`).
    executor, workers, scheduler, progress, chunk_rows
        How the map is streamed (:func:`kikuchi.engine.map_reduce`).

    Returns
    -------
    QualityMaps
    """
    _check_map(ebsd_map, "quality_maps")
    if sigma is None:  # a wide background, as kikuchipy's dynamic background before its IQ
        sigma = ebsd_map.pattern_shape[1] / 8.0
    if not (np.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number of pixels (or None), got {sigma}")
    values, bg = _stream(
        ebsd_map, _quality_block, signal=signal, static_background=static_background, sigma=sigma, halo_rows=1,
        engine=dict(executor=executor, workers=workers, scheduler=scheduler, progress=progress, chunk_rows=chunk_rows),
    )  # fmt: skip
    return QualityMaps(
        iq=values[..., 0],
        adp=values[..., 1],
        mean=values[..., 2],
        std=values[..., 3],
        no_signal=values[..., 4] == 1,
        signal=signal,
        step_um=ebsd_map.step_um,
        settings={"source": str(ebsd_map.path), "dataset": ebsd_map.dataset, "sigma": sigma, "static_background": bg is not None},
    )
