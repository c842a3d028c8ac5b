"""The audit's shared types: discrepancies, tolerances, calling a loss, properties, reports.

This is the lowest module of the kit: the contracts (:mod:`~softnce_theory.testing.families`,
:mod:`~softnce_theory.testing.generic`) build :class:`Property` lists from it, and the suite
(:mod:`~softnce_theory.testing.suite`) runs them and fills an :class:`AuditReport`. Neither of
those imports the other.

**Tiers.** Every property is either a *correctness* property (value vs oracle, gradient,
invariances, limits: the loss computes the wrong thing if it fails) or a *robustness policy*
(zero-probability classes, ``-inf`` logits, extreme temperatures, huge logits, low precision,
the value of an empty mean: the loss is right on ordinary input but does not follow the
contract's policy at the edge). :data:`TIERS` names them; the verdict of a report depends on the
selected tier (``softnce audit --tier correctness|all``).
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hyp_seed
from hypothesis import strategies as st

EPS64 = float(np.finfo(np.float64).eps)

#: the ``schema`` of ``softnce audit --json`` (shape documented in ``docs/audit.md``)
SCHEMA = "softnce-theory/audit/1"

#: default examples per property (the whole default audit of one family stays well under 30 s)
DEFAULT_MAX_EXAMPLES = 40
#: default seed (the audit is reproducible unless told otherwise)
DEFAULT_SEED = 0
#: seconds of shrinking per failing property before the best counterexample so far is reported
SHRINK_BUDGET_S = 4.0

CORRECTNESS = "correctness"
ROBUSTNESS = "robustness"
#: the property tiers, and what each means
TIERS: dict[str, str] = {
    CORRECTNESS: "value vs oracle, gradient, invariances, limits",
    ROBUSTNESS: "extreme temperatures and logits, -inf logits, zero-probability classes, "
    "empty means, low precision",
}
#: what ``--tier`` accepts: the tiers whose failures fail the run
TIER_CHOICES: dict[str, tuple[str, ...]] = {
    CORRECTNESS: (CORRECTNESS,),
    "all": (CORRECTNESS, ROBUSTNESS),
}
#: the tier of each property kind; ``edge`` properties must name theirs
KIND_TIER: dict[str, str] = {
    "oracle": CORRECTNESS,
    "gradient": CORRECTNESS,
    "invariance": CORRECTNESS,
    "limit": CORRECTNESS,
    "dtype": ROBUSTNESS,
}

#: float32/bfloat16/float16: the dtype and its machine epsilon, for the low-precision tolerances
LOW_DTYPES: dict[str, tuple[torch.dtype, float]] = {
    "float32": (torch.float32, float(torch.finfo(torch.float32).eps)),
    "bfloat16": (torch.bfloat16, float(torch.finfo(torch.bfloat16).eps)),
    "float16": (torch.float16, float(torch.finfo(torch.float16).eps)),
}

Example = dict[str, Any]


# ----------------------------------------------------------------------------- discrepancies


class Discrepancy(AssertionError):
    """A property does not hold on an example: what was compared, got vs want, error vs tol.

    ``err`` is the quantity compared with ``tol`` (``measure`` says which: ``abs`` for a value,
    ``normwise`` for a gradient); ``max_abs`` is the largest entrywise ``|got - want|`` and
    ``max_rel`` that divided by the largest ``|want|`` (``None`` when ``want`` is 0).
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "value",
        got: Any = None,
        want: Any = None,
        err: float | None = None,
        tol: float | None = None,
        measure: str | None = None,
        max_abs: float | None = None,
        max_rel: float | None = None,
        where: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.got = got
        self.want = want
        self.err = err
        self.tol = tol
        self.measure = measure
        self.max_abs = max_abs
        self.max_rel = max_rel
        self.where = where

    def numbers(self) -> dict[str, Any]:
        """The discrepancy as numbers (JSON-ready; see ``docs/audit.md``)."""
        return {
            "kind": self.kind,
            "measure": self.measure,
            "error": to_jsonable(self.err),
            "tolerance": to_jsonable(self.tol),
            "max_abs_error": to_jsonable(self.max_abs),
            "max_rel_error": to_jsonable(self.max_rel),
            "where": to_jsonable(self.where),
            "got": to_jsonable(self.got),
            "want": to_jsonable(self.want),
        }


class KitError(RuntimeError):
    """The kit itself failed (a reference computation broke): reported as ``error``."""


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.15g}"
    return str(x)


def _abs_rel(got: Any, want: Any) -> tuple[float, float | None]:
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    d = np.abs(g - w)
    max_abs = float(d.max(initial=0.0)) if np.isfinite(d).all() else math.inf
    wmax = float(np.abs(w[np.isfinite(w)]).max(initial=0.0))
    return max_abs, (max_abs / wmax if wmax > 0 else None)


def value_tolerance(want: float, scale: float, rtol: float = 1e-10, c: float = 64.0) -> float:
    """Float64 tolerance of a loss value: ``rtol*|want| + c*eps*(1 + scale)``.

    ``scale`` is the magnitude of the effective logits (``|f|/t``, ``1/tau``): a log-space float64
    computation makes absolute errors of a few ulps of the largest logit.
    """
    return rtol * abs(want) + c * EPS64 * (1.0 + scale)


def check_value(
    got: float,
    want: float,
    scale: float,
    what: str,
    *,
    rtol: float = 1e-10,
    c: float = 64.0,
    reference_from_kit: bool = True,
) -> None:
    """Raise :class:`Discrepancy` unless ``got`` matches ``want`` (``what`` names the reference).

    A NaN reference is a kit error when the kit computed it (oracle, closed form) and a finding
    when it came from the loss itself (``reference_from_kit=False``: invariances)."""
    if math.isnan(want):
        if reference_from_kit:
            raise KitError(f"reference value for {what} is NaN")
        raise Discrepancy(
            f"{what} is NaN (value {_fmt(got)})", kind="value", got=got, want=want, measure="abs"
        )
    if not math.isfinite(got) or (math.isinf(want) and got != want):
        raise Discrepancy(
            f"value {_fmt(got)} is not finite; {what} gives {_fmt(want)}",
            kind="value",
            got=got,
            want=want,
            measure="abs",
        )
    if math.isinf(want):
        return
    tol = value_tolerance(want, scale, rtol, c)
    err = abs(got - want)
    if not err <= tol:
        raise Discrepancy(
            f"value {_fmt(got)} vs {what} {_fmt(want)}: abs err {err:.3g} > tol {tol:.3g}"
            + (f" (rel err {err / abs(want):.3g})" if want != 0 else ""),
            kind="value",
            got=got,
            want=want,
            err=err,
            tol=tol,
            measure="abs",
            max_abs=err,
            max_rel=err / abs(want) if want != 0 else None,
        )


def check_grads(
    got: dict[str, np.ndarray],
    want: dict[str, np.ndarray],
    scale: float,
    natural: dict[str, float],
    what: str,
    *,
    rtol: float = 1e-9,
    c: float = 64.0,
) -> None:
    """Normwise gradient comparison: ``||g - w|| <= rtol*||w|| + c*eps*(1+scale)*natural``.

    ``natural`` is the family's bound on the gradient's norm (rounding errors scale with it,
    not with the possibly tiny exact gradient).
    """
    for name, w in want.items():
        g = got.get(name)
        if g is None:
            raise Discrepancy(f"no gradient reaches {name}", kind="gradient")
        g = np.asarray(g, dtype=np.float64)
        if g.shape != w.shape:
            raise Discrepancy(
                f"gradient w.r.t. {name} has shape {g.shape}, expected {w.shape}", kind="gradient"
            )
        if not np.isfinite(g).all():
            raise Discrepancy(
                f"gradient w.r.t. {name} is not finite: {np.array2string(g, precision=4)}",
                kind="gradient",
                got=g,
                want=w,
                measure="normwise",
                max_abs=math.inf,
                where=name,
            )
        wn = float(np.linalg.norm(w))
        err = float(np.linalg.norm(g - w))
        tol = rtol * wn + c * EPS64 * (1.0 + scale) * max(natural.get(name, wn), wn)
        if not err <= tol:
            max_abs, max_rel = _abs_rel(g, w)
            if w.ndim == 0:
                raise Discrepancy(
                    f"gradient w.r.t. {name} vs {what}: err {err:.3g} > tol {tol:.3g} "
                    f"({float(g):.6g} vs {float(w):.6g})",
                    kind="gradient",
                    got=g,
                    want=w,
                    err=err,
                    tol=tol,
                    measure="normwise",
                    max_abs=max_abs,
                    max_rel=max_rel,
                    where=name,
                )
            k = int(np.argmax(np.abs(g - w)))
            idx = np.unravel_index(k, w.shape)
            raise Discrepancy(
                f"gradient w.r.t. {name} vs {what}: normwise err {err:.3g} > tol {tol:.3g} "
                f"(|closed form| = {wn:.3g}; worst entry {tuple(int(i) for i in idx)}: "
                f"{g[idx]:.6g} vs {w[idx]:.6g})",
                kind="gradient",
                got=g,
                want=w,
                err=err,
                tol=tol,
                measure="normwise",
                max_abs=max_abs,
                max_rel=max_rel,
                where={"input": name, "entry": [int(i) for i in idx]},
            )


# ----------------------------------------------------------------------------- calling the loss


@dataclass(frozen=True)
class Arg:
    """One argument of a family contract."""

    name: str
    kind: str  # "float" (floating tensor), "long" (integer tensor) or "scalar" (Python float)
    grad: bool = False  # differentiated by the gradient properties


class Caller:
    """Calls a loss per its family contract and extracts value and gradients.

    Binding, in contract order: an argument goes into the next positional slot when that slot
    has the contract's name or the callable has no parameter of that name; otherwise it is
    passed by keyword (e.g. a keyword-only ``temperature``), and so are all later ones. Nothing
    else is inferred; adapters handle other signatures.
    """

    def __init__(self, fn: Callable[..., Any], args: Sequence[Arg]) -> None:
        self.fn = fn
        self.args = tuple(args)
        self.keyword = self._binding(fn, self.args)

    @staticmethod
    def _binding(fn: Callable[..., Any], args: Sequence[Arg]) -> tuple[bool, ...]:
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return tuple(False for _ in args)
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        var_pos = any(p.kind == p.VAR_POSITIONAL for p in params)
        var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
        kw_ok = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        out: list[bool] = []
        for k, a in enumerate(args):
            slot = positional[k].name if k < len(positional) else None
            can_pos = not any(out) and (slot is not None or var_pos)
            if can_pos and (slot == a.name or a.name not in kw_ok):
                out.append(False)
            elif a.name in kw_ok or var_kw:
                out.append(True)
            else:
                names = ", ".join(x.name for x in args)
                raise ValueError(
                    f"cannot bind the contract ({names}) to {target_name(fn)}: no positional "
                    f"slot or keyword parameter for '{a.name}'; use an adapter or a wrapper"
                )
        return tuple(out)

    def tensors(
        self, ex: Example, dtype: torch.dtype = torch.float64, grad: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for a in self.args:
            v = ex[a.name]
            if a.kind == "float":
                out[a.name] = torch.tensor(
                    np.asarray(v, dtype=np.float64), dtype=dtype, requires_grad=grad and a.grad
                )
            elif a.kind == "long":
                out[a.name] = torch.as_tensor(np.asarray(v, dtype=np.int64))
            else:
                out[a.name] = v if isinstance(v, torch.Tensor) else float(v)
        return out

    def invoke(self, inputs: dict[str, Any]) -> torch.Tensor:
        """Call the loss with the bound inputs; a raise or a non-tensor result is a finding."""
        pos = [inputs[a.name] for a, kw in zip(self.args, self.keyword, strict=True) if not kw]
        kws = {a.name: inputs[a.name] for a, kw in zip(self.args, self.keyword, strict=True) if kw}
        try:
            out = self.fn(*pos, **kws)
        except Exception as exc:  # the loss under audit raised: that is a finding
            raise Discrepancy(f"raised {type(exc).__name__}: {exc}", kind="exception") from exc
        if not isinstance(out, torch.Tensor):
            if isinstance(out, (int, float)):
                return torch.tensor(float(out), dtype=torch.float64)
            raise Discrepancy(
                f"returned {type(out).__name__}; the contract returns a Tensor", kind="contract"
            )
        return out

    def call(self, inputs: dict[str, Any]) -> torch.Tensor:
        out = self.invoke(inputs)
        if out.numel() != 1:
            raise Discrepancy(
                f"returned a tensor of shape {tuple(out.shape)}; the contract returns a scalar "
                "(a reduction other than the mean?)",
                kind="contract",
            )
        return out.reshape(())

    def value(self, ex: Example, dtype: torch.dtype = torch.float64) -> float:
        with torch.no_grad():
            return float(self.call(self.tensors(ex, dtype)).double())

    def value_and_grad(
        self, ex: Example, dtype: torch.dtype = torch.float64
    ) -> tuple[float, dict[str, np.ndarray]]:
        inputs = self.tensors(ex, dtype, grad=True)
        out = self.call(inputs)
        wrt = [a.name for a in self.args if a.grad]
        return float(out.detach().double()), autograd(out, inputs, wrt)


def autograd(out: torch.Tensor, inputs: Mapping[str, Any], wrt: Sequence[str]) -> dict[str, Any]:
    """``d out / d inputs[name]`` for each name in ``wrt`` (float64 NumPy; zeros when unused).
    No autograd graph, or a backward that raises, is a finding."""
    if not out.requires_grad:
        raise Discrepancy(
            f"the output does not depend differentiably on {', '.join(wrt)} "
            "(no autograd graph: detached or computed outside torch)",
            kind="gradient",
        )
    try:
        grads = torch.autograd.grad(out, [inputs[n] for n in wrt], allow_unused=True)
    except Exception as exc:
        raise Discrepancy(f"backward raised {type(exc).__name__}: {exc}", kind="gradient") from exc
    return {
        n: (np.zeros(tuple(inputs[n].shape)) if g is None else g.detach().double().numpy())
        for n, g in zip(wrt, grads, strict=True)
    }


# ----------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class Property:
    """One property of a family: a strategy of examples and a check raising :class:`Discrepancy`.

    ``tier`` is ``correctness`` or ``robustness`` (:data:`TIERS`); it defaults from ``kind``
    (:data:`KIND_TIER`), and an ``edge`` property must name it."""

    name: str
    kind: str  # oracle | gradient | invariance | limit | edge | dtype
    description: str
    strategy: st.SearchStrategy[Example]
    check: Callable[[Any, Example], None]
    tier: str = ""

    def __post_init__(self) -> None:
        tier = self.tier or KIND_TIER.get(self.kind, "")
        if tier not in TIERS:
            raise ValueError(
                f"property {self.name}: tier must be one of {tuple(TIERS)} (kind {self.kind!r} "
                f"has no default), got {self.tier!r}"
            )
        object.__setattr__(self, "tier", tier)


class Contract:
    """An audit contract: a call signature, its semantics, its reference and its properties.

    Subclasses: the hand-written contracts of :mod:`~softnce_theory.testing.families` and the
    generic contract of a family declared from its definition
    (:mod:`~softnce_theory.testing.generic`)."""

    name: str
    contract: str
    semantics: str
    args: tuple[Arg, ...]

    def properties(self) -> list[Property]:
        raise NotImplementedError

    def smoke_example(self) -> Example:
        raise NotImplementedError

    def reference_name(self) -> str:
        raise NotImplementedError

    @property
    def independent(self) -> bool:
        """Whether the reference values are independent of the loss's own definition."""
        return True

    def caller(self, fn: Callable[..., Any]) -> Caller:
        return Caller(fn, self.args)

    def default_target(self) -> Callable[..., Any]:
        """The loss audited when no target is given (a declared family's own ``torch_fn``)."""
        raise ValueError(
            f"a target MODULE:CALLABLE is required for the {self.name} contract (only a family "
            "declared from its definition audits its own torch_fn by default)"
        )


@dataclass
class PropertyResult:
    name: str
    kind: str
    description: str
    status: str  # pass | fail | error
    examples: int
    seconds: float
    counterexample: dict[str, Any] | None = None
    discrepancy: str | None = None
    tier: str = CORRECTNESS
    numbers: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_json(self) -> dict[str, Any]:
        disc = None
        if self.discrepancy is not None:
            disc = {"message": self.discrepancy, **(self.numbers or {})}
        return {
            "name": self.name,
            "kind": self.kind,
            "tier": self.tier,
            "description": self.description,
            "status": self.status,
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
            "counterexample": to_jsonable(self.counterexample),
            "discrepancy": disc,
        }


@dataclass
class AuditReport:
    """Result of :func:`~softnce_theory.testing.suite.check_loss`: one :class:`PropertyResult`
    per property, in suite order. ``tier`` selects which failures fail the report
    (:data:`TIER_CHOICES`); every finding is reported either way."""

    family: str
    target: str
    adapter: str | None
    max_examples: int
    seed: int | None
    results: list[PropertyResult] = field(default_factory=list)
    seconds: float = 0.0
    reference: str = ""
    tier: str = "all"
    independent: bool = True

    def tier_results(self, tier: str) -> list[PropertyResult]:
        return [r for r in self.results if r.tier == tier]

    def tier_passed(self, tier: str) -> bool:
        return all(r.passed for r in self.tier_results(tier))

    @property
    def passed(self) -> bool:
        """Every property of the selected tier(s) passes."""
        return all(self.tier_passed(t) for t in TIER_CHOICES[self.tier])

    @property
    def failures(self) -> list[PropertyResult]:
        return [r for r in self.results if not r.passed]

    def __getitem__(self, name: str) -> PropertyResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def summary(self) -> str:
        n_pass = sum(r.passed for r in self.results)
        per_tier = ", ".join(
            f"{t} {sum(r.passed for r in rs)}/{len(rs)}"
            for t in TIERS
            if (rs := self.tier_results(t))
        )
        return (
            f"{self.target} as {self.family}"
            + (f" (adapter {self.adapter})" if self.adapter else "")
            + f": {n_pass}/{len(self.results)} properties pass ({per_tier}) in "
            f"{self.seconds:.1f} s (max_examples={self.max_examples}, seed={self.seed})"
        )

    def verdict(self) -> str:
        """One line: the verdict on the selected tier, and what the other tier found."""
        word = "PASS" if self.passed else "FAIL"
        selected = TIER_CHOICES[self.tier]
        line = f"verdict (--tier {self.tier}): {word}"
        ignored = [r for r in self.failures if r.tier not in selected]
        if ignored:
            line += (
                f"; {len(ignored)} robustness finding(s) reported, not failing the run: "
                + ", ".join(r.name for r in ignored)
            )
        return line

    def table(self) -> str:
        """Plain-text table, one section per tier, then every failure's counterexample."""
        w = max([len(r.name) for r in self.results] + [8])
        lines = [f"audit {self.summary()}"]
        if self.reference:
            lines.append(f"reference: {self.reference}")
        lines += [
            f"{'property':<{w}}  {'kind':<10}  {'result':<6}  {'examples':>8}  {'time':>6}",
            "-" * (w + 38),
        ]
        selected = TIER_CHOICES[self.tier]
        for t in TIERS:
            rs = self.tier_results(t)
            if not rs:
                continue
            counts = "fails the run" if t in selected else "reported, does not fail the run"
            title = "correctness" if t == CORRECTNESS else "robustness policy"
            lines.append(f"[{title} ({TIERS[t]}): {counts}]")
            for r in rs:
                lines.append(
                    f"{r.name:<{w}}  {r.kind:<10}  {r.status.upper():<6}  {r.examples:>8}  "
                    f"{r.seconds:>5.1f}s"
                )
        for r in self.results:
            if r.passed:
                continue
            lines.append("")
            lines.append(f"{r.status.upper()} {r.name} [{r.tier}]: {r.description}")
            lines.append(f"  discrepancy: {r.discrepancy}")
            if r.counterexample is not None:
                lines.append("  minimal counterexample:")
                for k, v in r.counterexample.items():
                    head = f"    {k} = "
                    lines.append(head + _show(v, len(head)))
        lines += ["", self.verdict()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "mode": "properties",
            "family": self.family,
            "target": self.target,
            "adapter": self.adapter,
            "max_examples": self.max_examples,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "reference": self.reference,
            "reference_independent": self.independent,
            "tier": self.tier,
            "passed": self.passed,
            "tiers": {
                t: {
                    "passed": self.tier_passed(t),
                    "fails_run": t in TIER_CHOICES[self.tier],
                    "properties": len(self.tier_results(t)),
                    "failed": [r.name for r in self.tier_results(t) if not r.passed],
                }
                for t in TIERS
            },
            "results": [r.to_json() for r in self.results],
        }


def _show(v: Any, indent: int = 0) -> str:
    if isinstance(v, np.ndarray):
        s = np.array2string(v, precision=6, separator=", ", max_line_width=96, threshold=200)
        return s.replace("\n", "\n" + " " * indent)
    if isinstance(v, float):
        return f"{v:.9g}"
    return repr(v)


def to_jsonable(x: Any) -> Any:
    """NumPy arrays and scalars as JSON values; non-finite floats as the strings ``"nan"``,
    ``"inf"``, ``"-inf"``."""
    if x is None:
        return None
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, torch.Tensor):
        return to_jsonable(x.detach().double().numpy())
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else str(f)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, str):
        return x
    return repr(x)


def target_name(fn: Any) -> str:
    """``module:qualname`` of a callable (a partial shows its keywords)."""
    if isinstance(fn, functools.partial):
        kw = ", ".join(f"{k}={v!r}" for k, v in fn.keywords.items())
        return f"{target_name(fn.func)}({kw})" if kw else target_name(fn.func)
    mod = getattr(fn, "__module__", None)
    qual = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if qual is None:
        return repr(fn)
    return f"{mod}:{qual}" if mod else str(qual)


def _key(ex: Example) -> str:
    parts = []
    for k in sorted(ex):
        v = ex[k]
        if isinstance(v, np.ndarray):
            parts.append(f"{k}={v.dtype}{v.shape}{v.tobytes().hex()}")
        else:
            parts.append(f"{k}={v!r}")
    return "|".join(parts)


def audit_settings(max_examples: int, seed: int | None) -> settings:
    """The audit's explicit Hypothesis settings (no profile, no database, no deadline)."""
    return settings(
        max_examples=max_examples,
        derandomize=seed is None,
        database=None,
        deadline=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
    )


def run_property(
    prop: Property,
    caller: Caller,
    *,
    max_examples: int,
    seed: int | None,
    shrink_budget: float = SHRINK_BUDGET_S,
) -> PropertyResult:
    """Run one property with Hypothesis and return its result (never raises for a finding)."""
    calls = 0
    failing: dict[str, BaseException] = {}
    last: list[Any] = [None, None]
    first_fail: list[float] = []

    def body(ex: Example) -> None:
        nonlocal calls
        key = _key(ex)
        if first_fail and time.perf_counter() - first_fail[0] > shrink_budget:
            # shrink budget spent: stop evaluating, replay known failures only
            if key in failing:
                last[0], last[1] = ex, failing[key]
                raise failing[key]
            return
        calls += 1
        try:
            prop.check(caller, ex)
        except (Discrepancy, KitError) as exc:
            if not first_fail:
                first_fail.append(time.perf_counter())
            failing[key] = exc
            last[0], last[1] = ex, exc
            raise
        except Exception as exc:  # a bug in the kit's reference code
            err = KitError(f"{type(exc).__name__} in the audit kit: {exc}")
            if not first_fail:
                first_fail.append(time.perf_counter())
            failing[key] = err
            last[0], last[1] = ex, err
            raise err from exc

    test = given(prop.strategy)(body)
    test = audit_settings(max_examples, seed)(test)
    if seed is not None:
        test = hyp_seed(seed)(test)
    t0 = time.perf_counter()
    status, disc, cex, numbers = "pass", None, None, None
    try:
        test()
    except BaseException as exc:  # Hypothesis re-raises the finding
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        found = last[1] if last[1] is not None else exc
        status = "error" if isinstance(found, KitError) else "fail"
        disc = getattr(found, "message", None) or f"{type(found).__name__}: {found}"
        if isinstance(found, Discrepancy):
            numbers = found.numbers()
        elif isinstance(found, KitError):
            numbers = {"kind": "kit"}
        if last[0] is not None:
            cex = dict(last[0])
        if not isinstance(found, (Discrepancy, KitError)):
            status = "error"
    return PropertyResult(
        name=prop.name,
        kind=prop.kind,
        description=prop.description,
        status=status,
        examples=calls,
        seconds=time.perf_counter() - t0,
        counterexample=cex,
        discrepancy=disc,
        tier=prop.tier,
        numbers=numbers,
    )


__all__ = [
    "CORRECTNESS",
    "DEFAULT_MAX_EXAMPLES",
    "DEFAULT_SEED",
    "EPS64",
    "KIND_TIER",
    "LOW_DTYPES",
    "ROBUSTNESS",
    "SCHEMA",
    "SHRINK_BUDGET_S",
    "TIERS",
    "TIER_CHOICES",
    "Arg",
    "AuditReport",
    "Caller",
    "Contract",
    "Discrepancy",
    "Example",
    "KitError",
    "Property",
    "PropertyResult",
    "audit_settings",
    "autograd",
    "check_grads",
    "check_value",
    "run_property",
    "target_name",
    "to_jsonable",
    "value_tolerance",
]
