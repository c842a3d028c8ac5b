"""Terminal output through a pipe: tables are not cut to 80 columns. Claim ids, statements and
evidence strings appear in full, one table row per line, without ellipses (``docs/cli.md``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

#: the longest claim id of the built-in catalogue, a gradient claim whose quick legs take ~1 s
LONG_CLAIM = "aljundi.esupcon_own_prototype_attracted_without_samples"


def _piped(args: list[str], cwd: Path) -> str:
    """``softnce ARGS`` with stdout a pipe (not a terminal), as in ``softnce ... | less``."""
    exe = Path(sys.executable).with_name("softnce")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "softnce_theory.cli"]
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    env.update(COLUMNS="80", TERM="xterm-256color")  # what a typical terminal session exports
    proc = subprocess.run(
        [*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_claims_through_a_pipe_are_not_cut(tmp_path: Path) -> None:
    listing = json.loads(_piped(["claims", "--json"], tmp_path))["claims"]
    text = _piped(["claims"], tmp_path)
    assert "…" not in text  # (rich's ellipsis; no claim text contains one)
    longest = max(listing, key=lambda c: len(c["text"]))
    assert len(longest["text"]) > 80
    for c in (longest, max(listing, key=lambda c: len(c["id"]))):
        (line,) = [ln for ln in text.splitlines() if ln.startswith(c["id"] + " ")]
        assert line.endswith(c["text"]), line  # the whole statement, on the claim's own line


def test_verify_table_through_a_pipe_is_not_cut(tmp_path: Path) -> None:
    text = _piped(["verify", "--claim", LONG_CLAIM, "--quick", "--jobs", "1"], tmp_path)
    assert "…" not in text
    (row,) = [ln for ln in text.splitlines() if LONG_CLAIM in ln]
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[0] == LONG_CLAIM and cells[2] in ("proved", "checked")
    # the evidence cell holds every leg's entry, on this one line (not wrapped onto the next)
    legs = [e.split(":")[0] for e in cells[3].split("; ")]
    assert {"sym", "prec", "prod"} <= set(legs), cells[3]


def test_stdout_console_is_wide_only_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from softnce_theory.commands._common import PIPE_WIDTH, stdout_console

    monkeypatch.setattr(Console, "is_terminal", property(lambda self: False))
    assert stdout_console().width == PIPE_WIDTH
    monkeypatch.setattr(Console, "is_terminal", property(lambda self: True))
    monkeypatch.setenv("COLUMNS", "77")
    assert stdout_console().width == 77
