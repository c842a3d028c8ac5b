r"""Learnable temperature: every loss takes a tensor tau and fills ``tau.grad`` (dense and tiled).

``tau.grad`` is compared, in float64, with two references that do not share the loss's code:

* the closed form of :math:`\partial L/\partial\tau` written below from the family formulas
  (all losses depend on tau through :math:`s = c/\tau`, so
  :math:`\partial L/\partial\tau = -\tau^{-1}\sum_{ij} (\partial L/\partial s_{ij})\,s_{ij}`;
  per family this is a difference of a softmax-weighted mean and a target mean of the logits,
  see each ``dtau_*``), to ~1e-12;
* a central finite difference of the *float*-temperature loss (the code path that existed before
  tensor temperatures), to ~1e-7.

Plus: CLIP's ``logit_scale`` (:math:`\tau = e^{-\mathrm{logit\_scale}}`), validation, module
parameters and ``torch.compile`` without graph breaks.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

from softnce_theory.losses import aljundi as al
from softnce_theory.losses import cross_entropy as ce
from softnce_theory.losses import infonce as nce
from softnce_theory.losses import sincere as sc
from softnce_theory.losses import soft_target_infonce as sti

F64 = torch.float64
TAU = 0.37


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ============================================================================ closed forms


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


def _cos(a: torch.Tensor, b: torch.Tensor | None = None) -> np.ndarray:
    ua = a.detach().numpy()
    ua = ua / np.linalg.norm(ua, axis=1, keepdims=True)
    if b is None:
        return ua @ ua.T
    ub = b.detach().numpy()
    ub = ub / np.linalg.norm(ub, axis=1, keepdims=True)
    return ua @ ub.T


def dtau_infonce(c: np.ndarray, tau: float, log_q: np.ndarray | None = None) -> float:
    r"""In-batch InfoNCE, :math:`\ell_i = \mathrm{LSE}_j z_{ij} - z_{ii}`, :math:`z = c/\tau -
    \log q`: :math:`\partial L/\partial\tau = \frac{1}{B\tau}\sum_i (s_{ii} - \sum_j p_{ij}
    s_{ij})`, :math:`p_i = \mathrm{softmax}(z_i)`, :math:`s = c/\tau`."""
    s = c / tau
    z = s if log_q is None else s - log_q[None, :]
    return float(np.mean([s[i, i] - _softmax(z[i]) @ s[i] for i in range(len(s))]) / tau)


def dtau_symmetric(c: np.ndarray, tau: float) -> float:
    """CLIP: the mean of the two directions (rows and columns of the same matrix)."""
    return 0.5 * (dtau_infonce(c, tau) + dtau_infonce(c.T, tau))


def dtau_labelled(c: np.ndarray, y: np.ndarray, tau: float, kind: str) -> float:
    r"""Mean over anchors with a positive of :math:`\partial\ell_i/\partial\tau`:

    * SupCon out: :math:`(\bar s_{iP} - \sum_{a\in A} \pi^A_{ia} s_{ia})/\tau`;
    * SupCon in: :math:`(\sum_{p} \pi^P_{ip} s_{ip} - \sum_{a} \pi^A_{ia} s_{ia})/\tau`;
    * SINCERE: :math:`\frac{1}{|P|\tau}\sum_p (s_{ip} - \sum_{u\in\{p\}\cup N}
      \pi^{(p)}_{iu} s_{iu})`;

    :math:`\pi^X_i` the softmax of :math:`s_{i\cdot}` restricted to :math:`X`."""
    s = c / tau
    n = len(s)
    out = []
    for i in range(n):
        others = np.array([j for j in range(n) if j != i])
        pos = np.array([j for j in others if y[j] == y[i]])
        neg = np.array([j for j in range(n) if y[j] != y[i]], dtype=int)
        if len(pos) == 0:
            continue
        if kind == "out":
            out.append(s[i, pos].mean() - _softmax(s[i, others]) @ s[i, others])
        elif kind == "in":
            out.append(_softmax(s[i, pos]) @ s[i, pos] - _softmax(s[i, others]) @ s[i, others])
        else:
            acc = []
            for p in pos:
                u = np.concatenate([[p], neg])
                acc.append(s[i, p] - _softmax(s[i, u]) @ s[i, u])
            out.append(np.mean(acc))
    return float(np.mean(out) / tau)


def dtau_supcon_base(c: np.ndarray, y: np.ndarray, tau: float, kind: str, base: float) -> float:
    r"""With HobbitLong's factor :math:`\tau/\tau_b`: :math:`L/\tau_b + (\tau/\tau_b)\,
    \partial L/\partial\tau` (the value ``L`` from the same formulas)."""
    s = c / tau
    n = len(s)
    vals = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        pos = [j for j in others if y[j] == y[i]]
        neg = [j for j in range(n) if y[j] != y[i]]
        if not pos:
            continue
        if kind == "sincere":
            vals.append(np.mean([np.logaddexp(s[i, p], _lse(s[i, neg])) - s[i, p] for p in pos]))
        else:
            vals.append(_lse(s[i, others]) - s[i, pos].mean())
    loss = float(np.mean(vals))
    return loss / base + tau / base * dtau_labelled(c, y, tau, kind)


def _lse(v: np.ndarray | list[float]) -> float:
    v = np.asarray(v, dtype=float)
    if v.size == 0:
        return -math.inf
    m = v.max()
    return float(m + np.log(np.exp(v - m).sum()))


def dtau_esupcon(c: np.ndarray, t: np.ndarray, y: np.ndarray, tau: float) -> float:
    r"""ESupCon (SupCon out on the row augmented with the prototype logits
    :math:`t_{ik} = \hat z_i\cdot\hat w_k/\tau`): :math:`(\bar c_{i,pos} - \sum_u \pi_{iu}
    c_{iu})/\tau` over :math:`u \in A(i)\cup\{w_k\}`, positives :math:`P(i)\cup\{w_{y_i}\}`."""
    s, tt = c / tau, t / tau
    n = len(s)
    out = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        row = np.concatenate([s[i, others], tt[i]])
        pos = [s[i, j] for j in others if y[j] == y[i]] + [tt[i, y[i]]]
        out.append(np.mean(pos) - _softmax(row) @ row)
    return float(np.mean(out) / tau)


def dtau_proto_ce(t: np.ndarray, y: np.ndarray, tau: float) -> float:
    """Prototype CE = in-batch-free InfoNCE over the prototypes: ``(t_iy - E_p t_i)/tau``."""
    tt = t / tau
    return float(np.mean([tt[i, y[i]] - _softmax(tt[i]) @ tt[i] for i in range(len(tt))]) / tau)


def dtau_soft_target(f: np.ndarray, a: np.ndarray, q: np.ndarray, tau: float) -> float:
    r"""Soft-target InfoNCE, :math:`S_{ij} = \langle\alpha_j, f_i/t - \log q\rangle`:
    :math:`\partial\ell_i/\partial t = (\langle\alpha_i, f_i\rangle - \sum_j w_{ij}
    \langle\alpha_j, f_i\rangle)/t^2`, :math:`w_i = \mathrm{softmax}(S_{i\cdot})`."""
    g = f / tau - np.log(q)[None, :]
    s = g @ a.T
    fa = f @ a.T
    return float(np.mean([fa[i, i] - _softmax(s[i]) @ fa[i] for i in range(len(f))]) / tau**2)


def dtau_soft_ce(f: np.ndarray, a: np.ndarray, tau: float) -> float:
    r"""Soft CE :math:`-\sum_c \alpha_c\log\mathrm{softmax}(f/t)_c`:
    :math:`(\langle\alpha_i, f_i\rangle - (\sum_c\alpha_{ic})\,\mathbb E_{p_i}[f_i])/t^2`
    (hard NLL and label smoothing are the targets :math:`e_y` and
    :math:`(1-\varepsilon)e_y + \varepsilon/C`)."""
    return float(
        np.mean([a[i] @ f[i] - a[i].sum() * (_softmax(f[i] / tau) @ f[i]) for i in range(len(f))])
        / tau**2
    )


# ============================================================================ data


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _emb(n: int, d: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, dtype=F64, generator=_gen(seed))


LABELS = np.array([0, 0, 1, 1, 1, 2, 3, 3, 4, 5])  # singletons 2, 4, 5 (no positive)


def _simplex(n: int, c: int, seed: int) -> torch.Tensor:
    return torch.softmax(2 * torch.randn(n, c, dtype=F64, generator=_gen(seed)), -1)


# ============================================================================ the checks


Loss = Callable[[object], torch.Tensor]


def _check(loss: Loss, want: float, *, fd_rtol: float = 1e-7) -> None:
    """``loss(tau)``: tau.grad vs the closed form ``want`` and vs a central difference of the
    float-temperature loss; the value equals the float-temperature value."""
    tau = torch.tensor(TAU, dtype=F64, requires_grad=True)
    out = loss(tau)
    assert out.requires_grad
    (g,) = torch.autograd.grad(out, tau)
    assert float(out.detach()) == pytest.approx(float(loss(TAU)), rel=1e-14, abs=1e-300)
    assert abs(float(g) - want) <= 1e-11 * max(1.0, abs(want)), (float(g), want)
    h = 1e-5
    fd = (float(loss(TAU + h)) - float(loss(TAU - h))) / (2 * h)
    assert abs(float(g) - fd) <= fd_rtol * max(1.0, abs(fd)), (float(g), fd)


TILES = (0, 3)  # 0: dense; 3: tiled with ragged tiles


@pytest.mark.parametrize("tile", TILES)
def test_info_nce_tau_grad(tile):
    q, k = _emb(7, seed=1), _emb(7, seed=2)
    _check(lambda t: nce.info_nce(q, k, temperature=t, tile=tile), dtau_infonce(_cos(q, k), TAU))


@pytest.mark.parametrize("tile", TILES)
def test_info_nce_log_q_tau_grad(tile):
    q, k = _emb(6, seed=3), _emb(6, seed=4)
    lq = torch.log(torch.rand(6, dtype=F64, generator=_gen(5)))
    _check(
        lambda t: nce.info_nce(q, k, temperature=t, key_log_q=lq, tile=tile, similarity="dot"),
        dtau_infonce(q.numpy() @ k.numpy().T, TAU, lq.numpy()),
    )


@pytest.mark.parametrize("mode", ["unpaired", "paired"])
def test_info_nce_explicit_negatives_tau_grad(mode):
    q, k = _emb(5, seed=6), _emb(5, seed=7)
    n = _emb(3, seed=8) if mode == "unpaired" else _emb(15, seed=8).reshape(5, 3, 5)
    uq = q.numpy() / np.linalg.norm(q.numpy(), axis=1, keepdims=True)
    uk = k.numpy() / np.linalg.norm(k.numpy(), axis=1, keepdims=True)
    un = n.numpy() / np.linalg.norm(n.numpy(), axis=-1, keepdims=True)
    pos = (uq * uk).sum(1, keepdims=True)
    neg = uq @ un.T if mode == "unpaired" else np.einsum("bd,bmd->bm", uq, un)
    c = np.concatenate([pos, neg], 1)  # column 0 the positive: the InfoNCE closed form
    s = c / TAU
    want = float(np.mean([s[i, 0] - _softmax(s[i]) @ s[i] for i in range(5)]) / TAU)
    _check(lambda t: nce.info_nce(q, k, n, temperature=t, negative_mode=mode), want)


@pytest.mark.parametrize("tile", TILES)
def test_symmetric_info_nce_tau_grad(tile):
    a, b = _emb(7, seed=9), _emb(7, seed=10)
    _check(
        lambda t: nce.symmetric_info_nce(a, b, temperature=t, tile=tile),
        dtau_symmetric(_cos(a, b), TAU),
    )


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("kind", ["out", "in", "sincere"])
def test_labelled_tau_grad(kind, tile):
    x, y = _emb(10, seed=11), torch.as_tensor(LABELS)

    def loss(t):
        if kind == "sincere":
            return sc.sincere_loss(x, y, temperature=t, tile=tile)
        return sc.supcon_loss(x, y, temperature=t, variant=kind, tile=tile)

    _check(loss, dtau_labelled(_cos(x), LABELS, TAU, kind))


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("kind", ["out", "sincere"])
def test_base_temperature_tau_grad(kind, tile):
    x, y = _emb(10, seed=12), torch.as_tensor(LABELS)
    fn = sc.sincere_loss if kind == "sincere" else sc.supcon_loss
    _check(
        lambda t: fn(x, y, temperature=t, base_temperature=0.07, tile=tile),
        dtau_supcon_base(_cos(x), LABELS, TAU, kind, 0.07),
    )


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("kind", ["out", "sincere"])
def test_tensor_base_temperature_keeps_its_gradient(kind, tile):
    """A tensor ``base_temperature`` is not detached: the loss is ``L * tau / tau_base`` (the
    invariance against the unscaled call), so ``d/d tau_base = -loss / tau_base``."""
    x, y = _emb(10, seed=14), torch.as_tensor(LABELS)
    fn = sc.sincere_loss if kind == "sincere" else sc.supcon_loss
    base = torch.tensor(0.07, dtype=F64, requires_grad=True)
    out = fn(x, y, temperature=TAU, base_temperature=base, tile=tile)
    (g,) = torch.autograd.grad(out, base)
    plain = float(fn(x, y, temperature=TAU, tile=tile))
    assert float(out.detach()) == pytest.approx(plain * TAU / 0.07, rel=1e-13)
    assert float(g) == pytest.approx(-plain * TAU / 0.07**2, rel=1e-12)
    with pytest.raises(ValueError, match=r"^base_temperature must be a real number or a floating"):
        fn(x, y, base_temperature=torch.tensor(1), tile=tile)
    with pytest.raises(ValueError, match=r"^base_temperature must be finite and > 0"):
        fn(x, y, base_temperature=torch.tensor(-0.1, dtype=F64), tile=tile)


@pytest.mark.parametrize("tile", TILES)
def test_multiview_tau_grad(tile):
    """(B, V, D): the views are flattened sample-major; the closed form on the flat batch."""
    x = _emb(12, seed=13).reshape(4, 3, 5)
    y = torch.tensor([0, 1, 0, 2])
    flat_y = y.repeat_interleave(3).numpy()
    _check(
        lambda t: sc.sincere_loss(x, y, temperature=t, tile=tile),
        dtau_labelled(_cos(x.reshape(12, 5)), flat_y, TAU, "sincere"),
    )


@pytest.mark.parametrize("tile", TILES)
def test_esupcon_tau_grad(tile):
    x, w = _emb(8, seed=14), _emb(4, seed=15)
    y = torch.tensor([0, 0, 1, 2, 2, 2, 3, 1])
    _check(
        lambda t: al.esupcon_loss(x, y, w, temperature=t, tile=tile),
        dtau_esupcon(_cos(x), _cos(x, w), y.numpy(), TAU),
    )


def test_prototype_ce_tau_grad():
    x, w = _emb(6, seed=16), _emb(4, seed=17)
    y = torch.tensor([0, 3, 1, 2, 2, 0])
    _check(
        lambda t: al.prototype_cross_entropy(x, y, w, temperature=t),
        dtau_proto_ce(_cos(x, w), y.numpy(), TAU),
    )


@pytest.mark.parametrize("tile", TILES)
@pytest.mark.parametrize("uniform", [True, False])
def test_soft_target_info_nce_tau_grad(tile, uniform):
    f = 2 * _emb(6, 4, seed=18)
    a = _simplex(6, 4, 19)
    q = None if uniform else torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)
    qn = np.full(4, 0.25) if uniform else q.numpy()
    _check(
        lambda t: sti.soft_target_info_nce(f, a, q, temperature=t, tile=tile),
        dtau_soft_target(f.numpy(), a.numpy(), qn, TAU),
    )


def test_hard_label_info_nce_tau_grad():
    f, y = 2 * _emb(6, 4, seed=20), torch.tensor([0, 1, 1, 3, 2, 0])
    onehot = np.eye(4)[y.numpy()]
    _check(
        lambda t: sti.info_nce_hard_labels(f, y, temperature=t),
        dtau_soft_target(f.numpy(), onehot, np.full(4, 0.25), TAU),
    )


def test_cross_entropy_family_tau_grad():
    f = 3 * _emb(5, 4, seed=21)
    a = _simplex(5, 4, 22)
    y = torch.tensor([0, 2, 3, 1, 1])
    eps = 0.2
    smooth = (1 - eps) * np.eye(4)[y.numpy()] + eps / 4
    _check(
        lambda t: ce.soft_target_cross_entropy(f, a, temperature=t),
        dtau_soft_ce(f.numpy(), a.numpy(), TAU),
    )
    _check(
        lambda t: ce.nll_loss(f, y, temperature=t),
        dtau_soft_ce(f.numpy(), np.eye(4)[y.numpy()], TAU),
    )
    _check(
        lambda t: ce.label_smoothing_cross_entropy(f, y, epsilon=eps, temperature=t),
        dtau_soft_ce(f.numpy(), smooth, TAU),
    )


def test_tensor_tau_leaves_embedding_gradients_unchanged():
    """The embeddings' gradient with a tensor tau equals the one with the same float tau."""
    x, y = _emb(10, seed=23), torch.as_tensor(LABELS)
    for tile in TILES:
        xa = x.clone().requires_grad_()
        xb = x.clone().requires_grad_()
        sc.sincere_loss(xa, y, temperature=TAU, tile=tile).backward()
        tau = torch.tensor(TAU, dtype=F64, requires_grad=True)
        sc.sincere_loss(xb, y, temperature=tau, tile=tile).backward()
        torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-14, atol=0)


def test_tau_grad_float32_tau_with_float64_embeddings():
    """A float32 parameter still gets its gradient (cast back to its dtype)."""
    x, y = _emb(10, seed=24), torch.as_tensor(LABELS)
    tau = torch.tensor(TAU, dtype=torch.float32, requires_grad=True)
    sc.supcon_loss(x, y, temperature=tau, tile=3).backward()
    assert tau.grad is not None and tau.grad.dtype == torch.float32
    want = dtau_labelled(_cos(x), LABELS, float(tau.detach()), "out")
    assert float(tau.grad) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("tile", TILES)
def test_no_positive_pair_gives_zero_tau_grad(tile):
    x = _emb(4, seed=25)
    tau = torch.tensor(TAU, dtype=F64, requires_grad=True)
    out = sc.sincere_loss(x, torch.arange(4), temperature=tau, tile=tile)
    (g,) = torch.autograd.grad(out, tau)
    assert float(out.detach()) == 0.0 and float(g) == 0.0


# ============================================================================ logit_scale


@pytest.mark.parametrize("tile", TILES)
def test_logit_scale_maps_to_temperature(tile):
    r""":math:`\tau = e^{-\lambda}`: same value; :math:`\partial L/\partial\lambda = -\tau\,
    \partial L/\partial\tau` (closed form)."""
    a, b = _emb(6, seed=26), _emb(6, seed=27)
    lam = math.log(1 / TAU)
    for fn, dtau in ((nce.info_nce, dtau_infonce), (nce.symmetric_info_nce, dtau_symmetric)):
        ls = torch.tensor(lam, dtype=F64, requires_grad=True)
        out = fn(a, b, logit_scale=ls, tile=tile)
        (g,) = torch.autograd.grad(out, ls)
        ref = fn(a, b, temperature=math.exp(-lam), tile=tile)
        assert float(out.detach()) == pytest.approx(float(ref), rel=1e-14)
        want = -math.exp(-lam) * dtau(_cos(a, b), math.exp(-lam))
        assert float(g) == pytest.approx(want, rel=1e-11)
        assert float(fn(a, b, logit_scale=lam, tile=tile)) == pytest.approx(float(ref), rel=1e-14)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"temperature": 0.1, "logit_scale": 2.0}, "mutually exclusive"),
        ({"logit_scale": float("nan")}, "logit_scale"),
        ({"logit_scale": -1e6}, "logit_scale"),
        ({"logit_scale": torch.tensor(float("inf"))}, "logit_scale"),
        ({"logit_scale": "2"}, "logit_scale"),
        ({"logit_scale": torch.tensor([1.0, 2.0])}, "logit_scale"),
    ],
)
def test_logit_scale_validation(kw, match):
    a = _emb(4)
    for fn in (nce.info_nce, nce.symmetric_info_nce):
        with pytest.raises(ValueError, match=match):
            fn(a, a, **kw)


# ============================================================================ validation


BAD_TAUS = [
    (torch.tensor(0.0), "finite and > 0"),
    (torch.tensor(-0.5, requires_grad=True), "finite and > 0"),
    (torch.tensor(float("nan")), "finite and > 0"),
    (torch.tensor(float("inf")), "finite and > 0"),
    (torch.tensor([0.1, 0.2]), "scalar"),
    (torch.tensor(1), "floating"),
    (torch.tensor(True), "floating"),
]


@pytest.mark.parametrize("bad, match", BAD_TAUS)
def test_bad_tensor_temperature_raises(bad, match):
    x, y = _emb(6), torch.tensor([0, 0, 1, 1, 2, 2])
    f, a = _emb(4, 3), _simplex(4, 3, 0)
    calls = [
        lambda: nce.info_nce(x, x, temperature=bad),
        lambda: nce.info_nce(x, x, temperature=bad, tile=2),
        lambda: nce.symmetric_info_nce(x, x, temperature=bad, tile=2),
        lambda: sc.supcon_loss(x, y, temperature=bad),
        lambda: sc.sincere_loss(x, y, temperature=bad, tile=2),
        lambda: al.esupcon_loss(x, y, x[:3], temperature=bad, tile=2),
        lambda: sti.soft_target_info_nce(f, a, temperature=bad, tile=2),
        lambda: ce.soft_target_cross_entropy(f, a, temperature=bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=f"temperature.*{match}|temperature must be a {match}"):
            call()


def test_value_check_skipped_without_validation():
    """``validate=False``: no data-dependent check (no host sync); the loss is computed."""
    x, y = _emb(6), torch.tensor([0, 0, 1, 1, 2, 2])
    out = sc.supcon_loss(x, y, temperature=torch.tensor(-1.0, dtype=F64), validate=False)
    assert torch.isfinite(out)


def test_numpy_and_one_element_temperatures():
    x, y = _emb(6), torch.tensor([0, 0, 1, 1, 2, 2])
    ref = sc.sincere_loss(x, y, temperature=0.25)
    for t in (np.float64(0.25), np.float32(0.25), torch.tensor([0.25], dtype=F64)):
        assert float(sc.sincere_loss(x, y, temperature=t)) == pytest.approx(float(ref), rel=1e-7)


# ============================================================================ modules


MODULES = [
    lambda **kw: nce.InfoNCE(**kw),
    lambda **kw: nce.SymmetricInfoNCE(**kw),
    lambda **kw: sc.SupConLoss(**kw),
    lambda **kw: sc.SINCERELoss(**kw),
    lambda **kw: al.PrototypeCrossEntropy(4, 5, **kw),
    lambda **kw: al.ESupConLoss(4, 5, **kw),
    lambda **kw: sti.SoftTargetInfoNCE(**kw),
    lambda **kw: sti.InfoNCEHardLabels(**kw),
    lambda **kw: ce.SoftTargetCrossEntropy(**kw),
    lambda **kw: ce.HardNLL(**kw),
    lambda **kw: ce.LabelSmoothingCrossEntropy(0.1, **kw),
]


def _module_inputs(i: int) -> tuple[torch.Tensor, ...]:
    x = _emb(6, seed=30).float()
    if i <= 1:
        return x, _emb(6, seed=31).float()
    if i <= 5:
        return x, torch.tensor([0, 0, 1, 1, 2, 3])
    f = _emb(6, 4, seed=32).float()
    if i in (7, 9, 10):
        return f, torch.tensor([0, 0, 1, 1, 2, 3])
    return f, _simplex(6, 4, 33).float()


@pytest.mark.parametrize("i", range(len(MODULES)))
def test_modules_learn_temperature(i):
    torch.manual_seed(0)  # the prototype modules draw their prototypes
    m = MODULES[i](temperature=0.2, learn_temperature=True)
    params = dict(m.named_parameters())
    assert isinstance(params["temperature"], torch.nn.Parameter)
    m(*_module_inputs(i)).backward()
    assert m.temperature.grad is not None and torch.isfinite(m.temperature.grad)
    torch.manual_seed(0)
    fixed = MODULES[i](temperature=0.2)
    assert "temperature" not in dict(fixed.named_parameters())
    want = float(m(*_module_inputs(i)).detach())
    assert float(fixed(*_module_inputs(i)).detach()) == pytest.approx(want)


def test_module_shares_a_given_parameter_and_logit_scale():
    p = torch.nn.Parameter(torch.tensor(0.3))
    m = sc.SupConLoss(temperature=p)
    assert m.temperature is p and list(m.parameters()) == [p]
    clip = nce.SymmetricInfoNCE(logit_scale=math.log(1 / 0.07), learn_temperature=True)
    assert set(dict(clip.named_parameters())) == {"logit_scale"}
    a, b = _module_inputs(0)
    clip(a, b).backward()
    assert clip.logit_scale.grad is not None
    with pytest.raises(ValueError, match="mutually exclusive"):
        nce.InfoNCE(temperature=0.1, logit_scale=1.0)
    with pytest.raises(ValueError, match="temperature"):
        sc.SINCERELoss(temperature=torch.tensor(-1.0), learn_temperature=True)


# ============================================================================ torch.compile


def test_compile_dense_tensor_tau_no_graph_break():
    """Dense paths with a tensor tau trace in one graph (value checks are eager-only)."""

    def fn(q, k, x, y, tau, ls):
        return (
            nce.info_nce(q, k, temperature=tau, tile=0)
            + nce.symmetric_info_nce(q, k, logit_scale=ls, tile=0)
            + sc.supcon_loss(x, y, temperature=tau, tile=0)
            + sc.sincere_loss(x, y, temperature=tau, tile=0)
        )

    q, k, x = _emb(4, 3, seed=40), _emb(4, 3, seed=41), _emb(6, 3, seed=42)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    tau = torch.tensor(0.3, dtype=F64, requires_grad=True)
    ls = torch.tensor(1.5, dtype=F64, requires_grad=True)
    torch._dynamo.reset()
    compiled = torch.compile(fn, backend="eager", fullgraph=True)
    out = compiled(q, k, x, y, tau, ls)
    out.backward()
    g = tau.grad.clone()
    tau.grad = None
    ref = fn(q, k, x, y, tau, ls)
    ref.backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(g, tau.grad)
