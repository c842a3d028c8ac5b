"""Production legs (torch, float64) for the InfoNCE / ranking-NCE claims, and conformance checks
of the production losses against the mpmath oracles (value and gradient)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.engine._torch import RTOL64, t64, temperature, value_and_grad
from softnce_theory.losses import infonce as L
from softnce_theory.numerics import infonce as oracle
from softnce_theory.numerics._mp import mat, mpf, workdps

PRODUCTION = LegRegistry("production")
CONFORMANCE = LegRegistry("production")

EPS64 = float(np.finfo(np.float64).eps)
#: results below float64's normal range compare absolutely (the oracle keeps e^-20000).
TINY = 1e-300


def _rng(cfg: CheckConfig, key: str) -> np.random.Generator:
    return np.random.default_rng(cfg.seed_for(key))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _softmax_minus_onehot(z: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """softmax(z) - onehot(pos) row-wise, the positive entry as -(sum of the others) (no
    cancellation in P_pos - 1 when the positive dominates)."""
    g = _softmax(z)
    rows = np.arange(z.shape[0])
    g[rows, pos] = 0.0
    g[rows, pos] = -g.sum(-1)
    return g


def _merge(into: Tally, part: Tally) -> None:
    """Fold a per-case tally (with its own tolerance) into the leg's tally."""
    into.n += part.n
    into.max_abs = max(into.max_abs, part.max_abs)
    into.max_rel = max(into.max_rel, part.max_rel)
    if part.min_margin is not None:
        into.min_margin = (
            part.min_margin if into.min_margin is None else min(into.min_margin, part.min_margin)
        )
    if part.failure is not None and into.failure is None:
        into.failure = part.failure


# ----------------------------------------------------------------------------- production legs


@PRODUCTION.register("infonce.log_k_ceiling")
def _prod_log_k(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.log_k_ceiling")
    tally = Tally("production", rtol=RTOL64, atol=0.0, dtype="float64")
    for case in range(cfg.points(30, 8)):
        b, d = int(rng.integers(1, 9)), int(rng.integers(1, 6))
        t = temperature(rng)
        kind: L.Similarity = "cosine" if case % 2 == 0 else "dot"
        q, k = rng.standard_normal((b, d)), rng.standard_normal((b, d))
        rows = L.info_nce(t64(q), t64(k), temperature=t, similarity=kind, reduction="none")
        # I_NCE row estimate = log B - loss_i <= log B  <=>  loss_i >= 0
        for i, v in enumerate(rows.tolist()):
            tally.holds(v, f"case {case} row {i} (B={b}, t={t:.3g}, {kind})")
    # tightness: q_i = L e_i, k_j = e_j (dot, t = 1): loss = log(1 + (B-1) e^{-L})
    for case in range(cfg.points(10, 3)):
        b = int(rng.integers(2, 9))
        big = float(rng.uniform(0, 700))
        eye = np.eye(b)
        got = float(L.info_nce(t64(big * eye), t64(eye), temperature=1.0, similarity="dot"))
        tally.close(
            got, math.log1p((b - 1) * math.exp(-big)), f"tightness case {case} (B={b}, L={big:.3g})"
        )
    return tally.result(
        "every per-row production InfoNCE loss >= 0 (I_NCE row <= log B); "
        "diagonal critic gives log(1 + (B-1) e^-L)"
    )


def _critic_batch(
    pairs: list[tuple[int, int]], crit: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries = critic rows f(x, .), keys = one-hot(y): dot similarity gives f(x_i, y_j)."""
    ny = crit.shape[1]
    q = np.stack([crit[a] for a, _ in pairs])
    k = np.stack([np.eye(ny)[b] for _, b in pairs])
    return t64(q), t64(k)


@PRODUCTION.register("infonce.mi_lower_bound")
def _prod_mi_bound(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.mi_lower_bound.production")
    tally = Tally("production", rtol=1e-12, atol=1e-13, dtype="float64")
    shapes = ((2, 2, 3), (2, 3, 3), (2, 2, 4)) if not cfg.quick else ((2, 2, 3),)
    with workdps(cfg.dps):
        for nx, ny, kk in shapes:
            flat = rng.dirichlet([2.0] * (nx * ny))
            joint_np = flat.reshape(nx, ny)
            joint = [[mpf(v) for v in row] for row in joint_np]
            tot = sum(sum(r) for r in joint)
            joint = [[v / tot for v in r] for r in joint]
            info = float(oracle.mutual_information(joint))
            pairs = [(a, b) for a in range(nx) for b in range(ny)]
            probs = [float(joint[a][b]) for a, b in pairs]
            px, py = joint_np.sum(1), joint_np.sum(0)
            critics = [("f*", np.log(joint_np / np.outer(px, py)))]
            critics += [
                (f"random {u}", rng.standard_normal((nx, ny)) * 2) for u in range(cfg.points(2, 1))
            ]
            for name, crit in critics:
                est = 0.0
                for cnt in oracle.compositions(kk, len(pairs)):
                    batch = [pairs[u] for u, c in enumerate(cnt) for _ in range(c)]
                    w = float(math.factorial(kk))
                    for u, c in enumerate(cnt):
                        w = w / math.factorial(c) * probs[u] ** c
                    q, k = _critic_batch(batch, crit)
                    loss = float(L.info_nce(q, k, temperature=1.0, similarity="dot"))
                    est += w * (math.log(kk) - loss)
                where = f"{nx}x{ny} joint, K={kk}, critic {name}"
                tally.holds(info - est, where)
                want = oracle.expected_estimate(joint, mat(crit), kk)
                tally.close(est, want, where + " vs precise enumeration")
    return tally.result(
        "production in-batch InfoNCE (dot, one-hot keys, queries = critic rows) "
        "averaged exactly over compositions of K pairs: E[log K - L] <= I(X;Y)"
    )


def _ranking_rows(
    ncls: int, kk: int, p: np.ndarray, q: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """All (y0, y1..yK) tuples as rows of label indices, and their probabilities."""
    import itertools

    idx, w = [], []
    for tup in itertools.product(range(ncls), repeat=kk + 1):
        idx.append(tup)
        w.append(p[tup[0]] * np.prod([q[y] for y in tup[1:]]))
    return np.asarray(idx), np.asarray(w)


def _population(
    s: torch.Tensor, idx: torch.Tensor, w: torch.Tensor, logq: torch.Tensor
) -> torch.Tensor:
    scores = s[idx]
    return (w * L.ranking_nce(scores, log_q=logq[idx], reduction="none")).sum()


def _ranking_cases(cfg: CheckConfig, key: str) -> Iterator[tuple[Any, ...]]:
    rng = _rng(cfg, key)
    for case in range(cfg.points(12, 4)):
        ncls, kk = int(rng.integers(2, 5)), int(rng.integers(1, 4))
        p, q = rng.dirichlet(np.ones(ncls)), rng.dirichlet(np.ones(ncls))
        idx_np, w_np = _ranking_rows(ncls, kk, p, q)
        idx, w, logq = torch.as_tensor(idx_np), t64(w_np), t64(np.log(q))
        star = np.log(p) + rng.normal() * 3
        yield f"case {case} (C={ncls}, K={kk})", rng, idx, w, logq, star


@PRODUCTION.register("infonce.ranking_nce_consistency")
def _prod_ranking(cfg: CheckConfig) -> LegResult:
    tally = Tally("production", rtol=1e-12, atol=1e-14, dtype="float64")
    for where, rng, idx, w, logq, star in _ranking_cases(
        cfg, "infonce.ranking_nce_consistency.production"
    ):
        _, g = value_and_grad(_population, t64(star), idx, w, logq)
        for a, gv in enumerate(g.tolist()):
            tally.close(gv, 0.0, where + f": dJ/ds_{a} at s*")
        d = rng.standard_normal(len(star))
        tally.close(float(np.dot(g, d)), 0.0, where + ": directional derivative at s*")
    return tally.result(
        "production ranking_nce (log q) summed exactly over all label tuples: "
        "autograd gradient and directional derivative 0 at s* = log p + c"
    )


@PRODUCTION.register("infonce.ranking_nce_minimiser")
def _prod_ranking_min(cfg: CheckConfig) -> LegResult:
    tally = Tally("production", rtol=1e-12, atol=1e-14, dtype="float64")
    for where, rng, idx, w, logq, star in _ranking_cases(
        cfg, "infonce.ranking_nce_minimiser.production"
    ):
        j0 = float(_population(t64(star), idx, w, logq))
        for u in range(3):
            d = rng.standard_normal(len(star)) * float(10 ** rng.uniform(-1.5, 0.5))
            d -= d.mean()
            j1 = float(_population(t64(star + d), idx, w, logq))
            tally.holds(j1 - j0 + 1e-12 * abs(j0), where + f": J(s* + d_{u}) >= J(s*)")
    return tally.result(
        "production ranking_nce (log q) summed exactly over all label tuples: J(s* + d) >= "
        "J(s*) at random perturbations (float64 rounding allowance 1e-12 |J|)"
    )


@PRODUCTION.register("infonce.logit_gradient")
def _prod_logit_grad(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.logit_gradient.production")
    tally = Tally("production", rtol=RTOL64, atol=TINY, dtype="float64")
    for case in range(cfg.points(40, 10)):
        n, c = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        t = temperature(rng)
        s = rng.standard_normal((n, c)) * float(10 ** rng.uniform(-2, 1))
        lq = np.log(rng.dirichlet(np.ones(c))) if case % 2 else np.zeros(c)

        def fn(x: torch.Tensor, t: float = t, lq: np.ndarray = lq) -> torch.Tensor:
            return L.ranking_nce(x / t, log_q=t64(lq))

        _, g = value_and_grad(fn, t64(s))
        closed = _softmax_minus_onehot(s / t - lq, np.zeros(n, dtype=int)) / (n * t)
        tally.close_normwise(g.ravel(), closed.ravel(), f"case {case} (t={t:.3g})")
    return tally.result(
        "autograd of ranking_nce(s/t, log q) vs (softmax(s/t - log q) - onehot)/(N t)"
    )


def _np_query_grad(
    q: np.ndarray, cands: np.ndarray, lq: np.ndarray, pos: np.ndarray, t: float, kind: str
) -> np.ndarray:
    """Closed form: (1/(B t)) sum_c (P_ic - [c = pos_i]) khat_c, then the cosine projection."""
    b = q.shape[0]
    if kind == "cosine":
        nq = np.linalg.norm(q, axis=1, keepdims=True)
        qh = q / nq
        ch = cands / np.linalg.norm(cands, axis=-1, keepdims=True)
    else:
        qh, ch = q, cands
    z = np.einsum("bd,bcd->bc", qh, ch) / t - lq
    g = _softmax_minus_onehot(z, pos)
    gh = np.einsum("bc,bcd->bd", g, ch) / (b * t)
    if kind == "cosine":
        gh = (gh - (gh * qh).sum(1, keepdims=True) * qh) / nq
    return gh


def _query_grad_leg(cfg: CheckConfig, key: str, kind: str) -> LegResult:
    """In-batch keys (the claims' setting): autograd of the production info_nce w.r.t. the
    query vs the closed form assembled in NumPy; dot similarity with key log q, cosine
    without."""
    rng = _rng(cfg, key)
    tally = Tally("production", rtol=1e-11, atol=TINY, dtype="float64")
    for case in range(cfg.points(20, 6)):
        b, d = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        t = float(10 ** rng.uniform(-1, 1))
        q, k = rng.standard_normal((b, d)), rng.standard_normal((b, d))
        klq = np.log(rng.dirichlet(np.ones(b))) if kind == "dot" else np.zeros(b)
        kw: dict[str, Any] = {"temperature": t, "similarity": kind}
        if kind == "dot":
            kw["key_log_q"] = t64(klq)
        _, g = value_and_grad(L.info_nce, t64(q), t64(k), **kw)
        cands = np.broadcast_to(k, (b, b, d))
        lq = np.broadcast_to(klq, (b, b))
        closed = _np_query_grad(q, np.asarray(cands), np.asarray(lq), np.arange(b), t, kind)
        tally.close_normwise(g.ravel(), closed.ravel(), f"case {case} ({kind}, t={t:.3g})")
    return tally.result(f"autograd query gradient vs the closed form in NumPy ({kind}, in-batch)")


@PRODUCTION.register("infonce.query_gradient")
def _prod_query_grad(cfg: CheckConfig) -> LegResult:
    return _query_grad_leg(cfg, "infonce.query_gradient.production", "dot")


@PRODUCTION.register("infonce.query_gradient_cosine")
def _prod_query_grad_cos(cfg: CheckConfig) -> LegResult:
    return _query_grad_leg(cfg, "infonce.query_gradient_cosine.production", "cosine")


def _tau_leg(cfg: CheckConfig, key: str, loss: Any, closed: Any) -> LegResult:
    """Closed-form dL/dt (mpmath, from the oracle's similarities) vs ``t.grad`` of the production
    loss called with a float64 tensor temperature that requires grad."""
    rng = _rng(cfg, key)
    tally = Tally("production", rtol=1e-11, atol=TINY, dtype="float64")
    with workdps(cfg.dps):
        for case in range(cfg.points(20, 6)):
            b, d = int(rng.integers(1, 6)), int(rng.integers(1, 6))
            t = float(10 ** rng.uniform(-1, 1))
            a_, b_ = rng.standard_normal((b, d)), rng.standard_normal((b, d))
            tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
            loss(t64(a_), t64(b_), temperature=tt).backward()
            if tt.grad is None:
                tally.fail(f"case {case}: the loss left t.grad empty")
                continue
            want = closed(a_, b_, t)
            # dL/dt can cancel to ~0: compare relative to the scale (1/t^2) |S| <= 1/t^2
            part = Tally("production", rtol=1e-11, atol=1e-13 / t**2)
            part.close(float(tt.grad), want, f"case {case} (B={b}, t={t:.3g})")
            _merge(tally, part)
    return tally.result("t.grad of the production loss (tensor t) vs the closed-form dL/dt")


@PRODUCTION.register("infonce.info_nce_temperature_gradient")
def _prod_info_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(
        cfg,
        "infonce.info_nce_temperature_gradient.production",
        L.info_nce,
        oracle.info_nce_tau_grad,
    )


@PRODUCTION.register("infonce.symmetric_temperature_gradient")
def _prod_sym_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(
        cfg,
        "infonce.symmetric_temperature_gradient.production",
        L.symmetric_info_nce,
        oracle.symmetric_tau_grad,
    )


@PRODUCTION.register("infonce.uniform_log_q_noop")
def _prod_uniform_logq(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.uniform_log_q_noop")
    tally = Tally("production", rtol=RTOL64, atol=TINY, dtype="float64")
    for case in range(cfg.points(30, 8)):
        n, c = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        s = rng.standard_normal((n, c)) * float(10 ** rng.uniform(-2, 3))
        const = -math.log(float(rng.integers(1, 10**6)))
        base = L.ranking_nce(t64(s), reduction="none").tolist()
        with_q = L.ranking_nce(t64(s), log_q=t64(np.full(c, const)), reduction="none").tolist()
        tally.close_all(with_q, base, f"ranking case {case} (log q = {const:.3g})")
        b, d, m = int(rng.integers(1, 6)), int(rng.integers(1, 5)), int(rng.integers(1, 4))
        q, k, neg = (t64(rng.standard_normal(sh)) for sh in ((b, d), (b, d), (m, d)))
        t = temperature(rng)
        for negs in (None, neg):
            kw: dict[str, Any] = {"temperature": t, "reduction": "none"}
            plain = L.info_nce(q, k, negs, **kw).tolist()
            kw["key_log_q"] = t64(np.full(b, const))
            if negs is not None:
                kw["negative_log_q"] = t64(np.full(m, const))
            tally.close_all(L.info_nce(q, k, negs, **kw).tolist(), plain, f"info_nce case {case}")
    return tally.result(
        "ranking_nce and info_nce with a constant log q equal the uncorrected "
        "losses (1e-12 relative)"
    )


@PRODUCTION.register("infonce.identical_keys_log_b")
def _prod_identical(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.identical_keys_log_b")
    tally = Tally("production", rtol=RTOL64, atol=0.0, dtype="float64")
    for case in range(cfg.points(30, 8)):
        b, d, m = int(rng.integers(1, 9)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
        t = temperature(rng)
        kind = ("cosine", "dot")[case % 2]
        q = t64(rng.standard_normal((b, d)) * 3)
        key = rng.standard_normal(d)
        keys = t64(np.tile(key, (b, 1)))
        kw: dict[str, Any] = {"temperature": t, "similarity": kind}
        tally.close(float(L.info_nce(q, keys, **kw)), math.log(b), f"case {case} in-batch B={b}")
        negs = t64(np.tile(key, (m, 1)))
        tally.close(
            float(L.info_nce(q, keys, negs, **kw)), math.log(m + 1), f"case {case} unpaired M={m}"
        )
        pneg = t64(np.tile(key, (b, m, 1)))
        got = float(L.info_nce(q, keys, pneg, negative_mode="paired", **kw))
        tally.close(got, math.log(m + 1), f"case {case} paired M={m}")
        if kind == "cosine":  # symmetric: identical a rows and identical b rows
            a_same = t64(np.tile(rng.standard_normal(d), (b, 1)))
            got = float(L.symmetric_info_nce(a_same, keys, temperature=t))
            tally.close(got, math.log(b), f"case {case} symmetric B={b}")
    return tally.result("identical candidate keys give log B (in-batch) and log(M+1) (negatives)")


@PRODUCTION.register("infonce.symmetric_mean_of_directions")
def _prod_symmetric(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.symmetric_mean_of_directions.production")
    tally = Tally("production", rtol=RTOL64, atol=TINY, dtype="float64")
    for case in range(cfg.points(30, 8)):
        b, d = int(rng.integers(1, 9)), int(rng.integers(1, 6))
        t = temperature(rng)
        kind = ("cosine", "dot")[case % 2]
        scale = 1.0 if kind == "cosine" else float(10 ** rng.uniform(-1, 1))
        a, bb = t64(rng.standard_normal((b, d)) * scale), t64(rng.standard_normal((b, d)) * scale)
        kw: dict[str, Any] = {"temperature": t, "similarity": kind, "reduction": "none"}
        sym = L.symmetric_info_nce(a, bb, **kw).tolist()
        both = ((L.info_nce(a, bb, **kw) + L.info_nce(bb, a, **kw)) / 2).tolist()
        tally.close_all(sym, both, f"case {case} ({kind}, t={t:.3g})")
    return tally.result(
        "symmetric_info_nce (column-wise b->a) vs the mean of info_nce(a, b) and "
        "info_nce(b, a), per pair"
    )


# ----------------------------------------------------------------------------- conformance


def _scores_case(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    n, c = int(rng.integers(1, 5)), int(rng.integers(1, 8))
    s = rng.standard_normal((n, c))
    s = s / max(1.0, float(np.abs(s).max())) * float(10 ** rng.uniform(-2, 4))
    form = int(rng.integers(0, 3))
    if form == 0:
        return s, None
    if form == 1:
        return s, np.log(rng.dirichlet(np.ones(c)))
    return s, np.log(rng.dirichlet(np.ones(c), size=n))


@CONFORMANCE.register("infonce.ranking_nce")
def _conf_ranking(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "conformance.infonce.ranking_nce")
    tally = Tally("production", rtol=RTOL64, atol=TINY, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(40, 10)):
            s, lq = _scores_case(rng)
            kw: dict[str, Any] = {} if lq is None else {"log_q": t64(lq)}
            v, g = value_and_grad(L.ranking_nce, t64(s), **kw)
            tally.close(
                v, oracle.ranking_nce(s, lq), f"case {case} value (max|s|={np.abs(s).max():.3g})"
            )
            want = [x for row in oracle.ranking_nce_grad(s, lq) for x in row]
            tally.close_normwise(g.ravel().tolist(), want, f"case {case} grad")
    return tally.result(
        "ranking_nce value and score gradient vs mpmath oracle (scores up to 1e4, "
        "log q of shape (K+1,) and (N, K+1))"
    )


def _sim_error_bound(q: np.ndarray, keys: np.ndarray, t: float, kind: str) -> float:
    """Forward-error bound of the computed logits sim/t (dot-product rounding, gamma_D)."""
    d = q.shape[-1]
    gamma = (d + 2) * EPS64
    if kind == "cosine":
        return 4 * gamma / t
    return gamma * float(np.abs(q).max() * np.abs(keys).max() * d) / t


def _grad_scale(q: np.ndarray, keys: np.ndarray, t: float, kind: str) -> float:
    """Size of |dL/dq| entries before cancellation: 1 / (t min||q||) (cosine) or max|k| / t
    (dot). The exact gradient can vanish by cancellation (D = 1 with cosine similarity,
    identical keys); rounding then leaves ~eps times this scale, so 16 eps times it is the
    absolute floor of the normwise gradient comparison."""
    if kind == "cosine":
        return 1.0 / (t * float(np.linalg.norm(q, axis=-1).min()))
    return float(np.abs(keys).max()) / t


def _embedding_case(rng: np.random.Generator, case: int) -> dict[str, Any]:
    mode = ("in-batch", "unpaired", "paired")[case % 3]
    kind = ("cosine", "dot")[(case // 3) % 2]
    b, d, m = int(rng.integers(1, 5)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    t = temperature(rng)
    scale = 1.0
    if kind == "dot":  # logits up to ~1e4: |q.k|/t <= 1e4
        scale = math.sqrt(float(10 ** rng.uniform(-2, 4)) * t / d)
    q = rng.standard_normal((b, d)) * scale
    k = rng.standard_normal((b, d)) * scale
    out: dict[str, Any] = {"mode": mode, "kind": kind, "t": t, "q": q, "k": k, "neg": None}
    okw: dict[str, Any] = {"temperature": t, "similarity_kind": kind}
    tkw: dict[str, Any] = {"temperature": t, "similarity": kind}
    if case % 4 == 1:
        klq = np.log(rng.dirichlet(np.ones(b)))
        okw["key_log_q"], tkw["key_log_q"] = klq.tolist(), t64(klq)
    if mode != "in-batch":
        neg = rng.standard_normal((m, d) if mode == "unpaired" else (b, m, d)) * scale
        out["neg"] = neg
        okw["negative_mode"] = tkw["negative_mode"] = "unpaired" if mode == "unpaired" else "paired"
        if case % 2:
            nlq = np.log(rng.dirichlet(np.ones(m), size=b if mode == "paired" else None))
            okw["negative_log_q"], tkw["negative_log_q"] = nlq.tolist(), t64(nlq)
    out["okw"], out["tkw"] = okw, tkw
    keys = np.concatenate(
        [k.reshape(-1, d)] + ([] if out["neg"] is None else [out["neg"].reshape(-1, d)])
    )
    out["bound"] = _sim_error_bound(q, keys, t, kind)
    out["gscale"] = _grad_scale(q, keys, t, kind)
    return out


@CONFORMANCE.register("infonce.info_nce")
def _conf_info_nce(cfg: CheckConfig) -> LegResult:
    """Tolerance: 1e-12 relative, plus the forward-error bound of the computed logits where it is
    larger (a dot product of magnitude 1e4 carries ~1e-12 absolute rounding before the loss)."""
    rng = _rng(cfg, "conformance.infonce.info_nce")
    tally = Tally("production", rtol=RTOL64, atol=TINY, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(36, 9)):
            c = _embedding_case(rng, case)
            args = [t64(c["q"]), t64(c["k"])] + ([] if c["neg"] is None else [t64(c["neg"])])
            v, g = value_and_grad(L.info_nce, *args, **c["tkw"])
            oargs = [c["q"], c["k"], c["neg"]]
            want = oracle.info_nce(*oargs, **c["okw"])
            want_g = [x for row in oracle.info_nce_grad_query(*oargs, **c["okw"]) for x in row]
            rtol = max(RTOL64, 2 * c["bound"])
            where = f"case {case} ({c['mode']}, {c['kind']}, t={c['t']:.3g})"
            part = Tally("production", rtol=rtol, atol=TINY)
            part.close(v, want, where + " value")
            _merge(tally, part)
            part = Tally("production", rtol=rtol, atol=max(TINY, 16 * EPS64 * c["gscale"]))
            part.close_normwise(g.ravel().tolist(), want_g, where + " query grad")
            _merge(tally, part)
    return tally.result(
        "info_nce value and query gradient vs mpmath oracle from raw embeddings "
        "(t in [1e-3, 1e3], dot logits up to 1e4; tolerance max(1e-12, logit "
        "forward-error bound))"
    )


@CONFORMANCE.register("infonce.symmetric_info_nce")
def _conf_symmetric(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "conformance.infonce.symmetric_info_nce")
    tally = Tally("production", rtol=RTOL64, atol=TINY, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(24, 6)):
            kind = ("cosine", "dot")[case % 2]
            b, d = int(rng.integers(1, 5)), int(rng.integers(1, 6))
            t = temperature(rng)
            scale = 1.0 if kind == "cosine" else math.sqrt(float(10 ** rng.uniform(-2, 4)) * t / d)
            a, bb = rng.standard_normal((b, d)) * scale, rng.standard_normal((b, d)) * scale
            v, g = value_and_grad(
                L.symmetric_info_nce, t64(a), t64(bb), temperature=t, similarity=kind
            )
            want = oracle.symmetric_info_nce(a, bb, temperature=t, similarity_kind=kind)
            want_g = [
                x
                for row in oracle.symmetric_info_nce_grad_a(
                    a, bb, temperature=t, similarity_kind=kind
                )
                for x in row
            ]
            rtol = max(RTOL64, 2 * _sim_error_bound(a, bb, t, kind))
            where = f"case {case} ({kind}, t={t:.3g})"
            part = Tally("production", rtol=rtol, atol=TINY)
            part.close(v, want, where + " value")
            _merge(tally, part)
            gatol = max(TINY, 16 * EPS64 * _grad_scale(a, bb, t, kind))
            part = Tally("production", rtol=rtol, atol=gatol)
            part.close_normwise(g.ravel().tolist(), want_g, where + " grad a")
            _merge(tally, part)
    return tally.result("symmetric_info_nce value and gradient in a vs mpmath oracle")
