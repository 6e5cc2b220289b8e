"""Interrupted runs: Ctrl-C (SIGINT), SIGTERM and SIGKILL in the middle of every command that writes, and ``--resume``.

Each command runs in a subprocess, as a user runs it, through a small
launcher that sends the signal to the command itself at a chosen call (the
N-th call of a function of kikuchi: a chunk written, a chunk computed on a
worker thread, a write of HDF5 inside its I/O callbacks, the finishing of the
output, its rename), so every interruption point is reached on every run;
a few cases send the signal from outside, once the output's ``.partial``
file has appeared, as a user at a terminal does.

Classes (each case judged by ``_case.judge``; a case returns a verdict where
it finds a defect the judge cannot see):

* **SIGINT mid-run** / **SIGTERM mid-run**: ``convert`` (a folder of images,
  a vendor's ``.ebsp`` file, to kikuchi and to h5ebsd), ``process``
  (serial and 2 threads, with and without ``--npa``: the first chunk, the
  middle, inside an HDF5 write, a chunk on a worker thread, after the last
  chunk, the final metadata writes, as the file is finished, at the
  rename), ``index`` (CTF and HDF5 output), ``vbse``, ``quality``,
  ``simulate`` (and its ``--ctf`` truth). Expected: exit code 130 (143),
  one line ``kikuchi CMD: error: interrupted; ...`` within 3 s of the
  signal, nothing under the final output name unless it is the complete
  result (the signal came as it was finished), no ``.partial`` file left
  except that of ``process``, which ``--resume`` continues.
* **SIGKILL mid-run**: the same points, and SIGKILL at eight of HDF5's writes
  of ``process`` (inside its flushes). Nothing can clean up after SIGKILL:
  expected nothing under the final name (or the complete result); then what
  a user does next runs and is judged: the same command again (``process``:
  with ``--resume``, once without), which must give the result of an
  uninterrupted run (``resume-differs`` / ``silent-wrong`` otherwise) and
  leave no ``.partial`` file. A partial file HDF5 can no longer continue
  (killed inside a flush) is replaced with a warning: judged ``warning``.
* **resume after SIGINT/SIGKILL** (``process``): ``--resume`` after each
  SIGINT/SIGTERM case above, and two interruptions in a row (SIGINT then
  SIGKILL during the resumed run; SIGKILL then SIGINT at the final metadata),
  then ``--resume``: a file whose pattern datasets, map data and attributes
  are bit-identical to those of an uninterrupted run (``resume-differs``
  otherwise).
* **opening a partial output**: the ``.partial`` files and folders the
  interruptions leave, given to ``kikuchi info`` (one of each command and
  signal) and to ``kikuchi.open`` (all), and a partial output of
  ``process`` renamed to a plain name (``info``, ``process``,
  ``kikuchi.open``): a clear one-line refusal (``partial-output`` when it is
  read as a map).

Verdicts: ``partial-output`` (a file that looks complete and is not, or a
``.partial`` file left where nothing uses it), ``resume-differs``,
``interrupt ignored``, ``slow interrupt``, ``not interrupted`` (the
interruption point was never reached: a defect of this sweep).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.hostile_cases._case import Case, run_cli  # noqa: E402

#: Seconds within which a command must answer SIGINT/SIGTERM (it stops a chunk in flight).
ANSWER_S = 3.0


def cli(*args: Any, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``kikuchi ARGS`` in a subprocess (a few minutes at most: a loaded machine is slow, not hung)."""
    return run_cli(*args, cwd=cwd, timeout_s=300)

#: Runs ``kikuchi ARGS`` and sends itself a signal at the N-th call of a function:
#: ``python -c LAUNCHER FIRED MODULE:QUALNAME[@ARG] N SIGNAL before|after -- ARGS``.
#: ``@ARG`` counts only calls whose first argument contains ARG. FIRED is written
#: (the time) just before the signal is sent. A hook of ``os:pwrite`` fires inside
#: HDF5's write callbacks (the output files of kikuchi are written through Python).
LAUNCHER = r"""
import importlib, itertools, os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal, even when started in the background
fired, target, n, signame, when, dash, *args = sys.argv[1:]
assert dash == "--"
n, sig = int(n), getattr(signal, signame)
target, _, needle = target.partition("@")
module, _, qualname = target.partition(":")
owner = importlib.import_module(module)
*path, name = qualname.split(".")
for part in path:
    owner = getattr(owner, part)
real = getattr(owner, name)
calls = itertools.count(1)  # next() is atomic: hooks on worker threads count right
def fire():
    with open(fired, "w") as fh:
        fh.write(repr(time.time()))
    os.kill(os.getpid(), sig)
def hooked(*a, **k):
    if needle and not (a and needle in str(a[0])):
        return real(*a, **k)
    hit = next(calls) == n
    if hit and when == "before":
        fire()
    result = real(*a, **k)
    if hit and when == "after":
        fire()
    return result
setattr(owner, name, hooked)
from kikuchi.cli.main import main
sys.exit(main(args))
"""

WRITE_BLOCK = "kikuchi.engine._resumable:ResumableMapWriter.write_block"
FINISH = "kikuchi.engine._resumable:ResumableMapWriter._finish"
FINAL_METADATA = "kikuchi.io.mapstore:MapWriter.set_processing"  # the 2nd call: after the last chunk
RENAME = "os:replace@.partial"
MAP_WRITE = "kikuchi.io.mapstore:MapWriter.write"
CHUNK = "kikuchi.engine._executors:run_chunk"
H5_WRITE = "os:pwrite"


def launch(workdir: Path, hook: tuple[str, int, str, str], *args: Any, timeout_s: float = 180.0) -> tuple[subprocess.CompletedProcess, float | None]:
    """Run ``kikuchi ARGS`` with the signal sent at ``hook`` = (target, n, signal name, before|after).

    Returns the process and the seconds from the signal to the exit (None when it was never sent).
    """
    fired = workdir / f".fired-{time.monotonic_ns()}"
    target, n, signame, when = hook
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCHER, str(fired), target, str(n), signame, when, "--", *map(str, args)],
        capture_output=True, text=True, timeout=timeout_s, cwd=workdir,
    )
    end = time.time()
    sent = None
    if fired.exists():
        sent = end - float(fired.read_text())
        fired.unlink()
    return proc, sent


def signal_from_outside(workdir: Path, output: Path, signum: int, *args: Any, delay_s: float = 0.3) -> tuple[subprocess.CompletedProcess, float | None]:
    """Start ``kikuchi ARGS``, send ``signum`` ``delay_s`` after its ``.partial`` output appears; (process, seconds to answer)."""
    partial = output.with_name(f".{output.name}.partial")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kikuchi.cli.main", *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=workdir, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    sent = None
    if proc.poll() is None:
        time.sleep(delay_s)
        if proc.poll() is None:
            proc.send_signal(signum)
            sent = time.monotonic()
    out, err = proc.communicate(timeout=180)
    answered = None if sent is None else time.monotonic() - sent
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), answered


# -- comparing outputs ----------------------------------------------------------------------------
def h5_content(path: Path) -> dict[str, Any]:
    """Every dataset (values) and every attribute of an HDF5 file, by name."""
    import h5py

    out: dict[str, Any] = {}
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: Any) -> None:
            out[name] = np.asarray(obj[()]) if isinstance(obj, h5py.Dataset) else None
            for key, value in obj.attrs.items():
                out[f"{name}@{key}"] = np.asarray(value)

        f.visititems(visit)
        for key, value in f.attrs.items():
            out[f"@{key}"] = np.asarray(value)
    return out


def differs(a: Path, b: Path) -> str | None:
    """What differs between two outputs (HDF5 content, folders file by file, other files byte by byte), or None."""
    if a.is_dir() or b.is_dir():
        if not (a.is_dir() and b.is_dir()):
            return f"{b.name}: folder against file"
        names_a, names_b = sorted(p.name for p in a.iterdir()), sorted(p.name for p in b.iterdir())
        if names_a != names_b:
            return f"{b.name}: files {sorted(set(names_a) ^ set(names_b))} differ"
        return next((d for n in names_a if (d := differs(a / n, b / n))), None)
    if a.suffix in (".h5", ".hdf5"):
        try:
            ca, cb = h5_content(a), h5_content(b)
        except OSError as exc:
            return f"{b.name}: cannot be read ({exc})"
        if ca.keys() != cb.keys():
            return f"{b.name}: datasets/attributes {sorted(set(ca) ^ set(cb))[:4]} differ"
        for key in ca:
            x, y = ca[key], cb[key]
            if (x is None) != (y is None):
                return f"{b.name}: {key} differs"
            if x is not None and (x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc")):
                return f"{b.name}: {key} differs"
        return None
    return None if a.read_bytes() == b.read_bytes() else f"{b.name}: bytes differ"


def tail(proc: subprocess.CompletedProcess) -> str:
    """Exit code and the last line of stderr, for a verdict."""
    lines = proc.stderr.strip().splitlines()
    return f"exit {proc.returncode}" + (f": {lines[-1][:160]}" if lines else "")


def partials(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.partial"))


# -- inputs ---------------------------------------------------------------------------------------
def _map(path: Path, nav: tuple[int, int], shape: tuple[int, int], seed: int) -> Path:
    """A map of uint16 patterns with smooth background, bands, noise and a static background."""
    from kikuchi.io.mapstore import MapWriter

    rows, cols = nav
    h, w = shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = 2000 + 1500 * np.exp(-((yy - h / 3) ** 2 + (xx - w / 2) ** 2) / (2 * (w / 2) ** 2))
    with MapWriter(path, nav_shape=nav, pattern_shape=shape, dtype=np.uint16) as wr:
        for r in range(rows):
            band = 400 * np.cos(0.3 * (xx[None] * np.cos(0.2 * r) + yy[None] * np.sin(0.15 * np.arange(cols)[:, None, None])))
            wr.write_rows(r, (bg + band + rng.normal(0, 60, (cols, h, w)))[None].clip(0, 65535).astype(np.uint16))
        wr.set_static_background(bg.astype(np.float32))
    return path


class Inputs:
    """The inputs of the sweep, made once in ``workdir/inputs``."""

    def __init__(self, workdir: Path):
        self.dir = workdir / "inputs"
        self.dir.mkdir(parents=True, exist_ok=True)
        # process: 24 x 16 points in chunks of 3 rows (8 chunks); outside signals: a map that takes about a second
        self.pmap = _map(self.dir / "pmap.h5", (24, 16), (48, 48), 1)
        self.slow = _map(self.dir / "slow.h5", (48, 40), (96, 96), 2)
        from kikuchi.simulate.synthetic import simulate

        self.sim = simulate(self.dir / "sim.h5", shape=(6, 8), pattern_shape=(48, 48), grains=3, noise="low", seed=4, progress=False)
        # convert: 10 x 10 images of 240 x 240 (6 HDF5 chunks), and the same as an .ebsp file
        import tifffile

        from kikuchi.io.ebsp import write_ebsp

        rng = np.random.default_rng(5)
        pats = rng.integers(0, 255, (10, 10, 240, 240), dtype=np.uint8)
        self.folder = self.dir / "images"
        self.folder.mkdir(exist_ok=True)
        for r in range(10):
            for c in range(10):
                tifffile.imwrite(self.folder / f"{r}_{c}.tiff", pats[r, c])
        self.ebsp = write_ebsp(self.dir / "patterns.ebsp", pats)


# -- the cases ------------------------------------------------------------------------------------
class ReferenceFailed(Exception):
    """The uninterrupted run to compare with failed: the case says so (it is not about interruptions)."""

    def __init__(self, proc: subprocess.CompletedProcess, message: str):
        super().__init__(message)
        self.proc = proc


def _case(cls: str, label: str, run: Any, **kwargs: Any) -> Case:
    def guarded() -> Any:
        try:
            return run()
        except ReferenceFailed as exc:
            return exc.proc, str(exc)

    return Case(cls, label, guarded, **kwargs)


class Sweep:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.inputs = Inputs(workdir)
        self.refs: dict[str, Path] = {}
        self.left = workdir / "left"  # copies of the .partial files interruptions left, for 'opening a partial output'
        self.left.mkdir(exist_ok=True)
        self.n = 0
        #: (key, label, signal) -> (folder, output) of an interrupted run of process, for the resume case after it
        self.interrupted_runs: dict[tuple[str, str, str], tuple[Path, Path]] = {}
        self.shown: set[tuple[str, str]] = set()  # (key, signal) whose partial `kikuchi info` is given (one each)

    def folder(self) -> Path:
        self.n += 1
        d = self.workdir / f"run{self.n:03d}"
        d.mkdir()
        return d

    def reference(self, key: str, output_name: str, args: list[Any]) -> Path:
        """The output of an uninterrupted run of ``kikuchi ARGS -o OUT`` (made once per key)."""
        if key not in self.refs:
            d = self.workdir / "ref" / key.replace(" ", "_")
            d.mkdir(parents=True, exist_ok=True)
            proc = cli(*args, "-o", d / output_name, cwd=d)
            if proc.returncode != 0:
                raise ReferenceFailed(proc, f"the uninterrupted run of {key} failed ({tail(proc)})")
            self.refs[key] = d / output_name
        return self.refs[key]

    def keep_partials(self, d: Path, key: str, signame: str) -> None:
        """Copy the .partial files or folders in ``d`` aside, for 'opening a partial output'."""
        for p in partials(d):
            target = self.left / f"{key}_{signame}_{self.n:03d}".replace(" ", "_").replace(".", "")
            target.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, target / p.name)

    def aftermath(self, d: Path, out: Path, ref: Path, *, resumable: bool, signame: str) -> str | None:
        """What is wrong with what an interrupted run left in ``d``, or None."""
        if out.exists():
            diff = differs(ref, out)
            if diff:
                return f"partial-output: {out.name} exists after {signame} and is not the complete result ({diff})"
        left = partials(d)
        if signame != "SIGKILL" and left and not resumable:
            return f"partial-output: {', '.join(p.name for p in left)} left after {signame} (nothing uses it)"
        return None

    def interrupted(self, key: str, out_name: str, args: list[Any], hook: tuple[str, int, str, str], *, resumable: bool) -> tuple[Path, Path, Any]:
        d = self.folder()
        out = d / out_name
        ref = self.reference(key, out_name, args)
        proc, answered = launch(d, hook, *args, "-o", out)
        return d, out, (ref, proc, answered)

    # -- case makers --------------------------------------------------------------------------
    def signal_case(
        self, cls: str, key: str, out_name: str, args: list[Any], hook: tuple[str, int, str, str], *,
        resumable: bool = False, fresh: bool = False, label: str,
    ) -> Case:
        """The command interrupted at ``hook``.

        SIGINT/SIGTERM: the interrupted run is judged (for ``process``, a
        resume case comes next, in what it left). SIGKILL: what it left is
        checked, then the same command runs again (``process``: with
        ``--resume``, or without it when ``fresh``) and that run is judged.
        """
        def run() -> Any:
            d, out, (ref, proc, answered) = self.interrupted(key, out_name, args, hook, resumable=resumable)
            signame = hook[2]
            if answered is None:
                return proc, f"not interrupted: {hook[0]} call {hook[1]} never came ({tail(proc)})"
            self.keep_partials(d, key, signame)
            verdict = self.aftermath(d, out, ref, resumable=resumable, signame=signame)
            if signame == "SIGKILL":
                if proc.returncode != -signal.SIGKILL:
                    return proc, verdict or f"not killed (exit {proc.returncode})"
                if verdict:
                    return proc, verdict
                resume = resumable and not fresh
                again = cli(*args, "-o", out, *(["--resume"] if resume else []), cwd=d)  # what a user does next
                if again.returncode != 0:
                    return again, f"{'--resume' if resume else 'the same command'} failed after SIGKILL ({tail(again)})"
                diff = differs(ref, out)
                if diff:
                    return again, f"{'resume-differs' if resume else 'silent-wrong'}: the run after SIGKILL differs from an uninterrupted one ({diff})"
                if partials(d):
                    return again, f"partial-output: {partials(d)[0].name} left after a complete run"
                return again
            if resumable:
                self.interrupted_runs[(key, label, signame)] = (d, out)
            expected = 128 + getattr(signal, signame)
            if proc.returncode == 0:
                return proc, verdict or f"interrupt ignored: the command ran to its end after {signame}"
            if proc.returncode != expected and "Traceback" not in proc.stderr:
                return proc, verdict or f"exit {proc.returncode} after {signame}, expected {expected}"
            if answered > ANSWER_S:
                return proc, verdict or f"slow interrupt: answered {answered:.1f} s after {signame}"
            return proc, verdict

        return _case(cls, f"{key}: {label}" + (" (then the same command, without --resume)" if fresh else ""), run, cli=True, timeout_s=200)

    def resume_after(self, key: str, args: list[Any], label: str, signame: str) -> Case:
        """process: --resume in what the interrupted run of the case before left."""
        def run() -> Any:
            state = self.interrupted_runs.pop((key, label, signame), None)
            if state is None:
                return "not interrupted: the interrupted run of this case failed (see the case before)"
            d, out = state
            ref = self.refs[key]
            final = cli(*args, "-o", out, "--resume", cwd=d)
            if final.returncode != 0:
                return final, f"--resume failed ({tail(final)})"
            diff = differs(ref, out)
            if diff:
                return final, f"resume-differs: {diff}"
            if partials(d):
                return final, f"partial-output: {partials(d)[0].name} left after the resumed run completed"
            return final

        return Case("resume after SIGINT/SIGKILL", f"{key}: {label}, {signame}, --resume", run, cli=True, timeout_s=200)

    def resume_case(self, key: str, args: list[Any], hooks: list[tuple[str, int, str, str]], *, label: str) -> Case:
        """process: interrupt at each of ``hooks`` in turn (each run after the first with --resume), then --resume to the end."""
        def run() -> Any:
            d = self.folder()
            out = d / "out.h5"
            ref = self.reference(key, "out.h5", args)
            for k, hook in enumerate(hooks):
                proc, answered = launch(d, hook, *args, "-o", out, *(["--resume"] if k else []))
                if answered is None:
                    return proc, f"not interrupted: {hook[0]} call {hook[1]} never came ({tail(proc)})"
                if proc.returncode == 0:
                    return proc, f"interrupt ignored: the run went to its end after {hook[2]}"
                if out.exists() and differs(ref, out):
                    return proc, f"partial-output: {out.name} exists after {hook[2]} and is not the complete result"
            final = cli(*args, "-o", out, "--resume", cwd=d)
            if final.returncode != 0:
                return final, f"--resume failed ({tail(final)})"
            diff = differs(ref, out)
            if diff:
                return final, f"resume-differs: {diff}"
            if partials(d):
                return final, f"partial-output: {partials(d)[0].name} left after the resumed run completed"
            return final

        return _case("resume after SIGINT/SIGKILL", f"{key}: {label}", run, cli=True, timeout_s=300)

    def outside_case(self, key: str, args: list[Any], signum: int, *, label: str) -> Case:
        """process: the signal sent from outside once the .partial output exists; then --resume."""
        cls = {signal.SIGINT: "SIGINT mid-run", signal.SIGTERM: "SIGTERM mid-run"}.get(signum, "SIGKILL mid-run")

        def run() -> Any:
            d = self.folder()
            out = d / "out.h5"
            ref = self.reference(key, "out.h5", args)
            proc, answered = signal_from_outside(d, out, signum, *args, "-o", out)
            if answered is None:
                return proc, "not interrupted: the run ended before the signal"
            self.keep_partials(d, key, signal.Signals(signum).name)
            verdict = self.aftermath(d, out, ref, resumable=True, signame=signal.Signals(signum).name)
            again = cli(*args, "-o", out, "--resume", cwd=d)
            diff = differs(ref, out) if again.returncode == 0 else None
            if signum == signal.SIGKILL:
                failed = None if again.returncode == 0 else f"--resume failed ({tail(again)})"
                return again, verdict or failed or (f"resume-differs: {diff}" if diff else None)
            if answered > ANSWER_S:
                verdict = verdict or f"slow interrupt: answered {answered:.1f} s after the signal"
            if diff:
                verdict = verdict or f"resume-differs: {diff}"
            if again.returncode != 0:
                verdict = verdict or f"--resume failed: {again.stderr.strip()[-200:]}"
            return proc, verdict

        return _case(cls, f"{key}: {label} (from outside)", run, cli=True, timeout_s=300)

    def opening_cases(self) -> Iterator[Case]:
        """The .partial files left by the interruptions, given to `kikuchi info` (one of each command and signal) and to kikuchi.open (all)."""
        import kikuchi

        shown: set[str] = set()
        for folder in sorted(self.left.iterdir()):
            kind = folder.name.rsplit("_", 1)[0]
            for p in sorted(folder.iterdir()):
                def info(p: Path = p) -> Any:
                    proc = cli("info", p, cwd=p.parent)
                    if proc.returncode == 0:
                        return proc, f"partial-output: kikuchi info describes {p.name} as a complete file"
                    return proc

                def api(p: Path = p) -> Any:
                    try:
                        m = kikuchi.open(p)
                    except (ValueError, OSError) as exc:
                        if "incomplete" not in str(exc):
                            return f"unclear refusal of {p.name}: {exc}"
                        raise
                    m.close()
                    return f"partial-output: kikuchi.open reads {p.name} as a map"

                if kind not in shown:
                    yield Case("opening a partial output", f"kikuchi info: {folder.name}/{p.name}", info, cli=True)
                yield Case("opening a partial output", f"kikuchi.open: {folder.name}/{p.name}", api)
            shown.add(kind)
        # a partial output of process renamed to a plain name: refused by its content
        src = next((p for folder in sorted(self.left.iterdir()) for p in folder.glob(".out.h5.partial")), None)
        if src is not None:
            renamed = self.workdir / "renamed" / "looks_complete.h5"
            renamed.parent.mkdir(exist_ok=True)
            shutil.copy2(src, renamed)

            def renamed_info() -> Any:
                proc = cli("info", renamed)
                return (proc, "partial-output: a renamed partial output is described as a map") if proc.returncode == 0 else proc

            def renamed_process() -> Any:
                proc = cli("process", renamed, "-o", renamed.with_name("again.h5"))
                return (proc, "partial-output: a renamed partial output is processed as a map") if proc.returncode == 0 else proc

            def renamed_api() -> Any:
                with kikuchi.open(renamed):
                    return "partial-output: kikuchi.open reads a renamed partial output as a map"

            yield Case("opening a partial output", "kikuchi info: a renamed .partial of process", renamed_info, cli=True)
            yield Case("opening a partial output", "kikuchi process: a renamed .partial of process", renamed_process, cli=True)
            yield Case("opening a partial output", "kikuchi.open: a renamed .partial of process", renamed_api)


def cases(workdir: Path) -> Iterator[Case]:
    sweep = Sweep(workdir)
    i = sweep.inputs
    both, sigint = ("SIGINT", "SIGKILL"), ("SIGINT",)
    base = ["process", i.pmap, "--preset", "detailed", "--chunk-rows", "3", "--no-progress"]
    proc_args = {
        "process serial": base,
        "process serial npa": [*base, "--npa", "1"],
        "process threads": [*base, "--threads", "2"],
        "process threads npa": [*base, "--threads", "2", "--npa", "1"],
    }
    points = {  # 8 chunks of 3 map rows: 8 blocks written; label: (function, call, before|after, signals)
        "early (first chunk)": (WRITE_BLOCK, 1, "before", both),
        "mid (4 of 8 chunks)": (WRITE_BLOCK, 4, "after", both),
        "inside an HDF5 write": (H5_WRITE, 100, "before", both),
        "a chunk on a worker": ("kikuchi.engine.process:process_chunk", 3, "after", both),
        "after the last chunk": (WRITE_BLOCK, 8, "after", both),
        "final metadata": (FINAL_METADATA, 2, "before", both),
        "as the file is finished": (FINISH, 1, "after", sigint),
        "at the rename": (RENAME, 1, "before", both),
    }
    chosen = {
        "process serial": [p for p in points if p != "a chunk on a worker"],
        "process serial npa": ["final metadata"],
        "process threads": ["a chunk on a worker"],
        "process threads npa": ["mid (4 of 8 chunks)", "a chunk on a worker"],
    }
    for key, args in proc_args.items():
        for label in chosen[key]:
            target, n, when, signals = points[label]
            for signame in signals:
                yield sweep.signal_case(f"{signame} mid-run", key, "out.h5", args, (target, n, signame, when), resumable=True, label=label)
                if signame != "SIGKILL":  # the SIGKILL case runs --resume itself
                    yield sweep.resume_after(key, args, label, signame)
    yield sweep.signal_case("SIGKILL mid-run", "process serial", "out.h5", base, (WRITE_BLOCK, 4, "SIGKILL", "after"), resumable=True, fresh=True, label="mid (4 of 8 chunks)")
    for n in (72, 84, 96, 99, 102, 110, 122, 134):  # HDF5's writes (~140 in all; the 8 chunks from the 70th): wherever the kill falls
        yield sweep.signal_case("SIGKILL mid-run", "process serial", "out.h5", base, (H5_WRITE, n, "SIGKILL", "before"), resumable=True, label=f"HDF5 write {n}")
    yield sweep.resume_case(
        "process serial npa", proc_args["process serial npa"], [(WRITE_BLOCK, 3, "SIGINT", "after"), (WRITE_BLOCK, 2, "SIGKILL", "after")],
        label="SIGINT, --resume, SIGKILL, --resume",
    )
    yield sweep.resume_case(
        "process threads npa", proc_args["process threads npa"], [(WRITE_BLOCK, 2, "SIGKILL", "after"), (FINAL_METADATA, 2, "SIGINT", "before")],
        label="SIGKILL, --resume, SIGINT at the final metadata, --resume",
    )
    yield sweep.signal_case("SIGTERM mid-run", "process serial", "out.h5", base, (WRITE_BLOCK, 4, "SIGTERM", "after"), resumable=True, label="mid (4 of 8 chunks)")
    yield sweep.resume_after("process serial", base, "mid (4 of 8 chunks)", "SIGTERM")
    slow = ["process", i.slow, "--preset", "detailed", "--chunk-rows", "2", "--no-progress"]
    yield sweep.outside_case("process slow", slow, signal.SIGINT, label="SIGINT")
    yield sweep.outside_case("process slow threads npa", [*slow, "--threads", "2", "--npa", "1"], signal.SIGKILL, label="SIGKILL")

    gallery = "kikuchi.figures.map_image:draw_map_image"
    others = {  # key: (output name, args, {label: (function, call, before|after, signals)})
        "convert images": ("conv.h5", ["convert", i.folder, "--workers", "1", "--step", "1", "--no-progress"], {
            "mid (2 of 6 chunks)": (MAP_WRITE, 2, "after", both), "at the rename": (RENAME, 1, "before", both)}),
        "convert .ebsp": ("conv.h5", ["convert", i.ebsp, "--workers", "1", "--no-progress"], {
            "mid (2 of 6 chunks)": (MAP_WRITE, 2, "after", both), "inside an HDF5 write": (H5_WRITE, 6, "before", sigint)}),
        "convert .ebsp to h5ebsd": ("conv.h5", ["convert", i.ebsp, "--format", "h5ebsd", "--workers", "1", "--no-progress"], {
            "inside an HDF5 write": (H5_WRITE, 6, "before", both), "at the rename": (RENAME, 1, "before", sigint)}),
        "index": ("om.ctf", ["index", i.sim, "--phase", "ni", "--no-progress"], {
            "a chunk": (CHUNK, 1, "after", both), "at the rename": (RENAME, 1, "before", sigint)}),
        "index h5": ("om.h5", ["index", i.sim, "--phase", "ni", "--no-progress"], {"inside an HDF5 write": (H5_WRITE, 3, "before", sigint)}),
        "vbse": ("vb", ["vbse", i.sim, "--quiet"], {
            "a chunk": (CHUNK, 1, "after", sigint), "writing the gallery": (gallery, 3, "after", both), "at the rename": (RENAME, 1, "before", sigint)}),
        "quality": ("q", ["quality", i.sim, "--quiet"], {"a chunk": (CHUNK, 1, "after", both), "writing the gallery": (gallery, 2, "after", sigint)}),
        "simulate": ("sim.h5", ["simulate", "--shape", "6x8", "--pattern-shape", "48x48", "--grains", "3", "--no-progress"], {
            "writing patterns": (MAP_WRITE, 1, "after", both), "inside an HDF5 write": (H5_WRITE, 4, "before", sigint)}),
        "simulate --ctf": ("sim.h5", ["simulate", "--shape", "6x8", "--pattern-shape", "48x48", "--grains", "3", "--ctf", "truth.ctf", "--no-progress"], {
            "writing the truth": (RENAME, 2, "before", both)}),
    }
    for key, (out_name, args, pts) in others.items():
        for label, (target, n, when, signals) in pts.items():
            for signame in signals:
                yield sweep.signal_case(f"{signame} mid-run", key, out_name, args, (target, n, signame, when), label=label)
    yield sweep.signal_case("SIGTERM mid-run", "convert images", "conv.h5", others["convert images"][1], (MAP_WRITE, 2, "SIGTERM", "after"), label="mid (2 of 6 chunks)")
    yield sweep.signal_case("SIGTERM mid-run", "vbse", "vb", others["vbse"][1], (CHUNK, 1, "SIGTERM", "after"), label="a chunk")
    yield from sweep.opening_cases()


if __name__ == "__main__":  # pragma: no cover - a quick look: python benchmarks/hostile_cases/interrupts.py
    import tempfile

    from benchmarks.hostile_cases._case import judge

    with tempfile.TemporaryDirectory() as tmp:
        for case in cases(Path(tmp)):
            t0 = time.perf_counter()
            r = judge(case)
            print(json.dumps({"class": r.cls, "label": r.label, "outcome": r.outcome, "detail": r.detail, "s": round(time.perf_counter() - t0, 1)}), flush=True)
