"""Tiled losses (``softnce_theory.losses.tiled``): equal to dense, O(tile^2 + BD) memory, policies.

Three independent checks for every tiled loss:

* against a straightforward dense reference written here from the papers' formulas
  (research notes ``sincere_supcon_aljundi.md`` §0/§3, ``soft_target_infonce.md`` §1.2,
  ``ecosystem.md`` §2.1), float64 to ~1e-12 (value relative, gradient normwise);
* against the production dense losses (``softnce_theory.losses.{sincere,infonce,aljundi,
  soft_target_infonce}``), float64 ~1e-12 and float32 ~1e-6;
* ``torch.autograd.gradcheck`` of every autograd Function and of the losses, in float64.

Hypothesis draws batch sizes, tile sizes (ragged last tiles, tile 1, tile > batch), label
layouts (singleton classes, single-class batches, no positives at all), views and
temperatures.
"""

from __future__ import annotations

import importlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from softnce_theory.losses import tiled
from softnce_theory.losses.tiled import _kernels as K

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64
NINF = float("-inf")


# ============================================================================ dense references


def _flat(e: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if e.dim() == 3:
        b, v, d = e.shape
        return e.reshape(b * v, d), y.repeat_interleave(v)
    return e, y


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def ref_supcon(e, y, t, variant="out", normalize=True, base=None, reduction="mean"):
    r"""Khosla et al. eq. 2/3 with anchors without positives excluded from the mean."""
    z, y = _flat(e.to(F64), y)
    z = _unit(z) if normalize else z
    s = z @ z.T / t
    n = s.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    pos = (y[:, None] == y[None, :]) & ~eye
    logp = s - torch.logsumexp(s.masked_fill(eye, NINF), 1, keepdim=True)  # log softmax over A(i)
    cnt = pos.sum(1)
    valid = cnt > 0
    if variant == "out":
        rows = -torch.where(pos, logp, 0.0).sum(1) / cnt.clamp(min=1)
    else:
        rows = -(
            torch.logsumexp(logp.masked_fill(~pos, NINF), 1) - torch.log(cnt.clamp(min=1).to(F64))
        )
    rows = torch.where(valid, rows, 0.0)
    scale = 1.0 if base is None else t / base
    if reduction == "none":
        return rows * scale
    if reduction == "sum":
        return rows.sum() * scale
    return rows.sum() / valid.sum().clamp(min=1) * scale


def ref_sincere(e, y, t, normalize=True, reduction="mean"):
    r"""Per pair :math:`-\log e^{s_{ip}}/(e^{s_{ip}}+\sum_{N(i)}e^{s_{in}})`, mean over P(i)."""
    z, y = _flat(e.to(F64), y)
    z = _unit(z) if normalize else z
    s = z @ z.T / t
    n = s.shape[0]
    same = y[:, None] == y[None, :]
    pos = same & ~torch.eye(n, dtype=torch.bool)
    lse_neg = torch.logsumexp(s.masked_fill(same, NINF), 1, keepdim=True)
    pair = torch.logaddexp(s, lse_neg) - s  # -log(e^s / (e^s + sum_N e^s))
    cnt = pos.sum(1)
    rows = torch.where(pos, pair, 0.0).sum(1) / cnt.clamp(min=1)
    valid = cnt > 0
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.sum() / valid.sum().clamp(min=1)


def ref_esupcon(e, y, w, t, normalize=True):
    """Reconstructed ESupCon: SupCon L_out on the row [s_i., t_i.] with positives
    P(i) + own prototype, denominators over A(i) and all prototypes."""
    z, y = _flat(e.to(F64), y)
    w = w.to(F64)
    if normalize:
        z, w = _unit(z), _unit(w)
    n, k = z.shape[0], w.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    logits = torch.cat([(z @ z.T / t).masked_fill(eye, NINF), z @ w.T / t], 1)
    pos = torch.cat([(y[:, None] == y[None, :]) & ~eye, F.one_hot(y, k).bool()], 1)
    logp = logits - torch.logsumexp(logits, 1, keepdim=True)
    return (-torch.where(pos, logp, 0.0).sum(1) / pos.sum(1)).mean()


def ref_infonce(q, k, t, symmetric=False, similarity="cosine", key_log_q=None):
    q, k = q.to(F64), k.to(F64)
    if similarity == "cosine":
        q, k = _unit(q), _unit(k)
    s = q @ k.T / t
    target = torch.arange(q.shape[0])
    if symmetric:
        return (F.cross_entropy(s, target) + F.cross_entropy(s.T, target)) / 2
    if key_log_q is not None:
        s = s - key_log_q.to(F64)[None, :]
    return F.cross_entropy(s, target)


def ref_soft_target(f, a_pos, cand, q, t, offset):
    """Hugger & Uhlmann: S = (f/t - log q) A^T, CE against column offset + i."""
    g = f.to(F64) / t - (torch.log(q.to(F64)) if q is not None else -math.log(f.shape[1]))
    s = g @ cand.to(F64).T
    return F.cross_entropy(s, torch.arange(f.shape[0]) + offset)


# ============================================================================ helpers


def _grads(loss, inputs):
    return torch.autograd.grad(loss, inputs, allow_unused=True, materialize_grads=True)


def _assert_close(a, b, ga, gb, rtol, atol=0.0):
    """Value: relative error; gradients: normwise relative error (absolute below norm 1, for
    gradients that vanish exactly, e.g. L_in of a single-class batch). ``atol`` covers the
    references' own cancellation ``LSE - s_pos`` (absolute error ~ eps * |s|) on tiny losses."""
    va, vb = a.detach().to(F64), b.detach().to(F64)
    scale = vb.abs().max().clamp(min=1e-300) if vb.numel() else 1.0
    assert float((va - vb).abs().max()) <= rtol * float(scale) + atol, (va, vb)
    for x, y in zip(ga, gb, strict=True):
        nrm = float(y.norm())
        err = float((x.to(F64) - y.to(F64)).norm())
        assert err <= rtol * max(nrm, 1.0), (err, nrm)


def _ref_atol(tau: float) -> float:
    """The references' own absolute error on tiny losses: ~eps times the logit scale 1/tau
    (they form ``-log softmax`` as a difference of log-sum-exps)."""
    return 1e-15 * (1.0 + 1.0 / tau)


def _labels(rng: np.random.Generator, n: int, layout: str) -> torch.Tensor:
    if layout == "random":
        lab = rng.integers(0, max(1, n // 3), size=n)
    elif layout == "singletons":  # every class of size 1: no positives at all
        lab = rng.permutation(n)
    elif layout == "single_class":
        lab = np.zeros(n, dtype=np.int64)
    elif layout == "mixed":  # some singletons, some classes >= 2
        lab = np.concatenate([np.arange(n // 2) // 2, 1000 + np.arange(n - n // 2)])
        lab = rng.permutation(lab)
    else:  # many small classes, sparse label values
        lab = 7 * rng.integers(0, max(1, n // 4), size=n)
    return torch.as_tensor(lab, dtype=torch.int64)


LAYOUTS = ("random", "singletons", "single_class", "mixed", "sparse")


@st.composite
def labelled_case(draw, max_n=24):
    n = draw(st.integers(1, max_n))
    tile = draw(st.integers(1, n + 3))
    views = draw(st.sampled_from((0, 0, 2)))
    layout = draw(st.sampled_from(LAYOUTS))
    tau = draw(st.sampled_from((0.05, 0.1, 0.5, 2.0)))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    shape = (n, views, 5) if views else (n, 5)
    e = torch.as_tensor(rng.standard_normal(shape) * 2.0, dtype=F64)
    return e, _labels(rng, n, layout), tile, tau


# ============================================================================ vs dense reference


@given(labelled_case(), st.sampled_from(("out", "in")), st.sampled_from(("mean", "sum", "none")))
def test_supcon_matches_reference(case, variant, reduction):
    e, y, tile, tau = case
    e.requires_grad_()
    a = tiled.tiled_supcon_loss(
        e, y, temperature=tau, variant=variant, reduction=reduction, tile=tile
    )
    b = ref_supcon(e, y, tau, variant, reduction=reduction)
    w = torch.linspace(0.5, 1.5, a.numel(), dtype=F64).reshape(a.shape)
    ga, gb = _grads((a * w).sum(), [e]), _grads((b * w).sum(), [e])
    _assert_close(a, b, ga, gb, 1e-12, _ref_atol(tau))


@given(labelled_case(), st.sampled_from(("mean", "sum", "none")))
def test_sincere_matches_reference(case, reduction):
    e, y, tile, tau = case
    e.requires_grad_()
    a = tiled.tiled_sincere_loss(e, y, temperature=tau, reduction=reduction, tile=tile)
    b = ref_sincere(e, y, tau, reduction=reduction)
    w = torch.linspace(0.5, 1.5, a.numel(), dtype=F64).reshape(a.shape)
    ga, gb = _grads((a * w).sum(), [e]), _grads((b * w).sum(), [e])
    _assert_close(a, b, ga, gb, 1e-12, _ref_atol(tau))


@given(labelled_case(max_n=16), st.integers(1, 6))
def test_esupcon_matches_reference(case, extra_classes):
    e, y, tile, tau = case
    y = y % 5
    k = int(y.max()) + extra_classes
    w = torch.randn(k, e.shape[-1], dtype=F64, generator=torch.Generator().manual_seed(k))
    e.requires_grad_()
    w.requires_grad_()
    a = tiled.tiled_esupcon_loss(e, y, w, temperature=tau, tile=tile)
    b = ref_esupcon(e, y, w, tau)
    _assert_close(a, b, _grads(a, [e, w]), _grads(b, [e, w]), 1e-12, _ref_atol(tau))


@given(
    st.integers(1, 20),
    st.integers(1, 24),
    st.sampled_from((0.05, 0.3, 2.0)),
    st.sampled_from(("cosine", "dot")),
    st.integers(0, 2**31 - 1),
)
def test_infonce_matches_reference(n, tile, tau, similarity, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n, 4, dtype=F64, generator=g).requires_grad_()
    k = (q.detach() + torch.randn(n, 4, dtype=F64, generator=g)).requires_grad_()
    lq = torch.randn(n, dtype=F64, generator=g)
    for lqx in (None, lq):
        a = tiled.tiled_info_nce(
            q, k, temperature=tau, similarity=similarity, key_log_q=lqx, tile=tile
        )
        b = ref_infonce(q, k, tau, similarity=similarity, key_log_q=lqx)
        atol = 1e-15 * float(b.detach().abs() + (q @ k.T).detach().abs().max() / tau)
        _assert_close(a, b, _grads(a, [q, k]), _grads(b, [q, k]), 1e-12, atol)
    a = tiled.tiled_symmetric_info_nce(q, k, temperature=tau, similarity=similarity, tile=tile)
    b = ref_infonce(q, k, tau, symmetric=True, similarity=similarity)
    atol = 1e-15 * float((q @ k.T).detach().abs().max() / tau)
    _assert_close(a, b, _grads(a, [q, k]), _grads(b, [q, k]), 1e-12, atol)


@given(
    st.integers(1, 12),
    st.integers(0, 6),
    st.integers(2, 7),
    st.integers(1, 20),
    st.booleans(),
    st.integers(0, 2**31 - 1),
)
def test_soft_target_matches_reference(n, extra, c, tile, uniform, seed):
    rng = np.random.default_rng(seed)
    m = n + extra
    off = int(rng.integers(0, extra + 1))
    cand = torch.as_tensor(rng.dirichlet(np.full(c, 0.5), size=m), dtype=F64)
    cand = cand / cand.sum(1, keepdim=True)
    tg = cand[off : off + n].clone()
    q = None if uniform else torch.as_tensor(rng.dirichlet(np.ones(c)), dtype=F64)
    if q is not None:
        q = q / q.sum()
    f = torch.as_tensor(rng.standard_normal((n, c)) * 3, dtype=F64).requires_grad_()
    a = tiled.tiled_soft_target_info_nce(
        f, tg, q, temperature=0.7, candidates=cand, offset=off, tile=tile
    )
    b = ref_soft_target(f, tg, cand, q, 0.7, off)
    atol = 1e-15 * float(f.detach().abs().max() / 0.7 + 10)
    _assert_close(a, b, _grads(a, [f]), _grads(b, [f]), 1e-12, atol)


# ============================================================================ vs production dense


def _dense(module: str, name: str):
    try:
        mod = importlib.import_module(f"softnce_theory.losses.{module}")
    except ImportError:
        pytest.skip(f"softnce_theory.losses.{module} not available")
    fn = getattr(mod, name, None)
    if fn is None:
        pytest.skip(f"{module}.{name} not available")
    import inspect

    if "tile" in inspect.signature(fn).parameters:
        return lambda *a, **k: fn(*a, tile=0, **k)
    return fn


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_labelled_families_match_production(dtype, rtol, layout):
    supcon = _dense("sincere", "supcon_loss")
    sincere = _dense("sincere", "sincere_loss")
    esupcon = _dense("aljundi", "esupcon_loss")
    rng = np.random.default_rng(len(layout))
    for n, tile, views in ((37, 8, 0), (30, 7, 2), (16, 64, 0)):
        y = _labels(rng, n, layout)
        shape = (n, views, 6) if views else (n, 6)
        e = torch.as_tensor(rng.standard_normal(shape), dtype=dtype).requires_grad_()
        w = torch.as_tensor(rng.standard_normal((int(y.max()) + 2, 6)), dtype=dtype)
        w.requires_grad_()
        for kw in ({}, {"variant": "in"}, {"base_temperature": 0.07}, {"normalize": False}):
            a = tiled.tiled_supcon_loss(e, y, temperature=0.2, tile=tile, **kw)
            b = supcon(e, y, temperature=0.2, **kw)
            _assert_close(a, b, _grads(a, [e]), _grads(b, [e]), rtol)
        for red in ("mean", "none", "sum"):
            a = tiled.tiled_sincere_loss(e, y, temperature=0.2, tile=tile, reduction=red)
            b = sincere(e, y, temperature=0.2, reduction=red)
            assert a.dtype == b.dtype == dtype
            _assert_close(a, b, _grads(a.sum(), [e]), _grads(b.sum(), [e]), rtol)
        ys = y if layout != "sparse" else y // 7
        a = tiled.tiled_esupcon_loss(e, ys, w, temperature=0.2, tile=tile)
        b = esupcon(e, ys, w, temperature=0.2)
        _assert_close(a, b, _grads(a, [e, w]), _grads(b, [e, w]), rtol)


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_infonce_and_soft_target_match_production(dtype, rtol):
    info_nce = _dense("infonce", "info_nce")
    sym = _dense("infonce", "symmetric_info_nce")
    st_nce = _dense("soft_target_infonce", "soft_target_info_nce")
    g = torch.Generator().manual_seed(3)
    for n, tile in ((33, 8), (5, 16)):
        q = torch.randn(n, 8, dtype=dtype, generator=g).requires_grad_()
        k = torch.randn(n, 8, dtype=dtype, generator=g).requires_grad_()
        lq = torch.randn(n, dtype=dtype, generator=g)
        for kw in ({}, {"similarity": "dot", "temperature": 3.0}, {"key_log_q": lq}):
            a = tiled.tiled_info_nce(q, k, tile=tile, **kw)
            b = info_nce(q, k, **kw)
            _assert_close(a, b, _grads(a, [q, k]), _grads(b, [q, k]), rtol)
        a = tiled.tiled_symmetric_info_nce(q, k, tile=tile, reduction="none")
        b = sym(q, k, reduction="none")
        _assert_close(a, b, _grads(a.sum(), [q, k]), _grads(b.sum(), [q, k]), rtol)
        c = 6
        f = (3 * torch.randn(n, c, dtype=dtype, generator=g)).requires_grad_()
        cand = torch.distributions.Dirichlet(torch.ones(c, dtype=F64)).sample((n + 4,))
        cand = (cand / cand.sum(1, keepdim=True)).to(dtype)
        qn = torch.tensor([0.3, 0.2, 0.1, 0.1, 0.2, 0.1], dtype=dtype)
        for kw in ({"candidates": cand, "offset": 2}, {}):
            tg = cand[2 : 2 + n] if kw else cand[:n]
            for noise in (None, qn):
                a = tiled.tiled_soft_target_info_nce(f, tg, noise, temperature=0.5, tile=tile, **kw)
                b = st_nce(f, tg, noise, temperature=0.5, **kw)
                _assert_close(a, b, _grads(a, [f]), _grads(b, [f]), rtol)


def test_float32_close_to_float64():
    """Lower precision: the float32 tiled loss against the float64 one on the same inputs."""
    g = torch.Generator().manual_seed(0)
    e64 = torch.randn(300, 16, dtype=F64, generator=g)
    y = torch.randint(0, 40, (300,), generator=g)
    for fn in (tiled.tiled_sincere_loss, tiled.tiled_supcon_loss):
        e32 = e64.float().requires_grad_()
        e6 = e64.clone().requires_grad_()
        a, b = fn(e32, y, tile=64), fn(e6, y, tile=64)
        _assert_close(a, b, _grads(a, [e32]), _grads(b, [e6]), 2e-6)


def test_half_precision_inputs_compute_in_float32():
    g = torch.Generator().manual_seed(1)
    e = torch.randn(40, 8, generator=g).to(torch.bfloat16).requires_grad_()
    y = torch.arange(40) % 7
    a = tiled.tiled_sincere_loss(e, y, tile=16)
    b = ref_sincere(e.detach().float(), y, 0.1)
    assert a.dtype == torch.bfloat16
    assert abs(float(a.detach()) - float(b)) <= 1e-2 * float(b)
    (ga,) = _grads(a, [e])
    assert ga.dtype == torch.bfloat16 and bool(torch.isfinite(ga).all())


# ============================================================================ gradcheck


def _sorted_case(n=9, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.sort(torch.arange(n) % k).values
    z = torch.randn(n, 4, dtype=F64, generator=g)
    return z, y


@pytest.mark.parametrize("flags", [K.ALL, K.NEG, K.POS_LSE, K.POS_SUM, 15])
@pytest.mark.parametrize("tile", [2, 4, 9])
def test_gradcheck_label_stats(flags, tile):
    z, y = _sorted_case()

    def f(z):
        outs = K.LabelStats.apply(z, y, 1 / 0.7, tile, flags)
        return tuple(
            o
            for o, fl in zip(outs, (K.ALL, K.NEG, K.POS_LSE, K.POS_SUM), strict=True)
            if flags & fl
        )

    assert torch.autograd.gradcheck(f, (z.requires_grad_(),))


@pytest.mark.parametrize("tile", [2, 5, 9])
def test_gradcheck_pos_softplus(tile):
    z, y = _sorted_case()
    x = torch.randn(9, dtype=F64, generator=torch.Generator().manual_seed(2))
    assert torch.autograd.gradcheck(
        lambda z, x: K.PosSoftplus.apply(z, y, x, 1 / 0.7, tile),
        (z.requires_grad_(), x.requires_grad_()),
    )


@pytest.mark.parametrize("mode", ["row", "col", "both"])
@pytest.mark.parametrize("exclude", ["none", "offset", "cols"])
def test_gradcheck_cross_lse(mode, exclude):
    g = torch.Generator().manual_seed(4)
    q = torch.randn(7, 3, dtype=F64, generator=g).requires_grad_()
    k = torch.randn(9, 3, dtype=F64, generator=g).requires_grad_()
    b = torch.randn(9, dtype=F64, generator=g).requires_grad_()
    cols = torch.tensor([0, 3, 3, 8, 1, 2, 5]) if exclude == "cols" else None
    off = 2 if exclude == "offset" else None
    want = (mode != "col", mode != "row")

    def f(q, k, b):
        r, c = K.CrossLSE.apply(q, k, b, cols, 0.8, 4, *want, off)
        return tuple(x for x, w in zip((r, c), want, strict=True) if w)

    assert torch.autograd.gradcheck(f, (q, k, b))


def test_gradcheck_losses():
    g = torch.Generator().manual_seed(5)
    e = torch.randn(10, 4, dtype=F64, generator=g).requires_grad_()
    y = torch.tensor([0, 1, 1, 2, 0, 3, 1, 2, 2, 4])  # includes a singleton (3, 4)
    w = torch.randn(5, 4, dtype=F64, generator=g).requires_grad_()
    k = torch.randn(10, 4, dtype=F64, generator=g).requires_grad_()
    checks = [
        (lambda e: tiled.tiled_supcon_loss(e, y, tile=3, temperature=0.5), (e,)),
        (lambda e: tiled.tiled_supcon_loss(e, y, tile=4, variant="in", temperature=0.5), (e,)),
        (lambda e: tiled.tiled_sincere_loss(e, y, tile=3, reduction="none", temperature=0.5), (e,)),
        (lambda e, w: tiled.tiled_esupcon_loss(e, y, w, tile=3, temperature=0.5), (e, w)),
        (lambda e, k: tiled.tiled_info_nce(e, k, tile=3, temperature=0.5), (e, k)),
        (lambda e, k: tiled.tiled_symmetric_info_nce(e, k, tile=4, temperature=0.5), (e, k)),
    ]
    for fn, args in checks:
        assert torch.autograd.gradcheck(fn, args)
    f = torch.randn(6, 5, dtype=F64, generator=g).requires_grad_()
    tg = torch.softmax(torch.randn(6, 5, dtype=F64, generator=g), -1)
    assert torch.autograd.gradcheck(
        lambda f: tiled.tiled_soft_target_info_nce(f, tg, temperature=0.5, tile=4), (f,)
    )


def test_double_backward_is_refused():
    e = torch.randn(8, 3, dtype=F64, requires_grad=True)
    y = torch.arange(8) % 3
    with pytest.raises(RuntimeError, match="first-order"):
        torch.autograd.grad(tiled.tiled_sincere_loss(e, y, tile=3), e, create_graph=True)


# ============================================================================ policies


@pytest.mark.parametrize("fn", [tiled.tiled_sincere_loss, tiled.tiled_supcon_loss])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_no_positive_pair_gives_zero_with_zero_gradient(fn, reduction):
    e = torch.randn(12, 5, dtype=F64, requires_grad=True)
    out = fn(e, torch.arange(12), tile=5, reduction=reduction)
    assert out.shape == ((12,) if reduction == "none" else ())
    assert bool((out == 0).all())
    (g,) = torch.autograd.grad(out.sum(), e)
    assert bool((g == 0).all())


def test_single_class_batch():
    e = torch.randn(11, 5, dtype=F64, requires_grad=True)
    y = torch.full((11,), 4)
    s = tiled.tiled_sincere_loss(e, y, tile=4)
    assert float(s.detach()) == 0.0
    (g,) = torch.autograd.grad(s, e)
    assert bool((g == 0).all())
    lin = tiled.tiled_supcon_loss(e, y, variant="in", tile=4).detach()
    assert abs(float(lin) - math.log(10)) < 1e-12
    lout = tiled.tiled_supcon_loss(e, y, tile=4).detach()
    ref = ref_supcon(e, y, 0.1).detach()
    assert abs(float(lout) - float(ref)) < 1e-12 * float(ref)


def test_never_nan_at_extreme_temperature():
    g = torch.Generator().manual_seed(7)
    e = torch.randn(50, 6, dtype=torch.float32, generator=g).requires_grad_()
    y = torch.randint(0, 6, (50,), generator=g)
    for fn in (tiled.tiled_sincere_loss, tiled.tiled_supcon_loss):
        out = fn(e, y, temperature=1e-3, tile=16)
        (gr,) = torch.autograd.grad(out, e)
        assert bool(torch.isfinite(out)) and bool(torch.isfinite(gr).all())


def test_equal_logits_match_dense():
    """All logits equal: L_N - L_P = log(|N|/|P|) = 0 exactly when |N| = |P| (the class of 3 in
    a batch of 5), where a softplus written with clamp/abs has the wrong derivative (1, not 1/2).
    Unnormalised identical rows keep the gradient non-zero."""
    supcon = _dense("sincere", "supcon_loss")
    sincere = _dense("sincere", "sincere_loss")
    e = torch.ones(5, 3, dtype=F64, requires_grad=True)
    y = torch.tensor([0, 1, 0, 1, 0])
    w = torch.arange(5, dtype=F64)
    for t_fn, d_fn, kw in (
        (tiled.tiled_supcon_loss, supcon, {}),
        (tiled.tiled_supcon_loss, supcon, {"variant": "in"}),
        (tiled.tiled_sincere_loss, sincere, {}),
    ):
        kw = {**kw, "normalize": False, "reduction": "none", "temperature": 2.0}
        a, b = (t_fn(e, y, tile=3, **kw) * w).sum(), (d_fn(e, y, **kw) * w).sum()
        ga, gb = _grads(a, [e]), _grads(b, [e])
        assert float(gb[0].norm()) > 0.1
        _assert_close(a, b, ga, gb, 1e-12)
    k = torch.ones(5, 3, dtype=F64, requires_grad=True)
    kw2 = {"similarity": "dot", "reduction": "none"}
    a = (tiled.tiled_info_nce(e, k, tile=3, **kw2) * w).sum()
    b = (_dense("infonce", "info_nce")(e, k, **kw2) * w).sum()
    _assert_close(a, b, _grads(a, [e, k]), _grads(b, [e, k]), 1e-12)


def test_nan_in_embeddings_propagates():
    e = torch.randn(10, 4, dtype=F64)
    e[3, 1] = float("nan")
    assert math.isnan(float(tiled.tiled_sincere_loss(e, torch.arange(10) % 3, tile=4)))
    assert math.isnan(float(tiled.tiled_info_nce(e, e.flip(0), tile=4)))


def test_none_reduction_order_matches_input_order():
    g = torch.Generator().manual_seed(8)
    e = torch.randn(20, 4, dtype=F64, generator=g)
    y = torch.randint(0, 5, (20,), generator=g)
    a = tiled.tiled_supcon_loss(e, y, tile=6, reduction="none")
    assert torch.allclose(a, ref_supcon(e, y, 0.1, reduction="none"), rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda e, y: tiled.tiled_sincere_loss(e, y, temperature=0.0), "temperature"),
        (lambda e, y: tiled.tiled_sincere_loss(e, y.float()), "labels"),
        (lambda e, y: tiled.tiled_sincere_loss(e, y[:-1]), "labels"),
        (lambda e, y: tiled.tiled_sincere_loss(e, -1 - y), "labels"),
        (lambda e, y: tiled.tiled_sincere_loss(e.int(), y), "embeddings"),
        (lambda e, y: tiled.tiled_sincere_loss(e[:0], y[:0]), "embeddings"),
        (lambda e, y: tiled.tiled_supcon_loss(e, y, variant="both"), "variant"),
        (lambda e, y: tiled.tiled_supcon_loss(e, y, reduction="avg"), "reduction"),
        (lambda e, y: tiled.tiled_supcon_loss(e, y, base_temperature=-1.0), "base_temperature"),
        (lambda e, y: tiled.tiled_sincere_loss(e, y, tile=0), "tile"),
        (lambda e, y: tiled.tiled_esupcon_loss(e, y, e[:2]), r"labels must lie in \[0, 2\)"),
        (lambda e, y: tiled.tiled_info_nce(e, e[:-1]), "positive_key"),
        (lambda e, y: tiled.tiled_info_nce(e, e, similarity="l2"), "similarity"),
        (lambda e, y: tiled.tiled_info_nce(e, e, negative_mode="both"), "negative_mode"),
        (lambda e, y: tiled.tiled_symmetric_info_nce(e, e.double()), "b"),
    ],
)
def test_bad_input_raises_like_dense(call, match):
    e = torch.randn(6, 3)
    y = torch.tensor([0, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match=match):
        call(e, y)


def test_soft_target_policies():
    f = torch.randn(4, 3, dtype=F64)
    t = torch.softmax(torch.randn(4, 3, dtype=F64), -1)
    with pytest.raises(ValueError, match="targets"):
        tiled.tiled_soft_target_info_nce(f, t * 2)
    with pytest.raises(ValueError, match="offset"):
        tiled.tiled_soft_target_info_nce(f, t, offset=1)
    q = torch.tensor([0.5, 0.5, 0.0], dtype=F64)
    with pytest.raises(ValueError, match="noise_probs"):
        tiled.tiled_soft_target_info_nce(f, t, q)
    assert math.isnan(float(tiled.tiled_soft_target_info_nce(f, t, q, validate=False, tile=2)))
    one = torch.eye(3, dtype=F64)[[0, 1, 0, 1]]  # class 2 has q = 0 and no mass: 0 log 0 := 0
    dense = _dense("soft_target_infonce", "soft_target_info_nce")
    a = tiled.tiled_soft_target_info_nce(f, one, q, tile=3)
    assert abs(float(a) - float(dense(f, one, q))) < 1e-12
    assert float(tiled.tiled_soft_target_info_nce(f[:1], t[:1], tile=1)) == 0.0  # M = 1


# ============================================================================ memory


def test_saved_tensors_are_linear_in_batch():
    """Nothing the backward keeps is O(B^2): every saved tensor has at most B*D (+B) entries."""
    n, d = 512, 8
    e = torch.randn(n, d, requires_grad=True)
    y = torch.arange(n) % 64
    k = torch.randn(n, d, requires_grad=True)
    sizes: list[int] = []

    def pack(x):
        sizes.append(x.numel())
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        losses = [
            tiled.tiled_sincere_loss(e, y, tile=64),
            tiled.tiled_supcon_loss(e, y, tile=64),
            tiled.tiled_symmetric_info_nce(e, k, tile=64),
        ]
    assert max(sizes) <= n * d
    sum(losses).backward()
    assert e.grad is not None and bool(torch.isfinite(e.grad).all())


# ============================================================================ dispatch


def test_resolve_tile_semantics():
    assert tiled.resolve_tile(0, 10**6) is None
    assert tiled.resolve_tile(256, 10) == 256
    assert tiled.resolve_tile(None, 8, family="sincere") is None
    big = tiled.resolve_tile(None, 10**6, family="sincere")
    assert big == tiled.CPU_TILE
    for fam, thr in tiled.CPU_THRESHOLDS.items():
        assert tiled.auto_tile(thr - 1, family=fam) is None
        assert tiled.auto_tile(thr, family=fam) == tiled.CPU_TILE
    assert tiled.auto_tile(10**6, family="sincere", device="cuda") == tiled.CUDA_TILE
    assert tiled.auto_tile(1024, family="sincere", device="cuda") is None
    e = torch.randn(4, 3, 2)
    assert tiled.resolve_tile(None, e, family="sincere") is None  # rows = B * V = 12
    for bad in (-1, 2.5, True, "8"):
        with pytest.raises(ValueError, match="tile"):
            tiled.resolve_tile(bad, 100)
    with pytest.raises(ValueError, match="family"):
        tiled.auto_tile(100, family="nope")


def test_families_are_the_threshold_keys():
    assert tiled.FAMILIES == tuple(tiled.CPU_THRESHOLDS)
    assert len(set(tiled.FAMILIES)) == 6


# ============================================================================ torch.compile


def test_tiled_losses_run_eagerly_under_torch_compile(monkeypatch):
    """A tiled loss inside a compiled function runs eagerly (what ``torch.compiler.disable`` was
    applied for), although the disable is now applied lazily: the loss body sees
    ``is_compiling() == False``, and value and gradient equal the eager ones. If dynamo traced
    the body, the spy would record ``True`` (``is_compiling()`` is constant-True in a trace)."""
    from softnce_theory.losses.tiled import _losses as TL

    seen: list[bool] = []
    real = TL.softplus

    def spy(x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.compiler.is_compiling())
        return real(x)

    monkeypatch.setattr(TL, "softplus", spy)
    from softnce_theory.losses import sincere as sc

    y = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 2, 3, 3, 3])

    def fn(x: torch.Tensor) -> torch.Tensor:
        return 2 * sc.supcon_loss(x, y, temperature=0.3, tile=4) + x.square().mean()

    x = torch.randn(12, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(7))
    xc = x.clone().requires_grad_(True)
    torch._dynamo.reset()
    out = torch.compile(fn, backend="eager")(xc)
    (g,) = torch.autograd.grad(out, xc)
    assert seen and not any(seen), seen
    xe = x.clone().requires_grad_(True)
    ref = fn(xe)
    (g_ref,) = torch.autograd.grad(ref, xe)
    torch.testing.assert_close(out, ref, rtol=1e-14, atol=0)
    torch.testing.assert_close(g, g_ref, rtol=1e-14, atol=0)
    torch._dynamo.reset()


# ============================================================================ benchmark smoke


def _bench():
    """The benchmark as ``softnce bench`` runs it: from the installed package."""
    return importlib.import_module("softnce_theory.bench.losses")


#: the smallest benchmark run (in-process, every size tiny); options of ``softnce bench --``
TINY_BENCH = (
    "--in-process",
    "--silent",
    "--batch",
    "64",
    "--st-batch",
    "16",
    "--classes",
    "5",
    "--scaling",
    "32,64",
    "--scaling-family",
    "sincere",
    "--big",
    "0",
    "--repeats",
    "1",
    "--dim",
    "8",
    "--agree-batch",
    "32",
)


def test_bench_implementations_are_the_registry_tiled_kernels():
    """The bench's families come from the registry: its per-kernel table covers exactly the
    registry's tiled kernels, and what it runs by default is that list."""
    from softnce_theory.registry import registry

    bench = _bench()
    assert not hasattr(bench, "FAMILIES")  # no hand-kept list
    assert set(bench.IMPLS) == set(registry().tiled())
    assert bench.kernels() == registry().tiled()
    assert all(impls[0] == "tiled" for impls in bench.IMPLS.values())
    assert bench.NO_GEMM <= set(registry().tiled())


def test_bench_script_is_a_thin_wrapper():
    """benchmarks/bench_losses.py runs the package's benchmark (no second copy of the code)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        script = importlib.import_module("bench_losses")
    finally:
        sys.path.pop(0)
    assert script.main is _bench().main
    assert len((ROOT / "benchmarks" / "bench_losses.py").read_text().splitlines()) < 40


def test_bench_smoke_in_process(tmp_path):
    """The benchmark runs end to end at tiny sizes (in-process; no timing assertions)."""
    bench = _bench()
    js, md = tmp_path / "b.json", tmp_path / "b.md"
    rc = bench.main([*TINY_BENCH, "--json", str(js), "--md", str(md)])
    assert rc == 0
    data = json.loads(js.read_text())
    assert data["schema"] == "softnce-theory/bench/1" and data["mode"] == "compare"
    assert {r["family"] for r in data["compare"]} == set(bench.kernels())
    for r in data["agreement"] + data["compare"] + data["scaling"]:
        assert r["status"] in ("ok", "unavailable", "skipped"), r
        if r["status"] == "ok" and "rel_diff_vs_tiled" in r:
            tol = 1e-2 if r["impl"] == "materialise" else 1e-4
            assert r["rel_diff_vs_tiled"] < tol, r
    assert "| sincere | tiled |" in md.read_text()


def test_bench_roofline_smoke(tmp_path):
    """--roofline end to end at a tiny size: the GEMM inventory includes the tiled backward's
    in-place addmm_ (which the profiler's own FLOP counter misses), so the counted work exceeds
    one full B x B x D similarity pass; no timing assertions."""
    bench = _bench()
    js = tmp_path / "r.json"
    b, d = 128, 16
    args = ["--roofline", "--batch", str(b), "--dim", str(d), "--tile", "32", "--repeats", "1"]
    assert bench.main([*args, "--family", "sincere", "--silent", "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert data["schema"] == "softnce-theory/bench/1" and data["mode"] == "roofline"
    from softnce_theory import schemas

    schemas.validate(data)  # softnce_theory/schemas/bench-1.json
    (row,) = data["rows"]
    ops = {s["op"] for s in row["shapes"]}
    assert "aten::mm" in ops and "aten::addmm_" in ops
    assert row["gemm_flops"] > 2 * b * b * d
    assert row["gemm_calls"] >= (b // 32) ** 2
    assert data["meta"]["device"] in ("cpu", "cuda") and data["meta"]["peak_flops"] > 0


def test_bench_missing_peers_are_skipped_with_a_message(tmp_path, monkeypatch):
    """Without pytorch-metric-learning and info-nce-pytorch (imports made to fail) the peer rows
    are 'unavailable' with the reason, the Markdown names the install command, and the run
    succeeds; the tiled and dense rows still run."""
    bench = _bench()
    for mod in ("pytorch_metric_learning", "info_nce"):
        monkeypatch.setitem(sys.modules, mod, None)  # import raises ImportError
    js, md = tmp_path / "b.json", tmp_path / "b.md"
    argv = [*TINY_BENCH, "--agree-batch", "0", "--family", "sincere", "--family", "infonce"]
    assert bench.main([*argv, "--json", str(js), "--md", str(md)]) == 0
    rows = json.loads(js.read_text())["compare"]
    peers = {r["impl"]: r for r in rows if r["impl"] in ("pml", "info_nce_pytorch")}
    assert set(peers) == {"pml", "info_nce_pytorch"}
    assert all(r["status"] == "unavailable" for r in peers.values()), peers
    assert "pytorch-metric-learning is not installed" in peers["pml"]["reason"]
    assert "info-nce-pytorch is not installed" in peers["info_nce_pytorch"]["reason"]
    assert all(r["status"] == "ok" for r in rows if r["impl"] in ("tiled", "dense")), rows
    text = md.read_text()
    assert "pip install pytorch-metric-learning" in text and "pip install info-nce-pytorch" in text


def test_bench_refuses_unknown_families():
    bench = _bench()
    with pytest.raises(ValueError, match="--family must be one of"):
        bench.main(["--family", "nope", "--silent"])
    with pytest.raises(ValueError, match="--scaling-family must be one of"):
        bench.main(["--scaling-family", "nope", "--silent"])


def test_cli_bench_never_runs_benchmark_files_from_the_cwd(tmp_path, monkeypatch, capsys):
    """``softnce bench`` runs the package's benchmark: a benchmarks/bench_losses.py in the
    current directory is never imported or run (the benchmark ships with the package)."""
    from softnce_theory.cli import main

    trap = tmp_path / "benchmarks" / "bench_losses.py"
    trap.parent.mkdir()
    trap.write_text("import pathlib; pathlib.Path(__file__).with_name('RAN').touch()\n")
    monkeypatch.chdir(tmp_path)
    js = tmp_path / "b.json"
    argv = ["bench", "--json", str(js), "--device", "cpu", "--", *TINY_BENCH]
    assert main([*argv, "--agree-batch", "0", "--family", "esupcon"]) == 0
    assert json.loads(js.read_text())["compare"][0]["family"] == "esupcon"
    assert "| esupcon | tiled |" in capsys.readouterr().out
    assert not (trap.parent / "RAN").exists()


def test_bench_worker_subprocess():
    """One case through the subprocess protocol (fresh process, peak-memory meter)."""
    bench = _bench()
    r = bench._worker(
        {"family": "sincere", "impl": "tiled", "B": 64, "D": 8, "repeats": 1, "tile": 16},
        nice=0,
        timeout=120,
    )
    assert r["status"] == "ok", r
    assert r["peak_bytes"] >= 0 and r["loss"] > 0


def test_cli_bench_registered():
    from softnce_theory.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["bench", "--help"])
    assert exc.value.code == 0


def test_bench_em_smoke(tmp_path):
    """benchmarks/bench_em.py end to end at a tiny size (no timing assertions)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        bench_em = importlib.import_module("bench_em")
    finally:
        sys.path.pop(0)
    js = tmp_path / "em.json"
    args = ["--sizes", "32x4", "--steps", "1,10", "--budget", "2", "--repeats", "1"]
    assert bench_em.main([*args, "--max-iter", "400", "--json", str(js)]) == 0
    r = json.loads(js.read_text())["results"][0]
    assert set(r["runs"]) == {"em", "em-plain", "pgd:1", "pgd:10"}
    assert all(v["iterations_run"] >= 1 for v in r["runs"].values())
    assert r["fw_gap_rel"] >= 0
    em = r["runs"]["em"]  # the accelerated EM reaches the tolerance; the timed rerun agrees
    assert em["iterations_to_tol"] is not None and em["timed_reached_tol"]
    assert em["steps_to_tol"] >= 2 * em["iterations_to_tol"]
