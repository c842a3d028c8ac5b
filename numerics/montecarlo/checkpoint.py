"""Checkpoints for Monte Carlo runs: plain JSON, written atomically, verified on load.

Layout (one JSON object)::

    {"format": "softnce-mc-checkpoint", "format_version": 1,
     "identity": {...},   # what the numbers depend on: scenario, config, seed, chunk, K grid, ...
     "settings": {...},   # stopping rule (may change on resume)
     "state": {...},      # per K: chunks done, finished flag, merged moments (exact float64)
     "sha256": "..."}     # SHA-256 of the canonical JSON of the four fields above

* **Atomic write**: the JSON goes to a temporary file in the same directory, is flushed and
  ``fsync``-ed, then ``os.replace``-d over the target (atomic on POSIX), and the directory is
  ``fsync``-ed. A process killed at any instant leaves either the previous or the new checkpoint.
* **No pickle**: only JSON. float64 values are stored with Python's shortest round-trip ``repr``,
  so a resumed run continues from bit-identical statistics.
* **Refusal**: a file that is not valid JSON, has the wrong format, a bad checksum, or an identity
  different from the current run (other scenario, configuration, seed, chunk size, K grid, device
  type, engine or torch version) raises :class:`CheckpointError`, naming what differs. It is never
  merged.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT = "softnce-mc-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, foreign, or from a different run."""


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str],
    identity: dict[str, Any],
    settings: dict[str, Any],
    state: dict[str, Any],
) -> None:
    """Write the checkpoint atomically (temp file + fsync + rename + directory fsync)."""
    target = Path(path)
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "identity": identity,
        "settings": settings,
        "state": state,
    }
    doc = dict(body, sha256=_digest(body))
    text = json.dumps(doc, sort_keys=True, indent=1, allow_nan=False)
    directory = target.parent if str(target.parent) else Path(".")
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dfd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dfd)


def load_checkpoint(path: str | os.PathLike[str], identity: dict[str, Any]) -> dict[str, Any]:
    """Read and verify a checkpoint; return its ``state``. Raise :class:`CheckpointError` if the
    file is corrupt or belongs to a different run."""
    p = Path(path)
    try:
        raw = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"checkpoint {p} is corrupt (not UTF-8 text); refusing it") from exc
    except OSError as exc:
        raise CheckpointError(f"checkpoint {p}: cannot read ({exc})") from exc
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"checkpoint {p} is corrupt (not valid JSON: {exc}); refusing it"
        ) from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {p} is not a softnce Monte Carlo checkpoint; refusing it"
        )
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {p} has format version {doc.get('format_version')!r}, "
            f"this engine writes {FORMAT_VERSION}; refusing it"
        )
    body = {k: doc.get(k) for k in ("format", "format_version", "identity", "settings", "state")}
    try:
        digest = _digest(body)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {p} is corrupt ({exc}); refusing it") from exc
    if doc.get("sha256") != digest:
        raise CheckpointError(f"checkpoint {p} is corrupt (checksum mismatch); refusing it")
    stored = doc["identity"]
    if not isinstance(stored, dict) or not isinstance(doc["state"], dict):
        raise CheckpointError(f"checkpoint {p} is corrupt (bad layout); refusing it")
    if _canonical(stored) != _canonical(identity):
        keys = sorted(set(stored) | set(identity))
        diff = [
            f"{k}: checkpoint={_short(stored.get(k))} run={_short(identity.get(k))}"
            for k in keys
            if _canonical(stored.get(k)) != _canonical(identity.get(k))
        ]
        raise CheckpointError(
            f"checkpoint {p} belongs to a different run; refusing to merge it. Differences: "
            + "; ".join(diff)
        )
    return doc["state"]


def _short(x: Any, limit: int = 80) -> str:
    s = _canonical(x)
    return s if len(s) <= limit else s[: limit - 3] + "..."
