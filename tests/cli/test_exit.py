"""The ``kikuchi`` program's exit (kikuchi.cli.main.console): fast, yet with everything said and written."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import h5py
import numpy as np


def _run(code: str, tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_the_program_flushes_its_output_runs_exit_handlers_and_keeps_the_code(tmp_path):
    """Output buffered in both streams, an exit handler, a read-only HDF5 file left open: all as with a normal exit."""
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["x"] = np.arange(3)
    proc = _run(
        """
        import atexit, sys, h5py
        import kikuchi.cli.main as m
        m.main = lambda: (print("x" * 100_000, end=""), print("said", file=sys.stderr, end=""), 3)[-1]
        kept = h5py.File("in.h5", "r")  # open for reading: nothing for HDF5 to flush
        atexit.register(lambda: open("handler-ran", "w").close())
        m.console()
        """,
        tmp_path,
    )
    assert proc.returncode == 3
    assert proc.stdout == "x" * 100_000 and proc.stderr == "said"
    assert (tmp_path / "handler-ran").exists()


def test_a_file_open_for_writing_gets_the_normal_exit(tmp_path):
    """HDF5 closes files open for writing in its own exit handler, which only the interpreter's exit runs."""
    proc = _run(
        """
        import h5py, numpy as np
        import kikuchi.cli.main as m
        m.main = lambda: 0
        f = h5py.File("out.h5", "w")
        f["x"] = np.arange(5)
        m.console()
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "out.h5", "r") as f:
        np.testing.assert_array_equal(f["x"][()], np.arange(5))
