"""Every command on the vendors' pattern files, as written, through a subprocess: no conversion step."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

import kikuchi
from tests.io._vendor import manifest, vendor_file

# one file of each family, with the geometry its header records
FAMILIES = {
    "oxford_custom_v7_lzf.h5oina": {"format": "h5oina", "pc": "oxford"},
    "ebsp_v2_u8_shuffled.ebsp": {"format": "ebsp", "pc": None},
    "bruker_custom_u8_fullmap_shuffled_semIXIY.h5": {"format": "bruker", "pc": "bruker"},
    "bruker_kpdummy_roi_nonrect.h5": {"format": "bruker", "pc": "bruker"},
    "edax_custom_oim86.h5": {"format": "edax_h5", "pc": "edax"},
    "up2_v3_3x4.up2": {"format": "edax_up", "pc": None},
    "nordif_kpdata/Pattern.dat": {"format": "nordif", "pc": None},
    "emsoft_EBSD_TEST_Ni.h5": {"format": "emsoft", "pc": "emsoft"},
}


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_info_pattern_convert(cli, tmp_path, name):
    """info describes the file and its geometry; pattern exports the right point; convert writes the same map."""
    path = vendor_file(name)
    expect = FAMILIES[name]
    proc = cli("info", path, "--json")
    assert proc.returncode == 0, proc.stderr
    desc = json.loads(proc.stdout)
    assert desc["format"] == expect["format"] and desc["kind"] == "pattern file"
    truth = manifest()[name]
    if "nav_shape" in truth:
        assert desc["nav_shape"] == truth["nav_shape"]
    if expect["pc"] is None:
        assert desc["pattern_centre"] is None
    else:
        assert desc["pattern_centre"]["convention"] == "bruker" and desc["pattern_centre"]["file_convention"] == expect["pc"]
    proc = cli("info", path)
    assert proc.returncode == 0 and "pattern centre" in proc.stdout and expect["format"] in proc.stdout

    with kikuchi.open(path) as m:
        r, c = np.argwhere(m.index_map >= 0)[-1]
        expected = m.pattern(int(r), int(c))
        full = m.read_all()
        have = m.index_map >= 0
    tif = tmp_path / "p.tif"
    proc = cli("pattern", path, "--at", f"{r},{c}", "-o", tif)
    assert proc.returncode == 0, proc.stderr
    np.testing.assert_array_equal(tifffile.imread(tif), expected)

    out = tmp_path / "map.h5"
    proc = cli("convert", path, "-o", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert f"kikuchi file of the {expect['format']} file" in proc.stdout
    with kikuchi.open(out) as o:
        assert o.format == "kikuchi" and o.nav_shape == full.shape[:2]
        np.testing.assert_array_equal(o.index_map >= 0, have)
        np.testing.assert_array_equal(o.read_all(), np.where(have[..., None, None], full, 0))
        assert o.processing["source_format"] == expect["format"]
        bse = o.bse_map
        assert np.isnan(bse[~have]).all() and np.isfinite(bse[have]).all()


def test_convert_to_h5ebsd_keeps_patterns_and_geometry(cli, tmp_path):
    path = vendor_file("bruker_custom_u8_fullmap_shuffled_semIXIY.h5")
    out = tmp_path / "kp.h5"
    proc = cli("convert", path, "-o", out, "--format", "h5ebsd", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    with kikuchi.open(path) as m, kikuchi.open(out) as o:
        assert o.flavour == "kikuchipy"
        np.testing.assert_array_equal(o.read_all(), m.read_all())
        for a, b in zip((o.pattern_centre.pcx, o.pattern_centre.pcy, o.pattern_centre.dd), (m.pattern_centre.pcx, m.pattern_centre.pcy, m.pattern_centre.dd)):
            np.testing.assert_allclose(a, b, atol=1e-7)
        assert o.sample_tilt_deg == pytest.approx(70.0) and o.camera_tilt_deg == pytest.approx(3.5)
        assert o.step_um == pytest.approx(m.step_um)
        if m.static_background is not None:  # stored in the patterns' type, as kikuchipy needs to remove it
            assert o.static_background.dtype == m.dtype
            np.testing.assert_array_equal(o.static_background, np.clip(np.rint(m.static_background), 0, 255))
    kp = pytest.importorskip("kikuchipy", reason="kikuchipy (the bench extra) reads our h5ebsd back")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = kp.load(out)
    with kikuchi.open(path) as m:
        np.testing.assert_array_equal(s.data, m.read_all())
        np.testing.assert_allclose(s.detector.pc[..., 1], m.pattern_centre.pcy, atol=1e-7)


def test_convert_options_that_do_not_apply(cli, tmp_path):
    path = vendor_file("up2_v3_3x4.up2")
    proc = cli("convert", path, "-o", tmp_path / "m.h5", "--ctf", tmp_path / "x.ctf")
    assert proc.returncode == 2 and "--ctf applies to folders of pattern images; up2_v3_3x4.up2 is a pattern file" in proc.stderr
    proc = cli("convert", path, "-o", path)
    assert proc.returncode == 2 and "is the input file" in proc.stderr


@pytest.mark.parametrize("name", ["oxford_custom_v7_lzf.h5oina", "bruker_kpdummy_roi_nonrect.h5", "up2_v3_3x4.up2"])
def test_imaging_commands(cli, tmp_path, name):
    path = vendor_file(name)
    with kikuchi.open(path) as m:
        have = m.index_map >= 0
        bse = m.bse_map
    out = tmp_path / "vbse"
    proc = cli("vbse", path, "-o", out, "--grid", "3x3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    proc = cli("quality", path, "-o", tmp_path / "q", "--quiet")
    assert proc.returncode == 0, proc.stderr
    import h5py

    with h5py.File(tmp_path / "q" / "quality.h5") as f:
        iq = f["iq"][()]
    assert iq.shape == have.shape and np.isnan(iq[~have]).all() and np.isfinite(iq[have]).all()
    proc = cli("plot", path, "--map", "bse", "-o", tmp_path / "bse.png")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "bse.png").stat().st_size > 1000 and np.isfinite(bse[have]).all()
    proc = cli("bands", path, "--at", "0,1", "-o", tmp_path / "bands.png", "--json")
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A synthetic Ni map of known truth (kikuchi map file) and its patterns."""
    d = tmp_path_factory.mktemp("vendor")
    path = d / "synthetic.h5"
    kikuchi.simulate(path, phase="ni", shape=(6, 8), pattern_shape=(60, 80), noise="low", grains=3, seed=2)
    with kikuchi.open(path) as m:
        return path, m.read_all(), m.step_um, m.pattern_centre.mean


def _misorientation_deg(a, b):
    from orix.quaternion import Orientation, symmetry

    return np.degrees(Orientation.from_euler(a, symmetry.Oh).angle_with(Orientation.from_euler(b, symmetry.Oh)))


def _orientations(path):
    omap = kikuchi.read_orientation_map(path)
    return np.asarray(omap.euler).reshape(-1, 3), np.asarray(omap.phase_id).reshape(-1)


def test_process_and_index_an_h5oina_and_a_up2_file(cli, tmp_path, synthetic):
    """process and index run on an H5OINA and a UP2 file as written, with the PC of the H5OINA header."""
    from kikuchi.geometry import convert_pc
    from kikuchi.io.edax_up import write_up
    from kikuchi.io.h5oina import write_h5oina

    path, patterns, step, pc_bruker = synthetic
    h, w = patterns.shape[2:]
    oxford = convert_pc(np.asarray(pc_bruker), "bruker", "oxford", shape=(h, w))
    oina = tmp_path / "map.h5oina"
    write_h5oina(oina, patterns, step_um=step, pc_oxford=oxford)
    up2 = tmp_path / "map.up2"
    write_up(up2, (patterns.astype(np.uint16) * 16), step_um=step)

    reference = tmp_path / "reference.ctf"
    assert cli("index", path, "--phase", "ni", "-o", reference, "--no-progress").returncode == 0
    euler_ref, phase_ref = _orientations(reference)
    assert (phase_ref > 0).mean() > 0.9

    out = tmp_path / "oina.ctf"
    proc = cli("index", oina, "--phase", "ni", "-o", out, "--no-progress", "--json")  # the PC comes from the file
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    np.testing.assert_allclose(summary["pattern_centre_bruker"], pc_bruker, atol=1e-6)
    assert summary["pattern_centre_from"] == "the h5oina file (oxford convention, one for the map)"
    assert summary["dataset"] == "Patterns" and summary["background_removed"]["dynamic"]  # AZtec's processed patterns
    euler, phase = _orientations(out)
    np.testing.assert_array_equal(phase, phase_ref)
    assert _misorientation_deg(euler, euler_ref)[phase > 0].max() < 0.5

    out = tmp_path / "up2.ang"
    pc = ",".join(f"{v:.6f}" for v in pc_bruker)
    proc = cli("index", up2, "--phase", "ni", "--pc", pc, "-o", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    euler, phase = _orientations(out)
    assert (phase == phase_ref).mean() > 0.95
    assert np.median(_misorientation_deg(euler, euler_ref)[(phase > 0) & (phase_ref > 0)]) < 0.2

    for source in (oina, up2):
        processed = tmp_path / f"{source.suffix[1:]}-processed.h5"
        proc = cli("process", source, "-o", processed, "--npa", "1", "--no-progress")
        assert proc.returncode == 0, proc.stderr
        with kikuchi.open(processed) as o:
            assert o.nav_shape == (6, 8) and o.dataset == "Patterns" and o.read_all().std() > 0


def test_simulate_from_the_orientations_of_a_bruker_file(cli, tmp_path):
    """simulate --from-map a pattern file: its orientations, its pattern shape and per-point PC."""
    path = vendor_file("bruker_custom_u8_fullmap_shuffled_semIXIY.h5")
    out = tmp_path / "sim.h5"
    proc = cli("simulate", "--from-map", path, "-o", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    with kikuchi.open(path) as m, kikuchi.open(out) as s:
        assert s.nav_shape == m.nav_shape and s.pattern_shape == m.pattern_shape
        np.testing.assert_allclose(s.pattern_centre.pcx, m.pattern_centre.pcx, atol=1e-6)
    proc = cli("simulate", "--from-map", vendor_file("up2_v3_3x4.up2"), "-o", tmp_path / "x.h5")
    assert proc.returncode == 2 and "no stored orientations" in proc.stderr
