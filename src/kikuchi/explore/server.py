"""The explorer's HTTP server: fixed routes over one open map file.

Nothing in a request reaches the file system. Paths are looked up in a fixed
table of routes; the static page is read from the package once, at start;
query parameters are parsed to integers or checked against fixed lists of
names, and every request that does not fit gets a 4xx answer with a JSON
``{"error": message}`` body, after which the server goes on serving.

Under load the server stays bounded and keeps answering: a new connection
waits without a thread until it sends its first bytes (connections that
never send anything cost a file descriptor, closed after
``first_byte_timeout_s``, at most ``max_silent`` of them); at most
``max_threads`` connections are served at once, ``max_queued`` more wait
for a thread and beyond that a connection is answered ``503`` at once; a
request's line, headers and body must arrive within ``request_timeout_s``
(a client that sends half a request and stops is cut off), an answer must
be taken within ``io_timeout_s`` and a kept-alive connection may stay idle
``keep_alive_s`` between requests.

A server bound to an address other than 127.0.0.1, ::1 or localhost asks
for a token (:func:`needs_token`), as Jupyter does: ``?token=T`` in the
address (the answer then sets a cookie for the page's own requests), the
cookie, or an ``Authorization: token T`` header; any request without it
gets ``403``.

Routes (all ``GET`` unless noted)::

    /                      the page
    /static/explorer.js    its script, /static/explorer.css its style
    /api/info              JSON: map shape, step, pattern shape, base maps, signals
    /api/map?name=N        PNG of base map N (sent once; the page caches it)
    /api/map-values?name=N its values: float32 little-endian (rows, cols), NaN where none
    /api/pattern?row=R&col=C[&npa=K | &nlpar=R[&lambda=auto|X]][&signal=S][&OPTION=VALUE...]
                           binary pattern message (see kikuchi.explore.encode);
                           the options of each signal are listed in /api/info;
                           nlpar: non-local averaging, search radius R
    /api/pattern.tiff?...  the same pattern as an exact TIFF download
    /api/pattern.png?...   the same pattern as an 8-bit PNG (min-max scaled)
    /api/bands?...[&n_bands=K]  JSON: bands detected in that pattern (end points, rho, theta)
    /api/lines?row=R&col=C JSON: simulated band centre lines with hkl for the point's orientation
    /api/ipf-key?phase=P   PNG: the IPF colour key of phase P
    /api/match?row=R&col=C JSON: NCC of the point's pattern and its simulation, and what made it
                           (with --master-pattern; see kikuchi.explore.match)
    /api/match.png?row=R&col=C&panel=experiment|simulation|difference
                           PNG of one panel of the pattern-matching view
    /api/match-pattern?row=R&col=C&panel=P
                           the panel's float32 values as a binary pattern message
    POST /api/pin          JSON {"row": R, "col": C}: the pinned point (Explorer.pinned)
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import http.server
import ipaddress
import json
import logging
import re
import secrets
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from kikuchi.explore import encode
from kikuchi.explore.match import MATCH_PANELS, panel_png
from kikuchi.explore.source import MapSource, PatternQuery, RequestError

__all__ = ["ExplorerServer", "make_server", "STATIC_FILES"]

_logger = logging.getLogger(__name__)

#: Files of the page: route -> (file in kikuchi/explore/static, media type).
STATIC_FILES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/static/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
    "/static/explorer.css": ("explorer.css", "text/css; charset=utf-8"),
}
_CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'"
_INT = re.compile(r"-?[0-9]{1,9}")
_NAME = re.compile(r"[A-Za-z0-9_:. -]{1,64}")
_VALUE = re.compile(r"[A-Za-z0-9_.+-]{0,32}")
_TOKEN = re.compile(r"[A-Za-z0-9_.~-]{8,256}")
_TOKEN_IN_TEXT = re.compile(r"(token=)[^&\s\"']*")
_MAX_QUERY = 1024
_MAX_BODY = 1024
_PATTERN_PARAMS = {"row", "col", "npa", "signal", "nlpar", "lambda"}
#: The addresses a server may bind without a token: this computer's own browser uses them.
SAFE_HOSTS = ("127.0.0.1", "::1", "localhost")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def needs_token(host: str) -> bool:
    """Whether a server bound to ``host`` asks for a token by default.

    Only 127.0.0.1, ::1 and localhost are served without one. Every other
    address does, the other loopback addresses (127.0.0.2, ...) included:
    the rule is the address named, not where its traffic goes.

    Examples
    --------
    >>> needs_token("127.0.0.1"), needs_token("localhost"), needs_token("0.0.0.0"), needs_token("127.0.0.2")
    (False, False, True, True)
    """
    try:
        return ipaddress.ip_address(host) not in (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
    except ValueError:
        return host != "localhost"


def _resolve_token(token: str | bool | None, host: str) -> str | None:
    """The token a server on ``host`` asks for: given, random (True, or None off the safe addresses) or none."""
    if token is None:
        token = needs_token(host)
    if token is False:
        if needs_token(host):
            raise ValueError(f"token: a server on {host} must ask for a token (give one, or True for a random one)")
        return None
    if token is True:
        return secrets.token_hex(24)
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        shown = f"{len(token)} characters" if isinstance(token, str) else type(token).__name__
        raise ValueError(f"token: expected 8 to 256 characters among A-Z a-z 0-9 _ . ~ - (got {shown}), True or None")
    return token


def _redact(text: str) -> str:
    """``text`` with any ``token=...`` blanked, for logs."""
    return _TOKEN_IN_TEXT.sub(r"\1***", text)


class ExplorerServer(http.server.HTTPServer):
    """A bounded threaded HTTP server that serves one :class:`MapSource`.

    Parameters
    ----------
    source
        The open map.
    host, port
        Address to bind; port 0 takes any free port.
    token
        The token requests must carry: a string, True for a random one, or
        None (default) for a random one when ``host`` is not 127.0.0.1, ::1
        or localhost (:func:`needs_token`) and none there.

    Attributes
    ----------
    token
        The token asked for, or None.
    counts
        Connections so far: ``served``, ``queued`` (waited for a thread),
        ``busy`` (answered 503), ``silent`` (closed, nothing sent),
        ``cut_off`` (a request that did not arrive in time) and
        ``forbidden`` (requests without the token).
    """

    #: Connections served at once, one thread each; more wait in a queue of max_queued; beyond that: 503.
    max_threads = 64
    max_queued = 256
    #: Connections that have sent nothing yet (no thread; the oldest closed first beyond this).
    max_silent = 1024
    #: Seconds: a new connection may stay silent; a request (line, headers, body) must arrive;
    #: an answer must be taken; a kept-alive connection may stay idle between requests.
    first_byte_timeout_s = 30.0
    request_timeout_s = 30.0
    io_timeout_s = 30.0
    keep_alive_s = 15.0
    request_queue_size = 1024  # the kernel's queue of connections not yet accepted (a burst must not overflow it)
    allow_reuse_address = True

    def __init__(self, source: MapSource, *, host: str = "127.0.0.1", port: int = 0, token: str | bool | None = None):
        self.source = source
        self.token = _resolve_token(token, host)
        self.loopback_only = _is_loopback(host)
        self.pinned: tuple[int, int] | None = None
        self.static = {
            route: (resources.files("kikuchi.explore").joinpath("static", name).read_bytes(), media)
            for route, (name, media) in STATIC_FILES.items()
        }
        if self.token is not None:  # the page asks for its script and style with the token (no cookie in a foreign IFrame)
            for route, (body, media) in self.static.items():
                if media.startswith("text/html"):
                    for asset in (b"/static/explorer.js", b"/static/explorer.css"):
                        body = body.replace(b'"' + asset + b'"', b'"' + asset + b"?token=" + self.token.encode() + b'"')
                    self.static[route] = (body, media)
        if ":" in host:
            self.address_family = socket.AF_INET6
        self.counts: collections.Counter[str] = collections.Counter()
        self._load_lock = threading.Lock()
        self._active = 0
        self._queued: collections.deque[tuple[socket.socket, Any]] = collections.deque()
        self._reading: dict[_Handler, float] = {}  # handler -> monotonic time its request must have arrived by
        self._closing = False
        super().__init__((host, port), _Handler)
        self.socket.setblocking(False)  # accepted only when the selector says so, then until none waits
        self._gate = _Gate(self)

    @property
    def url(self) -> str:
        """The server's address (without the token)."""
        host, port = self.server_address[:2]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    @property
    def page_url(self) -> str:
        """The page's address, with ``?token=...`` when the server asks for one."""
        return self.url if self.token is None else f"{self.url}?token={self.token}"

    @property
    def cookie_name(self) -> str:
        """Name of the token cookie: one per port (browsers share cookies between the ports of a host)."""
        return f"kikuchi-explore-token-{self.server_address[1]}"

    # -- connections: a gate without threads, then a bounded set of threads ---------------
    def process_request(self, request: socket.socket, client_address: Any) -> None:
        # Every connection waiting in the kernel's queue is taken in this turn of the accept loop:
        # a burst of connections must not fill the queue (a client left out waits a second for its SYN again).
        for _ in range(self.request_queue_size):
            try:
                if _has_bytes(request):  # the usual case: the request came with the connection
                    self._start(request, client_address)
                else:
                    self._gate.add(request, client_address)
            except Exception:  # a thread that cannot start: that connection only
                self.handle_error(request, client_address)
                self.shutdown_request(request)
            try:
                request, client_address = self.socket.accept()  # the listening socket does not block
            except OSError:  # BlockingIOError: none waits
                return

    def _start(self, request: socket.socket, client_address: Any) -> None:
        """A connection sent its first bytes: a thread serves it, or it waits for one, or it gets 503."""
        with self._load_lock:
            if not self._closing:
                if self._active < self.max_threads:
                    self._active += 1
                    self.counts["served"] += 1
                    thread = threading.Thread(target=self._work, args=(request, client_address), name="kikuchi-explore-connection", daemon=True)
                    thread.start()
                    return
                if len(self._queued) < self.max_queued:
                    self.counts["queued"] += 1
                    self._queued.append((request, client_address))
                    return
            self.counts["busy"] += 1
        _logger.info("explorer: busy (%d connections served, %d waiting): 503 to %s", self.max_threads, self.max_queued, client_address)
        _refuse_busy(request, self.max_threads)
        self.shutdown_request(request)

    def _work(self, request: socket.socket, client_address: Any) -> None:
        """Serve connections until none waits for a thread."""
        while True:
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
            with self._load_lock:
                if self._closing or not self._queued:
                    self._active -= 1
                    return
                request, client_address = self._queued.popleft()
                self.counts["served"] += 1

    def _reading_started(self, handler: _Handler) -> None:
        with self._load_lock:
            self._reading[handler] = time.monotonic() + self.request_timeout_s

    def _reading_done(self, handler: _Handler) -> None:
        with self._load_lock:
            self._reading.pop(handler, None)

    def _cut_off_late_requests(self) -> float | None:
        """Shut the connections whose request did not arrive in time; seconds until the next deadline."""
        now = time.monotonic()
        with self._load_lock:  # held while shutting: a request that has just arrived is not cut off
            late = [h for h, deadline in self._reading.items() if deadline <= now]
            self.counts["cut_off"] += len(late)
            for handler in late:
                del self._reading[handler]
                handler.cut_off = True
                _logger.info("explorer: %s sent no complete request within %g s: closed", handler.client_address, self.request_timeout_s)
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)
            upcoming = min(self._reading.values(), default=None)
        return None if upcoming is None else max(0.0, upcoming - now)

    def server_close(self) -> None:
        super().server_close()
        if hasattr(self, "_gate"):  # not when binding failed
            self._gate.close()
        with self._load_lock:
            self._closing = True
            queued = list(self._queued)
            self._queued.clear()
        for request, _ in queued:
            self.shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            _logger.debug("explorer: connection from %s ended: %s", client_address, exc)
            return
        _logger.exception("explorer: error while serving %s", client_address)


def _has_bytes(connection: socket.socket) -> bool:
    """Whether the client has sent something (or closed) already, without waiting."""
    flags = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)
    if flags == socket.MSG_PEEK:  # no MSG_DONTWAIT (Windows): the gate finds out
        return False
    try:
        connection.recv(1, flags)
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        pass  # reset: the thread that serves it ends it
    return True


def _refuse_busy(request: socket.socket, threads: int) -> None:
    """Answer 503 at once, without a thread and without waiting on the client."""
    body = json.dumps({"error": f"the explorer is busy ({threads} connections being served and a full queue): try again"}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    ).encode()
    with contextlib.suppress(OSError):
        request.setblocking(False)
        with contextlib.suppress(OSError):
            request.recv(65536)  # what the client sent: unread, it would turn the close into a reset
        request.send(head + body)


class _Gate:
    """New connections wait here, without a thread, until they send their first bytes.

    One thread and one selector: connections that never send anything (a
    browser's preconnections, port scans, half-open sockets) cost no thread;
    they are closed after ``first_byte_timeout_s``, and beyond ``max_silent``
    the oldest first. The same thread cuts off requests that do not arrive
    within ``request_timeout_s``.
    """

    def __init__(self, server: ExplorerServer):
        self._server = server
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._incoming: collections.deque[tuple[socket.socket, Any]] = collections.deque()
        self._silent: dict[socket.socket, tuple[Any, float]] = {}  # in order of arrival, so of deadline
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="kikuchi-explore-gate", daemon=True)
        self._thread.start()

    def add(self, request: socket.socket, client_address: Any) -> None:
        self._incoming.append((request, client_address))
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # full: awake already; closed: stopping
            self._wake_w.send(b"\0")

    def close(self) -> None:
        self._closed = True
        self._wake()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._closed:
                try:
                    self._turn()
                except Exception:  # the gate must go on: log, and take the next turn
                    _logger.exception("explorer: error in the connection gate")
                    time.sleep(0.1)
        finally:
            for connection in list(self._silent) + [c for c, _ in self._incoming]:
                connection.close()
            self._silent.clear()
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _turn(self) -> None:
        server = self._server
        # at least once a second: requests started since are watched without waking this thread
        upcoming = server._cut_off_late_requests()
        timeout = 1.0 if upcoming is None else min(1.0, upcoming)
        if self._silent:
            timeout = min(timeout, max(0.0, next(iter(self._silent.values()))[1] - time.monotonic()))
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(OSError):
                    while self._wake_r.recv(4096):
                        pass
                continue
            connection = key.fileobj
            self._selector.unregister(connection)
            client_address, _ = self._silent.pop(connection)
            try:
                server._start(connection, client_address)
            except Exception:  # a thread that cannot start: that connection only
                server.handle_error(connection, client_address)
                server.shutdown_request(connection)
        self._admit()
        self._expire()

    def _admit(self) -> None:
        deadline = time.monotonic() + self._server.first_byte_timeout_s
        while self._incoming:
            connection, client_address = self._incoming.popleft()
            if len(self._silent) >= self._server.max_silent:
                oldest = next(iter(self._silent))
                self._drop(oldest)
            try:
                self._selector.register(connection, selectors.EVENT_READ)
            except (OSError, ValueError):  # closed already
                connection.close()
                continue
            self._silent[connection] = (client_address, deadline)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._silent:
            connection, (_, deadline) = next(iter(self._silent.items()))
            if deadline > now:
                break
            self._drop(connection)

    def _drop(self, connection: socket.socket) -> None:
        client_address, _ = self._silent.pop(connection)
        self._selector.unregister(connection)
        with self._server._load_lock:
            self._server.counts["silent"] += 1
        _logger.debug("explorer: %s connected and sent nothing: closed", client_address)
        connection.close()


def make_server(
    path: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    orientations: Any = None,
    token: str | bool | None = None,
    **matching: Any,
) -> ExplorerServer:
    """Open the map file (and orientation map) and bind a server to it (not yet serving).

    Parameters
    ----------
    path
        Map file.
    host, port
        Address to bind (port 0: any free port).
    orientations
        Orientation map of the same grid (path or :class:`kikuchi.OrientationMap`), see :class:`MapSource`.
    token
        Token requests must carry (see :class:`ExplorerServer`).
    **matching
        The pattern-matching view: ``master_pattern``, ``energy``, ``phase``,
        ``sigma``, ``background``, ``signal_mask`` of :class:`MapSource`.

    Raises
    ------
    ValueError
        When the token is not valid, or the master pattern does not fit the orientations.
    OSError
        When the address cannot be bound (port in use, unknown host).
    """
    _resolve_token(token, host)  # checked before the file is opened
    source = MapSource(path, orientations=orientations, **matching)
    try:
        return ExplorerServer(source, host=host, port=port, token=token)
    except BaseException:
        source.close()
        raise


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ExplorerServer
    protocol_version = "HTTP/1.1"  # keep-alive: one connection carries the patterns of a mouse sweep
    server_version = "kikuchi-explore"
    sys_version = ""

    # -- plumbing ----------------------------------------------------------
    def setup(self) -> None:
        self.timeout = self.server.io_timeout_s  # StreamRequestHandler sets it on the connection
        self._requests = 0
        self._set_cookie: str | None = None
        self.cut_off = False  # set by the server when the request did not arrive in time
        super().setup()
        # Small answers must not wait for the client's delayed ACK (Nagle): 40 ms otherwise.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        if self._requests:  # the next request of a kept-alive connection: idle at most keep_alive_s
            self.connection.settimeout(self.server.keep_alive_s)
        self._requests += 1
        self.server._reading_started(self)
        try:
            super().handle_one_request()
        finally:
            self.server._reading_done(self)

    def parse_request(self) -> bool:
        self.connection.settimeout(self.server.io_timeout_s)
        try:
            complete = super().parse_request()
        finally:
            self.server._reading_done(self)  # the request is in: making its answer has no deadline
        if self.cut_off:  # what came before the cut is no request to answer
            self.close_connection = True
            return False
        return complete

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        _logger.debug("explorer %s: %s", self.address_string(), _redact(format % args))

    def _send(self, status: int, body: bytes, media: str, *, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self._set_cookie is not None:
            self.send_header("Set-Cookie", self._set_cookie)
            self._set_cookie = None
        if "Cache-Control" not in (headers or {}):
            self.send_header("Cache-Control", "no-store")
        # headers and body in one write: one TCP segment train, no wait between them
        parts = getattr(self, "_headers_buffer", [])
        if self.request_version != "HTTP/0.9":
            parts.append(b"\r\n")
        if self.command != "HEAD":
            parts.append(body)
        self.wfile.write(b"".join(parts))
        self._headers_buffer = []

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed HTTP (bad request line, unknown method, ...): a JSON error, then close."""
        self.close_connection = True
        if not hasattr(self, "path"):  # the request line itself was refused: there is no path yet
            self.path = ""
        if self.request_version == "HTTP/0.9":  # garbage of two words reads as HTTP/0.9: answer with a status line
            self.request_version = "HTTP/1.1"
        if code == 501:  # a method http.server does not know (BREW, TRACE, get): refused like PUT or DELETE
            code, message = 405, f"method {str(self.command)[:20]} is not allowed"
        elif code == 414:
            message = "request line too long (over 65536 bytes)"
        elif code == 431:  # explain: "got more than 100 headers", "got more than 65536 bytes when reading header line"
            message = f"request headers too large: {explain or message}"
        self._error(code, message or explain or "malformed request")

    def _json(self, value: Any, status: int = 200) -> None:
        self._send(status, json.dumps(value, allow_nan=False).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        _logger.info("explorer: %s %s -> %d %s", self.command, _redact(self.path[:200]), status, _redact(message))
        if self.command == "POST":
            self.close_connection = True  # an unread request body must not become the next request
        self._json({"error": message}, status)

    def _host_ok(self) -> bool:
        """Refuse foreign Host headers on a loopback server (DNS rebinding)."""
        if not self.server.loopback_only:
            return True
        host = self.headers.get("Host", "")
        name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1 : host.find("]")]
        return _is_loopback(name)

    def _check_token(self, params: dict[str, str]) -> None:
        """Refuse (403) a request without the server's token: ``?token=``, its cookie, or ``Authorization: token T``."""
        given = params.pop("token", None)  # taken out whether asked for or not: a stale address still works
        expected = self.server.token
        if expected is None:
            return
        candidates = [] if given is None else [given]
        scheme, _, value = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() in ("token", "bearer"):
            candidates.append(value.strip())
        for header in self.headers.get_all("Cookie") or []:
            for part in header.split(";"):
                name, _, value = part.strip().partition("=")
                if name == self.server.cookie_name:
                    candidates.append(value)
        secret = expected.encode()
        if any(hmac.compare_digest(c.encode("utf-8", "replace"), secret) for c in candidates):
            if given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), secret):
                # the page's own requests then carry it (same site)
                self._set_cookie = f"{self.server.cookie_name}={expected}; Path=/; HttpOnly; SameSite=Strict"
            return
        with self.server._load_lock:
            self.server.counts["forbidden"] += 1
        raise RequestError(
            f"{'wrong' if candidates else 'no'} token: this explorer serves only requests with its token; "
            f"open the address it printed at start ({self.server.url}?token=...)",
            status=403,
        )

    def _dispatch(self, routes: dict[str, Callable[[dict[str, str]], None]] | None) -> None:
        """Check, then answer a request from ``routes`` (None: a method not allowed, refused after the checks)."""
        self._set_cookie = None
        try:
            if len(self.path) > _MAX_QUERY + 100:
                raise RequestError("request line too long", status=414)
            if len(self.headers.get_all("Host") or ()) > 1:
                raise RequestError("more than one Host header")
            if not self._host_ok():
                raise RequestError("this explorer only answers requests addressed to localhost", status=403)
            if self.command != "POST" and (self.headers.get("Content-Length", "0") != "0" or "Transfer-Encoding" in self.headers):
                self.close_connection = True  # a body we do not read must not become the next request
            parts = urlsplit(self.path)
            try:
                params, malformed = self._params(parts.query), None
            except RequestError as exc:  # the token comes first: no answer but 403 without it
                tokens = [value for key, value in parse_qsl(parts.query, keep_blank_values=True) if key == "token"]
                params, malformed = dict(token=tokens[0]) if len(tokens) == 1 else {}, exc
            self._check_token(params)
            if malformed is not None:
                raise malformed
            if routes is None:
                raise RequestError(f"method {self.command} is not allowed", status=405)
            handler = routes.get(parts.path)
            if handler is None:
                raise RequestError(f"no such page: {parts.path[:100]!r}", status=404)
            handler(params)
        except RequestError as exc:
            self._error(exc.status, str(exc))
        except (ConnectionError, TimeoutError):
            raise
        except Exception as exc:  # the server keeps serving whatever one request did
            _logger.exception("explorer: %s %s failed", self.command, self.path[:200])
            self._error(500, f"internal error: {type(exc).__name__}: {exc}")

    def _params(self, query: str) -> dict[str, str]:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=18)
        except ValueError as exc:
            raise RequestError(f"malformed query string: {exc}") from None
        params: dict[str, str] = {}
        for key, value in pairs:
            if key in params:
                raise RequestError(f"parameter {key!r} given twice")
            params[key] = value
        return params

    def do_GET(self) -> None:
        self._dispatch(
            {
                **{route: self._static_route(route) for route in self.server.static},
                "/api/info": self._info,
                "/api/map": self._map,
                "/api/map-values": self._map_values,
                "/api/pattern": self._pattern,
                "/api/pattern.tiff": self._pattern_tiff,
                "/api/pattern.png": self._pattern_png,
                "/api/bands": self._bands,
                "/api/lines": self._lines,
                "/api/ipf-key": self._ipf_key,
                "/api/match": self._match,
                "/api/match.png": self._match_png,
                "/api/match-pattern": self._match_pattern,
            }
        )

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self._dispatch({"/api/pin": self._pin})

    def _refuse(self) -> None:
        self._dispatch(None)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    # -- parameters ----------------------------------------------------------
    @staticmethod
    def _only(params: dict[str, str], allowed: set[str]) -> None:
        unknown = sorted(set(params) - allowed)
        if unknown:
            allowed_text = f"allowed: {', '.join(sorted(allowed))}" if allowed else "this route takes none"
            raise RequestError(f"unknown parameter {unknown[0][:40]!r} ({allowed_text})")

    @staticmethod
    def _int(params: dict[str, str], name: str, default: int | None = None) -> int:
        value = params.get(name)
        if value is None:
            if default is None:
                raise RequestError(f"parameter {name!r} is missing")
            return default
        if not _INT.fullmatch(value):
            raise RequestError(f"parameter {name}={value[:40]!r} is not an integer")
        return int(value)

    @staticmethod
    def _name(params: dict[str, str], name: str, default: str) -> str:
        value = params.get(name, default)
        if not _NAME.fullmatch(value):
            raise RequestError(f"parameter {name}={value[:40]!r} is not a valid name")
        return value

    @staticmethod
    def _value(params: dict[str, str], name: str) -> str:
        value = params[name]
        if not _VALUE.fullmatch(value):
            raise RequestError(f"parameter {name}={value[:40]!r} is not a valid value")
        return value

    def _query(self, params: dict[str, str]) -> PatternQuery:
        source = self.server.source
        option_names = source.option_names
        self._only(params, _PATTERN_PARAMS | option_names)
        signal = self._name(params, "signal", source.signals[0]["name"])
        options = tuple(sorted((k, self._value(params, k)) for k in option_names if k in params))
        return PatternQuery(
            row=self._int(params, "row"),
            col=self._int(params, "col"),
            npa=self._int(params, "npa", 0),
            signal=signal,
            options=options,
            nlpar=self._int(params, "nlpar", 0),
            nlpar_lambda=self._value(params, "lambda") if "lambda" in params else "auto",
        )

    # -- routes --------------------------------------------------------------
    def _static_route(self, route: str) -> Callable[[dict[str, str]], None]:
        def serve(params: dict[str, str]) -> None:
            body, media = self.server.static[route]
            self._send(200, body, media, headers={"Cache-Control": "no-cache"})

        return serve

    def _info(self, params: dict[str, str]) -> None:
        self._only(params, set())
        self._json(self.server.source.info())

    def _map(self, params: dict[str, str]) -> None:
        self._only(params, {"name"})
        name = self._name(params, "name", "")
        png, meta = self.server.source.map_png(name)
        self._send(
            200,
            png,
            "image/png",
            headers={"Cache-Control": "private, max-age=3600", "X-Map-Info": json.dumps(meta, allow_nan=False, ensure_ascii=True)},
        )

    def _map_values(self, params: dict[str, str]) -> None:
        self._only(params, {"name"})
        values = self.server.source.map_values(self._name(params, "name", ""))
        rows, cols = values.shape
        body = np.ascontiguousarray(values, dtype="<f4").tobytes()
        self._send(200, body, "application/octet-stream", headers={"Cache-Control": "private, max-age=3600", "X-Map-Shape": f"{rows},{cols}"})

    def _pattern(self, params: dict[str, str]) -> None:
        query = self._query(params)
        pattern, info = self.server.source.pattern_with_info(query)
        body = encode.encode_pattern(pattern, row=query.row, col=query.col, npa=query.npa)
        self._send(200, body, "application/octet-stream", headers={"X-Pattern-Info": json.dumps(info, allow_nan=False, default=str)})

    def _download_name(self, query: PatternQuery, ext: str) -> str:
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", self.server.source.path.stem)[:60] or "map"
        npa = f"_npa{query.npa}" if query.npa else (f"_nlpar{query.nlpar}" if query.nlpar else "")
        signal = "" if query.signal == "raw" else f"_{query.signal}"
        return f"{stem}_r{query.row}_c{query.col}{npa}{signal}.{ext}"

    def _pattern_tiff(self, params: dict[str, str]) -> None:
        query = self._query(params)
        pattern, info = self.server.source.pattern_with_info(query)
        body = encode.pattern_tiff(pattern, description=json.dumps({"file": self.server.source.path.name, **info}, default=str))
        name = self._download_name(query, "tiff")
        self._send(200, body, "image/tiff", headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def _pattern_png(self, params: dict[str, str]) -> None:
        query = self._query(params)
        pattern = self.server.source.pattern(query)
        body = encode.image_png(encode.display_uint8(pattern))
        name = self._download_name(query, "png")
        self._send(200, body, "image/png", headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def _bands(self, params: dict[str, str]) -> None:
        n_bands = self._int(params, "n_bands", 9)
        query = self._query({k: v for k, v in params.items() if k != "n_bands"})
        self._json(self.server.source.bands(query, n_bands=n_bands))

    def _lines(self, params: dict[str, str]) -> None:
        self._json(self.server.source.lines(self._query(params)))

    def _ipf_key(self, params: dict[str, str]) -> None:
        self._only(params, {"phase"})
        png = self.server.source.ipf_key_png(self._int(params, "phase"))
        self._send(200, png, "image/png", headers={"Cache-Control": "private, max-age=3600"})

    def _match_point(self, params: dict[str, str], *, panel: bool) -> tuple[int, int, str]:
        self._only(params, {"row", "col", "panel"} if panel else {"row", "col"})
        row, col = self._int(params, "row"), self._int(params, "col")
        if not panel:
            return row, col, ""
        name = params.get("panel")
        if name not in MATCH_PANELS:
            shown = "missing" if name is None else repr(name[:40])
            raise RequestError(f"parameter panel is {shown}: choose from {', '.join(MATCH_PANELS)}")
        return row, col, name

    def _match(self, params: dict[str, str]) -> None:
        row, col, _ = self._match_point(params, panel=False)
        self._json(self.server.source.match_info(row, col))

    def _match_png(self, params: dict[str, str]) -> None:
        row, col, panel = self._match_point(params, panel=True)
        self._send(200, panel_png(self.server.source.match(row, col), panel), "image/png")

    def _match_pattern(self, params: dict[str, str]) -> None:
        row, col, panel = self._match_point(params, panel=True)
        match = self.server.source.match(row, col)
        body = encode.encode_pattern(match.panel(panel), row=row, col=col)
        info = json.dumps({**match.describe(), "panel": panel}, allow_nan=False)
        self._send(200, body, "application/octet-stream", headers={"X-Match-Info": info})

    def _pin(self, params: dict[str, str]) -> None:
        self._only(params, set())
        # JSON only: a form on another web site cannot post it without the browser asking first (CORS)
        if self.headers.get_content_type() != "application/json":
            raise RequestError("pin: send the point as Content-Type: application/json", status=415)
        length = self.headers.get("Content-Length", "")
        if not _INT.fullmatch(length) or not 0 < int(length) <= _MAX_BODY:
            raise RequestError(f"pin: expected a JSON body of at most {_MAX_BODY} bytes")
        self.server._reading_started(self)  # a body sent slowly is cut off as a request is
        try:
            body = json.loads(self.rfile.read(int(length)))
        except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested a thousand deep
            raise RequestError(f"pin: body is not JSON ({exc})") from None
        finally:
            self.server._reading_done(self)
        if self.cut_off:
            raise ConnectionAbortedError("pin: the body did not arrive in time")
        if body is None:
            self.server.pinned = None
        else:
            if not isinstance(body, dict) or set(body) != {"row", "col"} or not all(type(body[k]) is int for k in ("row", "col")):
                raise RequestError('pin: expected {"row": ROW, "col": COL} with integers, or null')
            self.server.source.check_position(body["row"], body["col"])
            self.server.pinned = (body["row"], body["col"])
        self._json({"pinned": None if self.server.pinned is None else list(self.server.pinned)})


def serve_in_thread(server: ExplorerServer) -> threading.Thread:
    """Serve in a daemon thread; stop with ``server.shutdown()``."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="kikuchi-explore", daemon=True)
    thread.start()
    return thread

