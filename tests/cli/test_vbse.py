"""``kikuchi vbse`` through a subprocess on a small generated map."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.imaging import vbse_array


@pytest.fixture
def two_grain_file(tmp_path, rng):
    """A 6 x 8 map, left half one pattern, right half another (smooth synthetic bands), with noise."""
    y, x = np.mgrid[:40, :44].astype(float)
    grain_a = 120 + 40 * np.cos((x + 0.5 * y) / 3.0) + 30 * np.exp(-((x - 20) ** 2 + (y - 25) ** 2) / 300)
    grain_b = 120 + 40 * np.cos((0.7 * x - y) / 3.0) + 30 * np.exp(-((x - 20) ** 2 + (y - 25) ** 2) / 300)
    patterns = np.where((np.arange(8) < 4)[None, :, None, None], grain_a, grain_b) + rng.normal(0, 3, (6, 8, 40, 44))
    path = tmp_path / "two_grains.h5"
    with kikuchi.MapWriter(path, nav_shape=(6, 8), pattern_shape=(40, 44), dtype="uint8", step_um=(0.5, 0.5)) as w:
        w.write_rows(0, np.clip(patterns, 0, 255).astype(np.uint8))
    return path


def test_vbse_writes_arrays_gallery_and_index(cli, two_grain_file, tmp_path):
    out = tmp_path / "gallery"
    proc = cli("vbse", two_grain_file, "-o", out, "--grid", "5x6", "--rgb", "4:0,2:3,29", "--remove-gradient", "--threads", "2", "--kikuchi-com")
    assert proc.returncode == 0, proc.stderr
    assert "48 patterns, 5x6 grid of the raw signal" in proc.stdout
    with h5py.File(out / "vbse.h5") as f:
        vbse = f["vbse"][()]
        assert vbse.dtype == np.float32 and vbse.shape == (6, 8, 5, 6)
        assert f["com_raw"].shape == (6, 8, 2) and f["com_kikuchi"].shape == (6, 8, 2)
        assert f["diodes"].shape == (6, 8, 2, 3) and f["bse"].shape == (6, 8)
        assert f.attrs["signal"] == "raw"
        assert f.attrs["rgb_regions"] == "[[4, 0], [2, 3], [4, 5]]"
        rgb = f["rgb"][()]
    with kikuchi.open(two_grain_file) as m:
        np.testing.assert_allclose(vbse, vbse_array(m.read_all(), grid=(5, 6)), rtol=1e-6)
    # the colour image separates the grains
    left, right = rgb[:, :4].reshape(-1, 3), rgb[:, 4:].reshape(-1, 3)
    assert np.linalg.norm(left.mean(0) - right.mean(0)) > 5 * max(left.std(0).max(), right.std(0).max())
    html = (out / "index.html").read_text()
    linked = re.findall(r'<img src="([^"]+)"', html)
    assert {"bse.png", "rgb.png", "vbse_regions_common.png", "com_raw_shaded.png", "diodes.png"} <= set(linked)
    for name in linked:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
        assert "/" not in name  # relative links
    assert "Scan-line drifts removed" in html
    assert not list(out.glob(".*.partial"))


def test_vbse_kikuchi_signal_without_kikuchi_com(cli, two_grain_file, tmp_path):
    out = tmp_path / "k"
    proc = cli("vbse", two_grain_file, "-o", out, "--signal", "kikuchi", "--grid", "3", "--no-kikuchi-com", "--quiet", "--no-png")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["vbse.h5"]
    with h5py.File(out / "vbse.h5") as f:
        assert f["vbse"].shape == (6, 8, 3, 3) and "com_kikuchi" not in f
        assert f.attrs["signal"] == "kikuchi"
        assert abs(np.nanmean(f["vbse"][()])) < 2  # background removed: the signal is centred on 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "7by7"], "grid '7by7': expected ROWSxCOLS such as '7x7'"),
        (["--rgb", "0:0,1:1,9:0"], "region '9:0' is outside the 7 x 7 grid"),
    ],
)
def test_vbse_bad_options(cli, two_grain_file, tmp_path, args, message):
    proc = cli("vbse", two_grain_file, "-o", tmp_path / "bad", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (tmp_path / "bad" / "vbse.h5").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,2", "expected three regions R,G,B"),
        ("a,b,c", "region 'a' is neither ROW:COL nor a region number"),
        ("0,1,49", "region '49' is outside the 7 x 7 grid"),
    ],
)
def test_parse_regions_messages(text, message):
    from kikuchi.cli._vbse import parse_regions

    with pytest.raises(ValueError, match=re.escape(message)):
        parse_regions(text, (7, 7))
    assert parse_regions("6:0, 45 ,48", (7, 7)) == [(6, 0), (6, 3), (6, 6)]


def test_vbse_bad_sigma(cli, two_grain_file, tmp_path):
    proc = cli("vbse", two_grain_file, "-o", tmp_path / "s", "--sigma", "-1")
    assert proc.returncode == 2
    assert "--sigma must be a positive number of pixels, got -1" in proc.stderr


def test_vbse_missing_input(cli, tmp_path):
    proc = cli("vbse", tmp_path / "none.h5", "-o", tmp_path / "o")
    assert proc.returncode == 2
    assert "none.h5: no such map file" in proc.stderr
