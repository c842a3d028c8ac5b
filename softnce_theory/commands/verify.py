"""``softnce verify``: check every claim on its symbolic, precise and production legs."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from softnce_theory.commands._common import (
    add_family_options,
    check_output_dir,
    epilog,
    load_families,
    path_arg,
    seed_type,
    stdout_console,
)
from softnce_theory.derivations import CheckConfig

#: what exit code 1 means for this command
VERDICT = "a claim is refuted or errors, or a production loss fails its oracle"
#: mpmath digits accepted by --dps (beyond this the oracles take hours)
MAX_DPS = 1000


def register(sub: Any) -> None:
    p = sub.add_parser(
        "verify",
        help="check every claim (symbolic, 50-digit and production legs) and report",
        description=(
            "Run the claim catalogue: SymPy proofs, mpmath oracles at >= 50 digits, and the "
            "production torch losses in float64. Also checks every production loss against "
            "its oracle. Exits 1 iff a claim is refuted or a check errors."
        ),
        epilog=epilog(VERDICT),
    )
    add_family_options(p)
    p.add_argument("--claim", action="append", metavar="ID", help="only this claim id (repeatable)")
    p.add_argument("--quick", action="store_true", help="fewer random points per numeric leg")
    p.add_argument(
        "--json", action="store_true", help="print claims.json to stdout instead of a table"
    )
    p.add_argument(
        "--report",
        metavar="DIR",
        type=path_arg,
        default=None,
        help="write claims.json and REPORT.md here",
    )
    p.add_argument(
        "--seed", type=seed_type, default=CheckConfig.seed, help="global seed (default %(default)s)"
    )
    p.add_argument(
        "--dps",
        type=int,
        default=50,
        help=f"mpmath digits (50..{MAX_DPS}, default %(default)s)",
    )
    p.add_argument(
        "--no-conformance", action="store_true", help="skip loss-vs-oracle conformance checks"
    )
    p.add_argument(
        "--jobs",
        type=int,
        default=min(2, os.cpu_count() or 1),
        metavar="N",
        help="worker processes (default %(default)s = min(2, CPUs); results do not depend on it)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from softnce_theory.engine import run_catalogue, run_lemmas, select_claims
    from softnce_theory.engine._report import build_json, build_markdown, summary, write_report

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    if not 50 <= args.dps <= MAX_DPS:
        raise ValueError(f"--dps must be in [50, {MAX_DPS}], got {args.dps}")
    if args.report:
        check_output_dir(args.report, "--report")  # before the run, not after it
    cfg = CheckConfig(seed=args.seed, quick=args.quick, dps=args.dps)
    families = load_families(args)
    claims = select_claims(families, args.claim)
    console = Console(stderr=True)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]verify"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=args.json or not console.is_terminal,
    ) as prog:
        task = prog.add_task("", total=len(claims))
        prog.update(task, description="lemmas")
        lemmas = run_lemmas()
        used = sorted({f"{c.family}.{u}" for c in claims for u in c.uses})

        def advance(claim_id: str) -> None:
            prog.update(task, description=claim_id)
            prog.advance(task)

        results, definitions, conformance = run_catalogue(
            claims,
            cfg,
            jobs=args.jobs,
            families=families,
            definition_ids=used if args.claim else None,
            conformance=not args.no_conformance and not args.claim,
            progress=advance,
        )
    seconds = time.perf_counter() - t0
    data = (
        write_report(args.report, results, conformance, cfg, seconds, definitions, lemmas)
        if args.report
        else build_json(results, conformance, cfg, seconds, definitions, lemmas)
    )
    if args.json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        _print_table(console, results, conformance, seconds)
        if args.report:
            console.print(f"wrote {args.report}/claims.json and {args.report}/REPORT.md")
    bad = [r for r in results if r.status in ("refuted", "error")]
    bad_conf = [k for k, v in conformance.items() if v.outcome != "pass"]
    _ = build_markdown, summary  # re-exported for plugins that render their own reports
    return 1 if bad or bad_conf else 0


def _sym_word(leg: Any) -> str:
    if leg.proof is not None and leg.proof.proved:
        return "proved" if leg.proof.binding else "proved at instances only"
    return "not closed" if leg.outcome == "skip" else str(leg.outcome)


def _print_table(
    console: Any, results: list[Any], conformance: dict[str, Any], seconds: float
) -> None:
    from rich.table import Table

    from softnce_theory.engine._report import summary

    colours = {"proved": "green", "checked": "cyan", "refuted": "bold red", "error": "bold magenta"}
    table = Table(title="claims", show_lines=False)
    for col in ("claim", "kind", "status", "evidence"):
        table.add_column(col, overflow="fold")  # a narrow terminal folds; it never cuts ("…")
    for r in results:
        ev = []
        for leg in r.legs:
            if leg.leg == "symbolic" and leg.proof is not None:
                ev.append(f"sym:{_sym_word(leg)} ({leg.proof.scope})")
            elif leg.leg == "symbolic":
                ev.append(f"sym:{leg.outcome} ({leg.detail})")
            elif leg.max_rel_err is not None:
                ev.append(f"{leg.leg[:4]}:{leg.outcome} n={leg.n_points} rel={leg.max_rel_err:.1e}")
            else:
                ev.append(f"{leg.leg[:4]}:{leg.outcome} n={leg.n_points}")
        table.add_row(
            r.claim.id, r.claim.kind, f"[{colours[r.status]}]{r.status}[/]", "; ".join(ev)
        )
    out = stdout_console()  # the results: full width when piped (docs/cli.md)
    out.print(table)
    for r in results:
        if r.status in ("refuted", "error"):
            leg = next((x for x in r.legs if x.outcome in ("fail", "error")), None)
            msg = (leg.counterexample or leg.detail) if leg else "missing evidence"
            out.print(f"[{colours[r.status]}]{r.status}[/] {r.claim.id}: {msg}")
    if conformance:
        ct = Table(title="production losses vs mpmath oracles (float64)")
        for col in ("loss", "outcome", "points", "max abs err", "max rel err"):
            ct.add_column(col, overflow="fold")
        for k, v in conformance.items():
            ct.add_row(
                k,
                v.outcome,
                str(v.n_points),
                f"{v.max_abs_err or 0:.2e}",
                f"{v.max_rel_err or 0:.2e}",
            )
            if v.outcome != "pass":
                out.print(f"[bold red]{k}[/]: {v.counterexample or v.detail}")
        out.print(ct)
    s = summary(results)
    out.print(
        f"{len(results)} claims: {s['proved']} proved, {s['checked']} checked, "
        f"{s['refuted']} refuted, {s['error']} errors in {seconds:.1f} s"
    )
