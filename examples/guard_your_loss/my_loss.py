r"""A user's own losses, written to the contracts of softnce-theory's audit kit.

* :func:`soft_cross_entropy` -- cross-entropy against soft targets (label smoothing, mixup,
  distillation), the ``soft_ce`` contract::

      L = 1/N sum_i  -sum_c alpha_ic log softmax(f_i)_c        (0 log 0 = 0)

* :func:`info_nce` -- in-batch InfoNCE / NT-Xent in one direction (van den Oord et al. 2018,
  arXiv 1807.03748, Eq. 4; cosine similarity as in SimCLR, arXiv 2002.05709, Eq. 1), the
  ``infonce`` contract: row ``i``'s positive is key ``i``, the other keys are its negatives::

      L = 1/B sum_i -log( e^{s_ii} / sum_j e^{s_ij} ),   s_ij = cos(q_i, k_j) / tau

Both work in log space (``log_softmax``), so large logits and small temperatures neither
overflow nor produce NaN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-sum_c targets[i, c] * log_softmax(logits[i])_c``.

    A class with zero target mass contributes exactly 0, even where its logit is ``-inf``
    (a masked class): ``0 * -inf`` would be NaN, so those entries are replaced by 0 first.
    """
    logp = F.log_softmax(logits, dim=-1)
    terms = torch.where(targets > 0, targets * logp, torch.zeros_like(logp))
    return -terms.sum(dim=-1).mean()


def info_nce(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """In-batch InfoNCE of ``query`` ``(B, D)`` against ``keys`` ``(B, D)`` (positive: same row)."""
    q = F.normalize(query, dim=-1)
    k = F.normalize(keys, dim=-1)
    logits = q @ k.T / temperature
    return -torch.diagonal(F.log_softmax(logits, dim=-1)).mean()


def info_nce_naive(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """The same loss written as ``exp -> sum -> log`` -- a common bug: ``exp(s / tau)``
    overflows for small ``tau`` (float32 from ``1/tau ~ 89``), giving ``inf - inf = NaN``.
    Kept here only so that ``test_my_loss.py`` can show that the audit catches it."""
    q = F.normalize(query, dim=-1)
    k = F.normalize(keys, dim=-1)
    e = torch.exp(q @ k.T / temperature)
    return -(torch.log(torch.diagonal(e)) - torch.log(e.sum(dim=-1))).mean()
