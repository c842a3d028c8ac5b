#!/usr/bin/env python3
"""Time `softnce verify` (full and --quick) end to end, as a user runs it.

Each run is a fresh process (imports included). Reports the median of ``--repeat`` runs (wall
clock, the run's own reported seconds, and the CPU seconds of the process and its workers, which
other load on the machine inflates far less than the wall clock) and the per-leg time split from
claims.json (each definition leg counted once, not once per claim that uses it). Usage::

    python3 tasks.py softnce ...            # (environment) then:
    .venv/bin/python benchmarks/bench_verify.py [--repeat 3] [--md docs/verify_timings.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def one_run(quick: bool) -> tuple[float, float, dict]:
    """(wall seconds, CPU seconds of the process and its workers, claims.json)."""
    exe = shutil.which("softnce") or str(Path(sys.executable).with_name("softnce"))
    with tempfile.TemporaryDirectory() as d:
        cmd = [exe, "verify", "--report", d] + (["--quick"] if quick else [])
        cpu0, t0 = _children_cpu(), time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        data = json.loads((Path(d) / "claims.json").read_text())
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
    data["returncode"] = proc.returncode
    return wall, cpu, data


def leg_split(data: dict) -> dict[str, float]:
    out: dict[str, float] = {"symbolic": 0.0, "precise": 0.0, "production": 0.0}
    for c in data["claims"]:
        for leg in c["legs"]:
            if leg["leg"] in out:  # definition legs are shared: counted once below
                out[leg["leg"]] += leg["seconds"]
    out["definition"] = sum(v["seconds"] for v in data.get("definitions", {}).values())
    out["conformance"] = sum(v["seconds"] for v in data["conformance"].values())
    out["lemmas"] = sum(v["seconds"] for v in data.get("lemmas", []))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--md", default=None, help="write a Markdown table here")
    args = ap.parse_args()
    rows = []
    for quick in (False, True):
        walls: list[float] = []
        cpus: list[float] = []
        reported: list[float] = []
        last: dict = {}
        for _ in range(args.repeat):
            w, cpu, last = one_run(quick)
            walls.append(w)
            cpus.append(cpu)
            reported.append(last["seconds"])
        med = statistics.median
        rows.append((quick, med(walls), min(walls), max(walls), med(reported), med(cpus), last))
    lines = [
        f"`softnce verify` wall time, fresh process each run, median of {args.repeat} "
        f"({platform.processor() or platform.machine()}, {platform.python_version()}; "
        "leg columns: seconds summed over the workers):",
        "",
        "| mode | claims | median s | min s | max s | reported s | CPU s | symbolic s | "
        "definition s | precise s | production s | conformance s | lemmas s | exit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for quick, wmed, lo, hi, rep, cpu, data in rows:
        s = leg_split(data)
        lines.append(
            f"| {'--quick' if quick else 'full'} | {len(data['claims'])} | {wmed:.1f} | {lo:.1f} | "
            f"{hi:.1f} | {rep:.1f} | {cpu:.1f} | {s['symbolic']:.1f} | {s['definition']:.1f} | "
            f"{s['precise']:.1f} | {s['production']:.1f} | {s['conformance']:.1f} | "
            f"{s['lemmas']:.1f} | {data['returncode']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        Path(args.md).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
