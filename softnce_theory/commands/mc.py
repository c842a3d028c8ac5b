"""``softnce mc``: Monte Carlo estimate of the finite-K bias, next to the theory's predictions.

Runs :func:`numerics.montecarlo.run_scenario` for one scenario on a K grid and prints a
prediction-vs-measurement table (or the JSON of the run). Works under ``torchrun`` (one process
per device; rank 0 prints and writes). See ``docs/montecarlo.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from softnce_theory.commands._common import (
    check_output_file,
    epilog,
    path_arg,
    seed_type,
    stdout_console,
    write_text_atomic,
)
from softnce_theory.schemas import MC

#: largest --k (= numerics.montecarlo.engine.MAX_K, kept static so that ``--help`` does not
#: import torch; a test checks they agree): K and every count stay exact float64 integers
MAX_K = 10**15

SCENARIO_NAMES: tuple[str, ...] = (
    "ranking_nce",
    "sampled_softmax",
    "log_mean_exp",
    "soft_target",
    "mi_discrete",
    "mi_gaussian",
    "supcon",
)


def _parse_ks(text: str) -> list[int]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            val = float(part)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"K values must be integers, got {part[:40]!r}"
            ) from exc
        if not math.isfinite(val) or val != int(val) or not 1 <= val <= MAX_K:
            raise argparse.ArgumentTypeError(
                f"K values must be integers in [1, {MAX_K:.0e}], got {part[:40]!r}"
            )
        out.append(int(val))
    if not out:
        raise argparse.ArgumentTypeError("needs at least one value")
    return out


def _parse_params(items: list[str]) -> dict[str, Any]:
    """``-p KEY=VALUE`` pairs: VALUE is JSON, or a bare string when it is not JSON at all. The
    scenario then checks each value's type and range (``ValueError`` naming the parameter)."""
    params: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ValueError(f"--param must look like KEY=VALUE, got {item[:60]!r}")
        if key in params:
            raise ValueError(f"--param {key} is given twice")
        try:
            val = json.loads(raw)
        except json.JSONDecodeError:
            val = raw  # bare strings: --param targets=dirichlet
        except (ValueError, RecursionError) as exc:  # digit limit, nesting
            raise ValueError(f"--param {key}: cannot parse the value ({exc})") from None
        params[key] = val
    return params


def register(sub: Any) -> None:
    p = sub.add_parser(
        "mc",
        help="Monte Carlo bias of finite negative sampling vs the theory's predictions",
        description=(
            "Estimate E[L_K] - L_inf and E[grad L_K] - grad L_inf (or the scenario's expected "
            "values) for each K, with standard errors, 95%% CIs, control variates and the "
            "first/second-order predictions from derivations. Reproducible (counter-based "
            "seeds per chunk), resumable (--checkpoint/--resume) and distributable (torchrun)."
            f" K is at most {MAX_K:.0e}; a K whose chunk (two trials) would exceed the memory "
            "bound (--chunk, or 2^27 elements by default) is refused before the run."
        ),
        epilog=epilog(None),
    )
    p.add_argument(
        "scenario", metavar="SCENARIO", help=f"which scenario to simulate: {_builtin_names()}"
    )
    p.add_argument(
        "--k", type=_parse_ks, default=None, metavar="K1,K2,...", help="K grid, e.g. 1,10,1e3"
    )
    p.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="scenario parameter (VALUE parsed as JSON), repeatable: -p sampler=counts -p rho=0.9",
    )
    p.add_argument("--seed", type=seed_type, default=0, help="global seed (default %(default)s)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i] (default %(default)s)")
    p.add_argument(
        "--chunk", type=int, default=None, help="elements per chunk tensor (the memory bound)"
    )
    p.add_argument("--target-ci", type=float, default=None, help="stop at this 95%% CI half-width")
    p.add_argument(
        "--target-rel", type=float, default=None, help="stop at half-width <= this x |estimate|"
    )
    p.add_argument(
        "--max-samples", type=int, default=100_000, help="max trials per K (default %(default)s)"
    )
    p.add_argument("--min-samples", type=int, default=256, help="trials before any stop check")
    p.add_argument(
        "--checkpoint",
        metavar="FILE",
        type=path_arg,
        default=None,
        help="JSON checkpoint, rewritten every round",
    )
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint if it exists")
    p.add_argument("--no-cv", action="store_true", help="report plain means (no control variates)")
    p.add_argument("--json", action="store_true", help="print the run as JSON instead of a table")
    p.add_argument(
        "--output", metavar="FILE", type=path_arg, default=None, help="also write the JSON to FILE"
    )
    p.add_argument("--all-outputs", action="store_true", help="table: every gradient component")
    p.add_argument(
        "--no-tune-malloc",
        action="store_true",
        help="CPU: keep glibc's default mmap/trim thresholds (slower; numbers are unchanged)",
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE[:ATTR]",
        help="import MODULE and register its families and their scenarios (repeatable)",
    )
    p.set_defaults(func=run)


def _builtin_names() -> str:
    """The built-in scenarios, for ``--help`` (read from the declarations; no torch import)."""
    from softnce_theory._builtin import BUILTIN

    return ", ".join(name for f in BUILTIN for name in f.scenarios) + ", or a registered plugin's"


def scenario_class(name: str) -> Any:
    """The scenario class a registered family declares under ``name`` (a ``ValueError`` naming
    the choices otherwise); registered with the Monte Carlo engine if it is a plugin's."""
    from softnce_theory.numerics.montecarlo._base import SCENARIOS, register
    from softnce_theory.registry import registry, resolve

    declared = registry().scenarios()
    if name not in declared:
        raise ValueError(f"scenario must be one of {tuple(declared)}, got {name!r}")
    cls = resolve(declared[name])
    if getattr(cls, "name", None) != name:
        raise ValueError(f"scenario {name!r}: the declared class is named {cls.name!r}")
    if SCENARIOS.get(name) is not cls:
        register(cls)
    return cls


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from softnce_theory.numerics.montecarlo import make_config, run_scenario

    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint FILE")
    if args.output:
        check_output_file(args.output, "--output", create_dirs=False)  # before the run
    from softnce_theory.registry import load_plugin

    for spec in args.plugin:
        load_plugin(spec)
    scenario_class(args.scenario)
    config = make_config(args.scenario, **_parse_params(args.param))
    rank = int(os.environ.get("RANK", "0"))
    console = Console(stderr=True)
    show = rank == 0 and not args.json and console.is_terminal
    with _progress(console, show) as progress:
        result = run_scenario(
            config,
            args.k,
            seed=args.seed,
            device=args.device,
            chunk=args.chunk,
            target_ci=args.target_ci,
            target_rel=args.target_rel,
            max_samples=args.max_samples,
            min_samples=args.min_samples,
            cv=not args.no_cv,
            checkpoint=args.checkpoint,
            resume=args.resume,
            progress=progress,
            tune_malloc=not args.no_tune_malloc,
        )
    if rank != 0:
        return 0
    data = {"schema": MC, **result.to_json()}  # softnce_theory/schemas/mc-1.json
    if args.output:
        write_text_atomic(args.output, json.dumps(data, indent=1))
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        print()
    else:
        print_table(result, all_outputs=args.all_outputs)
    return 0


class _progress:
    """Rich progress bars, one per K: trials, samples/s and the current CI half-width."""

    def __init__(self, console: Any, enabled: bool) -> None:
        self.console, self.enabled = console, enabled
        self.prog: Any = None
        self.tasks: dict[int, Any] = {}

    def __enter__(self) -> _progress | None:
        if not self.enabled:
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.prog = Progress(
            TextColumn("[bold]mc K={task.fields[k]:>7}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>10} samples/s"),
            TextColumn("est {task.fields[est]:>11}  ±{task.fields[hw]:<9}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        self.prog.__enter__()
        return self

    def __call__(self, ev: Any) -> None:
        if self.prog is None:
            return
        task = self.tasks.get(ev.k)
        if task is None:
            task = self.prog.add_task("", total=ev.max_trials, k=ev.k, rate="", est="", hw="")
            self.tasks[ev.k] = task
        rate = f"{ev.trials / ev.seconds:,.0f}" if ev.seconds > 0 else "-"
        self.prog.update(
            task,
            completed=ev.max_trials if ev.finished else ev.trials,
            rate=rate,
            est=f"{ev.estimate:+.4e}",
            hw=f"{ev.half_width:.2e}",
        )

    def __exit__(self, *exc: Any) -> None:
        if self.prog is not None:
            self.prog.__exit__(*exc)


def _fmt(x: float | None, spec: str = "+.4e") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-" if x is None else str(x)
    return format(x, spec)


def print_table(result: Any, all_outputs: bool = False) -> None:
    """The prediction-vs-measurement table of a run (rich, to stdout)."""
    from rich.table import Table

    out = stdout_console()  # full width when piped (docs/cli.md)
    title = (
        f"softnce mc {result.scenario}: {'E[.]_K - limit' if result.quantity == 'bias' else 'E[.]_K'}"
        f"  (K = {result.k_meaning}; device {result.device}, seed {result.seed})"
    )
    table = Table(title=title)
    for col in (
        "K",
        "n",
        "output",
        "measured ± 95% CI",
        "plain ± CI",
        "VR",
        "pred 1st",
        "z1",
        "pred 2nd",
        "z2",
    ):
        table.add_column(col, justify="left" if col == "output" else "right", overflow="fold")
    for r in result.results:
        rows = _select(r.outputs, all_outputs)
        for i, o in enumerate(rows):
            table.add_row(
                str(r.k) if i == 0 else "",
                f"{r.n:,}" if i == 0 else "",
                o.name,
                f"{_fmt(o.estimate)} ±{1.959963984540054 * o.se:.1e}",
                f"{_fmt(o.plain_estimate)} ±{1.959963984540054 * o.plain_se:.1e}",
                _fmt(o.variance_reduction, ".3g"),
                _fmt(o.pred_first),
                _fmt(o.z_first, "+.2f"),
                _fmt(o.pred_second),
                _fmt(o.z_second, "+.2f"),
            )
        grads = [o for o in r.outputs if o.name.startswith("grad_bias[")]
        if grads and not all_outputs:
            zs = [
                abs(o.z_first) for o in grads if o.z_first is not None and math.isfinite(o.z_first)
            ]
            vr = [o.variance_reduction for o in grads if o.variance_reduction is not None]
            table.add_row(
                "", "", f"grad_bias (all {len(grads)})", "", "",
                f"min {min(vr):.3g}" if vr else "-", "", f"max|z| {max(zs):.2f}" if zs else "-", "", "",
            )  # fmt: skip
    out.print(table)
    if result.results and result.results[0].extras:
        et = Table(title="derived")
        keys = list(result.results[0].extras)
        et.add_column("K", justify="right")
        for key in keys:
            et.add_column(key, justify="right")
        for r in result.results:
            et.add_row(str(r.k), *[_fmt(r.extras.get(key), ".6g") for key in keys])
        out.print(et)
    t = result.timing
    rate = t.get("negatives_per_second")
    out.print(
        f"predictions: {result.prediction_source}\n"
        f"{t.get('negatives', 0):,} negatives in {t.get('compute_seconds', 0):.2f} s"
        + (f" ({rate:,.0f} negatives/s)" if rate else "")
        + f", world size {t.get('world_size', 1)}"
    )


def _select(outputs: list[Any], all_outputs: bool) -> list[Any]:
    grads = [o for o in outputs if o.name.startswith("grad_bias[")]
    if all_outputs or not grads:
        return outputs
    others = [o for o in outputs if not o.name.startswith("grad_bias[")]
    top = max(
        grads, key=lambda o: abs(o.pred_first) if o.pred_first is not None else abs(o.estimate)
    )
    return [*others, top]
