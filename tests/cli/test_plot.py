"""``kikuchi plot`` through a subprocess: CTF/ANG map figures, map files, bad input."""

from __future__ import annotations

import numpy as np
from PIL import Image

from kikuchi.io.mapstore import MapWriter
from kikuchi.io.orientation_map import PhaseInfo
from tests.conftest import shared_file

GAN = "xcdskd/GaN_polytype_mixing.ctf"


def _png(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def test_plot_band_contrast_of_phase_1_where_bc_above_10(cli, tmp_path):
    out = tmp_path / "bc.png"
    proc = cli("plot", shared_file(GAN), "--map", "bc", "--phase", "1", "--where", "bc>10", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out)
    img = _png(out)
    assert img.shape[1] > img.shape[0] > 200
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # a grey map, a colour bar and labels


def test_plot_orientation_figures_of_gan(cli, tmp_path):
    for kind in ("ipf-z", "error"):
        out = tmp_path / f"{kind}.png"
        proc = cli("plot", shared_file(GAN), "--map", kind, "-o", out, "--title", kind)
        assert proc.returncode == 0, proc.stderr
        assert _png(out).size > 0


def test_plot_ang_and_hexagonal_ctf(cli, tmp_path):
    proc = cli("plot", shared_file("mtex/S00.ANG"), "--map", "ci", "--where", "ci>0.1", "-o", tmp_path / "ci.png")
    assert proc.returncode == 0, proc.stderr
    proc = cli("plot", shared_file("mtex/testdata_hex.ctf"), "--map", "mad", "-o", tmp_path / "hex.png")
    assert proc.returncode == 0, proc.stderr
    assert "resampled from a hexagonal grid to a square grid (nearest neighbour, step 1 µm)" in proc.stderr


def test_plot_map_file_bse_and_ipf(cli, tmp_path, rng):
    path = tmp_path / "m.h5"
    patterns = rng.integers(0, 1000, (6, 8, 8)).astype(np.uint16)
    euler = rng.uniform(0, 1, (2, 3, 3)).astype(np.float32)
    ni = PhaseInfo(1, "Ni", lattice_angstrom=(3.524,) * 3, space_group=225)
    with MapWriter(path, nav_shape=(2, 3), pattern_shape=(8, 8), dtype="uint16", step_um=(0.5, 0.5)) as w:
        w.write(0, patterns)
        w.set_euler(euler)
        w.set_phases([ni.to_map_phase()])
    proc = cli("plot", path, "--map", "bse", "-o", tmp_path / "bse.png")
    assert proc.returncode == 0, proc.stderr
    proc = cli("plot", path, "--map", "ipf-x", "-o", tmp_path / "ipf.png", "--title", "")
    assert proc.returncode == 0, proc.stderr
    drawn = _png(tmp_path / "ipf.png").reshape(-1, 3).astype(int)
    from kikuchi.figures import ipf_colours

    for colour in np.floor(ipf_colours(euler.reshape(-1, 3), ni, "x") * 255):  # every point in its IPF-X colour
        assert np.abs(drawn - colour).max(axis=1).min() <= 2, colour
    proc = cli("plot", path, "--map", "bc", "-o", tmp_path / "bc.png")
    assert proc.returncode == 2
    assert "--map bc is not available for a map file; use bse, euler or ipf-x/y/z" in proc.stderr


def test_plot_ipf_of_a_two_phase_map_file_colours_each_phase_with_its_symmetry(cli, tmp_path, rng):
    """A synthetic map records each point's phase (Truth/phase_id): IPF colours use that phase's symmetry."""
    from kikuchi.figures import ipf_rgb

    path = tmp_path / "two.h5"
    euler = rng.uniform(0, 1, (2, 3, 3)).astype(np.float32)
    pid = np.array([[1, 2, 1], [2, 2, 1]], dtype=np.int32)
    phases = [
        PhaseInfo(1, "Ni", lattice_angstrom=(3.524,) * 3, space_group=225),
        PhaseInfo(2, "Ti", lattice_angstrom=(2.951, 2.951, 4.684), angles_deg=(90, 90, 120), space_group=194),
    ]
    with MapWriter(path, nav_shape=(2, 3), pattern_shape=(8, 8), dtype="uint8", step_um=(0.5, 0.5)) as w:
        w.write(0, rng.integers(0, 255, (6, 8, 8)).astype(np.uint8))
        w.set_euler(euler)
        w.set_phases([p.to_map_phase() for p in phases])
        w.header.create_group("Truth")["phase_id"] = pid
    proc = cli("plot", path, "--map", "ipf-z", "-o", tmp_path / "ipf.png", "--title", "")
    assert proc.returncode == 0, proc.stderr
    drawn = _png(tmp_path / "ipf.png").reshape(-1, 3).astype(int)
    for colour in np.floor(ipf_rgb(euler, pid, phases, direction="z").reshape(-1, 3) * 255):
        assert np.abs(drawn - colour).max(axis=1).min() <= 2, colour


def test_plot_hdf5_orientation_map(cli, tmp_path):
    """``kikuchi index -o OUT.h5`` results plot like a CTF: IPF, columns with --where, and bse refused."""
    from kikuchi.io.orientation_map import OrientationMap

    omap = OrientationMap.from_arrays(
        euler=np.zeros((2, 3, 3)), phase_id=np.array([[1, 1, 1], [1, 1, 0]]), step_um=0.5,
        columns={"mad": np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])},
        phases=[PhaseInfo(1, "Ni", lattice_angstrom=(3.524,) * 3, space_group=225)],
    )
    path = omap.write(tmp_path / "indexed.h5")
    proc = cli("plot", path, "--map", "ipf-z", "-o", tmp_path / "ipf.png", "--title", "")
    assert proc.returncode == 0, proc.stderr
    colours = {tuple(c) for c in _png(tmp_path / "ipf.png").reshape(-1, 3).tolist()}
    assert (255, 0, 0) in colours  # euler (0, 0, 0) of a cubic phase: [001] || z is red
    proc = cli("plot", path, "--map", "mad", "--where", "mad>0.2", "-o", tmp_path / "mad.png")
    assert proc.returncode == 0, proc.stderr
    proc = cli("plot", path, "--map", "bse", "-o", tmp_path / "bse.png")
    assert proc.returncode == 2 and "indexed.h5 is an orientation map" in proc.stderr


def test_plot_euler_of_map_file_without_phases(cli, tmp_path, rng):
    """Orientations without a recorded phase are drawn, not blacked out as 'not indexed'."""
    path = tmp_path / "m.h5"
    with MapWriter(path, nav_shape=(2, 3), pattern_shape=(8, 8), dtype="uint8", step_um=(0.5, 0.5)) as w:
        w.write(0, rng.integers(0, 255, (6, 8, 8)).astype(np.uint8))
        w.set_euler(np.full((2, 3, 3), np.pi / 2))  # RGB (0.25, 0.5, 0.25)
    proc = cli("plot", path, "--map", "euler", "-o", tmp_path / "euler.png", "--title", "")
    assert proc.returncode == 0, proc.stderr
    colours = {tuple(c) for c in _png(tmp_path / "euler.png").reshape(-1, 3).astype(int).tolist()}
    assert any(abs(r - 64) <= 1 and abs(g - 128) <= 1 and abs(b - 64) <= 1 for r, g, b in colours)


def test_plot_bad_input(cli, tmp_path):
    gan = shared_file(GAN)
    proc = cli("plot", gan, "--map", "bse", "-o", tmp_path / "x.png")
    assert proc.returncode == 2
    assert "kikuchi plot: error: --map bse needs a pattern map file (.h5); GaN_polytype_mixing.ctf is an orientation map" in proc.stderr
    proc = cli("plot", gan, "--map", "iq", "-o", tmp_path / "x.png")
    assert proc.returncode == 2 and "GaN_polytype_mixing.ctf has no column 'iq'; it has phase_id" in proc.stderr
    proc = cli("plot", gan, "--map", "bc", "--where", "bc is big", "-o", tmp_path / "x.png")
    assert proc.returncode == 2 and "--where 'bc is big': expected COLUMN OP NUMBER" in proc.stderr
    proc = cli("plot", tmp_path / "none.ctf", "--map", "bc", "-o", tmp_path / "x.png")
    assert proc.returncode == 2 and "none.ctf: no such file" in proc.stderr
    bad = tmp_path / "twins.ctf"
    bad.write_text("Channel Text File\nJobMode\tGrid\n")
    proc = cli("plot", bad, "--map", "bc", "-o", tmp_path / "x.png")
    assert proc.returncode == 2 and "twins.ctf: no column header line" in proc.stderr
    proc = cli("plot", gan, "--map", "bc", "-o", tmp_path / "x.jpg")
    assert proc.returncode == 2 and "figures are PNG" in proc.stderr
    assert not (tmp_path / "x.png").exists()
