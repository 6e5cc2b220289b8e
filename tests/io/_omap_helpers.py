"""Helpers shared by the CTF and ANG tests."""

from __future__ import annotations

import warnings
from pathlib import Path


def write_text(tmp_path: Path, name: str, text: str) -> Path:
    """Write a generated vendor file."""
    path = tmp_path / name
    path.write_text(text)
    return path


def orix_load(path: Path):
    """orix's reading of a file, without its warnings (space groups from Laue groups, phase renaming)."""
    from orix.io import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load(str(path))
