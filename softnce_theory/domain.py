"""Declared input domains: one declaration per loss drives its validation, the engine's random
points, the declared extremes and the audit's Hypothesis strategies.

The idea follows scipy.stats' new distribution infrastructure (parameters and their domains are
declared once, and every method derives from the declaration); no code is shared with it.

* :class:`Interval` is a set of reals with open or closed ends, e.g. ``Interval(0, inf)`` is
  :math:`(0, \\infty)`.
* :class:`Param` is a scalar argument (a Python number or a 0-d tensor, which keeps its
  gradient): ``Param("temperature", Interval(0, inf))``.
* :class:`Array` is a tensor argument with named dimensions: ``Array("logits", ("B", "K"))``.
* :class:`Domain` groups them with the *typical* ranges random points are drawn from and the
  *extremes* at which a loss must stay finite.

Validation errors are :class:`ValueError` whose message starts with the argument's name and
states the rule, e.g. ``temperature must be a finite real in (0, inf), got -1.0``.

This module imports neither torch nor sympy at import time (the CLI's ``--help`` stays light);
tensor checks import torch when a tensor is actually passed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

inf = math.inf

FLOAT_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")


def _fmt(x: float) -> str:
    if x == inf:
        return "inf"
    if x == -inf:
        return "-inf"
    return f"{x:g}"


@dataclass(frozen=True)
class Interval:
    """A real interval; ``closed`` ends include the bound (an infinite end is always open)."""

    low: float = -inf
    high: float = inf
    low_closed: bool = False
    high_closed: bool = False

    def __post_init__(self) -> None:
        if not self.low <= self.high:
            raise ValueError(f"Interval: low must be <= high, got {self.low} > {self.high}")

    def __contains__(self, x: float) -> bool:
        lo_ok = x >= self.low if self.low_closed else x > self.low
        hi_ok = x <= self.high if self.high_closed else x < self.high
        return bool(lo_ok and hi_ok)

    def __str__(self) -> str:
        left = "[" if self.low_closed and self.low != -inf else "("
        right = "]" if self.high_closed and self.high != inf else ")"
        return f"{left}{_fmt(self.low)}, {_fmt(self.high)}{right}"


REALS = Interval()
POSITIVE = Interval(0.0, inf)
NONNEGATIVE = Interval(0.0, inf, low_closed=True)
UNIT = Interval(0.0, 1.0, low_closed=True, high_closed=True)


def _is_tensor(x: object) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


@dataclass(frozen=True)
class Param:
    """A scalar argument: a Python ``int``/``float`` or a one-element floating tensor.

    ``typical`` is the range the engine's random points and the strategies draw from (default:
    the interval clipped to ``[-5, 5]``); ``extremes`` are the declared edge values at which the
    loss must stay finite (e.g. a temperature of ``1e-4``).
    """

    name: str
    interval: Interval = REALS
    integer: bool = False
    typical: tuple[float, float] | None = None
    extremes: tuple[float, ...] = ()
    doc: str = ""

    @property
    def rule(self) -> str:
        kind = "an integer" if self.integer else "a finite real"
        return f"{kind} in {self.interval}"

    def check(self, value: Any) -> Any:
        """``value`` unchanged if it is in the domain, else a ``ValueError`` naming the rule.
        A tensor is returned as is (never detached): its gradient keeps flowing."""
        got = value
        if (
            isinstance(value, (bool, str, bytes))
            or value is None
            or type(value).__name__ == "bool_"
        ):
            raise ValueError(f"{self.name} must be {self.rule}, got {value!r}")
        if _is_tensor(value):
            if value.numel() != 1:
                raise ValueError(
                    f"{self.name} must be a scalar (a one-element tensor), got shape "
                    f"{tuple(value.shape)}"
                )
            if not self.integer and not value.is_floating_point():
                raise ValueError(f"{self.name} must be a floating tensor, got {value.dtype}")
            got = float(value.detach().reshape(()).item())
        else:
            try:
                got = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"{self.name} must be {self.rule}, got {type(value).__name__}"
                ) from None
        if not math.isfinite(got) or got not in self.interval:
            raise ValueError(f"{self.name} must be {self.rule}, got {got!r}")
        if self.integer and got != int(got):
            raise ValueError(f"{self.name} must be {self.rule}, got {got!r}")
        return value

    def typical_range(self) -> tuple[float, float]:
        if self.typical is not None:
            return self.typical
        lo = max(self.interval.low, -5.0)
        hi = min(self.interval.high, 5.0)
        if lo == self.interval.low and not self.interval.low_closed:
            lo = lo + min(1e-3, (hi - lo) / 10)
        return lo, hi

    def sample(self, rng: random.Random) -> float:
        lo, hi = self.typical_range()
        x = rng.uniform(lo, hi)
        return float(round(x)) if self.integer else x


@dataclass(frozen=True)
class Array:
    """A floating tensor argument with named dimensions, e.g. ``("B", "K")``; every entry must
    lie in ``interval`` (default: all finite reals), ``typical`` is the sampling range."""

    name: str
    dims: tuple[str, ...]
    interval: Interval = REALS
    typical: tuple[float, float] = (-3.0, 3.0)
    min_sizes: Mapping[str, int] = field(default_factory=dict)
    dtypes: tuple[str, ...] = FLOAT_DTYPES
    doc: str = ""

    def check(self, x: Any, sizes: dict[str, int]) -> dict[str, int]:
        """Check ``x`` and bind its dimension names into ``sizes`` (a mismatch with a size bound
        by an earlier argument is an error). Returns ``sizes``."""
        if not _is_tensor(x):
            raise ValueError(f"{self.name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != len(self.dims):
            shape = "(" + ", ".join(self.dims) + ")"
            raise ValueError(
                f"{self.name} must have shape {shape} ({len(self.dims)} dims), got {tuple(x.shape)}"
            )
        if str(x.dtype).removeprefix("torch.") not in self.dtypes:
            raise ValueError(f"{self.name} must have a dtype in {self.dtypes}, got {x.dtype}")
        for d, n in zip(self.dims, x.shape, strict=True):
            need = self.min_sizes.get(d, 1)
            if n < need:
                raise ValueError(f"{self.name}: dimension {d} must be >= {need}, got {n}")
            if d in sizes and sizes[d] != n:
                raise ValueError(
                    f"{self.name}: dimension {d} is {n} but an earlier argument has {d} = "
                    f"{sizes[d]}"
                )
            sizes[d] = int(n)
        if x.numel():
            v = x.detach()
            lo, hi = float(v.min()), float(v.max())
            if not (math.isfinite(lo) and math.isfinite(hi)) and self.interval == REALS:
                raise ValueError(f"{self.name} must be finite (no NaN or inf entries)")
            if (
                math.isnan(lo)
                or math.isnan(hi)
                or lo not in self.interval
                or hi not in self.interval
            ):
                raise ValueError(
                    f"{self.name}: every entry must be in {self.interval}, got range "
                    f"[{lo:g}, {hi:g}]"
                )
        return sizes

    def sample(self, rng: random.Random, sizes: Mapping[str, int]) -> list[Any]:
        """A nested list of the declared shape with entries drawn from ``typical``."""
        lo, hi = self.typical

        def build(k: int) -> list[Any]:
            n = sizes[self.dims[k]]
            if k == len(self.dims) - 1:
                return [rng.uniform(lo, hi) for _ in range(n)]
            return [build(k + 1) for _ in range(n)]

        return build(0)


@dataclass(frozen=True)
class Domain:
    """The input domain of one loss: its tensor arguments, its scalar parameters and the edge
    policies (name -> what the loss does there) that documentation and audits show."""

    arrays: tuple[Array, ...] = ()
    params: tuple[Param, ...] = ()
    edges: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [a.name for a in self.arrays] + [p.name for p in self.params]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"Domain: argument names must be unique, repeated {sorted(dup)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arrays) + tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def validate(self, values: Mapping[str, Any]) -> dict[str, int]:
        """Check every declared argument present in ``values``; returns the bound sizes."""
        sizes: dict[str, int] = {}
        for a in self.arrays:
            if a.name in values:
                a.check(values[a.name], sizes)
        for p in self.params:
            if p.name in values:
                p.check(values[p.name])
        return sizes

    def sample(self, rng: random.Random, sizes: Mapping[str, int]) -> dict[str, Any]:
        """One random point: nested lists for the arrays, floats for the parameters."""
        out: dict[str, Any] = {a.name: a.sample(rng, sizes) for a in self.arrays}
        out.update({p.name: p.sample(rng) for p in self.params})
        return out

    def extreme_points(self, rng: random.Random, sizes: Mapping[str, int]) -> list[dict[str, Any]]:
        """Points at every declared parameter extreme (the other parameters typical), and arrays
        scaled to the ends of their typical range."""
        base = self.sample(rng, sizes)
        out: list[dict[str, Any]] = []
        for p in self.params:
            for e in p.extremes:
                out.append({**base, p.name: e})
        return out


def dims_of(arrays: Iterable[Array]) -> tuple[str, ...]:
    """The distinct dimension names of ``arrays``, in order of first appearance."""
    seen: dict[str, None] = {}
    for a in arrays:
        for d in a.dims:
            seen.setdefault(d, None)
    return tuple(seen)
