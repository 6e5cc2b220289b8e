"""The truth of ``../shared/data/vendor_patterns/manifest.json``, and one check of an opened file against it."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

import numpy as np

from tests.conftest import shared_file

VENDOR = "vendor_patterns"


@cache
def manifest() -> dict[str, Any]:
    return json.loads(shared_file(f"{VENDOR}/manifest.json").read_text())["files"]


def vendor_file(name: str):
    """Path of a file of vendor_patterns/ (skips outside CI when the data is missing)."""
    return shared_file(f"{VENDOR}/{name}")


def sha16(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def assert_matches_manifest(m: Any, name: str, *, pc: bool = True) -> np.ndarray:
    """Assert that the open map ``m`` holds what the manifest says of file ``name``; returns the patterns (rows, cols, h, w).

    Checks shapes, dtype, every pattern sum in map order (missing points
    have no pattern), the hashes where no point is missing, the marker
    pixels of the custom files, the step, the tilts, and the PC in Bruker's
    convention where the manifest gives it.
    """
    e = manifest()[name]
    if "nav_shape" in e:
        assert list(m.nav_shape) == e["nav_shape"], (m.nav_shape, e["nav_shape"])
    assert list(m.pattern_shape) == e["sig_shape"]
    assert str(m.dtype) == e["dtype"]
    data = m.read_all()
    rows, cols = m.nav_shape
    flat = data.reshape(rows * cols, -1)
    missing = set(e.get("missing_map_index", []))
    if "pattern_sums_map_order" in e:
        sums = flat.sum(axis=1, dtype=np.int64)
        for i, expected in enumerate(e["pattern_sums_map_order"]):
            if i in missing:
                assert m.index_map.reshape(-1)[i] == -1, f"point {i} should have no pattern"
            elif expected == 0 and m.index_map.reshape(-1)[i] == -1:
                continue  # a point outside a non-rectangular ROI: no pattern (the manifest writes 0)
            else:
                assert sums[i] == expected, f"pattern sum at map index {i}: {sums[i]} != {expected}"
    if not missing and "sha256_16_all_patterns_map_order" in e and (m.index_map >= 0).all():
        assert sha16(data) == e["sha256_16_all_patterns_map_order"]
    if "sha256_16_first_pattern" in e and m.index_map.reshape(-1)[0] >= 0:
        assert sha16(flat[0].reshape(m.pattern_shape)) == e["sha256_16_first_pattern"]
    if "sha256_16_last_pattern" in e and m.index_map.reshape(-1)[-1] >= 0:
        assert sha16(flat[-1].reshape(m.pattern_shape)) == e["sha256_16_last_pattern"]
    if tuple(e["sig_shape"]) == (48, 60) and "nav_shape" in e:  # custom files: marker pixels
        offset = 1000 if e["dtype"] == "uint16" else 0
        for r in range(rows):
            for c in range(cols):
                if m.index_map[r, c] >= 0:
                    assert data[r, c, 0, :3].tolist() == [offset + r * cols + c, r, c], (r, c, data[r, c, 0, :3])
    if "step_yx_um" in e and any(e["step_yx_um"]):
        np.testing.assert_allclose(m.step_um, e["step_yx_um"], rtol=1e-6)
    if "sample_tilt_deg" in e:
        assert abs(m.sample_tilt_deg - e["sample_tilt_deg"]) < 1e-4
    if "camera_tilt_deg" in e:
        assert abs(m.camera_tilt_deg - e["camera_tilt_deg"]) < 1e-4
    if pc and "pc_bruker_map_order" in e:
        centre = m.pattern_centre
        assert centre is not None and centre.convention == "bruker"
        got = np.stack([centre.pcx, centre.pcy, centre.dd], axis=-1).reshape(-1, 3)
        np.testing.assert_allclose(got, np.asarray(e["pc_bruker_map_order"]), atol=1e-6)
    return data
