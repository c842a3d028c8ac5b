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
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
from mpmath import mp

from derivations import CheckConfig, LegRegistry, LegResult, Tally
from numerics._mp import dot, mat, mpf, norm, workdps

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


def _swap2(fn: Callable[[Any, list[int]], Any], labels: list[int], v: Any) -> Any:
    return fn(v, labels)


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
    extra_check: Callable[[Tally, list[list[Any]], list[list[Any]], list[int], str], None],
) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for(claim_id))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c in range(cfg.points(6, 2)):
            nl = int(rng.integers(3, 6))
            labels = random_labels(rng, nl)
            s = mat(random_logits(rng, nl))
            closed = closed_logits(s, labels)
            _check_logit_grad(
                tally,
                closed,
                partial(_swap2, value_logits, labels),
                s,
                f"case {c} logits {labels}",
            )
            extra_check(tally, s, closed, labels, f"case {c} {labels}")
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
        "closed-form logit gradient vs mpmath.diff of the oracle (all entries); embedding "
        "gradient (chain rule through normalisation) vs mpmath.diff"
    )


def _no_extra(tally: Tally, s: Any, g: Any, labels: list[int], where: str) -> None:
    return None


@PRECISE.register("sincere.supcon_out_gradient")
def _out_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(
        cfg,
        "sincere.supcon_out_gradient",
        lambda s, lab: supcon_logit_grad(s, lab, "out"),
        lambda s, lab: reduce_rows(supcon_rows(s, lab, "out")),
        lambda e, lab, t: supcon_grad(e, lab, t, "out"),
        lambda e, lab, t: supcon(e, lab, t, "out"),
        _no_extra,
    )


def _in_sign(tally: Tally, s: Any, g: Any, labels: list[int], where: str) -> None:
    for i in range(len(labels)):
        for a in index_sets(labels, i)[0]:
            tally.holds(-g[i][a], f"{where}: d l_in / d s[{i}][{a}] <= 0")


@PRECISE.register("sincere.supcon_in_gradient_nonpositive")
def _in_gradient(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(
        cfg,
        "sincere.supcon_in_gradient_nonpositive",
        lambda s, lab: supcon_logit_grad(s, lab, "in"),
        lambda s, lab: reduce_rows(supcon_rows(s, lab, "in")),
        lambda e, lab, t: supcon_grad(e, lab, t, "in"),
        lambda e, lab, t: supcon(e, lab, t, "in"),
        _in_sign,
    )


def _sincere_signs(tally: Tally, s: Any, g: Any, labels: list[int], where: str) -> None:
    for i in range(len(labels)):
        pos, neg = index_sets(labels, i)
        if not pos:
            continue
        for a in pos:
            if neg and not g[i][a] < 0:  # strictly attractive as soon as one negative exists
                tally.fail(f"{where}: d L / d s[{i}][{a}] = {float(g[i][a])!r} is not < 0")
            tally.holds(-g[i][a], f"{where}: s[{i}][{a}] <= 0")
            for q in pos:
                if q != a:  # the term of pair (i, a) does not move s_iq
                    term = partial(_term_of, sincere_term, labels, i, a)
                    d = _diff_logits(term, s, i, q)
                    tally.close(d, 0, f"{where}: d l_{i}{a} / d s[{i}][{q}]")
        for a in neg:
            if not g[i][a] > 0:
                tally.fail(f"{where}: d L / d s[{i}][{a}] = {float(g[i][a])!r} is not > 0")


@PRECISE.register("sincere.no_same_class_repulsion")
def _no_repulsion(cfg: CheckConfig) -> LegResult:
    return _gradient_leg(
        cfg,
        "sincere.no_same_class_repulsion",
        sincere_logit_grad,
        lambda s, lab: reduce_rows(sincere_rows(s, lab)),
        lambda e, lab, t: sincere_grad(e, lab, t),
        lambda e, lab, t: sincere(e, lab, t),
        _sincere_signs,
    )


@PRECISE.register("sincere.supcon_per_term_repulsion")
def _per_term(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("sincere.supcon_per_term_repulsion"))
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    repelled = attracted = 0
    with workdps(cfg.dps):
        for c in range(cfg.points(12, 3)):
            nl = int(rng.integers(4, 8))
            labels = [0, 0, 0] + [int(v) for v in rng.integers(0, 3, size=nl - 3)]
            s = mat((rng.standard_normal((nl, nl)) * float(10 ** rng.uniform(-1, 1.5))).tolist())
            g = supcon_logit_grad(s, labels, "out", reduction="sum")
            for i in range(nl):
                pos, neg = index_sets(labels, i)
                for a in pos:
                    for q in pos:
                        if q == a:
                            continue
                        term = partial(_term_of, supcon_term, labels, i, a)
                        d = _diff_logits(term, s, i, q)
                        share = _softmax_share(s[i], q, pos + neg)
                        tally.close(d, share, f"case {c}: d l_{i}{a} / d s[{i}][{q}] = P")
                        tally.holds(d, f"case {c}: d l_{i}{a} / d s[{i}][{q}] > 0")
                    share = _softmax_share(s[i], a, pos + neg)
                    if (g[i][a] > 0) != (share > mpf(1) / len(pos)):
                        tally.fail(f"case {c}: repulsion of s[{i}][{a}] not iff P > 1/|P|")
                    repelled += int(g[i][a] > 0)
                    attracted += int(g[i][a] < 0)
    if repelled == 0:
        tally.fail("no repelled positive found: the phenomenon was not exhibited")
    return tally.result(
        "per-term cross derivative vs mpmath.diff and > 0; net sign iff P_ik > 1/|P|",
        repelled_positives=repelled,
        attracted_positives=attracted,
    )


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


@PRECISE.register("sincere.sincere_le_supcon")
def _sincere_le(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=1e-25, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for c, (s, labels) in enumerate(_ineq_cases(cfg, "sincere.sincere_le_supcon", 40)):
            for i in range(len(labels)):
                pos, _ = index_sets(labels, i)
                for a in pos:
                    out_t, sin_t = supcon_term(s, labels, i, a), sincere_term(s, labels, i, a)
                    rest = mp.fsum(mp.exp(s[i][q] - s[i][a]) for q in pos if q != a)
                    negs = mp.fsum(mp.exp(s[i][n] - s[i][a]) for n in index_sets(labels, i)[1])
                    gap = mp.log1p(rest / (1 + negs))  # exact gap, resolves e^-1e4 terms
                    if gap > mpf(10) ** -20:  # resolvable as a difference at 50 digits
                        tally.close(out_t - sin_t, gap, f"case {c} ({i},{a}): gap")
                    tally.holds(out_t - sin_t, f"case {c} ({i},{a}): SINCERE <= SupCon")
                    if len(pos) == 1:
                        tally.close(sin_t, out_t, f"case {c} anchor {i}: |P| = 1 equality")
                    elif not gap > 0:
                        tally.fail(f"case {c} ({i},{a}): not strict for |P| = {len(pos)}")
    return tally.result("per term: strict inequality for |P| >= 2, equality for |P| = 1")


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
        # SINCERE has infimum 0 with no constraint among the positives: unequal positives far
        # ahead of the negatives give SINCERE ~ e^-190 while L_out stays >= log|P| + spread
        row = [mpf(0), mpf(0), mpf(5), mpf(10), mpf(-200), mpf(-200)]
        labels = [0, 0, 0, 0, 1, 2]
        s = [row] + [[mpf(0)] * len(row) for _ in range(len(row) - 1)]
        sin_v, out_v = sincere_rows(s, labels)[0], supcon_rows(s, labels, "out")[0]
        tally.holds(mpf(10) ** -80 - sin_v, "SINCERE -> 0 with unequal positives")
        tally.holds(out_v - mp.log(3) - 1, "L_out stays above log|P| + 1 on the same row")
    return tally.result(
        "l_out - log|P| >= 0; attained up to e^-200 with uniform positives; SINCERE ~ 0 where "
        "L_out > log|P| + 1"
    )


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


@PRECISE.register("sincere.kl_bound")
def _kl_bound(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    gauss: dict[str, float] = {}
    with workdps(cfg.dps):
        # Gaussian class-conditionals, N = 1, optimal critic: D_J = mu^2
        for mu in (0.5, 1.0, 2.0, 3.0)[: cfg.points(4, 1)]:
            gap = mp.log(2) - nce_loss_gaussian_n1(mu)
            dj = mpf(mu) ** 2
            gauss[f"mu={mu}"] = float(gap)
            tally.holds(dj / 2 - gap, f"gaussian mu={mu}: log 2 - L <= D_J / 2")
            tally.holds(gap, f"gaussian mu={mu}: gap >= 0 (optimal critic)")
        # discrete p+/p- exactly (multinomial enumeration of the noise counts)
        rng = np.random.default_rng(cfg.seed_for("sincere.kl_bound"))
        plans = (
            [(3, (1, 2, 4, 8, 16)), (4, (1, 3, 6)), (3, (2, 5))] if not cfg.quick else [(3, (1, 4))]
        )
        for c, (support, ns) in enumerate(plans):
            pp = rng.dirichlet(np.full(support, 0.7)).tolist()
            pm = rng.dirichlet(np.full(support, 0.7)).tolist()
            ratio = [mpf(a) / mpf(b) for a, b in zip(pp, pm, strict=True)]
            dj = kl_discrete(pp, pm) + kl_discrete(pm, pp)
            for n_neg in ns:
                loss = nce_loss_discrete(pp, pm, n_neg, ratio)
                bound = mpf(n_neg) / (n_neg + 1) * dj
                tally.holds(bound - (mp.log(n_neg + 1) - loss), f"discrete {c}, N={n_neg}")
                tally.holds(dj - bound, f"discrete {c}, N={n_neg}: N/(N+1) D_J <= D_J")
                if n_neg <= 4:  # any other critic does worse (Gibbs step): f = r^alpha
                    for alpha in (0.5, 2.0):
                        other = nce_loss_discrete(pp, pm, n_neg, [v**alpha for v in ratio])
                        tally.holds(other - loss, f"discrete {c}, N={n_neg}, critic r^{alpha}")
        # discretised Gaussians N(mu, 1) vs N(0, 1) on a 5-point grid: several separations and N
        grid = [mpf(v) / 2 for v in range(-3, 7, 2)]  # -1.5 .. 2.5
        for mu in (0.5, 1.5) if not cfg.quick else ():
            pp = [mp.exp(-((g - mu) ** 2) / 2) for g in grid]
            pm = [mp.exp(-(g**2) / 2) for g in grid]
            pp = [v / mp.fsum(pp) for v in pp]
            pm = [v / mp.fsum(pm) for v in pm]
            ratio = [a / b for a, b in zip(pp, pm, strict=True)]
            dj = kl_discrete(pp, pm) + kl_discrete(pm, pp)
            for n_neg in (1, 2, 4, 8):
                gap = mp.log(n_neg + 1) - nce_loss_discrete(pp, pm, n_neg, ratio)
                bound = mpf(n_neg) / (n_neg + 1) * dj
                tally.holds(bound - gap, f"discretised gaussian mu={mu}, N={n_neg}")
    return tally.result(
        "Gaussian N(mu,1) vs N(0,1), N=1 by quadrature (mu = 0.5..3); discretised Gaussians and "
        "random discrete p+/p- exact for N up to 16; non-optimal critics r^alpha never beat r",
        gaussian_gap_log2_minus_L=gauss,
    )


def growth_grads(m_pos: int, s_c: float, s_o: float, negs: Sequence[float]) -> tuple[Any, Any]:
    """(SupCon L_out, SINCERE) anchor gradient on the closest positive (index 0) when the
    closest positive sits at s_c, m_pos - 1 positives at s_o and the negatives at ``negs``."""
    row = [mpf(s_c)] + [mpf(s_o)] * (m_pos - 1) + [mpf(v) for v in negs]
    pos, neg = list(range(m_pos)), list(range(m_pos, len(row)))
    g_out = supcon_anchor_grad(row, pos, neg, "out", only=[0])[0]
    return g_out, sincere_anchor_grad(row, pos, neg, only=[0])[0]


@PRECISE.register("sincere.supcon_repulsion_grows_with_positives")
def _growth(cfg: CheckConfig) -> LegResult:
    rng = np.random.default_rng(cfg.seed_for("sincere.supcon_repulsion_grows_with_positives"))
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    table: dict[str, list[float]] = {}
    sizes = (1, 2, 3, 4, 8, 16, 32, 64) if not cfg.quick else (1, 2, 4, 16)
    with workdps(cfg.dps):
        for c in range(cfg.points(4, 2)):
            s_c = float(rng.uniform(2, 6))
            s_o = s_c - float(rng.uniform(0.2, 3))
            negs = (rng.standard_normal(int(rng.integers(5, 40))) * 2).tolist()
            z_n = mp.fsum(mp.exp(mpf(v)) for v in negs)
            prev_sign = False
            row_vals = []
            for m_pos in sizes:
                g_out, g_sin = growth_grads(m_pos, s_c, s_o, negs)
                row_vals.append(float(g_out))
                predicted = (m_pos - 1) * (mp.exp(s_c) - mp.exp(s_o)) > z_n
                if (g_out > 0) != predicted:
                    tally.fail(f"case {c}, |P|={m_pos}: sign not as predicted")
                if prev_sign and not g_out > 0:
                    tally.fail(f"case {c}, |P|={m_pos}: repulsion switched off as |P| grew")
                prev_sign = bool(g_out > 0)
                tally.holds(-g_sin, f"case {c}, |P|={m_pos}: SINCERE attracts")
            table[f"case {c}"] = row_vals
            if not prev_sign:
                tally.fail(f"case {c}: never repelled up to |P| = {sizes[-1]}")
    return tally.result(
        "closest-positive gradient vs |P|: sign as predicted, monotone onset of repulsion; "
        "SINCERE's gradient negative throughout",
        supcon_closest_positive_gradient=table,
        sizes=list(sizes),
    )


__all__ = [
    "PRECISE",
    "compositions",
    "embedding_grad",
    "flat",
    "flatten_views",
    "growth_grads",
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
