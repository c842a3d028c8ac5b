"""Writers for ``claims.json`` (machine-readable) and ``REPORT.md`` (renders on GitHub)."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from softnce_theory.derivations import CheckConfig, LegResult
from softnce_theory.engine._core import ClaimResult


def versions() -> dict[str, str]:
    """The versions of the packages the run used. An imported package reports its
    ``__version__``; one the run never imported (torch, when every leg ran in workers) is read
    from its installed metadata instead of being imported only to report it (about 1 s)."""
    from importlib.metadata import PackageNotFoundError, version

    from softnce_theory import __version__

    def of(name: str) -> str:
        mod = sys.modules.get(name)
        if mod is not None and hasattr(mod, "__version__"):
            return str(mod.__version__)
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return {
        "softnce_theory": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        **{name: of(name) for name in ("torch", "sympy", "mpmath", "numpy")},
    }


def summary(results: list[ClaimResult]) -> dict[str, int]:
    c = Counter(r.status for r in results)
    out = {s: c.get(s, 0) for s in ("proved", "checked", "refuted", "error")}
    out["checked_with_instance_proofs"] = sum(
        1 for r in results if r.status == "checked" and r.scope == "instances"
    )
    return out


def build_json(
    results: list[ClaimResult],
    conformance: dict[str, LegResult],
    cfg: CheckConfig,
    seconds: float,
    definitions: dict[str, LegResult] | None = None,
    lemmas: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "schema": "softnce-theory/claims/2",
        "versions": versions(),
        "config": {"seed": cfg.seed, "quick": cfg.quick, "dps": cfg.dps},
        "seconds": round(seconds, 3),
        "summary": summary(results),
        "claims": [r.to_json() for r in results],
        "conformance": {k: v.to_json() for k, v in conformance.items()},
        "definitions": {k: v.to_json() for k, v in (definitions or {}).items()},
        "lemmas": lemmas or [],
    }


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2e}"


def _evidence_line(r: LegResult) -> str:
    if r.leg == "symbolic" and r.proof is not None:
        p = r.proof
        if p.proved:
            head = "proved" if p.binding else "proved at instances only (evidence, not a proof)"
        else:
            head = "refuted" if p.refuted else f"not closed: {p.detail}"
        assume = "; ".join(p.assumptions) or "none"
        return f"**symbolic** ({head}; scope {p.scope}): {p.method}. Assumptions: {assume}."
    if r.leg == "symbolic":
        return f"**symbolic** {r.outcome}: {r.detail}"
    bits = [f"**{r.leg}** {r.outcome}: {r.n_points} points"]
    if r.dps:
        bits.append(f"{r.dps} digits")
    if r.dtype:
        bits.append(r.dtype)
    if r.max_abs_err is not None:
        bits.append(f"max abs err {_fmt(r.max_abs_err)}, max rel err {_fmt(r.max_rel_err)}")
    if r.min_margin is not None:
        bits.append(f"min slack {r.min_margin:.3e}")
    line = ", ".join(bits) + (f". {r.detail}" if r.detail else "")
    if r.counterexample:
        line += f"\n  - counterexample: `{r.counterexample}`"
    return line


def build_markdown(
    data_results: list[ClaimResult], conformance: dict[str, LegResult], meta: dict[str, Any]
) -> str:
    s = meta["summary"]
    lines = [
        "# softnce-theory verification report",
        "",
        f"{len(data_results)} claims: **{s['proved']} proved**, {s['checked']} checked, "
        f"{s['refuted']} refuted, {s['error']} errors. Seed {meta['config']['seed']}, "
        f"{meta['config']['dps']} digits, quick={meta['config']['quick']}, "
        f"{meta['seconds']:.1f} s.",
        "",
        "`proved` means the engine applied the claim's tactic to the claim's own statement and "
        "it closed for the generality the statement states, under the facts listed; `checked` "
        "means the legs passed (numeric points with counts and errors, or exact proofs at fixed "
        "instances of a general statement) without a proof of the statement as stated.",
        "",
        "| claim | kind | status | legs |",
        "|---|---|---|---|",
    ]
    for r in data_results:
        legs = ", ".join(f"{x.leg}:{x.outcome}" for x in r.legs)
        status = r.status + (" (proved at instances)" if r.scope == "instances" else "")
        lines.append(f"| `{r.claim.id}` | {r.claim.kind} | **{status}** | {legs} |")
    if conformance:
        lines += ["", "## Production losses against the mpmath oracles (float64)", ""]
        lines += [
            "| loss | outcome | points | max abs err | max rel err |",
            "|---|---|---|---|---|",
        ]
        for name, leg in conformance.items():
            lines.append(
                f"| `{name}` | {leg.outcome} | {leg.n_points} | {_fmt(leg.max_abs_err)} "
                f"| {_fmt(leg.max_rel_err)} |"
            )
    if meta.get("lemmas"):
        lines += ["", "## Lemmas (each checked by its own symbolic argument)", ""]
        lines += ["| lemma | statement | check | argument |", "|---|---|---|---|"]
        for lem in meta["lemmas"]:
            ok = "pass" if lem["ok"] else "**FAIL**"
            lines.append(f"| `{lem['name']}` | {lem['text']} | {ok} | {lem['argument']} |")
    if meta.get("definitions"):
        lines += ["", "## Definitions against their oracles (50 digits)", ""]
        lines += ["| definition | outcome | points | max rel err |", "|---|---|---|---|"]
        for name, leg in meta["definitions"].items():
            lines.append(
                f"| `{name}` | {leg['outcome']} | {leg['n_points']} | {leg['max_rel_err']} |"
            )
    lines += ["", "## Claims", ""]
    for r in data_results:
        c = r.claim
        lines += [
            f"### `{c.id}` — {r.status}",
            "",
            c.text,
            "",
            "$$",
            _latex_for_md(r),
            "$$",
            "",
            f"- kind: {c.kind}; source: {c.source}",
            f"- facts: {'; '.join(f'`{f}`' for f in r.to_json()['facts']) or 'none'}",
            f"- definitions used: {', '.join(c.uses) or 'none'}",
        ]
        lines += [f"- {_evidence_line(x)}" for x in r.legs]
        lines.append("")
    return "\n".join(lines) + "\n"


def _latex_for_md(r: ClaimResult) -> str:
    tex = r.to_json()["latex"]
    return tex.replace("\n", " ")


def write_report(
    out_dir: str | os.PathLike[str],
    results: list[ClaimResult],
    conformance: dict[str, LegResult],
    cfg: CheckConfig,
    seconds: float,
    definitions: dict[str, LegResult] | None = None,
    lemmas: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    data = build_json(results, conformance, cfg, seconds, definitions, lemmas)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "claims.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "REPORT.md").write_text(build_markdown(results, conformance, data))
    return data
