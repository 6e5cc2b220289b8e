"""Bad patterns in a map, and misuse of the processing, imaging, band and indexing functions.

A bad pattern is a bad point of the map, never the end of the run. A small
synthetic Ni map (``kikuchi.simulate``) gets patterns that hold no signal:
all zero (a dropped frame), saturated (all at the maximum of the type),
constant, NaN or infinite values in float maps; or a static background that
cannot divide (zero, NaN, negative); or every point bad; or a boolean pattern
dataset. Each stage runs on it, through the Python API (fast, many variants)
and through the ``kikuchi`` command (one variant of each class per command),
and the case checks what came out against the same run on the map without the
bad points:

* ``process``: the processed patterns equal :func:`kikuchi.process.process_patterns`
  of the clean map with the bad points marked missing (bit for bit: per point,
  and with ``--npa`` the bad points are no one's neighbour); the bad points are
  zeros, counted in the processing parameters and the result line;
* ``vbse`` / ``quality``: every image equals the clean run at the other points
  (the neighbour dot product at points next to no bad point), NaN at the bad
  points, a count in the result line;
* ``index``: the other points' rows of the CTF equal the clean run's, the bad
  points have error 6, a count in the result line;
* ``bands``: "no bands: the pattern holds no signal" on a bad point (exit 0),
  the same bands as the clean map on a good one.

A difference is judged ``silent-wrong``. A static background that cannot
divide is not used, with a warning: the output must equal the run without a
static background. "API misuse" feeds the public functions wrong shapes,
dtypes, option values and empty arrays: the answer must be a one-line error of
kikuchi's types (or a right result), never a bare ``KeyError``, ``TypeError``,
``ZeroDivisionError``.
"""

from __future__ import annotations

import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.hostile_cases._case import Case  # noqa: E402
from benchmarks.hostile_cases._case import run_cli as _run_cli  # noqa: E402

ROWS, COLS, SIDE = 6, 8, 40
#: Seconds a command may take (they take 1 to 3 s; a shared machine under load can take ten times that).
CLI_TIMEOUT_S = 600.0


def run_cli(*args: Any) -> Any:
    return _run_cli(*args, timeout_s=CLI_TIMEOUT_S)
DATA = "Scan/EBSD/Data"
ZERO, SATURATED, CONSTANT, FLOAT, BACKGROUND, ALL_BAD, BOOLEAN, MISUSE = (
    "zero patterns",
    "saturated patterns",
    "constant patterns",
    "NaN/inf in float maps",
    "bad static background",
    "all points bad",
    "boolean pattern dataset",
    "API misuse",
)


# -- maps ------------------------------------------------------------------------------------
def simulate(path: Path, *, bit_depth: int = 8) -> Path:
    import kikuchi

    kikuchi.simulate(path, phase="ni", shape=(ROWS, COLS), pattern_shape=(SIDE, SIDE), noise="low", bit_depth=bit_depth, progress=False)
    return path


def mutate(
    src: Path,
    dst: Path,
    *,
    patterns: Callable[[np.ndarray], np.ndarray] | None = None,
    background: np.ndarray | None = None,
) -> Path:
    """A copy of ``src`` whose patterns (n, h, w), in map order, and static background are replaced."""
    import h5py

    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        g = f[DATA]
        if patterns is not None:
            a = patterns(g["RawPatterns"][()].copy())
            del g["RawPatterns"]
            g.create_dataset("RawPatterns", data=a, chunks=(min(16, len(a)), *a.shape[1:]), compression="gzip")
        if background is not None:
            del g["StaticBackground"]
            g.create_dataset("StaticBackground", data=background)
    return dst


def flat_index(points: list[tuple[int, int]]) -> list[int]:
    return [r * COLS + c for r, c in points]


def set_points(points: list[tuple[int, int]], value: Any, dtype: Any = None) -> Callable[[np.ndarray], np.ndarray]:
    """Patterns function: the patterns at ``points`` set to ``value`` (after a cast to ``dtype``)."""

    def f(a: np.ndarray) -> np.ndarray:
        if dtype is not None:
            a = a.astype(dtype)
        for k in flat_index(points):
            a[k] = value(a[k]) if callable(value) else value
        return a

    return f


def mask_of(points: list[tuple[int, int]]) -> np.ndarray:
    m = np.zeros((ROWS, COLS), dtype=bool)
    for r, c in points:
        m[r, c] = True
    return m


def quiet(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A reference computation, its warnings not counted."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


# -- what the clean map gives -----------------------------------------------------------------
class Reference:
    """The clean map and what each stage gives on it (computed once, lazily)."""

    def __init__(self, path: Path, workdir: Path):
        import kikuchi

        self.path = path
        self.workdir = workdir
        with kikuchi.open(path) as m:
            self.raw = m.read_all()  # (rows, cols, h, w)
            self.background = m.static_background
        self._cache: dict[str, Any] = {}

    def cached(self, key: str, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def processed(self, bad: np.ndarray, *, settings: Any = "indexing", background: Any = "file", raw: np.ndarray | None = None) -> np.ndarray:
        """process_patterns of the clean map with the bad points marked missing: what process must give."""
        from kikuchi.process import PRESETS, process_patterns

        s = PRESETS[settings] if isinstance(settings, str) else settings
        bg = self.background if isinstance(background, str) and background == "file" else background
        return quiet(process_patterns, self.raw if raw is None else raw, s, static_background=bg if s.static != "none" else None, have=~bad)

    def vbse(self, key: str = "vbse", path: Path | None = None, **options: Any) -> Any:
        import kikuchi
        from kikuchi.imaging import vbse_maps

        def make() -> Any:
            with kikuchi.open(path or self.path) as m:
                return quiet(vbse_maps, m, progress=False, **options)

        return self.cached(key, make)

    def quality(self, key: str = "quality", path: Path | None = None, **options: Any) -> Any:
        import kikuchi
        from kikuchi.imaging import quality_maps

        def make() -> Any:
            with kikuchi.open(path or self.path) as m:
                return quiet(quality_maps, m, progress=False, **options)

        return self.cached(key, make)

    def index(self, key: str = "index", path: Path | None = None, **options: Any) -> Any:
        import kikuchi
        from kikuchi.index import index_map

        def make() -> Any:
            with kikuchi.open(path or self.path) as m:
                return quiet(index_map, m, ["ni"], progress=False, **options)

        return self.cached(key, make)

    def cli(self, key: str, *args: Any) -> Any:
        return self.cached(key, lambda: run_cli(*args))


# -- checks: None when right, else the verdict --------------------------------------------------
def same(name: str, got: np.ndarray, want: np.ndarray, where: np.ndarray) -> str | None:
    """``got`` equals ``want`` bit for bit (NaN equal to NaN) at the map points ``where``."""
    g, w = np.asarray(got)[where], np.asarray(want)[where]
    if g.shape != w.shape or not np.array_equal(g, w, equal_nan=True):
        n = int(np.sum(~np.all(np.isclose(g, w, equal_nan=True, rtol=0, atol=0).reshape(len(g), -1), axis=1))) if g.shape == w.shape else -1
        return f"silent-wrong: {name} differs from the clean map's at {n} of {len(g)} good points"
    return None


def all_nan(name: str, got: np.ndarray, bad: np.ndarray) -> str | None:
    values = np.asarray(got)[bad]
    if values.size and not np.isnan(values).all():
        return f"silent-wrong: {name} is not NaN at the {int(bad.sum())} points without signal"
    return None


def first(*verdicts: str | None) -> str | None:
    return next((v for v in verdicts if v), None)


def no_signal_flags(name: str, flags: Any, bad: np.ndarray) -> str | None:
    if flags is None or not np.array_equal(np.asarray(flags, dtype=bool), bad):
        return f"silent-wrong: {name} does not flag exactly the {int(bad.sum())} points without signal"
    return None


def check_process_api(ref: Reference, src: Path, out: Path, bad: np.ndarray, *, settings: Any = "indexing", static_background: Any = "file",
                      expected_background: Any = "file", raw: np.ndarray | None = None) -> str | None:  # fmt: skip
    import kikuchi
    from kikuchi.engine import process_map

    process_map(src, out, settings, static_background=static_background, progress=False)
    with kikuchi.open(out) as o:
        got = o.read_all()
        p = o.processing or {}
        import h5py

        with h5py.File(out, "r") as f:
            flags = f[f"{DATA}/NoSignal"][()] > 0 if "NoSignal" in f[DATA] else None
    want = ref.processed(bad, settings=settings, background=expected_background, raw=raw)
    return first(
        same("processed patterns", got, want, np.ones_like(bad)),
        None if p.get("no_signal_points") == int(bad.sum()) else f"silent-wrong: no_signal_points {p.get('no_signal_points')} recorded, {int(bad.sum())} expected",
        no_signal_flags("Scan/EBSD/Data/NoSignal", flags, bad),
    )


def check_vbse_api(ref: Reference, src: Path, bad: np.ndarray, *, clean_key: str = "vbse", clean_path: Path | None = None, **options: Any) -> str | None:
    import kikuchi
    from kikuchi.imaging import vbse_maps

    with kikuchi.open(src) as m:
        got = vbse_maps(m, progress=False, **options)
    want = ref.vbse(clean_key, clean_path, **options)
    good = ~bad
    verdicts = [no_signal_flags("VbseMaps.no_signal", got.no_signal, bad)]
    for name in ("vbse", "bse", "com_raw", "com_kikuchi", "diodes"):
        g, w = getattr(got, name), getattr(want, name)
        if g is None:
            continue
        verdicts += [same(name, g, w, good), all_nan(name, g, bad)]
    return first(*verdicts)


def check_quality_api(ref: Reference, src: Path, bad: np.ndarray, *, clean_key: str = "quality", clean_path: Path | None = None, **options: Any) -> str | None:
    import kikuchi
    from kikuchi.imaging import quality_maps

    with kikuchi.open(src) as m:
        got = quality_maps(m, progress=False, **options)
    want = ref.quality(clean_key, clean_path, **options)
    good = ~bad
    verdicts = [no_signal_flags("QualityMaps.no_signal", got.no_signal, bad)]
    for name in ("iq", "mean", "std"):
        verdicts += [same(name, getattr(got, name), getattr(want, name), good), all_nan(name, getattr(got, name), bad)]
    return first(*verdicts, same("adp", got.adp, want.adp, ~near(bad)), all_nan("adp", got.adp, bad))


def near(bad: np.ndarray) -> np.ndarray:
    """The bad points and their 4 nearest neighbours."""
    out = bad.copy()
    out[1:] |= bad[:-1]
    out[:-1] |= bad[1:]
    out[:, 1:] |= bad[:, :-1]
    out[:, :-1] |= bad[:, 1:]
    return out


def check_index_api(ref: Reference, src: Path, bad: np.ndarray, *, clean_key: str = "index", clean_path: Path | None = None, **options: Any) -> str | None:
    import kikuchi
    from kikuchi.index import index_map

    with kikuchi.open(src) as m:
        got = index_map(m, ["ni"], progress=False, **options)
    want = ref.index(clean_key, clean_path, **options)
    g = got.result.as_array().reshape(ROWS, COLS, -1)
    w = want.result.as_array().reshape(ROWS, COLS, -1)
    errors = got.result.error.reshape(ROWS, COLS)
    if not (errors[bad] == 6).all():
        return f"silent-wrong: points without signal have error codes {sorted(set(errors[bad].tolist()))}, not 6"
    if (got.result.phase_id.reshape(ROWS, COLS)[bad] != 0).any():
        return "silent-wrong: a point without signal was given a phase"
    if got.settings.get("no_signal_points") != int(bad.sum()):
        return f"silent-wrong: no_signal_points {got.settings.get('no_signal_points')}, {int(bad.sum())} expected"
    return same("index result rows", g, w, ~bad)


def check_bands_api(ref: Reference, src: Path, point: tuple[int, int], bad: bool) -> str | None:
    import kikuchi
    from kikuchi.bands import detect_bands, detect_bands_binary
    from kikuchi.index import prepare_patterns

    with kikuchi.open(src) as m:
        raw = m.pattern(*point)
        bg = m.static_background
    pattern = prepare_patterns(raw[None], static_background=bg)[0]
    radon, binary = detect_bands(pattern), detect_bands_binary(pattern)
    if bad:
        raw_radon, raw_binary = detect_bands(raw), detect_bands_binary(raw)
        counts = (len(radon), len(binary), len(raw_radon), len(raw_binary))
        return None if counts == (0, 0, 0, 0) else f"silent-wrong: {counts} bands found in a pattern without signal"
    clean = prepare_patterns(ref.raw[point][None], static_background=ref.background)[0]
    want = detect_bands(clean)
    return same("bands", np.stack([radon.rho, radon.theta]), np.stack([want.rho, want.theta]), np.ones(2, bool))


# -- CLI checks ---------------------------------------------------------------------------
def result_line_says(proc: Any, count: int, what: str) -> str | None:
    needle = f"{count} point{'s' * (count != 1)} without signal"
    if proc.returncode == 0 and (needle not in proc.stdout or what not in proc.stdout):
        return f"silent-wrong: the result line does not say '{needle}' ({what}): {proc.stdout.strip()[-160:]!r}"
    return None


def cli_process(ref: Reference, src: Path, out: Path, bad: np.ndarray, *extra: str, settings: Any = "indexing",
                expected_background: Any = "file", raw: np.ndarray | None = None) -> Any:  # fmt: skip
    import kikuchi

    proc = run_cli("process", src, "-o", out, "--no-progress", *extra)
    if proc.returncode != 0:
        return proc
    with kikuchi.open(out) as o:
        got = o.read_all()
    want = ref.processed(bad, settings=settings, background=expected_background, raw=raw)
    return proc, first(same("processed patterns", got, want, np.ones_like(bad)), result_line_says(proc, int(bad.sum()), "zeros"))


def cli_vbse(ref: Reference, src: Path, out: Path, bad: np.ndarray, clean: Any) -> Any:
    import h5py

    proc = run_cli("vbse", src, "-o", out, "--no-png")
    if proc.returncode != 0:
        return proc
    with h5py.File(out / "vbse.h5", "r") as f, h5py.File(clean / "vbse.h5", "r") as g:
        verdicts = [result_line_says(proc, int(bad.sum()), "NaN")]
        for name in ("vbse", "bse", "com_raw", "com_kikuchi", "diodes"):
            verdicts += [same(name, f[name][()], g[name][()], ~bad), all_nan(name, f[name][()], bad)]
    return proc, first(*verdicts)


def cli_quality(ref: Reference, src: Path, out: Path, bad: np.ndarray, clean: Any) -> Any:
    import h5py

    proc = run_cli("quality", src, "-o", out)
    if proc.returncode != 0:
        return proc
    with h5py.File(out / "quality.h5", "r") as f, h5py.File(clean / "quality.h5", "r") as g:
        verdicts = [result_line_says(proc, int(bad.sum()), "NaN")]
        for name in ("iq", "mean", "std"):
            verdicts += [same(name, f[name][()], g[name][()], ~bad), all_nan(name, f[name][()], bad)]
        verdicts += [same("adp", f["adp"][()], g["adp"][()], ~near(bad)), all_nan("adp", f["adp"][()], bad)]
    return proc, first(*verdicts)


def read_ctf_rows(path: Path) -> np.ndarray:
    from kikuchi.io.ctf import read_ctf

    om = quiet(read_ctf, path)
    cols = om.columns
    return np.column_stack([om.phase_id, cols["bands"], cols["error"], om.euler, cols["mad"], cols["bc"], cols["bs"]]).reshape(ROWS, COLS, -1)


def cli_index(ref: Reference, src: Path, out: Path, bad: np.ndarray, clean_ctf: Path) -> Any:
    proc = run_cli("index", src, "-o", out, "--phase", "ni", "--no-progress")
    if proc.returncode != 0:
        return proc
    got, want = read_ctf_rows(out), read_ctf_rows(clean_ctf)
    if not (got[bad][:, 2] == 6).all():
        return proc, f"silent-wrong: points without signal have CTF errors {sorted(set(got[bad][:, 2].tolist()))}, not 6"
    return proc, first(same("CTF rows", got, want, ~bad), result_line_says(proc, int(bad.sum()), "error 6"))


def cli_bands(ref: Reference, src: Path, point: tuple[int, int], bad: bool, clean_stdout: str | None = None) -> Any:
    proc = run_cli("bands", src, "--at", f"{point[0]},{point[1]}")
    if proc.returncode != 0:
        return proc
    if bad:
        ok = "no bands: the pattern holds no signal" in proc.stdout and len(proc.stdout.strip().splitlines()) == 1
        return proc, None if ok else f"silent-wrong: bands of a pattern without signal: {proc.stdout.strip()[:120]!r}"
    if clean_stdout is not None and proc.stdout.replace(src.name, "X") != clean_stdout:
        return proc, "silent-wrong: the bands of a good point differ from the clean map's"
    return proc, None


# -- the cases -------------------------------------------------------------------------------
def cases(workdir: Path) -> Iterator[Case]:
    import kikuchi  # noqa: F401 - import cost outside the first case

    workdir.mkdir(parents=True, exist_ok=True)
    base = simulate(workdir / "clean.h5")
    base16 = simulate(workdir / "clean16.h5", bit_depth=16)
    ref = Reference(base, workdir)
    ref16 = Reference(base16, workdir)
    n_case = [0]

    def new(name: str) -> Path:
        n_case[0] += 1
        return workdir / f"{n_case[0]:03d}_{name}"

    clean_float = mutate(base, workdir / "clean_float32.h5", patterns=lambda a: a.astype(np.float32))
    ref_float = Reference(clean_float, workdir)

    # the clean runs of the command line (for the CLI cases)
    def clean_cli(key: str, *args: Any) -> Any:
        return ref.cli(key, *args)

    def clean_vbse_dir(path: Path = base, key: str = "cli vbse") -> Path:
        out = workdir / key.replace(" ", "_")
        ref.cli(key, "vbse", path, "-o", out, "--no-png")
        return out

    def clean_quality_dir(path: Path = base, key: str = "cli quality") -> Path:
        out = workdir / key.replace(" ", "_")
        ref.cli(key, "quality", path, "-o", out)
        return out

    def clean_ctf(path: Path = base, key: str = "cli index") -> Path:
        out = workdir / (key.replace(" ", "_") + ".ctf")
        ref.cli(key, "index", path, "-o", out, "--phase", "ni", "--no-progress")
        return out

    def clean_bands(point: tuple[int, int]) -> str:
        return ref.cli(f"cli bands {point}", "bands", base, "--at", f"{point[0]},{point[1]}").stdout.replace(base.name, "X")

    def api_stages(cls: str, label: str, src: Path, bad: np.ndarray, r: Reference = ref, *, bands_at: tuple[int, int] | None = None,
                   vbse_key: str = "vbse", clean_path: Path | None = None) -> Iterator[Case]:  # fmt: skip
        """The five stages on one map through the API."""
        yield Case(cls, f"{label}: process_map (indexing preset)", lambda: check_process_api(r, src, new("p.h5"), bad, raw=r.raw))
        yield Case(cls, f"{label}: vbse_maps", lambda: check_vbse_api(r, src, bad, clean_key=vbse_key, clean_path=clean_path))
        yield Case(cls, f"{label}: quality_maps", lambda: check_quality_api(r, src, bad, clean_key="quality" + vbse_key[4:], clean_path=clean_path))
        yield Case(cls, f"{label}: index_map", lambda: check_index_api(r, src, bad, clean_key="index" + vbse_key[4:], clean_path=clean_path))
        if bands_at is not None:
            yield Case(cls, f"{label}: detect_bands at the bad point", lambda: check_bands_api(r, src, bands_at, True))

    def cli_stages(cls: str, label: str, src: Path, bad: np.ndarray, bad_point: tuple[int, int], good_point: tuple[int, int], *,
                   npa: bool = False) -> Iterator[Case]:  # fmt: skip
        """Every command on one map (uint8 maps made from the clean one)."""
        yield Case(cls, f"{label}: kikuchi process", lambda: cli_process(ref, src, new("p.h5"), bad), cli=True)
        if npa:
            yield Case(cls, f"{label}: kikuchi process --npa 1 --threads 2", lambda: cli_process(
                ref, src, new("p.h5"), bad, "--npa", "1", "--threads", "2", settings=PRESET_NPA), cli=True)  # fmt: skip
        yield Case(cls, f"{label}: kikuchi vbse", lambda: cli_vbse(ref, src, new("v"), bad, clean_vbse_dir()), cli=True)
        yield Case(cls, f"{label}: kikuchi quality", lambda: cli_quality(ref, src, new("q"), bad, clean_quality_dir()), cli=True)
        yield Case(cls, f"{label}: kikuchi index", lambda: cli_index(ref, src, new("o.ctf"), bad, clean_ctf()), cli=True)
        yield Case(cls, f"{label}: kikuchi bands on the bad point", lambda: cli_bands(ref, src, bad_point, True), cli=True)
        yield Case(cls, f"{label}: kikuchi bands on a good point", lambda: cli_bands(ref, src, good_point, False, clean_bands(good_point)), cli=True)
        yield Case(cls, f"{label}: kikuchi pattern --process at the bad point", lambda: cli_pattern(src, new("pat.tif"), bad_point), cli=True)

    from kikuchi.process import PRESETS

    PRESET_NPA = PRESETS["indexing"].replace(npa=1)
    indexing = PRESETS["indexing"]
    PROCESSING_VARIANTS = {
        "--npa 2 --npa-weights gaussian": indexing.replace(npa=2, npa_weights="gaussian"),
        "--contrast clahe --mask": indexing.replace(contrast="clahe", mask=True),
        "--contrast local --hot-pixels 6": indexing.replace(contrast="local", hot_pixels=6.0),
        "--binning 2 --dynamic none": indexing.replace(binning=2, dynamic="none"),
        "--kernel untruncated --sigma 30 (FFT low-pass)": indexing.replace(kernel="untruncated", sigma=30.0),
        "--static none --dtype uint16": indexing.replace(static="none", dtype="uint16"),
    }
    corner, centre, edge = (0, 0), (3, 4), (5, 7)
    scattered = [(0, 0), (2, 5), (3, 4), (5, 7)]
    pair = [(2, 2), (2, 3)]
    row = [(4, c) for c in range(COLS)]

    # zero, saturated, constant: the same places, three kinds of frame
    kinds = [
        (ZERO, "all zero", 0),
        (SATURATED, "saturated (255)", 255),
        (CONSTANT, "constant 117", 117),
    ]
    for cls, what, value in kinds:
        for places, where in ((scattered, "4 scattered points"), ([corner], "the first point"), (pair, "two neighbours"), (row, "a whole map row")):
            src = mutate(base, new("m.h5"), patterns=set_points(places, value))
            bad = mask_of(places)
            yield from api_stages(cls, f"{what} at {where}", src, bad, bands_at=places[0] if where != "a whole map row" else None)
        src = mutate(base, new("m.h5"), patterns=set_points(scattered, value))
        yield Case(cls, f"{what}: process_map --npa 1 (bad points are no one's neighbour)", lambda src=src: check_process_api(
            ref, src, new("p.h5"), mask_of(scattered), settings=PRESET_NPA))  # fmt: skip
        yield Case(cls, f"{what}: process_map detailed preset, subtract, float32", lambda src=src: check_process_api(
            ref, src, new("p.h5"), mask_of(scattered), settings=PRESETS["detailed"].replace(static="subtract", dynamic="subtract", dtype="float32")))  # fmt: skip
        for option, settings in PROCESSING_VARIANTS.items():
            yield Case(cls, f"{what}: process_map {option}", lambda src=src, settings=settings: check_process_api(ref, src, new("p.h5"), mask_of(scattered), settings=settings))
        yield Case(cls, f"{what}: process_map with the map's mean pattern as static background", lambda src=src: check_process_api(
            ref, src, new("p.h5"), mask_of(scattered), static_background="mean", expected_background=quiet(mean_of, ref.raw, mask_of(scattered))))  # fmt: skip
        yield Case(cls, f"{what}: vbse_maps of the kikuchi signal", lambda src=src: check_vbse_api(ref, src, mask_of(scattered), clean_key="vbse kikuchi", signal="kikuchi"))
        yield Case(cls, f"{what}: quality_maps of the raw signal", lambda src=src: check_quality_api(ref, src, mask_of(scattered), clean_key="quality raw", signal="raw"))
        yield from cli_stages(cls, f"{what} at 4 scattered points", src, mask_of(scattered), centre, (1, 1), npa=cls == ZERO)

    # saturated 16-bit
    src = mutate(base16, new("m16.h5"), patterns=set_points(scattered, 65535))
    yield from api_stages(SATURATED, "uint16 map saturated (65535) at 4 points", src, mask_of(scattered), ref16, bands_at=centre, vbse_key="vbse16", clean_path=base16)

    # float maps: NaN and infinities
    float_variants = [
        ("an all-NaN pattern", lambda p: np.full_like(p, np.nan)),
        ("one NaN pixel", lambda p: _pixel(p, np.nan)),
        ("one +inf pixel", lambda p: _pixel(p, np.inf)),
        ("one -inf pixel", lambda p: _pixel(p, -np.inf)),
        ("an all-inf pattern", lambda p: np.full_like(p, np.inf)),
        ("an all-zero pattern", lambda p: np.zeros_like(p)),
    ]
    for what, fn in float_variants:
        src = mutate(base, new("mf.h5"), patterns=set_points(scattered, fn, np.float32))
        yield from api_stages(FLOAT, f"float32 map, {what} at 4 points", src, mask_of(scattered), ref_float, bands_at=centre, vbse_key="vbsef", clean_path=clean_float)
    src64 = mutate(base, new("mf64.h5"), patterns=set_points([centre], lambda p: _pixel(p, np.nan), np.float64))
    yield Case(FLOAT, "float64 map, one NaN pixel: process_map", lambda: check_process_api(
        ref, src64, new("p.h5"), mask_of([centre]), raw=ref.raw.astype(np.float64)))  # fmt: skip
    src = mutate(base, new("mf.h5"), patterns=set_points(scattered, lambda p: _pixel(p, np.nan), np.float32))
    yield Case(FLOAT, "float32 map, one NaN pixel: kikuchi process", lambda: cli_process(ref_float, src, new("p.h5"), mask_of(scattered), raw=ref_float.raw), cli=True)
    yield Case(FLOAT, "float32 map, one NaN pixel: kikuchi vbse", lambda: cli_vbse(ref_float, src, new("v"), mask_of(scattered), clean_vbse_dir(clean_float, "cli vbse float")), cli=True)
    yield Case(FLOAT, "float32 map, one NaN pixel: kikuchi quality", lambda: cli_quality(ref_float, src, new("q"), mask_of(scattered), clean_quality_dir(clean_float, "cli quality float")), cli=True)
    yield Case(FLOAT, "float32 map, one NaN pixel: kikuchi index", lambda: cli_index(ref_float, src, new("o.ctf"), mask_of(scattered), clean_ctf(clean_float, "cli index float")), cli=True)
    yield Case(FLOAT, "float32 map, one NaN pixel: kikuchi bands on it", lambda: cli_bands(ref_float, src, centre, True), cli=True)

    yield from background_cases(ref, base, new, clean_cli)
    yield from all_bad_cases(base, new)
    yield from boolean_cases(base, new)
    yield from misuse_cases(workdir)


def _pixel(p: np.ndarray, value: float) -> np.ndarray:
    p = p.copy()
    p[SIDE // 2, SIDE // 3] = value
    return p


def mean_of(raw: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """The mean pattern of the points with signal (what --static-background mean must use)."""
    good = raw[~bad]
    return good.sum(axis=0, dtype=np.float64) / len(good)


def cli_pattern(src: Path, out: Path, point: tuple[int, int]) -> Any:
    import tifffile

    proc = run_cli("pattern", src, "--at", f"{point[0]},{point[1]}", "--process", "indexing", "-o", out)
    if proc.returncode != 0:
        return proc
    img = tifffile.imread(out)
    return proc, None if not img.any() else "silent-wrong: the processed pattern of a point without signal is not zeros"


# -- static backgrounds -------------------------------------------------------------------------
def background_cases(ref: Reference, base: Path, new: Callable[[str], Path], clean_cli: Callable[..., Any]) -> Iterator[Case]:
    bg = ref.background.astype(np.float32)
    none = np.zeros((ROWS, COLS), bool)
    one_nan = bg.copy()
    one_nan[5, 7] = np.nan
    partly_negative = bg.copy()
    partly_negative[:3] = -1.0
    unusable = [
        ("all zero", np.zeros_like(bg)),
        ("all NaN", np.full_like(bg, np.nan)),
        ("all +inf", np.full_like(bg, np.inf)),
        ("negative (minus the background)", -bg),
        ("three negative rows", partly_negative),
        ("all -1", np.full_like(bg, -1.0)),
    ]
    for what, value in unusable:
        src = mutate(base, new("bg.h5"), background=value)
        # not used (a warning says why): the output equals the run without a static background
        yield Case(BACKGROUND, f"stored background {what}: process_map", lambda src=src: check_process_api(ref, src, new("p.h5"), none, expected_background=None))
        yield Case(BACKGROUND, f"stored background {what}: process_map subtract", lambda src=src, value=value: check_process_api(
            ref, src, new("p.h5"), none, settings=PRESETS_SUB, expected_background=value if np.isfinite(value).all() and value.mean() != 0 else None))  # fmt: skip
        yield Case(BACKGROUND, f"stored background {what}: vbse_maps kikuchi signal", lambda src=src: _vbse_bg(ref, src))
        yield Case(BACKGROUND, f"stored background {what}: quality_maps", lambda src=src: _quality_bg(ref, src))
        yield Case(BACKGROUND, f"stored background {what}: index_map", lambda src=src: _index_bg(ref, src))
    src = mutate(base, new("bg.h5"), background=one_nan)
    yield Case(BACKGROUND, "stored background with one NaN pixel (a dead pixel): process_map", lambda: check_process_api(
        ref, src, new("p.h5"), none, expected_background=np.nan_to_num(one_nan, nan=0.0)))  # fmt: skip
    yield Case(BACKGROUND, "stored background with one NaN pixel: index_map", lambda: _finite_index(src))
    # through the command line, and background files given by hand
    src = mutate(base, new("bg.h5"), background=np.zeros_like(bg))
    yield Case(BACKGROUND, "stored background all zero: kikuchi process", lambda: _cli_bg_process(ref, src, new("p.h5")), cli=True)
    yield Case(BACKGROUND, "stored background all zero: kikuchi vbse --signal kikuchi", lambda: _cli_bg_vbse(ref, src, new("v"), base, clean_cli), cli=True)
    yield Case(BACKGROUND, "stored background all zero: kikuchi quality", lambda: run_cli("quality", src, "-o", new("q")), cli=True)
    yield Case(BACKGROUND, "stored background all zero: kikuchi index", lambda: _cli_bg_index(ref, src, new("o.ctf"), base, clean_cli), cli=True)
    yield Case(BACKGROUND, "stored background all zero: kikuchi bands", lambda: _cli_bg_bands(src, base, clean_cli), cli=True)
    for what, value in (("all zero", np.zeros_like(bg)), ("all NaN", np.full_like(bg, np.nan)), ("negative", -bg)):
        npy = new("bg.npy")
        np.save(npy, value)
        yield Case(BACKGROUND, f"--static-background FILE.npy {what}: kikuchi process", lambda npy=npy: _cli_bg_process(ref, base, new("p.h5"), "--static-background", npy), cli=True)
    src = mutate(base, new("bg.h5"), background=one_nan)
    yield Case(BACKGROUND, "stored background with one NaN pixel: kikuchi process", lambda: _cli_bg_process(
        ref, src, new("p.h5"), expected=np.nan_to_num(one_nan, nan=0.0), warn=True), cli=True)  # fmt: skip


def _presets_sub() -> Any:
    from kikuchi.process import PRESETS

    return PRESETS["indexing"].replace(static="subtract")


PRESETS_SUB = _presets_sub()


def _vbse_bg(ref: Reference, src: Path) -> str | None:
    """A background that cannot divide is not used: equal to the run without a static background."""
    import kikuchi
    from kikuchi.imaging import vbse_maps

    with kikuchi.open(src) as m:
        got = vbse_maps(m, progress=False, signal="kikuchi")
    want = ref.vbse("vbse kikuchi nobg", None, signal="kikuchi", static_background=False)
    everywhere = np.ones((ROWS, COLS), bool)
    return first(*(same(n, getattr(got, n), getattr(want, n), everywhere) for n in ("vbse", "com_kikuchi", "bse")))


def _quality_bg(ref: Reference, src: Path) -> str | None:
    import kikuchi
    from kikuchi.imaging import quality_maps

    with kikuchi.open(src) as m:
        got = quality_maps(m, progress=False)
    want = ref.quality("quality nobg", None, static_background=False)
    everywhere = np.ones((ROWS, COLS), bool)
    return first(*(same(n, getattr(got, n), getattr(want, n), everywhere) for n in ("iq", "adp", "mean", "std")))


def _index_bg(ref: Reference, src: Path) -> str | None:
    import kikuchi
    from kikuchi.index import index_map

    with kikuchi.open(src) as m:
        got = index_map(m, ["ni"], progress=False)
    want = ref.index("index nobg", None, static_background=None)
    return same("index result", got.result.as_array(), want.result.as_array(), np.ones(ROWS * COLS, bool))


def _finite_index(src: Path) -> str | None:
    import kikuchi
    from kikuchi.index import index_map

    with kikuchi.open(src) as m:
        got = index_map(m, ["ni"], progress=False)
    if got.result.indexed.mean() < 0.8:
        return f"silent-wrong: a background with one dead pixel left only {got.result.indexed.mean():.0%} indexed"
    return None


def _cli_bg_process(ref: Reference, src: Path, out: Path, *extra: Any, expected: Any = None, warn: bool = True) -> Any:
    import kikuchi

    proc = run_cli("process", src, "-o", out, "--no-progress", *extra)
    if proc.returncode != 0:
        return proc
    with kikuchi.open(out) as o:
        got = o.read_all()
        p = o.processing or {}
    want = ref.processed(np.zeros((ROWS, COLS), bool), background=expected)
    verdict = same("processed patterns", got, want, np.ones((ROWS, COLS), bool))
    if verdict is None and expected is None and p.get("static_background_used"):
        verdict = "silent-wrong: the processing parameters say the unusable background was used"
    if verdict is None and warn and "warning:" not in proc.stderr:
        verdict = "silent-wrong: no warning about the static background"
    return proc, verdict


def _cli_bg_vbse(ref: Reference, src: Path, out: Path, base: Path, clean_cli: Callable[..., Any]) -> Any:
    import h5py

    proc = run_cli("vbse", src, "-o", out, "--no-png", "--signal", "kikuchi")
    if proc.returncode != 0:
        return proc
    clean = base.parent / "cli_vbse_kikuchi_nobg"
    clean_cli("cli vbse kikuchi nobg", "vbse", base, "-o", clean, "--no-png", "--signal", "kikuchi", "--no-static-background")
    with h5py.File(out / "vbse.h5", "r") as f, h5py.File(clean / "vbse.h5", "r") as g:
        return proc, first(*(same(n, f[n][()], g[n][()], np.ones((ROWS, COLS), bool)) for n in ("vbse", "com_kikuchi")))


def _cli_bg_index(ref: Reference, src: Path, out: Path, base: Path, clean_cli: Callable[..., Any]) -> Any:
    """The same as without the static background: the dynamic background only (--no-background would drop both)."""
    import kikuchi
    from kikuchi.index import index_map

    proc = run_cli("index", src, "-o", out, "--phase", "ni", "--no-progress")
    if proc.returncode != 0:
        return proc
    with kikuchi.open(base) as m:
        want = quiet(index_map, m, ["ni"], progress=False, static_background=None)
    got = read_ctf_rows(out)
    errors_want = want.result.error.reshape(ROWS, COLS)
    return proc, None if np.array_equal(got[..., 2], errors_want) else "silent-wrong: index errors differ from the run without a static background"


def _cli_bg_bands(src: Path, base: Path, clean_cli: Callable[..., Any]) -> Any:
    proc = run_cli("bands", src, "--at", "3,4")
    if proc.returncode != 0:
        return proc
    return proc, None if "warning:" in proc.stderr else "silent-wrong: no warning that the static background was not used"


# -- every point bad -----------------------------------------------------------------------------
def all_bad_cases(base: Path, new: Callable[[str], Path]) -> Iterator[Case]:
    variants = [
        ("all zero", lambda a: np.zeros_like(a)),
        ("all saturated", lambda a: np.full_like(a, 255)),
        ("all constant, a different value each", lambda a: np.broadcast_to(np.arange(len(a), dtype=a.dtype)[:, None, None], a.shape).copy()),
        ("float32, all NaN", lambda a: np.full(a.shape, np.nan, np.float32)),
    ]
    for k, (what, fn) in enumerate(variants):
        src = mutate(base, new("all.h5"), patterns=fn)
        yield Case(ALL_BAD, f"{what}: process_map", lambda src=src: _all_bad_process(src, new("p.h5")))
        yield Case(ALL_BAD, f"{what}: process_map, mean static background", lambda src=src: _all_bad_process(src, new("p.h5"), static_background="mean"))
        yield Case(ALL_BAD, f"{what}: vbse_maps", lambda src=src: _all_bad_images(src, "vbse"))
        yield Case(ALL_BAD, f"{what}: quality_maps", lambda src=src: _all_bad_images(src, "quality"))
        yield Case(ALL_BAD, f"{what}: index_map", lambda src=src: _all_bad_index(src))
        yield Case(ALL_BAD, f"{what}: index_map refine_pc='mean'", lambda src=src: _all_bad_index(src, refine_pc="mean"))
        if k not in (0, 3):  # the command line on two of them
            continue
        yield Case(ALL_BAD, f"{what}: kikuchi process", lambda src=src: _all_bad_cli(run_cli("process", src, "-o", new("p.h5"), "--no-progress"), "zeros"), cli=True)
        yield Case(ALL_BAD, f"{what}: kikuchi vbse (with the PNG gallery)", lambda src=src: _all_bad_cli(run_cli("vbse", src, "-o", new("v")), "NaN"), cli=True)
        yield Case(ALL_BAD, f"{what}: kikuchi quality", lambda src=src: _all_bad_cli(run_cli("quality", src, "-o", new("q")), "NaN"), cli=True)
        yield Case(ALL_BAD, f"{what}: kikuchi index", lambda src=src: _all_bad_cli(run_cli("index", src, "-o", new("o.ctf"), "--phase", "ni", "--no-progress"), "error 6"), cli=True)
        yield Case(ALL_BAD, f"{what}: kikuchi bands", lambda src=src: cli_bands(None, src, (2, 2), True), cli=True)


def _all_bad_process(src: Path, out: Path, **options: Any) -> str | None:
    import kikuchi
    from kikuchi.engine import process_map

    process_map(src, out, "indexing", progress=False, **options)
    with kikuchi.open(out) as o:
        if o.read_all().any():
            return "silent-wrong: a map of patterns without signal processed to something other than zeros"
        if (o.processing or {}).get("no_signal_points") != ROWS * COLS:
            return "silent-wrong: the count of points without signal is not every point"
    return None


def _all_bad_images(src: Path, which: str) -> str | None:
    import kikuchi
    from kikuchi.imaging import quality_maps, vbse_maps

    with kikuchi.open(src) as m:
        maps = vbse_maps(m, progress=False) if which == "vbse" else quality_maps(m, progress=False)
    arrays = [maps.vbse, maps.bse, maps.com_raw, maps.diodes] if which == "vbse" else [maps.iq, maps.adp, maps.mean, maps.std]
    if not all(np.isnan(a).all() for a in arrays) or not maps.no_signal.all():
        return f"silent-wrong: {which} images of a map without signal are not all NaN"
    return None


def _all_bad_index(src: Path, **options: Any) -> str | None:
    import kikuchi
    from kikuchi.index import index_map

    with kikuchi.open(src) as m:
        got = index_map(m, ["ni"], progress=False, **options)
    return None if (got.result.error == 6).all() else "silent-wrong: not every point of a map without signal has error 6"


def _all_bad_cli(proc: Any, what: str) -> Any:
    return proc, result_line_says(proc, ROWS * COLS, what)


# -- boolean datasets --------------------------------------------------------------------------
def boolean_cases(base: Path, new: Callable[[str], Path]) -> Iterator[Case]:
    for k, (what, fn) in enumerate((("True where > 100", lambda a: a > 100), ("all False", lambda a: np.zeros(a.shape, bool)), ("all True but one point", _bool_one))):
        src = mutate(base, new("bool.h5"), patterns=fn)
        bad = _bool_bad(src)
        yield Case(BOOLEAN, f"{what}: process_map", lambda src=src, bad=bad: _bool_process(src, new("p.h5"), bad))
        yield Case(BOOLEAN, f"{what}: vbse_maps", lambda src=src, bad=bad: _bool_images(src, bad))
        yield Case(BOOLEAN, f"{what}: quality_maps", lambda src=src: _call_on_map(src, "quality"))
        yield Case(BOOLEAN, f"{what}: index_map", lambda src=src: _call_on_map(src, "index"))
        if k:  # the command line on the first
            continue
        yield Case(BOOLEAN, f"{what}: kikuchi process", lambda src=src: run_cli("process", src, "-o", new("p.h5"), "--no-progress"), cli=True)
        yield Case(BOOLEAN, f"{what}: kikuchi vbse", lambda src=src: run_cli("vbse", src, "-o", new("v"), "--no-png"), cli=True)
        yield Case(BOOLEAN, f"{what}: kikuchi quality", lambda src=src: run_cli("quality", src, "-o", new("q")), cli=True)
        yield Case(BOOLEAN, f"{what}: kikuchi index", lambda src=src: run_cli("index", src, "-o", new("o.ctf"), "--phase", "ni", "--no-progress"), cli=True)
        yield Case(BOOLEAN, f"{what}: kikuchi bands", lambda src=src: run_cli("bands", src, "--at", "2,2", "--method", "binary"), cli=True)


def _bool_one(a: np.ndarray) -> np.ndarray:
    out = np.ones(a.shape, bool)
    out[0] = a[0] > 100
    return out


def _bool_bad(src: Path) -> np.ndarray:
    import h5py

    with h5py.File(src, "r") as f:
        a = f[f"{DATA}/RawPatterns"][()].reshape(ROWS, COLS, -1)
    return a.min(axis=2) == a.max(axis=2)


def _bool_process(src: Path, out: Path, bad: np.ndarray) -> str | None:
    import h5py

    from kikuchi.engine import process_map
    from kikuchi.process import process_patterns

    process_map(src, out, "indexing", progress=False)
    with h5py.File(src, "r") as f:
        raw = f[f"{DATA}/RawPatterns"][()].reshape(ROWS, COLS, SIDE, SIDE)
        bg = f[f"{DATA}/StaticBackground"][()]
    want = quiet(process_patterns, raw.astype(np.uint8), "indexing", static_background=bg, have=~bad)
    import kikuchi

    with kikuchi.open(out) as o:
        return same("processed boolean patterns (as 0/1)", o.read_all(), want, np.ones((ROWS, COLS), bool))


def _bool_images(src: Path, bad: np.ndarray) -> str | None:
    import kikuchi
    from kikuchi.imaging import vbse_maps

    with kikuchi.open(src) as m:
        maps = vbse_maps(m, progress=False)
        raw = m.read_all().astype(np.float64)
    return first(no_signal_flags("no_signal", maps.no_signal, bad), same("bse of 0/1 patterns", maps.bse, raw.mean(axis=(2, 3)).astype(np.float32), ~bad))


def _call_on_map(src: Path, which: str) -> None:
    import kikuchi
    from kikuchi.imaging import quality_maps
    from kikuchi.index import index_map

    with kikuchi.open(src) as m:
        if which == "quality":
            quality_maps(m, progress=False)
        else:
            index_map(m, ["ni"], progress=False)


# -- API misuse ------------------------------------------------------------------------------
def misuse_cases(workdir: Path) -> Iterator[Case]:
    """Wrong shapes, dtypes, option values and empty arrays for the public functions of process, imaging, bands, index."""
    import kikuchi.bands as B
    import kikuchi.imaging as I
    import kikuchi.index as X
    import kikuchi.process as P
    from kikuchi.geometry import Detector

    rng = np.random.default_rng(3)
    p3 = rng.integers(0, 255, (4, 24, 32)).astype(np.uint8)
    p4 = rng.integers(0, 255, (3, 4, 24, 32)).astype(np.uint8)
    det = Detector((24, 32), (0.5, 0.3, 0.6))
    calls: list[tuple[str, Callable[[], Any]]] = [
        # process
        ("process_patterns of a 1-D array", lambda: P.process_patterns(np.zeros(10), "indexing")),
        ("process_patterns of a 5-D array", lambda: P.process_patterns(np.zeros((1, 1, 1, 8, 8)), "indexing")),
        ("process_patterns of strings", lambda: P.process_patterns(np.array([["a", "b"], ["c", "d"]]), "indexing")),
        ("process_patterns of complex numbers", lambda: P.process_patterns(np.ones((2, 8, 8), complex), "indexing")),
        ("process_patterns of an empty stack", lambda: _empty_ok(P.process_patterns(np.zeros((0, 24, 32), np.uint8), "detailed"), (0, 24, 32))),
        ("process_patterns of zero-width patterns", lambda: P.process_patterns(np.zeros((2, 8, 0), np.uint8), "detailed")),
        ("process_patterns, an unknown preset", lambda: P.process_patterns(p3, "fast")),
        ("process_patterns, settings of the wrong type", lambda: P.process_patterns(p3, 42)),
        ("process_patterns, settings as a dict", lambda: P.process_patterns(p3, {"binning": 2})),
        ("process_patterns, a background of the wrong shape", lambda: P.process_patterns(p3, "detailed", static_background=np.ones((5, 5)))),
        ("process_patterns, a 3-D background", lambda: P.process_patterns(p3, "detailed", static_background=np.ones((2, 24, 32)))),
        ("process_patterns, have of the wrong shape", lambda: P.process_patterns(p4, "detailed", have=np.ones((2, 2), bool))),
        ("process_patterns, workers 0", lambda: P.process_patterns(p3, "detailed", workers=0)),
        ("process_patterns, npa on a stack", lambda: P.process_patterns(p3, P.PRESETS["detailed"].replace(npa=1))),
        ("ProcessingSettings binning 0", lambda: P.ProcessingSettings(binning=0)),
        ("ProcessingSettings binning 2.5", lambda: P.ProcessingSettings(binning=2.5)),
        ("ProcessingSettings sigma NaN", lambda: P.ProcessingSettings(sigma=float("nan"))),
        ("ProcessingSettings sigma as text", lambda: P.ProcessingSettings(sigma="3")),
        ("ProcessingSettings npa -1", lambda: P.ProcessingSettings(npa=-1)),
        ("ProcessingSettings npa 1.5", lambda: P.ProcessingSettings(npa=1.5)),
        ("ProcessingSettings clow > chigh", lambda: P.ProcessingSettings(clow=90, chigh=10)),
        ("ProcessingSettings dtype int8", lambda: P.ProcessingSettings(dtype="int8")),
        ("ProcessingSettings npa_sigma NaN", lambda: P.ProcessingSettings(npa_sigma=float("nan"))),
        ("ProcessingSettings hot_pixels -1", lambda: P.ProcessingSettings(hot_pixels=-1)),
        ("ProcessingSettings.replace of an unknown option", lambda: P.PRESETS["indexing"].replace(smoothness=3)),
        ("remove_dynamic_background of a 1-D array", lambda: P.remove_dynamic_background(np.zeros(10))),
        ("remove_dynamic_background sigma 0", lambda: P.remove_dynamic_background(p3, sigma=0)),
        ("remove_dynamic_background sigma -2", lambda: P.remove_dynamic_background(p3, sigma=-2)),
        ("remove_dynamic_background sigma as text", lambda: P.remove_dynamic_background(p3, sigma="wide")),
        ("remove_dynamic_background operation 'multiply'", lambda: P.remove_dynamic_background(p3, operation="multiply")),
        ("remove_dynamic_background an unknown kernel", lambda: P.remove_dynamic_background(p3, kernel="box")),
        ("remove_dynamic_background an unknown option", lambda: P.remove_dynamic_background(p3, smooth=True)),
        ("remove_dynamic_background dtype int16", lambda: P.remove_dynamic_background(p3, dtype=np.int16)),
        ("remove_dynamic_background of an empty stack", lambda: _empty_ok(P.remove_dynamic_background(np.zeros((0, 24, 32))), (0, 24, 32))),
        ("remove_dynamic_background of a zero pattern", lambda: _zeros_ok(P.remove_dynamic_background(np.zeros((24, 32))))),
        ("remove_bg of strings", lambda: P.remove_bg(np.array([["a"]]))),
        ("gaussian_lowpass support 0", lambda: P.gaussian_lowpass(p3, sigma=2, support=0)),
        ("gaussian_lowpass fft_size 'huge'", lambda: P.gaussian_lowpass(p3, sigma=2, fft_size="huge")),
        ("gaussian_lowpass method 'magic'", lambda: P.gaussian_lowpass(p3, sigma=2, method="magic")),
        ("gaussian_lowpass of 1 x 1 patterns", lambda: P.gaussian_lowpass(np.ones((2, 1, 1)), sigma=2)),
        ("make_signal_bg bgscale as text", lambda: P.make_signal_bg(p3[0], bgscale="one")),
        ("remove_static_background of the wrong shape", lambda: P.remove_static_background(p3, np.ones((3, 3)))),
        ("remove_static_background scale 'median'", lambda: P.remove_static_background(p3, np.ones((24, 32)), operation="subtract", scale="median")),
        ("remove_static_background of a zero background", lambda: _zeros_ok(P.remove_static_background(p3, np.zeros((24, 32))))),
        ("remove_static_background of a zero background, subtract", lambda: P.remove_static_background(p3, np.zeros((24, 32)), operation="subtract")),
        ("remove_static_background operation 'x'", lambda: P.remove_static_background(p3, np.ones((24, 32)), operation="x")),
        ("partition_static_background of a stack", lambda: P.partition_static_background(p3)),
        ("bin_patterns factor 0", lambda: P.bin_patterns(p3, 0)),
        ("bin_patterns factor 5 (does not divide)", lambda: P.bin_patterns(p3, 5)),
        ("bin_patterns factor 2.5", lambda: P.bin_patterns(p3, 2.5)),
        ("bin_patterns factor as text", lambda: P.bin_patterns(p3, "2")),
        ("bin_patterns mode 'max'", lambda: P.bin_patterns(p3, 2, mode="max")),
        ("bin_patterns of a 1-D array", lambda: P.bin_patterns(np.zeros(8), 2)),
        ("bin_patterns of an empty stack", lambda: P.bin_patterns(np.zeros((0, 24, 32), np.uint8), 2)),
        ("bin_patterns dtype uint8 too small", lambda: P.bin_patterns(np.full((1, 4, 4), 255, np.uint8), 2, dtype=np.uint8)),
        ("auto_binning of a 1-D shape", lambda: P.auto_binning((240,))),
        ("auto_binning of a zero shape", lambda: P.auto_binning((0, 0))),
        ("rescale_to_uint dtype int8", lambda: P.rescale_to_uint(p3, dtype="int8")),
        ("rescale_to_uint dtype 'bogus'", lambda: P.rescale_to_uint(p3, dtype="bogus")),
        ("rescale_to_uint clow 50 chigh 10", lambda: P.rescale_to_uint(p3, clow=50, chigh=10)),
        ("rescale_to_uint clow NaN", lambda: P.rescale_to_uint(p3, clow=float("nan"))),
        ("rescale_to_uint of an empty stack", lambda: _empty_ok(P.rescale_to_uint(np.zeros((0, 4, 4))), (0, 4, 4))),
        ("rescale_to_uint of a NaN pattern", lambda: _zeros_ok(P.rescale_to_uint(np.full((4, 4), np.nan)))),
        ("rescale_to_uint of a pattern with one NaN (zeros)", lambda: _zeros_ok(P.rescale_to_uint(_with_nan(rng.random((8, 8)))))),
        ("clahe clip_limit 0", lambda: P.clahe(p3, clip_limit=0)),
        ("clahe of a NaN pattern", lambda: P.clahe(np.full((16, 16), np.nan))),
        ("clahe nbins 0", lambda: P.clahe(p3, nbins=0)),
        ("normalize_local size 0", lambda: P.normalize_local(p3, size=0)),
        ("normalize_local size 2.5", lambda: P.normalize_local(p3, size=2.5)),
        ("circular_mask of shape (0, 5)", lambda: P.circular_mask((0, 5))),
        ("circular_mask of a 1-D shape", lambda: P.circular_mask((5,))),
        ("circular_mask radius -1", lambda: P.circular_mask((5, 5), radius=-1)),
        ("average_neighbours n -1", lambda: P.average_neighbours(p4, n=-1)),
        ("average_neighbours n 1.5", lambda: P.average_neighbours(p4, n=1.5)),
        ("average_neighbours n inf", lambda: P.average_neighbours(p4, n=float("inf"))),
        ("ProcessingSettings npa inf", lambda: P.ProcessingSettings(npa=float("inf"))),
        ("normalize_local size inf", lambda: P.normalize_local(p3, size=float("inf"))),
        ("bin_patterns factor inf", lambda: P.bin_patterns(p3, float("inf"))),
        ("detect_bands_stack workers inf", lambda: B.detect_bands_stack(p3, workers=float("inf"))),
        ("image_quality chunk NaN", lambda: I.image_quality(p3, chunk=float("nan"))),
        ("average_neighbours of a stack without index_map", lambda: P.average_neighbours(p3)),
        ("average_neighbours weights 'cubic'", lambda: P.average_neighbours(p4, weights="cubic")),
        ("average_neighbours weights of an even size", lambda: P.average_neighbours(p4, weights=np.ones((2, 2)))),
        ("average_neighbours rows outside the map", lambda: P.average_neighbours(p4, rows=(0, 9))),
        ("average_neighbours index_map of the wrong rank", lambda: P.average_neighbours(p3, index_map=np.arange(4))),
        ("average_neighbours index_map beyond the patterns", lambda: P.average_neighbours(p3, index_map=np.array([[0, 7]]))),
        ("average_neighbours have of the wrong shape", lambda: P.average_neighbours(p4, have=np.ones((2, 2), bool))),
        ("neighbour_weights sigma 0", lambda: P.neighbour_weights(1, weights="gaussian", sigma=0)),
        ("find_hot_pixels of a stack", lambda: P.find_hot_pixels(p3)),
        ("find_hot_pixels threshold -1", lambda: P.find_hot_pixels(p3[0], threshold=-1)),
        ("find_hot_pixels of a NaN image", lambda: P.find_hot_pixels(np.full((8, 8), np.nan))),
        ("remove_hot_pixels mask of the wrong shape", lambda: P.remove_hot_pixels(p3, mask=np.zeros((3, 3), bool))),
        # imaging
        ("vbse_array grid '0x3'", lambda: I.vbse_array(p3, grid="0x3")),
        ("vbse_array grid 'axb'", lambda: I.vbse_array(p3, grid="axb")),
        ("vbse_array grid (7, 7, 7)", lambda: I.vbse_array(p3, grid=(7, 7, 7))),
        ("vbse_array grid of text items", lambda: I.vbse_array(p3, grid=("a", "b"))),
        ("vbse_array grid None", lambda: I.vbse_array(p3, grid=None)),
        ("vbse_array grid finer than the pixels", lambda: I.vbse_array(p3, grid=(100, 100))),
        ("vbse_array of a 1-D array", lambda: I.vbse_array(np.zeros(5))),
        ("vbse_array of strings", lambda: I.vbse_array(np.array([["a", "b"]]))),
        ("vbse_array of zero-width patterns", lambda: I.vbse_array(np.zeros((2, 4, 0)))),
        ("vbse_array of an empty stack", lambda: _empty_ok(I.vbse_array(np.zeros((0, 24, 32))), (0, 7, 7))),
        ("diode_array strip 0", lambda: I.diode_array(p3, strip=0)),
        ("diode_array splits 0", lambda: I.diode_array(p3, splits=0)),
        ("total_bse mode 'max'", lambda: I.total_bse(p3, mode="max")),
        ("image_quality of a 1-D array", lambda: I.image_quality(np.zeros(5))),
        ("image_quality of constant patterns (NaN)", lambda: _nan_ok(I.image_quality(np.ones((2, 8, 8))))),
        ("image_quality chunk 0", lambda: I.image_quality(p3, chunk=0)),
        ("image_quality of an empty stack", lambda: _empty_ok(I.image_quality(np.zeros((0, 8, 8))), (0,))),
        ("neighbour_dot_product of a stack", lambda: I.neighbour_dot_product(p3)),
        ("neighbour_dot_product core outside the map", lambda: I.neighbour_dot_product(p4, core=(2, 9))),
        ("neighbour_dot_product have of the wrong shape", lambda: I.neighbour_dot_product(p4, have=np.ones(3, bool))),
        ("neighbour_dot_product with a constant pattern", lambda: _adp_constant(I.neighbour_dot_product)),
        ("centre_of_mass of a 1-D array", lambda: I.centre_of_mass(np.zeros(4))),
        ("centre_of_mass of a zero pattern (NaN)", lambda: _nan_ok(I.centre_of_mass(np.zeros((8, 8))))),
        ("hillshade of a (rows, cols) map", lambda: I.hillshade(np.zeros((4, 4)))),
        ("hillshade of all-NaN centres", lambda: I.hillshade(np.full((3, 3, 2), np.nan))),
        ("montage scale 'log'", lambda: I.montage(np.ones((1, 1, 2, 2)), scale="log")),
        ("montage gap -1", lambda: I.montage(np.ones((2, 2, 2, 2)), gap=-1)),
        ("montage of a 2-D image", lambda: I.montage(np.ones((4, 4)))),
        ("region_image outside the grid", lambda: I.region_image(np.ones((2, 2, 3, 3)), (5, 0))),
        ("region_image of a 3-D array", lambda: I.region_image(np.ones((2, 2, 3)), (0, 0))),
        ("rgb_image with two regions", lambda: I.rgb_image(np.ones((2, 2, 3, 3)), regions=[(0, 0), (1, 1)])),
        ("rgb_image with a region outside the grid", lambda: I.rgb_image(np.ones((2, 2, 3, 3)), regions=[(0, 0), (1, 1), (7, 7)])),
        ("normalise_channel n_std 0", lambda: I.normalise_channel(np.ones(3), n_std=0)),
        ("differential_array of a one-row grid", lambda: I.differential_array(np.ones((2, 2, 1, 3)))),
        ("remove_line_gradient order 3", lambda: I.remove_line_gradient(np.ones((3, 3)), order=3)),
        ("remove_line_gradient of a 1-D image", lambda: I.remove_line_gradient(np.ones(3))),
        ("region_weights 0 regions", lambda: I.region_weights(10, 0)),
        ("strip_weights an empty interval", lambda: I.strip_weights(10, [(3, 3)])),
        ("parse_grid '7x7x7'", lambda: I.parse_grid("7x7x7")),
        ("parse_grid ''", lambda: I.parse_grid("")),
        ("asymmetry of two shapes", lambda: I.asymmetry(np.ones(3), np.ones(4))),
        ("kikuchi_signal background of the wrong shape", lambda: I.kikuchi_signal(p3, static_background=np.ones((2, 2)))),
        ("kikuchi_signal sigma 0", lambda: I.kikuchi_signal(p3, sigma=0)),
        # bands
        ("detect_bands of a stack", lambda: B.detect_bands(p3)),
        ("detect_bands of a 1-D array", lambda: B.detect_bands(np.zeros(10))),
        ("detect_bands of a 4 x 4 pattern", lambda: B.detect_bands(np.ones((4, 4)))),
        ("detect_bands of strings", lambda: B.detect_bands(np.array([["a"] * 9] * 9))),
        ("detect_bands n_bands 0", lambda: B.detect_bands(p3[0], n_bands=0)),
        ("detect_bands an unknown option", lambda: B.detect_bands(p3[0], sharpness=2)),
        ("detect_bands mask 'square'", lambda: B.detect_bands(p3[0], mask="square")),
        ("detect_bands mask of the wrong shape", lambda: B.detect_bands(p3[0], mask=np.ones((3, 3), bool))),
        ("detect_bands rho_sigma 0", lambda: B.detect_bands(p3[0], rho_sigma=0)),
        ("detect_bands threshold NaN", lambda: B.detect_bands(p3[0], threshold=float("nan"))),
        ("detect_bands n_theta 2", lambda: B.detect_bands(p3[0], n_theta=2)),
        ("detect_bands of a zero pattern (no bands)", lambda: _no_bands(B.detect_bands(np.zeros((24, 32))))),
        ("detect_bands of a NaN pattern (no bands)", lambda: _no_bands(B.detect_bands(np.full((24, 32), np.nan)))),
        ("detect_bands of a pattern with one inf (no bands)", lambda: _no_bands(B.detect_bands(_with_inf(rng.random((24, 32)))))),
        ("detect_bands_stack of a single pattern", lambda: B.detect_bands_stack(p3[0])),
        ("detect_bands_stack of an empty stack", lambda: B.detect_bands_stack(np.zeros((0, 24, 32)))),
        ("detect_bands_stack workers 0", lambda: B.detect_bands_stack(p3, workers=0)),
        ("BandDetector of shape (5,)", lambda: B.BandDetector((5,))),
        ("BandDetector of shape (0, 0)", lambda: B.BandDetector((0, 0))),
        ("BandDetector min_line_fraction 1", lambda: B.BandDetector((24, 32), min_line_fraction=1)),
        ("BandDetector.detect of a stack", lambda: B.BandDetector((24, 32)).detect(p3)),
        ("BandDetector.detect_stack of the wrong shape", lambda: B.BandDetector((24, 32)).detect_stack(np.zeros((2, 8, 8)))),
        ("BandDetector.detect_stack block 0", lambda: B.BandDetector((24, 32)).detect_stack(p3, block=0)),
        ("detect_bands_binary of a stack", lambda: B.detect_bands_binary(p3)),
        ("detect_bands_binary of a zero pattern (no bands)", lambda: _no_bands(B.detect_bands_binary(np.zeros((24, 32))))),
        ("detect_bands_binary of a NaN pattern (no bands)", lambda: _no_bands(B.detect_bands_binary(np.full((24, 32), np.nan)))),
        ("detect_bands_binary n_theta 0", lambda: B.detect_bands_binary(p3[0], n_theta=0)),
        ("detect_bands_binary num_peaks 0", lambda: B.detect_bands_binary(p3[0], num_peaks=0)),
        ("detect_bands_binary otsu_factor -1", lambda: B.detect_bands_binary(p3[0], otsu_factor=-1)),
        ("otsu_binarise of a NaN pattern", lambda: B.otsu_binarise(np.full((8, 8), np.nan))),
        ("hough_transform_binary rho_step 0", lambda: B.hough_transform_binary(np.ones((8, 8), bool), rho_step=0)),
        ("hough_transform_binary rho_step -1", lambda: B.hough_transform_binary(np.ones((8, 8), bool), rho_step=-1)),
        ("hough_transform_binary of a 3-D array", lambda: B.hough_transform_binary(np.ones((2, 8, 8), bool))),
        ("hough_peaks of an all-zero accumulator (no peaks)", lambda: _no_peaks(B.hough_peaks(np.zeros((20, 20))))),
        ("hough_peaks of an accumulator with NaN", lambda: B.hough_peaks(np.full((20, 20), np.nan))),
        ("hough_peaks num_peaks 0", lambda: B.hough_peaks(np.ones((5, 5)), num_peaks=0)),
        ("hough_peaks theta/rho of other sizes", lambda: B.hough_peaks(rng.random((20, 20)), theta=np.zeros(3), rho=np.zeros(3))),
        ("butterfly_kernels sigma 0", lambda: B.butterfly_kernels(0, 1)),
        ("line_endpoints of a 1-D shape", lambda: B.line_endpoints(np.zeros(1), np.zeros(1), (5,))),
        ("line_endpoints rho and theta of other sizes", lambda: B.line_endpoints(np.zeros(2), np.zeros(3), (5, 5))),
        # index
        ("HoughIndexer without a phase", lambda: X.HoughIndexer([], det)),
        ("HoughIndexer of an unknown phase", lambda: X.HoughIndexer(["unobtainium"], det)),
        ("HoughIndexer min_matched 2", lambda: X.HoughIndexer(["ni"], det, min_matched=2)),
        ("HoughIndexer angle_tol_deg 0", lambda: X.HoughIndexer(["ni"], det, angle_tol_deg=0)),
        ("HoughIndexer n_bands 0", lambda: X.HoughIndexer(["ni"], det, n_bands=0)),
        ("HoughIndexer n_families 0", lambda: X.HoughIndexer(["ni"], det, n_families=0)),
        ("HoughIndexer kv -20", lambda: X.HoughIndexer(["ni"], det, kv=-20)),
        ("HoughIndexer max_mad_deg NaN", lambda: X.HoughIndexer(["ni"], det, max_mad_deg=float("nan"))),
        ("HoughIndexer an unknown band option", lambda: X.HoughIndexer(["ni"], det, band_options={"sharpness": 1})),
        ("HoughIndexer of a detector that is not one", lambda: X.HoughIndexer(["ni"], "detector")),
        ("HoughIndexer.index of the wrong pattern shape", lambda: _indexer(det).index(np.zeros((2, 8, 8)))),
        ("HoughIndexer.index of a 1-D array", lambda: _indexer(det).index(np.zeros(8))),
        ("HoughIndexer.index of strings", lambda: _indexer(det).index(np.full((1, 24, 32), "a"))),
        ("HoughIndexer.index of an empty stack", lambda: _empty_index(_indexer(det).index(np.zeros((0, 24, 32))))),
        ("HoughIndexer.index index of the wrong length", lambda: _indexer(det).index(p3, index=np.arange(2))),
        ("HoughIndexer.index no_signal of the wrong length", lambda: _indexer(det).index(p3, no_signal=np.zeros(2, bool))),
        ("HoughIndexer.index of zero and NaN patterns (error 6)", lambda: _errors_6(_indexer(det).index(np.stack([np.zeros((24, 32)), np.full((24, 32), np.nan)])))),
        ("HoughIndexer.index_bands of a table of the wrong shape", lambda: _indexer(det).index_bands(np.zeros((2, 3)))),
        ("HoughIndexer.with_detector of another shape", lambda: _indexer(det).with_detector(Detector((30, 30), (0.5, 0.3, 0.6)))),
        ("IndexResult.from_array of 7 columns", lambda: X.IndexResult.from_array(np.zeros((2, 7)), phases=["ni"])),
        ("prepare_patterns of a 1-D array", lambda: X.prepare_patterns(np.zeros(5))),
        ("prepare_patterns of a zero pattern (zeros)", lambda: _zeros_ok(X.prepare_patterns(np.zeros((24, 32))))),
        ("prepare_patterns background of the wrong shape", lambda: X.prepare_patterns(p3, static_background=np.ones((2, 2)))),
        ("prepare_patterns dynamic_sigma 0", lambda: X.prepare_patterns(p3, dynamic_sigma=0)),
        ("prepare_patterns of strings", lambda: X.prepare_patterns(np.full((2, 24, 32), "a"))),
        ("index_map of an array (not a map)", lambda: X.index_map(p4, ["ni"])),
        ("index_map of a path (not an open map)", lambda: X.index_map(str(workdir / "clean.h5"), ["ni"])),
        ("index_map static_background 'mean'", lambda: _on_clean(workdir, lambda m: X.index_map(m, ["ni"], static_background="mean", progress=False))),
        ("index_map static_background of the wrong shape", lambda: _on_clean(workdir, lambda m: X.index_map(m, ["ni"], static_background=np.ones((3, 3)), progress=False))),
        ("index_map refine_pc 'best'", lambda: _on_clean(workdir, lambda m: X.index_map(m, ["ni"], refine_pc="best", progress=False))),
        ("index_map refine_points 0", lambda: _on_clean(workdir, lambda m: X.index_map(m, ["ni"], refine_pc="mean", refine_points=0, progress=False))),
        ("index_map executor 'gpu'", lambda: _on_clean(workdir, lambda m: X.index_map(m, ["ni"], executor="gpu", progress=False))),
        ("index_map dataset 'Nope'", lambda: _on_clean(workdir, lambda m: X.index_map(m, ["ni"], dataset="Nope", progress=False))),
        ("index_map of a detector of another shape", lambda: _on_clean(workdir, lambda m: X.index_map(m, ["ni"], detector=det, progress=False))),
        ("build_triplet_table of no reflectors", lambda: X.build_triplet_table(np.zeros((0, 3)), np.zeros((0, 3), int), np.zeros(0, int), np.eye(3)[None])),
        ("build_triplet_table of normals and hkl of other lengths", lambda: X.build_triplet_table(np.eye(3), np.eye(2, 3, dtype=int), np.zeros(3, int), np.eye(3)[None])),
        ("band_normals of a table of the wrong shape", lambda: X.band_normals(np.zeros((3, 2)), np.eye(3), (24, 32))),
        ("band_normals of a 1-D shape", lambda: X.band_normals(np.zeros((3, 6)), np.eye(3), (24,))),
        ("fit_pc_plane of mismatched positions", lambda: X.fit_pc_plane(_indexer(det), p3.astype(np.float32), np.arange(2), np.arange(3), (2, 2))),
        ("refine_pattern_centre of no patterns", lambda: X.refine_pattern_centre(_indexer(det), np.zeros((0, 24, 32), np.float32))),
        # map-level imaging
        ("vbse_maps signal 'edges'", lambda: _on_clean(workdir, lambda m: I.vbse_maps(m, signal="edges", progress=False))),
        ("vbse_maps grid '0x0'", lambda: _on_clean(workdir, lambda m: I.vbse_maps(m, grid="0x0", progress=False))),
        ("vbse_maps diode_strip 2", lambda: _on_clean(workdir, lambda m: I.vbse_maps(m, diode_strip=2, progress=False))),
        ("vbse_maps sigma -1", lambda: _on_clean(workdir, lambda m: I.vbse_maps(m, sigma=-1, progress=False))),
        ("vbse_map of an array (not a map)", lambda: I.vbse_map(p4)),
        ("quality_maps signal 'edges'", lambda: _on_clean(workdir, lambda m: I.quality_maps(m, signal="edges", progress=False))),
        ("quality_maps sigma 0", lambda: _on_clean(workdir, lambda m: I.quality_maps(m, sigma=0, progress=False))),
        ("quality_maps of a path (not an open map)", lambda: I.quality_maps(str(workdir / "clean.h5"))),
        ("quality_maps chunk_rows 0", lambda: _on_clean(workdir, lambda m: I.quality_maps(m, chunk_rows=0, progress=False))),
    ]
    for label, call in calls:
        yield Case(MISUSE, label, lambda call=call: _verdict_only(call()))


def _verdict_only(result: Any) -> str | None:
    """A misuse that was answered with a result: right (None) unless a check said otherwise (a verdict string)."""
    return result if isinstance(result, str) else None


def _with_nan(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[3] = np.nan
    return a


def _with_inf(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[3] = np.inf
    return a


def _empty_ok(result: np.ndarray, shape: tuple[int, ...]) -> str | None:
    return None if np.shape(result) == shape else f"silent-wrong: shape {np.shape(result)} for an empty input, {shape} expected"


def _zeros_ok(result: np.ndarray) -> str | None:
    return None if np.isfinite(result).all() and not np.any(result) else "silent-wrong: not zeros for a pattern without signal"


def _nan_ok(result: np.ndarray) -> str | None:
    return None if np.isnan(result).all() else "silent-wrong: a value for patterns without signal (NaN expected)"


def _no_bands(bands: Any) -> str | None:
    return None if len(bands) == 0 else f"silent-wrong: {len(bands)} bands in a pattern without signal"


def _no_peaks(peaks: Any) -> str | None:
    return None if len(peaks[0]) == 0 else f"silent-wrong: {len(peaks[0])} peaks in a flat accumulator"


def _adp_constant(func: Callable[..., np.ndarray]) -> str | None:
    p = np.random.default_rng(1).normal(size=(1, 3, 8, 8))
    p[0, 1] = 5.0
    adp = func(p)
    return None if np.isnan(adp[0, 1]) else f"silent-wrong: the dot product of a constant pattern is {adp[0, 1]} (NaN expected)"


_INDEXERS: dict[Any, Any] = {}


def _indexer(det: Any) -> Any:
    from kikuchi.index import HoughIndexer

    if id(det) not in _INDEXERS:
        _INDEXERS[id(det)] = HoughIndexer(["ni"], det)
    return _INDEXERS[id(det)]


def _empty_index(result: Any) -> str | None:
    return None if len(result) == 0 else "silent-wrong: results for no patterns"


def _errors_6(result: Any) -> str | None:
    return None if result.error.tolist() == [6, 6] else f"silent-wrong: errors {result.error.tolist()} for patterns without signal (6 expected)"


def _on_clean(workdir: Path, func: Callable[[Any], Any]) -> Any:
    import kikuchi

    with kikuchi.open(workdir / "clean.h5") as m:
        return func(m)
