r"""Distributed losses on W = 2, 3, 4 gloo ranks equal the single-process loss on the whole batch.

One launch of 4 processes serves every world size (subgroups ``{0, 1}`` and ``{0, 1, 2}`` for
W = 2, 3 -- exercising ``group=`` -- and the default group for W = 4) and every case: float64,
dense (``tile=0``) and tiled (``tile=2``, many ragged tiles), even and uneven shard sizes,
singleton classes, a rank without any valid anchor, multi-view batches, learnable (tensor)
and float temperatures, and the three reductions.

The reference is the **single-process** production loss on the concatenated batch (dense path),
and the contract is DDP's (module doc of :mod:`softnce_theory.losses.distributed`):

* value: the mean over ranks of the returned values is the global value (``"none"``: the rows
  concatenated in rank order are the global rows);
* gradient of a sharded input: rank ``r``'s gradient divided by W is the global gradient of its
  rows (the gather's backward sums all W ranks' contributions; DDP then averages over W);
* gradient of a replicated parameter (tau, ESupCon's prototypes): the mean over ranks is the
  global gradient (DDP's all-reduce average).

Tolerance 1e-12 (float64; normwise per tensor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist

from softnce_theory.losses import aljundi as al
from softnce_theory.losses import distributed as D
from softnce_theory.losses import infonce as nce
from softnce_theory.losses import sincere as sc
from softnce_theory.losses import soft_target_infonce as sti
from softnce_theory.testing.distributed import run_ranks

F64 = torch.float64
TOL = 1e-12
WORLDS = (2, 3, 4)
LABELLED = ("supcon_out", "supcon_in", "sincere")


@dataclass(frozen=True)
class Case:
    family: str
    layout: str  # even | uneven | novalid | multiview
    tile: int
    world: int
    reduction: str = "mean"
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def name(self) -> str:
        return f"{self.family}-{self.layout}-tile{self.tile}-{self.reduction}-W{self.world}-s{self.seed}"


# ============================================================================ data


def _sizes(case: Case) -> list[int]:
    w = case.world
    if case.layout == "even":
        return [4] * w
    return [[3, 5, 2, 4][(r + case.seed) % 4] for r in range(w)]


def _labels(case: Case, sizes: list[int], g: torch.Generator) -> torch.Tensor:
    """Labels with singleton classes; ``novalid``: rank 1's anchors have no positive at all."""
    n = sum(sizes)
    if case.layout == "novalid":
        y = torch.randint(0, 3, (n,), generator=g)
        y[: sizes[0]] = torch.tensor([0, 1, 2, 0, 1][: sizes[0]])  # rank 0 has pairs
        s1 = slice(sizes[0], sizes[0] + sizes[1])
        y[s1] = 100 + torch.arange(sizes[1])  # rank 1: classes of one sample each
        return y
    y = torch.randint(0, max(2, n // 3), (n,), generator=g)
    y[-1] = 1000  # a singleton class
    return y


def make_data(case: Case) -> tuple[dict[str, torch.Tensor], list[int]]:
    """The global batch of a case (deterministic: every rank and the parent rebuild it)."""
    g = torch.Generator().manual_seed(1234 + 17 * case.seed + 101 * case.world)
    sizes = _sizes(case)
    n, d = sum(sizes), 5
    fam = case.family
    tau = torch.tensor(0.3, dtype=F64)
    out: dict[str, torch.Tensor] = {"tau": tau}
    if fam in LABELLED or fam == "esupcon":
        views = 2 if case.layout == "multiview" else 0
        shape = (n, views, d) if views else (n, d)
        out["x"] = torch.randn(*shape, dtype=F64, generator=g)
        y = _labels(case, sizes, g)
        if fam == "esupcon":
            y = torch.unique(y, return_inverse=True)[1]  # labels in [0, K)
            out["w"] = torch.randn(int(y.max()) + 2, d, dtype=F64, generator=g)
        out["y"] = y
    elif fam in ("infonce", "infonce_logq", "symmetric"):
        out["q"] = torch.randn(n, d, dtype=F64, generator=g)
        out["k"] = torch.randn(n, d, dtype=F64, generator=g)
        if fam == "infonce_logq":
            out["lq"] = torch.log(torch.rand(n, dtype=F64, generator=g))
    elif fam == "soft_target":
        c = 4
        out["f"] = 2 * torch.randn(n, c, dtype=F64, generator=g)
        out["a"] = torch.softmax(2 * torch.randn(n, c, dtype=F64, generator=g), -1)
        out["nq"] = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=F64)
    else:
        raise ValueError(fam)
    return out, sizes


SHARDED = ("x", "q", "k", "f", "a", "lq")  # split by rank; the rest is replicated


def _tau(case: Case, t: torch.Tensor) -> Any:
    """float temperatures on the uneven layout, learnable tensors elsewhere."""
    return float(t) if case.layout == "uneven" else t


def call(case: Case, v: dict[str, torch.Tensor], *, distributed: bool, group: Any = None):
    """The loss of a case: the distributed function on a shard, or the single-process one."""
    fam, kw = case.family, {"reduction": case.reduction}
    t = _tau(case, v["tau"])
    if distributed:
        kw.update(tile=case.tile, group=group)
    else:
        kw["tile"] = 0
    if fam in LABELLED:
        if fam == "sincere":
            fn = D.sincere_loss if distributed else sc.sincere_loss
            return fn(v["x"], v["y"], temperature=t, **kw)
        fn = D.supcon_loss if distributed else sc.supcon_loss
        return fn(v["x"], v["y"], temperature=t, variant=fam.split("_")[1], **kw)
    if fam == "esupcon":
        fn = D.esupcon_loss if distributed else al.esupcon_loss
        return fn(v["x"], v["y"], v["w"], temperature=t, **kw)
    if fam in ("infonce", "infonce_logq"):
        fn = D.info_nce if distributed else nce.info_nce
        extra = {"key_log_q": v["lq"], "similarity": "dot"} if "lq" in v else {}
        return fn(v["q"], v["k"], temperature=t, **extra, **kw)
    if fam == "symmetric":
        fn = D.symmetric_info_nce if distributed else nce.symmetric_info_nce
        if isinstance(t, torch.Tensor):  # CLIP's convention: logit_scale = log(1/tau)
            return fn(v["q"], v["k"], logit_scale=-torch.log(t), **kw)
        return fn(v["q"], v["k"], temperature=t, **kw)
    m = D if distributed else sti
    return m.soft_target_info_nce(v["f"], v["a"], v["nq"], temperature=t, **kw)


def _leaves(v: dict[str, torch.Tensor], case: Case) -> dict[str, torch.Tensor]:
    """Inputs as leaves that require grad (labels and the noise distribution do not)."""
    out = {}
    for key, x in v.items():
        grad = key not in ("y", "nq", "lq") and not (key == "tau" and case.layout == "uneven")
        out[key] = x.clone().requires_grad_(grad)
    return out


def _backward(out: torch.Tensor, case: Case) -> None:
    (out.sum() if case.reduction == "none" else out).backward()


def _grads(v: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {k: x.grad.numpy().copy() for k, x in v.items() if x.grad is not None}


# ============================================================================ cases


def cases(world: int, seeds: tuple[int, ...] = (0,), tiles: tuple[int, ...] = (0, 2)) -> list[Case]:
    out = []
    for seed in seeds:
        for tile in tiles:
            for fam in LABELLED:
                for layout in ("even", "uneven", "novalid", "multiview"):
                    out.append(Case(fam, layout, tile, world, seed=seed))
            for layout in ("even", "uneven", "novalid", "multiview"):
                out.append(Case("esupcon", layout, tile, world, seed=seed))
            for fam in ("infonce", "infonce_logq", "symmetric", "soft_target"):
                for layout in ("even", "uneven"):
                    out.append(Case(fam, layout, tile, world, seed=seed))
            for fam in ("sincere", "supcon_out", "infonce", "soft_target"):
                for red in ("sum", "none"):
                    out.append(Case(fam, "uneven", tile, world, red, seed=seed))
    return out


# ============================================================================ workers


def _worker(rank: int, world: int, spec: dict[str, Any]) -> dict[str, Any]:
    groups = {4: None}
    for w in (2, 3):  # every rank creates every subgroup, in the same order
        groups[w] = dist.new_group(list(range(w)), backend="gloo")
    results: dict[str, Any] = {}
    for w in spec["worlds"]:
        if rank >= w:
            continue
        for case in spec["cases"][w]:
            data, sizes = make_data(case)
            lo = sum(sizes[:rank])
            hi = lo + sizes[rank]
            shard = {k: (x[lo:hi] if k in SHARDED or k in ("y",) else x) for k, x in data.items()}
            v = _leaves(shard, case)
            out = call(case, v, distributed=True, group=groups[w])
            _backward(out, case)
            results[case.name] = (out.detach().numpy().copy(), _grads(v))
    return results


def _compare(
    case: Case, per_rank: list[tuple[np.ndarray, dict[str, np.ndarray]]]
) -> tuple[float, float]:
    """Max |value error| and max |gradient error| (normwise-relative) of a case."""
    data, _ = make_data(case)
    v = _leaves(data, case)
    ref = call(case, v, distributed=False)
    _backward(ref, case)
    want = _grads(v)
    w = case.world
    if case.reduction == "none":
        got_v = np.concatenate([p[0] for p in per_rank])
    else:
        got_v = np.mean([float(p[0]) for p in per_rank])
    verr = float(
        np.max(np.abs(got_v - ref.detach().numpy())) / max(1.0, np.abs(ref.detach().numpy()).max())
    )
    factor = 1.0 if case.reduction == "none" else 1.0 / w  # "none": backward of the local sums
    gerr = 0.0
    for key, g in want.items():
        assert all(key in p[1] for p in per_rank), f"{case.name}: {key} has no gradient on a rank"
        if key in SHARDED:
            got = np.concatenate([p[1][key] for p in per_rank]) * factor
        else:  # replicated: DDP averages over ranks (tau, prototypes)
            got = np.mean([p[1][key] for p in per_rank], axis=0) * (w * factor)
        scale = max(1.0, float(np.abs(g).max()))
        gerr = max(gerr, float(np.abs(got - g).max()) / scale)
    return verr, gerr


def run_suite(seeds: tuple[int, ...], tiles: tuple[int, ...]) -> dict[Case, tuple[float, float]]:
    spec = {"worlds": WORLDS, "cases": {w: cases(w, seeds, tiles) for w in WORLDS}}
    per_rank = run_ranks(_worker, 4, spec, timeout=300)
    out = {}
    for w in WORLDS:
        for case in spec["cases"][w]:
            out[case] = _compare(case, [per_rank[r][case.name] for r in range(w)])
    return out


@pytest.fixture(scope="module")
def suite() -> dict[Case, tuple[float, float]]:
    torch.set_num_threads(1)
    return run_suite((0,), (0, 2))


@pytest.mark.parametrize("world", WORLDS)
@pytest.mark.parametrize(
    "family",
    [*LABELLED, "esupcon", "infonce", "infonce_logq", "symmetric", "soft_target"],
)
def test_distributed_matches_global(suite, family, world):
    rows = {c: e for c, e in suite.items() if c.family == family and c.world == world}
    assert rows
    bad = {c.name: e for c, e in rows.items() if not (e[0] <= TOL and e[1] <= TOL)}
    assert not bad, bad


def test_error_table(suite, capsys):
    """Max value / gradient error per family and world size (printed with ``-s``)."""
    table: dict[tuple[str, int], list[float]] = {}
    for c, (ve, ge) in suite.items():
        t = table.setdefault((c.family, c.world), [0.0, 0.0])
        t[0], t[1] = max(t[0], ve), max(t[1], ge)
    with capsys.disabled():
        for (fam, w), (ve, ge) in sorted(table.items()):
            print(f"{fam:14s} W={w}  value {ve:.1e}  grad {ge:.1e}")
    assert all(ve <= TOL and ge <= TOL for ve, ge in table.values())


@pytest.mark.slow
def test_distributed_exhaustive():
    """More seeds and tiles (tile 1: one row per tile; 3: ragged; 7: larger than shards)."""
    res = run_suite((1, 2, 3), (1, 3, 7))
    bad = {c.name: e for c, e in res.items() if not (e[0] <= TOL and e[1] <= TOL)}
    assert not bad, bad


def test_ddp_example_smoke():
    """examples/ddp_sincere.py under torchrun (2 ranks, DDP on gloo, uneven shards, tiled):
    the DDP-trained parameters equal single-process training on the full batches."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [str(root / "examples" / "ddp_sincere.py"), "--steps", "3", "--batch", "11"]
    cmd += ["--tile", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "OK" in res.stdout, res.stdout


@pytest.mark.parametrize("tile", [1, 3, 8])
def test_gradcheck_row_kernels(tile):
    """The rectangular kernels (anchor subsets) and their scale gradient, by gradcheck."""
    from softnce_theory.losses.tiled import _kernels as K
    from softnce_theory.losses.tiled._rows import _Rows

    g = torch.Generator().manual_seed(5)
    k = torch.randn(9, 3, dtype=F64, generator=g)
    yk = torch.tensor([2, 0, 1, 1, 0, 2, 2, 5, 1])
    off, m = 3, 4
    r = _Rows(k[off : off + m], yk[off : off + m], k, yk, off)
    q0, k0 = r.q.detach().clone(), r.k.detach().clone()
    c = torch.tensor(1.7, dtype=F64)
    args = (r.yq, r.yk, r.self_cols, tile)

    def stats(q, kk, c):
        out = K.RowLabelStats.apply(q, kk, c, *args, K.ALL | K.NEG | K.POS_LSE | K.POS_SUM)
        return tuple(torch.where(torch.isfinite(o), o, 0.0) for o in out)

    def pos_softplus(q, kk, x, c):
        return K.RowPosSoftplus.apply(q, kk, x, c, *args)

    for t in (q0, k0, c):
        t.requires_grad_(True)
    x = torch.randn(m, dtype=F64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(stats, (q0, k0, c))
    assert torch.autograd.gradcheck(pos_softplus, (q0, k0, x, c))
