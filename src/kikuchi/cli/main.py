"""Entry point of the ``kikuchi`` command.

Each subcommand lives in its own module ``kikuchi.cli._<name>`` with two
functions: ``add_arguments(parser)`` and ``run(args) -> int``. Modules are
imported only when their command runs, so ``kikuchi --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
import warnings
from typing import Any, NoReturn

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
    "index": ("kikuchi.cli._index", "Hough or dictionary indexing of a map to an orientation map"),
    "refine": ("kikuchi.cli._refine", "refine orientations and pattern centres by pattern matching"),
    "calibrate": ("kikuchi.cli._calibrate", "pattern centre of a map: pattern matching on a grid, or the moving-screen method"),
    "explore": ("kikuchi.cli._explore", "open the map explorer in the browser"),
}


#: Attribute of the log records whose text a KeyboardInterrupt carries as a note
#: (kikuchi.engine._resumable.NOTE_ON_INTERRUPT): the error line says it, the log does not repeat it.
_NOTE_ON_INTERRUPT = "kikuchi_note_on_interrupt"


class CommandError(Exception):
    """An error the CLI reports in one line, with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's parser whose errors are one line, as every other error of the command (``--help`` shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _LogFormat(logging.Formatter):
    """Log records of warning level and above as ``kikuchi CMD: warning: ...``, one line, as warnings are printed."""

    def __init__(self, command: str | None):
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.command = command

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno >= logging.WARNING:
            return f"kikuchi {self.command or ''}: {record.levelname.lower()}: {' '.join(record.getMessage().split())}".replace("kikuchi :", "kikuchi:")
        return super().format(record)


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="kikuchi", description="Kikuchi diffraction methods in the SEM.")
    parser.add_argument("--version", action="version", version=f"kikuchi {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument(
        "--strict", action="store_true",
        help="turn every warning about an input file (a truncated map, a header that disagrees with the data, "
        "values no instrument writes) into an error: the command stops with exit code 2",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``kikuchi ARGV``; the exit code: 0, 2 (an error, said in one line), 130 (Ctrl-C), 143 (SIGTERM).

    Ctrl-C and SIGTERM (a batch system's time limit, ``kill``) stop a command
    cleanly: its outputs are removed or, where ``--resume`` continues them,
    kept as ``.NAME.partial``; one line on stderr says which.
    """
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if a in COMMANDS), None)
    received: list[int] = []
    ending: list[bool] = []
    previous = _stop_on_signals(received, ending)
    try:
        code = _main(argv, command)
        late = _take_pending()  # a signal put off during HDF5's last writes, not delivered before the end
        if late is not None and code == 0:
            received.append(late)
            raise KeyboardInterrupt("the command had finished: its output is complete")
        return code
    except KeyboardInterrupt as exc:
        ending.append(True)
        signum = received[-1] if received else signal.SIGINT
        what = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        said = [*(str(a) for a in exc.args if a), *(note for note in getattr(exc, "__notes__", ()) if note)]
        said = said or ["no incomplete output was left under its final name"]
        print(f"kikuchi{f' {command}' if command else ''}: error: {what}; {'; '.join(said)}", file=sys.stderr)
        return 128 + int(signum)
    finally:
        ending.append(True)  # a signal from here on is not acted on (the command is over)
        _take_pending()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _take_pending() -> int | None:
    atomic = sys.modules.get("kikuchi.io._atomic")
    return None if atomic is None else atomic.take_pending()


def _warnings_are_errors() -> None:
    """``--strict``: kikuchi's warnings about its inputs raise instead (the pattern and orientation readers' classes, and any other UserWarning kikuchi warns)."""
    from kikuchi.io.source import MapFileWarning

    warnings.filterwarnings("error", category=MapFileWarning)
    try:
        from kikuchi.io.orientation_map import OrientationMapWarning
    except ImportError:  # pragma: no cover - the orientation readers without their warning class
        pass
    else:
        warnings.filterwarnings("error", category=OrientationMapWarning)
    warnings.filterwarnings("error", category=UserWarning, module=r"kikuchi(\.|$)")


def _not_said_by_interrupt(record: logging.LogRecord) -> bool:
    """Log filter: leave out the records whose text the interrupt carries (the error line says it)."""
    return not getattr(record, _NOTE_ON_INTERRUPT, False)


def _stop_on_signals(received: list[int], ending: list[bool]) -> dict[int, Any]:
    """Ctrl-C (SIGINT) and SIGTERM raise KeyboardInterrupt, never inside HDF5's writes; the previous handlers.

    Where HDF5 is calling back into Python to write an output (or Python runs
    a finalizer), an exception would leave the file impossible to close
    (:func:`kikuchi.io._atomic.in_uninterruptible_code`): the signal comes
    again a moment later. Only signals Python handles as by default are
    taken (SIGINT ignored, as in a background job, stays ignored). Once
    ``ending`` holds anything, signals are no longer acted on.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}

    def stop(signum: int, frame: Any) -> None:
        if ending:  # the command is over, its answer given or being given
            return
        atomic = sys.modules.get("kikuchi.io._atomic")  # not imported: no output open, nothing to protect
        if atomic is not None and atomic.in_uninterruptible_code(frame):
            atomic.interrupt_again(signum)
            return
        _take_pending()
        received.append(signum)
        raise KeyboardInterrupt

    previous = {}
    for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(signum) == default:
            previous[signum] = signal.signal(signum, stop)
    return previous


def _main(argv: list[str], command: str | None) -> int:
    parser = _parser(command)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # log warnings read as the warnings of input files: one line each
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr:
            handler.setFormatter(_LogFormat(args.command))
            if _not_said_by_interrupt not in handler.filters:
                handler.addFilter(_not_said_by_interrupt)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])

    def one_line(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 - warnings' signature
        print(f"kikuchi {args.command}: warning: {message}", file=sys.stderr)

    warnings.showwarning = one_line  # oddities of input files: one line each, on stderr
    if args.strict:
        _warnings_are_errors()
    try:
        if getattr(args, "skip_bad_chunks", False):  # process, vbse, quality, index: carry on past damaged chunks
            from kikuchi.engine import bad_chunk_policy

            with bad_chunk_policy("skip"):
                return int(module.run(args) or 0)
        return int(module.run(args) or 0)
    except (CommandError, ValueError, OSError, IndexError, KeyError) as exc:
        if args.verbose:
            raise
        print(f"kikuchi {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Warning as exc:  # --strict: a warning about an input, raised as an error
        if args.verbose:
            raise
        print(f"kikuchi {args.command}: error: {exc} (--strict: warnings are errors)", file=sys.stderr)
        return 2
    except MemoryError:
        if args.verbose:
            raise
        print(
            f"kikuchi {args.command}: error: out of memory; give it a smaller input, map or pattern shape "
            "(or fewer --threads/--workers), or run it on a computer with more memory",
            file=sys.stderr,
        )
        return 2


def console() -> NoReturn:
    """The ``kikuchi`` program (and ``python -m kikuchi.cli.main``): :func:`main` on ``sys.argv``, then exit.

    The exit skips the interpreter's teardown (freeing every module, array and
    numba's compiled code one by one: 0.15-0.25 s of every command, measured on
    ``kikuchi process``), after doing what that teardown would do for the world
    outside: non-daemon threads joined, exit handlers run, stdout and stderr
    flushed. Where an HDF5 file is still open for writing (HDF5 closes those in
    its own C exit handler), or anything here fails, the normal exit runs.
    """
    code = main()
    _exit_now(code)


def _exit_now(code: int) -> NoReturn:
    import atexit
    import os

    try:
        h5py = sys.modules.get("h5py")
        if h5py is not None and any(
            fid.get_intent() != h5py.h5f.ACC_RDONLY for fid in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)
        ):
            sys.exit(code)
        threading._shutdown()  # type: ignore[attr-defined] - what the interpreter's exit does first
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    except Exception:  # noqa: BLE001 - any doubt: the interpreter's own exit
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
