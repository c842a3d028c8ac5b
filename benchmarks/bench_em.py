#!/usr/bin/env python
"""Collision-CE pseudo-labels: EM vs projected gradient descent (best step from a grid).

For each problem size (N, K) the benchmark draws fixed network posteriors
``sigma = softmax(3 * randn(N, K))`` (float64) and minimises the pseudo-label objective

    F(y) = -1/N sum_i log(sigma_i . y_i) - lam * sum_k u_k log(mean_i y_ik)

(``softnce_theory.losses.collision_ce``; reconstructed, research note ``collision_ce.md`` §3)
with ``em_pseudo_labels`` (SQUAREM-accelerated, the default, and plain EM with
``accelerate=False``) and with ``pgd_pseudo_labels`` for every step in a grid
(``step = c * N``, the gradient scales like 1/N). All start from ``y0 = sigma``.

* Reference optimum ``F*``: the smallest objective any run reaches; it is certified by the
  Frank-Wolfe duality gap of the best iterate (``0 <= F(y) - min F <= gap``), reported.
* "Iterations to tolerance": the first iteration with ``(F_t - F*) / |F*| <= tol``
  (default 1e-6), and the solver steps it cost (``EMResult.work``: E+M steps for EM, two or
  three per accelerated iteration; projected-gradient steps for PGD). Runs are continued in
  chunks (``y0`` = last iterate) until the tolerance is reached, the run stalls or diverges,
  or a time budget is spent.
* "Time to tolerance": a separate, timed run of exactly that many iterations from ``sigma``
  (best of ``--repeats``; its final gap is re-checked against ``tol``), for both EMs and for
  the best PGD step (fewest iterations; ties by time).

Usage::

    python benchmarks/bench_em.py [--quick] [--json FILE] [--md FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

SIZES = ((256, 10), (1024, 100), (4096, 1000))
QUICK_SIZES = ((64, 5), (256, 10))
STEP_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)


def _solvers() -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
    try:
        from softnce_theory.losses.collision_ce import (
            em_pseudo_labels,
            pgd_pseudo_labels,
            pseudo_label_gap,
        )
    except ImportError as exc:
        raise SystemExit(
            "bench_em: softnce_theory.losses.collision_ce does not provide em_pseudo_labels / "
            f"pgd_pseudo_labels / pseudo_label_gap yet ({exc})"
        ) from None
    return em_pseudo_labels, pgd_pseudo_labels, pseudo_label_gap


def make_probs(n: int, k: int, seed: int, scale: float = 3.0) -> Any:
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.softmax(scale * torch.randn(n, k, generator=g, dtype=torch.float64), dim=-1)


def trace(
    solve: Callable[..., Any], probs: Any, budget: float, max_iter: int, chunk: int
) -> dict[str, Any]:
    """Run ``solve(probs, y0=..., max_iter=...)`` in chunks; the full objective history."""
    y = None
    hist: list[float] = []
    work: list[int] = []
    t0 = time.perf_counter()
    status = "budget"
    while True:
        n_call = min(chunk, max_iter - max(len(hist) - 1, 0))
        if n_call <= 0:
            status = "max_iter"
            break
        res = solve(probs, y0=y, max_iter=n_call)
        h = [float(v) for v in res.history]
        w = [int(v) for v in res.work]
        if hist:  # a continued run repeats its start value
            h, w = h[1:], [work[-1] + v - res.work[0] for v in w[1:]]
        hist.extend(h)
        work.extend(w)
        y = res.y
        if res.converged or res.iterations < n_call:
            # converged: stagnation at float precision (tol ~ 0); otherwise a rejected step
            status = "converged" if res.converged else "diverged"
            break
        if time.perf_counter() - t0 > budget:
            break
    return {
        "history": hist,
        "work": work,
        "y": y,
        "status": status,
        "seconds": time.perf_counter() - t0,
    }


def first_hit(history: Sequence[float], f_star: float, tol: float) -> int | None:
    for t, f in enumerate(history):
        if math.isfinite(f) and (f - f_star) / abs(f_star) <= tol:
            return t
    return None


def timed(solve: Callable[..., Any], probs: Any, iters: int, repeats: int) -> tuple[float, float]:
    """Best wall time of ``repeats`` runs of ``iters`` iterations, and the final objective."""
    best, final = math.inf, math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = solve(probs, max_iter=max(iters, 1))
        best = min(best, time.perf_counter() - t0)
        final = float(res.history[-1])
    return best, final


def bench_size(n: int, k: int, args: argparse.Namespace) -> dict[str, Any]:
    em, pgd, fw_gap = _solvers()
    probs = make_probs(n, k, args.seed + n + k, args.logit_scale)
    lam, tiny = args.lam, 1e-300  # tol ~ 0: the chunks stop only on stagnation or divergence

    def em_solve(accelerate: bool) -> Callable[..., Any]:
        def f(p: Any, y0: Any = None, max_iter: int = 1) -> Any:
            return em(p, lam=lam, y0=y0, tol=tiny, max_iter=max_iter, accelerate=accelerate)

        return f

    def pgd_solve(step: float) -> Callable[..., Any]:
        def f(p: Any, y0: Any = None, max_iter: int = 1) -> Any:
            return pgd(p, lam=lam, step=step, y0=y0, tol=tiny, max_iter=max_iter)

        return f

    solvers: dict[str, Callable[..., Any]] = {"em": em_solve(True), "em-plain": em_solve(False)}
    runs: dict[str, dict[str, Any]] = {
        name: trace(solve, probs, args.budget, args.max_iter, args.chunk)
        for name, solve in solvers.items()
    }
    for c in args.steps:
        solvers[f"pgd:{c:g}"] = pgd_solve(c * n)
        runs[f"pgd:{c:g}"] = trace(
            solvers[f"pgd:{c:g}"], probs, args.budget, args.max_iter, args.chunk
        )
    finals = {name: min(f for f in r["history"] if math.isfinite(f)) for name, r in runs.items()}
    best_name = min(finals, key=lambda name: finals[name])
    f_star = finals[best_name]
    best_y = runs[best_name]["y"]
    gap = float(fw_gap(probs, best_y, lam=lam, validate=False))
    out: dict[str, Any] = {
        "N": n,
        "K": k,
        "lam": lam,
        "logit_scale": args.logit_scale,
        "tol": args.tol,
        "f_star": f_star,
        "f_star_from": best_name,
        "fw_gap_at_f_star": gap,
        "fw_gap_rel": gap / abs(f_star),
        "runs": {},
    }
    for name, r in runs.items():
        hit = first_hit(r["history"], f_star, args.tol)
        final_gap = (finals[name] - f_star) / abs(f_star)
        out["runs"][name] = {
            "iterations_to_tol": hit,
            "steps_to_tol": r["work"][hit] if hit is not None else None,
            "iterations_run": len(r["history"]) - 1,
            "status": r["status"],
            "final_rel_gap": final_gap,
            "trace_seconds": r["seconds"],
        }

    def time_run(name: str) -> None:
        x = out["runs"][name]
        secs, final = timed(solvers[name], probs, x["iterations_to_tol"], args.repeats)
        x["seconds_to_tol"] = secs
        x["timed_rel_gap"] = (final - f_star) / abs(f_star)
        x["timed_reached_tol"] = x["timed_rel_gap"] <= args.tol

    for name in ("em", "em-plain"):
        if out["runs"][name]["iterations_to_tol"] is not None:
            time_run(name)
    em_hit = out["runs"]["em"]["steps_to_tol"]
    cands = [
        (r["iterations_to_tol"], name)
        for name, r in out["runs"].items()
        if name.startswith("pgd") and r["iterations_to_tol"] is not None
    ]
    if cands:
        name = min(cands)[1]
        time_run(name)
        out["best_pgd"] = name
    else:
        out["best_pgd"] = None
    out["pgd_grid_seconds"] = sum(
        r["trace_seconds"] for name, r in out["runs"].items() if name.startswith("pgd")
    )
    em_s = out["runs"]["em"].get("seconds_to_tol")
    plain_s = out["runs"]["em-plain"].get("seconds_to_tol")
    pgd_s = out["runs"][out["best_pgd"]].get("seconds_to_tol") if out["best_pgd"] else None
    if em_s and plain_s:
        out["speedup_squarem_vs_plain"] = plain_s / em_s
    if em_s and pgd_s:
        out["speedup_time"] = pgd_s / em_s
        out["speedup_steps"] = out["runs"][out["best_pgd"]]["steps_to_tol"] / max(em_hit or 1, 1)
        if plain_s:
            out["speedup_time_plain"] = pgd_s / plain_s
    elif em_s and not pgd_s:
        # no PGD step reached the tolerance: lower bound from the budget actually spent
        spent = max(r["trace_seconds"] for name, r in out["runs"].items() if name.startswith("pgd"))
        out["speedup_time_lower_bound"] = spent / em_s
        if plain_s:
            out["speedup_time_plain_lower_bound"] = spent / plain_s
    return out


def markdown(data: dict[str, Any]) -> str:
    m = data["meta"]
    lines = [
        "# Collision-CE pseudo-labels: EM vs projected gradient descent",
        "",
        f"{m['date']}, torch {m['torch']}, {m['cpu_count']} CPU cores, float64, "
        f"lambda = {m['lam']}, tolerance: relative objective gap <= {m['tol']:g}; PGD steps "
        f"c * N for c in {list(m['steps'])}, per-run budget {m['budget']:g} s / "
        f"{m['max_iter']} iterations.",
        "",
        f"sigma = softmax({m.get('logit_scale', 3.0):g} * randn(N, K)). Ratios are PGD / EM "
        "(> 1: EM faster). EM time is the SQUAREM-accelerated default; 'plain EM' is accelerate=False.",
        "",
        "| N | K | EM (SQUAREM): iterations / E+M steps / time | plain EM: steps / time | "
        "best PGD step | PGD: steps / time | time PGD / EM | time PGD / plain EM | "
        "FW gap / abs(F*) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["results"]:
        em, plain = r["runs"]["em"], r["runs"]["em-plain"]
        b = r["best_pgd"]
        pg = r["runs"][b] if b else {}

        lines.append(
            f"| {r['N']} | {r['K']} | {em['iterations_to_tol']} / {em['steps_to_tol']} / "
            f"{_fmt(em.get('seconds_to_tol'))} | {plain['steps_to_tol'] or '-'} / "
            f"{_fmt(plain.get('seconds_to_tol'))} | {b.split(':')[1] + ' N' if b else 'none'} | "
            f"{pg.get('steps_to_tol', '-')} / {_fmt(pg.get('seconds_to_tol'))} | "
            f"{_ratio(r, 'speedup_time')} | {_ratio(r, 'speedup_time_plain')} | "
            f"{r['fw_gap_rel']:.1e} |"
        )
    lines += ["", "PGD step grid (iterations to tolerance; status of the run otherwise):", ""]
    steps = [f"pgd:{c:g}" for c in m["steps"]]
    lines.append("| N | K | " + " | ".join(s.split(":")[1] + " N" for s in steps) + " |")
    lines.append("|---|---|" + "---|" * len(steps))
    for r in data["results"]:
        cells = []
        for s in steps:
            x = r["runs"][s]
            cells.append(
                str(x["iterations_to_tol"])
                if x["iterations_to_tol"] is not None
                else f"{x['status']} ({x['iterations_run']} it, gap {x['final_rel_gap']:.0e})"
            )
        lines.append(f"| {r['N']} | {r['K']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _ratio(r: dict[str, Any], key: str) -> str:
    if key in r:
        return f"{r[key]:.1f}x"
    if key + "_lower_bound" in r:
        return f"> {r[key + '_lower_bound']:.1f}x (no step reached tol)"
    return "n/a"


def _fmt(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.1f} s"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench_em", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, short budgets")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--md", metavar="FILE")
    p.add_argument(
        "--sizes",
        type=lambda s: [tuple(int(v) for v in x.split("x")) for x in s.split(",")],
        default=None,
        help="e.g. 256x10,1024x100 (default: 256x10,1024x100,4096x1000)",
    )
    p.add_argument("--lam", type=float, default=1.0, help="fairness weight lambda (default 1)")
    p.add_argument(
        "--logit-scale", type=float, default=3.0, help="sigma = softmax(scale * randn) (default 3)"
    )
    p.add_argument("--tol", type=float, default=1e-6, help="relative objective gap (default 1e-6)")
    p.add_argument(
        "--steps", type=lambda s: [float(x) for x in s.split(",")], default=list(STEP_GRID)
    )
    p.add_argument("--budget", type=float, default=120.0, help="seconds per traced run")
    p.add_argument("--max-iter", type=int, default=20000)
    p.add_argument("--chunk", type=int, default=50, help="iterations per solver call")
    p.add_argument("--repeats", type=int, default=3, help="timed runs (best of)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.sizes or (QUICK_SIZES if args.quick else SIZES)
    if args.quick:
        args.budget, args.max_iter = min(args.budget, 10.0), min(args.max_iter, 3000)
    results = []
    for n, k in sizes:
        r = bench_size(n, k, args)
        results.append(r)
        em = r["runs"]["em"]
        print(
            f"N={n} K={k}: EM {em['iterations_to_tol']} it {_fmt(em.get('seconds_to_tol'))}; "
            f"best PGD {r['best_pgd']}",
            file=sys.stderr,
            flush=True,
        )
    data = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "lam": args.lam,
            "tol": args.tol,
            "steps": args.steps,
            "logit_scale": args.logit_scale,
            "budget": args.budget,
            "max_iter": args.max_iter,
        },
        "results": results,
    }
    md = markdown(data)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    if args.md:
        Path(args.md).write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
