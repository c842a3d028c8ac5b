"""What every ``softnce`` sub-command shares: the exit codes, the ``--help`` epilog that lists
them, and the checks of output paths made *before* any work starts (so that a long run is not
lost to an unwritable output at the end). See ``docs/cli.md``."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

#: success: every check passed, every file was written
EXIT_OK = 0
#: a verdict, not an error: a claim refuted, a property failed, a figure refused
EXIT_VERDICT = 1
#: usage or input error: bad option or value, missing or refused input, unwritable output
EXIT_USAGE = 2
#: I/O or resource error while running: disk full, file-size limit, permission, out of memory
EXIT_IO = 3
#: internal error: an unexpected exception (a bug); ``--debug`` shows its traceback
EXIT_INTERNAL = 4
#: interrupted by SIGINT (Ctrl-C): 128 + 2, as shells report it
EXIT_INTERRUPT = 130
#: stdout closed early (``softnce claims | head``): 128 + SIGPIPE, silently
EXIT_BROKEN_PIPE = 141


#: seeds are integers in [0, MAX_SEED] (numpy's and torch's generators take 64-bit seeds)
MAX_SEED = 2**63 - 1


def seed_type(text: str) -> int:
    """argparse ``type`` of ``--seed``: an integer in [0, 2**63)."""
    try:
        val = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= val <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**63), got {text}")
    return val


def path_arg(text: str) -> str:
    """argparse ``type`` of a file or directory option: a non-empty path (an empty value must
    not silently mean "no output")."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must be a non-empty path")
    return text


def epilog(verdict: str | None) -> str:
    """The exit-code paragraph of a sub-command's ``--help`` (``verdict``: what code 1 means)."""
    one = f"1 {verdict}; " if verdict else ""
    return (
        f"exit codes: 0 success; {one}2 usage or input error (bad option or value, missing or "
        "refused input file, unwritable output); 3 I/O or resource error while running (disk "
        "full, file-size limit, permission, out of memory); 4 internal error (a bug: --debug "
        "shows the traceback); 130 interrupted (Ctrl-C). Errors are one line on stderr. "
        "See docs/cli.md."
    )


def _probe_dir(directory: Path, flag: str) -> None:
    """Create and remove a file in ``directory``: the only reliable writability test (as root,
    ``os.access`` says yes to a read-only file system)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".softnce-probe.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ValueError(f"{flag}: cannot write in {directory} ({exc.strerror or exc})") from exc
    os.close(fd)
    os.unlink(tmp)


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def check_output_file(path: str | os.PathLike[str], flag: str, *, create_dirs: bool) -> None:
    """Refuse (``ValueError`` naming ``flag``) an output file that could not be written: its
    path is a directory, or its directory is missing (unless ``create_dirs``), not a directory,
    or not writable."""
    p = Path(path)
    if not str(path):
        raise ValueError(f"{flag}: empty path")
    if p.is_dir():
        raise ValueError(f"{flag}: {path} is a directory, not a file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        if not create_dirs:
            raise ValueError(f"{flag}: directory {parent} does not exist")
        anc = _existing_ancestor(parent)
        if not anc.is_dir():
            raise ValueError(f"{flag}: {anc} is not a directory")
        _probe_dir(anc, flag)
        return
    if not parent.is_dir():
        raise ValueError(f"{flag}: {parent} is not a directory")
    _probe_dir(parent, flag)


def check_output_dir(path: str | os.PathLike[str], flag: str) -> None:
    """Refuse (``ValueError`` naming ``flag``) an output directory that could not be created or
    written: an existing non-directory, or a non-writable (nearest existing) ancestor."""
    p = Path(path)
    if not str(path):
        raise ValueError(f"{flag}: empty path")
    if p.exists() and not p.is_dir():
        raise ValueError(f"{flag}: {path} exists and is not a directory")
    anc = _existing_ancestor(p)
    if not anc.is_dir():
        raise ValueError(f"{flag}: {anc} is not a directory")
    _probe_dir(anc, flag)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (the previous file, if
    any, stays intact until the new one is complete)."""
    from softnce_theory.numerics.montecarlo.checkpoint import atomic_write

    atomic_write(path, text.encode("utf-8"))


def add_family_options(p: argparse.ArgumentParser, what: str = "family") -> None:
    """``--family NAME`` (repeatable) and ``--plugin MODULE[:ATTR]`` (repeatable). The names are
    checked against the registry when the command runs (so ``--help`` imports no plugin)."""
    from softnce_theory._builtin import BUILTIN

    names = ", ".join(f.name for f in BUILTIN)
    p.add_argument(
        "--family",
        action="append",
        metavar="NAME",
        help=f"only this {what} (repeatable); built-in families: {names}, plus any registered "
        "by installed packages (entry points 'softnce.families') or by --plugin",
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE[:ATTR]",
        help="import MODULE and register its families (its FAMILY or FAMILIES, or ATTR); "
        "repeatable. See docs/guides/verify-your-own-loss.md",
    )


def load_families(args: argparse.Namespace) -> list[str]:
    """Register ``--plugin`` families and check ``--family``; returns the names the command
    runs on (every registered family when ``--family`` is not given). Entry points that failed
    to load are reported on stderr, one line each."""
    import sys

    from softnce_theory.registry import load_errors, load_plugin, registry

    for spec in args.plugin or ():
        load_plugin(spec)
    for msg in load_errors():
        print(f"softnce: warning: {msg}", file=sys.stderr)
    reg = registry()
    for name in args.family or ():
        if name not in reg:
            raise ValueError(f"--family must be one of {reg.names()}, got {name!r}")
    return list(args.family or reg.names())


#: width of the results console when stdout is not a terminal: no limit in practice (a rich
#: table is only as wide as its content), so nothing is cut, folded or wrapped
PIPE_WIDTH = 1_000_000


def stdout_console() -> Any:
    """The rich ``Console`` a command prints its results (tables) with. On a terminal: the
    terminal's width (long cells fold onto more lines). Piped or redirected: no width limit
    (:data:`PIPE_WIDTH`), so every claim id and evidence string appears in full, one table row
    per line, and no colour codes (rich writes none to a file). Every command that prints a
    rich table uses this (``docs/cli.md``)."""
    from rich.console import Console

    console = Console()
    if console.is_terminal:
        return console
    return Console(width=PIPE_WIDTH, soft_wrap=False)
