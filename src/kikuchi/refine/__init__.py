"""Pattern matching refinement: orientation and pattern centre by NCC against projected master patterns.

:func:`refine_patterns` works on arrays of patterns; :func:`refine_map`
streams a whole map through it on the engine and gives an orientation map
with the NCC and the PC of every point; :func:`fit_pc_plane_to_points` turns
refined PCs into one PC or a PC plane for the map; :func:`calibrate_pc`
calibrates the PC of a map from a grid of its patterns and
:func:`moving_screen_pc` by the moving-screen method.
"""

from __future__ import annotations

from kikuchi.refine.calibration import calibrate_pc, moving_screen_pc
from kikuchi.refine.map_refine import (
    PC_MODELS,
    MapRefinement,
    fit_pc_plane_to_points,
    load_master_pattern,
    prepare_for_matching,
    refine_map,
)
from kikuchi.refine.refinement import (
    REFINE_MODES,
    RefinementResult,
    ncc,
    normalize_patterns,
    pseudo_symmetry_operators,
    refine_patterns,
)

__all__ = [
    "MapRefinement",
    "PC_MODELS",
    "REFINE_MODES",
    "RefinementResult",
    "calibrate_pc",
    "fit_pc_plane_to_points",
    "load_master_pattern",
    "moving_screen_pc",
    "ncc",
    "normalize_patterns",
    "prepare_for_matching",
    "pseudo_symmetry_operators",
    "refine_map",
    "refine_patterns",
]
