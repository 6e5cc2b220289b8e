"""The map explorer against hostile clients: malformed requests, bad parameters, half-open and slow connections, load, the token.

Every case talks to an explorer on a loopback address only (127.0.0.1; the
token cases bind 127.0.0.2, which asks for a token as any address but
127.0.0.1, ::1 and localhost does). Each loop is bounded in count and time,
and every socket a case opens is closed by it.

How a case is judged (see ``_case.py``):

* ``error``: the server refused the request with a 4xx (or 503/505) and a
  one-line JSON ``{"error": ...}``, and still answers a normal request
  afterwards (the case raises ``ValueError`` with that line);
* ``ok``: load, half-open and slow connections that the server is meant
  to survive: every normal request answered right and in time, the bad
  connections closed within the server's limits, and the token accepted
  where given;
* ``other``: no answer, a 500, a request served that must be refused
  (``served without token``), a normal client blocked (``blocked``), a
  connection never closed (``not cut off``), or no answer to a normal
  request afterwards (``no longer serving``).

The half-open cases use a server whose timeouts are 1 s (the defaults are
30 s and 15 s) so that the cut-offs are seen within the sweep.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.explore_load import MALFORMED, half_sent, hang_up_mid_request, send_raw, silent, slow_reader  # noqa: E402
from benchmarks.hostile_cases._case import Case, run_cli  # noqa: E402

ROWS, COLS, SIDE = 6, 8, 60
MALFORMED_HTTP, BAD_PARAMETERS, HALF_OPEN, LOAD, TOKEN = (
    "explorer: malformed HTTP",
    "explorer: bad parameters",
    "explorer: half-open and slow connections",
    "explorer: concurrent clients",
    "explorer: token off 127.0.0.1",
)
OTHER_LOOPBACK = "127.0.0.2"


class Refused(ValueError):
    """The server refused a request clearly: one line of JSON with its status."""


def write_map(path: Path) -> tuple[Path, np.ndarray]:
    from kikuchi.io.mapstore import MapWriter

    rng = np.random.default_rng(11)
    patterns = rng.integers(100, 4000, size=(ROWS, COLS, SIDE, SIDE), dtype=np.uint16)
    with MapWriter(path, nav_shape=(ROWS, COLS), pattern_shape=(SIDE, SIDE), dtype="uint16", step_um=(0.5, 0.5)) as writer:
        writer.write_rows(0, patterns)
        writer.set_static_background(patterns.reshape(-1, SIDE, SIDE).mean(axis=0).astype(np.float32))
    return path, patterns


# -- talking to the server ------------------------------------------------------------------------
def request(addr: tuple[str, int], route: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(*addr, timeout=10)
    try:
        conn.request(method, route, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def refusal(status: int, body: bytes) -> str | None:
    """The one-line error of a clear refusal, or None when the answer is not one."""
    try:
        message = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(message, str) or not message or "\n" in message or status < 400 or status == 500:
        return None
    return message


def judge_reply(reply: bytes) -> str | None:
    """Raise Refused for a clear refusal in raw reply bytes; a verdict otherwise."""
    if not reply:
        return "no answer"
    head, _, body = reply.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return f"not HTTP: {reply[:40]!r}"
    message = refusal(status, body[: body.find(b"}") + 1] if b"}" in body else body)
    if message is None:
        return f"HTTP {status} without a one-line error: {body[:60]!r}"
    raise Refused(f"HTTP {status}: {message}")


def still_serving(addr: tuple[str, int], patterns: np.ndarray, *, token: str | None = None) -> str | None:
    """None when a normal pattern request gets the right pattern; 'no longer serving' otherwise."""
    from kikuchi.explore.encode import decode_pattern

    suffix = f"&token={token}" if token else ""
    try:
        status, _, body = request(addr, f"/api/pattern?row=3&col=5{suffix}")
    except (OSError, http.client.HTTPException) as exc:
        return f"no longer serving: {type(exc).__name__}: {exc}"
    if status != 200 or not np.array_equal(decode_pattern(body).pattern, patterns[3, 5]):
        return f"no longer serving: HTTP {status}"
    return None


def closed_by_server(s: socket.socket, within_s: float) -> bool:
    s.settimeout(0.2)
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            if not s.recv(65536):
                return True
        except TimeoutError:
            continue
        except OSError:
            return True
    return False


# -- cases ------------------------------------------------------------------------------------------
def raw_case(addr, patterns, data: bytes, expect: str = "refused") -> Callable[[], Any]:
    """Send raw bytes; ``expect`` 'refused' (a clear 4xx), 'served' (200 with the page or JSON: odd but valid HTTP) or 'closed'."""

    def run() -> str | None:
        try:
            reply = send_raw(addr, data)
        except OSError as exc:
            return f"no answer: {type(exc).__name__}: {exc}"
        after = still_serving(addr, patterns)
        if after:
            return after
        if expect == "closed":
            return None if not reply else f"answered {reply[:40]!r} where the connection was to be closed"
        if expect == "served":
            head, _, body = reply.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 ") or not (body.startswith(b"<!doctype html>") or body.startswith(b'{"file": ')):
                return f"not served: {reply[:60]!r}"
            return None
        return judge_reply(reply)

    return run


def query_case(addr, patterns, route: str, *, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None) -> Callable[[], Any]:
    def run() -> str | None:
        try:
            status, _, answer = request(addr, route, method=method, body=body, headers=headers)
        except (OSError, http.client.HTTPException) as exc:
            return f"no answer: {type(exc).__name__}: {exc}"
        after = still_serving(addr, patterns)
        if after:
            return after
        message = refusal(status, answer)
        if status == 200:
            return f"served a request it must refuse: {route[:60]}"
        if message is None:
            return f"HTTP {status} without a one-line error: {answer[:60]!r}"
        raise Refused(f"HTTP {status}: {message}")

    return run


BAD_QUERIES = [
    "/api/pattern?row=one&col=1",
    "/api/pattern?row=1.0&col=1",
    "/api/pattern?row=1e3&col=1",
    "/api/pattern?row=0x1&col=1",
    "/api/pattern?row=&col=1",
    "/api/pattern?col=1",
    "/api/pattern?row=-1&col=1",
    "/api/pattern?row=6&col=0",
    "/api/pattern?row=0&col=8",
    "/api/pattern?row=99999999999&col=1",
    "/api/pattern?row=1&col=1&npa=-1",
    "/api/pattern?row=1&col=1&npa=11",
    "/api/pattern?row=1&col=1&npa=nan",
    "/api/pattern?row=1&row=2&col=1",
    "/api/pattern?row=1&col=1&path=/etc/passwd",
    "/api/pattern?row=1&col=1&signal=../../etc",
    "/api/pattern?row=1&col=1&signal=nothing",
    "/api/pattern?row=1&col=1&signal=static&op=multiply",
    "/api/pattern?row=1&col=1&signal=processed&sigma=nan",
    "/api/pattern?row=1&col=1&signal=processed&sigma=-5",
    "/api/pattern?row=1&col=1&signal=processed&sigma=1e400",
    "/api/pattern?row=1&col=1&signal=processed&binning=7",
    "/api/pattern?row=1&col=1&signal=processed&clow=90&chigh=10",
    "/api/pattern?row=1&col=1&signal=processed&dtype=complex128",
    "/api/pattern?row=1&col=1&signal=processed&preset=%00",
    "/api/pattern?row=1&col=1&signal=%ff%fe",
    "/api/pattern?" + "&".join(f"k{i}=1" for i in range(30)),
    "/api/pattern?row=1&col=1&x=" + "y" * 2000,
    "/api/pattern?row=1&col=1&&&",
    "/api/pattern?row=1;col=1",
    "/api/pattern.tiff?row=1&col=99",
    "/api/pattern.png?row=a&col=1",
    "/api/bands?row=1&col=1&n_bands=-4",
    "/api/bands?row=1&col=1&n_bands=100000",
    "/api/lines?row=1&col=1",
    "/api/map?name=../../etc/passwd",
    "/api/map?name=nothing",
    "/api/map?name=",
    "/api/map-values?name=%2e%2e",
    "/api/ipf-key?phase=-1",
    "/api/ipf-key?phase=99",
    "/api/info?x=1",
    "/static/../source.py",
    "/static/%2e%2e/server.py",
    "/etc/passwd",
    "//etc/passwd",
]


def bad_pin_cases(addr, patterns) -> Iterator[tuple[str, Callable[[], Any]]]:
    json_headers = {"Content-Type": "application/json"}
    for label, body, headers in (
        ("pin: not JSON", b"not json", json_headers),
        ("pin: nested 1000 deep", b"[" * 1000, json_headers),
        ("pin: strings", b'{"row": "1", "col": 1}', json_headers),
        ("pin: outside", b'{"row": 60, "col": 1}', json_headers),
        ("pin: extra key", b'{"row": 1, "col": 1, "x": 2}', json_headers),
        ("pin: as a form", b"row=1&col=1", {"Content-Type": "application/x-www-form-urlencoded"}),
        ("pin: too long", b"{" + b" " * 5000 + b"}", json_headers),
    ):
        yield label, query_case(addr, patterns, "/api/pin", method="POST", body=body, headers=headers)


def half_open_case(ex, patterns, kind: str) -> Callable[[], Any]:
    """Hostile connections of one kind; a client must be served meanwhile; they must be closed within the limits."""
    addr = ex._server.server_address[:2]

    def run() -> str | None:
        held: list[socket.socket] = []
        try:
            if kind == "silent":
                held = silent(addr, 200)
            elif kind == "half request line":
                held = half_sent(addr, 20, b"GET /api/pattern?row=1")
            elif kind == "half headers":
                held = half_sent(addr, 20, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            elif kind == "half body":
                held = half_sent(addr, 10, b"POST /api/pin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{")
            elif kind == "slow readers":
                held = [slow_reader(addr, requests=1000) for _ in range(4)]  # 7 MB each: more than the buffers hold
            elif kind == "hang-ups":
                for i in range(40):
                    hang_up_mid_request(addr, reset=bool(i % 2))
            elif kind == "byte by byte":
                s = socket.create_connection(addr, timeout=5)
                s.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                held = [s]
                for _ in range(4):  # a header byte every 0.25 s for 1 s (the request timeout): never done
                    with contextlib.suppress(OSError):
                        s.sendall(b"X")
                    time.sleep(0.25)
            else:
                raise AssertionError(kind)
            t0 = time.perf_counter()
            verdict = still_serving(addr, patterns)
            if verdict:
                return verdict
            if time.perf_counter() - t0 > 2.0:
                return f"blocked: a normal request took {time.perf_counter() - t0:.1f} s"
            for s in held:
                if not closed_by_server(s, 5.0):
                    return f"not cut off: a '{kind}' connection still open after the server's limits"
            return still_serving(addr, patterns)
        except OSError as exc:
            return f"no answer: {type(exc).__name__}: {exc}"
        finally:
            for s in held:
                s.close()

    return run


def load_case(ex, patterns, clients: int, requests: int, *, attack: bool) -> Callable[[], Any]:
    from concurrent.futures import ThreadPoolExecutor

    from benchmarks.explore_load import client, hostile

    addr = ex._server.server_address[:2]

    def run() -> str | None:
        deadline = time.monotonic() + 60
        with hostile(addr, deadline=deadline) if attack else contextlib.nullcontext({}):
            with ThreadPoolExecutor(clients) as pool:
                futures = [pool.submit(client, addr, (ROWS, COLS), seed, requests, keep_alive=seed % 2 == 0, deadline=deadline) for seed in range(clients)]
                results = [r for f in futures for r in f.result()]
        bad = [r for r in results if r[1] != 200 or not r[3]]
        if len(results) < clients * requests:
            return f"blocked: {len(results)} of {clients * requests} requests within 60 s"
        if bad:
            return f"{len(bad)} of {len(results)} requests failed (first: {bad[0][:2]})"
        ms = sorted(r[2] * 1e3 for r in results if r[0] == "pattern")
        p99 = ms[int(0.99 * (len(ms) - 1))]
        if p99 > 5000:
            return f"blocked: p99 latency {p99:.0f} ms"
        return still_serving(addr, patterns)

    return run


def token_case(addr, patterns, token: str, route: str, how: str, *, method: str = "GET") -> Callable[[], Any]:
    """A request with no, a wrong or the right token: 403 expected for the first two."""

    wrong = ("1" if token[0] == "0" else "0") + token[1:]  # one character off

    def run() -> str | None:
        headers: dict[str, str] = {}
        url = route
        if how == "query":
            url += ("&" if "?" in route else "?") + f"token={token}"
        elif how == "wrong query":
            url += ("&" if "?" in route else "?") + f"token={wrong}"
        elif how == "header":
            headers["Authorization"] = f"token {token}"
        elif how == "wrong cookie":
            headers["Cookie"] = f"kikuchi-explore-token-{addr[1]}={wrong}"
        elif how == "other port's cookie":
            headers["Cookie"] = f"kikuchi-explore-token-{addr[1] + 1}={token}"
        body = b'{"row": 1, "col": 1}' if method == "POST" else None
        if body:
            headers["Content-Type"] = "application/json"
        try:
            status, _, answer = request(addr, url, method=method, body=body, headers=headers)
        except (OSError, http.client.HTTPException) as exc:
            return f"no answer: {type(exc).__name__}: {exc}"
        after = still_serving(addr, patterns, token=token)
        if after:
            return after
        if how in ("query", "header"):
            return None if status == 200 else f"refused with the token: HTTP {status}"
        if status != 403:
            return f"served without token: HTTP {status} for {method} {route}"
        if method == "HEAD":  # no body to a HEAD
            raise Refused("HTTP 403 (HEAD: the status only)")
        message = refusal(status, answer)
        if message is None:
            return f"HTTP 403 without a one-line error: {answer[:60]!r}"
        raise Refused(f"HTTP {status}: {message}")

    return run


def cli_token_case(path: Path, *args: str) -> Callable[[], Any]:
    """``kikuchi explore PATH --host 127.0.0.2 ARGS``: the address printed has a token, a request without it gets 403."""

    def run() -> Any:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kikuchi.cli.main", "explore", str(path), "--no-browser", "--host", OTHER_LOOPBACK, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        verdict = None
        try:
            line = proc.stdout.readline()
            host, _, rest = line.partition(f"at http://{OTHER_LOOPBACK}:")
            port_text, _, query = rest.partition("/")
            if not rest or not query.startswith("?token="):
                verdict = f"no token in the address printed: {line.strip()!r}"
            else:
                token = query[len("?token=") :].split()[0]
                addr = (OTHER_LOOPBACK, int(port_text))
                if request(addr, "/api/info")[0] != 403:
                    verdict = "served without token"
                elif request(addr, f"/api/info?token={token}")[0] != 200:
                    verdict = "refused with the token"
        except (OSError, ValueError, http.client.HTTPException) as exc:
            verdict = f"no answer: {type(exc).__name__}: {exc}"
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                verdict = verdict or "hang: not stopped by Ctrl-C"
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), verdict

    return run


def api_token_case(path: Path, token: Any, host: str) -> Callable[[], Any]:
    def run() -> str | None:
        from kikuchi.explore import explore

        ex = explore(path, host=host, token=token)  # expected to refuse
        ex.stop()
        return f"a server started with token={token!r}"

    return run


# -- the section ---------------------------------------------------------------------------------------
def cases(workdir: Path) -> Iterator[Case]:
    from kikuchi.explore import Explorer, explore
    from kikuchi.explore.server import make_server

    path, patterns = write_map(workdir / "explore_map.h5")
    ex = explore(path)
    addr = ex._server.server_address[:2]
    try:
        for i, (data, _) in enumerate(MALFORMED):
            yield Case(MALFORMED_HTTP, f"raw request {i}: {data[:40]!r}", raw_case(addr, patterns, data), timeout_s=30)
        for data, label, expect in (
            (b"GET / HTTP/1.1\r\n\r\n", "no Host header", "refused"),
            (b"PUT /api/pin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}", "PUT", "refused"),
            (b"GET /api/info HTTP/1.1\r\nHost: [::1\r\n\r\n", "broken Host", "refused"),
            (b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n", "two Hosts", "refused"),
            # odd but valid HTTP: answered, and the unread body is not taken for a request (the connection is closed)
            (b"GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello", "GET with a body", "served"),
            (b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "chunked GET", "served"),
            (b"GET http://127.0.0.1/api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", "absolute URI", "served"),
            (b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\xff\xfe: \x00\r\n\r\n", "binary header", "served"),
            (b"\r\n\r\n\r\n", "blank lines only", "closed"),
        ):
            yield Case(MALFORMED_HTTP, label, raw_case(addr, patterns, data, expect), timeout_s=30, expect_ok=expect != "refused")
        for route in BAD_QUERIES:
            yield Case(BAD_PARAMETERS, route[:80], query_case(addr, patterns, route), timeout_s=60)
        for label, run in bad_pin_cases(addr, patterns):
            yield Case(BAD_PARAMETERS, label, run, timeout_s=30)
        for clients, requests, attack in ((8, 20, False), (24, 10, False), (16, 10, True)):
            label = f"{clients} clients x {requests} requests" + (", attacked meanwhile" if attack else "")
            yield Case(LOAD, label, load_case(ex, patterns, clients, requests, attack=attack), timeout_s=120, expect_ok=True)
    finally:
        ex.stop()

    server = make_server(path)
    for name in ("first_byte_timeout_s", "request_timeout_s", "io_timeout_s", "keep_alive_s"):
        setattr(server, name, 1.0)
    with Explorer(server) as short:
        for kind in ("silent", "half request line", "half headers", "half body", "slow readers", "hang-ups", "byte by byte"):
            yield Case(HALF_OPEN, kind, half_open_case(short, patterns, kind), timeout_s=60, expect_ok=True)

    guarded = explore(path, host=OTHER_LOOPBACK)
    addr = guarded._server.server_address[:2]
    try:
        routes = [("/", "GET"), ("/static/explorer.js", "GET"), ("/api/info", "GET"), ("/api/info", "HEAD"), ("/api/pattern?row=1&col=1", "GET"),
                  ("/api/pattern.tiff?row=1&col=1", "GET"), ("/api/map?name=bse", "GET"), ("/api/map-values?name=bse", "GET"),
                  ("/api/pin", "POST"), ("/api/nothing", "GET"), ("/api/pattern?row=1&row=1", "GET"), ("/api/info", "DELETE")]  # fmt: skip
        for route, method in routes:
            for how in ("none", "wrong query", "wrong cookie", "other port's cookie"):
                yield Case(TOKEN, f"{method} {route}, token: {how}", token_case(addr, patterns, guarded.token, route, how, method=method))
        for route, method in routes[:7]:
            for how in ("query", "header"):
                yield Case(TOKEN, f"{method} {route}, token: {how}", token_case(addr, patterns, guarded.token, route, how, method=method), expect_ok=True)
    finally:
        guarded.stop()
    for token, host in (("short", "127.0.0.1"), ("has space!", "127.0.0.1"), ("a;b=c-cookie", OTHER_LOOPBACK), (12345678, "127.0.0.1"), (False, OTHER_LOOPBACK)):
        yield Case(TOKEN, f"explore(token={token!r}, host={host})", api_token_case(path, token, host))
    yield Case(TOKEN, "kikuchi explore --host 127.0.0.2", cli_token_case(path), cli=True, timeout_s=60, expect_ok=True)
    yield Case(TOKEN, "kikuchi explore --host 127.0.0.2 --token given-token-1", cli_token_case(path, "--token", "given-token-1"), cli=True, timeout_s=60, expect_ok=True)
    yield Case(TOKEN, "kikuchi explore --token abc", lambda: run_cli("explore", path, "--no-browser", "--token", "abc", timeout_s=60), cli=True, timeout_s=60)
