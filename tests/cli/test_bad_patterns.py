"""A map with 1 % of its patterns without signal, through every command: a bad pattern is a bad point, never the end of the run.

A 20 x 25 synthetic Ni map of 40 x 40 patterns gets six bad frames (all zero,
saturated, constant; two of them side by side). ``process``, ``vbse``,
``quality``, ``index`` and ``bands`` run on it through the command line; the
same stages run on the clean map through the Python API (the command line is
a thin wrapper of it). Every other point must equal the clean run bit for bit,
and the bad points must be flagged: zeros and ``NoSignal`` after processing,
NaN in the images, CTF error 6, "no bands", and a count in each result line.
"""

from __future__ import annotations

import json
import shutil
import warnings

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.bands import detect_bands
from kikuchi.cli.main import main
from kikuchi.engine import process_map
from kikuchi.imaging import quality_maps, vbse_maps
from kikuchi.index import index_map, prepare_patterns
from kikuchi.io.ctf import read_ctf
from kikuchi.process import PRESETS, process_patterns
from kikuchi.process.no_signal import NoSignalWarning

ROWS, COLS = 20, 25
#: (row, col) -> what the frame holds: 6 of 500 points (1.2 %), two of them neighbours.
BAD = {(0, 0): 0, (3, 7): 255, (10, 12): 117, (12, 3): 0, (12, 4): 255, (19, 24): 117}


def quiet(func, *args, **kwargs):
    """A run on the clean map, for reference (no warning expected there, none counted)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return func(*args, **kwargs)


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    """(clean map, the same map with BAD frames, the bad mask)."""
    d = tmp_path_factory.mktemp("bad_patterns")
    clean = kikuchi.simulate(d / "clean.h5", phase="ni", shape=(ROWS, COLS), pattern_shape=(40, 40), noise="low", progress=False)
    bad_path = d / "bad.h5"
    shutil.copyfile(clean, bad_path)
    with h5py.File(bad_path, "r+") as f:
        ds = f["Scan/EBSD/Data/RawPatterns"]
        for (r, c), value in BAD.items():
            ds[r * COLS + c] = value
    mask = np.zeros((ROWS, COLS), bool)
    mask[tuple(np.array(list(BAD)).T)] = True
    return clean, bad_path, mask


def near(bad, n=1):
    """The bad points and every point within ``n`` map steps (the averaging window, or the 4 nearest neighbours for n=0)."""
    out = bad.copy()
    if n == 0:
        out[1:] |= bad[:-1]
        out[:-1] |= bad[1:]
        out[:, 1:] |= bad[:, :-1]
        out[:, :-1] |= bad[:, 1:]
        return out
    for dr in range(-n, n + 1):
        for dc in range(-n, n + 1):
            out |= np.roll(np.roll(bad, dr, 0), dc, 1)  # the bad points are away from the wrap where it matters
    return out


def test_process(cli, maps, tmp_path):
    clean, bad_path, bad = maps
    out = tmp_path / "p.h5"
    proc = cli("process", bad_path, "-o", out, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "; 6 points without signal (all one value, or not finite: zeros, flagged in Scan/EBSD/Data/NoSignal)" in proc.stdout
    assert "kikuchi process: warning: bad.h5: 6 of 500 points hold no signal (all one value, or not finite): (row 0, col 0), (row 3, col 7)" in proc.stderr
    want = quiet(process_map, clean, tmp_path / "clean_p.h5", "indexing", progress=False)
    with kikuchi.open(out) as o, kikuchi.open(want) as w:
        got, ref = o.read_all(), w.read_all()
        assert o.processing["no_signal_points"] == 6 and o.processing["no_signal_map"] == "Scan/EBSD/Data/NoSignal"
    np.testing.assert_array_equal(got[~bad], ref[~bad])  # every other point, bit for bit
    assert not got[bad].any()  # the bad points: zeros
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["Scan/EBSD/Data/NoSignal"][()], bad)


def test_process_with_neighbour_averaging(cli, maps, tmp_path):
    """--npa: a bad point is no one's neighbour. The points whose window holds one equal the run with the bad
    points marked missing; the others equal the clean map's."""
    clean, bad_path, bad = maps
    out = tmp_path / "p.h5"
    proc = cli("process", bad_path, "-o", out, "--no-progress", "--npa", "1", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert "npa 1); 500 patterns" in proc.stdout and "; 6 points without signal" in proc.stdout
    settings = PRESETS["indexing"].replace(npa=1)
    with kikuchi.open(clean) as m:
        raw, bg = m.read_all(), m.static_background
    missing = quiet(process_patterns, raw, settings, static_background=bg, have=~bad)
    full = quiet(process_patterns, raw, settings, static_background=bg)
    with kikuchi.open(out) as o:
        got = o.read_all()
    np.testing.assert_array_equal(got, missing)
    window = near(bad, 1)
    np.testing.assert_array_equal(got[~window], full[~window])
    assert (got[window & ~bad] != full[window & ~bad]).any()  # their windows lost a pattern


def test_vbse(cli, maps, tmp_path):
    clean, bad_path, bad = maps
    out = tmp_path / "v"
    proc = cli("vbse", bad_path, "-o", out, "--no-png", "--signal", "kikuchi", "--kikuchi-com")
    assert proc.returncode == 0, proc.stderr
    assert "; 6 points without signal (all one value, or not finite: NaN in the images)" in proc.stdout
    assert "warning: bad.h5: 6 of 500 points hold no signal" in proc.stderr
    with kikuchi.open(clean) as m:
        want = quiet(vbse_maps, m, signal="kikuchi", progress=False, com_kikuchi=True)
    with h5py.File(out / "vbse.h5") as f:
        for name in ("vbse", "bse", "com_raw", "com_kikuchi", "diodes"):
            got = f[name][()]
            np.testing.assert_array_equal(got[~bad], getattr(want, name)[~bad], err_msg=name)
            assert np.isnan(got[bad]).all(), name
        assert np.isnan(f["rgb"][()][bad]).all()


def test_quality(cli, maps, tmp_path):
    clean, bad_path, bad = maps
    out = tmp_path / "q"
    proc = cli("quality", bad_path, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "; 6 points without signal (all one value, or not finite: NaN in the maps)" in proc.stdout
    with kikuchi.open(clean) as m:
        want = quiet(quality_maps, m, progress=False)
    with h5py.File(out / "quality.h5") as f:  # float32 arrays
        got = {name: f[name][()] for name in ("iq", "adp", "mean", "std")}
    for name in ("iq", "mean", "std"):
        np.testing.assert_array_equal(got[name][~bad], getattr(want, name).astype(np.float32)[~bad], err_msg=name)
    for name in got:
        assert np.isnan(got[name][bad]).all(), name
    # the dot product: equal away from the bad points; next to them, the mean over the other neighbours
    neighbours = near(bad, 0)
    np.testing.assert_array_equal(got["adp"][~neighbours], want.adp.astype(np.float32)[~neighbours])
    assert np.isfinite(got["adp"][neighbours & ~bad]).all()


def test_index(cli, maps, tmp_path):
    clean, bad_path, bad = maps
    out = tmp_path / "o.ctf"
    proc = cli("index", bad_path, "-o", out, "--phase", "ni", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert "; 6 points without signal (all one value, or not finite: not indexed, CTF error 6)" in proc.stdout
    assert "not indexed (CTF error 6)" in proc.stderr
    with kikuchi.open(clean) as m:
        want = quiet(index_map, m, ["ni"], progress=False).to_orientation_map(header={"Prj": "clean.h5"}, format="ctf")
    want.write(tmp_path / "clean.ctf")
    got, ref = read_ctf(out), read_ctf(tmp_path / "clean.ctf")
    errors = got.columns["error"].reshape(ROWS, COLS)
    assert (errors[bad] == 6).all() and (got.phase_id.reshape(ROWS, COLS)[bad] == 0).all()
    assert (got.columns["bands"].reshape(ROWS, COLS)[bad] == 0).all()
    for name in ("error", "bands", "mad", "bc", "bs"):
        np.testing.assert_array_equal(got.columns[name].reshape(ROWS, COLS)[~bad], ref.columns[name].reshape(ROWS, COLS)[~bad], err_msg=name)
    np.testing.assert_array_equal(got.euler.reshape(ROWS, COLS, 3)[~bad], ref.euler.reshape(ROWS, COLS, 3)[~bad])
    assert (errors[~bad] == 0).mean() > 0.9


def test_bands_on_bad_points(cli, maps, tmp_path, capsys):
    """One line, exit 0 (an answer, not a failure); the first through a subprocess, the others through the same entry point."""
    _, bad_path, _ = maps
    fig = tmp_path / "b.png"
    proc = cli("bands", bad_path, "--at", "0,0", "-o", fig)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"bad.h5 (row 0, col 0): no bands: the pattern holds no signal (every pixel is 0); figure: {fig}"
    assert proc.stderr == "" and fig.read_bytes()[:4] == b"\x89PNG"
    for point, why in (((3, 7), "every pixel is 255 (the maximum of uint8: saturated)"), ((10, 12), "every pixel is 117")):
        assert main(["bands", str(bad_path), "--at", f"{point[0]},{point[1]}"]) == 0
        assert capsys.readouterr().out.strip() == f"bad.h5 (row {point[0]}, col {point[1]}): no bands: the pattern holds no signal ({why})"
    assert main(["bands", str(bad_path), "--at", "12,4", "--json", "--method", "binary"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bands"] == [] and out["no_signal"] == "every pixel is 255 (the maximum of uint8: saturated)" and out["method"] == "binary"


def test_bands_on_a_good_point(cli, maps):
    clean, bad_path, _ = maps
    proc = cli("bands", bad_path, "--at", "12,5", "--json")
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    with kikuchi.open(clean) as m:
        want = detect_bands(prepare_patterns(m.pattern(12, 5)[None], static_background=m.static_background)[0])
    assert [b["theta_deg"] for b in got["bands"]] == [round(float(np.degrees(t)), 3) for t in want.theta]
    assert len(got["bands"]) == 9


def test_warning_counts_in_the_api(maps, tmp_path):
    """The API says it too: one NoSignalWarning per run, with the count and the first positions."""
    _, bad_path, bad = maps
    with pytest.warns(NoSignalWarning, match=r"6 of 500 points hold no signal .*: \(row 0, col 0\), \(row 3, col 7\), \(row 10, col 12\), \(row 12, col 3\), \(row 12, col 4\), \.\.\.; processed as zeros"):
        process_map(bad_path, tmp_path / "p.h5", "indexing", progress=False)
    with kikuchi.open(bad_path) as m, pytest.warns(NoSignalWarning, match="NaN in the images"):
        maps_ = vbse_maps(m, progress=False)
    np.testing.assert_array_equal(maps_.no_signal, bad)
