"""Production legs (torch, float64) for the soft-target InfoNCE claims, and conformance checks.

Tolerances: the project standard is 1e-12 relative. Where the inputs make the loss
ill-conditioned (scores of 1e7 from logits 1e4 at t = 1e-3 next to a loss of 1e-9, say), no
float64 algorithm that rounds ``f / t`` can reach that, so each comparison also allows the a-priori
float64 rounding bound of the score matmul, :func:`rounding_floor`, computed from the oracle (it
scales with ``1 - w_pos``, i.e. it vanishes when the positive dominates). Conformance reports how
many points that floor governed and the worst relative error among the others.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from mpmath import mp

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
from softnce_theory.losses import soft_target_infonce as sti
from softnce_theory.numerics import soft_target_infonce as oracle
from softnce_theory.numerics._mp import mat, mpf, vec, workdps

PRODUCTION = LegRegistry("production")
CONFORMANCE = LegRegistry("production")

FID = "soft_target_infonce"
U64 = 2.0**-53
U32 = 2.0**-24
#: the smallest normal float64 is 2.2e-308; below ~1e-300 a loss may underflow to 0
UNDERFLOW = 1e-300


# ----------------------------------------------------------------------------- tolerances


def rounding_floor(
    logits: Any,
    candidates: Any,
    noise_probs: Any,
    t: float,
    offset: int = 0,
    unit: float = U64,
    safety: float = 4.0,
) -> tuple[float, float]:
    """A-priori rounding bounds ``(value_atol, grad_atol)`` for the production loss.

    Row ``i``'s scores carry an absolute error of about ``eS_i = (C + 3) u h_i + u max_j |d_ij|``
    (``h_i = max_c |f_ic|/t + |log q_c|``, ``d`` the score gaps); the loss row then errs by at most
    ``(1 - w_i,pos) (2 eS_i + (M + 2) u)`` and the gradient row by
    ``(1 - w_i,pos) (4 eS_i + 2 (M + 4) u) / (N t)``. Both are computed from the mpmath oracle
    (``noise_probs=None`` is the uniform prior, as in production) and multiplied by ``safety``;
    ``UNDERFLOW`` is added for results below the float64 range.
    """
    f = np.asarray(logits, dtype=np.float64)
    n, c = f.shape
    cands = np.asarray(candidates, dtype=np.float64)
    m = cands.shape[0]
    if noise_probs is None:
        q = np.full(c, 1.0 / c)
    else:
        q = np.asarray(noise_probs, dtype=np.float64)
    logq = np.where(q > 0, np.log(np.where(q > 0, q, 1.0)), 0.0)
    with workdps(30):
        d = oracle.gap_rows(f, None, q, t, candidates=cands, offset=offset)
        rows = oracle.loss_rows(f, None, q, t, candidates=cands, offset=offset)
        v_tot, g_max = mp.zero, mp.zero
        for i in range(n):
            h = float(np.max(np.abs(f[i]) / t + np.abs(logq)))
            dmax = float(max(abs(x) for x in d[i]))
            e_s = (c + 3) * unit * h + unit * dmax
            one_minus_w = -mp.expm1(-rows[i])
            v_tot += one_minus_w * (2 * e_s + (m + 2) * unit)
            g_max = max(g_max, one_minus_w * (4 * e_s + 2 * (m + 4) * unit) / (n * t))
        return float(safety * v_tot / n) + UNDERFLOW, float(safety * g_max) + UNDERFLOW


def _close_with_floor(
    tally: Tally, got: Any, want: Any, floor: float, where: str, stats: dict[str, Any]
) -> bool:
    """``|got - want| <= 1e-12 |want| + floor``; tracks floor-governed points in ``stats``.

    A reference below the float64 range is compared as its float64 rounding (what a float64
    result can represent at all)."""
    if abs(want) < UNDERFLOW:
        want = mpf(float(want))
    tally.atol = floor
    ok = tally.close(got, want, where)
    tally.atol = 0.0
    _track(stats, abs(float(got) - float(want)), abs(float(want)), floor, "value")
    return ok


def _close_normwise_with_floor(
    tally: Tally, got: Any, want: list[Any], floor: float, where: str, stats: dict[str, Any]
) -> bool:
    want = [mpf(float(w)) if abs(w) < UNDERFLOW else w for w in want]
    tally.atol = floor
    ok = tally.close_normwise(got, want, where)
    tally.atol = 0.0
    err = max(abs(float(g) - float(w)) for g, w in zip(got, want, strict=True))
    _track(stats, err, max(abs(float(w)) for w in want), floor, "grad")
    return ok


def _track(stats: dict[str, Any], err: float, scale: float, floor: float, kind: str) -> None:
    rel = err / scale if scale > 0 else err
    key = f"max_rel_{kind}"
    stats[key] = max(stats.get(key, 0.0), rel)
    if floor > RTOL64 * scale:
        stats["floor_governed"] = stats.get("floor_governed", 0) + 1
    else:
        stats["max_rel_well_conditioned"] = max(stats.get("max_rel_well_conditioned", 0.0), rel)


def _flat(rows: list[list[Any]]) -> list[Any]:
    return [x for row in rows for x in row]


# ----------------------------------------------------------------------------- random cases


def _targets(rng: np.random.Generator, m: int, c: int) -> np.ndarray:
    """Rows of one kind: one-hot, uniform, near-degenerate, Dirichlet, smoothed or mixup."""
    if rng.random() < 1 / 6:
        y = rng.integers(0, c, size=m)
        lam = rng.beta(0.8, 0.8, size=(m, 1))
        a = lam * np.eye(c)[y] + (1 - lam) * np.eye(c)[y[::-1]]
        return a / a.sum(1, keepdims=True)
    return simplex_rows(rng, m, c)


def _noise(rng: np.random.Generator, c: int, cands: np.ndarray) -> np.ndarray | None:
    u = rng.random()
    if u < 0.25:
        return None
    q = rng.dirichlet(np.ones(c))
    if u < 0.45:  # zero probability on classes no candidate uses (masked policy)
        unused = np.flatnonzero(cands.max(0) == 0)
        if unused.size:
            q[rng.choice(unused, size=int(rng.integers(1, unused.size + 1)), replace=False)] = 0
            q /= q.sum()
    return q


def _case(rng: np.random.Generator, explicit: bool | None = None) -> dict[str, Any]:
    n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
    explicit = bool(rng.random() < 0.5) if explicit is None else explicit
    m = n + (int(rng.integers(1, 5)) if explicit else 0)
    off = int(rng.integers(0, m - n + 1)) if explicit else 0
    cands = _targets(rng, m, c)
    return {
        "logits": rng.standard_normal((n, c)) * logit_scale(rng),
        "cands": cands,
        "targets": cands[off : off + n],
        "explicit": explicit,
        "off": off,
        "q": _noise(rng, c, cands),
        "t": temperature(rng),
    }


def _prod(case: dict[str, Any], logits: Any = None, **kw: Any) -> torch.Tensor:
    if logits is None:
        logits = case["logits"]
    x = logits if isinstance(logits, torch.Tensor) else t64(logits)
    q = None if case["q"] is None else t64(case["q"])
    extra: dict[str, Any] = {}
    if case["explicit"]:
        extra = {"candidates": t64(case["cands"]), "offset": case["off"]}
    return sti.soft_target_info_nce(
        x, t64(case["targets"]), q, temperature=case["t"], **extra, **kw
    )


def _oracle_q(case: dict[str, Any]) -> Any:
    c = case["logits"].shape[1]
    return [mpf(1) / c] * c if case["q"] is None else case["q"]


# ----------------------------------------------------------------------------- production legs


@PRODUCTION.register(f"{FID}.one_hot_ranking_nce")
def _one_hot(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.one_hot_ranking_nce"))
    tally = Tally("production", rtol=RTOL64, dtype="float64", dps=cfg.dps)
    stats: dict[str, Any] = {}
    with workdps(cfg.dps):
        for k in range(cfg.points(24, 6)):
            n, c = int(rng.integers(1, 6)), int(rng.integers(2, 9))
            m = n + int(rng.integers(0, 4))
            off = int(rng.integers(0, m - n + 1))
            labels = rng.integers(0, c, size=m)
            logits = rng.standard_normal((n, c)) * logit_scale(rng)
            q = rng.dirichlet(np.ones(c))
            t = temperature(rng)
            x, lab = t64(logits), torch.as_tensor(labels)
            got = sti.info_nce_hard_labels(
                x, lab[off : off + n], t64(q), temperature=t, candidate_labels=lab, offset=off
            )
            onehot = np.eye(c)[labels]
            via_soft = sti.soft_target_info_nce(
                x,
                t64(onehot[off : off + n]),
                t64(q),
                temperature=t,
                candidates=t64(onehot),
                offset=off,
            )
            if not torch.equal(got, via_soft):
                tally.fail(f"case {k}: hard-label API != soft API on one-hot targets")
            want = oracle.ranking_nce(
                logits, labels[off : off + n].tolist(), q, t, labels.tolist(), off
            )
            floor, _ = rounding_floor(logits, onehot, q, t, off)
            _close_with_floor(tally, float(got), want, floor, f"case {k} (t={t:.3g})", stats)
    return tally.result(
        "info_nce_hard_labels (float64) vs an mpmath ranking-NCE loop; bitwise equal to the soft "
        "API on one-hot targets",
        **stats,
    )


@PRODUCTION.register(f"{FID}.gradient")
def _gradient(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.gradient"))
    tally = Tally("production", rtol=RTOL64, dtype="float64", dps=cfg.dps)
    stats: dict[str, Any] = {}
    gc_ok = gc_n = 0
    with workdps(cfg.dps):
        for k in range(cfg.points(30, 8)):
            case = _case(rng)
            _, g = value_and_grad(lambda v, case=case: _prod(case, logits=v), t64(case["logits"]))
            want = oracle.grad(
                case["logits"], None, _oracle_q(case), case["t"], case["cands"], case["off"]
            )
            _, gfloor = rounding_floor(
                case["logits"], case["cands"], case["q"], case["t"], case["off"]
            )
            _close_normwise_with_floor(
                tally,
                g.ravel().tolist(),
                _flat(want),
                gfloor,
                f"case {k} (t={case['t']:.3g})",
                stats,
            )
            if k < cfg.points(4, 2):
                gc_n += 1
                scale = max(1.0, float(np.abs(case["logits"]).max()) / case["t"])
                # moderate scores, so that finite differences are meaningful
                x0 = t64(case["logits"]) / scale * case["t"]

                def fn(v: torch.Tensor, case: dict[str, Any] = case) -> torch.Tensor:
                    return _prod(case, logits=v)

                gc_ok += gradcheck(fn, x0)
    if gc_ok < gc_n:
        tally.fail(f"torch.autograd.gradcheck failed on {gc_n - gc_ok} of {gc_n} cases")
    return tally.result(
        "autograd vs the closed form (1/(N t)) sum_j w_ij (alpha_j - alpha_pos) from the mpmath "
        "oracle; torch.autograd.gradcheck",
        gradcheck_cases=gc_n,
        **stats,
    )


@PRODUCTION.register(f"{FID}.gradient_zero_sum")
def _gradient_zero_sum(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.gradient_zero_sum"))
    tally = Tally("production", rtol=0, dtype="float64")
    for k in range(cfg.points(30, 8)):
        case = _case(rng)
        _, g = value_and_grad(lambda v, case=case: _prod(case, logits=v), t64(case["logits"]))
        _, gfloor = rounding_floor(case["logits"], case["cands"], case["q"], case["t"], case["off"])
        # simplex targets (rows sum to 1 within float rounding): every row of the gradient sums
        # to 0 up to the rounding of C entries
        row_sums = np.abs(g.sum(1)).max()
        slack = case["logits"].shape[1] * (gfloor + 4 * U64 * float(np.abs(g).max()))
        tally.holds(slack - row_sums, f"case {k}: |sum_c grad| = {row_sums:.3e}")
    return tally.result("autograd gradient rows sum to 0 over the classes (float64, simplex rows)")


@PRODUCTION.register(f"{FID}.temperature_gradient")
def _temperature_gradient(cfg: CheckConfig) -> LegResult:
    """Autograd with a float64 tensor temperature vs the closed form (batch mean of the row
    form), computed in mpmath from the oracle's weights."""
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.temperature_gradient"))
    tally = Tally("production", rtol=1e-10, atol=1e-13, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(20, 5)):
            case = _case(rng)
            case["logits"] = case["logits"] / max(1.0, float(np.abs(case["logits"]).max()) / 20)
            case["t"] = float(10 ** rng.uniform(-0.5, 0.5))
            tau = torch.tensor(case["t"], dtype=torch.float64, requires_grad=True)
            out = _prod(dict(case, t=tau))
            (got,) = torch.autograd.grad(out, tau)
            oq = _oracle_q(case)
            w = oracle.weights(case["logits"], None, oq, case["t"], case["cands"], case["off"])
            tt, n = mpf(case["t"]), case["logits"].shape[0]
            total = mp.zero
            for i, (wi, fi) in enumerate(zip(w, mat(case["logits"]), strict=True)):
                af = [
                    mp.fsum(a * x for a, x in zip(aj, fi, strict=True)) for aj in mat(case["cands"])
                ]
                total += af[case["off"] + i] - mp.fsum(x * y for x, y in zip(wi, af, strict=True))
            tally.close(float(got), total / (n * tt**2), f"case {k} (t={case['t']:.3g})")
    return tally.result(
        "torch autograd d L / d tau (tensor temperature, float64) vs the closed form "
        "mean_i (<alpha_pos(i), f_i> - sum_j w_ij <alpha_j, f_i>) / t^2 from the mpmath oracle"
    )


@PRODUCTION.register(f"{FID}.shift_invariance_equal_mass")
def _shift(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.shift_invariance_equal_mass"))
    tally = Tally("production", rtol=RTOL64, dtype="float64")
    stats: dict[str, Any] = {}
    for k in range(cfg.points(24, 6)):
        case = _case(rng)
        n = case["logits"].shape[0]
        shift = rng.standard_normal((n, 1)) * float(10 ** rng.uniform(-1, 3))
        shifted = case["logits"] + shift
        f1, _ = rounding_floor(case["logits"], case["cands"], case["q"], case["t"], case["off"])
        f2, _ = rounding_floor(shifted, case["cands"], case["q"], case["t"], case["off"])
        _close_with_floor(
            tally,
            float(_prod(case, logits=shifted)),
            float(_prod(case)),
            f1 + f2,
            f"case {k}: simplex targets, shift up to {np.abs(shift).max():.3g}",
            stats,
        )
    return tally.result(
        "simplex targets (equal masses): production loss unchanged under per-row shifts up to 1e3",
        **stats,
    )


@PRODUCTION.register(f"{FID}.shift_curvature_mass_variance")
def _shift_curvature(cfg: CheckConfig) -> LegResult:
    """Second derivative along f + kappa 1 by double backward through the production loss (one
    row, unequal masses, validation off) vs the weighted mass variance from the oracle."""
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.shift_curvature_mass_variance"))
    tally = Tally("production", rtol=1e-9, atol=1e-12, dtype="float64", dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(16, 4)):
            c, m = int(rng.integers(2, 7)), int(rng.integers(2, 6))
            cands = simplex_rows(rng, m, c) * rng.uniform(0.2, 3.0, (m, 1))
            off = int(rng.integers(m))
            f = rng.standard_normal((1, c)) * 3
            q = rng.dirichlet(np.ones(c))
            t = float(10 ** rng.uniform(-0.5, 0.5))
            kap = torch.zeros((), dtype=torch.float64, requires_grad=True)
            out = sti.soft_target_info_nce(
                t64(f) + kap,
                t64(cands[off : off + 1]),
                t64(q),
                temperature=t,
                candidates=t64(cands),
                offset=off,
                validate=False,
            )
            (d1,) = torch.autograd.grad(out, kap, create_graph=True)
            (d2,) = torch.autograd.grad(d1, kap)
            w = oracle.weights(f, None, q, t, mat(cands.tolist()), off)[0]
            mass = [mp.fsum(vec(a.tolist())) for a in cands]
            m1 = mp.fsum(wj * mj for wj, mj in zip(w, mass, strict=True))
            m2 = mp.fsum(wj * mj**2 for wj, mj in zip(w, mass, strict=True))
            tally.close(float(d2), (m2 - m1**2) / mpf(t) ** 2, f"case {k}: M={m}, t={t:.3g}")
    return tally.result(
        "torch double backward d^2 ell / d kappa^2 along f + kappa 1 (float64) vs sum_j w_j "
        "(mu_j - mubar)^2 / t^2 from the mpmath oracle, unequal candidate masses"
    )


@PRODUCTION.register(f"{FID}.uniform_noise_noop")
def _uniform(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.uniform_noise_noop"))
    tally = Tally("production", rtol=RTOL64, dtype="float64", dps=cfg.dps)
    stats: dict[str, Any] = {}
    with workdps(cfg.dps):
        for k in range(cfg.points(20, 5)):
            case = _case(rng)
            c = case["logits"].shape[1]
            no_corr = oracle.loss(case["logits"], None, None, case["t"], case["cands"], case["off"])
            floor, _ = rounding_floor(case["logits"], case["cands"], None, case["t"], case["off"])
            for q in (np.full(c, 1.0 / c), None):
                got = float(_prod(dict(case, q=q)))
                _close_with_floor(
                    tally,
                    got,
                    no_corr,
                    floor,
                    f"case {k} q={'1/C' if q is not None else 'None'}",
                    stats,
                )
    return tally.result(
        "production with q = 1/C (explicit, and the default) vs the oracle with no log q term",
        **stats,
    )


@PRODUCTION.register(f"{FID}.degenerate_batches")
def _degenerate(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.degenerate_batches"))
    tally = Tally("production", rtol=RTOL64, dtype="float64")
    stats: dict[str, Any] = {}
    for k in range(cfg.points(20, 5)):
        case = _case(rng, explicit=True)
        m = case["cands"].shape[0]
        case["cands"] = np.repeat(case["cands"][:1], m, axis=0)
        case["targets"] = case["cands"][: case["logits"].shape[0]]
        case["q"] = None if case["q"] is None else np.full_like(case["q"], 1.0 / len(case["q"]))
        floor, _ = rounding_floor(case["logits"], case["cands"], case["q"], case["t"], case["off"])
        _close_with_floor(tally, float(_prod(case)), math.log(m), floor, f"case {k}: M={m}", stats)
    return tally.result("identical candidates: log M (float64)", **stats)


@PRODUCTION.register(f"{FID}.single_candidate_zero")
def _single(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.single_candidate_zero"))
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for k in range(cfg.points(20, 5)):
        case = _case(rng, explicit=True)
        q = None if case["q"] is None else t64(case["q"])
        one = sti.soft_target_info_nce(
            t64(case["logits"][:1]), t64(case["cands"][:1]), q, temperature=case["t"]
        )
        tally.close(float(one), 0.0, f"case {k}: M = 1")
    return tally.result("a single candidate: the production loss is exactly 0 (float64)")


def _stratified(counts: list[int], support: np.ndarray, a0: np.ndarray) -> np.ndarray:
    """Candidates: the positive, then ``counts[r]`` copies of support point ``r``."""
    return np.concatenate(
        [a0[None, :], *[np.repeat(support[r : r + 1], k, 0) for r, k in enumerate(counts)]]
    )


def _large_k_case(
    f: np.ndarray, a0: np.ndarray, support: np.ndarray, probs: list[int], q: np.ndarray, k: int
) -> tuple[float, Any, Any]:
    """Production ``L_K - log K`` on a stratified candidate set (exactly ``k p_r`` copies of each
    support point) and, from mpmath, ``-S0 + log(mu + e^{S0}/K)`` (its exact value) and
    ``e^{S0}/(K mu)``."""
    total = sum(probs)
    counts = [k * p // total for p in probs]
    cands = _stratified(counts, support, a0)
    got = float(
        sti.soft_target_info_nce(t64(f[None, :]), t64(a0[None, :]), t64(q), candidates=t64(cands))
    ) - math.log(k)
    with workdps(50):
        (g,), _ = oracle.corrected_logits([f], q, 1)
        s0 = mp.fsum(x * y for x, y in zip(vec(a0), g, strict=True))
        w = [mp.exp(mp.fsum(x * y for x, y in zip(a, g, strict=True))) for a in mat(support)]
        mu = mp.fsum(mpf(p) / total * wi for p, wi in zip(probs, w, strict=True))
        exact = -s0 + mp.log(mu + mp.exp(s0) / k)
        return got, exact, mp.exp(s0) / (k * mu)


@PRODUCTION.register(f"{FID}.large_k_hard_limit")
def _large_k_hard(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.large_k_hard_limit"))
    tally = Tally("production", rtol=1e-10, dtype="float64")
    extra: dict[str, Any] = {}
    ks = (100, 1000, 5000) if not cfg.quick else (100, 1000)
    for case in range(cfg.points(3, 1)):
        c = int(rng.integers(2, 6))
        probs = [int(x) for x in rng.integers(1, 10, size=c)]
        q = np.asarray(probs, dtype=np.float64) / sum(probs)
        f = rng.standard_normal(c) * 3
        y0 = int(rng.integers(c))
        support, a0 = np.eye(c), np.eye(c)[y0]
        ce_limit = float(ce.nll_loss(t64(f[None, :]), torch.tensor([y0]))) + math.log(q[y0])
        with workdps(50):  # the statement: the oracle limit at one-hot support, P = q
            lim = oracle.large_k_limit(f, a0, support, [mpf(p) / sum(probs) for p in probs], q, 1)
        tally.close(ce_limit, lim, f"case {case}: production CE + log q_y0 vs the oracle limit")
        gaps = []
        for k in ks:
            kk = max(1, k // sum(probs)) * sum(probs)  # K q_y copies of e_y, exactly
            got, exact, first = _large_k_case(f, a0, support, probs, q, kk)
            tally.close(got, exact, f"case {case} K={kk}: exact stratified value")
            gap = got - ce_limit
            gaps.append(gap)
            tally.holds(
                float(first) * (1 + 1e-6) + 1e-12 - abs(gap),
                f"case {case} K={kk}: |gap| = {gap:.3e}",
            )
        extra[f"case{case}_gap_vs_ce"] = gaps
    return tally.result(
        "production nll_loss + log q_y0 vs the oracle large-K limit at one-hot support with P = q; "
        "production L_K - log K on stratified candidates (K q_y copies of e_y) vs the exact "
        "-S0 + log(mu + e^{S0}/K), within e^{S0}/(K mu) of that CE",
        **extra,
    )


@PRODUCTION.register(f"{FID}.large_k_soft_below_soft_ce")
def _large_k_soft(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.large_k_soft_below_soft_ce"))
    tally = Tally("production", rtol=1e-10, dtype="float64")
    gaps: dict[str, list[float]] = {"soft": [], "one_hot": []}
    k = 4000 if not cfg.quick else 1000
    for case in range(cfg.points(6, 2)):
        c = int(rng.integers(3, 7))
        hard = case % 3 == 0
        if hard:
            support = np.eye(c)
        else:  # mixup-like pairs with label smoothing
            r = int(rng.integers(3, 6))
            y1, y2 = rng.integers(0, c, size=r), rng.integers(0, c, size=r)
            lam = rng.beta(0.8, 0.8, size=(r, 1))
            support = 0.9 * (lam * np.eye(c)[y1] + (1 - lam) * np.eye(c)[y2]) + 0.1 / c
        probs = [int(x) for x in rng.integers(1, 5, size=support.shape[0])]
        q = (np.asarray(probs, dtype=np.float64)[:, None] * support).sum(0) / sum(probs)
        f = rng.standard_normal(c) * 2
        a0 = support[int(rng.integers(support.shape[0]))]
        kk = max(1, k // sum(probs)) * sum(probs)  # K p_r copies of support point r, exactly
        got, exact, first = _large_k_case(f, a0, support, probs, q, kk)
        tally.close(got, exact, f"case {case}: exact stratified value")
        bound = float(ce.soft_target_cross_entropy(t64(f[None, :]), t64(a0[None, :]))) + float(
            np.dot(a0, np.log(q))
        )
        # the limit read off production: L_K - log K minus its exact excess log(1 + e^{S0}/(K mu))
        gap = bound - (got - float(mp.log1p(first)))
        tally.holds(gap + 1e-12 * (1 + abs(bound)), f"case {case}: bound - limit = {gap:.4g}")
        gaps["one_hot" if hard else "soft"].append(gap)
    return tally.result(
        "the large-K limit read off production L_K - log K on stratified candidates (minus its "
        "exact 1/K excess) is <= production soft CE + <alpha0, log q> (one-hot and soft)",
        K=k,
        **gaps,
    )


@PRODUCTION.register(f"{FID}.gathered_consistency")
def _gathered(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.gathered_consistency"))
    tally = Tally("production", rtol=RTOL64, dtype="float64", dps=cfg.dps)
    stats: dict[str, Any] = {}
    with workdps(cfg.dps):
        for k in range(cfg.points(12, 3)):
            w, n, c = int(rng.integers(2, 5)), int(rng.integers(1, 4)), int(rng.integers(2, 7))
            logits = rng.standard_normal((w * n, c)) * logit_scale(rng)
            targets = _targets(rng, w * n, c)
            q = rng.dirichlet(np.ones(c))
            t = temperature(rng)
            x, a, qq = t64(logits), t64(targets), t64(q)
            glob = sti.soft_target_info_nce(x, a, qq, temperature=t, reduction="none")
            local = torch.cat(
                [
                    sti.soft_target_info_nce(
                        x[r * n : (r + 1) * n],
                        a[r * n : (r + 1) * n],
                        qq,
                        temperature=t,
                        candidates=a,
                        offset=r * n,
                        reduction="none",
                    )
                    for r in range(w)
                ]
            )
            want = oracle.loss_rows(logits, targets, q, t)
            floor, _ = rounding_floor(logits, targets, q, t)
            for i in range(w * n):
                _close_with_floor(
                    tally, float(local[i]), want[i], floor * w * n, f"case {k} row {i}", stats
                )
                _close_with_floor(
                    tally,
                    float(local[i]),
                    float(glob[i]),
                    2 * floor * w * n,
                    f"case {k} row {i} vs global",
                    stats,
                )
            default = sti.soft_target_info_nce(x[:n], a[:n], qq, temperature=t)
            explicit = sti.soft_target_info_nce(
                x[:n], a[:n], qq, temperature=t, candidates=a[:n], offset=0
            )
            if not torch.equal(default, explicit):
                tally.fail(f"case {k}: candidates=targets, offset=0 differs from the default")
    return tally.result(
        "W simulated ranks with all-gathered candidates and offset = N*rank reproduce the "
        "global-batch rows (production and oracle); candidates=targets is the default",
        **stats,
    )


@PRODUCTION.register(f"{FID}.nonnegative")
def _nonneg(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.nonnegative"))
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    for k in range(cfg.points(60, 15)):
        case = _case(rng)
        rows = _prod(case, reduction="none")
        if not bool(torch.isfinite(rows).all()):
            tally.fail(f"case {k}: non-finite loss {rows.tolist()}")
        tally.holds(float(rows.min()), f"case {k}: min row loss {float(rows.min())!r}")
    return tally.result(
        "every production row loss >= 0 (float64, logits up to 1e4, t in [1e-3, 1e3])"
    )


@PRODUCTION.register(f"{FID}.positive_several_candidates")
def _positive(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.positive_several_candidates"))
    tally = Tally("production", rtol=0, atol=0, dtype="float64")
    skipped = 0
    with workdps(30):
        for k in range(cfg.points(60, 15)):
            case = _case(rng, explicit=True)  # M >= N + 1 >= 2
            rows = _prod(case, reduction="none")
            want = oracle.loss_rows(
                case["logits"], None, _oracle_q(case), case["t"], case["cands"], case["off"]
            )
            for i, (got, w) in enumerate(zip(rows.tolist(), want, strict=True)):
                if w < UNDERFLOW:  # below the float64 range: 0.0 is its correct rounding
                    skipped += 1
                    continue
                if got > 0:
                    tally.holds(got, f"case {k} row {i}")
                else:
                    tally.fail(f"case {k} row {i}: loss {got!r} is not > 0 (oracle {float(w):.3e})")
    return tally.result(
        "every production row loss > 0 with M >= 2 (float64), where the exact loss is "
        "representable (> 1e-300)",
        below_float64_range=skipped,
    )


@PRODUCTION.register(f"{FID}.large_k_limit_stratified")
def _large_k_stratified(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.large_k_limit_stratified"))
    tally = Tally("production", rtol=1e-10, atol=1e-12, dtype="float64")
    ks = (100, 1000, 5000) if not cfg.quick else (100, 1000)
    for case in range(cfg.points(3, 1)):
        c = int(rng.integers(2, 6))
        r = int(rng.integers(1, 4))
        support = simplex_rows(rng, r, c)
        probs = [int(x) for x in rng.integers(1, 5, size=r)]
        q = rng.dirichlet(np.ones(c))
        f = rng.standard_normal(c) * 2
        a0 = simplex_rows(rng, 1, c)[0]
        lim = oracle.large_k_limit(f, a0, support, [mpf(p) / sum(probs) for p in probs], q, 1)
        prev = math.inf
        for k in ks:
            kk = max(1, k // sum(probs)) * sum(probs)
            got, exact, first = _large_k_case(f, a0, support, probs, q, kk)
            tally.close(got, exact, f"case {case} K={kk}: exact stratified value")
            err = got - float(lim)
            tally.close(err, float(mp.log1p(first)), f"case {case} K={kk}: excess over the limit")
            tally.holds(prev - err, f"case {case} K={kk}: excess {err:.3e} decreases")
            prev = err
    return tally.result(
        "production L_K - log K on stratified candidates minus the oracle limit: equals "
        "log(1 + e^{S0}/(K mu)) and decreases with K (float64)"
    )


@PRODUCTION.register(f"{FID}.zero_noise_masking")
def _zero_noise(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(f"{FID}.zero_noise_masking"))
    tally = Tally("production", rtol=RTOL64, dtype="float64", dps=cfg.dps)
    stats: dict[str, Any] = {}
    with workdps(cfg.dps):
        for k in range(cfg.points(16, 4)):
            case = _case(rng)
            c = case["logits"].shape[1]
            z = int(rng.integers(c + 1))
            q0 = rng.dirichlet(np.ones(c))
            big = dict(
                case,
                logits=np.insert(
                    case["logits"], z, rng.standard_normal(case["logits"].shape[0]) * 10, 1
                ),
                cands=np.insert(case["cands"], z, 0.0, 1),
                targets=np.insert(case["targets"], z, 0.0, 1),
                q=np.insert(q0, z, 0.0),
            )
            masked = float(_prod(big))
            if not math.isfinite(masked):
                tally.fail(f"case {k}: masked loss is not finite")
            reduced = float(_prod(dict(case, q=q0)))
            floor, _ = rounding_floor(case["logits"], case["cands"], q0, case["t"], case["off"])
            _close_with_floor(
                tally, masked, reduced, 2 * floor, f"case {k}: masked vs class removed", stats
            )
            want = oracle.loss(big["logits"], None, big["q"], case["t"], big["cands"], case["off"])
            _close_with_floor(tally, masked, want, floor, f"case {k}: masked vs oracle", stats)
            for eps in (1e-3, 0.5):
                q_eps = (1 - eps) * big["q"]
                q_eps[z] = eps
                got = float(_prod(dict(big, q=q_eps)))
                _close_with_floor(
                    tally, got, masked, 3 * floor, f"case {k}: q_eps, eps={eps}", stats
                )
    return tally.result(
        "zero-probability class without candidate mass: masked production loss == production "
        "loss with the class removed == loss at (1-eps) q + eps e_c == oracle; finite",
        **stats,
    )


# ----------------------------------------------------------------------------- conformance


@CONFORMANCE.register(f"{FID}.soft_target_info_nce")
def _conf_soft(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("conformance.soft_target_info_nce"))
    tally = Tally("production", rtol=RTOL64, dtype="float64", dps=cfg.dps)
    stats: dict[str, Any] = {}
    with workdps(cfg.dps):
        for k in range(cfg.points(40, 10)):
            case = _case(rng)
            v, g = value_and_grad(lambda x, case=case: _prod(case, logits=x), t64(case["logits"]))
            args = (case["logits"], None, _oracle_q(case), case["t"], case["cands"], case["off"])
            vfloor, gfloor = rounding_floor(
                case["logits"], case["cands"], case["q"], case["t"], case["off"]
            )
            where = f"case {k} (t={case['t']:.3g}, scale={np.abs(case['logits']).max():.3g})"
            _close_with_floor(tally, v, oracle.loss(*args), vfloor, where + " value", stats)
            _close_normwise_with_floor(
                tally, g.ravel().tolist(), _flat(oracle.grad(*args)), gfloor, where + " grad", stats
            )
    return tally.result(
        "value and gradient vs the mpmath oracle (1e-12 relative + float64 rounding floor of the "
        "score matmul)",
        **stats,
    )


@CONFORMANCE.register(f"{FID}.info_nce_hard_labels")
def _conf_hard(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("conformance.info_nce_hard_labels"))
    tally = Tally("production", rtol=RTOL64, dtype="float64", dps=cfg.dps)
    stats: dict[str, Any] = {}
    with workdps(cfg.dps):
        for k in range(cfg.points(40, 10)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 9))
            m = n + int(rng.integers(0, 4))
            off = int(rng.integers(0, m - n + 1))
            labels = rng.integers(0, c, size=m)
            logits = rng.standard_normal((n, c)) * logit_scale(rng)
            t = temperature(rng)
            q = None if rng.random() < 0.25 else rng.dirichlet(np.ones(c))
            lab = torch.as_tensor(labels)

            def fn(
                x: torch.Tensor,
                lab: torch.Tensor = lab,
                q: Any = q,
                t: float = t,
                off: int = off,
                n: int = n,
            ) -> torch.Tensor:
                return sti.info_nce_hard_labels(
                    x,
                    lab[off : off + n],
                    None if q is None else t64(q),
                    temperature=t,
                    candidate_labels=lab,
                    offset=off,
                )

            v, g = value_and_grad(fn, t64(logits))
            onehot = np.eye(c)[labels]
            oq = [mpf(1) / c] * c if q is None else q
            vfloor, gfloor = rounding_floor(logits, onehot, q, t, off)
            where = f"case {k} (t={t:.3g})"
            _close_with_floor(
                tally, v, oracle.loss(logits, None, oq, t, onehot, off), vfloor, where, stats
            )
            _close_normwise_with_floor(
                tally,
                g.ravel().tolist(),
                _flat(oracle.grad(logits, None, oq, t, onehot, off)),
                gfloor,
                where + " grad",
                stats,
            )
    return tally.result("value and gradient vs the mpmath oracle on one-hot candidates", **stats)
