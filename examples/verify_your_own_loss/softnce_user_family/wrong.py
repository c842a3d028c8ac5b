"""The same family with a deliberately wrong closed-form gradient (the 1/t factor dropped):
``softnce verify --plugin softnce_user_family.wrong`` refutes it with a counterexample."""

from __future__ import annotations

import dataclasses

import sympy as sp

from softnce_user_family import FAMILY as RIGHT
from softnce_user_family import SPEC


def wrong_gradient(x: list[sp.Symbol], t: sp.Symbol) -> list[sp.Expr]:
    z = sum(sp.exp(v / t) for v in x)
    return [sp.exp(v / t) / z - (1 if k == 0 else 0) for k, v in enumerate(x)]


FAMILY = dataclasses.replace(
    RIGHT, name="user_infonce_wrong", spec=dataclasses.replace(SPEC, gradient=wrong_gradient)
)
