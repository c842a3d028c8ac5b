r"""The definition leg: a family's SymPy definitions against its independent mpmath oracle.

For each :class:`~derivations.Definition`, the family's numerics module registers a leg that
draws seeded random points, evaluates the SymPy expression at ``dps`` digits (sizes substituted,
``Sum``s expanded, exact arithmetic until the final ``evalf``) and compares it with the oracle,
which is written straight from the paper and shares no code with the definition. This closes the
chain statement -> definitions -> oracle -> production: a claim about a mistyped definition can
no longer pass, because the definition leg of every definition a claim ``uses`` must pass.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

import mpmath
import sympy as sp
from sympy.concrete.expr_with_limits import ExprWithLimits

from softnce_theory.derivations import CheckConfig, Definition, LegResult, Tally
from softnce_theory.derivations._sym import fast_sum_free_symbols

Point = Mapping[Any, Any]  # Symbol -> number, IndexedBase -> (nested) sequence, 1-based in SymPy


def _flat(base: Any, val: Any, prefix: tuple[int, ...] = ()) -> dict[Any, Any]:
    if isinstance(val, (list, tuple)):
        out: dict[Any, Any] = {}
        for i, v in enumerate(val, start=1):
            out.update(_flat(base, v, (*prefix, i)))
        return out
    return {base[prefix if len(prefix) > 1 else prefix[0]]: val}


def expand_sums(expr: Any) -> Any:
    """Every ``Sum`` whose bounds are integers written out term by term:
    ``Sum(f, (k, a, b)) -> f(a) + ... + f(b)`` (``0`` when ``b = a - 1``), the definition of a
    finite sum. Inner sums first; an inner bound that depends on an outer dummy becomes an
    integer once the outer sum is written out. Sums with non-integer or reversed bounds
    (``b < a - 1``, SymPy's Karr convention), or whose summand still binds the same dummy, are
    left for ``doit``. Exact, and much cheaper than ``doit``, which first looks for closed
    forms of every sum."""
    if not isinstance(expr, sp.Basic) or not expr.args:
        return expr
    if isinstance(expr, sp.Sum) and len(expr.limits[-1]) == 3:
        *inner, (v, lo0, hi0) = expr.limits
        summand = sp.Sum(expr.function, *inner) if inner else expr.function
        body, lo, hi = expand_sums(summand), expand_sums(lo0), expand_sums(hi0)
        binders = body.atoms(ExprWithLimits, sp.Lambda, sp.Derivative)
        bound = {b for e in binders for b in e.variables}
        if lo.is_Integer and hi.is_Integer and hi >= lo - 1 and v not in bound:
            return sp.Add(
                *[expand_sums(body.xreplace({v: sp.Integer(k)})) for k in range(lo, hi + 1)]
            )
        if body is summand and lo is lo0 and hi is hi0:
            return expr
        return sp.Sum(body, (v, lo, hi))
    args = [expand_sums(a) for a in expr.args]
    if all(new is old for new, old in zip(args, expr.args, strict=True)):
        return expr
    return expr.func(*args)


def evaluate(defn: Definition, sizes: Mapping[Any, int], point: Point, dps: int) -> mpmath.mpf:
    """The definition at ``sizes`` and ``point``, evaluated at ``dps`` significant digits."""
    with fast_sum_free_symbols():
        return _evaluate(defn, sizes, point, dps)


def _evaluate(defn: Definition, sizes: Mapping[Any, int], point: Point, dps: int) -> mpmath.mpf:
    ints = {s: sp.Integer(int(v)) for s, v in sizes.items()}
    ints.update({k: sp.Integer(int(v)) for k, v in point.items() if k.is_integer})
    expr = expand_sums(defn.build().xreplace(ints)).doit()
    reps: dict[Any, Any] = {}
    for key, val in point.items():
        if isinstance(key, sp.IndexedBase):
            reps.update({k: sp.Float(v, dps + 10) for k, v in _flat(key, val).items()})
        elif key not in ints:
            reps[key] = sp.Float(val, dps + 10)
    out = expr.xreplace(reps).doit().xreplace(reps)
    left = out.free_symbols
    if left:
        raise ValueError(f"definition {defn.id}: no value for {sorted(map(str, left))}")
    val = sp.N(out, dps + 5)
    if not val.is_real:
        raise ValueError(f"definition {defn.id} is not real at this point: {val}")
    return mpmath.mpf(sp.Float(val, dps + 5)._mpf_)


def definition_leg(
    defn: Definition,
    sample: Callable[[random.Random], tuple[Mapping[Any, int], Point]],
    oracle: Callable[[Mapping[Any, int], Point], Any],
    cfg: CheckConfig,
    n: int = 12,
) -> LegResult:
    """Compare ``defn`` with ``oracle`` at ``cfg.points(n)`` seeded points from ``sample``."""
    rng = random.Random(cfg.seed_for(defn.id))
    with mpmath.workdps(cfg.dps + 10):
        tally = Tally("definition", rtol=mpmath.mpf(10) ** (-(cfg.dps - 10)), dps=cfg.dps)
        for _ in range(cfg.points(n, 2)):
            sizes, point = sample(rng)
            got = evaluate(defn, sizes, point, cfg.dps)
            want = mpmath.mpf(oracle(sizes, point))
            tally.close(got, want, f"{defn.id} at sizes {dict(sizes)}")
        return tally.result(detail=f"SymPy definition vs oracle at {cfg.dps} digits")
