"""Tiled losses: the family formulas assembled from the tiled statistics of ``_kernels``."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import torch

from softnce_theory.losses import domains as D
from softnce_theory.losses._common import (
    Reduction,
    Similarity,
    Temperature,
    apply_scale,
    base_scale,
    check_inputs,
    check_log_q,
    check_negative_mode,
    check_reduction,
    check_similarity,
    check_tau,
    check_variant,
    compute_dtype,
    embed,
    prepare_labelled,
    prepare_prototypes,
    prepare_soft_target,
    reduce,
    softplus,
)
from softnce_theory.losses.tiled._dispatch import default_tile
from softnce_theory.losses.tiled._kernels import (
    NEG,
    POS_LSE,
    POS_SUM,
    CrossLSE,
    LabelStats,
    PosSoftplus,
)

F = TypeVar("F", bound=Callable[..., Any])


def eager_under_compile(fn: F) -> F:
    """Run ``fn`` eagerly when ``torch.compile`` traces a call to it (a graph break around the
    call, as ``torch.compiler.disable`` gives), and call it directly otherwise.

    The tiled losses loop over tiles in Python, read label ranges on the host and call custom
    autograd Functions: traced, they would unroll or break the graph at every tile. Applying
    ``torch.compiler.disable`` at import time imports ``torch._dynamo`` (and sympy), about
    2 s, for every program that imports a loss; here it is applied only inside a trace (where
    ``torch._dynamo`` is already loaded), so importing the losses costs no more than torch.
    Tested in ``tests/test_tiled.py`` (the body runs with ``is_compiling() == False`` under
    ``torch.compile``, with the eager value and gradient).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if torch.compiler.is_compiling():
            return torch.compiler.disable(fn)(*args, **kwargs)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


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
    """Validate and prepare exactly as the dense SupCon / SINCERE (one shared preparation)."""
    z, lab, t = prepare_labelled(embeddings, labels, temperature, normalize, reduction, validate)
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


def _inv(t: Temperature, ref: torch.Tensor) -> Temperature:
    """``1 / t`` on ``ref``'s device and dtype (a tensor ``t`` keeps its graph: the kernels
    return the gradient of their scale)."""
    if isinstance(t, torch.Tensor):
        return 1.0 / t.to(device=ref.device, dtype=ref.dtype)
    return 1.0 / t


def _grad_anchor(t: Temperature) -> tuple[torch.Tensor, ...]:
    """A tensor temperature as an extra input of :func:`_zero_loss` (zero gradient, connected)."""
    return (t.reshape(1),) if isinstance(t, torch.Tensor) else ()


@eager_under_compile
def tiled_supcon_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: Temperature = 0.1,
    variant: Literal["out", "in"] = "out",
    normalize: bool = True,
    base_temperature: Temperature | None = None,
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
    v = check_variant(variant)
    srt, t = _prep_labelled(embeddings, labels, temperature, normalize, reduction, validate)
    scale = base_scale(t, base_temperature, validate=validate)
    if srt.n_valid == 0:
        return _zero_loss(srt.z.shape[0], reduction, embeddings.dtype, embeddings, *_grad_anchor(t))
    k = _check_tile(tile, embeddings.device)
    flags = NEG | POS_LSE | (POS_SUM if v == "out" else 0)
    _, lse_neg, lse_pos, sum_pos = LabelStats.apply(srt.z, srt.labels, _inv(t, srt.z), k, flags)
    lse_pos = torch.where(srt.valid, lse_pos, torch.zeros_like(lse_pos))
    cnt = srt.cnt.clamp(min=1.0)
    head = softplus(lse_neg - lse_pos)
    rows = head + (lse_pos - sum_pos / cnt if v == "out" else torch.log(cnt))
    out = apply_scale(srt.finish(rows, reduction), scale)
    return out.to(embeddings.dtype)


@eager_under_compile
def tiled_sincere_loss(
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
    scale = base_scale(t, base_temperature, validate=validate)
    if srt.n_valid == 0:
        return _zero_loss(srt.z.shape[0], reduction, embeddings.dtype, embeddings, *_grad_anchor(t))
    k = _check_tile(tile, embeddings.device)
    inv = _inv(t, srt.z)
    _, lse_neg, _, _ = LabelStats.apply(srt.z, srt.labels, inv, k, NEG)
    sp = PosSoftplus.apply(srt.z, srt.labels, lse_neg, inv, k)
    out = apply_scale(srt.finish(sp / srt.cnt.clamp(min=1.0), reduction), scale)
    return out.to(embeddings.dtype)


@eager_under_compile
def tiled_esupcon_loss(
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
    check_reduction(reduction)
    z, w, lab, t = prepare_prototypes(
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
    rows = softplus(ln - lp) + (lp - (sum_pos + t_own) / (srt.cnt + 1.0))
    return srt.finish(rows, reduction, all_valid=True).to(embeddings.dtype)


# ----------------------------------------------------------------------------- in-batch InfoNCE


@eager_under_compile
def tiled_info_nce(
    query: torch.Tensor,
    positive_key: torch.Tensor,
    *,
    temperature: Temperature = 0.1,
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
    check_inputs(D.INFO_NCE, validate, query=query, positive_key=positive_key)
    t = check_tau(temperature, validate=validate)
    check_similarity(similarity)
    check_negative_mode(negative_mode)
    check_reduction(reduction)
    b = query.shape[0]
    dt = compute_dtype(query)
    klq = None
    if key_log_q is not None:
        klq = check_log_q(key_log_q, "key_log_q", (b,), query, validate).to(dt).expand(b)
    q = embed(query, dt, similarity)
    k = embed(positive_key, dt, similarity)
    tl = _check_tile(tile, query.device)
    inv = _inv(t, q)
    lse_neg, _ = CrossLSE.apply(q, k, klq, None, inv, tl, True, False, 0)
    pos = (q * k).sum(-1) / t
    if klq is not None:
        pos = pos - klq
    return reduce(softplus(lse_neg - pos), reduction).to(query.dtype)


@eager_under_compile
def tiled_symmetric_info_nce(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    temperature: Temperature = 0.1,
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
    check_inputs(D.SYMMETRIC_INFO_NCE, validate, a=a, b=b)
    t = check_tau(temperature, validate=validate)
    check_similarity(similarity)
    check_reduction(reduction)
    dt = compute_dtype(a)
    q, k = embed(a, dt, similarity), embed(b, dt, similarity)
    tl = _check_tile(tile, a.device)
    inv = _inv(t, q)
    row, col = CrossLSE.apply(q, k, None, None, inv, tl, True, True, 0)
    pos = (q * k).sum(-1) / t
    rows = (softplus(row - pos) + softplus(col - pos)) / 2
    return reduce(rows, reduction).to(a.dtype)


# ----------------------------------------------------------------------------- soft-target InfoNCE


@eager_under_compile
def tiled_soft_target_info_nce(
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
    cand, off, q, t = prepare_soft_target(
        logits, targets, noise_probs, temperature, candidates, offset, reduction, validate
    )
    n, c = logits.shape
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
    rows = softplus(lse_neg - pos)
    if bad is not None:  # mass on a zero-probability class: undefined, NaN as the dense loss
        rows = rows + torch.where(bad, torch.nan, 0.0).to(dt)
    return reduce(rows, reduction).to(logits.dtype)
