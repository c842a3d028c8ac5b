r"""SupCon's same-class repulsion grows with the number of positives; SINCERE never repels.

Setting (research note ``sincere_supcon_aljundi.md`` §1.3; claim
``sincere.supcon_repulsion_grows_with_positives``): one anchor, its closest positive at logit
:math:`s_c`, the other :math:`|P|-1` positives at a common logit :math:`s_o<s_c`, negatives of
total mass :math:`Z_N=\sum_n e^{s_n}`. The logit gradients on the closest positive are

.. math::
    \partial\ell^{out}/\partial s_c = P_c - 1/|P|,\qquad
    \partial\ell^{in}/\partial s_c = P_c - X_c,\qquad
    \partial\ell^{SINCERE}/\partial s_c = \big(e^{s_c}/(e^{s_c}+Z_N) - 1\big)/|P|,

with :math:`P_c = e^{s_c}/(e^{s_c}+(|P|-1)e^{s_o}+Z_N)` and
:math:`X_c = e^{s_c}/(e^{s_c}+(|P|-1)e^{s_o})`. SupCon :math:`L_{out}` repels (positive
gradient: descent lowers :math:`s_c`) iff :math:`(|P|-1)(e^{s_c}-e^{s_o}) > Z_N`.

Curves: those closed forms (``|P|`` as a real). Markers: autograd of the production losses
(:func:`~softnce_theory.losses.sincere.supcon_loss`, :func:`~...sincere_loss`) with
``normalize=False``, ``reduction="none"`` and the anchor at :math:`z_i=e_1`, where
:math:`\partial\ell_i/\partial z_k = (\partial\ell_i/\partial s_{ik})\,z_i/\tau` recovers the
similarity gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from softnce_theory.plots._core import MARKERS, PALETTE, Figure, figure

S_C, S_O, S_N = 3.0, 0.0, 0.0
TAU = 0.5
M_NEG = 50  # panel (a)
M_NEG_SWEEP = (5, 50, 500)  # panel (b)
SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


def closed_forms(m: np.ndarray, z_n: float) -> dict[str, np.ndarray]:
    """The three closed-form gradients on the closest positive, ``m = |P|`` (real)."""
    ec, eo = np.exp(S_C), np.exp(S_O)
    p_c = ec / (ec + (m - 1) * eo + z_n)
    x_c = ec / (ec + (m - 1) * eo)
    return {
        "out": p_c - 1 / m,
        "in": p_c - x_c,
        "sincere": (ec / (ec + z_n) - 1) / m,
    }


def threshold(z_n: float) -> float:
    """|P| above which SupCon L_out repels the closest positive."""
    return 1 + z_n / (np.exp(S_C) - np.exp(S_O))


def autograd_grads(m_pos: int, m_neg: int) -> dict[str, float]:
    """d l_0 / d s_{0c} from the production losses by autograd (float64)."""
    import torch

    from softnce_theory.losses.sincere import sincere_loss, supcon_loss

    n = 1 + m_pos + m_neg
    logits = [S_C] + [S_O] * (m_pos - 1) + [S_N] * m_neg
    emb = torch.zeros((n, 2), dtype=torch.float64)
    emb[0, 0] = 1.0  # anchor z_i = e_1
    emb[1:, 0] = torch.tensor(logits, dtype=torch.float64) * TAU  # s_ik = z_k[0] / tau
    emb[1:, 1] = 1.0  # keep the other rows apart (irrelevant to anchor 0's loss)
    labels = torch.tensor([0] * (1 + m_pos) + [1] * m_neg)
    out: dict[str, float] = {}
    for key in ("out", "in", "sincere"):
        z = emb.clone().requires_grad_(True)
        if key == "sincere":
            rows = sincere_loss(z, labels, temperature=TAU, normalize=False, reduction="none")
        else:
            rows = supcon_loss(
                z,
                labels,
                temperature=TAU,
                variant="out" if key == "out" else "in",
                normalize=False,
                reduction="none",
            )
        (g,) = torch.autograd.grad(rows[0], z)
        out[key] = float(g[1, 0]) * TAU  # row 1 is the closest positive
    return out


def compute(quick: bool, seed: int) -> dict[str, Any]:
    del quick, seed  # deterministic and cheap
    m_line = np.exp(np.linspace(0, np.log(SIZES[-1]), 200))
    lines = {k: v.tolist() for k, v in closed_forms(m_line, M_NEG * np.exp(S_N)).items()}
    points: dict[str, list[float]] = {"out": [], "in": [], "sincere": []}
    for m in SIZES:
        g = autograd_grads(m, M_NEG)
        for k in points:
            points[k].append(g[k])
    sweep = []
    for m_neg in M_NEG_SWEEP:
        z_n = m_neg * float(np.exp(S_N))
        sweep.append(
            {
                "m_neg": m_neg,
                "z_n": z_n,
                "threshold": threshold(z_n),
                "line_out": closed_forms(m_line, z_n)["out"].tolist(),
                "points_out": [autograd_grads(m, m_neg)["out"] for m in SIZES],
            }
        )
    return {
        "setting": {"s_c": S_C, "s_o": S_O, "s_n": S_N, "tau": TAU, "m_neg": M_NEG},
        "m_line": m_line.tolist(),
        "lines": lines,
        "sizes": list(SIZES),
        "autograd": points,
        "threshold": threshold(M_NEG * float(np.exp(S_N))),
        "sweep": sweep,
    }


LABELS = {
    "out": r"SupCon $\mathcal{L}_{out}$",
    "in": r"SupCon $\mathcal{L}_{in}$",
    "sincere": "SINCERE",
}


def _top(data: dict[str, Any]) -> float:
    vals = [max(v) for v in data["lines"].values()] + [max(s["line_out"]) for s in data["sweep"]]
    return max(vals) + 0.2


def _repel_shading(ax: Any) -> None:
    ax.axhline(0, color="0.3", lw=0.8)
    lo, hi = ax.get_ylim()
    ax.axhspan(0, hi, color="#D55E00", alpha=0.06, lw=0)
    ax.text(
        0.02,
        0.97,
        "> 0: repelled (descent lowers $s_{ic}$)",
        transform=ax.transAxes,
        va="top",
        fontsize=7,
        color="#B34700",
    )
    ax.set_ylim(lo, hi)


def render(data: dict[str, Any], fig: Any) -> None:
    ax1, ax2 = fig.subplots(1, 2)
    m_line = data["m_line"]
    for i, key in enumerate(("out", "in", "sincere")):
        ax1.plot(m_line, data["lines"][key], color=PALETTE[i], lw=1.6, label=LABELS[key])
        ax1.plot(
            data["sizes"],
            data["autograd"][key],
            MARKERS[i],
            color=PALETTE[i],
            ms=4.5,
            mfc="none",
            mew=1.1,
            ls="none",
        )
    ax1.plot([], [], "o", color="0.3", mfc="none", ls="none", label="autograd (production)")
    ax1.axvline(data["threshold"], color="0.5", ls=":", lw=1)
    ax1.text(
        data["threshold"] * 1.08,
        0.36,
        "SupCon $\\mathcal{L}_{out}$ repels for\n"
        rf"$|P|>1+Z_N/(e^{{s_c}}-e^{{s_o}})={data['threshold']:.2f}$",
        fontsize=7,
        color="0.3",
    )
    s = data["setting"]
    ax1.set_title(
        rf"(a) $s_c={s['s_c']:g}$, other positives at $s_o={s['s_o']:g}$, "
        rf"{s['m_neg']} negatives at $s_n={s['s_n']:g}$",
        fontsize=8,
    )
    ax1.set_xscale("log", base=2)
    ax1.set_xlabel(r"number of positives $|P(i)|$")
    ax1.set_ylabel(r"gradient on closest positive $\partial\ell_i/\partial s_{ic}$")
    ax1.set_ylim(-1.05, _top(data))
    _repel_shading(ax1)
    ax1.legend(loc="lower right", fontsize=7, framealpha=0.9)

    for i, sw in enumerate(data["sweep"]):
        c = PALETTE[i + 3]
        ax2.plot(
            m_line,
            sw["line_out"],
            color=c,
            lw=1.6,
            label=rf"$Z_N={sw['z_n']:g}$ ({sw['m_neg']} negatives)",
        )
        ax2.plot(
            data["sizes"],
            sw["points_out"],
            MARKERS[i + 3],
            color=c,
            ms=4.5,
            mfc="none",
            mew=1.1,
            ls="none",
        )
        if sw["threshold"] <= m_line[-1]:
            ax2.axvline(sw["threshold"], color=c, ls=":", lw=1)
    ax2.set_xscale("log", base=2)
    ax2.set_xlabel(r"number of positives $|P(i)|$")
    ax2.set_ylabel(r"SupCon $\mathcal{L}_{out}$: $\partial\ell_i/\partial s_{ic}=P_{ic}-1/|P|$")
    ax2.set_title("(b) more negative mass delays the onset (dotted: threshold)", fontsize=8)
    ax2.set_ylim(-1.05, _top(data))
    _repel_shading(ax2)
    ax2.legend(loc="lower right", fontsize=7, framealpha=0.9)


FIGURE = figure(
    Figure(
        name="supcon_repulsion",
        title="Same-class repulsion: SupCon vs SINCERE",
        claims=(
            "sincere.supcon_out_gradient",
            "sincere.supcon_in_gradient_nonpositive",
            "sincere.no_same_class_repulsion",
            "sincere.supcon_repulsion_grows_with_positives",
        ),
        compute=compute,
        render=render,
        caption=(
            "Lines: closed-form logit gradients; markers: autograd of the production losses "
            "(normalize=False, anchor z_i = e_1). Positive gradient = the closest same-class "
            "sample is pushed away."
        ),
        size=(9.0, 3.8),
    )
)
