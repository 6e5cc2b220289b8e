"""What a hostile case is and how its outcome is judged (shared by the sections of benchmarks/hostile_cases/).

A section module defines ``cases(workdir: Path) -> Iterator[Case]``. A case
runs one bad input through kikuchi (the Python API or a command in a
subprocess) and is judged:

* ``ok``: read or run, nothing odd said (right for inputs that are odd
  only in ways that do not matter; the case says so by ``expect_ok``);
* ``warning``: read or run, with a warning that says what was odd;
* ``error``: refused with a clear one-line error of kikuchi's error types
  (API: an exception derived from ValueError, OSError or IndexError whose
  message is one line; CLI: exit code != 0 and stderr one line
  ``kikuchi CMD: error: ...``);
* ``other``: anything else: another exception, a traceback, a crash or
  a hang, a result that is wrong without a word (``silent-wrong``), or an
  output left behind that looks complete (``partial-output``).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTCOMES = ("ok", "warning", "error", "other")


@dataclass
class Case:
    """One bad input: ``run()`` returns None, or a verdict string ('silent-wrong', 'partial-output', ...) when it found one."""

    cls: str
    label: str
    run: Callable[[], Any]
    cli: bool = False
    timeout_s: float = 120.0
    expect_ok: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Result:
    cls: str
    label: str
    outcome: str
    detail: str = ""


def judge_api(case: Case) -> Result:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            verdict = case.run()
        except (ValueError, OSError, IndexError) as exc:
            text = str(exc)
            if text and "\n" not in text.strip() and "Traceback" not in text:
                return Result(case.cls, case.label, "error", f"{type(exc).__name__}: {text[:200]}")
            return Result(case.cls, case.label, "other", f"{type(exc).__name__} not one line: {text[:200]!r}")
        except Exception as exc:  # noqa: BLE001 - that is the point: any other exception is a defect
            return Result(case.cls, case.label, "other", f"{type(exc).__name__}: {str(exc)[:200]}")
    if verdict:
        return Result(case.cls, case.label, "other", str(verdict))
    said = [str(w.message) for w in caught if not issubclass(w.category, (DeprecationWarning, ResourceWarning))]
    if said:
        return Result(case.cls, case.label, "warning", said[0][:200])
    return Result(case.cls, case.label, "ok")


def run_cli(*args: Any, cwd: Path | None = None, timeout_s: float = 120.0) -> subprocess.CompletedProcess:
    """``kikuchi ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "kikuchi.cli.main", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout_s
    )


def judge_cli(case: Case) -> Result:
    """``case.run()`` returns the CompletedProcess (or a verdict string)."""
    try:
        proc = case.run()
    except subprocess.TimeoutExpired:
        return Result(case.cls, case.label, "other", f"hang: no answer within {case.timeout_s:g} s")
    if isinstance(proc, str):
        return Result(case.cls, case.label, "other", proc)
    if isinstance(proc, tuple):  # (process, verdict)
        proc, verdict = proc
        if verdict:
            return Result(case.cls, case.label, "other", str(verdict))
    err = proc.stderr.strip()
    if proc.returncode < 0:
        return Result(case.cls, case.label, "other", f"killed by signal {-proc.returncode}")
    if "Traceback" in err:
        return Result(case.cls, case.label, "other", "traceback: " + err.splitlines()[-1][:200])
    lines = [line for line in err.splitlines() if line.strip() and "warning:" not in line and "%|" not in line]
    if proc.returncode != 0:
        if len(lines) == 1 and ": error: " in lines[0]:
            return Result(case.cls, case.label, "error", lines[0][:200])
        return Result(case.cls, case.label, "other", f"exit {proc.returncode}, stderr: {err[-200:]!r}")
    if "warning:" in err:
        return Result(case.cls, case.label, "warning", next(line for line in err.splitlines() if "warning:" in line)[:200])
    return Result(case.cls, case.label, "ok")


def judge(case: Case) -> Result:
    return judge_cli(case) if case.cli else judge_api(case)


class Worker:
    """A Python process that runs the cases of one section (a crash or a hang of HDF5 cannot take the sweep with it).

    ``module`` defines ``_serve()``: it reads one JSON request per line on
    stdin and answers each with a line ``@@ JSON`` on stdout.
    """

    def __init__(self, module: str) -> None:
        self.module = module
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        import os

        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
        return subprocess.Popen(
            [sys.executable, "-c", f"from {self.module} import _serve; _serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=root, env=env, text=True, bufsize=1,
        )  # fmt: skip

    def ask(self, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """The worker's answer to ``request``, or ``{"verdict": ...}`` when it hung or crashed (it is started again next time)."""
        import json
        import selectors
        import time

        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._start()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.stop()
                    return {"verdict": f"hang: no answer within {timeout_s:g} s"}
                line = self.proc.stdout.readline()
                if not line:
                    code = self.proc.wait()
                    self.stop()
                    return {"verdict": f"crash: the reading process ended with {'signal ' + str(-code) if code < 0 else 'code ' + str(code)}"}
                if line.startswith("@@ "):
                    return json.loads(line[3:])
        finally:
            sel.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    pipe.close()
            self.proc = None
