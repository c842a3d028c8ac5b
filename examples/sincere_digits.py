r"""SINCERE vs SupCon on scikit-learn's digits: a tiny encoder, a learnable temperature, tiles.

What it shows. A small MLP encoder (64 -> 128 -> 32, ReLU, L2-normalised output) is trained on
the 8x8 digits bundled with scikit-learn (``sklearn.datasets.load_digits``: 1797 images, 10
classes, no download) with two augmented views per image (a random shift of up to one pixel
in each direction, zero-filled, plus Gaussian pixel noise). It is trained twice from the same
initial weights, on the same batches and the same augmentations: once with SINCERE
(:func:`softnce_theory.losses.sincere.sincere_loss`) and once with SupCon
:math:`\mathcal L_{out}` (:func:`softnce_theory.losses.sincere.supcon_loss`, ``variant="out"``).
The embeddings of the frozen encoders are then scored by a **linear probe** (standardised
features, scikit-learn's ``LogisticRegression``) fitted on a fixed train split and evaluated on
the held-out test split. Two references are scored by the same probe: the raw pixels and the
untrained encoder.

Along the way it exercises two features of the losses:

* **learnable temperature**: :math:`\tau=\exp(\log\tau)` is an ``nn.Parameter`` passed as a tensor
  to the loss; the script checks after the first backward pass that :math:`\log\tau` received a
  finite, non-zero gradient (exit status 1 otherwise) and reports the learned :math:`\tau`;
* **tiled path**: ``tile=--tile`` (default 64; the ``2 B`` rows of a batch are processed in tiles
  of that edge with O(B * tile) memory). At the first batch the script compares the tiled loss
  with the dense one (``tile=0``) and reports the absolute difference.

Loss formulas (rows :math:`z_i` unit-normalised, :math:`s_{ij}=z_i^\top z_j/\tau`, :math:`P(i)`
the other rows with the label of row :math:`i` -- including the other view of the same image --
and :math:`N(i)` the rows with another label, :math:`A(i)=P(i)\cup N(i)`)::

    SINCERE  l_i = -1/|P(i)| sum_{p in P(i)} log( e^{s_ip} / (e^{s_ip} + sum_{n in N(i)} e^{s_in}) )
    SupCon   l_i = -1/|P(i)| sum_{p in P(i)} log( e^{s_ip} / sum_{a in A(i)} e^{s_ia} )

averaged over the rows. Sources: Feeney & Hughes, "SINCERE: Supervised Information
Noise-Contrastive Estimation REvisited", arXiv 2309.14277 (v4); Khosla et al., "Supervised
Contrastive Learning", arXiv 2004.11362, Eq. 2. SINCERE removes the other positives from each
pair's denominator, so same-class rows no longer repel each other.

Run (needs the ``examples`` extra, ``pip install softnce-theory[examples]``)::

    python examples/sincere_digits.py                      # full run, seed 0 (~5-15 s on a CPU)
    python examples/sincere_digits.py --seed 0 1 2 3 4     # several seeds, with the mean
    python examples/sincere_digits.py --smoke --json       # a few seconds; machine-readable

Everything is deterministic given ``--seed`` (the train/test split uses a fixed seed of its
own, so every seed is scored on the same split). Measured numbers are in
``examples/README.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from softnce_theory.losses.sincere import sincere_loss, supcon_loss

try:
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("this example needs scikit-learn: pip install 'softnce-theory[examples]'")

SPLIT_SEED = 0  # the train/test split is the same for every --seed
TEST_FRACTION = 0.3
LOSSES = {"sincere": sincere_loss, "supcon_out": supcon_loss}


class Encoder(nn.Module):
    """64 -> hidden -> dim MLP with L2-normalised output, and a learnable ``tau = exp(log_tau)``."""

    def __init__(self, hidden: int = 128, dim: int = 32, tau: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, dim))
        self.log_tau = nn.Parameter(torch.tensor(tau).log())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(x), dim=-1)

    def tau(self) -> torch.Tensor:
        return self.log_tau.exp()


def augment(images: torch.Tensor, g: torch.Generator, noise: float = 0.1) -> torch.Tensor:
    """Shift each ``(8, 8)`` image by -1, 0 or +1 pixel per axis (zero fill), add noise."""
    b = images.shape[0]
    padded = nn.functional.pad(images, (1, 1, 1, 1))  # (b, 10, 10)
    dy = torch.randint(0, 3, (b, 1), generator=g)
    dx = torch.randint(0, 3, (b, 1), generator=g)
    rows = (torch.arange(8) + dy)[:, :, None]  # (b, 8, 1)
    cols = (torch.arange(8) + dx)[:, None, :]  # (b, 1, 8)
    out = padded[torch.arange(b)[:, None, None], rows, cols]
    return (out + noise * torch.randn(out.shape, generator=g)).reshape(b, 64)


@dataclass
class Run:
    loss: str
    seed: int
    probe_accuracy: float
    temperature: float
    first_epoch_loss: float
    last_epoch_loss: float
    tiled_vs_dense_abs_diff: float


def probe(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray
) -> float:
    """Test accuracy of a logistic regression fitted on the (standardised) training features."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
    clf.fit(train_x, train_y)
    return float(clf.score(test_x, test_y))


@torch.no_grad()
def embed(model: Encoder, images: torch.Tensor) -> np.ndarray:
    return model(images.reshape(len(images), 64)).numpy()


def train(
    model: Encoder,
    loss_name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    tile: int,
    seed: int,
) -> tuple[list[float], float]:
    """Train ``model`` in place; returns the mean loss per epoch and the first batch's
    ``|tiled - dense|``. Batches and augmentations depend on ``seed`` only."""
    loss_fn = LOSSES[loss_name]
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history: list[float] = []
    diff = float("nan")
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=g)
        total, count = 0.0, 0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            x = images[idx]
            views = torch.stack([model(augment(x, g)), model(augment(x, g))], dim=1)  # (B, 2, D)
            loss = loss_fn(views, labels[idx], temperature=model.tau(), tile=tile)
            if not history and count == 0:
                dense = loss_fn(views, labels[idx], temperature=model.tau(), tile=0)
                diff = abs(float(loss.detach()) - float(dense.detach()))
            opt.zero_grad()
            loss.backward()
            if not history and count == 0:
                grad = model.log_tau.grad
                if grad is None or not torch.isfinite(grad) or float(grad) == 0.0:
                    raise RuntimeError(f"the temperature got no usable gradient: {grad!r}")
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        history.append(total / count)
    return history, diff


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=128, help="images per batch (2 views each)")
    p.add_argument("--seed", type=int, nargs="+", default=[0], help="one or more seeds")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--tile", type=int, default=64, help="tile edge of the loss (0: dense)")
    p.add_argument("--smoke", action="store_true", help="tiny run (2 epochs, tile 16)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = p.parse_args(argv)
    if args.smoke:
        args.epochs, args.tile = 2, 16
    for name in ("epochs", "batch_size", "tile"):
        if getattr(args, name) < (0 if name == "tile" else 1):
            p.error(f"--{name.replace('_', '-')} must be >= {0 if name == 'tile' else 1}")

    torch.set_num_threads(1)  # tiny model: threads cost more than they give
    digits = load_digits()
    x = digits.data.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )
    images = torch.from_numpy(x_tr).reshape(-1, 8, 8)
    labels = torch.from_numpy(y_tr)
    test_images = torch.from_numpy(x_te)

    baselines: dict[str, Any] = {"raw_pixels": probe(x_tr, y_tr, x_te, y_te), "untrained": []}
    runs: list[Run] = []
    for seed in args.seed:
        torch.manual_seed(seed)
        init = Encoder()
        baselines["untrained"].append(
            probe(embed(init, images), y_tr, embed(init, test_images), y_te)
        )
        for name in LOSSES:
            model = copy.deepcopy(init)
            history, diff = train(
                model,
                name,
                images,
                labels,
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                tile=args.tile,
                seed=seed,
            )
            acc = probe(embed(model, images), y_tr, embed(model, test_images), y_te)
            tau = float(model.tau().detach())
            runs.append(Run(name, seed, acc, tau, history[0], history[-1], diff))

    config = {k: v for k, v in vars(args).items() if k != "json"}
    config.update(train_size=len(y_tr), test_size=len(y_te), split_seed=SPLIT_SEED)
    accs = {name: [r.probe_accuracy for r in runs if r.loss == name] for name in LOSSES}
    mean = {name: float(np.mean(a)) for name, a in accs.items()}
    std = {name: float(np.std(a)) for name, a in accs.items()}  # population std over seeds
    if args.json:
        out = {
            "config": config,
            "runs": [asdict(r) for r in runs],
            "mean_probe_accuracy": mean,
            "std_probe_accuracy": std,
            "baselines": baselines,
        }
        print(json.dumps(out, indent=2))
        return 0
    print(
        f"digits: {len(y_tr)} train / {len(y_te)} test images, {args.epochs} epochs, "
        f"batch {args.batch_size} x 2 views, tile {args.tile}"
    )
    print(
        f"{'loss':11s} {'seed':>4s} {'probe acc':>9s} {'tau':>7s} {'loss 1st':>9s} {'loss last':>9s}"
    )
    for r in runs:
        print(
            f"{r.loss:11s} {r.seed:4d} {r.probe_accuracy:9.4f} {r.temperature:7.4f} "
            f"{r.first_epoch_loss:9.4f} {r.last_epoch_loss:9.4f}"
        )
    for name in LOSSES:
        print(f"{name:11s} mean {mean[name]:9.4f} +- {std[name]:.4f} (std) over seeds {args.seed}")
    untrained = float(np.mean(baselines["untrained"]))
    print(f"reference: raw pixels {baselines['raw_pixels']:.4f}, untrained encoder {untrained:.4f}")
    worst = max(r.tiled_vs_dense_abs_diff for r in runs)
    print(f"first batch: |tiled - dense| loss <= {worst:.1e} (float32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
