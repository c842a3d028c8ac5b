"""The catalogue as the registry declares it: every family's claims, definitions and legs.

Each function takes an optional list of family names (default: every registered family, in
registry order; see :mod:`softnce_theory.registry`) and merges what the families declare.
"""

from __future__ import annotations

from collections.abc import Iterable

from softnce_theory.derivations import Claim, Definition, LegRegistry
from softnce_theory.derivations._claim import LegName
from softnce_theory.engine._domain import domain_registry
from softnce_theory.registry import Family, registry


def families(names: Iterable[str] | None = None) -> list[Family]:
    """The registered families named in ``names`` (all when empty), in registry order."""
    return registry().select(list(names) if names else None)


def all_claims(names: Iterable[str] | None = None) -> list[Claim]:
    """Every claim of the given families, in catalogue order; claim ids must be unique."""
    out: list[Claim] = []
    for fam in families(names):
        for c in fam.all_claims():
            if c.family != fam.name:
                raise ValueError(f"claim {c.id} is declared by family {fam.name!r}")
            out.append(c)
    ids = [c.id for c in out]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        raise ValueError(f"duplicate claim ids: {sorted(dup)}")
    return out


def all_definitions(names: Iterable[str] | None = None) -> list[Definition]:
    """Every family's SymPy :class:`~softnce_theory.derivations.Definition` objects."""
    return [d for fam in families(names) for d in fam.all_definitions()]


def get_claim(claim_id: str) -> Claim:
    fam = claim_id.split(".", 1)[0]
    if fam in registry():
        for c in all_claims([fam]):
            if c.id == claim_id:
                return c
    raise KeyError(f"no claim with id {claim_id!r}")


def _merged(part: str, leg: LegName, names: Iterable[str] | None) -> LegRegistry:
    reg = LegRegistry(leg)
    for fam in families(names):
        for sub in fam.legs(part):
            reg.merge(sub)
    return reg


def precise_registry(names: Iterable[str] | None = None) -> LegRegistry:
    """The precise (mpmath) legs of the given families, keyed by claim id."""
    return _merged("precise", "precise", names)


def production_registry(names: Iterable[str] | None = None) -> LegRegistry:
    """The production (torch) legs of the given families, keyed by claim id."""
    return _merged("production", "production", names)


def definition_registry(names: Iterable[str] | None = None) -> LegRegistry:
    """The definition legs (SymPy definition vs oracle), keyed by definition id."""
    return _merged("definition_legs", "definition", names)


def conformance_registry(names: Iterable[str] | None = None) -> LegRegistry:
    """The conformance checks (production loss vs oracle, float64), keyed by check name, and
    each family's ``<family>.declared_domain`` check (:mod:`softnce_theory.engine._domain`)."""
    reg = _merged("conformance", "production", names)
    for fam in families(names):
        reg.merge(domain_registry(fam))
    return reg
