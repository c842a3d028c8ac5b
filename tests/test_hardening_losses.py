"""Regression tests for the loss-side defects of issue 12 (an outside fuzz), one per defect.

Expected values come from independent float64 numpy/torch formulas written here, never from the
code under test (except where a test states an invariance between two calls).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from softnce_theory.losses import aljundi as al
from softnce_theory.losses import collision_ce as cce
from softnce_theory.losses import cross_entropy as ce
from softnce_theory.losses import infonce as nce
from softnce_theory.losses import sincere as sc
from softnce_theory.losses import soft_target_infonce as sti

META = torch.device("meta")


def _bad(x: Any) -> Any:
    """A deliberately invalid argument (typed Any so the type checker lets it through)."""
    return x


def _lse(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def _ref_in_batch_infonce(q: np.ndarray, k: np.ndarray, t: float) -> float:
    """Float64 in-batch cosine InfoNCE, row i's positive is key i (van den Oord et al. 2018)."""
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    kn = k / np.linalg.norm(k, axis=1, keepdims=True)
    s = qn @ kn.T / t
    return float(np.mean(_lse(s, 1) - np.diag(s)))


# ----------------------------------------------------------------------------- defect 1


@pytest.mark.parametrize("loss", [sc.supcon_loss, sc.sincere_loss])
@pytest.mark.parametrize(
    ("x", "tile"),
    [
        (torch.ones(1024, 128, dtype=torch.float16), None),  # default CPU dispatch -> tiled
        (torch.full((2, 4), 1e38), 1),
        (torch.full((2, 4), 1e38), 0),
        (torch.ones(8, 4, dtype=torch.float16), 0),
    ],
)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_tiled_supcon_no_positive_pair_fp16_is_zero_not_nan(loss, x, tile, reduction):
    x = x.clone().requires_grad_(True)
    out = loss(x, torch.arange(x.shape[0]), tile=tile, reduction=reduction)
    (g,) = torch.autograd.grad(out, x, grad_outputs=torch.ones_like(out))
    assert out.dtype == x.dtype
    assert torch.equal(out, torch.zeros_like(out))  # exactly 0, not NaN
    assert torch.equal(g, torch.zeros_like(g))  # zero gradient, still connected to the graph


# ----------------------------------------------------------------------------- defect 2


@pytest.mark.parametrize("accelerate", [True, False])
@pytest.mark.parametrize("layout", ["transposed", "strided", "expanded"])
def test_em_pseudo_labels_noncontiguous_probs_do_not_crash(accelerate, layout):
    torch.manual_seed(0)
    p = torch.softmax(torch.randn(4, 3, dtype=torch.float64), -1)
    if layout == "transposed":
        probs = p.t().contiguous().t()
    elif layout == "strided":
        probs = torch.zeros(4, 6, dtype=torch.float64)
        probs[:, ::2] = p
        probs = probs[:, ::2]
    else:
        p = p[:1]
        probs = p.expand(4, 3)
    assert not probs.is_contiguous()
    got = cce.em_pseudo_labels(probs, lam=1.0, accelerate=accelerate, max_iter=50)
    want = cce.em_pseudo_labels(probs.contiguous(), lam=1.0, accelerate=accelerate, max_iter=50)
    assert torch.equal(got.y, want.y)  # the layout does not change the computation
    assert got.history == want.history
    assert torch.allclose(got.y.sum(-1), torch.ones(4, dtype=torch.float64))


def test_em_pseudo_labels_noncontiguous_y0():
    p = torch.softmax(torch.randn(3, 4, dtype=torch.float64), -1)
    y0 = p.flip(0).t().contiguous().t()
    got = cce.em_pseudo_labels(p, lam=0.5, y0=y0, max_iter=20)
    want = cce.em_pseudo_labels(p, lam=0.5, y0=y0.contiguous(), max_iter=20)
    assert torch.equal(got.y, want.y)


# ----------------------------------------------------------------------------- defect 3


def test_ranking_nce_all_negatives_masked_gradient_is_finite():
    ninf = float("-inf")
    scores = torch.tensor(
        [[1.5, ninf, ninf], [0.3, -0.2, ninf], [2.0, ninf, ninf]],
        dtype=torch.float64,
        requires_grad=True,
    )
    out = nce.ranking_nce(scores, reduction="none")
    (g,) = torch.autograd.grad(out.sum(), scores, create_graph=True)
    # rows 0, 2: no live negative -> loss 0 and zero gradient; row 1: softplus(s1 - s0)
    d = -0.2 - 0.3
    want = torch.tensor([0.0, np.log1p(np.exp(d)), 0.0], dtype=torch.float64)
    assert torch.allclose(out.detach(), want, rtol=1e-15, atol=0)
    sig = 1 / (1 + np.exp(-d))
    want_g = torch.tensor([[0.0, 0.0, 0.0], [-sig, sig, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(g.detach(), want_g, rtol=1e-14, atol=0)
    (h,) = torch.autograd.grad(g[1, 1], scores)  # second order stays finite too
    assert torch.isfinite(h).all()
    for dtype in (torch.float16, torch.bfloat16, torch.float32):
        s = scores.detach().to(dtype).requires_grad_(True)
        (gd,) = torch.autograd.grad(nce.ranking_nce(s), s)
        assert torch.isfinite(gd).all(), dtype


def test_ranking_nce_single_column_and_in_batch_b1_gradients_are_zero():
    s = torch.randn(3, 1, requires_grad=True)
    (g,) = torch.autograd.grad(nce.ranking_nce(s), s)
    assert torch.equal(g, torch.zeros_like(g))
    q = torch.randn(1, 4, requires_grad=True)
    k = torch.randn(1, 4, requires_grad=True)
    out = nce.info_nce(q, k)  # B = 1: no negative
    gq, gk = torch.autograd.grad(out, (q, k))
    assert out.item() == 0.0
    assert torch.equal(gq, torch.zeros_like(gq)) and torch.equal(gk, torch.zeros_like(gk))


# ----------------------------------------------------------------------------- defect 4


@pytest.mark.parametrize("scale", [1e-30, 1e-19, 1e19, 1e20, 1e30])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("tile", [0, 2])
def test_cosine_info_nce_huge_and_tiny_norms_are_exact(scale, dtype, tile):
    rng = np.random.default_rng(4)
    q = torch.tensor(rng.standard_normal((5, 6)) * scale).to(dtype)
    k = torch.tensor(rng.standard_normal((5, 6)) * scale).to(dtype)
    t = 0.05
    want = _ref_in_batch_infonce(q.double().numpy(), k.double().numpy(), t)
    got = nce.info_nce(q, k, temperature=t, tile=tile)
    rtol = 1e-5 if dtype == torch.float32 else 1e-2
    assert abs(float(got) - want) <= rtol * abs(want), (float(got), want)
    # symmetric (CLIP) InfoNCE normalises through the same helper
    sym = nce.symmetric_info_nce(q, k, temperature=t, tile=tile)
    want_sym = 0.5 * (want + _ref_in_batch_infonce(k.double().numpy(), q.double().numpy(), t))
    assert abs(float(sym) - want_sym) <= rtol * abs(want_sym)


def test_cosine_info_nce_huge_norms_explicit_negatives():
    rng = np.random.default_rng(5)
    q, k, n = (torch.tensor(rng.standard_normal(s) * 1e25) for s in ((3, 4), (3, 4), (5, 4)))
    q32, k32, n32 = q.float(), k.float(), n.float()
    got = nce.info_nce(q32, k32, n32, temperature=0.1)
    qa, ka, na = (x.double().numpy() for x in (q32, k32, n32))
    qa, ka, na = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (qa, ka, na))
    z = np.concatenate([(qa * ka).sum(1, keepdims=True), qa @ na.T], axis=1) / 0.1
    want = float(np.mean(_lse(z, 1) - z[:, 0]))
    assert abs(float(got) - want) <= 1e-5 * want


def test_unit_rows_is_shared_by_every_cosine_loss():
    """One normalisation helper, ``_common.unit_rows``: no loss module defines or imports
    another one, and none calls ``normalize`` (``F.normalize``'s eps policy is the defect)."""
    import importlib
    import inspect
    import pkgutil

    import softnce_theory.losses as pkg
    import softnce_theory.losses._common as common

    assert not hasattr(sc, "_unit")
    names = [m.name for m in pkgutil.walk_packages(pkg.__path__, "softnce_theory.losses.")]
    assert "softnce_theory.losses.tiled._losses" in names
    for name in names:
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if "unit" in attr.lower() and callable(obj):
                assert obj is common.unit_rows, f"{name}.{attr}"
        assert "normalize(" not in inspect.getsource(mod).replace("def normalize(", ""), name


# ----------------------------------------------------------------------------- defect 8


@pytest.mark.parametrize(
    ("v", "want"),
    [
        (torch.tensor([[3000.0]], dtype=torch.float16), [[1.0]]),
        (torch.tensor([[3000.0, 2998.0]], dtype=torch.float16), [[1.0, 0.0]]),
        (torch.tensor([[3e8]], dtype=torch.float32), [[1.0]]),
        (torch.tensor([[-3e8]], dtype=torch.float32), [[1.0]]),
        (torch.tensor([[3e38, -3e38]], dtype=torch.float32), [[1.0, 0.0]]),
        (torch.tensor([[2.0**25, 2.0**25 - 4]], dtype=torch.float32), [[1.0, 0.0]]),
        (torch.tensor([[1e8, 1e8 - 0.5]], dtype=torch.float64), [[0.75, 0.25]]),
        (torch.tensor([[1e300, 1e300]], dtype=torch.float64), [[0.5, 0.5]]),
        (torch.tensor([[60000.0, 60000.0, 0.0]], dtype=torch.bfloat16), [[0.5, 0.5, 0.0]]),
    ],
)
def test_project_simplex_large_entries_keep_precision(v, want):
    got = cce.project_simplex(v)
    assert got.dtype == v.dtype
    assert torch.equal(got.double(), torch.tensor(want, dtype=torch.float64))


# ----------------------------------------------------------------------------- defect 10


def _meta_like(x: torch.Tensor) -> torch.Tensor:
    return torch.empty(x.shape, dtype=x.dtype, device=META)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda lg, y, lab: ce.soft_target_cross_entropy(lg, _meta_like(y)), "targets"),
        (lambda lg, y, lab: ce.nll_loss(lg, _meta_like(lab)), "labels"),
        (
            lambda lg, y, lab: ce.label_smoothing_cross_entropy(lg, _meta_like(lab), epsilon=0.1),
            "labels",
        ),
        (lambda lg, y, lab: cce.collision_cross_entropy(lg, _meta_like(y)), "targets"),
        (lambda lg, y, lab: cce.self_labeling_loss(lg, _meta_like(y), lam=1.0), "y"),
        (lambda lg, y, lab: cce.em_pseudo_labels(y, lam=1.0, y0=_meta_like(y)), "y0"),
        (lambda lg, y, lab: cce.pgd_pseudo_labels(y, lam=1.0, step=1.0, y0=_meta_like(y)), "y0"),
        (lambda lg, y, lab: cce.pseudo_label_objective(y, _meta_like(y), lam=1.0), "y"),
        (lambda lg, y, lab: cce.pseudo_label_gap(y, _meta_like(y), lam=1.0), "y"),
        (lambda lg, y, lab: sti.info_nce_hard_labels(lg, _meta_like(lab)), "labels"),
        (lambda lg, y, lab: sti.info_nce_from_scores(lg, _meta_like(lab)), "positives"),
    ],
)
def test_cross_entropy_and_collision_ce_check_device(call, name):
    lg = torch.randn(3, 4)
    y = torch.softmax(torch.randn(3, 4), -1)
    lab = torch.tensor([0, 3, 1])
    with pytest.raises(ValueError, match=rf"^{name} must be on the same device as \w+ \(cpu\)"):
        call(lg, y, lab)


def _ref_rows(scores: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return _lse(scores, 1) - scores[np.arange(len(pos)), pos]


@pytest.mark.parametrize(
    ("scores", "positives", "match"),
    [
        (torch.randn(3, 4), torch.tensor([0.0, 1.0, 2.0]), "positives must have an integer dtype"),
        (torch.randn(3, 4), torch.tensor([0, 4, 1]), r"positives must lie in \[0, 4\)"),
        (torch.randn(3, 4), torch.tensor([0, -1, 1]), r"positives must lie in \[0, 4\)"),
        (torch.randn(3, 4), torch.tensor([0, 1]), r"positives must have shape \(3,\)"),
        (torch.randn(3, 4), [0, 1, 2], "positives must be a torch.Tensor"),
        (torch.randn(3, 4), torch.tensor([True, False, True]), "positives must have an integer"),
        (torch.randn(0, 4), torch.zeros(0, dtype=torch.long), "scores must be a non-empty batch"),
        (
            torch.randn(3, 0),
            torch.zeros(3, dtype=torch.long),
            "scores: dimension K must be >= 1, got 0",
        ),
        (
            torch.randn(3),
            torch.zeros(3, dtype=torch.long),
            r"scores must have shape \(B, K\) \(2-D\)",
        ),
        (torch.randint(0, 3, (3, 4)), torch.zeros(3, dtype=torch.long), "scores must have dtype"),
    ],
)
def test_info_nce_from_scores_validates(scores, positives, match):
    with pytest.raises(ValueError, match=match):
        sti.info_nce_from_scores(scores, _bad(positives))


def test_info_nce_from_scores_valid_value():
    rng = np.random.default_rng(10)
    s = rng.standard_normal((4, 5)) * 30
    p = np.array([0, 4, 2, 2])
    got = sti.info_nce_from_scores(torch.tensor(s), torch.tensor(p))
    np.testing.assert_allclose(got.numpy(), _ref_rows(s, p), rtol=1e-13)


@pytest.mark.parametrize("tile", [-1, 1.5, "2", True, [2]])
@pytest.mark.parametrize("mode", ["unpaired", "paired", "log_q"])
def test_info_nce_tile_validated_with_negative_keys(tile, mode):
    q, k = torch.randn(3, 4), torch.randn(3, 4)
    n = torch.randn(5, 4) if mode != "paired" else torch.randn(3, 5, 4)
    kw: dict[str, Any] = {"negative_mode": "paired"} if mode == "paired" else {}
    if mode == "log_q":
        kw["negative_log_q"] = torch.full((5,), -1.6)
    with pytest.raises(ValueError, match=r"^tile must be"):
        nce.info_nce(q, k, n, tile=tile, **kw)


def test_info_nce_valid_tile_with_negative_keys_runs_dense():
    q, k, n = torch.randn(3, 4), torch.randn(3, 4), torch.randn(5, 4)
    assert torch.equal(nce.info_nce(q, k, n, tile=2), nce.info_nce(q, k, n, tile=0))


@pytest.mark.parametrize("cls", [al.ESupConLoss, al.PrototypeCrossEntropy])
@pytest.mark.parametrize(
    ("num_classes", "dim", "name"),
    [(2.5, 3, "num_classes"), ("3", 3, "num_classes"), (True, 3, "num_classes"), (3, 2.0, "dim")],
)
def test_esupcon_float_num_classes_raises_value_error(cls, num_classes, dim, name):
    with pytest.raises(ValueError, match=f"^{name} must be an integer >= 1"):
        cls(_bad(num_classes), _bad(dim))
    with pytest.raises(ValueError, match=f"^{name} must be an integer >= 1"):
        cls(_bad(num_classes), _bad(dim), prototypes=torch.randn(3, 3))


def test_esupcon_numpy_int_num_classes_accepted():
    m = al.ESupConLoss(np.int64(3), np.int32(4))
    assert tuple(m.prototypes.shape) == (3, 4)


NP_TAUS = [np.float64(0.1), np.float32(0.5), np.float16(2.0), np.int64(1), np.int32(3)]


@pytest.mark.parametrize("tau", NP_TAUS, ids=lambda t: type(t).__name__)
def test_numpy_scalar_temperature_accepted(tau):
    """numpy scalars are real numbers: same value as the Python float ``float(tau)``."""
    torch.manual_seed(1)
    x, k = torch.randn(4, 3), torch.randn(4, 3)
    lab = torch.tensor([0, 0, 1, 1])
    logits, y = torch.randn(4, 3), torch.softmax(torch.randn(4, 3), -1)
    t = float(tau)
    pairs = [
        (nce.info_nce(x, k, temperature=tau), nce.info_nce(x, k, temperature=t)),
        (nce.InfoNCE(temperature=tau)(x, k), nce.info_nce(x, k, temperature=t)),
        (sc.supcon_loss(x, lab, temperature=tau), sc.supcon_loss(x, lab, temperature=t)),
        (
            sc.sincere_loss(x, lab, temperature=tau, base_temperature=tau),
            sc.sincere_loss(x, lab, temperature=t, base_temperature=t),
        ),
        (
            ce.soft_target_cross_entropy(logits, y, temperature=tau),
            ce.soft_target_cross_entropy(logits, y, temperature=t),
        ),
        (
            sti.soft_target_info_nce(logits, y, temperature=tau),
            sti.soft_target_info_nce(logits, y, temperature=t),
        ),
        (
            al.prototype_cross_entropy(x, lab, k[:2], temperature=tau),
            al.prototype_cross_entropy(x, lab, k[:2], temperature=t),
        ),
        (
            cce.self_labeling_loss(logits, y, lam=tau),
            cce.self_labeling_loss(logits, y, lam=t),
        ),
    ]
    for got, want in pairs:
        assert torch.equal(got, want)


@pytest.mark.parametrize("eps", [np.float64(0.1), np.float32(0.25), np.int64(0), np.int32(1)])
def test_numpy_scalar_epsilon_accepted(eps):
    logits, lab = torch.randn(3, 4), torch.tensor([0, 1, 3])
    got = ce.label_smoothing_cross_entropy(logits, lab, epsilon=eps)
    assert torch.equal(got, ce.label_smoothing_cross_entropy(logits, lab, epsilon=float(eps)))
    assert torch.equal(ce.LabelSmoothingCrossEntropy(eps)(logits, lab), got)


@pytest.mark.parametrize("bad", [np.bool_(True), True, "0.1", np.array([0.1, 0.2]), None])
def test_numpy_bool_and_non_numbers_still_rejected_as_temperature(bad):
    with pytest.raises(ValueError, match=r"^temperature must be"):
        sc.supcon_loss(torch.randn(4, 3), torch.tensor([0, 0, 1, 1]), temperature=_bad(bad))


@pytest.mark.parametrize("eps", [1.5, -0.1, float("nan"), "0.1", True])
def test_label_smoothing_module_validates_epsilon_at_construction(eps):
    with pytest.raises(ValueError, match=r"^epsilon must"):
        ce.LabelSmoothingCrossEntropy(_bad(eps))


# ----------------------------------------------------------------------------- defect 11


def _ref_grad_wrt_units(uq: np.ndarray, uk: np.ndarray, t: float) -> np.ndarray:
    """d/du_q of the float64 in-batch InfoNCE written on (already normalised) rows."""
    a = torch.tensor(uq, requires_grad=True)
    s = a @ torch.tensor(uk).T / t
    loss = (torch.logsumexp(s, 1) - torch.diagonal(s)).mean()
    (g,) = torch.autograd.grad(loss, a)
    return g.numpy()


@pytest.mark.parametrize("tile", [0, 2])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_fp16_zero_row_cosine_gradient_is_finite(tile, dtype):
    """A row that rounds to zero (1e-9 in float16) has the identity Jacobian: its gradient is
    the upstream gradient w.r.t. the unit row (the policy of ``unit_rows``), finite."""
    rng = np.random.default_rng(11)
    q64 = rng.standard_normal((4, 5))
    q64[0] = 1e-9 if dtype == torch.float16 else 0.0  # float16: rounds to exactly zero
    q = torch.tensor(q64).to(dtype)
    assert not q[0].any()
    k = torch.tensor(rng.standard_normal((4, 5))).to(dtype)
    t = 0.5
    qq = q.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(nce.info_nce(qq, k, temperature=t, tile=tile), qq)
    assert torch.isfinite(g).all()
    qa, ka = q.double().numpy(), k.double().numpy()
    uq = qa / np.maximum(np.linalg.norm(qa, axis=1, keepdims=True), 1e-300)  # zero row -> 0
    uk = ka / np.linalg.norm(ka, axis=1, keepdims=True)
    want = _ref_grad_wrt_units(uq, uk, t)[0]
    tol = {torch.float16: 2e-3, torch.bfloat16: 2e-2, torch.float32: 1e-6}[dtype]
    np.testing.assert_allclose(g[0].double().numpy(), want, rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "call",
    [
        lambda x, lab, w: sc.supcon_loss(x, lab, temperature=0.01),
        lambda x, lab, w: sc.supcon_loss(x, lab, temperature=0.01, tile=2),
        lambda x, lab, w: sc.sincere_loss(x, lab, temperature=0.01, tile=2),
        lambda x, lab, w: al.esupcon_loss(x, lab, w, temperature=0.01),
        lambda x, lab, w: al.prototype_cross_entropy(x, lab, w, temperature=0.01),
        lambda x, lab, w: nce.symmetric_info_nce(x, w[lab], temperature=0.01),
    ],
)
def test_fp16_zero_row_gradient_is_finite_in_every_cosine_loss(call):
    x = torch.randn(6, 8).half()
    x[2] = 0
    x.requires_grad_(True)
    lab = torch.tensor([0, 1, 0, 1, 2, 2])
    w = torch.randn(3, 8).half()
    (g,) = torch.autograd.grad(call(x, lab, w), x)
    assert torch.isfinite(g).all()


# ----------------------------------------------------------------------------- esupcon_formula


def _formula_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    z = torch.nn.functional.normalize(torch.randn(6, 4, generator=g, dtype=torch.float64), dim=1)
    w = torch.nn.functional.normalize(torch.randn(3, 4, generator=g, dtype=torch.float64), dim=1)
    return z @ z.T / 0.2, z @ w.T / 0.2, torch.tensor([0, 0, 1, 1, 2, 2])


S, T, Y = _formula_inputs()


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: al.esupcon_formula(S.long(), T, Y), "^sample_logits must have dtype"),
        (lambda: al.esupcon_formula(S[:0], T[:0], Y), "^sample_logits must be a non-empty"),
        (
            lambda: al.esupcon_formula(S, T[:5], Y),
            "^proto_logits: dimension M is 5 but sample_logits has M = 6",
        ),
        (lambda: al.esupcon_formula(S, T.float(), Y), "^proto_logits must have the same dtype"),
        (lambda: al.esupcon_formula(S, T, Y.double()), "^labels must have an integer dtype"),
        (lambda: al.esupcon_formula(S, T, Y[:5]), r"^labels must have shape \(6,\)"),
        (lambda: al.esupcon_formula(S, T, Y + 1), r"^labels must lie in \[0, 3\)"),
        (lambda: al.esupcon_formula(S[:2], T[:2], Y), "^sample_logits must be square"),
        (lambda: al.esupcon_formula(S, T, Y, offset=2), "^offset requires row_labels"),
        (
            lambda: al.esupcon_formula(S[2:4], T[2:4], Y, row_labels=Y[2:4], offset=5),
            "^offset must satisfy",
        ),
        (
            lambda: al.esupcon_formula(S[2:4], T[2:4], Y, row_labels=Y[0:2], offset=2),
            r"^row_labels must equal labels\[offset:offset \+ m\]",
        ),
        (
            lambda: al.esupcon_formula(S[2:4], T[2:4], Y, row_labels=Y[2:4] + 3, offset=2),
            r"^row_labels must lie in \[0, 3\)",
        ),
    ],
)
def test_esupcon_formula_validates(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_esupcon_formula_anchor_subset_equals_full_rows():
    """Rows [2, 4) as an anchor subset are the same rows of the full per-anchor losses, and
    ``validate=False`` skips only the value checks (same result)."""
    full = al.esupcon_formula(S, T, Y)
    sub = al.esupcon_formula(S[2:4], T[2:4], Y, row_labels=Y[2:4], offset=2)
    assert torch.equal(sub, full[2:4])
    assert torch.equal(al.esupcon_formula(S, T, Y, validate=False), full)
    with pytest.raises(ValueError, match=r"^proto_logits"):
        al.esupcon_formula(S, T[:, :0], Y, validate=False)
