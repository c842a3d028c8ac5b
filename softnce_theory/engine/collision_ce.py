"""Production legs (torch, float64) for the collision-CE claims, and conformance checks.

Expected values come from the mpmath oracle (``numerics.collision_ce``), from closed forms
assembled in NumPy, or from the peer ``soft_target_cross_entropy``; never from the code under
test. Comparisons against the 50-digit oracle use a pure relative tolerance (``RTOL64``; the
absolute floor 1e-300 only covers subnormal underflow). Property legs that compare two float64
evaluations on *rounded* inputs (``softmax(z)`` as a target, ``ln y`` as logits, the peer's
``log_softmax``) add an absolute floor of 1e-15, the size of that input rounding.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import torch

from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.engine._torch import RTOL64, gradcheck, t64
from softnce_theory.losses import collision_ce as cce
from softnce_theory.losses.cross_entropy import soft_target_cross_entropy
from softnce_theory.numerics import collision_ce as oracle
from softnce_theory.numerics._mp import workdps

PRODUCTION = LegRegistry("production")
CONFORMANCE = LegRegistry("production")

FLOOR = 1e-300  # subnormal underflow only
ROUNDING = 1e-15  # float64 rounding of a derived input (softmax(z), ln y, peer log_softmax)


# ----------------------------------------------------------------------------- helpers


def one_thread(fn: Any) -> Any:
    """Run a leg with ``torch.set_num_threads(1)`` (restored afterwards): the legs work on tiny
    tensors, where intra-op threads only add OpenMP wake-up latency (milliseconds per call on a
    loaded machine)."""

    @functools.wraps(fn)
    def wrapper(cfg: CheckConfig) -> LegResult:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(cfg)
        finally:
            torch.set_num_threads(before)

    return wrapper


def _rng(cfg: CheckConfig, key: str) -> np.random.Generator:
    return np.random.default_rng(cfg.seed_for(key))


def _value_grads(
    fn: Any, logits: Any, targets: Any, **kw: Any
) -> tuple[float, np.ndarray, np.ndarray]:
    """Value and the autograd gradients w.r.t. logits and targets (float64)."""
    z = t64(logits, requires_grad=True)
    y = t64(targets, requires_grad=True)
    out = fn(z, y, **kw)
    gz, gy = torch.autograd.grad(out, (z, y))
    return float(out.detach()), gz.numpy(), gy.numpy()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _flat(m: Any) -> list[Any]:
    return [v for row in m for v in row]


def _case(
    rng: np.random.Generator, n: int, c: int, max_scale: float = 1e4
) -> tuple[np.ndarray, np.ndarray]:
    """Logits up to ``max_scale`` and targets of every kind; one-hot / near-degenerate rows are
    put on the argmax half of the time (the cancellation-prone case)."""
    z = np.array([oracle.random_logits(rng, c, max_scale) for _ in range(n)])
    kind = oracle.TARGET_KINDS[int(rng.integers(len(oracle.TARGET_KINDS)))]
    y = np.array([oracle.random_target(rng, c, kind) for _ in range(n)])
    if kind in ("onehot", "near_degenerate") and rng.random() < 0.5:
        hot = np.eye(c)[z.argmax(1)]
        y = hot if kind == "onehot" else hot * (1 - 1e-9) + 1e-9 / c
        y = y / y.sum(1, keepdims=True)
    return z, y


def _merge(first: LegResult, **others: LegResult) -> LegResult:
    """Fold secondary tallies into ``first``: a failure anywhere fails the leg; the reported
    max errors stay those of ``first`` (the headline comparison), the others' go to ``extra``."""
    for name, o in others.items():
        if o.outcome == "fail" and first.outcome != "fail":
            first.outcome, first.counterexample = "fail", o.counterexample
        first.n_points += o.n_points
        first.extra[name] = {
            "n_points": o.n_points,
            "max_abs_err": o.max_abs_err,
            "max_rel_err": o.max_rel_err,
            "min_margin": o.min_margin,
        }
    return first


EPS64 = float(np.finfo(np.float64).eps)
UNDERFLOW = 1e-290  # below this a float64 gradient has no relative accuracy left (subnormals)


def close_num(tally: Tally, got: float, want: Any, where: str) -> None:
    """Relative comparison; an oracle value below float64's normal range (it underflows, e.g.
    H2 ~ e^-1e4) requires ``|got| <= UNDERFLOW`` instead."""
    if abs(want) < UNDERFLOW:
        tally.holds(UNDERFLOW - abs(got), f"{where} (underflow)")
    else:
        tally.close(got, want, where)


def close_vec(tally: Tally, got: Any, want: Any, where: str) -> None:
    """Normwise comparison; when the oracle's whole vector is below float64's normal range (the
    exact gradient underflows, e.g. ~e^-1e4), require ``max|got| <= UNDERFLOW`` instead."""
    got_l, want_l = list(got), list(want)
    if max((abs(w) for w in want_l), default=0) < UNDERFLOW:
        tally.holds(
            UNDERFLOW - max((abs(float(g)) for g in got_l), default=0.0), f"{where} (underflow)"
        )
    else:
        tally.close_normwise(got_l, want_l, where)


# ----------------------------------------------------------------------------- H2 legs


@PRODUCTION.register("collision_ce.onehot_equals_shannon")
@one_thread
def _onehot(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.onehot_equals_shannon")
    ora = Tally("production", rtol=RTOL64, atol=FLOOR, dtype="float64", dps=cfg.dps)
    peer = Tally("production", rtol=RTOL64, atol=ROUNDING, dtype="float64")
    with workdps(cfg.dps):
        for q in range(cfg.points(30, 8)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
            z = np.array([oracle.random_logits(rng, c) for _ in range(n)])
            hot = z.argmax(1) if q % 2 else rng.integers(0, c, size=n)
            y = np.eye(c)[hot]
            v, gz, _ = _value_grads(cce.collision_cross_entropy, z, y)
            want = (
                oracle.mp.fsum(
                    oracle.shannon_ce_logits(zi, yi) for zi, yi in zip(z, y, strict=True)
                )
                / n
            )
            want_g = [
                g / n
                for zi, yi in zip(z, y, strict=True)
                for g in oracle.shannon_grad_logits_row(zi, yi)
            ]
            ora.close(v, want, f"case {q}: value vs mpmath Shannon CE")
            close_vec(ora, gz.ravel().tolist(), want_g, f"case {q}: gradient vs mpmath")
            pv, pg, _ = _value_grads(soft_target_cross_entropy, z, y)
            peer.close(v, pv, f"case {q}: value vs soft_target_cross_entropy")
            peer.close_normwise(gz.ravel(), pg.ravel(), f"case {q}: gradient vs peer")
    return _merge(
        ora.result("one-hot H2 vs Shannon CE: mpmath oracle (1e-12 rel) and the peer torch loss"),
        peer=peer.result(),
    )


@PRODUCTION.register("collision_ce.uniform_constant")
@one_thread
def _uniform(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.uniform_constant")
    tally = Tally("production", rtol=RTOL64, atol=0.0, dtype="float64")
    for q in range(cfg.points(40, 10)):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 12))
        z = np.array([oracle.random_logits(rng, c) for _ in range(n)])
        y = np.full((n, c), 1.0 / c)
        v, gz, _ = _value_grads(cce.collision_cross_entropy, z, y)
        tally.close(v, -math.log(1.0 / c), f"case {q}: value vs -ln(fl(1/K))")
        tally.close(float(np.abs(gz).max()), 0.0, f"case {q}: gradient exactly 0")
    return tally.result("uniform targets: value ln K, logit gradient exactly 0 in float64")


@PRODUCTION.register("collision_ce.symmetric")
@one_thread
def _symmetric(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.symmetric")
    tally = Tally("production", rtol=RTOL64, atol=ROUNDING, dtype="float64")
    for q in range(cfg.points(40, 10)):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        z = np.array([oracle.random_logits(rng, c, 50.0) for _ in range(n)])
        y = rng.dirichlet(np.full(c, 0.7), size=n)
        a = cce.collision_cross_entropy(t64(z), t64(y), reduction="none")
        b = cce.collision_cross_entropy(t64(np.log(y)), t64(_softmax(z)), reduction="none")
        for i in range(n):
            tally.close(float(a[i]), float(b[i]), f"case {q}, row {i}: H2(y, s) vs H2(s, y)")
    return tally.result("production H2(z, y) vs H2(ln y, softmax z)")


@PRODUCTION.register("collision_ce.logit_gradient")
@one_thread
def _logit_gradient(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.logit_gradient")
    tally = Tally("production", rtol=RTOL64, atol=FLOOR, dtype="float64", dps=cfg.dps)
    gc_ok, gc_n = 0, min(4, cfg.points(30, 8))
    with workdps(cfg.dps):
        for q in range(cfg.points(30, 8)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
            z, y = _case(rng, n, c)
            _, gz, _ = _value_grads(cce.collision_cross_entropy, z, y)
            want = _flat(oracle.collision_ce_grad(z, y))
            close_vec(tally, gz.ravel().tolist(), want, f"case {q} (N={n}, K={c})")
            if q < gc_n:
                yt = t64(y)

                def loss(x: torch.Tensor, yt: torch.Tensor = yt) -> torch.Tensor:
                    return cce.collision_cross_entropy(x, yt)

                gc_ok += gradcheck(loss, t64(z) / max(1.0, float(np.abs(z).max())))
    if gc_ok < gc_n:
        tally.fail(f"torch.autograd.gradcheck failed on {gc_n - gc_ok} cases")
    return tally.result(
        "autograd vs the oracle's sigma - ytilde (normwise), logits up to 1e4; gradcheck"
    )


@PRODUCTION.register("collision_ce.target_gradient")
@one_thread
def _target_gradient(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.target_gradient")
    tally = Tally("production", rtol=RTOL64, atol=FLOOR, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(30, 8)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
            z = np.array([oracle.random_logits(rng, c, 300.0) for _ in range(n)])
            y = np.array(
                [oracle.random_target(rng, c, "sparse" if q % 2 else None) for _ in range(n)]
            )
            _, _, gy = _value_grads(cce.collision_cross_entropy, z, y)
            want = _flat(oracle.collision_ce_grad(z, y, "targets"))
            if not np.isfinite(gy).all():
                tally.fail(f"case {q}: non-finite target gradient {gy.tolist()}")
            close_vec(tally, gy.ravel().tolist(), want, f"case {q} (zeros: {int((y == 0).sum())})")
    return tally.result("autograd d/dy vs -sigma/(sigma.y) (oracle), exact zeros in y included")


@PRODUCTION.register("collision_ce.renyi_order_two")
@one_thread
def _renyi_two(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.renyi_order_two")
    tally = Tally("production", rtol=RTOL64, atol=FLOOR, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps + 40):
        for q in range(cfg.points(30, 8)):
            c = int(rng.integers(2, 9))
            z, y = _case(rng, 1, c, 30.0)
            v = float(cce.collision_cross_entropy(t64(z), t64(y)))
            tally.close(v, oracle.renyi_ce(y[0], oracle.probs_from_logits(z[0]), 2), f"case {q}")
    return tally.result("production H2 vs the oracle's Renyi H_alpha at alpha = 2")


@PRODUCTION.register("collision_ce.jensen_bound")
@one_thread
def _jensen(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.jensen_bound")
    tally = Tally("production", rtol=0, atol=RTOL64, dtype="float64")
    for q in range(cfg.points(60, 15)):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        z, y = _case(rng, n, c)
        h2 = cce.collision_cross_entropy(t64(z), t64(y), reduction="none").numpy()
        shan = soft_target_cross_entropy(t64(z), t64(y), reduction="none").numpy()
        for i in range(n):
            tally.holds((shan[i] - h2[i]) / max(1.0, abs(h2[i])), f"case {q}, row {i}")
    return tally.result("Shannon CE (peer) - H2 >= 0, relative to max(1, H2)")


@PRODUCTION.register("collision_ce.jensen_bound_reverse")
@one_thread
def _jensen_reverse(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.jensen_bound_reverse")
    tally = Tally("production", rtol=0, atol=RTOL64, dtype="float64")
    for q in range(cfg.points(60, 15)):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        z = np.array([oracle.random_logits(rng, c, 30.0) for _ in range(n)])
        y = rng.dirichlet(np.full(c, float(rng.choice([0.2, 1.0, 5.0]))), size=n)
        y = np.maximum(y, 1e-300)
        y = y / y.sum(1, keepdims=True)
        h2 = cce.collision_cross_entropy(t64(z), t64(y), reduction="none").numpy()
        rev = -(_softmax(z) * np.log(y)).sum(1)  # NumPy reverse CE H(sigma, y), y > 0
        for i in range(n):
            tally.holds((rev[i] - h2[i]) / max(1.0, abs(h2[i])), f"case {q}, row {i}")
    return tally.result("reverse CE (NumPy) - H2 >= 0 for y > 0, relative to max(1, H2)")


def _hessian_targets(z: np.ndarray, y: np.ndarray, fn: Any, **kw: Any) -> np.ndarray:
    zt = t64(z)
    n, c = y.shape

    def f(flat: torch.Tensor) -> torch.Tensor:
        return fn(zt, flat.reshape(n, c), validate=False, **kw)

    h = torch.autograd.functional.hessian(f, t64(y).reshape(-1))
    return h.numpy()


def _targets_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 5))
    z = rng.standard_normal((n, c)) * 3
    y = rng.dirichlet(np.ones(c), size=n)
    return z, y, _softmax(z)


def _h2_hessian_closed(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Block-diagonal sigma sigma^T / P^2 (H2 summed over rows), NumPy."""
    n, c = y.shape
    p = (s * y).sum(1)
    want = np.zeros((n * c, n * c))
    for i in range(n):
        want[i * c : (i + 1) * c, i * c : (i + 1) * c] = np.outer(s[i], s[i]) / p[i] ** 2
    return want


@PRODUCTION.register("collision_ce.convex_in_targets")
@one_thread
def _convex(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.convex_in_targets")
    psd = Tally("production", rtol=0, atol=1e-12, dtype="float64")
    curv = Tally("production", rtol=1e-10, atol=FLOOR, dtype="float64")
    for q in range(cfg.points(12, 3)):
        z, y, s = _targets_case(rng)
        h = _hessian_targets(z, y, cce.collision_cross_entropy, reduction="sum")
        psd.holds(np.linalg.eigvalsh(h).min() / np.abs(h).max(), f"case {q}: H2 Hessian PSD")
        d = rng.standard_normal(y.shape)
        want = float((((s * d).sum(1) / (s * y).sum(1)) ** 2).sum())
        curv.close(float(d.ravel() @ h @ d.ravel()), want, f"case {q}: d^T H d vs closed form")
    return _merge(
        psd.result("double-backward Hessian of production H2 in y: min eigenvalue >= 0"),
        curvature=curv.result(),
    )


@PRODUCTION.register("collision_ce.hessian_targets")
@one_thread
def _hessian(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.hessian_targets")
    tally = Tally("production", rtol=1e-10, atol=FLOOR, dtype="float64")
    for q in range(cfg.points(12, 3)):
        z, y, s = _targets_case(rng)
        h = _hessian_targets(z, y, cce.collision_cross_entropy, reduction="sum")
        tally.close_normwise(h.ravel(), _h2_hessian_closed(s, y).ravel(), f"case {q}")
    return tally.result("double-backward Hessian in y vs sigma sigma^T/P^2 (NumPy)")


@PRODUCTION.register("collision_ce.objective_convex")
@one_thread
def _objective_convex(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.objective_convex")
    tally = Tally("production", rtol=1e-10, atol=FLOOR, dtype="float64")
    psd = Tally("production", rtol=0, atol=1e-12, dtype="float64")
    for q in range(cfg.points(12, 3)):
        z, y, s = _targets_case(rng)
        n, c = y.shape
        lam = float(rng.uniform(0, 3))
        # self-labeling loss (mean): fit blocks / N + lam/(K N^2 ybar_k^2) on same-class pairs
        h = _hessian_targets(z, y, cce.self_labeling_loss, lam=lam)
        want = _h2_hessian_closed(s, y) / n
        ybar = y.mean(0)
        for k in range(c):
            idx = np.arange(n) * c + k
            want[np.ix_(idx, idx)] += lam / (c * n**2 * ybar[k] ** 2)
        tally.close_normwise(h.ravel(), want.ravel(), f"case {q}: Hessian of the loss in y")
        psd.holds(np.linalg.eigvalsh(h).min() / np.abs(h).max(), f"case {q}: Hessian PSD")
    return _merge(
        tally.result("self-labeling loss: double-backward Hessian in y vs closed form; PSD"),
        psd=psd.result(),
    )


def _hvp_logits(z: np.ndarray, y: np.ndarray, d: np.ndarray) -> float:
    zt = t64(z, requires_grad=True)
    out = cce.collision_cross_entropy(zt, t64(y), reduction="sum")
    (g,) = torch.autograd.grad(out, zt, create_graph=True)
    (hv,) = torch.autograd.grad((g * t64(d)).sum(), zt)
    return float((hv * t64(d)).sum())


def _curvature_closed(z: np.ndarray, y: np.ndarray, d: np.ndarray) -> float:
    """d^T [(diag s - s s^T) - (diag yt - yt yt^T)] d, summed over rows (NumPy)."""
    s = _softmax(z)
    yt = y * s / (y * s).sum(1, keepdims=True)
    total = 0.0
    for si, ti, di in zip(s, yt, d, strict=True):
        total += (
            di @ (np.diag(si) - np.outer(si, si)) @ di - di @ (np.diag(ti) - np.outer(ti, ti)) @ di
        )
    return float(total)


@PRODUCTION.register("collision_ce.nonconvex_in_logits")
@one_thread
def _nonconvex(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.nonconvex_in_logits")
    tally = Tally("production", rtol=1e-12, atol=FLOOR, dtype="float64")
    neg = Tally("production", rtol=0, atol=0, dtype="float64")
    zw, yw, dw = (
        np.array([[-5.0, -5.0, 0.0]]),
        np.array([[0.5, 0.5, 0.0]]),
        np.array([[1.0, -1.0, 0.0]]),
    )
    curv = _hvp_logits(zw, yw, dw)
    closed = 2 * math.exp(-5) / (1 + 2 * math.exp(-5)) - 1
    tally.close(curv, closed, "witness: double-backward curvature vs exact value")
    neg.holds(-curv, "witness: curvature < 0")
    near = Tally("production", rtol=1e-9, atol=1e-12, dtype="float64")
    for q in range(cfg.points(20, 5)):
        n, c = int(rng.integers(1, 4)), int(rng.integers(2, 6))
        z = rng.standard_normal((n, c)) * 4
        y = rng.dirichlet(np.full(c, 0.7), size=n)
        d = rng.standard_normal((n, c))
        near.close(
            _hvp_logits(z, y, d), _curvature_closed(z, y, d), f"case {q}: HVP vs closed form"
        )
    return _merge(
        tally.result(
            f"witness curvature {curv:.6f} < 0 in production float64; HVPs vs closed form"
        ),
        negative=neg.result(),
        hvp=near.result(),
    )


@PRODUCTION.register("collision_ce.argmin_onehot")
@one_thread
def _argmin(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.argmin_onehot")
    margin = Tally("production", rtol=0, atol=ROUNDING, dtype="float64")
    at = Tally("production", rtol=RTOL64, atol=FLOOR, dtype="float64")
    for q in range(cfg.points(40, 10)):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        z, y = _case(rng, n, c)
        h = cce.collision_cross_entropy(t64(z), t64(y), reduction="none").numpy()
        best = -np.log(y.max(1))
        for i in range(n):
            margin.holds(
                (h[i] - best[i]) / max(1.0, abs(best[i])), f"case {q}, row {i}: H2 >= -ln max y"
            )
        vertex = 1e4 * np.eye(c)[y.argmax(1)]  # softmax is exactly e_argmax in float64
        hv = cce.collision_cross_entropy(t64(vertex), t64(y), reduction="none").numpy()
        for i in range(n):
            at.close(float(hv[i]), float(best[i]), f"case {q}, row {i}: value at the vertex")
    return _merge(
        at.result("H2 >= -ln max y; equality at logits 1e4 e_argmax(y)"), margin=margin.result()
    )


@PRODUCTION.register("collision_ce.nonnegative")
@one_thread
def _nonneg(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.nonnegative")
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for q in range(cfg.points(40, 10)):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        z, y = _case(rng, n, c)
        h = cce.collision_cross_entropy(t64(z), t64(y), reduction="none").numpy()
        for i in range(n):
            tally.holds(float(h[i]), f"case {q}, row {i}: H2 >= 0")
    return tally.result("production H2 >= 0 exactly (float64), logits up to 1e4")


@PRODUCTION.register("collision_ce.nonnegative_zero_at_vertex")
@one_thread
def _zero_at_vertex(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.nonnegative_zero_at_vertex")
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for q in range(cfg.points(20, 5)):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        hot = rng.integers(0, c, size=n)
        zero = cce.collision_cross_entropy(t64(1e4 * np.eye(c)[hot]), t64(np.eye(c)[hot]))
        tally.close(float(zero), 0.0, f"case {q}: H2 at y = sigma = e_c")
    return tally.result("H2 == 0 at y = e_c, logits 1e4 e_c (softmax exactly e_c in float64)")


@PRODUCTION.register("collision_ce.nonnegative_gap")
@one_thread
def _nonneg_gap(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.nonnegative_gap")
    tally = Tally("production", rtol=0, atol=ROUNDING, dtype="float64")
    for q in range(cfg.points(40, 10)):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        z, y = _case(rng, n, c, 30.0)
        h = cce.collision_cross_entropy(t64(z), t64(y), reduction="none").numpy()
        gap = (_softmax(z) * (1 - y)).sum(1)
        for i in range(n):
            tally.holds(float(h[i] - gap[i]), f"case {q}, row {i}: H2 - sum s (1 - y)")
    return tally.result("production H2 >= sum_k sigma_k (1 - y_k) (NumPy), up to 1e-15")


@PRODUCTION.register("collision_ce.infinite_iff_disjoint")
@one_thread
def _disjoint(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.infinite_iff_disjoint")
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for q in range(cfg.points(30, 8)):
        c = int(rng.integers(2, 9))
        hot = int(rng.integers(c))
        zd = rng.standard_normal((1, c))
        zd[0, hot] = -math.inf  # sigma has no mass where y has all of it
        x = t64(zd, requires_grad=True)
        out = cce.collision_cross_entropy(x, t64(np.eye(c)[[hot]]))
        (g,) = torch.autograd.grad(out, x)
        val = float(out.detach())
        if not (math.isinf(val) and val > 0 and bool(torch.isfinite(g).all())):
            tally.fail(f"case {q}: disjoint supports gave {val!r}, gradient {g.tolist()}")
        else:
            tally.holds(0.0, f"case {q}: disjoint -> +inf")
        zf = zd.copy()
        zf[0, hot] = -700.0  # a tiny overlap: finite
        v = float(cce.collision_cross_entropy(t64(zf), t64(np.eye(c)[[hot]])))
        if not math.isfinite(v):
            tally.fail(f"case {q}: overlapping supports gave {v!r}")
        else:
            tally.holds(0.0, f"case {q}: overlap -> finite")
    return tally.result("+inf (finite gradient) when disjoint; finite at a tiny overlap")


@PRODUCTION.register("collision_ce.collision_entropy")
@one_thread
def _collision_entropy(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.collision_entropy")
    tally = Tally("production", rtol=RTOL64, atol=ROUNDING, dtype="float64")
    for q in range(cfg.points(40, 10)):
        n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
        y = rng.dirichlet(np.full(c, 0.5), size=n)
        y = np.maximum(y, 1e-300)
        y = y / y.sum(1, keepdims=True)
        h = cce.collision_cross_entropy(t64(np.log(y)), t64(y), reduction="none").numpy()
        want = -np.log((y**2).sum(1))
        for i in range(n):
            tally.close(float(h[i]), float(want[i]), f"case {q}, row {i}")
    return tally.result("production H2(logits = ln y, y) vs -ln sum y^2 (NumPy)")


# ----------------------------------------------------------------------------- EM legs


def _problem(rng: np.random.Generator, n: int, c: int, scale: float = 1.5) -> torch.Tensor:
    return torch.exp(torch.log_softmax(t64(rng.standard_normal((n, c)) * scale), -1))


@PRODUCTION.register("collision_ce.objective_gradient")
@one_thread
def _objective_gradient(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.objective_gradient")
    tally = Tally("production", rtol=RTOL64, atol=FLOOR, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(20, 5)):
            n, c = int(rng.integers(1, 6)), int(rng.integers(2, 6))
            lam = float(rng.uniform(0, 3))
            s = _problem(rng, n, c)
            y = torch.exp(torch.log_softmax(t64(rng.standard_normal((n, c))), -1))
            got = cce.pseudo_label_gradient(s, y, lam=lam)
            want = _flat(oracle.objective_grad(s.numpy(), y.numpy(), lam))
            tally.close_normwise(got.ravel().tolist(), want, f"case {q} (N={n}, K={c})")
    return tally.result("pseudo_label_gradient vs the oracle's closed-form grad F (normwise)")


@PRODUCTION.register("collision_ce.em_monotone")
@one_thread
def _em_monotone(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.em_monotone")
    step = Tally("production", rtol=RTOL64, atol=FLOOR, dtype="float64", dps=cfg.dps)
    mono = Tally("production", rtol=0, atol=4 * np.finfo(np.float64).eps, dtype="float64")
    iters = 80
    with workdps(cfg.dps):
        for q in range(cfg.points(6, 2)):  # one torch EM step vs the mpmath EM step
            n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
            lam = float(rng.uniform(0, 3))
            s = _problem(rng, n, c)
            y0 = torch.exp(torch.log_softmax(t64(rng.standard_normal((n, c))), -1))
            got = cce.em_pseudo_labels(s, lam=lam, y0=y0, max_iter=1, accelerate=False).y
            want = _flat(oracle.em_step(s.numpy(), y0.numpy(), lam))
            step.close_normwise(got.ravel().tolist(), want, f"problem {q}: one EM step vs mpmath")
    for q in range(cfg.points(24, 6)):
        n, c = int(rng.integers(2, 9)), int(rng.integers(2, 6))
        lam = 0.0 if q % 5 == 0 else float(rng.uniform(0.05, 3))
        s = _problem(rng, n, c, float(rng.uniform(0.5, 4)))
        for acc in (False, True):
            res = cce.em_pseudo_labels(s, lam=lam, tol=1e-300, max_iter=iters, accelerate=acc)
            for t_, (a, b) in enumerate(itertools.pairwise(res.history)):
                where = f"problem {q} (N={n}, K={c}, lam={lam:.3g}, accelerate={acc})"
                mono.holds((a - b) / abs(a), f"{where}, iteration {t_}")
    return _merge(
        mono.result(
            f"torch EM, plain and SQUAREM-accelerated: F non-increasing (relative, up to 4 eps) "
            f"over {iters} iterations; one plain step vs mpmath"
        ),
        em_step=step.result(),
    )


@PRODUCTION.register("collision_ce.em_fixed_point_kkt")
@one_thread
def _em_kkt(cfg: CheckConfig) -> LegResult:
    """Designed problems with a known interior optimum y* (numerics.designed_problem): y* has a
    zero KKT residual, torch EM from sigma stays above F* and ends within its Frank-Wolfe gap of
    it; on random problems the converged EM iterate has a small KKT residual."""
    rng = _rng(cfg, "collision_ce.em_fixed_point_kkt")
    cert = Tally("production", rtol=0, atol=0, dtype="float64")
    same = Tally("production", rtol=1e-6, atol=FLOOR, dtype="float64")
    kkts: list[float] = []
    with workdps(cfg.dps):
        for q in range(cfg.points(4, 1)):
            n, c = int(rng.integers(2, 5)), int(rng.integers(2, 4))
            sig_m, ystar, lam_m = oracle.designed_problem(rng, n, c)
            s = t64([[float(v) for v in r] for r in sig_m])
            s = s / s.sum(1, keepdim=True)
            yst, lam = t64([[float(v) for v in r] for r in ystar]), float(lam_m)
            fstar = float(cce.pseudo_label_objective(s, yst, lam=lam))
            where = f"designed problem {q} (N={n}, K={c}, lam={lam:.3g})"
            cert.holds(1e-10 - cce.pseudo_label_kkt_residual(s, yst, lam=lam), f"{where}: KKT(y*)")
            for acc in (False, True):
                em = cce.em_pseudo_labels(s, lam=lam, tol=1e-12, max_iter=4000, accelerate=acc)
                f_em, gap = em.history[-1], cce.pseudo_label_gap(s, em.y, lam=lam)
                w = f"{where}, accelerate={acc}"
                cert.holds(f_em - fstar + 1e-13 * abs(fstar), f"{w}: F_em >= F*")
                cert.holds(gap + 1e-13 * abs(fstar) - (f_em - fstar), f"{w}: F_em - F* <= gap")
                same.close(f_em, fstar, f"{w}: EM reaches F*")
    for q in range(cfg.points(4, 1)):
        n, c = int(rng.integers(2, 5)), int(rng.integers(2, 4))
        lam = float(rng.uniform(0.2, 3))
        s = _problem(rng, n, c)
        for acc in (False, True):
            em = cce.em_pseudo_labels(s, lam=lam, tol=1e-12, max_iter=4000, accelerate=acc)
            kkt = cce.pseudo_label_kkt_residual(s, em.y, lam=lam)
            kkts.append(kkt)
            where = f"random problem {q} (N={n}, K={c}, accelerate={acc})"
            cert.holds(1e-3 - kkt, f"{where}: KKT residual {kkt:.2e}")
    return _merge(
        same.result(
            "designed interior optimum: EM (plain and SQUAREM) reaches F* (1e-6 rel) within its "
            "Frank-Wolfe gap, KKT(y*) = 0; converged EM on random problems: KKT residual <= 1e-3",
            kkt_residuals=kkts,
        ),
        certificates=cert.result(),
    )


def _pgd(s: torch.Tensor, lam: float) -> cce.EMResult:
    """Fixed-step PGD with the first step in (0.2, 0.05, 0.01) * N that converges (the last try
    is returned when none does: the barrier term makes large steps leave the domain)."""
    n = s.shape[0]
    for factor in (0.2, 0.05, 0.01):
        res = cce.pgd_pseudo_labels(s, lam=lam, step=factor * n, tol=1e-13, max_iter=4000)
        if res.converged:
            break
    return res


@PRODUCTION.register("collision_ce.em_matches_pgd")
@one_thread
def _em_vs_pgd(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.em_matches_pgd")
    cert = Tally("production", rtol=0, atol=0, dtype="float64")
    same = Tally("production", rtol=1e-6, atol=FLOOR, dtype="float64")
    stats: dict[str, list[Any]] = {
        "em_iterations": [],
        "pgd_iterations": [],
        "em_gap": [],
        "pgd_gap": [],
        "em_converged": [],
        "pgd_converged": [],
    }
    for q in range(cfg.points(5, 2)):
        n, c = int(rng.integers(2, 6)), int(rng.integers(2, 4))
        lam = float(rng.uniform(0.2, 3))
        s = _problem(rng, n, c)
        em = cce.em_pseudo_labels(s, lam=lam, tol=1e-12, max_iter=4000)
        pg = _pgd(s, lam)
        f_em, f_pg = em.history[-1], pg.history[-1]
        g_em = cce.pseudo_label_gap(s, em.y, lam=lam)
        g_pg = cce.pseudo_label_gap(s, pg.y, lam=lam)
        # EM can need more than max_iter to meet its own tol (sublinear near a boundary optimum);
        # the certificates decide whether both reached the same optimum
        row = (em.iterations, pg.iterations, g_em, g_pg, em.converged, pg.converged)
        for key, val in zip(stats, row, strict=True):
            stats[key].append(val)
        where = f"problem {q} (N={n}, K={c}, lam={lam:.3g})"
        # F(y) - min F <= FW gap for both, so |F_em - F_pgd| <= max of the gaps (+ rounding)
        cert.holds(max(g_em, g_pg) + 1e-13 * abs(f_em) - abs(f_em - f_pg), f"{where}: certificates")
        if pg.converged:  # the claim assumes a step small enough for PGD to converge
            same.close(f_em, f_pg, f"{where}: EM vs PGD optimum")
    compared = sum(stats["pgd_converged"])
    if 2 * compared < len(stats["pgd_converged"]):
        cert.fail(f"PGD converged on only {compared}/{len(stats['pgd_converged'])} problems")
    return _merge(
        same.result("EM vs PGD objective (1e-6 rel), both within their Frank-Wolfe gaps", **stats),
        certificates=cert.result(),
    )


# ----------------------------------------------------------------------------- conformance


@CONFORMANCE.register("collision_ce.collision_cross_entropy")
@one_thread
def _conf_h2(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "conformance.collision_cross_entropy")
    tally = Tally("production", rtol=RTOL64, atol=FLOOR, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(40, 10)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
            z, y = _case(rng, n, c)
            v, gz, gy = _value_grads(cce.collision_cross_entropy, z, y)
            close_num(tally, v, oracle.collision_ce(z, y), f"case {q}: value")
            close_vec(
                tally, gz.ravel().tolist(), _flat(oracle.collision_ce_grad(z, y)), f"case {q}: d/dz"
            )
            want_y = _flat(oracle.collision_ce_grad(z, y, "targets"))
            if max(abs(w) for w in want_y) < 1e300:  # else beyond float64 (overflow to -inf)
                close_vec(tally, gy.ravel().tolist(), want_y, f"case {q}: d/dy")
    return tally.result("value and gradients (logits, targets) vs mpmath oracle; logits up to 1e4")


@CONFORMANCE.register("collision_ce.self_labeling_loss")
@one_thread
def _conf_self_labeling(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "conformance.self_labeling_loss")
    tally = Tally("production", rtol=RTOL64, atol=FLOOR, dtype="float64", dps=cfg.dps)
    # the fairness term's batch means round at a few lam*eps absolute (lam <= 3 here)
    val = Tally("production", rtol=RTOL64, atol=48 * EPS64, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(30, 8)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 7))
            z, y = _case(rng, n, c)
            lam = float(rng.uniform(0, 3))
            v, gz, gy = _value_grads(cce.self_labeling_loss, z, y, lam=lam)
            close_num(
                val, v, oracle.self_labeling_loss(z, y, lam), f"case {q}: value (lam={lam:.3g})"
            )
            close_vec(
                tally,
                gz.ravel().tolist(),
                _flat(oracle.self_labeling_grad(z, y, lam)),
                f"case {q}: d/dz",
            )
            if (y.sum(0) > 0).all():
                want_y = _flat(oracle.self_labeling_grad(z, y, lam, "targets"))
                if max(abs(w) for w in want_y) < 1e300:
                    close_vec(tally, gy.ravel().tolist(), want_y, f"case {q}: d/dy")
    return _merge(
        val.result(
            "value (rtol 1e-12 + 48 eps abs) and gradients (logits, pseudo-labels) vs oracle"
        ),
        gradients=tally.result(),
    )
