"""NLPAR in the explorer: the pattern of one point equals kikuchi.process's on the whole map."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kikuchi
from kikuchi.process import PRESETS, nlpar, process_patterns
from kikuchi.process.nlpar import choose_lambda, neighbour_distances_block

from .conftest import get
from .test_server import pattern_at


def local_lambda(patterns, row, col, radius):
    """The explorer's automatic lambda: chosen on the points within ``radius`` of (row, col)."""
    rows, cols = patterns.shape[:2]
    r0, r1, c0, c1 = max(0, row - radius), min(rows, row + radius + 1), max(0, col - radius), min(cols, col + radius + 1)
    have = np.ones((rows, cols), bool)
    d = neighbour_distances_block(patterns.astype(np.float32), have, pixels=None, rows=(r0, r1), cols=(c0, c1))
    return choose_lambda(d.reshape(-1, 8))


@pytest.mark.parametrize("row, col, radius", [(2, 3, 2), (0, 0, 1), (5, 7, 3)])
def test_raw_pattern_with_a_given_lambda(explorer, map_patterns, row, col, radius):
    message, info = pattern_at(explorer, f"row={row}&col={col}&nlpar={radius}&lambda=0.8")
    np.testing.assert_array_equal(message.pattern, nlpar(map_patterns, lam=0.8, search_radius=radius)[row, col])
    assert info["nlpar"] == radius and info["nlpar_lambda"] == 0.8 and info["nlpar_lambda_choice"] == "given"


def test_raw_pattern_with_the_automatic_lambda(explorer, map_patterns):
    choice = local_lambda(map_patterns, 3, 4, 2)
    message, info = pattern_at(explorer, "row=3&col=4&nlpar=2")
    assert info["nlpar_lambda"] == choice.lam
    assert info["nlpar_lambda_choice"] == "auto on the 25 points within 2 steps (kikuchi process chooses it on the whole map)"
    np.testing.assert_array_equal(message.pattern, nlpar(map_patterns, lam=choice.lam, search_radius=2)[3, 4])


def test_processed_pattern_equals_process_patterns(explorer, map_file, map_patterns):
    with kikuchi.open(map_file) as m:
        background = m.static_background
    settings = PRESETS["indexing"].replace(nlpar=True, nlpar_search_radius=2, nlpar_lambda=1.3)
    expected = process_patterns(map_patterns, settings, static_background=background)[2, 5]
    message, info = pattern_at(explorer, "row=2&col=5&nlpar=2&lambda=1.3&signal=processed&preset=indexing")
    np.testing.assert_array_equal(message.pattern, expected)
    assert info["processing"]["nlpar"] and info["processing"]["nlpar_lambda_used"] == 1.3
    message, info = pattern_at(explorer, "row=2&col=5&nlpar=2&signal=processed&preset=indexing")
    assert info["nlpar_lambda_choice"].startswith("auto on the 25 points within 2 steps")
    lam = info["nlpar_lambda"]
    expected = process_patterns(map_patterns, settings.replace(nlpar_lambda=lam), static_background=background)[2, 5]
    np.testing.assert_array_equal(message.pattern, expected)


@pytest.mark.parametrize(
    "query, message",
    [
        ("row=1&col=1&npa=1&nlpar=2", "npa=1 with nlpar=2: choose one neighbour averaging"),
        ("row=1&col=1&nlpar=6", "nlpar=6: the NLPAR search radius is 0 (off) to 5 map steps"),
        ("row=1&col=1&nlpar=2&lambda=-1", "lambda='-1': NLPAR lambda is 'auto' or a number > 0"),
        ("row=1&col=1&nlpar=2&lambda=fast", "lambda='fast': NLPAR lambda is 'auto' or a number > 0"),
    ],
)
def test_bad_nlpar_requests(explorer, query, message):
    status, headers, body = get(explorer.url + "api/pattern?" + query)
    assert status == 400
    assert message in json.loads(body)["error"]


def test_download_is_named_after_the_averaging(explorer):
    status, headers, _ = get(explorer.url + "api/pattern.tiff?row=1&col=2&nlpar=2&lambda=1")
    assert status == 200 and headers["Content-Disposition"].endswith('_r1_c2_nlpar2.tiff"')
