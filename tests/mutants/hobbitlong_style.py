"""A HobbitLong/SupContrast-*style* ``SupConLoss``, written for this kit from the published
description of its conventions (research note ``sincere_supcon_aljundi.md`` §2.1), not from its
code. It reproduces the conventions the adapter ``hobbitlong`` maps (features ``[B, V, D]`` that
the caller normalises, view-major anchors, the loss scaled by ``tau / base_tau``) and the known
behaviours the audit should report: anchors without positives count as 0 in the mean (positive
count clamped to 1), and exp -> sum -> log after a max shift that includes the self-similarity.
"""

from __future__ import annotations

import torch
from torch import nn


class SupConLoss(nn.Module):
    def __init__(
        self, temperature: float = 0.07, contrast_mode: str = "all", base_temperature: float = 0.07
    ) -> None:
        super().__init__()
        if contrast_mode != "all":
            raise ValueError("this re-implementation supports contrast_mode='all' only")
        self.temperature = temperature
        self.base_temperature = base_temperature

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        bsz, n_views = features.shape[0], features.shape[1]
        contrast = torch.cat(torch.unbind(features, dim=1), dim=0)  # view-major rows
        lab = labels.reshape(-1, 1).repeat(n_views, 1)
        mask = (lab == lab.T).to(features.dtype)
        logits = contrast @ contrast.T / self.temperature
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        not_self = 1.0 - torch.eye(logits.shape[0], dtype=features.dtype)
        mask = mask * not_self
        exp_logits = torch.exp(logits) * not_self
        log_prob = logits - torch.log(exp_logits.sum(1, keepdim=True))
        n_pos = mask.sum(1).clamp(min=1.0)
        mean_log_prob_pos = (mask * log_prob).sum(1) / n_pos
        loss = -(self.temperature / self.base_temperature) * mean_log_prob_pos
        return loss.view(n_views, bsz).mean()
