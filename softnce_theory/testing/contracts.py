"""Which audit contracts exist: the family registry decides, the kit implements.

Every registered family lists the audit contracts it owns (``Family.contracts``), and a family
declared from its definition (``Family.spec``, a :class:`~softnce_theory.registry.LossSpec`)
also gets the generic contract of :mod:`softnce_theory.testing.generic` under its own name.
This module resolves a name to its implementation: the hand-written contracts of
:mod:`softnce_theory.testing.families` (keyed by contract name) or the generic one. Nothing
here keeps a list of names.

Importing this module costs no torch or Hypothesis import (only :func:`get_contract` loads the
implementations), so the CLI parser and the pytest plugin can use the names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from softnce_theory.registry import registry

if TYPE_CHECKING:
    from softnce_theory.testing.core import Contract


def contract_names() -> tuple[str, ...]:
    """The audit contracts the registered families declare (``registry().contracts()``)."""
    return registry().contracts()


def audit_names() -> tuple[str, ...]:
    """Every name ``softnce audit --family`` accepts: the declared contracts, then each family
    declared from its definition (its generic contract), in registry order."""
    reg = registry()
    names = list(reg.contracts())
    names += [f.name for f in reg if f.spec is not None and f.name not in names]
    return tuple(names)


def distributed_names() -> tuple[str, ...]:
    """The contracts with a distributed audit (``registry().distributed()``)."""
    return registry().distributed()


def get_contract(name: str) -> Contract:
    """The implementation of audit contract ``name`` (``ValueError`` naming the choices)."""
    reg = registry()
    declared = reg.contracts()
    spec_families = {f.name: f for f in reg if f.spec is not None}
    if name in declared:
        from softnce_theory.testing.families import FAMILIES

        if name in FAMILIES:
            return FAMILIES[name]
        owner = reg.owner("contracts", name)
        if name not in spec_families:
            raise ValueError(
                f"contract {name!r} of family {owner.name} ({registry().origin(owner.name)}) has no "
                "implementation in softnce_theory.testing; a family declared from its "
                "definition (Family.spec) gets the generic contract under its own name"
            )
    if name in spec_families:
        from softnce_theory.testing.generic import contract_for

        return contract_for(spec_families[name])
    raise ValueError(f"unknown family {name!r}; expected one of {audit_names()}")


__all__ = ["audit_names", "contract_names", "distributed_names", "get_contract"]
