"""Any pattern file to the kikuchi map file or to kikuchipy h5ebsd (``kikuchi convert VENDORFILE``).

The source is read in map order, a chunk of points per task, by a pool of
threads (the readers release the GIL in their I/O and decompression), and
each chunk is compressed in the same task; the main thread stores finished
chunks in order (direct chunk writes: nothing is compressed twice). Points
without a pattern (ROIs, missing or truncated acquisitions) are stored as
zero patterns and marked in the index map (kikuchi map file), so nothing
downstream mistakes them for data. Output is written under a temporary name
and renamed when complete.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from kikuchi import __version__
from kikuchi._args import ArgumentTypeError, check_count, check_path, shown
from kikuchi._cpus import available_cpus
from kikuchi.io._atomic import OutputH5File, atomic_output
from kikuchi.io.mapstore import DEFAULT_COMPRESSION, MapWriter
from kikuchi.io.source import EBSDMap, MapFileWarning, default_chunk_patterns, open_map, place_patterns

__all__ = ["EXPORT_FORMATS", "convert_map"]

#: Formats :func:`convert_map` writes.
EXPORT_FORMATS = ("kikuchi", "h5ebsd")


def _map_order_blocks(m: EBSDMap, per_block: int) -> Iterator[tuple[int, int]]:
    n = m.nav_shape[0] * m.nav_shape[1]
    for start in range(0, n, per_block):
        yield start, min(start + per_block, n)


def _read_map_order(m: EBSDMap, start: int, stop: int) -> np.ndarray:
    """Map points ``start:stop`` (row-major) as (n, h, w); zeros where a point has no pattern."""
    idx = m.index_map.reshape(-1)[start:stop]
    have = idx >= 0
    if have.all():
        return m.read_indices(idx)
    out = np.zeros((stop - start, *m.pattern_shape), dtype=m.dtype)
    if have.any():
        out[have] = m.read_indices(idx[have])
    return out


def _pipeline(
    m: EBSDMap,
    per_block: int,
    task: Callable[[int, int], Any],
    store: Callable[[int, Any], None],
    *,
    workers: int,
    progress: bool,
    label: str,
) -> None:
    """Run ``task(start, stop)`` over the map in blocks on a thread pool; ``store`` the results in order."""
    from tqdm.auto import tqdm

    n = m.nav_shape[0] * m.nav_shape[1]
    bar = tqdm(total=n, unit="pattern", desc=label, disable=None if progress else True)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kikuchi-export")
    try:
        pending: collections.deque[tuple[int, int, concurrent.futures.Future]] = collections.deque()
        blocks = _map_order_blocks(m, per_block)
        for start, stop in blocks:
            pending.append((start, stop, pool.submit(task, start, stop)))
            if len(pending) >= 2 * workers + 2:
                break
        while pending:
            start, stop, future = pending.popleft()
            result = future.result()
            nxt = next(blocks, None)
            if nxt is not None:
                pending.append((*nxt, pool.submit(task, *nxt)))
            store(start, result)
            bar.update(stop - start)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


def convert_map(
    source: EBSDMap | str | os.PathLike,
    output: str | os.PathLike,
    *,
    to: str = "kikuchi",
    compression: dict[str, Any] | None = None,
    workers: int | None = None,
    progress: bool = True,
    **options: Any,
) -> Path:
    """Write the patterns and geometry of any pattern file as a kikuchi map file or kikuchipy h5ebsd.

    Parameters
    ----------
    source
        An open map or the path of a pattern file (any format :func:`kikuchi.open` reads).
    output
        File to write (not the input).
    to
        'kikuchi' (the map file, docs/mapfile.md) or 'h5ebsd' (kikuchipy's
        h5ebsd, which kikuchipy and PyEBSDIndex read).
    compression
        h5py filter keywords; default gzip 1 + shuffle.
    workers
        Reading and compressing threads (default: all CPUs).
    progress
        Show a progress bar (on a terminal).
    **options
        Options of :func:`kikuchi.open` for ``source`` (``format=``, ``dataset=``, ``nav_shape=``, ...).

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with MapWriter(d / "a.h5", nav_shape=(2, 3), pattern_shape=(4, 5), dtype="uint8") as w:
    ...     w.write(0, np.arange(120, dtype=np.uint8).reshape(6, 4, 5))
    >>> out = convert_map(d / "a.h5", d / "b.h5", to="h5ebsd", progress=False)
    >>> with open_map(out) as m:
    ...     (m.nav_shape, int(m.pattern(1, 2)[0, 0]))
    ((2, 3), 100)
    """
    if not isinstance(to, str) or to not in EXPORT_FORMATS:
        raise ValueError(f"output format {to!r}: expected one of {', '.join(EXPORT_FORMATS)}")
    output = check_path(output, "output")
    if workers is not None:
        workers = check_count(workers, "workers")
    if compression is not None and not isinstance(compression, dict):
        raise ArgumentTypeError(f"compression={shown(compression)}: expected h5py filter keywords, e.g. {{'compression': 'gzip', 'compression_opts': 1}}")
    own = not isinstance(source, EBSDMap)
    m = open_map(source, **options) if own else source
    try:
        output = Path(output)
        if output.exists() and os.path.samefile(output, m.path):
            raise ValueError(f"output {output} is the input file; choose another output path (nothing was written)")
        workers = max(1, int(workers or available_cpus()))
        if to == "kikuchi":
            _to_map_file(m, output, compression=compression, workers=workers, progress=progress)
        else:
            _to_h5ebsd(m, output, compression=compression, workers=workers, progress=progress)
    finally:
        if own:
            m.close()
    return output


def _to_map_file(m: EBSDMap, output: Path, *, compression: dict[str, Any] | None, workers: int, progress: bool) -> None:
    writer = MapWriter(output, nav_shape=m.nav_shape, pattern_shape=m.pattern_shape, dtype=m.dtype, step_um=m.step_um, compression=compression)

    def task(start: int, stop: int) -> tuple[np.ndarray, bytes | None]:
        block = _read_map_order(m, start, stop)
        return block, writer.encode_chunk(block)

    def store(start: int, result: tuple[np.ndarray, bytes | None]) -> None:
        block, encoded = result
        writer.write(start, block, encoded=encoded)

    with writer:
        _pipeline(m, writer.chunk_patterns, task, store, workers=workers, progress=progress, label=f"convert {m.path.name}")
        have = m.index_map >= 0
        writer.set_missing(~have)
        bg = m.static_background
        if bg is not None:
            writer.set_static_background(bg)
        pc = m.pattern_centre
        if pc is not None:
            writer.set_pattern_centre(pc.pcx.ravel(), pc.pcy.ravel(), pc.dd.ravel(), convention=pc.convention)
        euler = m.euler
        if euler is not None:
            writer.set_euler(euler)
        if m.phases:
            writer.set_phases(m.phases)
        for name, values in m.point_data().items():
            values = np.asarray(values[()])
            if values.shape == (m.n_patterns,) and name not in writer.data:
                writer.data[name] = place_patterns(values.astype(np.float64), m.index_map).ravel()
        writer.header.attrs["GridType"] = m.grid_type
        writer.set_attrs(
            SampleTilt=m.sample_tilt_deg,
            CameraTilt=m.camera_tilt_deg,
            AcceleratingVoltage=m.kv,
            Binning=m.binning,
            PixelSize=m.pixel_size_um,
        )
        pcd = m.pattern_centre
        writer.set_processing(
            {
                "operation": "convert",
                "source": str(m.path),
                "source_format": m.format,
                "source_dataset": m.dataset,
                "source_pc_convention": None if pcd is None else (pcd.file_convention or pcd.convention),
                "points_without_pattern": int((~have).sum()),
            }
        )


def _to_h5ebsd(m: EBSDMap, output: Path, *, compression: dict[str, Any] | None, workers: int, progress: bool) -> None:
    """kikuchipy's h5ebsd layout (as kikuchipy 0.13 writes it), one scan 'Scan 1'."""
    from kikuchi.io._h5 import deflate, shuffle

    rows, cols = m.nav_shape
    n = rows * cols
    filters = DEFAULT_COMPRESSION if compression is None else compression
    per_chunk = default_chunk_patterns(m.pattern_shape, m.dtype, n)
    gzip = set(filters) <= {"compression", "compression_opts", "shuffle"} and filters.get("compression") in (None, "gzip")
    size = m.dtype.itemsize

    def encode(block: np.ndarray) -> bytes | None:
        if not gzip:
            return None
        if block.shape[0] < per_chunk:
            full = np.zeros((per_chunk, *m.pattern_shape), dtype=m.dtype)
            full[: block.shape[0]] = block
            block = full
        raw = np.ascontiguousarray(block).view(np.uint8)
        if filters.get("shuffle") and size > 1:
            raw = shuffle(raw, size)
        if filters.get("compression") == "gzip":
            level = filters.get("compression_opts")
            return deflate(raw, 4 if level is None else int(level))
        return raw.tobytes()

    with atomic_output(output) as tmp, OutputH5File(tmp, "w") as f:
        f["manufacturer"] = np.array([b"kikuchipy"])
        f["version"] = np.array([b"0.13.1"])  # the layout version kikuchipy writes and reads
        f["kikuchi_version"] = np.array([__version__.encode()])
        scan = f.create_group("Scan 1")
        ds = scan.create_dataset(
            "EBSD/Data/patterns", shape=(n, *m.pattern_shape), dtype=m.dtype, chunks=(per_chunk, *m.pattern_shape), **filters
        )

        def task(start: int, stop: int) -> tuple[np.ndarray, bytes | None]:
            block = _read_map_order(m, start, stop)
            return block, encode(block)

        def store(start: int, result: tuple[np.ndarray, bytes | None]) -> None:
            block, encoded = result
            if encoded is not None:
                ds.id.write_direct_chunk((start, 0, 0), encoded)
            else:
                ds[start : start + block.shape[0]] = block

        _pipeline(m, per_chunk, task, store, workers=workers, progress=progress, label=f"convert {m.path.name}")
        header = scan.create_group("EBSD/Header")
        dy, dx = m.step_um

        def put(group: h5py.Group, name: str, value: Any) -> None:
            group[name] = np.array([value.encode()]) if isinstance(value, str) else np.atleast_1d(value)

        for name, value in (
            ("azimuth_angle", 0.0), ("binning", m.binning), ("detector_pixel_size", m.pixel_size_um or 1.0),
            ("elevation_angle", m.camera_tilt_deg), ("n_columns", cols), ("n_rows", rows),
            ("pattern_height", m.pattern_shape[0]), ("pattern_width", m.pattern_shape[1]), ("sample_tilt", m.sample_tilt_deg),
            ("step_x", dx), ("step_y", dy), ("grid_type", "square"),
        ):
            put(header, name, value)
        bg = m.static_background
        if bg is not None:
            # in the patterns' type: kikuchipy's remove_static_background refuses any other
            # ("Static background dtype_out float32 is not the same as pattern dtype_out uint8")
            if m.dtype.kind in "ui":
                info = np.iinfo(m.dtype)
                values = np.rint(np.nan_to_num(np.asarray(bg, dtype=np.float64)))
                if values.min() < info.min or values.max() > info.max:
                    warnings.warn(
                        f"{m.path.name}: its static background spans {values.min():g}..{values.max():g}, outside the "
                        f"{m.dtype} patterns' range: stored clipped to {info.min}..{info.max} (kikuchipy needs it in the patterns' type)",
                        MapFileWarning,
                        stacklevel=2,
                    )
                bg = np.clip(values, info.min, info.max)
            header["static_background"] = np.asarray(bg).astype(m.dtype)
        pc = m.pattern_centre
        if pc is not None:
            stack = np.stack([pc.pcx, pc.pcy, pc.dd], axis=-1)
            known = np.all(np.isfinite(stack), axis=-1)
            if known.any():
                stack[~known] = np.nanmean(stack[known], axis=0)  # points without a pattern: the mean PC
                for k, name in enumerate(("pcx", "pcy", "pcz")):
                    header[name] = stack[..., k]
        sem = scan.create_group("SEM/Header")
        put(sem, "beam_energy", m.kv if m.kv is not None else 20.0)
        put(sem, "microscope", f"converted by kikuchi {__version__} from {m.path.name} ({m.format})")
