"""Per-pattern reductions over a whole map, chunk by chunk."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from kikuchi.engine._chunks import Chunk, default_chunk_shape, plan_chunks
from kikuchi.engine._executors import resolve_workers, run_chunks
from kikuchi.io.mapstore import EBSDMap

_logger = logging.getLogger(__name__)


def map_reduce(
    ebsd_map: EBSDMap,
    func: Callable[..., Any],
    *,
    kwargs: dict[str, Any] | None = None,
    executor: str = "serial",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    halo_rows: int = 0,
    chunk_rows: int | None = None,
    chunk_cols: int | None = None,
    positions: bool = False,
    on_bad_chunk: str | None = None,
) -> np.ndarray:
    """Apply ``func`` to every pattern of a map, chunk by chunk; one result per pattern.

    The map is read in bands of map rows (tiles of columns of them on maps
    too wide for a band to fit the memory budget); at most a few chunks are
    in memory at a time, whatever the size of the map. The same chunk function runs
    serially, on a thread pool or on a dask.distributed cluster, with
    identical results.

    Parameters
    ----------
    ebsd_map
        The open map (its current dataset is read).
    func
        Without halo: ``func(patterns (n, h, w), **kwargs) -> (n, ...)``, one
        result row per pattern. With ``halo_rows > 0``:
        ``func(block (r, cols, h, w), have=(r, cols) bool, core=(i0, i1), **kwargs)
        -> (i1 - i0, cols, ...)``, where ``block`` holds the chunk's map rows
        with ``halo_rows`` extra rows above and below (zeros where ``have``
        is False) and the result covers the core rows ``block[i0:i1]``. On a
        tile the block also holds ``halo_rows`` columns on either side; their
        results are cut off, or, if ``func`` takes a keyword
        ``core_cols=(j0, j1)`` (by name or through ``**kwargs``), it gets the
        tile's own columns and returns only those, ``(i1 - i0, j1 - j0, ...)``.
        For distributed runs ``func`` and ``kwargs`` must be picklable (a
        module-level function, not a lambda).
    kwargs
        Keyword arguments of ``func``.
    executor
        'serial', 'threads' (kernels that release the GIL: numpy, scipy,
        numba ``nogil``) or 'distributed'.
    workers
        Threads, or worker processes of a new ``LocalCluster`` (distributed
        without ``scheduler``); default: the number of CPUs.
    scheduler
        Address ``tcp://HOST:PORT`` of a running dask scheduler, or a
        ``distributed.Client`` (distributed only).
    progress
        Show a progress bar on a terminal.
    halo_rows
        Map rows of neighbours each chunk needs above and below (and columns
        on either side of a tile).
    chunk_rows
        Map rows per chunk; default about 32 MiB of float32 patterns (more,
        up to 128 MiB, with a halo: at least 16 halos tall), and at least
        three chunks per worker.
    chunk_cols
        Map columns per chunk (tiles); default: whole rows unless a chunk of
        ``chunk_rows`` rows would exceed that budget. Given ``chunk_rows``
        without ``chunk_cols``: whole rows.
    positions
        Also pass the map positions: ``rows=``, ``cols=`` arrays (n,) with
        the (row, col) of each pattern (without halo), or the map rows and
        columns of the block (with halo).
    on_bad_chunk
        What to do where the file cannot be decoded (a damaged chunk, see
        :class:`~kikuchi.io._h5.BadChunkError`): 'raise' (the default) ends
        the run with the error, which names the chunk and its map rows;
        'skip' carries on, computing those points as points without a
        pattern, and afterwards marks them missing in ``ebsd_map`` (index
        map -1, ``ebsd_map.unreadable_points``, one warning per damaged
        chunk). None: the policy of an enclosing
        :func:`~kikuchi.engine.bad_chunk_policy`, else 'raise'.

    Returns
    -------
    numpy.ndarray
        ``(n_patterns, ...)`` results in storage order (the order of
        ``ebsd_map.read``); use ``ebsd_map.index_map`` to place them on the map.
        Stored patterns that no map point refers to are not computed (zeros).

    Raises
    ------
    SchedulerUnreachableError
        ``scheduler`` is an address that does not answer within a few seconds.
    BadChunkError
        A chunk of the file cannot be decoded (``on_bad_chunk='raise'``).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from kikuchi.io.mapstore import MapWriter, open_map
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.h5"
    >>> with MapWriter(p, nav_shape=(3, 4), pattern_shape=(5, 5), dtype="uint8") as w:
    ...     w.write(0, np.arange(12, dtype=np.uint8)[:, None, None] * np.ones((1, 5, 5), np.uint8))
    >>> def mean(patterns):
    ...     return patterns.reshape(len(patterns), -1).mean(axis=1)
    >>> with open_map(p) as m:
    ...     map_reduce(m, mean, progress=False, chunk_rows=2)
    array([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11.])
    """
    kwargs = dict(kwargs or {})
    if halo_rows < 0:
        raise ValueError(f"halo_rows must be >= 0, got {halo_rows}")
    rows = ebsd_map.nav_shape[0]
    n_workers = resolve_workers(executor, workers)
    if chunk_rows is None:
        chunk_rows, auto_cols = default_chunk_shape(ebsd_map, halo_rows=halo_rows, workers=n_workers)
        chunk_cols = chunk_cols or auto_cols
    chunks = plan_chunks(rows, chunk_rows, halo_rows, n_cols=ebsd_map.nav_shape[1], chunk_cols=chunk_cols)
    block = halo_rows > 0
    out: list[np.ndarray | None] = [None]

    def collect(chunk: Chunk, indices: np.ndarray, result: Any) -> None:
        result = np.asarray(result)
        if block:
            have = indices >= 0
            indices, result = indices[have], result[have]
        if out[0] is None:
            out[0] = np.zeros((ebsd_map.n_patterns, *result.shape[1:]), dtype=result.dtype)
        out[0][indices] = result

    run_chunks(
        ebsd_map,
        chunks,
        func,
        kwargs,
        collect,
        block=block,
        positions=positions,
        executor=executor,
        workers=workers,
        scheduler=scheduler,
        progress=progress,
        desc=getattr(func, "__name__", "map_reduce"),
        on_bad_chunk=on_bad_chunk,
    )
    if out[0] is None:  # a map without any pattern
        return np.zeros((0,))
    return out[0]
