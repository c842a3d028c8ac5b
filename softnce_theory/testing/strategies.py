"""Hypothesis strategies for contrastive-loss inputs, composable with ``@given``.

Every strategy draws NumPy arrays (convert with :func:`as_tensor`) and is bounded by default:
logits up to ``|x| <= 1e4``, temperatures log-uniform in [1e-3, 1e3], small batches. The random
content comes from a drawn seed, while the *structure* (sizes, scale, target kind, label layout)
is drawn by Hypothesis directly, so a failing example shrinks to the smallest batch, the smallest
scale and the simplest kind that still fail.

Strategies (all keyword-configurable):

* :func:`logits` -- ``(n, c)`` logits with a log-uniform scale up to ``max_abs``;
* :func:`simplex_targets` -- rows on the simplex: one-hot, uniform, near-degenerate, mixup,
  smoothed, Dirichlet (:data:`TARGET_KINDS`);
* :func:`noise_distributions` -- a class prior ``q``, optionally with zero-probability classes;
* :func:`temperatures` -- log-uniform temperatures;
* :func:`epsilons` -- label-smoothing strengths;
* :func:`class_labels` -- integer labels with a controlled class multiplicity
  (:data:`LABEL_LAYOUTS`: singleton classes, single-class batches, instance pairs, ...);
* :func:`labelled_embeddings` -- raw (unnormalised) embeddings with labels;
* :func:`query_key_pairs` -- raw query/key rows for in-batch InfoNCE;
* :func:`from_domain` -- examples of a declared :class:`~softnce_theory.domain.Domain`: float
  arrays entry by entry in their typical range, simplex arrays with the target kinds above,
  labels with the layouts above (within ``Labels.classes``), optional dimensions present or
  not, parameters in their typical range (and, on request, at their declared extremes). The
  generic contract of a family declared from its definition and the ``declared_domain``
  property of every built-in contract draw from it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from softnce_theory.domain import Array, Domain, Interval, Labels, Param, dims_of

TARGET_KINDS = ("onehot", "uniform", "near_degenerate", "mixup", "smoothed", "dirichlet")

#: label layouts of :func:`class_labels` (the first is the one a failing example shrinks to)
LABEL_LAYOUTS = (
    "random",  # labels uniform in [0, num_classes): multiplicity varies, singletons occur
    "instance_pairs",  # every class has exactly two members (SimCLR-style instance labels)
    "with_singletons",  # at least one singleton class and at least one class with >= 2 members
    "all_singletons",  # every label distinct: no anchor has a positive
    "single_class",  # every label equal: no anchor has a negative
    "balanced",  # about k classes of (nearly) equal size, every class >= 2
)

IntOrStrategy = int | st.SearchStrategy[int]

# default size strategies (module-level singletons; strategies are immutable)
_ROWS = st.integers(1, 6)
_CLASSES = st.integers(2, 8)
_BATCH = st.integers(2, 10)
_LABEL_CLASSES = st.integers(1, 4)
_DIMS = st.integers(2, 6)
_PAIRS = st.integers(1, 8)


def as_tensor(
    x: Any, dtype: torch.dtype = torch.float64, requires_grad: bool = False
) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=dtype, requires_grad=requires_grad)


def _resolve(draw: Any, v: IntOrStrategy) -> int:
    return int(draw(v)) if isinstance(v, st.SearchStrategy) else int(v)


def _rng(draw: Any) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


@st.composite
def temperatures(draw: Any, min_value: float = 1e-3, max_value: float = 1e3) -> float:
    """Log-uniform temperature in ``[min_value, max_value]`` (shrinks towards ``min_value``)."""
    if not 0 < min_value <= max_value:
        raise ValueError(f"need 0 < min_value <= max_value, got {min_value}, {max_value}")
    e = draw(st.floats(np.log10(min_value), np.log10(max_value)))
    return float(min(max(10**e, min_value), max_value))


@st.composite
def epsilons(draw: Any, min_value: float = 0.0, max_value: float = 1.0) -> float:
    """Label-smoothing strength in ``[min_value, max_value]``; the end points are drawn often."""
    if not 0.0 <= min_value <= max_value <= 1.0:
        raise ValueError(f"need 0 <= min_value <= max_value <= 1, got {min_value}, {max_value}")
    return float(
        draw(st.one_of(st.floats(min_value, max_value), st.sampled_from((min_value, max_value))))
    )


@st.composite
def logits(
    draw: Any,
    n: IntOrStrategy = _ROWS,
    c: IntOrStrategy = _CLASSES,
    max_abs: float = 1e4,
    min_abs: float = 1e-2,
) -> np.ndarray:
    """``(n, c)`` logits: a unit-normal pattern times a log-uniform scale in ``[min_abs, max_abs]``.

    The pattern is divided by ``max(1, max|z|)``, so no entry exceeds the drawn scale (the
    largest is the scale itself unless every ``|z| < 1``) and ``max_abs`` bounds every logit.
    """
    n_, c_ = _resolve(draw, n), _resolve(draw, c)
    rng = _rng(draw)
    lo = min(np.log10(min_abs), np.log10(max_abs))
    scale = 10 ** draw(st.floats(lo, float(np.log10(max_abs))))
    z = rng.standard_normal((n_, c_))
    return np.clip(z / max(1.0, np.abs(z).max()) * scale, -max_abs, max_abs)


def _targets(rng: np.random.Generator, kind: str, n: int, c: int) -> np.ndarray:
    y = rng.integers(0, c, size=n)
    eye = np.eye(c)
    if kind == "onehot":
        a = eye[y]
    elif kind == "uniform":
        a = np.full((n, c), 1.0 / c)
    elif kind == "near_degenerate":
        a = eye[y] * (1 - 1e-9) + 1e-9 / c
    elif kind == "mixup":
        lam = rng.beta(0.8, 0.8, size=(n, 1))
        a = lam * eye[y] + (1 - lam) * eye[y[::-1]]
    elif kind == "smoothed":
        eps = rng.uniform(0, 0.3)
        a = eye[y] * (1 - eps) + eps / c
    elif kind == "dirichlet":
        a = rng.dirichlet(np.full(c, 0.5), size=n)
    else:
        raise ValueError(f"unknown target kind {kind!r}; expected one of {TARGET_KINDS}")
    return a / a.sum(1, keepdims=True)


@st.composite
def simplex_targets(draw: Any, n: int, c: int, kinds: tuple[str, ...] = TARGET_KINDS) -> np.ndarray:
    """``(n, c)`` rows on the simplex of the given kinds (one kind per draw)."""
    kind = draw(st.sampled_from(kinds))
    return _targets(_rng(draw), kind, n, c)


@st.composite
def noise_distributions(
    draw: Any, c: int, allow_zero: bool = False, min_prob: float = 0.0
) -> np.ndarray:
    """A length-``c`` probability vector; with ``allow_zero`` some classes may get exactly 0.

    ``min_prob`` (applied before normalisation) keeps the non-zero entries away from 0.
    """
    rng = _rng(draw)
    q = rng.dirichlet(np.ones(c)) + min_prob
    if allow_zero and c > 1 and draw(st.booleans()):
        k = draw(st.integers(1, c - 1))
        q[rng.choice(c, size=k, replace=False)] = 0.0
    return q / q.sum()


def _layout_labels(rng: np.random.Generator, layout: str, n: int, k: int) -> np.ndarray:
    if layout == "random":
        return rng.integers(0, max(1, k), size=n)
    if layout == "instance_pairs":
        lab = np.arange(n) // 2  # an odd n leaves the last sample a singleton
    elif layout == "with_singletons":
        if n < 3:
            raise ValueError(f"layout 'with_singletons' needs n >= 3, got {n}")
        n_single = int(rng.integers(1, n - 1))  # 1 .. n-2 singletons, >= 2 others
        rest = n - n_single
        n_big = int(rng.integers(1, rest // 2 + 1))
        big = np.sort(rng.integers(0, n_big, size=rest))
        big[: 2 * n_big : 2] = np.arange(n_big)  # every big class gets >= 2 members
        big[1 : 2 * n_big : 2] = np.arange(n_big)
        lab = np.concatenate([big, n_big + np.arange(n_single)])
    elif layout == "all_singletons":
        lab = np.arange(n)
    elif layout == "single_class":
        lab = np.zeros(n, dtype=np.int64)
    elif layout == "balanced":
        if n < 2:
            raise ValueError(f"layout 'balanced' needs n >= 2, got {n}")
        m = max(2, n // max(1, k))
        lab = np.minimum(np.arange(n) // m, n // m - 1)  # a short last class joins the previous
    else:
        raise ValueError(f"unknown label layout {layout!r}; expected one of {LABEL_LAYOUTS}")
    perm = rng.permutation(n)
    return np.asarray(lab, dtype=np.int64)[perm]


@st.composite
def class_labels(
    draw: Any,
    n: IntOrStrategy = _BATCH,
    layouts: str | tuple[str, ...] = LABEL_LAYOUTS,
    num_classes: IntOrStrategy = _LABEL_CLASSES,
) -> np.ndarray:
    """Integer labels of length ``n`` with a controlled class multiplicity.

    ``layouts`` is one name of :data:`LABEL_LAYOUTS` or a tuple to choose from. ``num_classes``
    is used by ``"random"`` (labels in ``[0, num_classes)``) and ``"balanced"`` (that many classes).
    Layouts that need a minimum batch size raise ``ValueError`` when ``n`` is too small.
    """
    choices = (layouts,) if isinstance(layouts, str) else tuple(layouts)
    layout = draw(st.sampled_from(choices))
    n_, k_ = _resolve(draw, n), _resolve(draw, num_classes)
    return _layout_labels(_rng(draw), layout, n_, k_)


def _directions(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    z = rng.standard_normal((n, d))
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    while bool((norms < 1e-3).any()):  # practically never; keeps the direction well defined
        z = rng.standard_normal((n, d))
        norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z / norms


@st.composite
def labelled_embeddings(
    draw: Any,
    n: IntOrStrategy = _BATCH,
    d: IntOrStrategy = _DIMS,
    num_classes: IntOrStrategy = _LABEL_CLASSES,
    scale: float = 3.0,
    *,
    layouts: str | tuple[str, ...] | None = None,
    norm_range: tuple[float, float] | None = None,
    cluster: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw (unnormalised) ``(n, d)`` embeddings with labels in ``[0, num_classes)``.

    By default the embeddings are i.i.d. normal times ``scale`` and the labels uniform in
    ``[0, num_classes)``: with few classes and several samples, class multiplicity varies, and
    singleton classes and single-class batches both occur (``num_classes=1`` forces the latter).

    Keyword options: ``layouts`` picks the label layout(s) (see :func:`class_labels`);
    ``norm_range=(lo, hi)`` gives every row a log-uniform norm in that range (directions uniform);
    ``cluster=True`` pulls same-class rows towards a shared class direction (realistic batches
    with large positive similarities).
    """
    n_, d_, k_ = _resolve(draw, n), _resolve(draw, d), _resolve(draw, num_classes)
    if layouts is None and norm_range is None and not cluster:
        rng = _rng(draw)
        emb = rng.standard_normal((n_, d_)) * scale
        return emb, rng.integers(0, k_, size=n_)
    if layouts is None:
        rng = _rng(draw)
        labels = rng.integers(0, k_, size=n_)
    else:
        labels = draw(class_labels(n_, layouts, k_))
        rng = _rng(draw)
    u = _directions(rng, n_, d_)
    if cluster:
        centres = _directions(rng, int(labels.max()) + 1, d_)
        w = draw(st.floats(0.0, 4.0))
        u = u + w * centres[labels]
        u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
    lo, hi = norm_range if norm_range is not None else (scale, scale)
    r = 10 ** rng.uniform(np.log10(lo), np.log10(hi), size=(n_, 1))
    return u * r, labels


@st.composite
def query_key_pairs(
    draw: Any,
    n: IntOrStrategy = _PAIRS,
    d: IntOrStrategy = _DIMS,
    norm_range: tuple[float, float] = (0.1, 10.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Raw ``(n, d)`` query and key rows; key ``i`` is a noisy copy of query ``i``'s direction.

    The noise level is drawn (0 gives keys parallel to their queries), and every row gets a
    log-uniform norm in ``norm_range``.
    """
    n_, d_ = _resolve(draw, n), _resolve(draw, d)
    noise = draw(st.sampled_from((0.0, 0.3, 1.0, 3.0)))
    rng = _rng(draw)
    q = _directions(rng, n_, d_)
    k = q + noise * rng.standard_normal((n_, d_))
    k = k / np.maximum(np.linalg.norm(k, axis=1, keepdims=True), 1e-12)
    lo, hi = norm_range
    rq = 10 ** rng.uniform(np.log10(lo), np.log10(hi), size=(n_, 1))
    rk = 10 ** rng.uniform(np.log10(lo), np.log10(hi), size=(n_, 1))
    return q * rq, k * rk


# ----------------------------------------------------------------------------- declared domains


def _floats_in(lo: float, hi: float, interval: Interval) -> st.SearchStrategy[float]:
    """Uniform-ish floats in ``[lo, hi]``, leaving out an end that ``interval`` excludes."""
    return st.floats(
        lo,
        hi,
        exclude_min=lo == interval.low and not interval.low_closed and lo < hi,
        exclude_max=hi == interval.high and not interval.high_closed and lo < hi,
        allow_nan=False,
        allow_infinity=False,
    )


def _clip(lo: float, hi: float, interval: Interval, what: str) -> tuple[float, float]:
    lo, hi = max(lo, interval.low), min(hi, interval.high)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise ValueError(f"{what}: the typical range and {interval} leave no finite values")
    return lo, hi


def array_entries(a: Array) -> st.SearchStrategy[float]:
    """One entry of ``a``: within its typical range, inside its interval."""
    lo, hi = _clip(a.typical[0], a.typical[1], a.interval, f"Array {a.name}")
    return _floats_in(lo, hi, a.interval)


def param_values(p: Param) -> st.SearchStrategy[float]:
    """A value of ``p`` in its typical range: ``int`` values for an integer parameter,
    log-uniform (shrinking towards the lower end) when the range is positive and spans at
    least two decades, else ``st.floats`` in the range (which favours its ends and simple
    values)."""
    lo, hi = _clip(*p.typical_range(), p.interval, f"Param {p.name}")
    if p.integer:
        return st.integers(math.ceil(lo), math.floor(hi))
    if lo > 0 and hi / lo >= 100:
        # log-uniform: one of 32 equal bins of the exponent, then a position in the bin. (Not
        # st.floats on the exponent: its preferred simple values would put most draws at
        # exactly 10**0 = 1, where a temperature bug is invisible.) Shrinks towards lo.
        a, b, bins = math.log10(lo), math.log10(hi), 32
        return st.tuples(st.sampled_from(range(bins)), st.floats(0.0, 1.0)).map(
            lambda kf: float(min(max(10.0 ** (a + (b - a) * (kf[0] + kf[1]) / bins), lo), hi))
        )
    return _floats_in(lo, hi, p.interval)


def _param_value(p: Param, v: float) -> float:
    return int(v) if p.integer else float(v)


#: the least batch size of the label layouts that need one (the others accept any size)
_LAYOUT_MIN_N = {"with_singletons": 3, "balanced": 2}


def _labels(draw: Any, n: int, classes: int | None) -> np.ndarray:
    """``n`` int64 labels of a layout of :data:`LABEL_LAYOUTS` that fits ``n`` (see
    :func:`class_labels`). With ``classes`` the layout's classes are mapped one-to-one onto
    random classes in ``[0, classes)`` (a layout that needs more classes falls back to
    ``"random"``); without, they are the layout's own non-negative ints."""
    fits = tuple(x for x in LABEL_LAYOUTS if n >= _LAYOUT_MIN_N.get(x, 0))
    lab = draw(class_labels(n, fits, _LABEL_CLASSES if classes is None else classes))
    if classes is None:
        return lab
    rng = _rng(draw)
    uniq, inv = np.unique(lab, return_inverse=True)
    if len(uniq) > classes:
        return rng.integers(0, classes, size=n, dtype=np.int64)
    return rng.permutation(classes)[: len(uniq)][inv].astype(np.int64)


def _simplex(draw: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Probability rows over the last dimension: a vector as :func:`noise_distributions`
    (no zero class), rows as :func:`simplex_targets` (one target kind per array)."""
    if len(shape) == 1:
        return np.asarray(draw(noise_distributions(shape[0])), dtype=np.float64)
    rows = int(np.prod(shape[:-1]))
    return np.asarray(draw(simplex_targets(rows, shape[-1])), dtype=np.float64).reshape(shape)


def from_domain(
    domain: Domain,
    *,
    sizes: Mapping[str, IntOrStrategy] | None = None,
    max_size: int = 6,
    params: Mapping[str, float | st.SearchStrategy[float]] | None = None,
    extremes: bool = False,
) -> st.SearchStrategy[dict[str, Any]]:
    """Examples of a declared domain: ``{argument name: value}`` for every array (optional
    ones included: a caller uses the names it needs) and parameter.

    * **Sizes.** Each dimension name (``B``, ``C``, ...) is drawn once, from its largest
      ``Array.min_sizes`` entry (default 1) to ``max(that, max_size)``, unless ``sizes`` gives
      it (an int or a strategy). An array with ``optional`` dimensions has them or not (drawn;
      shrinks to without).
    * **Float arrays** (float64): entries drawn one by one in ``Array.typical`` (clipped to the
      interval, open ends left out), so a failure shrinks entry by entry. A ``simplex`` array
      has probability rows: :func:`simplex_targets` kinds for rows, :func:`noise_distributions`
      for a vector.
    * **Labels** (int64): a layout of :data:`LABEL_LAYOUTS` that fits the size (repeated
      classes, singletons, one class, ...); with ``Labels.classes`` their classes are distinct
      values in ``[0, size of that dimension)``, else non-negative ints below 4.
    * **Parameters** come from :func:`param_values` (``int`` for an integer parameter), also
      from ``Param.extremes`` when ``extremes`` is true, unless ``params`` gives a value or a
      strategy. Of each ``Domain.exclusive`` group one parameter is drawn (the one ``params``
      names, if any), as the loss accepts only one.
    """
    if max_size < 1:
        raise ValueError(f"max_size must be >= 1, got {max_size}")
    dims = dims_of(domain.arrays)
    given = dict(params or {})
    for name in sizes or {}:
        if name not in dims:
            raise ValueError(f"sizes: {name!r} is not a dimension of the domain {dims}")
    for name in given:
        if name not in [p.name for p in domain.params]:
            raise ValueError(f"params: {name!r} is not a parameter of the domain")
    for group in domain.exclusive:
        if len(set(group) & set(given)) > 1:
            raise ValueError(f"params: {' and '.join(group)} are mutually exclusive")
    entries = {a.name: array_entries(a) for a in domain.arrays if isinstance(a, Array)}
    values: dict[str, st.SearchStrategy[float]] = {}
    for p in domain.params:
        values[p.name] = param_values(p)
        if extremes and p.extremes:
            values[p.name] = st.one_of(values[p.name], st.sampled_from(p.extremes))
    floor = domain.min_sizes()

    @st.composite
    def draw_example(draw: Any) -> dict[str, Any]:
        bound: dict[str, int] = {}
        for d in dims:
            g = (sizes or {}).get(d)
            n = (
                _resolve(draw, g)
                if g is not None
                else draw(st.integers(floor[d], max(floor[d], max_size)))
            )
            if n < floor[d]:
                raise ValueError(f"sizes: dimension {d} must be >= {floor[d]}, got {n}")
            bound[d] = n
        out: dict[str, Any] = {}
        for a in domain.arrays:
            layouts = a.layouts()
            ds = layouts[0] if len(layouts) == 1 or draw(st.booleans()) else layouts[1]
            shape = tuple(bound[d] for d in ds)
            size = int(np.prod(shape))
            if isinstance(a, Labels):
                k = bound[a.classes] if a.classes is not None else None
                out[a.name] = _labels(draw, size, k).reshape(shape)
            elif a.simplex:
                out[a.name] = _simplex(draw, shape)
            else:
                flat = draw(st.lists(entries[a.name], min_size=size, max_size=size))
                out[a.name] = np.asarray(flat, dtype=np.float64).reshape(shape)
        left_out: set[str] = set()
        for group in domain.exclusive:
            named = [n for n in group if n in given]
            keep = named[0] if named else draw(st.sampled_from(group))
            left_out |= set(group) - {keep}
        for p in domain.params:
            if p.name in left_out:
                continue
            v = given.get(p.name)
            if v is None:
                out[p.name] = _param_value(p, draw(values[p.name]))
            else:
                out[p.name] = _param_value(p, draw(v) if isinstance(v, st.SearchStrategy) else v)
        return out

    return draw_example()


__all__ = [
    "LABEL_LAYOUTS",
    "TARGET_KINDS",
    "as_tensor",
    "class_labels",
    "epsilons",
    "from_domain",
    "labelled_embeddings",
    "logits",
    "noise_distributions",
    "query_key_pairs",
    "simplex_targets",
    "temperatures",
]
