"""The declared-domain conformance check of every family with declared ``domains``.

For each public loss a :class:`~softnce_theory.registry.Family` declares with a
:class:`~softnce_theory.domain.Domain`, the engine draws its random points **from that
declaration** (:meth:`Domain.sample <softnce_theory.domain.Domain.sample>`: sizes from the
declared minimum sizes, entries from the typical ranges, simplex rows, labels in range, one
parameter of each exclusive group) and adds a point at every declared parameter extreme
(:meth:`Domain.extreme_points <softnce_theory.domain.Domain.extreme_points>`). At each point,
in float64 on the CPU, the loss must

* accept the input (a ``ValueError`` means the declaration and the validation disagree),
* return a finite value, and
* give a finite gradient to every declared floating array (``None`` -- no gradient reached an
  input the loss is declared to take -- is a failure: a silently detached argument).

Optional arguments (``required=False``) are left out: their cross-argument rules (a positive's
offset, a paired layout) belong to the family's own conformance checks. The check is registered
as ``<family>.declared_domain`` (:func:`domain_registry`); torch is imported when it runs.
"""

from __future__ import annotations

import random
from typing import Any

from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.domain import Array, Domain
from softnce_theory.registry import Family, resolve

#: each dimension is drawn in [its declared minimum, minimum + SPAN]
SPAN = 3


def _sizes(domain: Domain, rng: random.Random) -> dict[str, int]:
    return {
        d: rng.randint(floor, floor + SPAN)
        for d, floor in domain.min_sizes(required_only=True).items()
    }


def _check_loss(fn: Any, domain: Domain, point: dict[str, Any], tally: Tally, where: str) -> None:
    import torch

    floats = {
        a.name: torch.tensor(point[a.name], dtype=torch.float64, requires_grad=True)
        for a in domain.arrays
        if isinstance(a, Array) and a.name in point
    }
    args = {n: v for n, v in point.items() if n not in floats}
    args = {
        n: torch.tensor(v, dtype=torch.int64) if isinstance(v, list) else v for n, v in args.items()
    }
    shown = {
        n: (tuple(v.shape) if isinstance(v, torch.Tensor) else v)
        for n, v in {**floats, **args}.items()
    }
    try:
        out = fn(**floats, **args)
    except ValueError as exc:
        tally.fail(f"{where}: a point of the declared domain was refused: {exc} (at {shown})")
        return
    if not tally.check(bool(torch.isfinite(out).all()), f"{where}: non-finite value at {shown}"):
        return
    if not out.requires_grad:
        tally.fail(f"{where}: no gradient reached {', '.join(floats)} (detached?) at {shown}")
        return
    grads = torch.autograd.grad(out.sum(), list(floats.values()), allow_unused=True)
    for name, g in zip(floats, grads, strict=True):
        if g is None:
            tally.fail(f"{where}: no gradient reached {name} (detached?) at {shown}")
        else:
            tally.check(bool(torch.isfinite(g).all()), f"{where}: non-finite d/d{name} at {shown}")


def check_family_domains(family: Family, cfg: CheckConfig) -> LegResult:
    """Every declared loss of ``family`` at random points of its domain and at its extremes."""
    tally = Tally("production", rtol=0.0, dtype="float64")
    counts: dict[str, int] = {}
    for loss, ref in family.domains.items():
        fn, domain = resolve(family.losses[loss]), resolve(ref)
        rng = random.Random(cfg.seed_for(f"{family.name}.declared_domain.{loss}"))
        for i in range(cfg.points(8, 2)):
            sizes = _sizes(domain, rng)
            points = [domain.sample(rng, sizes)]
            if i == 0:
                points += domain.extreme_points(rng, sizes)
            for pt in points:
                _check_loss(fn, domain, pt, tally, loss)
            counts[loss] = counts.get(loss, 0) + len(points)
    detail = (
        "accepted, with a finite value and finite gradients, at points drawn from the declared "
        "domain (random, and at every parameter extreme): "
    )
    return tally.result(
        detail + ", ".join(f"{k} {v} points" for k, v in counts.items()), points=counts
    )


def domain_registry(family: Family) -> LegRegistry:
    """``<family>.declared_domain`` when the family declares domains (else empty)."""
    reg = LegRegistry("production")
    if family.domains:
        missing = sorted(set(family.domains) - set(family.losses))
        if missing:
            raise ValueError(f"family {family.name}: domains {missing} name no declared loss")
        reg.register(f"{family.name}.declared_domain")(
            lambda cfg: check_family_domains(family, cfg)
        )
    return reg
