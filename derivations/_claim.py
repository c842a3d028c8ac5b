"""The claim model shared by all three layers.

A :class:`Claim` lives in ``derivations/<family>.py`` next to the family's SymPy definitions.
A claim carries three things the engine works on:

* ``statement``: a SymPy relation (``Eq``, ``Le``/``Lt``/``Ge``/``Gt``, an ``Eq`` of a ``Limit``
  or of a series with an explicit ``O`` term) built from the family's SymPy definitions;
* ``facts``: the assumptions, as SymPy relations (``Eq`` facts are also rewrite rules, e.g. the
  simplex ``Eq(Sum(y[k], (k, 1, K)), 1)``), on top of the assumptions carried by the symbols;
* ``tactic``: a certificate from :mod:`derivations.tactics` that names *how* to prove the
  statement. The claim never returns a verdict: the engine
  (:mod:`softnce_theory.engine._prover`) applies the tactic to the statement itself.

The precise leg (mpmath oracles) registers itself in ``numerics/<family>.py`` and the production
leg (torch, float64) in ``softnce_theory/engine/<family>.py``, both through a
:class:`LegRegistry` keyed by claim id. ``uses`` names the family :class:`Definition` objects the
statement is built from; each definition is tied to its independent oracle by a definition leg.

Honesty rules encoded here and in the engine:

* ``proved`` requires the engine to close the tactic on the claim's own statement, for the
  generality the statement has (a proof at fixed sizes of a general statement is evidence, not a
  proof), and every numeric leg to pass; numeric legs never prove.
* a numeric leg that finds a violation returns ``outcome="fail"`` with a printed counterexample,
  which makes the claim ``refuted``; a numeric leg that looked at zero points is an ``error``.
* a leg that raises is ``error``; a required leg with no implementation is also ``error``.

This module imports nothing but the standard library, so every layer can use it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["identity", "inequality", "limit", "asymptotic", "gradient", "algorithmic"]
LegName = Literal["symbolic", "precise", "production", "definition"]
Outcome = Literal["pass", "fail", "error", "skip"]
Status = Literal["proved", "checked", "refuted", "error"]

KINDS: tuple[str, ...] = (
    "identity",
    "inequality",
    "limit",
    "asymptotic",
    "gradient",
    "algorithmic",
)
LEGS: tuple[LegName, ...] = ("symbolic", "precise", "production")


Scope = Literal["general", "instances", "witness", "none"]


@dataclass(frozen=True)
class Proof:
    """Outcome of the symbolic leg, as produced by the engine's prover (never by a claim).

    ``proved`` is True only when the tactic closed on the claim's statement. ``scope`` says for
    what generality: ``"general"`` (every symbol of the statement stays symbolic), ``"witness"``
    (the statement is itself about explicit numbers), ``"instances"`` (closed only after fixing
    sizes the statement leaves general: evidence, never a proof). ``method`` names the tactic
    and the steps, ``assumptions`` prints the SymPy facts used. A failed attempt is reported
    with ``proved=False`` and never counts as evidence either way.
    """

    proved: bool
    method: str
    scope: str
    assumptions: tuple[str, ...] = ()
    detail: str = ""
    refuted: bool = False  # True only if SymPy produced an explicit counterexample
    counterexample: str | None = None
    scope_kind: Scope = "general"

    @property
    def binding(self) -> bool:
        """Whether this proof establishes the statement as stated (not only some instances)."""
        return self.proved and self.scope_kind in ("general", "witness")


@dataclass(frozen=True)
class Definition:
    """A named SymPy definition of a family, tied to an independent oracle by a definition leg.

    ``build()`` returns the SymPy expression (in the family's symbols); ``sizes`` are the integer
    size symbols it is generic in (instantiated by the definition leg); ``args`` the symbols and
    ``IndexedBase`` objects a point must give values for.
    """

    name: str
    family: str
    build: Callable[[], Any]
    sizes: tuple[Any, ...]
    args: tuple[Any, ...]
    source: str
    doc: str = ""

    @property
    def id(self) -> str:
        return f"{self.family}.{self.name}"


@dataclass(frozen=True)
class Claim:
    """One checkable statement from a paper (or standard theory) about a loss family."""

    id: str
    family: str
    kind: Kind
    text: str
    statement: Callable[[], Any]  # lazily builds the SymPy relation (Eq, Le, Limit, ...)
    source: str
    evidence: tuple[LegName, ...]
    tactic: Any = None  # a derivations.tactics certificate; the engine applies it
    facts: Callable[[], tuple[Any, ...]] | None = None  # assumptions as SymPy relations
    uses: tuple[str, ...] = ()  # names of the family Definitions the statement is built from
    notes: str = ""
    # Legacy (pre-tactic) fields: a prove() returning its own verdict and prose assumptions. The
    # engine never counts a legacy proof; they remain only while the catalogue is re-expressed.
    prove: Callable[[], Proof] | None = None
    assumptions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id.startswith(self.family + "."):
            raise ValueError(f"claim id {self.id!r} must start with its family {self.family!r}.")
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id}: kind must be one of {KINDS}, got {self.kind!r}")
        for leg in self.evidence:
            if leg not in LEGS:
                raise ValueError(f"claim {self.id}: unknown evidence leg {leg!r}")
        has_symbolic = self.tactic is not None or self.prove is not None
        if ("symbolic" in self.evidence) != has_symbolic:
            raise ValueError(f"claim {self.id}: 'symbolic' evidence requires a tactic and back")

    def fact_list(self) -> tuple[Any, ...]:
        """The claim's facts (SymPy relations), built lazily."""
        return tuple(self.facts()) if self.facts is not None else ()

    def latex(self) -> str:
        import sympy

        return sympy.latex(self.statement())


@dataclass
class LegResult:
    """The outcome of one leg of one claim, with the numbers that back it."""

    leg: LegName
    outcome: Outcome
    detail: str = ""
    n_points: int = 0
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    min_margin: float | None = None  # inequalities: smallest slack seen (>= 0 means held)
    dps: int | None = None
    dtype: str | None = None
    seconds: float = 0.0
    counterexample: str | None = None
    proof: Proof | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "leg": self.leg,
            "outcome": self.outcome,
            "detail": self.detail,
            "n_points": self.n_points,
            "max_abs_err": _jsonable(self.max_abs_err),
            "max_rel_err": _jsonable(self.max_rel_err),
            "min_margin": _jsonable(self.min_margin),
            "dps": self.dps,
            "dtype": self.dtype,
            "seconds": round(self.seconds, 4),
            "counterexample": self.counterexample,
            "extra": self.extra,
        }
        if self.proof is not None:
            out["proof"] = {
                "proved": self.proof.proved,
                "method": self.proof.method,
                "scope": self.proof.scope,
                "scope_kind": self.proof.scope_kind,
                "assumptions": list(self.proof.assumptions),
                "detail": self.proof.detail,
            }
        return out


def _jsonable(x: float | None) -> float | str | None:
    if x is None:
        return None
    if math.isnan(x) or math.isinf(x):
        return str(x)
    return float(x)


@dataclass(frozen=True)
class CheckConfig:
    """Settings every numeric leg receives. ``quick`` lowers point counts (for `--quick`)."""

    seed: int = 20240422
    quick: bool = False
    dps: int = 50

    def points(self, full: int, quick: int | None = None) -> int:
        """Number of random points: ``full`` normally, ``quick`` (default full // 4) if quick."""
        if self.quick:
            return max(1, quick if quick is not None else full // 4)
        return full

    def seed_for(self, claim_id: str) -> int:
        """A per-claim seed derived deterministically from the global seed and the claim id."""
        h = 2166136261
        for ch in claim_id.encode():
            h = ((h ^ ch) * 16777619) & 0xFFFFFFFF
        return (self.seed * 1_000_003 + h) & 0x7FFFFFFF


LegFn = Callable[[CheckConfig], LegResult]


class LegRegistry:
    """Maps claim ids to the function that runs one numeric leg for that claim."""

    def __init__(self, leg: LegName) -> None:
        self.leg = leg
        self._fns: dict[str, LegFn] = {}

    def register(self, claim_id: str) -> Callable[[LegFn], LegFn]:
        def deco(fn: LegFn) -> LegFn:
            if claim_id in self._fns:
                raise ValueError(f"{self.leg} leg for {claim_id!r} registered twice")
            self._fns[claim_id] = fn
            return fn

        return deco

    def get(self, claim_id: str) -> LegFn | None:
        return self._fns.get(claim_id)

    def merge(self, other: LegRegistry) -> None:
        for k, fn in other._fns.items():
            if k in self._fns:
                raise ValueError(f"{self.leg} leg for {k!r} registered twice")
            self._fns[k] = fn

    def __iter__(self) -> Iterator[str]:
        return iter(self._fns)

    def __len__(self) -> int:
        return len(self._fns)


class Tally:
    """Accumulates comparisons for a numeric leg and turns them into a :class:`LegResult`.

    ``close(got, want)`` passes when ``|got - want| <= atol + rtol * |want|``. ``holds(margin)``
    records an inequality whose slack is ``margin`` (it fails when ``margin < -atol``). The first
    failing point is kept verbatim as the counterexample.
    """

    def __init__(
        self,
        leg: LegName,
        *,
        rtol: float,
        atol: float = 0.0,
        dps: int | None = None,
        dtype: str | None = None,
    ) -> None:
        self.leg: LegName = leg
        self.rtol, self.atol = rtol, atol
        self.dps, self.dtype = dps, dtype
        self.n = 0
        self.max_abs = 0.0
        self.max_rel = 0.0
        self.min_margin: float | None = None
        self.failure: str | None = None
        self.measured = False  # an error size was recorded (close / close_normwise)

    def close(self, got: Any, want: Any, where: str = "") -> bool:
        """Compare in the inputs' own arithmetic (mpf stays mpf), record errors as floats."""
        got_f, want_f = float(got), float(want)
        self.n += 1
        self.measured = True
        if math.isnan(got_f) or math.isnan(want_f):
            ok, err, rel = False, math.inf, math.inf
        elif math.isinf(want_f) or math.isinf(got_f):
            ok = got_f == want_f
            err = rel = 0.0 if ok else math.inf
        else:
            diff = abs(got - want)
            ok = bool(diff <= self.atol + self.rtol * abs(want))
            err = float(diff)
            rel = float(diff / abs(want)) if want != 0 else err
        self.max_abs = max(self.max_abs, err)
        self.max_rel = max(self.max_rel, rel)
        if not ok and self.failure is None:
            self.failure = f"{where}: got {got_f!r}, expected {want_f!r} (|err|={err:.3e})"
        return ok

    def close_all(self, got: Any, want: Any, where: str = "") -> bool:
        """Element-wise :meth:`close` over two equally long flat iterables."""
        got_l, want_l = list(got), list(want)
        if len(got_l) != len(want_l):
            raise ValueError(f"{where}: length {len(got_l)} != {len(want_l)}")
        ok = True
        for k, (g, w) in enumerate(zip(got_l, want_l, strict=True)):
            ok &= self.close(g, w, f"{where}[{k}]")
        return ok

    def close_normwise(self, got: Any, want: Any, where: str = "") -> bool:
        """Vector comparison scaled by the largest reference entry (for gradients, whose tiny
        entries make element-wise relative error meaningless): passes when
        ``max|got - want| <= atol + rtol * max|want|``; the recorded relative error is
        ``max|got - want| / max|want|``."""
        got_l, want_l = list(got), list(want)
        if len(got_l) != len(want_l):
            raise ValueError(f"{where}: length {len(got_l)} != {len(want_l)}")
        self.n += 1
        self.measured = True
        scale = max((abs(w) for w in want_l), default=0)
        diffs = [abs(g - w) for g, w in zip(got_l, want_l, strict=True)]
        # Python's max() drops a NaN that is not first, so look for one explicitly
        nan_at = next((i for i, d in enumerate(diffs) if math.isnan(float(d))), None)
        if nan_at is not None or math.isnan(float(scale)):
            k = nan_at if nan_at is not None else 0
            worst_f, ok, rel = math.nan, False, math.inf
        else:
            worst = max(diffs, default=0)
            worst_f = float(worst)
            k = diffs.index(worst) if diffs else 0
            ok = bool(worst <= self.atol + self.rtol * scale)
            rel = float(worst / scale) if scale != 0 else worst_f
        self.max_abs = max(self.max_abs, worst_f) if not math.isnan(worst_f) else math.inf
        self.max_rel = max(self.max_rel, rel)
        if not ok and self.failure is None:
            self.failure = (
                f"{where}: entry {k} got {float(got_l[k])!r}, expected {float(want_l[k])!r} "
                f"(max |err| {worst_f:.3e}, scale {float(scale):.3e})"
            )
        return ok

    def holds(self, margin: float, where: str = "") -> bool:
        m = float(margin)
        self.n += 1
        self.min_margin = m if self.min_margin is None else min(self.min_margin, m)
        ok = m >= -self.atol and not math.isnan(m)
        if not ok and self.failure is None:
            self.failure = f"{where}: violated by {-m:.3e}"
        return ok

    def check(self, ok: bool, where: str = "") -> bool:
        """Record one yes/no point (a property without an error size: accepted, finite)."""
        self.n += 1
        if not ok and self.failure is None:
            self.failure = where
        return ok

    def fail(self, where: str) -> None:
        """Record an explicit failure (e.g. a non-finite result where a finite one is required)."""
        self.n += 1
        if self.failure is None:
            self.failure = where

    def result(self, detail: str = "", **extra: Any) -> LegResult:
        has_err = self.measured or self.max_abs > 0 or self.max_rel > 0
        return LegResult(
            leg=self.leg,
            outcome="fail" if self.failure else "pass",
            detail=detail,
            n_points=self.n,
            max_abs_err=self.max_abs if has_err else None,
            max_rel_err=self.max_rel if has_err else None,
            min_margin=self.min_margin,
            dps=self.dps,
            dtype=self.dtype,
            counterexample=self.failure,
            extra=dict(extra),
        )
