r"""Soft-target InfoNCE (Hugger & Uhlmann 2024, arXiv 2404.14076): definitions and claims.

The loss is fixed by the official code (research note §1.2-§1.3). One row (input :math:`x`,
logits :math:`f_c`, :math:`c = 1..C`), candidate targets :math:`\alpha_{jc}` (:math:`j = 1..M`),
positive index :math:`p`, temperature :math:`t`, log noise probabilities
:math:`\lambda_c = \log q_c`:

.. math::
    S_j = \sum_{c=1}^{C}\alpha_{jc}\,(f_c/t - \lambda_c),\qquad
    \ell = \log\sum_{j=1}^{M} e^{S_j} - S_p .

The batch loss is the mean of :math:`\ell_i` over the :math:`N` local rows, so every row identity
below carries over to the batch and every row gradient gains a factor :math:`1/N`.

Proof scopes: ``symbolic C`` / ``symbolic M`` mean SymPy ``Sum`` objects over integer symbols
(``IndexedBase`` entries, index ranges resolved with :func:`derivations._sym.index_in_range`).
Interchanges of finite double sums use ``Sum.reorder``; inequalities are reduced to named lemmas
(Jensen, "a sum of positive terms is positive") and the reductions are checked symbolically.
"""

from __future__ import annotations

import functools
from typing import Any

import sympy as sp

from derivations._claim import Claim, Proof
from derivations._sym import difference_is_zero, index_in_range

FAMILY = "soft_target_infonce"

C = sp.Symbol("C", integer=True, positive=True)  # classes
M = sp.Symbol("M", integer=True, positive=True)  # candidates
K = sp.Symbol("K", integer=True, positive=True)  # negatives
R = sp.Symbol("R", integer=True, positive=True)  # support points of a discrete target law
c, j, m, p, r, y0 = sp.symbols("c j m p r y_0", integer=True)
f = sp.IndexedBase("f", real=True)  # logits of one row
alpha = sp.IndexedBase("alpha", real=True)  # alpha[j, c]: candidate targets
alpha0 = sp.IndexedBase("alpha0", real=True)  # the positive's target (large-K form)
lam = sp.IndexedBase("lambda", real=True)  # lambda[c] = log q_c
q = sp.IndexedBase("q", positive=True)  # noise probabilities
y = sp.IndexedBase("y", integer=True)  # hard labels of the candidates
s = sp.IndexedBase("s", real=True)  # generic scores
mu = sp.IndexedBase("mu", real=True)  # candidate masses sum_c alpha[j, c]
Ee = sp.IndexedBase("E", positive=True)  # e^{S_j} treated as an atom
A = sp.IndexedBase("A", real=True)  # support points A[r, c]
P = sp.IndexedBase("P", positive=True)  # their probabilities
t = sp.Symbol("t", positive=True)
kappa = sp.Symbol("kappa", real=True)
eps = sp.Symbol("epsilon", positive=True)


# ----------------------------------------------------------------------------- definitions


def score(jj: Any, logits: Any = f, logq: Any = lam, temp: Any = t) -> sp.Expr:
    r""":math:`S_j = \sum_c \alpha_{jc}(f_c/t - \log q_c)`."""
    return sp.Sum(alpha[jj, c] * (logits[c] / temp - logq[c]), (c, 1, C))


def info_nce(s_of: Any, pos: Any = p, upper: Any = M) -> sp.Expr:
    r""":math:`\log\sum_{j=1}^{M} e^{s(j)} - s(p)` for a score function ``s_of(j)``."""
    return sp.log(sp.Sum(sp.exp(s_of(j)), (j, 1, upper))) - s_of(pos)


def row_loss(logits: Any = f, logq: Any = lam) -> sp.Expr:
    """Soft-target InfoNCE of one row."""
    return info_nce(lambda jj: score(jj, logits, logq))


def _zero(expr: Any) -> bool:
    """``expand(expr) == 0`` (cheap) or else ``simplify(expr) == 0``; a SymPy failure inside
    ``simplify`` counts as "not shown"."""
    try:
        return sp.expand(expr) == 0 or bool(sp.simplify(expr) == 0)
    except Exception:  # e.g. StopIteration raised by sum_simplify on some Sum shapes
        return False


def _same(lhs: Any, rhs: Any) -> bool:
    """:func:`difference_is_zero`, with a SymPy failure counted as "not shown"."""
    try:
        return difference_is_zero(lhs, rhs)
    except Exception:
        return False


def _delta_doit(e: sp.Expr) -> sp.Expr:
    """``doit`` only the sums holding a KroneckerDelta (cheap; leaves exp(Sum) alone)."""
    return e.replace(
        lambda x: isinstance(x, sp.Sum) and x.has(sp.KroneckerDelta), lambda x: x.doit()
    )


def _pull_constants(e: sp.Expr) -> sp.Expr:
    """Expand every summand and move factors free of the summation index out of the sum."""
    return e.replace(
        lambda x: isinstance(x, sp.Sum),
        lambda x: sp.factor_terms(sp.Sum(sp.expand(x.function), *x.limits)),
    )


@functools.lru_cache(maxsize=1)
def _common_shift_cancels() -> bool:
    r"""Lemma: :math:`\log\sum_j e^{s_j+\kappa} - (s_p+\kappa) = \log\sum_j e^{s_j} - s_p`
    (symbolic M)."""
    shifted = info_nce(lambda jj: s[jj] + kappa)
    plain = info_nce(lambda jj: s[jj])
    return _zero(sp.expand_log(_pull_constants(sp.expand(shifted)), force=True) - plain)


# ----------------------------------------------------------------------------- 1. one-hot


def _ranking_nce() -> sp.Expr:
    r"""Ma & Collins' ranking NCE for one row: :math:`-\log(e^{\bar s(y_p)}/\sum_j e^{\bar
    s(y_j)})` with :math:`\bar s(y) = f_y/t - \log q_y`."""

    def sbar(jj: Any) -> sp.Expr:
        return f[y[jj]] / t - lam[y[jj]]

    return -sp.log(sp.exp(sbar(p)) / sp.Sum(sp.exp(sbar(j)), (j, 1, M)))


def _one_hot_loss() -> sp.Expr:
    def s_onehot(jj: Any) -> sp.Expr:
        return sp.Sum(sp.KroneckerDelta(c, y[jj]) * (f[c] / t - lam[c]), (c, 1, C))

    return info_nce(s_onehot)


def _one_hot_statement() -> sp.Expr:
    return sp.Eq(_one_hot_loss(), _ranking_nce())


def _prove_one_hot() -> Proof:
    got = index_in_range(_delta_doit(_one_hot_loss()), C, y[j], y[p])
    d = sp.expand_log(got - _ranking_nce(), force=True)
    ok = _zero(d)
    return Proof(
        proved=ok,
        method=(
            "one-hot score Sum_c delta(c, y_j)(f_c/t - log q_c) .doit(), Piecewise resolved for "
            "1 <= y_j <= C; expand_log + simplify(ST-InfoNCE - ranking NCE) == 0"
        ),
        scope="symbolic C, symbolic M",
        assumptions=("alpha_j = e_{y_j}", "1 <= y_j <= C", "q_c > 0 on the labels used"),
    )


# ----------------------------------------------------------------------------- 2. gradient


def _grad_closed() -> sp.Expr:
    z = sp.Sum(sp.exp(score(j)), (j, 1, M))
    w = sp.exp(score(j)) / z
    return (sp.Sum(w * alpha[j, m], (j, 1, M)) - alpha[p, m]) / t


def _grad_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(row_loss(), f[m]), _grad_closed())


def _prove_gradient() -> Proof:
    g = index_in_range(_delta_doit(sp.diff(row_loss(), f[m])), C, m)
    atoms = {sp.exp(score(j)): Ee[j]}
    ok_grad = _zero(_pull_constants(sp.expand(g.xreplace(atoms) - _grad_closed().xreplace(atoms))))
    # sum over classes: interchange the finite double sum, then use sum_m alpha[j, m] = 1
    z = sp.Sum(Ee[j], (j, 1, M))
    swapped = sp.Sum(Ee[j] * alpha[j, m] / z, (j, 1, M), (m, 1, C)).reorder((0, 1))
    fn, lim_m, lim_j = swapped.function, swapped.limits[0], swapped.limits[1]
    total = sp.Sum(sp.factor_terms(sp.Sum(fn, lim_m)), lim_j) - sp.Sum(alpha[p, m], (m, 1, C))
    total = total.xreplace({sp.Sum(alpha[j, m], lim_m): 1, sp.Sum(alpha[p, m], (m, 1, C)): 1})
    ok_zero = _zero(_pull_constants(total))
    return Proof(
        proved=ok_grad and ok_zero,
        method=(
            "diff of the nested Sums w.r.t. f[m], KroneckerDelta sums done, Piecewise resolved for "
            "1 <= m <= C, e^{S_j} as atoms, simplify(diff - closed) == 0; sum over m: Sum.reorder "
            "of the finite double sum, factor_terms, sum_m alpha[j, m] = 1, simplify == 0"
        ),
        scope="symbolic C, symbolic M (one row; the batch mean adds the factor 1/N)",
        assumptions=("t > 0", "sum_c alpha[j, c] = 1 for every candidate (zero-sum part)"),
        detail=f"closed form: {ok_grad}; sums to zero: {ok_zero}",
    )


# ----------------------------------------------------------------------------- 3. shift


def _shift_statement() -> sp.Expr:
    shifted = row_loss(logits=sp.IndexedBase("f_shift", real=True))
    return sp.Eq(
        shifted.xreplace({sp.IndexedBase("f_shift", real=True)[c]: f[c] + kappa}) - row_loss(),
        sp.log(sp.Sum(sp.exp(s[j] + kappa * mu[j] / t), (j, 1, M)))
        - sp.log(sp.Sum(sp.exp(s[j]), (j, 1, M)))
        - kappa * mu[p] / t,
    )


def _prove_shift() -> Proof:
    # (a) the per-row shift f -> f + kappa 1 moves S_j by kappa/t * mu_j, mu_j = sum_c alpha_jc
    moved = score(j, logits=sp.IndexedBase("g", real=True))
    moved = moved.xreplace({sp.IndexedBase("g", real=True)[c]: f[c] + kappa})
    ok_score = _zero(
        _pull_constants(sp.expand(moved - score(j) - kappa / t * sp.Sum(alpha[j, c], (c, 1, C))))
    )
    # (b) "if": equal masses give a common shift, which cancels
    ok_if = _common_shift_cancels()
    # (c) "only if": L(kappa) = log sum_j e^{s_j + kappa mu_j} - s_p - kappa mu_p has
    #     L'' = sum_j w_j (mu_j - mubar)^2 (a w-weighted variance, w_j > 0); constant L forces
    #     L'' = 0, i.e. every mu_j = mubar (a positively weighted sum of squares vanishes only
    #     if every square does)
    e_j = sp.exp(s[j] + kappa * mu[j])
    loss_k = sp.log(sp.Sum(e_j, (j, 1, M))) - s[p] - kappa * mu[p]
    second = sp.diff(loss_k, kappa, 2).xreplace({e_j: Ee[j]})  # E_j := e^{s_j + kappa mu_j}
    w = Ee[j] / sp.Sum(Ee[j], (j, 1, M))
    mbar = sp.Sum(w * mu[j], (j, 1, M))
    terms = sp.Add.make_args(sp.expand(w * (mu[j] - mbar) ** 2))
    variance = sp.Add(*[sp.factor_terms(sp.Sum(term, (j, 1, M))) for term in terms])
    ok_only_if = _zero(sp.together(variance - second))
    ok = ok_score and ok_if and ok_only_if
    return Proof(
        proved=ok,
        method=(
            "S_j(f + kappa 1) - S_j(f) = kappa/t * sum_c alpha_jc (factor_terms, == 0); if: common "
            "additive constant cancels in log-sum-exp minus S_p (expand_log, simplify == 0); only "
            "if: d^2 L/d kappa^2 == sum_j w_j (mu_j - mubar)^2 (together, == 0), a weighted "
            "variance with w_j > 0, which vanishes iff all masses are equal"
        ),
        scope="symbolic C, symbolic M",
        assumptions=("t > 0", "finite logits (so every w_j > 0)"),
        detail=f"score shift: {ok_score}; if: {ok_if}; only if: {ok_only_if}",
    )


# ----------------------------------------------------------------------------- 4. uniform q


def _uniform_statement() -> sp.Expr:
    uni = sp.IndexedBase("u", real=True)
    lhs = row_loss(logq=uni).xreplace({uni[c]: sp.log(1 / C)})
    zero = sp.IndexedBase("z", real=True)
    rhs = row_loss(logq=zero).xreplace({zero[c]: 0})
    return sp.Eq(lhs, rhs)


def _prove_uniform() -> Proof:
    uni = sp.IndexedBase("u", real=True)
    with_q = score(j, logq=uni).xreplace({uni[c]: sp.log(1 / C)})
    zero = sp.IndexedBase("z", real=True)
    without = score(j, logq=zero).xreplace({zero[c]: 0})
    d = _pull_constants(sp.expand(with_q - without))
    d = sp.expand_log(d.xreplace({sp.Sum(alpha[j, c], (c, 1, C)): 1}), force=True)
    ok_const = _zero(d - sp.log(C))
    ok_cancel = _common_shift_cancels()
    return Proof(
        proved=ok_const and ok_cancel,
        method=(
            "S_j(q = 1/C) - S_j(no log q) = log C * sum_c alpha_jc = log C on the simplex "
            "(factor_terms, simplify == 0); a common constant cancels (lemma, simplify == 0)"
        ),
        scope="symbolic C, symbolic M",
        assumptions=("q_c = 1/C", "sum_c alpha_jc = 1 for every candidate"),
        detail=f"constant shift: {ok_const}; cancels: {ok_cancel}",
    )


# ----------------------------------------------------------------------------- 5. degenerate


def _degenerate_statement() -> sp.Expr:
    s0 = sp.Symbol("S_0", real=True)
    return sp.Eq(sp.log(sp.Sum(sp.exp(s0), (j, 1, M))) - s0, sp.log(M))


def _prove_degenerate() -> Proof:
    st = _degenerate_statement()
    got = sp.expand_log(st.lhs.doit(), force=True)
    ok_m = _zero(got - st.rhs)
    ok_one = _zero(got.subs(M, 1))
    return Proof(
        proved=ok_m and ok_one,
        method="Sum.doit of identical terms (M e^{S_0}), expand_log, simplify == 0; M = 1 gives 0",
        scope="symbolic M",
        assumptions=("all candidate scores equal (identical candidates)",),
        detail=f"log M: {ok_m}; M = 1: {ok_one}",
    )


# ----------------------------------------------------------------------------- 6. large K


def _g(cc: Any) -> sp.Expr:
    return f[cc] / t - sp.log(q[cc])


def _lse_f() -> sp.Expr:
    return sp.log(sp.Sum(sp.exp(f[c] / t), (c, 1, C)))


def _expectation_under_q_ok() -> bool:
    """sum_c q_c e^{f_c/t - log q_c} == sum_c e^{f_c/t} (termwise simplify)."""
    lhs = sp.Sum(sp.simplify(q[c] * sp.exp(_g(c))), (c, 1, C))
    return _zero(lhs - sp.Sum(sp.exp(f[c] / t), (c, 1, C)))


def _hard_limit_statement() -> sp.Expr:
    a0, mu_ = sp.symbols("a_0 mu", positive=True)
    ce = -(f[y0] / t - _lse_f())
    return sp.Eq(
        sp.Limit(sp.log(a0 + K * mu_) - sp.log(K), K, sp.oo).subs(
            mu_, sp.Sum(q[c] * sp.exp(_g(c)), (c, 1, C))
        )
        - _g(y0),
        ce + sp.log(q[y0]),
    )


def _prove_hard_limit() -> Proof:
    a0, mu_ = sp.symbols("a_0 mu", positive=True)
    kk = sp.Symbol("K", positive=True)
    # log(a + K mu) - log K = log(mu + a/K) (K (mu + a/K) = a + K mu), which tends to log mu
    ok_lim = _zero(sp.expand(kk * (mu_ + a0 / kk)) - (a0 + kk * mu_)) and _zero(
        sp.limit(sp.log(mu_ + a0 / kk), kk, sp.oo) - sp.log(mu_)
    )
    ok_e = _expectation_under_q_ok()
    limit_expr = -_g(y0) + _lse_f()
    ok_ce = _same(limit_expr, -(f[y0] / t - _lse_f()) + sp.log(q[y0]))
    ok = ok_lim and ok_e and ok_ce
    return Proof(
        proved=ok,
        method=(
            "reduced to the strong law of large numbers: L_K - log K = -S_0 + log(e^{S_0} + K "
            "mean_K e^{S_k}) - log K with mean_K -> mu a.s.; SymPy: log(a + K mu) - log K = "
            "log(mu + a/K) -> log mu; E_{y~q} e^{g_y} = sum_y e^{f_y/t} (termwise simplify); "
            "-g_y0 + log sum e^{f/t} - (CE + log q_y0) == 0. Scores are bounded, so the limit "
            "also holds for E[L_K] (bounded convergence)"
        ),
        scope="symbolic C",
        assumptions=("negatives y_k ~ q i.i.d.", "q_c > 0", "one-hot targets"),
        detail=f"limit: {ok_lim}; expectation: {ok_e}; CE form: {ok_ce}",
    )


def _soft_bound_statement() -> sp.Expr:
    lhs = -sp.Sum(alpha0[c] * _g(c), (c, 1, C)) + sp.log(
        sp.Sum(P[r] * sp.exp(sp.Sum(A[r, c] * _g(c), (c, 1, C))), (r, 1, R))
    )
    soft_ce = -sp.Sum(alpha0[c] * (f[c] / t - _lse_f()), (c, 1, C))
    return sp.Le(lhs, soft_ce + sp.Sum(alpha0[c] * sp.log(q[c]), (c, 1, C)))


def _prove_soft_bound() -> Proof:
    # (i) Jensen's lemma: exp is (strictly) convex
    x = sp.Symbol("x", real=True)
    ok_convex = bool(sp.diff(sp.exp(x), x, 2).is_positive)
    # (ii) E_alpha sum_c alpha_c e^{g_c} = sum_c q_c e^{g_c} for E[alpha] = q (discrete law with
    #      R support points: interchange the finite double sum, sum_r P_r A_rc = q_c)
    multi = sp.Sum(P[r] * A[r, c] * sp.exp(_g(c)), (c, 1, C), (r, 1, R))
    nested = sp.Sum(P[r] * sp.Sum(A[r, c] * sp.exp(_g(c)), (c, 1, C)), (r, 1, R))
    ok_distrib = _same(sp.factor_terms(sp.Sum(multi.function, multi.limits[0])), nested.function)
    sw = multi.reorder((0, 1))
    inner = sp.factor_terms(sp.Sum(sw.function, sw.limits[0]))
    mixed = sp.Sum(inner, sw.limits[1]).xreplace({sp.Sum(A[r, c] * P[r], (r, 1, R)): q[c]})
    ok_mix = _zero(mixed - sp.Sum(q[c] * sp.exp(_g(c)), (c, 1, C)))
    # (iii) = sum_c e^{f_c/t}
    ok_e = _expectation_under_q_ok()
    # (iv) -<alpha0, g> + log sum e^{f/t} == soft CE(alpha0) + <alpha0, log q> on the simplex
    lhs = -sp.Sum(alpha0[c] * _g(c), (c, 1, C)) + _lse_f()
    soft_ce = -sp.Sum(alpha0[c] * (f[c] / t - _lse_f()), (c, 1, C))
    rhs = soft_ce + sp.Sum(alpha0[c] * sp.log(q[c]), (c, 1, C))
    d = _pull_constants(sp.expand(lhs - rhs)).xreplace({sp.Sum(alpha0[c], (c, 1, C)): 1})
    ok_ce = _zero(d)
    ok = ok_convex and ok_distrib and ok_mix and ok_e and ok_ce
    return Proof(
        proved=ok,
        method=(
            "reduced to Jensen's inequality e^{<alpha, g>} <= sum_c alpha_c e^{g_c} on the "
            "simplex (exp'' = exp > 0, strict: equality iff g is constant on supp alpha); "
            "reduction checked symbolically: E_alpha sum_c alpha_c e^{g_c} = sum_c q_c e^{g_c} "
            "(Sum.reorder of the finite double sum, sum_r P_r A_rc = q_c) = sum_c e^{f_c/t}; "
            "-<alpha0, g> + log sum_c e^{f_c/t} - (soft CE + <alpha0, log q>) == 0 on the "
            "simplex; then log and E are monotone"
        ),
        scope=(
            "symbolic C; discrete target law with symbolic R support points (a general law "
            "by the same linearity of expectation)"
        ),
        assumptions=(
            "negatives alpha ~ P_alpha i.i.d. with E[alpha] = q, q_c > 0",
            "targets on the simplex",
            "strictness needs g non-constant on the support of some soft target in supp P",
        ),
        detail=(
            f"convexity: {ok_convex}; distributivity: {ok_distrib}; mixture: {ok_mix}; "
            f"E = sum e^f: {ok_e}; soft CE form: {ok_ce}"
        ),
    )


def _rate_statement() -> sp.Expr:
    lk, linf, s0, mu_, var = sp.symbols("L_K L_infty S_0 mu sigma^2", real=True)
    coeff = sp.exp(s0) / mu_ - var / (2 * mu_**2)
    return sp.Eq(lk - sp.log(K) - linf, coeff / K + sp.O(1 / K**2, (K, sp.oo)))


# ----------------------------------------------------------------------------- 7. extras


def _gather_statement() -> sp.Expr:
    off, i = sp.symbols("o i", integer=True)
    return sp.Eq(info_nce(lambda jj: score(jj), pos=off + i), info_nce(lambda jj: score(jj)))


def _nonneg_statement() -> sp.Expr:
    return sp.Ge(info_nce(lambda jj: s[jj]), 0)


def _prove_nonneg() -> Proof:
    # sum_j E_j = E_p + R with R = sum_j (1 - delta_jp) E_j >= 0 (a sum of non-negative terms)
    rest = sp.Sum((1 - sp.KroneckerDelta(j, p)) * Ee[j], (j, 1, M))
    split = sp.Sum(Ee[j], (j, 1, M)) - Ee[p] - rest
    ok_split = _zero(index_in_range(sp.expand(split).doit(), M, p))
    # ell = log(sum_j E_j) - log E_p = log(1 + R/E_p) >= 0 for R >= 0, E_p > 0
    rr = sp.Symbol("R", nonnegative=True)
    ell = sp.log(Ee[p] + rr) - sp.log(Ee[p])
    ok_form = _zero(sp.expand_log(ell - sp.log(1 + rr / Ee[p]), force=True))
    ok_sign = bool(sp.log(1 + rr / Ee[p]).is_nonnegative)
    ok = ok_split and ok_form and ok_sign
    return Proof(
        proved=ok,
        method=(
            "sum_j e^{S_j} = e^{S_p} + R, R = sum_j (1 - delta_jp) e^{S_j} (doit, Piecewise "
            "resolved for 1 <= p <= M, simplify == 0); R >= 0 as a sum of non-negative terms "
            "(lemma); ell = log(1 + R e^{-S_p}) and SymPy's assumptions give log(1 + R/E_p) >= 0"
        ),
        scope="symbolic M",
        assumptions=("finite scores", "the positive is among the candidates (1 <= p <= M)"),
        detail=f"split: {ok_split}; log1p form: {ok_form}; sign: {ok_sign}",
    )


def _zero_noise_statement() -> sp.Expr:
    masked = sp.Sum(alpha[j, c] * (f[c] / t - sp.log(q[c])), (c, 1, C - 1))
    at_eps = sp.Sum(alpha[j, c] * (f[c] / t - sp.log((1 - eps) * q[c])), (c, 1, C - 1))
    return sp.Eq(
        info_nce(lambda jj: at_eps.xreplace({j: jj})), info_nce(lambda jj: masked.xreplace({j: jj}))
    )


def _prove_zero_noise() -> Proof:
    # WLOG the zero class is class C; no candidate has mass on it, so its term is 0 in both
    masked = sp.Sum(alpha[j, c] * (f[c] / t - sp.log(q[c])), (c, 1, C - 1))
    at_eps = sp.Sum(alpha[j, c] * (f[c] / t - sp.log((1 - eps) * q[c])), (c, 1, C - 1))
    d = sp.expand_log(at_eps - masked, force=True)
    d = _pull_constants(sp.expand(d)).xreplace({sp.Sum(alpha[j, c], (c, 1, C - 1)): 1})
    ok_shift = _zero(d + sp.log(1 - eps))
    ok_cancel = _common_shift_cancels()
    return Proof(
        proved=ok_shift and ok_cancel,
        method=(
            "with alpha_jC = 0 (zero class relabelled to C): S_j(q_eps) - S_j(masked) = "
            "-log(1 - eps) * sum_{c<C} alpha_jc = -log(1 - eps) on the simplex (expand_log, "
            "factor_terms, simplify == 0); a common constant cancels (lemma)"
        ),
        scope="symbolic C, symbolic M",
        assumptions=(
            "q_C = 0 and alpha_jC = 0 for every candidate",
            "q_eps = (1 - eps) q + eps e_C, 0 < eps < 1",
            "targets on the simplex",
        ),
        detail=f"shift: {ok_shift}; cancels: {ok_cancel}",
    )


# ----------------------------------------------------------------------------- catalogue

_SRC = "Hugger & Uhlmann 2024 (arXiv 2404.14076), official code loss.py"

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id=f"{FAMILY}.one_hot_ranking_nce",
        family=FAMILY,
        kind="identity",
        text=(
            "With one-hot targets, soft-target InfoNCE equals Ma & Collins' ranking NCE with "
            "in-batch noise labels and the -log q_y correction."
        ),
        statement=_one_hot_statement,
        source=f"{_SRC} class InfoNCE (research note §1.4.1); Ma & Collins 2018 (arXiv 1809.01812)",
        assumptions=("alpha_j = e_{y_j}", "q_y > 0 for the labels present"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_one_hot,
    ),
    Claim(
        id=f"{FAMILY}.gradient",
        family=FAMILY,
        kind="gradient",
        text=(
            "dL/df_ic = (1/(N t)) (sum_j w_ij alpha_jc - alpha_{pos(i)c}) with w_ij = "
            "softmax_j S_ij, and it sums to 0 over classes for simplex targets."
        ),
        statement=_grad_statement,
        source=f"derived in research note §1.4.5 ({_SRC})",
        assumptions=("t > 0", "simplex candidate targets (for the zero sum)"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_gradient,
    ),
    Claim(
        id=f"{FAMILY}.shift_invariance_iff_equal_mass",
        family=FAMILY,
        kind="identity",
        text=(
            "The loss is invariant under every per-row shift f_i -> f_i + c_i 1 if and only if "
            "all candidate targets have the same total mass (true on the simplex)."
        ),
        statement=_shift_statement,
        source=f"research note §1.4.2 (derived from {_SRC})",
        assumptions=("t > 0", "finite logits"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_shift,
        notes="only-if direction: the precise and production legs exhibit counterexamples",
    ),
    Claim(
        id=f"{FAMILY}.uniform_noise_noop",
        family=FAMILY,
        kind="identity",
        text=(
            "A uniform noise distribution q = 1/C leaves the loss unchanged (the log q "
            "correction is a no-op)."
        ),
        statement=_uniform_statement,
        source=f"research note §1.4.3 (derived from {_SRC})",
        assumptions=("simplex candidate targets",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_uniform,
    ),
    Claim(
        id=f"{FAMILY}.degenerate_batches",
        family=FAMILY,
        kind="identity",
        text="If all M candidates are identical the loss is log M for any logits; M = 1 gives 0.",
        statement=_degenerate_statement,
        source=f"research note §1.4.4 (derived from {_SRC})",
        assumptions=("identical candidate targets",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_degenerate,
    ),
    Claim(
        id=f"{FAMILY}.large_k_hard_limit",
        family=FAMILY,
        kind="limit",
        text=(
            "With hard targets and K negatives drawn from q, L_K - log K -> CE(f/t, y0) + "
            "log q_y0 as K -> infinity (CE plus a parameter-free constant)."
        ),
        statement=_hard_limit_statement,
        source="derived in research note §1.5 (hard-target case)",
        assumptions=("negatives i.i.d. from q", "q_c > 0", "one-hot targets"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_hard_limit,
    ),
    Claim(
        id=f"{FAMILY}.large_k_soft_below_soft_ce",
        family=FAMILY,
        kind="inequality",
        text=(
            "With soft targets and E[alpha] = q, the large-K limit -<alpha0, g> + log E e^{<alpha, "
            "g>} is <= soft CE + <alpha0, log q>, with equality for one-hot targets and strict "
            "inequality for soft ones: soft-target InfoNCE does not converge to soft-target CE."
        ),
        statement=_soft_bound_statement,
        source="derived in research note §1.5 (soft-target case)",
        assumptions=(
            "negatives i.i.d. from P_alpha with E[alpha] = q > 0",
            "g = f/t - log q not constant on the support of the soft targets (strictness)",
        ),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_soft_bound,
    ),
    Claim(
        id=f"{FAMILY}.large_k_rate",
        family=FAMILY,
        kind="asymptotic",
        text=(
            "E[L_K] - log K approaches the large-K limit at rate 1/K with coefficient "
            "e^{S_0}/mu - Var(e^S)/(2 mu^2), mu = E e^S, S = <alpha, g>."
        ),
        statement=_rate_statement,
        source=(
            "delta method (research note §6.5; Nowozin 2018) applied to the large-K form of "
            "research note §1.5"
        ),
        assumptions=("negatives i.i.d. from a discrete target law", "fixed positive alpha0"),
        evidence=("precise",),
        notes=(
            "no symbolic leg: the O(1/K^2) remainder is not derived; checked by exact enumeration"
        ),
    ),
    Claim(
        id=f"{FAMILY}.gathered_consistency",
        family=FAMILY,
        kind="algorithmic",
        text=(
            "Per-rank losses with all-gathered candidates and offset N*rank reproduce the rows of "
            "the loss on the global batch; candidates = targets with offset 0 is the local loss."
        ),
        statement=_gather_statement,
        source=(
            "official code loss.py / train_engine.py: concat_all_gather, labels arange(N) + "
            "N*rank (research note §5.2)"
        ),
        assumptions=("equal local batch sizes on every rank (drop_last)",),
        evidence=("production",),
    ),
    Claim(
        id=f"{FAMILY}.nonnegative",
        family=FAMILY,
        kind="inequality",
        text=(
            "Every row loss is >= 0 (> 0 when M >= 2), so the InfoNCE mutual-information "
            "estimate log M - L never exceeds log M."
        ),
        statement=_nonneg_statement,
        source=(
            "standard InfoNCE ceiling (van den Oord et al. 2018; Poole et al. 2019), research "
            "note §6.2-§6.3"
        ),
        assumptions=("finite scores", "the positive is one of the candidates"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_nonneg,
    ),
    Claim(
        id=f"{FAMILY}.zero_noise_masking",
        family=FAMILY,
        kind="identity",
        text=(
            "For a class with q_c = 0 and no candidate mass, the masked loss (0 log 0 := 0) equals "
            "the loss at q_eps = (1 - eps) q + eps e_c for every eps in (0, 1), hence its limit."
        ),
        statement=_zero_noise_statement,
        source=(
            "this library's zero-probability policy; the official code gives NaN (research "
            "note §5.3)"
        ),
        assumptions=("no candidate puts mass on the zero-probability class", "simplex targets"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_zero_noise,
    ),
)
