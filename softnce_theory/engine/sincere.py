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

from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.engine._torch import RTOL64, gradcheck, t64, temperature
from softnce_theory.losses import sincere as sl
from softnce_theory.losses._common import Reduction
from softnce_theory.numerics import sincere as oracle
from softnce_theory.numerics._mp import workdps

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


def _gradient_leg(cfg: CheckConfig, claim_id: str, kind: str) -> LegResult:
    """The claims' gradients are in the similarities s at temperature t: autograd of the
    production loss at logits s / t in s, against the NumPy closed form at s / t, over t."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64")
    gc_cases = min(3, cfg.points(30, 8))
    gc_ok = 0
    for c in range(cfg.points(30, 8)):
        n = int(rng.integers(2, 9))
        labels = _labels(rng, n)
        s = rng.standard_normal((n, n)) * float(10 ** rng.uniform(-2, 3.5))
        t = temperature(rng)
        x = t64(s, requires_grad=True)
        (g,) = torch.autograd.grad(_from_logits(kind)(x / t, torch.as_tensor(labels)), x)
        want = closed_grad(s / t, labels, kind) / t
        tally.close_normwise(
            g.numpy().ravel(), want.ravel(), f"case {c} {labels.tolist()} t={t:.3g}"
        )
        if c < gc_cases:
            y = torch.as_tensor(labels)
            fn = partial(_call_with_labels, _from_logits(kind), y)
            gc_ok += gradcheck(fn, t64(s) / max(1.0, float(np.abs(s).max())))
    if gc_ok < gc_cases:
        tally.fail(f"torch.autograd.gradcheck failed on {gc_cases - gc_ok} cases")
    return tally.result("autograd of the *_from_logits loss at s/t vs NumPy closed form; gradcheck")


def _call_with_labels(
    fn: Callable[..., torch.Tensor], y: torch.Tensor, v: torch.Tensor
) -> torch.Tensor:
    return fn(v, y)


@PRODUCTION.register("sincere.supcon_out_gradient")
def _out_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(cfg, "sincere.supcon_out_gradient", "out")


@PRODUCTION.register("sincere.supcon_in_gradient")
def _in_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(cfg, "sincere.supcon_in_gradient", "in")


@PRODUCTION.register("sincere.sincere_gradient")
def _sincere_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(cfg, "sincere.sincere_gradient", "sincere")


def _sign_leg(cfg: CheckConfig, claim_id: str, kind: str, on: str, want: int) -> LegResult:
    """The sign ``want`` (-1: < 0, 0: <= 0, +1: > 0) of the autograd gradient of the
    production loss on the positive (``on="pos"``) or negative entries of anchors with
    positives (SINCERE's positives: only anchors with a negative, the claim's hypothesis).
    Strict signs are required where the entry is not 0 by float64 underflow of its closed form
    (|closed| > 1e-300)."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for c in range(cfg.points(30, 8)):
        n = int(rng.integers(2, 9))
        labels = _labels(rng, n)
        s = rng.standard_normal((n, n)) * float(10 ** rng.uniform(-2, 2))
        g = _logit_grad(kind, s, labels)
        closed = closed_grad(s, labels, kind)
        pos, neg = _sets(labels)
        rows = np.asarray(pos.any(axis=1))
        if kind == "sincere" and on == "pos":
            rows = rows & np.asarray(neg.any(axis=1))
        mask = (pos if on == "pos" else neg) & rows[:, None]
        for i, a in zip(*np.nonzero(mask), strict=True):
            v, where = float(g[i, a]), f"case {c} {labels.tolist()} [{i}][{a}]"
            tally.holds(v if want > 0 else -v, where)
            if want and abs(closed[i, a]) > 1e-300 and not v * want > 0:
                tally.fail(f"{where}: {v!r} does not have sign {want}")
    return tally.result(f"sign of the autograd gradient of the {kind} loss on its {on} entries")


@PRODUCTION.register("sincere.supcon_in_gradient_nonpositive")
def _in_sign(cfg: CheckConfig) -> LegResult:
    return _sign_leg(cfg, "sincere.supcon_in_gradient_nonpositive", "in", "pos", 0)


@PRODUCTION.register("sincere.sincere_attracts_positives")
def _sincere_attracts(cfg: CheckConfig) -> LegResult:
    return _sign_leg(cfg, "sincere.sincere_attracts_positives", "sincere", "pos", -1)


@PRODUCTION.register("sincere.sincere_repels_negatives")
def _sincere_repels(cfg: CheckConfig) -> LegResult:
    return _sign_leg(cfg, "sincere.sincere_repels_negatives", "sincere", "neg", 1)


def _per_term_leg(cfg: CheckConfig, claim_id: str, check_value: bool) -> LegResult:
    """SupCon's denominator ignores labels, so the single term l_ia is the loss of anchor i
    after relabelling its other positives: its gradient on s_iq (q relabelled) at temperature t
    must be P_iq / t (``check_value``) and > 0."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64")
    for c in range(cfg.points(20, 5)):
        n = int(rng.integers(4, 9))
        labels = np.concatenate([[0, 0, 0], rng.integers(0, 3, size=n - 3)])
        s = rng.standard_normal((n, n)) * float(10 ** rng.uniform(-1, 1.5))
        t = temperature(rng)
        pos, neg = _sets(labels)
        p = _softmax_masked(s / t, pos | neg)
        i = 0
        ps = np.flatnonzero(pos[i])
        for a in ps:
            lab = labels.copy()
            others = [q for q in ps if q != a]
            lab[others] = labels.max() + 1 + np.arange(len(others))  # now negatives of i
            x = t64(s, requires_grad=True)
            term = sl.supcon_from_logits(x / t, torch.as_tensor(lab), reduction="none")[i]
            (g,) = torch.autograd.grad(term, x)
            for q in others:
                where = f"case {c} t={t:.3g}: d l_0{a} / d s_0{q}"
                if check_value:
                    tally.close(float(g[i, q]), p[i, q] / t, where + " = P / t")
                else:
                    tally.holds(float(g[i, q]), where + " > 0")
                    if p[i, q] > 1e-300 and not float(g[i, q]) > 0:
                        tally.fail(where + " is not > 0")
    return tally.result("per-term gradient via relabelling: P_iq / t (NumPy) and > 0")


@PRODUCTION.register("sincere.supcon_per_term_cross_gradient")
def _per_term_cross(cfg: CheckConfig) -> LegResult:
    return _per_term_leg(cfg, "sincere.supcon_per_term_cross_gradient", True)


@PRODUCTION.register("sincere.supcon_per_term_repulsion")
def _per_term(cfg: CheckConfig) -> LegResult:
    return _per_term_leg(cfg, "sincere.supcon_per_term_repulsion", False)


def tau_grad_closed(sims: np.ndarray, labels: np.ndarray, t: float, kind: str) -> float:
    """NumPy closed form of dL/dt of the mean-reduced loss at similarities ``sims`` (logits
    sims / t), written from the claims sincere.*_temperature_gradient (mean over anchors with
    positives)."""
    pos, neg = _sets(labels)
    allm = pos | neg
    valid = np.flatnonzero(pos.any(axis=1))
    if len(valid) == 0:
        return 0.0
    p_all = _softmax_masked(sims / t, allm)
    total = 0.0
    for i in valid:
        e_all = float((p_all[i] * sims[i]).sum())
        if kind == "out":
            total += (sims[i][pos[i]].mean() - e_all) / t**2
        elif kind == "in":
            x = _softmax_masked(sims[i : i + 1] / t, pos[i : i + 1])[0]
            total += (float((x * sims[i]).sum()) - e_all) / t**2
        else:
            acc = 0.0
            for k in np.flatnonzero(pos[i]):
                over = neg[i].copy()
                over[k] = True
                q = _softmax_masked(sims[i : i + 1] / t, over[None, :])[0]
                acc += sims[i, k] - float((q * sims[i]).sum())
            total += acc / (pos[i].sum() * t**2)
    return total / len(valid)


def _tau_leg(cfg: CheckConfig, claim_id: str, kind: str) -> LegResult:
    """dL/dtau of the production loss (a float64 tensor temperature, autograd) vs the NumPy
    closed form at the similarities z_i . z_j of the normalised embeddings."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("production", rtol=1e-10, atol=1e-13, dtype="float64")
    for c in range(cfg.points(20, 5)):
        n = int(rng.integers(2, 9))
        labels = _labels(rng, n)
        emb = rng.standard_normal((n, 4))
        t = float(10 ** rng.uniform(-1, 0.7))
        tau = t64(t, requires_grad=True)
        x, y = t64(emb), torch.as_tensor(labels)
        if kind == "sincere":
            out = sl.sincere_loss(x, y, temperature=tau)
        else:
            out = sl.supcon_loss(x, y, temperature=tau, variant=cast(sl.Variant, kind))
        (g,) = torch.autograd.grad(out, tau)
        z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        want = tau_grad_closed(z @ z.T, labels, t, kind)
        tally.close(float(g), want, f"case {c} {labels.tolist()} t={t:.3g}")
    return tally.result("autograd dL/dtau (tensor temperature) vs the NumPy closed form")


@PRODUCTION.register("sincere.supcon_out_temperature_gradient")
def _out_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "sincere.supcon_out_temperature_gradient", "out")


@PRODUCTION.register("sincere.supcon_in_temperature_gradient")
def _in_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "sincere.supcon_in_temperature_gradient", "in")


@PRODUCTION.register("sincere.sincere_temperature_gradient")
def _sincere_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "sincere.sincere_temperature_gradient", "sincere")


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


def _closest_positive_grad(
    m: int, s_c: float, s_o: float, negs: np.ndarray, t: float
) -> tuple[float, float]:
    """Autograd of the production SupCon L_out of anchor 0 in the similarity of its closest
    positive (s_c; m - 1 positives at s_o, the negatives at ``negs``, temperature t), and
    the denominator D = e^{s_c/t} + (m-1) e^{s_o/t} + Z_N (NumPy)."""
    n = 1 + m + len(negs)  # anchor 0, closest positive 1, others, negatives
    s = np.zeros((n, n))
    s[0, 1], s[0, 2 : m + 1], s[0, m + 1 :] = s_c, s_o, negs
    labels = np.array([0] * (m + 1) + [1] * len(negs))
    x = t64(s, requires_grad=True)
    row0 = sl.supcon_from_logits(x / t, torch.as_tensor(labels), reduction="none")[0]
    (g,) = torch.autograd.grad(row0, x)
    den = np.exp(s_c / t) + (m - 1) * np.exp(s_o / t) + np.exp(negs / t).sum()
    return float(g[0, 1]), float(den)


def _growth_cases(cfg: CheckConfig, claim_id: str) -> list[tuple[float, float, np.ndarray, float]]:
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    out = []
    for _ in range(cfg.points(4, 2)):
        s_c = float(rng.uniform(2, 6))
        s_o = s_c - float(rng.uniform(0.2, 3))
        negs = rng.standard_normal(int(rng.integers(5, 40))) * 2
        out.append((s_c, s_o, negs, float(10 ** rng.uniform(-0.5, 0.5))))
    return out


_GROWTH_SIZES = (1, 2, 3, 4, 8, 16, 32, 64)


@PRODUCTION.register("sincere.supcon_repulsion_threshold")
def _threshold(cfg: CheckConfig) -> LegResult:
    tally = Tally("production", rtol=1e-11, atol=1e-300, dtype="float64")
    sizes = _GROWTH_SIZES if not cfg.quick else (1, 2, 4, 16)
    for c, (s_c, s_o, negs, t) in enumerate(
        _growth_cases(cfg, "sincere.supcon_repulsion_threshold")
    ):
        for m in sizes:
            g, den = _closest_positive_grad(m, s_c, s_o, negs, t)
            margin = (m - 1) * (np.exp(s_c / t) - np.exp(s_o / t)) - np.exp(negs / t).sum()
            tally.close(g, margin / (m * t * den), f"case {c}, |P|={m}, t={t:.3g}")
    return tally.result("closest-positive autograd gradient vs the threshold closed form")


@PRODUCTION.register("sincere.supcon_repulsion_grows_with_positives")
def _growth(cfg: CheckConfig) -> LegResult:
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    sizes = _GROWTH_SIZES if not cfg.quick else (1, 2, 4, 16)
    for c, (s_c, s_o, negs, t) in enumerate(
        _growth_cases(cfg, "sincere.supcon_repulsion_grows_with_positives")
    ):
        prev_scaled, prev_rep = None, False
        for m in sizes:
            g, den = _closest_positive_grad(m, s_c, s_o, negs, t)
            scaled = m * t * den * g  # |P| t D times the autograd gradient
            where = f"case {c}, |P|={m}, t={t:.3g}"
            if prev_scaled is not None:
                slack = 1e-12 * max(abs(scaled), abs(prev_scaled))
                tally.holds(scaled - prev_scaled + slack, where + ": |P| t D grad increases")
            rep = g > 0
            if prev_rep and not rep:
                tally.fail(where + ": repulsion switched off as |P| grew")
            prev_scaled, prev_rep = scaled, rep
    return tally.result("closest-positive autograd gradient vs |P|: |P| t D grad increasing")


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
