"""Indexing: Hough (band normals, triplet voting, least-squares orientations, pattern centre refinement) and dictionary indexing."""

from __future__ import annotations

from kikuchi.index.dictionary import (
    DictionaryIndexing,
    DictionaryResult,
    PatternDictionary,
    dictionary_index,
    index_map_dictionary,
    pattern_vectors,
    sample_orientations,
)
from kikuchi.index.figures import index_summary_figure
from kikuchi.index.hough_index import ERROR_CODES, HoughIndexer, IndexResult
from kikuchi.index.map_index import MapIndexing, index_map, prepare_patterns, to_orientation_map
from kikuchi.index.normals import band_normals, detector_homographies, homography_from_directions
from kikuchi.index.pattern_centre import fit_pc_plane, refine_pattern_centre
from kikuchi.index.triplets import TripletTable, build_triplet_table, triplet_table_for_phase

__all__ = [
    "DictionaryIndexing",
    "DictionaryResult",
    "ERROR_CODES",
    "HoughIndexer",
    "IndexResult",
    "MapIndexing",
    "PatternDictionary",
    "TripletTable",
    "band_normals",
    "build_triplet_table",
    "detector_homographies",
    "dictionary_index",
    "fit_pc_plane",
    "homography_from_directions",
    "index_map",
    "index_map_dictionary",
    "index_summary_figure",
    "pattern_vectors",
    "prepare_patterns",
    "refine_pattern_centre",
    "sample_orientations",
    "to_orientation_map",
    "triplet_table_for_phase",
]
