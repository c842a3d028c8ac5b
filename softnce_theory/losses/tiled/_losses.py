"""Tiled losses: the family formulas assembled from the tiled statistics of ``_kernels``."""

from __future__ import annotations

import math
from typing import Literal

import torch

from softnce_theory.losses._common import (
    Reduction,
    Temperature,
    check_bool,
    check_float,
    check_nonempty,
    check_reduction,
    check_same_shape,
    check_tau,
    check_temperature,
    compute_dtype,
    reduce,
    unit_rows,
)
from softnce_theory.losses.tiled._dispatch import default_tile
from softnce_theory.losses.tiled._kernels import (
    NEG,
    POS_LSE,
    POS_SUM,
    CrossLSE,
    LabelStats,
    PosSoftplus,
    _softplus,
)

Similarity = Literal["cosine", "dot"]


def _check_tile(tile: int | None, device: torch.device) -> int:
    if tile is None:
        return default_tile(device)
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile must be a positive integer (or None for the default), got {tile!r}")
    return tile


# ----------------------------------------------------------------------------- labelled batches


class _Sorted:
    """Rows and labels sorted by label (stable), with class counts and the un-sorting index."""

    def __init__(self, z: torch.Tensor, labels: torch.Tensor) -> None:
        self.perm = torch.argsort(labels, stable=True)
        self.labels = labels.index_select(0, self.perm).long()
        self.z = z.index_select(0, self.perm)
        _, counts = torch.unique_consecutive(self.labels, return_counts=True)
        self.cnt = torch.repeat_interleave(counts, counts).to(z.dtype) - 1.0  # |P(i)|
        self.valid = self.cnt > 0
        self.n_valid = int(self.valid.sum())

    def finish(
        self, rows: torch.Tensor, reduction: str, *, all_valid: bool = False
    ) -> torch.Tensor:
        """Zero the anchors without positives, reduce (mean over the valid anchors), un-sort."""
        if not all_valid:
            rows = torch.where(self.valid, rows, torch.zeros_like(rows))
        if reduction == "none":
            return torch.empty_like(rows).index_copy(0, self.perm, rows)
        if reduction == "sum":
            return rows.sum()
        return rows.sum() / max(rows.shape[0] if all_valid else self.n_valid, 1)


def _prep_labelled(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    temperature: Temperature,
    normalize: bool,
    reduction: str,
    validate: bool,
) -> tuple[_Sorted, Temperature]:
    """Validate and prepare exactly as :mod:`softnce_theory.losses.sincere` does."""
    from softnce_theory.losses import sincere as sc

    x = sc._check_embeddings(embeddings)
    lab = sc.check_class_labels(labels, x.shape[0], x.device, validate=validate)
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    check_bool(normalize, "normalize")
    z, lab = sc.flatten_views(x.to(compute_dtype(x)), lab)
    if normalize:
        z = unit_rows(z)
    return _Sorted(z, lab), t


def _zero_loss(rows: int, reduction: str, dtype: torch.dtype, *xs: torch.Tensor) -> torch.Tensor:
    """0 with a zero gradient, still connected to the graph (``"none"``: a zero vector).

    The zero is an *empty* sum of each input (exactly 0, gradient exactly 0), never
    ``x.sum() * 0``: that is NaN once ``x.sum()`` overflows (float16 sums, huge rows).
    """
    zero = sum(
        (x[..., :0].sum() for x in xs), torch.zeros((), dtype=xs[0].dtype, device=xs[0].device)
    )
    if reduction == "none":
        zero = zero.expand(rows)
    return zero.to(dtype)


def _base_scale(t: Temperature, base_temperature: float | None) -> Temperature:
    if base_temperature is None:
        return 1.0
    return t / check_temperature(base_temperature, "base_temperature")


def _apply_scale(out: torch.Tensor, scale: Temperature) -> torch.Tensor:
    """``out * scale`` (HobbitLong's tau / tau_base), skipped for a float 1."""
    if isinstance(scale, torch.Tensor) or scale != 1.0:
        return out * scale
    return out


def _inv(t: Temperature, ref: torch.Tensor) -> Temperature:
    """``1 / t`` on ``ref``'s device and dtype (a tensor ``t`` keeps its graph: the kernels
    return the gradient of their scale)."""
    if isinstance(t, torch.Tensor):
        return 1.0 / t.to(device=ref.device, dtype=ref.dtype)
    return 1.0 / t


def _grad_anchor(t: Temperature) -> tuple[torch.Tensor, ...]:
    """A tensor temperature as an extra input of :func:`_zero_loss` (zero gradient, connected)."""
    return (t.reshape(1),) if isinstance(t, torch.Tensor) else ()


@torch.compiler.disable
def tiled_supcon_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 0.1,
    variant: Literal["out", "in"] = "out",
    normalize: bool = True,
    base_temperature: float | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""SupCon :math:`\mathcal L_{out}` / :math:`\mathcal L_{in}` (Khosla et al. 2020, eq. 2/3), tiled.

    .. math::
        \ell^{out}_i = \operatorname{softplus}(L_N - L_P) + \Big(L_P - \frac{1}{|P(i)|}
            \sum_{p\in P(i)} s_{ip}\Big),\qquad
        \ell^{in}_i = \operatorname{softplus}(L_N - L_P) + \log|P(i)|,

    with :math:`L_P = \mathrm{LSE}_{p\in P(i)} s_{ip}`, :math:`L_N = \mathrm{LSE}_{n\in N(i)}
    s_{in}` (the same accurate forms as :func:`softnce_theory.losses.sincere.supcon_loss`, whose
    arguments, layouts ``(B, D)`` / ``(B, V, D)``, validation and policies this function shares:
    anchors without positives are excluded from the mean; no positive pair gives 0 with a zero
    gradient; ``base_temperature`` scales by :math:`\tau/\tau_{base}`).

    Peak memory :math:`O(\mathrm{tile}^2 + nD)`, :math:`n = BV`: :math:`L_N` needs every tile
    :math:`I\le J`, :math:`L_P` and the positive sums only the tiles holding positive pairs
    (the diagonal band after sorting by label); the backward recomputes the tiles.
    """
    from softnce_theory.losses import sincere as sc

    v = sc._check_variant(variant)
    srt, t = _prep_labelled(embeddings, labels, temperature, normalize, reduction, validate)
    scale = _base_scale(t, base_temperature)
    if srt.n_valid == 0:
        return _zero_loss(srt.z.shape[0], reduction, embeddings.dtype, embeddings, *_grad_anchor(t))
    k = _check_tile(tile, embeddings.device)
    flags = NEG | POS_LSE | (POS_SUM if v == "out" else 0)
    _, lse_neg, lse_pos, sum_pos = LabelStats.apply(srt.z, srt.labels, _inv(t, srt.z), k, flags)
    lse_pos = torch.where(srt.valid, lse_pos, torch.zeros_like(lse_pos))
    cnt = srt.cnt.clamp(min=1.0)
    head = _softplus(lse_neg - lse_pos)
    rows = head + (lse_pos - sum_pos / cnt if v == "out" else torch.log(cnt))
    out = _apply_scale(srt.finish(rows, reduction), scale)
    return out.to(embeddings.dtype)


@torch.compiler.disable
def tiled_sincere_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: float = 0.1,
    normalize: bool = True,
    base_temperature: float | None = None,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""SINCERE (Feeney & Hughes, arXiv 2309.14277), tiled.

    .. math::
        \ell_i = \frac{1}{|P(i)|}\sum_{p\in P(i)}
          -\log\frac{e^{s_{ip}}}{e^{s_{ip}} + \sum_{n\in N(i)} e^{s_{in}}}
        = \frac{1}{|P(i)|}\sum_{p\in P(i)} \operatorname{softplus}\big(L_N(i) - s_{ip}\big)

    Pass 1 (every tile :math:`I\le J`) computes :math:`L_N(i)=\mathrm{LSE}_{n\in N(i)}s_{in}`;
    pass 2 (only the tiles holding positive pairs: the diagonal band after sorting by label)
    sums the per-pair terms. Backward (recomputing the tiles):
    :math:`\partial\ell_i/\partial s_{ip} = -\sigma(L_N(i)-s_{ip})/|P(i)|` and
    :math:`\partial\ell_i/\partial s_{in} = \frac{1}{|P(i)|}\sum_p\sigma(L_N(i)-s_{ip})\,
    e^{s_{in}-L_N(i)} = \frac{1}{|P(i)|}\sum_p Q^{(p)}_{in}`.

    Arguments, layouts, validation and policies as
    :func:`softnce_theory.losses.sincere.sincere_loss` (anchors without positives are excluded;
    a single-class batch gives 0 with zero gradient).
    """
    srt, t = _prep_labelled(embeddings, labels, temperature, normalize, reduction, validate)
    scale = _base_scale(t, base_temperature)
    if srt.n_valid == 0:
        return _zero_loss(srt.z.shape[0], reduction, embeddings.dtype, embeddings, *_grad_anchor(t))
    k = _check_tile(tile, embeddings.device)
    inv = _inv(t, srt.z)
    _, lse_neg, _, _ = LabelStats.apply(srt.z, srt.labels, inv, k, NEG)
    sp = PosSoftplus.apply(srt.z, srt.labels, lse_neg, inv, k)
    out = _apply_scale(srt.finish(sp / srt.cnt.clamp(min=1.0), reduction), scale)
    return out.to(embeddings.dtype)


@torch.compiler.disable
def tiled_esupcon_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    prototypes: torch.Tensor,
    *,
    temperature: float = 0.1,
    normalize: bool = True,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""ESupCon (Aljundi et al. 2023, arXiv 2211.03646; **reconstructed** form), tiled.

    The formula of :func:`softnce_theory.losses.aljundi.esupcon_formula`: SupCon
    :math:`\mathcal L_{out}` on the row :math:`[s_{i\cdot}, t_{i\cdot}]` augmented with the
    prototype logits :math:`t_{ik} = \hat z_i\cdot\hat w_k/\tau`; positives
    :math:`P(i)\cup\{w_{y_i}\}`, negatives :math:`N(i)\cup\{w_k: k\ne y_i\}`:

    .. math::
        \ell_i = \operatorname{softplus}(L^{+}_N - L^{+}_P) + \Big(L^{+}_P -
          \frac{\sum_{p\in P(i)} s_{ip} + t_{iy_i}}{|P(i)|+1}\Big),\quad
        L^{+}_P = \log(e^{L_P} + e^{t_{iy_i}}),\
        L^{+}_N = \log(e^{L_N} + \textstyle\sum_{k\ne y_i} e^{t_{ik}}).

    The sample part is tiled as in :func:`tiled_supcon_loss`, the ``(n, K)`` prototype logits in
    tiles as well. Arguments, validation and policies as
    :func:`softnce_theory.losses.aljundi.esupcon_loss` (every anchor has a positive).
    """
    from softnce_theory.losses import aljundi as al

    check_reduction(reduction)
    z, w, lab, t = al._prepare(
        embeddings, labels, prototypes, temperature, normalize, validate, True
    )
    srt = _Sorted(z, lab)
    k = _check_tile(tile, embeddings.device)
    inv = _inv(t, srt.z)
    _, lse_neg, lse_pos, sum_pos = LabelStats.apply(
        srt.z, srt.labels, inv, k, NEG | POS_LSE | POS_SUM
    )
    lse_proto, _ = CrossLSE.apply(srt.z, w, None, srt.labels, inv, k, True, False, None)
    t_own = (srt.z * w.index_select(0, srt.labels)).sum(-1) / t
    lp = torch.logaddexp(lse_pos, t_own)
    ln = torch.logaddexp(lse_neg, lse_proto)
    rows = _softplus(ln - lp) + (lp - (sum_pos + t_own) / (srt.cnt + 1.0))
    return srt.finish(rows, reduction, all_valid=True).to(embeddings.dtype)


# ----------------------------------------------------------------------------- in-batch InfoNCE


@torch.compiler.disable
def tiled_info_nce(
    query: torch.Tensor,
    positive_key: torch.Tensor,
    *,
    temperature: float = 0.1,
    similarity: Similarity = "cosine",
    key_log_q: torch.Tensor | None = None,
    negative_mode: str = "unpaired",
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""In-batch InfoNCE, one direction (queries against all ``B`` keys), tiled.

    .. math::
        \ell_i = -\log\frac{e^{z_{ii}}}{\sum_j e^{z_{ij}}}
               = \operatorname{softplus}\big(\mathrm{LSE}_{j\ne i} z_{ij} - z_{ii}\big),
        \qquad z_{ij} = \mathrm{sim}(q_i, k_j)/t - \log q(k_j)

    :func:`softnce_theory.losses.infonce.info_nce` with ``negative_keys=None`` (same arguments,
    validation and accurate softplus form), never storing the ``B x B`` logits.
    ``negative_mode`` is only validated (it has no effect without negative keys), as in the
    dense function.
    """
    from softnce_theory.losses import infonce as nce

    check_float(query, "query", 2)
    check_nonempty(query, "query")
    if query.shape[1] == 0:
        raise ValueError("query must have a non-empty embedding dimension D (got D = 0)")
    nce._check_embeddings(positive_key, "positive_key", query, 2)
    check_same_shape(query, positive_key, "query", "positive_key")
    t = check_tau(temperature, validate=validate)
    nce._check_similarity(similarity)
    if negative_mode not in nce.NEGATIVE_MODES:
        raise ValueError(
            f"negative_mode must be one of {nce.NEGATIVE_MODES}, got {negative_mode!r}"
        )
    check_reduction(reduction)
    b = query.shape[0]
    dt = compute_dtype(query)
    klq = None
    if key_log_q is not None:
        klq = nce._check_log_q(key_log_q, "key_log_q", (b,), query, validate).to(dt).expand(b)
    q = nce._embed(query, dt, similarity)
    k = nce._embed(positive_key, dt, similarity)
    tl = _check_tile(tile, query.device)
    inv = _inv(t, q)
    lse_neg, _ = CrossLSE.apply(q, k, klq, None, inv, tl, True, False, 0)
    pos = (q * k).sum(-1) / t
    if klq is not None:
        pos = pos - klq
    return reduce(_softplus(lse_neg - pos), reduction).to(query.dtype)


@torch.compiler.disable
def tiled_symmetric_info_nce(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    temperature: float = 0.1,
    similarity: Similarity = "cosine",
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""CLIP-style symmetric in-batch InfoNCE, tiled: each tile serves both directions.

    .. math::
        \ell_i = \tfrac12\Big[\operatorname{softplus}\big(\mathrm{LSE}_{j\ne i} S_{ij}
          - S_{ii}\big) + \operatorname{softplus}\big(\mathrm{LSE}_{r\ne i} S_{ri}
          - S_{ii}\big)\Big],\qquad S_{ij} = \mathrm{sim}(a_i, b_j)/t

    :func:`softnce_theory.losses.infonce.symmetric_info_nce` (same arguments and validation).
    """
    from softnce_theory.losses import infonce as nce

    check_float(a, "a", 2)
    check_nonempty(a, "a")
    if a.shape[1] == 0:
        raise ValueError("a must have a non-empty embedding dimension D (got D = 0)")
    nce._check_embeddings_pair(a, b)
    t = check_tau(temperature, validate=validate)
    nce._check_similarity(similarity)
    check_reduction(reduction)
    dt = compute_dtype(a)
    q, k = nce._embed(a, dt, similarity), nce._embed(b, dt, similarity)
    tl = _check_tile(tile, a.device)
    inv = _inv(t, q)
    row, col = CrossLSE.apply(q, k, None, None, inv, tl, True, True, 0)
    pos = (q * k).sum(-1) / t
    rows = (_softplus(row - pos) + _softplus(col - pos)) / 2
    return reduce(rows, reduction).to(a.dtype)


# ----------------------------------------------------------------------------- soft-target InfoNCE


@torch.compiler.disable
def tiled_soft_target_info_nce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    noise_probs: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    candidates: torch.Tensor | None = None,
    offset: int = 0,
    reduction: Reduction = "mean",
    validate: bool = True,
    tile: int | None = None,
) -> torch.Tensor:
    r"""Soft-target InfoNCE (Hugger & Uhlmann 2024) with the candidates processed in tiles.

    .. math::
        g_i = f(x_i)/t - \log q,\quad S_{ij} = \langle\alpha_j, g_i\rangle,\quad
        \ell_i = \operatorname{softplus}\big(\mathrm{LSE}_{j\ne\pi(i)} S_{ij} - S_{i\pi(i)}\big),
        \ \pi(i) = \mathrm{offset} + i.

    Same conventions and input policies as
    :func:`softnce_theory.losses.soft_target_infonce.soft_target_info_nce` (uniform prior for
    ``noise_probs=None``, :math:`0\cdot\log 0 := 0`, candidates/offset); the ``(N, M)`` score
    matrix is never stored: memory :math:`O(\mathrm{tile}^2 + (N+M)C)`.
    """
    from softnce_theory.losses import soft_target_infonce as st

    check_float(logits, "logits", 2)
    check_nonempty(logits, "logits")
    check_float(targets, "targets", 2)
    check_same_shape(logits, targets, "logits", "targets")
    st._check_same_device(targets, logits, "targets")
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    n, c = logits.shape
    cand = targets if candidates is None else candidates
    if candidates is not None:
        check_float(candidates, "candidates", 2)
        if candidates.shape[1] != c:
            raise ValueError(
                f"candidates must have shape (M, {c}) (same number of classes as logits), "
                f"got {tuple(candidates.shape)}"
            )
        st._check_same_device(candidates, logits, "candidates")
    off = st._check_offset(offset, n, cand.shape[0])
    q = st._prepare_noise(noise_probs, c, logits.device, validate)
    _check_st_values(targets, candidates, off, n, q, validate)
    dt = compute_dtype(logits, targets, cand) if q is None else compute_dtype(logits, cand, q)
    g = logits.to(dt) / (t.to(device=logits.device) if isinstance(t, torch.Tensor) else t)
    a = cand.to(dt)
    bad = None
    if q is None:
        g = g + math.log(c)
    else:
        qd = q.to(dt)
        zero = qd == 0
        g = g - torch.log(torch.where(zero, torch.ones_like(qd), qd))
        bad = ((a != 0) & zero[None, :]).any()
    tl = _check_tile(tile, logits.device)
    lse_neg, _ = CrossLSE.apply(g, a, None, None, 1.0, tl, True, False, off)
    pos = (g * a[off : off + n]).sum(-1)
    rows = _softplus(lse_neg - pos)
    if bad is not None:  # mass on a zero-probability class: undefined, NaN as the dense loss
        rows = rows + torch.where(bad, torch.nan, 0.0).to(dt)
    return reduce(rows, reduction).to(logits.dtype)


def _check_st_values(
    targets: torch.Tensor,
    candidates: torch.Tensor | None,
    off: int,
    n: int,
    q: torch.Tensor | None,
    validate: bool,
) -> None:
    """The dense loss's data-dependent checks (simplex rows, positives, zero-noise mass)."""
    from softnce_theory.losses import soft_target_infonce as st
    from softnce_theory.losses._common import check_simplex, simplex_tol, values_checked

    check_simplex(targets, "targets", validate=validate)
    if candidates is not None:
        check_simplex(candidates, "candidates", validate=validate)
        if values_checked(validate):
            pos = candidates[off : off + n].detach().double()  # a check, not part of the graph
            tol = max(simplex_tol(candidates.dtype), simplex_tol(targets.dtype))
            dev = float((pos - targets.detach().double()).abs().max())
            if not dev <= tol:
                raise ValueError(
                    f"candidates[offset:offset+N] must equal targets (the positives); "
                    f"max |difference| = {dev:.3e} at offset = {off}"
                )
    if q is not None:
        st._check_zero_noise_mass(
            targets if candidates is None else candidates,
            q,
            "targets" if candidates is None else "candidates",
            validate,
        )
