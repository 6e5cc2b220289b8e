"""kikuchi.explore(path) from Python / Jupyter: background server, inline IFrame, stop."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

import kikuchi
from kikuchi.explore import Explorer

from .conftest import get


def test_explore_in_a_notebook(map_file):
    ex = kikuchi.explore(map_file, height=640)
    try:
        assert isinstance(ex, Explorer) and ex.running
        assert ex.url.startswith("http://127.0.0.1:") and ex.path == map_file
        html = ex._repr_html_()
        assert f'<iframe src="{ex.url}" width="100%" height="640"' in html
        assert "call <code>.stop()</code> to end it" in html
        assert get(ex.url + "api/info")[0] == 200
        assert ex.pinned is None
        assert repr(ex) == f"<Explorer grains.h5 at {ex.url} (running)>"
    finally:
        ex.stop()
    assert not ex.running and "stopped" in ex._repr_html_()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(ex.url + "api/info", timeout=5)
    ex.stop()  # a second stop does nothing
    with pytest.raises(RuntimeError, match=r"this explorer was stopped; call kikuchi.explore\(path\) again"):
        ex.start()


def test_two_explorers_side_by_side(map_file, simulated_map):
    with kikuchi.explore(map_file) as a, kikuchi.explore(simulated_map) as b:
        assert a.url != b.url
        assert b"grains.h5" in get(a.url + "api/info")[2] and b"ni_grains.h5" in get(b.url + "api/info")[2]


def test_explore_bad_arguments(tmp_path, map_file):
    with pytest.raises(FileNotFoundError, match="missing.h5: no such map file"):
        kikuchi.explore(tmp_path / "missing.h5")
    with kikuchi.explore(map_file) as ex:
        port = int(ex.url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(OSError, match="Address already in use"):
            kikuchi.explore(map_file, port=port)


def test_wait_returns_when_stopped_from_another_thread(map_file):
    import threading

    ex = kikuchi.explore(map_file)
    timer = threading.Timer(0.3, ex.stop)
    timer.start()
    ex.wait()
    timer.join()
    assert not ex.running
