"""Patterns that hold no signal, and static backgrounds that cannot be used.

Real maps hold bad frames: a dropped frame (all zero), a saturated one (all
at the maximum of its type), a blanked beam (one constant value), a float
pattern with NaN or infinite pixels. Such a pattern holds no Kikuchi
signal: every stage of kikuchi treats its map point as a bad point (flagged,
counted, reported), computes nothing from it and lets it change nothing
else (it is no one's neighbour in averaging or dot products, and no part of
a mean background). See docs/processing.md, "Bad patterns".

A static background is a divisor (flat field): one that is not finite
anywhere, has no positive value or has negative values cannot be one. It
is then not used, with a warning (:func:`check_static_background`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from kikuchi.process import _kernels

__all__ = [
    "NoSignalWarning",
    "StaticBackgroundWarning",
    "check_static_background",
    "describe_no_signal",
    "no_signal",
    "no_signal_summary",
]

#: How a point without signal is described to users (result lines, warnings, docs).
NO_SIGNAL = "all one value, or not finite"


class NoSignalWarning(UserWarning):
    """Some patterns of a map hold no signal; their points are flagged and not computed."""


class StaticBackgroundWarning(UserWarning):
    """A static background cannot be used as a divisor; the step runs without it."""


def no_signal(patterns: Any) -> np.ndarray:
    """True for each pattern that holds no signal: all pixels one value, or a pixel not finite.

    Parameters
    ----------
    patterns
        One pattern (h, w), a stack (n, h, w) or a map (rows, cols, h, w),
        of any real or boolean dtype.

    Returns
    -------
    numpy.ndarray
        bool of the leading shape (a 0-d array for one pattern).

    Raises
    ------
    ValueError
        Not an array of patterns, or not a numeric dtype.

    Examples
    --------
    >>> p = np.random.default_rng(0).integers(0, 255, (4, 8, 8)).astype(np.uint8)
    >>> p[1] = 0; p[2] = 255
    >>> no_signal(p).tolist()
    [False, True, True, False]
    >>> q = p.astype(np.float32); q[3, 2, 2] = np.nan
    >>> no_signal(q).tolist()
    [False, True, True, True]
    """
    a = np.asarray(patterns)
    if a.dtype.kind not in "biuf":
        raise ValueError(f"patterns must be numbers (integer, float or boolean), got dtype {a.dtype}")
    if a.ndim < 2:
        raise ValueError(f"patterns must be (h, w), (n, h, w) or (rows, cols, h, w); got shape {a.shape}")
    lead = a.shape[:-2]
    h, w = a.shape[-2:]
    out = np.zeros(int(np.prod(lead, dtype=np.int64)), dtype=bool)
    if out.size == 0 or h * w == 0:
        out[:] = True  # no pixel: no signal
        return out.reshape(lead)
    stack = a.reshape(-1, h, w)
    if stack.dtype == np.bool_:
        stack = stack.view(np.uint8)
    elif stack.dtype.kind == "f" and stack.dtype not in (np.float32, np.float64):
        stack = stack.astype(np.float32)  # float16, long double; big-endian floats
    elif not stack.dtype.isnative:
        stack = stack.astype(stack.dtype.newbyteorder("="))
    _kernels.flat_stack(stack, out)
    if stack.dtype.kind == "f":
        not_finite = np.zeros_like(out)
        bits = np.ascontiguousarray(stack).view(np.uint32 if stack.dtype == np.float32 else np.uint64)
        _kernels.not_finite_stack(bits, bits.dtype.type(0x7F800000 if stack.dtype == np.float32 else 0x7FF0000000000000), not_finite)
        out |= not_finite
    return out.reshape(lead)


def no_signal_summary(flagged: Any, *, have: Any = None, show: int = 5) -> str:
    """'2 of 20 points hold no signal (...): (row 0, col 3), (row 2, col 1)': the flagged points of a map, in words.

    ``flagged`` (rows, cols) bool; ``have`` (rows, cols) bool, the points
    with a pattern (default all); at most ``show`` positions are listed.

    >>> no_signal_summary(np.array([[False, True], [False, False]]))
    '1 of 4 points holds no signal (all one value, or not finite): (row 0, col 1)'
    """
    flagged = np.asarray(flagged, dtype=bool)
    total = flagged.size if have is None else int(np.asarray(have, dtype=bool).sum())
    where = np.argwhere(flagged)
    n = len(where)
    listed = ", ".join(f"(row {r}, col {c})" for r, c in where[:show]) + (", ..." if n > show else "")
    verb = "holds" if n == 1 else "hold"
    return f"{n} of {total} points {verb} no signal ({NO_SIGNAL}): {listed}"


def describe_no_signal(pattern: Any) -> str:
    """Why one pattern holds no signal, in words: 'every pixel is 0', 'NaN in 3 pixels', ...

    >>> describe_no_signal(np.full((4, 4), 255, np.uint8))
    'every pixel is 255 (the maximum of uint8: saturated)'
    """
    p = np.asarray(pattern)
    if p.dtype.kind == "f":
        nan = int(np.isnan(p).sum())
        inf = int(np.isinf(p).sum())
        if nan or inf:
            parts = [f"NaN in {nan} pixel{'s' * (nan != 1)}"] * bool(nan) + [f"infinite values in {inf} pixel{'s' * (inf != 1)}"] * bool(inf)
            return " and ".join(parts)
    if p.size == 0:
        return "it has no pixel"
    v = p.flat[0]
    if p.dtype.kind in "ui" and v == np.iinfo(p.dtype).max:
        return f"every pixel is {v} (the maximum of {p.dtype}: saturated)"
    return f"every pixel is {v.item() if hasattr(v, 'item') else v}"


def check_static_background(
    background: Any, *, operation: str = "divide", scale: Any = "mean", source: str = "static background", warn: bool = True
) -> tuple[np.ndarray | None, str | None]:
    """The static background if it can be used for ``operation``, else None; and a note on what was odd.

    For 'divide' (a flat field) the background must hold finite values, no
    negative one and at least one positive one; pixels that are 0 or not
    finite give 0 in the corrected patterns (dead pixels). For 'subtract'
    every value must be finite (and, scaled to each pattern's mean, the mean
    must not be 0). A background that fails is not used: the note says why
    (and, with ``warn``, a :class:`StaticBackgroundWarning` says it).

    Parameters
    ----------
    background
        (h, w) array, or None (returned as is).
    operation
        'divide' or 'subtract'.
    scale
        For 'subtract': 'mean' or a number.
    source
        Where the background came from, for the note (a file name, ...).
    warn
        Issue the note as a warning.

    Returns
    -------
    background, note
        ``background`` (unchanged) or None when it cannot be used; ``note``
        None when nothing was odd.

    Raises
    ------
    ValueError
        A background that is not a numeric image.

    Examples
    --------
    >>> check_static_background(np.zeros((3, 3)), warn=False)
    (None, 'static background: every value is 0 (a flat field divisor needs positive values); not used')
    """
    if background is None:
        return None, None
    bg = np.asarray(background)
    if bg.dtype.kind not in "biuf":
        raise ValueError(f"{source}: a static background must be an image of numbers, got dtype {bg.dtype}")
    finite = np.isfinite(bg) if bg.dtype.kind == "f" else np.ones(bg.shape, dtype=bool)
    n_bad = int(bg.size - finite.sum())
    values = bg[finite].astype(np.float64)
    problem = None
    odd = None
    if values.size == 0:
        problem = "no value is finite (all NaN or infinite)"
    elif operation == "divide":
        if (values < 0).any():
            problem = (
                f"{int((values < 0).sum())} of its {bg.size} values are negative (down to {values.min():.4g}): "
                "a flat field divisor is never negative (a small-scale background goes with --static subtract)"
            )
        elif not (values > 0).any():
            problem = "every value is 0 (a flat field divisor needs positive values)"
        elif n_bad:
            odd = f"{n_bad} of its {bg.size} values are not finite (NaN or infinite): treated as dead pixels (0 in the corrected patterns)"
    elif operation == "subtract":
        if n_bad:
            problem = f"{n_bad} of its {bg.size} values are not finite (NaN or infinite): cannot subtract it"
        elif isinstance(scale, str) and values.mean() == 0:
            problem = "its mean is 0: it cannot be scaled to the patterns' mean"
    if problem is not None:
        note = f"{source}: {problem}; not used"
    elif odd is not None:
        note = f"{source}: {odd}"
    else:
        return bg, None
    if warn:
        warnings.warn(note, StaticBackgroundWarning, stacklevel=2)
    return (None if problem is not None else bg), note
