"""Static and dynamic background correction of Kikuchi patterns.

Follows the xcdskd documentation ("Basics of Kikuchi Pattern Processing"):

* static background: divide each pattern by the detector's static
  background (flat field correction, the default) or subtract it, scaled to
  the pattern;
* dynamic background: a per-pattern low-pass (Gaussian convolution by FFT)
  estimates the smooth background; :func:`make_signal_bg` partitions an
  image into ``signal = image - background`` and ``background``,
  :func:`remove_bg` returns ``image / background``.

The documented low-pass uses a sampled Gaussian of standard deviation
``sigma`` whose kernel array spans ``support = 3 sigma`` pixels per
direction (so it is cut at about +-1.5 sigma), normalised to sum 1, with
the image extended by replicating its border pixels. ``kernel='untruncated'``
gives a proper Gaussian instead (cut where it falls below 1e-8).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from kikuchi.process import _kernels

__all__ = [
    "gaussian_lowpass",
    "make_signal_bg",
    "partition_static_background",
    "remove_bg",
    "remove_dynamic_background",
    "remove_static_background",
]

_logger = logging.getLogger(__name__)

KERNELS = ("documented", "untruncated")
METHODS = ("auto", "fft", "direct")


def _as_stack(patterns: Any, name: str = "patterns") -> tuple[np.ndarray, bool]:
    """A (n, h, w) view of one pattern (h, w) or a stack (booleans as 0/1); True when the input was one pattern."""
    a = np.asarray(patterns)
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    elif a.dtype.kind not in "uif":
        raise ValueError(f"{name} must be numbers (integer or float), got dtype {a.dtype}")
    if a.ndim in (2, 3) and min(a.shape[-2:]) < 1:
        raise ValueError(f"{name} of shape {a.shape} have no pixel")
    if a.ndim == 2:
        return a[None], True
    if a.ndim == 3:
        return a, False
    raise ValueError(f"{name} must be one pattern (h, w) or a stack (n, h, w); got shape {a.shape}")


#: Options of :func:`gaussian_lowpass` that the background functions pass on.
LOWPASS_OPTIONS = ("kernel", "method", "fft_size", "dtype", "workers")


def _check_options(options: dict[str, Any], where: str) -> None:
    unknown = sorted(set(options) - set(LOWPASS_OPTIONS))
    if unknown:
        raise ValueError(f"{where}: unknown option{'s' * (len(unknown) > 1)} {', '.join(unknown)}; the options are {', '.join(LOWPASS_OPTIONS)}")


def _float_dtype(dtype: Any, fallback: Any = np.float64) -> np.dtype:
    try:
        dtype = np.dtype(fallback if dtype is None else dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def documented_sigma(pattern_shape: tuple[int, ...], operation: str) -> float:
    """The documented default sigma: height / 8 for ``remove_bg`` ('divide'), width / 25 for ``make_signal_bg``."""
    return pattern_shape[-2] / 8.0 if operation == "divide" else pattern_shape[-1] / 25.0


def _check_sigma(sigma: float) -> float:
    try:
        sigma = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma!r}") from None
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma:g}")
    return sigma


def gaussian_lowpass(
    patterns: Any,
    *,
    sigma: float,
    support: float | None = None,
    kernel: str = "documented",
    method: str = "fft",
    fft_size: str = "fast",
    dtype: Any = None,
    workers: int | None = None,
) -> np.ndarray:
    """Smooth background of patterns: Gaussian low-pass with replicated borders.

    Parameters
    ----------
    patterns
        One pattern (h, w) or a stack (n, h, w).
    sigma
        Standard deviation of the Gaussian in pixels, > 0.
    support
        Extent of the documented kernel array in pixels per direction;
        default ``3 * sigma`` (as documented). Ignored for ``'untruncated'``.
    kernel
        ``'documented'``: the xcdskd kernel (see module docstring);
        ``'untruncated'``: a centred Gaussian out to 6 sigma.
    method
        ``'fft'`` (as documented, the default), ``'direct'`` (separable
        real-space sum, numba) or ``'auto'`` (direct up to 200 kernel taps,
        else FFT; the pipeline's choice): the same values to rounding.
    fft_size
        ``'fast'`` (next fast FFT length) or ``'pow2'`` (the documented next
        power of two of image + kernel - 1). The same values up to rounding.
    dtype
        float32 or float64 (default: float64, or float32 for float32 input).
    workers
        Threads of ``scipy.fft`` for one call.

    Returns
    -------
    numpy.ndarray
        The low-pass, same shape as ``patterns``.

    Examples
    --------
    >>> img = np.full((20, 30), 7.0)
    >>> bool(np.allclose(gaussian_lowpass(img, sigma=2.0), 7.0))
    True
    """
    stack, single = _as_stack(patterns)
    sigma = _check_sigma(sigma)
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {', '.join(KERNELS)}; got {kernel!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if fft_size not in ("fast", "pow2"):
        raise ValueError(f"fft_size must be 'fast' or 'pow2'; got {fft_size!r}")
    dtype = _float_dtype(dtype, np.float32 if stack.dtype == np.float32 else np.float64)
    k = _kernel_1d(sigma, support, kernel)
    stack = stack.astype(dtype, copy=False)
    if method == "auto":
        method = "direct" if len(k) <= _kernels.DIRECT_MAX_TAPS else "fft"
    if method == "fft":
        out = _kernels.lowpass_fft(stack, k, k, fft_size=fft_size, workers=workers)
    else:
        out = _kernels.lowpass_direct(stack, k, k)
    return out[0] if single else out


def _kernel_1d(sigma: float, support: float | None, kernel: str) -> np.ndarray:
    """The 1D Gaussian of :func:`gaussian_lowpass` (sigma already checked)."""
    if kernel == "documented":
        support = 3.0 * sigma if support is None else float(support)
        if not support >= 1.0:
            raise ValueError(f"support must be at least 1 pixel, got {support:g}")
        return _kernels.documented_kernel_1d(sigma, support)
    return _kernels.untruncated_kernel_1d(sigma)


def fused_static_dynamic(
    stack: np.ndarray,
    static_background: np.ndarray | None,
    *,
    sigma: float | None = None,
    operation: str = "divide",
    kernel: str = "documented",
    method: str = "auto",
    out: np.ndarray | None = None,
) -> np.ndarray | None:
    """Static division (when a background is given) and dynamic correction in one pass per pattern.

    The float32 result of :func:`remove_static_background` (divide) followed
    by :func:`remove_dynamic_background` (``method`` resolving to 'direct'),
    with the same operations in the same order, without the intermediate
    stacks. Returns None when ``method`` resolves to the FFT (the caller
    then runs the steps one by one). ``stack`` is (n, h, w) of any real
    dtype, ``static_background`` (h, w) float32 or None; no input checks
    beyond the kernel (the pipeline's :func:`~kikuchi.process.pipeline.prepare` made them).
    ``sigma`` None: the documented default of ``operation`` (:func:`documented_sigma`).
    ``out``: a C-contiguous float32 array of the stack's shape to write to.
    """
    sigma = _check_sigma(documented_sigma(stack.shape, operation) if sigma is None else sigma)
    k = _kernel_1d(sigma, None, kernel)
    if method == "fft" or (method == "auto" and len(k) > _kernels.DIRECT_MAX_TAPS):
        return None
    if operation not in ("divide", "subtract"):
        raise ValueError(f"operation must be 'divide' or 'subtract'; got {operation!r}")
    kp = _kernels.padded_kernel(k, np.float32)
    use_static = static_background is not None
    static = np.ascontiguousarray(static_background if use_static else np.zeros((1, 1)), dtype=np.float32)
    if out is None:
        out = np.empty(stack.shape, dtype=np.float32)
    stack = np.ascontiguousarray(stack)
    group = _kernels.group_size(*stack.shape[1:])
    _kernels.background_fused(stack, static, use_static, kp, len(k), kp, len(k), group, operation == "subtract", out)
    return out


def make_signal_bg(
    img: Any, *, sigma: float | None = None, support: float | None = None, bgscale: float = 1.0, **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Partition an image into a small-scale signal and a smooth background.

    ``background = bgscale * lowpass(img)``, ``signal = img - background``;
    with ``bgscale = 1`` both add up to the image exactly.

    Parameters
    ----------
    img
        One image (h, w) or a stack (n, h, w).
    sigma
        Gaussian std in pixels; default image width / 25.
    support
        Kernel extent; default 3 sigma.
    bgscale
        Scale of the background (e.g. to keep the signal >= 0).
    **options
        ``kernel``, ``method``, ``fft_size``, ``dtype``, ``workers`` of
        :func:`gaussian_lowpass`.

    Returns
    -------
    signal, background

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> img = rng.normal(100, 5, (24, 32))
    >>> signal, background = make_signal_bg(img)
    >>> bool(np.allclose(signal + background, img))
    True
    """
    stack, _ = _as_stack(img, "img")
    _check_options(options, "make_signal_bg")
    if isinstance(bgscale, bool) or not isinstance(bgscale, (int, float, np.integer, np.floating)) or not np.isfinite(bgscale):
        raise ValueError(f"make_signal_bg: bgscale must be a finite number, got {bgscale!r}")
    sigma = documented_sigma(stack.shape, "subtract") if sigma is None else sigma
    background = gaussian_lowpass(stack if stack.ndim == np.ndim(img) else stack[0], sigma=sigma, support=support, **options) * bgscale
    signal = np.asarray(img, dtype=background.dtype) - background
    return signal, background


def remove_bg(img: Any, *, sigma: float | None = None, support: float | None = None, **options: Any) -> np.ndarray:
    """Dynamic background correction by division: ``img / lowpass(img)``.

    Non-finite values (0 / 0) are set to 0.

    Parameters
    ----------
    img
        One image (h, w) or a stack (n, h, w).
    sigma
        Gaussian std in pixels; default image height / 8.
    support
        Kernel extent; default 3 sigma.
    **options
        ``kernel``, ``method``, ``fft_size``, ``dtype``, ``workers`` of
        :func:`gaussian_lowpass`.

    Returns
    -------
    numpy.ndarray
        The corrected image, about 1 on average.

    Examples
    --------
    >>> img = np.full((16, 16), 50.0)
    >>> round(float(remove_bg(img).mean()), 12)
    1.0
    """
    stack, _ = _as_stack(img, "img")
    _check_options(options, "remove_bg")
    sigma = documented_sigma(stack.shape, "divide") if sigma is None else sigma
    background = gaussian_lowpass(stack if stack.ndim == np.ndim(img) else stack[0], sigma=sigma, support=support, **options)
    image = np.asarray(img, dtype=background.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(image, background, out=background)
    if not np.isfinite(out).all():
        out[~np.isfinite(out)] = 0.0
    return out


def remove_dynamic_background(
    patterns: Any,
    *,
    sigma: float | None = None,
    operation: str = "divide",
    support: float | None = None,
    **options: Any,
) -> np.ndarray:
    """Remove each pattern's smooth background (the "dynamic" background).

    Parameters
    ----------
    patterns
        One pattern (h, w) or a stack (n, h, w).
    sigma
        Gaussian std in pixels; default height / 8 (divide) or width / 25
        (subtract), as documented for ``remove_bg`` and ``make_signal_bg``.
    operation
        ``'divide'``: :func:`remove_bg`; ``'subtract'``: the signal of
        :func:`make_signal_bg`.
    support, **options
        See :func:`gaussian_lowpass`.

    Returns
    -------
    numpy.ndarray
        float patterns, same shape.
    """
    if operation == "divide":
        return remove_bg(patterns, sigma=sigma, support=support, **options)
    if operation == "subtract":
        return make_signal_bg(patterns, sigma=sigma, support=support, **options)[0]
    raise ValueError(f"operation must be 'divide' or 'subtract'; got {operation!r}")


def remove_static_background(
    patterns: Any,
    background: Any,
    *,
    operation: str = "divide",
    scale: str | float = "mean",
    dtype: Any = None,
) -> np.ndarray:
    """Correct patterns for the detector's static background.

    Parameters
    ----------
    patterns
        One pattern (h, w) or a stack (n, h, w).
    background
        Static background (h, w), e.g. the mean pattern of a map.
    operation
        ``'divide'`` (flat field correction, the default):
        ``pattern / background``, 0 where the background is <= 0.
        ``'subtract'``: ``pattern - s * background``.
    scale
        For ``'subtract'``: ``'mean'`` scales the background to each
        pattern's mean (``s = mean(pattern) / mean(background)``, so the
        result has mean 0), or a fixed number ``s``.
    dtype
        float32 or float64 (default float64, or float32 for float32 input).

    Returns
    -------
    numpy.ndarray
        float patterns, same shape.

    Raises
    ------
    ValueError
        The background does not have the patterns' shape.

    Examples
    --------
    >>> p = np.array([[2.0, 4.0], [6.0, 8.0]])
    >>> remove_static_background(p, np.array([[1.0, 2.0], [3.0, 0.0]]))
    array([[2., 2.],
           [2., 0.]])
    """
    stack, single = _as_stack(patterns)
    bg = np.asarray(background)
    if bg.shape != stack.shape[1:]:
        raise ValueError(
            f"static background of shape {bg.shape} does not fit patterns of shape {stack.shape[1:]}; "
            "give a background of the pattern shape (bin it the same way as the patterns)"
        )
    dtype = _float_dtype(dtype, np.float32 if stack.dtype == np.float32 else np.float64)
    x = stack.astype(dtype, copy=False)
    b = bg.astype(dtype, copy=False)
    if operation == "divide":
        out = np.zeros(x.shape, dtype=dtype)
        np.divide(x, b, out=out, where=np.broadcast_to(b > 0, x.shape))
    elif operation == "subtract":
        if isinstance(scale, str):
            if scale != "mean":
                raise ValueError(f"scale must be 'mean' or a number; got {scale!r}")
            bmean = float(b.mean(dtype=np.float64))
            if bmean == 0:
                raise ValueError("static background has mean 0: cannot scale it to the patterns")
            s = (x.reshape(len(x), -1).mean(axis=1, dtype=np.float64) / bmean).astype(dtype)[:, None, None]
        else:
            s = dtype.type(float(scale))
        out = x - s * b
    else:
        raise ValueError(f"operation must be 'divide' or 'subtract'; got {operation!r}")
    return out[0] if single else out


def partition_static_background(
    background: Any, *, sigma: float | None = None, **options: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Split a static background into its smooth part and its small-scale part.

    The small-scale part holds contamination, dead and hot pixels and
    hardware lines; both parts add up to the background exactly.

    Parameters
    ----------
    background
        Static background (h, w).
    sigma
        Gaussian std in pixels; default width / 25 (as :func:`make_signal_bg`).
    **options
        See :func:`gaussian_lowpass`.

    Returns
    -------
    smooth, small_scale
    """
    bg = np.asarray(background)
    if bg.ndim != 2:
        raise ValueError(f"static background must be an image (h, w); got shape {bg.shape}")
    small, smooth = make_signal_bg(bg, sigma=sigma, **options)
    return smooth, small
