"""The explorer's HTTP server: fixed routes over one open map file.

Nothing in a request reaches the file system. Paths are looked up in a fixed
table of routes; the static page is read from the package once, at start;
query parameters are parsed to integers or checked against fixed lists of
names, and every request that does not fit gets a 4xx answer with a JSON
``{"error": message}`` body, after which the server goes on serving.

Routes (all ``GET`` unless noted)::

    /                      the page
    /static/explorer.js    its script, /static/explorer.css its style
    /api/info              JSON: map shape, step, pattern shape, base maps, signals
    /api/map?name=N        PNG of base map N (sent once; the page caches it)
    /api/map-values?name=N its values: float32 little-endian (rows, cols), NaN where none
    /api/pattern?row=R&col=C[&npa=K][&signal=S][&OPTION=VALUE...]
                           binary pattern message (see kikuchi.explore.encode);
                           the options of each signal are listed in /api/info
    /api/pattern.tiff?...  the same pattern as an exact TIFF download
    /api/pattern.png?...   the same pattern as an 8-bit PNG (min-max scaled)
    /api/bands?...[&n_bands=K]  JSON: bands detected in that pattern (end points, rho, theta)
    /api/lines?row=R&col=C JSON: simulated band centre lines with hkl for the point's orientation
    /api/ipf-key?phase=P   PNG: the IPF colour key of phase P
    POST /api/pin          JSON {"row": R, "col": C}: the pinned point (Explorer.pinned)
"""

from __future__ import annotations

import http.server
import ipaddress
import json
import logging
import re
import socket
import sys
import threading
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from kikuchi.explore import encode
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
_MAX_QUERY = 1024
_MAX_BODY = 1024
_PATTERN_PARAMS = {"row", "col", "npa", "signal"}


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class ExplorerServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server that serves one :class:`MapSource`.

    Parameters
    ----------
    source
        The open map.
    host, port
        Address to bind; port 0 takes any free port.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, source: MapSource, *, host: str = "127.0.0.1", port: int = 0):
        self.source = source
        self.loopback_only = _is_loopback(host)
        self.pinned: tuple[int, int] | None = None
        self.static = {
            route: (resources.files("kikuchi.explore").joinpath("static", name).read_bytes(), media)
            for route, (name, media) in STATIC_FILES.items()
        }
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            _logger.debug("explorer: connection from %s ended: %s", client_address, exc)
            return
        _logger.exception("explorer: error while serving %s", client_address)


def make_server(
    path: str | Path, *, host: str = "127.0.0.1", port: int = 0, orientations: Any = None
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

    Raises
    ------
    OSError
        When the address cannot be bound (port in use, unknown host).
    """
    source = MapSource(path, orientations=orientations)
    try:
        return ExplorerServer(source, host=host, port=port)
    except BaseException:
        source.close()
        raise


class _Handler(http.server.BaseHTTPRequestHandler):
    server: ExplorerServer
    protocol_version = "HTTP/1.1"  # keep-alive: one connection carries the patterns of a mouse sweep
    server_version = "kikuchi-explore"
    sys_version = ""
    timeout = 120

    # -- plumbing ----------------------------------------------------------
    def setup(self) -> None:
        super().setup()
        # Small answers must not wait for the client's delayed ACK (Nagle): 40 ms otherwise.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        _logger.debug("explorer %s: " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, media: str, *, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
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
        self._error(code, message or explain or "malformed request")

    def _json(self, value: Any, status: int = 200) -> None:
        self._send(status, json.dumps(value, allow_nan=False).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        _logger.info("explorer: %s %s -> %d %s", self.command, self.path[:200], status, message)
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

    def _dispatch(self, routes: dict[str, Callable[[dict[str, str]], None]]) -> None:
        try:
            if len(self.path) > _MAX_QUERY + 100:
                raise RequestError("request line too long", status=414)
            if not self._host_ok():
                raise RequestError("this explorer only answers requests addressed to localhost", status=403)
            if self.command != "POST" and self.headers.get("Content-Length", "0") != "0":
                self.close_connection = True  # a body we do not read must not become the next request
            parts = urlsplit(self.path)
            handler = routes.get(parts.path)
            if handler is None:
                raise RequestError(f"no such page: {parts.path[:100]!r}", status=404)
            handler(self._params(parts.query))
        except RequestError as exc:
            self._error(exc.status, str(exc))
        except (ConnectionError, TimeoutError):
            raise
        except Exception as exc:  # the server keeps serving whatever one request did
            _logger.exception("explorer: %s %s failed", self.command, self.path[:200])
            self._error(500, f"internal error: {type(exc).__name__}: {exc}")

    def _params(self, query: str) -> dict[str, str]:
        try:
            pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=16)
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
            }
        )

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        self._dispatch({"/api/pin": self._pin})

    def _refuse(self) -> None:
        self._error(405, f"method {self.command} is not allowed")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    # -- parameters ----------------------------------------------------------
    @staticmethod
    def _only(params: dict[str, str], allowed: set[str]) -> None:
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise RequestError(f"unknown parameter {unknown[0][:40]!r} (allowed: {', '.join(sorted(allowed))})")

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
        npa = f"_npa{query.npa}" if query.npa else ""
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

    def _pin(self, params: dict[str, str]) -> None:
        self._only(params, set())
        # JSON only: a form on another web site cannot post it without the browser asking first (CORS)
        if self.headers.get_content_type() != "application/json":
            raise RequestError("pin: send the point as Content-Type: application/json", status=415)
        length = self.headers.get("Content-Length", "")
        if not _INT.fullmatch(length) or not 0 < int(length) <= _MAX_BODY:
            raise RequestError(f"pin: expected a JSON body of at most {_MAX_BODY} bytes")
        try:
            body = json.loads(self.rfile.read(int(length)))
        except (ValueError, RecursionError) as exc:  # RecursionError: arrays nested a thousand deep
            raise RequestError(f"pin: body is not JSON ({exc})") from None
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

