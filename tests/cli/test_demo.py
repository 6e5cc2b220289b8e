"""``kikuchi demo`` runs every stage end to end and says where the results are."""

from __future__ import annotations

import re

import numpy as np

import kikuchi


def test_demo_runs_every_stage(tmp_path, cli):
    out = tmp_path / "demo"
    proc = cli("demo", "-o", out, "--shape", "8x10", "--seed", "3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    for command in ("simulate", "convert", "info", "plot", "process", "vbse", "quality", "index"):
        assert f"$ kikuchi {command}" in text
    assert f"Results in {out.resolve()}" in text
    for name in ("synthetic.h5", "truth.ctf", "map.h5", "processed.h5", "indexed.ctf", "bse.png",
                 "indexed_vs_truth.png", "vbse/index.html", "vbse/vbse.h5", "quality/index.html"):
        assert (out / name).stat().st_size > 0, name
    assert "converted map equals the simulated one at every (row, col): True" in text
    # the converted map is the simulated one, pattern for pattern
    with kikuchi.open(out / "synthetic.h5") as a, kikuchi.open(out / "map.h5") as b:
        assert b.nav_shape == (8, 10)
        np.testing.assert_array_equal(a.read_all(), b.read_all())
    # indexing recovers the truth of the synthetic map
    within = re.search(r"([\d.]+)% within 2 deg", text)
    assert within is not None and float(within.group(1)) >= 95.0
    assert not list(out.rglob(".*.partial"))


def test_demo_refuses_a_bad_shape_before_any_stage(tmp_path, cli):
    out = tmp_path / "demo"
    proc = cli("demo", "-o", out, "--shape", "8by10")
    assert proc.returncode == 2
    assert "kikuchi demo: error: argument --shape: expected ROWSxCOLS such as 40x50, got '8by10'" in proc.stderr
    assert "$ kikuchi simulate" not in proc.stdout and not out.exists()
