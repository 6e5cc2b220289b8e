"""Pattern files as hostile files come: read what can be read, refuse the rest clearly, never be silently wrong.

Property-based (hypothesis, bounded) over every file of
``../shared/data/vendor_patterns``: random truncations, byte flips, deleted
and duplicated byte ranges, and for HDF5 files deleted, retyped and
duplicated datasets and attributes. The property (see
``benchmarks/hostile_cases/pattern_files.py``): the mutated file reads equal
to the unmutated one at every point whose bytes the mutation did not touch,
or reads with a ``MapFileWarning``, or is refused with a one-line error of
kikuchi's types; never another exception, never other patterns or geometry
no instrument writes without a word. The image-folder naming parser is
fuzzed the same way. The long sweep is ``benchmarks/hostile.py --only pattern_files``;
``KIKUCHI_FUZZ_EXAMPLES=N`` runs N examples of each property instead of 40.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from functools import cache
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kikuchi
from benchmarks.hostile_cases import pattern_files as pf
from kikuchi.io.imagefolder import ImageSourceError, open_image_source
from kikuchi.io.source import MapFileError, MapFileWarning
from tests.io._vendor import manifest, vendor_file

#: Examples per property: bounded in ``make test``; ``KIKUCHI_FUZZ_EXAMPLES=2000`` for a longer run by hand.
EXAMPLES = int(os.environ.get("KIKUCHI_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _originals() -> list[str]:
    names = []
    for name in sorted(manifest()):
        names.append(str(Path(name).parent) if Path(name).name == "Pattern.dat" else name)
    return names


BINARY = [n for n in _originals() if not n.endswith((".h5", ".h5oina"))]
HDF5 = [n for n in _originals() if n.endswith((".h5", ".h5oina"))]


@cache
def reference(name: str) -> pf.Reference:
    return pf.reference(vendor_file(name))


def original(name: str) -> Path:
    return vendor_file(name)


def assert_property(target: Path, ref: pf.Reference, touched: np.ndarray | None) -> str:
    """Read the mutant; the outcome ('ok', 'warning', 'error') or an assertion naming what was wrong."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            verdict = pf.read_mutant(target, ref, touched)
        except (ValueError, OSError, IndexError) as exc:
            text = str(exc)
            assert text and "\n" not in text.strip(), f"{type(exc).__name__} not one line: {text!r}"
            return "error"
    said = [w for w in caught if issubclass(w.category, UserWarning)]
    assert all("\n" not in str(w.message) for w in said), [str(w.message) for w in said]
    assert verdict is None, verdict
    return "warning" if said else "ok"


def mutated_copy(tmp: Path, name: str, edit) -> Path:
    """A copy of the original (its folder for NORDIF) with ``edit(bytes) -> bytes`` applied to the pattern file."""
    source = original(name)
    dest = pf._copy_original(source, tmp / source.name)
    file = dest / "Pattern.dat" if dest.is_dir() else dest
    file.write_bytes(edit(file.read_bytes()))
    return pf.open_target(dest)


def pattern_file_size(name: str) -> int:
    path = pf.open_target(original(name))
    return path.stat().st_size


# ---------------------------------------------------------------- the unmutated files


@pytest.mark.parametrize("name", _originals())
def test_every_original_reads_and_describes_itself(name):
    ref = reference(name)
    assert (ref.index_map >= 0).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MapFileWarning)
        with kikuchi.open(pf.open_target(original(name))) as m:
            json.dumps(m.describe(), default=str)
            m.orientation_map()  # phase ids the file does not describe are kept, with a warning


# ---------------------------------------------------------------- byte mutations


mutation = st.sampled_from(["truncate", "flip", "delete", "duplicate", "zero"])


@FUZZ
@given(name=st.sampled_from(BINARY + HDF5), kind=mutation, where=st.floats(0, 1, exclude_max=True), size=st.integers(1, 64),
       value=st.integers(0, 255))
def test_mutated_bytes(tmp_path_factory, name, kind, where, size, value):
    ref = reference(name)
    total = pattern_file_size(name)
    at = int(where * total)
    if kind == "truncate":
        edit, lo, hi = (lambda b: b[: max(1, at)]), max(1, at), total
    elif kind == "flip":
        edit, lo, hi = (lambda b: b[:at] + bytes([value if value != b[at] else b[at] ^ 0xFF]) + b[at + 1 :]), at, at + 1
    elif kind == "delete":
        edit, lo, hi = (lambda b: b[:at] + b[at + size :]), at, total
    elif kind == "duplicate":
        edit, lo, hi = (lambda b: b[: at + size] + b[at : at + size] + b[at + size :]), at, total
    else:
        edit, lo, hi = (lambda b: b[:at] + bytes(len(b[at : at + size])) + b[at + size :]), at, at + size
    target = mutated_copy(tmp_path_factory.mktemp("m"), name, edit)
    assert_property(target, ref, ref.touched_points(lo, hi))


# ---------------------------------------------------------------- HDF5 fields


@cache
def h5_fields(name: str) -> tuple[list[str], list[tuple[str, str]]]:
    return pf._h5_objects(original(name))


REPLACEMENTS = [value for _, value in pf.retyped_values()] + ["group"]


@FUZZ
@given(name=st.sampled_from(HDF5), pick=st.integers(0, 10**6), how=st.sampled_from(["delete", "retype", "attribute", "twin"]),
       replacement=st.sampled_from(range(len(REPLACEMENTS))))
def test_mutated_hdf5_fields(tmp_path_factory, name, pick, how, replacement):
    ref = reference(name)
    datasets, attrs = h5_fields(name)
    dest = pf._copy_original(original(name), tmp_path_factory.mktemp("h") / Path(name).name)
    with h5py.File(dest, "r+") as f:
        if how == "attribute" and attrs:
            obj, attr = attrs[pick % len(attrs)]
            value = REPLACEMENTS[replacement]
            if isinstance(value, str):
                del f[obj].attrs[attr]
            else:
                f[obj].attrs[attr] = value
        else:
            d = datasets[pick % len(datasets)]
            if how == "delete":
                del f[d]
            elif how == "twin":
                f.copy(f[d], f"{d} copy")
                parent = d.rsplit("/", 1)[0] if "/" in d else "/"
                f.copy(f[parent], f"{parent} twin") if parent != "/" else None
            else:
                value = REPLACEMENTS[replacement]
                del f[d]
                if isinstance(value, str):
                    f.create_group(d)
                else:
                    f[d] = value
    assert_property(dest, ref, None)


# ---------------------------------------------------------------- the sweep's cases, a sample of each class


def test_a_sample_of_the_sweep(tmp_path):
    """Some of each class of ``benchmarks/hostile.py --only pattern_files``, through the same judge, none 'other'."""
    from benchmarks.hostile_cases._case import judge

    rng = np.random.default_rng(3)
    picked: dict[str, list] = {}
    for m in pf.all_mutations(tmp_path, per_kind=2):
        picked.setdefault(m.cls, []).append(m)
    counter = [0]
    try:
        for cls, mutations in picked.items():
            for k in rng.choice(len(mutations), size=min(6, len(mutations)), replace=False):
                result = judge(pf.mutation_case(mutations[int(k)], tmp_path, counter))
                assert result.outcome != "other", (cls, result.label, result.detail)
    finally:
        pf._WORKER.stop()


# ---------------------------------------------------------------- geometry no instrument writes, unwritten chunks


def test_implausible_geometry_is_said_and_read_as_stored(tmp_path):
    path = pf._copy_original(original("bruker_kpdummy_full.h5"), tmp_path / "b.h5")
    with h5py.File(path, "r+") as f:
        del f["Scan 0/EBSD/Header/SampleTilt"]
        f["Scan 0/EBSD/Header/SampleTilt"] = 1e300
        del f["Scan 0/EBSD/Header/KV"]
        f["Scan 0/EBSD/Header/KV"] = -5.0
    with pytest.warns(MapFileWarning, match=r"b.h5: geometry no instrument writes: sample tilt 1e\+300° \(outside -90..90\), accelerating voltage -5 kV; read as stored"):
        with kikuchi.open(path) as m:
            assert m.sample_tilt_deg == 1e300 and m.kv == -5.0
    with pytest.raises(MapFileError, match=r"sample tilt 1e\+300° .* \(an error, not a warning, in strict mode\)"):
        kikuchi.open(path, strict=True)


def test_chunks_never_written_are_missing_points(tmp_path):
    """A zeroed chunk index (or an interrupted writer) leaves chunks HDF5 reads as its fill value: never patterns of zeros without a word."""
    path = tmp_path / "m.h5"
    with h5py.File(path, "w") as f:
        f["Scan/EBSD/Header/NCOLS"] = 3
        f["Scan/EBSD/Header/NROWS"] = 2
        ds = f.create_dataset("Scan/EBSD/Data/RawPatterns", shape=(6, 4, 5), dtype="uint8", chunks=(2, 4, 5))
        ds[0:4] = 7
    with pytest.warns(MapFileWarning, match=r"2 pattern\(s\) in chunks that were never written \(storage index 4 first.*map rows 1..1\) are read as missing"):
        m = kikuchi.open(path)
    with m:
        assert m.index_map.tolist() == [[0, 1, 2], [3, -1, -1]]
        assert (m.read_rows(1, 2)[0, 1:] == 0).all()


def test_a_zeroed_ebsp_table_entry_is_said(tmp_path):
    path = pf._copy_original(original("ebsp_v2_u8_3x4.ebsp"), tmp_path / "z.ebsp")
    data = bytearray(path.read_bytes())
    data[8 + 8 * 11 : 8 + 8 * 12] = bytes(8)  # the last point's offset: 0, "no pattern"
    path.write_bytes(bytes(data))
    with pytest.warns(MapFileWarning, match=r"z.ebsp: 1 pattern record\(s\) in the file are in no offsets table entry .*read as missing"):
        with kikuchi.open(path) as m:
            assert m.index_map[2, 3] == -1 and (m.index_map >= 0).sum() == 11


def test_bruker_without_map_positions_is_said(tmp_path):
    path = pf._copy_original(original("bruker_custom_u8_fullmap_shuffled_semIXIY.h5"), tmp_path / "s.h5")
    with h5py.File(path, "r+") as f:
        del f["Scan 0/SEM/SEM IX"]
    with pytest.warns(MapFileWarning, match=r"no map positions \('Scan 0/SEM/SEM IX, SEM IY' are not both datasets\): the patterns are taken as stored row by row"):
        kikuchi.open(path).close()


# ---------------------------------------------------------------- the examples


def test_non_numeric_header_attribute_names_file_group_and_attribute(tmp_path):
    path = pf.make_map_file(tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        f["Scan/EBSD/Header"].attrs["SampleTilt"] = "seventy"
    with pytest.raises(MapFileError, match=r"m.h5: attribute SampleTilt of 'Scan/EBSD/Header' is 'seventy', not a number \(degrees\); correct it"):
        kikuchi.open(path)


def test_phases_attribute_that_is_not_json_is_read_around_and_said(tmp_path):
    path = pf.make_map_file(tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        f["Scan/EBSD/Header/Phases/1"].attrs["json"] = "{name: Ni"
    with kikuchi.open(path) as m:
        with pytest.warns(MapFileWarning, match=r"m.h5: 'Scan/EBSD/Header/Phases/1': attribute 'json' is not a JSON description of a phase \('\{name: Ni': Expecting property name"):
            assert m.phases == [{"id": 1}]
        assert m.read_all().shape == (3, 4, 12, 16)  # the patterns are all there
    with kikuchi.open(path, strict=True) as m, pytest.raises(MapFileError, match="strict mode"):
        m.phases  # noqa: B018


def test_processing_attribute_that_is_not_json(tmp_path):
    path = pf.make_map_file(tmp_path / "m.h5")
    with h5py.File(path, "r+") as f:
        f["Scan/EBSD/Header/Processing"].attrs["json"] = np.float64(3.0)
    with kikuchi.open(path) as m, pytest.warns(MapFileWarning, match=r"'Scan/EBSD/Header/Processing': attribute 'json' is not a JSON object of parameters \(it is 3.0\)"):
        assert m.processing is None


def test_image_folder_with_two_prefixes_names_them(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("Map1_0_0.tiff", "Map1_0_1.tiff", "Map2_0_0.tiff"):
        (folder / name).write_bytes(b"")
    with pytest.raises(ImageSourceError, match=r"f: images named ROW_COL with different prefixes: 'Map1_' \(2 files, e.g. Map1_0_0.tiff\), 'Map2_' \(1 files, e.g. Map2_0_0.tiff\): two maps in one folder"):
        open_image_source(folder)


def test_image_folder_where_some_names_carry_no_position(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("0_0.tif", "0_1.tif", "1_0.tif", "1_1.tif", "extra.tif"):
        (folder / name).write_bytes(b"")
    with pytest.raises(ImageSourceError, match=r"f: of 5 image names, 4 give map positions as ROW_COL but 1 do not \(extra.tif\): move the odd ones out, or pass naming='sorted'"):
        open_image_source(folder)
    assert open_image_source(folder, naming="sorted").scheme == "sorted"


def test_image_folder_mixing_edax_prefixes(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for name in ("A_x0y0.png", "A_x1y0.png", "B_x0y1.png", "B_x1y1.png"):
        (folder / name).write_bytes(b"")
    with pytest.raises(ImageSourceError, match=r"images named \.\.\._x#y# with different prefixes: 'A_' \(2 files, e.g. A_x0y0.png\), 'B_'"):
        open_image_source(folder)


# ---------------------------------------------------------------- the image-folder naming parser


@st.composite
def name_sets(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    return pf.random_name_set(np.random.default_rng(seed), draw(st.integers(0, 1)))


@settings(max_examples=max(150, EXAMPLES), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name_set=name_sets())
def test_image_folder_names(tmp_path_factory, name_set):
    folder = tmp_path_factory.mktemp("names") / "f"
    try:
        verdict = pf.check_name_set(folder, name_set)
    except ImageSourceError as exc:
        assert "\n" not in str(exc) and str(folder) in str(exc) or "duplicate map position" in str(exc), str(exc)
        return
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert verdict is None, (name_set.label, sorted(name_set.names), verdict)
