"""Validation, preparation, dtype policy and reductions shared by every loss family.

This module sits below every other module of :mod:`softnce_theory.losses` (dense families,
``tiled/``, ``distributed``): each validator and each input preparation that two of them need
lives here once, so the dense and the tiled path of a loss accept and reject exactly the same
inputs (and nothing here imports a loss module: the import graph is acyclic, see
``tests/test_losses_api.py``).

Policies (documented in the README and tested in ``tests/test_validation.py``):

* **dtypes.** Floating inputs may be float16, bfloat16, float32 or float64. Computation runs in
  ``promote_types(dtype, float32)`` and the result is cast back to the input dtype.
* **bad input** raises ``ValueError`` naming the argument and the rule: wrong shapes or dtypes,
  temperature <= 0 or non-finite, negative / non-finite / off-simplex targets, labels out of range,
  empty batches. Nothing is silently coerced (integer logits are rejected, not cast).
* **scalar parameters** (temperature, base_temperature, logit_scale, epsilon, lam, tol, step,
  max_iter, ...) are declared once below as :class:`softnce_theory.domain.Param` objects
  (name and interval); :func:`check_param` checks a value against its declaration. A Python or
  numpy real is accepted (``bool`` and strings are not); a one-element *floating* tensor is
  returned as a 0-d tensor that keeps its autograd graph (integer tensors are refused).
* **NaN/Inf in logits or embeddings propagate** to the loss (no data-dependent check on the hot
  path). NaN/Inf in *targets*, *noise probabilities* or *labels* are rejected, because they are
  data the loss interprets rather than computes on.
* **value checks** (simplex, label range, a tensor parameter's value, ...) run in eager mode when
  ``validate=True`` (the default). They are skipped while ``torch.compile`` traces (they would
  force graph breaks) and when ``validate=False``.
* **simplex tolerance**: a row sums to 1 within ``sqrt(finfo(dtype).eps)`` (1.5e-8 for float64,
  3.5e-4 for float32, 3.1e-2 for float16, 8.8e-2 for bfloat16), unless overridden.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Literal, cast

import torch

from softnce_theory.domain import NONNEGATIVE, POSITIVE, REALS, UNIT, Interval, Param

Reduction = Literal["mean", "sum", "none"]
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
REDUCTIONS = ("mean", "sum", "none")

#: a loss temperature: a real number (Python or numpy scalar), or a floating tensor with one
#: element, which may require grad (a learnable temperature; see :func:`check_tau`)
Temperature = float | torch.Tensor

# ----------------------------------------------------------------------------- declared params

_AT_LEAST_ONE = Interval(1.0, math.inf, low_closed=True)

#: softmax temperature :math:`\tau` (logits are similarities divided by it)
TEMPERATURE = Param(
    "temperature", POSITIVE, typical=(0.05, 2.0), extremes=(1e-3, 1e3), doc="tau > 0"
)
#: HobbitLong's :math:`\tau_{base}`: SupCon / SINCERE are scaled by :math:`\tau/\tau_{base}`
BASE_TEMPERATURE = Param("base_temperature", POSITIVE, typical=(0.05, 1.0), doc="tau_base > 0")
#: CLIP's :math:`\log(1/\tau)`; its temperature :math:`e^{-\mathrm{logit\_scale}}` must be a
#: finite number > 0 in the dtype it is computed in (see :func:`resolve_temperature`)
LOGIT_SCALE = Param("logit_scale", REALS, typical=(0.0, 4.6), doc="log(1 / tau)")
#: label-smoothing weight :math:`\varepsilon` (torch's convention)
EPSILON = Param("epsilon", UNIT, doc="label smoothing weight in [0, 1]")
#: weight :math:`\lambda` of the self-labeling loss' fairness term
LAM = Param("lam", NONNEGATIVE, typical=(0.0, 5.0), doc="fairness weight >= 0")
#: relative stopping tolerance of the pseudo-label solvers
TOL = Param("tol", POSITIVE, typical=(1e-12, 1e-3), doc="relative tolerance > 0")
#: fixed step of the projected-gradient pseudo-label solver
STEP = Param("step", POSITIVE, typical=(0.1, 10.0), doc="step size > 0")
#: iteration cap of the pseudo-label solvers
MAX_ITER = Param("max_iter", _AT_LEAST_ONE, integer=True, typical=(1, 100))
#: every scalar parameter of the losses, by name
PARAMS: dict[str, Param] = {
    p.name: p
    for p in (TEMPERATURE, BASE_TEMPERATURE, LOGIT_SCALE, EPSILON, LAM, TOL, STEP, MAX_ITER)
}


def _num(x: float) -> str:
    return f"{x:g}"


def rule(p: Param) -> str:
    """The declared domain of ``p`` in words: ``finite and > 0``, ``finite and >= 0``,
    ``lie in [0, 1]`` or, for an integer parameter, ``>= 1``."""
    iv = p.interval
    lo, hi = math.isfinite(iv.low), math.isfinite(iv.high)
    if lo and hi:
        return f"lie in {iv}"
    parts = []
    if lo:
        parts.append(f"{'>=' if iv.low_closed else '>'} {_num(iv.low)}")
    if hi:
        parts.append(f"{'<=' if iv.high_closed else '<'} {_num(iv.high)}")
    bounds = " and ".join(parts)
    if p.integer:
        return bounds
    return f"finite and {bounds}" if bounds else "finite"


def _check_value(p: Param, v: float, shown: object) -> None:
    if not (math.isfinite(v) and v in p.interval) or (p.integer and v != int(v)):
        raise ValueError(f"{p.name} must {_be(p)}, got {shown!r}")


def _be(p: Param) -> str:
    r = rule(p)
    return r if r.startswith("lie ") else f"be {r}"


def check_param(p: Param, value: object, *, validate: bool = True) -> float | torch.Tensor:
    """``value`` checked against the declared parameter ``p``.

    A real number (Python or numpy; not ``bool``, not a string) is returned as a ``float``. A
    one-element floating tensor is returned as a 0-d tensor **with its autograd graph** (a
    learnable parameter); its value is checked only where :func:`values_checked` allows a
    data-dependent check (eager mode, ``validate=True``), so ``torch.compile`` traces without a
    host sync. Integer and bool tensors are refused. Messages name ``p.name`` and the rule, e.g.
    ``temperature must be finite and > 0, got -1.0``.
    """
    name = p.name
    if isinstance(value, torch.Tensor):
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
        if values_checked(validate) and not t.is_meta:
            v = float(t.detach())
            _check_value(p, v, v)
        return t
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real
        raise ValueError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    _check_value(p, v, value)
    return v


def check_number(p: Param, value: object) -> float:
    """:func:`check_param` for a parameter that is a plain number where it is used (a solver
    control, a fairness weight): a tensor is accepted only without ``requires_grad`` (its
    gradient could not be computed; refusing it is better than detaching it silently)."""
    if isinstance(value, torch.Tensor) and value.requires_grad:
        raise ValueError(
            f"{p.name} must be a number or a tensor that does not require grad (it is not "
            "differentiable here)"
        )
    return float(check_param(p, value))


def check_int_param(p: Param, value: object) -> int:
    """An integer parameter (Python or numpy integer; ``bool`` and floats such as 2.0 are
    refused) in ``p``'s interval."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"{p.name} must be an integer {rule(p)}, got {type(value).__name__} {value!r}"
        )
    k = int(value)
    if k not in p.interval:
        raise ValueError(f"{p.name} must {_be(p)}, got {k}")
    return k


# ----------------------------------------------------------------------------- tensors


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


# ----------------------------------------------------------------------------- temperatures


def check_tau(t: object, *, validate: bool = True) -> Temperature:
    r"""A temperature :math:`\tau` (:data:`TEMPERATURE`): a finite real > 0, returned as a float,
    or a floating tensor with one element, returned as a 0-d tensor **that keeps its autograd
    graph** (so ``tau.grad`` is filled: a learnable temperature). See :func:`check_param`."""
    return check_param(TEMPERATURE, t, validate=validate)


def _check_scale_tau(tau: float, shown: object) -> None:
    if not 0.0 < tau < math.inf:
        raise ValueError(
            f"logit_scale must be finite with exp(-logit_scale) a finite temperature > 0, "
            f"got {shown!r}"
        )


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
    :math:`-\tau\,\partial L/\partial\tau`); its temperature must be finite and > 0 in the
    tensor's own dtype (float32 overflows below ``logit_scale = -88.7``). Any clamp of the
    scale (CLIP clamps it at :math:`\log 100`) belongs to the model, not to the loss.
    """
    if logit_scale is None:
        return check_tau(default if temperature is None else temperature, validate=validate)
    if temperature is not None:
        raise ValueError(
            "temperature and logit_scale are mutually exclusive (logit_scale = log(1/temperature));"
            " pass only one of them"
        )
    ls = check_param(LOGIT_SCALE, logit_scale, validate=validate)
    if isinstance(ls, torch.Tensor):
        tau_t = torch.exp(-ls)
        if values_checked(validate) and not tau_t.is_meta:
            _check_scale_tau(float(tau_t.detach()), float(ls.detach()))
        return tau_t
    tau = math.exp(-ls) if ls > -709.0 else math.inf
    _check_scale_tau(tau, logit_scale)
    return tau


def module_temperature(value: object, learn: bool, *, logit: bool = False) -> Temperature:
    """Constructor helper of the ``nn.Module`` losses: validate ``value`` (a temperature, or a
    logit scale when ``logit``); ``learn=True`` returns a new ``nn.Parameter`` initialised to it
    (default dtype, or the tensor's dtype). A tensor given with ``learn=False`` is kept as is (an
    ``nn.Parameter`` passed in registers with the module and is trained)."""
    if logit:
        resolve_temperature(None, value, default=1.0)
    else:
        check_tau(value)
    if learn:
        if isinstance(value, torch.Tensor):
            return torch.nn.Parameter(value.detach().clone().reshape(()))
        v = float(value)  # type: ignore[arg-type]
        return torch.nn.Parameter(torch.tensor(v, dtype=torch.get_default_dtype()))
    if isinstance(value, torch.Tensor):
        return value
    return float(value)  # type: ignore[arg-type]


def base_scale(
    temperature: Temperature, base_temperature: object, *, validate: bool = True
) -> Temperature:
    r"""HobbitLong's scale :math:`\tau/\tau_{base}` of SupCon / SINCERE (1 for ``None``).
    ``base_temperature`` is checked against :data:`BASE_TEMPERATURE`; a tensor keeps its
    graph."""
    if base_temperature is None:
        return 1.0
    return temperature / check_param(BASE_TEMPERATURE, base_temperature, validate=validate)


def apply_scale(out: torch.Tensor, scale: Temperature) -> torch.Tensor:
    """``out * scale``, skipped for a float scale of exactly 1."""
    if isinstance(scale, torch.Tensor) or scale != 1.0:
        return out * scale
    return out


# ----------------------------------------------------------------------------- checks


def check_reduction(reduction: object) -> None:
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


def softplus(x: torch.Tensor) -> torch.Tensor:
    r"""The package's one softplus: :math:`\log(1+e^x)` = ``logaddexp(0, x)``, exact for tiny
    results (relative precision at :math:`e^{-700}`), derivative :math:`\sigma(x)` everywhere
    (``F.softplus`` switches to ``x`` above 20; a ``clamp``/``abs`` form would give the
    derivative 1 instead of 1/2 at exactly 0). ``-inf`` (an empty negative set) gives exactly 0
    with zero first *and* second derivatives (``logaddexp``'s own double backward is
    ``inf/inf`` there); NaN propagates."""
    zero = torch.zeros_like(x)
    dead = x == float("-inf")
    return torch.where(dead, zero, torch.logaddexp(zero, torch.where(dead, zero, x)))


# ============================================================================= family inputs
# The preparation of each family's inputs, shared by its dense, tiled and distributed paths.

# ----------------------------------------------------------------------------- labelled batches

Variant = Literal["out", "in"]


def check_variant(variant: object) -> Variant:
    """SupCon's variant: ``"out"`` (Khosla et al. Eq. 2) or ``"in"`` (Eq. 3)."""
    if variant not in ("out", "in"):
        raise ValueError(f"variant must be 'out' or 'in', got {variant!r}")
    return cast(Variant, variant)


def check_embeddings(embeddings: object) -> torch.Tensor:
    """``(B, D)`` or ``(B, V, D)`` floating embeddings with ``B, V, D >= 1``."""
    x = check_float(embeddings, "embeddings", (2, 3))
    if x.shape[0] == 0:
        raise ValueError("embeddings must be a non-empty batch (dimension 0 has size 0)")
    if x.dim() == 3 and x.shape[1] == 0:
        raise ValueError("embeddings must have at least one view (dimension 1 has size 0)")
    if x.shape[-1] == 0:
        raise ValueError("embeddings must have a non-empty feature dimension (last dim is 0)")
    return x


def check_class_labels(
    labels: object,
    n: int,
    device: torch.device | None = None,
    *,
    validate: bool = True,
    ref_name: str = "embeddings",
) -> torch.Tensor:
    """1-D integer labels of length ``n`` (on ``device``, the device of ``ref_name``) with
    non-negative values."""
    lab = check_labels(labels, "labels", n, validate=False)
    if device is not None and lab.device != device:
        raise ValueError(f"labels must be on the device of {ref_name} ({device}), got {lab.device}")
    if values_checked(validate) and lab.numel() and not lab.is_meta and int(lab.min()) < 0:
        raise ValueError(f"labels must be non-negative, found {int(lab.min())}")
    return lab


def flatten_views(
    embeddings: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, V, D)`` -> ``(B*V, D)`` with row ``b*V + v`` = ``embeddings[b, v]`` and labels
    repeated per view; ``(B, D)`` is returned unchanged."""
    if embeddings.dim() == 3:
        b, v, d = embeddings.shape
        return embeddings.reshape(b * v, d), labels.repeat_interleave(v)
    return embeddings, labels


def prepare_labelled(
    embeddings: object,
    labels: object,
    temperature: object,
    normalize: object,
    reduction: object,
    validate: bool,
) -> tuple[torch.Tensor, torch.Tensor, Temperature]:
    r"""SupCon / SINCERE inputs: ``(z, labels, tau)`` with ``z`` the ``(B*V, D)`` rows in the
    compute dtype (unit rows :math:`\hat z_i` when ``normalize``) and labels repeated per view."""
    x = check_embeddings(embeddings)
    lab = check_class_labels(labels, x.shape[0], x.device, validate=validate)
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    check_bool(normalize, "normalize")
    z, lab = flatten_views(x.to(compute_dtype(x)), lab)
    return (unit_rows(z) if normalize else z), lab, t


# ----------------------------------------------------------------------------- prototypes


def check_prototypes(prototypes: object, dim: int) -> torch.Tensor:
    """``(K, D)`` floating class prototypes, ``K >= 1``, ``D = dim``."""
    w = check_float(prototypes, "prototypes", 2)
    if w.shape[0] == 0:
        raise ValueError("prototypes must have at least one row (K >= 1)")
    if w.shape[1] != dim:
        raise ValueError(
            f"prototypes must have the embedding dimension {dim} in dim 1, got {tuple(w.shape)}"
        )
    return w


def check_prototype_labels(
    labels: object, n: int, k: int, device: torch.device, validate: bool, ref_name: str
) -> torch.Tensor:
    """Class labels (see :func:`check_class_labels`) that index ``k`` prototypes."""
    lab = check_class_labels(labels, n, device, validate=validate, ref_name=ref_name)
    if values_checked(validate) and lab.numel() and not lab.is_meta:
        hi = int(lab.max())
        if hi >= k:
            raise ValueError(
                f"prototypes must have at least max(labels) + 1 = {hi + 1} rows, got {k}"
            )
    return lab


def prepare_prototypes(
    embeddings: object,
    labels: object,
    prototypes: object,
    temperature: object,
    normalize: object,
    validate: bool,
    allow_views: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Temperature]:
    """Prototype-CE / ESupCon inputs: ``(z, w, labels, tau)``, rows and prototypes in the
    compute dtype (unit rows when ``normalize``), views flattened sample-major."""
    x = check_embeddings(embeddings)
    if x.dim() == 3 and not allow_views:
        raise ValueError(f"embeddings must be 2-D (B, D), got shape {tuple(x.shape)}")
    w = check_prototypes(prototypes, x.shape[-1])
    if w.device != x.device:
        raise ValueError(f"prototypes must be on the device of embeddings ({x.device})")
    lab = check_prototype_labels(labels, x.shape[0], w.shape[0], x.device, validate, "embeddings")
    t = check_tau(temperature, validate=validate)
    check_bool(normalize, "normalize")
    dt = compute_dtype(x, w)
    z, lab = flatten_views(x.to(dt), lab)
    w = w.to(dt)
    if normalize:
        z, w = unit_rows(z), unit_rows(w)
    return z, w, lab, t


# ----------------------------------------------------------------------------- InfoNCE

Similarity = Literal["cosine", "dot"]
NegativeMode = Literal["unpaired", "paired"]
SIMILARITIES = ("cosine", "dot")
NEGATIVE_MODES = ("unpaired", "paired")


def check_similarity(similarity: object) -> Similarity:
    if similarity not in SIMILARITIES:
        raise ValueError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    return cast(Similarity, similarity)


def check_negative_mode(negative_mode: object) -> NegativeMode:
    if negative_mode not in NEGATIVE_MODES:
        raise ValueError(f"negative_mode must be one of {NEGATIVE_MODES}, got {negative_mode!r}")
    return cast(NegativeMode, negative_mode)


def check_query(query: object, name: str = "query") -> torch.Tensor:
    """A non-empty ``(B, D)`` floating batch with ``D >= 1``."""
    x = check_float(query, name, 2)
    check_nonempty(x, name)
    if x.shape[1] == 0:
        raise ValueError(f"{name} must have a non-empty embedding dimension D (got D = 0)")
    return x


def check_like(
    x: object, name: str, ref: torch.Tensor, ref_name: str, ndim: int, *, same_shape: bool = False
) -> torch.Tensor:
    """``x`` is a floating ``ndim``-D tensor with ``ref``'s dtype and device and, with
    ``same_shape``, its shape (else its last dimension ``D``)."""
    t = check_float(x, name, ndim)
    if t.dtype != ref.dtype:
        raise ValueError(
            f"{name} must have the same dtype as {ref_name} ({ref.dtype}), got {t.dtype}"
        )
    if t.device != ref.device:
        raise ValueError(
            f"{name} must be on the same device as {ref_name} ({ref.device}), got {t.device}"
        )
    if same_shape:
        check_same_shape(ref, t, ref_name, name)
    elif t.shape[-1] != ref.shape[-1]:
        raise ValueError(
            f"{name} must have embedding dimension D={ref.shape[-1]} (as {ref_name}), "
            f"got shape {tuple(t.shape)}"
        )
    return t


def check_query_key(query: object, key: object, qname: str, kname: str) -> torch.Tensor:
    """In-batch pairs: ``query`` (:func:`check_query`) and a ``key`` of the same shape, dtype
    and device. Returns ``query``."""
    q = check_query(query, qname)
    if qname == "a":  # CLIP's pair (a, b): one shape check
        check_like(key, kname, q, qname, 2, same_shape=True)
    else:
        check_same_shape(q, check_like(key, kname, q, qname, 2), qname, kname)
    return q


def check_log_q(
    x: object,
    name: str,
    shape: tuple[int, ...],
    ref: torch.Tensor,
    validate: bool,
    ref_name: str = "query",
) -> torch.Tensor:
    """``x`` is a floating tensor that broadcasts to ``shape``, on ``ref``'s device, finite."""
    t = check_float(x, name)
    try:
        ok = t.dim() <= len(shape) and tuple(torch.broadcast_shapes(t.shape, shape)) == shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"{name} must broadcast to shape {shape}, got {tuple(t.shape)}")
    if t.device != ref.device:
        raise ValueError(
            f"{name} must be on the same device as {ref_name} ({ref.device}), got {t.device}"
        )
    if values_checked(validate) and t.numel() and not t.is_meta:
        if not bool(torch.isfinite(t).all()):
            if bool((t == float("-inf")).any()):
                raise ValueError(
                    f"{name} contains -inf (q = 0): a candidate with zero proposal probability "
                    "cannot have been sampled; remove it, or give it a -inf score to mask it"
                )
            raise ValueError(f"{name} must be finite (found NaN or +inf)")
    return t


def embed(x: torch.Tensor, dt: torch.dtype, similarity: str) -> torch.Tensor:
    """Cast to the compute dtype, then L2-normalise rows for cosine similarity with
    :func:`unit_rows` (exact for every norm the dtype holds; zero rows stay zero with the
    identity Jacobian)."""
    x = x.to(dt)
    return unit_rows(x) if similarity == "cosine" else x


# ----------------------------------------------------------------------------- soft targets


def check_offset(offset: object, n: int, m: int) -> int:
    """Row ``i``'s positive is candidate ``offset + i``: an integer with
    ``0 <= offset`` and ``offset + n <= m``."""
    if isinstance(offset, bool):
        raise ValueError(f"offset must be an integer, got {offset!r}")
    try:
        off = operator.index(offset)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"offset must be an integer, got {type(offset).__name__}") from None
    if off < 0 or off + n > m:
        raise ValueError(
            f"offset must satisfy 0 <= offset and offset + N <= M (N = {n} local rows, "
            f"M = {m} candidates), got offset = {off}"
        )
    return off


def prepare_noise(
    noise_probs: object, num_classes: int, device: torch.device, validate: bool
) -> torch.Tensor | None:
    """Validated ``(C,)`` noise distribution on ``device`` (``None`` stays ``None``: uniform)."""
    if noise_probs is None:
        return None
    q = check_float(noise_probs, "noise_probs", 1)
    if q.shape[0] != num_classes:
        raise ValueError(
            f"noise_probs must have shape ({num_classes},) (one probability per class), "
            f"got {tuple(q.shape)}"
        )
    if q.is_meta and device.type != "meta":
        raise ValueError(
            f"noise_probs must hold data to be moved to the logits' device {device}, "
            "got a meta tensor"
        )
    check_simplex(q, "noise_probs", validate=validate)
    return q.to(device=device)


def check_zero_noise_mass(
    cand: torch.Tensor, q: torch.Tensor, cand_name: str, validate: bool
) -> None:
    """Raise if a candidate puts positive mass on a class with ``q_c == 0``."""
    if not values_checked(validate) or cand.is_meta or q.is_meta:
        return
    hit = ((cand > 0) & (q == 0)[None, :]).any(0)
    if bool(hit.any()):
        c = int(torch.nonzero(hit)[0, 0])
        raise ValueError(
            f"noise_probs[{c}] is 0 but {cand_name} put positive mass on class {c}: the score "
            f"-alpha_c * log q_c is +inf there (0 * log 0 := 0 applies only to classes no "
            f"candidate puts mass on)"
        )


def prepare_soft_target(
    logits: object,
    targets: object,
    noise_probs: object,
    temperature: object,
    candidates: object,
    offset: object,
    reduction: object,
    validate: bool,
) -> tuple[torch.Tensor, int, torch.Tensor | None, Temperature]:
    """Soft-target InfoNCE inputs, every check of the loss: ``(candidates, offset, q, tau)``
    (the candidates default to ``targets``; ``q`` is ``None`` for the uniform prior)."""
    f = check_float(logits, "logits", 2)
    check_nonempty(f, "logits")
    tg = check_float(targets, "targets", 2)
    check_same_shape(f, tg, "logits", "targets")
    check_same_device(tg, f, "targets", "logits")
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    n, c = f.shape
    if candidates is None:
        cand, cand_name = tg, "targets"
    else:
        cand, cand_name = check_float(candidates, "candidates", 2), "candidates"
        if cand.shape[1] != c:
            raise ValueError(
                f"candidates must have shape (M, {c}) (same number of classes as logits), "
                f"got {tuple(cand.shape)}"
            )
        check_same_device(cand, f, "candidates", "logits")
    off = check_offset(offset, n, cand.shape[0])
    q = prepare_noise(noise_probs, c, f.device, validate)
    check_simplex(tg, "targets", validate=validate)
    if candidates is not None:
        check_simplex(cand, "candidates", validate=validate)
        if values_checked(validate) and not cand.is_meta:
            pos = cand[off : off + n].detach().double()  # a check, not part of the graph
            tol = max(simplex_tol(cand.dtype), simplex_tol(tg.dtype))
            dev = float((pos - tg.detach().double()).abs().max())
            if not dev <= tol:
                raise ValueError(
                    f"candidates[offset:offset+N] must equal targets (the positives); "
                    f"max |difference| = {dev:.3e} at offset = {off}"
                )
    if q is not None:
        check_zero_noise_mass(cand, q, cand_name, validate)
    return cand, off, q, t
