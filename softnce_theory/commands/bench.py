"""``softnce bench``: tiled vs dense vs peer losses (time, peak memory, agreement, scaling).

A thin wrapper around ``benchmarks/bench_losses.py`` of the source checkout (the benchmark is
not part of the installed package). Set ``SOFTNCE_BENCHMARKS`` to its directory when running
from elsewhere.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

SCRIPT = "bench_losses.py"


def _locate() -> Path:
    env = os.environ.get("SOFTNCE_BENCHMARKS")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "benchmarks", Path.cwd() / "benchmarks"]
    for c in candidates:
        if (c / SCRIPT).is_file():
            return c / SCRIPT
    raise ValueError(
        f"cannot find benchmarks/{SCRIPT} (looked in {', '.join(str(c) for c in candidates)}); "
        "run from a source checkout or set SOFTNCE_BENCHMARKS to the benchmarks directory"
    )


def _load() -> ModuleType:
    path = _locate()
    spec = importlib.util.spec_from_file_location("softnce_bench_losses", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark the tiled losses against the dense path and peer libraries",
        description=(
            "Forward+backward time and peak memory of the tiled losses, our dense path, "
            "pytorch-metric-learning (SupConLoss; NTXentLoss + PerAnchorReducer = SINCERE), "
            "info-nce-pytorch and the N x M x C materialisation of soft-target InfoNCE; loss "
            "agreement and a B = 1k..64k scaling table. Peers are optional. Each case runs in a "
            "fresh subprocess. Extra options of benchmarks/bench_losses.py can follow '--'."
        ),
    )
    p.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--md", metavar="FILE", help="write the Markdown tables")
    p.add_argument(
        "--roofline",
        action="store_true",
        help="instead: GEMM throughput of the tiled losses vs the device's matmul throughput",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the cases run (auto: CUDA when available)",
    )
    p.add_argument("extra", nargs=argparse.REMAINDER, help="options passed to bench_losses.py")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    argv: list[str] = []
    if args.quick:
        argv.append("--quick")
    if args.json:
        argv += ["--json", args.json]
    if args.md:
        argv += ["--md", args.md]
    if args.roofline:
        argv.append("--roofline")
    argv += ["--device", args.device]
    extra = [a for a in (args.extra or []) if a != "--"]
    return int(_load().main(argv + extra))
