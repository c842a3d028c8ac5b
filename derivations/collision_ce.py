r"""Collision cross-entropy (Zhang & Boykov, arXiv 2303.07321): SymPy definitions and claims.

Symbols (one row unless stated; symbolic number of classes :math:`K`): logits :math:`z_k`,
:math:`\sigma_k = e^{z_k}/\sum_j e^{z_j}`, a target / pseudo-label :math:`y_k`, a generic
probability vector ``sigma[k]`` where a statement does not need the logits, Rényi order
:math:`\alpha`, fairness weight :math:`\lambda`, batch size :math:`N`.

.. math:: H_2(y,\sigma) = -\ln\sum_k y_k\sigma_k

Sources: the collision CE and its headline properties are in the paper's abstract; the
self-labeling objective :math:`F` and its EM solver are **reconstructed** in the research note
``collision_ce.md`` (§1, §3) because the paper body was unavailable. Every ``prove()`` states its
scope ("symbolic K", "symbolic N", "fixed K = 3", "exact witness") and, for inequalities, the
named lemma it reduces to; the reduction itself is what SymPy checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from derivations._claim import Claim, Proof
from derivations._sym import canon, difference_is_zero, index_in_range, linear_sums
from derivations._sym import zero_after_canon as _zero

K = sp.Symbol("K", integer=True, positive=True)
N = sp.Symbol("N", integer=True, positive=True)
k, j, m, n, c, i = sp.symbols("k j m n c i", integer=True)
z = sp.IndexedBase("z", real=True)
y = sp.IndexedBase("y", real=True)
sig = sp.IndexedBase("sigma", real=True)
T = sp.IndexedBase("T", real=True)
R = sp.IndexedBase("R", real=True)  # column mass of the *other* rows (EM claims)
w = sp.IndexedBase("w", real=True)
alpha = sp.Symbol("alpha", positive=True)
t = sp.Symbol("t", real=True)
lam = sp.Symbol("lambda", nonnegative=True)
y_max = sp.Symbol("y_max", real=True)

Vec = Callable[[Any], Any]


# ----------------------------------------------------------------------------- helpers


def _sum_to_one(expr: Any, base: sp.IndexedBase, upper: Any = K) -> Any:
    """Replace every ``Sum(base[d], (d, 1, upper))`` by 1 (a simplex constraint)."""
    return expr.replace(
        lambda e: (
            isinstance(e, sp.Sum)
            and e.limits[0][1:] == (1, upper)
            and e.function == base[e.limits[0][0]]
        ),
        lambda e: sp.Integer(1),
    )


def softmax(idx: Any) -> Any:
    r""":math:`\sigma_{idx} = e^{z_{idx}} / \sum_j e^{z_j}`."""
    return sp.exp(z[idx]) / sp.Sum(sp.exp(z[j]), (j, 1, K))


def collision_probability(p: Vec, q: Vec) -> Any:
    return sp.Sum(p(k) * q(k), (k, 1, K))


def h2(p: Vec, q: Vec) -> Any:
    r""":math:`H_2(p, q) = -\ln\sum_k p_k q_k`."""
    return -sp.log(collision_probability(p, q))


def shannon(p: Vec, q: Vec) -> Any:
    r""":math:`H(p, q) = -\sum_k p_k\ln q_k`."""
    return -sp.Sum(p(k) * sp.log(q(k)), (k, 1, K))


def renyi(p: Vec, q: Vec, a: Any = alpha) -> Any:
    r""":math:`H_\alpha(p,q) = \frac{1}{1-\alpha}\ln\sum_k p_k q_k^{\alpha-1}`."""
    return sp.log(sp.Sum(p(k) * q(k) ** (a - 1), (k, 1, K))) / (1 - a)


def jensen_gap(wts: Vec, pts: Vec) -> Any:
    r""":math:`J(w;x) = \ln\sum_k w_k x_k - \sum_k w_k\ln x_k \ge 0` (Jensen, concave ln)."""
    return sp.log(sp.Sum(wts(k) * pts(k), (k, 1, K))) - sp.Sum(wts(k) * sp.log(pts(k)), (k, 1, K))


def Y(idx: Any) -> Any:
    return y[idx]


def S(idx: Any) -> Any:
    return sig[idx]


def onehot(idx: Any) -> Any:
    return sp.KroneckerDelta(idx, c)


def uniform(idx: Any) -> Any:
    return 1 / K


def _resolve(expr: Any, *indices: Any) -> Any:
    e = index_in_range(expr.doit(), K, *indices).doit()
    return index_in_range(e, K, *indices)


# ----------------------------------------------------------------------------- 1. one-hot


def _onehot_statement() -> Any:
    return sp.And(
        sp.Eq(h2(onehot, softmax), shannon(onehot, softmax), evaluate=False),
        sp.Eq(
            sp.Derivative(h2(onehot, softmax), z[m]),
            sp.Derivative(shannon(onehot, softmax), z[m]),
            evaluate=False,
        ),
    )


def _prove_onehot() -> Proof:
    v1 = sp.expand_log(_resolve(h2(onehot, softmax), c), force=True)
    v2 = sp.expand_log(_resolve(shannon(onehot, softmax), c), force=True)
    ok_v = difference_is_zero(v1, v2)
    # the values agree identically in z, so do their derivatives; checked explicitly anyway
    ok_g = ok_v and difference_is_zero(
        index_in_range(sp.diff(v1, z[m]).doit(), K, m, c),
        index_in_range(sp.diff(v2, z[m]).doit(), K, m, c),
    )
    return Proof(
        proved=ok_v and ok_g,
        method="Sum.doit with y = KroneckerDelta(k, c), Piecewise resolved for 1<=c<=K: both "
        "sides reduce to -ln softmax(z)_c, simplify(H2 - H) == 0 for all real z; hence (and "
        "checked) equal d/dz_m",
        scope="symbolic K",
        assumptions=("K >= 1 integer", "1 <= c, m <= K", "z real"),
    )


# ----------------------------------------------------------------------------- 2. uniform


def _uniform_statement() -> Any:
    return sp.And(
        sp.Eq(h2(uniform, softmax), sp.log(K), evaluate=False),
        sp.Eq(sp.Derivative(h2(uniform, softmax), z[m]), 0, evaluate=False),
    )


def _prove_uniform() -> Proof:
    v = canon(linear_sums(h2(uniform, softmax)))  # 1/(K Z) factors out of the sum over k
    ok_v = difference_is_zero(v, sp.log(K))
    ok_g = ok_v and not v.has(z)  # constant in z, so every d/dz_m vanishes
    return Proof(
        proved=ok_v and ok_g,
        method="the factor 1/(K sum_j e^{z_j}) is pulled out of the sum over k (linear_sums), "
        "the sums cancel (dummies canonicalised): H2(u, softmax z) == ln K for all real z, so "
        "d/dz_m H2 == 0",
        scope="symbolic K",
        assumptions=("K >= 1 integer", "u_k = 1/K", "z real"),
    )


# ----------------------------------------------------------------------------- 3. symmetry


def _symmetric_statement() -> Any:
    return sp.Eq(h2(Y, S), h2(S, Y), evaluate=False)


def _prove_symmetric() -> Proof:
    return Proof(
        proved=difference_is_zero(h2(Y, S), h2(S, Y)),
        method="simplify(H2(y, sigma) - H2(sigma, y)) == 0 (the collision probability is a "
        "symmetric bilinear form)",
        scope="symbolic K",
        assumptions=("y, sigma real vectors",),
    )


# ----------------------------------------------------------------------------- 4-5. gradients


def _ytilde(idx: Any) -> Any:
    return y[idx] * softmax(idx) / collision_probability(Y, softmax)


def _logit_grad_statement() -> Any:
    return sp.Eq(sp.Derivative(h2(Y, softmax), z[m]), softmax(m) - _ytilde(m))


def _prove_logit_grad() -> Proof:
    # 1/sum_j e^{z_j} factors out of the sum over k; ln of the product splits (both sums > 0)
    h = sp.expand_log(linear_sums(h2(Y, softmax)), force=True)
    g = index_in_range(sp.diff(h, z[m]).doit(), K, m)
    ok = _zero(g - linear_sums(softmax(m) - _ytilde(m)))
    return Proof(
        proved=ok,
        method="H2 = -ln sum_k y_k e^{z_k} + ln sum_j e^{z_j} (factor pulled out, log split), "
        "diff w.r.t. z[m], Piecewise resolved for 1<=m<=K, "
        "simplify(diff - (sigma_m - ytilde_m)) == 0",
        scope="symbolic K",
        assumptions=("K >= 1 integer", "1 <= m <= K", "z, y real", "sum_k y_k e^{z_k} > 0"),
    )


def _target_grad_statement() -> Any:
    return sp.Eq(sp.Derivative(h2(Y, S), y[m]), -sig[m] / collision_probability(Y, S))


def _prove_target_grad() -> Proof:
    g = index_in_range(sp.diff(h2(Y, S), y[m]).doit(), K, m)
    ok = difference_is_zero(g, -sig[m] / collision_probability(Y, S))
    return Proof(
        proved=ok,
        method="diff w.r.t. y[m], Piecewise resolved for 1<=m<=K, simplify == 0",
        scope="symbolic K",
        assumptions=("K >= 1 integer", "1 <= m <= K", "sigma^T y != 0"),
    )


# ----------------------------------------------------------------------------- 6-7. Rényi


def _renyi_two_statement() -> Any:
    return sp.Eq(renyi(Y, S, 2), h2(Y, S), evaluate=False)


def _prove_renyi_two() -> Proof:
    return Proof(
        proved=difference_is_zero(renyi(Y, S, 2), h2(Y, S)),
        method="subs alpha = 2 into H_alpha, simplify(H_2 - collision CE) == 0",
        scope="symbolic K",
        assumptions=("sigma > 0",),
    )


def _renyi_limit_statement() -> Any:
    return sp.Eq(sp.Limit(renyi(Y, S), alpha, 1), shannon(Y, S), evaluate=False)


def _prove_renyi_limit() -> Proof:
    # symbolic K: alpha = 1 + t, H_alpha = -Nt(t)/t with Nt(t) = ln sum_k y_k e^{t ln sigma_k};
    # Nt(0) = ln sum y = 0 on the simplex, so by L'Hopital the limit is -Nt'(0); the Taylor
    # coefficient of t is -Nt''(0)/2 = -Var_y(ln sigma)/2.
    nt = sp.log(sp.Sum(y[k] * sp.exp(t * sp.log(sig[k])), (k, 1, K)))
    n0 = _sum_to_one(nt.subs(t, 0).doit(), y)
    d1 = _sum_to_one(sp.diff(nt, t).subs(t, 0).doit(), y)
    d2 = _sum_to_one(sp.diff(nt, t, 2).subs(t, 0).doit(), y)
    mean = sp.Sum(y[k] * sp.log(sig[k]), (k, 1, K))
    var = sp.Sum(y[k] * sp.log(sig[k]) ** 2, (k, 1, K)) - mean**2
    ok_sym = n0 == 0 and _zero(-d1 - shannon(Y, S)) and _zero(d2 - var)
    # fixed K = 3: sympy.limit itself
    y1, y2 = sp.symbols("y1 y2", positive=True)
    s1, s2, s3 = sp.symbols("sigma1:4", positive=True)
    ys, ss = (y1, y2, 1 - y1 - y2), (s1, s2, s3)
    h_alpha = sp.log(sum(a * b ** (alpha - 1) for a, b in zip(ys, ss, strict=True))) / (1 - alpha)
    shan = -sum(a * sp.log(b) for a, b in zip(ys, ss, strict=True))
    ok_lim = difference_is_zero(sp.limit(h_alpha, alpha, 1), shan)
    return Proof(
        proved=ok_sym and ok_lim,
        method="symbolic K: L'Hopital on ln(sum y sigma^t)/(-t) (numerator 0 at t = 0 since "
        "sum y = 1; its derivative at 0 = sum y ln sigma); second derivative at 0 = Var_y(ln "
        "sigma) gives the Taylor coefficient -Var/2 of t; fixed K = 3: "
        "sympy.limit(H_alpha, alpha, 1) == H(y, sigma)",
        scope="symbolic K (L'Hopital / Taylor reduction); fixed K = 3 (sympy.limit)",
        assumptions=("sigma > 0", "y on the simplex", "alpha = 1 + t, t -> 0 from both sides"),
        detail="rate: H_alpha - H = -(alpha - 1) Var_y(ln sigma)/2 + O((alpha - 1)^2)",
    )


# ----------------------------------------------------------------------------- 8. Jensen bound


def _jensen_statement() -> Any:
    return sp.Le(h2(Y, S), sp.Min(shannon(Y, S), shannon(S, Y)), evaluate=False)


def _prove_jensen() -> Proof:
    x = sp.Symbol("x", positive=True)
    concave = bool(sp.diff(sp.log(x), x, 2).is_negative)
    red1 = difference_is_zero(shannon(Y, S) - h2(Y, S), jensen_gap(Y, S))
    red2 = difference_is_zero(shannon(S, Y) - h2(S, Y), jensen_gap(S, Y))
    sym = difference_is_zero(h2(Y, S), h2(S, Y))
    return Proof(
        proved=concave and red1 and red2 and sym,
        method="reduced to Jensen's inequality for the concave ln: H(y,s) - H2(y,s) = J(y; s) and "
        "H(s,y) - H2(s,y) = J(s; y) with J(w; x) = ln sum w x - sum w ln x >= 0; reductions "
        "checked by simplify(...) == 0, concavity by d^2/dx^2 ln x = -1/x^2 < 0, "
        "H2(s,y) = H2(y,s) by symmetry",
        scope="symbolic K",
        assumptions=("y, sigma on the simplex", "sigma > 0", "H(sigma, y) = +inf allowed"),
    )


# ----------------------------------------------------------------------------- 9. convexity in y


def _hessian_y(idx_a: Any, idx_b: Any) -> Any:
    return sig[idx_a] * sig[idx_b] / collision_probability(Y, S) ** 2


def _convex_statement() -> Any:
    return sp.Eq(sp.Derivative(h2(Y, S), y[m], y[n]), _hessian_y(m, n))


def _prove_convex() -> Proof:
    hess = index_in_range(sp.diff(h2(Y, S), y[m], y[n]).doit(), K, m, n)
    ok_entries = difference_is_zero(hess, _hessian_y(m, n))
    # rank one: H_mn = v_m v_n with v = sigma / P, so x^T H x = (v^T x)^2 >= 0
    v = sp.IndexedBase("v", real=True)
    ok_rank1 = difference_is_zero(
        _hessian_y(m, n)
        .subs({sig[m]: v[m] * collision_probability(Y, S)})
        .subs({sig[n]: v[n] * collision_probability(Y, S)}),
        v[m] * v[n],
    )
    # fixed K = 3: the full quadratic form
    ys = sp.symbols("y1:4", positive=True)
    ss = sp.symbols("sigma1:4", positive=True)
    xs = sp.symbols("x1:4", real=True)
    h3 = -sp.log(sum(a * b for a, b in zip(ys, ss, strict=True)))
    quad = sum(xs[a] * xs[b] * sp.diff(h3, ys[a], ys[b]) for a in range(3) for b in range(3))
    p3 = sum(a * b for a, b in zip(ys, ss, strict=True))
    rhs = sum(a * b for a, b in zip(ss, xs, strict=True)) ** 2 / p3**2
    ok_quad = difference_is_zero(quad, rhs) and bool(rhs.is_nonnegative)
    # the fairness term of F: -ln(sum_i y_ik) over a column has Hessian 1/(sum)^2 * 1 1^T
    col = -sp.log(sp.Sum(w[i], (i, 1, N)))
    a_, b_ = sp.symbols("a b", integer=True)
    hcol = sp.diff(col, w[a_], w[b_]).doit()
    hcol = index_in_range(hcol, N, a_, b_)
    ok_col = _zero(hcol - 1 / sp.Sum(w[i], (i, 1, N)) ** 2)
    return Proof(
        proved=ok_entries and ok_rank1 and ok_quad and ok_col,
        method="Hessian entries d2 H2/dy_m dy_n = sigma_m sigma_n / (sigma^T y)^2 (symbolic K) = "
        "v_m v_n: reduced to the lemma 'a rank-one Gram matrix v v^T is PSD'; fixed K = 3: "
        "x^T H x == (sigma^T x)^2/(sigma^T y)^2 >= 0; fairness column -ln sum_i y_ik has "
        "Hessian 1 1^T/(sum)^2 (symbolic N), so F is convex too",
        scope="symbolic K (entries), fixed K = 3 (quadratic form), symbolic N (fairness term)",
        assumptions=("sigma >= 0", "sigma^T y > 0", "column sums > 0"),
    )


# ----------------------------------------------------------------------------- 10. not convex in z

WITNESS_Y = (sp.Rational(1, 2), sp.Rational(1, 2), sp.Integer(0))
WITNESS_Z = (sp.Integer(-5), sp.Integer(-5), sp.Integer(0))
WITNESS_D = (sp.Integer(1), sp.Integer(-1), sp.Integer(0))


def witness_curvature() -> Any:
    """Exact :math:`\\frac{d^2}{ds^2} H_2(y, \\operatorname{softmax}(z + s d))|_{s=0}` at the
    witness ``y = (1/2, 1/2, 0)``, ``z = (-5, -5, 0)``, ``d = (1, -1, 0)``."""
    s_ = sp.Symbol("s", real=True)
    zs = [a + s_ * b for a, b in zip(WITNESS_Z, WITNESS_D, strict=True)]
    h = sp.log(sum(sp.exp(v) for v in zs)) - sp.log(
        sum(a * sp.exp(v) for a, v in zip(WITNESS_Y, zs, strict=True))
    )  # H2 = lse(z) - ln sum_k y_k e^{z_k}
    return sp.together(sp.diff(h, s_, 2).subs(s_, 0))


def _nonconvex_statement() -> Any:
    return sp.Lt(witness_curvature(), 0, evaluate=False)


def _prove_nonconvex() -> Proof:
    curv = witness_curvature()
    # d^T (diag s - s s^T) d - d^T (diag yt - yt yt^T) d with s = softmax(z), yt = (1/2, 1/2, 0)
    closed = 2 * sp.exp(-5) / (1 + 2 * sp.exp(-5)) - 1
    ok = bool(curv.is_negative) and sp.cancel(curv - closed) == 0
    return Proof(
        proved=ok,
        method="explicit witness y=(1/2,1/2,0), z=(-5,-5,0), d=(1,-1,0): exact second "
        f"directional derivative = 2e^-5/(1+2e^-5) - 1 = {float(curv):.6f} < 0 (SymPy sign of the "
        "exact expression); matches d^T[(diag s - s s^T) - (diag yt - yt yt^T)]d",
        scope="exact witness, K = 3 (existential claim)",
        assumptions=("H2 = lse(z) - lse(z + ln y), a difference of convex functions",),
    )


# ----------------------------------------------------------------------------- 11-12. bounds


def _argmin_statement() -> Any:
    return sp.And(
        sp.Le(collision_probability(Y, S), y_max, evaluate=False),
        sp.Eq(h2(Y, onehot), -sp.log(y[c]), evaluate=False),
    )


def _prove_argmin() -> Proof:
    # y_max - sigma^T y = sum_k sigma_k (y_max - y_k) on the simplex: every term >= 0
    lhs = _sum_to_one(linear_sums(sp.Sum(sig[k] * (y_max - y[k]), (k, 1, K))), sig)
    ok_red = _zero(lhs - (y_max - collision_probability(Y, S)))
    at_vertex = _resolve(h2(Y, onehot), c)
    ok_vertex = difference_is_zero(at_vertex, -sp.log(y[c]))
    return Proof(
        proved=ok_red and ok_vertex,
        method="reduced to 'a convex combination is at most the maximum': "
        "y_max - sigma^T y == sum_k sigma_k (y_max - y_k) using sum sigma = 1 (each term >= 0), "
        "so H2 >= -ln y_max; attained: H2(y, e_c) == -ln y_c (KroneckerDelta Sum.doit)",
        scope="symbolic K",
        assumptions=("sigma on the simplex", "y_max = max_k y_k", "c = argmax_k y_k"),
        detail="over softmax outputs the minimum is an infimum, approached as z_c -> +inf",
    )


def _nonneg_statement() -> Any:
    return sp.Ge(h2(Y, S), 0, evaluate=False)


def _prove_nonneg() -> Proof:
    rhs = _sum_to_one(linear_sums(sp.Sum(sig[k] * (1 - y[k]), (k, 1, K))), sig)
    ok_red = _zero(1 - collision_probability(Y, S) - rhs)
    zero_at = _resolve(h2(onehot, onehot), c)
    ok_eq = zero_at == 0
    return Proof(
        proved=ok_red and ok_eq,
        method="1 - sigma^T y == sum_k sigma_k (1 - y_k) (sum sigma = 1), a sum of non-negative "
        "terms, so sigma^T y <= 1 and H2 >= 0; it vanishes iff y_k = 1 wherever sigma_k > 0, "
        "i.e. y = sigma = e_c; H2(e_c, e_c) == 0 (KroneckerDelta Sum.doit)",
        scope="symbolic K",
        assumptions=("y, sigma on the simplex",),
        detail="H2 = +inf iff the supports are disjoint",
    )


def _collision_entropy_statement() -> Any:
    return sp.Eq(h2(Y, Y), -sp.log(sp.Sum(y[k] ** 2, (k, 1, K))), evaluate=False)


def _prove_collision_entropy() -> Proof:
    return Proof(
        proved=difference_is_zero(h2(Y, Y), -sp.log(sp.Sum(y[k] ** 2, (k, 1, K)))),
        method="simplify(H2(y, y) + ln sum y^2) == 0",
        scope="symbolic K",
        assumptions=("y on the simplex",),
    )


# ----------------------------------------------------------------------------- 14-15. EM


def _p() -> Any:
    return collision_probability(S, Y)


def _em_monotone_statement() -> Any:
    f_new, f_old = sp.symbols("F(y^{t+1}) F(y^t)")
    return sp.Le(f_new, f_old, evaluate=False)


def _prove_em_monotone() -> Proof:
    ok = []
    p = sp.Sum(sig[j] * y[j], (j, 1, K))  # own dummy, so it factors out of sums over k
    # (a) surrogate of the fit term minus the term itself == KL(T || ytilde), for any T on the
    #     simplex: the majorisation reduces to Gibbs' inequality KL >= 0
    bound_fit = -sp.Sum(T[k] * sp.log(sig[k] * y[k] / T[k]), (k, 1, K))
    kl_t = sp.Sum(T[k] * sp.log(T[k] * p / (sig[k] * y[k])), (k, 1, K))
    gap = sp.expand_log(bound_fit + sp.log(p) - kl_t, force=True)
    ok.append(_zero(_sum_to_one(linear_sums(gap), T)))
    # (b) tight at the E-step T = sigma y / P (there KL(T || ytilde) = 0): bound == -ln P
    tight = bound_fit.xreplace({T[k]: sig[k] * y[k] / p})
    ok.append(_zero(linear_sums(sp.expand_log(tight, force=True)) + sp.log(p)))
    # (c) fairness term per class: -ln sum_i w_i <= -sum_i S_i ln(w_i / S_i) (Jensen), tight at
    #     S = w / sum w
    wsum = sp.Sum(w[j], (j, 1, N))
    bound_col = -sp.Sum((w[i] / wsum) * sp.log(w[i] / (w[i] / wsum)), (i, 1, N))
    ok.append(_zero(linear_sums(bound_col) + sp.log(wsum)))
    # (d) M-step = argmin over the simplex of the per-row surrogate -sum_k c_k ln y_k with
    #     c_k = T_k / N + lambda u_k S_k (Gibbs: y = c / sum c); the note's closed form equals it
    s_row = sp.IndexedBase("S", real=True)  # S_ik for the row
    c_k = T[k] / N + lam * s_row[k] / K
    c_sum = _sum_to_one(linear_sums(sp.Sum(T[j] / N + lam * s_row[j] / K, (j, 1, K))), T)
    note_m = (T[k] + lam * N * s_row[k] / K) / (1 + lam * N * sp.Sum(s_row[j] / K, (j, 1, K)))
    ok.append(_zero(sp.together(c_k / c_sum - linear_sums(note_m))))
    #     Lagrange stationarity of the surrogate at y = c / sum c with multiplier mu = sum c
    yk = sp.Symbol("y_k", positive=True)
    c_sym, mu = sp.symbols("c_k mu", positive=True)
    stat = sp.diff(-c_sym * sp.log(yk), yk) + mu
    ok.append(_zero(stat.subs(yk, c_sym / mu)))
    return Proof(
        proved=all(ok),
        method="majorise-minimise: (a) surrogate - F == KL(T || ytilde) for the fit term "
        "(reduced to Gibbs' inequality KL >= 0; checked by simplify with sum T = 1), (b) tight at "
        "the E-step T = sigma y / sigma^T y, (c) the fairness bound is tight at S = y / colsum, "
        "(d) the M-step closed form == c / sum c, the Gibbs minimiser of -sum c ln y over the "
        "simplex (Lagrange stationarity checked); hence F(y+) <= G(y+) <= G(y) = F(y)",
        scope="symbolic K (per row), symbolic N (per class)",
        assumptions=("sigma, y^t > 0 (interior)", "lambda >= 0", "objective reconstructed"),
    )


def _em_kkt_statement() -> Any:
    g, mu = sp.symbols("g_ik mu_i")
    return sp.Implies(sp.Eq(y[m], y[m] * g / mu), sp.Eq(g, mu))


def _prove_em_kkt() -> Proof:
    # F restricted to one row (R_k = column mass of the other rows):
    # F_row = -(1/N) ln sum_k sigma_k y_k - lambda sum_k (1/K) ln((y_k + R_k)/N)
    p = sp.Sum(sig[j] * y[j], (j, 1, K))
    f_row = -sp.log(p) / N - lam * sp.Sum(sp.log((y[k] + R[k]) / N) / K, (k, 1, K))
    grad = index_in_range(sp.diff(f_row, y[m]).doit(), K, m)

    def numerator(idx: Any) -> Any:  # the note's M-step numerator T + lambda N u S
        return sig[idx] * y[idx] / p + lam * N * (y[idx] / (y[idx] + R[idx])) / K

    ok_num = sp.cancel(numerator(m) + N * y[m] * grad) == 0
    # denominator 1 + lambda N sum_c u_c S_c == sum_k numerator_k (because sum_k T_k = 1)
    den_note = 1 + lam * N * sp.Sum(y[k] / (y[k] + R[k]) / K, (k, 1, K))
    den_sum = linear_sums(sp.Sum(numerator(k), (k, 1, K)))
    ok_den = _zero(den_sum - linear_sums(den_note))
    return Proof(
        proved=ok_num and ok_den,
        method="the M-step numerator T_m + lambda N u_m S_m == -N y_m dF/dy_m and its row sum "
        "== -N mu with mu = sum_k y_k dF/dy_k (simplify == 0), so the EM map is y <- y * g / mu: "
        "an interior fixed point has g_k = mu for all k (KKT stationarity, complementary "
        "slackness); F convex (claim convex_in_targets) and linear constraints, so a KKT point "
        "is a global minimiser",
        scope="symbolic K (one row, other rows' column mass symbolic), symbolic N",
        assumptions=("y > 0 (interior fixed point)", "lambda >= 0", "objective reconstructed"),
    )


def _em_pgd_statement() -> Any:
    f_em, f_pgd, f_min = sp.symbols("F(y_EM) F(y_PGD) min_y(F)")
    return sp.And(sp.Eq(f_em, f_min, evaluate=False), sp.Eq(f_pgd, f_min, evaluate=False))


# ----------------------------------------------------------------------------- catalogue

_FAM = "collision_ce"
_ABS = "Zhang & Boykov 2023 (arXiv 2303.07321) abstract"

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="collision_ce.onehot_equals_shannon",
        family=_FAM,
        kind="identity",
        text="For a one-hot target e_c, collision CE equals Shannon CE in value and gradient.",
        statement=_onehot_statement,
        source=f"{_ABS}; derived in research note §2.1",
        assumptions=("y = e_c", "sigma = softmax(z)"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_onehot,
    ),
    Claim(
        id="collision_ce.uniform_constant",
        family=_FAM,
        kind="identity",
        text="A uniform target gives H2 = ln K for every prediction, hence a zero gradient.",
        statement=_uniform_statement,
        source=f"{_ABS} ('zero contribution to the training'); derived in research note §2.2",
        assumptions=("y = u = 1/K",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_uniform,
    ),
    Claim(
        id="collision_ce.symmetric",
        family=_FAM,
        kind="identity",
        text="Collision CE is symmetric: H2(y, sigma) = H2(sigma, y).",
        statement=_symmetric_statement,
        source=f"{_ABS}; derived in research note §2.3",
        assumptions=("y, sigma on the simplex",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_symmetric,
    ),
    Claim(
        id="collision_ce.logit_gradient",
        family=_FAM,
        kind="gradient",
        text="dH2/dz = sigma - ytilde with the effective target ytilde = y*sigma/(sigma^T y).",
        statement=_logit_grad_statement,
        source="derived in research note §2.7",
        assumptions=("sigma = softmax(z)", "sigma^T y > 0"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_logit_grad,
    ),
    Claim(
        id="collision_ce.target_gradient",
        family=_FAM,
        kind="gradient",
        text="dH2/dy_k = -sigma_k/(sigma^T y), finite also where y_k = 0.",
        statement=_target_grad_statement,
        source="derived in research note §2.7",
        assumptions=("sigma^T y > 0",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_target_grad,
    ),
    Claim(
        id="collision_ce.renyi_order_two",
        family=_FAM,
        kind="identity",
        text="Collision CE is the order-2 Renyi cross-entropy H_alpha at alpha = 2.",
        statement=_renyi_two_statement,
        source="derived in research note §2.4; the paper's 'generalized CE' wording (abstract)",
        assumptions=("sigma > 0",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_renyi_two,
    ),
    Claim(
        id="collision_ce.renyi_shannon_limit",
        family=_FAM,
        kind="limit",
        text="H_alpha(y, sigma) -> H(y, sigma) (Shannon CE) as alpha -> 1, with error "
        "-(alpha-1) Var_y(ln sigma)/2 + O((alpha-1)^2).",
        statement=_renyi_limit_statement,
        source="derived in research note §2.4 (standard Renyi theory)",
        assumptions=("sigma > 0", "y on the simplex"),
        evidence=("symbolic", "precise"),
        prove=_prove_renyi_limit,
    ),
    Claim(
        id="collision_ce.jensen_bound",
        family=_FAM,
        kind="inequality",
        text="H2(y, sigma) <= min(H(y, sigma), H(sigma, y)) (Shannon and reverse CE).",
        statement=_jensen_statement,
        source="derived in research note §2.4 (Jensen bound)",
        assumptions=("y, sigma on the simplex", "sigma > 0"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_jensen,
    ),
    Claim(
        id="collision_ce.convex_in_targets",
        family=_FAM,
        kind="inequality",
        text="H2 is convex in y (Hessian sigma sigma^T/(sigma^T y)^2 is PSD), and so is the "
        "reconstructed pseudo-label objective F.",
        statement=_convex_statement,
        source=f"{_ABS} ('convex w.r.t. pseudo-labels'); derived in research note §2.6",
        assumptions=("sigma^T y > 0",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_convex,
    ),
    Claim(
        id="collision_ce.nonconvex_in_logits",
        family=_FAM,
        kind="inequality",
        text="H2 is not convex in the logits: at y=(1/2,1/2,0), z=(-5,-5,0) the second "
        "derivative along d=(1,-1,0) is negative.",
        statement=_nonconvex_statement,
        source="derived in research note §2.6 (counterexample)",
        assumptions=("the claim is existential: exhibited by an exact witness",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_nonconvex,
        notes="Expected outcome: the non-convexity is exhibited (a negative curvature is found); "
        "contrast: Shannon CE is convex in z.",
    ),
    Claim(
        id="collision_ce.argmin_onehot",
        family=_FAM,
        kind="inequality",
        text="sigma^T y <= max_k y_k, so min over sigma of H2 is -ln max_k y_k, at the one-hot "
        "vector at argmax y.",
        statement=_argmin_statement,
        source="derived in research note §2.5",
        assumptions=("sigma on the (closed) simplex",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_argmin,
    ),
    Claim(
        id="collision_ce.nonnegative",
        family=_FAM,
        kind="inequality",
        text="H2 >= 0, with equality iff y = sigma = e_k (and H2 = +inf iff the supports are "
        "disjoint).",
        statement=_nonneg_statement,
        source="derived in research note §2.4",
        assumptions=("y, sigma on the simplex",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_nonneg,
    ),
    Claim(
        id="collision_ce.collision_entropy",
        family=_FAM,
        kind="identity",
        text="At sigma = y collision CE is Renyi's collision entropy -ln sum_k y_k^2.",
        statement=_collision_entropy_statement,
        source="derived in research note §2.4",
        assumptions=("y on the simplex",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_collision_entropy,
    ),
    Claim(
        id="collision_ce.em_monotone",
        family=_FAM,
        kind="algorithmic",
        text="Each EM step (E: T, S; M: closed form) majorises-minimises the pseudo-label "
        "objective F, so F never increases.",
        statement=_em_monotone_statement,
        source="reconstructed: EM of research note §3 (Jensen/MM split); the paper's exact EM "
        "is unavailable",
        assumptions=("objective F reconstructed (reverse-KL fairness)", "y^0 interior"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_em_monotone,
    ),
    Claim(
        id="collision_ce.em_fixed_point_kkt",
        family=_FAM,
        kind="algorithmic",
        text="EM is the multiplicative map y <- y*grad F/mu, so interior fixed points satisfy "
        "the KKT conditions, i.e. are global minima of the convex F.",
        statement=_em_kkt_statement,
        source="reconstructed: research note §3 (convergence); derived here",
        assumptions=("objective F reconstructed", "y^0 interior", "lambda >= 0"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_em_kkt,
    ),
    Claim(
        id="collision_ce.em_matches_pgd",
        family=_FAM,
        kind="algorithmic",
        text="EM and projected gradient descent (exact simplex projection) reach the same "
        "optimum of F, each within its Frank-Wolfe duality gap.",
        statement=_em_pgd_statement,
        source="research note §3 (convergence, [D]); the paper's speed comparison is unverified",
        assumptions=("objective F reconstructed", "PGD step small enough to converge"),
        evidence=("production",),
        notes="Numeric only (checked): convergence of two iterative solvers is not a symbolic fact.",
    ),
)
