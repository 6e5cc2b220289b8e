"""Pattern files of every vendor, mutated: truncated, bytes flipped, deleted and duplicated, HDF5 fields deleted, duplicated and retyped.

Every file of ``../shared/data/vendor_patterns`` (HDF5 and binary), kikuchipy's
h5ebsd and a kikuchi map file made here are read once as they are (the
reference), then mutated and read again through ``kikuchi.open``: the map, every
pattern, the geometry, ``describe()`` (what ``kikuchi info`` shows), the
orientation map. The property checked (also by ``tests/io/test_fuzz_pattern_files.py``):

* the mutated file reads **equal to the reference** at every map point whose
  pattern bytes the mutation did not touch, or
* it reads **with a warning** (``MapFileWarning``) saying what was odd, or
* it is refused with **a one-line error** of kikuchi's error types;

never another exception, a crash or a hang, and never patterns that differ
(moved, missing, other values where the bytes were not touched) or geometry no
instrument writes (a step of 0, a tilt of 1e300) without a word: those are
judged ``silent-wrong``. Each case runs in a worker process (a corrupt HDF5
file can crash the HDF5 library; the worker is restarted and the case judged
``other``). The image-folder naming parser is fuzzed too
(:func:`image_folder_cases`).
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.hostile_cases._case import Case, Worker  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
VENDOR = SHARED / "vendor_patterns"

#: Seconds one mutated file may take to open and read (they are tiny: a hang otherwise).
CASE_TIMEOUT_S = 20.0


# -- the files -----------------------------------------------------------------------------
def original_files(workdir: Path) -> list[Path]:
    """The unmutated files: every pattern file of vendor_patterns/, kikuchipy's h5ebsd and a kikuchi map file made here.

    A NORDIF acquisition is its folder (``Pattern.dat`` and ``Setting.txt`` are mutated).
    """
    out: list[Path] = []
    if VENDOR.is_dir():
        manifest = json.loads((VENDOR / "manifest.json").read_text())["files"]
        for name in sorted(manifest):
            path = VENDOR / name
            out.append(path.parent if path.name.lower() == "pattern.dat" else path)
        out.append(VENDOR / "real" / "kikuchipy-data_si_in.h5")
    small = SHARED / "kikuchipy" / "nickel_ebsd_small.h5"
    if small.is_file():
        out.append(small)
    out.append(make_map_file(workdir / "made" / "kikuchi_map.h5"))
    return [p for p in out if p.exists()]


def make_map_file(path: Path) -> Path:
    """A small kikuchi map file with every optional part (PC, Euler angles, phases, processing, header attributes)."""
    from kikuchi.io.mapstore import MapWriter

    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    patterns = rng.integers(0, 256, size=(3, 4, 12, 16), dtype=np.uint8)
    for r in range(3):
        for c in range(4):
            patterns[r, c, 0, :3] = (r * 4 + c, r, c)
    with MapWriter(path, nav_shape=(3, 4), pattern_shape=(12, 16), dtype="uint8", step_um=(0.5, 0.5), chunk_patterns=5) as w:
        w.write_rows(0, patterns)
        w.set_static_background(np.full((12, 16), 100, np.uint16))
        w.set_pattern_centre(0.5, 0.3, 0.6, convention="bruker")
        w.set_euler(rng.uniform(0, 1, size=(3, 4, 3)))
        w.set_phases([{"name": "Ni", "space_group": 225, "lattice": [0.35236, 0.35236, 0.35236, 90, 90, 90]}])
        w.set_processing({"static": True, "sigma": 4})
        w.set_attrs(SampleTilt=70.0, CameraTilt=5.0, AcceleratingVoltage=20.0, Binning=1, PixelSize=50.0)
    return path


def open_target(path: Path) -> Path:
    """What ``kikuchi.open`` is given for an original: the file, or ``Pattern.dat`` of a NORDIF folder."""
    return path / "Pattern.dat" if path.is_dir() else path


def is_hdf5(path: Path) -> bool:
    if path.is_dir():
        return False
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


# -- the reference: what the unmutated file reads ----------------------------------------------
@dataclass
class Reference:
    """What an unmutated file reads as, and where each stored pattern's bytes lie in it."""

    path: Path
    format: str
    dataset: str
    nav_shape: tuple[int, int]
    pattern_shape: tuple[int, int]
    index_map: np.ndarray
    patterns: np.ndarray  # (rows, cols, h, w) float64, NaN where no pattern
    ranges: np.ndarray  # (n_patterns, 2) byte range [start, stop) in the file of each stored pattern (its chunk if compressed)
    file_bytes: int
    others: dict[str, Reference]  # the file's other pattern datasets, by name

    def touched_points(self, lo: int, hi: int) -> np.ndarray:
        """(rows, cols) bool: map points whose pattern bytes overlap the byte range [lo, hi) of the file."""
        hit = (self.ranges[:, 0] < hi) & (self.ranges[:, 1] > lo)
        have = self.index_map >= 0
        out = np.zeros(self.nav_shape, dtype=bool)
        out[have] = hit[self.index_map[have]]
        return out

    def data_intervals(self) -> list[tuple[int, int]]:
        """The byte ranges of pattern data, merged."""
        out: list[tuple[int, int]] = []
        for a, b in sorted(map(tuple, self.ranges.tolist())):
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
        return out


def _as_float_map(m: Any) -> np.ndarray:
    data = np.asarray(m.read_all(), dtype=np.float64)
    data[m.index_map < 0] = np.nan
    return data


def _pattern_ranges(m: Any, file_path: Path) -> np.ndarray:
    """Byte range of each stored pattern in the file: HDF5 storage info, else the pattern's bytes found in the file."""
    n = m.n_patterns
    reader = getattr(m, "_reader", None)
    ds = getattr(reader, "ds", None)
    if ds is not None:
        per = int(np.prod(ds.shape[1:])) * ds.dtype.itemsize
        if ds.chunks is None:
            start = ds.id.get_offset()
            if start is None:
                return np.zeros((n, 2), dtype=np.int64)
            k = np.arange(n, dtype=np.int64)
            return np.stack([start + k * per, start + (k + 1) * per], axis=1)
        ranges = np.zeros((n, 2), dtype=np.int64)
        per_chunk = ds.chunks[0]

        def visit(info: Any) -> None:
            k = info.chunk_offset[0]
            ranges[k : k + per_chunk] = (info.byte_offset, info.byte_offset + info.size)

        ds.id.chunk_iter(visit)
        return ranges
    content = file_path.read_bytes()
    ranges = np.zeros((n, 2), dtype=np.int64)
    for i in range(n):
        raw = np.ascontiguousarray(m.read(i, i + 1)[0]).astype(m.dtype.newbyteorder("<")).tobytes()
        at = content.find(raw)
        ranges[i] = (at, at + len(raw)) if at >= 0 else (0, len(content))
    return ranges


def reference(path: Path, *, dataset: str | None = None) -> Reference:
    """Read the unmutated ``path`` (every pattern dataset) as the truth mutations are compared with."""
    import kikuchi

    target = open_target(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with kikuchi.open(target, dataset=dataset) as m:
            file_path = m.path
            ref = Reference(
                path=path, format=m.format, dataset=m.dataset, nav_shape=m.nav_shape, pattern_shape=m.pattern_shape,
                index_map=m.index_map.copy(), patterns=_as_float_map(m), ranges=_pattern_ranges(m, file_path),
                file_bytes=file_path.stat().st_size, others={},
            )
            names = [d for d in m.datasets if d != m.dataset]
    if dataset is None:
        for name in names:
            ref.others[name] = reference(path, dataset=name)
    return ref


# -- reading a mutant ------------------------------------------------------------------------
#: Geometry no instrument writes: read without a word, it is a silent wrong result.
def _implausible(m: Any) -> list[str]:
    out = []
    step = m.step_um
    if not all(np.isfinite(s) and (s > 0 or n == 1) for s, n in zip(step, m.nav_shape)):
        out.append(f"step {step}")
    for name in ("sample_tilt_deg", "camera_tilt_deg"):
        v = getattr(m, name)
        if not (np.isfinite(v) and -90 <= v <= 90):
            out.append(f"{name} {v}")
    kv = m.kv
    if kv is not None and not (np.isfinite(kv) and 0 < kv <= 1000):
        out.append(f"kv {kv}")
    px = m.pixel_size_um
    if px is not None and not (np.isfinite(px) and 0 < px < 1e5):
        out.append(f"pixel_size_um {px}")
    pc = m.pattern_centre
    if pc is not None:
        for name in ("pcx", "pcy", "dd"):
            v = np.asarray(getattr(pc, name), dtype=np.float64)
            if np.any(np.isinf(v)) or np.nanmax(np.abs(v), initial=0) > 1e3:
                out.append(f"pattern centre {name} of {np.nanmax(np.abs(v), initial=0):g}")
    return out


def compare(ref: Reference, m: Any, touched: np.ndarray | None) -> list[str]:
    """What differs between the mutant ``m`` and the reference, at points whose bytes were not touched."""
    if m.dataset != ref.dataset and m.dataset in ref.others:
        ref = ref.others[m.dataset]
    if (m.nav_shape, m.pattern_shape) != (ref.nav_shape, ref.pattern_shape):
        return [f"map {m.nav_shape} of {m.pattern_shape} patterns, not {ref.nav_shape} of {ref.pattern_shape}"]
    got = _as_float_map(m)
    have_ref, have = ref.index_map >= 0, m.index_map >= 0
    out = []
    lost = have_ref & ~have
    if lost.any():
        out.append(f"{int(lost.sum())} points lost their pattern, e.g. {tuple(int(v) for v in np.argwhere(lost)[0])}")
    gained = have & ~have_ref
    if gained.any():
        out.append(f"{int(gained.sum())} points without a pattern have one, e.g. {tuple(int(v) for v in np.argwhere(gained)[0])}")
    both = have & have_ref
    same = np.all((got == ref.patterns) | (np.isnan(got) & np.isnan(ref.patterns)), axis=(2, 3))
    changed = both & ~same
    if touched is not None:
        changed &= ~touched
    if changed.any():
        out.append(f"{int(changed.sum())} patterns differ where the mutation did not touch them, e.g. {tuple(int(v) for v in np.argwhere(changed)[0])}")
    return out


def read_mutant(target: Path, ref: Reference, touched: np.ndarray | None, **options: Any) -> str | None:
    """Open and read ``target`` every way a command does; return a verdict when it is silently wrong.

    Exceptions propagate (the judge classifies them); warnings are left to the caller's filters.
    """
    import kikuchi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with kikuchi.open(target, **options) as m:
            differences = compare(ref, m, touched)
            info = m.describe()
            json.dumps(info, default=str)
            m.orientation_map()
            for value in m.point_data().values():
                np.asarray(value[()])
            bad = _implausible(m)
            m.bse_map  # noqa: B018 - read as `kikuchi info` and `vbse` do
            if m.n_patterns:
                m.read_chunk(0)
                m.read_indices([m.n_patterns - 1, 0])
                r, c = np.argwhere(m.index_map >= 0)[0] if (m.index_map >= 0).any() else (0, 0)
                if m.index_map[r, c] >= 0:
                    m.pattern(int(r), int(c))
    said = [w for w in caught if issubclass(w.category, UserWarning)]
    for w in caught:  # back to the caller (the judge counts them)
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if said:
        return None
    problems = differences + [f"implausible {b}" for b in bad]
    if problems:
        return "silent-wrong: " + "; ".join(problems)
    return None


# -- mutations ---------------------------------------------------------------------------------
@dataclass
class Mutation:
    """One change to one file of an original: ``apply(workdir) -> path to open``; ``lo, hi``: bytes touched in the original."""

    cls: str
    label: str
    original: Path
    member: str  # the file changed: "" for the file itself, a name inside a NORDIF folder
    apply: Callable[[Path], Path]
    lo: int = 0
    hi: int = 0  # hi == lo: no pattern bytes touched (structural HDF5 changes)


def _copy_original(original: Path, dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if original.is_dir():
        shutil.copytree(original, dest)
        for p in dest.iterdir():
            p.chmod(0o644)
    else:
        shutil.copyfile(original, dest)
        dest.chmod(0o644)
    return dest


def _byte_mutation(cls: str, label: str, original: Path, member: str, edit: Callable[[bytes], bytes], lo: int, hi: int) -> Mutation:
    def apply(dest: Path) -> Path:
        copy = _copy_original(original, dest / original.name)
        file = copy / member if member else copy
        file.write_bytes(edit(file.read_bytes()))
        return open_target(copy)

    return Mutation(cls, label, original, member, apply, lo, hi)


def byte_mutations(original: Path, ref: Reference, rng: np.random.Generator, *, per_kind: int = 6) -> list[Mutation]:
    """Truncations, byte flips in headers and in data, deleted and duplicated ranges, filled ranges, appended bytes."""
    member = "Pattern.dat" if original.is_dir() else ""
    file = original / member if member else original
    size = file.stat().st_size
    data = ref.data_intervals()
    first_data = data[0][0] if data else size
    header_points = [o for o in range(min(size, 4096)) if not any(a <= o < b for a, b in data)]
    tail_points = [o for o in range(max(0, size - 4096), size) if not any(a <= o < b for a, b in data)]
    header_points = sorted(set(header_points) | set(tail_points)) or [0]
    out: list[Mutation] = []
    name = original.name + (f"/{member}" if member else "")

    cuts = sorted(set([1, 8, first_data, first_data + 1, size - 1, size // 2] + rng.integers(1, size, per_kind).tolist()))
    for cut in cuts:
        if 0 < cut < size:
            out.append(_byte_mutation("truncated", f"{name} cut at byte {cut} of {size}", original, member, lambda b, c=cut: b[:c], cut, size))
    for _ in range(per_kind * 2):
        k = int(rng.integers(1, 5))
        where = sorted(rng.choice(header_points, size=min(k, len(header_points)), replace=False).tolist())
        values = rng.integers(0, 256, len(where)).tolist()

        def flip(b: bytes, where=where, values=values) -> bytes:
            arr = bytearray(b)
            for o, v in zip(where, values):
                arr[o] = v if v != arr[o] else arr[o] ^ 0xFF
            return bytes(arr)

        out.append(_byte_mutation("header bytes changed", f"{name} bytes {where} set to {values}", original, member, flip, where[0], where[-1] + 1))
    for a, b in data[: per_kind]:
        o = int(rng.integers(a, b))
        out.append(_byte_mutation("pattern bytes changed", f"{name} byte {o} (pattern data) flipped", original, member,
                                  lambda x, o=o: x[:o] + bytes([x[o] ^ 0x5A]) + x[o + 1 :], o, o + 1))
    for _ in range(per_kind):
        a = int(rng.integers(0, size - 1))
        n = int(rng.choice([1, 2, 4, 8, 16, 100, 1000]))
        out.append(_byte_mutation("bytes deleted", f"{name} bytes {a}..{a + n - 1} deleted", original, member,
                                  lambda x, a=a, n=n: x[:a] + x[a + n :], a, size))
    for _ in range(per_kind):
        a = int(rng.integers(0, size - 1))
        n = int(rng.choice([1, 2, 4, 8, 16, 100, 1000]))
        out.append(_byte_mutation("bytes duplicated", f"{name} bytes {a}..{a + n - 1} duplicated", original, member,
                                  lambda x, a=a, n=n: x[: a + n] + x[a : a + n] + x[a + n :], a, size))
    for fill in (0x00, 0xFF):
        a = int(rng.choice(header_points))
        n = int(rng.choice([4, 8, 64]))
        out.append(_byte_mutation("header bytes changed", f"{name} bytes {a}..{a + n - 1} set to {fill:#04x}", original, member,
                                  lambda x, a=a, n=n, fill=fill: x[:a] + bytes([fill]) * len(x[a : a + n]) + x[a + n :], a, a + n))
    out.append(_byte_mutation("bytes appended", f"{name} 1000 random bytes appended", original, member,
                              lambda x: x + rng.bytes(1000), size, size))
    return out


def nordif_setting_mutations(original: Path) -> list[Mutation]:
    """NORDIF ``Setting.txt``: lines deleted, duplicated, values replaced by words, negative or huge numbers."""
    text = (original / "Setting.txt").read_bytes().decode("latin-1")
    lines = text.splitlines(keepends=True)
    out = []
    for i, line in enumerate(lines):
        if "\t" not in line:
            continue
        key = line.split("\t")[0].strip()
        for how, new in (
            ("deleted", ""),
            ("duplicated", line + line),
            ("given a word", line.split("\t")[0] + "\tseventy\t" + "\t".join(line.split("\t")[2:])),
            ("negative", line.split("\t")[0] + "\t-3\t" + "\t".join(line.split("\t")[2:])),
            ("huge", line.split("\t")[0] + "\t1e300\t" + "\t".join(line.split("\t")[2:])),
        ):
            edited = "".join(lines[:i]) + new + "".join(lines[i + 1 :])
            out.append(_byte_mutation("text fields changed", f"{original.name}/Setting.txt line {i + 1} ({key}) {how}", original,
                                      "Setting.txt", lambda b, e=edited: e.encode("latin-1"), 0, 0))
    return out


# -- HDF5 structural mutations -------------------------------------------------------------------
def _h5_objects(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Every dataset path, and every (object path, attribute name), of an HDF5 file."""
    import h5py

    datasets: list[str] = []
    attrs: list[tuple[str, str]] = []
    with h5py.File(path, "r") as f:
        attrs += [("/", a) for a in f.attrs]

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                datasets.append(name)
            attrs.extend((name, a) for a in obj.attrs)

        f.visititems(visit)
    return datasets, attrs


def _h5_mutation(cls: str, label: str, original: Path, edit: Callable[[Any], None], lo: int = 0, hi: int = 0) -> Mutation:
    def apply(dest: Path) -> Path:
        import h5py

        copy = _copy_original(original, dest / original.name)
        with h5py.File(copy, "r+") as f:
            edit(f)
        return copy

    return Mutation(cls, label, original, "", apply, lo, hi)


def retyped_values() -> list[tuple[str, Any]]:
    """Replacement values for a dataset or attribute: a word, an empty array, NaN, a huge number, a negative one, a wrong shape."""
    return [
        ("a word", np.bytes_(b"seventy")),
        ("empty", np.zeros((0,), dtype=np.float32)),
        ("NaN", np.float64(np.nan)),
        ("1e300", np.float64(1e300)),
        ("-5", np.int32(-5)),
        ("two values", np.array([1.5, 2.5])),
        ("a 2-D array", np.ones((2, 3), dtype=np.float32)),
        ("non-UTF-8 bytes", np.bytes_(b"\xff\xfe\x00bad")),
        ("JSON garbage", np.bytes_(b"{not json")),
    ]


def h5_mutations(original: Path, *, retype_every: int = 1) -> list[Mutation]:
    """Every dataset and attribute deleted; each retyped to bad values; scans, datasets and fields duplicated."""
    import h5py

    datasets, attrs = _h5_objects(original)
    out: list[Mutation] = []
    name = original.name
    big = {d for d in datasets if _dataset_size(original, d) > 4096}
    pattern_ds = _pattern_dataset_names(original)

    for d in datasets:
        out.append(_h5_mutation("HDF5 fields deleted", f"{name}: dataset '{d}' deleted", original, lambda f, d=d: f.__delitem__(d)))
    for obj, a in attrs:
        out.append(_h5_mutation("HDF5 fields deleted", f"{name}: attribute '{a}' of '{obj}' deleted", original,
                                lambda f, obj=obj, a=a: f[obj].attrs.__delitem__(a)))
    small = [d for d in datasets if d not in big]
    for i, d in enumerate(small):
        for how, value in retyped_values()[i % retype_every :: retype_every]:
            def edit(f: Any, d: str = d, value: Any = value) -> None:
                del f[d]
                f[d] = value

            out.append(_h5_mutation("HDF5 fields retyped", f"{name}: dataset '{d}' replaced by {how}", original, edit))

        def to_group(f: Any, d: str = d) -> None:
            del f[d]
            f.create_group(d)

        out.append(_h5_mutation("HDF5 fields retyped", f"{name}: dataset '{d}' replaced by a group", original, to_group))
    for obj, a in attrs:
        for how, value in retyped_values()[:: max(1, retype_every)]:
            def edit(f: Any, obj: str = obj, a: str = a, value: Any = value) -> None:
                f[obj].attrs[a] = value

            out.append(_h5_mutation("HDF5 fields retyped", f"{name}: attribute '{a}' of '{obj}' set to {how}", original, edit))
    for d in pattern_ds:
        for how, dtype in (("float32", np.float32), ("int64", np.int64), ("bool", np.bool_), ("big-endian uint16", ">u2")):
            def retype(f: Any, d: str = d, dtype: Any = dtype) -> None:
                values = f[d][()]
                del f[d]
                f[d] = values.astype(dtype)

            out.append(_h5_mutation("HDF5 fields retyped", f"{name}: pattern dataset '{d}' rewritten as {how}", original, retype))

        def shorter(f: Any, d: str = d) -> None:
            values = f[d][()]
            del f[d]
            f[d] = values[: max(1, values.shape[0] // 2)]

        out.append(_h5_mutation("HDF5 fields retyped", f"{name}: pattern dataset '{d}' cut to half its patterns", original, shorter))

        def longer(f: Any, d: str = d) -> None:
            values = f[d][()]
            del f[d]
            f[d] = np.concatenate([values, values[:2]])

        out.append(_h5_mutation("HDF5 fields retyped", f"{name}: pattern dataset '{d}' given 2 extra patterns", original, longer))

        def flat(f: Any, d: str = d) -> None:
            values = f[d][()]
            del f[d]
            f[d] = values.reshape(values.shape[0], -1)

        out.append(_h5_mutation("HDF5 fields retyped", f"{name}: pattern dataset '{d}' stored 2-D", original, flat))
    with h5py.File(original, "r") as f:
        top = [k for k in f if isinstance(f[k], h5py.Group)]
    for g in top:
        out.append(_h5_mutation("HDF5 fields duplicated", f"{name}: group '{g}' copied to '{g} copy'", original,
                                lambda f, g=g: f.copy(f[g], f"{g} copy")))
        out.append(_h5_mutation("HDF5 fields duplicated", f"{name}: group '{g}' copied to ' 0'", original,
                                lambda f, g=g: f.copy(f[g], " 0")))
    for d in small[:: max(1, len(small) // 12 or 1)]:
        parent, leaf = d.rsplit("/", 1) if "/" in d else ("/", d)

        def twin(f: Any, parent: str = parent, leaf: str = leaf, d: str = d) -> None:
            f[parent].attrs[leaf] = f[d][()]
            f[f"{parent}/ {leaf}"] = f[d][()] if f[d].ndim == 0 else np.asarray(f[d][()])[::-1]

        out.append(_h5_mutation("HDF5 fields duplicated", f"{name}: dataset '{d}' also an attribute, and a reversed copy named ' {leaf}'",
                                original, twin))
    return out


def _dataset_size(path: Path, d: str) -> int:
    import h5py

    with h5py.File(path, "r") as f:
        return int(f[d].size)


def _pattern_dataset_names(path: Path) -> list[str]:
    import h5py

    out = []
    with h5py.File(path, "r") as f:
        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset) and obj.ndim == 3 and obj.size > 1000 and obj.dtype.kind in "uif":
                out.append(name)

        f.visititems(visit)
    return out


# -- running a case in a worker process -----------------------------------------------------------
_WORKER = Worker("benchmarks.hostile_cases.pattern_files")
_REFERENCES: dict[str, Reference] = {}


def _reference_cached(original: Path) -> Reference:
    key = str(original)
    if key not in _REFERENCES:
        _REFERENCES[key] = reference(original)
    return _REFERENCES[key]


def run_request(request: dict[str, Any]) -> dict[str, Any]:
    """In the worker: read one mutant; the outcome as JSON (exception class and bases, message, warnings, verdict)."""
    ref = _reference_cached(Path(request["original"]))
    lo, hi = request["lo"], request["hi"]
    touched = ref.touched_points(lo, hi) if hi > lo else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            verdict = read_mutant(Path(request["target"]), ref, touched)
            error = None
        except Exception as exc:  # noqa: BLE001 - reported to the judge as it was
            verdict = None
            error = {
                "cls": type(exc).__name__,
                "module": type(exc).__module__,
                "base": next((b.__name__ for b in (ValueError, OSError, IndexError) if isinstance(exc, b)), None),
                "message": str(exc),
            }
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return {"verdict": verdict, "error": error, "warnings": said}


def _serve() -> None:
    """The worker's loop: one JSON request a line on stdin, one answer line ``@@ {...}`` on stdout."""
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing else on the answer channel
    for line in sys.stdin:
        try:
            answer = run_request(json.loads(line))
        except BaseException as exc:  # noqa: BLE001 - the reference itself failed: say so
            answer = {"verdict": f"reference unreadable: {type(exc).__name__}: {exc}"}
        out.write("@@ " + json.dumps(answer, default=str) + "\n")
        out.flush()


def replay(answer: dict[str, Any]) -> str | None:
    """Turn a worker's answer back into what the judge sees: warnings warned, the error raised, the verdict returned."""
    from kikuchi.io.source import MapFileWarning

    for message in answer.get("warnings", []):
        warnings.warn(message, MapFileWarning, stacklevel=2)
    error = answer.get("error")
    if error:
        base = {"ValueError": ValueError, "OSError": OSError, "IndexError": IndexError}.get(error["base"] or "", RuntimeError)
        raise type(error["cls"], (base,), {"__module__": error["module"]})(error["message"])
    return answer.get("verdict")


def mutation_case(m: Mutation, workdir: Path, counter: list[int]) -> Case:
    def run() -> str | None:
        counter[0] += 1
        dest = workdir / "mutants" / str(counter[0] % 4)
        target = m.apply(dest)
        answer = _WORKER.ask(
            {"original": str(m.original), "target": str(target), "lo": m.lo, "hi": m.hi},
            CASE_TIMEOUT_S,
        )
        return replay(answer)

    return Case(m.cls, m.label, run, timeout_s=CASE_TIMEOUT_S)


# -- the sweep -----------------------------------------------------------------------------------
def all_mutations(workdir: Path, *, seed: int = 15, per_kind: int = 6) -> Iterator[Mutation]:
    rng = np.random.default_rng(seed)
    for original in original_files(workdir):
        ref = reference(original)
        yield from byte_mutations(original, ref, rng, per_kind=per_kind)
        if original.is_dir():
            yield from nordif_setting_mutations(original)
        if is_hdf5(original):
            yield from h5_mutations(original, retype_every=3)




# -- the image-folder naming parser --------------------------------------------------------------
@dataclass
class NameSet:
    """File names of a folder of pattern images and the map position each one stands for (None: not a pattern)."""

    label: str
    names: dict[str, tuple[int, int] | None]
    second: set[str]  # names of a second map (another prefix)


def _aztec(r: int, c: int, prefix: str = "", ext: str = ".tiff", pad: int = 0) -> str:
    return f"{prefix}{r:0{pad}d}_{c:0{pad}d}{ext}"


def _edax(r: int, c: int, prefix: str = "", ext: str = ".png") -> str:
    return f"{prefix}x{c}y{r}{ext}"


def random_name_set(rng: np.random.Generator, k: int) -> NameSet:
    """A folder's names: a map in one scheme, then one or more of: a second prefix, junk, gaps, duplicates, odd extensions."""
    rows, cols = int(rng.integers(1, 5)), int(rng.integers(1, 6))
    scheme = ("aztec", "edax")[k % 2]
    prefix = str(rng.choice(["", "Map1_", "Map Data 2_", "scan-", "A_"]))
    ext = str(rng.choice([".tiff", ".tif", ".TIF", ".png", ".bmp"]))
    make = _aztec if scheme == "aztec" else _edax
    names: dict[str, tuple[int, int] | None] = {make(r, c, prefix, ext): (r, c) for r in range(rows) for c in range(cols)}
    what = []
    second: set[str] = set()
    for change in rng.choice(["second prefix", "junk", "gap", "duplicate", "odd extension", "background", "other scheme", "none"],
                             size=int(rng.integers(1, 3)), replace=False):
        what.append(str(change))
        if change == "second prefix":
            # another prefix in front, so the scheme's separator before x#y# (or ROW_COL) stays: "Map Data 2_" + "B"
            # made "Map Data 2_Bx0y0", a name in no scheme, and a folder left with only it was flagged as silently wrong
            other = "B" + prefix if prefix else "Other_"
            r, c = int(rng.integers(0, rows)), int(rng.integers(0, cols))
            names[make(r, c, other, ext)] = (r, c)
            second.add(make(r, c, other, ext))
        elif change == "junk":
            names[str(rng.choice(["notes.txt", "Thumbs.db", "README", "pattern.tiff", "extra_1.tiff", "x_y.png"]))] = None
        elif change == "gap" and len(names) > 1:
            names.pop(list(names)[int(rng.integers(0, len(names)))])
        elif change == "duplicate" and scheme == "aztec":
            r, c = int(rng.integers(0, rows)), int(rng.integers(0, cols))
            names[_aztec(r, c, prefix, ext, pad=3)] = (r, c)
        elif change == "odd extension":
            r, c = int(rng.integers(0, rows)), int(rng.integers(0, cols))
            names[make(r, c, prefix, str(rng.choice([".jpg", ".tiff.bak", ".png", ""])))] = (r, c)
        elif change == "background":
            names[f"{prefix}background{ext}"] = None
        elif change == "other scheme":
            other = _edax if scheme == "aztec" else _aztec
            names[other(rows, cols, "", ext)] = (rows, cols)
    return NameSet(f"{scheme} {rows}x{cols} {prefix!r}{ext}, {' + '.join(what)}: {len(names)} names", names, second)


def check_name_set(folder: Path, name_set: NameSet) -> str | None:
    """Make the folder (empty files: the parser reads names only), open it, place its images; a verdict when silently wrong."""
    from kikuchi.io.imagefolder import IMAGE_EXTENSIONS, open_image_source

    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in name_set.names:
        (folder / name).write_bytes(b"")
    with open_image_source(folder) as src:
        taken = set(src.names)
        if src.rows is None:
            positioned = [n for n, pos in name_set.names.items() if pos is not None and n in taken]
            if len(positioned) >= max(1, len(taken) - len(positioned)) and positioned:
                return f"silent-wrong: {len(positioned)} of {len(taken)} names give map positions, read in sorted order without a word"
            return None
        src.positions()
        wrong = []
        for name, r, c in zip(src.names, src.rows, src.cols):
            truth = name_set.names.get(name)
            if truth is None or truth != (int(r), int(c)):
                wrong.append(f"{name} at ({r}, {c})")
        if wrong:
            return f"silent-wrong: {', '.join(wrong[:3])}"
        if taken & name_set.second and any(name_set.names[n] is not None for n in taken - name_set.second):
            return "silent-wrong: two prefixes read as one map"
        ext_ok = {n for n, pos in name_set.names.items() if pos is not None and "." + n.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS}
        left = ext_ok - taken - {n for n in ext_ok if "background" in n.lower()}
        if left:
            return f"silent-wrong: {sorted(left)[:3]} left out"
    return None


def image_folder_cases(workdir: Path, *, n: int = 300, seed: int = 15) -> Iterator[Case]:
    rng = np.random.default_rng(seed)
    for k in range(n):
        name_set = random_name_set(rng, k)
        folder = workdir / "folders" / f"f{k % 4}"
        yield Case("image-folder names", name_set.label, lambda s=name_set, d=folder: check_name_set(d, s))


def cases(workdir: Path) -> Iterator[Case]:
    counter = [0]
    try:
        for m in all_mutations(workdir):
            yield mutation_case(m, workdir, counter)
    finally:
        _WORKER.stop()
    yield from image_folder_cases(workdir)
