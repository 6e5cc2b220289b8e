"""Figures of maps: PNG images with scale bar and colour bar, IPF and phase colours.

Drawn with matplotlib's Agg canvas on private figures (no pyplot state).
"""

from __future__ import annotations

from kikuchi.figures.colours import euler_rgb, ipf_colours, ipf_key_image, ipf_rgb, phase_colours, phase_rgb, point_group_symmetry
from kikuchi.figures.map_image import nice_scale_bar_um, render_map_image, save_map_image

__all__ = [
    "euler_rgb",
    "ipf_colours",
    "ipf_key_image",
    "ipf_rgb",
    "nice_scale_bar_um",
    "phase_colours",
    "phase_rgb",
    "point_group_symmetry",
    "render_map_image",
    "save_map_image",
]
