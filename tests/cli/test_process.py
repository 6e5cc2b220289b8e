"""``kikuchi process`` through a subprocess, as a user runs it."""

from __future__ import annotations

import numpy as np
import pytest

import kikuchi
from kikuchi.cli.main import main
from kikuchi.engine import process as engine_process
from kikuchi.engine import process_map
from kikuchi.io._atomic import partial_path
from kikuchi.process import PRESETS
from tests.conftest import shared_file
from tests.engine.conftest import write_map


def expect_errors(cli, capsys, argv, cases):
    """Run each case (extra arguments, expected message): exit code 2 and the message on stderr.

    The first case goes through a subprocess, exactly as a user runs it; the others through the
    same entry point in this process (fast). Yields each stderr for further checks.
    """
    for i, (extra, message) in enumerate(cases):
        args = [*argv, *map(str, extra)]
        if i == 0:
            proc = cli(*args)
            code, err = proc.returncode, proc.stderr
        else:
            code, err = main(args), capsys.readouterr().err
        assert code == 2, (extra, err)
        assert message in err, (extra, err)
        yield err


@pytest.fixture
def map_file(tmp_path, rng):
    """A 6 x 4 map of 30 x 40 uint16 patterns with a static background."""
    h, w = 30, 40
    yy, xx = np.mgrid[0:h, 0:w]
    bg = 2000 + 1500 * np.exp(-((yy - 10) ** 2 + (xx - 20) ** 2) / 400.0)
    pats = np.stack([bg * (1 + 0.1 * np.cos(0.3 * xx + k)) + rng.normal(0, 30, (h, w)) for k in range(24)])
    return write_map(tmp_path / "map.h5", pats.reshape(6, 4, h, w).astype(np.uint16), background=bg)


def test_indexing_preset_on_real_nickel(cli, tmp_path):
    src = shared_file("kikuchipy/nickel_ebsd_small.h5")
    out = tmp_path / "ni.h5"
    proc = cli("process", src, "-o", out, "--npa", "1", "--threads", "2", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}: 3 x 3 map, 60 x 60 uint8 patterns (preset indexing" in proc.stdout
    api = process_map(src, tmp_path / "api.h5", PRESETS["indexing"].replace(npa=1), progress=False)
    with kikuchi.open(out) as o, kikuchi.open(api) as a:
        np.testing.assert_array_equal(o.read_all(), a.read_all())
        assert o.processing["npa"] == 1 and o.processing["static_background_source"].endswith("StaticBackground")
        assert o.euler is not None and o.pattern_centre.convention == "bruker"


def test_tiles_from_the_command_line(cli, map_file, tmp_path):
    """--chunk-cols cuts the map into tiles (with --npa: halo columns): the same patterns as whole rows."""
    whole, tiles = tmp_path / "whole.h5", tmp_path / "tiles.h5"
    for out, extra in ((whole, ()), (tiles, ("--chunk-rows", "2", "--chunk-cols", "3"))):
        proc = cli("process", map_file, "-o", out, "--npa", "1", "--dtype", "uint16", "--no-progress", *extra)
        assert proc.returncode == 0, proc.stderr
    with kikuchi.open(whole) as a, kikuchi.open(tiles) as b:
        np.testing.assert_array_equal(b.read_all(), a.read_all())


def test_output_without_compression(cli, map_file, tmp_path):
    """--compression none: the same patterns, stored without a filter, recorded in the parameters."""
    gz, raw = tmp_path / "gz.h5", tmp_path / "raw.h5"
    for out, extra in ((gz, ()), (raw, ("--compression", "none"))):
        proc = cli("process", map_file, "-o", out, "--npa", "1", "--dtype", "uint16", "--no-progress", *extra)
        assert proc.returncode == 0, proc.stderr
    with kikuchi.open(gz) as a, kikuchi.open(raw) as b:
        np.testing.assert_array_equal(b.read_all(), a.read_all())
        assert a.describe()["compression"] == "gzip" and b.describe()["compression"] is None
        assert (a.processing["compression"], b.processing["compression"]) == ("gzip", "none")
    proc = cli("process", map_file, "-o", tmp_path / "x.h5", "--compression", "lzf")
    assert proc.returncode == 2 and "invalid choice: 'lzf'" in proc.stderr


def test_detailed_options_and_mean_background(cli, map_file, tmp_path):
    out = tmp_path / "d.h5"
    proc = cli(
        "process", map_file, "-o", out, "--preset", "detailed", "--static", "subtract", "--static-background", "mean",
        "--sigma", "4", "--binning", "2", "--dtype", "float32", "--chunk-rows", "2",
    )
    assert proc.returncode == 0, proc.stderr
    with kikuchi.open(out) as o:
        assert o.pattern_shape == (15, 20) and o.dtype == np.float32 and o.binning == 2
        p = o.processing
        assert (p["static"], p["sigma_px"], p["binning_factor"], p["dtype"]) == ("subtract", 4.0, 2, "float32")
        assert p["static_background_source"] == "mean of map.h5"


def test_resume_continues_an_interrupted_run(cli, map_file, tmp_path, monkeypatch):
    args = ["--preset", "detailed", "--sigma", "4", "--npa", "1", "--chunk-rows", "2"]
    whole = tmp_path / "whole.h5"
    assert main(["process", str(map_file), "-o", str(whole), *args]) == 0
    out = tmp_path / "out.h5"
    real = engine_process.process_chunk
    calls = []

    def interrupted(block, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(block, **kw)

    monkeypatch.setattr(engine_process, "process_chunk", interrupted)
    settings = PRESETS["detailed"].replace(sigma=4.0, npa=1)
    with pytest.raises(KeyboardInterrupt):
        process_map(map_file, out, settings, progress=False, chunk_rows=2)
    assert partial_path(out).exists() and not out.exists()
    proc = cli("process", map_file, "-o", out, *args, "--resume")
    assert proc.returncode == 0, proc.stderr
    with kikuchi.open(whole) as a, kikuchi.open(out) as b:
        np.testing.assert_array_equal(a.read_all(), b.read_all())
        assert a.processing == b.processing


def test_bad_inputs_clear_errors_nothing_overwritten(cli, map_file, tmp_path, capsys):
    out = tmp_path / "out.h5"
    out.write_bytes(b"keep me")
    np.save(tmp_path / "bg.npy", np.ones((7, 7)))
    cases = [
        (["--static-background", tmp_path / "bg.npy"], r"static background of shape (7, 7) fits neither the patterns (30, 40)"),
        (["--binning", "3"], "binning factor 3 does not divide the pattern shape 30 x 40; choose a common divisor of 30 and 40 (1, 2, 5, 10)"),
        (["--sigma", "0"], "--sigma must be a positive number of pixels, got 0"),
        (["--sigma", "-2"], "--sigma must be a positive number of pixels, got -2"),
        (["--scheduler", "tcp://127.0.0.1:9", "--scheduler-timeout", "0.5"], "cannot reach the dask scheduler at tcp://127.0.0.1:9"),
        (["--static-background", tmp_path / "missing.dat"], "missing.dat: no such static background file"),
    ]
    for err in expect_errors(cli, capsys, ["process", str(map_file), "-o", str(out)], cases):
        assert err.startswith("kikuchi process: error: ")
        assert out.read_bytes() == b"keep me" and not partial_path(out).exists()
    before = map_file.read_bytes()
    assert main(["process", str(map_file), "-o", str(map_file)]) == 2
    assert "is the input map file; choose another output path" in capsys.readouterr().err
    assert map_file.read_bytes() == before
