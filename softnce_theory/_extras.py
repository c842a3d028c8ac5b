"""Optional dependencies: which extra provides which module, and a one-line error naming it.

The core install (``pip install softnce-theory``) is torch + numpy: enough for
:mod:`softnce_theory.losses`. The rest comes with extras: ``[verify]`` (sympy, mpmath, scipy,
rich: the engine, the oracles, ``softnce verify/claims/mc``), ``[plots]`` (matplotlib),
``[testing]`` (hypothesis: the audit kit and its pytest fixture), ``[all]``.
"""

from __future__ import annotations

import importlib.util

#: top-level module -> the extra that installs it
EXTRA_OF: dict[str, str] = {
    "sympy": "verify",
    "mpmath": "verify",
    "scipy": "verify",
    "rich": "verify",
    "matplotlib": "plots",
    "PIL": "plots",
    "hypothesis": "testing",
    "jsonschema": "test",
}


def missing_message(module: str, what: str = "this") -> str | None:
    """The one-line message for a missing optional ``module`` (None if it is not optional)."""
    root = module.split(".")[0]
    extra = EXTRA_OF.get(root)
    if extra is None:
        return None
    return f"{what} needs {root}, which is not installed: pip install 'softnce-theory[{extra}]'"


def require(what: str, *modules: str) -> None:
    """Raise ``ModuleNotFoundError`` with :func:`missing_message` if a module is missing."""
    for m in modules:
        try:
            found = importlib.util.find_spec(m) is not None
        except ImportError:
            found = False
        if not found:
            raise ModuleNotFoundError(missing_message(m, what), name=m)
