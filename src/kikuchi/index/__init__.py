"""Hough indexing: band normals, triplet voting, least-squares orientations, pattern centre refinement."""

from __future__ import annotations

from kikuchi.index.hough_index import ERROR_CODES, HoughIndexer, IndexResult
from kikuchi.index.normals import band_normals, detector_homographies, homography_from_directions
from kikuchi.index.triplets import TripletTable, build_triplet_table, triplet_table_for_phase

__all__ = [
    "ERROR_CODES",
    "HoughIndexer",
    "IndexResult",
    "TripletTable",
    "band_normals",
    "build_triplet_table",
    "detector_homographies",
    "homography_from_directions",
    "triplet_table_for_phase",
]
