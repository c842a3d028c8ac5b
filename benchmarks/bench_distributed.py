#!/usr/bin/env python
"""Distributed tiled SINCERE on W gloo ranks against the single-process tiled loss: peak memory
per rank and forward+backward time.

Usage::

    python benchmarks/bench_distributed.py [--batch 65536] [--dim 32] [--worlds 1 2 4]
                                           [--tile 512] [--json FILE] [--md FILE]

Method
------
* Every world size runs in a **fresh subprocess** (the driver re-runs this script with
  ``--run W``), with glibc's ``MALLOC_MMAP_THRESHOLD_`` at 128 KiB so that large buffers are
  ``mmap``-ed and returned on ``free``. ``W = 1`` is the single-process tiled
  :func:`softnce_theory.losses.sincere.sincere_loss`; ``W > 1`` forks W ranks (one initialised
  gloo group, :func:`softnce_theory.testing.distributed.run_ranks`) running
  :func:`softnce_theory.losses.distributed.sincere_loss` on their shards.
* **Memory** per rank (CPU): ``benchmarks/bench_losses.py``'s meter: the kernel's high-water
  mark is reset (``/proc/self/clear_refs``), ``VmRSS`` is read after the rank built its shard
  (generated chunk by chunk, so no rank ever holds the whole batch), one forward+backward pass
  runs, and the peak is ``VmHWM - VmRSS``: what the loss allocated on top of its inputs
  (the gathered batch, tiles, saved statistics, gradients, the collectives' buffers). Where
  ``clear_refs`` is not writable: the ``ru_maxrss`` delta. Absolute ``ru_maxrss`` is reported
  as well (it includes the Python/torch runtime, ~0.3-0.4 GB).
* **Time**: wall clock of one forward+backward pass between two barriers, the maximum over
  ranks (what a training step waits for); one tiny warm-up pass first.
* Threads: the single process uses ``--threads`` intra-op threads (default: all cores); each
  rank uses one (W ranks share the machine). On the reference 2-core machine W = 4 therefore
  oversubscribes the cores 2x: its time measures correctness at scale, not a speed-up.
* **Agreement**: the mean over ranks of the distributed values against the single-process value
  (float32, relative).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHUNK = 1024


def _shard(batch: int, dim: int, lo: int, hi: int, seed: int) -> tuple[Any, Any]:
    """Rows ``[lo, hi)`` of the global batch, generated chunk by chunk (deterministic), so a rank
    builds only its shard; ~8 samples per class."""
    import torch

    xs, ys = [], []
    classes = max(2, batch // 8)
    for c0 in range(lo - lo % CHUNK, hi, CHUNK):
        g = torch.Generator().manual_seed(seed * 1_000_003 + c0)
        x = torch.randn(CHUNK, dim, generator=g)
        y = torch.randint(0, classes, (CHUNK,), generator=g)
        a, b = max(lo, c0) - c0, min(hi, c0 + CHUNK) - c0
        xs.append(x[a:b])
        ys.append(y[a:b])
    return torch.cat(xs).contiguous(), torch.cat(ys)


def _pass(fn: Any, x: Any, y: Any) -> tuple[float, float, float, str]:
    """One forward+backward pass: (value, seconds, peak bytes, memory method)."""
    import torch.distributed as dist

    sys.path.insert(0, str(HERE))
    from bench_losses import _PeakMeter

    on = dist.is_available() and dist.is_initialized()
    leaf = x.clone().requires_grad_(True)
    with _PeakMeter("cpu") as meter:
        if on:
            dist.barrier()
        t0 = time.perf_counter()
        out = fn(leaf, y)
        out.backward()
        if on:
            dist.barrier()
        secs = time.perf_counter() - t0
    del leaf
    return float(out.detach()), secs, float(meter.peak), meter.method


def _rank_job(rank: int, world: int, cfg: dict[str, Any]) -> dict[str, Any]:
    import resource

    from softnce_theory.losses import distributed as dl

    b, d, tile = cfg["batch"], cfg["dim"], cfg["tile"]
    lo, hi = rank * b // world, (rank + 1) * b // world

    def fn(x: Any, y: Any) -> Any:
        return dl.sincere_loss(x, y, temperature=0.1, tile=tile)

    wx, wy = _shard(64 * world, d, rank * 64, rank * 64 + 64, 1)  # warm-up, tiny
    fn(wx.requires_grad_(True), wy).backward()
    x, y = _shard(b, d, lo, hi, 0)
    value, secs, peak, method = _pass(fn, x, y)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rank": rank, "value": value, "seconds": secs, "peak_bytes": peak,
            "ru_maxrss_bytes": maxrss, "memory_method": method, "rows": hi - lo}  # fmt: skip


def run_one(world: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """One configuration, in this (fresh) process."""
    import resource

    import torch

    if world == 1:
        from softnce_theory.losses import sincere as sl

        torch.set_num_threads(cfg["threads"])

        def fn(x: Any, y: Any) -> Any:
            return sl.sincere_loss(x, y, temperature=0.1, tile=cfg["tile"])

        wx, wy = _shard(64, cfg["dim"], 0, 64, 1)
        fn(wx.requires_grad_(True), wy).backward()
        x, y = _shard(cfg["batch"], cfg["dim"], 0, cfg["batch"], 0)
        value, secs, peak, method = _pass(fn, x, y)
        ranks = [{"rank": 0, "value": value, "seconds": secs, "peak_bytes": peak,
                  "ru_maxrss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "memory_method": method, "rows": cfg["batch"]}]  # fmt: skip
    else:
        from softnce_theory.testing.distributed import run_ranks

        ranks = run_ranks(_rank_job, world, cfg, timeout=3600)
    return {
        "world": world,
        "value": sum(r["value"] for r in ranks) / world,
        "seconds": max(r["seconds"] for r in ranks),
        "peak_bytes_max": max(r["peak_bytes"] for r in ranks),
        "ru_maxrss_max": max(r["ru_maxrss_bytes"] for r in ranks),
        "ranks": ranks,
    }


def _mib(x: float) -> str:
    return f"{x / 2**20:,.1f}"


def markdown(res: dict[str, Any]) -> str:
    cfg, rows = res["config"], res["runs"]
    base = rows[0]
    b, d = cfg["batch"], cfg["dim"]
    lines = [
        f"SINCERE, global B = {b}, D = {d}, float32, tile = {cfg['tile']}, "
        f"{res['machine']} ({res['cores']} cores), torch {res['torch']}",
        "",
        "| W | rows / rank | peak MiB / rank (max) | x single | ru_maxrss MiB (max) | "
        "fwd+bwd s | x single | value rel. diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rel = abs(r["value"] - base["value"]) / abs(base["value"])
        lines.append(
            f"| {r['world']}{' (single process)' if r['world'] == 1 else ''} | {b // r['world']} | "
            f"{_mib(r['peak_bytes_max'])} | {r['peak_bytes_max'] / base['peak_bytes_max']:.2f} | "
            f"{_mib(r['ru_maxrss_max'])} | {r['seconds']:.1f} | "
            f"{r['seconds'] / base['seconds']:.2f} | {rel:.1e} |"
        )
    lines += [
        "",
        f"memory: {rows[0]['ranks'][0]['memory_method']}; the gathered batch alone is "
        f"B x D x 4 bytes = {_mib(b * d * 4)} MiB per rank. Threads: single process "
        f"{cfg['threads']}, one per rank.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=65536)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--worlds", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--md", type=Path, default=None)
    p.add_argument("--run", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cfg = {"batch": args.batch, "dim": args.dim, "tile": args.tile, "threads": args.threads}
    if args.run is not None:  # worker: one world size, print JSON
        print(json.dumps(run_one(args.run, cfg)))
        return 0
    if 1 not in args.worlds:
        args.worlds = [1, *args.worlds]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    env.setdefault("OMP_NUM_THREADS", str(args.threads))
    runs = []
    for w in sorted(args.worlds):
        cmd = [sys.executable, __file__, "--run", str(w), "--batch", str(args.batch)]
        cmd += ["--dim", str(args.dim), "--tile", str(args.tile), "--threads", str(args.threads)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = runs[-1]
        print(f"W={w}: {r['seconds']:.1f} s, peak {_mib(r['peak_bytes_max'])} MiB/rank", flush=True)
    import torch

    res = {
        "config": cfg,
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "runs": runs,
    }
    md = markdown(res)
    print(md)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    if args.md:
        args.md.write_text(md + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
