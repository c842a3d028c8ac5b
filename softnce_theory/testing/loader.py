"""Resolve ``MODULE:CALLABLE`` or ``path/to/file.py:CALLABLE`` to a Python object.

The only code this runs is the import of the named module or file (that is the request);
nothing from the target string is evaluated. ``CALLABLE`` may be a dotted attribute path
(``Class.method``, ``module_attr.fn``); every part must be a Python identifier.

**The toolkit cannot be shadowed by the target's neighbours.** Before any user path is put on
``sys.path``, the toolkit's own modules and dependencies (:data:`TOOLKIT_MODULES`: mpmath, SymPy,
NumPy, torch, Hypothesis, ``derivations``, ``numerics`` with its reference oracles, the suite)
are imported, so ``sys.modules`` already holds the real ones; and the target's directory (or
the current directory, for ``MODULE:CALLABLE``) is **appended** to ``sys.path``, never
prepended, so a sibling ``mpmath.py`` or ``numerics/`` cannot replace an installed module
imported later either. The target's own sibling imports (``import helpers``) still work,
unless a sibling's name collides with an installed module, which then wins.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

#: imported before any user path is added to ``sys.path`` (see the module docstring)
TOOLKIT_MODULES: tuple[str, ...] = (
    "mpmath",
    "sympy",
    "numpy",
    "scipy",
    "torch",
    "hypothesis",
    "softnce_theory.derivations",
    "softnce_theory.numerics",
    "softnce_theory.testing.references",
    "softnce_theory.testing.core",
    "softnce_theory.testing.families",
    "softnce_theory.testing.generic",
    "softnce_theory.testing.contracts",
    "softnce_theory.testing.adapters",
    "softnce_theory.testing.suite",
)


def preload_toolkit() -> None:
    """Import :data:`TOOLKIT_MODULES` (and the reference oracles' modules) now, while
    ``sys.path`` holds no user directory; an optional one that is not installed is skipped."""
    for name in TOOLKIT_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a toolkit module whose own import fails: that is a bug
                raise
    from softnce_theory.testing.references import ORACLES

    for modname, _, _ in ORACLES.values():  # the reference oracles themselves
        importlib.import_module(modname)


def _append_path(entry: str) -> None:
    """Put ``entry`` at the **end** of ``sys.path`` (installed modules keep precedence)."""
    if entry not in sys.path:
        sys.path.append(entry)


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
    _append_path(str(path.parent))  # sibling imports of the file work, after the toolkit's
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
    if "" not in sys.path:
        _append_path(cwd)  # modules of the current project import, after the toolkit's
    try:
        return importlib.import_module(mod)
    except ImportError as exc:
        raise ValueError(f"cannot import module {mod!r}: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"importing {mod!r} failed: {type(exc).__name__}: {exc}") from exc


def load_target(spec: str) -> Any:
    """Import and return the object named by ``spec`` (``ValueError`` with a clear message)."""
    mod, parts = _split(spec)
    preload_toolkit()  # before any user directory is on sys.path
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
