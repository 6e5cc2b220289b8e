"""``kikuchi index --method dictionary`` through a subprocess."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.cli._index_dictionary import REFINE_CANDIDATES
from tests.conftest import shared_file

NI_MASTER = "kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"


@pytest.fixture(scope="module")
def small_map(tmp_path_factory):
    from kikuchi.simulate import simulate

    path = tmp_path_factory.mktemp("index_dictionary") / "syn.h5"
    simulate(path, phase="ni", shape=(4, 5), grains=3, noise="low", seed=5, progress=False)
    return path


def test_real_nickel_exact_h5_with_top_k(cli, tmp_path):
    src = shared_file("kikuchipy/nickel_ebsd_small.h5")
    out = tmp_path / "ni.h5"
    proc = cli(
        "index", src, "--phase", "ni", "--method", "dictionary", "--master-pattern", shared_file(NI_MASTER), "--resolution", "3",
        "--top-k", "3", "-o", out, "--no-progress", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["method"] == "dictionary" and summary["indexed"] == 9 and summary["phases"] == {"ni": 9}
    assert summary["dictionary_size"] == 30443 and summary["compressed"] is False and summary["top_k"] == 3
    # a 3-degree dictionary: every pattern within 3 degrees of the reference (measured: 1.3 .. 2.4, mean 1.9);
    # a 4-degree one misses one grain altogether (best NCC 0.09 against 0.3 here)
    assert summary["accuracy"]["within_5deg"] == 1.0 and summary["accuracy"]["mean_error_deg_within_5"] < 2.5
    assert 0.2 < summary["mean_score"] < 0.5
    with h5py.File(out, "r") as f:
        g = f["OrientationMap/top_k"]
        assert g["euler"].shape == (9, 3, 3) and g["phase_id"][()].min() == 1
        score = g["score"][()]
        assert np.all(np.diff(score, axis=1) <= 0)  # best first
    omap = kikuchi.read_orientation_map(out)
    assert np.allclose(omap["score"], score[:, 0], atol=1e-6)


def test_real_nickel_compressed_and_refined_to_ctf(cli, tmp_path):
    src = shared_file("kikuchipy/nickel_ebsd_small.h5")
    out = tmp_path / "ni.ctf"
    proc = cli(
        "index", src, "--phase", "ni", "--method", "dictionary", "--master-pattern", shared_file(NI_MASTER), "--resolution", "3",
        "--compressed", "--components", "150", "--candidates", "20", "--refine", "-o", out, "--no-progress", "--threads", "2",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "dictionary-indexed 9 of 9 points" in proc.stdout and "compressed" in proc.stdout
    assert "refined (orientation)" in proc.stdout
    omap = kikuchi.read_orientation_map(out)
    assert omap.n_points == 9 and np.all(omap["error"] == 0)
    with kikuchi.open(src) as m:
        reference = m.euler.reshape(-1, 3)
    from orix.quaternion import Orientation

    sym = omap.phases[0].to_orix().point_group
    mis = np.degrees(Orientation.from_euler(omap.euler, sym).angle_with(Orientation.from_euler(reference, sym)))
    assert np.all(mis < 0.1), mis.round(3)  # refined from the 3-degree dictionary's matches (measured: 0.026 .. 0.098 deg)


def test_real_nickel_dictionary_and_refinement_within_a_tenth_of_a_degree(cli, tmp_path):
    # issue 13's target, with the default options: every pattern within 0.1 degree of the file's reference
    # (kikuchipy dictionary indexing + refinement). The 3-degree matches lie 1.25 .. 2.41 degrees off, so the trust
    # region follows the resolution (3 degrees per rotation component); with 2 degrees pattern 8 stopped on its
    # border 0.32 degree away. Measured: 0.098, 0.059, 0.059, 0.026, 0.039, 0.056, 0.035, 0.078, 0.047 degree. The
    # margin is small and cannot be much larger: the reference is only reproducible to about 0.1 degree
    # (docs/refinement.md, "Dictionary indexing + refinement against the reference")
    src = shared_file("kikuchipy/nickel_ebsd_small.h5")
    out = tmp_path / "ni.h5"
    proc = cli(
        "index", src, "--phase", "ni", "--method", "dictionary", "--master-pattern", shared_file(NI_MASTER), "--resolution", "3",
        "--refine", "-o", out, "--no-progress", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["refinement"]["trust_region_deg"] == 3.0 and summary["refinement"]["phases"]["ni"]["points"] == 9
    # the REFINE_CANDIDATES best matches screened (--refine-candidates), the 5 best written (--top-k); backgrounds subtracted
    assert summary["refinement"]["candidates"] == REFINE_CANDIDATES and summary["top_k"] == 5 and summary["background_operation"] == "subtract"
    with h5py.File(out, "r") as f:
        assert f["OrientationMap/top_k/euler"].shape == (9, 5, 3)
    omap = kikuchi.read_orientation_map(out)
    with kikuchi.open(src) as m:
        reference = m.euler.reshape(-1, 3)
    from orix.quaternion import Orientation
    from orix.quaternion.symmetry import Oh

    mis = np.degrees(Orientation.from_euler(omap.euler, Oh).angle_with(Orientation.from_euler(reference, Oh)))
    assert np.all(mis < 0.1), mis.round(3)
    assert np.all(omap["ncc"] > omap["ncc_start"])
    # measured: 6 of 9 refined from another of the 20 best matches than the best (a neighbour on the grid: same grain)
    assert omap["candidate"].max() < REFINE_CANDIDATES and summary["refinement"]["phases"]["ni"]["points_from_another_match"] == int((omap["candidate"] > 0).sum())


def test_former_defaults_divided_backgrounds_and_the_best_match_refined_alone(cli, tmp_path, small_map):
    out = tmp_path / "syn.h5"
    proc = cli(
        "index", small_map, "--phase", "ni", "--method", "dictionary", "--master-pattern", "kinematical", "--resolution", "5",
        "--background-operation", "divide", "--refine", "--refine-candidates", "1", "--top-k", "2", "-o", out, "--no-progress", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["background_operation"] == "divide" and summary["refinement"]["candidates"] == 1 and summary["top_k"] == 2
    assert summary["refinement"]["phases"]["ni"]["points_from_another_match"] == 0
    omap = kikuchi.read_orientation_map(out)
    assert "candidate" not in omap.columns and omap.n_points == 20
    # measured: every point within 1 degree of the truth after refinement from the 5-degree grid
    assert summary["accuracy"]["within_2deg"] == 1.0


def test_synthetic_map_with_kinematical_master_pattern(cli, tmp_path, small_map):
    out = tmp_path / "syn.ang"
    proc = cli(
        "index", small_map, "--phase", "ni", "--method", "dictionary", "--master-pattern", "kinematical", "--resolution", "3",
        "--mask", "circular", "-o", out, "--no-progress", "--json", "--threads", "1",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["execution"] == "serially (1 thread)"
    # a 3-degree dictionary (measured: all within 3 degrees of the truth, a quarter within 2)
    assert summary["accuracy"]["within_5deg"] == 1.0 and summary["accuracy"]["mean_error_deg_within_5"] < 3.0
    omap = kikuchi.read_orientation_map(out)
    assert omap.n_points == 20 and np.all((omap["ci"] > 0) & (omap["ci"] <= 1))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--master-pattern", "kinematical"], "--method dictionary needs --resolution DEG"),
        (["--resolution", "3"], "--method dictionary needs --master-pattern F"),
        (["--resolution", "3", "--master-pattern", "kinematical", "--master-pattern", "kinematical"], "give one --master-pattern per --phase"),
        (["--resolution", "3", "--master-pattern", "kinematical", "--refine-pc"], "--refine-pc belongs to Hough indexing"),
        (["--resolution", "3", "--master-pattern", "kinematical", "--master-energy", "hot"], "--master-energy must be 'highest', 'weighted'"),
        (["--resolution", "3", "--master-pattern", "missing.h5"], "missing.h5: no such master pattern file"),
        (["--resolution", "3", "--master-pattern", "kinematical", "--smooth", "-1"], "--smooth must be a number of pixels >= 0"),
        (["--resolution", "3", "--master-pattern", "kinematical", "--refine-candidates", "0"], "--refine-candidates: expected a positive integer, got 0"),
        (["--resolution", "3", "--master-pattern", "kinematical", "--background-operation", "none"], "--background-operation: invalid choice: 'none'"),
    ],
)
def test_bad_options_are_refused(cli, tmp_path, small_map, extra, message):
    proc = cli("index", small_map, "--phase", "ni", "--method", "dictionary", *extra, "-o", tmp_path / "x.ctf", "--no-progress")
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr
    assert not (tmp_path / "x.ctf").exists()
