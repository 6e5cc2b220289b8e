"""``kikuchi quality`` through a subprocess on a small generated map."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

import kikuchi


@pytest.fixture
def map_file(tmp_path, rng):
    """A 5 x 6 map: sharp band patterns on the left, the same blurred into noise on the right."""
    y, x = np.mgrid[:40, :40].astype(float)
    sharp = 120 + 50 * (np.abs(np.sin((x + 0.3 * y) / 4.0)) > 0.8)
    from scipy import ndimage

    blurred = ndimage.gaussian_filter(sharp, 3.0)
    patterns = np.where((np.arange(6) < 3)[None, :, None, None], sharp, blurred) + rng.normal(0, 8, (5, 6, 40, 40))
    path = tmp_path / "q.h5"
    with kikuchi.MapWriter(path, nav_shape=(5, 6), pattern_shape=(40, 40), dtype="uint8", step_um=(1.0, 1.0)) as w:
        w.write_rows(0, np.clip(patterns, 0, 255).astype(np.uint8))
    return path


def test_quality_writes_maps_and_index(cli, map_file, tmp_path):
    out = tmp_path / "quality"
    proc = cli("quality", map_file, "-o", out, "--sigma", "6")
    assert proc.returncode == 0, proc.stderr
    assert "30 patterns: quality maps of the kikuchi signal" in proc.stdout
    with h5py.File(out / "quality.h5") as f:
        iq, adp, mean, std = (f[k][()] for k in ("iq", "adp", "mean", "std"))
    assert iq.shape == adp.shape == mean.shape == std.shape == (5, 6)
    assert iq.dtype == np.float32
    # sharp bands score higher than the same bands blurred into the same noise
    assert iq[:, :3].min() > iq[:, 3:].max()
    with kikuchi.open(map_file) as m:
        np.testing.assert_allclose(mean, m.read_all().mean(axis=(2, 3)), rtol=1e-6)
    html = (out / "index.html").read_text()
    assert set(re.findall(r'<img src="([^"]+)"', html)) == {"iq.png", "adp.png", "mean.png", "std.png"}
    for name in ("iq.png", "adp.png", "mean.png", "std.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_quality_bad_input(cli, tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    proc = cli("quality", bad, "-o", tmp_path / "o")
    assert proc.returncode == 2
    assert "bad.h5: not a readable HDF5 file" in proc.stderr
    proc = cli("quality", bad, "-o", tmp_path / "o", "--signal", "nope")
    assert proc.returncode == 2
    assert "invalid choice: 'nope'" in proc.stderr
