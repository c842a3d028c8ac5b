#!/usr/bin/env python
"""Import time of the production losses against ``import torch``.

Every measurement is a **fresh interpreter** (``python -c``) that times its own import statement
with ``time.perf_counter`` (interpreter start-up excluded; the process wall time is reported
too). The statements are **interleaved**: each round runs ``import torch`` first and last and
every loss statement in between (in an order rotated from round to round), so that a slower
phase of a shared machine affects baseline and losses alike. The report gives, per statement,
the median over ``--repeats`` rounds and its ratio to the median of ``import torch``.

Statements (``--form``):

* ``package`` (default): ``from softnce_theory.losses import X`` for every public loss ``X``
  (the names in the ``__all__`` of the family modules and the tiled losses, read from the
  source files with ``ast``), plus ``import softnce_theory.losses.distributed``;
* ``module``: ``from softnce_theory.losses.<family> import X`` (also works on trees whose
  package ``__init__`` does not re-export the losses, e.g. an older checkout via
  ``--pythonpath``).

Goal (issue: fast import): every ratio <= 1.2. ``--check R`` exits with status 1 when a median
ratio exceeds ``R``; the script itself is never run by the tests (timings are not tests).

Usage::

    python benchmarks/bench_import.py [--repeats 5] [--names sincere_loss,info_nce]
        [--form package|module] [--pythonpath DIR] [--json FILE] [--check 1.2]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "import torch"
#: the family modules whose ``__all__`` lists the public losses, and the tiled package
FAMILY_FILES = (
    "aljundi.py",
    "collision_ce.py",
    "cross_entropy.py",
    "infonce.py",
    "sincere.py",
    "soft_target_infonce.py",
    "tiled/__init__.py",
)

#: the child times its statement, then reports where softnce_theory came from (checked)
_TIMER = (
    "import time as _t\n"
    "_s = _t.perf_counter()\n"
    "{stmt}\n"
    "_e = _t.perf_counter() - _s\n"
    "import softnce_theory as _p\n"
    "print(_p.__file__)\n"
    "print(repr(_e))\n"
)


def public_losses(root: Path) -> list[tuple[str, str]]:
    """``(module, name)`` of every public loss under ``root``: the ``__all__`` entries of the
    family modules, and the ``tiled_*`` functions of ``losses/tiled``."""
    out = []
    for rel in FAMILY_FILES:
        path = root / "softnce_theory" / "losses" / rel
        module = "softnce_theory.losses." + rel.removesuffix(".py").replace("/__init__", "")
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                names = ast.literal_eval(node.value)
                if rel.startswith("tiled"):
                    names = [n for n in names if n.startswith("tiled_")]
                out += [(module, n) for n in names]
    return out


def statements(root: Path, form: str, only: set[str] | None) -> list[tuple[str, str]]:
    """``(label, statement)`` pairs to time (``import torch`` not included)."""
    out = []
    for module, name in public_losses(root):
        if only is not None and name not in only:
            continue
        src = "softnce_theory.losses" if form == "package" else module
        out.append((name, f"from {src} import {name}"))
    if only is None or "distributed" in only:
        out.append(("distributed", "import softnce_theory.losses.distributed"))
    return out


def run_once(python: str, stmt: str, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """``(import seconds measured in the child, process wall seconds)`` of one fresh run, in
    ``cwd`` (``python -c`` puts the working directory first on ``sys.path``)."""
    t0 = time.perf_counter()
    r = subprocess.run(
        [python, "-c", _TIMER.format(stmt=stmt)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench_import: `{stmt}` failed:\n{r.stderr[-2000:]}")
    origin, seconds = r.stdout.strip().splitlines()[-2:]
    if not Path(origin).resolve().is_relative_to(cwd.resolve()):
        raise SystemExit(f"bench_import: softnce_theory came from {origin}, not from {cwd}")
    return float(seconds), wall


def measure(
    stmts: list[tuple[str, str]], repeats: int, python: str, env: dict[str, str], cwd: Path
) -> dict[str, Any]:
    """Interleaved rounds; returns every sample and the medians."""
    samples: dict[str, list[float]] = {BASELINE: [], **{label: [] for label, _ in stmts}}
    walls: dict[str, list[float]] = {k: [] for k in samples}
    for r in range(repeats):
        k = r % max(len(stmts), 1)
        order = [(BASELINE, BASELINE), *stmts[k:], *stmts[:k], (BASELINE, BASELINE)]
        for label, stmt in order:
            t, w = run_once(python, stmt, env, cwd)
            samples[label].append(t)
            walls[label].append(w)
    base = statistics.median(samples[BASELINE])
    rows = []
    for label, stmt in [(BASELINE, BASELINE), *stmts]:
        med = statistics.median(samples[label])
        rows.append(
            {
                "label": label,
                "statement": stmt,
                "median_s": med,
                "min_s": min(samples[label]),
                "max_s": max(samples[label]),
                "median_wall_s": statistics.median(walls[label]),
                "ratio": med / base,
                "samples_s": samples[label],
            }
        )
    return {"baseline_median_s": base, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--names", help="comma-separated subset of the public losses")
    ap.add_argument("--form", choices=("package", "module"), default="package")
    ap.add_argument("--pythonpath", help="import softnce_theory from this tree instead")
    ap.add_argument("--python", default=sys.executable, help="interpreter to run")
    ap.add_argument("--json", help="write the results to this file")
    ap.add_argument("--check", type=float, help="exit 1 if a median ratio exceeds this")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be >= 1")
    tree = Path(args.pythonpath).resolve() if args.pythonpath else ROOT
    only = set(args.names.split(",")) if args.names else None
    stmts = statements(tree, args.form, only)
    if not stmts:
        ap.error("no statement selected")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    res = measure(stmts, args.repeats, args.python, env, tree)
    res.update(
        repeats=args.repeats,
        form=args.form,
        tree=str(tree),
        python=args.python,
        machine=platform.platform(),
        cpus=os.cpu_count(),
        seconds_total=time.perf_counter() - t0,
    )
    print(f"{'statement':62s} {'median s':>9s} {'wall s':>7s} {'ratio':>6s}")
    for row in res["rows"]:
        print(
            f"{row['statement'][:62]:62s} {row['median_s']:9.3f} {row['median_wall_s']:7.3f} "
            f"{row['ratio']:6.2f}"
        )
    worst = max(res["rows"][1:], key=lambda r: r["ratio"])
    print(
        f"\nimport torch: median {res['baseline_median_s']:.3f} s over "
        f"{len(res['rows'][0]['samples_s'])} runs; worst ratio {worst['ratio']:.2f} "
        f"({worst['statement']}); {args.repeats} rounds, {res['seconds_total']:.0f} s"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    if args.check is not None and worst["ratio"] > args.check:
        print(f"FAIL: ratio {worst['ratio']:.2f} > {args.check}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
