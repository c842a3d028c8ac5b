r"""Tiled (blockwise) production losses: exact, O(tile² + B·D) memory, recomputing backward.

Same formulas, input policies and dtypes as the dense family losses, but the ``B x B`` (or
``N x M``) similarity matrix is never stored: per-row statistics (log-sum-exp over all other
columns / over negatives / over positives, sums of positive logits, SINCERE's per-pair terms) are
accumulated tile by tile with the log-sum-exp merge identity, and custom
:class:`torch.autograd.Function` backwards recompute each tile (see :mod:`._kernels` for the
formulas and their derivatives). Cosine normalisation happens outside the Functions, in at least
float32, so autograd differentiates through it.

Dispatch: the family losses take ``tile=None | 0 | k`` and call :func:`resolve_tile`
(``None``: :func:`auto_tile`, measured thresholds; ``0``: dense; ``k``: tiled, tile edge ``k``).
See ``docs/performance.md`` for the measurements.
"""

from softnce_theory.losses.tiled._dispatch import (
    CPU_THRESHOLDS,
    CPU_TILE,
    CUDA_TILE,
    FAMILIES,
    auto_tile,
    default_tile,
    resolve_tile,
)
from softnce_theory.losses.tiled._losses import (
    tiled_esupcon_loss,
    tiled_info_nce,
    tiled_sincere_loss,
    tiled_soft_target_info_nce,
    tiled_supcon_loss,
    tiled_symmetric_info_nce,
)

__all__ = [
    "CPU_THRESHOLDS",
    "CPU_TILE",
    "CUDA_TILE",
    "FAMILIES",
    "auto_tile",
    "default_tile",
    "resolve_tile",
    "tiled_esupcon_loss",
    "tiled_info_nce",
    "tiled_sincere_loss",
    "tiled_soft_target_info_nce",
    "tiled_supcon_loss",
    "tiled_symmetric_info_nce",
]
