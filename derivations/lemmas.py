r"""The lemma library that :class:`~derivations.tactics.Reduction` certificates cite.

Each lemma states ``gap >= 0`` under ``conditions`` for symbolic sizes and carries its own
``check()``: a symbolic argument that SymPy carries out when the engine runs (reported in
``softnce verify``'s lemma table). The arguments are elementary and complete:

* the two *tangent-line* lemmas are proved by calculus: a twice-differentiable function with
  ``f(a) = 0``, ``f'(a) = 0`` and ``f'' > 0`` on an interval has its minimum 0 at ``a``;
* Jensen (ln and exp), Gibbs and the log-sum inequality are reduced, by an identity SymPy checks,
  to a non-negative combination of a tangent-line lemma at each index (a sum of non-negatives);
* Cauchy–Schwarz is reduced to Lagrange's identity, a double sum of squares.

Parameters are placeholders: sizes (``n``), scalars and ``IndexedBase`` vectors (``w[k]``,
``x[k]``, ...). :meth:`Lemma.instantiate` substitutes a claim's expressions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from softnce_theory.derivations._sym import canon, linear_sums

n = sp.Symbol("n", integer=True, positive=True)
k, i_, j_ = sp.symbols("k i j", integer=True)
u = sp.Symbol("u", positive=True)
v = sp.Symbol("v", real=True)
w = sp.IndexedBase("w", nonnegative=True)
x = sp.IndexedBase("x", positive=True)
xr = sp.IndexedBase("x", real=True)
p = sp.IndexedBase("p", nonnegative=True)
q = sp.IndexedBase("q", positive=True)
a = sp.IndexedBase("a", real=True)
b = sp.IndexedBase("b", real=True)


@dataclass(frozen=True)
class Lemma:
    """``gap >= 0`` whenever ``conditions`` hold (for every index ``k`` in ``1..n``)."""

    name: str
    text: str
    params: Mapping[str, Any]  # parameter name -> placeholder Symbol / IndexedBase
    gap: Callable[[], Any]
    conditions: Callable[[], tuple[Any, ...]]
    check: Callable[[], tuple[bool, str]]
    source: str
    strict: bool = False  # True: gap > 0 under the conditions (the check proves the strict form)

    def instantiate(self, instance: Mapping[str, Any], expr: Any) -> Any:
        """``expr`` (the gap or a condition) with the parameters replaced by ``instance``."""
        unknown = set(instance) - set(self.params)
        if unknown:
            raise ValueError(f"lemma {self.name}: unknown parameter(s) {sorted(unknown)}")
        missing = set(self.params) - set(instance)
        if missing:
            raise ValueError(f"lemma {self.name}: instance lacks {sorted(missing)}")
        out = expr
        for name, ph in self.params.items():
            val = instance[name]
            if isinstance(ph, sp.IndexedBase):
                fn = val if callable(val) else None
                if fn is None:
                    raise ValueError(f"lemma {self.name}: {name} needs a function of the index")
                out = out.replace(
                    lambda e, ph=ph: isinstance(e, sp.Indexed) and e.base == ph,
                    lambda e, fn=fn: fn(*e.indices),
                )
            else:
                out = out.xreplace({ph: sp.sympify(val)})
        return out


def _tangent_check(f: Any, var: Any, at: Any) -> tuple[bool, str]:
    """``f(at) = 0``, ``f'(at) = 0`` and ``f'' > 0`` for all ``var`` in the domain."""
    d1, d2 = sp.diff(f, var), sp.diff(f, var, 2)
    ok = (
        sp.simplify(f.subs(var, at)) == 0
        and sp.simplify(d1.subs(var, at)) == 0
        and bool(sp.simplify(d2).is_positive)
    )
    return ok, f"f({at}) = 0, f'({at}) = 0, f'' = {sp.simplify(d2)} > 0: f >= f({at}) = 0"


def _zero(expr: Any) -> bool:
    if sp.expand(canon(expr), power_exp=False) == 0:
        return True
    e = sp.simplify(canon(linear_sums(sp.expand(expr))))
    return e == 0 or sp.simplify(canon(linear_sums(sp.expand(e)))) == 0


def _on_simplex(expr: Any, base: Any) -> Any:
    """Replace ``Sum(base[k], (k, 1, n))`` by 1."""
    return canon(expr).xreplace({canon(sp.Sum(base[k], (k, 1, n))): sp.Integer(1)})


# ----------------------------------------------------------------------------- tangent lines

LOG_TANGENT = Lemma(
    name="log_tangent",
    text="u - 1 - ln u >= 0 for u > 0",
    params={"u": u},
    gap=lambda: u - 1 - sp.log(u),
    conditions=lambda: (sp.Gt(u, 0),),
    check=lambda: _tangent_check(u - 1 - sp.log(u), u, 1),
    source="standard (tangent line of the concave ln at 1)",
)

EXP_TANGENT = Lemma(
    name="exp_tangent",
    text="e^v - 1 - v >= 0 for real v",
    params={"v": v},
    gap=lambda: sp.exp(v) - 1 - v,
    conditions=lambda: (),
    check=lambda: _tangent_check(sp.exp(v) - 1 - v, v, 0),
    source="standard (tangent line of the convex exp at 0)",
)

XLOGX_TANGENT = Lemma(
    name="xlogx_tangent",
    text="u ln u - u + 1 >= 0 for u > 0",
    params={"u": u},
    gap=lambda: u * sp.log(u) - u + 1,
    conditions=lambda: (sp.Gt(u, 0),),
    check=lambda: _tangent_check(u * sp.log(u) - u + 1, u, 1),
    source="standard (convexity of u ln u)",
)


# ----------------------------------------------------------------------------- sums


def _sum_nonneg_check() -> tuple[bool, str]:
    t = sp.IndexedBase("t", nonnegative=True)
    ok = bool(sp.Sum(t[k], (k, 1, n)).is_nonnegative)
    return ok, "SymPy's assumption system: a finite Sum of non-negative terms is non-negative"


SUM_NONNEG = Lemma(
    name="sum_nonneg",
    text="sum_k a_k >= 0 when every a_k >= 0",
    params={"n": n, "a": a},
    gap=lambda: sp.Sum(a[k], (k, 1, n)),
    conditions=lambda: (sp.Ge(a[k], 0),),
    check=_sum_nonneg_check,
    source="standard",
)


def _jensen_log_check() -> tuple[bool, str]:
    m = sp.Sum(w[j_] * x[j_], (j_, 1, n))
    gap = JENSEN_LOG.gap()
    combo = sp.Sum(w[k] * LOG_TANGENT.instantiate({"u": x[k] / m}, LOG_TANGENT.gap()), (k, 1, n))
    d = _on_simplex(linear_sums(sp.expand_log(combo, force=True)), w) - gap
    ok = _zero(_on_simplex(linear_sums(sp.expand(d)), w))
    return ok, (
        "ln(sum w x) - sum w ln x == sum_k w_k * log_tangent(x_k / sum w x) using sum w = 1 "
        "(identity checked by SymPy); each term is w_k >= 0 times a log_tangent gap >= 0"
    )


JENSEN_LOG = Lemma(
    name="jensen_log",
    text="ln(sum_k w_k x_k) >= sum_k w_k ln x_k for weights on the simplex and x > 0",
    params={"n": n, "w": w, "x": x},
    gap=lambda: sp.log(sp.Sum(w[k] * x[k], (k, 1, n))) - sp.Sum(w[k] * sp.log(x[k]), (k, 1, n)),
    conditions=lambda: (sp.Ge(w[k], 0), sp.Eq(sp.Sum(w[k], (k, 1, n)), 1), sp.Gt(x[k], 0)),
    check=_jensen_log_check,
    source="Jensen 1906; standard (concavity of ln)",
)


def _jensen_exp_check() -> tuple[bool, str]:
    # the identity holds for any constant M; it is then used at M = sum_j w_j x_j
    M = sp.Symbol("M", real=True)
    combo = sp.exp(M) * sp.Sum(
        w[k] * EXP_TANGENT.instantiate({"v": xr[k] - M}, EXP_TANGENT.gap()), (k, 1, n)
    )
    e = _on_simplex(linear_sums(sp.expand(combo)), w)
    e = e.xreplace({M: sp.Sum(w[j_] * xr[j_], (j_, 1, n))})
    ok = _zero(e - JENSEN_EXP.gap())
    return ok, (
        "sum w e^x - e^M == e^M sum_k w_k * exp_tangent(x_k - M) at M = sum w x, using "
        "sum w = 1 (identity checked by SymPy); each term is >= 0"
    )


JENSEN_EXP = Lemma(
    name="jensen_exp",
    text="sum_k w_k e^{x_k} >= e^{sum_k w_k x_k} for weights on the simplex",
    params={"n": n, "w": w, "x": xr},
    gap=lambda: sp.Sum(w[k] * sp.exp(xr[k]), (k, 1, n)) - sp.exp(sp.Sum(w[k] * xr[k], (k, 1, n))),
    conditions=lambda: (sp.Ge(w[k], 0), sp.Eq(sp.Sum(w[k], (k, 1, n)), 1)),
    check=_jensen_exp_check,
    source="Jensen 1906; standard (convexity of exp)",
)


def _gibbs_check() -> tuple[bool, str]:
    combo = sp.Sum(
        q[k] * XLOGX_TANGENT.instantiate({"u": p[k] / q[k]}, XLOGX_TANGENT.gap()), (k, 1, n)
    )
    e = linear_sums(sp.expand(sp.expand_log(sp.expand(combo), force=True)))
    e = canon(e).xreplace(
        {
            canon(sp.Sum(p[k], (k, 1, n))): sp.Integer(1),
            canon(sp.Sum(q[k], (k, 1, n))): sp.Integer(1),
        }
    )
    gap = linear_sums(sp.expand_log(GIBBS.gap(), force=True))
    ok = _zero(e - gap)
    return ok, (
        "sum p ln(p/q) == sum_k q_k * xlogx_tangent(p_k/q_k) using sum p = sum q = 1 (identity "
        "checked by SymPy); each term is q_k > 0 times a gap >= 0"
    )


GIBBS = Lemma(
    name="gibbs",
    text="KL(p || q) = sum_k p_k ln(p_k/q_k) >= 0 for p, q on the simplex, q > 0",
    params={"n": n, "p": p, "q": q},
    gap=lambda: sp.Sum(p[k] * sp.log(p[k] / q[k]), (k, 1, n)),
    conditions=lambda: (
        sp.Gt(p[k], 0),
        sp.Gt(q[k], 0),
        sp.Eq(sp.Sum(p[k], (k, 1, n)), 1),
        sp.Eq(sp.Sum(q[k], (k, 1, n)), 1),
    ),
    check=_gibbs_check,
    source="Gibbs' inequality; Cover & Thomas, Elements of Information Theory, Thm 2.6.3",
)


def _log_sum_check() -> tuple[bool, str]:
    A, B = sp.Sum(x[k], (k, 1, n)), sp.Sum(q[k], (k, 1, n))
    gap = LOG_SUM.gap()
    # A * KL(x/A || q/B), written out; the identity holds for any positive A, B
    kl = sp.Sum((x[k] / A) * sp.log((x[k] / A) / (q[k] / B)), (k, 1, n))
    e = linear_sums(sp.expand(sp.expand_log(sp.expand(A * kl), force=True)))
    g = linear_sums(sp.expand(sp.expand_log(gap, force=True)))
    ok = _zero(e - g)
    return ok, (
        "sum a ln(a/b) - A ln(A/B) == A * KL(a/A || b/B) with A = sum a, B = sum b (identity "
        "checked by SymPy); A > 0 and KL >= 0 by gibbs"
    )


LOG_SUM = Lemma(
    name="log_sum",
    text="sum_k a_k ln(a_k/b_k) >= (sum a) ln(sum a / sum b) for a, b > 0",
    params={"n": n, "a": x, "b": q},
    gap=lambda: (
        sp.Sum(x[k] * sp.log(x[k] / q[k]), (k, 1, n))
        - sp.Sum(x[k], (k, 1, n)) * sp.log(sp.Sum(x[k], (k, 1, n)) / sp.Sum(q[k], (k, 1, n)))
    ),
    conditions=lambda: (sp.Gt(x[k], 0), sp.Gt(q[k], 0)),
    check=_log_sum_check,
    source="log-sum inequality; Cover & Thomas, Thm 2.7.1",
)


def _cauchy_schwarz_check() -> tuple[bool, str]:
    lagrange = sp.Rational(1, 2) * sp.Sum(
        sp.Sum((a[i_] * b[j_] - a[j_] * b[i_]) ** 2, (j_, 1, n)), (i_, 1, n)
    )
    e = linear_sums(sp.expand(lagrange))
    ok = _zero(e - CAUCHY_SCHWARZ.gap()) and bool(lagrange.is_nonnegative)
    return ok, (
        "Lagrange's identity: (sum a^2)(sum b^2) - (sum ab)^2 == 1/2 sum_i sum_j "
        "(a_i b_j - a_j b_i)^2 (checked by SymPy), a sum of squares"
    )


CAUCHY_SCHWARZ = Lemma(
    name="cauchy_schwarz",
    text="(sum_k a_k b_k)^2 <= (sum_k a_k^2)(sum_k b_k^2)",
    params={"n": n, "a": a, "b": b},
    gap=lambda: (
        sp.Sum(a[k] ** 2, (k, 1, n)) * sp.Sum(b[k] ** 2, (k, 1, n))
        - sp.Sum(a[k] * b[k], (k, 1, n)) ** 2
    ),
    conditions=lambda: (),
    check=_cauchy_schwarz_check,
    source="Cauchy 1821; Lagrange's identity",
)


_m_lse = sp.Symbol("m", integer=True)
_xm = sp.IndexedBase("X", real=True)


def _lse_ge_term_check() -> tuple[bool, str]:
    from softnce_theory.derivations._sym import index_in_range

    rest = sp.Sum((1 - sp.KroneckerDelta(k, _m_lse)) * sp.exp(xr[k]), (k, 1, n))
    # (1) sum_k e^{x_k} = e^{x_m} + sum_k (1 - delta_km) e^{x_k} for 1 <= m <= n
    ident = index_in_range(linear_sums(rest).doit(), n, _m_lse) - (
        sp.Sum(sp.exp(xr[k]), (k, 1, n)) - sp.exp(xr[_m_lse])
    )
    ok1 = sp.simplify(ident) == 0
    # (2) every term of the rest is >= 0: k = m gives 0, k != m gives e^{x_k} > 0
    term = rest.function
    ok2 = term.subs(k, _m_lse) == 0 and bool(
        term.subs(sp.KroneckerDelta(k, _m_lse), 0).is_nonnegative
    )
    # (3) with R = rest >= 0: log(e^{x_m} + R) - x_m = log(1 + e^{-x_m} R) (exp of both sides
    # agree, both real), and SymPy signs log(1 + e^{-x_m} R) >= 0
    r = sp.Dummy("R", nonnegative=True)
    lhs = sp.log(sp.exp(xr[_m_lse]) + r) - xr[_m_lse]
    rhs = sp.log(1 + sp.exp(-xr[_m_lse]) * r)
    ok3 = sp.simplify(sp.exp(lhs) - sp.exp(rhs)) == 0 and bool(rhs.is_nonnegative)
    return ok1 and ok2 and ok3, (
        "sum_k e^{x_k} = e^{x_m} + R with R = sum_k (1 - delta_km) e^{x_k} (identity checked by "
        "SymPy for 1 <= m <= n), R >= 0 term by term (k = m: 0; k != m: e^{x_k} > 0); then "
        "log(e^{x_m} + R) - x_m = log(1 + e^{-x_m} R) >= 0 (SymPy)"
    )


LSE_GE_TERM = Lemma(
    name="lse_ge_term",
    text="log sum_{k=1}^n e^{x_k} >= x_m for every index 1 <= m <= n",
    params={"n": n, "x": xr, "m": _m_lse},
    gap=lambda: sp.log(sp.Sum(sp.exp(xr[k]), (k, 1, n))) - xr[_m_lse],
    conditions=lambda: (sp.Le(1, _m_lse), sp.Le(_m_lse, n)),
    check=_lse_ge_term_check,
    source="standard (a term of a sum of positive terms is at most the sum; log is monotone)",
)


def _lse_rows_check() -> tuple[bool, str]:
    ok0, why = LSE_GE_TERM.check()
    summand = LSE_ROWS_GE_DIAGONAL.gap().function
    inst = {"n": n, "x": lambda c: _xm[i_, c], "m": i_}
    row = LSE_GE_TERM.instantiate(inst, LSE_GE_TERM.gap())
    ok1 = canon(row) == canon(summand)
    conds = {LSE_GE_TERM.instantiate(inst, c) for c in LSE_GE_TERM.conditions()}
    (_, lo, hi) = LSE_ROWS_GE_DIAGONAL.gap().limits[0]
    ok2 = conds == {sp.Le(lo, i_), sp.Le(i_, hi)}
    ok3 = SUM_NONNEG.check()[0]
    return ok0 and ok1 and ok2 and ok3, (
        "the i-th summand is lse_ge_term at x = X[i, .], m = i, whose conditions 1 <= i <= n "
        "are the summation range (checked); a sum of terms >= 0 is >= 0 (sum_nonneg). "
        f"lse_ge_term: {why}"
    )


LSE_ROWS_GE_DIAGONAL = Lemma(
    name="lse_rows_ge_diagonal",
    text="sum_{i=1}^n (log sum_{j=1}^n e^{X_ij} - X_ii) >= 0 for any real n x n matrix X",
    params={"n": n, "X": _xm},
    gap=lambda: sp.Sum(sp.log(sp.Sum(sp.exp(_xm[i_, k]), (k, 1, n))) - _xm[i_, i_], (i_, 1, n)),
    conditions=lambda: (),
    check=_lse_rows_check,
    source="lse_ge_term at every row (m = i), summed",
)


def _sum_ge_term_check() -> tuple[bool, str]:
    from softnce_theory.derivations._sym import index_in_range

    rest = sp.Sum((1 - sp.KroneckerDelta(k, _m_lse)) * a[k], (k, 1, n))
    ident = index_in_range(linear_sums(rest).doit(), n, _m_lse) - (
        sp.Sum(a[k], (k, 1, n)) - a[_m_lse]
    )
    ok1 = sp.simplify(ident) == 0
    an = sp.IndexedBase("a", nonnegative=True)
    term = rest.function.subs(a, an)
    ok2 = term.subs(k, _m_lse) == 0 and bool(
        term.subs(sp.KroneckerDelta(k, _m_lse), 0).is_nonnegative
    )
    return ok1 and ok2, (
        "sum_k a_k - a_m = sum_k (1 - delta_km) a_k (identity checked by SymPy for "
        "1 <= m <= n), each term >= 0 (k = m: 0; k != m: a_k >= 0): a sum of non-negatives"
    )


SUM_GE_TERM = Lemma(
    name="sum_ge_term",
    text="sum_{k=1}^n a_k >= a_m for non-negative a_k and 1 <= m <= n",
    params={"n": n, "a": a, "m": _m_lse},
    gap=lambda: sp.Sum(a[k], (k, 1, n)) - a[_m_lse],
    conditions=lambda: (sp.Ge(a[k], 0), sp.Le(1, _m_lse), sp.Le(_m_lse, n)),
    check=_sum_ge_term_check,
    source="standard",
)


# ----------------------------------------------------------------------------- collision CE / EM

_rows = sp.Symbol("m", integer=True, positive=True)  # a second size (rows of a matrix)
_an = sp.IndexedBase("a", nonnegative=True)
_bn = sp.IndexedBase("b", nonnegative=True)
_cw = sp.IndexedBase("c", nonnegative=True)  # row weights
_W = sp.IndexedBase("W", nonnegative=True)
_X = sp.IndexedBase("X", positive=True)
_U = sp.IndexedBase("u", positive=True)
_Q = sp.IndexedBase("q", positive=True)
_A2 = sp.IndexedBase("a", real=True)


def _sum_product_check() -> tuple[bool, str]:
    from softnce_theory.derivations._sym import index_in_range

    cross = sp.Sum(
        _an[i_] * sp.Sum(_bn[j_] * (1 - sp.KroneckerDelta(i_, j_)) ** 2, (j_, 1, n)), (i_, 1, n)
    )
    # (1 - delta)^2 = 1 - delta (delta is 0 or 1; SymPy: delta**2 = delta), and
    # sum_j b_j delta_ij = b_i for 1 <= i <= n (the outer summation range)
    e = linear_sums(sp.expand(cross))
    e = e.replace(
        lambda t: isinstance(t, sp.Sum) and t.has(sp.KroneckerDelta),
        lambda t: index_in_range(t.doit(), n, i_),
    )
    ok1 = _zero(e - SUM_PRODUCT.gap())
    ok2 = bool(cross.is_nonnegative)
    return ok1 and ok2, (
        "(sum a)(sum b) - sum a b == sum_i a_i sum_j b_j (1 - delta_ij)^2 (identity checked by "
        "SymPy, the delta resolved on the summation range); a sum of products of non-negatives "
        "(SymPy's assumption system)"
    )


SUM_PRODUCT = Lemma(
    name="sum_product",
    text="sum_k a_k b_k <= (sum_k a_k)(sum_k b_k) for a, b >= 0",
    params={"n": n, "a": _an, "b": _bn},
    gap=lambda: (
        sp.Sum(_an[k], (k, 1, n)) * sp.Sum(_bn[k], (k, 1, n)) - sp.Sum(_an[k] * _bn[k], (k, 1, n))
    ),
    conditions=lambda: (sp.Ge(_an[k], 0), sp.Ge(_bn[k], 0)),
    check=_sum_product_check,
    source="standard (the dropped cross terms a_i b_j, i != j, are >= 0)",
)


def _jensen_row(i: Any) -> dict[str, Any]:
    return {"n": n, "w": lambda c: _W[i, c], "x": lambda c: _X[i, c]}


def _jensen_log_rows_check() -> tuple[bool, str]:
    ok0, why = JENSEN_LOG.check()
    inst = _jensen_row(i_)
    row = JENSEN_LOG.instantiate(inst, JENSEN_LOG.gap())
    ok1 = canon(JENSEN_LOG_ROWS.gap()) == canon(sp.Sum(_cw[i_] * row, (i_, 1, _rows)))
    conds = {canon(JENSEN_LOG.instantiate(inst, c)) for c in JENSEN_LOG.conditions()}
    ok2 = conds | {canon(sp.Ge(_cw[i_], 0))} == {canon(c) for c in JENSEN_LOG_ROWS.conditions()}
    return ok0 and ok1 and ok2, (
        "the i-th summand is c_i times jensen_log at w = W[i, .], x = X[i, .], whose conditions "
        "are this lemma's (checked); c_i >= 0, so a sum of terms >= 0 (sum_nonneg). "
        f"jensen_log: {why}"
    )


JENSEN_LOG_ROWS = Lemma(
    name="jensen_log_rows",
    text="sum_{i=1}^m c_i (ln sum_k W_ik X_ik - sum_k W_ik ln X_ik) >= 0 for c >= 0, rows of W "
    "on the simplex, X > 0 (Jensen row by row)",
    params={"m": _rows, "n": n, "c": _cw, "w": _W, "x": _X},
    gap=lambda: sp.Sum(
        _cw[i_]
        * (
            sp.log(sp.Sum(_W[i_, k] * _X[i_, k], (k, 1, n)))
            - sp.Sum(_W[i_, k] * sp.log(_X[i_, k]), (k, 1, n))
        ),
        (i_, 1, _rows),
    ),
    conditions=lambda: (
        sp.Ge(_cw[i_], 0),
        sp.Ge(_W[i_, k], 0),
        sp.Eq(sp.Sum(_W[i_, k], (k, 1, n)), 1),
        sp.Gt(_X[i_, k], 0),
    ),
    check=_jensen_log_rows_check,
    source="jensen_log at every row, weighted and summed",
)


def _jensen_log_cols_check() -> tuple[bool, str]:
    ok0, why = JENSEN_LOG.check()
    # column j (a free index other than jensen_log's own summation dummy k), then renamed k
    inst = {"n": _rows, "w": lambda c: _W[c, j_], "x": lambda c: _X[c, j_]}
    col = canon(JENSEN_LOG.instantiate(inst, JENSEN_LOG.gap())).xreplace({j_: k})
    # exchange the finite double sum of the second term (SymPy's Sum.reorder: independent limits)
    first = sp.Sum(_cw[k] * sp.log(sp.Sum(_W[i_, k] * _X[i_, k], (i_, 1, _rows))), (k, 1, n))
    second = sp.Sum(_cw[k] * _W[i_, k] * sp.log(_X[i_, k]), (k, 1, n), (i_, 1, _rows))
    ok1 = canon(JENSEN_LOG_COLS.gap()) == canon(first - second)
    swapped = second.reorder((k, i_))  # sum_k sum_i
    ok2 = _zero(first - swapped - sp.Sum(_cw[k] * col, (k, 1, n)))
    conds = {
        canon(JENSEN_LOG.instantiate(inst, c)).xreplace({j_: k}) for c in JENSEN_LOG.conditions()
    }
    ok3 = conds | {canon(sp.Ge(_cw[k], 0))} == {canon(c) for c in JENSEN_LOG_COLS.conditions()}
    return ok0 and ok1 and ok2 and ok3, (
        "the double sum is exchanged (finite, independent limits: Sum.reorder), then the k-th "
        "term is c_k times jensen_log at w = W[., k], x = X[., k] (identity checked by SymPy), "
        f"whose conditions are this lemma's; a sum of terms >= 0. jensen_log: {why}"
    )


JENSEN_LOG_COLS = Lemma(
    name="jensen_log_cols",
    text="sum_k c_k ln sum_{i=1}^m W_ik X_ik - sum_{i=1}^m sum_k c_k W_ik ln X_ik >= 0 for c >= 0, "
    "columns of W on the simplex, X > 0 (Jensen column by column, double sum row-major)",
    params={"m": _rows, "n": n, "c": _cw, "w": _W, "x": _X},
    gap=lambda: (
        sp.Sum(_cw[k] * sp.log(sp.Sum(_W[i_, k] * _X[i_, k], (i_, 1, _rows))), (k, 1, n))
        - sp.Sum(sp.Sum(_cw[k] * _W[i_, k] * sp.log(_X[i_, k]), (k, 1, n)), (i_, 1, _rows))
    ),
    conditions=lambda: (
        sp.Ge(_cw[k], 0),
        sp.Ge(_W[i_, k], 0),
        sp.Eq(sp.Sum(_W[i_, k], (i_, 1, _rows)), 1),
        sp.Gt(_X[i_, k], 0),
    ),
    check=_jensen_log_cols_check,
    source="jensen_log at every column, weighted and summed (finite sums exchanged)",
)


def _gibbs_rows_check() -> tuple[bool, str]:
    ok0, why = GIBBS.check()
    mass = sp.Sum(_U[i_, j_], (j_, 1, n))
    inst = {"n": n, "p": lambda c: _U[i_, c] / mass, "q": lambda c: _Q[i_, c]}
    row = GIBBS.instantiate(inst, GIBBS.gap())
    # (SymPy flattens the nested sum: its function is the (i, k) term)
    summand = sp.Sum(GIBBS_ROWS.gap().function, (k, 1, n))  # sum_k u_ik ln(u_ik / (U_i q_ik))
    ok0 = ok0 and canon(GIBBS_ROWS.gap()) == canon(sp.Sum(summand, (i_, 1, _rows)))
    ok1 = _zero(linear_sums(summand - mass * row))
    conds = [GIBBS.instantiate(inst, c) for c in GIBBS.conditions()]
    # p = u / U > 0 (u > 0); q > 0; sum_k p_k = U / U = 1; sum_k q_k = 1 is this lemma's condition
    # (SymPy evaluates p > 0 and q > 0 to True at construction, from u, q > 0)
    ok2 = (
        conds[0] is sp.true
        and conds[1] is sp.true
        and _zero(canon(linear_sums(conds[2].lhs)) - 1)
        and conds[3] == sp.Eq(sp.Sum(_Q[i_, k], (k, 1, n)), 1)
    )
    return ok0 and ok1 and ok2 and bool(mass.is_positive), (
        "the i-th summand == U_i * KL(u_i / U_i || q_i) with U_i = sum_k u_ik > 0 (identity "
        "checked by SymPy), and gibbs' conditions hold at p = u_i / U_i (p > 0, sum p = 1) "
        f"given q_i > 0 on the simplex; a sum of terms >= 0. gibbs: {why}"
    )


GIBBS_ROWS = Lemma(
    name="gibbs_rows",
    text="sum_{i=1}^m sum_k u_ik ln(u_ik / (U_i q_ik)) >= 0 with U_i = sum_k u_ik, for u > 0 and "
    "rows of q on the simplex, q > 0 (Gibbs row by row, weighted by the row masses)",
    params={"m": _rows, "n": n, "u": _U, "q": _Q},
    gap=lambda: sp.Sum(
        sp.Sum(
            _U[i_, k] * sp.log(_U[i_, k] / (sp.Sum(_U[i_, j_], (j_, 1, n)) * _Q[i_, k])),
            (k, 1, n),
        ),
        (i_, 1, _rows),
    ),
    conditions=lambda: (
        sp.Gt(_U[i_, k], 0),
        sp.Gt(_Q[i_, k], 0),
        sp.Eq(sp.Sum(_Q[i_, k], (k, 1, n)), 1),
    ),
    check=_gibbs_rows_check,
    source="gibbs at every row p = u_i / U_i, weighted by U_i and summed",
)


def _sum_exchange_check() -> tuple[bool, str]:
    rows_first = sp.Sum(sp.Sum(_A2[i_, k], (k, 1, n)), (i_, 1, _rows))  # sum_i sum_k
    cols_first = sp.Sum(sp.Sum(_A2[i_, k], (i_, 1, _rows)), (k, 1, n))  # sum_k sum_i
    ok1 = canon(SUM_EXCHANGE.gap()) == canon(rows_first - cols_first)
    ok2 = canon(rows_first.reorder((k, i_))) == canon(cols_first)
    return ok1 and ok2, (
        "sum_i sum_k a_ik == sum_k sum_i a_ik: SymPy's Sum.reorder exchanges the two limits "
        "(finite, independent of each other); the gap is identically 0, so >= 0"
    )


SUM_EXCHANGE = Lemma(
    name="sum_exchange",
    text="sum_{i=1}^m sum_{k=1}^n a_ik - sum_{k=1}^n sum_{i=1}^m a_ik >= 0 (it is = 0: finite "
    "sums commute)",
    params={"m": _rows, "n": n, "a": _A2},
    gap=lambda: (
        sp.Sum(sp.Sum(_A2[i_, k], (k, 1, n)), (i_, 1, _rows))
        - sp.Sum(sp.Sum(_A2[i_, k], (i_, 1, _rows)), (k, 1, n))
    ),
    conditions=lambda: (),
    check=_sum_exchange_check,
    source="standard (Fubini for finite sums)",
)


_P_mix = sp.IndexedBase("P", nonnegative=True)
_W_mix = sp.IndexedBase("W", nonnegative=True)


def _jensen_exp_rows_check() -> tuple[bool, str]:
    ok0, why = JENSEN_EXP.check()
    inst = {"n": n, "w": lambda c: _W_mix[i_, c], "x": lambda c: xr[c]}
    row = JENSEN_EXP.instantiate(inst, JENSEN_EXP.gap())
    # the gap is sum_i P_i * (jensen_exp at w = W[i, .]), written with P_i inside the k-sum
    ok1 = _zero(JENSEN_EXP_ROWS.gap() - sp.Sum(_P_mix[i_] * row, (i_, 1, _rows)))
    conds = {canon(JENSEN_EXP.instantiate(inst, c)) for c in JENSEN_EXP.conditions()}
    ok2 = conds | {canon(sp.Ge(_P_mix[i_], 0))} == {canon(c) for c in JENSEN_EXP_ROWS.conditions()}
    return ok0 and ok1 and ok2, (
        "the gap == sum_i P_i * jensen_exp(w = W[i, .], x) (identity checked by SymPy), whose "
        "conditions are this lemma's (checked); P_i >= 0, so a sum of terms >= 0 (sum_nonneg). "
        f"jensen_exp: {why}"
    )


JENSEN_EXP_ROWS = Lemma(
    name="jensen_exp_rows",
    text="sum_{i=1}^m sum_k P_i W_ik e^{x_k} - sum_{i=1}^m P_i e^{sum_k W_ik x_k} >= 0 for P >= 0 "
    "and rows of W on the simplex (Jensen for exp row by row, weighted and summed)",
    params={"m": _rows, "n": n, "P": _P_mix, "w": _W_mix, "x": xr},
    gap=lambda: (
        sp.Sum(sp.Sum(_P_mix[i_] * _W_mix[i_, k] * sp.exp(xr[k]), (k, 1, n)), (i_, 1, _rows))
        - sp.Sum(_P_mix[i_] * sp.exp(sp.Sum(_W_mix[i_, k] * xr[k], (k, 1, n))), (i_, 1, _rows))
    ),
    conditions=lambda: (
        sp.Ge(_P_mix[i_], 0),
        sp.Ge(_W_mix[i_, k], 0),
        sp.Eq(sp.Sum(_W_mix[i_, k], (k, 1, n)), 1),
    ),
    check=_jensen_exp_rows_check,
    source="jensen_exp at every row, weighted and summed",
)


_a_pos = sp.IndexedBase("a", positive=True)


def _sum_gt_term_check() -> tuple[bool, str]:
    from softnce_theory.derivations._sym import index_in_range

    def rest(at: Any) -> Any:  # sum_k (1 - delta_{k, at}) a_k
        return sp.Sum((1 - sp.KroneckerDelta(k, at)) * _a_pos[k], (k, 1, n))

    def split_ok(at: Any, total: Any) -> bool:  # total == rest(at) for 1 <= at <= n
        e = index_in_range(linear_sums(rest(at)).doit(), n, at)
        return sp.simplify(e - total) == 0

    term = rest(_m_lse).function
    # (1) the gap is the sum of the terms (1 - delta_km) a_k, each >= 0 (k = m: 0; else a_k > 0)
    ok1 = split_ok(_m_lse, SUM_GT_TERM.gap())
    ok2 = term.subs(k, _m_lse) == 0 and bool(
        term.subs(sp.KroneckerDelta(k, _m_lse), 0).is_nonnegative
    )
    # (2) one of them is > 0: m >= 2 -> the term k = 1 is a_1; m = 1 -> the term k = 2 is a_2
    # (2 <= n): delta(1, 2 + e) and delta(2, 1) evaluate to 0
    e_ = sp.Symbol("e", integer=True, nonnegative=True)
    ok3 = bool(term.subs({k: 1, _m_lse: 2 + e_}).is_positive) and bool(
        term.subs({k: 2, _m_lse: 1}).is_positive
    )
    # (3) a sum of terms >= 0 with a term b_s > 0 (1 <= s <= n): sum = b_s + sum_k (1 - delta_ks)
    # b_k (the split of (1) at s), and b_s + (a sum >= 0) > 0 (SymPy's assumption system)
    s_ = sp.Symbol("s", integer=True)
    ok4 = split_ok(s_, sp.Sum(_a_pos[k], (k, 1, n)) - _a_pos[s_]) and bool(
        (sp.Dummy(positive=True) + sp.Dummy(nonnegative=True)).is_positive
    )
    return ok1 and ok2 and ok3 and ok4, (
        "sum_k a_k - a_m = sum_k (1 - delta_km) a_k (identity checked by SymPy for 1 <= m <= n), "
        "every term >= 0, and the term k = 1 (if m >= 2) or k = 2 (if m = 1; n >= 2) is a_k > 0; "
        "a sum of terms >= 0 with one term > 0 is > 0 (split off that term: identity checked)"
    )


SUM_GT_TERM = Lemma(
    name="sum_gt_term",
    text="sum_{k=1}^n a_k > a_m for positive a_k, n >= 2 and 1 <= m <= n (strict)",
    params={"n": n, "a": _a_pos, "m": _m_lse},
    gap=lambda: sp.Sum(_a_pos[k], (k, 1, n)) - _a_pos[_m_lse],
    conditions=lambda: (sp.Gt(_a_pos[k], 0), sp.Le(1, _m_lse), sp.Le(_m_lse, n), sp.Ge(n, 2)),
    check=_sum_gt_term_check,
    source="standard (a sum of at least two positive terms exceeds each of them)",
    strict=True,
)


LEMMAS: tuple[Lemma, ...] = (
    LOG_TANGENT,
    EXP_TANGENT,
    XLOGX_TANGENT,
    SUM_NONNEG,
    JENSEN_LOG,
    JENSEN_EXP,
    GIBBS,
    LOG_SUM,
    CAUCHY_SCHWARZ,
    SUM_PRODUCT,
    JENSEN_LOG_ROWS,
    JENSEN_LOG_COLS,
    GIBBS_ROWS,
    SUM_EXCHANGE,
    LSE_GE_TERM,
    LSE_ROWS_GE_DIAGONAL,
    SUM_GE_TERM,
    JENSEN_EXP_ROWS,
    SUM_GT_TERM,
)


def get_lemma(name: str) -> Lemma:
    for lem in LEMMAS:
        if lem.name == name:
            return lem
    raise KeyError(f"no lemma {name!r}; known: {[x.name for x in LEMMAS]}")


__all__ = [
    "CAUCHY_SCHWARZ",
    "EXP_TANGENT",
    "GIBBS",
    "GIBBS_ROWS",
    "JENSEN_EXP",
    "JENSEN_EXP_ROWS",
    "JENSEN_LOG",
    "JENSEN_LOG_COLS",
    "JENSEN_LOG_ROWS",
    "LEMMAS",
    "LOG_SUM",
    "LOG_TANGENT",
    "LSE_GE_TERM",
    "LSE_ROWS_GE_DIAGONAL",
    "SUM_EXCHANGE",
    "SUM_GE_TERM",
    "SUM_GT_TERM",
    "SUM_NONNEG",
    "SUM_PRODUCT",
    "XLOGX_TANGENT",
    "Lemma",
    "get_lemma",
]
