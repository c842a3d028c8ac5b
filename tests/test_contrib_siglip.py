"""The SigLIP family (softnce_theory.contrib.siglip), added through the public API only.

Its claims run through the engine (proved / checked, nothing refuted), the dense and tiled batch
losses agree with each other and with the mpmath oracle of eq. (1), the tiled backward passes a
finite-difference check, and deliberate mutants (1/B^2 normalisation, a detached temperature, a
wrong closed-form gradient, a falsely declared logit-shift invariance) are caught.
"""

from __future__ import annotations

import math
from dataclasses import replace

import mpmath as mp
import pytest
import torch

import softnce_theory.contrib.siglip as S
from softnce_theory.derivations import CheckConfig
from softnce_theory.engine import check_claim, precise_registry, production_registry
from softnce_theory.engine.generic import derive
from softnce_theory.registry import Family, scoped
from softnce_theory.testing import check_loss

QUICK = CheckConfig(quick=True)
#: the claims the engine must prove (symbolic leg closed on the statement, numeric legs pass)
PROVED = {
    "siglip.generic.closed_form_gradient",
    "siglip.pair_gradient",
    "siglip.row_gradient",
    "siglip.shift_bias",
    "siglip.label_flip",
    "siglip.optimal_bias",
    "siglip.bias_convexity",
    "siglip.optimal_loss",
    "siglip.optimal_loss_limit",
    "siglip.gradient_share",
    "siglip.balanced_at_optimum",
    "siglip.init_share_limit",
}


def _embeddings(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(n, d, generator=g, dtype=torch.float64),
        torch.randn(n, d, generator=g, dtype=torch.float64),
    )


# ----------------------------------------------------------------------------- the engine


def test_every_claim_is_proved_or_checked():
    with scoped(S.FAMILY):
        pre, prod = precise_registry(["siglip"]), production_registry(["siglip"])
        results = {c.id: check_claim(c, QUICK, pre, prod) for c in S.FAMILY.all_claims()}
    bad = {cid: (r.status, [leg.detail for leg in r.legs]) for cid, r in results.items()}
    assert all(r.status in ("proved", "checked") for r in results.values()), bad
    assert {cid for cid, r in results.items() if r.status == "proved"} == PROVED
    assert "siglip.batch_loss" in results and "siglip.generic.value" in results


def test_the_audit_passes():
    with scoped(S.FAMILY):
        report = check_loss(None, "siglip", max_examples=15)
    assert report.passed, report.summary() + str([r.discrepancy for r in report.failures])


# ----------------------------------------------------------------------------- dense vs tiled


@pytest.mark.parametrize("tile", [1, 3, 5, 13, 40])
def test_tiled_matches_dense_and_the_oracle_in_float64(tile):
    img, txt = _embeddings(13, 6, seed=tile)
    out = {}
    for name, k in (("dense", None), ("tiled", tile)):
        a, y = img.clone().requires_grad_(), txt.clone().requires_grad_()
        t = torch.tensor(7.5, dtype=torch.float64, requires_grad=True)
        b = torch.tensor(-4.0, dtype=torch.float64, requires_grad=True)
        loss = S.siglip_loss(a, y, t, b, tile=k)
        grads = torch.autograd.grad(loss, [a, y, t, b])
        out[name] = (loss.detach(), *grads)
    want = float(S.batch_oracle(img, txt, 7.5, -4.0))
    assert float(out["dense"][0]) == pytest.approx(want, rel=1e-13)
    assert float(out["tiled"][0]) == pytest.approx(want, rel=1e-13)
    for got, ref in zip(out["tiled"][1:], out["dense"][1:], strict=True):
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)
    assert all(float(g.abs().max()) > 0 for g in out["tiled"][1:])  # t and b got gradients


def test_tiled_backward_passes_gradcheck():
    img, txt = _embeddings(5, 3, seed=1)
    t = torch.tensor(3.0, dtype=torch.float64)
    b = torch.tensor(-1.5, dtype=torch.float64)
    args = [v.clone().requires_grad_() for v in (img, txt, t, b)]
    assert torch.autograd.gradcheck(lambda i, y, t, b: S.siglip_loss(i, y, t, b, tile=2), args)


def test_normalisation_is_by_the_batch_size_not_its_square():
    """Eq. (1) / Algorithm 1: the sum over B^2 pairs divided by B. The per-row loss summed over
    rows with the positive moved to column 0, divided by B, is the batch loss."""
    img, txt = _embeddings(9, 4, seed=3)
    sims = torch.nn.functional.normalize(img, dim=1) @ torch.nn.functional.normalize(txt, dim=1).T
    rows = torch.stack(
        [torch.cat([sims[i, i : i + 1], sims[i, :i], sims[i, i + 1 :]]) for i in range(9)]
    )
    per_row = S.siglip_rows(rows.clamp(-1, 1), 10.0, -10.0)
    for tile in (None, 4):
        got = S.siglip_loss(img, txt, 10.0, -10.0, tile=tile)
        assert float(got) == pytest.approx(float(per_row.sum()) / 9, rel=1e-13)


def test_tiled_path_saves_no_batch_by_batch_tensor():
    """Memory O(tile^2 + B D): nothing of B x B size is kept for the backward pass (the dense
    path keeps the logits)."""
    n, d = 64, 4
    img, txt = _embeddings(n, d, seed=2)
    for tile, expect_square in ((None, True), (8, False)):
        saved: list[int] = []

        def pack(x: torch.Tensor, saved: list[int] = saved) -> torch.Tensor:
            saved.append(x.numel())
            return x

        a = img.clone().requires_grad_()
        t = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
            S.siglip_loss(a, txt, t, -10.0, tile=tile).backward()
        assert (max(saved) >= n * n) is expect_square, (tile, max(saved))
        assert t.grad is not None and a.grad is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_low_precision_inputs_stay_finite_and_close(dtype):
    img, txt = _embeddings(16, 8, seed=4)
    lo_img, lo_txt = img.to(dtype), txt.to(dtype)
    ref = S.siglip_loss(lo_img.double(), lo_txt.double(), 10.0, -10.0)
    for tile in (None, 5):
        got = S.siglip_loss(lo_img, lo_txt, 10.0, -10.0, tile=tile)
        assert got.dtype == torch.float32 and torch.isfinite(got)
        assert float(got) == pytest.approx(float(ref), rel=1e-5)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"t": 0.0}, r"^t must be finite and > 0"),
        ({"t": -1.0}, r"^t must be"),
        ({"b": float("nan")}, r"^b must be"),
        ({"b": torch.ones(2)}, r"^b must be a scalar"),
        ({"tile": -1}, r"^tile must be None or an integer >= 0"),
        ({"tile": True}, r"^tile must be"),
        ({"tile": 1.5}, r"^tile must be"),
        ({"normalize": "yes"}, r"^normalize must be a bool"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_them(kwargs, match):
    img, txt = _embeddings(4, 3, seed=0)
    with pytest.raises(ValueError, match=match):
        S.siglip_loss(img, txt, **kwargs)


def test_bad_tensors_raise_value_errors_naming_them():
    img, txt = _embeddings(4, 3, seed=0)
    with pytest.raises(ValueError, match=r"^txt: dimension B is 3"):
        S.siglip_loss(img, txt[:3])
    with pytest.raises(ValueError, match=r"^txt must have the dtype"):
        S.siglip_loss(img, txt.float())
    bad = img.clone()
    bad[1, 0] = math.inf
    with pytest.raises(ValueError, match=r"^img must be finite"):
        S.siglip_loss(bad, txt)
    zero = img.clone()
    zero[2] = 0
    with pytest.raises(ValueError, match=r"^img: every row must have a non-zero norm"):
        S.siglip_loss(zero, txt)
    assert torch.isfinite(S.siglip_loss(zero, txt, normalize=False))
    with pytest.raises(ValueError, match=r"^x: every entry must be in \[-1, 1\]"):
        S.siglip_rows(torch.tensor([[1.5, 0.0]]), 10.0, -10.0)
    with pytest.raises(ValueError, match=r"^x must have shape \(B, K\)"):
        S.siglip_rows(torch.zeros(3), 10.0, -10.0)


# ----------------------------------------------------------------------------- mutants are caught


def _detached(v):
    return v.detach() if isinstance(v, torch.Tensor) else v


def _batch_leg() -> str | None:
    """The production leg of siglip.batch_loss: its counterexample (None when it passes)."""
    res = S.PRODUCTION.get("siglip.batch_loss")(QUICK)
    return res.counterexample if res.outcome == "fail" else None


def test_batch_leg_passes_on_the_real_loss():
    assert _batch_leg() is None


def test_mutant_normalised_by_b_squared_is_caught(monkeypatch):
    real = S.siglip_loss

    def mutant(img, txt, t=10.0, b=-10.0, tile=None, **kw):
        return real(img, txt, t, b, tile=tile, **kw) / img.shape[0]

    monkeypatch.setattr(S, "siglip_loss", mutant)
    assert "value" in (_batch_leg() or "")


def test_mutant_with_a_detached_temperature_is_caught(monkeypatch):
    real = S.siglip_loss

    def mutant(img, txt, t=10.0, b=-10.0, tile=None, **kw):
        return real(img, txt, _detached(t), b, tile=tile, **kw)

    monkeypatch.setattr(S, "siglip_loss", mutant)
    assert "no gradient reached the tensor t" in (_batch_leg() or "")


def test_audit_catches_a_detached_temperature_in_the_rows():
    def mutant(x, t, b):
        return S.siglip_rows(x, _detached(t), b)

    with scoped(S.FAMILY):
        report = check_loss(mutant, "siglip", max_examples=10, properties=["parameter_gradient"])
    assert not report.passed
    assert "no gradient reaches t" in (report["parameter_gradient"].discrepancy or "")


def test_audit_catches_a_mean_over_pairs():
    def mutant(x, t, b):
        return S.siglip_rows(x, t, b) / x.shape[1]

    with scoped(S.FAMILY):
        report = check_loss(mutant, "siglip", max_examples=10, properties=["value_vs_oracle"])
    assert not report.passed


def _generic_status(spec, suffix: str) -> str:
    fam = Family(name="siglip_mutant", title="mutant", source=S.SOURCE, spec=spec)
    with scoped(fam):
        d = derive(fam)
        (claim,) = [c for c in d.claims if c.id == f"siglip_mutant.generic.{suffix}"]
        return check_claim(claim, QUICK, d.precise, d.production).status


def test_a_wrong_closed_form_gradient_is_refuted():
    def missing_t(x, t, b):  # d/dx without the chain-rule factor t
        return [g / t for g in S.gradient(x, t, b)]

    assert _generic_status(replace(S.SPEC, gradient=missing_t), "closed_form_gradient") == "refuted"


def test_a_declared_logit_shift_invariance_is_refuted():
    """The loss is not shift invariant (claim siglip.shift_bias: a shift is a bias change)."""
    spec = replace(S.SPEC, invariances=("logit_shift",))
    assert _generic_status(spec, "invariance.logit_shift") == "refuted"


# ----------------------------------------------------------------------------- the docs' numbers


def test_the_initial_balance_numbers_of_the_docs_page():
    """At t = 10, b = -10 and similarities 0, a row of K = 32768 (the paper's batch size): the
    positive's gradient share is 1/(1 + (K-1) e^-10) ~ 0.402 and the optimal bias is -log(K-1)
    ~ -10.397, with the loss balanced (share 1/2) there."""
    k = 32768
    x = torch.zeros(1, k, dtype=torch.float64, requires_grad=True)
    S.siglip_rows(x, 10.0, -10.0).sum().backward()
    assert x.grad is not None
    g = x.grad[0].abs()
    share = float(g[0] / g.sum())
    assert share == pytest.approx(1 / (1 + (k - 1) * math.exp(-10)), rel=1e-12)
    assert round(share, 3) == 0.402
    bstar = -math.log(k - 1)
    assert round(bstar, 3) == -10.397
    (gx,) = torch.autograd.grad(S.siglip_rows(x, 10.0, bstar).sum(), [x])
    g = gx[0].abs()
    assert float(g[0] / g.sum()) == pytest.approx(0.5, rel=1e-12)
    with mp.workdps(30):
        kk = mp.mpf(k)
        opt = -mp.log(1 / kk) - (kk - 1) * mp.log(1 - 1 / kk)
    got = S.siglip_rows(torch.zeros(1, k, dtype=torch.float64), 10.0, bstar)
    assert float(got) == pytest.approx(float(opt), rel=1e-12)
    assert round(float(opt) - math.log(k), 4) == 1.0


# ----------------------------------------------------------------------------- peer


def test_open_clip_siglip_conventions() -> None:
    """open_clip's ``SigLipLoss`` (when installed; checked with open_clip_torch 3.3.0): with
    ``t = logit_scale.exp()`` it takes, the bias it adds and the embeddings it expects already
    normalised, it equals ``siglip_loss(..., normalize=False)`` in value and in every gradient
    (rows, t, b), dense and tiled. ``normalize=True`` equals it on normalised inputs."""
    from tests.peers import peer_module

    loss = peer_module("open_clip.loss")
    gen = torch.Generator().manual_seed(3)
    img = torch.randn(7, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    txt = torch.randn(7, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(math.log(10.0), dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(-2.5, dtype=torch.float64, requires_grad=True)
    theirs = loss.SigLipLoss()(img, txt, scale.exp(), bias)
    want = torch.autograd.grad(theirs, [img, txt, scale, bias])
    for tile in (None, 3):
        ours = S.siglip_loss(img, txt, scale.exp(), bias, tile=tile, normalize=False)
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-13)
        got = torch.autograd.grad(ours, [img, txt, scale, bias])
        for g, h in zip(got, want, strict=True):
            assert torch.allclose(g, h, rtol=1e-11, atol=1e-13)
    unit = [torch.nn.functional.normalize(x.detach(), dim=1) for x in (img, txt)]
    theirs_n = loss.SigLipLoss()(*unit, scale.exp(), bias)
    ours_n = S.siglip_loss(*unit, scale.exp(), bias, normalize=True)
    assert ours_n.item() == pytest.approx(theirs_n.item(), rel=1e-13)
