"""Shared torch helpers for the production legs and conformance checks (float64, CPU)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from softnce_theory.losses.domains import TEMPERATURE

DTYPE = torch.float64
#: float64 production loss vs 50-digit oracle: ~1e-12 relative (the project's standard).
RTOL64 = 1e-12


def t64(x: Any, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=DTYPE, requires_grad=requires_grad)


def value_and_grad(
    fn: Callable[..., torch.Tensor], *args: Any, wrt: int = 0, **kwargs: Any
) -> tuple[float, np.ndarray]:
    """Evaluate ``fn(*args, **kwargs)`` (a scalar) and its autograd gradient w.r.t. ``args[wrt]``."""
    xs = [
        a.detach().clone().requires_grad_(k == wrt) if isinstance(a, torch.Tensor) else a
        for k, a in enumerate(args)
    ]
    out = fn(*xs, **kwargs)
    (g,) = torch.autograd.grad(out, xs[wrt])
    return float(out.detach()), g.detach().numpy()


def gradcheck(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> bool:
    """``torch.autograd.gradcheck`` in float64 (fast mode), returning True/False."""
    x = x.detach().clone().to(DTYPE).requires_grad_(True)
    return bool(torch.autograd.gradcheck(fn, (x,), fast_mode=True, raise_exception=False))


def logit_scale(rng: np.random.Generator) -> float:
    """Log-uniform logit scale in [1e-2, 1e4]: covers tiny and huge logit gaps."""
    return float(10 ** rng.uniform(-2, 4))


def temperature(rng: np.random.Generator) -> float:
    """Log-uniform temperature between the declared extremes of
    :data:`~softnce_theory.losses.domains.TEMPERATURE` (``[1e-3, 1e3]``)."""
    lo, hi = (math.log10(e) for e in (min(TEMPERATURE.extremes), max(TEMPERATURE.extremes)))
    return float(10 ** rng.uniform(lo, hi))


def simplex_rows(rng: np.random.Generator, n: int, c: int, kind: str | None = None) -> np.ndarray:
    """Rows on the simplex: one-hot, uniform, near-degenerate, Dirichlet or smoothed one-hot."""
    kinds = ("onehot", "uniform", "near_degenerate", "dirichlet", "smoothed")
    kind = kind or kinds[int(rng.integers(len(kinds)))]
    y = rng.integers(0, c, size=n)
    if kind == "onehot":
        a = np.eye(c)[y]
    elif kind == "uniform":
        a = np.full((n, c), 1.0 / c)
    elif kind == "near_degenerate":
        a = np.eye(c)[y] * (1 - 1e-9) + 1e-9 / c
    elif kind == "smoothed":
        eps = rng.uniform(0, 0.3)
        a = np.eye(c)[y] * (1 - eps) + eps / c
    else:
        a = rng.dirichlet(np.full(c, 0.5), size=n)
    return a / a.sum(1, keepdims=True)
