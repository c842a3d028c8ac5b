"""Dense-or-tiled dispatch: :func:`auto_tile` and :func:`resolve_tile`.

The thresholds are **measured** (``benchmarks/bench_losses.py --dispatch``, see
``docs/performance.md``): on the reference CPU (2 cores, float32, D = 128, fwd+bwd) the tiled path
becomes faster than the dense one at the batch sizes in :data:`CPU_THRESHOLDS`. On CUDA no
measurement was possible in this project; there the rule is memory-based: tile once the dense
path's ``n x m`` float matrices would exceed :data:`CUDA_DENSE_BYTES`.
"""

from __future__ import annotations

import math
import operator

import torch

#: smallest batch size (rows) from which the tiled path is used on CPU. Measured with
#: ``benchmarks/bench_losses.py --dispatch`` (interleaved fwd+bwd, float32, D = 128, 8 samples
#: per class; 2 threads and 1 thread; docs/performance.md): the tiled path is faster from these
#: sizes on in both runs. SupCon/ESupCon tiles win even below 1024, but small batches stay dense
#: (compile-friendly, double backward).
CPU_THRESHOLDS: dict[str, int] = {
    "supcon": 1024,
    "sincere": 1024,
    "esupcon": 1024,
    "infonce": 2048,
    "symmetric_infonce": 1024,
    "soft_target_infonce": 4096,
}
#: families with a tiled implementation (the keys of :data:`CPU_THRESHOLDS`)
FAMILIES: tuple[str, ...] = tuple(CPU_THRESHOLDS)
#: tile edge on CPU (measured at B = 8192, 2 threads: 512 beats 256, 1024 and 2048; a float32
#: 512 x 512 tile is 1 MiB and stays in the 2 MiB L2 cache)
CPU_TILE = 512
#: tile edge on accelerators (large tiles keep the matmul units busy; 64 MiB float32 tiles)
CUDA_TILE = 4096
#: on CUDA, tile once one dense ``n x m`` float32 matrix would exceed this many bytes
CUDA_DENSE_BYTES = 1 << 30


def _device_type(device: torch.device | str | None) -> str:
    if device is None:
        return "cpu"
    return torch.device(device).type


def auto_tile(
    batch_size: int,
    *,
    family: str = "supcon",
    device: torch.device | str | None = None,
    columns: int | None = None,
) -> int | None:
    """Tile edge for a batch of ``batch_size`` rows, or ``None`` when the dense path is better.

    Args:
        batch_size: rows of the similarity matrix (anchors / queries / local logits).
        family: one of :data:`FAMILIES` (thresholds differ per family).
        device: where the loss runs (``None``: CPU).
        columns: columns of the similarity matrix when different from ``batch_size``
            (candidates of soft-target InfoNCE); the larger of the two decides.
    """
    if family not in CPU_THRESHOLDS:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    n = max(int(batch_size), int(columns) if columns is not None else 0)
    if _device_type(device) == "cpu":
        return CPU_TILE if n >= CPU_THRESHOLDS[family] else None
    m = int(columns) if columns is not None else int(batch_size)
    return CUDA_TILE if int(batch_size) * m * 4 > CUDA_DENSE_BYTES else None


def _rows(x: object) -> int | None:
    """Rows of the similarity matrix for an int or an input tensor (``(B, D)``, ``(B, V, D)``:
    ``B * V``); ``None`` for anything else (the dense path then reports the bad input)."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, torch.Tensor) and x.dim() >= 2:
        return int(math.prod(x.shape[:-1]))
    return None


def resolve_tile(
    tile: int | None,
    batch: int | torch.Tensor,
    *,
    family: str = "supcon",
    device: torch.device | str | None = None,
    columns: int | torch.Tensor | None = None,
) -> int | None:
    """The ``tile=`` argument of the family losses: ``None`` = :func:`auto_tile`, ``0`` = dense,
    ``k > 0`` = tiled with tile edge ``k``. Returns ``None`` for dense, else the tile edge.

    ``batch`` is the number of rows or the main input tensor itself (its rows are counted as
    ``prod(shape[:-1])``, so ``(B, V, D)`` embeddings count ``B * V``; its device is used when
    ``device`` is not given). With ``tile=None`` and an input that is not a tensor, the dense
    path is chosen, so that it reports the bad input. ``columns`` (soft-target InfoNCE's
    candidates) may be given as a count or as the ``(M, C)`` tensor.
    """
    if tile is None:
        rows = _rows(batch)
        if rows is None:
            return None
        if device is None and isinstance(batch, torch.Tensor):
            device = batch.device
        cols = columns
        if isinstance(cols, torch.Tensor):
            cols = int(cols.shape[0]) if cols.dim() >= 1 else None
        elif cols is not None and not isinstance(cols, int):
            cols = None
        return auto_tile(rows, family=family, device=device, columns=cols)
    if isinstance(tile, bool):
        raise ValueError(f"tile must be None or an integer >= 0, got {tile!r}")
    try:
        k = operator.index(tile)
    except TypeError:
        raise ValueError(
            f"tile must be None or an integer >= 0, got {type(tile).__name__}"
        ) from None
    if k < 0:
        raise ValueError(f"tile must be None or an integer >= 0, got {k}")
    return k or None


def default_tile(device: torch.device | str | None) -> int:
    """Tile edge used by the tiled losses when called with ``tile=None``."""
    return CPU_TILE if _device_type(device) == "cpu" else CUDA_TILE
