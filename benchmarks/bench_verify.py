#!/usr/bin/env python3
"""Time `softnce verify` (full and --quick) end to end, as a user runs it.

Each run is a fresh process (imports included). Reports the median of ``--repeat`` runs and the
per-leg time split from claims.json. Usage::

    python3 tasks.py softnce ...            # (environment) then:
    .venv/bin/python benchmarks/bench_verify.py [--repeat 3] [--md docs/verify_timings.md]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one_run(quick: bool) -> tuple[float, dict]:
    exe = shutil.which("softnce") or str(Path(sys.executable).with_name("softnce"))
    with tempfile.TemporaryDirectory() as d:
        cmd = [exe, "verify", "--report", d] + (["--quick"] if quick else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        data = json.loads((Path(d) / "claims.json").read_text())
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
    data["returncode"] = proc.returncode
    return wall, data


def leg_split(data: dict) -> dict[str, float]:
    out: dict[str, float] = {"symbolic": 0.0, "precise": 0.0, "production": 0.0, "conformance": 0.0}
    for c in data["claims"]:
        for leg in c["legs"]:
            out[leg["leg"]] += leg["seconds"]
    out["conformance"] = sum(v["seconds"] for v in data["conformance"].values())
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--md", default=None, help="write a Markdown table here")
    args = ap.parse_args()
    rows = []
    for quick in (False, True):
        walls, last = [], {}
        for _ in range(args.repeat):
            w, last = one_run(quick)
            walls.append(w)
        rows.append((quick, statistics.median(walls), min(walls), max(walls), last))
    lines = [
        f"`softnce verify` wall time, fresh process each run, median of {args.repeat} "
        f"({platform.processor() or platform.machine()}, {platform.python_version()}):",
        "",
        "| mode | claims | median s | min s | max s | symbolic s | precise s | production s | conformance s | exit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for quick, med, lo, hi, data in rows:
        s = leg_split(data)
        lines.append(
            f"| {'--quick' if quick else 'full'} | {len(data['claims'])} | {med:.1f} | {lo:.1f} | {hi:.1f} | "
            f"{s['symbolic']:.1f} | {s['precise']:.1f} | {s['production']:.1f} | {s['conformance']:.1f} | "
            f"{data['returncode']} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        Path(args.md).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
