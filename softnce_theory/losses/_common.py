"""Input validation, dtype policy and reductions shared by every loss family.

Policies (documented in the README and tested in ``tests/test_validation.py``):

* **dtypes.** Floating inputs may be float16, bfloat16, float32 or float64. Computation runs in
  ``promote_types(dtype, float32)`` and the result is cast back to the input dtype.
* **bad input** raises ``ValueError`` naming the argument and the rule: wrong shapes or dtypes,
  temperature <= 0 or non-finite, negative / non-finite / off-simplex targets, labels out of range,
  empty batches. Nothing is silently coerced (integer logits are rejected, not cast).
* **NaN/Inf in logits or embeddings propagate** to the loss (no data-dependent check on the hot
  path). NaN/Inf in *targets*, *noise probabilities* or *labels* are rejected, because they are
  data the loss interprets rather than computes on.
* **value checks** (simplex, label range, ...) run in eager mode when ``validate=True`` (the
  default). They are skipped while ``torch.compile`` traces (they would force graph breaks) and
  when ``validate=False``.
* **simplex tolerance**: a row sums to 1 within ``sqrt(finfo(dtype).eps)`` (1.5e-8 for float64,
  3.5e-4 for float32, 3.1e-2 for float16, 8.8e-2 for bfloat16), unless overridden.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Reduction = Literal["mean", "sum", "none"]
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
REDUCTIONS = ("mean", "sum", "none")


def check_float(x: object, name: str, ndim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """``x`` must be a floating tensor of one of the supported dtypes (and given rank)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise ValueError(
            f"{name} must have dtype float16, bfloat16, float32 or float64, got {x.dtype}"
        )
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if x.dim() not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must be {want}-D, got shape {tuple(x.shape)}")
    return x


def check_nonempty(x: torch.Tensor, name: str, dim: int = 0) -> None:
    if x.shape[dim] == 0:
        raise ValueError(f"{name} must be a non-empty batch (dimension {dim} has size 0)")


def check_same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_b} must have the same shape as {name_a}: {tuple(b.shape)} vs {tuple(a.shape)}"
        )


def check_temperature(t: object, name: str = "temperature") -> float:
    """A temperature is a finite real number > 0 (Python number or 0-d tensor)."""
    if isinstance(t, torch.Tensor):
        if t.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(t.shape)}")
        t = t.item()
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise ValueError(f"{name} must be a real number, got {type(t).__name__}")
    tf = float(t)
    if not math.isfinite(tf) or tf <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {t!r}")
    return tf


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def values_checked(validate: bool) -> bool:
    """Whether data-dependent value checks should run (eager mode and ``validate=True``)."""
    if not validate:
        return False
    compiler = getattr(torch, "compiler", None)
    return not (compiler is not None and compiler.is_compiling())


def simplex_tol(dtype: torch.dtype) -> float:
    return math.sqrt(torch.finfo(dtype).eps)


def check_simplex(
    p: torch.Tensor, name: str, *, tol: float | None = None, validate: bool = True
) -> None:
    """Rows of ``p`` must be finite, non-negative and sum to 1 within ``tol`` (see module doc)."""
    if not values_checked(validate):
        return
    check_probabilities(p, name, validate=validate)
    t = simplex_tol(p.dtype) if tol is None else tol
    dev = (p.double().sum(-1) - 1.0).abs()
    if dev.numel() and bool((dev > t).any()):
        worst = float(dev.max())
        raise ValueError(
            f"{name} rows must sum to 1 (tolerance {t:.1e}); worst |sum - 1| = {worst:.3e}"
        )


def check_probabilities(p: torch.Tensor, name: str, *, validate: bool = True) -> None:
    """Entries of ``p`` must be finite and >= 0 (no normalisation required)."""
    if not values_checked(validate):
        return
    if not bool(torch.isfinite(p).all()):
        raise ValueError(f"{name} must be finite (found NaN or Inf)")
    if bool((p < 0).any()):
        raise ValueError(f"{name} must be non-negative (found {float(p.min()):.3e})")


def check_labels(
    labels: object, name: str, n: int, num_classes: int | None = None, *, validate: bool = True
) -> torch.Tensor:
    """``labels`` must be a 1-D integer tensor of length ``n`` (values in [0, num_classes))."""
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{name} must have an integer dtype, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
    if num_classes is not None and values_checked(validate) and labels.numel():
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"{name} must lie in [0, {num_classes}); found values in [{lo}, {hi}]")
    return labels


def compute_dtype(*xs: torch.Tensor) -> torch.dtype:
    """At least float32: float16/bfloat16 inputs are computed in float32."""
    dt = xs[0].dtype
    for x in xs[1:]:
        dt = torch.promote_types(dt, x.dtype)
    return torch.promote_types(dt, torch.float32)


def neg_log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    r"""``-log_softmax(x)`` with full *relative* precision, also where it is tiny.

    .. math:: -\log\operatorname{softmax}(x)_c = (m - x_c)
        + \operatorname{log1p}\Big(\sum_{k\ne a} e^{x_k - m}\Big),\quad a=\arg\max x,\ m=x_a

    Both terms are non-negative, so nothing cancels: at a logit gap of 40 the true value
    ``4.2e-18`` is returned, where ``-log_softmax`` gives exactly 0. Autograd through this form
    gives the softmax gradient with the same precision (``p_a - 1 = -sum_{k != a} p_k``).
    """
    a = x.argmax(dim, keepdim=True)
    # gap_c = m - x_c >= 0. At c = a it is identically 0: scatter makes it a constant, so autograd
    # does not route +1 and -1 through m (which would round 1 - p_rest to 1 and lose p_rest).
    gap = (x.gather(dim, a) - x).scatter(dim, a, 0.0)
    rest = torch.exp(-gap).scatter(dim, a, 0.0).sum(dim, keepdim=True)
    return torch.log1p(rest) + gap


def reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean, sum or no reduction of a per-row loss vector."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss
