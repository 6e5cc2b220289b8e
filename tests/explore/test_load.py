"""The explorer under load: many clients at once, half-open and slow connections, malformed requests.

All traffic goes to 127.0.0.1; every loop is bounded in count and time and
every socket is closed at the end. The servers here have short timeouts
(about a second) so that the cut-offs happen within the test; their
defaults are in :class:`kikuchi.explore.server.ExplorerServer`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from kikuchi.explore import Explorer
from kikuchi.explore.encode import decode_pattern
from kikuchi.explore.server import make_server

from .conftest import NAV_SHAPE, get

TIMEOUT_S = 1.0


@contextlib.contextmanager
def serving(map_file, **limits):
    """A fresh explorer on 127.0.0.1 with short timeouts (and other limits given)."""
    server = make_server(map_file)
    for name in ("first_byte_timeout_s", "request_timeout_s", "io_timeout_s", "keep_alive_s"):
        setattr(server, name, TIMEOUT_S)
    for name, value in limits.items():
        setattr(server, name, value)
    with Explorer(server) as ex:
        yield ex


def address(ex) -> tuple[str, int]:
    return ex._server.server_address[:2]


def wait_until(condition, within_s: float = 10.0) -> bool:
    """Poll ``condition`` every 50 ms for at most ``within_s``."""
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def is_closed_by_server(s: socket.socket, within_s: float) -> bool:
    """Whether the server closes ``s`` within ``within_s`` (reads and drops what it sends)."""
    s.settimeout(0.2)
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        try:
            if not s.recv(65536):
                return True
        except TimeoutError:
            continue
        except ConnectionError:
            return True
    return False


# ---------------------------------------------------------------- hostile connections
def silent(addr, n: int) -> list[socket.socket]:
    """Connections that send nothing (a browser's preconnections, port scans)."""
    return [socket.create_connection(addr, timeout=5) for _ in range(n)]


def half_sent(addr, n: int, text: bytes) -> list[socket.socket]:
    """Connections that send part of a request and then nothing."""
    out = []
    for _ in range(n):
        s = socket.create_connection(addr, timeout=5)
        s.sendall(text)
        out.append(s)
    return out


def slow_reader(addr, requests: int = 80) -> socket.socket:
    """A connection that asks for many patterns at once (pipelined) and reads none of them."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(5)
    s.connect(addr)
    s.sendall(b"".join(f"GET /api/pattern?row={i % 6}&col={i % 8} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for i in range(requests)))
    return s


def hang_up_mid_request(addr, n: int) -> None:
    """Send half a request and close (half of them with a reset)."""
    for i in range(n):
        s = socket.create_connection(addr, timeout=5)
        s.sendall(b"GET /api/pattern?row=1&col=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # close with RST
        s.close()


MALFORMED = [
    (b"\x00\xff garbage \x01\r\n\r\n", 400),
    (b"GET /api/pattern?row=" + b"9" * 5000 + b"&col=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 414),
    (b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n", 431),
    (b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Many: 1\r\n" * 150 + b"\r\n", 431),
    (b"GET /api/pattern?row=one&col=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    (b"GET /api/pattern?row=1&col=1&npa=-3 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    (b"GET /api/pattern?row=1&col=1&signal=%00%ff HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    (b"GET /api/pattern?row=99999&col=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 404),
    (b"GET /api/pattern?" + b"&".join(b"k%d=1" % i for i in range(40)) + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    (b"POST /api/pin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n{", 400),
    (b"GET /api/info HTTP/1.1\r\nHost: evil.example\r\n\r\n", 403),
]


def send_malformed(addr, request: bytes) -> bytes:
    with socket.create_connection(addr, timeout=10) as s:
        with contextlib.suppress(ConnectionError):
            s.sendall(request)
        reply = b""
        with contextlib.suppress(ConnectionError, TimeoutError):
            while len(reply) < 400:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
    return reply


# ---------------------------------------------------------------- clients
def client(addr, patterns: np.ndarray, seed: int, n: int, *, keep_alive: bool) -> list[tuple[str, int, float, bool]]:
    """n requests as the page makes them: (kind, status, seconds, right answer) each."""
    rng = np.random.default_rng(seed)
    rows, cols = NAV_SHAPE
    out = []
    conn = http.client.HTTPConnection(*addr, timeout=30)
    try:
        for _ in range(n):
            kind = rng.choice(["pattern"] * 8 + ["map", "info"])
            row, col = int(rng.integers(rows)), int(rng.integers(cols))
            route = {"pattern": f"/api/pattern?row={row}&col={col}", "map": "/api/map?name=bse", "info": "/api/info"}[kind]
            t0 = time.perf_counter()
            conn.request("GET", route)
            response = conn.getresponse()
            body = response.read()
            seconds = time.perf_counter() - t0
            right = response.status == 200
            if kind == "pattern" and right:
                message = decode_pattern(body)
                right = (message.row, message.col) == (row, col) and np.array_equal(message.pattern, patterns[row, col])
            out.append((kind, response.status, seconds, right))
            if not keep_alive:
                conn.close()
    finally:
        conn.close()
    return out


def test_many_clients_and_hostile_connections_at_once(map_file, map_patterns):
    with serving(map_file, io_timeout_s=2 * TIMEOUT_S) as ex:
        server = ex._server
        addr = address(ex)
        hostile = silent(addr, 120)
        time.sleep(0.2)
        assert server._active == 0  # connections that send nothing hold no thread
        hostile += half_sent(addr, 12, b"GET /api/pattern?row=1")
        hostile += half_sent(addr, 6, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        hostile += [slow_reader(addr) for _ in range(4)]
        hang_up_mid_request(addr, 10)
        # 12 clients of 40 requests each, half on kept-alive connections, while malformed requests come in
        with ThreadPoolExecutor(16) as pool:
            malformed = [pool.submit(send_malformed, addr, request) for request, _ in MALFORMED * 2]
            futures = [pool.submit(client, addr, map_patterns, seed, 40, keep_alive=seed % 2 == 0) for seed in range(12)]
            results = [r for f in futures for r in f.result(timeout=120)]
            replies = [f.result(timeout=60) for f in malformed]
        assert len(results) == 480
        assert [r for r in results if r[1] != 200 or not r[3]] == []
        latencies = sorted(r[2] for r in results if r[0] == "pattern")
        median, p99 = statistics.median(latencies), latencies[int(0.99 * (len(latencies) - 1))]
        print(f"\npattern requests under load: {len(latencies)}, median {median * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms")
        # loose bounds: 2 shared cores, clients and server in one process
        assert median < 1.0 and p99 < 5.0, (median, p99)
        for (request, status), reply in zip(MALFORMED * 2, replies):
            assert reply.startswith(f"HTTP/1.1 {status} ".encode()), (request[:60], reply[:80])
            assert b'{"error": "' in reply, reply
        assert server.counts["busy"] == 0
        # the half-sent requests are cut off, the silent connections closed, the slow readers dropped
        for s in hostile[120:138]:
            assert is_closed_by_server(s, 3 * TIMEOUT_S + 2)
        assert server.counts["cut_off"] >= 18
        assert wait_until(lambda: server.counts["silent"] >= 120, 3 * TIMEOUT_S + 2), server.counts
        assert wait_until(lambda: server._active == 0, 3 * TIMEOUT_S + 5), server._active
        for s in hostile:
            s.close()
        # and it still serves as before
        status, _, body = get(ex.url + "api/pattern?row=5&col=7")
        assert status == 200
        np.testing.assert_array_equal(decode_pattern(body).pattern, map_patterns[5, 7])


def test_silent_connections_beyond_the_threads_do_not_block_a_client(map_file, map_patterns):
    with serving(map_file, max_threads=4, first_byte_timeout_s=30.0) as ex:
        hostile = silent(address(ex), 50)  # far more than the 4 threads
        try:
            t0 = time.perf_counter()
            status, _, body = get(ex.url + "api/pattern?row=2&col=2")
            assert status == 200 and time.perf_counter() - t0 < 5.0  # not the 30 s of first_byte_timeout_s
            np.testing.assert_array_equal(decode_pattern(body).pattern, map_patterns[2, 2])
            assert ex._server.counts["busy"] == 0
        finally:
            for s in hostile:
                s.close()


def test_half_sent_requests_hold_a_thread_only_until_cut_off(map_file):
    with serving(map_file, max_threads=3, max_queued=4, request_timeout_s=1.0, io_timeout_s=10.0) as ex:
        server = ex._server
        held = half_sent(address(ex), 3, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # every thread
        try:
            assert wait_until(lambda: server._active == 3, 5)
            # a client now waits in the queue, and is served once the half-sent requests are cut off
            t0 = time.perf_counter()
            status, _, _ = get(ex.url + "api/info")
            waited = time.perf_counter() - t0
            assert status == 200 and 0.3 < waited < 5.0, waited
            assert server.counts["queued"] >= 1
            # the queued client is served as soon as the first of the three is cut off; the other two a moment later
            assert wait_until(lambda: server.counts["cut_off"] >= 3, 5), server.counts
        finally:
            for s in held:
                s.close()


def test_beyond_threads_and_queue_the_answer_is_503_at_once(map_file):
    with serving(map_file, max_threads=2, max_queued=1, request_timeout_s=30.0, io_timeout_s=30.0) as ex:
        server = ex._server
        held = half_sent(address(ex), 3, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # 2 threads + 1 queued
        try:
            assert wait_until(lambda: server._active == 2 and len(server._queued) == 1, 5)
            t0 = time.perf_counter()
            status, headers, body = get(ex.url + "api/info")
            assert time.perf_counter() - t0 < 5.0  # at once, not after the 30 s the held connections may take
            assert status == 503 and headers["Retry-After"] == "1"
            message = json.loads(body)["error"]
            assert message == "the explorer is busy (2 connections being served and a full queue): try again"
            assert server.counts["busy"] == 1
        finally:
            for s in held:
                s.close()
        # the clients that held it hang up: it serves again
        assert wait_until(lambda: get(ex.url + "api/info")[0] == 200, 10)


def test_a_request_sent_byte_by_byte_is_cut_off(map_file):
    """Slowloris: a header byte every 0.2 s never completes the request; the connection is closed after request_timeout_s."""
    with serving(map_file, io_timeout_s=10.0) as ex:
        with socket.create_connection(address(ex), timeout=5) as s:
            s.sendall(b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            t0 = time.perf_counter()
            closed = False
            for _ in range(40):  # at most 8 s
                try:
                    s.sendall(b"X")
                except ConnectionError:
                    closed = True
                    break
                s.settimeout(0.2)
                try:
                    if s.recv(4096) == b"":
                        closed = True
                        break
                except TimeoutError:
                    pass
                except ConnectionError:
                    closed = True
                    break
            assert closed and time.perf_counter() - t0 < TIMEOUT_S + 3
        assert ex._server.counts["cut_off"] == 1
        assert get(ex.url + "api/info")[0] == 200


def test_silent_and_idle_connections_are_closed(map_file):
    with serving(map_file, max_silent=5, first_byte_timeout_s=4.0, keep_alive_s=0.5) as ex:
        addr = address(ex)
        hostile = silent(addr, 8)  # 3 more than max_silent: the oldest are closed at once
        try:
            assert all(is_closed_by_server(s, 2.0) for s in hostile[:3])
            assert ex._server.counts["silent"] == 3  # the others wait for first_byte_timeout_s
            assert all(is_closed_by_server(s, 6.0) for s in hostile[3:])
            assert ex._server.counts["silent"] == 8
        finally:
            for s in hostile:
                s.close()
        # a kept-alive connection idle longer than keep_alive_s is closed; the client reconnects
        conn = http.client.HTTPConnection(*addr, timeout=5)
        conn.request("GET", "/api/info")
        assert conn.getresponse().read()
        assert is_closed_by_server(conn.sock, 3.0)
        conn.close()
        assert get(ex.url + "api/info")[0] == 200


def test_a_slow_reader_does_not_hold_a_thread_for_ever(map_file):
    with serving(map_file, io_timeout_s=1.0) as ex:
        server = ex._server
        reader = slow_reader(address(ex), requests=120)
        try:
            assert wait_until(lambda: server._active == 1, 5)
            assert get(ex.url + "api/pattern?row=1&col=1")[0] == 200  # others are served meanwhile
            assert wait_until(lambda: server._active == 0, 10), "the slow reader still holds its thread"
        finally:
            reader.close()


@pytest.mark.parametrize("request_bytes, status", MALFORMED)
def test_malformed_requests_are_answered_and_closed(map_file, explorer, request_bytes, status):
    reply = send_malformed(explorer._server.server_address[:2], request_bytes)
    assert reply.startswith(f"HTTP/1.1 {status} ".encode()), reply[:100]
    body = reply.split(b"\r\n\r\n", 1)[1]
    assert b"\n" not in body.strip() and json.loads(body[: body.index(b"}") + 1])["error"]
    assert get(explorer.url + "api/pattern?row=0&col=0")[0] == 200
