"""The public names of kikuchi.explore change only on purpose."""

from __future__ import annotations

import kikuchi
import kikuchi.explore
import kikuchi.explore.encode
import kikuchi.explore.layers
import kikuchi.explore.server
import kikuchi.explore.source


def test_explore_names():
    assert sorted(kikuchi.explore.__all__) == ["Explorer", "MapSource", "explore"]
    modules = {
        kikuchi.explore.encode: ["DTYPE_CODES", "HEADER", "PatternMessage", "decode_pattern", "encode_pattern", "image_png", "pattern_tiff"],
        kikuchi.explore.layers: [
            "MapLayer", "PointOrientations", "find_layers", "ipf_key_png",
            "orientations_from_file", "orientations_from_map", "orientations_from_omap",
        ],
        kikuchi.explore.server: ["ExplorerServer", "STATIC_FILES", "make_server"],
        kikuchi.explore.source: ["MAX_NLPAR", "MAX_NPA", "MapSource", "PatternQuery", "RequestError"],
    }  # fmt: skip
    for module, names in modules.items():
        assert sorted(module.__all__) == sorted(names), module.__name__
        assert all(hasattr(module, name) for name in module.__all__)


def test_kikuchi_explore_is_the_function_whichever_is_imported_first():
    """``kikuchi.explore`` names the subpackage and the top-level function: both are callable as explore()."""
    assert callable(kikuchi.explore)
    assert kikuchi.explore.explore.__name__ == "explore"
    assert "explore" in kikuchi.__all__
