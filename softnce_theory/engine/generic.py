r"""Generic claims derived from a loss's definition (the "verify your own loss" engine).

A family declared from a :class:`~softnce_theory.registry.LossSpec` gives the per-sample loss
:math:`\ell(x_1, \dots, x_K; \theta)` as a SymPy expression, its torch implementation and its
input :class:`~softnce_theory.domain.Domain`. From that alone this module derives claims that run
through the same engine and honesty rules as the built-in catalogue (ids
``<family>.generic.<name>``):

* ``value``: the torch loss in float64 equals the oracle at 50 digits, row by row.
* ``gradient``: autograd's :math:`\partial \ell / \partial x_k` and
  :math:`\partial \ell / \partial \theta` (float64) equal SymPy's derivative of the definition
  evaluated at 50 digits; with an independent oracle, the derivative is also compared with
  mpmath's numerical derivative of the oracle at 50 digits.
* ``closed_form_gradient`` (when the spec claims one): SymPy differentiates the definition and
  must reduce the difference to 0 at each declared size (the symbolic leg); the closed form is
  also compared with the derivative at 50 digits and with autograd in float64. A wrong closed
  form is ``refuted`` with the first point where it differs.
* ``low_precision``: every lower floating dtype the domain allows agrees with the oracle at the
  rounded inputs within :math:`8\,\epsilon_{dtype}\,(\sum_i |T_i| + \sum_k |x_k \partial_k
  \ell| + \sum_j |\theta_j \partial_{\theta_j} \ell|)`, where :math:`T_i` are the summands of
  the definition (their cancellation) and the rest is the first-order propagation of rounding.
* ``extremes`` (when a parameter declares extremes): value and gradients are finite there, in
  float64 and float32.
* ``invariance.logit_shift`` / ``invariance.batch_permutation`` (when declared).

Without an oracle, the definition itself is evaluated at 50 digits as the reference. That
reference is **not independent** of the definition: every leg resting on it says so in its
detail and carries ``extra["independent_oracle"] = False``, and no definition leg is claimed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import mpmath
import sympy as sp

from softnce_theory.derivations import CheckConfig, Claim, Definition, LegRegistry, LegResult, Tally
from softnce_theory.derivations.tactics import Both, Differentiate, Simplify
from softnce_theory.domain import Param
from softnce_theory.registry import Family, LossSpec, resolve

if TYPE_CHECKING:  # torch is imported where it is used: listing claims needs no torch
    import torch

NOT_INDEPENDENT = "oracle generated from the SymPy definition at 50 digits: not independent"
DPS = 50
#: float64 tolerances of the production legs (relative, normwise for gradients)
RTOL64 = 1e-11
ATOL64 = 1e-12
#: rounding-error bound factor of the low-precision leg (times eps * first-order magnitude)
LOWP_FACTOR = 8.0
BATCH = 3


@dataclass
class Derived:
    """What the engine derives from one spec family."""

    claims: tuple[Claim, ...]
    definitions: tuple[Definition, ...]
    definition_legs: LegRegistry = field(default_factory=lambda: LegRegistry("definition"))
    precise: LegRegistry = field(default_factory=lambda: LegRegistry("precise"))
    production: LegRegistry = field(default_factory=lambda: LegRegistry("production"))
    conformance: LegRegistry = field(default_factory=lambda: LegRegistry("production"))


def _param_symbol(p: Param) -> sp.Symbol:
    iv = p.interval
    if iv.low > 0 or (iv.low == 0 and not iv.low_closed):
        return sp.Symbol(p.name, positive=True)
    if iv.low == 0:
        return sp.Symbol(p.name, nonnegative=True)
    return sp.Symbol(p.name, real=True)


class _Lazy(dict[str, Any]):
    """The entry of :meth:`Compiled.at`: ``value``, ``grad``, ``terms`` and ``claimed_fn``
    (mpmath evaluators of the expression, its derivatives, its summands and the declared
    closed-form gradient) are built when first read."""

    def __missing__(self, key: str) -> Any:
        args, expr = self["args"], self["expr"]
        if key == "value":
            out: Any = sp.lambdify(args, expr, "mpmath")
        elif key == "grad":
            out = sp.lambdify(args, [sp.diff(expr, a) for a in args], "mpmath")
        elif key == "terms":
            out = sp.lambdify(args, list(sp.Add.make_args(expr)), "mpmath")
        elif key == "claimed_fn" and "claimed" in self:
            out = sp.lambdify(args, self["claimed"], "mpmath")
        else:
            raise KeyError(key)
        self[key] = out
        return out


class Compiled:
    """A spec's definition at each size, its derivatives and its 50-digit evaluators."""

    def __init__(self, family: Family) -> None:
        spec = family.spec
        assert spec is not None
        self.family, self.spec = family, spec
        self.rows = spec.rows
        self.params: tuple[Param, ...] = spec.domain.params
        self.independent = spec.oracle is not None
        self.torch_fn: Callable[..., torch.Tensor] = resolve(spec.torch_fn)
        self.psyms = [_param_symbol(p) for p in self.params]
        self._cache: dict[int, dict[str, Any]] = {}

    def at(self, k: int) -> dict[str, Any]:
        """Symbols, expression, derivatives and mpmath evaluators at row length ``k``; the
        derivatives and evaluators are built on first use (listing the claims needs neither)."""
        if k not in self._cache:
            x = [sp.Symbol(f"x_{i}", real=True) for i in range(k)]
            kw = {p.name: s for p, s in zip(self.params, self.psyms, strict=True)}
            expr = sp.sympify(self.spec.definition(x, **kw))
            args = [*x, *self.psyms]
            bad = expr.free_symbols - set(args)
            if bad:
                raise ValueError(
                    f"{self.family.name}: the definition uses undeclared symbols {sorted(map(str, bad))}"
                )
            entry = _Lazy(x=x, args=args, expr=expr)
            if self.spec.gradient is not None:
                claimed = [sp.sympify(g) for g in self.spec.gradient(x, **kw)]
                if len(claimed) != k:
                    raise ValueError(
                        f"{self.family.name}: gradient must return {k} expressions, got {len(claimed)}"
                    )
                entry["claimed"] = claimed
            self._cache[k] = entry
        return self._cache[k]

    # -- references at 50 digits -------------------------------------------------------------
    def oracle(self, row: Sequence[Any], params: dict[str, Any]) -> Any:
        """The reference value of one row at :data:`DPS` digits (the spec's oracle if any)."""
        with mpmath.workdps(DPS):
            mrow = [mpmath.mpf(v) for v in row]
            mpar = {k: mpmath.mpf(v) for k, v in params.items()}
            if self.spec.oracle is not None:
                return mpmath.mpf(self.spec.oracle(mrow, **mpar))
            return mpmath.mpf(self.at(len(row))["value"](*mrow, *mpar.values()))

    def definition_value(self, row: Sequence[Any], params: dict[str, Any]) -> Any:
        with mpmath.workdps(DPS):
            vals = [mpmath.mpf(v) for v in (*row, *params.values())]
            return mpmath.mpf(self.at(len(row))["value"](*vals))

    def derivative(self, row: Sequence[Any], params: dict[str, Any]) -> list[Any]:
        """SymPy's derivative of the definition (rows, then parameters) at 50 digits."""
        with mpmath.workdps(DPS):
            vals = [mpmath.mpf(v) for v in (*row, *params.values())]
            return [mpmath.mpf(g) for g in self.at(len(row))["grad"](*vals)]

    # -- torch --------------------------------------------------------------------------------
    def run_torch(
        self, rows: list[list[float]], params: dict[str, float], dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None, list[torch.Tensor | None]]:
        """Per-sample losses, d(sum)/d rows and d(sum)/d each parameter (``None``: no gradient
        reached it)."""
        import torch

        x = torch.tensor(rows, dtype=dtype, requires_grad=True)
        ps = {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in params.items()}
        out = self.torch_fn(x, **ps)
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (len(rows),):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(
                f"{self.family.name}: torch_fn must return the ({len(rows)},) per-sample losses, "
                f"got {shape}"
            )
        grads = torch.autograd.grad(
            out.sum(), [x, *ps.values()], allow_unused=True, materialize_grads=False
        )
        return out.detach(), grads[0], list(grads[1:])

    def points(
        self,
        cfg: CheckConfig,
        claim_id: str,
        full: int = 8,
        quick: int = 2,
        sizes: Sequence[int] | None = None,
    ) -> Any:
        """Seeded random points from the domain: ``(rows, params)`` cycling through the sizes
        (every size at least once, also in quick mode)."""
        rng = random.Random(cfg.seed_for(claim_id))
        sizes = tuple(sizes or self.spec.sizes)
        n = max(cfg.points(full, quick), len(sizes))
        for i in range(n):
            k = sizes[i % len(sizes)]
            pt = self.spec.domain.sample(
                rng, {d: (BATCH if j == 0 else k) for j, d in enumerate(self.rows.dims)}
            )
            yield pt[self.rows.name], {p.name: pt[p.name] for p in self.params}


def _mark(res: LegResult, independent: bool) -> LegResult:
    res.extra["independent_oracle"] = independent
    if not independent:
        res.detail = f"[{NOT_INDEPENDENT}] " + res.detail
    return res


def _names(c: Compiled) -> list[str]:
    return [f"d/d{c.rows.name}[{i}]" for i in range(max(c.spec.sizes))] + [
        f"d/d{p.name}" for p in c.params
    ]


# ----------------------------------------------------------------------------------- legs


def _value_production(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    import torch

    t = Tally("production", rtol=RTOL64, atol=ATOL64, dtype="float64")
    for rows, params in c.points(cfg, cid):
        out, _, _ = c.run_torch(rows, params, torch.float64)
        for b, row in enumerate(rows):
            t.close(float(out[b]), c.oracle(row, params), f"row {row}, {params}")
    return _mark(t.result("torch float64 vs the oracle at 50 digits"), c.independent)


def _gradient_production(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    import torch

    t = Tally("production", rtol=RTOL64, atol=ATOL64, dtype="float64")
    for rows, params in c.points(cfg, cid):
        _, gx, gp = c.run_torch(rows, params, torch.float64)
        k = len(rows[0])
        total_p = [mpmath.mpf(0)] * len(c.params)
        for b, row in enumerate(rows):
            d = c.derivative(row, params)
            got_x = [float(gx[b, i]) if gx is not None else math.nan for i in range(k)]
            t.close_normwise(got_x, d[:k], f"d loss/d {c.rows.name} at row {row}, {params}")
            total_p = [a + v for a, v in zip(total_p, d[k:], strict=True)]
        for j, p in enumerate(c.params):
            got = gp[j]
            if got is None:
                t.fail(f"d loss/d {p.name}: no gradient reached the tensor {p.name} (detached?)")
            else:
                t.close(float(got), total_p[j], f"d sum(loss)/d {p.name} at {params}")
    return t.result("autograd (float64) vs SymPy's derivative of the definition at 50 digits")


def _gradient_precise(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    t = Tally("precise", rtol=1e-25, atol=1e-30, dps=DPS)
    for rows, params in c.points(cfg, cid, 4, 1):
        row = rows[0]
        with mpmath.workdps(DPS):
            vals = [mpmath.mpf(v) for v in (*row, *params.values())]
            names = list(params)

            def f(*a: Any, k: int = len(row), names: list[str] = names) -> Any:
                return c.spec.oracle(list(a[:k]), **dict(zip(names, a[k:], strict=True)))  # type: ignore[misc]

            num = [
                mpmath.diff(f, vals, tuple(int(j == i) for j in range(len(vals))))
                for i in range(len(vals))
            ]
        t.close_normwise(num, c.derivative(row, params), f"at row {row}, {params}")
    return t.result("SymPy's derivative vs mpmath's numerical derivative of the oracle (50 digits)")


def _closed_form_precise(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    t = Tally("precise", rtol=1e-30, atol=1e-35, dps=DPS)
    for rows, params in c.points(cfg, cid):
        for row in rows:
            e = c.at(len(row))
            with mpmath.workdps(DPS):
                vals = [mpmath.mpf(v) for v in (*row, *params.values())]
                claimed = [mpmath.mpf(g) for g in e["claimed_fn"](*vals)]
            t.close_normwise(
                claimed, c.derivative(row, params)[: len(row)], f"at row {row}, {params}"
            )
    return t.result("the claimed closed form vs SymPy's derivative of the definition (50 digits)")


def _closed_form_production(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    import torch

    t = Tally("production", rtol=RTOL64, atol=ATOL64, dtype="float64")
    for rows, params in c.points(cfg, cid):
        _, gx, _ = c.run_torch(rows, params, torch.float64)
        for b, row in enumerate(rows):
            e = c.at(len(row))
            with mpmath.workdps(DPS):
                vals = [mpmath.mpf(v) for v in (*row, *params.values())]
                claimed = [mpmath.mpf(g) for g in e["claimed_fn"](*vals)]
            got = [float(gx[b, i]) if gx is not None else math.nan for i in range(len(row))]
            t.close_normwise(got, claimed, f"autograd vs the closed form at row {row}, {params}")
    return t.result("autograd (float64) vs the claimed closed form at 50 digits")


def _low_precision(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    import torch

    t = Tally("production", rtol=0.0, atol=0.0)
    dtypes = [d for d in c.rows.dtypes if d != "float64"]
    for rows, params in c.points(cfg, cid, 4, 1):
        for name in dtypes:
            dt = getattr(torch, name)
            eps = torch.finfo(dt).eps
            r_rows = torch.tensor(rows, dtype=dt).double().tolist()
            r_par = {k: float(torch.tensor(v, dtype=dt)) for k, v in params.items()}
            out, _, _ = c.run_torch(r_rows, r_par, dt)
            for b, row in enumerate(r_rows):
                ref = c.oracle(row, r_par)
                d = c.derivative(row, r_par)
                vals = (*row, *r_par.values())
                with mpmath.workdps(DPS):  # cancellation between the definition's summands
                    terms = c.at(len(row))["terms"](*[mpmath.mpf(v) for v in vals])
                mag = sum(abs(x) for x in terms) + sum(
                    abs(g * v) for g, v in zip(d, vals, strict=True)
                )
                bound = LOWP_FACTOR * eps * (float(mag) + 1e-30)
                err = abs(float(out[b]) - float(ref))
                t.n += 1
                t.max_abs = max(t.max_abs, err)
                if not (err <= bound) and t.failure is None:
                    t.failure = (
                        f"{name}: row {row}, {r_par}: got {float(out[b])!r}, expected "
                        f"{float(ref)!r} (|err| {err:.3e} > bound {bound:.3e})"
                    )
    res = t.result(f"{', '.join(dtypes)} vs the oracle at the rounded inputs (first-order bound)")
    return _mark(res, c.independent)


def _extremes(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    import torch

    t = Tally("production", rtol=0.0)
    for rows, params in c.points(cfg, cid, 4, 1):
        for p in c.params:
            for e in p.extremes:
                for dt in (torch.float64, torch.float32):
                    pt = {**params, p.name: e}
                    out, gx, gp = c.run_torch(rows, pt, dt)
                    parts = [out] + [g for g in (gx, *gp) if g is not None]
                    t.n += 1
                    if not all(bool(torch.isfinite(g).all()) for g in parts) and t.failure is None:
                        t.failure = (
                            f"{p.name} = {e} ({dt}): non-finite value or gradient at rows {rows}"
                        )
    return t.result("value and gradients finite at the declared parameter extremes")


def _shift_production(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    import torch

    t = Tally("production", rtol=1e-10, atol=1e-10, dtype="float64")
    rng = random.Random(cfg.seed_for(cid) + 1)
    for rows, params in c.points(cfg, cid):
        shift = [rng.uniform(-10, 10) for _ in rows]
        moved = [[v + s for v in row] for row, s in zip(rows, shift, strict=True)]
        a, _, _ = c.run_torch(rows, params, torch.float64)
        b, _, _ = c.run_torch(moved, params, torch.float64)
        t.close_all(b.tolist(), a.tolist(), f"rows {rows} shifted by {shift}, {params}")
    return t.result("loss(x + c) vs loss(x), float64")


def _shift_precise(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    t = Tally("precise", rtol=1e-40, atol=1e-40, dps=DPS)
    rng = random.Random(cfg.seed_for(cid) + 2)
    for rows, params in c.points(cfg, cid, 4, 1):
        for row in rows:
            s = rng.uniform(-10, 10)
            with mpmath.workdps(DPS):  # the shifted row exactly, not rounded to float64
                moved = [mpmath.mpf(v) + mpmath.mpf(s) for v in row]
                t.close(c.oracle(moved, params), c.oracle(row, params), f"row {row} + {s}")
    return _mark(t.result("the oracle at x + c vs at x, 50 digits"), c.independent)


def _permutation(c: Compiled, cid: str, cfg: CheckConfig) -> LegResult:
    import torch

    t = Tally("production", rtol=1e-12, atol=1e-12, dtype="float64")
    rng = random.Random(cfg.seed_for(cid) + 3)
    for rows, params in c.points(cfg, cid):
        perm = list(range(len(rows)))
        rng.shuffle(perm)
        a, _, _ = c.run_torch(rows, params, torch.float64)
        b, _, _ = c.run_torch([rows[i] for i in perm], params, torch.float64)
        t.close_all(b.tolist(), [float(a[i]) for i in perm], f"permutation {perm}")
    return t.result("loss(x[perm]) vs loss(x)[perm], float64")


def _definition_leg(c: Compiled, k: int, did: str, cfg: CheckConfig) -> LegResult:
    t = Tally("definition", rtol=1e-40, atol=1e-45, dps=DPS)
    for rows, params in c.points(cfg, did, 6, 2, sizes=(k,)):
        row = rows[0]
        t.close(c.definition_value(row, params), c.oracle(row, params), f"row {row}, {params}")
    return t.result(f"the SymPy definition at K = {k} vs the oracle, 50 digits")


# --------------------------------------------------------------------------------- claims


def derive(family: Family) -> Derived:
    """The generic claims, definitions and legs of a spec family (see the module docstring)."""
    spec: LossSpec | None = family.spec
    if spec is None:
        raise ValueError(f"family {family.name!r} is not declared from a LossSpec")
    c = Compiled(family)
    name, src = family.name, family.source + "; generic claim derived from the definition"
    sizes = tuple(int(k) for k in spec.sizes)
    k0 = max(sizes)
    out = Derived(claims=(), definitions=())
    claims: list[Claim] = []
    defs: list[Definition] = []
    if c.independent:
        for k in sizes:
            d = Definition(
                name=f"loss_K{k}",
                family=name,
                build=partial(lambda kk: c.at(kk)["expr"], k),
                sizes=(),
                args=tuple(c.at(k)["args"]),
                source=family.source,
                doc=f"the per-sample loss at row length K = {k}",
            )
            defs.append(d)
            out.definition_legs.register(d.id)(partial(_definition_leg, c, k, d.id))
    uses = tuple(d.name for d in defs)
    torch_f = sp.Function(f"{name}_torch")

    def stmt_value() -> Any:
        e = c.at(k0)
        return sp.Eq(torch_f(*e["args"]), e["expr"])

    def stmt_grad() -> Any:
        e = c.at(k0)
        return sp.Eq(sp.Derivative(torch_f(*e["args"]), e["x"][0]), sp.diff(e["expr"], e["x"][0]))

    def add(
        suffix: str,
        kind: str,
        text: str,
        statement: Callable[[], Any],
        legs: dict[str, Callable[[Compiled, str, CheckConfig], LegResult]],
        tactic: Any = None,
    ) -> None:
        cid = f"{name}.generic.{suffix}"
        evidence = tuple(legs) if tactic is None else ("symbolic", *legs)
        note = "" if c.independent else NOT_INDEPENDENT
        claims.append(
            Claim(
                id=cid,
                family=name,
                kind=kind,  # type: ignore[arg-type]
                text=text,
                statement=statement,
                source=src,
                evidence=evidence,  # type: ignore[arg-type]
                tactic=tactic,
                uses=uses,
                notes=note,
            )
        )
        for leg, fn in legs.items():
            reg = out.precise if leg == "precise" else out.production
            reg.register(cid)(partial(fn, c, cid))

    ref = "the oracle" if c.independent else "the definition evaluated at 50 digits"
    add(
        "value",
        "identity",
        f"The torch implementation in float64 equals {ref}, row by row, for K in {sizes}.",
        stmt_value,
        {"production": _value_production},
    )
    grad_legs: dict[str, Any] = {"production": _gradient_production}
    if c.independent:
        grad_legs["precise"] = _gradient_precise
    add(
        "gradient",
        "gradient",
        "Autograd's gradient (rows and parameters, float64) equals SymPy's derivative of the "
        f"definition at 50 digits, for K in {sizes}.",
        stmt_grad,
        grad_legs,
    )
    if spec.gradient is not None:

        def stmt_closed() -> Any:
            parts = []
            for k in sizes:
                e = c.at(k)
                parts += [
                    sp.Eq(sp.Derivative(e["expr"], xi), g)
                    for xi, g in zip(e["x"], e["claimed"], strict=True)
                ]
            return sp.And(*parts)

        n_parts = sum(sizes)
        add(
            "closed_form_gradient",
            "gradient",
            f"The declared closed-form gradient equals the derivative of the definition, for "
            f"each K in {sizes} (every component).",
            stmt_closed,
            {"precise": _closed_form_precise, "production": _closed_form_production},
            tactic=Both(tuple(Differentiate(steps=("simplify",)) for _ in range(n_parts))),
        )
    if any(d != "float64" for d in c.rows.dtypes):
        add(
            "low_precision",
            "algorithmic",
            "Each lower floating dtype the domain allows agrees with the oracle at the rounded "
            "inputs within 8 eps times (the summands' magnitude + the first-order sensitivity).",
            stmt_value,
            {"production": _low_precision},
        )
    if any(p.extremes for p in c.params):
        add(
            "extremes",
            "algorithmic",
            "Value and gradients are finite at every declared parameter extreme "
            + ", ".join(f"{p.name} in {p.extremes}" for p in c.params if p.extremes)
            + " (float64 and float32).",
            lambda: sp.Lt(sp.Abs(torch_f(*c.at(k0)["args"])), sp.oo),
            {"production": _extremes},
        )
    if "logit_shift" in spec.invariances:
        shift = sp.Symbol("c", real=True)

        def stmt_shift() -> Any:
            e = c.at(k0)
            return sp.Eq(e["expr"].xreplace({xi: xi + shift for xi in e["x"]}), e["expr"])

        add(
            "invariance.logit_shift",
            "identity",
            f"Adding the same constant c to every entry of a row leaves its loss unchanged "
            f"(symbolically at K = {k0}; numerically for K in {sizes}).",
            stmt_shift,
            {"precise": _shift_precise, "production": _shift_production},
            tactic=Simplify(steps=("expand", "simplify")),
        )
    if "batch_permutation" in spec.invariances:
        add(
            "invariance.batch_permutation",
            "identity",
            "Permuting the rows of a batch permutes the per-sample losses alike.",
            stmt_value,
            {"production": _permutation},
        )
    out.claims, out.definitions = tuple(claims), tuple(defs)
    return out


_DERIVED: dict[int, tuple[Family, Derived]] = {}


def derived(family: Family) -> Derived:
    """:func:`derive`, once per family object."""
    hit = _DERIVED.get(id(family))
    if hit is None or hit[0] is not family:
        hit = (family, derive(family))
        _DERIVED[id(family)] = hit
    return hit[1]


__all__ = ["NOT_INDEPENDENT", "Compiled", "Derived", "derive", "derived"]
