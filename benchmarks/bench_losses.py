#!/usr/bin/env python
"""Benchmark the tiled losses: a thin script around :mod:`softnce_theory.bench.losses` (the code
ships with the package, so that ``softnce bench`` works from a wheel).

Usage (the same as ``softnce bench [--quick] [--json FILE] [--md FILE] -- [more options]``)::

    python benchmarks/bench_losses.py [--quick] [--json FILE] [--md FILE]
    python benchmarks/bench_losses.py --dispatch      # measure the dense/tiled crossover
    python benchmarks/bench_losses.py --equivalence   # tiled vs dense error table
    python benchmarks/bench_losses.py --help          # every option
"""

from __future__ import annotations

import sys

# _PeakMeter is re-exported for benchmarks/bench_distributed.py (``from bench_losses import
# _PeakMeter``)
from softnce_theory.bench.losses import _PeakMeter, main

__all__ = ["_PeakMeter", "main"]

if __name__ == "__main__":
    try:
        sys.exit(main(prog="bench_losses.py"))
    except ValueError as exc:  # a bad option value: one line, exit 2 (as argparse does)
        print(f"bench_losses.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
