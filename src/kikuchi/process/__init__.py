"""Pattern processing: binning, static and dynamic background, contrast, neighbour averaging, NLPAR.

Functions work on one pattern (h, w) or a stack (n, h, w); the engine
(:mod:`kikuchi.engine`) streams whole maps through them chunk by chunk.
"""

from __future__ import annotations

from kikuchi.process.averaging import average_neighbours, neighbour_weights
from kikuchi.process.background import (
    gaussian_lowpass,
    make_signal_bg,
    partition_static_background,
    remove_bg,
    remove_dynamic_background,
    remove_static_background,
)
from kikuchi.process.binning import BinningOverflowError, auto_binning, bin_patterns
from kikuchi.process.contrast import circular_mask, clahe, normalize_local, rescale_to_uint
from kikuchi.process.hot_pixels import find_hot_pixels, remove_hot_pixels
from kikuchi.process.nlpar import LambdaChoice, nlpar, nlpar_lambda, nlpar_sigma, nlpar_weights
from kikuchi.process.pipeline import PRESETS, ProcessingSettings, process_patterns

__all__ = [
    "PRESETS",
    "BinningOverflowError",
    "LambdaChoice",
    "ProcessingSettings",
    "auto_binning",
    "average_neighbours",
    "bin_patterns",
    "circular_mask",
    "clahe",
    "find_hot_pixels",
    "gaussian_lowpass",
    "make_signal_bg",
    "neighbour_weights",
    "nlpar",
    "nlpar_lambda",
    "nlpar_sigma",
    "nlpar_weights",
    "normalize_local",
    "partition_static_background",
    "process_patterns",
    "remove_bg",
    "remove_dynamic_background",
    "remove_hot_pixels",
    "remove_static_background",
    "rescale_to_uint",
]
