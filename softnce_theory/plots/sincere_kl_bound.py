r"""SINCERE's information bound: :math:`\log(N+1)-L\le\frac N{N+1}D_J\le D_J`.

Setting (research note ``sincere_supcon_aljundi.md`` §1.5; claim ``sincere.kl_bound``): each
NCE set holds one target :math:`x_0\sim p^+=\mathcal N(\mu,1)` and :math:`N` noise samples
:math:`x_n\sim p^-=\mathcal N(0,1)`; the Jeffreys divergence is
:math:`D_J=\mathrm{KL}(p^+\|p^-)+\mathrm{KL}(p^-\|p^+)=\mu^2`. For every critic :math:`f>0`,
:math:`\log(N+1)-E\,L(f)\le\frac N{N+1}D_J`, and also :math:`\le\log(N+1)` since :math:`L\ge0`.

Markers: Monte Carlo of the production SINCERE loss
(:func:`~softnce_theory.losses.sincere.sincere_from_logits`) with one anchor per NCE set, its
positive :math:`x_0` and :math:`N` negatives, logits :math:`s_j=\log f(x_j)`, for the optimal
critic :math:`\log r(x)=\mu x-\mu^2/2` and for the tempered critic :math:`r^{1/2}` (any critic
obeys the bound). Many sets are evaluated in one block-diagonal logit matrix (off-block logits
``-inf``, different labels, so they do not enter the anchor's loss). Lines: the closed-form
bounds; for :math:`N=1` also the exact value :math:`\log2-E\log(1+e^W)`,
:math:`W\sim\mathcal N(-\mu^2,2\mu^2)`, by quadrature (the ``numerics.sincere`` oracle).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from softnce_theory.plots._core import MARKERS, PALETTE, Figure, figure

NEGATIVES = (1, 4, 16)


def sincere_gap_mc(
    mu: float, n_neg: int, trials: int, seed: int, power: float = 1.0
) -> tuple[float, float]:
    """log(N+1) - mean SINCERE anchor loss over ``trials`` NCE sets, and its standard error."""
    import torch

    from softnce_theory.losses.sincere import sincere_from_logits

    gen = torch.Generator().manual_seed(seed)
    size = n_neg + 2  # anchor, positive, negatives
    per_block = max(2, 192 // size)
    losses = []
    done = 0
    while done < trials:
        t = min(per_block, trials - done)
        x0 = mu + torch.randn((t, 1), generator=gen, dtype=torch.float64)
        xn = torch.randn((t, n_neg), generator=gen, dtype=torch.float64)
        x = torch.cat([x0, xn], 1)
        s = power * (mu * x - mu * mu / 2)  # log critic of each candidate
        n = t * size
        bid = torch.arange(t).repeat_interleave(size)
        row = torch.zeros((t, size), dtype=torch.float64)
        row[:, 1:] = s  # anchor row: logits to the positive and the negatives
        within = torch.zeros((n, size), dtype=torch.float64)
        within[::size] = row
        # block-diagonal logits: entry (i, b*size + j) = within[i, j] for i in block b
        col_in_block = torch.arange(n) % size
        logits = within[:, col_in_block]
        logits = torch.where(bid[:, None] == bid[None, :], logits, -math.inf)
        labels = torch.arange(t).repeat_interleave(size) * 2
        labels = labels + torch.tensor([0, 0] + [1] * n_neg).repeat(t)
        rows = sincere_from_logits(logits, labels, reduction="none")
        losses.append(rows[::size])
        done += t
    loss = torch.cat(losses).numpy()
    return float(math.log(n_neg + 1) - loss.mean()), float(loss.std(ddof=1) / math.sqrt(trials))


def exact_gap_n1(mu: float) -> float:
    from softnce_theory.numerics.sincere import nce_loss_gaussian_n1

    return float(math.log(2) - nce_loss_gaussian_n1(mu))


def compute(quick: bool, seed: int) -> dict[str, Any]:
    trials = 1500 if quick else 12000
    mus = (
        (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)
        if quick
        else (0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0)
    )
    mu_line = np.geomspace(0.15, 3.3, 60)
    mc = []
    for i, n_neg in enumerate(NEGATIVES):
        pts = [
            sincere_gap_mc(mu, n_neg, trials, seed * 7919 + 100 * i + j) for j, mu in enumerate(mus)
        ]
        mc.append({"n_neg": n_neg, "gap": [p[0] for p in pts], "se": [p[1] for p in pts]})
    n_t = 4
    tempered = [
        sincere_gap_mc(mu, n_t, trials, seed * 7919 + 900 + j, power=0.5)
        for j, mu in enumerate(mus)
    ]
    return {
        "mus": list(mus),
        "dj": [m * m for m in mus],
        "trials": trials,
        "mc": mc,
        "tempered": {
            "n_neg": n_t,
            "power": 0.5,
            "gap": [p[0] for p in tempered],
            "se": [p[1] for p in tempered],
        },
        "mu_line": mu_line.tolist(),
        "dj_line": (mu_line**2).tolist(),
        "exact_n1": [exact_gap_n1(float(m)) for m in mu_line],
    }


def render(data: dict[str, Any], fig: Any) -> None:
    ax = fig.subplots(1, 1)
    dj = np.array(data["dj_line"])
    ax.plot(dj, dj, color="0.1", lw=1.4, label=r"$D_J$")
    for i, cur in enumerate(data["mc"]):
        n = cur["n_neg"]
        c = PALETTE[i]
        ax.plot(
            dj,
            n / (n + 1) * dj,
            color=c,
            lw=1.3,
            ls="--",
            label=rf"$N={n}$: bound $\frac{{N}}{{N+1}}D_J$",
        )
        ax.axhline(math.log(n + 1), color=c, lw=0.9, ls=":")
        ax.text(
            dj[0] * 1.05,
            math.log(n + 1) * 1.04,
            rf"$\log({n}+1)$",
            color=c,
            fontsize=7,
            va="bottom",
        )
        ax.errorbar(
            data["dj"],
            cur["gap"],
            yerr=1.96 * np.array(cur["se"]),
            fmt=MARKERS[i],
            color=c,
            ms=4.5,
            mfc="white",
            capsize=2,
            elinewidth=0.9,
            ls="none",
            label=rf"$N={n}$: SINCERE, optimal critic $r$",
        )
    ax.plot(
        dj,
        data["exact_n1"],
        color=PALETTE[0],
        lw=1.0,
        alpha=0.8,
        label=r"$N=1$: exact (quadrature)",
    )
    t = data["tempered"]
    ax.errorbar(
        data["dj"],
        t["gap"],
        yerr=1.96 * np.array(t["se"]),
        fmt="x",
        color=PALETTE[3],
        ms=5,
        capsize=2,
        elinewidth=0.9,
        ls="none",
        label=rf"$N={t['n_neg']}$: SINCERE, critic $r^{{{t['power']:g}}}$",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"Jeffreys divergence $D_J=\mathrm{KL}(p^+\|p^-)+\mathrm{KL}(p^-\|p^+)=\mu^2$")
    ax.set_ylabel(r"$\log(N+1)-E\,L_{\rm SINCERE}$ (nats)")
    ax.set_title(
        r"$p^+=\mathcal{N}(\mu,1)$, $p^-=\mathcal{N}(0,1)$: one target, $N$ noise "
        r"samples per NCE set",
        fontsize=8,
    )
    lo = min(min(c["gap"]) for c in data["mc"] + [t])
    ax.set_ylim(max(lo / 2, 1e-3), 12)
    ax.grid(alpha=0.25, which="major")
    ax.legend(fontsize=6.5, loc="lower right", framealpha=0.92, ncol=2)


FIGURE = figure(
    Figure(
        name="sincere_kl_bound",
        title="SINCERE's KL bound",
        claims=("sincere.kl_bound", "sincere.equals_infonce_instance_labels"),
        compute=compute,
        render=render,
        caption=(
            "Markers: Monte Carlo of the production SINCERE loss (95% CIs); lines: the "
            "closed-form bounds N/(N+1) D_J <= D_J and log(N+1) (dotted); N = 1 exact value by "
            "quadrature. Every critic (optimal r or tempered r^0.5) stays below both bounds."
        ),
        size=(7.0, 4.6),
    )
)
