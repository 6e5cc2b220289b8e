"""Pattern centre conversions: published examples and round trips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from kikuchi.geometry import PC_CONVENTIONS, PatternCentreError, convert_pc, normalize_convention


def test_kikuchipy_documented_example():
    # kikuchipy EBSDDetector.pc_emsoft / pc_tsl docstrings: (60, 80) pattern, binning 8, 59.2 µm pixels
    kw = dict(shape=(60, 80), binning=8, px_size_um=59.2)
    np.testing.assert_allclose(convert_pc([0.4, 0.2, 0.6], "bruker", "emsoft", **kw), [64.0, 144.0, 17049.6])
    np.testing.assert_allclose(convert_pc([0.4, 0.2, 0.6], "bruker", "emsoft4", **kw), [-64.0, 144.0, 17049.6])
    np.testing.assert_allclose(convert_pc([0.4, 0.2, 0.6], "bruker", "tsl", **kw), [0.4, 0.8, 0.6])


def test_oxford_rectangular_examples():
    # kikuchipy issue #508: Oxford PC of a 120 x 160 pattern (640 x 480 CCD, binning 4, 59.2 µm)
    ox = [0.48935617839432832, 0.61856923343313686, 0.49397253582464035]
    np.testing.assert_allclose(convert_pc(ox, "oxford", "bruker", shape=(120, 160)), [0.48935618, 0.17524102, 0.65863005], rtol=1e-7)
    L = convert_pc(ox, "oxford", "emsoft", shape=(120, 160), binning=4, px_size_um=59.2)[2]
    assert L == pytest.approx(18715.631, rel=1e-7)  # = DD * rows * binning * pixel size
    # EMsoft issue #131: Oxford (0.48, 0.54, 0.51) on a 512 x 622 detector, 50 µm pixels
    pc = convert_pc([0.48, 0.54, 0.51], "oxford", "bruker", shape=(512, 622))
    np.testing.assert_allclose(pc, [0.48, 0.3440, 0.6196], atol=1e-4)
    np.testing.assert_allclose(convert_pc([0.48, 0.54, 0.51], "oxford", "emsoft", shape=(512, 622), px_size_um=50), [12.44, 79.88, 15861], atol=0.01)


def test_edax_rectangular_uses_min_side_for_z():
    # EDAX: z* in units of min(w, h); y* from the bottom in units of h (kikuchipy PR #604, PyEBSDIndex)
    np.testing.assert_allclose(convert_pc([0.5, 0.3, 0.7], "edax", "bruker", shape=(60, 80)), [0.5, 0.7, 0.7])
    np.testing.assert_allclose(convert_pc([0.5, 0.3, 0.7], "edax", "bruker", shape=(80, 60)), [0.5, 0.7, 0.7 * 60 / 80])
    # square detectors: EDAX and Oxford agree
    np.testing.assert_allclose(convert_pc([0.45, 0.7, 0.6], "edax", "oxford", shape=(60, 60)), [0.45, 0.7, 0.6])


@pytest.mark.parametrize("shape", [(60, 80), (80, 60), (512, 622)])
def test_rectangular_conversions_match_kikuchipy(shape):
    """Our table is kikuchipy's code (EBSDDetector._pc_tsl2bruker etc., 0.13.1), both ways, on non-square detectors."""
    kp = pytest.importorskip("kikuchipy")  # the optional 'bench' extra
    pc = np.array([0.41, 0.27, 0.63])
    kw = dict(shape=shape, binning=2, px_size_um=40.0)
    bruker = kp.detectors.EBSDDetector(shape=shape, pc=pc, convention="bruker", px_size=40.0, binning=2)
    theirs = {"tsl": bruker.pc_tsl(), "oxford": bruker.pc_oxford(), "emsoft": bruker.pc_emsoft(5), "emsoft4": bruker.pc_emsoft(4)}
    for conv, expected in theirs.items():
        np.testing.assert_allclose(convert_pc(pc, "bruker", conv, **kw), np.ravel(expected), rtol=1e-12, atol=1e-12)
        det = kp.detectors.EBSDDetector(shape=shape, pc=pc, convention=conv, px_size=40.0, binning=2)
        np.testing.assert_allclose(convert_pc(pc, conv, "bruker", **kw), det.pc.ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(60, 60), (60, 80), (120, 90)])
def test_round_trips(shape, rng):
    pc = rng.uniform([0.3, 0.1, 0.4], [0.7, 0.5, 0.8], size=(4, 5, 3))
    for a, b in itertools.permutations(PC_CONVENTIONS, 2):
        kw = dict(shape=shape, binning=2, px_size_um=40.0)
        there = convert_pc(convert_pc(pc, "bruker", a, **kw), a, b, **kw)
        back = convert_pc(convert_pc(there, b, a, **kw), a, "bruker", **kw)
        np.testing.assert_allclose(back, pc, rtol=1e-12, atol=1e-12)


def test_same_point_on_the_screen():
    # every convention locates the same pixel: PC x, y in pixels from the top-left corner
    h, w = 60, 80
    pc = np.array([0.41, 0.27, 0.63])
    col, row = pc[0] * w, pc[1] * h
    edax = convert_pc(pc, "bruker", "edax", shape=(h, w))
    assert edax[0] * w == pytest.approx(col) and (1 - edax[1]) * h == pytest.approx(row)
    ox = convert_pc(pc, "bruker", "oxford", shape=(h, w))
    assert ox[0] * w == pytest.approx(col) and h - ox[1] * w == pytest.approx(row)
    assert ox[2] * w == pytest.approx(pc[2] * h)  # distance in pixels
    em = convert_pc(pc, "bruker", "emsoft", shape=(h, w), px_size_um=1.0)
    assert w / 2 - em[0] == pytest.approx(col) and h / 2 - em[1] == pytest.approx(row)


def test_errors():
    with pytest.raises(PatternCentreError, match="unknown pattern centre convention 'nordif'"):
        convert_pc([0.5, 0.5, 0.5], "nordif", "bruker", shape=(60, 60))
    with pytest.raises(PatternCentreError, match="pass px_size_um"):
        convert_pc([0.5, 0.5, 0.5], "bruker", "emsoft", shape=(60, 60))
    with pytest.raises(PatternCentreError, match="3 values"):
        convert_pc([0.5, 0.5], "bruker", "edax", shape=(60, 60))
    with pytest.raises(PatternCentreError, match=r"pattern shape must be \(rows, cols\)"):
        convert_pc([0.5, 0.5, 0.5], "bruker", "edax", shape=60)
    with pytest.raises(PatternCentreError, match="binning must be a positive integer"):
        convert_pc([0.5, 0.5, 0.5], "bruker", "edax", shape=(60, 60), binning=0)
    assert normalize_convention("AZtec") == "oxford" and normalize_convention("emsoft5") == "emsoft"
