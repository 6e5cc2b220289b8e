"""Synthetic maps of known truth and the simulate command."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.geometry import Detector, euler_to_matrix
from kikuchi.simulate import simulate
from kikuchi.simulate.master import MasterPattern
from kikuchi.simulate.projection import project_patterns
from kikuchi.simulate.synthetic import random_orientations, simulate_from_orientation_map, voronoi_grains
from tests.conftest import shared_file

MP_FILE = "kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KIKUCHI_CACHE_DIR", str(tmp_path / "cache"))


def _ncc(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def _misorientation_deg(e1, e2):
    g = euler_to_matrix(e1) @ np.swapaxes(euler_to_matrix(e2), -1, -2)
    return np.degrees(np.arccos(np.clip((np.trace(g, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))


def test_random_orientations_are_uniform():
    e = random_orientations(50000, rng=1)
    assert np.histogram(np.cos(e[:, 1]), bins=10, range=(-1, 1))[0].std() < 0.05 * 5000
    assert np.histogram(e[:, 0], bins=10, range=(0, 2 * np.pi))[0].std() < 0.05 * 5000


def test_voronoi_grains_and_errors():
    labels, seeds = voronoi_grains((30, 40), 8, rng=0)
    r, c = np.mgrid[0:30, 0:40]
    d = np.hypot(r[..., None] + 0.5 - seeds[:, 0], c[..., None] + 0.5 - seeds[:, 1])
    np.testing.assert_array_equal(labels, d.argmin(-1))
    with pytest.raises(ValueError, match="at least one grain"):
        voronoi_grains((3, 3), 0)


def test_synthetic_map_holds_its_truth(tmp_path):
    mp = MasterPattern.from_emsoft(shared_file(MP_FILE))
    out = simulate(tmp_path / "s.h5", shape=(8, 10), pattern_shape=(40, 40), grains=5, noise="low", seed=3,
                   master_pattern=mp, pc=(0.45, 0.7, 0.55), pc_convention="edax", gradient_deg=0.1,
                   ctf=tmp_path / "truth.ctf", progress=False)
    with kikuchi.open(out) as m:
        assert m.nav_shape == (8, 10) and m.pattern_shape == (40, 40) and m.dtype == np.uint8
        euler = m.euler
        pc = m.pattern_centre
        assert pc.convention == "bruker" and pc.mean == pytest.approx((0.45, 0.3, 0.55), abs=1e-6)
        assert m.phases[0]["space_group"] == 225
        truth = m.header["Truth"]
        labels = truth["grain_id"][()]
        params = json.loads(truth.attrs["json"])
        assert params["grains"] == len(np.unique(labels)) and params["noise"] == "low"
        np.testing.assert_allclose(truth["euler"][()], euler, atol=1e-6)
        raw = m.read_all().reshape(-1, 40, 40).astype(float)
        bg = m.static_background
        det = Detector.from_map(m)
    # patterns correlate with the noise-free projection at the true orientation, not at a neighbour grain's
    theory = project_patterns(mp, det, euler.reshape(-1, 3))
    signal = raw / bg
    flat_labels = labels.ravel()
    for i in range(0, 80, 7):
        own = _ncc(signal[i], theory[i])
        assert own > 0.5, (i, own)
        other = np.flatnonzero(flat_labels != flat_labels[i])
        if other.size:
            assert _ncc(signal[i], theory[other[0]]) < own - 0.2
    # in-grain gradients are small, grain boundaries are not
    e = euler.reshape(8, 10, 3)
    same = labels[:, 1:] == labels[:, :-1]
    mis = _misorientation_deg(e[:, 1:], e[:, :-1])
    assert mis[same].max() < 0.25 and mis[same].max() > 0
    omap = kikuchi.read_orientation_map(tmp_path / "truth.ctf")
    assert tuple(omap.nav_shape) == (8, 10)
    assert np.max(_misorientation_deg(omap.euler.reshape(-1, 3), euler.reshape(-1, 3))) < 0.01


def test_noise_free_map_is_the_projection_and_seeds_reproduce(tmp_path):
    mp = MasterPattern.from_emsoft(shared_file(MP_FILE))
    a = simulate(tmp_path / "a.h5", shape=(3, 4), pattern_shape=(20, 30), grains=2, noise=None, seed=5, master_pattern=mp, progress=False)
    b = simulate(tmp_path / "b.h5", shape=(3, 4), pattern_shape=(20, 30), grains=2, noise=None, seed=5, master_pattern=mp, progress=False)
    with kikuchi.open(a) as ma, kikuchi.open(b) as mb:
        assert ma.dtype == np.float32 and ma.static_background is None
        np.testing.assert_array_equal(ma.read_all(), mb.read_all())
        theory = project_patterns(mp, Detector.from_map(ma), ma.euler.reshape(-1, 3))
        np.testing.assert_allclose(ma.read_all().reshape(-1, 20, 30), theory, atol=0.02)  # Euler angles stored as float32


@pytest.mark.parametrize("compression, noise, stored", [
    ("auto", None, None), ("gzip", None, "gzip"), ("none", None, None), ("auto", "medium", "gzip"), ("none", "medium", None),
])  # fmt: skip
def test_compression_of_the_stored_patterns(tmp_path, compression, noise, stored):
    # more than one block of the pool (8 MiB of float32 patterns) and a short last chunk: the pipelined writer in order
    mp = MasterPattern.from_emsoft(shared_file(MP_FILE))
    kw = dict(shape=(41, 53), pattern_shape=(40, 40), grains=4, noise=noise, seed=2, master_pattern=mp, progress=False)
    out = simulate(tmp_path / "c.h5", compression=compression, **kw)
    ref = simulate(tmp_path / "r.h5", compression="gzip", **kw)
    with h5py.File(out) as f:
        assert f["Scan/EBSD/Data/RawPatterns"].compression == stored
    with kikuchi.open(out) as m, kikuchi.open(ref) as r:
        got = m.read_all()
        assert got.dtype == (np.float32 if noise is None else np.uint8) and got.std() > 0
        np.testing.assert_array_equal(got, r.read_all())  # the same patterns, in the same places, whatever the filter
        np.testing.assert_allclose(m.bse_map, got.reshape(*m.nav_shape, -1).mean(axis=-1), rtol=1e-6)
        if noise is None:  # every block in its place
            theory = project_patterns(mp, Detector.from_map(m), m.euler.reshape(-1, 3))
            np.testing.assert_allclose(got.reshape(-1, 40, 40), theory, atol=0.02)  # Euler angles stored as float32


def test_compression_choice_is_checked(tmp_path):
    with pytest.raises(ValueError, match="compression='lz4'"):
        simulate(tmp_path / "x.h5", shape=(2, 2), pattern_shape=(10, 10), grains=1, compression="lz4", progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_default_kinematical_master_pattern(tmp_path):
    out = simulate(tmp_path / "k.h5", phase="ni", shape=(2, 3), pattern_shape=(30, 30), grains=2, noise="medium", progress=False)
    with kikuchi.open(out) as m:
        assert "kinematical" in json.loads(m.header["Truth"].attrs["json"])["master_patterns"][0]
        assert m.read_all().std() > 1


def test_from_orientation_map(tmp_path):
    from kikuchi.io.orientation_map import OrientationMap

    mp = MasterPattern.from_emsoft(shared_file(MP_FILE))
    euler = random_orientations(12, rng=2)
    phase_id = np.ones(12, dtype=int)
    phase_id[5] = 0  # not indexed: no pattern signal
    omap = OrientationMap.from_arrays(euler=euler, phase_id=phase_id, nav_shape=(3, 4), step_um=0.5,
                                      phases=[{"id": 1, "name": "Ni", "space_group": 225, "lattice": [0.3524, 0.3524, 0.3524, 90, 90, 90]}])
    omap.write(tmp_path / "m.ctf")
    out = simulate_from_orientation_map(tmp_path / "m.ctf", tmp_path / "m.h5", pattern_shape=(25, 25), pc=(0.5, 0.3, 0.6),
                                        master_pattern=mp, progress=False)
    with kikuchi.open(out) as m:
        assert m.nav_shape == (3, 4) and m.step_um == (0.5, 0.5)
        got = m.read_all().reshape(12, 25, 25)
        assert np.isnan(m.euler.reshape(-1, 3)[5]).all()
    det = Detector((25, 25), (0.5, 0.3, 0.6))
    expected = project_patterns(mp, det, omap.euler)
    ok = phase_id > 0
    for i in np.flatnonzero(ok):
        assert _ncc(got[i], expected[i]) > 0.999
    assert np.all(got[5] == 0)


def test_cli_synthetic_and_from_map(cli, tmp_path):
    mp = str(shared_file(MP_FILE))
    proc = cli("simulate", "-o", tmp_path / "s.h5", "--shape", "4x5", "--pattern-shape", "30x30", "--grains", "3",
               "--noise", "high", "--seed", "2", "--master-pattern", mp, "--ctf", tmp_path / "t.ctf", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and (tmp_path / "t.ctf").exists()
    with kikuchi.open(tmp_path / "s.h5") as m:
        assert m.nav_shape == (4, 5) and m.pattern_shape == (30, 30)
    proc = cli("simulate", "--from-map", tmp_path / "t.ctf", "--pattern-shape", "30x40", "--pc", "0.5,0.7,0.6",
               "--pc-convention", "edax", "--master-pattern", mp, "-o", tmp_path / "f.h5", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    with kikuchi.open(tmp_path / "f.h5") as m:
        assert m.pattern_shape == (30, 40) and m.dtype == np.float32
        assert m.pattern_centre.mean == pytest.approx((0.5, 0.3, 0.6 * 30 / 30), abs=1e-6)


def test_cli_errors(cli, tmp_path):
    proc = cli("simulate", "-o", tmp_path / "x.h5", "--shape", "40by50")
    assert proc.returncode == 2 and "expected ROWSxCOLS such as 40x50, got '40by50'" in proc.stderr
    proc = cli("simulate", "-o", tmp_path / "x.h5", "--noise", "extreme")
    assert proc.returncode == 2 and "noise must be low, medium, high or counts per pixel" in proc.stderr
    proc = cli("simulate", "-o", tmp_path / "x.h5", "--from-map", tmp_path / "missing.ctf")
    assert proc.returncode == 2 and "missing.ctf: no such orientation map" in proc.stderr
    proc = cli("simulate", "-o", tmp_path / "x.h5", "--pc", "0.5,0.5")
    assert proc.returncode == 2 and "expected three numbers X,Y,Z" in proc.stderr
    proc = cli("simulate", "-o", tmp_path / "x.h5", "--pc", "10,20,15000", "--pc-convention", "emsoft", "--shape", "2x2")
    assert proc.returncode == 2 and "pass px_size_um" in proc.stderr
    assert not (tmp_path / "x.h5").exists()


def test_top_level_simulate_is_callable_after_submodule_imports(tmp_path):
    import subprocess
    import sys

    code = (
        "import kikuchi.simulate.lambert, kikuchi, sys\n"
        "out = kikuchi.simulate(sys.argv[1], shape=(2, 2), pattern_shape=(10, 10), grains=1, noise=None,"
        " master_pattern=sys.argv[2], progress=False)\n"
        "print(out.name, callable(kikuchi.simulate), kikuchi.simulate.simulate is not None)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "t.h5"), str(shared_file(MP_FILE))],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["t.h5", "True", "True"]


def test_phase_lists():
    from kikuchi.simulate.synthetic import _parse_phases

    assert [p.space_group for p in _parse_phases("ni,fe-alpha")] == [225, 229]
    assert [p.space_group for p in _parse_phases("Ti:194:2.95,4.68")] == [194]
    assert [p.space_group for p in _parse_phases("Ti:194:2.95,4.68; ni")] == [194, 225]


def test_two_phase_synthetic_map(tmp_path):
    out = simulate(tmp_path / "two.h5", phase="ni,fe-alpha", shape=(6, 6), pattern_shape=(20, 20), grains=6, noise=None, seed=4, progress=False)
    with kikuchi.open(out) as m:
        assert [p["space_group"] for p in m.phases] == [225, 229]
        ids = m.header["Truth/phase_id"][()]
        grains = m.header["Truth/grain_id"][()]
    assert set(np.unique(ids)) <= {1, 2}
    for g in np.unique(grains):  # one phase per grain
        assert len(np.unique(ids[grains == g])) == 1


def test_contrast_option(cli, tmp_path):
    """--contrast sets the Kikuchi contrast of the detection model (recorded in the truth); faint bands at 0.02."""
    mp = str(shared_file(MP_FILE))
    spread = {}
    for contrast in ("0.12", "0.02"):
        out = tmp_path / f"c{contrast}.h5"
        proc = cli("simulate", "-o", out, "--shape", "2x3", "--pattern-shape", "40x40", "--grains", "2", "--noise", "2000",
                   "--contrast", contrast, "--master-pattern", mp, "--seed", "4", "--no-progress")
        assert proc.returncode == 0, proc.stderr
        with kikuchi.open(out) as m:
            assert json.loads(m.header["Truth"].attrs["json"])["contrast"] == float(contrast)
            rel = m.read_all().reshape(-1, 40, 40) / m.static_background
        spread[contrast] = float(rel[:, 8:32, 8:32].std(axis=(1, 2)).mean())
    assert spread["0.12"] > 3 * spread["0.02"]
    with pytest.raises(ValueError, match="contrast"):
        simulate(tmp_path / "x.h5", shape=(2, 2), contrast=0.0, progress=False)
    proc = cli("simulate", "-o", tmp_path / "y.h5", "--contrast", "-1")
    assert proc.returncode == 2 and "--contrast" in proc.stderr
