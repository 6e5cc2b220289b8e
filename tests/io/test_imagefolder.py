"""Pattern-image sources: naming schemes, folders and zips, image formats, bad input."""

from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from kikuchi.io.imagefolder import (
    ImageReadError,
    ImageSourceError,
    describe_image_source,
    natural_key,
    open_image_source,
    parse_shape,
    read_image,
)
from tests.conftest import shared_file
from tests.io._images import aztec_name, edax_name, make_folder, make_zip, pattern, write_image


def check_every_position(src, nav_shape):
    shape, order = src.positions(nav_shape)
    rows, cols = shape
    for k, i in enumerate(order):
        np.testing.assert_array_equal(src.read(int(i)), pattern(k // cols, k % cols, src.read(int(i)).dtype))


def test_aztec_folder(tmp_path):
    make_folder(tmp_path / "Images", 3, 11)
    src = open_image_source(tmp_path / "Images")
    assert src.scheme == "aztec" and src.container == "folder" and src.prefix == ""
    assert len(src) == 33
    assert src.inferred_shape() == (3, 11)
    # natural order: 0_2 before 0_10
    assert src.names.index("0_2.tiff") < src.names.index("0_10.tiff")
    img = src.read(src.names.index("2_10.tiff"))
    assert img.dtype == np.uint16 and img.shape == (16, 12)
    assert (int(img[0, 0]), int(img[0, 1])) == (2, 10)
    check_every_position(src, None)


def test_aztec_names_with_a_prefix(tmp_path):
    make_folder(tmp_path / "f", 2, 3, name=lambda r, c, ext: aztec_name(r, c, ext, prefix="Map Data 1_"))
    src = open_image_source(tmp_path / "f")
    assert src.scheme == "aztec" and src.prefix == "Map Data 1_"
    check_every_position(src, (2, 3))


def test_mixed_prefixes_are_refused(tmp_path):
    make_folder(tmp_path / "f", 1, 2, name=lambda r, c, ext: aztec_name(r, c, ext, prefix="A_"))
    make_folder(tmp_path / "f", 1, 3, name=lambda r, c, ext: aztec_name(r, c, ext, prefix="B_"))
    with pytest.raises(ImageSourceError, match=r"f: images named ROW_COL with different prefixes: 'A_' \(2 files, e.g. A_0_0.tif+\), 'B_' \(3 files, e.g. B_0_0.tif+\)"):
        open_image_source(tmp_path / "f")


def test_background_beside_the_patterns_is_not_a_pattern(tmp_path):
    folder = make_folder(tmp_path / "f", 2, 2)
    write_image(folder / "StaticBackground.tiff", pattern(0, 0))
    src = open_image_source(folder)
    assert len(src) == 4 and src.ignored == ["StaticBackground.tiff"]


def test_edax_names_bmp_8bit(tmp_path):
    make_folder(tmp_path / "f", 3, 4, name=edax_name, dtype=np.uint8, ext="bmp")
    src = open_image_source(tmp_path / "f")
    assert src.scheme == "edax" and src.prefix == "Scan1_"
    assert src.read(0).dtype == np.uint8
    check_every_position(src, (3, 4))


def test_edax_coordinates_in_micrometres(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for r in range(2):
        for c in range(3):
            write_image(folder / f"m_x{c * 0.25:.2f}y{r * 0.5:.2f}.png", pattern(r, c, np.uint8))
    src = open_image_source(folder)
    assert src.scheme == "edax" and src.inferred_shape() == (2, 3)
    check_every_position(src, (2, 3))
    assert open_image_source(folder, step_um=(0.25, 0.25)).inferred_shape() == (3, 3)  # y step 0.5 = 2 rows


def test_edax_names_with_a_separator_and_8bit_tiff(tmp_path):
    make_folder(tmp_path / "f", 2, 3, name=lambda r, c, ext: f"Map-x{c}_y{r}.{ext}", dtype=np.uint8, ext="tif")
    src = open_image_source(tmp_path / "f")
    assert src.scheme == "edax" and src.read(0).dtype == np.uint8
    check_every_position(src, (2, 3))


def test_sorted_names_need_a_shape(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for k in range(6):
        write_image(folder / f"pattern{k + 1}.png", pattern(k // 3, k % 3, np.uint8))
    src = open_image_source(folder)
    assert src.scheme == "sorted" and src.inferred_shape() is None
    with pytest.raises(ImageSourceError, match=r"carry no map positions \(sorted naming\); give the map shape with --shape"):
        src.positions(None)
    check_every_position(src, (2, 3))
    with pytest.raises(ImageSourceError, match=r"6 images but the 2 x 2 map has 4 points \(more images than map points\); first image beyond the map: .*pattern5.png"):
        src.positions((2, 2))
    with pytest.raises(ImageSourceError, match=r"6 images but the 3 x 3 map \(from --shape\) has 9 points \(fewer images than map points\)"):
        src.positions((3, 3), shape_source="--shape")


def test_forced_naming(tmp_path):
    make_folder(tmp_path / "f", 2, 2)
    src = open_image_source(tmp_path / "f", naming="sorted")
    assert src.scheme == "sorted" and src.rows is None
    with pytest.raises(ImageSourceError, match=r"4 image name\(s\) do not follow the edax scheme \.\.\._x\{X\}y\{Y\}\.ext, e\.g\. 0_0\.tiff"):
        open_image_source(tmp_path / "f", naming="edax")
    with pytest.raises(ValueError, match="naming 'nikon': expected one of aztec, edax, sorted"):
        open_image_source(tmp_path / "f", naming="nikon")


def test_zip_read_without_extracting(tmp_path):
    folder = make_folder(tmp_path / "Images", 3, 4)
    archive = make_zip(folder, tmp_path / "patterns.zip", subdir="Images/")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("__MACOSX/Images/._0_0.tiff", b"resource fork")
        zf.writestr("Images/", b"")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with open_image_source(archive) as src:
        assert src.container == "zip" and src.scheme == "aztec" and len(src) == 12
        assert src.names[0] == "Images/0_0.tiff"
        assert src.label(0).endswith("patterns.zip:Images/0_0.tiff")
        check_every_position(src, (3, 4))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing extracted


def test_png_16bit_and_grey_rgb(tmp_path):
    p16 = tmp_path / "a.png"
    write_image(p16, pattern(3, 4, np.uint16) * 300)
    img = read_image(p16)
    assert img.dtype == np.uint16
    np.testing.assert_array_equal(img, pattern(3, 4, np.uint16) * 300)
    grey = pattern(1, 2, np.uint8)
    from PIL import Image

    Image.fromarray(np.stack([grey] * 3, axis=-1)).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgb.png"), grey)
    colour = np.stack([grey, grey, grey + 1], axis=-1)
    Image.fromarray(colour).save(tmp_path / "colour.png")
    with pytest.raises(ImageReadError, match=r"colour.png: colour image \(3 channels\); EBSD patterns must be greyscale"):
        read_image(tmp_path / "colour.png")


def test_real_pattern_files():
    bmp = read_image(shared_file("xcdskd/ocean_116_176_raw.bmp"))
    assert bmp.shape == (240, 320) and bmp.dtype == np.uint8
    tif = read_image(shared_file("xcdskd/Si_img8_binned.tif"))
    assert tif.shape == (60, 80) and tif.dtype == np.uint8
    txt = read_image(shared_file("xcdskd/ocean_map_average.dat"))
    assert txt.shape == (240, 320) and 100 < txt.mean() < 102


def test_unreadable_image(tmp_path):
    bad = tmp_path / "0_1.tiff"
    bad.write_bytes(b"II*\x00garbage")
    with pytest.raises(ImageReadError, match=r"0_1.tiff: unreadable image"):
        read_image(bad)
    (tmp_path / "bg.txt").write_text("1 2 3\n4 five 6\n")
    with pytest.raises(ImageReadError, match=r"bg.txt: not an image and not a text array of numbers"):
        read_image(tmp_path / "bg.txt")
    with pytest.raises(FileNotFoundError, match="no such image file"):
        read_image(tmp_path / "none.png")


def test_corrupt_zip_member(tmp_path):
    folder = make_folder(tmp_path / "f", 1, 3)
    archive = make_zip(folder, tmp_path / "p.zip", order_seed=None)
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("0_1.tiff")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10 : start + 30] = bytes(20)  # damage the compressed data of 0_1.tiff
    archive.write_bytes(bytes(data))
    src = open_image_source(archive)
    np.testing.assert_array_equal(src.read(src.names.index("0_0.tiff")), pattern(0, 0))
    with pytest.raises(ImageReadError, match=r"p.zip:0_1.tiff: cannot read from the zip"):
        src.read(src.names.index("0_1.tiff"))


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
@pytest.mark.parametrize("pread", ["os", "zipfile"])  # Windows has no os.pread: zipfile reads every member
def test_zip_members_read_at_their_offsets_and_checked(tmp_path, monkeypatch, method, pread):
    if pread == "zipfile":
        monkeypatch.delattr("os.pread", raising=False)
    folder = make_folder(tmp_path / "f", 2, 3)
    archive = tmp_path / "p.zip"
    with zipfile.ZipFile(archive, "w", compression=method) as zf:
        for p in sorted(folder.iterdir()):
            zf.write(p, "Images/" + p.name)
    src = open_image_source(archive)
    check_every_position(src, (2, 3))
    src.close()
    with zipfile.ZipFile(archive) as zf:
        info = zf.getinfo("Images/1_2.tiff")
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size - 5] ^= 0xFF  # one byte of its last pixel, or of its deflate stream
    archive.write_bytes(bytes(data))
    with open_image_source(archive) as src:
        np.testing.assert_array_equal(src.read(src.names.index("Images/1_1.tiff")), pattern(1, 1))
        with pytest.raises(ImageReadError, match=r"p.zip:Images/1_2.tiff: cannot read from the zip \((BadZipFile: Bad CRC-32|error: )"):
            src.read(src.names.index("Images/1_2.tiff"))


def test_not_a_zip_and_empty_sources(tmp_path):
    bogus = tmp_path / "p.zip"
    bogus.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ImageSourceError, match="p.zip: neither a folder nor a readable zip file"):
        open_image_source(bogus)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ImageSourceError, match=r"empty: no pattern images \(.tif, .tiff, .png, .bmp\) in this folder"):
        open_image_source(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such folder or zip file"):
        open_image_source(tmp_path / "missing")


def test_mixed_formats(tmp_path):
    make_folder(tmp_path / "f", 1, 2)
    write_image(tmp_path / "f" / "0_2.png", pattern(0, 2, np.uint8))
    with pytest.raises(ImageSourceError, match=r"images of several formats \(png, tif\); keep one format per map"):
        open_image_source(tmp_path / "f")


def test_position_errors(tmp_path):
    folder = make_folder(tmp_path / "f", 3, 3, skip={(1, 1), (2, 0)})
    src = open_image_source(folder)
    with pytest.raises(ImageSourceError, match=r"no image for map position \(row 1, col 1\), \(row 2, col 0\) \(7 images for the 3 x 3 map of 9 points, 2 missing\)"):
        src.positions(None)
    with pytest.raises(ImageSourceError, match=r"2_1.tiff: map position \(row 2, col 1\) lies outside the 2 x 3 map \(from --ctf a.ctf\); 2 image\(s\) outside"):
        src.positions((2, 3), shape_source="--ctf a.ctf")
    write_image(folder / "01_1.tiff", pattern(1, 1))
    write_image(folder / "1_01.tiff", pattern(1, 1))
    src = open_image_source(folder)
    with pytest.raises(ImageSourceError, match=r"duplicate map position \(row 1, col 1\): .*01_1.tiff and .*1_01.tiff \(1 duplicate"):
        src.positions(None)


def test_describe(tmp_path):
    folder = make_folder(tmp_path / "f", 2, 5, dtype=np.uint8, ext="png")
    d = describe_image_source(folder)
    assert d["count"] == 10 and d["naming"] == "aztec" and d["nav_shape"] == [2, 5]
    assert d["pattern_shape"] == [16, 12] and d["dtype"] == "uint8" and d["complete"] is True
    (folder / "1_4.png").unlink()
    d = describe_image_source(folder)
    assert d["complete"] is False and "no image for map position (row 1, col 4)" in d["problem"]


def test_describe_closes_the_zip_it_opened_even_when_an_image_is_unreadable(tmp_path):
    folder = make_folder(tmp_path / "f", 1, 2)
    (folder / "0_0.tiff").write_bytes(b"not a tiff")
    src = open_image_source(make_zip(folder, tmp_path / "p.zip"))
    with pytest.raises(ImageReadError, match=r"p.zip:0_0.tiff: unreadable image"):
        describe_image_source(src)
    assert src._fd is not None  # a source passed in stays as it was: the caller closes it
    src.close()
    assert src._fd is None
    opened, fds = [], []
    original, os_open = zipfile.ZipFile.__init__, os.open

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        opened.append(self)

    def record_fd(path, *args, **kwargs):
        fd = os_open(path, *args, **kwargs)
        if str(path).endswith("p.zip"):
            fds.append(fd)
        return fd

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(zipfile.ZipFile, "__init__", record)
        mp.setattr(os, "open", record_fd)
        with pytest.raises(ImageReadError, match=r"p.zip:0_0.tiff: unreadable image"):
            describe_image_source(tmp_path / "p.zip")
    assert opened and all(zf.fp is None for zf in opened)  # every zip opened for it is closed
    assert fds
    for fd in fds:  # and the descriptor its members were read through
        with pytest.raises(OSError):
            os.fstat(fd)


def test_parse_shape_and_natural_key():
    assert parse_shape("3x4") == (3, 4) and parse_shape(" 10 , 20 ") == (10, 20)
    with pytest.raises(ValueError, match="map shape '3by4': expected ROWSxCOLS"):
        parse_shape("3by4")
    with pytest.raises(ValueError, match="rows and columns must be positive"):
        parse_shape("0x4")
    assert sorted(["a10b2", "a2b10", "a2b9"], key=natural_key) == ["a2b9", "a2b10", "a10b2"]


def test_tiffs_of_one_layout_are_read_without_parsing_each(tmp_path):
    """After the first TIFF, files whose bytes outside the pixels are the same are read in place; any other
    file (other tags, byte order, compression, size) is decoded by tifffile: the values are right either way."""
    import tifffile

    folder = tmp_path / "Images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    images = {}
    for r in range(3):
        for c in range(4):
            images[r, c] = rng.integers(0, 65535, (16, 12)).astype(np.uint16)
            tifffile.imwrite(folder / f"{r}_{c}.tiff", images[r, c])
    # files written otherwise: big-endian, compressed, another description, 8 rows taller than the rest
    tifffile.imwrite(folder / "1_1.tiff", images[1, 1], byteorder=">")
    tifffile.imwrite(folder / "1_2.tiff", images[1, 2], compression="zlib")
    tifffile.imwrite(folder / "2_0.tiff", images[2, 0], description="acquired at 12:00")
    src = open_image_source(folder)
    assert src._layout is None
    first = src.read(src.names.index("0_0.tiff"))
    np.testing.assert_array_equal(first, images[0, 0])
    assert src._layout  # learned from the first file
    for (r, c), want in images.items():
        got = src.read(src.names.index(f"{r}_{c}.tiff"))
        assert got.dtype == np.uint16 and got.dtype.isnative
        np.testing.assert_array_equal(got, want, err_msg=f"{r}_{c}")
    assert src._layout.pixels((folder / "1_1.tiff").read_bytes()) is None  # not the same layout: tifffile read it
    assert src._layout.pixels((folder / "0_3.tiff").read_bytes()) is not None
    # a file cut short is not taken for the layout: tifffile's error names it
    data = (folder / "0_3.tiff").read_bytes()
    (folder / "0_3.tiff").write_bytes(data[:-10])
    with pytest.raises(ImageReadError, match=r"0_3\.tiff: unreadable image"):
        src.read(src.names.index("0_3.tiff"))


@pytest.mark.parametrize("readv", ["os", "fallback"])
def test_read_into_takes_the_files_of_the_layout_and_leaves_the_others(tmp_path, monkeypatch, readv):
    """read_into fills the rows of TIFFs of the learned layout and reports every other file as not read:
    another byte order, compression, description, size, a file cut short or grown, a missing file."""
    import tifffile

    if readv == "fallback":  # Windows has no os.readv
        monkeypatch.delattr("os.readv", raising=False)
    folder = tmp_path / "Images"
    folder.mkdir()
    rng = np.random.default_rng(1)
    images = {(0, c): rng.integers(0, 65535, (16, 12)).astype(np.uint16) for c in range(9)}
    for (r, c), img in images.items():
        tifffile.imwrite(folder / f"{r}_{c}.tiff", img)
    tifffile.imwrite(folder / "0_2.tiff", images[0, 2], byteorder=">")
    tifffile.imwrite(folder / "0_3.tiff", images[0, 3], compression="zlib")
    tifffile.imwrite(folder / "0_4.tiff", images[0, 4], description="acquired at 12:00")
    data = (folder / "0_5.tiff").read_bytes()
    (folder / "0_5.tiff").write_bytes(data[:-3])  # cut short
    (folder / "0_6.tiff").write_bytes((folder / "0_6.tiff").read_bytes() + b"\0")  # one byte longer
    src = open_image_source(folder)
    (folder / "0_7.tiff").unlink()
    indices = [src.names.index(f"0_{c}.tiff") for c in range(9)]
    out = np.zeros((9, 16, 12), np.uint16)
    assert not src.read_into(indices, out).any()  # nothing learned yet: read() decodes the first file
    np.testing.assert_array_equal(src.read(indices[0]), images[0, 0])
    assert not src.read_into(indices, np.zeros((9, 16, 13), np.uint16)).any()  # another shape
    assert not src.read_into(indices, np.zeros((9, 16, 12), np.uint8)).any()  # another dtype
    done = src.read_into(indices, out)
    assert done.tolist() == [True, True, False, False, False, False, False, False, True]
    for c in (0, 1, 8):
        np.testing.assert_array_equal(out[c], images[0, c])
    np.testing.assert_array_equal(src.read(indices[2]), images[0, 2])  # read() still decodes the others


def _bmp(image: np.ndarray, palette: np.ndarray | None = None, *, top_down: bool = False) -> bytes:
    """An uncompressed 8-bit BMP written byte by byte (BITMAPINFOHEADER, rows padded to 4 bytes)."""
    import struct

    h, w = image.shape
    stride = (w + 3) // 4 * 4
    rows = np.zeros((h, stride), np.uint8)
    rows[:, :w] = image
    if not top_down:
        rows = rows[::-1]
    grey = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1) if palette is None else palette
    table = np.concatenate([grey[:, ::-1], np.zeros((256, 1), np.uint8)], axis=1).tobytes()  # B, G, R, 0
    offset = 14 + 40 + len(table)
    info = struct.pack("<IiiHHIIiiII", 40, w, -h if top_down else h, 1, 8, 0, rows.nbytes, 2835, 2835, 256, 0)
    return b"BM" + struct.pack("<IHHI", offset + rows.nbytes, 0, 0, offset) + info + table + rows.tobytes()


@pytest.mark.parametrize("width", [12, 13])  # 13: each row padded by 3 bytes
@pytest.mark.parametrize("top_down", [False, True])
def test_bmps_of_one_layout_are_read_without_parsing_each(tmp_path, width, top_down):
    """EDAX-style 8-bit BMPs (rows bottom-up and padded, a grey palette) are read in place like TIFFs;
    a BMP with another palette or size is decoded by Pillow, and its colours are what it shows."""
    folder = tmp_path / "f"
    folder.mkdir()
    rng = np.random.default_rng(2)
    images = {c: rng.integers(0, 256, (7, width)).astype(np.uint8) for c in range(6)}
    for c, img in images.items():
        (folder / f"Scan1_x{c}y0.bmp").write_bytes(_bmp(img, top_down=top_down))
    inverted = np.repeat(np.arange(255, -1, -1, dtype=np.uint8)[:, None], 3, axis=1)  # a grey palette, but reversed
    (folder / "Scan1_x4y0.bmp").write_bytes(_bmp(images[4], inverted, top_down=top_down))
    (folder / "Scan1_x5y0.bmp").write_bytes(_bmp(images[5][:6], top_down=top_down))
    src = open_image_source(folder)
    np.testing.assert_array_equal(src.read(0), images[0])  # decoded by Pillow, the layout learned from it
    assert src._layout and src._layout.bottom_up is not top_down and src._layout.stride == (width + 3) // 4 * 4
    out = np.zeros((6, 7, width), np.uint8)
    done = src.read_into(list(range(6)), out)
    assert done.tolist() == [True, True, True, True, False, False]
    for c in range(4):
        np.testing.assert_array_equal(out[c], images[c])
        np.testing.assert_array_equal(src.read(c), images[c])
    np.testing.assert_array_equal(src.read(4), 255 - images[4])  # Pillow applied the reversed palette
    assert src.read(5).shape == (6, width)


def test_a_bmp_with_a_colour_palette_has_no_layout(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    palette = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    palette[7] = (255, 0, 0)  # one colour entry, not used by the image
    image = np.arange(12 * 8, dtype=np.uint8).reshape(8, 12) % 7
    for c in range(2):
        (folder / f"Scan1_x{c}y0.bmp").write_bytes(_bmp(image + c, palette))
    src = open_image_source(folder)
    np.testing.assert_array_equal(src.read(0), image)  # grey where this image is
    assert src._layout is False  # but the palette is not the identity of grey values
    with pytest.raises(ImageReadError, match=r"Scan1_x1y0.bmp: colour image"):
        src.read(1)  # index 7 is red
    assert not src.read_into([0, 1], np.zeros((2, 8, 12), np.uint8)).any()


def _png(image: np.ndarray, filters: list[int], *, damage_crc: bool = False) -> bytes:
    """A greyscale PNG (8- or 16-bit) whose row k is stored with filter type ``filters[k % len(filters)]``."""
    import struct
    import zlib

    h, w = image.shape
    data = image.astype(">u2").view(np.uint8).reshape(h, -1) if image.dtype == np.uint16 else image.astype(np.uint8)
    bpp = image.dtype.itemsize
    rows = []
    for r in range(h):
        kind = filters[r % len(filters)]
        cur = data[r].astype(np.int64)
        up = data[r - 1].astype(np.int64) if r else np.zeros_like(cur)
        left = np.concatenate([np.zeros(bpp, np.int64), cur[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int64), up[:-bpp]])
        if kind == 4:
            est = left + up - upleft
            pa, pb, pc = np.abs(est - left), np.abs(est - up), np.abs(est - upleft)
            pred = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
        else:
            pred = [np.zeros_like(cur), left, up, (left + up) // 2][kind]
        rows.append(bytes([kind]) + ((cur - pred) % 256).astype(np.uint8).tobytes())

    def chunk(kind: bytes, body: bytes, bad: bool = False) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", (zlib.crc32(kind + body) + bad) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8 * bpp, 0, 0, 0, 0)
    stream = zlib.compress(b"".join(rows))
    half = len(stream) // 2  # two IDAT chunks, as writers of big images do
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"tEXt", b"Software\0test")
        + chunk(b"IDAT", stream[:half]) + chunk(b"IDAT", stream[half:], damage_crc) + chunk(b"IEND", b"")
    )  # fmt: skip


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_pngs_of_one_header_are_decoded_here_with_every_filter(tmp_path, dtype):
    """Greyscale PNGs: inflated and unfiltered by kikuchi's kernel (each of PNG's five row filters), the same
    values as Pillow; a PNG with another header, a damaged chunk or a palette is left to Pillow."""
    from PIL import Image

    folder = tmp_path / "f"
    folder.mkdir()
    rng = np.random.default_rng(3)
    top = 255 if dtype == np.uint8 else 65535
    images = {c: rng.integers(0, top + 1, (9, 11)).astype(dtype) for c in range(6)}
    images[1][:] = np.add.outer(np.arange(9) * 20, np.arange(11) * 9).astype(dtype)  # smooth: predictions that fit
    for c in range(4):
        (folder / f"0_{c}.png").write_bytes(_png(images[c], [0, 1, 2, 3, 4][c:] + [0, 1, 2, 3, 4][:c]))
    (folder / "0_4.png").write_bytes(_png(images[4], [4], damage_crc=True))
    Image.fromarray(images[5]).save(folder / "0_5.png")  # Pillow's own file: another header (and chunk layout)
    src = open_image_source(folder)
    for c in range(4):
        with Image.open(folder / f"0_{c}.png") as img:
            np.testing.assert_array_equal(np.asarray(img), images[c])  # the test's encoder is right
    np.testing.assert_array_equal(src.read(0), images[0])
    assert src._layout and src._layout.shape == (9, 11)
    for c in (1, 2, 3):
        data = (folder / f"0_{c}.png").read_bytes()
        got = src._layout.pixels(data)
        assert got is not None and got.dtype == dtype and got.dtype.isnative
        np.testing.assert_array_equal(got, images[c])
        np.testing.assert_array_equal(src.read(c), images[c])
    assert src._layout.pixels((folder / "0_4.png").read_bytes()) is None  # a chunk's CRC is wrong: Pillow's verdict,
    np.testing.assert_array_equal(src.read(4), images[4])  # which does not check the CRCs of image data
    np.testing.assert_array_equal(src.read(5), images[5])
    cut = (folder / "0_3.png").read_bytes()[:-30]  # the stream cut short: not decoded here, and Pillow refuses it
    (folder / "0_3.png").write_bytes(cut)
    assert src._layout.pixels(cut) is None
    with pytest.raises(ImageReadError, match=r"0_3.png: unreadable image"):
        src.read(3)


def test_pngs_with_a_palette_or_in_colour_have_no_layout(tmp_path):
    from PIL import Image

    folder = tmp_path / "f"
    folder.mkdir()
    image = (np.arange(8 * 8).reshape(8, 8) % 5).astype(np.uint8)
    palette = Image.fromarray(image, mode="L").convert("P")
    palette.save(folder / "0_0.png")
    Image.fromarray(np.repeat(image[..., None], 3, axis=2)).save(folder / "0_1.png")  # RGB, equal channels
    src = open_image_source(folder)
    np.testing.assert_array_equal(src.read(0), image)
    assert src._layout is False
    np.testing.assert_array_equal(src.read(1), image)


def test_read_into_leaves_zip_members_to_read(tmp_path):
    src = open_image_source(make_zip(make_folder(tmp_path / "Images", 2, 3), tmp_path / "p.zip"))
    first = src.read(0)
    out = np.zeros((6, *first.shape), first.dtype)
    assert not src.read_into(list(range(6)), out).any()
    assert not out.any()


def test_positioned_names_are_in_map_order_whatever_the_listing(tmp_path, monkeypatch):
    """Names that carry positions are ordered by row, then column (not by a natural sort of the whole name,
    which costs 0.4 s for 100,000 files); names without positions keep their natural order."""
    import kikuchi.io.imagefolder as imagefolder

    make_folder(tmp_path / "Images", 3, 12)
    listed = imagefolder._list_folder(tmp_path / "Images")
    monkeypatch.setattr(imagefolder, "_list_folder", lambda path: list(reversed(listed)))
    src = open_image_source(tmp_path / "Images")
    assert src.names == [f"{r}_{c}.tiff" for r in range(3) for c in range(12)]
    assert src.rows.tolist() == [r for r in range(3) for c in range(12)]
    assert src.cols.tolist() == [c for r in range(3) for c in range(12)]
    check_every_position(src, (3, 12))
    monkeypatch.undo()
    names = [f"p{k}.png" for k in (10, 2, 1, 33, 3)]
    (tmp_path / "S").mkdir()
    for name in names:
        write_image(tmp_path / "S" / name, np.zeros((4, 4), np.uint8))
    src = open_image_source(tmp_path / "S")
    assert src.scheme == "sorted" and src.names == ["p1.png", "p2.png", "p3.png", "p10.png", "p33.png"]


def test_big_endian_first_tiff_sets_a_big_endian_layout(tmp_path):
    import tifffile

    folder = tmp_path / "Images"
    folder.mkdir()
    want = np.arange(6 * 5, dtype=np.uint16).reshape(6, 5) * 1000
    for c in range(3):
        tifffile.imwrite(folder / f"0_{c}.tiff", want + c, byteorder=">")
    src = open_image_source(folder)
    for c in range(3):
        got = src.read(src.names.index(f"0_{c}.tiff"))
        np.testing.assert_array_equal(got, want + c)
        assert got.dtype.isnative
    assert src._layout and not src._layout.dtype.isnative
    out = np.zeros((3, 6, 5), np.uint16)  # read_into swaps the bytes of the files of that layout
    assert src.read_into([2, 1, 0], out).all()
    for k, c in enumerate((2, 1, 0)):
        np.testing.assert_array_equal(out[k], want + c)
