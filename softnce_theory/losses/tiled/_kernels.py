r"""Tiled autograd Functions: exact per-row statistics of a similarity matrix that is never stored.

Every loss in :mod:`softnce_theory.losses.tiled` is assembled, with ordinary autograd, from a few
*differentiable row statistics* of a similarity matrix :math:`S`. The statistics are computed
block by block (tiles of at most ``tile x tile`` entries), merged with the log-sum-exp identity

.. math:: \log\big(e^{a}+e^{b}\big) = \max(a,b) + \log\big(1+e^{-|a-b|}\big),

and their backward passes recompute each tile of :math:`S` instead of saving it. Peak memory is
therefore :math:`O(\mathrm{tile}^2 + n\cdot D)` instead of :math:`O(n^2)`.

Three Functions:

``LabelStats`` (symmetric :math:`S = z z^\top/\tau`, labels sorted ascending). Per row :math:`i`,
with :math:`A(i)=\{j\ne i\}`, :math:`P(i)=\{j\ne i: y_j=y_i\}`, :math:`N(i)=\{j: y_j\ne y_i\}`:

.. math::
    \mathrm{lse\_all}_i = \operatorname{LSE}_{j\in A(i)} s_{ij},\quad
    \mathrm{lse\_neg}_i = \operatorname{LSE}_{j\in N(i)} s_{ij},\quad
    \mathrm{lse\_pos}_i = \operatorname{LSE}_{j\in P(i)} s_{ij},\quad
    \mathrm{sum\_pos}_i = \textstyle\sum_{j\in P(i)} s_{ij}.

Backward: with upstream gradients :math:`g^{(\cdot)}` of the four statistics,

.. math::
    \frac{\partial L}{\partial s_{ij}} = g^{all}_i e^{s_{ij}-\mathrm{lse\_all}_i}[j\in A(i)]
      + g^{neg}_i e^{s_{ij}-\mathrm{lse\_neg}_i}[j\in N(i)]
      + g^{pos}_i e^{s_{ij}-\mathrm{lse\_pos}_i}[j\in P(i)] + g^{sum}_i [j\in P(i)],

and :math:`\partial L/\partial z = (\partial L/\partial S + \partial L/\partial S^\top)\,z/\tau`.
Because :math:`S` is symmetric only the tiles :math:`(I, J)` with :math:`I\le J` are computed; each
one serves the rows of :math:`I` (row reductions) and the rows of :math:`J` (column reductions).
With labels sorted, positives live only in tiles whose label ranges overlap, so the label masks
and every positive-only quantity touch only those tiles (the diagonal band).

``PosSoftplus`` (SINCERE's per-pair terms). Given a per-row input :math:`x_i` (in SINCERE
:math:`x=\mathrm{lse\_neg}`),

.. math::
    \mathrm{sp}_i = \sum_{p\in P(i)} \operatorname{softplus}(x_i - s_{ip})
      = \sum_{p\in P(i)} \big[\log(e^{s_{ip}} + e^{x_i}) - s_{ip}\big],\qquad
    \frac{\partial \mathrm{sp}_i}{\partial x_i} = \sum_{p} \sigma(x_i - s_{ip}),\quad
    \frac{\partial \mathrm{sp}_i}{\partial s_{ip}} = -\sigma(x_i - s_{ip}).

Chained through ``LabelStats``' backward this gives SINCERE's gradient
:math:`\partial\ell_i/\partial s_{in} = \frac{1}{|P(i)|}\sum_p \sigma(\mathrm{lse\_neg}_i - s_{ip})
\,e^{s_{in}-\mathrm{lse\_neg}_i} = \frac1{|P(i)|}\sum_p Q^{(p)}_{in}`.

``CrossLSE`` (rectangular :math:`S = \mathrm{scale}\cdot q k^\top`): row and/or column LSE, all
entries included. Backward: :math:`\partial L/\partial s_{ij} = g^{r}_i e^{s_{ij}-r_i} + g^{c}_j
e^{s_{ij}-c_j}`.

The backwards are first-order only (``create_graph=True`` raises).

Masked entries are always removed with ``where``/``masked_fill`` (never multiplied by 0), so an
``exp`` that overflows outside the mask can never leak ``inf * 0 = nan``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

NEG_INF = float("-inf")

#: statistic flags for :class:`LabelStats`
ALL, NEG, POS_LSE, POS_SUM = 1, 2, 4, 8


def _first_order(backward: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse ``create_graph=True``: the recomputing backwards are not themselves differentiable
    (silently wrong second derivatives would be worse than an error)."""

    @functools.wraps(backward)
    def wrapper(ctx: Any, *grads: Any) -> Any:
        if torch.is_grad_enabled():
            raise RuntimeError(
                "the tiled losses support first-order gradients only (create_graph=True / "
                "double backward is not implemented); use the dense path (tile=0)"
            )
        return backward(ctx, *grads)

    return wrapper


def blocks(n: int, tile: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges of length ``tile`` (the last one may be shorter)."""
    return [(s, min(s + tile, n)) for s in range(0, n, tile)]


def _label_ranges(labels: torch.Tensor, bl: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """First and last label of every block of a sorted label vector (one host sync)."""
    idx = torch.tensor([i for b in bl for i in (b[0], b[1] - 1)], device=labels.device)
    vals = labels.index_select(0, idx).tolist()
    return vals[0::2], vals[1::2]


def _merge(acc: torch.Tensor, lo: int, hi: int, new: torch.Tensor) -> None:
    acc[lo:hi] = torch.logaddexp(acc[lo:hi], new)


class _Masks:
    """Per-tile masks: the self mask on diagonal tiles, the same-label mask where ranges overlap."""

    def __init__(self, labels: torch.Tensor, tile: int, lo: list[int], hi: list[int]) -> None:
        self.labels, self.lo, self.hi = labels, lo, hi
        self._eye = torch.eye(tile, dtype=torch.bool, device=labels.device)

    def overlap(self, bi: int, bj: int) -> bool:
        return bi == bj or self.hi[bi] >= self.lo[bj]

    def get(
        self, bi: int, bj: int, ri: tuple[int, int], rj: tuple[int, int]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """``(eye, same, pos)``: ``None`` where the mask would be all-False."""
        eye = self._eye[: ri[1] - ri[0], : ri[1] - ri[0]] if bi == bj else None
        if not self.overlap(bi, bj):
            return eye, None, None
        same = self.labels[ri[0] : ri[1], None] == self.labels[None, rj[0] : rj[1]]
        pos = same & ~eye if eye is not None else same
        return eye, same, pos


def _exp_rel(s: torch.Tensor, lse: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """``g * exp(s - lse)`` broadcast along rows (``dim=1``) or columns (``dim=0``)."""
    if dim == 1:
        return torch.sub(s, lse[:, None]).exp_().mul_(g[:, None])
    return torch.sub(s, lse[None, :]).exp_().mul_(g[None, :])


class LabelStats(torch.autograd.Function):
    """Row statistics of the symmetric similarity ``S = z z^T * inv_tau`` (see module doc).

    ``labels`` must be sorted ascending (ties in any order). Returns ``(lse_all, lse_neg,
    lse_pos, sum_pos)``; statistics not requested in ``flags`` are returned as zeros and carry no
    gradient.
    """

    @staticmethod
    def forward(
        ctx: Any, z: torch.Tensor, labels: torch.Tensor, inv_tau: float, tile: int, flags: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        n = z.shape[0]
        bl = blocks(n, tile)
        lo, hi = _label_ranges(labels, bl)
        masks = _Masks(labels, tile, lo, hi)
        out = [torch.full((n,), NEG_INF, dtype=z.dtype, device=z.device) for _ in range(3)]
        out.append(torch.zeros(n, dtype=z.dtype, device=z.device))
        lse_all, lse_neg, lse_pos, sum_pos = out
        zt = z * inv_tau
        for bi, (i0, i1) in enumerate(bl):
            for bj in range(bi, len(bl)):
                j0, j1 = bl[bj]
                diag = bi == bj
                s = zt[i0:i1] @ z[j0:j1].T
                eye, same, pos = masks.get(bi, bj, (i0, i1), (j0, j1))
                if flags & ALL:
                    x = s.masked_fill(eye, NEG_INF) if eye is not None else s
                    _merge(lse_all, i0, i1, torch.logsumexp(x, 1))
                    if not diag:
                        _merge(lse_all, j0, j1, torch.logsumexp(x, 0))
                if flags & NEG:
                    x = s.masked_fill(same, NEG_INF) if same is not None else s
                    _merge(lse_neg, i0, i1, torch.logsumexp(x, 1))
                    if not diag:
                        _merge(lse_neg, j0, j1, torch.logsumexp(x, 0))
                if pos is None:
                    continue
                if flags & POS_LSE:
                    x = s.masked_fill(~pos, NEG_INF)
                    _merge(lse_pos, i0, i1, torch.logsumexp(x, 1))
                    if not diag:
                        _merge(lse_pos, j0, j1, torch.logsumexp(x, 0))
                if flags & POS_SUM:
                    x = s.masked_fill(~pos, 0.0)
                    sum_pos[i0:i1] += x.sum(1)
                    if not diag:
                        sum_pos[j0:j1] += x.sum(0)
        ctx.save_for_backward(z, labels, lse_all, lse_neg, lse_pos)
        ctx.inv_tau, ctx.tile, ctx.flags = inv_tau, tile, flags
        ctx.ranges = (lo, hi)
        for flag, t in zip((ALL, NEG, POS_LSE, POS_SUM), out, strict=True):
            if not flags & flag:
                ctx.mark_non_differentiable(t)
        return lse_all, lse_neg, lse_pos, sum_pos

    @staticmethod
    @_first_order
    def backward(
        ctx: Any, *grads: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, None, None, None, None]:
        z, labels, lse_all, lse_neg, lse_pos = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None
        flags, tile, inv_tau = ctx.flags, ctx.tile, ctx.inv_tau
        g_all, g_neg, g_pos, g_sum = (
            g if (flags & f and g is not None) else None
            for f, g in zip((ALL, NEG, POS_LSE, POS_SUM), grads, strict=True)
        )
        dz = torch.zeros_like(z)
        if g_all is None and g_neg is None and g_pos is None and g_sum is None:
            return dz, None, None, None, None
        n = z.shape[0]
        bl = blocks(n, tile)
        masks = _Masks(labels, tile, *ctx.ranges)
        zt = z * inv_tau
        for bi, (i0, i1) in enumerate(bl):
            for bj in range(bi, len(bl)):
                j0, j1 = bl[bj]
                diag = bi == bj
                eye, same, pos = masks.get(bi, bj, (i0, i1), (j0, j1))
                if g_all is None and g_neg is None and pos is None:
                    continue  # only positive-pair statistics requested and none in this tile
                s = zt[i0:i1] @ z[j0:j1].T
                terms: list[torch.Tensor] = []
                for g, lse, mask, keep in (
                    (g_all, lse_all, eye, False),
                    (g_neg, lse_neg, same, False),
                    (g_pos, lse_pos, pos, True),
                ):
                    if g is None or (keep and mask is None):
                        continue
                    e = _exp_rel(s, lse[i0:i1], g[i0:i1], 1)
                    if diag:
                        e = e + e.T  # ds_II + ds_II^T from the exact per-row values
                        if mask is not None:
                            e = e.masked_fill(~mask if keep else mask, 0.0)
                    else:
                        e.add_(_exp_rel(s, lse[j0:j1], g[j0:j1], 0))
                        if mask is not None:
                            e = e.masked_fill(~mask if keep else mask, 0.0)
                    terms.append(e)
                if g_sum is not None and pos is not None:
                    gs = g_sum[i0:i1, None] + g_sum[None, j0:j1]
                    terms.append(torch.where(pos, gs, 0.0))
                if not terms:
                    continue
                gmat = terms[0]
                for t in terms[1:]:
                    gmat = gmat + t
                dz[i0:i1].addmm_(gmat, z[j0:j1])
                if not diag:
                    dz[j0:j1].addmm_(gmat.T, z[i0:i1])
        dz.mul_(inv_tau)
        return dz, None, None, None, None


def _softplus(x: torch.Tensor) -> torch.Tensor:
    """Exact ``log(1 + e^x)`` = ``logaddexp(0, x)``: relative precision for tiny results, 0 at
    ``-inf``, derivative ``sigmoid(x)`` everywhere (``F.softplus`` switches to ``x`` above 20;
    a ``clamp``/``abs`` form would give the derivative 1 instead of 1/2 at exactly 0)."""
    return torch.logaddexp(torch.zeros_like(x), x)


class PosSoftplus(torch.autograd.Function):
    """``sp_i = sum_{p in P(i)} softplus(x_i - s_ip)`` for ``S = z z^T * inv_tau`` (sorted labels)."""

    @staticmethod
    def forward(
        ctx: Any,
        z: torch.Tensor,
        labels: torch.Tensor,
        x: torch.Tensor,
        inv_tau: float,
        tile: int,
    ) -> torch.Tensor:
        n = z.shape[0]
        bl = blocks(n, tile)
        lo, hi = _label_ranges(labels, bl)
        masks = _Masks(labels, tile, lo, hi)
        sp = torch.zeros(n, dtype=z.dtype, device=z.device)
        zt = z * inv_tau
        for bi, (i0, i1) in enumerate(bl):
            for bj in range(bi, len(bl)):
                _, _, pos = masks.get(bi, bj, (i0, i1), bl[bj])
                if pos is None:
                    continue
                j0, j1 = bl[bj]
                s = zt[i0:i1] @ z[j0:j1].T
                sp[i0:i1] += torch.where(pos, _softplus(x[i0:i1, None] - s), 0.0).sum(1)
                if bi != bj:
                    sp[j0:j1] += torch.where(pos, _softplus(x[None, j0:j1] - s), 0.0).sum(0)
        ctx.save_for_backward(z, labels, x)
        ctx.inv_tau, ctx.tile, ctx.ranges = inv_tau, tile, (lo, hi)
        return sp

    @staticmethod
    @_first_order
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, torch.Tensor, None, None]:
        z, labels, x = ctx.saved_tensors
        n = z.shape[0]
        bl = blocks(n, ctx.tile)
        masks = _Masks(labels, ctx.tile, *ctx.ranges)
        dz = torch.zeros_like(z)
        dx = torch.zeros_like(x)
        zt = z * ctx.inv_tau
        for bi, (i0, i1) in enumerate(bl):
            for bj in range(bi, len(bl)):
                _, _, pos = masks.get(bi, bj, (i0, i1), bl[bj])
                if pos is None:
                    continue
                j0, j1 = bl[bj]
                s = zt[i0:i1] @ z[j0:j1].T
                r = torch.where(pos, torch.sigmoid(x[i0:i1, None] - s), 0.0)
                dx[i0:i1] += r.sum(1) * g[i0:i1]
                gmat = r.mul_(g[i0:i1, None])
                if bi == bj:
                    gmat = gmat + gmat.T
                else:
                    c = torch.where(pos, torch.sigmoid(x[None, j0:j1] - s), 0.0)
                    dx[j0:j1] += c.sum(0) * g[j0:j1]
                    gmat.add_(c.mul_(g[None, j0:j1]))
                dz[i0:i1].addmm_(gmat, z[j0:j1], alpha=-1.0)
                if bi != bj:
                    dz[j0:j1].addmm_(gmat.T, z[i0:i1], alpha=-1.0)
        dz.mul_(ctx.inv_tau)
        return dz, None, dx, None, None


class _Exclusion:
    """Entries ``(i, col_i)`` left out of :class:`CrossLSE`: ``col_i = offset + i`` (an int
    ``offset``) or ``col_i = cols[i]`` (a tensor), or nothing."""

    def __init__(self, offset: int | None, cols: torch.Tensor | None) -> None:
        self.offset, self.cols = offset, cols

    def mask(self, i0: int, i1: int, j0: int, j1: int, device: torch.device) -> torch.Tensor | None:
        jj = torch.arange(j0, j1, device=device)[None, :]
        if self.cols is not None:
            return self.cols[i0:i1, None] == jj
        off = self.offset
        if off is None or i0 + off >= j1 or i1 - 1 + off < j0:
            return None
        return torch.arange(i0 + off, i1 + off, device=device)[:, None] == jj


class CrossLSE(torch.autograd.Function):
    r"""Row and/or column log-sum-exp of ``S = scale * q k^T - bias`` (``bias`` per column),
    tile by tile.

    ``exclude_offset`` (int) leaves the entries ``(i, exclude_offset + i)`` (the positives) out
    of both log-sum-exps; ``exclude_cols`` (``(n,)`` long) leaves ``(i, exclude_cols[i])`` out.
    Backward: :math:`\partial L/\partial s_{ij} = g^r_i e^{s_{ij}-r_i} + g^c_j e^{s_{ij}-c_j}`
    on the kept entries; ``bias`` receives :math:`-\sum_i \partial L/\partial s_{ij}`.
    """

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        bias: torch.Tensor | None,
        exclude_cols: torch.Tensor | None,
        scale: float,
        tile: int,
        want_row: bool,
        want_col: bool,
        exclude_offset: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, m = q.shape[0], k.shape[0]
        row = torch.full((n,), NEG_INF, dtype=q.dtype, device=q.device)
        col = torch.full((m,), NEG_INF, dtype=q.dtype, device=q.device)
        excl = _Exclusion(exclude_offset, exclude_cols)
        qs = q * scale
        for i0, i1 in blocks(n, tile):
            for j0, j1 in blocks(m, tile):
                s = qs[i0:i1] @ k[j0:j1].T
                if bias is not None:
                    s.sub_(bias[None, j0:j1])
                mask = excl.mask(i0, i1, j0, j1, q.device)
                if mask is not None:
                    s.masked_fill_(mask, NEG_INF)
                if want_row:
                    _merge(row, i0, i1, torch.logsumexp(s, 1))
                if want_col:
                    _merge(col, j0, j1, torch.logsumexp(s, 0))
        ctx.save_for_backward(q, k, bias, exclude_cols, row, col)
        ctx.scale, ctx.tile, ctx.want = scale, tile, (want_row, want_col)
        ctx.exclude_offset = exclude_offset
        if not want_row:
            ctx.mark_non_differentiable(row)
        if not want_col:
            ctx.mark_non_differentiable(col)
        return row, col

    @staticmethod
    @_first_order
    def backward(
        ctx: Any, g_row: torch.Tensor | None, g_col: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        q, k, bias, exclude_cols, row, col = ctx.saved_tensors
        want_row, want_col = ctx.want
        g_row = g_row if want_row else None
        g_col = g_col if want_col else None
        need_q, need_k, need_b = ctx.needs_input_grad[:3]
        dq = torch.zeros_like(q) if need_q else None
        dk = torch.zeros_like(k) if need_k else None
        db = torch.zeros_like(bias) if need_b and bias is not None else None
        nones = (None,) * 7
        if (g_row is None and g_col is None) or not (need_q or need_k or need_b):
            return (dq, dk, db, *nones[:6])
        excl = _Exclusion(ctx.exclude_offset, exclude_cols)
        qs = q * ctx.scale
        for i0, i1 in blocks(q.shape[0], ctx.tile):
            for j0, j1 in blocks(k.shape[0], ctx.tile):
                s = qs[i0:i1] @ k[j0:j1].T
                if bias is not None:
                    s.sub_(bias[None, j0:j1])
                if g_row is not None:
                    gmat = _exp_rel(s, row[i0:i1], g_row[i0:i1], 1)
                    if g_col is not None:
                        gmat.add_(_exp_rel(s, col[j0:j1], g_col[j0:j1], 0))
                else:
                    assert g_col is not None
                    gmat = _exp_rel(s, col[j0:j1], g_col[j0:j1], 0)
                mask = excl.mask(i0, i1, j0, j1, q.device)
                if mask is not None:
                    gmat.masked_fill_(mask, 0.0)
                if dq is not None:
                    dq[i0:i1].addmm_(gmat, k[j0:j1])
                if dk is not None:
                    dk[j0:j1].addmm_(gmat.T, q[i0:i1])
                if db is not None:
                    db[j0:j1] -= gmat.sum(0)
        if dq is not None:
            dq.mul_(ctx.scale)
        if dk is not None:
            dk.mul_(ctx.scale)
        return (dq, dk, db, *nones[:6])
