r"""Soft-target InfoNCE (Hugger & Uhlmann 2024, arXiv 2404.14076) and its hard-label variant.

The loss is pinned down by the official code (``loss.py`` of ``uhlmanngroup/soft-target-InfoNCE``,
research note §1.2-§1.3, §5); the paper body (sections 2-5) was not available, so equation
numbers are not cited. For input :math:`i` with logits :math:`f(x_i)\in\mathbb R^C`, temperature
:math:`t`, noise distribution :math:`q` (the class prior) and candidate soft targets
:math:`\alpha_1..\alpha_M` (the all-gathered targets of the global batch):

.. math::
    g_i = f(x_i)/t - \log q,\qquad S_{ij} = \langle \alpha_j, g_i\rangle,\qquad
    \ell_i = \log\sum_{j=1}^{M} e^{S_{ij}} - S_{i,\pi(i)},

with :math:`\pi(i) = \mathrm{offset} + i` (the official code's ``N * rank + i``). Note that
:math:`\log q` is **not** divided by :math:`t`. The hard variant (official class ``InfoNCE``)
one-hot encodes integer labels and evaluates the same loss; it is Ma & Collins' (2018) ranking
NCE with in-batch negatives and the :math:`-\log q_y` correction.

Implementation notes and deliberate differences from the official code:

* **One matmul.** :math:`S = G A^\top` with :math:`G = f/t - \log q` (``(N, C)``) and the
  candidates :math:`A` (``(M, C)``); the official code materialises an ``(N, M, C)`` tensor.
  Values are the same formula.
* **Accurate log-sum-exp.** :math:`\ell_i` is evaluated as
  :math:`\log\bigl(1+\sum_{j\ne\pi(i)} e^{S_{ij}-S_{i\pi(i)}}\bigr)` with the largest term
  factored out and ``log1p`` for the rest, and the positive's gradient is formed as
  :math:`-\sum_{j\ne\pi(i)} w_{ij}` instead of :math:`w_{i\pi(i)} - 1`. A loss of
  :math:`e^{-100}` therefore keeps its relative precision (the official ``CrossEntropyLoss``
  returns 0 there), and so does its gradient.
* **Zero noise probabilities** (official code: :math:`0\cdot\log 0 =` NaN). A class with
  :math:`q_c = 0` on which no candidate puts mass contributes nothing (:math:`0\cdot\log 0 := 0`);
  the loss then equals the loss with that class removed, and equals the loss at
  :math:`q^\varepsilon = (1-\varepsilon)q + \varepsilon e_c` for every :math:`\varepsilon\in(0,1)`.
  If a candidate puts positive mass on such a class the loss is :math:`+\infty - \infty`
  (undefined): with ``validate=True`` a ``ValueError`` names ``noise_probs`` and the class; with
  ``validate=False`` the loss is NaN, as in the official code.
* **Candidates and offset** replace the official in-loss ``all_gather``: pass the gathered
  targets as ``candidates`` and ``offset = N * rank``. With ``validate=True`` the positives
  ``candidates[offset:offset+N]`` must equal ``targets`` (the official code guarantees this by
  construction). Gradients reach ``logits`` only through the local rows; gradients to
  ``targets``/``candidates`` are not blocked (they are data in the official code, where
  ``all_gather`` runs under ``no_grad``); detach them if that matters.
* ``noise_probs=None`` means the uniform prior :math:`q_c = 1/C` (a no-op on the value for
  simplex targets); the official code requires the prior explicitly.
* The official code's subtraction of the row maximum before ``CrossEntropyLoss`` is a no-op and
  is subsumed by the log-sum-exp above.

Dtypes: float16/bfloat16/float32/float64, computed in ``compute_dtype`` (at least float32),
returned in the logits' dtype. Works on CPU and CUDA; ``noise_probs`` is moved to the logits'
device, everything else must already be there.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from softnce_theory.losses import domains as D
from softnce_theory.losses._common import (
    Reduction,
    Temperature,
    check_inputs,
    check_offset,
    check_reduction,
    check_tau,
    check_zero_noise_mass,
    compute_dtype,
    module_temperature,
    prepare_noise,
    prepare_soft_target,
    reduce,
    values_checked,
)
from softnce_theory.losses.tiled import resolve_tile, tiled_soft_target_info_nce

__all__ = [
    "InfoNCEHardLabels",
    "SoftTargetInfoNCE",
    "info_nce_from_scores",
    "info_nce_hard_labels",
    "soft_target_info_nce",
]


# ----------------------------------------------------------------------------- kernels


def info_nce_from_scores(
    scores: torch.Tensor, positives: torch.Tensor, *, validate: bool = True
) -> torch.Tensor:
    r"""Per-row InfoNCE :math:`\log\sum_j e^{S_{ij}} - S_{i,p_i}` from an ``(N, M)`` score matrix.

    ``scores`` is a non-empty floating ``(N, M)`` matrix (``M >= 1``); ``positives`` an ``(N,)``
    integer tensor on the same device with values in ``[0, M)`` (range checked when
    ``validate``). Returns the ``(N,)`` per-row losses in the dtype of ``scores`` (no
    promotion: the caller chooses the compute dtype). See :func:`_info_nce_rows`.
    """
    check_inputs(D.INFO_NCE_FROM_SCORES, validate, scores=scores, positives=positives)
    return _info_nce_rows(scores, positives)


def _info_nce_rows(scores: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    r"""Per-row InfoNCE :math:`\log\sum_j e^{S_{ij}} - S_{i,p_i}`, unvalidated.

    Evaluated as :math:`m_i + \operatorname{log1p}\bigl(\sum_{j\ne j^*} e^{D_{ij}-m_i}\bigr)` with
    :math:`D_{ij} = S_{ij} - S_{ip_i}` and :math:`m_i = \max_j D_{ij} = D_{ij^*}\ge 0`. The
    positive's own gap is held at 0 with no gradient path, so autograd gives the positive
    :math:`-\sum_{j\ne p_i} w_{ij}` (no cancellation against 1). NaN/Inf scores propagate.
    """
    m = scores.shape[1]
    cols = torch.arange(m, device=scores.device)
    is_pos = cols[None, :] == positives[:, None]
    gaps = scores - scores.gather(1, positives[:, None])
    # exactly 0 (or NaN) at the positive; no gradient through the cancelling pair there
    gaps = torch.where(is_pos, gaps.detach(), gaps)
    arg = gaps.argmax(dim=1, keepdim=True)  # NaN counts as the maximum, so it propagates
    top = gaps.gather(1, arg)  # the gradient goes to that one index, even under ties
    neg_inf = torch.full((), -math.inf, dtype=gaps.dtype, device=gaps.device)
    rest = torch.where(cols[None, :] == arg, neg_inf, gaps - top)
    return top.squeeze(1) + torch.log1p(torch.exp(rest).sum(1))


def _st_infonce_rows(
    logits: torch.Tensor,
    cand: torch.Tensor,
    q: torch.Tensor | None,
    temperature: Temperature,
    offset: int,
    dt: torch.dtype,
) -> torch.Tensor:
    n, c = logits.shape
    g = logits.to(dt) / temperature
    a = cand.to(dt)
    if q is None:
        g = g + math.log(c)  # -log(1/C): uniform prior
        scores = g @ a.T
    else:
        qd = q.to(dt)
        zero = qd == 0
        # 0 * log 0 := 0: masked classes get log q = 0 (log of 1 in the unused branch, so no
        # -inf ever enters the graph)
        logq = torch.log(torch.where(zero, torch.ones_like(qd), qd))
        g = g - logq
        scores = g @ a.T
        # candidates with mass on a zero-probability class: undefined (+inf - inf) -> NaN,
        # as in the official code; validation raises before we get here when enabled
        bad = ((a != 0) & zero[None, :]).any(1)
        nan = torch.full((), math.nan, dtype=dt, device=scores.device)
        scores = scores + torch.where(bad, nan, torch.zeros_like(nan))[None, :]
    pos = torch.arange(n, device=logits.device) + offset
    return _info_nce_rows(scores, pos)


# ----------------------------------------------------------------------------- public API


def soft_target_info_nce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    noise_probs: torch.Tensor | None = None,
    *,
    temperature: Temperature = 1.0,
    candidates: torch.Tensor | None = None,
    offset: int = 0,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""Soft-target InfoNCE.

    .. math::
        \ell_i = \log\sum_{j=1}^{M}\exp\langle\alpha_j, f(x_i)/t - \log q\rangle
                 - \langle\alpha_{\mathrm{offset}+i}, f(x_i)/t - \log q\rangle

    Source: Hugger & Uhlmann (2024), arXiv 2404.14076, official code ``loss.py``
    (``SoftTargetInfoNCE``); research note §1.2-§1.3. See the module docstring for the
    conventions and the differences from the official code (zero-probability policy,
    candidates/offset, accurate log-sum-exp).

    Args:
        logits: ``(N, C)`` class logits :math:`f(x_i)` of the local batch.
        targets: ``(N, C)`` soft targets, rows on the probability simplex.
        noise_probs: ``(C,)`` noise distribution :math:`q` (non-negative, finite, summing to 1);
            ``None`` means uniform.
        temperature: :math:`t > 0` (divides the logits, not :math:`\log q`).
        candidates: ``(M, C)`` candidate targets (the all-gathered targets under DDP); default
            ``targets``. Rows on the simplex.
        offset: row ``i``'s positive is ``candidates[offset + i]`` (``N * rank`` under DDP);
            ``0 <= offset`` and ``offset + N <= M``.
        reduction: ``"mean"`` over local rows (default, as the official code), ``"sum"`` or
            ``"none"``.
        validate: run the data-dependent checks (simplex rows, noise distribution, mass on
            zero-probability classes, positives equal to ``targets``); skipped under
            ``torch.compile``.
    """
    tile_k = resolve_tile(
        tile,
        logits,
        family="soft_target_infonce",
        columns=candidates if candidates is not None else targets,
    )
    if tile_k is not None:  # tiled path: O(B*tile) memory (docs/performance.md)
        return tiled_soft_target_info_nce(
            logits,
            targets,
            noise_probs,
            temperature=temperature,
            candidates=candidates,
            offset=offset,
            reduction=reduction,
            validate=validate,
            tile=tile_k,
        )

    cand, off, q, t = prepare_soft_target(
        logits, targets, noise_probs, temperature, candidates, offset, reduction, validate
    )
    dt = compute_dtype(logits, targets, cand) if q is None else compute_dtype(logits, cand, q)
    loss = _st_infonce_rows(logits, cand, q, t, off, dt)
    return reduce(loss, reduction).to(logits.dtype)


def info_nce_hard_labels(
    logits: torch.Tensor,
    labels: torch.Tensor,
    noise_probs: torch.Tensor | None = None,
    *,
    temperature: Temperature = 1.0,
    candidate_labels: torch.Tensor | None = None,
    offset: int = 0,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    r"""Hard-label InfoNCE: :func:`soft_target_info_nce` with one-hot targets.

    .. math::
        \ell_i = \log\sum_{j=1}^{M}\exp\bigl(f_{y_j}(x_i)/t - \log q_{y_j}\bigr)
                 - \bigl(f_{y_{\mathrm{offset}+i}}(x_i)/t - \log q_{y_{\mathrm{offset}+i}}\bigr)

    Source: Hugger & Uhlmann (2024), official code ``loss.py`` class ``InfoNCE`` (one-hot encode,
    then the soft-target loss); equal to the ranking NCE of Ma & Collins (2018, arXiv
    1809.01812) with in-batch negatives, accidental hits kept (research note §1.4.1).

    ``labels`` are ``(N,)`` integers in ``[0, C)``; ``candidate_labels`` (``(M,)``, default
    ``labels``) are the all-gathered labels. Other arguments as in :func:`soft_target_info_nce`.
    The one-hot targets go through the same matmul, so NaN/Inf anywhere in a row of logits
    propagates to that row, as in the official code.
    """
    check_inputs(
        D.INFO_NCE_HARD_LABELS,
        validate,
        logits=logits,
        labels=labels,
        noise_probs=noise_probs,
        candidate_labels=candidate_labels,
    )
    n, c = logits.shape
    if candidate_labels is None:
        cand_labels, cand_name = labels, "labels"
    else:
        cand_labels, cand_name = candidate_labels, "candidate_labels"
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    off = check_offset(offset, n, cand_labels.shape[0])
    if candidate_labels is not None and values_checked(validate):
        if not torch.equal(candidate_labels[off : off + n].long(), labels.long()):
            raise ValueError(
                f"candidate_labels[offset:offset+N] must equal labels (the positives) at "
                f"offset = {off}"
            )
    q = prepare_noise(noise_probs, logits.device)
    dt = compute_dtype(logits) if q is None else compute_dtype(logits, q)
    onehot = torch.nn.functional.one_hot(cand_labels.long(), c).to(dt)
    if q is not None:
        check_zero_noise_mass(onehot, q, cand_name, validate)
    loss = _st_infonce_rows(logits, onehot, q, t, off, dt)
    return reduce(loss, reduction).to(logits.dtype)


class SoftTargetInfoNCE(nn.Module):
    """Module form of :func:`soft_target_info_nce` (official ``SoftTargetInfoNCE(noise_probs,
    t)``); ``noise_probs`` is a buffer, so it follows ``.to(device)``. Every keyword of the
    function is a constructor argument, except the per-batch ``candidates`` and ``offset``
    (forward arguments)."""

    noise_probs: torch.Tensor | None

    def __init__(
        self,
        noise_probs: torch.Tensor | None = None,
        temperature: Temperature = 1.0,
        reduction: Reduction = "mean",
        *,
        learn_temperature: bool = False,
        validate: bool = True,
        tile: int | None = None,
    ) -> None:
        super().__init__()
        self.temperature = module_temperature(temperature, learn_temperature)
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate
        self.tile = tile
        if noise_probs is not None:
            check_inputs(D.SOFT_TARGET_INFO_NCE, True, noise_probs=noise_probs)
        self.register_buffer("noise_probs", noise_probs)

    def forward(
        self,
        logits: torch.Tensor,
        targets: torch.Tensor,
        candidates: torch.Tensor | None = None,
        offset: int = 0,
    ) -> torch.Tensor:
        return soft_target_info_nce(
            logits,
            targets,
            self.noise_probs,
            temperature=self.temperature,
            candidates=candidates,
            offset=offset,
            reduction=self.reduction,
            validate=self.validate,
            tile=self.tile,
        )


class InfoNCEHardLabels(nn.Module):
    """Module form of :func:`info_nce_hard_labels` (official ``InfoNCE(eta, t)``)."""

    noise_probs: torch.Tensor | None

    def __init__(
        self,
        noise_probs: torch.Tensor | None = None,
        temperature: Temperature = 1.0,
        reduction: Reduction = "mean",
        *,
        learn_temperature: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.temperature = module_temperature(temperature, learn_temperature)
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate
        if noise_probs is not None:
            check_inputs(D.SOFT_TARGET_INFO_NCE, True, noise_probs=noise_probs)
        self.register_buffer("noise_probs", noise_probs)

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        candidate_labels: torch.Tensor | None = None,
        offset: int = 0,
    ) -> torch.Tensor:
        return info_nce_hard_labels(
            logits,
            labels,
            self.noise_probs,
            temperature=self.temperature,
            candidate_labels=candidate_labels,
            offset=offset,
            reduction=self.reduction,
            validate=self.validate,
        )
