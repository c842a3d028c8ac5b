"""The ``softnce`` command line.

Each sub-command lives in ``softnce_theory/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from softnce_theory import __version__

#: sub-command modules, in the order ``--help`` lists them
COMMANDS: tuple[str, ...] = ("verify", "claims", "plots", "audit", "mc", "bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softnce",
        description=(
            "Theory-verification toolkit for contrastive and noise-contrastive losses: "
            "symbolic proofs (SymPy), 50-digit oracles (mpmath) and production torch losses, "
            "checked against each other."
        ),
    )
    parser.add_argument("--version", action="version", version=f"softnce-theory {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"softnce_theory.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except ValueError as exc:  # bad option values: clear message, no traceback
        print(f"softnce {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
