r"""Distributed contrastive losses: local anchors against the gathered batch, DDP's convention.

Each rank holds a shard of the global batch (the concatenation of the shards in rank order).
Every function here computes the loss of the rank's **local anchors** against the **gathered
batch**: the embeddings (keys, targets, ...) of all ranks are gathered with
``torch.distributed.nn.functional.all_gather``, whose backward sums the gradients of every
rank's loss back onto the shard they came from (a reduce-scatter; gloo emulates it with an
all-to-all). Labels are gathered too, and the positive / self column of local anchor ``i`` is
``offset + i`` with ``offset`` the number of rows on the ranks before this one.

**Convention (as under DDP)**: with :math:`W` ranks and :math:`L` the single-process loss on
the concatenated batch,

* the **mean over ranks** of the returned values is :math:`L`;
* the gradient that DDP averages is :math:`\nabla L`.

For a loss :math:`L = \frac{1}{n}\sum_{i} \ell_i(X)` (mean over :math:`n` counted anchors of the
global batch :math:`X`), rank :math:`r` returns
:math:`L_r = \frac{W}{n}\sum_{i\in r}\ell_i(X)`, so :math:`\frac1W\sum_r L_r = L`. Its backward
sends :math:`\partial L_r/\partial x_s` to every shard :math:`s` through the gather, so rank
:math:`s` accumulates :math:`\sum_r \partial L_r/\partial x_s = W\,\partial L/\partial x_s`, and
DDP's average over ranks of the parameter gradients,
:math:`\frac1W\sum_s J_s^\top\,W\,\partial L/\partial x_s = \nabla_\theta L`, is the global
gradient. Parameters used directly by the loss (a learnable temperature, ESupCon's prototypes)
get :math:`\partial L_r/\partial\theta` on rank :math:`r`, and DDP's average of those is
:math:`\partial L/\partial\theta` as well. ``n`` (the number of anchors, or of anchors with a
positive for SupCon / SINCERE) is counted from the gathered labels, without gradient, so the
mean is right when ranks hold unequal numbers of valid anchors, including none.

The bug classes this convention rules out (issues in peer libraries): a gather without
gradient (solo-learn #229, SLIP #31: the cross-rank terms are lost), negatives taken only
locally, a positive mask not offset by rank (solo-learn #206), losses scaled by the world size
(pytorch-metric-learning #363/#380/#712/#732; lightly #1920/#1977, where ``all_reduce`` has no
backward), and gather-with-grad without a local loss (open_clip #616: correct, but ``W`` times
the work). :mod:`softnce_theory.testing.distributed` audits any implementation against it.

Policies:

* ``torch.distributed`` not initialised: the functions are the single-process losses (``W = 1``).
* **Unequal shard sizes** are supported: the sizes are gathered first (one small collective),
  the shards padded to the largest, gathered, and the padding dropped. Every rank needs at least
  one sample, the same feature dimension (checked: ``ValueError`` on every rank) and the same
  dtype.
* ``reduction``: ``"mean"`` (the convention above), ``"sum"`` (:math:`W\sum_{i\in r}\ell_i`, so
  the mean over ranks is the global sum), or ``"none"`` (the local anchors' rows of the global
  per-row losses, unscaled).
* ``tile``: as in the single-process losses (``None`` measured dispatch, ``0`` dense, ``k``
  tiled); the tiled path never stores the :math:`B_{local}\times B` logits: memory per rank
  :math:`O(B_{local}\cdot\mathrm{tile} + B\,D)` (the gathered batch).
* ``temperature`` may be a learnable tensor (and ``logit_scale`` for the InfoNCE losses), see
  :func:`softnce_theory.losses._common.resolve_temperature`.
* All ranks must call the loss *and* its backward (the gather's backward is a collective).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from softnce_theory.losses import domains as D
from softnce_theory.losses import soft_target_infonce as sti
from softnce_theory.losses._common import (
    Reduction,
    Similarity,
    Temperature,
    Variant,
    base_scale,
    check_inputs,
    check_log_q,
    check_reduction,
    check_similarity,
    check_tau,
    check_variant,
    compute_dtype,
    embed,
    prepare_labelled,
    prepare_prototypes,
    resolve_temperature,
)
from softnce_theory.losses.aljundi import esupcon_formula
from softnce_theory.losses.sincere import sincere_rows, supcon_rows
from softnce_theory.losses.tiled import resolve_tile
from softnce_theory.losses.tiled._rows import (
    esupcon_rows,
    infonce_rows,
    labelled_rows,
    positive_counts,
)

__all__ = [
    "esupcon_loss",
    "gather_with_grad",
    "info_nce",
    "sincere_loss",
    "soft_target_info_nce",
    "supcon_loss",
    "symmetric_info_nce",
    "world",
]


# ----------------------------------------------------------------------------- collectives


def world(group: Any = None) -> tuple[int, int]:
    """``(rank, world_size)`` in ``group`` (default group); ``(0, 1)`` when torch.distributed is
    not available or not initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(group), dist.get_world_size(group)


@dataclass(frozen=True)
class Shards:
    """Where the local rows sit in the global batch: ``sizes[r]`` rows on rank ``r``."""

    rank: int
    world: int
    sizes: tuple[int, ...]
    group: Any = None

    @property
    def offset(self) -> int:
        return sum(self.sizes[: self.rank])

    @property
    def total(self) -> int:
        return sum(self.sizes)


def _shards(x: torch.Tensor, name: str, group: Any) -> Shards:
    """Gather every rank's ``(rows, feature dim)`` and check the feature dims agree."""
    rank, size = world(group)
    if size == 1:
        return Shards(0, 1, (x.shape[0],), group)
    mine = torch.tensor([x.shape[0], x.shape[-1]], dtype=torch.int64, device=x.device)
    parts = [torch.empty_like(mine) for _ in range(size)]
    dist.all_gather(parts, mine, group=group)
    rows = torch.stack(parts).tolist()
    dims = sorted({r[1] for r in rows})
    if len(dims) != 1:
        raise ValueError(
            f"{name} must have the same feature dimension on every rank, got {dims} "
            f"(rows x dim per rank: {rows})"
        )
    return Shards(rank, size, tuple(r[0] for r in rows), group)


def _gather(x: torch.Tensor, sh: Shards, *, grad: bool) -> torch.Tensor:
    """Rows of every rank, concatenated in rank order (padded to equal sizes for the
    collective, padding dropped). ``grad=True``: autograd-aware (the backward reduce-scatters
    the gradients to their ranks); ``grad=False``: plain data (labels)."""
    if sh.world == 1:
        return x
    big = max(sh.sizes)
    if x.shape[0] < big:
        x = torch.cat([x, x.new_zeros((big - x.shape[0], *x.shape[1:]))])
    group = sh.group if sh.group is not None else dist.group.WORLD
    if grad:
        from torch.distributed.nn.functional import all_gather

        with warnings.catch_warnings():  # deprecated in favour of a private API, still supported
            warnings.simplefilter("ignore", FutureWarning)
            parts = all_gather(x.contiguous(), group=group)
    else:
        parts = [torch.empty_like(x) for _ in sh.sizes]
        dist.all_gather(parts, x.contiguous(), group=group)
    return torch.cat([p[:s] for p, s in zip(parts, sh.sizes, strict=True)])


def gather_with_grad(x: torch.Tensor, group: Any = None) -> tuple[torch.Tensor, int]:
    """The rows of ``x`` from every rank (rank order; shard sizes may differ) and this rank's
    offset in them. Autograd-aware: the gradient of the gathered tensor flows back to the rank
    that holds each row (summed over the ranks whose loss used it)."""
    sh = _shards(x, "x", group)
    return _gather(x, sh, grad=True), sh.offset


def _finish(
    rows: torch.Tensor, count: int, sh: Shards, reduction: str, scale: Temperature = 1.0
) -> torch.Tensor:
    r"""DDP's convention: ``"mean"`` :math:`\frac{W}{n}\sum_{i\in r}\ell_i`, ``"sum"``
    :math:`W\sum_{i\in r}\ell_i`, ``"none"`` the rows; then HobbitLong's ``scale``. The sum over
    no anchor is an empty sum of the rows: 0, still connected to the gather (whose backward
    every rank must run)."""
    if reduction == "none":
        out = rows
    elif reduction == "sum":
        out = rows.sum() * sh.world
    else:
        out = rows.sum() * (sh.world / max(count, 1))
    if isinstance(scale, torch.Tensor) or scale != 1.0:
        out = out * scale
    return out


def _tile(tile: int | None, family: str, rows: int, cols: int, device: torch.device) -> int | None:
    return resolve_tile(tile, rows, family=family, device=device, columns=cols)


def _as(t: Temperature, ref: torch.Tensor) -> Temperature:
    """A tensor temperature on ``ref``'s device and dtype (keeps its graph)."""
    return t.to(device=ref.device, dtype=ref.dtype) if isinstance(t, torch.Tensor) else t


# ----------------------------------------------------------------------------- labelled families


def _labelled(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    temperature: object,
    normalize: bool,
    reduction: str,
    validate: bool,
    group: Any,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Shards, Temperature]:
    """Validate, flatten views, normalise, gather: ``(z_local, y_local, z_all, y_all, shards,
    tau)``."""
    z, y, t = prepare_labelled(embeddings, labels, temperature, normalize, reduction, validate)
    sh = _shards(z, "embeddings", group)
    z_all = _gather(z, sh, grad=True)
    y_all = _gather(y.long(), sh, grad=False)
    return z, y.long(), z_all, y_all, sh, _as(t, z)


def _labelled_loss(
    kind: Variant | str,
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    temperature: Temperature,
    normalize: bool,
    base_temperature: Temperature | None,
    reduction: Reduction,
    validate: bool,
    tile: int | None,
    group: Any,
) -> torch.Tensor:
    z, y, z_all, y_all, sh, t = _labelled(
        embeddings, labels, temperature, normalize, reduction, validate, group
    )
    scale = base_scale(t, base_temperature, validate=validate)
    count = int((positive_counts(y_all, y_all) > 0).sum())  # global anchors with a positive
    off, family = sh.offset, "sincere" if kind == "sincere" else "supcon"
    tile_k = _tile(tile, family, z.shape[0], z_all.shape[0], z.device)
    if tile_k is not None:
        rows = labelled_rows(z, y, z_all, y_all, off, 1.0 / t, tile_k, kind)  # type: ignore[arg-type]
    else:
        logits = (z @ z_all.transpose(0, 1)) / t
        if kind == "sincere":
            rows = sincere_rows(logits, y_all, row_labels=y, offset=off)
        else:
            rows = supcon_rows(logits, y_all, kind, row_labels=y, offset=off)  # type: ignore[arg-type]
    return _finish(rows, count, sh, reduction, scale).to(embeddings.dtype)


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
    group: Any = None,
) -> torch.Tensor:
    r"""Distributed SupCon :math:`\mathcal L_{out}` / :math:`\mathcal L_{in}` (Khosla et al.
    2020, eq. 2/3): the local anchors against the gathered batch.

    Same formula, arguments and policies as :func:`softnce_theory.losses.sincere.supcon_loss`
    (layouts ``(B, D)`` / ``(B, V, D)``, anchors without positives excluded). The mean runs over
    the anchors of the **global** batch that have a positive (counted from the gathered labels),
    so ranks may hold unequal numbers of valid anchors, or none; the mean over ranks of the
    returned values is the global loss (module doc). ``group``: the process group (default:
    the default group).
    """
    v = check_variant(variant)
    args = (temperature, normalize, base_temperature, reduction, validate, tile, group)
    return _labelled_loss(v, embeddings, labels, *args)


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
    group: Any = None,
) -> torch.Tensor:
    r"""Distributed SINCERE (Feeney & Hughes, arXiv 2309.14277): per local anchor,
    :math:`\ell_i = \frac{1}{|P(i)|}\sum_{p\in P(i)} \operatorname{softplus}(L_N(i) - s_{ip})`
    with :math:`P, N` taken in the gathered batch. Arguments and policies as
    :func:`softnce_theory.losses.sincere.sincere_loss` and :func:`supcon_loss` (global mean
    over anchors with a positive)."""
    args = (temperature, normalize, base_temperature, reduction, validate, tile, group)
    return _labelled_loss("sincere", embeddings, labels, *args)


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
    group: Any = None,
) -> torch.Tensor:
    r"""Distributed ESupCon (Aljundi et al. 2023, **reconstructed** form of
    :func:`softnce_theory.losses.aljundi.esupcon_formula`): local anchors against the gathered
    samples plus the ``K`` prototypes.

    The prototypes are **not** gathered: they are parameters replicated on every rank (as under
    DDP), so rank :math:`r` gives them :math:`\partial L_r/\partial w` and DDP's average is
    :math:`\partial L/\partial w`. Every anchor has a positive (its prototype): the mean runs
    over all rows of the global batch.
    """
    check_reduction(reduction)
    z, w, y, t = prepare_prototypes(
        embeddings, labels, prototypes, temperature, normalize, validate, True
    )
    y = y.long()
    sh = _shards(z, "embeddings", group)
    z_all = _gather(z, sh, grad=True)
    y_all = _gather(y, sh, grad=False)
    t = _as(t, z)
    off = sh.offset
    tile_k = _tile(tile, "esupcon", z.shape[0], z_all.shape[0], z.device)
    if tile_k is not None:
        rows = esupcon_rows(z, y, z_all, y_all, off, w, 1.0 / t, tile_k)
    else:
        rows = esupcon_formula(
            (z @ z_all.transpose(0, 1)) / t,
            (z @ w.transpose(0, 1)) / t,
            y_all,
            row_labels=y,
            offset=off,
            validate=False,  # the labels were checked above; the gathered ones are consistent
        )
    return _finish(rows, sh.total, sh, reduction).to(embeddings.dtype)


# ----------------------------------------------------------------------------- InfoNCE


def _infonce_rows(
    q: torch.Tensor,
    k_all: torch.Tensor,
    k_local: torch.Tensor,
    off: int,
    t: Temperature,
    tile_k: int | None,
    klq_all: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-query in-batch InfoNCE of local queries against all keys (positive ``off + i``)."""
    if tile_k is not None:
        return infonce_rows(q, k_all, k_local, off, 1.0 / t, tile_k, klq_all)
    z = (q @ k_all.transpose(0, 1)) / t
    if klq_all is not None:
        z = z - klq_all.unsqueeze(0)
    pos = torch.arange(q.shape[0], device=q.device) + off
    return sti.info_nce_from_scores(z, pos)


def info_nce(
    query: torch.Tensor,
    positive_key: torch.Tensor,
    *,
    temperature: Temperature | None = None,
    logit_scale: Temperature | None = None,
    similarity: Similarity = "cosine",
    key_log_q: torch.Tensor | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
    group: Any = None,
) -> torch.Tensor:
    r"""Distributed in-batch InfoNCE, one direction: local queries against the keys of every rank.

    .. math::
        \ell_i = -\log\frac{e^{z_{i,\mathrm{off}+i}}}{\sum_{j=1}^{B} e^{z_{ij}}},\qquad
        z_{ij} = \mathrm{sim}(q_i, k_j)/t - \log q(k_j)

    (:func:`softnce_theory.losses.infonce.info_nce` with ``negative_keys=None`` on the
    concatenated batch; ``key_log_q`` ``(B_local,)`` is gathered with the keys). Temperature
    (default 0.1) or CLIP's ``logit_scale``; mean over the global batch (module doc).
    """
    t = resolve_temperature(temperature, logit_scale, default=0.1, validate=validate)
    check_inputs(D.INFO_NCE, validate, query=query, positive_key=positive_key)
    check_similarity(similarity)
    check_reduction(reduction)
    b = query.shape[0]
    dt = compute_dtype(query)
    q = embed(query, dt, similarity)
    k = embed(positive_key, dt, similarity)
    ext = k
    if key_log_q is not None:
        klq = check_log_q(key_log_q, "key_log_q", (b,), query, validate).to(dt).expand(b)
        ext = torch.cat([k, klq.unsqueeze(1)], dim=1)  # one collective for keys and log q
    sh = _shards(ext, "positive_key", group)
    ext_all = _gather(ext, sh, grad=True)
    k_all = ext_all[:, : k.shape[1]]
    klq_all = ext_all[:, -1] if key_log_q is not None else None
    tile_k = _tile(tile, "infonce", b, k_all.shape[0], q.device)
    rows = _infonce_rows(q, k_all, k, sh.offset, _as(t, q), tile_k, klq_all)
    return _finish(rows, sh.total, sh, reduction).to(query.dtype)


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
    group: Any = None,
) -> torch.Tensor:
    r"""Distributed CLIP loss: for each local pair ``i``,
    :math:`\ell_i = \frac12\big(\ell^{a\to b}_i + \ell^{b\to a}_i\big)`, the local ``a_i``
    against all ``b`` and the local ``b_i`` against all ``a`` (open_clip's
    ``ClipLoss(local_loss=True, gather_with_grad=True)``), in DDP's convention: the mean over
    ranks is :func:`softnce_theory.losses.infonce.symmetric_info_nce` on the concatenated
    batch (also for unequal shard sizes). ``temperature`` (default 0.1) or ``logit_scale``.
    """
    t = resolve_temperature(temperature, logit_scale, default=0.1, validate=validate)
    check_inputs(D.SYMMETRIC_INFO_NCE, validate, a=a, b=b)
    check_similarity(similarity)
    check_reduction(reduction)
    dt = compute_dtype(a)
    qa, qb = embed(a, dt, similarity), embed(b, dt, similarity)
    d = qa.shape[1]
    sh = _shards(qa, "a", group)
    both = _gather(torch.cat([qa, qb], dim=1), sh, grad=True)  # one collective for a and b
    a_all, b_all = both[:, :d], both[:, d:]
    tile_k = _tile(tile, "symmetric_infonce", qa.shape[0], both.shape[0], qa.device)
    tt = _as(t, qa)
    rows = (
        _infonce_rows(qa, b_all, qb, sh.offset, tt, tile_k)
        + _infonce_rows(qb, a_all, qa, sh.offset, tt, tile_k)
    ) / 2
    return _finish(rows, sh.total, sh, reduction).to(a.dtype)


# ----------------------------------------------------------------------------- soft-target InfoNCE


def soft_target_info_nce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    noise_probs: torch.Tensor | None = None,
    *,
    temperature: Temperature = 1.0,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
    group: Any = None,
) -> torch.Tensor:
    r"""Distributed soft-target InfoNCE (Hugger & Uhlmann 2024): the local logits against the
    targets of every rank as candidates, the positive of row ``i`` at ``offset + i`` (the
    official code's ``N * rank + i``).

    :func:`softnce_theory.losses.soft_target_infonce.soft_target_info_nce` with
    ``candidates`` = the gathered targets, in DDP's convention (mean over ranks = the global
    loss). The targets are gathered **with** gradient (the official code gathers them under
    ``no_grad``): when they are data nothing changes; when they come from a network (a teacher,
    learnable soft labels) their gradient is the global one. Shard sizes may differ.
    """
    check_inputs(D.SOFT_TARGET_INFO_NCE, validate, logits=logits, targets=targets)
    check_reduction(reduction)
    t = check_tau(temperature, validate=validate)
    sh = _shards(targets, "targets", group)
    cand = _gather(targets, sh, grad=True)
    rows = sti.soft_target_info_nce(
        logits,
        targets,
        noise_probs,
        temperature=t,
        candidates=cand,
        offset=sh.offset,
        reduction="none",
        validate=validate,
        tile=tile,
    )
    return _finish(rows, sh.total, sh, reduction).to(logits.dtype)
