"""Production legs (torch, float64) for the SupCon / SINCERE claims, and conformance checks.

Expected values come from NumPy closed forms assembled here from the claims' statements, from
an independent torch formulation (NT-Xent through ``F.cross_entropy``), from a NumPy
transcription of HobbitLong's algorithm, or from the mpmath oracles; never from the code under
test.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from derivations import CheckConfig, LegRegistry, LegResult, Tally
from numerics import sincere as oracle
from numerics._mp import workdps
from softnce_theory.engine._torch import RTOL64, gradcheck, t64, temperature
from softnce_theory.losses import sincere as sl
from softnce_theory.losses._common import Reduction

PRODUCTION = LegRegistry("production")
CONFORMANCE = LegRegistry("production")


# ----------------------------------------------------------------------------- helpers


def _labels(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.asarray(oracle.random_labels(rng, n))


def _sets(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    same = np.equal.outer(labels, labels)
    eye = np.eye(len(labels), dtype=bool)
    return np.logical_and(same, ~eye), np.logical_not(same)


def _softmax_masked(s: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row softmax over the masked entries (0 elsewhere); rows with an empty mask are 0."""
    x = np.where(mask, s, -np.inf)
    mx = np.max(x, axis=1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    e = np.where(mask, np.exp(x - mx), 0.0)
    tot = e.sum(1, keepdims=True)
    return np.divide(e, tot, out=np.zeros_like(e), where=tot > 0)


def _lse(s: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x = np.where(mask, s, -np.inf)
    mx = np.max(x, axis=-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore"):
        return (mx + np.log(np.where(mask, np.exp(x - mx), 0.0).sum(-1, keepdims=True)))[..., 0]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def closed_grad(s: np.ndarray, labels: np.ndarray, kind: str) -> np.ndarray:
    """NumPy closed form of dL/ds (mean over anchors with positives), research note §1.3.
    Differences close to 0 (1 - Q, P - X) are written as sigmoids of log-sum-exp gaps so that
    tiny gradients keep their relative precision."""
    pos, neg = _sets(labels)
    n_pos = pos.sum(1)
    valid = n_pos > 0
    nv = max(int(valid.sum()), 1)
    lse_n = _lse(s, neg)[:, None]
    lse_a = _lse(s, pos | neg)[:, None]
    with np.errstate(over="ignore"):  # masked entries may overflow; np.where drops them
        p = np.where(pos | neg, np.exp(np.where(pos | neg, s, 0.0) - lse_a), 0.0)  # P_ia
    m = np.maximum(n_pos, 1)[:, None]
    if kind == "out":
        one = -_sigmoid(lse_n - s)  # |P| = 1: P_ik - 1 = -Z_N / Z
        g_pos = np.where(m == 1, one, p - 1.0 / m)
        g = np.where(pos, g_pos, np.where(neg, p, 0.0))
    elif kind == "in":
        with np.errstate(over="ignore"):
            x = np.where(pos, np.exp(np.where(pos, s, 0.0) - _lse(s, pos)[:, None]), 0.0)
        g_pos = -x * _sigmoid(lse_n - _lse(s, pos)[:, None])  # P - X = -X Z_N / Z
        g = np.where(pos, g_pos, np.where(neg, p, 0.0))
    else:  # SINCERE: (Q^(k)_ik - 1)/|P| on positives, (1/|P|) sum_p Q^(p)_in on negatives
        g_pos = -_sigmoid(lse_n - s) / m
        denom = np.logaddexp(s, lse_n)  # log(e^{s_ip} + Z_N) for every p
        g_neg = np.zeros_like(s)
        for i in np.flatnonzero(valid):
            for k in np.flatnonzero(pos[i]):
                with np.errstate(over="ignore"):
                    g_neg[i] += np.where(neg[i], np.exp(s[i] - denom[i, k]), 0.0)
        g = np.where(pos, g_pos, np.where(neg, g_neg / m, 0.0))
    return np.where(valid[:, None], g, 0.0) / nv


def _from_logits(kind: str) -> Callable[..., torch.Tensor]:
    if kind == "sincere":
        return sl.sincere_from_logits
    return partial(sl.supcon_from_logits, variant=cast(sl.Variant, kind))


def _logit_grad(kind: str, s: np.ndarray, labels: np.ndarray) -> np.ndarray:
    x = t64(s, requires_grad=True)
    out = _from_logits(kind)(x, torch.as_tensor(labels))
    (g,) = torch.autograd.grad(out, x)
    return g.numpy()


def _gradient_leg(cfg: CheckConfig, claim_id: str, kind: str, sign_check: Any) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64")
    gc_cases = min(3, cfg.points(30, 8))
    gc_ok = 0
    for c in range(cfg.points(30, 8)):
        n = int(rng.integers(2, 9))
        labels = _labels(rng, n)
        s = rng.standard_normal((n, n)) * float(10 ** rng.uniform(-2, 3.5))
        g = _logit_grad(kind, s, labels)
        tally.close_normwise(
            g.ravel(), closed_grad(s, labels, kind).ravel(), f"case {c} {labels.tolist()}"
        )
        sign_check(tally, g, s, labels, f"case {c}")
        if c < gc_cases:
            y = torch.as_tensor(labels)
            fn = partial(_call_with_labels, _from_logits(kind), y)
            gc_ok += gradcheck(fn, t64(s) / max(1.0, float(np.abs(s).max())))
    if gc_ok < gc_cases:
        tally.fail(f"torch.autograd.gradcheck failed on {gc_cases - gc_ok} cases")
    return tally.result("autograd of the *_from_logits loss vs NumPy closed form; gradcheck")


def _call_with_labels(
    fn: Callable[..., torch.Tensor], y: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    return fn(v, y)


def _no_sign(tally: Tally, g: np.ndarray, s: np.ndarray, labels: np.ndarray, where: str) -> None:
    return None


@PRODUCTION.register("sincere.supcon_out_gradient")
def _out_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(cfg, "sincere.supcon_out_gradient", "out", _no_sign)


def _in_sign(tally: Tally, g: np.ndarray, s: np.ndarray, labels: np.ndarray, where: str) -> None:
    pos, _ = _sets(labels)
    if pos.any():
        worst = float(g[pos].max())
        tally.holds(
            -worst + 1e-15 * float(np.abs(g).max()), f"{where}: max positive entry {worst:.3e}"
        )


@PRODUCTION.register("sincere.supcon_in_gradient_nonpositive")
def _in_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(cfg, "sincere.supcon_in_gradient_nonpositive", "in", _in_sign)


def _sincere_sign(
    tally: Tally, g: np.ndarray, s: np.ndarray, labels: np.ndarray, where: str
) -> None:
    pos, neg = _sets(labels)
    if pos.any():
        tally.holds(-float(g[pos].max()), f"{where}: SINCERE positive entries <= 0")
    has_pos = np.asarray(pos.any(axis=1))
    rows_neg = np.logical_and(neg, has_pos[:, None])  # negatives of anchors with positives
    if rows_neg.any():
        tally.holds(float(g[rows_neg].min()), f"{where}: negative entries >= 0")


@PRODUCTION.register("sincere.no_same_class_repulsion")
def _no_repulsion(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(cfg, "sincere.no_same_class_repulsion", "sincere", _sincere_sign)


@PRODUCTION.register("sincere.supcon_per_term_repulsion")
def _per_term(cfg: CheckConfig) -> LegResult:
    """SupCon's denominator ignores labels, so the single term l_ip is the loss of anchor i
    after relabelling its other positives: its gradient on s_iq (q relabelled) must be P_iq."""
    rng = np.random.default_rng(cfg.seed_for("sincere.supcon_per_term_repulsion"))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64")
    repelled = 0
    for c in range(cfg.points(20, 5)):
        n = int(rng.integers(4, 9))
        labels = np.concatenate([[0, 0, 0], rng.integers(0, 3, size=n - 3)])
        s = rng.standard_normal((n, n)) * float(10 ** rng.uniform(-1, 1.5))
        pos, neg = _sets(labels)
        p = _softmax_masked(s, pos | neg)
        i = 0
        ps = np.flatnonzero(pos[i])
        for a in ps:
            lab = labels.copy()
            others = [q for q in ps if q != a]
            lab[others] = labels.max() + 1 + np.arange(len(others))  # now negatives of i
            x = t64(s, requires_grad=True)
            term = sl.supcon_from_logits(x, torch.as_tensor(lab), reduction="none")[i]
            (g,) = torch.autograd.grad(term, x)
            for q in others:
                tally.close(float(g[i, q]), p[i, q], f"case {c}: d l_0{a} / d s_0{q}")
                tally.holds(float(g[i, q]), f"case {c}: d l_0{a} / d s_0{q} > 0")
        g_all = _logit_grad("out", s, labels) * max(int((pos.sum(1) > 0).sum()), 1)
        for a in ps:
            if (g_all[i, a] > 0) != (p[i, a] > 1.0 / len(ps)):
                if abs(p[i, a] - 1.0 / len(ps)) > 1e-12:
                    tally.fail(f"case {c}: net sign of s_0{a} not iff P > 1/|P|")
            repelled += int(g_all[i, a] > 0)
    if repelled == 0:
        tally.fail("no repelled positive exhibited")
    return tally.result(
        "per-term gradient via relabelling vs P_iq (NumPy); net sign", repelled=repelled
    )


def _emb_cases(
    cfg: CheckConfig, claim_id: str, full: int
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    out = []
    for _ in range(cfg.points(full)):
        n = int(rng.integers(2, 10))
        views = int(rng.integers(1, 3))
        shape = (n, views, 4) if views > 1 else (n, 4)
        out.append((rng.standard_normal(shape) * 3, _labels(rng, n), temperature(rng)))
    return out


def _rows(fn: Any, emb: np.ndarray, labels: np.ndarray, tau: float, **kw: Any) -> np.ndarray:
    return fn(t64(emb), torch.as_tensor(labels), temperature=tau, reduction="none", **kw).numpy()


def _valid_rows(emb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    lab = np.repeat(labels, emb.shape[1]) if emb.ndim == 3 else labels
    pos, _ = _sets(lab)
    return pos.sum(1)


@PRODUCTION.register("sincere.supcon_in_le_out")
def _in_le_out(cfg: CheckConfig) -> LegResult:
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for c, (emb, labels, tau) in enumerate(_emb_cases(cfg, "sincere.supcon_in_le_out", 40)):
        lo = _rows(sl.supcon_loss, emb, labels, tau, variant="out")
        li = _rows(sl.supcon_loss, emb, labels, tau, variant="in")
        tol = 1e-13 * np.maximum(np.abs(lo), 1.0)  # |P| = 1: equal up to rounding
        for i in np.flatnonzero(_valid_rows(emb, labels)):
            tally.holds(lo[i] - li[i] + tol[i], f"case {c} row {i} (tau={tau:.3g})")
    return tally.result("per-row L_out - L_in >= 0 (float64 rounding slack 1e-13 relative)")


@PRODUCTION.register("sincere.sincere_le_supcon")
def _sincere_le(cfg: CheckConfig) -> LegResult:
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64")
    for c, (emb, labels, tau) in enumerate(_emb_cases(cfg, "sincere.sincere_le_supcon", 40)):
        lo = _rows(sl.supcon_loss, emb, labels, tau, variant="out")
        ls = _rows(sl.sincere_loss, emb, labels, tau)
        n_pos = _valid_rows(emb, labels)
        for i in np.flatnonzero(n_pos):
            if n_pos[i] == 1:
                tally.close(ls[i], lo[i], f"case {c} row {i}: |P| = 1 equality")
            else:
                tally.holds(lo[i] - ls[i] + 1e-13 * max(abs(lo[i]), 1.0), f"case {c} row {i}")
    return tally.result("per row SINCERE <= SupCon out; equality (1e-12) where |P| = 1")


@PRODUCTION.register("sincere.supcon_out_lower_bound")
def _lower_bound(cfg: CheckConfig) -> LegResult:
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for c, (emb, labels, tau) in enumerate(_emb_cases(cfg, "sincere.supcon_out_lower_bound", 40)):
        lo = _rows(sl.supcon_loss, emb, labels, tau, variant="out")
        n_pos = _valid_rows(emb, labels)
        for i in np.flatnonzero(n_pos):
            tally.holds(
                lo[i] - np.log(n_pos[i]) + 1e-13 * max(abs(lo[i]), 1.0), f"case {c} row {i}"
            )
    return tally.result("per row L_out >= log|P(i)| (float64 rounding slack 1e-13 relative)")


def ntxent_torch(views: torch.Tensor, tau: float) -> torch.Tensor:
    """NT-Xent through F.cross_entropy: rows of the (B, 2, D) views, self masked to -inf,
    target the other view of the same image."""
    b = views.shape[0]
    z = F.normalize(views.reshape(2 * b, -1), dim=1)
    s = z @ z.T / tau
    s = s.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
    target = torch.arange(2 * b) ^ 1  # row 2k <-> 2k + 1
    return F.cross_entropy(s, target)


@PRODUCTION.register("sincere.equals_infonce_instance_labels")
def _infonce(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("sincere.equals_infonce_instance_labels"))
    tally = Tally("production", rtol=RTOL64, atol=1e-14, dtype="float64")
    for c in range(cfg.points(30, 8)):
        b = int(rng.integers(1, 7))
        views = rng.standard_normal((b, 2, 4)) * 2
        tau = float(10 ** rng.uniform(-2, 2))
        y = torch.arange(b)
        x = t64(views)
        want = float(ntxent_torch(x, tau))  # peer: log_softmax, absolute accuracy ~1e-14
        for name, got in (
            ("SINCERE", sl.sincere_loss(x, y, temperature=tau)),
            ("SupCon out", sl.supcon_loss(x, y, temperature=tau, variant="out")),
            ("SupCon in", sl.supcon_loss(x, y, temperature=tau, variant="in")),
        ):
            tally.close(float(got), want, f"case {c} {name} (tau={tau:.3g})")
    return tally.result(
        "instance labels, 2 views: SINCERE = SupCon out = in = NT-Xent (F.cross_entropy)"
    )


@PRODUCTION.register("sincere.supcon_repulsion_grows_with_positives")
def _growth(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("sincere.supcon_repulsion_grows_with_positives"))
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    sizes = (1, 2, 3, 4, 8, 16, 32, 64) if not cfg.quick else (1, 2, 4, 16)
    for c in range(cfg.points(4, 2)):
        s_c = float(rng.uniform(2, 6))
        s_o = s_c - float(rng.uniform(0.2, 3))
        negs = rng.standard_normal(int(rng.integers(5, 40))) * 2
        prev = False
        for m in sizes:
            n = 1 + m + len(negs)  # anchor 0, closest positive 1, others, negatives
            s = np.zeros((n, n))
            s[0, 1], s[0, 2 : m + 1], s[0, m + 1 :] = s_c, s_o, negs
            labels = np.array([0] * (m + 1) + [1] * len(negs))
            x = t64(s, requires_grad=True)
            row0 = sl.supcon_from_logits(x, torch.as_tensor(labels), reduction="none")[0]
            (g,) = torch.autograd.grad(row0, x)
            xs = t64(s, requires_grad=True)
            row0s = sl.sincere_from_logits(xs, torch.as_tensor(labels), reduction="none")[0]
            (gs,) = torch.autograd.grad(row0s, xs)
            predicted = (m - 1) * (np.exp(s_c) - np.exp(s_o)) > np.exp(negs).sum()
            rep = bool(g[0, 1] > 0)
            if rep != predicted:
                tally.fail(f"case {c}, |P|={m}: sign {float(g[0, 1]):.3e} not as predicted")
            if prev and not rep:
                tally.fail(f"case {c}, |P|={m}: repulsion switched off")
            prev = rep
            tally.holds(-float(gs[0, 1]), f"case {c}, |P|={m}: SINCERE attracts")
    return tally.result("closest-positive autograd gradient vs |P|: predicted sign, monotone onset")


def hobbitlong_numpy(features: np.ndarray, labels: np.ndarray, tau: float, base: float) -> float:
    """NumPy transcription of HobbitLong's SupConLoss algorithm (note §2.1), contrast_mode
    'all': view-major rows, logits shifted by the detached row max (self included),
    exp-sum-log denominator over all rows but self, mean log-prob over positives, times
    -tau/base, mean over anchors. Written here from the description, not copied."""
    b, v, _ = features.shape
    z = features / np.linalg.norm(features, axis=-1, keepdims=True)
    rows = np.concatenate([z[:, k] for k in range(v)], axis=0)  # view-major
    lab = np.tile(labels, v)
    adc = rows @ rows.T / tau
    logits = adc - adc.max(axis=1, keepdims=True)
    not_self = ~np.eye(b * v, dtype=bool)
    mask = (lab[:, None] == lab[None, :]) & not_self
    log_prob = logits - np.log((np.exp(logits) * not_self).sum(1, keepdims=True))
    mean_pos = (mask * log_prob).sum(1) / mask.sum(1)
    return float(np.mean(-(tau / base) * mean_pos))


@PRODUCTION.register("sincere.base_temperature_rescale")
def _base_temperature(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("sincere.base_temperature_rescale"))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64")
    for c in range(cfg.points(20, 5)):
        b, v = int(rng.integers(2, 7)), int(rng.integers(2, 4))
        feats = rng.standard_normal((b, v, 5))
        labels = rng.integers(0, 3, size=b)
        tau = float(10 ** rng.uniform(-1.3, 0))
        base = float(rng.choice([0.07, 0.1, 0.5, tau]))
        y = torch.as_tensor(labels)
        x = t64(feats, requires_grad=True)
        scaled = sl.supcon_loss(x, y, temperature=tau, base_temperature=base)
        (gs,) = torch.autograd.grad(scaled, x)
        x2 = t64(feats, requires_grad=True)
        plain = sl.supcon_loss(x2, y, temperature=tau)
        (gp,) = torch.autograd.grad(plain, x2)
        tally.close(float(scaled.detach()), tau / base * float(plain.detach()), f"case {c} value")
        tally.close_normwise(
            gs.numpy().ravel(), (tau / base * gp.numpy()).ravel(), f"case {c} grad"
        )
        # every anchor has a positive (other views), so HobbitLong's mean agrees with ours
        want = hobbitlong_numpy(feats, labels, tau, base)
        tally.close(float(scaled.detach()), want, f"case {c} vs HobbitLong")
    return tally.result(
        "value and gradient scale by tau/base; matches HobbitLong's algorithm (NumPy)"
    )


# ----------------------------------------------------------------------------- conformance


STRESS_EMB = np.array([[1.0, 0.0], [1.0, 1e-3], [-1.0, 0.0], [-1.0, 0.5]])


def _conformance(cfg: CheckConfig, name: str, kind: str) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"conformance.{name}"))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(30, 6)):
            b = int(rng.integers(1, 7))
            views = int(rng.integers(1, 4)) if c % 3 == 0 else 1
            d = int(rng.integers(2, 6))
            shape = (b, views, d) if views > 1 else (b, d)
            emb = rng.standard_normal(shape) * float(10 ** rng.uniform(-1, 2))
            labels = _labels(rng, b)
            tau = float(10 ** rng.uniform(-3, 3))
            if c == 1:  # stress: |P| = 1, positives ahead by ~10/tau: loss and gradient ~e^-180
                emb, labels, tau = STRESS_EMB, np.array([0, 0, 1, 1]), 0.05
            base = None if c % 4 else float(10 ** rng.uniform(-2, 0))
            reduction = cast(Reduction, ("mean", "mean", "sum", "none")[c % 4])
            x = t64(emb, requires_grad=True)
            y = torch.as_tensor(labels)
            lab = labels.tolist()
            if kind == "sincere":
                out = sl.sincere_loss(
                    x, y, temperature=tau, base_temperature=base, reduction=reduction
                )
                want = oracle.sincere(emb, lab, tau, base_temperature=base, reduction=reduction)
            else:
                variant = cast(sl.Variant, kind)
                out = sl.supcon_loss(
                    x,
                    y,
                    temperature=tau,
                    variant=variant,
                    base_temperature=base,
                    reduction=reduction,
                )
                want = oracle.supcon(
                    emb, lab, tau, kind, base_temperature=base, reduction=reduction
                )
            where = f"case {c} shape={shape} labels={labels.tolist()} tau={tau:.3g} {reduction}"
            if reduction == "none":
                tally.close_all(out.detach().numpy().tolist(), want, where)
                continue
            tally.close(float(out.detach()), want, where + " value")
            (g,) = torch.autograd.grad(out, x)
            if reduction == "mean":
                if kind == "sincere":
                    wg = oracle.sincere_grad(emb, lab, tau, base_temperature=base)
                else:
                    wg = oracle.supcon_grad(emb, lab, tau, kind, base_temperature=base)
                tally.close_normwise(g.numpy().ravel().tolist(), oracle.flat(wg), where + " grad")
    return tally.result(
        "float64 value (mean/sum/none) and embedding gradient vs 50-digit oracle; tau in "
        "[1e-3, 1e3], singleton classes, single-class batches, (B, V, D) input, base_temperature"
    )


@CONFORMANCE.register("sincere.supcon_loss_out")
def _conf_out(cfg: CheckConfig) -> LegResult:
    return _conformance(cfg, "supcon_loss_out", "out")


@CONFORMANCE.register("sincere.supcon_loss_in")
def _conf_in(cfg: CheckConfig) -> LegResult:
    return _conformance(cfg, "supcon_loss_in", "in")


@CONFORMANCE.register("sincere.sincere_loss")
def _conf_sincere(cfg: CheckConfig) -> LegResult:
    return _conformance(cfg, "sincere_loss", "sincere")
