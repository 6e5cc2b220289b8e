"""The map explorer: a local web page to look at the patterns of a map.

Hover the base map to see the pattern under the mouse, click to pin a point,
average neighbours, switch between raw and corrected patterns and save a
pattern as an exact TIFF; with orientations and a master pattern, compare
the point's pattern with its simulation (difference and NCC). ``kikuchi explore FILE.h5`` opens it in the
browser; from Jupyter, ``kikuchi.explore(path)`` shows it inline.

The server is Python's standard ``http.server``; the page is static HTML,
JavaScript and CSS shipped in ``kikuchi/explore/static`` (no CDN, no build).
"""

from __future__ import annotations

import html
import logging
import os
import socket
import sys
import threading
import types
from pathlib import Path
from typing import TYPE_CHECKING

from kikuchi._args import ArgumentTypeError, check_bool, check_count, check_number, check_path, shown
from kikuchi.explore.server import ExplorerServer, make_server, serve_in_thread
from kikuchi.explore.source import MapSource

if TYPE_CHECKING:
    from kikuchi.io.orientation_map import OrientationMap
    from kikuchi.simulate.master import MasterPattern

__all__ = ["Explorer", "MapSource", "explore"]

_logger = logging.getLogger(__name__)


class Explorer:
    """A running explorer server (see :func:`explore`).

    Attributes
    ----------
    url
        Address of the page (with ``?token=...`` when the server asks for one).
    token
        The token requests must carry, or None (see :func:`explore`).
    """

    def __init__(self, server: ExplorerServer, *, height: int = 760):
        self._server = server
        self.height = int(height)
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._stop_lock = threading.Lock()

    @property
    def url(self) -> str:
        return self._server.page_url

    @property
    def token(self) -> str | None:
        return self._server.token

    @property
    def path(self) -> Path:
        """The map file shown."""
        return self._server.source.path

    @property
    def pinned(self) -> tuple[int, int] | None:
        """The (row, col) pinned on the page, or None."""
        return self._server.pinned

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped

    def start(self) -> Explorer:
        """Serve in a background thread (returns at once)."""
        if self._stopped:
            raise RuntimeError("this explorer was stopped; call kikuchi.explore(path) again")
        if self._thread is None:
            self._thread = serve_in_thread(self._server)
        return self

    def wait(self) -> None:
        """Block until Ctrl-C or :meth:`stop` (from another thread), then stop: for scripts.

        :func:`explore` serves from a background thread and returns at once;
        a script that should keep the page alive calls ``wait()``.
        """
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout=0.5)
        except KeyboardInterrupt:
            _logger.info("explorer of %s: interrupted", self.path)
        finally:
            self.stop()

    def serve_forever(self) -> None:
        """Serve in this thread (instead of :meth:`start`) until Ctrl-C or :meth:`stop`, then close."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving and close the map file (a second call does nothing)."""
        with self._stop_lock:
            if self._stopped:
                return
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join(timeout=5)
            self._close()

    def _close(self) -> None:
        if not self._stopped:
            self._stopped = True
            self._server.server_close()
            self._server.source.close()

    def __enter__(self) -> Explorer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else ("stopped" if self._stopped else "not started")
        return f"<Explorer {self.path.name} at {self.url} ({state})>"

    def _repr_html_(self) -> str:
        if self._stopped:
            return f"<p>kikuchi explorer of {html.escape(self.path.name)}: stopped.</p>"
        url = html.escape(self.url, quote=True)
        return (
            f'<iframe src="{url}" width="100%" height="{self.height}" style="border:1px solid #ccc" '
            f'title="kikuchi map explorer"></iframe>'
            f'<p style="font-size:small">kikuchi explorer of {html.escape(self.path.name)} at '
            f'<a href="{url}" target="_blank">{url}</a>; call <code>.stop()</code> to end it.</p>'
        )


def explore(
    path: str | os.PathLike,
    *,
    orientations: str | os.PathLike | OrientationMap | None = None,
    master_pattern: str | os.PathLike | MasterPattern | None = None,
    energy: str | float = "highest",
    phase: str | int | None = None,
    sigma: float | None = None,
    background: bool | None = None,
    signal_mask: bool | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
    token: str | bool | None = None,
    open_browser: bool = False,
    height: int = 760,
) -> Explorer:
    """Open the map explorer of a map file in a background thread.

    In Jupyter the returned object shows the page inline (an IFrame);
    elsewhere open ``.url`` in a browser (or pass ``open_browser=True``).

    Parameters
    ----------
    path
        Map file (see :func:`kikuchi.open`).
    orientations
        Orientation map indexed from this map, on the same grid (a CTF or
        ANG path, or a :class:`kikuchi.OrientationMap`, e.g. from indexing
        in the same session): adds IPF colours, the phase map, its columns
        (band contrast, MAD, ...) and simulated band lines. By default the
        Euler angles stored in the map file are used, if any. An HDF5
        orientation map from ``kikuchi refine`` (or its
        :class:`~kikuchi.OrientationMap`) also gives each point's refined
        pattern centre to the pattern-matching view.
    master_pattern
        Adds the pattern-matching view (needs orientations): for the point
        shown, the pattern prepared as ``kikuchi refine`` prepares it, the
        master pattern projected at the point's orientation and pattern
        centre, their difference and their NCC (mean 0, standard deviation
        1, the signal mask of refinement). An EMsoft master pattern file,
        ``'kinematical:PHASE[@KV]'`` (:func:`kikuchi.refine.load_master_pattern`;
        the map's energy unless ``@KV``) or a
        :class:`kikuchi.simulate.MasterPattern`.
    energy
        Energy bins of an EMsoft master pattern: 'highest', 'weighted' or keV.
    phase
        Phase of the orientations (id or name) the master pattern is for;
        default the only one, or the one named as the master pattern's.
    sigma, background, signal_mask
        Preparation as ``kikuchi refine``'s ``--sigma``, ``--no-background``
        and ``--no-mask``: Gaussian sigma of the dynamic background in
        pixels, subtract the static and dynamic backgrounds, compare inside
        the largest circle of the pattern only. None (default): as the
        refinement that wrote the orientations (``kikuchi refine``'s HDF5
        keeps its settings), else width / 25, True, True.
    port
        TCP port; 0 (default) takes any free port.
    host
        Address to bind. The default serves this computer only; any other
        address makes the patterns readable from the network.
    token
        The token every request must carry (``?token=`` in ``.url``, then a
        cookie): None (default) asks for a random one when ``host`` is not
        127.0.0.1, ::1 or localhost, and for none there; True asks for a
        random one anywhere; a string (8 to 256 characters of A-Z a-z 0-9
        _ . ~ -) is that token.
    open_browser
        Also open the page in the default web browser.
    height
        Height in pixels of the inline IFrame.

    Returns
    -------
    Explorer
        Running server; ``.stop()`` ends it, ``.pinned`` is the point
        clicked on the page, ``.wait()`` keeps a script alive until Ctrl-C.

    Examples
    --------
    >>> import tempfile, pathlib, urllib.request, numpy as np
    >>> from kikuchi import MapWriter
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.h5"
    >>> with MapWriter(p, nav_shape=(2, 2), pattern_shape=(3, 3), dtype="uint8") as w:
    ...     w.write(0, np.zeros((4, 3, 3), dtype=np.uint8))
    >>> ex = explore(p)
    >>> urllib.request.urlopen(ex.url + "api/info").status
    200
    >>> ex.stop()
    """
    path = check_path(path)
    port = check_count(port, "port", minimum=0, maximum=65535)
    height = check_count(height, "height", minimum=1)
    open_browser = check_bool(open_browser, "open_browser")
    if not isinstance(host, str) or not host:
        raise ArgumentTypeError(f"host={shown(host)}: expected an address, e.g. '127.0.0.1'")
    if orientations is not None and not hasattr(orientations, "euler"):
        orientations = check_path(orientations, "orientations")
    if master_pattern is not None and not hasattr(master_pattern, "north"):
        master_pattern = str(check_path(master_pattern, "master_pattern"))
    background = None if background is None else check_bool(background, "background")
    signal_mask = None if signal_mask is None else check_bool(signal_mask, "signal_mask")
    if sigma is not None:
        sigma = check_number(sigma, "sigma", positive=True, unit="px")
    matching = {"master_pattern": master_pattern, "energy": energy, "phase": phase, "sigma": sigma, "background": background, "signal_mask": signal_mask}
    try:
        server = make_server(path, host=host, port=port, orientations=orientations, token=token, **matching)
    except socket.gaierror as exc:
        raise OSError(f"host {host!r}: {exc.strerror or exc}; give an address of this computer, e.g. 127.0.0.1") from None
    explorer = Explorer(server, height=height).start()
    _logger.info("explorer of %s at %s%s", explorer.path, explorer._server.url, " (token asked for)" if explorer.token else "")
    if open_browser:
        import webbrowser

        webbrowser.open(explorer.url)
    return explorer


class _ExploreModule(types.ModuleType):
    """This package, callable as :func:`explore`.

    ``kikuchi.explore`` names both this subpackage and the function (the
    top-level export). Once the subpackage is imported, Python binds
    ``kikuchi.explore`` to it, so the module forwards calls to the function:
    ``kikuchi.explore(path)`` works whichever of the two the name holds.
    """

    def __call__(self, *args: object, **kwargs: object) -> Explorer:
        return explore(*args, **kwargs)  # type: ignore[arg-type]


sys.modules[__name__].__class__ = _ExploreModule
