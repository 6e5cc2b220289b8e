"""Strict reading: ``kikuchi.open(path, strict=True)`` and ``kikuchi --strict CMD`` turn every warning about an input into an error.

A plain read of an odd file warns (``MapFileWarning``, kept in ``notes``) and
goes on; a strict one refuses it with a one-line ``MapFileError`` (the
command: exit code 2 and ``kikuchi CMD: error: ...``), whether the oddity is
found at opening or later, when a lazily read part (the phases) is read.
"""

from __future__ import annotations

import shutil
import warnings

import h5py
import pytest

import kikuchi
from benchmarks.hostile_cases.pattern_files import make_map_file
from kikuchi.io.source import MapFileError, MapFileWarning
from tests.conftest import shared_file
from tests.io._vendor import vendor_file

#: kikuchipy's hexagonal UP2 dummy: 10 patterns for a 3 x 3 hexagonal grid, read with a warning.
ODD = "up2_kpdata_v3_hex.up2"
ODD_NOTE = r"holds 10 patterns, the hexagonal 3 x 3 grid needs 8 packed or 9 padded"


def test_plain_read_warns_and_keeps_the_note():
    with pytest.warns(MapFileWarning, match=ODD_NOTE), kikuchi.open(vendor_file(ODD)) as m:
        assert any("10 patterns" in note for note in m.notes)


def test_strict_read_refuses_in_one_line():
    with pytest.raises(MapFileError, match=rf"{ODD}: {ODD_NOTE}.*\(an error, not a warning, in strict mode\)") as info:
        kikuchi.open(vendor_file(ODD), strict=True)
    assert "\n" not in str(info.value)


def test_strict_read_of_a_clean_file_is_a_plain_read():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with kikuchi.open(vendor_file("bruker_custom_u8_ordered.h5"), strict=True) as m:
            assert m.nav_shape == (3, 4) and m.notes == []


def test_strict_holds_for_what_is_read_later(tmp_path):
    """The phases of a map file are read when asked: an oddity there is an error too, on the map opened strictly."""
    path = make_map_file(tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        f["Scan/EBSD/Header/Phases/1"].attrs["json"] = "not json"
    with kikuchi.open(path, strict=True) as m:
        with pytest.raises(MapFileError, match=r"'Scan/EBSD/Header/Phases/1': attribute 'json' is not a JSON description"):
            m.phases  # noqa: B018
    with kikuchi.open(path) as m, pytest.warns(MapFileWarning, match="not a JSON description"):
        assert m.phases == [{"id": 1}]


def test_strict_must_be_true_or_false():
    with pytest.raises(TypeError, match=r"strict='yes': expected True or False"):
        kikuchi.open(vendor_file(ODD), strict="yes")


def test_orientation_maps_read_strictly_too():
    """``read_orientation_map(strict=True)`` (the orientation readers' own) refuses what a plain read warns about."""
    from kikuchi.io.orientation_map import OrientationMapWarning

    path = shared_file("mtex/testdata_hex.ctf")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kikuchi.read_orientation_map(path)
    if not any(issubclass(w.category, OrientationMapWarning) for w in caught):
        pytest.skip("testdata_hex.ctf reads without a warning")
    with pytest.raises(ValueError, match="strict"):
        kikuchi.read_orientation_map(path, strict=True)


# ---------------------------------------------------------------- the command


def test_cli_warns_without_strict(cli, tmp_path):
    path = shutil.copy(vendor_file(ODD), tmp_path / ODD)
    proc = cli("info", path)
    assert proc.returncode == 0, proc.stderr
    assert f"kikuchi info: warning: {ODD}: holds 10 patterns" in proc.stderr


def test_cli_strict_refuses_in_one_line(cli, tmp_path):
    path = shutil.copy(vendor_file(ODD), tmp_path / ODD)
    proc = cli("--strict", "info", path)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"kikuchi info: error: {ODD}: holds 10 patterns"), proc.stderr
    assert lines[0].endswith("(--strict: warnings are errors)") and "Traceback" not in proc.stderr


def test_cli_strict_on_a_clean_file(cli, tmp_path):
    path = shutil.copy(vendor_file("bruker_custom_u8_ordered.h5"), tmp_path / "b.h5")
    proc = cli("--strict", "info", path)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr


def test_cli_strict_on_an_orientation_map(cli):
    proc = cli("info", shared_file("mtex/testdata_hex.ctf"))
    if "warning:" not in proc.stderr:
        pytest.skip("testdata_hex.ctf reads without a warning")
    strict = cli("--strict", "info", shared_file("mtex/testdata_hex.ctf"))
    assert strict.returncode == 2 and "Traceback" not in strict.stderr
    assert [line for line in strict.stderr.splitlines() if line.strip()][0].startswith("kikuchi info: error: testdata_hex.ctf")


def test_cli_help_says_strict(cli):
    proc = cli("--help")
    assert "--strict" in proc.stdout and "warning" in " ".join(proc.stdout.split())
