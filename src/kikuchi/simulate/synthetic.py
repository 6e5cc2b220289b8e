"""Synthetic pattern maps of known truth, and patterns for the points of an orientation map.

:func:`simulate` makes a map of Voronoi grains with random orientations and
small in-grain orientation gradients, projects the master pattern of its
phase(s) for every point, passes the patterns through the detection model
(:mod:`kikuchi.simulate.detection`) and writes a map file with the truth:
Euler angles (``phi1``, ``PHI``, ``phi2``), pattern centre (Bruker
convention), phases, the detector's static background and a ``Truth`` header
group (grain and phase ids, the parameters). :func:`simulate_from_orientation_map`
does the same for the points of a CTF/ANG orientation map.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi._args import ArgumentValueError, check_count, check_number, check_pair, check_path, shown
from kikuchi._cpus import available_cpus
from kikuchi.geometry.detector import Detector
from kikuchi.geometry.orientation import axis_angle_matrix, euler_to_matrix, matrix_to_euler
from kikuchi.simulate.detection import DEFAULT_CONTRAST, DetectionModel
from kikuchi.simulate.master import MasterPattern
from kikuchi.simulate.projection import project_patterns

__all__ = [
    "DEFAULT_PC",
    "random_orientations",
    "simulate",
    "simulate_from_orientation_map",
    "voronoi_grains",
]

_logger = logging.getLogger(__name__)

#: Default pattern centre (Bruker) of synthetic maps: a typical geometry.
DEFAULT_PC = (0.5, 0.3, 0.6)
#: Patterns projected at a time: at most this many, and at most :data:`_CHUNK_BYTES` of float32 patterns
#: (about 4 times that in memory while the detection model runs), so memory is bounded whatever the pattern size.
#: The noise of a seed depends on the chunks: 1024 patterns of up to 256 x 256 pixels, as always.
_CHUNK = 1024
_CHUNK_BYTES = 256 << 20
#: Float32 patterns projected at a time by one thread of a noise-free simulation (whole stored chunks).
_BLOCK_BYTES = 8 << 20
#: Pixels of a whole simulated map (points x pattern pixels) above which ``allow_large=True`` is needed:
#: 4 GiB of 8-bit patterns, about 20 minutes at the 4 million pixels a second of one core.
MAX_PIXELS = 1 << 32
#: Pattern side in pixels above which ``allow_large=True`` is needed: EBSD cameras have at most about
#: 2048 pixels a side, and the detection model keeps several float64 images of the pattern's size.
MAX_PATTERN_SIDE = 4096


def check_size(nav_shape: tuple[int, int], pattern_shape: tuple[int, int], *, allow_large: bool = False) -> None:
    """Refuse a simulation larger than :data:`MAX_PIXELS` or with patterns wider than :data:`MAX_PATTERN_SIDE` (unless ``allow_large``).

    >>> check_size((40, 50), (2000, 2000))
    Traceback (most recent call last):
    ...
    ValueError: 2000 patterns of 2000 x 2000 pixels make 8.0 billion pixels (7.5 GiB of 8-bit patterns, about 33 minutes of simulation), more than the 4.3 billion simulated without allow_large=True (--allow-large); give a smaller map or pattern shape, or allow it
    """
    rows, cols = (int(v) for v in nav_shape)
    h, w = (int(v) for v in pattern_shape)
    if min(rows, cols) < 1 or min(h, w) < 1:
        raise ValueError(f"map shape {rows} x {cols} and pattern shape {h} x {w} must be positive")
    if allow_large:
        return
    if max(h, w) > MAX_PATTERN_SIDE:
        raise ValueError(
            f"patterns of {h} x {w} pixels are larger than any EBSD camera (at most about 2048 pixels a side; the limit "
            f"here is {MAX_PATTERN_SIDE} without allow_large=True, --allow-large); give a smaller pattern shape, or allow it"
        )
    n = rows * cols
    pixels = n * h * w
    if pixels > MAX_PIXELS:
        minutes = pixels / 4e6 / 60
        raise ValueError(
            f"{n} patterns of {h} x {w} pixels make {pixels / 1e9:.1f} billion pixels ({pixels / 2**30:.1f} GiB of 8-bit "
            f"patterns, about {minutes:.0f} minutes of simulation), more than the {MAX_PIXELS / 1e9:.1f} billion simulated "
            "without allow_large=True (--allow-large); give a smaller map or pattern shape, or allow it"
        )


def random_orientations(n: int, *, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """(n, 3) Bunge Euler angles (radians) uniformly distributed over all orientations.

    Examples
    --------
    >>> e = random_orientations(20000, rng=0)
    >>> abs(float(np.cos(e[:, 1]).mean())) < 0.02  # cos(Phi) is uniform on [-1, 1]
    True
    """
    rng = np.random.default_rng(rng)
    q = rng.normal(size=(int(n), 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    a, b, c, d = q.T
    m = np.empty((len(q), 3, 3))
    m[:, 0, 0] = a * a + b * b - c * c - d * d
    m[:, 0, 1] = 2 * (b * c - a * d)
    m[:, 0, 2] = 2 * (b * d + a * c)
    m[:, 1, 0] = 2 * (b * c + a * d)
    m[:, 1, 1] = a * a - b * b + c * c - d * d
    m[:, 1, 2] = 2 * (c * d - a * b)
    m[:, 2, 0] = 2 * (b * d - a * c)
    m[:, 2, 1] = 2 * (c * d + a * b)
    m[:, 2, 2] = a * a - b * b - c * c + d * d
    return matrix_to_euler(m)


def voronoi_grains(nav_shape: tuple[int, int], n_grains: int, *, rng: np.random.Generator | int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Voronoi tessellation of the map: grain label (rows, cols) and seed positions (n, 2) in (row, col).

    Examples
    --------
    >>> labels, seeds = voronoi_grains((20, 30), 5, rng=1)
    >>> labels.shape, sorted(np.unique(labels).tolist()) == list(range(5))
    ((20, 30), True)
    """
    rows, cols = (int(s) for s in nav_shape)
    n = int(n_grains)
    if n < 1:
        raise ValueError(f"a map needs at least one grain, got {n_grains}")
    rng = np.random.default_rng(rng)
    seeds = np.column_stack([rng.uniform(0, rows, n), rng.uniform(0, cols, n)])
    r, c = np.mgrid[0:rows, 0:cols]
    d2 = (r[..., None] + 0.5 - seeds[:, 0]) ** 2 + (c[..., None] + 0.5 - seeds[:, 1]) ** 2
    labels = np.argmin(d2, axis=-1)
    # relabel 0..k-1 in case a seed got no pixel
    used, labels = np.unique(labels, return_inverse=True)
    return labels.reshape(rows, cols), seeds[used]


def _gradient_orientations(
    labels: np.ndarray, seeds: np.ndarray, grain_euler: np.ndarray, gradient_deg: float, rng: np.random.Generator
) -> np.ndarray:
    """Per-point Euler angles: the grain's orientation turned by gradient_deg per step of distance from its seed."""
    rows, cols = labels.shape
    g_grain = euler_to_matrix(grain_euler)
    axes = rng.normal(size=(len(seeds), 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    r, c = np.mgrid[0:rows, 0:cols]
    dist = np.hypot(r + 0.5 - seeds[labels, 0], c + 0.5 - seeds[labels, 1])
    angle = np.radians(gradient_deg) * dist
    rot = axis_angle_matrix(axes[labels], angle)
    g = g_grain[labels] @ np.swapaxes(rot, -1, -2)  # turn the crystal about a sample axis: g R^T
    return matrix_to_euler(g)


def _parse_phases(phase: Any) -> list[Any]:
    from kikuchi.crystal import Phase

    if isinstance(phase, (list, tuple)):
        items = list(phase)
    elif isinstance(phase, str):
        # several phases: 'ni,fe-alpha' or, with compact forms that hold commas, 'Ti:194:2.95,4.68;ni'
        items = phase.split(";") if ";" in phase else [phase] if ":" in phase else phase.split(",")
    else:
        items = [phase]
    return [Phase.parse(p.strip() if isinstance(p, str) else p) for p in items if not (isinstance(p, str) and not p.strip())]


def _master_patterns(phases: Sequence[Any], *, kv: float, master_pattern: Any) -> list[MasterPattern]:
    """One master pattern per phase: the given EMsoft/MasterPattern where its space group fits, else kinematical."""
    given = None
    if master_pattern is not None:
        given = master_pattern if isinstance(master_pattern, MasterPattern) else MasterPattern.from_emsoft(master_pattern)
        if abs(given.kv - kv) > 0.5:
            _logger.warning("master pattern %s was computed for %g kV, the map for %g kV", given.source, given.kv, kv)
    out = []
    for ph in phases:
        sg_given = None
        if given is not None and given.phase is not None:
            sg_given = given.phase.get("space_group") if isinstance(given.phase, dict) else getattr(given.phase, "space_group", None)
        if given is not None and (len(phases) == 1 or sg_given == ph.space_group):
            out.append(given)
        else:
            from kikuchi.simulate.kinematical import kinematical_master_pattern

            out.append(kinematical_master_pattern(ph, kv=kv))
    return out


def _progress(total: int, progress: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="pattern", disable=not (progress and sys.stderr.isatty()))


def _write_map(
    path: Path,
    *,
    nav_shape: tuple[int, int],
    step_um: tuple[float, float],
    euler: np.ndarray,
    phase_id: np.ndarray,
    phases: Sequence[Any],
    masters: Sequence[MasterPattern],
    detector: Detector,
    noise: str | float | None,
    contrast: float,
    bit_depth: int,
    seed: int | None,
    kv: float,
    truth: dict[str, np.ndarray],
    parameters: dict[str, Any],
    compression: str,
    progress: bool,
) -> Path:
    from kikuchi.io.mapstore import COMPRESSIONS, MapWriter, _bounded_map

    rows, cols = nav_shape
    n = rows * cols
    euler = euler.reshape(n, 3)
    phase_id = phase_id.reshape(n)
    model = None
    if noise is not None:
        model = DetectionModel.create(detector.shape, noise=noise, detector=detector, contrast=contrast, bit_depth=bit_depth, seed=seed)
        dtype: Any = model.dtype
    else:
        dtype = np.float32
    if compression != "auto" and compression not in COMPRESSIONS:
        raise ArgumentValueError(f"compression={shown(compression)}: expected 'auto', 'gzip' or 'none'")
    if compression == "auto":
        compression = "gzip" if model is not None else "none"
    filters = COMPRESSIONS[compression]
    rng = np.random.default_rng(None if seed is None else seed + 1)
    pattern_bytes = 4 * int(np.prod(detector.shape))
    workers = available_cpus()
    with MapWriter(path, nav_shape=nav_shape, pattern_shape=detector.shape, dtype=dtype, step_um=step_um, compression=filters) as w, _progress(n, progress, "simulate") as bar:
        cp = w.chunk_patterns
        if model is None:  # whole stored chunks, projected and compressed together on the pool
            block = cp * max(1, _BLOCK_BYTES // (cp * pattern_bytes))
        else:  # the noise of a seed depends on these blocks (drawn in order below)
            block = max(1, min(_CHUNK, _CHUNK_BYTES // pattern_bytes))

        free: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()  # blocks written, to be filled again
        known = np.isin(phase_id, np.arange(1, len(masters) + 1))

        def project(start: int) -> tuple[np.ndarray, np.ndarray, tuple[list[Any], np.ndarray] | None]:
            """The block's theoretical patterns (one thread), and its stored chunks and sums when they are final.

            Blocks are filled in buffers reused once written: fresh memory costs as much as the projection here.
            """
            stop = min(n, start + block)
            try:
                buffer = free.get_nowait()
            except queue.Empty:
                buffer = np.empty((block, *detector.shape), dtype=np.float32)
            theory = buffer[: stop - start]
            sums = np.zeros(stop - start)
            ids = phase_id[start:stop]
            for k, mp in enumerate(masters, start=1):
                if np.all(ids == k):  # the whole block in one phase: projected in place
                    pc_index = np.arange(start, stop) if detector.n_pc > 1 else None
                    project_patterns(mp, detector, euler[start:stop], pc_index=pc_index, workers=1, out=theory, sums=sums)
                    continue
                sel = np.flatnonzero(ids == k)
                if sel.size:
                    pc_index = start + sel if detector.n_pc > 1 else None
                    part = np.empty(sel.size)
                    theory[sel] = project_patterns(mp, detector, euler[start + sel], pc_index=pc_index, workers=1, sums=part)
                    sums[sel] = part
            theory[~known[start:stop]] = 0.0
            if model is not None:
                return buffer, theory, None
            return buffer, theory, ([w.encode_chunk(theory[o : o + cp]) for o in range(0, stop - start, cp)], sums)

        # Blocks are projected (and compressed) on all cores while this thread writes the finished ones in order
        # and draws the noise with the one generator of the seed, so the file does not depend on the threads.
        starts = range(0, n, block)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kikuchi-simulate")
        try:
            for start, (buffer, theory, final) in zip(starts, _bounded_map(pool, project, iter(starts), 2 * workers)):
                if final is None:
                    w.write(start, model.apply(theory, rng=rng) if model is not None else theory)
                else:
                    blobs, sums = final
                    for k, blob in enumerate(blobs):
                        part = slice(k * cp, (k + 1) * cp)
                        w.write(start + k * cp, theory[part], encoded=blob, sums=sums[part])
                free.put(buffer)
                w.h5.check()  # a write failed (a full disk): stop now, with one clear error
                bar.update(len(theory))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        pc = np.broadcast_to(detector.pc.reshape(-1, 3), (n, 3)) if detector.n_pc > 1 else np.broadcast_to(detector.pc, (n, 3))
        w.set_pattern_centre(pc[:, 0], pc[:, 1], pc[:, 2], convention="bruker")
        w.set_euler(np.where(phase_id[:, None] > 0, euler, np.nan))
        w.set_phases([{"id": i, **ph.to_dict()} for i, ph in enumerate(phases, start=1)])
        w.set_attrs(
            SampleTilt=detector.sample_tilt_deg,
            CameraTilt=detector.camera_tilt_deg,
            AcceleratingVoltage=float(kv),
            Binning=detector.binning,
            PixelSize=detector.px_size_um,
        )
        if model is not None:
            w.set_static_background(model.static_background)
        g = w.header.create_group("Truth")
        g["phase_id"] = phase_id.reshape(nav_shape).astype(np.int32)
        g["euler"] = euler.reshape(*nav_shape, 3).astype(np.float64)
        for key, value in truth.items():
            g[key] = value
        if model is not None:
            g["gain"] = model.gain.astype(np.float32)
            g["hot_pixels"] = model.hot
            g["backscatter_background"] = model.background.astype(np.float32)
            parameters = {**parameters, "counts_per_pixel": model.counts, "contrast": model.contrast, "read_noise": model.read_noise}
        parameters = {**parameters, "master_patterns": [m.source for m in masters]}
        g.attrs["json"] = json.dumps(parameters, default=str)
    return path


def _check_common(
    *, pattern_shape: Any, pc_convention: Any, kv: Any, seed: Any, sample_tilt_deg: Any, camera_tilt_deg: Any,
    px_size_um: Any, binning: Any, bit_depth: Any, contrast: Any = DEFAULT_CONTRAST,
) -> None:
    """The options :func:`simulate` and :func:`simulate_from_orientation_map` share, checked before any work: one line naming the option."""
    from kikuchi.geometry.pattern_centre import normalize_convention

    check_pair(pattern_shape, "pattern_shape", what="(height, width)")
    normalize_convention(pc_convention)
    if kv is not None:
        check_number(kv, "kv", positive=True, maximum=1000.0, unit="kV")
    if seed is not None:
        check_count(seed, "seed", minimum=0)
    for name, value in (("sample_tilt_deg", sample_tilt_deg), ("camera_tilt_deg", camera_tilt_deg)):
        if value is not None:
            check_number(value, name, minimum=-90.0, maximum=90.0, unit="degrees")
    if px_size_um is not None:
        check_number(px_size_um, "px_size_um", positive=True, unit="µm")
    check_count(binning, "binning")
    check_number(contrast, "contrast", positive=True, maximum=1.0)
    if bit_depth not in (8, 16) or isinstance(bit_depth, bool):
        raise ArgumentValueError(f"bit_depth={shown(bit_depth)}: expected 8 or 16")


def _detector(pattern_shape: Any, pc: Any, pc_convention: str, *, sample_tilt_deg: float, camera_tilt_deg: float, px_size_um: float | None, binning: int) -> Detector:
    return Detector(
        tuple(int(s) for s in pattern_shape),
        DEFAULT_PC if pc is None else pc,
        convention=pc_convention if pc is not None else "bruker",
        sample_tilt_deg=sample_tilt_deg,
        camera_tilt_deg=camera_tilt_deg,
        binning=binning,
        px_size_um=px_size_um,
    )


def simulate(
    path: str | os.PathLike,
    *,
    phase: Any = "ni",
    shape: tuple[int, int] = (40, 50),
    pattern_shape: tuple[int, int] = (60, 60),
    grains: int = 25,
    noise: str | float | None = "medium",
    contrast: float = DEFAULT_CONTRAST,
    seed: int | None = 0,
    kv: float = 20.0,
    master_pattern: Any = None,
    pc: Any = None,
    pc_convention: str = "bruker",
    sample_tilt_deg: float = 70.0,
    camera_tilt_deg: float = 0.0,
    px_size_um: float | None = None,
    binning: int = 1,
    step_um: float = 1.0,
    gradient_deg: float = 0.05,
    bit_depth: int = 8,
    ctf: str | os.PathLike | None = None,
    compression: str = "auto",
    progress: bool = True,
    allow_large: bool = False,
) -> Path:
    """Write a synthetic pattern map of Voronoi grains with known orientations.

    Parameters
    ----------
    path
        Output map file (HDF5, written atomically).
    phase
        Phase name, compact form or CIF path (:meth:`kikuchi.crystal.Phase.parse`),
        a Phase, or several (list or comma-separated): grains are assigned
        to the phases at random.
    shape
        Map (rows, cols).
    pattern_shape
        Pattern (rows, cols).
    grains
        Number of Voronoi grains.
    noise
        'low', 'medium', 'high', counts per pixel, or None for noise-free
        float32 patterns (the projected master pattern).
    contrast
        Kikuchi contrast of the detection model: the relative standard
        deviation of the band signal (:class:`~kikuchi.simulate.detection.DetectionModel`).
        The default 0.12 gives clear bands; the real Ni patterns of
        kikuchipy's ``nickel_ebsd_small.h5`` measure about 0.02
        (:data:`~kikuchi.simulate.detection.REAL_NI_CONTRAST`), which at a
        few tens of counts per pixel makes the noisy maps of fast scans.
    seed
        Random seed of grains, orientations, detector response and noise.
    kv
        Accelerating voltage (kV) of the kinematical master patterns.
    master_pattern
        An EMsoft master pattern file or a MasterPattern to use instead of
        the kinematical simulation (for the phase with its space group).
    pc, pc_convention
        Pattern centre (x, y, z) and its convention; default (0.5, 0.3, 0.6) Bruker.
    sample_tilt_deg, camera_tilt_deg, px_size_um, binning
        Detector geometry (px_size_um is needed for EMsoft PCs).
    step_um
        Map step in µm.
    gradient_deg
        In-grain orientation gradient: degrees per step of distance from the grain's seed.
    bit_depth
        8 or 16 (with noise).
    ctf
        Also write the true orientation map as a CTF file here.
    compression
        Filter of the stored patterns: 'gzip' (gzip 1 + shuffle, as every
        map file), 'none', or 'auto' (default): gzip for camera images (with
        noise), none for noise-free float32 patterns, which keep 81 % of
        their size compressed and cost three times as long to write.
    progress
        Show a progress bar on a terminal.
    allow_large
        Simulate maps of more than :data:`MAX_PIXELS` pixels in all, or
        patterns wider than :data:`MAX_PATTERN_SIDE` (refused otherwise:
        see :func:`check_size`).

    Returns
    -------
    pathlib.Path
        The map file.

    Raises
    ------
    ValueError
        A map or pattern shape that is not positive, or too large (see ``allow_large``).
    OutputWriteError
        The output cannot be written (a full disk): nothing is left under its name.

    Examples
    --------
    >>> import tempfile, pathlib, kikuchi
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "synthetic.h5"
    >>> _ = simulate(out, shape=(4, 5), pattern_shape=(20, 20), grains=3, noise="low", progress=False)
    >>> with kikuchi.open(out) as m:
    ...     m.nav_shape, m.pattern_shape, m.dtype.name, m.pattern_centre.convention
    ((4, 5), (20, 20), 'uint8', 'bruker')
    """
    path = check_path(path)
    rows, cols = check_pair(shape, "shape")
    grains = check_count(grains, "grains")
    step_um = check_number(step_um, "step_um", positive=True, unit="µm")
    gradient_deg = check_number(gradient_deg, "gradient_deg", minimum=0.0, unit="degrees per step")
    _check_common(pattern_shape=pattern_shape, pc_convention=pc_convention, kv=kv, seed=seed, sample_tilt_deg=sample_tilt_deg,
                  camera_tilt_deg=camera_tilt_deg, px_size_um=px_size_um, binning=binning, bit_depth=bit_depth, contrast=contrast)
    pattern_shape = check_pair(pattern_shape, "pattern_shape", what="(height, width)")
    if ctf is not None:
        ctf = check_path(ctf, "ctf")
    check_size((rows, cols), pattern_shape, allow_large=allow_large)
    rng = np.random.default_rng(seed)
    phases = _parse_phases(phase)
    if not phases:
        raise ValueError("simulate needs at least one phase")
    detector = _detector(pattern_shape, pc, pc_convention, sample_tilt_deg=sample_tilt_deg, camera_tilt_deg=camera_tilt_deg, px_size_um=px_size_um, binning=binning)
    labels, seeds = voronoi_grains((rows, cols), grains, rng=rng)
    n_grains = len(seeds)
    grain_euler = random_orientations(n_grains, rng=rng)
    grain_phase = rng.integers(1, len(phases) + 1, n_grains) if len(phases) > 1 else np.ones(n_grains, dtype=np.int64)
    euler = _gradient_orientations(labels, seeds, grain_euler, gradient_deg, rng)
    phase_id = grain_phase[labels]
    masters = _master_patterns(phases, kv=kv, master_pattern=master_pattern)
    parameters = {
        "kind": "synthetic",
        "grains": n_grains,
        "seed": seed,
        "noise": noise,
        "kv": kv,
        "gradient_deg_per_step": gradient_deg,
        "pc_bruker": detector.pc.tolist(),
    }
    out = _write_map(
        Path(path),
        nav_shape=(rows, cols),
        step_um=(float(step_um), float(step_um)),
        euler=euler,
        phase_id=phase_id,
        phases=phases,
        masters=masters,
        detector=detector,
        noise=noise,
        contrast=float(contrast),
        bit_depth=bit_depth,
        seed=seed,
        kv=kv,
        truth={"grain_id": labels.astype(np.int32), "grain_euler": grain_euler, "grain_seeds": seeds},
        parameters=parameters,
        compression=compression,
        progress=progress,
    )
    if ctf is not None:
        write_truth_ctf(ctf, euler=euler, phase_id=phase_id, phases=phases, nav_shape=(rows, cols), step_um=step_um, kv=kv, sample_tilt_deg=sample_tilt_deg)
    _logger.info("wrote %s: %d x %d map, %d grains", out, rows, cols, n_grains)
    return out


def write_truth_ctf(
    path: str | os.PathLike,
    *,
    euler: np.ndarray,
    phase_id: np.ndarray,
    phases: Sequence[Any],
    nav_shape: tuple[int, int],
    step_um: float,
    kv: float,
    sample_tilt_deg: float,
) -> Path:
    """Write true orientations as an Oxford CTF file (via :class:`kikuchi.io.orientation_map.OrientationMap`)."""
    from kikuchi.io.orientation_map import OrientationMap

    n = int(np.prod(nav_shape))
    omap = OrientationMap.from_arrays(
        euler=np.asarray(euler).reshape(n, 3),
        phase_id=np.asarray(phase_id).reshape(n),
        nav_shape=nav_shape,
        step_um=float(step_um),
        phases=[{"id": i, **ph.to_dict()} for i, ph in enumerate(phases, start=1)],
        columns={"bands": np.full(n, 8), "error": np.zeros(n, dtype=int), "mad": np.zeros(n), "bc": np.full(n, 200), "bs": np.full(n, 200)},
        header={"KV": kv, "TiltAngle": sample_tilt_deg, "Prj": "kikuchi simulate (truth)"},
    )
    return Path(omap.write(path, format="ctf"))


def simulate_from_orientation_map(
    orientation_map: Any,
    path: str | os.PathLike,
    *,
    pattern_shape: tuple[int, int] = (60, 60),
    pc: Any = None,
    pc_convention: str = "bruker",
    kv: float | None = None,
    master_pattern: Any = None,
    phase: Any = None,
    noise: str | float | None = None,
    contrast: float = DEFAULT_CONTRAST,
    seed: int | None = 0,
    sample_tilt_deg: float | None = None,
    camera_tilt_deg: float = 0.0,
    px_size_um: float | None = None,
    binning: int = 1,
    bit_depth: int = 8,
    compression: str = "auto",
    progress: bool = True,
    allow_large: bool = False,
) -> Path:
    """Simulate the pattern of every point of an orientation map (CTF/ANG) into a map file.

    Parameters
    ----------
    orientation_map
        An :class:`~kikuchi.io.orientation_map.OrientationMap` or a CTF/ANG path.
        Hexagonal grids are resampled to a square grid.
    path
        Output map file.
    pattern_shape, pc, pc_convention, px_size_um, binning, camera_tilt_deg
        Detector geometry (default PC (0.5, 0.3, 0.6) Bruker).
    kv
        Accelerating voltage; default the map header's (CTF ``KV``), else 20.
    master_pattern
        EMsoft master pattern file (or MasterPattern) for the phase with its
        space group; other phases get the kinematical master pattern.
    phase
        Phase(s) overriding the map header's (one per phase id).
    noise
        None (default): noise-free float32 patterns; else as in :func:`simulate`.
    contrast
        Kikuchi contrast with noise, as in :func:`simulate`.
    seed, bit_depth, compression, progress, allow_large
        As in :func:`simulate`.
    sample_tilt_deg
        Default: the map header's (CTF ``TiltAngle``), else 70.

    Returns
    -------
    pathlib.Path
    """
    from kikuchi.crystal import Phase
    from kikuchi.io.orientation_map import OrientationMap, read_orientation_map

    path = check_path(path)
    _check_common(pattern_shape=pattern_shape, pc_convention=pc_convention, kv=kv, seed=seed, sample_tilt_deg=sample_tilt_deg,
                  camera_tilt_deg=camera_tilt_deg, px_size_um=px_size_um, binning=binning, bit_depth=bit_depth, contrast=contrast)
    if not isinstance(orientation_map, OrientationMap):
        orientation_map = check_path(orientation_map, "orientation_map")
    omap = orientation_map if isinstance(orientation_map, OrientationMap) else read_orientation_map(orientation_map)
    if omap.grid == "hexagonal":
        _logger.info("resampling the hexagonal grid of %s to a square grid", getattr(omap, "source", "the map"))
        omap = omap.to_square_grid()
    if omap.grid != "square" or omap.nav_shape is None:
        raise ValueError("simulate --from-map needs an orientation map on a square or hexagonal grid")
    check_size(tuple(omap.nav_shape), pattern_shape, allow_large=allow_large)
    header = omap.header or {}
    if kv is None:
        kv = _header_number(header, ("KV", "AcceleratingVoltage", "kV"), 20.0)
    if sample_tilt_deg is None:
        sample_tilt_deg = _header_number(header, ("TiltAngle", "SampleTiltAngle", "SampleTilt"), 70.0)
        if not 0 < sample_tilt_deg < 90:
            sample_tilt_deg = 70.0
    if phase is not None:
        phases = _parse_phases(phase)
    else:
        if not omap.phases:
            raise ValueError("the orientation map has no phases in its header: pass --phase")
        phases = [Phase.from_phase_info(info) for info in sorted(omap.phases, key=lambda p: p.id)]
    ids = sorted(p.id for p in omap.phases) if phase is None else list(range(1, len(phases) + 1))
    remap = {old: new for new, old in enumerate(ids, start=1)}
    phase_id = np.array([remap.get(int(p), 0) for p in np.asarray(omap.phase_id).ravel()], dtype=np.int64)
    if phase is not None and len(phases) == 1:
        phase_id = np.where(np.asarray(omap.phase_id).ravel() > 0, 1, 0)
    euler = np.asarray(omap.euler, dtype=np.float64).reshape(-1, 3)
    bad = ~np.all(np.isfinite(euler), axis=1)
    phase_id[bad] = 0
    euler = np.where(bad[:, None], 0.0, euler)
    detector = _detector(pattern_shape, pc, pc_convention, sample_tilt_deg=float(sample_tilt_deg), camera_tilt_deg=camera_tilt_deg, px_size_um=px_size_um, binning=binning)
    masters = _master_patterns(phases, kv=float(kv), master_pattern=master_pattern)
    nav_shape = tuple(int(s) for s in omap.nav_shape)
    parameters = {"kind": "from orientation map", "source": str(getattr(omap, "path", "") or ""), "noise": noise, "seed": seed, "kv": kv, "pc_bruker": detector.pc.tolist()}
    return _write_map(
        Path(path),
        nav_shape=nav_shape,  # type: ignore[arg-type]
        step_um=tuple(float(s) for s in omap.step_um),  # type: ignore[arg-type]
        euler=euler,
        phase_id=phase_id,
        phases=phases,
        masters=masters,
        detector=detector,
        noise=noise,
        contrast=float(contrast),
        bit_depth=bit_depth,
        seed=seed,
        kv=float(kv),
        truth={},
        parameters=parameters,
        compression=compression,
        progress=progress,
    )


def _header_number(header: dict[str, Any], keys: Sequence[str], default: float) -> float:
    for key in keys:
        if key in header:
            try:
                return float(header[key])
            except (TypeError, ValueError):
                continue
    return default
