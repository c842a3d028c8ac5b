"""Distributed losses for the distributed audit's sensitivity tests, written for this kit.

Each function follows a single-process audit contract but runs on its rank's shard inside an
initialised default process group. ``*_ok`` and ``*_global_every_rank`` are correct (controls:
the audit must pass them); every other function reproduces a bug class reported in peer
libraries (module doc of :mod:`softnce_theory.testing.distributed`):

========================  ==============================================================
``*_scaled``              the local mean multiplied by W (PML's world-size factors)
``*_divided``             the local mean divided by W ("undoing" DDP's average twice)
``*_allreduce``           the loss averaged with an in-place ``all_reduce`` (no backward):
                          the value is global, the gradient 1/W (lightly #1920 / #1977)
``*_nograd``              gathered without gradient, the local slot re-inserted
                          (open_clip ``gather_with_grad=False``; solo-learn #229, SLIP #31)
``*_nograd_all``          gathered without gradient, nothing re-inserted
``*_no_offset``           positive / self index not offset by rank (solo-learn #206)
``*_local``               negatives not gathered: the loss of the shard alone
========================  ==============================================================

Deliberately independent of :mod:`softnce_theory.losses.distributed`: plain log-space torch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dnn
import torch.nn.functional as F

NINF = float("-inf")


def _rank() -> tuple[int, int]:
    return dist.get_rank(), dist.get_world_size()


def _gather(x: torch.Tensor, grad: bool = True, keep_local: bool = True) -> torch.Tensor:
    r, w = _rank()
    if grad:
        return torch.cat(dnn.all_gather(x))
    parts = [torch.empty_like(x) for _ in range(w)]
    dist.all_gather(parts, x.detach().contiguous())
    if keep_local:
        parts[r] = x
    return torch.cat(parts)


# ----------------------------------------------------------------------------- SINCERE


def _sincere_rows(
    za: torch.Tensor,
    ya: torch.Tensor,
    zc: torch.Tensor,
    yc: torch.Tensor,
    own: torch.Tensor,
    t: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    s = F.normalize(za, dim=-1) @ F.normalize(zc, dim=-1).T / t
    self_mask = own[:, None] == torch.arange(zc.shape[0])[None, :]
    same = ya[:, None] == yc[None, :]
    pos, neg = same & ~self_mask, ~same
    lse_neg = torch.logsumexp(s.masked_fill(~neg, NINF), 1, keepdim=True)
    terms = torch.where(pos, torch.logaddexp(s, lse_neg.expand_as(s)) - s, torch.zeros_like(s))
    npos = pos.sum(1)
    return terms.sum(1) / npos.clamp(min=1), npos > 0


def _sincere(
    emb: torch.Tensor,
    labels: torch.Tensor,
    t: float,
    *,
    grad: bool = True,
    keep_local: bool = True,
    offset: bool = True,
    gather: bool = True,
) -> torch.Tensor:
    r, w = _rank()
    m = emb.shape[0]
    zc = _gather(emb, grad, keep_local) if gather else emb
    yc = _gather(labels, False, False) if gather else labels
    own = torch.arange(m) + (r * m if offset and gather else 0)
    rows, valid = _sincere_rows(emb, labels, zc, yc, own, t)
    if not gather:
        return rows.sum() / valid.sum().clamp(min=1)
    ya_all = yc
    n_valid = ((ya_all[:, None] == ya_all[None, :]).sum(1) > 1).sum()
    return rows.sum() * w / n_valid.clamp(min=1)


def sincere_ok(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    return _sincere(emb, labels, temperature)


def sincere_global_every_rank(
    emb: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """The full global loss on every rank (correct, W times the work)."""
    z, y = _gather(emb), _gather(labels, False, False)
    rows, valid = _sincere_rows(z, y, z, y, torch.arange(z.shape[0]), temperature)
    return rows.sum() / valid.sum().clamp(min=1)


def sincere_scaled(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    return _sincere(emb, labels, temperature) * _rank()[1]


def sincere_divided(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    return _sincere(emb, labels, temperature) / _rank()[1]


def sincere_allreduce(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    loss = _sincere(emb, labels, temperature) / _rank()[1]
    dist.all_reduce(loss)  # in place, no backward: the value is the global loss
    return loss


def sincere_nograd(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    return _sincere(emb, labels, temperature, grad=False)


def sincere_nograd_all(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    return _sincere(emb, labels, temperature, grad=False, keep_local=False)


def sincere_no_offset(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    return _sincere(emb, labels, temperature, offset=False)


def sincere_local(emb: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    return _sincere(emb, labels, temperature, gather=False)


# ----------------------------------------------------------------------------- InfoNCE


def _infonce(
    q: torch.Tensor,
    k: torch.Tensor,
    t: float,
    *,
    grad: bool = True,
    keep_local: bool = True,
    offset: bool = True,
    gather: bool = True,
) -> torch.Tensor:
    r, _ = _rank()
    m = q.shape[0]
    keys = _gather(k, grad, keep_local) if gather else k
    logits = F.normalize(q, dim=-1) @ F.normalize(keys, dim=-1).T / t
    target = torch.arange(m) + (r * m if offset and gather else 0)
    return F.cross_entropy(logits, target)  # local mean = (W / B) * local sum (equal shards)


def infonce_ok(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    return _infonce(query, keys, temperature)


def infonce_global_every_rank(
    query: torch.Tensor, keys: torch.Tensor, temperature: float
) -> torch.Tensor:
    q, k = _gather(query), _gather(keys)
    logits = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(q.shape[0]))


def infonce_scaled(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    return _infonce(query, keys, temperature) * _rank()[1]


def infonce_allreduce(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    loss = _infonce(query, keys, temperature) / _rank()[1]
    dist.all_reduce(loss)
    return loss


def infonce_nograd(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    return _infonce(query, keys, temperature, grad=False)


def infonce_no_offset(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    return _infonce(query, keys, temperature, offset=False)


def infonce_local(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    return _infonce(query, keys, temperature, gather=False)


# ----------------------------------------------------------------------------- soft-target InfoNCE


def _sti(
    logits: torch.Tensor,
    targets: torch.Tensor,
    noise_probs: torch.Tensor,
    t: float,
    *,
    offset: bool = True,
    gather: bool = True,
) -> torch.Tensor:
    r, _ = _rank()
    n = logits.shape[0]
    cand = _gather(targets) if gather else targets
    logq = torch.where(noise_probs > 0, noise_probs.log(), torch.zeros_like(noise_probs))
    scores = (logits / t - logq) @ cand.T
    target = torch.arange(n) + (r * n if offset and gather else 0)
    return F.cross_entropy(scores, target)


def sti_ok(logits, targets, noise_probs, temperature):  # type: ignore[no-untyped-def]
    return _sti(logits, targets, noise_probs, temperature)


def sti_no_offset(logits, targets, noise_probs, temperature):  # type: ignore[no-untyped-def]
    """The official code's ``N * rank + i`` forgotten."""
    return _sti(logits, targets, noise_probs, temperature, offset=False)


def sti_local(logits, targets, noise_probs, temperature):  # type: ignore[no-untyped-def]
    return _sti(logits, targets, noise_probs, temperature, gather=False)


def sti_scaled(logits, targets, noise_probs, temperature):  # type: ignore[no-untyped-def]
    return _sti(logits, targets, noise_probs, temperature) * _rank()[1]


#: (family, function, expected diagnosis or None for a correct control)
SENSITIVITY: list[tuple[str, str, str | None]] = [
    ("sincere", "sincere_ok", None),
    ("sincere", "sincere_global_every_rank", None),
    ("sincere", "sincere_scaled", "scaled by world size"),
    ("sincere", "sincere_divided", "scaled by world size"),
    ("sincere", "sincere_allreduce", "scaled by world size"),
    ("sincere", "sincere_nograd", "gathered without gradient"),
    ("sincere", "sincere_nograd_all", "gathered without gradient"),
    ("sincere", "sincere_no_offset", "positive index not offset by rank"),
    ("sincere", "sincere_local", "negatives not gathered"),
    ("infonce", "infonce_ok", None),
    ("infonce", "infonce_global_every_rank", None),
    ("infonce", "infonce_scaled", "scaled by world size"),
    ("infonce", "infonce_allreduce", "scaled by world size"),
    ("infonce", "infonce_nograd", "gathered without gradient"),
    ("infonce", "infonce_no_offset", "positive index not offset by rank"),
    ("infonce", "infonce_local", "negatives not gathered"),
    ("soft_target_infonce", "sti_ok", None),
    ("soft_target_infonce", "sti_no_offset", "positive index not offset by rank"),
    ("soft_target_infonce", "sti_local", "negatives not gathered"),
    ("soft_target_infonce", "sti_scaled", "scaled by world size"),
]
