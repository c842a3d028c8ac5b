r"""mpmath oracles for the Aljundi et al. 2023 losses (**reconstructed**, research note §3).

Explicit loops from the formulas, sharing no code with the torch losses:

* prototype CE :math:`\ell_i=-\log\frac{e^{t_{iy_i}}}{\sum_ke^{t_{ik}}}`, :math:`t_{ik}=
  \hat z_i^\top\hat w_k/\tau` (cosine-softmax classifier);
* ESupCon :math:`\ell_i=\frac{-1}{|P(i)|+1}\sum_{u\in P(i)\cup\{w_{y_i}\}}\log
  \frac{e^{c_{iu}}}{\sum_{a\in A(i)}e^{s_{ia}}+\sum_ke^{t_{ik}}}`, mean over all anchors.

Every ratio is evaluated as ``log1p`` of the other terms over the numerator (exact rewriting; see
:mod:`numerics.sincere`). Gradients: closed forms with respect to the logits (sample logits
``G``, prototype logits ``H``) and, by the chain rule through the normalisations, with respect
to raw embeddings and prototypes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from mpmath import mp

import softnce_theory.derivations.aljundi as D
from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.numerics import cross_entropy as ce_oracle
from softnce_theory.numerics._definitions import definition_leg
from softnce_theory.numerics._mp import dot, mat, mpf, norm, workdps
from softnce_theory.numerics.sincere import (
    _diff_logits,
    flat,
    flatten_views,
    share_minus_uniform,
    unit_rows,
)

PRECISE = LegRegistry("precise")


def _entries(s: Any, t: Any, labels: Sequence[int], i: int) -> tuple[list[Any], list[bool]]:
    """Anchor i's contrast row: other samples then prototypes, and the positive flags."""
    vals, is_pos = [], []
    for a in range(len(labels)):
        if a != i:
            vals.append(s[i][a])
            is_pos.append(labels[a] == labels[i])
    for k in range(len(t[i])):
        vals.append(t[i][k])
        is_pos.append(k == labels[i])
    return vals, is_pos


def logits(
    emb: Any, protos: Any, tau: Any, normalize: bool = True
) -> tuple[list[list[Any]], list[list[Any]]]:
    """(s, t): sample logits z_i.z_j/tau and prototype logits z_i.w_k/tau (rows flattened)."""
    z = unit_rows(emb) if normalize else mat(emb)
    w = unit_rows(protos) if normalize else mat(protos)
    tt = mpf(tau)
    return [[dot(a, b) / tt for b in z] for a in z], [[dot(a, b) / tt for b in w] for a in z]


def proto_ce_rows(t: Any, labels: Sequence[int]) -> list[Any]:
    """-log(e^{t_iy} / sum_k e^{t_ik}) = log1p(sum_{k != y} e^{t_ik - t_iy})."""
    t = mat(t)
    return [
        mp.log1p(mp.fsum(mp.exp(t[i][k] - t[i][y]) for k in range(len(t[i])) if k != y))
        for i, y in enumerate(labels)
    ]


def esupcon_rows(s: Any, t: Any, labels: Sequence[int]) -> list[Any]:
    s, t = mat(s), mat(t)
    out = []
    for i in range(len(labels)):
        vals, is_pos = _entries(s, t, labels, i)
        terms = [
            mp.log1p(mp.fsum(mp.exp(vals[v] - vals[u]) for v in range(len(vals)) if v != u))
            for u in range(len(vals))
            if is_pos[u]
        ]
        out.append(mp.fsum(terms) / len(terms))
    return out


def _reduce(rows: list[Any], reduction: str) -> Any:
    if reduction == "none":
        return rows
    total = mp.fsum(rows)
    return total if reduction == "sum" else total / len(rows)


def prototype_ce(
    emb: Any,
    labels: Sequence[int],
    protos: Any,
    tau: Any,
    normalize: bool = True,
    reduction: str = "mean",
) -> Any:
    _, t = logits(emb, protos, tau, normalize)
    return _reduce(proto_ce_rows(t, [int(v) for v in labels]), reduction)


def esupcon(
    emb: Any,
    labels: Sequence[int],
    protos: Any,
    tau: Any,
    normalize: bool = True,
    reduction: str = "mean",
) -> Any:
    rows, labs = flatten_views(emb, labels)
    s, t = logits(rows, protos, tau, normalize)
    return _reduce(esupcon_rows(s, t, labs), reduction)


def predict(emb: Any, protos: Any, tau: Any, normalize: bool = True) -> list[list[Any]]:
    """softmax_k(z.w_k / tau) per row, as 1 / sum_j e^{t_j - t_k}."""
    _, t = logits(emb, protos, tau, normalize)
    return [[1 / mp.fsum(mp.exp(v - tk) for v in row) for tk in row] for row in t]


# ----------------------------------------------------------------------------- gradients


def proto_ce_logit_grad(t: Any, labels: Sequence[int], reduction: str = "mean") -> list[list[Any]]:
    """dL/dt_ik = (p_ik - delta_{k y_i}) / n (mean)."""
    t = mat(t)
    div = len(labels) if reduction == "mean" else 1
    every = list(range(len(t[0])))
    return [
        [
            (
                share_minus_uniform(t[i], k, [k], every)  # p_y - 1 = -sum_{c != y} p_c
                if k == y
                else 1 / mp.fsum(mp.exp(v - t[i][k]) for v in t[i])
            )
            / div
            for k in every
        ]
        for i, y in enumerate(labels)
    ]


def esupcon_logit_grad(
    s: Any, t: Any, labels: Sequence[int], reduction: str = "mean"
) -> tuple[list[list[Any]], list[list[Any]]]:
    """(G, H): dL/ds_ia = R_ia - [a in P(i)]/(|P|+1), dL/dt_ik = R_ik - [k = y_i]/(|P|+1),
    R the softmax over A(i) and the prototypes."""
    s, t = mat(s), mat(t)
    nl = len(labels)
    div = nl if reduction == "mean" else 1
    g = [[mpf(0)] * nl for _ in range(nl)]
    h = [[mpf(0)] * len(t[0]) for _ in range(nl)]
    for i in range(nl):
        vals, is_pos = _entries(s, t, labels, i)
        pos = [u for u in range(len(vals)) if is_pos[u]]
        every = list(range(len(vals)))
        grads = [
            share_minus_uniform(vals, u, pos, every)
            if is_pos[u]
            else 1 / mp.fsum(mp.exp(v - vals[u]) for v in vals)
            for u in every
        ]
        others = [a for a in range(nl) if a != i]
        for idx, a in enumerate(others):
            g[i][a] = grads[idx] / div
        for k in range(len(t[i])):
            h[i][k] = grads[len(others) + k] / div
    return g, h


def chain_rule(
    emb: Any, protos: Any, g: Any, h: Any, tau: Any, normalize: bool = True
) -> tuple[list[list[Any]], list[list[Any]]]:
    """(dL/d emb, dL/d protos) from the logit gradients (G over s, H over t)."""
    we, wp = mat(emb), mat(protos)
    z = unit_rows(we) if normalize else we
    w = unit_rows(wp) if normalize else wp
    tt = mpf(tau)
    nl, kk, dim = len(z), len(w), len(z[0])
    gz = [
        [
            (
                mp.fsum((g[r][a] + g[a][r]) * z[a][d] for a in range(nl))
                + mp.fsum(h[r][k] * w[k][d] for k in range(kk))
            )
            / tt
            for d in range(dim)
        ]
        for r in range(nl)
    ]
    gw = [
        [mp.fsum(h[i][k] * z[i][d] for i in range(nl)) / tt for d in range(dim)] for k in range(kk)
    ]
    if normalize:
        gz = [_project(z[r], gz[r], norm(we[r])) for r in range(nl)]
        gw = [_project(w[k], gw[k], norm(wp[k])) for k in range(kk)]
    return gz, gw


def _project(u: list[Any], g: list[Any], scale: Any) -> list[Any]:
    proj = dot(u, g)
    return [(gd - ud * proj) / scale for gd, ud in zip(g, u, strict=True)]


def prototype_ce_grad(
    emb: Any, labels: Sequence[int], protos: Any, tau: Any, normalize: bool = True
) -> tuple[list[list[Any]], list[list[Any]]]:
    labs = [int(v) for v in labels]
    _, t = logits(emb, protos, tau, normalize)
    nl = len(labs)
    zero = [[mpf(0)] * nl for _ in range(nl)]
    return chain_rule(emb, protos, zero, proto_ce_logit_grad(t, labs), tau, normalize)


def esupcon_grad(
    emb: Any, labels: Sequence[int], protos: Any, tau: Any, normalize: bool = True
) -> tuple[Any, list[list[Any]]]:
    """(dL/d emb in the input nesting, dL/d protos)."""
    rows, labs = flatten_views(emb, labels)
    s, t = logits(rows, protos, tau, normalize)
    g, h = esupcon_logit_grad(s, t, labs)
    gz, gw = chain_rule(rows, protos, g, h, tau, normalize)
    arr = emb.tolist() if hasattr(emb, "tolist") else emb
    if arr and isinstance(arr[0][0], list):
        v = len(arr[0])
        return [gz[b * v : (b + 1) * v] for b in range(len(arr))], gw
    return gz, gw


# ----------------------------------------------------------------------------- precise legs


def random_case(
    rng: np.random.Generator, n_min: int = 1, n_max: int = 6
) -> tuple[list[list[Any]], list[list[Any]], list[int]]:
    """Random logit matrices (s: n x n, t: n x K) and labels in [0, K)."""
    nl = int(rng.integers(n_min, n_max))
    kk = int(rng.integers(2, 5))
    scale = float(10 ** rng.uniform(-1, 2.5))
    labels = [int(v) for v in rng.integers(0, kk if rng.uniform() < 0.5 else 2, size=nl)]
    s = mat((rng.standard_normal((nl, nl)) * scale).tolist())
    t = mat((rng.standard_normal((nl, kk)) * scale).tolist())
    return s, t, labels


def _emb_case(rng: np.random.Generator, nl: int, kk: int, dim: int = 3) -> tuple[Any, Any, float]:
    return (
        rng.standard_normal((nl, dim)).tolist(),
        rng.standard_normal((kk, dim)).tolist(),
        float(10 ** rng.uniform(-1, 0.5)),
    )


def _diff_all(value: Callable[[Any, Any], Any], emb: Any, protos: Any) -> list[Any]:
    """mpmath.diff of value(emb, protos) with respect to every embedding then prototype entry."""
    e0, p0 = mat(emb), mat(protos)
    out = []
    for which, base in (("e", e0), ("p", p0)):
        for r in range(len(base)):
            for d in range(len(base[0])):

                def f(v: Any, which: str = which, r: int = r, d: int = d) -> Any:
                    e, p = [list(x) for x in e0], [list(x) for x in p0]
                    (e if which == "e" else p)[r][d] = v
                    return value(e, p)

                out.append(mp.diff(f, base[r][d]))
    return out


def _mean_ce(labels: list[int], t: Any) -> Any:
    return _reduce(proto_ce_rows(t, labels), "mean")


def _ce_value(labels: list[int], tau: float, e: Any, p: Any) -> Any:
    return prototype_ce(e, labels, p, tau)


def _es_value(labels: list[int], tau: float, e: Any, p: Any) -> Any:
    return esupcon(e, labels, p, tau)


def _es_logits_value(labels: list[int], s: Any, t: Any) -> Any:
    return _reduce(esupcon_rows(s, t, labels), "mean")


def _es_of_s(labels: list[int], t: Any, s: Any) -> Any:
    return _reduce(esupcon_rows(s, t, labels), "mean")


@PRECISE.register("aljundi.prototype_ce_is_cosine_softmax_ce")
def _cosine(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.prototype_ce_is_cosine_softmax_ce"))
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(20, 5)):
            nl, kk, dim = int(rng.integers(1, 6)), int(rng.integers(2, 6)), int(rng.integers(2, 5))
            emb = (rng.standard_normal((nl, dim)) * 3).tolist()
            protos = (rng.standard_normal((kk, dim)) * 3).tolist()
            labels = [int(v) for v in rng.integers(0, kk, size=nl)]
            tau = float(10 ** rng.uniform(-2, 1))
            value = prototype_ce(emb, labels, protos, tau)
            # peer: the cross-entropy family's hard NLL of the cosine logits
            cosines = [[dot(a, b) for b in unit_rows(protos)] for a in unit_rows(emb)]
            tally.close(
                value, ce_oracle.nll(cosines, labels, tau), f"case {c} vs NLL (tau={tau:.3g})"
            )
            # InfoNCE with query z and keys w_k: positive key w_y against the other prototypes
            keys = (
                mp.fsum(
                    -mp.log(
                        mp.exp(row[y] / tau)
                        / (
                            mp.exp(row[y] / tau)
                            + mp.fsum(mp.exp(v / tau) for k, v in enumerate(row) if k != y)
                        )
                    )
                    for row, y in zip(cosines, labels, strict=True)
                )
                / nl
            )
            tally.close(value, keys, f"case {c} vs InfoNCE with prototype keys")
            # cosine: invariant to rescaling embeddings and prototypes
            big = [[8.0 * v for v in r] for r in emb]  # power-of-two scales: exact in floats
            small = [[v / 64.0 for v in r] for r in protos]
            scaled = prototype_ce(big, labels, small, tau)
            tally.close(scaled, value, f"case {c} scale invariance")
    return tally.result("prototype CE vs cross_entropy's NLL oracle and the InfoNCE-with-keys form")


@PRECISE.register("aljundi.prototype_ce_gradient")
def _ce_gradient(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.prototype_ce_gradient"))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(6, 2)):
            _, t, labels = random_case(rng)
            closed = proto_ce_logit_grad(t, labels)
            numeric = [
                [_diff_logits(partial(_mean_ce, labels), t, i, k) for k in range(len(t[0]))]
                for i in range(len(t))
            ]
            tally.close_normwise(flat(closed), flat(numeric), f"case {c} logits")
        for c in range(cfg.points(2, 1)):
            emb, protos, tau = _emb_case(rng, 3, 3)
            labels = [0, 2, 2]
            gz, gw = prototype_ce_grad(emb, labels, protos, tau)
            numeric = _diff_all(partial(_ce_value, labels, tau), emb, protos)
            tally.close_normwise(flat(gz) + flat(gw), numeric, f"embedding/prototype case {c}")
    return tally.result("p - e_y vs mpmath.diff; embedding and prototype gradients")


@PRECISE.register("aljundi.esupcon_reduces_to_prototype_ce")
def _reduction(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_reduces_to_prototype_ce"))
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(20, 5)):
            kk, dim = int(rng.integers(1, 6)), 3
            protos = (rng.standard_normal((kk, dim)) * 2).tolist()
            tau = float(10 ** rng.uniform(-2, 1))
            one = [rng.standard_normal(dim).tolist()]
            y = [int(rng.integers(kk))]
            tally.close(
                esupcon(one, y, protos, tau), prototype_ce(one, y, protos, tau), f"case {c}: B = 1"
            )
    return tally.result("B = 1: ESupCon = prototype CE (50 digits)")


def _no_sample_leg(cfg: CheckConfig, claim_id: str, identity: bool) -> LegResult:
    """Batches with distinct labels: no anchor has a same-class sample. ``identity``: ESupCon
    = CE + log(1 + Z_N/Z_K) (the closed form written here); otherwise ESupCon - CE >= 0."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("precise", rtol=1e-40, atol=1e-45 if identity else 0, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(20, 5)):
            kk, dim = int(rng.integers(2, 6)), 3
            protos = (rng.standard_normal((kk, dim)) * 2).tolist()
            tau = float(10 ** rng.uniform(-2, 1))
            nl = int(rng.integers(1, kk + 1))
            labels = [int(v) for v in rng.permutation(kk)[:nl]]
            emb = (rng.standard_normal((nl, dim)) * 2).tolist()
            s, t = logits(emb, protos, tau)
            es, cer = esupcon_rows(s, t, labels), proto_ce_rows(t, labels)
            for i in range(nl):
                if identity:
                    extra = mp.log1p(
                        mp.fsum(mp.exp(s[i][a]) for a in range(nl) if a != i)
                        / mp.fsum(mp.exp(v) for v in t[i])
                    )
                    tally.close(es[i], cer[i] + extra, f"case {c} anchor {i}: CE + log1p")
                else:
                    tally.holds(es[i] - cer[i], f"case {c} anchor {i}: >= CE")
    return tally.result("no same-class sample: ESupCon vs CE + log(1 + Z_N/Z_K) / >= CE")


@PRECISE.register("aljundi.esupcon_no_same_class_sample")
def _no_sample(cfg: CheckConfig) -> LegResult:
    return _no_sample_leg(cfg, "aljundi.esupcon_no_same_class_sample", True)


@PRECISE.register("aljundi.esupcon_no_same_class_sample_ge_ce")
def _no_sample_ge(cfg: CheckConfig) -> LegResult:
    return _no_sample_leg(cfg, "aljundi.esupcon_no_same_class_sample_ge_ce", False)


def _ce_sign_leg(cfg: CheckConfig, claim_id: str, own: bool) -> LegResult:
    """Sign of the prototype CE logit gradient (closed form; mpmath.diff on the first cases):
    <= 0 on the own prototype (``own``), > 0 on every other."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("precise", rtol=1e-25, atol=0, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(30, 8)):
            _, t, labels = random_case(rng)
            closed = proto_ce_logit_grad(t, labels, reduction="sum")
            for i, y in enumerate(labels):
                for k in [y] if own else [k for k in range(len(t[0])) if k != y]:
                    v, where = closed[i][k], f"case {c}: anchor {i}, prototype {k}"
                    tally.holds(-v if own else v, where)
                    if not own and not v > 0:
                        tally.fail(where + " not repelled")
                    if c < 2 and abs(v) > mpf(10) ** -30:
                        row = partial(_ce_row, labels, i)
                        tally.close(v, _diff_logits(row, t, i, k), where + " vs mpmath.diff")
    return tally.result("sign of p - e_y on the " + ("own" if own else "other") + " prototypes")


def _ce_row(labels: list[int], i: int, t: Any) -> Any:
    return proto_ce_rows(t, labels)[i]


@PRECISE.register("aljundi.prototype_ce_attracts_own_prototype")
def _ce_own(cfg: CheckConfig) -> LegResult:
    return _ce_sign_leg(cfg, "aljundi.prototype_ce_attracts_own_prototype", True)


@PRECISE.register("aljundi.prototype_ce_repels_other_prototypes")
def _ce_others(cfg: CheckConfig) -> LegResult:
    return _ce_sign_leg(cfg, "aljundi.prototype_ce_repels_other_prototypes", False)


@PRECISE.register("aljundi.esupcon_logit_gradient")
def _es_gradient(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_logit_gradient"))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(5, 2)):
            s, t, labels = random_case(rng, 2, 5)
            g, h = esupcon_logit_grad(s, t, labels)
            of_s = partial(_es_of_s, labels, t)
            of_t = partial(_es_logits_value, labels, s)
            ns = [
                [mpf(0) if i == a else _diff_logits(of_s, s, i, a) for a in range(len(s))]
                for i in range(len(s))
            ]
            nt = [[_diff_logits(of_t, t, i, k) for k in range(len(t[0]))] for i in range(len(t))]
            tally.close_normwise(flat(g) + flat(h), flat(ns) + flat(nt), f"case {c} {labels}")
        for c in range(cfg.points(2, 1)):
            emb, protos, tau = _emb_case(rng, 4, 3)
            labels = [0, 0, 1, 2] if c % 2 == 0 else [1, 1, 1, 0]
            gz, gw = esupcon_grad(emb, labels, protos, tau)
            numeric = _diff_all(partial(_es_value, labels, tau), emb, protos)
            tally.close_normwise(flat(gz) + flat(gw), numeric, f"embedding/prototype case {c}")
    return tally.result("closed-form logit gradients vs mpmath.diff; chain rule vs mpmath.diff")


def _term(s: Any, t: Any, labels: Sequence[int], i: int, u: int) -> Any:
    """ESupCon term of anchor i with contrast entry u (index into _entries) as the positive."""
    vals, _ = _entries(s, t, labels, i)
    return mp.log1p(mp.fsum(mp.exp(vals[v] - vals[u]) for v in range(len(vals)) if v != u))


def _cross_leg(cfg: CheckConfig, claim_id: str, value: bool) -> LegResult:
    """For every anchor and every pair of distinct positive entries u != q (same-class samples
    and the own prototype): mpmath.diff of the single term l_iu in the entry q. ``value``: it
    equals the softmax share R_q (the cross gradient); otherwise it is > 0 (repulsion)."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(8, 3)):
            s, t, labels = random_case(rng, 2, 6)
            scale = float(10 ** rng.uniform(-1, 1))
            s = [[v * scale / (1 + abs(v)) for v in r] for r in s]  # moderate logits
            t = [[v * scale / (1 + abs(v)) for v in r] for r in t]
            for i in range(len(labels)):
                vals, is_pos = _entries(s, t, labels, i)
                pos_idx = [e for e in range(len(vals)) if is_pos[e]]
                for uu in pos_idx:
                    for qq in pos_idx:
                        if uu == qq:
                            continue
                        d = mp.diff(partial(_cross, s, t, labels, i, uu, qq), vals[qq])
                        where = f"case {c}: anchor {i}, d l_(entry {uu}) / d entry {qq}"
                        if value:
                            share = 1 / mp.fsum(mp.exp(v - vals[qq]) for v in vals)
                            tally.close(d, share, where + " = R")
                        else:
                            tally.holds(d, where)
                            if not d > 0:
                                tally.fail(where + " is not > 0")
    return tally.result("single-term cross derivatives (mpmath.diff of the oracle's term)")


@PRECISE.register("aljundi.esupcon_per_term_cross_gradient")
def _cross_gradient(cfg: CheckConfig) -> LegResult:
    return _cross_leg(cfg, "aljundi.esupcon_per_term_cross_gradient", True)


@PRECISE.register("aljundi.esupcon_same_class_repulsion")
def _repulsion(cfg: CheckConfig) -> LegResult:
    return _cross_leg(cfg, "aljundi.esupcon_same_class_repulsion", False)


@PRECISE.register("aljundi.esupcon_own_prototype_attracted_without_samples")
def _own_attracted(cfg: CheckConfig) -> LegResult:
    """Anchors without a same-class sample and with another-class sample: the closed-form
    gradient on the own prototype is < 0 (mpmath.diff on the first cases)."""
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_own_prototype_attracted"))
    tally = Tally("precise", rtol=1e-25, atol=0, dps=cfg.dps)
    seen = 0
    with workdps(cfg.dps):
        for c in range(cfg.points(20, 6)):
            s, t, labels = random_case(rng, 2, 7)
            _, h = esupcon_logit_grad(s, t, labels, reduction="sum")
            for i, y in enumerate(labels):
                others = [a for a in range(len(labels)) if a != i]
                if any(labels[a] == y for a in others) or not others:
                    continue
                seen += 1
                where = f"case {c} {labels}: anchor {i}, own prototype"
                tally.holds(-h[i][y], where)
                if not h[i][y] < 0:
                    tally.fail(where + " not attracted")
                if c < 3 and abs(h[i][y]) > mpf(10) ** -30:
                    num = _diff_logits(partial(_es_row_of_t, labels, s, i), t, i, y)
                    tally.close(h[i][y], num, where + " vs mpmath.diff")
    if not seen:
        tally.fail("no anchor without same-class samples was drawn")
    return tally.result("|P| = 0, |N| >= 1: d l / d t_iy < 0 (closed form, mpmath.diff)")


def _es_row_of_t(labels: list[int], s: Any, i: int, t: Any) -> Any:
    return esupcon_rows(s, t, labels)[i]


def _cross(s: Any, t: Any, labels: Sequence[int], i: int, u: int, q: int, v: Any) -> Any:
    """Term l_iu as a function of the contrast entry q (moved to v)."""
    ss, tt = [list(r) for r in s], [list(r) for r in t]
    others = [a for a in range(len(labels)) if a != i]
    if q < len(others):
        ss[i][others[q]] = v
    else:
        tt[i][q - len(others)] = v
    return _term(ss, tt, labels, i, u)


def _lower_bound_leg(cfg: CheckConfig, claim_id: str, with_samples: bool) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("precise", rtol=0, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(30, 8)):
            s, t, labels = random_case(rng, 1, 8)
            for i, v in enumerate(esupcon_rows(s, t, labels)):
                n_pos = sum(1 for a in range(len(labels)) if a != i and labels[a] == labels[i])
                if (n_pos >= 1) == with_samples:
                    tally.holds(v - mp.log(n_pos + 1), f"case {c} anchor {i} (|P| = {n_pos})")
    return tally.result("l_i - log(|P(i)| + 1) >= 0, logits up to ~1e2.5 in scale")


@PRECISE.register("aljundi.esupcon_lower_bound")
def _lower_bound(cfg: CheckConfig) -> LegResult:
    return _lower_bound_leg(cfg, "aljundi.esupcon_lower_bound", True)


@PRECISE.register("aljundi.esupcon_lower_bound_no_sample")
def _lower_bound_no_sample(cfg: CheckConfig) -> LegResult:
    return _lower_bound_leg(cfg, "aljundi.esupcon_lower_bound_no_sample", False)


# ----------------------------------------------------------------------------- temperature


def anchor_tau_grad(
    s_row: Sequence[Any], t_row: Sequence[Any], labels: Sequence[int], i: int, tau: Any, kind: str
) -> Any:
    """Closed-form d l_i / d tau at similarities (logits = similarity / tau), from the claims:
    CE: (cos_y - sum_c p_c cos_c)/tau^2; ESupCon: (mean positive similarity - sum_a R_a a)/tau^2
    over the contrast set (other samples and prototypes)."""
    tt = mpf(tau)
    y = labels[i]
    if kind == "ce":
        vals, pos = [mpf(v) for v in t_row], [y]
    else:
        vals, flags = _entries({i: s_row}, {i: t_row}, labels, i)
        vals = [mpf(v) for v in vals]
        pos = [e for e, f in enumerate(flags) if f]
    top = max(vals)
    w = [mp.exp((v - top) / tt) for v in vals]
    mean_all = mp.fsum(wi * v for wi, v in zip(w, vals, strict=True)) / mp.fsum(w)
    mean_pos = mp.fsum(vals[e] for e in pos) / len(pos)
    return (mean_pos - mean_all) / tt**2


def _tau_leg(cfg: CheckConfig, claim_id: str, kind: str) -> LegResult:
    """The closed form against mpmath.diff of the oracle's anchor loss in tau (similarities
    fixed, logits = similarities / tau)."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(8, 3)):
            s, t, labels = random_case(rng, 1, 6)
            s = [[v / (1 + abs(v)) for v in r] for r in s]  # cosine-like similarities
            t = [[v / (1 + abs(v)) for v in r] for r in t]
            tau = mpf(float(10 ** rng.uniform(-1, 0.5)))
            for i in range(len(labels)):

                def f(x: Any, i: int = i, case: Any = (s, t, labels)) -> Any:
                    ss, tt, lab = case
                    st = [[v / x for v in r] for r in ss]
                    th = [[v / x for v in r] for r in tt]
                    if kind == "ce":
                        return proto_ce_rows(th, lab)[i]
                    return _es_row_of_t(lab, st, i, th)

                closed = anchor_tau_grad(s[i], t[i], labels, i, tau, kind)
                tally.close(closed, mp.diff(f, tau), f"case {c} anchor {i} tau={float(tau):.3g}")
    return tally.result("closed-form dl/dtau vs mpmath.diff of the oracle in tau (50 digits)")


@PRECISE.register("aljundi.prototype_ce_temperature_gradient")
def _ce_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "aljundi.prototype_ce_temperature_gradient", "ce")


@PRECISE.register("aljundi.esupcon_temperature_gradient")
def _es_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "aljundi.esupcon_temperature_gradient", "es")


# ----------------------------------------------------------------------------- definitions

DEFINITION = LegRegistry("definition")

#: definition name -> (oracle adapter, seeded point sampler), as used by the definition legs
DEFINITION_ORACLES: dict[str, tuple[Any, Any]] = {}


def _anchor(sizes: Any, pt: Any) -> tuple[dict[int, list[Any]], dict[int, list[Any]], list[int]]:
    """Anchor 0 of class y - 1 with m same-class and M other-class samples (logits over tau;
    the other-class samples get label K, a class without prototype) and its K prototypes."""
    mm, nn, kk = sizes[D.m], sizes[D.M], sizes[D.K]
    tau, y = mpf(pt[D.tau]), int(pt[D.y]) - 1
    sims = [mpf(0), *list(pt[D.s])[:mm], *list(pt[D.u])[:nn]]
    labels = [y] * (mm + 1) + [kk] * nn
    return {0: [v / tau for v in sims]}, {0: [mpf(v) / tau for v in pt[D.cos]]}, labels


def _es_anchor(sizes: Any, pt: Any) -> Any:
    s, t, labels = _anchor(sizes, pt)
    vals, is_pos = _entries(s, t, labels, 0)
    pos = [e for e in range(len(vals)) if is_pos[e]]
    return mp.fsum(_term(s, t, labels, 0, e) for e in pos) / len(pos)


def _sample(rng: random.Random, *, term: bool = False) -> Any:
    mm, nn, kk = rng.randint(1 if term else 0, 3), rng.randint(0, 3), rng.randint(1, 4)
    point: dict[Any, Any] = {
        D.s: [rng.uniform(-1, 1) for _ in range(mm)] or [0.0],  # unused entries when empty
        D.u: [rng.uniform(-1, 1) for _ in range(nn)] or [0.0],
        D.cos: [rng.uniform(-1, 1) for _ in range(kk)],
        D.tau: 10 ** rng.uniform(-1, 0.3),
        D.y: rng.randint(1, kk),
    }
    if term:
        point[D.b] = rng.randint(1, mm)
    return {D.m: mm, D.M: nn, D.K: kk}, point


def _register_definitions() -> None:
    from softnce_theory.numerics.infonce import ranking_nce_rows

    def ce(sizes: Any, pt: Any) -> Any:
        _, t, labels = _anchor(sizes, pt)
        return proto_ce_rows([t[0]], [labels[0]])[0]

    def keys(sizes: Any, pt: Any) -> Any:  # InfoNCE oracle of the infonce family
        _, t, labels = _anchor(sizes, pt)
        y = labels[0]
        return ranking_nce_rows([[t[0][y]] + [v for k, v in enumerate(t[0]) if k != y]])[0]

    def sample_term(sizes: Any, pt: Any) -> Any:
        s, t, labels = _anchor(sizes, pt)
        return _term(s, t, labels, 0, int(pt[D.b]) - 1)  # entries: samples 1..m first

    def proto_term(sizes: Any, pt: Any) -> Any:
        s, t, labels = _anchor(sizes, pt)
        return _term(s, t, labels, 0, sizes[D.m] + sizes[D.M] + labels[0])

    table: dict[str, tuple[Any, Any]] = {
        "prototype_ce": (ce, _sample),
        "prototype_infonce": (keys, _sample),
        "esupcon": (_es_anchor, _sample),
        "esupcon_sample_term": (sample_term, partial(_sample, term=True)),
        "esupcon_prototype_term": (proto_term, _sample),
    }
    DEFINITION_ORACLES.update(table)
    defs = {d.name: d for d in D.DEFINITIONS}
    for name, (oracle, sample) in table.items():
        defn = defs[name]

        def leg(
            cfg: CheckConfig, defn: Any = defn, oracle: Any = oracle, sample: Any = sample
        ) -> Any:
            return definition_leg(defn, sample, oracle, cfg, n=8)

        DEFINITION.register(defn.id)(leg)


_register_definitions()


__all__ = [
    "DEFINITION",
    "DEFINITION_ORACLES",
    "PRECISE",
    "anchor_tau_grad",
    "chain_rule",
    "esupcon",
    "esupcon_grad",
    "esupcon_logit_grad",
    "esupcon_rows",
    "logits",
    "predict",
    "proto_ce_logit_grad",
    "proto_ce_rows",
    "prototype_ce",
    "prototype_ce_grad",
]
