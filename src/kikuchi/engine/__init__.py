"""Chunked map execution: serial, on threads, or on a dask.distributed cluster.

A map is streamed in bands of map rows (with halo rows for operations that
need neighbours); at most a few bands are in memory at a time.
"""

from __future__ import annotations

from kikuchi.engine._executors import SchedulerUnreachableError, dask_client
from kikuchi.engine.map_reduce import map_reduce

__all__ = ["SchedulerUnreachableError", "dask_client", "map_reduce"]
