"""Kinematical master patterns: band model, symmetry, disk cache, and real Ni patterns."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import kikuchi
from kikuchi.crystal import Phase, reflectors
from kikuchi.simulate.kinematical import kinematical_intensity, kinematical_master_pattern, master_pattern_cache_dir
from kikuchi.simulate.lambert import lambert_grid_vectors
from kikuchi.simulate.master import MasterPattern
from tests.conftest import shared_file


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path, monkeypatch):
    """Every test here caches into its own temporary folder, never the user's."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("KIKUCHI_CACHE_DIR", str(folder))
    monkeypatch.delenv("KIKUCHI_NO_CACHE", raising=False)
    return folder / "master_patterns"


def _random_unit_vectors(n, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_master_pattern_shape_and_metadata(tmp_cache):
    mp = kinematical_master_pattern("ni", size=51, cache=False)
    assert isinstance(mp, MasterPattern)
    assert mp.size == 51 and mp.kv == 20.0 and mp.phase == Phase.parse("ni")
    assert mp.north.min() >= 0 and np.isfinite(mp.north).all()
    assert mp.metadata["n_reflectors"] == len(reflectors("ni"))
    assert mp.metadata["families"][:2] == [[1, 1, 1], [2, 0, 0]]
    assert not tmp_cache.exists()


def test_bands_follow_the_planes():
    """Directions near a {111} plane are brighter on average than directions in general."""
    ref = reflectors("ni")
    v = _random_unit_vectors(20000)
    intensity = kinematical_intensity(ref, v)
    fam111 = ref.select(ref.family == 0)
    angle = np.arcsin(np.abs(v @ fam111.normals.T)).min(axis=1)
    near = angle < 0.5 * fam111.bragg_angle[0]
    assert near.sum() > 100
    assert intensity[near].mean() > 1.3 * intensity.mean()
    # the four {111} bands alone: 1 inside one band, dark lines just outside
    alone = kinematical_intensity(fam111, v)
    assert np.mean(alone[near] > 0.99) > 0.9  # (a few lie also on the dark line of another band)
    dark = (angle > 1.1 * fam111.bragg_angle[0]) & (angle < 1.4 * fam111.bragg_angle[0])
    assert np.mean(alone[dark] < -0.3) > 0.9


@pytest.mark.parametrize("name", ["ni", "gan-wurtzite", "ti-alpha"])
def test_model_has_the_laue_group_symmetry(name):
    phase = Phase.parse(name)
    ref = reflectors(phase)
    v = _random_unit_vectors(1000)
    values = kinematical_intensity(ref, v)
    rotations = phase.point_group_matrices(laue=True)
    rotated = np.einsum("rij,nj->rni", rotations, v)
    np.testing.assert_allclose(kinematical_intensity(ref, rotated), np.broadcast_to(values, rotated.shape[:2]), atol=1e-9)
    if phase.is_hexagonal:  # and not more: a 45 degree turn about z changes it
        c, s = np.cos(np.pi / 4), np.sin(np.pi / 4)
        turned = kinematical_intensity(ref, v @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T)
        assert np.abs(turned - values).mean() > 0.05 * np.ptp(values)


def test_master_pattern_samples_the_model():
    size = 251
    mp = kinematical_master_pattern("gan-wurtzite", size=size, cache=False)
    ref = reflectors("gan-wurtzite")
    v = _random_unit_vectors(2000)
    min_edge = 0.5 * np.sqrt(2 * np.pi) / (size - 1)
    raw = kinematical_intensity(ref, v, min_edge_rad=min_edge)
    grid_min = kinematical_intensity(ref, lambert_grid_vectors(size).reshape(-1, 3), min_edge_rad=min_edge).min()
    expected = np.maximum(raw - grid_min, 0) ** 0.5
    diff = np.abs(mp.sample(v) - expected)
    assert np.median(diff) < 0.02 * np.ptp(expected)
    assert np.corrcoef(mp.sample(v), expected)[0, 1] > 0.97


def test_disk_cache_round_trip(tmp_cache):
    first = kinematical_master_pattern("al", size=31)
    files = sorted(tmp_cache.glob("*.npz"))
    assert len(files) == 1 and files[0].name.startswith("kinematical_al_20kV_31_")
    assert not list(tmp_cache.glob(".*partial"))
    second = kinematical_master_pattern("al", size=31)
    assert second.metadata["cache_file"] == str(files[0])
    np.testing.assert_array_equal(second.north, first.north)
    np.testing.assert_array_equal(second.south, first.south)
    assert second.phase == first.phase and second.kv == 20.0
    # any parameter or phase change is a new entry
    kinematical_master_pattern("al", size=31, kv=15)
    kinematical_master_pattern("al:225:0.405", size=31)
    assert len(list(tmp_cache.glob("*.npz"))) == 3


def test_cache_can_be_disabled(tmp_cache, monkeypatch):
    monkeypatch.setenv("KIKUCHI_NO_CACHE", "1")
    kinematical_master_pattern("cu", size=21)
    assert not tmp_cache.exists()
    monkeypatch.delenv("KIKUCHI_NO_CACHE")
    kinematical_master_pattern("cu", size=21, cache=False)
    assert not tmp_cache.exists()
    other = tmp_cache.parent / "elsewhere"
    kinematical_master_pattern("cu", size=21, cache_dir=other)
    assert len(list(other.glob("*.npz"))) == 1


def test_corrupt_cache_is_recomputed(tmp_cache, caplog):
    mp = kinematical_master_pattern("si", size=21)
    (path,) = tmp_cache.glob("*.npz")
    path.write_bytes(b"not an npz file")
    with caplog.at_level(logging.WARNING, logger="kikuchi.simulate.kinematical"):
        again = kinematical_master_pattern("si", size=21)
    assert "ignoring unreadable master pattern cache" in caplog.text
    np.testing.assert_array_equal(again.north, mp.north)
    assert np.load(path)["north"].shape == (21, 21)  # rewritten


def test_cache_dir_default(monkeypatch, tmp_path):
    monkeypatch.delenv("KIKUCHI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert master_pattern_cache_dir() == tmp_path / "xdg" / "kikuchi" / "master_patterns"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": 5}, "size must be at least 11 pixels"),
        ({"gamma": 0}, "gamma must be positive"),
        ({"edge_fraction": 0}, "edge_fraction must be positive"),
        ({"edge_line_width": 0}, "edge_line_width must be positive"),
        ({"max_reflectors": 0}, "max_reflectors must be at least 1"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kinematical_master_pattern("ni", cache=False, **{"size": 21, **kwargs})


def _ncc(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_real_nickel_patterns_match_at_the_reference_orientation():
    """Projected with the detector of the file, the kinematical Ni pattern correlates with the
    9 real, background-corrected Ni patterns, best at the reference orientation: rotating it
    by 1 degree about any sample axis lowers the correlation for every pattern."""
    from kikuchi.geometry import axis_angle_matrix, euler_to_matrix, matrix_to_euler
    from kikuchi.process import remove_dynamic_background, remove_static_background
    from kikuchi.simulate.projection import project_patterns

    ebsd = kikuchi.open(shared_file("kikuchipy/nickel_ebsd_small.h5"))
    patterns = ebsd.read_all().reshape(-1, *ebsd.pattern_shape).astype(np.float64)
    real = remove_dynamic_background(remove_static_background(patterns, ebsd.static_background.astype(np.float64)))
    euler = ebsd.euler.reshape(-1, 3)
    detector = ebsd.detector
    index = np.arange(len(euler))

    mp = kinematical_master_pattern("ni", kv=ebsd.kv, size=401, cache=False)
    sim = project_patterns(mp, detector, euler, pc_index=index)
    ncc = np.array([_ncc(r, s) for r, s in zip(real, sim)])
    assert np.all(ncc > 0.25), ncc.round(3)

    g = euler_to_matrix(euler)
    for axis in np.eye(3):
        for sign in (1, -1):
            turned = matrix_to_euler(g @ axis_angle_matrix(axis, np.radians(sign * 1.0)).T)
            sim_turned = project_patterns(mp, detector, turned, pc_index=index)
            ncc_turned = np.array([_ncc(r, s) for r, s in zip(real, sim_turned)])
            assert np.all(ncc > ncc_turned), (axis, sign, ncc.round(3), ncc_turned.round(3))
