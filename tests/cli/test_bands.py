"""``kikuchi bands`` through a subprocess."""

from __future__ import annotations

import json

import numpy as np

from tests.conftest import shared_file


def test_bands_binary_on_documented_example(cli, tmp_path):
    src = shared_file("xcdskd/Si_img8_binned.tif")
    out = tmp_path / "bands.png"
    proc = cli("bands", src, "--method", "binary", "-o", out, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["method"] == "binary" and data["shape"] == [60, 80]
    assert len(data["bands"]) == 12
    first = data["bands"][0]
    assert set(first) == {"rho_px", "theta_deg", "intensity", "width_px", "slope"}
    assert abs(first["theta_deg"] - 63.42) < 0.1 and abs(first["rho_px"] - 2.0) < 0.1
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] > 600 and im.size[1] > 200


def test_bands_radon_on_map_position(cli, tmp_path):
    src = shared_file("kikuchipy/nickel_ebsd_small.h5")
    proc = cli("bands", src, "--at", "1,2", "--n-bands", "7", "-o", tmp_path / "b.png")
    assert proc.returncode == 0, proc.stderr
    assert "(row 1, col 2): 7 bands (radon)" in proc.stdout
    rows = [line.split() for line in proc.stdout.splitlines()[2:9]]
    theta = np.array([float(r[2]) for r in rows])
    assert np.all((theta >= 0) & (theta < 180))
    assert (tmp_path / "b.png").stat().st_size > 10_000


def test_bands_errors(cli, tmp_path):
    src = shared_file("kikuchipy/nickel_ebsd_small.h5")
    proc = cli("bands", src, "--at", "5,1")
    assert proc.returncode == 2 and "map position (row 5, col 1) is outside the 3 x 3 map" in proc.stderr
    proc = cli("bands", src, "--at", "x")
    assert proc.returncode == 2 and "--at must be ROW,COL" in proc.stderr
    proc = cli("bands", tmp_path / "missing.tif")
    assert proc.returncode == 2 and "no such file" in proc.stderr
    proc = cli("bands", src, "-o", tmp_path / "b.jpg")
    assert proc.returncode == 2 and "give a .png name" in proc.stderr
    assert not (tmp_path / "b.jpg").exists()
    img = shared_file("xcdskd/Si_img8_binned.tif")
    proc = cli("bands", img, "--background", "static+dynamic")
    assert proc.returncode == 2 and "an image has no static background" in proc.stderr
