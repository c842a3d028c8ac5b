"""Validation, preparation, dtype policy and reductions shared by every loss family.

This module sits below every other module of :mod:`softnce_theory.losses` (dense families,
``tiled/``, ``distributed``): each validator and each input preparation that two of them need
lives here once, so the dense and the tiled path of a loss accept and reject exactly the same
inputs (and nothing here imports a loss module, only the torch-free declarations of
:mod:`softnce_theory.losses.domains`: the import graph is acyclic, see
``tests/test_losses_api.py``).

Policies (documented in the README and tested in ``tests/test_domains.py`` and the families'
tests):

* **dtypes.** Floating inputs may be float16, bfloat16, float32 or float64. Computation runs in
  ``promote_types(dtype, float32)`` and the result is cast back to the input dtype.
* **bad input** raises ``ValueError`` naming the argument and the rule: wrong shapes or dtypes,
  temperature <= 0 or non-finite, negative / non-finite / off-simplex targets, labels out of range,
  empty batches. Nothing is silently coerced (integer logits are rejected, not cast).
* **declared inputs.** Every public loss's tensor arguments and scalar parameters are declared
  once, in :mod:`softnce_theory.losses.domains`; :func:`check_inputs` checks tensors against a
  domain and :func:`check_param` a value against its declared
  :class:`~softnce_theory.domain.Param`. A Python or
  numpy real is accepted (``bool`` and strings are not); a one-element *floating* tensor is
  returned as a 0-d tensor that keeps its autograd graph (integer tensors are refused).
* **NaN/Inf in logits or embeddings propagate** to the loss (no data-dependent check on the hot
  path). NaN/Inf in *targets*, *noise probabilities* or *labels* are rejected, because they are
  data the loss interprets rather than computes on.
* **value checks** (simplex, label range, a tensor parameter's value, ...) run in eager mode when
  ``validate=True`` (the default). They are skipped while ``torch.compile`` traces (they would
  force graph breaks) and when ``validate=False``.
* **simplex tolerance**: a row sums to 1 within ``sqrt(finfo(dtype).eps)`` (1.5e-8 for float64,
  3.5e-4 for float32, 3.1e-2 for float16, 8.8e-2 for bfloat16).
"""

from __future__ import annotations

import math
import operator
from typing import Literal, cast

import torch

from softnce_theory import domain
from softnce_theory.domain import Domain, Param
from softnce_theory.losses import domains as D
from softnce_theory.losses.domains import (
    BASE_TEMPERATURE,
    LOGIT_SCALE,
    TEMPERATURE,
)

Reduction = Literal["mean", "sum", "none"]
FLOAT_DTYPES = tuple(getattr(torch, n) for n in domain.FLOAT_DTYPES)  # the declared floats
REDUCTIONS = ("mean", "sum", "none")

#: a loss temperature: a real number (Python or numpy scalar), or a floating tensor with one
#: element, which may require grad (a learnable temperature; see :func:`check_tau`)
Temperature = float | torch.Tensor

# ----------------------------------------------------------------------------- declared inputs
# The scalar parameters and every loss's input domain are declared once, torch-free, in
# softnce_theory.losses.domains; the names below are the ones the loss modules use.


def check_inputs(domain: Domain, validate: bool, **tensors: object) -> None:
    """The tensor arguments ``tensors`` (``None``: an absent optional argument) checked against
    the declared ``domain`` (:meth:`Domain.validate <softnce_theory.domain.Domain.validate>`):
    types, dtypes, named dimensions shared across arguments, devices and, where
    :func:`values_checked` allows a data-dependent check, simplex rows and label ranges.
    Messages start with the argument's name (``targets: dimension C is 5 but logits has C = 4``).
    Scalar parameters are checked by :func:`check_param` with the domain's :class:`Param`."""
    domain.validate(tensors, check_values=values_checked(validate))


def check_param(p: Param, value: object, *, validate: bool = True) -> float | torch.Tensor:
    """``value`` checked against the declared parameter ``p`` (:meth:`Param.check
    <softnce_theory.domain.Param.check>`): a real number (Python or numpy; not ``bool``, not a
    string) is returned as a ``float``; a one-element floating tensor as a 0-d tensor **with its
    autograd graph** (a learnable parameter), its value checked only where
    :func:`values_checked` allows a data-dependent check (eager mode, ``validate=True``), so
    ``torch.compile`` traces without a host sync. Messages name ``p.name`` and the rule, e.g.
    ``temperature must be finite and > 0, got -1.0``."""
    out: float | torch.Tensor = p.check(value, check_values=values_checked(validate))
    return out


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
    refused) in ``p``'s interval; ``p`` must be declared ``integer=True``."""
    out: int = p.check(value)
    return out


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
    r"""SupCon / SINCERE inputs (:data:`~softnce_theory.losses.domains.SUPCON_LOSS`):
    ``(z, labels, tau)`` with ``z`` the ``(B*V, D)`` rows in the compute dtype (unit rows
    :math:`\hat z_i` when ``normalize``) and labels repeated per view."""
    check_inputs(D.SUPCON_LOSS, validate, embeddings=embeddings, labels=labels)
    assert isinstance(embeddings, torch.Tensor) and isinstance(labels, torch.Tensor)
    x, lab = embeddings, labels
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    check_bool(normalize, "normalize")
    z, lab = flatten_views(x.to(compute_dtype(x)), lab)
    return (unit_rows(z) if normalize else z), lab, t


# ----------------------------------------------------------------------------- prototypes


def prepare_prototypes(
    embeddings: object,
    labels: object,
    prototypes: object,
    temperature: object,
    normalize: object,
    validate: bool,
    allow_views: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Temperature]:
    """Prototype-CE / ESupCon inputs (:data:`~softnce_theory.losses.domains.ESUPCON_LOSS`, or
    :data:`~softnce_theory.losses.domains.PROTOTYPE_CROSS_ENTROPY` without views):
    ``(z, w, labels, tau)``, rows and prototypes in the compute dtype (unit rows when
    ``normalize``), views flattened sample-major."""
    domain = D.ESUPCON_LOSS if allow_views else D.PROTOTYPE_CROSS_ENTROPY
    check_inputs(domain, validate, embeddings=embeddings, labels=labels, prototypes=prototypes)
    assert isinstance(embeddings, torch.Tensor) and isinstance(prototypes, torch.Tensor)
    assert isinstance(labels, torch.Tensor)
    x, w, lab = embeddings, prototypes, labels
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


def prepare_noise(noise_probs: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    """The ``(C,)`` noise distribution, already checked against its domain (it may live on
    another device), moved to ``device`` (``None`` stays ``None``: uniform)."""
    if noise_probs is None:
        return None
    q = noise_probs
    if q.is_meta and device.type != "meta":
        raise ValueError(
            f"noise_probs must hold data to be moved to the logits' device {device}, "
            "got a meta tensor"
        )
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
    """Soft-target InfoNCE inputs (:data:`~softnce_theory.losses.domains.SOFT_TARGET_INFO_NCE`),
    every check of the loss: ``(candidates, offset, q, tau)`` (the candidates default to
    ``targets``; ``q`` is ``None`` for the uniform prior)."""
    check_inputs(
        D.SOFT_TARGET_INFO_NCE,
        validate,
        logits=logits,
        targets=targets,
        noise_probs=noise_probs,
        candidates=candidates,
    )
    assert isinstance(logits, torch.Tensor) and isinstance(targets, torch.Tensor)
    f, tg = logits, targets
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    n = f.shape[0]
    if candidates is None:
        cand, cand_name = tg, "targets"
    else:
        assert isinstance(candidates, torch.Tensor)
        cand, cand_name = candidates, "candidates"
    off = check_offset(offset, n, cand.shape[0])
    assert noise_probs is None or isinstance(noise_probs, torch.Tensor)
    q = prepare_noise(noise_probs, f.device)
    if candidates is not None:
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
