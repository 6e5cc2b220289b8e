"""OrientationMap: construction from arrays, selection, description, dispatch, orix interop."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kikuchi
from kikuchi.io.orientation_map import (
    OrientationMap,
    OrientationMapError,
    PhaseInfo,
    infer_grid,
    laue_group_of,
    point_group_of_space_group,
    read_orientation_map,
    write_orientation_map,
)
from tests.conftest import shared_file

NI = PhaseInfo(1, "Ni", lattice_angstrom=(3.524, 3.524, 3.524), space_group=225)
TI = PhaseInfo(2, "Ti", lattice_angstrom=(2.951, 2.951, 4.684), angles_deg=(90, 90, 120), space_group=194)


@pytest.fixture
def omap(rng):
    euler = rng.uniform(0, 1, (3, 4, 3)) * [2 * np.pi, np.pi, 2 * np.pi]
    pid = np.array([[1, 1, 0, 2], [1, 2, 2, 1], [0, 1, 1, 1]])
    return OrientationMap.from_arrays(
        euler=euler, phase_id=pid, step_um=(0.5, 0.25), phases=[NI, TI], columns={"ci": np.linspace(0, 1, 12).reshape(3, 4)}, header={"OPERATOR": "me"}
    )


def test_top_level_names():
    assert kikuchi.read_orientation_map is read_orientation_map
    assert kikuchi.OrientationMap is OrientationMap


def test_from_arrays_layout(omap):
    assert (omap.grid, omap.nav_shape, omap.step_um, len(omap)) == ("square", (3, 4), (0.5, 0.25), 12)
    assert omap.x_um[:5].tolist() == [0.0, 0.25, 0.5, 0.75, 0.0]
    assert omap.y_um[4] == 0.5
    assert omap.map("phase").tolist() == [[1, 1, 0, 2], [1, 2, 2, 1], [0, 1, 1, 1]]
    assert omap.map("euler").shape == (3, 4, 3)
    assert np.array_equal(omap["euler2"], omap.euler[:, 1])
    assert np.allclose(omap.euler_deg, np.rad2deg(omap.euler))
    assert omap.is_indexed.sum() == 10
    assert omap.phase(2).name == "Ti"
    assert "ci" in omap and "nothing" not in omap


def test_select_numpy_native(omap):
    sel = omap.select("ci", omap.map("ci") > 0, phase=1)
    assert sel.shape == (3, 4)
    expected = [v for v, p in zip(omap["ci"], omap.phase_id) if v > 0 and p == 1]
    assert sel.compressed().tolist() == expected
    both = omap.select("ci", phase=[1, 2])
    assert both.count() == 10
    assert omap.select("euler", indexed_only=True).shape == (3, 4, 3)


def test_errors_name_what_is_wrong(omap):
    with pytest.raises(KeyError, match="no column 'bc' in this map"):
        omap["bc"]
    with pytest.raises(KeyError, match="no phase with id 7"):
        omap.phase(7)
    with pytest.raises(OrientationMapError, match="where has 3 values, the map has 12 points"):
        omap.select("ci", np.ones(3, bool))
    with pytest.raises(OrientationMapError, match=r"points refer to phase ids \[3\]"):
        OrientationMap.from_arrays(euler=np.zeros((1, 2, 3)), phase_id=[[1, 3]], phases=[NI])
    with pytest.raises(OrientationMapError, match="nav_shape"):
        OrientationMap.from_arrays(euler=np.zeros((5, 3)))
    with pytest.raises(OrientationMapError, match="column 'ci' has 2 values, the map has 4 points"):
        OrientationMap.from_arrays(euler=np.zeros((2, 2, 3)), columns={"ci": [1, 2]})
    with pytest.raises(OrientationMapError, match="space group 231 is not in 1..230"):
        PhaseInfo(1, "x", space_group=231)


def test_describe_is_json_ready(omap):
    d = omap.describe()
    text = json.dumps(d)
    assert json.loads(text)["nav_shape"] == [3, 4]
    assert d["grid"] == "square" and d["step_um"] == [0.5, 0.25]
    assert d["indexed"] == 10 and d["not_indexed"] == 2
    assert [p["n_points"] for p in d["phases"]] == [7, 3]
    ci = omap["ci"][omap.is_indexed]
    assert d["columns"]["ci"] == {"min": ci.min(), "mean": pytest.approx(ci.mean()), "max": ci.max(), "not_indexed": 2}
    assert d["columns"]["euler2_deg"]["max"] <= 180
    assert d["header"] == {"OPERATOR": "me"}


def test_describe_real_file():
    d = read_orientation_map(shared_file("xcdskd/GaN_polytype_mixing.ctf")).describe()
    json.dumps(d)
    assert d["nav_shape"] == [172, 196] and d["format"] == "ctf" and d["not_indexed"] == 0
    assert d["columns"]["bc"]["min"] <= 153 <= d["columns"]["bc"]["max"]
    assert [p["space_group"] for p in d["phases"]] == [186, 216]


def test_dispatch_by_extension_and_content(omap, tmp_path):
    ctf = write_orientation_map(omap, tmp_path / "m.ctf")
    ang = omap.write(tmp_path / "m.ang")
    assert ctf.read_text().startswith("Channel Text File")
    assert ang.read_text().startswith("# TEM_PIXperUM")
    for src, fmt in ((ctf, "ctf"), (ang, "ang")):
        renamed = tmp_path / f"{fmt}_data.txt"
        renamed.write_bytes(src.read_bytes())
        back = read_orientation_map(renamed)
        assert back.source_format == fmt
        assert np.abs(back.euler - omap.euler).max() < 1e-4
        assert np.array_equal(back.phase_id, omap.phase_id)
    forced = write_orientation_map(omap, tmp_path / "m.dat", format="ang")
    assert read_orientation_map(forced, format="ang").nav_shape == (3, 4)


def test_dispatch_errors(omap, tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("just text\n")
    with pytest.raises(OrientationMapError, match=r"notes.txt: not a known orientation map format \(extensions \['ang', 'ctf', 'h5', 'h5ebsd', 'hdf5'\], or content of a CTF/ANG/HDF5 file\)"):
        read_orientation_map(junk)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_orientation_map(tmp_path / "missing.ctf")
    with pytest.raises(OrientationMapError, match="not a known orientation map format"):
        omap.write(tmp_path / "m.xyz")
    with pytest.raises(OrientationMapError, match="unknown orientation map format 'osc'"):
        omap.write(tmp_path / "m.osc", format="osc")


def test_to_orix(omap):
    from orix.quaternion import Rotation

    xmap = omap.to_orix()
    assert xmap.shape == (3, 4)
    assert np.allclose(xmap.rotations.data, Rotation.from_euler(omap.euler).data)
    assert (xmap.phase_id == -1).sum() == 2
    assert xmap.phases[1].point_group.name == "m-3m" and xmap.phases[2].point_group.name == "6/mmm"
    assert xmap.phases[2].structure.lattice.abcABG() == pytest.approx((2.951, 2.951, 4.684, 90, 90, 120))
    assert np.array_equal(xmap.prop["ci"], omap["ci"])


def test_point_groups_of_all_space_groups_agree_with_orix():
    from orix.quaternion.symmetry import get_point_group

    for sg in range(1, 231):
        assert point_group_of_space_group(sg) == get_point_group(sg).name
    assert laue_group_of("-43m") == "m-3m" and laue_group_of("3m") == "-3m"


def test_infer_grid_rejects_scattered_points():
    with pytest.raises(OrientationMapError, match="form neither a complete square grid"):
        infer_grid(np.array([0.0, 1.0, 0.3]), np.array([0.0, 0.0, 1.0]), step_x=1.0, step_y=1.0)
    grid = infer_grid(np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.0, 0.0, 2.0, 2.0]), step_x=1.0, step_y=2.0)
    assert (grid.kind, grid.nav_shape, grid.step_um, grid.order) == ("square", (2, 2), (2.0, 1.0), None)
