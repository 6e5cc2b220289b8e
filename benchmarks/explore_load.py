"""The map explorer under load: many clients at once, with half-open, slow and malformed connections.

Run by hand:  .venv/bin/python benchmarks/explore_load.py [--rows 40] [--cols 60] [--clients 16] [--requests 100]

The map is the one of benchmarks/explore.py (240 x 240 uint16 patterns,
stored as the map store stores them), served by ``kikuchi explore
--no-browser`` in its own process, as a user runs it, with its default
limits. All traffic goes to 127.0.0.1; every loop is bounded in count and in
time (``--max-seconds`` per phase) and closes its sockets.

Each phase starts a fresh server (nothing cached) and measures the time from
sending ``GET /api/pattern`` to its last byte, for new random points:

* quiet: one client, one request at a time;
* load: ``--clients`` clients at once (half on kept-alive connections, half
  opening a connection per request, as browsers and scripts do), each
  asking for patterns (8 in 10), the base map and /api/info;
* load + hostile: the same, while other connections attack it: connections
  that send nothing, half a request line, half the headers; slow readers
  (a hundred patterns asked for at once, none read); clients that hang up
  mid-request; malformed requests (garbage, huge request lines and headers,
  too many parameters, bad values);
* after: one client again, on the server of the hostile phase, once the
  attackers have gone: every pattern compared with ``kikuchi.open(...).pattern``.

A phase is a failure when any pattern request gets an answer other than 200
or a pattern other than the one asked for.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.explore.helpers import start_cli  # noqa: E402

from kikuchi.explore.encode import decode_pattern  # noqa: E402

# ------------------------------------------------------------------ hostile connections (all bounded)
#: (request bytes, the status the server answers): each is answered in one line and closed.
MALFORMED: list[tuple[bytes, int]] = [
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
    (b"BREW /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 405),
    (b"GET /api/info HTTP/2.0\r\nHost: 127.0.0.1\r\n\r\n", 505),
]


def silent(addr: tuple[str, int], n: int) -> list[socket.socket]:
    """n connections that send nothing (a browser's preconnections, port scans)."""
    return [socket.create_connection(addr, timeout=10) for _ in range(n)]


def half_sent(addr: tuple[str, int], n: int, text: bytes) -> list[socket.socket]:
    """n connections that send part of a request and then nothing."""
    out = []
    for _ in range(n):
        s = socket.create_connection(addr, timeout=10)
        s.sendall(text)
        out.append(s)
    return out


def slow_reader(addr: tuple[str, int], requests: int = 100) -> socket.socket:
    """A connection that asks for many patterns at once (pipelined) and reads none of them."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(addr)
    s.sendall(b"".join(f"GET /api/pattern?row={i % 6}&col={i % 8} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for i in range(requests)))
    return s


def hang_up_mid_request(addr: tuple[str, int], reset: bool) -> None:
    """Send half a request and close (with a reset, or a normal close)."""
    s = socket.create_connection(addr, timeout=10)
    s.sendall(b"GET /api/pattern?row=1&col=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
    if reset:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
    s.close()


def send_raw(addr: tuple[str, int], request: bytes, *, timeout_s: float = 10.0) -> bytes:
    """Send ``request`` on a new connection; the first bytes of the answer (b"" when none came)."""
    with socket.create_connection(addr, timeout=timeout_s) as s:
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


@contextlib.contextmanager
def hostile(addr: tuple[str, int], *, deadline: float) -> Iterator[dict[str, int]]:
    """Attack the server while the block runs (and at most until ``deadline``); counts of what was sent and answered."""
    counts = {"silent": 0, "half-open": 0, "slow readers": 0, "hang-ups": 0, "malformed": 0, "malformed answered": 0}
    held: list[socket.socket] = []
    stop = threading.Event()

    def loop(action: Callable[[int], None], times: int) -> None:
        for i in range(times):
            if stop.is_set() or time.monotonic() > deadline:
                return
            with contextlib.suppress(OSError):
                action(i)

    def malformed(i: int) -> None:
        request, status = MALFORMED[i % len(MALFORMED)]
        counts["malformed"] += 1
        if send_raw(addr, request).startswith(f"HTTP/1.1 {status} ".encode()):
            counts["malformed answered"] += 1

    def hang_up(i: int) -> None:
        hang_up_mid_request(addr, reset=bool(i % 2))
        counts["hang-ups"] += 1

    held += silent(addr, 500)
    counts["silent"] = 500
    held += half_sent(addr, 20, b"GET /api/pattern?row=1")
    held += half_sent(addr, 10, b"GET /api/info HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    counts["half-open"] = 30
    held += [slow_reader(addr) for _ in range(4)]
    counts["slow readers"] = 4
    threads = [threading.Thread(target=loop, args=(malformed, 400)), threading.Thread(target=loop, args=(hang_up, 200))]
    for t in threads:
        t.start()
    try:
        yield counts
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for s in held:
            s.close()


# ------------------------------------------------------------------ clients
def client(addr: tuple[str, int], nav_shape: tuple[int, int], seed: int, n: int, *, keep_alive: bool, deadline: float) -> list[tuple[str, int, float, bool, str]]:
    """n requests as the page makes them: (kind, status, seconds, right pattern, error) each."""
    rng = np.random.default_rng(seed)
    rows, cols = nav_shape
    out = []
    conn = http.client.HTTPConnection(*addr, timeout=60)
    try:
        for _ in range(n):
            if time.monotonic() > deadline:
                break
            kind = str(rng.choice(["pattern"] * 8 + ["map", "info"]))
            row, col = int(rng.integers(rows)), int(rng.integers(cols))
            route = {"pattern": f"/api/pattern?row={row}&col={col}", "map": "/api/map?name=bse", "info": "/api/info"}[kind]
            t0 = time.perf_counter()
            error = ""
            try:
                conn.request("GET", route)
                response = conn.getresponse()
                body = response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                status, body, error = 0, b"", f"{type(exc).__name__}: {exc}"
            seconds = time.perf_counter() - t0
            right = status == 200
            if kind == "pattern" and right:
                message = decode_pattern(body)
                right = (message.row, message.col) == (row, col)
            if status not in (0, 200):
                error = body[:120].decode("utf-8", "replace")
            out.append((kind, status, seconds, right, error))
            if not keep_alive:
                conn.close()
    finally:
        conn.close()
    return out


def run_clients(addr, nav_shape, clients: int, requests: int, deadline: float) -> tuple[list[tuple[str, int, float, bool, str]], float]:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, addr, nav_shape, 1000 + seed, requests, keep_alive=seed % 2 == 0, deadline=deadline) for seed in range(clients)]
        results = [r for f in futures for r in f.result()]
    return results, time.perf_counter() - t0


def report(name: str, results: list[tuple[str, int, float, bool, str]], wall_s: float) -> bool:
    patterns = [r for r in results if r[0] == "pattern"]
    ms = np.array([r[2] for r in patterns]) * 1e3
    bad = sum(1 for r in results if r[1] != 200 or not r[3])
    print(
        f"| {name} | {len(patterns)} | {np.median(ms):.1f} | {np.percentile(ms, 90):.1f} | {np.percentile(ms, 99):.1f} | {ms.max():.0f} "
        f"| {len(results) / wall_s:.0f} | {bad} |",
        flush=True,
    )
    if bad:
        kinds = collections.Counter((r[0], r[1], r[4]) for r in results if r[1] != 200 or not r[3])
        print(f"|   failed: {dict(kinds)} |", flush=True)
    return bad == 0


@contextlib.contextmanager
def server(path: Path) -> Iterator[tuple[tuple[str, int], str]]:
    """A fresh ``kikuchi explore`` process (nothing cached)."""
    proc, url = start_cli(str(path), "--no-browser")
    try:
        parts = urlsplit(url)
        yield (parts.hostname, parts.port), url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--cols", type=int, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=100, help="requests per client")
    parser.add_argument("--quiet-requests", type=int, default=300)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="time limit of each phase")
    args = parser.parse_args()

    from explore import make_map

    import kikuchi

    path = make_map(args.rows, args.cols)
    nav = (args.rows, args.cols)
    ok = True
    print(f"\n{args.rows} x {args.cols} map of 240 x 240 uint16 patterns; {args.clients} clients x {args.requests} requests\n")
    print("| phase | pattern requests | median (ms) | p90 | p99 | max | requests/s | failed |")
    print("|---|---|---|---|---|---|---|---|")
    with server(path) as (addr, _):
        results, wall = run_clients(addr, nav, 1, args.quiet_requests, time.monotonic() + args.max_seconds)
        ok &= report("quiet: 1 client", results, wall)
    with server(path) as (addr, _):
        results, wall = run_clients(addr, nav, args.clients, args.requests, time.monotonic() + args.max_seconds)
        ok &= report(f"load: {args.clients} clients", results, wall)
    with server(path) as (addr, url):
        deadline = time.monotonic() + args.max_seconds
        with hostile(addr, deadline=deadline) as counts:
            results, wall = run_clients(addr, nav, args.clients, args.requests, deadline)
        ok &= report(f"load + hostile: {args.clients} clients", results, wall)
        results, wall = run_clients(addr, nav, 1, args.quiet_requests, time.monotonic() + args.max_seconds)
        ok &= report("after: 1 client", results, wall)
        # every pattern of the server equal to the library's
        rng = np.random.default_rng(5)
        conn = http.client.HTTPConnection(*addr, timeout=60)
        with kikuchi.open(path) as m:
            for row, col in zip(rng.integers(args.rows, size=50), rng.integers(args.cols, size=50)):
                conn.request("GET", f"/api/pattern?row={row}&col={col}")
                response = conn.getresponse()
                body = response.read()
                expected = m.pattern(int(row), int(col))
                ok &= response.status == 200 and np.array_equal(decode_pattern(body).pattern, expected)
        conn.close()
    print(
        f"\nhostile traffic of the third phase: {counts['silent']} silent connections, {counts['half-open']} half-sent requests, "
        f"{counts['slow readers']} slow readers, {counts['hang-ups']} hang-ups mid-request, "
        f"{counts['malformed']} malformed requests ({counts['malformed answered']} answered with their 4xx/5xx)"
    )
    print("after: every pattern checked equals kikuchi.open().pattern" if ok else "FAILED: see the table")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
