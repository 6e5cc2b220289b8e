"""NORDIF acquisitions: the real folder, its bad Setting.txt variants, kikuchi's writer and damaged files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import kikuchi
from kikuchi.io.edax_up import write_up
from kikuchi.io.nordif import FORMAT, NordifFile, read_settings, write_nordif
from kikuchi.io.source import MapFileError, MapFileWarning, Probe, identify
from tests.io._vendor import assert_matches_manifest, vendor_file

NAME = "nordif_kpdata/Pattern.dat"


def _folder(tmp_path, bad: int | None = None):
    """A copy of the real acquisition folder; ``bad``: Setting_bad{bad}.txt renamed to Setting.txt."""
    folder = tmp_path / "acq"
    shutil.copytree(vendor_file(NAME).parent, folder)
    for p in folder.iterdir():
        p.chmod(0o644)
    if bad is not None:
        (folder / f"Setting_bad{bad}.txt").replace(folder / "Setting.txt")
    return folder


def _map(rows: int, cols: int, h: int = 6, w: int = 5, seed: int = 0) -> np.ndarray:
    pats = np.random.default_rng(seed).integers(0, 255, size=(rows, cols, h, w)).astype(np.uint8)
    for r in range(rows):
        for c in range(cols):
            pats[r, c, 0, :3] = (r * cols + c, r, c)
    return pats


# -- the real acquisition ------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["file", "folder"])
def test_vendor_acquisition_matches_manifest(by):
    path = vendor_file(NAME)
    target = path if by == "file" else path.parent
    assert identify(target).name == "nordif"
    with kikuchi.open(target) as m:
        assert m.format == "nordif" and m.path.name == "Pattern.dat"
        assert_matches_manifest(m, NAME)
        assert m.kv == 20.0 and m.sample_tilt_deg == 70.0 and m.camera_tilt_deg == 0.0
        assert m.pattern_centre is None  # NORDIF 3 records none
        bg = m.static_background
        assert bg.shape == (60, 60) and bg.dtype == np.uint8 and 100 < bg.mean() < 180
        d = m.describe()["nordif"]
        assert d["software_version"] == "3.1.2" and d["microscope"] == "Hitachi SU-6600"
        assert d["working_distance_mm"] == 24.7 and d["number_of_samples"] == "3x3"
        assert sorted((c["x_px"], c["y_px"], c["in_settings"], c["exists"]) for c in d["calibration_patterns"]) == [
            (294, 532, True, True), (425, 447, True, True)
        ]
        assert d["background_files"] == ["Background acquisition pattern.bmp", "Background calibration pattern.bmp"]
        assert m.notes == []


def test_static_background_is_the_bitmap():
    from PIL import Image

    with kikuchi.open(vendor_file(NAME)) as m, Image.open(m.path.parent / "Background acquisition pattern.bmp") as im:
        assert np.array_equal(m.static_background, np.asarray(im.convert("L")))


# -- the bad Setting.txt variants ------------------------------------------------------------------
@pytest.mark.parametrize("bad", [1, 2])
def test_bad_settings_1_and_2_calibration_entries(tmp_path, bad):
    # both say [Calibration settings] Resolution 480x480 (the bitmaps are 60 x 60); bad1 has no
    # [Calibration patterns], bad2 one entry without coordinates in its key ("Calibration <TAB>425,447")
    folder = _folder(tmp_path, bad)
    with kikuchi.open(folder) as m:  # the acquisition settings are intact: nothing to warn about
        assert_matches_manifest(m, NAME)
        d = m.describe()["nordif"]
        assert d["calibration_resolution"] == [480, 480]
        listed = sorted((c["x_px"], c["y_px"], c["in_settings"], c["exists"], c["shape"]) for c in d["calibration_patterns"])
        assert listed == [(294, 532, False, True, (60, 60)), (425, 447, bad == 2, True, (60, 60))]


def test_acquisition_resolution_that_does_not_fit(tmp_path):
    folder = _folder(tmp_path)
    text = (folder / "Setting.txt").read_bytes()
    assert text.count(b"Resolution\t60x60") == 2  # [Acquisition settings], then [Calibration settings]
    (folder / "Setting.txt").write_bytes(text.replace(b"Resolution\t60x60", b"Resolution\t480x480", 1))
    with pytest.raises(MapFileError) as err:
        kikuchi.open(folder)
    msg = str(err.value)
    assert msg.startswith(str(folder / "Pattern.dat"))
    assert "32400 bytes, less than one 480 x 480 pattern (230400 bytes) of the Setting.txt [Acquisition settings] Resolution 480x480" in msg
    assert msg.endswith("the 3 x 3 map fits 60 x 60 patterns: pass pattern_shape=(height, width)")
    with kikuchi.open(folder, pattern_shape=(60, 60)) as m:
        assert_matches_manifest(m, NAME)
        assert m.open_options == {"format": "nordif", "pattern_shape": (60, 60)}
    (folder / "Setting.txt").write_bytes(text.replace(b"Resolution\t60x60", b"Resolution\t60x40", 1))
    with pytest.warns(MapFileWarning) as record:
        m = kikuchi.open(folder)  # a wrong size that fits: read, and said
    messages = [str(w.message) for w in record]
    assert messages == [
        "Pattern.dat: Pattern.dat holds 13 patterns, the 3 x 3 map uses the first 9; 4 left out",
        "Pattern.dat: 1200 bytes after the last complete pattern (pattern 13) are a partial pattern, left out",
    ]
    with m:
        assert m.pattern_shape == (40, 60) and m.notes == [msg.partition(": ")[2] for msg in messages]


def test_bad_settings_3_wrong_step(tmp_path):
    folder = _folder(tmp_path, 3)  # UTF-8 with replacement characters, 'To' for 'Top', step 1.0 for 1.5
    with pytest.warns(MapFileWarning, match=r"\[Area\] 4.5 x 4.5 µm \(width x height\) at step 1 µm is 4.5 x 4.5 steps, not the Number of samples 3x3"):
        m = kikuchi.open(folder / "Pattern.dat")
    with m:
        assert m.step_um == (1.0, 1.0) and m.kv == 20.0 and m.sample_tilt_deg == 70.0
        assert m.read_all().shape == (3, 3, 60, 60)


def test_without_settings(tmp_path):
    folder = _folder(tmp_path)
    (folder / "Setting.txt").unlink()
    assert not FORMAT.sniff(Probe(folder))  # a folder needs both files
    assert FORMAT.sniff(Probe(folder / "Pattern.dat"))  # the file name is NORDIF's
    with pytest.raises(MapFileError) as err:
        kikuchi.open(folder / "Pattern.dat")
    assert str(err.value) == (
        f"{folder / 'Pattern.dat'}: no Setting.txt next to it, so the pattern size is unknown: "
        "pass pattern_shape=(height, width) and nav_shape=(rows, cols) to kikuchi.open"
    )
    with kikuchi.open(vendor_file(NAME)) as real:
        truth = real.read_all()
    with kikuchi.open(folder / "Pattern.dat", pattern_shape=(60, 60), nav_shape=(3, 3)) as m:
        assert np.array_equal(m.read_all(), truth)
        assert m.static_background is not None and m.step_um == (1.0, 1.0) and m.kv is None and m.sample_tilt_deg == 70.0
    with kikuchi.open(folder / "Pattern.dat", pattern_shape=(60, 60)) as m:
        assert m.nav_shape == (1, 9)
    with pytest.warns(MapFileWarning, match="no Setting.txt next to it; 32400 bytes for the 3 x 3 map are 60 x 60 patterns"):
        m = kikuchi.open(folder / "Pattern.dat", nav_shape=(3, 3))
    with m:
        assert np.array_equal(m.read_all(), truth)
    with pytest.raises(MapFileError, match=r"pattern size is unknown: pass pattern_shape=\(height, width\) to kikuchi.open"):
        kikuchi.open(folder / "Pattern.dat", nav_shape=(1, 2))  # 16200 bytes a pattern: not square
    with kikuchi.open(folder, format="nordif", pattern_shape=(60, 60), nav_shape=(3, 3)) as m:
        assert m.nav_shape == (3, 3)


def test_settings_without_samples_or_resolution(tmp_path):
    folder = _folder(tmp_path)
    text = (folder / "Setting.txt").read_bytes()
    (folder / "Setting.txt").write_bytes(text.replace(b"Number of samples", b"Samples").replace(b"Resolution\t60x60", b"Resolution\t?"))
    with pytest.raises(MapFileError, match=r"Setting.txt gives no \[Acquisition settings\] Resolution \(WxH px\), so the pattern size is unknown"):
        kikuchi.open(folder)
    with pytest.warns(MapFileWarning, match=r"gives no \[Area\] Number of samples \(AxB\); the map is 1 x 9 \(pass nav_shape"):
        m = kikuchi.open(folder, pattern_shape=(60, 60))
    with m:
        assert m.nav_shape == (1, 9) and m.step_um == (1.5, 1.5)


# -- rows x columns of non-square maps ---------------------------------------------------------------
def test_non_square_map_rows_by_columns(tmp_path):
    pats = _map(3, 4)
    write_nordif(tmp_path, pats, step_um=0.5)
    text = (tmp_path / "Setting.txt").read_text(encoding="latin-1")
    assert "Number of samples\t3x4\t#" in text and "Width\t2.000 (0)" in text and "Height\t1.500 (0)" in text
    with kikuchi.open(tmp_path) as m:
        assert m.nav_shape == (3, 4) and np.array_equal(m.read_all(), pats)
        assert m.describe()["nordif"]["number_of_samples_read_as"] == "rows x cols (confirmed by [Area] width and height)"
    # the counts written the other way round, with [Area] saying so: [Area] decides
    (tmp_path / "Setting.txt").write_text(text.replace("3x4\t#", "4x3\t#"), encoding="latin-1", newline="")
    with pytest.warns(MapFileWarning, match=r"Number of samples 4x3, and \[Area\] 2 x 1.5 µm .* is 4 columns by 3 rows: read as 3 rows x 4 columns"):
        m = kikuchi.open(tmp_path)
    with m:
        assert m.nav_shape == (3, 4) and m[2, 3][0, :3].tolist() == [11, 2, 3]


# -- size disagreements -------------------------------------------------------------------------------
def test_truncated_pattern_dat(tmp_path):
    pats = _map(3, 4)
    target = write_nordif(tmp_path, pats, step_um=2.0)
    with open(target, "r+b") as f:
        f.truncate(7 * 30 + 12)
    with pytest.warns(MapFileWarning) as record:
        m = kikuchi.open(target)
    messages = " | ".join(str(w.message) for w in record)
    assert "Pattern.dat holds 7 complete 6 x 5 patterns, the 3 x 4 map needs 12 (interrupted acquisition?)" in messages
    assert "12 bytes after the last complete pattern (pattern 7) are a partial pattern" in messages
    with m:
        assert m.n_patterns == 7 and m.index_map[1, 2] == 6 and m.index_map[1, 3] == -1
        data = m.read_all()
        assert np.array_equal(data.reshape(12, 6, 5)[:7], pats.reshape(12, 6, 5)[:7]) and not data[2].any()


def test_longer_pattern_dat(tmp_path):
    target = write_nordif(tmp_path, _map(2, 2))
    with open(target, "ab") as f:
        f.write(bytes(30 * 3))
    with pytest.warns(MapFileWarning, match="holds 7 patterns, the 2 x 2 map uses the first 4; 3 left out"):
        m = kikuchi.open(target)
    m.close()


def test_nothing_fits(tmp_path):
    target = write_nordif(tmp_path, _map(2, 2))
    target.write_bytes(bytes(17))
    with pytest.raises(MapFileError, match=r"Pattern.dat: 17 bytes, less than one 6 x 5 pattern \(30 bytes\) of the Setting.txt"):
        kikuchi.open(tmp_path)
    target.write_bytes(b"")
    with pytest.raises(MapFileError, match=r"0 bytes, less than one 6 x 5 pattern"):
        kikuchi.open(target)


# -- writer ----------------------------------------------------------------------------------------
def test_round_trip_with_geometry_and_background(tmp_path):
    pats = _map(2, 3, h=8, w=10)
    bg = np.arange(80, dtype=np.uint8).reshape(8, 10)
    write_nordif(tmp_path / "new", pats, step_um=(0.25, 0.25), kv=15.0, sample_tilt_deg=69.5, camera_tilt_deg=5.0, static_background=bg)
    with kikuchi.open(tmp_path / "new") as m:
        assert np.array_equal(m.read_all(), pats) and m.pattern_shape == (8, 10)
        assert m.step_um == (0.25, 0.25) and m.kv == 15.0 and m.sample_tilt_deg == 69.5 and m.camera_tilt_deg == 5.0
        assert m.describe()["nordif"]["elevation_deg"] == -5.0
        assert np.array_equal(m.static_background, bg)
        with kikuchi.open(m.path, **m.open_options) as again:
            assert again.nav_shape == (2, 3)
    settings = read_settings(tmp_path / "new" / "Setting.txt")
    assert settings.text("Acquisition settings", "Resolution") == "10x8"  # width x height


def test_writer_refusals(tmp_path):
    with pytest.raises(ValueError, match="NORDIF patterns are uint8, got uint16"):
        write_nordif(tmp_path, _map(1, 2).astype(np.uint16))
    with pytest.raises(ValueError, match=r"one step size for rows and columns, got step_um=\(1.0, 2.0\)"):
        write_nordif(tmp_path, _map(1, 2), step_um=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"static_background must be uint8 of the pattern shape \(6, 5\)"):
        write_nordif(tmp_path, _map(1, 2), static_background=np.zeros((5, 6), np.uint8))
    assert not list(tmp_path.iterdir())


def test_format_writes_a_map(tmp_path):
    with kikuchi.open(vendor_file("up1_v3_3x4.up1")) as up:
        with pytest.raises(ValueError, match=r"one step size for rows and columns, got step_um=\(1.0, 2.0\)"):
            FORMAT.writes(tmp_path / "x", up)
    path = write_up(tmp_path / "sq.up1", _map(2, 3), step_um=(0.5, 0.5))
    with kikuchi.open(path) as up:
        FORMAT.writes(tmp_path / "out" / "Pattern.dat", up)
        with kikuchi.open(tmp_path / "out") as m:
            assert np.array_equal(m.read_all(), up.read_all()) and m.step_um == (0.5, 0.5)


# -- recognition ------------------------------------------------------------------------------------
def test_recognition(tmp_path):
    assert not FORMAT.sniff(Probe(vendor_file("up1_v3_3x4.up1")))
    assert not FORMAT.sniff(Probe(vendor_file("ebsp_v2_u8_3x4.ebsp")))
    text = tmp_path / "average.dat"
    text.write_text("1.0 2.0\n3.0 4.0\n")
    assert not FORMAT.sniff(Probe(text))  # a .dat file that is not NORDIF's
    renamed = _folder(tmp_path)
    (renamed / "Pattern.dat").rename(renamed / "scan1.dat")
    assert FORMAT.sniff(Probe(renamed / "scan1.dat"))  # beside a NORDIF Setting.txt
    with kikuchi.open(renamed / "scan1.dat") as m:
        assert_matches_manifest(m, NAME)
    with pytest.raises(MapFileError, match="folder holds no Pattern.dat"):
        NordifFile(renamed)
    with pytest.raises(MapFileError, match="no pattern dataset 'Patterns'"):
        NordifFile(renamed / "scan1.dat", dataset="Patterns")


def test_absurd_number_of_samples(tmp_path):
    folder = _folder(tmp_path)
    text = (folder / "Setting.txt").read_bytes()
    (folder / "Setting.txt").write_bytes(text.replace(b"Number of samples\t3x3", b"Number of samples\t30000x30000"))
    with pytest.raises(MapFileError, match=r"Setting.txt \[Area\] Number of samples 30000x30000 for the 9 patterns of Pattern.dat; pass nav_shape"):
        kikuchi.open(folder)
    with kikuchi.open(folder, nav_shape=(3, 3)) as m:
        assert_matches_manifest(m, NAME)


def test_setting_file_option():
    folder = vendor_file(NAME).parent
    with pytest.warns(MapFileWarning, match="the step may be wrong"):
        m = kikuchi.open(folder, setting_file=folder / "Setting_bad3.txt")
    with m:
        assert m.step_um == (1.0, 1.0)
        assert m.open_options == {"format": "nordif", "setting_file": str((folder / "Setting_bad3.txt").resolve())}
        assert m.describe()["nordif"]["settings_file"].endswith("Setting_bad3.txt")
    with pytest.raises(FileNotFoundError, match="nothing.txt: no such settings file"):
        kikuchi.open(folder, setting_file=folder / "nothing.txt")
