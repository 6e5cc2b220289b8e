"""The explorer on a real map: kikuchipy's 3 x 3 Ni patterns with their refined orientations."""

from __future__ import annotations

import json

import numpy as np

import kikuchi
from kikuchi.bands import detect_bands
from kikuchi.explore import explore
from kikuchi.explore.encode import decode_pattern
from kikuchi.process import process_patterns
from tests.conftest import shared_file

from .conftest import get
from .helpers import line_distance


def test_real_ni_map_patterns_orientations_and_lines():
    path = shared_file("kikuchipy/nickel_ebsd_small.h5")
    with explore(path) as ex:
        info = json.loads(get(ex.url + "api/info")[2])
        assert info["nav_shape"] == [3, 3] and info["pattern_shape"] == [60, 60] and info["dtype"] == "uint8"
        assert info["overlays"] == ["bands", "lines"]
        assert {"bse", "ipf-z", "phase"} <= {m["name"] for m in info["maps"]}
        with kikuchi.open(path) as m:
            expected = m.pattern(2, 1)
            processed = process_patterns(m.pattern(1, 1), "detailed", static_background=m.static_background)
        np.testing.assert_array_equal(decode_pattern(get(ex.url + "api/pattern?row=2&col=1")[2]).pattern, expected)
        # the simulated lines of the stored orientation lie on the bands found in the real pattern
        answer = json.loads(get(ex.url + "api/lines?row=1&col=1")[2])
        assert answer["phase"].lower().startswith("ni") and len(answer["bands"]) > 4
        detected = detect_bands(processed, n_bands=4)
        for rho, theta in zip(detected.rho, detected.theta):
            best = min(line_distance(line, rho, theta, (60, 60)) for line in answer["bands"])
            assert best < 1.5, f"no simulated line near the band at rho {rho:.1f} px, theta {np.degrees(theta):.1f} deg"
