"""Benchmarks shipped with the package, so that ``softnce bench`` runs from an installed wheel in
any directory.

* :mod:`softnce_theory.bench.losses`: the tiled losses against the dense path, the peer libraries
  and the N x M x C materialisation of soft-target InfoNCE (time, peak memory, agreement,
  scaling; ``--roofline``, ``--dispatch``, ``--equivalence``). ``benchmarks/bench_losses.py`` of
  the source checkout is a thin script around it.

Nothing here is imported by the losses or the engine; ``torch`` is imported only when a benchmark
runs. See ``docs/performance.md``.
"""
