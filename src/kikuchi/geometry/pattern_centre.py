"""Pattern centre (PC) conventions of Bruker, EDAX/TSL, Oxford Instruments and EMsoft.

Internally kikuchi uses Bruker's convention. With the pattern ``h`` rows high
and ``w`` columns wide (binned pixels), the PC is the point on the screen
closest to the source point and ``DD`` its distance from the screen:

========== ======================= ======================= ===================== =================
convention x                       y                       z                     origin
========== ======================= ======================= ===================== =================
bruker     PCx: fraction of w      PCy: fraction of h      DD: fraction of h     top left, y down
edax/tsl   x*: fraction of w       y*: fraction of h       z*: fraction of       bottom left, y up
                                                           min(w, h)
oxford     x*: fraction of w       y*: fraction of **w**   z*: fraction of w     bottom left, y up
emsoft     xpc: unbinned pixels    ypc: unbinned pixels    L: µm                 screen centre
           (> 0: PC left of        (> 0: PC above
           centre)                 centre)
emsoft4    as emsoft, xpc negated
========== ======================= ======================= ===================== =================

These are the conversions of kikuchipy 0.13.1's code
(``EBSDDetector._pc_tsl2bruker`` and friends; for rectangular EDAX detectors
since kikuchipy PR #604, with PyEBSDIndex) - not the older formulas still in
its ``pc_tsl`` docstring. See docs/conventions.md for the formulas, the
sources and the published examples our tests reproduce.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["PC_CONVENTIONS", "PatternCentreError", "convert_pc", "normalize_convention"]

#: Canonical convention names.
PC_CONVENTIONS = ("bruker", "edax", "oxford", "emsoft", "emsoft4")

_ALIASES = {
    "bruker": "bruker",
    "edax": "edax",
    "tsl": "edax",
    "edax/tsl": "edax",
    "ametek": "edax",
    "amatek": "edax",
    "oxford": "oxford",
    "aztec": "oxford",
    "hkl": "oxford",
    "emsoft": "emsoft",
    "emsoft5": "emsoft",
    "emsoft4": "emsoft4",
}


class PatternCentreError(ValueError):
    """A pattern centre or its convention is invalid."""


def normalize_convention(name: str) -> str:
    """Canonical name of a PC convention (aliases: tsl, ametek -> edax; aztec, hkl -> oxford; emsoft5 -> emsoft).

    Examples
    --------
    >>> normalize_convention("TSL")
    'edax'
    """
    key = str(name).strip().lower()
    try:
        return _ALIASES[key]
    except KeyError:
        raise PatternCentreError(
            f"unknown pattern centre convention {name!r}; use one of {', '.join(PC_CONVENTIONS)} "
            "(aliases: tsl, ametek, aztec, hkl, emsoft5)"
        ) from None


def _shape(shape: Any) -> tuple[int, int]:
    try:
        h, w = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise PatternCentreError(f"pattern shape must be (rows, cols), got {shape!r}") from None
    if h <= 0 or w <= 0:
        raise PatternCentreError(f"pattern shape must be positive, got {(h, w)}")
    return h, w


def _to_bruker(pc: np.ndarray, conv: str, h: int, w: int, binning: int, px_size_um: float | None) -> np.ndarray:
    x, y, z = pc[..., 0], pc[..., 1], pc[..., 2]
    if conv == "bruker":
        return pc.copy()
    if conv == "edax":
        return np.stack([x, 1.0 - y, z * min(h, w) / h], axis=-1)
    if conv == "oxford":
        return np.stack([x, 1.0 - y * w / h, z * w / h], axis=-1)
    _need_px(px_size_um, conv)
    xpc = -x if conv == "emsoft4" else x
    return np.stack([0.5 - xpc / (w * binning), 0.5 - y / (h * binning), z / (h * binning * px_size_um)], axis=-1)


def _from_bruker(pc: np.ndarray, conv: str, h: int, w: int, binning: int, px_size_um: float | None) -> np.ndarray:
    x, y, z = pc[..., 0], pc[..., 1], pc[..., 2]
    if conv == "bruker":
        return pc.copy()
    if conv == "edax":
        return np.stack([x, 1.0 - y, z * h / min(h, w)], axis=-1)
    if conv == "oxford":
        return np.stack([x, (1.0 - y) * h / w, z * h / w], axis=-1)
    _need_px(px_size_um, conv)
    xpc = (0.5 - x) * w * binning
    if conv == "emsoft4":
        xpc = -xpc
    return np.stack([xpc, (0.5 - y) * h * binning, z * h * binning * px_size_um], axis=-1)


def _need_px(px_size_um: float | None, conv: str) -> None:
    if px_size_um is None or not px_size_um > 0:
        raise PatternCentreError(
            f"the {conv} pattern centre gives the detector distance L in µm: pass px_size_um, "
            "the unbinned detector pixel size in µm"
        )


def convert_pc(
    pc: Any,
    from_: str,
    to: str,
    *,
    shape: tuple[int, int],
    binning: int = 1,
    px_size_um: float | None = None,
) -> np.ndarray:
    """Convert pattern centres between conventions.

    Parameters
    ----------
    pc
        (..., 3) pattern centres in convention ``from_``.
    from_, to
        'bruker', 'edax' (or 'tsl'), 'oxford', 'emsoft' (v5) or 'emsoft4'.
    shape
        Pattern shape (rows, cols) in (binned) pixels.
    binning
        Detector binning factor (EMsoft counts unbinned pixels).
    px_size_um
        Unbinned detector pixel size in µm; needed for EMsoft only.

    Returns
    -------
    numpy.ndarray
        (..., 3) float64 pattern centres in convention ``to``.

    Raises
    ------
    PatternCentreError
        Unknown convention, bad shape, or EMsoft without ``px_size_um``.

    Examples
    --------
    kikuchipy's documented example (60 x 80 pattern, 8 x 8 binning, 59.2 µm pixels):

    >>> convert_pc([0.4, 0.2, 0.6], "bruker", "emsoft", shape=(60, 80), binning=8, px_size_um=59.2).round(4).tolist()
    [64.0, 144.0, 17049.6]
    >>> convert_pc([0.4, 0.2, 0.6], "bruker", "edax", shape=(60, 80)).round(4).tolist()
    [0.4, 0.8, 0.6]
    >>> convert_pc([0.48, 0.54, 0.51], "oxford", "bruker", shape=(512, 622)).round(4).tolist()
    [0.48, 0.344, 0.6196]
    """
    src, dst = normalize_convention(from_), normalize_convention(to)
    h, w = _shape(shape)
    binning = int(binning)
    if binning < 1:
        raise PatternCentreError(f"binning must be a positive integer, got {binning}")
    try:
        arr = np.asarray(pc, dtype=np.float64)
    except (TypeError, ValueError):
        raise PatternCentreError(f"pattern centre {pc!r}: expected numbers (x, y, z)") from None
    if arr.ndim == 0 or arr.shape[-1] != 3:
        raise PatternCentreError(f"pattern centre must have 3 values (x, y, z) in its last axis, got shape {arr.shape}")
    if src == dst:
        return arr.copy()
    bruker = _to_bruker(arr, src, h, w, binning, px_size_um)
    return _from_bruker(bruker, dst, h, w, binning, px_size_um)
