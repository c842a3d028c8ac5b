r"""The Monte Carlo engine: chunked, reproducible, resumable, distributable bias estimation.

:func:`run_scenario` estimates, for each ``K`` of a grid, the expectation of a scenario's
per-trial outputs (typically :math:`L_K-L_\infty` and :math:`\nabla L_K-\nabla L_\infty`), with
standard errors, 95% confidence intervals, control-variate variance reduction, and the theory's
predictions next to them (first and second order, with z-scores).

How a K is run
--------------
* **Chunks.** A chunk is ``T = max(2, chunk // trial_cost(K))`` trials, simulated in one vectorised
  torch call (trials x K tensors), so memory is bounded by ``chunk`` elements per tensor.
  ``T >= 2`` keeps every per-trial reduction a multi-row reduction, whose result does not depend
  on the number of CPU threads (a single-row reduction is split across threads).
* **Seeds.** Chunk ``i`` uses a generator seeded by ``hash(seed, scenario, K, i)``
  (:func:`~numerics.montecarlo._sampling.chunk_seed`).
* **Statistics.** A chunk's per-trial outputs are moved to the host and reduced in float64 with
  NumPy (two-pass moments); chunk moments are folded into the running total **in chunk-index
  order** with Chan's merge (:mod:`numerics.montecarlo._stats`). The result is therefore a
  function of the set of chunks ``0..n-1`` only: identical bits whatever the chunk order,
  interruption points or number of workers (for a fixed ``chunk`` and device type).
* **Rounds and stopping.** Chunks are processed in rounds; after each round the stopping rule is
  checked (``target_ci``: 95% half-width of the first output <= target; ``target_rel``:
  half-width <= target x |estimate|; ``max_samples`` caps the trials). Round sizes are a
  deterministic function of the merged statistics (first round: ``min_samples`` trials; then at
  most doubling, at most :data:`ROUND_MAX` chunks, sized from the current CI when a target is
  set), so the stopping point is the same in every execution.
* **Checkpoints.** After every round the state is written atomically (JSON, see
  :mod:`numerics.montecarlo.checkpoint`). A killed run resumed from it performs the same rounds
  and returns the same numbers as an uninterrupted run.
* **Distributed.** Under ``torchrun`` (``WORLD_SIZE > 1``) each rank simulates the chunks
  ``i ≡ rank (mod world)`` of a round; the packed chunk moments are all-gathered (NCCL on CUDA,
  gloo on CPU) and every rank merges them in chunk-index order, so all ranks hold the same
  statistics, equal to a single process's.

Results are plain dataclasses (:class:`MCRun`, :class:`KResult`, :class:`OutputEstimate`) with
``to_json()`` for plotting and reports.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from softnce_theory.numerics.montecarlo._base import SCENARIOS, ScenarioConfig
from softnce_theory.numerics.montecarlo._sampling import (
    chunk_seed,
    generator,
    resolve_device,
    tune_glibc_malloc,
)
from softnce_theory.numerics.montecarlo._stats import Z95, Estimates, Moments, finite_or_none
from softnce_theory.numerics.montecarlo.checkpoint import (
    CheckpointError,
    check_writable,
    clean_stale_temps,
    load_checkpoint,
    save_checkpoint,
)

#: bump when random streams, chunking or the round schedule change (old checkpoints are refused)
ENGINE_VERSION = 1
#: largest number of chunks in one round (one checkpoint per round)
ROUND_MAX = 64
DEFAULT_CHUNK_CPU = 1 << 18
DEFAULT_CHUNK_CUDA = 1 << 24
#: largest K accepted: below 2**53, so K and every count are exact float64 integers
MAX_K = 10**15
#: largest ``chunk`` accepted (elements per tensor; 16 GiB of float64)
MAX_CHUNK = 1 << 31
#: without an explicit ``chunk``, one chunk (>= 2 trials) may hold up to this many elements
#: (1 GiB of float64 per tensor), so a large K still runs with the default; an explicit
#: ``chunk`` is a hard bound
AUTO_CHUNK_LIMIT = 1 << 27


@dataclass
class OutputEstimate:
    """One measured output at one K, with the theory's prediction next to it."""

    name: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    plain_estimate: float
    plain_se: float
    variance_reduction: float | None
    pred_first: float | None
    pred_second: float | None
    z_first: float | None
    z_second: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "estimate": finite_or_none(self.estimate),
            "se": finite_or_none(self.se),
            "ci": [finite_or_none(self.ci_low), finite_or_none(self.ci_high)],
            "plain_estimate": finite_or_none(self.plain_estimate),
            "plain_se": finite_or_none(self.plain_se),
            "variance_reduction": None
            if self.variance_reduction is None
            else finite_or_none(self.variance_reduction),
            "pred_first": self.pred_first,
            "pred_second": self.pred_second,
            "z_first": None if self.z_first is None else finite_or_none(self.z_first),
            "z_second": None if self.z_second is None else finite_or_none(self.z_second),
        }


@dataclass
class KResult:
    """All outputs at one K, with the sample count and why sampling stopped."""

    k: int
    n: int
    chunks: int
    trials_per_chunk: int
    stop_reason: str
    outputs: list[OutputEstimate]
    extras: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def negatives(self) -> int:
        return self.n * self.k

    def output(self, name: str) -> OutputEstimate:
        for o in self.outputs:
            if o.name == name:
                return o
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "n": self.n,
            "negatives": self.negatives,
            "chunks": self.chunks,
            "trials_per_chunk": self.trials_per_chunk,
            "stop_reason": self.stop_reason,
            "outputs": [o.to_json() for o in self.outputs],
            "extras": {k: finite_or_none(v) for k, v in self.extras.items()},
        }


@dataclass
class MCRun:
    """A whole run. ``to_json()['results']`` depends only on the identity (not on timing,
    the number of workers, or interruptions); ``timing`` holds the wall-clock figures."""

    scenario: str
    config: dict[str, Any]
    quantity: str
    k_meaning: str
    prediction_source: str
    seed: int
    chunk: int
    device: str
    cv: bool
    target_ci: float | None
    target_rel: float | None
    max_samples: int
    constants: dict[str, Any]
    results: list[KResult]
    timing: dict[str, Any] = field(default_factory=dict)

    def result(self, k: int) -> KResult:
        for r in self.results:
            if r.k == k:
                return r
        raise KeyError(k)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "config": self.config,
            "quantity": self.quantity,
            "k_meaning": self.k_meaning,
            "prediction_source": self.prediction_source,
            "seed": self.seed,
            "chunk": self.chunk,
            "device": self.device,
            "cv": self.cv,
            "target_ci": self.target_ci,
            "target_rel": self.target_rel,
            "max_samples": self.max_samples,
            "engine_version": ENGINE_VERSION,
            "constants": self.constants,
            "results": [r.to_json() for r in self.results],
            "timing": self.timing,
        }


@dataclass
class ProgressEvent:
    """Reported after every round (and when a K starts/finishes)."""

    k: int
    k_index: int
    n_ks: int
    trials: int
    max_trials: int
    negatives: int
    seconds: float
    estimate: float
    half_width: float
    finished: bool
    stop_reason: str = ""


ProgressFn = Callable[[ProgressEvent], None]


# ------------------------------------------------------------------------------------------------
# distributed helpers
# ------------------------------------------------------------------------------------------------
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    device: torch.device | None = None  # collective tensors live here
    owns_group: bool = False

    def all_gather(self, local: np.ndarray) -> list[np.ndarray]:
        """Gather an equally shaped float64 array from every rank (rank order)."""
        if self.world == 1:
            return [local]
        import torch.distributed as dist

        t = torch.from_numpy(np.ascontiguousarray(local)).to(self.device)
        out = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(out, t)
        return [o.cpu().numpy() for o in out]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _setup_distributed(
    device: torch.device, distributed: bool | None
) -> tuple[_Dist, torch.device]:
    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    if distributed is None:
        distributed = world_env > 1
    if not distributed:
        return _Dist(), device
    import torch.distributed as dist

    owns = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        owns = True
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if dist.get_backend() == "nccl":  # NCCL collectives need CUDA tensors
        comm_dev = (
            device if device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
        )
    else:
        comm_dev = torch.device("cpu")
    return _Dist(dist.get_rank(), dist.get_world_size(), comm_dev, owns), device


# ------------------------------------------------------------------------------------------------
# the run
# ------------------------------------------------------------------------------------------------
def make_config(scenario: str | ScenarioConfig, **params: Any) -> ScenarioConfig:
    """A scenario config from its name and parameter overrides (or pass a config through)."""
    if isinstance(scenario, ScenarioConfig):
        if params:
            raise ValueError("give parameters either in the config object or as keywords, not both")
        scenario.validate()
        return scenario
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {sorted(SCENARIOS)}")
    return SCENARIOS[scenario].from_json(params)


def trials_per_chunk(config: ScenarioConfig, k: int, chunk: int, max_samples: int) -> int:
    """Trials in one chunk: ``max(2, chunk // trial_cost(k))``, capped by ``max_samples``."""
    t = max(2, chunk // max(1, config.trial_cost(k)))
    return max(2, min(t, max_samples))


def run_scenario(
    config: ScenarioConfig,
    ks: Sequence[int] | None = None,
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    chunk: int | None = None,
    target_ci: float | None = None,
    target_rel: float | None = None,
    max_samples: int = 100_000,
    min_samples: int = 256,
    cv: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    resume: bool = False,
    progress: ProgressFn | None = None,
    distributed: bool | None = None,
    tune_malloc: bool = False,
) -> MCRun:
    r"""Estimate the scenario's outputs at every ``K`` in ``ks``.

    Parameters
    ----------
    config : a scenario config (see :data:`numerics.montecarlo.SCENARIOS`).
    ks : K grid (default: the scenario's ``default_ks``).
    seed : global seed; with ``chunk`` and the device type it fixes every number.
    device : ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``.
    chunk : elements per chunk (memory bound); default 2**18 on CPU (cache-sized temporaries),
        2**24 on CUDA. A chunk holds at least two trials: a K whose two trials need more than
        ``chunk`` elements (:meth:`ScenarioConfig.trial_cost`) is refused up front with a
        ``ValueError``; without ``chunk`` the limit is :data:`AUTO_CHUNK_LIMIT`. ``K`` is at
        most :data:`MAX_K`, ``chunk`` at most :data:`MAX_CHUNK`.
    target_ci, target_rel : stop when the 95% half-width of the first output is below
        ``target_ci`` and/or ``target_rel`` x |estimate| (all given targets must hold).
    max_samples : cap on the number of trials per K (rounded down to whole chunks, >= 1 chunk).
    min_samples : trials in the first round (before any stopping check).
    cv : report control-variate estimates (the plain estimate is always reported too).
    checkpoint : JSON checkpoint path, rewritten atomically after every round.
    resume : continue from ``checkpoint`` if it exists (a missing file starts afresh). Without
        ``resume`` an existing checkpoint file is an error (it is never overwritten silently).
    progress : callback receiving :class:`ProgressEvent` after every round.
    distributed : force/disable torch.distributed (default: on when ``WORLD_SIZE > 1``).
    tune_malloc : on CPU, let glibc keep freed temporaries instead of unmapping them
        (:func:`~numerics.montecarlo._sampling.tune_glibc_malloc`; process-wide, so opt-in;
        the CLI turns it on). Changes speed only, never the numbers.
    """
    config.validate()
    ks = list(config.default_ks if ks is None else ks)
    if not ks:
        raise ValueError("ks must not be empty")
    for k in ks:
        if (
            isinstance(k, bool)
            or not isinstance(k, (int, float, np.integer, np.floating))
            or not math.isfinite(k)
            or int(k) != k
            or not config.min_k() <= k <= MAX_K
        ):
            raise ValueError(
                f"K must be an integer in [{config.min_k()}, {MAX_K:.0e}] (--k), got {k!r}"
            )
    if len(set(ks)) != len(ks):
        raise ValueError(f"ks must be distinct, got {ks}")
    ks = [int(k) for k in ks]
    if max_samples < 2:
        raise ValueError(f"max_samples must be >= 2, got {max_samples}")
    if min_samples < 2:
        raise ValueError(f"min_samples must be >= 2, got {min_samples}")
    for name, val in (("target_ci", target_ci), ("target_rel", target_rel)):
        if val is not None and not (val > 0 and math.isfinite(val)):
            raise ValueError(f"{name} must be a positive finite number, got {val!r}")
    dev = resolve_device(device)
    if tune_malloc and dev.type == "cpu":
        tune_glibc_malloc()
    chunk_given = chunk is not None
    if chunk is None:
        chunk = DEFAULT_CHUNK_CUDA if dev.type == "cuda" else DEFAULT_CHUNK_CPU
    if isinstance(chunk, bool) or int(chunk) != chunk or not 1 <= chunk <= MAX_CHUNK:
        raise ValueError(f"chunk must be an integer in [1, {MAX_CHUNK}] (--chunk), got {chunk}")
    check_memory_bound(config, ks, int(chunk), explicit=chunk_given)

    dist_ctx, dev = _setup_distributed(dev, distributed)
    try:
        return _run(
            config, ks, seed, dev, int(chunk), target_ci, target_rel, int(max_samples),
            int(min_samples), cv, checkpoint, resume, progress, dist_ctx,
        )  # fmt: skip
    finally:
        dist_ctx.close()


def check_memory_bound(
    config: ScenarioConfig, ks: Sequence[int], chunk: int, *, explicit: bool
) -> None:
    """Refuse, before any work, a K whose chunk (at least two trials) cannot stay within the
    memory bound: ``chunk`` elements if given explicitly, else :data:`AUTO_CHUNK_LIMIT`."""
    limit = chunk if explicit else max(chunk, AUTO_CHUNK_LIMIT)
    for k in ks:
        need = 2 * config.trial_cost(int(k))
        if need > limit:
            bound = f"chunk = {chunk} (--chunk)" if explicit else f"the default limit {limit}"
            hint = (
                f"raise --chunk to >= {need} if the memory is there"
                if need <= MAX_CHUNK
                else "no --chunk can hold it"
            )
            raise ValueError(
                f"--k {k}: one chunk of {config.name} needs >= {need} float64 elements per "
                f"tensor (two trials), more than {bound}; {hint}, use a smaller K, or a "
                "sampler that does not materialise the K draws (-p sampler=counts, where the "
                "scenario has one)"
            )


def _identity(
    config: ScenarioConfig, ks: list[int], seed: int, chunk: int, dev: torch.device, cv: bool,
    min_samples: int,
) -> dict[str, Any]:  # fmt: skip
    return {
        "engine_version": ENGINE_VERSION,
        "scenario": config.name,
        "config": config.to_json(),
        "seed": int(seed),
        "chunk": int(chunk),
        "ks": ks,
        "device_type": dev.type,
        "cv": bool(cv),
        "min_samples": int(min_samples),
        "torch": ".".join(torch.__version__.split("+")[0].split(".")[:2]),
    }


def _run(
    config: ScenarioConfig,
    ks: list[int],
    seed: int,
    dev: torch.device,
    chunk: int,
    target_ci: float | None,
    target_rel: float | None,
    max_samples: int,
    min_samples: int,
    cv: bool,
    checkpoint: str | os.PathLike[str] | None,
    resume: bool,
    progress: ProgressFn | None,
    dist_ctx: _Dist,
) -> MCRun:
    identity = _identity(config, ks, seed, chunk, dev, cv, min_samples)
    settings = {"target_ci": target_ci, "target_rel": target_rel, "max_samples": max_samples}
    state: dict[str, Any] = {"per_k": {}}
    if checkpoint is not None:
        path = Path(checkpoint)
        if path.exists() and not resume:
            raise CheckpointError(
                f"checkpoint {path} exists; pass resume=True (--resume) to continue it, "
                "or remove it to start afresh"
            )
        if dist_ctx.rank == 0:
            clean_stale_temps(path)  # left by a writer killed mid-save
        check_writable(path)  # before the run, not after its first round
        if path.exists():
            state = load_checkpoint(path, identity)
            _check_state(state, ks, config, path)
        elif resume and dist_ctx.rank == 0:
            print(f"softnce mc: no checkpoint at {path}; starting afresh", file=sys.stderr)

    d, m = len(config.output_names()), config.n_controls()
    results: list[KResult] = []
    t_run = time.perf_counter()
    for ki, k in enumerate(ks):
        t_per = trials_per_chunk(config, k, chunk, max_samples)
        max_chunks = max(1, max_samples // t_per)
        min_chunks = min(max_chunks, max(1, math.ceil(min_samples / t_per)))
        entry = state["per_k"].get(str(k))
        if entry is not None:  # validated by _check_state
            mom = Moments.from_json(entry["moments"])
            done = int(entry["chunks_done"])
            seconds = float(entry.get("seconds", 0.0))
            if int(entry["trials_per_chunk"]) != t_per and done > 0:
                raise CheckpointError(
                    f"checkpoint {checkpoint}: K={k} used {entry['trials_per_chunk']} trials per "
                    f"chunk, this run gives {t_per} (max_samples changed below a chunk?); "
                    "refusing it"
                )
        else:
            mom, done, seconds = Moments.empty(d, m), 0, 0.0
        prep = None
        stop_reason = ""
        while True:
            est = mom.estimates(cv) if mom.n > 1 else None
            if done >= max_chunks:
                stop_reason = (
                    "target"
                    if est is not None and _target_met(est, target_ci, target_rel)
                    else "max_samples"
                )
                break
            if done >= min_chunks and est is not None and _targets_given(target_ci, target_rel):
                if _target_met(est, target_ci, target_rel):
                    stop_reason = "target"
                    break
            n_next = _next_round(done, min_chunks, max_chunks, t_per, est, target_ci, target_rel)
            if prep is None:
                prep = config.prepare(k, dev)
            t0 = time.perf_counter()
            mom = _process_round(
                config, prep, k, seed, t_per, done, done + n_next, mom, dev, dist_ctx
            )
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds += time.perf_counter() - t0
            done += n_next
            state["per_k"][str(k)] = {
                "chunks_done": done,
                "trials_per_chunk": t_per,
                "seconds": seconds,
                "moments": mom.to_json(),
            }
            if checkpoint is not None and dist_ctx.rank == 0:
                save_checkpoint(checkpoint, identity, settings, state)
            if progress is not None and dist_ctx.rank == 0:
                e = mom.estimates(cv)
                progress(
                    ProgressEvent(
                        k, ki, len(ks), mom.n, max_chunks * t_per, mom.n * k, seconds,
                        float(e.value[0]), float(e.half_width()[0]), False,
                    )
                )  # fmt: skip
        res = _k_result(config, k, mom, done, t_per, stop_reason, cv, seconds)
        results.append(res)
        if progress is not None and dist_ctx.rank == 0:
            o = res.outputs[0]
            progress(
                ProgressEvent(
                    k, ki, len(ks), res.n, max_chunks * t_per, res.negatives, seconds,
                    o.estimate, o.ci_high - o.estimate, True, stop_reason,
                )
            )  # fmt: skip
    dist_ctx.barrier()
    wall = time.perf_counter() - t_run
    total_neg = sum(r.negatives for r in results)
    compute = sum(r.seconds for r in results)
    timing = {
        "wall_seconds": wall,
        "compute_seconds": compute,
        "negatives": total_neg,
        "negatives_per_second": total_neg / compute if compute > 0 else None,
        "world_size": dist_ctx.world,
        "per_k_seconds": {str(r.k): r.seconds for r in results},
        "torch_threads": torch.get_num_threads(),
    }
    return MCRun(
        scenario=config.name,
        config=config.to_json(),
        quantity=config.quantity,
        k_meaning=config.k_meaning,
        prediction_source=config.prediction_source,
        seed=seed,
        chunk=chunk,
        device=dev.type,
        cv=cv,
        target_ci=target_ci,
        target_rel=target_rel,
        max_samples=max_samples,
        constants=config.constants(),
        results=results,
        timing=timing,
    )


def _check_state(
    state: dict[str, Any],
    ks: list[int],
    config: ScenarioConfig,
    path: Path,
) -> None:
    """Validate every field of a loaded state (types, ranges, consistency); a bad one raises
    :class:`CheckpointError` naming the checkpoint and the field."""
    per_k = state.get("per_k")
    if not isinstance(per_k, dict) or not set(per_k) <= {str(k) for k in ks}:
        raise CheckpointError(f"checkpoint {path}: state does not match the K grid; refusing it")
    d, m = len(config.output_names()), config.n_controls()

    def bad(key: str, what: str) -> CheckpointError:
        return CheckpointError(
            f"checkpoint {path}: state for K={key} is corrupt ({what}); refusing it"
        )

    def count(entry: dict[str, Any], key: str, name: str, low: int) -> int:
        v = entry.get(name)
        if isinstance(v, bool) or not isinstance(v, int) or v < low:
            raise bad(key, f"{name} must be an integer >= {low}, got {_short(v)}")
        return v

    for key, entry in per_k.items():
        if not isinstance(entry, dict):
            raise bad(key, f"entry must be an object, got {type(entry).__name__}")
        done = count(entry, key, "chunks_done", 0)
        tpc = count(entry, key, "trials_per_chunk", 2)
        secs = entry.get("seconds", 0.0)
        if isinstance(secs, bool) or not isinstance(secs, (int, float)) or not 0 <= secs < 1e12:
            raise bad(key, f"seconds must be a finite number >= 0, got {_short(secs)}")
        try:
            mom = Moments.from_json(entry["moments"])
        except Exception as exc:  # any malformed field is a corrupt checkpoint
            raise bad(key, f"moments: {type(exc).__name__}: {exc}") from exc
        if mom.d != d or mom.m != m or mom.n != done * tpc:
            raise bad(key, "moments inconsistent with the scenario or the chunk count")


def _short(x: Any, limit: int = 60) -> str:
    s = repr(x) if not isinstance(x, (dict, list)) else type(x).__name__
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _targets_given(target_ci: float | None, target_rel: float | None) -> bool:
    return target_ci is not None or target_rel is not None


def _target_met(est: Estimates, target_ci: float | None, target_rel: float | None) -> bool:
    if not _targets_given(target_ci, target_rel):
        return False
    hw = float(est.half_width()[0])
    if not math.isfinite(hw):
        return False
    ok = True
    if target_ci is not None:
        ok = ok and hw <= target_ci
    if target_rel is not None:
        ok = ok and hw <= target_rel * abs(float(est.value[0]))
    return ok


def _next_round(
    done: int,
    min_chunks: int,
    max_chunks: int,
    t_per: int,
    est: Estimates | None,
    target_ci: float | None,
    target_rel: float | None,
) -> int:
    """Chunks in the next round: a deterministic function of the merged statistics."""
    remaining = max_chunks - done
    if done < min_chunks:
        return min(min_chunks - done, remaining, ROUND_MAX)
    cap = max(1, min(remaining, max(done, 1), ROUND_MAX))
    if est is None or not _targets_given(target_ci, target_rel):
        return cap
    hw = float(est.half_width()[0])
    goal = math.inf
    if target_ci is not None:
        goal = min(goal, target_ci)
    if target_rel is not None:
        goal = min(goal, target_rel * abs(float(est.value[0])))
    if not (math.isfinite(hw) and goal > 0):
        return cap
    need_trials = est.n * (hw / goal) ** 2 * 1.1
    need = math.ceil(need_trials / t_per) - done
    return int(min(cap, max(1, need)))


def _chunk_moments(
    config: ScenarioConfig, prep: Any, k: int, seed: int, t_per: int, idx: int, dev: torch.device
) -> Moments:
    gen = generator(dev, chunk_seed(seed, config.name, k, idx))
    try:
        y, c = config.simulate(prep, k, t_per, gen)
    except RuntimeError as exc:  # torch's CPU allocator and CUDA OOM raise RuntimeError
        if "allocate" not in str(exc) and "out of memory" not in str(exc):
            raise
        raise MemoryError(
            f"K={k}: out of memory simulating {t_per} trials per chunk; lower --chunk"
        ) from exc
    return Moments.from_samples(y.detach().cpu().numpy(), c.detach().cpu().numpy())


def _process_round(
    config: ScenarioConfig,
    prep: Any,
    k: int,
    seed: int,
    t_per: int,
    start: int,
    stop: int,
    mom: Moments,
    dev: torch.device,
    dist_ctx: _Dist,
) -> Moments:
    """Simulate chunks ``start..stop-1`` (this rank's share) and fold them in index order."""
    d, m = mom.d, mom.m
    if dist_ctx.world == 1:
        for i in range(start, stop):
            mom = mom.merge(_chunk_moments(config, prep, k, seed, t_per, i, dev))
        return mom
    world, rank = dist_ctx.world, dist_ctx.rank
    mine = [i for i in range(start, stop) if i % world == rank]
    per_rank = max(len([i for i in range(start, stop) if i % world == r]) for r in range(world))
    size = Moments.packed_size(d, m)
    local = np.zeros((per_rank, size))
    for j, i in enumerate(mine):
        local[j] = _chunk_moments(config, prep, k, seed, t_per, i, dev).pack()
    gathered = dist_ctx.all_gather(local)
    slot = {r: 0 for r in range(world)}
    for i in range(start, stop):
        r = i % world
        mom = mom.merge(Moments.unpack(gathered[r][slot[r]], d, m))
        slot[r] += 1
    return mom


def _k_result(
    config: ScenarioConfig,
    k: int,
    mom: Moments,
    chunks: int,
    t_per: int,
    stop_reason: str,
    cv: bool,
    seconds: float,
) -> KResult:
    est = mom.estimates(cv)
    se, pse = est.se(), est.plain_se()
    preds = config.predictions(k)
    names = config.output_names()
    outs = []
    for j, name in enumerate(names):
        v, s = float(est.value[j]), float(se[j])
        p = preds[j]
        outs.append(
            OutputEstimate(
                name=name,
                estimate=v,
                se=s,
                ci_low=v - Z95 * s,
                ci_high=v + Z95 * s,
                plain_estimate=float(est.plain[j]),
                plain_se=float(pse[j]),
                variance_reduction=float(est.vr[j]) if cv else None,
                pred_first=p.first,
                pred_second=p.second,
                z_first=_z(v, s, p.first),
                z_second=_z(v, s, p.second),
            )
        )
    extras = config.extras(k, est.value, se)
    return KResult(k, mom.n, chunks, t_per, stop_reason, outs, extras, seconds)


def _z(value: float, se: float, pred: float | None) -> float | None:
    if pred is None:
        return None
    diff = value - pred
    if se > 0:
        return diff / se
    if diff == 0:
        return 0.0
    return math.copysign(math.inf, diff)
