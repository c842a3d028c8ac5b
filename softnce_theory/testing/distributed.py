"""Distributed audit: run anyone's distributed loss on W gloo ranks and check DDP's convention.

**The contract** (:mod:`softnce_theory.losses.distributed` documents it and proves it): the
global batch is split into W shards in rank order; rank ``r`` calls ``fn`` on its shard inside
an initialised default process group (gloo, CPU) and gets a scalar back. Then

* **value**: the mean over ranks of the returned values equals the family's loss on the
  concatenated batch;
* **gradient**: every rank backpropagates its own value; the gradient of rank ``r``'s shard,
  divided by W (DDP's average over ranks), equals the global loss's gradient with respect to
  that shard. (Through a gather with gradient, rank ``r`` accumulates
  :math:`\\sum_s \\partial L_s/\\partial x_r = W\\,\\partial L/\\partial x_r`.)

The reference is the family's global closed form of :mod:`softnce_theory.testing.references`
(mpmath, independent of the torch losses). Computing the full global loss on every rank (with a
gather that keeps the gradient) satisfies the contract, only W times the work: no false alarm.

**Diagnoses.** When the contract fails, the evidence is compared with the classic bugs, each
predicted by a small float64 torch reference written here from the formulas (the per-anchor
losses of local anchors against a contrast set):

=================================== =======================================================
"scaled by world size"              gradients (and/or values) a factor W or 1/W off
                                    (pytorch-metric-learning #363/#380/#712/#732; lightly
                                    #1920/#1977: ``all_reduce`` has no backward)
"gathered without gradient"         each rank's gradient is only its own loss's gradient with
                                    the other shards detached (solo-learn #229, SLIP #31)
"positive index not offset by rank" the value is right on rank 0 and wrong on ranks > 0
                                    (solo-learn #206)
"negatives not gathered"            each rank's value is the loss of its shard alone
=================================== =======================================================

The launcher :func:`run_ranks` is also what the project's own distributed tests use.
"""

from __future__ import annotations

import datetime
import math
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def distributed_families() -> tuple[str, ...]:
    """The contracts with a distributed audit: ``registry().distributed()`` (the registry
    declares them; the cases and references below implement them, keyed by name)."""
    from softnce_theory.testing.contracts import distributed_names

    return distributed_names()


def implemented() -> tuple[str, ...]:
    """The distributed contracts implemented here (``tests/test_testing_kit.py`` checks that
    they are exactly the registry's)."""
    return tuple(_ARGS)


def __getattr__(name: str) -> Any:
    if name == "DISTRIBUTED_FAMILIES":  # derived from the registry when asked for
        return distributed_families()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: relative tolerances of the float64 comparisons (values and gradients, normwise)
RTOL = 1e-9
#: a diagnosis must explain the evidence this much better than the correct contract does
FIT_RTOL = 1e-6


# ----------------------------------------------------------------------------- launcher


def _rank_main(
    rank: int,
    fn: Callable[[int, int, Any], Any],
    world_size: int,
    arg: Any,
    tmp: str,
    timeout: float,
) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)  # W processes share the cores; 1 thread each
    dist.init_process_group(
        "gloo",
        init_method=f"file://{os.path.join(tmp, 'store')}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=timeout),
    )
    try:
        out = fn(rank, world_size, arg)
        torch.save(out, os.path.join(tmp, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def run_ranks(
    fn: Callable[[int, int, Any], Any],
    world_size: int,
    arg: Any = None,
    *,
    timeout: float = 120.0,
    start_method: str | None = None,
) -> list[Any]:
    """Run ``fn(rank, world_size, arg)`` on ``world_size`` processes, each inside an initialised
    default gloo group (a ``FileStore`` in a fresh temporary directory: no port is needed), and
    return their results in rank order (they travel by ``torch.save``).

    ``start_method``: ``"fork"`` where the platform has it (fast; ``fn`` may be any callable,
    a closure or a lambda), else ``"spawn"`` (``fn`` and ``arg`` must be picklable). A rank
    that raises makes this raise (the other ranks are stopped); collectives give up after
    ``timeout`` seconds.
    """
    import torch
    import torch.multiprocessing as mp

    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    method = start_method or (
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    with tempfile.TemporaryDirectory(prefix="softnce-dist-") as tmp:
        mp.start_processes(
            _rank_main,
            args=(fn, world_size, arg, tmp, timeout),
            nprocs=world_size,
            join=True,
            start_method=method,
        )
        return [
            torch.load(os.path.join(tmp, f"rank{r}.pt"), weights_only=False)
            for r in range(world_size)
        ]


# ----------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class DistCase:
    """One global batch, split into ``world`` equal shards in rank order."""

    name: str
    args: dict[str, np.ndarray | float]
    world: int

    @property
    def rows(self) -> int:
        first = next(v for v in self.args.values() if isinstance(v, np.ndarray))
        return int(first.shape[0]) // self.world

    def shard(self, key: str, rank: int) -> np.ndarray:
        v = self.args[key]
        assert isinstance(v, np.ndarray)
        m = self.rows
        return v[rank * m : (rank + 1) * m]


#: the arguments of each distributed contract (in call order) and which of them are sharded
#: (split by rank) and differentiated
_ARGS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "supcon_out": (
        ("embeddings", "labels", "temperature"),
        ("embeddings", "labels"),
        ("embeddings",),
    ),
    "supcon_in": (
        ("embeddings", "labels", "temperature"),
        ("embeddings", "labels"),
        ("embeddings",),
    ),
    "sincere": (("embeddings", "labels", "temperature"), ("embeddings", "labels"), ("embeddings",)),
    "infonce": (("query", "keys", "temperature"), ("query", "keys"), ("query", "keys")),
    "soft_target_infonce": (
        ("logits", "targets", "noise_probs", "temperature"),
        ("logits", "targets"),
        ("logits",),
    ),
}


#: the contrast-side input of each family (gathered across ranks by a correct implementation)
_CONTRAST = {
    "supcon_out": "embeddings",
    "supcon_in": "embeddings",
    "sincere": "embeddings",
    "infonce": "keys",
    "soft_target_infonce": "targets",
}


def _labelled_cases(world: int, rng: np.random.Generator) -> list[DistCase]:
    m, d = 4, 4
    n = m * world
    out = []
    # classes spread over the ranks, some singletons
    y = rng.integers(0, max(2, n // 3), n)
    y[-1] = n + 5
    out.append(("spread", y))
    # rank 1 holds no anchor with a positive (all its classes are singletons)
    y = rng.integers(0, 3, n)
    y[m : 2 * m] = n + 10 + np.arange(m)
    out.append(("rank1_without_positives", y))
    # uneven: the classes of rank 0 recur only on the last rank
    y = rng.integers(10, 13, n)
    y[:m] = [0, 1, 0, 2]
    y[-m:] = [1, 2, 0, 3]
    out.append(("uneven_classes", y))
    return [
        DistCase(
            name,
            {
                "embeddings": rng.standard_normal((n, d)),
                "labels": y.astype(np.int64),
                "temperature": t,
            },
            world,
        )
        for (name, y), t in zip(out, (0.5, 0.3, 0.7), strict=True)
    ]


def audit_cases(family: str, world: int, seed: int = 0) -> list[DistCase]:
    """The fixed global batches of the distributed audit (equal shards of 4 rows)."""
    rng = np.random.default_rng(seed + 1000 * world)
    if family in ("supcon_out", "supcon_in", "sincere"):
        return _labelled_cases(world, rng)
    n = 4 * world
    if family == "infonce":
        return [
            DistCase(
                f"random_t{t}",
                {
                    "query": rng.standard_normal((n, 4)),
                    "keys": rng.standard_normal((n, 4)),
                    "temperature": t,
                },
                world,
            )
            for t in (0.5, 0.2)
        ]
    if family == "soft_target_infonce":
        cases = []
        for name, q in (
            ("uniform_prior", np.full(4, 0.25)),
            ("prior", np.array([0.1, 0.2, 0.3, 0.4])),
        ):
            e = np.exp(2 * rng.standard_normal((n, 4)))
            cases.append(
                DistCase(
                    name,
                    {
                        "logits": 2 * rng.standard_normal((n, 4)),
                        "targets": e / e.sum(1, keepdims=True),
                        "noise_probs": q,
                        "temperature": 0.7,
                    },
                    world,
                )
            )
        return cases
    raise ValueError(f"family must be one of {distributed_families()}, got {family!r}")


# ----------------------------------------------------------------------------- ranks


def _audit_worker(rank: int, world: int, payload: dict[str, Any]) -> dict[str, Any]:
    import torch

    fn, family = payload["fn"], payload["family"]
    names, sharded, diff = _ARGS[family]
    out: dict[str, Any] = {}
    for case in payload["cases"]:
        call: list[Any] = []
        leaves = {}
        for key in names:
            v = case.shard(key, rank) if key in sharded else case.args[key]
            if isinstance(v, float):
                call.append(v)
                continue
            t = torch.tensor(v)
            if key in diff:
                t.requires_grad_(True)
                leaves[key] = t
            call.append(t)
        value = fn(*call)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise TypeError(
                f"the loss must return a scalar tensor, got {type(value).__name__} "
                f"{tuple(getattr(value, 'shape', ()))}"
            )
        value = value.reshape(())
        if value.requires_grad:
            value.backward()
        grads = {
            k: (t.grad.double().numpy().copy() if t.grad is not None else np.zeros(t.shape))
            for k, t in leaves.items()
        }
        out[case.name] = (float(value.detach()), grads)
    return out


# ----------------------------------------------------------------------------- torch reference


def _unit(x: Any) -> Any:
    return x / x.norm(dim=-1, keepdim=True)


def _lse(x: Any, mask: Any) -> Any:
    import torch

    return torch.logsumexp(torch.where(mask, x, torch.full_like(x, -math.inf)), dim=1)


def _rows(
    family: str,
    anchors: dict[str, Any],
    cols: dict[str, Any],
    self_col: Any,
    t: float,
    noise_probs: np.ndarray | None = None,
) -> tuple[Any, Any]:
    """Per-anchor losses (and which anchors count) of ``anchors`` against the contrast batch
    ``cols``; anchor ``i``'s own column is ``self_col[i]``. Float64 torch, from the formulas."""
    import torch

    if family in ("supcon_out", "supcon_in", "sincere"):
        s = _unit(anchors["embeddings"]) @ _unit(cols["embeddings"]).T / t
        ya, yc = anchors["labels"], cols["labels"]
        jj = torch.arange(s.shape[1])[None, :]
        own = jj == self_col[:, None]
        same = ya[:, None] == yc[None, :]
        pos, neg, others = same & ~own, ~same, ~own
        npos = pos.sum(1)
        valid = npos > 0
        cnt = npos.clamp(min=1).double()
        zero = torch.zeros_like(s)
        if family == "supcon_out":
            rows = _lse(s, others) - torch.where(pos, s, zero).sum(1) / cnt
        elif family == "supcon_in":
            rows = (
                _lse(s, others)
                - _lse(torch.where(valid[:, None], s, zero), pos | ~valid[:, None])
                + cnt.log()
            )
        else:
            ln = _lse(s, neg)[:, None].expand_as(s)
            rows = torch.where(pos, torch.logaddexp(s, ln) - s, zero).sum(1) / cnt
        return torch.where(valid, rows, torch.zeros_like(rows)), valid
    if family == "infonce":
        s = _unit(anchors["query"]) @ _unit(cols["keys"]).T / t
        rows = torch.logsumexp(s, 1) - s.gather(1, self_col[:, None]).squeeze(1)
        return rows, torch.ones_like(rows, dtype=torch.bool)
    assert noise_probs is not None
    q = torch.tensor(noise_probs)
    logq = torch.where(q > 0, q.log(), torch.zeros_like(q))
    g = anchors["logits"] / t - logq
    s = g @ cols["targets"].T
    rows = torch.logsumexp(s, 1) - s.gather(1, self_col[:, None]).squeeze(1)
    return rows, torch.ones_like(rows, dtype=torch.bool)


@dataclass
class _Predictions:
    """What each classic bug predicts for one case (float64, from :func:`_rows`)."""

    ref_value: float
    ref_grads: dict[str, np.ndarray]  # d L / d (global input)
    rank_values: list[float]  # correct per-rank decomposition (W/n) sum_{i in r} l_i
    local_values: list[float]  # the loss of each shard alone
    detached: list[list[dict[str, np.ndarray]]]  # per variant, per rank: raw gradients


def _grad_np(x: Any) -> np.ndarray:
    return x.grad.numpy().copy() if x.grad is not None else np.zeros(tuple(x.shape))


def _predict(family: str, case: DistCase) -> _Predictions:
    import torch

    _names, sharded, diff = _ARGS[family]
    w, m = case.world, case.rows
    n = m * w
    t = float(case.args["temperature"])
    q = case.args.get("noise_probs")
    qn = q if isinstance(q, np.ndarray) else None
    full = {k: torch.tensor(case.args[k]) for k in sharded}
    cols_key = _CONTRAST[family]
    anchor_keys = [
        k for k in sharded if k != cols_key or family in ("supcon_out", "supcon_in", "sincere")
    ]

    def rows_for(rank: int, cols: dict[str, Any], anchors: dict[str, Any]) -> tuple[Any, Any]:
        return _rows(family, anchors, cols, torch.arange(m) + rank * m, t, qn)

    # global value and gradient (consistency with the closed form is checked by the caller)
    leaves = {k: full[k].clone().requires_grad_(k in diff) for k in sharded}
    rows, valid = _rows(family, leaves, leaves, torch.arange(n), t, qn)
    count = max(int(valid.sum()), 1)
    loss = rows.sum() / count
    loss.backward()
    ref_grads = {k: _grad_np(leaves[k]) for k in diff}
    rank_values, local_values = [], []
    variants: list[list[dict[str, np.ndarray]]] = [[], []]
    for r in range(w):
        sl = slice(r * m, (r + 1) * m)
        anchors = {k: full[k][sl] for k in sharded}
        rv, _ = rows_for(r, full, anchors)
        rank_values.append(float(rv.sum()) * w / count)
        lv, lvalid = _rows(family, anchors, anchors, torch.arange(m), t, qn)
        local_values.append(float(lv.sum()) / max(int(lvalid.sum()), 1))
        # gradients without a gather gradient: (a) the local slot of the gathered batch keeps
        # it (open_clip's gather_with_grad=False), (b) nothing gathered does. (The global loss
        # on every rank with (a) gives exactly dL/dx_r per rank: the "1/W" scaling diagnosis.)
        for vi in range(2):
            mine = {k: full[k][sl].clone().requires_grad_(k in diff) for k in sharded}
            cols = {}
            for k in sharded:
                parts = [full[k][s * m : (s + 1) * m] for s in range(w)]
                if vi != 1:
                    parts[r] = mine[k]
                cols[k] = torch.cat(parts)
            anc = {k: (mine[k] if k in anchor_keys else cols[k][sl]) for k in sharded}
            rr, _ = rows_for(r, cols, anc)
            lo = rr.sum() * w / count
            grads = torch.autograd.grad(lo, [mine[k] for k in diff], allow_unused=True)
            variants[vi].append(
                {
                    k: (g.numpy().copy() if g is not None else np.zeros(mine[k].shape))
                    for k, g in zip(diff, grads, strict=True)
                }
            )
    return _Predictions(float(loss.detach()), ref_grads, rank_values, local_values, variants)


# ----------------------------------------------------------------------------- verdicts


SCALED = "scaled by world size"
NO_GRAD = "gathered without gradient"
NO_OFFSET = "positive index not offset by rank"
LOCAL = "negatives not gathered"


def _close(a: float, b: float, rtol: float) -> bool:
    return abs(a - b) <= rtol * max(1.0, abs(b))


def _stack(grads: list[dict[str, np.ndarray]], keys: Sequence[str]) -> np.ndarray:
    return np.concatenate([np.concatenate([g[k].ravel() for k in keys]) for g in grads])


def _grads_close(got: np.ndarray, want: np.ndarray, rtol: float) -> tuple[bool, float]:
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    err = float(np.abs(got - want).max(initial=0.0)) / scale
    return err <= rtol, err


@dataclass
class CaseResult:
    """The verdict on one global batch."""

    name: str
    passed: bool
    value: float  # mean over ranks of the returned values
    want: float  # the global loss (closed form)
    value_error: float
    grad_error: float  # normwise, of the DDP-averaged gradients
    diagnoses: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        from softnce_theory.testing.core import to_jsonable

        out: dict[str, Any] = to_jsonable(dict(self.__dict__))
        return out


def _judge(
    family: str, case: DistCase, per_rank: list[tuple[float, dict[str, np.ndarray]]]
) -> CaseResult:
    from softnce_theory.testing import references as R
    from softnce_theory.testing.core import KitError

    names, _sharded, diff = _ARGS[family]
    w = case.world
    want, closed = R.closed_form(family, *(case.args[k] for k in names))
    pred = _predict(family, case)
    ok_ref, err_ref = _grads_close(
        np.concatenate([pred.ref_grads[k].ravel() for k in diff]),
        np.concatenate([np.asarray(closed[k]).ravel() for k in diff]),
        RTOL,
    )
    if not (_close(pred.ref_value, want, RTOL) and ok_ref):  # the kit's own two references
        raise KitError(f"distributed audit references disagree on {case.name}: {err_ref:.2e}")
    values = [v for v, _ in per_rank]
    mean = float(np.mean(values))
    v_err = abs(mean - want) / max(1.0, abs(want))
    got = _stack([g for _, g in per_rank], diff) / w
    ref = _stack(
        [{k: closed[k][r * case.rows : (r + 1) * case.rows] for k in diff} for r in range(w)], diff
    )
    g_ok, g_err = _grads_close(got, ref, RTOL)
    res = CaseResult(case.name, v_err <= RTOL and g_ok, mean, want, v_err, g_err)
    if res.passed:
        return res
    fit = FIT_RTOL
    value_ok = v_err <= RTOL
    # value evidence
    if not value_ok and all(
        _close(v, lv, fit) for v, lv in zip(values, pred.local_values, strict=True)
    ):
        res.diagnoses.append(LOCAL)
        res.evidence.append("each rank's value is the loss of its shard alone")
    right = [
        _close(v, pred.rank_values[r], fit) or _close(v, want, fit) for r, v in enumerate(values)
    ]
    if not value_ok and LOCAL not in res.diagnoses and right[0] and not any(right[1:]):
        res.diagnoses.append(NO_OFFSET)
        res.evidence.append("the value is right on rank 0 and wrong on every rank > 0")
    if not value_ok and want != 0.0:
        ratio = mean / want
        for k, label in ((w, "W"), (1.0 / w, "1/W")):
            if _close(ratio, k, fit):
                res.diagnoses.append(SCALED)
                res.evidence.append(f"value = {label} x the global loss")
    # gradient evidence
    if not g_ok:
        den = float(ref @ ref)
        if den > 0:
            rho = float(got @ ref) / den
            resid = float(np.abs(got - rho * ref).max()) / max(1e-300, float(np.abs(ref).max()))
            for k, label in ((w, "W"), (1.0 / w, "1/W")):
                if resid <= fit and _close(rho, k, fit) and SCALED not in res.diagnoses:
                    res.diagnoses.append(SCALED)
                    res.evidence.append(f"gradient = {label} x the global gradient")
        raw = [g for _, g in per_rank]
        for vi, what in enumerate(
            (
                "the local slot of the gathered batch keeps its gradient",
                "nothing gathered carries a gradient",
            )
        ):
            pv = pred.detached[vi]
            if _grads_close(_stack(raw, diff), _stack(pv, diff), fit)[0]:
                res.diagnoses.append(NO_GRAD)
                res.evidence.append(
                    f"each rank's gradient is its own loss's, cross-rank terms missing ({what})"
                )
                break
    return res


# ----------------------------------------------------------------------------- report


@dataclass
class DistributedReport:
    """Result of :func:`check_distributed`."""

    family: str
    target: str
    world_size: int
    results: list[CaseResult] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and all(r.passed for r in self.results)

    @property
    def diagnoses(self) -> list[str]:
        seen: list[str] = []
        for r in self.results:
            for d in r.diagnoses:
                if d not in seen:
                    seen.append(d)
        return seen

    def table(self) -> str:
        n_pass = sum(r.passed for r in self.results)
        lines = [
            f"distributed audit {self.target} as {self.family} on W = {self.world_size} gloo "
            f"ranks: {n_pass}/{len(self.results)} cases pass in {self.seconds:.1f} s",
            "contract: mean over ranks of the values = the global loss; rank r's gradient / W "
            "= the global gradient of its shard (DDP's average)",
        ]
        if self.error:
            lines.append(f"ERROR: {self.error}")
        w = max([len(r.name) for r in self.results] + [4])
        lines.append(f"{'case':<{w}}  result  {'value err':>9}  {'grad err':>9}  diagnosis")
        lines.append("-" * (w + 50))
        for r in self.results:
            diag = "; ".join(r.diagnoses) or ("" if r.passed else "no known bug pattern")
            lines.append(
                f"{r.name:<{w}}  {'PASS' if r.passed else 'FAIL':<6}  {r.value_error:>9.1e}  "
                f"{r.grad_error:>9.1e}  {diag}"
            )
        for r in self.results:
            if r.evidence:
                lines.append(f"  {r.name}: " + "; ".join(r.evidence))
        if not self.passed and self.diagnoses:
            lines.append("diagnosis: " + "; ".join(self.diagnoses))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_json(self) -> dict[str, Any]:
        from softnce_theory.testing.core import SCHEMA

        return {
            "schema": SCHEMA,
            "mode": "distributed",
            "family": self.family,
            "target": self.target,
            "world_size": self.world_size,
            "passed": self.passed,
            "diagnoses": self.diagnoses,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "results": [r.to_json() for r in self.results],
        }


def check_distributed(
    fn: Callable[..., Any],
    family: str,
    world_size: int,
    *,
    seed: int = 0,
    target: str | None = None,
    timeout: float = 120.0,
    start_method: str | None = None,
) -> DistributedReport:
    """Audit a distributed loss on ``world_size`` gloo ranks against DDP's convention.

    ``fn`` follows the family's single-process contract (``softnce audit --list``), e.g.
    ``fn(embeddings, labels, temperature)``, but receives its rank's shard and may use
    ``torch.distributed`` (the default group is initialised). Inputs are float64. See the
    module docstring for the contract and the diagnoses.
    """
    import time

    from softnce_theory.testing.core import target_name

    if family not in distributed_families():
        raise ValueError(
            f"family must be one of {distributed_families()} for --world-size, got {family!r}"
        )
    if family not in _ARGS:
        raise ValueError(
            f"family {family!r} is declared distributed but softnce_theory.testing.distributed "
            "has no cases for it"
        )
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 2:
        raise ValueError(f"world_size must be an integer >= 2, got {world_size!r}")
    report = DistributedReport(family, target or target_name(fn), world_size)
    cases = audit_cases(family, world_size, seed)
    start = time.perf_counter()
    try:
        per_rank = run_ranks(
            _audit_worker,
            world_size,
            {"fn": fn, "family": family, "cases": cases},
            timeout=timeout,
            start_method=start_method,
        )
    except Exception as exc:  # the user's function raised on some rank
        report.error = (
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        )
        report.seconds = time.perf_counter() - start
        return report
    for case in cases:
        report.results.append(
            _judge(family, case, [per_rank[r][case.name] for r in range(world_size)])
        )
    report.seconds = time.perf_counter() - start
    return report


def audit_command(
    obj: Any, family: str, world_size: int, seed: int, target: str, as_json: bool
) -> int:
    """``softnce audit TARGET --family F --world-size W``: print the report, exit 1 on failure."""
    import json
    import sys

    if not callable(obj):
        raise ValueError(f"{target} is not callable")
    report = check_distributed(obj, family, world_size, seed=seed, target=target)
    if as_json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(report.table())
    return 0 if report.passed else 1
