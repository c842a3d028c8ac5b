"""``softnce plots``: regenerate the proof-backed figures (each gated on its backing claims)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from softnce_theory.commands._common import check_output_dir, epilog, path_arg, seed_type
from softnce_theory.plots._core import FORMATS

#: what exit code 1 means for this command
VERDICT = "a figure is refused (a backing claim fails) or fails to render"


def register(sub: Any) -> None:
    from softnce_theory._builtin import BUILTIN

    p = sub.add_parser(
        "plots",
        help="draw the proof-backed figures (refused if a backing claim fails)",
        description=(
            "Each figure first runs its backing claims (quick legs); a figure whose claim is "
            "refuted or errors is refused with a non-zero exit and no stale file is left. Every "
            "figure gets a JSON sidecar (claims, data, seeds, versions). --from-json "
            "re-renders from a sidecar's data after re-checking the backing claims (the "
            "sidecar's own claim list is not trusted). Files are written atomically: the old "
            "files stay until every new one is complete. Figures: "
            + ", ".join(name for f in BUILTIN for name in f.figures)
        ),
        epilog=epilog(VERDICT),
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="figures to draw (default: all)")
    p.add_argument(
        "--out", type=path_arg, default="figures", help="output directory (default %(default)s)"
    )
    p.add_argument(
        "--format", default="png", help="comma-separated: png,pdf,svg (default %(default)s)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smaller grids and fewer Monte Carlo samples (seconds per figure)",
    )
    p.add_argument("--seed", type=seed_type, default=0, help="seed for every random component")
    p.add_argument(
        "--from-json",
        metavar="SIDECAR",
        type=path_arg,
        default=None,
        help="re-render one figure from its sidecar (its claims are re-checked)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from softnce_theory._extras import require
    from softnce_theory.plots import GateError, figure_names, make

    require("softnce plots", "matplotlib", "sympy", "mpmath")

    FIGURES = figure_names()

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats or len(set(formats)) != len(formats):
        raise ValueError(
            f"--format must be a comma-separated subset of {FORMATS}, got {args.format!r}"
        )
    names = list(dict.fromkeys(args.names)) or list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure(s) {unknown}; choose from {FIGURES}")
    if args.from_json and len(names) != 1:
        raise ValueError("--from-json re-renders exactly one figure: name it")
    check_output_dir(args.out, "--out")  # before any claim is checked or figure computed
    sidecar = None
    if args.from_json:
        from softnce_theory.plots._core import load_sidecar

        try:
            sidecar = load_sidecar(args.from_json, names[0])  # unreadable/malformed: exit 2
        except GateError as exc:  # it records a failing claim
            print(f"REFUSED {exc}; no file written", file=sys.stderr)
            return 1
    cache: dict[str, Any] = {}
    failed = 0
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        try:
            paths = make(
                name,
                args.out,
                formats,
                quick=args.quick,
                seed=args.seed,
                from_json=args.from_json,
                results_cache=cache,
                sidecar=sidecar,
            )
        except GateError as exc:
            print(f"REFUSED {exc}; no file written", file=sys.stderr)
            failed += 1
            continue
        except (OSError, MemoryError):  # disk full, permission, ...: exit 3, stop here
            raise
        except Exception as exc:  # one broken figure must not stop the others
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())[:600]
            print(f"FAILED {name}: {msg}; no new file written", file=sys.stderr)
            failed += 1
            continue
        print(f"{name}: {', '.join(str(p) for p in paths)} ({time.perf_counter() - t0:.1f} s)")
    done = len(names) - failed
    print(
        f"{done}/{len(names)} figure(s) written to {args.out} in "
        f"{time.perf_counter() - t_all:.1f} s"
        + (f"; {failed} refused or failed" if failed else ""),
        file=sys.stderr if failed else sys.stdout,
    )
    return 1 if failed else 0
