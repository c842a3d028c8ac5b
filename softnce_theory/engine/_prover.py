r"""The symbolic leg: apply a claim's tactic to the claim's own statement.

The claim supplies a statement (a SymPy relation), facts (SymPy relations) and a tactic
certificate (:mod:`derivations.tactics`). Everything that decides is here:

* the statement is refused if it is trivial (``lhs`` and ``rhs`` identical, or it evaluated to
  ``True`` when built), contains undefined functions, or does not have the shape the tactic needs;
* the engine, not the claim, differentiates, takes limits, expands series, instantiates lemmas
  and checks every side condition under the facts;
* the scope is read off the statement: a tactic that closes only after fixing a symbol the
  statement leaves free proves *instances*, which is evidence, never a proof.

Facts: ``Eq(a, b)`` facts rewrite ``a`` to ``b`` (summation dummies canonicalised first);
``Gt(e, 0)`` / ``Ge(e, 0)`` facts let the sign oracle treat ``e`` as positive / non-negative;
any relation counts as entailed when it is literally a fact (up to dummy names) or when SymPy's
assumption system decides it after these substitutions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sympy as sp

from softnce_theory.derivations._claim import Claim, Proof
from softnce_theory.derivations._sym import (
    canon,
    fast_sum_free_symbols,
    index_in_range,
    linear_sums,
)
from softnce_theory.derivations.tactics import (
    Both,
    ComputeLimit,
    Differentiate,
    Exact,
    Instances,
    LHopital,
    Reduction,
    Series,
    Sign,
    Simplify,
    describe,
)


class NotClosed(Exception):
    """The tactic did not close (with the reason); no evidence either way."""


class Refuted(Exception):
    """The statement is false at an explicit point (with the counterexample)."""


# ----------------------------------------------------------------------------- facts


class Facts:
    """A claim's facts, prepared for rewriting, sign decisions and entailment."""

    def __init__(self, facts: Sequence[Any]) -> None:
        self.items = tuple(facts)
        self.rewrites: dict[Any, Any] = {}
        self.positive: list[Any] = []
        self.nonneg: list[Any] = []
        self.literal: set[Any] = set()
        self.patterns: list[tuple[Any, Any]] = []
        for f in self.items:
            if f is sp.true:
                continue
            if not isinstance(f, sp.core.relational.Relational):
                raise NotClosed(f"fact {f} is not a SymPy relation")
            self.literal.add(_norm(f))
            if isinstance(f, sp.Eq) and f.lhs.has(sp.Wild):
                # schematic: holds for every value of its Wild symbols (e.g. every candidate j)
                self.patterns.append((canon(f.lhs), f.rhs))
            elif isinstance(f, sp.Eq):
                self.rewrites[canon(f.lhs)] = f.rhs
            else:
                big, small, strict = _orient(f)
                e = canon(sp.expand(big - small))
                (self.positive if strict else self.nonneg).append(e)

    def apply(self, expr: Any) -> Any:
        """Rewrite with the ``Eq`` facts (to a fixed point, at most 5 rounds)."""
        e = canon(expr)
        for _ in range(5):
            new = e.xreplace(self.rewrites) if self.rewrites else e
            for pat, rhs in self.patterns:
                new = _apply_schema(new, pat, rhs)
            if new == e:
                return e
            e = canon(new)
        return e

    def sign_form(self, expr: Any) -> Any:
        """``expr`` with each fact-positive (non-negative) subexpression replaced by a positive
        (non-negative) dummy, so SymPy's assumption system can use the facts."""
        reps: dict[Any, Any] = {}
        for e in self.positive:
            reps[e] = sp.Dummy("pos", positive=True)
            reps[-e] = -reps[e]
        for e in self.nonneg:
            reps.setdefault(e, sp.Dummy("nonneg", nonnegative=True))
        return canon(expr).xreplace(reps)

    def sign(self, expr: Any, strict: bool) -> bool:
        """Whether ``expr > 0`` (strict) or ``expr >= 0`` follows from the facts."""
        for cand in (expr, sp.expand(expr), sp.factor_terms(expr)):
            e = self.sign_form(self.apply(cand))
            if (e.is_positive if strict else e.is_nonnegative) is True:
                return True
            e = _signed_sums(e)
            if (e.is_positive if strict else e.is_nonnegative) is True:
                return True
        return False

    def entails(self, cond: Any) -> bool:
        """Whether the relation ``cond`` holds under the facts."""
        if cond is sp.true or cond is True:
            return True
        if cond is sp.false or cond is False:
            return False
        if _norm(cond) in self.literal:
            return True
        if isinstance(cond, sp.Eq):
            return is_zero(cond.lhs - cond.rhs, self)
        if isinstance(cond, sp.core.relational.Relational):
            big, small, strict = _orient(cond)
            if isinstance(cond, sp.Ne):
                return False
            return self.sign(big - small, strict)
        return False

    def describe(self) -> tuple[str, ...]:
        return tuple(sp.sstr(f) for f in self.items)


def _signed_sums(expr: Any) -> Any:
    """``expr`` with each finite ``Sum`` whose sign SymPy misses replaced by a signed dummy:
    a ``Sum`` over ranges of length ``hi - lo + 1 >= 0`` (possibly empty, e.g. up to a
    non-negative size ``M``) of a summand that is >= 0 for every index is >= 0, and > 0 when
    the summand is > 0 and every range is non-empty. The same ``Sum`` gets the same dummy
    (innermost sums first), so the replacement only forgets information: sound for signs."""
    cache: dict[Any, Any] = {}

    def fix(e: Any) -> Any:
        if e in cache:
            return cache[e]
        lengths = [hi - lo + 1 for _, lo, hi in e.limits]
        if not all(n.is_nonnegative for n in lengths):
            return e
        if e.function.is_positive and all(n.is_positive for n in lengths):
            cache[e] = sp.Dummy("sum_pos", positive=True)
        elif e.function.is_nonnegative:
            cache[e] = sp.Dummy("sum_nonneg", nonnegative=True)
        else:
            return e
        return cache[e]

    return expr.replace(lambda e: isinstance(e, sp.Sum), fix)


def _apply_schema(expr: Any, pat: Any, rhs: Any) -> Any:
    """Rewrite every instance of the schematic ``pat`` (holding ``Wild`` symbols) by ``rhs`` at
    the same match. A match that would capture a summation dummy bound inside the matched
    subexpression (``Sum(alpha[c, c], c)`` against ``Sum(alpha[j_, c], c)``) is refused: the
    schema is about a free index."""

    def fix(e: Any) -> Any:
        match = e.match(pat)
        if not match:
            return e
        bound = {lim[0] for s in e.atoms(sp.Sum) for lim in s.limits}
        if any(sp.sympify(v).free_symbols & bound for v in match.values()):
            return e
        return rhs.xreplace(match)

    return expr.replace(lambda e: e.match(pat) is not None, fix)


def _orient(rel: Any) -> tuple[Any, Any, bool]:
    """``(big, small, strict)`` such that the relation says ``big > small`` or ``big >= small``."""
    if isinstance(rel, (sp.Gt, sp.StrictGreaterThan)):
        return rel.lhs, rel.rhs, True
    if isinstance(rel, (sp.Ge, sp.GreaterThan)):
        return rel.lhs, rel.rhs, False
    if isinstance(rel, (sp.Lt, sp.StrictLessThan)):
        return rel.rhs, rel.lhs, True
    if isinstance(rel, (sp.Le, sp.LessThan)):
        return rel.rhs, rel.lhs, False
    raise NotClosed(f"{type(rel).__name__} is not an inequality")


def _norm(rel: Any) -> Any:
    """A canonical form of a relation for literal matching (``e > 0`` / ``e >= 0`` / ``Eq``)."""
    if isinstance(rel, sp.Eq):
        return ("eq", canon(sp.expand(rel.lhs - rel.rhs)))
    if isinstance(rel, sp.Ne):
        return ("ne", canon(sp.expand(rel.lhs - rel.rhs)))
    big, small, strict = _orient(rel)
    return ("gt" if strict else "ge", canon(sp.expand(big - small)))


# ----------------------------------------------------------------------------- rewriting


def _expand_log(expr: Any, facts: Facts) -> Any:
    """``expand_log`` where every factor of each log's argument is positive under the facts."""
    for lg in sorted(expr.atoms(sp.log), key=sp.count_ops):
        arg = lg.args[0]
        factors = [f.base if isinstance(f, sp.Pow) else f for f in sp.Mul.make_args(arg)]
        if isinstance(arg, sp.Pow):
            factors = [arg.base]
        if len(factors) == 1 and not isinstance(arg, sp.Pow):
            continue
        if not all(facts.sign(f, strict=True) for f in factors):
            raise NotClosed(f"expand_log: cannot show the factors of log({arg}) positive")
    return sp.expand_log(expr, force=True)


def merge_sums(expr: Any) -> Any:
    """Linearity of a finite ``Sum``, the inverse of ``linear_sums``: in every sum of terms,
    ``c1*Sum(f, (k, a, b)) + c2*Sum(g, (j, a, b))`` becomes ``Sum(c1*f + c2*g, (d, a, b))``
    (a fresh dummy ``d``; ``c1``, ``c2`` are the factors outside the ``Sum``, so they do not
    depend on it). Single-limit sums with the same bounds only."""

    def key(s: Any) -> tuple[Any, Any]:
        return (s.limits[0][1], s.limits[0][2])

    def single_limit_sums(term: Any) -> list[Any]:
        return [f for f in sp.Mul.make_args(term) if isinstance(f, sp.Sum) and len(f.limits) == 1]

    def merge(add: Any) -> Any:
        groups: dict[tuple[Any, Any], list[Any]] = {}
        dummies: dict[tuple[Any, Any], Any] = {}
        rest: list[Any] = []
        terms = sp.Add.make_args(add)
        seen = {key(s[0]) for s in map(single_limit_sums, terms) if len(s) == 1}
        for term in terms:
            factors = sp.Mul.make_args(term)
            sums = single_limit_sums(term)
            if len(sums) > 1:  # a product of sums: merge along a factor with a shared range
                sums = [s for s in sums if key(s) in seen][:1]
            if len(sums) != 1:
                rest.append(term)
                continue
            ((v, lo, hi),) = sums[0].limits
            d = dummies.setdefault((lo, hi), sp.Dummy("k", integer=True))
            coeff = sp.Mul(*[f for f in factors if f is not sums[0]])
            groups.setdefault((lo, hi), []).append(coeff * sums[0].function.xreplace({v: d}))
        if not any(len(g) > 1 for g in groups.values()):
            return add
        merged = [sp.Sum(sp.Add(*g), (dummies[key], *key)) for key, g in groups.items()]
        return sp.Add(*rest, *merged)

    return expr.replace(lambda e: isinstance(e, sp.Add) and e.has(sp.Sum), merge)


def delta_sums(expr: Any, facts: Facts) -> Any:
    """``Sum(f * KroneckerDelta(i, k), (k, a, b)) -> f(k := i)`` for the terms of a summand
    whose delta pins the dummy to an ``i`` that the facts place in ``a <= i <= b`` (other
    terms stay summed). A cheap, exact alternative to ``doit`` + ``in_range`` for sums of
    derivatives; terms whose premise is not entailed are left as they are."""

    def fix(e: Any) -> Any:
        if len(e.limits) != 1:
            return e
        ((v, lo, hi),) = e.limits
        out, changed = sp.Integer(0), False
        for term in sp.Add.make_args(sp.expand(e.function)):
            ds = [
                d
                for d in sp.Mul.make_args(term)
                if isinstance(d, sp.KroneckerDelta) and v in d.free_symbols
            ]
            if len(ds) == 1:
                d = ds[0]
                other = d.args[0] if d.args[1] == v else d.args[1]
                if (
                    v not in other.free_symbols
                    and facts.entails(sp.Le(lo, other))
                    and facts.entails(sp.Le(other, hi))
                ):
                    out += (term / d).xreplace({v: other})
                    changed = True
                    continue
            out += sp.Sum(term, (v, lo, hi))
        return out if changed else e

    return expr.replace(lambda e: isinstance(e, sp.Sum), fix)


def cancel_summands(expr: Any) -> Any:
    """``Sum(f, ...) -> Sum(cancel(f), ...)``: SymPy's ``cancel`` inside every summand."""
    return expr.replace(
        lambda e: isinstance(e, sp.Sum), lambda e: sp.Sum(sp.cancel(e.function), *e.limits)
    )


def swap_sums(expr: Any) -> Any:
    """Fubini for finite sums: the two innermost summations of a double sum change places,
    ``Sum(F, (i, a, b), (j, c, d))`` (SymPy's flattened ``Sum(Sum(F, (i, a, b)), (j, c, d))``)
    becomes ``Sum(F, (j, c, d), (i, a, b))`` wherever neither range depends on the other dummy
    (an identity: both are the same finite double sum)."""

    def limits(e: Any) -> tuple[Any, ...] | None:
        if not isinstance(e, sp.Sum):
            return None
        if len(e.limits) >= 2:
            return e.limits
        if isinstance(e.function, sp.Sum):
            return (*e.function.limits, *e.limits)
        return None

    def body(e: Any) -> Any:
        return e.function.function if len(e.limits) == 1 else e.function

    def swappable(e: Any) -> bool:
        lims = limits(e)
        if lims is None or len(lims) != 2:
            return False
        (i, a, b), (j, c, d) = lims
        return i not in (c.free_symbols | d.free_symbols) and j not in (
            a.free_symbols | b.free_symbols
        )

    def swap(e: Any) -> Any:
        inner, outer = limits(e)  # type: ignore[misc]
        return sp.Sum(sp.Sum(body(e), outer), inner)

    return expr.replace(swappable, swap)


def doit_delta(expr: Any) -> Any:
    """``doit`` only the innermost ``Sum`` objects whose summand holds a ``KroneckerDelta`` (and
    any ``Derivative``), leaving other sums alone. A targeted ``doit``: SymPy 1.14's full
    ``doit`` mis-evaluates e.g. ``Sum(exp(Piecewise(... y[j] ...)), (j, 1, M))``."""

    def target(e: Any) -> bool:
        return (
            isinstance(e, sp.Sum)
            and e.function.has(sp.KroneckerDelta)
            and not e.function.has(sp.Sum)
        )

    out = expr.replace(lambda e: isinstance(e, sp.Derivative), lambda e: e.doit(deep=False))
    return out.replace(target, lambda e: e.doit())


def rewrite(expr: Any, steps: Sequence[Any], facts: Facts) -> Any:
    """Apply the rewrite steps (see :mod:`derivations.tactics`) in order."""
    simple = {
        "doit": lambda e: e.doit(),
        "expand": sp.expand,
        "together": sp.together,
        "cancel": sp.cancel,
        "factor": sp.factor,
        "powsimp": sp.powsimp,
        "simplify": sp.simplify,
        "linear_sums": linear_sums,
        "canon": canon,
        # evaluate the Derivative objects only (Sum.doit would also try closed forms of sums)
        "derivatives": lambda e: e.replace(
            lambda a: isinstance(a, sp.Derivative), lambda d: d.doit(deep=False)
        ),
        "swap_sums": swap_sums,
        "doit_delta": doit_delta,
        "split_exp": lambda e: e.replace(
            lambda x: isinstance(x, sp.exp) and isinstance(x.args[0], sp.Add),
            lambda x: sp.Mul(*[sp.exp(a) for a in x.args[0].args]),
        ),
        "merge_sums": merge_sums,
        "factor_terms": sp.factor_terms,
        "cancel_summands": cancel_summands,
    }
    e = expr
    for st in steps:
        if isinstance(st, str) and st in simple:
            e = simple[st](e)
        elif st == "expand_log":
            e = _expand_log(e, facts)
        elif st == "delta_sums":
            e = delta_sums(e, facts)
        elif st == "facts":
            e = facts.apply(e)
        elif isinstance(st, tuple) and st and st[0] == "in_range":
            upper, *idx = st[1:]
            for i in idx:
                for need in (sp.Le(1, i), sp.Le(i, upper)):
                    if not facts.entails(need):
                        raise NotClosed(f"in_range needs the fact {need}")
            e = index_in_range(e, upper, *idx)
        else:
            raise NotClosed(f"unknown rewrite step {st!r}")
    return e


#: ``simplify`` is tried only on differences of at most this many operations. Every proof in the
#: catalogue closes with at most 28 (the rest close by ``expand`` after the rewrite steps);
#: beyond the cap SymPy's heuristics take minutes to fail, so a larger difference is reported
#: "not closed" at once: rewrite it with steps first. The cap can only withhold a proof.
SIMPLIFY_MAX_OPS = 60


def is_zero(expr: Any, facts: Facts) -> bool:
    """``expr`` is exactly 0 after the facts, dummy canonicalisation and SymPy simplification
    (never on numeric evidence)."""
    e = facts.apply(expr)
    if sp.expand(e, power_exp=False) == 0:
        return True
    if sp.count_ops(e) > SIMPLIFY_MAX_OPS:
        return False
    try:
        e = facts.apply(sp.simplify(e))
        if e == 0:
            return True
        e = facts.apply(linear_sums(e))
        return bool(sp.count_ops(e) <= SIMPLIFY_MAX_OPS and sp.simplify(e) == 0)
    except (StopIteration, RecursionError, NotImplementedError, TypeError):
        return False  # SymPy failed inside simplify (e.g. sum_simplify): not shown, no verdict


def _refute_if_constant(diff: Any, what: str) -> None:
    if not diff.free_symbols:
        val = sp.nsimplify(diff) if diff.is_number else diff
        if val.is_number and val.is_zero is False:
            raise Refuted(f"{what} = {sp.sstr(val)} != 0")


# ----------------------------------------------------------------------------- tactics

_LEMMA_CHECKS: dict[str, tuple[Any, tuple[bool, str]]] = {}


def lemma_check(lemma: Any) -> tuple[bool, str]:
    """A lemma's own check, run once per process (the checks are pure SymPy)."""
    hit = _LEMMA_CHECKS.get(lemma.name)
    if hit is None or hit[0] is not lemma:
        with fast_sum_free_symbols():
            hit = (lemma, lemma.check())
        _LEMMA_CHECKS[lemma.name] = hit
    return hit[1]


def _check_statement(st: Any) -> None:
    if st is sp.true or st is True:
        raise NotClosed("the statement evaluated to True when built: it states nothing")
    if st is sp.false or st is False:
        raise Refuted("the statement evaluated to False when built")
    if not isinstance(st, sp.Basic):
        raise NotClosed(f"the statement is a {type(st).__name__}, not a SymPy relation")
    undef = st.atoms(sp.core.function.AppliedUndef)
    if undef:
        raise NotClosed(f"the statement contains undefined function(s) {sorted(map(str, undef))}")
    if isinstance(st, sp.core.relational.Relational) and st.lhs == st.rhs:
        raise NotClosed("both sides of the statement are identical: it states nothing")


def _need(st: Any, kind: type | tuple[type, ...], tactic: Any) -> None:
    if not isinstance(st, kind):
        raise NotClosed(f"{type(tactic).__name__} needs a {kind}, the statement is {type(st)}")


def _simplify(st: Any, t: Simplify, facts: Facts) -> None:
    _need(st, sp.Eq, t)
    d = rewrite(st.lhs - st.rhs, t.steps, facts)
    if not is_zero(d, facts):
        _refute_if_constant(facts.apply(d), "lhs - rhs")
        raise NotClosed(f"lhs - rhs did not simplify to 0 (left: {sp.sstr(d)[:200]})")


def _differentiate(st: Any, t: Differentiate, facts: Facts) -> None:
    _need(st, sp.Eq, t)
    der, closed = st.lhs, st.rhs
    if not isinstance(der, sp.Derivative) and isinstance(closed, sp.Derivative):
        der, closed = closed, der
    if not isinstance(der, sp.Derivative):
        raise NotClosed("Differentiate needs Eq(Derivative(f, x), closed form)")
    if closed.has(sp.Derivative):
        raise NotClosed("the closed form contains an unevaluated Derivative")
    computed = sp.diff(der.expr, *der.variable_count)
    d = rewrite(computed - closed, t.steps, facts)
    if not is_zero(d, facts):
        raise NotClosed(f"d/d{der.variables} minus the closed form did not simplify to 0")


def _limit_parts(st: Any, t: Any) -> tuple[Any, Any]:
    _need(st, sp.Eq, t)
    lim, value = st.lhs, st.rhs
    if not isinstance(lim, sp.Limit) and isinstance(value, sp.Limit):
        lim, value = value, lim
    if not isinstance(lim, sp.Limit):
        raise NotClosed(f"{type(t).__name__} needs Eq(Limit(f, x, x0), value)")
    return lim, value


def _compute_limit(st: Any, t: ComputeLimit, facts: Facts) -> None:
    lim, value = _limit_parts(st, t)
    f, x, x0, direction = lim.args
    got = sp.limit(f, x, x0, str(direction))
    if isinstance(got, sp.Limit):
        raise NotClosed("sympy.limit did not evaluate")
    if not is_zero(rewrite(got - value, t.steps, facts), facts):
        raise NotClosed("the limit differs from the stated value")


def _lhopital(st: Any, t: LHopital, facts: Facts) -> None:
    lim, value = _limit_parts(st, t)
    f, x, x0, _ = lim.args
    num, den = t.numerator, t.denominator
    if not is_zero(rewrite(f - num / den, t.steps, facts), facts):
        raise NotClosed("numerator / denominator is not the limit's argument")
    at = {x: x0}
    # order r: n, d and their derivatives below order r vanish at x0, d^(r)(x0) != 0, then
    # lim n/d = n^(r)(x0)/d^(r)(x0) (l'Hopital r times; Taylor with Peano remainder)
    order = getattr(t, "order", 1)
    if not isinstance(order, int) or order < 1:
        raise NotClosed(f"LHopital order must be an integer >= 1, got {order!r}")
    for r in range(order):
        what = "" if r == 0 else f"'s derivative of order {r}"
        if not is_zero(rewrite(sp.diff(num, x, r).subs(at), t.steps, facts), facts):
            raise NotClosed(f"the numerator{what} does not vanish at the limit point")
        if not is_zero(rewrite(sp.diff(den, x, r).subs(at), t.steps, facts), facts):
            raise NotClosed(f"the denominator{what} does not vanish at the limit point")
    dn = rewrite(sp.diff(num, x, order).subs(at), t.steps, facts)
    dd = rewrite(sp.diff(den, x, order).subs(at), t.steps, facts)
    if is_zero(dd, facts) or not (facts.sign(dd, True) or facts.sign(-dd, True)):
        raise NotClosed("cannot show the denominator's derivative non-zero at the limit point")
    if not is_zero(dn / dd - value, facts):
        raise NotClosed("n^(r)(x0)/d^(r)(x0) differs from the stated value")


def _series(st: Any, t: Series, facts: Facts) -> None:
    _need(st, sp.Eq, t)
    lhs, rhs = st.lhs, st.rhs
    orders = [a for a in sp.Add.make_args(rhs) if isinstance(a, sp.Order)]
    if len(orders) != 1:
        raise NotClosed("Series needs Eq(f, g + O(x**p, (x, x0))) with one explicit O term")
    order = orders[0]
    main = rhs - order
    if len(order.variables) != 1:
        raise NotClosed("Series supports one expansion variable")
    x, x0 = order.variables[0], order.point[0]
    d = rewrite(lhs - main, t.steps, facts)
    if is_zero(d, facts):
        return
    lead = sp.Order(d, (x, x0))
    if not order.contains(lead):
        raise NotClosed(f"f - g is {lead}, not within {order}")


def _reduction(st: Any, t: Reduction, facts: Facts) -> None:
    big, small, strict = _orient(st)
    if not t.uses and not t.extra:
        raise NotClosed("a Reduction needs at least one lemma or term")
    total = sp.Integer(0)
    pos_lemma = False  # a strict lemma (gap > 0, proved by its check) times a factor > 0
    for u in t.uses:
        ok, why = lemma_check(u.lemma)
        if not ok:
            raise NotClosed(f"lemma {u.lemma.name} failed its own check ({why})")
        for cond in u.lemma.conditions():
            inst = u.lemma.instantiate(u.instance, cond)
            if not facts.entails(inst):
                raise NotClosed(f"lemma {u.lemma.name}: condition {sp.sstr(inst)} not entailed")
        if not facts.sign(sp.sympify(u.factor), strict=False):
            raise NotClosed(f"cannot show the factor {u.factor} of {u.lemma.name} >= 0")
        total += u.factor * u.lemma.instantiate(u.instance, u.lemma.gap())
        if getattr(u.lemma, "strict", False) and facts.sign(sp.sympify(u.factor), strict=True):
            pos_lemma = True
    pos_extra = pos_lemma
    for term in t.extra:
        if facts.sign(term, strict=True):
            pos_extra = True
        elif not facts.sign(term, strict=False):
            raise NotClosed(f"cannot show the extra term {sp.sstr(term)[:120]} >= 0")
    if strict and not pos_extra:
        raise NotClosed("a strict inequality needs one extra term or strict lemma shown > 0")
    d = rewrite(big - small - total - sum(t.extra, sp.Integer(0)), t.steps, facts)
    if not is_zero(d, facts):
        raise NotClosed("big - small differs from the certificate's combination")


def _sign(st: Any, t: Sign, facts: Facts) -> None:
    big, small, strict = _orient(st)
    d = rewrite(big - small, t.steps, facts)
    if not facts.sign(d, strict):
        if not d.free_symbols:
            _refute_if_constant(sp.simplify(d), "big - small")
        raise NotClosed("SymPy could not sign big - small")


def _exact(st: Any, t: Exact, facts: Facts) -> None:
    if st.free_symbols:
        raise NotClosed(f"Exact needs a statement without free symbols, got {st.free_symbols}")
    val = sp.simplify(rewrite(st, t.steps, facts))
    if val is sp.true:
        return
    if val is sp.false:
        raise Refuted(f"the statement evaluates to False: {sp.sstr(st)[:200]}")
    if isinstance(st, sp.core.relational.Relational) and not isinstance(st, (sp.Eq, sp.Ne)):
        big, small, strict = _orient(st)
        d = sp.simplify(big - small)
        if (d.is_positive if strict else d.is_nonnegative) is True:
            return
        if (d.is_nonpositive if strict else d.is_negative) is True:
            raise Refuted(f"big - small = {sp.sstr(d)} violates the statement")
    raise NotClosed("exact evaluation did not decide the statement")


_DISPATCH: dict[type, Any] = {
    Simplify: _simplify,
    Differentiate: _differentiate,
    ComputeLimit: _compute_limit,
    LHopital: _lhopital,
    Series: _series,
    Reduction: _reduction,
    Sign: _sign,
    Exact: _exact,
}


def apply_tactic(st: Any, tactic: Any, facts: Facts) -> str:
    """Apply ``tactic`` to ``st``; return the scope kind or raise NotClosed / Refuted."""
    _check_statement(st)
    if isinstance(tactic, Both):
        conj = st.args if isinstance(st, sp.And) else None
        if conj is None or len(conj) != len(tactic.parts):
            raise NotClosed("Both needs an And with one tactic per conjunct")
        kinds = [apply_tactic(c, p, facts) for c, p in zip(conj, tactic.parts, strict=True)]
        return "instances" if "instances" in kinds else kinds[0]
    if isinstance(tactic, Instances):
        if not tactic.values:
            raise NotClosed("Instances needs at least one instance")
        fixed = set()
        for vals in tactic.values:
            fixed |= set(vals) & st.free_symbols
            inst_facts = Facts([f.subs(vals) for f in facts.items])
            where = ", ".join(f"{k} = {v}" for k, v in vals.items())
            try:
                apply_tactic(st.subs(vals), tactic.inner, inst_facts)
            except Refuted as exc:
                raise Refuted(f"at {where}: {exc}") from exc
            except NotClosed as exc:
                raise NotClosed(f"at {where}: {exc}") from exc
        return "instances" if fixed else "general"
    fn = _DISPATCH.get(type(tactic))
    if fn is None:
        raise NotClosed(f"unknown tactic {type(tactic).__name__}")
    fn(st, tactic, facts)
    return "witness" if not st.free_symbols else "general"


def symbol_facts(st: Any) -> tuple[str, ...]:
    """The assumptions carried by the statement's symbols (``K`` integer positive, ...)."""
    out = []
    keys = ("integer", "positive", "nonnegative", "real")
    plain = {s for s in st.free_symbols if isinstance(s, sp.Symbol)}
    for s in sorted(plain | _bases(st), key=str):
        a = [k for k in keys if getattr(s, f"is_{k}", None)]
        if "positive" in a and "nonnegative" in a:
            a.remove("nonnegative")
        if a and ("integer" in a or "real" not in a or len(a) > 1):
            a = [k for k in a if not (k == "real" and len(a) > 1)]
        if a:
            out.append(f"{s}: {' '.join(a)}")
    return tuple(out)


def _bases(st: Any) -> set[Any]:
    return {i.base.label for i in st.atoms(sp.Indexed)}


_STATEMENTS: dict[str, tuple[Claim, Any]] = {}


def statement_of(claim: Claim) -> Any:
    """``claim.statement()``, built once per process and claim: the relation the prover works
    on is the one the report prints (building it again costs as much as a small proof)."""
    hit = _STATEMENTS.get(claim.id)
    if hit is None or hit[0] is not claim:
        with fast_sum_free_symbols():
            hit = (claim, claim.statement())
        _STATEMENTS[claim.id] = hit
    return hit[1]


def prove(claim: Claim) -> Proof:
    """Run the claim's tactic on its statement and report a :class:`Proof` (the engine's)."""
    with fast_sum_free_symbols():  # the same SymPy results, faster (see derivations._sym)
        return _prove(claim)


def _prove(claim: Claim) -> Proof:
    if claim.tactic is None:
        return Proof(False, "no tactic", "none", scope_kind="none")
    method = describe(claim.tactic)
    facts_raw = claim.fact_list()
    try:
        st = statement_of(claim)
        facts = Facts(facts_raw)
        assumptions = facts.describe() + symbol_facts(st)
        kind = apply_tactic(st, claim.tactic, facts)
    except Refuted as exc:
        return Proof(
            False, method, "refuted", refuted=True, counterexample=str(exc), scope_kind="none"
        )
    except NotClosed as exc:
        return Proof(False, method, "not closed", detail=str(exc), scope_kind="none")
    scope = {
        "general": "general: every symbol of the statement symbolic",
        "witness": "witness: the statement is about explicit numbers",
        "instances": "instances only: " + method,
    }[kind]
    return Proof(True, method, scope, assumptions=assumptions, scope_kind=kind)  # type: ignore[arg-type]
