"""``softnce bench``: tiled vs dense vs peer losses (time, peak memory, agreement, scaling).

A thin wrapper around ``benchmarks/bench_losses.py`` of the source checkout (the benchmark is
not part of the installed package). The script is looked up **only** next to this package
(``<repo>/benchmarks``, found from ``__file__``) or in the directory named by the environment
variable ``SOFTNCE_BENCHMARKS`` (an absolute path: an explicit opt-in). Nothing is ever run
from the current directory implicitly; without either, the command fails with a clear message.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from softnce_theory.commands._common import check_output_file, epilog, path_arg

SCRIPT = "bench_losses.py"
#: what exit code 1 means for this command
VERDICT = "a benchmark case errors"


def _locate() -> Path:
    """``bench_losses.py`` from ``$SOFTNCE_BENCHMARKS`` (absolute) or the source checkout this
    package lives in, never from the current directory."""
    env = os.environ.get("SOFTNCE_BENCHMARKS")
    if env:
        d = Path(env)
        if not d.is_absolute():
            raise ValueError(
                f"SOFTNCE_BENCHMARKS must be an absolute path (got {env!r}); nothing is run "
                "relative to the current directory"
            )
        if not (d / SCRIPT).is_file():
            raise ValueError(f"SOFTNCE_BENCHMARKS={env}: no {SCRIPT} there")
        return d / SCRIPT
    here = Path(__file__).resolve().parents[2] / "benchmarks"
    if (here / SCRIPT).is_file():
        return here / SCRIPT
    raise ValueError(
        f"cannot find {SCRIPT}: it ships with the source checkout ({here} does not have it), "
        "not with the installed package; run from a checkout's installation or set "
        "SOFTNCE_BENCHMARKS to the absolute path of its benchmarks directory (the current "
        "directory is never searched)"
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
            "fresh subprocess. Extra options of benchmarks/bench_losses.py can follow '--'. "
            "The script is found next to the package (or via $SOFTNCE_BENCHMARKS), never in "
            "the current directory."
        ),
        epilog=epilog(VERDICT),
    )
    p.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    p.add_argument("--json", metavar="FILE", type=path_arg, help="write the results as JSON")
    p.add_argument("--md", metavar="FILE", type=path_arg, help="write the Markdown tables")
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
    for flag, path in (("--json", args.json), ("--md", args.md)):
        if path:
            check_output_file(path, flag, create_dirs=False)  # before the (long) benchmark
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
