"""Load one module of an optional peer package (its loss file) for a conventions test.

``pytest.importorskip`` runs the peer's package ``__init__``; lightly's and open_clip's pull in
torchvision, whose binary must match the torch build. Their loss modules need only torch, so
:func:`peer_module` first tries the normal import and, when that fails, imports the module from
the installed distribution's files with every package of the peer treated as a bare namespace
(no ``__init__`` run; modules load from their files as they ship). Nothing of the peer is copied
into this repository. Skips the test when the peer is not installed or the module still needs
what is missing.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest


class _BarePackages(importlib.abc.MetaPathFinder):
    """Every package below ``root`` named ``top...`` becomes a namespace (no ``__init__``)."""

    def __init__(self, top: str, root: Path) -> None:
        self.top, self.root = top, root

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != self.top and not name.startswith(self.top + "."):
            return None
        folder = self.root.joinpath(*name.split("."))
        if not folder.is_dir():
            return None  # a module: the normal finders load it from the package's __path__
        spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
        spec.submodule_search_locations = [str(folder)]
        return spec


def peer_module(dotted: str) -> Any:
    """The module ``dotted`` of an installed peer (e.g. ``"open_clip.loss"``), or a skip."""
    try:
        return importlib.import_module(dotted)
    except ImportError as exc:
        reason = f"{dotted}: {exc}"
    top = dotted.split(".")[0]
    spec = importlib.util.find_spec(top) if top not in sys.modules else sys.modules[top].__spec__
    if spec is None or not spec.submodule_search_locations:
        pytest.skip(f"peer not installed ({reason})")
    root = Path(next(iter(spec.submodule_search_locations))).parent
    mine = [k for k in sys.modules if k == top or k.startswith(top + ".")]
    for k in mine:  # the half-imported package of the failed attempt
        del sys.modules[k]
    finder = _BarePackages(top, root)
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(dotted)
    except ImportError as exc:
        pytest.skip(f"peer module {dotted} needs more than its own file: {exc}")
    finally:
        sys.meta_path.remove(finder)
