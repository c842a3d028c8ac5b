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
  type, engine or torch version) raises :class:`CheckpointError`, naming the file and what
  differs. It is never merged. So does a file that is not a regular file, is larger than
  :data:`MAX_BYTES`, or nests JSON too deeply (no ``RecursionError``).
* **Integrity, not authenticity**: the SHA-256 detects accidental corruption (truncation, bit
  flips, a partial copy). Anyone who can edit the file can also recompute the checksum, so it
  does **not** detect deliberate edits; no keyed signature is offered (a checkpoint is a local
  cache of the user's own run). The engine still validates every field it reads.
* **Stale temporaries**: a writer killed between creating and renaming its temporary leaves a
  ``.<name>.*.tmp`` file; :func:`clean_stale_temps` (called by the engine before a run that uses
  the checkpoint) removes them.
* **I/O errors**: :func:`check_writable` refuses an unwritable checkpoint directory before a run;
  an ``OSError`` while saving (disk full, ``RLIMIT_FSIZE``/``EFBIG``) is re-raised naming the
  checkpoint, and the previous checkpoint stays intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

FORMAT = "softnce-mc-checkpoint"
FORMAT_VERSION = 1
#: larger files are refused unread (a real checkpoint is a few kB to a few MB)
MAX_BYTES = 256 * 2**20


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: corrupt, foreign, or from a different run."""


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical(body).encode()).hexdigest()


def temp_name_parts(target: Path) -> tuple[str, str]:
    """Prefix and suffix of the temporary files written next to ``target`` (for cleanup)."""
    return f".{target.name}.", ".tmp"


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask is set-and-return, racy in threads)
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_temp(target: Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to a new temporary file next to ``target`` (same directory, so that
    ``os.replace`` onto ``target`` is atomic), flushed and ``fsync``-ed. The caller replaces or
    removes it; on error nothing is left behind. Its mode is ``0600`` if ``private``, else that
    of the existing ``target`` or, for a new file, ``0666`` minus the umask (as ``open`` gives)."""
    directory = target.parent if str(target.parent) else Path(".")
    prefix, suffix = temp_name_parts(target)
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    try:
        if not private:
            try:
                mode = stat.S_IMODE(os.stat(target).st_mode)
            except OSError:
                mode = 0o666 & ~_umask()
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return Path(tmp)


def fsync_dir(directory: Path) -> None:
    """``fsync`` a directory (makes a rename durable); a no-op where directories cannot be
    opened."""
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


def _unlink_quietly(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def atomic_write(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` atomically: temporary file + fsync + ``os.replace`` + directory
    fsync. A process killed at any instant leaves the previous file or the new one, never a
    partial one (at worst a stray temporary, see :func:`clean_stale_temps`). ``private``: mode
    0600 (see :func:`write_temp`)."""
    target = Path(path)
    tmp: Path | None = None
    try:
        tmp = write_temp(target, data, private=private)
        os.replace(tmp, target)
    except BaseException:
        if tmp is not None:
            _unlink_quietly(tmp)
        raise
    fsync_dir(target.parent if str(target.parent) else Path("."))


def clean_stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries a killed writer of ``path`` left behind (regular files named
    ``.<name>.*.tmp`` in its directory); return them."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    prefix, suffix = temp_name_parts(target)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for e in entries:
        if e.name.startswith(prefix) and e.name.endswith(suffix) and len(e.name) > len(prefix):
            try:
                if e.is_file(follow_symlinks=False):
                    os.unlink(e.path)
                    removed.append(Path(e.path))
            except OSError:
                pass
    return removed


def check_writable(path: str | os.PathLike[str]) -> None:
    """Refuse, before a run, a checkpoint that could not be written: its directory (created
    if missing) must accept a new file. Raise :class:`CheckpointError` naming the path."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = write_temp(target, b"", private=True)
    except OSError as exc:
        raise CheckpointError(
            f"checkpoint {target}: cannot write in {directory} ({exc.strerror or exc})"
        ) from exc
    _unlink_quietly(probe)


def save_checkpoint(
    path: str | os.PathLike[str],
    identity: dict[str, Any],
    settings: dict[str, Any],
    state: dict[str, Any],
) -> None:
    """Write the checkpoint atomically (temp file + fsync + rename + directory fsync). An
    ``OSError`` (disk full, file-size limit, permission) is re-raised naming the checkpoint."""
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
    try:
        (target.parent if str(target.parent) else Path(".")).mkdir(parents=True, exist_ok=True)
        atomic_write(target, text.encode("utf-8"), private=True)
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot write checkpoint {target}: {exc.strerror or exc}"
        ) from exc


def _read_capped(p: Path) -> str:
    """The file's text; refuse what is not a regular file (a FIFO or ``/dev/zero`` behind a
    symlink would block or never end) or is larger than :data:`MAX_BYTES`."""
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"checkpoint {p} is not a regular file; refusing it")
        with open(p, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"checkpoint {p}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > MAX_BYTES:
        raise CheckpointError(
            f"checkpoint {p} is larger than {MAX_BYTES} bytes; refusing it (not a checkpoint)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CheckpointError(f"checkpoint {p} is corrupt (not UTF-8 text); refusing it") from exc


def load_checkpoint(path: str | os.PathLike[str], identity: dict[str, Any]) -> dict[str, Any]:
    """Read and verify a checkpoint; return its ``state``. Raise :class:`CheckpointError`
    (naming the file) if the file is unreadable, corrupt or belongs to a different run."""
    p = Path(path)
    raw = _read_capped(p)
    try:
        doc = json.loads(raw)
    except RecursionError as exc:
        raise CheckpointError(
            f"checkpoint {p} is corrupt (JSON nested too deeply); refusing it"
        ) from exc
    except ValueError as exc:  # JSONDecodeError, or an integer beyond Python's digit limit
        raise CheckpointError(
            f"checkpoint {p} is corrupt (not valid JSON: {exc}); refusing it"
        ) from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {p} is not a softnce Monte Carlo checkpoint; refusing it"
        )
    if doc.get("format_version") != FORMAT_VERSION or isinstance(doc.get("format_version"), bool):
        raise CheckpointError(
            f"checkpoint {p} has format version {_short(doc.get('format_version'))}, "
            f"this engine writes {FORMAT_VERSION}; refusing it"
        )
    body = {k: doc.get(k) for k in ("format", "format_version", "identity", "settings", "state")}
    try:
        digest = _digest(body)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {p} is corrupt ({exc}); refusing it") from exc
    if doc.get("sha256") != digest:
        raise CheckpointError(f"checkpoint {p} is corrupt (checksum mismatch); refusing it")
    stored, state = doc.get("identity"), doc.get("state")
    if not isinstance(stored, dict) or not isinstance(state, dict):
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
    return state


def _short(x: Any, limit: int = 80) -> str:
    try:
        s = _canonical(x)
    except (ValueError, RecursionError):
        return "<not JSON-printable>"
    return s if len(s) <= limit else s[: limit - 3] + "..."
