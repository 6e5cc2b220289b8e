"""Process a whole map file into a new map file, chunk by chunk, resumably."""

from __future__ import annotations

import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.engine._chunks import bad_chunk_policy, default_chunk_shape, iter_blocks, plan_chunks, resolve_on_bad_chunk
from kikuchi.engine._executors import resolve_workers, run_chunks
from kikuchi.engine._resumable import ResumableMapWriter
from kikuchi.io.mapstore import (
    COMPRESSIONS,
    PROCESSED,
    RAW,
    EBSDMap,
    MapFileError,
    MapWriter,
    default_chunk_patterns,
    open_map,
)
from kikuchi.process.no_signal import NO_SIGNAL, NoSignalWarning, no_signal, no_signal_summary
from kikuchi.process.nlpar import choose_lambda
from kikuchi.process.pipeline import PRESETS, Prepared, ProcessingSettings, nlpar_lambda_block, prepare, process_block

__all__ = ["load_static_background", "map_lambda", "mean_pattern", "process_map", "process_pattern_at"]

_logger = logging.getLogger(__name__)

#: Dataset of the output (rows, cols) uint8: 1 where the input pattern holds no signal.
NO_SIGNAL_DATASET = "NoSignal"
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".bmp", ".jpg", ".jpeg")


def mean_pattern(ebsd_map: EBSDMap, *, progress: bool = True, on_bad_chunk: str | None = None) -> np.ndarray:
    """The mean of all patterns of a map (a static background estimate), streamed chunk by chunk.

    ``on_bad_chunk='skip'`` (or an enclosing :func:`~kikuchi.engine.bad_chunk_policy`)
    leaves out the patterns of chunks of the file that cannot be decoded.

    Only the points of the map that have a pattern with signal count (patterns
    all one value or not finite are left out: see :func:`kikuchi.process.no_signal.no_signal`).
    """
    from kikuchi.engine._executors import progress_bar

    total = np.zeros(ebsd_map.pattern_shape, dtype=np.float64)
    on_map = np.zeros(ebsd_map.n_patterns, dtype=bool)
    on_map[ebsd_map.index_map[ebsd_map.index_map >= 0]] = True
    count = int(on_map.sum())
    if count == 0:
        raise MapFileError(f"{ebsd_map.path}: the map has no pattern to average")
    used = 0
    with progress_bar(count, progress=progress, desc="mean pattern") as bar:
        for start, stop, block, read in iter_blocks(ebsd_map, on_bad_chunk=on_bad_chunk):
            sel = on_map[start:stop] & read
            bar.update(int(sel.sum()))
            sel = sel & ~no_signal(block)
            total += block[sel].sum(axis=0, dtype=np.float64)
            used += int(sel.sum())
    if used == 0:
        raise MapFileError(
            f"{ebsd_map.path}: none of its {count} patterns holds signal ({NO_SIGNAL}): there is no mean pattern "
            "to use as a static background; use --static-background file, a file, or none"
        )
    return total / used


def load_static_background(source: Any, *, ebsd_map: EBSDMap | None = None, progress: bool = True) -> tuple[np.ndarray | None, str]:
    """The static background to use, and a description of where it came from.

    Parameters
    ----------
    source
        ``'file'``: the one stored in the map (None when it has none);
        ``'mean'``: the mean pattern of the map; ``'none'`` / None: no static
        background; a path: another map file (its static background), a
        ``.npy`` array, a text file (``.dat``, ``.txt``, ``.csv``: a matrix
        of numbers) or an image (TIFF, PNG, BMP); or an array.
    ebsd_map
        The map (for 'file' and 'mean').
    """
    if source is None or (isinstance(source, str) and source == "none"):
        return None, "none"
    if isinstance(source, np.ndarray):
        return source, "array"
    if isinstance(source, str) and source in ("file", "mean"):
        if ebsd_map is None:
            raise ValueError(f"static background {source!r} needs the map")
        if source == "file":
            done = (ebsd_map.processing or {}).get("static_background_used") if ebsd_map.dataset == PROCESSED else False
            if done:  # the stored background was already divided out of these processed patterns
                return None, "none (already applied to these processed patterns)"
            bg = ebsd_map.static_background
            return bg, f"{ebsd_map.path.name}:StaticBackground" if bg is not None else "none (the map has none)"
        return mean_pattern(ebsd_map, progress=progress), f"mean of {ebsd_map.path.name}"
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such static background file (give 'file', 'mean', a map file, .npy, .dat/.txt or an image)")
    suffix = path.suffix.lower()
    try:
        if suffix in (".h5", ".hdf5", ".h5ebsd"):
            with open_map(path) as other:
                bg = other.static_background
            if bg is None:
                raise MapFileError(f"{path}: this map file holds no static background")
        elif suffix == ".npy":
            bg = np.load(path)
        elif suffix in (".dat", ".txt", ".csv"):
            bg = np.loadtxt(path, delimiter="," if suffix == ".csv" else None)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            bg = tifffile.imread(path)
        elif suffix in IMAGE_SUFFIXES:
            from PIL import Image

            with Image.open(path) as im:
                bg = np.asarray(im.convert("F") if im.mode not in ("L", "I;16", "I", "F") else im)
        else:
            raise ValueError(f"{path}: unknown static background format '{suffix}' (use .h5, .npy, .dat/.txt, .tif, .png, .bmp)")
    except (OSError, ValueError) as exc:
        if isinstance(exc, (MapFileError, FileNotFoundError)) or str(path) in str(exc):
            raise
        raise ValueError(f"{path}: cannot read a static background: {exc}") from exc
    bg = np.asarray(bg)
    if bg.ndim != 2:
        raise ValueError(f"{path}: a static background must be one image (h, w), got shape {bg.shape}")
    return bg, str(path)


def _settings(settings: ProcessingSettings | str) -> ProcessingSettings:
    if isinstance(settings, str):
        if settings not in PRESETS:
            raise ValueError(f"unknown preset {settings!r}; choose one of {', '.join(PRESETS)}")
        return PRESETS[settings]
    return settings


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def process_chunk(
    block: np.ndarray,
    *,
    have: np.ndarray,
    core: tuple[int, int],
    prepared: Prepared,
    raw_means: bool = True,
    encoder: dict[str, Any] | None = None,
    core_cols: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[bytes] | None, np.ndarray]:
    """Chunk function of :func:`process_map`.

    Returns the processed core rows (of the columns ``core_cols`` of a
    tile), the mean of each raw pattern, the compressed chunks (or None) and
    the core points whose pattern holds no signal (zeros in the output).
    The compressed chunks are made with ``encoder`` (keyword arguments of a
    :class:`MapWriter` with the output's chunk size and filter; it is never
    opened), row after row: the workers compress in parallel and the single
    writer only stores bytes.
    """
    flagged = no_signal(block) & have
    out = process_block(block, have=have, core=core, prepared=prepared, workers=1, flagged=flagged, core_cols=core_cols)
    i0, i1 = core
    j0, j1 = core_cols or (0, block.shape[1])
    core_have = have[i0:i1, j0:j1]
    core_flagged = flagged[i0:i1, j0:j1]
    means = np.full(core_have.shape, np.nan)
    if raw_means:
        means[core_have] = block[i0:i1, j0:j1][core_have].reshape(int(core_have.sum()), -1).mean(axis=1, dtype=np.float64)
    encoded = None
    if encoder is not None:
        coder = MapWriter(**encoder)
        flat = out.reshape(-1, *out.shape[2:])
        cp = coder.chunk_patterns
        encoded = [coder.encode_chunk(flat[k : k + cp]) for k in range(0, len(flat), cp)]
        if any(e is None for e in encoded):
            encoded = None
    return out, means, encoded, core_flagged


def aligned_chunk_patterns(
    nav_shape: tuple[int, int],
    pattern_shape: tuple[int, int],
    dtype: Any,
    chunk_rows: int | None = None,
    chunk_cols: int | None = None,
) -> tuple[int, int]:
    """HDF5 chunk size of the output and the map rows per HDF5 chunk, so that bands of whole
    map rows (or the row segments of tiles of ``chunk_cols`` columns) are made of whole
    HDF5 chunks: ``(chunk_patterns, rows_per_chunk)``.

    Whole map rows per chunk when a row is small (a divisor of ``chunk_rows``
    when given); otherwise the largest divisor of the row length (and of
    ``chunk_cols``) that keeps a chunk near the default size (rows_per_chunk 1).

    >>> aligned_chunk_patterns((100, 100), (60, 60), "uint8")
    (200, 2)
    >>> aligned_chunk_patterns((100, 100), (60, 60), "uint8", chunk_rows=9)
    (100, 1)
    >>> aligned_chunk_patterns((40, 25), (240, 240), "uint16")
    (5, 1)
    >>> aligned_chunk_patterns((100, 100), (60, 60), "uint8", chunk_cols=30)
    (10, 1)
    """
    rows, cols = nav_shape
    target = default_chunk_patterns(pattern_shape, dtype)
    if chunk_cols is not None and chunk_cols < cols:
        common = math.gcd(cols, int(chunk_cols))
        return max(d for d in range(1, min(target, common) + 1) if common % d == 0), 1
    if cols <= target:
        per = max(1, min(rows, target // cols))
        if chunk_rows is not None:
            per = max(d for d in range(1, min(per, chunk_rows) + 1) if chunk_rows % d == 0)
        return cols * per, per
    divisor = max(d for d in range(1, target + 1) if cols % d == 0)
    return divisor, 1


def process_map(
    source: EBSDMap | str | os.PathLike,
    output: str | os.PathLike,
    settings: ProcessingSettings | str = "indexing",
    *,
    static_background: Any = "file",
    executor: str = "serial",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    chunk_rows: int | None = None,
    chunk_cols: int | None = None,
    resume: bool = False,
    dataset: str | None = None,
    compression: str = "gzip",
    on_bad_chunk: str | None = None,
) -> Path:
    """Process every pattern of a map and write a new map file.

    The output's ``Scan/EBSD/Data/Patterns`` holds the processed patterns;
    its header records every parameter (``Processing``), and the map data of
    the input are copied: step, pattern centre, tilts, voltage, binning,
    phases, orientations, the BSE map (mean of each raw pattern) and the
    static background (binned as the patterns).

    The map is streamed in bands of map rows (with halo rows for neighbour
    averaging), or tiles of them on maps too wide for a band to fit the
    memory budget: memory stays bounded by a few chunks whatever the map size.
    The output is written under ``.NAME.partial`` and renamed when complete;
    after an interruption the partial file is kept, and ``resume=True``
    continues it from the chunks already complete.

    Parameters
    ----------
    source
        The map (open, or a path).
    output
        Output map file; must not be the input.
    settings
        :class:`ProcessingSettings` or a preset name.
    static_background
        See :func:`load_static_background` ('file', 'mean', 'none', a path
        or an array).
    executor, workers, scheduler, progress, chunk_rows, chunk_cols
        As :func:`kikuchi.engine.map_reduce`.
    resume
        Continue the partial output of an interrupted run with the same
        input and parameters.
    dataset
        Pattern dataset of a path ``source`` (default: the raw patterns).
    compression
        Filter of the output patterns: ``'gzip'`` (the map file default,
        gzip 1 + shuffle) or ``'none'`` (faster to write and read, larger).
    on_bad_chunk
        Where the input cannot be decoded (a damaged chunk): 'raise' (the
        default) ends the run with an error naming the chunk and its map
        rows (the partial output is kept: ``resume=True`` with 'skip'
        continues it); 'skip' carries on, those
        points become points without a pattern in the output (``indexmap``
        -1) and are counted in ``Processing`` as ``unreadable_points``.
        None: the policy of an enclosing :func:`~kikuchi.engine.bad_chunk_policy`.

    Returns
    -------
    pathlib.Path
        The output path.

    Raises
    ------
    ValueError
        Output equal to the input; bad settings for these patterns (binning
        that does not divide them, a static background of the wrong shape).
    SchedulerUnreachableError
        The scheduler address does not answer.
    BadChunkError
        A chunk of the input cannot be decoded (``on_bad_chunk='raise'``).
    """
    settings = _settings(settings)
    on_bad_chunk = resolve_on_bad_chunk(on_bad_chunk)
    n_workers = resolve_workers(executor, workers)
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}; got {compression!r}")
    own = not isinstance(source, EBSDMap)
    m = open_map(source, dataset=dataset) if own else source
    try:
        output = Path(output)
        if _same_file(m.path, output):
            raise ValueError(f"output {output} is the input map file; choose another output path (nothing was written)")
        with bad_chunk_policy(on_bad_chunk):  # the mean pattern ('mean') reads the map too
            bg, bg_source = load_static_background(static_background, ebsd_map=m, progress=progress)
        prepared = prepare(settings, m.pattern_shape, bg if settings.static != "none" else None, background_source=bg_source)
        if settings.nlpar and prepared.nlpar_lambda is None:
            prepared = prepared.with_lambda(
                map_lambda(m, prepared, executor=executor, workers=workers, scheduler=scheduler, progress=progress, on_bad_chunk=on_bad_chunk)
            )
        if settings.static == "none":
            bg_source = "not used"
        elif bg is not None and prepared.static_background is None:
            bg_source = f"{bg_source} (not used: see static_background_note)"
        parameters = {
            **prepared.describe(),
            "input": str(m.path.resolve()),
            "input_dataset": m.dataset,
            "static_background_source": bg_source,
            "compression": compression,
        }
        st = m.path.stat()
        fingerprint = {**parameters, "input_size": st.st_size, "input_mtime_ns": st.st_mtime_ns}
        halo = settings.halo
        out_dtype = settings.output_dtype()
        if chunk_rows is None:
            # tiles only where a map row spans several HDF5 chunks, and cut at their borders
            row_chunk, rows_per_chunk = aligned_chunk_patterns(m.nav_shape, prepared.output_shape, out_dtype)
            chunk_rows, auto_cols = default_chunk_shape(
                m, halo_rows=halo, workers=n_workers, col_align=None if rows_per_chunk > 1 else row_chunk
            )
            chunk_cols = chunk_cols or auto_cols
        chunk_patterns, rows_per_chunk = aligned_chunk_patterns(
            m.nav_shape, prepared.output_shape, out_dtype, chunk_rows, chunk_cols
        )
        chunk_rows = max(rows_per_chunk, chunk_rows // rows_per_chunk * rows_per_chunk)
        chunks = plan_chunks(m.nav_shape[0], chunk_rows, halo, n_cols=m.nav_shape[1], chunk_cols=chunk_cols)
        have_map = m.index_map >= 0
        stored_bse = m.stored_bse_map is not None
        layout = {
            "nav_shape": m.nav_shape,
            "pattern_shape": prepared.output_shape,
            "dtype": out_dtype,
            "chunk_patterns": chunk_patterns,
            "compression": COMPRESSIONS[compression],
        }
        encoder = {**layout, "path": output, "nav_shape": (1, chunk_patterns)}
        with ResumableMapWriter(
            output, **layout, step_um=m.step_um, dataset=PROCESSED, resume=resume, fingerprint=fingerprint
        ) as writer:
            if writer.resumed_patterns == 0:
                _copy_metadata(m, writer, prepared, stored_bse)
            if NO_SIGNAL_DATASET not in writer.data:  # 1 where the pattern holds no signal (zeros in the output)
                writer.data.create_dataset(NO_SIGNAL_DATASET, shape=m.nav_shape, dtype=np.uint8, fillvalue=0)
            writer.set_processing(parameters)
            done = writer.written.reshape(m.nav_shape)
            cols = m.nav_shape[1]
            todo = [c for c in chunks if not done[c.r0 : c.r1, slice(*c.columns(cols))].all()]
            if len(todo) < len(chunks):
                _logger.info("%s: %d of %d chunks already complete", output, len(chunks) - len(todo), len(chunks))

            def write(chunk: Any, indices: np.ndarray, result: Any) -> None:
                patterns, means, encoded, flagged = result
                c0, c1 = chunk.columns(cols)
                lost = have_map[chunk.r0 : chunk.r1, c0:c1] & (indices < 0)  # a damaged chunk read around ('skip')
                if lost.any():  # recorded in the partial output at once: a resumed run keeps it
                    index = writer.header["indexmap"]
                    index[chunk.r0 : chunk.r1, c0:c1] = np.where(lost, -1, index[chunk.r0 : chunk.r1, c0:c1])
                if not stored_bse and m.dataset == RAW:
                    writer.data["bse_map"][chunk.r0 : chunk.r1, c0:c1] = means
                writer.data[NO_SIGNAL_DATASET][chunk.r0 : chunk.r1, c0:c1] = flagged
                if (c0, c1) == (0, cols):
                    writer.write_block(chunk.r0 * cols, patterns.reshape(-1, *prepared.output_shape), encoded=encoded)
                    return
                per_row = (c1 - c0) // chunk_patterns  # a tile: each row segment is whole HDF5 chunks
                for k in range(chunk.r1 - chunk.r0):
                    blobs = None if encoded is None else encoded[k * per_row : (k + 1) * per_row]
                    writer.write_block((chunk.r0 + k) * cols + c0, patterns[k], encoded=blobs)

            # Ctrl-C: the writer says what is kept and how to continue (a note on the interrupt, and the log)
            run_chunks(
                m,
                todo,
                process_chunk,
                {
                    "prepared": prepared,
                    "raw_means": not stored_bse and m.dataset == RAW,
                    "encoder": encoder if MapWriter(**encoder).can_encode else None,
                },
                write,
                block=True,
                positions=False,
                executor=executor,
                workers=workers,
                scheduler=scheduler,
                progress=progress,
                desc="process",
                on_bad_chunk=on_bad_chunk,
            )
            readable = have_map & (writer.header["indexmap"][()] >= 0)  # less the points of damaged chunks read around
            parameters["unreadable_points"] = int((have_map & ~readable).sum())
            have_map = readable
            if not have_map.all():
                writer.header["indexmap"][...] = np.where(have_map, np.arange(have_map.size).reshape(have_map.shape), -1)
            flagged = writer.data[NO_SIGNAL_DATASET][()] > 0
            n_flagged = int(flagged.sum())
            writer.set_processing({**parameters, "no_signal_points": n_flagged, "no_signal_map": f"Scan/EBSD/Data/{NO_SIGNAL_DATASET}"})
            if n_flagged:
                warnings.warn(
                    f"{m.path.name}: {no_signal_summary(flagged, have=have_map)}; processed as zeros, "
                    f"flagged in Scan/EBSD/Data/{NO_SIGNAL_DATASET} of {output.name}",
                    NoSignalWarning,
                    stacklevel=2,
                )
    finally:
        if own:
            m.close()
    return output


def map_lambda(
    ebsd_map: EBSDMap,
    prepared: Prepared,
    *,
    executor: str = "serial",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    on_bad_chunk: str | None = None,
) -> Any:
    """The automatic NLPAR lambda of a map: a first pass over it (steps 1-4 and the distances to the 8 neighbours).

    Returns the :class:`~kikuchi.process.nlpar.LambdaChoice` of every map
    point with a pattern that holds signal (see
    :func:`~kikuchi.process.nlpar.choose_lambda`); the same whatever the
    executor or the chunks.
    """
    from kikuchi.engine.reduce import map_reduce

    d = map_reduce(
        ebsd_map, nlpar_lambda_block, kwargs={"prepared": prepared}, executor=executor, workers=workers,
        scheduler=scheduler, progress=progress, halo_rows=2, on_bad_chunk=on_bad_chunk,
    )
    d = d.reshape(-1, 9)
    return choose_lambda(d[d[:, 8] > 0][:, :8])


def _copy_metadata(m: EBSDMap, writer: ResumableMapWriter, prepared: Prepared, stored_bse: bool) -> None:
    """Copy the map data of the input into the output (once, at the start)."""
    if stored_bse:
        writer.data["bse_map"] = m.stored_bse_map
    elif m.dataset == RAW:
        writer.data.create_dataset("bse_map", shape=m.nav_shape, dtype=np.float64, fillvalue=np.nan)
    if prepared.static_background is not None:
        writer.set_static_background(prepared.static_background)
    pc = m.pattern_centre
    if pc is not None:
        writer.set_pattern_centre(pc.pcx.ravel(), pc.pcy.ravel(), pc.dd.ravel(), convention=pc.convention)
    euler = m.euler
    if euler is not None:
        writer.set_euler(euler)
    phases = m.phases
    if phases:
        writer.set_phases(phases)
    pixel = m.pixel_size_um
    writer.set_attrs(
        SampleTilt=m.sample_tilt_deg,
        CameraTilt=m.camera_tilt_deg,
        AcceleratingVoltage=m.kv,
        Binning=m.binning * prepared.factor,
        PixelSize=None if pixel is None else pixel * prepared.factor,
    )


def process_pattern_at(
    ebsd_map: EBSDMap,
    row: int,
    col: int,
    settings: ProcessingSettings | str = "detailed",
    *,
    static_background: Any = "file",
) -> np.ndarray:
    """The processed pattern at map position (row, col), with its neighbours when averaging.

    Reads only the (2n+1) x (2n+1) neighbourhood needed; the result equals
    the pattern at (row, col) of :func:`process_map` with the same settings.
    """
    settings = _settings(settings)
    m = ebsd_map
    m.pattern(row, col)  # raises a clear error outside the map or where there is no pattern
    bg, _ = load_static_background(static_background, ebsd_map=m, progress=False)
    prepared = prepare(settings, m.pattern_shape, bg if settings.static != "none" else None)
    if settings.nlpar and prepared.nlpar_lambda is None:
        prepared = prepared.with_lambda(map_lambda(m, prepared, executor="threads", progress=False))
    n = settings.halo
    r0, r1 = max(0, row - n), min(m.nav_shape[0], row + n + 1)
    c0, c1 = max(0, col - n), min(m.nav_shape[1], col + n + 1)
    block = m.read_rows(r0, r1)[:, c0:c1]
    have = m.index_map[r0:r1, c0:c1] >= 0
    out = process_block(block, have=have, core=(row - r0, row - r0 + 1), prepared=prepared)
    return out[0, col - c0]
