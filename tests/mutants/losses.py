"""Small torch losses for the audit's own tests, written for this kit from the formulas.

``*_ok`` functions are correct log-space implementations of the audit contracts (controls: the
audit must pass them). Every other function is a deliberately wrong implementation (a *mutant*)
of a bug seen in the wild; the sensitivity tests assert that the audit catches each one, and
with which property.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------- helpers


def _cos_logits(emb: torch.Tensor, temperature: float) -> torch.Tensor:
    z = F.normalize(emb, dim=-1)
    return z @ z.T / temperature


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(labels.shape[0], dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same, ~eye  # positives, negatives, others


def _mean_valid(per_anchor: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over valid anchors; exactly 0 (with a zero gradient) when there is none."""
    n_valid = valid.sum()
    total = torch.where(valid, per_anchor, torch.zeros_like(per_anchor)).sum()
    return total / n_valid.clamp(min=1)


def _sincere_rows(s: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pos, neg, _ = _masks(labels)
    ninf = torch.full_like(s, float("-inf"))
    lse_neg = torch.logsumexp(torch.where(neg, s, ninf), dim=1, keepdim=True)
    den = torch.logaddexp(s, lse_neg.expand_as(s))
    per_pair = torch.where(pos, den - s, torch.zeros_like(s))
    npos = pos.sum(1)
    return per_pair.sum(1) / npos.clamp(min=1), npos > 0


def _supcon_out_rows(s: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pos, _, others = _masks(labels)
    ninf = torch.full_like(s, float("-inf"))
    lse_all = torch.logsumexp(torch.where(others, s, ninf), dim=1)
    npos = pos.sum(1)
    mean_pos = torch.where(pos, s, torch.zeros_like(s)).sum(1) / npos.clamp(min=1)
    return lse_all - mean_pos, npos > 0


# ----------------------------------------------------------------------------- correct controls


def sincere_ok(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    rows, valid = _sincere_rows(_cos_logits(embeddings.double(), temperature), labels)
    return _mean_valid(rows, valid).to(embeddings.dtype)


def supcon_out_ok(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    rows, valid = _supcon_out_rows(_cos_logits(embeddings.double(), temperature), labels)
    return _mean_valid(rows, valid).to(embeddings.dtype)


def supcon_in_ok(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    s = _cos_logits(embeddings.double(), temperature)
    pos, _, others = _masks(labels)
    ninf = torch.full_like(s, float("-inf"))
    lse_all = torch.logsumexp(torch.where(others, s, ninf), dim=1)
    npos = pos.sum(1)
    lse_pos = torch.logsumexp(torch.where(pos, s, ninf), dim=1)
    valid = npos > 0
    lse_pos = torch.where(valid, lse_pos, torch.zeros_like(lse_pos))
    rows = lse_all - lse_pos + torch.log(npos.clamp(min=1).to(s.dtype))
    return _mean_valid(rows, valid).to(embeddings.dtype)


def infonce_ok(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    s = F.normalize(query.double(), dim=-1) @ F.normalize(keys.double(), dim=-1).T / temperature
    return F.cross_entropy(s, torch.arange(s.shape[0])).to(query.dtype)


# ----------------------------------------------------------------------------- mutants


def sincere_temperature_twice(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Bug: the logits are divided by tau, then divided by tau again."""
    s = _cos_logits(embeddings.double(), temperature) / temperature
    rows, valid = _sincere_rows(s, labels)
    return _mean_valid(rows, valid).to(embeddings.dtype)


def sincere_positives_in_denominator(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Bug: the other positives stay in each pair's denominator (that is SupCon L_out)."""
    return supcon_out_ok(embeddings, labels, temperature)


def sincere_mean_over_all_anchors(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Bug (wrong reduction): anchors without positives count as 0 in the mean."""
    rows, valid = _sincere_rows(_cos_logits(embeddings.double(), temperature), labels)
    return torch.where(valid, rows, torch.zeros_like(rows)).mean().to(embeddings.dtype)


def sincere_nan_on_singletons(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Bug: divides by |P(i)| without guarding the anchors that have none (0/0 = NaN)."""
    s = _cos_logits(embeddings.double(), temperature)
    pos, neg, _ = _masks(labels)
    ninf = torch.full_like(s, float("-inf"))
    lse_neg = torch.logsumexp(torch.where(neg, s, ninf), dim=1, keepdim=True)
    den = torch.logaddexp(s, lse_neg.expand_as(s))
    per_pair = torch.where(pos, den - s, torch.zeros_like(s))
    return (per_pair.sum(1) / pos.sum(1)).mean().to(embeddings.dtype)


def soft_ce_sum_reduction(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Bug (wrong reduction): sums over rows instead of averaging."""
    return -(targets * torch.log_softmax(logits, dim=-1)).sum()


def soft_ce_detached_normaliser(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Bug: the log-partition term is detached, so its gradient (the softmax) is lost."""
    lse = torch.logsumexp(logits, dim=-1, keepdim=True).detach()
    return -(targets * (logits - lse)).sum(-1).mean()


def infonce_exp_sum_log(
    query: torch.Tensor, keys: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Bug: exp -> sum -> log instead of logsumexp (overflows once 1/tau > ~709 in float64)."""
    s = F.normalize(query, dim=-1) @ F.normalize(keys, dim=-1).T / temperature
    e = torch.exp(s)
    return -torch.log(torch.diagonal(e) / e.sum(1)).mean()


def sincere_exp_sum_log(
    embeddings: torch.Tensor, labels: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Bug: exp -> sum -> log for the SINCERE denominators."""
    s = _cos_logits(embeddings, temperature)
    pos, neg, _ = _masks(labels)
    e = torch.exp(s)
    neg_sum = torch.where(neg, e, torch.zeros_like(e)).sum(1, keepdim=True)
    per_pair = torch.where(pos, -torch.log(e / (e + neg_sum)), torch.zeros_like(s))
    npos = pos.sum(1)
    rows = per_pair.sum(1) / npos.clamp(min=1)
    return _mean_valid(rows, npos > 0)


def soft_target_infonce_ok(
    logits: torch.Tensor, targets: torch.Tensor, noise_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    logq = torch.log(torch.where(noise_probs > 0, noise_probs, torch.ones_like(noise_probs)))
    g = logits.double() / temperature - logq.double()
    s = g @ targets.double().T
    return F.cross_entropy(s, torch.arange(s.shape[0])).to(logits.dtype)


def soft_target_infonce_missing_logq(
    logits: torch.Tensor, targets: torch.Tensor, noise_probs: torch.Tensor, temperature: float
) -> torch.Tensor:
    """Bug: the -log q correction is dropped (only harmless for a uniform prior)."""
    s = (logits.double() / temperature) @ targets.double().T
    return F.cross_entropy(s, torch.arange(s.shape[0])).to(logits.dtype)


def label_smoothing_k_minus_1(
    logits: torch.Tensor, labels: torch.Tensor, epsilon: float
) -> torch.Tensor:
    """Bug (convention): 1 - eps on the true class and eps/(C-1) on the others, audited against
    torch's (1 - eps) e_y + eps/C."""
    c = logits.shape[1]
    target = torch.full_like(logits, epsilon / (c - 1) if c > 1 else 0.0)
    target.scatter_(1, labels[:, None], 1.0 - epsilon)
    return -(target * torch.log_softmax(logits, dim=-1)).sum(-1).mean()


MUTANTS: dict[str, tuple[str, str]] = {
    # mutant name: (family, property expected to catch it)
    "sincere_temperature_twice": ("sincere", "value_vs_oracle"),
    "sincere_positives_in_denominator": ("sincere", "value_vs_oracle"),
    "soft_target_infonce_missing_logq": ("soft_target_infonce", "value_vs_oracle"),
    "soft_ce_sum_reduction": ("soft_ce", "value_vs_oracle"),
    "sincere_mean_over_all_anchors": ("sincere", "singleton_anchors"),
    "soft_ce_detached_normaliser": ("soft_ce", "gradient_vs_closed_form"),
    "infonce_exp_sum_log": ("infonce", "extreme_temperature"),
    "sincere_exp_sum_log": ("sincere", "extreme_temperature"),
    "label_smoothing_k_minus_1": ("label_smoothing", "value_vs_oracle"),
    "sincere_nan_on_singletons": ("sincere", "singleton_anchors"),
}
