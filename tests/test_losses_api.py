"""Structure of :mod:`softnce_theory.losses`: an acyclic import graph, no private names used
across modules, one softplus, a light import (no sympy & co.), and a complete public API
(package re-exports; ``nn.Module`` wrappers that expose every keyword of their function)."""

from __future__ import annotations

import ast
import importlib
import inspect
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import softnce_theory.losses as L
import softnce_theory.losses._common as C
import softnce_theory.losses.domains as LD
from softnce_theory.losses import aljundi as al
from softnce_theory.losses import collision_ce as cce
from softnce_theory.losses import cross_entropy as ce
from softnce_theory.losses import distributed as dl
from softnce_theory.losses import infonce as nce
from softnce_theory.losses import sincere as sc
from softnce_theory.losses import soft_target_infonce as sti
from softnce_theory.losses import tiled

PKG = Path(L.__file__).resolve().parent
ROOT = PKG.parents[1]
NAME = "softnce_theory.losses"
FAMILY_MODULES = (al, cce, ce, nce, sc, sti)


# ============================================================================ import graph


def _module_files() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([NAME, *parts])] = path
    return out


MODULES = _module_files()


def _resolve(mod: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = mod.split(".")
    is_pkg = MODULES[mod].name == "__init__.py"
    base = base if is_pkg else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mod: str) -> list[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` of every import in ``mod``, at any depth
    (a function-level import counts: it is a dependency all the same)."""
    tree = ast.parse(MODULES[mod].read_text())
    out: list[tuple[str, str | None, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(mod, node)
            out += [(src, a.name, node.lineno) for a in node.names]
    return out


def import_graph() -> dict[str, set[str]]:
    """Edges between the package's modules: ``from X import y`` is an edge to ``X.y`` when that
    is a module of the package, else to ``X``. (The implicit import of a parent package is not
    an edge: Python initialises parents first, so it cannot close a cycle of partially
    initialised modules.)"""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod in MODULES:
        for src, name, _ in _imports(mod):
            target = f"{src}.{name}" if name and f"{src}.{name}" in MODULES else src
            if target in MODULES and target != mod:
                graph[mod].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a path ``[a, b, ..., a]``, or ``None`` (iterative DFS)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in sorted(graph):
        if root in state:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        state[root] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                state[node] = 2
                stack.pop()
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                path = [n for n, _ in stack]
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                state[nxt] = 1
                stack.append((nxt, sorted(graph.get(nxt, ()))))
    return None


def test_find_cycle_detects_cycles():
    """The checker itself can fail: it finds a planted cycle and accepts a DAG."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_losses_import_graph_is_acyclic():
    graph = import_graph()
    # the graph is real: the dense losses import the tiled ones, both import _common
    assert "softnce_theory.losses.tiled" in graph["softnce_theory.losses.sincere"]
    assert "softnce_theory.losses._common" in graph["softnce_theory.losses.tiled._losses"]
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_shared_module_is_below_every_loss_module():
    """``_common`` (validation and preparation) imports only the torch-free declarations
    (``domains``, which imports no other module of the package), and the tiled code imports no
    dense family module."""
    graph = import_graph()
    assert graph["softnce_theory.losses._common"] == {"softnce_theory.losses.domains"}
    assert graph["softnce_theory.losses.domains"] == set()
    dense = {f"{NAME}.{m}" for m in ("sincere", "infonce", "aljundi", "soft_target_infonce")}
    for mod, deps in graph.items():
        if mod.startswith(f"{NAME}.tiled"):
            assert not deps & dense, (mod, deps & dense)


def _is_module(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def private_uses(mod: str) -> list[str]:
    """Private (``_name``, not dunder) names that ``mod`` takes from another softnce_theory
    module: ``from X import _f`` or ``alias._f`` on an imported module (private *modules* such as
    ``_common`` are package-internal and allowed)."""
    tree = ast.parse(MODULES[mod].read_text())
    aliases: dict[str, str] = {}
    bad = []
    for src, name, line in _imports(mod):
        if not src.startswith("softnce_theory"):
            continue
        if name is None:
            continue
        if name.startswith("_") and not name.startswith("__") and not _is_module(f"{src}.{name}"):
            bad.append(f"{mod}:{line} imports {src}.{name}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            src = _resolve(mod, node)
            for a in node.names:
                if src.startswith("softnce_theory") and _is_module(f"{src}.{a.name}"):
                    aliases[a.asname or a.name] = f"{src}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("softnce_theory") and a.asname:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            bad.append(f"{mod}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    return bad


def test_private_use_checker_flags_both_forms(tmp_path, monkeypatch):
    src = (
        "from softnce_theory.losses.sincere import _logits\n"
        "from softnce_theory.losses import infonce as nce\n"
        "from softnce_theory.losses import _common\n"
        "x = nce._log1p_sum_exp\n"
        "y = _common.unit_rows\n"
    )
    f = tmp_path / "probe.py"
    f.write_text(src)
    monkeypatch.setitem(MODULES, "softnce_theory.losses.probe", f)
    bad = private_uses("softnce_theory.losses.probe")
    assert len(bad) == 2, bad
    assert "sincere._logits" in bad[0] and "infonce._log1p_sum_exp" in bad[1]


def test_no_private_name_crosses_modules():
    bad = [b for mod in MODULES for b in private_uses(mod)]
    assert not bad, bad


def test_exactly_one_softplus_helper():
    defs = []
    for mod, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and "softplus" in node.name.lower():
                defs.append(f"{mod}.{node.name}")
    assert defs == ["softnce_theory.losses._common.softplus"], defs


# ============================================================================ light import

BLOCKED = ("sympy", "mpmath", "scipy", "matplotlib", "hypothesis", "rich")

_PROBE = """
import importlib.abc, sys

BLOCKED = {blocked!r}


class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"blocked: {{name}}")
        return None


sys.meta_path.insert(0, Blocker())
try:
    import sympy  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("the blocker does not block")
sys.path.insert(0, {tests!r})
import test_losses_api as t

names = t.call_every_loss()
print(len(names), sorted(names))
print("loaded:", sorted({{m.split(".")[0] for m in sys.modules}} & set(BLOCKED)))
"""


def _inputs() -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)

    def rn(*s: int) -> torch.Tensor:
        return torch.randn(*s, generator=g, dtype=torch.float64)

    f = rn(4, 3)
    return {
        "x": rn(6, 4).requires_grad_(True),
        "lab": torch.tensor([0, 0, 1, 1, 2, 2]),
        "w": rn(3, 4),
        "q": rn(4, 4).requires_grad_(True),
        "k": rn(4, 4),
        "f": f.requires_grad_(True),
        "a": torch.softmax(rn(4, 3), -1),
        "y": torch.tensor([0, 1, 2, 1]),
        "s": rn(4, 5),
    }


def _calls(v: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """One valid call of every public loss (package ``__all__``, tiled and distributed)."""
    x, lab, w, q, k, f, a, y, s = (v[n] for n in ("x", "lab", "w", "q", "k", "f", "a", "y", "s"))
    cat_a, cat_y = torch.cat([a, a]), torch.cat([y, y])
    out: dict[str, Callable[[], Any]] = {
        "supcon_loss": lambda: L.supcon_loss(x, lab),
        "sincere_loss": lambda: L.sincere_loss(x, lab),
        "supcon_from_logits": lambda: L.supcon_from_logits(x @ x.T, lab),
        "sincere_from_logits": lambda: L.sincere_from_logits(x @ x.T, lab),
        "flatten_views": lambda: L.flatten_views(x.reshape(3, 2, 4), lab[:3])[0],
        "SupConLoss": lambda: L.SupConLoss()(x, lab),
        "SINCERELoss": lambda: L.SINCERELoss()(x, lab),
        "prototype_cross_entropy": lambda: L.prototype_cross_entropy(x, lab, w),
        "prototype_predict": lambda: L.prototype_predict(x, w),
        "esupcon_loss": lambda: L.esupcon_loss(x, lab, w),
        "esupcon_formula": lambda: L.esupcon_formula(x @ x.T, x @ w.T, lab),
        "PrototypeCrossEntropy": lambda: L.PrototypeCrossEntropy(3, 4).double()(x, lab),
        "ESupConLoss": lambda: L.ESupConLoss(3, 4).double()(x, lab),
        "info_nce": lambda: L.info_nce(q, k),
        "symmetric_info_nce": lambda: L.symmetric_info_nce(q, k),
        "ranking_nce": lambda: L.ranking_nce(s),
        "InfoNCE": lambda: L.InfoNCE()(q, k),
        "SymmetricInfoNCE": lambda: L.SymmetricInfoNCE()(q, k),
        "RankingNCE": lambda: L.RankingNCE()(s),
        "soft_target_info_nce": lambda: L.soft_target_info_nce(f, a, candidates=cat_a, offset=4),
        "info_nce_hard_labels": lambda: L.info_nce_hard_labels(f, y, candidate_labels=cat_y),
        "info_nce_from_scores": lambda: L.info_nce_from_scores(s, torch.tensor([0, 1, 2, 3])),
        "SoftTargetInfoNCE": lambda: L.SoftTargetInfoNCE()(f, a),
        "InfoNCEHardLabels": lambda: L.InfoNCEHardLabels()(f, y),
        "soft_target_cross_entropy": lambda: L.soft_target_cross_entropy(f, a),
        "nll_loss": lambda: L.nll_loss(f, y),
        "label_smoothing_cross_entropy": lambda: L.label_smoothing_cross_entropy(f, y, epsilon=0.1),
        "SoftTargetCrossEntropy": lambda: L.SoftTargetCrossEntropy()(f, a),
        "HardNLL": lambda: L.HardNLL()(f, y),
        "LabelSmoothingCrossEntropy": lambda: L.LabelSmoothingCrossEntropy(0.1)(f, y),
        "collision_cross_entropy": lambda: L.collision_cross_entropy(f, a),
        "self_labeling_loss": lambda: L.self_labeling_loss(f, a, lam=1.0),
        "CollisionCrossEntropy": lambda: L.CollisionCrossEntropy()(f, a),
        "SelfLabelingLoss": lambda: L.SelfLabelingLoss(1.0)(f, a),
        "em_pseudo_labels": lambda: L.em_pseudo_labels(a, lam=1.0, max_iter=3).y,
        "EMResult": lambda: L.pgd_pseudo_labels(a, lam=1.0, step=1.0, max_iter=3),
        "pgd_pseudo_labels": lambda: L.pgd_pseudo_labels(a, lam=1.0, step=1.0, max_iter=3).y,
        "project_simplex": lambda: L.project_simplex(f),
        "pseudo_label_objective": lambda: L.pseudo_label_objective(a, a, lam=1.0),
        "pseudo_label_gradient": lambda: L.pseudo_label_gradient(a, a, lam=1.0),
        "pseudo_label_kkt_residual": lambda: L.pseudo_label_kkt_residual(a, a, lam=1.0),
        "pseudo_label_gap": lambda: L.pseudo_label_gap(a, a, lam=1.0),
        "tiled_supcon_loss": lambda: L.tiled_supcon_loss(x, lab, tile=2),
        "tiled_sincere_loss": lambda: L.tiled_sincere_loss(x, lab, tile=2),
        "tiled_esupcon_loss": lambda: L.tiled_esupcon_loss(x, lab, w, tile=2),
        "tiled_info_nce": lambda: L.tiled_info_nce(q, k, tile=2),
        "tiled_symmetric_info_nce": lambda: L.tiled_symmetric_info_nce(q, k, tile=2),
        "tiled_soft_target_info_nce": lambda: L.tiled_soft_target_info_nce(f, a, tile=2),
        "distributed.supcon_loss": lambda: dl.supcon_loss(x, lab, tile=2),
        "distributed.sincere_loss": lambda: dl.sincere_loss(x, lab),
        "distributed.esupcon_loss": lambda: dl.esupcon_loss(x, lab, w),
        "distributed.info_nce": lambda: dl.info_nce(q, k),
        "distributed.symmetric_info_nce": lambda: dl.symmetric_info_nce(q, k),
        "distributed.soft_target_info_nce": lambda: dl.soft_target_info_nce(f, a),
        "distributed.gather_with_grad": lambda: dl.gather_with_grad(x)[0],
        "distributed.world": lambda: torch.tensor(dl.world()),
    }
    return out


def call_every_loss() -> list[str]:
    """Call every public loss once (and its backward where it has one); every result must be
    finite. Returns the names called."""
    calls = _calls(_inputs())
    for name, call in calls.items():
        res = call()
        if isinstance(res, L.EMResult):
            res = res.y
        if isinstance(res, float):
            res = torch.tensor(res)
        assert isinstance(res, torch.Tensor), name
        assert bool(torch.isfinite(res).all()), name
        if res.requires_grad:
            res.sum().backward()
    return list(calls)


def test_every_public_loss_has_a_call():
    names = set(_calls(_inputs()))
    want = set(L.__all__) | {f"distributed.{n}" for n in dl.__all__}
    assert names == want, (want - names, names - want)


def test_losses_import_and_run_without_heavy_packages():
    """Core install = torch + numpy: with sympy, mpmath, scipy, matplotlib, hypothesis and rich
    made unimportable, every loss imports and runs (dense, tiled and distributed paths)."""
    code = _PROBE.format(blocked=BLOCKED, tests=str(Path(__file__).parent))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    count, _ = r.stdout.split(" ", 1)
    assert int(count) == len(set(L.__all__)) + len(dl.__all__), r.stdout
    assert "loaded: []" in r.stdout, r.stdout


def test_importing_a_loss_does_not_load_dynamo():
    """``torch._dynamo`` (and with it sympy) loads only when a loss is compiled."""
    code = (
        "import sys\n"
        "from softnce_theory.losses.sincere import sincere_loss\n"
        "import softnce_theory.losses.distributed\n"
        "print(sorted(m for m in ('torch._dynamo', 'sympy') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "[]", r.stdout


# ============================================================================ public API


def test_package_reexports_every_public_loss():
    assert L.__all__ == sorted(set(L.__all__), key=L.__all__.index)  # no duplicates
    for mod in FAMILY_MODULES:
        for name in mod.__all__:
            assert name in L.__all__, f"{mod.__name__}.{name} missing from losses.__all__"
            assert getattr(L, name) is getattr(mod, name)
    for name in tiled.__all__:
        if name.startswith("tiled_"):
            assert getattr(L, name) is getattr(tiled, name)
    for name in L.__all__:
        assert callable(getattr(L, name)), name
    ns: dict[str, Any] = {}
    exec("from softnce_theory.losses import *", ns)
    assert set(L.__all__) <= set(ns)


def test_every_module_and_loss_of_a_family_is_in_all():
    """Nothing public is left out of the family ``__all__`` (hence of the package's)."""
    for mod in FAMILY_MODULES:
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if isinstance(obj, type) and issubclass(obj, torch.nn.Module):
                assert name in mod.__all__, f"{mod.__name__}.{name}"
            if inspect.isfunction(obj) and name.endswith(("_loss", "_nce", "_entropy")):
                assert name in mod.__all__, f"{mod.__name__}.{name}"


# ---------------------------------------------------------------------------- module wrappers

#: wrapper -> (its function, constructor arguments it requires, forward inputs, forward-only
#: keywords with a non-default valid value)
WRAPPERS: dict[type, tuple[Callable[..., Any], dict[str, Any], str, dict[str, Any]]] = {
    sc.SupConLoss: (sc.supcon_loss, {}, "x lab", {}),
    sc.SINCERELoss: (sc.sincere_loss, {}, "x lab", {}),
    al.PrototypeCrossEntropy: (al.prototype_cross_entropy, {"num_classes": 3, "dim": 4}, "x lab", {}),
    al.ESupConLoss: (al.esupcon_loss, {"num_classes": 3, "dim": 4}, "x lab", {}),
    nce.InfoNCE: (nce.info_nce, {}, "q k", {"negative_keys": "n", "key_log_q": "klq", "negative_log_q": "nlq"}),
    nce.SymmetricInfoNCE: (nce.symmetric_info_nce, {}, "q k", {}),
    nce.RankingNCE: (nce.ranking_nce, {}, "s", {"log_q": "lq"}),
    sti.SoftTargetInfoNCE: (sti.soft_target_info_nce, {}, "f a", {"candidates": "cat_a", "offset": 4}),
    sti.InfoNCEHardLabels: (sti.info_nce_hard_labels, {}, "f y", {"candidate_labels": "cat_y", "offset": 4}),
    ce.SoftTargetCrossEntropy: (ce.soft_target_cross_entropy, {}, "f a", {}),
    ce.HardNLL: (ce.nll_loss, {}, "f y", {}),
    ce.LabelSmoothingCrossEntropy: (ce.label_smoothing_cross_entropy, {"epsilon": 0.1}, "f y", {}),
    cce.CollisionCrossEntropy: (cce.collision_cross_entropy, {}, "f a", {}),
    cce.SelfLabelingLoss: (cce.self_labeling_loss, {"lam": 1.0}, "f a", {}),
}  # fmt: skip

#: a valid value different from the default, per constructor keyword
SENTINELS: dict[str, Any] = {
    "temperature": 0.37,
    "logit_scale": 1.1,
    "base_temperature": 0.5,
    "variant": "in",
    "normalize": False,
    "similarity": "dot",
    "negative_mode": "paired",
    "reduction": "sum",
    "validate": False,
    "tile": 3,
    "epsilon": 0.2,
    "lam": 0.5,
}


def _wrapper_data() -> dict[str, Any]:
    v = _inputs()
    g = torch.Generator().manual_seed(1)
    v.update(
        n=torch.randn(5, 4, generator=g, dtype=torch.float64),
        klq=torch.full((4,), -1.3, dtype=torch.float64),
        nlq=torch.full((5,), -1.7, dtype=torch.float64),
        lq=torch.full((5,), -1.5, dtype=torch.float64),
        cat_a=torch.cat([v["a"], v["a"]]),
        cat_y=torch.cat([v["y"], v["y"]]),
        prototypes=torch.randn(3, 4, generator=g, dtype=torch.float64),
        noise_probs=torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64),
    )
    return v


def test_wrapper_table_is_complete():
    wrappers = {
        obj
        for mod in FAMILY_MODULES
        for name in mod.__all__
        if isinstance(obj := getattr(mod, name), type) and issubclass(obj, torch.nn.Module)
    }
    assert wrappers == set(WRAPPERS)


@pytest.mark.parametrize("cls", list(WRAPPERS), ids=lambda c: c.__name__)
def test_wrapper_exposes_and_forwards_every_keyword(cls, monkeypatch):
    """Every parameter of the function is a constructor or forward argument of the wrapper,
    and the value given there is the value the function receives (a spy on the function)."""
    fn, required, inputs, fwd_kw = WRAPPERS[cls]
    data = _wrapper_data()
    fn_params = list(inspect.signature(fn).parameters)
    ctor = set(inspect.signature(cls.__init__).parameters) - {"self"}
    fwd = [p for p in inspect.signature(cls.forward).parameters if p != "self"]
    missing = [p for p in fn_params if p not in ctor | set(fwd)]
    assert not missing, f"{cls.__name__} does not expose {missing}"

    seen: list[dict[str, Any]] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(dict(inspect.signature(fn).bind(*args, **kwargs).arguments))
        return fn(*args, **kwargs)

    monkeypatch.setattr(sys.modules[cls.__module__], fn.__name__, spy)
    args = [data[n] for n in inputs.split()]
    fwd_values = {k: data[v] if isinstance(v, str) else v for k, v in fwd_kw.items()}
    for p in fn_params:
        if p in fwd:
            assert p in fwd_values or p in fwd[: len(args)], f"no forward value for {p}"
            continue
        if p in ("prototypes", "noise_probs"):
            value = data[p]
        else:
            assert p in SENTINELS, f"no sentinel for {cls.__name__}({p}=...)"
            value = SENTINELS[p]
        m = cls(**{**required, p: value})
        seen.clear()
        out = m.double()(*args)
        assert len(seen) == 1 and torch.isfinite(out).all(), p
        got = seen[0][p]
        if isinstance(value, torch.Tensor):
            assert torch.equal(got.detach(), value), p
        else:
            assert got == value and type(got) is type(value), (p, got)
    # forward arguments arrive unchanged too
    seen.clear()
    cls(**required).double()(*args, **fwd_values)
    bound = seen[0]
    for name, value in fwd_values.items():
        assert bound[name] is value, name
    for name, value in zip(fn_params, args, strict=False):
        assert bound[name] is value, name


@pytest.mark.parametrize(
    "cls", [c for c, spec in WRAPPERS.items() if "tile" in inspect.signature(spec[0]).parameters]
)
def test_wrapper_bad_tile_reaches_the_function(cls):
    """A bad ``tile`` given to the constructor raises the function's own ``ValueError`` at the
    first forward (the wrapper does not swallow or pre-empt it)."""
    _, required, inputs, _ = WRAPPERS[cls]
    data = _wrapper_data()
    m = cls(**required, tile=-1).double()
    with pytest.raises(ValueError, match=r"^tile must be None or an integer >= 0, got -1"):
        m(*[data[n] for n in inputs.split()])


# ============================================================================ declared params


@pytest.mark.parametrize("name", sorted(LD.PARAMS))
def test_param_checks_agree_with_the_declared_domain(name):
    """``check_param`` / ``check_int_param`` accept exactly the values inside the declared
    interval (the expectation is computed here from the interval's ends, not by the checker),
    and name the parameter when they refuse."""
    p = LD.PARAMS[name]
    iv = p.interval
    values: list[Any] = [-2, -1, 0, 1, 2, 7, 10**6]
    if not p.integer:
        values += [-0.5, 1e-300, 0.5, 0.999, 1.5, math.inf, -math.inf, math.nan]
    for v in values:
        above = v >= iv.low if iv.low_closed else v > iv.low
        below = v <= iv.high if iv.high_closed else v < iv.high
        want = math.isfinite(v) and above and below
        check = C.check_int_param if p.integer else C.check_param
        try:
            check(p, v)
            got = True
        except ValueError as exc:
            got = False
            assert str(exc).startswith(f"{name} must "), exc
        assert got == want, (name, v)


@pytest.mark.parametrize(
    "call, name",
    [
        (
            lambda x, y: sc.supcon_loss(x, y, base_temperature=_bad(torch.tensor(1))),
            "base_temperature",
        ),
        (lambda x, y: sc.SINCERELoss(base_temperature=_bad(torch.tensor(2))), "base_temperature"),
        (lambda x, y: cce.em_pseudo_labels(_simplex(), lam=1.0, tol=_bad(torch.tensor(1))), "tol"),
        (
            lambda x, y: cce.pgd_pseudo_labels(_simplex(), lam=1.0, step=_bad(torch.tensor(1))),
            "step",
        ),
        (
            lambda x, y: cce.self_labeling_loss(x[:, :3], _simplex(6), lam=_bad(torch.tensor(1))),
            "lam",
        ),
        (
            lambda x, y: ce.label_smoothing_cross_entropy(x, y, epsilon=_bad(torch.tensor(0))),
            "epsilon",
        ),
        (lambda x, y: sc.supcon_loss(x, y, base_temperature=_bad("0.1")), "base_temperature"),
        (lambda x, y: ce.LabelSmoothingCrossEntropy(_bad(np.bool_(True))), "epsilon"),
    ],
)
def test_integer_tensors_and_non_numbers_are_refused(call, name):
    x, y = torch.randn(6, 4), torch.tensor([0, 0, 1, 1, 2, 3])
    with pytest.raises(ValueError, match=rf"^{name} must be a real number"):
        call(x, y)


def _bad(x: Any) -> Any:
    """A deliberately invalid argument (typed Any so the type checker lets it through)."""
    return x


def _simplex(n: int = 4) -> torch.Tensor:
    return torch.softmax(torch.randn(n, 3, generator=torch.Generator().manual_seed(n)), -1)
