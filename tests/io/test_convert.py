"""Conversion of image folders and zips to the map file: positions, formats, geometry, background, binning, bad input."""

from __future__ import annotations

import zipfile

import h5py
import numpy as np
import pytest

import kikuchi
from kikuchi.io.convert import BinningOverflowError, ConversionError, convert_images
from kikuchi.io.orientation_map import OrientationMapWarning
from kikuchi.io.imagefolder import ImageReadError, ImageSource, ImageSourceError, open_image_source
from kikuchi.io.mapstore import open_map
from tests.conftest import shared_file
from tests.io._images import H, W, edax_name, make_folder, make_zip, pattern, write_image


def assert_every_position(path, rows, cols, dtype=np.uint16):
    with open_map(path) as m:
        assert m.nav_shape == (rows, cols) and m.pattern_shape == (H, W) and m.dtype == dtype
        assert m.is_row_major
        for r in range(rows):
            for c in range(cols):
                np.testing.assert_array_equal(m.pattern(r, c), pattern(r, c, dtype))
        full = m.read_all()
        for r in range(rows):
            for c in range(cols):
                assert (int(full[r, c, 0, 0]), int(full[r, c, 0, 1])) == (r, c)


def only(tmp_path, *names):
    """The output folder holds exactly these names (no partial file left)."""
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == sorted(names)


@pytest.fixture
def aztec(tmp_path):
    return make_folder(tmp_path / "Images", 5, 7)


def test_aztec_folder_every_pattern_at_its_position(tmp_path, aztec):
    out = convert_images(aztec, tmp_path / "map.h5", step_um=0.15, progress=False, chunk_patterns=4)
    assert out == tmp_path / "map.h5"
    assert_every_position(out, 5, 7)
    with kikuchi.open(out) as m:
        assert m.step_um == pytest.approx((0.15, 0.15))
        np.testing.assert_allclose(m.bse_map, [[pattern(r, c).mean() for c in range(7)] for r in range(5)])
        assert m.processing["naming"] == "aztec" and m.processing["images"] == 35
        assert m.binning == 1
    only(tmp_path, "map.h5")


@pytest.mark.parametrize("subdir", ["", "Images/"])
def test_zip_every_pattern_at_its_position(tmp_path, aztec, subdir):
    archive = make_zip(aztec, tmp_path / "patterns.zip", subdir=subdir)
    out = convert_images(archive, tmp_path / "map.h5", step_um=(0.1, 0.2), workers=2, progress=False, chunk_patterns=3)
    assert_every_position(out, 5, 7)
    with open_map(out) as m:
        assert m.step_um == pytest.approx((0.1, 0.2))


def test_threads_and_filters_give_the_same_patterns(tmp_path, aztec):
    ref = convert_images(aztec, tmp_path / "a.h5", workers=1, progress=False)
    with open_map(ref) as m:
        expected = m.read()
    cases = [("b.h5", {"workers": 3, "chunk_patterns": 2}, "gzip"), ("c.h5", {"compression": {"compression": "lzf"}}, "lzf"), ("d.h5", {"compression": {}}, None)]
    for name, kw, stored in cases:
        out = convert_images(aztec, tmp_path / name, progress=False, **kw)
        with open_map(out) as m:
            np.testing.assert_array_equal(m.read(), expected)
            assert m.describe()["compression"] == stored


def test_edax_names(tmp_path):
    folder = make_folder(tmp_path / "f", 3, 4, name=edax_name, dtype=np.uint8, ext="bmp")
    out = convert_images(folder, tmp_path / "m.h5", progress=False)
    assert_every_position(out, 3, 4, np.uint8)


def test_png_8bit_sorted_with_shape(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for k in range(6):
        write_image(folder / f"img{k + 1}.png", pattern(k // 3, k % 3, np.uint8))
    out = convert_images(folder, tmp_path / "m.h5", nav_shape=(2, 3), progress=False)
    assert_every_position(out, 2, 3, np.uint8)
    with open_map(out) as m:
        assert m.processing["naming"] == "sorted"


def test_source_object_is_accepted(tmp_path, aztec):
    out = convert_images(open_image_source(aztec), tmp_path / "m.h5", progress=False)
    assert_every_position(out, 5, 7)


# -- background and binning -----------------------------------------------------------


def test_background_from_file_text_and_mean(tmp_path, aztec):
    bg = np.full((H, W), 40, dtype=np.uint16)
    bg[3, 4] = 90
    write_image(tmp_path / "bg.tiff", bg)
    out = convert_images(aztec, tmp_path / "a.h5", background=tmp_path / "bg.tiff", progress=False)
    with open_map(out) as m:
        np.testing.assert_array_equal(m.static_background, bg)
        assert m.static_background.dtype == np.uint16
    np.savetxt(tmp_path / "bg.dat", bg * 0.5)
    out = convert_images(aztec, tmp_path / "b.h5", background=tmp_path / "bg.dat", progress=False)
    with open_map(out) as m:
        np.testing.assert_allclose(m.static_background, bg * 0.5)
    out = convert_images(aztec, tmp_path / "c.h5", background="mean", progress=False)
    with open_map(out) as m:
        expected = np.mean([pattern(r, c).astype(float) for r in range(5) for c in range(7)], axis=0)
        np.testing.assert_allclose(m.static_background, expected, rtol=1e-6)
        assert m.processing["background"] == "mean"


def test_background_of_the_wrong_size(tmp_path, aztec):
    write_image(tmp_path / "bg.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(ConversionError, match=r"bg.png: background of shape \(10, 10\) does not fit the patterns of shape \(16, 12\) or the binned \(8, 6\)"):
        convert_images(aztec, tmp_path / "m.h5", background=tmp_path / "bg.png", binning=2, progress=False)
    only(tmp_path, "bg.png")


def binned(p, mode):
    b = p.astype(np.float64).reshape(H // 2, 2, W // 2, 2)
    return b.sum(axis=(1, 3)) if mode == "sum" else np.rint(b.mean(axis=(1, 3)))


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_binning(tmp_path, aztec, mode):
    bg = np.arange(H * W, dtype=np.uint16).reshape(H, W)
    write_image(tmp_path / "bg.tiff", bg)
    out = convert_images(aztec, tmp_path / "m.h5", binning=2, bin_mode=mode, background=tmp_path / "bg.tiff", progress=False)
    with open_map(out) as m:
        assert m.pattern_shape == (H // 2, W // 2) and m.dtype == np.uint16 and m.binning == 2
        for r, c in [(0, 0), (4, 6), (2, 3)]:
            np.testing.assert_array_equal(m.pattern(r, c), binned(pattern(r, c), mode))
        b = bg.astype(np.float64).reshape(H // 2, 2, W // 2, 2)
        np.testing.assert_allclose(m.static_background, b.sum(axis=(1, 3)) if mode == "sum" else b.mean(axis=(1, 3)), atol=0.5)
        assert m.processing["bin_mode"] == mode


def test_sum_binning_overflow_is_refused(tmp_path):
    folder = make_folder(tmp_path / "f", 2, 3, dtype=np.uint8, ext="png")
    write_image(folder / "1_1.png", np.full((H, W), 200, np.uint8))
    with pytest.raises(BinningOverflowError, match=r"1_1.png \(map position row 1, col 1\): sum binning by 2 gives 800, above 255, the maximum of uint8 \(checked on the actual pixel sums; the worst case is 4 x 255 = 1020\); use --bin-mode mean"):
        convert_images(folder, tmp_path / "m.h5", binning=2, progress=False)
    only(tmp_path)
    # the mean keeps the range
    out = convert_images(folder, tmp_path / "m.h5", binning=2, bin_mode="mean", progress=False)
    with open_map(out) as m:
        assert int(m.pattern(1, 1).max()) == 200


def test_binning_must_divide_the_pattern(tmp_path, aztec):
    with pytest.raises(ConversionError, match=r"binning 5 does not divide the 16 x 12 patterns of .*0_0.tiff; choose one of 1, 2, 4"):
        convert_images(aztec, tmp_path / "m.h5", binning=5, progress=False)
    with pytest.raises(ConversionError, match="bin mode 'median': expected 'sum' or 'mean'"):
        convert_images(aztec, tmp_path / "m.h5", binning=2, bin_mode="median", progress=False)
    with pytest.raises(ConversionError, match="binning 0: expected a positive integer"):
        convert_images(aztec, tmp_path / "m.h5", binning=0, progress=False)
    only(tmp_path)


# -- geometry from a CTF ----------------------------------------------------------------


def tiny_ctf(path, rows=3, cols=4, xstep=0.25, ystep=0.5):
    lines = [
        "Channel Text File", "Prj\ttiny", "Author\t", "JobMode\tGrid", f"XCells\t{cols}", f"YCells\t{rows}",
        f"XStep\t{xstep:.4f}", f"YStep\t{ystep:.4f}", "AcqE1\t0.0000", "AcqE2\t0.0000", "AcqE3\t0.0000",
        "Euler angles refer to Sample Coordinate system (CS0)!\tMag\t1000.0000\tCoverage\t100\tDevice\t0\tKV\t15.0000"
        "\tTiltAngle\t70.0000\tTiltAxis\t0",
        "Phases\t1", "3.524;3.524;3.524\t90.000;90.000;90.000\tNickel\t11\t225",
        "Phase\tX\tY\tBands\tError\tEuler1\tEuler2\tEuler3\tMAD\tBC\tBS",
    ]
    for r in range(rows):
        for c in range(cols):
            phase = 0 if (r, c) == (1, 1) else 1
            lines.append(f"{phase}\t{c * xstep:.4f}\t{r * ystep:.4f}\t8\t0\t{10 * r + c:.4f}\t20.0000\t30.0000\t0.1\t100\t120")
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def test_geometry_from_ctf(tmp_path):
    folder = make_folder(tmp_path / "f", 3, 4)
    ctf = tiny_ctf(tmp_path / "Map Data 1.ctf")
    out = convert_images(folder, tmp_path / "m.h5", ctf=ctf, progress=False)
    assert_every_position(out, 3, 4)
    with open_map(out) as m:
        assert m.step_um == pytest.approx((0.5, 0.25))
        assert m.kv == pytest.approx(15.0) and m.sample_tilt_deg == pytest.approx(70.0)
        assert m.phases[0]["name"] == "Nickel" and m.phases[0]["space_group"] == 225
        assert m.phases[0]["lattice"][:3] == pytest.approx([0.3524] * 3)
        euler = np.rad2deg(m.euler)
        assert euler[2, 3] == pytest.approx([23, 20, 30], abs=1e-3)
        assert np.isnan(euler[1, 1]).all()  # not indexed
    # a folder that does not fit the CTF's map
    with pytest.raises(ImageSourceError, match=r"2_0.tiff: map position \(row 2, col 0\) lies outside the 2 x 4 map \(from --ctf .*small.ctf\); 4 image\(s\) outside"):
        convert_images(folder, tmp_path / "n.h5", ctf=tiny_ctf(tmp_path / "small.ctf", rows=2), progress=False)
    with pytest.raises(ConversionError, match=r"--shape 3x5 differs from .*Map Data 1.ctf: 3 rows x 4 columns"):
        convert_images(folder, tmp_path / "n.h5", ctf=ctf, nav_shape=(3, 5), progress=False)
    assert not (tmp_path / "n.h5").exists()


def test_geometry_from_ang(tmp_path):
    from kikuchi.io.orientation_map import OrientationMap, PhaseInfo

    euler = np.deg2rad(np.stack([np.arange(6) * 10.0, np.full(6, 20.0), np.full(6, 30.0)], axis=1))
    omap = OrientationMap.from_arrays(
        euler=euler, phase_id=np.ones(6, int), nav_shape=(2, 3), step_um=(0.4, 0.3),
        phases=[PhaseInfo(id=1, name="Iron", lattice_angstrom=(2.866, 2.866, 2.866), space_group=229)],
        header={"SampleTiltAngle": 68.5, "CameraElevationAngle": 8.0, "x-star": 0.51, "y-star": 0.62, "z-star": 0.73},
    )
    ang = omap.write(tmp_path / "scan.ang")
    folder = make_folder(tmp_path / "f", 2, 3)
    out = convert_images(folder, tmp_path / "m.h5", ang=ang, progress=False)
    assert_every_position(out, 2, 3)
    with open_map(out) as m:
        assert m.step_um == pytest.approx((0.4, 0.3), abs=1e-6)
        np.testing.assert_allclose(np.rad2deg(m.euler[1, 2]), [50, 20, 30], atol=1e-3)
        assert m.sample_tilt_deg == pytest.approx(68.5)
        assert m.camera_tilt_deg == pytest.approx(8.0)
        # the ANG header's PC (EDAX convention) is stored for every point in Bruker convention
        from kikuchi.geometry import convert_pc

        pc = m.pattern_centre
        assert pc.convention == "bruker"
        expected = convert_pc(np.array([0.51, 0.62, 0.73]), "edax", "bruker", shape=m.pattern_shape)
        np.testing.assert_allclose(pc.mean, expected, atol=1e-6)
        assert np.ptp(pc.pcx) == 0 and np.ptp(pc.dd) == 0
        # an ANG phase has a symmetry code, no space group: its point group is kept (IPF colours need it)
        phase = PhaseInfo.from_map_phase(m.phases[0])
        assert phase.name == "Iron" and phase.space_group is None and phase.point_group == "432"


def test_geometry_options_that_do_not_fit(tmp_path):
    folder = make_folder(tmp_path / "f", 2, 2)
    with pytest.raises(ConversionError, match="give either --ctf or --ang, not both"):
        convert_images(folder, tmp_path / "m.h5", ctf=tmp_path / "a.ctf", ang=tmp_path / "a.ang", progress=False)
    hexagonal = shared_file("mtex/testdata_hex.ctf")
    with pytest.warns(OrientationMapWarning), pytest.raises(ConversionError, match="testdata_hex.ctf: a hexagonal grid cannot be stored as a rows x cols pattern map"):
        convert_images(folder, tmp_path / "m.h5", ctf=hexagonal, progress=False)
    only(tmp_path)


# -- bad input: an error naming file and position, no output left ------------------------


def test_images_of_different_size(tmp_path, aztec):
    write_image(aztec / "3_2.tiff", np.zeros((16, 13), np.uint16))
    with pytest.raises(ImageReadError, match=r"3_2.tiff \(map position row 3, col 2\): 16 x 13 uint16 image, but .*0_0.tiff is 16 x 12 uint16; all patterns of a map must have the same size and dtype"):
        convert_images(aztec, tmp_path / "m.h5", progress=False)
    only(tmp_path)


def test_images_of_different_dtype(tmp_path, aztec):
    write_image(aztec / "4_6.tiff", pattern(4, 6, np.uint8))
    with pytest.raises(ImageReadError, match=r"4_6.tiff \(map position row 4, col 6\): 16 x 12 uint8 image, but .*0_0.tiff is 16 x 12 uint16"):
        convert_images(aztec, tmp_path / "m.h5", progress=False)
    only(tmp_path)


def test_missing_and_duplicate_positions(tmp_path, aztec):
    (aztec / "2_5.tiff").unlink()
    with pytest.raises(ImageSourceError, match=r"no image for map position \(row 2, col 5\) \(34 images for the 5 x 7 map of 35 points, 1 missing\)"):
        convert_images(aztec, tmp_path / "m.h5", progress=False)
    write_image(aztec / "2_5.tiff", pattern(2, 5))
    write_image(aztec / "02_05.tiff", pattern(2, 5))
    with pytest.raises(ImageSourceError, match=r"duplicate map position \(row 2, col 5\): .*02_05.tiff and .*2_5.tiff"):
        convert_images(aztec, tmp_path / "m.h5", progress=False)
    only(tmp_path)


def test_more_or_fewer_images_than_the_map(tmp_path, aztec):
    with pytest.raises(ImageSourceError, match=r"4_0.tiff: map position \(row 4, col 0\) lies outside the 4 x 7 map \(from --shape\); 7 image\(s\) outside \(35 images for the 4 x 7 map of 28 points\)"):
        convert_images(aztec, tmp_path / "m.h5", nav_shape=(4, 7), progress=False)
    with pytest.raises(ImageSourceError, match=r"no image for map position \(row 0, col 7\), \(row 1, col 7\), .* and 8 more \(35 images for the 6 x 8 map of 48 points, 13 missing\)"):
        convert_images(aztec, tmp_path / "m.h5", nav_shape=(6, 8), progress=False)
    only(tmp_path)


def test_unreadable_image(tmp_path, aztec):
    (aztec / "3_3.tiff").write_bytes(b"MM\x00*" + bytes(40))
    with pytest.raises(ImageReadError, match=r"3_3.tiff: unreadable image .* \(map position row 3, col 3\)"):
        convert_images(aztec, tmp_path / "m.h5", progress=False)
    only(tmp_path)


def test_corrupt_zip(tmp_path, aztec):
    archive = make_zip(aztec, tmp_path / "p.zip", order_seed=None)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("4_1.tiff")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 5 : start + 40] = bytes(35)
    archive.write_bytes(bytes(data))
    with pytest.raises(ImageReadError, match=r"p.zip:4_1.tiff: cannot read from the zip .* \(map position row 4, col 1\)"):
        convert_images(archive, tmp_path / "m.h5", progress=False)
    only(tmp_path, "p.zip")
    truncated = tmp_path / "t.zip"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ImageSourceError, match="t.zip: neither a folder nor a readable zip file"):
        convert_images(truncated, tmp_path / "m.h5", progress=False)
    only(tmp_path, "p.zip", "t.zip")


def test_ctrl_c_leaves_no_file(tmp_path, aztec, monkeypatch):
    calls = []
    real_read, real_read_into = ImageSource.read, ImageSource.read_into

    def read(self, i):
        calls.append(i)
        if len(calls) == 20:
            raise KeyboardInterrupt
        return real_read(self, i)

    def read_into(self, indices, out):
        calls.extend(indices)
        if len(calls) >= 20:
            raise KeyboardInterrupt
        return real_read_into(self, indices, out)

    monkeypatch.setattr(ImageSource, "read", read)
    monkeypatch.setattr(ImageSource, "read_into", read_into)
    with pytest.raises(KeyboardInterrupt):
        convert_images(aztec, tmp_path / "m.h5", workers=2, chunk_patterns=2, progress=False)
    only(tmp_path)


def test_output_replaces_an_old_file_only_when_complete(tmp_path, aztec):
    out = convert_images(aztec, tmp_path / "m.h5", progress=False)
    before = out.read_bytes()
    (aztec / "1_1.tiff").write_bytes(b"broken")
    with pytest.raises(ImageReadError, match="1_1.tiff"):
        convert_images(aztec, out, progress=False)
    assert out.read_bytes() == before
    with h5py.File(out) as f:
        assert f["Scan/EBSD/Data/RawPatterns"].shape == (35, H, W)
