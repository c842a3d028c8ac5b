"""Layer 1: pure SymPy. Symbolic definitions and the claim catalogue, one module per family.

Each family module ``derivations/<family>.py`` defines its SymPy objects and a ``CLAIMS`` tuple
of :class:`~derivations._claim.Claim`. This package imports nothing from ``numerics`` or
``softnce_theory``.
"""

from __future__ import annotations

import importlib

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

#: Loss families, in the order reports list them. The same names are used for
#: ``numerics/<family>.py``, ``softnce_theory/losses/<family>.py`` and
#: ``softnce_theory/engine/<family>.py``.
FAMILIES: tuple[str, ...] = (
    "infonce",
    "soft_target_infonce",
    "cross_entropy",
    "sincere",
    "aljundi",
    "collision_ce",
)


def family_module(family: str):
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return importlib.import_module(f"softnce_theory.derivations.{family}")


def all_claims(families: tuple[str, ...] | list[str] | None = None) -> list[Claim]:
    """Every claim of the given families (default: all), in catalogue order."""
    out: list[Claim] = []
    for fam in families or FAMILIES:
        out.extend(getattr(family_module(fam), "CLAIMS", ()))
    ids = [c.id for c in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"duplicate claim ids: {sorted(dup)}")
    return out


def all_definitions(families: tuple[str, ...] | list[str] | None = None) -> list[Definition]:
    """Every family's SymPy :class:`Definition` objects (``DEFINITIONS`` in its module)."""
    out: list[Definition] = []
    for fam in families or FAMILIES:
        out.extend(getattr(family_module(fam), "DEFINITIONS", ()))
    return out


def get_claim(claim_id: str) -> Claim:
    fam = claim_id.split(".", 1)[0]
    for c in all_claims([fam]):
        if c.id == claim_id:
            return c
    raise KeyError(f"no claim with id {claim_id!r}")


__all__ = [
    "FAMILIES",
    "KINDS",
    "LEGS",
    "CheckConfig",
    "Claim",
    "Definition",
    "LegRegistry",
    "LegResult",
    "Proof",
    "Tally",
    "all_claims",
    "all_definitions",
    "family_module",
    "get_claim",
]
