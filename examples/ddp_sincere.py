"""Train a tiny encoder with distributed SINCERE under DDP, and check it against one process.

Run (2 ranks, gloo, CPU)::

    torchrun --standalone --nproc_per_node 2 examples/ddp_sincere.py

Every rank draws the same global batch per step and keeps its shard. The encoder (a linear map
and a learnable temperature, float64) is wrapped in ``DistributedDataParallel``; the loss is
:func:`softnce_theory.losses.distributed.sincere_loss` (local anchors against the gathered
batch, DDP's convention). After ``--steps`` SGD steps rank 0 retrains a copy of the initial
encoder in a single process on the full batches with the single-process
:func:`softnce_theory.losses.sincere.sincere_loss` and compares the parameters: they agree to
rounding (~1e-15; the script fails above ``--tol``, 1e-10). The exit code is 0 on agreement.
"""

from __future__ import annotations

import argparse
import copy
import gc
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from softnce_theory.losses import distributed as dl
from softnce_theory.losses import sincere as sl


class Encoder(nn.Module):
    """A linear encoder with a learnable temperature ``tau = exp(log_tau)``."""

    def __init__(self, d_in: int, d_out: int, tau: float = 0.2) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d_out, dtype=torch.float64)
        self.log_tau = nn.Parameter(torch.tensor(tau, dtype=torch.float64).log())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.proj(x), self.log_tau.exp()


def batch(step: int, size: int, d_in: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The global batch of a step (the same on every rank): class means plus noise."""
    g = torch.Generator().manual_seed(1000 + step)
    means = torch.randn(
        classes, d_in, dtype=torch.float64, generator=torch.Generator().manual_seed(7)
    )
    y = torch.randint(0, classes, (size,), generator=g)
    return means[y] + 0.5 * torch.randn(size, d_in, dtype=torch.float64, generator=g), y


def shard(n: int, rank: int, world: int) -> slice:
    """Rank ``rank``'s rows of a batch of ``n`` (sizes differ by at most one)."""
    lo = rank * n // world
    return slice(lo, (rank + 1) * n // world)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch", type=int, default=64, help="global batch size")
    p.add_argument("--d-in", type=int, default=16)
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--classes", type=int, default=6)
    p.add_argument("--lr", type=float, default=0.5)
    p.add_argument("--tile", type=int, default=None, help="0 dense, k tiled (default: auto)")
    p.add_argument("--tol", type=float, default=1e-10)
    args = p.parse_args(argv)

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(0)
    model = Encoder(args.d_in, args.dim)
    init = copy.deepcopy(model.state_dict())
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=args.lr)
    for step in range(args.steps):
        x, y = batch(step, args.batch, args.d_in, args.classes)
        rows = shard(args.batch, rank, world)
        z, tau = ddp(x[rows])
        loss = dl.sincere_loss(z, y[rows], temperature=tau, tile=args.tile)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total = loss.detach().clone()
        dist.all_reduce(total)  # for printing: the mean over ranks is the global loss
        if rank == 0 and (step % 5 == 0 or step == args.steps - 1):
            print(f"step {step:3d}  loss {float(total) / world:.6f}  tau {float(tau.detach()):.4f}")

    status = 0
    if rank == 0:
        ref = Encoder(args.d_in, args.dim)
        ref.load_state_dict(init)
        ref_opt = torch.optim.SGD(ref.parameters(), lr=args.lr)
        for step in range(args.steps):
            x, y = batch(step, args.batch, args.d_in, args.classes)
            z, tau = ref(x)
            loss = sl.sincere_loss(z, y, temperature=tau, tile=0)
            ref_opt.zero_grad()
            loss.backward()
            ref_opt.step()
        diff = max(
            float((a - b).detach().abs().max())
            for a, b in zip(model.parameters(), ref.parameters(), strict=True)
        )
        ok = diff <= args.tol
        print(
            f"max |DDP - single process| over the parameters: {diff:.3e} ({'OK' if ok else 'FAIL'})"
        )
        status = 0 if ok else 1
    flag = torch.tensor([status])
    dist.broadcast(flag, 0)
    del ddp, opt, loss, z, tau  # DDP's reducer and the graph hold the process group
    gc.collect()  # before destroy_process_group: no gloo thread may outlive it
    dist.destroy_process_group()
    return int(flag)


if __name__ == "__main__":
    sys.exit(main())
