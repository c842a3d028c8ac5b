"""Ranking NCE / InfoNCE / symmetric InfoNCE: production losses vs the mpmath oracle, dtype and
edge policies, consistency between negative modes, info-nce-pytorch semantics, the claims."""

import math
from typing import Any

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st
from mpmath import mp

from softnce_theory.derivations import CheckConfig
from softnce_theory.derivations import infonce as theory
from softnce_theory.losses import infonce as L
from softnce_theory.numerics import infonce as oracle
from softnce_theory.testing import strategies as sst

RTOL64 = 1e-12
TINY = 1e-300
EPS32 = float(np.finfo(np.float32).eps)
EPS64 = float(np.finfo(np.float64).eps)


def _bad(x: Any) -> Any:
    """A deliberately invalid argument (typed Any so the type checker lets it through)."""
    return x


def _grad(fn, x, *args, **kw):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kw)
    (g,) = torch.autograd.grad(out, x)
    return out.detach(), g


def _f(x):
    return np.array([[float(v) for v in row] for row in x])


# ----------------------------------------------------------------------------- strategies


@st.composite
def log_q_for(draw, n, c):
    """None, a (K+1,) or an (N, K+1) log noise distribution."""
    form = draw(st.sampled_from(["none", "vector", "matrix"]))
    if form == "none":
        return None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if form == "vector":
        return np.log(rng.dirichlet(np.ones(c)))
    return np.log(rng.dirichlet(np.ones(c), size=n))


@st.composite
def embedding_cases(draw, max_logit=1e4):
    """Raw query / key / negative embeddings, a mode, a similarity and a temperature; for dot
    similarity the scale keeps |logits| <= max_logit."""
    b, d, m = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    mode = draw(st.sampled_from(["in-batch", "unpaired", "paired"]))
    kind = draw(st.sampled_from(["cosine", "dot"]))
    t = draw(sst.temperatures())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = 1.0
    if kind == "dot":
        scale = math.sqrt(10 ** draw(st.floats(-2, math.log10(max_logit))) * t / d) / 3
    q = rng.standard_normal((b, d)) * scale
    k = rng.standard_normal((b, d)) * scale
    neg = None
    if mode == "unpaired":
        neg = rng.standard_normal((m, d)) * scale
    elif mode == "paired":
        neg = rng.standard_normal((b, m, d)) * scale
    key_lq = np.log(rng.dirichlet(np.ones(b))) if draw(st.booleans()) else None
    neg_lq = None
    if neg is not None and draw(st.booleans()):
        neg_lq = np.log(rng.dirichlet(np.ones(m), size=b if mode == "paired" else None))
    return {
        "q": q,
        "k": k,
        "neg": neg,
        "mode": mode,
        "kind": kind,
        "t": t,
        "key_lq": key_lq,
        "neg_lq": neg_lq,
    }


def _torch_kw(c):
    kw = {"temperature": c["t"], "similarity": c["kind"]}
    if c["mode"] == "paired":
        kw["negative_mode"] = "paired"
    if c["key_lq"] is not None:
        kw["key_log_q"] = sst.as_tensor(c["key_lq"])
    if c["neg_lq"] is not None:
        kw["negative_log_q"] = sst.as_tensor(c["neg_lq"])
    return kw


def _oracle_kw(c):
    kw = {"temperature": c["t"], "similarity_kind": c["kind"]}
    if c["mode"] == "paired":
        kw["negative_mode"] = "paired"
    if c["key_lq"] is not None:
        kw["key_log_q"] = c["key_lq"].tolist()
    if c["neg_lq"] is not None:
        kw["negative_log_q"] = c["neg_lq"].tolist()
    return kw


def _logit_rounding(c):
    """Forward-error bound of the float64 logits sim/t (dot-product rounding)."""
    d = c["q"].shape[1]
    gamma = (d + 2) * EPS64
    if c["kind"] == "cosine":
        return 4 * gamma / c["t"]
    keys = [c["k"].ravel()] + ([] if c["neg"] is None else [c["neg"].ravel()])
    kmax = max(float(np.abs(x).max()) for x in keys)
    return gamma * float(np.abs(c["q"]).max()) * kmax * d / c["t"]


def _grad_scale(q, c, t):
    """Chain-rule size of dL/dq before cancellation: 1/(t min||q||) (cosine), max|k|/t (dot).
    The exact gradient can vanish by cancellation (cosine with D = 1, identical keys); rounding
    then leaves ~eps times this scale, so it sets the absolute floor of the comparison."""
    if c["kind"] == "cosine":
        return 1.0 / (t * float(np.linalg.norm(q, axis=1).min()))
    keys = [c["k"].ravel()] + ([] if c["neg"] is None else [c["neg"].ravel()])
    return max(float(np.abs(x).max()) for x in keys) / t


# ----------------------------------------------------------------------------- oracle


@given(data=st.data())
def test_ranking_nce_matches_oracle_float64(data):
    s = data.draw(sst.logits(c=st.integers(1, 8)))
    lq = data.draw(log_q_for(*s.shape))
    kw = {} if lq is None else {"log_q": sst.as_tensor(lq)}
    v, g = _grad(L.ranking_nce, sst.as_tensor(s), **kw)
    with mp.workdps(50):
        want = oracle.ranking_nce(s, lq)
        want_g = _f(oracle.ranking_nce_grad(s, lq))
        assert abs(mp.mpf(float(v)) - want) <= RTOL64 * abs(want) + TINY
    np.testing.assert_allclose(g.numpy(), want_g, rtol=0, atol=RTOL64 * np.abs(want_g).max() + TINY)


@given(c=embedding_cases())
def test_info_nce_matches_oracle_float64(c):
    args = [sst.as_tensor(c["q"]), sst.as_tensor(c["k"])]
    if c["neg"] is not None:
        args.append(sst.as_tensor(c["neg"]))
    v, g = _grad(L.info_nce, *args, **_torch_kw(c))
    rtol = max(RTOL64, 2 * _logit_rounding(c))
    with mp.workdps(50):
        want = oracle.info_nce(c["q"], c["k"], c["neg"], **_oracle_kw(c))
        want_g = _f(oracle.info_nce_grad_query(c["q"], c["k"], c["neg"], **_oracle_kw(c)))
        assert abs(mp.mpf(float(v)) - want) <= rtol * abs(want) + TINY
    # normwise, with the chain-rule scale as floor (exact cancellation, e.g. cosine with D = 1)
    atol = rtol * np.abs(want_g).max() + 16 * EPS64 * _grad_scale(c["q"], c, c["t"]) + TINY
    np.testing.assert_allclose(g.numpy(), want_g, rtol=0, atol=atol)


@given(c=embedding_cases())
def test_symmetric_matches_oracle_float64(c):
    a, b = c["q"], c["k"]
    v, g = _grad(
        L.symmetric_info_nce,
        sst.as_tensor(a),
        sst.as_tensor(b),
        temperature=c["t"],
        similarity=c["kind"],
    )
    rtol = max(RTOL64, 2 * _logit_rounding({**c, "neg": None}))
    with mp.workdps(50):
        want = oracle.symmetric_info_nce(a, b, temperature=c["t"], similarity_kind=c["kind"])
        want_g = _f(
            oracle.symmetric_info_nce_grad_a(a, b, temperature=c["t"], similarity_kind=c["kind"])
        )
        assert abs(mp.mpf(float(v)) - want) <= rtol * abs(want) + TINY
    atol = (
        rtol * np.abs(want_g).max() + 16 * EPS64 * _grad_scale(a, {**c, "neg": None}, c["t"]) + TINY
    )
    np.testing.assert_allclose(g.numpy(), want_g, rtol=0, atol=atol)


def test_tiny_loss_keeps_relative_precision():
    """log(1 + e^-40) is 4.2e-18: a log(sum) - s0 evaluation would return exactly 0."""
    s = torch.tensor([[0.0, -40.0, -45.0]], dtype=torch.float64)
    want = math.log1p(math.exp(-40.0) + math.exp(-45.0))
    assert float(L.ranking_nce(s)) == pytest.approx(want, rel=1e-14)
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    got = float(L.info_nce(q, q, temperature=1 / 40))  # cosine 1 vs 0 at t = 1/40
    assert got == pytest.approx(math.log1p(math.exp(-40.0)), rel=1e-13)


# ----------------------------------------------------------------------------- dtypes


def _tol(ref, dtype, t, d):
    out_eps = {torch.float32: 2 * EPS32, torch.float16: 2.0**-10, torch.bfloat16: 2.0**-7}[dtype]
    return out_eps * abs(ref) + 40 * (d + 2) * EPS32 / t + 1e-6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@given(data=st.data())
def test_low_precision_dtypes(dtype, data):
    # ranking NCE on scores that fit the dtype
    s = data.draw(sst.logits(c=st.integers(1, 8), max_abs=30.0))
    x = sst.as_tensor(s, dtype)
    out = L.ranking_nce(x)
    assert out.dtype == dtype
    ref = float(L.ranking_nce(x.double()))
    assert abs(float(out) - ref) <= _tol(ref, dtype, 1.0, 1)
    # InfoNCE / symmetric on embeddings, against float64 on the same rounded inputs
    c = data.draw(embedding_cases(max_logit=100.0))
    t = max(c["t"], 1e-2)
    q, k = sst.as_tensor(c["q"], dtype), sst.as_tensor(c["k"], dtype)
    neg = None if c["neg"] is None else sst.as_tensor(c["neg"], dtype)
    mode = "paired" if c["mode"] == "paired" else "unpaired"
    kw: dict[str, Any] = {"temperature": t, "similarity": c["kind"], "negative_mode": mode}
    out = L.info_nce(q, k, neg, **kw)
    assert out.dtype == dtype
    ref = float(L.info_nce(q.double(), k.double(), None if neg is None else neg.double(), **kw))
    scale = (
        1.0 if c["kind"] == "cosine" else float(q.double().abs().max() * k.double().abs().max()) * 3
    )
    assert abs(float(out) - ref) <= _tol(ref, dtype, t, q.shape[1]) * max(1.0, scale)
    sym = L.symmetric_info_nce(q, k, temperature=t, similarity=c["kind"])
    assert sym.dtype == dtype
    ref = float(L.symmetric_info_nce(q.double(), k.double(), temperature=t, similarity=c["kind"]))
    assert abs(float(sym) - ref) <= _tol(ref, dtype, t, q.shape[1]) * max(1.0, scale)


def test_float16_cosine_with_large_norms_is_safe():
    """|x|^2 = 4 * 300^2 overflows float16; normalisation happens in float32."""
    torch.manual_seed(0)
    q = (torch.randn(4, 4) * 300).to(torch.float16)
    k = (torch.randn(4, 4) * 300).to(torch.float16)
    assert torch.isinf((q * q).sum(-1)).any()  # a float16 norm computation would overflow
    out = L.info_nce(q, k)
    ref = L.info_nce(q.double(), k.double())
    assert torch.isfinite(out) and float(out) == pytest.approx(float(ref), rel=2e-3, abs=2e-3)
    qq = q.clone().requires_grad_(True)
    L.symmetric_info_nce(qq, k).float().backward()
    assert qq.grad is not None and torch.isfinite(qq.grad).all()


@pytest.mark.parametrize("t", [1e-3, 1e3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_extreme_temperatures_and_logits_are_finite(t, dtype):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(6, 5, generator=g, dtype=dtype).requires_grad_(True)
    k = torch.randn(6, 5, generator=g, dtype=dtype)
    neg = torch.randn(6, 3, 5, generator=g, dtype=dtype)
    kws: tuple[dict[str, Any], ...] = ({"similarity": "cosine"}, {"similarity": "dot"})
    for kw in kws:
        for loss in (
            L.info_nce(q, k, temperature=t, **kw),
            L.info_nce(q, k, neg, negative_mode="paired", temperature=t, **kw),
            L.symmetric_info_nce(q, k, temperature=t, **kw),
        ):
            (gq,) = torch.autograd.grad(loss, q)
            assert torch.isfinite(loss) and torch.isfinite(gq).all()
    s = (torch.randn(5, 7, generator=g, dtype=dtype) * 1e4).requires_grad_(True)
    loss = L.ranking_nce(s, log_q=torch.log(torch.full((7,), 1 / 7, dtype=dtype)))
    loss.backward()
    assert s.grad is not None and torch.isfinite(loss) and torch.isfinite(s.grad).all()


# ----------------------------------------------------------------------------- consistency


@given(c=embedding_cases(max_logit=100.0))
def test_in_batch_equals_paired_negatives_and_ranking_nce(c):
    q, k = sst.as_tensor(c["q"]), sst.as_tensor(c["k"])
    b = q.shape[0]
    klq = c["key_lq"] if c["key_lq"] is not None else np.zeros(b)
    kw = {"temperature": c["t"], "similarity": c["kind"], "reduction": "none"}
    inb = L.info_nce(q, k, key_log_q=sst.as_tensor(klq), **kw)
    if b > 1:
        others = np.array([[j for j in range(b) if j != i] for i in range(b)])
        neg = k[torch.as_tensor(others)]  # (B, B-1, D)
        paired = L.info_nce(
            q,
            k,
            neg,
            negative_mode="paired",
            key_log_q=sst.as_tensor(klq),
            negative_log_q=sst.as_tensor(klq[others]),
            **kw,
        )
        torch.testing.assert_close(paired, inb, rtol=1e-12, atol=1e-12)
    qn = torch.nn.functional.normalize(q, dim=-1) if c["kind"] == "cosine" else q
    kn = torch.nn.functional.normalize(k, dim=-1) if c["kind"] == "cosine" else k
    sim = qn @ kn.T / c["t"]
    order = torch.as_tensor([[i] + [j for j in range(b) if j != i] for i in range(b)])
    scores = sim.gather(1, order)
    ranked = L.ranking_nce(scores, log_q=sst.as_tensor(klq)[order], reduction="none")
    torch.testing.assert_close(ranked, inb, rtol=1e-12, atol=1e-12)


@given(c=embedding_cases(max_logit=100.0))
def test_paired_equals_unpaired_for_shared_negatives(c):
    q, k = sst.as_tensor(c["q"]), sst.as_tensor(c["k"])
    b, d = q.shape
    rng = np.random.default_rng(0)
    neg = sst.as_tensor(rng.standard_normal((3, d)))
    nlq = sst.as_tensor(np.log(rng.dirichlet(np.ones(3))))
    kw = {"temperature": c["t"], "similarity": c["kind"], "reduction": "none"}
    un = L.info_nce(q, k, neg, negative_log_q=nlq, **kw)
    pa = L.info_nce(
        q, k, neg.expand(b, 3, d), negative_mode="paired", negative_log_q=nlq.expand(b, 3), **kw
    )
    torch.testing.assert_close(pa, un, rtol=1e-12, atol=1e-13)


@given(c=embedding_cases(max_logit=100.0))
def test_symmetric_is_mean_of_both_directions(c):
    a, b = sst.as_tensor(c["q"]), sst.as_tensor(c["k"])
    kw = {"temperature": c["t"], "similarity": c["kind"], "reduction": "none"}
    sym = L.symmetric_info_nce(a, b, **kw)
    torch.testing.assert_close(
        sym, (L.info_nce(a, b, **kw) + L.info_nce(b, a, **kw)) / 2, rtol=1e-12, atol=1e-13
    )
    torch.testing.assert_close(L.symmetric_info_nce(b, a, **kw), sym, rtol=1e-12, atol=1e-13)


def test_uniform_log_q_and_identical_keys():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(4, 6, generator=g, dtype=torch.float64) * 5
    torch.testing.assert_close(
        L.ranking_nce(s, log_q=torch.full((6,), -math.log(6.0), dtype=torch.float64)),
        L.ranking_nce(s),
        rtol=1e-13,
        atol=0,
    )
    q = torch.randn(5, 3, generator=g, dtype=torch.float64)
    key = torch.randn(1, 3, generator=g, dtype=torch.float64)
    assert float(L.info_nce(q, key.expand(5, 3))) == pytest.approx(math.log(5), rel=1e-13)
    assert float(L.info_nce(q, key.expand(5, 3), key.expand(2, 3))) == pytest.approx(
        math.log(3), rel=1e-13
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_info_nce_pytorch(dtype, reduction):
    info_nce_pkg = pytest.importorskip("info_nce")
    g = torch.Generator().manual_seed(7)
    q, k = torch.randn(6, 8, generator=g, dtype=dtype), torch.randn(6, 8, generator=g, dtype=dtype)
    un, pa = (
        torch.randn(5, 8, generator=g, dtype=dtype),
        torch.randn(6, 5, 8, generator=g, dtype=dtype),
    )
    tol: dict[str, Any] = (
        {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-13}
    )
    for t in (0.1, 0.5):
        cases: tuple[tuple[tuple[torch.Tensor, ...], L.NegativeMode], ...] = (
            ((q, k), "unpaired"),
            ((q, k, un), "unpaired"),
            ((q, k, pa), "paired"),
        )
        for args, mode in cases:
            ours = L.info_nce(*args, temperature=t, negative_mode=mode, reduction=reduction)
            ref = info_nce_pkg.info_nce(
                *args, temperature=t, negative_mode=mode, reduction=reduction
            )
            torch.testing.assert_close(ours, ref, **tol)
    module = info_nce_pkg.InfoNCE(temperature=0.2)
    torch.testing.assert_close(L.InfoNCE(temperature=0.2)(q, k), module(q, k), **tol)


# ----------------------------------------------------------------------------- edge policies


def test_minus_inf_score_masks_a_negative_and_zero_negatives_give_zero():
    s = torch.tensor([[1.0, 0.5, float("-inf"), -2.0]], dtype=torch.float64, requires_grad=True)
    out = L.ranking_nce(s)
    out.backward()
    ref = L.ranking_nce(torch.tensor([[1.0, 0.5, -2.0]], dtype=torch.float64))
    assert float(out.detach()) == pytest.approx(float(ref), rel=1e-15)
    assert s.grad is not None and torch.isfinite(s.grad).all() and float(s.grad[0, 2]) == 0.0
    assert float(L.ranking_nce(torch.randn(3, 1))) == 0.0
    one = torch.randn(1, 4)
    assert float(L.info_nce(one, torch.randn(1, 4))) == 0.0
    assert float(L.symmetric_info_nce(one, torch.randn(1, 4))) == 0.0


def test_log_q_minus_inf_policy():
    s = torch.zeros(2, 3, dtype=torch.float64)
    lq = torch.tensor([0.0, float("-inf"), -1.0], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"log_q contains -inf \(q = 0\)"):
        L.ranking_nce(s, log_q=lq)
    # documented: with validate=False the -inf goes through and yields inf/nan
    assert not torch.isfinite(L.ranking_nce(s, log_q=lq, validate=False))
    q = torch.randn(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"key_log_q contains -inf"):
        L.info_nce(q, q, key_log_q=torch.tensor([0.0, float("-inf"), 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"negative_log_q must be finite"):
        L.info_nce(
            q, q, q[:2], negative_log_q=torch.tensor([0.0, float("nan")], dtype=torch.float64)
        )


def test_nan_propagates():
    q = torch.randn(3, 4, dtype=torch.float64)
    k = torch.randn(3, 4, dtype=torch.float64)
    qn = q.clone()
    qn[1, 2] = float("nan")
    assert torch.isnan(L.info_nce(qn, k))
    assert torch.isnan(L.info_nce(qn, k, similarity="dot"))
    neg = torch.randn(2, 4, dtype=torch.float64)
    neg[0, 0] = float("nan")
    assert torch.isnan(L.info_nce(q, k, neg))
    assert torch.isnan(L.symmetric_info_nce(q, qn))
    s = torch.zeros(2, 3)
    s[0, 1] = float("nan")
    out = L.ranking_nce(s, reduction="none")
    assert torch.isnan(out[0]) and not torch.isnan(out[1])


def test_reductions_and_modules():
    g = torch.Generator().manual_seed(5)
    s = torch.randn(4, 3, generator=g, dtype=torch.float64)
    none = L.ranking_nce(s, reduction="none")
    assert none.shape == (4,)
    torch.testing.assert_close(L.ranking_nce(s, reduction="sum"), none.sum())
    torch.testing.assert_close(L.ranking_nce(s), none.mean())
    q, k = (
        torch.randn(4, 3, generator=g, dtype=torch.float64),
        torch.randn(4, 3, generator=g, dtype=torch.float64),
    )
    neg = torch.randn(4, 2, 3, generator=g, dtype=torch.float64)
    assert torch.equal(L.RankingNCE()(s), L.ranking_nce(s))
    assert torch.equal(
        L.RankingNCE("sum")(s, torch.zeros(3, dtype=torch.float64)),
        L.ranking_nce(s, log_q=torch.zeros(3, dtype=torch.float64), reduction="sum"),
    )
    m = L.InfoNCE(temperature=0.3, similarity="dot", negative_mode="paired", reduction="none")
    assert torch.equal(
        m(q, k, neg),
        L.info_nce(
            q, k, neg, temperature=0.3, similarity="dot", negative_mode="paired", reduction="none"
        ),
    )
    assert torch.equal(L.SymmetricInfoNCE(0.5)(q, k), L.symmetric_info_nce(q, k, temperature=0.5))


def _z(*shape, dtype=torch.float32):
    return torch.zeros(*shape, dtype=dtype)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: L.ranking_nce(_z(3)), r"scores must have shape \(B, K\) \(2-D\)"),
        (lambda: L.ranking_nce(_z(2, 3, dtype=torch.int64)), r"scores must have dtype"),
        (lambda: L.ranking_nce(_bad([[0.0, 1.0]])), r"scores must be a torch.Tensor"),
        (lambda: L.ranking_nce(_z(0, 3)), r"scores must be a non-empty batch"),
        (lambda: L.ranking_nce(_z(2, 0)), r"scores: dimension K must be >= 1, got 0"),
        (lambda: L.ranking_nce(_z(2, 3), log_q=_z(4)), r"log_q must broadcast to shape \(2, 3\)"),
        (lambda: L.ranking_nce(_z(2, 3), log_q=_z(2, 2, 3)), r"log_q must broadcast"),
        (
            lambda: L.ranking_nce(_z(2, 3), log_q=torch.zeros(3, dtype=torch.int64)),
            r"log_q must have dtype",
        ),
        (lambda: L.ranking_nce(_z(2, 3), reduction=_bad("avg")), r"reduction must be one of"),
        (lambda: L.info_nce(_z(0, 3), _z(0, 3)), r"query must be a non-empty batch"),
        (lambda: L.info_nce(_z(2, 0), _z(2, 0)), r"query: dimension D must be >= 1, got 0"),
        (
            lambda: L.info_nce(_z(2, 3), _z(3, 3)),
            r"positive_key: dimension B is 3 but query has B = 2",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 4)),
            r"positive_key: dimension D is 4 but query has D = 3",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3, dtype=torch.float64)),
            r"positive_key must have the same dtype",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), _z(4, 2)),
            r"negative_keys: dimension D is 2 but query has D = 3",
        ),
        (lambda: L.info_nce(_z(2, 3), _z(2, 3), _z(2, 4, 3)), r"negative_keys must be 2-D"),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), _z(4, 3), negative_mode="paired"),
            r"negative_keys must be 3-D",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), _z(3, 4, 3), negative_mode="paired"),
            r"negative_keys: dimension B is 3 but query has B = 2",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), temperature=0.0),
            r"temperature must be finite and > 0",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), temperature=-1.0),
            r"temperature must be finite and > 0",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), temperature=float("inf")),
            r"temperature must be finite",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), temperature=True),
            r"temperature must be a real number",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), similarity=_bad("l2")),
            r"similarity must be one of",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), negative_mode=_bad("both")),
            r"negative_mode must be one of",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), negative_log_q=_z(2)),
            r"negative_log_q requires negative_keys",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), key_log_q=_z(3)),
            r"key_log_q must broadcast to shape \(2,\)",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), _z(4, 3), negative_log_q=_z(3)),
            r"negative_log_q must broadcast to shape \(2, 4\)",
        ),
        (
            lambda: L.info_nce(_z(2, 3), _z(2, 3), reduction=_bad("avg")),
            r"reduction must be one of",
        ),
        (lambda: L.symmetric_info_nce(_z(2, 3), _z(3, 3)), r"b: dimension B is 3 but a has B = 2"),
        (
            lambda: L.symmetric_info_nce(_z(2, 3), _z(2, 3, dtype=torch.float16)),
            r"b must have the same dtype as a",
        ),
        (lambda: L.symmetric_info_nce(_z(0, 3), _z(0, 3)), r"a must be a non-empty batch"),
        (
            lambda: L.symmetric_info_nce(_z(2, 3), _z(2, 3), temperature=0),
            r"temperature must be finite and > 0",
        ),
        (lambda: L.InfoNCE(temperature=-0.1), r"temperature must be finite and > 0"),
        (lambda: L.InfoNCE(similarity=_bad("euclid")), r"similarity must be one of"),
        (lambda: L.InfoNCE(negative_mode=_bad("x")), r"negative_mode must be one of"),
        (lambda: L.SymmetricInfoNCE(reduction=_bad("x")), r"reduction must be one of"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(11)
    q, k = torch.randn(8, 16, generator=g), torch.randn(8, 16, generator=g)
    neg = torch.randn(8, 5, 16, generator=g)
    lq = torch.log(torch.rand(8, generator=g) + 0.1)
    for dt in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        args_cpu = (q.to(dt), k.to(dt), neg.to(dt))
        args_gpu = tuple(a.cuda() for a in args_cpu)
        for fn in (
            lambda q_, k_, n_: L.info_nce(q_, k_, key_log_q=lq.to(q_.device)),
            lambda q_, k_, n_: L.info_nce(q_, k_, n_, negative_mode="paired", similarity="dot"),
            lambda q_, k_, n_: L.symmetric_info_nce(q_, k_),
            lambda q_, k_, n_: L.ranking_nce(q_ @ k_.T, log_q=lq.to(q_.device).to(q_.dtype)),
        ):
            cpu, gpu = fn(*args_cpu), fn(*args_gpu)
            assert gpu.device.type == "cuda" and gpu.dtype == dt
            tol = 1e-10 if dt == torch.float64 else 2e-2
            assert float(gpu.cpu()) == pytest.approx(float(cpu), rel=tol, abs=tol)


# ----------------------------------------------------------------------------- theory


def test_prediction_functions_symbolic_and_numeric():
    mu, s2, k3, n = sp.symbols("mu sigma2 kappa3 n", positive=True)
    expr = theory.delta_method_log_mean(mu, s2, k3, n)
    assert isinstance(expr, sp.Expr) and expr.has(k3)
    assert not theory.delta_method_log_mean(mu, s2, k3, n, order=1).has(k3)
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        theory.delta_method_log_mean(1.0, 1.0, 1.0, 1, order=3)
    want = math.log(2.0) - 0.5 / (2 * 10 * 4.0) + (0.3 / (3 * 8.0) - 3 * 0.25 / (4 * 16.0)) / 100
    assert float(theory.delta_method_log_mean(2.0, 0.5, 0.3, 10)) == pytest.approx(want, rel=1e-14)
    p, q = [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]
    chi = sum(a * a / b for a, b in zip(p, q, strict=True)) - 1
    assert float(theory.chi2_divergence(p, q)) == pytest.approx(chi, rel=1e-14)
    assert float(theory.sampled_softmax_loss_bias(p, q, 7)) == pytest.approx(-chi / 14, rel=1e-14)
    grads = [float(theory.sampled_softmax_grad_bias(p, q, 7, j)) for j in range(3)]
    assert grads[0] == pytest.approx(0.5 / 7 * (1 + chi - 2.5), rel=1e-14)
    assert sum(grads) == pytest.approx(0.0, abs=1e-15)  # sum_j p_j (1 + chi2 - p_j/q_j) = 0
    assert float(theory.optimal_critic_gap(0.8, 4)) == pytest.approx(0.1)
    assert [float(theory.sampled_softmax_grad_bias(p, p, 3, j)) for j in range(3)] == [0.0] * 3
    ps, qs = sp.symbols("p1 p2", positive=True), sp.symbols("q1 q2", positive=True)
    assert theory.chi2_divergence(ps, qs).has(qs[0])


def test_exact_enumeration_helpers():
    with mp.workdps(30):
        assert sum(1 for _ in oracle.compositions(5, 3)) == math.comb(7, 2)
        # a product joint has I = 0 and, for any critic, E[I_NCE] <= 0
        joint = [[mp.mpf(1) / 6, mp.mpf(1) / 3], [mp.mpf(1) / 6, mp.mpf(1) / 3]]
        assert abs(oracle.mutual_information(joint)) < mp.mpf(10) ** -25
        est = oracle.expected_infonce_estimate(joint, [[0.3, -1.0], [2.0, 0.1]], 3)
        assert est <= mp.mpf(10) ** -25
        # E log mean of a constant is log of the constant
        assert abs(oracle.expected_log_mean([2, 2], [0.5, 0.5], 4) - mp.log(2)) < mp.mpf(10) ** -25


_PROVED = {
    "infonce.log_k_ceiling",
    "infonce.log_k_ceiling_row",
    "infonce.optimal_critic_ratio_mean_one",
    "infonce.optimal_critic_chi2_average",
    "infonce.optimal_critic_gap_leading_term",
    "infonce.delta_method_series",
    "infonce.sampled_softmax_expansion",
    "infonce.sampled_softmax_grad_expansion",
    "infonce.sampled_softmax_unbiased_iff_q_eq_p",
    "infonce.sampled_softmax_unbiased_only_if",
    "infonce.logit_gradient",
    "infonce.ranking_nce_temperature_gradient",
    "infonce.query_gradient",
    "infonce.query_gradient_cosine",
    "infonce.uniform_log_q_noop",
    "infonce.identical_keys_log_b",
    "infonce.symmetric_mean_of_directions",
    "infonce.info_nce_temperature_gradient",
    "infonce.symmetric_temperature_gradient",
}
#: proved only at fixed sizes of a general statement: evidence, so "checked"
_INSTANCES = {
    "infonce.optimal_critic_gap_change_of_measure",
    "infonce.delta_method_jensen",
    "infonce.sampled_softmax_exact_loss_at_q_eq_p",
    "infonce.sampled_softmax_exact_grad_at_q_eq_p",
    "infonce.ranking_nce_consistency",
}


def test_infonce_claims_through_engine():
    from softnce_theory.engine import check_claim, run_conformance, select_claims

    cfg = CheckConfig(quick=True)
    claims = select_claims(["infonce"])
    assert len(claims) >= 30
    results = {c.id: check_claim(c, cfg) for c in claims}
    bad = {
        cid: (r.status, [(leg.leg, leg.outcome, leg.detail, leg.counterexample) for leg in r.legs])
        for cid, r in results.items()
        if r.status not in ("proved", "checked")
    }
    assert not bad, bad
    assert {cid for cid, r in results.items() if r.status == "proved"} == _PROVED
    for cid, r in results.items():
        if cid in _PROVED:
            continue
        assert r.status == "checked", cid  # numeric evidence or instances: never "proved"
        sym = r.leg("symbolic")
        if cid in _INSTANCES:
            assert sym is not None and sym.proof is not None
            assert sym.proof.proved and sym.proof.scope_kind == "instances", cid
        else:
            assert sym is None, cid
        assert any(leg.n_points > 0 for leg in r.legs if leg.leg in ("precise", "production"))
    conf = run_conformance(cfg, ["infonce"])
    assert set(conf) == {
        "infonce.ranking_nce",
        "infonce.info_nce",
        "infonce.symmetric_info_nce",
        "infonce.declared_domain",
    }
    assert all(r.outcome == "pass" for r in conf.values()), {
        k: r.counterexample for k, r in conf.items()
    }


def test_no_legacy_proofs_and_every_statement_is_a_formula():
    for c in theory.CLAIMS:
        assert c.prove is None and not c.assumptions, c.id
        st = c.statement()
        assert isinstance(st, sp.Basic) and not st.atoms(sp.core.function.AppliedUndef), c.id
        assert set(c.uses) <= {d.name for d in theory.DEFINITIONS}, c.id
        assert c.uses, c.id


def _mutated_claim(cid: str, statement):
    import dataclasses

    claim = next(c for c in theory.CLAIMS if c.id == cid)
    return dataclasses.replace(claim, statement=statement)


@pytest.mark.parametrize(
    "cid,statement",
    [
        (
            "infonce.log_k_ceiling",
            lambda: sp.Le(theory.info_nce_estimator(), sp.log(theory.K) - 1),
        ),
        (
            "infonce.optimal_critic_gap_leading_term",
            lambda: sp.Eq(
                theory.formal_gap_expansion(),
                theory.v / (3 * theory.K) + sp.O(theory.K**-2, (theory.K, sp.oo)),
            ),
        ),
        (
            "infonce.delta_method_series",
            lambda: sp.Eq(
                theory.delta_formal_log_mean(),
                theory.delta_method_log_mean(theory.mu, theory.sigma2, 0, theory.n)
                + sp.O(theory.n**-3, (theory.n, sp.oo)),
            ),
        ),
        (
            "infonce.ranking_nce_temperature_gradient",
            lambda: sp.Eq(
                sp.Derivative(theory.ranking_nce_row(), theory.t), -theory._ranking_tau_closed()
            ),
        ),
        (
            "infonce.sampled_softmax_expansion",
            lambda: sp.Eq(
                theory.ss_loss_delta_term(), -theory.chi2_softmax_proposal() / theory.msym
            ),
        ),
    ],
)
def test_certificates_do_not_prove_mutated_statements(cid, statement):
    from softnce_theory.engine._prover import prove

    assert prove(next(c for c in theory.CLAIMS if c.id == cid)).binding
    assert not prove(_mutated_claim(cid, statement)).proved


def test_every_definition_leg_catches_a_mutated_oracle():
    """Every definition's leg fails when its oracle is off by a relative 1e-30."""
    from softnce_theory.numerics._definitions import definition_leg

    cfg = CheckConfig(quick=True)
    for defn in theory.DEFINITIONS:
        sampler, oracle_fn, _ = oracle._DEFINITION_TABLE[defn.name]
        ok = definition_leg(defn, sampler, oracle_fn, cfg, n=1)
        assert ok.outcome == "pass" and ok.n_points > 0, (defn.id, ok.counterexample)

        def bad(sz, pt, oracle_fn=oracle_fn):
            return oracle_fn(sz, pt) * (1 + mp.mpf(10) ** -30) + mp.mpf(10) ** -60

        assert definition_leg(defn, sampler, bad, cfg, n=1).outcome == "fail", defn.id


@pytest.mark.parametrize(
    "name,mutate",
    [
        ("info_nce_estimator", lambda e: e * (theory.K + 1) / theory.K),
        ("expected_info_nce", lambda e: e + sp.Rational(1, 10**20)),
        ("formal_gap_expansion", lambda e: e.subs(theory.kappa3, 2 * theory.kappa3)),
        ("ss_grad_delta_term", lambda e: e.subs(theory.msym, theory.msym + 1)),
        ("symmetric_info_nce", lambda e: 2 * e),
    ],
)
def test_definition_leg_catches_a_mutated_definition(name, mutate):
    import dataclasses

    from softnce_theory.numerics._definitions import definition_leg

    defn = next(d for d in theory.DEFINITIONS if d.name == name)
    wrong = dataclasses.replace(defn, build=lambda: mutate(defn.build()))
    sampler, oracle_fn, _ = oracle._DEFINITION_TABLE[name]
    res = definition_leg(wrong, sampler, oracle_fn, CheckConfig(quick=True), n=1)
    assert res.outcome == "fail", name


def test_temperature_gradient_reaches_the_production_loss():
    """The production legs of the dL/dt claims rely on t.grad being filled."""
    g = torch.Generator().manual_seed(4)
    a, b = (torch.randn(3, 2, generator=g, dtype=torch.float64) for _ in range(2))
    for fn in (L.info_nce, L.symmetric_info_nce):
        t = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
        fn(a, b, temperature=t).backward()
        want = (oracle.info_nce_tau_grad if fn is L.info_nce else oracle.symmetric_tau_grad)(
            a.numpy(), b.numpy(), 0.4
        )
        assert t.grad is not None and float(t.grad) == pytest.approx(float(want), rel=1e-11)


@pytest.mark.slow
def test_torch_compile_fullgraph_traces():
    """Data-dependent checks go through values_checked, so dynamo traces without graph breaks."""

    def fn(q, k, n, lq):
        return (
            L.info_nce(q, k, n, key_log_q=lq, negative_mode="paired")
            + L.ranking_nce(q @ k.T, log_q=lq)
            + L.symmetric_info_nce(q, k)
        )

    compiled = torch.compile(fn, backend="eager", fullgraph=True)
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    n, lq = torch.randn(4, 2, 3, generator=g), torch.log(torch.rand(4, generator=g))
    torch.testing.assert_close(compiled(q, k, n, lq), fn(q, k, n, lq))
