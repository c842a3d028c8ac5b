r"""MkDocs hook: pages generated at build time (nothing is written into ``docs/``).

* ``catalogue.md`` -- the claim catalogue with each claim's statement (LaTeX, rendered by the
  ``mathml`` hook), status, source and evidence, from ``softnce verify --json --quick`` run at
  build time. The list of claims comes from ``softnce claims --json`` (no checks run), so a claim
  missing from the verification run is shown as "not run", never dropped.
* ``changelog.md`` -- ``CHANGELOG.md`` from the repository root.

The verification run takes about a minute on two cores; its JSON is cached under
``build/docs-cache/`` keyed by a hash of every source file of the package (and
``pyproject.toml``), so a rebuild with unchanged sources reuses it. ``SOFTNCE_DOCS_CLAIMS_JSON``
names a ready ``claims.json`` (``softnce verify --json`` or ``--report DIR``) to use instead.
Claims that are refuted or error are logged as warnings, so ``mkdocs build --strict`` fails.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File, Files

log = get_plugin_logger("generated_pages")

ENV_JSON = "SOFTNCE_DOCS_CLAIMS_JSON"
STATUSES = ("proved", "checked", "refuted", "error")
#: what each status means (the engine's honesty contract, softnce_theory/engine/_core.py)
MEANING = {
    "proved": "the engine's prover closed the claim's tactic on the claim's own statement, for "
    "the generality it states, and every numeric leg passed",
    "checked": "every leg passed, but the statement as stated is not proved (numeric evidence, "
    "or an exact proof at fixed sizes only)",
    "refuted": "a leg found a counterexample",
    "error": "a check broke, a required leg is missing, or a numeric leg looked at zero points",
}
_MD_SPECIAL = re.compile(r"([\\`*_\[\]$|#])")


def _root(config: MkDocsConfig) -> Path:
    return Path(str(config.config_file_path)).resolve().parent


def _cli(root: Path, *args: str) -> tuple[int, str, str]:
    cmd = [sys.executable, "-m", "softnce_theory.cli", *args]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def _source_key(root: Path) -> str:
    """Hash of the package sources (the symlinked layers included) and the project metadata."""
    h = hashlib.sha256()
    files = {(root / "pyproject.toml").resolve()}
    for top in ("softnce_theory", "derivations", "numerics"):
        files.update(p.resolve() for p in (root / top).rglob("*.py"))
    for p in sorted(files):
        h.update(str(p.relative_to(root.resolve())).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _verify_json(root: Path) -> tuple[dict[str, Any], str]:
    """The verification JSON and a sentence saying where it came from."""
    given = os.environ.get(ENV_JSON)
    if given:
        return json.loads(Path(given).read_text()), f"the file named by `{ENV_JSON}`"
    cache = root / "build" / "docs-cache" / f"verify-quick-{_source_key(root)}.json"
    how = "`softnce verify --json --quick`, run at build time"
    if cache.exists():
        return json.loads(cache.read_text()), how + " (cached for these sources)"
    log.info("running softnce verify --json --quick for the claim catalogue (about a minute)")
    code, out, err = _cli(root, "verify", "--json", "--quick")
    if code not in (0, 1):  # 1: a claim is refuted or errors; the JSON is still complete
        raise PluginError(f"softnce verify exited {code}: {err.strip()[-2000:]}")
    data = json.loads(out)
    cache.parent.mkdir(parents=True, exist_ok=True)
    for old in cache.parent.glob("verify-quick-*.json"):  # runs for older sources
        old.unlink()
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(out)
    tmp.replace(cache)
    return data, how


def _text(s: str) -> str:
    """Plain text for markdown: HTML-escaped, markdown and ``$`` specials backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(s, quote=False))


def _code(s: str) -> str:
    return f"<code>{html.escape(s)}</code>"


def _num(x: Any) -> str:
    return f"{x:.1e}" if isinstance(x, (int, float)) else str(x)


def _leg_line(leg: dict[str, Any]) -> str:
    name, outcome = leg["leg"], leg["outcome"]
    proof = leg.get("proof")
    if name == "symbolic" and proof:
        if proof.get("proved"):
            head = "proved" if proof.get("scope_kind") == "general" else "proved at instances"
        else:
            head = "refuted" if proof.get("refuted") else "not closed"
        bits = [f"{head}, scope {_text(proof.get('scope', ''))}", _text(proof.get("method", ""))]
        if proof.get("assumptions"):
            bits.append("assumptions " + ", ".join(_code(a) for a in proof["assumptions"]))
        return f"**symbolic** {outcome}: " + "; ".join(bits)
    bits = [f"{leg.get('n_points', 0)} points"]
    if leg.get("dps"):
        bits.append(f"{leg['dps']} digits")
    if leg.get("dtype"):
        bits.append(leg["dtype"])
    for key, label in (("max_abs_err", "max abs err"), ("max_rel_err", "max rel err")):
        if leg.get(key) is not None:
            bits.append(f"{label} {_num(leg[key])}")
    if leg.get("min_margin") is not None:
        bits.append(f"min margin {_num(leg['min_margin'])}")
    line = f"**{name}** {outcome}: " + ", ".join(bits)
    if leg.get("detail"):
        line += f" ({_text(leg['detail'])})"
    if leg.get("counterexample"):
        line += f"; counterexample {_code(str(leg['counterexample']))}"
    return line


def _badge(status: str) -> str:
    return f'<span class="softnce-status softnce-{status}">{status}</span>'


def catalogue_markdown(listing: list[dict[str, Any]], data: dict[str, Any], how: str) -> str:
    """The catalogue page: ``listing`` from ``softnce claims --json``, ``data`` from verify."""
    run = {c["id"]: c for c in data.get("claims", [])}
    families = list(dict.fromkeys(c["family"] for c in listing))
    cfg, versions = data.get("config", {}), data.get("versions", {})
    lines = [
        "# Claim catalogue",
        "",
        f"Every claim of the catalogue ({len(listing)} claims in {len(families)} families), "
        "with its statement, status, source and evidence. Statuses come from "
        f"{how}: seed {cfg.get('seed')}, {cfg.get('dps')} digits, "
        f"{'quick (fewer random points per numeric leg)' if cfg.get('quick') else 'full'}; "
        f"softnce-theory {versions.get('softnce_theory')}, torch {versions.get('torch')}, "
        f"SymPy {versions.get('sympy')}, mpmath {versions.get('mpmath')}. "
        "`softnce verify` runs the same checks on your machine; `softnce verify --report DIR` "
        "writes them as `REPORT.md` and `claims.json`.",
        "",
        "| status | meaning |",
        "|---|---|",
        *(f"| {_badge(s)} | {MEANING[s]} |" for s in STATUSES),
        "",
        "## Summary",
        "",
    ]
    counts = {
        fam: Counter(
            run[c["id"]]["status"] if c["id"] in run else "not run"
            for c in listing
            if c["family"] == fam
        )
        for fam in families
    }
    total: Counter[str] = sum(counts.values(), Counter())
    cols = [*STATUSES, *(["not run"] if total["not run"] else [])]
    lines += [
        "| family | claims | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * (len(cols) + 1),
    ]
    for fam, n in counts.items():
        cells = " | ".join(str(n[s]) for s in cols)
        lines.append(f"| [{fam}](#{fam}) | {n.total()} | {cells} |")
    cells = " | ".join(f"**{total[s]}**" for s in cols)
    lines += [f"| **total** | **{len(listing)}** | {cells} |", ""]
    if total["not run"]:
        lines += [
            f'!!! warning "{total["not run"]} claims were not in this verification run"',
            "    They are listed with their text and source but no status or statement.",
            "",
        ]
    for fam in families:
        lines += [f"## {fam}", ""]
        for c in (c for c in listing if c["family"] == fam):
            lines += _claim_block(c, run.get(c["id"]))
    conformance = data.get("conformance") or {}
    if conformance:
        lines += [
            "## Conformance: production losses against their oracles",
            "",
            "Each production loss against its mpmath oracle (value and gradient, float64).",
            "",
            "| check | outcome | points | max abs err | max rel err |",
            "|---|---|---:|---:|---:|",
        ]
        for name, leg in conformance.items():
            lines.append(
                f"| {_code(name)} | {leg['outcome']} | {leg.get('n_points', 0)} | "
                f"{_num(leg.get('max_abs_err'))} | {_num(leg.get('max_rel_err'))} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


def _claim_block(c: dict[str, Any], r: dict[str, Any] | None) -> list[str]:
    status = r["status"] if r else "not run"
    badge = _badge(status) if r else "not run in this build"
    out = [
        f"### `{c['id']}` {{ #{c['id']} }}",
        "",
        f"{badge} · {c['kind']}" + (f" · proof scope {r['scope']}" if r and r.get("scope") else ""),
        "",
        _text(c["text"]),
        "",
    ]
    if r and r.get("latex"):
        out += ["$$", r["latex"], "$$", ""]
    out += [f"**Source:** {_text(c['source'])}", ""]
    if c.get("facts"):
        out += ["**Facts:** " + "; ".join(_code(f) for f in c["facts"]), ""]
    if c.get("uses"):
        out += ["**Definitions:** " + ", ".join(_code(u) for u in c["uses"]), ""]
    out += ["**Evidence required:** " + ", ".join(c.get("evidence", [])), ""]
    if r:
        out += [f"- {_leg_line(leg)}" for leg in r.get("legs", [])] + [""]
    if status in ("refuted", "error"):
        log.warning("claim %s is %s", c["id"], status)
    return out


def on_files(files: Files, config: MkDocsConfig, **_: Any) -> Files:
    root = _root(config)
    code, out, err = _cli(root, "claims", "--json")
    if code != 0:
        raise PluginError(f"softnce claims --json exited {code}: {err.strip()[-2000:]}")
    doc = json.loads(out)
    if not isinstance(doc, dict) or doc.get("schema") != "softnce-theory/catalogue/1":
        raise PluginError("softnce claims --json: expected schema softnce-theory/catalogue/1")
    listing = doc["claims"]
    data, how = _verify_json(root)
    known = {c["id"] for c in listing}
    stale = [c["id"] for c in data.get("claims", []) if c["id"] not in known]
    if stale:
        log.warning("the verification JSON has claims the catalogue lacks (stale?): %s", stale)
    files.append(
        File.generated(config, "catalogue.md", content=catalogue_markdown(listing, data, how))
    )
    changelog = root / "CHANGELOG.md"
    if changelog.exists():
        files.append(File.generated(config, "changelog.md", content=changelog.read_text()))
    return files
