"""Layer 2: high-precision oracles (mpmath) and the Monte Carlo engine.

``numerics/<family>.py`` holds the mpmath reference for each loss family, written straight from
the paper's formula (not lambdified from SymPy, sharing no code with the torch losses), plus the
precise legs of that family's claims, registered in the module's ``PRECISE`` registry.
This package may import ``derivations`` but never ``softnce_theory``.
"""

from __future__ import annotations

import importlib

from softnce_theory.derivations import FAMILIES, LegRegistry


def precise_registry() -> LegRegistry:
    """All families' precise legs merged into one registry."""
    reg = LegRegistry("precise")
    for fam in FAMILIES:
        mod = importlib.import_module(f"softnce_theory.numerics.{fam}")
        sub = getattr(mod, "PRECISE", None)
        if sub is not None:
            reg.merge(sub)
    return reg


def definition_registry() -> LegRegistry:
    """All families' definition legs (SymPy definition vs oracle), keyed by definition id."""
    reg = LegRegistry("definition")
    for fam in FAMILIES:
        mod = importlib.import_module(f"softnce_theory.numerics.{fam}")
        sub = getattr(mod, "DEFINITION", None)
        if sub is not None:
            reg.merge(sub)
    return reg


__all__ = ["definition_registry", "precise_registry"]
