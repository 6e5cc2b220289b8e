"""Pattern matching refinement: orientation and pattern centre by NCC against projected master patterns."""

from __future__ import annotations

from kikuchi.refine.refinement import (
    REFINE_MODES,
    RefinementResult,
    ncc,
    normalize_patterns,
    pseudo_symmetry_operators,
    refine_patterns,
)

__all__ = [
    "REFINE_MODES",
    "RefinementResult",
    "ncc",
    "normalize_patterns",
    "pseudo_symmetry_operators",
    "refine_patterns",
]
