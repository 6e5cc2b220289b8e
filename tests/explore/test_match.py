"""The pattern-matching view: experiment, simulation, difference and the NCC refinement computes."""

from __future__ import annotations

import json

import numpy as np
import pytest

import kikuchi
from kikuchi.explore import MapSource, explore
from kikuchi.explore.encode import decode_pattern
from kikuchi.explore.match import PATTERN_RANGE, match_phase_id
from kikuchi.explore.source import RequestError
from kikuchi.io.orientation_map import OrientationMap, read_orientation_map
from kikuchi.process import circular_mask
from kikuchi.refine import load_master_pattern, ncc, normalize_patterns, prepare_for_matching, refine_map, refine_patterns
from kikuchi.simulate import project_patterns
from tests.conftest import shared_file

from .conftest import get


@pytest.fixture(scope="module")
def ni_master():
    return load_master_pattern("kinematical:ni", kv=20.0)


@pytest.fixture(scope="module")
def refined(tmp_path_factory, ni_master):
    """A 3 x 3 simulated Ni map, its orientations and PCs refined by kikuchi.refine from 1 degree off, as kikuchi's HDF5."""
    from kikuchi.simulate import simulate

    folder = tmp_path_factory.mktemp("match")
    path = simulate(folder / "ni.h5", shape=(3, 3), pattern_shape=(60, 60), grains=2, bit_depth=16, noise="low", seed=11, progress=False)
    with kikuchi.open(path) as m:
        start = OrientationMap.from_arrays(euler=m.euler + np.radians(1.0), phase_id=np.ones((3, 3), dtype=int), phases=m.phases)
        refinement = refine_map(m, start, ni_master, refine="both", progress=False)
    out = folder / "refined.h5"
    refinement.to_orientation_map().write(out)
    return path, out


def test_ncc_of_the_view_is_the_ncc_refinement_reached(refined, ni_master):
    path, orientations = refined
    omap = read_orientation_map(orientations)
    with explore(path, orientations=orientations, master_pattern=ni_master) as ex:
        info = json.loads(get(ex.url + "api/info")[2])["match"]
        assert info["phase"] == "ni" and info["mask"] == "circular" and info["mask_pixels"] == int(circular_mask((60, 60)).sum())
        assert info["pc_from"].startswith("orientation map")
        for flat in range(9):
            row, col = divmod(flat, 3)
            status, _, body = get(ex.url + f"api/match?row={row}&col={col}")
            answer = json.loads(body)
            assert status == 200 and answer["pc_from"] == "orientation map"
            # the refined PC of this point (not the map file's), the refined orientation
            assert answer["pc_bruker"] == pytest.approx([omap.columns[k][flat] for k in ("pcx", "pcy", "pcz")], abs=1e-12)
            assert answer["euler_deg"] == pytest.approx(np.degrees(omap.euler[flat]), abs=1e-9)
            # kikuchi.refine's NCC at its optimum (numba kernel) = the view's (numpy); at the file's PC it is ~7e-4 lower
            assert answer["ncc"] == pytest.approx(omap.columns["ncc"][flat], abs=1e-6)
            assert answer["ncc"] > 0.8
    with kikuchi.open(path) as m:
        assert not np.allclose(m.detector.pc_flat[0], omap.columns["pcx"][0])  # the PCs did move: the file's would not do


def test_panels_are_the_patterns_normalised_as_refinement_does(simulated_map, ni_master):
    """Experiment and simulation have mean 0, std 1 in the mask; their mean product is the NCC; difference = experiment - simulation."""
    with explore(simulated_map, master_pattern="kinematical:ni") as ex, kikuchi.open(simulated_map) as m:
        answer = json.loads(get(ex.url + "api/match?row=2&col=3")[2])
        panels = {}
        for name in ("experiment", "simulation", "difference"):
            status, headers, body = get(ex.url + f"api/match-pattern?row=2&col=3&panel={name}")
            assert status == 200 and json.loads(headers["X-Match-Info"])["ncc"] == answer["ncc"]
            message = decode_pattern(body)
            assert (message.row, message.col) == (2, 3) and message.pattern.dtype == np.float32
            panels[name] = message.pattern.astype(np.float64)
        mask = circular_mask(m.pattern_shape)
        for name in ("experiment", "simulation"):
            assert panels[name][mask].mean() == pytest.approx(0, abs=1e-5)
            assert panels[name][mask].std() == pytest.approx(1, abs=1e-4)
            assert np.all(panels[name][~mask] == 0)
        np.testing.assert_allclose(panels["difference"], panels["experiment"] - panels["simulation"], atol=1e-6)
        assert (panels["experiment"] * panels["simulation"])[mask].mean() == pytest.approx(answer["ncc"], abs=1e-5)
        # the same numbers from the library: prepare_for_matching, project_patterns, ncc with the circular mask
        prepared = prepare_for_matching(m.pattern(2, 3), static_background=m.static_background)
        simulated = project_patterns(ni_master, m.detector, m.euler[2, 3])[0]
        assert answer["ncc"] == pytest.approx(ncc(prepared, simulated, mask), abs=1e-12)
        scale = np.sqrt(mask.sum())
        np.testing.assert_allclose(panels["experiment"], normalize_patterns(prepared, mask) * scale, atol=1e-5)
        np.testing.assert_allclose(panels["simulation"], normalize_patterns(simulated, mask) * scale, atol=1e-5)
        # PNG panels: grey -3..3 std (transparent outside the mask), the difference in colour
        from io import BytesIO

        from PIL import Image

        grey = np.asarray(Image.open(BytesIO(get(ex.url + "api/match.png?row=2&col=3&panel=experiment")[2])))
        assert grey.shape == (*m.pattern_shape, 2) and np.all(grey[~mask, 1] == 0) and np.all(grey[mask, 1] == 255)
        expected = np.clip(np.rint((panels["experiment"] + PATTERN_RANGE) * 255 / (2 * PATTERN_RANGE)), 0, 255)
        assert np.abs(grey[mask, 0] - expected[mask]).max() <= 1
        colour = np.asarray(Image.open(BytesIO(get(ex.url + "api/match.png?row=2&col=3&panel=difference")[2])))
        assert colour.shape == (*m.pattern_shape, 4)
        brighter = mask & (panels["difference"] > 1.5)  # experiment brighter: red
        assert np.all(colour[brighter, 0] > colour[brighter, 2])


def test_true_orientation_correlates_and_a_wrong_one_does_not(simulated_map):
    """On a synthetic map at its true orientations the simulation matches (NCC > 0.8); 5 degrees off it does not."""
    with kikuchi.open(simulated_map) as m:
        rows, cols = m.nav_shape
        truth = m.euler
        phases = m.phases
    with MapSource(simulated_map, master_pattern="kinematical:ni", prefetch=False) as source:
        values = [source.match(r, c).ncc for r in range(rows) for c in range(cols)]
    assert min(values) > 0.8, np.round(values, 3)
    off = OrientationMap.from_arrays(euler=truth + np.radians([5.0, 0.0, 0.0]), phase_id=np.ones((rows, cols), dtype=int), phases=phases)
    with MapSource(simulated_map, orientations=off, master_pattern="kinematical:ni", prefetch=False) as source:
        wrong = [source.match(r, c).ncc for r, c in ((0, 0), (2, 4), (3, 5))]
    assert max(wrong) < 0.3, np.round(wrong, 3)


def test_ncc_equals_the_refinement_kernel_on_the_real_ni_patterns():
    """kikuchipy's 3 x 3 Ni map, the EMsoft master pattern, the file's orientations and per-point PCs: the NCC kikuchi.refine starts from."""
    path = shared_file("kikuchipy/nickel_ebsd_small.h5")
    master = load_master_pattern(shared_file("kikuchipy/ni_mc_mp_20kv_uint8_gzip_opts9.h5"))
    with kikuchi.open(path) as m:
        patterns = prepare_for_matching(m.read_all().reshape(9, 60, 60), static_background=m.static_background)
        euler = m.euler.reshape(9, 3)
        detector = m.detector
    mask = circular_mask((60, 60))
    start = refine_patterns(patterns, master, detector, euler, mask=mask, max_evaluations=1, restarts=0, workers=1)
    assert detector.n_pc == 9
    with explore(path, master_pattern=master) as ex:
        for flat in range(9):
            answer = json.loads(get(ex.url + f"api/match?row={flat // 3}&col={flat % 3}")[2])
            assert answer["pc_bruker"] == pytest.approx(detector.pc_flat[flat].tolist(), abs=1e-7)
            assert answer["ncc"] == pytest.approx(start.ncc_start[flat], abs=1e-6)
            assert 0.4 < answer["ncc"] < 0.6  # real 60 x 60 Ni patterns against the dynamical simulation


def test_points_without_a_match_say_why(simulated_map):
    with kikuchi.open(simulated_map) as m:
        euler, phases = m.euler.copy(), m.phases
    phase_id = np.ones((4, 6), dtype=int)
    phase_id[0, 1] = 0
    omap = OrientationMap.from_arrays(euler=euler, phase_id=phase_id, phases=phases)
    with explore(simulated_map, orientations=omap, master_pattern="kinematical:ni") as ex:
        status, _, body = get(ex.url + "api/match?row=0&col=1")
        assert status == 200 and json.loads(body) == {"row": 0, "col": 1, "ncc": None, "note": "no orientation at (row 0, col 1)"}
        status, _, body = get(ex.url + "api/match.png?row=0&col=1&panel=simulation")
        assert status == 404 and json.loads(body)["error"] == "no orientation at (row 0, col 1)"
        for query, message in (
            ("api/match.png?row=0&col=0&panel=sim", "parameter panel is 'sim': choose from experiment, simulation, difference"),
            ("api/match-pattern?row=0&col=0", "parameter panel is missing: choose from experiment, simulation, difference"),
            ("api/match?row=0&col=0&npa=1", "unknown parameter 'npa' (allowed: col, row)"),
            ("api/match?row=9&col=0", "map position (row 9, col 0) is outside the 4 x 6 map"),
        ):
            status, _, body = get(ex.url + query)
            assert status in (400, 404) and json.loads(body)["error"] == message
    with explore(simulated_map) as ex:
        assert json.loads(get(ex.url + "api/info")[2])["match"] is None
        status, _, body = get(ex.url + "api/match?row=0&col=0")
        assert status == 404 and "no pattern-matching view: start the explorer with a master pattern" in json.loads(body)["error"]


def test_master_pattern_needs_orientations_of_its_phase(map_file, simulated_map):
    with pytest.raises(ValueError, match="grains.h5 holds no orientations to simulate the patterns at: give the orientation map"):
        MapSource(map_file, master_pattern="kinematical:ni", prefetch=False)
    two = [{"id": 1, "name": "Fe"}, {"id": 2, "name": "Al"}]
    with pytest.raises(ValueError, match="the orientations hold phases 1: Fe, 2: Al: say which one the master pattern is for"):
        match_phase_id(two, None, None)
    with pytest.raises(ValueError, match="phase 'Ni': the orientations have no such phase \\(1: Fe, 2: Al\\)"):
        match_phase_id(two, None, "Ni")
    with pytest.raises(ValueError, match="name a phase after 'kinematical:'"):
        MapSource(simulated_map, master_pattern="kinematical:", prefetch=False)
    with pytest.raises(RequestError, match="no pattern-matching view"), MapSource(simulated_map, prefetch=False) as source:
        source.match(0, 0)


def test_explore_checks_the_matching_arguments(simulated_map):
    with pytest.raises(ValueError, match="sigma=-1: expected a number greater than 0 px"):
        explore(simulated_map, master_pattern="kinematical:ni", sigma=-1)
    with pytest.raises(TypeError, match="signal_mask='yes': expected True or False"):
        explore(simulated_map, master_pattern="kinematical:ni", signal_mask="yes")
    with pytest.raises(TypeError, match="master_pattern=3: expected a file name"):
        explore(simulated_map, master_pattern=3)
    # without the mask every pixel is compared; the NCC is still refinement's (kikuchi.refine.ncc without a mask)
    with MapSource(simulated_map, master_pattern="kinematical:ni", signal_mask=False, sigma=6.0, prefetch=False) as source:
        found = source.match(1, 1)
        m = source.map
        prepared = prepare_for_matching(m.pattern(1, 1), static_background=m.static_background, sigma=6.0)
        simulated = project_patterns(source.matcher.master, m.detector, m.euler[1, 1])[0]
        assert found.mask.all() and found.ncc == pytest.approx(ncc(prepared, simulated), abs=1e-12)
        assert source.info()["match"]["mask"] == "none" and source.info()["match"]["sigma"] == 6.0


def test_the_view_prepares_patterns_as_the_refinement_that_wrote_them(cli, simulated_map, tmp_path):
    """kikuchi refine --no-mask --sigma 4 writes its settings into the HDF5; the explorer reads them: the same NCC, no option needed."""
    with kikuchi.open(simulated_map) as m:
        start = OrientationMap.from_arrays(euler=m.euler + np.radians(0.5), phase_id=np.ones(m.nav_shape, dtype=int), phases=m.phases)
    start.write(tmp_path / "start.ctf")
    out = tmp_path / "refined.h5"
    proc = cli("refine", simulated_map, "--orientations", tmp_path / "start.ctf", "--master-pattern", "kinematical:ni", "--no-mask",
               "--sigma", "4", "-o", out, "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    omap = read_orientation_map(out)
    with MapSource(simulated_map, orientations=out, master_pattern="kinematical:ni", prefetch=False) as source:
        info = source.info()["match"]
        assert (info["mask"], info["sigma"], info["settings_from"]) == ("none", 4.0, "the refinement that wrote the orientations")
        assert source.match(1, 1).ncc == pytest.approx(omap.columns["ncc"][1 * m.nav_shape[1] + 1], abs=1e-6)
    with MapSource(simulated_map, orientations=out, master_pattern="kinematical:ni", signal_mask=True, sigma=2.0, prefetch=False) as source:
        assert source.info()["match"]["mask"] == "circular" and source.info()["match"]["sigma"] == 2.0  # options given win
