"""``kikuchi info`` through a subprocess: map files, CTF, image folders and zips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kikuchi.io.convert import convert_images
from tests.conftest import shared_file
from tests.io._images import make_folder, make_zip
from tests.io.test_convert import tiny_ctf


def test_info_map_file(cli, tmp_path):
    folder = make_folder(tmp_path / "f", 3, 4)
    out = convert_images(folder, tmp_path / "m.h5", step_um=0.5, background="mean", progress=False)
    proc = cli("info", out)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split() == ["nav", "shape", "3", "x", "4"] for line in lines)
    assert any(line.split() == ["pattern", "shape", "16", "x", "12"] for line in lines)
    assert any(line.split()[:2] == ["storage", "order"] and line.split()[-1] == "row-major" for line in lines)
    assert "static background" in proc.stdout and "bse: min" in proc.stdout
    proc = cli("info", out, "--json")
    desc = json.loads(proc.stdout)
    assert desc["kind"] == "map file" and desc["nav_shape"] == [3, 4] and desc["step_um"] == [0.5, 0.5]
    assert desc["dtype"] == "uint16" and desc["static_background"] is True
    bse = desc["summary"]["bse"]
    assert bse["min"] <= bse["mean"] <= bse["max"] and bse["missing"] == 0


def test_info_kikuchipy_file(cli):
    proc = cli("info", shared_file("kikuchipy/nickel_ebsd_small.h5"), "--json")
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    assert desc["flavour"] == "kikuchipy" and desc["nav_shape"] == [3, 3] and desc["pattern_shape"] == [60, 60]
    assert desc["phases"][0]["name"] == "ni"
    import h5py

    with h5py.File(shared_file("kikuchipy/nickel_ebsd_small.h5")) as f:
        stored = np.rad2deg(f["Scan 1/EBSD/CrystalMap/crystal_map/data/phi1"][()])
    phi1 = desc["summary"]["phi1_deg"]  # the stored orientations (not reduced to the fundamental zone)
    assert phi1["missing"] == 0
    assert [phi1["min"], phi1["mean"], phi1["max"]] == pytest.approx([stored.min(), stored.mean(), stored.max()])
    assert np.allclose(desc["pattern_centre"]["mean"], [0.4251, 0.2134, 0.5007], atol=1e-4)


def test_info_ctf(cli, tmp_path):
    ctf = tiny_ctf(tmp_path / "t.ctf")
    desc = json.loads(cli("info", ctf, "--json").stdout)
    assert desc["grid"] == "square" and desc["nav_shape"] == [3, 4] and desc["step_um"] == [0.5, 0.25]
    assert desc["phases"][0]["name"] == "Nickel"
    proc = cli("info", ctf)
    assert proc.returncode == 0, proc.stderr
    assert "Nickel" in proc.stdout and "bc: min 100, mean 100, max 100" in proc.stdout


def test_info_image_folder_and_zip(cli, tmp_path):
    folder = make_folder(tmp_path / "Images", 2, 6, dtype=np.uint8, ext="png")
    for path, kind in [(folder, "image folder"), (make_zip(folder, tmp_path / "p.zip"), "image zip")]:
        desc = json.loads(cli("info", path, "--json").stdout)
        assert desc["kind"] == kind and desc["count"] == 12 and desc["naming"] == "aztec"
        assert desc["nav_shape"] == [2, 6] and desc["pattern_shape"] == [16, 12] and desc["dtype"] == "uint8"
        assert desc["complete"] is True
    proc = cli("info", folder)
    assert proc.returncode == 0
    assert any(line.split() == ["naming", "aztec"] for line in proc.stdout.splitlines())


def test_info_bad_paths(cli, tmp_path):
    proc = cli("info", tmp_path / "none.h5")
    assert proc.returncode == 2 and "kikuchi info: error:" in proc.stderr and "none.h5: no such file or folder" in proc.stderr
    (tmp_path / "notes.txt").write_text("hello")
    proc = cli("info", tmp_path / "notes.txt")
    assert proc.returncode == 2
    assert "notes.txt: not a pattern file (kikuchi map file or a vendor's), CTF/ANG file, or folder/zip of pattern images" in proc.stderr
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    proc = cli("info", bad)
    assert proc.returncode == 2 and "bad.h5: not a readable HDF5 file" in proc.stderr


def test_info_ang(cli):
    proc = cli("info", shared_file("mtex/S00.ANG"), "--json")
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    assert desc["kind"] == "orientation map" and desc["format"] == "ang"
    assert desc["phases"] and desc["phases"][0]["hkl_families"]
    text = cli("info", shared_file("mtex/S00.ANG")).stdout
    assert "hkl families: {110} {200} {211} {310}" in text


def test_info_hdf5_orientation_map(cli, tmp_path):
    """The results file of ``kikuchi index -o OUT.h5`` is described as an orientation map, not refused as a map file."""
    from kikuchi.io.orientation_map import OrientationMap, PhaseInfo

    euler = np.radians(np.arange(36.0).reshape(3, 4, 3))
    omap = OrientationMap.from_arrays(
        euler=euler, phase_id=np.array([[1, 1, 0, 1]] * 3), step_um=0.25, columns={"mad": np.full((3, 4), 0.4)},
        phases=[PhaseInfo(1, "Ni", lattice_angstrom=(3.524,) * 3, space_group=225)],
    )
    path = omap.write(tmp_path / "indexed.h5")
    proc = cli("info", path, "--json")
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    assert desc["kind"] == "orientation map" and desc["format"] == "h5"
    assert desc["nav_shape"] == [3, 4] and desc["step_um"] == [0.25, 0.25]
    assert desc["indexed"] == 9 and desc["not_indexed"] == 3 and desc["phases"][0]["name"] == "Ni"
    assert desc["columns"]["mad"]["mean"] == pytest.approx(0.4)
