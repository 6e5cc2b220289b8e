"""The public names of kikuchi and of each of its areas change only on purpose.

When a name is added or removed deliberately, update this list in the same
commit (scikit-hep/particle keeps its API the same way).
"""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "kikuchi": ['EBSDMap', 'MapWriter', 'OrientationMap', '__version__', 'explore', 'open', 'read_orientation_map', 'simulate'],
    "kikuchi.io": ['AngFormatError', 'CtfFormatError', 'EBSDMap', 'ImageReadError', 'ImageSourceError', 'MapFileError', 'MapFileWarning', 'MapPositionError', 'MapWriter', 'OrientationMap', 'OrientationMapWarning', 'PhaseInfo', 'convert_images', 'open_image_source', 'open_map', 'pattern_formats', 'read_image', 'read_orientation_map', 'write_orientation_map'],
    "kikuchi.crystal": ['AssumedAtomsWarning', 'Atom', 'BUILTIN_PHASES', 'Phase', 'PhaseError', 'Reflectors', 'electron_scattering_factor', 'electron_wavelength_nm', 'reflectors', 'structure_factor'],
    "kikuchi.geometry": ['Detector', 'PC_CONVENTIONS', 'PatternCentreError', 'axis_angle_matrix', 'convert_pc', 'crystal_to_sample', 'euler_to_matrix', 'line_segment_in_pattern', 'matrix_to_euler', 'normalize_convention', 'sample_to_crystal', 'sample_to_detector_matrix'],
    "kikuchi.simulate": ['MasterPattern', 'band_lines', 'detect', 'kinematical_master_pattern', 'lambert_grid_vectors', 'project_patterns', 'simulate', 'simulate_from_orientation_map', 'vectors_to_lambert', 'zone_axes'],
    "kikuchi.process": ['BinningOverflowError', 'LambdaChoice', 'PRESETS', 'ProcessingSettings', 'auto_binning', 'average_neighbours', 'bin_patterns', 'circular_mask', 'clahe', 'find_hot_pixels', 'gaussian_lowpass', 'make_signal_bg', 'neighbour_weights', 'nlpar', 'nlpar_lambda', 'nlpar_sigma', 'nlpar_weights', 'normalize_local', 'partition_static_background', 'process_patterns', 'remove_bg', 'remove_dynamic_background', 'remove_hot_pixels', 'remove_static_background', 'rescale_to_uint'],
    "kikuchi.engine": ['ON_BAD_CHUNK', 'SchedulerUnreachableError', 'bad_chunk_policy', 'dask_client', 'load_static_background', 'map_reduce', 'mean_pattern', 'process_map', 'process_pattern_at'],
    "kikuchi.imaging": ['QualityMaps', 'VbseMaps', 'asymmetry', 'block_mean', 'centre_of_mass', 'default_rgb_regions', 'differential_array', 'differential_rgb_image', 'diode_array', 'grid_col_images', 'grid_row_images', 'hillshade', 'image_quality', 'kikuchi_signal', 'montage', 'neighbour_dot_product', 'normalise_channel', 'parse_grid', 'pattern_moments', 'quality_maps', 'region_image', 'region_weights', 'remove_line_gradient', 'rgb_image', 'strip_weights', 'total_bse', 'vbse_array', 'vbse_map', 'vbse_maps'],
    "kikuchi.bands": ['BUTTERFLY_9X9', 'BandDetector', 'Bands', 'butterfly_kernels', 'detect_bands', 'detect_bands_binary', 'detect_bands_stack', 'hough_peaks', 'hough_transform_binary', 'line_endpoints', 'otsu_binarise'],
    "kikuchi.index": ['DictionaryIndexing', 'DictionaryResult', 'ERROR_CODES', 'HoughIndexer', 'IndexResult', 'MapIndexing', 'PatternDictionary', 'TripletTable', 'band_normals', 'build_triplet_table', 'detector_homographies', 'dictionary_index', 'fit_pc_plane', 'homography_from_directions', 'index_map', 'index_map_dictionary', 'index_summary_figure', 'pattern_vectors', 'prepare_patterns', 'refine_pattern_centre', 'sample_orientations', 'to_orientation_map', 'triplet_table_for_phase'],
    "kikuchi.refine": ['MapRefinement', 'PC_MODELS', 'REFINE_MODES', 'RefinementResult', 'calibrate_pc', 'fit_pc_plane_to_points', 'load_master_pattern', 'moving_screen_pc', 'ncc', 'normalize_patterns', 'prepare_for_matching', 'pseudo_symmetry_operators', 'refine_map', 'refine_patterns'],
    "kikuchi.figures": ['euler_rgb', 'ipf_colours', 'ipf_key_image', 'ipf_rgb', 'nice_scale_bar_um', 'phase_colours', 'phase_rgb', 'point_group_symmetry', 'render_map_image', 'save_map_image'],
    "kikuchi.explore": ['Explorer', 'MapSource', 'explore'],
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_are_pinned_and_resolve(package):
    module = importlib.import_module(package)
    assert sorted(module.__all__) == PUBLIC[package]
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_top_level_entry_points():
    import kikuchi

    assert callable(kikuchi.open) and callable(kikuchi.read_orientation_map)
    assert callable(kikuchi.simulate) and callable(kikuchi.explore)
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        kikuchi.nonexistent  # noqa: B018


def test_callable_packages_whichever_is_imported_first():
    """``kikuchi.simulate`` / ``kikuchi.explore`` are the callable packages, also when reached lazily first."""
    import subprocess
    import sys

    code = (
        "import kikuchi\n"
        "for name in ('simulate', 'explore'):\n"
        "    pkg = getattr(kikuchi, name)\n"
        "    assert callable(pkg) and getattr(pkg, name).__name__ == name, name\n"
        "import kikuchi.simulate.synthetic, kikuchi.explore.server\n"
        "assert callable(kikuchi.simulate) and callable(kikuchi.explore.explore)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
