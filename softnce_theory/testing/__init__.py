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

Attributes are imported lazily, so importing this package (as the pytest plugin does) does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from softnce_theory.testing._names import ADAPTER_NAMES, FAMILY_NAMES

_LAZY = {
    "check_loss": "suite",
    "AuditReport": "suite",
    "PropertyResult": "suite",
    "Property": "suite",
    "Discrepancy": "suite",
    "FAMILIES": "families",
    "get_family": "families",
    "ADAPTERS": "adapters",
    "adapt": "adapters",
    "load_target": "loader",
    "check_distributed": "distributed",
}
_SUBMODULES = (
    "strategies",
    "suite",
    "families",
    "references",
    "adapters",
    "loader",
    "plugin",
    "distributed",
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ADAPTERS",
    "ADAPTER_NAMES",
    "FAMILIES",
    "FAMILY_NAMES",
    "AuditReport",
    "PropertyResult",
    "adapt",
    "check_distributed",
    "check_loss",
    "get_family",
    "load_target",
    "strategies",
]
