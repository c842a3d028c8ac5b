"""The three layers import only downward: derivations <- numerics <- softnce_theory."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "derivations": {"numerics", "softnce_theory", "torch", "numpy", "mpmath", "scipy"},
    "numerics": {"softnce_theory"},
}


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downward(layer):
    bad = []
    for path in (ROOT / layer).rglob("*.py"):
        for mod in _imports(path):
            if mod in FORBIDDEN[layer]:
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, bad


def test_family_modules_are_parallel():
    from derivations import FAMILIES

    for fam in FAMILIES:
        for where in ("derivations", "numerics", "softnce_theory/engine", "softnce_theory/losses"):
            assert (ROOT / where / f"{fam}.py").exists(), f"{where}/{fam}.py missing"
