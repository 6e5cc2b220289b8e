"""Fixtures of the explorer tests: a small generated map and a running server."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from kikuchi.io.mapstore import MapWriter

from .helpers import CHROMIUM_ARGS, chromium_path

NAV_SHAPE = (6, 8)
PATTERN_SHAPE = (240, 240)
STEP_UM = (0.5, 0.25)


def synthetic_patterns(nav_shape=NAV_SHAPE, pattern_shape=PATTERN_SHAPE, *, seed: int = 7) -> np.ndarray:
    """uint16 patterns (rows, cols, h, w): a bright centre, bands whose angle varies over the map, noise."""
    rng = np.random.default_rng(seed)
    rows, cols = nav_shape
    h, w = pattern_shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    y = (y - h / 2) / h
    x = (x - w / 2) / w
    envelope = np.exp(-(x**2 + y**2) / 0.18)
    out = np.empty((rows, cols, h, w), dtype=np.uint16)
    for r in range(rows):
        for c in range(cols):
            angle = 0.4 * r + 0.25 * c
            bands = sum(
                np.cos(2 * np.pi * 6 * (x * np.cos(angle + k * np.pi / 3) + y * np.sin(angle + k * np.pi / 3))) for k in range(3)
            )
            grain = 1.0 + 0.2 * ((r // 3 + c // 4) % 2)
            img = 9000 * grain * envelope * (1.0 + 0.15 * bands) + 2000 + rng.normal(0, 150, (h, w))
            out[r, c] = np.clip(np.rint(img), 0, 65535).astype(np.uint16)
    return out


def write_map(path: Path, patterns: np.ndarray, *, static_background: bool = True, extra: dict | None = None) -> Path:
    rows, cols, h, w = patterns.shape
    with MapWriter(path, nav_shape=(rows, cols), pattern_shape=(h, w), dtype=patterns.dtype, step_um=STEP_UM) as writer:
        writer.write_rows(0, patterns)
        if static_background:
            writer.set_static_background(patterns.reshape(-1, h, w).mean(axis=0).astype(np.float32))
        for name, values in (extra or {}).items():
            writer.data[name] = values
    return path


@pytest.fixture(scope="session")
def map_patterns() -> np.ndarray:
    return synthetic_patterns()


@pytest.fixture(scope="session")
def map_file(tmp_path_factory, map_patterns) -> Path:
    rows, cols = NAV_SHAPE
    mad = np.linspace(0.2, 1.5, rows * cols).astype(np.float32)
    phase = (np.arange(rows * cols) % 3).astype(np.int32)
    return write_map(tmp_path_factory.mktemp("explore") / "grains.h5", map_patterns, extra={"MAD": mad, "Phase": phase})


@pytest.fixture(scope="session")
def explorer(map_file):
    from kikuchi.explore import explore

    ex = explore(map_file)
    yield ex
    ex.stop()


def get(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) of a request; 4xx/5xx answers are returned, not raised."""
    request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


# ------------------------------------------------------------------ browser
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        message = "no Chromium browser found at /usr/bin/chromium (install Debian's chromium: apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(f"{message}; the browser tests must run in CI")
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("playwright is not installed (pip install -e '.[test]'); the browser tests must run in CI")
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    out = Path(__file__).resolve().parents[2] / "test-artifacts" / "explore"
    out.mkdir(parents=True, exist_ok=True)
    return out


@pytest.fixture(scope="session")
def simulated_map(tmp_path_factory) -> Path:
    """A small simulated Ni map of known orientations (kikuchi.simulate): 240 x 240 uint16 patterns."""
    from kikuchi.simulate import simulate

    path = tmp_path_factory.mktemp("explore_sim") / "ni_grains.h5"
    return simulate(path, shape=(4, 6), pattern_shape=(240, 240), grains=3, bit_depth=16, noise="low", seed=3, progress=False)
