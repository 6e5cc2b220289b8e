"""What the explorer serves: patterns, overlays and base maps of one open map file.

:class:`MapSource` opens the map file once and keeps it open. Patterns are
read a whole HDF5 chunk at a time into a cache of decoded patterns, with a
read-ahead thread around the last point, so moving the mouse over
neighbouring points decodes each stored chunk once. Averaged, corrected and
processed patterns come from :mod:`kikuchi.process` (the same numbers as the
library gives); band overlays from :mod:`kikuchi.bands` and
:mod:`kikuchi.simulate.geometric`; base maps from :mod:`kikuchi.explore.layers`.

Every request the server passes on has already been parsed to integers and
names; :class:`MapSource` checks them against what the file offers and
raises :class:`RequestError` (answered with a 4xx status) for anything else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi._cpus import available_cpus
from kikuchi.explore.layers import (
    PointOrientations,
    find_layers,
    ipf_key_png,
    orientations_from_file,
    orientations_from_map,
    orientations_from_omap,
)
from kikuchi.explore.match import NoMatch, PatternMatcher, PointMatch
from kikuchi.io.mapstore import PROCESSED, RAW, EBSDMap, open_map

__all__ = ["MapSource", "PatternQuery", "RequestError", "MAX_NLPAR", "MAX_NPA"]

_logger = logging.getLogger(__name__)

#: Largest neighbour-averaging radius the explorer offers.
MAX_NPA = 10
#: Largest NLPAR search radius the explorer offers (a window of 11 x 11 map points).
MAX_NLPAR = 5
#: Bytes of decoded patterns kept in memory by one MapSource.
PATTERN_CACHE_BYTES = 128 << 20
#: Finished patterns (averaged, processed) kept for repeated requests (a save after a look).
_RESULTS = 32
#: Most bands the band overlay detects.
MAX_BANDS = 30
#: Preset of the "fully processed" signal when the page names none.
DEFAULT_PRESET = "detailed"


class RequestError(ValueError):
    """A request the explorer refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PatternQuery:
    """Which pattern to serve: map position, neighbours averaged (NPA or NLPAR), signal and its options.

    ``nlpar`` is the NLPAR search radius (0: off), ``nlpar_lambda`` its
    lambda ('auto' or a number, as text).
    """

    row: int
    col: int
    npa: int = 0
    signal: str = "raw"
    options: tuple[tuple[str, Any], ...] = ()
    nlpar: int = 0
    nlpar_lambda: str = "auto"

    @property
    def key(self) -> tuple:
        return (self.row, self.col, self.npa, self.signal, self.options, self.nlpar, self.nlpar_lambda if self.nlpar else "")


def _window_radius(query: PatternQuery) -> int:
    """Map steps of neighbours a pattern needs: NPA's n, or the NLPAR search radius + 1 (+ 1 more for its automatic lambda)."""
    if query.nlpar:
        return query.nlpar + (2 if query.nlpar_lambda == "auto" else 1)
    return query.npa


def _local_choice(choice: Any, radius: int) -> str:
    return f"auto on the {choice.points} points within {radius} steps (kikuchi process chooses it on the whole map)"


class _PatternCache:
    """Decoded patterns by storage index, least recently used dropped first (thread-safe)."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get_many(self, indices: np.ndarray) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        with self._lock:
            for i in indices.tolist():
                p = self._items.get(i)
                if p is not None:
                    self._items.move_to_end(i)
                    out[i] = p
        return out

    def put_many(self, items: dict[int, np.ndarray]) -> None:
        with self._lock:
            for i, p in items.items():
                if i in self._items:
                    continue
                p.setflags(write=False)
                self._items[i] = p
                self._bytes += p.nbytes
            while self._bytes > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes


class _Patterns:
    """Cached reading of one pattern dataset of the map file, whole HDF5 chunks at a time.

    Decompressing a chunk is most of the cost of a new pattern (about 10 ms
    for a 1 MiB chunk of nine 240 x 240 uint16 patterns), so every pattern
    of a chunk read goes into the cache, and a background thread reads the
    chunks around the last requested point while no request is running: the
    next point under a moving mouse is usually there already. Chunks are
    decompressed outside h5py's lock where the map store can
    (:meth:`kikuchi.io.mapstore.EBSDMap.read_chunk`), so the read-ahead gives
    way within a fraction of a millisecond when a request comes.
    """

    def __init__(self, ebsd_map: EBSDMap, cache_bytes: int, *, prefetch: bool = True):
        self.map = ebsd_map
        self.cache = _PatternCache(cache_bytes)
        self.chunk = ebsd_map.chunk_patterns
        self._active = 0
        self._active_lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._prefetch = _Prefetcher(self) if prefetch else None

    def close(self) -> None:
        if self._prefetch is not None:
            self._prefetch.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def _pool(self) -> ThreadPoolExecutor:
        with self._active_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=min(4, available_cpus()), thread_name_prefix="kikuchi-explore-read")
            return self._executor

    @property
    def busy(self) -> bool:
        return self._active > 0

    def has_chunk(self, chunk: int) -> bool:
        start = chunk * self.chunk
        stop = min(start + self.chunk, self.map.n_patterns)
        return len(self.cache.get_many(np.array([start, stop - 1]))) == 2

    def load_chunk(self, chunk: int, *, cancel: Callable[[], bool] | None = None) -> dict[int, np.ndarray]:
        """Read one whole chunk into the cache; empty when ``cancel()`` stopped it."""
        block = self.map.read_chunk(chunk, cancel=cancel)
        if block is None:
            return {}
        start = chunk * self.chunk
        read = dict(zip(range(start, start + len(block)), block))
        self.cache.put_many(read)
        return read

    def window(self, row: int, col: int, radius: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """Patterns of the map block within ``radius`` of (row, col), clipped to the map.

        Returns the block (n_rows, n_cols, h, w) (zeros where there is no
        pattern), the (n_rows, n_cols) mask of points with a pattern and the
        position of (row, col) inside the block.
        """
        with self._active_lock:
            self._active += 1
        try:
            rows, cols = self.map.nav_shape
            r0, r1 = max(0, row - radius), min(rows, row + radius + 1)
            c0, c1 = max(0, col - radius), min(cols, col + radius + 1)
            sub_index = self.map.index_map[r0:r1, c0:c1]
            have = sub_index >= 0
            wanted = np.unique(sub_index[have])
            found = self.cache.get_many(wanted)
            missing = np.array([i for i in wanted.tolist() if i not in found], dtype=np.int64)
            if missing.size:
                read: dict[int, np.ndarray] = {}
                chunks = np.unique(missing // self.chunk).tolist()
                if len(chunks) > 1:  # zlib releases the GIL: decode on all cores (h5py's own reads take turns)
                    for part in self._pool().map(self.load_chunk, chunks):
                        read.update(part)
                else:
                    for chunk in chunks:
                        read.update(self.load_chunk(chunk))
                found.update((i, read[i]) for i in missing.tolist())
            h, w = self.map.pattern_shape
            out = np.zeros((r1 - r0, c1 - c0, h, w), dtype=self.map.dtype)
            for (i, j), k in zip(np.argwhere(have).tolist(), sub_index[have].tolist()):
                out[i, j] = found[k]
        finally:
            with self._active_lock:
                self._active -= 1
        if self._prefetch is not None:
            self._prefetch.hint(row, col, radius)
        return out, have, (row - r0, col - c0)

    def chunks_near(self, row: int, col: int, *, rows: int = 1, cols: int = 2) -> list[int]:
        """Chunks of the points within ``rows`` map rows and ``cols`` columns of (row, col), nearest first."""
        n_rows, n_cols = self.map.nav_shape
        dr, dc = np.mgrid[-rows : rows + 1, -cols : cols + 1]
        order = np.argsort((dr**2 + dc**2).ravel(), kind="stable")
        r = row + dr.ravel()[order]
        c = col + dc.ravel()[order]
        inside = (r >= 0) & (r < n_rows) & (c >= 0) & (c < n_cols)
        index = self.map.index_map[r[inside], c[inside]]
        chunks = index[index >= 0] // self.chunk
        _, first = np.unique(chunks, return_index=True)
        return chunks[np.sort(first)].tolist()


class _Prefetcher:
    """Background thread: reads the chunks around the last hinted point while the server is idle."""

    def __init__(self, patterns: _Patterns):
        self._patterns = patterns
        self._target: tuple[int, int, int] | None = None
        self._stopped = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def hint(self, row: int, col: int, radius: int = 0) -> None:
        """Read ahead around (row, col): the windows of radius ``radius`` of the neighbouring points."""
        with self._cond:
            if self._stopped:
                return
            self._target = (row, col, radius)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kikuchi-explore-prefetch", daemon=True)
                self._thread.start()
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _interrupted(self) -> bool:
        return self._stopped or self._target is not None or self._patterns.busy

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._target is None and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                row, col, radius = self._target
                self._target = None
            for chunk in self._patterns.chunks_near(row, col, rows=radius + 1, cols=radius + 2):
                while self._patterns.busy and not self._stopped:
                    time.sleep(0.002)  # requests first
                with self._cond:
                    if self._stopped or self._target is not None:
                        break  # a newer point: start again around it
                if not self._patterns.has_chunk(chunk):
                    try:
                        # stops in the middle of the chunk as soon as a request or a newer point comes
                        self._patterns.load_chunk(chunk, cancel=self._interrupted)
                    except Exception:  # a closed or broken file: the request path reports it
                        _logger.debug("explorer: prefetch of chunk %d failed", chunk, exc_info=True)
                        return


class MapSource:
    """Patterns and base maps of one map file, for the explorer server.

    Parameters
    ----------
    path
        Map file (see :func:`kikuchi.open`).
    orientations
        Orientation map of the same grid whose orientations and columns the
        explorer shows: a CTF/ANG path or a :class:`kikuchi.OrientationMap`;
        default: the Euler angles stored in the map file, if any.
    master_pattern
        Master pattern of the orientations' phase for the pattern-matching
        view (:mod:`kikuchi.explore.match`): a
        :class:`kikuchi.simulate.MasterPattern`, an EMsoft file or
        ``'kinematical:PHASE[@KV]'`` (see :func:`kikuchi.refine.load_master_pattern`);
        needs orientations. None: no such view.
    energy
        Energy bins of an EMsoft master pattern ('highest', 'weighted' or keV).
    phase
        Phase (id or name) of the orientations the master pattern is for
        (default: the only one, or the one named as the master pattern's).
    sigma, background, signal_mask
        Pattern preparation of the view, as ``kikuchi refine`` prepares
        patterns: dynamic background sigma (pixels), subtract the
        backgrounds, compare inside the largest circle only. None (default):
        as the refinement that wrote the orientations prepared them, where
        its settings are in the orientation map (``kikuchi refine``'s HDF5),
        so the view's NCC is the file's; else width / 25, True, True.
    cache_bytes
        Memory for decoded patterns (the HDF5 chunk cache comes on top).
    prefetch
        Read the chunks around the last requested point in a background
        thread while no request runs.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from kikuchi.io.mapstore import MapWriter
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.h5"
    >>> with MapWriter(p, nav_shape=(2, 3), pattern_shape=(4, 5), dtype="uint16") as w:
    ...     w.write(0, np.arange(6 * 20, dtype=np.uint16).reshape(6, 4, 5))
    >>> with MapSource(p) as source:
    ...     int(source.pattern(PatternQuery(row=1, col=2))[0, 0])
    100
    """

    def __init__(
        self,
        path: str | Path,
        *,
        orientations: str | Path | PointOrientations | Any | None = None,
        master_pattern: str | Path | Any | None = None,
        energy: str | float = "highest",
        phase: str | int | None = None,
        sigma: float | None = None,
        background: bool | None = None,
        signal_mask: bool | None = None,
        cache_bytes: int = PATTERN_CACHE_BYTES,
        prefetch: bool = True,
    ):
        self.path = Path(path)
        self.map = open_map(self.path)
        self._closers: list[Callable[[], None]] = [self.map.close]
        if self.map.dataset != RAW and RAW in self.map.datasets:  # a vendor's file that opens on its processed patterns
            raw = self.map.with_dataset(RAW)
            self.map.close()
            self.map, self._closers = raw, [raw.close]
        try:
            self._base = _Patterns(self.map, cache_bytes, prefetch=prefetch)
            self._stored: _Patterns | None = None
            if self.map.dataset == RAW and PROCESSED in self.map.datasets:
                stored = self.map.with_dataset(PROCESSED)
                self._closers.append(stored.close)
                self._stored = _Patterns(stored, cache_bytes // 2, prefetch=prefetch)
            self._static_background = self.map.static_background
            if orientations is None:
                self.orientations = orientations_from_map(self.map)
            elif isinstance(orientations, PointOrientations):
                self.orientations = orientations
            elif hasattr(orientations, "euler") and hasattr(orientations, "phase_id"):  # an OrientationMap
                self.orientations = orientations_from_omap(orientations, self.map.nav_shape)
            else:
                self.orientations = orientations_from_file(orientations, self.map.nav_shape)
            self.layers = find_layers(self.map, self.orientations)
            self.matcher = self._matcher(master_pattern, energy=energy, phase=phase, sigma=sigma, background=background, signal_mask=signal_mask)
            self._matches: OrderedDict[tuple[int, int], PointMatch] = OrderedDict()
            self._lines_lock = threading.Lock()
            self._detector: Any = None
            self._reflectors: dict[int, Any] = {}
            self._ipf_keys: dict[int, bytes] = {}
            self._results: OrderedDict[tuple, tuple[np.ndarray, dict[str, Any]]] = OrderedDict()
            self._results_lock = threading.Lock()
            self.signals = self._signals()
        except BaseException:
            self.close()
            raise

    def _matcher(
        self,
        master_pattern: Any,
        *,
        energy: str | float,
        phase: str | int | None,
        sigma: float | None,
        background: bool | None,
        signal_mask: bool | None,
    ) -> PatternMatcher | None:
        """The pattern-matching view's matcher, or None without a master pattern."""
        if master_pattern is None:
            return None
        if self.orientations is None:
            raise ValueError(
                f"{self.path.name} holds no orientations to simulate the patterns at: give the orientation map indexed "
                "from it (--orientations) with the master pattern"
            )
        from kikuchi.simulate.master import MasterPattern

        master = master_pattern
        if not isinstance(master, MasterPattern):
            from kikuchi.refine import load_master_pattern

            master = load_master_pattern(master_pattern, kv=self.map.kv, energy=energy)
        detector = self.map.detector
        if tuple(detector.shape) != tuple(self.map.pattern_shape):
            raise ValueError(f"{self.path.name}: detector shape {tuple(detector.shape)} differs from the pattern shape {tuple(self.map.pattern_shape)}")
        written = self.orientations.settings  # the refinement's preparation, where it wrote the orientations
        if background is None:
            background = bool(written.get("dynamic_background", True))
        if signal_mask is None:
            signal_mask = written.get("mask_pixels", 0) is not None
        if sigma is None and written.get("sigma") is not None:
            sigma = float(written["sigma"])
        matcher = PatternMatcher(
            master, detector, self.orientations, phase=phase, static_background=self._static_background, sigma=sigma,
            background=background, mask=signal_mask,
        )
        matcher.settings_from = "the refinement that wrote the orientations" if written else "defaults and options"
        return matcher

    # -- lifetime ------------------------------------------------------------
    def close(self) -> None:
        """Stop reading ahead and close the map file(s)."""
        for patterns in (getattr(self, "_base", None), getattr(self, "_stored", None)):
            if patterns is not None:
                patterns.close()
        for close in reversed(self._closers):
            close()
        self._closers.clear()

    def __enter__(self) -> MapSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the file offers --------------------------------------------------
    def _signals(self) -> list[dict[str, Any]]:
        """The pattern signals the page may ask for, with their options.

        An option is ``{"choices": [...], "default": ...}`` or a number
        ``{"number": true, "min": ..., "max": ..., "default": ...}``; options
        travel as query parameters of the same name.
        """
        out: list[dict[str, Any]] = []
        if self.map.dataset == RAW:
            out.append({"name": "raw", "label": "raw", "options": {}})
            if self._static_background is not None:
                out.append(
                    {
                        "name": "static",
                        "label": "static background corrected",
                        "options": {"op": {"choices": ["divide", "subtract"], "default": "divide"}},
                    }
                )
            out.append({"name": "processed", "label": "fully processed", "options": self._processing_options()})
        if self.map.dataset == PROCESSED or self._stored is not None:
            stored = {"name": "stored", "label": "stored processed (Patterns)", "options": {}}
            if self.map.processing is not None:
                stored["parameters"] = self.map.processing
            out.append(stored)
        return out

    def _processing_options(self) -> dict[str, Any]:
        from kikuchi.process import PRESETS
        from kikuchi.process.pipeline import CONTRAST, DTYPES, DYNAMIC, STATIC

        h, w = self.map.pattern_shape
        divisors = [f for f in range(1, 17) if h % f == 0 and w % f == 0]
        default = PRESETS[DEFAULT_PRESET]
        options: dict[str, Any] = {
            "preset": {"choices": list(PRESETS), "default": DEFAULT_PRESET},
            "binning": {"choices": ["auto", *map(str, divisors)], "default": str(default.binning)},
            "static": {"choices": list(STATIC), "default": default.static},
            "dynamic": {"choices": list(DYNAMIC), "default": default.dynamic},
            "sigma": {"number": True, "min": 0.1, "max": 1000.0, "default": None, "unit": "px"},
            "contrast": {"choices": list(CONTRAST), "default": default.contrast},
            "clow": {"number": True, "min": 0.0, "max": 100.0, "default": default.clow, "unit": "%"},
            "chigh": {"number": True, "min": 0.0, "max": 100.0, "default": default.chigh, "unit": "%"},
            "dtype": {"choices": list(DTYPES), "default": default.dtype},
            "mask": {"choices": ["off", "on"], "default": "on" if default.mask else "off"},
        }
        if self._static_background is None:
            del options["static"]
        return options

    @property
    def option_names(self) -> set[str]:
        """Every option name of every signal (the query parameters beyond row, col, npa, signal)."""
        return {name for signal in self.signals for name in signal["options"]}

    def info(self) -> dict[str, Any]:
        """JSON-ready description of the map for the page."""
        rows, cols = self.map.nav_shape
        have = self.map.index_map >= 0
        return {
            "file": self.path.name,
            "nav_shape": [rows, cols],
            "pattern_shape": list(self.map.pattern_shape),
            "dtype": str(self.map.dtype),
            "step_um": list(self.map.step_um),
            "dataset": self.map.dataset,
            "has_pattern": None if have.all() else have.astype(int).ravel().tolist(),
            "max_npa": MAX_NPA,
            "max_nlpar": MAX_NLPAR,
            "signals": self.signals,
            "presets": _presets(),
            "maps": [layer.describe() for layer in self.layers.values()],
            "static_background": self._static_background is not None,
            "overlays": self.overlays,
            "orientations": None if self.orientations is None else self.orientations.source,
            "match": None if self.matcher is None else self.matcher.describe(),
        }

    @property
    def overlays(self) -> list[str]:
        """Overlays the page may draw on the pattern: 'bands' (detected) and 'lines' (simulated, when orientations are known)."""
        return ["bands", "lines"] if self.orientations is not None and self.orientations.phases else ["bands"]

    # -- patterns ------------------------------------------------------------
    def check_position(self, row: int, col: int) -> None:
        """Raise :class:`RequestError` (404) unless (row, col) is a map point with a pattern."""
        rows, cols = self.map.nav_shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise RequestError(f"map position (row {row}, col {col}) is outside the {rows} x {cols} map", status=404)
        if self.map.index_map[row, col] < 0:
            raise RequestError(f"no pattern at map position (row {row}, col {col})", status=404)

    def pattern(self, query: PatternQuery) -> np.ndarray:
        """The pattern the page asked for, shape (h, w) (smaller when binned).

        Raises
        ------
        RequestError
            Position outside the map or without a pattern (404), a signal or
            option this file does not offer, or too many neighbours (400).
        """
        return self.pattern_with_info(query)[0]

    def pattern_with_info(self, query: PatternQuery) -> tuple[np.ndarray, dict[str, Any]]:
        """The pattern and the parameters that made it (JSON-ready)."""
        self.check_position(query.row, query.col)
        if not 0 <= query.npa <= MAX_NPA:
            raise RequestError(f"npa={query.npa}: neighbour averaging takes 0..{MAX_NPA} neighbours")
        if not 0 <= query.nlpar <= MAX_NLPAR:
            raise RequestError(f"nlpar={query.nlpar}: the NLPAR search radius is 0 (off) to {MAX_NLPAR} map steps")
        if query.nlpar and query.npa:
            raise RequestError(f"npa={query.npa} with nlpar={query.nlpar}: choose one neighbour averaging")
        if query.nlpar:
            from kikuchi.process.nlpar import check_lambda

            try:
                check_lambda(query.nlpar_lambda)
            except ValueError:
                raise RequestError(f"lambda={query.nlpar_lambda!r}: NLPAR lambda is 'auto' or a number > 0") from None
        signals = {s["name"]: s for s in self.signals}
        if query.signal not in signals:
            raise RequestError(f"signal {query.signal!r} is not offered for this file (choose from {', '.join(signals)})")
        options = _parse_options(signals[query.signal], dict(query.options))
        with self._results_lock:
            hit = self._results.get(query.key)
            if hit is not None:
                self._results.move_to_end(query.key)
                return hit
        result = self._compute(query, options)
        result[0].setflags(write=False)
        with self._results_lock:
            self._results[query.key] = result
            while len(self._results) > _RESULTS:
                self._results.popitem(last=False)
        return result

    def _compute(self, query: PatternQuery, options: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        info: dict[str, Any] = {"row": query.row, "col": query.col, "npa": query.npa, "signal": query.signal}
        if query.npa:
            info["npa_window"] = f"{2 * query.npa + 1} x {2 * query.npa + 1}"
        if query.nlpar:
            info["nlpar"] = query.nlpar
        if query.signal == "processed":
            return self._processed(query, options, info)
        source = self._stored if (query.signal == "stored" and self._stored is not None) else self._base
        block, have, (i, j) = source.window(query.row, query.col, _window_radius(query))
        if query.signal == "static":
            from kikuchi.process import remove_static_background

            op = options.get("op", "divide")
            info["static_background"] = op
            corrected = np.zeros(block.shape, dtype=np.float32)
            corrected[have] = remove_static_background(block[have], self._static_background, operation=op, dtype=np.float32)
            block = corrected
        if query.nlpar:
            return self._nlpar_point(np.asarray(block, dtype=np.float32), have, (i, j), query, info), info
        if query.npa == 0:
            return np.array(block[i, j]), info
        from kikuchi.process import average_neighbours

        # one point of kikuchi.process.average_neighbours (flat weights over the points present)
        return average_neighbours(block, n=query.npa, have=have, rows=(i, i + 1), cols=(j, j + 1))[0, 0], info

    def _processed(self, query: PatternQuery, options: dict[str, Any], info: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        from kikuchi.process import PRESETS, process_patterns
        from kikuchi.process.pipeline import prepare, process_block

        settings = PRESETS[options.pop("preset", DEFAULT_PRESET)]
        changes: dict[str, Any] = {}
        for key, value in options.items():
            if key == "binning":
                changes[key] = value if value == "auto" else int(value)
            elif key == "mask":
                changes[key] = value == "on"
            else:
                changes[key] = value
        if query.nlpar:
            changes.update(nlpar=True, nlpar_search_radius=query.nlpar, nlpar_lambda=query.nlpar_lambda)
        try:
            settings = settings.replace(**changes, npa=query.npa)
            prepared = prepare(settings, self.map.pattern_shape, self._static_background)
        except ValueError as exc:
            raise RequestError(f"processing parameters: {exc}") from None
        block, have, (i, j) = self._base.window(query.row, query.col, _window_radius(query))
        try:  # parameters that pass `prepare` may still not fit these patterns (a filter wider than a binned pattern)
            if query.nlpar and prepared.nlpar_lambda is None:
                choice = self._local_lambda(block, have, (i, j), query.nlpar, prepared)
                prepared = prepared.with_lambda(choice)
                info["nlpar_lambda_choice"] = _local_choice(choice, query.nlpar)
            info["processing"] = prepared.describe()
            if query.npa == 0 and query.nlpar == 0:
                return process_patterns(block[0, 0], settings, static_background=self._static_background), info
            # the pipeline's own chunk function on the window: exactly what `kikuchi process` computes here
            out = process_block(block, have=have, core=(i, i + 1), prepared=prepared, core_cols=(j, j + 1))
        except ValueError as exc:
            raise RequestError(f"processing parameters: {exc}") from None
        if query.nlpar:
            info["nlpar_lambda"] = prepared.nlpar_lambda
            info.setdefault("nlpar_lambda_choice", "given")
        return np.array(out[0, 0]), info

    @staticmethod
    def _local_lambda(block: np.ndarray, have: np.ndarray, at: tuple[int, int], radius: int, prepared: Any = None) -> Any:
        """The automatic NLPAR lambda chosen on the points of the window within ``radius`` of ``at``.

        The explorer reads a window, not the map: ``kikuchi process`` chooses
        lambda on every point of the map, so its lambda may differ a little.
        With ``prepared``, the points are processed (steps 1-4) first.
        """
        from kikuchi.process.nlpar import choose_lambda, neighbour_distances_block
        from kikuchi.process.pipeline import nlpar_lambda_block

        (i, j), (rows, cols) = at, block.shape[:2]
        core, core_cols = (max(0, i - radius), min(rows, i + radius + 1)), (max(0, j - radius), min(cols, j + radius + 1))
        if prepared is not None:
            d = nlpar_lambda_block(block, have=have, core=core, prepared=prepared, core_cols=core_cols)
            return choose_lambda(d[d[..., 8] > 0][:, :8])
        d = neighbour_distances_block(block, have, pixels=None, rows=core, cols=core_cols)
        return choose_lambda(d[have[core[0] : core[1], core_cols[0] : core_cols[1]]])

    def _nlpar_point(self, block: np.ndarray, have: np.ndarray, at: tuple[int, int], query: PatternQuery, info: dict[str, Any]) -> np.ndarray:
        """NLPAR of the pattern at ``at`` of a float32 window (one point of :func:`kikuchi.process.nlpar`)."""
        from kikuchi.process import nlpar

        i, j = at
        if query.nlpar_lambda == "auto":
            try:
                choice = self._local_lambda(block, have, at, query.nlpar)
            except ValueError as exc:  # no neighbour with a pattern around this point
                raise RequestError(f"NLPAR at (row {query.row}, col {query.col}): {exc}") from None
            lam, how = choice.lam, _local_choice(choice, query.nlpar)
        else:
            lam, how = float(query.nlpar_lambda), "given"
        info.update(nlpar_lambda=lam, nlpar_lambda_choice=how)
        return nlpar(block, lam=lam, search_radius=query.nlpar, have=have, rows=(i, i + 1), cols=(j, j + 1))[0, 0]

    # -- pattern matching ------------------------------------------------------
    def match(self, row: int, col: int) -> PointMatch:
        """Experiment, simulation and difference at (row, col) with their NCC (:mod:`kikuchi.explore.match`).

        The experiment is the point's own pattern (no neighbour averaging), of
        the map's raw patterns, prepared as ``kikuchi refine`` prepares it.

        Raises
        ------
        RequestError
            Outside the map or no pattern (404); no master pattern given, or
            no orientation of its phase at the point (404).
        """
        found = self._match_or_note(row, col)
        if isinstance(found, str):
            raise RequestError(found, status=404)
        return found

    def match_info(self, row: int, col: int) -> dict[str, Any]:
        """JSON-ready: the NCC at (row, col) and what made the simulation, or a ``note`` (and NCC None) saying why there is none."""
        found = self._match_or_note(row, col)
        if isinstance(found, str):
            return {"row": row, "col": col, "ncc": None, "note": found}
        return found.describe()

    def _match_or_note(self, row: int, col: int) -> PointMatch | str:
        self.check_position(row, col)
        if self.matcher is None:
            raise RequestError(
                "no pattern-matching view: start the explorer with a master pattern (--master-pattern, and orientations)", status=404
            )
        with self._results_lock:
            hit = self._matches.get((row, col))
            if hit is not None:
                self._matches.move_to_end((row, col))
                return hit
        try:
            self.matcher.orientation(row, col)
        except NoMatch as exc:
            return str(exc)
        block, _, _ = self._base.window(row, col, 0)
        result = self.matcher.match(row, col, block[0, 0])
        for a in (result.experiment, result.simulation, result.difference):
            a.setflags(write=False)
        with self._results_lock:
            self._matches[(row, col)] = result
            while len(self._matches) > _RESULTS:
                self._matches.popitem(last=False)
        return result

    # -- overlays --------------------------------------------------------------
    def bands(self, query: PatternQuery, *, n_bands: int = 9) -> dict[str, Any]:
        """Kikuchi bands detected in the pattern of ``query`` (grey-level Radon transform).

        Returns a JSON-ready dict: the pattern ``shape`` and, per band, its
        centre line's end points ``x0, y0, x1, y1`` on the pattern border
        (pixel coordinates: x = column, y = row) with ``rho_px``,
        ``theta_deg``, ``intensity`` and ``width_px``, strongest first.
        """
        from kikuchi.bands import detect_bands

        if not 1 <= n_bands <= MAX_BANDS:
            raise RequestError(f"n_bands={n_bands}: detect 1..{MAX_BANDS} bands")
        pattern = self.pattern(query)
        try:
            found = detect_bands(pattern, n_bands=n_bands)
        except ValueError as exc:  # a pattern too small for the Radon transform (a heavily binned one)
            raise RequestError(f"bands: {exc}") from None
        ends = found.endpoints(pattern.shape)
        bands = [
            {
                "x0": float(e[0]), "y0": float(e[1]), "x1": float(e[2]), "y1": float(e[3]),
                "rho_px": float(r), "theta_deg": float(np.degrees(t)), "intensity": float(i), "width_px": float(w),
            }
            for e, r, t, i, w in zip(ends, found.rho, found.theta, found.intensity, found.width)
            if np.isfinite(e).all()
        ]
        return {"row": query.row, "col": query.col, "shape": list(pattern.shape), "bands": bands}

    def lines(self, query: PatternQuery) -> dict[str, Any]:
        """Simulated band centre lines (with hkl) for the orientation at the point of ``query``.

        Geometry from the map file's detector (pattern centre per point,
        tilts), orientation and phase from the orientations of the explorer,
        the strongest reflectors of the phase (:func:`kikuchi.crystal.reflectors`).
        Returns a JSON-ready dict: detector ``shape`` and per line ``hkl`` and
        end points ``x0, y0, x1, y1`` (x = column, y = row, pixels of the
        unbinned pattern); no lines where the point has no orientation.
        """
        self.check_position(query.row, query.col)
        if "lines" not in self.overlays:
            raise RequestError("this map has no orientations: no simulated band lines (give an orientation map, --orientations)")
        from kikuchi.simulate.geometric import band_lines

        o = self.orientations
        assert o is not None
        answer: dict[str, Any] = {"row": query.row, "col": query.col, "shape": list(self.map.pattern_shape), "bands": []}
        phase = o.phase_of(query.row, query.col)
        if phase is None:
            answer["note"] = "no orientation at this point"
            return answer
        euler = o.euler[query.row, query.col]
        with self._lines_lock:
            if self._detector is None:
                self._detector = self.map.detector
            refl = self._reflectors.get(int(phase["id"]))
            if refl is None:
                refl = self._reflectors[int(phase["id"])] = _phase_reflectors(phase, kv=self.map.kv or 20.0)
        lines = band_lines(self._detector, euler, refl, index=(query.row, query.col))
        answer["phase"] = str(phase.get("name", phase["id"]))
        answer["euler_deg"] = [round(float(v), 3) for v in np.degrees(euler)]
        answer["bands"] = [
            {"hkl": _hkl_label(hkl), "x0": x0, "y0": y0, "x1": x1, "y1": y1} for hkl, (x0, y0, x1, y1) in lines
        ]
        return answer

    # -- base maps -----------------------------------------------------------
    def ipf_key_png(self, phase_id: int) -> bytes:
        """PNG of the IPF colour key of phase ``phase_id`` of the orientations (made once)."""
        phases = {} if self.orientations is None else {int(p["id"]): p for p in self.orientations.phases}
        if phase_id not in phases:
            raise RequestError(f"phase={phase_id}: no such phase (the orientations have {sorted(phases) or 'none'})", status=404)
        with self._lines_lock:
            png = self._ipf_keys.get(phase_id)
        if png is None:
            png = ipf_key_png(phases[phase_id])
            with self._lines_lock:
                self._ipf_keys[phase_id] = png
        return png

    def map_png(self, name: str) -> tuple[bytes, dict[str, Any]]:
        """PNG of base map ``name`` (computed once) and its description (range, legend)."""
        return self._layer(name).png()

    def map_values(self, name: str) -> np.ndarray:
        """The values (rows, cols) float32 of base map ``name``, for the page's readout under the mouse."""
        values = self._layer(name).values()
        if values is None:
            raise RequestError(f"base map {name!r} is a colour image: it has no values", status=404)
        return values

    def _layer(self, name: str) -> Any:
        layer = self.layers.get(name)
        if layer is None:
            raise RequestError(f"no base map {name!r} (this file offers {', '.join(self.layers)})", status=404)
        return layer


#: Reflectors drawn as simulated band lines: the strongest families up to this many planes.
LINE_REFLECTORS = 30


def _phase_reflectors(phase: dict[str, Any], *, kv: float) -> Any:
    """The strongest reflectors of a map file phase (atoms assumed quietly when the file has none)."""
    import warnings

    from kikuchi.crystal import AssumedAtomsWarning, Phase, reflectors

    with warnings.catch_warnings():
        # band positions do not depend on the atoms; only which weak bands are left out does
        warnings.simplefilter("ignore", AssumedAtomsWarning)
        return reflectors(Phase.from_phase_info(phase), kv=kv, n=LINE_REFLECTORS)


def _hkl_label(hkl: tuple[int, ...]) -> str:
    """Miller indices as written on figures: (1-11), (10-12) for 4 indices, with spaces when any index has two digits.

    >>> _hkl_label((1, -1, 1)), _hkl_label((0, 0, 12))
    ('(1-11)', '(0 0 12)')
    """
    sep = " " if any(abs(int(v)) > 9 for v in hkl) else ""
    return "(" + sep.join(str(int(v)) for v in hkl) + ")"


def _presets() -> dict[str, dict[str, Any]]:
    """Every parameter of each processing preset (the page fills its form from them)."""
    from kikuchi.process import PRESETS

    return {name: settings.to_dict() for name, settings in PRESETS.items()}


def _parse_options(signal: dict[str, Any], given: dict[str, str]) -> dict[str, Any]:
    """Check the options of a pattern request against the signal's declared options."""
    allowed = signal["options"]
    out: dict[str, Any] = {}
    for key, text in given.items():
        spec = allowed.get(key)
        if spec is None:
            raise RequestError(f"signal {signal['name']!r} takes no option {key!r}")
        if text == "":
            continue  # empty: the default
        if spec.get("number"):
            try:
                value = float(text)
            except ValueError:
                raise RequestError(f"{key}={text[:40]!r} is not a number") from None
            if not (np.isfinite(value) and spec["min"] <= value <= spec["max"]):
                raise RequestError(f"{key}={text[:40]}: must lie in {spec['min']:g}..{spec['max']:g}")
            out[key] = value
        else:
            if text not in spec["choices"]:
                raise RequestError(f"{key}={text[:40]!r}: choose from {', '.join(map(str, spec['choices']))}")
            out[key] = text
    return out
