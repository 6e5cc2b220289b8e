"""``kikuchi pattern``: one pattern, raw or processed, to TIFF (exact, 16 bit) or PNG."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

import kikuchi
from kikuchi.cli.main import main
from kikuchi.engine import process_pattern_at
from kikuchi.process import PRESETS
from tests.conftest import shared_file
from tests.cli.test_process import expect_errors
from tests.engine.conftest import write_map


@pytest.fixture
def map16(tmp_path, rng):
    pats = rng.integers(1000, 60000, (2, 3, 20, 24)).astype(np.uint16)
    return write_map(tmp_path / "m16.h5", pats, background=np.full((20, 24), 30000.0)), pats


def test_raw_16_bit_exact_in_tiff_and_png(cli, map16, tmp_path):
    path, pats = map16
    proc = cli("pattern", path, "--at", "1,2", "-o", tmp_path / "p.tif")
    assert proc.returncode == 0, proc.stderr
    assert "pattern at row 1, col 2, RawPatterns, 20 x 24 uint16" in proc.stdout
    assert main(["pattern", str(path), "--at", "1,2", "-o", str(tmp_path / "p.png")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "p.tif"), pats[1, 2])
    png = np.asarray(Image.open(tmp_path / "p.png"))
    np.testing.assert_array_equal(png.astype(np.uint16), pats[1, 2])


def test_processed_nickel_pattern_equals_the_api(cli, tmp_path):
    src = shared_file("kikuchipy/nickel_ebsd_small.h5")
    out = tmp_path / "ni.tif"
    proc = cli("pattern", src, "--at", "1,1", "--process", "detailed", "--npa", "1", "--sigma", "5", "-o", out)
    assert proc.returncode == 0, proc.stderr
    img = tifffile.imread(out)
    assert img.dtype == np.uint16 and img.shape == (60, 60)
    with kikuchi.open(src) as m:
        expected = process_pattern_at(m, 1, 1, PRESETS["detailed"].replace(npa=1, sigma=5.0))
    np.testing.assert_array_equal(img, expected)
    png = tmp_path / "ni8.png"
    assert main(["pattern", str(src), "--at", "0,2", "--process", "indexing", "-o", str(png)]) == 0
    assert np.asarray(Image.open(png)).dtype == np.uint8


def test_bad_inputs(cli, map16, tmp_path, capsys):
    path, _ = map16
    cases = [
        (["--at", "5,0", "-o", tmp_path / "a.tif"], "map position (row 5, col 0) is outside the 2 x 3 map"),
        (["--at", "0,0", "-o", tmp_path / "a.jpg"], "a.jpg: unknown image type '.jpg'; use .tif, .tiff or .png"),
        (["--at", "0,0", "--process", "detailed", "--dtype", "float32", "-o", tmp_path / "a.png"], "PNG holds 8- or 16-bit integers, not float32; use .tif"),
        (["--at", "0,0", "--process", "detailed", "--sigma", "0", "-o", tmp_path / "a.tif"], "--sigma must be a positive number of pixels, got 0"),
        (["--at", "0,0", "-o", path], "is the input map file"),
    ]
    for err in expect_errors(cli, capsys, ["pattern", str(path)], cases):
        assert err.startswith("kikuchi pattern: error: ")
    with pytest.raises(SystemExit) as exit_info:  # argparse rejects the position itself
        main(["pattern", str(path), "--at", "1", "-o", str(tmp_path / "a.tif")])
    assert exit_info.value.code == 2 and "expected ROW,COL (two integers), got '1'" in capsys.readouterr().err
    assert not any(tmp_path.glob("a.*"))
