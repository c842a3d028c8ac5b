"""The built wheel in fresh virtual environments, outside the repository (slow: it installs torch).

* core install (no extras): every loss imports and runs, and importing them loads neither
  sympy, mpmath, scipy, matplotlib nor hypothesis;
* ``[all]``: every CLI command works from an empty directory, ``bench`` included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    res = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        cwd=out,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    (whl,) = out.glob("softnce_theory-*.whl")
    return whl


def _venv(where: Path, wheel: Path, extra: str) -> Path:
    venv.EnvBuilder(with_pip=True).create(where)
    py = where / "bin" / "python"
    spec = f"{wheel}{extra}"
    res = _run(
        [str(py), "-m", "pip", "install", "-q", "-c", str(ROOT / "constraints.txt"), spec],
        cwd=where,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return py


def test_core_install_imports_every_loss_without_the_extras(tmp_path: Path, wheel: Path) -> None:
    py = _venv(tmp_path / "core", wheel, "")
    code = (
        "import sys, torch\n"
        "import softnce_theory.losses as L\n"
        "heavy = {'sympy', 'mpmath', 'scipy', 'matplotlib', 'hypothesis', 'rich'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "z = torch.nn.functional.normalize(torch.randn(8, 4), dim=1)\n"
        "y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])\n"
        "print(float(L.sincere_loss(z, y, temperature=0.5)))\n"
        "print(len(L.__all__))\n"
    )
    res = _run([str(py), "-c", code], cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    res = _run([str(py), "-m", "softnce_theory.cli", "claims"], cwd=tmp_path)
    assert res.returncode == 2
    assert "pip install 'softnce-theory[verify]'" in res.stderr


def test_every_command_works_from_the_wheel(tmp_path: Path, wheel: Path) -> None:
    py = _venv(tmp_path / "all", wheel, "[all]")
    cli = str(tmp_path / "all" / "bin" / "softnce")
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_loss.py").write_text(
        "import torch\n"
        "def soft_ce(logits, targets):\n"
        "    logp = torch.log_softmax(logits, dim=-1)\n"
        "    return -torch.where(targets > 0, targets * logp, torch.zeros_like(logp)).sum(-1).mean()\n"
    )
    commands = [
        ["verify", "--quick", "--family", "cross_entropy"],
        ["claims", "--family", "sincere"],
        ["mc", "ranking_nce", "--k", "2,4", "--max-samples", "256", "--json"],
        ["audit", "my_loss:soft_ce", "--family", "soft_ce", "--max-examples", "5"],
        ["plots", "collision_vs_shannon", "--out", str(work / "figs"), "--quick"],
        # the smallest real benchmark run (every size tiny, cases in-process)
        ["bench", "--json", str(work / "bench.json"), "--device", "cpu", "--", "--in-process",
         "--silent", "--batch", "32", "--st-batch", "8", "--classes", "4", "--scaling", "16",
         "--big", "0", "--repeats", "1", "--dim", "4", "--agree-batch", "0",
         "--family", "sincere", "--scaling-family", "sincere"],
    ]  # fmt: skip
    for args in commands:
        res = _run([cli, *args], cwd=work)
        assert res.returncode == 0, (args, res.stdout[-1000:], res.stderr[-2000:])
    assert (work / "figs" / "collision_vs_shannon.png").exists()
    assert '"softnce-theory/bench/1"' in (work / "bench.json").read_text()
    _ = py
