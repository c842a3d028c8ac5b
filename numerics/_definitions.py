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

from softnce_theory.derivations import CheckConfig, Definition, LegResult, Tally

Point = Mapping[Any, Any]  # Symbol -> number, IndexedBase -> (nested) sequence, 1-based in SymPy


def _flat(base: Any, val: Any, prefix: tuple[int, ...] = ()) -> dict[Any, Any]:
    if isinstance(val, (list, tuple)):
        out: dict[Any, Any] = {}
        for i, v in enumerate(val, start=1):
            out.update(_flat(base, v, (*prefix, i)))
        return out
    return {base[prefix if len(prefix) > 1 else prefix[0]]: val}


def evaluate(defn: Definition, sizes: Mapping[Any, int], point: Point, dps: int) -> mpmath.mpf:
    """The definition at ``sizes`` and ``point``, evaluated at ``dps`` significant digits."""
    ints = {s: sp.Integer(int(v)) for s, v in sizes.items()}
    ints.update({k: sp.Integer(int(v)) for k, v in point.items() if k.is_integer})
    expr = defn.build().xreplace(ints).doit()
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
