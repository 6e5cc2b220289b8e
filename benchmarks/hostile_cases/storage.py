"""Faults of storage and of outputs: damaged chunks, truncated files, a full disk, maps without a step, unbounded sizes, outputs that are their input.

Classes (each case judged by ``_case.judge``; a case returns a verdict string
where it finds a defect the judge cannot see):

* **corrupt chunk**: bytes flipped inside one stored deflate chunk (found
  with h5py's ``get_chunk_info``) of kikuchi map files (uint8 gzip+shuffle,
  uint16 gzip, float32 gzip+shuffle, one pattern per chunk), at many byte
  positions of the first, a middle and the last chunk, read through every
  path: ``read_all`` (the decoder here), ``pattern`` (h5py), ``read_chunk``
  (the explorer's), ``map_reduce`` with ``on_bad_chunk='skip'``, and the
  commands ``process``, ``vbse``, ``quality``, ``index``, ``pattern``,
  ``convert`` with and without ``--skip-bad-chunks``. Without skipping:
  a one-line error naming the chunk, and nothing left at the output. With
  skipping: a warning, and every other point equal to the run on the
  undamaged file (``silent-wrong`` otherwise). LZF and unfiltered chunks
  carry no checksum: a flipped byte of pattern data there reads as another
  pixel value that no reader can detect, so they are not in this class (see
  docs/reliability.md).
* **truncated HDF5 file**: kikuchi, kikuchipy, Bruker, EDAX and Oxford HDF5
  files cut at many lengths (API and commands): a one-line error saying the
  file is cut short; and ``.ebsp``/``.up1``/``.up2`` files cut mid-way: read
  with a warning, the complete points equal to the whole file, the rest
  missing.
* **full disk** (a 2 MiB tmpfs, filled up to a few KiB; needs root): every
  command that writes: a one-line error saying no space is left, exit code
  2, nothing left behind (no ``.partial`` file, no output folder), no crash.
* **step 0/NaN**: maps whose step is 0, NaN, negative or infinite through
  ``vbse`` and ``quality`` and the gallery writers: a warning (images without
  scale bar) or a clear error before any work, never a half-written folder.
* **unbounded sizes**: ``vbse --grid`` finer than a pixel, ``--region-pngs``
  on huge grids, results larger than the memory, ``simulate`` of huge
  patterns or maps: a clear error before any work.
* **output is the input**: every command with its output naming one of its
  inputs (the same path, ``./``, ``..``, a symbolic or a hard link): a
  clear error, and the input unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.hostile_cases._case import Case, run_cli  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
VENDOR = SHARED / "vendor_patterns"
PATTERNS = "Scan/EBSD/Data/RawPatterns"
NAV = (8, 10)
SHAPE = (48, 48)


#: Commands run at once (each case runs one ``kikuchi`` process; their outputs never collide).
JOBS = 2
#: Seconds a command may take before it is judged a hang (generous: the first runs compile numba kernels, and the
#: sweep shares the machine).
TIMEOUT_S = 300.0


def parallel(cases: Iterator[Case], jobs: int = JOBS) -> Iterator[Case]:
    """The same cases, the commands (``cli`` cases) started ``jobs`` at a time ahead of the judge, which judges them in order.

    Cases of the Python API run when judged, in this thread (the judge records their warnings).
    """
    from concurrent.futures import ThreadPoolExecutor

    pending = list(cases)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(case.run) if case.cli else None for case in pending]
        for case, future in zip(pending, futures):
            if future is None:
                yield case
            else:
                yield Case(case.cls, case.label, future.result, cli=True, timeout_s=case.timeout_s, expect_ok=case.expect_ok)


# -- files ---------------------------------------------------------------------------------------
def make_map(workdir: Path) -> Path:
    """A small synthetic map of known truth (PC, phases, static background): the undamaged original."""
    from kikuchi.simulate.synthetic import simulate

    path = workdir / "original" / "map.h5"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        simulate(path, shape=NAV, pattern_shape=SHAPE, grains=4, noise="low", seed=3, progress=False)
    return path


def rechunk(src: Path, dst: Path, *, chunk_patterns: int, dtype: str = "uint8", **filters: Any) -> Path:
    """A copy of ``src`` whose pattern dataset is stored in chunks of ``chunk_patterns`` with ``filters``."""
    import h5py

    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        data = f[PATTERNS][()].astype(dtype)
        del f[PATTERNS]
        f.create_dataset(PATTERNS, data=data, chunks=(chunk_patterns, *data.shape[1:]), **filters)
    return dst


def chunk_info(path: Path, k: int) -> tuple[int, int]:
    """(file offset, stored size) of chunk ``k`` of the pattern dataset."""
    import h5py

    with h5py.File(path, "r") as f:
        info = f[PATTERNS].id.get_chunk_info(k)
        return int(info.byte_offset), int(info.size)


def n_chunks(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return int(f[PATTERNS].id.get_num_chunks())


def flip(src: Path, dst: Path, offset: int, n: int = 1) -> Path:
    """A copy of ``src`` with ``n`` bytes at ``offset`` inverted."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    data = bytearray(src.read_bytes())
    for i in range(offset, min(offset + n, len(data))):
        data[i] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def sha(path: Path) -> str:
    if path.is_dir():
        return "dir:" + ",".join(sorted(p.name for p in path.iterdir()))
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"


def leftovers(target: Path) -> list[str]:
    """Files that a failed command left where its output ``target`` would be: the output itself or its partial."""
    out = []
    for p in (target, target.with_name(f".{target.name}.partial")):
        if p.exists() or p.is_symlink():
            out.append(p.name)
    return out


def as_float(m: Any) -> np.ndarray:
    data = np.asarray(m.read_all(), dtype=np.float64)
    data[m.index_map < 0] = np.nan
    return data


def points_of_chunk(path: Path, k: int) -> np.ndarray:
    """(rows, cols) bool: map points whose pattern lies in chunk ``k``."""
    import h5py

    import kikuchi

    with h5py.File(path, "r") as f:
        per = int(f[PATTERNS].chunks[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with kikuchi.open(path) as m:
            idx = m.index_map.copy()
    return (idx >= k * per) & (idx < (k + 1) * per)


def error_names_chunk(text: str, k: int) -> bool:
    return f"chunk {k} " in text and "cannot be decoded" in text


# -- corrupt chunk ---------------------------------------------------------------------------------
def _mean_std(patterns: np.ndarray) -> np.ndarray:
    flat = patterns.reshape(len(patterns), -1).astype(np.float64)
    return np.stack([flat.mean(1), flat.std(1)], axis=1)


def corrupt_chunk_api(variants: dict[str, Path], workdir: Path) -> Iterator[Case]:
    import kikuchi
    from kikuchi.engine import map_reduce
    from kikuchi.io._h5 import BadChunkError

    for name, path in variants.items():
        with kikuchi.open(path) as m:
            ref = as_float(m)
            ref_stats = map_reduce(m, _mean_std, progress=False)
            ref_index = m.index_map.copy()
        count = n_chunks(path)
        for k in sorted({0, count // 2, count - 1}):
            offset, size = chunk_info(path, k)
            lost = points_of_chunk(path, k)
            positions = sorted({0, 1, 2, 5, size // 4, size // 2, 3 * size // 4, size - 5, size - 2, size - 1})
            for pos in positions:
                for n_flip in (1, 16) if pos in (size // 2,) else (1,):
                    bad = flip(path, workdir / "corrupt" / f"{name}_c{k}_b{pos}_{n_flip}.h5", offset + pos, n_flip)
                    label = f"{name}: chunk {k} of {count}, byte {pos} of {size} ({n_flip} flipped)"

                    def read_all(bad: Path = bad, k: int = k) -> str | None:
                        try:
                            with kikuchi.open(bad) as m:
                                data = as_float(m)
                        except BadChunkError as exc:
                            if not error_names_chunk(str(exc), k):
                                return f"error does not name chunk {k}: {exc}"
                            raise  # refused, naming the chunk: the judge counts the error
                        return None if np.array_equal(data, ref, equal_nan=True) else "silent-wrong: read_all gave other patterns"

                    def one_pattern(bad: Path = bad, k: int = k, lost: np.ndarray = lost) -> str | None:
                        r, c = (int(v[0]) for v in np.nonzero(lost))
                        try:
                            with kikuchi.open(bad) as m:
                                p = np.asarray(m.pattern(r, c), dtype=np.float64)
                        except BadChunkError as exc:
                            if not (error_names_chunk(str(exc), k) and "map row" in str(exc)):
                                return f"error unclear: {exc}"
                            raise
                        return None if np.array_equal(p, ref[r, c]) else "silent-wrong: pattern() gave another pattern"

                    def explorer_chunk(bad: Path = bad, k: int = k, stored: int = chunk_patterns_of(path)) -> str | None:
                        try:
                            with kikuchi.open(bad) as m:
                                m.read_chunk((k * stored) // m.chunk_patterns)
                        except BadChunkError as exc:
                            if "cannot be decoded" not in str(exc):
                                return f"error unclear: {exc}"
                            raise
                        return None

                    def skip(bad: Path = bad, lost: np.ndarray = lost) -> str | None:
                        with kikuchi.open(bad) as m:
                            stats = map_reduce(m, _mean_std, progress=False, on_bad_chunk="skip")
                            now = m.index_map
                            marked = (ref_index >= 0) & (now < 0)
                            if marked.any() and not np.array_equal(marked, lost):
                                return f"silent-wrong: {int(marked.sum())} points marked missing, the chunk holds {int(lost.sum())}"
                            good = now >= 0
                            if not np.array_equal(stats[now[good]], ref_stats[ref_index[good]]):
                                return "silent-wrong: a readable point differs from the undamaged run"
                            if marked.any() and m.unreadable_points != int(lost.sum()):
                                return f"unreadable_points {m.unreadable_points}, expected {int(lost.sum())}"
                        return None

                    yield Case("corrupt chunk", f"{label}: read_all", read_all)
                    yield Case("corrupt chunk", f"{label}: pattern() through h5py", one_pattern)
                    yield Case("corrupt chunk", f"{label}: read_chunk (explorer)", explorer_chunk)
                    yield Case("corrupt chunk", f"{label}: map_reduce on_bad_chunk='skip'", skip)


def chunk_patterns_of(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return int(f[PATTERNS].chunks[0])


def _reference_outputs(original: Path, workdir: Path) -> dict[str, Path]:
    """The commands' outputs on the undamaged file (what a run that skips a damaged chunk must equal elsewhere)."""
    ref = workdir / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    out = {
        "process": ref / "p.h5",
        "vbse": ref / "vb",
        "quality": ref / "q",
        "index": ref / "i.ctf",
    }
    runs = {
        "process": ("process", original, "-o", out["process"], "--no-progress"),
        "vbse": ("vbse", original, "-o", out["vbse"], "--no-png", "--quiet"),
        "quality": ("quality", original, "-o", out["quality"], "--quiet"),
        "index": ("index", original, "-o", out["index"], "--phase", "ni", "--no-progress"),
    }
    for key, args in runs.items():
        if not out[key].exists():
            proc = run_cli(*args, timeout_s=TIMEOUT_S)
            if proc.returncode != 0:
                raise RuntimeError(f"reference run kikuchi {' '.join(map(str, args))} failed: {proc.stderr[-300:]}")
    return out


def _compare(command: str, out: Path, ref: Path, lost: np.ndarray) -> str | None:
    """None when ``out`` (a run that skipped the damaged points ``lost``) equals ``ref`` at every other point."""
    import h5py

    import kikuchi

    if command == "process":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with kikuchi.open(out) as a, kikuchi.open(ref) as b:
                if not np.array_equal(a.index_map < 0, lost | (b.index_map < 0)):
                    return "silent-wrong: the output's missing points are not those of the damaged chunk"
                good = a.index_map >= 0
                if not np.array_equal(a.read_all()[good], b.read_all()[good]):
                    return "silent-wrong: a processed pattern outside the damaged chunk differs"
        return None
    if command == "vbse":
        with h5py.File(out / "vbse.h5", "r") as a, h5py.File(ref / "vbse.h5", "r") as b:
            va, vb = a["vbse"][()], b["vbse"][()]
        nan = np.isnan(va).all(axis=(2, 3))
        if not np.array_equal(nan, lost):
            return "silent-wrong: NaN points of vbse are not those of the damaged chunk"
        return None if np.array_equal(va[~nan], vb[~nan]) else "silent-wrong: vbse differs outside the damaged chunk"
    if command == "quality":
        with h5py.File(out / "quality.h5", "r") as a, h5py.File(ref / "quality.h5", "r") as b:
            qa = {k: a[k][()] for k in ("iq", "adp", "mean", "std")}
            qb = {k: b[k][()] for k in ("iq", "adp", "mean", "std")}
        if not np.array_equal(np.isnan(qa["iq"]), lost):
            return "silent-wrong: NaN points of iq are not those of the damaged chunk"
        for key in ("iq", "mean", "std"):
            if not np.array_equal(qa[key][~lost], qb[key][~lost]):
                return f"silent-wrong: {key} differs outside the damaged chunk"
        near = lost.copy()  # the neighbour dot product of a point next to a lost one has fewer neighbours
        near[1:] |= lost[:-1]
        near[:-1] |= lost[1:]
        near[:, 1:] |= lost[:, :-1]
        near[:, :-1] |= lost[:, 1:]
        return None if np.array_equal(qa["adp"][~near], qb["adp"][~near]) else "silent-wrong: adp differs away from the damaged chunk"
    if command == "index":
        from kikuchi.io.orientation_map import read_orientation_map

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a, b = read_orientation_map(out), read_orientation_map(ref)
        flat = lost.reshape(-1)
        if not (np.asarray(a["error"])[flat] == 5).all():
            return "silent-wrong: a point of the damaged chunk is not 'not analysed' (CTF error 5)"
        if not np.array_equal(a.euler[~flat], b.euler[~flat]) or not np.array_equal(a.phase_id[~flat], b.phase_id[~flat]):
            return "silent-wrong: an orientation outside the damaged chunk differs"
        return None
    raise ValueError(command)


def corrupt_chunk_cli(original: Path, workdir: Path) -> Iterator[Case]:
    variant = rechunk(original, workdir / "cli" / "map.h5", chunk_patterns=20, compression="gzip", compression_opts=1, shuffle=True)
    refs = _reference_outputs(variant, workdir)
    count = n_chunks(variant)
    for k in (1, count - 1):
        offset, size = chunk_info(variant, k)
        bad = flip(variant, workdir / "cli" / f"bad_c{k}.h5", offset + size // 3, 4)
        lost = points_of_chunk(variant, k)
        for command in ("process", "vbse", "quality", "index"):
            for skip in (False, True):
                out = workdir / "cli_out" / f"{command}_c{k}_{'skip' if skip else 'raise'}"
                target = out.with_suffix(".h5") if command == "process" else out.with_suffix(".ctf") if command == "index" else out
                extra = {"process": ["--no-progress"], "vbse": ["--no-png"] if skip else ["--quiet"], "quality": [] if skip else ["--quiet"],
                         "index": ["--phase", "ni", "--no-progress"]}[command]  # fmt: skip

                def run(command: str = command, bad: Path = bad, target: Path = target, extra: list[str] = extra, skip: bool = skip,
                        k: int = k, lost: np.ndarray = lost) -> Any:  # fmt: skip
                    proc = run_cli(command, bad, "-o", target, *extra, *(["--skip-bad-chunks"] if skip else []), timeout_s=TIMEOUT_S)
                    if not skip:
                        if proc.returncode == 0:
                            return proc, "silent-wrong: the damaged chunk was read without an error"
                        if not error_names_chunk(proc.stderr, k) or "--skip-bad-chunks" not in proc.stderr:
                            return proc, f"the error does not name chunk {k} and the way on: {proc.stderr[-200:]!r}"
                        left = leftovers(target)
                        return proc, f"partial-output: {left}" if left else None
                    if proc.returncode != 0:
                        return proc, None
                    if "warning:" not in proc.stderr or f"{int(lost.sum())} points in unreadable chunks" not in proc.stdout:
                        return proc, f"the skipped points are not said: {proc.stdout[-200:]!r}"
                    return proc, _compare(command, target, refs[command], lost)

                yield Case("corrupt chunk", f"kikuchi {command} on chunk {k} damaged{' --skip-bad-chunks' if skip else ''}", run, cli=True)
        for command, args in (
            ("pattern", ("--at", f"{int(np.nonzero(lost)[0][0])},{int(np.nonzero(lost)[1][0])}", "-o")),
            ("convert", ("-o",)),
        ):
            suffix = ".png" if command == "pattern" else ".h5"
            target = workdir / "cli_out" / f"{command}_c{k}{suffix}"

            def run_other(command: str = command, args: tuple[str, ...] = args, bad: Path = bad, target: Path = target, k: int = k) -> Any:
                proc = run_cli(command, bad, *args, target, *(["--no-progress"] if command == "convert" else []), timeout_s=TIMEOUT_S)
                if proc.returncode == 0:
                    return proc, "silent-wrong: the damaged chunk was read without an error"
                if not error_names_chunk(proc.stderr, k):
                    return proc, f"the error does not name chunk {k}: {proc.stderr[-200:]!r}"
                left = leftovers(target)
                return proc, f"partial-output: {left}" if left else None

            yield Case("corrupt chunk", f"kikuchi {command} on chunk {k} damaged", run_other, cli=True)


# -- truncated files -------------------------------------------------------------------------------
def truncated_cases(original: Path, workdir: Path) -> Iterator[Case]:
    import kikuchi

    files = [original, *(p for p in (
        SHARED / "kikuchipy" / "nickel_ebsd_small.h5",
        VENDOR / "bruker_custom_u8_ordered.h5",
        VENDOR / "edax_custom_oim86.h5",
        VENDOR / "oxford_custom_v7_lzf.h5oina",
    ) if p.exists())]  # fmt: skip
    for path in files:
        data = path.read_bytes()
        n = len(data)
        lengths = sorted({0, 8, 96, 512, 2048, n // 100, n // 20, n // 10, n // 5, n // 3, n // 2, 2 * n // 3, 9 * n // 10, n - 4096, n - 512, n - 8, n - 1})
        for length in [v for v in lengths if 0 <= v < n]:
            cut = workdir / "truncated" / f"{length}_{path.name}"
            cut.parent.mkdir(parents=True, exist_ok=True)
            cut.write_bytes(data[:length])

            def read(cut: Path = cut) -> str | None:
                try:
                    with kikuchi.open(cut) as m:
                        m.read_all()
                except (ValueError, OSError, IndexError) as exc:
                    if cut.name not in str(exc):
                        return f"the error does not name the file: {exc}"
                    raise
                return "silent-wrong: a file cut short read without a word"

            yield Case("truncated HDF5 file", f"{path.name} cut at {length} of {n} bytes", read)
    for length in (len(original.read_bytes()) // 2,):
        cut = workdir / "truncated" / f"{length}_{original.name}"
        for command, args in (("info", ()), ("vbse", ("-o", workdir / "truncated_out" / f"vb{length}", "--quiet")),
                              ("process", ("-o", workdir / "truncated_out" / f"p{length}.h5", "--no-progress"))):  # fmt: skip

            def run(command: str = command, args: tuple[Any, ...] = args, cut: Path = cut) -> Any:
                proc = run_cli(command, cut, *args, timeout_s=TIMEOUT_S)
                if proc.returncode != 0 and "cut short" not in proc.stderr:
                    return proc, f"the error does not say the file is cut short: {proc.stderr[-200:]!r}"
                return proc

            yield Case("truncated HDF5 file", f"kikuchi {command} on {original.name} cut at {length} bytes", run, cli=True)
    for name in ("ebsp_v2_u8_3x4.ebsp", "ebsp_v6_u8_shuffled.ebsp", "ebsp_v2_u16_3x4.ebsp", "up2_v3_3x4.up2", "up1_v3_3x4.up1"):
        path = VENDOR / name
        if not path.exists():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with kikuchi.open(path) as m:
                ref = as_float(m)
        data = path.read_bytes()
        for frac in (0.35, 0.5, 0.62, 0.77, 0.9, 0.95, 0.999):
            cut = workdir / "truncated" / f"{int(frac * 1000)}_{name}"
            cut.write_bytes(data[: int(len(data) * frac)])

            def read_binary(cut: Path = cut, ref: np.ndarray = ref) -> str | None:
                with kikuchi.open(cut) as m:
                    got = as_float(m)
                    have = m.index_map >= 0
                if got.shape[:2] == ref.shape[:2] and have.all():
                    return "silent-wrong: a file cut short has every point"
                for r, c in zip(*np.nonzero(have)):  # placed by beam positions when the header is cut too: the map may be smaller
                    if r >= ref.shape[0] or c >= ref.shape[1] or not np.array_equal(got[r, c], ref[r, c]):
                        return f"silent-wrong: the pattern read at (row {r}, col {c}) is not the whole file's"
                return None

            yield Case("truncated HDF5 file", f"{name} cut at {frac:.1%} (binary file: complete points read)", read_binary)


# -- full disk -------------------------------------------------------------------------------------
@contextlib.contextmanager
def full_disk(folder: Path, *, leave_kib: int) -> Iterator[Path]:
    """A 2 MiB tmpfs at ``folder`` filled up to ``leave_kib`` KiB."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], check=True, capture_output=True)
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * 4096):
                    pass
        finally:
            os.close(fd)
        if leave_kib:
            os.truncate(folder / "filler", max(0, (folder / "filler").stat().st_size - leave_kib * 1024))
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def can_mount(workdir: Path) -> str | None:
    """None when a tmpfs can be mounted here, else why not."""
    probe = workdir / "mount_probe"
    probe.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)], capture_output=True, text=True)
    if proc.returncode != 0:
        return (proc.stderr or "mount failed").strip()
    subprocess.run(["umount", str(probe)], capture_output=True)
    return None


def full_disk_cases(original: Path, workdir: Path) -> Iterator[Case]:
    why = can_mount(workdir)
    if why is not None:
        print(f"storage: full disk: no tmpfs can be mounted here ({why}); that class is not run", file=sys.stderr)
        return
    images = workdir / "images"
    if not images.exists():
        import tifffile

        import kikuchi

        images.mkdir(parents=True)
        with kikuchi.open(original) as m:
            for r in range(m.nav_shape[0]):
                for c in range(m.nav_shape[1]):
                    tifffile.imwrite(images / f"{r}_{c}.tiff", m.pattern(r, c))
    ctf = workdir / "original" / "truth.ctf"
    if not ctf.exists():
        run_cli("index", original, "-o", ctf, "--phase", "ni", "--no-progress", timeout_s=TIMEOUT_S)
    commands: list[tuple[str, Callable[[Path], tuple[Any, ...]], Callable[[Path], Path]]] = [
        ("convert (images)", lambda d: ("convert", images, "-o", d / "c.h5", "--step", "1", "--no-progress"), lambda d: d / "c.h5"),
        ("convert (h5ebsd)", lambda d: ("convert", original, "-o", d / "c.h5", "--format", "h5ebsd", "--no-progress"), lambda d: d / "c.h5"),
        ("convert (kikuchi)", lambda d: ("convert", original, "-o", d / "c.h5", "--no-progress"), lambda d: d / "c.h5"),
        ("process", lambda d: ("process", original, "-o", d / "p.h5", "--no-progress"), lambda d: d / "p.h5"),
        ("process --threads 2", lambda d: ("process", original, "-o", d / "p.h5", "--threads", "2", "--no-progress"), lambda d: d / "p.h5"),
        ("index (CTF)", lambda d: ("index", original, "-o", d / "i.ctf", "--phase", "ni", "--no-progress"), lambda d: d / "i.ctf"),
        ("index (HDF5)", lambda d: ("index", original, "-o", d / "i.h5", "--phase", "ni", "--no-progress"), lambda d: d / "i.h5"),
        ("vbse", lambda d: ("vbse", original, "-o", d / "vb", "--quiet"), lambda d: d / "vb"),
        ("vbse --no-png", lambda d: ("vbse", original, "-o", d / "vb", "--quiet", "--no-png"), lambda d: d / "vb"),
        ("quality", lambda d: ("quality", original, "-o", d / "q", "--quiet"), lambda d: d / "q"),
        ("simulate", lambda d: ("simulate", "-o", d / "s.h5", "--shape", "10x10", "--no-progress"), lambda d: d / "s.h5"),
        ("simulate --ctf", lambda d: ("simulate", "-o", d / "s.h5", "--shape", "4x4", "--ctf", d / "t.ctf", "--no-progress"), lambda d: d / "s.h5"),
        ("pattern", lambda d: ("pattern", original, "--at", "1,1", "-o", d / "p.png"), lambda d: d / "p.png"),
        ("pattern --process", lambda d: ("pattern", original, "--at", "1,1", "--process", "detailed", "-o", d / "p.tif"), lambda d: d / "p.tif"),
        ("plot (CTF)", lambda d: ("plot", ctf, "--map", "ipf-z", "-o", d / "p.png"), lambda d: d / "p.png"),
        ("plot (map file)", lambda d: ("plot", original, "--map", "bse", "-o", d / "p.png"), lambda d: d / "p.png"),
        ("bands -o", lambda d: ("bands", original, "-o", d / "b.png"), lambda d: d / "b.png"),
    ]
    hdf5 = ("convert", "process", "index (HDF5)", "vbse --no-png", "simulate")
    for leave in (0, 8):
        for i, (name, argv, target) in enumerate(commands):
            if leave and not name.startswith(hdf5):
                continue  # a text or image writer fails the same way whatever is left: once is enough
            mount = workdir / "disk" / f"{leave}_{i}"

            def run(argv: Callable[[Path], tuple[Any, ...]] = argv, target: Callable[[Path], Path] = target, leave: int = leave,
                    mount: Path = mount) -> Any:  # fmt: skip
                with full_disk(mount, leave_kib=leave) as d:
                    proc = run_cli(*argv(d), timeout_s=TIMEOUT_S)
                    left = sorted(p.name for p in d.iterdir() if p.name != "filler")
                    if proc.returncode == 0:
                        out = target(d)
                        return proc, None if out.exists() and not any(n.endswith(".partial") for n in left) else f"partial-output: {left}"
                    if "no space left on device" not in proc.stderr:
                        return proc, f"the error does not say the disk is full: {proc.stderr[-200:]!r}"
                    return proc, f"partial-output: {left}" if left else None

            yield Case("full disk", f"kikuchi {name}, {leave} KiB free", run, cli=True)


# -- step 0/NaN ------------------------------------------------------------------------------------
def with_step(original: Path, dst: Path, step: float) -> Path:
    import h5py

    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(original, dst)
    with h5py.File(dst, "r+") as f:
        for name in ("X Resolution", "Y Resolution"):
            f[f"Scan/EBSD/Header/{name}"][()] = np.float32(step)
    return dst


def step_cases(original: Path, workdir: Path) -> Iterator[Case]:
    import kikuchi
    from kikuchi.imaging import quality_maps, vbse_maps
    from kikuchi.imaging.gallery import write_quality_gallery, write_vbse_gallery

    steps = {"0": 0.0, "nan": float("nan"), "-1": -1.0, "inf": float("inf"), "1e-30": 1e-30}
    for label, step in steps.items():
        path = with_step(original, workdir / "step" / f"step_{label}.h5", step)
        runs = [("vbse", "--no-png")] + ([("quality",)] if label in ("0", "nan", "-1") else []) + ([("vbse",)] if label == "0" else [])
        for run_args in runs:
            command = run_args[0]
            out = workdir / "step_out" / f"{command}_{label}_{len(run_args)}"

            def run(command: str = command, run_args: tuple[str, ...] = run_args, path: Path = path, out: Path = out) -> Any:
                proc = run_cli(command, path, "-o", out, "--quiet", *run_args[1:], timeout_s=TIMEOUT_S)
                if proc.returncode != 0:
                    return proc, f"partial-output: {sha(out)}" if out.exists() or leftovers(out) else None
                if not (out / ("vbse.h5" if command == "vbse" else "quality.h5")).exists():
                    return proc, "partial-output: the arrays are missing"
                if "--no-png" not in run_args and not (out / "index.html").exists():
                    return proc, "partial-output: no index.html"
                return proc

            yield Case("step 0/NaN", f"kikuchi {' '.join(run_args)} on a map of step {label} µm", run, cli=True)
    with kikuchi.open(original) as m:
        vb = vbse_maps(m, grid=(3, 3), progress=False)
        qm = quality_maps(m, progress=False)
    for label, step in steps.items():
        for what, maps, write in (("vbse", vb, write_vbse_gallery), ("quality", qm, write_quality_gallery)):
            out = workdir / "step_api" / f"{what}_{label}"

            def gallery(maps: Any = maps, write: Any = write, step: float = step, out: Path = out) -> str | None:
                import copy

                bad = copy.copy(maps)
                bad.step_um = (step, step)
                bad.settings = {**maps.settings, "source": f"{out.name}.h5"}
                index = write(bad, out)
                if not index.exists():
                    return "partial-output: no index.html"
                return None

            yield Case("step 0/NaN", f"{what} gallery of maps whose step is {label} µm", gallery)


# -- unbounded sizes -------------------------------------------------------------------------------
def unbounded_cases(original: Path, workdir: Path) -> Iterator[Case]:
    out = workdir / "unbounded"
    h, w = SHAPE
    cli_cases = [
        ("vbse --grid 1000x1000", ("vbse", original, "-o", out / "v1", "--grid", "1000x1000"), False),
        (f"vbse --grid {h + 1}x{w + 1} (a pixel too fine)", ("vbse", original, "-o", out / "v2", "--grid", f"{h + 1}x{w + 1}"), False),
        (f"vbse --grid 1x{w + 1}", ("vbse", original, "-o", out / "v3", "--grid", f"1x{w + 1}", "--rgb", "0:0,0:1,0:2"), False),
        (f"vbse --grid {h}x{w} --no-png (one pixel per region: allowed)", ("vbse", original, "-o", out / "v4", "--grid", f"{h}x{w}", "--no-png", "--quiet"), True),
        ("vbse --grid 21x21 --region-pngs", ("vbse", original, "-o", out / "v5", "--grid", "21x21", "--region-pngs"), False),
        ("vbse --grid 0x7", ("vbse", original, "-o", out / "v6", "--grid", "0x7"), False),
        ("vbse --grid 7x-1", ("vbse", original, "-o", out / "v7", "--grid", "7x-1"), False),
        ("vbse --diode-strip 0", ("vbse", original, "-o", out / "v8", "--diode-strip", "0"), False),
        ("vbse --diode-strip 5", ("vbse", original, "-o", out / "v9", "--diode-strip", "5"), False),
        ("simulate --pattern-shape 2000x2000", ("simulate", "-o", out / "s1.h5", "--pattern-shape", "2000x2000"), False),
        ("simulate --pattern-shape 100000x100000", ("simulate", "-o", out / "s2.h5", "--pattern-shape", "100000x100000"), False),
        ("simulate --pattern-shape 4097x8", ("simulate", "-o", out / "s3.h5", "--pattern-shape", "4097x8", "--shape", "1x1"), False),
        ("simulate --shape 100000x100000", ("simulate", "-o", out / "s4.h5", "--shape", "100000x100000"), False),
        ("simulate --shape 3000x3000", ("simulate", "-o", out / "s5.h5", "--shape", "3000x3000"), False),
        ("simulate --shape 0x5", ("simulate", "-o", out / "s6.h5", "--shape", "0x5"), False),
        ("simulate --step 0", ("simulate", "-o", out / "s7.h5", "--step", "0"), False),
        ("simulate --step nan", ("simulate", "-o", out / "s8.h5", "--step", "nan"), False),
        ("simulate --kv -20", ("simulate", "-o", out / "s9.h5", "--kv", "-20"), False),
        ("simulate --binning 0", ("simulate", "-o", out / "s10.h5", "--binning", "0"), False),
        ("simulate --grains 0", ("simulate", "-o", out / "s11.h5", "--grains", "0"), False),
        ("convert --binning 0", ("convert", original, "-o", out / "c1.h5", "--binning", "0"), False),
    ]
    for label, argv, expect_ok in cli_cases:
        target = Path(argv[argv.index("-o") + 1])

        def run(argv: tuple[Any, ...] = argv, target: Path = target, expect_ok: bool = expect_ok) -> Any:
            proc = run_cli(*argv, timeout_s=TIMEOUT_S)
            if proc.returncode != 0:
                return proc, f"partial-output: {leftovers(target)}" if leftovers(target) else None
            return proc, None if expect_ok else "ran on without a bound"

        yield Case("unbounded sizes", f"kikuchi {label}", run, cli=True, expect_ok=expect_ok)

    from kikuchi.simulate.synthetic import check_size

    for nav, shape in (((40, 50), (2000, 2000)), ((1, 1), (5000, 5000)), ((70000, 70000), (1, 1)), ((1, 1), (4096, 4096)), ((300, 300), (200, 200))):
        ok = nav[0] * nav[1] * shape[0] * shape[1] <= 1 << 32 and max(shape) <= 4096

        def api(nav: tuple[int, int] = nav, shape: tuple[int, int] = shape, ok: bool = ok) -> str | None:
            check_size(nav, shape)
            return None if ok else "ran on without a bound"

        yield Case("unbounded sizes", f"simulate API, map {nav} of {shape} patterns", api, expect_ok=ok)

    import argparse

    from kikuchi.cli._vbse import check_map_request

    class Huge:
        path = Path("huge.h5")
        step_um = (1.0, 1.0)
        pattern_shape = (480, 640)

        def __init__(self, nav: tuple[int, int]):
            self.nav_shape = nav

    for nav, grid in (((100000, 100000), (7, 7)), ((20000, 20000), (48, 64)), ((100, 100), (480, 640)), ((10, 10), (7, 7))):
        fits = nav == (10, 10)

        def memory(nav: tuple[int, int] = nav, grid: tuple[int, int] = grid, fits: bool = fits) -> str | None:
            check_map_request(Huge(nav), argparse.Namespace(no_png=False, region_pngs=False), grid=grid)
            return None if fits else "ran on without a bound"

        yield Case("unbounded sizes", f"vbse of a {nav} map on a {grid} grid: memory checked first", memory, expect_ok=fits)


# -- output is the input ---------------------------------------------------------------------------
def output_is_input_cases(original: Path, workdir: Path) -> Iterator[Case]:
    base = workdir / "same"
    base.mkdir(parents=True, exist_ok=True)
    src = base / "map.h5"
    shutil.copy(original, src)
    ctf = base / "truth.ctf"
    if not ctf.exists():
        run_cli("index", src, "-o", ctf, "--phase", "ni", "--no-progress", timeout_s=TIMEOUT_S)
    images = base / "images"
    images.mkdir(exist_ok=True)
    import tifffile

    for r in range(2):
        for c in range(2):
            tifffile.imwrite(images / f"{r}_{c}.tiff", np.full((16, 16), 100 + r * 2 + c, np.uint8))
    link = base / "link.h5"
    if not link.exists():
        link.symlink_to(src)
    hard = base / "hard.h5"
    if not hard.exists():
        os.link(src, hard)
    ctf_link = base / "truth_link.ctf"
    if not ctf_link.exists():
        ctf_link.symlink_to(ctf)

    def names(p: Path) -> list[Path]:
        return [p, Path(os.path.relpath(p)), p.parent / "." / p.name, p.parent / ".." / p.parent.name / p.name]

    commands: list[tuple[str, Callable[[Path], tuple[Any, ...]], Path]] = []
    for out in names(src) + [link, hard]:
        commands.append(("process", lambda o: ("process", src, "-o", o, "--no-progress"), out))
    for out in (src, names(src)[3], link, hard):
        commands += [
            ("index", lambda o: ("index", src, "-o", o, "--phase", "ni", "--no-progress"), out),
            ("convert", lambda o: ("convert", src, "-o", o, "--no-progress"), out),
        ]
    for out in (src, hard):
        commands += [
            ("vbse", lambda o: ("vbse", src, "-o", o, "--quiet"), out),
            ("quality", lambda o: ("quality", src, "-o", o, "--quiet"), out),
        ]
    png = base / "figure.png"
    tif = base / "background.tif"
    tifffile.imwrite(tif, np.full(SHAPE, 100, np.uint8))
    commands += [
        ("pattern", lambda o: ("pattern", src, "--at", "0,0", "-o", o), src),
        ("pattern (static background file)", lambda o: ("pattern", src, "--at", "0,0", "--process", "detailed", "--static-background", o, "-o", o), tif),
        ("process (static background file)", lambda o: ("process", src, "--static-background", o, "-o", o, "--no-progress"), tif),
        ("plot", lambda o: ("plot", ctf, "--map", "bc", "-o", o), ctf),
        ("plot (link)", lambda o: ("plot", ctf_link, "--map", "bc", "-o", o), ctf),
        ("bands", lambda o: ("bands", src, "-o", o), src),
        ("index --figure (the input)", lambda o: ("index", src, "-o", base / "i.ctf", "--phase", "ni", "--figure", o, "--no-progress"), src),
        ("index --figure (the output)", lambda o: ("index", src, "-o", o, "--phase", "ni", "--figure", o, "--no-progress"), png),
        ("convert (images folder)", lambda o: ("convert", images, "-o", o, "--step", "1", "--no-progress"), images),
        ("convert --ctf", lambda o: ("convert", images, "-o", o, "--ctf", o, "--no-progress"), ctf),
        ("simulate --from-map", lambda o: ("simulate", "--from-map", o, "-o", o, "--no-progress"), ctf),
        ("simulate --ctf = -o", lambda o: ("simulate", "-o", o, "--ctf", o, "--shape", "2x2", "--no-progress"), base / "t.h5"),
        ("simulate --from-map --ctf", lambda o: ("simulate", "--from-map", o, "-o", base / "s.h5", "--ctf", o, "--no-progress"), ctf),
    ]
    for name, argv, out in commands:

        def run(argv: Callable[[Path], tuple[Any, ...]] = argv, out: Path = out) -> Any:
            before = {p: sha(p) for p in (src, ctf, images, out)}
            proc = run_cli(*argv(out), timeout_s=TIMEOUT_S)
            after = {p: sha(p) for p in before}
            if before != after:
                return proc, "silent-wrong: an input was changed"
            if proc.returncode == 0:
                return proc, "the output was the input and the command ran"
            partial = out.with_name(f".{out.name}.partial")
            return proc, f"partial-output: {partial.name}" if partial.exists() else None

        yield Case("output is the input", f"kikuchi {name}, -o {out}", run, cli=True)


# -- the section -----------------------------------------------------------------------------------
def cases(workdir: Path) -> Iterator[Case]:
    original = make_map(workdir)
    variants = {
        "u8 gzip+shuffle": rechunk(original, workdir / "variants" / "u8.h5", chunk_patterns=16, compression="gzip", compression_opts=1, shuffle=True),
        "u16 gzip": rechunk(original, workdir / "variants" / "u16.h5", chunk_patterns=13, dtype="uint16", compression="gzip", compression_opts=4),
        "f32 gzip+shuffle": rechunk(original, workdir / "variants" / "f32.h5", chunk_patterns=21, dtype="float32", compression="gzip", shuffle=True),
        "u8 gzip, 1 pattern a chunk": rechunk(original, workdir / "variants" / "one.h5", chunk_patterns=1, compression="gzip"),
    }
    yield from corrupt_chunk_api(variants, workdir)
    yield from parallel(corrupt_chunk_cli(original, workdir))
    yield from truncated_cases(original, workdir)
    yield from parallel(full_disk_cases(original, workdir))
    yield from parallel(step_cases(original, workdir))
    yield from parallel(unbounded_cases(original, workdir))
    yield from parallel(output_is_input_cases(original, workdir))
