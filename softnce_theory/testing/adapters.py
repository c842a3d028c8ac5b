"""Adapters: map a peer library's loss onto an audit contract.

An adapter takes the peer object (a class, an instance or a function, as imported) and returns a
callable following the family's contract. Peer packages are optional: an adapter whose package
is missing raises ``ValueError`` with the ``pip install`` line. Nothing here imports a peer (or
torch) at module import time, so the CLI parser reads the adapter names from :data:`ADAPTERS`.

========================  ==========================================  =====================
adapter                   peer object                                 families
========================  ==========================================  =====================
``pml``                   pytorch-metric-learning loss class or       supcon_out, supcon_in,
                          instance (``SupConLoss``, ``NTXentLoss``)   sincere
``pml-per-anchor``        same, with ``reducer=PerAnchorReducer(      supcon_out, supcon_in,
                          AvgNonZeroReducer())``                      sincere
``info-nce``              info-nce-pytorch ``info_nce`` or            infonce
                          ``InfoNCE``
``torch-ce``              ``torch.nn.functional.cross_entropy``       soft_ce
                          (probability targets)
``torch-label-smoothing`` ``torch.nn.functional.cross_entropy``       label_smoothing
                          (``label_smoothing=eps``)
``hobbitlong``            a HobbitLong/SupContrast-style              supcon_out
                          ``SupConLoss`` class (features ``[B, V,
                          D]``, caller normalises, result scaled by
                          ``tau/base_tau``)
========================  ==========================================  =====================
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

#: the HobbitLong reference's default base temperature
HOBBITLONG_BASE_TEMPERATURE = 0.07


@dataclass(frozen=True)
class Adapter:
    name: str
    families: tuple[str, ...]
    package: str | None  # import name of the peer package (checked before adapting)
    pip: str | None
    description: str
    make: Callable[[Any], Callable[..., Any]]


def _require(package: str | None, pip: str | None, adapter: str) -> None:
    if package is None:
        return
    try:
        importlib.import_module(package)
    except ImportError:
        raise ValueError(
            f"adapter {adapter!r} needs the optional package {pip or package!r}, which is not "
            f"installed: pip install {pip or package}  (or: pip install 'softnce-theory[peers]')"
        ) from None


def _instance_factory(obj: Any, **extra: Any) -> Callable[[float], Any]:
    """``t -> loss module`` for a class (instantiated per temperature, cached) or an instance
    (its ``temperature`` attribute is set before each call)."""
    cache: dict[float, Any] = {}
    if inspect.isclass(obj):

        def make(t: float) -> Any:
            if t not in cache:
                cache[t] = obj(temperature=t, **extra)  # type: ignore[call-arg]
            return cache[t]

        return make
    if extra:
        raise ValueError("pass the loss class (not an instance) to use this adapter's options")

    def setattr_t(t: float) -> Any:
        obj.temperature = t
        return obj

    return setattr_t


# ----------------------------------------------------------------------------- PML


def _pml(obj: Any, per_anchor: bool = False) -> Callable[..., Any]:
    extra: dict[str, Any] = {}
    if per_anchor:
        from pytorch_metric_learning.reducers import AvgNonZeroReducer, PerAnchorReducer

        extra["reducer"] = PerAnchorReducer(AvgNonZeroReducer())
    factory = _instance_factory(obj, **extra)

    def loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
        return factory(float(temperature))(embeddings, labels)

    loss.__qualname__ = f"pml[{getattr(obj, '__name__', type(obj).__name__)}]"
    return loss


# ----------------------------------------------------------------------------- info-nce-pytorch


def _info_nce(obj: Any) -> Callable[..., Any]:
    if inspect.isclass(obj):
        factory = _instance_factory(obj)

        def loss_cls(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
            return factory(float(temperature))(query, keys)

        return loss_cls

    def loss(query: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
        return obj(query, keys, temperature=float(temperature))

    return loss


# ----------------------------------------------------------------------------- torch


def _torch_ce(obj: Any) -> Callable[..., Any]:
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return obj(logits, targets)

    return loss


def _torch_ls(obj: Any) -> Callable[..., Any]:
    def loss(logits: torch.Tensor, labels: torch.Tensor, epsilon: float) -> torch.Tensor:
        return obj(logits, labels, label_smoothing=float(epsilon))

    return loss


# ----------------------------------------------------------------------------- HobbitLong-style


def _hobbitlong(
    obj: Any, base_temperature: float = HOBBITLONG_BASE_TEMPERATURE
) -> Callable[..., Any]:
    """HobbitLong/SupContrast ``SupConLoss(temperature, contrast_mode, base_temperature)``:
    ``forward(features[B, V, D], labels)`` on caller-normalised features, returning
    ``(tau/base_tau) * L_out``. The adapter L2-normalises, uses one view, and multiplies by
    ``base_tau/tau`` to undo the scale."""
    cache: dict[float, Any] = {}

    def loss(embeddings: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
        t = float(temperature)
        if t not in cache:
            cache[t] = obj(temperature=t, base_temperature=base_temperature)
        from torch.nn.functional import normalize

        z = normalize(embeddings, dim=-1)
        out = cache[t](z.unsqueeze(1), labels=labels)
        return out * (base_temperature / t)

    return loss


ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        Adapter(
            "pml",
            ("supcon_out", "supcon_in", "sincere"),
            "pytorch_metric_learning",
            "pytorch-metric-learning",
            "pytorch-metric-learning loss class/instance called as loss(embeddings, labels); "
            "the class is instantiated with temperature=tau (default reducer)",
            _pml,
        ),
        Adapter(
            "pml-per-anchor",
            ("supcon_out", "supcon_in", "sincere"),
            "pytorch_metric_learning",
            "pytorch-metric-learning",
            "as 'pml' with reducer=PerAnchorReducer(AvgNonZeroReducer()) (mean per anchor, then "
            "over anchors with a non-zero loss)",
            lambda obj: _pml(obj, per_anchor=True),
        ),
        Adapter(
            "info-nce",
            ("infonce",),
            "info_nce",
            "info-nce-pytorch",
            "info-nce-pytorch info_nce(query, positive_key, temperature=tau) (no explicit "
            "negatives: in-batch, unpaired) or the InfoNCE class",
            _info_nce,
        ),
        Adapter(
            "torch-ce",
            ("soft_ce",),
            None,
            None,
            "torch.nn.functional.cross_entropy(logits, targets) with probability targets",
            _torch_ce,
        ),
        Adapter(
            "torch-label-smoothing",
            ("label_smoothing",),
            None,
            None,
            "torch.nn.functional.cross_entropy(logits, labels, label_smoothing=eps)",
            _torch_ls,
        ),
        Adapter(
            "hobbitlong",
            ("supcon_out",),
            None,
            None,
            "HobbitLong/SupContrast-style SupConLoss class: normalised features [B, 1, D], "
            f"base_temperature={HOBBITLONG_BASE_TEMPERATURE}, result times base_tau/tau",
            _hobbitlong,
        ),
    )
}


def adapt(obj: Any, name: str, family: str) -> Callable[..., Any]:
    """Wrap ``obj`` with adapter ``name`` for ``family`` (``ValueError`` with a clear message when
    the adapter is unknown, does not serve the family, or its package is missing)."""
    a = ADAPTERS.get(name)
    if a is None:
        raise ValueError(f"unknown adapter {name!r}; expected one of {tuple(ADAPTERS)}")
    if family not in a.families:
        raise ValueError(f"adapter {name!r} maps onto the families {a.families}, not {family!r}")
    _require(a.package, a.pip, name)
    return a.make(obj)


__all__ = ["ADAPTERS", "HOBBITLONG_BASE_TEMPERATURE", "Adapter", "adapt"]
