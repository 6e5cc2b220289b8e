"""Pattern matching refinement: orientation and pattern centre by NCC against projected master patterns.

:func:`refine_patterns` works on arrays of patterns; :func:`refine_map`
streams a whole map through it on the engine and gives an orientation map
with the NCC and the PC of every point; :func:`fit_pc_plane_to_points` turns
refined PCs into one PC or a PC plane for the map.
"""

from __future__ import annotations

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
    "fit_pc_plane_to_points",
    "load_master_pattern",
    "ncc",
    "normalize_patterns",
    "prepare_for_matching",
    "pseudo_symmetry_operators",
    "refine_map",
    "refine_patterns",
]
