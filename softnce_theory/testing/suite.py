"""The property-suite runner: audit a loss against a contract and report.

:func:`check_loss` is the entry point. Each property is a Hypothesis test run with explicit
settings (``max_examples``, ``seed``, ``deadline=None``, ``database=None``, no ``explain``
phase); a failure is shrunk by Hypothesis and reported as the minimal counterexample plus the
value or gradient discrepancy (as a sentence and as numbers). The contracts come from
:mod:`softnce_theory.testing.contracts` (hand-written ones and those generated from a family's
:class:`~softnce_theory.registry.LossSpec`); the shared types from
:mod:`softnce_theory.testing.core`, re-exported here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

from softnce_theory.testing import adapters as _adapters
from softnce_theory.testing.contracts import get_contract
from softnce_theory.testing.core import (
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_SEED,
    SHRINK_BUDGET_S,
    TIER_CHOICES,
    Arg,
    AuditReport,
    Caller,
    Contract,
    Discrepancy,
    KitError,
    Property,
    PropertyResult,
    check_grads,
    check_value,
    run_property,
    target_name,
    value_tolerance,
)


def check_loss(
    fn: Callable[..., Any] | None,
    family: str,
    *,
    max_examples: int | None = None,
    seed: int | None = DEFAULT_SEED,
    adapter: str | None = None,
    properties: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    shrink_budget: float = SHRINK_BUDGET_S,
    tier: str = "all",
) -> AuditReport:
    """Audit ``fn`` against the property suite of ``family``.

    Args:
        fn: the loss, following the family's contract (see ``docs/audit.md``), or a peer
            object when ``adapter`` names an adapter that maps it onto the contract. ``None``
            audits the ``torch_fn`` of a family declared from its definition.
        family: an audit contract: one of ``registry().contracts()`` or the name of a
            registered family declared with a :class:`~softnce_theory.registry.LossSpec`.
        max_examples: Hypothesis examples per property (default :data:`DEFAULT_MAX_EXAMPLES`).
        seed: Hypothesis seed (default 0: reproducible); ``None`` uses ``derandomize=True``.
        adapter: name of an adapter in :mod:`softnce_theory.testing.adapters`.
        properties: run only these properties (names); ``skip``: leave these out.
        shrink_budget: seconds of shrinking per failing property.
        tier: which failures fail the report: ``"all"`` (default) or ``"correctness"``
            (robustness-policy findings are still run and reported).

    Returns:
        An :class:`AuditReport`: per property pass/fail, the shrunk counterexample and the
        discrepancy. Findings never raise; bad arguments raise ``ValueError``.
    """
    fam = get_contract(family)
    if max_examples is None:
        max_examples = DEFAULT_MAX_EXAMPLES
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an int >= 1, got {max_examples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    if tier not in TIER_CHOICES:
        raise ValueError(f"tier must be one of {tuple(TIER_CHOICES)}, got {tier!r}")
    if fn is None:
        fn = fam.default_target()
    target = target_name(fn)
    call = _adapters.adapt(fn, adapter, fam.name) if adapter else fn
    if not callable(call):
        raise ValueError(f"{target} is not callable")
    caller = fam.caller(call)
    props = fam.properties()
    names = [p.name for p in props]
    for n in [*(properties or ()), *skip]:
        if n not in names:
            raise ValueError(f"family {fam.name} has no property {n!r}; properties: {names}")
    if properties:
        props = [p for p in props if p.name in properties]
    props = [p for p in props if p.name not in skip]
    report = AuditReport(
        family=fam.name,
        target=target,
        adapter=adapter,
        max_examples=max_examples,
        seed=seed,
        reference=fam.reference_name(),
        tier=tier,
        independent=fam.independent,
    )
    t0 = time.perf_counter()
    smoke = _smoke(caller, fam)
    for p in props:
        if smoke is not None:
            report.results.append(
                PropertyResult(
                    p.name,
                    p.kind,
                    p.description,
                    "error",
                    0,
                    0.0,
                    fam.smoke_example(),
                    smoke,
                    tier=p.tier,
                    numbers={"kind": "exception"},
                )
            )
            continue
        report.results.append(
            run_property(
                p, caller, max_examples=max_examples, seed=seed, shrink_budget=shrink_budget
            )
        )
    report.seconds = time.perf_counter() - t0
    return report


def _smoke(caller: Caller, fam: Contract) -> str | None:
    """Call the loss once on a plain example; a crash here is reported once, not shrunk 10 times."""
    try:
        with torch.no_grad():
            caller.call(caller.tensors(fam.smoke_example()))
    except Discrepancy as exc:
        if exc.kind in ("exception", "contract"):
            return f"the loss cannot be called per the {fam.name} contract: {exc.message}"
    return None


def report_json(report: AuditReport) -> str:
    return json.dumps(report.to_json(), indent=2)


__all__ = [
    "DEFAULT_MAX_EXAMPLES",
    "DEFAULT_SEED",
    "Arg",
    "AuditReport",
    "Caller",
    "Discrepancy",
    "KitError",
    "Property",
    "PropertyResult",
    "check_grads",
    "check_loss",
    "check_value",
    "report_json",
    "run_property",
    "value_tolerance",
]
