"""The explorer's token: asked for off 127.0.0.1/::1/localhost, as Jupyter does; requests without it get 403.

Only loopback traffic: "another address" is 127.0.0.2 (the rule is the
address named, not where it leads), so no test reaches the network.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import socket

import numpy as np
import pytest

from kikuchi.explore import explore
from kikuchi.explore.encode import decode_pattern
from kikuchi.explore.server import needs_token

from .conftest import get
from .helpers import start_cli

OTHER_LOOPBACK = "127.0.0.2"


@pytest.fixture(scope="module")
def guarded(map_file):
    """An explorer bound to 127.0.0.2: it asks for a random token."""
    ex = explore(map_file, host=OTHER_LOOPBACK)
    yield ex
    ex.stop()


def base(ex) -> str:
    return ex._server.url


def assert_forbidden(status: int, headers, body: bytes, word: str = "no") -> None:
    assert status == 403, body
    assert headers["Content-Type"] == "application/json"
    message = json.loads(body)["error"]
    assert "\n" not in message and message.startswith(f"{word} token: this explorer serves only requests with its token")
    assert "open the address it printed at start" in message


@pytest.mark.parametrize(
    "host, asked",
    [
        ("127.0.0.1", False),
        ("::1", False),
        ("0:0:0:0:0:0:0:1", False),
        ("localhost", False),
        ("127.0.0.2", True),
        ("127.1.2.3", True),
        ("0.0.0.0", True),
        ("::", True),
        ("192.168.1.20", True),
        ("my-workstation.example.org", True),
    ],
)
def test_which_addresses_ask_for_a_token(host, asked):
    assert needs_token(host) is asked


def test_a_random_token_is_in_the_address(guarded):
    assert re.fullmatch(r"[0-9a-f]{48}", guarded.token)
    assert guarded.url == f"http://{OTHER_LOOPBACK}:{guarded._server.server_address[1]}/?token={guarded.token}"
    assert f'src="{guarded.url}"' in guarded._repr_html_()  # Jupyter's IFrame carries it


@pytest.mark.parametrize(
    "route, method",
    [
        ("", "GET"),
        ("index.html", "GET"),
        ("static/explorer.js", "GET"),
        ("static/explorer.css", "GET"),
        ("api/info", "GET"),
        ("api/info", "HEAD"),
        ("api/pattern?row=0&col=0", "GET"),
        ("api/pattern.tiff?row=0&col=0", "GET"),
        ("api/map?name=bse", "GET"),
        ("api/map-values?name=bse", "GET"),
        ("api/bands?row=0&col=0", "GET"),
        ("api/match?row=0&col=0", "GET"),
        ("api/match.png?row=0&col=0&panel=simulation", "GET"),
        ("api/no-such-route", "GET"),  # no answer reveals the routes
        ("api/pattern?row=0&row=1", "GET"),  # nor checks the parameters
        ("api/info", "DELETE"),
    ],
)
def test_every_request_without_the_token_is_forbidden(guarded, route, method):
    status, headers, body = get(base(guarded) + route, method=method)
    if method == "HEAD":
        assert status == 403 and body == b""
    else:
        assert_forbidden(status, headers, body)


def test_a_pin_without_the_token_is_forbidden(guarded):
    status, headers, body = get(base(guarded) + "api/pin", method="POST", data=b'{"row": 1, "col": 1}', headers={"Content-Type": "application/json"})
    assert_forbidden(status, headers, body)
    assert guarded.pinned is None


@pytest.mark.parametrize(
    "how",
    [
        {"query": "token=wrong-token-0000"},
        {"headers": {"Authorization": "token wrong-token-0000"}},
        {"headers": {"Cookie": "kikuchi-explore-token-PORT=wrong-token-0000"}},
        {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}},  # another scheme is no token
    ],
)
def test_a_wrong_token_is_forbidden(guarded, how):
    port = str(guarded._server.server_address[1])
    headers = {k: v.replace("PORT", port) for k, v in how.get("headers", {}).items()}
    status, got_headers, body = get(base(guarded) + "api/info" + ("?" + how["query"] if "query" in how else ""), headers=headers)
    assert_forbidden(status, got_headers, body, "no" if "Basic" in headers.get("Authorization", "") else "wrong")
    assert "Set-Cookie" not in got_headers


def test_a_token_of_another_port_is_not_this_ones(guarded):
    other = int(guarded._server.server_address[1]) + 1
    status, headers, body = get(base(guarded) + "api/info", headers={"Cookie": f"kikuchi-explore-token-{other}={guarded.token}"})
    assert_forbidden(status, headers, body)


def test_the_token_in_the_address_sets_a_cookie_for_the_page(guarded, map_patterns):
    status, headers, body = get(guarded.url)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    name = f"kikuchi-explore-token-{guarded._server.server_address[1]}"
    assert headers["Set-Cookie"] == f"{name}={guarded.token}; Path=/; HttpOnly; SameSite=Strict"
    # the page asks for its script and style with the token (an IFrame on another site sends no cookie)
    assert f'src="/static/explorer.js?token={guarded.token}"'.encode() in body
    assert f'href="/static/explorer.css?token={guarded.token}"'.encode() in body
    assert get(base(guarded) + f"static/explorer.js?token={guarded.token}")[0] == 200
    # then the cookie alone, the query alone or the header alone opens every route
    for route, how in (
        ("api/pattern?row=2&col=3", {"headers": {"Cookie": f"other=1; {name}={guarded.token}"}}),
        (f"api/pattern?row=2&col=3&token={guarded.token}", {}),
        ("api/pattern?row=2&col=3", {"headers": {"Authorization": f"token {guarded.token}"}}),
        ("api/pattern?row=2&col=3", {"headers": {"Authorization": f"Bearer {guarded.token}"}}),
    ):
        status, headers, body = get(base(guarded) + route, **how)
        assert status == 200, body
        np.testing.assert_array_equal(decode_pattern(body).pattern, map_patterns[2, 3])
    status, _, body = get(
        base(guarded) + "api/pin", method="POST", data=b'{"row": 1, "col": 2}', headers={"Content-Type": "application/json", "Cookie": f"{name}={guarded.token}"}
    )
    assert status == 200 and guarded.pinned == (1, 2)


def test_with_the_token_bad_requests_get_their_own_answers(guarded):
    status, _, body = get(base(guarded) + f"api/pattern?row=0&col=99&token={guarded.token}")
    assert status == 404 and "is outside the 6 x 8 map" in json.loads(body)["error"]
    status, _, body = get(base(guarded) + f"api/pattern?row=0&row=1&col=0&token={guarded.token}")
    assert status == 400 and "given twice" in json.loads(body)["error"]


def test_the_token_is_compared_as_a_whole(guarded):
    for wrong in (guarded.token[:-1], guarded.token + "0", "x" + guarded.token[1:], "", guarded.token + " x", "token"):
        status, headers, body = get(base(guarded) + "api/info", headers={"Authorization": f"token {wrong}"})
        assert status == 403, wrong


def test_raw_http_without_the_token(guarded):
    host, port = guarded._server.server_address[:2]
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(f"GET /api/info HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        reply = s.recv(4096)
    assert reply.startswith(b"HTTP/1.1 403 ")
    assert guarded._server.counts["forbidden"] >= 1
    assert get(base(guarded) + f"api/info?token={guarded.token}")[0] == 200  # still serving


def test_loopback_needs_no_token_but_can_ask_for_one(map_file):
    with explore(map_file) as ex:
        assert ex.token is None and "token" not in ex.url
        assert get(ex.url + "api/info")[0] == 200
        assert get(ex.url + "api/info?token=from-an-old-address")[0] == 200  # a stale address still works
    with explore(map_file, token=True) as ex:
        assert re.fullmatch(r"[0-9a-f]{48}", ex.token) and ex.url.endswith(f"/?token={ex.token}")
        assert_forbidden(*get(ex._server.url + "api/info"))
        assert get(ex._server.url + f"api/info?token={ex.token}")[0] == 200
    with explore(map_file, token="my.own-token_1~") as ex:
        assert ex.token == "my.own-token_1~"
        assert get(ex._server.url + "api/info?token=my.own-token_1~")[0] == 200
        assert_forbidden(*get(ex._server.url + "api/info"))


@pytest.mark.parametrize(
    "token, host, message",
    [
        ("short", "127.0.0.1", "token: expected 8 to 256 characters among A-Z a-z 0-9 _ . ~ - (got 5 characters)"),
        ("with space in it", "127.0.0.1", "(got 16 characters)"),
        ("semi;colon=cookie", "127.0.0.1", "(got 17 characters)"),
        ("x" * 257, "127.0.0.1", "(got 257 characters)"),
        (12345678, "127.0.0.1", "(got int)"),
        (False, OTHER_LOOPBACK, "token: a server on 127.0.0.2 must ask for a token (give one, or True for a random one)"),
    ],
)
def test_bad_tokens_are_refused_before_the_file_is_opened(map_file, token, host, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        explore(map_file, host=host, token=token)


def test_no_token_false_on_loopback_is_no_token(map_file):
    with explore(map_file, token=False) as ex:
        assert ex.token is None and get(ex.url + "api/info")[0] == 200


# ---------------------------------------------------------------- the command
def stop(proc) -> tuple[str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return out, err


def test_cli_on_another_address_prints_a_token(map_file):
    proc, url = start_cli(str(map_file), "--no-browser", "--host", OTHER_LOOPBACK)
    try:
        assert url.startswith(f"http://{OTHER_LOOPBACK}:")
        assert_forbidden(*get(url + "api/info"))
    finally:
        _, err = stop(proc)
    assert err == ""  # 127.0.0.2 is this computer: no warning about the network, but a token all the same


def test_cli_token_given_and_required(map_file):
    proc, url = start_cli(str(map_file), "--no-browser", "--host", OTHER_LOOPBACK, "--token", "given-token-42")
    try:
        assert get(url + "api/info?token=given-token-42")[0] == 200
        assert_forbidden(*get(url + "api/info"))
    finally:
        stop(proc)
    proc, url = start_cli(str(map_file), "--no-browser", "--require-token")
    try:
        assert url.startswith("http://127.0.0.1:")
        assert_forbidden(*get(url + "api/info"))
    finally:
        stop(proc)


def test_cli_prints_the_address_with_its_token(map_file):
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "kikuchi.cli.main", "explore", str(map_file), "--no-browser", "--host", OTHER_LOOPBACK],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.2:[0-9]+/)\?token=([0-9a-f]{48})  \(Ctrl-C to stop\)", line)
        assert match, line
        assert get(match.group(1) + f"api/info?token={match.group(2)}")[0] == 200
    finally:
        stop(proc)


def test_cli_bad_token(cli, map_file):
    result = cli("explore", map_file, "--no-browser", "--token", "abc")
    assert result.returncode == 2
    assert result.stderr.strip() == "kikuchi explore: error: --token: expected 8 to 256 characters among A-Z a-z 0-9 _ . ~ - (got 3 characters)"
    assert "--require-token" in cli("explore", "--help").stdout


# ---------------------------------------------------------------- the page
@pytest.mark.browser
def test_the_page_sends_its_token_with_every_request(browser, guarded, map_patterns):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        urls: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: urls.append(request.url))
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(guarded.url)
        page.wait_for_selector("body[data-ready='1']", timeout=15000)
        page.evaluate("() => window.kikuchiExplorer.show(2, 3)")
        page.wait_for_function("() => { const c = document.querySelector('[data-testid=pattern]'); return c.dataset.row === '2' && c.dataset.col === '3'; }")
        shown = page.evaluate("() => window.kikuchiExplorer.currentPattern()")
        pattern = np.frombuffer(base64.b64decode(shown["bytes"]), dtype="<u2").reshape(shown["h"], shown["w"])
        np.testing.assert_array_equal(pattern, map_patterns[2, 3])
        assert page.get_by_test_id("save-tiff").get_attribute("href").endswith(f"&token={guarded.token}")
        own = [u for u in urls if u.startswith(base(guarded))]
        assert len(own) >= 4 and all(f"token={guarded.token}" in u for u in own), own
        assert errors == []
    finally:
        context.close()
    # a browser without the token gets the one-line refusal, not the page
    context = browser.new_context()
    try:
        response = context.new_page().goto(base(guarded))
        assert response.status == 403 and "no token" in response.text()
    finally:
        context.close()
