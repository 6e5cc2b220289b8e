"""Writers of the imaging results: HDF5 arrays, index.html, argument checks."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from kikuchi.imaging import VbseMaps
from kikuchi.imaging.gallery import GalleryImage, save_vbse_h5, write_index_html, write_vbse_gallery


@pytest.fixture
def maps(rng):
    vbse = rng.random((3, 4, 2, 5)) + 1
    vbse[1, 2] = np.nan  # a point without a pattern
    return VbseMaps(
        vbse=vbse,
        bse=vbse.mean(axis=(2, 3)),
        com_raw=rng.random((3, 4, 2)),
        com_kikuchi=None,
        diodes=rng.random((3, 4, 2, 3)),
        grid=(2, 5),
        signal="raw",
        step_um=(0.5, 0.25),
        pattern_shape=(20, 30),
        settings={"source": "x.h5"},
    )


def test_save_vbse_h5_round_trip(maps, tmp_path):
    path = save_vbse_h5(maps, tmp_path / "v.h5", rgb_regions=[(0, 0), (1, 2), (1, 4)])
    with h5py.File(path) as f:
        np.testing.assert_allclose(f["vbse"][()], maps.vbse.astype(np.float32))
        assert f["vbse"].dtype == np.float32 and "com_kikuchi" not in f
        assert np.isnan(f["rgb"][1, 2]).all()
        assert f.attrs["rgb_regions"] == "[[0, 0], [1, 2], [1, 4]]"
        assert "2 x 5 regions of the raw patterns" in f["vbse"].attrs["description"]
    assert not (tmp_path / ".v.h5.partial").exists()


def test_gallery_rejects_a_colour_region_outside_the_grid(maps, tmp_path):
    with pytest.raises(ValueError, match=r"colour region \(2, 0\) is outside the 2 x 5 grid \(rows 0..1, cols 0..4\)"):
        write_vbse_gallery(maps, tmp_path / "g", rgb_regions=[(0, 0), (1, 1), (2, 0)])
    assert not (tmp_path / "g" / "vbse.h5").exists()


def test_index_html_is_self_contained_with_relative_links(tmp_path):
    page = write_index_html(tmp_path, [GalleryImage("a.png", "A <b>", "caption & more")], title="T", notes=["n1"])
    text = page.read_text()
    assert '<img src="a.png"' in text and "A &lt;b&gt;" in text and "caption &amp; more" in text
    assert "http" not in text and "<link" not in text and "<script" not in text


def test_gallery_files_are_whole_and_the_h5_written_from_memory(maps, tmp_path):
    """The PNGs (encoded on the gallery's threads) and vbse.h5 (built in memory, written in one piece) are all there and readable."""
    from PIL import Image

    index = write_vbse_gallery(maps, tmp_path / "g")
    names = sorted(p.name for p in index.parent.iterdir())
    assert "vbse.h5" in names and "bse.png" in names and not [n for n in names if n.startswith(".")]
    for name in names:
        if name.endswith(".png"):
            with Image.open(index.parent / name) as im:
                im.load()
                assert im.mode == "RGB" and im.size[0] > 300, name
    with h5py.File(index.parent / "vbse.h5") as f:
        np.testing.assert_allclose(f["bse"][()], maps.bse.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g"]


def test_a_png_write_failing_on_a_thread_is_the_error_and_nothing_is_left(maps, tmp_path, monkeypatch):
    from kikuchi.figures import map_image
    from kikuchi.io._atomic import OutputWriteError

    real = map_image.write_map_png

    def full_disk(drawn, path):
        if path.name == "rgb.png":
            raise OutputWriteError(f"{path}: no space left on the device")
        return real(drawn, path)

    monkeypatch.setattr(map_image, "write_map_png", full_disk)
    with pytest.raises(OutputWriteError, match=r"rgb\.png: no space left on the device"):
        write_vbse_gallery(maps, tmp_path / "g")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_ctrl_c_while_drawing_waits_for_the_writes_then_leaves_nothing(maps, tmp_path, monkeypatch):
    """An interruption on the drawing thread: what the threads are writing is finished, the rest dropped, the folder removed after."""
    import threading
    import time

    from kikuchi.figures import map_image

    real_draw, real_write = map_image.draw_map_image, map_image.write_map_png
    drawn, writing = [], threading.Event()

    def slow_write(pixels, path):
        writing.set()
        time.sleep(0.2)  # still writing when the interruption comes
        return real_write(pixels, path)

    def draw(*args, **kwargs):
        drawn.append(1)
        if len(drawn) == 3:
            assert writing.wait(5)
            raise KeyboardInterrupt
        return real_draw(*args, **kwargs)

    monkeypatch.setattr(map_image, "write_map_png", slow_write)
    monkeypatch.setattr(map_image, "draw_map_image", draw)
    with pytest.raises(KeyboardInterrupt):
        write_vbse_gallery(maps, tmp_path / "g")
    assert not [t for t in threading.enumerate() if t.name.startswith("kikuchi-gallery")]
    time.sleep(0.3)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_large_arrays_are_written_through_the_output_file_not_memory(maps, tmp_path, monkeypatch):
    """Above IN_MEMORY_H5 bytes the HDF5 file is written in place (no copy of it in memory); the same datasets either way."""
    from kikuchi.imaging import gallery
    from kikuchi.io import _atomic

    opened = []
    real = _atomic.OutputH5File.__init__

    def spy(self, *args, **kwargs):
        opened.append(args[0])
        real(self, *args, **kwargs)

    monkeypatch.setattr(_atomic.OutputH5File, "__init__", spy)
    save_vbse_h5(maps, tmp_path / "small.h5")
    assert opened == []
    monkeypatch.setattr(gallery, "IN_MEMORY_H5", 0)
    save_vbse_h5(maps, tmp_path / "large.h5")
    assert [p.name for p in opened] == [".large.h5.partial"]
    with h5py.File(tmp_path / "small.h5") as a, h5py.File(tmp_path / "large.h5") as b:
        assert sorted(a) == sorted(b) and dict(a.attrs) == dict(b.attrs)
        for name in a:
            np.testing.assert_array_equal(a[name][()], b[name][()])
