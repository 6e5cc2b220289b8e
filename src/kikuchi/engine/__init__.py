"""Chunked map execution: serial, on threads, or on a dask.distributed cluster.

A map is streamed in bands of map rows (with halo rows for operations that
need neighbours); at most a few bands are in memory at a time.

A chunk of the file that cannot be decoded (a damaged file) ends a run with
an error naming the chunk and its map rows, or, with ``on_bad_chunk='skip'``
(or inside :func:`bad_chunk_policy`), its points are computed as points
without a pattern, marked missing in the map and said in a warning.
"""

from __future__ import annotations

from kikuchi.engine._chunks import ON_BAD_CHUNK, bad_chunk_policy
from kikuchi.engine._executors import SchedulerUnreachableError, dask_client
from kikuchi.engine.reduce import map_reduce
from kikuchi.engine.process import load_static_background, mean_pattern, process_map, process_pattern_at

__all__ = [
    "ON_BAD_CHUNK",
    "SchedulerUnreachableError",
    "bad_chunk_policy",
    "dask_client",
    "load_static_background",
    "map_reduce",
    "mean_pattern",
    "process_map",
    "process_pattern_at",
]
