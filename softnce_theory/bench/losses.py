"""Benchmark the tiled losses against our dense path, the peer libraries and the N x M x C
materialisation of soft-target InfoNCE: forward+backward time, peak memory, loss agreement, and a
scaling table.

Part of the installed package, so that ``softnce bench`` works from a wheel in any directory::

    softnce bench [--quick] [--json FILE] [--md FILE] [-- more options, see 'softnce bench -- -h']
    python benchmarks/bench_losses.py [options]          # the same, from a source checkout
    python benchmarks/bench_losses.py --dispatch         # measure the dense/tiled crossover

Families: the tiled kernels the family registry declares (``registry().tiled()``); :data:`IMPLS`
says which implementations are measured for each. Peer libraries (pytorch-metric-learning,
info-nce-pytorch) are optional: a missing one is reported as ``unavailable`` with the install
command, never an error. Every JSON result carries ``"schema": "softnce-theory/bench/1"`` and a
``"mode"`` (``compare``, ``roofline``, ``dispatch`` or ``equivalence``); see
``softnce_theory/schemas/bench-1.json``.

Method
------
* Every case (family x implementation x size) runs in a **fresh subprocess**, so no case inherits
  another's allocator state or lazily initialised buffers.
* **Time**: ``repeats`` forward+backward passes (``loss.backward()`` included) after one warm-up
  pass on a tiny batch of the same implementation; wall clock (``perf_counter``) and process CPU
  time are recorded, the table reports the minimum wall time (the most robust statistic on a
  shared machine) and the JSON also holds the median.
* **Peak memory** (CPU): the subprocess runs with a fixed glibc ``M_MMAP_THRESHOLD`` (128 KiB), so
  every large buffer is ``mmap``-ed and returned to the OS on ``free``; it resets the kernel's
  high-water mark (``echo 5 > /proc/self/clear_refs``), records ``VmRSS`` after building the
  inputs, runs one forward+backward pass and reads ``VmHWM``. Peak memory = ``VmHWM - VmRSS``:
  everything the loss allocated on top of its inputs (intermediates, saved tensors, gradients).
  Where ``clear_refs`` cannot be written it falls back to the ``ru_maxrss`` delta. On CUDA it uses
  ``torch.cuda.max_memory_allocated``.
* **Agreement**: the relative difference between each implementation's loss and the tiled loss on
  identical inputs (same seed).
* Ratios (time, memory) are taken against the tiled implementation within the same run.
* Cases whose memory, extrapolated (~B^2) from a smaller size of the same implementation, would
  exceed ``--mem-cap-gb`` are skipped and reported as such.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

#: the usage name of the parser (``softnce bench`` passes the options after ``--`` to it)
PROG = "softnce bench --"
#: the ``schema`` value of every JSON result (``softnce_theory/schemas/bench-1.json``)
SCHEMA = "softnce-theory/bench/1"

#: implementations benchmarked per tiled kernel (the first is the reference for ratios); its keys
#: are the registry's tiled kernels (``registry().tiled()``; a test checks that they agree)
IMPLS: dict[str, tuple[str, ...]] = {
    "supcon": ("tiled", "dense", "pml"),
    "sincere": ("tiled", "dense", "pml"),
    "infonce": ("tiled", "dense", "info_nce_pytorch"),
    "symmetric_infonce": ("tiled", "dense", "info_nce_pytorch"),
    "esupcon": ("tiled", "dense"),
    "soft_target_infonce": ("tiled", "dense", "materialise"),
}
PEER_NOTES = {
    "pml": "pytorch-metric-learning: SupConLoss (= SupCon L_out) / NTXentLoss with "
    "PerAnchorReducer(AvgNonZeroReducer()) (= SINCERE)",
    "info_nce_pytorch": "info-nce-pytorch info_nce (in-batch negatives; symmetric: mean of both "
    "directions)",
    "materialise": "N x M x C materialisation of the official soft-target InfoNCE, "
    "re-implemented from its description",
}
PEER_INSTALL = {
    "pml": "pip install pytorch-metric-learning",
    "info_nce_pytorch": "pip install info-nce-pytorch",
}

#: kernels whose loss has no similarity GEMM (logits in, not embeddings): not in ``--roofline``
NO_GEMM = frozenset({"soft_target_infonce"})

TEMPERATURE = 0.1
ST_TEMPERATURE = 1.0


def kernels() -> tuple[str, ...]:
    """The tiled kernels the benchmark runs on: those the registry declares
    (``registry().tiled()``) that :data:`IMPLS` knows how to build (:func:`main` reports any
    other, e.g. a plugin's, on stderr and skips it)."""
    from softnce_theory.registry import registry

    return tuple(k for k in registry().tiled() if k in IMPLS)


def _report_unbenchmarked() -> None:
    from softnce_theory.registry import registry

    reg = registry()
    for name in reg.tiled():
        if name not in IMPLS:
            origin = reg.origin(reg.owner("tiled", name).name)
            print(
                f"bench: tiled kernel {name!r} ({origin}) has no benchmark implementation; skipped",
                file=sys.stderr,
            )


def _check_families(flag: str, names: Sequence[str] | None, known: Sequence[str]) -> None:
    for name in names or ():
        if name not in known:
            raise ValueError(f"{flag} must be one of {tuple(known)}, got {name!r}")


# ============================================================================ worker side


def _status_kib() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, val = line.split(":", 1)
                out[key] = int(val.split()[0])
    return out


class _PeakMeter:
    """Peak bytes allocated on top of the current RSS (see module doc for the method)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.method = ""

    def __enter__(self) -> _PeakMeter:
        import resource

        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            self.method = "torch.cuda.max_memory_allocated"
            return self
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.base = _status_kib()["VmRSS"] * 1024
            self.method = "VmHWM - VmRSS (clear_refs reset)"
        except OSError:
            self.base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self.method = "ru_maxrss delta"
        return self

    def __exit__(self, *exc: object) -> None:
        import resource

        import torch

        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        elif self.method.startswith("VmHWM"):
            self.peak = _status_kib()["VmHWM"] * 1024 - self.base
        else:
            self.peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - self.base


def _dense(module: str, name: str) -> Callable[..., Any]:
    """A production dense loss, forced onto the dense path (``tile=0``) when it has ``tile=``."""
    import importlib
    import inspect

    mod = importlib.import_module(f"softnce_theory.losses.{module}")
    fn = getattr(mod, name)
    if "tile" in inspect.signature(fn).parameters:
        return lambda *a, **k: fn(*a, tile=0, **k)
    return fn


def _find_dense(name: str, modules: Sequence[str]) -> Callable[..., Any]:
    errors = []
    for m in modules:
        try:
            return _dense(m, name)
        except (ImportError, AttributeError) as exc:
            errors.append(f"{m}: {exc}")
    raise ImportError(f"dense {name} not available ({'; '.join(errors)})")


def make_inputs(spec: dict[str, Any]) -> dict[str, Any]:
    """Seeded inputs for one case (identical across implementations)."""
    import torch

    g = torch.Generator().manual_seed(spec.get("seed", 0))
    dev = spec.get("device", "cpu")
    dtype = getattr(torch, spec.get("dtype", "float32"))
    fam, b, d = spec["family"], spec["B"], spec.get("D", 128)

    def leaf(x: torch.Tensor) -> torch.Tensor:
        return x.to(device=dev, dtype=dtype).requires_grad_()

    if fam in ("supcon", "sincere", "esupcon"):
        per = spec.get("per_class", 8)
        k = max(1, b // per)
        labels = (torch.arange(b) % k)[torch.randperm(b, generator=g)]
        out = {"embeddings": leaf(torch.randn(b, d, generator=g)), "labels": labels.to(dev)}
        if fam == "esupcon":
            out["prototypes"] = leaf(torch.randn(k, d, generator=g))
        return out
    if fam in ("infonce", "symmetric_infonce"):
        q = torch.randn(b, d, generator=g)
        return {"query": leaf(q), "key": leaf(q + 0.5 * torch.randn(b, d, generator=g))}
    # soft-target InfoNCE: N = M = B rows, C classes, mixup targets (partner flip(0), uniform
    # weight) with label smoothing 0.1, noise = smoothed empirical class prior
    c = spec.get("C", 1000)
    y1 = torch.randint(0, c, (b,), generator=g)
    lam = torch.rand(b, 1, generator=g, dtype=torch.float64)  # mixup weight
    eye = torch.eye(c, dtype=torch.float64)
    t = lam * eye[y1] + (1 - lam) * eye[y1.flip(0)]
    t = 0.9 * t + 0.1 / c
    t = t / t.sum(1, keepdim=True)
    prior = torch.bincount(y1, minlength=c).double() + 1.0
    return {
        "logits": leaf(2.0 * torch.randn(b, c, generator=g)),
        "targets": t.to(device=dev, dtype=dtype),
        "noise_probs": (prior / prior.sum()).to(device=dev, dtype=dtype),
    }


def _materialise_st(logits: Any, targets: Any, noise_probs: Any, temperature: float) -> Any:
    """Soft-target InfoNCE the way the official code computes it (research note §1.3), written
    from that description: the candidate targets are tiled into an ``(N, M, C)`` tensor with
    ``repeat``, multiplied by the broadcast corrected logits and summed over classes; then the
    row maximum is subtracted and cross-entropy against the own index is taken."""
    import torch
    import torch.nn.functional as F

    n, c = logits.shape
    m = targets.shape[0]
    g = logits / temperature - torch.log(noise_probs)[None, :]
    w = targets.repeat(n, 1).reshape(n, m, c)
    scores = (g.unsqueeze(1) * w).sum(-1)
    scores = scores - scores.max(dim=1, keepdim=True).values.detach()
    return F.cross_entropy(scores, torch.arange(n, device=logits.device))


def build(spec: dict[str, Any], x: dict[str, Any]) -> Callable[[], Any]:
    """A closure computing the loss for one implementation (raises ImportError if unavailable)."""
    from softnce_theory.losses import tiled

    fam, impl = spec["family"], spec["impl"]
    tau, tile = spec.get("temperature", TEMPERATURE), spec.get("tile")
    if fam in ("supcon", "sincere"):
        e, y = x["embeddings"], x["labels"]
        if impl == "tiled":
            ft: Callable[..., Any] = (
                tiled.tiled_supcon_loss if fam == "supcon" else tiled.tiled_sincere_loss
            )
            return lambda: ft(e, y, temperature=tau, tile=tile)
        if impl == "dense":
            fd = _find_dense(f"{fam}_loss", ("sincere", "supcon"))
            return lambda: fd(e, y, temperature=tau)
        try:
            from pytorch_metric_learning import losses, reducers
        except ImportError as exc:
            raise ImportError(f"pytorch-metric-learning is not installed ({exc})") from None
        if fam == "supcon":
            peer = losses.SupConLoss(temperature=tau)
        else:
            peer = losses.NTXentLoss(
                temperature=tau, reducer=reducers.PerAnchorReducer(reducers.AvgNonZeroReducer())
            )
        return lambda: peer(e, y)
    if fam == "esupcon":
        e, y, w = x["embeddings"], x["labels"], x["prototypes"]
        if impl == "tiled":
            return lambda: tiled.tiled_esupcon_loss(e, y, w, temperature=tau, tile=tile)
        fe = _find_dense("esupcon_loss", ("aljundi",))
        return lambda: fe(e, y, w, temperature=tau)
    if fam in ("infonce", "symmetric_infonce"):
        q, k = x["query"], x["key"]
        sym = fam == "symmetric_infonce"
        if impl == "tiled":
            fq: Callable[..., Any] = tiled.tiled_symmetric_info_nce if sym else tiled.tiled_info_nce
            return lambda: fq(q, k, temperature=tau, tile=tile)
        if impl == "dense":
            fqd = _find_dense("symmetric_info_nce" if sym else "info_nce", ("infonce",))
            return lambda: fqd(q, k, temperature=tau)
        try:
            from info_nce import info_nce
        except ImportError as exc:
            raise ImportError(f"info-nce-pytorch is not installed ({exc})") from None
        if sym:
            return lambda: 0.5 * (info_nce(q, k, temperature=tau) + info_nce(k, q, temperature=tau))
        return lambda: info_nce(q, k, temperature=tau)
    # soft-target InfoNCE
    lg, tg, qn = x["logits"], x["targets"], x["noise_probs"]
    st_tau = spec.get("st_temperature", ST_TEMPERATURE)
    if impl == "tiled":
        return lambda: tiled.tiled_soft_target_info_nce(lg, tg, qn, temperature=st_tau, tile=tile)
    if impl == "dense":
        f = _find_dense("soft_target_info_nce", ("soft_target_infonce",))
        return lambda: f(lg, tg, qn, temperature=st_tau)
    return lambda: _materialise_st(lg, tg, qn, st_tau)


def _leaves(x: dict[str, Any]) -> list[Any]:
    return [v for v in x.values() if getattr(v, "requires_grad", False)]


def _step(fn: Callable[[], Any], leaves: list[Any], device: str) -> float:

    for v in leaves:
        v.grad = None
    loss = fn()
    loss.backward()
    _sync(device)
    return float(loss.detach())


def run_case(spec: dict[str, Any]) -> dict[str, Any]:
    """Worker: build inputs, measure peak memory on the first pass, then time ``repeats`` passes."""
    import gc

    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    device = spec.get("device", "cpu")
    res: dict[str, Any] = {"threads": torch.get_num_threads()}
    try:
        tiny = dict(spec, B=min(spec["B"], 64), C=min(spec.get("C", 1000), 16))
        xt = make_inputs(tiny)
        _step(build(tiny, xt), _leaves(xt), device)  # warm the code path and the libraries
        del xt
    except ImportError as exc:
        return {**res, "status": "unavailable", "reason": str(exc)}
    x = make_inputs(spec)
    fn = build(spec, x)
    leaves = _leaves(x)
    gc.collect()
    with _PeakMeter(device) as meter:
        t0 = time.perf_counter()
        loss = _step(fn, leaves, device)
        first = time.perf_counter() - t0
    walls, cpus = [first], []
    for _ in range(max(0, int(spec.get("repeats", 3)) - 1)):
        c0, t0 = time.process_time(), time.perf_counter()
        _step(fn, leaves, device)
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    timed = walls[1:] or walls  # the first pass also pays first-touch page faults
    return {
        **res,
        "status": "ok",
        "loss": loss,
        "time_s": min(timed),
        "time_median_s": statistics.median(timed),
        "time_first_s": first,
        "cpu_s": statistics.median(cpus) if cpus else None,
        "peak_bytes": int(meter.peak),
        "memory_method": meter.method,
        "n_timed": len(timed),
    }


# ============================================================================ parent side


def _worker(spec: dict[str, Any], nice: int, timeout: float) -> dict[str, Any]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    # this file run as a script: its own directory is sys.path[0], never the current directory
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "reason": f"exceeded {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        reason = " | ".join(tail) or f"exit code {proc.returncode}"
        if proc.returncode in (-9, 137):
            reason = "killed (out of memory?)"
        return {"status": "error", "reason": reason}
    return json.loads(lines[-1])


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class Runner:
    """Runs cases in subprocesses, skipping those predicted (from a smaller size) to be too big."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.cap = int(args.mem_cap_gb * 2**30)
        self.seen: dict[tuple[str, str], list[tuple[int, dict[str, Any]]]] = {}

    def predict(self, fam: str, impl: str, b: int) -> tuple[float, float] | None:
        """(peak bytes, seconds per pass) extrapolated from the largest smaller measured size:
        memory ~ B (tiled) or B^2 (others), time ~ B^2."""
        prev = [(n, r) for n, r in self.seen.get((fam, impl), []) if r.get("status") == "ok"]
        prev = [(n, r) for n, r in prev if n <= b]
        if not prev:
            return None
        n, r = max(prev, key=lambda p: p[0])
        expo = 1.0 if impl == "tiled" else 2.0
        # time: only from a size within 4x (small cases are dominated by fixed overheads)
        secs = float(r["time_s"]) * (b / n) ** 2 if 4 * n >= b else 0.0
        return float(r["peak_bytes"]) * (b / n) ** expo, secs

    def run(self, spec: dict[str, Any]) -> dict[str, Any]:
        fam, impl, b = spec["family"], spec["impl"], spec["B"]
        pred = self.predict(fam, impl, b)
        avail = _mem_available()
        limit = min(self.cap, int(0.8 * avail)) if avail else self.cap
        if pred is not None and pred[0] > limit:
            res = {
                "status": "skipped",
                "reason": f"predicted peak {pred[0] / 2**30:.1f} GiB > limit "
                f"{limit / 2**30:.1f} GiB",
            }
        elif pred is not None and pred[1] > self.args.time_cap:
            res = {
                "status": "skipped",
                "reason": f"predicted {pred[1]:.0f} s per pass > --time-cap {self.args.time_cap:g} s",
            }
        elif spec.get("est_bytes") and spec["est_bytes"] > limit:
            res = {
                "status": "skipped",
                "reason": f"estimated peak {spec['est_bytes'] / 2**30:.1f}"
                f" GiB > limit {limit / 2**30:.1f} GiB",
            }
        elif self.args.in_process:
            try:
                res = run_case(spec)
            except Exception as exc:  # report, keep going
                res = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
        else:
            res = _worker(spec, self.args.nice, self.args.timeout)
        res = {**{k: v for k, v in spec.items() if k != "est_bytes"}, **res}
        self.seen.setdefault((fam, impl), []).append((b, res))
        if not self.args.silent:
            _progress(res)
        return res


def _progress(r: dict[str, Any]) -> None:
    size = f"B={r['B']}" + (f" C={r['C']}" if r["family"] == "soft_target_infonce" else "")
    if r["status"] == "ok":
        msg = (
            f"{r['time_s'] * 1e3:9.1f} ms  {r['peak_bytes'] / 2**20:9.1f} MiB  loss={r['loss']:.6g}"
        )
    else:
        msg = f"{r['status']}: {r.get('reason', '')}"
    print(f"  {r['family']:<20} {r['impl']:<17} {size:<14} {msg}", file=sys.stderr, flush=True)


def _spec(fam: str, impl: str, b: int, args: argparse.Namespace, **kw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "family": fam,
        "impl": impl,
        "B": b,
        "D": args.dim,
        "per_class": args.per_class,
        "dtype": "float32",
        "seed": args.seed,
        "repeats": args.repeats if b <= 16384 else 1 if b > 32768 else 2,
        "tile": args.tile,
        "device": _device(args.device),
    }
    if args.threads:
        spec["threads"] = args.threads
    if fam == "soft_target_infonce":
        spec["C"] = args.classes or 1000
    spec.update(kw)
    if fam == "soft_target_infonce" and impl == "materialise":
        # the repeated targets (N x M x C), the product and its gradient, float32
        spec["est_bytes"] = 3 * b * b * spec["C"] * 4
    if fam == "sincere" and impl == "pml":
        # NTXentLoss builds (#positive pairs x #negative pairs) matrices (PML issues #203, #547)
        per = args.per_class
        # measured: 1.80 GiB at B = 256 and 14.6 GiB at B = 512 (8 per class), ~4.2x the raw
        # float32 matrix
        spec["est_bytes"] = int(4.5 * 4 * b * (per - 1) * b * (b - per))
    return spec


def _ratios(rows: list[dict[str, Any]]) -> None:
    """Add time/memory ratios and loss agreement relative to the tiled row of the same case."""
    ref = {(r["family"], r["B"]): r for r in rows if r["impl"] == "tiled" and r["status"] == "ok"}
    for r in rows:
        t = ref.get((r["family"], r["B"]))
        if r["status"] != "ok" or t is None:
            continue
        r["time_vs_tiled"] = r["time_s"] / t["time_s"]
        r["mem_vs_tiled"] = r["peak_bytes"] / max(t["peak_bytes"], 1)
        denom = max(abs(t["loss"]), 1e-30)
        r["rel_diff_vs_tiled"] = abs(r["loss"] - t["loss"]) / denom


def _fit(points: list[tuple[int, float]]) -> float | None:
    pts = [(math.log(b), math.log(v)) for b, v in points if v > 0]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx if sxx else None


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """Sizes: ``--quick`` defaults, else the full ones; explicit options always win."""
    if args.quick:
        return {
            "compare_B": args.batch or 1024,
            "st_B": args.st_batch or 256,
            "st_C": args.classes or 100,
            "scaling": args.scaling or [256, 512, 1024, 2048],
            "big": args.big or None,
        }
    return {
        "compare_B": args.batch or 8192,
        "st_B": args.st_batch or 1024,
        "st_C": args.classes or 1000,
        "scaling": args.scaling or [1024, 2048, 4096, 8192, 16384, 32768, 65536],
        "big": 65536 if args.big is None else args.big,
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    p = plan(args)
    runner = Runner(args)
    families = args.family or list(kernels())
    agreement: list[dict[str, Any]] = []
    if args.agree_batch:
        for fam in families:
            b = max(8, args.agree_batch // 4) if fam == "soft_target_infonce" else args.agree_batch
            for impl in IMPLS[fam]:
                kw = {"C": min(p["st_C"], 100)} if fam == "soft_target_infonce" else {}
                agreement.append(runner.run(_spec(fam, impl, b, args, repeats=1, **kw)))
        _ratios(agreement)
    compare: list[dict[str, Any]] = []
    for fam in families:
        b = p["st_B"] if fam == "soft_target_infonce" else p["compare_B"]
        for impl in IMPLS[fam]:
            kw = {"C": p["st_C"]} if fam == "soft_target_infonce" else {}
            compare.append(runner.run(_spec(fam, impl, b, args, **kw)))
    _ratios(compare)
    scaling: list[dict[str, Any]] = []
    for fam in args.scaling_family:
        if fam not in families:
            continue
        for impl in IMPLS[fam]:
            if impl == "materialise":
                continue
            for b in p["scaling"]:
                scaling.append(runner.run(_spec(fam, impl, b, args)))
    _ratios(scaling)
    big = []
    if p["big"]:
        done = [r for r in scaling if r["family"] == "sincere" and r["impl"] == "tiled"]
        done = [r for r in done if r["B"] == p["big"]]
        big = done or [runner.run(_spec("sincere", "tiled", p["big"], args, repeats=1))]
    exponents = {}
    for fam in args.scaling_family:
        for impl in IMPLS[fam]:
            ok = [
                r
                for r in scaling
                if r["family"] == fam and r["impl"] == impl and r["status"] == "ok"
            ]
            if len(ok) >= 2:
                big_b = [r for r in ok if r["B"] >= 4096] or ok
                exponents[f"{fam}/{impl}"] = {
                    "time": _fit([(r["B"], r["time_s"]) for r in big_b]),
                    "memory": _fit([(r["B"], r["peak_bytes"]) for r in big_b]),
                    "B_range": [min(r["B"] for r in big_b), max(r["B"] for r in big_b)],
                }
    return {
        "schema": SCHEMA,
        "mode": "compare",
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "load_avg_start": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "quick": bool(args.quick),
            "dim": args.dim,
            "per_class": args.per_class,
            "temperature": TEMPERATURE,
            "dtype": "float32",
            "memory_method": (
                "VmHWM - VmRSS after clear_refs reset, in-process (--in-process: smoke runs only, "
                "memory numbers not isolated)"
                if args.in_process
                else "VmHWM - VmRSS after clear_refs reset, fresh subprocess per case, "
                "MALLOC_MMAP_THRESHOLD_=128 KiB"
            ),
            "peers": PEER_NOTES,
            "plan": p,
        },
        "agreement": agreement,
        "compare": compare,
        "scaling": scaling,
        "big": big,
        "exponents": exponents,
    }


# ============================================================================ reporting


def _fmt_t(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 10 else f"{s:.1f} s"


def _fmt_m(b: float) -> str:
    return f"{b / 2**20:.1f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"


def _cell(r: dict[str, Any], key: str) -> str:
    if r["status"] != "ok":
        return r["status"]
    if key == "time":
        return _fmt_t(r["time_s"])
    if key == "mem":
        return _fmt_m(r["peak_bytes"])
    v = r.get(key)
    return "" if v is None else (f"{v:.2e}" if key.startswith("rel") else f"{v:.2f}x")


def _table(rows: list[dict[str, Any]]) -> list[str]:
    out = [
        "| family | impl | size | time (min wall) | CPU time | peak memory | time / tiled | "
        "memory / tiled | loss rel. diff vs tiled |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        size = (
            f"N=M={r['B']}, C={r['C']}" if r["family"] == "soft_target_infonce" else f"B={r['B']}"
        )
        why = f" ({r.get('reason')})" if r["status"] != "ok" else ""
        cpu = _fmt_t(r["cpu_s"]) if r.get("cpu_s") else ""
        out.append(
            f"| {r['family']} | {r['impl']} | {size} | {_cell(r, 'time')}{why} | {cpu} | "
            f"{_cell(r, 'mem')} | {_cell(r, 'time_vs_tiled')} | {_cell(r, 'mem_vs_tiled')} | "
            f"{_cell(r, 'rel_diff_vs_tiled')} |"
        )
    return out


def markdown(data: dict[str, Any]) -> str:
    m = data["meta"]
    out = [
        "# Loss benchmarks: tiled vs dense vs peers",
        "",
        f"{m['date']}, torch {m['torch']}, {m['cpu_count']} CPU cores, float32, D = {m['dim']}, "
        f"~{m['per_class']} samples per class, tau = {m['temperature']}, forward+backward. "
        f"Load average at start: {m['load_avg_start']}.",
        f"Peak memory: {m['memory_method']}. Ratios are against the tiled implementation "
        "measured in the same run (< 1: faster/leaner than tiled).",
        "",
        *([f"Note: {m['note']}.", ""] if m.get("note") else []),
        "## Comparison",
        "",
        *_table(data["compare"]),
    ]
    if data.get("agreement"):
        out += [
            "",
            "## Agreement (small batch, every implementation incl. the slow peers; one pass "
            "each, so the times include first-call overheads)",
            "",
            *_table(data["agreement"]),
        ]
    if data["scaling"]:
        out += [
            "",
            "## Scaling",
            "",
            "| family | impl | B | time | peak memory |",
            "|---|---|---|---|---|",
        ]
        for r in data["scaling"]:
            why = f" ({r.get('reason')})" if r["status"] != "ok" else ""
            out.append(
                f"| {r['family']} | {r['impl']} | {r['B']} | {_cell(r, 'time')}{why} | "
                f"{_cell(r, 'mem')} |"
            )
        out += ["", "Fitted exponents (log-log least squares over B >= 4096 where available):", ""]
        out += ["| family/impl | B range | time ~ B^a | memory ~ B^b |", "|---|---|---|---|"]
        for k, v in data["exponents"].items():
            ta = "" if v["time"] is None else f"{v['time']:.2f}"
            mb = "" if v["memory"] is None else f"{v['memory']:.2f}"
            out.append(f"| {k} | {v['B_range'][0]}-{v['B_range'][1]} | {ta} | {mb} |")
    for r in data["big"]:
        out += [
            "",
            f"SINCERE tiled at B = {r['B']}: {_cell(r, 'time')}, peak {_cell(r, 'mem')} "
            f"({r['status']}{': ' + r.get('reason', '') if r['status'] != 'ok' else ''}).",
        ]
    out += ["", "Peers:", ""] + [f"- `{k}`: {v}" for k, v in m["peers"].items()]
    unavailable = {
        r["impl"]: r.get("reason") for r in data["compare"] if r["status"] == "unavailable"
    }
    for impl, reason in unavailable.items():
        hint = PEER_INSTALL.get(impl)
        out.append(f"- `{impl}` unavailable: {reason}" + (f" (install: `{hint}`)" if hint else ""))
    return "\n".join(out) + "\n"


# ============================================================================ dispatch threshold


def measure_dispatch(args: argparse.Namespace) -> dict[str, Any]:
    """Dense vs tiled crossover, measured in this process with interleaved repeats.

    For each family and batch size the inputs are built once, then the tiled and the dense
    forward+backward alternate for ``--repeats`` rounds (after one warm-up each); the minimum
    wall time of each is compared. Interleaving makes the comparison robust to load that
    drifts on a shared machine. Threshold = the smallest measured B from which the tiled path
    stays faster at every larger measured B.
    """
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = args.dispatch_sizes
    out: dict[str, Any] = {
        "schema": SCHEMA,
        "mode": "dispatch",
        "sizes": sizes,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "families": {},
    }
    for fam in args.family or list(kernels()):
        tiled_s, dense_s = {}, {}
        for b in sizes:
            spec = _spec(fam, "tiled", b, args, C=args.classes or 1000)
            x = make_inputs(spec)
            leaves = _leaves(x)
            fns = {
                "tiled": build(spec, x),
                "dense": build(dict(spec, impl="dense"), x),
            }
            best = {k: math.inf for k in fns}
            for rnd in range(max(1, args.repeats) + 1):  # round 0 = warm-up
                for k, fn in fns.items():
                    t0 = time.perf_counter()
                    _step(fn, leaves, "cpu")
                    if rnd:
                        best[k] = min(best[k], time.perf_counter() - t0)
            tiled_s[b], dense_s[b] = best["tiled"], best["dense"]
            if not args.silent:
                print(
                    f"  {fam:<20} B={b:<6} tiled {best['tiled'] * 1e3:8.1f} ms  "
                    f"dense {best['dense'] * 1e3:8.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
        faster = [b for b in sizes if tiled_s[b] < dense_s[b]]
        thr = next((b for b in sizes if all(x in faster for x in sizes if x >= b)), None)
        out["families"][fam] = {"threshold": thr, "tiled_s": tiled_s, "dense_s": dense_s}
    return out


# ============================================================================ equivalence


def measure_equivalence(args: argparse.Namespace) -> dict[str, Any]:
    """Largest value / gradient errors of the tiled losses against the production dense ones
    over random batches (B = 50..700, tile 16..300, 2..80 classes, D = 32), float64 and float32.
    Value: relative error; gradient: normwise relative error over all differentiable inputs."""
    import numpy as np
    import torch

    from softnce_theory.losses import tiled

    dense = {
        "supcon_out": _find_dense("supcon_loss", ("sincere",)),
        "sincere": _find_dense("sincere_loss", ("sincere",)),
        "esupcon": _find_dense("esupcon_loss", ("aljundi",)),
        "info_nce": _find_dense("info_nce", ("infonce",)),
        "symmetric_info_nce": _find_dense("symmetric_info_nce", ("infonce",)),
        "soft_target_info_nce": _find_dense("soft_target_info_nce", ("soft_target_infonce",)),
    }
    rng = np.random.default_rng(args.seed)
    worst: dict[str, dict[str, list[float]]] = {}
    for dt in (torch.float64, torch.float32):
        for _ in range(args.equivalence_trials):
            for name, (ev, eg) in _equivalence_trial(rng, dt, dense, tiled).items():
                cur = worst.setdefault(name, {}).setdefault(str(dt).split(".")[1], [0.0, 0.0])
                cur[0], cur[1] = max(cur[0], ev), max(cur[1], eg)
    return {
        "schema": SCHEMA,
        "mode": "equivalence",
        "trials": args.equivalence_trials,
        "worst": worst,
    }


def _equivalence_trial(
    rng: Any, dt: Any, dense: dict[str, Callable[..., Any]], tiled: Any
) -> dict[str, tuple[float, float]]:
    """One random batch: (value rel. error, gradient normwise rel. error) per loss."""
    import numpy as np
    import torch

    n, tile = int(rng.integers(50, 700)), int(rng.integers(16, 300))
    k, d, c = int(rng.integers(2, 80)), 32, 50
    kw = {"temperature": float(rng.choice([0.05, 0.1, 0.5]))}

    def t(x: Any) -> Any:
        return torch.as_tensor(x, dtype=dt).requires_grad_()

    e, kk = t(rng.standard_normal((n, d))), t(rng.standard_normal((n, d)))
    w, f = t(rng.standard_normal((k, d))), t(2 * rng.standard_normal((n, c)))
    y = torch.as_tensor(rng.integers(0, k, n))
    tg = torch.as_tensor(rng.dirichlet(np.full(c, 0.3), n))
    tg = (tg / tg.sum(1, keepdim=True)).to(dt)
    q = torch.as_tensor(rng.dirichlet(np.ones(c)))
    q = (q / q.sum()).to(dt)
    cases: dict[str, tuple[Callable[[], Any], Callable[[], Any], list[Any]]] = {
        "supcon_out": (
            lambda: tiled.tiled_supcon_loss(e, y, tile=tile, **kw),
            lambda: dense["supcon_out"](e, y, **kw),
            [e],
        ),
        "supcon_in": (
            lambda: tiled.tiled_supcon_loss(e, y, variant="in", tile=tile, **kw),
            lambda: dense["supcon_out"](e, y, variant="in", **kw),
            [e],
        ),
        "sincere": (
            lambda: tiled.tiled_sincere_loss(e, y, tile=tile, **kw),
            lambda: dense["sincere"](e, y, **kw),
            [e],
        ),
        "esupcon": (
            lambda: tiled.tiled_esupcon_loss(e, y, w, tile=tile, **kw),
            lambda: dense["esupcon"](e, y, w, **kw),
            [e, w],
        ),
        "info_nce": (
            lambda: tiled.tiled_info_nce(e, kk, tile=tile, **kw),
            lambda: dense["info_nce"](e, kk, **kw),
            [e, kk],
        ),
        "symmetric_info_nce": (
            lambda: tiled.tiled_symmetric_info_nce(e, kk, tile=tile, **kw),
            lambda: dense["symmetric_info_nce"](e, kk, **kw),
            [e, kk],
        ),
        "soft_target_info_nce": (
            lambda: tiled.tiled_soft_target_info_nce(f, tg, q, tile=tile),
            lambda: dense["soft_target_info_nce"](f, tg, q),
            [f],
        ),
    }
    out = {}
    for name, (ft, fd, ins) in cases.items():
        a, b = ft(), fd()
        ga, gb = torch.autograd.grad(a, ins), torch.autograd.grad(b, ins)
        ev = float((a.detach().double() - b.detach().double()).abs() / b.detach().abs())
        eg = max(
            float((x.double() - z.double()).norm() / z.double().norm().clamp(min=1e-300))
            for x, z in zip(ga, gb, strict=True)
        )
        out[name] = (ev, eg)
    return out


def equivalence_markdown(data: dict[str, Any]) -> str:
    out = [
        "| loss | float64 value | float64 gradient | float32 value | float32 gradient |",
        "|---|---|---|---|---|",
    ]
    for name, v in data["worst"].items():
        a, b = v["float64"], v["float32"]
        out.append(f"| {name} | {a[0]:.1e} | {a[1]:.1e} | {b[0]:.1e} | {b[1]:.1e} |")
    return "\n".join(out) + "\n"


# ============================================================================ CLI


# ============================================================================ matmul roofline

#: GEMM kernels as the profiler names them (``aten::matmul`` only dispatches to these)
GEMM_OPS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm")


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _best_seconds(fn: Callable[[], Any], device: str, repeats: int) -> float:
    fn()
    _sync(device)
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _matmul_flops(sa: Sequence[int], sb: Sequence[int], device: str, repeats: int) -> float:
    """FLOP/s of ``a @ b`` for random float32 operands of these shapes (best of ``repeats``)."""
    import torch

    a, b = torch.randn(*sa, device=device), torch.randn(*sb, device=device)
    return 2 * math.prod(sa) * sb[-1] / _best_seconds(lambda: a @ b, device, repeats)


def _gemm_operands(key: str, shapes: list[list[int]]) -> tuple[list[int], list[int]] | None:
    """The two matrix operands of a recorded GEMM call (``addmm``/``baddbmm``: the added
    matrix first)."""
    mats = [s for s in shapes if len(s) in (2, 3)]
    if key.startswith(("aten::addmm", "aten::baddbmm")):
        mats = mats[1:]
    return (mats[0], mats[1]) if len(mats) >= 2 else None


def measure_roofline(args: argparse.Namespace) -> dict[str, Any]:
    """Achieved matmul throughput of the tiled losses against the device's own matmul peak.

    * **GEMM inventory**: one forward+backward pass under ``torch.profiler`` with
      ``record_shapes`` lists every GEMM call (``mm``, ``addmm``, the in-place ``addmm_`` of the
      tiled backwards, ``bmm``, ``baddbmm``) and its shapes; FLOPs are counted from the shapes
      (2 m k n; the profiler's own ``with_flops`` leaves in-place ``addmm_`` at 0);
    * **replay**: each distinct GEMM shape is timed alone (contiguous random operands) and
      multiplied by its call count: the time the GEMMs need at these shapes;
    * **peak**: the device's matmul throughput, measured as a square ``n x n`` float32 matmul
      (n = 4096 on CUDA, 2048 on CPU). All matmul timings are best of ``max(repeats, 10)``.
      A fraction above 1 is possible and is reported as measured: small shapes that stay in
      cache can beat the square reference on a CPU;
    * on CUDA additionally the in-situ kernel time of the GEMMs (profiler device time).

    Reported per family: ``gemm_fraction`` = GEMM FLOPs / replayed GEMM time / peak (the goal
    metric "the similarity matmuls reach >= 50 % of the device's measured matmul throughput"),
    ``step_fraction`` = GEMM FLOPs / whole fwd+bwd time / peak (the loss's overall position under
    the matmul roofline) and ``gemm_share`` = replayed GEMM time / step time.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    device = _device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    reps, mm_reps = max(1, args.repeats), max(10, args.repeats)
    n = 4096 if device == "cuda" else 2048
    square = _matmul_flops((n, n), (n, n), device, mm_reps)
    rates: dict[tuple[tuple[int, ...], tuple[int, ...]], float] = {}
    b = args.batch or (8192 if device == "cpu" else 32768)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    rows: list[dict[str, Any]] = []
    for fam in args.family or [k for k in kernels() if k not in NO_GEMM]:
        spec = _spec(fam, "tiled", b, args, device=device)
        x = make_inputs(spec)
        fn, leaves = build(spec, x), _leaves(x)
        _step(fn, leaves, device)
        with profile(activities=acts, record_shapes=True) as prof:
            _step(fn, leaves, device)
        row: dict[str, Any] = {"family": fam, "B": b, "D": args.dim, "gemm_calls": 0}
        flops, t_gemm, t_situ = 0.0, 0.0, 0.0
        shapes: list[dict[str, Any]] = []
        for e in prof.key_averages(group_by_input_shape=True):
            ops = _gemm_operands(e.key, e.input_shapes) if e.key in GEMM_OPS else None
            if ops is None:
                continue
            work = 2 * math.prod(ops[0]) * ops[1][-1]  # 2 (b) m k n
            key = (tuple(ops[0]), tuple(ops[1]))
            if key not in rates:
                rates[key] = _matmul_flops(ops[0], ops[1], device, mm_reps)
            flops += e.count * work
            t_gemm += e.count * work / rates[key]
            t_situ += getattr(e, "self_device_time_total", 0.0) / 1e6
            row["gemm_calls"] += e.count
            shapes.append({"op": e.key, "shapes": ops, "count": e.count, "flops_per_s": rates[key]})
        t_step = _best_seconds(functools.partial(_step, fn, leaves, device), device, reps)
        row.update(gemm_flops=flops, step_seconds=t_step, gemm_seconds_replay=t_gemm)
        row.update(gemm_share=t_gemm / t_step, shapes=shapes)
        if device == "cuda" and t_situ > 0:
            row["gemm_seconds_in_situ"] = t_situ
        rows.append(row)
    peak = square
    for row in rows:
        flops = row["gemm_flops"]
        t_gemm = row["gemm_seconds_replay"]
        row["gemm_fraction"] = flops / t_gemm / peak if t_gemm else None
        row["step_fraction"] = flops / row["step_seconds"] / peak
        if "gemm_seconds_in_situ" in row:
            row["gemm_fraction_in_situ"] = flops / row["gemm_seconds_in_situ"] / peak
        if not args.silent:
            print(
                f"{row['family']}: {flops / 1e9:.1f} GFLOP in {row['gemm_calls']} GEMMs; step "
                f"{row['step_seconds'] * 1e3:.0f} ms; GEMMs at {row['gemm_fraction'] or 0:.0%} "
                "of peak",
                file=sys.stderr,
                flush=True,
            )
    name = torch.cuda.get_device_name() if device == "cuda" else platform.machine()
    return {
        "schema": SCHEMA,
        "mode": "roofline",
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "torch": torch.__version__,
            "device": device,
            "device_name": name,
            "threads": torch.get_num_threads(),
            "dtype": "float32",
            "peak_flops": peak,
            "square_matmul": f"{n}x{n}x{n}",
            "best_replayed_flops": max(rates.values(), default=None),
        },
        "rows": rows,
    }


def roofline_markdown(data: dict[str, Any]) -> str:
    m = data["meta"]
    lines = [
        f"# Matmul roofline of the tiled losses ({m['device']}: {m['device_name']})",
        "",
        f"{m['date']}, torch {m['torch']}, {m['threads']} threads, float32, forward+backward. "
        f"Device matmul throughput (square {m['square_matmul']}, best of 10): "
        f"{m['peak_flops'] / 1e9:.0f} GFLOP/s; fastest replayed GEMM shape: "
        f"{(m['best_replayed_flops'] or 0) / 1e9:.0f} GFLOP/s.",
        "",
        "| family | B | GEMM calls | GFLOP | step time | GEMM time (replayed) | GEMMs vs peak | "
        "whole step vs peak | GEMM share of step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['family']} | {r['B']} | {r['gemm_calls']} | {r['gemm_flops'] / 1e9:.1f} | "
            f"{_fmt_t(r['step_seconds'])} | {_fmt_t(r['gemm_seconds_replay'])} | "
            f"{r['gemm_fraction']:.0%} | {r['step_fraction']:.0%} | {r['gemm_share']:.0%} |"
        )
    return "\n".join(lines) + "\n"


def _device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but torch.cuda.is_available() is False")
    return choice


def _builtin_kernels() -> str:
    """The built-in tiled kernels, for ``--help`` (read from the declarations: no plugin is
    imported to print the help; ``--family`` is checked against the registry when it runs)."""
    from softnce_theory._builtin import BUILTIN

    return ", ".join(k for f in BUILTIN for k in f.tiled)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog or PROG, description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a few minutes at most)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.add_argument("--md", metavar="FILE", help="write the Markdown tables")
    p.add_argument(
        "--family",
        action="append",
        metavar="KERNEL",
        help="only this tiled kernel (repeatable); the registry's tiled kernels: "
        f"{_builtin_kernels()}, plus any a registered family declares",
    )
    p.add_argument(
        "--batch", type=int, default=None, help="comparison batch size (8192; quick: 1024)"
    )
    p.add_argument(
        "--st-batch", type=int, default=None, help="soft-target N = M (1024; quick: 256)"
    )
    p.add_argument("--classes", type=int, default=None, help="soft-target C (1000; quick: 100)")
    p.add_argument("--dim", type=int, default=128, help="embedding dimension (default %(default)s)")
    p.add_argument(
        "--per-class", type=int, default=8, help="samples per class (default %(default)s)"
    )
    p.add_argument(
        "--scaling",
        type=lambda s: [int(x) for x in s.split(",")],
        default=None,
        help="scaling-table batch sizes, comma separated (1024,...,65536; quick: 256,...,2048)",
    )
    p.add_argument(
        "--scaling-family",
        action="append",
        metavar="KERNEL",
        default=None,
        help="tiled kernels in the scaling table (repeatable; default: sincere and supcon)",
    )
    p.add_argument(
        "--big", type=int, default=None, help="SINCERE tiled memory check at B (65536; 0: off)"
    )
    p.add_argument(
        "--repeats", type=int, default=3, help="timed passes per case (default %(default)s)"
    )
    p.add_argument("--tile", type=int, default=None, help="tile edge (default: auto)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mem-cap-gb", type=float, default=12.0, help="skip cases predicted above this")
    p.add_argument("--timeout", type=float, default=1800.0, help="seconds per case")
    p.add_argument(
        "--time-cap", type=float, default=300.0, help="skip cases predicted above this (s/pass)"
    )
    p.add_argument(
        "--agree-batch", type=int, default=256, help="agreement check batch size (0: off)"
    )
    p.add_argument("--nice", type=int, default=10, help="niceness of the worker processes")
    p.add_argument("--silent", action="store_true", help="no progress lines on stderr")
    p.add_argument("--dispatch", action="store_true", help="measure the dense/tiled crossover")
    p.add_argument(
        "--dispatch-sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[256, 512, 1024, 2048, 4096, 8192],
    )
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run the cases in this process (smoke tests; memory numbers less isolated)",
    )
    p.add_argument(
        "--equivalence", action="store_true", help="tiled vs dense error table (random batches)"
    )
    p.add_argument("--equivalence-trials", type=int, default=20)
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where the cases run (auto: CUDA when available; default %(default)s)",
    )
    p.add_argument(
        "--roofline",
        action="store_true",
        help="GEMM throughput of the tiled losses vs the device's measured matmul peak",
    )
    p.add_argument("--worker", metavar="SPEC", help=argparse.SUPPRESS)
    return p


def _strict(x: Any) -> Any:
    """``x`` as strict JSON: non-finite floats become the strings ``"nan"``, ``"inf"``,
    ``"-inf"`` (the toolkit's convention), so that any JSON parser reads the file."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_strict(v) for v in x]
    return x


def _write(args: argparse.Namespace, data: dict[str, Any], md: str | None) -> None:
    if args.json:
        Path(args.json).write_text(json.dumps(_strict(data), indent=2, allow_nan=False) + "\n")
    if args.md and md is not None:
        Path(args.md).write_text(md)


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the benchmark with command-line ``argv``; returns the exit code (1: a case errored).
    A bad option value raises ``ValueError`` naming the option."""
    args = build_parser(prog).parse_args(argv)
    if args.worker:
        print(json.dumps(run_case(json.loads(args.worker))))
        return 0
    _report_unbenchmarked()
    known = kernels()
    _check_families("--family", args.family, known)
    _check_families("--scaling-family", args.scaling_family, known)
    if args.scaling_family is None:
        args.scaling_family = [k for k in ("sincere", "supcon") if k in known]
    _device(args.device)  # --device cuda without CUDA: refused before any work
    if args.equivalence:
        eq = measure_equivalence(args)
        _write(args, eq, equivalence_markdown(eq))
        print(equivalence_markdown(eq))
        return 0
    if args.roofline:
        rf = measure_roofline(args)
        _write(args, rf, roofline_markdown(rf))
        print(roofline_markdown(rf))
        return 0
    if args.dispatch:
        data = measure_dispatch(args)
        _write(args, data, None)
        print(json.dumps(_strict(data), indent=2))
        return 0
    data = run_benchmark(args)
    md = markdown(data)
    _write(args, data, md)
    print(md)
    rows = data["agreement"] + data["compare"] + data["scaling"] + data["big"]
    bad = [r for r in rows if r["status"] == "error"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
