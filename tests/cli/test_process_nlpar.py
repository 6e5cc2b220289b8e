"""``kikuchi process --nlpar`` (and ``kikuchi pattern --nlpar``) through a subprocess, as a user runs them."""

from __future__ import annotations

import re

import numpy as np
import pytest

import kikuchi
from kikuchi.engine import process_map
from kikuchi.io._atomic import partial_path
from kikuchi.process import PRESETS
from tests.cli.test_process import expect_errors
from tests.engine.conftest import write_map


@pytest.fixture
def grain_map(tmp_path, rng):
    """An 8 x 6 map of 30 x 30 uint16 patterns of two grains (left, right), Poisson noise of about 40 counts."""
    yy, xx = np.mgrid[0:30, 0:30]
    grains = [40 * (1 + 0.3 * np.cos(0.4 * xx + 0.2 * yy)), 40 * (1 + 0.3 * np.cos(0.3 * yy - 0.25 * xx + 1))]
    pats = np.stack([rng.poisson(grains[c >= 3]) for r in range(8) for c in range(6)]).reshape(8, 6, 30, 30)
    return write_map(tmp_path / "grains.h5", pats.astype(np.uint16))


def test_nlpar_auto_and_given_lambda(cli, grain_map, tmp_path):
    out = tmp_path / "auto.h5"
    proc = cli("process", grain_map, "-o", out, "--nlpar", "--search-radius", "2", "--static", "none", "--no-progress", check=True)
    found = re.search(r"nlpar lambda ([0-9.]+) \(auto\) search radius 2\);", proc.stdout)
    assert found, proc.stdout
    with kikuchi.open(out) as o:
        p = o.processing
        got = o.read_all()
    assert p["nlpar_lambda_used"] == pytest.approx(float(found.group(1)), rel=1e-3)
    expected = PRESETS["indexing"].replace(static="none", nlpar=True, nlpar_search_radius=2)
    ref = process_map(grain_map, tmp_path / "ref.h5", expected, static_background="none", progress=False)
    with kikuchi.open(ref) as r:
        np.testing.assert_array_equal(got, r.read_all())
    lam = p["nlpar_lambda_used"]
    proc = cli("process", grain_map, "-o", tmp_path / "given.h5", "--nlpar", "--lambda", repr(lam), "--search-radius", "2",
               "--static", "none", "--threads", "1", "--no-progress", check=True)
    assert f"nlpar lambda {lam:.4g} (given) search radius 2);" in proc.stdout and "serially (1 thread)" in proc.stdout
    with kikuchi.open(tmp_path / "given.h5") as g:
        np.testing.assert_array_equal(g.read_all(), got)
    # kikuchi pattern gives the pattern of kikuchi process at that point
    tif = tmp_path / "p.tif"
    cli("pattern", grain_map, "--at", "4,3", "--process", "indexing", "--nlpar", "--search-radius", "2", "--static", "none", "-o", tif, check=True)
    import tifffile

    np.testing.assert_array_equal(tifffile.imread(tif), got[4, 3])


def test_bad_nlpar_options(cli, grain_map, tmp_path, capsys):
    out = tmp_path / "out.h5"
    cases = [
        (["--lambda", "0.5"], "--lambda applies to non-local averaging only: add --nlpar"),
        (["--search-radius", "2", "--nlpar-mask", "circle"], "--search-radius, --nlpar-mask apply to non-local averaging only: add --nlpar"),
        (["--nlpar", "--lambda", "-1"], "--lambda must be 'auto' or a number > 0, got '-1'"),
        (["--nlpar", "--lambda", "fast"], "--lambda must be 'auto' or a number > 0, got 'fast'"),
        (["--nlpar", "--lambda", "nan"], "--lambda must be 'auto' or a number > 0, got 'nan'"),
        (["--nlpar", "--search-radius", "0"], "--search-radius must be at least 1 map step, got 0"),
        (["--nlpar", "--npa", "1"], "choose one neighbour averaging: --nlpar or --npa (got --npa 1)"),
    ]
    for err in expect_errors(cli, capsys, ["process", str(grain_map), "-o", str(out)], cases):
        assert err.startswith("kikuchi process: error: ")
        assert not out.exists() and not partial_path(out).exists()
