r"""Aljundi et al. (2023): prototype cosine-softmax cross-entropy and ESupCon (**reconstructed**).

Source: Aljundi, Patel, Šulc, Olmeda, Chumerin, "Contrastive Classification and Representation
Learning with Probabilistic Interpretation", arXiv 2211.03646 (AAAI 2023). **The paper body
was not available.** The formulas here are **reconstructed** (research note §3) from the
abstract and the Fig. 1 caption: "class weights (prototypes) form positive pairs with
corresponding class samples and negative pairs with other classes samples". The ESupCon
formula lives in one function, :func:`esupcon_formula`, so that it is easy to correct once the
paper's own equation is available.

Notation: :math:`z_i` unit-norm embeddings, :math:`w_k` unit-norm class prototypes
(``normalize=True``), prototype logits :math:`t_{ik}=z_i^\top w_k/\tau`, sample logits
:math:`s_{ij}=z_i^\top z_j/\tau`; :math:`A(i), P(i), N(i)` as in
:mod:`softnce_theory.losses.sincere`.

Policies: labels are integers in ``[0, K)`` with ``K`` the number of prototypes; inputs
float16/bfloat16/float32/float64 (embeddings and prototypes may differ), computed in at least
float32, result in the embeddings' dtype. NaN/Inf in embeddings or prototypes propagate.
Every ESupCon anchor has at least one positive (its own prototype), so the mean runs over all
``B * V`` rows.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from softnce_theory.losses import domains as D
from softnce_theory.losses._common import (
    Reduction,
    Temperature,
    check_bool,
    check_inputs,
    check_offset,
    check_reduction,
    check_tau,
    compute_dtype,
    module_temperature,
    prepare_prototypes,
    reduce,
    softplus,
    unit_rows,
    values_checked,
)
from softnce_theory.losses.sincere import label_masks, masked_logsumexp, positive_spread
from softnce_theory.losses.tiled import resolve_tile, tiled_esupcon_loss

__all__ = [
    "ESupConLoss",
    "PrototypeCrossEntropy",
    "esupcon_formula",
    "esupcon_loss",
    "prototype_cross_entropy",
    "prototype_predict",
]


def _proto_ce_rows(proto_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    r""":math:`-\log\mathrm{softmax}(t_i)_{y_i}=\mathrm{softplus}(L_{k\ne y_i}-t_{iy_i})`."""
    k = proto_logits.shape[1]
    own = torch.nn.functional.one_hot(labels.long(), k).to(torch.bool)
    t_own = proto_logits.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    return softplus(masked_logsumexp(proto_logits, ~own) - t_own)


def prototype_cross_entropy(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    prototypes: torch.Tensor,
    *,
    temperature: Temperature = 0.1,
    normalize: bool = True,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    r"""Cross-entropy of a cosine-softmax (prototype) classifier, **reconstructed** form.

    .. math::
        p(y=k\mid x_i)=\operatorname{softmax}_k\big(z_i^\top w_k/\tau\big),\qquad
        \ell_i=-\log p(y=y_i\mid x_i)
              =-\log\frac{e^{z_i^\top w_{y_i}/\tau}}{\sum_k e^{z_i^\top w_k/\tau}}

    With unit-norm :math:`z_i, w_k` the class weights act as contrastive keys: this is InfoNCE
    with query :math:`z_i`, positive key :math:`w_{y_i}` and the other prototypes as
    negatives. Source: Aljundi et al. 2023 (arXiv 2211.03646), abstract and Fig. 1
    ("CE pairs are only defined through classes weights"); reconstructed (research note §3).

    Args:
        embeddings: ``(B, D)``.
        labels: ``(B,)`` integers in ``[0, K)``.
        prototypes: ``(K, D)`` class weights :math:`w_k`.
        temperature: :math:`\tau > 0`.
        normalize: L2-normalise embeddings and prototypes (cosine logits).
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
        validate: run the data-dependent label checks (skipped under ``torch.compile``).
    """
    check_reduction(reduction)
    z, w, lab, t = prepare_prototypes(
        embeddings, labels, prototypes, temperature, normalize, validate, False
    )
    rows = _proto_ce_rows((z @ w.transpose(0, 1)) / t, lab)
    return reduce(rows, reduction).to(embeddings.dtype)


def prototype_predict(
    embeddings: torch.Tensor,
    prototypes: torch.Tensor,
    temperature: Temperature = 0.1,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    r"""Class probabilities :math:`\operatorname{softmax}_k(z^\top w_k/\tau)`, shape ``(B, K)``
    (or ``(B, V, K)`` for multi-view input), in the embeddings' dtype."""
    check_inputs(D.PROTOTYPE_PREDICT, True, embeddings=embeddings, prototypes=prototypes)
    x, w = embeddings, prototypes
    t = check_tau(temperature)
    check_bool(normalize, "normalize")
    dt = compute_dtype(x, w)
    z, wc = x.to(dt), w.to(dt)
    if normalize:
        z, wc = unit_rows(z), unit_rows(wc)
    return torch.softmax((z @ wc.transpose(0, 1)) / t, dim=-1).to(x.dtype)


# ----------------------------------------------------------------------------- ESupCon


def _check_formula_args(
    sample_logits: object,
    proto_logits: object,
    labels: object,
    row_labels: object,
    offset: object,
    validate: bool,
) -> int:
    """The checks of :func:`esupcon_formula`; returns the offset."""
    check_inputs(
        D.ESUPCON_FORMULA,
        validate,
        sample_logits=sample_logits,
        proto_logits=proto_logits,
        labels=labels,
        row_labels=row_labels,
    )
    assert isinstance(sample_logits, torch.Tensor) and isinstance(labels, torch.Tensor)
    s, lab = sample_logits, labels
    m, n = s.shape
    if row_labels is None:
        if m != n:
            raise ValueError(
                f"sample_logits must be square (n, n) without row_labels, got {tuple(s.shape)}"
            )
        if offset != 0:
            raise ValueError(f"offset requires row_labels (an anchor subset), got {offset!r}")
        return 0
    assert isinstance(row_labels, torch.Tensor)
    rl = row_labels
    off = check_offset(offset, m, n)
    if values_checked(validate) and not (rl.is_meta or lab.is_meta):
        if not torch.equal(rl.long(), lab[off : off + m].long()):
            raise ValueError(
                f"row_labels must equal labels[offset:offset + m] (the anchors' own columns) "
                f"at offset = {off}"
            )
    return off


def esupcon_formula(
    sample_logits: torch.Tensor,
    proto_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    row_labels: torch.Tensor | None = None,
    offset: int = 0,
    validate: bool = True,
) -> torch.Tensor:
    r"""**RECONSTRUCTED ESupCon formula (edit here to correct it).** Per-anchor losses.

    For anchor :math:`i` the contrast set is :math:`A(i)` (all other samples) plus all
    :math:`K` prototypes; the positives are :math:`P(i)\cup\{w_{y_i}\}`:

    .. math::
        \ell_i = \frac{-1}{|P(i)|+1}\sum_{u\in P(i)\cup\{w_{y_i}\}}
            \log\frac{e^{c_{iu}}}{\sum_{a\in A(i)}e^{s_{ia}}+\sum_{k=1}^{K}e^{t_{ik}}}

    (:math:`c_{iu}` is :math:`s_{iu}` for a sample, :math:`t_{iy_i}` for the prototype). This is
    SupCon :math:`\mathcal L_{out}` on the augmented logit row; evaluated as
    :math:`\mathrm{softplus}(L_{neg}-L_{pos})+(L_{pos}-\overline{c_{i,pos}})`.
    Prototypes are not anchors in this reconstruction.

    Args:
        sample_logits: ``(n, n)`` logits :math:`s_{ij}` (diagonal ignored).
        proto_logits: ``(n, K)`` logits :math:`t_{ik}`.
        labels: ``(n,)`` labels in ``[0, K)``.
        row_labels, offset: anchor subset (distributed): ``sample_logits`` ``(m, n)`` and
            ``proto_logits`` ``(m, K)`` are the rows ``[offset, offset + m)``, ``row_labels``
            their labels (as :func:`softnce_theory.losses.sincere.supcon_rows`);
            ``row_labels`` must equal ``labels[offset:offset + m]``.
        validate: run the data-dependent label checks (range, ``row_labels``).

    Shapes, dtypes and devices are always checked; ``ValueError`` names the argument.
    """
    off = _check_formula_args(sample_logits, proto_logits, labels, row_labels, offset, validate)
    k = proto_logits.shape[1]
    rows = labels if row_labels is None else row_labels
    pos_s, neg_s = label_masks(labels, sample_logits.shape[1], row_labels, off)
    own = torch.nn.functional.one_hot(rows.long(), k).to(torch.bool)
    logits = torch.cat([sample_logits, proto_logits], dim=1)  # (m, n + K)
    pos = torch.cat([pos_s, own], dim=1)
    neg = torch.cat([neg_s, ~own], dim=1)
    lse_pos = masked_logsumexp(logits, pos)
    lse_neg = masked_logsumexp(logits, neg)
    return softplus(lse_neg - lse_pos) + positive_spread(logits, pos)


def esupcon_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    prototypes: torch.Tensor,
    *,
    temperature: Temperature = 0.1,
    normalize: bool = True,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""ESupCon of Aljundi et al. 2023, **reconstructed** (see :func:`esupcon_formula`).

    The class prototypes join SupCon's contrast set: the anchor's own prototype is an extra
    positive, the other prototypes are extra negatives. With ``B = 1`` (no other sample) it
    equals :func:`prototype_cross_entropy`; an anchor without same-class samples gets the
    prototype CE plus :math:`\log(1+\sum_{n}e^{s_{in}}/\sum_k e^{t_{ik}})`.

    Args:
        embeddings: ``(B, D)`` or ``(B, V, D)`` (flattened sample-major as in
            :func:`softnce_theory.losses.sincere.supcon_loss`).
        labels: ``(B,)`` integers in ``[0, K)``.
        prototypes: ``(K, D)``.
        temperature, normalize, reduction, validate: as in :func:`prototype_cross_entropy`;
            ``"none"`` returns ``B * V`` per-row losses.
    """
    tile_k = resolve_tile(tile, embeddings, family="esupcon")
    if tile_k is not None:  # tiled path: O(B*tile) memory (docs/performance.md)
        return tiled_esupcon_loss(
            embeddings,
            labels,
            prototypes,
            temperature=temperature,
            normalize=normalize,
            reduction=reduction,
            validate=validate,
            tile=tile_k,
        )

    check_reduction(reduction)
    z, w, lab, t = prepare_prototypes(
        embeddings, labels, prototypes, temperature, normalize, validate, True
    )
    rows = esupcon_formula(
        (z @ z.transpose(0, 1)) / t, (z @ w.transpose(0, 1)) / t, lab, validate=False
    )
    return reduce(rows, reduction).to(embeddings.dtype)


# ----------------------------------------------------------------------------- modules


def _init_prototypes(num_classes: int, dim: int, prototypes: torch.Tensor | None) -> torch.Tensor:
    for name, v in (("num_classes", num_classes), ("dim", dim)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):  # numpy ints are Integral
            raise ValueError(f"{name} must be an integer >= 1, got {type(v).__name__} {v!r}")
    num_classes, dim = int(num_classes), int(dim)
    if prototypes is not None:
        check_inputs(D.ESUPCON_LOSS, True, prototypes=prototypes)
        if tuple(prototypes.shape) != (num_classes, dim):
            raise ValueError(
                f"prototypes must have shape (num_classes, dim) = ({num_classes}, {dim}), got "
                f"{tuple(prototypes.shape)}"
            )
        return prototypes.detach().clone()
    if num_classes < 1 or dim < 1:
        raise ValueError(f"num_classes and dim must be >= 1, got {num_classes}, {dim}")
    return torch.randn(num_classes, dim) / math.sqrt(dim)


class PrototypeCrossEntropy(nn.Module):
    r""":func:`prototype_cross_entropy` with learnable prototypes (``nn.Parameter`` ``(K, D)``)
    and, with ``learn_temperature=True``, a learnable :math:`\tau`."""

    def __init__(
        self,
        num_classes: int,
        dim: int,
        temperature: Temperature = 0.1,
        normalize: bool = True,
        reduction: Reduction = "mean",
        prototypes: torch.Tensor | None = None,
        *,
        learn_temperature: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(_init_prototypes(num_classes, dim, prototypes))
        self.temperature = module_temperature(temperature, learn_temperature)
        self.normalize = normalize
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return prototype_cross_entropy(
            embeddings,
            labels,
            self.prototypes,
            temperature=self.temperature,
            normalize=self.normalize,
            reduction=self.reduction,
            validate=self.validate,
        )

    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        return prototype_predict(
            embeddings, self.prototypes, self.temperature, normalize=self.normalize
        )


class ESupConLoss(nn.Module):
    r""":func:`esupcon_loss` with learnable prototypes (``nn.Parameter`` ``(K, D)``) and, with
    ``learn_temperature=True``, a learnable :math:`\tau`."""

    def __init__(
        self,
        num_classes: int,
        dim: int,
        temperature: Temperature = 0.1,
        normalize: bool = True,
        reduction: Reduction = "mean",
        prototypes: torch.Tensor | None = None,
        *,
        learn_temperature: bool = False,
        validate: bool = True,
        tile: int | None = None,
    ) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(_init_prototypes(num_classes, dim, prototypes))
        self.temperature = module_temperature(temperature, learn_temperature)
        self.normalize = normalize
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate
        self.tile = tile

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return esupcon_loss(
            embeddings,
            labels,
            self.prototypes,
            temperature=self.temperature,
            normalize=self.normalize,
            reduction=self.reduction,
            validate=self.validate,
            tile=self.tile,
        )

    def predict(self, embeddings: torch.Tensor) -> torch.Tensor:
        return prototype_predict(
            embeddings, self.prototypes, self.temperature, normalize=self.normalize
        )
