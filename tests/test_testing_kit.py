"""The testing kit itself: strategies, reference closed forms, the suite engine, the plugin."""

from __future__ import annotations

import ast
import functools
import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from mpmath import mp

import softnce_theory.testing
from softnce_theory.domain import POSITIVE, UNIT, Array, Domain, Interval, Labels, Param
from softnce_theory.losses import domains as LD
from softnce_theory.testing import references as R
from softnce_theory.testing import strategies as S
from softnce_theory.testing.loader import load_target
from softnce_theory.testing.suite import Arg, Caller, check_loss
from tests.mutants import toy_family as TOY

pytest_plugins = ("pytester",)

HERE = Path(__file__).resolve().parent
MUTANTS = HERE / "mutants" / "losses.py"


@pytest.fixture
def fresh_registry():
    yield from TOY.scoped_registry()


def mutant(name: str):
    return load_target(f"{MUTANTS}:{name}")


# ----------------------------------------------------------------------------- strategies
# (these @given tests run under the project's Hypothesis profile, tests/conftest.py)


@given(S.logits())
def test_logits_bounded(f):
    assert f.ndim == 2 and 1 <= f.shape[0] <= 6 and 2 <= f.shape[1] <= 8
    assert np.isfinite(f).all() and np.abs(f).max() <= 1e4


@given(S.logits(n=3, c=4, max_abs=5.0, min_abs=1.0))
def test_logits_configurable(f):
    assert f.shape == (3, 4)
    assert np.abs(f).max() <= 5.0


@pytest.mark.parametrize("kind", S.TARGET_KINDS)
@given(data=st.data())
def test_simplex_targets_each_kind(kind, data):
    a = data.draw(S.simplex_targets(4, 5, kinds=(kind,)))
    assert a.shape == (4, 5) and (a >= 0).all()
    np.testing.assert_allclose(a.sum(1), 1.0, rtol=0, atol=1e-12)
    if kind == "onehot":
        assert set(np.unique(a)) <= {0.0, 1.0}
    if kind == "uniform":
        np.testing.assert_allclose(a, 0.2)
    if kind == "mixup":
        assert ((a > 0).sum(1) <= 2).all()


@given(S.noise_distributions(6, allow_zero=True))
def test_noise_distributions(q):
    assert q.shape == (6,) and (q >= 0).all() and (q > 0).any()
    assert abs(q.sum() - 1) < 1e-12


@given(S.noise_distributions(5, allow_zero=False, min_prob=0.01))
def test_noise_min_prob(q):
    assert (q > 0.01 / 1.06).all()


def test_noise_zero_classes_occur():
    seen = []

    @given(S.noise_distributions(4, allow_zero=True))
    def collect(q):
        seen.append(int((q == 0).sum()))

    collect()
    assert max(seen) >= 1


@given(S.temperatures(), S.temperatures(0.5, 2.0), S.epsilons(), S.epsilons(0.1, 0.2))
def test_scalars_bounded(t, t2, e, e2):
    assert 1e-3 <= t <= 1e3 and 0.5 <= t2 <= 2.0
    assert 0.0 <= e <= 1.0 and 0.1 <= e2 <= 0.2


def _sizes(labels):
    return np.unique(labels, return_counts=True)[1]


@given(S.class_labels(n=st.integers(3, 9), layouts="with_singletons"))
def test_layout_with_singletons(lab):
    c = _sizes(lab)
    assert (c == 1).any() and (c >= 2).any()


@given(S.class_labels(n=st.integers(2, 9), layouts=("all_singletons",)))
def test_layout_all_singletons(lab):
    assert (_sizes(lab) == 1).all()


@given(S.class_labels(n=st.integers(2, 9), layouts="single_class"))
def test_layout_single_class(lab):
    assert len(np.unique(lab)) == 1


@given(S.class_labels(n=st.sampled_from((2, 4, 6, 8)), layouts="instance_pairs"))
def test_layout_instance_pairs(lab):
    assert (_sizes(lab) == 2).all()


@given(S.class_labels(n=st.integers(2, 11), layouts="balanced", num_classes=st.integers(1, 4)))
def test_layout_balanced(lab):
    c = _sizes(lab)
    assert (c >= 2).all()


def test_layout_errors():
    with pytest.raises(ValueError, match="n >= 3"):

        @given(S.class_labels(n=2, layouts="with_singletons"))
        def f(lab):
            pass

        f()


@given(S.labelled_embeddings())
def test_labelled_embeddings_default(x):
    emb, lab = x
    assert emb.shape[0] == lab.shape[0] and 2 <= emb.shape[0] <= 10
    assert lab.min() >= 0 and lab.max() < 4


@given(S.labelled_embeddings(num_classes=1))
def test_labelled_embeddings_single_class(x):
    assert len(np.unique(x[1])) == 1


@given(S.labelled_embeddings(n=6, layouts="with_singletons", norm_range=(0.5, 2.0), cluster=True))
def test_labelled_embeddings_options(x):
    emb, lab = x
    r = np.linalg.norm(emb, axis=1)
    assert ((r >= 0.5 - 1e-12) & (r <= 2.0 + 1e-12)).all()
    assert (_sizes(lab) == 1).any()


@given(S.query_key_pairs(norm_range=(0.2, 3.0)))
def test_query_key_pairs(qk):
    q, k = qk
    assert q.shape == k.shape
    for x in (q, k):
        r = np.linalg.norm(x, axis=1)
        assert ((r >= 0.2 - 1e-12) & (r <= 3.0 + 1e-12)).all()


def test_strategies_compose_with_torch():
    @given(S.labelled_embeddings(layouts="random"), S.temperatures(0.1, 1.0))
    def run(x, t):
        emb, lab = x
        e = S.as_tensor(emb, requires_grad=True)
        out = (torch.nn.functional.normalize(e, dim=-1).sum() / t) * len(lab)
        out.backward()
        assert e.grad is not None

    run()


# ----------------------------------------------------------------------------- registries


def test_implemented_contracts_are_the_registry_contracts():
    """The registry declares the audit contracts; the kit implements exactly those (both ways)."""
    import softnce_theory.testing as T
    from softnce_theory.registry import registry
    from softnce_theory.testing import families

    declared = set(registry().contracts())
    implemented = set(families.implemented())
    assert not declared - implemented, f"declared, not implemented: {declared - implemented}"
    assert not implemented - declared, f"implemented, not declared: {implemented - declared}"
    assert registry().contracts() == T.FAMILY_NAMES  # derived, in registry order


def test_distributed_contracts_are_the_registry_ones():
    import softnce_theory.testing as T
    from softnce_theory.registry import registry
    from softnce_theory.testing import distributed

    declared = set(registry().distributed())
    implemented = set(distributed.implemented())
    assert not declared - implemented, f"declared, not implemented: {declared - implemented}"
    assert not implemented - declared, f"implemented, not declared: {implemented - declared}"
    assert registry().distributed() == T.DISTRIBUTED_FAMILIES == distributed.DISTRIBUTED_FAMILIES


def test_declared_contract_without_implementation_is_refused(fresh_registry):
    from softnce_theory.registry import Family
    from softnce_theory.testing.contracts import get_contract

    fresh_registry.register(Family("ghost", "t", "nowhere", contracts=("ghost_contract",)))
    with pytest.raises(ValueError, match="has no implementation"):
        get_contract("ghost_contract")


def test_every_property_is_tiered():
    from softnce_theory.testing.contracts import get_contract
    from softnce_theory.testing.core import TIERS

    for name in _builtin_contracts():
        props = get_contract(name).properties()
        assert len({p.name for p in props}) == len(props)
        kinds = {p.kind for p in props}
        assert {"oracle", "gradient", "invariance", "limit", "edge", "dtype"} <= kinds
        assert {p.tier for p in props} == set(TIERS), name
        for p in props:
            if p.kind in ("oracle", "gradient", "invariance", "limit"):
                assert p.tier == "correctness", (name, p.name)
            if p.kind == "dtype" or p.name in (
                "masked_logit",
                "zero_probability_classes",
                "extreme_temperature",
                "large_logits",
                "no_positive_pairs",
            ):
                assert p.tier == "robustness", (name, p.name)


def test_edge_property_must_name_its_tier():
    from softnce_theory.testing.core import Property

    with pytest.raises(ValueError, match="tier"):
        Property("x", "edge", "d", st.just({}), lambda c, ex: None)


def test_cli_tier_choices_match_the_kit():
    from softnce_theory.commands import audit
    from softnce_theory.testing.core import TIER_CHOICES

    assert tuple(TIER_CHOICES) == audit.TIER_CHOICES


def _builtin_contracts():
    from softnce_theory._builtin import BUILTIN

    return [c for f in BUILTIN for c in f.contracts]


# ----------------------------------------------------------------------------- module structure

KIT = Path(softnce_theory.testing.__file__).resolve().parent
PKG = "softnce_theory.testing"


def _kit_imports():
    """For each module of the kit (``__init__`` included): the kit modules it imports (at any
    level, relative or absolute) and the names it takes from them."""
    mods = {p.stem: p for p in KIT.glob("*.py")}
    edges, names = {m: set() for m in mods}, []
    for mod, path in mods.items():
        tree = ast.parse(path.read_text())
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith(PKG + "."):
                        target = a.name.split(".")[2]
                        edges[mod].add(target)
                        if a.asname:
                            aliases[a.asname] = target
            elif isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    base = node.module or ""
                elif node.level == 0 and node.module and node.module.startswith(PKG):
                    base = node.module[len(PKG) :].lstrip(".")
                else:
                    continue
                if base:  # from .x import y / from softnce_theory.testing.x import y
                    target = base.split(".")[0]
                    edges[mod].add(target)
                    names += [(mod, target, a.name) for a in node.names]
                else:  # from . import x / from softnce_theory.testing import x
                    for a in node.names:
                        if a.name in mods:
                            edges[mod].add(a.name)
                            aliases[a.asname or a.name] = a.name
                        else:
                            edges[mod].add("__init__")
                            names.append((mod, "__init__", a.name))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                names.append((mod, aliases[node.value.id], node.attr))
    for m in edges:
        edges[m].discard(m)
    return edges, names


def _cycle(edges):
    state = {}

    def visit(m, path):
        state[m] = "open"
        for n in sorted(edges.get(m, ())):
            if state.get(n) == "open":
                return [*path, m, n]
            if n not in state:
                found = visit(n, [*path, m])
                if found:
                    return found
        state[m] = "done"
        return None

    for m in sorted(edges):
        if m not in state:
            found = visit(m, [])
            if found:
                return found
    return None


def test_kit_import_graph_is_acyclic():
    edges, _ = _kit_imports()
    assert edges["suite"] >= {"contracts"} and "suite" not in edges["families"]
    assert _cycle(edges) is None, " -> ".join(_cycle(edges))
    # the detector is not vacuous: the old suite <-> families pair is a cycle
    assert _cycle({**edges, "families": edges["families"] | {"suite"}}) is not None


def test_kit_modules_import_no_private_names_from_each_other():
    _, names = _kit_imports()
    private = [f"{m} uses {t}.{n}" for m, t, n in names if n.startswith("_") and n != "__name__"]
    assert not private, private
    assert names, "the scan found no imported names at all"


# ----------------------------------------------------------------------------- lazy plugin


def test_plugin_module_level_imports_are_stdlib_or_pytest():
    import sys

    tree = ast.parse((KIT / "plugin.py").read_text())
    tops = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            tops += [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            tops.append((node.module or "").split(".")[0])
    assert tops
    bad = [
        t for t in tops if t not in sys.stdlib_module_names and t not in ("pytest", "__future__")
    ]
    assert not bad, bad


def test_plugin_loads_nothing_heavy_until_the_fixture_is_used(tmp_path):
    """A pytest run whose test does not use the fixture imports none of the kit's heavy
    dependencies (Hypothesis' own pytest plugin is switched off: it imports hypothesis)."""
    import subprocess
    import sys

    (tmp_path / "test_light.py").write_text(
        "import sys\n"
        "HEAVY = ('torch', 'hypothesis', 'sympy', 'mpmath', 'numpy')\n"
        "def test_nothing_heavy():\n"
        "    assert 'softnce_theory.testing.plugin' in sys.modules\n"
        "    assert [m for m in HEAVY if m in sys.modules] == []\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "no:hypothesispytest", "test_light.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr


def test_lazy_package_attributes():
    import softnce_theory.testing as T

    assert T.check_loss is check_loss
    with pytest.raises(AttributeError):
        _ = T.no_such_thing


# ----------------------------------------------------------------------------- closed forms

RNG = np.random.default_rng(12345)


def _simplex(n, c):
    return RNG.dirichlet(np.ones(c), size=n)


def _cases():
    n, c = 3, 4
    f = RNG.standard_normal((n, c)) * 3
    emb = RNG.standard_normal((5, 3))
    lab = np.array([0, 0, 1, 1, 2])
    q = _simplex(1, c)[0]
    return {
        "soft_ce": (f, _simplex(n, c)),
        "label_smoothing": (f, np.array([0, 3, 1]), 0.3),
        "collision_ce": (f, _simplex(n, c)),
        "soft_target_infonce": (f, _simplex(n, c), q, 0.7),
        "infonce": (RNG.standard_normal((4, 3)), RNG.standard_normal((4, 3)), 0.6),
        "supcon_out": (emb, lab, 0.5),
        "supcon_in": (emb, lab, 0.5),
        "sincere": (emb, lab, 0.5),
    }


CASES = _cases()


@pytest.mark.parametrize("family", sorted(CASES))
def test_closed_form_value_matches_oracle(family):
    args = CASES[family]
    with mp.workdps(50):
        v, _ = R.CLOSED_FORMS[family](*args)
    want, src = R.oracle_value(family, *args)
    assert float(v) == pytest.approx(want, rel=1e-13)
    assert src.startswith("softnce_theory.numerics."), f"{family}: no numerics oracle found ({src})"


@pytest.mark.parametrize("family", sorted(CASES))
def test_closed_form_gradient_matches_mp_diff(family):
    """Closed-form gradients against central differences of the oracle value in mpmath."""
    args = list(CASES[family])
    _, grads = R.closed_form(family, *args)
    names = {
        "infonce": ("query", "keys"),
        "supcon_out": ("embeddings",),
        "supcon_in": ("embeddings",),
        "sincere": ("embeddings",),
    }.get(family, ("logits",))
    for k, name in enumerate(names):
        x0 = np.asarray(args[k], dtype=np.float64)
        for idx in [(0, 0), (x0.shape[0] - 1, x0.shape[1] - 1)]:
            with mp.workdps(40):

                def f(h, idx=idx, k=k, x0=x0):
                    x = [[mp.mpf(v) for v in row] for row in x0.tolist()]
                    x[idx[0]][idx[1]] += h
                    a = list(args)
                    a[k] = x
                    return _value_mp(family, a)

                num = mp.diff(f, 0)
            assert grads[name][idx] == pytest.approx(float(num), rel=1e-9, abs=1e-12)


def _value_mp(family, a):
    """Closed-form value at mp inputs (nested lists of mpf are converted exactly)."""
    v, _ = R.CLOSED_FORMS[family](*a)
    return v


def test_identity_closed_forms():
    """Instance labels: SINCERE = L_out = L_in = NT-Xent."""
    emb = RNG.standard_normal((6, 3))
    lab = np.array([0, 0, 1, 1, 2, 2])
    want = float(R.ntxent_instance(emb, lab, 0.3))
    for fam in ("supcon_out", "supcon_in", "sincere"):
        assert R.closed_form(fam, emb, lab, 0.3)[0] == pytest.approx(want, rel=1e-12)


# ----------------------------------------------------------------------------- engine


def test_caller_binding_rules():
    args = (Arg("embeddings", "float", True), Arg("labels", "long"), Arg("temperature", "scalar"))

    def positional(e, lab, tau):
        return e.sum() * 0 + tau

    def keyword_only(embeddings, labels, *, temperature=1.0):
        return embeddings.sum() * 0 + temperature

    assert Caller(positional, args).keyword == (False, False, False)
    assert Caller(keyword_only, args).keyword == (False, False, True)

    def other_names(query, positive_key, *, temperature):
        return query.sum()

    qk = (Arg("query", "float", True), Arg("keys", "float", True), Arg("temperature", "scalar"))
    assert Caller(other_names, qk).keyword == (False, False, True)

    def extra_slot(embeddings, labels, weight=None, temperature=1.0):
        return embeddings.sum()

    assert Caller(extra_slot, args).keyword == (False, False, True)
    ex = {"embeddings": np.ones((2, 2)), "labels": np.array([0, 0]), "temperature": 0.25}
    assert Caller(positional, args).value(ex) == 0.25
    assert Caller(keyword_only, args).value(ex) == 0.25
    assert Caller(functools.partial(keyword_only, temperature=9.0), args).value(ex) == 0.25

    def impossible(embeddings, *, temp):  # nowhere to put 'labels'
        return embeddings.sum()

    with pytest.raises(ValueError, match="adapter"):
        Caller(impossible, args)


def test_check_loss_argument_errors():
    from softnce_theory.losses.cross_entropy import soft_target_cross_entropy as f

    with pytest.raises(ValueError, match="unknown family"):
        check_loss(f, "nope")
    with pytest.raises(ValueError, match="tier"):
        check_loss(f, "soft_ce", tier="robustness")
    with pytest.raises(ValueError, match="max_examples"):
        check_loss(f, "soft_ce", max_examples=0)
    with pytest.raises(ValueError, match="no property"):
        check_loss(f, "soft_ce", properties=["nope"])
    with pytest.raises(ValueError, match="unknown adapter"):
        check_loss(f, "soft_ce", adapter="nope")
    with pytest.raises(ValueError, match="maps onto"):
        check_loss(f, "soft_ce", adapter="pml")


def test_report_of_a_failure_is_complete_and_json():
    report = check_loss(
        mutant("soft_ce_sum_reduction"), "soft_ce", max_examples=15, properties=["value_vs_oracle"]
    )
    assert not report.passed
    (r,) = report.failures
    assert r.status == "fail" and "value" in r.discrepancy and "oracle" in r.discrepancy
    # shrunk: the smallest batch on which sum and mean differ has two rows
    assert np.asarray(r.counterexample["logits"]).shape[0] == 2
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    assert data["schema"] == "softnce-theory/audit/1" and data["mode"] == "properties"
    assert data["passed"] is False and data["results"][0]["counterexample"]["logits"]
    d = data["results"][0]["discrepancy"]
    assert d["kind"] == "value" and d["measure"] == "abs"
    # the numbers: sum vs mean over the 2 rows, so got = 2 want and the relative error is 1
    assert d["error"] > d["tolerance"] > 0 and d["max_abs_error"] == d["error"]
    assert d["got"] == pytest.approx(2 * d["want"], rel=1e-12)
    assert d["max_rel_error"] == pytest.approx(1.0, rel=1e-12)
    text = report.table()
    assert "FAIL value_vs_oracle" in text and "minimal counterexample" in text
    assert report["value_vs_oracle"] is r


def test_unbindable_signature_is_a_usage_error():
    def bad(x):
        return x.sum()

    with pytest.raises(ValueError, match="cannot bind"):
        check_loss(bad, "soft_ce", max_examples=3)


def test_crashing_loss_is_one_clear_error():
    def bad(logits, targets):
        raise RuntimeError("not implemented")

    report = check_loss(
        bad, "soft_ce", max_examples=3, properties=["value_vs_oracle", "low_precision"]
    )
    assert [r.status for r in report.results] == ["error", "error"]
    msg = report.results[0].discrepancy
    assert "cannot be called per the soft_ce contract" in msg and "not implemented" in msg


def test_non_scalar_output_is_reported():
    def rows(logits, targets):
        return -(targets * torch.log_softmax(logits, -1)).sum(-1)

    report = check_loss(rows, "soft_ce", max_examples=3, properties=["value_vs_oracle"])
    assert report.results[0].status == "error" and "scalar" in report.results[0].discrepancy


def test_seed_makes_the_audit_reproducible():
    f = mutant("sincere_temperature_twice")
    a = check_loss(f, "sincere", max_examples=10, seed=3, properties=["value_vs_oracle"])
    b = check_loss(f, "sincere", max_examples=10, seed=3, properties=["value_vs_oracle"])
    assert a.results[0].discrepancy == b.results[0].discrepancy


# ----------------------------------------------------------------------------- production losses

PRODUCTION = [
    ("softnce_theory.losses.cross_entropy:soft_target_cross_entropy", "soft_ce", {}),
    ("softnce_theory.losses.cross_entropy:label_smoothing_cross_entropy", "label_smoothing", {}),
    ("softnce_theory.losses.collision_ce:collision_cross_entropy", "collision_ce", {}),
    ("softnce_theory.losses.soft_target_infonce:soft_target_info_nce", "soft_target_infonce", {}),
    ("softnce_theory.losses.sincere:sincere_loss", "sincere", {}),
    ("softnce_theory.losses.sincere:supcon_loss", "supcon_out", {}),
    ("softnce_theory.losses.sincere:supcon_loss", "supcon_in", {"variant": "in"}),
    ("softnce_theory.losses.infonce:info_nce", "infonce", {}),
    ("softnce_theory.losses.tiled:tiled_sincere_loss", "sincere", {"tile": 2}),
    ("softnce_theory.losses.tiled:tiled_supcon_loss", "supcon_out", {"tile": 2}),
    ("softnce_theory.losses.tiled:tiled_supcon_loss", "supcon_in", {"tile": 2, "variant": "in"}),
    ("softnce_theory.losses.tiled:tiled_info_nce", "infonce", {"tile": 2}),
    (
        "softnce_theory.losses.tiled:tiled_soft_target_info_nce",
        "soft_target_infonce",
        {"tile": 2},
    ),
]


def _production(target, kw):
    mod, _, name = target.partition(":")
    if importlib.util.find_spec(mod) is None:
        pytest.skip(f"{mod} does not exist yet")
    fn = getattr(importlib.import_module(mod), name, None)
    if fn is None:
        pytest.skip(f"{target} does not exist")
    return functools.partial(fn, **kw) if kw else fn


IDS = [f"{p[0].rpartition(':')[2]}-{p[1]}" for p in PRODUCTION]


@pytest.mark.parametrize("target,family,kw", PRODUCTION, ids=IDS)
def test_production_losses_pass_quick(target, family, kw):
    report = check_loss(_production(target, kw), family, max_examples=4)
    assert report.passed, report.table()


@pytest.mark.slow
@pytest.mark.parametrize("target,family,kw", PRODUCTION, ids=IDS)
def test_production_losses_pass_default_audit(target, family, kw):
    report = check_loss(_production(target, kw), family)
    assert report.passed, report.table()
    assert report.seconds <= 30, report.summary()


# ----------------------------------------------------------------------------- pytest plugin


def test_plugin_fixture_passes_and_fails(pytester):
    pytester.makepyfile(
        test_guard=f"""
        import pytest
        from softnce_theory.losses.cross_entropy import soft_target_cross_entropy
        from softnce_theory.testing.loader import load_target

        bad = load_target({str(MUTANTS)!r} + ":soft_ce_sum_reduction")

        def test_good(softnce_audit):
            softnce_audit(soft_target_cross_entropy, family="soft_ce", max_examples=3)

        @pytest.mark.softnce_audit(family="soft_ce", max_examples=5)
        def test_bad(softnce_audit):
            softnce_audit(bad, properties=["value_vs_oracle"])
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FAIL value_vs_oracle*", "*minimal counterexample*"])


def test_plugin_fixture_tier(pytester):
    pytester.makepyfile(
        test_tier="""
        import pytest
        import torch.nn.functional as F

        PROPS = ["value_vs_oracle", "masked_logit"]

        def test_correctness_only(softnce_audit):
            r = softnce_audit(F.cross_entropy, family="soft_ce", adapter="torch-ce",
                              max_examples=4, properties=PROPS, tier="correctness")
            assert [x.name for x in r.failures] == ["masked_logit"]

        @pytest.mark.softnce_audit(family="soft_ce", tier="correctness", max_examples=4)
        def test_marker_tier(softnce_audit):
            softnce_audit(F.cross_entropy, adapter="torch-ce", properties=PROPS)

        def test_all(softnce_audit):
            softnce_audit(F.cross_entropy, family="soft_ce", adapter="torch-ce",
                          max_examples=4, properties=PROPS)
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*FAIL masked_logit [[]robustness[]]*", "*verdict (--tier all): FAIL*"]
    )


def test_plugin_options_registered(pytester):
    result = pytester.runpytest_inprocess("--help")
    result.stdout.fnmatch_lines(["*--softnce-max-examples*"])


def test_plugin_respects_loaded_profile():
    """The project's profile (tests/conftest.py) sets max_examples; the fixture follows it."""
    from hypothesis import settings

    from softnce_theory.testing import plugin

    current = settings.default.max_examples
    expected = None if current == settings.get_profile("default").max_examples else current
    assert plugin._profile_max_examples() == expected


# ----------------------------------------------------------------------------- declared domains

_BOUNDED = Domain(
    arrays=(
        Array("p", ("B", "K"), interval=UNIT, typical=(-1.0, 0.5), min_sizes={"K": 3}),
        Array("w", ("K",), typical=(2.0, 4.0)),
    ),
    params=(Param("t", POSITIVE), Param("n", Interval(0, 10, True, True), integer=True)),
)


@given(S.from_domain(_BOUNDED, max_size=4))
def test_from_domain_respects_the_declaration(ex):
    p, w = ex["p"], ex["w"]
    assert p.ndim == 2 and 1 <= p.shape[0] <= 4 and 3 <= p.shape[1] <= 4  # min_sizes K >= 3
    assert w.shape == (p.shape[1],)  # K is drawn once for both arrays
    assert ((p >= 0.0) & (p <= 0.5)).all()  # typical clipped to the interval [0, 1]
    assert ((w >= 2.0) & (w <= 4.0)).all()
    lo, hi = _BOUNDED.param("t").typical_range()
    assert lo <= ex["t"] <= hi and ex["t"] > 0
    assert ex["n"] == int(ex["n"]) and 0 <= ex["n"] <= 5
    _BOUNDED.validate({**ex, "p": torch.tensor(p), "w": torch.tensor(w)})


@given(S.from_domain(_BOUNDED, sizes={"B": 2, "K": st.just(5)}, params={"t": 7.0}))
def test_from_domain_overrides(ex):
    assert ex["p"].shape == (2, 5) and ex["t"] == 7.0


def test_from_domain_argument_errors():
    with pytest.raises(ValueError, match="not a dimension"):
        S.from_domain(_BOUNDED, sizes={"Q": 2})
    with pytest.raises(ValueError, match="not a parameter"):
        S.from_domain(_BOUNDED, params={"q": 1.0})


def test_the_spread_reaches_small_temperatures():
    """Temperatures are log-uniform over the typical range [0.05, 5]: both decades occur."""
    seen = []

    @given(S.from_domain(TOY.DOMAIN))
    def collect(ex):
        seen.append(ex["t"])

    collect()
    assert 0.05 <= min(seen) < 0.2 and 1.0 <= max(seen) <= 5.0


def _collect(strategy, n=None):
    """Every example Hypothesis draws from ``strategy`` in one run (the loaded profile's
    ``max_examples``, or ``n``)."""
    from hypothesis import settings

    seen = []

    @given(strategy)
    def collect(ex):
        seen.append(ex)

    if n is not None:
        collect = settings(max_examples=n)(collect)
    collect()
    assert seen
    return seen


def _as_inputs(ex):
    """Arrays as torch tensors (float64 / int64 as drawn), parameters as drawn."""
    return {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in ex.items()}


#: every domain declared for the built-in losses (enumerated, not listed by hand)
LOSS_DOMAINS = {k: v for k, v in vars(LD).items() if isinstance(v, Domain)}


def test_the_loss_domains_are_enumerated():
    assert len(LOSS_DOMAINS) >= 15
    assert LOSS_DOMAINS["SOFT_TARGET_CROSS_ENTROPY"] is LD.SOFT_TARGET_CROSS_ENTROPY


@pytest.mark.parametrize("name", sorted(LOSS_DOMAINS))
@given(data=st.data())
def test_from_domain_examples_are_accepted_by_the_declaration(name, data):
    dom = LOSS_DOMAINS[name]
    ex = data.draw(S.from_domain(dom, max_size=4, extremes=True))
    # every argument is drawn (optional ones too), and of each exclusive group exactly one
    left_out = set(dom.names) - set(ex)
    assert all(len(set(g) - left_out) == 1 for g in dom.exclusive)
    assert left_out == {n for g in dom.exclusive for n in g} - set(ex)
    checked = dom.validate(_as_inputs(ex))
    assert set(checked) == set(ex)
    for a in dom.arrays:
        want = np.int64 if isinstance(a, Labels) else np.float64
        assert ex[a.name].dtype == want, a.name
    for p in dom.params:
        if p.name in ex:
            assert isinstance(ex[p.name], int if p.integer else float), p.name


_LABELLED = Domain(
    arrays=(
        Array("x", ("B", "K")),
        Labels("y", ("B",), classes="K"),
        Labels("g", ("B",)),
        Array("p", ("B", "K"), interval=UNIT, simplex=True),
        Array("q", ("K",), interval=UNIT, simplex=True),
        Array("e", ("B", "V", "D"), optional=("V",)),
    )
)


def test_from_domain_labels_simplex_and_optional_dims():
    seen = _collect(S.from_domain(_LABELLED, sizes={"B": st.integers(3, 8)}, max_size=4), 100)
    repeated = singletons = one_class = all_distinct = 0
    ranks = set()
    for ex in seen:
        b, k = ex["x"].shape
        y, g = ex["y"], ex["g"]
        assert y.shape == g.shape == (b,) and y.dtype == g.dtype == np.int64
        assert ((0 <= y) & (y < k)).all()  # classes="K": labels in [0, K)
        assert (g >= 0).all()
        counts = np.unique(g, return_counts=True)[1]
        repeated += bool((counts >= 2).any())
        singletons += bool((counts == 1).any())
        one_class += len(counts) == 1
        all_distinct += len(counts) == b
        for s, shape in (("p", (b, k)), ("q", (k,))):
            assert ex[s].shape == shape and (ex[s] >= 0).all()
            np.testing.assert_allclose(ex[s].sum(-1), 1.0, rtol=0, atol=1e-12)
        e = ex["e"]
        assert e.shape[0] == b and e.ndim in (2, 3)
        ranks.add(e.ndim)
    assert repeated and singletons and one_class and all_distinct  # the layouts of class_labels
    assert ranks == {2, 3}  # the optional V both present and absent


def test_from_domain_labels_within_few_classes():
    """With fewer classes than a layout needs, the labels still lie in [0, K)."""
    dom = Domain(arrays=(Array("x", ("B", "K")), Labels("y", ("B",), classes="K")))
    seen = _collect(S.from_domain(dom, sizes={"B": 8, "K": st.integers(1, 3)}), 60)
    for ex in seen:
        k = ex["x"].shape[1]
        assert ((0 <= ex["y"]) & (ex["y"] < k)).all()
    assert any(len(np.unique(ex["y"])) == ex["x"].shape[1] > 1 for ex in seen)


def test_from_domain_extremes_and_exclusive_params():
    t = LD.TEMPERATURE
    plain = [ex["temperature"] for ex in _collect(S.from_domain(LD.NLL_LOSS), 60)]
    lo, hi = t.typical_range()
    assert all(lo <= v <= hi for v in plain)
    ext = [ex["temperature"] for ex in _collect(S.from_domain(LD.NLL_LOSS, extremes=True), 60)]
    assert set(t.extremes) <= set(ext) and any(lo <= v <= hi for v in ext)
    both = _collect(S.from_domain(LD.INFO_NCE), 60)
    assert {"temperature" in ex for ex in both} == {True, False}
    assert all(("temperature" in ex) != ("logit_scale" in ex) for ex in both)
    named = _collect(S.from_domain(LD.INFO_NCE, params={"logit_scale": 2.0}), 10)
    assert all(ex["logit_scale"] == 2.0 and "temperature" not in ex for ex in named)
    with pytest.raises(ValueError, match="mutually exclusive"):
        S.from_domain(LD.INFO_NCE, params={"logit_scale": 2.0, "temperature": 1.0})


# ----------------------------------------------------------------------------- contract domains

#: the built-in contracts' arguments as they were written by hand before being derived from the
#: declared domains: (name, kind, differentiated)
CONTRACT_ARGS = {
    "soft_ce": (("logits", "float", True), ("targets", "float", False)),
    "collision_ce": (("logits", "float", True), ("targets", "float", False)),
    "label_smoothing": (
        ("logits", "float", True),
        ("labels", "long", False),
        ("epsilon", "scalar", False),
    ),
    "soft_target_infonce": (
        ("logits", "float", True),
        ("targets", "float", False),
        ("noise_probs", "float", False),
        ("temperature", "scalar", False),
    ),
    "infonce": (
        ("query", "float", True),
        ("keys", "float", True),
        ("temperature", "scalar", False),
    ),
    **{
        v: (
            ("embeddings", "float", True),
            ("labels", "long", False),
            ("temperature", "scalar", False),
        )
        for v in ("supcon_out", "supcon_in", "sincere")
    },
}


def test_contract_args_come_from_the_declared_domain():
    from softnce_theory.testing.families import FAMILIES, domain_args

    assert set(FAMILIES) == set(CONTRACT_ARGS)
    for name, fam in FAMILIES.items():
        assert fam.args == domain_args(fam.domain)
        assert tuple((a.name, a.kind, a.grad) for a in fam.args) == CONTRACT_ARGS[name], name


def test_contract_text_names_the_declared_arguments():
    import re

    from softnce_theory.testing.families import FAMILIES

    for name, fam in FAMILIES.items():
        inside = re.fullmatch(r"fn\((.*)\) -> .*", fam.contract)
        assert inside is not None, fam.contract
        named = re.findall(r"(\w+):", inside.group(1))
        assert named and tuple(named) == fam.domain.names, name


def test_contract_domains_reuse_the_loss_declarations():
    """Every argument of a contract is a loss's declaration: the same parameter object, the
    same tensor rules (up to the contract's name and dimensions: ``keys``, 2-D embeddings)."""
    from dataclasses import replace

    from softnce_theory.testing.families import FAMILIES

    declared = [a for d in LOSS_DOMAINS.values() for a in d.arrays]
    for name, fam in FAMILIES.items():
        for p in fam.domain.params:
            assert p is LD.PARAMS[p.name], (name, p.name)
        for a in fam.domain.arrays:
            if isinstance(a, Labels):
                assert a in declared, (name, a.name)
            else:
                same = [
                    replace(b, name=a.name, dims=a.dims, optional=a.optional)
                    for b in declared
                    if isinstance(b, Array)
                ]
                assert a in same, (name, a.name)
    soft = FAMILIES["soft_ce"].domain.arrays
    assert soft == LD.SOFT_TARGET_CROSS_ENTROPY.arrays


def test_declared_domain_property_on_every_contract():
    from softnce_theory.testing.contracts import get_contract

    for name in _builtin_contracts():
        (p,) = [p for p in get_contract(name).properties() if p.name == "declared_domain"]
        assert p.kind == "oracle" and p.tier == "correctness"


@pytest.mark.parametrize("family", ["sincere", "infonce"])
def test_declared_domain_examples_meet_the_oracle_preconditions(family):
    """The filtered embedding contracts: rows with a direction, and for SupCon/SINCERE an
    anchor with a positive (singletons and single-class batches still occur)."""
    from softnce_theory.testing.contracts import get_contract

    (p,) = [p for p in get_contract(family).properties() if p.name == "declared_domain"]
    seen = _collect(p.strategy, 60)
    for ex in seen:
        for k in ("embeddings",) if family == "sincere" else ("query", "keys"):
            assert (np.linalg.norm(ex[k], axis=1) >= 1e-6).all()
    if family == "sincere":
        counts = [np.unique(ex["labels"], return_counts=True)[1] for ex in seen]
        assert all((c >= 2).any() for c in counts)
        assert any((c == 1).any() for c in counts) and any(len(c) == 1 for c in counts)


@pytest.mark.parametrize(
    "name,family",
    [
        ("soft_ce_sum_reduction", "soft_ce"),
        ("label_smoothing_k_minus_1", "label_smoothing"),
        ("soft_target_infonce_missing_logq", "soft_target_infonce"),
        ("sincere_temperature_twice", "sincere"),
        ("sincere_mean_over_all_anchors", "sincere"),
    ],
)
def test_declared_domain_catches_value_mutants(name, family):
    report = check_loss(
        mutant(name), family, max_examples=25, properties=["declared_domain"], shrink_budget=2.0
    )
    assert report["declared_domain"].status == "fail", report.table()


# ----------------------------------------------------------------------------- generic contract

QUICK = {"max_examples": 12, "shrink_budget": 2.0}


@pytest.fixture
def toy(fresh_registry):
    for f in TOY.FAMILIES:
        fresh_registry.register(f)
    return fresh_registry


def test_declared_family_is_an_audit_contract(toy):
    from softnce_theory.registry import registry
    from softnce_theory.testing.contracts import audit_names, get_contract

    assert "toy_infonce" in audit_names() and "toy_infonce" not in registry().contracts()
    c = get_contract("toy_infonce")
    assert c.contract == "fn(x: Tensor[B, K], t: float) -> Tensor[B] (per-sample losses)"
    assert "log(exp(x_0/t)" in c.semantics
    names = [p.name for p in c.properties()]
    assert names == [
        "value_vs_oracle",
        "gradient_vs_definition",
        "parameter_gradient",
        "logit_shift_invariance",
        "batch_permutation_invariance",
        "declared_extremes",
        "low_precision",
    ]


def test_generic_contract_passes_the_declared_torch_fn(toy):
    report = check_loss(None, "toy_infonce", **QUICK)
    assert report.passed, report.table()
    assert report.target == "tests.mutants.toy_family:toy_ok"
    # no oracle: the reference is the definition itself, and the report says so
    assert not report.independent and "not independent" in report.reference
    assert "oracle generated from the definition: not independent" in report.table()
    assert report.to_json()["reference_independent"] is False


def test_generic_contract_with_an_oracle(toy):
    report = check_loss(TOY.toy_ok, "toy_infonce_oracle", **QUICK)
    assert report.passed, report.table()
    assert report.independent and "toy_family:oracle" in report.reference
    assert "not independent" not in report.table()


def test_generic_contract_uses_the_oracle(toy):
    """An oracle that disagrees with the correct loss fails it: the oracle is what is compared."""
    report = check_loss(TOY.toy_ok, "toy_infonce_wrong_oracle", properties=["value_vs_oracle"])
    assert report["value_vs_oracle"].status == "fail"


@pytest.mark.parametrize(
    "mutant,prop",
    [
        ("toy_wrong_sign", "value_vs_oracle"),
        ("toy_wrong_sign", "gradient_vs_definition"),
        ("toy_missing_t", "value_vs_oracle"),
        ("toy_missing_t", "logit_shift_invariance"),
        ("toy_detached_t", "parameter_gradient"),
        ("toy_row_position", "batch_permutation_invariance"),
        ("toy_exp_sum_log", "declared_extremes"),
        ("toy_exp_sum_log", "low_precision"),
    ],
)
def test_generic_contract_catches_mutants(toy, mutant, prop):
    report = check_loss(getattr(TOY, mutant), "toy_infonce", properties=[prop], **QUICK)
    r = report[prop]
    assert r.status == "fail", report.table()
    assert r.counterexample is not None and r.numbers is not None
    control = check_loss(TOY.toy_ok, "toy_infonce", properties=[prop], **QUICK)
    assert control.passed, control.table()


def test_generic_contract_names_the_detached_parameter(toy):
    report = check_loss(TOY.toy_detached_t, "toy_infonce", **QUICK)
    failed = [r.name for r in report.failures]
    assert failed == ["parameter_gradient"], report.table()
    assert "no gradient reaches t" in report["parameter_gradient"].discrepancy


def test_generic_contract_value_numbers(toy):
    report = check_loss(TOY.toy_wrong_sign, "toy_infonce", properties=["value_vs_oracle"], **QUICK)
    d = report.to_json()["results"][0]["discrepancy"]
    row = d["where"]["row"]
    assert d["max_abs_error"] >= d["error"] == pytest.approx(abs(d["got"][row] - d["want"][row]))
    assert d["error"] > d["tolerance"]


def test_generic_contract_is_per_sample(toy):
    report = check_loss(TOY.toy_mean, "toy_infonce", properties=["value_vs_oracle"], **QUICK)
    r = report["value_vs_oracle"]
    assert r.status == "error" and "per-sample losses" in r.discrepancy


def test_generic_extremes_are_robustness(toy):
    report = check_loss(TOY.toy_exp_sum_log, "toy_infonce", tier="correctness", **QUICK)
    assert report.passed, report.table()  # only the robustness properties fail
    assert {r.name for r in report.failures} <= {"declared_extremes", "low_precision"}
    assert report.failures and all(r.tier == "robustness" for r in report.failures)
    report.tier = "all"
    assert not report.passed
