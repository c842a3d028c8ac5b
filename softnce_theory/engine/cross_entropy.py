"""Production legs (torch, float64) for the cross-entropy claims, and conformance checks."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.engine._torch import (
    RTOL64,
    gradcheck,
    logit_scale,
    simplex_rows,
    t64,
    temperature,
    value_and_grad,
)
from softnce_theory.losses import cross_entropy as ce
from softnce_theory.numerics import cross_entropy as oracle
from softnce_theory.numerics._mp import workdps

PRODUCTION = LegRegistry("production")
CONFORMANCE = LegRegistry("production")


@PRODUCTION.register("cross_entropy.label_smoothing_gradient")
def _ls_gradient(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("cross_entropy.label_smoothing_gradient"))
    tally = Tally("production", rtol=RTOL64, dtype="float64")
    gc_ok = 0
    for k in range(cfg.points(40)):
        n, c = int(rng.integers(1, 6)), int(rng.integers(2, 10))
        logits = rng.standard_normal((n, c)) * logit_scale(rng)
        labels = rng.integers(0, c, size=n)
        eps = float(rng.uniform(0, 1))
        x = t64(logits)
        lab = torch.as_tensor(labels)
        _, g = value_and_grad(ce.label_smoothing_cross_entropy, x, lab, epsilon=eps)
        # closed form (p - alpha) / N, assembled in NumPy from the statement of the claim
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        alpha = (1 - eps) * np.eye(c)[labels] + eps / c
        tally.close_normwise(
            g.ravel(), ((p - alpha) / n).ravel(), f"case {k} (C={c}, eps={eps:.3g})"
        )
        if k < 4:
            fn = partial(ce.label_smoothing_cross_entropy, labels=lab, epsilon=eps)
            gc_ok += gradcheck(fn, x / max(1.0, float(np.abs(logits).max())))
            # also agree with torch's own convention
            want = float(F.cross_entropy(x, lab, label_smoothing=eps))
            tally.close(
                float(ce.label_smoothing_cross_entropy(x, lab, epsilon=eps)),
                want,
                f"case {k} vs F.cross_entropy",
            )
    if gc_ok < min(4, cfg.points(40)):
        tally.fail(f"torch.autograd.gradcheck failed on {min(4, cfg.points(40)) - gc_ok} cases")
    return tally.result(
        "autograd vs closed form (p - alpha)/N; gradcheck; value vs F.cross_entropy"
    )


@PRODUCTION.register("cross_entropy.soft_ce_gradient")
def _soft_ce_gradient(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("cross_entropy.soft_ce_gradient"))
    tally = Tally("production", rtol=RTOL64, dtype="float64")
    for k in range(cfg.points(40)):
        n, c = int(rng.integers(1, 6)), int(rng.integers(2, 10))
        t = temperature(rng)
        logits = rng.standard_normal((n, c)) * logit_scale(rng)
        a = simplex_rows(rng, n, c)
        _, g = value_and_grad(ce.soft_target_cross_entropy, t64(logits), t64(a), temperature=t)
        z = logits / t
        z = z - z.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        closed = (p * a.sum(1, keepdims=True) - a) / (t * n)
        tally.close_normwise(g.ravel(), closed.ravel(), f"case {k} (t={t:.3g})")
    return tally.result("autograd vs closed form (p*sum(alpha) - alpha)/(N t)")


@PRODUCTION.register("cross_entropy.soft_ce_temperature_gradient")
def _soft_ce_temperature_gradient(cfg: CheckConfig) -> LegResult:
    """``tau.grad`` of the production loss (a float64 tensor temperature) against the closed
    form (sum_k a_k f_k - sum(a) E_p[f]) / t^2, averaged over rows, assembled in NumPy."""
    rng = np.random.default_rng(cfg.seed_for("cross_entropy.soft_ce_temperature_gradient"))
    tally = Tally("production", rtol=RTOL64, dtype="float64")
    for k in range(cfg.points(30)):
        n, c = int(rng.integers(1, 6)), int(rng.integers(2, 10))
        t = temperature(rng)
        logits = rng.standard_normal((n, c)) * logit_scale(rng)
        a = rng.uniform(0, 2, size=(n, c))  # general non-negative targets (the claim's scope)
        tau = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        loss = ce.soft_target_cross_entropy(t64(logits), t64(a), temperature=tau, validate=False)
        loss.backward()
        if tau.grad is None:
            tally.fail(f"case {k}: tau.grad is None (temperature detached)")
            continue
        z = logits / t
        z = z - z.max(1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
        rows = ((a * logits).sum(1) - a.sum(1) * (p * logits).sum(1)) / t**2
        tally.close(float(tau.grad), float(rows.mean()), f"case {k} (t={t:.3g}, C={c})")
    return tally.result("autograd tau.grad vs closed form (sum a f - sum(a) E_p f)/t^2")


@CONFORMANCE.register("cross_entropy.soft_target_cross_entropy")
def _conf_soft_ce(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("conformance.soft_target_cross_entropy"))
    tally = Tally("production", rtol=RTOL64, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(40)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
            t = temperature(rng)
            logits = rng.standard_normal((n, c)) * logit_scale(rng)
            a = simplex_rows(rng, n, c)
            v, g = value_and_grad(ce.soft_target_cross_entropy, t64(logits), t64(a), temperature=t)
            tally.close(v, oracle.soft_ce(logits, a, t), f"case {k} value (t={t:.3g})")
            rows = ce.soft_target_cross_entropy(
                t64(logits), t64(a), temperature=t, reduction="none"
            )
            tally.close_all(rows.tolist(), oracle.soft_ce_rows(logits, a, t), f"case {k} rows")
            want_g = [x for row in oracle.soft_ce_grad(logits, a, t) for x in row]
            tally.close_normwise(g.ravel().tolist(), want_g, f"case {k} grad")
    return tally.result("value and gradient vs mpmath oracle")


@CONFORMANCE.register("cross_entropy.label_smoothing_cross_entropy")
def _conf_ls(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("conformance.label_smoothing_cross_entropy"))
    tally = Tally("production", rtol=RTOL64, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(40)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
            t = temperature(rng)
            logits = rng.standard_normal((n, c)) * logit_scale(rng)
            labels = rng.integers(0, c, size=n)
            eps = float(rng.uniform(0, 1))
            v = float(
                ce.label_smoothing_cross_entropy(
                    t64(logits), torch.as_tensor(labels), epsilon=eps, temperature=t
                )
            )
            tally.close(v, oracle.label_smoothing_ce(logits, labels.tolist(), eps, t), f"case {k}")
            v2 = float(ce.nll_loss(t64(logits), torch.as_tensor(labels), temperature=t))
            tally.close(v2, oracle.nll(logits, labels.tolist(), t), f"case {k} nll")
    return tally.result("label smoothing and hard NLL values vs mpmath oracle")
