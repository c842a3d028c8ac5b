r"""Collision cross-entropy vs Shannon and reverse cross-entropy for soft targets.

Collision CE (Zhang & Boykov 2023) :math:`H_2(y,\sigma)=-\ln\sum_k y_k\sigma_k`, Shannon CE
:math:`H(y,\sigma)=-\sum_k y_k\ln\sigma_k` and reverse CE :math:`H(\sigma,y)=-\sum_k\sigma_k\ln y_k`.

* Panels (a)-(c): binary prediction :math:`\sigma=(p,1-p)` against targets :math:`y=(t,1-t)` of
  increasing softness. One-hot targets give :math:`H_2=H` (``collision_ce.onehot_equals_shannon``),
  :math:`H_2\le\min(H(y,\sigma),H(\sigma,y))` (``collision_ce.jensen_bound``, ``collision_ce.jensen_bound_reverse``), and the uniform
  target gives the constant :math:`\ln 2` (``collision_ce.uniform_constant``). Reverse CE is
  :math:`+\infty` for a one-hot target (except at :math:`\sigma=y`).
* Panel (d): :math:`\|\nabla_z\ell\|_2` at a fixed 3-class prediction along the path
  :math:`y(\varepsilon)=(1-\varepsilon)e_1+\varepsilon u` from one-hot to uniform, against the
  target entropy :math:`H(y)`. Closed forms: :math:`\sigma-\tilde y`,
  :math:`\tilde y=y\odot\sigma/\sigma^\top y` (``collision_ce.logit_gradient``), :math:`\sigma-y`
  (``cross_entropy.soft_ce_gradient``) and :math:`\sigma\odot(a-\sigma^\top a)`,
  :math:`a=-\ln y` (reverse CE). Collision and reverse CE vanish at the uniform target for every
  prediction; Shannon CE vanishes only at :math:`y=\sigma`.

Markers: the production losses (``collision_cross_entropy``, ``soft_target_cross_entropy``) and,
for reverse CE (no production loss), a plain torch expression, all differentiated by autograd.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from softnce_theory.plots._core import MARKERS, PALETTE, Figure, figure

SOFTNESS = (1.0, 0.9, 0.75, 0.6, 0.5)  # binary targets y = (t, 1 - t)
Z3 = (1.5, 0.3, -1.0)  # panel (d): fixed 3-class logits


def binary_losses(p: np.ndarray, t: float) -> dict[str, np.ndarray]:
    """Closed forms of the three losses for sigma = (p, 1-p), y = (t, 1-t)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        collision = -np.log(t * p + (1 - t) * (1 - p))
        shannon = -(t * np.log(p) + (1 - t) * np.log1p(-p))
        if t in (0.0, 1.0):
            shannon = -np.log(p) if t == 1.0 else -np.log1p(-p)
            reverse = np.full_like(p, np.inf)
        else:
            reverse = -(p * np.log(t) + (1 - p) * np.log(1 - t))
    return {"collision": collision, "shannon": shannon, "reverse": reverse}


def gradient_norms(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Closed-form logit-gradient norms of the three losses at logits z, target y."""
    sigma = np.exp(z - z.max())
    sigma /= sigma.sum()
    ytil = y * sigma / (sigma @ y)
    out = {
        "collision": float(np.linalg.norm(sigma - ytil)),
        "shannon": float(np.linalg.norm(sigma - y)),
    }
    if np.all(y > 0):
        a = -np.log(y)
        out["reverse"] = float(np.linalg.norm(sigma * (a - sigma @ a)))
    else:
        out["reverse"] = float("inf")
    return out


def target_path(eps: float, k: int = 3) -> np.ndarray:
    y = np.full(k, eps / k)
    y[0] += 1 - eps
    return y


def entropy(y: np.ndarray) -> float:
    nz = y[y > 0]
    return float(-(nz * np.log(nz)).sum())


def _eps_for_entropy(h: float) -> float:
    """The eps in [0, 1] with H(y(eps)) = h (H is increasing in eps), by bisection."""
    if h <= 0:
        return 0.0
    if h >= np.log(3) * (1 - 1e-15):
        return 1.0  # exactly uniform
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if entropy(target_path(mid)) < h else (lo, mid)
    return (lo + hi) / 2


def _autograd_norms(z: np.ndarray, y: np.ndarray) -> dict[str, float]:
    import torch

    from softnce_theory.losses.collision_ce import collision_cross_entropy
    from softnce_theory.losses.cross_entropy import soft_target_cross_entropy

    yt = torch.tensor(y, dtype=torch.float64).unsqueeze(0)
    out = {}
    for key in ("collision", "shannon", "reverse"):
        zt = torch.tensor(z, dtype=torch.float64).unsqueeze(0).requires_grad_(True)
        if key == "collision":
            loss = collision_cross_entropy(zt, yt)
        elif key == "shannon":
            loss = soft_target_cross_entropy(zt, yt)
        else:
            loss = -(torch.softmax(zt, -1) * torch.log(yt)).sum()
        (g,) = torch.autograd.grad(loss, zt)
        out[key] = float(g.norm())
    return out


def _production_binary(p: np.ndarray, t: float) -> dict[str, list[float]]:
    import torch

    from softnce_theory.losses.collision_ce import collision_cross_entropy
    from softnce_theory.losses.cross_entropy import soft_target_cross_entropy

    pt = torch.tensor(p, dtype=torch.float64)
    logits = torch.stack([torch.log(pt), torch.log1p(-pt)], 1)
    y = torch.tensor([[t, 1 - t]], dtype=torch.float64).expand(len(p), 2)
    h2 = collision_cross_entropy(logits, y, reduction="none")
    h = soft_target_cross_entropy(logits, y, reduction="none")
    with np.errstate(divide="ignore"):
        rev = -(pt * np.log(t) + (1 - pt) * np.log(1 - t)) if 0 < t < 1 else None
    return {
        "collision": h2.tolist(),
        "shannon": h.tolist(),
        "reverse": [] if rev is None else rev.tolist(),
    }


def compute(quick: bool, seed: int) -> dict[str, Any]:
    del quick, seed
    p = np.linspace(0.002, 0.998, 250)
    p_pts = np.linspace(0.05, 0.95, 10)
    curves = []
    for t in SOFTNESS:
        ls = binary_losses(p, t)
        curves.append(
            {
                "t": t,
                "lines": {
                    k: [None if not np.isfinite(x) else float(x) for x in v] for k, v in ls.items()
                },
                "points": _production_binary(p_pts, t),
            }
        )
    z = np.array(Z3)
    eps_line = np.array([_eps_for_entropy(h) for h in np.linspace(0, np.log(3), 201)])
    grad_lines: dict[str, list[float | None]] = {"collision": [], "shannon": [], "reverse": []}
    for e in eps_line:
        g = gradient_norms(z, target_path(e))
        for k in grad_lines:
            grad_lines[k].append(g[k] if np.isfinite(g[k]) else None)
    eps_pts = np.array([_eps_for_entropy(h) for h in np.linspace(0, np.log(3), 12)])
    grad_pts: dict[str, list[float | None]] = {"collision": [], "shannon": [], "reverse": []}
    for e in eps_pts:
        g = _autograd_norms(z, target_path(e))
        for k in grad_pts:
            grad_pts[k].append(g[k] if np.isfinite(g[k]) else None)
    sigma = np.exp(z - z.max())
    sigma /= sigma.sum()
    return {
        "p": p.tolist(),
        "p_points": p_pts.tolist(),
        "binary": curves,
        "logits3": list(Z3),
        "sigma3": sigma.tolist(),
        "eps_line": eps_line.tolist(),
        "entropy_line": [entropy(target_path(e)) for e in eps_line],
        "grad_lines": grad_lines,
        "eps_points": eps_pts.tolist(),
        "entropy_points": [entropy(target_path(e)) for e in eps_pts],
        "grad_points": grad_pts,
    }


NAMES = {
    "collision": r"collision CE $H_2(y,\sigma)=-\ln\sigma^\top y$",
    "shannon": r"Shannon CE $H(y,\sigma)$",
    "reverse": r"reverse CE $H(\sigma,y)$",
}


def _nan(v: list[float | None]) -> list[float]:
    return [np.nan if x is None else x for x in v]


def render(data: dict[str, Any], fig: Any) -> None:
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.25]})
    p = data["p"]
    n = len(data["binary"])
    for j, key in enumerate(("collision", "shannon", "reverse")):
        ax = axes[j]
        for i, cur in enumerate(data["binary"]):
            col = PALETTE[i]
            ys = _nan(cur["lines"][key])
            lab = f"$t={cur['t']:g}$" + (" (one-hot)" if cur["t"] == 1 else "")
            lab += " (uniform)" if cur["t"] == 0.5 else ""
            if all(np.isnan(ys)):
                ax.plot([], [], color=col, lw=1.4, label=lab + r": $+\infty$")
                continue
            ax.plot(p, ys, color=col, lw=1.4, label=lab)
            pts = cur["points"][key]
            if pts:
                ax.plot(
                    data["p_points"],
                    pts,
                    MARKERS[i],
                    color=col,
                    ms=3.5,
                    mfc="none",
                    mew=0.9,
                    ls="none",
                )
        ax.set_ylim(0, 3.2)
        ax.set_xlim(0, 1)
        ax.set_xlabel(r"prediction $\sigma=(p,1-p)$: $p$")
        ax.set_title(f"({'abc'[j]}) " + NAMES[key], fontsize=8)
        ax.grid(alpha=0.25)
    axes[0].set_ylabel(r"loss (nats) for target $y=(t,1-t)$")
    axes[2].plot([], [], "o", color="0.3", mfc="none", ls="none", label="production loss")
    axes[2].legend(
        fontsize=6.5,
        loc="upper right",
        title="target $y=(t,1-t)$",
        title_fontsize=6.5,
        framealpha=0.9,
    )
    del n

    ax = axes[3]
    h_line = data["entropy_line"]
    for i, key in enumerate(("collision", "shannon", "reverse")):
        ax.plot(
            h_line,
            _nan(data["grad_lines"][key]),
            color=PALETTE[i],
            lw=1.6,
            label=NAMES[key].split(" $")[0],
        )
        ax.plot(
            data["entropy_points"],
            _nan(data["grad_points"][key]),
            MARKERS[i],
            color=PALETTE[i],
            ms=4,
            mfc="none",
            mew=1.0,
            ls="none",
        )
    ax.plot([], [], "o", color="0.3", mfc="none", ls="none", label="autograd")
    sig = data["sigma3"]
    h_sigma_note = r"$\sigma=(" + ", ".join(f"{v:.2f}" for v in sig) + ")$"
    ax.axvline(np.log(3), color="0.5", ls=":", lw=1)
    ax.text(
        np.log(3) * 0.985,
        0.55,
        "uniform $y$",
        rotation=90,
        ha="right",
        va="center",
        fontsize=6.5,
        color="0.3",
        transform=ax.get_xaxis_transform(),
    )
    ax.set_xlabel(r"target entropy $H(y)$ (nats), $y=(1-\varepsilon)e_1+\varepsilon u$")
    ax.set_ylabel(r"logit-gradient norm $\|\nabla_z\ell\|_2$")
    ax.set_title(f"(d) gradient vs target softness, {h_sigma_note}", fontsize=8)
    finite = [v for k in ("collision", "shannon") for v in data["grad_lines"][k] if v is not None]
    ax.set_ylim(0, 2.2 * max(finite))
    ax.text(
        0.3,
        2.12 * max(finite),
        "reverse CE $\\to+\\infty$\nas $y\\to e_1$ (one-hot)",
        fontsize=6.5,
        color=PALETTE[2],
        va="top",
    )
    ax.set_xlim(0, np.log(3) * 1.02)
    ax.grid(alpha=0.25)
    ax.legend(fontsize=6.5, loc="upper right", framealpha=0.9)
    ax.set_title(ax.get_title(), fontsize=8)


FIGURE = figure(
    Figure(
        name="collision_vs_shannon",
        title="Collision CE vs Shannon and reverse CE",
        claims=(
            "collision_ce.onehot_equals_shannon",
            "collision_ce.uniform_constant",
            "collision_ce.logit_gradient",
            "collision_ce.jensen_bound",
            "collision_ce.jensen_bound_reverse",
            "cross_entropy.soft_ce_gradient",
        ),
        compute=compute,
        render=render,
        caption=(
            "Lines: closed forms; markers: production losses (values) and autograd (gradient "
            "norms; reverse CE as a plain torch expression). Collision CE is flat (zero "
            "gradient) at the uniform target and equals Shannon CE for one-hot targets."
        ),
        size=(11.5, 3.6),
    )
)
