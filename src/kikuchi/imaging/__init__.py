"""BSE imaging from pattern maps: virtual BSE arrays, colour images, centre of mass, diodes, quality.

Array functions work on pattern stacks (n, h, w) or maps (rows, cols, h, w);
:func:`vbse_maps` and :func:`quality_maps` stream a whole map file through
the engine. See docs/imaging.md.
"""

from __future__ import annotations

from kikuchi.imaging.centre_of_mass import centre_of_mass, hillshade, pattern_moments
from kikuchi.imaging.images import (
    asymmetry,
    block_mean,
    default_rgb_regions,
    differential_array,
    differential_rgb_image,
    grid_col_images,
    grid_row_images,
    montage,
    normalise_channel,
    region_image,
    remove_line_gradient,
    rgb_image,
)
from kikuchi.imaging.maps import QualityMaps, VbseMaps, kikuchi_signal, quality_maps, vbse_map, vbse_maps
from kikuchi.imaging.quality import image_quality, neighbour_dot_product
from kikuchi.imaging.vbse import diode_array, parse_grid, region_weights, strip_weights, total_bse, vbse_array

__all__ = [
    "QualityMaps",
    "VbseMaps",
    "asymmetry",
    "block_mean",
    "centre_of_mass",
    "default_rgb_regions",
    "differential_array",
    "differential_rgb_image",
    "diode_array",
    "grid_col_images",
    "grid_row_images",
    "hillshade",
    "image_quality",
    "kikuchi_signal",
    "montage",
    "neighbour_dot_product",
    "normalise_channel",
    "parse_grid",
    "pattern_moments",
    "quality_maps",
    "region_image",
    "region_weights",
    "remove_line_gradient",
    "rgb_image",
    "strip_weights",
    "total_bse",
    "vbse_array",
    "vbse_map",
    "vbse_maps",
]
