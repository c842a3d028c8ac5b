"""Collision cross-entropy: production losses and pseudo-label solvers against the mpmath oracle."""

import dataclasses
import itertools
import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given
from hypothesis import strategies as st
from mpmath import mp

from softnce_theory.derivations import CheckConfig
from softnce_theory.derivations import collision_ce as claims
from softnce_theory.derivations import lemmas as L
from softnce_theory.engine import check_claim
from softnce_theory.engine._prover import prove
from softnce_theory.losses import collision_ce as cce
from softnce_theory.numerics import collision_ce as oracle
from softnce_theory.testing import strategies as sst

RTOL64 = 1e-12
UNDERFLOW = 1e-290


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors only: intra-op threads just add OpenMP latency on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@st.composite
def targets(draw, n, c):
    """The shared simplex strategy plus rows with exact zeros and one-hot rows at a given class."""
    if draw(st.booleans()):
        return draw(sst.simplex_targets(n, c))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    a = rng.dirichlet(np.full(c, 0.5), size=n)
    a[a < 0.2] = 0.0
    a[np.arange(n), rng.integers(0, c, size=n)] += 0.1
    return a / a.sum(1, keepdims=True)


def _grads(fn, z, y, **kw):
    zt = sst.as_tensor(z, requires_grad=True)
    yt = sst.as_tensor(y, requires_grad=True)
    out = fn(zt, yt, **kw)
    gz, gy = torch.autograd.grad(out, (zt, yt))
    return float(out.detach()), gz.numpy(), gy.numpy()


def _flat(m):
    return np.array([float(v) for row in m for v in row])


def _assert_value(got, want, atol=0.0):
    if abs(want) < UNDERFLOW:
        assert abs(got) <= UNDERFLOW
    else:
        assert abs(got - float(want)) <= RTOL64 * abs(float(want)) + atol, (got, float(want))


def _assert_normwise(got, want_mp):
    want = _flat(want_mp) if not isinstance(want_mp, np.ndarray) else want_mp
    scale = (
        max(abs(float(w)) for row in want_mp for w in row)
        if not isinstance(want_mp, np.ndarray)
        else np.abs(want).max()
    )
    if scale < UNDERFLOW:
        assert np.abs(got).max() <= UNDERFLOW
        return
    err = np.abs(got.ravel() - want).max()
    assert err <= RTOL64 * scale, (err / scale, got, want)


# ----------------------------------------------------------------------------- float64 vs oracle


@given(data=st.data())
def test_collision_ce_matches_oracle_float64(data):
    z = data.draw(sst.logits())
    y = data.draw(targets(*z.shape))
    if data.draw(st.booleans()):  # the cancellation-prone case: one-hot on the argmax
        y = np.eye(z.shape[1])[z.argmax(1)]
    v, gz, gy = _grads(cce.collision_cross_entropy, z, y)
    with mp.workdps(50):
        _assert_value(v, oracle.collision_ce(z, y))
        _assert_normwise(gz, oracle.collision_ce_grad(z, y))
        want_y = oracle.collision_ce_grad(z, y, "targets")
        if max(abs(w) for row in want_y for w in row) < 1e300:
            _assert_normwise(gy, want_y)
    assert np.isfinite(gz).all()


@given(data=st.data(), lam=st.floats(0, 3))
def test_self_labeling_matches_oracle_float64(data, lam):
    z = data.draw(sst.logits())
    y = data.draw(targets(*z.shape))
    v, gz, gy = _grads(cce.self_labeling_loss, z, y, lam=lam)
    with mp.workdps(50):
        want = oracle.self_labeling_loss(z, y, lam)
        if want == mp.inf:
            assert v == math.inf
            return
        # the fairness term's batch means round at a few lam*eps absolute (see the docstring)
        _assert_value(v, want, atol=16 * np.finfo(np.float64).eps * lam)
        _assert_normwise(gz, oracle.self_labeling_grad(z, y, lam))
        if lam == 0 or (y.sum(0) > 0).all():  # else d/dy = -inf on an empty class
            want_y = oracle.self_labeling_grad(z, y, lam, "targets")
            if max(abs(w) for row in want_y for w in row) < 1e300:
                _assert_normwise(gy, want_y)


@pytest.mark.parametrize(
    "dtype,rtol", [(torch.float32, 1e-5), (torch.float16, 3e-3), (torch.bfloat16, 2e-2)]
)
@given(data=st.data())
def test_low_precision_dtypes(dtype, rtol, data):
    z = data.draw(sst.logits(max_abs=30.0))
    y = data.draw(targets(*z.shape))
    x = sst.as_tensor(z, dtype).requires_grad_(True)
    yt = sst.as_tensor(y, dtype)
    out = cce.collision_cross_entropy(x, yt, validate=False)
    assert out.dtype == dtype
    (g,) = torch.autograd.grad(out, x)
    # reference: float64 on the *same rounded inputs*, so only compute error is measured
    x64 = x.detach().double().requires_grad_(True)
    ref = cce.collision_cross_entropy(x64, yt.double(), validate=False)
    (g64,) = torch.autograd.grad(ref, x64)
    assert float(out.detach()) == pytest.approx(float(ref.detach()), rel=rtol, abs=rtol)
    assert torch.isfinite(g).all()
    assert float((g.double() - g64).abs().max()) <= 4 * rtol * max(1.0, float(g64.abs().max()))


# ----------------------------------------------------------------------------- edge policies


def test_exact_zeros_in_targets_give_no_nan():
    z = torch.tensor([[2.0, -1.0, 0.5, 3.0], [1e4, -1e4, 0.0, 5.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 0.5, 0.5, 0.0], [0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    zt, yt = z.clone().requires_grad_(True), y.clone().requires_grad_(True)
    out = cce.collision_cross_entropy(zt, yt)
    gz, gy = torch.autograd.grad(out, (zt, yt))
    assert torch.isfinite(out)
    assert torch.isfinite(gz).all()
    assert not torch.isnan(gy).any()
    # d/dy_k = -sigma_k / (sigma . y) / N is finite at y_k = 0 (row 0)
    s = torch.softmax(z[0], -1)
    torch.testing.assert_close(gy[0], -s / (s @ y[0]) / 2, rtol=1e-13, atol=0)


def test_extreme_logits_keep_relative_precision():
    z = torch.tensor([[30.0, 0.0, -1e4], [1e4, -1e4, 0.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    out = cce.collision_cross_entropy(z, y, reduction="none")
    vals = out.detach()
    # row 0: H2 = ln(1 + e^-30) ~ 9.4e-14, far below eps: naive log(sum) would return 0
    assert float(vals[0]) == pytest.approx(math.log1p(math.exp(-30.0)), rel=1e-14)
    assert float(vals[1]) == pytest.approx(1e4, rel=1e-15)
    (g,) = torch.autograd.grad(out.sum(), z)
    assert torch.isfinite(g).all()
    # sigma_0 - 1 = -e^-30/(1 + e^-30) exactly representable in relative terms
    assert float(g[0, 0]) == pytest.approx(-math.exp(-30.0) / (1 + math.exp(-30.0)), rel=1e-13)


def test_uniform_targets_value_ln_k_and_exactly_zero_gradient():
    z = (torch.randn(5, 7, dtype=torch.float64) * 100).requires_grad_(True)
    y = torch.full((5, 7), 1.0 / 7, dtype=torch.float64)
    out = cce.collision_cross_entropy(z, y)
    (g,) = torch.autograd.grad(out, z)
    assert float(out.detach()) == pytest.approx(math.log(7), rel=1e-15)
    assert bool((g == 0).all())


def test_onehot_equals_shannon_ce():
    from softnce_theory.losses.cross_entropy import soft_target_cross_entropy

    z = torch.randn(6, 5, dtype=torch.float64) * 3
    y = torch.eye(5, dtype=torch.float64)[torch.tensor([0, 1, 4, 2, 2, 3])]
    a = cce.collision_cross_entropy(z, y, reduction="none")
    b = soft_target_cross_entropy(z, y, reduction="none")
    torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_disjoint_supports_give_inf_with_zero_gradient():
    z = torch.tensor(
        [[0.0, -math.inf, 1.0], [0.0, 1.0, 2.0]], dtype=torch.float64, requires_grad=True
    )
    y = torch.tensor([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]], dtype=torch.float64)
    out = cce.collision_cross_entropy(z, y, reduction="none")
    vals = out.detach()
    assert math.isinf(float(vals[0])) and float(vals[0]) > 0
    assert math.isfinite(float(vals[1]))
    (g,) = torch.autograd.grad(out.sum(), z)
    assert bool((g[0] == 0).all()) and torch.isfinite(g).all()


def test_nan_logits_propagate():
    z = torch.tensor([[float("nan"), 0.0]], dtype=torch.float64)
    assert torch.isnan(
        cce.collision_cross_entropy(z, torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    )


def test_reductions_and_modules():
    z = torch.randn(4, 3, dtype=torch.float64)
    y = torch.softmax(torch.randn(4, 3, dtype=torch.float64), -1)
    rows = cce.collision_cross_entropy(z, y, reduction="none")
    assert rows.shape == (4,)
    torch.testing.assert_close(cce.collision_cross_entropy(z, y, reduction="sum"), rows.sum())
    assert torch.equal(cce.CollisionCrossEntropy()(z, y), cce.collision_cross_entropy(z, y))
    sl = cce.self_labeling_loss(z, y, lam=0.7, reduction="none")
    torch.testing.assert_close(sl.mean(), cce.self_labeling_loss(z, y, lam=0.7))
    torch.testing.assert_close(
        cce.self_labeling_loss(z, y, lam=0.7, reduction="sum"), 4 * sl.mean()
    )
    assert torch.equal(cce.SelfLabelingLoss(0.7)(z, y), cce.self_labeling_loss(z, y, lam=0.7))
    assert cce.collision_cross_entropy(z.float(), y.float()).dtype == torch.float32


def test_double_backward_curvatures():
    # not convex in the logits: negative curvature at the witness of claim nonconvex_in_logits
    z = torch.tensor([[-5.0, -5.0, 0.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0.5, 0.5, 0.0]], dtype=torch.float64)
    d = torch.tensor([[1.0, -1.0, 0.0]], dtype=torch.float64)
    (g,) = torch.autograd.grad(cce.collision_cross_entropy(z, y), z, create_graph=True)
    (hv,) = torch.autograd.grad((g * d).sum(), z)
    curv = float((hv * d).sum())
    assert curv == pytest.approx(2 * math.exp(-5) / (1 + 2 * math.exp(-5)) - 1, rel=1e-13)
    assert curv < 0
    # convex in the targets: Hessian sigma sigma^T / (sigma.y)^2
    zz = torch.randn(1, 4, dtype=torch.float64)
    yy = torch.softmax(torch.randn(1, 4, dtype=torch.float64), -1)
    h = torch.autograd.functional.hessian(
        lambda t: cce.collision_cross_entropy(zz, t.view(1, 4), validate=False), yy.view(-1)
    )
    s = torch.softmax(zz[0], -1)
    torch.testing.assert_close(h, torch.outer(s, s) / (s @ yy[0]) ** 2, rtol=1e-12, atol=0)
    assert float(torch.linalg.eigvalsh(h).min()) >= -1e-14


# ----------------------------------------------------------------------------- EM / PGD


@st.composite
def problems(draw, max_n=6, max_k=4):
    n, k = draw(st.integers(1, max_n)), draw(st.integers(2, max_k))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.floats(0.1, 4))
    lam = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0, 2.5]))
    return torch.softmax(sst.as_tensor(rng.standard_normal((n, k)) * scale), -1), lam


@pytest.mark.parametrize("accelerate", [False, True])
@given(problem=problems())
def test_em_decreases_monotonically_and_converges(problem, accelerate):
    s, lam = problem
    # EM can be sublinear near a boundary optimum: a loose tol keeps "converged" deterministic;
    # tight convergence is tested on fixed problems below
    res = cce.em_pseudo_labels(s, lam=lam, tol=1e-6, max_iter=5000, accelerate=accelerate)
    h = np.array(res.history)
    assert len(h) == res.iterations + 1 == len(res.work)
    # cost accounting: one E+M step per plain iteration (plus the first); two per SQUAREM one
    # plus one per backtrack (at most log_4 of the step bound, itself <= 2 ** iterations)
    steps = np.diff(res.work)
    assert res.work[0] == 1
    assert np.all(steps == 1) if not accelerate else np.all((steps >= 2) & (steps <= 40))
    assert np.all(np.diff(h) <= 4 * np.finfo(np.float64).eps * np.abs(h[:-1]))
    assert res.converged
    torch.testing.assert_close(
        res.y.sum(1), torch.ones(s.shape[0], dtype=s.dtype), rtol=0, atol=1e-14
    )
    assert bool((res.y >= 0).all())
    assert res.history[-1] == pytest.approx(
        float(cce.pseudo_label_objective(s, res.y, lam=lam)), rel=1e-14
    )
    # the stopping rule is a stall test, not a certificate: the Frank-Wolfe gap only bounds F - F*
    assert cce.pseudo_label_gap(s, res.y, lam=lam) >= -1e-12


@given(problem=problems(max_n=3, max_k=3), data=st.data())
def test_em_step_and_objective_match_oracle(problem, data):
    s, lam = problem
    seed = data.draw(st.integers(0, 2**32 - 1))
    y0 = torch.softmax(sst.as_tensor(np.random.default_rng(seed).standard_normal(s.shape)), -1)
    got = cce.em_pseudo_labels(s, lam=lam, y0=y0, max_iter=1, accelerate=False)
    with mp.workdps(50):
        want = oracle.em_step(s.numpy(), y0.numpy(), lam)
        _assert_normwise(got.y.numpy(), want)
        assert got.history[0] == pytest.approx(
            float(oracle.objective(s.numpy(), y0.numpy(), lam)), rel=1e-13
        )
        g = cce.pseudo_label_gradient(s, y0, lam=lam).numpy()
        _assert_normwise(g, oracle.objective_grad(s.numpy(), y0.numpy(), lam))


@pytest.mark.parametrize("accelerate", [False, True])
@pytest.mark.parametrize(
    "seed,n,k,lam", [(0, 4, 3, 1.0), (1, 6, 2, 0.3), (2, 3, 3, 2.0), (3, 5, 4, 0.05)]
)
def test_em_and_pgd_reach_the_same_optimum(seed, n, k, lam, accelerate):
    rng = np.random.default_rng(seed)
    s = torch.softmax(sst.as_tensor(rng.standard_normal((n, k)) * 1.5), -1)
    em = cce.em_pseudo_labels(s, lam=lam, tol=1e-13, max_iter=5000, accelerate=accelerate)
    pg = cce.pgd_pseudo_labels(s, lam=lam, step=0.1 * n, tol=1e-14, max_iter=5000)
    assert em.converged and pg.converged
    g_em = cce.pseudo_label_gap(s, em.y, lam=lam)
    g_pg = cce.pseudo_label_gap(s, pg.y, lam=lam)
    f_em, f_pg = em.history[-1], pg.history[-1]
    assert abs(f_em - f_pg) <= max(g_em, g_pg) + 1e-13 * abs(f_em)
    assert f_em == pytest.approx(f_pg, rel=1e-7)
    assert cce.pseudo_label_kkt_residual(s, em.y, lam=lam) < 1e-3


@pytest.mark.parametrize("accelerate", [False, True])
def test_em_reaches_a_designed_interior_optimum(accelerate):
    rng = np.random.default_rng(5)
    with mp.workdps(50):
        sig_m, ystar, lam_m = oracle.designed_problem(rng, 3, 3)
    s = torch.tensor([[float(v) for v in r] for r in sig_m], dtype=torch.float64)
    s = s / s.sum(1, keepdim=True)
    yst = torch.tensor([[float(v) for v in r] for r in ystar], dtype=torch.float64)
    lam = float(lam_m)
    assert cce.pseudo_label_kkt_residual(s, yst, lam=lam) < 1e-12
    fixed = cce.em_pseudo_labels(s, lam=lam, y0=yst, max_iter=1, accelerate=False).y
    torch.testing.assert_close(fixed, yst, rtol=0, atol=1e-14)
    res = cce.em_pseudo_labels(s, lam=lam, tol=1e-14, max_iter=5000, accelerate=accelerate)
    fstar = float(cce.pseudo_label_objective(s, yst, lam=lam))
    assert res.history[-1] >= fstar - 1e-13 * abs(fstar)
    assert res.history[-1] == pytest.approx(fstar, rel=1e-8)


@pytest.mark.parametrize("accelerate", [False, True])
def test_em_zero_entries_stay_zero_and_pgd_rejects_divergent_steps(accelerate):
    s = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], dtype=torch.float64)
    y0 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]], dtype=torch.float64)
    res = cce.em_pseudo_labels(s, lam=0.5, y0=y0, max_iter=50, accelerate=accelerate)
    assert float(res.y[0, 1]) == 0.0 and float(res.y[0, 2]) == 0.0
    assert float(res.y[1, 0]) == 0.0 and all(math.isfinite(v) for v in res.history)
    bad = cce.pgd_pseudo_labels(s, lam=1.0, step=1e6, max_iter=20)
    assert all(math.isfinite(v) for v in bad.history)
    assert not bad.converged


def test_squarem_needs_fewer_em_steps_on_a_boundary_optimum():
    """Peaked sigma puts the optimum on faces of the simplex, where plain EM is slow; the
    SQUAREM extrapolation must reach the same objective with several times fewer E+M steps."""
    rng = np.random.default_rng(11)
    s = torch.softmax(sst.as_tensor(rng.standard_normal((64, 8)) * 3), -1)
    plain = cce.em_pseudo_labels(s, lam=1.0, tol=1e-300, max_iter=3000, accelerate=False)
    fast = cce.em_pseudo_labels(s, lam=1.0, tol=1e-300, max_iter=3000, accelerate=True)
    f_star = min(min(plain.history), min(fast.history))
    gap = cce.pseudo_label_gap(s, fast.y, lam=1.0)
    assert 0 <= fast.history[-1] - f_star <= gap + 1e-13 * abs(f_star)

    def steps_to(res, tol=1e-6):
        return next(
            w for f, w in zip(res.history, res.work, strict=True) if (f - f_star) / f_star <= tol
        )

    assert 4 * steps_to(fast) <= steps_to(plain), (steps_to(fast), steps_to(plain))


def test_em_accelerate_must_be_a_bool():
    with pytest.raises(ValueError, match="accelerate must be a bool"):
        cce.em_pseudo_labels(torch.full((2, 2), 0.5, dtype=torch.float64), lam=1.0, accelerate=1)


# ----------------------------------------------------------------------------- simplex projection


def _brute_projection(v):
    """Euclidean projection onto the simplex by enumerating supports (tiny K only)."""
    k = len(v)
    best, best_d = None, math.inf
    for r in range(1, k + 1):
        for supp in itertools.combinations(range(k), r):
            theta = (sum(v[i] for i in supp) - 1) / r
            x = np.zeros(k)
            x[list(supp)] = np.array([v[i] for i in supp]) - theta
            if (x[list(supp)] >= 0).all():
                d = float(((x - v) ** 2).sum())
                if d < best_d:
                    best, best_d = x, d
    return best


@given(
    v=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=5),
    extra=st.integers(0, 2),
)
def test_project_simplex_properties(v, extra):
    x = torch.tensor([v] * (extra + 1), dtype=torch.float64)
    p = cce.project_simplex(x)
    assert bool((p >= 0).all())
    torch.testing.assert_close(
        p.sum(-1), torch.ones(extra + 1, dtype=torch.float64), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(cce.project_simplex(p), p, rtol=0, atol=1e-12)  # idempotent
    np.testing.assert_allclose(p[0].numpy(), _brute_projection(np.array(v)), rtol=0, atol=1e-12)
    # variational characterisation: <v - p, w - p> <= 0 for every w on the simplex
    for w in np.eye(len(v)):
        assert float(torch.dot(x[0] - p[0], torch.as_tensor(w) - p[0])) <= 1e-12


def test_project_simplex_batched_shapes():
    v = torch.randn(2, 3, 5, dtype=torch.float64)
    p = cce.project_simplex(v)
    assert p.shape == v.shape
    torch.testing.assert_close(p[1, 2], cce.project_simplex(v[1, 2]))


# ----------------------------------------------------------------------------- bad input


Z = torch.zeros(2, 3)
Y = torch.eye(3)[:2]
S = torch.full((2, 3), 1.0 / 3)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: cce.collision_cross_entropy(Z, torch.full((2, 3), 0.5)),
            "targets rows must sum to 1",
        ),
        (lambda: cce.collision_cross_entropy(Z, -Y), "targets must be non-negative"),
        (
            lambda: cce.collision_cross_entropy(Z, torch.full((2, 3), float("nan"))),
            "targets must be finite",
        ),
        (
            lambda: cce.collision_cross_entropy(Z, torch.eye(3)),
            "targets: dimension B is 3 but logits has B = 2",
        ),
        (
            lambda: cce.collision_cross_entropy(torch.zeros(0, 3), torch.zeros(0, 3)),
            "logits must be a non-empty",
        ),
        (lambda: cce.collision_cross_entropy(Z.long(), Y), "logits must have dtype"),
        (lambda: cce.collision_cross_entropy(Z, Y.long()), "targets must have dtype"),
        (
            lambda: cce.collision_cross_entropy(Z[0], Y[0]),
            r"logits must have shape \(B, C\) \(2-D\)",
        ),
        (
            lambda: cce.collision_cross_entropy(Z, Y, reduction="avg"),  # type: ignore[arg-type]
            "reduction must be one of",
        ),
        (
            lambda: cce.collision_cross_entropy(Z.numpy(), Y),  # type: ignore[arg-type]
            "logits must be a torch.Tensor",
        ),
        (lambda: cce.self_labeling_loss(Z, Y, lam=-1.0), "lam must be finite and >= 0"),
        (lambda: cce.self_labeling_loss(Z, Y, lam=float("nan")), "lam must be finite and >= 0"),
        (
            lambda: cce.self_labeling_loss(Z, Y, lam="1"),  # type: ignore[arg-type]
            "lam must be a real number",
        ),
        (lambda: cce.self_labeling_loss(Z, Y * 2, lam=1.0), "y rows must sum to 1"),
        (lambda: cce.em_pseudo_labels(S, lam=-0.1), "lam must be finite and >= 0"),
        (lambda: cce.em_pseudo_labels(S, lam=1.0, tol=0.0), "tol must be finite and > 0"),
        (lambda: cce.em_pseudo_labels(S, lam=1.0, max_iter=0), "max_iter must be >= 1"),
        (lambda: cce.em_pseudo_labels(S, lam=1.0, max_iter=True), "max_iter must be an int"),
        (lambda: cce.em_pseudo_labels(S * 2, lam=1.0), "probs rows must sum to 1"),
        (lambda: cce.em_pseudo_labels(torch.zeros(0, 3), lam=1.0), "probs must be a non-empty"),
        (
            lambda: cce.em_pseudo_labels(S, lam=1.0, y0=torch.eye(3)),
            "y0: dimension B is 3 but probs has B = 2",
        ),
        (lambda: cce.em_pseudo_labels(S, lam=1.0, y0=-Y), "y0 must be non-negative"),
        (lambda: cce.em_pseudo_labels(Y, lam=1.0, y0=torch.eye(3)[[1, 2]]), "y0 rows must overlap"),
        (
            lambda: cce.em_pseudo_labels(S, lam=1.0, y0=torch.eye(3)[[0, 0]]),
            "y0 must give every class positive mass",
        ),
        (
            lambda: cce.em_pseudo_labels(torch.eye(3)[[0, 0]], lam=1.0),
            "probs .* must give every class",
        ),
        (lambda: cce.pgd_pseudo_labels(S, lam=1.0, step=0.0), "step must be finite and > 0"),
        (
            lambda: cce.pgd_pseudo_labels(S, lam=1.0, step=1.0, tol=-1.0),
            "tol must be finite and > 0",
        ),
        (lambda: cce.pgd_pseudo_labels(S, lam=1.0, step=1.0, max_iter=0), "max_iter must be >= 1"),
        (lambda: cce.project_simplex(torch.zeros(3, dtype=torch.int64)), "v must have dtype"),
        (lambda: cce.project_simplex(torch.zeros(2, 0)), "v must have a non-empty last dimension"),
        (
            lambda: cce.pseudo_label_objective(S, torch.eye(3), lam=1.0),
            "y: dimension B is 3 but probs has B = 2",
        ),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------- claims


@pytest.mark.parametrize("claim", claims.CLAIMS, ids=lambda c: c.id)
def test_claims_hold(claim):
    res = check_claim(claim, CheckConfig(quick=True))
    assert res.status in ("proved", "checked"), [
        (leg.leg, leg.outcome, leg.counterexample or leg.detail) for leg in res.legs
    ]
    if "symbolic" in claim.evidence:
        assert res.status == "proved", claim.id


# ----------------------------------------------------------------------------- proofs bound


def _claim_by_id(name):
    return next(c for c in claims.CLAIMS if c.id == f"collision_ce.{name}")


def test_jensen_certificate_on_the_false_statement_h2_ge_h_is_not_proved():
    """Issue 11 regression: the true Jensen reduction attached to H2 >= H (false) came out
    proved under the old engine. The certificate is now checked against the statement."""
    good = _claim_by_id("jensen_bound")
    assert prove(good).proved and prove(good).binding
    false = dataclasses.replace(
        good,
        statement=lambda: sp.Ge(claims.h2(claims.Y, claims.S), claims.shannon(claims.Y, claims.S)),
    )
    assert not prove(false).proved
    res = check_claim(false, CheckConfig(quick=True))
    assert res.status != "proved"


@pytest.mark.parametrize(
    "name,builder",
    [
        ("em_monotone", claims._em_monotone_statement),
        ("em_majoriser", claims._majoriser_statement),
        ("em_mstep_minimises", claims._mstep_statement),
        ("objective_convex", claims._objective_convex_statement),
        ("nonnegative", claims._nonneg_statement),
    ],
)
def test_certificates_do_not_prove_the_reversed_inequality(name, builder):
    good = _claim_by_id(name)
    flipped = {sp.LessThan: sp.Ge, sp.GreaterThan: sp.Le}

    def reversed_statement():
        st = builder()
        return flipped[type(st)](st.lhs, st.rhs)

    assert not prove(dataclasses.replace(good, statement=reversed_statement)).proved


def test_renyi_rate_certificate_rejects_a_wrong_coefficient():
    good = _claim_by_id("renyi_shannon_rate")
    wrong = dataclasses.replace(
        good,
        statement=lambda: sp.Eq(claims._renyi_rate_statement().lhs, claims._log_variance() / 2),
    )
    assert prove(good).proved and not prove(wrong).proved


def test_kkt_certificate_rejects_a_wrong_identity():
    good = _claim_by_id("em_fixed_point_kkt")
    i, m, y = claims.i, claims.m, claims.y

    def wrong():  # the multiplier's division dropped
        rhs = y[i, m] * (claims.objective_grad(i, m) - claims._mu(i))
        return sp.Eq(claims.em_step(i, m) - y[i, m], rhs)

    assert prove(good).proved and not prove(dataclasses.replace(good, statement=wrong)).proved


def test_simplex_facts_are_needed():
    """Without the simplex facts the H2 >= 0 and Jensen reductions do not close."""
    for name, keep in (
        ("nonnegative", (claims._p_pos(),)),
        ("jensen_bound", (sp.Gt(claims.sig[claims.k], 0),)),
    ):
        c = dataclasses.replace(_claim_by_id(name), facts=lambda keep=keep: keep)
        assert not prove(c).proved, name


def test_kkt_identity_holds_at_a_zero_entry():
    """The KKT statement at N = 2, K = 2, y_12 = 0 (class 2 keeps mass through row 2): both
    sides are 0 at the zero entry, while g_12 != mu_1 there (the old statement 'y_m = y_m g/mu
    implies g = mu' was false at y_m = 0)."""
    half, third = sp.Rational(1, 2), sp.Rational(1, 3)
    sizes = {claims.N: 2, claims.K: 2, claims.i: 1, claims.m: 2}
    y_, s_ = claims.y, claims.sig
    pt = {y_[1, 1]: 1, y_[1, 2]: 0, y_[2, 1]: half, y_[2, 2]: half, claims.lam: half}
    pt.update({s_[1, 1]: third, s_[1, 2]: 2 * third, s_[2, 1]: half, s_[2, 2]: half})

    def at(e):
        return e.xreplace(sizes).doit().xreplace(pt)

    st = claims._kkt_statement()
    assert at(st.lhs) == 0 and at(st.rhs) == 0
    assert sp.simplify(at(claims.objective_grad(1, 2)) - at(claims._mu(1))) != 0


def test_new_lemmas_check():
    for lem in (L.SUM_PRODUCT, L.JENSEN_LOG_ROWS, L.JENSEN_LOG_COLS, L.GIBBS_ROWS, L.SUM_EXCHANGE):
        ok, why = lem.check()
        assert ok, (lem.name, why)


# ----------------------------------------------------------------------------- definition legs


@pytest.mark.parametrize("name", [d.name for d in claims.DEFINITIONS])
def test_definition_legs_pass(name):
    res = oracle.DEFINITION.get(f"collision_ce.{name}")(CheckConfig(quick=True))
    assert res.outcome == "pass" and res.n_points > 0, res.counterexample


@pytest.mark.parametrize(
    "name,mutate",
    [
        (
            "h2",
            lambda: (
                -sp.log(
                    sp.Sum(claims.y[claims.k] * claims.sig[claims.k] ** 2, (claims.k, 1, claims.K))
                )
            ),
        ),
        ("renyi_ce", lambda: claims.renyi(claims.Y, claims.S, claims.alpha + 1)),
        ("objective", lambda: claims.objective() + claims.lam / claims.K),
        ("em_step", lambda: claims.em_step(claims.i, claims.m) ** 2),
        (
            "majoriser",
            lambda: claims.majoriser(claims.Y2, claims.Yold) - claims.lam * sp.log(claims.N),
        ),
    ],
)
def test_definition_leg_catches_a_mutated_definition(name, mutate):
    defn = next(d for d in claims.DEFINITIONS if d.name == name)
    leg = oracle.DEFINITION.get(defn.id)
    bad = dataclasses.replace(defn, build=mutate)
    res = leg(CheckConfig(quick=True), defn=bad)  # the registered leg, given the mutant
    assert res.outcome == "fail", name


def test_definition_leg_catches_a_mutated_oracle(monkeypatch):
    real = oracle.h2_probs
    monkeypatch.setattr(oracle, "h2_probs", lambda y, s: real(y, s) * (1 + mp.mpf(10) ** -30))
    res = oracle.DEFINITION.get("collision_ce.h2")(CheckConfig(quick=True))
    assert res.outcome == "fail"
