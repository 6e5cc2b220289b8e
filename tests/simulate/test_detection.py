"""Detection model: noise statistics, static response, digitisation."""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.geometry import Detector
from kikuchi.simulate.detection import NOISE_LEVELS, DetectionModel, backscatter_background, detect, static_response


def test_poisson_statistics_follow_the_counts():
    flat = np.zeros((400, 20, 20))  # no Kikuchi signal: pure background and noise
    for level, counts in NOISE_LEVELS.items():
        model = DetectionModel.create((20, 20), noise=level, read_noise=0.0, seed=3)
        model.hot[:] = False
        img = model.apply(flat, rng=1).astype(np.float64)
        lam = model.counts * model.background * model.gain
        var_counts = img.var(axis=0) / model.scale**2
        ok = lam > 0.2 * counts  # away from the darkest corners (quantisation)
        # Poisson: variance = mean, in counts (plus the quantisation step^2/12)
        ratio = (var_counts[ok] - 1 / (12 * model.scale**2)) / lam[ok]
        assert np.median(ratio) == pytest.approx(1.0, abs=0.15), level
        mean_counts = (img.mean(axis=0) - model.dark_offset) / model.scale
        assert np.median(mean_counts[ok] / lam[ok]) == pytest.approx(1.0, abs=0.02)


def test_noise_levels_order_the_snr():
    rng = np.random.default_rng(0)
    theory = rng.normal(size=(1, 40, 40))
    errs = []
    for level in ("low", "medium", "high"):
        model = DetectionModel.create((40, 40), noise=level, seed=0)
        img = model.apply(np.repeat(theory, 20, axis=0), rng=2).astype(float)
        expected = model.dark_offset + model.scale * model.expected_counts(theory)[0]
        rel = np.abs(img - expected)[:, ~model.hot].mean() / expected[~model.hot].mean()
        errs.append(rel)
    assert errs[0] < errs[1] < errs[2]


def test_static_response_features():
    gain, hot = static_response((100, 120), seed=5, halves_ratio=1.05)
    assert gain[:, 60:].mean() / gain[:, :60].mean() == pytest.approx(1.05, abs=0.03)
    assert gain.min() < 0.9  # dust specks
    assert 0 < hot.sum() < 20
    again, hot2 = static_response((100, 120), seed=5, halves_ratio=1.05)
    np.testing.assert_array_equal(gain, again)
    np.testing.assert_array_equal(hot, hot2)


def test_digitisation_and_static_background():
    theory = np.random.default_rng(1).normal(size=(50, 30, 40))
    for bits, dtype in ((8, np.uint8), (16, np.uint16)):
        model = DetectionModel.create((30, 40), noise="low", bit_depth=bits, seed=2)
        img = model.apply(theory, rng=0)
        assert img.dtype == dtype
        assert np.all(img[:, model.hot] == model.full_scale)
        assert img[:, ~model.hot].max() < model.full_scale  # no clipping of real signal
        mean = img.mean(axis=0)
        bg = model.static_background
        rel = np.abs(mean - bg)[~model.hot] / bg[~model.hot]
        assert np.median(rel) < 0.03


def test_backscatter_background_is_bright_below_the_pc():
    det = Detector((60, 60), (0.5, 0.3, 0.6))
    b = backscatter_background((60, 60), det)
    assert b.mean() == pytest.approx(1.0)
    assert b[45:].mean() > 1.5 * b[:15].mean()
    assert np.abs(b[:, :30] - b[:, ::-1][:, :30]).max() < 1e-9  # left-right symmetric for PCx = 0.5


def test_detect_one_pattern_and_errors():
    p = np.random.default_rng(0).normal(size=(30, 40))
    assert detect(p, noise=500.0).shape == (30, 40)
    with pytest.raises(ValueError, match="unknown noise level 'extreme'"):
        detect(p, noise="extreme")
    with pytest.raises(ValueError, match="counts per pixel must be positive"):
        detect(p, noise=0)
    with pytest.raises(ValueError, match="bit_depth must be 8 or 16"):
        detect(p, bit_depth=12)
    model = DetectionModel.create((30, 40))
    with pytest.raises(ValueError, match=r"do not fit this detection model's \(30, 40\)"):
        model.apply(np.zeros((2, 20, 20)))


@pytest.mark.parametrize("camera_tilt_deg", [0.0, 10.0])
def test_backscatter_lobe_is_fixed_in_the_sample_frame(camera_tilt_deg):
    """The beam is vertical whatever the camera tilt: the lobe (screen fall-off divided out) centres on its mirror image at the surface."""
    det = Detector((60, 60), (0.5, 0.3, 0.6), camera_tilt_deg=camera_tilt_deg)
    d = det.pixel_directions()
    lobe = backscatter_background((60, 60), det) / np.clip(d @ det.rotation[2], 0, 1) ** 3
    specular = np.array([np.sin(np.radians(70.0)), 0.0, np.cos(np.radians(70.0))])
    assert np.unravel_index(lobe.argmax(), lobe.shape) == np.unravel_index((d @ specular).argmax(), lobe.shape)
