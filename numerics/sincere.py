r"""mpmath oracles for SupCon (Khosla et al. 2020, Eq. 2/3) and SINCERE (Feeney & Hughes).

Written as explicit loops over anchors and pairs; no code is shared with the torch losses.

* logits :math:`s_{ij}=z_i^\top z_j/\tau` with :math:`z_i=w_i/\|w_i\|` (``normalize=True``);
  :math:`A(i)` all other rows, :math:`P(i)` same label, :math:`N(i)` other labels;
* SupCon :math:`\ell^{out}_i=\frac1{|P|}\sum_p-\log\frac{e^{s_{ip}}}{\sum_{a\in A(i)}e^{s_{ia}}}`,
  :math:`\ell^{in}_i=-\log\frac1{|P|}\sum_p\frac{e^{s_{ip}}}{\sum_ae^{s_{ia}}}`;
* SINCERE :math:`\ell_i=\frac1{|P|}\sum_p-\log
  \frac{e^{s_{ip}}}{e^{s_{ip}}+\sum_{n\in N(i)}e^{s_{in}}}`.

Each ratio is evaluated as ``log1p`` of the other terms divided by the numerator (the same
number, written so that 50 digits survive a logit gap of 1e4; mpmath's exponent range is
unbounded, so ``exp`` never overflows). Anchors without positives are excluded (``None``);
the mean runs over the remaining anchors. Multi-view input ``(B, V, D)`` is flattened to rows
``b * V + v`` with labels repeated per view.

Gradients: closed forms with respect to the logit matrix (research note §1.3) and, through
:math:`\partial L/\partial z_j=\tau^{-1}\sum_a(G_{ja}+G_{aj})z_a` and the normalisation Jacobian
:math:`(I-z_jz_j^\top)/\|w_j\|`, with respect to the raw embeddings. The precise legs check both
against ``mpmath.diff``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from mpmath import mp

import softnce_theory.derivations.sincere as D
from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.numerics._definitions import definition_leg
from softnce_theory.numerics._mp import dot, mat, mpf, norm, vec, workdps

PRECISE = LegRegistry("precise")

Rows = list[Any]  # per-anchor losses (mpf) or None for anchors without positives


# ----------------------------------------------------------------------------- inputs


def flatten_views(emb: Any, labels: Sequence[int]) -> tuple[list[list[Any]], list[int]]:
    """(B, D) -> itself; (B, V, D) -> (B*V, D) with row b*V + v = emb[b][v], labels repeated."""
    arr = emb.tolist() if hasattr(emb, "tolist") else emb
    labs = [int(v) for v in (labels.tolist() if hasattr(labels, "tolist") else labels)]
    if arr and isinstance(arr[0][0], list):
        rows = [view for sample in arr for view in sample]
        labs = [lab for lab, sample in zip(labs, arr, strict=True) for _ in sample]
        return rows, labs
    return arr, labs


def unit_rows(emb: Any) -> list[list[Any]]:
    return [[v / norm(r) for v in r] for r in mat(emb)]


def logit_matrix(emb: Any, tau: Any, normalize: bool = True) -> list[list[Any]]:
    """s_ij = <z_i, z_j> / tau (rows already flattened)."""
    z = unit_rows(emb) if normalize else mat(emb)
    t = mpf(tau)
    return [[dot(zi, zj) / t for zj in z] for zi in z]


def index_sets(labels: Sequence[int], i: int) -> tuple[list[int], list[int]]:
    pos = [a for a in range(len(labels)) if a != i and labels[a] == labels[i]]
    neg = [a for a in range(len(labels)) if labels[a] != labels[i]]
    return pos, neg


# ----------------------------------------------------------------------------- values


def supcon_term(s: Any, labels: Sequence[int], i: int, pp: int) -> Any:
    """-log(e^{s_ip} / sum_{a in A(i)} e^{s_ia}) = log1p(sum_{a != p} e^{s_ia - s_ip})."""
    pos, neg = index_sets(labels, i)
    others = [a for a in pos + neg if a != pp]
    return mp.log1p(mp.fsum(mp.exp(s[i][a] - s[i][pp]) for a in others))


def sincere_term(s: Any, labels: Sequence[int], i: int, pp: int) -> Any:
    """-log(e^{s_ip} / (e^{s_ip} + sum_{n in N(i)} e^{s_in}))."""
    _, neg = index_sets(labels, i)
    return mp.log1p(mp.fsum(mp.exp(s[i][a] - s[i][pp]) for a in neg))


def supcon_rows(s: Any, labels: Sequence[int], variant: str = "out") -> Rows:
    """Per-anchor SupCon losses from a logit matrix (None where P(i) is empty)."""
    s = mat(s)
    out: Rows = []
    for i in range(len(labels)):
        pos, neg = index_sets(labels, i)
        if not pos:
            out.append(None)
        elif variant == "out":
            out.append(mp.fsum(supcon_term(s, labels, i, pp) for pp in pos) / len(pos))
        elif variant == "in":
            # -log((1/|P|) sum_p e^{s_ip} / sum_a e^{s_ia}); sum_a = sum_p + sum_n
            ratio = mp.fsum(mp.exp(s[i][a]) for a in neg) / mp.fsum(mp.exp(s[i][a]) for a in pos)
            out.append(mp.log(len(pos)) + mp.log1p(ratio))
        else:
            raise ValueError(f"variant must be 'out' or 'in', got {variant!r}")
    return out


def sincere_rows(s: Any, labels: Sequence[int]) -> Rows:
    s = mat(s)
    out: Rows = []
    for i in range(len(labels)):
        pos, _ = index_sets(labels, i)
        out.append(
            mp.fsum(sincere_term(s, labels, i, pp) for pp in pos) / len(pos) if pos else None
        )
    return out


def reduce_rows(rows: Rows, reduction: str = "mean", scale: Any = 1) -> Any:
    """Mean over anchors with positives (0 if none), sum, or per anchor (0 where excluded)."""
    vals = [mpf(0) if v is None else v * scale for v in rows]
    if reduction == "none":
        return vals
    total = mp.fsum(vals)
    if reduction == "sum":
        return total
    count = sum(v is not None for v in rows)
    return total / count if count else mpf(0)


def _scale(tau: Any, base_temperature: Any) -> Any:
    return mpf(1) if base_temperature is None else mpf(tau) / mpf(base_temperature)


def supcon(
    emb: Any,
    labels: Sequence[int],
    tau: Any,
    variant: str = "out",
    normalize: bool = True,
    base_temperature: Any = None,
    reduction: str = "mean",
) -> Any:
    rows, labs = flatten_views(emb, labels)
    s = logit_matrix(rows, tau, normalize)
    return reduce_rows(supcon_rows(s, labs, variant), reduction, _scale(tau, base_temperature))


def sincere(
    emb: Any,
    labels: Sequence[int],
    tau: Any,
    normalize: bool = True,
    base_temperature: Any = None,
    reduction: str = "mean",
) -> Any:
    rows, labs = flatten_views(emb, labels)
    s = logit_matrix(rows, tau, normalize)
    return reduce_rows(sincere_rows(s, labs), reduction, _scale(tau, base_temperature))


def ntxent(views: Any, tau: Any, normalize: bool = True) -> Any:
    """NT-Xent / InfoNCE (SimCLR): ``views`` is (B, 2, D); each of the 2B rows is an anchor
    whose only positive is its other view, softmax over all other rows; mean over 2B."""
    rows = [v for sample in (views.tolist() if hasattr(views, "tolist") else views) for v in sample]
    s = logit_matrix(rows, tau, normalize)
    terms = []
    for i in range(len(rows)):
        j = i + 1 if i % 2 == 0 else i - 1  # the other view of the same image
        # -log(e^{s_ij} / sum_{a != i} e^{s_ia}); the partner contributes the 1 of log1p
        rest = mp.fsum(mp.exp(s[i][a] - s[i][j]) for a in range(len(rows)) if a not in (i, j))
        terms.append(mp.log1p(rest))
    return mp.fsum(terms) / len(terms)


# ----------------------------------------------------------------------------- gradients


def _softmax_share(row: Any, k: int, over: Sequence[int]) -> Any:
    """e^{row_k} / sum_{a in over} e^{row_a}, evaluated as 1 / sum e^{row_a - row_k}."""
    return 1 / mp.fsum(mp.exp(row[a] - row[k]) for a in over)


def share_minus_uniform(row: Sequence[Any], k: int, pos: Sequence[int], over: Sequence[int]) -> Any:
    r""":math:`P_k - 1/|P|` with :math:`P_k = e^{s_k}/\sum_{a\in over}e^{s_a}`, written as
    :math:`[\sum_{q\in P\setminus k}(1-e^{s_q-s_k}) - \sum_{a\in over\setminus P}e^{s_a-s_k}]
    / (|P|\sum_{a}e^{s_a-s_k})` so that it keeps its relative precision when it is far below
    :math:`10^{-50}` (e.g. :math:`P_k - 1 \approx -e^{-400}` for a dominant single positive)."""
    inside = [a for a in over if a in pos and a != k]
    outside = [a for a in over if a not in pos]
    num = -mp.fsum(mp.expm1(row[q] - row[k]) for q in inside) - mp.fsum(
        mp.exp(row[a] - row[k]) for a in outside
    )
    return num / (len(pos) * mp.fsum(mp.exp(row[a] - row[k]) for a in over))


def supcon_anchor_grad(
    row: Sequence[Any],
    pos: Sequence[int],
    neg: Sequence[int],
    variant: str = "out",
    only: Sequence[int] | None = None,
) -> dict[int, Any]:
    """d l_i / d s_ia for one anchor: out: P_ia - 1/|P| (a in P), P_ia (a in N);
    in: P_ia - X_ia with X_ia = e^{s_ia} / sum_p e^{s_ip}. ``only`` restricts the entries."""
    everything = [*pos, *neg]
    keep = everything if only is None else list(only)
    out = {}
    for a in pos:
        if a not in keep:
            continue
        if variant == "out":
            out[a] = share_minus_uniform(row, a, pos, everything)
        else:  # P - X = -X Z_N / Z (product form: no cancellation)
            z_n = mp.fsum(mp.exp(row[v] - row[a]) for v in neg)
            out[a] = -_softmax_share(row, a, pos) * z_n / (1 / _softmax_share(row, a, everything))
    for a in neg:
        if a in keep:
            out[a] = _softmax_share(row, a, everything)
    return out


def sincere_anchor_grad(
    row: Sequence[Any], pos: Sequence[int], neg: Sequence[int], only: Sequence[int] | None = None
) -> dict[int, Any]:
    """d l_i / d s_ia for one anchor: (Q^(a)_ia - 1)/|P| (a in P), (1/|P|) sum_p Q^(p)_ia."""
    out = {}
    for k in pos:
        if only is not None and k not in only:
            continue
        rest = mp.fsum(mp.exp(row[a] - row[k]) for a in neg)
        out[k] = -(rest / (1 + rest)) / len(pos)  # Q - 1 = -rest / (1 + rest)
    for a in neg:
        if only is not None and a not in only:
            continue
        out[a] = mp.fsum(_softmax_share(row, a, [pp, *neg]) for pp in pos) / len(pos)
    return out


def _assemble(
    s: Any, labels: Sequence[int], reduction: str, anchor: Callable[..., dict[int, Any]]
) -> list[list[Any]]:
    s = mat(s)
    nl = len(labels)
    g = [[mpf(0)] * nl for _ in range(nl)]
    valid = [i for i in range(nl) if index_sets(labels, i)[0]]
    div = len(valid) if reduction == "mean" and valid else 1
    for i in valid:
        pos, neg = index_sets(labels, i)
        for a, v in anchor(s[i], pos, neg).items():
            g[i][a] = v / div
    return g


def supcon_logit_grad(
    s: Any, labels: Sequence[int], variant: str = "out", reduction: str = "mean"
) -> list[list[Any]]:
    """dL/ds (n x n) of the reduced SupCon loss; rows of anchors without positives are 0."""
    return _assemble(s, labels, reduction, lambda r, p, n: supcon_anchor_grad(r, p, n, variant))


def sincere_logit_grad(s: Any, labels: Sequence[int], reduction: str = "mean") -> list[list[Any]]:
    """dL/ds (n x n) of the reduced SINCERE loss."""
    return _assemble(s, labels, reduction, sincere_anchor_grad)


def embedding_grad(
    emb: Any, g: list[list[Any]], tau: Any, normalize: bool = True, scale: Any = 1
) -> list[list[Any]]:
    """Chain rule from dL/ds to the raw (flattened) embeddings."""
    w = mat(emb)
    z = unit_rows(w) if normalize else w
    t = mpf(tau)
    nl, dim = len(z), len(z[0])
    out = []
    for r in range(nl):
        gz = [
            mp.fsum((g[r][a] + g[a][r]) * z[a][d] for a in range(nl)) * scale / t
            for d in range(dim)
        ]
        if normalize:
            proj = dot(z[r], gz)
            nr = norm(w[r])
            gz = [(gz[d] - z[r][d] * proj) / nr for d in range(dim)]
        out.append(gz)
    return out


def _unflatten(grad: list[list[Any]], emb: Any) -> Any:
    arr = emb.tolist() if hasattr(emb, "tolist") else emb
    if arr and isinstance(arr[0][0], list):
        v = len(arr[0])
        return [grad[b * v : (b + 1) * v] for b in range(len(arr))]
    return grad


def supcon_grad(
    emb: Any,
    labels: Sequence[int],
    tau: Any,
    variant: str = "out",
    normalize: bool = True,
    base_temperature: Any = None,
    reduction: str = "mean",
) -> Any:
    """Gradient of :func:`supcon` with respect to the raw embeddings (same nesting)."""
    rows, labs = flatten_views(emb, labels)
    s = logit_matrix(rows, tau, normalize)
    g = supcon_logit_grad(s, labs, variant, reduction)
    return _unflatten(embedding_grad(rows, g, tau, normalize, _scale(tau, base_temperature)), emb)


def sincere_grad(
    emb: Any,
    labels: Sequence[int],
    tau: Any,
    normalize: bool = True,
    base_temperature: Any = None,
    reduction: str = "mean",
) -> Any:
    rows, labs = flatten_views(emb, labels)
    s = logit_matrix(rows, tau, normalize)
    g = sincere_logit_grad(s, labs, reduction)
    return _unflatten(embedding_grad(rows, g, tau, normalize, _scale(tau, base_temperature)), emb)


def flat(xs: Any) -> list[Any]:
    """Flatten nested lists (gradients) into one list."""
    if isinstance(xs, list):
        return [v for x in xs for v in flat(x)]
    return [xs]


# ----------------------------------------------------------------------------- KL bound


def compositions(total: int, parts: int) -> list[tuple[int, ...]]:
    """All count vectors of ``parts`` non-negative integers summing to ``total``."""
    out = []
    for cut in itertools.combinations(range(total + parts - 1), parts - 1):
        prev, counts = -1, []
        for c in (*cut, total + parts - 1):
            counts.append(c - prev - 1)
            prev = c
        out.append(tuple(counts))
    return out


def nce_loss_discrete(
    p_plus: Sequence[Any], p_minus: Sequence[Any], n_neg: int, critic: Sequence[Any]
) -> Any:
    r"""Exact :math:`\mathbb E[-\log f(x_0)/(f(x_0)+\sum_{n=1}^N f(x_n))]` for discrete p±:
    x_0 ~ p+, the N noise samples summarised by their multinomial count vector."""
    pp, pm, f = [mpf(v) for v in p_plus], [mpf(v) for v in p_minus], [mpf(v) for v in critic]
    # table[k][c] = p-_k^c / c!, so the multinomial weight is N! * prod_k table[k][c_k]
    table = [[pr**c / mp.factorial(c) for c in range(n_neg + 1)] for pr in pm]
    total = mpf(0)
    for counts in compositions(n_neg, len(pm)):
        weight = mp.factorial(n_neg) * mp.fprod(table[k][c] for k, c in enumerate(counts))
        noise = mp.fsum(c * fv for c, fv in zip(counts, f, strict=True))
        total += weight * mp.fsum(
            pr0 * mp.log1p(noise / f0) for pr0, f0 in zip(pp, f, strict=True) if pr0 != 0
        )
    return total


def kl_discrete(a: Sequence[Any], b: Sequence[Any]) -> Any:
    return mp.fsum(mpf(x) * mp.log(mpf(x) / mpf(y)) for x, y in zip(a, b, strict=True) if x != 0)


def nce_loss_gaussian_n1(mu: Any) -> Any:
    r"""p+ = N(mu, 1), p- = N(0, 1), N = 1, optimal critic r = p+/p-: log r(x) = mu x - mu^2/2,
    so L = E[log(1 + e^W)], W = log r(x_1) - log r(x_0) ~ N(-mu^2, 2 mu^2) (quadrature)."""
    mu = mpf(mu)
    mean, var = -(mu**2), 2 * mu**2

    def integrand(w: Any) -> Any:
        return mp.log1p(mp.exp(w)) * mp.exp(-((w - mean) ** 2) / (2 * var))

    return mp.quad(integrand, [-mp.inf, mean, mp.inf]) / mp.sqrt(2 * mp.pi * var)


# ----------------------------------------------------------------------------- HobbitLong


def hobbitlong_anchor(
    sims: Sequence[Any], pos: Sequence[int], neg: Sequence[int], tau: Any, base: Any, shift: Any
) -> Any:
    """HobbitLong's SupConLoss for one anchor, written from its algorithm (research note
    §2.1): logits ``sims / tau`` minus a row constant ``shift`` (the detached row max there),
    log-probabilities ``logit_a - log sum_{a in A(i)} exp(logit_a)``, their mean over the
    positives, times ``-tau / base``. ``sims`` is indexed like ``pos`` / ``neg``."""
    t, b, c = mpf(tau), mpf(base), mpf(shift)
    logits = {a: mpf(sims[a]) / t - c for a in [*pos, *neg]}

    def log_prob(pp: int) -> Any:  # logit_p - log sum_a e^{logit_a}, as -log1p(...): no 1 - 1
        return -mp.log1p(mp.fsum(mp.exp(v - logits[pp]) for a, v in logits.items() if a != pp))

    mean = mp.fsum(log_prob(pp) for pp in pos) / len(pos)
    return -(t / b) * mean


# ----------------------------------------------------------------------------- temperature


def anchor_tau_grad(
    sims: Sequence[Any], pos: Sequence[int], neg: Sequence[int], tau: Any, kind: str
) -> Any:
    r"""Closed-form :math:`\partial\ell_i/\partial t` of one anchor at similarities ``sims``
    (logits ``sims / t``), from the claims ``sincere.*_temperature_gradient``:

    * out: :math:`(\frac1m\sum_p s_p - \sum_{a\in A}P_as_a)/t^2`;
    * in: :math:`(\sum_k X_ks_k - \sum_{a\in A}P_as_a)/t^2`;
    * sincere: :math:`\frac1{mt^2}\sum_p(s_p - \sum_{a\in\{p\}\cup N}Q^{(p)}_as_a)`."""
    t = mpf(tau)
    x = {a: mpf(sims[a]) for a in [*pos, *neg]}
    allv = [*pos, *neg]

    def mean_under(over: Sequence[int]) -> Any:  # softmax(x/t)-weighted mean over ``over``
        top = max(x[a] for a in over)
        w = {a: mp.exp((x[a] - top) / t) for a in over}
        return mp.fsum(w[a] * x[a] for a in over) / mp.fsum(w.values())

    if kind == "out":
        return (mp.fsum(x[pp] for pp in pos) / len(pos) - mean_under(allv)) / t**2
    if kind == "in":
        return (mean_under(pos) - mean_under(allv)) / t**2
    return mp.fsum(x[pp] - mean_under([pp, *neg]) for pp in pos) / (len(pos) * t**2)


# ----------------------------------------------------------------------------- precise legs


def random_labels(rng: np.random.Generator, n: int) -> list[int]:
    """Labels with varied class structure: singletons, pairs, large classes, single class."""
    kind = int(rng.integers(4))
    if kind == 0:
        return [0] * n  # single class
    if kind == 1:
        return [int(v) for v in rng.integers(0, max(1, n // 2), size=n)]
    if kind == 2:
        return [int(v) for v in rng.integers(0, 2, size=n)]
    return [i // 2 for i in range(n)]  # pairs (last may be a singleton)


def random_logits(rng: np.random.Generator, n: int) -> list[list[float]]:
    scale = float(10 ** rng.uniform(-1, 3))
    return (rng.standard_normal((n, n)) * scale).tolist()


def _scaled(s: list[list[Any]], t: Any) -> list[list[Any]]:
    return [[v / t for v in r] for r in s]


def _term_of(fn: Callable[..., Any], labels: Sequence[int], i: int, a: int, s: Any) -> Any:
    return fn(s, labels, i, a)


def _diff_logits(
    value: Callable[[list[list[Any]]], Any], s: list[list[Any]], i: int, a: int
) -> Any:
    def f(v: Any) -> Any:
        row = [list(r) for r in s]
        row[i][a] = v
        return value(row)

    return mp.diff(f, s[i][a])


def _check_logit_grad(
    tally: Tally,
    closed: list[list[Any]],
    value: Callable[[list[list[Any]]], Any],
    s: list[list[Any]],
    where: str,
) -> None:
    nl = len(s)
    numeric = [
        [mpf(0) if i == a else _diff_logits(value, s, i, a) for a in range(nl)] for i in range(nl)
    ]
    tally.close_normwise(flat(closed), flat(numeric), where)


def _check_embedding_grad(
    tally: Tally, closed: Any, value: Callable[[Any], Any], emb: list[list[float]], where: str
) -> None:
    numeric = []
    base = mat(emb)
    for r in range(len(base)):
        for d in range(len(base[0])):

            def f(v: Any, r: int = r, d: int = d) -> Any:
                w = [list(row) for row in base]
                w[r][d] = v
                return value(w)

            numeric.append(mp.diff(f, base[r][d]))
    tally.close_normwise(flat(closed), numeric, where)


def _at_temperature(fn: Callable[[Any, list[int]], Any], labels: list[int], t: Any, v: Any) -> Any:
    """The oracle value at similarities ``v`` and temperature ``t`` (logits v / t)."""
    return fn(_scaled(v, t), labels)


def _swap3(
    fn: Callable[[Any, list[int], float], Any], labels: list[int], tau: float, w: Any
) -> Any:
    return fn(w, labels, tau)


def _gradient_leg(
    cfg: CheckConfig,
    claim_id: str,
    closed_logits: Callable[[Any, list[int]], list[list[Any]]],
    value_logits: Callable[[Any, list[int]], Any],
    closed_emb: Callable[[Any, list[int], float], Any],
    value_emb: Callable[[Any, list[int], float], Any],
) -> LegResult:
    """The claims' gradients are in the similarities s at temperature t: the closed form is
    (closed form at the logits s / t) / t, against mpmath.diff of the oracle in s."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(6, 2)):
            nl = int(rng.integers(3, 6))
            labels = random_labels(rng, nl)
            t = mpf(float(10 ** rng.uniform(-1, 1)))
            s = mat(random_logits(rng, nl))
            closed = [[g / t for g in r] for r in closed_logits(_scaled(s, t), labels)]
            value = partial(_at_temperature, value_logits, labels, t)
            _check_logit_grad(tally, closed, value, s, f"case {c} {labels} t={float(t):.3g}")
        for c in range(cfg.points(2, 1)):
            labels = [0, 0, 1, 1] if c % 2 == 0 else [0, 0, 0, 1]
            emb = rng.standard_normal((4, 3)).tolist()
            tau = float(10 ** rng.uniform(-1, 0.5))
            _check_embedding_grad(
                tally,
                closed_emb(emb, labels, tau),
                partial(_swap3, value_emb, labels, tau),
                emb,
                f"embedding case {c} (tau={tau:.3g})",
            )
    return tally.result(
        "closed-form gradient in the similarities (any t) vs mpmath.diff of the oracle (all "
        "entries); embedding gradient (chain rule through normalisation) vs mpmath.diff"
    )


@PRECISE.register("sincere.supcon_out_gradient")
def _out_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(
        cfg,
        "sincere.supcon_out_gradient",
        lambda s, lab: supcon_logit_grad(s, lab, "out", reduction="none"),
        lambda s, lab: reduce_rows(supcon_rows(s, lab, "out"), "sum"),
        lambda e, lab, t: supcon_grad(e, lab, t, "out"),
        lambda e, lab, t: supcon(e, lab, t, "out"),
    )


@PRECISE.register("sincere.supcon_in_gradient")
def _in_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(
        cfg,
        "sincere.supcon_in_gradient",
        lambda s, lab: supcon_logit_grad(s, lab, "in", reduction="none"),
        lambda s, lab: reduce_rows(supcon_rows(s, lab, "in"), "sum"),
        lambda e, lab, t: supcon_grad(e, lab, t, "in"),
        lambda e, lab, t: supcon(e, lab, t, "in"),
    )


@PRECISE.register("sincere.sincere_gradient")
def _sincere_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(
        cfg,
        "sincere.sincere_gradient",
        lambda s, lab: sincere_logit_grad(s, lab, reduction="none"),
        lambda s, lab: reduce_rows(sincere_rows(s, lab), "sum"),
        lambda e, lab, t: sincere_grad(e, lab, t),
        lambda e, lab, t: sincere(e, lab, t),
    )


def _sign_cases(cfg: CheckConfig, claim_id: str) -> list[tuple[list[list[Any]], list[int]]]:
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    out = []
    for _ in range(cfg.points(40, 6)):
        nl = int(rng.integers(2, 9))
        out.append((mat(random_logits(rng, nl)), random_labels(rng, nl)))
    return out


def _row_of(kind: str, labels: Sequence[int], i: int, s: Any) -> Any:
    if kind == "sincere":
        return sincere_rows(s, labels)[i]
    return supcon_rows(s, labels, kind)[i]


def _sign_leg(cfg: CheckConfig, claim_id: str, kind: str, on: str, want: int) -> LegResult:
    """The sign ``want`` (-1: < 0, 0: <= 0, +1: > 0) of the anchor gradient on every positive
    (``on="pos"``) or negative entry, from the closed form (its value is the gradient claim's
    precise leg); on the first cases the closed form is also compared with mpmath.diff of the
    oracle where the entry is resolvable (|g| > 1e-30). SINCERE's positive entries are taken
    only where the anchor has a negative (the claim's hypothesis)."""
    tally = Tally("precise", rtol=1e-25, atol=0, dps=cfg.dps)
    with workdps(cfg.dps):
        for c, (s, labels) in enumerate(_sign_cases(cfg, claim_id)):
            if kind == "sincere":
                g = sincere_logit_grad(s, labels, reduction="none")
            else:
                g = supcon_logit_grad(s, labels, kind, reduction="none")
            for i in range(len(labels)):
                pos, neg = index_sets(labels, i)
                if not pos or (kind == "sincere" and on == "pos" and not neg):
                    continue
                for a in pos if on == "pos" else neg:
                    v = g[i][a]
                    where = f"case {c} {labels}: d l_{i} / d s[{i}][{a}] = {float(v)!r}"
                    if (want < 0 and not v < 0) or (want > 0 and not v > 0):
                        tally.fail(where + (" is not < 0" if want < 0 else " is not > 0"))
                    tally.holds(v if want > 0 else -v, where)
                    if c < 2 and abs(v) > mpf(10) ** -30:
                        numeric = _diff_logits(partial(_row_of, kind, labels, i), s, i, a)
                        tally.close(v, numeric, where + " vs mpmath.diff")
    return tally.result(f"sign of the {kind} gradient on the {on} entries (closed form, mp.diff)")


@PRECISE.register("sincere.supcon_in_gradient_nonpositive")
def _in_sign(cfg: CheckConfig) -> LegResult:
    return _sign_leg(cfg, "sincere.supcon_in_gradient_nonpositive", "in", "pos", 0)


@PRECISE.register("sincere.sincere_attracts_positives")
def _sincere_attracts(cfg: CheckConfig) -> LegResult:
    """Random batches, then the closest positive of the growth configuration for |P| up to 64
    (where SupCon repels it): SINCERE's gradient stays < 0."""
    res = _sign_leg(cfg, "sincere.sincere_attracts_positives", "sincere", "pos", -1)
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    rng = np.random.default_rng(cfg.seed_for("sincere.sincere_attracts_positives.growth"))
    with workdps(cfg.dps):
        for c in range(cfg.points(4, 2)):
            s_c = float(rng.uniform(2, 6))
            s_o = s_c - float(rng.uniform(0.2, 3))
            negs = (rng.standard_normal(int(rng.integers(1, 40))) * 2).tolist()
            for m_pos in (1, 2, 4, 16, 64):
                _, g_sin = growth_grads(m_pos, s_c, s_o, negs)
                if not g_sin < 0:
                    tally.fail(f"growth case {c}, |P|={m_pos}: SINCERE gradient not < 0")
                tally.holds(-g_sin, f"growth case {c}, |P|={m_pos}")
    growth = tally.result()
    res.n_points += growth.n_points
    if growth.outcome == "fail" and res.outcome != "fail":
        res.outcome, res.counterexample = "fail", growth.counterexample
    res.detail += "; growth configuration |P| = 1..64: SINCERE's gradient < 0"
    return res


@PRECISE.register("sincere.sincere_repels_negatives")
def _sincere_repels(cfg: CheckConfig) -> LegResult:
    return _sign_leg(cfg, "sincere.sincere_repels_negatives", "sincere", "neg", 1)


def _term_cases(cfg: CheckConfig, claim_id: str) -> list[tuple[list[list[Any]], list[int], Any]]:
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    out = []
    for _ in range(cfg.points(12, 3)):
        nl = int(rng.integers(4, 8))
        labels = [0, 0, 0] + [int(v) for v in rng.integers(0, 3, size=nl - 3)]
        s = mat((rng.standard_normal((nl, nl)) * float(10 ** rng.uniform(-1, 1.5))).tolist())
        out.append((s, labels, mpf(float(10 ** rng.uniform(-1, 1)))))
    return out


def _cross_terms(
    cfg: CheckConfig, claim_id: str, term_fn: Callable[..., Any], check: Callable[..., None]
) -> LegResult:
    """For every anchor, positive pair (i, a) and other positive q: mpmath.diff of the single
    term l_ia (oracle) in the similarity s_iq at temperature t, handed to ``check``."""
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c, (s, labels, t) in enumerate(_term_cases(cfg, claim_id)):
            for i in range(len(labels)):
                pos, neg = index_sets(labels, i)
                for a in pos:
                    term = partial(
                        _at_temperature, partial(_term_of_swapped, term_fn, i, a), labels, t
                    )
                    for q in pos:
                        if q != a:
                            d = _diff_logits(term, s, i, q)
                            check(
                                tally, d, s, t, i, q, pos + neg, f"case {c}: d l_{i}{a}/d s_{i}{q}"
                            )
    return tally.result("per-term cross derivative: mpmath.diff of the oracle's single term")


def _term_of_swapped(fn: Callable[..., Any], i: int, a: int, s: Any, labels: Sequence[int]) -> Any:
    return fn(s, labels, i, a)


def _cross_is_share(
    tally: Tally, d: Any, s: Any, t: Any, i: int, q: int, over: Any, w: str
) -> None:
    tally.close(d, _softmax_share(_scaled([s[i]], t)[0], q, over) / t, w + " = P_q / t")


def _cross_positive(
    tally: Tally, d: Any, s: Any, t: Any, i: int, q: int, over: Any, w: str
) -> None:
    if not d > 0:
        tally.fail(w + f" = {float(d)!r} is not > 0")
    tally.holds(d, w)


def _cross_zero(tally: Tally, d: Any, s: Any, t: Any, i: int, q: int, over: Any, w: str) -> None:
    tally.close(d, 0, w + " = 0")


@PRECISE.register("sincere.supcon_per_term_cross_gradient")
def _per_term_cross(cfg: CheckConfig) -> LegResult:
    return _cross_terms(cfg, "sincere.supcon_per_term_cross_gradient", supcon_term, _cross_is_share)


@PRECISE.register("sincere.supcon_per_term_repulsion")
def _per_term(cfg: CheckConfig) -> LegResult:
    return _cross_terms(cfg, "sincere.supcon_per_term_repulsion", supcon_term, _cross_positive)


@PRECISE.register("sincere.no_same_class_repulsion")
def _no_repulsion(cfg: CheckConfig) -> LegResult:
    return _cross_terms(cfg, "sincere.no_same_class_repulsion", sincere_term, _cross_zero)


def _ineq_cases(cfg: CheckConfig, claim_id: str, n_full: int) -> list[tuple[Any, list[int]]]:
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    cases = []
    for _ in range(cfg.points(n_full)):
        nl = int(rng.integers(2, 8))
        cases.append((mat(random_logits(rng, nl)), random_labels(rng, nl)))
    return cases


@PRECISE.register("sincere.supcon_in_le_out")
def _in_le_out(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=0, atol=1e-40, dps=cfg.dps)  # |P| = 1: equal up to rounding
    with workdps(cfg.dps):
        for c, (s, labels) in enumerate(_ineq_cases(cfg, "sincere.supcon_in_le_out", 40)):
            lo, li = supcon_rows(s, labels, "out"), supcon_rows(s, labels, "in")
            for i, (a, b) in enumerate(zip(lo, li, strict=True)):
                if a is not None:
                    tally.holds(a - b, f"case {c} anchor {i} labels {labels}")
    return tally.result("l_out - l_in >= 0 per anchor, logits up to ~1e3 in scale, 50 digits")


def anchor_gap(s: Any, labels: Sequence[int], i: int) -> Any:
    r"""SupCon L_out minus SINCERE for anchor ``i``, without cancellation:
    :math:`\frac1m\sum_p\log(1+\sum_{q\ne p}e^{s_q-s_p}/(1+\sum_ne^{s_n-s_p}))`."""
    pos, neg = index_sets(labels, i)
    terms = []
    for a in pos:
        rest = mp.fsum(mp.exp(s[i][q] - s[i][a]) for q in pos if q != a)
        negs = mp.fsum(mp.exp(s[i][n] - s[i][a]) for n in neg)
        terms.append(mp.log1p(rest / (1 + negs)))
    return mp.fsum(terms) / len(pos)


def _sincere_vs_supcon(cfg: CheckConfig, claim_id: str, strict: bool) -> LegResult:
    tally = Tally("precise", rtol=1e-25, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c, (s, labels) in enumerate(_ineq_cases(cfg, claim_id, 40)):
            out, sin = supcon_rows(s, labels, "out"), sincere_rows(s, labels)
            for i in range(len(labels)):
                pos, _ = index_sets(labels, i)
                if not pos or (strict and len(pos) < 2):
                    continue
                gap = anchor_gap(s, labels, i)  # exact gap, resolves e^-1e4 terms
                if gap > mpf(10) ** -20:  # resolvable as a difference at 50 digits
                    tally.close(out[i] - sin[i], gap, f"case {c} anchor {i}: gap")
                tally.holds(out[i] - sin[i], f"case {c} anchor {i}: SINCERE <= SupCon")
                if strict and not gap > 0:
                    tally.fail(f"case {c} anchor {i}: not strict for |P| = {len(pos)}")
    return tally.result(
        "per anchor: SupCon L_out - SINCERE vs its log1p form, >= 0 (> 0 if |P|>=2)"
    )


@PRECISE.register("sincere.sincere_le_supcon")
def _sincere_le(cfg: CheckConfig) -> LegResult:
    return _sincere_vs_supcon(cfg, "sincere.sincere_le_supcon", strict=False)


@PRECISE.register("sincere.sincere_lt_supcon_multi_positive")
def _sincere_lt(cfg: CheckConfig) -> LegResult:
    return _sincere_vs_supcon(cfg, "sincere.sincere_lt_supcon_multi_positive", strict=True)


@PRECISE.register("sincere.supcon_out_lower_bound")
def _lower_bound(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=0, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c, (s, labels) in enumerate(_ineq_cases(cfg, "sincere.supcon_out_lower_bound", 40)):
            for i, v in enumerate(supcon_rows(s, labels, "out")):
                if v is not None:
                    tally.holds(v - mp.log(len(index_sets(labels, i)[0])), f"case {c} anchor {i}")
        # tightness: uniform positives, negatives pushed to -inf -> l_out -> log |P|
        for m_pos in (2, 3, 5):
            row = [mpf(0)] + [mpf(1)] * m_pos + [mpf(-200)] * 3
            labels = [0] * (m_pos + 1) + [1, 2, 3]
            s = [row] + [[mpf(0)] * len(row) for _ in range(len(row) - 1)]
            v = supcon_rows(s, labels, "out")[0]
            tally.holds(mpf(10) ** -80 - (v - mp.log(m_pos)), f"tightness |P| = {m_pos}")
    return tally.result("l_out - log|P| >= 0; attained up to e^-200 with uniform positives")


@PRECISE.register("sincere.sincere_nonnegative")
def _sincere_nonnegative(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    with workdps(cfg.dps):
        for c, (s, labels) in enumerate(_ineq_cases(cfg, "sincere.sincere_nonnegative", 40)):
            for i, v in enumerate(sincere_rows(s, labels)):
                if v is not None:
                    tally.holds(v, f"case {c} anchor {i}")
        # the infimum 0 is approached with no constraint among the positives: unequal positives
        # far ahead of the negatives give SINCERE ~ e^-190 while L_out stays >= log|P| + spread
        row = [mpf(0), mpf(0), mpf(5), mpf(10), mpf(-200), mpf(-200)]
        labels = [0, 0, 0, 0, 1, 2]
        s = [row] + [[mpf(0)] * len(row) for _ in range(len(row) - 1)]
        sin_v, out_v = sincere_rows(s, labels)[0], supcon_rows(s, labels, "out")[0]
        tally.holds(sin_v, "SINCERE >= 0 near its infimum")
        tally.holds(mpf(10) ** -80 - sin_v, "SINCERE -> 0 with unequal positives")
        tally.holds(out_v - mp.log(3) - 1, "L_out stays above log|P| + 1 on the same row")
    return tally.result("SINCERE >= 0 per anchor; ~e^-190 where L_out > log|P| + 1")


@PRECISE.register("sincere.equals_infonce_instance_labels")
def _infonce(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("sincere.equals_infonce_instance_labels"))
    tally = Tally("precise", rtol=1e-45, atol=1e-60, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(12, 3)):
            b = int(rng.integers(1, 5))
            views = (rng.standard_normal((b, 2, 3)) * 2).tolist()
            tau = float(10 ** rng.uniform(-2, 1))
            labels = list(range(b))
            want = ntxent(views, tau)
            tally.close(sincere(views, labels, tau), want, f"case {c} SINCERE (tau={tau:.3g})")
            tally.close(supcon(views, labels, tau, "out"), want, f"case {c} SupCon out")
            tally.close(supcon(views, labels, tau, "in"), want, f"case {c} SupCon in")
    return tally.result("SINCERE, SupCon out/in with instance labels vs an NT-Xent oracle")


def _hobbit_cases(cfg: CheckConfig, claim_id: str) -> list[tuple[Any, list[int], Any, Any]]:
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    out = []
    for _ in range(cfg.points(12, 3)):
        nl = int(rng.integers(2, 7))
        labels = random_labels(rng, nl)
        z = unit_rows(rng.standard_normal((nl, 4)))
        s = [[dot(zi, zj) for zj in z] for zi in z]  # cosines
        tau = mpf(float(10 ** rng.uniform(-1.3, 0)))
        base = mpf(float(rng.choice([0.07, 0.1, 0.5, 1.0])))
        out.append((s, labels, tau, base))
    return out


@PRECISE.register("sincere.base_temperature_rescale")
def _base_rescale(cfg: CheckConfig) -> LegResult:
    """HobbitLong's algorithm (shifted by the row max, self included) vs tau/base x L_out."""
    tally = Tally("precise", rtol=1e-45, atol=1e-60, dps=cfg.dps)
    with workdps(cfg.dps):
        for c, (s, labels, tau, base) in enumerate(
            _hobbit_cases(cfg, "sincere.base_temperature_rescale")
        ):
            out = supcon_rows(_scaled(s, tau), labels, "out")
            for i in range(len(labels)):
                pos, neg = index_sets(labels, i)
                if not pos:
                    continue
                shift = max(v / tau for v in s[i])  # the row max, self included
                got = hobbitlong_anchor(s[i], pos, neg, tau, base, shift)
                tally.close(got, tau / base * out[i], f"case {c} anchor {i}")
    return tally.result("HobbitLong's per-anchor algorithm = tau/base x SupCon L_out, 50 digits")


@PRECISE.register("sincere.base_temperature_gradient_rescale")
def _base_gradient(cfg: CheckConfig) -> LegResult:
    """(P_k - 1/|P|)/t_base vs mpmath.diff of HobbitLong's algorithm in s_ik, the row shift
    held at its value (detached, as in HobbitLong's code)."""
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        cases = _hobbit_cases(cfg, "sincere.base_temperature_gradient_rescale")
        for c, (s, labels, tau, base) in enumerate(cases):
            for i in range(len(labels)):
                pos, neg = index_sets(labels, i)
                if not pos:
                    continue
                hob = (tau, base, max(v / tau for v in s[i]))  # shift: the row max, held fixed
                for k in pos:

                    def f(
                        v: Any, k: int = k, row0: Any = s[i], rest: Any = (pos, neg, *hob)
                    ) -> Any:
                        row = list(row0)
                        row[k] = v
                        return hobbitlong_anchor(row, *rest)

                    logits = [v / tau for v in s[i]]
                    closed = share_minus_uniform(logits, k, pos, [*pos, *neg]) / base
                    tally.close(mp.diff(f, s[i][k]), closed, f"case {c} [{i}][{k}]")
    return tally.result("closed form (P_k - 1/|P|)/t_base vs mpmath.diff of HobbitLong's loss")


def _tau_leg(cfg: CheckConfig, claim_id: str, kind: str) -> LegResult:
    """Closed-form dl_i/dt (per anchor, similarities fixed) vs mpmath.diff of the oracle in t."""
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(8, 3)):
            nl = int(rng.integers(2, 7))
            labels = random_labels(rng, nl)
            s = mat((rng.standard_normal((nl, nl)) * float(10 ** rng.uniform(-1, 1))).tolist())
            t = mpf(float(10 ** rng.uniform(-1, 1)))
            for i in range(nl):
                pos, neg = index_sets(labels, i)
                if not pos:
                    continue

                def f(tt: Any, i: int = i, s: Any = s, labels: Any = labels) -> Any:
                    return _row_of(kind, labels, i, _scaled(s, tt))

                closed = anchor_tau_grad(s[i], pos, neg, t, kind)
                tally.close(closed, mp.diff(f, t), f"case {c} anchor {i} t={float(t):.3g}")
    return tally.result("closed-form dl/dt vs mpmath.diff of the oracle in t (50 digits)")


@PRECISE.register("sincere.supcon_out_temperature_gradient")
def _out_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "sincere.supcon_out_temperature_gradient", "out")


@PRECISE.register("sincere.supcon_in_temperature_gradient")
def _in_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "sincere.supcon_in_temperature_gradient", "in")


@PRECISE.register("sincere.sincere_temperature_gradient")
def _sincere_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "sincere.sincere_temperature_gradient", "sincere")


# ----------------------------------------------------------------------------- KL bound legs


@PRECISE.register("sincere.kl_bound")
def _kl_bound(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    gauss: dict[str, float] = {}
    rng = np.random.default_rng(cfg.seed_for("sincere.kl_bound"))
    with workdps(cfg.dps):
        # the statement: two-point supports, N up to 32, the optimal critic and others
        for c in range(cfg.points(6, 2)):
            pp = rng.dirichlet(np.full(2, 0.7)).tolist()
            pm = rng.dirichlet(np.full(2, 0.7)).tolist()
            ratio = [mpf(x) / mpf(y) for x, y in zip(pp, pm, strict=True)]
            dj = kl_discrete(pp, pm) + kl_discrete(pm, pp)
            for n_neg in (1, 2, 5, 32):
                bound = mpf(n_neg) / (n_neg + 1) * dj
                for name, critic in (("r", ratio), ("random", vec(rng.uniform(0.1, 3, 2)))):
                    loss = nce_loss_discrete(pp, pm, n_neg, critic)
                    tally.holds(
                        bound - (mp.log(n_neg + 1) - loss), f"two-point {c}, N={n_neg}, {name}"
                    )
        # beyond the statement (the note's general form): Gaussians N(mu,1) vs N(0,1), N = 1,
        # optimal critic, D_J = mu^2, by quadrature
        for mu in (0.5, 1.0, 2.0, 3.0)[: cfg.points(4, 1)]:
            gap = mp.log(2) - nce_loss_gaussian_n1(mu)
            gauss[f"mu={mu}"] = float(gap)
            tally.holds(mpf(mu) ** 2 / 2 - gap, f"gaussian mu={mu}: log 2 - L <= D_J / 2")
        # 3- and 4-point supports exactly (multinomial enumeration of the noise counts)
        plans = [(3, (1, 2, 4, 8, 16)), (4, (1, 3, 6))] if not cfg.quick else [(3, (1, 4))]
        for c, (support, ns) in enumerate(plans):
            pp = rng.dirichlet(np.full(support, 0.7)).tolist()
            pm = rng.dirichlet(np.full(support, 0.7)).tolist()
            ratio = [mpf(x) / mpf(y) for x, y in zip(pp, pm, strict=True)]
            dj = kl_discrete(pp, pm) + kl_discrete(pm, pp)
            for n_neg in ns:
                loss = nce_loss_discrete(pp, pm, n_neg, ratio)
                bound = mpf(n_neg) / (n_neg + 1) * dj
                tally.holds(bound - (mp.log(n_neg + 1) - loss), f"discrete {c}, N={n_neg}")
                if n_neg <= 4:  # any other critic does worse (Gibbs step): f = r^alpha
                    for alpha in (0.5, 2.0):
                        other = nce_loss_discrete(pp, pm, n_neg, [v**alpha for v in ratio])
                        tally.holds(other - loss, f"discrete {c}, N={n_neg}, critic r^{alpha}")
    return tally.result(
        "two-point supports (the statement), N up to 32, optimal and random critics; beyond it: "
        "Gaussians N(mu,1) vs N(0,1) at N=1 by quadrature, 3/4-point supports exactly",
        gaussian_gap_log2_minus_L=gauss,
    )


@PRECISE.register("sincere.kl_bound_jeffreys")
def _kl_jeffreys(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("sincere.kl_bound_jeffreys"))
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(40, 10)):
            support = int(rng.integers(2, 7))
            pp = rng.dirichlet(np.full(support, 0.5)).tolist()
            pm = rng.dirichlet(np.full(support, 0.5)).tolist()
            dj = kl_discrete(pp, pm) + kl_discrete(pm, pp)
            n_neg = int(rng.integers(1, 1000))
            tally.holds(dj - mpf(n_neg) / (n_neg + 1) * dj, f"case {c}, S={support}, N={n_neg}")
    return tally.result("D_J - N/(N+1) D_J >= 0 for random discrete p+, p- (50 digits)")


# ----------------------------------------------------------------------------- growth legs


def growth_grads(m_pos: int, s_c: Any, s_o: Any, negs: Sequence[Any]) -> tuple[Any, Any]:
    """(SupCon L_out, SINCERE) anchor gradient on the closest positive (index 0) when the
    closest positive sits at s_c, m_pos - 1 positives at s_o and the negatives at ``negs``
    (logits; divide by t and scale by 1/t for similarities at temperature t)."""
    row = [mpf(s_c)] + [mpf(s_o)] * (m_pos - 1) + [mpf(v) for v in negs]
    pos, neg = list(range(m_pos)), list(range(m_pos, len(row)))
    g_out = supcon_anchor_grad(row, pos, neg, "out", only=[0])[0]
    return g_out, sincere_anchor_grad(row, pos, neg, only=[0])[0]


def _growth_case(rng: np.random.Generator) -> tuple[Any, Any, list[Any], Any]:
    s_c = mpf(float(rng.uniform(2, 6)))
    s_o = s_c - mpf(float(rng.uniform(0.2, 3)))
    negs = vec((rng.standard_normal(int(rng.integers(5, 40))) * 2).tolist())
    t = mpf(float(10 ** rng.uniform(-0.5, 0.5)))
    return s_c, s_o, negs, t


@PRECISE.register("sincere.supcon_repulsion_threshold")
def _threshold(cfg: CheckConfig) -> LegResult:
    """[(m-1)(e^{s_c/t}-e^{s_o/t}) - Z_N]/(m t D) vs the oracle's gradient (logits / t, over t)
    and vs mpmath.diff of the oracle's loss in s_c."""
    rng = np.random.default_rng(cfg.seed_for("sincere.supcon_repulsion_threshold"))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    sizes = (1, 2, 3, 8, 64) if not cfg.quick else (1, 2, 8)
    with workdps(cfg.dps):
        for c in range(cfg.points(4, 2)):
            s_c, s_o, negs, t = _growth_case(rng)
            z_n = mp.fsum(mp.exp(v / t) for v in negs)
            for m_pos in sizes:
                den = mp.exp(s_c / t) + (m_pos - 1) * mp.exp(s_o / t) + z_n
                closed = ((m_pos - 1) * (mp.exp(s_c / t) - mp.exp(s_o / t)) - z_n) / (
                    m_pos * t * den
                )
                g_out, _ = growth_grads(m_pos, s_c / t, s_o / t, [v / t for v in negs])
                tally.close(closed, g_out / t, f"case {c}, |P|={m_pos}: closed form vs oracle")
                if m_pos <= 8:

                    def loss(x: Any, m_pos: int = m_pos, case: Any = (s_o, negs, t)) -> Any:
                        so, ng, tt = case
                        full, labels = _anchor_matrix([x] + [so] * (m_pos - 1), ng, tt)
                        terms = (supcon_term(full, labels, 0, pp) for pp in range(1, m_pos + 1))
                        return mp.fsum(terms) / m_pos

                    tally.close(closed, mp.diff(loss, s_c), f"case {c}, |P|={m_pos}: mp.diff")
    return tally.result("threshold closed form vs oracle gradient and mpmath.diff, |P| up to 64")


@PRECISE.register("sincere.supcon_repulsion_grows_with_positives")
def _growth(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("sincere.supcon_repulsion_grows_with_positives"))
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    table: dict[str, list[float]] = {}
    sizes = (1, 2, 3, 4, 8, 16, 32, 64) if not cfg.quick else (1, 2, 4, 16)
    with workdps(cfg.dps):
        for c in range(cfg.points(4, 2)):
            s_c, s_o, negs, t = _growth_case(rng)
            z_n = mp.fsum(mp.exp(v / t) for v in negs)
            prev_scaled = None
            prev_sign = False
            row_vals = []
            for m_pos in sizes:
                g_out, _ = growth_grads(m_pos, s_c / t, s_o / t, [v / t for v in negs])
                g_out /= t
                den = mp.exp(s_c / t) + (m_pos - 1) * mp.exp(s_o / t) + z_n
                scaled = m_pos * t * den * g_out  # the statement's quantity, from the oracle
                row_vals.append(float(g_out))
                if prev_scaled is not None and not scaled > prev_scaled:
                    tally.fail(f"case {c}, |P|={m_pos}: |P| t D grad did not increase")
                if prev_scaled is not None:
                    tally.holds(scaled - prev_scaled, f"case {c}, |P|={m_pos}: increase")
                if prev_sign and not g_out > 0:
                    tally.fail(f"case {c}, |P|={m_pos}: repulsion switched off as |P| grew")
                prev_scaled, prev_sign = scaled, bool(g_out > 0)
            table[f"case {c}"] = row_vals
            if not prev_sign:
                tally.fail(f"case {c}: never repelled up to |P| = {sizes[-1]}")
    return tally.result(
        "closest-positive gradient vs |P| (oracle): |P| t D grad increasing, monotone onset "
        "of repulsion",
        supcon_closest_positive_gradient=table,
        sizes=list(sizes),
    )


# ----------------------------------------------------------------------------- definitions

DEFINITION = LegRegistry("definition")


def _anchor_matrix(
    pos: Sequence[Any], neg: Sequence[Any], t: Any
) -> tuple[list[list[Any]], list[int]]:
    """A logit matrix whose row 0 is an anchor with positives ``pos`` (columns 1..m) and
    negatives ``neg`` (columns m+1..), similarities divided by ``t``; other rows are zeros."""
    row = [mpf(0)] + [mpf(v) / t for v in pos] + [mpf(v) / t for v in neg]
    labels = [0] * (len(pos) + 1) + [1] * len(neg)
    return [row] + [[mpf(0)] * len(row) for _ in range(len(row) - 1)], labels


def _sample_anchor(rng: random.Random, *, extra: dict[Any, Any] | None = None) -> Any:
    mm, nn = rng.randint(1, 4), rng.randint(0, 3)
    point: dict[Any, Any] = {
        D.s: [rng.uniform(-3, 3) for _ in range(mm)],
        D.u: [rng.uniform(-3, 3) for _ in range(nn)] or [0.0],  # unused when M = 0
        D.t: 10 ** rng.uniform(-0.7, 0.7),
    }
    point.update(extra or {})
    if D.a in point:
        point[D.a] = rng.randint(1, mm)
    return {D.m: mm, D.M: nn}, point


def _anchor_args(sizes: Any, pt: Any) -> tuple[list[Any], list[Any], Any]:
    mm, nn = sizes[D.m], sizes[D.M]
    return list(pt[D.s])[:mm], list(pt[D.u])[:nn], mpf(pt[D.t])


#: definition name -> (oracle adapter, seeded point sampler), as used by the definition legs
DEFINITION_ORACLES: dict[str, tuple[Any, Any]] = {}


def _register_definitions() -> None:
    from softnce_theory.numerics.infonce import ranking_nce_rows

    defs = {d.name: d for d in D.DEFINITIONS}

    def rows(kind: str) -> Any:
        def oracle(sizes: Any, pt: Any) -> Any:
            pos, neg, t = _anchor_args(sizes, pt)
            s, labels = _anchor_matrix(pos, neg, t)
            return _row_of(kind, labels, 0, s)

        return oracle

    def term(fn: Any) -> Any:
        def oracle(sizes: Any, pt: Any) -> Any:
            pos, neg, t = _anchor_args(sizes, pt)
            s, labels = _anchor_matrix(pos, neg, t)
            return fn(s, labels, 0, int(pt[D.a]))  # column a is the a-th positive

        return oracle

    def nt(sizes: Any, pt: Any) -> Any:  # InfoNCE oracle of the infonce family
        t = mpf(pt[D.t])
        neg = list(pt[D.u])[: sizes[D.M]]
        return ranking_nce_rows([[mpf(pt[D.s][0]) / t] + [mpf(v) / t for v in neg]])[0]

    def hobbit(sizes: Any, pt: Any) -> Any:
        pos, neg, t = _anchor_args(sizes, pt)
        sims = [mpf(0), *pos, *neg]
        ip = list(range(1, len(pos) + 1))
        ineg = list(range(len(pos) + 1, len(sims)))
        return hobbitlong_anchor(sims, ip, ineg, t, pt[D.t_b], pt[D.c])

    def config(sizes: Any, pt: Any) -> Any:
        mm, nn = sizes[D.m], sizes[D.M]
        pos = [pt[D.s_c]] + [pt[D.s_o]] * (mm - 1)
        s, labels = _anchor_matrix(pos, list(pt[D.u])[:nn], mpf(pt[D.t]))
        return supcon_rows(s, labels, "out")[0]

    def nce(sizes: Any, pt: Any) -> Any:
        return nce_loss_discrete(pt[D.pp], pt[D.pm], sizes[D.N], pt[D.f])

    def jeff(sizes: Any, pt: Any) -> Any:
        return kl_discrete(pt[D.pp], pt[D.pm]) + kl_discrete(pt[D.pm], pt[D.pp])

    def sample_nce(rng: random.Random) -> Any:
        p1, q1 = rng.uniform(0.05, 0.95), rng.uniform(0.05, 0.95)
        point = {D.pp: [p1, 1 - p1], D.pm: [q1, 1 - q1], D.f: [rng.uniform(0.1, 3) for _ in "ab"]}
        return {D.N: rng.randint(1, 4)}, point

    def sample_jeff(rng: random.Random) -> Any:
        size = rng.randint(1, 5)
        vals = {b: [rng.uniform(0.05, 1) for _ in range(size)] for b in (D.pp, D.pm)}
        return {D.S: size}, vals

    def sample_config(rng: random.Random) -> Any:
        sizes, point = _sample_anchor(rng)
        point.pop(D.s)
        point.update({D.s_c: rng.uniform(-3, 3), D.s_o: rng.uniform(-3, 3)})
        return sizes, point

    table: dict[str, tuple[Any, Any]] = {
        "supcon_out": (rows("out"), _sample_anchor),
        "supcon_in": (rows("in"), _sample_anchor),
        "sincere": (rows("sincere"), _sample_anchor),
        "supcon_term": (term(supcon_term), partial(_sample_anchor, extra={D.a: 1})),
        "sincere_term": (term(sincere_term), partial(_sample_anchor, extra={D.a: 1})),
        "ntxent": (nt, _sample_anchor),
        "hobbitlong": (
            hobbit,
            lambda rng: _sample_anchor(
                rng, extra={D.t_b: 10 ** rng.uniform(-1.5, 0), D.c: rng.uniform(-5, 5)}
            ),
        ),
        "supcon_out_config": (config, sample_config),
        "nce_loss_two_point": (nce, sample_nce),
        "jeffreys": (jeff, sample_jeff),
    }
    DEFINITION_ORACLES.update(table)
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
    "anchor_gap",
    "anchor_tau_grad",
    "compositions",
    "embedding_grad",
    "flat",
    "flatten_views",
    "growth_grads",
    "hobbitlong_anchor",
    "index_sets",
    "kl_discrete",
    "logit_matrix",
    "nce_loss_discrete",
    "nce_loss_gaussian_n1",
    "ntxent",
    "random_labels",
    "reduce_rows",
    "share_minus_uniform",
    "sincere",
    "sincere_anchor_grad",
    "sincere_grad",
    "sincere_logit_grad",
    "sincere_rows",
    "sincere_term",
    "supcon",
    "supcon_anchor_grad",
    "supcon_grad",
    "supcon_logit_grad",
    "supcon_rows",
    "supcon_term",
    "unit_rows",
]
