"""Kikuchi band detection: Hough transform of binarised patterns and grey-level Radon transform."""

from __future__ import annotations

from kikuchi.bands.bands import Bands, line_endpoints
from kikuchi.bands.hough import BUTTERFLY_9X9, detect_bands_binary, hough_peaks, hough_transform_binary, otsu_binarise
from kikuchi.bands.radon import BandDetector, butterfly_kernels, detect_bands, detect_bands_stack

__all__ = [
    "BUTTERFLY_9X9",
    "BandDetector",
    "Bands",
    "butterfly_kernels",
    "detect_bands",
    "detect_bands_binary",
    "detect_bands_stack",
    "hough_peaks",
    "hough_transform_binary",
    "line_endpoints",
    "otsu_binarise",
]
