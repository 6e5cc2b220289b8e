"""The public names of kikuchi.simulate and kikuchi.geometry."""

from __future__ import annotations

import kikuchi.geometry as geometry
import kikuchi.simulate as simulate


def test_public_names_resolve():
    assert sorted(simulate.__all__) == [
        "MasterPattern", "band_lines", "detect", "kinematical_master_pattern", "lambert_grid_vectors", "project_patterns",
        "simulate", "simulate_from_orientation_map", "vectors_to_lambert", "zone_axes",
    ]
    for name in simulate.__all__:
        assert getattr(simulate, name) is not None
    for name in geometry.__all__:
        assert getattr(geometry, name) is not None
    assert callable(simulate) and callable(simulate.simulate)
