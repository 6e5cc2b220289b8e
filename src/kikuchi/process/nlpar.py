"""Non-local pattern averaging (NLPAR; Brewick, Wright and Rowenhorst, Ultramicroscopy 200, 2019).

Each pattern is replaced by a weighted mean of the patterns of a
``(2r + 1) x (2r + 1)`` search window of map points around it, weighted by
how alike they are, measured against the noise:

* the noise variance ``s_i²`` of pattern i is estimated from its nearest
  neighbours: ``s_i² = min_j D_ij / (2 p)`` over the 8 neighbours j, with
  ``D_ij = Σ (x_i - x_j)²`` over the ``p`` pixels compared (two equal
  patterns with independent noise of variance s² have ``E[D] = 2 p s²``; the
  most alike neighbour is taken as the one that differs by noise only);
* the distance to a neighbour j is normalised by the noise:
  ``d_ij = (D_ij - p (s_i² + s_j²)) / ((s_i² + s_j²) sqrt(2 p))``, the excess
  of ``D`` over its expectation for two equal patterns, in units of its
  standard deviation (Gaussian noise), so two equal but noisy patterns have
  ``d`` about 0, within a few units;
* the weight is ``w_ij = exp(-max(d_ij, 0) / lambda²)``: 1 for neighbours no
  farther apart than the noise alone would make them, falling off with
  ``lambda``; the pattern's own weight is 1 (the largest a weight can be);
* the result is ``Σ_j w_ij x_j / Σ_j w_ij``.

Points without a pattern (and no-signal points, which the pipeline treats
as such) are no one's neighbour. ``mask`` restricts the pixels compared
(all pixels are averaged). ``lambda='auto'`` chooses lambda from the map:
see :func:`nlpar_lambda`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from kikuchi.process import _kernels

__all__ = ["LambdaChoice", "nlpar", "nlpar_lambda", "nlpar_sigma", "nlpar_weights"]

#: Default search radius: a 7 x 7 window of map points.
SEARCH_RADIUS = 3
#: Targets of the automatic lambda: the share of its own pattern in the total
#: weight of a 3 x 3 window, as PyEBSDIndex's ``opt_lambda``.
LAMBDA_TARGETS = (0.5, 0.34, 0.25)
#: Range searched for the automatic lambda (as PyEBSDIndex's ``opt_lambda``).
LAMBDA_RANGE = (1e-3, 10.0)
#: Points used to choose lambda: every point up to this many, else an even stride of them.
LAMBDA_POINTS = 250_000


@dataclass(frozen=True)
class LambdaChoice:
    """The automatic lambda: the median of the lambdas that meet each target.

    Attributes
    ----------
    lam
        The lambda chosen.
    per_target
        The lambda that meets each target.
    targets
        The targets: shares of a pattern's own weight in its 3 x 3 window.
    points
        Map points the choice was made from.
    """

    lam: float
    per_target: tuple[float, ...]
    targets: tuple[float, ...]
    points: int

    def describe(self) -> str:
        pairs = ", ".join(f"{t:g}: {v:.4g}" for t, v in zip(self.targets, self.per_target))
        return f"auto (median of the lambdas for the centre weight shares {pairs}; {self.points} points)"


def _map_input(patterns: Any, have: Any) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols, h, w) float32 C-contiguous patterns and the (rows, cols) bool map of points with a pattern."""
    a = np.asarray(patterns)
    if a.ndim != 4:
        raise ValueError(f"NLPAR needs a map of patterns (rows, cols, h, w); got shape {a.shape}")
    if a.dtype.kind not in "uifb":
        raise ValueError(f"patterns must be numbers (integer or float), got dtype {a.dtype}")
    x = np.ascontiguousarray(a, dtype=np.float32)
    have_ = np.ones(a.shape[:2], dtype=bool) if have is None else np.ascontiguousarray(have, dtype=bool)
    if have_.shape != a.shape[:2]:
        raise ValueError(f"have of shape {have_.shape} does not fit the {a.shape[0]} x {a.shape[1]} map")
    return x, have_


def signal_pixels(mask: Any, pattern_shape: tuple[int, int]) -> np.ndarray | None:
    """Flat indices of the pixels compared (``mask`` True), or None for all of them."""
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if m.shape != tuple(pattern_shape):
        raise ValueError(f"mask of shape {m.shape} does not fit patterns of shape {tuple(pattern_shape)}")
    if not m.any():
        raise ValueError("mask selects no pixel: NLPAR has nothing to compare the patterns on")
    return None if m.all() else np.flatnonzero(m)


def _compared(x: np.ndarray, pixels: np.ndarray | None) -> np.ndarray:
    """(rows, cols, p) float32: the pixels of each pattern that distances are taken on."""
    flat = x.reshape(*x.shape[:2], -1)
    if pixels is None:
        return flat
    out = np.empty((*x.shape[:2], pixels.size), dtype=np.float32)
    _kernels.gather_pixels(flat, pixels.astype(np.int64, copy=False), out)
    return out


def _check_radius(search_radius: Any) -> int:
    if isinstance(search_radius, bool) or not float(search_radius).is_integer() or search_radius < 1:
        raise ValueError(f"search radius must be an integer >= 1 (map steps); got {search_radius}")
    return int(search_radius)


def check_lambda(lam: Any) -> float | str:
    """``lam`` as a positive float, or 'auto'."""
    if isinstance(lam, str):
        if lam == "auto":
            return lam
        try:
            lam = float(lam)
        except ValueError:
            raise ValueError(f"lambda must be a number > 0 or 'auto'; got {lam!r}") from None
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.integer, np.floating)) or not (math.isfinite(lam) and lam > 0):
        raise ValueError(f"lambda must be a number > 0 or 'auto'; got {lam!r}")
    return float(lam)


def _sigma2(y: np.ndarray, have: np.ndarray, region: tuple[int, int, int, int], sigma: Any = None) -> np.ndarray:
    """(rows, cols) noise variances: estimated on ``region`` (a0, a1, b0, b1), or from ``sigma`` given; NaN elsewhere."""
    s2 = np.full(have.shape, np.nan)
    if sigma is not None:
        s = np.asarray(sigma, dtype=np.float64)
        if s.shape != have.shape:
            raise ValueError(f"sigma of shape {s.shape} does not fit the {have.shape[0]} x {have.shape[1]} map")
        return np.where(np.isfinite(s) & (s > 0), s * s, np.nan)
    a0, a1, b0, b1 = region
    _kernels.nlpar_sigma2(y, have, a0, a1, b0, b1, s2, np.empty((0, 0, 9)))
    return s2


def _span(span: tuple[int, int] | None, n: int, what: str) -> tuple[int, int]:
    lo, hi = (0, n) if span is None else (int(span[0]), int(span[1]))
    if not 0 <= lo <= hi <= n:
        raise ValueError(f"{what} {lo}:{hi} must lie within 0:{n}")
    return lo, hi


def window_distances(
    y: np.ndarray, have: np.ndarray, *, search_radius: int, rows: tuple[int, int], cols: tuple[int, int], sigma: Any = None
) -> np.ndarray:
    """Normalised distances (r1 - r0, c1 - c0, (2r+1)²) of the points of ``rows`` x ``cols`` to their windows.

    The noise is estimated on the points within ``search_radius`` of them,
    from their neighbours: ``y`` must hold ``search_radius + 1`` rows and
    columns around them wherever the map goes on (the engine's halo).
    """
    (r0, r1), (c0, c1) = rows, cols
    sr = search_radius
    nrows, ncols = have.shape
    region = (max(0, r0 - sr), min(nrows, r1 + sr), max(0, c0 - sr), min(ncols, c1 + sr))
    s2 = _sigma2(y, have, region, sigma)
    dist = np.empty((r1 - r0, c1 - c0, (2 * sr + 1) ** 2), dtype=np.float64)
    _kernels.nlpar_distances(y, have, s2, sr, r0, r1, c0, c1, dist)
    return dist


def nlpar_block(
    x: np.ndarray,
    have: np.ndarray,
    *,
    lam: float,
    search_radius: int,
    pixels: np.ndarray | None,
    rows: tuple[int, int],
    cols: tuple[int, int],
    sigma: Any = None,
    out: np.ndarray | None = None,
    compared: np.ndarray | None = None,
) -> np.ndarray:
    """NLPAR of the points ``rows`` x ``cols`` of a block (R, C, h, w) float32 C-contiguous.

    The chunk step of the pipeline: the block holds ``search_radius + 1``
    rows and columns around those points wherever the map goes on (the
    noise of the farthest neighbours is estimated from theirs), so a point
    gets the same result whatever block it is computed in. Returns
    (r1 - r0, c1 - c0, h, w) float32 (zeros where no pattern), written to
    ``out`` when given (C-contiguous). ``compared``: the pixels of ``pixels``
    of the block, when already gathered.
    """
    y = _compared(x, pixels) if compared is None else compared
    dist = window_distances(y, have, search_radius=search_radius, rows=rows, cols=cols, sigma=sigma)
    (r0, _), (c0, _) = rows, cols
    if out is None:
        out = np.empty((*dist.shape[:2], *x.shape[2:]), dtype=np.float32)
    flat = out.reshape(*dist.shape[:2], -1)
    _kernels.nlpar_average(x.reshape(*x.shape[:2], -1), dist, 1.0 / (lam * lam), search_radius, r0, c0, flat)
    return out


def neighbour_distances_block(
    x: np.ndarray,
    have: np.ndarray,
    *,
    pixels: np.ndarray | None,
    rows: tuple[int, int],
    cols: tuple[int, int],
    compared: np.ndarray | None = None,
) -> np.ndarray:
    """Normalised distances (r1 - r0, c1 - c0, 8) of points to their 8 neighbours (+inf where none): what lambda is chosen from.

    The block holds 2 rows and columns around the points wherever the map goes on.
    """
    y = _compared(x, pixels) if compared is None else compared
    (r0, r1), (c0, c1) = rows, cols
    nrows, ncols = have.shape
    a0, a1, b0, b1 = max(0, r0 - 1), min(nrows, r1 + 1), max(0, c0 - 1), min(ncols, c1 + 1)
    s2 = np.full(have.shape, np.nan)
    raw = np.empty((a1 - a0, b1 - b0, 9))
    _kernels.nlpar_sigma2(y, have, a0, a1, b0, b1, s2, raw)
    n_pix = y.shape[2]
    ext = np.full((r1 - r0 + 2, c1 - c0 + 2), np.nan)  # s2 of the points and their neighbours, NaN off the map
    ext[a0 - r0 + 1 : a1 - r0 + 1, b0 - c0 + 1 : b1 - c0 + 1] = s2[a0:a1, b0:b1]
    own = ext[1:-1, 1:-1]
    d_raw = raw[r0 - a0 : r1 - a0, c0 - b0 : c1 - b0]
    out = np.full((r1 - r0, c1 - c0, 8), np.inf)
    k = 0
    with np.errstate(invalid="ignore"):
        for slot in range(9):
            if slot == 4:
                continue
            dr, dc = slot // 3 - 1, slot % 3 - 1
            s = own + ext[1 + dr : r1 - r0 + 1 + dr, 1 + dc : c1 - c0 + 1 + dc]
            d = (d_raw[..., slot] - n_pix * s) / (s * math.sqrt(2.0 * n_pix))
            out[..., k] = np.where(np.isfinite(d), d, np.inf)
            k += 1
    out[~have[r0:r1, c0:c1]] = np.inf
    return out


def choose_lambda(distances: Any, *, targets: Sequence[float] = LAMBDA_TARGETS) -> LambdaChoice:
    """Lambda from the normalised distances (n, 8) of map points to their 8 neighbours.

    For each target t, the lambda in :data:`LAMBDA_RANGE` that minimises
    the mean over the points of ``|t - 1 / W(lambda)|``, ``W`` the total
    weight of the point's 3 x 3 window (its own weight 1, neighbours
    ``exp(-max(d, 0) / lambda²)``): the objective of PyEBSDIndex's
    ``opt_lambda``, minimised on a grid of 21 values evenly spaced in
    log(lambda) (a factor 1.58 apart), then by golden-section search around
    the best to a relative 2e-4. The
    lambda chosen is the median of those of the targets. Points without
    any neighbour are left out; beyond :data:`LAMBDA_POINTS` points, an
    even stride of them is used.
    """
    d = np.asarray(distances, dtype=np.float64).reshape(-1, 8)
    d = d[np.isfinite(d).any(axis=1)]
    if not len(d):
        raise ValueError("no map point has a neighbour with a pattern: cannot choose lambda automatically (give a number)")
    if len(d) > LAMBDA_POINTS:
        d = d[:: -(-len(d) // LAMBDA_POINTS)]
    d = np.ascontiguousarray(d)
    lo, hi = math.log10(LAMBDA_RANGE[0]), math.log10(LAMBDA_RANGE[1])
    grid = np.linspace(lo, hi, 21)
    found = []
    for t in targets:
        if not 0.0 < t <= 1.0:
            raise ValueError(f"lambda targets must be shares of the weight in (0, 1]; got {t}")

        def f(u: float, t: float = float(t)) -> float:
            lam = 10.0**u
            return _kernels.nlpar_lambda_objective(d, 1.0 / (lam * lam), t)

        values = [f(u) for u in grid]
        i = int(np.argmin(values))
        a, b = grid[max(0, i - 1)], grid[min(len(grid) - 1, i + 1)]
        g = (math.sqrt(5.0) - 1.0) / 2.0
        u1, u2 = b - g * (b - a), a + g * (b - a)
        f1, f2 = f(u1), f(u2)
        while b - a > 1e-4:
            if f1 <= f2:
                b, u2, f2 = u2, u1, f1
                u1 = b - g * (b - a)
                f1 = f(u1)
            else:
                a, u1, f1 = u1, u2, f2
                u2 = a + g * (b - a)
                f2 = f(u2)
        best = min((values[i], grid[i]), (f1, u1), (f2, u2))
        found.append(float(10.0 ** best[1]))
    return LambdaChoice(lam=float(np.median(found)), per_target=tuple(found), targets=tuple(float(t) for t in targets), points=len(d))


def nlpar_sigma(patterns: Any, *, have: Any = None, mask: Any = None) -> np.ndarray:
    """The noise estimate of each pattern of a map: ``sqrt(min_j D_ij / (2 p))`` over its 8 neighbours.

    Parameters
    ----------
    patterns
        (rows, cols, h, w) map of patterns.
    have
        (rows, cols) bool, points with a pattern (default all).
    mask
        (h, w) bool: the pixels compared (default all).

    Returns
    -------
    numpy.ndarray
        (rows, cols) float64 standard deviations; NaN where no neighbour
        has a pattern (or only the same one).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> maps = 100 + rng.normal(0, 5, (4, 4, 30, 30))   # one pattern, noise of std 5
    >>> float(nlpar_sigma(maps).mean().round(2))        # the most alike of 3 to 8 neighbours: a little below
    4.88
    """
    x, have_ = _map_input(patterns, have)
    y = _compared(x, signal_pixels(mask, x.shape[2:]))
    return np.sqrt(_sigma2(y, have_, (0, have_.shape[0], 0, have_.shape[1])))


def nlpar_weights(
    patterns: Any, *, lam: float, search_radius: int = SEARCH_RADIUS, have: Any = None, mask: Any = None, sigma: Any = None
) -> np.ndarray:
    """The NLPAR weight of every neighbour of every point of a map.

    Parameters
    ----------
    patterns, have, mask
        As :func:`nlpar`.
    lam
        lambda (> 0).
    search_radius
        The window is ``(2 r + 1) x (2 r + 1)`` map points.
    sigma
        (rows, cols) noise standard deviations to use instead of the
        estimate of :func:`nlpar_sigma`.

    Returns
    -------
    numpy.ndarray
        (rows, cols, 2r+1, 2r+1) float64: ``w[r, c, i, j]`` is the weight
        of the point (r + i - sr, c + j - sr) in the mean at (r, c),
        before the division by their sum; 1 at the centre, 0 off the map
        and where there is no pattern.
    """
    x, have_ = _map_input(patterns, have)
    sr = _check_radius(search_radius)
    lam_ = check_lambda(lam)
    if lam_ == "auto":
        lam_ = nlpar_lambda(patterns, have=have, mask=mask).lam
    y = _compared(x, signal_pixels(mask, x.shape[2:]))
    rows, cols = have_.shape
    dist = window_distances(y, have_, search_radius=sr, rows=(0, rows), cols=(0, cols), sigma=sigma)
    with np.errstate(over="ignore", invalid="ignore"):
        w = np.where(dist <= 0, 1.0, np.exp(-dist / (lam_ * lam_)))
    w[np.isposinf(dist)] = 0.0
    return w.reshape(rows, cols, 2 * sr + 1, 2 * sr + 1)


def nlpar_lambda(patterns: Any, *, have: Any = None, mask: Any = None, targets: Sequence[float] = LAMBDA_TARGETS) -> LambdaChoice:
    """Choose lambda for a map: see :func:`choose_lambda` (PyEBSDIndex's ``opt_lambda`` targets).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> maps = 100 + rng.normal(0, 5, (6, 6, 20, 20))
    >>> choice = nlpar_lambda(maps)
    >>> choice.targets, choice.points
    ((0.5, 0.34, 0.25), 36)
    """
    x, have_ = _map_input(patterns, have)
    rows, cols = have_.shape
    d = neighbour_distances_block(x, have_, pixels=signal_pixels(mask, x.shape[2:]), rows=(0, rows), cols=(0, cols))
    return choose_lambda(d[have_], targets=targets)


def nlpar(
    patterns: Any,
    *,
    lam: float | str = "auto",
    search_radius: int = SEARCH_RADIUS,
    have: Any = None,
    mask: Any = None,
    sigma: Any = None,
    rows: tuple[int, int] | None = None,
    cols: tuple[int, int] | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """Non-local pattern averaging of a map (see the module docstring for the equations).

    Parameters
    ----------
    patterns
        (rows, cols, h, w) map of patterns (any real type; computed in float32).
    lam
        lambda (> 0): how fast the weights fall off with the noise-normalised
        distance; small values average only patterns that are alike within
        the noise. 'auto': chosen from the map by :func:`nlpar_lambda`.
    search_radius
        The search window is ``(2 r + 1) x (2 r + 1)`` map points.
    have
        (rows, cols) bool, points with a pattern (default all): the others
        are 0 in the result and no one's neighbour.
    mask
        (h, w) bool: the pixels compared (e.g. the detector's circle); all
        pixels are averaged.
    sigma
        (rows, cols) noise standard deviations to use instead of the
        estimate of :func:`nlpar_sigma`.
    rows, cols
        Compute only these map rows / columns (the others serve as neighbours).
    workers
        Threads (bands of rows; the kernels release the GIL); the result is
        the same as with one.

    Returns
    -------
    numpy.ndarray
        float32 (rows, cols, h, w) (or the rows and columns asked for).

    Raises
    ------
    ValueError
        Not a map of patterns; a lambda, search radius, mask, have or sigma
        that does not fit.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> clean = rng.random((20, 20)).astype(np.float32)
    >>> noisy = clean + rng.normal(0, 0.2, (8, 8, 20, 20))
    >>> out = nlpar(noisy, lam=1.0)
    >>> bool(np.abs(out - clean).mean() < 0.4 * np.abs(noisy - clean).mean())
    True
    """
    x, have_ = _map_input(patterns, have)
    sr = _check_radius(search_radius)
    lam_ = check_lambda(lam)
    pixels = signal_pixels(mask, x.shape[2:])
    n_rows, n_cols = have_.shape
    r0, r1 = _span(rows, n_rows, "rows")
    c0, c1 = _span(cols, n_cols, "cols")
    if workers is not None and (isinstance(workers, bool) or not float(workers).is_integer() or workers < 1):
        raise ValueError(f"workers must be a whole number >= 1, got {workers}")
    y = _compared(x, pixels)
    if lam_ == "auto":
        d = neighbour_distances_block(x, have_, pixels=pixels, rows=(0, n_rows), cols=(0, n_cols), compared=y)
        lam_ = choose_lambda(d[have_]).lam
    out = np.empty((r1 - r0, c1 - c0, *x.shape[2:]), dtype=np.float32)
    s = None if sigma is None else np.asarray(sigma)
    if s is not None and s.shape != have_.shape:
        raise ValueError(f"sigma of shape {s.shape} does not fit the {n_rows} x {n_cols} map")


    def band(a: int, b: int) -> None:
        nlpar_block(
            x, have_, lam=float(lam_), search_radius=sr, pixels=pixels, rows=(r0 + a, r0 + b), cols=(c0, c1), sigma=s, out=out[a:b], compared=y
        )

    from kikuchi.process.pipeline import _in_threads

    _in_threads(band, r1 - r0, max(1, int(workers or 1)))
    return out
