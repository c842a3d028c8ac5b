"""A user project with its own top-level ``numerics`` and ``derivations`` packages: the toolkit
installs its layers as ``softnce_theory.numerics`` / ``softnce_theory.derivations`` and must not
import the user's packages in their place (the CLI, ``python -m``, and the pytest fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_PKG = 'raise ImportError("the user\'s own {name} package must never be imported")\n'


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("numerics", "derivations"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(USER_PKG.format(name=name))
        (tmp_path / name / "_mp.py").write_text(USER_PKG.format(name=name))
    (tmp_path / "my_loss.py").write_text(
        textwrap.dedent(
            """
            import torch

            def soft_ce(logits, targets):
                logp = torch.log_softmax(logits, dim=-1)
                terms = torch.where(targets > 0, targets * logp, torch.zeros_like(logp))
                return -terms.sum(-1).mean()
            """
        )
    )
    (tmp_path / "test_guard.py").write_text(
        textwrap.dedent(
            """
            from my_loss import soft_ce

            def test_soft_ce(softnce_audit):
                assert softnce_audit(soft_ce, family="soft_ce", max_examples=5).passed
            """
        )
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return tmp_path


def _run(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(project))
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_verify_in_a_project_with_its_own_numerics(project: Path) -> None:
    res = _run(
        project,
        "-m",
        "softnce_theory.cli",
        "verify",
        "--claim",
        "cross_entropy.soft_ce_gradient",
        "--quick",
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Traceback" not in res.stderr


def test_cli_audit_in_a_project_with_its_own_numerics(project: Path) -> None:
    res = _run(
        project,
        "-m",
        "softnce_theory.cli",
        "audit",
        "my_loss:soft_ce",
        "--family",
        "soft_ce",
        "--max-examples",
        "5",
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-2000:]
    assert "Traceback" not in res.stderr


def test_pytest_fixture_in_a_project_with_its_own_numerics(project: Path) -> None:
    res = _run(project, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_guard.py")
    assert res.returncode == 0, (res.stdout + res.stderr)[-2000:]
    assert "1 passed" in res.stdout
