"""Faults of storage and outputs through the command line: a damaged chunk, a full disk, a map without a step,
sizes without bound, an output that is its input. One line on stderr, exit code 2, nothing left behind."""

from __future__ import annotations

import contextlib
import os
import subprocess

import h5py
import numpy as np
import pytest

from kikuchi.cli.main import main
from tests.conftest import IN_CI

DATASET = "Scan/EBSD/Data/RawPatterns"
NAV = (4, 5)


@pytest.fixture(scope="module")
def map_file(tmp_path_factory):
    """A 4 x 5 synthetic map (PC, phase, static background) stored in HDF5 chunks of 6 patterns."""
    from kikuchi.simulate.synthetic import simulate

    path = tmp_path_factory.mktemp("storage") / "map.h5"
    simulate(path, shape=NAV, pattern_shape=(24, 24), grains=2, noise="low", seed=2, progress=False)
    with h5py.File(path, "r+") as f:
        data = f[DATASET][()]
        del f[DATASET]
        f.create_dataset(DATASET, data=data, chunks=(6, 24, 24), compression="gzip", compression_opts=1, shuffle=True)
    return path


@pytest.fixture
def damaged(map_file, tmp_path):
    """The map with stored chunk 1 (patterns 6..11: map rows 1..2) damaged."""
    with h5py.File(map_file, "r") as f:
        info = f[DATASET].id.get_chunk_info(1)
    data = bytearray(map_file.read_bytes())
    for i in range(info.byte_offset + info.size // 2, info.byte_offset + info.size // 2 + 4):
        data[i] ^= 0xFF
    path = tmp_path / "damaged.h5"
    path.write_bytes(bytes(data))
    return path


def error_line(proc: subprocess.CompletedProcess, command: str) -> str:
    """The one line of a refused command."""
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip() and ": warning: " not in line]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"kikuchi {command}: error: ")
    return lines[0]


LOST = np.zeros(NAV, dtype=bool)
LOST.reshape(-1)[6:12] = True


@pytest.mark.parametrize(("command", "extra", "output"), [
    ("process", ["--no-progress"], "out.h5"),
    ("vbse", ["--quiet"], "out"),
    ("quality", ["--quiet"], "out"),
])  # fmt: skip
def test_a_damaged_chunk_is_named_and_nothing_is_written(cli, damaged, tmp_path, command, extra, output):
    proc = cli(command, damaged, "-o", tmp_path / output, *extra)
    line = error_line(proc, command)
    assert line.startswith(
        f"kikuchi {command}: error: {damaged}: HDF5 chunk 1 of '/{DATASET}' (patterns 6..11: map rows 1..2) cannot be decoded (deflate: "
    )
    assert line.endswith(
        "): the file is damaged there; copy the file again from its source, or carry on without those points "
        "(--skip-bad-chunks; on_bad_chunk='skip' in Python)"
    )
    assert not (tmp_path / output).exists() and not (tmp_path / f".{output}.partial").exists()


def test_vbse_skips_a_damaged_chunk_and_counts_its_points(cli, map_file, damaged, tmp_path):
    clean = cli("vbse", map_file, "-o", tmp_path / "clean", "--no-png", "--quiet")
    assert clean.returncode == 0, clean.stderr
    proc = cli("vbse", damaged, "-o", tmp_path / "out", "--no-png", "--skip-bad-chunks")
    assert proc.returncode == 0, proc.stderr
    (warning,) = proc.stderr.strip().splitlines()
    assert warning.startswith(f"kikuchi vbse: warning: damaged.h5: HDF5 chunk 1 of '/{DATASET}' cannot be decoded (deflate: ")
    assert warning.endswith("); its 6 points (map rows 1..2) are read as points without a pattern")
    assert "; 6 points in unreadable chunks (damaged file: NaN in the images)" in proc.stdout
    with h5py.File(tmp_path / "out" / "vbse.h5") as a, h5py.File(tmp_path / "clean" / "vbse.h5") as b:
        got, ref = a["vbse"][()], b["vbse"][()]
    assert np.array_equal(np.isnan(got).all(axis=(2, 3)), LOST)
    assert np.array_equal(got[~LOST], ref[~LOST])


def test_process_skips_a_damaged_chunk(cli, damaged, tmp_path):
    import kikuchi

    proc = cli("process", damaged, "-o", tmp_path / "out.h5", "--no-progress", "--skip-bad-chunks", "--threads", "2")
    assert proc.returncode == 0, proc.stderr
    assert "; 6 points in unreadable chunks of the input (damaged file: no pattern in the output)" in proc.stdout
    with kikuchi.open(tmp_path / "out.h5") as out:
        assert np.array_equal(out.index_map < 0, LOST)


# -- a full disk ----------------------------------------------------------------------------------
@contextlib.contextmanager
def full_disk(folder, *, leave_kib=0):
    """A 2 MiB tmpfs at ``folder``, filled up to ``leave_kib`` KiB; skips (fails in CI) where it cannot be mounted."""
    folder.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True, text=True)
    if proc.returncode != 0:
        reason = f"cannot mount a tmpfs to fill up ({(proc.stderr or 'mount failed').strip()}): needs root"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        with contextlib.suppress(OSError):
            while os.write(fd, bytes(4096)):
                pass
        os.close(fd)
        if leave_kib:
            os.truncate(folder / "filler", (folder / "filler").stat().st_size - leave_kib * 1024)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize(("command", "leave"), [
    (["simulate", "-o", "{d}/s.h5", "--shape", "6x6", "--pattern-shape", "32x32", "--no-progress"], 8),
    (["process", "{map}", "-o", "{d}/p.h5", "--no-progress"], 0),
    (["vbse", "{map}", "-o", "{d}/vb", "--quiet"], 8),
    (["convert", "{map}", "-o", "{d}/c.h5", "--format", "h5ebsd", "--no-progress"], 0),
    (["plot", "{map}", "--map", "bse", "-o", "{d}/bse.png"], 0),
])  # fmt: skip
def test_a_full_disk_is_one_line_and_leaves_nothing(cli, map_file, tmp_path, command, leave):
    """Every writer on a full disk: exit 2, one line saying so, no partial file, no crash (HDF5 never sees the failed write)."""
    with full_disk(tmp_path / "disk", leave_kib=leave) as d:
        proc = cli(*(a.format(d=d, map=map_file) for a in command))
        line = error_line(proc, command[0])
        assert "no space left on device while writing it" in line
        assert line.endswith("nothing was left under its name: free some space or write the output elsewhere")
        assert sorted(p.name for p in d.iterdir()) == ["filler"]


# -- a map without a step, sizes without bound, outputs that are inputs -----------------------------
@pytest.fixture
def step_zero(map_file, tmp_path):
    path = tmp_path / "step0.h5"
    path.write_bytes(map_file.read_bytes())
    with h5py.File(path, "r+") as f:
        for name in ("X Resolution", "Y Resolution"):
            f[f"Scan/EBSD/Header/{name}"][()] = np.float32(0)
    return path


def test_a_map_of_step_0_is_drawn_without_scale_bar(cli, step_zero, tmp_path):
    proc = cli("quality", step_zero, "-o", tmp_path / "q", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert (
        "kikuchi quality: warning: step0.h5: the map step (0 x 0 µm) is not a positive length; the images are drawn with one "
        "square pixel per map point and no scale bar (the arrays do not depend on the step)"
    ) in proc.stderr.splitlines()
    assert sorted(p.name for p in (tmp_path / "q").iterdir()) == ["adp.png", "index.html", "iq.png", "mean.png", "quality.h5", "std.png"]


@pytest.mark.parametrize(("argv", "message"), [
    (["vbse", "{map}", "-o", "{tmp}/v", "--grid", "1000x1000"],
     "--grid 1000x1000: regions smaller than a pixel of the 24 x 24 patterns of map.h5 (a region must hold at least one pixel): use at most 24x24"),
    (["vbse", "{map}", "-o", "{tmp}/v", "--grid", "21x21", "--region-pngs"],
     "--region-pngs writes one PNG per region: 441 regions are more than 400; use a coarser --grid, or no --region-pngs"),
    (["vbse", "{map}", "-o", "{tmp}/v", "--diode-strip", "0"], "--diode-strip is a fraction of the pattern height, 0 < F <= 1; got 0"),
    (["simulate", "-o", "{tmp}/s.h5", "--pattern-shape", "2000x2000"],
     "2000 patterns of 2000 x 2000 pixels make 8.0 billion pixels (7.5 GiB of 8-bit patterns, about 33 minutes of simulation), "
     "more than the 4.3 billion simulated without allow_large=True (--allow-large); give a smaller map or pattern shape, or allow it"),
    (["simulate", "-o", "{tmp}/s.h5", "--pattern-shape", "5000x8", "--shape", "1x1"],
     "patterns of 5000 x 8 pixels are larger than any EBSD camera (at most about 2048 pixels a side; the limit here is 4096 without "
     "allow_large=True, --allow-large); give a smaller pattern shape, or allow it"),
    (["simulate", "-o", "{tmp}/s.h5", "--step", "0"], "argument --step: expected a positive number, got '0' (see kikuchi simulate --help)"),
    (["vbse", "{map}", "-o", "{map}"], "-o {map} is the input file; choose another output path (nothing was written)"),
    (["quality", "{map}", "-o", "{tmp}/file.txt"], "-o {tmp}/file.txt is a file, not a folder; give the output folder another name (nothing was written)"),
    (["process", "{map}", "-o", "{tmp}/../{tmp.name}/hard.h5"],
     "-o {tmp}/../{tmp.name}/hard.h5 is the input map file; choose another output path (nothing was written)"),
    (["pattern", "{map}", "--at", "0,0", "-o", "{tmp}/bg.tif", "--process", "detailed", "--static-background", "{tmp}/bg.tif"],
     "-o {tmp}/bg.tif is the --static-background file; choose another output path (nothing was written)"),
    (["index", "{map}", "-o", "{tmp}/o.ctf", "--phase", "ni", "--figure", "{map}"],
     "{map}: the figure is written as PNG; give a .png name"),
    (["convert", "{map}", "-o", "{tmp}/link.h5"], "-o {tmp}/link.h5 is the input file; choose another output path (nothing was written)"),
    (["simulate", "--from-map", "{tmp}/t.ctf", "-o", "{tmp}/t.ctf"],
     "-o {tmp}/t.ctf is the --from-map file; choose another output path (nothing was written)"),
    (["simulate", "-o", "{tmp}/s.h5", "--ctf", "{tmp}/s.h5"], "-o {tmp}/s.h5 is the --ctf file; choose another output path (nothing was written)"),
    (["bands", "{map}", "-o", "{tmp}/link.h5"], "{tmp}/link.h5: the figure is written as PNG; give a .png name"),
    (["plot", "{tmp}/t.ctf", "--map", "bc", "-o", "{tmp}/t.png"], None),
])  # fmt: skip
def test_refused_before_any_work(map_file, tmp_path, capsys, argv, message):
    """Checked first, in one line; the inputs are left as they were."""
    os.link(map_file, tmp_path / "hard.h5")
    (tmp_path / "link.h5").symlink_to(map_file)
    (tmp_path / "file.txt").write_text("keep")
    (tmp_path / "t.ctf").write_text("not a CTF")
    (tmp_path / "t.png").symlink_to(tmp_path / "t.ctf")
    np.save(tmp_path / "bg.npy", np.ones((24, 24)))
    import tifffile

    tifffile.imwrite(tmp_path / "bg.tif", np.full((24, 24), 100, np.uint8))
    before = map_file.read_bytes()
    args = [a.format(map=map_file, tmp=tmp_path) for a in argv]
    with pytest.raises(SystemExit) if message and message.startswith("argument") else contextlib.nullcontext() as stop:
        code = main(args)
    err = capsys.readouterr().err
    if stop is not None:
        code = stop.value.code
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    expected = message or "-o {tmp}/t.png is the input file; choose another output path (nothing was written)"
    assert lines[0] == f"kikuchi {argv[0]}: error: " + expected.format(map=map_file, tmp=tmp_path)
    assert map_file.read_bytes() == before and (tmp_path / "file.txt").read_text() == "keep"
    assert (tmp_path / "t.ctf").read_text() == "not a CTF"
