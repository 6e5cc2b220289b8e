"""The public names of kikuchi.process and kikuchi.engine change only on purpose."""

from __future__ import annotations

import kikuchi.engine
import kikuchi.process


def test_process_names():
    assert sorted(kikuchi.process.__all__) == sorted(
        [
            "PRESETS", "BinningOverflowError", "LambdaChoice", "ProcessingSettings", "auto_binning", "average_neighbours", "bin_patterns",
            "circular_mask", "clahe", "find_hot_pixels", "gaussian_lowpass", "make_signal_bg", "neighbour_weights",
            "nlpar", "nlpar_lambda", "nlpar_sigma", "nlpar_weights", "normalize_local", "partition_static_background", "process_patterns", "remove_bg", "remove_dynamic_background",
            "remove_hot_pixels", "remove_static_background", "rescale_to_uint",
        ]
    )
    assert all(hasattr(kikuchi.process, name) for name in kikuchi.process.__all__)


def test_engine_names():
    assert sorted(kikuchi.engine.__all__) == [
        "ON_BAD_CHUNK", "SchedulerUnreachableError", "bad_chunk_policy", "dask_client", "load_static_background", "map_reduce",
        "mean_pattern", "process_map", "process_pattern_at",
    ]
    assert all(hasattr(kikuchi.engine, name) for name in kikuchi.engine.__all__)
