"""Run chunk tasks serially, on threads or on a dask.distributed cluster.

All three run :func:`kikuchi.engine._chunks.run_chunk` on the same chunks;
at most ``2 * workers`` chunks are in flight, so memory stays bounded by a
few chunks whatever the size of the map.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import queue
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from kikuchi._cpus import available_cpus
from kikuchi.engine._chunks import Chunk, MapSource, Skipped, close_sources, resolve_on_bad_chunk, run_chunk
from kikuchi.io.mapstore import EBSDMap

_logger = logging.getLogger(__name__)

EXECUTORS = ("serial", "threads", "distributed")
#: Seconds to wait for a remote scheduler before giving up.
SCHEDULER_TIMEOUT_S = 5.0


class SchedulerUnreachableError(ConnectionError):
    """The dask scheduler given by address could not be reached."""


def progress_bar(total: int, *, progress: bool, desc: str, unit: str = "pattern") -> Any:
    """A tqdm bar on a terminal (stderr), a silent stand-in otherwise."""
    from tqdm import tqdm

    enabled = bool(progress) and sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=False, dynamic_ncols=True)


def resolve_workers(executor: str, workers: int | None) -> int:
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}; got {executor!r}")
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    if executor == "serial":
        return 1
    return int(workers) if workers else available_cpus()


@contextlib.contextmanager
def dask_client(scheduler: Any = None, *, workers: int | None = None, timeout_s: float | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: given, connected by address, or on a new LocalCluster.

    Parameters
    ----------
    scheduler
        None: start a ``LocalCluster`` of ``workers`` single-threaded worker
        processes (closed at the end). A string ``tcp://HOST:PORT``: connect
        to that scheduler (``timeout_s`` seconds at most). A ``Client``: use
        it as is (not closed).
    """
    from distributed import Client

    if isinstance(scheduler, Client):
        yield scheduler
        return
    with _distributed_logs_at_warning():
        with _new_client(scheduler, workers=workers, timeout_s=timeout_s) as client:
            yield client


@contextlib.contextmanager
def _distributed_logs_at_warning() -> Iterator[None]:
    """Keep dask's INFO records (a scheduler, nannies and connections starting and closing) off the caller's log.

    distributed sets its logger to INFO; where the program configured
    logging before importing it (as the CLI does) that logger has no handler
    of its own and its records reach the root handler: some thirty lines
    for each local cluster. Warnings (a worker restarted, memory over its
    limit) still pass, and a level set below INFO (DEBUG, to debug dask)
    is left as it is.
    """
    logger = logging.getLogger("distributed")
    old = logger.level
    if logger.getEffectiveLevel() == logging.INFO:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(old)


@contextlib.contextmanager
def _new_client(scheduler: Any, *, workers: int | None, timeout_s: float | None) -> Iterator[Any]:
    """A client connected by address, or on a new LocalCluster (see :func:`dask_client`)."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        address = str(scheduler)
        timeout_s = SCHEDULER_TIMEOUT_S if timeout_s is None else timeout_s
        try:
            client = Client(address, timeout=timeout_s, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachableError(
                f"cannot reach the dask scheduler at {address} within {timeout_s:g} s ({exc}); "
                "start one with `dask scheduler` (and `dask worker ADDRESS` on each machine) "
                "or run on this machine with --workers N"
            ) from exc
        try:
            yield client
        finally:
            client.close()
        return
    n = workers or available_cpus()
    cluster = LocalCluster(
        n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.ERROR
    )
    client = Client(cluster, set_as_default=False)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def run_chunks(
    ebsd_map: EBSDMap,
    chunks: Sequence[Chunk],
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    on_result: Callable[[Chunk, np.ndarray, Any], None],
    *,
    block: bool,
    positions: bool,
    executor: str = "serial",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    desc: str = "chunks",
    on_bad_chunk: str | None = None,
) -> int:
    """Compute every chunk and hand each result to ``on_result`` as it completes.

    ``on_result(chunk, indices, result)`` runs in the calling thread, in
    completion order (chunk order when serial). Ctrl-C cancels what is
    pending and re-raises.

    ``on_bad_chunk`` ('raise' or 'skip'; None: that of the enclosing
    :func:`~kikuchi.engine.bad_chunk_policy`, 'raise' by default): with
    'skip', the patterns of chunks of the file that cannot be decoded are
    computed as points without a pattern (``indices`` -1 there); when every
    chunk is done, they are marked missing in ``ebsd_map`` (one warning per
    damaged chunk). Returns the number of points so marked.
    """
    on_bad_chunk = resolve_on_bad_chunk(on_bad_chunk)
    n_workers = resolve_workers(executor, workers)
    if executor == "distributed":
        from distributed import Client

        if scheduler is not None and not isinstance(scheduler, (str, Client)):
            raise TypeError(f"scheduler must be an address 'tcp://HOST:PORT' or a distributed.Client, got {type(scheduler).__name__}")
    elif scheduler is not None:
        raise ValueError(f"a scheduler ({scheduler}) is only used with executor='distributed', not {executor!r}")
    n_cols = ebsd_map.nav_shape[1]
    total = sum(int((ebsd_map.index_map[c.r0 : c.r1, slice(*c.columns(n_cols))] >= 0).sum()) for c in chunks)
    bar = progress_bar(total, progress=progress, desc=desc)
    damaged: dict[tuple[Any, ...], tuple[Any, list[np.ndarray]]] = {}

    def done(chunk: Chunk, indices: np.ndarray, result: Any, skipped: Skipped) -> None:
        on_result(chunk, indices, result)
        for error, left_out in skipped:
            key = (error.dataset, error.chunk, error.start, error.stop)
            damaged.setdefault(key, (error, []))[1].append(left_out)
        bar.update(int((np.asarray(indices) >= 0).sum()))

    options = {"block": block, "positions": positions, "on_bad_chunk": on_bad_chunk}
    try:
        if executor == "serial" or not chunks:
            for chunk in chunks:
                done(chunk, *run_chunk(ebsd_map, chunk, func, kwargs, **options))
        elif executor == "threads":
            with cf.ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="kikuchi") as pool:
                _bounded(
                    lambda c: pool.submit(run_chunk, ebsd_map, c, func, kwargs, **options),
                    chunks,
                    2 * n_workers,
                    done,
                    cancel=lambda fs: [f.cancel() for f in fs],
                )
        else:
            source = MapSource.of(ebsd_map)
            with dask_client(scheduler, workers=workers) as client:
                shared = client.submit(dict, kwargs, pure=False)
                n_in_flight = 2 * max(1, len(client.scheduler_info(n_workers=-1).get("workers", {})) or n_workers)
                try:
                    _bounded(
                        lambda c: client.submit(run_chunk, source, c, func, shared, **options, pure=False),
                        chunks,
                        n_in_flight,
                        done,
                        cancel=lambda fs: client.cancel(list(fs)),
                    )
                finally:
                    with contextlib.suppress(Exception):
                        client.run(close_sources)
    finally:
        bar.close()
    marked = 0
    for error, parts in damaged.values():  # in the order met; one note per damaged chunk
        mark = getattr(ebsd_map, "mark_unreadable", None)
        if mark is None:  # a source that cannot mark points missing: the damage cannot be read around
            raise error
        marked += mark(np.concatenate(parts), error)
    return marked


def _bounded(
    submit: Callable[[Chunk], Any],
    chunks: Sequence[Chunk],
    max_in_flight: int,
    done: Callable[..., None],
    *,
    cancel: Callable[[set], Any],
) -> None:
    """Keep at most ``max_in_flight`` chunk tasks running; collect results as they finish.

    Works with ``concurrent.futures`` and ``distributed`` futures alike:
    each finished future puts itself on a queue (``add_done_callback``).
    """
    finished: queue.SimpleQueue = queue.SimpleQueue()
    todo = iter(chunks)
    which: dict[Any, Chunk] = {}
    pending: set = set()

    def start(chunk: Chunk) -> None:
        fut = submit(chunk)
        which[fut] = chunk
        pending.add(fut)
        fut.add_done_callback(finished.put)

    try:
        for chunk in todo:
            start(chunk)
            if len(pending) >= max_in_flight:
                break
        while pending:
            fut = finished.get()
            pending.discard(fut)
            chunk = which.pop(fut)
            done(chunk, *fut.result())
            nxt = next(todo, None)
            if nxt is not None:
                start(nxt)
    except BaseException:
        if pending:
            cancel(pending)
        raise
