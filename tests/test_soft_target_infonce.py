"""Soft-target InfoNCE: production losses vs the mpmath oracle, the official semantics, policies."""

import dataclasses
import math

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from mpmath import mp

import softnce_theory.derivations.soft_target_infonce as D
from softnce_theory.derivations import CheckConfig
from softnce_theory.engine import all_claims, check_claim, definition_registry
from softnce_theory.engine._prover import prove as prove_statement
from softnce_theory.engine.soft_target_infonce import U32, rounding_floor
from softnce_theory.losses import soft_target_infonce as sti
from softnce_theory.numerics import soft_target_infonce as NO
from softnce_theory.numerics import soft_target_infonce as oracle
from softnce_theory.numerics._definitions import definition_leg
from softnce_theory.testing import strategies as sst

RTOL64 = 1e-12
T64 = torch.float64


def _t(x, dtype=T64):
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=dtype)


def _value_grad(fn, x, *args, **kw):
    x = x.detach().clone().requires_grad_(True)
    out = fn(x, *args, **kw)
    (g,) = torch.autograd.grad(out, x)
    return float(out.detach()), g.numpy()


@st.composite
def problems(draw, max_abs=1e4, zero_noise=True):
    """logits (N, C), candidates (M, C) of one target kind, offset, q (or None), t."""
    f = draw(sst.logits(max_abs=max_abs))
    n, c = f.shape
    extra = draw(st.integers(0, 3))
    cands = draw(sst.simplex_targets(n + extra, c))
    off = draw(st.integers(0, extra))
    q = draw(st.one_of(st.none(), sst.noise_distributions(c)))
    if q is not None and zero_noise and draw(st.booleans()):
        unused = np.flatnonzero(cands.max(0) == 0)  # zero probability only where no mass
        if unused.size and unused.size < c:
            q = q.copy()
            q[unused[: draw(st.integers(1, unused.size))]] = 0.0
            q /= q.sum()
    t = draw(sst.temperatures())
    return f, cands, off, q, t


def _call(f, cands, off, q, t, dtype=T64, **kw):
    n = f.shape[0]
    return sti.soft_target_info_nce(
        _t(f, dtype) if not isinstance(f, torch.Tensor) else f,
        _t(cands[off : off + n], dtype),
        None if q is None else _t(q, dtype),
        temperature=t,
        candidates=_t(cands, dtype),
        offset=off,
        **kw,
    )


def _oracle_q(q, c):
    return [mp.mpf(1) / c] * c if q is None else q


# ----------------------------------------------------------------------------- vs oracle


@given(p=problems())
def test_float64_matches_oracle_value_and_grad(p):
    f, cands, off, q, t = p
    v, g = _value_grad(lambda x: _call(x, cands, off, q, t), _t(f))
    vfloor, gfloor = rounding_floor(f, cands, q, t, off)
    with mp.workdps(50):
        args = (f, None, _oracle_q(q, f.shape[1]), t, cands, off)
        want = oracle.loss(*args)
        want_g = np.array([[float(x) for x in row] for row in oracle.grad(*args)])
    assert abs(v - float(want)) <= RTOL64 * abs(float(want)) + vfloor
    assert np.abs(g - want_g).max() <= RTOL64 * np.abs(want_g).max() + gfloor


@given(f=sst.logits(), data=st.data(), t=sst.temperatures())
def test_hard_labels_match_oracle_and_soft_api(f, data, t):
    n, c = f.shape
    extra = data.draw(st.integers(0, 3))
    labels = np.asarray(
        data.draw(st.lists(st.integers(0, c - 1), min_size=n + extra, max_size=n + extra))
    )
    off = data.draw(st.integers(0, extra))
    q = data.draw(st.one_of(st.none(), sst.noise_distributions(c)))
    lab = torch.as_tensor(labels)
    qt = None if q is None else _t(q)

    def hard(x):
        return sti.info_nce_hard_labels(
            x, lab[off : off + n], qt, temperature=t, candidate_labels=lab, offset=off
        )

    v, g = _value_grad(hard, _t(f))
    onehot = np.eye(c)[labels]
    assert v == float(_call(_t(f), onehot, off, q, t))
    vfloor, gfloor = rounding_floor(f, onehot, q, t, off)
    with mp.workdps(50):
        want = oracle.loss(f, None, _oracle_q(q, c), t, onehot, off)
        want_g = np.array(
            [[float(x) for x in r] for r in oracle.grad(f, None, _oracle_q(q, c), t, onehot, off)]
        )
        if q is not None:  # the independent ranking-NCE loop
            rk = oracle.ranking_nce(f, labels[off : off + n].tolist(), q, t, labels.tolist(), off)
            assert abs(v - float(rk)) <= RTOL64 * abs(float(rk)) + vfloor
    assert abs(v - float(want)) <= RTOL64 * abs(float(want)) + vfloor
    assert np.abs(g - want_g).max() <= RTOL64 * np.abs(want_g).max() + gfloor


def test_ties_route_gradient_correctly():
    """Two identical candidates tie for the maximum score: each gets its own weight."""
    f = np.array([[3.0, -1.0, 0.5], [0.2, 0.1, -0.3]])
    cands = np.array([[1.0, 0, 0], [0, 0, 1.0], [1.0, 0, 0], [0, 1.0, 0]])
    for off in (0, 2):
        v, g = _value_grad(lambda x, off=off: _call(x, cands, off, None, 1.0), _t(f))
        with mp.workdps(50):
            want_g = np.array(
                [[float(x) for x in r] for r in oracle.grad(f, None, None, 1, cands, off)]
            )
            want = float(oracle.loss(f, None, None, 1, cands, off))
        assert v == pytest.approx(want, rel=1e-14)
        np.testing.assert_allclose(g, want_g, rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    "dtype,rtol", [(torch.float32, 1e-6), (torch.float16, 2e-3), (torch.bfloat16, 1.6e-2)]
)
@given(data=st.data())
def test_low_precision_vs_float64_on_rounded_inputs(dtype, rtol, data):
    f, cands, off, q, _ = data.draw(problems(max_abs=30.0, zero_noise=False))
    t = data.draw(sst.temperatures(0.1, 10.0))
    n = f.shape[0]
    x, a = _t(f, dtype), _t(cands, dtype)
    qq = None if q is None else _t(q, dtype)
    out = sti.soft_target_info_nce(
        x, a[off : off + n], qq, temperature=t, candidates=a, offset=off, validate=False
    )
    assert out.dtype == dtype
    # reference: float64 on the *same rounded inputs*, so only compute/output error is measured
    x64, a64 = x.double(), a.double()
    q64 = None if qq is None else qq.double()
    ref = float(
        sti.soft_target_info_nce(
            x64, a64[off : off + n], q64, temperature=t, candidates=a64, offset=off, validate=False
        )
    )
    floor, _ = rounding_floor(
        x64.numpy(), a64.numpy(), None if q64 is None else q64.numpy(), t, off, unit=U32
    )
    # below the dtype's normal range only absolute precision is left: the subnormal spacing
    subnormal = torch.finfo(dtype).tiny * torch.finfo(dtype).eps
    assert abs(float(out) - ref) <= rtol * abs(ref) + floor + subnormal


def test_mixed_dtypes_compute_in_widest_return_logits_dtype():
    f = torch.randn(3, 4)
    a = torch.softmax(torch.randn(3, 4, dtype=T64), -1)
    out = sti.soft_target_info_nce(f, a)
    assert out.dtype == torch.float32
    assert float(out) == pytest.approx(float(sti.soft_target_info_nce(f.double(), a)), rel=1e-6)


@pytest.mark.parametrize("t", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("kind", ["onehot", "mixup", "near_degenerate"])
def test_extreme_temperature_and_logits_are_finite(t, kind):
    rng = np.random.default_rng(0)
    f = np.clip(rng.standard_normal((5, 6)) * 1e4, -1e4, 1e4)
    f[0] = [1e4, -1e4, 1e4, -1e4, 0.0, 1e4]
    y = np.array([0, 1, 2, 0, 5])
    eye = np.eye(6)
    a = {
        "onehot": eye[y],
        "mixup": 0.7 * eye[y] + 0.3 * eye[y[::-1]],
        "near_degenerate": eye[y] * (1 - 1e-9) + 1e-9 / 6,
    }[kind]
    q = np.array([1e-30, 0.2, 0.3, 0.1, 0.2, 0.2 - 1e-30])
    for dtype in (T64, torch.float32):
        x = _t(f, dtype).requires_grad_(True)
        out = sti.soft_target_info_nce(x, _t(a, dtype), _t(q, T64), temperature=t)
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(x.grad).all()
        assert float(out.detach()) >= 0
    hard = sti.info_nce_hard_labels(_t(f), torch.as_tensor(y), _t(q), temperature=t)
    assert torch.isfinite(hard)


def test_tiny_loss_keeps_relative_precision():
    """The positive dominates by 700: the loss is ~e^-700, which the official lse would zero."""
    f = _t([[700.0, 0.0]])
    a = _t([[1.0, 0.0]])
    cands = _t([[1.0, 0.0], [0.0, 1.0]])
    out = float(sti.soft_target_info_nce(f, a, candidates=cands))
    assert out == pytest.approx(math.exp(-700), rel=1e-13)


# ----------------------------------------------------------------------------- references


def _naive_nmc(logits, cands, q, t, off):
    """The official code's materialised form: an (N, M, C) tensor of candidate targets."""
    n, c = logits.shape
    m = cands.shape[0]
    g = logits / t - torch.log(q)
    w = cands.unsqueeze(0).expand(n, m, c)  # w[i, j] = alpha_j
    s = (g.unsqueeze(1) * w).sum(-1)
    return F.cross_entropy(s - s.max(1, keepdim=True).values.detach(), torch.arange(n) + off)


@given(p=problems(max_abs=50.0, zero_noise=False))
def test_matmul_equals_naive_nmc_reference(p):
    f, cands, off, q, t = p
    t = max(t, 0.05)
    c = f.shape[1]
    qq = np.full(c, 1.0 / c) if q is None else q
    got = float(_call(f, cands, off, qq, t))
    want = float(_naive_nmc(_t(f), _t(cands), _t(qq), t, off))
    floor, _ = rounding_floor(f, cands, qq, t, off)
    assert abs(got - want) <= 1e-12 * abs(want) + 2 * floor + 1e-15


def _official_numpy(logits, targets, noise_probs, t=1.0, all_targets=None, offset=0):
    """Research note §1.3 semantics, written out: scores G @ A^T with G = f/t - log q (log q not
    divided by t), row max subtracted, cross-entropy against column offset + i, mean over rows."""
    cands = targets if all_targets is None else all_targets
    with np.errstate(divide="ignore", invalid="ignore"):
        g = logits / t - np.log(noise_probs)
        scores = g @ cands.T
        scores = scores - scores.max(axis=1, keepdims=True)
        rows = np.arange(logits.shape[0])
        lse = np.logaddexp.reduce(scores, axis=1)
        return float(np.mean(lse - scores[rows, offset + rows]))


@given(p=problems(max_abs=30.0, zero_noise=False))
def test_reproduces_official_semantics(p):
    f, cands, off, q, t = p
    t = max(t, 0.05)
    c, n = f.shape[1], f.shape[0]
    qq = np.full(c, 1.0 / c) if q is None else q
    want = _official_numpy(f, cands[off : off + n], qq, t, cands, off)
    got = float(_call(f, cands, off, q, t))
    floor, _ = rounding_floor(f, cands, qq, t, off)
    assert abs(got - want) <= 1e-12 * abs(want) + 2 * floor + 1e-14


def test_log_q_is_not_divided_by_temperature():
    f = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 1.5]])
    a = np.array([[0.7, 0.3, 0.0], [0.1, 0.1, 0.8]])
    q = np.array([0.6, 0.3, 0.1])
    t = 0.25
    got = float(sti.soft_target_info_nce(_t(f), _t(a), _t(q), temperature=t))
    assert got == pytest.approx(_official_numpy(f, a, q, t), rel=1e-13)
    divided = _official_numpy(f, a, q ** (1 / t), t)  # what dividing log q by t would give
    assert abs(got - divided) > 1e-3


def test_hard_variant_is_official_one_hot_then_same_loss():
    f = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 1.5], [2.0, 0.0, 0.0]])
    y = np.array([1, 1, 2])
    q = np.array([0.5, 0.3, 0.2])
    got = float(sti.info_nce_hard_labels(_t(f), torch.as_tensor(y), _t(q), temperature=2.0))
    assert got == pytest.approx(_official_numpy(f, np.eye(3)[y], q, 2.0), rel=1e-13)


# ----------------------------------------------------------------------------- policies


def test_zero_noise_probability_masked_when_unused():
    f = np.array([[1.0, 2.0, 0.5, -3.0], [0.0, -1.0, 1.5, 4.0]])
    a = np.array([[0.7, 0.3, 0.0, 0.0], [0.1, 0.1, 0.8, 0.0]])
    q = np.array([0.5, 0.3, 0.2, 0.0])
    x = _t(f).requires_grad_(True)
    out = sti.soft_target_info_nce(x, _t(a), _t(q), temperature=0.5)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(x.grad).all()
    assert float(x.grad[:, 3].abs().max()) == 0.0
    # the official code gives NaN here (0 * log 0); the policy equals dropping the class
    assert math.isnan(_official_numpy(f, a, q, 0.5))
    assert float(out.detach()) == pytest.approx(
        _official_numpy(f[:, :3], a[:, :3], q[:3], 0.5), rel=1e-13
    )
    # and the loss at (1 - eps) q + eps e_3 for any eps in (0, 1)
    for eps in (1e-12, 0.3):
        q_eps = (1 - eps) * q
        q_eps[3] = eps
        got = float(sti.soft_target_info_nce(_t(f), _t(a), _t(q_eps), temperature=0.5))
        assert got == pytest.approx(float(out.detach()), rel=1e-13)
    hard = sti.info_nce_hard_labels(_t(f), torch.tensor([0, 2]), _t(q), temperature=0.5)
    assert torch.isfinite(hard)


def test_zero_noise_probability_with_mass_raises_or_nan():
    f = _t([[1.0, 2.0, 0.5], [0.0, -1.0, 1.5]])
    a = _t([[0.7, 0.3, 0.0], [0.1, 0.1, 0.8]])
    q = _t([0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match=r"noise_probs\[2\] is 0 but targets put positive mass"):
        sti.soft_target_info_nce(f, a, q)
    cands = torch.cat([a, _t([[0.0, 0.0, 1.0]])])
    with pytest.raises(ValueError, match=r"noise_probs\[2\] is 0 but candidates"):
        sti.soft_target_info_nce(f, a, q, candidates=cands)
    with pytest.raises(ValueError, match=r"noise_probs\[2\] is 0 but labels"):
        sti.info_nce_hard_labels(f, torch.tensor([0, 2]), q)
    # without validation: NaN, as in the official code
    assert torch.isnan(sti.soft_target_info_nce(f, a, q, validate=False))
    assert torch.isnan(sti.info_nce_hard_labels(f, torch.tensor([0, 2]), q, validate=False))


def test_nan_and_inf_logits_propagate():
    a = _t([[1.0, 0.0], [0.0, 1.0]])
    for bad in (float("nan"), float("inf")):
        x = _t([[bad, 0.0], [0.0, 1.0]])
        assert not torch.isfinite(sti.soft_target_info_nce(x, a))
        assert not torch.isfinite(sti.info_nce_hard_labels(x, torch.tensor([0, 1])))
        # M = 1, and a NaN on a class no candidate uses, still propagate
        assert torch.isnan(sti.soft_target_info_nce(x[:1], a[:1], candidates=a[:1]))
        assert torch.isnan(sti.info_nce_hard_labels(x[:1], torch.tensor([1])))
    rows = sti.soft_target_info_nce(_t([[float("nan"), 0.0], [0.0, 1.0]]), a, reduction="none")
    assert torch.isnan(rows[0]) and torch.isfinite(rows[1])


def test_candidates_offset_reproduce_global_rows():
    rng = np.random.default_rng(1)
    w, n, c = 3, 2, 5
    f = _t(rng.standard_normal((w * n, c)) * 3)
    a = _t(rng.dirichlet(np.ones(c), size=w * n))
    q = _t(rng.dirichlet(np.ones(c)))
    glob = sti.soft_target_info_nce(f, a, q, temperature=0.7, reduction="none")
    per_rank = [
        sti.soft_target_info_nce(
            f[r * n : (r + 1) * n],
            a[r * n : (r + 1) * n],
            q,
            temperature=0.7,
            candidates=a,
            offset=r * n,
        )
        for r in range(w)
    ]
    torch.testing.assert_close(
        torch.stack(per_rank), glob.view(w, n).mean(1), rtol=1e-14, atol=1e-14
    )
    total = sti.soft_target_info_nce(f, a, q, temperature=0.7, reduction="sum")
    assert float(total) == pytest.approx(float(glob.sum()), rel=1e-15)


def test_identical_candidates_and_single_candidate():
    f = _t(np.random.default_rng(2).standard_normal((3, 4)) * 100)
    a = _t(np.tile([[0.1, 0.2, 0.3, 0.4]], (3, 1)))
    assert float(sti.soft_target_info_nce(f, a, temperature=0.01)) == pytest.approx(
        math.log(3), rel=1e-14
    )
    assert float(sti.soft_target_info_nce(f[:1], a[:1])) == 0.0


def test_modules_match_functional():
    f = torch.randn(4, 5, dtype=T64)
    a = torch.softmax(torch.randn(4, 5, dtype=T64), -1)
    q = torch.softmax(torch.randn(5, dtype=T64), -1)
    y = torch.tensor([0, 1, 4, 4])
    mod = sti.SoftTargetInfoNCE(q, temperature=2.0)
    assert "noise_probs" in dict(mod.named_buffers())
    assert torch.equal(mod(f, a), sti.soft_target_info_nce(f, a, q, temperature=2.0))
    assert torch.equal(
        mod(f[2:], a[2:], a, 2),
        sti.soft_target_info_nce(f[2:], a[2:], q, temperature=2.0, candidates=a, offset=2),
    )
    assert torch.equal(sti.SoftTargetInfoNCE()(f, a), sti.soft_target_info_nce(f, a))
    hard = sti.InfoNCEHardLabels(q, temperature=0.5, reduction="none")
    assert torch.equal(
        hard(f, y), sti.info_nce_hard_labels(f, y, q, temperature=0.5, reduction="none")
    )
    with pytest.raises(ValueError, match="noise_probs rows must sum to 1"):
        sti.SoftTargetInfoNCE(torch.ones(3, dtype=T64))


# ----------------------------------------------------------------------------- bad input

Z = torch.zeros(2, 3, dtype=T64)
A2 = torch.eye(3, dtype=T64)[:2]
Q3 = torch.full((3,), 1 / 3, dtype=T64)
Y2 = torch.tensor([0, 1])


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: sti.soft_target_info_nce(Z.long(), A2), "logits must have dtype"),
        (lambda: sti.soft_target_info_nce(Z[0], A2[0]), r"logits must have shape \(B, C\) \(2-D\)"),
        (lambda: sti.soft_target_info_nce(Z[:0], A2[:0]), "logits must be a non-empty batch"),
        (
            lambda: sti.soft_target_info_nce(Z, torch.eye(3, dtype=T64)),
            "targets: dimension B is 3 but logits has B = 2",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, torch.full((2, 3), 0.5, dtype=T64)),
            "targets rows must sum to 1",
        ),
        (lambda: sti.soft_target_info_nce(Z, -A2), "targets must be non-negative"),
        (
            lambda: sti.soft_target_info_nce(Z, torch.full((2, 3), math.nan, dtype=T64)),
            "targets must be finite",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, torch.ones(4, dtype=T64) / 4),
            "noise_probs: dimension C is 4 but logits has C = 3",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, torch.ones(1, 3, dtype=T64) / 3),
            r"noise_probs must have shape \(C,\) \(1-D\)",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, torch.tensor([1.5, -0.5, 0.0], dtype=T64)),
            "noise_probs must be non-negative",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, torch.tensor([math.nan, 0.5, 0.5], dtype=T64)),
            "noise_probs must be finite",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, torch.tensor([0.5, 0.3, 0.3], dtype=T64)),
            "noise_probs rows must sum to 1",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, temperature=0.0),
            "temperature must be finite and > 0",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, temperature=math.inf),
            "temperature must be finite and > 0",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, temperature=True),
            "temperature must be a real number",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, reduction="avg"),  # type: ignore[arg-type]
            "reduction must be one of",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, candidates=torch.eye(4, dtype=T64)),
            "candidates: dimension C is 4 but logits has C = 3",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, candidates=A2.long()),
            "candidates must have dtype",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, candidates=torch.full((3, 3), 0.5, dtype=T64)),
            "candidates rows must sum to 1",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, offset=1),
            r"offset must satisfy 0 <= offset and offset \+ N <= M",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, candidates=torch.eye(3, dtype=T64), offset=-1),
            "offset must satisfy",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, candidates=torch.eye(3, dtype=T64), offset=2),
            "offset must satisfy",
        ),
        (
            lambda: sti.soft_target_info_nce(
                Z,
                A2,
                candidates=torch.eye(3, dtype=T64),
                offset=1.0,  # type: ignore[arg-type]
            ),
            "offset must be an integer",
        ),
        (
            lambda: sti.soft_target_info_nce(
                Z, A2, candidates=torch.eye(3, dtype=T64), offset=True
            ),
            "offset must be an integer",
        ),
        (
            lambda: sti.soft_target_info_nce(Z, A2, candidates=torch.eye(3, dtype=T64), offset=1),
            r"candidates\[offset:offset\+N\] must equal targets",
        ),
        (lambda: sti.info_nce_hard_labels(Z, torch.tensor([0, 3])), r"labels must lie in \[0, 3\)"),
        (
            lambda: sti.info_nce_hard_labels(Z, torch.tensor([0.0, 1.0])),
            "labels must have an integer dtype",
        ),
        (
            lambda: sti.info_nce_hard_labels(Z, torch.tensor([0, 1, 2])),
            r"labels must have shape \(2,\)",
        ),
        (
            lambda: sti.info_nce_hard_labels(Z, Y2, candidate_labels=torch.tensor([[0, 1]])),
            r"candidate_labels must have shape \(M,\) \(1-D\)",
        ),
        (
            lambda: sti.info_nce_hard_labels(Z, Y2, candidate_labels=torch.tensor([0, 5])),
            r"candidate_labels must lie in \[0, 3\)",
        ),
        (
            lambda: sti.info_nce_hard_labels(
                Z, Y2, candidate_labels=torch.tensor([2, 0, 1]), offset=0
            ),
            r"candidate_labels\[offset:offset\+N\] must equal labels",
        ),
        (
            lambda: sti.info_nce_hard_labels(
                Z, Y2, candidate_labels=torch.tensor([2, 0, 1]), offset=2
            ),
            "offset must satisfy",
        ),
        (
            lambda: sti.info_nce_hard_labels(Z, Y2, Q3, temperature=-1.0),
            "temperature must be finite and > 0",
        ),
    ],
)
def test_bad_input_raises_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_validate_false_skips_value_checks():
    off_simplex = torch.full((2, 3), 0.5, dtype=T64)
    out = sti.soft_target_info_nce(Z, off_simplex, validate=False)
    assert torch.isfinite(out)


# ----------------------------------------------------------------------------- claims

CLAIMS = [c for c in all_claims(["soft_target_infonce"])]
BY_NAME = {c.id.split(".", 1)[1]: c for c in CLAIMS}
CHECKED_ONLY = {"large_k_rate", "gathered_consistency"}  # no symbolic leg (see their notes)


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claims_hold(claim):
    r = check_claim(claim, CheckConfig(quick=True))
    assert r.status in ("proved", "checked"), [
        (leg.leg, leg.outcome, leg.detail, leg.counterexample) for leg in r.legs
    ]
    assert all(leg.n_points > 0 for leg in r.legs if leg.leg != "symbolic")
    if "symbolic" in claim.evidence:
        assert r.status == "proved"
        assert claim.prove is None and not claim.assumptions  # no legacy verdicts
    else:
        assert claim.id.split(".", 1)[1] in CHECKED_ONLY


def test_every_statement_uses_family_definitions():
    names = {d.name for d in D.DEFINITIONS}
    for claim in CLAIMS:
        assert claim.uses and set(claim.uses) <= names, claim.id
        st = claim.statement()
        assert isinstance(st, sp.Basic) and not st.atoms(sp.core.function.AppliedUndef)


def _with(name, **kw):
    return dataclasses.replace(BY_NAME[name], **kw)


@pytest.mark.parametrize(
    "name,statement",
    [
        # the temperature gradient with the sign of the expectation term flipped
        (
            "temperature_gradient",
            lambda: sp.Eq(
                sp.Derivative(D.row_loss(), D.t),
                D._tau_closed() + 2 * sp.Sum(D._weights(D.j) * D.alpha[D.j, 1], (D.j, 1, D.M)),
            ),
        ),
        # the gradient without the 1/t
        ("gradient", lambda: sp.Eq(sp.Derivative(D.row_loss(), D.f[D.m]), D._grad_closed() * D.t)),
        # the soft bound reversed (the certificate proves <=, not >=)
        ("large_k_soft_below_soft_ce", lambda: sp.Ge(D.large_k_limit(), D._soft_bound_big())),
    ],
)
def test_certificates_do_not_prove_mutated_statements(name, statement):
    assert not prove_statement(_with(name, statement=statement)).proved


def test_facts_are_needed():
    """Drop the simplex, E[alpha] = q, or M >= 2: the certificates no longer close."""
    assert not prove_statement(_with("gradient_zero_sum", facts=lambda: ())).proved
    assert not prove_statement(_with("uniform_noise_noop", facts=lambda: ())).proved
    soft = BY_NAME["large_k_soft_below_soft_ce"]
    assert not prove_statement(
        _with(soft.id.split(".")[1], facts=lambda: soft.fact_list()[:3])
    ).proved
    assert not prove_statement(_with("positive_several_candidates", facts=D._pos_range)).proved


def _definition_leg(name):
    return definition_registry().get(f"soft_target_infonce.{name}")


def test_definition_legs_catch_a_mutated_definition():
    cfg = CheckConfig(quick=True)
    assert _definition_leg("soft_target_infonce")(cfg).outcome == "pass"
    defn = next(d for d in D.DEFINITIONS if d.name == "soft_target_infonce")
    # log q divided by t, as a mistyped definition would have it
    mutated = dataclasses.replace(
        defn, build=lambda: D.row_loss(noise=lambda cc: D.q[cc] ** (1 / D.t))
    )
    res = definition_leg(mutated, NO._sample_loss, NO._oracle_loss, cfg, n=3)
    assert res.outcome == "fail" and res.counterexample


def test_definition_legs_catch_a_mutated_oracle(monkeypatch):
    cfg = CheckConfig(quick=True)
    assert _definition_leg("large_k_limit")(cfg).outcome == "pass"
    real = NO.large_k_limit

    def off_by_log2(*args, **kw):
        return real(*args, **kw) + mp.log(2)

    monkeypatch.setattr(NO, "large_k_limit", off_by_log2)
    res = _definition_leg("large_k_limit")(cfg)
    assert res.outcome == "fail" and res.counterexample
    monkeypatch.setattr(NO, "ranking_nce", lambda *a, **k: mp.mpf(0))
    assert _definition_leg("ranking_nce")(cfg).outcome == "fail"


@pytest.mark.parametrize("name", ["jensen_exp_rows", "sum_gt_term"])
def test_family_lemmas_check_their_own_gap(name, monkeypatch):
    """The lemmas added for this family: the check passes, and fails on a mutated gap."""
    import softnce_theory.derivations.lemmas as lemmas

    attr = {"jensen_exp_rows": "JENSEN_EXP_ROWS", "sum_gt_term": "SUM_GT_TERM"}[name]
    lem = getattr(lemmas, attr)
    assert lem.check()[0]
    gap = lem.gap
    monkeypatch.setattr(lemmas, attr, dataclasses.replace(lem, gap=lambda: 2 * gap() + 1))
    assert not getattr(lemmas, attr).check()[0]
