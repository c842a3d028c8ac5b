"""``softnce audit``: run a family's property suite against any loss (yours or a peer's)."""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import Any

from softnce_theory.commands._common import epilog

#: what exit code 1 means for this command
VERDICT = "a property of the selected tier fails (--tier correctness|all, default all)"

#: ``--tier`` choices (= softnce_theory.testing.core.TIER_CHOICES; a test checks it)
TIER_CHOICES = ("correctness", "all")


def register(sub: Any) -> None:
    from softnce_theory._builtin import BUILTIN
    from softnce_theory.testing.adapters import ADAPTERS

    default_examples, default_seed = 40, 0  # = suite.DEFAULT_MAX_EXAMPLES / DEFAULT_SEED
    builtin = ", ".join(c for f in BUILTIN for c in f.contracts)
    distributed = ", ".join(c for f in BUILTIN for c in f.distributed)

    p = sub.add_parser(
        "audit",
        help="property-test a loss against a family contract (oracle, gradient, edge cases)",
        description=(
            "Import MODULE:CALLABLE (or path/to/file.py:CALLABLE), run the property suite of "
            "--family against it (value vs the mpmath oracle, gradient vs the closed form, "
            "invariances, limits, edge cases, low-precision dtypes) and print one line per "
            "property, grouped by tier (correctness / robustness policy), with the shrunk "
            "counterexample and the discrepancy of each failure. Exits 1 if a property of the "
            "selected --tier fails or errors (default: any property), 2 on usage errors. Only "
            "the named module or file is imported; nothing else from the command line is "
            "executed. The toolkit's own modules and dependencies are imported first, and the "
            "target's directory is appended to sys.path, so a sibling mpmath.py or numerics/ "
            "cannot replace them."
        ),
        epilog=epilog(VERDICT),
    )
    p.add_argument(
        "target",
        nargs="?",
        help="MODULE:CALLABLE or path/to/file.py:CALLABLE (optional for a family declared from "
        "its definition: its own torch_fn is audited)",
    )
    p.add_argument(
        "--family",
        metavar="NAME",
        help=f"the contract the callable follows: built-in {builtin}, or any family declared "
        "from its definition (LossSpec) by an installed package or by --plugin (its generic "
        "contract); see --list",
    )
    p.add_argument(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE[:ATTR]",
        help="import MODULE and register its families (its FAMILY or FAMILIES, or ATTR) before "
        "auditing; repeatable. See docs/extending.md",
    )
    p.add_argument(
        "--tier",
        choices=TIER_CHOICES,
        default="all",
        help="which findings fail the run: 'correctness' (value, gradient, invariances, limits) "
        "or 'all' (also the robustness policies: extreme temperatures/logits, -inf logits, "
        "zero-probability classes, empty means, low precision); every finding is reported "
        "either way (default %(default)s)",
    )
    p.add_argument(
        "--adapter",
        choices=tuple(ADAPTERS),
        default=None,
        help="map a peer library's loss onto the contract",
    )
    p.add_argument(
        "--max-examples",
        type=int,
        default=default_examples,
        help="Hypothesis examples per property (default %(default)s)",
    )
    p.add_argument(
        "--seed", type=int, default=default_seed, help="Hypothesis seed (default %(default)s)"
    )
    p.add_argument(
        "--kw",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="bind a keyword argument of the callable (VALUE parsed as JSON, else a string); "
        "repeatable, e.g. --kw variant=in",
    )
    p.add_argument(
        "--property",
        action="append",
        default=None,
        metavar="NAME",
        help="run only this property (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--world-size",
        type=int,
        default=None,
        metavar="W",
        help="distributed audit: run the callable on W >= 2 gloo ranks, each on its shard, "
        "against DDP's convention (value: mean over ranks; gradient: DDP's average), and name "
        f"the classic bug when the evidence fits (built-in: {distributed})",
    )
    p.add_argument("--list", action="store_true", help="list families, properties and adapters")
    p.set_defaults(func=run)


def _parse_kw(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"--kw expects NAME=VALUE with an identifier NAME, got {item!r}")
        try:
            out[name] = json.loads(raw)
        except json.JSONDecodeError:
            out[name] = raw
    return out


def _list() -> int:
    from softnce_theory.testing.adapters import ADAPTERS
    from softnce_theory.testing.contracts import audit_names, get_contract

    for name in audit_names():
        fam = get_contract(name)
        print(f"{fam.name}: {fam.contract}")
        print(f"    {fam.semantics}")
        if not fam.independent:
            print(f"    reference: {fam.reference_name()}")
        for prop in fam.properties():
            print(f"    - {prop.name} [{prop.kind}, {prop.tier}]: {prop.description}")
    print("adapters:")
    for a in ADAPTERS.values():
        print(f"  {a.name} ({', '.join(a.families)}): {a.description}")
    return 0


def _load_plugins(specs: list[str]) -> None:
    from softnce_theory.registry import load_errors, load_plugin

    for spec in specs:
        load_plugin(spec)
    for msg in load_errors():
        print(f"softnce audit: warning: {msg}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    _load_plugins(args.plugin)
    if args.list:
        return _list()
    if not args.family:
        raise ValueError("--family is required (see --list)")
    from softnce_theory.testing.contracts import audit_names

    names = audit_names()
    if args.family not in names:
        raise ValueError(f"--family must be one of {names}, got {args.family!r}")
    if args.max_examples < 1:
        raise ValueError(f"--max-examples must be >= 1, got {args.max_examples}")
    from softnce_theory.testing.contracts import get_contract
    from softnce_theory.testing.loader import load_target
    from softnce_theory.testing.suite import check_loss

    if args.target:
        obj = load_target(args.target)
        target = args.target
    else:
        obj = get_contract(args.family).default_target()
        target = f"{args.family} (the family's own torch_fn)"
    kw = _parse_kw(args.kw)
    if kw:
        if args.adapter:
            raise ValueError(
                "--kw binds arguments of the callable; it cannot be combined with --adapter"
            )
        if not callable(obj):
            raise ValueError(f"{target} is not callable")
        obj = functools.partial(obj, **kw)
    if args.world_size is not None:
        from softnce_theory.testing.distributed import audit_command

        if args.adapter or args.property:
            raise ValueError("--world-size cannot be combined with --adapter or --property")
        return audit_command(obj, args.family, args.world_size, args.seed, target, args.json)
    report = check_loss(
        obj,
        args.family,
        max_examples=args.max_examples,
        seed=args.seed,
        adapter=args.adapter,
        properties=args.property,
        tier=args.tier,
    )
    report.target = target + (
        "" if not kw else " with " + ", ".join(f"{k}={v!r}" for k, v in kw.items())
    )
    if args.json:
        json.dump(report.to_json(), sys.stdout, indent=2)
        print()
    else:
        print(report.table())
    return 0 if report.passed else 1
