r"""Baselines: soft-target cross-entropy, label smoothing and hard NLL.

These are the baselines of Hugger & Uhlmann (2024, arXiv 2404.14076): soft-target CE (the
official ``SoftTargetCrossEntropy``, logits divided by a temperature ``t``), hard-label NLL, and
label smoothing in **torch's convention** (``F.cross_entropy(..., label_smoothing=eps)``): the
target is :math:`\alpha = (1-\varepsilon)\,e_y + \varepsilon/C`, so :math:`\varepsilon/C` also lands
on the true class (not the :math:`\varepsilon/(C-1)` convention).

All are computed in at least float32 with :func:`~softnce_theory.losses._common.neg_log_softmax`
(a ``log1p`` form that keeps full relative precision even for losses far below 1e-16, where
``-log_softmax`` returns 0); the result has the input dtype.
"""

from __future__ import annotations

import torch
from torch import nn

from softnce_theory.losses import domains as D
from softnce_theory.losses._common import (
    Reduction,
    Temperature,
    check_inputs,
    check_param,
    check_reduction,
    check_tau,
    compute_dtype,
    module_temperature,
    neg_log_softmax,
    reduce,
)

__all__ = [
    "HardNLL",
    "LabelSmoothingCrossEntropy",
    "SoftTargetCrossEntropy",
    "label_smoothing_cross_entropy",
    "nll_loss",
    "soft_target_cross_entropy",
]


def _neg_log_probs(logits: torch.Tensor, temperature: Temperature) -> torch.Tensor:
    """``-log softmax(f / t)`` in at least float32, precise also for tiny values."""
    return neg_log_softmax(logits.to(compute_dtype(logits)) / temperature)


def soft_target_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: Temperature = 1.0,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    r"""Soft-target cross-entropy.

    .. math:: \ell_i = -\sum_{c=1}^{C} \alpha_{ic}\,\log\operatorname{softmax}(f(x_i)/t)_c

    Source: the ``SoftTargetCrossEntropy`` baseline of Hugger & Uhlmann (2024), official code
    ``loss.py`` (research note §5.1); standard soft-label CE.

    Args:
        logits: ``(N, C)`` class logits :math:`f(x_i)`.
        targets: ``(N, C)`` rows on the probability simplex (see ``_common`` for the tolerance).
        temperature: :math:`t > 0`.
        reduction: ``"mean"`` over rows (default), ``"sum"`` or ``"none"``.
        validate: run the data-dependent simplex check (skipped under ``torch.compile``).

    Zero-probability classes: :math:`0\cdot\log 0` is taken as 0, so a ``-inf`` logit on a class
    with zero target mass gives a finite loss and gradient.
    """
    check_inputs(D.SOFT_TARGET_CROSS_ENTROPY, validate, logits=logits, targets=targets)
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    nlp = _neg_log_probs(logits, t)
    a = targets.to(nlp.dtype)
    loss = torch.where(a > 0, a * nlp, torch.zeros_like(nlp)).sum(-1)
    return reduce(loss, reduction).to(logits.dtype)


def nll_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    temperature: Temperature = 1.0,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    r"""Hard-label negative log-likelihood (cross-entropy with integer labels).

    .. math:: \ell_i = -\log\operatorname{softmax}(f(x_i)/t)_{y_i}

    Source: standard; the "hard NLL" baseline of Hugger & Uhlmann (2024).
    """
    check_inputs(D.NLL_LOSS, validate, logits=logits, labels=labels)
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    nlp = _neg_log_probs(logits, t)
    loss = nlp.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    return reduce(loss, reduction).to(logits.dtype)


def label_smoothing_cross_entropy(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    epsilon: float | torch.Tensor,
    temperature: Temperature = 1.0,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    r"""Cross-entropy with label smoothing, torch's convention.

    .. math::
        \alpha = (1-\varepsilon)e_{y} + \tfrac{\varepsilon}{C}\mathbf 1,\qquad
        \ell_i = (1-\varepsilon)\,\mathrm{CE}(f_i, y_i) + \varepsilon\,\Big(-\tfrac1C\sum_c
        \log\operatorname{softmax}(f_i/t)_c\Big)

    Source: Szegedy et al. (2016), "Rethinking the Inception architecture", §7, in the
    convention of ``torch.nn.functional.cross_entropy(label_smoothing=eps)`` where
    :math:`\varepsilon/C` also lands on the true class. Equals ``F.cross_entropy(logits / t,
    labels, label_smoothing=epsilon)``.
    """
    check_inputs(D.LABEL_SMOOTHING_CROSS_ENTROPY, validate, logits=logits, labels=labels)
    t = check_tau(temperature, validate=validate)
    check_reduction(reduction)
    eps = check_param(D.EPSILON, epsilon, validate=validate)
    nlp = _neg_log_probs(logits, t)
    hard = nlp.gather(1, labels.long().unsqueeze(1)).squeeze(1)
    uniform = nlp.mean(-1)
    loss = (1.0 - eps) * hard + eps * uniform
    return reduce(loss, reduction).to(logits.dtype)


class SoftTargetCrossEntropy(nn.Module):
    """Module form of :func:`soft_target_cross_entropy`."""

    def __init__(
        self,
        temperature: Temperature = 1.0,
        reduction: Reduction = "mean",
        *,
        learn_temperature: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.validate = validate
        self.temperature = module_temperature(temperature, learn_temperature)
        check_reduction(reduction)
        self.reduction: Reduction = reduction

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return soft_target_cross_entropy(
            logits,
            targets,
            temperature=self.temperature,
            reduction=self.reduction,
            validate=self.validate,
        )


class HardNLL(nn.Module):
    """Module form of :func:`nll_loss`."""

    def __init__(
        self,
        temperature: Temperature = 1.0,
        reduction: Reduction = "mean",
        *,
        learn_temperature: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.validate = validate
        self.temperature = module_temperature(temperature, learn_temperature)
        check_reduction(reduction)
        self.reduction: Reduction = reduction

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nll_loss(
            logits,
            labels,
            temperature=self.temperature,
            reduction=self.reduction,
            validate=self.validate,
        )


class LabelSmoothingCrossEntropy(nn.Module):
    """Module form of :func:`label_smoothing_cross_entropy`."""

    def __init__(
        self,
        epsilon: float | torch.Tensor,
        temperature: Temperature = 1.0,
        reduction: Reduction = "mean",
        *,
        learn_temperature: bool = False,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.validate = validate
        self.epsilon = check_param(D.EPSILON, epsilon)
        self.temperature = module_temperature(temperature, learn_temperature)
        check_reduction(reduction)
        self.reduction: Reduction = reduction

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return label_smoothing_cross_entropy(
            logits,
            labels,
            epsilon=self.epsilon,
            temperature=self.temperature,
            reduction=self.reduction,
            validate=self.validate,
        )
