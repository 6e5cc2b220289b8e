"""Helpers shared by the explorer tests and benchmarks/explore.py (no pytest here)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

#: How Debian's chromium runs headless here (Playwright's own browser download does not work).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """Debian's chromium: $KIKUCHI_CHROMIUM, /usr/bin/chromium or chromium on the PATH."""
    for candidate in (os.environ.get("KIKUCHI_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def start_cli(*args: str) -> tuple[subprocess.Popen, str]:
    """Start ``kikuchi explore ARGS`` in a subprocess; (process, URL it printed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kikuchi.cli.main", "explore", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    match = re.search(r"at (http://\S+/)", line)
    if not match:
        proc.kill()
        raise AssertionError(f"kikuchi explore printed no URL: {line!r}; stderr: {proc.stderr.read()}")
    return proc, match.group(1)


def line_distance(line: dict, rho: float, theta: float, shape: tuple[int, int]) -> float:
    """Degrees of angle plus half the pixels of distance between a drawn line and a detected band.

    ``line`` has end points x0, y0, x1, y1 (pixels, x = column); the band is
    ``x cos(theta) + y sin(theta) = rho`` from the pattern centre (kikuchi.bands).
    """
    h, w = shape
    x0, y0 = line["x0"] - (w - 1) / 2, line["y0"] - (h - 1) / 2
    x1, y1 = line["x1"] - (w - 1) / 2, line["y1"] - (h - 1) / 2
    t = np.arctan2(x0 - x1, y1 - y0) % np.pi  # normal direction of the segment
    r = x0 * np.cos(t) + y0 * np.sin(t)
    dt = abs((t - theta + np.pi / 2) % np.pi - np.pi / 2)
    sign = 1 if abs(t - theta) < np.pi / 2 else -1  # theta and theta + pi: rho changes sign
    return float(np.degrees(dt) + abs(r - sign * rho) / 2)
