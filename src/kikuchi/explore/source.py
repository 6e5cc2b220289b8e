"""What the explorer serves: patterns and base maps of one open map file.

:class:`MapSource` opens the map file once and keeps it open: the HDF5 chunk
cache of the map store plus a small pattern cache here mean that moving the
mouse over neighbouring points decodes each stored chunk once. Every request
the server passes on has already been parsed to integers and names from
fixed lists; :class:`MapSource` checks the ranges again and raises
:class:`RequestError` (answered with a 4xx status) for anything else.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.explore.encode import display_uint8, image_png
from kikuchi.io.mapstore import PROCESSED, RAW, EBSDMap, MapPositionError, open_map

__all__ = ["MapLayer", "MapSource", "PatternQuery", "RequestError", "MAX_NPA"]

_logger = logging.getLogger(__name__)

#: Largest neighbour-averaging radius the explorer offers.
MAX_NPA = 10
#: Bytes of decoded patterns kept in memory by one MapSource.
PATTERN_CACHE_BYTES = 128 << 20

# Per-point datasets of the map store that are geometry, not maps to look at.
_NOT_MAPS = {"X BEAM", "Y BEAM", "BEAM X", "BEAM Y", "X Position", "Y Position", "PCX", "PCY", "DD", "phi1", "PHI", "phi2"}
# Friendly names of per-point datasets that indexing or imaging may store.
_LABELS = {
    "bse_map": "BSE (mean intensity)",
    "IQ": "image quality",
    "iq": "image quality",
    "BC": "band contrast",
    "bc": "band contrast",
    "BS": "band slope",
    "bs": "band slope",
    "MAD": "MAD (°)",
    "mad": "MAD (°)",
    "CI": "confidence index",
    "ci": "confidence index",
    "Fit": "fit (°)",
    "fit": "fit (°)",
    "Phase": "phase",
    "phase": "phase",
    "Bands": "detected bands",
    "bands": "detected bands",
    "Error": "indexing error code",
    "error": "indexing error code",
}
_CATEGORICAL = {"Phase", "phase", "phase_id", "Error", "error", "Bands", "bands"}
# Colours of categorical maps (phase 0 / not indexed is black).
_PALETTE = np.array(
    [
        (0, 0, 0),
        (230, 57, 70),
        (69, 123, 157),
        (42, 157, 143),
        (233, 196, 106),
        (244, 162, 97),
        (131, 56, 236),
        (58, 134, 255),
        (255, 190, 11),
        (138, 201, 38),
    ],
    dtype=np.uint8,
)


class RequestError(ValueError):
    """A request the explorer refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, *, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PatternQuery:
    """Which pattern to serve: map position, neighbours averaged, signal and its options."""

    row: int
    col: int
    npa: int = 0
    signal: str = "raw"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def key(self) -> tuple:
        return (self.row, self.col, self.npa, self.signal, self.options)


@dataclass
class MapLayer:
    """One base map the page can show.

    ``kind`` is 'scalar' (grey values with a range), 'rgb' (colour image) or
    'categorical' (integer classes with a legend). ``compute`` returns the
    (rows, cols) or (rows, cols, 3) array the first time the map is asked for.
    """

    name: str
    label: str
    kind: str
    compute: Callable[[], np.ndarray]
    note: str = ""
    _png: bytes | None = field(default=None, repr=False)
    _meta: dict[str, Any] = field(default_factory=dict, repr=False)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "kind": self.kind, "note": self.note, **self._meta}


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
    """Cached reading of one pattern dataset of the map file."""

    def __init__(self, ebsd_map: EBSDMap, cache_bytes: int):
        self.map = ebsd_map
        self.cache = _PatternCache(cache_bytes)
        self._lock = threading.Lock()

    def window(self, row: int, col: int, radius: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        """Patterns of the map block within ``radius`` of (row, col), clipped to the map.

        Returns the block (n_rows, n_cols, h, w) (zeros where there is no
        pattern), its index map (-1 where none) and the position of
        (row, col) inside the block.
        """
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
            # Contiguous runs of storage indices are read in one call each (one map row
            # of the window is one run for row-major files).
            breaks = np.flatnonzero(np.diff(missing) != 1) + 1
            with self._lock:  # h5py serialises anyway; keep the chunk cache warm in order
                for run in np.split(missing, breaks):
                    block = self.map.read(int(run[0]), int(run[-1]) + 1)
                    read.update(zip(run.tolist(), block))
            self.cache.put_many(read)
            found.update(read)
        h, w = self.map.pattern_shape
        out = np.zeros((r1 - r0, c1 - c0, h, w), dtype=self.map.dtype)
        for (i, j), k in zip(np.argwhere(have).tolist(), sub_index[have].tolist()):
            out[i, j] = found[k]
        return out, np.where(have, np.arange(sub_index.size).reshape(sub_index.shape), -1), (row - r0, col - c0)


def _capability(module: str, *names: str) -> tuple[Any, ...] | None:
    """The attributes ``names`` of ``module``, or None when that part of kikuchi is not available."""
    import importlib

    try:
        mod = importlib.import_module(module)
        return tuple(getattr(mod, n) for n in names)
    except (ImportError, AttributeError) as exc:
        _logger.debug("explorer: %s.%s not available (%s)", module, "/".join(names), exc)
        return None


class MapSource:
    """Patterns and base maps of one map file, for the explorer server.

    Parameters
    ----------
    path
        Map file (see :func:`kikuchi.open`).
    cache_bytes
        Memory for decoded patterns (the HDF5 chunk cache comes on top).

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

    def __init__(self, path: str | Path, *, cache_bytes: int = PATTERN_CACHE_BYTES):
        self.path = Path(path)
        self.map = open_map(self.path)
        self._closers: list[Callable[[], None]] = [self.map.close]
        try:
            self._base = _Patterns(self.map, cache_bytes)
            self._stored: _Patterns | None = None
            if self.map.dataset == RAW and PROCESSED in self.map.datasets:
                stored = self.map.with_dataset(PROCESSED)
                self._closers.append(stored.close)
                self._stored = _Patterns(stored, cache_bytes // 2)
            self._static_background = self.map.static_background
            self.layers: dict[str, MapLayer] = {}
            self._find_layers()
            self._layer_lock = threading.Lock()
            self.average_neighbours = _capability("kikuchi.process", "average_neighbours")
        except BaseException:
            self.close()
            raise

    # -- lifetime ------------------------------------------------------------
    def close(self) -> None:
        """Close the map file(s)."""
        for close in reversed(self._closers):
            close()
        self._closers.clear()

    def __enter__(self) -> MapSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the file offers --------------------------------------------------
    @property
    def signals(self) -> list[dict[str, Any]]:
        """The pattern signals the page may ask for, with their options."""
        out = []
        base = "raw" if self.map.dataset == RAW else "stored"
        out.append({"name": base, "label": "raw" if base == "raw" else "stored (processed)", "options": {}})
        if base == "raw" and self._static_background is not None:
            out.append(
                {
                    "name": "static",
                    "label": "static background corrected",
                    "options": {"op": {"choices": ["divide", "subtract"], "default": "divide"}},
                }
            )
        if self._stored is not None:
            out.append({"name": "stored", "label": "stored processed (Patterns)", "options": {}})
        return out

    @property
    def max_npa(self) -> int:
        return MAX_NPA if self.average_neighbours is not None else 0

    def info(self) -> dict[str, Any]:
        """JSON-ready description of the map for the page."""
        rows, cols = self.map.nav_shape
        return {
            "file": self.path.name,
            "nav_shape": [rows, cols],
            "pattern_shape": list(self.map.pattern_shape),
            "dtype": str(self.map.dtype),
            "step_um": list(self.map.step_um),
            "dataset": self.map.dataset,
            "has_pattern": (self.map.index_map >= 0).astype(int).ravel().tolist() if not (self.map.index_map >= 0).all() else None,
            "max_npa": self.max_npa,
            "signals": self.signals,
            "maps": [layer.describe() for layer in self.layers.values()],
            "static_background": self._static_background is not None,
        }

    # -- patterns ------------------------------------------------------------
    def check_position(self, row: int, col: int) -> None:
        rows, cols = self.map.nav_shape
        if not (0 <= row < rows and 0 <= col < cols):
            raise RequestError(f"map position (row {row}, col {col}) is outside the {rows} x {cols} map", status=404)
        if self.map.index_map[row, col] < 0:
            raise RequestError(f"no pattern at map position (row {row}, col {col})", status=404)

    def pattern(self, query: PatternQuery) -> np.ndarray:
        """The pattern the page asked for, shape (h, w).

        Raises
        ------
        RequestError
            Position outside the map or without a pattern (404), a signal or
            option this file does not offer, or too many neighbours (400).
        """
        self.check_position(query.row, query.col)
        if not 0 <= query.npa <= self.max_npa:
            raise RequestError(f"npa={query.npa}: neighbour averaging takes 0..{self.max_npa} neighbours")
        signals = {s["name"]: s for s in self.signals}
        if query.signal not in signals:
            raise RequestError(f"signal {query.signal!r} is not offered for this file (choose from {', '.join(signals)})")
        allowed = signals[query.signal]["options"]
        options = dict(query.options)
        for key, value in options.items():
            if key not in allowed:
                raise RequestError(f"signal {query.signal!r} takes no option {key!r}")
            if value not in allowed[key]["choices"]:
                raise RequestError(f"{key}={value!r}: choose from {', '.join(map(str, allowed[key]['choices']))}")
        source = self._stored if (query.signal == "stored" and self._stored is not None) else self._base
        pattern = self._averaged(source, query.row, query.col, query.npa)
        if query.signal == "static":
            pattern = self._static_corrected(pattern, op=options.get("op", "divide"))
        return pattern

    def _averaged(self, source: _Patterns, row: int, col: int, npa: int) -> np.ndarray:
        if npa == 0:
            block, _, (i, j) = source.window(row, col, 0)
            return block[i, j]
        assert self.average_neighbours is not None
        (average_neighbours,) = self.average_neighbours
        block, index_map, (i, j) = source.window(row, col, npa)
        return np.asarray(average_neighbours(block, n=npa, index_map=index_map)[i, j])

    def _static_corrected(self, pattern: np.ndarray, *, op: str) -> np.ndarray:
        background = self._static_background.astype(np.float32)
        p = pattern.astype(np.float32)
        if op == "subtract":
            return p - background
        return p / np.where(background > 0, background, np.float32(1.0))

    # -- base maps -----------------------------------------------------------
    def _find_layers(self) -> None:
        m = self.map
        self._add(MapLayer("bse", _LABELS["bse_map"], "scalar", lambda: m.bse_map))
        n = m.n_patterns
        rows, cols = m.nav_shape
        for name, ds in m.data.items():
            if not hasattr(ds, "shape") or name in _NOT_MAPS or name == "bse_map" or ds.dtype.kind not in "iufb":
                continue
            if ds.shape == (n,):
                self._add(
                    MapLayer(
                        f"data:{name}",
                        _LABELS.get(name, name),
                        "categorical" if name in _CATEGORICAL else "scalar",
                        lambda name=name: self._per_point(name),
                    )
                )
            elif ds.shape == (rows, cols) or ds.shape == (rows, cols, 3):
                kind = "rgb" if ds.ndim == 3 else ("categorical" if name in _CATEGORICAL else "scalar")
                self._add(MapLayer(f"data:{name}", _LABELS.get(name, name), kind, lambda ds=ds: np.asarray(ds[()])))

    def _add(self, layer: MapLayer) -> None:
        self.layers[layer.name] = layer

    def _per_point(self, name: str) -> np.ndarray:
        values = np.asarray(self.map.data[name][()], dtype=np.float64)
        out = np.full(self.map.nav_shape, np.nan)
        have = self.map.index_map >= 0
        out[have] = values[self.map.index_map[have]]
        return out

    def map_png(self, name: str) -> tuple[bytes, dict[str, Any]]:
        """PNG of base map ``name`` (computed once) and its description (range, legend)."""
        layer = self.layers.get(name)
        if layer is None:
            raise RequestError(f"no base map {name!r} (this file offers {', '.join(self.layers)})", status=404)
        with self._layer_lock:
            if layer._png is None:
                layer._png, layer._meta = _render(layer.compute(), layer.kind)
        return layer._png, layer.describe()


def _render(values: np.ndarray, kind: str) -> tuple[bytes, dict[str, Any]]:
    """8-bit PNG of a map and what the page needs to label it."""
    values = np.asarray(values)
    if kind == "rgb":
        rgb = values.astype(np.float64)
        valid = np.isfinite(rgb).all(axis=-1)
        if rgb[valid].size and rgb[valid].max() <= 1.0:
            rgb = rgb * 255.0
        rgb8 = np.clip(np.rint(np.nan_to_num(rgb)), 0, 255).astype(np.uint8)
        return image_png(rgb8, alpha=None if valid.all() else valid), {}
    valid = np.isfinite(values)
    if kind == "categorical":
        classes = np.where(valid, values, 0).astype(np.int64)
        present = sorted(int(v) for v in np.unique(classes[valid]))
        rgb8 = _PALETTE[np.mod(classes, len(_PALETTE))]
        legend = [{"value": v, "colour": "#%02x%02x%02x" % tuple(_PALETTE[v % len(_PALETTE)].tolist())} for v in present]
        return image_png(rgb8, alpha=None if valid.all() else valid), {"legend": legend}
    finite = values[valid]
    if finite.size:
        low, high = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
        if high <= low:
            low, high = float(finite.min()), float(finite.max())
    else:
        low = high = 0.0
    grey = display_uint8(values, low=low, high=high)
    return image_png(grey, alpha=None if valid.all() else valid), {"vmin": low, "vmax": high}
