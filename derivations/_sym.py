"""SymPy helpers shared by the family derivations (pure SymPy).

Index-set conventions: a *symbolic-K* proof uses ``IndexedBase`` objects summed with
``Sum(..., (k, 1, K))`` over an integer symbol ``K``; a *fixed-K* proof uses plain symbols
for a stated K. Proof scopes must say which.
"""

from __future__ import annotations

from typing import Any

import sympy as sp


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
