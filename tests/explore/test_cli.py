"""The ``kikuchi explore`` command: start, serve, stop on Ctrl-C, bad input."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

from .conftest import get
from .helpers import start_cli


def test_explore_serves_and_stops_cleanly_on_ctrl_c(map_file):
    proc, url = start_cli(str(map_file), "--no-browser")
    try:
        assert url.startswith("http://127.0.0.1:")
        status, _, body = get(url + "api/info")
        assert status == 200 and json.loads(body)["file"] == "grains.h5"
        assert get(url + "api/pattern?row=1&col=1")[0] == 200
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "kikuchi explore: stopped" in out
    assert "Traceback" not in err


def test_explore_on_a_given_port(map_file):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc, url = start_cli(str(map_file), "--no-browser", "--port", str(port))
    try:
        assert url == f"http://127.0.0.1:{port}/"
        # a second explorer on the same port is refused with a clear message
        second = subprocess.run(
            [sys.executable, "-m", "kikuchi.cli.main", "explore", str(map_file), "--no-browser", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2
        assert f"kikuchi explore: error: cannot serve on 127.0.0.1:{port}" in second.stderr
        assert "choose another --port, or --port 0" in second.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_explore_bad_input(cli, tmp_path, map_file):
    result = cli("explore", tmp_path / "missing.h5", "--no-browser")
    assert result.returncode == 2 and "missing.h5: no such map file" in result.stderr
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    result = cli("explore", bad, "--no-browser")
    assert result.returncode == 2 and "bad.h5: not a readable HDF5 file" in result.stderr
    result = cli("explore", map_file, "--no-browser", "--port", "70000")
    assert result.returncode == 2 and "--port 70000: a TCP port is 0..65535" in result.stderr
    result = cli("explore", map_file, "--no-browser", "--orientations", tmp_path / "none.ctf")
    assert result.returncode == 2 and "none.ctf" in result.stderr
    help_text = cli("explore", "--help").stdout
    for option in ("--port", "--host", "--no-browser", "--orientations"):
        assert option in help_text


def test_non_loopback_host_warns(map_file):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kikuchi.cli.main", "explore", str(map_file), "--no-browser", "--host", "0.0.0.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "at http://0.0.0.0:" in line
        time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert "warning: serving grains.h5 to the network on 0.0.0.0" in err


def test_explore_with_a_master_pattern_serves_the_matching_view(simulated_map):
    proc, url = start_cli(str(simulated_map), "--no-browser", "--master-pattern", "kinematical:ni", "--sigma", "9.6")
    try:
        info = json.loads(get(url + "api/info")[2])["match"]
        assert info["master_pattern"] == "kinematical (ni)" and info["kv"] == 20.0 and info["sigma"] == 9.6
        status, _, body = get(url + "api/match?row=1&col=1")
        assert status == 200 and json.loads(body)["ncc"] > 0.8
        assert get(url + "api/match.png?row=1&col=1&panel=difference")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_explore_matching_options_bad_input(cli, tmp_path, map_file, simulated_map):
    result = cli("explore", simulated_map, "--no-browser", "--sigma", "2")
    assert result.returncode == 2 and "--sigma sets up the pattern-matching view: give it with --master-pattern" in result.stderr
    result = cli("explore", map_file, "--no-browser", "--master-pattern", "kinematical:ni")
    assert result.returncode == 2 and "grains.h5 holds no orientations to simulate the patterns at" in result.stderr
    result = cli("explore", simulated_map, "--no-browser", "--master-pattern", "kinematical:ni", "--phase", "fe")
    assert result.returncode == 2 and "phase 'fe': the orientations have no such phase (1: ni)" in result.stderr
    result = cli("explore", simulated_map, "--no-browser", "--master-pattern", tmp_path / "none.h5")
    assert result.returncode == 2 and "none.h5" in result.stderr
    help_text = cli("explore", "--help").stdout
    for option in ("--master-pattern", "--energy", "--phase", "--sigma", "--no-background", "--no-mask"):
        assert option in help_text
