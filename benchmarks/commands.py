"""Every ``kikuchi`` command as a user runs it, against the peer's workflow and the command's floor.

Run by hand (kikuchipy and PyEBSDIndex are the optional ``bench`` extra). At
the full sizes it takes about an hour on 2 cores, most of it in the peers
(PyEBSDIndex indexes about 160 patterns/s here, kikuchipy's virtual BSE
imager about 15 patterns/s of 240 x 240); the first run also makes the
inputs (a few minutes) and compiles the peers' numba kernels (minutes)::

    .venv/bin/python benchmarks/commands.py                          # 100,000 x 60x60 uint8 and 10,000 x 240x240 uint16
    .venv/bin/python benchmarks/commands.py --n60 5000 --n240 500    # a quick check
    .venv/bin/python benchmarks/commands.py --only process,index --markdown
    .venv/bin/python benchmarks/commands.py --startup                # start-up and first calls only
    .venv/bin/python benchmarks/commands.py --n240 0                 # the 60x60 map only

Inputs, made once and cached under ``benchmarks/_data/commands/`` (git-ignored):

* two map files: ``--n60`` patterns of 60 x 60 uint8 and ``--n240`` patterns
  of 240 x 240 uint16 (near-square maps: 100,000 is 250 x 400, 10,000 is
  100 x 100), of realistic content (read.py's: a real raw pattern over its
  map's mean, shifted, with shot noise, see ``_patterns.py``) and the
  detector's static background; the same patterns as kikuchipy h5ebsd
  (``kikuchi convert --format h5ebsd``: the same chunks and gzip; its float32
  static background is rounded to the patterns' dtype in the kikuchipy
  process, which refuses any other), as a folder of AZtec ``row_col.tiff``
  images and as an Oxford H5OINA (LZF, read.py's writer and file);
* simulated Ni maps of known truth of the same sizes (``kikuchi simulate``,
  medium noise, 8 and 16 bit) with their truth CTF: the input of ``index``
  (so that accuracy is measured; for PyEBSDIndex the same patterns as EDAX
  UP1/UP2) and, as a CTF, of ``simulate --from-map``.

Rows (each command with its default options, a file in and a file out)::

    process                 kikuchi process MAP.h5 -o OUT.h5
    process (options)       ... --static divide --sigma 2.4 --npa 1 --dtype uint8
      peer: kikuchipy kp.load(lazy=True), downsample (when kikuchi bins),
      remove_static_background('divide'), remove_dynamic_background('divide',
      std = kikuchi's sigma, truncate=3: the same 3-sigma Gaussian window),
      average_neighbour_patterns (3 x 3 with --npa 1), rescale_intensity to
      uint8 between kikuchi's percentiles, save; and, on a second row, the same
      processing of the patterns already in memory (load and numba
      compilation not timed): the in-memory ratio
    vbse                    kikuchi vbse MAP.h5 -o DIR --grid 7x7
      peer: VirtualBSEImager(kp.load(lazy=True)) with grid_shape (7, 7),
      get_images_from_grid(), saved (.hspy)
    quality                 kikuchi quality MAP.h5 -o DIR (floor only)
    simulate                kikuchi simulate --from-map SIM.ctf --master-pattern MP.h5 -o OUT.h5
      peer: orix.io.load(ctf), EBSDMasterPattern.get_patterns of its
      rotations on the same detector (kikuchi's PC, tilts and kV), saved
    index                   kikuchi index SIM.h5 -o OUT.ctf --phase ni
      peer: PyEBSDIndex EBSDIndexer(filename=the same patterns as EDAX
      UP1/UP2, its home format (it cannot read kikuchipy 0.13 h5ebsd), same
      PC and tilts, vendor 'KIKUCHIPY').index_pats(), written with
      ebsdfile.writeang; both scored against the truth (within 2 degrees)
    convert (images)        kikuchi convert IMAGE_FOLDER -o OUT.h5
      peer: the seed's loop (_seed.py: PIL, one gzip-9 chunk per pattern),
      timed on the first ``--seed-n`` images and scaled to the map
    convert (h5oina)        kikuchi convert MAP.h5oina -o OUT.h5
      peer (no target): kikuchipy kp.load(lazy=True).save()

Every contender runs in a fresh subprocess, timed by the wall clock from its
start to its exit (interpreter start-up and imports count alike), its input
files read once before (page cache), best of ``--repeat``, after an untimed
warm-up of every contender on 100-pattern maps (numba caches filled;
``--no-warmup`` skips it). The peer's in-memory row and the seed's scaled
loop are the exceptions said above.

The floor of a command is its I/O: reading and decoding the same input bytes
(HDF5 chunks read with ``os.pread`` and inflated on all cores; LZF through
h5py; a TIFF's bytes read and its pixels taken at the offset tifffile finds
in the first file, on all cores; other files as bytes) and writing
kikuchi's own output again: the same datasets with the same shape, dtype,
chunks and filters, chunks compressed on all cores (ISA-L when the package
``isal`` is installed, as kikuchi does) and written whole, other files as
their bytes. kikuchi's output is loaded before the clock starts (that time
is taken off). For commands whose work is computation (index, simulate), the
floor is far below what any implementation can reach: the ratio says how
much of the run is work other than I/O.

Targets (issue 11): process >= 10x kikuchipy's load..save and >= 5x its
in-memory processing; vbse and simulate >= 5x kikuchipy end to end; index
>= 5x PyEBSDIndex at equal accuracy (its fraction within 2 degrees of the
truth at most 1 percentage point below PyEBSDIndex's); convert >= 20x the seed loop; every command <= 1.5x its floor.

``--startup`` adds (or, alone, prints only) the wall time of ``kikuchi
--help`` and ``import kikuchi``, and of each command's first call on a
100-pattern map in a fresh environment (``NUMBA_CACHE_DIR`` an empty
folder: numba compiles everything) against the second call in it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / "_data" / "commands"
WORK = DATA / "work"
KIKUCHI = Path(sys.executable).with_name("kikuchi")
MASTER = ROOT.parent / "shared" / "data" / "kikuchipy" / "ni_mc_mp_20kv_uint8_gzip_opts9.h5"
MAPS = {"60": ((60, 60), "uint8"), "240": ((240, 240), "uint16")}
COMMANDS = ("process", "vbse", "quality", "simulate", "index", "convert", "convert-vendor")
PROCESS_OPTIONS = ["--static", "divide", "--sigma", "2.4", "--npa", "1", "--dtype", "uint8"]
TINY = 100  # patterns of the warm-up and start-up maps


# -- inputs ----------------------------------------------------------------------------------
def nav_shape_of(n: int) -> tuple[int, int]:
    """The most square map of exactly ``n`` points, at least as wide as high (100,000 -> 250 x 400)."""
    cols = math.isqrt(n - 1) + 1 if n > 1 else 1
    while n % cols:
        cols += 1
    return n // cols, cols


def map_label(key: str, n: int) -> str:
    (h, w), dtype = MAPS[key]
    return f"{n:,} x {h}x{w} {dtype}"


_CONTENT: dict[tuple[str, int], np.ndarray] = {}


def content(key: str, n: int) -> np.ndarray:
    """(rows, cols, h, w) patterns: read.py's pool of realistic patterns drawn over the map (the same for the same size)."""
    if (key, n) not in _CONTENT:
        sys.path.insert(0, str(BENCH))
        from read import _patterns

        shape, dtype = MAPS[key]
        _CONTENT.clear()  # one map's patterns at a time (1.2 GB for 10,000 of 240 x 240 uint16)
        _CONTENT[key, n] = _patterns(nav_shape_of(n), shape, dtype)
    return _CONTENT[key, n]


def pattern_map(key: str, n: int) -> Path:
    """The map file of ``n`` patterns, with the detector's static background."""
    rows, cols = nav_shape_of(n)
    path = DATA / f"map_{key}_{rows}x{cols}.h5"
    if path.exists():
        return path
    sys.path.insert(0, str(BENCH))
    from _patterns import PatternMaker

    from kikuchi.io.mapstore import MapWriter

    shape, dtype = MAPS[key]
    patterns = content(key, n)
    # PatternMaker's mean counts: 100 per pixel (uint8), 1000 x 8 (uint16), times its background (mean 1)
    background = PatternMaker(shape, dtype).background * (8000.0 if dtype == "uint16" else 100.0)
    DATA.mkdir(parents=True, exist_ok=True)
    per_block = max(1, (64 << 20) // patterns[0].nbytes)
    with MapWriter(path, nav_shape=(rows, cols), pattern_shape=shape, dtype=dtype, step_um=(1.5, 1.5)) as w:
        for r in range(0, rows, per_block):
            w.write_rows(r, patterns[r : r + per_block])
        w.set_static_background(background.astype(np.float32))
    return path


def _kikuchi_made(path: Path, args: list) -> Path:
    """Run a kikuchi command that writes ``path`` (under a temporary name, renamed when it succeeded)."""
    tmp = path.with_name("tmp_" + path.name)
    subprocess.run([str(KIKUCHI), *map(str, args), "-o", str(tmp)], check=True, capture_output=True, text=True)
    os.replace(tmp, path)
    return path


def kikuchipy_copy(path: Path) -> Path:
    """The same patterns as kikuchipy h5ebsd (what kikuchipy and PyEBSDIndex read)."""
    out = path.with_name(path.stem + "_kikuchipy.h5")
    return out if out.exists() else _kikuchi_made(out, ["convert", path, "--format", "h5ebsd", "--no-progress"])


def edax_copy(path: Path) -> Path:
    """The same patterns as an EDAX UP1/UP2 file (read.py's writer), what PyEBSDIndex reads.

    PyEBSDIndex 0.3 cannot read kikuchipy 0.13 h5ebsd files (it compares the
    version strings: '0.13.1' < '0.3.dev0', so it never reads their header).
    """
    import kikuchi

    with kikuchi.open(path) as m:
        dtype = m.dtype
    out = path.with_suffix(".up2" if dtype == np.uint16 else ".up1")
    if not out.exists():
        sys.path.insert(0, str(BENCH))
        from read import write

        with kikuchi.open(path) as m:
            write("up", out, m.read_all())
    return out


def simulated_map(key: str, n: int) -> tuple[Path, Path]:
    """A simulated Ni map of known truth and its truth CTF."""
    rows, cols = nav_shape_of(n)
    (h, w), dtype = MAPS[key]
    path = DATA / f"sim_{key}_{rows}x{cols}.h5"
    ctf = path.with_suffix(".ctf")
    if not (path.exists() and ctf.exists()):
        DATA.mkdir(parents=True, exist_ok=True)
        ctf.unlink(missing_ok=True)
        tmp_ctf = ctf.with_name("tmp_" + ctf.name)
        extra = ["--bit-depth", "16"] if dtype == "uint16" else []
        _kikuchi_made(path, ["simulate", "--shape", f"{rows}x{cols}", "--pattern-shape", f"{h}x{w}", "--grains", max(25, n // 100),
                             "--seed", 7, "--ctf", tmp_ctf, "--no-progress", *extra])  # fmt: skip
        os.replace(tmp_ctf, ctf)
    return path, ctf


def image_folder(key: str, n: int) -> Path:
    """The map's patterns as AZtec images, ``row_col.tiff``."""
    import tifffile

    rows, cols = nav_shape_of(n)
    folder = DATA / f"images_{key}_{rows}x{cols}"
    done = folder / ".complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    patterns = content(key, n)

    def write_row(r: int) -> None:
        for c in range(cols):
            tifffile.imwrite(folder / f"{r}_{c}.tiff", patterns[r, c])

    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        list(pool.map(write_row, range(rows)))
    done.touch()
    return folder


def vendor_file(key: str, n: int) -> Path:
    """The map's patterns as an Oxford H5OINA (read.py's file when it has made one of this size)."""
    sys.path.insert(0, str(BENCH))
    from read import file_name, write

    rows, cols = nav_shape_of(n)
    label = {"60": "60x60 uint8", "240": "240x240 uint16"}[key]
    shared = file_name("h5oina", label, (rows, cols))
    if shared.exists():
        return shared
    path = DATA / f"h5oina_{key}_{rows}x{cols}.h5oina"
    if not path.exists():
        write("h5oina", path, content(key, n))
    return path


# -- running and timing ------------------------------------------------------------------------
def _warm(path: Path) -> None:
    """Read a file (or every file of a folder) once, so that the contender reads from the page cache."""
    paths = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for p in paths:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def _remove(*paths: Path) -> None:
    for p in paths:
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def kikuchi_cmd(*args: object) -> list[str]:
    return [str(KIKUCHI), *map(str, args)]


def child(kind: str, **kwargs: object) -> list[str]:
    """The command line of a contender run by this script in a fresh interpreter."""
    return [sys.executable, str(Path(__file__).resolve()), "--child", kind, json.dumps(kwargs, default=str)]


@dataclass
class Run:
    seconds: float | None = None
    error: str = ""
    stdout: str = ""
    info: dict = field(default_factory=dict)


def timed(cmd: list[str], *, warm: tuple[Path, ...] = (), clean: tuple[Path, ...] = (), repeat: int = 1, env: dict | None = None) -> Run:
    """Best of ``repeat`` runs of ``cmd`` in a subprocess (its outputs ``clean`` removed before each).

    A child of this script may print a JSON line last: ``excluded_s`` (time
    taken off the wall time: loading a reference), ``inner_s`` (the time to
    report instead of the wall time), ``scale_s`` (time added: a part-timed
    loop scaled to the whole map).
    """
    best = Run()
    for _ in range(repeat):
        _remove(*clean)
        for p in warm:
            _warm(p)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            lines = (proc.stderr.strip() or proc.stdout.strip() or f"exit code {proc.returncode}").splitlines()
            return Run(error=" | ".join(line.strip() for line in lines[-2:])[:400], stdout=proc.stdout + proc.stderr)
        info: dict = {}
        last = proc.stdout.strip().splitlines()[-1:] if proc.stdout.strip() else []
        if cmd[1:3] == [str(Path(__file__).resolve()), "--child"] and last:
            info = json.loads(last[0])
        seconds = info["inner_s"] if "inner_s" in info else wall - info.get("excluded_s", 0.0) + info.get("scale_s", 0.0)
        if best.seconds is None or seconds < best.seconds:
            best = Run(seconds=seconds, stdout=proc.stdout, info=info)
    return best


# -- the table -------------------------------------------------------------------------------
@dataclass
class Row:
    command: str
    label: str
    n: int
    ours: Run
    peer_name: str = ""
    peer: Run | None = None
    floor: Run | None = None
    #: (what, threshold): the peer at least `threshold` x slower; 'floor': at most `threshold` x the floor
    targets: list[tuple[str, float]] = field(default_factory=list)
    extra_ok: bool | None = None  # a further condition of the peer target (index: equal accuracy)
    notes: list[str] = field(default_factory=list)

    def ratio_peer(self) -> float | None:
        if self.peer is None or self.peer.seconds is None or self.ours.seconds is None:
            return None
        return self.peer.seconds / self.ours.seconds

    def ratio_floor(self) -> float | None:
        if self.floor is None or self.floor.seconds is None or self.ours.seconds is None:
            return None
        return self.ours.seconds / self.floor.seconds

    def verdicts(self) -> str:
        out = []
        for what, threshold in self.targets:
            if what == "floor":
                r = self.ratio_floor()
                ok = r is not None and r <= threshold
                out.append(f"floor <= {threshold:g}x {'PASS' if ok else 'FAIL'}")
            else:
                r = self.ratio_peer()
                ok = r is not None and r >= threshold and self.extra_ok is not False
                out.append(f"{what} >= {threshold:g}x {'PASS' if ok else 'FAIL'}")
        return "; ".join(out)


def _s(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table(rows: list[Row], markdown: bool) -> str:
    head = ["command", "map", "kikuchi s", "patterns/s", "peer", "peer s", "peer/kikuchi", "floor s", "kikuchi/floor", "targets"]
    body = []
    for r in rows:
        rate = None if r.ours.seconds is None else r.n / r.ours.seconds
        body.append([
            r.command, r.label, _s(r.ours.seconds) if not r.ours.error else "error", "-" if rate is None else f"{rate:,.0f}",
            r.peer_name or "-", "-" if r.peer is None else ("error" if r.peer.error else _s(r.peer.seconds)), _s(r.ratio_peer(), 1),
            "-" if r.floor is None else ("error" if r.floor.error else _s(r.floor.seconds)), _s(r.ratio_floor()), r.verdicts(),
        ])  # fmt: skip
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i in (0, 1, 4, 9) else "---:" for i in range(len(head))) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(x[i]) for x in [head, *body]) for i in range(len(head))]
    right = {2, 3, 5, 6, 7, 8}
    fmt = lambda cells: "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([fmt(head), "-" * (sum(widths) + 2 * (len(widths) - 1)), *map(fmt, body)])


LEGEND = f"""
(options): --static divide --sigma 2.4 --npa 1 --dtype uint8. Command lines: kikuchi process MAP.h5 -o OUT.h5 [(options)];
kikuchi vbse MAP.h5 -o DIR --grid 7x7; kikuchi quality MAP.h5 -o DIR; kikuchi simulate --from-map SIM.ctf --master-pattern
{MASTER.name} -o OUT.h5 [--pattern-shape 240x240]; kikuchi index SIM.h5 -o OUT.ctf --phase ni; kikuchi convert FOLDER -o OUT.h5;
kikuchi convert MAP.h5oina -o OUT.h5. Seconds: wall time of a fresh process, start-up included (the in-memory row: kikuchipy's
processing alone); floor: read + decode the input, compress + write kikuchi's output, on all cores.""".strip()


# -- the rows of one map ---------------------------------------------------------------------
def _floor(inputs: list[dict], refs: list[Path], warm: tuple[Path, ...], repeat: int) -> Run:
    out = WORK / "floor"
    run = timed(child("floor", inputs=inputs, refs=[str(p) for p in refs], out=str(out)), warm=warm, clean=(out,), repeat=repeat)
    _remove(out)
    return run


def _pattern_input(path: Path, dataset: str | None = None) -> dict:
    return {"kind": "h5", "path": str(path), "dataset": dataset}


def _row(name: str, label: str, n: int, cmd: list[str], *, out: Path, warm: tuple[Path, ...], floor_inputs: list[dict], repeat: int,
         targets: list[tuple[str, float]], peer_name: str = "", peer: Callable[[], list[str]] | None = None,
         peer_out: Path | None = None, peer_warm: tuple[Path, ...] = (), after: Callable[[Row], None] | None = None) -> Row:  # fmt: skip
    """Time a kikuchi command writing ``out``; when it succeeded, the peer (``peer()`` makes its command
    line, with what it needs from kikuchi's output), ``after`` (checks of both outputs), then the floor."""
    ours = timed(cmd, warm=warm, clean=(out,), repeat=repeat)
    row = Row(name, label, n, ours, peer_name, targets=targets)
    if not ours.error:
        lines = ours.stdout.strip().splitlines()
        row.notes += [f"kikuchi: {lines[0]}"] if lines else []
        if peer is not None:
            row.peer = timed(peer(), warm=peer_warm, clean=(peer_out,) if peer_out else (), repeat=repeat)
        if after is not None:
            after(row)
        row.floor = _floor(floor_inputs, [out], warm, repeat)
    _remove(out, *((peer_out,) if peer_out else ()))
    return row


def measure(key: str, n: int, only: set[str], repeat: int, seed_n: int) -> list[Row]:
    """Every selected row on the ``key`` map of ``n`` patterns."""
    import kikuchi

    label = map_label(key, n)
    (h, w), _ = MAPS[key]
    WORK.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(BENCH))
    result: list[Row] = []
    raw_patterns = "Scan/EBSD/Data/RawPatterns"

    if "process" in only:
        from process import MATCHED_TRUNCATE

        src, out, kp_out = pattern_map(key, n), WORK / "process.h5", WORK / "kikuchipy_process.h5"
        kp_src = kikuchipy_copy(src)
        for name, options in (("process", []), ("process (options)", PROCESS_OPTIONS)):
            chain: dict = {}

            def kikuchipy_process() -> list[str]:
                with kikuchi.open(out) as o:  # the parameters kikuchi used
                    p = o.processing
                    chain.update(factor=int(p["binning_factor"]), sigma=float(p["sigma_px"]), truncate=MATCHED_TRUNCATE, npa=int(p["npa"]),
                                 clow=float(p["clow"]), chigh=float(p["chigh"]), dtype=str(o.dtype))  # fmt: skip
                return child("kp_process", src=str(kp_src), out=str(kp_out), **chain)

            row = _row(name, label, n, kikuchi_cmd("process", src, "-o", out, *options), out=out, warm=(src,),
                       floor_inputs=[_pattern_input(src, raw_patterns)], repeat=repeat, targets=[("kikuchipy", 10.0), ("floor", 1.5)],
                       peer_name="kikuchipy load..save", peer=kikuchipy_process, peer_out=kp_out, peer_warm=(kp_src,))  # fmt: skip
            mem = Row(name, label, n, row.ours, "kikuchipy in memory", targets=[("kikuchipy", 5.0)])
            if chain:
                mem.peer = timed(child("kp_process", src=str(kp_src), out="", in_memory=True, **chain), repeat=repeat)
            result += [row, mem]

    for cmd in ("vbse", "quality"):
        if cmd in only:
            src, out, kp_out = pattern_map(key, n), WORK / cmd, WORK / f"kikuchipy_{cmd}"
            kp_src = kikuchipy_copy(src) if cmd == "vbse" else None
            result.append(_row(
                cmd, label, n, kikuchi_cmd(cmd, src, "-o", out, *(["--grid", "7x7"] if cmd == "vbse" else [])), out=out, warm=(src,),
                floor_inputs=[_pattern_input(src, raw_patterns)], repeat=repeat,
                targets=[("kikuchipy", 5.0), ("floor", 1.5)] if kp_src else [("floor", 1.5)],
                peer_name="kikuchipy VirtualBSEImager" if kp_src else "",
                peer=(lambda: child("kp_vbse", src=str(kp_src), out=str(kp_out), grid=[7, 7])) if kp_src else None,
                peer_out=kp_out, peer_warm=(kp_src,) if kp_src else (),
            ))  # fmt: skip

    if "simulate" in only:
        _, ctf = simulated_map(key, n)
        out, kp_out = WORK / "simulate.h5", WORK / "kikuchipy_simulate.h5"
        shape = [] if (h, w) == (60, 60) else ["--pattern-shape", f"{h}x{w}"]

        def kikuchipy_simulate() -> list[str]:
            with kikuchi.open(out) as o:  # the geometry kikuchi used
                geometry = dict(shape=[h, w], pc=[float(v) for v in o.detector.pc_mean], sample_tilt=o.sample_tilt_deg,
                                camera_tilt=o.camera_tilt_deg, kv=o.kv, dtype=str(o.dtype))  # fmt: skip
            return child("kp_simulate", ctf=str(ctf), master=str(MASTER), out=str(kp_out), **geometry)

        result.append(_row(
            "simulate", label, n, kikuchi_cmd("simulate", "--from-map", ctf, "--master-pattern", MASTER, "-o", out, *shape), out=out,
            warm=(ctf, MASTER), floor_inputs=[{"kind": "bytes", "path": str(ctf)}, {"kind": "bytes", "path": str(MASTER)}], repeat=repeat,
            targets=[("kikuchipy", 5.0), ("floor", 1.5)], peer_name="kikuchipy get_patterns+save", peer=kikuchipy_simulate,
            peer_out=kp_out, peer_warm=(ctf, MASTER),
        ))  # fmt: skip

    if "index" in only:
        from index import _accuracy
        from orix.quaternion import Rotation

        from kikuchi.io.orientation_map import read_orientation_map

        sim, _ = simulated_map(key, n)
        up = edax_copy(sim)
        out, kp_out = WORK / "index.ctf", WORK / "pyebsdindex.ang"
        with kikuchi.open(sim) as m:
            truth = m.euler.reshape(-1, 3)
            geometry = dict(pc=[float(v) for v in m.detector.pc_mean], sample_tilt=m.sample_tilt_deg, camera_tilt=m.camera_tilt_deg)

        def accuracy(row: Row) -> None:
            found = Path(str(kp_out) + ".npy")
            if row.peer is None or row.peer.error:
                return
            omap = read_orientation_map(out)
            ours = _accuracy(omap.euler, truth, omap.phase_id > 0)
            theirs = np.load(found)
            peer = _accuracy(Rotation(theirs["quat"]).to_euler(), truth, theirs["phase"] >= 0)
            found.unlink()
            row.extra_ok = ours["within_2"] >= peer["within_2"] - 0.01
            row.notes.append(
                f"accuracy within 2 deg (1 deg; indexed): kikuchi {ours['within_2']:.4f} ({ours['within_1']:.4f}; {ours['indexed']:.4f}), "
                f"PyEBSDIndex {peer['within_2']:.4f} ({peer['within_1']:.4f}; {peer['indexed']:.4f})"
            )

        result.append(_row(
            "index", label, n, kikuchi_cmd("index", sim, "-o", out, "--phase", "ni"), out=out, warm=(sim,),
            floor_inputs=[_pattern_input(sim, raw_patterns)], repeat=repeat, targets=[("PyEBSDIndex", 5.0), ("floor", 1.5)],
            peer_name="PyEBSDIndex index_pats", peer=lambda: child("pyebsdindex", src=str(up), out=str(kp_out), **geometry),
            peer_out=kp_out, peer_warm=(up,), after=accuracy,
        ))  # fmt: skip

    if "convert" in only:
        folder, out, seed_out = image_folder(key, n), WORK / "convert.h5", WORK / "seed.h5"
        k = min(n, seed_n)
        row = _row(
            "convert (images)", label, n, kikuchi_cmd("convert", folder, "-o", out), out=out, warm=(folder,),
            floor_inputs=[{"kind": "images", "path": str(folder)}], repeat=repeat, targets=[("seed", 20.0), ("floor", 1.5)],
            peer_name="seed loop", peer_out=seed_out, peer_warm=(folder,),
            peer=lambda: child("seed", folder=str(folder), nav_shape=list(nav_shape_of(n)), n_images=k, n=n, out=str(seed_out)),
        )  # fmt: skip
        row.notes += [f"seed loop timed on {k:,} of the {n:,} images, scaled"] if k < n else []
        result.append(row)

    if "convert-vendor" in only:
        src, out, kp_out = vendor_file(key, n), WORK / "convert_vendor.h5", WORK / "kikuchipy_convert.h5"
        result.append(_row(
            "convert (h5oina)", label, n, kikuchi_cmd("convert", src, "-o", out), out=out, warm=(src,), floor_inputs=[_pattern_input(src)],
            repeat=repeat, targets=[("floor", 1.5)], peer_name="kikuchipy load+save",
            peer=lambda: child("kp_convert", src=str(src), out=str(kp_out)), peer_out=kp_out, peer_warm=(src,),
        ))  # fmt: skip
    return result


# -- start-up --------------------------------------------------------------------------------
def startup(only: set[str]) -> str:
    """Wall times of --help, import, and each command's first call with an empty numba cache vs the second call."""
    lines = []
    help_run = timed(kikuchi_cmd("--help"), repeat=3)
    imp = timed([sys.executable, "-c", "import kikuchi"], repeat=3)
    lines.append(f"kikuchi --help: {_s(help_run.seconds)} s; python -c 'import kikuchi': {_s(imp.seconds)} s (best of 3)")
    src = pattern_map("60", TINY)
    sim, ctf = simulated_map("60", TINY)
    calls = {
        "process": lambda out: kikuchi_cmd("process", src, "-o", out / "p.h5"),
        "vbse": lambda out: kikuchi_cmd("vbse", src, "-o", out / "vbse", "--grid", "7x7"),
        "quality": lambda out: kikuchi_cmd("quality", src, "-o", out / "quality"),
        "simulate": lambda out: kikuchi_cmd("simulate", "--from-map", ctf, "--master-pattern", MASTER, "-o", out / "s.h5"),
        "index": lambda out: kikuchi_cmd("index", sim, "-o", out / "i.ctf", "--phase", "ni"),
        "convert": lambda out: kikuchi_cmd("convert", image_folder("60", TINY), "-o", out / "c.h5"),
        "convert-vendor": lambda out: kikuchi_cmd("convert", vendor_file("60", TINY), "-o", out / "v.h5"),
    }
    rows_cols = nav_shape_of(TINY)
    lines.append(f"first call of each command in a fresh environment (NUMBA_CACHE_DIR empty) and the second call, {TINY} patterns ({rows_cols[0]} x {rows_cols[1]}) of 60x60:")
    lines.append(f"  {'command':<16}{'first s':>9}{'second s':>10}{'difference s':>14}")
    for name, make in calls.items():
        if name not in only:
            continue
        with tempfile.TemporaryDirectory(dir=DATA) as tmp:
            cache, out = Path(tmp) / "numba", Path(tmp) / "out"
            cache.mkdir()
            env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
            runs = []
            for _ in range(2):
                _remove(out)
                out.mkdir()
                runs.append(timed(make(out), env=env))
            first, second = runs
            if first.error or second.error:
                lines.append(f"  {name:<16} error: {first.error or second.error}")
                continue
            lines.append(f"  {name:<16}{first.seconds:>9.2f}{second.seconds:>10.2f}{first.seconds - second.seconds:>14.2f}")
    return "\n".join(lines)


# -- the contenders run in a child process -----------------------------------------------------
def _quiet() -> None:
    import warnings

    warnings.simplefilter("ignore")


def child_kp_process(src: str, out: str, factor: int, sigma: float, truncate: float, npa: int, clow: float, chigh: float,
                     dtype: str, in_memory: bool = False) -> dict:  # fmt: skip
    """kikuchipy: the processing of ``kikuchi process`` from its h5ebsd file to a new one, or in memory."""
    _quiet()
    import kikuchipy as kp

    def chain(s) -> None:  # noqa: ANN001 - an EBSD or LazyEBSD
        if factor > 1:
            s.downsample(factor, show_progressbar=False)
        s.remove_static_background(operation="divide", show_progressbar=False)
        s.remove_dynamic_background(operation="divide", std=sigma, truncate=truncate, show_progressbar=False)
        if npa:
            s.average_neighbour_patterns(window="rectangular", window_shape=(2 * npa + 1, 2 * npa + 1), show_progressbar=False)
        s.rescale_intensity(dtype_out=np.dtype(dtype), percentiles=(clow, chigh), show_progressbar=False)

    def load(**kwargs: object):  # noqa: ANN202 - an EBSD or LazyEBSD
        s = kp.load(src, **kwargs)
        # kikuchipy subtracts or divides by a static background of the patterns' dtype only (kikuchi stores float32)
        s.static_background = np.round(np.asarray(s.static_background)).astype(s.data.dtype)
        return s

    if not in_memory:
        s = load(lazy=True)
        chain(s)
        s.save(out, overwrite=True)
        return {}
    s = load()
    chain(s.inav[:3, :3].deepcopy())  # numba compilation (or its cache) before the clock
    t0 = time.perf_counter()
    chain(s)
    return {"inner_s": time.perf_counter() - t0}


def child_kp_vbse(src: str, out: str, grid: list[int]) -> dict:
    """kikuchipy: the virtual BSE images of a grid of detector regions, from the file to a saved signal."""
    _quiet()
    import kikuchipy as kp

    imager = kp.imaging.VirtualBSEImager(kp.load(src, lazy=True))
    imager.grid_shape = tuple(grid)
    images = imager.get_images_from_grid()
    if images._lazy:
        images.compute(show_progressbar=False)
    Path(out).mkdir(parents=True)
    images.save(Path(out) / "vbse.hspy", overwrite=True)
    return {}


def child_kp_simulate(ctf: str, master: str, out: str, shape: list[int], pc: list[float], sample_tilt: float, camera_tilt: float,
                      kv: float, dtype: str) -> dict:  # fmt: skip
    """kikuchipy: project the master pattern for every orientation of a CTF and save the patterns."""
    _quiet()
    import kikuchipy as kp
    from orix import io as orix_io

    xmap = orix_io.load(ctf)
    rotations = xmap.rotations.reshape(*xmap.shape)
    mp = kp.load(master, projection="lambert", hemisphere="both")
    detector = kp.detectors.EBSDDetector(shape=tuple(shape), pc=pc, sample_tilt=sample_tilt, tilt=camera_tilt)
    sim = mp.get_patterns(rotations, detector, energy=kv, dtype_out=np.dtype(dtype), compute=False, show_progressbar=False)
    sim.save(out, overwrite=True)
    return {}


def child_pyebsdindex(src: str, out: str, pc: list[float], sample_tilt: float, camera_tilt: float) -> dict:
    """PyEBSDIndex: Hough index every pattern of the file (read by its own reader) and write an ANG."""
    _quiet()
    from pyebsdindex import ebsd_index, ebsdfile

    indexer = ebsd_index.EBSDIndexer(filename=src, phaselist=["FCC"], vendor="KIKUCHIPY", PC=pc, sampleTilt=sample_tilt, camElev=camera_tilt)
    data = indexer.index_pats(verbose=0)[0]
    ebsdfile.writeang(out, indexer, data)
    t0 = time.perf_counter()  # the orientations for the accuracy, not part of the workflow
    found = np.empty(data.shape[-1], dtype=[("quat", np.float64, 4), ("phase", np.int32)])
    found["quat"], found["phase"] = data[-1]["quat"], data[-1]["phase"]
    np.save(out + ".npy", found)
    return {"excluded_s": time.perf_counter() - t0}


def child_seed(folder: str, nav_shape: list[int], n_images: int, n: int, out: str) -> dict:
    """The seed's conversion loop on the first ``n_images`` images; ``scale_s`` the time of the others at its rate."""
    from _seed import seed_convert_loop

    loop_s, _ = seed_convert_loop(Path(folder), tuple(nav_shape), n_images, Path(out))
    return {"scale_s": loop_s * (n / n_images - 1)}


def child_kp_convert(src: str, out: str) -> dict:
    """kikuchipy: a vendor's pattern file loaded lazily and saved as kikuchipy h5ebsd."""
    _quiet()
    import kikuchipy as kp

    kp.load(src, lazy=True).save(out, overwrite=True)
    return {}


# -- the floor: I/O of the same bytes on all cores ---------------------------------------------
def _codec():  # noqa: ANN202 - (compress, decompress) of zlib streams
    """zlib, with ISA-L where the package ``isal`` is installed (it compresses at levels 0-3 only), as kikuchi does."""
    import zlib

    try:
        from isal import isal_zlib
    except ImportError:
        return zlib.compress, zlib.decompress
    return (lambda data, level: (isal_zlib if level <= 3 else zlib).compress(data, level)), isal_zlib.decompress


def _largest_pattern_dataset(f) -> str:  # noqa: ANN001 - an open h5py.File
    import h5py

    found: list = []
    f.visititems(lambda name, obj: found.append(obj) if isinstance(obj, h5py.Dataset) and obj.ndim >= 3 else None)
    return max(found, key=lambda d: d.size).name


def _read_h5(path: str, dataset: str | None, workers: int) -> None:
    """Read and decode every chunk of a pattern dataset: raw chunks inflated on ``workers`` threads
    (gzip, shuffle or no filter), else h5py chunk by chunk (LZF and other filters)."""
    import h5py

    from kikuchi.io._h5 import unshuffle  # one strided copy per byte plane: the fastest way kikuchi knows

    _, decompress = _codec()
    with h5py.File(path, "r") as f:
        ds = f[dataset or _largest_pattern_dataset(f)]
        itemsize = ds.dtype.itemsize
        plain = ds.chunks is not None and ds.compression in (None, "gzip") and not ds.fletcher32 and ds.scaleoffset is None
        chunks: list[tuple[int, int, int]] = []
        if plain:
            ds.id.chunk_iter(lambda info: chunks.append((info.byte_offset, info.size, info.filter_mask)))
            all_skipped = (1 << ds.id.get_create_plist().get_nfilters()) - 1  # asked once, not per chunk inside the clock
            plain = all(mask in (0, all_skipped) for _, _, mask in chunks)
        if ds.chunks is None:
            offset, size = ds.id.get_offset(), ds.id.get_storage_size()
            chunks = [(offset + k, min(1 << 24, size - k), 0) for k in range(0, size, 1 << 24)]
        if plain or ds.chunks is None:
            gzip, shuffle = ds.compression == "gzip", ds.shuffle and itemsize > 1
            fd = os.open(path, os.O_RDONLY)

            def decode(chunk: tuple[int, int, int]) -> int:
                data = os.pread(fd, chunk[1], chunk[0])
                if chunk[2]:  # stored unfiltered (kikuchi's chunks that deflate does not shrink)
                    return len(data)
                if gzip:
                    data = decompress(data)
                if shuffle:
                    data = unshuffle(data, itemsize)
                return len(data)

            try:
                with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                    sum(pool.map(decode, chunks))
            finally:
                os.close(fd)
            return
        step = ds.chunks[0]
        buf = np.empty((step, *ds.shape[1:]), dtype=ds.dtype)
        for start in range(0, ds.shape[0], step):
            stop = min(start + step, ds.shape[0])
            ds.read_direct(buf[: stop - start], np.s_[start:stop])


def _read_images(folder: str, workers: int) -> None:
    """Read every TIFF of a folder: an uncompressed one-strip file of the first file's size is read with one
    system call into its row of a buffer, its pixels at the offset tifffile finds in the first file (files of
    another size or layout: tifffile), on ``workers`` threads."""
    import tifffile

    with os.scandir(folder) as entries:
        files = sorted(os.path.join(folder, e.name) for e in entries if e.name.lower().endswith((".tif", ".tiff")))
    with tifffile.TiffFile(files[0]) as tf:
        page = tf.pages[0]
        plain = int(page.compression) == 1 and len(page.dataoffsets) == 1
        offset, shape, dtype = int(page.dataoffsets[0]), page.shape, np.dtype(page.dtype).newbyteorder(tf.byteorder)
    size = os.path.getsize(files[0])
    readv = getattr(os, "readv", None)

    def decode(batch: list[str]) -> None:
        raw = np.empty((len(batch), size + 1), dtype=np.uint8)
        for k, p in enumerate(batch):
            fd = os.open(p, os.O_RDONLY)
            try:
                got = readv(fd, [raw[k]]) if plain and readv else -1
            finally:
                os.close(fd)
            if got == size:
                raw[k, offset : offset + math.prod(shape) * dtype.itemsize].view(dtype).reshape(shape).astype(dtype.newbyteorder("="))
            else:
                tifffile.imread(p)

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(decode, [files[k : k + 256] for k in range(0, len(files), 256)]))


def _preload(ref: Path) -> list[tuple[str, object]]:
    """kikuchi's output as (relative name, content): an HDF5 file's datasets with their storage settings, other files' bytes."""
    import h5py

    paths = sorted(p for p in ref.rglob("*") if p.is_file()) if ref.is_dir() else [ref]
    items: list[tuple[str, object]] = []
    for p in paths:
        name = str(p.relative_to(ref)) if ref.is_dir() else p.name
        if h5py.is_hdf5(p):
            datasets: list = []
            with h5py.File(p, "r") as f:
                f.visititems(lambda n, obj: datasets.append((n, obj[()], dict(
                    chunks=obj.chunks, compression=obj.compression, compression_opts=obj.compression_opts, shuffle=obj.shuffle,
                    _unfiltered=_unfiltered_chunks(obj),
                ))) if isinstance(obj, h5py.Dataset) else None)  # fmt: skip
            items.append((name, datasets))
        else:
            items.append((name, p.read_bytes()))
    return items


def _unfiltered_chunks(ds) -> frozenset:  # noqa: ANN001 - an h5py.Dataset
    """Offsets of the chunks stored without their filters (HDF5's filter mask): kikuchi stores so the chunks
    that deflate does not shrink, and the floor must write (and not compress) the same."""
    if ds.chunks is None or ds.compression is None:
        return frozenset()
    skipped: set = set()
    ds.id.chunk_iter(lambda info: skipped.add(tuple(info.chunk_offset)) if info.filter_mask else None)
    return frozenset(skipped)


def _write_chunked(f, name: str, array: np.ndarray, settings: dict, workers: int) -> None:  # noqa: ANN001 - an h5py.File
    """A chunked gzip (or unfiltered) dataset, its chunks filtered on ``workers`` threads and written whole
    (those kikuchi stored unfiltered, unfiltered)."""
    from kikuchi.io._h5 import shuffle as shuffle_bytes  # as kikuchi's writer shuffles

    compress, _ = _codec()
    chunks = settings["chunks"]
    level = settings["compression_opts"] if settings["compression"] == "gzip" else None
    shuffle = settings["shuffle"] and array.dtype.itemsize > 1
    unfiltered = settings.get("_unfiltered", frozenset())
    ds = f.create_dataset(name, shape=array.shape, dtype=array.dtype, **{k: v for k, v in settings.items() if v and not k.startswith("_")})
    itemsize = array.dtype.itemsize
    all_skipped = (1 << ds.id.get_create_plist().get_nfilters()) - 1

    def encode(offset: tuple[int, ...]) -> tuple[tuple[int, ...], bytes, int]:
        block = array[tuple(slice(o, o + c) for o, c in zip(offset, chunks))]
        if block.shape != tuple(chunks):  # an edge chunk is stored whole
            full = np.zeros(chunks, dtype=array.dtype)
            full[tuple(slice(0, k) for k in block.shape)] = block
            block = full
        raw = np.ascontiguousarray(block).view(np.uint8).reshape(-1)
        if offset in unfiltered:
            return offset, raw, all_skipped
        if shuffle:
            raw = shuffle_bytes(raw, itemsize)
        return offset, compress(raw, level) if level is not None else raw.tobytes(), 0

    offsets = itertools.product(*(range(0, s, c) for s, c in zip(array.shape, chunks)))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for offset in offsets:
            pending.append(pool.submit(encode, offset))
            if len(pending) >= 4 * workers:
                ds.id.write_direct_chunk(*pending.popleft().result())
        while pending:
            ds.id.write_direct_chunk(*pending.popleft().result())


def _write(path: Path, item: object, workers: int) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(item, bytes):
        path.write_bytes(item)
        return
    with h5py.File(path, "w") as f:
        for name, array, settings in item:  # type: ignore[attr-defined]
            big = isinstance(array, np.ndarray) and array.nbytes >= 1 << 20 and settings["chunks"]
            if big and settings["compression"] in (None, "gzip"):
                _write_chunked(f, name, array, settings, workers)
            else:
                f.create_dataset(name, data=array, **{k: v for k, v in settings.items() if v and not k.startswith("_")})


def child_floor(inputs: list[dict], refs: list[str], out: str) -> dict:
    """Read and decode the inputs, then write kikuchi's outputs (loaded before the clock) again."""
    workers = os.cpu_count() or 1
    t0 = time.perf_counter()
    outputs = [item for ref in refs for item in _preload(Path(ref))]
    excluded = time.perf_counter() - t0
    for spec in inputs:
        if spec["kind"] == "h5":
            _read_h5(spec["path"], spec.get("dataset"), workers)
        elif spec["kind"] == "images":
            _read_images(spec["path"], workers)
        else:
            Path(spec["path"]).read_bytes()
    for name, item in outputs:
        _write(Path(out) / name, item, workers)
    return {"excluded_s": excluded}


CHILDREN = {
    "kp_process": child_kp_process,
    "kp_vbse": child_kp_vbse,
    "kp_simulate": child_kp_simulate,
    "pyebsdindex": child_pyebsdindex,
    "seed": child_seed,
    "kp_convert": child_kp_convert,
    "floor": child_floor,
}


# -- main ------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n60", type=int, default=100_000, help="patterns of the 60x60 uint8 map (0: skip it; default 100,000)")
    parser.add_argument("--n240", type=int, default=10_000, help="patterns of the 240x240 uint16 map (0: skip it; default 10,000)")
    parser.add_argument("--only", default=",".join(COMMANDS), help=f"commands to run, comma-separated: {', '.join(COMMANDS)}")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs of each contender (default 1)")
    parser.add_argument("--seed-n", type=int, default=5000, help="images the seed loop is timed on, scaled to the map (default 5,000)")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--startup", action="store_true", help="measure start-up and first calls; alone with --only, or add --n60/--n240 for the table too")
    parser.add_argument("--no-warmup", action="store_true", help="no untimed warm-up run on 100-pattern maps first")
    parser.add_argument("-v", "--verbose", action="store_true", help="print kikuchi's result lines and other notes under the table")
    parser.add_argument("--child", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(BENCH))
        print(json.dumps(CHILDREN[args.child[0]](**json.loads(args.child[1]))))
        return 0
    only = {c.strip() for c in args.only.split(",") if c.strip()}
    if only - set(COMMANDS):
        parser.error(f"--only: unknown command(s) {', '.join(sorted(only - set(COMMANDS)))}; choose from {', '.join(COMMANDS)}")
    if not MASTER.exists() and "simulate" in only:
        parser.error(f"needs the EMsoft Ni master pattern {MASTER} (../shared/data)")
    DATA.mkdir(parents=True, exist_ok=True)
    table_wanted = not args.startup or any(a.startswith(("--n60", "--n240")) for a in sys.argv[1:])
    sizes = [(key, n) for key, n in (("60", args.n60), ("240", args.n240)) if n > 0] if table_wanted else []
    maps = ", ".join(map_label(k, n) for k, n in sizes) or "none (start-up only)"
    print(f"kikuchi commands benchmark: {os.cpu_count()} CPUs, best of {args.repeat}, maps {maps}", flush=True)
    if args.startup:
        print(startup(only), flush=True)
    if not sizes:
        return 0
    if not args.no_warmup:
        t0 = time.perf_counter()
        for key, _ in sizes:
            measure(key, TINY, only, 1, args.seed_n)
        print(f"warm-up on {TINY}-pattern maps: {time.perf_counter() - t0:.0f} s", flush=True)
    rows: list[Row] = []
    for key, n in sizes:
        t0 = time.perf_counter()
        for k in sorted(only, key=COMMANDS.index):  # inputs made before any timing, said apart
            {"process": pattern_map, "vbse": pattern_map, "quality": pattern_map, "simulate": simulated_map, "index": simulated_map,
             "convert": image_folder, "convert-vendor": vendor_file}[k](key, n)  # fmt: skip
            if k in ("process", "vbse"):
                kikuchipy_copy(pattern_map(key, n))
            if k == "index":
                edax_copy(simulated_map(key, n)[0])
        _CONTENT.clear()
        print(f"inputs of {map_label(key, n)} ready ({time.perf_counter() - t0:.0f} s)", flush=True)
        t0 = time.perf_counter()
        rows += measure(key, n, only, args.repeat, args.seed_n)
        print(f"measured {map_label(key, n)} in {time.perf_counter() - t0:.0f} s", flush=True)
    print()
    print(table(rows, args.markdown))
    print(LEGEND)
    for r in rows:
        for e in [("kikuchi", r.ours.error), ("peer", r.peer.error if r.peer else ""), ("floor", r.floor.error if r.floor else "")]:
            if e[1]:
                print(f"{r.command} [{r.label}] {e[0]} failed: {e[1]}")
        if args.verbose or any("accuracy" in note or "seed loop" in note for note in r.notes):
            for note in r.notes if args.verbose else [x for x in r.notes if "accuracy" in x or "seed loop" in x]:
                print(f"{r.command} [{r.label}]: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
