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


def _common_signal_std(a: np.ndarray, b: np.ndarray, background: np.ndarray, mask: np.ndarray) -> float:
    """Standard deviation of the signal two patterns of one orientation share (the covariance of their
    relative intensities after static and dynamic background removal: the noise is independent)."""
    from scipy.ndimage import gaussian_filter

    u, v = (x / background / gaussian_filter(x / background, 8) for x in (np.asarray(a, float), np.asarray(b, float)))
    u, v = u[mask] - u[mask].mean(), v[mask] - v[mask].mean()
    return float(np.sqrt(max((u * v).mean(), 0.0)))


def test_real_ni_contrast_matches_the_real_patterns():
    """REAL_NI_CONTRAST gives the band signal of kikuchipy's real Ni patterns (grain of points 0, 3, 6)."""
    import kikuchi
    from kikuchi.simulate.detection import REAL_NI_CONTRAST
    from kikuchi.simulate.master import MasterPattern
    from kikuchi.simulate.projection import project_patterns
    from tests.conftest import shared_file

    with kikuchi.open(shared_file("kikuchipy/nickel_ebsd_small.h5")) as m:
        raw = m.read_all().reshape(-1, 60, 60)
        bg = m.static_background.astype(float)
        euler = m.euler.reshape(-1, 3)
        det = Detector((60, 60), m.detector.pc_mean)
    rr, cc = np.mgrid[:60, :60]
    mask = (rr - 29.5) ** 2 + (cc - 29.5) ** 2 < 27**2
    real = np.mean([_common_signal_std(raw[i], raw[j], bg, mask) for i, j in ((0, 3), (0, 6), (3, 6))])
    assert 0.017 < real < 0.024  # measured: 0.0216
    mp = MasterPattern.from_emsoft(shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"))
    theory = project_patterns(mp, det, euler[[0]])
    model = DetectionModel.create((60, 60), noise=5000, detector=det, contrast=REAL_NI_CONTRAST, seed=1)
    a, b = model.apply(theory, rng=2)[0], model.apply(theory, rng=3)[0]
    simulated = _common_signal_std(a, b, model.static_background.astype(float), mask)
    assert simulated == pytest.approx(real, rel=0.25)
    default = DetectionModel.create((60, 60), noise=5000, detector=det, seed=1)
    assert _common_signal_std(default.apply(theory, rng=2)[0], default.apply(theory, rng=3)[0], default.static_background.astype(float), mask) > 4 * real
