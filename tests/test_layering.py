"""The three layers import only downward: derivations <- numerics <- softnce_theory."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Each layer's folder and the imports it must not make. The folders ``derivations/`` and
#: ``numerics/`` are installed as ``softnce_theory.derivations`` / ``softnce_theory.numerics``;
#: an import is named here by its first two dotted parts for ``softnce_theory.*``.
FORBIDDEN = {
    "derivations": {
        "softnce_theory.numerics",
        "softnce_theory.*",  # anything in softnce_theory but derivations itself
        "torch",
        "numpy",
        "mpmath",
        "scipy",
        "derivations",  # the bare top-level names would collide with user packages
        "numerics",
    },
    "numerics": {"softnce_theory.*", "derivations", "numerics"},
}
OWN = {
    "derivations": {"softnce_theory.derivations"},
    "numerics": {"softnce_theory.derivations", "softnce_theory.numerics"},
}


def _key(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "softnce_theory" else parts[0]


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield _key(a.name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield _key(node.module)


def _forbidden(layer: str, mod: str) -> bool:
    if mod in OWN[layer]:
        return False
    rules = FORBIDDEN[layer]
    return mod in rules or ("softnce_theory.*" in rules and mod.startswith("softnce_theory"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_downward(layer):
    bad = []
    for path in (ROOT / layer).rglob("*.py"):
        for mod in _imports(path):
            if _forbidden(layer, mod):
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, bad


def test_family_modules_are_parallel():
    from softnce_theory._builtin import BUILTIN

    for fam in (f.name for f in BUILTIN):
        for where in ("derivations", "numerics", "softnce_theory/engine", "softnce_theory/losses"):
            assert (ROOT / where / f"{fam}.py").exists(), f"{where}/{fam}.py missing"


def test_every_family_module_is_registered():
    """A family module in any layer that no registered family declares would be silently
    dropped (its claims never run): each must be a built-in family."""
    from softnce_theory._builtin import BUILTIN

    names = {f.name for f in BUILTIN}
    skip = {"__init__", "lemmas", "tactics", "generic"}  # generic: the spec engine
    for where in ("derivations", "numerics", "softnce_theory/engine", "softnce_theory/losses"):
        found = {
            p.stem
            for p in (ROOT / where).glob("*.py")
            if not p.stem.startswith("_") and p.stem not in skip
        }
        extra = found - names - {"distributed", "domains"}  # shared by every family
        assert not extra, f"{where}: modules {sorted(extra)} belong to no registered family"
