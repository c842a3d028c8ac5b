#!/usr/bin/env python3
"""Set up the development environment and run the project's jobs.

Usage (from a fresh clone, with only Python >= 3.10 on the machine)::

    python3 tasks.py verify [ARGS...]   # create .venv, install, run `softnce verify ARGS...`
    python3 tasks.py test [--slow] [PYTEST ARGS...]   # create .venv, install, run pytest
    python3 tasks.py lint               # ruff check, ruff format --check, mypy
    python3 tasks.py softnce ARGS...    # any other `softnce` sub-command inside the environment

The environment is `.venv/` next to this file. It is (re)installed only when
`pyproject.toml` or `constraints.txt` changed since the last install. torch is pinned by
`constraints.txt` to the CPU wheel so that no CUDA wheels are pulled.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".softnce-install-stamp"
#: peers whose loss modules the conventions tests compare against, installed without their
#: dependencies: their package ``__init__`` needs torchvision, whose binary must match torch, so
#: the tests load only the loss files (tests/peers.py); pinned to the versions the tests name
PEER_LOSS_MODULES = ("lightly==1.6.0", "open_clip_torch==3.3.0")


def _fingerprint() -> str:
    h = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        h.update((ROOT / name).read_bytes())
    h.update(" ".join(PEER_LOSS_MODULES).encode())
    return h.hexdigest()


def ensure_env() -> None:
    """Create `.venv` and install the project (editable, with test extras) if needed."""
    if not PY.exists():
        print(f"[tasks] creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("[tasks] installing softnce-theory and its pinned dependencies", flush=True)
    cmd = [str(PY), "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", ".[test]"]
    subprocess.run(cmd, cwd=ROOT, check=True)
    peers = [str(PY), "-m", "pip", "install", "--quiet", "--no-deps", *PEER_LOSS_MODULES]
    subprocess.run(peers, cwd=ROOT, check=True)
    STAMP.write_text(_fingerprint())


def run(cmd: list[str]) -> int:
    print("[tasks] $ " + " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    job, rest = argv[0], argv[1:]
    if job not in {"verify", "test", "lint", "softnce"}:
        print(f"unknown job {job!r}; expected verify, test, lint or softnce", file=sys.stderr)
        return 2
    ensure_env()
    if job == "verify":
        return run([str(BIN / "softnce"), "verify", *rest])
    if job == "softnce":
        return run([str(BIN / "softnce"), *rest])
    if job == "test":
        args = list(rest)
        if "--slow" in args:
            args.remove("--slow")
            args = ["-m", "slow or not slow", *args]
        code = run([str(PY), "-m", "pytest", *args])
        if code == 5:  # pytest: no tests collected
            print("[tasks] pytest collected no tests", file=sys.stderr)
        return code
    # lint
    code = run([str(PY), "-m", "ruff", "check", "."])
    code |= run([str(PY), "-m", "ruff", "format", "--check", "."])
    code |= run([str(PY), "-m", "mypy"])
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
