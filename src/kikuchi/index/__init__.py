"""Hough indexing: band normals, triplet voting, least-squares orientations, pattern centre refinement."""

from __future__ import annotations

from kikuchi.index.figures import index_summary_figure
from kikuchi.index.hough_index import ERROR_CODES, HoughIndexer, IndexResult
from kikuchi.index.map_index import MapIndexing, index_map, prepare_patterns, to_orientation_map
from kikuchi.index.normals import band_normals, detector_homographies, homography_from_directions
from kikuchi.index.pattern_centre import fit_pc_plane, refine_pattern_centre
from kikuchi.index.triplets import TripletTable, build_triplet_table, triplet_table_for_phase

__all__ = [
    "ERROR_CODES",
    "HoughIndexer",
    "IndexResult",
    "MapIndexing",
    "TripletTable",
    "band_normals",
    "build_triplet_table",
    "detector_homographies",
    "fit_pc_plane",
    "homography_from_directions",
    "index_map",
    "index_summary_figure",
    "prepare_patterns",
    "refine_pattern_centre",
    "to_orientation_map",
    "triplet_table_for_phase",
]
