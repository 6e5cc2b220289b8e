"""``kikuchi explore``: the map explorer in the browser.

Starts a local web server on the map file and opens the page; Ctrl-C stops
it. By default the server answers this computer only (127.0.0.1); bound to
any other address it asks for a token, printed in the address.
"""

from __future__ import annotations

import argparse
import sys
import webbrowser

from kikuchi.cli._options import PATTERN_FILE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help=PATTERN_FILE)
    parser.add_argument(
        "--orientations",
        metavar="CTF_OR_ANG",
        help="orientation map indexed from this map (same grid): IPF, phase, BC/MAD maps and simulated band lines",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this computer only; another address serves the patterns to the network)",
    )
    parser.add_argument(
        "--token",
        help="token every request must carry (?token=TOKEN in the address, then a cookie): 8 to 256 characters of "
        "A-Z a-z 0-9 _ . ~ -; default: a random one when --host is not 127.0.0.1, ::1 or localhost, none there",
    )
    parser.add_argument(
        "--require-token", action="store_true", help="ask for a (random) token on 127.0.0.1 too, e.g. on a computer shared with other users"
    )
    parser.add_argument("--no-browser", action="store_true", help="do not open the page in the web browser")


def run(args: argparse.Namespace) -> int:
    from kikuchi.explore import Explorer
    from kikuchi.explore.server import _TOKEN, _is_loopback, make_server

    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port}: a TCP port is 0..65535 (0: any free port)")
    if args.token is not None and not _TOKEN.fullmatch(args.token):
        raise ValueError(f"--token: expected 8 to 256 characters among A-Z a-z 0-9 _ . ~ - (got {len(args.token)} characters)")
    token = args.token if args.token is not None else (True if args.require_token else None)
    try:
        server = make_server(args.file, host=args.host, port=args.port, orientations=args.orientations, token=token)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError) or exc.errno is None:
            raise
        raise OSError(f"cannot serve on {args.host}:{args.port}: {exc.strerror or exc} (choose another --port, or --port 0)") from exc
    explorer = Explorer(server)
    if not _is_loopback(args.host):
        print(
            f"warning: serving {explorer.path.name} to the network on {args.host}; anyone who can reach it and has the token can read the patterns",
            file=sys.stderr,
        )
    print(f"kikuchi explore: {explorer.path.name} at {explorer.url}  (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        webbrowser.open(explorer.url)
    try:
        explorer.serve_forever()
    except KeyboardInterrupt:
        print("kikuchi explore: stopped", flush=True)
    return 0
