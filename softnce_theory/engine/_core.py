"""The engine that joins the symbolic, precise and production legs of every claim.

Status rules (the honesty contract):

* ``refuted``: some leg found a counterexample (``outcome == "fail"``, or a symbolic
  ``Proof(refuted=True)``). The counterexample is printed.
* ``error``: some leg raised, or a leg named in ``claim.evidence`` has no implementation.
* ``proved``: the symbolic leg returned ``Proof(proved=True)`` and every other leg passed.
* ``checked``: numeric legs passed but there is no symbolic proof (none attempted, or the attempt
  did not close). Numeric evidence never yields ``proved``.

Besides the claims, each family registers *conformance* checks (production loss against its
mpmath oracle, value and gradient, float64) that the engine runs and reports alongside.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from derivations import FAMILIES, CheckConfig, Claim, LegRegistry, LegResult, Proof, all_claims
from derivations._claim import LegName, Outcome
from numerics import precise_registry


def production_registry() -> LegRegistry:
    reg = LegRegistry("production")
    for fam in FAMILIES:
        sub = getattr(_engine_module(fam), "PRODUCTION", None)
        if sub is not None:
            reg.merge(sub)
    return reg


def conformance_registry(families: Iterable[str] | None = None) -> dict[str, Callable[..., Any]]:
    out: dict[str, Callable[..., Any]] = {}
    for fam in families or FAMILIES:
        sub = getattr(_engine_module(fam), "CONFORMANCE", None)
        if sub is not None:
            for name in sub:
                fn = sub.get(name)
                assert fn is not None
                out[name] = fn
    return out


def _engine_module(fam: str) -> Any:
    try:
        return importlib.import_module(f"softnce_theory.engine.{fam}")
    except ModuleNotFoundError as exc:
        if exc.name == f"softnce_theory.engine.{fam}":
            return None
        raise


@dataclass
class ClaimResult:
    claim: Claim
    status: str
    legs: list[LegResult] = field(default_factory=list)
    seconds: float = 0.0

    def leg(self, name: str) -> LegResult | None:
        return next((r for r in self.legs if r.leg == name), None)

    @property
    def counterexample(self) -> str | None:
        for r in self.legs:
            if r.outcome == "fail":
                return r.counterexample
        return None

    def to_json(self) -> dict[str, Any]:
        c = self.claim
        return {
            "id": c.id,
            "family": c.family,
            "kind": c.kind,
            "status": self.status,
            "text": c.text,
            "source": c.source,
            "assumptions": list(c.assumptions),
            "evidence_required": list(c.evidence),
            "latex": _safe_latex(c),
            "seconds": round(self.seconds, 4),
            "legs": [r.to_json() for r in self.legs],
        }


def _safe_latex(c: Claim) -> str:
    try:
        return c.latex()
    except Exception as exc:  # a broken statement is reported, not fatal to the run
        return f"<statement failed to build: {exc!r}>"


def status_of(claim: Claim, legs: list[LegResult]) -> str:
    """Combine leg outcomes into a status (see the module docstring)."""
    by = {r.leg: r for r in legs}
    if any(r.outcome == "fail" for r in legs):
        return "refuted"
    if any(r.outcome == "error" for r in legs):
        return "error"
    for need in claim.evidence:
        if need not in by or by[need].outcome == "skip":
            if need == "symbolic":
                continue  # an unclosed proof attempt downgrades to "checked", never errors
            return "error"
    sym = by.get("symbolic")
    numeric_ok = [r for r in legs if r.leg != "symbolic" and r.outcome == "pass"]
    if sym is not None and sym.outcome == "pass" and sym.proof is not None and sym.proof.proved:
        return "proved"
    if numeric_ok:
        return "checked"
    return "error"


def _timed(leg: LegName, fn: Callable[[], LegResult]) -> LegResult:
    t0 = time.perf_counter()
    try:
        res = fn()
    except Exception as exc:
        res = LegResult(
            leg=leg,
            outcome="error",
            detail=f"{type(exc).__name__}: {exc}",
            extra={"traceback": traceback.format_exc(limit=6)},
        )
    res.seconds = time.perf_counter() - t0
    return res


def run_symbolic(claim: Claim) -> LegResult:
    assert claim.prove is not None
    proof: Proof = claim.prove()
    outcome: Outcome
    if proof.refuted:
        outcome = "fail"
    elif proof.proved:
        outcome = "pass"
    else:
        outcome = "skip"  # attempted, did not close: no evidence either way
    return LegResult(
        leg="symbolic",
        outcome=outcome,
        detail=proof.method + (f" ({proof.detail})" if proof.detail else ""),
        counterexample=proof.counterexample,
        proof=proof,
    )


def check_claim(
    claim: Claim,
    cfg: CheckConfig,
    precise: LegRegistry | None = None,
    production: LegRegistry | None = None,
) -> ClaimResult:
    """Run every available leg of one claim and combine them into a status."""
    precise = precise if precise is not None else precise_registry()
    production = production if production is not None else production_registry()
    t0 = time.perf_counter()
    legs: list[LegResult] = []
    if claim.prove is not None:
        legs.append(_timed("symbolic", partial(run_symbolic, claim)))
    legs_by: tuple[tuple[LegName, LegRegistry], ...] = (
        ("precise", precise),
        ("production", production),
    )
    for name, reg in legs_by:
        fn = reg.get(claim.id)
        if fn is not None:
            legs.append(_timed(name, partial(fn, cfg)))
        elif name in claim.evidence:
            legs.append(
                LegResult(leg=name, outcome="error", detail=f"required {name} leg not implemented")
            )
    return ClaimResult(claim, status_of(claim, legs), legs, time.perf_counter() - t0)


def select_claims(
    families: list[str] | None = None, claim_ids: list[str] | None = None
) -> list[Claim]:
    if families:
        bad = [f for f in families if f not in FAMILIES]
        if bad:
            raise ValueError(f"--family must be one of {FAMILIES}; got {bad}")
    claims = all_claims(families)
    if claim_ids:
        known = {c.id for c in claims}
        missing = [i for i in claim_ids if i not in known]
        if missing:
            raise ValueError(f"--claim: unknown claim id(s) {missing}; see `softnce claims`")
        claims = [c for c in claims if c.id in set(claim_ids)]
    return claims


def run_conformance(cfg: CheckConfig, families: list[str] | None = None) -> dict[str, LegResult]:
    """Production losses against their mpmath oracles (float64, value and gradient)."""
    out = {}
    for name, fn in conformance_registry(families).items():
        out[name] = _timed("production", partial(fn, cfg))
    return out
