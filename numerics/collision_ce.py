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

from collections.abc import Sequence
from typing import Any

from mpmath import mp

from derivations import CheckConfig, LegRegistry, LegResult, Tally
from numerics._mp import (
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


@PRECISE.register("collision_ce.renyi_shannon_limit")
def _renyi_limit(cfg: CheckConfig) -> LegResult:
    """Convergence study: t = alpha - 1 = +-10^-j; the error H_alpha - H should be
    -t Var_y(ln s)/2 + O(t^2): observed order 1 (log-log slope) and that coefficient."""
    rng = _rng(cfg, "collision_ce.renyi_shannon_limit")
    tally = Tally("precise", rtol=2e-2, atol=0, dps=cfg.dps)
    coef = Tally("precise", rtol=1e-4, atol=0, dps=cfg.dps)
    slopes: list[float] = []
    with workdps(cfg.dps):
        for q in range(cfg.points(12, 3)):
            c = int(rng.integers(2, 9))
            yv = random_simplex(rng, c, 0.7)
            s = probs_from_logits(random_logits(rng, c, 5.0))
            shan = shannon_ce(yv, s)
            logs = [mp.log(v) for v in s]
            mean = mp.fsum(a * b for a, b in zip(yv, logs, strict=True))
            var = mp.fsum(a * (b - mean) ** 2 for a, b in zip(yv, logs, strict=True))
            for sign in (1, -1):
                ts = [sign * mp.mpf(10) ** (-e) for e in range(2, 7)]
                errs = [renyi_ce(yv, s, 1 + tt) - shan for tt in ts]
                # order of convergence from the last two points
                slope = mp.log(abs(errs[-1] / errs[-2])) / mp.log(abs(ts[-1] / ts[-2]))
                slopes.append(float(slope))
                tally.close(slope, 1, f"point {q}, side {sign:+d}: observed order")
                coef.close(errs[-1] / ts[-1], -var / 2, f"point {q}, side {sign:+d}: coefficient")
    res = tally.result("observed order of H_alpha -> H as alpha -> 1 (predicted 1)")
    c_res = coef.result()
    if c_res.outcome == "fail":
        res.outcome, res.counterexample = "fail", c_res.counterexample
    res.n_points += c_res.n_points
    res.extra.update(
        slope_min=min(slopes),
        slope_max=max(slopes),
        coefficient_max_rel_err=c_res.max_rel_err,
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
            s = probs_from_logits(zz)
            h2v = h2_row(zz, yv)
            bound = min(shannon_ce_logits(zz, yv), reverse_ce(yv, s))
            tally.holds((bound - h2v) / max(1, abs(h2v)), f"point {q}: C={c}")
    return tally.result("min(H(y,s), H(s,y)) - H2 >= 0 (relative margin), logits up to 1e4")


@PRECISE.register("collision_ce.convex_in_targets")
def _convex_targets(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "collision_ce.convex_in_targets")
    tally = Tally("precise", rtol=1e-25, atol=1e-300, dps=cfg.dps)
    with workdps(cfg.dps):
        for q in range(cfg.points(16, 4)):
            c = int(rng.integers(2, 6))
            yv = random_simplex(rng, c)
            s = probs_from_logits(random_logits(rng, c, 5.0))
            v = vec(rng.standard_normal(c))
            p = collision_probability(yv, s)
            closed = collision_probability(s, v) ** 2 / p**2
            d2 = mp.diff(
                lambda e, yv=yv, v=v, s=s: h2_probs(
                    [a + e * b for a, b in zip(yv, v, strict=True)], s
                ),
                0,
                2,
            )
            tally.close(d2, closed, f"point {q}: v^T H v vs (s.v)^2/(s.y)^2")
            tally.holds(closed, f"point {q}: curvature >= 0")
            # the pseudo-label objective F (fit + reverse-KL fairness) along a random direction
            n = int(rng.integers(2, 4))
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

            tally.holds(mp.diff(along, 0, 2), f"point {q}: F curvature >= 0")
    return tally.result("second directional derivative in y: closed form, >= 0 (H2 and F)")


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
            h = h2_row(zz, yv)
            tally.holds(h, f"point {q}: H2 >= 0")
            if max(yv) < 1:  # not one-hot: strictly positive, at least -ln max y
                tally.holds(h + mp.log(max(vec(yv))), f"point {q}: H2 >= -ln max y > 0")
            hot = int(rng.integers(c))
            e = [1 if a == hot else 0 for a in range(c)]
            tally.holds(-abs(h2_probs(e, e)), f"point {q}: H2(e_c, e_c) == 0")
            other = [1 if a == (hot + 1) % c else 0 for a in range(c)]
            if h2_probs(e, other) != mp.inf:
                tally.fail(f"point {q}: disjoint supports should give +inf")
    return tally.result("H2 >= 0; == 0 at y = s = e_c; +inf for disjoint supports")


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


__all__ = [
    "DEFAULT_DPS",
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
    "neg_log_softmax",
    "objective",
    "objective_grad",
    "probs_from_logits",
    "random_logits",
    "random_simplex",
    "random_target",
    "renyi_ce",
    "reverse_ce",
    "self_labeling_grad",
    "self_labeling_loss",
    "shannon_ce",
    "shannon_ce_logits",
    "shannon_grad_logits_row",
]
