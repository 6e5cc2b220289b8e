"""Detector geometry: pattern centre conventions, gnomonic projection, sample and crystal frames.

The one place where the conventions live (see docs/conventions.md).
"""

from __future__ import annotations

from kikuchi.geometry.detector import Detector, line_segment_in_pattern, sample_to_detector_matrix
from kikuchi.geometry.orientation import (
    axis_angle_matrix,
    crystal_to_sample,
    euler_to_matrix,
    matrix_to_euler,
    sample_to_crystal,
)
from kikuchi.geometry.pattern_centre import PC_CONVENTIONS, PatternCentreError, convert_pc, normalize_convention

__all__ = [
    "PC_CONVENTIONS",
    "Detector",
    "PatternCentreError",
    "axis_angle_matrix",
    "convert_pc",
    "crystal_to_sample",
    "euler_to_matrix",
    "line_segment_in_pattern",
    "matrix_to_euler",
    "normalize_convention",
    "sample_to_crystal",
    "sample_to_detector_matrix",
]
