"""SymPy helpers shared by the family derivations (pure SymPy).

Index-set conventions: a *symbolic-K* proof uses ``IndexedBase`` objects summed with
``Sum(..., (k, 1, K))`` over an integer symbol ``K``; a *fixed-K* proof uses plain symbols
for a stated K. Proof scopes must say which.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

import sympy as sp
from sympy.concrete.expr_with_limits import ExprWithLimits


def index_in_range(expr: Any, upper: Any, *indices: Any) -> Any:
    """Resolve ``Piecewise`` branches produced by ``Sum(KroneckerDelta(k, m) ...).doit()``
    under the assumption ``1 <= m <= upper`` for each index ``m`` in ``indices``."""
    reps: dict[Any, Any] = {}
    for i in indices:
        reps.update(
            {sp.Ge(upper, i): True, sp.Ge(i, 1): True, sp.Le(i, upper): True, sp.Le(1, i): True}
        )

    def fix(pw: Any) -> Any:
        return sp.Piecewise(*[(e, c.subs(reps)) for e, c in pw.args])

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), fix)


def is_zero(expr: Any) -> bool:
    """True when ``simplify`` reduces ``expr`` to exactly 0 (never on numeric evidence)."""
    return bool(sp.simplify(expr) == 0)


def difference_is_zero(lhs: Any, rhs: Any) -> bool:
    """``simplify(lhs - rhs) == 0``, trying ``expand`` first (cheap) then ``simplify``."""
    d = sp.expand(lhs - rhs)
    return d == 0 or is_zero(d)


def canon(expr: Any) -> Any:
    """Rename every ``Sum`` dummy to ``_i<height>`` (height = nesting depth below it + 1), so that
    sums that differ only in their dummy name compare equal after ``simplify``. Memoized: a pure
    function of the (immutable) expression, called on the same expressions again and again."""
    return _canon(expr) if isinstance(expr, sp.Basic) else _canon_walk(expr)


@functools.lru_cache(maxsize=4096)
def _canon(expr: Any) -> Any:
    return _canon_walk(expr)


def _canon_walk(expr: Any) -> Any:
    """:func:`canon` without the cache (also for non-SymPy inputs)."""

    def height(e: Any) -> int:
        if not isinstance(e, sp.Sum):
            return 0
        # a multi-limit Sum is a nest of len(limits) sums (SymPy flattens Sum(Sum(f, a), b))
        return len(e.limits) + max((height(a) for a in e.function.atoms(sp.Sum)), default=0)

    def walk(e: Any) -> Any:
        if isinstance(e, sp.Sum):
            # limits innermost first: the j-th limit (1-based) of a sum whose summand has
            # height h gets the dummy _i{h + j}, as if the sum were written nested
            f = walk(e.function)
            h = height(e) - len(e.limits)
            reps: dict[Any, Any] = {}
            new: list[Any] = []
            for depth in range(len(e.limits), 0, -1):  # outermost first (inner bounds may
                v, lo, hi = e.limits[depth - 1]  # depend on outer dummies)
                d = sp.Symbol(f"_i{h + depth}", integer=True)
                new.insert(0, (d, walk(lo).xreplace(reps), walk(hi).xreplace(reps)))
                reps[v] = d
            return sp.Sum(f.xreplace(reps), *new)
        if not e.args or isinstance(e, (sp.Indexed, sp.IndexedBase, sp.Symbol)):
            return e
        return e.func(*[walk(a) for a in e.args])

    return walk(expr)


def zero_after_canon(expr: Any) -> bool:
    """``expr == 0`` after simplify / dummy canonicalisation / simplify (never numeric)."""
    e = sp.simplify(canon(expr))
    if e == 0:
        return True
    return bool(sp.simplify(canon(e)) == 0)


def linear_sums(expr: Any) -> Any:
    """Distribute every ``Sum`` over the terms of its (expanded) summand and pull factors that do
    not depend on the dummy outside: ``Sum(a*x_k + b*y_k) -> a*Sum(x_k) + b*Sum(y_k)``."""

    def split_one(f: Any, limit: Any) -> Any:
        v, lo, hi = limit
        out = sp.Integer(0)
        for term in sp.Add.make_args(sp.expand(f)):
            const, dep = term.as_independent(v, as_Add=False)
            out += const * (sp.Sum(dep, (v, lo, hi)) if dep != 1 else (hi - lo + 1))
        return out

    def split(e: Any) -> Any:
        f = e.function
        for limit in e.limits:  # innermost first
            f = split_one(f, limit)
        return f

    return expr.replace(lambda e: isinstance(e, sp.Sum), split)


# ----------------------------------------------------------------------------- performance

_SYMPY_FREE_SYMBOLS = ExprWithLimits.free_symbols
_fast_depth = 0


def _sum_free_symbols(self: Any) -> set[Any]:
    """``ExprWithLimits.free_symbols`` (SymPy 1.14) without its identity ``xreplace``.

    SymPy maps each plain-symbol dummy to itself and every other dummy to a fresh ``Dummy``,
    then applies it to the summand (``xreplace``); an identity entry still makes ``xreplace``
    rebuild the whole summand (every ``Indexed`` re-deriving its assumptions), and
    ``Sum.is_number`` calls this inside SymPy's assumption queries again and again. Here only
    the non-identity entries are replaced: the same set (the free symbols of the summand minus
    the dummies, plus those of the bounds), computed the same way."""
    reps = {lim[0]: sp.Dummy() for lim in self.limits if lim[0].free_symbols != {lim[0]}}
    isyms = set((self.function.xreplace(reps) if reps else self.function).free_symbols)
    for lim in self.limits:
        v = reps.get(lim[0], lim[0])
        if len(lim) == 1:
            isyms.add(v)
            continue
        isyms.discard(v)
        for bound in lim[1:]:
            isyms.update(bound.free_symbols)
    back = {d: v for v, d in reps.items()}
    return {back.get(s, s) for s in isyms}


@contextlib.contextmanager
def fast_sum_free_symbols() -> Iterator[None]:
    """Within this block, ``Sum.free_symbols`` (every ``ExprWithLimits``) is
    :func:`_sum_free_symbols`: the same sets, without the quadratic rebuild of nested sums.
    Re-entrant; SymPy's own property is restored when the outermost block exits. The prover
    and the definition legs run inside it (about a quarter of their time otherwise)."""
    global _fast_depth
    if _fast_depth == 0:
        ExprWithLimits.free_symbols = property(_sum_free_symbols)
    _fast_depth += 1
    try:
        yield
    finally:
        _fast_depth -= 1
        if _fast_depth == 0:
            ExprWithLimits.free_symbols = _SYMPY_FREE_SYMBOLS
