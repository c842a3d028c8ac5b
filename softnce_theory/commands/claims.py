"""``softnce claims``: list and search the claim catalogue; ``--latex`` exports an appendix."""

from __future__ import annotations

import argparse
import json
from typing import Any

from softnce_theory.commands._common import add_family_options, epilog, load_families
from softnce_theory.derivations import KINDS
from softnce_theory.schemas import CATALOGUE


def register(sub: Any) -> None:
    p = sub.add_parser(
        "claims",
        help="list and search the claims (no checks run)",
        description="List the claim catalogue. Filters combine (AND).",
        epilog=epilog(None),
    )
    p.add_argument(
        "search", nargs="?", default=None, help="case-insensitive text in id, text or source"
    )
    add_family_options(p)
    p.add_argument("--kind", default=None, choices=KINDS, help="only this kind of claim")
    p.add_argument("--latex", action="store_true", help="export as a LaTeX appendix (itemize)")
    p.add_argument(
        "--json",
        action="store_true",
        help="machine-readable: {'schema': 'softnce-theory/catalogue/1', 'claims': [...]}",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from softnce_theory.engine._catalogue import all_claims
    from softnce_theory.engine._core import facts_of

    claims = all_claims(load_families(args))
    if args.kind:
        claims = [c for c in claims if c.kind == args.kind]
    if args.search:
        q = args.search.lower()
        claims = [c for c in claims if q in f"{c.id} {c.text} {c.source}".lower()]
    if args.json:  # softnce_theory/schemas/catalogue-1.json
        listing = [
            {
                "id": c.id,
                "family": c.family,
                "kind": c.kind,
                "text": c.text,
                "source": c.source,
                "facts": facts_of(c),
                "uses": list(c.uses),
                "evidence": list(c.evidence),
            }
            for c in claims
        ]
        print(json.dumps({"schema": CATALOGUE, "claims": listing}, indent=2))
    elif args.latex:
        print(_latex(claims))
    else:
        for c in claims:
            print(f"{c.id:<55} {c.kind:<12} {c.text}")
        print(f"({len(claims)} claims)")
    return 0


_TEXT_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "_": r"\_",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
}
_UNICODE = {
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "−": "-",
    "×": r"$\times$",
    "·": r"$\cdot$",
    "∞": r"$\infty$",
    "→": r"$\to$",
    "…": r"\ldots{}",
    "—": "---",
    "–": "--",
    "’": "'",
    "‘": "`",
    "“": "``",
    "”": "''",
    "§": r"\S{}",
    "≈": r"$\approx$",
    "²": r"$^2$",
    "∈": r"$\in$",
    "≠": r"$\ne$",
    "√": r"$\surd$",
    "ö": r"\"o",
    "ü": r"\"u",
    "é": r"\'e",
    "ä": r"\"a",
}
_GREEK_CAPS = {
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Pi",
    "Sigma",
    "Upsilon",
    "Phi",
    "Psi",
    "Omega",
}


def _escape(s: str) -> str:
    """Plain text for a LaTeX document (pdflatex): specials escaped, common Unicode mapped."""
    import unicodedata

    out = []
    for ch in s:
        if ch in _TEXT_ESCAPES:
            out.append(_TEXT_ESCAPES[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        else:
            name = unicodedata.name(ch, "")
            letter = name.split()[-1].lower() if name.startswith("GREEK") else ""
            if letter and "SMALL" in name:
                out.append(rf"$\{'varepsilon' if letter == 'epsilon' else letter}$")
            elif letter and letter.capitalize() in _GREEK_CAPS:
                out.append(rf"$\{letter.capitalize()}$")
            else:
                out.append(f"[U+{ord(ch):04X}]")
    return "".join(out)


def _latex(claims: list[Any]) -> str:
    import sympy

    lines = [r"\begin{itemize}"]
    for c in claims:
        lines.append(rf"\item \texttt{{{_escape(c.id)}}} ({c.kind}). {_escape(c.text)}")
        lines.append(rf"\[ {c.latex()} \]")
        facts = [sympy.latex(f) for f in c.fact_list()]
        lines.append(rf"Source: {_escape(c.source)}.")
        if facts:
            lines.append(r"Assumptions: " + "; ".join(f"${f}$" for f in facts) + ".")
    lines.append(r"\end{itemize}")
    return "\n".join(lines)
