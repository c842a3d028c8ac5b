"""Resolve ``MODULE:CALLABLE`` or ``path/to/file.py:CALLABLE`` to a Python object.

The only code this runs is the import of the named module or file (that is the request);
nothing from the target string is evaluated. ``CALLABLE`` may be a dotted attribute path
(``Class.method``, ``module_attr.fn``); every part must be a Python identifier.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any


def _split(spec: str) -> tuple[str, list[str]]:
    mod, sep, attr = spec.rpartition(":")
    if not sep or not mod or not attr:
        raise ValueError(
            f"target must be MODULE:CALLABLE or path/to/file.py:CALLABLE, got {spec!r}"
        )
    parts = attr.split(".")
    if not all(p.isidentifier() for p in parts):
        raise ValueError(f"CALLABLE must be a dotted Python identifier, got {attr!r}")
    return mod, parts


def _is_path(mod: str) -> bool:
    return mod.endswith(".py") or "/" in mod or (os.sep != "/" and os.sep in mod)


def _import_file(path_str: str) -> Any:
    path = Path(path_str).expanduser().resolve()
    if not path.is_file():
        raise ValueError(f"no such file: {path_str}")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"_softnce_audit_target_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path_str} as a Python module")
    module = importlib.util.module_from_spec(spec)
    parent = str(path.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)  # sibling imports of the file work as when run as a script
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise ValueError(f"importing {path_str} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _import_module(mod: str) -> Any:
    if not all(p.isidentifier() for p in mod.split(".")):
        raise ValueError(f"MODULE must be a dotted Python module name or a .py path, got {mod!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)  # as `python -m` would: modules of the current project import
    try:
        return importlib.import_module(mod)
    except ImportError as exc:
        raise ValueError(f"cannot import module {mod!r}: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"importing {mod!r} failed: {type(exc).__name__}: {exc}") from exc


def load_target(spec: str) -> Any:
    """Import and return the object named by ``spec`` (``ValueError`` with a clear message)."""
    mod, parts = _split(spec)
    obj = _import_file(mod) if _is_path(mod) else _import_module(mod)
    where = mod
    for p in parts:
        try:
            obj = getattr(obj, p)
        except AttributeError:
            raise ValueError(f"{where} has no attribute {p!r}") from None
        where = f"{where}:{p}" if where == mod else f"{where}.{p}"
    return obj


__all__ = ["load_target"]
