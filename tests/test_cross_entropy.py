"""Cross-entropy baselines: production losses against the mpmath oracle and torch's convention."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from mpmath import mp

from softnce_theory.losses import cross_entropy as ce
from softnce_theory.numerics import cross_entropy as oracle
from softnce_theory.testing import strategies as sst

RTOL64 = 1e-12


def _grad(fn, x, *args, **kw):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kw)
    (g,) = torch.autograd.grad(out, x)
    return out.detach(), g


@given(data=st.data(), t=sst.temperatures())
def test_soft_ce_matches_oracle_float64(data, t):
    f = data.draw(sst.logits())
    a = data.draw(sst.simplex_targets(*f.shape))
    v, g = _grad(ce.soft_target_cross_entropy, sst.as_tensor(f), sst.as_tensor(a), temperature=t)
    rows = ce.soft_target_cross_entropy(
        sst.as_tensor(f), sst.as_tensor(a), temperature=t, reduction="none"
    )
    with mp.workdps(50):
        want = oracle.soft_ce(f, a, t)
        want_rows = [float(r) for r in oracle.soft_ce_rows(f, a, t)]
        want_g = np.array([[float(x) for x in row] for row in oracle.soft_ce_grad(f, a, t)])
    np.testing.assert_allclose(rows.numpy(), want_rows, rtol=RTOL64, atol=0)
    assert abs(float(v) - float(want)) <= RTOL64 * abs(float(want)) + 1e-300
    # the gradient is (p - a)/(tau N): when p ~= a every entry is a cancellation, and rounding p
    # (|p| <= 1) alone costs ~eps (p + a)/(tau N) absolutely, whatever the formula; below that
    # floor relative agreement is not a property of any float64 implementation
    n = f.shape[0]
    floor = 16 * np.finfo(np.float64).eps * (1 + np.abs(a).max()) / (t * n)
    np.testing.assert_allclose(
        g.numpy(), want_g, rtol=0, atol=max(RTOL64 * np.abs(want_g).max(), floor)
    )


def test_soft_ce_gradient_near_cancellation_is_within_the_rounding_floor():
    """The case hypothesis found: p = softmax(z/1000) within 6.4e-6 of a = (1/2, 1/2). The
    gradient entries are 6.4e-9; the relative error 1.2e-11 is the rounding of p (~1e-16)
    divided by |p - a|, i.e. 1e-20 absolute, 46x below the floor used above."""
    f = np.array([[0.01257302, -0.01321049]])
    a = np.array([[0.5, 0.5]])
    _, g = _grad(ce.soft_target_cross_entropy, sst.as_tensor(f), sst.as_tensor(a), temperature=1e3)
    with mp.workdps(50):
        want_g = np.array([[float(x) for x in row] for row in oracle.soft_ce_grad(f, a, 1e3)])
    err = np.abs(g.numpy() - want_g).max()
    assert err <= 16 * np.finfo(np.float64).eps * 2 / 1e3
    assert err <= 1e-10 * np.abs(want_g).max()  # still ~1e-11 relative here


@given(f=sst.logits(), eps=st.floats(0, 1), t=sst.temperatures())
def test_label_smoothing_matches_oracle_and_torch(f, eps, t):
    labels = np.arange(f.shape[0]) % f.shape[1]
    x, y = sst.as_tensor(f), torch.as_tensor(labels)
    v = float(ce.label_smoothing_cross_entropy(x, y, epsilon=eps, temperature=t))
    with mp.workdps(50):
        want = float(oracle.label_smoothing_ce(f, labels.tolist(), eps, t))
    assert v == pytest.approx(want, rel=RTOL64, abs=1e-300)
    assert v == pytest.approx(float(F.cross_entropy(x / t, y, label_smoothing=eps)), rel=1e-12)


@pytest.mark.parametrize(
    "dtype,rtol", [(torch.float32, 1e-5), (torch.float16, 3e-3), (torch.bfloat16, 2e-2)]
)
@given(data=st.data())
def test_low_precision_dtypes(dtype, rtol, data):
    f = data.draw(sst.logits(max_abs=30.0))
    a = data.draw(sst.simplex_targets(*f.shape))
    x = sst.as_tensor(f, dtype)
    a_t = sst.as_tensor(a, dtype)
    out = ce.soft_target_cross_entropy(x, a_t, validate=False)
    assert out.dtype == dtype
    # reference: the float64 loss on the *same rounded inputs*, so only compute error is measured
    ref = ce.soft_target_cross_entropy(x.double(), a_t.double(), validate=False)
    assert float(out) == pytest.approx(float(ref), rel=rtol, abs=rtol)


@pytest.mark.parametrize("gap", [40.0, 700.0, 1e4])
def test_tiny_losses_keep_relative_precision(gap):
    """At a logit gap of 40 the loss is 4.2e-18; -log_softmax would give exactly 0."""
    x = torch.tensor([[gap, 0.0, -1.0]], dtype=torch.float64)
    y = torch.tensor([0])
    with mp.workdps(50):
        want = oracle.nll([[gap, 0.0, -1.0]], [0])
    got = float(ce.nll_loss(x, y))
    assert got == pytest.approx(float(want), rel=1e-12, abs=0.0)
    g = torch.autograd.grad(ce.nll_loss(x.requires_grad_(True), y), x)[0]
    p = torch.softmax(x.detach(), -1)
    assert float(g[0, 0]) == pytest.approx(-float(p[0, 1] + p[0, 2]), rel=1e-12, abs=0.0)


def test_zero_target_mass_with_minus_inf_logit_is_finite():
    x = torch.tensor([[0.0, 1.0, float("-inf")]], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64)
    out = ce.soft_target_cross_entropy(x, a)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()


def test_extreme_logits_no_nan():
    x = torch.tensor([[1e4, -1e4, 0.0]], dtype=torch.float64, requires_grad=True)
    a = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    out = ce.soft_target_cross_entropy(x, a, temperature=1e-3)
    out.backward()
    assert float(out.detach()) == pytest.approx(2e7, rel=1e-12)
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: ce.soft_target_cross_entropy(torch.zeros(2, 3), torch.full((2, 3), 0.5)),
            "targets rows must sum to 1",
        ),
        (
            lambda: ce.soft_target_cross_entropy(torch.zeros(2, 3), -torch.eye(3)[:2]),
            "targets must be non-negative",
        ),
        (
            lambda: ce.soft_target_cross_entropy(
                torch.zeros(2, 3), torch.full((2, 3), float("nan"))
            ),
            "targets must be finite",
        ),
        (
            lambda: ce.soft_target_cross_entropy(
                torch.zeros(2, 3), torch.eye(3)[:2], temperature=0.0
            ),
            "temperature must be finite and > 0",
        ),
        (
            lambda: ce.soft_target_cross_entropy(torch.zeros(2, 3), torch.eye(3)),
            "targets: dimension B is 3 but logits has B = 2",
        ),
        (
            lambda: ce.soft_target_cross_entropy(torch.zeros(0, 3), torch.zeros(0, 3)),
            "logits must be a non-empty batch",
        ),
        (
            lambda: ce.soft_target_cross_entropy(
                torch.zeros(2, 3, dtype=torch.int64), torch.eye(3)[:2]
            ),
            "logits must have dtype",
        ),
        (
            lambda: ce.nll_loss(torch.zeros(2, 3), torch.tensor([0, 3])),
            r"labels must lie in \[0, 3\)",
        ),
        (
            lambda: ce.nll_loss(torch.zeros(2, 3), torch.tensor([0.0, 1.0])),
            "labels must have an integer dtype",
        ),
        (
            lambda: ce.label_smoothing_cross_entropy(
                torch.zeros(2, 3), torch.tensor([0, 1]), epsilon=1.5
            ),
            r"epsilon must lie in \[0, 1\]",
        ),
        (
            lambda: ce.soft_target_cross_entropy(
                torch.zeros(2, 3), torch.eye(3)[:2], reduction="avg"
            ),
            "reduction must be one of",
        ),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_nan_logits_propagate():
    x = torch.tensor([[float("nan"), 0.0]], dtype=torch.float64)
    assert torch.isnan(
        ce.soft_target_cross_entropy(x, torch.tensor([[1.0, 0.0]], dtype=torch.float64))
    )


def test_module_matches_functional():
    x = torch.randn(4, 5, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 4])
    assert torch.equal(ce.HardNLL()(x, y), ce.nll_loss(x, y))
    assert torch.equal(
        ce.LabelSmoothingCrossEntropy(0.1)(x, y),
        ce.label_smoothing_cross_entropy(x, y, epsilon=0.1),
    )
    a = torch.softmax(torch.randn(4, 5, dtype=torch.float64), -1)
    assert torch.equal(
        ce.SoftTargetCrossEntropy(2.0)(x, a), ce.soft_target_cross_entropy(x, a, temperature=2.0)
    )
