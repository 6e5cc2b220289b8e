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
