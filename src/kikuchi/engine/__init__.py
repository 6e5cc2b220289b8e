"""Chunked map execution: serial, on threads, or on a dask.distributed cluster.

A map is streamed in bands of map rows (with halo rows for operations that
need neighbours); at most a few bands are in memory at a time.
"""

from __future__ import annotations

from kikuchi.engine._executors import SchedulerUnreachableError, dask_client
from kikuchi.engine.reduce import map_reduce
from kikuchi.engine.process import load_static_background, mean_pattern, process_map, process_pattern_at

__all__ = [
    "SchedulerUnreachableError",
    "dask_client",
    "load_static_background",
    "map_reduce",
    "mean_pattern",
    "process_map",
    "process_pattern_at",
]
