r"""MkDocs hook: render LaTeX as MathML at build time (no JavaScript, no CDN).

Formulas reach the site from two places:

* markdown pages write ``$...$`` and ``$$...$$``; ``pymdownx.arithmatex`` (generic mode) shields
  them from markdown and wraps them as ``<span class="arithmatex">\(...\)</span>`` /
  ``<div class="arithmatex">\[...\]</div>``;
* docstrings write RST: the ``:math:`...``` role and ``.. math::`` blocks. A preprocessor turns
  the blocks into ``$$`` blocks and an inline pattern turns the role into the same span.

A postprocessor then converts every such span and div to MathML with ``latex2mathml`` (pure
Python); browsers render MathML natively. A formula the converter rejects is kept as its LaTeX
source in ``<code>`` and logged as a warning, so ``mkdocs build --strict`` fails on it.

The extension is appended to ``markdown_extensions`` in ``on_config`` (before mkdocstrings
reads the list), so docstrings rendered by mkdocstrings get the same treatment as pages.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree
from typing import Any

from latex2mathml.converter import convert
from markdown import Extension, Markdown
from markdown.inlinepatterns import InlineProcessor
from markdown.postprocessors import Postprocessor
from markdown.preprocessors import Preprocessor
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority, get_plugin_logger

log = get_plugin_logger("mathml")

# Python-Markdown serialises the AtomicString inside these elements with &, <, > escaped.
_SPAN = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_DIV = re.compile(r'<div class="arithmatex">\s*\\\[(.*?)\\\]\s*</div>', re.S)
_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")
# not after a backtick: `:math:` written as code in a page stays code
_ROLE = r"(?<!`):math:`(?P<tex>[^`]+)`"
# Sphinx cross-reference roles in docstrings: shown as code, linked when mkdocstrings knows them.
_XREF = r"(?<!`):(?:func|class|mod|meth|data|attr|exc|obj):`(?P<target>~?[\w.]+)`"
# ``emb[b][v]`` in plain docstring text is indexing, not a reference link to ``v``.
_INDEXING = r"(?<=\w)(?P<idx>(?:\[[^\]\s]*\]){2,})"


def to_mathml(tex: str, display: bool) -> str:
    """MathML for ``tex``; on a conversion error the LaTeX in ``<code>`` and a warning."""
    tex = tex.strip()
    try:
        return convert(tex, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises many types for unsupported input
        log.warning("cannot convert LaTeX to MathML (%s: %s): %s", type(exc).__name__, exc, tex)
        return f'<code class="softnce-tex">{html.escape(tex)}</code>'


class _RstMathBlocks(Preprocessor):
    """``.. math::`` + its indented body -> a ``$$`` block at the directive's indentation."""

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        i = 0
        while i < len(lines):
            m = _DIRECTIVE.match(lines[i])
            if not m:
                out.append(lines[i])
                i += 1
                continue
            indent = m["indent"]
            body = [m["rest"]] if m["rest"].strip() else []
            i += 1
            while i < len(lines):
                line = lines[i]
                if line.strip() and len(line) - len(line.lstrip()) <= len(indent):
                    break
                body.append(line.strip())
                i += 1
            tex = "\n".join(b for b in body if b)
            out += [
                "",
                f"{indent}$$",
                *(f"{indent}{b}" for b in tex.splitlines()),
                f"{indent}$$",
                "",
            ]
        return out


class _RstMathRole(InlineProcessor):
    """``:math:`x``` -> the span that arithmatex makes for ``$x$``."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[etree.Element, int, int]:
        from markdown.util import AtomicString

        el = etree.Element("span", {"class": "arithmatex"})
        el.text = AtomicString(f"\\({m['tex']}\\)")
        return el, m.start(0), m.end(0)


class _RstXref(InlineProcessor):
    """``:func:`~a.b.c``` -> ``c`` in code, an optional autorefs link to ``a.b.c``."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[str, int, int]:
        target = m["target"]
        full = target.lstrip("~")
        shown = full.rsplit(".", 1)[-1] if target.startswith("~") else full
        tag = (
            f'<autoref identifier="{html.escape(full)}" optional>'
            f"<code>{html.escape(shown)}</code></autoref>"
        )
        return self.md.htmlStash.store(tag), m.start(0), m.end(0)


class _Indexing(InlineProcessor):
    """``a[i][j]`` right after a word character stays literal text."""

    def handleMatch(self, m: re.Match[str], data: str) -> tuple[str, int, int]:
        from markdown.util import AtomicString

        return AtomicString(m["idx"]), m.start(0), m.end(0)


class _ToMathML(Postprocessor):
    def run(self, text: str) -> str:
        text = _DIV.sub(lambda m: to_mathml(html.unescape(m[1]), display=True), text)
        return _SPAN.sub(lambda m: to_mathml(html.unescape(m[1]), display=False), text)


class MathMLExtension(Extension):
    """RST math and cross-reference roles, then LaTeX -> MathML (needs pymdownx.arithmatex)."""

    def extendMarkdown(self, md: Markdown) -> None:
        # before fenced code (25) and arithmatex's block processor; roles before backticks (190)
        md.preprocessors.register(_RstMathBlocks(md), "softnce_rst_math", 27)
        md.inlinePatterns.register(_RstMathRole(_ROLE, md), "softnce_rst_math_role", 195)
        md.inlinePatterns.register(_RstXref(_XREF, md), "softnce_rst_xref", 194)
        md.inlinePatterns.register(_Indexing(_INDEXING, md), "softnce_indexing", 175)
        # after raw HTML (30) and amp substitution (20) have run; before unescape (10)
        md.postprocessors.register(_ToMathML(md), "softnce_mathml", 15)


@event_priority(100)  # before mkdocstrings copies the extension list for its own Markdown
def on_config(config: MkDocsConfig, **_: Any) -> MkDocsConfig:
    if "pymdownx.arithmatex" not in config.markdown_extensions:
        log.warning("mathml hook: add pymdownx.arithmatex (generic: true) to markdown_extensions")
    config.markdown_extensions.append(MathMLExtension())
    return config
