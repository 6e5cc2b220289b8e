"""The public names of kikuchi.imaging change only on purpose."""

from __future__ import annotations

import kikuchi.imaging
import kikuchi.imaging.gallery


def test_imaging_names():
    assert sorted(kikuchi.imaging.__all__) == [
        "QualityMaps", "VbseMaps", "asymmetry", "block_mean", "centre_of_mass", "default_rgb_regions", "differential_array",
        "differential_rgb_image", "diode_array", "grid_col_images", "grid_row_images", "hillshade", "image_quality",
        "kikuchi_signal", "montage", "neighbour_dot_product", "normalise_channel", "parse_grid", "pattern_moments",
        "quality_maps", "region_image", "region_weights", "remove_line_gradient", "rgb_image", "strip_weights",
        "total_bse", "vbse_array", "vbse_map", "vbse_maps",
    ]  # fmt: skip
    assert all(hasattr(kikuchi.imaging, name) for name in kikuchi.imaging.__all__)


def test_gallery_names():
    assert sorted(kikuchi.imaging.gallery.__all__) == [
        "GalleryImage", "check_step", "save_quality_h5", "save_vbse_h5", "write_index_html", "write_quality_gallery", "write_vbse_gallery",
    ]  # fmt: skip
    assert all(hasattr(kikuchi.imaging.gallery, name) for name in kikuchi.imaging.gallery.__all__)
