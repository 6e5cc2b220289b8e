"""Conversion of a folder or zip of pattern images to one map file.

The images are decoded, binned and compressed by a pool of threads (tifffile,
Pillow and zlib release the GIL), one HDF5 chunk of patterns per task; the
main thread stores each finished chunk with one write (a direct chunk write
when the filter is gzip/shuffle, so nothing is compressed twice). Output goes
through :class:`~kikuchi.io.mapstore.MapWriter`: written under a temporary
name and renamed only when complete, so an error or Ctrl-C leaves no file
under the final name.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi._args import ArgumentTypeError, check_count, check_number, check_pair, check_path, shown
from kikuchi._cpus import available_cpus
from kikuchi.io.imagefolder import ImageReadError, ImageSource, open_image_source, read_image
from kikuchi.io.mapstore import MapWriter
from kikuchi.io.source import MapFileWarning

__all__ = ["BinningOverflowError", "ConversionError", "convert_images"]

_logger = logging.getLogger(__name__)

BIN_MODES = ("sum", "mean")


class ConversionError(ValueError):
    """The inputs of a conversion do not fit together."""


class BinningOverflowError(ConversionError):
    """Sum binning would exceed the range of the pattern dtype."""


def _bin_stack(stack: np.ndarray, factor: int, mode: str, dtype: np.dtype) -> np.ndarray:
    """Bin a stack (n, h, w) to ``dtype``: sums checked against its range, means rounded."""
    if factor == 1:
        return stack
    from kikuchi.process import bin_patterns  # numba: imported only when binning

    if mode == "sum":
        return bin_patterns(stack, factor, mode="sum", dtype=dtype)
    mean = bin_patterns(stack, factor, mode="mean")
    return np.rint(mean).astype(dtype) if dtype.kind in "ui" else mean.astype(dtype)


def _as_pair(step_um: float | tuple[float, float] | None) -> tuple[float, float] | None:
    if step_um is None:
        return None
    if np.ndim(step_um) == 0 and not isinstance(step_um, (str, bytes)):
        step = check_number(step_um, "step_um", positive=True, unit="µm")
        return (step, step)
    if isinstance(step_um, (str, bytes)) or np.ndim(step_um) != 1 or len(step_um) != 2:  # type: ignore[arg-type]
        raise ArgumentTypeError(f"step_um={shown(step_um)}: expected one step or (row step, column step) in µm")
    row, col = step_um  # type: ignore[misc]
    return (check_number(row, "step_um", positive=True, unit="µm"), check_number(col, "step_um", positive=True, unit="µm"))


def _read_orientation_geometry(path: Path) -> Any:
    try:
        from kikuchi.io.orientation_map import read_orientation_map
    except ImportError as exc:  # pragma: no cover - the module ships with kikuchi
        raise ConversionError(f"{path}: reading CTF/ANG files needs kikuchi.io.orientation_map ({exc})") from exc
    omap = read_orientation_map(path)
    if omap.grid != "square":
        raise ConversionError(
            f"{path}: a {omap.grid} grid cannot be stored as a rows x cols pattern map; "
            "give --shape ROWSxCOLS and --step for the order the patterns were acquired in"
        )
    return omap


def _orientation_extras(omap: Any, writer: MapWriter) -> None:
    """Copy orientations, phases, tilt and voltage of a CTF/ANG map into the new file, where present."""
    euler = np.asarray(getattr(omap, "euler", np.empty((0, 3))), dtype=np.float64)
    if euler.shape == (writer.n_patterns, 3):
        phase_id = getattr(omap, "phase_id", None)
        if phase_id is not None and np.shape(phase_id) == (writer.n_patterns,):
            euler = np.where((np.asarray(phase_id) > 0)[:, None], euler, np.nan)
        writer.set_euler(euler)
    phases = [p.to_map_phase() for p in omap.phases]  # with the point group: ANG phases have no space group
    if phases:
        writer.set_phases(phases)
    header = getattr(omap, "header", None) or {}

    def number(*keys: str) -> float | None:
        for key in keys:
            try:
                return float(header[key])
            except (KeyError, TypeError, ValueError):
                continue
        return None

    writer.set_attrs(
        AcceleratingVoltage=number("KV", "kv"),
        SampleTilt=number("TiltAngle", "SampleTiltAngle", "SampleTilt", "sample_tilt"),
        CameraTilt=number("CameraElevationAngle"),
    )
    pc = [number(key) for key in ("x-star", "y-star", "z-star")]  # ANG headers give the map's PC (EDAX convention)
    if all(v is not None for v in pc):
        from kikuchi.geometry import convert_pc

        bruker = convert_pc(np.asarray(pc), "edax", "bruker", shape=writer.pattern_shape)
        writer.set_pattern_centre(*bruker, convention="bruker")


def _load_background(
    background: str | os.PathLike | np.ndarray, raw_shape: tuple[int, int], binning: int, mode: str, dtype: np.dtype
) -> np.ndarray:
    """A static background from a file or array, binned like the patterns."""
    label = "static background" if isinstance(background, np.ndarray) else str(background)
    bg = np.asarray(background) if isinstance(background, np.ndarray) else read_image(background)
    out_shape = (raw_shape[0] // binning, raw_shape[1] // binning)
    if bg.shape == raw_shape:
        from kikuchi.process import bin_patterns

        binned = bin_patterns(bg.astype(np.float64), binning, mode=mode) if binning > 1 else bg
    elif bg.shape == out_shape:
        binned = bg
    else:
        also = f" or the binned {out_shape}" if binning > 1 else ""
        raise ConversionError(f"{label}: background of shape {bg.shape} does not fit the patterns of shape {raw_shape}{also}")
    if np.issubdtype(bg.dtype, np.integer) and dtype.kind in "ui":
        info = np.iinfo(dtype)
        rounded = np.rint(binned)
        if rounded.min() >= info.min and rounded.max() <= info.max:
            return rounded.astype(dtype)
    return np.asarray(binned, dtype=np.float32)


def _resolve_geometry(
    nav_shape: tuple[int, int] | None,
    step: tuple[float, float] | None,
    ctf: str | os.PathLike | None,
    ang: str | os.PathLike | None,
) -> tuple[tuple[int, int] | None, tuple[float, float] | None, Any, str]:
    """Map shape, step, orientation map and where the shape came from (for messages)."""
    if ctf is not None and ang is not None:
        raise ConversionError("give either --ctf or --ang, not both")
    geometry_file = ctf if ctf is not None else ang
    if geometry_file is None:
        shape = None if nav_shape is None else (int(nav_shape[0]), int(nav_shape[1]))
        return shape, step, None, "--shape" if shape is not None else ""
    omap = _read_orientation_geometry(Path(geometry_file))
    omap_shape = (int(omap.nav_shape[0]), int(omap.nav_shape[1]))
    if nav_shape is not None and tuple(nav_shape) != omap_shape:
        raise ConversionError(
            f"--shape {nav_shape[0]}x{nav_shape[1]} differs from {geometry_file}: "
            f"{omap_shape[0]} rows x {omap_shape[1]} columns; give one of them"
        )
    if step is None:
        step = (float(omap.step_um[0]), float(omap.step_um[1]))
    return omap_shape, step, omap, f"{'--ctf' if ctf is not None else '--ang'} {geometry_file}"


def _background_label(background: Any) -> str | None:
    if background is None or isinstance(background, str):
        return background
    return "array" if isinstance(background, np.ndarray) else str(background)


def convert_images(
    source: str | os.PathLike | ImageSource,
    out: str | os.PathLike,
    *,
    nav_shape: tuple[int, int] | None = None,
    step_um: float | tuple[float, float] | None = None,
    ctf: str | os.PathLike | None = None,
    ang: str | os.PathLike | None = None,
    naming: str | None = None,
    background: str | os.PathLike | np.ndarray | None = None,
    binning: int = 1,
    bin_mode: str = "sum",
    workers: int | None = None,
    progress: bool = True,
    compression: dict[str, Any] | None = None,
    chunk_patterns: int | None = None,
) -> Path:
    """Convert a folder or zip of pattern images into a map file.

    Parameters
    ----------
    source
        Folder or zip of images (see :mod:`kikuchi.io.imagefolder` for the
        naming schemes), or an opened :class:`ImageSource`.
    out
        Output map file (HDF5). Written under a temporary name, renamed when
        complete.
    nav_shape
        Map (rows, cols). Default: from ``ctf``/``ang``, else from the
        positions in the image names. Required for ``sorted`` naming.
    step_um
        Step in µm, one value or (row step, column step). Default: from
        ``ctf``/``ang``, else 1.0.
    ctf, ang
        Orientation map of the same scan (Oxford CTF or EDAX ANG): map shape
        and steps, and its orientations, phases, voltage and tilt are stored
        in the map file.
    naming
        ``'aztec'``, ``'edax'``, ``'sorted'`` or None (recognised).
    background
        Static background: an image or text file, an array, or ``'mean'``
        for the mean of all patterns. Given at the detector resolution (it is
        binned like the patterns) or already binned.
    binning
        Bin the patterns by this factor in both directions; it must divide
        the pattern height and width.
    bin_mode
        ``'sum'`` keeps integer counts in the input dtype and refuses a map
        whose sums exceed it; ``'mean'`` rounds the mean to the input dtype.
    workers
        Threads that decode, bin and compress; default: the number of CPUs.
    progress
        Show a progress bar (on a terminal).
    compression
        h5py filter keywords; default :data:`kikuchi.io.mapstore.DEFAULT_COMPRESSION`.
    chunk_patterns
        Patterns per HDF5 chunk; default about 1 MiB.

    Returns
    -------
    pathlib.Path
        The written map file.

    Raises
    ------
    ImageSourceError
        Missing, duplicate or surplus map positions, or names without positions and no shape.
    ImageReadError
        An unreadable image or one whose size or dtype differs from the first;
        the message names the file and its map position.
    BinningOverflowError
        Sum binning exceeds the dtype; the message names the first pattern.
    ConversionError
        Inconsistent options (shape vs CTF, background size, ...).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile, kikuchi
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for r in range(2):
    ...     for c in range(3):
    ...         tifffile.imwrite(d / f"{r}_{c}.tiff", np.full((8, 8), 100 * r + c, np.uint16))
    >>> out = convert_images(d, d / "map.h5", step_um=0.5, progress=False)
    >>> with kikuchi.open(out) as m:
    ...     m.nav_shape, m.step_um, int(m.pattern(1, 2)[0, 0])
    ((2, 3), (0.5, 0.5), 102)
    """
    out = check_path(out, "out")
    if not isinstance(source, ImageSource):
        source = check_path(source, "source")
    if isinstance(binning, bool) or not isinstance(binning, (int, np.integer)) or binning < 1:
        raise ConversionError(f"binning {binning!r}: expected a positive integer")
    binning = int(binning)
    if workers is not None:
        workers = check_count(workers, "workers")
    if chunk_patterns is not None:
        chunk_patterns = check_count(chunk_patterns, "chunk_patterns")
    if nav_shape is not None:
        nav_shape = check_pair(nav_shape, "nav_shape")
    if bin_mode not in BIN_MODES:
        raise ConversionError(f"bin mode {bin_mode!r}: expected 'sum' or 'mean'")
    step = _as_pair(step_um)

    nav_shape, step, omap, shape_source = _resolve_geometry(nav_shape, step, ctf, ang)
    src = source if isinstance(source, ImageSource) else open_image_source(source, naming=naming, step_um=step)
    try:
        nav_shape, order = src.positions(nav_shape, shape_source=shape_source)
        if step is None:
            _logger.warning("%s: no step given (--step, --ctf or --ang); storing 1.0 µm", src.path)
            step = (1.0, 1.0)
        cols = nav_shape[1]

        first_index = int(order[0])
        try:
            first = src.read(first_index)
        except ImageReadError as exc:
            raise ImageReadError(f"{exc} (map position row 0, col 0)") from exc
        raw_shape = (int(first.shape[0]), int(first.shape[1]))
        dtype = first.dtype
        pattern_shape = (raw_shape[0] // binning, raw_shape[1] // binning)
        if raw_shape[0] % binning or raw_shape[1] % binning:
            from kikuchi.process.binning import common_divisors

            divisors = common_divisors(*raw_shape)
            raise ConversionError(
                f"binning {binning} does not divide the {raw_shape[0]} x {raw_shape[1]} patterns of {src.label(first_index)}; "
                f"choose one of {', '.join(map(str, divisors))}"
            )
        limit = np.iinfo(dtype).max if dtype.kind in "ui" else None
        static_bg = None
        if background is not None and not (isinstance(background, str) and background == "mean"):
            static_bg = _load_background(background, raw_shape, binning, bin_mode, dtype)
            if not np.any(np.nan_to_num(np.asarray(static_bg, dtype=np.float64)) > 0):
                warnings.warn(
                    f"static background {_background_label(background)}: all zero (or not a number): "
                    "stored, but no pattern can be divided by it; give the detector's background instead",
                    MapFileWarning,
                    stacklevel=2,
                )

        writer = MapWriter(
            out,
            nav_shape=nav_shape,
            pattern_shape=pattern_shape,
            dtype=dtype,
            step_um=step,
            chunk_patterns=chunk_patterns,
            compression=compression,
        )

        def load_chunk(start: int, stop: int) -> tuple[np.ndarray, bytes | np.ndarray | None, np.ndarray]:
            stack = np.empty((stop - start, *raw_shape), dtype=dtype)
            done = src.read_into(order[start:stop], stack)  # TIFFs of the first one's layout, in one go
            for k in range(start, stop):
                if done[k - start]:
                    continue
                i = int(order[k])
                try:
                    img = first if i == first_index else src.read(i)
                except ImageReadError as exc:
                    raise ImageReadError(f"{exc} (map position row {k // cols}, col {k % cols})") from exc
                if img.shape != raw_shape or img.dtype != dtype:
                    raise ImageReadError(
                        f"{src.label(i)} (map position row {k // cols}, col {k % cols}): {img.shape[0]} x {img.shape[1]} "
                        f"{img.dtype} image, but {src.label(first_index)} is {raw_shape[0]} x {raw_shape[1]} {dtype}; "
                        "all patterns of a map must have the same size and dtype"
                    )
                stack[k - start] = img
            try:
                block = _bin_stack(stack, binning, bin_mode, dtype)
            except ValueError as exc:
                from kikuchi.process import BinningOverflowError as SumOverflow, bin_patterns

                if not isinstance(exc, SumOverflow):
                    raise
                peaks = bin_patterns(stack, binning, mode="sum", dtype=np.uint64).reshape(stack.shape[0], -1).max(axis=1)
                j = int(np.flatnonzero(peaks > limit)[0])
                k, i = start + j, int(order[start + j])
                raise BinningOverflowError(
                    f"{src.label(i)} (map position row {k // cols}, col {k % cols}): sum binning by {binning} "
                    f"gives {int(peaks[j])}, above {limit}, the maximum of {dtype} (checked on the actual pixel sums; "
                    f"the worst case is {binning * binning} x {limit} = {binning * binning * limit}); "
                    "use --bin-mode mean, or a smaller binning"
                ) from None
            sums = block.reshape(block.shape[0], -1).sum(axis=1, dtype=np.float64)  # the BSE map, on this thread
            return block, writer.encode_chunk(block), sums

        n = writer.n_patterns
        step_n = writer.chunk_patterns
        workers = max(1, int(workers or available_cpus()))
        bg_sum = np.zeros(pattern_shape, dtype=np.float64) if isinstance(background, str) and background == "mean" else None

        from tqdm.auto import tqdm

        bar = tqdm(total=n, unit="pattern", desc=f"convert {src.path.name}", disable=None if progress else True)
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kikuchi-convert")
        try:
            with writer:
                pending: collections.deque[tuple[int, concurrent.futures.Future]] = collections.deque()
                starts = iter(range(0, n, step_n))
                for start in starts:
                    pending.append((start, pool.submit(load_chunk, start, min(start + step_n, n))))
                    if len(pending) >= 2 * workers + 2:
                        break
                while pending:
                    start, future = pending.popleft()
                    block, encoded, sums = future.result()
                    nxt = next(starts, None)
                    if nxt is not None:
                        pending.append((nxt, pool.submit(load_chunk, nxt, min(nxt + step_n, n))))
                    writer.write(start, block, encoded=encoded, sums=sums)
                    if bg_sum is not None:
                        bg_sum += block.sum(axis=0, dtype=np.float64)
                    bar.update(block.shape[0])
                if bg_sum is not None:
                    static_bg = (bg_sum / n).astype(np.float32)
                if static_bg is not None:
                    writer.set_static_background(static_bg)
                writer.set_attrs(Binning=binning)
                writer.set_processing(
                    {
                        "operation": "convert",
                        "source": str(src.path),
                        "naming": src.scheme,
                        "images": len(src),
                        "pattern_shape_acquired": list(raw_shape),
                        "binning": binning,
                        "bin_mode": bin_mode,
                        "background": _background_label(background),
                        "geometry": shape_source or "image names",
                    }
                )
                if omap is not None:
                    _orientation_extras(omap, writer)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            bar.close()
    finally:
        src.close()
    _logger.info("%s: %d patterns of %s %s written", out, n, pattern_shape, dtype)
    return out
