"""Entry point of the ``kikuchi`` command.

Each subcommand lives in its own module ``kikuchi.cli._<name>`` with two
functions: ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
imported only when their command runs, so ``kikuchi --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings

from kikuchi import __version__

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("kikuchi.cli._demo", "run every stage on a built-in synthetic map"),
    "info": ("kikuchi.cli._info", "describe a map file, CTF/ANG or image folder"),
    "convert": ("kikuchi.cli._convert", "convert a folder or zip of pattern images to a map file"),
    "plot": ("kikuchi.cli._plot", "map figures (band contrast, MAD, IPF, phase, BSE, ...)"),
    "simulate": ("kikuchi.cli._simulate", "simulate patterns and synthetic maps of known truth"),
    "process": ("kikuchi.cli._process", "process a whole map (background, binning, contrast, averaging)"),
    "pattern": ("kikuchi.cli._pattern", "export one (processed) pattern as TIFF or PNG"),
    "vbse": ("kikuchi.cli._vbse", "virtual BSE arrays, colour images, centre of mass, diodes"),
    "quality": ("kikuchi.cli._quality", "pattern quality maps (IQ, neighbour dot product, mean, std)"),
    "bands": ("kikuchi.cli._bands", "detect Kikuchi bands (Hough/Radon) in a pattern"),
    "index": ("kikuchi.cli._index", "Hough indexing of a map to an orientation map"),
    "explore": ("kikuchi.cli._explore", "open the map explorer in the browser"),
}


class CommandError(Exception):
    """An error the CLI reports in one line, with exit code 2."""


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kikuchi", description="Kikuchi diffraction methods in the SEM.")
    parser.add_argument("--version", action="version", version=f"kikuchi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a in COMMANDS), None)
    parser = _parser(command)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])

    def one_line(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' signature
        print(f"kikuchi {args.command}: warning: {message}", file=sys.stderr)

    warnings.showwarning = one_line  # oddities of input files: one line each, on stderr
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("kikuchi: interrupted; no incomplete output was left under its final name", file=sys.stderr)
        return 130
    except (CommandError, ValueError, OSError, IndexError, KeyError) as exc:
        if args.verbose:
            raise
        print(f"kikuchi {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
