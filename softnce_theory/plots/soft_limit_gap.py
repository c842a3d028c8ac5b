r"""Soft-target InfoNCE does not converge to soft-target CE: the large-K Jensen gap.

Setting (research note ``soft_target_infonce.md`` §1.5; claim
``soft_target_infonce.large_k_soft_below_soft_ce``): one input with logits :math:`f`
(temperature :math:`t`), noise :math:`q` uniform over :math:`C` classes, corrected logits
:math:`g=f/t-\log q`, candidate targets i.i.d. from the law

.. math::
    \alpha=(1-\varepsilon)\big(\lambda e_a+(1-\lambda)e_b\big)+\varepsilon u,
    \qquad a,b\overset{iid}\sim q,

(mixup with a fixed weight :math:`\lambda` and label smoothing :math:`\varepsilon`; then
:math:`E\alpha=q`). As :math:`K\to\infty`, :math:`L_K-\log K\to-\langle\alpha_0,g\rangle+\log
M(g)` with :math:`M(g)=E e^{\langle\alpha,g\rangle}`, whereas soft CE plus the constant
:math:`\langle\alpha_0,\log q\rangle` is :math:`-\langle\alpha_0,g\rangle+\log\sum_ce^{f_c/t}`.
Their difference does not depend on :math:`\alpha_0`:

.. math::
    \Delta=\log\sum_c e^{f_c/t}-\log M(g)\;\ge\;0

(Jensen: :math:`e^{\langle\alpha,g\rangle}\le\sum_c\alpha_ce^{g_c}`), zero only for one-hot targets
(:math:`\lambda\in\{0,1\}`, :math:`\varepsilon=0`). Here :math:`M(g)=e^{\varepsilon\bar g}
\sum_{a,b}q_aq_b\,e^{(1-\varepsilon)(\lambda g_a+(1-\lambda)g_b)}` is a finite sum (curves).

Markers: the production losses at large K. With :math:`M=K+1` candidates drawn from the law and
every row's logits equal to :math:`f`, ``soft_target_cross_entropy`` + :math:`\langle\alpha_i,
\log q\rangle` minus (``soft_target_info_nce`` :math:`-\log K`) is
:math:`\log\sum_ce^{f_c/t}-\log\frac1K\sum_je^{S_j}` for every row, an estimate of
:math:`\Delta` with a positive :math:`O(1/K)` bias (``soft_target_infonce.large_k_rate``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from softnce_theory.plots._core import MARKERS, PALETTE, Figure, figure

LOGITS = (1.2, 0.9, 0.6, 0.3, 0.0, -0.3, -0.6, -0.9, -1.2, -1.5)
TEMPERATURE = 0.5
LAMBDAS_FIXED = (1.0, 0.8, 0.65, 0.5)  # panel (b) curves
EPS_FIXED = (0.0, 0.1, 0.3)  # panel (a) curves


def gap(
    lam: float, eps: float, logits: tuple[float, ...] = LOGITS, t: float = TEMPERATURE
) -> float:
    """Closed form of Delta = log sum exp(f/t) - log M(g) for uniform q (finite sum)."""
    f = np.asarray(logits, dtype=np.float64) / t
    c = f.size
    g = f + math.log(c)
    h = (1 - eps) * g
    pair = lam * h[:, None] + (1 - lam) * h[None, :]
    top = pair.max()
    log_m = eps * g.mean() + top + math.log(np.exp(pair - top).sum() / c**2)
    lse = f.max() + math.log(np.exp(f - f.max()).sum())
    return float(lse - log_m)


def production_gap(lam: float, eps: float, k: int, pools: int, seed: int) -> tuple[float, float]:
    """Mean and standard error over ``pools`` candidate pools of K + 1 targets of
    soft CE + <alpha, log q> - (soft-target InfoNCE - log K), from the production losses."""
    import torch

    from softnce_theory.losses.cross_entropy import soft_target_cross_entropy
    from softnce_theory.losses.soft_target_infonce import soft_target_info_nce

    c = len(LOGITS)
    gen = torch.Generator().manual_seed(seed)
    q = torch.full((c,), 1.0 / c, dtype=torch.float64)
    f = torch.tensor(LOGITS, dtype=torch.float64)
    vals = []
    for _ in range(pools):
        a = torch.randint(c, (k + 1,), generator=gen)
        b = torch.randint(c, (k + 1,), generator=gen)
        oh = torch.eye(c, dtype=torch.float64)
        alpha = (1 - eps) * (lam * oh[a] + (1 - lam) * oh[b]) + eps / c
        n_rows = 4  # rows 0..3 use candidates 0..3 as positives; all K+1 are candidates
        logits = f.expand(n_rows, c)
        st = soft_target_info_nce(
            logits,
            alpha[:n_rows],
            q,
            temperature=TEMPERATURE,
            candidates=alpha,
            reduction="none",
        )
        ce = soft_target_cross_entropy(
            logits, alpha[:n_rows], temperature=TEMPERATURE, reduction="none"
        )
        const = alpha[:n_rows] @ torch.log(q)
        d = ce + const - (st - math.log(k))
        vals.append(float(d.mean()))
    arr = np.array(vals)
    return float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(pools))


def compute(quick: bool, seed: int) -> dict[str, Any]:
    k, pools = (2048, 6) if quick else (16384, 24)
    lam_line = np.linspace(0.5, 1.0, 101)
    eps_line = np.linspace(0.0, 0.95, 96)
    lam_pts = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    eps_pts = (0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9)
    panel_a = []
    for i, eps in enumerate(EPS_FIXED):
        pts = [
            production_gap(lam, eps, k, pools, seed * 1000 + 10 * i + j)
            for j, lam in enumerate(lam_pts)
        ]
        panel_a.append(
            {
                "eps": eps,
                "line": [gap(lam, eps) for lam in lam_line],
                "points": [p[0] for p in pts],
                "points_se": [p[1] for p in pts],
            }
        )
    panel_b = []
    for i, lam in enumerate(LAMBDAS_FIXED):
        pts = [
            production_gap(lam, eps, k, pools, seed * 1000 + 500 + 10 * i + j)
            for j, eps in enumerate(eps_pts)
        ]
        panel_b.append(
            {
                "lam": lam,
                "line": [gap(lam, eps) for eps in eps_line],
                "points": [p[0] for p in pts],
                "points_se": [p[1] for p in pts],
            }
        )
    return {
        "logits": list(LOGITS),
        "temperature": TEMPERATURE,
        "noise": "uniform",
        "k": k,
        "pools": pools,
        "lam_line": lam_line.tolist(),
        "eps_line": eps_line.tolist(),
        "lam_points": list(lam_pts),
        "eps_points": list(eps_pts),
        "panel_a": panel_a,
        "panel_b": panel_b,
    }


def render(data: dict[str, Any], fig: Any) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    for i, cur in enumerate(data["panel_a"]):
        ax1.plot(
            data["lam_line"],
            cur["line"],
            color=PALETTE[i],
            lw=1.6,
            label=rf"smoothing $\varepsilon={cur['eps']:g}$",
        )
        ax1.errorbar(
            data["lam_points"],
            cur["points"],
            yerr=1.96 * np.array(cur["points_se"]),
            fmt=MARKERS[i],
            color=PALETTE[i],
            mfc="white",
            ms=4.5,
            capsize=2,
            elinewidth=0.9,
            ls="none",
        )
    ax1.set_xlabel(r"mixup weight $\lambda$ ($\lambda=1$: one-hot)")
    ax1.set_ylabel(r"gap $\Delta$ = soft CE $-$ large-$K$ limit (nats)")
    ax1.set_title(r"(a) gap vs mixup weight $\lambda$", fontsize=8)
    for i, cur in enumerate(data["panel_b"]):
        c = PALETTE[(3, 4, 5, 7)[i]]
        ax2.plot(
            data["eps_line"], cur["line"], color=c, lw=1.6, label=rf"mixup $\lambda={cur['lam']:g}$"
        )
        ax2.errorbar(
            data["eps_points"],
            cur["points"],
            yerr=1.96 * np.array(cur["points_se"]),
            fmt=MARKERS[i + 3],
            color=c,
            mfc="white",
            ms=4.5,
            capsize=2,
            elinewidth=0.9,
            ls="none",
        )
    ax2.set_xlabel(r"label smoothing $\varepsilon$ ($\varepsilon=0$, $\lambda=1$: one-hot)")
    ax2.set_ylabel(r"gap $\Delta$ (nats)")
    ax2.set_title(r"(b) gap vs label smoothing $\varepsilon$", fontsize=8)
    for ax in (ax1, ax2):
        ax.axhline(0, color="0.3", lw=0.8)
        ax.grid(alpha=0.25)
        ax.plot(
            [],
            [],
            "o",
            color="0.3",
            mfc="white",
            ls="none",
            label=f"production losses, K = {data['k']} (95% CI)",
        )
        ax.legend(fontsize=7, framealpha=0.9, loc="lower left" if ax is ax1 else "lower right")
        ax.set_ylim(bottom=-0.02)


FIGURE = figure(
    Figure(
        name="soft_limit_gap",
        title="Large-K soft-target InfoNCE vs soft-target CE",
        claims=(
            "soft_target_infonce.large_k_soft_below_soft_ce",
            "soft_target_infonce.large_k_hard_limit",
            "soft_target_infonce.large_k_rate",
        ),
        compute=compute,
        render=render,
        caption=(
            "C = 10 classes, uniform noise q, t = 0.5. Lines: closed-form Jensen gap "
            "Δ = log Σ_c exp(f_c/t) − log E exp⟨α, f/t − log q⟩; markers: production soft CE "
            "(+⟨α, log q⟩) minus production soft-target InfoNCE (− log K) at large K. Zero only "
            "for one-hot targets."
        ),
        size=(9.0, 3.8),
    )
)
