"""Kikuchi pattern simulation: master patterns, projection, detection model, synthetic maps.

``kikuchi.simulate.simulate(...)`` writes a synthetic map file of known truth
(see :func:`kikuchi.simulate.synthetic.simulate`). The other names are
imported lazily, so ``import kikuchi.simulate`` stays light.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from kikuchi._lazy import lazy_exports

__all__ = [
    "MasterPattern",
    "band_lines",
    "detect",
    "kinematical_master_pattern",
    "lambert_grid_vectors",
    "project_patterns",
    "simulate",
    "simulate_from_orientation_map",
    "vectors_to_lambert",
    "zone_axes",
]

_EXPORTS = {
    "MasterPattern": "kikuchi.simulate.master:MasterPattern",
    "band_lines": "kikuchi.simulate.geometric:band_lines",
    "detect": "kikuchi.simulate.detection:detect",
    "kinematical_master_pattern": "kikuchi.simulate.kinematical:kinematical_master_pattern",
    "lambert_grid_vectors": "kikuchi.simulate.lambert:lambert_grid_vectors",
    "project_patterns": "kikuchi.simulate.projection:project_patterns",
    "simulate_from_orientation_map": "kikuchi.simulate.synthetic:simulate_from_orientation_map",
    "vectors_to_lambert": "kikuchi.simulate.lambert:vectors_to_lambert",
    "zone_axes": "kikuchi.simulate.geometric:zone_axes",
}


def simulate(*args: Any, **kwargs: Any) -> Any:
    """Write a synthetic map of known truth; see :func:`kikuchi.simulate.synthetic.simulate`."""
    from kikuchi.simulate.synthetic import simulate as _simulate

    return _simulate(*args, **kwargs)


class _CallableModule(types.ModuleType):
    """``kikuchi.simulate`` is both this package and the top-level ``kikuchi.simulate(...)`` function.

    Importing any ``kikuchi.simulate.<module>`` binds the package as the
    attribute ``simulate`` of ``kikuchi``; calling the package calls
    :func:`simulate`, so ``kikuchi.simulate(path, ...)`` works either way.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return simulate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)
