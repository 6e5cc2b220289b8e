"""The combined processing pipeline and its presets.

The order of the steps follows the xcdskd ``process_ebsp`` function
("Basics of Kikuchi Pattern Processing: Final Pipeline Function"), with the
optional steps of kikuchi in between:

1. hot pixel removal (optional; on the raw patterns);
2. binning by an integer factor (the static background is binned the same way);
3. static background correction: divide (flat field, default) or subtract;
4. dynamic background correction: divide by (``remove_bg``) or subtract
   (``make_signal_bg``) the Gaussian low-pass of each pattern;
5. neighbour pattern averaging, flat/Gaussian (NPA) or non-local (NLPAR)
   (needs the map: done by the engine or with (rows, cols, h, w) input);
6. contrast enhancement (optional): CLAHE or local normalisation;
7. conversion to uint8 / uint16 by a percentile stretch (``clow``, ``chigh``)
   or kept as float32;
8. circular mask (optional).

Presets, as the two calls at the end of that section of the documentation:
``indexing`` (binned to about 80 x 60, sigma 3 px at 80 px width, stretch
10..90 %, uint8) and ``detailed`` (full resolution, sigma 40 px at 800 px
width, stretch 0.001..99.999 %, uint16).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from kikuchi.process.averaging import WEIGHTS, average_neighbours
from kikuchi.process.background import (
    KERNELS,
    METHODS,
    documented_sigma,
    fused_static_dynamic,
    remove_dynamic_background,
    remove_static_background,
)
from kikuchi.process.binning import MODES, auto_binning, bin_patterns
from kikuchi.process.contrast import circular_mask, clahe, normalize_local, rescale_to_uint
from kikuchi.process.hot_pixels import find_hot_pixels, remove_hot_pixels
from kikuchi.process.nlpar import LambdaChoice, check_lambda, choose_lambda, neighbour_distances_block, nlpar_block, signal_pixels
from kikuchi.process.no_signal import check_static_background, no_signal

__all__ = ["PRESETS", "Prepared", "ProcessingSettings", "nlpar_lambda_block", "prepare", "process_block", "process_patterns"]

STATIC = ("divide", "subtract", "none")
DYNAMIC = ("divide", "subtract", "none")
CONTRAST = ("none", "clahe", "local")
DTYPES = ("uint8", "uint16", "float32")
NLPAR_MASKS = ("none", "circle")


@dataclass(frozen=True)
class ProcessingSettings:
    """Every parameter of the pipeline (see the module docstring for the order).

    Attributes
    ----------
    binning
        Integer factor, or ``'auto'``: the common divisor of the pattern
        dimensions that brings the width closest to 80 pixels.
    binning_mode
        'mean' (as xcdskd's ``downsample``) or 'sum'.
    static
        'divide' (flat field, default), 'subtract' or 'none'. Without a
        static background the step is skipped.
    static_scale
        For 'subtract': 'mean' (scaled to each pattern's mean) or a number.
    hot_pixels
        Threshold in robust standard deviations for hot pixel removal, or
        None (off). Hot pixels are found on the static background when there
        is one, else in each pattern.
    dynamic
        'divide' (``remove_bg``, default), 'subtract' (``make_signal_bg``) or 'none'.
    sigma
        Gaussian std of the dynamic background in pixels of the binned
        pattern; None: ``sigma_per_width`` x width, or the documented
        default (height / 8 for 'divide', width / 25 for 'subtract').
    sigma_per_width
        sigma as a fraction of the binned pattern width (used by the presets).
    kernel
        'documented' (3 sigma support) or 'untruncated'.
    method
        'auto', 'fft' or 'direct' (the same values to rounding).
    npa
        Neighbour averaging half-width n ((2n+1)^2 window); 0: off.
    npa_weights, npa_sigma
        'flat' or 'gaussian' weights, Gaussian std in map steps.
    nlpar
        Non-local pattern averaging (:mod:`kikuchi.process.nlpar`) instead
        of NPA (the two exclude each other).
    nlpar_lambda
        lambda of the NLPAR weights (> 0), or 'auto': chosen from the whole
        map before processing (:func:`~kikuchi.process.nlpar.choose_lambda`).
    nlpar_search_radius
        NLPAR search window ``(2r+1) x (2r+1)`` map points (halo r + 1: the
        noise of the farthest neighbours is estimated from theirs).
    nlpar_mask
        Pixels NLPAR compares: 'none' (all) or 'circle' (the inscribed
        circle of the binned pattern); all are averaged.
    contrast
        Extra enhancement before the conversion: 'none', 'clahe', 'local'.
    clow, chigh
        Percentiles of the stretch to uint8/uint16.
    dtype
        'uint8', 'uint16' or 'float32' (no stretch).
    mask
        Set the pixels outside the inscribed circle to 0.
    """

    binning: int | str = 1
    binning_mode: str = "mean"
    static: str = "divide"
    static_scale: str | float = "mean"
    hot_pixels: float | None = None
    dynamic: str = "divide"
    sigma: float | None = None
    sigma_per_width: float | None = None
    kernel: str = "documented"
    method: str = "auto"
    npa: int = 0
    npa_weights: str = "flat"
    npa_sigma: float = 1.0
    nlpar: bool = False
    nlpar_lambda: float | str = "auto"
    nlpar_search_radius: int = 3
    nlpar_mask: str = "none"
    contrast: str = "none"
    clow: float = 0.5
    chigh: float = 99.5
    dtype: str = "uint8"
    mask: bool = False

    def __post_init__(self) -> None:
        def one_of(name: str, allowed: tuple[str, ...]) -> None:
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")

        if not (self.binning == "auto" or (isinstance(self.binning, (int, np.integer)) and self.binning >= 1)):
            raise ValueError(f"binning must be a positive integer or 'auto'; got {self.binning!r}")
        one_of("binning_mode", MODES)
        one_of("static", STATIC)
        one_of("dynamic", DYNAMIC)
        one_of("kernel", KERNELS)
        one_of("method", METHODS)
        one_of("npa_weights", WEIGHTS)
        one_of("contrast", CONTRAST)
        one_of("dtype", DTYPES)
        one_of("nlpar_mask", NLPAR_MASKS)

        def number(name: str) -> None:
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))):
                raise ValueError(f"{name} must be a number; got {value!r}")

        for name in ("sigma", "sigma_per_width", "hot_pixels", "npa", "npa_sigma", "clow", "chigh"):
            number(name)
        if not isinstance(self.static_scale, str):
            number("static_scale")
        elif self.static_scale != "mean":
            raise ValueError(f"static_scale must be 'mean' or a number; got {self.static_scale!r}")
        for name in ("sigma", "sigma_per_width", "hot_pixels"):
            value = getattr(self, name)
            if value is not None and not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0 (or unset); got {value}")
        if not float(self.npa).is_integer() or self.npa < 0:
            raise ValueError(f"npa must be an integer >= 0; got {self.npa}")
        if not (0.0 <= self.clow < self.chigh <= 100.0):
            raise ValueError(f"contrast percentiles must satisfy 0 <= clow < chigh <= 100; got clow={self.clow:g}, chigh={self.chigh:g}")
        if not self.npa_sigma > 0:
            raise ValueError(f"npa_sigma must be > 0; got {self.npa_sigma}")
        if not isinstance(self.nlpar, (bool, np.bool_)):
            raise ValueError(f"nlpar must be True or False; got {self.nlpar!r}")
        object.__setattr__(self, "nlpar_lambda", check_lambda(self.nlpar_lambda))  # '0.5' -> 0.5
        r = self.nlpar_search_radius
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1:
            raise ValueError(f"nlpar_search_radius must be an integer >= 1 (map steps); got {r!r}")
        if self.nlpar and self.npa:
            raise ValueError(f"choose one neighbour averaging: nlpar or npa (got npa={self.npa} with nlpar)")

    @property
    def halo(self) -> int:
        """Map rows (and columns) of neighbours each point needs: ``npa``, or the NLPAR search radius + 1."""
        return int(self.nlpar_search_radius) + 1 if self.nlpar else int(self.npa)

    def replace(self, **changes: Any) -> ProcessingSettings:
        """A copy with some parameters changed (None values are ignored)."""
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ValueError(f"unknown processing setting{'s' * (len(unknown) > 1)} {', '.join(unknown)}; the settings are {', '.join(names)}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def binning_factor(self, pattern_shape: tuple[int, int]) -> int:
        return auto_binning(pattern_shape) if self.binning == "auto" else int(self.binning)

    def output_dtype(self) -> np.dtype:
        """dtype of the processed patterns."""
        return np.dtype(self.dtype)

    def output_shape(self, pattern_shape: tuple[int, int]) -> tuple[int, int]:
        f = self.binning_factor(pattern_shape)
        return (pattern_shape[0] // f, pattern_shape[1] // f)

    def resolved_sigma(self, pattern_shape: tuple[int, int]) -> float:
        """sigma in pixels of the binned pattern."""
        h, w = self.output_shape(pattern_shape)
        if self.sigma is not None:
            return float(self.sigma)
        if self.sigma_per_width is not None:
            return float(self.sigma_per_width * w)
        return documented_sigma((h, w), self.dynamic)


PRESETS: dict[str, ProcessingSettings] = {
    # process_ebsp(raw, static_bg, dtype=np.uint8, binning=10, sigma=3, clow=10, chigh=90) on 800 x 600
    "indexing": ProcessingSettings(binning="auto", sigma_per_width=3 / 80, clow=10.0, chigh=90.0, dtype="uint8"),
    # process_ebsp(raw, static_bg, dtype=np.uint16, sigma=40, clow=0.001, chigh=99.999) on 800 x 600
    "detailed": ProcessingSettings(binning=1, sigma_per_width=40 / 800, clow=0.001, chigh=99.999, dtype="uint16"),
}


@dataclass(frozen=True)
class Prepared:
    """What the pipeline computes once per map: the binned background, masks, sigma."""

    settings: ProcessingSettings
    pattern_shape: tuple[int, int]
    factor: int
    output_shape: tuple[int, int]
    sigma: float
    static_background: np.ndarray | None  # binned, float32
    hot_pixel_mask: np.ndarray | None
    circle: np.ndarray | None
    #: Why the static background given was not used (or what was odd about it), or None.
    static_background_note: str | None = None
    #: Flat indices of the pixels NLPAR compares (None: all).
    nlpar_pixels: np.ndarray | None = None
    #: The automatic NLPAR lambda, once chosen on the whole map (:meth:`with_lambda`).
    nlpar_choice: LambdaChoice | None = None

    @property
    def nlpar_lambda(self) -> float | None:
        """The NLPAR lambda used: the number given, or the automatic one once chosen (None before)."""
        lam = self.settings.nlpar_lambda
        if lam != "auto":
            return float(lam)
        return None if self.nlpar_choice is None else self.nlpar_choice.lam

    def with_lambda(self, choice: LambdaChoice) -> Prepared:
        """A copy with the automatic NLPAR lambda chosen."""
        return dataclasses.replace(self, nlpar_choice=choice)

    def describe(self) -> dict[str, Any]:
        """Every parameter actually used, JSON-ready (recorded in the output file)."""
        nlpar = {}
        if self.settings.nlpar:
            nlpar = {
                "nlpar_lambda_used": self.nlpar_lambda,
                "nlpar_lambda_choice": "given" if self.nlpar_choice is None else self.nlpar_choice.describe(),
                "nlpar_pixels_compared": int(np.prod(self.output_shape)) if self.nlpar_pixels is None else int(self.nlpar_pixels.size),
            }
        return {
            **self.settings.to_dict(),
            **nlpar,
            "binning_factor": self.factor,
            "input_pattern_shape": list(self.pattern_shape),
            "output_pattern_shape": list(self.output_shape),
            "sigma_px": self.sigma,
            "static_background_used": self.static_background is not None and self.settings.static != "none",
            "hot_pixels_found": None if self.hot_pixel_mask is None else int(self.hot_pixel_mask.sum()),
            **({"static_background_note": self.static_background_note} if self.static_background_note else {}),
        }


def prepare(
    settings: ProcessingSettings,
    pattern_shape: tuple[int, int],
    static_background: Any = None,
    *,
    background_source: str = "static background",
) -> Prepared:
    """Check the settings against the pattern shape and precompute what every chunk needs.

    A static background that cannot be used for the static step (not
    finite anywhere, no positive value or negative values for 'divide'; see
    :func:`~kikuchi.process.no_signal.check_static_background`) is not used,
    with a warning that names ``background_source``; the note is kept in
    :attr:`Prepared.static_background_note` and recorded by :meth:`Prepared.describe`.

    Raises
    ------
    ValueError
        Binning that does not divide the patterns; a static background of
        neither the pattern shape nor the binned shape.
    """
    if len(pattern_shape) != 2 or min(int(v) for v in pattern_shape) < 1:
        raise ValueError(f"pattern shape must be (h, w) of at least one pixel each; got {tuple(pattern_shape)}")
    pattern_shape = (int(pattern_shape[0]), int(pattern_shape[1]))
    factor = settings.binning_factor(pattern_shape)
    if pattern_shape[0] % factor or pattern_shape[1] % factor:
        # bin_patterns words the error, with the divisors to choose from
        bin_patterns(np.zeros((1, *pattern_shape), np.uint8), factor)
    out_shape = (pattern_shape[0] // factor, pattern_shape[1] // factor)
    bg = None
    hot = None
    note = None
    if static_background is not None:
        bg = np.asarray(static_background)
        if bg.ndim != 2:
            raise ValueError(f"{background_source}: a static background must be one image (h, w); got shape {bg.shape}")
        if bg.shape not in (pattern_shape, out_shape):
            raise ValueError(
                f"static background of shape {bg.shape} fits neither the patterns {pattern_shape} "
                f"nor the binned patterns {out_shape}"
            )
        if settings.static != "none":
            bg, note = check_static_background(bg, operation=settings.static, scale=settings.static_scale, source=background_source)
    if bg is not None:
        bg = np.asarray(bg, dtype=np.float64)
        if not np.isfinite(bg).all():  # dead pixels (the check let them through): 0 in the corrected patterns
            bg = np.where(np.isfinite(bg), bg, 0.0)
        if bg.shape == pattern_shape:
            if settings.hot_pixels is not None:
                hot = find_hot_pixels(bg, threshold=settings.hot_pixels)
                bg = remove_hot_pixels(bg, mask=hot)
            bg = bin_patterns(bg, factor, mode=settings.binning_mode) if factor > 1 else bg
        bg = bg.astype(np.float32)
    sigma = settings.resolved_sigma(pattern_shape)
    circle = circular_mask(out_shape) if settings.mask else None
    pixels = signal_pixels(circular_mask(out_shape), out_shape) if settings.nlpar and settings.nlpar_mask == "circle" else None
    return Prepared(settings, pattern_shape, factor, out_shape, sigma, bg, hot, circle, note, nlpar_pixels=pixels)


#: Bytes of float32 patterns per piece of a block: a piece's intermediate images stay in cache
#: and the allocator reuses its buffers (no page faults on fresh full-size temporaries).
_PIECE_BYTES = 4 << 20


def _background_stage(stack: np.ndarray, prep: Prepared, workers: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Steps 1-4 on a stack (n, h, w): float32 (n, h', w'), written to ``out`` when given (a C-contiguous float32 array)."""
    s = prep.settings
    if s.hot_pixels is not None:
        stack = remove_hot_pixels(stack, mask=prep.hot_pixel_mask, threshold=s.hot_pixels)
    if prep.factor > 1:
        x = bin_patterns(stack, prep.factor, mode=s.binning_mode)
    else:
        x = stack
    static = prep.static_background if s.static != "none" else None
    if s.dynamic != "none" and s.static != "subtract":
        fused = fused_static_dynamic(x, static, sigma=prep.sigma, operation=s.dynamic, kernel=s.kernel, method=s.method, out=out)
        if fused is not None:
            return fused
    if out is not None and s.dynamic == "none" and (s.static == "none" or prep.static_background is None):
        out[...] = x  # nothing to correct: the float32 patterns, converted once into the buffer
        return out
    x = np.asarray(x, dtype=np.float32)
    if s.static != "none" and prep.static_background is not None:
        x = remove_static_background(x, prep.static_background, operation=s.static, scale=s.static_scale, dtype=np.float32)
    if s.dynamic != "none":
        x = remove_dynamic_background(
            x, sigma=prep.sigma, operation=s.dynamic, kernel=s.kernel, method=s.method, dtype=np.float32, workers=workers
        )
    if out is not None:
        out[...] = x
        return out
    return np.asarray(x, dtype=np.float32)


def _output_stage(x: np.ndarray, prep: Prepared) -> np.ndarray:
    """Steps 6-8 on a float stack (n, h', w')."""
    s = prep.settings
    if s.contrast == "clahe":
        x = clahe(x).astype(np.float32)
    elif s.contrast == "local":
        x = normalize_local(x)
    if s.dtype == "float32":
        out = x.astype(np.float32, copy=False)
    else:
        out = rescale_to_uint(x, dtype=s.dtype, clow=s.clow, chigh=s.chigh)
    if prep.circle is not None:
        out = out * prep.circle.astype(out.dtype)
    return out


def process_patterns(
    patterns: Any,
    settings: ProcessingSettings | str = "detailed",
    *,
    static_background: Any = None,
    have: Any = None,
    workers: int | None = None,
) -> np.ndarray:
    """Run the whole pipeline on patterns in memory.

    Parameters
    ----------
    patterns
        One pattern (h, w), a stack (n, h, w), or a map (rows, cols, h, w)
        (needed for neighbour averaging).
    settings
        A :class:`ProcessingSettings` or a preset name ('indexing', 'detailed').
    static_background
        (h, w) static background, or None (step skipped).
    have
        (rows, cols) bool: map points that have a pattern (map input only).
    workers
        Threads: the patterns (or the map rows, with their halo rows) are
        split into ``workers`` parts processed in parallel (the kernels
        release the GIL); the result is the same as with one thread.

    Returns
    -------
    numpy.ndarray
        The processed patterns, (n, h', w') or (rows, cols, h', w') or
        (h', w'), of ``settings.dtype``. A pattern that holds no signal
        (all one value, or a value not finite: see
        :func:`~kikuchi.process.no_signal.no_signal`) gives zeros, and is
        no one's neighbour in the averaging; the other patterns are
        processed exactly as without it.

    Raises
    ------
    ValueError
        Patterns that are not (h, w), (n, h, w) or (rows, cols, h, w)
        numbers; an unknown preset; settings that do not fit the patterns.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> raw = rng.poisson(100, (2, 240, 320)).astype(np.uint8)
    >>> out = process_patterns(raw, "indexing")
    >>> out.shape, out.dtype
    ((2, 60, 80), dtype('uint8'))
    """
    if isinstance(settings, str):
        if settings not in PRESETS:
            raise ValueError(f"unknown preset {settings!r}; choose one of {', '.join(PRESETS)}")
        settings = PRESETS[settings]
    if not isinstance(settings, ProcessingSettings):
        raise ValueError(f"settings must be a ProcessingSettings or a preset name ({', '.join(PRESETS)}); got {type(settings).__name__}")
    a = _pattern_array(patterns)
    if workers is not None and (not float(workers).is_integer() or workers < 1):
        raise ValueError(f"workers must be a whole number >= 1, got {workers}")
    n_threads = max(1, int(workers or 1))
    if a.ndim == 4:
        rows, cols = a.shape[:2]
        have_ = np.ones((rows, cols), bool) if have is None else np.asarray(have, dtype=bool)
        if have_.shape != (rows, cols):
            raise ValueError(f"have of shape {have_.shape} does not fit the {rows} x {cols} map")
        prep = prepare(settings, a.shape[2:], static_background)
        flagged = no_signal(a)
        halo = settings.halo
        if settings.nlpar and prep.nlpar_lambda is None:
            prep = prep.with_lambda(_map_lambda(a, have_, prep, n_threads))

        result = np.empty((rows, cols, *prep.output_shape), dtype=settings.output_dtype())

        def band(r0: int, r1: int) -> None:  # each thread writes its own rows of the result
            lo, hi = max(0, r0 - halo), min(rows, r1 + halo)
            process_block(
                a[lo:hi], have=have_[lo:hi], core=(r0 - lo, r1 - lo), prepared=prep, out=result[r0:r1], flagged=flagged[lo:hi]
            )

        _in_threads(band, rows, n_threads)
        return result
    if a.ndim not in (2, 3):
        raise ValueError(f"patterns must be (h, w), (n, h, w) or (rows, cols, h, w); got shape {a.shape}")
    if settings.npa or settings.nlpar:
        which = "non-local pattern averaging (nlpar)" if settings.nlpar else "neighbour averaging (npa > 0)"
        raise ValueError(f"{which} needs the map: give patterns as (rows, cols, h, w)")
    stack = a[None] if a.ndim == 2 else a
    prep = prepare(settings, stack.shape[1:], static_background)
    out = np.empty((len(stack), *prep.output_shape), dtype=settings.output_dtype())
    flagged = no_signal(stack)

    def part(i0: int, i1: int) -> None:
        bad = flagged[i0:i1]
        if not bad.any():
            out[i0:i1] = _output_stage(_background_stage(stack[i0:i1], prep), prep)
            return
        good = np.flatnonzero(~bad) + i0
        out[np.flatnonzero(bad) + i0] = 0
        if good.size:
            out[good] = _output_stage(_background_stage(stack[good], prep), prep)

    _in_threads(part, len(stack), n_threads)
    return out[0] if a.ndim == 2 else out


def _pattern_array(patterns: Any) -> np.ndarray:
    """``patterns`` as an array of real numbers (booleans as 0/1 uint8, without a copy)."""
    a = np.asarray(patterns)
    if a.dtype == np.bool_:
        return a.view(np.uint8)
    if a.dtype.kind not in "uif":
        raise ValueError(f"patterns must be numbers (integer or float), got dtype {a.dtype}")
    if a.ndim in (2, 3, 4) and min(a.shape[-2:]) < 1:
        raise ValueError(f"patterns of shape {a.shape} have no pixel")
    return a


def _in_threads(func: Any, n: int, threads: int) -> list[Any]:
    """``func(i0, i1)`` over ``threads`` contiguous parts of ``range(n)``, in order."""
    edges = np.linspace(0, n, min(threads, max(n, 1)) + 1).astype(int)
    spans = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
    if len(spans) == 1:
        return [func(*spans[0])]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(spans), thread_name_prefix="kikuchi-process") as pool:
        return list(pool.map(lambda span: func(*span), spans))


def process_block(
    block: np.ndarray,
    *,
    have: np.ndarray,
    core: tuple[int, int],
    prepared: Prepared,
    workers: int | None = None,
    out: np.ndarray | None = None,
    flagged: np.ndarray | None = None,
    core_cols: tuple[int, int] | None = None,
) -> np.ndarray:
    """The chunk function of the engine: process map rows with their halo rows.

    ``block`` (r, cols, h, w) holds the chunk's map rows plus halo rows
    (``settings.halo`` of them, and as many columns on either side of a
    tile); returns the processed core rows ``block[core[0]:core[1]]`` (of
    the columns ``core_cols``, default all), (core rows, cols, h', w'),
    zeros where ``have`` is False; written to ``out`` when given (an array
    of that shape and of the settings' dtype).
    Points whose pattern holds no signal (``flagged``, (r, cols) bool;
    found with :func:`~kikuchi.process.no_signal.no_signal` when None) are
    treated as points without a pattern: zeros, and no one's neighbour.
    With NLPAR and lambda 'auto', ``prepared`` must hold the lambda chosen
    on the whole map (:meth:`Prepared.with_lambda`; the engine does this).
    """
    s = prepared.settings
    if s.nlpar and prepared.nlpar_lambda is None:
        raise ValueError("NLPAR lambda 'auto' is chosen on the whole map first: give prepared.with_lambda(...) (process_map and process_patterns do)")
    if block.dtype == np.bool_:
        block = block.view(np.uint8)
    if flagged is None:
        flagged = no_signal(block)
    if flagged.any():
        have = have & ~flagged
    rows, cols = block.shape[:2]
    i0, i1 = core
    j0, j1 = (0, cols) if core_cols is None else (int(core_cols[0]), int(core_cols[1]))
    halo = s.halo
    need = np.zeros(rows, bool)  # the core rows and, for averaging, their neighbours
    need[max(0, i0 - halo) : min(rows, i1 + halo)] = True
    sel = have & need[:, None]
    h2, w2 = prepared.output_shape
    core_have = have[i0:i1, j0:j1]
    if out is None:
        out = np.empty((i1 - i0, j1 - j0, h2, w2), dtype=s.output_dtype())
    if s.nlpar:
        return _nlpar_stage(block, have, (i0, i1), (j0, j1), prepared, workers, out)
    if sel.all() and have[i0:i1].all():
        if (j0, j1) == (0, cols):
            return _full_block(block, i0, i1, prepared, workers, out)
        out[...] = _full_block(block, i0, i1, prepared, workers, np.empty((i1 - i0, cols, h2, w2), dtype=out.dtype))[:, j0:j1]
        return out
    floats = np.zeros((rows, cols, h2, w2), dtype=np.float32)
    if sel.any():
        floats[sel] = _background_stage(block[sel], prepared, workers)
    if s.npa:
        floats = average_neighbours(
            floats, n=s.npa, weights=s.npa_weights, sigma=s.npa_sigma, have=have, rows=(i0, i1), cols=(j0, j1)
        )
    else:
        floats = floats[i0:i1, j0:j1]
    out[...] = 0
    if core_have.any():
        out[core_have] = _output_stage(floats[core_have], prepared)
    return out


def _floats(block: np.ndarray, have: np.ndarray, prep: Prepared, workers: int | None) -> np.ndarray:
    """Steps 1-4 of the points of ``block`` (r, cols, h, w) that have a pattern: float32 (r, cols, h', w'), zeros elsewhere."""
    rows, cols = block.shape[:2]
    h2, w2 = prep.output_shape
    if have.all():  # straight into the buffer, without copies through boolean indexing
        floats = np.empty((rows, cols, h2, w2), dtype=np.float32)
        _background_stage(block.reshape(-1, *block.shape[2:]), prep, workers, out=floats.reshape(-1, h2, w2))
        return floats
    floats = np.zeros((rows, cols, h2, w2), dtype=np.float32)
    if have.any():
        floats[have] = _background_stage(block[have], prep, workers)
    return floats


def _nlpar_stage(
    block: np.ndarray, have: np.ndarray, core: tuple[int, int], core_cols: tuple[int, int], prep: Prepared,
    workers: int | None, out: np.ndarray,
) -> np.ndarray:
    """:func:`process_block` with NLPAR: steps 1-4 on the core rows and ``halo`` rows around them, NLPAR of the core, steps 6-8."""
    s = prep.settings
    (i0, i1), (j0, j1) = core, core_cols
    lo, hi = max(0, i0 - s.halo), min(block.shape[0], i1 + s.halo)
    floats = _floats(block[lo:hi], have[lo:hi], prep, workers)
    core_have = have[i0:i1, j0:j1]
    direct = s.dtype == "float32" and s.contrast == "none" and prep.circle is None and out.flags.c_contiguous and core_have.all()
    averaged = nlpar_block(
        floats, have[lo:hi], lam=prep.nlpar_lambda, search_radius=s.nlpar_search_radius, pixels=prep.nlpar_pixels,
        rows=(i0 - lo, i1 - lo), cols=(j0, j1), out=out if direct else None,
    )
    if direct:  # steps 6-8 do nothing to these floats
        return out
    if core_have.all():
        out[...] = _output_stage(averaged.reshape(-1, *prep.output_shape), prep).reshape(out.shape)
    else:
        out[...] = 0
        if core_have.any():
            out[core_have] = _output_stage(averaged[core_have], prep)
    return out


def nlpar_lambda_block(
    block: np.ndarray,
    *,
    have: np.ndarray,
    core: tuple[int, int],
    prepared: Prepared,
    core_cols: tuple[int, int] | None = None,
) -> np.ndarray:
    """Chunk function of the automatic NLPAR lambda (halo 2): steps 1-4, then the distances to the 8 neighbours.

    Returns (core rows, cols, 9) float32: the noise-normalised distances of
    each core point to its 8 neighbours (+inf where none) and, last, 1 for
    the points computed (a pattern with signal), 0 for the others.
    """
    if block.dtype == np.bool_:
        block = block.view(np.uint8)
    have = have & ~no_signal(block)
    rows, cols = block.shape[:2]
    i0, i1 = core
    j0, j1 = (0, cols) if core_cols is None else (int(core_cols[0]), int(core_cols[1]))
    lo, hi = max(0, i0 - 2), min(rows, i1 + 2)
    floats = _floats(block[lo:hi], have[lo:hi], prepared, 1)
    d = neighbour_distances_block(floats, have[lo:hi], pixels=prepared.nlpar_pixels, rows=(i0 - lo, i1 - lo), cols=(j0, j1))
    return np.concatenate([d, have[i0:i1, j0:j1, None]], axis=2).astype(np.float32)


def _map_lambda(a: np.ndarray, have: np.ndarray, prep: Prepared, threads: int) -> LambdaChoice:
    """The automatic NLPAR lambda of a map in memory (rows, cols, h, w): the engine's first pass in one block."""
    rows = a.shape[0]
    parts = _in_threads(
        lambda r0, r1: nlpar_lambda_block(
            a[max(0, r0 - 2) : r1 + 2], have=have[max(0, r0 - 2) : r1 + 2], core=(r0 - max(0, r0 - 2), r1 - max(0, r0 - 2)), prepared=prep
        ),
        rows,
        threads,
    )
    d = np.concatenate(parts, axis=0)
    return choose_lambda(d[d[..., 8] > 0][:, :8])


def _full_block(block: np.ndarray, i0: int, i1: int, prep: Prepared, workers: int | None, out: np.ndarray) -> np.ndarray:
    """:func:`process_block` for a block whose rows all have patterns and are all needed.

    Map rows are processed in pieces of about :data:`_PIECE_BYTES` of floats
    held in one reused window buffer with the averaging's halo rows: each
    pattern's background is computed once, the float images stay in cache,
    and no full-size float temporaries are allocated (their page faults cost
    as much as the averaging). The same operations per pattern as the
    general path, so the same values.
    """
    s = prep.settings
    rows, cols = block.shape[:2]
    h2, w2 = prep.output_shape
    halo = int(s.npa)
    # at least 4 halos per piece: the halo rows moved to the front of the window stay a small share
    rstep = max(1, 4 * halo, _PIECE_BYTES // (4 * h2 * w2 * cols))
    buf = np.empty((min(rows, rstep + 2 * halo), cols, h2, w2), dtype=np.float32)
    b0 = filled = max(0, i0 - halo)  # buf[k] holds map row b0 + k; rows b0..filled-1 are done
    for r0 in range(i0, i1, rstep):
        r1 = min(i1, r0 + rstep)
        lo, hi = max(0, r0 - halo), min(rows, r1 + halo)
        if filled > lo:  # halo rows computed for the previous piece move to the front
            buf[: filled - lo] = buf[lo - b0 : filled - b0]  # numpy buffers the copy if they overlap
        else:
            filled = lo
        b0 = lo
        if hi > filled:
            new = block[filled:hi].reshape(-1, *block.shape[2:])
            _background_stage(new, prep, workers, out=buf[filled - lo : hi - lo].reshape(-1, h2, w2))
        filled = hi
        if halo:
            part = average_neighbours(
                buf[: hi - lo], n=s.npa, weights=s.npa_weights, sigma=s.npa_sigma, rows=(r0 - lo, r1 - lo)
            )
        else:
            part = buf[r0 - lo : r1 - lo]
        out[r0 - i0 : r1 - i0] = _output_stage(part.reshape(-1, h2, w2), prep).reshape(r1 - r0, cols, h2, w2)
    return out

