"""The sdist is complete (tests with their conftest and mutants, docs, licence, the symlinked
layers as real files) and a wheel built from the sdist alone installs every layer."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("derivations", "numerics")  # softnce_theory/<layer> -> ../<layer>


def _project_files() -> list[str]:
    """Tracked and untracked-but-not-ignored paths, as git lists them (symlinks as links)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout (the sdist is built from the project's own files)")
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    return [p for p in out.decode().split("\0") if p]


def _copy_project(dest: Path) -> None:
    """A clean copy (no build artefacts, no stale egg-info), symlinks kept as symlinks."""
    for rel in _project_files():
        src, dst = ROOT / rel, dest / rel
        if not src.is_symlink() and not src.exists():
            continue  # deleted in the working tree, not yet in the index
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def _build(kind: str, source: Path, out: Path) -> Path:
    """``python -m build --KIND --no-isolation`` if pypa/build is installed, else setuptools'
    PEP 517 backend directly; both in a subprocess with ``source`` as working directory."""
    try:
        importlib.metadata.version("build")
        cmd = [sys.executable, "-m", "build", f"--{kind}", "--no-isolation", "--outdir", str(out)]
    except importlib.metadata.PackageNotFoundError:
        hook = "build_sdist" if kind == "sdist" else "build_wheel"
        code = f"from setuptools import build_meta as b; b.{hook}({str(out)!r})"
        cmd = [sys.executable, "-c", code]
    proc = subprocess.run(cmd, cwd=source, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (built,) = out.glob("*.tar.gz" if kind == "sdist" else "*.whl")
    return built


def test_sdist_is_complete_and_builds_a_complete_wheel(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _copy_project(project)
    for layer in LAYERS:
        assert (project / "softnce_theory" / layer).is_symlink(), layer
    sdist = _build("sdist", project, tmp_path / "dist")

    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1]: m for m in tar.getmembers() if "/" in m.name}
        tar.extractall(tmp_path / "unpacked", filter="data")
    names = set(members)

    # the files the sdist's own tests import, and the project files
    expected = {
        "tests/conftest.py",
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "CITATION.cff",
        "MANIFEST.in",
        "mkdocs.yml",
        "constraints.txt",
        "tasks.py",
        "docs/hooks/mathml.py",
    }
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests").rglob("*.py")}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "examples").rglob("*.py")}
    expected |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "benchmarks").glob("*.py")}
    mutants = {p.relative_to(ROOT).as_posix() for p in (ROOT / "tests/mutants").iterdir()}
    assert mutants and {m for m in mutants if "__pycache__" not in m} <= names
    # the symlinked layers: real files under softnce_theory/, and the top-level folders that
    # tests/test_layering.py reads
    for layer in LAYERS:
        modules = [p.relative_to(ROOT / layer).as_posix() for p in (ROOT / layer).rglob("*.py")]
        assert modules, layer
        for mod in modules:
            expected |= {f"softnce_theory/{layer}/{mod}", f"{layer}/{mod}"}
            assert members[f"softnce_theory/{layer}/{mod}"].isfile(), mod  # not a link
    missing = sorted(p for p in expected if p.split("/")[-1] != "__pycache__" and p not in names)
    assert not missing, missing
    junk = sorted(n for n in names if "__pycache__" in n or n.endswith(".pyc"))
    junk += sorted(n for n in names if n.split("/")[0] in {"build", "dist", "site", ".venv"})
    assert not junk, junk

    # a wheel built from the unpacked sdist alone has every layer, and no bare top-level layer
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    wheel = _build("wheel", unpacked, tmp_path / "wheel")
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = set(zf.namelist())
    for layer in LAYERS:
        for p in (ROOT / layer).rglob("*.py"):
            rel = p.relative_to(ROOT / layer).as_posix()
            assert f"softnce_theory/{layer}/{rel}" in in_wheel, rel
        assert f"softnce_theory/{layer}/py.typed" in in_wheel
        assert not any(n.startswith(f"{layer}/") for n in in_wheel), layer
    assert "softnce_theory/py.typed" in in_wheel
    assert not any(n.startswith("tests/") for n in in_wheel)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in in_wheel)


def test_citation_and_changelog_name_the_package_version() -> None:
    """CITATION.cff and CHANGELOG.md follow the version in pyproject.toml (via the metadata)."""
    version = importlib.metadata.version("softnce-theory")
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^cff-version: 1\.2\.0$", cff, re.M)
    assert re.search(rf'^version: "{re.escape(version)}"$', cff, re.M), version
    assert "softnce-theory contributors" in cff
    changelog = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## (\S+)", changelog, re.M)
    assert headings[0] == "Unreleased" and version in headings, headings
