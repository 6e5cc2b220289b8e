"""Misuse of the Python API: wrong types, shapes and ranges, missing files, folders for files.

Every public function of the reading, writing, conversion, simulation,
crystal, geometry and explorer modules is called the way a user gets it
wrong. Each call must be refused in one clear line (an error of kikuchi's
types naming the argument or the file), never with a bare ``KeyError`` or
``IndexError`` from deep inside, and never accepted and quietly wrong (a
negative map position read as the last row, a step of 0 stored as such):
such a call that returns is judged ``silent-wrong``.

A ``TypeError`` counts as a clear refusal (a wrong type is a TypeError in
Python) when kikuchi raised it on purpose or Python's argument binding did
(an unknown keyword); one from deep inside a library does not.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.hostile_cases._case import Case  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
VENDOR = SHARED / "vendor_patterns"
KIKUCHI_SRC = str(ROOT / "src" / "kikuchi")

#: Messages of Python's own argument binding: the caller passed what the signature does not take.
_BINDING = ("unexpected keyword argument", "positional argument", "required keyword-only argument", "takes no keyword")


class ClearTypeError(ValueError):
    """A one-line TypeError that kikuchi raised on purpose (or Python's argument binding), counted as a clear refusal."""


def clear_type_error(exc: TypeError) -> bool:
    """True when ``exc`` is one line and was raised by kikuchi's own code or by Python binding the call's arguments."""
    text = str(exc)
    if not text or "\n" in text.strip():
        return False
    if any(b in text for b in _BINDING):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and frames[-1].filename.startswith(KIKUCHI_SRC)


def _closing(result: Any) -> None:
    for name in ("close", "stop"):
        method = getattr(result, name, None)
        if callable(method):
            with contextlib.suppress(Exception):
                method()
            return


def refused(call: Callable[[], Any], *, accept: bool = False) -> Callable[[], str | None]:
    """A case's ``run``: ``call`` must be refused (``accept``: or it may succeed, e.g. a range clipped to the map)."""

    def run() -> str | None:
        said: list[warnings.WarningMessage] = []
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                result = call()
        except TypeError as exc:
            if clear_type_error(exc):
                raise ClearTypeError(f"TypeError: {exc}") from exc
            raise
        finally:
            for w in said:  # back to the judge, which counts them
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        _closing(result)
        if accept or any(issubclass(w.category, UserWarning) for w in said):
            return None  # accepted, or accepted with a word about what was odd
        shown = type(result).__name__ if not isinstance(result, (int, float, str, tuple)) else repr(result)[:60]
        return f"silent-wrong: accepted (returned {shown})"

    return run


# -- fixtures ----------------------------------------------------------------------------------
class Fixtures:
    """Small inputs made once in the work folder: a map file, a folder, a text file, image folders, an orientation map."""

    def __init__(self, workdir: Path):
        from benchmarks.hostile_cases.pattern_files import make_map_file

        self.dir = workdir / "api"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.map = make_map_file(self.dir / "map.h5")
        self.folder = self.dir / "a folder"
        self.folder.mkdir(exist_ok=True)
        self.text = self.dir / "notes.txt"
        self.text.write_text("not a pattern file\n")
        self.empty = self.dir / "empty.h5"
        self.empty.write_bytes(b"")
        self.missing = self.dir / "missing.h5"
        self.images = self._images()
        self.ctf = SHARED / "mtex" / "testdata_sqr.ctf"
        self.ebsp = VENDOR / "ebsp_v2_u8_3x4.ebsp"
        self.up1 = VENDOR / "up1_v3_3x4.up1"
        self.nordif = VENDOR / "nordif_kpdata"
        self.emsoft = VENDOR / "emsoft_simulated_ebsd.h5"
        self.n = 0

    def _images(self) -> Path:
        import tifffile

        folder = self.dir / "images"
        folder.mkdir(exist_ok=True)
        for r in range(2):
            for c in range(3):
                tifffile.imwrite(folder / f"{r}_{c}.tiff", np.full((6, 8), 10 * r + c, np.uint8))
        return folder

    def out(self, suffix: str = ".h5") -> Path:
        """A fresh output path."""
        self.n += 1
        return self.dir / f"out{self.n}{suffix}"

    def opened(self) -> Any:
        import kikuchi

        return kikuchi.open(self.map)


# -- the cases, by area ----------------------------------------------------------------------------
def open_cases(fx: Fixtures) -> Iterator[Case]:
    import kikuchi

    cls = "kikuchi.open options"
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("path 123", lambda: kikuchi.open(123)),
        ("path None", lambda: kikuchi.open(None)),
        ("path a list", lambda: kikuchi.open([str(fx.map)])),
        ("path bytes", lambda: kikuchi.open(bytes(fx.map))),
        ("path an open map", lambda: kikuchi.open(fx.opened())),
        ("missing file", lambda: kikuchi.open(fx.missing)),
        ("missing file with format", lambda: kikuchi.open(fx.missing, format="kikuchi")),
        ("a folder", lambda: kikuchi.open(fx.folder)),
        ("a text file", lambda: kikuchi.open(fx.text)),
        ("an empty .h5", lambda: kikuchi.open(fx.empty)),
        ("an image file", lambda: kikuchi.open(fx.images / "0_0.tiff")),
        ("an image folder", lambda: kikuchi.open(fx.images)),
        ("a CTF", lambda: kikuchi.open(fx.ctf)),
        ("format 'nope'", lambda: kikuchi.open(fx.map, format="nope")),
        ("format 5", lambda: kikuchi.open(fx.map, format=5)),
        ("format ['kikuchi']", lambda: kikuchi.open(fx.map, format=["kikuchi"])),
        ("format ebsp for an HDF5 file", lambda: kikuchi.open(fx.map, format="ebsp")),
        ("format bruker for a map file", lambda: kikuchi.open(fx.map, format="bruker")),
        ("format nordif for a map file", lambda: kikuchi.open(fx.map, format="nordif")),
        ("format edax_up for a map file", lambda: kikuchi.open(fx.map, format="edax_up")),
        ("format kikuchi for an .ebsp", lambda: kikuchi.open(fx.ebsp, format="kikuchi")),
        ("dataset 'Nope'", lambda: kikuchi.open(fx.map, dataset="Nope")),
        ("dataset 3", lambda: kikuchi.open(fx.map, dataset=3)),
        ("dataset 'Patterns' absent", lambda: kikuchi.open(fx.map, dataset="Patterns")),
        ("scan 'Nope'", lambda: kikuchi.open(fx.map, scan="Nope")),
        ("scan [1]", lambda: kikuchi.open(fx.map, scan=[1])),
        ("nav_shape for a map file", lambda: kikuchi.open(fx.map, nav_shape=(2, 2))),
        ("an unknown option", lambda: kikuchi.open(fx.map, bogus=1)),
        ("strict='yes'", lambda: kikuchi.open(fx.map, strict="yes")),
        ("ebsp nav_shape (0, 3)", lambda: kikuchi.open(fx.ebsp, nav_shape=(0, 3))),
        ("ebsp nav_shape 'ab'", lambda: kikuchi.open(fx.ebsp, nav_shape="ab")),
        ("ebsp nav_shape (2.5, 4)", lambda: kikuchi.open(fx.ebsp, nav_shape=(2.5, 4))),
        ("ebsp nav_shape (2, 2) too small", lambda: kikuchi.open(fx.ebsp, nav_shape=(2, 2))),
        ("ebsp nav_shape (3,)", lambda: kikuchi.open(fx.ebsp, nav_shape=(3,))),
        ("ebsp step_um (0, 1)", lambda: kikuchi.open(fx.ebsp, step_um=(0, 1))),
        ("ebsp step_um 'a'", lambda: kikuchi.open(fx.ebsp, step_um="a")),
        ("ebsp dataset 'Patterns'", lambda: kikuchi.open(fx.ebsp, dataset="Patterns")),
        ("up1 nav_shape (-1, 4)", lambda: kikuchi.open(fx.up1, nav_shape=(-1, 4))),
        ("up1 nav_shape (5, 5)", lambda: kikuchi.open(fx.up1, nav_shape=(5, 5))),
        ("up1 bits 12", lambda: kikuchi.open(fx.up1, bits=12)),
        ("nordif pattern_shape (0, 0)", lambda: kikuchi.open(fx.nordif, pattern_shape=(0, 0))),
        ("nordif pattern_shape (1000, 1000)", lambda: kikuchi.open(fx.nordif, pattern_shape=(1000, 1000))),
        ("nordif setting_file missing", lambda: kikuchi.open(fx.nordif, setting_file=fx.missing)),
        ("nordif setting_file a folder", lambda: kikuchi.open(fx.nordif, setting_file=fx.folder)),
        ("emsoft nav_shape (3, 4)", lambda: kikuchi.open(fx.emsoft, nav_shape=(3, 4))),
        ("emsoft pc_convention 'nope'", lambda: kikuchi.open(fx.emsoft, pc_convention="nope")),
    ]
    for label, call in calls:
        yield Case(cls, label, refused(call))
    yield Case(cls, "strict=True on a clean file", refused(lambda: kikuchi.open(fx.map, strict=True), accept=True), expect_ok=True)


def map_cases(fx: Fixtures) -> Iterator[Case]:
    cls = "EBSDMap methods"

    def with_map(action: Callable[[Any], Any], *, accept: bool = False) -> Callable[[], str | None]:
        def call() -> Any:
            with fx.opened() as m:
                out = action(m)
                if hasattr(out, "__next__"):
                    out = list(out)
                return out

        return refused(call, accept=accept)

    refusals: list[tuple[str, Callable[[Any], Any]]] = [
        ("pattern(3, 0) past the last row", lambda m: m.pattern(3, 0)),
        ("pattern(0, 4) past the last column", lambda m: m.pattern(0, 4)),
        ("pattern(-1, 0)", lambda m: m.pattern(-1, 0)),
        ("pattern(0, -1)", lambda m: m.pattern(0, -1)),
        ("pattern(1.5, 0)", lambda m: m.pattern(1.5, 0)),
        ("pattern('a', 0)", lambda m: m.pattern("a", 0)),
        ("pattern(None, 0)", lambda m: m.pattern(None, 0)),
        ("pattern(True, 0)", lambda m: m.pattern(True, 0)),
        ("pattern(10**20, 0)", lambda m: m.pattern(10**20, 0)),
        ("m[0]", lambda m: m[0]),
        ("m[0, 0, 0]", lambda m: m[0, 0, 0]),
        ("m['a']", lambda m: m["a"]),
        ("m[5, 5]", lambda m: m[5, 5]),
        ("m[-1, -1]", lambda m: m[-1, -1]),
        ("m[0:2, 0]", lambda m: m[0:2, 0]),
        ("read(-1)", lambda m: m.read(-1)),
        ("read('a')", lambda m: m.read("a")),
        ("read(0, 'b')", lambda m: m.read(0, "b")),
        ("read(2.5, 4)", lambda m: m.read(2.5, 4)),
        ("read(0, -3)", lambda m: m.read(0, -3)),
        ("read_chunk(-1)", lambda m: m.read_chunk(-1)),
        ("read_chunk(1000)", lambda m: m.read_chunk(1000)),
        ("read_chunk('a')", lambda m: m.read_chunk("a")),
        ("read_chunk(0.5)", lambda m: m.read_chunk(0.5)),
        ("read_indices([-1])", lambda m: m.read_indices([-1])),
        ("read_indices([12])", lambda m: m.read_indices([12])),
        ("read_indices(['a'])", lambda m: m.read_indices(["a"])),
        ("read_indices([0, 1.5])", lambda m: m.read_indices([0, 1.5])),
        ("read_indices(None)", lambda m: m.read_indices(None)),
        ("read_rows('a', 2)", lambda m: m.read_rows("a", 2)),
        ("read_rows(0, 2, cols=(3, 1))", lambda m: m.read_rows(0, 2, cols=(3, 1))),
        ("read_rows(0, 2, cols='ab')", lambda m: m.read_rows(0, 2, cols="ab")),
        ("read_rows(0, 2, cols=(0,))", lambda m: m.read_rows(0, 2, cols=(0,))),
        ("read_rows(2, 1)", lambda m: m.read_rows(2, 1)),
        ("iter_chunks(0)", lambda m: m.iter_chunks(0)),
        ("iter_chunks(-3)", lambda m: m.iter_chunks(-3)),
        ("iter_chunks('a')", lambda m: m.iter_chunks("a")),
        ("iter_chunks(workers='a')", lambda m: m.iter_chunks(workers="a")),
        ("with_dataset('Nope')", lambda m: m.with_dataset("Nope")),
        ("with_dataset(None)", lambda m: m.with_dataset(None)),
        ("read after close", lambda m: (m.close(), m.read(0, 1))[1]),
        ("pattern after close", lambda m: (m.close(), m.pattern(0, 0))[1]),
        ("read_all after close", lambda m: (m.close(), m.read_all())[1]),
    ]
    for label, action in refusals:
        yield Case(cls, label, with_map(action))
    accepted: list[tuple[str, Callable[[Any], Any]]] = [
        ("read(5, 2): empty", lambda m: m.read(5, 2)),
        ("read(0, 10**9): clipped to the patterns", lambda m: m.read(0, 10**9)),
        ("read_rows(0, 100): clipped to the map", lambda m: m.read_rows(0, 100)),
        ("read_indices([]): empty", lambda m: m.read_indices([])),
        ("iter_chunks(workers=-2): one thread", lambda m: m.iter_chunks(workers=-2)),
        ("numpy integers as positions", lambda m: m.pattern(np.int64(1), np.uint8(2))),
    ]
    for label, action in accepted:
        yield Case(cls, label, with_map(action, accept=True), expect_ok=True)


def writer_cases(fx: Fixtures) -> Iterator[Case]:
    from kikuchi.io.mapstore import MapWriter

    cls = "MapWriter"
    good = {"nav_shape": (2, 3), "pattern_shape": (4, 5), "dtype": "uint8"}

    def make(**changes: Any) -> Callable[[], Any]:
        def call() -> Any:
            kwargs = {**good, **{k: v for k, v in changes.items() if k != "path"}}
            with MapWriter(changes.get("path", fx.out()), **kwargs) as w:
                w.write(0, np.zeros((6, *w.pattern_shape), dtype=w.dtype))
            return None

        return call

    for label, changes in [
        ("nav_shape (0, 4)", {"nav_shape": (0, 4)}),
        ("nav_shape '3x4'", {"nav_shape": "3x4"}),
        ("nav_shape (3,)", {"nav_shape": (3,)}),
        ("nav_shape (2.5, 3)", {"nav_shape": (2.5, 3)}),
        ("nav_shape None", {"nav_shape": None}),
        ("pattern_shape (-1, 5)", {"pattern_shape": (-1, 5)}),
        ("pattern_shape (4, 5, 3)", {"pattern_shape": (4, 5, 3)}),
        ("dtype complex64", {"dtype": "complex64"}),
        ("dtype 'nonsense'", {"dtype": "nonsense"}),
        ("dtype object", {"dtype": object}),
        ("dtype str", {"dtype": str}),
        ("step_um ('a', 1)", {"step_um": ("a", 1)}),
        ("step_um (-1, 1)", {"step_um": (-1, 1)}),
        ("step_um (nan, 1)", {"step_um": (float("nan"), 1)}),
        ("step_um (0, 0)", {"step_um": (0, 0)}),
        ("step_um 5 (one number)", {"step_um": 5}),
        ("dataset 'Other'", {"dataset": "Other"}),
        ("chunk_patterns 0", {"chunk_patterns": 0}),
        ("chunk_patterns -5", {"chunk_patterns": -5}),
        ("chunk_patterns 'a'", {"chunk_patterns": "a"}),
        ("compression unknown filter", {"compression": {"compression": "nope"}}),
        ("compression 'gzip' (not a dict)", {"compression": "gzip"}),
        ("path a folder", {"path": fx.folder}),
        ("path 123", {"path": 123}),
    ]:
        yield Case(cls, label, refused(make(**changes)))

    def inside(action: Callable[[Any], Any]) -> Callable[[], Any]:
        def call() -> Any:
            with MapWriter(fx.out(), **good) as w:
                action(w)
                w.write(0, np.zeros((6, 4, 5), np.uint8))

        return call

    for label, action in [
        ("write(-1, ...)", lambda w: w.write(-1, np.zeros((1, 4, 5), np.uint8))),
        ("write(5, 2 patterns): past the end", lambda w: w.write(5, np.zeros((2, 4, 5), np.uint8))),
        ("write of the wrong pattern shape", lambda w: w.write(0, np.zeros((1, 5, 4), np.uint8))),
        ("write of a 2-D array", lambda w: w.write(0, np.zeros((4, 5), np.uint8))),
        ("write('a', ...)", lambda w: w.write("a", np.zeros((1, 4, 5), np.uint8))),
        ("write(1.5, ...)", lambda w: w.write(1.5, np.zeros((1, 4, 5), np.uint8))),
        ("write of strings", lambda w: w.write(0, np.full((1, 4, 5), "x"))),
        ("write of values beyond uint8", lambda w: w.write(0, np.full((1, 4, 5), 300))),
        ("write of NaN into uint8", lambda w: w.write(0, np.full((1, 4, 5), np.nan))),
        ("write_rows(5, ...)", lambda w: w.write_rows(5, np.zeros((1, 3, 4, 5), np.uint8))),
        ("set_missing of the wrong shape", lambda w: w.set_missing(np.zeros((3, 2), bool))),
        ("set_pattern_centre of the wrong length", lambda w: w.set_pattern_centre([0.5] * 4, 0.5, 0.5, convention="bruker")),
        ("set_pattern_centre convention 'nope'", lambda w: w.set_pattern_centre(0.5, 0.5, 0.5, convention="nope")),
        ("set_pattern_centre of words", lambda w: w.set_pattern_centre("a", 0.5, 0.5, convention="bruker")),
        ("set_euler of the wrong size", lambda w: w.set_euler(np.zeros((2, 2, 3)))),
        ("set_phases([1, 2])", lambda w: w.set_phases([1, 2])),
        ("set_phases('Ni')", lambda w: w.set_phases("Ni")),
        ("set_attrs(SampleTilt=object())", lambda w: w.set_attrs(SampleTilt=object())),
        ("set_attrs(SampleTilt='seventy')", lambda w: w.set_attrs(SampleTilt="seventy")),
        ("set_static_background of the wrong shape", lambda w: w.set_static_background(np.zeros((5, 4)))),
    ]:
        yield Case(cls, label, refused(inside(action)))

    def outside() -> Any:
        w = MapWriter(fx.out(), **good)
        w.write(0, np.zeros((6, 4, 5), np.uint8))

    yield Case(cls, "write outside the with block", refused(outside))

    def twice() -> Any:
        w = MapWriter(fx.out(), **good)
        with w:
            w.write(0, np.zeros((6, 4, 5), np.uint8))
        with w:
            w.write(0, np.zeros((6, 4, 5), np.uint8))

    yield Case(cls, "the with block entered twice", refused(twice))

    def short() -> Any:
        with MapWriter(fx.out(), **good) as w:
            w.write(0, np.zeros((3, 4, 5), np.uint8))

    yield Case(cls, "patterns never written", refused(short))


def accepted_cases(fx: Fixtures) -> Iterator[Case]:
    """Calls that look odd but are right: each must run (outputs in new folders are made, as ``mkdir -p``)."""
    import kikuchi
    from kikuchi.io.convert import convert_images
    from kikuchi.io.mapstore import MapWriter
    from kikuchi.simulate import simulate_from_orientation_map

    cls = "accepted on purpose"

    def writer_in_new_folder() -> None:
        with MapWriter(fx.dir / "new folder" / "m.h5", nav_shape=(1, 2), pattern_shape=(3, 3), dtype="uint8") as w:
            w.write(0, np.zeros((2, 3, 3), np.uint8))

    for label, call in [
        ("MapWriter into a folder not made yet", writer_in_new_folder),
        ("convert_images into a folder not made yet", lambda: convert_images(fx.images, fx.dir / "new2" / "m.h5", step_um=1.0, progress=False)),
        ("simulate into a folder not made yet", lambda: kikuchi.simulate(fx.dir / "new3" / "s.h5", shape=(2, 2), pattern_shape=(12, 12), grains=2, progress=False)),
        ("the orientations of a map file simulated again", lambda: simulate_from_orientation_map(fx.map, fx.out(), pattern_shape=(12, 12), progress=False)),
    ]:
        yield Case(cls, label, refused(call, accept=True), expect_ok=True, timeout_s=300)


def convert_cases(fx: Fixtures) -> Iterator[Case]:
    from kikuchi.io.convert import convert_images
    from kikuchi.io.export import convert_map

    cls = "convert_images, convert_map"

    def images(**kwargs: Any) -> Callable[[], Any]:
        source = kwargs.pop("source", fx.images)
        out = kwargs.pop("out", None) or fx.out()
        return lambda: convert_images(source, out, progress=False, **kwargs)

    for label, call in [
        ("source missing", images(source=fx.missing)),
        ("source a text file", images(source=fx.text)),
        ("source an empty folder", images(source=fx.folder)),
        ("source 123", images(source=123)),
        ("out a folder", images(out=fx.folder)),
        ("out 123", images(out=123)),
        ("nav_shape 'ab'", images(nav_shape="ab")),
        ("nav_shape (0, 3)", images(nav_shape=(0, 3))),
        ("nav_shape (3, 3): the wrong count", images(nav_shape=(3, 3))),
        ("step_um -1", images(step_um=-1)),
        ("step_um 'a'", images(step_um="a")),
        ("step_um 0", images(step_um=0)),
        ("step_um (1, 2, 3)", images(step_um=(1, 2, 3))),
        ("binning 0", images(binning=0)),
        ("binning 7: does not divide 6 x 8", images(binning=7)),
        ("binning 'two'", images(binning="two")),
        ("bin_mode 'max'", images(binning=2, bin_mode="max")),
        ("naming 'nikon'", images(naming="nikon")),
        ("naming 'edax' for ROW_COL names", images(naming="edax")),
        ("background missing file", images(background=fx.missing)),
        ("background of the wrong shape", images(background=np.ones((2, 2)))),
        ("background 'median'", images(background="median")),
        ("background all zero", images(background=np.zeros((6, 8)))),
        ("workers 0", images(workers=0)),
        ("workers 'a'", images(workers="a")),
        ("compression unknown filter", images(compression={"compression": "nope"})),
        ("chunk_patterns 0", images(chunk_patterns=0)),
        ("ctf missing", images(ctf=fx.missing)),
        ("ctf a text file", images(ctf=fx.text)),
        ("ctf of another map shape", images(ctf=fx.ctf)),
        ("ctf and ang both", images(ctf=fx.ctf, ang=fx.ctf)),
    ]:
        yield Case(cls, label, refused(call))

    def cmap(source: Any = None, out: Any = None, **kwargs: Any) -> Callable[[], Any]:
        return lambda: convert_map(fx.map if source is None else source, fx.out() if out is None else out, progress=False, **kwargs)

    for label, call in [
        ("convert_map source missing", cmap(source=fx.missing)),
        ("convert_map source 123", cmap(source=123)),
        ("convert_map source a folder", cmap(source=fx.folder)),
        ("convert_map output = input", cmap(out=fx.map)),
        ("convert_map output a folder", cmap(out=fx.folder)),
        ("convert_map to 'tiff'", cmap(to="tiff")),
        ("convert_map to None", cmap(to=None)),
        ("convert_map workers 'a'", cmap(workers="a")),
        ("convert_map workers -1", cmap(workers=-1)),
        ("convert_map a reader option the format lacks", cmap(nav_shape=(2, 2))),
        ("convert_map compression 'gzip' (not a dict)", cmap(compression="gzip")),
    ]:
        yield Case(cls, label, refused(call))


def orientation_cases(fx: Fixtures) -> Iterator[Case]:
    from kikuchi.io.orientation_map import read_orientation_map

    cls = "read_orientation_map (call)"
    for label, call in [
        ("path 123", lambda: read_orientation_map(123)),
        ("path None", lambda: read_orientation_map(None)),
        ("missing file", lambda: read_orientation_map(fx.dir / "missing.ctf")),
        ("a folder", lambda: read_orientation_map(fx.folder)),
        ("a text file", lambda: read_orientation_map(fx.text)),
        ("an empty .ctf", lambda: (fx.dir / "empty.ctf").write_text("") and None or read_orientation_map(fx.dir / "empty.ctf")),
        ("a pattern file without orientations", lambda: read_orientation_map(fx.ebsp)),
        ("format 'xyz'", lambda: read_orientation_map(fx.ctf, format="xyz")),
        ("format 5", lambda: read_orientation_map(fx.ctf, format=5)),
        ("format 'ang' for a CTF", lambda: read_orientation_map(fx.ctf, format="ang")),
        ("an unknown option", lambda: read_orientation_map(fx.ctf, bogus=1)),
    ]:
        yield Case(cls, label, refused(call))


def simulate_cases(fx: Fixtures) -> Iterator[Case]:
    import kikuchi
    from kikuchi.simulate import simulate_from_orientation_map

    cls = "kikuchi.simulate options"
    small = {"shape": (2, 2), "pattern_shape": (12, 12), "grains": 2, "progress": False}

    def sim(**changes: Any) -> Callable[[], Any]:
        path = changes.pop("path", None)
        return lambda: kikuchi.simulate(fx.out() if path is None else path, **{**small, **changes})

    for label, call in [
        ("shape (0, 5)", sim(shape=(0, 5))),
        ("shape 'ab'", sim(shape="ab")),
        ("shape (2.5, 3)", sim(shape=(2.5, 3))),
        ("shape (3,)", sim(shape=(3,))),
        ("pattern_shape (0, 10)", sim(pattern_shape=(0, 10))),
        ("pattern_shape (5000, 5000)", sim(pattern_shape=(5000, 5000))),
        ("pattern_shape 'big'", sim(pattern_shape="big")),
        ("grains 0", sim(grains=0)),
        ("grains -1", sim(grains=-1)),
        ("grains 'many'", sim(grains="many")),
        ("noise 'extreme'", sim(noise="extreme")),
        ("noise -5", sim(noise=-5)),
        ("kv -20", sim(kv=-20)),
        ("kv 'a'", sim(kv="a")),
        ("kv 0", sim(kv=0)),
        ("phase 'unobtainium'", sim(phase="unobtainium")),
        ("phase 42", sim(phase=42)),
        ("phase ''", sim(phase="")),
        ("phase []", sim(phase=[])),
        ("pc (1, 2)", sim(pc=(1, 2))),
        ("pc (0.5, 0.5, -1)", sim(pc=(0.5, 0.5, -1))),
        ("pc_convention 'nope'", sim(pc_convention="nope")),
        ("pc_convention emsoft without px_size_um", sim(pc=(0, 0, 15000), pc_convention="emsoft")),
        ("bit_depth 12", sim(bit_depth=12)),
        ("step_um 0", sim(step_um=0)),
        ("step_um -1", sim(step_um=-1)),
        ("step_um 'a'", sim(step_um="a")),
        ("binning 0", sim(binning=0)),
        ("sample_tilt_deg 'a'", sim(sample_tilt_deg="a")),
        ("sample_tilt_deg 1e300", sim(sample_tilt_deg=1e300)),
        ("master_pattern missing file", sim(master_pattern=fx.missing)),
        ("master_pattern a text file", sim(master_pattern=fx.text)),
        ("seed 'a'", sim(seed="a")),
        ("gradient_deg nan", sim(gradient_deg=float("nan"))),
        ("path a folder", sim(path=fx.folder)),
        ("an unknown option", sim(bogus=1)),
    ]:
        yield Case(cls, label, refused(call), timeout_s=300)

    def from_map(omap: Any = None, **kwargs: Any) -> Callable[[], Any]:
        return lambda: simulate_from_orientation_map(fx.ctf if omap is None else omap, fx.out(), progress=False, **kwargs)

    for label, call in [
        ("from_map: missing orientation map", from_map(fx.dir / "missing.ctf")),
        ("from_map: orientation map 123", from_map(123)),
        ("from_map: pattern_shape (0, 0)", from_map(pattern_shape=(0, 0))),
        ("from_map: pattern_shape (5000, 5000)", from_map(pattern_shape=(5000, 5000))),
        ("from_map: phase 'unobtainium'", from_map(phase="unobtainium")),
        ("from_map: pc (1, 2)", from_map(pc=(1, 2))),
        ("from_map: noise 'extreme'", from_map(noise="extreme")),
        ("from_map: bit_depth 3", from_map(bit_depth=3, noise="low")),
        ("from_map: kv -1", from_map(kv=-1)),
    ]:
        yield Case(cls, label, refused(call), timeout_s=300)


def crystal_geometry_cases(fx: Fixtures) -> Iterator[Case]:
    from kikuchi.crystal import Phase
    from kikuchi.geometry import Detector, convert_pc

    cls = "Phase, Detector, convert_pc"
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("Phase.parse('unobtainium')", lambda: Phase.parse("unobtainium")),
        ("Phase.parse('ni:999:0.35')", lambda: Phase.parse("ni:999:0.35")),
        ("Phase.parse('ni:225:-1')", lambda: Phase.parse("ni:225:-1")),
        ("Phase.parse('ni:225:abc')", lambda: Phase.parse("ni:225:abc")),
        ("Phase.parse('ni:225:')", lambda: Phase.parse("ni:225:")),
        ("Phase.parse('ni:Xx-9:0.35')", lambda: Phase.parse("ni:Xx-9:0.35")),
        ("Phase.parse('ni:225:0.35,0.35,0.35,90,90')", lambda: Phase.parse("ni:225:0.35,0.35,0.35,90,90")),
        ("Phase.parse('ni:225:nan')", lambda: Phase.parse("ni:225:nan")),
        ("Phase.parse('ni:225:inf')", lambda: Phase.parse("ni:225:inf")),
        ("Phase.parse('ti:194:0.29,0.29,0.46,90,90,200')", lambda: Phase.parse("ti:194:0.29,0.29,0.46,90,90,200")),
        ("Phase.parse('')", lambda: Phase.parse("")),
        ("Phase.parse(None)", lambda: Phase.parse(None)),
        ("Phase.parse(42)", lambda: Phase.parse(42)),
        ("Phase.parse(missing .cif)", lambda: Phase.parse(fx.dir / "missing.cif")),
        ("Phase.parse(a folder named .cif)", lambda: Phase.parse(_folder(fx.dir / "x.cif"))),
        ("Phase.parse(a text file as .cif)", lambda: Phase.parse(_file(fx.dir / "bad.cif", "not a cif\n"))),
        ("Phase.parse({'id': 1})", lambda: Phase.parse({"id": 1})),
        ("Phase.parse({'lattice': 'abc'})", lambda: Phase.parse({"lattice": "abc", "space_group": 225})),
        ("Phase.from_dict({})", lambda: Phase.from_dict({})),
        ("Detector((0, 10))", lambda: Detector((0, 10))),
        ("Detector('ab')", lambda: Detector("ab")),
        ("Detector(None)", lambda: Detector(None)),
        ("Detector pc (1, 2)", lambda: Detector((10, 10), pc=(1, 2))),
        ("Detector pc 'abc'", lambda: Detector((10, 10), pc="abc")),
        ("Detector pc (0.5, 0.5, -1)", lambda: Detector((10, 10), pc=(0.5, 0.5, -1))),
        ("Detector pc NaN", lambda: Detector((10, 10), pc=(np.nan, 0.5, 0.5))),
        ("Detector convention 'nope'", lambda: Detector((10, 10), convention="nope")),
        ("Detector convention None", lambda: Detector((10, 10), convention=None)),
        ("Detector emsoft without px_size_um", lambda: Detector((10, 10), pc=(0, 0, 15000), convention="emsoft")),
        ("Detector binning 0", lambda: Detector((10, 10), binning=0)),
        ("Detector binning 1.5", lambda: Detector((10, 10), binning=1.5)),
        ("Detector sample_tilt_deg 'a'", lambda: Detector((10, 10), sample_tilt_deg="a")),
        ("Detector sample_tilt_deg nan", lambda: Detector((10, 10), sample_tilt_deg=float("nan"))),
        ("Detector px_size_um -1", lambda: Detector((10, 10), px_size_um=-1)),
        ("Detector pc per point of 4 values", lambda: Detector((10, 10), pc=np.zeros((2, 2, 4)))),
        ("convert_pc of 2 values", lambda: convert_pc([1, 2], "bruker", "edax", shape=(10, 10))),
        ("convert_pc of words", lambda: convert_pc("abc", "bruker", "edax", shape=(10, 10))),
        ("convert_pc from 'nope'", lambda: convert_pc([0.5, 0.5, 0.5], "nope", "edax", shape=(10, 10))),
        ("convert_pc to 5", lambda: convert_pc([0.5, 0.5, 0.5], "bruker", 5, shape=(10, 10))),
        ("convert_pc to emsoft without px_size_um", lambda: convert_pc([0.5, 0.5, 0.5], "bruker", "emsoft", shape=(10, 10))),
        ("convert_pc shape (0, 10)", lambda: convert_pc([0.5, 0.5, 0.5], "bruker", "edax", shape=(0, 10))),
        ("convert_pc shape 'ab'", lambda: convert_pc([0.5, 0.5, 0.5], "bruker", "edax", shape="ab")),
        ("convert_pc binning 0", lambda: convert_pc([0.5, 0.5, 0.5], "bruker", "edax", shape=(10, 10), binning=0)),
        ("convert_pc px_size_um 0", lambda: convert_pc([0.5, 0.5, 0.5], "bruker", "emsoft", shape=(10, 10), px_size_um=0)),
        ("convert_pc without shape", lambda: convert_pc([0.5, 0.5, 0.5], "bruker", "edax")),
    ]
    for label, call in calls:
        yield Case(cls, label, refused(call))


def _folder(path: Path) -> Path:
    path.mkdir(exist_ok=True)
    return path


def _file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def explore_cases(fx: Fixtures) -> Iterator[Case]:
    import kikuchi

    cls = "kikuchi.explore options"
    for label, call in [
        ("path missing", lambda: kikuchi.explore(fx.missing)),
        ("path a folder", lambda: kikuchi.explore(fx.folder)),
        ("path 123", lambda: kikuchi.explore(123)),
        ("path a CTF", lambda: kikuchi.explore(fx.ctf)),
        ("port -1", lambda: kikuchi.explore(fx.map, port=-1)),
        ("port 70000", lambda: kikuchi.explore(fx.map, port=70000)),
        ("port 'a'", lambda: kikuchi.explore(fx.map, port="a")),
        ("port 1.5", lambda: kikuchi.explore(fx.map, port=1.5)),
        ("host '999.1.1.1'", lambda: kikuchi.explore(fx.map, host="999.1.1.1")),
        ("host 123", lambda: kikuchi.explore(fx.map, host=123)),
        ("orientations missing", lambda: kikuchi.explore(fx.map, orientations=fx.dir / "missing.ctf")),
        ("orientations 123", lambda: kikuchi.explore(fx.map, orientations=123)),
        ("orientations of another map shape", lambda: kikuchi.explore(fx.map, orientations=fx.ctf)),
        ("token 'short'", lambda: kikuchi.explore(fx.map, token="short")),
        ("height -5", lambda: kikuchi.explore(fx.map, height=-5)),
        ("height 'a'", lambda: kikuchi.explore(fx.map, height="a")),
        ("open_browser 'yes'", lambda: kikuchi.explore(fx.map, open_browser="yes")),
    ]:
        yield Case(cls, label, refused(call))


def image_cases(fx: Fixtures) -> Iterator[Case]:
    from kikuchi.io.imagefolder import describe_image_source, open_image_source, parse_shape, read_image

    cls = "image sources"
    for label, call in [
        ("open_image_source missing", lambda: open_image_source(fx.missing)),
        ("open_image_source a text file", lambda: open_image_source(fx.text)),
        ("open_image_source 123", lambda: open_image_source(123)),
        ("open_image_source naming 'nikon'", lambda: open_image_source(fx.images, naming="nikon")),
        ("open_image_source naming 5", lambda: open_image_source(fx.images, naming=5)),
        ("open_image_source step_um 'a'", lambda: open_image_source(fx.images, step_um="a")),
        ("open_image_source an empty folder", lambda: open_image_source(fx.folder)),
        ("read_image a folder", lambda: read_image(fx.folder)),
        ("read_image missing", lambda: read_image(fx.missing)),
        ("read_image a text file of words", lambda: read_image(fx.text)),
        ("read_image 123", lambda: read_image(123)),
        ("parse_shape 'ab'", lambda: parse_shape("ab")),
        ("parse_shape '0x3'", lambda: parse_shape("0x3")),
        ("parse_shape 12", lambda: parse_shape(12)),
        ("parse_shape '3x4x5'", lambda: parse_shape("3x4x5")),
        ("describe_image_source 123", lambda: describe_image_source(123)),
        ("positions of a map too small", lambda: open_image_source(fx.images).positions((1, 1))),
        ("positions of nav_shape 'ab'", lambda: open_image_source(fx.images).positions("ab")),
        ("read(99) past the images", lambda: open_image_source(fx.images).read(99)),
        ("read(-1)", lambda: open_image_source(fx.images).read(-1)),
    ]:
        yield Case(cls, label, refused(call))


def cases(workdir: Path) -> Iterator[Case]:
    fx = Fixtures(workdir)
    for section in (open_cases, map_cases, writer_cases, convert_cases, orientation_cases, simulate_cases,
                    crystal_geometry_cases, explore_cases, image_cases, accepted_cases):
        yield from section(fx)
