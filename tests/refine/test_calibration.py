"""Pattern-centre calibration: pattern matching on a grid of a map, and the moving-screen method."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter, map_coordinates

import kikuchi
from kikuchi.refine import fit_pc_plane_to_points, load_master_pattern
from kikuchi.index.map_index import grid_positions
from kikuchi.refine.calibration import calibrate_pc, moving_screen_pc
from tests.conftest import shared_file


def test_plane_fit_recovers_a_linear_pc_and_mean_is_weighted():
    rr, cc = np.mgrid[0:6, 0:8]
    r, c = rr.ravel(), cc.ravel()
    pcs = np.stack([0.5 + 0.002 * c - 0.001 * r, 0.2 + 0.003 * r, 0.6 + 0.0005 * r], axis=1)
    pc_map, info = fit_pc_plane_to_points(pcs, r, c, (6, 8))
    assert np.allclose(pc_map.reshape(-1, 3), pcs)
    assert info["plane"]["per_col"] == pytest.approx([0.002, 0.0, 0.0], abs=1e-9)
    pc_map, info = fit_pc_plane_to_points(pcs[:2], r[:2], c[:2], (6, 8), model="mean", weights=[1.0, 0.0])
    assert np.allclose(pc_map, pcs[0])
    with pytest.raises(ValueError, match="not all zero"):
        fit_pc_plane_to_points(pcs[:2], r[:2], c[:2], (6, 8), weights=[0.0, 0.0])


def test_grid_positions_skip_points_without_patterns():
    im = np.arange(12).reshape(3, 4)
    im[0, 0] = -1
    r, c = grid_positions(im, (2, 2))
    assert list(zip(r.tolist(), c.tolist())) == [(0, 3), (2, 0), (2, 3)]


def test_moving_screen_finds_the_centre_and_distance_of_a_magnification():
    rng = np.random.default_rng(3)
    near = gaussian_filter(rng.random((120, 120)), 2.5)
    rr, cc = np.mgrid[0:120, 0:120].astype(float)
    pc_row, pc_col, dd = 30.0, 65.0, 12.0
    far = [map_coordinates(near, [pc_row + (rr - pc_row) / s, pc_col + (cc - pc_col) / s], order=3) for s in ((dd + 3) / dd, (dd + 6) / dd)]
    out = moving_screen_pc(near, np.array(far), [3.0, 6.0], px_size=0.1, mask=None, sigma=30)
    assert out["pc_bruker"][:2] == pytest.approx([(pc_col + 0.5) / 120, (pc_row + 0.5) / 120], abs=0.003)
    assert out["dd"] == pytest.approx(dd, rel=0.02) and out["pc_bruker"][2] == pytest.approx(dd / 12.0, rel=0.02)
    with pytest.raises(ValueError, match="one positive distance per far pattern"):
        moving_screen_pc(near, np.array(far), [3.0])


def test_moving_screen_on_the_real_si_patterns(cli, tmp_path):
    # kikuchipy's tutorial picks three zone axes by hand in the same two patterns:
    # (PCx, PCy) Bruker (0.5123, 0.1394), DD 21.7 mm; measured here (whole patterns): (0.5152, 0.1480), 21.79 mm
    near = shared_file("vendor_patterns/real/kikuchipy-data_si_in.h5")
    far = shared_file("vendor_patterns/real/kikuchipy-data_si_out5mm.h5")
    out = tmp_path / "pc.json"
    proc = cli("calibrate", near, "--moving-screen", f"{far}:5", "--px-size", "90", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "moving screen: PC (Bruker)" in proc.stdout
    result = json.loads(out.read_text())
    assert result["pc_bruker"][:2] == pytest.approx([0.515, 0.148], abs=0.005)
    assert result["dd_mm"] == pytest.approx(21.8, abs=0.5) and result["pc_bruker"][2] == pytest.approx(0.504, abs=0.012)
    assert result["pairs"][0]["ncc"] > 0.6
    proc = cli("calibrate", near, "--moving-screen", f"{far}:0")
    assert proc.returncode == 2 and "expected FILE:DZ" in proc.stderr


def test_grid_calibration_of_the_real_ni_map():
    master = load_master_pattern(shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"))
    with kikuchi.open(shared_file("kikuchipy/nickel_ebsd_small.h5")) as m:
        start = m.detector.with_pc(m.detector.pc_mean + [0.01, -0.01, 0.01])  # one PC for the map, 0.01 off
        result = calibrate_pc(m, master, phases=["ni"], grid=(3, 3), detector=start)
        file_pc = m.detector.pc_mean
    assert len(result["points"]) == 9 and result["mean_ncc"] > result["mean_ncc_start"]
    # the file's per-pattern PCs (kikuchipy refinement) average (0.4251, 0.2134, 0.5007)
    assert np.abs(np.array(result["pc_bruker"]) - file_pc).max() < 0.003
    assert set(result["plane"]) == {"constant", "per_col", "per_row"}
