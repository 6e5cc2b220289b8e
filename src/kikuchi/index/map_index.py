"""Hough indexing of a whole map file on the engine, and the orientation map it gives."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kikuchi.index.hough_index import HoughIndexer, IndexResult

__all__ = ["index_map", "MapIndexing", "prepare_patterns", "to_orientation_map", "phase_info"]

_logger = logging.getLogger(__name__)


def prepare_patterns(
    patterns: np.ndarray, *, static_background: np.ndarray | None = None, dynamic_sigma: float | None = None, dynamic: bool = True
) -> np.ndarray:
    """Background-corrected float32 patterns for band detection.

    Static background removal (division by the detector's static background,
    when given), then dynamic background removal (division by a Gaussian
    low-pass of each pattern), both from :mod:`kikuchi.process`: in one pass
    per pattern (the pipeline's direct sum) where the kernel is short enough.
    A pattern that holds no signal (all one value, or a value not finite)
    gives zeros: no bands are found in it, and :meth:`HoughIndexer.index`
    marks it error 6.

    Raises
    ------
    ValueError
        Patterns that are not (h, w) or (..., h, w) numbers; a static
        background of another shape; a sigma that is not a positive number.
    """
    from kikuchi.process.no_signal import no_signal

    p = np.asarray(patterns)
    if p.dtype == np.bool_:
        p = p.view(np.uint8)
    if p.dtype.kind not in "uif":
        raise ValueError(f"prepare_patterns: patterns must be numbers, got dtype {p.dtype}")
    if p.ndim < 2 or min(p.shape[-2:]) < 1:
        raise ValueError(f"prepare_patterns: patterns must be (h, w) or (n, h, w); got shape {p.shape}")
    if static_background is not None and np.shape(static_background) != p.shape[-2:]:
        raise ValueError(f"prepare_patterns: static background of shape {np.shape(static_background)} does not fit patterns of shape {p.shape[-2:]}")
    bad = no_signal(p)
    if bad.any():
        p = p.copy()
        p[bad] = 0
        out = _prepare(p, static_background, dynamic_sigma, dynamic)
        out[bad] = 0.0
        return out
    return _prepare(p, static_background, dynamic_sigma, dynamic)


def _prepare(p: np.ndarray, static_background: np.ndarray | None, dynamic_sigma: float | None, dynamic: bool) -> np.ndarray:
    from kikuchi.process import remove_dynamic_background, remove_static_background
    from kikuchi.process.background import fused_static_dynamic

    if dynamic:
        static = None if static_background is None else np.asarray(static_background, dtype=np.float32)
        fused = fused_static_dynamic(p.reshape(-1, *p.shape[-2:]), static, sigma=dynamic_sigma)
        if fused is not None:
            return fused.reshape(p.shape)
    p = np.asarray(p, dtype=np.float32)
    if static_background is not None:
        p = remove_static_background(p, static_background, operation="divide", dtype=np.float32)
    if dynamic:
        p = remove_dynamic_background(p, sigma=dynamic_sigma, method="auto")
    return np.asarray(p, dtype=np.float32)


#: Smallest side of the patterns that ``binning='auto'`` bins down to: Hough indexing finds the
#: same orientations on 80-pixel patterns as on 240-pixel ones, at a ninth of the pixels.
AUTO_BINNING_SIDE = 80


def auto_binning(pattern_shape: tuple[int, int], side: int = AUTO_BINNING_SIDE) -> int:
    """The largest factor dividing both sides that leaves at least ``side`` pixels on the smaller one (1 when none).

    >>> auto_binning((240, 240)), auto_binning((120, 160)), auto_binning((480, 640)), auto_binning((60, 60))
    (3, 1, 5, 1)
    """
    h, w = (int(v) for v in pattern_shape)
    best = 1
    for b in range(2, min(h, w) // side + 1):
        if h % b == 0 and w % b == 0:
            best = b
    return best


def bin_mean(patterns: np.ndarray, binning: int) -> np.ndarray:
    """Mean of ``binning`` x ``binning`` pixel blocks of a float stack (n, h, w); the stack itself for 1."""
    if binning == 1:
        return patterns
    n, h, w = patterns.shape
    return patterns.reshape(n, h // binning, binning, w // binning, binning).mean(axis=(2, 4), dtype=np.float32)


def binned_detector(detector: Any, binning: int) -> Any:
    """The detector of patterns binned by ``binning`` (the same PCs, in fractions of the detector)."""
    if binning == 1:
        return detector
    from kikuchi.geometry import Detector

    h, w = detector.shape
    return Detector(
        (h // binning, w // binning), detector.pc, convention="bruker", sample_tilt_deg=detector.sample_tilt_deg,
        camera_tilt_deg=detector.camera_tilt_deg, azimuthal_deg=detector.azimuthal_deg, twist_deg=detector.twist_deg,
        binning=detector.binning * binning, px_size_um=detector.px_size_um,
    )  # fmt: skip


def _index_chunk(
    patterns: np.ndarray, *, indexer: HoughIndexer, static_background: Any, dynamic: bool, dynamic_sigma: Any,
    ncols: int, rows: np.ndarray, cols: np.ndarray, binning: int = 1,
) -> np.ndarray:
    """Engine chunk function: (n, h, w) raw patterns -> (n, 11) result rows.

    Patterns that hold no signal are zeros for the background removal (the
    others keep their place in the stack) and are not indexed (error 6).
    """
    from kikuchi.process.no_signal import no_signal

    if patterns.dtype == np.bool_:
        patterns = patterns.view(np.uint8)
    bad = no_signal(patterns)
    if bad.any():
        patterns = patterns.copy()
        patterns[bad] = 0
    p = bin_mean(prepare_patterns(patterns, static_background=static_background, dynamic=dynamic, dynamic_sigma=dynamic_sigma), binning)
    flat = np.asarray(rows, dtype=np.int64) * ncols + np.asarray(cols, dtype=np.int64)
    return indexer.index(p, index=flat, no_signal=bad).as_array()


@dataclass
class MapIndexing:
    """Indexing of a map: the per-pattern result (storage order) and how it was obtained."""

    result: IndexResult
    nav_shape: tuple[int, int]
    index_map: np.ndarray
    step_um: tuple[float, float]
    detector: Any
    phases: list[Any]
    settings: dict[str, Any] = field(default_factory=dict)

    def to_orientation_map(self, *, header: dict[str, Any] | None = None, format: str | None = None) -> Any:
        """See :func:`to_orientation_map`."""
        return to_orientation_map(self, header=header, format=format)


def phase_info(phases: list[Any], tables: list[Any] | None = None) -> list[Any]:
    """:class:`kikuchi.io.orientation_map.PhaseInfo` (ids 1, 2, ...) of crystal phases, with the families used (ANG hklFamilies)."""
    from kikuchi.io.orientation_map import PhaseInfo

    out = []
    for k, p in enumerate(phases):
        a, b, c, al, be, ga = p.lattice
        families = []
        if tables is not None and k < len(tables):
            t = tables[k]
            for f in range(int(t.family.max()) + 1):
                members = t.hkl[t.family == f]
                members = np.concatenate([members, -members])
                # a readable representative: most non-negative indices, then the largest
                hkl = max((tuple(int(v) for v in m) for m in members), key=lambda h: (sum(v >= 0 for v in h), h))
                families.append({"hkl": [int(v) for v in hkl], "use_in_indexing": 1, "intensity": 1.0, "show_bands": 1})
        out.append(PhaseInfo(
            id=k + 1, name=str(p.name), lattice_angstrom=(10 * a, 10 * b, 10 * c), angles_deg=(al, be, ga),
            space_group=int(p.space_group), hkl_families=families,
        ))
    return out


def vendor_header(header: dict[str, Any] | None, detector: Any, *, kv: Any, format: str | None, author: str) -> dict[str, Any]:
    """``header`` with the vendor fields that vendor tools read: CTF (Author, KV, TiltAngle) or ANG (PC, tilts); None: both."""
    info = dict(header or {})
    if format in (None, "ctf"):
        info.setdefault("Author", author)
        if kv:
            info.setdefault("KV", float(kv))
        info.setdefault("TiltAngle", float(detector.sample_tilt_deg))
    if format in (None, "ang"):
        x_star, y_star, z_star = (float(v) for v in np.asarray(detector.pc_as("edax")).reshape(-1, 3).mean(axis=0))
        info.setdefault("x-star", x_star)
        info.setdefault("y-star", y_star)
        info.setdefault("z-star", z_star)
        info.setdefault("SampleTiltAngle", float(detector.sample_tilt_deg))
        info.setdefault("CameraElevationAngle", float(detector.camera_tilt_deg))
    return info


def to_orientation_map(indexing: MapIndexing, *, header: dict[str, Any] | None = None, format: str | None = None) -> Any:
    """An :class:`~kikuchi.io.orientation_map.OrientationMap` with CTF (bands, error, mad, bc, bs) and ANG (iq, ci, fit) columns.

    Points without a pattern get error 5 ("not yet analysed"). ``format``
    ('ctf', 'ang' or None for both) picks the vendor header fields added.
    """
    from kikuchi.io.orientation_map import OrientationMap

    r = indexing.result
    nr, nc = indexing.nav_shape
    im = indexing.index_map
    have = im >= 0
    n_map = nr * nc
    idx = np.where(have, im, 0).ravel()

    def place(values: np.ndarray, fill: float) -> np.ndarray:
        out = np.asarray(values)[idx].astype(np.float64)
        out[~have.ravel()] = fill
        return out

    euler = np.stack([place(r.euler[:, k], 0.0) for k in range(3)], axis=1)
    phase_id = place(r.phase_id, 0).astype(np.int64)
    columns = {
        "bands": place(r.n_matched, 0).astype(np.int64),
        "error": place(r.error, 5).astype(np.int64),
        "mad": place(r.mad_deg, 0.0),
        "bc": place(r.band_contrast, 0).astype(np.int64),
        "bs": place(r.band_slope, 0).astype(np.int64),
        "iq": place(r.band_contrast, 0.0),
        "ci": place(r.ci, -1.0),
        "fit": place(r.mad_deg, 0.0),
    }
    info = vendor_header(header, indexing.detector, kv=indexing.settings.get("kv"), format=format, author="kikuchi Hough indexing")
    assert euler.shape[0] == n_map
    return OrientationMap.from_arrays(
        euler=euler, phase_id=phase_id, nav_shape=(nr, nc), step_um=indexing.step_um,
        phases=phase_info(indexing.phases, indexing.result.tables), columns=columns, header=info,
    )


def grid_positions(index_map: np.ndarray, grid: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a regular ``grid`` (rows x cols) of map positions spread over the map, where it has patterns.

    The patterns of PC refinement (``refine_pc``) and of PC calibration
    (:func:`kikuchi.refine.calibrate_pc`).

    Examples
    --------
    >>> r, c = grid_positions(np.zeros((10, 20), int), (2, 3))
    >>> r.tolist(), c.tolist()
    ([0, 0, 0, 9, 9, 9], [0, 10, 19, 0, 10, 19])
    """
    nr, nc = index_map.shape
    gr, gc = (max(1, int(v)) for v in grid)
    rr = np.unique(np.linspace(0, nr - 1, min(gr, nr)).round().astype(int))
    cc = np.unique(np.linspace(0, nc - 1, min(gc, nc)).round().astype(int))
    r, c = (a.ravel() for a in np.meshgrid(rr, cc, indexing="ij"))
    ok = index_map[r, c] >= 0
    return r[ok], c[ok]


def patterns_to_index(ebsd_map: Any, dataset: str | None, static_background: Any, dynamic: bool, *, caller: str) -> tuple[Any, bool, bool, Any]:
    """(map on ``dataset``, raw?, remove the dynamic background?, static background or None) of a map to index.

    Processed patterns of kikuchi's own map file had both backgrounds
    removed; a vendor's processed patterns (AZtec's) only their static
    background: their dynamic one is removed here. ``static_background``
    'file' is the map's own (raw patterns only).
    """
    from kikuchi.io.mapstore import PROCESSED
    from kikuchi.process.no_signal import check_static_background

    if dataset is not None and dataset != ebsd_map.dataset:
        ebsd_map = ebsd_map.with_dataset(dataset)
    raw = ebsd_map.dataset != PROCESSED
    dynamic = bool(dynamic and (raw or ebsd_map.format != "kikuchi"))
    bg = None
    if raw:
        if isinstance(static_background, str):
            if static_background != "file":
                raise ValueError(f"static_background must be 'file', None or an array, got {static_background!r}")
            bg = ebsd_map.static_background
        elif static_background is not None:
            bg = np.asarray(static_background)
            if bg.shape != tuple(ebsd_map.pattern_shape):
                raise ValueError(f"{caller}: static background of shape {bg.shape} does not fit the patterns {tuple(ebsd_map.pattern_shape)}")
        source = "static background" if isinstance(static_background, np.ndarray) else f"{ebsd_map.path.name}: its static background"
        bg, _ = check_static_background(bg, source=source)
    return ebsd_map, raw, dynamic, bg


def index_map(
    ebsd_map: Any,
    phases: Any,
    *,
    detector: Any = None,
    dataset: str | None = None,
    static_background: Any = "file",
    dynamic: bool = True,
    dynamic_sigma: float | None = None,
    refine_pc: str | None = None,
    refine_points: int = 100,
    binning: int | str = "auto",
    executor: str = "serial",
    workers: int | None = None,
    scheduler: Any = None,
    progress: bool = True,
    **indexer_options: Any,
) -> MapIndexing:
    """Hough-index every pattern of a map file.

    Parameters
    ----------
    ebsd_map
        An open :class:`kikuchi.io.mapstore.EBSDMap`.
    phases
        Phase names or :class:`kikuchi.crystal.Phase` objects (one or more).
    detector
        :class:`kikuchi.geometry.Detector`; default the map's own
        (``ebsd_map.detector``: PCs and tilts from the file).
    dataset
        'RawPatterns' or 'Patterns'; default the map's current dataset.
    static_background
        'file' (the map's static background, if any), None, or an array.
        Used only on raw patterns.
    dynamic, dynamic_sigma
        Divide each pattern by its Gaussian low-pass (raw patterns only).
    refine_pc
        None, 'mean' (refine one PC on about ``refine_points`` patterns
        spread over the map) or 'plane' (refine in 3 x 3 blocks and fit a
        PC plane over the map).
    binning
        Bin the background-corrected patterns by this factor before band
        detection; 'auto' (default): down to about 80 pixels on the smaller
        side (:func:`auto_binning`: 240 x 240 patterns by 3, 60 x 60 not at
        all), where bands are found as well at a fraction of the cost.
    executor, workers, scheduler, progress
        See :func:`kikuchi.engine.map_reduce`.
    **indexer_options
        Options of :class:`~kikuchi.index.HoughIndexer`.

    Returns
    -------
    MapIndexing
    """
    from kikuchi.crystal import Phase
    from kikuchi.engine import map_reduce
    from kikuchi.process.no_signal import NoSignalWarning, no_signal, no_signal_summary

    if isinstance(phases, (str, Phase)):
        phases = [phases]
    if not hasattr(ebsd_map, "nav_shape") or not hasattr(ebsd_map, "index_map"):
        raise ValueError(f"index_map: give an open map (kikuchi.open(path)), not {type(ebsd_map).__name__}")
    phases = [p if isinstance(p, Phase) else Phase.parse(p) for p in phases]
    ebsd_map, raw, dynamic, bg = patterns_to_index(ebsd_map, dataset, static_background, dynamic, caller="index_map")
    detector = ebsd_map.detector if detector is None else detector
    if tuple(detector.shape) != tuple(ebsd_map.pattern_shape):
        raise ValueError(f"{ebsd_map.path}: detector shape {tuple(detector.shape)} differs from the pattern shape {ebsd_map.pattern_shape}")
    nr, nc = ebsd_map.nav_shape
    if detector.n_pc not in (1, nr * nc):
        raise ValueError(f"{ebsd_map.path}: the detector has {detector.n_pc} pattern centres for a {nr} x {nc} map")
    kv = ebsd_map.kv or 20.0
    indexer_options.setdefault("kv", kv)
    if binning == "auto":
        binning = auto_binning(detector.shape)
    elif isinstance(binning, bool) or not isinstance(binning, (int, np.integer)) or binning < 1:
        raise ValueError(f"binning must be 'auto' or a positive whole number, got {binning!r}")
    binning = int(binning)
    h, w = detector.shape
    if h % binning or w % binning:
        raise ValueError(f"binning {binning} does not divide the {h} x {w} patterns of {ebsd_map.path.name}")
    indexer = HoughIndexer(phases, binned_detector(detector, binning), **indexer_options)
    settings: dict[str, Any] = {
        "phases": [p.name for p in phases], "dataset": ebsd_map.dataset, "static_background": bg is not None and raw,
        "dynamic_background": dynamic, "pc_in_bruker": [round(float(v), 6) for v in detector.pc_mean],
        "kv": float(kv), "binning": binning,
    }
    if refine_pc not in (None, "none"):
        if refine_pc not in ("mean", "plane"):
            raise ValueError(f"refine_pc must be None, 'mean' or 'plane', got {refine_pc!r}")
        if not float(refine_points).is_integer() or refine_points < 1:
            raise ValueError(f"refine_points must be a whole number of patterns >= 1, got {refine_points}")
        from kikuchi.index.pattern_centre import fit_pc_plane, refine_pattern_centre

        g = max(1, int(np.ceil(np.sqrt(refine_points))))  # about refine_points patterns
        r, c = grid_positions(ebsd_map.index_map, (g, g))
        pats = ebsd_map.read_indices(ebsd_map.index_map[r, c])
        keep = ~no_signal(pats)  # patterns without signal tell nothing about the pattern centre
        r, c, pats = r[keep], c[keep], pats[keep]
        if not keep.any():
            warnings.warn(
                f"{ebsd_map.path.name}: none of the {keep.size} patterns picked to refine the pattern centre holds signal "
                "(all one value, or not finite): the pattern centre is not refined",
                NoSignalWarning,
                stacklevel=2,
            )
            settings["pc_refinement"] = {"skipped": "no pattern with signal among those picked"}
        else:
            pats = bin_mean(prepare_patterns(pats, static_background=bg, dynamic=dynamic, dynamic_sigma=dynamic_sigma), binning)
            if refine_pc == "mean":
                ref = refine_pattern_centre(indexer, pats)
                detector = detector.with_pc(ref["pc"])
                settings["pc_refinement"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in ref.items()}
            else:
                pc_map, info = fit_pc_plane(indexer, pats, r, c, (nr, nc))
                detector = detector.with_pc(pc_map)
                settings["pc_refinement"] = info
            indexer = indexer.with_detector(binned_detector(detector, binning))
            settings["pc_in_bruker"] = [round(float(v), 6) for v in detector.pc_mean]
    rows_all = map_reduce(
        ebsd_map, _index_chunk,
        kwargs={"indexer": indexer, "static_background": bg, "dynamic": dynamic, "dynamic_sigma": dynamic_sigma, "ncols": nc, "binning": binning},
        executor=executor, workers=workers, scheduler=scheduler, progress=progress, positions=True,
    )
    result = IndexResult.from_array(rows_all, phases=indexer.phase_names, tables=indexer.tables)
    have = np.zeros(ebsd_map.n_patterns, dtype=bool)
    have[ebsd_map.index_map[ebsd_map.index_map >= 0]] = True
    result.error[~have] = 5
    on_map = ebsd_map.index_map >= 0
    flagged = np.zeros(ebsd_map.nav_shape, dtype=bool)
    flagged[on_map] = result.error[ebsd_map.index_map[on_map]] == 6
    settings["no_signal_points"] = int(flagged.sum())
    if flagged.any():
        warnings.warn(
            f"{ebsd_map.path.name}: {no_signal_summary(flagged, have=on_map)}; not indexed (CTF error 6)",
            NoSignalWarning,
            stacklevel=2,
        )
    return MapIndexing(
        result=result, nav_shape=(nr, nc), index_map=ebsd_map.index_map.copy(), step_um=tuple(ebsd_map.step_um),
        detector=detector, phases=phases, settings=settings,
    )
