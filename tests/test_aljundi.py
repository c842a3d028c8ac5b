"""Aljundi et al. 2023 (reconstructed): prototype CE and ESupCon vs the mpmath oracle, policies."""

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from mpmath import mp

from softnce_theory.derivations import CheckConfig
from softnce_theory.derivations import aljundi as claims
from softnce_theory.engine import check_claim
from softnce_theory.losses import aljundi as al
from softnce_theory.numerics import aljundi as oracle
from softnce_theory.numerics.sincere import flat
from softnce_theory.testing import strategies as sst

RTOL64 = 1e-12


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny tensors: intra-op threads only add overhead (and contention on shared CPUs)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@st.composite
def problems(draw, n=None, views=False):
    """Labelled embeddings (singleton classes, single-class batches) plus K >= max label + 1
    prototypes; with ``views`` a (B, V, D) batch."""
    emb, labels = draw(sst.labelled_embeddings(n=st.integers(1, 8) if n is None else n))
    k = int(labels.max()) + 1 + draw(st.integers(0, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    protos = rng.standard_normal((k, emb.shape[1])) * 2
    if views:
        emb = rng.standard_normal((emb.shape[0], draw(st.integers(2, 3)), emb.shape[1])) * 2
    return emb, labels, protos


def _vg(fn, emb, labels, protos, **kw):
    x = torch.tensor(emb, requires_grad=True)
    w = torch.tensor(protos, requires_grad=True)
    out = fn(x, torch.as_tensor(labels), w, **kw)
    gx, gw = torch.autograd.grad(out, (x, w))
    return float(out.detach()), np.concatenate([gx.numpy().ravel(), gw.numpy().ravel()])


def _check(fn, ofn, ogr, problem, tau):
    emb, labels, protos = problem
    v, g = _vg(fn, emb, labels, protos, temperature=tau)
    with mp.workdps(50):
        want = float(ofn(emb, labels.tolist(), protos, tau))
        wz, ww = ogr(emb, labels.tolist(), protos, tau)
        want_g = np.array([float(a) for a in flat(wz) + flat(ww)])
    assert abs(v - want) <= RTOL64 * abs(want) + 1e-300, (v, want)
    assert np.abs(g - want_g).max() <= RTOL64 * np.abs(want_g).max() + 1e-300


@given(p=problems(), tau=sst.temperatures())
def test_prototype_ce_matches_oracle(p, tau):
    _check(al.prototype_cross_entropy, oracle.prototype_ce, oracle.prototype_ce_grad, p, tau)


_RNG = np.random.default_rng(7)
SINGLE_CLASS = (
    _RNG.standard_normal((5, 3)),
    np.zeros(5, dtype=np.int64),
    _RNG.standard_normal((2, 3)),
)
SINGLETONS = (_RNG.standard_normal((4, 3)), np.array([0, 1, 2, 2]), _RNG.standard_normal((3, 3)))


@given(p=problems(), tau=sst.temperatures())
@example(p=SINGLE_CLASS, tau=1e-3)
@example(p=SINGLETONS, tau=1e3)
@example(p=SINGLETONS, tau=1e-3)
def test_esupcon_matches_oracle(p, tau):
    _check(al.esupcon_loss, oracle.esupcon, oracle.esupcon_grad, p, tau)


@given(p=problems(n=st.integers(1, 4), views=True), tau=sst.temperatures())
def test_esupcon_multiview_matches_oracle(p, tau):
    _check(al.esupcon_loss, oracle.esupcon, oracle.esupcon_grad, p, tau)


@given(p=problems(), tau=sst.temperatures())
def test_predict_matches_oracle(p, tau):
    emb, _, protos = p
    got = al.prototype_predict(torch.tensor(emb), torch.tensor(protos), tau).numpy()
    with mp.workdps(50):
        want = np.array([[float(v) for v in r] for r in oracle.predict(emb, protos, tau)])
    np.testing.assert_allclose(got, want, rtol=RTOL64, atol=1e-300)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-14)


@given(p=problems(), tau=sst.temperatures(), reduction=st.sampled_from(["sum", "none"]))
def test_other_reductions_match_oracle(p, tau, reduction):
    emb, labels, protos = p
    x, y, w = torch.tensor(emb), torch.as_tensor(labels), torch.tensor(protos)
    for fn, ofn in (
        (al.prototype_cross_entropy, oracle.prototype_ce),
        (al.esupcon_loss, oracle.esupcon),
    ):
        out = fn(x, y, w, temperature=tau, reduction=reduction).numpy().reshape(-1)
        with mp.workdps(50):
            want = ofn(emb, labels.tolist(), protos, tau, reduction=reduction)
        want = np.array([float(v) for v in (want if reduction == "none" else [want])])
        np.testing.assert_allclose(out, want, rtol=RTOL64, atol=1e-300)


@pytest.mark.parametrize("labels", [[0, 0, 1, 2], [1, 1, 1, 1], [0, 1, 2, 3]])
def test_double_backward(labels):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y = torch.tensor(labels)
    for fn in (al.esupcon_loss, al.prototype_cross_entropy):
        assert torch.autograd.gradcheck(lambda a, b, fn=fn: fn(a, y, b, temperature=0.5), (x, w))
        assert torch.autograd.gradgradcheck(
            lambda a, b, fn=fn: fn(a, y, b, temperature=0.5), (x, w)
        )


# ----------------------------------------------------------------------------- dtypes, extremes


@pytest.mark.parametrize(
    "dtype,rtol", [(torch.float32, 2e-5), (torch.float16, 3e-3), (torch.bfloat16, 2e-2)]
)
@given(p=problems(), tau=sst.temperatures(0.05, 10.0))
def test_low_precision_vs_float64_on_rounded_inputs(dtype, rtol, p, tau):
    emb, labels, protos = p
    x, w, y = (
        torch.tensor(emb, dtype=dtype),
        torch.tensor(protos, dtype=dtype),
        torch.as_tensor(labels),
    )
    for fn in (al.prototype_cross_entropy, al.esupcon_loss):
        out = fn(x, y, w, temperature=tau)
        assert out.dtype == dtype
        ref = float(fn(x.double(), y, w.double(), temperature=tau))
        assert float(out) == pytest.approx(ref, rel=rtol, abs=rtol + 1e-6 / tau)
    probs = al.prototype_predict(x, w, tau)
    assert probs.dtype == dtype
    ref_p = al.prototype_predict(x.double(), w.double(), tau)
    np.testing.assert_allclose(probs.double().numpy(), ref_p.numpy(), rtol=0, atol=4 * rtol)


def test_mixed_dtypes_compute_in_the_wider_one():
    x = torch.randn(4, 3, dtype=torch.float16)
    w = torch.randn(3, 3, dtype=torch.float64)
    out = al.esupcon_loss(x, torch.tensor([0, 1, 1, 2]), w)
    assert out.dtype == torch.float16
    ref = al.esupcon_loss(x.double(), torch.tensor([0, 1, 1, 2]), w)
    assert float(out) == pytest.approx(float(ref), rel=2e-3)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@pytest.mark.parametrize("tau", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("normalize,scale", [(True, 1e4), (False, 1.0)])
def test_extreme_temperatures_are_finite(dtype, tau, normalize, scale):
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.standard_normal((6, 2, 4)) * scale, dtype=dtype, requires_grad=True)
    w = torch.tensor(rng.standard_normal((4, 4)), dtype=dtype, requires_grad=True)
    y = torch.tensor([0, 0, 1, 2, 2, 3])
    for fn, inp in ((al.esupcon_loss, x), (al.prototype_cross_entropy, x[:, 0])):
        out = fn(inp, y, w, temperature=tau, normalize=normalize)
        gx, gw = torch.autograd.grad(out.float(), (x, w))
        assert torch.isfinite(out) and torch.isfinite(gx).all() and torch.isfinite(gw).all()


# ----------------------------------------------------------------------------- policies


@given(p=problems(n=st.just(1)), tau=sst.temperatures())
def test_esupcon_with_one_sample_is_prototype_ce(p, tau):
    emb, labels, protos = p
    x, y, w = torch.tensor(emb), torch.as_tensor(labels), torch.tensor(protos)
    a = al.esupcon_loss(x, y, w, temperature=tau)
    b = al.prototype_cross_entropy(x, y, w, temperature=tau)
    assert float(a) == pytest.approx(float(b), rel=1e-14, abs=1e-300)


def test_anchor_without_same_class_sample_adds_batch_negatives():
    rng = np.random.default_rng(4)
    x, w = torch.tensor(rng.standard_normal((3, 4))), torch.tensor(rng.standard_normal((5, 4)))
    y = torch.tensor([0, 3, 4])
    es = al.esupcon_loss(x, y, w, temperature=0.3, reduction="none")
    ce = al.prototype_cross_entropy(x, y, w, temperature=0.3, reduction="none")
    z, wn = torch.nn.functional.normalize(x, dim=1), torch.nn.functional.normalize(w, dim=1)
    s, t = z @ z.T / 0.3, z @ wn.T / 0.3
    for i in range(3):
        z_n = torch.exp(s[i]).sum() - torch.exp(s[i, i])
        assert float(es[i]) == pytest.approx(
            float(ce[i] + torch.log1p(z_n / torch.exp(t[i]).sum())), rel=1e-13
        )
        assert float(es[i]) > float(ce[i])


def test_single_prototype_gives_zero_ce():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 4, dtype=torch.float64, requires_grad=True)
    out = al.prototype_cross_entropy(x, torch.zeros(3, dtype=torch.int64), w)
    gx, gw = torch.autograd.grad(out, (x, w))
    assert out.item() == 0.0 and not gx.any() and not gw.any()


@given(p=problems(n=st.integers(1, 5), views=True))
def test_esupcon_multiview_equals_flattened(p):
    emb, labels, protos = p
    x, y, w = torch.tensor(emb), torch.as_tensor(labels), torch.tensor(protos)
    v = emb.shape[1]
    for red in ("mean", "sum", "none"):
        a = al.esupcon_loss(x, y, w, reduction=red)
        b = al.esupcon_loss(x.reshape(-1, emb.shape[2]), y.repeat_interleave(v), w, reduction=red)
        torch.testing.assert_close(a, b, rtol=1e-15, atol=0)


@given(p=problems(), tau=sst.temperatures(1e-2, 1e2))
def test_prototype_ce_equals_torch_cross_entropy_of_cosine_logits(p, tau):
    emb, labels, protos = p
    x, y, w = torch.tensor(emb), torch.as_tensor(labels), torch.tensor(protos)
    cos = torch.nn.functional.normalize(x, dim=1) @ torch.nn.functional.normalize(w, dim=1).T
    want = torch.nn.functional.cross_entropy(cos / tau, y)
    got = al.prototype_cross_entropy(x, y, w, temperature=tau)
    assert float(got) == pytest.approx(float(want), rel=1e-12, abs=1e-13)


def test_modules_hold_prototypes_and_train_them():
    torch.manual_seed(0)
    for cls, fn in (
        (al.PrototypeCrossEntropy, al.prototype_cross_entropy),
        (al.ESupConLoss, al.esupcon_loss),
    ):
        m = cls(num_classes=3, dim=4, temperature=0.2)
        assert isinstance(m.prototypes, torch.nn.Parameter) and m.prototypes.shape == (3, 4)
        x, y = torch.randn(5, 4), torch.tensor([0, 1, 1, 2, 0])
        assert torch.equal(m(x, y), fn(x, y, m.prototypes, temperature=0.2))
        m(x, y).backward()
        assert m.prototypes.grad is not None and torch.isfinite(m.prototypes.grad).all()
        torch.testing.assert_close(m.predict(x).sum(1), torch.ones(5))
    w0 = torch.randn(3, 4, dtype=torch.float64)
    m = al.ESupConLoss(3, 4, prototypes=w0)
    assert torch.equal(m.prototypes.data, w0) and m.prototypes.data.data_ptr() != w0.data_ptr()


# ----------------------------------------------------------------------------- bad input


def _x(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


Y = torch.tensor([0, 1, 2, 1])


@pytest.mark.parametrize("fn", [al.prototype_cross_entropy, al.esupcon_loss])
@pytest.mark.parametrize(
    "args,kw,match",
    [
        ((_x(4, 3, dtype=torch.int32), Y, _x(3, 3)), {}, "embeddings must have dtype"),
        ((_x(4, 3), Y, _x(3, 3, dtype=torch.int64)), {}, "prototypes must have dtype"),
        ((_x(4, 3), Y, _x(3)), {}, r"prototypes must have shape \(K, D\) \(2-D\)"),
        ((_x(4, 3), Y, _x(3, 5)), {}, "prototypes: dimension D is 5 but embeddings has D = 3"),
        ((_x(4, 3), Y, _x(0, 3)), {}, "prototypes must be a non-empty batch"),
        ((_x(4, 3), Y, _x(2, 3)), {}, r"labels must lie in \[0, 2\); found values in \[0, 2\]"),
        ((_x(4, 3), torch.tensor([0, -1, 2, 1]), _x(3, 3)), {}, r"labels must lie in \[0, 3\)"),
        ((_x(4, 3), Y.float(), _x(3, 3)), {}, "labels must have an integer dtype"),
        ((_x(4, 3), Y[:3], _x(3, 3)), {}, r"labels must have shape \(4,\)"),
        ((_x(0, 3), Y[:0], _x(3, 3)), {}, "embeddings must be a non-empty batch"),
        ((_x(4, 3), Y, _x(3, 3)), {"temperature": 0.0}, "temperature must be finite and > 0"),
        (
            (_x(4, 3), Y, _x(3, 3)),
            {"temperature": float("inf")},
            "temperature must be finite and > 0",
        ),
        ((_x(4, 3), Y, _x(3, 3)), {"reduction": "mean_all"}, "reduction must be one of"),
        (
            (_x(4, 3), Y, _x(3, 3, dtype=torch.float64).to("meta")),
            {},
            "prototypes must be on the same device as embeddings",
        ),
    ],
)
def test_bad_input_raises(fn, args, kw, match):
    with pytest.raises(ValueError, match=match):
        fn(*args, **kw)


def test_prototype_ce_rejects_multiview_and_predict_validates():
    with pytest.raises(ValueError, match=r"embeddings must have shape \(B, D\) \(2-D\)"):
        al.prototype_cross_entropy(_x(4, 2, 3), Y, _x(3, 3))
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        al.prototype_predict(_x(4, 3), _x(3, 3), -1.0)
    with pytest.raises(ValueError, match="prototypes: dimension D is 2 but embeddings has D = 3"):
        al.prototype_predict(_x(4, 3), _x(3, 2), 0.1)
    with pytest.raises(ValueError, match="num_classes and dim must be >= 1"):
        al.ESupConLoss(0, 3)
    with pytest.raises(
        ValueError, match=r"prototypes must have shape \(num_classes, dim\) = \(4, 3\)"
    ):
        al.PrototypeCrossEntropy(4, 3, prototypes=_x(3, 3))


@pytest.mark.parametrize("where", ["embeddings", "prototypes"])
def test_nan_propagates(where):
    x, w = torch.randn(4, 3, dtype=torch.float64), torch.randn(3, 3, dtype=torch.float64)
    (x if where == "embeddings" else w)[0, 0] = float("nan")
    assert torch.isnan(al.prototype_cross_entropy(x, Y, w))
    assert torch.isnan(al.esupcon_loss(x, Y, w))


# ----------------------------------------------------------------------------- claims


@pytest.mark.parametrize("claim", claims.CLAIMS, ids=lambda c: c.id)
def test_claims_are_proved(claim):
    result = check_claim(claim, CheckConfig(quick=True))
    assert result.status == "proved", [
        (leg.leg, leg.outcome, leg.detail, leg.counterexample) for leg in result.legs
    ]
    assert claim.prove is None and not claim.assumptions  # no legacy verdicts or prose
    for leg in result.legs:
        assert leg.leg == "symbolic" or leg.n_points > 0


def test_every_claim_uses_definitions_and_is_marked_reconstructed():
    from softnce_theory.engine import aljundi as eng

    names = {d.name for d in claims.DEFINITIONS}
    assert {d.id for d in claims.DEFINITIONS} == set(oracle.DEFINITION)
    for c in claims.CLAIMS:
        assert c.uses and set(c.uses) <= names, c.id
        assert oracle.PRECISE.get(c.id) is not None, c.id
        assert ("production" in c.evidence) == (eng.PRODUCTION.get(c.id) is not None), c.id
        if any(u.startswith("esupcon") for u in c.uses):
            assert "reconstructed" in c.source, c.id
    for d in claims.DEFINITIONS:
        if d.name.startswith("esupcon"):
            assert "reconstructed" in d.source


@pytest.mark.parametrize("name", ["prototype_ce", "esupcon", "esupcon_sample_term"])
def test_definition_leg_catches_a_mutated_definition_or_oracle(name):
    from dataclasses import replace

    from softnce_theory.numerics._definitions import definition_leg

    defn = next(d for d in claims.DEFINITIONS if d.name == name)
    fn, sample = oracle.DEFINITION_ORACLES[name]
    cfg = CheckConfig(quick=True)
    assert definition_leg(defn, sample, fn, cfg).outcome == "pass"
    bad = replace(defn, build=lambda: defn.build() * (1 + sp.Rational(1, 10**30)))
    assert definition_leg(bad, sample, fn, cfg).outcome == "fail"

    def bad_oracle(sizes, pt):
        return fn(sizes, pt) + mp.mpf(10) ** -35

    assert definition_leg(defn, sample, bad_oracle, cfg).outcome == "fail"


def _proof(claim, **changes):
    from dataclasses import replace

    from softnce_theory.engine._prover import prove

    return prove(replace(claim, **changes))


def test_certificates_are_bound_to_their_statements():
    by = {c.id.split(".", 1)[1]: c for c in claims.CLAIMS}
    lb = by["esupcon_lower_bound"]
    assert _proof(lb).binding
    # a larger constant: log(|P| + 2) is false for |P| = 1 with one dominant positive
    false = lambda: sp.Ge(claims.esupcon(claims.m1, claims.M), sp.log(claims.m1 + 2))  # noqa: E731
    assert not _proof(lb, statement=false).proved
    # the no-sample attraction needs a negative: with |N(i)| >= 0 it does not close
    own = by["esupcon_own_prototype_attracted_without_samples"]
    weak = lambda: sp.Lt(  # noqa: E731
        sp.Derivative(claims.esupcon(0, claims.M), claims.cos[claims.y]), 0
    )
    assert not _proof(own, statement=weak).proved
    # a wrong temperature gradient (sign flipped)
    tg = by["esupcon_temperature_gradient"]
    wrong = lambda: sp.Eq(  # noqa: E731
        sp.Derivative(claims.esupcon(), claims.tau), -claims._es_tau_closed()
    )
    assert not _proof(tg, statement=wrong).proved
