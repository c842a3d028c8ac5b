"""Declared input domains (issue 13): one declaration per loss drives its validation, the
engine's random points and the audit's strategies; every loss must agree with its declaration.

* Every public loss a registered family declares has a domain (built-ins and contrib alike).
* **Validation agrees with the declaration**: points drawn from the declaration are accepted, and
  every rule the declaration states, broken one argument at a time (mutations derived from the
  declaration itself, not hand-listed), is refused with a ``ValueError`` naming the argument.
* The domain machinery: labels, simplex rows, optional and shared dimensions, dtypes, devices,
  exclusive parameters; ``sample`` stays inside the declaration.
* The engine's ``declared_domain`` check passes on the package and fails on broken losses.
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
import torch

import softnce_theory.losses.domains as LD
from softnce_theory.derivations import CheckConfig
from softnce_theory.domain import (
    POSITIVE,
    UNIT,
    Array,
    Domain,
    Interval,
    Labels,
    Param,
)
from softnce_theory.engine._domain import check_family_domains, domain_registry
from softnce_theory.registry import Family, registry, resolve

FAMILIES = registry().select(None)
LOSSES = [(f, loss) for f in FAMILIES for loss in f.losses]
DECLARED = {n: v for n, v in vars(LD).items() if isinstance(v, Domain)}


def _tensors(domain: Domain, point: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for a in domain.arrays:
        if a.name in point:
            dt = torch.int64 if isinstance(a, Labels) else torch.float64
            out[a.name] = torch.tensor(point[a.name], dtype=dt)
    return {**point, **out}


def _sizes(domain: Domain, rng: random.Random) -> dict[str, int]:
    return {d: floor + rng.randint(0, 2) for d, floor in domain.min_sizes().items()}


def _point(domain: Domain, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    return _tensors(domain, domain.sample(rng, _sizes(domain, rng)))


# ----------------------------------------------------------------------------- coverage


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
def test_every_declared_loss_has_a_domain(fam: Family) -> None:
    assert set(fam.domains) == set(fam.losses), fam.name
    for loss, ref in fam.domains.items():
        assert isinstance(resolve(ref), Domain), (fam.name, loss)


def test_builtin_domains_are_named_after_their_loss() -> None:
    for fam in FAMILIES:
        for loss, ref in fam.domains.items():
            if isinstance(ref, str) and ref.startswith("softnce_theory.losses.domains:"):
                assert ref.endswith(":" + loss.upper())


# ----------------------------------------------------------------------------- agreement


def _mutations(domain: Domain, point: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """(argument, what, bad value): each declared rule broken once, from the declaration."""
    out: list[tuple[str, str, Any]] = []
    sizes = {}
    for a in domain.arrays:
        if a.name in point:
            layout = next(ds for ds in a.layouts() if len(ds) == point[a.name].dim())
            for d, n in zip(layout, point[a.name].shape, strict=True):
                sizes.setdefault(d, (n, a.name))
    for a in domain.arrays:
        if a.name not in point:
            continue
        x = point[a.name]
        out.append((a.name, "a list", x.tolist()))
        too_many = max(len(ds) for ds in a.layouts()) + 1
        out.append(
            (a.name, "a rank no layout has", x.reshape(*x.shape, *[1] * (too_many - x.dim())))
        )
        out.append((a.name, "an empty first dimension", x[:0]))
        if isinstance(a, Labels):
            out.append((a.name, "floating labels", x.double()))
            bad = x.clone()
            bad.view(-1)[0] = sizes[a.classes][0] if a.classes else -1
            out.append((a.name, "a label out of range", bad))
        else:
            out.append((a.name, "integer dtype", x.long()))
            if a.simplex:
                out.append((a.name, "rows summing to 2", x * 2))
                neg = x.clone()
                neg.view(-1)[0] = -0.5
                out.append((a.name, "a negative entry", neg))
            elif a.nonfinite == "reject":
                nan = x.clone()
                nan.view(-1)[0] = math.nan
                out.append((a.name, "a NaN entry", nan))
        # a dimension shared with an earlier argument, one larger
        layout = next(ds for ds in a.layouts() if len(ds) == x.dim())
        for i, d in enumerate(layout):
            owner = sizes.get(d, (0, a.name))[1]
            if owner != a.name:
                shape = list(x.shape)
                shape[i] += 1
                grown = torch.zeros(shape, dtype=x.dtype)
                out.append((a.name, f"dimension {d} differs", grown))
                break
    for p in domain.params:
        if p.name not in point:
            continue
        iv = p.interval
        if math.isfinite(iv.low):
            out.append((p.name, "below its interval", iv.low - 1.0))
        if math.isfinite(iv.high):
            out.append((p.name, "above its interval", iv.high + 1.0))
        out.append((p.name, "a string", "0.5"))
        out.append((p.name, "NaN", math.nan))
    return out


def _call(fam: Family, loss: str, args: dict[str, Any]) -> Any:
    return resolve(fam.losses[loss])(**args)


@pytest.mark.parametrize(("fam", "loss"), LOSSES, ids=lambda x: getattr(x, "name", x))
def test_loss_accepts_points_of_its_declared_domain(fam: Family, loss: str) -> None:
    domain = resolve(fam.domains[loss])
    for seed in range(6):
        out = _call(fam, loss, _point(domain, seed))
        assert bool(torch.isfinite(out).all()), (loss, seed)


@pytest.mark.parametrize(("fam", "loss"), LOSSES, ids=lambda x: getattr(x, "name", x))
def test_loss_refuses_every_broken_rule_of_its_declaration(fam: Family, loss: str) -> None:
    domain = resolve(fam.domains[loss])
    point = _point(domain, 0)
    muts = _mutations(domain, point)
    assert len(muts) >= 4 * len([a for a in domain.arrays if a.required])
    failures = []
    for arg, what, bad in muts:
        try:
            _call(fam, loss, {**point, arg: bad})
        except ValueError as exc:
            if arg not in str(exc):
                failures.append(f"{arg} ({what}): message does not name it: {exc}")
        except Exception as exc:
            failures.append(f"{arg} ({what}): {type(exc).__name__}: {exc}")
        else:
            failures.append(f"{arg} ({what}): accepted")
    assert not failures, "\n".join(failures)


# ----------------------------------------------------------------------------- the machinery


@pytest.mark.parametrize("name", sorted(DECLARED))
def test_sample_stays_in_the_declaration(name: str) -> None:
    domain = DECLARED[name]
    for seed in range(5):
        point = _point(domain, seed)
        checked = domain.validate(point)
        assert set(checked) == {k for k, v in point.items() if v is not None}


SHARED = Domain(
    arrays=(
        Array("logits", ("B", "C"), nonfinite="propagate"),
        Array("targets", ("B", "C"), simplex=True),
        Labels("labels", ("B",), classes="C"),
        Array("views", ("B", "V", "D"), optional=("V",), dtype_of="logits"),
        Array("prior", ("C",), simplex=True, same_device=False, required=False),
    ),
    params=(Param("t", POSITIVE), Param("s", Interval()), Param("eps", UNIT)),
    exclusive=(("t", "s"),),
)


def _good() -> dict[str, Any]:
    return {
        "logits": torch.randn(3, 4),
        "targets": torch.full((3, 4), 0.25),
        "labels": torch.tensor([0, 3, 1]),
        "views": torch.randn(3, 2),
    }


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"logits": [[1.0]]}, r"^logits must be a torch.Tensor, got list"),
        ({"logits": torch.zeros(3, 4, dtype=torch.int32)}, r"^logits must have dtype float16"),
        ({"logits": torch.zeros(3)}, r"^logits must have shape \(B, C\) \(2-D\), got shape"),
        ({"logits": torch.zeros(0, 4)}, r"^logits must be a non-empty batch \(dimension B"),
        ({"targets": torch.full((3, 5), 0.2)}, r"^targets: dimension C is 5 but logits has C = 4"),
        ({"targets": torch.full((3, 4), 0.5)}, r"^targets rows must sum to 1"),
        ({"targets": torch.full((3, 4), math.nan)}, r"^targets must be finite"),
        ({"labels": torch.tensor([0.0, 1.0, 2.0])}, r"^labels must have an integer dtype"),
        ({"labels": torch.tensor([0, 1])}, r"^labels must have shape \(3,\)"),
        ({"labels": torch.tensor([0, 4, 1])}, r"^labels must lie in \[0, 4\); found values in"),
        ({"views": torch.randn(3)}, r"^views must have shape \(B, V, D\) or \(B, D\)"),
        ({"views": torch.randn(3, 2).double()}, r"^views must have the same dtype as logits"),
        ({"labels": torch.tensor([0, 1, 2], device="meta")}, r"^labels must be on the same device"),
        ({"prior": torch.full((5,), 0.2)}, r"^prior: dimension C is 5 but logits has C = 4"),
        ({"t": 0.5, "s": 1.0}, r"^t and s are mutually exclusive"),
        ({"t": -1.0}, r"^t must be finite and > 0, got -1.0"),
        ({"eps": 2.0}, r"^eps must lie in \[0, 1\], got 2.0"),
        ({"t": True}, r"^t must be a real number, got bool"),
    ],
)
def test_validate_messages_name_the_argument_and_rule(change: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SHARED.validate({**_good(), **change})


def test_validate_accepts_layouts_nan_logits_and_a_prior_elsewhere() -> None:
    good = _good()
    good["logits"][0, 0] = math.nan  # propagates: no data-dependent check on logits
    SHARED.validate({**good, "views": torch.randn(3, 5, 2), "prior": torch.full((4,), 0.25)})
    meta = {**good, "prior": torch.full((4,), 0.25, device="meta")}
    SHARED.validate(meta)  # same_device=False: the loss moves it
    SHARED.validate({**good, "targets": torch.full((3, 4), 0.5)}, check_values=False)


def test_square_dimensions_and_learnable_params() -> None:
    square = Domain(arrays=(Array("m", ("B", "B")),), params=(Param("t", POSITIVE),))
    with pytest.raises(ValueError, match=r"^m: its dimensions named B must be equal"):
        square.validate({"m": torch.zeros(2, 3)})
    t = torch.tensor([0.5], requires_grad=True)
    out = square.validate({"m": torch.zeros(2, 2), "t": t})["t"]
    assert out.shape == () and out.requires_grad  # never detached
    (out * 2).backward()
    assert t.grad is not None and float(t.grad) == 2.0


def test_sample_respects_labels_simplex_layouts_and_exclusive_groups() -> None:
    rng = random.Random(0)
    layouts, kept = set(), set()
    for _ in range(40):
        pt = SHARED.sample(rng, {"B": 3, "C": 4, "V": 2, "D": 2})
        assert "prior" not in pt  # optional arrays are left out
        assert all(0 <= v < 4 for v in pt["labels"])
        assert all(abs(sum(r) - 1.0) < 1e-12 for r in pt["targets"])
        layouts.add(torch.tensor(pt["views"]).dim())
        kept.add(("t" in pt, "s" in pt))
        SHARED.validate(_tensors(SHARED, pt))
    assert layouts == {2, 3}
    assert kept == {(True, False), (False, True)}


def test_domain_declaration_errors() -> None:
    with pytest.raises(ValueError, match="classes 'K' is not a dimension"):
        Domain(arrays=(Labels("y", ("B",), classes="K"),))
    with pytest.raises(ValueError, match="exclusive"):
        Domain(params=(Param("t"),), exclusive=(("t", "u"),))
    with pytest.raises(ValueError, match="optional dims"):
        Array("x", ("B",), optional=("V",))
    with pytest.raises(ValueError, match="nonfinite"):
        Array("x", ("B",), nonfinite="ignore")


# ----------------------------------------------------------------------------- engine check


def test_engine_declared_domain_check_passes_on_every_family() -> None:
    cfg = CheckConfig(quick=True)
    for fam in FAMILIES:
        res = check_family_domains(fam, cfg)
        assert res.outcome == "pass", (fam.name, res.counterexample)
        assert res.n_points > 0
        assert set(res.extra["points"]) == set(fam.losses)


def _fake(fn: Any) -> Family:
    dom = Domain(arrays=(Array("x", ("B", "K")),), params=(Param("t", POSITIVE, extremes=(1e-3,)),))
    return Family(name="fake", title="t", source="s", losses={"f": fn}, domains={"f": dom})


@pytest.mark.parametrize(
    ("fn", "finding"),
    [
        (lambda x, t: (_ for _ in ()).throw(ValueError("x: nope")), "was refused"),
        (lambda x, t: (x / t).sum() * math.nan, "non-finite value"),
        (lambda x, t: (x.detach() / t).logsumexp(-1).sum() + 0 * t, "no gradient reached x"),
        (lambda x, t: x.sum() / t + (x - x.detach()).pow(0.5).sum(), "non-finite d/dx"),
    ],
)
def test_engine_declared_domain_check_can_fail(fn: Any, finding: str) -> None:
    res = check_family_domains(_fake(fn), CheckConfig(quick=True))
    assert res.outcome == "fail"
    assert finding in (res.counterexample or ""), res.counterexample


def test_domain_registry_rejects_a_domain_without_a_loss() -> None:
    fam = Family(name="fake", title="t", source="s", domains={"g": Domain()})
    with pytest.raises(ValueError, match="name no declared loss"):
        domain_registry(fam)
