r"""The generic audit contract of a family declared from its definition.

A family with ``Family.spec`` (a :class:`~softnce_theory.registry.LossSpec`) gets a contract
under its own name: ``softnce audit --family NAME`` audits its ``torch_fn`` (or any callable
with the same signature) with no hand-written code. The contract is

    ``fn(x: Tensor[B, K], **params) -> Tensor[B]``: the per-sample losses of the rows ``x``

where ``x`` is the domain's first :class:`~softnce_theory.domain.Array` and ``params`` its
:class:`~softnce_theory.domain.Param` objects (Python floats, or 0-d tensors in
``parameter_gradient``). Examples come from :func:`~softnce_theory.testing.strategies.
from_domain`. The properties:

=========================  ===========  ========================================================
property                   tier         check
=========================  ===========  ========================================================
``value_vs_oracle``        correctness  per-sample float64 values vs ``spec.oracle`` at 50
                                        digits, or, without an oracle, vs the SymPy definition
                                        evaluated at 50 digits (**oracle generated from the
                                        definition: not independent**, and labelled so)
``gradient_vs_definition`` correctness  autograd of :math:`\sum_i \ell_i` w.r.t. ``x`` vs
                                        SymPy's derivative of the definition (50 digits)
``parameter_gradient``     correctness  each real parameter passed as a 0-d tensor gets the
                                        gradient :math:`\sum_i \partial\ell_i/\partial p`
                                        (a detached parameter is a silent failure)
``logit_shift_invariance`` correctness  declared: :math:`\ell(x_i + c_i) = \ell(x_i)` per row
``batch_permutation_...``  correctness  declared: permuting the rows permutes the losses alike
``declared_extremes``      robustness   each ``Param.extremes`` value: finite values and
                                        gradients, vs the reference
``low_precision``          robustness   float32/bfloat16/float16 (those the rows' ``Array``
                                        allows) vs float64 on the same rounded inputs
=========================  ===========  ========================================================

**Tolerances.** A log-space float64 implementation makes absolute errors of a few ulps of its
largest intermediate. Here the intermediates are read off the definition: ``scale`` is the
largest magnitude (at 50 digits) of a sub-expression that is not in *exponential space* (an
``exp(...)`` node and the nodes above it, up to an enclosing ``log``, are left out: an
implementation never forms them). The value tolerance is ``1e-10 |want| + 64 eps (1 +
scale)``; the gradient tolerance ``1e-9 ||g*|| + 64 eps (1 + scale) max(G, ||g*||)`` with
``G`` the norm of the sums of the absolute values of each derivative's additive terms (the
bound rounding errors scale with, e.g. ``sqrt(2)/t`` per InfoNCE row).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy
import torch
from hypothesis import strategies as st
from mpmath import mp

from softnce_theory.domain import Param
from softnce_theory.registry import Family, LossSpec, resolve
from softnce_theory.testing import strategies as S
from softnce_theory.testing.core import (
    LOW_DTYPES,
    ROBUSTNESS,
    Arg,
    Caller,
    Contract,
    Discrepancy,
    Example,
    KitError,
    Property,
    check_grads,
    target_name,
    value_tolerance,
)

#: digits of the reference values and derivatives
DPS = 50
#: the label of a value reference computed from the definition itself
NOT_INDEPENDENT = "oracle generated from the definition: not independent"


# ----------------------------------------------------------------------------- the reference


def _symbol(p: Param) -> sympy.Symbol:
    iv = p.interval
    kw: dict[str, bool] = {"integer": True} if p.integer else {"real": True}
    if iv.low > 0 or (iv.low == 0 and not iv.low_closed):
        kw["positive"] = True
    elif iv.low == 0:
        kw["nonnegative"] = True
    return sympy.Symbol(p.name, **kw)


def _log_space_nodes(expr: Any) -> list[Any]:
    """Sub-expressions an implementation in log space computes (see the module docstring)."""
    nodes: list[Any] = []

    def walk(e: Any) -> bool:  # True: e is in exponential space
        if e.is_Atom:
            if e.free_symbols:
                nodes.append(e)
            return False
        if isinstance(e, sympy.exp):
            walk(e.args[0])
            return True
        inner = [walk(a) for a in e.args]
        if isinstance(e, sympy.log) or not any(inner):
            nodes.append(e)
            return False
        return True

    walk(expr)
    return nodes


@dataclass(frozen=True)
class _Compiled:
    """The definition at one row length ``K``, lambdified to mpmath."""

    text: str
    constant_in: tuple[str, ...]  # parameters the definition does not depend on
    value: Callable[..., Any]
    grad_x: Callable[..., Any]
    grad_p: Callable[..., Any]
    nodes: Callable[..., Any]
    terms_x: Callable[..., Any]
    terms_p: Callable[..., Any]


@dataclass
class Reference:
    """The references of one example: per-row values, the gradient of the sum, scales."""

    values: np.ndarray  # (B,)
    grad_x: np.ndarray  # (B, K)
    grad_p: dict[str, float]
    scales: np.ndarray  # (B,): per row, the largest log-space intermediate
    natural_x: float
    natural_p: dict[str, float]

    @property
    def scale(self) -> float:
        return float(self.scales.max(initial=0.0))


def _abs_terms(e: Any) -> list[Any]:
    return [sympy.Abs(t) for t in sympy.Add.make_args(e)]


# ----------------------------------------------------------------------------- calling the loss


class RowCaller(Caller):
    """Calls ``fn(x, **params)`` and checks it returns the ``(B,)`` per-sample losses."""

    def __init__(self, fn: Callable[..., Any], args: Sequence[Arg], rows: str) -> None:
        super().__init__(fn, args)
        self.rows = rows

    def tensors(
        self,
        ex: Example,
        dtype: torch.dtype = torch.float64,
        grad: bool = False,
        tensor_params: bool = False,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for a in self.args:
            v = ex[a.name]
            if a.kind == "float":
                out[a.name] = torch.tensor(
                    np.asarray(v, dtype=np.float64), dtype=dtype, requires_grad=grad
                )
            elif a.kind == "int":
                out[a.name] = int(v)
            elif tensor_params:
                out[a.name] = torch.tensor(float(v), dtype=torch.float64, requires_grad=grad)
            else:
                out[a.name] = float(v)
        return out

    def call(self, inputs: dict[str, Any]) -> torch.Tensor:
        out = self.invoke(inputs)
        b = int(inputs[self.rows].shape[0])
        if tuple(out.shape) != (b,):
            raise Discrepancy(
                f"returned a tensor of shape {tuple(out.shape)}; the contract returns the "
                f"per-sample losses, shape ({b},)",
                kind="contract",
            )
        return out

    def values(self, ex: Example, dtype: torch.dtype = torch.float64) -> np.ndarray:
        with torch.no_grad():
            return self.call(self.tensors(ex, dtype)).double().numpy()

    def values_and_grads(
        self, ex: Example, dtype: torch.dtype = torch.float64, params: Sequence[str] = ()
    ) -> tuple[np.ndarray, dict[str, np.ndarray | None]]:
        """Per-sample values and the gradient of their sum w.r.t. the rows and ``params``
        (``None`` for an input no gradient reaches)."""
        inputs = self.tensors(ex, dtype, grad=True, tensor_params=bool(params))
        out = self.call(inputs)
        wrt = [self.rows, *params]
        if not out.requires_grad:
            raise Discrepancy(
                f"the output does not depend differentiably on {', '.join(wrt)} "
                "(no autograd graph: detached or computed outside torch)",
                kind="gradient",
            )
        try:
            grads = torch.autograd.grad(out.sum(), [inputs[n] for n in wrt], allow_unused=True)
        except Exception as exc:
            raise Discrepancy(
                f"backward raised {type(exc).__name__}: {exc}", kind="gradient"
            ) from exc
        res: dict[str, np.ndarray | None] = {
            n: (None if g is None else g.detach().double().numpy())
            for n, g in zip(wrt, grads, strict=True)
        }
        return out.detach().double().numpy(), res


# ----------------------------------------------------------------------------- the contract


class SpecContract(Contract):
    """The generic contract of one family declared from its definition."""

    def __init__(self, family: Family) -> None:
        if family.spec is None:
            raise ValueError(f"family {family.name} is not declared from a definition (no spec)")
        spec: LossSpec = family.spec
        self.family = family
        self.spec = spec
        self.name = family.name
        dom = spec.domain
        self.rows = spec.rows
        self.params = dom.params
        self.float_params = tuple(p.name for p in self.params if not p.integer)
        self.args = (
            Arg(self.rows.name, "float", grad=True),
            *(Arg(p.name, "int" if p.integer else "scalar") for p in self.params),
        )
        sig = ", ".join(
            [f"{self.rows.name}: Tensor[B, K]"]
            + [f"{p.name}: {'int' if p.integer else 'float'}" for p in self.params]
        )
        self.contract = f"fn({sig}) -> Tensor[B] (per-sample losses)"
        k = max(3, self.rows.min_sizes.get(self.rows.dims[1], 1))
        self.semantics = (
            f"{family.title} ({family.source}); per-sample loss at K = {k}: "
            f"{self._compiled(k).text}"
        )

    # -- reference ---------------------------------------------------------------------
    def _compiled(self, k: int) -> _Compiled:
        cache: dict[int, _Compiled] = self.__dict__.setdefault("_cache", {})
        if k in cache:
            return cache[k]
        used = {p.name for p in self.params}
        xs = [sympy.Symbol(f"{self.rows.name}_{i}", real=True) for i in range(k)]
        if used & {str(x) for x in xs}:
            xs = [sympy.Dummy(f"x{i}", real=True) for i in range(k)]
        ps = {p.name: _symbol(p) for p in self.params}
        try:
            expr = sympy.sympify(self.spec.definition(xs, **ps))
        except Exception as exc:
            raise KitError(
                f"the definition of {self.name} failed at K = {k}: {type(exc).__name__}: {exc}"
            ) from exc
        fp = [ps[n] for n in self.float_params]
        gx = [sympy.diff(expr, x) for x in xs]
        gp = [sympy.diff(expr, p) for p in fp]
        syms = [*xs, *ps.values()]

        def lam(e: Any) -> Callable[..., Any]:
            fn: Callable[..., Any] = sympy.lambdify(syms, e, modules="mpmath")
            return fn

        comp = _Compiled(
            text=str(expr),
            constant_in=tuple(n for n, g in zip(self.float_params, gp, strict=True) if g == 0),
            value=lam(expr),
            grad_x=lam(gx),
            grad_p=lam(gp),
            nodes=lam([sympy.Abs(n) for n in _log_space_nodes(expr)]),
            terms_x=lam([sympy.Add(*_abs_terms(g)) for g in gx]),
            terms_p=lam([sympy.Add(*_abs_terms(g)) for g in gp]),
        )
        cache[k] = comp
        return comp

    def _oracle(self, row: list[Any], params: dict[str, Any]) -> Any:
        assert self.spec.oracle is not None
        try:
            return self.spec.oracle(row, **params)
        except Exception as exc:
            raise KitError(f"oracle failed: {type(exc).__name__}: {exc}") from exc

    def reference(self, ex: Example) -> Reference:
        """Values, gradients and scales of ``ex`` at :data:`DPS` digits."""
        x = np.asarray(ex[self.rows.name], dtype=np.float64)
        b, k = x.shape
        comp = self._compiled(k)
        vals = np.empty(b)
        gx = np.empty((b, k))
        scales = np.empty(b)
        tx = np.empty((b, k))
        gp = dict.fromkeys(self.float_params, 0.0)
        tp = dict.fromkeys(self.float_params, 0.0)
        try:
            with mp.workdps(DPS):
                pv = {p.name: mp.mpf(float(ex[p.name])) for p in self.params}
                for i in range(b):
                    row = [mp.mpf(float(v)) for v in x[i]]
                    args = [*row, *pv.values()]
                    v = self._oracle(row, pv) if self.spec.oracle is not None else None
                    v = comp.value(*args) if v is None else v
                    vals[i] = _real(v)
                    gx[i] = [_real(g) for g in comp.grad_x(*args)]
                    tx[i] = [_real(t) for t in comp.terms_x(*args)]
                    nodes = [_real(n) for n in comp.nodes(*args)]
                    scales[i] = max([abs(vals[i]), *nodes])
                    for n, g, t in zip(
                        self.float_params, comp.grad_p(*args), comp.terms_p(*args), strict=True
                    ):
                        gp[n] += _real(g)
                        tp[n] += _real(t)
        except KitError:
            raise
        except Exception as exc:
            raise KitError(f"reference failed: {type(exc).__name__}: {exc}") from exc
        return Reference(
            vals, gx, gp, scales, float(np.linalg.norm(tx)), {n: abs(t) for n, t in tp.items()}
        )

    def reference_name(self) -> str:
        grads = f"gradients: SymPy derivative of the definition at {DPS} digits"
        if self.spec.oracle is not None:
            return f"values: {target_name(self.spec.oracle)} (mpmath) at {DPS} digits; {grads}"
        return f"values: the SymPy definition at {DPS} digits ({NOT_INDEPENDENT}); {grads}"

    @property
    def independent(self) -> bool:
        return self.spec.oracle is not None

    def caller(self, fn: Callable[..., Any]) -> RowCaller:
        return RowCaller(fn, self.args, self.rows.name)

    def default_target(self) -> Callable[..., Any]:
        fn: Callable[..., Any] = resolve(self.spec.torch_fn)
        return fn

    def smoke_example(self) -> Example:
        k = max(3, self.rows.min_sizes.get(self.rows.dims[1], 1))
        b = max(2, self.rows.min_sizes.get(self.rows.dims[0], 1))
        lo, hi = self.rows.typical
        x = np.linspace(lo, hi, b * k).reshape(b, k) / 2 + (lo + hi) / 4
        ex: Example = {self.rows.name: x}
        for p in self.params:
            a, c = p.typical_range()
            v = math.sqrt(a * c) if a > 0 else (a + c) / 2
            ex[p.name] = float(round(v)) if p.integer else v
        return ex

    # -- properties --------------------------------------------------------------------
    def properties(self) -> list[Property]:
        dom = self.spec.domain
        base = S.from_domain(dom)
        props = [
            Property(
                "value_vs_oracle",
                "oracle",
                "per-sample float64 values vs "
                + (
                    f"the mpmath oracle at {DPS} digits"
                    if self.independent
                    else f"the SymPy definition at {DPS} digits ({NOT_INDEPENDENT})"
                ),
                base,
                self._check_oracle,
            ),
            Property(
                "gradient_vs_definition",
                "gradient",
                "autograd of the summed per-sample losses w.r.t. the rows vs SymPy's derivative "
                "of the definition",
                base,
                self._check_gradient,
            ),
        ]
        if self.float_params:
            props.append(
                Property(
                    "parameter_gradient",
                    "gradient",
                    f"each real parameter ({', '.join(self.float_params)}), passed as a 0-d "
                    "tensor, gets the gradient of the summed losses (vs SymPy's derivative; a "
                    "detached parameter is a failure)",
                    base,
                    self._check_parameter_gradient,
                )
            )
        if "logit_shift" in self.spec.invariances:
            props.append(
                Property(
                    "logit_shift_invariance",
                    "invariance",
                    "adding a constant (|c| in [0.1, 1e3]) to every entry of a row leaves that "
                    "row's loss unchanged",
                    self._shifted(base),
                    self._check_shift,
                )
            )
        if "batch_permutation" in self.spec.invariances:
            props.append(
                Property(
                    "batch_permutation_invariance",
                    "invariance",
                    "permuting the rows permutes the per-sample losses alike",
                    self._permuted(base),
                    self._check_permutation,
                )
            )
        extremes = [(p.name, float(e)) for p in self.params for e in p.extremes]
        if extremes:
            props.append(
                Property(
                    "declared_extremes",
                    "edge",
                    "at each declared extreme ("
                    + ", ".join(f"{n} = {e:g}" for n, e in extremes)
                    + "): finite values and gradients, vs the reference",
                    st.tuples(base, st.sampled_from(extremes)).map(
                        lambda t: {**t[0], t[1][0]: t[1][1]}
                    ),
                    self._check_extreme,
                    ROBUSTNESS,
                )
            )
        low = [d for d in LOW_DTYPES if d in self.rows.dtypes]
        if low:
            props.append(
                Property(
                    "low_precision",
                    "dtype",
                    f"{'/'.join(low)} rows: finite values and gradients, close to float64 on the "
                    "same rounded inputs (16 eps of the dtype times the scale)",
                    st.tuples(base, st.sampled_from(low)).map(lambda t: {**t[0], "dtype": t[1]}),
                    self._check_low_precision,
                )
            )
        return props

    # -- checks ------------------------------------------------------------------------
    @staticmethod
    def _check_values(
        got: np.ndarray,
        want: np.ndarray,
        sc: np.ndarray,
        what: str,
        *,
        reference_from_kit: bool = True,
    ) -> None:
        """Per-row :func:`~softnce_theory.testing.core.value_tolerance` comparison; the worst
        row (largest error / tolerance) is reported."""
        if reference_from_kit and not np.isfinite(want).all():
            raise KitError(f"reference value for {what} is not finite: {want}")
        bad = ~np.isfinite(got) & np.isfinite(want)
        if bad.any() or (not reference_from_kit and not np.isfinite(want).all()):
            i = int(np.argmax(bad)) if bad.any() else int(np.argmax(~np.isfinite(want)))
            raise Discrepancy(
                f"row {i}: value {float(got[i])!r} vs {what} {float(want[i])!r} (not finite)",
                kind="value",
                got=got,
                want=want,
                measure="abs",
                max_abs=math.inf,
                where={"row": i},
            )
        tol = np.array([value_tolerance(float(w), float(s)) for w, s in zip(want, sc, strict=True)])
        err = np.abs(got - want)
        if (err <= tol).all():
            return
        i = int(np.argmax(err / tol))
        rel = [e / abs(w) for e, w in zip(err, want, strict=True) if w != 0]
        raise Discrepancy(
            f"row {i}: value {got[i]:.15g} vs {what} {want[i]:.15g}: abs err {err[i]:.3g} > tol "
            f"{tol[i]:.3g}" + (f" (rel err {err[i] / abs(want[i]):.3g})" if want[i] != 0 else ""),
            kind="value",
            got=got,
            want=want,
            err=float(err[i]),
            tol=float(tol[i]),
            measure="abs",
            max_abs=float(err.max()),
            max_rel=float(max(rel)) if rel else None,
            where={"row": i},
        )

    def _check_oracle(self, caller: RowCaller, ex: Example) -> None:
        ref = self.reference(ex)
        self._check_values(caller.values(ex), ref.values, ref.scales, self._what())

    def _what(self) -> str:
        return "oracle" if self.independent else "definition"

    def _check_gradient(self, caller: RowCaller, ex: Example) -> None:
        _, g = caller.values_and_grads(ex)
        ref = self.reference(ex)
        n = self.rows.name
        gx = g[n]
        if gx is None:
            raise Discrepancy(f"no gradient reaches {n}", kind="gradient")
        check_grads(
            {n: gx},
            {n: ref.grad_x},
            ref.scale,
            {n: ref.natural_x},
            "SymPy's derivative of the definition",
        )

    def _check_parameter_gradient(self, caller: RowCaller, ex: Example) -> None:
        _, g = caller.values_and_grads(ex, params=self.float_params)
        ref = self.reference(ex)
        k = np.asarray(ex[self.rows.name]).shape[1]
        constant = self._compiled(k).constant_in
        for p in self.float_params:
            if g[p] is None and p in constant:  # the definition does not depend on p
                g[p] = np.zeros(())
            if g[p] is None:
                raise Discrepancy(
                    f"no gradient reaches {p} (passed as a 0-d tensor with requires_grad): "
                    "the loss detaches it (float(), .item(), a Python-number copy?); "
                    f"d(sum of losses)/d{p} = {ref.grad_p[p]:.6g}",
                    kind="gradient",
                    want=ref.grad_p[p],
                    where=p,
                )
        check_grads(
            {p: np.asarray(g[p]) for p in self.float_params},
            {p: np.asarray(ref.grad_p[p]) for p in self.float_params},
            ref.scale,
            ref.natural_p,
            "SymPy's derivative of the definition",
        )

    def _shifted(self, base: st.SearchStrategy[Example]) -> st.SearchStrategy[Example]:
        iv = self.rows.interval
        n = self.rows.name

        @st.composite
        def draw(d: Any) -> Example:
            ex = d(base)
            b = np.asarray(ex[n]).shape[0]
            mag = 10 ** d(st.floats(-1, 3))
            signs = d(st.lists(st.sampled_from((-1.0, 1.0)), min_size=b, max_size=b))
            return {**ex, "shift": np.asarray(signs) * mag}

        def inside(ex: Example) -> bool:
            y = np.asarray(ex[n]) + np.asarray(ex["shift"])[:, None]
            return all(float(v) in iv for v in y.ravel())

        return draw().filter(inside)

    def _check_shift(self, caller: RowCaller, ex: Example) -> None:
        n = self.rows.name
        ex2 = {**ex, n: np.asarray(ex[n]) + np.asarray(ex["shift"])[:, None]}
        v0, v1 = caller.values(ex), caller.values(ex2)
        sc = np.maximum(self.reference(ex).scales, self.reference(ex2).scales)
        self._check_values(v1, v0, sc, "the unshifted row's loss", reference_from_kit=False)

    def _permuted(self, base: st.SearchStrategy[Example]) -> st.SearchStrategy[Example]:
        n = self.rows.name

        @st.composite
        def draw(d: Any) -> Example:
            ex = d(base)
            b = np.asarray(ex[n]).shape[0]
            return {**ex, "perm": np.asarray(d(st.permutations(range(b))), dtype=np.int64)}

        return draw()

    def _check_permutation(self, caller: RowCaller, ex: Example) -> None:
        n, p = self.rows.name, np.asarray(ex["perm"])
        v0 = caller.values(ex)
        v1 = caller.values({**ex, n: np.asarray(ex[n])[p]})
        sc = self.reference(ex).scales[p]
        self._check_values(
            v1, v0[p], sc, "the loss of the same row before permuting", reference_from_kit=False
        )

    def _check_extreme(self, caller: RowCaller, ex: Example) -> None:
        v, g = caller.values_and_grads(ex)
        ref = self.reference(ex)
        self._check_values(v, ref.values, ref.scales, self._what())
        n = self.rows.name
        gx = g[n]
        if gx is None or not np.isfinite(gx).all():
            raise Discrepancy(
                f"gradient w.r.t. {n} is not finite: {gx}", kind="gradient", got=gx, where=n
            )
        check_grads({n: gx}, {n: ref.grad_x}, ref.scale, {n: ref.natural_x}, "SymPy's derivative")

    def _check_low_precision(self, caller: RowCaller, ex: Example) -> None:
        dtype, eps = LOW_DTYPES[ex["dtype"]]
        n = self.rows.name
        low = caller.tensors(ex, dtype, grad=True)
        rounded = {**ex, n: low[n].detach().double().numpy()}
        ref, ref_g = caller.values_and_grads(rounded)
        if not np.isfinite(ref).all():
            raise Discrepancy(
                f"float64 values on the rounded inputs are not finite: {ref}", kind="value", got=ref
            )
        out = caller.call(low)
        got = out.detach().double().numpy()
        rr = self.reference(rounded)
        scales = rr.scales
        tol = 16 * eps * (np.abs(ref) + 1.0 + scales)
        err = np.abs(got - ref)
        if not (np.isfinite(got).all() and (err <= tol).all()):
            i = int(np.argmax(np.where(np.isfinite(err), err / tol, np.inf)))
            raise Discrepancy(
                f"{ex['dtype']} row {i}: value {got[i]:.8g} vs float64 {ref[i]:.8g} on the same "
                f"rounded inputs: abs err {err[i]:.3g} > tol {tol[i]:.3g}",
                kind="dtype",
                got=got,
                want=ref,
                err=float(err[i]),
                tol=float(tol[i]),
                measure="abs",
                max_abs=float(err.max()),
                where={"row": i, "dtype": ex["dtype"]},
            )
        if not out.requires_grad:
            raise Discrepancy(f"{ex['dtype']} output has no autograd graph", kind="dtype")
        (gl,) = torch.autograd.grad(out.sum(), [low[n]], allow_unused=True)
        if gl is None:
            raise Discrepancy(f"{ex['dtype']}: no gradient reaches {n}", kind="dtype")
        gd = gl.detach().double().numpy()
        want = ref_g[n]
        assert want is not None
        if not np.isfinite(gd).all():
            raise Discrepancy(f"{ex['dtype']} gradient w.r.t. {n} is not finite", kind="dtype")
        gerr = float(np.linalg.norm(gd - want))
        nat = rr.natural_x
        gtol = 64 * eps * (1.0 + float(scales.max())) * max(nat, float(np.linalg.norm(want)))
        if gerr > gtol:
            raise Discrepancy(
                f"{ex['dtype']} gradient w.r.t. {n}: normwise err {gerr:.3g} vs float64 > tol "
                f"{gtol:.3g}",
                kind="dtype",
                err=gerr,
                tol=gtol,
                measure="normwise",
                max_abs=float(np.abs(gd - want).max()),
                where={"input": n, "dtype": ex["dtype"]},
            )


def _real(v: Any) -> float:
    """A real mpmath value as a float (a complex or non-numeric reference is a kit error)."""
    if isinstance(v, mp.mpc):
        if v.imag != 0:
            raise KitError(f"the reference is complex ({v}): input outside the definition's domain")
        v = v.real
    return float(v)


_CONTRACTS: dict[str, tuple[Family, SpecContract]] = {}


def contract_for(family: Family) -> SpecContract:
    """The generic contract of ``family`` (built once per registered family object)."""
    hit = _CONTRACTS.get(family.name)
    if hit is not None and hit[0] is family:
        return hit[1]
    c = SpecContract(family)
    _CONTRACTS[family.name] = (family, c)
    return c


__all__ = ["DPS", "NOT_INDEPENDENT", "Reference", "RowCaller", "SpecContract", "contract_for"]
