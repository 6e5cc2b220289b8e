"""``kikuchi explore``: the map explorer in the browser.

Starts a local web server on the map file and opens the page; Ctrl-C stops
it. By default the server answers this computer only (127.0.0.1); bound to
any other address it asks for a token, printed in the address. With
``--master-pattern`` (and orientations) the page also compares the pattern
shown with its simulation: difference and NCC, as ``kikuchi refine`` sees them.
"""

from __future__ import annotations

import argparse
import sys
import webbrowser
from typing import Any

import numpy as np

from kikuchi.cli._options import PATTERN_FILE
from kikuchi.cli._refine import MASTER_PATTERN_HELP, energy_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help=PATTERN_FILE)
    parser.add_argument(
        "--orientations",
        metavar="CTF_ANG_OR_H5",
        help="orientation map indexed from this map (same grid; CTF, ANG or kikuchi's HDF5 from index/refine): IPF, phase, "
        "BC/MAD/NCC maps, simulated band lines, and the orientations (and refined PCs) of the pattern-matching view",
    )
    m = parser.add_argument_group(
        "pattern matching", "with --master-pattern, the page shows for the point shown the pattern prepared as kikuchi refine "
        "prepares it, its simulation at the point's orientation and PC, their difference and the NCC"
    )
    m.add_argument("--master-pattern", metavar="F", help=MASTER_PATTERN_HELP)
    m.add_argument(
        "--energy", metavar="highest|weighted|KEV",
        help="energy bins of an EMsoft master pattern: the highest (default), weighted by the Monte Carlo histogram, or the bin nearest KEV",
    )  # fmt: skip
    m.add_argument("--phase", metavar="NAME|ID", help="phase of the orientations the master pattern is for (default: the only one, or the one of its name)")
    m.add_argument("--sigma", type=float, metavar="PX", help="Gaussian sigma of the dynamic background (default: the refinement's, from kikuchi refine's HDF5 output, else width / 25)")
    m.add_argument("--no-background", action="store_true", help="no static/dynamic background subtraction, as kikuchi refine --no-background")
    m.add_argument("--no-mask", action="store_true", help="compare every pixel (default: inside the largest circle), as kikuchi refine --no-mask")
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
    matching = matching_options(args)
    try:
        server = make_server(args.file, host=args.host, port=args.port, orientations=args.orientations, token=token, **matching)
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


def matching_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments of the pattern-matching view (:class:`kikuchi.explore.MapSource`) from the options."""
    given = [
        option for option, value in (
            ("--energy", args.energy), ("--phase", args.phase), ("--sigma", args.sigma),
            ("--no-background", args.no_background or None), ("--no-mask", args.no_mask or None),
        ) if value is not None
    ]  # fmt: skip
    if args.master_pattern is None:
        if given:
            raise ValueError(f"{given[0]} sets up the pattern-matching view: give it with --master-pattern")
        return {}
    if args.sigma is not None and not (np.isfinite(args.sigma) and args.sigma > 0):
        raise ValueError(f"--sigma must be a positive number of pixels, got {args.sigma:g}")
    return {
        "master_pattern": args.master_pattern, "energy": energy_option(args.energy or "highest"), "phase": args.phase,
        "sigma": args.sigma, "background": False if args.no_background else None, "signal_mask": False if args.no_mask else None,
    }
