"""Orientation maps in HDF5: kikuchi's results file and map files with orientations."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.io.orientation_map import OrientationMapError
from tests.conftest import shared_file


def test_round_trip_of_a_real_ctf_is_exact(tmp_path):
    omap = kikuchi.read_orientation_map(shared_file("xcdskd/GaN_polytype_mixing.ctf"))
    out = omap.write(tmp_path / "gan.h5")
    back = kikuchi.read_orientation_map(out)
    assert back.source_format == "h5" and back.grid == omap.grid and back.nav_shape == (172, 196)
    np.testing.assert_array_equal(back.euler, omap.euler)
    np.testing.assert_array_equal(back.phase_id, omap.phase_id)
    for name, values in omap.columns.items():
        np.testing.assert_array_equal(back.columns[name], values)
    assert [(p.id, p.name, p.space_group, p.lattice_angstrom) for p in back.phases] == [
        (p.id, p.name, p.space_group, p.lattice_angstrom) for p in omap.phases
    ]
    assert back.header["XCells"] == omap.header["XCells"]
    # and it still goes on to the vendor formats
    again = kikuchi.read_orientation_map(back.write(tmp_path / "gan.ctf"))
    np.testing.assert_allclose(again.euler, omap.euler, atol=1e-4)


def test_map_file_truth_reads_as_orientation_map(tmp_path):
    path = tmp_path / "syn.h5"
    kikuchi.simulate(path, phase="ni", shape=(4, 5), pattern_shape=(20, 20), grains=3, noise=None, progress=False)
    omap = kikuchi.read_orientation_map(path)
    with kikuchi.open(path) as m:
        truth = m.euler
    assert omap.nav_shape == (4, 5) and [p.name for p in omap.phases] == ["ni"]
    np.testing.assert_allclose(omap.euler.reshape(4, 5, 3), truth)
    assert (omap.phase_id == 1).all()
    assert omap.to_orix().size == 20


def test_files_that_are_not_orientation_maps(tmp_path):
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f["x"] = 1
    with pytest.raises(OrientationMapError, match="empty.h5: neither an orientation map"):
        kikuchi.read_orientation_map(empty)
    with kikuchi.MapWriter(tmp_path / "raw.h5", nav_shape=(1, 2), pattern_shape=(3, 3), dtype="uint8") as w:
        w.write(0, np.zeros((2, 3, 3), np.uint8))
    with pytest.raises(OrientationMapError, match="raw.h5: the map file holds no orientations"):
        kikuchi.read_orientation_map(tmp_path / "raw.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n garbage")
    with pytest.raises(OrientationMapError, match="bad.h5: not a readable HDF5 file"):
        kikuchi.read_orientation_map(bad)


def test_kikuchipy_crystal_map_reads_with_the_reference_orientations():
    path = shared_file("kikuchipy/nickel_ebsd_small.h5")
    omap = kikuchi.read_orientation_map(path)
    assert omap.nav_shape == (3, 3) and omap.phases[0].name == "ni" and omap.phases[0].space_group == 225
    from orix.quaternion import Orientation

    # pattern 0: (80.21, 32.89, 268.07) deg in ../shared/data/README.md, reduced to m-3m
    ours = Orientation.from_euler(omap.euler[:1], symmetry=omap.to_orix().phases[1].point_group)
    ref = Orientation.from_euler(np.radians([[80.21, 32.89, 268.07]]), symmetry=ours.symmetry)
    assert np.degrees(ours.angle_with(ref))[0] < 0.05


def test_multiphase_kikuchipy_file_keeps_each_points_phase(tmp_path):
    """kikuchipy numbers phases from 0 (-1: not indexed); ours from 1 (0: not indexed)."""
    path = tmp_path / "two_phases.h5"
    with h5py.File(path, "w") as f:
        f["manufacturer"] = "kikuchipy"
        h = f.create_group("Scan 1/EBSD/Header")
        h["n_columns"], h["n_rows"], h["step_x"], h["step_y"] = 3, 2, 1.0, 1.0
        f["Scan 1/EBSD/Data/patterns"] = np.zeros((6, 4, 4), np.uint8)
        d = f.create_group("Scan 1/EBSD/CrystalMap/crystal_map/data")
        d["id"] = np.arange(6)
        d["phase_id"] = np.array([0, 1, 1, -1, 0, 1])
        for name in ("phi1", "Phi", "phi2"):
            d[name] = np.linspace(0.1, 0.6, 6)
        for key, (name, sg, a) in enumerate([("ni", 225, 0.35236), ("fe", 229, 0.2866)]):
            g = f.create_group(f"Scan 1/EBSD/CrystalMap/crystal_map/header/phases/{key}")
            g["name"], g["space_group"] = name, sg
            g["structure/lattice/abcABG"] = np.array([a, a, a, 90.0, 90.0, 90.0])
    with kikuchi.open(path) as m:
        np.testing.assert_array_equal(m.phase_id, [[1, 2, 2], [0, 1, 2]])
    omap = kikuchi.read_orientation_map(path)
    assert [(p.id, p.name) for p in omap.phases] == [(1, "ni"), (2, "fe")]
    np.testing.assert_array_equal(omap.phase_id, [1, 2, 2, 0, 1, 2])
