"""The documentation site: formulas become MathML, ``mkdocs build --strict`` passes, and the
generated claim catalogue shows every claim; a slow test renders the catalogue in Chromium."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
for _mod in ("mkdocs", "material", "mkdocstrings_handlers.python", "latex2mathml", "pymdownx"):
    pytest.importorskip(_mod, reason=f"the docs extra is not installed ({_mod} is missing)")

import markdown  # noqa: E402  (after the skips: a dependency of mkdocs)


def _load_hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"_docs_hook_{name}", ROOT / "docs/hooks" / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _render(text: str) -> str:
    ext = _load_hook("mathml").MathMLExtension()
    md = markdown.Markdown(
        extensions=["pymdownx.arithmatex", ext],
        extension_configs={"pymdownx.arithmatex": {"generic": True}},
    )
    return md.convert(text)


def _maths(page: str) -> list[str]:
    """The text content of every <math> element, entities decoded."""
    return [
        html.unescape(re.sub(r"<[^>]+>", "", m))
        for m in re.findall(r"<math\b.*?</math>", page, re.S)
    ]


def _without_code(page: str) -> str:
    return re.sub(r"<(pre|code)\b.*?</\1>", "", page, flags=re.S)


# ------------------------------------------------------------------ the math extension


def test_rst_role_and_dollar_math_become_inline_mathml() -> None:
    out = _render(r"Temperature :math:`\tau > 0` and $x^2$ here.")
    assert out.count('display="inline"') == 2, out
    assert "τ" in _maths(out)[0] and ">" in _maths(out)[0]
    assert "<msup>" in out
    assert ":math:" not in out and "$" not in out


def test_rst_math_block_becomes_display_mathml() -> None:
    text = "Intro:\n\n.. math::\n    \\ell = -\\log \\frac{a}{b}\n    + \\sigma\n\nAfter the block."
    out = _render(text)
    assert out.count('display="block"') == 1, out
    assert "<mfrac>" in out and "σ" in _maths(out)[0]
    assert ".. math::" not in out
    assert "<p>After the block.</p>" in out


def test_dollar_dollar_block_becomes_display_mathml() -> None:
    out = _render("$$\n\\sum_{k=1}^{K} e^{z_k}\n$$")
    assert 'display="block"' in out and "∑" in _maths(out)[0]


def test_code_stays_code() -> None:
    out = _render("Write `:math:` roles and `$x$` in code, e.g. `$ softnce verify`.")
    assert "<math" not in out
    assert "<code>:math:</code>" in out and "<code>$x$</code>" in out


def test_crossref_roles_and_indexing() -> None:
    out = _render("See :func:`~softnce_theory.losses.infonce.info_nce`; row emb[b][v] stays.")
    assert '<autoref identifier="softnce_theory.losses.infonce.info_nce" optional>' in out
    assert "<code>info_nce</code>" in out
    assert "emb[b][v]" in out


def test_unsupported_latex_is_kept_as_code_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    out = _render(r"Bad :math:`\frac{1}{`.")
    assert 'class="softnce-tex"' in out
    assert any("cannot convert LaTeX" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ the site


def _cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, f"{args} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    return proc.stdout


def _build(site: Path, claims_json: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SOFTNCE_DOCS_CLAIMS_JSON"}
    env["NO_MKDOCS_2_WARNING"] = "1"
    if claims_json is not None:
        env["SOFTNCE_DOCS_CLAIMS_JSON"] = str(claims_json)
    _cli("mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(site), env=env)


def _listing() -> list[dict[str, str]]:
    return json.loads(_cli("softnce_theory.cli", "claims", "--json"))["claims"]


def _check_pages(site: Path) -> None:
    """No formula is left unconverted on any page, and the formula pages have MathML."""
    pages = {p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("index.html")}
    for name, page in pages.items():
        prose = _without_code(page)
        assert ":math:`" not in prose, name
        assert not re.search(r"^\s*\.\. math::", prose, re.M), name
        assert 'class="arithmatex"' not in page and "$$" not in prose, name
        assert "softnce-tex" not in page, name
    for name in (
        "index.html",
        "api/losses_infonce/index.html",
        "api/losses_collision_ce/index.html",
    ):
        assert 'display="block"' in pages[name] and 'display="inline"' in pages[name], name


def test_site_builds_strictly_with_mathml_and_catalogue(tmp_path: Path) -> None:
    """``mkdocs build --strict`` on a verification run of one family (about 15 s; the full
    catalogue takes a minute and is built by the slow test below)."""
    run = tmp_path / "claims.json"
    run.write_text(
        _cli(
            "softnce_theory.cli",
            "verify",
            "--json",
            "--quick",
            "--family",
            "cross_entropy",
            "--jobs",
            "1",
        )
    )
    ran = {c["id"]: c["status"] for c in json.loads(run.read_text())["claims"]}
    assert ran and all(i.startswith("cross_entropy.") for i in ran)
    site = tmp_path / "site"
    _build(site, run)
    _check_pages(site)

    page = (site / "catalogue" / "index.html").read_text()
    listing = _listing()
    for claim in listing:
        assert f'id="{claim["id"]}"' in page, claim["id"]
    # each run claim: its status badge right after its heading, and its statement as MathML
    for cid, status in ran.items():
        block = page.split(f'id="{cid}"', 1)[1].split("<h3", 1)[0]
        assert f'class="softnce-status softnce-{status}">{status}<' in block, cid
        assert re.search(r'<math\b[^>]*display="block"', block), cid
    not_run = len(listing) - len(ran)
    assert f"{not_run} claims were not in this verification run" in page
    assert page.count("not run in this build") == not_run

    api = (site / "api" / "losses_infonce" / "index.html").read_text()
    assert 'id="softnce_theory.losses.infonce.info_nce"' in api
    assert (site / "changelog" / "index.html").exists()
    for fig in (ROOT / "docs" / "figures").glob("*.png"):
        assert (site / "figures" / fig.name).exists(), fig.name


# ------------------------------------------------------------------ in a browser

_PROBE = """<!doctype html><html><body>
<iframe id="f" src="/catalogue/" width="1280" height="2000"></iframe>
<script>
document.getElementById("f").onload = () => {
  const d = document.getElementById("f").contentDocument;
  const ms = [...d.querySelectorAll("math")];
  const frac = d.querySelector("mfrac");
  let stacked = false;
  if (frac && frac.children.length === 2) {
    const num = frac.children[0].getBoundingClientRect();
    const den = frac.children[1].getBoundingClientRect();
    stacked = num.bottom <= den.top + 1;
  }
  const res = {
    n: ms.length,
    mathml: ms.filter((m) => m instanceof d.defaultView.MathMLElement).length,
    empty: ms.filter((m) => {
      const r = m.getBoundingClientRect();
      return r.width === 0 || r.height === 0;
    }).length,
    stacked: stacked,
  };
  const out = document.createElement("pre");
  out.id = "result";
  out.textContent = JSON.stringify(res);
  document.body.appendChild(out);
};
</script></body></html>
"""


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_catalogue_math_renders_in_chromium(tmp_path: Path) -> None:
    """The full site (the whole catalogue: runs ``softnce verify --quick`` unless cached), served
    on localhost and loaded in headless Chromium: every statement is a laid-out MathML element
    and fractions are stacked."""
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    site = tmp_path / "site"
    _build(site)
    n_claims = len(_listing())
    (site / "probe.html").write_text(_PROBE)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=site,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
        dom = subprocess.run(
            [
                *flags,
                "--virtual-time-budget=20000",
                "--dump-dom",
                f"http://127.0.0.1:{port}/probe.html",
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        ).stdout
        found = re.search(r'<pre id="result">(.*?)</pre>', dom)
        assert found, dom[-2000:]
        res = json.loads(html.unescape(found[1]))
        assert res["n"] >= n_claims, res  # at least one statement per claim
        assert res["mathml"] == res["n"], res  # Chromium parsed them as MathML elements
        assert res["empty"] == 0, res  # and laid every one out
        assert res["stacked"], res  # a fraction's numerator sits above its denominator

        shot = tmp_path / "catalogue.png"
        subprocess.run(
            [
                *flags,
                f"--screenshot={shot}",
                "--window-size=1280,2000",
                f"http://127.0.0.1:{port}/catalogue/",
            ],
            capture_output=True,
            timeout=180,
            check=False,
        )
        head = shot.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", head[16:24]) == (1280, 2000)
    finally:
        server.terminate()
        server.wait(timeout=10)
