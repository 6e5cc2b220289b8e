"""The base maps of the explorer: what the file holds, orientations, computed images.

Each base map is a :class:`MapLayer` with a fixed name; the page asks for
one by that name and gets an 8-bit PNG, computed the first time and then
kept. Sources, in the order the page lists them:

* the BSE map of the file (mean intensity of each raw pattern);
* per-point datasets of the map file (band contrast, MAD, image quality,
  phase, ... when an indexer or an imaging pass stored them) and stored
  (rows, cols) or (rows, cols, 3) images;
* orientations, from the map file (Euler angles) or from an orientation map
  given alongside (CTF/ANG of the same grid): IPF colours along x, y, z, the
  phase map, and the orientation map's own columns (BC, BS, MAD, IQ, CI, ...);
* images computed from the patterns on first request (one pass over the
  map): the virtual BSE colour image, image quality and the neighbour dot
  product.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kikuchi.explore.encode import display_uint8, image_png
from kikuchi.io.mapstore import EBSDMap

__all__ = [
    "MapLayer",
    "PointOrientations",
    "find_layers",
    "ipf_key_png",
    "orientations_from_file",
    "orientations_from_map",
    "orientations_from_omap",
]

_logger = logging.getLogger(__name__)

# Per-point datasets of the map store that are geometry, not maps to look at.
_NOT_MAPS = {"X BEAM", "Y BEAM", "BEAM X", "BEAM Y", "X Position", "Y Position", "PCX", "PCY", "DD", "phi1", "PHI", "phi2"}
# Friendly names of per-point values (map file datasets and orientation map columns).
_LABELS = {
    "iq": "image quality",
    "bc": "band contrast",
    "bs": "band slope",
    "mad": "MAD (°)",
    "ci": "confidence index",
    "fit": "fit (°)",
    "phase": "phase",
    "bands": "detected bands",
    "error": "indexing error code",
    "sem": "SEM signal",
}
_CATEGORICAL = {"phase", "phase_id", "error", "bands"}
# Colours of categorical maps (class 0, e.g. not indexed, is black).
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


@dataclass
class MapLayer:
    """One base map the page can show.

    ``kind`` is 'scalar' (grey values with a range), 'rgb' (colour image) or
    'categorical' (integer classes with a legend). ``compute`` returns the
    (rows, cols) or (rows, cols, 3) array the first time the map is asked
    for; ``classes`` names the values of a categorical map.
    """

    name: str
    label: str
    kind: str
    compute: Callable[[], np.ndarray]
    note: str = ""
    classes: dict[int, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    _png: bytes | None = field(default=None, repr=False)
    _values: np.ndarray | None = field(default=None, repr=False)
    _meta: dict[str, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "kind": self.kind, "note": self.note, **self.extra, **self._meta}

    def png(self) -> tuple[bytes, dict[str, Any]]:
        """The PNG (computed once; concurrent first requests wait for one computation)."""
        self._ensure()
        return self._png, self.describe()  # type: ignore[return-value]

    def values(self) -> np.ndarray | None:
        """The map's values (rows, cols) as float32, NaN where none; None for colour images."""
        self._ensure()
        return self._values

    def _ensure(self) -> None:
        with self._lock:
            if self._png is None:
                values = np.asarray(self.compute())
                self._png, self._meta = render(values, self.kind, classes=self.classes)
                self._values = None if self.kind == "rgb" else values.astype(np.float32)


@dataclass
class PointOrientations:
    """Orientations on the map grid.

    Attributes
    ----------
    euler
        (rows, cols, 3) Bunge Euler angles in radians, NaN where unknown.
    phase_id
        (rows, cols) phase ids, 0 where not indexed.
    phases
        Map file phase dicts (``id``, ``name``, ``space_group``, ``lattice`` in nm, ...).
    columns
        Other per-point values as (rows, cols) maps, by lower-case name.
    source
        Where they come from (shown on the page).
    settings
        How their patterns were prepared where a refinement wrote them
        (the ``refinement_settings`` of ``kikuchi refine``'s HDF5 output:
        ``static_background``, ``dynamic_background``, ``sigma``,
        ``mask_pixels``), else empty.
    """

    euler: np.ndarray
    phase_id: np.ndarray
    phases: list[dict[str, Any]]
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def phase_of(self, row: int, col: int) -> dict[str, Any] | None:
        """The phase dict at (row, col), or None when the point is not indexed."""
        ident = int(self.phase_id[row, col])
        if ident <= 0 or not np.isfinite(self.euler[row, col]).all():
            return None
        return next((p for p in self.phases if int(p["id"]) == ident), None)


def orientations_from_map(ebsd_map: EBSDMap) -> PointOrientations | None:
    """The orientations stored in the map file (Euler angles per point), or None."""
    euler = ebsd_map.euler
    if euler is None:
        return None
    phases = ebsd_map.phases
    known = np.isfinite(euler).all(axis=-1)
    phase_values = _per_point(ebsd_map, "Phase")
    if phase_values is not None:
        phase_id = np.where(known & np.isfinite(phase_values), np.nan_to_num(phase_values), 0).astype(np.int32)
    else:
        phase_id = np.where(known, int(phases[0]["id"]) if len(phases) == 1 else 0, 0).astype(np.int32)
        if len(phases) != 1:
            _logger.info("%s: Euler angles but %d phases and no Phase dataset: no phase per point", ebsd_map.path, len(phases))
    return PointOrientations(euler=euler, phase_id=phase_id, phases=phases, source=f"{ebsd_map.path.name} (Euler angles)")


def orientations_from_file(path: Any, nav_shape: tuple[int, int]) -> PointOrientations:
    """Orientations of a CTF/ANG orientation map on the same square grid as the pattern map.

    Raises
    ------
    ValueError
        The orientation map is not a square grid of ``nav_shape``.
    """
    from kikuchi.io.orientation_map import read_orientation_map

    return orientations_from_omap(read_orientation_map(path), nav_shape, source=Path(path).name)


def orientations_from_omap(omap: Any, nav_shape: tuple[int, int], *, source: str = "orientation map") -> PointOrientations:
    """Orientations of a :class:`kikuchi.OrientationMap` (e.g. from indexing in the same session).

    Raises
    ------
    ValueError
        The orientation map is not a square grid of ``nav_shape``.
    """
    if omap.grid != "square" or tuple(omap.nav_shape or ()) != tuple(nav_shape):
        raise ValueError(
            f"{source}: orientation map of {omap.grid} grid {omap.nav_shape} does not match the pattern map's "
            f"{nav_shape[0]} x {nav_shape[1]} points; give the orientation map indexed from this pattern map"
        )
    rows, cols = nav_shape
    columns = {
        name: np.asarray(values, dtype=np.float64).reshape(rows, cols)
        for name, values in omap.columns.items()
        if np.asarray(values).dtype.kind in "iuf"
    }
    settings = (omap.header or {}).get("refinement_settings")  # a dict: kikuchi's HDF5 orientation maps keep the header as JSON
    return PointOrientations(
        euler=np.asarray(omap.euler, dtype=np.float64).reshape(rows, cols, 3),
        phase_id=np.asarray(omap.phase_id).reshape(rows, cols),
        phases=[p.to_map_phase() for p in omap.phases],
        columns=columns,
        source=source,
        settings=dict(settings) if isinstance(settings, dict) else {},
    )


def _per_point(ebsd_map: EBSDMap, name: str) -> np.ndarray | None:
    """A per-pattern dataset of the map file as a (rows, cols) float map, NaN where no pattern."""
    values = ebsd_map.point_data().get(name)
    if values is None or values.shape != (ebsd_map.n_patterns,):
        return None
    from kikuchi.imaging.maps import place_on_map

    return place_on_map(np.asarray(values[()], dtype=np.float64), ebsd_map.index_map)


def find_layers(ebsd_map: EBSDMap, orientations: PointOrientations | None = None) -> dict[str, MapLayer]:
    """Every base map available for this map file (and orientations), by name."""
    layers: dict[str, MapLayer] = {}

    def add(layer: MapLayer) -> None:
        layers[layer.name] = layer

    m = ebsd_map
    add(MapLayer("bse", "BSE (mean intensity)", "scalar", lambda: m.bse_map))
    rows, cols = m.nav_shape
    stored = dict(m.point_data())
    data = getattr(m, "data", None)  # the kikuchi map file's HDF5 group: also (rows, cols) maps
    if data is not None:
        stored.update((name, ds) for name, ds in data.items() if hasattr(ds, "shape") and ds.shape in ((rows, cols), (rows, cols, 3)))
    for name, ds in stored.items():
        if name in _NOT_MAPS or name == "bse_map" or ds.dtype.kind not in "iufb":
            continue
        key = name.lower()
        label = _LABELS.get(key, name)
        categorical = key in _CATEGORICAL
        if ds.shape == (m.n_patterns,):
            classes = _phase_names(m.phases) if key == "phase" else {}
            add(MapLayer(f"data:{name}", label, "categorical" if categorical else "scalar", lambda name=name: _per_point(m, name), classes=classes))
        elif ds.shape in ((rows, cols), (rows, cols, 3)):
            kind = "rgb" if ds.ndim == 3 else ("categorical" if categorical else "scalar")
            add(MapLayer(f"data:{name}", label, kind, lambda ds=ds: np.asarray(ds[()])))
    if orientations is not None:
        o = orientations
        note = f"from {o.source}"
        if o.phases:
            keys = {"ipf_keys": [{"phase": int(p["id"]), "name": str(p.get("name", p["id"]))} for p in o.phases]}
            for axis in ("z", "x", "y"):
                add(MapLayer(f"ipf-{axis}", f"IPF colours ({axis})", "rgb", lambda axis=axis: _ipf(o, axis), note=note, extra=keys))
        if "data:Phase" not in layers:
            add(MapLayer("phase", "phase", "categorical", lambda: o.phase_id.astype(np.float64), note=note, classes={0: "not indexed", **_phase_names(o.phases)}))
        for name, values in o.columns.items():
            kind = "categorical" if name in _CATEGORICAL else "scalar"
            add(MapLayer(f"omap:{name}", _LABELS.get(name, name), kind, lambda values=values: values, note=note))
    add(MapLayer("vbse", "virtual BSE colour (computed)", "rgb", lambda: _vbse_colour(m), note="computed from the patterns on first use"))
    quality = _QualityPass(m)
    add(MapLayer("iq", "image quality (computed)", "scalar", quality.iq, note="computed from the patterns on first use"))
    add(MapLayer("adp", "neighbour dot product (computed)", "scalar", quality.adp, note="computed from the patterns on first use"))
    return layers


def _phase_names(phases: list[dict[str, Any]]) -> dict[int, str]:
    return {int(p["id"]): str(p.get("name", f"phase {p['id']}")) for p in phases}


def _ipf(o: PointOrientations, axis: str) -> np.ndarray:
    from kikuchi.figures import ipf_rgb

    rgb = ipf_rgb(o.euler, o.phase_id, o.phases, direction=axis)
    known = (o.phase_id > 0) & np.isfinite(o.euler).all(axis=-1)
    return np.where(known[..., None], rgb, np.nan)


def ipf_key_png(phase: dict[str, Any], *, size: int = 120) -> bytes:
    """PNG of the IPF colour key of a phase (its fundamental sector, transparent around it)."""
    from kikuchi.figures import ipf_key_image

    rgba = ipf_key_image(phase, size=size)
    rgb8 = np.clip(np.rint(rgba[..., :3] * 255.0), 0, 255).astype(np.uint8)
    return image_png(rgb8, alpha=rgba[..., 3] > 0.5)


def _vbse_colour(m: EBSDMap) -> np.ndarray:
    from kikuchi.imaging import rgb_image, vbse_map

    return rgb_image(vbse_map(m, grid=(7, 7), progress=False))


class _QualityPass:
    """One pass over the map gives both the image quality and the neighbour dot product."""

    def __init__(self, m: EBSDMap):
        self._map = m
        self._result: Any = None
        self._lock = threading.Lock()

    def _maps(self) -> Any:
        from kikuchi.imaging import quality_maps

        with self._lock:
            if self._result is None:
                self._result = quality_maps(self._map, progress=False)
        return self._result

    def iq(self) -> np.ndarray:
        return self._maps().iq

    def adp(self) -> np.ndarray:
        return self._maps().adp


def render(values: np.ndarray, kind: str, *, classes: dict[int, str] | None = None) -> tuple[bytes, dict[str, Any]]:
    """8-bit PNG of a map and what the page needs to label it (range or legend).

    NaN points (no pattern, not indexed) are transparent.
    """
    values = np.asarray(values)
    if kind == "rgb":
        rgb = values.astype(np.float64)
        valid = np.isfinite(rgb).all(axis=-1)
        if rgb[valid].size and rgb[valid].max() <= 1.0:
            rgb = rgb * 255.0
        rgb8 = np.clip(np.rint(np.where(valid[..., None], rgb, 0.0)), 0, 255).astype(np.uint8)
        return image_png(rgb8, alpha=None if valid.all() else valid), {}
    valid = np.isfinite(values)
    if kind == "categorical":
        ids = np.where(valid, values, 0).astype(np.int64)
        present = sorted(int(v) for v in np.unique(ids[valid]))
        rgb8 = _PALETTE[np.mod(ids, len(_PALETTE))]
        names = classes or {}
        legend = [
            {"value": v, "label": names.get(v, str(v)), "colour": "#%02x%02x%02x" % tuple(_PALETTE[v % len(_PALETTE)].tolist())}
            for v in present
        ]
        return image_png(rgb8, alpha=None if valid.all() else valid), {"legend": legend}
    finite = values[valid].astype(np.float64)
    if finite.size:
        low, high = (float(v) for v in np.percentile(finite, [0.5, 99.5]))
        if high <= low:
            low, high = float(finite.min()), float(finite.max())
    else:
        low = high = 0.0
    grey = display_uint8(values, low=low, high=high)
    return image_png(grey, alpha=None if valid.all() else valid), {"vmin": low, "vmax": high}
