"""``softnce bench``: tiled vs dense vs peer losses (time, peak memory, agreement, scaling).

A thin wrapper around :mod:`softnce_theory.bench.losses`, which ships with the package: the
command works from an installed wheel, in any directory (nothing is looked up on disk). Options
of the benchmark beyond the ones below follow ``--`` (``softnce bench -- --help`` lists them).
"""

from __future__ import annotations

import argparse
from types import ModuleType
from typing import Any

from softnce_theory.commands._common import check_output_file, epilog, path_arg

#: what exit code 1 means for this command
VERDICT = "a benchmark case errors"


def _load() -> ModuleType:
    """The benchmark module (imported when the command runs, so ``--help`` stays fast)."""
    from softnce_theory.bench import losses

    return losses


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="benchmark the tiled losses against the dense path and peer libraries",
        description=(
            "Forward+backward time and peak memory of the tiled losses (every tiled kernel the "
            "family registry declares), our dense path, pytorch-metric-learning (SupConLoss; "
            "NTXentLoss + PerAnchorReducer = SINCERE), info-nce-pytorch and the N x M x C "
            "materialisation of soft-target InfoNCE; loss agreement and a B = 1k..64k scaling "
            "table. Peers are optional: a missing one is reported as unavailable, with the "
            "command that installs it. Each case runs in a fresh subprocess. More options "
            "(sizes, families, --dispatch, --equivalence, ...) follow '--'; 'softnce bench -- "
            "--help' lists them. The benchmark ships with the package: it runs the same from a "
            "wheel in any directory."
        ),
        epilog=epilog(VERDICT),
    )
    p.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    p.add_argument(
        "--json",
        metavar="FILE",
        type=path_arg,
        help="write the results as JSON (schema softnce-theory/bench/1)",
    )
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
    p.add_argument(
        "extra",
        nargs=argparse.REMAINDER,
        help="after '--': more options of the benchmark ('softnce bench -- --help')",
    )
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
    extra = list(args.extra or [])
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return int(_load().main(argv + extra))
