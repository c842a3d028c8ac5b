r"""Finite-K bias of the loss and of the logit gradient: Monte Carlo vs the delta-method theory.

Three scenarios of :mod:`numerics.montecarlo` (see its docstrings for the exact quantities):

* ``ranking_nce``: ranking NCE / InfoNCE with the :math:`-\log q` correction, K negatives from a
  Zipf noise law, positive from a uniform data law; bias of :math:`L_K-\log K` w.r.t. the large-K
  limit and of the logit gradient;
* ``sampled_softmax``: importance-sampled partition function with m = K proposals;
  :math:`E\log\hat Z-\log Z\approx-\chi^2(p\|q)/(2m)` (negative) and
  :math:`E\hat p_j-p_j\approx\frac{p_j}{m}(1+\chi^2-p_j/q_j)`;
* ``soft_target``: soft-target InfoNCE with K mixup + label-smoothed negatives.

Markers: Monte Carlo means with 95% confidence intervals (control variates, CPU, fixed seed).
Lines: first- and second-order predictions (``derivations.infonce`` delta-method formulas, as
evaluated by each scenario's ``predictions``). The gradient row shows the class with the largest
predicted bias. Values are shown with the sign of the prediction (``-bias`` when negative) on
log-log axes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from softnce_theory.plots._core import PALETTE, Figure, figure

UNIFORM10 = (0.1,) * 10
SCENARIOS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("ranking_nce", "ranking NCE (log q corrected)", {"sampler": "counts", "data": UNIFORM10}),
    ("sampled_softmax", "sampled softmax (m = K proposals)", {"sampler": "counts"}),
    ("soft_target", "soft-target InfoNCE (mixup + smoothing)", {}),
)


def plan(quick: bool) -> dict[str, dict[str, Any]]:
    """K grid and trial count per scenario."""
    if quick:
        ks = [1, 4, 16, 64, 256]
        return {name: {"ks": ks, "n": 2000} for name, _, _ in SCENARIOS}
    ks = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    return {
        "ranking_nce": {"ks": ks, "n": 20000},
        "sampled_softmax": {"ks": ks, "n": 20000},
        "soft_target": {"ks": ks, "n": 2000},
    }


def _dense_ks(kmax: int) -> list[int]:
    return sorted({round(k) for k in np.geomspace(1, kmax, 28)})


def run_one(name: str, params: dict[str, Any], ks: list[int], n: int, seed: int) -> dict[str, Any]:
    from softnce_theory.numerics.montecarlo import make_config, run_scenario

    cfg = make_config(name, **params)
    run = run_scenario(cfg, ks=ks, seed=seed, device="cpu", max_samples=n, min_samples=n, cv=True)
    dense = _dense_ks(max(ks))
    preds = {k: cfg.predictions(k) for k in sorted(set(dense) | set(ks))}
    # the class with the largest predicted gradient bias (first order) at the largest K
    last = preds[dense[-1]][1:]
    j = int(np.argmax([abs(p.first or 0.0) for p in last]))
    out_loss = [r.outputs[0] for r in run.results]
    out_grad = [r.outputs[1 + j] for r in run.results]

    def series(outs: list[Any]) -> dict[str, list[float]]:
        return {
            "estimate": [o.estimate for o in outs],
            "se": [o.se for o in outs],
            "ci_low": [o.ci_low for o in outs],
            "ci_high": [o.ci_high for o in outs],
        }

    return {
        "scenario": name,
        "config": cfg.to_json(),
        "ks": [r.k for r in run.results],
        "n": [r.n for r in run.results],
        "loss": series(out_loss),
        "grad": series(out_grad),
        "grad_class": j,
        "dense_ks": dense,
        "loss_pred_first": [preds[k][0].first for k in dense],
        "loss_pred_second": [preds[k][0].second for k in dense],
        "grad_pred_first": [preds[k][1 + j].first for k in dense],
        "loss_pred_first_at_ks": [preds[k][0].first for k in ks],
        "loss_pred_second_at_ks": [preds[k][0].second for k in ks],
        "constants": _floats(cfg.constants()),
        "mc_seed": seed,
        "device": "cpu",
    }


def _floats(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = str(v)
        elif isinstance(v, (int, float, str, list)) or v is None:
            out[k] = v
    return out


def compute(quick: bool, seed: int) -> dict[str, Any]:
    p = plan(quick)
    runs = []
    for name, title, params in SCENARIOS:
        r = run_one(name, params, p[name]["ks"], p[name]["n"], seed)
        r["title"] = title
        runs.append(r)
    return {"runs": runs}


def _sign(vals: list[float | None]) -> float:
    v = [x for x in vals if x is not None]
    return -1.0 if v and v[-1] < 0 else 1.0


def _panel(ax: Any, run: dict[str, Any], key: str, preds: dict[str, list[Any]]) -> None:
    s = _sign(preds["first"])
    ks = np.array(run["ks"], dtype=float)
    est = s * np.array(run[key]["estimate"])
    lo = s * np.array(run[key]["ci_low"])
    hi = s * np.array(run[key]["ci_high"])
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    pos = est > 0
    floor = est[pos].min() * 1e-2 if pos.any() else 1e-12
    yerr = np.vstack([est - np.maximum(lo, floor), hi - est])
    dk = np.array(run["dense_ks"], dtype=float)
    ax.plot(
        dk,
        s * np.array(preds["first"], dtype=float),
        color=PALETTE[0],
        lw=1.5,
        label="1st-order prediction",
    )
    if preds.get("second") is not None and any(v is not None for v in preds["second"]):
        sec = np.array([np.nan if v is None else v for v in preds["second"]], dtype=float)
        ax.plot(dk, s * sec, color=PALETTE[1], lw=1.3, ls="--", label="2nd-order prediction")
    ax.errorbar(
        ks[pos],
        est[pos],
        yerr=yerr[:, pos],
        fmt="o",
        ms=4,
        mfc="white",
        color=PALETTE[7],
        ecolor=PALETTE[7],
        elinewidth=1,
        capsize=2.5,
        label=f"Monte Carlo, n = {min(run['n'])}/K (95% CI)",
    )
    if (~pos).any():
        ax.plot(
            ks[~pos],
            np.full((~pos).sum(), floor),
            "x",
            color=PALETTE[7],
            ms=5,
            label="MC estimate ≤ 0 (shown at floor)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.grid(alpha=0.25, which="major")
    ax.set_xlabel(
        r"$K$" + (" (proposals $m$)" if run["scenario"] == "sampled_softmax" else " (negatives)")
    )
    return None


def render(data: dict[str, Any], fig: Any) -> None:
    runs = data["runs"]
    axes = fig.subplots(2, len(runs), squeeze=False)
    for c, run in enumerate(runs):
        ax = axes[0][c]
        _panel(
            ax, run, "loss", {"first": run["loss_pred_first"], "second": run["loss_pred_second"]}
        )
        sgn = "−" if _sign(run["loss_pred_first"]) < 0 else ""
        ax.set_ylabel(
            f"{sgn}loss bias $E[L_K]-\\log K-L_\\infty$"
            if run["scenario"] != "sampled_softmax"
            else f"{sgn}loss bias $E\\log\\hat Z-\\log Z$"
        )
        ax.set_title(f"({'abc'[c]}) {run['title']}", fontsize=8)
        ax = axes[1][c]
        _panel(ax, run, "grad", {"first": run["grad_pred_first"]})
        j = run["grad_class"]
        sgn = "−" if _sign(run["grad_pred_first"]) < 0 else ""
        ax.set_ylabel(f"{sgn}gradient bias, class {j}")
        ax.set_title(f"({'def'[c]}) logit-gradient bias, class {j}", fontsize=8)
    axes[0][0].legend(fontsize=6.5, loc="lower left", framealpha=0.9)
    axes[1][0].legend(fontsize=6.5, loc="lower left", framealpha=0.9)


FIGURE = figure(
    Figure(
        name="negatives_bias",
        title="Finite-K bias of the loss and the logit gradient",
        claims=(
            "infonce.delta_method_series",
            "infonce.delta_method_log_mean",
            "infonce.sampled_softmax_loss_bias",
            "infonce.sampled_softmax_grad_bias",
            "soft_target_infonce.large_k_hard_limit",
            "soft_target_infonce.large_k_rate",
        ),
        compute=compute,
        render=render,
        caption=(
            "Markers: Monte Carlo (numerics.montecarlo, CPU, control variates) with 95% CIs; "
            "lines: first/second-order delta-method predictions (indistinguishable at this "
            "scale). Both biases decay as 1/K; the first-order gradient prediction of ranking "
            "NCE misses at small K (K <= 4)."
        ),
        size=(11.0, 6.4),
    )
)
