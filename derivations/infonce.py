r"""InfoNCE / ranking-NCE family: prediction formulas, SymPy definitions and claims.

Prediction functions (used by other modules; pure SymPy / pure Python, accept SymPy symbols or
plain numbers):

* :func:`delta_method_log_mean` -- second-order delta method for :math:`E\log\bar W_n`.
* :func:`chi2_divergence` -- :math:`\chi^2(p\|q) = \sum_j p_j^2/q_j - 1`.
* :func:`sampled_softmax_loss_bias` -- :math:`-\chi^2(p\|q)/(2m)`.
* :func:`sampled_softmax_grad_bias` -- :math:`(p_j/m)(1 + \chi^2 - p_j/q_j)`.
* :func:`optimal_critic_gap` -- :math:`\chi^2/(2K)`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sympy as sp

from derivations._claim import Claim, Proof

# ---------------------------------------------------------------------------------------------
# Prediction functions
# ---------------------------------------------------------------------------------------------


def delta_method_log_mean(mu: Any, sigma2: Any, kappa3: Any, n: Any, order: int = 2) -> Any:
    r"""Delta-method expansion of :math:`E\log(\frac1n\sum_{i=1}^n W_i)` for i.i.d. :math:`W_i > 0`
    with mean :math:`\mu`, variance :math:`\sigma^2`, third cumulant :math:`\kappa_3`:

    .. math:: \log\mu - \frac{\sigma^2}{2n\mu^2}
              + \frac{1}{n^2}\Big(\frac{\kappa_3}{3\mu^3} - \frac{3\sigma^4}{4\mu^4}\Big)

    ``order=1`` keeps only the :math:`1/n` term. Source: Nowozin 2018 (ICLR, "Debiasing
    evidence approximations"), §3 asymptotic bias of the importance-weighted bound (recalled,
    research note §6.5); Burda et al. 2016 (IWAE). Re-derived symbolically in
    :func:`delta_series_coefficients`.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    out = sp.log(mu) - sigma2 / (2 * n * mu**2)
    if order == 2:
        out = out + (kappa3 / (3 * mu**3) - sp.Rational(3, 4) * sigma2**2 / mu**4) / n**2
    return out


def chi2_divergence(p: Sequence[Any], q: Sequence[Any]) -> Any:
    r""":math:`\chi^2(p\|q) = \sum_j p_j^2/q_j - 1` (p, q distributions of equal length)."""
    if len(p) != len(q):
        raise ValueError(f"p and q must have equal length, got {len(p)} and {len(q)}")
    return sp.Add(*[sp.sympify(pj) ** 2 / sp.sympify(qj) for pj, qj in zip(p, q, strict=True)]) - 1


def sampled_softmax_loss_bias(p: Sequence[Any], q: Sequence[Any], m: Any) -> Any:
    r"""Leading bias of the sampled-softmax loss with :math:`m` proposal samples from :math:`q`
    (model distribution :math:`p`): :math:`-\chi^2(p\|q)/(2m)` (Bengio & Senécal 2008;
    Blanc & Rendle 2018)."""
    return -chi2_divergence(p, q) / (2 * sp.sympify(m))


def sampled_softmax_grad_bias(p: Sequence[Any], q: Sequence[Any], m: Any, j: int) -> Any:
    r"""Leading bias of the sampled-softmax logit-gradient, class ``j`` (0-based):
    :math:`\frac{p_j}{m}\big(1 + \chi^2(p\|q) - p_j/q_j\big)`."""
    pj, qj = sp.sympify(p[j]), sp.sympify(q[j])
    return pj / sp.sympify(m) * (1 + chi2_divergence(p, q) - pj / qj)


def optimal_critic_gap(chi2: Any, k: Any) -> Any:
    r"""Leading term of :math:`I(X;Y) - I_{NCE}(f^*)` with :math:`K` samples: :math:`\chi^2/(2K)`,
    where :math:`\chi^2 = \chi^2(p(x,y)\|p(x)p(y))`."""
    return sp.sympify(chi2) / (2 * sp.sympify(k))


# ---------------------------------------------------------------------------------------------
# Symbols and definitions
# ---------------------------------------------------------------------------------------------

K = sp.Symbol("K", integer=True, positive=True)  # batch size / number of samples
n = sp.Symbol("n", integer=True, positive=True)  # number of candidates (positive first)
B = sp.Symbol("B", integer=True, positive=True)  # batch size of in-batch InfoNCE
i, j, k, m = sp.symbols("i j k m", integer=True)
f = sp.IndexedBase("f", real=True)  # critic values f(x_i, y_j)
s = sp.IndexedBase("s", real=True)  # candidate scores / similarities
lq = sp.IndexedBase("lq", real=True)  # log noise probabilities log q
t = sp.Symbol("t", positive=True)  # temperature
c = sp.Symbol("c", real=True)  # a constant shift
mu = sp.Symbol("mu", positive=True)
sigma2 = sp.Symbol("sigma2", positive=True)
kappa3, kappa4, kappa5, kappa6 = sp.symbols("kappa3 kappa4 kappa5 kappa6", real=True)
chi2 = sp.Symbol("chi2", nonnegative=True)
I_XY = sp.Symbol("I_XY", real=True)  # mutual information I(X;Y)


def info_nce_estimator(size: Any = K) -> Any:
    r"""Poole et al.'s :math:`I_{NCE}` for one batch of ``size`` pairs and critic ``f``:
    :math:`\frac1K\sum_i \log\frac{e^{f_{ii}}}{\frac1K\sum_j e^{f_{ij}}}`."""
    inner = sp.Sum(sp.exp(f[i, j]), (j, 1, size)) / size
    return sp.Sum(f[i, i] - sp.log(inner), (i, 1, size)) / size


def ranking_nce_row(num: Any = n, temp: Any = t) -> Any:
    r"""One row of ranking NCE with temperature: candidates :math:`1..n`, positive first,
    :math:`\bar s_k = s_k/t - \log q_k`, :math:`\ell = -\bar s_1 + \log\sum_k e^{\bar s_k}`."""
    return -(s[1] / temp - lq[1]) + sp.log(sp.Sum(sp.exp(s[k] / temp - lq[k]), (k, 1, num)))


# ---------------------------------------------------------------------------------------------
# 1. log K ceiling
# ---------------------------------------------------------------------------------------------


def _log_k_statement() -> Any:
    return sp.Le(info_nce_estimator(), sp.log(K))


def _prove_log_k() -> Proof:
    # Lemma (sum of positive terms): sum_j exp(f_ij) = exp(f_ii) + R_i with R_i >= 0.
    a = sp.Symbol("f_ii", real=True)
    r = sp.Symbol("R_i", nonnegative=True)
    summand = a - sp.log((sp.exp(a) + r) / K)
    reduced = sp.log(1 + r * sp.exp(-a))
    # log K - summand = log(e^a + R) - a = log((e^a + R) e^{-a}) = log(1 + R e^{-a})
    gap = sp.expand_log(sp.log(K) - summand, force=True)
    prod = (sp.exp(a) + r) * sp.exp(-a)
    step1 = bool(
        sp.expand(gap - sp.expand_log(sp.log(prod), force=True)) == 0
        and sp.expand(prod - (1 + r * sp.exp(-a))) == 0
    )
    step2 = bool(reduced.is_nonnegative)  # log(1 + x) >= 0 for x >= 0
    # averaging K summands each <= log K gives <= log K
    step3 = bool(sp.simplify(sp.Sum(sp.log(K), (i, 1, K)).doit() / K - sp.log(K)) == 0)
    return Proof(
        proved=step1 and step2 and step3,
        method=(
            "reduced to: sum_j e^{f_ij} = e^{f_ii} + R_i with R_i >= 0 (sum of positive terms); "
            "SymPy: log K - summand == log((e^{f_ii} + R_i) e^{-f_ii}) == log(1 + R_i e^{-f_ii}) "
            "(expand_log, expand), which "
            "SymPy's assumptions show is >= 0; the mean of K summands <= log K is <= log K"
        ),
        scope="symbolic K (any critic f, any batch)",
        assumptions=("K >= 1 integer", "f real (finite)"),
    )


# ---------------------------------------------------------------------------------------------
# 3. optimal-critic gap: leading term (formal expansion)
# ---------------------------------------------------------------------------------------------


def _sample_mean_moments(h: Any, cumulants: dict[int, Any], order: int) -> dict[int, Any]:
    r"""Central moments :math:`E\bar\delta^r`, ``1 <= r <= order``, of the mean of ``1/h`` i.i.d.
    variables with cumulants ``cumulants[r]`` (``r >= 2``; the mean has cumulants
    :math:`\kappa_r h^{r-1}` and mean 0), by the moment-cumulant recursion
    :math:`m_r = \sum_{i=1}^{r}\binom{r-1}{i-1}\kappa_i m_{r-i}`, :math:`m_0 = 1`."""
    kap = {1: sp.Integer(0)}
    kap.update({r: cumulants[r] * h ** (r - 1) for r in range(2, order + 1)})
    mom: dict[int, Any] = {0: sp.Integer(1)}
    for r in range(1, order + 1):
        mom[r] = sp.expand(
            sum(sp.binomial(r - 1, a - 1) * kap[a] * mom[r - a] for a in range(1, r + 1))
        )
    del mom[0]
    return mom


def _taylor(expr: Any, x: Any, order: int) -> Any:
    """Taylor polynomial of ``expr`` at ``x = 0`` through ``x**order`` (by differentiation)."""
    out, d = sp.Integer(0), expr
    for r in range(order + 1):
        out += d.subs(x, 0) / sp.factorial(r) * x**r
        d = sp.diff(d, x)
    return sp.expand(out)


def _zero(expr: Any) -> bool:
    """True when ``expr`` is identically 0 as a rational function (together + cancel)."""
    return bool(sp.cancel(sp.together(expr)) == 0)


def _formal_expectation(fn_series: Any, x: Any, moments: dict[int, Any], scale: Any) -> Any:
    """E[g(D/scale)] for the Taylor polynomial ``fn_series`` of g in ``x``, moments of D."""
    poly = sp.Poly(fn_series, x)
    out = sp.Integer(0)
    for (r,), coeff in poly.terms():
        out += coeff * (1 if r == 0 else moments[r] / scale**r)
    return sp.expand(out)


_ORDER = 6  # Taylor / cumulant truncation: moments of order >= 5 are O(h^3)


def _gap_leading_statement() -> Any:
    return sp.Eq(
        sp.Symbol("I_XY") - sp.Symbol("I_NCE_opt"),
        optimal_critic_gap(chi2, K) + sp.O(K ** (-2), (K, sp.oo)),
    )


def _prove_gap_leading() -> Proof:
    h = sp.Symbol("h", positive=True)  # h = 1/K
    v = sp.Symbol("v", nonnegative=True)  # Var_{p(y)} r(x, y) = m2(x) - 1
    x = sp.Symbol("x")
    cum = {2: v, 3: kappa3, 4: kappa4, 5: kappa5, 6: kappa6}
    mom = _sample_mean_moments(h, cum, _ORDER)
    slogs = _taylor((1 + x) * sp.log(1 + x), x, _ORDER)
    e_gap = _formal_expectation(slogs, x, mom, 1)
    ok_const = e_gap.coeff(h, 0) == 0
    ok_lead = _zero(e_gap.coeff(h, 1) - v / 2)
    # chi^2 averaging for a joint P[a, b] on a symbolic N_X x N_Y support with marginals
    # p_X[a] = sum_b P[a, b] and sum_a p_X[a] = 1
    a, b = sp.symbols("a b", integer=True)
    nx, ny = sp.symbols("N_X N_Y", integer=True, positive=True)
    pj, px, py = (sp.IndexedBase(nm, positive=True) for nm in ("P", "p_X", "p_Y"))
    ratio = pj[a, b] / (px[a] * py[b])
    mean_r = sp.factor_terms(sp.Sum(sp.expand(py[b] * ratio), (b, 1, ny)))
    ok_mean = _zero(mean_r.subs(sp.Sum(pj[a, b], (b, 1, ny)), px[a]) - 1)
    inner = sp.Sum(sp.expand(px[a] * py[b] * ratio**2), (b, 1, ny))
    ok_dist = _zero(
        sp.factor_terms(sp.Sum(px[a] * py[b] * ratio**2, (b, 1, ny)))
        - px[a] * sp.Sum(py[b] * ratio**2, (b, 1, ny))
    )
    averaged = (sp.Sum(inner, (a, 1, nx)) - sp.Sum(px[a], (a, 1, nx))).subs(
        sp.Sum(px[a], (a, 1, nx)), 1
    )
    chi = sp.Sum(pj[a, b] ** 2 / (px[a] * py[b]), (b, 1, ny), (a, 1, nx)) - 1
    ok_chi = ok_dist and bool(sp.simplify(averaged - chi) == 0)
    ok_pred = _zero(optimal_critic_gap(chi2, 1 / h) - chi2 * h / 2)
    return Proof(
        proved=bool(ok_const and ok_lead and ok_mean and ok_chi and ok_pred),
        method=(
            "I - I_NCE(f*) = E_x E_{Q} [S log S] with S = (1/K) sum_j r(x, y_j), y_j iid p(y) "
            "(change of measure, symmetry); SymPy: Taylor polynomial of (1+x)log(1+x) to order 6, "
            "moments of the mean from cumulants kappa_r K^(1-r) (moment-cumulant recursion): the K^0 term vanishes and the K^-1 "
            "coefficient is Var_{p(y)}(r)/2; E_{p(y)} r = 1 and E_x Var(r) = chi^2(P_XY||P_X P_Y) "
            "with SymPy Sums over a symbolic N_X x N_Y support (distributivity checked, "
            "sum_a p_X(a) = 1 substituted)"
        ),
        scope="formal expansion in 1/K (leading coefficient) with symbolic moments; chi^2 "
        "averaging on a symbolic N_X x N_Y support",
        assumptions=(
            "r = p(y|x)/p(y) bounded (finite support, p > 0)",
            "formal series: the O(K^-2) remainder is not bounded symbolically",
        ),
    )


# ---------------------------------------------------------------------------------------------
# 4. delta method for E log mean
# ---------------------------------------------------------------------------------------------


def _delta_series_statement() -> Any:
    return sp.Eq(
        sp.Symbol("E_log_mean_n"),
        delta_method_log_mean(mu, sigma2, kappa3, n) + sp.O(n ** (-3), (n, sp.oo)),
    )


@functools.lru_cache(maxsize=4)
def delta_series_coefficients(order: int = _ORDER) -> tuple[Any, Any, Any]:
    r"""SymPy derivation of the coefficients of :math:`n^0, n^{-1}, n^{-2}` in the formal
    expansion of :math:`E\log\bar W_n` (Taylor of :math:`\log(1+x)` around :math:`\mu`,
    moments of the sample mean from its cumulants)."""
    h = sp.Symbol("h", positive=True)
    x = sp.Symbol("x")
    cum = {2: sigma2, 3: kappa3, 4: kappa4, 5: kappa5, 6: kappa6}
    mom = _sample_mean_moments(h, cum, order)
    logs = _taylor(sp.log(1 + x), x, order)
    e = _formal_expectation(logs, x, mom, mu)
    return (sp.log(mu) + e.coeff(h, 0), e.coeff(h, 1), e.coeff(h, 2))


def _prove_delta_series() -> Proof:
    c0, c1, c2 = delta_series_coefficients()
    _, c1_4, c2_4 = delta_series_coefficients(4)  # moments of order 5, 6 do not reach n^-2
    h = sp.Symbol("h", positive=True)
    closed = sp.expand(delta_method_log_mean(mu, sigma2, kappa3, 1 / h))
    derived = c0 + c1 * h + c2 * h**2
    ok = _zero(closed - derived)
    ok4 = _zero(c1 - c1_4) and _zero(c2 - c2_4)
    return Proof(
        proved=bool(ok and ok4),
        method=(
            "SymPy: Taylor polynomial of log(1+x) to order 6, moments of the centred sample "
            "mean from its cumulants kappa_r n^(1-r) (moment-cumulant recursion), coefficients of n^0, n^-1, "
            "n^-2 collected; simplify(closed form - derived) == 0; truncation at order 4 gives "
            "the same coefficients"
        ),
        scope="formal expansion in 1/n with symbolic mu > 0, sigma^2, kappa_3..kappa_6, n",
        assumptions=(
            "W_i i.i.d. > 0 with finite moments",
            "moment of order r of the sample mean is O(n^-ceil(r/2)) (standard)",
            "formal series: the O(n^-3) remainder is not bounded symbolically",
        ),
    )


# ---------------------------------------------------------------------------------------------
# 5. sampled softmax
# ---------------------------------------------------------------------------------------------

Csym = sp.Symbol("C", integer=True, positive=True)
p_ = sp.IndexedBase("p", positive=True)
q_ = sp.IndexedBase("q", positive=True)
msym = sp.Symbol("m", integer=True, positive=True)


def _chi2_sum() -> Any:
    return sp.Sum(p_[k] ** 2 / q_[k], (k, 1, Csym)) - 1


def _ss_expansion_statement() -> Any:
    return sp.And(
        sp.Eq(sp.Symbol("bias_loss"), -_chi2_sum() / (2 * msym)),
        sp.Eq(
            sp.Symbol("bias_grad_j"),
            p_[j] / msym * (1 + _chi2_sum() - p_[j] / q_[j]),
        ),
    )


def _apply_simplex(expr: Any) -> Any:
    """Replace Sum(p_k, (k,1,C)) and Sum(q_k, (k,1,C)) by 1 (both are distributions)."""
    return expr.subs({sp.Sum(p_[k], (k, 1, Csym)): 1, sp.Sum(q_[k], (k, 1, Csym)): 1})


def _prove_ss_expansion() -> Proof:
    from derivations._sym import index_in_range

    z = sp.Symbol("Z", positive=True)  # full partition function; p_k = e^{o_k} / Z
    # one proposal draw s ~ q: W = e^{o_s}/q_s = Z p_s/q_s;  A_j = 1[s=j] W / Z;  B = W / Z
    e_w = sp.factor_terms(sp.Sum(q_[k] * z * p_[k] / q_[k], (k, 1, Csym)))
    e_w2 = sp.factor_terms(sp.expand(sp.Sum(q_[k] * (z * p_[k] / q_[k]) ** 2, (k, 1, Csym))))
    mean_w = _apply_simplex(e_w)
    var_w = sp.expand(_apply_simplex(e_w2) - mean_w**2)
    # loss: first-order delta term -Var(W)/(2 m mu^2) (see delta_method_log_mean)
    _, c1, _ = delta_series_coefficients(4)
    loss_bias = c1.subs({sigma2: var_w, mu: mean_w}) / msym
    ok_loss = _zero(loss_bias + _chi2_sum() / (2 * msym))
    # gradient: p_hat_j = Abar_j / Bbar; second-order Taylor of a/b around (p_j, 1)
    a0, b0, da, db, eps = sp.symbols("a0 b0 da db epsilon")
    ratio = _taylor((a0 + eps * da) / (b0 + eps * db), eps, 2).subs(eps, 1)
    # E[da] = E[db] = 0; E[da db] = Cov(A, B)/m; E[db^2] = Var(B)/m
    e_ab = index_in_range(
        sp.Sum(
            q_[k] * sp.KroneckerDelta(k, j) * (p_[k] / q_[k]) * (p_[k] / q_[k]), (k, 1, Csym)
        ).doit(),
        Csym,
        j,
    )
    e_a = index_in_range(
        sp.Sum(q_[k] * sp.KroneckerDelta(k, j) * p_[k] / q_[k], (k, 1, Csym)).doit(), Csym, j
    )
    e_b = _apply_simplex(sp.Sum(q_[k] * p_[k] / q_[k], (k, 1, Csym)).doit())
    cov_ab = sp.expand(e_ab - e_a * e_b) / msym
    var_b = sp.expand(var_w / z**2) / msym
    expect = (
        ratio.subs({da * db: sp.Symbol("CAB"), db**2: sp.Symbol("VB")})
        .subs({da: 0, db: 0})
        .subs({sp.Symbol("CAB"): cov_ab, sp.Symbol("VB"): var_b, a0: e_a, b0: e_b})
    )
    grad_bias = expect - e_a
    want = p_[j] / msym * (1 + _chi2_sum() - p_[j] / q_[j])
    ok_grad = _zero(grad_bias - want)
    ok_var = _zero(var_w / z**2 - _chi2_sum())
    return Proof(
        proved=bool(ok_loss and ok_grad and ok_var),
        method=(
            "W = e^{o_s}/q_s, s ~ q: SymPy Sums give E W = Z and Var W / Z^2 = sum p^2/q - 1 "
            "(symbolic C); loss: first-order delta coefficient -Var/(2 m mu^2); gradient: "
            "second-order Taylor of A/B around (p_j, 1) with Cov(A_j, B) = (p_j^2/q_j - p_j)/m "
            "and Var B = chi^2/m; derived - closed form cancels to 0"
        ),
        scope="symbolic C, m; leading (second-order delta) terms of the bias",
        assumptions=(
            "q_k > 0 for all classes",
            "m proposal samples i.i.d. from q over all C classes",
            "estimator Z_hat = (1/m) sum e^{o_s}/q_s",
            "formal expansion: the O(m^-2) remainder is not bounded symbolically",
        ),
    )


def _ss_iff_statement() -> Any:
    return sp.Equivalent(sp.Symbol("bias_grad_j_leading_is_0_for_all_j"), sp.Symbol("q_equals_p"))


def _prove_ss_iff() -> Proof:
    # (<=) q = p: chi^2 = sum p - 1 = 0 and p_j/q_j = 1
    chi_at_p = _apply_simplex(sp.Sum(p_[k] ** 2 / p_[k], (k, 1, Csym)).doit()) - 1
    grad_at_p = (p_[j] / msym * (1 + _chi2_sum() - p_[j] / q_[j])).subs(q_, p_)
    grad_at_p = _apply_simplex(sp.simplify(grad_at_p.doit()))
    ok_back = sp.simplify(chi_at_p) == 0 and sp.simplify(grad_at_p) == 0
    # (=>) all leading biases zero with p_j > 0  =>  q_j = p_j / (1 + chi^2) for every j;
    # summing over j: 1 = 1/(1 + chi^2)  =>  chi^2 = 0  =>  q = p.
    x2 = sp.Symbol("X", nonnegative=True)  # the (unknown) value of chi^2
    qj_sym = sp.Symbol("q_j", positive=True)
    qj = sp.solve(sp.Eq(1 + x2 - p_[j] / qj_sym, 0), qj_sym)
    ok_solve = len(qj) == 1 and sp.simplify(qj[0] - p_[j] / (1 + x2)) == 0
    total = _apply_simplex(sp.factor_terms(sp.Sum(p_[k] / (1 + x2), (k, 1, Csym))))
    sol = sp.solve(sp.Eq(total, 1), x2)
    ok_fwd = ok_solve and sol == [0]
    # the leading loss bias -chi^2/(2m) vanishes iff chi^2 = 0 iff q = p:
    # chi^2 = sum (p - q)^2 / q (uses sum p = sum q = 1), a sum of non-negative terms
    pearson = sp.Sum(sp.expand((p_[k] - q_[k]) ** 2 / q_[k]), (k, 1, Csym))
    pearson = _apply_simplex(sp.factor_terms(pearson.expand()))
    ok_pearson = sp.simplify(sp.expand(pearson) - sp.expand(_chi2_sum())) == 0
    return Proof(
        proved=bool(ok_back and ok_fwd and ok_pearson),
        method=(
            "(<=) SymPy: at q = p, chi^2 = sum p - 1 = 0 and 1 + chi^2 - p_j/q_j = 0; "
            "(=>) solving 1 + X - p_j/q_j = 0 gives q_j = p_j/(1+X), summing over j with "
            "sum q = sum p = 1 forces X = 0, i.e. q = p; chi^2 = sum (p-q)^2/q >= 0 with "
            "equality iff q = p (identity checked by SymPy)"
        ),
        scope="symbolic C, m; statement about the leading-order bias terms",
        assumptions=("p_j > 0 (p is a softmax)", "q_j > 0", "sum p = sum q = 1"),
    )


# ---------------------------------------------------------------------------------------------
# 6. ranking NCE consistency
# ---------------------------------------------------------------------------------------------


def ranking_population_objective(
    p: Sequence[Any], q: Sequence[Any], scores: Sequence[Any], num_noise: int
) -> Any:
    r"""Population ranking-NCE objective for one context :math:`x` (exact, by enumeration):
    :math:`E_{y_0\sim p}E_{y_{1..K}\sim q}\big[-\bar s_{y_0}+\log\sum_{k=0}^K e^{\bar s_{y_k}}\big]`,
    :math:`\bar s_y = s_y - \log q_y`. Pure SymPy (used by the fixed-size proofs)."""
    import itertools

    ncls = len(p)
    sbar = [scores[y] - sp.log(q[y]) for y in range(ncls)]
    total = sp.Integer(0)
    for y0 in range(ncls):
        for tup in itertools.product(range(ncls), repeat=num_noise):
            w = p[y0] * sp.Mul(*[q[y] for y in tup])
            ys = (y0, *tup)
            total += w * (-sbar[y0] + sp.log(sp.Add(*[sp.exp(sbar[y]) for y in ys])))
    return total


_RANKING_CASES = ((2, 1), (2, 2), (3, 1))


def _ranking_consistency_statement() -> Any:
    x, y = sp.symbols("x y")
    return sp.Eq(
        sp.Function("s_star")(x, y),
        sp.log(sp.Function("p")(y, x)) + sp.Function("c")(x),
    )


def _prove_ranking_consistency() -> Proof:
    c0 = sp.Symbol("c0", real=True)
    ok = True
    for ncls, kk in _RANKING_CASES:
        p = list(sp.symbols(f"p1:{ncls}", positive=True))
        p.append(1 - sum(p))
        q = list(sp.symbols(f"q1:{ncls}", positive=True))
        q.append(1 - sum(q))
        sc = sp.symbols(f"s1:{ncls + 1}", real=True)
        obj = ranking_population_objective(p, q, sc, kk)
        star = {sc[y]: sp.log(p[y]) + c0 for y in range(ncls)}
        for y in range(ncls):
            g = sp.diff(obj, sc[y]).subs(star)
            g = sp.simplify(sp.together(sp.expand_log(g, force=True)))
            ok &= bool(g == 0)
    return Proof(
        proved=ok,
        method=(
            "exact population objective J(s) (enumeration over y_0 ~ p(.|x) and the K noise "
            "labels ~ q) built in SymPy; dJ/ds_y at s = log p + c simplifies to 0 for every y; "
            "J is convex in s (non-negative mixture of logsumexp of affine maps minus a linear "
            "term, Lemma: logsumexp is convex), so this stationary point is a global minimiser"
        ),
        scope="fixed (C, K) in {(2,1), (2,2), (3,1)} with symbolic p(.|x), q, c(x)",
        assumptions=("p(y|x) > 0, q(y) > 0 on all C labels",),
    )


# ---------------------------------------------------------------------------------------------
# 7. gradient, log-q no-op, identical keys
# ---------------------------------------------------------------------------------------------


def _logit_gradient_closed() -> Any:
    z = sp.Sum(sp.exp(s[k] / t - lq[k]), (k, 1, n))
    return (sp.exp(s[m] / t - lq[m]) / z - sp.KroneckerDelta(m, 1)) / t


def _logit_gradient_statement() -> Any:
    return sp.Eq(sp.Derivative(ranking_nce_row(), s[m]), _logit_gradient_closed())


def _prove_logit_gradient() -> Proof:
    from derivations._sym import difference_is_zero, index_in_range

    g = index_in_range(sp.diff(ranking_nce_row(), s[m]).doit(), n, m)
    ok = difference_is_zero(g, _logit_gradient_closed())
    return Proof(
        proved=ok,
        method="diff of the Sum, Piecewise resolved for 1<=m<=n, simplify(diff - closed) == 0",
        scope="symbolic number of candidates n = K + 1, temperature t, log q",
        assumptions=("n >= 1 integer", "1 <= m <= n", "t > 0", "s, log q real"),
    )


def _uniform_logq_statement() -> Any:
    base = -s[1] + sp.log(sp.Sum(sp.exp(s[k]), (k, 1, n)))
    shifted = -(s[1] - c) + sp.log(sp.Sum(sp.exp(s[k] - c), (k, 1, n)))
    return sp.Eq(shifted, base)


def _prove_uniform_logq() -> Proof:
    st = _uniform_logq_statement()
    lhs = sp.factor_terms(sp.expand(st.lhs))
    ok = sp.simplify(sp.expand_log(lhs - st.rhs, force=True)) == 0
    return Proof(
        proved=bool(ok),
        method="exp(s - c) = e^{-c} e^{s} factored out of the Sum (factor_terms), expand_log, "
        "simplify(lhs - rhs) == 0",
        scope="symbolic number of candidates n and constant c = log q (uniform q)",
        assumptions=("n >= 1", "c real (log of a constant q)"),
    )


def _identical_keys_statement() -> Any:
    z = sp.Symbol("z", real=True)
    return sp.Eq(-z + sp.log(sp.Sum(sp.exp(z), (j, 1, B))), sp.log(B))


def _prove_identical_keys() -> Proof:
    st = _identical_keys_statement()
    ok = sp.simplify(sp.expand_log(st.lhs.doit(), force=True) - st.rhs) == 0
    return Proof(
        proved=bool(ok),
        method="Sum of B equal terms = B e^z (doit), expand_log, simplify == 0",
        scope="symbolic B (all B candidate logits equal)",
        assumptions=("B >= 1 integer",),
    )


def _mi_bound_statement() -> Any:
    return sp.Le(sp.Symbol("E[I_NCE(f)]"), I_XY)


def _gap_asymptotic_statement() -> Any:
    return sp.Eq(sp.Limit(K * (I_XY - sp.Symbol("I_NCE_opt")), K, sp.oo), chi2 / 2)


def _ss_loss_statement() -> Any:
    return sp.Eq(
        sp.Symbol("E[L_sampled] - L"), -_chi2_sum() / (2 * msym) + sp.O(msym ** (-2), (msym, sp.oo))
    )


def _ss_grad_statement() -> Any:
    return sp.Eq(
        sp.Symbol("E[p_hat_j] - p_j"),
        p_[j] / msym * (1 + _chi2_sum() - p_[j] / q_[j]) + sp.O(msym ** (-2), (msym, sp.oo)),
    )


def _symmetric_statement() -> Any:
    la, lb = sp.symbols("L_a_to_b L_b_to_a", real=True)
    return sp.Eq(sp.Symbol("L_sym"), (la + lb) / 2)


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------

_FAM = "infonce"

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="infonce.log_k_ceiling",
        family=_FAM,
        kind="inequality",
        text="For any critic, every summand of the InfoNCE estimate is <= log K, so I_NCE <= log K.",
        statement=_log_k_statement,
        source="Poole et al. 2019 (arXiv 1905.06922) §2.3; van den Oord et al. 2018 "
        "(arXiv 1807.03748) §2.3",
        assumptions=("any real critic f", "batch of K pairs"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_log_k,
    ),
    Claim(
        id="infonce.mi_lower_bound",
        family=_FAM,
        kind="inequality",
        text="For any critic, E[I_NCE] over K i.i.d. pairs is <= I(X;Y).",
        statement=_mi_bound_statement,
        source="Poole et al. 2019 (arXiv 1905.06922) §2.3, eq. (12); van den Oord et al. 2018 "
        "(arXiv 1807.03748) §2.3",
        assumptions=("(x_i, y_i) i.i.d. from p(x, y)", "any real critic f"),
        evidence=("precise", "production"),
        notes="Checked by exact enumeration (compositions of K over the joint's support) on "
        "small discrete joints with random and scaled-optimal critics; no symbolic proof.",
    ),
    Claim(
        id="infonce.optimal_critic_gap_leading_term",
        family=_FAM,
        kind="identity",
        text="With the optimal critic log p(y|x)/p(y), the formal 1/K expansion of "
        "I - I_NCE starts with chi^2(P_XY || P_X P_Y)/(2K).",
        statement=_gap_leading_statement,
        source="derived (research note §6.4) from Poole et al. 2019 (arXiv 1905.06922) §2.3 "
        "and the delta method (Nowozin 2018, ICLR)",
        assumptions=("finite support with p(x, y) > 0",),
        evidence=("symbolic",),
        prove=_prove_gap_leading,
    ),
    Claim(
        id="infonce.optimal_critic_gap",
        family=_FAM,
        kind="asymptotic",
        text="I - I_NCE(f*) = chi^2/(2K) + O(K^-2): K * gap -> chi^2/2 with an O(1/K) residual.",
        statement=_gap_asymptotic_statement,
        source="derived (research note §6.4); Poole et al. 2019 (arXiv 1905.06922) §2.3",
        assumptions=("finite support with p(x, y) > 0", "f* = log p(y|x)/p(y)"),
        evidence=("precise",),
        notes="Exact gap by enumeration over compositions for a 3x3 joint, K up to 64; the "
        "residual's fitted log-log rate is compared with -2.",
    ),
    Claim(
        id="infonce.delta_method_series",
        family=_FAM,
        kind="identity",
        text="The formal delta-method expansion of E log mean(W_1..W_n) through n^-2 is "
        "log mu - sigma^2/(2 n mu^2) + (kappa3/(3 mu^3) - 3 sigma^4/(4 mu^4))/n^2.",
        statement=_delta_series_statement,
        source="Nowozin 2018 (ICLR, 'Debiasing evidence approximations') §3, asymptotic bias "
        "(recalled, research note §6.5); Burda et al. 2016 (arXiv 1509.00519)",
        assumptions=("W_i i.i.d., W > 0, finite moments",),
        evidence=("symbolic",),
        prove=_prove_delta_series,
    ),
    Claim(
        id="infonce.delta_method_log_mean",
        family=_FAM,
        kind="asymptotic",
        text="E log mean(W_1..W_n) minus the second-order delta expansion is O(n^-3); "
        "E log mean <= log mu and is non-decreasing in n.",
        statement=_delta_series_statement,
        source="Nowozin 2018 (ICLR, 'Debiasing evidence approximations') §3; Burda et al. 2016 "
        "(arXiv 1509.00519) Theorem 1 (monotonicity)",
        assumptions=("W discrete with finite support, W > 0",),
        evidence=("precise",),
        notes="Exact expectation over compositions of n; fitted residual rate vs -3.",
    ),
    Claim(
        id="infonce.sampled_softmax_expansion",
        family=_FAM,
        kind="identity",
        text="The second-order expansion of the sampled-softmax loss bias is -chi^2(p||q)/(2m) "
        "and of the logit-gradient bias is (p_j/m)(1 + chi^2 - p_j/q_j).",
        statement=_ss_expansion_statement,
        source="Bengio & Senécal 2008 (IEEE TNN) §III; Blanc & Rendle 2018 (arXiv 1712.00527) "
        "§3; derivation in research note §6.6",
        assumptions=("m samples i.i.d. from q > 0 over all classes",),
        evidence=("symbolic",),
        prove=_prove_ss_expansion,
    ),
    Claim(
        id="infonce.sampled_softmax_loss_bias",
        family=_FAM,
        kind="asymptotic",
        text="E[log Z_hat] - log Z = -chi^2(p||q)/(2m) + O(m^-2) for the importance-sampled "
        "partition function with m proposals from q.",
        statement=_ss_loss_statement,
        source="Bengio & Senécal 2008 (IEEE TNN) §III; Blanc & Rendle 2018 (arXiv 1712.00527) §3",
        assumptions=("m samples i.i.d. from q > 0", "Z_hat = (1/m) sum e^{o_s}/q_s"),
        evidence=("precise",),
    ),
    Claim(
        id="infonce.sampled_softmax_grad_bias",
        family=_FAM,
        kind="asymptotic",
        text="E[p_hat_j] - p_j = (p_j/m)(1 + chi^2 - p_j/q_j) + O(m^-2) for the self-normalised "
        "importance-sampling estimate of the softmax (the logit-gradient term).",
        statement=_ss_grad_statement,
        source="Bengio & Senécal 2008 (IEEE TNN) §III; Blanc & Rendle 2018 (arXiv 1712.00527) "
        "§3; Rawat et al. 2019 (arXiv 1907.10747)",
        assumptions=("m samples i.i.d. from q > 0",),
        evidence=("precise",),
    ),
    Claim(
        id="infonce.sampled_softmax_unbiased_iff_q_eq_p",
        family=_FAM,
        kind="identity",
        text="The leading gradient bias vanishes for every class iff q = p; at q = p the "
        "sampled-softmax loss and gradient are exactly unbiased for every m.",
        statement=_ss_iff_statement,
        source="Blanc & Rendle 2018 (arXiv 1712.00527) §3; Rawat et al. 2019 (arXiv 1907.10747)",
        assumptions=("p = softmax(o) > 0", "q > 0"),
        evidence=("symbolic", "precise"),
        prove=_prove_ss_iff,
        notes="Symbolic leg: the leading-order iff (symbolic C). Precise leg: exact finite-m "
        "expectations (zero at q = p to 40 digits; some class clearly nonzero for q != p).",
    ),
    Claim(
        id="infonce.ranking_nce_consistency",
        family=_FAM,
        kind="inequality",
        text="For any K >= 1 the population ranking-NCE objective is minimised by "
        "s(x, y) = log p(y|x) + c(x).",
        statement=_ranking_consistency_statement,
        source="Ma & Collins 2018 (EMNLP, arXiv 1809.01812) §3 (ranking objective, consistency)",
        assumptions=("q(y) > 0 and p(y|x) > 0 on all labels", "noise y_1..y_K i.i.d. from q"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_ranking_consistency,
    ),
    Claim(
        id="infonce.logit_gradient",
        family=_FAM,
        kind="gradient",
        text="d/ds_k of ranking NCE / InfoNCE with logits s/t - log q is (softmax_k - onehot_k)/t.",
        statement=_logit_gradient_statement,
        source="standard (softmax cross-entropy gradient); van den Oord et al. 2018 "
        "(arXiv 1807.03748) eq. (4)",
        assumptions=("t > 0", "positive at index 1"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_logit_gradient,
    ),
    Claim(
        id="infonce.query_gradient",
        family=_FAM,
        kind="gradient",
        text="The InfoNCE gradient w.r.t. the query is (1/(B t)) sum_j (P_ij - onehot_ij) k_j "
        "(dot), projected by (I - q_hat q_hat^T)/||q|| for cosine similarity.",
        statement=lambda: sp.Eq(
            sp.Symbol("dL/dq_i"),
            sp.Sum((sp.Symbol("P_ij") - sp.KroneckerDelta(i, j)) * sp.Symbol("k_j"), (j, 1, B))
            / (B * t),
        ),
        source="standard (chain rule); van den Oord et al. 2018 (arXiv 1807.03748) eq. (4)",
        assumptions=("mean reduction over B rows", "t > 0", "query norms > 1e-12 (cosine)"),
        evidence=("precise", "production"),
    ),
    Claim(
        id="infonce.uniform_log_q_noop",
        family=_FAM,
        kind="identity",
        text="A uniform noise distribution (log q constant over candidates) leaves ranking NCE "
        "and InfoNCE unchanged.",
        statement=_uniform_logq_statement,
        source="Ma & Collins 2018 (arXiv 1809.01812) §3; research note §1.4 item 3",
        assumptions=("q constant over the candidates of a row",),
        evidence=("symbolic", "production"),
        prove=_prove_uniform_logq,
    ),
    Claim(
        id="infonce.identical_keys_log_b",
        family=_FAM,
        kind="identity",
        text="If all B candidate keys are identical the InfoNCE loss is exactly log B, "
        "whatever the query.",
        statement=_identical_keys_statement,
        source="standard; closed form used by lightly's NT-Xent tests (research note "
        "ecosystem §2.2)",
        assumptions=("all candidate logits of a row equal",),
        evidence=("symbolic", "production"),
        prove=_prove_identical_keys,
    ),
    Claim(
        id="infonce.symmetric_mean_of_directions",
        family=_FAM,
        kind="identity",
        text="The CLIP-style symmetric loss equals (L(a->b) + L(b->a))/2, the b->a direction "
        "being the column-wise softmax of the same similarity matrix.",
        statement=_symmetric_statement,
        source="Radford et al. 2021 (CLIP, arXiv 2103.00020) Figure 3 pseudo-code",
        assumptions=("in-batch keys", "symmetric similarity (cosine or dot)"),
        evidence=("precise", "production"),
    ),
)
