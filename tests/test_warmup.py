"""Compiling the kernels ahead (python -m kikuchi._warmup): what it compiles is what the demo's commands use."""

from __future__ import annotations

import subprocess
import sys

from kikuchi import _warmup


def test_after_the_warm_up_the_demo_commands_compile_nothing(tmp_path):
    """Run the warm-up (as make does after installing; quick when the cache is warm already), then commands of
    the demo in a fresh process: they find every kernel in the cache and compile none."""
    done = subprocess.run([sys.executable, "-m", "kikuchi._warmup"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "numba kernels compiled and cached in" in done.stdout
    probe = (
        "import sys, tempfile, pathlib\n"
        "from numba.core import event\n"
        "compiled = []\n"
        "class Rec(event.Listener):\n"
        "    def on_start(self, e): compiled.append(e.data['dispatcher'].py_func.__qualname__)\n"
        "    def on_end(self, e): pass\n"
        "event.register('numba:compile', Rec())\n"
        "from kikuchi import _warmup\n"
        "work = pathlib.Path(tempfile.mkdtemp())\n"
        "m = _warmup._random_map(work / 'm.h5', 'uint16')\n"
        "_warmup._kikuchi('process', m, '-o', work / 'p.h5', '--no-progress')\n"
        "_warmup._kikuchi('vbse', m, '-o', work / 'v', '--quiet', '--no-png')\n"
        "_warmup._kikuchi('index', m, '--phase', 'ni', '--pc', '0.5,0.3,0.6', '-o', work / 'x.ctf', '--no-progress')\n"
        "print('compiled:', sorted(set(compiled)))\n"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "compiled: []" in run.stdout, run.stdout


def test_groups_cover_the_demo_commands():
    """Every command the demo runs that has kernels is run by a group of the warm-up."""
    import inspect

    from kikuchi.cli import _demo

    demo = inspect.getsource(_demo)
    warm = inspect.getsource(_warmup)
    for command in ("simulate", "convert", "plot", "process", "vbse", "quality", "index"):
        assert f'"{command}"' in demo
        assert f'"{command}"' in warm, command


def test_a_failing_group_does_not_fail_the_installation(monkeypatch, capsys):
    def broken(*, processes=None):
        raise RuntimeError("compiling the kernels failed in index (exit 1): boom")

    monkeypatch.setattr(_warmup, "warm_up", broken)
    assert _warmup.main([]) == 0
    assert "kernels not compiled ahead (compiling the kernels failed in index (exit 1): boom); they compile on first use" in capsys.readouterr().err
