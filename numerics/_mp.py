"""Small mpmath helpers shared by the oracles.

The oracles are written straight from the papers' formulas and share no code with the torch
losses. These helpers only provide the log-space primitives (so that 50 digits are not defeated
by cancellation: at a logit gap of 1e4 a naive ``-log(softmax)`` is exactly 0 even at 50 digits)
and conversions. Every function evaluates at the caller's ``mp.dps``; use :func:`workdps`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import mpmath
from mpmath import mp

DEFAULT_DPS = 50
workdps = mpmath.workdps

MpVector = list[Any]  # list of mpf
MpMatrix = list[list[Any]]


def mpf(x: Any) -> Any:
    """Exact conversion of a Python/NumPy float (or str/int) to an mpf at the current precision."""
    return mp.mpf(x) if not hasattr(x, "item") else mp.mpf(x.item())


def vec(xs: Iterable[Any]) -> MpVector:
    return [mpf(x) for x in xs]


def mat(rows: Iterable[Iterable[Any]]) -> MpMatrix:
    """Convert a 2-D array-like (nested lists, NumPy array, CPU tensor via .tolist()) to mpf."""
    if hasattr(rows, "tolist"):
        rows = rows.tolist()
    return [vec(r) for r in rows]


def lse(xs: Sequence[Any]) -> Any:
    """log(sum(exp(x))) with the maximum factored out; ``-inf`` entries are allowed."""
    finite = [x for x in xs if x != mp.ninf]
    if not finite:
        return mp.ninf
    m = max(finite)
    if m == mp.inf:
        return mp.inf
    return m + mp.log(mp.fsum(mp.exp(x - m) for x in finite))


def log_softmax(xs: Sequence[Any]) -> MpVector:
    z = lse(xs)
    return [x - z for x in xs]


def neg_log_softmax(xs: Sequence[Any]) -> MpVector:
    """``-log softmax(x)_c`` without cancellation: ``(m - x_c) + log1p(sum_{k != a} e^{x_k - m})``
    with ``a`` the arg-max. Both terms are >= 0, so a value of e^-1000 keeps every digit, where
    ``lse(x) - x_c`` is exactly 0 even at 50 digits."""
    a = max(range(len(xs)), key=lambda k: xs[k])
    m = xs[a]
    rest = mp.fsum(mp.exp(x - m) for k, x in enumerate(xs) if k != a)
    tail = mp.log1p(rest)
    return [(m - x) + tail if k != a else tail for k, x in enumerate(xs)]


def softmax_complement(xs: Sequence[Any]) -> MpVector:
    """``1 - softmax(x)_c = sum_{k != c} softmax(x)_k`` without cancellation."""
    p = softmax(xs)
    return [mp.fsum(pk for k, pk in enumerate(p) if k != c) for c in range(len(p))]


def softmax(xs: Sequence[Any]) -> MpVector:
    z = lse(xs)
    return [mp.exp(x - z) for x in xs]


def dot(a: Sequence[Any], b: Sequence[Any]) -> Any:
    return mp.fsum(x * y for x, y in zip(a, b, strict=True))


def norm(a: Sequence[Any]) -> Any:
    return mp.sqrt(mp.fsum(x * x for x in a))


def xlogy(x: Any, y: Any) -> Any:
    """x*log(y) with the convention 0*log(0) = 0."""
    return mp.zero if x == 0 else x * mp.log(y)


def to_float(x: Any) -> float:
    return float(x)


def to_floats(xs: Iterable[Any]) -> list[float]:
    return [float(x) for x in xs]


def rel_err(got: Any, want: Any) -> float:
    """|got - want| / |want| in mp arithmetic (absolute error where want == 0)."""
    d = abs(mpf(got) - want)
    return float(d / abs(want)) if want != 0 else float(d)
