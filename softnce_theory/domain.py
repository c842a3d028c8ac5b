"""Declared input domains: one declaration per loss drives its validation, the engine's random
points, the declared extremes and the audit's Hypothesis strategies.

The idea follows scipy.stats' new distribution infrastructure (parameters and their domains are
declared once, and every method derives from the declaration); no code is shared with it.

* :class:`Interval` is a set of reals with open or closed ends, e.g. ``Interval(0, inf)`` is
  :math:`(0, \\infty)`.
* :class:`Param` is a scalar argument (a Python number or a 0-d tensor, which keeps its
  gradient): ``Param("temperature", Interval(0, inf))``.
* :class:`Array` is a floating tensor argument with named dimensions:
  ``Array("logits", ("B", "C"))``; ``simplex=True`` makes its rows probability vectors.
* :class:`Labels` is an integer tensor of class labels: ``Labels("labels", ("B",), classes="C")``.
* :class:`Domain` groups them with the *typical* ranges random points are drawn from, the
  *extremes* at which a loss must stay finite, and the edge policies.

A dimension name is bound by the first argument that has it; every later argument must agree
(``targets: dimension C is 5 but logits has C = 4``). Validation errors are
:class:`ValueError` whose message starts with the argument's name and states the rule, e.g.
``temperature must be finite and > 0, got -1.0``.

This module imports neither torch nor sympy at import time (the CLI's ``--help`` stays light);
tensor checks import torch when a tensor is actually passed.
"""

from __future__ import annotations

import math
import numbers
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


def _is_number(x: object) -> bool:
    """A real Python or numpy number (``bool`` is not one)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and type(x).__name__ != "bool_"


@dataclass(frozen=True)
class Param:
    """A scalar argument: a real number (Python or numpy) or a one-element floating tensor.

    ``typical`` is the range the engine's random points and the strategies draw from (default:
    the interval clipped to ``[-5, 5]``); ``extremes`` are the declared edge values at which the
    loss must stay finite (e.g. a temperature of ``1e-4``). An ``integer`` parameter accepts
    Python / numpy integers only (``2.0`` and ``True`` are refused).
    """

    name: str
    interval: Interval = REALS
    integer: bool = False
    typical: tuple[float, float] | None = None
    extremes: tuple[float, ...] = ()
    doc: str = ""

    @property
    def rule(self) -> str:
        """The domain in words: ``finite and > 0``, ``finite and >= 0``, ``lie in [0, 1]``,
        ``>= 1`` (an integer parameter) or ``finite``."""
        iv = self.interval
        lo, hi = math.isfinite(iv.low), math.isfinite(iv.high)
        if lo and hi:
            return f"lie in {iv}"
        parts = []
        if lo:
            parts.append(f"{'>=' if iv.low_closed else '>'} {_fmt(iv.low)}")
        if hi:
            parts.append(f"{'<=' if iv.high_closed else '<'} {_fmt(iv.high)}")
        bounds = " and ".join(parts)
        if self.integer:
            return bounds
        return f"finite and {bounds}" if bounds else "finite"

    def _must(self) -> str:
        r = self.rule
        return f"{self.name} must {r}" if r.startswith("lie ") else f"{self.name} must be {r}"

    def _check_value(self, v: float, shown: object) -> None:
        if not (math.isfinite(v) and v in self.interval) or (self.integer and v != int(v)):
            raise ValueError(f"{self._must()}, got {shown!r}")

    def check(self, value: Any, *, check_values: bool = True) -> Any:
        """``value`` checked against the declaration, else a ``ValueError`` naming the rule
        (``temperature must be finite and > 0, got -1.0``).

        A real number is returned as a ``float`` (an ``int`` for an integer parameter). A
        one-element floating tensor is returned as a 0-d tensor **with its autograd graph** (a
        learnable parameter; never detached); its value is read only when ``check_values`` (the
        torch layer turns it off while ``torch.compile`` traces) and it is not a ``meta``
        tensor. Integer and bool tensors are refused."""
        name = self.name
        if self.integer:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(
                    f"{name} must be an integer {self.rule}, got {type(value).__name__} {value!r}"
                )
            k = int(value)
            self._check_value(float(k), k)
            return k
        if _is_tensor(value):
            if not value.dtype.is_floating_point:
                raise ValueError(
                    f"{name} must be a real number or a floating tensor (learnable), got dtype "
                    f"{value.dtype}"
                )
            if value.numel() != 1:
                raise ValueError(
                    f"{name} must be a scalar (one element), got shape {tuple(value.shape)}"
                )
            t = value.reshape(())
            if check_values and not t.is_meta:
                v = float(t.detach())
                self._check_value(v, v)
            return t
        if not _is_number(value):
            raise ValueError(f"{name} must be a real number, got {type(value).__name__}")
        v = float(value)
        self._check_value(v, value)
        return v

    def typical_range(self) -> tuple[float, float]:
        if self.typical is not None:
            return self.typical
        lo = max(self.interval.low, -5.0)
        hi = min(self.interval.high, 5.0)
        if lo == self.interval.low and not self.interval.low_closed:
            lo = lo + min(1e-3, (hi - lo) / 10)
        return lo, hi

    def sample(self, rng: random.Random) -> float | int:
        """A value drawn uniformly from the typical range (an ``int`` for an integer one)."""
        lo, hi = self.typical_range()
        x = rng.uniform(lo, hi)
        return round(x) if self.integer else x


#: what a loss does with NaN / inf entries of a floating array
NONFINITE_POLICIES = ("reject", "propagate")


@dataclass(frozen=True)
class Array:
    """A floating tensor argument with named dimensions, e.g. ``("B", "K")``.

    * ``interval``: every entry must lie in it; with the default (all reals) entries must be
      finite, unless ``nonfinite="propagate"`` (the loss computes NaN/inf through: logits and
      embeddings are data the loss computes on, so no data-dependent check runs on them).
    * ``simplex``: rows (the last dimension) are probability vectors: finite, ``>= 0``, summing
      to 1 within ``sqrt(eps)`` of the dtype.
    * ``optional``: dimensions that may be absent (``("B", "V", "D")`` with ``optional=("V",)``
      accepts ``(B, D)`` and ``(B, V, D)``).
    * ``dtype_of``: the name of an earlier argument whose dtype this one must share.
    * ``same_device``: it must live on the first tensor argument's device (default); ``False``
      for an argument the loss moves itself (a small class prior).
    * ``min_sizes``: the least size of a dimension (default 1: no empty dimension).
    * ``typical``: the range random entries are drawn from (not a constraint).
    * ``required``: ``False`` for an optional argument (``None`` by default); random points
      (:meth:`Domain.sample`) leave it out, since its cross-argument rules are the loss's own.
    """

    name: str
    dims: tuple[str, ...]
    interval: Interval = REALS
    typical: tuple[float, float] = (-3.0, 3.0)
    min_sizes: Mapping[str, int] = field(default_factory=dict)
    dtypes: tuple[str, ...] = FLOAT_DTYPES
    optional: tuple[str, ...] = ()
    simplex: bool = False
    nonfinite: str = "reject"
    dtype_of: str | None = None
    same_device: bool = True
    required: bool = True
    doc: str = ""

    def __post_init__(self) -> None:
        if self.nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"Array.nonfinite must be one of {NONFINITE_POLICIES}")
        if not set(self.optional) <= set(self.dims):
            raise ValueError(f"Array {self.name}: optional dims must be among {self.dims}")

    def layouts(self) -> tuple[tuple[str, ...], ...]:
        """The accepted dimension layouts: all dims, then without the optional ones."""
        short = tuple(d for d in self.dims if d not in self.optional)
        return (self.dims, short) if self.optional else (self.dims,)

    def sample(self, rng: random.Random, sizes: Mapping[str, int]) -> list[Any]:
        """A nested list of one of the declared layouts (chosen at random when some dimensions
        are optional): entries from ``typical``, or, for a simplex array, rows of uniform
        entries normalised to sum 1."""
        lo, hi = self.typical
        layouts = self.layouts()
        dims = layouts[rng.randrange(len(layouts))]

        def build(k: int) -> list[Any]:
            n = sizes[dims[k]]
            if k == len(dims) - 1:
                if self.simplex:
                    w = [rng.uniform(0.05, 1.0) for _ in range(n)]
                    return [v / sum(w) for v in w]
                return [rng.uniform(lo, hi) for _ in range(n)]
            return [build(k + 1) for _ in range(n)]

        return build(0)


@dataclass(frozen=True)
class Labels:
    """An integer tensor of class labels with named dimensions (usually ``("B",)``).

    ``classes`` names the dimension of another argument that counts the classes (the labels
    must lie in ``[0, size)``, e.g. ``"C"`` for logits of shape ``(B, C)``); ``None`` requires
    only non-negative labels (SupCon's classes are whatever labels appear)."""

    name: str
    dims: tuple[str, ...] = ("B",)
    classes: str | None = None
    required: bool = True
    doc: str = ""

    def layouts(self) -> tuple[tuple[str, ...], ...]:
        return (self.dims,)

    def sample(self, rng: random.Random, sizes: Mapping[str, int]) -> list[Any]:
        """Labels in ``[0, size of classes)``, or in ``[0, max(1, n // 2))`` without a classes
        dimension (so repeated classes and singletons both occur)."""

        def build(k: int) -> list[Any]:
            n = sizes[self.dims[k]]
            if k == len(self.dims) - 1:
                hi = sizes[self.classes] if self.classes else max(1, n // 2)
                return [rng.randrange(hi) for _ in range(n)]
            return [build(k + 1) for _ in range(n)]

        return build(0)


Tensor = Array | Labels


class _Bound:
    """Dimension sizes bound so far (with the argument that bound each), and the first
    tensor's device and each argument's dtype."""

    def __init__(self) -> None:
        self.sizes: dict[str, tuple[int, str]] = {}
        self.device: tuple[Any, str] | None = None
        self.dtypes: dict[str, Any] = {}


def _check_structure(a: Tensor, x: Any, bound: _Bound) -> None:
    """Type, dtype, rank, sizes, shared dims and device of one tensor argument."""
    name = a.name
    if not _is_tensor(x):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    dt = str(x.dtype).removeprefix("torch.")
    if isinstance(a, Labels):
        if x.dtype.is_floating_point or x.dtype.is_complex or dt == "bool":
            raise ValueError(f"{name} must have an integer dtype, got {x.dtype}")
    elif dt not in a.dtypes:
        raise ValueError(f"{name} must have dtype {_words(a.dtypes)}, got {x.dtype}")
    # labels whose dimensions are all bound already: name the exact shape, e.g. (3,)
    exact = (
        "(" + "".join(f"{bound.sizes[d][0]}," for d in a.dims) + ")"
        if isinstance(a, Labels) and all(d in bound.sizes for d in a.dims)
        else None
    )
    dims = next((ds for ds in a.layouts() if len(ds) == x.dim()), None)
    if dims is None:
        if exact:
            raise ValueError(f"{name} must have shape {exact}, got {tuple(x.shape)}")
        raise ValueError(f"{name} must have shape {_shape_rule(a)}, got shape {tuple(x.shape)}")
    for i, (d, n) in enumerate(zip(dims, x.shape, strict=True)):
        need = a.min_sizes.get(d, 1) if isinstance(a, Array) else 1
        if d in bound.sizes and bound.sizes[d][0] != n:
            m, other = bound.sizes[d]
            if other == name and d in dims[:i]:
                raise ValueError(
                    f"{name}: its dimensions named {d} must be equal, got shape {tuple(x.shape)}"
                )
            if exact:
                raise ValueError(f"{name} must have shape {exact}, got {tuple(x.shape)}")
            raise ValueError(f"{name}: dimension {d} is {n} but {other} has {d} = {m}")
        if n < need:
            if i == 0 and need == 1:
                raise ValueError(f"{name} must be a non-empty batch (dimension {d} has size 0)")
            raise ValueError(f"{name}: dimension {d} must be >= {need}, got {n}")
        bound.sizes.setdefault(d, (int(n), name))
    moved_by_the_loss = isinstance(a, Array) and not a.same_device
    if not moved_by_the_loss:
        if bound.device is None:
            bound.device = (x.device, name)
        elif x.device != bound.device[0]:
            dev, ref = bound.device
            raise ValueError(f"{name} must be on the same device as {ref} ({dev}), got {x.device}")
    if isinstance(a, Array) and a.dtype_of is not None and a.dtype_of in bound.dtypes:
        want = bound.dtypes[a.dtype_of]
        if x.dtype != want:
            raise ValueError(
                f"{name} must have the same dtype as {a.dtype_of} ({want}), got {x.dtype}"
            )
    bound.dtypes[name] = x.dtype


def _shape_rule(a: Tensor) -> str:
    """``(B, V, D) or (B, D) (3-D or 2-D)``: the accepted layouts of ``a``."""
    shapes = " or ".join(_shape(ds) for ds in a.layouts())
    ranks = " or ".join(f"{len(ds)}-D" for ds in a.layouts())
    return f"{shapes} ({ranks})"


def _shape(dims: tuple[str, ...]) -> str:
    """``("B", "C")`` -> ``(B, C)``; ``("C",)`` -> ``(C,)``."""
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _words(names: tuple[str, ...]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _simplex_tol(x: Any) -> float:
    import torch

    return math.sqrt(torch.finfo(x.dtype).eps)


def _check_entries(a: Tensor, x: Any, bound: _Bound) -> None:
    """The data-dependent rules of one argument (entries, simplex rows, label range)."""
    name = a.name
    if x.is_meta or not x.numel():
        return
    v = x.detach()
    if isinstance(a, Labels):
        lo, hi = int(v.min()), int(v.max())
        if a.classes is None:
            if lo < 0:
                raise ValueError(f"{name} must be non-negative, found {lo}")
        else:
            k = bound.sizes[a.classes][0]
            if lo < 0 or hi >= k:
                raise ValueError(f"{name} must lie in [0, {k}); found values in [{lo}, {hi}]")
        return
    if a.simplex:
        import torch

        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"{name} must be finite (found NaN or Inf)")
        if bool((v < 0).any()):
            raise ValueError(f"{name} must be non-negative (found {float(v.min()):.3e})")
        t = _simplex_tol(v)
        dev = (v.double().sum(-1) - 1.0).abs()
        if bool((dev > t).any()):
            raise ValueError(
                f"{name} rows must sum to 1 (tolerance {t:.1e}); worst |sum - 1| = "
                f"{float(dev.max()):.3e}"
            )
        return
    if a.nonfinite == "propagate":
        return
    flo, fhi = float(v.min()), float(v.max())
    if a.interval == REALS:
        if not (math.isfinite(flo) and math.isfinite(fhi)):
            raise ValueError(f"{name} must be finite (no NaN or inf entries)")
    elif math.isnan(flo) or math.isnan(fhi) or flo not in a.interval or fhi not in a.interval:
        raise ValueError(
            f"{name}: every entry must be in {a.interval}, got range [{flo:g}, {fhi:g}]"
        )


@dataclass(frozen=True)
class Domain:
    """The input domain of one loss: its tensor arguments (:class:`Array`, :class:`Labels`), its
    scalar parameters (:class:`Param`), the edge policies (name -> what the loss does there),
    the cross-argument ``rules`` the loss checks itself (in words, for the docs) and the
    ``exclusive`` groups of parameters of which at most one may be given (``temperature`` or
    ``logit_scale``)."""

    arrays: tuple[Tensor, ...] = ()
    params: tuple[Param, ...] = ()
    edges: Mapping[str, str] = field(default_factory=dict)
    rules: tuple[str, ...] = ()
    exclusive: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        names = [a.name for a in self.arrays] + [p.name for p in self.params]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"Domain: argument names must be unique, repeated {sorted(dup)}")
        dims = {d for a in self.arrays for d in a.dims}
        for a in self.arrays:
            if isinstance(a, Labels) and a.classes is not None and a.classes not in dims:
                raise ValueError(f"Domain: {a.name}.classes {a.classes!r} is not a dimension")
        pnames = {p.name for p in self.params}
        for group in self.exclusive:
            if not set(group) <= pnames:
                raise ValueError(f"Domain: exclusive {group} names a non-parameter")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.arrays) + tuple(p.name for p in self.params)

    def min_sizes(self, *, required_only: bool = False) -> dict[str, int]:
        """The least size of each dimension (the largest ``Array.min_sizes`` entry of the arrays
        that have it; default 1), over every array or only the required ones."""
        arrays = [a for a in self.arrays if a.required or not required_only]
        return {
            d: max(
                a.min_sizes.get(d, 1) if isinstance(a, Array) else 1 for a in arrays if d in a.dims
            )
            for d in dims_of(arrays)
        }

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def validate(self, values: Mapping[str, Any], *, check_values: bool = True) -> dict[str, Any]:
        """Check every declared argument present in ``values`` (``None`` is an absent optional
        argument) and return them checked: tensors as given, parameters as :meth:`Param.check`
        returns them. Structure first (types, dtypes, shapes, shared dimensions, devices, in
        declaration order), then, when ``check_values``, the data-dependent rules. A violation
        is a ``ValueError`` whose message starts with the argument's name."""
        for group in self.exclusive:
            given = [n for n in group if values.get(n) is not None]
            if len(given) > 1:
                raise ValueError(f"{' and '.join(given)} are mutually exclusive; pass only one")
        bound = _Bound()
        present = [a for a in self.arrays if values.get(a.name) is not None]
        for a in present:
            _check_structure(a, values[a.name], bound)
        out: dict[str, Any] = {a.name: values[a.name] for a in present}
        for p in self.params:
            if values.get(p.name) is not None:
                out[p.name] = p.check(values[p.name], check_values=check_values)
        if check_values:
            for a in present:
                _check_entries(a, values[a.name], bound)
        return out

    def sample(self, rng: random.Random, sizes: Mapping[str, int]) -> dict[str, Any]:
        """One random point: nested lists for the required arrays (labels as ints), floats for
        the parameters (one, chosen at random, of each ``exclusive`` group)."""
        out: dict[str, Any] = {a.name: a.sample(rng, sizes) for a in self.arrays if a.required}
        keep = [g[rng.randrange(len(g))] for g in self.exclusive]
        left_out = {n for g, k in zip(self.exclusive, keep, strict=True) for n in g if n != k}
        out.update({p.name: p.sample(rng) for p in self.params if p.name not in left_out})
        return out

    def extreme_points(self, rng: random.Random, sizes: Mapping[str, int]) -> list[dict[str, Any]]:
        """Points at every declared parameter extreme (the other parameters typical)."""
        base = self.sample(rng, sizes)
        out: list[dict[str, Any]] = []
        for p in self.params:
            if p.name in base:
                out.extend({**base, p.name: e} for e in p.extremes)
        return out


def dims_of(arrays: Iterable[Tensor]) -> tuple[str, ...]:
    """The distinct dimension names of ``arrays``, in order of first appearance."""
    seen: dict[str, None] = {}
    for a in arrays:
        for d in a.dims:
            seen.setdefault(d, None)
    return tuple(seen)
