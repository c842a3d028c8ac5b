#!/usr/bin/env python3
"""Benchmark of the Monte Carlo engine (``numerics.montecarlo``). One command::

    python benchmarks/bench_mc.py [--device auto] [--out benchmarks/results] [--quick]

Measures, on one device, and writes ``bench_mc.json`` + ``bench_mc.md`` to ``--out``:

1. **Throughput vs roofline.** The roofline is measured in the same run: fill a float64 buffer
   of ``chunk`` elements with the device's generator (``uniform_``) and exponentiate it in place
   -- the minimal per-negative work (one random number, one ``exp``). Each scenario's engine
   chunk (simulate + float64 moments, exactly what ``run_scenario`` does per chunk) is timed at
   the same chunk size and reported in negatives/s and as a fraction of the roofline. Roofline
   and scenario timings are interleaved and the best of ``--reps`` repetitions is kept. On CPU
   the default is one thread timed in **process CPU time**, which is robust on a machine shared
   with other jobs (wall-clock figures are recorded too); on CUDA, wall time with synchronisation.
   The ``counts`` sampler (exact multinomial counts, O(C) per trial) is reported as *effective*
   negatives/s: it does not touch the negatives one by one.
2. **Variance reduction** of the control variates (plain variance / CV residual variance) at
   K = 10, 100, 1000, 10^4 for the loss bias (and the smallest over the gradient components).
3. **Cost to a 5% relative CI** (95% half-width <= 5% of |bias|) at K = 10^4, with and without
   control variates. Runs for real when the projected time is under ``--budget`` seconds,
   otherwise projects it from a pilot run (n needed = n_pilot (hw/target)^2; time = n x measured
   time per trial) and says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from softnce_theory.numerics.montecarlo import make_config, run_scenario, trials_per_chunk  # noqa: E402
from softnce_theory.numerics.montecarlo._sampling import (  # noqa: E402
    chunk_seed,
    generator,
    resolve_device,
    tune_glibc_malloc,
)
from softnce_theory.numerics.montecarlo.engine import (  # noqa: E402
    DEFAULT_CHUNK_CPU,
    DEFAULT_CHUNK_CUDA,
    _chunk_moments,
)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


class _Clock:
    """Process CPU time (CPU, one thread) or synchronised wall time (CUDA / several threads)."""

    def __init__(self, dev: torch.device) -> None:
        self.dev = dev
        self.cpu_time = dev.type == "cpu" and torch.get_num_threads() == 1

    def now(self) -> float:
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)
        return time.process_time() if self.cpu_time else time.perf_counter()


def roofline_ns(dev: torch.device, n: int, reps: int = 5) -> tuple[float, float]:
    """Best (clock, wall) ns per element of ``uniform_`` + in-place ``exp`` on ``n`` float64s."""
    buf = torch.empty(n, dtype=torch.float64, device=dev)
    g = generator(dev, 1)
    clock = _Clock(dev)
    best, best_wall = math.inf, math.inf
    for _ in range(reps):
        t0, w0 = clock.now(), time.perf_counter()
        buf.uniform_(generator=g)
        torch.exp(buf, out=buf)
        t1 = clock.now()
        best, best_wall = min(best, t1 - t0), min(best_wall, time.perf_counter() - w0)
    return best / n * 1e9, best_wall / n * 1e9


def chunk_ns(
    cfg: Any, k: int, dev: torch.device, chunk: int, reps: int
) -> tuple[float, float, int]:
    """Best (clock, wall) ns per negative of one engine chunk at K, and the trials per chunk."""
    t_per = trials_per_chunk(cfg, k, chunk, 10**12)
    prep = cfg.prepare(k, dev)
    _chunk_moments(cfg, prep, k, 0, t_per, 0, dev)  # warm-up
    clock = _Clock(dev)
    best, best_wall = math.inf, math.inf
    for i in range(reps):
        t0, w0 = clock.now(), time.perf_counter()
        _chunk_moments(cfg, prep, k, 0, t_per, i + 1, dev)
        t1 = clock.now()
        best, best_wall = min(best, t1 - t0), min(best_wall, time.perf_counter() - w0)
    per = t_per * k
    return best / per * 1e9, best_wall / per * 1e9, t_per


THROUGHPUT_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("ranking_nce", {"sampler": "direct"}, 1000),
    ("sampled_softmax", {"sampler": "direct"}, 1000),
    ("log_mean_exp", {}, 1000),
    ("mi_discrete", {"sampler": "direct"}, 1000),
    ("mi_gaussian", {}, 1000),
    ("supcon", {}, 64),
    ("soft_target", {"targets": "mixup"}, 1000),
    ("soft_target", {"targets": "dirichlet"}, 1000),
    ("ranking_nce", {"sampler": "counts"}, 10000),
    ("sampled_softmax", {"sampler": "counts"}, 10000),
]

VR_CASES: list[tuple[str, dict[str, Any], int]] = [
    ("ranking_nce", {"sampler": "counts"}, 20000),
    ("ranking_nce", {"sampler": "counts", "log_q_correction": False}, 20000),
    ("sampled_softmax", {"sampler": "counts"}, 20000),
    ("mi_discrete", {"sampler": "counts"}, 20000),
    ("log_mean_exp", {}, 4000),
    ("mi_gaussian", {}, 4000),
    ("soft_target", {"targets": "mixup"}, 1000),
]


def throughput(
    dev: torch.device, chunk: int, reps: int
) -> tuple[dict[str, float], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    roofs = [roofline_ns(dev, chunk, reps)]
    for name, params, k in THROUGHPUT_CASES:
        cfg = make_config(name, **params)
        ns, wall, t_per = chunk_ns(cfg, k, dev, chunk, reps)
        roofs.append(roofline_ns(dev, chunk, reps))
        rows.append(
            {"scenario": name, "params": params, "k": k, "trials_per_chunk": t_per,
             "ns_per_negative": ns, "wall_ns_per_negative": wall}
        )  # fmt: skip
    roof = {"ns": min(r[0] for r in roofs), "wall_ns": min(r[1] for r in roofs)}
    for r in rows:
        r["negatives_per_s"] = 1e9 / r["ns_per_negative"]
        r["fraction_of_roofline"] = roof["ns"] / r["ns_per_negative"]
        r["effective"] = r["params"].get("sampler") == "counts"
    return roof, rows


def variance_reduction(dev: torch.device, ks: list[int]) -> list[dict[str, Any]]:
    rows = []
    for name, params, n in VR_CASES:
        cfg = make_config(name, **params)
        for k in ks:
            if name == "soft_target" and k > 1000:
                continue
            nn = n if k <= 1000 else max(1000, n // 5)
            res = run_scenario(cfg, ks=[k], seed=11, max_samples=nn, device=dev).results[0]
            loss = res.outputs[0]
            grads = [
                o.variance_reduction for o in res.outputs[1:] if o.variance_reduction is not None
            ]
            rows.append(
                {
                    "scenario": name,
                    "params": params,
                    "k": k,
                    "n": res.n,
                    "vr_loss": loss.variance_reduction,
                    "vr_grad_min": min(grads) if grads else None,
                    "estimate": loss.estimate,
                    "se_cv": loss.se,
                    "se_plain": loss.plain_se,
                }
            )
            print(f"  VR {name} {params} K={k}: loss x{loss.variance_reduction:.3g}", flush=True)
    return rows


def cost_to_target(
    dev: torch.device, name: str, params: dict[str, Any], k: int, rel: float, budget: float
) -> list[dict[str, Any]]:
    cfg = make_config(name, **params)
    rows = []
    for cv in (True, False):
        pilot_n = 2000 if cv else 20000
        t0 = time.perf_counter()
        pilot = run_scenario(cfg, ks=[k], seed=21, max_samples=pilot_n, cv=cv, device=dev).results[
            0
        ]
        pilot_s = time.perf_counter() - t0
        o = pilot.outputs[0]
        hw = 1.959963984540054 * o.se
        need = pilot.n * (hw / (rel * abs(o.estimate))) ** 2 if o.estimate != 0 else math.inf
        per_trial = pilot.seconds / max(pilot.n, 1)
        projected = need * per_trial
        row: dict[str, Any] = {
            "scenario": name,
            "params": params,
            "k": k,
            "cv": cv,
            "target_rel": rel,
        }
        if projected <= budget:
            t0 = time.perf_counter()
            run = run_scenario(
                cfg, ks=[k], seed=22, target_rel=rel, max_samples=10**10, cv=cv, device=dev
            ).results[0]  # the engine's own chunk size
            wall = time.perf_counter() - t0
            oo = run.outputs[0]
            row.update(
                measured=True,
                n=run.n,
                negatives=run.negatives,
                seconds=run.seconds,
                wall_seconds=wall,
                estimate=oo.estimate,
                half_width=1.959963984540054 * oo.se,
                stop_reason=run.stop_reason,
            )
        else:
            row.update(
                measured=False,
                n=math.ceil(need),
                negatives=math.ceil(need) * k,
                seconds=projected,
                pilot_n=pilot.n,
                pilot_seconds=pilot_s,
                estimate=o.estimate,
                half_width=hw,
            )
        rows.append(row)
        what = "measured" if row["measured"] else "projected"
        print(
            f"  cost {name} {params} K={k} cv={cv}: n={row['n']:,} {row['seconds']:.3g} s ({what})",
            flush=True,
        )
    return rows


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"# Monte Carlo benchmark ({doc['device']}, torch {doc['torch']}, {doc['threads']} threads)",
        "",
        f"Roofline (uniform_ + exp, float64, {doc['chunk']:,}-element buffer): "
        f"**{doc['roofline_ns']:.2f} ns/element = {1e9 / doc['roofline_ns']:.3g} /s** "
        f"({doc['clock']}; best wall {doc['roofline_wall_ns']:.2f} ns). "
        f"Load average at start/end: {doc['load_start']} / {doc['load_end']}.",
        "",
        "## Throughput (one engine chunk: simulate + float64 moments)",
        "",
        "| scenario | params | K | trials/chunk | ns/negative | negatives/s | % of roofline | wall ns/neg |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["throughput"]:
        eff = " (effective)" if r["effective"] else ""
        lines.append(
            f"| {r['scenario']} | {_p(r['params'])} | {r['k']} | {r['trials_per_chunk']:,} | "
            f"{r['ns_per_negative']:.2f} | {r['negatives_per_s']:.3g}{eff} | "
            f"{100 * r['fraction_of_roofline']:.0f}% | {r['wall_ns_per_negative']:.2f} |"
        )
    lines += [
        "",
        "## Variance reduction of the control variates (plain var / CV residual var)",
        "",
        "| scenario | params | K | n | VR loss | min VR over grad components |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in doc["variance_reduction"]:
        g = "-" if r["vr_grad_min"] is None else f"{r['vr_grad_min']:.3g}"
        lines.append(
            f"| {r['scenario']} | {_p(r['params'])} | {r['k']} | {r['n']:,} | {r['vr_loss']:.3g} | {g} |"
        )
    lines += [
        "",
        "## Cost to a 5% relative CI on the loss bias",
        "",
        "| scenario | params | K | CV | n | negatives | seconds | how |",
        "|---|---|---:|---|---:|---:|---:|---|",
    ]
    for r in doc["cost"]:
        how = "measured" if r["measured"] else f"projected from a {r['pilot_n']:,}-trial pilot"
        lines.append(
            f"| {r['scenario']} | {_p(r['params'])} | {r['k']} | {'yes' if r['cv'] else 'no'} | "
            f"{r['n']:,} | {r['negatives']:.3g} | {r['seconds']:.3g} | {how} |"
        )
    return "\n".join(lines) + "\n"


def _p(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "default"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--reps", type=int, default=9, help="repetitions per timing (best kept)")
    ap.add_argument("--budget", type=float, default=60.0, help="max seconds for a real cost run")
    ap.add_argument("--quick", action="store_true", help="K <= 1000 for VR, smaller budget")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--chunk", type=int, default=None, help="elements per chunk (engine default)")
    ap.add_argument("--no-tune-malloc", action="store_true", help="keep glibc's malloc defaults")
    args = ap.parse_args(argv)
    dev = resolve_device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(args.threads)
        if not args.no_tune_malloc:
            tune_glibc_malloc()
    chunk = args.chunk or (DEFAULT_CHUNK_CUDA if dev.type == "cuda" else DEFAULT_CHUNK_CPU)
    load0 = _load()
    t0 = time.perf_counter()
    print(f"device {dev}, chunk {chunk:,}, threads {torch.get_num_threads()}", flush=True)
    roof, thr = throughput(dev, chunk, args.reps)
    for r in thr:
        print(f"  {r['scenario']} {r['params']} K={r['k']}: {r['ns_per_negative']:.2f} ns/neg "
              f"({100 * r['fraction_of_roofline']:.0f}% of roofline {roof['ns']:.2f} ns)", flush=True)  # fmt: skip
    ks = [10, 100, 1000] if args.quick else [10, 100, 1000, 10000]
    vr = variance_reduction(dev, ks)
    budget = min(args.budget, 20.0) if args.quick else args.budget
    cost = cost_to_target(dev, "ranking_nce", {"sampler": "direct"}, 10000, 0.05, budget)
    cost += cost_to_target(dev, "ranking_nce", {"sampler": "counts"}, 10000, 0.05, budget)
    cost += cost_to_target(dev, "sampled_softmax", {"sampler": "counts"}, 10000, 0.05, budget)
    doc = {
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "chunk": chunk,
        "clock": "process CPU time, 1 thread" if _Clock(dev).cpu_time else "wall time",
        "malloc_tuned": bool(dev.type == "cpu" and not args.no_tune_malloc),
        "roofline_ns": roof["ns"],
        "roofline_wall_ns": roof["wall_ns"],
        "throughput": thr,
        "variance_reduction": vr,
        "cost": cost,
        "load_start": load0,
        "load_end": _load(),
        "seconds": time.perf_counter() - t0,
        "seed_example": chunk_seed(0, "ranking_nce", 10, 0),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_mc.json").write_text(json.dumps(doc, indent=1))
    (out / "bench_mc.md").write_text(markdown(doc))
    print(markdown(doc))
    print(f"wrote {out / 'bench_mc.json'} and {out / 'bench_mc.md'} in {doc['seconds']:.0f} s")
    return 0


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


if __name__ == "__main__":
    sys.exit(main())
