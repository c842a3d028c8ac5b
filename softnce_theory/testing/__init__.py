"""Testing kit: guard any contrastive loss with property tests.

* :mod:`~softnce_theory.testing.strategies` -- Hypothesis strategies (logits, simplex targets,
  labelled embeddings, temperatures, noise distributions), composable with ``@given``;
* :func:`check_loss` -- run a family's property suite against a loss and get an
  :class:`AuditReport` (per property pass/fail, shrunk counterexample, discrepancy);
* :mod:`~softnce_theory.testing.adapters` -- map peer libraries onto the contracts;
* the pytest plugin (entry point ``softnce``): the ``softnce_audit`` fixture;
* the CLI: ``softnce audit MODULE:CALLABLE --family F``;
* :func:`check_distributed` (``--world-size W``, ``softnce_audit(..., world_size=W)``): the
  distributed audit of a loss run on W gloo ranks (DDP's convention, bug diagnoses).

The contract names are not kept here: ``FAMILY_NAMES`` is ``registry().contracts()`` and
``DISTRIBUTED_FAMILIES`` is ``registry().distributed()`` (:mod:`softnce_theory.registry`), read
when asked for, so families registered later (``load_plugin``) are included.

Module layout (no module imports one that imports it back; ``tests/test_testing_kit.py``
checks the graph): ``core`` (shared types) <- ``families`` / ``generic`` (the contracts) <-
``contracts`` (name -> implementation) <- ``suite`` (``check_loss``) <- ``distributed``,
``plugin``.

Attributes are imported lazily, so importing this package (as the pytest plugin does) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "check_loss": "suite",
    "AuditReport": "core",
    "PropertyResult": "core",
    "Property": "core",
    "Discrepancy": "core",
    "FAMILIES": "families",
    "get_contract": "contracts",
    "audit_names": "contracts",
    "ADAPTERS": "adapters",
    "adapt": "adapters",
    "load_target": "loader",
    "check_distributed": "distributed",
}
_SUBMODULES = (
    "core",
    "strategies",
    "suite",
    "families",
    "generic",
    "contracts",
    "references",
    "adapters",
    "loader",
    "plugin",
    "distributed",
)


def __getattr__(name: str) -> Any:
    if name == "FAMILY_NAMES":
        return importlib.import_module(f"{__name__}.contracts").contract_names()
    if name == "DISTRIBUTED_FAMILIES":
        return importlib.import_module(f"{__name__}.contracts").distributed_names()
    if name == "ADAPTER_NAMES":
        return tuple(importlib.import_module(f"{__name__}.adapters").ADAPTERS)
    if name == "get_family":  # the former name of get_contract
        return importlib.import_module(f"{__name__}.contracts").get_contract
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ADAPTERS",
    "ADAPTER_NAMES",
    "DISTRIBUTED_FAMILIES",
    "FAMILIES",
    "FAMILY_NAMES",
    "AuditReport",
    "PropertyResult",
    "adapt",
    "audit_names",
    "check_distributed",
    "check_loss",
    "get_contract",
    "get_family",
    "load_target",
    "strategies",
]
