r"""Collision cross-entropy (Zhang & Boykov, arXiv 2303.07321): SymPy definitions and claims.

Symbols (symbolic number of classes :math:`K`, batch size :math:`N`): logits :math:`z_k`, a
target / pseudo-label :math:`y_k \ge 0`, a probability vector :math:`\sigma_k \ge 0` where a
statement does not need the logits, Rényi order :math:`\alpha`, fairness weight
:math:`\lambda \ge 0`. The simplex is encoded as facts ``Eq(Sum(y[k], (k, 1, K)), 1)``; strict
positivity, where a statement needs it (logarithms), as ``Gt(y[k], 0)`` facts or, for the
pseudo-label solver, as positive ``IndexedBase`` symbols (interior points).

.. math:: H_2(y,\sigma) = -\ln\sum_k y_k\sigma_k

Sources: the collision CE and its headline properties are in the paper's abstract; the
self-labeling objective :math:`F` and its EM solver (E-step :math:`T, S`, closed-form M-step)
are **reconstructed** in the research note ``collision_ce.md`` (§1, §3) because the paper body
was unavailable: the EM claims are about that reconstruction, not about the paper's text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from softnce_theory.derivations import lemmas as L
from softnce_theory.derivations._claim import Claim, Definition
from softnce_theory.derivations.tactics import (
    Both,
    Differentiate,
    Exact,
    LemmaUse,
    LHopital,
    Reduction,
    Simplify,
    index_facts,
)

K = sp.Symbol("K", integer=True, positive=True)
N = sp.Symbol("N", integer=True, positive=True)
# free indices of statements: i (row), m, n, c (class); summation dummies: k, j (classes of one
# row), q, r (classes and rows in F and G), c, l (classes in a row mass, rows in a column mass
# inside the E-step): the helpers never receive one of their own dummies as an index
k, j, m, n, c, i, l, q, r = sp.symbols("k j m n c i l q r", integer=True)
z = sp.IndexedBase("z", real=True)
y = sp.IndexedBase("y", nonnegative=True)
sig = sp.IndexedBase("sigma", nonnegative=True)
x = sp.IndexedBase("x", real=True)  # a direction (convexity claims)
alpha = sp.Symbol("alpha", positive=True)
lam = sp.Symbol("lambda", nonnegative=True)
y_max = sp.Symbol("y_max", positive=True)
s = sp.Symbol("s", real=True)  # position along a line y + s x
# the pseudo-label solver: the previous iterate y^t, and interior (strictly positive) versions
y_old = sp.IndexedBase("y^{t}", nonnegative=True)
y_pos = sp.IndexedBase("y", positive=True)
sig_pos = sp.IndexedBase("sigma", positive=True)
y_old_pos = sp.IndexedBase("y^{t}", positive=True)
y_em = sp.IndexedBase("y^{EM}", nonnegative=True)
y_pgd = sp.IndexedBase("y^{PGD}", nonnegative=True)

Vec = Callable[[Any], Any]
Mat = Callable[[Any, Any], Any]


# ----------------------------------------------------------------------------- one row


def Y(idx: Any) -> Any:
    return y[idx]


def S(idx: Any) -> Any:
    return sig[idx]


def softmax_of(zf: Vec) -> Vec:
    r""":math:`k \mapsto e^{zf(k)} / \sum_j e^{zf(j)}`."""
    return lambda idx: sp.exp(zf(idx)) / sp.Sum(sp.exp(zf(j)), (j, 1, K))


softmax = softmax_of(lambda idx: z[idx])


def collision_probability(p: Vec, q_: Vec) -> Any:
    return sp.Sum(p(k) * q_(k), (k, 1, K))


def h2(p: Vec, q_: Vec) -> Any:
    r""":math:`H_2(p, q) = -\ln\sum_k p_k q_k`."""
    return -sp.log(collision_probability(p, q_))


def shannon(p: Vec, q_: Vec) -> Any:
    r""":math:`H(p, q) = -\sum_k p_k\ln q_k`."""
    return -sp.Sum(p(k) * sp.log(q_(k)), (k, 1, K))


def renyi(p: Vec, q_: Vec, a: Any = alpha) -> Any:
    r""":math:`H_\alpha(p,q) = \frac{1}{1-\alpha}\ln\sum_k p_k q_k^{\alpha-1}`."""
    return sp.log(sp.Sum(p(k) * q_(k) ** (a - 1), (k, 1, K))) / (1 - a)


def renyi_entropy(p: Vec, a: Any = alpha) -> Any:
    r""":math:`H_\alpha(p) = \frac{1}{1-\alpha}\ln\sum_k p_k^\alpha` (Rényi entropy)."""
    return sp.log(sp.Sum(p(k) ** a, (k, 1, K))) / (1 - a)


def onehot(idx: Any) -> Any:
    return sp.KroneckerDelta(idx, c)


def uniform(idx: Any) -> Any:
    return 1 / K


# ----------------------------------------------------------------------------- the solver


def Y2(row: Any, cls: Any) -> Any:
    return y[row, cls]


def S2(row: Any, cls: Any) -> Any:
    return sig[row, cls]


def Yold(row: Any, cls: Any) -> Any:
    return y_old[row, cls]


def row_mass(yv: Mat, sv: Mat, row: Any, dummy: Any = c) -> Any:
    r""":math:`\sigma_i^\top y_i = \sum_c \sigma_{ic} y_{ic}`."""
    return sp.Sum(sv(row, dummy) * yv(row, dummy), (dummy, 1, K))


def col_mass(yv: Mat, cls: Any, dummy: Any = l) -> Any:
    r""":math:`\sum_l y_{lk} = N\bar y_k`."""
    return sp.Sum(yv(dummy, cls), (dummy, 1, N))


def objective(yv: Mat = Y2, sv: Mat = S2) -> Any:
    r""":math:`F(y) = -\frac1N\sum_i\ln\sigma_i^\top y_i - \frac{\lambda}{K}\sum_k\ln\bar y_k`
    (**reconstructed** self-labeling objective with the fairness term
    :math:`\lambda\,\mathrm{KL}(u\|\bar y)` up to the constant :math:`-\lambda\ln K`)."""
    fit = -sp.Sum(sp.log(row_mass(yv, sv, r, q)), (r, 1, N)) / N
    fair = -lam * sp.Sum(sp.log(col_mass(yv, q, r) / N), (q, 1, K)) / K
    return fit + fair


def e_fit(old: Mat, sv: Mat, row: Any, cls: Any) -> Any:
    r"""E-step :math:`T_{ik} = \sigma_{ik} y^t_{ik} / \sigma_i^\top y^t_i`."""
    return sv(row, cls) * old(row, cls) / row_mass(old, sv, row)


def e_fair(old: Mat, row: Any, cls: Any) -> Any:
    r"""E-step :math:`S_{ik} = y^t_{ik} / \sum_l y^t_{lk}`."""
    return old(row, cls) / col_mass(old, cls)


def m_numerator(old: Mat, sv: Mat, row: Any, cls: Any) -> Any:
    r""":math:`T_{ik} + \lambda N u_k S_{ik}`, :math:`u_k = 1/K`."""
    return e_fit(old, sv, row, cls) + lam * N * e_fair(old, row, cls) / K


def em_step(row: Any, cls: Any, old: Mat = Y2, sv: Mat = S2) -> Any:
    r"""One EM iteration (**reconstructed**, note §3): :math:`y^{t+1}_{ik} = (T_{ik} + \lambda N
    u_k S_{ik}) / (1 + \lambda N\sum_c u_c S_{ic})`."""
    den = 1 + lam * N * sp.Sum(e_fair(old, row, j), (j, 1, K)) / K
    return m_numerator(old, sv, row, cls) / den


def majoriser(yv: Mat, old: Mat, sv: Mat = S2) -> Any:
    r"""The Jensen majoriser of :math:`F` at :math:`y^t` (note §3):
    :math:`G(y|y^t) = -\frac1N\sum_{i,k} T_{ik}\ln\frac{\sigma_{ik}y_{ik}}{T_{ik}} + \lambda\ln N
    - \frac{\lambda}{K}\sum_{i,k} S_{ik}\ln\frac{y_{ik}}{S_{ik}}`."""
    t_ = e_fit(old, sv, r, q)
    s_ = e_fair(old, r, q)
    fit = -sp.Sum(sp.Sum(t_ * sp.log(sv(r, q) * yv(r, q) / t_), (q, 1, K)), (r, 1, N)) / N
    fair = (
        lam * sp.log(N) - lam * sp.Sum(sp.Sum(s_ * sp.log(yv(r, q) / s_), (q, 1, K)), (r, 1, N)) / K
    )
    return fit + fair


def objective_grad(row: Any, cls: Any, yv: Mat = Y2, sv: Mat = S2) -> Any:
    r""":math:`g_{ik} = \partial F/\partial y_{ik} = -\frac1N\big(\sigma_{ik}/\sigma_i^\top y_i
    + \lambda N/(K\sum_l y_{lk})\big)`."""
    return -(sv(row, cls) / row_mass(yv, sv, row) + lam * N / (K * col_mass(yv, cls))) / N


def _interior(expr: Any) -> Any:
    """The statement at interior points: y, y^t, sigma > 0."""
    return expr.xreplace({y: y_pos, sig: sig_pos, y_old: y_old_pos})


def _pos2(base: Any) -> Mat:
    return lambda row, cls: base[row, cls]


# ----------------------------------------------------------------------------- definitions

_FAM = "collision_ce"
_ABS = "Zhang & Boykov 2023 (arXiv 2303.07321) abstract"
_NOTE = "research note collision_ce.md"


def _defn(name: str, build: Callable[[], Any], sizes: tuple, args: tuple, source: str, doc: str):
    return Definition(
        name=name, family=_FAM, build=build, sizes=sizes, args=args, source=source, doc=doc
    )


DEFINITIONS: tuple[Definition, ...] = (
    _defn(
        "h2",
        lambda: h2(Y, S),
        (K,),
        (y, sig),
        f"{_ABS}; {_NOTE} §1",
        r"H_2(y, \sigma) = -\ln\sum_k y_k\sigma_k",
    ),
    _defn(
        "h2_logits",
        lambda: h2(Y, softmax),
        (K,),
        (z, y),
        f"{_ABS}; {_NOTE} §1",
        r"H_2(y, \mathrm{softmax}(z))",
    ),
    _defn(
        "shannon_ce",
        lambda: shannon(Y, S),
        (K,),
        (y, sig),
        "standard",
        r"H(y, \sigma) = -\sum_k y_k\ln\sigma_k",
    ),
    _defn(
        "shannon_ce_logits",
        lambda: shannon(Y, softmax),
        (K,),
        (z, y),
        "standard",
        r"H(y, \mathrm{softmax}(z))",
    ),
    _defn(
        "renyi_ce",
        lambda: renyi(Y, S),
        (K,),
        (y, sig, alpha),
        f"{_NOTE} §2.4",
        r"H_\alpha(y,\sigma) = \frac{1}{1-\alpha}\ln\sum_k y_k\sigma_k^{\alpha-1}",
    ),
    _defn(
        "renyi_entropy",
        lambda: renyi_entropy(Y),
        (K,),
        (y, alpha),
        "Rényi 1961",
        r"H_\alpha(y) = \frac{1}{1-\alpha}\ln\sum_k y_k^\alpha",
    ),
    _defn(
        "objective",
        objective,
        (N, K),
        (sig, y, lam),
        f"reconstructed: {_NOTE} §1, §3",
        r"F(y) = -\frac1N\sum_i\ln\sigma_i^\top y_i - \frac{\lambda}{K}\sum_k\ln\bar y_k",
    ),
    _defn(
        "em_step",
        lambda: em_step(i, m),
        (N, K),
        (sig, y, lam, i, m),
        f"reconstructed: {_NOTE} §3",
        r"(T_{im} + \lambda N u_m S_{im}) / (1 + \lambda N \sum_c u_c S_{ic})",
    ),
    _defn(
        "majoriser",
        lambda: majoriser(Y2, Yold),
        (N, K),
        (sig, y, y_old, lam),
        f"reconstructed: {_NOTE} §3 (Jensen upper bounds)",
        r"G(y | y^t), the Jensen majoriser of F at y^t",
    ),
)


# ----------------------------------------------------------------------------- statements


def _simplex(base: Any = y, idx: Any = k) -> sp.Basic:
    return sp.Eq(sp.Sum(base[idx], (idx, 1, K)), 1)


def _rows_on_simplex(base: Any) -> sp.Basic:
    return sp.Eq(sp.Sum(base[i, k], (k, 1, K)), 1)


def _p_pos() -> sp.Basic:
    return sp.Gt(collision_probability(Y, S), 0)


def _onehot_statement() -> Any:
    return sp.And(
        sp.Eq(h2(onehot, softmax), shannon(onehot, softmax)),
        sp.Eq(
            sp.Derivative(h2(onehot, softmax), z[m]),
            sp.Derivative(shannon(onehot, softmax), z[m]),
        ),
    )


def _uniform_statement() -> Any:
    return sp.And(
        sp.Eq(h2(uniform, softmax), sp.log(K)),
        sp.Eq(sp.Derivative(h2(uniform, softmax), z[m]), 0),
    )


def _symmetric_statement() -> Any:
    # the loss L(z, y) = H2(y, softmax z) with its arguments exchanged: L(ln y, softmax z)
    swapped = h2(softmax, softmax_of(lambda idx: sp.log(y[idx])))
    return sp.Eq(h2(Y, softmax), swapped)


def _ytilde(idx: Any) -> Any:
    return y[idx] * softmax(idx) / collision_probability(Y, softmax)


def _logit_grad_statement() -> Any:
    return sp.Eq(sp.Derivative(h2(Y, softmax), z[m]), softmax(m) - _ytilde(m))


def _target_grad_statement() -> Any:
    return sp.Eq(sp.Derivative(h2(Y, S), y[m]), -sig[m] / collision_probability(Y, S))


def _renyi_two_statement() -> Any:
    return sp.Eq(sp.Subs(renyi(Y, S), alpha, 2), h2(Y, S))


def _renyi_limit_statement() -> Any:
    return sp.Eq(sp.Limit(renyi(Y, S), alpha, 1, "+-"), shannon(Y, S))


def _log_variance() -> Any:
    mean = sp.Sum(y[k] * sp.log(sig[k]), (k, 1, K))
    return sp.Sum(y[k] * sp.log(sig[k]) ** 2, (k, 1, K)) - mean**2


def _renyi_rate_statement() -> Any:
    ratio = (renyi(Y, S) - shannon(Y, S)) / (alpha - 1)
    return sp.Eq(sp.Limit(ratio, alpha, 1, "+-"), -_log_variance() / 2)


def _jensen_statement() -> Any:
    return sp.Le(h2(Y, S), shannon(Y, S))


def _jensen_reverse_statement() -> Any:
    return sp.Le(h2(Y, S), shannon(S, Y))


def _line(idx: Any) -> Any:
    return y[idx] + s * x[idx]


def _convex_statement() -> Any:
    return sp.Ge(sp.Derivative(h2(_line, S), (s, 2)), 0)


def _hessian_statement() -> Any:
    return sp.Eq(
        sp.Derivative(h2(Y, S), y[m], y[n]), sig[m] * sig[n] / collision_probability(Y, S) ** 2
    )


def _line2(row: Any, cls: Any) -> Any:
    return y[row, cls] + s * x[row, cls]


def _objective_convex_statement() -> Any:
    return sp.Ge(sp.Derivative(objective(_line2), (s, 2)), 0)


# the witness of non-convexity in the logits
WITNESS_Y = (sp.Rational(1, 2), sp.Rational(1, 2), sp.Integer(0))
WITNESS_Z = (sp.Integer(-5), sp.Integer(-5), sp.Integer(0))
WITNESS_D = (sp.Integer(1), sp.Integer(-1), sp.Integer(0))


def _witness_loss() -> Any:
    """``H2(y_w, softmax(z_w + s d))`` from the ``h2_logits`` definition at K = 3."""
    expr = h2(Y, softmax).xreplace({K: 3}).doit()
    reps = {y[a + 1]: WITNESS_Y[a] for a in range(3)}
    reps.update({z[a + 1]: WITNESS_Z[a] + s * WITNESS_D[a] for a in range(3)})
    return expr.xreplace(reps)


def _nonconvex_statement() -> Any:
    return sp.Lt(sp.Subs(sp.Derivative(_witness_loss(), (s, 2)), s, 0), 0)


def _argmin_statement() -> Any:
    return sp.And(
        sp.Ge(h2(Y, S), -sp.log(y_max)),
        sp.Eq(h2(Y, onehot), -sp.log(y_max)),
    )


def _nonneg_statement() -> Any:
    return sp.Ge(h2(Y, S), 0)


def _zero_at_vertex_statement() -> Any:
    return sp.Eq(h2(onehot, onehot), 0)


def _nonneg_gap_statement() -> Any:
    return sp.Ge(h2(Y, S), sp.Sum(sig[k] * (1 - y[k]), (k, 1, K)))


def _disjoint_statement() -> Any:
    return sp.Equivalent(
        sp.Eq(h2(Y, S), sp.oo, evaluate=False), sp.Eq(collision_probability(Y, S), 0)
    )


def _collision_entropy_statement() -> Any:
    return sp.Eq(h2(Y, Y), sp.Subs(renyi_entropy(Y), alpha, 2))


# --- the EM solver (reconstructed objective)


def _T(row: Any, cls: Any) -> Any:
    return e_fit(_pos2(y_pos), _pos2(sig_pos), row, cls)


def _S(row: Any, cls: Any) -> Any:
    return e_fair(_pos2(y_pos), row, cls)


def _T_old(row: Any, cls: Any) -> Any:
    return e_fit(_pos2(y_old_pos), _pos2(sig_pos), row, cls)


def _S_old(row: Any, cls: Any) -> Any:
    return e_fair(_pos2(y_old_pos), row, cls)


def _em(row: Any, cls: Any) -> Any:
    return _interior(em_step(row, cls))


def _em_from_old(row: Any, cls: Any) -> Any:
    return _interior(em_step(row, cls, old=Yold))


def _objective_gradient_statement() -> Any:
    return sp.Eq(sp.Derivative(objective(), y[i, m]), objective_grad(i, m))


def _mu(row: Any) -> Any:
    return sp.Sum(y[row, k] * objective_grad(row, k), (k, 1, K))


def _kkt_statement() -> Any:
    return sp.Eq(em_step(i, m) - y[i, m], y[i, m] * (objective_grad(i, m) - _mu(i)) / _mu(i))


def _majoriser_statement() -> Any:
    return _interior(sp.Ge(majoriser(Y2, Yold), objective()))


def _majoriser_tight_statement() -> Any:
    g, f = majoriser(Yold, Yold), objective(Yold)
    return _interior(sp.And(sp.Ge(g, f), sp.Le(g, f)))


def _mstep_statement() -> Any:
    return _interior(sp.Le(majoriser(_em_from_old, Yold), majoriser(Y2, Yold)))


def _em_monotone_statement() -> Any:
    return _interior(sp.Le(objective(lambda a, b: em_step(a, b)), objective()))


def _em_pgd_statement() -> Any:
    return sp.Eq(objective(_pos2(y_em)), objective(_pos2(y_pgd)))


# ----------------------------------------------------------------------------- certificates


def _use(lemma: Any, instance: dict[str, Any], factor: Any = 1) -> LemmaUse:
    """A :class:`LemmaUse` whose vector / matrix arguments are SymPy ``Lambda`` objects (so the
    certificate prints as mathematics): one argument ``k``, two arguments ``(i, k)``."""
    import inspect

    def as_lambda(v: Any) -> Any:
        if not callable(v) or isinstance(v, sp.Lambda):
            return v
        arity = len(inspect.signature(v).parameters)
        args = (k,) if arity == 1 else (i, k)
        return sp.Lambda(args, v(*args))

    return LemmaUse(lemma, {name: as_lambda(v) for name, v in instance.items()}, factor)


def _jensen_fit(point: Mat, old_t: Mat) -> LemmaUse:
    """(1/N) sum_i [ln sigma_i^T y_i - sum_k T_ik ln(sigma_ik y_ik / T_ik)] >= 0."""
    return _use(
        L.JENSEN_LOG_ROWS,
        {
            "m": N,
            "n": K,
            "c": lambda a: sp.Integer(1) / N,
            "w": old_t,
            "x": lambda a, b: sig_pos[a, b] * point(a, b) / old_t(a, b),
        },
    )


def _jensen_fair(point: Mat, old_s: Mat) -> LemmaUse:
    """(lambda/K) [sum_k ln sum_i y_ik - sum_i sum_k S_ik ln(y_ik / S_ik)] >= 0."""
    return _use(
        L.JENSEN_LOG_COLS,
        {
            "m": N,
            "n": K,
            "c": lambda b: lam / K,
            "w": old_s,
            "x": lambda a, b: point(a, b) / old_s(a, b),
        },
    )


def _gibbs_mstep(old: Mat, q_: Mat) -> LemmaUse:
    """(1/N) sum_i sum_k u_ik ln(u_ik / (U_i q_ik)) >= 0 with u = T + lambda N u S."""
    return _use(
        L.GIBBS_ROWS,
        {"m": N, "n": K, "u": lambda a, b: _interior(m_numerator(old, S2, a, b)), "q": q_},
        factor=1 / N,
    )


def _exchange_log_col(old: Mat, rows_first: bool = True) -> LemmaUse:
    """sum_i sum_k S_ik ln(col mass_k) - sum_k sum_i S_ik ln(col mass_k) = 0 (finite sums
    commute; ``rows_first=False`` gives the opposite sign)."""

    def term(a: Any, b: Any) -> Any:
        return _interior(old(a, b) * sp.log(col_mass(old, b)) / col_mass(old, b))

    inst = (
        {"m": N, "n": K, "a": term}
        if rows_first
        else {"m": K, "n": N, "a": lambda b, a: term(a, b)}
    )
    return _use(L.SUM_EXCHANGE, inst, factor=lam / K)


_MM_STEPS = ("linear_sums", "expand_log", "expand", "linear_sums", "canon")
_RESOLVE = ("doit", ("in_range", K, c), "doit", ("in_range", K, c))


# ----------------------------------------------------------------------------- catalogue


def _claim(cid: str, kind: Any, text: str, statement: Callable[[], Any], source: str, **kw: Any):
    return Claim(
        id=f"{_FAM}.{cid}",
        family=_FAM,
        kind=kind,
        text=text,
        statement=statement,
        source=source,
        **kw,
    )


CLAIMS: tuple[Claim, ...] = (
    _claim(
        "onehot_equals_shannon",
        "identity",
        "For a one-hot target e_c, collision CE equals Shannon CE in value and in gradient: "
        "H2(e_c, softmax z) = H(e_c, softmax z) and d/dz_m of both agree, for every z.",
        _onehot_statement,
        f"{_ABS}; derived in research note §2.1",
        evidence=("symbolic", "precise", "production"),
        tactic=Both(
            (
                Simplify(steps=_RESOLVE),
                Simplify(steps=("doit", ("in_range", K, c, m), "doit", ("in_range", K, c, m))),
            )
        ),
        facts=lambda: index_facts(K, c, m),
        uses=("h2_logits", "shannon_ce_logits"),
    ),
    _claim(
        "uniform_constant",
        "identity",
        "A uniform target gives H2(u, softmax z) = ln K for every z, and a zero logit gradient.",
        _uniform_statement,
        f"{_ABS} ('zero contribution to the training'); derived in research note §2.2",
        evidence=("symbolic", "precise", "production"),
        tactic=Both(
            (
                Simplify(steps=("linear_sums", "canon")),
                Differentiate(steps=("derivatives", ("in_range", K, m), "linear_sums", "canon")),
            )
        ),
        facts=lambda: index_facts(K, m),
        uses=("h2_logits",),
    ),
    _claim(
        "symmetric",
        "identity",
        "Collision CE is symmetric: for a target y > 0 on the simplex, the loss of (logits, "
        "target) satisfies H2(y, softmax z) = H2(softmax z, softmax(ln y)), i.e. "
        "L(z, y) = L(ln y, softmax z).",
        _symmetric_statement,
        f"{_ABS}; derived in research note §2.3",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("facts", "linear_sums", "canon")),
        facts=lambda: (_simplex(), sp.Gt(y[k], 0)),
        uses=("h2_logits",),
        notes="softmax(ln y) = y on the simplex; at the level of probability vectors the "
        "symmetry H2(y, s) = H2(s, y) is the commutativity of y_k s_k",
    ),
    _claim(
        "logit_gradient",
        "gradient",
        "dH2(y, softmax z)/dz_m = sigma_m - ytilde_m with sigma = softmax(z) and the effective "
        "target ytilde = y*sigma/(sigma^T y).",
        _logit_grad_statement,
        "derived in research note §2.7",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("doit", ("in_range", K, m), "linear_sums", "canon")),
        facts=lambda: index_facts(K, m),
        uses=("h2_logits",),
    ),
    _claim(
        "target_gradient",
        "gradient",
        "dH2(y, sigma)/dy_m = -sigma_m/(sigma^T y) (no y_m in a denominator: it holds at "
        "y_m = 0 too).",
        _target_grad_statement,
        "derived in research note §2.7",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("doit", ("in_range", K, m))),
        facts=lambda: index_facts(K, m),
        uses=("h2",),
    ),
    _claim(
        "renyi_order_two",
        "identity",
        "Collision CE is the Renyi cross-entropy H_alpha(y, sigma) at alpha = 2.",
        _renyi_two_statement,
        "derived in research note §2.4; the paper's 'generalized CE' wording (abstract)",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("doit",)),
        uses=("renyi_ce", "h2"),
    ),
    _claim(
        "renyi_shannon_limit",
        "limit",
        "H_alpha(y, sigma) -> H(y, sigma) (Shannon CE) as alpha -> 1, for y on the simplex and "
        "sigma > 0.",
        _renyi_limit_statement,
        "derived in research note §2.4 (standard Renyi theory)",
        evidence=("symbolic", "precise"),
        tactic=LHopital(
            numerator=sp.log(sp.Sum(y[k] * sig[k] ** (alpha - 1), (k, 1, K))),
            denominator=1 - alpha,
            steps=("facts",),
        ),
        facts=lambda: (_simplex(), sp.Gt(sig[k], 0)),
        uses=("renyi_ce", "shannon_ce"),
    ),
    _claim(
        "renyi_shannon_rate",
        "asymptotic",
        "(H_alpha(y, sigma) - H(y, sigma))/(alpha - 1) -> -Var_y(ln sigma)/2 as alpha -> 1, "
        "i.e. H_alpha = H - (alpha-1) Var_y(ln sigma)/2 + o(alpha-1), for y on the simplex and "
        "sigma > 0.",
        _renyi_rate_statement,
        "derived in research note §2.4 (second-order expansion)",
        evidence=("symbolic", "precise"),
        tactic=LHopital(
            numerator=sp.log(sp.Sum(y[k] * sig[k] ** (alpha - 1), (k, 1, K)))
            + (alpha - 1) * shannon(Y, S),
            denominator=-((alpha - 1) ** 2),
            steps=("facts",),
            order=2,
        ),
        facts=lambda: (_simplex(), sp.Gt(sig[k], 0)),
        uses=("renyi_ce", "shannon_ce"),
        notes="a 0/0 form of order two: numerator and denominator and their first derivatives "
        "vanish at alpha = 1 (the numerator's by sum y = 1), the second derivatives are "
        "Var_y(ln sigma) and -2",
    ),
    _claim(
        "jensen_bound",
        "inequality",
        "H2(y, sigma) <= H(y, sigma) (Shannon CE) for y on the simplex and sigma > 0.",
        _jensen_statement,
        "derived in research note §2.4 (Jensen bound)",
        evidence=("symbolic", "precise", "production"),
        tactic=Reduction(uses=(_use(L.JENSEN_LOG, {"n": K, "w": Y, "x": S}),)),
        facts=lambda: (_simplex(), sp.Gt(sig[k], 0)),
        uses=("h2", "shannon_ce"),
    ),
    _claim(
        "jensen_bound_reverse",
        "inequality",
        "H2(y, sigma) <= H(sigma, y) (reverse CE) for sigma on the simplex and y > 0.",
        _jensen_reverse_statement,
        "derived in research note §2.4 (Jensen bound)",
        evidence=("symbolic", "precise", "production"),
        tactic=Reduction(uses=(_use(L.JENSEN_LOG, {"n": K, "w": S, "x": Y}),)),
        facts=lambda: (_simplex(sig), sp.Gt(y[k], 0)),
        uses=("h2", "shannon_ce"),
        notes="with y_k = 0 where sigma_k > 0 the reverse CE is +inf and the bound is trivial",
    ),
    _claim(
        "convex_in_targets",
        "inequality",
        "H2 is convex in y: along every line y + s x, d^2/ds^2 H2(y + s x, sigma) >= 0 wherever "
        "sigma^T (y + s x) > 0.",
        _convex_statement,
        f"{_ABS} ('convex w.r.t. pseudo-labels'); derived in research note §2.6",
        evidence=("symbolic", "precise", "production"),
        tactic=Reduction(
            uses=(),
            extra=(
                # the denominator expanded (Sum + Sum), as the engine keys the fact P(s) > 0
                (
                    collision_probability(lambda a: x[a], S)
                    / sp.expand(collision_probability(_line, S))
                )
                ** 2,
            ),
            steps=("derivatives",),
        ),
        facts=lambda: (sp.Gt(collision_probability(_line, S), 0),),
        uses=("h2",),
        notes="the second derivative is (sigma^T x)^2/(sigma^T (y + s x))^2",
    ),
    _claim(
        "hessian_targets",
        "gradient",
        "The Hessian of H2 in y is d^2 H2/dy_m dy_n = sigma_m sigma_n/(sigma^T y)^2 (rank one).",
        _hessian_statement,
        "derived in research note §2.6",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("doit", ("in_range", K, m, n))),
        facts=lambda: index_facts(K, m, n),
        uses=("h2",),
    ),
    _claim(
        "objective_convex",
        "inequality",
        "The reconstructed pseudo-label objective F is convex in y: along every line y + s x, "
        "d^2/ds^2 F(y + s x) >= 0 wherever the row masses sigma_i^T (y_i + s x_i) and the "
        "class masses sum_i (y_ik + s x_ik) are > 0.",
        _objective_convex_statement,
        f"{_ABS} ('convex w.r.t. pseudo-labels'); reconstructed objective, research note §2.6",
        evidence=("symbolic", "precise", "production"),
        tactic=Reduction(
            uses=(
                _use(
                    L.SUM_NONNEG,
                    {
                        "n": N,
                        "a": lambda a: (
                            row_mass(lambda u_, v_: x[u_, v_], S2, a) ** 2
                            / sp.expand(row_mass(_line2, S2, a)) ** 2
                        ),
                    },
                    factor=1 / N,
                ),
                _use(
                    L.SUM_NONNEG,
                    {
                        "n": K,
                        "a": lambda b: (
                            col_mass(lambda u_, v_: x[u_, v_], b) ** 2
                            / sp.expand(col_mass(_line2, b)) ** 2
                        ),
                    },
                    factor=lam / K,
                ),
            ),
            steps=("derivatives", "linear_sums", "canon"),
        ),
        facts=lambda: (
            sp.Gt(row_mass(_line2, S2, k), 0),
            sp.Gt(col_mass(_line2, k), 0),
        ),
        uses=("objective",),
    ),
    _claim(
        "nonconvex_in_logits",
        "inequality",
        "H2 is not convex in the logits: at y=(1/2,1/2,0), z=(-5,-5,0) the second "
        "derivative along d=(1,-1,0) is negative.",
        _nonconvex_statement,
        "derived in research note §2.6 (counterexample)",
        evidence=("symbolic", "precise", "production"),
        tactic=Exact(steps=("doit",)),
        uses=("h2_logits",),
        notes="Existential claim, exhibited by an exact witness (K = 3). The exact value is "
        "2e^-5/(1+2e^-5) - 1; contrast: Shannon CE is convex in z.",
    ),
    _claim(
        "argmin_onehot",
        "inequality",
        "If y_max >= y_k for all k and y_c = y_max (c = argmax y), then H2(y, sigma) >= "
        "-ln y_max for every sigma on the simplex with sigma^T y > 0, with equality at "
        "sigma = e_c: the minimum over sigma is -ln max_k y_k, at the one-hot vector at argmax y.",
        _argmin_statement,
        "derived in research note §2.5",
        evidence=("symbolic", "precise", "production"),
        tactic=Both(  # SymPy orders the conjuncts: the equality first
            (
                Simplify(steps=_RESOLVE),
                Reduction(
                    uses=(
                        _use(L.LOG_TANGENT, {"u": collision_probability(Y, S) / y_max}),
                        _use(
                            L.SUM_NONNEG,
                            {"n": K, "a": lambda a: sig[a] * (y_max - y[a])},
                            factor=1 / y_max,
                        ),
                    ),
                    steps=("expand_log", "linear_sums", "facts"),
                ),
            )
        ),
        facts=lambda: (
            _simplex(sig),
            _p_pos(),
            sp.Ge(y_max - y[k], 0),
            sp.Eq(y[c], y_max),
            *index_facts(K, c),
        ),
        uses=("h2",),
        notes="over softmax outputs (sigma > 0) the minimum is an infimum, approached as "
        "z_c -> +inf",
    ),
    _claim(
        "nonnegative",
        "inequality",
        "H2(y, sigma) >= 0 for y and sigma on the simplex (with sigma^T y > 0; else H2 = +inf).",
        _nonneg_statement,
        "derived in research note §2.4",
        evidence=("symbolic", "precise", "production"),
        tactic=Reduction(
            uses=(
                _use(L.LOG_TANGENT, {"u": collision_probability(Y, S)}),
                _use(L.SUM_PRODUCT, {"n": K, "a": S, "b": Y}),
            ),
            steps=("facts",),
        ),
        facts=lambda: (_simplex(), _simplex(sig), _p_pos()),
        uses=("h2",),
    ),
    _claim(
        "nonnegative_zero_at_vertex",
        "identity",
        "H2(e_c, e_c) = 0: the bound H2 >= 0 is attained at y = sigma = e_c.",
        _zero_at_vertex_statement,
        "derived in research note §2.4",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=_RESOLVE),
        facts=lambda: index_facts(K, c),
        uses=("h2",),
    ),
    _claim(
        "nonnegative_gap",
        "inequality",
        "H2(y, sigma) >= sum_k sigma_k (1 - y_k) for sigma on the simplex and sigma^T y > 0.",
        _nonneg_gap_statement,
        "derived here (the 'only if' half of 'H2 = 0 iff y = sigma = e_c', research note §2.4)",
        evidence=("symbolic", "precise", "production"),
        tactic=Reduction(
            uses=(_use(L.LOG_TANGENT, {"u": collision_probability(Y, S)}),),
            steps=("linear_sums", "facts"),
        ),
        facts=lambda: (_simplex(sig), _p_pos()),
        uses=("h2",),
        notes="for y on the simplex every term sigma_k (1 - y_k) is >= 0, so H2 = 0 forces "
        "y_k = 1 wherever sigma_k > 0, i.e. y = e_c and sigma = e_c: the equality case of "
        "H2 >= 0 is exactly the vertex (claim nonnegative_zero_at_vertex). The deduction from "
        "this bound is logic, not part of the engine's certificate.",
    ),
    _claim(
        "infinite_iff_disjoint",
        "identity",
        "H2(y, sigma) = +inf iff sigma^T y = 0, i.e. iff y and sigma (both >= 0) have disjoint "
        "supports (convention -ln 0 = +inf).",
        _disjoint_statement,
        "derived in research note §2.4",
        evidence=("precise", "production"),
        uses=("h2",),
        notes="Numeric only (checked): the statement lives in the extended reals; SymPy's "
        "log(0) is complex infinity, so there is no symbolic leg. The legs check +inf (and a "
        "finite gradient in production) for disjoint supports and finite values otherwise.",
    ),
    _claim(
        "collision_entropy",
        "identity",
        "At sigma = y collision CE is Renyi's collision entropy: H2(y, y) = H_alpha(y) at "
        "alpha = 2, i.e. -ln sum_k y_k^2.",
        _collision_entropy_statement,
        "derived in research note §2.4",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("doit",)),
        uses=("h2", "renyi_entropy"),
    ),
    _claim(
        "objective_gradient",
        "gradient",
        "dF/dy_im = -(sigma_im/(sigma_i^T y_i) + lambda N/(K sum_l y_lm))/N for the "
        "reconstructed pseudo-label objective F.",
        _objective_gradient_statement,
        "reconstructed objective, research note §3; derived here",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("doit", ("in_range", N, i), ("in_range", K, m)) * 2),
        facts=lambda: (*index_facts(N, i), *index_facts(K, m)),
        uses=("objective",),
    ),
    _claim(
        "em_fixed_point_kkt",
        "algorithmic",
        "The (reconstructed) EM step is y+_im - y_im = y_im (g_im - mu_i)/mu_i, with "
        "g = grad F (claim objective_gradient) and mu_i = sum_k y_ik g_ik, for every y >= 0 "
        "(zero entries included) with sigma_i^T y_i > 0 and every class mass sum_l y_lk > 0.",
        _kkt_statement,
        "reconstructed: research note §3 (convergence); derived here",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("linear_sums", "canon", "together")),
        uses=("em_step",),
        notes="Consequence (mu_i < 0): y is an EM fixed point iff y_ik (g_ik - mu_i) = 0 for "
        "all i, k, which is stationarity on the support plus complementary slackness of the KKT "
        "conditions of min F over the simplices, and holds at y_ik = 0 too. At an interior "
        "fixed point it gives g_ik = mu_i for all k, the full KKT system, hence (F convex, claim "
        "objective_convex) a global minimum. At a boundary fixed point dual feasibility "
        "(g_ik >= mu_i where y_ik = 0) is NOT implied: a zero entry stays zero under EM.",
    ),
    _claim(
        "em_majoriser",
        "inequality",
        "The Jensen majoriser G(y | y^t) of the (reconstructed) EM bounds F from above: "
        "G(y | y^t) >= F(y) for all interior y, y^t (sigma > 0).",
        _majoriser_statement,
        "reconstructed: research note §3 (Jensen upper bounds)",
        evidence=("symbolic", "precise"),
        tactic=Reduction(
            uses=(_jensen_fit(_pos2(y_pos), _T_old), _jensen_fair(_pos2(y_pos), _S_old)),
            steps=_MM_STEPS,
        ),
        uses=("majoriser", "objective"),
    ),
    _claim(
        "em_majoriser_tight",
        "identity",
        "The majoriser touches F at the current iterate: G(y^t | y^t) = F(y^t) (stated as "
        "G >= F and G <= F) for interior y^t.",
        _majoriser_tight_statement,
        "reconstructed: research note §3 (E-step makes the bounds tight)",
        evidence=("symbolic", "precise"),
        tactic=Both(
            (
                Reduction(uses=(_exchange_log_col(Yold, False),), steps=_MM_STEPS),
                Reduction(uses=(_exchange_log_col(Yold, True),), steps=_MM_STEPS),
            )
        ),
        uses=("majoriser", "objective"),
    ),
    _claim(
        "em_mstep_minimises",
        "inequality",
        "The M-step minimises the majoriser over the simplices: G(y^{t+1} | y^t) <= G(y | y^t) "
        "for every interior y with rows on the simplex.",
        _mstep_statement,
        "reconstructed: research note §3 (closed-form M-step)",
        evidence=("symbolic", "precise"),
        tactic=Reduction(
            uses=(_gibbs_mstep(Yold, _pos2(y_pos)),),
            steps=_MM_STEPS,
        ),
        facts=lambda: (_rows_on_simplex(y_pos),),
        uses=("majoriser", "em_step"),
    ),
    _claim(
        "em_monotone",
        "algorithmic",
        "Each (reconstructed) EM step never increases the pseudo-label objective: "
        "F(y^{t+1}) <= F(y) for every interior y with rows on the simplex.",
        _em_monotone_statement,
        "reconstructed: EM of research note §3 (Jensen/MM split); the paper's exact EM is "
        "unavailable",
        evidence=("symbolic", "precise", "production"),
        tactic=Reduction(
            uses=(
                _gibbs_mstep(Y2, _pos2(y_pos)),
                _jensen_fit(_em, _T),
                _jensen_fair(_em, _S),
                _exchange_log_col(_pos2(y_pos)),
            ),
            steps=_MM_STEPS,
        ),
        facts=lambda: (_rows_on_simplex(y_pos),),
        uses=("objective", "em_step"),
        notes="The certificate is the majorise-minimise chain F(y+) <= G(y+|y) <= G(y|y) = F(y) "
        "written as one identity: F(y) - F(y+) = (1/N) sum_i U_i KL(y+_i || y_i) [gibbs_rows, "
        "M-step] + the Jensen gaps of G(.|y) at y+ [jensen_log_rows, jensen_log_cols], plus an "
        "exchange of two finite sums; claims em_majoriser, em_majoriser_tight and "
        "em_mstep_minimises prove the three links separately.",
    ),
    _claim(
        "em_matches_pgd",
        "algorithmic",
        "EM and projected gradient descent (exact simplex projection) reach the same "
        "optimum of F: F(y^EM) = F(y^PGD) for their outputs, each within its Frank-Wolfe "
        "duality gap.",
        _em_pgd_statement,
        "research note §3 (convergence, [D]); the paper's speed comparison is unverified",
        evidence=("production",),
        uses=("objective",),
        notes="Numeric only (checked): y^EM and y^PGD are the outputs of two iterative "
        "solvers, so the statement is about the algorithms, not a symbolic identity.",
    ),
)
