"""Production torch losses, one module per family (see each module's docstring for formulas).

Every public loss function and ``nn.Module`` of the family modules is re-exported here::

    from softnce_theory.losses import sincere_loss, SupConLoss, info_nce

The tiled implementations (``tiled_*``, also reachable through the ``tile=`` argument of the
family losses) are re-exported too. The distributed (DDP) versions share the family functions'
names and stay in :mod:`softnce_theory.losses.distributed`.

Importing this package imports torch and the family modules only (no sympy, mpmath, scipy or
plotting; ``torch._dynamo`` is loaded only when a loss is traced by ``torch.compile``): its
import time is that of ``import torch`` (``benchmarks/bench_import.py``, docs/performance.md).
"""

from softnce_theory.losses.aljundi import (
    ESupConLoss,
    PrototypeCrossEntropy,
    esupcon_formula,
    esupcon_loss,
    prototype_cross_entropy,
    prototype_predict,
)
from softnce_theory.losses.collision_ce import (
    CollisionCrossEntropy,
    EMResult,
    SelfLabelingLoss,
    collision_cross_entropy,
    em_pseudo_labels,
    pgd_pseudo_labels,
    project_simplex,
    pseudo_label_gap,
    pseudo_label_gradient,
    pseudo_label_kkt_residual,
    pseudo_label_objective,
    self_labeling_loss,
)
from softnce_theory.losses.cross_entropy import (
    HardNLL,
    LabelSmoothingCrossEntropy,
    SoftTargetCrossEntropy,
    label_smoothing_cross_entropy,
    nll_loss,
    soft_target_cross_entropy,
)
from softnce_theory.losses.infonce import (
    InfoNCE,
    RankingNCE,
    SymmetricInfoNCE,
    info_nce,
    ranking_nce,
    symmetric_info_nce,
)
from softnce_theory.losses.sincere import (
    SINCERELoss,
    SupConLoss,
    flatten_views,
    sincere_from_logits,
    sincere_loss,
    supcon_from_logits,
    supcon_loss,
)
from softnce_theory.losses.soft_target_infonce import (
    InfoNCEHardLabels,
    SoftTargetInfoNCE,
    info_nce_from_scores,
    info_nce_hard_labels,
    soft_target_info_nce,
)
from softnce_theory.losses.tiled import (
    tiled_esupcon_loss,
    tiled_info_nce,
    tiled_sincere_loss,
    tiled_soft_target_info_nce,
    tiled_supcon_loss,
    tiled_symmetric_info_nce,
)

__all__ = [
    "CollisionCrossEntropy",
    "EMResult",
    "ESupConLoss",
    "HardNLL",
    "InfoNCE",
    "InfoNCEHardLabels",
    "LabelSmoothingCrossEntropy",
    "PrototypeCrossEntropy",
    "RankingNCE",
    "SINCERELoss",
    "SelfLabelingLoss",
    "SoftTargetCrossEntropy",
    "SoftTargetInfoNCE",
    "SupConLoss",
    "SymmetricInfoNCE",
    "collision_cross_entropy",
    "em_pseudo_labels",
    "esupcon_formula",
    "esupcon_loss",
    "flatten_views",
    "info_nce",
    "info_nce_from_scores",
    "info_nce_hard_labels",
    "label_smoothing_cross_entropy",
    "nll_loss",
    "pgd_pseudo_labels",
    "project_simplex",
    "prototype_cross_entropy",
    "prototype_predict",
    "pseudo_label_gap",
    "pseudo_label_gradient",
    "pseudo_label_kkt_residual",
    "pseudo_label_objective",
    "ranking_nce",
    "self_labeling_loss",
    "sincere_from_logits",
    "sincere_loss",
    "soft_target_cross_entropy",
    "soft_target_info_nce",
    "supcon_from_logits",
    "supcon_loss",
    "symmetric_info_nce",
    "tiled_esupcon_loss",
    "tiled_info_nce",
    "tiled_sincere_loss",
    "tiled_soft_target_info_nce",
    "tiled_supcon_loss",
    "tiled_symmetric_info_nce",
]
