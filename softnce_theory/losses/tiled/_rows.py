r"""Tiled per-anchor losses of an anchor subset: rows ``[offset, offset + m)`` of a batch.

The distributed losses (:mod:`softnce_theory.losses.distributed`) compute, on each rank, the
losses of its ``m`` local anchors against the ``n`` rows of the gathered batch. These functions
do that without storing the ``m x n`` logits: memory :math:`O(\mathrm{tile}^2 + (m+n)D)`,
i.e. :math:`O(B_{local}\cdot\mathrm{tile} + B D)` at most. They take *prepared* inputs (compute
dtype, already normalised) and return per-anchor losses in the anchors' order; validation,
normalisation and the reduction belong to the caller.

Formulas: those of :mod:`softnce_theory.losses.tiled._losses` (SupCon, SINCERE, ESupCon,
in-batch InfoNCE) restricted to the anchor rows, assembled from
:class:`~softnce_theory.losses.tiled._kernels.RowLabelStats`,
:class:`~softnce_theory.losses.tiled._kernels.RowPosSoftplus` and
:class:`~softnce_theory.losses.tiled._kernels.CrossLSE` (whose ``exclude_offset`` already
handles rectangular blocks). ``scale`` is :math:`1/\tau` (a float, or a 0-d tensor: the kernels
return its gradient).
"""

from __future__ import annotations

from typing import Literal

import torch

from softnce_theory.losses._common import softplus
from softnce_theory.losses.tiled._kernels import (
    NEG,
    POS_LSE,
    POS_SUM,
    CrossLSE,
    RowLabelStats,
    RowPosSoftplus,
    Scale,
)

Kind = Literal["out", "in", "sincere"]


class _Rows:
    """Anchors and batch sorted by label (stable), with the anchors' self columns."""

    def __init__(
        self, q: torch.Tensor, yq: torch.Tensor, k: torch.Tensor, yk: torch.Tensor, offset: int
    ) -> None:
        n = k.shape[0]
        self.perm = torch.argsort(yq, stable=True)
        perm_k = torch.argsort(yk, stable=True)
        where = torch.empty_like(perm_k).scatter_(0, perm_k, torch.arange(n, device=k.device))
        self.self_cols = where.index_select(0, self.perm + offset)
        self.yq = yq.index_select(0, self.perm).long()
        self.yk = yk.index_select(0, perm_k).long()
        self.q = q.index_select(0, self.perm)
        self.k = k.index_select(0, perm_k)
        hi = torch.searchsorted(self.yk, self.yq, right=True)
        self.cnt = (hi - torch.searchsorted(self.yk, self.yq) - 1).to(q.dtype)  # |P(i)|

    def unsort(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(rows).index_copy(0, self.perm, rows)


def positive_counts(row_labels: torch.Tensor, col_labels: torch.Tensor) -> torch.Tensor:
    """:math:`|P(i)|` of each anchor (its label's count in the batch minus itself), without an
    ``m x n`` mask: ``O((m + n) log n)``."""
    yk = torch.sort(col_labels.long()).values
    yq = row_labels.long()
    return torch.searchsorted(yk, yq, right=True) - torch.searchsorted(yk, yq) - 1


def labelled_rows(
    q: torch.Tensor,
    yq: torch.Tensor,
    k: torch.Tensor,
    yk: torch.Tensor,
    offset: int,
    scale: Scale,
    tile: int,
    kind: Kind,
) -> torch.Tensor:
    r"""SupCon :math:`\mathcal L_{out}` / :math:`\mathcal L_{in}` or SINCERE per anchor
    (0 for anchors without positives), anchors ``q`` = batch rows ``[offset, offset+m)``.

    .. math::
        \ell^{out}_i = \operatorname{softplus}(L_N - L_P) + L_P - \tfrac{1}{|P|}\textstyle
          \sum_p s_{ip},\quad
        \ell^{in}_i = \operatorname{softplus}(L_N - L_P) + \log|P|,\quad
        \ell^{sincere}_i = \tfrac{1}{|P|}\textstyle\sum_p \operatorname{softplus}(L_N - s_{ip})
    """
    r = _Rows(q, yq, k, yk, offset)
    valid = r.cnt > 0
    cnt = r.cnt.clamp(min=1.0)
    args = (r.yq, r.yk, r.self_cols, tile)
    if kind == "sincere":
        _, lse_neg, _, _ = RowLabelStats.apply(r.q, r.k, scale, *args, NEG)
        rows = RowPosSoftplus.apply(r.q, r.k, lse_neg, scale, *args) / cnt
    else:
        flags = NEG | POS_LSE | (POS_SUM if kind == "out" else 0)
        _, lse_neg, lse_pos, sum_pos = RowLabelStats.apply(r.q, r.k, scale, *args, flags)
        lse_pos = torch.where(valid, lse_pos, torch.zeros_like(lse_pos))
        head = softplus(lse_neg - lse_pos)
        rows = head + (lse_pos - sum_pos / cnt if kind == "out" else torch.log(cnt))
    return r.unsort(torch.where(valid, rows, torch.zeros_like(rows)))


def esupcon_rows(
    q: torch.Tensor,
    yq: torch.Tensor,
    k: torch.Tensor,
    yk: torch.Tensor,
    offset: int,
    prototypes: torch.Tensor,
    scale: Scale,
    tile: int,
) -> torch.Tensor:
    r"""ESupCon per anchor (the reconstructed form of
    :func:`softnce_theory.losses.aljundi.esupcon_formula`), anchors = batch rows
    ``[offset, offset+m)``: SupCon :math:`\mathcal L_{out}` on the sample row augmented with the
    prototype logits :math:`t_{ik} = c\,q_i\cdot w_k`.

    .. math::
        \ell_i = \operatorname{softplus}(L^{+}_N - L^{+}_P) + L^{+}_P -
          \frac{\sum_{p} s_{ip} + t_{iy_i}}{|P(i)|+1},\quad
        L^{+}_P = \log(e^{L_P} + e^{t_{iy_i}}),\ L^{+}_N = \log(e^{L_N} +
          \textstyle\sum_{k\ne y_i} e^{t_{ik}})
    """
    r = _Rows(q, yq, k, yk, offset)
    _, lse_neg, lse_pos, sum_pos = RowLabelStats.apply(
        r.q, r.k, scale, r.yq, r.yk, r.self_cols, tile, NEG | POS_LSE | POS_SUM
    )
    lse_proto, _ = CrossLSE.apply(r.q, prototypes, None, r.yq, scale, tile, True, False, None)
    t_own = (r.q * prototypes.index_select(0, r.yq)).sum(-1) * scale
    lp = torch.logaddexp(lse_pos, t_own)
    ln = torch.logaddexp(lse_neg, lse_proto)
    rows = softplus(ln - lp) + (lp - (sum_pos + t_own) / (r.cnt + 1.0))
    return r.unsort(rows)


def infonce_rows(
    q: torch.Tensor,
    k: torch.Tensor,
    pos_key: torch.Tensor,
    offset: int,
    scale: Scale,
    tile: int,
    key_log_q: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""In-batch InfoNCE per query, queries ``q`` against all ``n`` keys ``k``; query ``i``'s
    positive is key ``offset + i`` (given again as ``pos_key[i]``, the local copy, so that its
    gradient does not travel through a gather):

    .. math::
        \ell_i = \operatorname{softplus}\big(\mathrm{LSE}_{j\ne \mathrm{offset}+i} z_{ij}
          - z_{i,\mathrm{offset}+i}\big),\qquad z_{ij} = c\,q_i\cdot k_j - \log q(k_j).
    """
    lse_neg, _ = CrossLSE.apply(q, k, key_log_q, None, scale, tile, True, False, offset)
    pos = (q * pos_key).sum(-1) * scale
    if key_log_q is not None:
        pos = pos - key_log_q[offset : offset + q.shape[0]]
    return softplus(lse_neg - pos)
