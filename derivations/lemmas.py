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

from derivations._sym import canon, linear_sums

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
    "JENSEN_EXP",
    "JENSEN_LOG",
    "LEMMAS",
    "LOG_SUM",
    "LOG_TANGENT",
    "SUM_NONNEG",
    "XLOGX_TANGENT",
    "Lemma",
    "get_lemma",
]
