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
import numbers
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
    if isinstance(t, bool) or not isinstance(t, numbers.Real):  # numpy scalars are Real
        raise ValueError(f"{name} must be a real number, got {type(t).__name__}")
    tf = float(t)
    if not math.isfinite(tf) or tf <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {t!r}")
    return tf


#: a loss temperature: a real number (Python or numpy scalar), or a floating tensor with one
#: element, which may require grad (a learnable temperature; see :func:`check_tau`)
Temperature = float | torch.Tensor


def _check_scalar_tensor(t: torch.Tensor, name: str) -> torch.Tensor:
    if not t.dtype.is_floating_point:
        raise ValueError(
            f"{name} must be a real number or a floating tensor (learnable), got dtype {t.dtype}"
        )
    if t.numel() != 1:
        raise ValueError(f"{name} must be a scalar (one element), got shape {tuple(t.shape)}")
    return t.reshape(())


def check_tau(t: object, name: str = "temperature", *, validate: bool = True) -> Temperature:
    r"""A temperature :math:`\tau`: a finite real > 0, returned as a float, or a floating tensor
    with one element, returned as a 0-d tensor **that keeps its autograd graph** (so
    ``tau.grad`` is filled: a learnable temperature).

    A tensor's value (finite, > 0) is checked only where :func:`values_checked` allows a
    data-dependent check (eager mode, ``validate=True``): under ``torch.compile`` there is no
    host sync and no graph break. Numbers go through :func:`check_temperature`.
    """
    if isinstance(t, torch.Tensor):
        tt = _check_scalar_tensor(t, name)
        if values_checked(validate):
            v = float(tt.detach())
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"{name} must be finite and > 0, got {v!r}")
        return tt
    return check_temperature(t, name)


def resolve_temperature(
    temperature: object,
    logit_scale: object = None,
    *,
    default: float,
    validate: bool = True,
) -> Temperature:
    r"""The temperature from either ``temperature`` (:math:`\tau`) or CLIP's ``logit_scale``
    (:math:`\log(1/\tau)`, Radford et al. 2021; open_clip's learnable ``logit_scale``):

    .. math:: \tau = e^{-\mathrm{logit\_scale}},\qquad \mathrm{sim}/\tau =
        e^{\mathrm{logit\_scale}}\cdot\mathrm{sim}.

    The two are mutually exclusive (``ValueError`` if both are given); neither gives
    ``default``. A tensor ``logit_scale`` keeps its graph (``logit_scale.grad`` =
    :math:`-\tau\,\partial L/\partial\tau`). Any clamp of the scale (CLIP clamps it at
    :math:`\log 100`) belongs to the model, not to the loss.
    """
    if logit_scale is None:
        return check_tau(default if temperature is None else temperature, validate=validate)
    if temperature is not None:
        raise ValueError(
            "temperature and logit_scale are mutually exclusive (logit_scale = log(1/temperature));"
            " pass only one of them"
        )
    if isinstance(logit_scale, torch.Tensor):
        ls = _check_scalar_tensor(logit_scale, "logit_scale")
        if values_checked(validate):
            v = float(ls.detach())
            if not math.isfinite(v) or not 0.0 < math.exp(-v) < math.inf:
                raise ValueError(
                    f"logit_scale must be finite with exp(-logit_scale) a finite temperature > 0, "
                    f"got {v!r}"
                )
        return torch.exp(-ls)
    if isinstance(logit_scale, bool) or not isinstance(logit_scale, numbers.Real):
        raise ValueError(f"logit_scale must be a real number, got {type(logit_scale).__name__}")
    v = float(logit_scale)
    tau = math.exp(-v) if math.isfinite(v) and v > -709.0 else math.inf
    if not 0.0 < tau < math.inf:
        raise ValueError(
            f"logit_scale must be finite with exp(-logit_scale) a finite temperature > 0, "
            f"got {logit_scale!r}"
        )
    return tau


def module_temperature(
    value: object, learn: bool, name: str = "temperature", *, logit: bool = False
) -> Temperature:
    """Constructor helper of the ``nn.Module`` losses: validate ``value`` (a temperature, or a
    logit scale when ``logit``); ``learn=True`` returns a new ``nn.Parameter`` initialised to it
    (default dtype, or the tensor's dtype). A tensor given with ``learn=False`` is kept as is (an
    ``nn.Parameter`` passed in registers with the module and is trained)."""
    if logit:
        resolve_temperature(None, value, default=1.0)
    else:
        check_tau(value, name)
    if learn:
        if isinstance(value, torch.Tensor):
            return torch.nn.Parameter(value.detach().clone().reshape(()))
        v = float(value)  # type: ignore[arg-type]
        return torch.nn.Parameter(torch.tensor(v, dtype=torch.get_default_dtype()))
    if isinstance(value, torch.Tensor):
        return value
    return float(value)  # type: ignore[arg-type]


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
    """Rows of ``p`` must be finite, non-negative and sum to 1 within ``tol`` (see module doc).
    A ``meta`` tensor has no values to check (deferred initialisation); it passes."""
    if not values_checked(validate) or p.is_meta:
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
    """Entries of ``p`` must be finite and >= 0 (no normalisation required); skipped for
    ``meta`` tensors (no values)."""
    if not values_checked(validate) or p.is_meta:
        return
    if not bool(torch.isfinite(p).all()):
        raise ValueError(f"{name} must be finite (found NaN or Inf)")
    if bool((p < 0).any()):
        raise ValueError(f"{name} must be non-negative (found {float(p.min()):.3e})")


def check_labels(
    labels: object,
    name: str,
    n: int,
    num_classes: int | None = None,
    *,
    validate: bool = True,
    ref: torch.Tensor | None = None,
    ref_name: str = "logits",
) -> torch.Tensor:
    """``labels`` must be a 1-D integer tensor of length ``n`` (values in [0, num_classes)),
    on ``ref``'s device when ``ref`` is given (checked before the values are read)."""
    if not isinstance(labels, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"{name} must have an integer dtype, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {tuple(labels.shape)}")
    if ref is not None:
        check_same_device(labels, ref, name, ref_name)
    if (
        num_classes is not None
        and values_checked(validate)
        and labels.numel()
        and not labels.is_meta
    ):
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= num_classes:
            raise ValueError(f"{name} must lie in [0, {num_classes}); found values in [{lo}, {hi}]")
    return labels


def check_same_device(x: torch.Tensor, ref: torch.Tensor, name: str, ref_name: str) -> None:
    """``x`` must live on ``ref``'s device (nothing is moved silently)."""
    if x.device != ref.device:
        raise ValueError(
            f"{name} must be on the same device as {ref_name} ({ref.device}), got {x.device}"
        )


def check_bool(x: object, name: str) -> bool:
    """A flag must be a ``bool`` (``"no"``, ``None`` or ``2`` are not silently truthy/falsy)."""
    if not isinstance(x, bool):
        raise ValueError(f"{name} must be a bool, got {type(x).__name__} {x!r}")
    return x


def check_positive_int(x: object, name: str) -> int:
    """An integer >= 1: a Python or numpy integer (``bool`` and floats such as 2.0 are refused)."""
    if isinstance(x, bool) or not isinstance(x, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= 1, got {type(x).__name__} {x!r}")
    if x < 1:
        raise ValueError(f"{name} must be >= 1, got {x}")
    return int(x)


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    r"""Rows (last dimension) scaled to unit L2 norm, exact over the whole floating range.

    .. math:: \hat x = \frac{y}{\|y\|_2},\qquad y = \frac{x}{\max_k |x_k|}

    Policy shared by every cosine similarity of the losses (call it in the compute dtype):

    * **no overflow, no eps.** ``F.normalize`` forms :math:`\|x\|^2` and divides by
      :math:`\max(\|x\|, 10^{-12})`: float32 rows above ~1.8e19 give ``inf/inf`` (a silent
      wrong loss) and rows below 1e-12 are not unit. The max-abs prescale makes
      :math:`1 \le \|y\|_2 \le \sqrt D` for every nonzero finite row (the largest entry is
      exactly 1), so rows of any norm the dtype can hold are normalised to rounding.
    * **the prescale is detached**: the result does not depend on it, and autograd gives the
      exact :math:`\partial\hat x/\partial x = (I - \hat x\hat x^\top)/\|x\|_2`. Its
      magnitude grows like :math:`1/\|x\|`: for tiny rows in float16 the *true* gradient
      exceeds the float16 range, and overflows honestly.
    * **zero rows** (also rows that rounded to zero in float16) map to the zero vector, with
      the identity as Jacobian (the denominator is 1 there, not an eps): their gradient is the
      upstream gradient, finite in every dtype. (``F.normalize``'s 1e-12 gives
      :math:`10^{12}\times` the upstream gradient, ``inf`` once cast to float16.) A descent
      step :math:`x = -\eta g` then points the row along :math:`-g`, the direction that
      decreases the loss most to first order.
    * NaN/Inf rows give NaN rows (propagate).
    """
    m = x.detach().abs().amax(dim=-1, keepdim=True)
    y = x / torch.where(m > 0, m, torch.ones_like(m))
    n = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    return y / torch.where(n > 0, n, torch.ones_like(n))


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
