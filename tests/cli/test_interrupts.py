"""Interrupted commands: Ctrl-C, SIGTERM and SIGKILL in the middle of a run, and ``--resume``.

The commands run in a subprocess, as a user runs them, through a launcher that
sends the signal to the command itself at the N-th call of a function of
kikuchi (a chunk written, a chunk computed on a worker thread, a write inside
HDF5's I/O callbacks, the finishing of the output, its rename): every
interruption point is reached on every run. The longer sweep is
``benchmarks/hostile.py --only interrupts``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.cli.main import main
from kikuchi.engine import process as engine_process
from kikuchi.engine import process_map
from kikuchi.engine._resumable import ResumeWarning, hold_interrupts
from kikuchi.io import MapFileError
from kikuchi.io._atomic import partial_path
from kikuchi.io.mapstore import MapWriter
from kikuchi.process import PRESETS

LAUNCHER = r"""
import importlib, itertools, os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, even when started in the background
target, n, signame, when, delay, dash, *args = sys.argv[1:]
n, sig, delay = int(n), getattr(signal, signame), float(delay)
target, _, needle = target.partition("@")
module, _, qualname = target.partition(":")
owner = importlib.import_module(module)
*path, name = qualname.split(".")
for part in path:
    owner = getattr(owner, part)
real = getattr(owner, name)
calls = itertools.count(1)  # next() is atomic: hooks on worker threads count right
def hooked(*a, **k):
    if needle and not (a and needle in str(a[0])):
        return real(*a, **k)
    hit = next(calls) == n
    if hit and when == "before":
        os.kill(os.getpid(), sig)
    result = real(*a, **k)
    if hit and when == "after":
        os.kill(os.getpid(), sig)
    if delay:
        import time; time.sleep(delay)
    return result
setattr(owner, name, hooked)
from kikuchi.cli.main import main
sys.exit(main(args))
"""

WRITE_BLOCK = "kikuchi.engine._resumable:ResumableMapWriter.write_block"
FINISH = "kikuchi.engine._resumable:ResumableMapWriter._finish"
FINAL_METADATA = "kikuchi.io.mapstore:MapWriter.set_processing"  # called at the start and, the 2nd time, after the last chunk
PROCESS = ["--preset", "detailed", "--chunk-rows", "3", "--no-progress"]  # 12 rows: 4 chunks
THREADS_NPA = [*PROCESS, "--threads", "2", "--npa", "1"]


def launch(tmp: Path, target: str, n: int, signame: str, when: str, *args, delay: float = 0.0) -> subprocess.CompletedProcess:
    """``kikuchi ARGS``, sending itself ``signame`` at the ``n``-th call of ``target`` (``module:qualname[@arg]``)."""
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, target, str(n), signame, when, str(delay), "--", *map(str, args)],
        capture_output=True, text=True, timeout=300, cwd=tmp,
    )


def content(path: Path) -> dict:
    """Every dataset and attribute of an HDF5 file, by name."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            out[name] = np.asarray(obj[()]) if isinstance(obj, h5py.Dataset) else None
            out.update({f"{name}@{k}": np.asarray(v) for k, v in obj.attrs.items()})

        f.visititems(visit)
    return out


def assert_same_file(a: Path, b: Path) -> None:
    ca, cb = content(a), content(b)
    assert ca.keys() == cb.keys()
    for key, x in ca.items():
        y = cb[key]
        if x is None:
            assert y is None, key
        else:
            assert x.dtype == y.dtype and x.shape == y.shape, key
            np.testing.assert_array_equal(x, y, err_msg=key)


def one_error_line(proc: subprocess.CompletedProcess, command: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"kikuchi {command}: error: "), proc.stderr
    return lines[0]


def hidden_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def pmap(tmp_path_factory):
    """A 12 x 8 map of 32 x 32 uint16 patterns with a static background."""
    path = tmp_path_factory.mktemp("input") / "map.h5"
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:32, 0:32]
    bg = 2000 + 1500 * np.exp(-((yy - 10) ** 2 + (xx - 16) ** 2) / 300.0)
    with MapWriter(path, nav_shape=(12, 8), pattern_shape=(32, 32), dtype=np.uint16) as w:
        for r in range(12):
            band = 400 * np.cos(0.3 * (xx[None] * np.cos(0.2 * r) + yy[None] * np.sin(0.15 * np.arange(8)[:, None, None])))
            w.write_rows(r, (bg + band + rng.normal(0, 60, (8, 32, 32)))[None].astype(np.uint16))
        w.set_static_background(bg.astype(np.float32))
    return path


@pytest.fixture(scope="module")
def whole(pmap, tmp_path_factory):
    """The outputs of uninterrupted runs, by option set."""
    d = tmp_path_factory.mktemp("whole")
    out = {}
    for name, options in (("serial", PROCESS), ("threads_npa", THREADS_NPA)):
        assert main(["process", str(pmap), "-o", str(d / f"{name}.h5"), *options]) == 0
        out[name] = d / f"{name}.h5"
    return out


@pytest.mark.parametrize("options", ["serial", "threads_npa"])
def test_ctrl_c_mid_process_one_line_then_resume_bit_identical(pmap, whole, tmp_path, options):
    args = PROCESS if options == "serial" else THREADS_NPA
    out = tmp_path / "out.h5"
    proc = launch(tmp_path, WRITE_BLOCK, 2, "SIGINT", "after", "process", pmap, "-o", out, *args)
    assert proc.returncode == 130, proc.stderr
    line = one_error_line(proc, "process")
    assert line.startswith("kikuchi process: error: interrupted; ")
    assert f"48 of 96 patterns are complete in the partial output {partial_path(out)}, which is kept: run the same command with --resume" in line
    assert not out.exists() and hidden_files(tmp_path) == [".out.h5.partial"]
    with pytest.raises(MapFileError, match=r"\.out\.h5\.partial: an incomplete output \(kikuchi writes out\.h5 under this name"):
        kikuchi.open(partial_path(out))
    proc = subprocess.run(
        [sys.executable, "-m", "kikuchi.cli.main", "process", str(pmap), "-o", str(out), *args, "--resume"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert_same_file(whole[options], out)
    assert hidden_files(tmp_path) == []


def test_killed_on_a_worker_then_ctrl_c_while_resuming_then_resume(pmap, whole, tmp_path):
    """SIGKILL from a worker thread, --resume interrupted as it finishes the file, --resume again: the same file.

    The kill comes whatever the main thread is doing: inside HDF5's flush of an earlier chunk it can leave a
    partial file HDF5 cannot read, or one whose pattern dataset HDF5 no longer finds (each seen once in a full
    test run under load); --resume then says so in one warning and starts afresh, as documented (and as in the
    test of a kill inside a write, below).
    """
    out = tmp_path / "out.h5"
    proc = launch(tmp_path, "kikuchi.engine.process:process_chunk", 3, "SIGKILL", "after", "process", pmap, "-o", out, *THREADS_NPA)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and hidden_files(tmp_path) == [".out.h5.partial"]
    proc = launch(tmp_path, FINAL_METADATA, 2, "SIGINT", "before", "process", pmap, "-o", out, *THREADS_NPA, "--resume")
    assert proc.returncode == 130
    lines = proc.stderr.splitlines()
    if lines and "cannot be continued" in lines[0] and "starts afresh" in lines[0]:
        proc.stderr = "\n".join(lines[1:])
    assert "96 of 96 patterns are complete in the partial output" in one_error_line(proc, "process")
    assert not out.exists()
    assert main(["process", str(pmap), "-o", str(out), *THREADS_NPA, "--resume"]) == 0
    assert_same_file(whole["threads_npa"], out)
    assert hidden_files(tmp_path) == []


def test_ctrl_c_inside_an_hdf5_write_is_clean(pmap, whole, tmp_path):
    """The signal comes while HDF5 calls back into Python to write: one line, no traceback, the file resumable."""
    out = tmp_path / "out.h5"
    proc = launch(tmp_path, "os:pwrite", 100, "SIGINT", "before", "process", pmap, "-o", out, *PROCESS)  # as the 2nd chunk is written
    assert proc.returncode == 130, proc.stderr
    one_error_line(proc, "process")
    assert main(["process", str(pmap), "-o", str(out), *PROCESS, "--resume"]) == 0
    assert_same_file(whole["serial"], out)


def test_killed_inside_an_hdf5_write_resume_is_still_identical(pmap, whole, tmp_path):
    """SIGKILL inside HDF5's flush of the 2nd chunk (its chunk index may point past the end HDF5 recorded):
    --resume continues, or says in one warning why it starts afresh; the same file either way."""
    out = tmp_path / "out.h5"
    proc = launch(tmp_path, "os:pwrite", 100, "SIGKILL", "before", "process", pmap, "-o", out, *PROCESS)
    assert proc.returncode == -signal.SIGKILL
    proc = subprocess.run(
        [sys.executable, "-m", "kikuchi.cli.main", "process", str(pmap), "-o", str(out), *PROCESS, "--resume"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" or (proc.stderr.count("\n") == 1 and "cannot be continued" in proc.stderr), proc.stderr
    assert_same_file(whole["serial"], out)


def test_ctrl_c_as_the_file_is_finished_leaves_it_complete(pmap, whole, tmp_path):
    """Ctrl-C is held while the complete file is finished and renamed, then said: the output is whole."""
    out = tmp_path / "out.h5"
    proc = launch(tmp_path, FINISH, 1, "SIGINT", "after", "process", pmap, "-o", out, *PROCESS)
    assert proc.returncode == 130
    assert f"the interruption came as the output was finished: {out} is complete" in one_error_line(proc, "process")
    assert_same_file(whole["serial"], out)
    assert hidden_files(tmp_path) == []


def test_killed_before_the_rename_resume_starts_afresh(pmap, whole, tmp_path):
    """A partial output without its record (killed after finishing, before the rename): --resume warns and starts afresh."""
    out = tmp_path / "out.h5"
    proc = launch(tmp_path, "os:replace@.partial", 1, "SIGKILL", "before", "process", pmap, "-o", out, *PROCESS)
    assert proc.returncode == -signal.SIGKILL and not out.exists()
    proc = subprocess.run(
        [sys.executable, "-m", "kikuchi.cli.main", "process", str(pmap), "-o", str(out), *PROCESS, "--resume"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == (
        f"kikuchi process: warning: {partial_path(out)}: the partial output of the interrupted run cannot be continued: "
        "it holds no record of which patterns are complete (the run was stopped while it created or finished the file, "
        "or the file was not written by a resumable run); it is replaced and the run starts afresh\n"
    )
    assert_same_file(whole["serial"], out)


def test_sigterm_stops_like_ctrl_c(pmap, tmp_path):
    out = tmp_path / "out.h5"
    proc = launch(tmp_path, WRITE_BLOCK, 1, "SIGTERM", "after", "process", pmap, "-o", out, *PROCESS)
    assert proc.returncode == 143
    assert one_error_line(proc, "process").startswith("kikuchi process: error: stopped by SIGTERM; 24 of 96 patterns are complete")


def test_ctrl_c_from_outside_answers_at_once(pmap, tmp_path):
    """SIGINT sent by another process (a terminal) once the partial output exists: exit 130 within 3 s."""
    out = tmp_path / "out.h5"
    proc = subprocess.Popen(  # chunks slowed to 0.5 s each, so the run is still going when the signal comes
        [sys.executable, "-c", LAUNCHER, WRITE_BLOCK, "99", "SIGINT", "after", "0.5", "--", "process", str(pmap), "-o", str(out), *PROCESS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    deadline = time.monotonic() + 120
    while not partial_path(out).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < 3.0
    assert proc.returncode == 130
    assert len(err.strip().splitlines()) == 1 and err.startswith("kikuchi process: error: interrupted; "), err


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    from kikuchi.simulate.synthetic import simulate

    return simulate(tmp_path_factory.mktemp("sim") / "sim.h5", shape=(4, 5), pattern_shape=(40, 40), grains=2, noise="low", seed=1, progress=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A 4 x 5 folder of 240 x 240 TIFF images, and the same patterns as an .ebsp file."""
    import tifffile

    from kikuchi.io.ebsp import write_ebsp

    d = tmp_path_factory.mktemp("images")
    (d / "folder").mkdir()
    pats = np.random.default_rng(3).integers(0, 255, (4, 5, 240, 240), dtype=np.uint8)
    for r in range(4):
        for c in range(5):
            tifffile.imwrite(d / "folder" / f"{r}_{c}.tiff", pats[r, c])
    return d / "folder", write_ebsp(d / "p.ebsp", pats)


@pytest.mark.parametrize(
    "command",
    ["convert images", "convert ebsp", "simulate", "vbse", "quality", "index"],
)
def test_ctrl_c_mid_command_leaves_nothing(command, sim, images, tmp_path):
    folder, ebsp = images
    target, args, out = {
        "convert images": ("kikuchi.io.mapstore:MapWriter.write", ["convert", folder, "--workers", "1", "--step", "1"], "m.h5"),
        "convert ebsp": ("kikuchi.io.mapstore:MapWriter.write", ["convert", ebsp, "--workers", "1"], "m.h5"),
        "simulate": ("kikuchi.io.mapstore:MapWriter.write", ["simulate", "--shape", "3x4", "--pattern-shape", "40x40", "--grains", "2"], "s.h5"),
        "vbse": ("kikuchi.engine._executors:run_chunk", ["vbse", sim, "--quiet"], "vb"),
        "quality": ("kikuchi.engine._executors:run_chunk", ["quality", sim, "--quiet"], "q"),
        "index": ("kikuchi.engine._executors:run_chunk", ["index", sim, "--phase", "ni", "--no-progress"], "om.ctf"),
    }[command]
    proc = launch(tmp_path, target, 1, "SIGINT", "after", *args, "-o", tmp_path / out)
    assert proc.returncode == 130, proc.stderr
    assert one_error_line(proc, command.split()[0]).endswith("error: interrupted; no incomplete output was left under its final name")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["convert", "vbse"])
def test_killed_mid_command_leftover_refused_then_replaced(command, sim, images, tmp_path, capsys):
    """After SIGKILL nothing is under the final name; the .partial left is refused by kikuchi info and
    kikuchi.open; the same command again replaces it."""
    folder, _ = images
    if command == "convert":
        target, n, args, out = "kikuchi.io.mapstore:MapWriter.write", 1, ["convert", folder, "--workers", "1", "--step", "1"], tmp_path / "m.h5"
    else:
        target, n, args, out = "kikuchi.figures.map_image:draw_map_image", 3, ["vbse", sim, "--quiet"], tmp_path / "vb"
    proc = launch(tmp_path, target, n, "SIGKILL", "after", *args, "-o", out)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    left = partial_path(out)
    assert left.exists()
    assert main(["info", str(left)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"kikuchi info: error: {left}: an incomplete output (kikuchi writes {out.name} under this name" in err
    with pytest.raises(MapFileError, match="an incomplete output"):
        kikuchi.open(left)
    assert main([*map(str, args), "-o", str(out)]) == 0
    assert out.exists() and not left.exists()


def test_a_renamed_partial_output_is_refused(pmap, tmp_path):
    """A partial output of process given a plain name still holds its record: refused, saying what it is."""
    real = engine_process.process_chunk
    calls = []

    def cut(block, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(block, **kw)

    out = tmp_path / "out.h5"
    settings = PRESETS["detailed"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine_process, "process_chunk", cut)
        with pytest.raises(KeyboardInterrupt) as info:
            process_map(pmap, out, settings, progress=False, chunk_rows=3)
    assert info.value.__notes__ == [
        f"24 of 96 patterns are complete in the partial output {partial_path(out)}, which is kept: run the same command with --resume to continue"
    ]
    renamed = partial_path(out).rename(tmp_path / "looks_complete.h5")
    with pytest.raises(MapFileError, match="looks_complete.h5: an incomplete output of an interrupted `kikuchi process` .*'ResumeWritten'"):
        kikuchi.open(renamed)


def _partial_of_first_chunk(pmap: Path, out: Path) -> None:
    real = engine_process.process_chunk
    calls = []

    def cut(block, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(block, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine_process, "process_chunk", cut)
        with pytest.raises(KeyboardInterrupt):
            process_map(pmap, out, PRESETS["detailed"], progress=False, chunk_rows=3)


def test_resume_recomputes_patterns_recorded_but_not_stored(pmap, whole, tmp_path):
    """A record that claims more than the file holds (a kill while HDF5 wrote): those patterns are computed again, said in a warning."""
    out = tmp_path / "out.h5"
    _partial_of_first_chunk(pmap, out)
    with h5py.File(partial_path(out), "r+") as f:
        f["Scan/EBSD/Header/ResumeWritten"][...] = 1  # chunks 2..4 claimed, never written
    with pytest.warns(ResumeWarning, match=r"72 patterns recorded complete are not stored in the partial output \(first: pattern 24"):
        process_map(pmap, out, PRESETS["detailed"], progress=False, chunk_rows=3, resume=True)
    assert_same_file(whole["serial"], out)


def test_resume_of_a_partial_that_lost_its_pattern_dataset_starts_afresh(pmap, whole, tmp_path):
    """Record and fingerprint readable, the pattern dataset's link gone (a SIGKILL inside HDF5's flush, seen in CI):
    one warning, the run starts afresh, the same file."""
    out = tmp_path / "out.h5"
    _partial_of_first_chunk(pmap, out)
    with h5py.File(partial_path(out), "r+") as f:
        del f["Scan/EBSD/Data/Patterns"]
    with pytest.warns(ResumeWarning, match="cannot be continued: HDF5 finds no pattern dataset in it: the run was killed while HDF5 was writing"):
        process_map(pmap, out, PRESETS["detailed"], progress=False, chunk_rows=3, resume=True)
    assert_same_file(whole["serial"], out)
    assert hidden_files(tmp_path) == []


def test_resume_of_an_unreadable_partial_starts_afresh(pmap, whole, tmp_path):
    out = tmp_path / "out.h5"
    partial_path(out).write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))  # a file killed as HDF5 began it
    with pytest.warns(ResumeWarning, match="cannot be continued: HDF5 cannot read it"):
        process_map(pmap, out, PRESETS["detailed"], progress=False, chunk_rows=3, resume=True)
    assert_same_file(whole["serial"], out)


def test_hold_interrupts_delivers_after_the_block():
    import os

    done = []
    with pytest.raises(KeyboardInterrupt):
        with hold_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs here: held, not raised
            done.append(1)
    assert done == [1]


def test_output_files_put_ctrl_c_off_inside_hdf5_callbacks(tmp_path):
    """While an OutputH5File is open, Python's default Ctrl-C handler is one that waits while HDF5 is in its
    I/O callbacks (an exception there leaves the file impossible to close); the default comes back at close."""
    from kikuchi.io import _atomic

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # also after the writers of the tests before
    with _atomic.OutputH5File(tmp_path / "a.h5") as f:
        assert signal.getsignal(signal.SIGINT) is _atomic._interrupt_unless_in_callback
        f["x"] = np.arange(3)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert _atomic.in_uninterruptible_code(None) is False
    frame = sys._getframe()
    assert _atomic.in_uninterruptible_code(frame) is False
