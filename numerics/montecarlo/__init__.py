"""Monte Carlo estimation of the finite-K bias of contrastive losses (torch; CPU or CUDA).

Public API::

    from softnce_theory.numerics.montecarlo import make_config, run_scenario
    cfg = make_config("sampled_softmax", sampler="counts")
    run = run_scenario(cfg, ks=[10, 100, 1000], seed=0, target_rel=0.05)
    run.to_json()   # plain JSON-able dict: per K, per output: estimate, SE, CI, n, VR, predictions

Scenarios (:data:`SCENARIOS`): ``ranking_nce``, ``sampled_softmax``, ``log_mean_exp``
(:mod:`.nce`), ``soft_target`` (:mod:`.soft_target`), ``mi_discrete``, ``mi_gaussian``
(:mod:`.mi`), ``supcon`` (:mod:`.supcon`). Exact small cases for the tests are in :mod:`.exact`.
The engine (chunks, seeds, control variates, checkpoints, torch.distributed) is in
:mod:`.engine`; see ``docs/montecarlo.md``.
"""

from __future__ import annotations

from softnce_theory.numerics.montecarlo import mi, nce, soft_target, supcon  # noqa: F401  (register scenarios)
from softnce_theory.numerics.montecarlo._base import SCENARIOS, Prediction, ScenarioConfig
from softnce_theory.numerics.montecarlo._stats import Estimates, Moments
from softnce_theory.numerics.montecarlo.checkpoint import CheckpointError
from softnce_theory.numerics.montecarlo.engine import (
    ENGINE_VERSION,
    KResult,
    MCRun,
    OutputEstimate,
    ProgressEvent,
    make_config,
    run_scenario,
    trials_per_chunk,
)

__all__ = [
    "ENGINE_VERSION",
    "SCENARIOS",
    "CheckpointError",
    "Estimates",
    "KResult",
    "MCRun",
    "Moments",
    "OutputEstimate",
    "Prediction",
    "ProgressEvent",
    "ScenarioConfig",
    "make_config",
    "run_scenario",
    "trials_per_chunk",
]
