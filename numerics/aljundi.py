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

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from mpmath import mp

from derivations import CheckConfig, LegRegistry, LegResult, Tally
from numerics import cross_entropy as ce_oracle
from numerics._mp import dot, mat, mpf, norm, workdps
from numerics.sincere import _diff_logits, flat, flatten_views, share_minus_uniform, unit_rows

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
            for i, y in enumerate(labels):
                tally.holds(-closed[i][y], f"case {c}: own prototype attracted")
                for k in range(len(t[0])):
                    if k != y and not closed[i][k] > 0:
                        tally.fail(f"case {c}: prototype {k} not repelled from anchor {i}")
        for c in range(cfg.points(2, 1)):
            emb, protos, tau = _emb_case(rng, 3, 3)
            labels = [0, 2, 2]
            gz, gw = prototype_ce_grad(emb, labels, protos, tau)
            numeric = _diff_all(partial(_ce_value, labels, tau), emb, protos)
            tally.close_normwise(flat(gz) + flat(gw), numeric, f"embedding/prototype case {c}")
    return tally.result("p - e_y vs mpmath.diff; signs; embedding and prototype gradients")


@PRECISE.register("aljundi.esupcon_reduces_to_prototype_ce")
def _reduction(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_reduces_to_prototype_ce"))
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(20, 5)):
            kk, dim = int(rng.integers(2, 6)), 3
            protos = (rng.standard_normal((kk, dim)) * 2).tolist()
            tau = float(10 ** rng.uniform(-2, 1))
            one = [rng.standard_normal(dim).tolist()]
            y = [int(rng.integers(kk))]
            tally.close(
                esupcon(one, y, protos, tau), prototype_ce(one, y, protos, tau), f"case {c}: B = 1"
            )
            # distinct labels: no anchor has a same-class sample
            nl = int(rng.integers(2, kk + 1))
            labels = [int(v) for v in rng.permutation(kk)[:nl]]
            emb = (rng.standard_normal((nl, dim)) * 2).tolist()
            s, t = logits(emb, protos, tau)
            es, cer = esupcon_rows(s, t, labels), proto_ce_rows(t, labels)
            for i in range(nl):
                extra = mp.log1p(
                    mp.fsum(mp.exp(s[i][a]) for a in range(nl) if a != i)
                    / mp.fsum(mp.exp(v) for v in t[i])
                )
                tally.close(es[i], cer[i] + extra, f"case {c} anchor {i}: CE + log(1 + Z_N/Z_K)")
                tally.holds(es[i] - cer[i], f"case {c} anchor {i}: >= CE")
    return tally.result("B = 1 equality; no same-class sample: CE + log(1 + Z_N/Z_K) >= CE")


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


@PRECISE.register("aljundi.esupcon_same_class_repulsion")
def _repulsion(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_same_class_repulsion"))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    counts = {
        "samples_repelled": 0,
        "samples_attracted": 0,
        "own_proto_repelled": 0,
        "own_proto_attracted": 0,
        "no_positive_anchors": 0,
    }
    with workdps(cfg.dps):
        cases = []
        # constructed: anchor 0 (class 0) with its prototype far ahead (prototype repelled), then
        # with its same-class sample far ahead (sample repelled); negatives at -5
        for hi_proto in (True, False):
            s0 = [[mpf(0), mpf(0 if hi_proto else 5), mpf(-5)], [mpf(0)] * 3, [mpf(0)] * 3]
            t0 = [[mpf(5 if hi_proto else 0), mpf(-5)], [mpf(0)] * 2, [mpf(0)] * 2]
            cases.append((s0, t0, [0, 0, 1]))
        for _ in range(cfg.points(10, 3)):
            s, t, labels = random_case(rng, 3, 7)
            scale = float(10 ** rng.uniform(-1, 1))
            s = [[v * scale / (1 + abs(v)) for v in r] for r in s]  # moderate logits: both signs
            t = [[v * scale / (1 + abs(v)) for v in r] for r in t]
            cases.append((s, t, labels))
        for c, (s, t, labels) in enumerate(cases):
            g, h = esupcon_logit_grad(s, t, labels, reduction="sum")
            nl = len(labels)
            for i in range(nl):
                vals, is_pos = _entries(s, t, labels, i)
                pos_idx = [u for u in range(len(vals)) if is_pos[u]]
                share = [1 / mp.fsum(mp.exp(v - vals[u]) for v in vals) for u in range(len(vals))]
                thresh = mpf(1) / len(pos_idx)
                # cross derivatives of single terms: d l_iu / d c_iq = R_iq > 0 (q != u positive)
                u, q = pos_idx[0], pos_idx[-1]
                if u != q:
                    d = mp.diff(partial(_cross, s, t, labels, i, u, q), vals[q])
                    tally.close(d, share[q], f"case {c}: d l_iu / d c_iq anchor {i}")
                # net signs: same-class samples, then own prototype
                others = [a for a in range(nl) if a != i]
                for idx, a in enumerate(others):
                    if labels[a] == labels[i]:
                        if (g[i][a] > 0) != (share[idx] > thresh):
                            tally.fail(
                                f"case {c}: sample {a} of anchor {i}: sign not iff R > 1/(|P|+1)"
                            )
                        counts["samples_repelled" if g[i][a] > 0 else "samples_attracted"] += 1
                y = labels[i]
                if (h[i][y] > 0) != (share[len(others) + y] > thresh):
                    tally.fail(f"case {c}: own prototype of anchor {i}: sign not iff R > 1/(|P|+1)")
                counts["own_proto_repelled" if h[i][y] > 0 else "own_proto_attracted"] += 1
                if len(pos_idx) == 1:
                    counts["no_positive_anchors"] += 1
                    if not h[i][y] < 0:
                        tally.fail(
                            f"case {c}: anchor {i} without same-class sample repels its prototype"
                        )
                    tally.holds(-h[i][y], f"case {c}: own prototype attracted (|P| = 0)")
    if counts["samples_repelled"] == 0 or counts["own_proto_repelled"] == 0:
        tally.fail(f"repulsion not exhibited: {counts}")
    return tally.result(
        "single-term cross derivatives = R > 0; net repulsion iff R > 1/(|P|+1) for same-class "
        "samples and the own prototype; |P| = 0: prototype always attracted",
        **counts,
    )


def _cross(s: Any, t: Any, labels: Sequence[int], i: int, u: int, q: int, v: Any) -> Any:
    """Term l_iu as a function of the contrast entry q (moved to v)."""
    ss, tt = [list(r) for r in s], [list(r) for r in t]
    others = [a for a in range(len(labels)) if a != i]
    if q < len(others):
        ss[i][others[q]] = v
    else:
        tt[i][q - len(others)] = v
    return _term(ss, tt, labels, i, u)


@PRECISE.register("aljundi.esupcon_lower_bound")
def _lower_bound(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("aljundi.esupcon_lower_bound"))
    tally = Tally("precise", rtol=0, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(30, 8)):
            s, t, labels = random_case(rng, 1, 8)
            for i, v in enumerate(esupcon_rows(s, t, labels)):
                n_pos = sum(1 for a in range(len(labels)) if a != i and labels[a] == labels[i])
                tally.holds(v - mp.log(n_pos + 1), f"case {c} anchor {i}")
    return tally.result("l_i - log(|P(i)| + 1) >= 0, logits up to ~1e2.5 in scale")


__all__ = [
    "PRECISE",
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
