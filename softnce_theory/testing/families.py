"""Audit contracts and their property suites, one per loss family.

A family fixes a call signature (the *contract*), a semantics (the reference values of
:mod:`softnce_theory.testing.references`) and a list of properties. The signature is declared
once, as a :class:`~softnce_theory.domain.Domain` built from the loss declarations of
:mod:`softnce_theory.losses.domains` (``BuiltinContract.domain``): the contract's arguments
(:class:`~softnce_theory.testing.core.Arg`, their kinds and which are differentiated) are
derived from it, and the ``declared_domain`` property draws its examples from it
(:func:`~softnce_theory.testing.strategies.from_domain`). The other properties draw from
hand-written strategies aimed at one region each (target kinds, label layouts, row norms).

* ``oracle``: float64 value against the mpmath oracle of ``numerics/<family>``, on the
  hand-written strategy (``value_vs_oracle``) and on the declared domain (``declared_domain``);
* ``gradient``: autograd against the closed-form gradient;
* ``invariance``: logit shift, batch permutation, embedding scale, label renaming;
* ``limit``: one-hot / uniform targets, instance labels, identical embeddings, ...;
* ``edge``: anchors without positives, single-class batches, extreme temperatures, logits up to
  1e4, masked (``-inf``) logits, zero-probability noise classes;
* ``dtype``: float32 / bfloat16 / float16 against float64 on the same rounded inputs.

The contracts are documented in ``docs/audit.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from softnce_theory.domain import Array, Domain, Labels
from softnce_theory.losses import domains as D
from softnce_theory.testing import references as R
from softnce_theory.testing import strategies as S
from softnce_theory.testing.core import (
    CORRECTNESS,
    LOW_DTYPES,
    ROBUSTNESS,
    Arg,
    Caller,
    Contract,
    Discrepancy,
    Example,
    KitError,
    Property,
    check_grads,
    check_value,
)

# size strategies (module-level singletons)
_N_ROWS = st.integers(1, 6)
_N_CLASSES = st.integers(2, 8)
_N_CLASSES_STI = st.integers(2, 6)
_N_PAIRS = st.integers(1, 8)
_N_BATCH = st.sampled_from(tuple(range(3, 11)))


def domain_args(domain: Domain) -> tuple[Arg, ...]:
    """A contract's arguments, in declaration order: an :class:`Array` is a float tensor,
    differentiated unless it is a ``simplex`` (probability rows are data: targets, a noise
    distribution), a :class:`Labels` a long tensor, a parameter a scalar."""
    tensors = tuple(
        Arg(a.name, "float", grad=not a.simplex) if isinstance(a, Array) else Arg(a.name, "long")
        for a in domain.arrays
    )
    return tensors + tuple(Arg(p.name, "scalar") for p in domain.params)


@dataclass(frozen=True)
class BuiltinContract(Contract):
    """A hand-written audit contract: signature, reference, tolerance scales and properties.

    ``domain`` declares the call signature once (argument names in call order, shapes, label
    ranges, parameter ranges); ``args`` is derived from it (:func:`domain_args`). The reference
    values are the project's oracles in ``numerics`` and the closed forms of
    :mod:`softnce_theory.testing.references`, looked up by the contract's name."""

    name: str
    contract: str
    semantics: str
    domain: Domain
    scale: Callable[[Example], float]
    natural: Callable[[Example], dict[str, float]]
    build: Callable[[BuiltinContract], list[Property]]
    smoke: Callable[[], Example]
    args: tuple[Arg, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "args", domain_args(self.domain))

    def properties(self) -> list[Property]:
        return self.build(self)

    def smoke_example(self) -> Example:
        return self.smoke()

    def ref_args(self, ex: Example) -> tuple[Any, ...]:
        return tuple(ex[a.name] for a in self.args)

    def oracle(self, ex: Example) -> float:
        try:
            v, _ = R.oracle_value(self.name, *self.ref_args(ex))
        except Exception as exc:
            raise KitError(f"oracle failed: {type(exc).__name__}: {exc}") from exc
        return v

    def closed(self, ex: Example) -> tuple[float, dict[str, np.ndarray]]:
        try:
            return R.closed_form(self.name, *self.ref_args(ex))
        except Exception as exc:
            raise KitError(f"closed form failed: {type(exc).__name__}: {exc}") from exc

    def reference_name(self) -> str:
        return R.reference_name(self.name)


# ----------------------------------------------------------------------------- generic properties


def prop_oracle(
    fam: BuiltinContract,
    strategy: st.SearchStrategy[Example],
    name: str,
    kind: str,
    description: str,
) -> Property:
    def check(caller: Caller, ex: Example) -> None:
        got = caller.value(ex)
        check_value(got, fam.oracle(ex), fam.scale(ex), "oracle")

    return Property(name, kind, description, strategy, check)


#: the least row norm of an embedding drawn by ``declared_domain`` (see :func:`_nonzero_rows`)
_MIN_ROW_NORM = 1e-6


def _nonzero_rows(*names: str) -> Callable[[Example], bool]:
    """Every row of the named embeddings has norm >= :data:`_MIN_ROW_NORM`. A zero (or
    denormal) row has no direction: what its cosine similarity is, is a policy of the loss
    (``F.normalize``'s ``eps``), not part of the contract's formula."""

    def ok(ex: Example) -> bool:
        return all(bool((_row_norms(ex[n]) >= _MIN_ROW_NORM).all()) for n in names)

    return ok


def prop_declared_domain(
    fam: BuiltinContract,
    *,
    sizes: dict[str, Any] | None = None,
    valid: Callable[[Example], bool] | None = None,
    why: str = "",
) -> Property:
    """Value vs the oracle on examples of the contract's declared domain
    (:func:`~softnce_theory.testing.strategies.from_domain`, dimensions up to 5, parameters in
    their typical ranges). ``valid`` filters out the inputs whose value is an edge policy of
    the contract rather than its formula; ``why`` says which, in the description."""
    strategy = S.from_domain(fam.domain, max_size=5, sizes=sizes)
    if valid is not None:
        strategy = strategy.filter(valid)
    return prop_oracle(
        fam,
        strategy,
        "declared_domain",
        "oracle",
        "float64 value vs the 50-digit oracle on examples drawn from the contract's declared "
        "domain (every argument as declared, dimensions up to 5, parameters in their typical "
        "range" + (f"; {why}" if why else "") + ")",
    )


def prop_gradient(
    fam: BuiltinContract, strategy: st.SearchStrategy[Example], description: str
) -> Property:
    def check(caller: Caller, ex: Example) -> None:
        _, g = caller.value_and_grad(ex)
        _, want = fam.closed(ex)
        check_grads(g, want, fam.scale(ex), fam.natural(ex), "closed form")

    return Property("gradient_vs_closed_form", "gradient", description, strategy, check)


def prop_invariance(
    fam: BuiltinContract,
    strategy: st.SearchStrategy[Example],
    transform: Callable[[Example], Example],
    name: str,
    description: str,
) -> Property:
    def check(caller: Caller, ex: Example) -> None:
        base = caller.value(ex)
        ex2 = transform(ex)
        got = caller.value(ex2)
        check_value(
            got,
            base,
            max(fam.scale(ex), fam.scale(ex2)),
            "the untransformed loss",
            reference_from_kit=False,
        )

    return Property(name, "invariance", description, strategy, check)


def prop_closed(
    fam: BuiltinContract,
    strategy: st.SearchStrategy[Example],
    want: Callable[[Example], float],
    name: str,
    kind: str,
    description: str,
    what: str,
    tier: str = "",
) -> Property:
    def check(caller: Caller, ex: Example) -> None:
        got = caller.value(ex)
        try:
            w = float(want(ex))
        except Exception as exc:
            raise KitError(f"closed form failed: {type(exc).__name__}: {exc}") from exc
        check_value(got, w, fam.scale(ex), what)

    return Property(name, kind, description, strategy, check, tier)


def prop_oracle_and_gradient(
    fam: BuiltinContract,
    strategy: st.SearchStrategy[Example],
    name: str,
    kind: str,
    description: str,
    tier: str,
) -> Property:
    """Value vs the oracle and gradient vs the closed form (edge regions); ``tier`` says
    whether the region is ordinary input (correctness) or an edge policy (robustness)."""

    def check(caller: Caller, ex: Example) -> None:
        v, g = caller.value_and_grad(ex)
        check_value(v, fam.oracle(ex), fam.scale(ex), "oracle")
        _, want = fam.closed(ex)
        check_grads(g, want, fam.scale(ex), fam.natural(ex), "closed form")

    return Property(name, kind, description, strategy, check, tier)


def prop_low_precision(fam: BuiltinContract, strategy: st.SearchStrategy[Example]) -> Property:
    """float32 / bfloat16 / float16 against the same loss in float64 on the rounded inputs."""

    def check(caller: Caller, ex: Example) -> None:
        dtype, eps = LOW_DTYPES[ex["dtype"]]
        low = caller.tensors(ex, dtype, grad=True)
        # the differentiated inputs are rounded to the dtype for the float64 reference as well;
        # data inputs (targets, noise_probs) keep their float64 values (they would fail a
        # float64 simplex check once rounded; their rounding is inside the tolerance)
        rounded = dict(ex)
        for a in fam.args:
            if a.grad:
                rounded[a.name] = low[a.name].detach().double().numpy()
        ref, ref_g = caller.value_and_grad(rounded)
        if not math.isfinite(ref):
            raise Discrepancy(
                f"float64 value on the rounded inputs is {ref!r} (not finite)",
                kind="value",
                got=ref,
            )
        out = caller.call(low)
        got = float(out.detach().double())
        scale = fam.scale(rounded)
        tol = 16 * eps * (abs(ref) + 1.0 + scale)
        if not math.isfinite(got) or abs(got - ref) > tol:
            raise Discrepancy(
                f"{ex['dtype']} value {got:.8g} vs float64 {ref:.8g} on the same rounded inputs: "
                f"abs err {abs(got - ref):.3g} > tol {tol:.3g}",
                kind="dtype",
                got=got,
                want=ref,
                err=abs(got - ref),
                tol=tol,
            )
        wrt = [low[a.name] for a in fam.args if a.grad]
        if not out.requires_grad:
            raise Discrepancy(f"{ex['dtype']} output has no autograd graph", kind="dtype")
        grads = torch.autograd.grad(out, wrt, allow_unused=True)
        nat = fam.natural(rounded)
        for a, g in zip([a for a in fam.args if a.grad], grads, strict=True):
            if g is None:
                continue
            gd = g.detach().double().numpy()
            if not np.isfinite(gd).all():
                raise Discrepancy(
                    f"{ex['dtype']} gradient w.r.t. {a.name} is not finite", kind="dtype"
                )
            err = float(np.linalg.norm(gd - ref_g[a.name]))
            gtol = 64 * eps * (1.0 + scale) * max(nat[a.name], float(np.linalg.norm(ref_g[a.name])))
            if err > gtol:
                raise Discrepancy(
                    f"{ex['dtype']} gradient w.r.t. {a.name}: normwise err {err:.3g} vs float64 "
                    f"> tol {gtol:.3g}",
                    kind="dtype",
                    err=err,
                    tol=gtol,
                )

    return Property(
        "low_precision",
        "dtype",
        "float32/bfloat16/float16 inputs: finite value and gradient, close to float64 on the "
        "same rounded inputs (tolerance 16 eps of the dtype times the logit scale)",
        strategy,
        check,
    )


def _with_dtype(strategy: st.SearchStrategy[Example]) -> st.SearchStrategy[Example]:
    return st.tuples(strategy, st.sampled_from(tuple(LOW_DTYPES))).map(
        lambda t: {**t[0], "dtype": t[1]}
    )


# ----------------------------------------------------------------------------- tolerance scales


def _finite_max(x: Any) -> float:
    a = np.abs(np.asarray(x, dtype=np.float64))
    a = a[np.isfinite(a)]
    return float(a.max()) if a.size else 0.0


def _logit_scale(ex: Example) -> float:
    t = float(ex.get("temperature", 1.0))
    s = _finite_max(ex["logits"]) / t
    if "noise_probs" in ex:
        q = np.asarray(ex["noise_probs"], dtype=np.float64)
        q = q[q > 0]
        s += float(np.abs(np.log(q)).max()) if q.size else 0.0
    return s


def _logit_natural(ex: Example) -> dict[str, float]:
    n = np.asarray(ex["logits"]).shape[0]
    t = float(ex.get("temperature", 1.0))
    return {"logits": math.sqrt(2.0 * n) / (n * t)}


def _emb_scale(ex: Example) -> float:
    return 1.0 / float(ex["temperature"])


def _row_norms(x: Any) -> np.ndarray:
    return np.linalg.norm(np.asarray(x, dtype=np.float64), axis=1)


def _emb_natural(ex: Example) -> dict[str, float]:
    t = float(ex["temperature"])
    lab = np.asarray(ex["labels"])
    nv = max(1, int(sum(((lab == y).sum() > 1) for y in lab)))
    r = _row_norms(ex["embeddings"])
    return {"embeddings": float(np.sqrt(np.sum((4.0 / (t * nv * r)) ** 2)))}


def _qk_natural(ex: Example) -> dict[str, float]:
    t = float(ex["temperature"])
    n = np.asarray(ex["query"]).shape[0]
    out = {}
    for k in ("query", "keys"):
        r = _row_norms(ex[k])
        out[k] = float(np.sqrt(np.sum((2.0 / (t * n * r)) ** 2)))
    return out


# ----------------------------------------------------------------------------- strategies


@st.composite
def _logit_case(
    draw: Any,
    *,
    n: st.SearchStrategy[int] = _N_ROWS,
    c: st.SearchStrategy[int] = _N_CLASSES,
    max_abs: float = 100.0,
    min_abs: float = 1e-2,
    kinds: tuple[str, ...] = S.TARGET_KINDS,
) -> Example:
    f = draw(S.logits(n, c, max_abs=max_abs, min_abs=min_abs))
    return {"logits": f, "targets": draw(S.simplex_targets(f.shape[0], f.shape[1], kinds=kinds))}


@st.composite
def _shifted(draw: Any, base: st.SearchStrategy[Example]) -> Example:
    ex = draw(base)
    n = np.asarray(ex["logits"]).shape[0]
    mag = 10 ** draw(st.floats(-1, 3))
    signs = draw(st.lists(st.sampled_from((-1.0, 1.0)), min_size=n, max_size=n))
    return {**ex, "shift": np.asarray(signs) * mag}


def _apply_shift(ex: Example) -> Example:
    return {**ex, "logits": np.asarray(ex["logits"]) + np.asarray(ex["shift"])[:, None]}


@st.composite
def _permuted(draw: Any, base: st.SearchStrategy[Example], key: str) -> Example:
    ex = draw(base)
    n = np.asarray(ex[key]).shape[0]
    return {**ex, "perm": np.asarray(draw(st.permutations(range(n))), dtype=np.int64)}


def _apply_perm(keys: tuple[str, ...]) -> Callable[[Example], Example]:
    def f(ex: Example) -> Example:
        p = np.asarray(ex["perm"])
        return {**ex, **{k: np.asarray(ex[k])[p] for k in keys}}

    return f


def _masked(ex: Example, rng_seed: int) -> Example:
    """Put ``-inf`` on one zero-target class per row (targets renormalised without it)."""
    f = np.array(ex["logits"], dtype=np.float64)
    a = np.array(ex["targets"], dtype=np.float64)
    n, c = f.shape
    rng = np.random.default_rng(rng_seed)
    for i in range(n):
        k = int(rng.integers(c))
        if a[i].sum() - a[i, k] <= 0:  # the row's whole mass is on k: mask another class
            k = (k + 1) % c
        a[i, k] = 0.0
        a[i] /= a[i].sum()
        f[i, k] = -np.inf
    return {**ex, "logits": f, "targets": a}


@st.composite
def _masked_case(draw: Any, base: st.SearchStrategy[Example]) -> Example:
    ex = draw(base)
    return _masked(ex, draw(st.integers(0, 2**16)))


def _smoke_logits() -> Example:
    return {
        "logits": np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -0.5]]),
        "targets": np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]),
    }


# ----------------------------------------------------------------------------- mp closed forms


def _mp_nll(logits: Any, labels: Any) -> float:
    from softnce_theory.numerics._mp import lse, mat, workdps

    with workdps(R.ORACLE_DPS):
        f = mat(np.asarray(logits, dtype=np.float64))
        rows = [lse(fi) - fi[int(y)] for fi, y in zip(f, np.asarray(labels).tolist(), strict=True)]
        return float(sum(rows) / len(rows))


def _mp_uniform_ce(logits: Any) -> float:
    from mpmath import mp

    from softnce_theory.numerics._mp import lse, mat, workdps

    with workdps(R.ORACLE_DPS):
        f = mat(np.asarray(logits, dtype=np.float64))
        rows = [lse(fi) - mp.fsum(fi) / len(fi) for fi in f]
        return float(mp.fsum(rows) / len(rows))


def _argmax_labels(targets: Any) -> np.ndarray:
    return np.asarray(targets).argmax(1)


# ----------------------------------------------------------------------------- soft_ce


def _logit_target_props(
    fam: BuiltinContract, base: st.SearchStrategy[Example], gradient: str
) -> list[Property]:
    """Value vs oracle, gradient vs closed form, logit-shift and batch-permutation invariance:
    shared by the ``(logits, targets)`` families (soft CE, collision CE)."""
    return [
        prop_oracle(
            fam,
            base,
            "value_vs_oracle",
            "oracle",
            "float64 value vs the 50-digit oracle (all target kinds, logits up to 1e2)",
        ),
        prop_declared_domain(fam),
        prop_gradient(fam, base, gradient),
        prop_invariance(
            fam,
            _shifted(base),
            _apply_shift,
            "logit_shift_invariance",
            "adding a constant to every logit of a row leaves the loss unchanged",
        ),
        prop_invariance(
            fam,
            _permuted(base, "logits"),
            _apply_perm(("logits", "targets")),
            "batch_permutation_invariance",
            "permuting the rows (logits and targets) leaves the mean unchanged",
        ),
    ]


def _build_soft_ce(fam: BuiltinContract) -> list[Property]:
    base = _logit_case()
    return [
        *_logit_target_props(fam, base, "autograd vs (p*sum(alpha) - alpha)/N"),
        prop_closed(
            fam,
            _logit_case(kinds=("onehot",)),
            lambda ex: _mp_nll(ex["logits"], _argmax_labels(ex["targets"])),
            "onehot_targets_equal_nll",
            "limit",
            "one-hot targets give the hard-label NLL mean(LSE(f) - f_y)",
            "NLL",
        ),
        prop_closed(
            fam,
            _logit_case(kinds=("uniform",)),
            lambda ex: _mp_uniform_ce(ex["logits"]),
            "uniform_targets",
            "limit",
            "uniform targets give mean(LSE(f) - mean(f)) (log C at equal logits)",
            "uniform-target CE",
        ),
        prop_oracle_and_gradient(
            fam,
            _logit_case(max_abs=1e4, min_abs=1e3),
            "large_logits",
            "edge",
            "logits up to +-1e4: finite, value vs oracle and gradient vs closed form",
            ROBUSTNESS,
        ),
        prop_oracle_and_gradient(
            fam,
            _masked_case(base),
            "masked_logit",
            "edge",
            "a -inf logit on a zero-target class (0 log 0 = 0): finite value and gradient",
            ROBUSTNESS,
        ),
        prop_closed(
            fam,
            _logit_case(c=st.just(1)),
            lambda ex: 0.0,
            "single_class",
            "edge",
            "a single class (C = 1): the loss is 0",
            "0",
            CORRECTNESS,
        ),
        prop_low_precision(fam, _with_dtype(_logit_case(max_abs=20.0))),
    ]


# ----------------------------------------------------------------------------- collision_ce


def _build_collision(fam: BuiltinContract) -> list[Property]:
    base = _logit_case()
    return [
        *_logit_target_props(fam, base, "autograd vs (sigma - y*sigma/(sigma.y))/N"),
        prop_closed(
            fam,
            _logit_case(kinds=("onehot",)),
            lambda ex: _mp_nll(ex["logits"], _argmax_labels(ex["targets"])),
            "onehot_targets_equal_nll",
            "limit",
            "one-hot targets give Shannon CE = NLL mean(LSE(f) - f_y)",
            "NLL",
        ),
        prop_closed(
            fam,
            _logit_case(kinds=("uniform",)),
            lambda ex: math.log(np.asarray(ex["logits"]).shape[1]),
            "uniform_targets_log_c",
            "limit",
            "uniform targets give exactly log C whatever the logits",
            "log C",
        ),
        prop_oracle_and_gradient(
            fam,
            _logit_case(max_abs=1e4, min_abs=1e3),
            "large_logits",
            "edge",
            "logits up to +-1e4: finite, value vs oracle and gradient vs closed form",
            ROBUSTNESS,
        ),
        prop_oracle_and_gradient(
            fam,
            _masked_case(base),
            "masked_logit",
            "edge",
            "a -inf logit on a zero-target class: finite value and gradient",
            ROBUSTNESS,
        ),
        prop_closed(
            fam,
            _logit_case(c=st.just(1)),
            lambda ex: 0.0,
            "single_class",
            "edge",
            "a single class (C = 1): the loss is 0",
            "0",
            CORRECTNESS,
        ),
        prop_low_precision(fam, _with_dtype(_logit_case(max_abs=20.0))),
    ]


# ----------------------------------------------------------------------------- label_smoothing


@st.composite
def _ls_case(
    draw: Any,
    *,
    max_abs: float = 100.0,
    min_abs: float = 1e-2,
    eps: st.SearchStrategy[float] | None = None,
) -> Example:
    f = draw(S.logits(st.integers(1, 6), st.integers(2, 8), max_abs=max_abs, min_abs=min_abs))
    n, c = f.shape
    labels = np.asarray(
        draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)), dtype=np.int64
    )
    e = draw(eps if eps is not None else S.epsilons())
    return {"logits": f, "labels": labels, "epsilon": e}


def _build_label_smoothing(fam: BuiltinContract) -> list[Property]:
    base = _ls_case()
    return [
        prop_oracle(
            fam,
            base,
            "value_vs_oracle",
            "oracle",
            "float64 value vs the 50-digit oracle, torch convention (1-eps) e_y + eps/C",
        ),
        prop_declared_domain(fam),
        prop_gradient(fam, base, "autograd vs (p - alpha_eps)/N"),
        prop_invariance(
            fam,
            _shifted(base),
            _apply_shift,
            "logit_shift_invariance",
            "adding a constant to every logit of a row leaves the loss unchanged",
        ),
        prop_invariance(
            fam,
            _permuted(base, "logits"),
            _apply_perm(("logits", "labels")),
            "batch_permutation_invariance",
            "permuting the rows (logits and labels) leaves the mean unchanged",
        ),
        prop_closed(
            fam,
            _ls_case(eps=st.just(0.0)),
            lambda ex: _mp_nll(ex["logits"], ex["labels"]),
            "epsilon_zero_is_nll",
            "limit",
            "eps = 0 gives the hard-label NLL",
            "NLL",
        ),
        prop_closed(
            fam,
            _ls_case(eps=st.just(1.0)),
            lambda ex: _mp_uniform_ce(ex["logits"]),
            "epsilon_one_is_uniform_ce",
            "limit",
            "eps = 1 gives the uniform-target CE mean(LSE(f) - mean(f))",
            "uniform-target CE",
        ),
        prop_oracle_and_gradient(
            fam,
            _ls_case(max_abs=1e4, min_abs=1e3),
            "large_logits",
            "edge",
            "logits up to +-1e4: finite, value vs oracle and gradient vs closed form",
            ROBUSTNESS,
        ),
        prop_low_precision(fam, _with_dtype(_ls_case(max_abs=20.0))),
    ]


def _smoke_ls() -> Example:
    return {
        "logits": np.array([[0.5, -1.0, 2.0], [0.0, 1.0, -0.5]]),
        "labels": np.array([2, 0]),
        "epsilon": 0.1,
    }


# ----------------------------------------------------------------------------- soft_target_infonce


@st.composite
def _sti_case(
    draw: Any,
    *,
    n: st.SearchStrategy[int] = _N_ROWS,
    c: st.SearchStrategy[int] = _N_CLASSES_STI,
    max_abs: float = 100.0,
    min_abs: float = 1e-2,
    kinds: tuple[str, ...] = S.TARGET_KINDS,
    temps: st.SearchStrategy[float] | None = None,
    uniform_noise: bool = False,
) -> Example:
    ex = draw(_logit_case(n=n, c=c, max_abs=max_abs, min_abs=min_abs, kinds=kinds))
    cc = np.asarray(ex["logits"]).shape[1]
    q = np.full(cc, 1.0 / cc) if uniform_noise else draw(S.noise_distributions(cc))
    t = draw(temps if temps is not None else S.temperatures(1e-2, 1e2))
    return {**ex, "noise_probs": q, "temperature": t}


@st.composite
def _sti_zero_noise(draw: Any) -> Example:
    """Zero-probability classes that no candidate puts mass on (0 log 0 = 0)."""
    ex = draw(_sti_case(c=st.integers(3, 6)))
    a = np.array(ex["targets"], dtype=np.float64)
    c = a.shape[1]
    k = draw(st.integers(1, c - 2))
    zero = np.asarray(draw(st.permutations(range(c))))[:k]
    a[:, zero] = 0.0
    dead = a.sum(1) <= 0
    keep = [j for j in range(c) if j not in set(zero.tolist())]
    a[dead, keep[0]] = 1.0
    a /= a.sum(1, keepdims=True)
    q = np.array(ex["noise_probs"], dtype=np.float64)
    q[zero] = 0.0
    q = q / q.sum() if q.sum() > 0 else np.where(np.isin(np.arange(c), zero), 0.0, 1.0 / (c - k))
    return {**ex, "targets": a, "noise_probs": q / q.sum(), "zero_classes": np.sort(zero)}


@st.composite
def _sti_identical(draw: Any) -> Example:
    ex = draw(_sti_case())
    a = np.asarray(ex["targets"])
    return {**ex, "targets": np.repeat(a[:1], a.shape[0], axis=0)}


def _sti_ranking_nce(ex: Example) -> float:
    from softnce_theory.numerics import soft_target_infonce as O
    from softnce_theory.numerics._mp import workdps

    with workdps(R.ORACLE_DPS):
        labels = _argmax_labels(ex["targets"]).tolist()
        return float(O.ranking_nce(ex["logits"], labels, ex["noise_probs"], ex["temperature"]))


def _build_sti(fam: BuiltinContract) -> list[Property]:
    base = _sti_case()
    return [
        prop_oracle(
            fam,
            base,
            "value_vs_oracle",
            "oracle",
            "float64 value vs the 50-digit oracle (non-uniform q, t in [1e-2, 1e2])",
        ),
        prop_declared_domain(fam),
        prop_gradient(fam, base, "autograd vs (sum_j w_ij alpha_j - alpha_i)/(N t)"),
        prop_invariance(
            fam,
            _shifted(base),
            _apply_shift,
            "logit_shift_invariance",
            "adding a constant to every logit of a row leaves the loss unchanged (simplex targets)",
        ),
        prop_invariance(
            fam,
            _permuted(base, "logits"),
            _apply_perm(("logits", "targets")),
            "batch_permutation_invariance",
            "permuting the rows (logits and targets together) leaves the mean unchanged",
        ),
        prop_closed(
            fam,
            _sti_case(kinds=("onehot",)),
            _sti_ranking_nce,
            "onehot_targets_ranking_nce",
            "limit",
            "one-hot targets give Ma & Collins' ranking NCE with the -log q_y correction",
            "ranking NCE (numerics.soft_target_infonce.ranking_nce)",
        ),
        prop_closed(
            fam,
            _sti_identical(),
            lambda ex: math.log(np.asarray(ex["logits"]).shape[0]),
            "identical_targets_log_n",
            "limit",
            "identical candidate targets give log N whatever the logits (N = 1: 0)",
            "log N",
        ),
        prop_oracle_and_gradient(
            fam,
            _sti_zero_noise(),
            "zero_probability_classes",
            "edge",
            "q_c = 0 on classes no target puts mass on (0 log 0 = 0): finite, vs oracle",
            ROBUSTNESS,
        ),
        prop_oracle_and_gradient(
            fam,
            _sti_case(temps=st.one_of(S.temperatures(1e-3, 1e-2), S.temperatures(1e2, 1e3))),
            "extreme_temperature",
            "edge",
            "t in [1e-3, 1e-2] or [1e2, 1e3]: finite, value vs oracle and gradient vs closed form",
            ROBUSTNESS,
        ),
        prop_oracle_and_gradient(
            fam,
            _sti_case(max_abs=1e4, min_abs=1e3, temps=S.temperatures(0.1, 10)),
            "large_logits",
            "edge",
            "logits up to +-1e4: finite, value vs oracle and gradient vs closed form",
            ROBUSTNESS,
        ),
        prop_low_precision(fam, _with_dtype(_sti_case(max_abs=10.0, temps=S.temperatures(0.5, 5)))),
    ]


def _smoke_sti() -> Example:
    return {**_smoke_logits(), "noise_probs": np.array([0.5, 0.3, 0.2]), "temperature": 1.0}


# ----------------------------------------------------------------------------- infonce


@st.composite
def _qk_case(
    draw: Any,
    *,
    n: st.SearchStrategy[int] = _N_PAIRS,
    temps: st.SearchStrategy[float] | None = None,
    norm_range: tuple[float, float] = (0.1, 10.0),
) -> Example:
    q, k = draw(S.query_key_pairs(n, st.integers(2, 5), norm_range=norm_range))
    t = draw(temps if temps is not None else S.temperatures(2e-2, 20))
    return {"query": q, "keys": k, "temperature": t}


@st.composite
def _qk_scaled(draw: Any) -> Example:
    ex = draw(_qk_case())
    n = np.asarray(ex["query"]).shape[0]
    fq = 10 ** np.asarray(draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n)))
    fk = 10 ** np.asarray(draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n)))
    return {**ex, "query_factor": fq, "keys_factor": fk}


def _apply_qk_scale(ex: Example) -> Example:
    return {
        **ex,
        "query": np.asarray(ex["query"]) * np.asarray(ex["query_factor"])[:, None],
        "keys": np.asarray(ex["keys"]) * np.asarray(ex["keys_factor"])[:, None],
    }


@st.composite
def _qk_identical_keys(draw: Any) -> Example:
    ex = draw(_qk_case())
    k = np.asarray(ex["keys"])
    radii = 10 ** np.asarray(
        draw(st.lists(st.floats(-1, 1), min_size=k.shape[0], max_size=k.shape[0]))
    )
    return {**ex, "keys": k[:1] / np.linalg.norm(k[0]) * radii[:, None]}


def _build_infonce(fam: BuiltinContract) -> list[Property]:
    base = _qk_case()
    return [
        prop_oracle(
            fam,
            base,
            "value_vs_oracle",
            "oracle",
            "float64 value vs the 50-digit oracle (cosine similarities, tau in [2e-2, 20])",
        ),
        prop_declared_domain(
            fam, valid=_nonzero_rows("query", "keys"), why=f"rows of norm >= {_MIN_ROW_NORM:g}"
        ),
        prop_gradient(fam, base, "autograd w.r.t. query and keys vs the closed form"),
        prop_invariance(
            fam,
            _qk_scaled(),
            _apply_qk_scale,
            "embedding_scale_invariance",
            "rescaling query and key rows by positive factors in [1e-3, 1e3] leaves the loss "
            "unchanged",
        ),
        prop_invariance(
            fam,
            _permuted(base, "query"),
            _apply_perm(("query", "keys")),
            "batch_permutation_invariance",
            "permuting the pairs (query and keys together) leaves the mean unchanged",
        ),
        prop_closed(
            fam,
            _qk_identical_keys(),
            lambda ex: math.log(np.asarray(ex["query"]).shape[0]),
            "identical_keys_log_n",
            "limit",
            "parallel keys give log B whatever the queries (B = 1: 0)",
            "log B",
        ),
        prop_oracle_and_gradient(
            fam,
            _qk_case(temps=st.one_of(S.temperatures(1e-4, 1e-2), S.temperatures(1e2, 1e4))),
            "extreme_temperature",
            "edge",
            "tau in [1e-4, 1e-2] or [1e2, 1e4]: finite, value vs oracle and gradient vs closed "
            "form",
            ROBUSTNESS,
        ),
        prop_low_precision(
            fam, _with_dtype(_qk_case(temps=S.temperatures(0.05, 20), norm_range=(0.5, 5.0)))
        ),
    ]


def _smoke_qk() -> Example:
    return {
        "query": np.array([[1.0, 0.5], [-0.3, 2.0], [0.7, -0.1]]),
        "keys": np.array([[0.9, 0.4], [0.1, 1.0], [1.0, 0.2]]),
        "temperature": 0.5,
    }


# ----------------------------------------------------------------------------- supcon / sincere

#: label layouts whose batches have at least one anchor with a positive
_VALID_LAYOUTS = ("random", "instance_pairs", "with_singletons", "balanced")


def _has_valid_anchor(labels: np.ndarray) -> bool:
    _, counts = np.unique(labels, return_counts=True)
    return bool((counts >= 2).any())


@st.composite
def _emb_case(
    draw: Any,
    *,
    n: st.SearchStrategy[int] = _N_BATCH,
    layouts: tuple[str, ...] = _VALID_LAYOUTS,
    temps: st.SearchStrategy[float] | None = None,
    norm_range: tuple[float, float] = (0.1, 10.0),
    require_valid: bool = True,
    require_negative: bool = True,
) -> Example:
    emb, labels = draw(
        S.labelled_embeddings(
            n,
            st.integers(2, 5),
            st.integers(2, 4),
            layouts=layouts,
            norm_range=norm_range,
            cluster=draw(st.booleans()),
        )
    )
    if require_valid and not _has_valid_anchor(labels):
        labels = labels.copy()
        labels[0] = labels[1]  # give anchor 0 a positive
    if require_negative and labels.shape[0] >= 3 and (labels == labels[0]).all():
        labels = labels.copy()
        labels[-1] = labels[0] + 1  # single-class batches have their own property
    t = draw(temps if temps is not None else S.temperatures(2e-2, 20))
    return {"embeddings": emb, "labels": np.asarray(labels, dtype=np.int64), "temperature": t}


@st.composite
def _emb_scaled(draw: Any) -> Example:
    ex = draw(_emb_case())
    n = np.asarray(ex["embeddings"]).shape[0]
    f = 10 ** np.asarray(draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n)))
    return {**ex, "factor": f}


def _apply_emb_scale(ex: Example) -> Example:
    return {**ex, "embeddings": np.asarray(ex["embeddings"]) * np.asarray(ex["factor"])[:, None]}


@st.composite
def _emb_renamed(draw: Any) -> Example:
    ex = draw(_emb_case())
    uniq = np.unique(ex["labels"])
    new = draw(st.lists(st.integers(0, 10**6), min_size=len(uniq), max_size=len(uniq), unique=True))
    return {**ex, "label_map": np.asarray(new, dtype=np.int64)}


def _apply_rename(ex: Example) -> Example:
    lab = np.asarray(ex["labels"])
    uniq = np.unique(lab)
    m = dict(zip(uniq.tolist(), np.asarray(ex["label_map"]).tolist(), strict=True))
    return {**ex, "labels": np.asarray([m[v] for v in lab.tolist()], dtype=np.int64)}


@st.composite
def _emb_identical(draw: Any) -> Example:
    ex = draw(_emb_case())
    e = np.asarray(ex["embeddings"])
    radii = 10 ** np.asarray(
        draw(st.lists(st.floats(-1, 1), min_size=e.shape[0], max_size=e.shape[0]))
    )
    return {**ex, "embeddings": e[:1] / np.linalg.norm(e[0]) * radii[:, None]}


def _identical_value(variant: str) -> Callable[[Example], float]:
    """All embeddings parallel: every logit equals 1/tau, so the loss depends on counts only."""

    def f(ex: Example) -> float:
        lab = np.asarray(ex["labels"])
        n = lab.shape[0]
        vals = []
        for i in range(n):
            npos = int((lab == lab[i]).sum()) - 1
            if npos == 0:
                continue
            nneg = n - 1 - npos
            if variant in ("supcon_out", "supcon_in"):
                vals.append(math.log(n - 1))  # L_in: (1/|P|) * |P| * 1/(B-1) inside the log
            else:
                vals.append(math.log1p(nneg))
        return float(np.mean(vals))

    return f


def _instance_value(ex: Example) -> float:
    from softnce_theory.numerics._mp import workdps

    with workdps(R.ORACLE_DPS):
        return float(R.ntxent_instance(ex["embeddings"], ex["labels"], ex["temperature"]))


def _no_positive_check(fam: BuiltinContract) -> Callable[[Caller, Example], None]:
    def check(caller: Caller, ex: Example) -> None:
        v, g = caller.value_and_grad(ex)
        if v != 0.0 or not math.isfinite(v):
            raise Discrepancy(
                f"value {v!r}; with no positive pair in the batch the contract's mean over an "
                "empty set of anchors is defined as 0",
                kind="value",
                got=v,
                want=0.0,
            )
        gg = g["embeddings"]
        if not (np.isfinite(gg).all() and (gg == 0).all()):
            raise Discrepancy(
                f"gradient {np.array2string(gg, precision=3)}; expected exactly 0 (finite)",
                kind="gradient",
            )

    return check


def _build_embedding(fam: BuiltinContract) -> list[Property]:
    base = _emb_case()
    variant = fam.name
    return [
        prop_oracle(
            fam,
            base,
            "value_vs_oracle",
            "oracle",
            "float64 value vs the 50-digit oracle (raw embeddings, random class layouts incl. "
            "singletons, tau in [2e-2, 20])",
        ),
        prop_declared_domain(
            fam,
            sizes={"B": st.integers(2, 5)},
            valid=lambda ex: _has_valid_anchor(ex["labels"]) and _nonzero_rows("embeddings")(ex),
            why=f"rows of norm >= {_MIN_ROW_NORM:g}, at least one anchor with a positive (a "
            "batch without one is the no_positive_pairs policy)",
        ),
        prop_gradient(fam, base, "autograd w.r.t. the raw embeddings vs the closed form"),
        prop_invariance(
            fam,
            _emb_scaled(),
            _apply_emb_scale,
            "embedding_scale_invariance",
            "rescaling rows by positive factors in [1e-3, 1e3] leaves the loss unchanged",
        ),
        prop_invariance(
            fam,
            _permuted(base, "embeddings"),
            _apply_perm(("embeddings", "labels")),
            "batch_permutation_invariance",
            "permuting the batch (embeddings and labels together) leaves the loss unchanged",
        ),
        prop_invariance(
            fam,
            _emb_renamed(),
            _apply_rename,
            "label_renaming_invariance",
            "renaming the classes (any distinct non-negative ints) leaves the loss unchanged",
        ),
        prop_closed(
            fam,
            _emb_case(n=st.sampled_from((2, 4, 6, 8)), layouts=("instance_pairs",)),
            _instance_value,
            "instance_labels",
            "limit",
            "every class of size 2 (SimCLR instance labels): L_out = L_in = SINCERE = NT-Xent",
            "NT-Xent closed form",
        ),
        prop_closed(
            fam,
            _emb_identical(),
            _identical_value(variant),
            "identical_embeddings",
            "limit",
            {
                "supcon_out": "parallel embeddings: log(B - 1) per anchor",
                "supcon_in": "parallel embeddings: log(B - 1) per anchor",
                "sincere": "parallel embeddings: log(1 + |N(i)|) per anchor",
            }[variant],
            "closed form",
        ),
        prop_oracle_and_gradient(
            fam,
            _emb_case(layouts=("with_singletons",)),
            "singleton_anchors",
            "edge",
            "anchors without positives (singleton classes) are left out of the mean: finite, "
            "vs oracle",
            CORRECTNESS,
        ),
        prop_oracle_and_gradient(
            fam,
            _emb_case(n=st.integers(2, 8), layouts=("single_class",), require_negative=False),
            "single_class_batch",
            "edge",
            "a single class (no negatives): finite, value vs oracle"
            + (" (SINCERE: 0)" if variant == "sincere" else ""),
            CORRECTNESS,
        ),
        Property(
            "no_positive_pairs",
            "edge",
            "all labels distinct (no anchor has a positive): loss 0, gradient exactly 0",
            _emb_case(n=st.integers(1, 6), layouts=("all_singletons",), require_valid=False),
            _no_positive_check(fam),
            ROBUSTNESS,
        ),
        prop_oracle_and_gradient(
            fam,
            _emb_case(temps=st.one_of(S.temperatures(1e-4, 1e-2), S.temperatures(1e2, 1e4))),
            "extreme_temperature",
            "edge",
            "tau in [1e-4, 1e-2] or [1e2, 1e4]: finite, value vs oracle and gradient vs closed "
            "form",
            ROBUSTNESS,
        ),
        prop_low_precision(
            fam, _with_dtype(_emb_case(temps=S.temperatures(0.05, 20), norm_range=(0.5, 5.0)))
        ),
    ]


def _smoke_emb() -> Example:
    return {
        "embeddings": np.array([[1.0, 0.2], [0.8, 0.5], [-0.4, 1.0], [-0.6, 0.9], [0.1, -1.0]]),
        "labels": np.array([0, 0, 1, 1, 2]),
        "temperature": 0.5,
    }


# ----------------------------------------------------------------------------- registry


def _declared(domain: Domain, name: str) -> Array | Labels:
    """The declaration of the tensor argument ``name`` of a loss's domain."""
    return next(a for a in domain.arrays if a.name == name)


def _declared_array(domain: Domain, name: str) -> Array:
    a = _declared(domain, name)
    if not isinstance(a, Array):
        raise TypeError(f"{name} is declared as {type(a).__name__}, not Array")
    return a


# The contracts' signatures, from the losses' own declarations (softnce_theory.losses.domains):
# the same logits, targets, labels, noise distribution, embeddings and parameters.
_SOFT_CE = Domain(arrays=D.SOFT_TARGET_CROSS_ENTROPY.arrays)  # no temperature in the contract
_COLLISION_CE = Domain(arrays=D.COLLISION_CROSS_ENTROPY.arrays)
_LABEL_SMOOTHING = Domain(arrays=D.LABEL_SMOOTHING_CROSS_ENTROPY.arrays, params=(D.EPSILON,))
_STI = Domain(
    arrays=tuple(
        _declared(D.SOFT_TARGET_INFO_NCE, n) for n in ("logits", "targets", "noise_probs")
    ),
    params=(D.TEMPERATURE,),
)
#: in-batch InfoNCE: the contract names the positives ``keys`` (the loss: ``positive_key``)
_INFONCE = Domain(
    arrays=(
        _declared(D.INFO_NCE, "query"),
        replace(_declared_array(D.INFO_NCE, "positive_key"), name="keys"),
    ),
    params=(D.TEMPERATURE,),
)
#: SupCon / SINCERE on one view: (B, D) embeddings (the loss also accepts (B, V, D))
_EMBEDDINGS = Domain(
    arrays=(
        replace(_declared_array(D.SUPCON_LOSS, "embeddings"), dims=("B", "D"), optional=()),
        _declared(D.SUPCON_LOSS, "labels"),
    ),
    params=(D.TEMPERATURE,),
)

_EMB_SEMANTICS = {
    "supcon_out": "SupCon L_out (Khosla et al. 2020, eq. 2): per anchor, the mean over its "
    "positives of -log softmax over all other samples",
    "supcon_in": "SupCon L_in (Khosla et al. 2020, eq. 3): per anchor, -log of the mean over its "
    "positives of the softmax over all other samples",
    "sincere": "SINCERE (Feeney & Hughes): per positive pair, -log e^{s_ip} / (e^{s_ip} + "
    "sum over different-class samples); mean over the anchor's positives",
}

FAMILIES: dict[str, BuiltinContract] = {}


def _register(f: BuiltinContract) -> None:
    FAMILIES[f.name] = f


for _v in ("supcon_out", "supcon_in", "sincere"):
    _register(
        BuiltinContract(
            name=_v,
            contract="fn(embeddings: Tensor[B, D], labels: LongTensor[B], temperature: float) "
            "-> scalar Tensor",
            semantics=_EMB_SEMANTICS[_v]
            + "; embeddings raw (the loss L2-normalises), cosine logits s_ij = z_i.z_j/tau; "
            "mean over anchors with >= 1 positive (0 when there is none)",
            domain=_EMBEDDINGS,
            scale=_emb_scale,
            natural=_emb_natural,
            build=_build_embedding,
            smoke=_smoke_emb,
        )
    )

_register(
    BuiltinContract(
        name="infonce",
        contract="fn(query: Tensor[B, D], keys: Tensor[B, D], temperature: float) -> scalar Tensor",
        semantics="in-batch InfoNCE: row i's positive is key i, the other keys are its negatives; "
        "one-directional (query -> keys), cosine similarity / tau, mean over rows",
        domain=_INFONCE,
        scale=_emb_scale,
        natural=_qk_natural,
        build=_build_infonce,
        smoke=_smoke_qk,
    )
)

_register(
    BuiltinContract(
        name="soft_target_infonce",
        contract="fn(logits: Tensor[N, C], targets: Tensor[N, C], noise_probs: Tensor[C], "
        "temperature: float) -> scalar Tensor",
        semantics="soft-target InfoNCE (Hugger & Uhlmann 2024): S_ij = <alpha_j, f_i/t - log q>, "
        "in-batch candidates (row i's positive is its own target), mean over rows; log q is not "
        "divided by t; 0 log 0 = 0 for classes with q_c = 0 and no target mass",
        domain=_STI,
        scale=_logit_scale,
        natural=_logit_natural,
        build=_build_sti,
        smoke=_smoke_sti,
    )
)

_register(
    BuiltinContract(
        name="soft_ce",
        contract="fn(logits: Tensor[N, C], targets: Tensor[N, C]) -> scalar Tensor",
        semantics="soft-target cross-entropy -sum_c alpha_c log softmax(f)_c, mean over rows; "
        "0 log 0 = 0 (a -inf logit on a zero-target class is allowed)",
        domain=_SOFT_CE,
        scale=_logit_scale,
        natural=_logit_natural,
        build=_build_soft_ce,
        smoke=_smoke_logits,
    )
)

_register(
    BuiltinContract(
        name="collision_ce",
        contract="fn(logits: Tensor[N, C], targets: Tensor[N, C]) -> scalar Tensor",
        semantics="collision cross-entropy -log sum_c y_c softmax(f)_c (Zhang & Boykov), "
        "mean over rows",
        domain=_COLLISION_CE,
        scale=_logit_scale,
        natural=_logit_natural,
        build=_build_collision,
        smoke=_smoke_logits,
    )
)

_register(
    BuiltinContract(
        name="label_smoothing",
        contract="fn(logits: Tensor[N, C], labels: LongTensor[N], epsilon: float) -> scalar Tensor",
        semantics="label-smoothed cross-entropy in torch's convention: target "
        "(1 - eps) e_y + eps/C (eps/C also lands on the true class), mean over rows",
        domain=_LABEL_SMOOTHING,
        scale=_logit_scale,
        natural=_logit_natural,
        build=_build_label_smoothing,
        smoke=_smoke_ls,
    )
)


def implemented() -> tuple[str, ...]:
    """The contract names implemented here (the registry declares which families own them;
    ``tests/test_testing_kit.py`` checks that both sets agree)."""
    return tuple(FAMILIES)


__all__ = ["FAMILIES", "BuiltinContract", "domain_args", "implemented", "prop_declared_domain"]
