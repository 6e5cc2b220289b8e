"""Shared fixtures: the real data in ../shared/data and small generated maps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_file(relative: str) -> Path:
    """Path of a real data file; skips outside CI, fails in CI when missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        if IN_CI:
            pytest.fail(f"real data file {path} is missing in CI")
        pytest.skip(f"real data file {path} not found")
    return path


@pytest.fixture
def shared_data():
    return shared_file


def run_cli(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the ``kikuchi`` command in a subprocess, as a user would."""
    proc = subprocess.run(
        [sys.executable, "-m", "kikuchi.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kikuchi {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def rng():
    return np.random.default_rng(42)
