"""Hypothesis strategies for contrastive-loss inputs, composable with ``@given``.

Every strategy draws NumPy arrays (so shrinking is effective) and is bounded by default:
logits up to ``|x| <= 1e4``, temperatures log-uniform in [1e-3, 1e3], small batches.
Convert with :func:`as_tensor`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

TARGET_KINDS = ("onehot", "uniform", "near_degenerate", "mixup", "smoothed", "dirichlet")


def as_tensor(x: Any, dtype: torch.dtype = torch.float64, requires_grad: bool = False) -> torch.Tensor:
    return torch.tensor(np.asarray(x), dtype=dtype, requires_grad=requires_grad)


@st.composite
def temperatures(draw: Any, min_value: float = 1e-3, max_value: float = 1e3) -> float:
    """Log-uniform temperature in ``[min_value, max_value]``."""
    e = draw(st.floats(np.log10(min_value), np.log10(max_value)))
    return float(10**e)


@st.composite
def logits(
    draw: Any,
    n: int | st.SearchStrategy[int] = st.integers(1, 6),
    c: int | st.SearchStrategy[int] = st.integers(2, 8),
    max_abs: float = 1e4,
) -> np.ndarray:
    """``(n, c)`` logits: a unit-normal pattern times a log-uniform scale up to ``max_abs``."""
    n_ = draw(n) if isinstance(n, st.SearchStrategy) else n
    c_ = draw(c) if isinstance(c, st.SearchStrategy) else c
    seed = draw(st.integers(0, 2**32 - 1))
    scale = 10 ** draw(st.floats(-2, float(np.log10(max_abs))))
    z = np.random.default_rng(seed).standard_normal((n_, c_))
    return np.clip(z / max(1.0, np.abs(z).max()) * scale, -max_abs, max_abs)


@st.composite
def simplex_targets(draw: Any, n: int, c: int, kinds: tuple[str, ...] = TARGET_KINDS) -> np.ndarray:
    """``(n, c)`` rows on the simplex of the given kinds (one kind per draw)."""
    kind = draw(st.sampled_from(kinds))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
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
    else:
        a = rng.dirichlet(np.full(c, 0.5), size=n)
    return a / a.sum(1, keepdims=True)


@st.composite
def noise_distributions(draw: Any, c: int, allow_zero: bool = False) -> np.ndarray:
    """A length-``c`` probability vector; with ``allow_zero`` some classes may get exactly 0."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(c))
    if allow_zero and c > 1 and draw(st.booleans()):
        k = draw(st.integers(1, c - 1))
        q[rng.choice(c, size=k, replace=False)] = 0.0
    return q / q.sum()


@st.composite
def labelled_embeddings(
    draw: Any,
    n: int | st.SearchStrategy[int] = st.integers(2, 10),
    d: int | st.SearchStrategy[int] = st.integers(2, 6),
    num_classes: int | st.SearchStrategy[int] = st.integers(1, 4),
    scale: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw (unnormalised) ``(n, d)`` embeddings with labels in ``[0, num_classes)``.

    With few classes and several samples, class multiplicity varies; singleton classes and
    single-class batches both occur (``num_classes=1`` forces the latter).
    """
    n_ = draw(n) if isinstance(n, st.SearchStrategy) else n
    d_ = draw(d) if isinstance(d, st.SearchStrategy) else d
    k_ = draw(num_classes) if isinstance(num_classes, st.SearchStrategy) else num_classes
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n_, d_)) * scale
    labels = rng.integers(0, k_, size=n_)
    return emb, labels
