"""``kikuchi convert`` through a subprocess: outputs, options, errors and Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from kikuchi.io.mapstore import open_map
from tests.io._images import H, W, make_folder, make_zip, pattern, write_image
from tests.io.test_convert import tiny_ctf


def files_in(folder):
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_convert_folder(cli, tmp_path):
    folder = make_folder(tmp_path / "Images", 3, 5)
    proc = cli("convert", folder, "-o", tmp_path / "map.h5", "--step", "0.15", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "map.h5: 3 x 5 map, 15 patterns of 16 x 12 uint16, step 0.15 x 0.15 µm" in proc.stdout
    with open_map(tmp_path / "map.h5") as m:
        for r in range(3):
            for c in range(5):
                np.testing.assert_array_equal(m.pattern(r, c), pattern(r, c))


def test_convert_zip_with_options(cli, tmp_path):
    folder = make_folder(tmp_path / "Images", 4, 3)
    archive = make_zip(folder, tmp_path / "p.zip", subdir="Images/")
    proc = cli(
        "convert", archive, "-o", tmp_path / "map.h5", "--shape", "4x3", "--step", "0.1,0.2", "--background", "mean",
        "--binning", "2", "--bin-mode", "mean", "--workers", "2", "--compression", "gzip:6:shuffle",
    )
    assert proc.returncode == 0, proc.stderr
    with open_map(tmp_path / "map.h5") as m:
        assert m.nav_shape == (4, 3) and m.pattern_shape == (H // 2, W // 2) and m.step_um == pytest.approx((0.1, 0.2))
        assert m.static_background.shape == (H // 2, W // 2)
        d = m.describe()
        assert (d["compression"], d["compression_opts"], d["shuffle"]) == ("gzip", 6, True)
        expected = np.rint(pattern(3, 2).astype(float).reshape(H // 2, 2, W // 2, 2).mean(axis=(1, 3)))
        np.testing.assert_array_equal(m.pattern(3, 2), expected)


def test_convert_with_ctf_and_sorted_names(cli, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for k in range(12):
        write_image(folder / f"frame{k:03d}.bmp", pattern(k // 4, k % 4, np.uint8))
    ctf = tiny_ctf(tmp_path / "scan.ctf")
    proc = cli("convert", folder, "-o", tmp_path / "m.h5", "--ctf", ctf, "--background", tmp_path / "missing.tiff")
    assert proc.returncode == 2
    assert "kikuchi convert: error:" in proc.stderr and "missing.tiff: no such image file" in proc.stderr
    proc = cli("convert", folder, "-o", tmp_path / "m.h5", "--ctf", ctf)
    assert proc.returncode == 0, proc.stderr
    with open_map(tmp_path / "m.h5") as m:
        assert m.nav_shape == (3, 4) and m.step_um == pytest.approx((0.5, 0.25))
        np.testing.assert_array_equal(m.pattern(2, 1), pattern(2, 1, np.uint8))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shape", "3by5"], "argument --shape: map shape '3by5': expected ROWSxCOLS"),
        (["--step", "-1"], "argument --step: step '-1': expected one or two positive values in µm"),
        (["--compression", "zstd"], "argument --compression: compression 'zstd': expected none, lzf, gzip"),
        (["--bin-mode", "max"], "argument --bin-mode: invalid choice: 'max'"),
        (["--workers", "0"], "argument --workers: expected a positive integer, got 0"),
    ],
)
def test_bad_options(cli, tmp_path, args, message):
    folder = make_folder(tmp_path / "f", 1, 2)
    proc = cli("convert", folder, "-o", tmp_path / "m.h5", *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert files_in(tmp_path) == []


def test_bad_input_exit_code_and_message(cli, tmp_path):
    folder = make_folder(tmp_path / "f", 2, 3, skip={(1, 2)})
    proc = cli("convert", folder, "-o", tmp_path / "m.h5")
    assert proc.returncode == 2
    assert "kikuchi convert: error:" in proc.stderr
    assert "no image for map position (row 1, col 2) (5 images for the 2 x 3 map of 6 points, 1 missing)" in proc.stderr
    write_image(folder / "1_2.tiff", np.full((H, W), 40000, np.uint16))
    proc = cli("convert", folder, "-o", tmp_path / "m.h5", "--binning", "2")
    assert proc.returncode == 2
    assert "1_2.tiff (map position row 1, col 2): sum binning by 2 gives 160000, above 65535, the maximum of uint16" in proc.stderr
    assert files_in(tmp_path) == []
    proc = cli("convert", tmp_path / "nowhere", "-o", tmp_path / "m.h5")
    assert proc.returncode == 2 and "nowhere: no such folder or zip file" in proc.stderr


def test_ctrl_c_leaves_no_file(tmp_path):
    folder = make_folder(tmp_path / "f", 10, 10)
    out = tmp_path / "m.h5"
    slow = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)  # as on a terminal, even when started in the background\n"
        "from kikuchi.io.imagefolder import ImageSource\n"
        "read, read_into = ImageSource.read, ImageSource.read_into\n"
        "ImageSource.read = lambda self, i: (time.sleep(0.05), read(self, i))[1]\n"
        "ImageSource.read_into = lambda self, idx, out: (time.sleep(0.05 * len(idx)), read_into(self, idx, out))[1]\n"
        "from kikuchi.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", slow, "convert", str(folder), "-o", str(out), "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    partial = tmp_path / ".m.h5.partial"
    deadline = time.monotonic() + 60
    while not partial.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert partial.exists(), "the conversion never started writing"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted; no incomplete output was left under its final name" in stderr
    assert files_in(tmp_path) == []
