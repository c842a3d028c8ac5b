"""``softnce claims``: list and search the claim catalogue; ``--latex`` exports an appendix."""

from __future__ import annotations

import argparse
import json
from typing import Any

from derivations import FAMILIES


def register(sub: Any) -> None:
    p = sub.add_parser(
        "claims",
        help="list and search the claims (no checks run)",
        description="List the claim catalogue. Filters combine (AND).",
    )
    p.add_argument(
        "search", nargs="?", default=None, help="case-insensitive text in id, text or source"
    )
    p.add_argument(
        "--family", action="append", choices=FAMILIES, help="only this family (repeatable)"
    )
    p.add_argument("--kind", default=None, help="only this kind (identity, inequality, ...)")
    p.add_argument("--latex", action="store_true", help="export as a LaTeX appendix (itemize)")
    p.add_argument("--json", action="store_true", help="machine-readable list")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from derivations import all_claims

    claims = all_claims(args.family)
    if args.kind:
        claims = [c for c in claims if c.kind == args.kind]
    if args.search:
        q = args.search.lower()
        claims = [c for c in claims if q in f"{c.id} {c.text} {c.source}".lower()]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": c.id,
                        "family": c.family,
                        "kind": c.kind,
                        "text": c.text,
                        "source": c.source,
                        "assumptions": list(c.assumptions),
                        "evidence": list(c.evidence),
                    }
                    for c in claims
                ],
                indent=2,
            )
        )
    elif args.latex:
        print(_latex(claims))
    else:
        for c in claims:
            print(f"{c.id:<55} {c.kind:<12} {c.text}")
        print(f"({len(claims)} claims)")
    return 0


def _escape(s: str) -> str:
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
    ):
        s = s.replace(a, b)
    return s


def _latex(claims: list[Any]) -> str:
    lines = [r"\begin{itemize}"]
    for c in claims:
        lines.append(rf"\item \texttt{{{_escape(c.id)}}} ({c.kind}). {_escape(c.text)}")
        lines.append(rf"\[ {c.latex()} \]")
        lines.append(
            rf"Source: {_escape(c.source)}. Assumptions: {_escape('; '.join(c.assumptions) or 'none')}."
        )
    lines.append(r"\end{itemize}")
    return "\n".join(lines)
