"""Hough indexing of noisy dynamical patterns (issue 12): today's defaults against those of before.

Before: the band detector averaged along lines (``line_statistic='mean'``) and
triplet voting scored its proposals at the fit tolerance (``vote_tol_deg=2``).
Today: line sums, and proposals scored and refined at 3 degrees, the bands
counted at 2 after the refinement.

Patterns of random orientations projected from the EMsoft Ni master pattern,
through the detection model at the Kikuchi contrast of real Ni patterns
(``REAL_NI_CONTRAST``) and a few tens to thousands of counts per pixel, with
its static background and backscatter gradient; fixed seeds, so the counts
below are those of these patterns (measured when the line sums came in).
"""

from __future__ import annotations

import numpy as np
import pytest

from kikuchi.geometry import Detector, euler_to_matrix
from kikuchi.index import HoughIndexer, prepare_patterns
from kikuchi.simulate.detection import REAL_NI_CONTRAST, DetectionModel
from kikuchi.simulate.master import MasterPattern
from kikuchi.simulate.projection import project_patterns
from kikuchi.simulate.synthetic import random_orientations
from tests.conftest import shared_file

MP_FILE = "kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"


@pytest.fixture(scope="module")
def master():
    return MasterPattern.from_emsoft(shared_file(MP_FILE))


def _noisy(master, side: int, n: int, counts: float):
    det = Detector((side, side), (0.5, 0.3, 0.6))
    euler = random_orientations(n, rng=12)
    model = DetectionModel.create(det.shape, noise=counts, detector=det, contrast=REAL_NI_CONTRAST, seed=12)
    raw = model.apply(project_patterns(master, det, euler), rng=13)
    return det, prepare_patterns(raw, static_background=model.static_background), euler


def _before(det):
    return HoughIndexer(["ni"], det, vote_tol_deg=2.0, band_options={"line_statistic": "mean"})


def _errors_deg(indexer: HoughIndexer, patterns: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Misorientation (degrees, with the Laue group's rotations) of each solution to the truth; 180 where not indexed."""
    r = indexer.index(patterns)
    g = euler_to_matrix(r.euler) @ np.swapaxes(euler_to_matrix(truth), -1, -2)
    trace = np.einsum("sij,nji->ns", indexer.tables[0].symmetry, g).max(axis=1)
    return np.where(r.indexed, np.degrees(np.arccos(np.clip((trace - 1) / 2, -1, 1))), 180.0)


@pytest.mark.parametrize(
    ("side", "n", "counts", "at_least_now", "at_most_before", "lost"),
    [
        (60, 600, 60, 48, 30, 10),  # measured: 55 today, 24 before (8 of those lost)
        (120, 200, 60, 185, 179, 3),  # measured: 189 and 176 (1 lost)
        (60, 300, 300, 295, 292, 3),  # measured: 297 and 290 (1 lost)
    ],
)
def test_noisy_patterns_index_better_than_before(master, side, n, counts, at_least_now, at_most_before, lost):
    det, patterns, truth = _noisy(master, side, n, counts)
    now = _errors_deg(HoughIndexer(["ni"], det), patterns, truth)
    before = _errors_deg(_before(det), patterns, truth)
    assert (now < 2).sum() >= at_least_now
    assert (before < 2).sum() <= at_most_before
    # the gain is patterns won, not a reshuffle: nearly all that the old defaults got, today's get too
    assert ((before < 2) & (now >= 2)).sum() <= lost


def test_low_noise_accuracy_unchanged(master):
    det, patterns, truth = _noisy(master, 60, 300, 2000)
    now = _errors_deg(HoughIndexer(["ni"], det), patterns, truth)
    before = _errors_deg(_before(det), patterns, truth)
    assert (now < 2).all() and (before < 2).all()
    assert (now < 1).sum() >= 298 and (before < 1).sum() >= 297  # measured: 299 and 298
    assert now.mean() < 0.2 and before.mean() < 0.2  # measured: 0.168 and 0.183 degree


def test_line_statistic_is_checked():
    from kikuchi.bands import BandDetector

    with pytest.raises(ValueError, match="line_statistic must be 'sum' or 'mean', got 'median'"):
        BandDetector((40, 40), line_statistic="median")
