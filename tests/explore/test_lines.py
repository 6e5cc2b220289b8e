"""Simulated band centre lines (hkl) over the pattern: equal to the geometry API, on the bands."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kikuchi
from kikuchi.bands import detect_bands
from kikuchi.crystal import Phase, reflectors
from kikuchi.explore import MapSource, explore
from kikuchi.explore.source import LINE_REFLECTORS, PatternQuery, RequestError
from kikuchi.process import process_patterns
from kikuchi.simulate.geometric import band_lines

from .conftest import get
from .helpers import line_distance


@pytest.fixture(scope="module")
def served(simulated_map):
    with explore(simulated_map) as ex:
        yield ex


def test_lines_equal_band_lines_of_the_geometry(served, simulated_map):
    status, _, body = get(served.url + "api/lines?row=2&col=4")
    assert status == 200
    answer = json.loads(body)
    with kikuchi.open(simulated_map) as m:
        euler = m.euler[2, 4]
        expected = band_lines(m.detector, euler, reflectors(Phase.from_phase_info(m.phases[0]), kv=m.kv, n=LINE_REFLECTORS), index=(2, 4))
    assert answer["phase"] == "ni" and answer["shape"] == [240, 240]
    assert answer["euler_deg"] == pytest.approx(np.degrees(euler), abs=1e-3)
    assert len(answer["bands"]) == len(expected) > 5
    for got, (hkl, ends) in zip(answer["bands"], expected):
        assert got["hkl"] == "(" + "".join(str(v) for v in hkl) + ")"
        assert [got["x0"], got["y0"], got["x1"], got["y1"]] == pytest.approx(list(ends))


def test_lines_lie_on_the_detected_bands(served, simulated_map):
    """The overlay is drawn where the bands are: each strong detected band has a simulated line on it."""
    with kikuchi.open(simulated_map) as m:
        pattern = process_patterns(m.pattern(1, 1), "detailed", static_background=m.static_background)
    lines = json.loads(get(served.url + "api/lines?row=1&col=1")[2])["bands"]
    detected = detect_bands(pattern, n_bands=4)
    h, w = pattern.shape
    for rho, theta in zip(detected.rho, detected.theta):
        best = min(line_distance(line, rho, theta, (h, w)) for line in lines)
        assert best < 1.0, f"no simulated line near the detected band rho {rho:.1f} px, theta {np.degrees(theta):.1f} deg"


def test_lines_need_orientations(map_file, simulated_map):
    with MapSource(map_file) as source:
        assert source.overlays == ["bands"]
        with pytest.raises(RequestError, match="this map has no orientations: no simulated band lines"):
            source.lines(PatternQuery(row=0, col=0))
    with MapSource(simulated_map) as source:
        assert source.overlays == ["bands", "lines"]
        source.orientations.euler[0, 0] = np.nan
        answer = source.lines(PatternQuery(row=0, col=0))
        assert answer["bands"] == [] and answer["note"] == "no orientation at this point"
