"""Compile kikuchi's numba kernels once, on all cores, so that first runs do not wait for it.

``python -m kikuchi._warmup`` (run by ``make`` after installing) runs the
commands of ``kikuchi demo`` on tiny maps, in a few processes at once, each
compiling a part of the kernels. The compiled kernels land in numba's cache
(``__pycache__`` beside the sources, or ``NUMBA_CACHE_DIR``), where every
later run finds them: the commands are the ones users run, so the kernels are
compiled for the types those commands pass. Where the cache cannot be written
(a read-only installation), each run compiles what it needs, as without this.

Prints one line: the groups, their time and the wall time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kikuchi._cpus import available_cpus


def _kikuchi(*argv: object) -> None:
    from kikuchi.cli.main import main

    code = main([str(a) for a in argv])
    if code != 0:
        raise RuntimeError(f"kikuchi {' '.join(map(str, argv))} ended with exit code {code}")


def _random_map(path: Path, dtype: str) -> Path:
    """A 6 x 7 map of 32 x 32 patterns with a static background: what the kernels need to be typed."""
    from kikuchi.io.mapstore import MapWriter

    rng = np.random.default_rng(0)
    top = 255 if dtype == "uint8" else 4095
    with MapWriter(path, nav_shape=(6, 7), pattern_shape=(32, 32), dtype=dtype, step_um=(0.5, 0.5)) as w:
        w.write(0, rng.integers(1, top, (42, 32, 32)).astype(dtype))
        w.set_static_background(np.full((32, 32), top / 2, dtype=np.float32))
    return path


def _simulate(work: Path) -> None:
    """simulate (kinematical master pattern, projection, detector model) and the map figures."""
    sim = work / "sim.h5"
    _kikuchi("simulate", "-o", sim, "--phase", "ni", "--shape", "3x4", "--pattern-shape", "40x40", "--grains", "2", "--noise", "low", "--ctf", work / "sim.ctf", "--no-progress")
    _kikuchi("plot", work / "sim.ctf", "--map", "ipf-z", "-o", work / "ipf.png")


def _index(work: Path) -> None:
    """index (background removal, band detection, triplet voting, refinement) of a 16-bit map."""
    m = _random_map(work / "x.h5", "uint16")
    _kikuchi("index", m, "--phase", "ni", "--pc", "0.5,0.3,0.6", "-o", work / "x.ctf", "--no-progress")


def _refine(work: Path) -> None:
    """refine (NCC of patterns projected on the fly, Nelder-Mead per pattern) of an indexed simulated map; dictionary indexing of it."""
    sim = work / "r.h5"
    _kikuchi("simulate", "-o", sim, "--phase", "ni", "--shape", "2x2", "--pattern-shape", "32x32", "--grains", "1", "--noise", "low", "--no-progress")
    _kikuchi("index", sim, "--phase", "ni", "-o", work / "r.ctf", "--no-progress")
    _kikuchi("refine", sim, "--orientations", work / "r.ctf", "--master-pattern", "kinematical:ni", "--refine", "both", "-o", work / "rr.ctf", "--no-progress")
    # dictionary indexing's kernels (normalisation, running top-k, candidate re-scoring): about 1 s of compilation
    _kikuchi("index", sim, "--phase", "ni", "--method", "dictionary", "--master-pattern", "kinematical", "--resolution", "10", "--compressed", "-o", work / "d.h5", "--no-progress")


def _process(work: Path) -> None:
    """process (background, contrast, averaging, NLPAR) of 16- and 8-bit maps, as the defaults and the indexing preset do."""
    for dtype in ("uint16", "uint8"):
        m = _random_map(work / f"p_{dtype}.h5", dtype)
        _kikuchi("process", m, "-o", work / f"p_{dtype}_default.h5", "--no-progress")
        _kikuchi("process", m, "-o", work / f"p_{dtype}_indexing.h5", "--preset", "indexing", "--binning", "1", "--no-progress")
    # NLPAR works on the float32 patterns of step 4, whatever the input type: once is enough
    _kikuchi("process", m, "-o", work / "p_nlpar.h5", "--nlpar", "--nlpar-mask", "circle", "--no-progress")


def _imaging(work: Path) -> None:
    """vbse, quality, bands and the conversion of image folders (TIFF, PNG)."""
    import tifffile

    m = _random_map(work / "i.h5", "uint16")
    _kikuchi("vbse", m, "-o", work / "vbse", "--quiet")
    _kikuchi("quality", m, "-o", work / "quality", "--quiet")
    _kikuchi("bands", m, "--at", "1,1", "-o", work / "bands.png")
    folder = work / "images"
    folder.mkdir()
    for r in range(2):
        for c in range(3):
            tifffile.imwrite(folder / f"{r}_{c}.tiff", np.full((32, 32), 100 * r + c, np.uint16))
    _kikuchi("convert", folder, "-o", work / "converted.h5")
    from PIL import Image  # PNGs are unfiltered by a kernel

    pngs = work / "pngs"
    pngs.mkdir()
    for c in range(2):
        Image.fromarray(np.full((32, 32), 10 + c, np.uint8)).save(pngs / f"0_{c}.png")
    _kikuchi("convert", pngs, "-o", work / "converted_png.h5")


#: Longest first: on few cores the last group to start should be a short one.
GROUPS: dict[str, Callable[[Path], None]] = {"index": _index, "simulate": _simulate, "process": _process, "imaging": _imaging, "refine": _refine}


def _run_group(name: str) -> None:
    import contextlib
    import io

    with tempfile.TemporaryDirectory(prefix=f"kikuchi-warmup-{name}-") as tmp, contextlib.redirect_stdout(io.StringIO()):
        GROUPS[name](Path(tmp))


def warm_up(*, processes: int | None = None) -> dict[str, float]:
    """Run every group in its own process, ``processes`` at once (default: the cores); seconds per group."""
    processes = max(1, processes or available_cpus())
    todo = list(GROUPS)
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    seconds: dict[str, float] = {}
    failed: list[str] = []
    while todo or running:
        while todo and len(running) < processes:
            name = todo.pop(0)
            cmd = [sys.executable, "-m", "kikuchi._warmup", "--group", name]
            running[name] = (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True), time.perf_counter())
        for name, (proc, t0) in list(running.items()):
            if proc.poll() is not None:
                err = proc.stderr.read() if proc.stderr else ""
                if proc.returncode != 0:
                    failed.append(f"{name} (exit {proc.returncode}): {err.strip().splitlines()[-1] if err.strip() else 'no message'}")
                seconds[name] = time.perf_counter() - t0
                del running[name]
        time.sleep(0.05)
    if failed:
        raise RuntimeError("compiling the kernels failed in " + "; ".join(failed))
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kikuchi._warmup", description=__doc__.splitlines()[0])
    parser.add_argument("--group", choices=sorted(GROUPS), help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, help="processes at once (default: all cores)")
    args = parser.parse_args(argv)
    if args.group:
        _run_group(args.group)
        return 0
    t0 = time.perf_counter()
    try:
        seconds = warm_up(processes=args.processes)
    except RuntimeError as exc:
        # never a reason to fail an installation: the kernels then compile on first use
        print(f"kikuchi: kernels not compiled ahead ({exc}); they compile on first use", file=sys.stderr)
        return 0
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items())
    print(f"kikuchi: numba kernels compiled and cached in {time.perf_counter() - t0:.0f} s ({parts}; {min(len(GROUPS), args.processes or available_cpus())} at once)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
