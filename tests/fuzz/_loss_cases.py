"""Loss fuzz: seeded case generators over every public loss, and the judge of each case.

Valid inputs (:func:`valid_case`, :func:`run_valid`)
    Every public loss of :mod:`softnce_theory.losses` (enumerated from each module's
    ``__all__``; :func:`uncovered` lists any public name that neither has a case builder in
    :data:`SPECS` nor an entry with a reason in :data:`EXEMPT`), dense and forced-tiled
    (``tile=k``, k in 1..3) where a tiled path exists, in float16, bfloat16, float32 and float64,
    in four layouts (contiguous; non-contiguous = transposed storage; expanded = stride-0 rows;
    strided = every other column of a wider buffer). Temperatures are log-uniform in
    [1e-3, 1e3] (a quarter of them exactly at an end), logits up to +-1e4 (a fifth pinned at the
    ends), embedding row norms log-uniform in [1e-30, 1e30] (10% exact zero rows), capped below
    the dtype's range; a row that underflows (float16) becomes a zero row. Dot-product
    similarities keep ``|z_i . z_j| <= 1e4`` (the logit range; their conditioning grows with
    the norms).

    A case *passes* when the call returns and every output and every gradient (w.r.t. every
    floating input as passed to the loss, ``grad_outputs`` of ones) is finite. A non-finite
    entry is recomputed in float64 from the same inputs upcast (exactly: every dtype embeds in
    float64), with the same layout and arguments:

    * **true overflow** (not a failure): the float64 magnitude there exceeds
      ``torch.finfo(dtype).max``;
    * **rounding-amplified overflow** (``ill_conditioned``, not a failure): it does in one of
      :data:`PERTURBATIONS` float64 reruns with every input entry scaled by ``1 +- 4 eps`` of the
      compute dtype (the result is within the computation's backward error of an overflow);
    * otherwise (finite and in range, or NaN) a failure (``nonfinite``).

    float64 is its own reference: its non-finite entries fail unless the spec's float64
    magnitude oracle (``Spec.log_grad``, log space) shows a true value beyond 1.8e308. Finite
    values of cosine losses must also match the float64 value (:func:`_check_value`;
    ``inaccurate``). A ``ValueError`` on valid input is a *false rejection*, any other exception
    a *raw exception*; both are failures.

Bad inputs (:func:`bad_cases`, :func:`run_bad`)
    For every spec, a valid float32 base case is mutated one argument at a time (wrong dtype,
    rank, type, device (``meta``), shape, dtype mismatch, NaN/Inf/negative/off-simplex
    probabilities, labels of the wrong type/length/range, empty batch, temperatures that are 0,
    negative, NaN, Inf, bool, str or 2-element tensors, bad reductions, tiles, enums, offsets,
    ...). The call must raise ``ValueError`` whose message names the argument (as a word). Any
    other exception is a *raw exception*, a return is a *silent acceptance*. numpy scalars for
    real/integer arguments are valid and must be accepted (:func:`numpy_cases`).

Cases are deterministic functions of ``(seed, index)``; a failure record carries both, so
``valid_case(SPECS[name], seed, index, dtype, layout)`` reproduces it.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import numpy as np
import torch

from softnce_theory.losses import _common
from softnce_theory.losses import aljundi as al
from softnce_theory.losses import collision_ce as cce
from softnce_theory.losses import cross_entropy as ce
from softnce_theory.losses import infonce as nce
from softnce_theory.losses import sincere as sc
from softnce_theory.losses import soft_target_infonce as sti

DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
LAYOUTS = ("contiguous", "noncontiguous", "expanded", "strided")
LOSS_MODULES = (
    "aljundi",
    "collision_ce",
    "cross_entropy",
    "infonce",
    "sincere",
    "soft_target_infonce",
    "tiled",
)
META = torch.device("meta")


# ----------------------------------------------------------------------------- generators


@dataclass
class T:
    """One tensor argument: its logical value, whether to differentiate w.r.t. it, and whether
    the stride-0 layout may repeat its first row (``False`` for per-class vectors)."""

    value: torch.Tensor
    grad: bool = False
    expand: bool = True


class Gen:
    """Seeded value generator for one case (``n`` rows; float values in ``dtype``)."""

    def __init__(self, rng: np.random.Generator, dtype: torch.dtype, layout: str, n: int):
        self.rng, self.dtype, self.layout, self.n = rng, dtype, layout, n

    # scalars
    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def coin(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def choice(self, seq: Any) -> Any:
        return seq[int(self.rng.integers(len(seq)))]

    def tau(self) -> float:
        if self.coin(0.25):
            return self.choice([1e-3, 1e3])
        return float(10 ** self.rng.uniform(-3, 3))

    def reduction(self) -> str:
        return self.choice(["mean", "sum", "none"])

    # tensors
    def cast(self, x: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.tensor(np.asarray(x, dtype=np.float64)).to(dtype or self.dtype)

    def cap(self) -> float:
        """Largest row norm / entry magnitude generated in this dtype (a quarter of the max)."""
        return float(torch.finfo(self.dtype).max) / 4

    def emb(self, *shape: int, dot_tau: float | None = None) -> torch.Tensor:
        """Rows with log-uniform norms in [1e-30, 1e30] (10% zero rows, some one-hot-like)."""
        d = self.rng.standard_normal(shape)
        if shape[-1] > 1 and self.coin(0.2):
            d = d * (self.rng.random(shape) < 0.3)  # sparse rows: one huge entry, rest zero
        nrm = np.linalg.norm(d, axis=-1, keepdims=True)
        d = np.where(nrm > 0, d / np.where(nrm > 0, nrm, 1), 0.0)
        norms = 10 ** self.rng.uniform(-30, 30, (*shape[:-1], 1))
        norms[self.rng.random(norms.shape) < 0.1] = 0.0
        cap = self.cap()
        if dot_tau is not None:  # dot products: |z_i . z_j| <= 1e4, the logit range
            cap = min(cap, 100.0)
        return self.cast(d * np.minimum(norms, cap))

    def logits(self, *shape: int, scale: float = 1e4) -> torch.Tensor:
        a = scale if self.coin(0.2) else float(10 ** self.rng.uniform(-3, math.log10(scale)))
        x = self.rng.uniform(-a, a, shape)
        if self.coin(0.2):
            x[self.rng.random(shape) < 0.3] = self.choice([-scale, scale])
        return self.cast(np.clip(x, -self.cap(), self.cap()))

    def simplex_np(self, *shape: int, zeros: bool = True, positive: bool = False) -> np.ndarray:
        k = shape[-1]
        if k == 0 or 0 in shape:
            return np.zeros(shape)
        alpha = float(10 ** self.rng.uniform(-1, 1))
        p = np.asarray(self.rng.dirichlet(np.full(k, alpha), size=shape[:-1])).reshape(shape)
        if zeros and k > 1 and self.coin(0.5):
            keep = self.rng.random(shape) < 0.6
            keep[..., self.rng.integers(k)] = True
            p = p * keep
        if zeros and self.coin(0.2):  # one-hot rows
            p = np.eye(k)[self.rng.integers(0, k, shape[:-1])]
        s = p.sum(-1, keepdims=True)
        p = np.where(s > 0, p / np.where(s > 0, s, 1), 1.0 / max(k, 1))
        if positive:
            p = 0.8 * p + 0.2 / k
        return p

    def simplex(self, *shape: int, zeros: bool = True, positive: bool = False) -> torch.Tensor:
        return self.cast(self.simplex_np(*shape, zeros=zeros, positive=positive))

    def logq(self, *shape: int) -> torch.Tensor:
        return self.cast(np.log(self.simplex_np(*shape, zeros=False, positive=True)))

    def labels(self, n: int, k: int) -> torch.Tensor:
        return torch.tensor(self.rng.integers(0, max(k, 1), n), dtype=torch.int64)


# ----------------------------------------------------------------------------- specs


Built = tuple[dict[str, T], dict[str, Any]]


@dataclass
class Spec:
    """A public loss (or loss-side function), its case builder and its argument kinds.

    ``slots`` maps each argument to a kind of the bad-input matrix (see :data:`MUTATIONS`);
    ``primary`` is the batch argument named by the empty-batch error; ``bound`` lists tensor
    arguments whose shape is tied to another argument; ``same_dtype`` those that must share
    the primary's dtype.
    """

    name: str
    fn: Callable[..., Any]
    build: Callable[[Gen], Built]
    slots: dict[str, str]
    primary: str
    bound: tuple[str, ...] = ()
    same_dtype: tuple[str, ...] = ()
    covers: tuple[str, ...] = ()
    empty_ok: bool = False
    validated: bool = True
    log_grad: (
        Callable[[dict[str, torch.Tensor], dict[str, Any]], dict[str, torch.Tensor]] | None
    ) = None
    value_scale: Callable[[dict[str, T], dict[str, Any]], float | None] | None = None


def _module(cls: type, ctor: tuple[str, ...]) -> Callable[..., Any]:
    """Call form of an ``nn.Module`` loss: ``ctor`` keywords build it, the rest go to forward."""

    def call(**kw: Any) -> Any:
        init = {k: kw.pop(k) for k in ctor if k in kw}
        return cls(**init)(**kw)

    call.__name__ = cls.__name__
    return call


def _dims(g: Gen) -> tuple[int, int]:
    return g.n, g.integer(1, 5)


# infonce ---------------------------------------------------------------------------------------


def b_info_nce(tiled: bool) -> Callable[[Gen], Built]:
    def build(g: Gen) -> Built:
        n, d = _dims(g)
        t = g.tau()
        sim = g.choice(["cosine", "dot"])
        dt = t if sim == "dot" else None
        mode = "inbatch" if tiled else g.choice(["inbatch", "unpaired", "paired"])
        ts = {
            "query": T(g.emb(n, d, dot_tau=dt), True),
            "positive_key": T(g.emb(n, d, dot_tau=dt), True),
        }
        kw: dict[str, Any] = {
            "temperature": t,
            "similarity": sim,
            "reduction": g.reduction(),
            "tile": g.integer(1, 3) if tiled else 0,
        }
        m = g.integer(1, 4)
        if mode == "unpaired":
            ts["negative_keys"] = T(g.emb(m, d, dot_tau=dt), True)
        elif mode == "paired":
            ts["negative_keys"] = T(g.emb(n, m, d, dot_tau=dt), True)
            kw["negative_mode"] = "paired"
        if g.coin():
            ts["key_log_q"] = T(g.logq(n), True)
        if mode != "inbatch" and g.coin():
            shape = (m,) if mode == "unpaired" or g.coin() else (n, m)
            ts["negative_log_q"] = T(g.logq(*shape), True)
        return ts, kw

    return build


def b_symmetric(tiled: bool) -> Callable[[Gen], Built]:
    def build(g: Gen) -> Built:
        n, d = _dims(g)
        t = g.tau()
        sim = g.choice(["cosine", "dot"])
        dt = t if sim == "dot" else None
        ts = {"a": T(g.emb(n, d, dot_tau=dt), True), "b": T(g.emb(n, d, dot_tau=dt), True)}
        kw = {"temperature": t, "similarity": sim, "reduction": g.reduction()}
        kw["tile"] = g.integer(1, 3) if tiled else 0
        return ts, kw

    return build


def b_ranking(g: Gen) -> Built:
    n, k = g.n, g.integer(1, 5)
    s = g.logits(n, k)
    if g.coin(0.3):  # -inf masks negatives (documented); sometimes all of a row's negatives
        mask = torch.rand(n, k, generator=torch.Generator().manual_seed(g.integer(0, 2**31))) < 0.5
        mask[:, 0] = False
        s = s.masked_fill(mask, float("-inf"))
    ts = {"scores": T(s, True)}
    if g.coin():
        ts["log_q"] = T(g.logq(k) if g.coin() else g.logq(n, k), True)
    return ts, {"reduction": g.reduction()}


# sincere ---------------------------------------------------------------------------------------


def b_supcon(tiled: bool, sincere: bool) -> Callable[[Gen], Built]:
    def build(g: Gen) -> Built:
        n, d = _dims(g)
        t = g.tau()
        normalize = g.coin(0.75)
        dt = None if normalize else t
        x = g.emb(n, d, dot_tau=dt) if g.coin(0.6) else g.emb(n, g.integer(1, 3), d, dot_tau=dt)
        ts = {"embeddings": T(x, True), "labels": T(g.labels(n, g.integer(1, max(n, 1))))}
        kw: dict[str, Any] = {"temperature": t, "normalize": normalize}
        kw["reduction"] = g.reduction()
        kw["base_temperature"] = g.tau() if g.coin(0.3) else None
        if not sincere:
            kw["variant"] = g.choice(["out", "in"])
        kw["tile"] = g.integer(1, 3) if tiled else 0
        return ts, kw

    return build


def b_from_logits(sincere: bool) -> Callable[[Gen], Built]:
    def build(g: Gen) -> Built:
        n = g.n
        ts = {"logits": T(g.logits(n, n), True), "labels": T(g.labels(n, g.integer(1, max(n, 1))))}
        kw: dict[str, Any] = {"reduction": g.reduction()}
        if not sincere:
            kw["variant"] = g.choice(["out", "in"])
        return ts, kw

    return build


# aljundi ---------------------------------------------------------------------------------------


def b_proto(views: bool, tiled: bool = False, module: bool = False) -> Callable[[Gen], Built]:
    def build(g: Gen) -> Built:
        n, d = _dims(g)
        k = g.integer(1, 4)
        t = g.tau()
        normalize = g.coin(0.75)
        dt = None if normalize else t
        x = (
            g.emb(n, g.integer(1, 3), d, dot_tau=dt)
            if views and g.coin(0.4)
            else g.emb(n, d, dot_tau=dt)
        )
        ts = {
            "embeddings": T(x, True),
            "labels": T(g.labels(n, k)),
            "prototypes": T(g.emb(k, d, dot_tau=dt), not module),
        }
        kw: dict[str, Any] = {"temperature": t, "normalize": normalize, "reduction": g.reduction()}
        if tiled or (views and not module):
            kw["tile"] = g.integer(1, 3) if tiled else 0
        if module:
            kw["num_classes"], kw["dim"] = k, d
        return ts, kw

    return build


def b_predict(g: Gen) -> Built:
    n, d = _dims(g)
    t = g.tau()
    normalize = g.coin(0.75)
    dt = None if normalize else t
    ts = {
        "embeddings": T(g.emb(n, d, dot_tau=dt), True),
        "prototypes": T(g.emb(3, d, dot_tau=dt), True),
    }
    return ts, {"temperature": t, "normalize": normalize}


def b_esupcon_formula(g: Gen) -> Built:
    n, k = g.n, g.integer(1, 4)
    ts = {
        "sample_logits": T(g.logits(n, n), True),
        "proto_logits": T(g.logits(n, k), True),
        "labels": T(g.labels(n, k)),
    }
    return ts, {}


# collision_ce ----------------------------------------------------------------------------------


def b_collision(self_label: bool, module: bool = False) -> Callable[[Gen], Built]:
    def build(g: Gen) -> Built:
        n, k = g.n, g.integer(1, 5)
        kw: dict[str, Any] = {"reduction": g.reduction()}
        lam = 0.0
        if self_label:
            lam = g.choice([0.0, float(10 ** g.rng.uniform(-2, 1))])
            kw["lam"] = lam
        # lam > 0: a class with mean 0 is the documented +inf barrier, so keep y in the interior
        y = g.simplex(n, k, positive=lam > 0)
        ts = {"logits": T(g.logits(n, k), True), ("y" if self_label else "targets"): T(y, True)}
        return ts, kw

    return build


def lg_collision(views: dict[str, torch.Tensor], kw: dict[str, Any]) -> dict[str, torch.Tensor]:
    """float64 oracle: log |dH2/dy_ik| = z_ik - LSE_j(z_ij + log y_ij) (minus log N for the
    mean); it exceeds the float64 range when y puts its mass on classes that softmax(z) all but
    excludes (documented in :func:`collision_cross_entropy`)."""
    name = "targets" if "targets" in views else "y"
    z, y = views["logits"].double(), views[name].double()
    lm = z - torch.logsumexp(z + torch.log(y), -1, keepdim=True)
    if kw.get("reduction", "mean") == "mean":
        lm = lm - math.log(z.shape[0])
    return {name: lm}


def b_solver(pgd: bool) -> Callable[[Gen], Built]:
    def build(g: Gen) -> Built:
        n, k = g.n, g.integer(1, 5)
        ts = {"probs": T(g.simplex(n, k, positive=True))}
        if g.coin(0.3):
            ts["y0"] = T(g.simplex(n, k, positive=True))
        kw: dict[str, Any] = {"lam": g.choice([0.0, 0.5, 2.0]), "max_iter": g.integer(1, 6)}
        kw["tol"] = float(10 ** g.rng.uniform(-12, -2))
        if pgd:
            kw["step"] = float(10 ** g.rng.uniform(-3, 1)) * max(n, 1)
        else:
            kw["accelerate"] = g.coin()
        return ts, kw

    return build


def b_project(g: Gen) -> Built:
    k = g.integer(1, 5)
    shape = g.choice([(k,), (g.n, k), (2, g.n, k)])
    v = g.logits(*shape, scale=g.choice([1e4, g.cap()]))
    return {"v": T(v)}, {}


def b_pseudo(g: Gen) -> Built:
    n, k = g.n, g.integer(1, 5)
    ts = {"probs": T(g.simplex(n, k, positive=True)), "y": T(g.simplex(n, k, positive=True))}
    return ts, {"lam": g.choice([0.0, 0.5, 2.0])}


# cross_entropy ---------------------------------------------------------------------------------


def b_ce(kind: str) -> Callable[[Gen], Built]:
    def build(g: Gen) -> Built:
        n, c = g.n, g.integer(1, 5)
        ts = {"logits": T(g.logits(n, c), True)}
        if kind == "soft":
            ts["targets"] = T(g.simplex(n, c), True)
        else:
            ts["labels"] = T(g.labels(n, c))
        kw: dict[str, Any] = {"temperature": g.tau(), "reduction": g.reduction()}
        if kind == "smooth":
            kw["epsilon"] = g.choice([0.0, 1.0, float(g.rng.random())])
        return ts, kw

    return build


# soft_target_infonce ---------------------------------------------------------------------------


def b_st_infonce(tiled: bool, hard: bool, module: bool = False) -> Callable[[Gen], Built]:
    def build(g: Gen) -> Built:
        n, c = g.n, g.integer(1, 5)
        ts = {"logits": T(g.logits(n, c), True)}
        kw: dict[str, Any] = {"temperature": g.tau(), "reduction": g.reduction()}
        extra = g.integer(0, 3) if g.coin() else 0
        off = 0 if g.layout == "expanded" else g.integer(0, extra)
        if hard:
            lab = g.labels(n, c)
            ts["labels"] = T(lab)
            if extra or g.coin(0.3):
                other = g.labels(extra, c)
                cand = torch.cat([other[:off], lab, other[off:]])
                ts["candidate_labels"] = T(cand)
                kw["offset"] = off
        else:
            y = g.simplex(n, c)
            ts["targets"] = T(y, True)
            if extra or g.coin(0.3):
                other = g.simplex(extra, c)
                ts["candidates"] = T(torch.cat([other[:off], y, other[off:]]), True)
                kw["offset"] = off
        if g.coin(0.4):
            ts["noise_probs"] = T(g.simplex(c, zeros=False, positive=True), expand=False)
        if tiled:
            kw["tile"] = g.integer(1, 3)
        elif not hard and not module:
            kw["tile"] = 0
        return ts, kw

    return build


def b_from_scores(g: Gen) -> Built:
    n, m = g.n, g.integer(1, 5)
    return {"scores": T(g.logits(n, m), True), "positives": T(g.labels(n, m))}, {}


# the registry ----------------------------------------------------------------------------------

_EMB = {"temperature": "tau", "reduction": "reduction"}
_INFONCE_SLOTS = {
    "query": "float",
    "positive_key": "float",
    "key_log_q": "logq",
    **_EMB,
    "similarity": "enum",
    "tile": "tile",
}
_SUPCON_SLOTS = {
    "embeddings": "float",
    "labels": "labels",
    **_EMB,
    "base_temperature": "tau",
    "tile": "tile",
    "normalize": "bool",
}
_PROTO_SLOTS = {
    "embeddings": "float",
    "labels": "labels_k",
    "prototypes": "float",
    **_EMB,
    "normalize": "bool",
}
_ST_SLOTS = {
    "logits": "float",
    "targets": "simplex",
    "noise_probs": "simplex",
    "candidates": "simplex",
    "offset": "offset",
    **_EMB,
}
_HARD_SLOTS = {
    "logits": "float",
    "labels": "labels_k",
    "noise_probs": "simplex",
    "candidate_labels": "labels_k",
    "offset": "offset",
    **_EMB,
}


def _specs() -> list[Spec]:
    s: list[Spec] = []
    add = s.append
    # infonce
    for tiled in (False, True):
        tag = "tiled" if tiled else "dense"
        add(
            Spec(
                f"infonce.info_nce[{tag}]",
                nce.info_nce,
                b_info_nce(tiled),
                {**_INFONCE_SLOTS, "negative_keys": "float", "negative_log_q": "logq"},
                "query",
                bound=("positive_key", "negative_keys", "key_log_q", "negative_log_q"),
                same_dtype=("positive_key", "negative_keys"),
                covers=("infonce.info_nce", "tiled.tiled_info_nce"),
            )
        )
        add(
            Spec(
                f"infonce.symmetric_info_nce[{tag}]",
                nce.symmetric_info_nce,
                b_symmetric(tiled),
                {"a": "float", "b": "float", **_EMB, "similarity": "enum", "tile": "tile"},
                "a",
                bound=("b",),
                same_dtype=("b",),
                covers=("infonce.symmetric_info_nce", "tiled.tiled_symmetric_info_nce"),
            )
        )
    add(
        Spec(
            "infonce.ranking_nce",
            nce.ranking_nce,
            b_ranking,
            {"scores": "float", "log_q": "logq", "reduction": "reduction"},
            "scores",
            bound=("log_q",),
        )
    )
    add(
        Spec(
            "infonce.InfoNCE",
            _module(nce.InfoNCE, ("temperature", "similarity", "negative_mode", "reduction")),
            _strip(b_info_nce(False), ("tile",)),
            {**_INFONCE_SLOTS, "negative_keys": "float", "tile": "skip"},
            "query",
            bound=("positive_key", "negative_keys", "key_log_q", "negative_log_q"),
            same_dtype=("positive_key", "negative_keys"),
        )
    )
    add(
        Spec(
            "infonce.SymmetricInfoNCE",
            _module(nce.SymmetricInfoNCE, ("temperature", "similarity", "reduction")),
            _strip(b_symmetric(False), ("tile",)),
            {"a": "float", "b": "float", **_EMB, "similarity": "enum"},
            "a",
            bound=("b",),
            same_dtype=("b",),
        )
    )
    add(
        Spec(
            "infonce.RankingNCE",
            _module(nce.RankingNCE, ("reduction",)),
            b_ranking,
            {"scores": "float", "log_q": "logq", "reduction": "reduction"},
            "scores",
            bound=("log_q",),
        )
    )
    # sincere
    for tiled in (False, True):
        tag = "tiled" if tiled else "dense"
        add(
            Spec(
                f"sincere.supcon_loss[{tag}]",
                sc.supcon_loss,
                b_supcon(tiled, False),
                {**_SUPCON_SLOTS, "variant": "enum"},
                "embeddings",
                bound=("labels",),
                covers=("sincere.supcon_loss", "tiled.tiled_supcon_loss"),
            )
        )
        add(
            Spec(
                f"sincere.sincere_loss[{tag}]",
                sc.sincere_loss,
                b_supcon(tiled, True),
                _SUPCON_SLOTS,
                "embeddings",
                bound=("labels",),
                covers=("sincere.sincere_loss", "tiled.tiled_sincere_loss"),
            )
        )
    for sincere, fn in ((False, sc.supcon_from_logits), (True, sc.sincere_from_logits)):
        slots = {"logits": "float", "labels": "labels", "reduction": "reduction"}
        if not sincere:
            slots["variant"] = "enum"
        add(
            Spec(f"sincere.{fn.__name__}", fn, b_from_logits(sincere), slots, "logits", ("labels",))
        )
    add(
        Spec(
            "sincere.SupConLoss",
            _module(
                sc.SupConLoss,
                ("temperature", "variant", "normalize", "base_temperature", "reduction"),
            ),
            _strip(b_supcon(False, False), ("tile",)),
            {**_SUPCON_SLOTS, "variant": "enum", "tile": "skip"},
            "embeddings",
            bound=("labels",),
        )
    )
    add(
        Spec(
            "sincere.SINCERELoss",
            _module(sc.SINCERELoss, ("temperature", "normalize", "base_temperature", "reduction")),
            _strip(b_supcon(False, True), ("tile",)),
            {**_SUPCON_SLOTS, "tile": "skip"},
            "embeddings",
            bound=("labels",),
        )
    )
    # aljundi
    add(
        Spec(
            "aljundi.prototype_cross_entropy",
            al.prototype_cross_entropy,
            b_proto(False),
            _PROTO_SLOTS,
            "embeddings",
            bound=("labels", "prototypes"),
        )
    )
    for tiled in (False, True):
        add(
            Spec(
                f"aljundi.esupcon_loss[{'tiled' if tiled else 'dense'}]",
                al.esupcon_loss,
                b_proto(True, tiled),
                {**_PROTO_SLOTS, "tile": "tile"},
                "embeddings",
                bound=("labels", "prototypes"),
                covers=("aljundi.esupcon_loss", "tiled.tiled_esupcon_loss"),
            )
        )
    add(
        Spec(
            "aljundi.prototype_predict",
            al.prototype_predict,
            b_predict,
            {
                "embeddings": "float",
                "prototypes": "float",
                "temperature": "tau",
                "normalize": "bool",
            },
            "embeddings",
            bound=("prototypes",),
        )
    )
    add(
        Spec(
            "aljundi.esupcon_formula",
            al.esupcon_formula,
            b_esupcon_formula,
            {"sample_logits": "float", "proto_logits": "float", "labels": "labels_k"},
            "sample_logits",
            bound=("proto_logits", "labels"),
            validated=False,  # public kernel, unvalidated (see docs/robustness.md)
        )
    )
    for cls, views in ((al.PrototypeCrossEntropy, False), (al.ESupConLoss, True)):
        add(
            Spec(
                f"aljundi.{cls.__name__}",
                _module(
                    cls,
                    ("num_classes", "dim", "temperature", "normalize", "reduction", "prototypes"),
                ),
                b_proto(views, module=True),
                {**_PROTO_SLOTS, "num_classes": "posint", "dim": "posint"},
                "embeddings",
                bound=("labels", "prototypes"),
            )
        )
    # collision_ce
    add(
        Spec(
            "collision_ce.collision_cross_entropy",
            cce.collision_cross_entropy,
            b_collision(False),
            {"logits": "float", "targets": "simplex", "reduction": "reduction"},
            "logits",
            bound=("targets",),
            log_grad=lg_collision,
        )
    )
    add(
        Spec(
            "collision_ce.self_labeling_loss",
            cce.self_labeling_loss,
            b_collision(True),
            {"logits": "float", "y": "simplex", "lam": "nonneg", "reduction": "reduction"},
            "logits",
            bound=("y",),
            log_grad=lg_collision,
        )
    )
    add(
        Spec(
            "collision_ce.CollisionCrossEntropy",
            _module(cce.CollisionCrossEntropy, ("reduction",)),
            b_collision(False),
            {"logits": "float", "targets": "simplex", "reduction": "reduction"},
            "logits",
            bound=("targets",),
            log_grad=lg_collision,
        )
    )
    add(
        Spec(
            "collision_ce.SelfLabelingLoss",
            _module(cce.SelfLabelingLoss, ("lam", "reduction")),
            b_collision(True),
            {"logits": "float", "y": "simplex", "lam": "nonneg", "reduction": "reduction"},
            "logits",
            bound=("y",),
            log_grad=lg_collision,
        )
    )
    solver = {
        "probs": "simplex",
        "y0": "simplex",
        "lam": "nonneg",
        "tol": "tau",
        "max_iter": "posint",
    }
    add(
        Spec(
            "collision_ce.em_pseudo_labels",
            cce.em_pseudo_labels,
            b_solver(False),
            {**solver, "accelerate": "bool"},
            "probs",
            bound=("y0",),
        )
    )
    add(
        Spec(
            "collision_ce.pgd_pseudo_labels",
            cce.pgd_pseudo_labels,
            b_solver(True),
            {**solver, "step": "tau"},
            "probs",
            bound=("y0",),
        )
    )
    add(
        Spec(
            "collision_ce.project_simplex",
            cce.project_simplex,
            b_project,
            {"v": "anyrank"},
            "v",
            empty_ok=True,  # zero rows project to zero rows
        )
    )
    pseudo: tuple[Callable[..., Any], ...] = (
        cce.pseudo_label_objective,
        cce.pseudo_label_gradient,
        cce.pseudo_label_kkt_residual,
        cce.pseudo_label_gap,
    )
    for pfn in pseudo:
        add(
            Spec(
                f"collision_ce.{pfn.__name__}",
                pfn,
                b_pseudo,
                {"probs": "simplex", "y": "simplex", "lam": "nonneg"},
                "probs",
                bound=("y",),
            )
        )
    # cross_entropy
    ce_fns: tuple[tuple[str, Callable[..., Any], type, tuple[str, ...]], ...] = (
        ("soft", ce.soft_target_cross_entropy, ce.SoftTargetCrossEntropy, ()),
        ("nll", ce.nll_loss, ce.HardNLL, ()),
        ("smooth", ce.label_smoothing_cross_entropy, ce.LabelSmoothingCrossEntropy, ("epsilon",)),
    )
    for kind, cfn, ccls, extra in ce_fns:
        slots = {"logits": "float", **_EMB}
        slots.update({"targets": "simplex"} if kind == "soft" else {"labels": "labels_k"})
        if kind == "smooth":
            slots["epsilon"] = "unit"
        tgt = ("targets",) if kind == "soft" else ("labels",)
        add(Spec(f"cross_entropy.{cfn.__name__}", cfn, b_ce(kind), slots, "logits", tgt))
        add(
            Spec(
                f"cross_entropy.{ccls.__name__}",
                _module(ccls, (*extra, "temperature", "reduction")),
                b_ce(kind),
                slots,
                "logits",
                tgt,
            )
        )
    # soft_target_infonce
    for tiled in (False, True):
        add(
            Spec(
                f"soft_target_infonce.soft_target_info_nce[{'tiled' if tiled else 'dense'}]",
                sti.soft_target_info_nce,
                b_st_infonce(tiled, False),
                {**_ST_SLOTS, "tile": "tile"},
                "logits",
                bound=("targets", "noise_probs", "candidates"),
                covers=(
                    "soft_target_infonce.soft_target_info_nce",
                    "tiled.tiled_soft_target_info_nce",
                ),
            )
        )
    add(
        Spec(
            "soft_target_infonce.info_nce_hard_labels",
            sti.info_nce_hard_labels,
            b_st_infonce(False, True),
            _HARD_SLOTS,
            "logits",
            bound=("labels", "noise_probs"),
        )
    )
    add(
        Spec(
            "soft_target_infonce.info_nce_from_scores",
            sti.info_nce_from_scores,
            b_from_scores,
            {"scores": "float", "positives": "labels_k"},
            "scores",
            bound=("positives",),
        )
    )
    add(
        Spec(
            "soft_target_infonce.SoftTargetInfoNCE",
            _module(sti.SoftTargetInfoNCE, ("noise_probs", "temperature", "reduction")),
            b_st_infonce(False, False, module=True),
            _ST_SLOTS,
            "logits",
            bound=("targets", "noise_probs", "candidates"),
        )
    )
    add(
        Spec(
            "soft_target_infonce.InfoNCEHardLabels",
            _module(sti.InfoNCEHardLabels, ("noise_probs", "temperature", "reduction")),
            b_st_infonce(False, True, module=True),
            _HARD_SLOTS,
            "logits",
            bound=("labels", "noise_probs"),
        )
    )
    return s


def _strip(build: Callable[[Gen], Built], keys: tuple[str, ...]) -> Callable[[Gen], Built]:
    def wrapped(g: Gen) -> Built:
        ts, kw = build(g)
        return ts, {k: v for k, v in kw.items() if k not in keys}

    return wrapped


SPECS: dict[str, Spec] = {sp.name: sp for sp in _specs()}

#: losses on cosine similarities (when ``similarity="cosine"`` / ``normalize=True``): their
#: logits are bounded by ``1/tau``, so their finite values are also checked for accuracy
COSINE = (
    "infonce.info_nce",
    "infonce.symmetric_info_nce",
    "infonce.InfoNCE",
    "infonce.SymmetricInfoNCE",
    "sincere.supcon_loss",
    "sincere.sincere_loss",
    "sincere.SupConLoss",
    "sincere.SINCERELoss",
    "aljundi.prototype_cross_entropy",
    "aljundi.esupcon_loss",
    "aljundi.PrototypeCrossEntropy",
    "aljundi.ESupConLoss",
)

#: public names with no case builder of their own, and why
EXEMPT: dict[str, str] = {
    "collision_ce.EMResult": "result dataclass of the solvers (checked through them)",
    "sincere.flatten_views": "layout helper, no numerics (exercised by every (B, V, D) case)",
    "tiled.auto_tile": "dispatch helper (no loss value); its threshold logic has tests",
    "tiled.resolve_tile": "dispatch helper; its bad `tile` values are in every tile slot",
    "tiled.default_tile": "dispatch helper (no loss value)",
    "tiled.CPU_THRESHOLDS": "constant",
    "tiled.CPU_TILE": "constant",
    "tiled.CUDA_TILE": "constant",
    "tiled.FAMILIES": "constant",
}


def public_names() -> list[str]:
    """``module.name`` for every name in the ``__all__`` of each loss module."""
    out = []
    for mod in LOSS_MODULES:
        m = importlib.import_module(f"softnce_theory.losses.{mod}")
        out += [f"{mod}.{n}" for n in m.__all__]
    return out


def uncovered() -> list[str]:
    covered = {n.split("[")[0] for n in SPECS}
    for sp in SPECS.values():
        covered.update(sp.covers)
    return [n for n in public_names() if n not in covered and n not in EXEMPT]


# ----------------------------------------------------------------------------- layouts


def lay(t: torch.Tensor, layout: str, expand: bool) -> tuple[torch.Tensor, Callable[[Any], Any]]:
    """``(leaf, view_fn)``: a buffer and the view of it that is passed to the loss."""
    if layout == "expanded" and expand and t.dim() >= 1 and t.shape[0] > 1:
        shape = tuple(t.shape)
        return t[:1].clone(), lambda b: b.expand(shape)  # stride 0 along dim 0: rows repeat
    if layout == "noncontiguous" and t.dim() >= 2 and t.shape[-1] > 1 and t.shape[-2] > 1:
        return t.transpose(-1, -2).contiguous(), lambda b: b.transpose(-1, -2)
    if layout in ("strided", "noncontiguous") and t.dim() >= 1 and t.numel() > 0:
        buf = torch.zeros(*t.shape[:-1], 2 * t.shape[-1], dtype=t.dtype)
        buf[..., ::2] = t
        return buf, lambda b: b[..., ::2]
    return t.clone(), lambda b: b


# ----------------------------------------------------------------------------- valid cases


@dataclass
class Case:
    spec: Spec
    tensors: dict[str, T]
    kwargs: dict[str, Any]
    dtype: torch.dtype
    layout: str
    seed: int
    index: int

    @property
    def tag(self) -> str:
        return (
            f"{self.spec.name} {str(self.dtype)[6:]} {self.layout} seed={self.seed} i={self.index}"
        )


def valid_case(spec: Spec, seed: int, index: int, dtype: torch.dtype, layout: str) -> Case:
    rng = np.random.default_rng([seed, index])
    g = Gen(rng, dtype, layout, int(rng.integers(1, 7)))
    ts, kw = spec.build(g)
    return Case(spec, ts, kw, dtype, layout, seed, index)


def iter_valid(seed: int, count: int, start: int = 0) -> Iterator[Case]:
    """Case ``i`` uses spec ``i mod S`` and (dtype, layout) combo ``(i // S + spec) mod 16``:
    every S * 16 consecutive cases cover every (spec, dtype, layout) once."""
    specs = list(SPECS.values())
    for i in range(start, start + count):
        j = i % len(specs)
        combo = (i // len(specs) + j) % (len(DTYPES) * len(LAYOUTS))
        dtype, layout = DTYPES[combo % len(DTYPES)], LAYOUTS[combo // len(DTYPES)]
        yield valid_case(specs[j], seed, i, dtype, layout)


def case_upcast(case: Case) -> Case:
    """The same case with every floating input upcast (exactly) to float64."""
    ts = {
        n: T(t.value.double() if t.value.dtype.is_floating_point else t.value, t.grad, t.expand)
        for n, t in case.tensors.items()
    }
    return Case(case.spec, ts, case.kwargs, torch.float64, case.layout, case.seed, case.index)


def _tensors_of(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, cce.EMResult):
        return [out.y, torch.tensor(out.history, dtype=torch.float64)]
    if isinstance(out, float):
        return [torch.tensor([out], dtype=torch.float64)]
    raise TypeError(f"unexpected result type {type(out).__name__}")


#: modules whose ``values_checked`` the float64 reference switches off
_VALUE_CHECKERS = [m for m in (_common, al, cce, ce, nce, sc, sti) if hasattr(m, "values_checked")]


def _call(
    case: Case, dtype: torch.dtype | None = None, perturb: tuple[int, float] | None = None
) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """Outputs and gradients (w.r.t. the differentiable inputs, i.e. the views passed to the
    loss; for the stride-0 layout the gradient of each repeated row separately) of one call.

    ``dtype`` upcasts every floating buffer first (the float64 reference); the reference skips
    the simplex tolerance checks (a float16 simplex row upcast to float64 sums to 1 only within
    the float16 tolerance). ``perturb = (seed, delta)`` multiplies every floating input entry
    (of the view, so repeated rows are perturbed independently) by ``1 +- delta``.
    """
    if dtype is not None:
        with contextlib.ExitStack() as stack:
            for mod in _VALUE_CHECKERS:
                stack.enter_context(mock.patch.object(mod, "values_checked", lambda v: False))
            return _call(case_upcast(case), None, perturb)
    gen = torch.Generator().manual_seed(perturb[0]) if perturb else None
    views, diff = {}, []
    for name, t in case.tensors.items():
        leaf, view = lay(t.value, case.layout, t.expand)
        leaf.requires_grad_(t.grad)
        v = view(leaf)
        if perturb and v.dtype.is_floating_point:
            sign = torch.randint(0, 2, v.shape, generator=gen).to(v.dtype) * 2 - 1
            v = v * (1 + perturb[1] * sign)
        if t.grad:
            diff.append(v)  # the loss's own input (a view): its gradient is the contract
        views[name] = v
    outs = _tensors_of(case.spec.fn(**views, **case.kwargs))
    grads: list[torch.Tensor | None] = []
    if diff and outs[0].requires_grad:
        ones = torch.ones_like(outs[0])
        grads = list(torch.autograd.grad(outs[0], diff, grad_outputs=ones, allow_unused=True))
    return [o.detach() for o in outs], grads


@dataclass
class Counts:
    """Valid-input tallies. ``true_overflow`` and ``ill_conditioned`` are not failures."""

    cases: int = 0
    ok: int = 0
    true_overflow: int = 0
    ill_conditioned: int = 0
    nonfinite: int = 0
    inaccurate: int = 0
    false_rejections: int = 0
    raw_exceptions: int = 0
    overflow_by_dtype: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, kind: str, tag: str, detail: str = "") -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if kind in ("true_overflow", "ill_conditioned"):
            key = f"{kind} {tag.split()[1]}"  # the tag's second word is the dtype
            self.overflow_by_dtype[key] = self.overflow_by_dtype.get(key, 0) + 1
        if kind not in ("ok", "true_overflow", "ill_conditioned"):
            self.failures.append(f"{kind}: {tag}: {detail}"[:400])


#: perturbed float64 references per case, and their relative size in units of the compute eps
PERTURBATIONS, PERTURB_EPS = 4, 4.0


def _big(r: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """Entries whose magnitude exceeds the range of ``dtype`` (NaN: False)."""
    return None if r is None else r.abs() > torch.finfo(dtype).max


def _oracle64(case: Case, i: int, n_out: int) -> torch.Tensor | None:
    """log |true entry| of output/gradient ``i`` where a spec has a float64 magnitude oracle."""
    if case.spec.log_grad is None or i < n_out:
        return None
    names = [n for n, t in case.tensors.items() if t.grad]
    views = {}
    for n, t in case.tensors.items():
        leaf, view = lay(t.value, case.layout, t.expand)
        views[n] = view(leaf.double() if leaf.is_floating_point() else leaf)
    return case.spec.log_grad(views, case.kwargs).get(names[i - n_out])


def run_valid(case: Case, counts: Counts) -> str:
    """Run one valid case and classify it (see the module docstring)."""
    counts.cases += 1
    try:
        outs, grads = _call(case)
    except ValueError as e:
        counts.add("false_rejections", case.tag, repr(e))
        return "false_rejections"
    except Exception as e:
        counts.add("raw_exceptions", case.tag, f"{type(e).__name__}: {e}")
        return "raw_exceptions"
    got = [*outs, *grads]
    bad = [
        i
        for i, x in enumerate(got)
        if x is not None and x.dtype.is_floating_point and not bool(torch.isfinite(x).all())
    ]
    if not bad:
        return _check_value(case, outs[0], counts)
    verdict = "true_overflow"
    try:
        r_out, r_grad = _call(case, torch.float64)
        exact = [*r_out, *r_grad]
        pert: list[list[torch.Tensor | None]] = []
        for i in bad:
            x = got[i]
            assert x is not None
            nonfin = ~torch.isfinite(x)
            if case.dtype == torch.float64:  # its own reference: only an oracle can tell
                lm = _oracle64(case, i, len(outs))
                if lm is None or not bool((lm[nonfin] > math.log(torch.finfo(x.dtype).max)).all()):
                    raise _Fail(i, exact[i] if i < len(exact) else None)
                continue
            big = _big(exact[i] if i < len(exact) else None, case.dtype)
            if big is not None and bool(big[nonfin].all()):
                continue
            if not pert:  # rounding-amplified: exceeds the range within the compute eps?
                delta = PERTURB_EPS * torch.finfo(_common.compute_dtype(x)).eps
                for k in range(PERTURBATIONS):
                    o, g = _call(case, torch.float64, (case.index * 7 + k, delta))
                    pert.append([*o, *g])
            rest = nonfin & ~(big if big is not None else torch.zeros_like(nonfin))
            hit = torch.zeros_like(nonfin)
            for ref in pert:
                b = _big(ref[i] if i < len(ref) else None, case.dtype)
                if b is not None:
                    hit |= b
            if not bool(hit[rest].all()):
                raise _Fail(i, exact[i] if i < len(exact) else None)
            verdict = "ill_conditioned"
    except _Fail as f:
        x = got[f.i]
        assert x is not None
        what = "output" if f.i < len(outs) else "gradient"
        want = None if f.ref is None else f.ref.flatten()[:6].tolist()
        counts.add(
            "nonfinite", case.tag, f"{what} {f.i}: got {x.flatten()[:6].tolist()}, float64 {want}"
        )
        return "nonfinite"
    except Exception as e:
        counts.add("raw_exceptions", case.tag, f"float64 reference: {type(e).__name__}: {e}")
        return "raw_exceptions"
    counts.add(verdict, case.tag)
    return verdict


def vs_cosine(ts: dict[str, T], kw: dict[str, Any]) -> float | None:
    """Bound on the logits of a cosine-similarity loss, ``1/tau`` (+ ``max |log q|``);
    ``None`` (no value check) for dot products, whose conditioning grows with the norms."""
    if kw.get("similarity", "cosine") != "cosine" or not kw.get("normalize", True):
        return None
    t = float(kw.get("temperature", 0.1))
    scale = 1.0 / t
    for name in ("key_log_q", "negative_log_q"):
        if name in ts:
            scale += float(ts[name].value.double().abs().max())
    if kw.get("base_temperature"):
        scale *= t / kw["base_temperature"]
    return scale


def _check_value(case: Case, got: torch.Tensor, counts: Counts) -> str:
    """Silent wrong values: a finite result of a cosine loss must match the float64 reference
    within ``2 eps(dtype) |ref| + 64 eps(compute) (scale + 1)`` per row (``scale`` bounds the
    logits, see :func:`vs_cosine`); ``sum`` adds the rows' bounds. This is what caught
    ``F.normalize`` overflowing at row norms above ~1.8e19 (issue 12, defect 4)."""
    scale = case.spec.value_scale(case.tensors, case.kwargs) if case.spec.value_scale else None
    if scale is None:
        counts.add("ok", case.tag)
        return "ok"
    ref = _call(case, torch.float64)[0][0]
    rows = _rows(case) if case.kwargs.get("reduction") == "sum" else 1
    eps_c = torch.finfo(_common.compute_dtype(got)).eps
    tol = 2 * torch.finfo(got.dtype).eps * ref.abs() + 64 * eps_c * (scale + 1) * rows
    err = (got.double() - ref).abs()
    if bool((err <= tol).all()):
        counts.add("ok", case.tag)
        return "ok"
    counts.add(
        "inaccurate",
        case.tag,
        f"got {got.flatten()[:4].tolist()}, float64 {ref.flatten()[:4].tolist()}",
    )
    return "inaccurate"


def _rows(case: Case) -> int:
    """Rows summed by ``reduction='sum'`` (anchors: ``B`` or ``B * V``)."""
    x = next(iter(case.tensors.values())).value
    return int(math.prod(x.shape[:-1])) if x.dim() >= 2 else 1


class _Fail(Exception):
    def __init__(self, i: int, ref: torch.Tensor | None) -> None:
        self.i, self.ref = i, ref


# ----------------------------------------------------------------------------- bad inputs


def _on_meta(x: torch.Tensor) -> torch.Tensor:
    return torch.empty(x.shape, dtype=x.dtype, device=META)


def _with(x: torch.Tensor, value: float) -> torch.Tensor:
    y = x.clone()
    y.view(-1)[0] = value
    return y


def _tensor_mutations(
    kind: str, x: torch.Tensor, bound: bool, same_dtype: bool, single: bool, k: int
) -> list[tuple[str, Any]]:
    """Bad values of a tensor argument of the given kind (``x`` its valid value)."""
    m: list[tuple[str, Any]] = [
        ("list", x.tolist()),
        ("numpy array", x.numpy()),
        ("bool dtype", x != 0),
        (
            "complex dtype",
            x.to(torch.complex64),
        ),
    ]
    if kind in ("float", "simplex", "logq", "anyrank"):
        m.append(("int64 dtype", x.to(torch.int64)))
    if kind != "anyrank":
        m.append(("rank 4", x.reshape(1, 1, *x.shape) if x.dim() >= 2 else x.reshape(1, 1, 1, -1)))
    if not single:
        m.append(("meta device", _on_meta(x)))
    if bound:
        shape = list(x.shape)
        shape[-1] += 1
        if kind.startswith("labels"):
            m.append(("wrong length", torch.zeros(shape, dtype=x.dtype)))
        else:
            m.append(("wrong shape", torch.full(shape, 0.5, dtype=x.dtype)))
    if same_dtype:
        m.append(("float64 vs float32", x.double()))
    if kind == "simplex":
        m += [
            ("NaN entry", _with(x, math.nan)),
            ("Inf entry", _with(x, math.inf)),
            (
                "negative entry",
                torch.cat([x[..., :1] * 0 - 0.5, x[..., :1] * 0 + 1.5, x[..., 2:] * 0], -1)
                if x.shape[-1] >= 2
                else _with(x, -1.0),
            ),
            ("rows sum to 2", x * 2),
        ]
    if kind == "logq":
        m += [("-inf entry", _with(x, -math.inf)), ("NaN entry", _with(x, math.nan))]
    if kind.startswith("labels"):
        m += [("float dtype", x.double()), ("negative label", _with(x, -1))]
        if kind == "labels_k":
            m.append(("label = number of classes", _with(x, k)))
    return m


SCALAR_MUTATIONS: dict[str, list[Any]] = {
    "tau": [0.0, -1.0, math.nan, math.inf, -math.inf, True, "0.1", 1j, torch.tensor([0.1, 0.2])],
    "nonneg": [-1.0, math.nan, math.inf, True, "1", 1j, torch.tensor([0.1, 0.2])],
    "unit": [1.5, -0.1, math.nan, True, "0.1"],
    "posint": [0, -1, 2.5, "3", True, None, 3.0],
    "reduction": ["avg", None, 0, "MEAN"],
    "tile": [-1, 1.5, "2", True],
    "enum": ["bogus", None, 1],
    "offset": [-1, 1.5, True, "0", 10**6],
    "bool": ["yes", None, 2],
}
#: valid numpy scalars per kind (must be accepted, value as the Python number)
NUMPY_VALID: dict[str, list[Any]] = {
    "tau": [np.float64(0.5), np.float32(0.5), np.int64(2), np.int32(1)],
    "nonneg": [np.float64(0.5), np.float32(0.25), np.int64(0), np.int32(1)],
    "unit": [np.float64(0.5), np.float32(0.25), np.int64(0), np.int32(1)],
    "posint": [np.int64(3), np.int32(2)],
    "offset": [np.int64(0)],
}


@dataclass
class BadCase:
    spec: Spec
    arg: str
    what: str
    tensors: dict[str, Any]
    kwargs: dict[str, Any]

    @property
    def tag(self) -> str:
        return f"{self.spec.name} {self.arg}={self.what}"


def _base(spec: Spec, seed: int, n: int = 3, dtype: torch.dtype = torch.float32) -> Case:
    rng = np.random.default_rng([seed, 7, len(spec.name)])
    for _ in range(50):  # a base case where every optional argument is present, if possible
        g = Gen(rng, dtype, "contiguous", n)
        ts, kw = spec.build(g)
        optional = [a for a in spec.slots if a not in ts and a not in kw]
        if not [a for a in optional if spec.slots[a] != "skip" and a not in _ABSENT_OK]:
            break
    return Case(spec, ts, kw, dtype, "contiguous", seed, -1)


#: arguments that a base case may lack (mutually exclusive with another one, or module-only)
_ABSENT_OK = {
    "negative_log_q",
    "base_temperature",
    "tile",
    "variant",
    "num_classes",
    "dim",
    "epsilon",
}


def bad_cases(seed: int = 0) -> list[BadCase]:
    out = []
    for spec in SPECS.values():
        if not spec.validated:
            continue
        base = _base(spec, seed)
        single = len(base.tensors) == 1
        k = _classes(base)
        for arg, kind in spec.slots.items():
            if kind == "skip":
                continue
            if arg in base.tensors:
                x = base.tensors[arg].value
                muts = _tensor_mutations(
                    kind, x, arg in spec.bound, arg in spec.same_dtype, single, k
                )
                for what, v in muts:
                    ts = {n: t.value for n, t in base.tensors.items()}
                    ts[arg] = v
                    out.append(BadCase(spec, arg, what, ts, dict(base.kwargs)))
            elif arg in base.kwargs or kind in SCALAR_MUTATIONS:
                for v in SCALAR_MUTATIONS.get(kind, []):
                    kw = dict(base.kwargs)
                    kw[arg] = v
                    out.append(
                        BadCase(
                            spec, arg, repr(v), {n: t.value for n, t in base.tensors.items()}, kw
                        )
                    )
        if spec.empty_ok:
            continue
        rng = np.random.default_rng([seed, 9])  # empty batch
        ts0, kw0 = spec.build(Gen(rng, torch.float32, "contiguous", 0))
        out.append(
            BadCase(spec, spec.primary, "empty batch", {n: t.value for n, t in ts0.items()}, kw0)
        )
    return out


def _classes(case: Case) -> int:
    """Number of classes (prototypes, logit columns, score columns) a label must stay below."""
    for name in ("prototypes", "proto_logits", "logits", "scores"):
        if name in case.tensors:
            x = case.tensors[name].value
            return int(x.shape[0] if name == "prototypes" else x.shape[-1])
    return 1


def names_arg(msg: str, arg: str) -> bool:
    """The message names ``arg`` as a word (one-letter names: as the subject, ``b must`` or
    ``b: ...``, or after 'as')."""
    if len(arg) == 1:
        return bool(re.search(rf"(^{arg}[ :]|\bas {arg}\b|\b{arg} must\b)", msg))
    return bool(re.search(rf"(?<![\w.]){re.escape(arg)}(?!\w)", msg))


@dataclass
class BadCounts:
    cases: int = 0
    named_value_errors: int = 0
    unnamed_value_errors: int = 0
    raw_exceptions: int = 0
    silent_acceptances: int = 0
    numpy_cases: int = 0
    numpy_rejected: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, kind: str, tag: str, detail: str = "") -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if kind not in ("named_value_errors",):
            self.failures.append(f"{kind}: {tag}: {detail}"[:400])


def run_bad(case: BadCase, counts: BadCounts) -> str:
    counts.cases += 1
    try:
        case.spec.fn(**case.tensors, **case.kwargs)
    except ValueError as e:
        kind = "named_value_errors" if names_arg(str(e), case.arg) else "unnamed_value_errors"
        counts.add(kind, case.tag, str(e))
        return kind
    except Exception as e:
        counts.add("raw_exceptions", case.tag, f"{type(e).__name__}: {e}")
        return "raw_exceptions"
    counts.add("silent_acceptances", case.tag, "returned")
    return "silent_acceptances"


def numpy_cases(seed: int = 0) -> list[BadCase]:
    """Valid numpy scalars in every real/integer slot (``what`` is the scalar's repr)."""
    out = []
    for spec in SPECS.values():
        base = _base(spec, seed)
        for arg, kind in spec.slots.items():
            for v in NUMPY_VALID.get(kind, []):
                if arg not in base.kwargs and kind not in ("tau", "nonneg", "posint"):
                    continue
                if arg == "base_temperature" or (arg == "offset" and "offset" not in base.kwargs):
                    continue
                if (kind == "posint" and arg in ("num_classes", "dim")) or arg == "offset":
                    v = type(v)(base.kwargs[arg])  # the same value as a numpy integer
                out.append(
                    BadCase(
                        spec,
                        arg,
                        repr(v),
                        {n: t.value for n, t in base.tensors.items()},
                        {**base.kwargs, arg: v},
                    )
                )
    return out


def run_numpy(case: BadCase, counts: BadCounts) -> None:
    counts.numpy_cases += 1
    try:
        case.spec.fn(**case.tensors, **case.kwargs)
    except Exception as e:
        counts.add("numpy_rejected", case.tag, f"{type(e).__name__}: {e}")


# ----------------------------------------------------------------------------- full run


def run_all(seed: int, sweeps: int, bad_seeds: tuple[int, ...]) -> dict[str, Any]:
    """The full run: ``sweeps`` sweeps of valid cases (see :func:`iter_valid`), the whole
    bad-input matrix and the numpy-scalar cases for each of ``bad_seeds``; the counts."""
    t0 = time.perf_counter()
    vc = Counts()
    for case in iter_valid(seed, sweeps * len(SPECS) * len(DTYPES) * len(LAYOUTS)):
        run_valid(case, vc)
    bc = BadCounts()
    for s in bad_seeds:
        for bad in bad_cases(s):
            run_bad(bad, bc)
        for ok in numpy_cases(s):
            run_numpy(ok, bc)
    return {
        "seed": seed,
        "sweeps": sweeps,
        "bad_seeds": list(bad_seeds),
        "specs": len(SPECS),
        "valid": {k: v for k, v in vars(vc).items() if k != "failures"},
        "bad": {k: v for k, v in vars(bc).items() if k != "failures"},
        "failures": vc.failures + bc.failures,
        "seconds": round(time.perf_counter() - t0, 1),
        "torch": torch.__version__,
    }


for _sp in SPECS.values():
    if _sp.name.split("[")[0] in COSINE:
        _sp.value_scale = vs_cosine
