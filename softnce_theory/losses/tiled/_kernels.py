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

**Learnable temperature.** The scale :math:`c` (``inv_tau`` / ``scale``) may be a 0-d tensor
that requires grad. With :math:`S = c\,q k^\top` every backward also returns

.. math:: \frac{\partial L}{\partial c} = \sum_{ij}\frac{\partial L}{\partial s_{ij}}\,
    \frac{s_{ij}}{c} = \sum_i q_i\cdot\Big(\sum_j G_{ij} k_j\Big),

accumulated from the same recomputed tiles at no extra matmul: :math:`\sum_j G_{ij}k_j` is the
unscaled :math:`\partial L/\partial q_i` (for the symmetric :math:`S = c\,zz^\top` the
accumulator holds :math:`(G+G^\top)z`, hence a factor 1/2). The loss code passes
:math:`c = 1/\tau`, and autograd chains :math:`\partial c/\partial\tau = -1/\tau^2`, so
:math:`\partial L/\partial\tau = -\tau^{-1}\sum_{ij} G_{ij}s_{ij}`.

**Anchor subsets** (distributed losses): :class:`RowLabelStats` and :class:`RowPosSoftplus`
compute the same statistics for ``m`` anchors against a batch of ``n`` rows that contains them
(a rectangular ``m x n`` block; the symmetric-tile trick does not apply), in
:math:`O(\mathrm{tile}^2 + (m+n)D)` memory.

The backwards are first-order only (``create_graph=True`` raises).

Masked entries are always removed with ``where``/``masked_fill`` (never multiplied by 0), so an
``exp`` that overflows outside the mask can never leak ``inf * 0 = nan``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from softnce_theory.losses._common import softplus

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


#: the scale of a similarity matrix (``inv_tau``): a number, or a 0-d tensor that may require
#: grad (a learnable temperature). The backwards return its gradient
#: :math:`\partial L/\partial c = \sum_{ij} (\partial L/\partial s_{ij})\, s_{ij}/c` for
#: :math:`S = c\,q k^\top`, accumulated from the same recomputed tiles.
Scale = float | torch.Tensor


def _const(scale: Scale) -> Scale:
    """The scale as saved on ``ctx`` (a tensor detached: the backwards are first order)."""
    return scale.detach() if isinstance(scale, torch.Tensor) else scale


def _tau_grad(acc: torch.Tensor, x: torch.Tensor, scale: Scale, factor: float) -> torch.Tensor:
    r"""``factor * <acc, x>`` as the scale's gradient: ``acc`` is :math:`\partial L/\partial x`
    before the multiplication by the scale, i.e. :math:`\sum_j G_{ij}k_j` (rectangular, factor
    1) or :math:`\sum_j (G+G^\top)_{ij} z_j` (symmetric, factor 1/2), so the result is
    :math:`\sum_{ij} G_{ij}\,x_i\cdot k_j = \sum_{ij} G_{ij} s_{ij}/c`."""
    g = torch.sum(acc * x) * factor
    if isinstance(scale, torch.Tensor):
        return g.to(scale.dtype)
    return g


def _tau_zero(scale: Scale, need: bool) -> torch.Tensor | None:
    if need and isinstance(scale, torch.Tensor):
        return torch.zeros_like(scale)
    return None


def _grads_out(g: torch.Tensor | None, need: bool) -> torch.Tensor | None:
    """``g`` if that input needs a gradient (it may have been computed for the scale only)."""
    return g if need else None


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
        ctx: Any, z: torch.Tensor, labels: torch.Tensor, inv_tau: Scale, tile: int, flags: int
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
        ctx.inv_tau, ctx.tile, ctx.flags = _const(inv_tau), tile, flags
        ctx.ranges = (lo, hi)
        for flag, t in zip((ALL, NEG, POS_LSE, POS_SUM), out, strict=True):
            if not flags & flag:
                ctx.mark_non_differentiable(t)
        return lse_all, lse_neg, lse_pos, sum_pos

    @staticmethod
    @_first_order
    def backward(
        ctx: Any, *grads: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, None, torch.Tensor | None, None, None]:
        z, labels, lse_all, lse_neg, lse_pos = ctx.saved_tensors
        need_z, need_tau = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        if not (need_z or need_tau):
            return None, None, None, None, None
        flags, tile, inv_tau = ctx.flags, ctx.tile, ctx.inv_tau
        g_all, g_neg, g_pos, g_sum = (
            g if (flags & f and g is not None) else None
            for f, g in zip((ALL, NEG, POS_LSE, POS_SUM), grads, strict=True)
        )
        dz = torch.zeros_like(z)
        if g_all is None and g_neg is None and g_pos is None and g_sum is None:
            return _grads_out(dz, need_z), None, _tau_zero(inv_tau, need_tau), None, None
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
        # dz = (G + G^T) z so far: dL/d inv_tau = sum_ij G_ij z_i.z_j = <dz, z> / 2
        d_tau = _tau_grad(dz, z, inv_tau, 0.5) if need_tau else None
        return _grads_out(dz.mul_(inv_tau), need_z), None, d_tau, None, None


class PosSoftplus(torch.autograd.Function):
    """``sp_i = sum_{p in P(i)} softplus(x_i - s_ip)`` for ``S = z z^T * inv_tau`` (sorted labels)."""

    @staticmethod
    def forward(
        ctx: Any,
        z: torch.Tensor,
        labels: torch.Tensor,
        x: torch.Tensor,
        inv_tau: Scale,
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
                sp[i0:i1] += torch.where(pos, softplus(x[i0:i1, None] - s), 0.0).sum(1)
                if bi != bj:
                    sp[j0:j1] += torch.where(pos, softplus(x[None, j0:j1] - s), 0.0).sum(0)
        ctx.save_for_backward(z, labels, x)
        ctx.inv_tau, ctx.tile, ctx.ranges = _const(inv_tau), tile, (lo, hi)
        return sp

    @staticmethod
    @_first_order
    def backward(
        ctx: Any, g: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, torch.Tensor, torch.Tensor | None, None]:
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
        need_tau = ctx.needs_input_grad[3]
        d_tau = _tau_grad(dz, z, ctx.inv_tau, 0.5) if need_tau else None  # as in LabelStats
        dz.mul_(ctx.inv_tau)
        return _grads_out(dz, ctx.needs_input_grad[0]), None, dx, d_tau, None


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
        scale: Scale,
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
        ctx.scale, ctx.tile, ctx.want = _const(scale), tile, (want_row, want_col)
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
        need_s = ctx.needs_input_grad[4]
        # dq holds sum_j G_ij k_j (unscaled) also when only the scale needs a gradient
        dq = torch.zeros_like(q) if need_q or need_s else None
        dk = torch.zeros_like(k) if need_k else None
        db = torch.zeros_like(bias) if need_b and bias is not None else None
        nones = (None,) * 4
        if (g_row is None and g_col is None) or not (need_q or need_k or need_b or need_s):
            d_s = _tau_zero(ctx.scale, need_s)
            return (_grads_out(dq, need_q), dk, db, None, d_s, *nones)
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
        # dL/dscale = sum_ij G_ij q_i.k_j = <sum_j G_ij k_j, q_i> (the bias does not scale)
        d_s = _tau_grad(dq, q, ctx.scale, 1.0) if need_s and dq is not None else None
        if dq is not None:
            dq.mul_(ctx.scale)
        if dk is not None:
            dk.mul_(ctx.scale)
        return (_grads_out(dq, need_q), dk, db, None, d_s, *nones)


# ----------------------------------------------------------------------------- anchor subsets


class _RowMasks:
    """Masks of a rectangular tile: anchors (rows, labels sorted) against a batch (columns,
    labels sorted) that contains them; anchor ``i`` is column ``self_cols[i]``. The self column
    has the anchor's label, so tiles whose label ranges do not overlap hold no self, no
    positive and only negatives."""

    def __init__(
        self,
        row_labels: torch.Tensor,
        col_labels: torch.Tensor,
        self_cols: torch.Tensor,
        row_ranges: tuple[list[int], list[int]],
        col_ranges: tuple[list[int], list[int]],
    ) -> None:
        self.rl, self.cl, self.self_cols = row_labels, col_labels, self_cols
        self.rr, self.cr = row_ranges, col_ranges

    def overlap(self, bi: int, bj: int) -> bool:
        return self.rr[1][bi] >= self.cr[0][bj] and self.cr[1][bj] >= self.rr[0][bi]

    def get(
        self, bi: int, bj: int, ri: tuple[int, int], rj: tuple[int, int]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """``(self, same, pos)`` masks of the tile, ``None`` where all-False."""
        if not self.overlap(bi, bj):
            return None, None, None
        (i0, i1), (j0, j1) = ri, rj
        jj = torch.arange(j0, j1, device=self.rl.device)
        own = self.self_cols[i0:i1, None] == jj[None, :]
        same = self.rl[i0:i1, None] == self.cl[None, j0:j1]
        return own, same, same & ~own


def _row_masks(
    row_labels: torch.Tensor, col_labels: torch.Tensor, self_cols: torch.Tensor, tile: int
) -> tuple[_RowMasks, list[tuple[int, int]], list[tuple[int, int]]]:
    rb, cb = blocks(row_labels.shape[0], tile), blocks(col_labels.shape[0], tile)
    masks = _RowMasks(
        row_labels,
        col_labels,
        self_cols,
        _label_ranges(row_labels, rb),
        _label_ranges(col_labels, cb),
    )
    return masks, rb, cb


class RowLabelStats(torch.autograd.Function):
    r"""Row statistics of the rectangular :math:`S = c\,q k^\top` (:math:`c` = ``inv_tau``) for
    ``m`` anchors ``q`` taken from a batch ``k`` of ``n`` rows: the anchor-subset (distributed)
    counterpart of :class:`LabelStats`, i.e. rows ``[offset, offset + m)`` of the ``n x n``
    matrix, without storing them.

    ``row_labels`` and ``col_labels`` are each sorted ascending; anchor ``i`` is batch row
    ``self_cols[i]`` (excluded from every set). Same statistics and flags as
    :class:`LabelStats`, for the rows only:
    :math:`A(i)=\{j\ne\mathrm{self}_i\}`, :math:`P(i)=\{j\in A(i): y_j=y_i\}`,
    :math:`N(i)=\{j: y_j\ne y_i\}`. ALL/NEG visit every tile of the ``m x n`` block (there is no
    symmetry to halve it); the positive statistics only the tiles whose label ranges overlap.
    Memory :math:`O(\mathrm{tile}^2 + (m+n)D)`.

    Backward, with :math:`G_{ij}=\partial L/\partial s_{ij}` from the row terms of
    :class:`LabelStats`: :math:`\partial L/\partial q = c\,G k`,
    :math:`\partial L/\partial k = c\,G^\top q` and
    :math:`\partial L/\partial c = \sum_{ij} G_{ij}\,q_i\cdot k_j`.
    """

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        inv_tau: Scale,
        row_labels: torch.Tensor,
        col_labels: torch.Tensor,
        self_cols: torch.Tensor,
        tile: int,
        flags: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        m = q.shape[0]
        masks, rb, cb = _row_masks(row_labels, col_labels, self_cols, tile)
        out = [torch.full((m,), NEG_INF, dtype=q.dtype, device=q.device) for _ in range(3)]
        out.append(torch.zeros(m, dtype=q.dtype, device=q.device))
        lse_all, lse_neg, lse_pos, sum_pos = out
        qs = q * inv_tau
        for bi, (i0, i1) in enumerate(rb):
            for bj, (j0, j1) in enumerate(cb):
                own, same, pos = masks.get(bi, bj, (i0, i1), (j0, j1))
                if not flags & (ALL | NEG) and pos is None:
                    continue
                s = qs[i0:i1] @ k[j0:j1].T
                if flags & ALL:
                    x = s.masked_fill(own, NEG_INF) if own is not None else s
                    _merge(lse_all, i0, i1, torch.logsumexp(x, 1))
                if flags & NEG:
                    x = s.masked_fill(same, NEG_INF) if same is not None else s
                    _merge(lse_neg, i0, i1, torch.logsumexp(x, 1))
                if pos is None:
                    continue
                if flags & POS_LSE:
                    _merge(lse_pos, i0, i1, torch.logsumexp(s.masked_fill(~pos, NEG_INF), 1))
                if flags & POS_SUM:
                    sum_pos[i0:i1] += s.masked_fill(~pos, 0.0).sum(1)
        ctx.save_for_backward(q, k, row_labels, col_labels, self_cols, lse_all, lse_neg, lse_pos)
        ctx.inv_tau, ctx.tile, ctx.flags = _const(inv_tau), tile, flags
        for flag, t in zip((ALL, NEG, POS_LSE, POS_SUM), out, strict=True):
            if not flags & flag:
                ctx.mark_non_differentiable(t)
        return lse_all, lse_neg, lse_pos, sum_pos

    @staticmethod
    @_first_order
    def backward(ctx: Any, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        q, k, row_labels, col_labels, self_cols, lse_all, lse_neg, lse_pos = ctx.saved_tensors
        need_q, need_k, need_c = ctx.needs_input_grad[:3]
        flags, inv = ctx.flags, ctx.inv_tau
        g_all, g_neg, g_pos, g_sum = (
            g if (flags & f and g is not None) else None
            for f, g in zip((ALL, NEG, POS_LSE, POS_SUM), grads, strict=True)
        )
        dq = torch.zeros_like(q)  # sum_j G_ij k_j (unscaled): also the scale's gradient
        dk = torch.zeros_like(k) if need_k else None
        masks, rb, cb = _row_masks(row_labels, col_labels, self_cols, ctx.tile)
        qs = q * inv
        for bi, (i0, i1) in enumerate(rb):
            for bj, (j0, j1) in enumerate(cb):
                own, same, pos = masks.get(bi, bj, (i0, i1), (j0, j1))
                if g_all is None and g_neg is None and pos is None:
                    continue
                s = qs[i0:i1] @ k[j0:j1].T
                gmat: torch.Tensor | None = None
                for g, lse, mask, keep in (
                    (g_all, lse_all, own, False),
                    (g_neg, lse_neg, same, False),
                    (g_pos, lse_pos, pos, True),
                ):
                    if g is None or (keep and mask is None):
                        continue
                    e = _exp_rel(s, lse[i0:i1], g[i0:i1], 1)
                    if mask is not None:
                        e = e.masked_fill(~mask if keep else mask, 0.0)
                    gmat = e if gmat is None else gmat + e
                if g_sum is not None and pos is not None:
                    e = torch.where(pos, g_sum[i0:i1, None].expand_as(s), 0.0)
                    gmat = e if gmat is None else gmat + e
                if gmat is None:
                    continue
                dq[i0:i1].addmm_(gmat, k[j0:j1])
                if dk is not None:
                    dk[j0:j1].addmm_(gmat.T, q[i0:i1])
        d_c = _tau_grad(dq, q, inv, 1.0) if need_c else None
        if dk is not None:
            dk.mul_(inv)
        return (_grads_out(dq.mul_(inv), need_q), dk, d_c, None, None, None, None, None)


class RowPosSoftplus(torch.autograd.Function):
    r""":math:`\mathrm{sp}_i = \sum_{p\in P(i)} \operatorname{softplus}(x_i - s_{ip})` for the
    anchor subset of :class:`RowLabelStats` (same arguments): the rectangular counterpart of
    :class:`PosSoftplus` (SINCERE's per-pair terms), visiting only the tiles whose label ranges
    overlap. Backward: :math:`\partial\mathrm{sp}_i/\partial x_i = \sum_p\sigma(x_i - s_{ip})`,
    :math:`\partial\mathrm{sp}_i/\partial s_{ip} = -\sigma(x_i - s_{ip})`, chained to ``q``,
    ``k`` and the scale as in :class:`RowLabelStats`."""

    @staticmethod
    def forward(
        ctx: Any,
        q: torch.Tensor,
        k: torch.Tensor,
        x: torch.Tensor,
        inv_tau: Scale,
        row_labels: torch.Tensor,
        col_labels: torch.Tensor,
        self_cols: torch.Tensor,
        tile: int,
    ) -> torch.Tensor:
        masks, rb, cb = _row_masks(row_labels, col_labels, self_cols, tile)
        sp = torch.zeros(q.shape[0], dtype=q.dtype, device=q.device)
        qs = q * inv_tau
        for bi, (i0, i1) in enumerate(rb):
            for bj, (j0, j1) in enumerate(cb):
                _, _, pos = masks.get(bi, bj, (i0, i1), (j0, j1))
                if pos is None:
                    continue
                s = qs[i0:i1] @ k[j0:j1].T
                sp[i0:i1] += torch.where(pos, softplus(x[i0:i1, None] - s), 0.0).sum(1)
        ctx.save_for_backward(q, k, x, row_labels, col_labels, self_cols)
        ctx.inv_tau, ctx.tile = _const(inv_tau), tile
        return sp

    @staticmethod
    @_first_order
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        q, k, x, row_labels, col_labels, self_cols = ctx.saved_tensors
        need_q, need_k, _, need_c = ctx.needs_input_grad[:4]
        inv = ctx.inv_tau
        masks, rb, cb = _row_masks(row_labels, col_labels, self_cols, ctx.tile)
        dq = torch.zeros_like(q)
        dk = torch.zeros_like(k) if need_k else None
        dx = torch.zeros_like(x)
        qs = q * inv
        for bi, (i0, i1) in enumerate(rb):
            for bj, (j0, j1) in enumerate(cb):
                _, _, pos = masks.get(bi, bj, (i0, i1), (j0, j1))
                if pos is None:
                    continue
                s = qs[i0:i1] @ k[j0:j1].T
                r = torch.where(pos, torch.sigmoid(x[i0:i1, None] - s), 0.0)
                dx[i0:i1] += r.sum(1) * g[i0:i1]
                gmat = r.mul_(g[i0:i1, None])  # = -dL/ds
                dq[i0:i1].addmm_(gmat, k[j0:j1], alpha=-1.0)
                if dk is not None:
                    dk[j0:j1].addmm_(gmat.T, q[i0:i1], alpha=-1.0)
        d_c = _tau_grad(dq, q, inv, 1.0) if need_c else None
        if dk is not None:
            dk.mul_(inv)
        return (_grads_out(dq.mul_(inv), need_q), dk, dx, d_c, None, None, None, None)
