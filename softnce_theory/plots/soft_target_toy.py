r"""A toy problem with genuinely non-categorical labels: which loss recovers :math:`p(y|x)`?

The paper's own toy example (Hugger & Uhlmann 2024) was unavailable to us, so this is a toy of
our own. Inputs :math:`x\sim\mathcal U[-3,3]`, three classes with the known conditional

.. math::
    p(y|x)=\operatorname{softmax}\big(-1.6x,\;1.2-0.6x^2,\;1.6x\big),

and for every input ``ANNOTATORS`` independent annotator votes :math:`y\sim p(y|x)`. The soft
label is the vote histogram :math:`\alpha(x)` (unbiased: :math:`E[\alpha|x]=p(\cdot|x)`); the hard
label is the first vote. A multinomial logistic regression on :math:`(x,x^2)` (9 parameters, so
the truth is realisable) is trained with four production losses:

* hard NLL (``nll_loss``) on the hard labels;
* soft CE (``soft_target_cross_entropy``) on the soft labels;
* hard InfoNCE (``info_nce_hard_labels``, in-batch candidates, noise :math:`q` = class
  frequencies): Ma & Collins' ranking NCE with the :math:`-\log q` correction, consistent for
  :math:`\log p(y|x)` up to a per-input constant (``infonce.ranking_nce_consistency``);
* soft-target InfoNCE (``soft_target_info_nce``, noise :math:`q` = mean soft label), whose
  large-K limit is *not* soft CE (``soft_target_infonce.large_k_soft_below_soft_ce``).

The recovered conditional is :math:`\operatorname{softmax}(f(x)/t)` in every case. Training is
deterministic (fixed seeds, ``torch.use_deterministic_algorithms``, one thread, float64).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from softnce_theory.plots._core import PALETTE, Figure, figure

ANNOTATORS = 5
LOSSES = ("hard_nll", "soft_ce", "hard_infonce", "soft_infonce")
TITLES = {
    "hard_nll": "hard NLL (one vote)",
    "soft_ce": f"soft CE ({ANNOTATORS}-vote histogram)",
    "hard_infonce": "hard InfoNCE, log q corrected",
    "soft_infonce": "soft-target InfoNCE",
}
X_LO, X_HI = -3.0, 3.0


def true_logits(x: np.ndarray) -> np.ndarray:
    return np.stack([-1.6 * x, 1.2 - 0.6 * x**2, 1.6 * x], -1)


def true_conditional(x: np.ndarray) -> np.ndarray:
    z = true_logits(x)
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def make_data(n: int, seed: int) -> dict[str, Any]:
    """Inputs, soft labels (vote histograms) and hard labels (first vote), from NumPy."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(X_LO, X_HI, n)
    p = true_conditional(x)
    cdf = np.cumsum(p, -1)
    u = rng.random((n, ANNOTATORS))
    votes = (u[:, :, None] > cdf[:, None, :]).sum(-1).clip(max=2)  # (n, A) in {0, 1, 2}
    soft = np.stack([(votes == c).mean(1) for c in range(3)], -1)
    return {"x": x, "soft": soft, "hard": votes[:, 0]}


def _features(x: Any) -> Any:
    import torch

    return torch.stack([x, x * x], -1)


def train(
    loss_name: str, data: dict[str, Any], *, seed: int, epochs: int, batch: int
) -> dict[str, Any]:
    """Train the 9-parameter model with one production loss; deterministic."""
    import torch

    from softnce_theory.losses.cross_entropy import nll_loss, soft_target_cross_entropy
    from softnce_theory.losses.soft_target_infonce import (
        info_nce_hard_labels,
        soft_target_info_nce,
    )

    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_threads = torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        x = torch.tensor(data["x"], dtype=torch.float64)
        soft = torch.tensor(data["soft"], dtype=torch.float64)
        hard = torch.tensor(data["hard"], dtype=torch.long)
        q_hard = torch.bincount(hard, minlength=3).to(torch.float64) / hard.numel()
        q_soft = soft.mean(0)
        feats = _features(x)
        model = torch.nn.Linear(2, 3, dtype=torch.float64)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        gen = torch.Generator().manual_seed(seed + 1)
        n = x.numel()
        losses = []
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            tot = 0.0
            for i in range(0, n - batch + 1, batch):
                idx = perm[i : i + batch]
                f = model(feats[idx])
                if loss_name == "hard_nll":
                    loss = nll_loss(f, hard[idx])
                elif loss_name == "soft_ce":
                    loss = soft_target_cross_entropy(f, soft[idx])
                elif loss_name == "hard_infonce":
                    loss = info_nce_hard_labels(f, hard[idx], q_hard)
                else:
                    loss = soft_target_info_nce(f, soft[idx], q_soft)
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += float(loss.detach())
            losses.append(tot / (n // batch))
        return {
            "weight": model.weight.detach().tolist(),
            "bias": model.bias.detach().tolist(),
            "train_loss": losses,
            "q_hard": q_hard.tolist(),
            "q_soft": q_soft.tolist(),
        }
    finally:
        torch.use_deterministic_algorithms(prev_det)
        torch.set_num_threads(prev_threads)


def predict(params: dict[str, Any], x: np.ndarray) -> np.ndarray:
    w = np.array(params["weight"])
    b = np.array(params["bias"])
    z = np.stack([x, x * x], -1) @ w.T + b
    z = z - z.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def mean_kl(p: np.ndarray, q: np.ndarray) -> float:
    return float((p * (np.log(p) - np.log(q))).sum(-1).mean())


def _mean_entropy(p: np.ndarray) -> float:
    safe = np.where(p > 0, p, 1.0)
    return float(-(p * np.log(safe)).sum(-1).mean())


def compute(quick: bool, seed: int) -> dict[str, Any]:
    n, epochs, batch = (4096, 40, 256) if quick else (16384, 60, 512)
    data = make_data(n, seed)
    grid = np.linspace(X_LO, X_HI, 121)
    truth = true_conditional(grid)
    models = {}
    for i, name in enumerate(LOSSES):
        params = train(name, data, seed=seed * 100 + i, epochs=epochs, batch=batch)
        p_hat = predict(params, grid)
        models[name] = {
            "params": params,
            "recovered": p_hat.tolist(),
            "mean_kl": mean_kl(truth, p_hat),
        }
    return {
        "setting": {
            "n": n,
            "epochs": epochs,
            "batch": batch,
            "annotators": ANNOTATORS,
            "optimizer": "Adam(lr=0.05)",
            "temperature": 1.0,
            "data_seed": seed,
        },
        "grid": grid.tolist(),
        "truth": truth.tolist(),
        "models": models,
        "label_entropy_mean": _mean_entropy(data["soft"]),
    }


def render(data: dict[str, Any], fig: Any) -> None:
    from matplotlib.lines import Line2D

    axes = fig.subplots(1, len(LOSSES), sharey=True)
    grid = np.array(data["grid"])
    truth = np.array(data["truth"])
    for j, name in enumerate(LOSSES):
        ax = axes[j]
        m = data["models"][name]
        rec = np.array(m["recovered"])
        for c in range(3):
            ax.plot(grid, truth[:, c], color=PALETTE[c], lw=2.4, alpha=0.35)
            ax.plot(grid, rec[:, c], color=PALETTE[c], lw=1.3, ls="--")
        ax.set_title(f"({'abcd'[j]}) {TITLES[name]}\nmean KL(p‖p̂) = {m['mean_kl']:.1e}", fontsize=8)
        ax.set_xlabel("input $x$")
        ax.set_ylim(0, 1)
        ax.set_xlim(grid[0], grid[-1])
        ax.grid(alpha=0.25)
    axes[0].set_ylabel(r"$p(y=c\,|\,x)$")
    handles = [
        Line2D([], [], color="0.4", lw=2.4, alpha=0.45, label="truth $p(y|x)$"),
        Line2D([], [], color="0.2", lw=1.3, ls="--", label=r"recovered softmax$(f(x)/t)$"),
    ] + [Line2D([], [], color=PALETTE[c], lw=2, label=f"class {c}") for c in range(3)]
    fig.legend(handles=handles, loc="outside upper center", ncol=5, fontsize=7, frameon=False)


FIGURE = figure(
    Figure(
        name="soft_target_toy",
        title="Toy problem with soft labels: recovered conditionals",
        claims=(
            "infonce.ranking_nce_consistency",
            "soft_target_infonce.one_hot_ranking_nce",
            "soft_target_infonce.large_k_soft_below_soft_ce",
            "cross_entropy.soft_ce_gradient",
        ),
        compute=compute,
        render=render,
        caption=(
            "Our own toy (the paper's toy example was unavailable): x ~ U[-3, 3], known p(y|x), "
            "5 annotator votes per input (soft label = vote histogram, hard label = first "
            "vote); multinomial logistic regression on (x, x^2) trained with the production "
            "losses (deterministic, CPU). Thick pale: truth; dashed: softmax of the learned "
            "logits."
        ),
        size=(12.0, 3.7),
    )
)
