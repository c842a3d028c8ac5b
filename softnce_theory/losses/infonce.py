r"""Ranking NCE, InfoNCE and the CLIP-style symmetric InfoNCE.

* :func:`ranking_nce` -- the ranking objective of Ma & Collins (2018) on precomputed scores,
  column 0 the positive, with the optional :math:`-\log q` noise correction.
* :func:`info_nce` -- InfoNCE (van den Oord et al. 2018) from raw embeddings: in-batch keys, or
  explicit negatives shared by all rows (``"unpaired"``) or per row (``"paired"``), cosine or dot
  similarity, optional log-q correction (Ma & Collins' :math:`s - \log q`; the "logQ correction"
  of Yi et al. 2019 for in-batch negatives).
* :func:`symmetric_info_nce` -- CLIP's :math:`(L(a\to b) + L(b\to a))/2` on in-batch keys.

Conventions shared by the three losses:

* the per-row loss :math:`-\log\mathrm{softmax}(z)_{\mathrm{pos}}` is evaluated as
  :math:`\log\big(1 + \sum_{k\ne\mathrm{pos}} e^{z_k - z_{\mathrm{pos}}}\big)` with ``logsumexp``
  and ``logaddexp``, so losses far below 1 keep their relative precision;
* computation runs in ``compute_dtype`` (at least float32; cosine normalisation happens there,
  so float16 embeddings whose squared norm overflows float16 are safe); the result has the dtype
  of the first argument (``scores``, ``query`` or ``a``);
* the log-q correction is subtracted after the temperature: :math:`z = \mathrm{sim}/t - \log q`;
* log q values must be finite. A ``-inf`` (a candidate with :math:`q = 0`, which the proposal
  could not have drawn) raises ``ValueError`` when ``validate=True``; with ``validate=False`` it
  yields ``nan``/``inf``. To drop a negative, set its *score* to ``-inf`` instead;
* NaN/Inf in scores or embeddings propagate. With no negatives (one candidate) the loss is 0.
"""

from __future__ import annotations

import torch
from torch import nn

from softnce_theory.losses import domains as D
from softnce_theory.losses._common import (
    NegativeMode,
    Reduction,
    Similarity,
    Temperature,
    check_inputs,
    check_log_q,
    check_negative_mode,
    check_reduction,
    check_similarity,
    compute_dtype,
    embed,
    module_temperature,
    reduce,
    resolve_temperature,
    softplus,
)
from softnce_theory.losses.tiled import resolve_tile, tiled_info_nce, tiled_symmetric_info_nce

__all__ = [
    "InfoNCE",
    "RankingNCE",
    "SymmetricInfoNCE",
    "info_nce",
    "ranking_nce",
    "symmetric_info_nce",
]

# ``Similarity`` and ``NegativeMode`` are declared in ``_common`` (shared with the tiled and
# distributed paths) and re-exported here.


# ------------------------------------------------------------------------------ helpers


def _log1p_sum_exp(d: torch.Tensor) -> torch.Tensor:
    r"""Row-wise :math:`\log(1 + \sum_k e^{d_k}) = \mathrm{softplus}(\mathrm{LSE}_k\, d_k)`.

    A row whose entries are all ``-inf`` (every negative masked by a ``-inf`` score, or no
    negative at all) gives exactly 0 with a zero gradient, first and second order: such rows
    get a finite placeholder before ``logsumexp`` (whose backward is
    :math:`e^{-\infty - (-\infty)}` = NaN there) and :func:`softplus` of ``-inf`` is 0.
    """
    dead = (d == float("-inf")).all(dim=1)
    rest = torch.logsumexp(torch.where(dead.unsqueeze(1), torch.zeros_like(d), d), dim=1)
    return softplus(torch.where(dead, torch.full_like(rest, float("-inf")), rest))


def _positive_first_loss(z: torch.Tensor) -> torch.Tensor:
    r"""Row-wise :math:`-\log\mathrm{softmax}(z)_0 = \log(1 + \sum_{k\ge1} e^{z_k - z_0})`."""
    return _log1p_sum_exp(z[:, 1:] - z[:, :1])


def _diagonal_loss(z: torch.Tensor) -> torch.Tensor:
    r"""Row-wise :math:`-\log\mathrm{softmax}(z_i)_i` for a square logit matrix."""
    d = z - torch.diagonal(z).unsqueeze(1)
    eye = torch.eye(z.shape[0], dtype=torch.bool, device=z.device)
    return _log1p_sum_exp(d.masked_fill(eye, float("-inf")))


# ------------------------------------------------------------------------------ ranking NCE


def ranking_nce(
    scores: torch.Tensor,
    *,
    log_q: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    r"""Ranking noise-contrastive estimation (positive in column 0).

    .. math::
        \ell_i = -(s_{i0} - \log q_{i0}) + \log\sum_{k=0}^{K} \exp(s_{ik} - \log q_{ik})
              = \log\Big(1 + \sum_{k=1}^{K} e^{\bar s_{ik} - \bar s_{i0}}\Big),
        \qquad \bar s = s - \log q

    Source: Ma & Collins (2018), "Noise contrastive estimation and negative sampling for
    conditional models: consistency and statistical efficiency", EMNLP (arXiv 1809.01812), §3,
    the ranking objective :math:`\mathcal L_R` (here negated into a loss and averaged). For any
    :math:`K\ge1` its population minimiser is :math:`s(x,y) = \log p(y|x) + c(x)`.

    Args:
        scores: ``(N, K+1)`` scores :math:`s(x_i, y_{ik})`; column 0 is the true label, the
            other columns the :math:`K` noise samples.
        log_q: optional :math:`\log q(y_{ik})` of the noise distribution, broadcastable to
            ``scores`` (``(K+1,)``, ``(N, K+1)``, ...). Must be finite (see the module doc for
            the ``-inf`` policy). ``None`` means no correction (uniform q).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` over rows.
        validate: run the data-dependent finiteness check of ``log_q``.

    A ``-inf`` score masks a noise candidate; ``K = 0`` (one column) gives a loss of 0.
    """
    check_inputs(D.RANKING_NCE, validate, scores=scores)
    check_reduction(reduction)
    if log_q is None:
        s = scores.to(compute_dtype(scores))
    else:
        lq = check_log_q(log_q, "log_q", tuple(scores.shape), scores, validate, "scores")
        dt = compute_dtype(scores, lq)
        s = scores.to(dt) - lq.to(dt)
    return reduce(_positive_first_loss(s), reduction).to(scores.dtype)


# ------------------------------------------------------------------------------ InfoNCE


def info_nce(
    query: torch.Tensor,
    positive_key: torch.Tensor,
    negative_keys: torch.Tensor | None = None,
    *,
    temperature: Temperature | None = None,
    logit_scale: Temperature | None = None,
    similarity: Similarity = "cosine",
    negative_mode: NegativeMode = "unpaired",
    key_log_q: torch.Tensor | None = None,
    negative_log_q: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""InfoNCE (one direction: queries against keys).

    .. math::
        \ell_i = -\log\frac{\exp(z_{i,\mathrm{pos}})}{\sum_{c\in\mathcal C_i}\exp(z_{ic})},
        \qquad z_{ic} = \mathrm{sim}(q_i, k_c)/t - \log q(k_c)

    Source: van den Oord et al. (2018), "Representation learning with contrastive predictive
    coding" (arXiv 1807.03748), eq. (4); with ``log q`` it is Ma & Collins' (2018) ranking NCE
    on similarity scores (Yi et al. 2019's logQ correction for in-batch negatives).

    Candidates :math:`\mathcal C_i`:

    * ``negative_keys=None``: **in-batch** -- all ``B`` keys, the positive of row ``i`` is key
      ``i`` (a ``B x B`` logit matrix, labels ``arange(B)``). This is exactly
      ``info_nce(query, positive_key)`` of the info-nce-pytorch package (cosine, mean).
    * ``negative_mode="unpaired"``: the positive key ``i`` followed by the ``M`` shared negatives
      ``negative_keys`` ``(M, D)``.
    * ``negative_mode="paired"``: the positive key ``i`` followed by ``negative_keys[i]``
      (``(B, M, D)``).

    Args:
        query: ``(B, D)`` query embeddings (raw; normalised here for cosine).
        positive_key: ``(B, D)`` positive keys, same dtype and device as ``query``.
        negative_keys: ``None``, ``(M, D)`` (unpaired) or ``(B, M, D)`` (paired).
        temperature: :math:`t > 0`, default 0.1: a number, or a one-element floating tensor
            that may require grad (``t.grad`` is filled, also on the tiled path).
        logit_scale: CLIP's convention instead of ``temperature`` (not both):
            :math:`t = e^{-\mathrm{logit\_scale}}`, i.e. the logits are
            :math:`e^{\mathrm{logit\_scale}}\,\mathrm{sim}`; a number or a learnable tensor.
        similarity: ``"cosine"`` (rows scaled to unit norm by
            :func:`~softnce_theory.losses._common.unit_rows`; a zero row stays zero) or
            ``"dot"``.
        negative_mode: ``"unpaired"`` or ``"paired"`` (ignored without ``negative_keys``).
        key_log_q: optional ``(B,)`` log noise probabilities of the keys: of every in-batch key
            (column ``j``) or of each row's positive key (explicit negatives).
        negative_log_q: optional log noise probabilities of the negatives, ``(M,)`` or
            ``(B, M)``; requires ``negative_keys``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        validate: run the data-dependent finiteness checks of the log-q tensors.
        tile: ``None`` (measured dispatch), ``0`` (dense) or ``k > 0`` (tiled, tile edge
            ``k``); validated in every mode, but explicit negatives always run dense.
    """
    t = resolve_temperature(temperature, logit_scale, default=0.1, validate=validate)
    # ``tile`` is validated in every mode; explicit negatives have no tiled path (dense always)
    tile_k = resolve_tile(tile, query, family="infonce")
    if tile_k is not None and negative_keys is None and negative_log_q is None:
        return tiled_info_nce(  # tiled path: O(B*tile) memory (docs/performance.md)
            query,
            positive_key,
            temperature=t,
            similarity=similarity,
            key_log_q=key_log_q,
            negative_mode=negative_mode,
            reduction=reduction,
            validate=validate,
            tile=tile_k,
        )

    check_similarity(similarity)
    check_negative_mode(negative_mode)
    check_inputs(
        D.INFO_NCE, validate, query=query, positive_key=positive_key, negative_keys=negative_keys
    )
    check_reduction(reduction)
    b = query.shape[0]
    if negative_keys is not None:
        nd = 2 if negative_mode == "unpaired" else 3
        if negative_keys.dim() != nd:
            raise ValueError(
                f"negative_keys must be {nd}-D for negative_mode={negative_mode!r}, got shape "
                f"{tuple(negative_keys.shape)}"
            )
    elif negative_log_q is not None:
        raise ValueError("negative_log_q requires negative_keys (got negative_keys=None)")
    klq = None if key_log_q is None else check_log_q(key_log_q, "key_log_q", (b,), query, validate)

    dt = compute_dtype(query)
    q = embed(query, dt, similarity)
    k = embed(positive_key, dt, similarity)
    if negative_keys is None:
        z = (q @ k.T) / t
        if klq is not None:
            z = z - klq.to(dt).unsqueeze(0)
        loss = _diagonal_loss(z)
    else:
        n = embed(negative_keys, dt, similarity)
        m = n.shape[-2]
        pos = (q * k).sum(-1, keepdim=True) / t
        neg = (q @ n.T) / t if n.dim() == 2 else (n @ q.unsqueeze(-1)).squeeze(-1) / t
        if klq is not None:
            pos = pos - klq.to(dt).unsqueeze(1)
        if negative_log_q is not None:
            nlq = check_log_q(negative_log_q, "negative_log_q", (b, m), query, validate)
            neg = neg - nlq.to(dt)
        loss = _positive_first_loss(torch.cat([pos, neg], dim=1))
    return reduce(loss, reduction).to(query.dtype)


def symmetric_info_nce(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    temperature: Temperature | None = None,
    logit_scale: Temperature | None = None,
    similarity: Similarity = "cosine",
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""CLIP-style symmetric InfoNCE on in-batch keys.

    .. math::
        S_{ij} = \mathrm{sim}(a_i, b_j)/t,\qquad
        \ell_i = \tfrac12\Big(-\log\mathrm{softmax}_j(S_{ij})_{i}
                 - \log\mathrm{softmax}_r(S_{ri})_{i}\Big)

    i.e. :math:`(L(a\to b) + L(b\to a))/2`, the :math:`b\to a` direction being the column-wise
    softmax of the same similarity matrix. Source: Radford et al. (2021), CLIP
    (arXiv 2103.00020), Figure 3.

    Args:
        a, b: ``(B, D)`` paired embeddings (same dtype and device).
        temperature: :math:`t > 0`, default 0.1 (a number or a learnable tensor, as in
            :func:`info_nce`).
        logit_scale: CLIP's learnable ``logit_scale`` instead (not both):
            :math:`t = e^{-\mathrm{logit\_scale}}`.
        similarity: ``"cosine"`` or ``"dot"``.
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"`` (per pair ``i``).
        validate: check a tensor temperature's value (finite, > 0) in eager mode.
    """
    t = resolve_temperature(temperature, logit_scale, default=0.1, validate=validate)
    tile_k = resolve_tile(tile, a, family="symmetric_infonce")
    if tile_k is not None:  # tiled path: O(B*tile) memory (docs/performance.md)
        return tiled_symmetric_info_nce(
            a,
            b,
            temperature=t,
            similarity=similarity,
            reduction=reduction,
            validate=validate,
            tile=tile_k,
        )

    check_inputs(D.SYMMETRIC_INFO_NCE, validate, a=a, b=b)
    check_similarity(similarity)
    check_reduction(reduction)
    dt = compute_dtype(a)
    z = (embed(a, dt, similarity) @ embed(b, dt, similarity).T) / t
    loss = (_diagonal_loss(z) + _diagonal_loss(z.T)) / 2
    return reduce(loss, reduction).to(a.dtype)


# ------------------------------------------------------------------------------ modules


class RankingNCE(nn.Module):
    """Module form of :func:`ranking_nce` (``log_q`` is a forward argument)."""

    def __init__(self, reduction: Reduction = "mean", *, validate: bool = True) -> None:
        super().__init__()
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, scores: torch.Tensor, log_q: torch.Tensor | None = None) -> torch.Tensor:
        return ranking_nce(scores, log_q=log_q, reduction=self.reduction, validate=self.validate)


def _module_scale(
    temperature: Temperature | None, logit_scale: Temperature | None, learn: bool
) -> tuple[Temperature | None, Temperature | None]:
    """``(temperature, logit_scale)`` attributes of the InfoNCE modules: exactly one is set
    (default temperature 0.1); ``learn=True`` makes it an ``nn.Parameter``."""
    if logit_scale is None:
        return module_temperature(0.1 if temperature is None else temperature, learn), None
    if temperature is not None:
        resolve_temperature(temperature, logit_scale, default=0.1)  # raises: not both
    return None, module_temperature(logit_scale, learn, logit=True)


class InfoNCE(nn.Module):
    """Module form of :func:`info_nce`: every keyword of the function is a constructor argument
    (the per-batch ``negative_keys``, ``key_log_q`` and ``negative_log_q`` are forward
    arguments).

    ``temperature`` (default 0.1) or CLIP's ``logit_scale`` (not both); with
    ``learn_temperature=True`` the one given becomes an ``nn.Parameter`` (a tensor passed in,
    e.g. a shared ``nn.Parameter``, is used as is).
    """

    def __init__(
        self,
        temperature: Temperature | None = None,
        similarity: Similarity = "cosine",
        negative_mode: NegativeMode = "unpaired",
        reduction: Reduction = "mean",
        *,
        logit_scale: Temperature | None = None,
        learn_temperature: bool = False,
        validate: bool = True,
        tile: int | None = None,
    ) -> None:
        super().__init__()
        self.temperature, self.logit_scale = _module_scale(
            temperature, logit_scale, learn_temperature
        )
        self.similarity: Similarity = check_similarity(similarity)
        self.negative_mode: NegativeMode = check_negative_mode(negative_mode)
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate
        self.tile = tile

    def forward(
        self,
        query: torch.Tensor,
        positive_key: torch.Tensor,
        negative_keys: torch.Tensor | None = None,
        key_log_q: torch.Tensor | None = None,
        negative_log_q: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return info_nce(
            query,
            positive_key,
            negative_keys,
            temperature=self.temperature,
            logit_scale=self.logit_scale,
            similarity=self.similarity,
            negative_mode=self.negative_mode,
            key_log_q=key_log_q,
            negative_log_q=negative_log_q,
            reduction=self.reduction,
            validate=self.validate,
            tile=self.tile,
        )


class SymmetricInfoNCE(nn.Module):
    """Module form of :func:`symmetric_info_nce` (``temperature``/``logit_scale``,
    ``learn_temperature``, ``validate`` and ``tile`` as in :class:`InfoNCE`; CLIP learns
    ``logit_scale``, initialised to ``log(1/0.07)``)."""

    def __init__(
        self,
        temperature: Temperature | None = None,
        similarity: Similarity = "cosine",
        reduction: Reduction = "mean",
        *,
        logit_scale: Temperature | None = None,
        learn_temperature: bool = False,
        validate: bool = True,
        tile: int | None = None,
    ) -> None:
        super().__init__()
        self.temperature, self.logit_scale = _module_scale(
            temperature, logit_scale, learn_temperature
        )
        self.similarity: Similarity = check_similarity(similarity)
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate
        self.tile = tile

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return symmetric_info_nce(
            a,
            b,
            temperature=self.temperature,
            logit_scale=self.logit_scale,
            similarity=self.similarity,
            reduction=self.reduction,
            validate=self.validate,
            tile=self.tile,
        )
