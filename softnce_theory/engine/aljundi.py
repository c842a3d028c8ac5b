"""Production legs (torch, float64) for the Aljundi et al. claims (reconstructed forms), and
conformance checks against the mpmath oracles.

Expected values come from NumPy closed forms assembled here, from torch's own
``F.cross_entropy`` / the cross-entropy family's ``nll_loss`` on cosine logits, or from the
oracles; never from the code under test.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.engine._torch import RTOL64, gradcheck, t64, temperature
from softnce_theory.losses import aljundi as al
from softnce_theory.losses import cross_entropy as ce
from softnce_theory.numerics import aljundi as oracle
from softnce_theory.numerics._mp import workdps

PRODUCTION = LegRegistry("production")
CONFORMANCE = LegRegistry("production")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _lse(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    v = np.where(mask, x, -np.inf)
    mx = np.max(v, axis=-1, keepdims=True)
    mx = np.where(np.isfinite(mx), mx, 0.0)
    with np.errstate(divide="ignore", over="ignore"):
        return (mx + np.log(np.where(mask, np.exp(v - mx), 0.0).sum(-1, keepdims=True)))[..., 0]


def _rows(cfg_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, k = int(cfg_rng.integers(1, 7)), int(cfg_rng.integers(2, 6))
    scale = float(10 ** cfg_rng.uniform(-1, 3))
    labels = cfg_rng.integers(0, k if cfg_rng.uniform() < 0.5 else 2, size=n)
    return (
        cfg_rng.standard_normal((n, n)) * scale,
        cfg_rng.standard_normal((n, k)) * scale,
        labels,
    )


def esupcon_closed(
    s: np.ndarray, t: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """NumPy closed form (G, H) of the mean ESupCon loss: R - [positive]/(|P|+1), with
    R - 1 written as -sigmoid(LSE_others - c) when the positive set is a singleton."""
    n, k = t.shape
    c = np.concatenate([s, t], axis=1)
    same = labels[:, None] == labels[None, :]
    eye = np.eye(n, dtype=bool)
    own = np.eye(k, dtype=bool)[labels]
    pos = np.concatenate([same & ~eye, own], axis=1)
    cand = np.concatenate([~eye, np.ones((n, k), dtype=bool)], axis=1)
    lse = _lse(c, cand)[:, None]
    with np.errstate(over="ignore"):
        r = np.where(cand, np.exp(np.where(cand, c, 0.0) - lse), 0.0)
    npos = pos.sum(1, keepdims=True)
    g = r - pos / npos
    single = (npos == 1) & pos  # R - 1 = -(sum of the others) / Z
    others = _lse(c, cand & ~pos)[:, None]
    g = np.where(single, -_sigmoid(others - c), g)
    g = np.where(cand, g, 0.0) / n
    return g[:, :n], g[:, n:]


def _ce_of_protos(emb: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return al.prototype_cross_entropy(emb, y, w)


def _es_of_emb(w: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return al.esupcon_loss(x, y, w)


@PRODUCTION.register("aljundi.prototype_ce_is_cosine_softmax_ce")
def _cosine(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.prototype_ce_is_cosine_softmax_ce"))
    tally = Tally("production", rtol=RTOL64, atol=1e-13, dtype="float64")
    for c in range(cfg.points(30, 8)):
        n, k, d = int(rng.integers(1, 7)), int(rng.integers(2, 7)), int(rng.integers(2, 6))
        emb, protos = rng.standard_normal((n, d)) * 3, rng.standard_normal((k, d)) * 3
        labels = torch.as_tensor(rng.integers(0, k, size=n))
        tau = float(10 ** rng.uniform(-2, 2))
        x, w = t64(emb), t64(protos)
        got = float(al.prototype_cross_entropy(x, labels, w, temperature=tau))
        cos = F.normalize(x, dim=1) @ F.normalize(w, dim=1).T
        tally.close(got, float(F.cross_entropy(cos / tau, labels)), f"case {c} vs F.cross_entropy")
        tally.close(got, float(ce.nll_loss(cos, labels, temperature=tau)), f"case {c} vs nll_loss")
        scaled = al.prototype_cross_entropy(x * 8.0, labels, w / 64.0, temperature=tau)
        tally.close(float(scaled), got, f"case {c} scale invariance")
    return tally.result(
        "prototype CE vs F.cross_entropy / cross_entropy.nll_loss of cosine logits (abs 1e-13: "
        "the peers' log_softmax is absolutely accurate); invariance to rescaling z and w"
    )


@PRODUCTION.register("aljundi.prototype_ce_gradient")
def _ce_gradient(cfg: CheckConfig) -> LegResult:
    """With identity embeddings and normalize=False, t_ik = W[k, i] / tau, so the autograd
    gradient w.r.t. the prototypes is the logit gradient (transposed, over tau)."""
    rng = np.random.default_rng(cfg.seed_for("aljundi.prototype_ce_gradient"))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64")
    gc_ok = gc_n = 0
    for c in range(cfg.points(30, 8)):
        _, t, labels = _rows(rng)
        n, k = t.shape
        eye = t64(np.eye(n))
        w = t64(t.T.copy(), requires_grad=True)  # (K, n): t = eye @ w.T
        loss = al.prototype_cross_entropy(
            eye, torch.as_tensor(labels), w, temperature=1.0, normalize=False
        )
        (g,) = torch.autograd.grad(loss, w)
        own = np.eye(k)[labels]
        others = _lse(t, own == 0)[:, None]
        t_own = t[np.arange(n), labels][:, None]
        p = np.exp(t - _lse(t, np.ones_like(own, dtype=bool))[:, None])
        closed = np.where(own == 1, -_sigmoid(others - t_own), p) / n  # p - e_y
        tally.close_normwise(g.numpy().T.ravel(), closed.ravel(), f"case {c}")
        if c < 3:
            d = 3
            emb, protos = t64(rng.standard_normal((n, d))), rng.standard_normal((k, d))
            y = torch.as_tensor(labels)
            gc_n += 1
            gc_ok += gradcheck(partial(_ce_of_protos, emb, y), t64(protos))
    if gc_ok < gc_n:
        tally.fail(f"gradcheck failed on {gc_n - gc_ok} cases")
    return tally.result("autograd (via identity embeddings) vs NumPy p - e_y; gradcheck")


@PRODUCTION.register("aljundi.esupcon_reduces_to_prototype_ce")
def _reduction(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_reduces_to_prototype_ce"))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64")
    for c in range(cfg.points(30, 8)):
        k, d = int(rng.integers(1, 6)), 4
        protos = t64(rng.standard_normal((k, d)))
        tau = temperature(rng)
        one = t64(rng.standard_normal((1, d)))
        y = torch.as_tensor([int(rng.integers(k))])
        tally.close(
            float(al.esupcon_loss(one, y, protos, temperature=tau)),
            float(al.prototype_cross_entropy(one, y, protos, temperature=tau)),
            f"case {c}: B = 1 (tau={tau:.3g})",
        )
    return tally.result("B = 1: esupcon_loss == prototype_cross_entropy")


def _no_sample_leg(cfg: CheckConfig, claim_id: str, identity: bool) -> LegResult:
    """Distinct labels (no anchor has a same-class sample): per row ESupCon = CE +
    log1p(Z_N/Z_K) (NumPy, ``identity``) or ESupCon >= CE."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("production", rtol=RTOL64 if identity else 0, atol=1e-300, dtype="float64")
    for c in range(cfg.points(30, 8)):
        k, d = int(rng.integers(2, 6)), 4
        protos = t64(rng.standard_normal((k, d)))
        tau = temperature(rng)
        n = int(rng.integers(1, k + 1))
        labels = rng.permutation(k)[:n]
        emb = rng.standard_normal((n, d))
        x, lab = t64(emb), torch.as_tensor(labels)
        es = al.esupcon_loss(x, lab, protos, temperature=tau, reduction="none").numpy()
        cer = al.prototype_cross_entropy(x, lab, protos, temperature=tau, reduction="none").numpy()
        z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        wn = protos.numpy() / np.linalg.norm(protos.numpy(), axis=1, keepdims=True)
        s, t = z @ z.T / tau, z @ wn.T / tau
        extra = np.log1p(
            np.exp(_lse(s, ~np.eye(n, dtype=bool)) - _lse(t, np.ones_like(t, dtype=bool)))
        )
        for i in range(n):
            where = f"case {c} row {i} (tau={tau:.3g})"
            if identity:
                tally.close(es[i], cer[i] + extra[i], where + ": CE + log(1 + Z_N/Z_K)")
            else:
                tally.holds(es[i] - cer[i] + 1e-13 * max(abs(es[i]), 1.0), where + ": >= CE")
    return tally.result("no same-class sample: ESupCon vs CE + log1p(Z_N/Z_K) / >= CE")


@PRODUCTION.register("aljundi.esupcon_no_same_class_sample")
def _no_sample(cfg: CheckConfig) -> LegResult:
    return _no_sample_leg(cfg, "aljundi.esupcon_no_same_class_sample", True)


@PRODUCTION.register("aljundi.esupcon_no_same_class_sample_ge_ce")
def _no_sample_ge(cfg: CheckConfig) -> LegResult:
    return _no_sample_leg(cfg, "aljundi.esupcon_no_same_class_sample_ge_ce", False)


def _ce_sign_leg(cfg: CheckConfig, claim_id: str, own: bool) -> LegResult:
    """Autograd gradient of prototype_cross_entropy in the prototype logits (identity
    embeddings, normalize=False): <= 0 on the own prototype, > 0 on the others."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for c in range(cfg.points(30, 8)):
        _, t, labels = _rows(rng)
        n, k = t.shape
        w = t64(t.T.copy(), requires_grad=True)
        loss = al.prototype_cross_entropy(
            t64(np.eye(n)), torch.as_tensor(labels), w, temperature=1.0, normalize=False
        )
        (g,) = torch.autograd.grad(loss, w)
        gt = g.numpy().T
        p = np.exp(t - _lse(t, np.ones_like(t, dtype=bool))[:, None])
        for i, y in enumerate(labels):
            for kk in [y] if own else [kk for kk in range(k) if kk != y]:
                v, where = float(gt[i, kk]), f"case {c}: row {i}, prototype {kk}"
                tally.holds(-v if own else v, where)
                if not own and p[i, kk] > 1e-300 and not v > 0:
                    tally.fail(where + " not repelled")
    return tally.result("sign of the autograd prototype-logit gradient (own <= 0, others > 0)")


@PRODUCTION.register("aljundi.prototype_ce_attracts_own_prototype")
def _ce_own(cfg: CheckConfig) -> LegResult:
    return _ce_sign_leg(cfg, "aljundi.prototype_ce_attracts_own_prototype", True)


@PRODUCTION.register("aljundi.prototype_ce_repels_other_prototypes")
def _ce_others(cfg: CheckConfig) -> LegResult:
    return _ce_sign_leg(cfg, "aljundi.prototype_ce_repels_other_prototypes", False)


def tau_grad_closed(
    emb: np.ndarray, protos: np.ndarray, labels: np.ndarray, tau: float, kind: str
) -> float:
    """NumPy closed form of dL/dtau (mean over rows) from the claims: CE (cos_y - sum_c p_c
    cos_c)/tau^2; ESupCon (mean positive similarity - sum_a R_a a)/tau^2 over the other
    samples and all prototypes."""
    z = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    w = protos / np.linalg.norm(protos, axis=1, keepdims=True)
    n, k = len(z), len(w)
    sims, cos = z @ z.T, z @ w.T
    out = 0.0
    for i in range(n):
        if kind == "ce":
            vals, pos = cos[i], [labels[i]]
        else:
            others = [a for a in range(n) if a != i]
            vals = np.concatenate([sims[i, others], cos[i]])
            pos = [e for e, a in enumerate(others) if labels[a] == labels[i]]
            pos.append(len(others) + int(labels[i]))
        r = np.exp((vals - vals.max()) / tau)
        out += (vals[pos].mean() - float((r * vals).sum() / r.sum())) / tau**2
    del k
    return out / n


def _tau_leg(cfg: CheckConfig, claim_id: str, kind: str) -> LegResult:
    """dL/dtau of the production loss (a float64 tensor temperature, autograd) vs the NumPy
    closed form."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("production", rtol=1e-10, atol=1e-13, dtype="float64")
    fn = al.prototype_cross_entropy if kind == "ce" else al.esupcon_loss
    for c in range(cfg.points(20, 5)):
        n, k, d = int(rng.integers(1, 7)), int(rng.integers(1, 5)), 4
        labels = rng.integers(0, k, size=n)
        emb, protos = rng.standard_normal((n, d)), rng.standard_normal((k, d))
        t = float(10 ** rng.uniform(-1, 0.7))
        tau = t64(t, requires_grad=True)
        out = fn(t64(emb), torch.as_tensor(labels), t64(protos), temperature=tau)
        (g,) = torch.autograd.grad(out, tau)
        want = tau_grad_closed(emb, protos, labels, t, kind)
        tally.close(float(g), want, f"case {c} {labels.tolist()} tau={t:.3g}")
    return tally.result("autograd dL/dtau (tensor temperature) vs the NumPy closed form")


@PRODUCTION.register("aljundi.prototype_ce_temperature_gradient")
def _ce_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "aljundi.prototype_ce_temperature_gradient", "ce")


@PRODUCTION.register("aljundi.esupcon_temperature_gradient")
def _es_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "aljundi.esupcon_temperature_gradient", "es")


def _es_autograd(s: np.ndarray, t: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    xs, xt = t64(s, requires_grad=True), t64(t, requires_grad=True)
    loss = al.esupcon_formula(xs, xt, torch.as_tensor(labels)).mean()
    gs, gt = torch.autograd.grad(loss, (xs, xt))
    return gs.numpy(), gt.numpy()


@PRODUCTION.register("aljundi.esupcon_logit_gradient")
def _es_gradient(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_logit_gradient"))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64")
    gc_ok = gc_n = 0
    for c in range(cfg.points(30, 8)):
        s, t, labels = _rows(rng)
        gs, gt = _es_autograd(s, t, labels)
        ws, wt = esupcon_closed(s, t, labels)
        tally.close_normwise(
            np.concatenate([gs.ravel(), gt.ravel()]),
            np.concatenate([ws.ravel(), wt.ravel()]),
            f"case {c} {labels.tolist()}",
        )
        if c < 3:
            emb = rng.standard_normal((len(labels), 3))
            protos = t64(rng.standard_normal((t.shape[1], 3)))
            y = torch.as_tensor(labels)
            gc_n += 1
            gc_ok += gradcheck(partial(_es_of_emb, protos, y), t64(emb))
    if gc_ok < gc_n:
        tally.fail(f"gradcheck failed on {gc_n - gc_ok} cases")
    return tally.result(
        "autograd of esupcon_formula vs NumPy closed form; gradcheck of esupcon_loss"
    )


@PRODUCTION.register("aljundi.esupcon_own_prototype_attracted_without_samples")
def _own_attracted(cfg: CheckConfig) -> LegResult:
    """Autograd of esupcon_formula: anchors without a same-class sample (and with another
    sample) attract their own prototype (< 0); the net signs of all positives follow
    R > 1/(|P|+1) (esupcon_logit_gradient), checked alongside."""
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_same_class_repulsion"))
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    counts = {"samples_repelled": 0, "own_proto_repelled": 0, "no_positive_attracted": 0}
    cases: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for hi_proto in (True, False):
        s0 = np.zeros((3, 3))
        s0[0, 1], s0[0, 2] = (0.0 if hi_proto else 5.0), -5.0
        t0 = np.zeros((3, 2))
        t0[0] = (5.0 if hi_proto else 0.0), -5.0
        cases.append((s0, t0, np.array([0, 0, 1])))
    for _ in range(cfg.points(20, 5)):
        s, t, labels = _rows(rng)
        cases.append((np.tanh(s) * 3, np.tanh(t) * 3, labels))
    for c, (s, t, labels) in enumerate(cases):
        gs, gt = _es_autograd(s, t, labels)
        n, k = t.shape
        cc = np.concatenate([s, t], axis=1)
        cand = np.concatenate([~np.eye(n, dtype=bool), np.ones((n, k), dtype=bool)], axis=1)
        r = np.where(cand, np.exp(cc - _lse(cc, cand)[:, None]), 0.0)
        for i in range(n):
            n_pos = int((labels == labels[i]).sum()) - 1
            thresh = 1.0 / (n_pos + 1)
            for a in range(n):
                if a != i and labels[a] == labels[i]:
                    if abs(r[i, a] - thresh) > 1e-12 and (gs[i, a] > 0) != (r[i, a] > thresh):
                        tally.fail(
                            f"case {c}: sample {a} of anchor {i}: sign not iff R > 1/(|P|+1)"
                        )
                    counts["samples_repelled"] += int(gs[i, a] > 0)
            y = labels[i]
            if abs(r[i, n + y] - thresh) > 1e-12 and (gt[i, y] > 0) != (r[i, n + y] > thresh):
                tally.fail(f"case {c}: own prototype of anchor {i}: sign not iff R > 1/(|P|+1)")
            counts["own_proto_repelled"] += int(gt[i, y] > 0)
            if n_pos == 0 and n > 1:
                tally.holds(
                    -float(gt[i, y]), f"case {c}: anchor {i} (|P| = 0) attracts its prototype"
                )
                if not gt[i, y] < 0:
                    tally.fail(f"case {c}: anchor {i} (|P| = 0) does not attract its prototype")
                counts["no_positive_attracted"] += int(gt[i, y] < 0)
    if counts["no_positive_attracted"] == 0:
        tally.fail(f"no anchor without same-class samples: {counts}")
    return tally.result(
        "autograd signs vs softmax shares (NumPy): repelled iff R > 1/(|P|+1)", **counts
    )


@PRODUCTION.register("aljundi.esupcon_lower_bound")
def _lower_bound(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_lower_bound"))
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for c in range(cfg.points(40, 10)):
        n, k, d = int(rng.integers(1, 9)), int(rng.integers(2, 5)), 4
        labels = rng.integers(0, k, size=n)
        tau = temperature(rng)
        rows = al.esupcon_loss(
            t64(rng.standard_normal((n, d))),
            torch.as_tensor(labels),
            t64(rng.standard_normal((k, d))),
            temperature=tau,
            reduction="none",
        ).numpy()
        for i in range(n):
            n_pos = int((labels == labels[i]).sum()) - 1
            tally.holds(
                rows[i] - np.log(n_pos + 1) + 1e-13 * max(abs(rows[i]), 1.0), f"case {c} row {i}"
            )
    return tally.result("per row l_i >= log(|P(i)| + 1) (slack 1e-13 relative)")


# ----------------------------------------------------------------------------- conformance


def _conf_case(
    rng: np.random.Generator, c: int, views_ok: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    b, k, d = int(rng.integers(1, 6)), int(rng.integers(1, 5)), int(rng.integers(2, 5))
    v = int(rng.integers(2, 4)) if views_ok and c % 3 == 0 else 1
    emb = rng.standard_normal((b, v, d) if v > 1 else (b, d)) * float(10 ** rng.uniform(-1, 2))
    protos = rng.standard_normal((k, d)) * float(10 ** rng.uniform(-1, 1))
    labels = rng.integers(0, k, size=b) if c % 5 else np.zeros(b, dtype=np.int64)
    return emb, protos, labels, float(10 ** rng.uniform(-3, 3))


def _conformance(
    cfg: CheckConfig, name: str, value: Any, want: Any, want_grad: Any, views_ok: bool
) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"conformance.{name}"))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(30, 6)):
            emb, protos, labels, tau = _conf_case(rng, c, views_ok)
            x, w = t64(emb, requires_grad=True), t64(protos, requires_grad=True)
            out = value(x, torch.as_tensor(labels), w, tau)
            where = (
                f"case {c} shape={emb.shape} K={len(protos)} labels={labels.tolist()} tau={tau:.3g}"
            )
            tally.close(
                float(out.detach()), want(emb, labels.tolist(), protos, tau), where + " value"
            )
            gx, gw = torch.autograd.grad(out, (x, w))
            wz, ww = want_grad(emb, labels.tolist(), protos, tau)
            tally.close_normwise(
                gx.numpy().ravel().tolist() + gw.numpy().ravel().tolist(),
                oracle_flat(wz) + oracle_flat(ww),
                where + " grad",
            )
    return tally.result(
        "float64 value and gradients (embeddings and prototypes) vs 50-digit oracle; tau in "
        "[1e-3, 1e3], K = 1 included, single-class batches"
        + (", (B, V, D) input" if views_ok else "")
    )


def oracle_flat(xs: Any) -> list[Any]:
    if isinstance(xs, list):
        return [v for x in xs for v in oracle_flat(x)]
    return [xs]


@CONFORMANCE.register("aljundi.prototype_cross_entropy")
def _conf_ce(cfg: CheckConfig) -> LegResult:
    return _conformance(
        cfg,
        "prototype_cross_entropy",
        lambda x, y, w, tau: al.prototype_cross_entropy(x, y, w, temperature=tau),
        oracle.prototype_ce,
        oracle.prototype_ce_grad,
        views_ok=False,
    )


@CONFORMANCE.register("aljundi.esupcon_loss")
def _conf_es(cfg: CheckConfig) -> LegResult:
    return _conformance(
        cfg,
        "esupcon_loss",
        lambda x, y, w, tau: al.esupcon_loss(x, y, w, temperature=tau),
        oracle.esupcon,
        oracle.esupcon_grad,
        views_ok=True,
    )


@CONFORMANCE.register("aljundi.prototype_predict")
def _conf_predict(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("conformance.prototype_predict"))
    tally = Tally("production", rtol=RTOL64, atol=1e-300, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(20, 5)):
            emb, protos, _, tau = _conf_case(rng, c, False)
            got = al.prototype_predict(t64(emb), t64(protos), tau).numpy()
            want = oracle.predict(emb, protos, tau)
            tally.close_all(got.ravel().tolist(), oracle_flat(want), f"case {c} tau={tau:.3g}")
    return tally.result(
        "probabilities vs 50-digit oracle (element-wise relative, tau in [1e-3, 1e3])"
    )
