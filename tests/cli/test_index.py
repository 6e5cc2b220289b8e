"""``kikuchi index`` through a subprocess."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kikuchi
from tests.conftest import shared_file


@pytest.fixture(scope="module")
def small_map(tmp_path_factory):
    from kikuchi.simulate import simulate

    path = tmp_path_factory.mktemp("index") / "syn.h5"
    simulate(path, phase="ni", shape=(5, 6), grains=3, noise="low", seed=3, progress=False)
    return path


def test_index_real_nickel_to_ctf_loads_in_orix(cli, tmp_path):
    src = shared_file("kikuchipy/nickel_ebsd_small.h5")
    out = tmp_path / "ni.ctf"
    proc = cli("index", src, "--phase", "ni", "-o", out, "--no-progress", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["indexed"] == 9 and summary["phases"] == {"ni": 9}
    acc = summary["accuracy"]
    assert acc["within_1deg"] == 1.0 and acc["mean_error_deg_within_5"] < 0.5
    from orix import io

    xmap = io.load(out)
    assert xmap.size == 9 and xmap.phases[1].point_group.name == "m-3m"
    assert np.all(xmap.prop["bands"] >= 4) and np.all(xmap.prop["error"] == 0)
    import kikuchi

    with kikuchi.open(src) as m:
        ref = m.euler.reshape(-1, 3)
    from orix.quaternion import Orientation

    mis = np.degrees(xmap.orientations.angle_with(Orientation.from_euler(ref, xmap.phases[1].point_group)))
    assert np.all(mis < 1.0)


def test_index_synthetic_map_ang_h5_refine_figure(cli, tmp_path, small_map):
    ang = tmp_path / "syn.ang"
    fig = tmp_path / "summary.png"
    proc = cli("index", small_map, "--phase", "ni", "-o", ang, "--refine-pc", "--threads", "2", "--figure", fig, "--no-progress", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["accuracy"]["within_2deg"] >= 0.95
    assert summary["pc_refinement"]["mad_after_deg"] <= summary["pc_refinement"]["mad_before_deg"]
    assert fig.stat().st_size > 20_000
    from orix import io

    xmap = io.load(ang)
    assert xmap.size == 30 and (xmap.phase_id == 1).mean() >= 0.95
    h5 = tmp_path / "syn.h5"
    proc = cli("index", small_map, "--phase", "ni", "--phase", "fe-alpha", "-o", h5, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "indexed" in proc.stdout and "within 2 deg" in proc.stdout
    omap = kikuchi.read_orientation_map(h5)
    assert omap.nav_shape == (5, 6) and omap.phase_id.max() >= 1
    assert set(omap.header["error_codes"]) == {str(k) for k in range(7)}
    assert [p.name for p in omap.phases] == ["ni", "fe-alpha"]
    assert (omap.phase_id == 1).mean() >= 0.9
    assert omap.header["indexing_settings"]["phases"] == ["ni", "fe-alpha"]


def test_large_patterns_are_binned_for_band_detection(cli, tmp_path):
    """160 x 160 patterns: 'auto' bins them by 2 (80 px), with the accuracy of no binning; --binning 1 keeps them whole."""
    from kikuchi.simulate import simulate

    path = tmp_path / "big.h5"
    simulate(path, phase="ni", shape=(3, 4), pattern_shape=(160, 160), grains=3, noise="low", seed=5, progress=False)
    found = {}
    for binning in ("auto", "1"):
        proc = cli("index", path, "--phase", "ni", "-o", tmp_path / f"b{binning}.ctf", "--binning", binning, "--no-progress", "--json")
        assert proc.returncode == 0, proc.stderr
        found[binning] = json.loads(proc.stdout)
    assert found["auto"]["binning"] == 2 and found["1"]["binning"] == 1
    for summary in found.values():
        assert summary["accuracy"]["within_1deg"] == 1.0 and summary["accuracy"]["mean_error_deg_within_5"] < 0.3
    proc = cli("index", path, "--phase", "ni", "-o", tmp_path / "b3.ctf", "--binning", "3", "--no-progress")
    assert proc.returncode == 2 and "binning 3 does not divide the 160 x 160 patterns of big.h5" in proc.stderr
    proc = cli("index", path, "--phase", "ni", "-o", tmp_path / "b0.ctf", "--binning", "0", "--no-progress")
    assert proc.returncode == 2 and "--binning must be 'auto' or a positive whole number, got '0'" in proc.stderr


def test_index_errors(cli, tmp_path, small_map):
    proc = cli("index", small_map, "--phase", "ni", "-o", tmp_path / "x.txt")
    assert proc.returncode == 2 and "output must end in .ctf, .ang or .h5" in proc.stderr
    proc = cli("index", small_map, "--phase", "ni", "--pc", "0.5,0.5", "-o", tmp_path / "x.ctf")
    assert proc.returncode == 2 and "--pc must be three numbers X,Y,Z" in proc.stderr
    proc = cli("index", small_map, "--phase", "unobtainium", "-o", tmp_path / "x.ctf")
    assert proc.returncode == 2 and "unobtainium" in proc.stderr
    assert not (tmp_path / "x.ctf").exists()
    proc = cli("index", small_map, "--phase", "ni", "--phase", "ni", "-o", tmp_path / "x.ctf")
    assert proc.returncode == 2 and "--phase given twice" in proc.stderr
