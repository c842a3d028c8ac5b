"""A user's package that declares a loss family through softnce-theory's public API only.

Installed (``pip install .`` here), its entry point ``softnce.families: user_infonce =
softnce_user_family:FAMILY`` registers the family, and ``softnce verify --family user_infonce``
checks it; without installing, ``softnce verify --plugin softnce_user_family`` does the same.
The loss is InfoNCE on rows of logits with the positive at index 0 (van den Oord et al. 2018,
eq. 4): ``l(x; t) = -x_0 / t + log sum_k exp(x_k / t)``.
"""

from __future__ import annotations

import mpmath
import sympy as sp
import torch

from softnce_theory.domain import POSITIVE, Array, Domain, Param
from softnce_theory.registry import Family, LossSpec


def definition(x: list[sp.Symbol], t: sp.Symbol) -> sp.Expr:
    """The per-sample loss, symbolically."""
    return -x[0] / t + sp.log(sum(sp.exp(v / t) for v in x))


def loss(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The implementation under test: per-row losses in log space."""
    return torch.logsumexp(x / t, dim=1) - x[:, 0] / t


def oracle(row: list[mpmath.mpf], t: mpmath.mpf) -> mpmath.mpf:
    """Written independently of the SymPy definition, in mpmath."""
    return mpmath.log(mpmath.fsum(mpmath.exp((v - row[0]) / t) for v in row))


def gradient(x: list[sp.Symbol], t: sp.Symbol) -> list[sp.Expr]:
    """The claimed closed form: (softmax(x / t)_k - [k = 0]) / t."""
    z = sum(sp.exp(v / t) for v in x)
    return [(sp.exp(v / t) / z - (1 if k == 0 else 0)) / t for k, v in enumerate(x)]


DOMAIN = Domain(
    arrays=(Array("x", ("B", "K"), min_sizes={"K": 1}),),
    params=(Param("t", POSITIVE, typical=(0.2, 2.0), extremes=(1e-3, 1e3)),),
)

SPEC = LossSpec(
    definition=definition,
    torch_fn=loss,
    domain=DOMAIN,
    oracle=oracle,
    gradient=gradient,
    invariances=("logit_shift", "batch_permutation"),
)

FAMILY = Family(
    name="user_infonce",
    title="A user's InfoNCE rows",
    source="van den Oord et al. 2018 (arXiv 1807.03748) eq. (4)",
    spec=SPEC,
)
