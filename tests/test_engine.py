"""The engine's honesty contract: false claims come out refuted, numeric-only claims checked."""

import numpy as np
import sympy as sp

from derivations import CheckConfig, Claim, LegRegistry, Proof, Tally, all_claims
from softnce_theory.engine import check_claim, status_of

x = sp.Symbol("x", positive=True)
CFG = CheckConfig(quick=True)


def _claim(cid, evidence, prove=None, statement=lambda: sp.Eq(sp.log(x**2), 2 * sp.log(x))):
    return Claim(
        id=cid,
        family="test",
        kind="identity",
        text="test claim",
        statement=statement,
        source="test",
        assumptions=("x > 0",),
        evidence=evidence,
        prove=prove,
    )


def test_false_claim_is_refuted_with_counterexample():
    """log(1+x) >= x is false for x > 0; the precise leg must find it."""
    claim = _claim("test.false", ("precise",))
    reg = LegRegistry("precise")

    @reg.register("test.false")
    def _leg(cfg):
        tally = Tally("precise", rtol=0, atol=0)
        for v in np.linspace(0.1, 3, 20):
            tally.holds(np.log1p(v) - v, f"x={v:.3f}")
        return tally.result()

    r = check_claim(claim, CFG, precise=reg, production=LegRegistry("production"))
    assert r.status == "refuted"
    assert r.counterexample is not None and "x=0.100" in r.counterexample


def test_true_claim_without_proof_is_checked_not_proved():
    """x >= log(1+x): true, but only numeric evidence is offered."""
    claim = _claim("test.numeric_only", ("precise",))
    reg = LegRegistry("precise")

    @reg.register("test.numeric_only")
    def _leg(cfg):
        tally = Tally("precise", rtol=0, atol=0)
        for v in np.linspace(0.0, 3, 20):
            tally.holds(v - np.log1p(v), f"x={v}")
        return tally.result()

    r = check_claim(claim, CFG, precise=reg, production=LegRegistry("production"))
    assert r.status == "checked"


def test_unclosed_proof_attempt_never_proves():
    claim = _claim(
        "test.unclosed", ("symbolic", "precise"), prove=lambda: Proof(False, "tried", "general")
    )

    def leg(cfg):
        t = Tally("precise", rtol=1e-12)
        t.close(np.log(4.0), 2 * np.log(2.0), "x=2")
        return t.result()

    reg2 = LegRegistry("precise")
    reg2.register("test.unclosed")(leg)
    r = check_claim(claim, CFG, precise=reg2, production=LegRegistry("production"))
    assert r.status == "checked"


def test_symbolic_proof_gives_proved():
    def prove():
        return Proof(
            sp.simplify(sp.expand_log(sp.log(x**2)) - 2 * sp.log(x)) == 0, "expand_log", "x > 0"
        )

    claim = _claim("test.proved", ("symbolic",), prove=prove)
    r = check_claim(
        claim, CFG, precise=LegRegistry("precise"), production=LegRegistry("production")
    )
    assert r.status == "proved"


def test_missing_required_leg_is_error_and_raising_leg_is_error():
    claim = _claim("test.missing", ("precise", "production"))
    reg = LegRegistry("precise")

    @reg.register("test.missing")
    def _boom(cfg):
        raise RuntimeError("broken check")

    r = check_claim(claim, CFG, precise=reg, production=LegRegistry("production"))
    assert r.status == "error"
    assert any("broken check" in leg.detail for leg in r.legs)
    assert status_of(claim, []) == "error"


def test_every_catalogue_claim_is_well_formed():
    for c in all_claims():
        assert c.text and c.source and c.evidence
        c.statement()  # builds
