r"""mpmath oracles for collision cross-entropy and its (reconstructed) EM pseudo-label solver.

Written from the formulas of research note ``collision_ce.md`` (Zhang & Boykov, arXiv
2303.07321; the paper body was unavailable, the self-labeling objective and the EM step are
**reconstructed** there):

* :math:`H_2(y,\sigma) = -\ln P`, :math:`P = \sum_k y_k\sigma_k = \Pr(C=T)`. With
  :math:`Q = \sum_k \sigma_k(1-y_k) = \Pr(C\ne T) = 1 - P` (uses only :math:`\sum\sigma = 1`),
  the value is :math:`-\operatorname{log1p}(-Q)` when :math:`Q < 1/2` and :math:`-\ln P`
  otherwise, so :math:`H_2 \approx 10^{-40}` keeps 50 significant digits;
* gradients :math:`\partial H_2/\partial z_k = \sigma_k - \tilde y_k` evaluated as
  :math:`\sigma_k (P - y_k)/P` with :math:`P - y_k = \sum_j \sigma_j (y_j - y_k)` (pairwise
  form, :math:`O(K^2)`, no cancellation when :math:`\tilde y \approx \sigma`), and
  :math:`\partial H_2/\partial y_k = -\sigma_k/P`;
* Rényi cross-entropy :math:`H_\alpha(y,\sigma) = \frac{1}{1-\alpha}\ln\sum_k y_k
  \sigma_k^{\alpha-1}`, Shannon CE :math:`H(y,\sigma)`, reverse CE :math:`H(\sigma, y)`,
  collision entropy :math:`-\ln\sum_k y_k^2`;
* the pseudo-label objective :math:`F(y) = -\frac1N\sum_i\ln\sigma_i^\top y_i - \lambda\sum_k
  u_k\ln\bar y_k`, its gradient, the EM step (E: :math:`T, S`; M: closed form) and a projected
  gradient step, and the KKT residual.

Probabilities :math:`\sigma` are computed from logits as ``exp(-neg_log_softmax(z))`` in mpmath
(no underflow at a logit gap of 1e4; see :func:`neg_log_softmax`). Inputs are nested lists / arrays of floats (exact), outputs mpf
at the caller's precision (``workdps(50)`` or more). Shares no code with the torch losses.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from mpmath import mp

import softnce_theory.derivations.collision_ce as D
from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.numerics._definitions import definition_leg
from softnce_theory.numerics._mp import (
    DEFAULT_DPS,
    MpMatrix,
    MpVector,
    mat,
    mpf,
    vec,
    workdps,
    xlogy,
)

PRECISE = LegRegistry("precise")

# ----------------------------------------------------------------------------- H2 oracle


def neg_log_softmax(z: Sequence[Any]) -> MpVector:
    """:math:`-\\ln\\operatorname{softmax}(z)_k = (z_M - z_k) + \\operatorname{log1p}(\\sum_{j\\ne M}
    e^{z_j - z_M})`, :math:`M = \\arg\\max z`: two non-negative terms, so :math:`-\\ln\\sigma_k`
    keeps full relative precision even when it is ~1e-80 (``z - lse(z)`` would not)."""
    zv = vec(z)
    top = max(range(len(zv)), key=lambda a: zv[a])
    rest = mp.fsum(mp.exp(v - zv[top]) for a, v in enumerate(zv) if a != top)
    base = mp.log1p(rest)
    return [(zv[top] - v) + base for v in zv]


def probs_from_logits(z: Sequence[Any]) -> MpVector:
    """:math:`\\sigma = \\operatorname{softmax}(z)` as ``exp(-neg_log_softmax)`` (no underflow in
    mp)."""
    return [mp.exp(-v) for v in neg_log_softmax(z)]


def collision_probability(y: Sequence[Any], s: Sequence[Any]) -> Any:
    """:math:`P = \\sum_k y_k \\sigma_k`."""
    return mp.fsum(mpf(a) * mpf(b) for a, b in zip(y, s, strict=True))


def h2_probs(y: Sequence[Any], s: Sequence[Any]) -> Any:
    """:math:`H_2(y,\\sigma) = -\\ln\\sum_k y_k\\sigma_k` for probability vectors (``+inf`` for
    disjoint supports); near 0 through :math:`Q = \\sum_k\\sigma_k(1-y_k)` and ``log1p``."""
    yv, sv = vec(y), vec(s)
    p = collision_probability(yv, sv)
    if p == 0:
        return mp.inf
    q = mp.fsum(b * (1 - a) for a, b in zip(yv, sv, strict=True))
    if q < mp.mpf("0.5"):
        return -mp.log1p(-q)
    return -mp.log(p)


def h2_row(z: Sequence[Any], y: Sequence[Any]) -> Any:
    """:math:`H_2(y, \\operatorname{softmax}(z))` for one row of logits."""
    return h2_probs(y, probs_from_logits(z))


def collision_ce_rows(logits: Any, targets: Any) -> MpVector:
    return [h2_row(zi, yi) for zi, yi in zip(mat(logits), mat(targets), strict=True)]


def collision_ce(logits: Any, targets: Any) -> Any:
    """Mean over rows of :math:`H_2(y_i, \\sigma_i)`."""
    rows = collision_ce_rows(logits, targets)
    return mp.fsum(rows) / len(rows)


def h2_grad_logits_row(z: Sequence[Any], y: Sequence[Any]) -> MpVector:
    """:math:`\\sigma_k - \\tilde y_k = \\sigma_k (P - y_k)/P`, with the pairwise
    :math:`P - y_k = \\sum_j \\sigma_j (y_j - y_k)`."""
    s, yv = probs_from_logits(z), vec(y)
    p = collision_probability(yv, s)
    out = []
    for sk, yk in zip(s, yv, strict=True):
        p_minus = mp.fsum(sj * (yj - yk) for sj, yj in zip(s, yv, strict=True))
        out.append(sk * p_minus / p)
    return out


def h2_grad_targets_row(z: Sequence[Any], y: Sequence[Any]) -> MpVector:
    """:math:`\\partial H_2/\\partial y_k = -\\sigma_k / \\sigma^\\top y`."""
    s, yv = probs_from_logits(z), vec(y)
    p = collision_probability(yv, s)
    return [-sk / p for sk in s]


def collision_ce_grad(logits: Any, targets: Any, wrt: str = "logits") -> MpMatrix:
    """Gradient of :func:`collision_ce` (mean over N rows) w.r.t. ``"logits"`` or ``"targets"``."""
    z, y = mat(logits), mat(targets)
    fn = h2_grad_logits_row if wrt == "logits" else h2_grad_targets_row
    n = len(z)
    return [[g / n for g in fn(zi, yi)] for zi, yi in zip(z, y, strict=True)]


# ----------------------------------------------------------------------------- relatives


def renyi_ce(y: Sequence[Any], s: Sequence[Any], alpha: Any) -> Any:
    """Rényi cross-entropy :math:`\\frac{1}{1-\\alpha}\\ln\\sum_k y_k\\sigma_k^{\\alpha-1}`
    (terms with :math:`y_k = 0` dropped)."""
    a = mpf(alpha)
    terms = [
        mpf(yk) * mp.exp((a - 1) * mp.log(mpf(sk))) for yk, sk in zip(y, s, strict=True) if yk != 0
    ]
    return mp.log(mp.fsum(terms)) / (1 - a)


def shannon_ce(y: Sequence[Any], s: Sequence[Any]) -> Any:
    """:math:`H(y,\\sigma) = -\\sum_k y_k \\ln\\sigma_k` (``0 ln 0 = 0``; ``+inf`` if
    :math:`y_k > 0 = \\sigma_k`)."""
    return -mp.fsum(xlogy(mpf(a), mpf(b)) for a, b in zip(y, s, strict=True))


def reverse_ce(y: Sequence[Any], s: Sequence[Any]) -> Any:
    """Reverse cross-entropy :math:`H(\\sigma, y) = -\\sum_k \\sigma_k\\ln y_k`."""
    return shannon_ce(s, y)


def collision_entropy(y: Sequence[Any]) -> Any:
    """Rényi collision entropy :math:`-\\ln\\sum_k y_k^2`."""
    return -mp.log(mp.fsum(mpf(a) ** 2 for a in y))


def renyi_entropy(y: Sequence[Any], alpha: Any) -> Any:
    r"""Rényi entropy :math:`\frac{1}{1-\alpha}\ln\sum_k y_k^\alpha` (zero entries dropped)."""
    a = mpf(alpha)
    return mp.log(mp.fsum(mp.power(mpf(v), a) for v in y if v != 0)) / (1 - a)


def shannon_ce_logits(z: Sequence[Any], y: Sequence[Any]) -> Any:
    """:math:`-\\sum_k y_k\\ln\\operatorname{softmax}(z)_k` through :func:`neg_log_softmax`
    (a sum of non-negative terms: full relative precision at any logit gap)."""
    return mp.fsum(0 if a == 0 else mpf(a) * v for a, v in zip(y, neg_log_softmax(z), strict=True))


def shannon_grad_logits_row(z: Sequence[Any], y: Sequence[Any]) -> MpVector:
    """Gradient of :func:`shannon_ce_logits` for :math:`y` on the simplex, :math:`\\sigma_k - y_k`,
    in the pairwise form :math:`\\sum_j(\\sigma_k y_j - y_k\\sigma_j)` (uses
    :math:`\\sum\\sigma = \\sum y = 1`; no cancellation for one-hot :math:`y`)."""
    s, yv = probs_from_logits(z), vec(y)
    return [
        mp.fsum(sk * yj - yk * sj for sj, yj in zip(s, yv, strict=True))
        for sk, yk in zip(s, yv, strict=True)
    ]


# ----------------------------------------------------------------------------- self-labeling


def self_labeling_loss(logits: Any, y: Any, lam: Any) -> Any:
    """:math:`\\frac1N\\sum_i H_2(y_i,\\sigma_i) + \\lambda\\,\\mathrm{KL}(u\\|\\bar y)`
    (**reconstructed**)."""
    yy = mat(y)
    k = len(yy[0])
    ybar = [mp.fsum(row[c] for row in yy) / len(yy) for c in range(k)]
    if lam == 0:
        return collision_ce(logits, yy)
    if min(ybar) == 0:  # the fairness term is a barrier
        return mp.inf
    kl = mp.fsum(mp.log(mpf(1) / k / b) for b in ybar) / k
    return collision_ce(logits, yy) + mpf(lam) * kl


def self_labeling_grad(logits: Any, y: Any, lam: Any, wrt: str = "logits") -> MpMatrix:
    """Gradient of :func:`self_labeling_loss`; w.r.t. ``y`` it adds
    :math:`-\\lambda/(K N \\bar y_k)`."""
    g = collision_ce_grad(logits, y, wrt)
    if wrt == "logits" or lam == 0:
        return g
    yy = mat(y)
    n, k = len(yy), len(yy[0])
    ybar = [mp.fsum(row[c] for row in yy) / n for c in range(k)]
    lam_m = mpf(lam)
    return [[gi[c] - lam_m / (k * n * ybar[c]) for c in range(k)] for gi in g]


def objective(sigma: Any, y: Any, lam: Any) -> Any:
    """:math:`F(y) = -\\frac1N\\sum_i\\ln\\sigma_i^\\top y_i - \\lambda\\sum_k u_k\\ln\\bar y_k`."""
    s, yy = mat(sigma), mat(y)
    n, k = len(s), len(s[0])
    fit = -mp.fsum(mp.log(collision_probability(yi, si)) for si, yi in zip(s, yy, strict=True)) / n
    ybar = [mp.fsum(row[c] for row in yy) / n for c in range(k)]
    return fit - mpf(lam) * mp.fsum(mp.log(b) for b in ybar) / k


def objective_grad(sigma: Any, y: Any, lam: Any) -> MpMatrix:
    """:math:`\\partial F/\\partial y_{ik} = -\\frac1N(\\sigma_{ik}/\\sigma_i^\\top y_i +
    \\lambda u_k/\\bar y_k)`."""
    s, yy = mat(sigma), mat(y)
    n, k = len(s), len(s[0])
    ybar = [mp.fsum(row[c] for row in yy) / n for c in range(k)]
    lam_m = mpf(lam)
    out = []
    for si, yi in zip(s, yy, strict=True):
        p = collision_probability(yi, si)
        out.append([-(si[c] / p + lam_m / (k * ybar[c])) / n for c in range(k)])
    return out


def em_step(sigma: Any, y: Any, lam: Any) -> MpMatrix:
    """One EM iteration (**reconstructed**, note §3): E-step :math:`T_i = \\sigma_i\\odot y_i/
    \\sigma_i^\\top y_i`, :math:`S_{ik} = y_{ik}/\\sum_j y_{jk}`; M-step
    :math:`y_{ik} = (T_{ik} + \\lambda N u_k S_{ik})/(1 + \\lambda N\\sum_c u_c S_{ic})`."""
    s, yy = mat(sigma), mat(y)
    n, k = len(s), len(s[0])
    col = [mp.fsum(row[c] for row in yy) for c in range(k)]
    lam_n_u = mpf(lam) * n / k
    out = []
    for si, yi in zip(s, yy, strict=True):
        p = collision_probability(yi, si)
        t = [si[c] * yi[c] / p for c in range(k)]
        sc = [yi[c] / col[c] if col[c] != 0 else mp.zero for c in range(k)]
        den = 1 + lam_n_u * mp.fsum(sc)
        out.append([(t[c] + lam_n_u * sc[c]) / den for c in range(k)])
    return out


def majoriser(sigma: Any, y: Any, y_old: Any, lam: Any) -> Any:
    r"""The Jensen upper bound of :func:`objective` at the iterate ``y_old`` (**reconstructed**,
    note §3): with the E-step :math:`T, S` of ``y_old``,
    :math:`G(y|y^t) = -\frac1N\sum_{i,k}T_{ik}\ln(\sigma_{ik}y_{ik}/T_{ik}) + \lambda\ln N
    - \frac{\lambda}{K}\sum_{i,k}S_{ik}\ln(y_{ik}/S_{ik})` (terms with a zero weight drop)."""
    s, yy, yo = mat(sigma), mat(y), mat(y_old)
    n, k = len(s), len(s[0])
    col = [mp.fsum(row[c] for row in yo) for c in range(k)]
    fit, fair = [], []
    for si, yi, oi in zip(s, yy, yo, strict=True):
        p = collision_probability(oi, si)
        for c in range(k):
            t = si[c] * oi[c] / p
            if t != 0:
                fit.append(t * mp.log(si[c] * yi[c] / t))
            w = oi[c] / col[c]
            if w != 0:
                fair.append(w * mp.log(yi[c] / w))
    lam_m = mpf(lam)
    return -mp.fsum(fit) / n + lam_m * mp.log(n) - lam_m * mp.fsum(fair) / k


def fw_gap(sigma: Any, y: Any, lam: Any) -> Any:
    """Frank-Wolfe duality gap :math:`\\sum_i(\\mu_i - \\min_k g_{ik}) \\ge F(y) - \\min F`."""
    g, yy = objective_grad(sigma, y, lam), mat(y)
    return mp.fsum(
        mp.fsum(a * b for a, b in zip(yi, gi, strict=True)) - min(gi)
        for gi, yi in zip(g, yy, strict=True)
    )


def kkt_residual(sigma: Any, y: Any, lam: Any) -> Any:
    """:math:`\\max_{i,k}[y_{ik}|g_{ik}-\\mu_i| + \\max(0,\\mu_i-g_{ik})]/|\\mu_i|`,
    :math:`g=\\nabla F`, :math:`\\mu_i = \\sum_k y_{ik}g_{ik}`."""
    g, yy = objective_grad(sigma, y, lam), mat(y)
    worst = mp.zero
    for gi, yi in zip(g, yy, strict=True):
        mu = mp.fsum(a * b for a, b in zip(yi, gi, strict=True))
        for a, b in zip(yi, gi, strict=True):
            worst = max(worst, (a * abs(b - mu) + max(mp.zero, mu - b)) / abs(mu))
    return worst


# ----------------------------------------------------------------------------- precise legs

TARGET_KINDS = ("onehot", "uniform", "near_degenerate", "dirichlet", "sparse", "smoothed")


def _rng(cfg: CheckConfig, claim_id: str) -> Any:
    import numpy as np

    return np.random.default_rng(cfg.seed_for(claim_id))


def random_logits(rng: Any, c: int, max_scale: float = 1e4) -> list[float]:
    """A unit-normal pattern times a log-uniform scale in [1e-2, max_scale]."""
    import numpy as np

    zz = rng.standard_normal(c)
    scale = 10 ** rng.uniform(-2, np.log10(max_scale))
    return [float(v) for v in zz / max(1.0, float(np.abs(zz).max())) * scale]


def random_target(rng: Any, c: int, kind: str | None = None) -> list[float]:
    """A float64 row on the simplex of one kind; ``sparse`` has exact zeros."""
    import numpy as np

    kind = kind or TARGET_KINDS[int(rng.integers(len(TARGET_KINDS)))]
    hot = int(rng.integers(c))
    e = np.eye(c)[hot]
    if kind == "onehot":
        a = e
    elif kind == "uniform":
        a = np.full(c, 1.0 / c)
    elif kind == "near_degenerate":
        a = e * (1 - 1e-9) + 1e-9 / c
    elif kind == "smoothed":
        a = e * (1 - rng.uniform(0, 0.3)) + rng.uniform(0, 0.3) / c
    else:
        a = rng.dirichlet(np.full(c, 0.5))
        if kind == "sparse":
            a[a < 0.15] = 0.0
            a[hot] += 0.1
    a = a / a.sum()
    return [float(v) for v in a]


def random_simplex(rng: Any, c: int, conc: float = 1.0) -> MpVector:
    """A strictly positive probability vector in mp (Dirichlet, exactly normalised in mp)."""
    import numpy as np

    a = vec(rng.dirichlet(np.full(c, conc)))
    tot = mp.fsum(a)
    return [v / tot for v in a]


def _vec_diff(f: Any, x0: MpVector, j: int) -> Any:
    def fj(v: Any) -> Any:
        x = list(x0)
        x[j] = v
        return f(x)

    return mp.diff(fj, x0[j])


@PRECISE.register("collision_ce.onehot_equals_shannon")
def _onehot(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.onehot_equals_shannon")
    tally = Tally("precise", rtol=1e-40, atol=1e-300, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(40, 10)):
            c = int(rng.integers(2, 9))
            zz = random_logits(rng, c)
            hot = int(rng.integers(c)) if q % 2 else max(range(c), key=lambda a: zz[a])
            e = [1.0 if a == hot else 0.0 for a in range(c)]
            tally.close(h2_row(zz, e), shannon_ce_logits(zz, e), f"point {q}: value, C={c}")
            tally.close_normwise(
                h2_grad_logits_row(zz, e), shannon_grad_logits_row(zz, e), f"point {q}: gradient"
            )
    return tally.result("H2(e_c, softmax z) vs Shannon CE (value, gradient), logits up to 1e4")


@PRECISE.register("collision_ce.uniform_constant")
def _uniform(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.uniform_constant")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(20, 5)):
            c = int(rng.integers(2, 9))
            zz = vec(random_logits(rng, c, 30.0))
            u = [mp.mpf(1) / c] * c
            tally.close(h2_row(zz, u), mp.log(c), f"point {q}: value, C={c}")
            numeric = [_vec_diff(lambda x, u=u: h2_row(x, u), zz, a) for a in range(c)]
            tally.close_normwise(numeric, [0] * c, f"point {q}: mp.diff gradient")
    return tally.result("H2(u, softmax z) == ln K; mpmath.diff gradient == 0")


@PRECISE.register("collision_ce.symmetric")
def _symmetric(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.symmetric")
    tally = Tally("precise", rtol=1e-40, atol=1e-300, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(40, 10)):
            c = int(rng.integers(2, 9))
            yv, sv = random_simplex(rng, c, 0.5), probs_from_logits(random_logits(rng, c, 50.0))
            tally.close(h2_probs(yv, sv), h2_probs(sv, yv), f"point {q}: probabilities")
            # through the logits path: softmax(ln y) = y
            zz = random_logits(rng, c, 50.0)
            tally.close(
                h2_row(zz, yv), h2_row([mp.log(v) for v in yv], probs_from_logits(zz)), f"point {q}"
            )
    return tally.result("H2(y, s) vs H2(s, y), probabilities and logits (log y) paths")


@PRECISE.register("collision_ce.logit_gradient")
def _logit_gradient(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.logit_gradient")
    # entries are bounded by 1; mpmath.diff leaves ~1e-60 noise on an exactly-zero gradient
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(16, 4)):
            c = int(rng.integers(2, 7))
            zz = vec(random_logits(rng, c, 8.0))
            yv = random_target(rng, c)
            closed = h2_grad_logits_row(zz, yv)
            s = probs_from_logits(zz)
            p = collision_probability(yv, s)
            naive = [sk - mpf(yk) * sk / p for sk, yk in zip(s, yv, strict=True)]
            numeric = [_vec_diff(lambda x, yv=yv: h2_row(x, yv), zz, a) for a in range(c)]
            tally.close_normwise(closed, numeric, f"point {q}: closed form vs mp.diff")
            tally.close_normwise(closed, naive, f"point {q}: pairwise vs sigma - ytilde")
    return tally.result("sigma - ytilde (pairwise form) vs mpmath.diff of the oracle value")


@PRECISE.register("collision_ce.target_gradient")
def _target_gradient(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.target_gradient")
    tally = Tally("precise", rtol=1e-30, atol=1e-300, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(16, 4)):
            c = int(rng.integers(2, 7))
            zz = random_logits(rng, c, 8.0)
            yv = vec(random_target(rng, c, "sparse" if q % 2 else None))  # exact zeros too
            s = probs_from_logits(zz)
            numeric = [
                _vec_diff(lambda x, s=s: -mp.log(collision_probability(x, s)), yv, a)
                for a in range(c)
            ]
            tally.close_normwise(h2_grad_targets_row(zz, yv), numeric, f"point {q}")
    return tally.result("-sigma/(sigma.y) vs mpmath.diff in y (also at y_k = 0)")


@PRECISE.register("collision_ce.renyi_order_two")
def _renyi_two(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.renyi_order_two")
    tally = Tally("precise", rtol=1e-40, atol=1e-300, dps=cfg.dps + 40)
    # ln P near P = 1 needs guard digits, and sigma must sum to 1 beyond them (1 - P = Q)
    with workdps(cfg.dps + 40):
        for q in range(cfg.points(40, 10)):
            c = int(rng.integers(2, 9))
            yv = random_target(rng, c)
            s = probs_from_logits(random_logits(rng, c, 30.0))
            tally.close(renyi_ce(yv, s, 2), h2_probs(yv, s), f"point {q}: C={c}")
    return tally.result("Renyi H_alpha at alpha = 2 vs the H2 oracle (90 digits)")


def _renyi_study(cfg: CheckConfig, claim_id: str) -> tuple[list[Any], Tally, Tally]:
    """Convergence study at t = alpha - 1 = +-10^-j (j = 2..6): the error H_alpha - H should be
    -t Var_y(ln s)/2 + O(t^2). Returns the observed orders (log-log slope of |H_alpha - H|, which
    must be 1 for the limit to hold at that rate), a tally of the last error (-> 0), and a tally
    of the coefficient (H_alpha - H)/t against -Var/2."""
    rng = _rng(cfg, claim_id)
    lim = Tally("precise", rtol=2e-2, atol=0, dps=cfg.dps)
    coef = Tally("precise", rtol=1e-4, atol=0, dps=cfg.dps)
    slopes: list[Any] = []
    with workdps(cfg.dps):
        for q in range(cfg.points(12, 3)):
            c = int(rng.integers(2, 9))
            yv = random_simplex(rng, c, 0.7)
            s_ = probs_from_logits(random_logits(rng, c, 5.0))
            shan = shannon_ce(yv, s_)
            logs = [mp.log(v) for v in s_]
            mean = mp.fsum(a * b for a, b in zip(yv, logs, strict=True))
            var = mp.fsum(a * (b - mean) ** 2 for a, b in zip(yv, logs, strict=True))
            for sign in (1, -1):
                ts = [sign * mp.mpf(10) ** (-e) for e in range(2, 7)]
                errs = [renyi_ce(yv, s_, 1 + tt) - shan for tt in ts]
                slope = mp.log(abs(errs[-1] / errs[-2])) / mp.log(abs(ts[-1] / ts[-2]))
                slopes.append(float(slope))
                where = f"point {q}, side {sign:+d}"
                lim.close(slope, 1, f"{where}: observed order of H_alpha - H -> 0")
                lim.holds(abs(errs[-2]) - abs(errs[-1]), f"{where}: |H_alpha - H| decreasing")
                coef.close(errs[-1] / ts[-1], -var / 2, f"{where}: coefficient")
    return slopes, lim, coef


@PRECISE.register("collision_ce.renyi_shannon_limit")
def _renyi_limit(cfg: CheckConfig) -> LegResult:
    slopes, lim, _ = _renyi_study(cfg, "collision_ce.renyi_shannon_limit")
    res = lim.result("H_alpha - H -> 0 as alpha -> 1 from both sides (observed order 1)")
    res.extra.update(slope_min=min(slopes), slope_max=max(slopes))
    return res


@PRECISE.register("collision_ce.renyi_shannon_rate")
def _renyi_rate(cfg: CheckConfig) -> LegResult:
    slopes, _, coef = _renyi_study(cfg, "collision_ce.renyi_shannon_rate")
    res = coef.result("(H_alpha - H)/(alpha - 1) at |alpha - 1| = 1e-6 vs -Var_y(ln sigma)/2")
    res.extra.update(
        slope_min=min(slopes),
        slope_max=max(slopes),
        predicted="H_alpha - H = -(alpha-1) Var_y(ln sigma)/2 + O((alpha-1)^2)",
    )
    return res


@PRECISE.register("collision_ce.jensen_bound")
def _jensen(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.jensen_bound")
    tally = Tally("precise", rtol=0, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(60, 15)):
            c = int(rng.integers(2, 9))
            zz = random_logits(rng, c)
            yv = random_target(rng, c)
            h2v = h2_row(zz, yv)
            bound = shannon_ce_logits(zz, yv)
            tally.holds((bound - h2v) / max(1, abs(h2v)), f"point {q}: C={c}")
    return tally.result("H(y, s) - H2(y, s) >= 0 (relative margin), logits up to 1e4")


@PRECISE.register("collision_ce.jensen_bound_reverse")
def _jensen_reverse(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.jensen_bound_reverse")
    tally = Tally("precise", rtol=0, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(60, 15)):
            c = int(rng.integers(2, 9))
            s_ = probs_from_logits(random_logits(rng, c, 30.0))
            yv = random_simplex(rng, c, float(rng.choice([0.2, 1.0, 5.0])))  # y > 0
            h2v = h2_probs(yv, s_)
            bound = reverse_ce(yv, s_)
            tally.holds((bound - h2v) / max(1, abs(h2v)), f"point {q}: C={c}")
    return tally.result("H(s, y) - H2(y, s) >= 0 for y > 0 (relative margin)")


@PRECISE.register("collision_ce.convex_in_targets")
def _convex_targets(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.convex_in_targets")
    tally = Tally("precise", rtol=1e-25, atol=1e-300, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(16, 4)):
            c = int(rng.integers(2, 6))
            yv = random_simplex(rng, c)
            s_ = probs_from_logits(random_logits(rng, c, 5.0))
            v = vec(rng.standard_normal(c))
            p = collision_probability(yv, s_)
            closed = collision_probability(s_, v) ** 2 / p**2
            d2 = mp.diff(
                lambda e, yv=yv, v=v, s_=s_: h2_probs(
                    [a + e * b for a, b in zip(yv, v, strict=True)], s_
                ),
                0,
                2,
            )
            tally.close(d2, closed, f"point {q}: d2/ds2 H2(y + s v) vs (s.v)^2/(s.y)^2")
            tally.holds(d2, f"point {q}: curvature >= 0")
    return tally.result("second directional derivative of H2 in y (mpmath.diff): >= 0")


@PRECISE.register("collision_ce.hessian_targets")
def _hessian_targets(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.hessian_targets")
    tally = Tally("precise", rtol=1e-25, atol=1e-300, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(8, 2)):
            c = int(rng.integers(2, 5))
            yv = random_simplex(rng, c)
            s_ = probs_from_logits(random_logits(rng, c, 5.0))
            p = collision_probability(yv, s_)
            for a in range(c):
                for b in range(c):
                    orders = [0] * c
                    orders[a] += 1
                    orders[b] += 1
                    d2 = mp.diff(lambda *v, s_=s_: h2_probs(list(v), s_), yv, tuple(orders))
                    tally.close(d2, s_[a] * s_[b] / p**2, f"point {q}: entry ({a}, {b})")
    return tally.result("mpmath.diff second partials of the H2 oracle vs sigma_m sigma_n / P^2")


@PRECISE.register("collision_ce.objective_convex")
def _objective_convex(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.objective_convex")
    tally = Tally("precise", rtol=0, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(16, 4)):
            n, c = int(rng.integers(2, 4)), int(rng.integers(2, 5))
            sig_m = [probs_from_logits(random_logits(rng, c, 3.0)) for _ in range(n)]
            ym = [random_simplex(rng, c) for _ in range(n)]
            dm = [vec(rng.standard_normal(c)) for _ in range(n)]
            lam_v = mpf(float(rng.uniform(0, 3)))

            def along(
                e: Any, ym: Any = ym, dm: Any = dm, sig_m: Any = sig_m, lam_v: Any = lam_v
            ) -> Any:
                pts = [
                    [a + e * b for a, b in zip(r, d, strict=True)]
                    for r, d in zip(ym, dm, strict=True)
                ]
                return objective(sig_m, pts, lam_v)

            tally.holds(mp.diff(along, 0, 2), f"point {q} (N={n}, K={c}): F curvature >= 0")
    return tally.result("second directional derivative of the F oracle in y (mpmath.diff) >= 0")


@PRECISE.register("collision_ce.nonconvex_in_logits")
def _nonconvex(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.nonconvex_in_logits")
    tally = Tally("precise", rtol=1e-30, atol=1e-300, dps=cfg.dps)
    negative = 0
    trials = cfg.points(30, 8)
    with workdps(cfg.dps):
        yw, zw, dw = [0.5, 0.5, 0.0], vec([-5, -5, 0]), vec([1, -1, 0])
        curv = mp.diff(lambda e: h2_row([a + e * b for a, b in zip(zw, dw, strict=True)], yw), 0, 2)
        closed = 2 * mp.exp(-5) / (1 + 2 * mp.exp(-5)) - 1
        tally.close(curv, closed, "witness: second directional derivative")
        tally.holds(-curv, "witness: curvature < 0 exhibits non-convexity")
        for _ in range(trials):  # how common is negative curvature? (reported, not asserted)
            c = int(rng.integers(2, 6))
            zz, yv = vec(random_logits(rng, c, 10.0)), random_target(rng, c, "dirichlet")
            d = vec(rng.standard_normal(c))
            g2 = mp.diff(
                lambda e, zz=zz, yv=yv, d=d: h2_row(
                    [a + e * b for a, b in zip(zz, d, strict=True)], yv
                ),
                0,
                2,
            )
            negative += int(g2 < 0)
    return tally.result(
        f"witness curvature = {float(curv):.6f} < 0; negative curvature at {negative}/{trials} "
        "random (y, z, d)",
        witness_curvature=float(curv),
        random_negative_fraction=negative / trials,
    )


@PRECISE.register("collision_ce.argmin_onehot")
def _argmin(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.argmin_onehot")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(40, 10)):
            c = int(rng.integers(2, 9))
            yv = random_target(rng, c)
            best = -mp.log(max(vec(yv)))
            s = probs_from_logits(random_logits(rng, c))
            tally.holds(h2_probs(yv, s) - best, f"point {q}: H2 >= -ln max y")
            top = max(range(c), key=lambda a: yv[a])
            vertex = [1 if a == top else 0 for a in range(c)]
            tally.close(h2_probs(yv, vertex), best, f"point {q}: attained at e_argmax")
            # softmax(t e_top) approaches the vertex: H2 - min -> 0 like e^-t
            gaps = [h2_row([t_ if a == top else 0 for a in range(c)], yv) - best for t_ in (20, 40)]
            tally.holds(gaps[0] - gaps[1], f"point {q}: decreasing towards the vertex")
    return tally.result("H2 - (-ln max y) >= 0, equality at the vertex e_argmax(y)")


@PRECISE.register("collision_ce.nonnegative")
def _nonneg(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.nonnegative")
    tally = Tally("precise", rtol=0, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(40, 10)):
            c = int(rng.integers(2, 9))
            zz, yv = random_logits(rng, c), random_target(rng, c)
            tally.holds(h2_row(zz, yv), f"point {q}: H2(y, softmax z) >= 0")
            s_ = random_target(rng, c)  # sigma on the closed simplex (zeros, vertices)
            if collision_probability(yv, s_) > 0:
                tally.holds(h2_probs(yv, s_), f"point {q}: H2(y, sigma) >= 0")
    return tally.result("H2 >= 0 at 50 digits (logits up to 1e4; sigma with zeros)")


@PRECISE.register("collision_ce.nonnegative_zero_at_vertex")
def _zero_at_vertex(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(2, 2 + cfg.points(8, 3)):
            for hot in range(c):
                e = [1 if a == hot else 0 for a in range(c)]
                tally.close(h2_probs(e, e), 0, f"K={c}, c={hot}: H2(e_c, e_c)")
    return tally.result("H2(e_c, e_c) == 0 exactly for every vertex")


@PRECISE.register("collision_ce.nonnegative_gap")
def _nonneg_gap(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.nonnegative_gap")
    tally = Tally("precise", rtol=0, atol=1e-45, dps=cfg.dps)
    strict = 0
    with workdps(cfg.dps):
        for q in range(cfg.points(40, 10)):
            c = int(rng.integers(2, 9))
            yv = vec(random_target(rng, c))
            s_ = probs_from_logits(random_logits(rng, c, 30.0))
            gap = mp.fsum(b * (1 - a) for a, b in zip(yv, s_, strict=True))
            h = h2_probs(yv, s_)
            tally.holds(h - gap, f"point {q}: H2 - sum sigma (1 - y) >= 0")
            strict += int(max(yv) < 1 and h > 0)
    return tally.result(
        f"H2(y, sigma) >= sum_k sigma_k (1 - y_k); H2 > 0 at all {strict} non-vertex targets",
        positive_at_non_vertex=strict,
    )


@PRECISE.register("collision_ce.infinite_iff_disjoint")
def _disjoint(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.infinite_iff_disjoint")
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(40, 10)):
            c = int(rng.integers(2, 9))
            support = rng.random(c) < 0.5
            if support.all() or not support.any():
                support[0], support[-1] = True, False
            a = [v * sp_ for v, sp_ in zip(random_simplex(rng, c), support, strict=True)]
            b = [v * (1 - sp_) for v, sp_ in zip(random_simplex(rng, c), support, strict=True)]
            yv, s_ = [v / mp.fsum(a) for v in a], [v / mp.fsum(b) for v in b]
            if h2_probs(yv, s_) != mp.inf:
                tally.fail(f"point {q}: disjoint supports gave {h2_probs(yv, s_)}")
            else:
                tally.holds(0, f"point {q}: disjoint -> +inf")
            s2 = list(s_)
            shared = [a_ for a_ in range(c) if support[a_]][int(rng.integers(support.sum()))]
            s2[shared] += mp.mpf(10) ** -30  # one class shared with y: finite
            v = h2_probs(yv, s2)
            if v == mp.inf or v != v:
                tally.fail(f"point {q}: overlapping supports gave {v}")
            else:
                tally.holds(0, f"point {q}: overlap -> finite")
    return tally.result("+inf exactly when sigma^T y = 0; finite as soon as one class overlaps")


@PRECISE.register("collision_ce.collision_entropy")
def _collision_entropy(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.collision_entropy")
    tally = Tally("precise", rtol=1e-40, atol=1e-300, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(40, 10)):
            c = int(rng.integers(2, 9))
            yv = random_simplex(rng, c, 0.5)
            want = collision_entropy(yv)
            tally.close(h2_probs(yv, yv), want, f"point {q}: probabilities")
            tally.close(h2_row([mp.log(v) for v in yv], yv), want, f"point {q}: logits ln y")
    return tally.result("H2(y, y) vs -ln sum y^2")


def _random_problem(rng: Any, n: int, c: int, scale: float = 1.5) -> tuple[MpMatrix, MpMatrix]:
    sig_m = [probs_from_logits(random_logits(rng, c, scale)) for _ in range(n)]
    return sig_m, [list(r) for r in sig_m]


@PRECISE.register("collision_ce.em_monotone")
def _em_monotone(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.em_monotone")
    tally = Tally("precise", rtol=0, atol=1e-45, dps=cfg.dps)
    steps = 25
    with workdps(cfg.dps):
        for q in range(cfg.points(10, 3)):
            n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
            lam_v = 0.0 if q % 4 == 0 else float(rng.uniform(0.1, 3))
            sig_m, ym = _random_problem(rng, n, c)
            f_old = objective(sig_m, ym, lam_v)
            for it in range(steps):
                ym = em_step(sig_m, ym, lam_v)
                f_new = objective(sig_m, ym, lam_v)
                tally.holds((f_old - f_new) / abs(f_old), f"problem {q} (N={n}, K={c}), step {it}")
                f_old = f_new
    return tally.result(f"relative decrease of F over {steps} mpmath EM steps per problem")


def designed_problem(
    rng: Any, n: int, c: int, lam_frac: float = 0.8
) -> tuple[MpMatrix, MpMatrix, Any]:
    """A problem with a known interior optimum: pick ``y*`` interior and ``lam``, then set
    :math:`\\sigma_{ik} \\propto a_{ik} = 1 + \\lambda(\\sum_c u_c y_{ic}/\\bar y_c - u_k/\\bar y_k)`,
    which makes :math:`\\nabla F(y^*)` constant along each row (KKT, hence the global minimum of
    the convex :math:`F`). ``lam`` is ``lam_frac`` times the largest value keeping ``a > 0``."""
    ys = [random_simplex(rng, c, 3.0) for _ in range(n)]
    ybar = [mp.fsum(r[a] for r in ys) / n for a in range(c)]
    brackets = [
        [mp.fsum(r[b] / ybar[b] for b in range(c)) / c - 1 / (c * ybar[a]) for a in range(c)]
        for r in ys
    ]
    worst = min(min(b) for b in brackets)
    lam_v = lam_frac / -worst if worst < 0 else mpf(1)
    sig_m = []
    for br in brackets:
        a = [1 + lam_v * b for b in br]
        tot = mp.fsum(a)
        sig_m.append([v / tot for v in a])
    return sig_m, ys, lam_v


@PRECISE.register("collision_ce.em_fixed_point_kkt")
def _em_kkt(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.em_fixed_point_kkt")
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(8, 2)):
            n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
            lam_v = float(rng.uniform(0, 3))
            sig_m, _ = _random_problem(rng, n, c)
            ym = [random_simplex(rng, c) for _ in range(n)]
            # (a) the EM map is y <- y * g / mu at any interior y
            g = objective_grad(sig_m, ym, lam_v)
            mult: list[Any] = []
            for gi, yi in zip(g, ym, strict=True):
                mu = mp.fsum(a * b for a, b in zip(yi, gi, strict=True))
                mult.extend(a * b / mu for a, b in zip(yi, gi, strict=True))
            step = [v for r in em_step(sig_m, ym, lam_v) for v in r]
            tally.close_normwise(step, mult, f"problem {q}: EM step == y*g/mu")
            # ... also with exact zeros in y (every class keeps some mass): there y+ = y = 0,
            # y (g - mu)/mu = 0 as the statement says
            yz = [list(r) for r in ym]
            for r_, row in enumerate(yz):
                drop = int(rng.integers(c))
                if all(other[drop] > 0 for o_, other in enumerate(yz) if o_ != r_):
                    row[drop] = mp.zero
                    tot = mp.fsum(row)
                    yz[r_] = [v / tot for v in row]
            g = objective_grad(sig_m, yz, lam_v)
            want: list[Any] = []
            for gi, yi in zip(g, yz, strict=True):
                mu = mp.fsum(a * b for a, b in zip(yi, gi, strict=True))
                want.extend(a * (b - mu) / mu for a, b in zip(yi, gi, strict=True))
            got = [
                a - b
                for ra, rb in zip(em_step(sig_m, yz, lam_v), yz, strict=True)
                for a, b in zip(ra, rb, strict=True)
            ]
            tally.close_normwise(got, want, f"problem {q}: y+ - y == y (g - mu)/mu with zeros")
            # (b) at a designed interior KKT point: EM fixed point, zero KKT residual, and a lower
            #     bound for F along EM from sigma and at random feasible points (global optimum)
            sig_d, ystar, lam_d = designed_problem(rng, n, c)
            fstar = objective(sig_d, ystar, lam_d)
            flat = [v for r in ystar for v in r]
            tally.close_normwise(
                [v for r in em_step(sig_d, ystar, lam_d) for v in r],
                flat,
                f"problem {q}: fixed point",
            )
            tally.holds(-kkt_residual(sig_d, ystar, lam_d), f"problem {q}: KKT residual == 0")
            yy = [list(r) for r in sig_d]
            for it in range(15):
                yy = em_step(sig_d, yy, lam_d)
                tally.holds(objective(sig_d, yy, lam_d) - fstar, f"problem {q}: EM step {it} >= F*")
            for r_ in range(5):
                other = [random_simplex(rng, c) for _ in range(n)]
                tally.holds(
                    objective(sig_d, other, lam_d) - fstar, f"problem {q}: random point {r_}"
                )
    return tally.result(
        "EM map == y*grad/mu; designed interior KKT point is an EM fixed point and the minimum"
    )


@PRECISE.register("collision_ce.objective_gradient")
def _objective_gradient(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.objective_gradient")
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(6, 2)):
            n, c = int(rng.integers(2, 4)), int(rng.integers(2, 4))
            lam_v = mpf(float(rng.uniform(0, 3)))
            sig_m = [probs_from_logits(random_logits(rng, c, 3.0)) for _ in range(n)]
            ym = [random_simplex(rng, c) for _ in range(n)]
            g = _flat_mp(objective_grad(sig_m, ym, lam_v))
            flat = _flat_mp(ym)

            def f_flat(v: Any, n: int = n, c: int = c, sig_m: Any = sig_m, lam_v: Any = lam_v):
                return objective(sig_m, [v[a * c : (a + 1) * c] for a in range(n)], lam_v)

            numeric = [_vec_diff(f_flat, flat, a) for a in range(n * c)]
            tally.close_normwise(g, numeric, f"problem {q} (N={n}, K={c})")
    return tally.result("closed-form grad F vs mpmath.diff of the F oracle")


def _flat_mp(m: Any) -> list[Any]:
    return [v for row in m for v in row]


def _interior_problem(rng: Any, n: int, c: int) -> tuple[MpMatrix, MpMatrix, MpMatrix, Any]:
    sig_m = [probs_from_logits(random_logits(rng, c, 3.0)) for _ in range(n)]
    y_old = [random_simplex(rng, c, float(rng.choice([0.3, 1.0, 4.0]))) for _ in range(n)]
    y_new = [random_simplex(rng, c, 1.0) for _ in range(n)]
    return sig_m, y_old, y_new, mpf(float(rng.uniform(0, 3)))


@PRECISE.register("collision_ce.em_majoriser")
def _em_majoriser(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.em_majoriser")
    tally = Tally("precise", rtol=0, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(30, 8)):
            n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
            sig_m, y_old, y_new, lam_v = _interior_problem(rng, n, c)
            if q % 3 == 0:  # off the simplex: G >= F holds for every positive y
                y_new = [[v * mpf(float(rng.uniform(0.2, 3))) for v in r] for r in y_new]
            gap = majoriser(sig_m, y_new, y_old, lam_v) - objective(sig_m, y_new, lam_v)
            tally.holds(gap, f"problem {q} (N={n}, K={c}): G(y|y^t) - F(y)")
    return tally.result("G(y | y^t) - F(y) >= 0 at random interior y, y^t (oracles)")


@PRECISE.register("collision_ce.em_majoriser_tight")
def _em_majoriser_tight(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.em_majoriser_tight")
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(20, 5)):
            n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
            sig_m, y_old, _, lam_v = _interior_problem(rng, n, c)
            tally.close(
                majoriser(sig_m, y_old, y_old, lam_v),
                objective(sig_m, y_old, lam_v),
                f"problem {q} (N={n}, K={c})",
            )
    return tally.result("G(y^t | y^t) == F(y^t) at 50 digits")


@PRECISE.register("collision_ce.em_mstep_minimises")
def _em_mstep(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.em_mstep_minimises")
    tally = Tally("precise", rtol=0, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(20, 5)):
            n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
            sig_m, y_old, _, lam_v = _interior_problem(rng, n, c)
            g_em = majoriser(sig_m, em_step(sig_m, y_old, lam_v), y_old, lam_v)
            for t_ in range(4):
                other = [random_simplex(rng, c) for _ in range(n)]
                tally.holds(
                    majoriser(sig_m, other, y_old, lam_v) - g_em,
                    f"problem {q} (N={n}, K={c}), random y {t_}",
                )
            tally.holds(majoriser(sig_m, y_old, y_old, lam_v) - g_em, f"problem {q}: y = y^t")
    return tally.result("G(y | y^t) - G(EM(y^t) | y^t) >= 0 at random y on the simplices")


# ----------------------------------------------------------------------------- definitions

DEFINITION = LegRegistry("definition")


def _simplex_row(rnd: random.Random, c: int) -> list[Any]:
    """Exactly on the simplex to 100 digits (the H2 oracle's log1p path uses sum sigma = 1)."""
    with workdps(100):
        a = [mpf(rnd.uniform(0.05, 1.0)) for _ in range(c)]
        tot = mp.fsum(a)
        return [v / tot for v in a]


def _sample(
    rnd: random.Random, *, logits: bool = False, probs: bool = False, order: bool = False
) -> tuple[dict[Any, int], dict[Any, Any]]:
    c = rnd.randint(2, 5)
    point: dict[Any, Any] = {D.y: _simplex_row(rnd, c)}
    if logits:
        point[D.z] = [rnd.uniform(-5, 5) for _ in range(c)]
    if probs:
        point[D.sig] = _simplex_row(rnd, c)
    if order:
        point[D.alpha] = rnd.choice([rnd.uniform(0.2, 0.9), rnd.uniform(1.1, 4.0)])
    return {D.K: c}, point


def _sample_solver(
    rnd: random.Random, *, old: bool = False, index: bool = False
) -> tuple[dict[Any, int], dict[Any, Any]]:
    nn, c = rnd.randint(1, 3), rnd.randint(2, 3)
    point: dict[Any, Any] = {
        D.sig: [_simplex_row(rnd, c) for _ in range(nn)],
        D.y: [_simplex_row(rnd, c) for _ in range(nn)],
        D.lam: rnd.uniform(0, 3),
    }
    if old:
        point[D.y_old] = [_simplex_row(rnd, c) for _ in range(nn)]
    if index:
        point[D.i], point[D.m] = rnd.randint(1, nn), rnd.randint(1, c)
    return {D.N: nn, D.K: c}, point


def _register_definitions() -> None:
    defs = {d.name: d for d in D.DEFINITIONS}
    table: dict[str, tuple[Any, Any]] = {
        "h2": (lambda sz, pt: h2_probs(pt[D.y], pt[D.sig]), {"probs": True}),
        "h2_logits": (lambda sz, pt: h2_row(pt[D.z], pt[D.y]), {"logits": True}),
        "shannon_ce": (lambda sz, pt: shannon_ce(pt[D.y], pt[D.sig]), {"probs": True}),
        "shannon_ce_logits": (
            lambda sz, pt: shannon_ce_logits(pt[D.z], pt[D.y]),
            {"logits": True},
        ),
        "renyi_ce": (
            lambda sz, pt: renyi_ce(pt[D.y], pt[D.sig], pt[D.alpha]),
            {"probs": True, "order": True},
        ),
        "renyi_entropy": (lambda sz, pt: renyi_entropy(pt[D.y], pt[D.alpha]), {"order": True}),
    }
    solver: dict[str, tuple[Any, Any]] = {
        "objective": (lambda sz, pt: objective(pt[D.sig], pt[D.y], pt[D.lam]), {}),
        "em_step": (
            lambda sz, pt: em_step(pt[D.sig], pt[D.y], pt[D.lam])[pt[D.i] - 1][pt[D.m] - 1],
            {"index": True},
        ),
        "majoriser": (
            lambda sz, pt: majoriser(pt[D.sig], pt[D.y], pt[D.y_old], pt[D.lam]),
            {"old": True},
        ),
    }
    for name, (oracle, opts) in {**table, **solver}.items():
        defn = defs[name]
        sampler = _sample_solver if name in solver else _sample

        def leg(
            cfg: CheckConfig,
            defn: Any = defn,
            oracle: Any = oracle,
            opts: Any = opts,
            sampler: Any = sampler,
        ) -> Any:
            return definition_leg(defn, lambda rnd: sampler(rnd, **opts), oracle, cfg, n=8)

        DEFINITION.register(defn.id)(leg)


_register_definitions()


__all__ = [
    "DEFAULT_DPS",
    "DEFINITION",
    "PRECISE",
    "collision_ce",
    "collision_ce_grad",
    "collision_ce_rows",
    "collision_entropy",
    "collision_probability",
    "designed_problem",
    "em_step",
    "fw_gap",
    "h2_grad_logits_row",
    "h2_grad_targets_row",
    "h2_probs",
    "h2_row",
    "kkt_residual",
    "majoriser",
    "neg_log_softmax",
    "objective",
    "objective_grad",
    "probs_from_logits",
    "random_logits",
    "random_simplex",
    "random_target",
    "renyi_ce",
    "renyi_entropy",
    "reverse_ce",
    "self_labeling_grad",
    "self_labeling_loss",
    "shannon_ce",
    "shannon_ce_logits",
    "shannon_grad_logits_row",
]
