"""EMsoft EBSD simulation output (EMEBSD): the two real files, the map shape, the PC, Euler units, bad files."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.geometry.pattern_centre import convert_pc
from kikuchi.io.emsoft import EMsoftEBSDMap
from kikuchi.io.source import MapFileError, MapFileWarning, identify
from tests.io._vendor import assert_matches_manifest, vendor_file

EMSOFT = ["emsoft_simulated_ebsd.h5", "emsoft_EBSD_TEST_Ni.h5"]


def write_emsoft(path, patterns, *, euler=None, euler_unit=None, binning=1, numsx=None, numsy=None, drop=(), **nml):
    """A file in EMEBSD's layout (EMsoft 5: (1,) arrays, fixed-length strings); ``nml`` overrides namelist values."""
    patterns = np.asarray(patterns)
    n, h, w = patterns.shape
    values = {"xpc": 3.0, "ypc": -2.0, "L": 15000.0, "delta": 50.0, "thetac": 10.0, "energymin": 10.0, "energymax": 20.0,
              "binning": binning, "numsx": numsx or w * binning, "numsy": numsy or h * binning,
              "eulerconvention": "tsl", "makedictionary": "n", "anglefiletype": "orientations", **nml}
    with h5py.File(path, "w") as f:
        f["Manufacturer"] = np.array([b"EMsoft"])
        f["EMheader/EBSD/ProgramName"] = np.array([b"EMEBSD.f90"])
        f["EMheader/EBSD/Version"] = np.array([b"5_0_20200217_0"])
        f["EMData/EBSD/EBSDPatterns"] = patterns
        f["EMData/EBSD/numangles"] = np.array([n])
        f["EMData/EBSD/xtalname"] = np.array([b"Ni.xtal"])
        if euler is not None:
            f["EMData/EBSD/EulerAngles"] = np.asarray(euler, dtype=np.float32)
            if euler_unit:
                f["EMData/EBSD/EulerAngles"].attrs["Unit"] = euler_unit
        f["CrystalData/LatticeParameters"] = np.array([0.35236, 0.35236, 0.35236, 90.0, 90.0, 90.0])
        f["CrystalData/SpaceGroupNumber"] = np.array([225])
        for key, value in values.items():
            if key in drop:
                continue
            f[f"NMLparameters/EBSDNameList/{key}"] = np.array([value.encode() if isinstance(value, str) else value])
    return path


def stack(n=6, h=8, w=10) -> np.ndarray:
    p = np.arange(n * h * w, dtype=np.float32).reshape(n, h, w)
    p[:, 0, 0] = np.arange(n)
    return p


# -- the real files ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", EMSOFT)
def test_vendor_file_is_recognised_by_content_and_matches_manifest(name):
    path = vendor_file(name)
    assert identify(path).name == "emsoft"
    with kikuchi.open(path) as m:
        assert isinstance(m, EMsoftEBSDMap) and m.format == "emsoft" and m.program == "EMEBSD.f90"
        assert m.nav_shape == (1, m.n_patterns) and m.dataset == "RawPatterns" and m.notes == []
        assert_matches_manifest(m, name)
        json.dumps(m.describe())


def test_ni_pattern_geometry_orientation_and_phase():
    """EMsoft 4.2 output: 480 x 640, xpc = ypc = 20 px, L = 15000 µm, delta = 50 µm, thetac 10°, Euler (120°, 45°, 60°)."""
    with kikuchi.open(vendor_file("emsoft_EBSD_TEST_Ni.h5")) as m:
        pc = m.pattern_centre
        assert pc.file_convention == "emsoft" and pc.convention == "bruker"
        assert pc.mean == pytest.approx((0.5 - 20 / 640, 0.5 - 20 / 480, 15000 / (480 * 50)))
        assert (m.pixel_size_um, m.binning, m.camera_tilt_deg, m.sample_tilt_deg, m.kv) == (50.0, 1, 10.0, 70.0, 20.0)
        np.testing.assert_allclose(m.euler[0, 0], np.radians([120, 45, 60]), atol=1e-4)
        assert m.phases == [{"id": 1, "name": "Ni", "space_group": 225, "lattice": [0.35236, 0.35236, 0.35236, 90.0, 90.0, 90.0]}]
        assert m.phase_id.tolist() == [[1]]
        d = m.describe()
        assert d["emsoft_version"] == "4_2_0_0" and d["euler_units_in_file"].startswith("radians")


def test_simulated_file_pc_and_nav_shape():
    path = vendor_file("emsoft_simulated_ebsd.h5")
    with kikuchi.open(path) as m:
        # xpc 4.86, ypc 16.58 px, L 2123.3 µm, delta 70 µm on 10 x 10 patterns: the PC lies below the pattern
        assert m.pattern_centre.mean == pytest.approx((0.5 - 4.86 / 10, 0.5 - 16.58 / 10, 2123.3 / (10 * 70)))
        assert m.pixel_size_um == 70.0 and m.kv == 20.0 and m.euler.shape == (1, 10, 3)
        everything = m.read_all()
    with kikuchi.open(path, nav_shape=(2, 5)) as m:
        assert m.nav_shape == (2, 5) and m.is_row_major and m.pattern_centre.pcx.shape == (2, 5)
        np.testing.assert_array_equal(m.read_all().reshape(10, 10, 10), everything.reshape(10, 10, 10))
        assert m.open_options == {"format": "emsoft", "dataset": "RawPatterns", "nav_shape": (2, 5)}
        with kikuchi.open(path, **m.open_options) as again:
            assert again.nav_shape == (2, 5)
    with pytest.raises(MapFileError, match=r"emsoft_simulated_ebsd.h5: nav_shape \(3, 4\) does not hold the 10 patterns .*rows \* cols must be 10"):
        kikuchi.open(path, nav_shape=(3, 4))
    with pytest.raises(MapFileError, match=r"emsoft_simulated_ebsd.h5: nav_shape must be \(rows, cols\), got 'ab'"):
        kikuchi.open(path, nav_shape="ab")


# -- generated files -------------------------------------------------------------------------
def test_binned_patterns_pc_uses_binning_and_pixel_size(tmp_path):
    path = write_emsoft(tmp_path / "b.h5", stack(), binning=4, xpc=12.0, ypc=-8.0, L=12000.0, delta=60.0)
    with kikuchi.open(path) as m:
        assert m.binning == 4 and m.pattern_shape == (8, 10)
        expected = (0.5 - 12 / (10 * 4), 0.5 + 8 / (8 * 4), 12000 / (8 * 4 * 60))
        assert m.pattern_centre.mean == pytest.approx(expected)
        assert m.pattern_centre.mean == pytest.approx(
            tuple(convert_pc([12.0, -8.0, 12000.0], "emsoft", "bruker", shape=(8, 10), binning=4, px_size_um=60.0)))
    with kikuchi.open(path, pc_convention="emsoft4") as m:  # xpc of the opposite sign
        assert m.pattern_centre.pcx[0, 0] == pytest.approx(0.5 + 12 / 40)
        assert m.pattern_centre.file_convention == "emsoft4" and m.open_options["pc_convention"] == "emsoft4"
    with pytest.raises(MapFileError, match=r"b.h5: pc_convention 'bruker'; EMsoft files are 'emsoft'"):
        kikuchi.open(path, pc_convention="bruker")


@pytest.mark.parametrize(
    ("euler", "unit", "expected_units"),
    [
        ([[120.0, 45.0, 60.0]] * 6, None, "degrees (values up to 120 > 2π)"),
        ([[2.0944, 0.7854, 1.0472]] * 6, None, "radians (values within ±2π (largest 2.0944))"),
        ([[2.0, 1.0, 3.0]] * 6, "degrees", "degrees (attribute Unit = 'degrees')"),
        ([[200.0, 45.0, 60.0]] * 6, "rad", "radians (attribute Unit = 'rad')"),
    ],
)
def test_euler_units_decided_from_attribute_then_values(tmp_path, euler, unit, expected_units):
    path = write_emsoft(tmp_path / "e.h5", stack(), euler=euler, euler_unit=unit)
    with kikuchi.open(path) as m:
        assert m.describe()["euler_units_in_file"] == expected_units
        factor = np.pi / 180 if expected_units.startswith("degrees") else 1.0
        np.testing.assert_allclose(m.euler.reshape(-1, 3), np.asarray(euler, dtype=np.float32) * factor, rtol=1e-6)


def test_dictionary_patterns_are_the_processed_dataset(tmp_path):
    path = write_emsoft(tmp_path / "d.h5", stack(), makedictionary="y")
    with kikuchi.open(path, dataset="EBSDPatterns") as m:
        assert m.dataset == "Patterns" and m.datasets == ["Patterns"]
        assert m.read(2, 3)[0, 0, 0] == 2 and m.dtype == np.float32
    with pytest.raises(MapFileError, match=r"d.h5: no pattern dataset 'RawPatterns' \(has 'Patterns', EMsoft's EBSDPatterns\)"):
        kikuchi.open(path, dataset="RawPatterns")


def test_nothing_of_the_patterns_is_read_at_open(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(EMsoftEBSDMap, "_read_range", lambda self, a, b, out: calls.append((a, b)) or out.fill(0))
    with kikuchi.open(write_emsoft(tmp_path / "l.h5", stack(), euler=np.zeros((6, 3)))) as m:
        m.describe(), m.pattern_centre, m.euler
        assert calls == []
        m.read_all()
        assert calls == [(0, 6)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"xpc": "abc"}, r"'/NMLparameters/EBSDNameList/xpc' is 'abc', not a number"),
        ({"binning": 0}, r"'NMLparameters/EBSDNameList/binning' is 0; expected a positive whole number"),
    ],
)
def test_bad_namelist_values(tmp_path, kwargs, message):
    path = write_emsoft(tmp_path / "bad.h5", stack(), **kwargs)
    with pytest.raises(MapFileError, match=rf"bad.h5: {message}"):
        kikuchi.open(path)


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (np.zeros((0, 8, 10), np.uint8), r"'EMData/EBSD/EBSDPatterns' holds no patterns \(shape \(0, 8, 10\)\)"),
        (np.zeros((3, 0, 10), np.uint8), r"'EMData/EBSD/EBSDPatterns' has shape \(3, 0, 10\): patterns of zero size"),
        (np.zeros((8, 10), np.uint8), r"'EMData/EBSD/EBSDPatterns' has shape \(8, 10\); patterns are \(N, height, width\)"),
    ],
)
def test_bad_pattern_datasets(tmp_path, patterns, message):
    path = write_emsoft(tmp_path / "bad.h5", stack())
    with h5py.File(path, "r+") as f:
        del f["EMData/EBSD/EBSDPatterns"]
        f["EMData/EBSD/EBSDPatterns"] = patterns
    with pytest.raises(MapFileError, match=rf"bad.h5: {message}"):
        kikuchi.open(path)


def test_output_without_patterns_is_recognised_and_refused(tmp_path):
    path = write_emsoft(tmp_path / "di.h5", stack())
    with h5py.File(path, "r+") as f:
        del f["EMData/EBSD/EBSDPatterns"]
        del f["EMheader/EBSD/ProgramName"]
        f["EMheader/EBSD/ProgramName"] = np.array([b"EMEBSDDI.f90"])
    with pytest.raises(MapFileError, match=r"di.h5: no 'EMData/EBSD/EBSDPatterns' dataset \(EMEBSDDI.f90 output holds no simulated patterns"):
        kikuchi.open(path)


@pytest.mark.parametrize(
    ("kwargs", "message", "check"),
    [
        ({"numsx": 40}, r"patterns are stored 8 x 10, but numsy x numsx = 8 x 40 at binning 1 gives 8 x 40; the stored size is used",
         lambda m: m.pattern_shape == (8, 10)),
        ({"numsx": 8, "numsy": 10}, r"gives 10 x 8 \(stored transposed\?\)", lambda m: m.pattern_shape == (8, 10)),
        ({"drop": ("xpc",)}, r"has no usable xpc; no pattern centre", lambda m: m.pattern_centre is None),
        ({"delta": 0.0}, r"gives L = 15000 µm and delta = 0 µm; no pattern centre", lambda m: m.pattern_centre is None),
        ({"anglefiletype": "orpcdef"}, r"anglefiletype 'orpcdef': the per-pattern PCs were in the angle file",
         lambda m: m.pattern_centre is not None),
    ],
)
def test_oddities_warn_and_are_read_around(tmp_path, kwargs, message, check):
    path = write_emsoft(tmp_path / "odd.h5", stack(), **kwargs)
    with pytest.warns(MapFileWarning, match=rf"odd.h5: .*{message}"):
        m = kikuchi.open(path)
        ok = check(m)
    with m:
        assert ok
        np.testing.assert_array_equal(m.read_all()[0], stack())


def test_numangles_and_euler_shape_mismatch_warn(tmp_path):
    path = write_emsoft(tmp_path / "n.h5", stack(), euler=np.zeros((5, 3)))
    with h5py.File(path, "r+") as f:
        f["EMData/EBSD/numangles"][0] = 7
    with pytest.warns(MapFileWarning, match=r"n.h5: 'EMData/EBSD/numangles' is 7 but 'EMData/EBSD/EBSDPatterns' holds 6 patterns"):
        m = kikuchi.open(path)
    with m:
        with pytest.warns(MapFileWarning, match=r"'EMData/EBSD/EulerAngles' has shape \(5, 3\), not \(6, 3\) for the 6 patterns; no orientations"):
            assert m.euler is None


def test_missing_namelist_warns(tmp_path):
    path = write_emsoft(tmp_path / "m.h5", stack())
    with h5py.File(path, "r+") as f:
        del f["NMLparameters"]
    with pytest.warns(MapFileWarning, match=r"m.h5: no 'NMLparameters/EBSDNameList' group: no pattern centre"):
        m = kikuchi.open(path)
    with m:
        assert m.pattern_centre is None and m.binning == 1 and m.pixel_size_um is None and m.kv is None
