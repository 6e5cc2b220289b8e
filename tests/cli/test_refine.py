"""``kikuchi refine``: a Hough-indexed map refined by pattern matching, through the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kikuchi


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    from orix.quaternion import Orientation
    from orix.quaternion.symmetry import Oh

    return np.degrees(Orientation.from_euler(a, Oh).angle_with(Orientation.from_euler(b, Oh)))


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from tests.conftest import run_cli

    folder = tmp_path_factory.mktemp("refine")
    path = kikuchi.simulate(folder / "syn.h5", phase="ni", shape=(3, 4), grains=2, noise="low", seed=3, progress=False)
    run_cli("index", path, "--phase", "ni", "-o", folder / "hough.ctf", "--no-progress", check=True)
    return folder, path


def test_refine_round_trip_writes_ctf_with_ncc_and_gets_closer_to_the_truth(indexed, cli):
    folder, path = indexed
    out = folder / "refined.ctf"
    proc = cli("refine", path, "--orientations", folder / "hough.ctf", "--master-pattern", "kinematical:ni", "-o", out, "--no-progress", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["refined"] == 12 and summary["mean_ncc"] > summary["mean_ncc_start"]
    a = summary["against_reference"]
    assert a["mean_deg"] < a["mean_start_deg"] and a["max_deg"] < 0.3
    refined = kikuchi.read_orientation_map(out)
    hough = kikuchi.read_orientation_map(folder / "hough.ctf")
    with kikuchi.open(path) as m:
        truth = m.truth_euler.reshape(-1, 3)
    # CTF keeps 4 decimals of degrees: the written orientations are those of the summary
    assert _angle_deg(refined.euler, truth).mean() < _angle_deg(hough.euler, truth).mean()
    assert refined.nav_shape == (3, 4) and np.all(refined.columns["bc"] > 100)  # BC = 255 NCC


def test_refine_h5_keeps_ncc_and_pcs(indexed, cli):
    folder, path = indexed
    out = folder / "refined.h5"
    proc = cli("refine", path, "--orientations", folder / "hough.ctf", "--master-pattern", "kinematical:ni", "--refine", "both",
               "--pc-model", "mean", "-o", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "pattern centre (Bruker, mean of the refined points)" in proc.stdout
    omap = kikuchi.read_orientation_map(out)
    for name in ("ncc", "ncc_start", "pcx", "pcy", "pcz"):
        assert name in omap.columns
    assert np.ptp(omap.columns["pcx"]) == 0  # one PC for the map
    with kikuchi.open(path) as m:
        pc_truth = m.detector.pc_mean
    assert np.abs(np.array([omap.columns[k][0] for k in ("pcx", "pcy", "pcz")]) - pc_truth).max() < 0.01


def test_refine_errors_are_one_line(indexed, cli, tmp_path):
    folder, path = indexed
    proc = cli("refine", path, "--orientations", folder / "hough.ctf", "--master-pattern", "kinematical:ni", "-o", tmp_path / "x.txt")
    assert proc.returncode == 2 and "output must end in .ctf, .ang or .h5" in proc.stderr
    proc = cli("refine", path, "--orientations", folder / "hough.ctf", "--master-pattern", "kinematical:ni", "--pc-model", "plane", "-o", tmp_path / "x.ctf")
    assert proc.returncode == 2 and "refine 'pc' or 'both' with it" in proc.stderr
    proc = cli("refine", path, "--orientations", folder / "hough.ctf", "--master-pattern", tmp_path / "none.h5", "-o", tmp_path / "x.ctf")
    assert proc.returncode == 2 and "no such master pattern file" in proc.stderr
    proc = cli("refine", path, "--orientations", folder / "hough.ctf", "--master-pattern", "kinematical:ni", "--trust-region", "0", "-o", tmp_path / "x.ctf")
    assert proc.returncode == 2 and "--trust-region must be DEG or DEG,PC" in proc.stderr


def test_pc_extrapolated_from_the_beam_position(cli, tmp_path):
    """A map whose PC moves with the beam (large steps): refined at PCs extrapolated from the mean PC at the map centre."""
    from kikuchi.geometry import Detector

    nav, step, pc0 = (3, 4), 400.0, (0.5, 0.3, 0.6)
    truth_det = Detector((60, 60), pc0, binning=8, px_size_um=25.0).extrapolate_pc(nav, step)  # 400 µm: PC moves 0.033 a column
    path = kikuchi.simulate(tmp_path / "moving.h5", phase="ni", shape=nav, grains=2, noise="low", seed=4, step_um=step,
                            pc=truth_det.pc, px_size_um=25.0, binning=8, progress=False)  # fmt: skip
    with kikuchi.open(path) as m:
        truth = m.truth_euler.reshape(-1, 3)
    start = tmp_path / "start.ctf"
    omap = kikuchi.OrientationMap.from_arrays(euler=truth, phase_id=np.ones(12, dtype=int), nav_shape=nav, step_um=step,
                                              phases=[{"id": 1, "name": "Ni", "space_group": 225, "lattice": [0.3524] * 3 + [90] * 3}])  # fmt: skip
    omap.write(start)
    errors = {}
    for model in ("point", "extrapolate"):
        out = tmp_path / f"{model}.h5"
        proc = cli("refine", path, "--orientations", start, "--master-pattern", "kinematical:ni", "--pc", ",".join(map(str, pc0)),
                   "--px-size", "25", "--pc-model", model, "-o", out, "--no-progress")  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        refined = kikuchi.read_orientation_map(out)
        errors[model] = _angle_deg(refined.euler, truth)
        if model == "extrapolate":
            pcs = np.stack([refined.columns[k] for k in ("pcx", "pcy", "pcz")], axis=-1).reshape(-1, 3)
            np.testing.assert_allclose(pcs, truth_det.pc.reshape(-1, 3), atol=2e-6)  # the truth's PCs, from the geometry
    # measured: extrapolate 0.008-0.074 deg; one PC for the map 1.07-2.42 deg
    assert errors["extrapolate"].max() < 0.15 and errors["point"].min() > 0.5


def test_pc_extrapolation_needs_the_pixel_size(indexed, cli, tmp_path):
    folder, path = indexed
    proc = cli("refine", path, "--orientations", folder / "hough.ctf", "--master-pattern", "kinematical:ni", "--pc-model", "extrapolate",
               "-o", tmp_path / "x.ctf")  # fmt: skip
    assert proc.returncode == 2 and "pixel size" in proc.stderr and "--px-size" in proc.stderr
