"""``softnce claims --latex`` exports mathematics that a real LaTeX engine compiles.

Slow: needs ``pdflatex`` (Debian: ``apt-get install texlive-latex-base texlive-latex-recommended``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

PREAMBLE = r"""\documentclass{article}
\usepackage[utf8]{inputenc}
\usepackage[T1]{fontenc}
\usepackage{amsmath,amssymb}
\usepackage[margin=1.5cm]{geometry}
\allowdisplaybreaks
\begin{document}
\section*{Claim catalogue}
"""


def test_claims_latex_export_compiles_with_pdflatex(tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base)")
    body = subprocess.run(
        [sys.executable, "-m", "softnce_theory.cli", "claims", "--latex"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert body.count(r"\item") >= 60  # every claim is exported
    assert "Symbol" not in body and "<statement failed" not in body
    tex = tmp_path / "catalogue.tex"
    tex.write_text(PREAMBLE + body + "\n\\end{document}\n")
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert (tmp_path / "catalogue.pdf").stat().st_size > 10_000
