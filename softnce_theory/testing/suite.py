"""The property-suite engine: run a family's properties against a loss and report.

:func:`check_loss` is the entry point. Each property is a Hypothesis test run with explicit
settings (``max_examples``, ``seed``, ``deadline=None``, ``database=None``, no ``explain``
phase); a failure is shrunk by Hypothesis and reported as the minimal counterexample plus the
value or gradient discrepancy. The families and their properties live in
:mod:`softnce_theory.testing.families`.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hyp_seed
from hypothesis import strategies as st

EPS64 = float(np.finfo(np.float64).eps)

#: default examples per property (the whole default audit of one family stays well under 30 s)
DEFAULT_MAX_EXAMPLES = 40
#: default seed (the audit is reproducible unless told otherwise)
DEFAULT_SEED = 0
#: seconds of shrinking per failing property before the best counterexample so far is reported
SHRINK_BUDGET_S = 4.0


# ----------------------------------------------------------------------------- discrepancies


class Discrepancy(AssertionError):
    """A property does not hold on an example: what was compared, got vs want, error vs tol."""

    def __init__(
        self,
        message: str,
        *,
        kind: str = "value",
        got: Any = None,
        want: Any = None,
        err: float | None = None,
        tol: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.got = got
        self.want = want
        self.err = err
        self.tol = tol


class KitError(RuntimeError):
    """The kit itself failed (a reference computation broke): reported as ``error``."""


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.15g}"
    return str(x)


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
        raise Discrepancy(f"{what} is NaN (value {_fmt(got)})", kind="value", got=got, want=want)
    if not math.isfinite(got) or (math.isinf(want) and got != want):
        raise Discrepancy(
            f"value {_fmt(got)} is not finite; {what} gives {_fmt(want)}",
            kind="value",
            got=got,
            want=want,
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
            )
        wn = float(np.linalg.norm(w))
        err = float(np.linalg.norm(g - w))
        tol = rtol * wn + c * EPS64 * (1.0 + scale) * max(natural.get(name, wn), wn)
        if not err <= tol:
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
        kw_ok = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        out: list[bool] = []
        for k, a in enumerate(args):
            slot = positional[k].name if k < len(positional) else None
            can_pos = not any(out) and (slot is not None or var_pos)
            if can_pos and (slot == a.name or a.name not in kw_ok):
                out.append(False)
            elif a.name in kw_ok:
                out.append(True)
            else:
                names = ", ".join(x.name for x in args)
                raise ValueError(
                    f"cannot bind the contract ({names}) to {_name(fn)}: no positional slot or "
                    f"keyword parameter for '{a.name}'; use an adapter or a wrapper"
                )
        return tuple(out)

    def tensors(
        self, ex: dict[str, Any], dtype: torch.dtype = torch.float64, grad: bool = False
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
                out[a.name] = float(v)
        return out

    def call(self, inputs: dict[str, Any]) -> torch.Tensor:
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
                f"returned {type(out).__name__}; the contract returns a scalar Tensor",
                kind="contract",
            )
        if out.numel() != 1:
            raise Discrepancy(
                f"returned a tensor of shape {tuple(out.shape)}; the contract returns a scalar "
                "(a reduction other than the mean?)",
                kind="contract",
            )
        return out.reshape(())

    def value(self, ex: dict[str, Any], dtype: torch.dtype = torch.float64) -> float:
        with torch.no_grad():
            return float(self.call(self.tensors(ex, dtype)).double())

    def value_and_grad(
        self, ex: dict[str, Any], dtype: torch.dtype = torch.float64
    ) -> tuple[float, dict[str, np.ndarray]]:
        inputs = self.tensors(ex, dtype, grad=True)
        out = self.call(inputs)
        wrt = [a.name for a in self.args if a.grad]
        if not out.requires_grad:
            raise Discrepancy(
                f"the output does not depend differentiably on {', '.join(wrt)} "
                "(no autograd graph: detached or computed outside torch)",
                kind="gradient",
            )
        try:
            grads = torch.autograd.grad(out, [inputs[n] for n in wrt], allow_unused=True)
        except Exception as exc:
            raise Discrepancy(
                f"backward raised {type(exc).__name__}: {exc}", kind="gradient"
            ) from exc
        res = {
            n: (np.zeros(inputs[n].shape) if g is None else g.detach().double().numpy())
            for n, g in zip(wrt, grads, strict=True)
        }
        return float(out.detach().double()), res


# ----------------------------------------------------------------------------- properties


@dataclass(frozen=True)
class Property:
    """One property of a family: a strategy of examples and a check raising :class:`Discrepancy`."""

    name: str
    kind: str  # oracle | gradient | invariance | limit | edge | dtype
    description: str
    strategy: st.SearchStrategy[dict[str, Any]]
    check: Callable[[Caller, dict[str, Any]], None]


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

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "status": self.status,
            "examples": self.examples,
            "seconds": round(self.seconds, 3),
            "counterexample": _jsonable(self.counterexample),
            "discrepancy": self.discrepancy,
        }


@dataclass
class AuditReport:
    """Result of :func:`check_loss`: one :class:`PropertyResult` per property, in suite order."""

    family: str
    target: str
    adapter: str | None
    max_examples: int
    seed: int | None
    results: list[PropertyResult] = field(default_factory=list)
    seconds: float = 0.0
    reference: str = ""

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

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
        return (
            f"{self.target} as {self.family}"
            + (f" (adapter {self.adapter})" if self.adapter else "")
            + f": {n_pass}/{len(self.results)} properties pass in {self.seconds:.1f} s "
            f"(max_examples={self.max_examples}, seed={self.seed})"
        )

    def table(self) -> str:
        """Plain-text table: one line per property, then every failure's counterexample."""
        w = max([len(r.name) for r in self.results] + [8])
        lines = [
            f"audit {self.summary()}",
            f"reference: {self.reference}" if self.reference else "",
            f"{'property':<{w}}  {'kind':<10}  {'result':<6}  {'examples':>8}  {'time':>6}",
            "-" * (w + 38),
        ]
        lines = [x for x in lines if x]
        for r in self.results:
            lines.append(
                f"{r.name:<{w}}  {r.kind:<10}  {r.status.upper():<6}  {r.examples:>8}  "
                f"{r.seconds:>5.1f}s"
            )
        for r in self.results:
            if r.passed:
                continue
            lines.append("")
            lines.append(f"{r.status.upper()} {r.name}: {r.description}")
            lines.append(f"  discrepancy: {r.discrepancy}")
            if r.counterexample is not None:
                lines.append("  minimal counterexample:")
                for k, v in r.counterexample.items():
                    head = f"    {k} = "
                    lines.append(head + _show(v, len(head)))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_json(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "target": self.target,
            "adapter": self.adapter,
            "max_examples": self.max_examples,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "reference": self.reference,
            "passed": self.passed,
            "results": [r.to_json() for r in self.results],
        }


def _show(v: Any, indent: int = 0) -> str:
    if isinstance(v, np.ndarray):
        s = np.array2string(v, precision=6, separator=", ", max_line_width=96, threshold=200)
        return s.replace("\n", "\n" + " " * indent)
    if isinstance(v, float):
        return f"{v:.9g}"
    return repr(v)


def _jsonable(x: Any) -> Any:
    if x is None:
        return None
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if math.isfinite(f) else str(f)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (str, bool)):
        return x
    return repr(x)


def _name(fn: Any) -> str:
    if isinstance(fn, functools.partial):
        kw = ", ".join(f"{k}={v!r}" for k, v in fn.keywords.items())
        return f"{_name(fn.func)}({kw})" if kw else _name(fn.func)
    mod = getattr(fn, "__module__", None)
    qual = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if qual is None:
        return repr(fn)
    return f"{mod}:{qual}" if mod else str(qual)


def _key(ex: dict[str, Any]) -> str:
    parts = []
    for k in sorted(ex):
        v = ex[k]
        if isinstance(v, np.ndarray):
            parts.append(f"{k}={v.dtype}{v.shape}{v.tobytes().hex()}")
        else:
            parts.append(f"{k}={v!r}")
    return "|".join(parts)


def _audit_settings(max_examples: int, seed: int | None) -> settings:
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

    def body(ex: dict[str, Any]) -> None:
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
    test = _audit_settings(max_examples, seed)(test)
    if seed is not None:
        test = hyp_seed(seed)(test)
    t0 = time.perf_counter()
    status, disc, cex = "pass", None, None
    try:
        test()
    except BaseException as exc:  # Hypothesis re-raises the finding
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        found = last[1] if last[1] is not None else exc
        status = "error" if isinstance(found, KitError) else "fail"
        disc = getattr(found, "message", None) or f"{type(found).__name__}: {found}"
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
    )


def check_loss(
    fn: Callable[..., Any],
    family: str,
    *,
    max_examples: int | None = None,
    seed: int | None = DEFAULT_SEED,
    adapter: str | None = None,
    properties: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    shrink_budget: float = SHRINK_BUDGET_S,
) -> AuditReport:
    """Audit ``fn`` against the property suite of ``family``.

    Args:
        fn: the loss, following the family's contract (see ``docs/audit.md``), or a peer
            object when ``adapter`` names an adapter that maps it onto the contract.
        family: one of :data:`softnce_theory.testing.families.FAMILIES`.
        max_examples: Hypothesis examples per property (default :data:`DEFAULT_MAX_EXAMPLES`).
        seed: Hypothesis seed (default 0: reproducible); ``None`` uses ``derandomize=True``.
        adapter: name of an adapter in :mod:`softnce_theory.testing.adapters`.
        properties: run only these properties (names); ``skip``: leave these out.
        shrink_budget: seconds of shrinking per failing property.

    Returns:
        An :class:`AuditReport`: per property pass/fail, the shrunk counterexample and the
        discrepancy. Findings never raise; bad arguments raise ``ValueError``.
    """
    from softnce_theory.testing import adapters as _adapters
    from softnce_theory.testing.families import get_family

    fam = get_family(family)
    if max_examples is None:
        max_examples = DEFAULT_MAX_EXAMPLES
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an int >= 1, got {max_examples!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")
    target = _name(fn)
    call = _adapters.adapt(fn, adapter, fam.name) if adapter else fn
    if not callable(call):
        raise ValueError(f"{target} is not callable")
    caller = Caller(call, fam.args)
    props = fam.properties()
    names = [p.name for p in props]
    for n in [*(properties or ()), *skip]:
        if n not in names:
            raise ValueError(f"family {fam.name} has no property {n!r}; properties: {names}")
    if properties:
        props = [p for p in props if p.name in properties]
    props = [p for p in props if p.name not in skip]
    report = AuditReport(
        family=fam.name,
        target=target,
        adapter=adapter,
        max_examples=max_examples,
        seed=seed,
        reference=fam.reference_name(),
    )
    t0 = time.perf_counter()
    smoke = _smoke(caller, fam)
    for p in props:
        if smoke is not None:
            report.results.append(
                PropertyResult(
                    p.name, p.kind, p.description, "error", 0, 0.0, fam.smoke_example(), smoke
                )
            )
            continue
        report.results.append(
            run_property(
                p, caller, max_examples=max_examples, seed=seed, shrink_budget=shrink_budget
            )
        )
    report.seconds = time.perf_counter() - t0
    return report


def _smoke(caller: Caller, fam: Any) -> str | None:
    """Call the loss once on a plain example; a crash here is reported once, not shrunk 10 times."""
    try:
        caller.value(fam.smoke_example())
    except Discrepancy as exc:
        if exc.kind in ("exception", "contract"):
            return f"the loss cannot be called per the {fam.name} contract: {exc.message}"
    return None


def report_json(report: AuditReport) -> str:
    return json.dumps(report.to_json(), indent=2)


__all__ = [
    "DEFAULT_MAX_EXAMPLES",
    "DEFAULT_SEED",
    "Arg",
    "AuditReport",
    "Caller",
    "Discrepancy",
    "KitError",
    "Property",
    "PropertyResult",
    "check_grads",
    "check_loss",
    "check_value",
    "report_json",
    "run_property",
    "value_tolerance",
]
