"""Layer 1: pure SymPy. Symbolic definitions and the claim catalogue, one module per family.

Each family module ``derivations/<family>.py`` (installed as ``softnce_theory.derivations``)
defines its SymPy objects, a ``DEFINITIONS`` tuple and a ``CLAIMS`` tuple of
:class:`~softnce_theory.derivations._claim.Claim`. Which families exist is declared once, in the
family registry (:mod:`softnce_theory.registry`, layer 3); this package imports nothing from
``numerics`` or the rest of ``softnce_theory``.
"""

from __future__ import annotations

from softnce_theory.derivations._claim import (
    KINDS,
    LEGS,
    CheckConfig,
    Claim,
    Definition,
    LegRegistry,
    LegResult,
    Proof,
    Tally,
)

__all__ = [
    "KINDS",
    "LEGS",
    "CheckConfig",
    "Claim",
    "Definition",
    "LegRegistry",
    "LegResult",
    "Proof",
    "Tally",
]
