r"""Proof certificates: what a claim hands the engine instead of a verdict.

A claim names one tactic; the engine (:mod:`softnce_theory.engine._prover`) applies it to the
claim's own statement under the claim's facts and decides. Nothing here returns True or False.

Tactics, by the shape of the statement they accept:

========================  ==============================================================
``Simplify``              ``Eq(lhs, rhs)``: ``lhs - rhs`` rewrites to 0.
``Differentiate``         ``Eq(Derivative(f, x, ...), g)``: the engine differentiates ``f``
                          itself, then ``Simplify``.
``ComputeLimit``          ``Eq(Limit(f, x, x0), v)``: ``sympy.limit`` of ``f``, then ``Simplify``.
``LHopital``              ``Eq(Limit(n/d, x, x0), v)``: ``n(x0) = d(x0) = 0``,
                          ``d'(x0) != 0`` and ``n'(x0)/d'(x0) - v`` rewrites to 0.
``Series``                ``Eq(f, g + O(x**p, (x, x0)))``: the engine expands ``f`` to order
                          ``p`` with ``sympy.series`` and checks the expansion minus ``g`` is
                          ``O(x**p)``.
``Reduction``             ``Le``/``Lt``/``Ge``/``Gt``: ``big - small`` equals
                          ``sum(factor * lemma instance) + sum(extra)``; every factor and extra
                          term is >= 0 under the facts (one extra term > 0 for a strict
                          inequality), and each lemma's conditions hold at its instance.
``Sign``                  ``Le``/``Lt``/``Ge``/``Gt``: ``big - small`` rewrites to an expression
                          SymPy's assumption system decides is >= 0 (> 0).
``Exact``                 a statement with no free symbols (a witness): evaluated exactly.
``Instances``             ``inner`` applied with fixed values substituted. If a substituted
                          symbol is free in the statement, this is evidence at those
                          instances, never a proof of the general statement.
``Both``                  ``And(a, b, ...)`` / ``Equivalent``-free conjunctions: one tactic per
                          conjunct, all must close.
========================  ==============================================================

Rewrite steps (``steps=``), applied in order to the expression the tactic reduces; each is an
equivalence under the stated premise:

* ``"doit"``, ``"expand"``, ``"together"``, ``"cancel"``, ``"factor"``, ``"powsimp"``,
  ``"simplify"``: SymPy's own transformations (identities);
* ``"derivatives"``: evaluate the unevaluated ``Derivative`` objects only (``doit`` would also
  try to evaluate every ``Sum`` in closed form, which is slow on symbolic-size sums);
* ``"linear_sums"``: linearity of a finite ``Sum`` (constants pulled out, sums of terms split);
* ``"swap_sums"``: Fubini for finite sums, the two limits of a double sum exchanged where neither
  range depends on the other dummy;
* ``"doit_delta"``: ``doit`` on ``Derivative`` objects (not deep) and on the innermost sums whose
  summand holds a ``KroneckerDelta`` only (SymPy 1.14's full ``doit`` mis-evaluates some sums of
  ``exp(Piecewise(...))`` over a symbolic range);
* ``"split_exp"``: ``exp(a + b) = exp(a) exp(b)`` for an ``Add`` argument (``"expand"`` would also
  turn ``exp(Sum)`` into a ``Product``);
* ``"canon"``: rename summation dummies canonically (alpha-equivalence);
* ``"merge_sums"``: linearity read backwards: ``c1*Sum(f, (k, a, b)) + c2*Sum(g, (j, a, b))``
  becomes one ``Sum(c1*f + c2*g)`` over a fresh dummy (same bounds, single-limit sums);
* ``"cancel_summands"``: SymPy's ``cancel`` applied inside every ``Sum``'s summand;
* ``"factor_terms"``: SymPy's ``factor_terms`` (common factors pulled out, also inside
  function arguments, e.g. ``log(m*a + m*b) -> log(m*(a + b))``);
* ``"delta_sums"``: ``Sum(f * KroneckerDelta(i, k), (k, a, b)) -> f(k := i)`` for the terms
  whose ``a <= i <= b`` the facts entail (use :func:`index_facts`); other terms stay summed;
* ``"expand_log"``: ``log(a*b) = log a + log b``, ``log(a**r) = r log a``; the engine applies it
  only where it can show every factor positive from the symbols' assumptions and the facts;
* ``"facts"``: rewrite with the claim's ``Eq`` facts, left to right (also done before the final
  zero test); an ``Eq`` fact whose left side holds a ``sympy.Wild`` is a schema, true for every
  value of the Wild (e.g. ``Eq(Sum(alpha[j_, c], (c, 1, C)), 1)``: every candidate on the simplex);
* ``("in_range", upper, i, ...)``: resolve the ``Piecewise`` that ``Sum(KroneckerDelta(k, i))``
  produces, under ``1 <= i <= upper``; the engine requires those facts among the claim's facts
  (use :func:`index_facts`).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Step = Any  # a step name (str) or ("in_range", upper, *indices)


@dataclass(frozen=True)
class Simplify:
    """``Eq(lhs, rhs)``: ``lhs - rhs`` rewritten with ``steps`` and the facts is exactly 0."""

    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Differentiate:
    """``Eq(Derivative(f, *vars), g)``: the engine evaluates the derivative of ``f`` itself."""

    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class ComputeLimit:
    """``Eq(Limit(f, x, x0), v)``: ``sympy.limit(f, x, x0)`` minus ``v`` rewrites to 0."""

    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class LHopital:
    """``Eq(Limit(n/d, x, x0), v)`` by l'Hôpital's rule: both vanish at ``x0`` (after ``steps``
    and the facts), ``d'(x0) != 0`` and ``n'(x0)/d'(x0) - v`` rewrites to 0. ``numerator`` and
    ``denominator`` say how to split the limit's argument (they must multiply back to it).
    ``order=r`` applies the rule r times: ``n`` and ``d`` and their derivatives of order < r
    vanish at ``x0``, ``d^(r)(x0) != 0`` and ``n^(r)(x0)/d^(r)(x0) - v`` rewrites to 0."""

    numerator: Any
    denominator: Any
    steps: tuple[Step, ...] = ()
    order: int = 1


@dataclass(frozen=True)
class Series:
    """``Eq(f, g + O(x**p, (x, x0)))``: ``series(f, x, x0, p) - g`` is ``O(x**p)``."""

    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class LemmaUse:
    """One lemma at one instance: ``instance`` maps the lemma's parameter names to expressions
    (scalars and sizes) or to one-argument callables / ``Lambda`` (vectors ``w[k] -> f(k)``)."""

    lemma: Any  # derivations.lemmas.Lemma
    instance: Mapping[str, Any]
    factor: Any = 1


@dataclass(frozen=True)
class Reduction:
    """An inequality reduced to lemmas: ``big - small == sum(u.factor * u.lemma.gap(u.instance))
    + sum(extra)`` (after ``steps`` and the facts). A strict inequality needs one extra term
    shown > 0, or a strict lemma (``Lemma.strict``: its check proves ``gap > 0``) whose factor
    is shown > 0."""

    uses: tuple[LemmaUse, ...]
    extra: tuple[Any, ...] = ()
    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Sign:
    """An inequality whose ``big - small`` SymPy's assumption system signs directly."""

    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Exact:
    """A statement about explicit numbers (e.g. a witness), decided by exact evaluation."""

    steps: tuple[Step, ...] = ()


@dataclass(frozen=True)
class Instances:
    """``inner`` applied to the statement at each of ``values`` (dicts symbol -> value)."""

    values: tuple[Mapping[Any, Any], ...]
    inner: Any


@dataclass(frozen=True)
class Both:
    """A conjunction ``And(a, b, ...)``: ``parts[i]`` proves the i-th conjunct."""

    parts: tuple[Any, ...]


def index_facts(upper: Any, *indices: Any) -> tuple[Any, ...]:
    """The facts ``1 <= i`` and ``i <= upper`` for each index (premise of ``in_range``)."""
    import sympy as sp

    out: list[Any] = []
    for i in indices:
        out += [sp.Le(1, i), sp.Le(i, upper)]
    return tuple(out)


def describe(tactic: Any) -> str:
    """One line naming a tactic and its steps, for reports."""
    name = type(tactic).__name__
    if isinstance(tactic, Reduction):
        lem = ", ".join(
            f"{u.lemma.name}[{', '.join(f'{k}={_short(v)}' for k, v in u.instance.items())}]"
            + ("" if u.factor == 1 else f" x {_short(u.factor)}")
            for u in tactic.uses
        )
        extra = f" + {len(tactic.extra)} term(s) >= 0" if tactic.extra else ""
        return f"Reduction to {lem}{extra}{_steps(tactic.steps)}"
    if isinstance(tactic, Instances):
        vals = "; ".join(", ".join(f"{k}={v}" for k, v in d.items()) for d in tactic.values)
        return f"Instances {{{vals}}} of {describe(tactic.inner)}"
    if isinstance(tactic, Both):
        return "Both(" + "; ".join(describe(p) for p in tactic.parts) + ")"
    return name + _steps(getattr(tactic, "steps", ()))


def _steps(steps: tuple[Step, ...]) -> str:
    if not steps:
        return ""
    return " [" + ", ".join(s if isinstance(s, str) else s[0] for s in steps) + "]"


def _short(v: Any) -> str:
    # a Python function prints by name: its repr carries a memory address, which would make
    # the report differ from run to run
    text = f"<function {v.__qualname__}>" if isinstance(v, types.FunctionType) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = [
    "Both",
    "ComputeLimit",
    "Differentiate",
    "Exact",
    "Instances",
    "LHopital",
    "LemmaUse",
    "Reduction",
    "Series",
    "Sign",
    "Simplify",
    "describe",
    "index_facts",
]
