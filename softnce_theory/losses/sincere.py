r"""Supervised contrastive losses: SupCon L_out / L_in (Khosla et al. 2020) and SINCERE.

Sources: Khosla et al. (2020), "Supervised Contrastive Learning", arXiv 2004.11362, Eq. 2
(:math:`\mathcal L_{out}`) and Eq. 3 (:math:`\mathcal L_{in}`); Feeney & Hughes, "SINCERE:
Supervised Information Noise-Contrastive Estimation REvisited", arXiv 2309.14277 (v4).

Notation. Rows :math:`z_i` (unit-normalised when ``normalize=True``), logits
:math:`s_{ij}=z_i^\top z_j/\tau`; :math:`A(i)` all other rows (self excluded), :math:`P(i)` the
other rows with the same label, :math:`N(i)` the rows with a different label.

Conventions and policies (tested in ``tests/test_sincere.py``):

* **Layout.** ``embeddings`` is ``(B, D)`` or ``(B, V, D)`` for ``V`` views. Views are flattened
  sample-major: row ``b * V + v`` is ``embeddings[b, v]`` and carries ``labels[b]``, so the
  other views of a sample are positives. ``reduction="none"`` returns the ``B * V`` per-row
  losses in that order. (HobbitLong's code orders rows view-major; every reduced value is
  invariant to the order.)
* **Anchors without positives** (a singleton class in a single-view batch) are excluded from
  the mean, not counted as zero (HobbitLong counts them as 0 in the mean; the official SINCERE
  code returns NaN). Their ``"none"`` entry is 0 and they add 0 to ``"sum"``.
* **No positive pair at all**: the loss is 0 with a zero gradient, still connected to the graph.
* **Single-class batch**: no negatives; SINCERE's terms are :math:`-\log 1 = 0`;
  :math:`\mathcal L_{in}=\log|P(i)|` (zero gradient); :math:`\mathcal L_{out}` keeps its
  positives-only softmax.
* ``base_temperature``: HobbitLong's scaling, the loss is multiplied by
  :math:`\tau/\tau_{base}` (``None``: no scaling). HobbitLong's default is 0.07.
* Labels: 1-D integer tensor of length ``B``, values >= 0 (checked when ``validate``).
* Dtypes float16/bfloat16/float32/float64, computed in at least float32, result in the input
  dtype. NaN/Inf in the embeddings propagate. Logits must not overflow the compute dtype
  (``|z_i . z_j| / tau`` below ~3e38 in float32).

Numerics. Log space only: one masked ``logsumexp`` over the negatives (and one over the
positives) per anchor, then ``logaddexp``; every per-pair term is written as
:math:`\mathrm{softplus}(\cdot)=\mathrm{logaddexp}(0,\cdot)` of a *difference* of logits, so a
loss of :math:`e^{-700}` keeps full relative precision and nothing overflows at
:math:`\tau=10^{-3}`. Masked entries are ``-inf``; anchors without entries get a finite
placeholder before ``logsumexp`` and are masked afterwards, so no NaN reaches the backward
pass (first or second order). SupCon's :math:`L_P-\overline{s_{iP}}` term has a custom
backward (:class:`_Spread`) that keeps :math:`P_{ik}-1/|P(i)|` accurate when the positives'
logits are nearly equal (large :math:`\tau`). Memory: dense :math:`n\times n` logits and
masks, :math:`n = B V`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from softnce_theory.losses import domains as D
from softnce_theory.losses._common import (
    Reduction,
    Temperature,
    Variant,
    apply_scale,
    base_scale,
    check_inputs,
    check_param,
    check_reduction,
    check_variant,
    compute_dtype,
    flatten_views,
    module_temperature,
    prepare_labelled,
    softplus,
)
from softnce_theory.losses.tiled import resolve_tile, tiled_sincere_loss, tiled_supcon_loss

__all__ = [
    "SINCERELoss",
    "SupConLoss",
    "flatten_views",
    "sincere_from_logits",
    "sincere_loss",
    "supcon_from_logits",
    "supcon_loss",
]

# ``Variant`` and ``flatten_views`` live in ``_common`` (shared with the tiled and distributed
# paths) and are re-exported here, where they belong to the public API.


def _logits(z: torch.Tensor, t: Temperature) -> torch.Tensor:
    r"""The dense ``(n, n)`` logit matrix :math:`s_{ij} = z_i^\top z_j/\tau`."""
    return (z @ z.transpose(0, 1)) / t


# ----------------------------------------------------------------------------- log-space core


def masked_logsumexp(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise ``log(sum_{mask} exp(x))``; ``-inf`` for rows with an empty mask, with a zero
    (not NaN) gradient there."""
    has = mask.any(dim=1, keepdim=True)
    filled = torch.where(mask, x, torch.full_like(x, float("-inf")))
    filled = torch.where(has, filled, torch.zeros_like(x))
    out = torch.logsumexp(filled, dim=1)
    return torch.where(has.squeeze(1), out, torch.full_like(out, float("-inf")))


def label_masks(
    labels: torch.Tensor, n: int, row_labels: torch.Tensor | None = None, offset: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(positives, negatives)`` of the ``(n, n)`` logits, or with ``row_labels`` (``(m,)``) of
    the anchor rows ``[offset, offset + m)`` of the batch (an ``(m, n)`` block, self at
    column ``offset + i``)."""
    if row_labels is None:
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        eye = torch.eye(n, dtype=torch.bool, device=labels.device)
        return same & ~eye, ~same
    same = row_labels.unsqueeze(1) == labels.unsqueeze(0)
    rows = torch.arange(row_labels.shape[0], device=labels.device) + offset
    own = rows.unsqueeze(1) == torch.arange(labels.shape[0], device=labels.device).unsqueeze(0)
    return same & ~own, ~same


class _Spread(torch.autograd.Function):
    r"""Per-row :math:`L_P-\overline{s_{iP}}` (0 where :math:`|P|\le 1`) with an accurate
    backward.

    The gradient :math:`P_k-1/|P|` (softmax share among the positives minus the uniform share)
    is a difference of nearly equal numbers when the positive logits are close (large
    :math:`\tau`); autograd would form it as ``exp(s - lse) - 1/m`` and lose all digits of a
    ~1e-9 gradient. With :math:`d_q=s_q-\bar s` and :math:`E=\sum_q\mathrm{expm1}(d_q)` it is
    :math:`(m\,\mathrm{expm1}(d_k)-E)/(m(m+E))`, cancellation-free; that form is used for rows
    whose centred logits stay <= 1 (no overflow), the direct one elsewhere. The backward is
    built from differentiable ops, so double backward gives the exact Hessian. At
    :math:`|P|=1` the term is identically 0 and contributes no gradient at all (so ``1 - 1``
    cannot swamp a tiny softplus gradient next to it).
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        count = pos.sum(dim=1)
        lse = masked_logsumexp(logits, pos)
        mean = torch.where(pos, logits, torch.zeros_like(logits)).sum(dim=1) / count.clamp(min=1)
        ctx.save_for_backward(logits, pos)
        return torch.where(count > 1, lse - mean, torch.zeros_like(mean))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, pos = ctx.saved_tensors
        count = pos.sum(dim=1, keepdim=True)
        m = count.clamp(min=1).to(logits.dtype)
        zero = torch.zeros_like(logits)
        mean = torch.where(pos, logits, zero).sum(dim=1, keepdim=True) / m
        d = torch.where(pos, logits - mean, zero)
        near = torch.where(pos, d, torch.full_like(d, float("-inf"))).amax(dim=1, keepdim=True) <= 1
        em1 = torch.expm1(torch.where(near, d, zero))
        em1 = torch.where(pos, em1, zero)
        big_e = em1.sum(dim=1, keepdim=True)
        g_near = (m * em1 - big_e) / (m * (m + big_e))
        lse = masked_logsumexp(logits, pos).unsqueeze(1)
        share = torch.exp(torch.where(pos & ~near, logits - lse, zero))  # finite everywhere
        g_far = share - 1 / m
        g = torch.where(near, g_near, g_far)
        g = torch.where(pos & (count > 1), g, zero)
        return grad.unsqueeze(1) * g, None


def positive_spread(logits: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    r""":math:`L_P-\overline{s_{iP}}\ge\log|P|` per row (0 where :math:`|P|\le 1`)."""
    return _Spread.apply(logits, pos)


def supcon_rows(
    logits: torch.Tensor,
    labels: torch.Tensor,
    variant: Variant,
    *,
    row_labels: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    r"""Per-anchor SupCon losses from an ``(n, n)`` logit matrix (diagonal ignored); 0 for
    anchors without positives.

    With :math:`L_P,L_N` the log-sum-exps over positives and negatives,
    :math:`\ell^{out}_i=\mathrm{softplus}(L_N-L_P)+(L_P-\overline{s_{iP}})` and
    :math:`\ell^{in}_i=\mathrm{softplus}(L_N-L_P)+\log|P(i)|`.

    Anchor subset (distributed): ``logits`` ``(m, n)`` are the rows ``[offset, offset + m)``
    of the full matrix, ``row_labels`` their labels, ``labels`` those of all ``n`` columns.
    """
    pos, neg = label_masks(labels, logits.shape[1], row_labels, offset)
    n_pos = pos.sum(dim=1)
    valid = n_pos > 0
    lse_pos = masked_logsumexp(logits, pos)
    lse_pos = torch.where(valid, lse_pos, torch.zeros_like(lse_pos))  # safe for excluded rows
    lse_neg = masked_logsumexp(logits, neg)
    count = n_pos.clamp(min=1).to(logits.dtype)
    head = softplus(lse_neg - lse_pos)  # log(1 + Z_N / Z_P) >= 0, exact when tiny
    if variant == "out":
        rows = head + positive_spread(logits, pos)
    else:
        rows = head + torch.log(count)
    return torch.where(valid, rows, torch.zeros_like(rows))


def sincere_rows(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    row_labels: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    r"""Per-anchor SINCERE losses: :math:`\frac1{|P|}\sum_p\mathrm{softplus}(L_N-s_{ip})`
    (anchor subsets as in :func:`supcon_rows`)."""
    pos, neg = label_masks(labels, logits.shape[1], row_labels, offset)
    n_pos = pos.sum(dim=1)
    lse_neg = masked_logsumexp(logits, neg)
    gap = torch.where(pos, lse_neg.unsqueeze(1) - logits, torch.full_like(logits, float("-inf")))
    terms = softplus(gap)  # 0 off the positives and for rows without negatives
    return terms.sum(dim=1) / n_pos.clamp(min=1).to(logits.dtype)


def _reduce(rows: torch.Tensor, valid: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return rows
    total = rows.sum()
    if reduction == "sum":
        return total
    return total / valid.sum().clamp(min=1).to(rows.dtype)


def _valid(labels: torch.Tensor) -> torch.Tensor:
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    return same.sum(dim=1) > 1


# ----------------------------------------------------------------------------- public API


def supcon_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: Temperature = 0.1,
    variant: Variant = "out",
    normalize: bool = True,
    base_temperature: Temperature | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""Supervised contrastive loss of Khosla et al. (2020), :math:`\mathcal L_{out}` or
    :math:`\mathcal L_{in}`.

    .. math::
        \ell^{out}_i = \frac{-1}{|P(i)|}\sum_{p\in P(i)}\log\frac{e^{s_{ip}}}
            {\sum_{a\in A(i)}e^{s_{ia}}},\qquad
        \ell^{in}_i = -\log\Big(\frac{1}{|P(i)|}\sum_{p\in P(i)}\frac{e^{s_{ip}}}
            {\sum_{a\in A(i)}e^{s_{ia}}}\Big)

    Source: arXiv 2004.11362, Eq. 2 (``variant="out"``, the recommended one) and Eq. 3
    (``variant="in"``); the loss is the mean over anchors (the paper sums; HobbitLong's code
    averages). ``base_temperature`` multiplies by :math:`\tau/\tau_{base}` as HobbitLong's
    ``SupConLoss`` does. See the module docstring for layout and policies.

    Args:
        embeddings: ``(B, D)`` or ``(B, V, D)``.
        labels: ``(B,)`` integer class labels (>= 0).
        temperature: :math:`\tau > 0`.
        variant: ``"out"`` (Eq. 2) or ``"in"`` (Eq. 3).
        normalize: L2-normalise rows first (cosine similarity).
        base_temperature: ``None`` or :math:`\tau_{base} > 0` (a number, or a one-element
            floating tensor, which keeps its gradient).
        reduction: ``"mean"`` over anchors with a positive, ``"sum"``, or ``"none"`` (``B*V``
            per-row losses, 0 where the anchor has no positive).
        validate: run the data-dependent label check (skipped under ``torch.compile``).
    """
    tile_k = resolve_tile(tile, embeddings, family="supcon")
    if tile_k is not None:  # tiled path: O(B*tile) memory (docs/performance.md)
        return tiled_supcon_loss(
            embeddings,
            labels,
            temperature=temperature,
            variant=variant,
            normalize=normalize,
            base_temperature=base_temperature,
            reduction=reduction,
            validate=validate,
            tile=tile_k,
        )

    v = check_variant(variant)
    z, lab, t = prepare_labelled(embeddings, labels, temperature, normalize, reduction, validate)
    scale = base_scale(t, base_temperature, validate=validate)
    rows = supcon_rows(_logits(z, t), lab, v)
    return apply_scale(_reduce(rows, _valid(lab), reduction), scale).to(embeddings.dtype)


def sincere_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: Temperature = 0.1,
    normalize: bool = True,
    base_temperature: Temperature | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""SINCERE loss of Feeney & Hughes: per positive pair, the softmax runs over the pair
    itself and the anchor's different-class samples only.

    .. math::
        \ell_i = \frac{-1}{|P(i)|}\sum_{p\in P(i)}\log\frac{e^{s_{ip}}}
            {e^{s_{ip}}+\sum_{n\in N(i)}e^{s_{in}}}

    Source: arXiv 2309.14277 v4 (teaser table, "Objective Equation to Maximize") and the
    official ``revised_losses.py`` (mean over anchors). Unlike the official code, anchors
    without positives are excluded instead of producing NaN. With instance labels
    (``labels = arange(B)`` and ``V = 2`` views) it equals NT-Xent / InfoNCE. Arguments as in
    :func:`supcon_loss`.
    """
    tile_k = resolve_tile(tile, embeddings, family="sincere")
    if tile_k is not None:  # tiled path: O(B*tile) memory (docs/performance.md)
        return tiled_sincere_loss(
            embeddings,
            labels,
            temperature=temperature,
            normalize=normalize,
            base_temperature=base_temperature,
            reduction=reduction,
            validate=validate,
            tile=tile_k,
        )

    z, lab, t = prepare_labelled(embeddings, labels, temperature, normalize, reduction, validate)
    scale = base_scale(t, base_temperature, validate=validate)
    rows = sincere_rows(_logits(z, t), lab)
    return apply_scale(_reduce(rows, _valid(lab), reduction), scale).to(embeddings.dtype)


def supcon_from_logits(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    variant: Variant = "out",
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    r"""SupCon from a precomputed ``(n, n)`` logit matrix :math:`s_{ij}` (row ``i`` is anchor
    ``i``; the diagonal is ignored). Same formula and policies as :func:`supcon_loss` with the
    similarity and temperature already applied."""
    check_inputs(D.FROM_LOGITS, validate, logits=logits, labels=labels)
    x, lab = logits, labels
    v = check_variant(variant)
    check_reduction(reduction)
    rows = supcon_rows(x.to(compute_dtype(x)), lab, v)
    return _reduce(rows, _valid(lab), reduction).to(x.dtype)


def sincere_from_logits(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    """SINCERE from a precomputed ``(n, n)`` logit matrix (see :func:`supcon_from_logits`)."""
    check_inputs(D.FROM_LOGITS, validate, logits=logits, labels=labels)
    x, lab = logits, labels
    check_reduction(reduction)
    rows = sincere_rows(x.to(compute_dtype(x)), lab)
    return _reduce(rows, _valid(lab), reduction).to(x.dtype)


class SupConLoss(nn.Module):
    r"""Module form of :func:`supcon_loss`: every keyword of the function is a constructor
    argument (``learn_temperature=True``: :math:`\tau` is an ``nn.Parameter``; a tensor
    ``temperature`` passed in is used as is)."""

    def __init__(
        self,
        temperature: Temperature = 0.1,
        variant: Variant = "out",
        normalize: bool = True,
        base_temperature: Temperature | None = None,
        reduction: Reduction = "mean",
        *,
        learn_temperature: bool = False,
        validate: bool = True,
        tile: int | None = None,
    ) -> None:
        super().__init__()
        self.temperature = module_temperature(temperature, learn_temperature)
        self.variant: Variant = check_variant(variant)
        self.normalize = normalize
        if base_temperature is not None:
            check_param(D.BASE_TEMPERATURE, base_temperature)
        self.base_temperature = base_temperature
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate
        self.tile = tile

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return supcon_loss(
            embeddings,
            labels,
            temperature=self.temperature,
            variant=self.variant,
            normalize=self.normalize,
            base_temperature=self.base_temperature,
            reduction=self.reduction,
            validate=self.validate,
            tile=self.tile,
        )


class SINCERELoss(nn.Module):
    """Module form of :func:`sincere_loss` (keywords and ``learn_temperature`` as in
    :class:`SupConLoss`)."""

    def __init__(
        self,
        temperature: Temperature = 0.1,
        normalize: bool = True,
        base_temperature: Temperature | None = None,
        reduction: Reduction = "mean",
        *,
        learn_temperature: bool = False,
        validate: bool = True,
        tile: int | None = None,
    ) -> None:
        super().__init__()
        self.temperature = module_temperature(temperature, learn_temperature)
        self.normalize = normalize
        if base_temperature is not None:
            check_param(D.BASE_TEMPERATURE, base_temperature)
        self.base_temperature = base_temperature
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate
        self.tile = tile

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return sincere_loss(
            embeddings,
            labels,
            temperature=self.temperature,
            normalize=self.normalize,
            base_temperature=self.base_temperature,
            reduction=self.reduction,
            validate=self.validate,
            tile=self.tile,
        )
