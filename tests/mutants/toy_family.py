"""A toy family declared from its definition, for the generic audit contract's own tests.

InfoNCE on rows of logits with the positive at index 0 (van den Oord et al. 2018, eq. (4)):
:math:`\\ell(x) = -x_0/t + \\log\\sum_k e^{x_k/t}`. ``FAMILY`` has no oracle (the audit's
reference is the SymPy definition, labelled "not independent"); ``FAMILY_WITH_ORACLE`` adds an
mpmath oracle, and ``FAMILY_WRONG_ORACLE`` an oracle that forgets ``1/t`` on the positive (the
audit must then fail the correct ``torch_fn``: the oracle is really used). Importing this module
registers nothing: ``softnce audit --plugin tests.mutants.toy_family`` registers ``FAMILIES``;
:func:`scoped_registry` keeps such registrations inside one test.

``toy_*`` are implementations of the contract ``fn(x: Tensor[B, K], t) -> Tensor[B]``: one
correct, the others deliberately wrong.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import sympy
import torch
from mpmath import mp

from softnce_theory.domain import POSITIVE, Array, Domain, Param
from softnce_theory.registry import Family, LossSpec, Registry

SOURCE = "van den Oord et al. 2018 (arXiv 1807.03748) eq. (4), rows with the positive at index 0"


def definition(x: list[sympy.Symbol], t: sympy.Symbol) -> sympy.Expr:
    return -x[0] / t + sympy.log(sum(sympy.exp(v / t) for v in x))


def oracle(row: list[mp.mpf], t: mp.mpf) -> mp.mpf:
    return -row[0] / t + mp.log(mp.fsum(mp.exp(v / t) for v in row))


def wrong_oracle(row: list[mp.mpf], t: mp.mpf) -> mp.mpf:
    return -row[0] + mp.log(mp.fsum(mp.exp(v / t) for v in row))


# ----------------------------------------------------------------------------- implementations


def toy_ok(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    return -x[:, 0] / t + torch.logsumexp(x / t, dim=1)


def toy_wrong_sign(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """The positive's sign flipped."""
    return x[:, 0] / t + torch.logsumexp(x / t, dim=1)


def toy_missing_t(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """``/t`` missing on the positive's term."""
    return -x[:, 0] + torch.logsumexp(x / t, dim=1)


def toy_detached_t(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Right values, but a tensor temperature is silently detached."""
    tf = float(t.detach()) if isinstance(t, torch.Tensor) else float(t)
    return -x[:, 0] / tf + torch.logsumexp(x / tf, dim=1)


def toy_exp_sum_log(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """exp -> sum -> log: overflows at small t (and in float16)."""
    return -x[:, 0] / t + torch.log(torch.exp(x / t).sum(dim=1))


def toy_row_position(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """A per-row offset that depends on the row's position in the batch (1e-3 per row)."""
    return toy_ok(x, t) + 1e-3 * torch.arange(x.shape[0], dtype=x.dtype)


def toy_mean(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Reduced to the mean: not the per-sample contract."""
    return toy_ok(x, t).mean()


DOMAIN = Domain(
    arrays=(Array("x", ("B", "K"), min_sizes={"K": 2}),),
    params=(Param("t", POSITIVE, typical=(0.05, 5.0), extremes=(1e-4, 1e4)),),
)

SPEC = LossSpec(
    definition=definition,
    torch_fn=f"{__name__}:toy_ok",
    domain=DOMAIN,
    invariances=("logit_shift", "batch_permutation"),
)
FAMILY = Family(
    name="toy_infonce",
    title="toy InfoNCE rows (audit tests)",
    source=SOURCE,
    spec=SPEC,
)
FAMILY_WITH_ORACLE = dataclasses.replace(
    FAMILY, name="toy_infonce_oracle", spec=dataclasses.replace(SPEC, oracle=oracle)
)
FAMILY_WRONG_ORACLE = dataclasses.replace(
    FAMILY, name="toy_infonce_wrong_oracle", spec=dataclasses.replace(SPEC, oracle=wrong_oracle)
)
FAMILIES = (FAMILY, FAMILY_WITH_ORACLE, FAMILY_WRONG_ORACLE)


def scoped_registry() -> Iterator[Registry]:
    """A fixture body: the process-wide registry replaced, for one test, by a copy of it
    (families registered in the test do not leak into other tests)."""
    from softnce_theory.registry import scoped

    with scoped() as fresh:
        yield fresh
