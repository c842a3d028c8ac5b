"""The engine's honesty contract, tested through the public claim API.

Each case here is a way a status could be earned without being deserved; each must fail to reach
``proved`` (and, where no honest evidence is left, ``checked``). The reviewers' reproductions
from issue 11 are kept as regression tests.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sympy as sp

from softnce_theory.derivations import (
    CheckConfig,
    Claim,
    Definition,
    LegRegistry,
    LegResult,
    Tally,
)
from softnce_theory.derivations import lemmas as L
from softnce_theory.derivations.tactics import (
    Differentiate,
    Exact,
    Instances,
    LemmaUse,
    Reduction,
    Sign,
    Simplify,
    index_facts,
)
from softnce_theory.engine import all_claims, check_claim, status_of

x = sp.Symbol("x", positive=True)
K = sp.Symbol("K", integer=True, positive=True)
k = sp.Symbol("k", integer=True)
m = sp.Symbol("m", integer=True)
y = sp.IndexedBase("y", nonnegative=True)
s = sp.IndexedBase("sigma", positive=True)
z = sp.IndexedBase("z", real=True)
CFG = CheckConfig(quick=True)
NO_PRECISE, NO_PRODUCTION = LegRegistry("precise"), LegRegistry("production")


def _claim(cid, statement, *, tactic=None, evidence=("symbolic",), facts=None, kind="identity"):
    return Claim(
        id=f"test.{cid}",
        family="test",
        kind=kind,
        text="test claim",
        statement=statement,
        source="test",
        evidence=evidence,
        tactic=tactic,
        facts=facts,
    )


def _status(claim, precise=NO_PRECISE, production=NO_PRODUCTION, definitions=None):
    return check_claim(claim, CFG, precise=precise, production=production, definitions=definitions)


def _passing_leg(name="precise", n=3):
    def leg(cfg):
        t = Tally(name, rtol=1e-12)
        for v in np.linspace(0.5, 2.0, n):
            t.close(np.log(v * v), 2 * np.log(v), f"x={v}")
        return t.result()

    return leg


# ----------------------------------------------------------------------------- the good path


def test_engine_proves_a_true_identity_from_its_statement():
    c = _claim(
        "log_square", lambda: sp.Eq(sp.log(x**2), 2 * sp.log(x)), tactic=Simplify(("expand_log",))
    )
    r = _status(c)
    assert r.status == "proved"
    assert r.leg("symbolic").proof.scope_kind == "general"


def test_engine_differentiates_the_definition_itself():
    lse = sp.log(sp.Sum(sp.exp(z[k]), (k, 1, K)))
    p_m = sp.exp(z[m]) / sp.Sum(sp.exp(z[k]), (k, 1, K))
    c = _claim(
        "lse_grad",
        lambda: sp.Eq(sp.Derivative(lse, z[m]), p_m),
        tactic=Differentiate(("doit", ("in_range", K, m))),
        facts=lambda: index_facts(K, m),
    )
    assert _status(c).status == "proved"


# ----------------------------------------------------------------------------- issue 11 item 7


def test_valid_certificate_on_a_false_statement_is_not_proved():
    """The reviewers' case: the true Jensen reduction of H2 <= H attached to H2 >= H."""
    h2 = -sp.log(sp.Sum(y[k] * s[k], (k, 1, K)))
    h = -sp.Sum(y[k] * sp.log(s[k]), (k, 1, K))
    cert = Reduction(
        uses=(LemmaUse(L.JENSEN_LOG, {"n": K, "w": lambda i: y[i], "x": lambda i: s[i]}),)
    )
    facts = lambda: (sp.Eq(sp.Sum(y[k], (k, 1, K)), 1),)  # noqa: E731
    true_claim = _claim(
        "jensen_true", lambda: sp.Le(h2, h), tactic=cert, facts=facts, kind="inequality"
    )
    false_claim = _claim(
        "jensen_false", lambda: sp.Ge(h2, h), tactic=cert, facts=facts, kind="inequality"
    )
    assert _status(true_claim).status == "proved"
    r = _status(false_claim)
    assert r.status != "proved"
    assert r.status == "error"  # no numeric evidence either: nothing supports it


def test_certificate_for_a_different_statement_is_not_proved():
    """A gradient certificate whose closed form belongs to another function."""
    lse = sp.log(sp.Sum(sp.exp(z[k]), (k, 1, K)))
    wrong = sp.exp(z[m]) / sp.Sum(sp.exp(2 * z[k]), (k, 1, K))
    c = _claim(
        "other_statement",
        lambda: sp.Eq(sp.Derivative(lse, z[m]), wrong),
        tactic=Differentiate(("doit", ("in_range", K, m))),
        facts=lambda: index_facts(K, m),
    )
    assert _status(c).status != "proved"


def test_self_comparison_is_refused():
    """Comparing a closed form with itself states nothing."""
    closed = sp.exp(z[m]) / sp.Sum(sp.exp(z[k]), (k, 1, K))
    c1 = _claim("self_eq", lambda: sp.Eq(closed, closed, evaluate=False), tactic=Simplify())
    c2 = _claim("self_true", lambda: sp.Eq(closed, closed), tactic=Simplify())  # evaluates to True
    for c in (c1, c2):
        r = _status(c)
        assert r.status == "error", r.legs
        assert "states nothing" in r.leg("symbolic").detail


def test_closed_form_with_an_unevaluated_derivative_is_refused():
    f = sp.log(sp.Sum(sp.exp(z[k]), (k, 1, K)))
    c = _claim(
        "deriv_vs_deriv",
        lambda: sp.Eq(sp.Derivative(f, z[m]), sp.Derivative(f, z[m]) * 1, evaluate=False),
        tactic=Differentiate(),
    )
    assert _status(c).status != "proved"


def test_zero_point_numeric_leg_is_an_error():
    c = _claim(
        "zero_points", lambda: sp.Le(sp.log(1 + x), x), evidence=("precise",), kind="inequality"
    )
    reg = LegRegistry("precise")
    reg.register("test.zero_points")(lambda cfg: Tally("precise", rtol=0).result())
    r = _status(c, precise=reg)
    assert r.status == "error"
    assert "zero points" in r.leg("precise").detail


def test_numeric_only_claim_whose_statement_fails_to_build_is_an_error():
    """Passing numeric legs do not make a claim `checked` when its statement cannot be built."""

    def broken():
        raise NotImplementedError("cannot build")

    c = _claim("broken_statement", broken, evidence=("precise",), kind="inequality")
    reg = LegRegistry("precise")
    reg.register("test.broken_statement")(_passing_leg())
    r = _status(c, precise=reg)
    assert r.status == "error"
    assert "statement failed to build" in r.leg("definition").detail


def test_false_claim_with_a_zero_point_leg_is_not_checked():
    """The reviewers' case: a false claim whose numeric leg looks at nothing."""
    c = _claim(
        "false_zero", lambda: sp.Ge(sp.log(1 + x), x), evidence=("precise",), kind="inequality"
    )
    reg = LegRegistry("precise")
    reg.register("test.false_zero")(lambda cfg: LegResult(leg="precise", outcome="pass"))
    assert _status(c, precise=reg).status == "error"


def test_general_sentence_with_instance_only_proof_is_checked_not_proved():
    total = sp.Sum(k, (k, 1, K))
    c = _claim(
        "instances",
        lambda: sp.Eq(total, K * (K + 1) / 2),
        tactic=Instances(({K: 2}, {K: 3}), Simplify(("doit",))),
    )
    r = _status(c)
    assert r.status == "checked"
    p = r.leg("symbolic").proof
    assert p.proved and not p.binding and p.scope_kind == "instances"
    assert "instances" in p.scope


def test_statement_at_fixed_sizes_is_proved_at_those_sizes():
    c = _claim(
        "fixed_size",
        lambda: sp.Eq(sp.Sum(k, (k, 1, 3)), 6, evaluate=False),
        tactic=Exact(("doit",)),
    )
    assert _status(c).status == "proved"


def test_instances_that_fail_refute_with_a_counterexample():
    c = _claim(
        "bad_instance",
        lambda: sp.Eq(sp.Sum(k, (k, 1, K)), K**2),
        tactic=Instances(({K: 2},), Simplify(("doit",))),
    )
    r = _status(c)
    assert r.status == "refuted"
    assert "at K = 2" in r.counterexample


def test_legacy_prove_is_never_counted():
    from softnce_theory.derivations import Proof

    c = Claim(
        id="test.legacy",
        family="test",
        kind="identity",
        text="t",
        statement=lambda: sp.Eq(sp.log(x**2), 2 * sp.log(x)),
        source="t",
        evidence=("symbolic",),
        prove=lambda: Proof(True, "trust me", "general"),
    )
    r = _status(c)
    assert r.status == "error"
    assert "not bound" in r.leg("symbolic").detail


def test_undefined_functions_in_a_statement_are_refused():
    g = sp.Function("g")
    c = _claim("undef", lambda: sp.Eq(g(x), g(x) + 0 * x, evaluate=False), tactic=Simplify())
    assert _status(c).status != "proved"


def test_placeholder_symbol_inequality_is_not_proved():
    a, b = sp.symbols("SINCERE SupCon", real=True)
    c = _claim("placeholder", lambda: sp.Le(a, b), tactic=Sign(), kind="inequality")
    assert _status(c).status != "proved"


# ----------------------------------------------------------------------------- reductions


def _jensen_claim(facts, **inst):
    h2 = -sp.log(sp.Sum(y[k] * s[k], (k, 1, K)))
    h = -sp.Sum(y[k] * sp.log(s[k]), (k, 1, K))
    use = LemmaUse(L.JENSEN_LOG, {"n": K, "w": lambda i: y[i], "x": lambda i: s[i], **inst})
    return _claim(
        "jensen", lambda: sp.Le(h2, h), tactic=Reduction((use,)), facts=facts, kind="inequality"
    )


def test_reduction_checks_the_lemma_conditions_under_the_facts():
    """Without the simplex fact, Jensen's condition sum w = 1 is not entailed."""
    assert _status(_jensen_claim(lambda: ())).status != "proved"
    assert _status(_jensen_claim(lambda: (sp.Eq(sp.Sum(y[k], (k, 1, K)), 1),))).status == "proved"


def test_reduction_with_a_negative_factor_is_refused():
    h2 = -sp.log(sp.Sum(y[k] * s[k], (k, 1, K)))
    h = -sp.Sum(y[k] * sp.log(s[k]), (k, 1, K))
    use = LemmaUse(L.JENSEN_LOG, {"n": K, "w": lambda i: y[i], "x": lambda i: s[i]}, factor=-1)
    c = _claim(
        "neg_factor",
        lambda: sp.Ge(h2, h),
        tactic=Reduction((use,)),
        facts=lambda: (sp.Eq(sp.Sum(y[k], (k, 1, K)), 1),),
        kind="inequality",
    )
    assert _status(c).status != "proved"


def test_a_lemma_whose_own_check_fails_cannot_be_used():
    broken = dataclasses.replace(
        L.LOG_TANGENT,
        gap=lambda: 1 - L.u + sp.log(L.u),
        check=lambda: L._tangent_check(1 - L.u + sp.log(L.u), L.u, 1),
    )
    assert broken.check()[0] is False
    c = _claim(
        "broken_lemma",
        lambda: sp.Ge(x, 1 + sp.log(x)),
        tactic=Reduction((LemmaUse(broken, {"u": x}),)),
        kind="inequality",
    )
    assert _status(c).status != "proved"


@pytest.mark.parametrize("lemma", L.LEMMAS, ids=lambda lem: lem.name)
def test_every_lemma_passes_its_own_check(lemma):
    ok, why = lemma.check()
    assert ok, why


def test_strict_inequality_needs_a_positive_term():
    c = _claim(
        "strict",
        lambda: sp.Gt(x, 1 + sp.log(x)),  # false at x = 1
        tactic=Reduction((LemmaUse(L.LOG_TANGENT, {"u": x}),)),
        kind="inequality",
    )
    assert _status(c).status != "proved"


# ----------------------------------------------------------------------------- definitions


def test_a_failing_definition_leg_refutes_the_claims_that_use_it():
    c = dataclasses.replace(
        _claim(
            "uses_def", lambda: sp.Eq(sp.log(x**2), 2 * sp.log(x)), tactic=Simplify(("expand_log",))
        ),
        uses=("logsq",),
    )
    bad = LegResult(
        leg="definition", outcome="fail", n_points=3, counterexample="x=2: got 1, expected 2"
    )
    r = _status(c, definitions={"test.logsq": bad})
    assert r.status == "refuted"
    missing = _status(c, definitions={})
    assert missing.status == "error"


def test_definition_leg_catches_a_mistyped_definition():
    from softnce_theory.numerics._definitions import definition_leg

    f = sp.IndexedBase("f", real=True)
    j = sp.Symbol("j", integer=True)
    C = sp.Symbol("C", integer=True, positive=True)
    right = Definition(
        "lse", "test", lambda: sp.log(sp.Sum(sp.exp(f[j]), (j, 1, C))), (C,), (f,), "t"
    )
    typo = dataclasses.replace(right, build=lambda: sp.log(sp.Sum(sp.exp(2 * f[j]), (j, 1, C))))

    def oracle(sizes, pt):
        import mpmath

        return mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(v)) for v in pt[f]))

    def sample(rng):
        c = rng.randint(2, 4)
        return {C: c}, {f: [rng.uniform(-3, 3) for _ in range(c)]}

    assert definition_leg(right, sample, oracle, CFG).outcome == "pass"
    assert definition_leg(typo, sample, oracle, CFG).outcome == "fail"


# ----------------------------------------------------------------------------- status rules


def test_checked_requires_points_and_proved_requires_binding_proof():
    c = _claim(
        "rules",
        lambda: sp.Eq(sp.log(x**2), 2 * sp.log(x)),
        tactic=Simplify(("expand_log",)),
        evidence=("symbolic", "precise"),
    )
    reg = LegRegistry("precise")
    reg.register("test.rules")(_passing_leg())
    assert _status(c, precise=reg).status == "proved"
    assert status_of(c, []) == "error"


def test_missing_required_leg_is_error_and_raising_leg_is_error():
    c = _claim(
        "missing",
        lambda: sp.Le(sp.log(1 + x), x),
        evidence=("precise", "production"),
        kind="inequality",
    )
    reg = LegRegistry("precise")

    @reg.register("test.missing")
    def _boom(cfg):
        raise RuntimeError("broken check")

    r = _status(c, precise=reg)
    assert r.status == "error"
    assert any("broken check" in leg.detail for leg in r.legs)


def test_false_claim_is_refuted_with_counterexample():
    """log(1+x) >= x is false for x > 0; the precise leg must find it."""
    c = _claim("false", lambda: sp.Ge(sp.log(1 + x), x), evidence=("precise",), kind="inequality")
    reg = LegRegistry("precise")

    @reg.register("test.false")
    def _leg(cfg):
        tally = Tally("precise", rtol=0, atol=0)
        for v in np.linspace(0.1, 3, 20):
            tally.holds(np.log1p(v) - v, f"x={v:.3f}")
        return tally.result()

    r = _status(c, precise=reg)
    assert r.status == "refuted"
    assert r.counterexample is not None and "x=0.100" in r.counterexample


# ----------------------------------------------------------------------------- the catalogue


def test_every_catalogue_claim_is_well_formed():
    for c in all_claims():
        assert c.text and c.source and c.evidence
        st = c.statement()
        assert isinstance(st, sp.Basic), c.id
        undefined = {type(f).__name__ for f in st.atoms(sp.core.function.AppliedUndef)}
        if c.tactic is None and c.prove is None:
            # a numeric-only claim about the production loss names it as the one opaque
            # function `<family>_torch` (engine.generic); nothing else may be left undefined
            undefined.discard(f"{c.family}_torch")
        assert not undefined, f"{c.id}: undefined functions {undefined}"
        for f in c.fact_list():
            assert isinstance(f, sp.core.relational.Relational), f"{c.id}: fact {f!r}"


def test_no_claim_keeps_a_legacy_verdict_or_prose_assumptions():
    legacy = [c.id for c in all_claims() if c.prove is not None or c.assumptions]
    assert not legacy, f"re-express with statement + facts + tactic: {legacy}"


def test_every_symbolic_claim_also_has_a_numeric_leg():
    """SymPy's own transformations can be wrong (a `doit` bug was met in SymPy 1.14); a numeric
    leg on the same statement turns such an error into `refuted` instead of a false `proved`."""
    from softnce_theory.engine import precise_registry, production_registry

    precise, production = precise_registry(), production_registry()
    lone = [
        c.id
        for c in all_claims()
        if c.tactic is not None and precise.get(c.id) is None and production.get(c.id) is None
    ]
    assert not lone, lone


def test_every_definition_has_a_definition_leg_and_every_claim_uses_definitions():
    from softnce_theory.engine import all_definitions, definition_registry

    reg = definition_registry()
    defs = {d.id for d in all_definitions()}
    assert defs, "no definitions declared"
    assert not [d for d in defs if reg.get(d) is None]
    for c in all_claims():
        assert c.uses, f"{c.id}: the statement must name the definitions it is built from"
        missing = [u for u in c.uses if f"{c.family}.{u}" not in defs]
        assert not missing, f"{c.id}: unknown definitions {missing}"


# ----------------------------------------------------------------------------- speed-ups
# (what makes `softnce verify --quick` fast must not change a single result)


def _sums_for_free_symbols():
    i, j, n = sp.symbols("i j n", integer=True)
    t = sp.Symbol("t", real=True)
    return [
        sp.Sum(y[i], (i, 1, K)),
        sp.Sum(y[i] * sp.exp(t * z[j]), (i, 1, j), (j, 1, K)),  # inner bound on the outer dummy
        sp.Sum(sp.Sum(y[i, j], (i, j, n)) + y[j, j] * i, (j, 1, K)),  # i free outside the sum
        sp.Sum(y[k] * sp.KroneckerDelta(k, m), (k, 1, K)) * sp.Sum(y[k], (k, 1, m)),
        sp.Sum(sp.log(sp.Sum(sp.exp(z[k, j]), (k, 1, K))), (j, 1, m)),
        sp.Product(y[k], (k, 1, K)),
        sp.Integral(t * x, (t, 0, x)),
        sp.Integral(t * x, t),  # a limit without bounds: the variable stays free
        sp.Sum(x, (k, 1, 3)),
    ]


@pytest.mark.parametrize("expr", _sums_for_free_symbols(), ids=str)
def test_fast_sum_free_symbols_agrees_with_sympy(expr):
    from sympy.concrete.expr_with_limits import ExprWithLimits

    from softnce_theory.derivations._sym import fast_sum_free_symbols

    sympy_property = ExprWithLimits.free_symbols
    want = expr.free_symbols  # SymPy's own
    with fast_sum_free_symbols():
        assert ExprWithLimits.free_symbols is not sympy_property
        with fast_sum_free_symbols():  # re-entrant
            got_inner = expr.free_symbols
        got = expr.free_symbols  # still patched after the inner block
        assert ExprWithLimits.free_symbols is not sympy_property
    assert ExprWithLimits.free_symbols is sympy_property  # restored
    assert got == got_inner == want


def _finite_sums():
    """(expression, the same finite sum written out by hand or by SymPy's ``doit``)."""
    t = sp.Add
    return [
        (sp.Sum(y[k] * sp.exp(z[k]), (k, 1, 4)), t(*[y[a] * sp.exp(z[a]) for a in range(1, 5)])),
        # the inner bound depends on the outer dummy (SymPy's doit leaves this one unevaluated)
        (
            sp.Sum(y[k, m], (k, 1, m), (m, 1, 3)),
            t(*[y[a, b] for b in (1, 2, 3) for a in range(1, b + 1)]),
        ),
        (
            sp.Sum(sp.log(sp.Sum(sp.exp(z[k, m]), (k, 1, 3))) * y[m], (m, 2, 4)),
            t(*[sp.log(t(*[sp.exp(z[a, b]) for a in (1, 2, 3)])) * y[b] for b in (2, 3, 4)]),
        ),
        (sp.Sum(y[k], (k, 3, 2)), sp.Integer(0)),  # empty
        (sp.Sum(y[k], (k, 3, 1)), -y[2]),  # reversed: Karr's convention, left to doit
        # the summand reuses the dummy: the inner sum is written out first
        (sp.Sum(y[k] * sp.Sum(z[k], (k, 1, 2)), (k, 1, 2)), (y[1] + y[2]) * (z[1] + z[2])),
        # ... and where it cannot be, the outer sum is left to doit
        (
            sp.Sum(y[k] * sp.Sum(z[k], (k, 1, K)), (k, 1, 2)),
            (y[1] + y[2]) * sp.Sum(z[k], (k, 1, K)),
        ),
        (
            sp.Sum(y[k], (k, 1, K)) + sp.Sum(z[k], (k, 0, 2)),
            sp.Sum(y[k], (k, 1, K)) + t(*[z[a] for a in (0, 1, 2)]),
        ),
    ]


@pytest.mark.parametrize(("expr", "want"), _finite_sums(), ids=lambda e: str(e)[:60])
def test_expand_sums_writes_out_finite_sums(expr, want):
    from softnce_theory.numerics._definitions import expand_sums

    assert sp.expand(expand_sums(expr).doit() - want) == 0


def test_parallel_run_matches_the_serial_run_and_renders_the_statements():
    """``run_catalogue`` on two workers renders LaTeX and facts in the worker (where the
    statement was built) and gives the same statuses and proofs as the in-process run."""
    from softnce_theory.engine import run_catalogue

    claims = [c for c in all_claims(["infonce"]) if c.tactic is not None][:3]
    used = sorted({f"{c.family}.{u}" for c in claims for u in c.uses})
    runs = [
        run_catalogue(
            claims, CFG, jobs=jobs, families=["infonce"], definition_ids=used, conformance=False
        )[0]
        for jobs in (1, 2)
    ]
    for serial, parallel, c in zip(*runs, claims, strict=True):
        assert serial.status == parallel.status
        assert [r.outcome for r in serial.legs] == [r.outcome for r in parallel.legs]
        assert serial.leg("symbolic").proof == parallel.leg("symbolic").proof
        js = parallel.to_json()
        assert js["latex"] == sp.latex(c.statement())  # rebuilt here, from scratch
        assert js["facts"] == [sp.sstr(f) for f in c.fact_list()]


def test_parallel_run_matches_the_serial_run_with_production_and_conformance():
    """The torch legs (production, conformance) run as their own tasks on the worker that
    prefers them; the results, and the order of the conformance checks, do not depend on it."""
    from softnce_theory.engine import run_catalogue

    claims = all_claims(["cross_entropy"])
    runs = [run_catalogue(claims, CFG, jobs=jobs, families=["cross_entropy"]) for jobs in (1, 2)]
    (serial, s_defs, s_conf), (parallel, p_defs, p_conf) = runs
    assert [r.status for r in serial] == [r.status for r in parallel]
    for a, b in zip(serial, parallel, strict=True):
        assert [(r.leg, r.outcome, r.n_points) for r in a.legs] == [
            (r.leg, r.outcome, r.n_points) for r in b.legs
        ]
        assert any(r.leg == "production" for r in a.legs) == ("production" in a.claim.evidence)
    assert list(s_conf) == list(p_conf) and s_conf  # same checks, same order, not empty
    assert [r.outcome for r in s_conf.values()] == [r.outcome for r in p_conf.values()]
    assert list(s_defs) == list(p_defs)


def test_a_crashing_worker_stops_the_run_with_its_traceback(monkeypatch):
    """A bug outside the legs (they catch their own errors) is never a silent gap in the
    results: the parent raises with the worker's traceback."""
    import softnce_theory.engine._core as core
    from softnce_theory.engine import run_catalogue

    def boom(*args, **kwargs):
        raise RuntimeError("boom in the worker")

    monkeypatch.setattr(core, "claim_legs", boom)  # inherited by the forked workers
    claims = all_claims(["cross_entropy"])[:2]
    with pytest.raises(RuntimeError, match="boom in the worker"):
        run_catalogue(claims, CFG, jobs=2, families=["cross_entropy"], conformance=False)


def test_verify_parent_process_never_imports_torch():
    """The parent only schedules and reports: the torch legs run in a worker, so the parent
    does not pay torch's import (about 1 s, serial) before or after the pool."""
    import subprocess
    import sys

    code = (
        "import contextlib, io, sys\n"
        "from softnce_theory.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    rc = main(['verify', '--family', 'cross_entropy', '--quick', '--json', '--jobs', '2'])\n"
        "print(rc, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False"], out.stdout + out.stderr


@pytest.mark.parametrize("at", [0, 1, 2])
def test_normwise_comparison_fails_on_a_nan_anywhere(at):
    """Python's max() keeps the first NaN only; a NaN gradient entry must fail wherever it is."""
    got = [1.0, 2.0, 3.0]
    got[at] = float("nan")
    t = Tally("precise", rtol=1e-12)
    assert not t.close_normwise(got, [1.0, 2.0, 3.0], "grad")
    assert f"entry {at}" in (t.failure or "")
    assert t.result().outcome == "fail"


def test_normwise_comparison_passes_and_fails_on_the_scaled_error():
    t = Tally("precise", rtol=1e-3)
    assert t.close_normwise([1e-9, 1.0], [0.0, 1.0], "grad")  # tiny entry, judged by the scale
    assert not t.close_normwise([0.0, 1.01], [0.0, 1.0], "grad")
