"""The README's Python example runs as written."""

from __future__ import annotations

import os
import re

from tests.conftest import ROOT


def test_readme_python_example_runs(tmp_path, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README has no Python example"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["m"].nav_shape == (20, 25)
    assert namespace["p"].shape == namespace["m"].pattern_shape
    assert namespace["bc"].shape == (20, 25)
    assert namespace["xmap"].size == 500
    assert os.path.exists("truth.ctf")
