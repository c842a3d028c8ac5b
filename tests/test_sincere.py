"""SupCon (L_out, L_in) and SINCERE: production losses vs the mpmath oracle, policies, bad input."""

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from mpmath import mp

from softnce_theory.derivations import CheckConfig
from softnce_theory.derivations import sincere as claims
from softnce_theory.engine import check_claim
from softnce_theory.losses import sincere as sl
from softnce_theory.numerics import sincere as oracle
from softnce_theory.testing import strategies as sst

RTOL64 = 1e-12
KINDS = ("out", "in", "sincere")


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny tensors: intra-op threads only add overhead (and contention on shared CPUs)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _loss(kind, x, y, **kw):
    if kind == "sincere":
        return sl.sincere_loss(x, y, **kw)
    return sl.supcon_loss(x, y, variant=kind, **kw)


def _oracle(kind, emb, labels, tau, **kw):
    if kind == "sincere":
        return oracle.sincere(emb, labels, tau, **kw), oracle.sincere_grad(emb, labels, tau, **kw)
    return oracle.supcon(emb, labels, tau, kind, **kw), oracle.supcon_grad(
        emb, labels, tau, kind, **kw
    )


def _value_grad(kind, emb, labels, **kw):
    x = torch.tensor(emb, dtype=torch.float64, requires_grad=True)
    out = _loss(kind, x, torch.as_tensor(labels), **kw)
    (g,) = torch.autograd.grad(out, x)
    return float(out.detach()), g.numpy()


def _assert_close_to_oracle(kind, emb, labels, tau, **kw):
    v, g = _value_grad(kind, emb, labels, temperature=tau, **kw)
    with mp.workdps(50):
        want, want_g = _oracle(kind, emb, labels.tolist(), tau, **kw)
        want_g = np.array([float(a) for a in oracle.flat(want_g)]).reshape(g.shape)
    assert abs(v - float(want)) <= RTOL64 * abs(float(want)) + 1e-300, (v, float(want))
    scale = np.abs(want_g).max()
    assert np.abs(g - want_g).max() <= RTOL64 * scale + 1e-300


# ----------------------------------------------------------------------------- vs oracle


_RNG = np.random.default_rng(7)
SINGLE_CLASS = (_RNG.standard_normal((5, 3)) * 3, np.zeros(5, dtype=np.int64))
ALL_SINGLETONS = (_RNG.standard_normal((4, 3)) * 3, np.arange(4))
MIXED = (_RNG.standard_normal((7, 4)) * 3, np.array([0, 0, 0, 1, 2, 2, 3]))  # singletons 1, 3


@pytest.mark.parametrize("kind", KINDS)
@given(data=sst.labelled_embeddings(), tau=sst.temperatures())
@example(data=SINGLE_CLASS, tau=1e-3)
@example(data=ALL_SINGLETONS, tau=1.0)
@example(data=MIXED, tau=1e-3)
@example(data=MIXED, tau=1e3)
def test_float64_matches_oracle(kind, data, tau):
    emb, labels = data
    _assert_close_to_oracle(kind, emb, labels, tau)


@pytest.mark.parametrize("kind", KINDS)
@given(
    data=sst.labelled_embeddings(n=st.integers(1, 4), d=st.integers(2, 4)),
    views=st.integers(2, 3),
    tau=sst.temperatures(),
    seed=st.integers(0, 2**32 - 1),
)
def test_multiview_matches_oracle(kind, data, views, tau, seed):
    _, labels = data
    emb = np.random.default_rng(seed).standard_normal((len(labels), views, 3)) * 2
    _assert_close_to_oracle(kind, emb, labels, tau)


@pytest.mark.parametrize("kind", KINDS)
@given(
    data=sst.labelled_embeddings(),
    tau=sst.temperatures(),
    reduction=st.sampled_from(["sum", "none"]),
)
def test_other_reductions_match_oracle(kind, data, tau, reduction):
    emb, labels = data
    out = _loss(
        kind, torch.tensor(emb), torch.as_tensor(labels), temperature=tau, reduction=reduction
    )
    with mp.workdps(50):
        if kind == "sincere":
            want = oracle.sincere(emb, labels.tolist(), tau, reduction=reduction)
        else:
            want = oracle.supcon(emb, labels.tolist(), tau, kind, reduction=reduction)
    want = np.array([float(v) for v in (want if reduction == "none" else [want])])
    np.testing.assert_allclose(out.numpy().reshape(-1), want, rtol=RTOL64, atol=1e-300)


def test_tiny_loss_keeps_relative_precision():
    """|P| = 1 and the positive ahead of every negative by 40/tau: loss and gradient ~e^-400
    must keep full relative precision (no 1 - 1 cancellation in value or gradient)."""
    emb = np.array([[1.0, 0.0], [1.0, 1e-3], [-1.0, 0.0], [-1.0, 0.5]])
    labels = np.array([0, 0, 1, 1])
    for kind in KINDS:
        v, g = _value_grad(kind, emb, labels, temperature=0.01)
        with mp.workdps(50):
            want, want_g = _oracle(kind, emb, labels.tolist(), 0.01)
        want_g = np.array([float(a) for a in oracle.flat(want_g)]).reshape(g.shape)
        assert 0 < v < 1e-50  # far below float64 eps: a 1 - 1 cancellation would give 0
        assert v == pytest.approx(float(want), rel=1e-12)
        np.testing.assert_allclose(g, want_g, rtol=0, atol=1e-12 * np.abs(want_g).max())


def test_near_uniform_positives_keep_gradient_precision():
    """tau = 1e3, single class: the gradient P_k - 1/|P| is ~1e-9 of its summands; the custom
    backward of the spread term must keep it to ~1e-12 (autograd's exp - 1/m would not)."""
    rng = np.random.default_rng(11)
    for _ in range(5):
        emb = rng.standard_normal((5, 3))
        _assert_close_to_oracle("out", emb, np.zeros(5, dtype=np.int64), 1e3)
        _assert_close_to_oracle("out", emb, np.array([0, 0, 0, 1, 1]), 1e3)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("labels", [[0, 0, 0, 1, 1, 2], [0] * 6, list(range(6))])
@pytest.mark.parametrize("scale", [0.01, 1.0, 30.0])
def test_double_backward(kind, labels, scale):
    s = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * scale
    y = torch.tensor(labels)
    fn = sl.sincere_from_logits if kind == "sincere" else sl.supcon_from_logits
    kw = {} if kind == "sincere" else {"variant": kind}
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: fn(v, y, **kw), (s,))
    assert torch.autograd.gradgradcheck(lambda v: fn(v, y, **kw), (s,))


# ----------------------------------------------------------------------------- dtypes, extremes


@pytest.mark.parametrize(
    "dtype,rtol", [(torch.float32, 2e-5), (torch.float16, 3e-3), (torch.bfloat16, 2e-2)]
)
@pytest.mark.parametrize("kind", KINDS)
@given(data=sst.labelled_embeddings(), tau=sst.temperatures(0.05, 10.0))
def test_low_precision_vs_float64_on_rounded_inputs(dtype, rtol, kind, data, tau):
    emb, labels = data
    x = torch.tensor(emb, dtype=dtype)
    y = torch.as_tensor(labels)
    out = _loss(kind, x, y, temperature=tau)
    assert out.dtype == dtype
    ref = float(_loss(kind, x.double(), y, temperature=tau))
    # the float32 computation error grows with the logit scale 1/tau; the final cast adds eps
    assert float(out) == pytest.approx(ref, rel=rtol, abs=rtol + 1e-6 / tau)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tau", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("normalize,scale", [(True, 1e4), (False, 1.0), (False, 1e4)])
def test_extreme_temperatures_and_scales_are_finite(dtype, kind, tau, normalize, scale):
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((8, 2, 5)) * scale
    labels = torch.tensor([0, 0, 1, 1, 2, 3, 3, 3])
    x = torch.tensor(emb, dtype=dtype, requires_grad=True)
    out = _loss(kind, x, labels, temperature=tau, normalize=normalize)
    out.float().backward()
    assert x.grad is not None
    if dtype in (torch.float16, torch.bfloat16) and not normalize and scale > 1:
        # the loss itself (~1e12) cannot be represented in half precision: it must be inf, not NaN
        assert not torch.isnan(out) and not torch.isnan(x.grad).any()
    else:
        assert torch.isfinite(out) and torch.isfinite(x.grad).all()


def test_huge_unnormalised_float32_embeddings_at_small_tau():
    x = (torch.randn(6, 3, generator=torch.Generator().manual_seed(1)) * 1e6).requires_grad_(True)
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    for kind in KINDS:
        out = _loss(kind, x, y, temperature=1e-3, normalize=False)
        (g,) = torch.autograd.grad(out, x)
        assert torch.isfinite(out) and torch.isfinite(g).all()


def test_huge_embeddings_with_normalization_are_exact():
    """The max-abs prescale keeps 1e200-sized float64 rows from overflowing the norm."""
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((5, 3))
    y = torch.tensor([0, 0, 1, 1, 1])
    for kind in KINDS:
        small = _loss(kind, torch.tensor(emb), y)
        huge = _loss(kind, torch.tensor(emb * 1e200), y)
        assert float(huge) == pytest.approx(float(small), rel=1e-13)


# ----------------------------------------------------------------------------- policies


@pytest.mark.parametrize("kind", KINDS)
def test_anchors_without_positives_are_excluded_from_the_mean(kind):
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.standard_normal((6, 4)))
    y = torch.tensor([0, 0, 1, 2, 2, 3])  # anchors 2 and 5 have no positive
    rows = _loss(kind, x, y, reduction="none")
    assert rows[2] == 0 and rows[5] == 0
    valid = torch.tensor([0, 1, 3, 4])
    assert float(_loss(kind, x, y)) == pytest.approx(float(rows[valid].mean()), rel=1e-14)
    assert float(_loss(kind, x, y, reduction="sum")) == pytest.approx(float(rows.sum()), rel=1e-14)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_batch_without_positive_pairs_is_zero_with_zero_gradient(kind, reduction):
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    out = _loss(kind, x, torch.arange(5), reduction=reduction)
    assert out.item() == 0.0 and out.requires_grad
    out.backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros_like(x))


def test_single_sample_batch():
    x = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    for kind in KINDS:
        out = _loss(kind, x, torch.tensor([4]))
        (g,) = torch.autograd.grad(out, x)
        assert out.item() == 0.0 and torch.equal(g, torch.zeros_like(x))


def test_single_class_batch():
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    y = torch.zeros(5, dtype=torch.int64)
    s = sl.sincere_loss(x, y)  # no negatives: every term is -log 1 = 0
    (g,) = torch.autograd.grad(s, x)
    assert s.item() == 0.0 and torch.equal(g, torch.zeros_like(x))
    lin = sl.supcon_loss(x, y, variant="in")  # log |P| with |P| = 9, zero gradient
    (g,) = torch.autograd.grad(lin, x)
    assert lin.item() == pytest.approx(np.log(9), rel=1e-15) and float(g.abs().max()) < 1e-15
    lout = sl.supcon_loss(x, y, variant="out")  # softmax over the positives only: >= log 9
    assert torch.isfinite(lout) and lout.item() >= np.log(9) - 1e-12


@pytest.mark.parametrize("kind", KINDS)
@given(
    data=sst.labelled_embeddings(n=st.integers(1, 5)),
    views=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_multiview_equals_flattened_form(kind, data, views, seed):
    _, labels = data
    emb = torch.tensor(np.random.default_rng(seed).standard_normal((len(labels), views, 4)))
    y = torch.as_tensor(labels)
    flat = emb.reshape(-1, 4)  # row b * V + v
    yf = y.repeat_interleave(views)
    for red in ("mean", "sum", "none"):
        a = _loss(kind, emb, y, reduction=red)
        b = _loss(kind, flat, yf, reduction=red)
        torch.testing.assert_close(a, b, rtol=1e-15, atol=0)


@pytest.mark.parametrize("kind", KINDS)
@given(
    data=sst.labelled_embeddings(),
    tau=sst.temperatures(1e-2, 1e2),
    base=sst.temperatures(1e-2, 1.0),
)
def test_base_temperature_is_a_pure_rescale(kind, data, tau, base):
    emb, labels = data
    y = torch.as_tensor(labels)
    x1 = torch.tensor(emb, requires_grad=True)
    x2 = torch.tensor(emb, requires_grad=True)
    a = _loss(kind, x1, y, temperature=tau, base_temperature=base)
    b = _loss(kind, x2, y, temperature=tau)
    (ga,) = torch.autograd.grad(a, x1)
    (gb,) = torch.autograd.grad(b, x2)
    assert float(a.detach()) == pytest.approx(tau / base * float(b.detach()), rel=1e-14, abs=1e-300)
    want = tau / base * gb  # normwise: backward rounding differs once the upstream grad is scaled
    assert float((ga - want).abs().max()) <= 1e-13 * float(want.abs().max()) + 1e-300


@given(data=sst.labelled_embeddings(), tau=sst.temperatures())
def test_sincere_le_supcon_per_anchor(data, tau):
    emb, labels = data
    x, y = torch.tensor(emb), torch.as_tensor(labels)
    s = sl.sincere_loss(x, y, temperature=tau, reduction="none")
    o = sl.supcon_loss(x, y, temperature=tau, reduction="none")
    i = sl.supcon_loss(x, y, temperature=tau, variant="in", reduction="none")
    slack = 1e-13 * o.abs().clamp(min=1)
    assert bool((s <= o + slack).all()) and bool((i <= o + slack).all())
    assert (
        float(sl.sincere_loss(x, y, temperature=tau))
        <= float(sl.supcon_loss(x, y, temperature=tau)) + 1e-12
    )


def test_instance_labels_equal_ntxent():
    views = torch.randn(4, 2, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = torch.arange(4)
    z = torch.nn.functional.normalize(views.reshape(8, 5), dim=1)
    s = (z @ z.T / 0.2).masked_fill(torch.eye(8, dtype=torch.bool), float("-inf"))
    want = torch.nn.functional.cross_entropy(s, torch.arange(8) ^ 1)
    for kind in KINDS:
        assert float(_loss(kind, views, y, temperature=0.2)) == pytest.approx(
            float(want), rel=1e-13
        )


# ----------------------------------------------------------------------------- peers


def test_matches_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    rng = np.random.default_rng(5)
    for _ in range(5):
        x = torch.tensor(rng.standard_normal((10, 6)))
        y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3])  # anchor 9 has no positive: excluded
        want = pml.SupConLoss(temperature=0.3)(x, y)
        assert float(sl.supcon_loss(x, y, temperature=0.3)) == pytest.approx(float(want), rel=1e-12)
        yb = torch.tensor(
            [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
        )  # balanced: mean over pairs = over anchors
        want = pml.NTXentLoss(temperature=0.3)(x, yb)
        assert float(sl.sincere_loss(x, yb, temperature=0.3)) == pytest.approx(
            float(want), rel=1e-12
        )


# ----------------------------------------------------------------------------- bad input


def _e(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: sl.supcon_loss(_e(4, 3, dtype=torch.int64), torch.zeros(4, dtype=torch.int64)),
            "embeddings must have dtype",
        ),
        (
            lambda: sl.supcon_loss(_e(4), torch.zeros(4, dtype=torch.int64)),
            r"embeddings must have shape \(B, V, D\) or \(B, D\)",
        ),
        (
            lambda: sl.sincere_loss(_e(2, 2, 2, 2), torch.zeros(2, dtype=torch.int64)),
            r"embeddings must have shape \(B, V, D\) or \(B, D\)",
        ),
        (
            lambda: sl.supcon_loss(_e(0, 3), torch.zeros(0, dtype=torch.int64)),
            "embeddings must be a non-empty batch",
        ),
        (
            lambda: sl.supcon_loss(_e(2, 0, 3), torch.zeros(2, dtype=torch.int64)),
            "embeddings: dimension V must be >= 1, got 0",
        ),
        (
            lambda: sl.supcon_loss(_e(2, 0), torch.zeros(2, dtype=torch.int64)),
            "embeddings: dimension D must be >= 1, got 0",
        ),
        (
            lambda: sl.supcon_loss(_e(4, 3), torch.zeros(4, dtype=torch.int64), temperature=0.0),
            "temperature must be finite and > 0",
        ),
        (
            lambda: sl.sincere_loss(
                _e(4, 3), torch.zeros(4, dtype=torch.int64), temperature=float("nan")
            ),
            "temperature must be finite and > 0",
        ),
        (
            lambda: sl.supcon_loss(
                _e(4, 3), torch.zeros(4, dtype=torch.int64), base_temperature=-1.0
            ),
            "base_temperature must be finite and > 0",
        ),
        (
            lambda: sl.supcon_loss(_e(4, 3), torch.zeros(4, dtype=torch.int64), variant="both"),  # type: ignore[arg-type]
            "variant must be 'out' or 'in'",
        ),
        (lambda: sl.supcon_loss(_e(4, 3), torch.zeros(4)), "labels must have an integer dtype"),
        (
            lambda: sl.sincere_loss(_e(4, 3), torch.zeros(4, dtype=torch.bool)),
            "labels must have an integer dtype",
        ),
        (
            lambda: sl.supcon_loss(_e(4, 3), torch.zeros(3, dtype=torch.int64)),
            r"labels must have shape \(4,\)",
        ),
        (
            lambda: sl.supcon_loss(_e(4, 2, 3), torch.zeros(8, dtype=torch.int64)),
            r"labels must have shape \(4,\)",
        ),
        (
            lambda: sl.supcon_loss(_e(4, 3), torch.zeros(4, 1, dtype=torch.int64)),
            r"labels must have shape \(4,\)",
        ),
        (
            lambda: sl.sincere_loss(_e(4, 3), torch.tensor([0, -1, 1, 1])),
            "labels must be non-negative",
        ),
        (lambda: sl.sincere_loss(_e(4, 3), [0, 1, 1, 0]), "labels must be a torch.Tensor"),  # type: ignore[arg-type]
        (
            lambda: sl.supcon_loss(_e(4, 3), torch.zeros(4, dtype=torch.int64, device="meta")),
            "labels must be on the same device as embeddings",
        ),
        (
            lambda: sl.supcon_loss(_e(4, 3), torch.zeros(4, dtype=torch.int64), reduction="avg"),  # type: ignore[arg-type]
            "reduction must be one of",
        ),
        (
            lambda: sl.supcon_from_logits(_e(3, 4), torch.zeros(3, dtype=torch.int64)),
            "logits: its dimensions named B must be equal",
        ),
        (lambda: sl.SupConLoss(temperature=-0.1), "temperature must be finite and > 0"),
        (lambda: sl.SINCERELoss(base_temperature=0.0), "base_temperature must be finite and > 0"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("kind", KINDS)
def test_nan_embeddings_propagate(kind):
    x = torch.randn(4, 3, dtype=torch.float64)
    x[1, 0] = float("nan")
    assert torch.isnan(_loss(kind, x, torch.tensor([0, 0, 1, 1])))


def test_validate_false_skips_value_checks():
    x = torch.randn(4, 3, dtype=torch.float64)
    out = sl.sincere_loss(x, torch.tensor([0, -1, -1, 0]), validate=False)
    assert torch.isfinite(out)


def test_modules_match_functional():
    x = torch.randn(6, 2, 4, dtype=torch.float64)
    y = torch.tensor([0, 0, 1, 1, 2, 3])
    assert torch.equal(
        sl.SupConLoss(0.2, "in", base_temperature=0.07)(x, y),
        sl.supcon_loss(x, y, temperature=0.2, variant="in", base_temperature=0.07),
    )
    assert torch.equal(
        sl.SINCERELoss(0.3, reduction="none")(x, y),
        sl.sincere_loss(x, y, temperature=0.3, reduction="none"),
    )


def test_from_logits_matches_embedding_form():
    x = torch.nn.functional.normalize(torch.randn(6, 4, dtype=torch.float64), dim=1)
    y = torch.tensor([0, 0, 1, 1, 1, 2])
    s = x @ x.T / 0.5
    torch.testing.assert_close(
        sl.supcon_from_logits(s, y), sl.supcon_loss(x, y, temperature=0.5), rtol=1e-14, atol=0
    )
    torch.testing.assert_close(
        sl.sincere_from_logits(s, y), sl.sincere_loss(x, y, temperature=0.5), rtol=1e-14, atol=0
    )


# ----------------------------------------------------------------------------- claims


SYMBOLIC_NOT_CLOSED = {"sincere.kl_bound"}


@pytest.mark.parametrize("claim", claims.CLAIMS, ids=lambda c: c.id)
def test_claims_are_proved_or_checked(claim):
    result = check_claim(claim, CheckConfig(quick=True))
    assert result.status in ("proved", "checked"), [
        (leg.leg, leg.outcome, leg.detail, leg.counterexample) for leg in result.legs
    ]
    assert claim.prove is None and not claim.assumptions  # no legacy verdicts or prose
    if claim.id in SYMBOLIC_NOT_CLOSED:
        # proved at N = 1 only; the general-N exchangeable-slot argument is not symbolic
        assert result.status == "checked"
        assert result.leg("symbolic").proof.scope_kind == "instances"
    elif "symbolic" in claim.evidence:
        assert result.status == "proved"
    for leg in result.legs:
        assert leg.leg == "symbolic" or leg.n_points > 0


def test_every_statement_uses_definitions_and_has_legs():
    from softnce_theory.engine import sincere as eng
    from softnce_theory.numerics import sincere as num

    names = {d.name for d in claims.DEFINITIONS}
    assert {d.id for d in claims.DEFINITIONS} == set(num.DEFINITION)
    for c in claims.CLAIMS:
        assert c.uses and set(c.uses) <= names, c.id
        assert c.tactic is not None and "symbolic" in c.evidence
        assert num.PRECISE.get(c.id) is not None, c.id
        assert ("production" in c.evidence) == (eng.PRODUCTION.get(c.id) is not None), c.id


@pytest.mark.parametrize("name", ["supcon_out", "sincere", "hobbitlong", "nce_loss_two_point"])
def test_definition_leg_catches_a_mutated_definition_or_oracle(name):
    from dataclasses import replace

    from softnce_theory.numerics import sincere as num
    from softnce_theory.numerics._definitions import definition_leg

    defn = next(d for d in claims.DEFINITIONS if d.name == name)
    oracle, sample = num.DEFINITION_ORACLES[name]
    cfg = CheckConfig(quick=True)
    assert definition_leg(defn, sample, oracle, cfg).outcome == "pass"
    bad = replace(defn, build=lambda: defn.build() * (1 + sp.Rational(1, 10**30)))
    assert definition_leg(bad, sample, oracle, cfg).outcome == "fail"

    def bad_oracle(sizes, pt):
        return oracle(sizes, pt) + mp.mpf(10) ** -35

    assert definition_leg(defn, sample, bad_oracle, cfg).outcome == "fail"


def _proof(claim, **changes):
    from dataclasses import replace

    from softnce_theory.engine._prover import prove

    return prove(replace(claim, **changes))


def test_certificate_on_a_false_or_other_statement_does_not_prove():
    le = next(c for c in claims.CLAIMS if c.id == "sincere.sincere_le_supcon")
    assert _proof(le).binding
    # the reversed inequality (false for |P| >= 2) with the same certificate
    assert not _proof(le, statement=lambda: sp.Le(claims.supcon_out(), claims.sincere())).proved
    # SupCon L_in's Jensen certificate attached to SINCERE <= SupCon
    other = next(c for c in claims.CLAIMS if c.id == "sincere.supcon_in_le_out")
    assert not _proof(le, tactic=other.tactic).proved
    # the strict claim needs |P| >= 2: at symbolic |P| >= 1 the certificate does not close
    lt = next(c for c in claims.CLAIMS if c.id == "sincere.sincere_lt_supcon_multi_positive")
    assert not _proof(
        lt,
        statement=lambda: sp.Lt(claims.sincere(), claims.supcon_out()),
        tactic=claims._sincere_le_tactic(claims.m),
    ).proved


def test_sincere_attraction_needs_a_negative():
    """With |N(i)| = 0 allowed the gradient can be exactly 0: the strict sign must not close."""
    c = next(c for c in claims.CLAIMS if c.id == "sincere.sincere_attracts_positives")
    assert _proof(c).binding
    weak = lambda: sp.Lt(sp.Derivative(claims.sincere(), claims.s[claims.k]), 0)  # noqa: E731
    assert not _proof(c, statement=weak).proved


def test_wrong_closed_forms_are_not_proved():
    t, m, k = claims.t, claims.m, claims.k
    wrong_tau = sp.Eq(sp.Derivative(claims.sincere(), t), 2 * claims._sincere_tau_closed())
    c = next(c for c in claims.CLAIMS if c.id == "sincere.sincere_temperature_gradient")
    assert not _proof(c, statement=lambda: wrong_tau).proved
    g = next(c for c in claims.CLAIMS if c.id == "sincere.supcon_per_term_cross_gradient")
    wrong = sp.Eq(
        sp.Derivative(claims.supcon_term(claims.a), claims.s[claims.q]),
        claims.share(claims.s[claims.q]) / t - 1 / (m * t),
    )
    assert not _proof(g, statement=lambda: wrong).proved
    # the cross term of a pair with itself (no q != a fact) is not P_q / t
    assert not _proof(g, facts=lambda: claims.index_facts(m, claims.a, claims.q)).proved
    del k


def test_prover_steps_need_their_premises():
    from softnce_theory.engine._prover import Facts, delta_sums, merge_sums

    i, v, n = sp.symbols("i v n", integer=True)
    x = sp.IndexedBase("x")
    s = sp.Sum(x[v] * sp.KroneckerDelta(v, i), (v, 1, n))
    assert delta_sums(s, Facts(())) == s  # i not known to lie in 1..n: untouched
    assert delta_sums(s, Facts(claims.index_facts(n, i))) == x[i]
    merged = merge_sums(sp.Sum(x[v], (v, 1, n)) + 2 * sp.Sum(x[i] ** 2, (i, 1, n)))
    assert isinstance(merged, sp.Sum)
    assert (
        sp.expand(
            merged.subs(n, 3).doit()
            - (x[1] + x[2] + x[3] + 2 * (x[1] ** 2 + x[2] ** 2 + x[3] ** 2))
        )
        == 0
    )
