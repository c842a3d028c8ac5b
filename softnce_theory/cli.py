"""The ``softnce`` command line.

Each sub-command lives in ``softnce_theory/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (returning an exit code).

:func:`main` owns the exit codes (``softnce_theory.commands._common``, ``docs/cli.md``): 0
success, 1 a verdict (refuted / failed / refused), 2 usage or input error, 3 I/O or resource
error, 4 internal error, 130 interrupted. Every error is one line on stderr; ``--debug`` adds
the traceback.
"""

from __future__ import annotations

import os

# SymPy reads its cache size once, at import: a larger cache speeds up the prover's repeated
# rewrites (set before any command imports SymPy; a user's own setting wins).
os.environ.setdefault("SYMPY_CACHE_SIZE", "20000")

import argparse
import contextlib
import importlib
import signal
import sys
import traceback
from collections.abc import Iterator, Sequence
from typing import NoReturn

from softnce_theory import __version__
from softnce_theory.commands._common import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPT,
    EXIT_IO,
    EXIT_USAGE,
    epilog,
)

DEBUG_HELP = "on an error, also print the traceback (errors are otherwise one line)"

#: sub-command modules, in the order ``--help`` lists them
COMMANDS: tuple[str, ...] = ("verify", "claims", "plots", "audit", "mc", "bench")


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line on stderr (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="softnce",
        description=(
            "Theory-verification toolkit for contrastive and noise-contrastive losses: "
            "symbolic proofs (SymPy), 50-digit oracles (mpmath) and production torch losses, "
            "checked against each other."
        ),
        epilog=epilog("a verdict: a claim refuted, a property failed, a figure refused"),
    )
    parser.add_argument("--version", action="version", version=f"softnce-theory {__version__}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"softnce_theory.commands.{name}").register(sub)
    for cmd in sub.choices.values():  # also accepted after the command
        cmd.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    return parser


def _one_line(exc: BaseException, limit: int = 600) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quiet_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so the exit flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        prev = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, prev)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; map what it raises onto the documented exit codes."""
    prog = f"softnce {args.command}"
    debug = bool(getattr(args, "debug", False))

    def fail(code: int, exc: BaseException) -> int:
        if debug:
            traceback.print_exception(exc)
        if code == EXIT_INTERNAL:  # a bug: the exception type is part of the message
            msg = f"internal error: {type(exc).__name__}: {_one_line(exc)}"
            msg += "" if debug else " (run with --debug for the traceback)"
        else:
            msg = f"error: {_one_line(exc)}"
        print(f"{prog}: {msg}", file=sys.stderr)
        return code

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        with _sigint_ignored():  # a second Ctrl-C while reporting must not add a traceback
            if debug:
                traceback.print_exc()
            ck = getattr(args, "checkpoint", None)
            if ck:  # a Ctrl-C between creating and renaming a temporary must not leave it
                from softnce_theory.numerics.montecarlo.checkpoint import clean_stale_temps

                clean_stale_temps(ck)
            kept = (
                f"; checkpoint {ck} holds the last finished round (rerun with --resume)"
                if ck and os.path.isfile(ck)
                else ""
            )
            print(f"{prog}: interrupted{kept}", file=sys.stderr)
        return EXIT_INTERRUPT
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except ModuleNotFoundError as exc:  # an optional extra is not installed: name it
        from softnce_theory._extras import missing_message

        msg = missing_message(exc.name or "", f"softnce {args.command}")
        if msg is None:
            return fail(EXIT_INTERNAL, exc)
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:  # bad option values, refused inputs (CheckpointError, ...)
        return fail(EXIT_USAGE, exc)
    except (OSError, MemoryError) as exc:  # disk full, EFBIG, permission, out of memory
        return fail(EXIT_IO, exc)
    except Exception as exc:  # a bug (RecursionError included)
        return fail(EXIT_INTERNAL, exc)


def main(argv: Sequence[str] | None = None) -> int:
    """``softnce`` (the console script calls ``sys.exit(main())``). Usage errors raise
    ``SystemExit(2)`` from argument parsing, as argparse does; everything else is returned."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("softnce: interrupted", file=sys.stderr)
        return EXIT_INTERRUPT
    if not getattr(args, "func", None):
        print("softnce: error: a command is required (see 'softnce --help')", file=sys.stderr)
        return EXIT_USAGE
    return run_command(args)


if __name__ == "__main__":
    sys.exit(main())
