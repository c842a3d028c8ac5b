r"""mpmath oracles for ranking NCE / InfoNCE and exact enumerations for the NCE theory claims.

Oracles (written from the formulas, sharing no code with the torch losses):

* ranking NCE (Ma & Collins 2018), scores :math:`s_{ik}`, column 0 the positive,
  :math:`\bar s = s - \log q`:
  :math:`\ell_i=-\log\frac{e^{\bar s_{i0}}}{\sum_k e^{\bar s_{ik}}}
  =\log\big(1+\sum_{k\ge1}e^{\bar s_{ik}-\bar s_{i0}}\big)`, gradient
  :math:`\partial\ell_i/\partial s_{ik}=\mathrm{softmax}(\bar s_i)_k-[k=0]`;
* InfoNCE (van den Oord et al. 2018) from raw embeddings: logits
  :math:`z = \mathrm{sim}(q_i, c)/t - \log q(c)` over the candidates :math:`c` of row :math:`i`
  (in-batch keys, or the positive key followed by the negatives), cosine similarity
  :math:`\langle q,k\rangle/(\max(\|q\|,10^{-12})\max(\|k\|,10^{-12}))` or dot product; analytic
  gradient with respect to the query;
* CLIP-style symmetric InfoNCE, value and gradient with respect to ``a``.

Exact enumerations (multinomial sums over compositions) for the theory claims: the expected
InfoNCE estimate of a discrete joint, the optimal-critic gap, :math:`E\log` of a sample mean,
sampled-softmax biases and the population ranking-NCE objective.

Everything evaluates at the caller's ``mp.dps`` (use :func:`numerics._mp.workdps`).
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

from mpmath import mp

import softnce_theory.derivations.infonce as D
from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.derivations import infonce as theory
from softnce_theory.numerics._definitions import definition_leg
from softnce_theory.numerics._mp import DEFAULT_DPS, dot, lse, mat, mpf, norm, softmax, vec, workdps

PRECISE = LegRegistry("precise")

COSINE_EPS = 1e-12  # torch.nn.functional.normalize's default eps

# --------------------------------------------------------------------------------- oracles


def _row_loss(z: Sequence[Any], pos: int) -> Any:
    """-log softmax(z)[pos] as log(1 + sum_{k != pos} exp(z_k - z_pos)) (accurate for tiny
    losses, where log(sum) - z_pos would cancel)."""
    rest = [mp.exp(zk - z[pos]) for k, zk in enumerate(z) if k != pos]
    return mp.log1p(mp.fsum(rest)) if rest else mp.zero


def _row_grad(z: Sequence[Any], pos: int) -> list[Any]:
    """d/dz of :func:`_row_loss`: softmax(z) - onehot(pos)."""
    zl = lse(z)
    p = [mp.exp(zk - zl) for zk in z]
    g = list(p)
    g[pos] = -mp.fsum(pk for k, pk in enumerate(p) if k != pos)
    return g


def _reduce(rows: list[Any], reduction: str) -> Any:
    if reduction == "mean":
        return mp.fsum(rows) / len(rows)
    if reduction == "sum":
        return mp.fsum(rows)
    return rows


def _broadcast_rows(x: Any, nrows: int, ncols: int) -> list[list[Any]]:
    """(ncols,) or (nrows, ncols) or (1, ncols) or (nrows, 1) nested lists -> nrows x ncols mpf."""
    if x is None:
        return [[mp.zero] * ncols for _ in range(nrows)]
    if hasattr(x, "tolist"):
        x = x.tolist()
    if not isinstance(x[0], (list, tuple)):
        row = vec(x)
        return [list(row) for _ in range(nrows)]
    rows = mat(x)
    if len(rows) == 1:
        rows = rows * nrows
    return [r * ncols if len(r) == 1 else r for r in rows]


def ranking_nce_rows(scores: Any, log_q: Any = None) -> list[Any]:
    """Per-row ranking-NCE loss; ``scores`` (N, K+1), column 0 the positive."""
    s = mat(scores)
    lq = _broadcast_rows(log_q, len(s), len(s[0]))
    return [
        _row_loss([a - b for a, b in zip(r, lr, strict=True)], 0)
        for r, lr in zip(s, lq, strict=True)
    ]


def ranking_nce(scores: Any, log_q: Any = None, reduction: str = "mean") -> Any:
    return _reduce(ranking_nce_rows(scores, log_q), reduction)


def ranking_nce_grad(scores: Any, log_q: Any = None) -> list[list[Any]]:
    """Gradient of the mean ranking-NCE loss with respect to ``scores``."""
    s = mat(scores)
    lq = _broadcast_rows(log_q, len(s), len(s[0]))
    n = len(s)
    return [
        [g / n for g in _row_grad([a - b for a, b in zip(r, lr, strict=True)], 0)]
        for r, lr in zip(s, lq, strict=True)
    ]


def similarity(u: Sequence[Any], v: Sequence[Any], kind: str) -> Any:
    """Cosine (with torch's ``max(norm, 1e-12)`` convention) or dot similarity."""
    if kind == "dot":
        return dot(u, v)
    eps = mpf(COSINE_EPS)
    return dot(u, v) / (max(norm(u), eps) * max(norm(v), eps))


def _normalise(u: Sequence[Any], kind: str) -> list[Any]:
    if kind == "dot":
        return list(u)
    d = max(norm(u), mpf(COSINE_EPS))
    return [x / d for x in u]


def _candidates(
    query: Any,
    positive_key: Any,
    negative_keys: Any,
    negative_mode: str,
    key_log_q: Any,
    negative_log_q: Any,
) -> tuple[list[list[Any]], list[list[list[Any]]], list[list[Any]], list[int]]:
    """Per row: the query, its candidate keys, their log q and the positive's index."""
    qm, pk = mat(query), mat(positive_key)
    b = len(qm)
    klq = [mp.zero] * b if key_log_q is None else vec(key_log_q)
    if negative_keys is None:
        cands = [pk for _ in range(b)]
        lqs = [list(klq) for _ in range(b)]
        pos = list(range(b))
        return qm, cands, lqs, pos
    if negative_mode == "unpaired":
        neg = mat(negative_keys)
        negs = [neg for _ in range(b)]
    else:
        negs = [
            mat(x)
            for x in (negative_keys.tolist() if hasattr(negative_keys, "tolist") else negative_keys)
        ]
    mneg = len(negs[0])
    nlq = _broadcast_rows(negative_log_q, b, mneg)
    cands = [[pk[i], *negs[i]] for i in range(b)]
    lqs = [[klq[i], *nlq[i]] for i in range(b)]
    return qm, cands, lqs, [0] * b


def info_nce_logits(
    query: Any,
    positive_key: Any,
    negative_keys: Any = None,
    *,
    temperature: Any = 0.1,
    similarity_kind: str = "cosine",
    negative_mode: str = "unpaired",
    key_log_q: Any = None,
    negative_log_q: Any = None,
) -> tuple[list[list[Any]], list[int]]:
    """Rows of logits sim(q_i, c)/t - log q(c) and the positive's column in each row."""
    qm, cands, lqs, pos = _candidates(
        query, positive_key, negative_keys, negative_mode, key_log_q, negative_log_q
    )
    t = mpf(temperature)
    z = [
        [similarity(qi, c, similarity_kind) / t - lq for c, lq in zip(ci, li, strict=True)]
        for qi, ci, li in zip(qm, cands, lqs, strict=True)
    ]
    return z, pos


def info_nce(
    query: Any, positive_key: Any, negative_keys: Any = None, *, reduction: str = "mean", **kw: Any
) -> Any:
    """InfoNCE loss (mean over rows by default), keyword arguments as :func:`info_nce_logits`."""
    z, pos = info_nce_logits(query, positive_key, negative_keys, **kw)
    return _reduce([_row_loss(zi, p) for zi, p in zip(z, pos, strict=True)], reduction)


def _project(g: list[Any], u: Sequence[Any], kind: str) -> list[Any]:
    """Chain rule through u -> u / max(||u||, eps) (identity for dot similarity)."""
    if kind == "dot":
        return g
    nu = norm(u)
    if nu <= mpf(COSINE_EPS):
        return [x / mpf(COSINE_EPS) for x in g]
    uh = [x / nu for x in u]
    proj = dot(uh, g)
    return [(gx - proj * ux) / nu for gx, ux in zip(g, uh, strict=True)]


def info_nce_grad_query(
    query: Any,
    positive_key: Any,
    negative_keys: Any = None,
    *,
    temperature: Any = 0.1,
    similarity_kind: str = "cosine",
    negative_mode: str = "unpaired",
    key_log_q: Any = None,
    negative_log_q: Any = None,
) -> list[list[Any]]:
    r"""Analytic gradient of the mean InfoNCE loss w.r.t. the query:
    :math:`\frac{1}{Bt}\sum_c(P_{ic}-[c=\mathrm{pos}])\hat k_c`, then through the normalisation."""
    qm, cands, _, pos = _candidates(
        query, positive_key, negative_keys, negative_mode, key_log_q, negative_log_q
    )
    z, _ = info_nce_logits(
        query,
        positive_key,
        negative_keys,
        temperature=temperature,
        similarity_kind=similarity_kind,
        negative_mode=negative_mode,
        key_log_q=key_log_q,
        negative_log_q=negative_log_q,
    )
    t, b = mpf(temperature), len(qm)
    out = []
    for qi, ci, zi, p in zip(qm, cands, z, pos, strict=True):
        g = _row_grad(zi, p)
        keys = [_normalise(c, similarity_kind) for c in ci]
        dim = len(qi)
        gh = [mp.fsum(g[k] * keys[k][d] for k in range(len(keys))) / (t * b) for d in range(dim)]
        out.append(_project(gh, qi, similarity_kind))
    return out


def symmetric_info_nce(
    a: Any,
    b: Any,
    *,
    temperature: Any = 0.1,
    similarity_kind: str = "cosine",
    reduction: str = "mean",
) -> Any:
    """(L(a->b) + L(b->a))/2 on in-batch keys; the b->a direction uses the columns of the
    similarity matrix S_ij = sim(a_i, b_j)."""
    am, bm, t = mat(a), mat(b), mpf(temperature)
    s = [[similarity(x, y, similarity_kind) / t for y in bm] for x in am]
    nb = len(am)
    rows = [_row_loss(s[i], i) for i in range(nb)]
    cols = [_row_loss([s[r][i] for r in range(nb)], i) for i in range(nb)]
    return _reduce([(x + y) / 2 for x, y in zip(rows, cols, strict=True)], reduction)


def symmetric_info_nce_grad_a(
    a: Any, b: Any, *, temperature: Any = 0.1, similarity_kind: str = "cosine"
) -> list[list[Any]]:
    """Analytic gradient of the mean symmetric loss with respect to ``a``."""
    am, bm, t = mat(a), mat(b), mpf(temperature)
    nb = len(am)
    s = [[similarity(x, y, similarity_kind) / t for y in bm] for x in am]
    g_rows = [_row_grad(s[i], i) for i in range(nb)]  # d L_ab / d S_ij (times B)
    g_cols = [_row_grad([s[r][i] for r in range(nb)], i) for i in range(nb)]  # d L_ba / d S_ri
    bh = [_normalise(y, similarity_kind) for y in bm]
    out = []
    dim = len(am[0])
    for i in range(nb):
        # dL/dS_ij = (g_rows[i][j] + g_cols[j][i]) / (2 B)
        w = [(g_rows[i][jj] + g_cols[jj][i]) / (2 * nb * t) for jj in range(nb)]
        gh = [mp.fsum(w[jj] * bh[jj][d] for jj in range(nb)) for d in range(dim)]
        out.append(_project(gh, am[i], similarity_kind))
    return out


# ------------------------------------------------------------------------ exact enumeration


def compositions(total: int, parts: int) -> Iterator[tuple[int, ...]]:
    """All ``parts``-tuples of non-negative integers summing to ``total``."""
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in compositions(total - first, parts - 1):
            yield (first, *rest)


def _multinomial_weights(total: int, probs: Sequence[Any]) -> list[tuple[tuple[int, ...], Any]]:
    """(counts, multinomial pmf) over all compositions, with power tables for speed."""
    pw = [[mp.one] for _ in probs]
    for row, p in zip(pw, probs, strict=True):
        for _ in range(total):
            row.append(row[-1] * p)
    fact = [math.factorial(a) for a in range(total + 1)]
    out = []
    for cnt in compositions(total, len(probs)):
        coef = fact[total]
        for a in cnt:
            coef //= fact[a]
        w = mpf(coef)
        for row, a in zip(pw, cnt, strict=True):
            if a:
                w *= row[a]
        out.append((cnt, w))
    return out


def marginals(joint: Sequence[Sequence[Any]]) -> tuple[list[Any], list[Any]]:
    px = [mp.fsum(r) for r in joint]
    py = [mp.fsum(joint[a][b] for a in range(len(joint))) for b in range(len(joint[0]))]
    return px, py


def mutual_information(joint: Sequence[Sequence[Any]]) -> Any:
    r""":math:`I(X;Y)=\sum p(x,y)\log\frac{p(x,y)}{p(x)p(y)}`."""
    px, py = marginals(joint)
    return mp.fsum(
        p * mp.log(p / (px[a] * py[b]))
        for a, row in enumerate(joint)
        for b, p in enumerate(row)
        if p != 0
    )


def chi2_dependence(joint: Sequence[Sequence[Any]]) -> Any:
    r""":math:`\chi^2(P_{XY}\|P_XP_Y)=\sum p(x,y)^2/(p(x)p(y)) - 1`."""
    px, py = marginals(joint)
    return (
        mp.fsum(p * p / (px[a] * py[b]) for a, row in enumerate(joint) for b, p in enumerate(row))
        - 1
    )


def expected_infonce_estimate(
    joint: Sequence[Sequence[Any]], critic: Sequence[Sequence[Any]], k: int
) -> Any:
    r"""Exact :math:`E[I_{NCE}]` over :math:`K` i.i.d. pairs from ``joint``: the estimate
    :math:`\frac1K\sum_i\log\frac{e^{f(x_i,y_i)}}{\frac1K\sum_j e^{f(x_i,y_j)}}` is symmetric in
    the pairs, so it is summed over compositions of :math:`K` (multinomial weights)."""
    pairs = [(a, b) for a, row in enumerate(joint) for b, p in enumerate(row) if p != 0]
    probs = [joint[a][b] for a, b in pairs]
    ef = [[mp.exp(v) for v in row] for row in critic]
    kk = mpf(k)
    total = mp.zero
    for cnt, w in _multinomial_weights(k, probs):
        present = [(pairs[u], c) for u, c in enumerate(cnt) if c]
        val = mp.zero
        for (a, b), c in present:
            den = mp.fsum(c2 * ef[a][b2] for (_, b2), c2 in present) / kk
            val += c * (critic[a][b] - mp.log(den))
        total += w * val / kk
    return total


def optimal_critic_gap_exact(joint: Sequence[Sequence[Any]], k: int) -> Any:
    r"""Exact :math:`I - E[I_{NCE}(f^*)]` for :math:`f^*=\log r`, :math:`r=p(y|x)/p(y)`:
    :math:`E_x E_{y_{1..K}\sim p(y)}[S\log S]`, :math:`S=\frac1K\sum_j r(x,y_j)` (change of
    measure from the positive's :math:`p(y|x)` to :math:`p(y)`, using the symmetry in j)."""
    px, py = marginals(joint)
    r = [[joint[a][b] / (px[a] * py[b]) for b in range(len(py))] for a in range(len(px))]
    kk = mpf(k)
    total = mp.zero
    for cnt, w in _multinomial_weights(k, py):
        for a in range(len(px)):
            sv = mp.fsum(c * r[a][b] for b, c in enumerate(cnt) if c) / kk
            total += px[a] * w * sv * mp.log(sv)
    return total


def expected_log_mean(values: Sequence[Any], probs: Sequence[Any], n: int) -> Any:
    r"""Exact :math:`E\log\frac1n\sum_{i=1}^n W_i` for i.i.d. discrete :math:`W`."""
    nn = mpf(n)
    return mp.fsum(
        w * mp.log(mp.fsum(c * v for c, v in zip(cnt, values, strict=True) if c) / nn)
        for cnt, w in _multinomial_weights(n, probs)
    )


def sampled_softmax_exact(logits: Sequence[Any], q: Sequence[Any], m: int) -> tuple[Any, list[Any]]:
    r"""Exact biases of the importance-sampled softmax with ``m`` proposals from ``q``:
    :math:`E\log\hat Z - \log Z` and :math:`E\hat p_j - p_j`, where
    :math:`\hat Z=\frac1m\sum_i e^{o_{s_i}}/q_{s_i}` and
    :math:`\hat p_j = \frac{n_j e^{o_j}/q_j}{m\hat Z}` (:math:`n_j` draws of class j)."""
    o = vec(logits)
    qq = vec(q)
    zl = lse(o)
    p = [mp.exp(x - zl) for x in o]
    w = [pj / qj for pj, qj in zip(p, qq, strict=True)]  # e^{o_j}/(Z q_j)
    mm = mpf(m)
    loss = mp.zero
    grad = [mp.zero] * len(o)
    for cnt, wt in _multinomial_weights(m, qq):
        zh = mp.fsum(c * wj for c, wj in zip(cnt, w, strict=True) if c) / mm  # Z_hat / Z
        loss += wt * mp.log(zh)
        for jj, c in enumerate(cnt):
            if c:
                grad[jj] += wt * c * w[jj] / (mm * zh)
    return loss, [g - pj for g, pj in zip(grad, p, strict=True)]


def ranking_population(
    p: Sequence[Any], q: Sequence[Any], scores: Sequence[Any], k: int
) -> tuple[Any, list[Any]]:
    r"""Exact population ranking-NCE objective for one context and its gradient in ``scores``:
    :math:`J(s)=E_{y_0\sim p}E_{y_{1..K}\sim q}[-\bar s_{y_0}+\log\sum_{k=0}^K e^{\bar s_{y_k}}]`,
    :math:`\bar s_y = s_y-\log q_y` (noise tuples summed over compositions)."""
    pp, qq, s = vec(p), vec(q), vec(scores)
    sbar = [a - mp.log(b) for a, b in zip(s, qq, strict=True)]
    top = max(sbar)
    e = [mp.exp(x - top) for x in sbar]
    ncls = len(s)
    val = mp.zero
    grad = [mp.zero] * ncls
    for cnt, w in _multinomial_weights(k, qq):
        noise = mp.fsum(c * ec for c, ec in zip(cnt, e, strict=True) if c)
        for y0 in range(ncls):
            wt = w * pp[y0]
            den = e[y0] + noise
            val += wt * (mp.log(den) + top - sbar[y0])
            for c in range(ncls):
                num = cnt[c] * e[c] + (e[y0] if c == y0 else 0)
                grad[c] += wt * (num / den - (1 if c == y0 else 0))
    return val, grad


# ------------------------------------------------------------------ formal expansions, closed forms


def _series_exp(coeffs: Sequence[Any], order: int) -> list[Any]:
    """Power-series coefficients of ``exp(A(s))`` for ``A(s) = sum_r coeffs[r] s^r`` with
    ``coeffs[0] = 0``, by the recurrence ``b_n = (1/n) sum_{k=1}^n k a_k b_{n-k}`` (from
    ``B' = A' B``)."""
    a_ = list(coeffs) + [mp.zero] * (order + 1 - len(coeffs))
    out = [mp.one]
    for nn in range(1, order + 1):
        out.append(mp.fsum(kk * a_[kk] * out[nn - kk] for kk in range(1, nn + 1)) / nn)
    return out


def mean_central_moments(cumulants: Sequence[Any], n: Any, order: int = 6) -> list[Any]:
    r"""``E(\bar W_n - \mu)^r`` for ``r = 0..order``: the mean of ``n`` i.i.d. copies has
    cumulants :math:`\kappa_r n^{1-r}` (``cumulants[r - 2]`` is :math:`\kappa_r`, ``r >= 2``);
    the moments are ``r!`` times the coefficients of the moment generating function
    ``exp(cgf)``."""
    nn = mpf(n)
    cgf = [mp.zero, mp.zero] + [
        mpf(kap) * nn ** (1 - r) / mp.factorial(r) for r, kap in enumerate(cumulants, start=2)
    ]
    mgf = _series_exp(cgf[: order + 1], order)
    return [mp.factorial(r) * c for r, c in enumerate(mgf)]


def formal_log_mean(mu: Any, sigma2: Any, kappas: Sequence[Any], n: Any) -> Any:
    r"""Order-6 formal expansion of :math:`E\log\bar W_n`: the series
    :math:`\log(\mu + x) = \log\mu + \sum_r (-1)^{r-1}x^r/(r\mu^r)` against the central moments
    of the mean."""
    mom = mean_central_moments([sigma2, *kappas], n)
    m_ = mpf(mu)
    return mp.log(m_) + mp.fsum((-1) ** (r - 1) * mom[r] / (r * m_**r) for r in range(2, 7))


def formal_s_log_s(var: Any, kappas: Sequence[Any], k: Any) -> Any:
    r"""Order-6 formal expansion of :math:`E[S\log S]`, :math:`S` a mean of ``k`` copies with mean
    1: :math:`s\log s = (s-1) + \sum_{r\ge2}(-1)^r(s-1)^r/(r(r-1))` against the central moments
    of the mean."""
    mom = mean_central_moments([var, *kappas], k)
    return mp.fsum((-1) ** r * mom[r] / (r * (r - 1)) for r in range(2, 7))


def _weights(o: Sequence[Any], q: Sequence[Any]) -> tuple[list[Any], Any, list[Any]]:
    """``W_k = e^{o_k}/q_k``, ``Z`` and ``p = softmax(o)``."""
    ov, qv = vec(o), vec(q)
    z = mp.fsum(mp.exp(x) for x in ov)
    return [mp.exp(x) / y for x, y in zip(ov, qv, strict=True)], z, [mp.exp(x) / z for x in ov]


def ss_chi2(o: Sequence[Any], q: Sequence[Any]) -> Any:
    r""":math:`\chi^2(\mathrm{softmax}(o)\|q)`."""
    _, _, p = _weights(o, q)
    return mp.fsum(a * a / b for a, b in zip(p, vec(q), strict=True)) - 1


def ss_grad_leading(o: Sequence[Any], q: Sequence[Any], m: Any, j: int) -> Any:
    r""":math:`\frac{p_j}{m}(1 + \chi^2 - p_j/q_j)` (``j`` 0-based)."""
    _, _, p = _weights(o, q)
    return p[j] / mpf(m) * (1 + ss_chi2(o, q) - p[j] / vec(q)[j])


def ss_loss_delta(o: Sequence[Any], q: Sequence[Any], m: Any) -> Any:
    r"""First-order delta term :math:`-\mathrm{Var}_q W/(2m(E_qW)^2)`."""
    w_, _, _ = _weights(o, q)
    qv = vec(q)
    ew = mp.fsum(a * b for a, b in zip(qv, w_, strict=True))
    var = mp.fsum(a * (b - ew) ** 2 for a, b in zip(qv, w_, strict=True))
    return -var / (2 * mpf(m) * ew**2)


def ss_grad_delta(o: Sequence[Any], q: Sequence[Any], m: Any, j: int) -> Any:
    r"""Second-order delta term of :math:`E[\bar A/\bar B] - A/B`: with
    :math:`A = [s=j]W_s/Z`, :math:`B = W_s/Z`, :math:`s\sim q`,
    :math:`(E A\,\mathrm{Var} B - E B\,\mathrm{Cov}(A,B))/(m (E B)^3)`."""
    w_, z, _ = _weights(o, q)
    qv = vec(q)
    bb = [x / z for x in w_]
    aa = [bb[c_] if c_ == j else mp.zero for c_ in range(len(bb))]
    ea = mp.fsum(x * y for x, y in zip(qv, aa, strict=True))
    eb = mp.fsum(x * y for x, y in zip(qv, bb, strict=True))
    cov = mp.fsum(x * (y - ea) * (zz - eb) for x, y, zz in zip(qv, aa, bb, strict=True))
    var = mp.fsum(x * (y - eb) ** 2 for x, y in zip(qv, bb, strict=True))
    return (ea * var - eb * cov) / (mpf(m) * eb**3)


def ranking_tau_grad(s: Sequence[Any], lq: Sequence[Any], t: Any) -> Any:
    r"""Closed form :math:`(s_0 - \sum_k P_k s_k)/t^2`, :math:`P = \mathrm{softmax}(s/t - \log q)`
    (positive at index 0)."""
    tt = mpf(t)
    sv, lv = vec(s), vec(lq)
    z = [x / tt - y for x, y in zip(sv, lv, strict=True)]
    zl = lse(z)
    return (sv[0] - mp.fsum(mp.exp(x - zl) * y for x, y in zip(z, sv, strict=True))) / tt**2


def _sim_matrix(a: Any, b: Any, kind: str) -> list[list[Any]]:
    return [[similarity(x, y, kind) for y in mat(b)] for x in mat(a)]


def _row_term(row: Sequence[Any], pos: int, t: Any) -> Any:
    """``S_pos - sum_j softmax(row/t)_j row_j``."""
    z = [x / t for x in row]
    zl = lse(z)
    return row[pos] - mp.fsum(mp.exp(x - zl) * y for x, y in zip(z, row, strict=True))


def info_nce_tau_grad(a: Any, b: Any, t: Any, kind: str = "cosine") -> Any:
    r"""Closed form :math:`\frac{1}{Bt^2}\sum_i(S_{ii} - \sum_j P_{ij}S_{ij})` of
    :math:`\partial L/\partial t` (in-batch keys, mean over rows)."""
    s_ = _sim_matrix(a, b, kind)
    tt, nb = mpf(t), len(s_)
    return mp.fsum(_row_term(s_[r], r, tt) for r in range(nb)) / (nb * tt**2)


def symmetric_tau_grad(a: Any, b: Any, t: Any, kind: str = "cosine") -> Any:
    r"""Closed form of :math:`\partial L_{sym}/\partial t`: the mean of the row-wise and the
    column-wise terms of :func:`info_nce_tau_grad` on the same similarity matrix."""
    s_ = _sim_matrix(a, b, kind)
    tt, nb = mpf(t), len(s_)
    rows = mp.fsum(_row_term(s_[r], r, tt) for r in range(nb))
    cols = mp.fsum(_row_term([s_[r][c_] for r in range(nb)], c_, tt) for c_ in range(nb))
    return (rows + cols) / (2 * nb * tt**2)


# ----------------------------------------------------------------------------- precise legs


def _rng(cfg: CheckConfig, claim_id: str) -> Any:
    import numpy as np

    return np.random.default_rng(cfg.seed_for(claim_id))


def _fit_rate(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of log|y| against log x."""
    lx = [math.log(x) for x in xs]
    ly = [math.log(abs(y)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    num = sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True))
    den = sum((a - mx) ** 2 for a in lx)
    return num / den


def _simplex(rng: Any, size: int, conc: float = 1.0) -> list[Any]:
    """A Dirichlet draw renormalised at the working precision (sums to 1 in mp)."""
    v = vec(rng.dirichlet([conc] * size))
    tot = mp.fsum(v)
    return [x / tot for x in v]


def _random_joint(rng: Any, nx: int, ny: int, conc: float = 2.0) -> list[list[Any]]:
    flat = [mpf(v) for v in rng.dirichlet([conc] * (nx * ny))]
    tot = mp.fsum(flat)  # renormalise at the working precision (float rounding)
    return [[flat[a * ny + b] / tot for b in range(ny)] for a in range(nx)]


@PRECISE.register("infonce.log_k_ceiling")
def _leg_log_k(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.log_k_ceiling")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(25, 8)):
            kk = int(rng.integers(1, 11))
            scale = float(10 ** rng.uniform(-2, 3))
            f = mat(rng.standard_normal((kk, kk)) * scale)
            logk = mp.log(kk)
            est = logk - mp.fsum(_row_loss(f[a], a) for a in range(kk)) / kk
            tally.holds(logk - est, f"case {case} (K={kk}, scale={scale:.3g})")
            # tightness: f_ii = L, f_ij = 0  =>  log K - I_NCE = log(1 + (K-1) e^{-L})
            big = mpf(float(rng.uniform(0, 60)))
            diag = [[big if a == b else mp.zero for b in range(kk)] for a in range(kk)]
            est0 = logk - mp.fsum(_row_loss(diag[a], a) for a in range(kk)) / kk
            tally.close(logk - est0, mp.log1p((kk - 1) * mp.exp(-big)), f"case {case} tightness")
    return tally.result(
        "I_NCE <= log K for random critics (50 digits); gap log(1+(K-1)e^-L) for a diagonal critic"
    )


@PRECISE.register("infonce.log_k_ceiling_row")
def _leg_log_k_row(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.log_k_ceiling_row")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(20, 6)):
            kk = int(rng.integers(1, 11))
            scale = float(10 ** rng.uniform(-2, 3))
            f = mat(rng.standard_normal((kk, kk)) * scale)
            logk = mp.log(kk)
            for a in range(kk):  # summand = f_aa - (lse(f_a) - log K)
                summand = f[a][a] - (lse(f[a]) - logk)
                tally.holds(logk - summand, f"case {case} row {a} (K={kk}, scale={scale:.3g})")
    return tally.result("every InfoNCE summand <= log K for random critics (50 digits)")


_MI_JOINT_SHAPES = ((2, 2, 4), (2, 3, 3), (3, 3, 2))


def _critics(rng: Any, joint: list[list[Any]]) -> list[tuple[str, list[list[Any]]]]:
    import numpy as np

    px, py = marginals(joint)
    nx, ny = len(px), len(py)
    fstar = _optimal_critic(joint)
    shift = rng.standard_normal(nx) * 3
    out = [
        ("f*", fstar),
        ("2 f*", [[2 * v for v in row] for row in fstar]),
        ("f* + c(x)", [[v + mpf(shift[a]) for v in row] for a, row in enumerate(fstar)]),
    ]
    for u in range(2):
        scale = float(10 ** rng.uniform(-1, 1))
        out.append(
            (
                f"random {u} (scale {scale:.2g})",
                mat(np.asarray(rng.standard_normal((nx, ny))) * scale),
            )
        )
    return out


def _optimal_critic(joint: list[list[Any]]) -> list[list[Any]]:
    px, py = marginals(joint)
    return [[mp.log(joint[a][b] / (px[a] * py[b])) for b in range(len(py))] for a in range(len(px))]


@functools.lru_cache(maxsize=64)
def _expected_estimate_cached(
    joint_t: tuple[tuple[str, ...], ...], critic_t: tuple[tuple[str, ...], ...], k: int, dps: int
) -> str:
    with workdps(dps):
        joint = [[mpf(v) for v in r] for r in joint_t]
        critic = [[mpf(v) for v in r] for r in critic_t]
        return mp.nstr(expected_infonce_estimate(joint, critic, k), dps)


def expected_estimate(joint: list[list[Any]], critic: list[list[Any]], k: int) -> Any:
    """Cached :func:`expected_infonce_estimate` (keyed by the exact decimal inputs)."""
    d = mp.dps
    key_j = tuple(tuple(mp.nstr(v, d + 5) for v in r) for r in joint)
    key_c = tuple(tuple(mp.nstr(v, d + 5) for v in r) for r in critic)
    return mpf(_expected_estimate_cached(key_j, key_c, k, d + 5))


@PRECISE.register("infonce.mi_lower_bound")
def _leg_mi_bound(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.mi_lower_bound")
    tally = Tally("precise", rtol=1e-35, atol=1e-35, dps=cfg.dps)
    shapes = _MI_JOINT_SHAPES if not cfg.quick else _MI_JOINT_SHAPES[:2]
    worst_gap = None
    with workdps(cfg.dps):
        for nx, ny, kk in shapes:
            joint = _random_joint(rng, nx, ny)
            info = mutual_information(joint)
            crit = _critics(rng, joint)
            if cfg.quick:
                crit = crit[:1] + crit[3:4]
            base = None
            for name, f in crit:
                est = expected_infonce_estimate(joint, f, kk)
                where = f"{nx}x{ny} joint, K={kk}, critic {name}"
                tally.holds(info - est, where)
                worst_gap = info - est if worst_gap is None else min(worst_gap, info - est)
                if name == "f*":
                    base = est
                if name == "f* + c(x)" and base is not None:
                    tally.close(est, base, where + " (row shift invariance)")
    return tally.result(
        "exact E[I_NCE] by enumeration over compositions of K pairs vs I(X;Y) at 50 digits",
        smallest_slack=float(worst_gap) if worst_gap is not None else None,
    )


@PRECISE.register("infonce.optimal_critic_gap_change_of_measure")
def _leg_change_of_measure(cfg: CheckConfig) -> LegResult:
    """Both sides by independent enumerations: I - E[I_NCE(f*)] over K pairs from the joint, and
    E_x E_{p(y)^K}[S log S] over K labels from the marginal."""
    rng = _rng(cfg, "infonce.optimal_critic_gap_change_of_measure")
    tally = Tally("precise", rtol=1e-35, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(4, 2)):
            nx, ny = (2, 2) if case % 2 == 0 else (2, 3)
            joint = _random_joint(rng, nx, ny)
            info, fstar = mutual_information(joint), _optimal_critic(joint)
            for kk in (1, 2, 3) if cfg.quick else (1, 2, 3, 4):
                lhs = info - expected_estimate(joint, fstar, kk)
                tally.close(lhs, optimal_critic_gap_exact(joint, kk), f"{nx}x{ny}, K={kk}")
    return tally.result("I - E[I_NCE(f*)] vs E_x E[S log S], both by exact enumeration")


@PRECISE.register("infonce.optimal_critic_ratio_mean_one")
def _leg_ratio_mean(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.optimal_critic_ratio_mean_one")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(12, 4)):
            nx, ny = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            joint = _random_joint(rng, nx, ny)
            px, py = marginals(joint)
            for a in range(nx):
                got = mp.fsum(py[b] * joint[a][b] / (px[a] * py[b]) for b in range(ny))
                tally.close(got, 1, f"case {case} ({nx}x{ny}) x={a}")
    return tally.result("E_{p(y)} r(x, .) = 1 on random joints at 50 digits")


@PRECISE.register("infonce.optimal_critic_chi2_average")
def _leg_chi2_average(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.optimal_critic_chi2_average")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(12, 4)):
            nx, ny = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            joint = _random_joint(rng, nx, ny)
            px, py = marginals(joint)
            avg = mp.zero
            for a in range(nx):
                r = [joint[a][b] / (px[a] * py[b]) for b in range(ny)]
                mean = mp.fsum(py[b] * r[b] for b in range(ny))
                avg += px[a] * mp.fsum(py[b] * (r[b] - mean) ** 2 for b in range(ny))
            tally.close(avg, chi2_dependence(joint), f"case {case} ({nx}x{ny})")
    return tally.result("E_x Var_{p(y)} r vs chi^2(P_XY || P_X P_Y) at 50 digits")


def _gap_joint() -> list[list[Any]]:
    vals = [[6, 2, 2], [2, 5, 3], [1, 2, 7]]
    tot = sum(sum(r) for r in vals)
    return [[mpf(v) / tot for v in r] for r in vals]


@functools.lru_cache(maxsize=16)
def _gap_table(ks: tuple[int, ...], dps: int) -> tuple[str, str, tuple[str, ...]]:
    with workdps(dps):
        joint = _gap_joint()
        chi = chi2_dependence(joint)
        info = mutual_information(joint)
        gaps = tuple(mp.nstr(optimal_critic_gap_exact(joint, kk), dps) for kk in ks)
        return mp.nstr(info, dps), mp.nstr(chi, dps), gaps


@PRECISE.register("infonce.optimal_critic_gap")
def _leg_gap(cfg: CheckConfig) -> LegResult:
    ks = (6, 12, 24) if cfg.quick else (6, 12, 24, 48)
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    with workdps(cfg.dps):
        _, chi_s, gaps_s = _gap_table(ks, cfg.dps)
        chi = mpf(chi_s)
        gaps = [mpf(g) for g in gaps_s]
        resid = []
        for kk, g in zip(ks, gaps, strict=True):
            pred = mpf(float(theory.optimal_critic_gap(float(chi), kk)))
            tally.holds(g, f"K={kk}: gap >= 0")
            resid.append(float(g - chi / (2 * kk)))
            # the prediction function agrees with the mp closed form to double precision
            if abs(pred - chi / (2 * kk)) > 1e-15 * chi:
                tally.fail(f"optimal_critic_gap({float(chi)}, {kk}) = {float(pred)} != chi2/2K")
        kgap = [float(kk * g) for kk, g in zip(ks, gaps, strict=True)]
        rate = _fit_rate(ks[-3:], resid[-3:])
        dev = [abs(v - float(chi) / 2) for v in kgap]
        if not all(b < a for a, b in itertools.pairwise(dev)):
            tally.fail(f"|K gap - chi2/2| not decreasing: {dev}")
        tally.holds(0.35 - abs(rate + 2), f"fitted residual rate {rate:.3f} vs -2")
    return tally.result(
        "exact gap E_x E_q[S log S] (compositions over K labels, 3x3 joint; equal to "
        "I - E[I_NCE(f*)] by optimal_critic_gap_change_of_measure) vs chi^2/(2K); residual "
        "rate fitted on the last three K",
        chi2=float(chi),
        K=list(ks),
        K_times_gap=kgap,
        residuals=resid,
        fitted_rate=rate,
        predicted_rate=-2,
    )


def _random_cumulants(rng: Any) -> tuple[Any, list[Any]]:
    return mpf(float(rng.uniform(0.1, 2))), [mpf(float(x)) for x in rng.normal(size=4)]


def _formal_rate_leg(cfg: CheckConfig, cid: str, formal: Any, lead: Any, order: int) -> LegResult:
    """``(formal - lead) * K**order`` settles as K grows (its successive changes shrink ~10x per
    decade of K) at K = 10^3..10^6 for random cumulants: the remainder is O(K^-order). A
    remainder of lower order would make the changes grow ~10x per decade."""
    rng = _rng(cfg, cid)
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(8, 3)):
            var, kap = _random_cumulants(rng)
            mu_ = mpf(float(rng.uniform(0.5, 3)))
            scaled = [
                (formal(mu_, var, kap, kk) - lead(mu_, var, kap, kk)) * kk**order
                for kk in (10**3, 10**4, 10**5, 10**6)
            ]
            steps = [abs(b - a) for a, b in itertools.pairwise(scaled)]
            for u in range(len(steps) - 1):
                tally.holds(
                    steps[u] / 5 - steps[u + 1], f"case {case}: K^{order} x remainder, decade {u}"
                )
    return tally.result(
        f"formal expansion (mpmath: cgf -> mgf power series) minus the stated terms, times "
        f"K^{order}, settles at K = 1e3..1e6 (remainder O(K^-{order}))"
    )


@PRECISE.register("infonce.optimal_critic_gap_leading_term")
def _leg_gap_leading(cfg: CheckConfig) -> LegResult:
    return _formal_rate_leg(
        cfg,
        "infonce.optimal_critic_gap_leading_term",
        lambda mu_, var, kap, kk: formal_s_log_s(var, kap, kk),
        lambda mu_, var, kap, kk: var / (2 * kk),
        2,
    )


@PRECISE.register("infonce.delta_method_series")
def _leg_delta_series(cfg: CheckConfig) -> LegResult:
    def lead(mu_: Any, var: Any, kap: Any, nn: Any) -> Any:
        return (
            mp.log(mu_)
            - var / (2 * nn * mu_**2)
            + (kap[0] / (3 * mu_**3) - 3 * var**2 / (4 * mu_**4)) / nn**2
        )

    return _formal_rate_leg(
        cfg,
        "infonce.delta_method_series",
        lambda mu_, var, kap, nn: formal_log_mean(mu_, var, kap, nn),
        lead,
        3,
    )


_W_VALUES = ("0.5", "1", "2.5")
_W_PROBS = ("0.3", "0.5", "0.2")


@functools.lru_cache(maxsize=16)
def _log_mean_table(ns: tuple[int, ...], dps: int) -> tuple[str, ...]:
    with workdps(dps):
        vals, probs = vec(_W_VALUES), vec(_W_PROBS)
        return tuple(mp.nstr(expected_log_mean(vals, probs, nn), dps) for nn in ns)


def _moments(vals: Sequence[Any], probs: Sequence[Any]) -> tuple[Any, Any, Any]:
    mu_ = mp.fsum(p * v for p, v in zip(probs, vals, strict=True))
    s2 = mp.fsum(p * (v - mu_) ** 2 for p, v in zip(probs, vals, strict=True))
    k3 = mp.fsum(p * (v - mu_) ** 3 for p, v in zip(probs, vals, strict=True))
    return mu_, s2, k3


@PRECISE.register("infonce.delta_method_log_mean")
def _leg_delta(cfg: CheckConfig) -> LegResult:
    ns = (4, 8, 16) if cfg.quick else (4, 8, 16, 32, 64)
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    with workdps(cfg.dps):
        vals, probs = vec(_W_VALUES), vec(_W_PROBS)
        mu_, s2, k3 = _moments(vals, probs)
        exact = [mpf(v) for v in _log_mean_table(ns, cfg.dps)]
        res1, res2 = [], []
        for nn, e in zip(ns, exact, strict=True):
            first = mp.log(mu_) - s2 / (2 * nn * mu_**2)
            second = first + (k3 / (3 * mu_**3) - 3 * s2**2 / (4 * mu_**4)) / nn**2
            res1.append(float(e - first))
            res2.append(float(e - second))
            # the prediction function (derivations) agrees with the closed form
            pred = float(theory.delta_method_log_mean(float(mu_), float(s2), float(k3), nn))
            if abs(pred - float(second)) > 1e-13:
                tally.fail(f"delta_method_log_mean(..., n={nn}) = {pred} != {float(second)}")
            p1 = float(theory.delta_method_log_mean(float(mu_), float(s2), float(k3), nn, order=1))
            if abs(p1 - float(first)) > 1e-13:
                tally.fail(f"delta_method_log_mean(order=1, n={nn}) = {p1} != {float(first)}")
        rate2 = _fit_rate(ns[-3:], res2[-3:])
        rate1 = _fit_rate(ns[-3:], res1[-3:])
        tally.holds(0.35 - abs(rate2 + 3), f"second-order residual rate {rate2:.3f} vs -3")
        if len(ns) >= 5:  # the first-order residual changes sign below n ~ 16 for this W
            tally.holds(0.35 - abs(rate1 + 2), f"first-order residual rate {rate1:.3f} vs -2")
    return tally.result(
        "exact E log mean over compositions of n (W in {0.5, 1, 2.5}) vs the delta expansion; "
        "fitted residual rates on the last three n",
        n=list(ns),
        residual_order2=res2,
        residual_order1=res1,
        fitted_rate_order2=rate2,
        fitted_rate_order1=rate1,
        predicted_rates=[-3, -2],
    )


def _random_w(rng: Any) -> tuple[list[Any], list[Any]]:
    size = int(rng.integers(1, 4))
    return vec(10 ** rng.uniform(-1, 1, size=size)), _simplex(rng, size)


@PRECISE.register("infonce.delta_method_jensen")
def _leg_delta_jensen(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.delta_method_jensen")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        ns = (4, 8, 16) if cfg.quick else (4, 8, 16, 32, 64)
        mu_ = _moments(vec(_W_VALUES), vec(_W_PROBS))[0]
        for nn, e in zip(ns, _log_mean_table(ns, cfg.dps), strict=True):
            tally.holds(mp.log(mu_) - mpf(e), f"W in {{0.5, 1, 2.5}}, n={nn}")
        for case in range(cfg.points(8, 3)):
            vals, probs = _random_w(rng)
            mu_ = mp.fsum(p * v for p, v in zip(probs, vals, strict=True))
            for nn in (1, 2, 3, 5):
                e = expected_log_mean(vals, probs, nn)
                tally.holds(mp.log(mu_) - e, f"case {case} (N={len(vals)}), n={nn}")
    return tally.result("exact E log mean(W_1..W_n) <= log E W (compositions of n, 50 digits)")


@PRECISE.register("infonce.delta_method_monotone")
def _leg_delta_monotone(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.delta_method_monotone")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        ns = (4, 8, 16) if cfg.quick else (4, 8, 16, 32, 64)
        exact = [mpf(v) for v in _log_mean_table(ns, cfg.dps)]
        for (na, a), (nb, b) in itertools.pairwise(zip(ns, exact, strict=True)):
            tally.holds(b - a, f"W in {{0.5, 1, 2.5}}: n={na} -> {nb}")
        for case in range(cfg.points(8, 3)):
            vals, probs = _random_w(rng)
            prev = None
            for nn in range(1, 7):
                e = expected_log_mean(vals, probs, nn)
                if prev is not None:
                    tally.holds(e - prev, f"case {case} (N={len(vals)}): n={nn - 1} -> {nn}")
                prev = e
    return tally.result("exact E log mean(W_1..W_n) non-decreasing in consecutive n (50 digits)")


_SS_CASES = (
    (("1.0", "0.0", "-1.0"), ("0.3333333333333333", "0.3333333333333333", "0.3333333333333334")),
    (("2.0", "0.5", "-0.5"), ("0.2", "0.3", "0.5")),
    (("0.3", "-0.2", "1.1"), ("0.4", "0.25", "0.35")),
)


@functools.lru_cache(maxsize=64)
def _ss_table(case: int, m: int, dps: int) -> tuple[str, tuple[str, ...]]:
    o, q = _SS_CASES[case]
    with workdps(dps):
        loss, grad = sampled_softmax_exact(vec(o), vec(q), m)
        return mp.nstr(loss, dps), tuple(mp.nstr(g, dps) for g in grad)


def _ss_chi2(o: Sequence[Any], q: Sequence[Any]) -> tuple[list[Any], Any]:
    ov, qv = vec(o), vec(q)
    zl = lse(ov)
    p = [mp.exp(x - zl) for x in ov]
    return p, mp.fsum(a * a / b for a, b in zip(p, qv, strict=True)) - 1


def _ss_ms(cfg: CheckConfig) -> tuple[int, ...]:
    return (6, 12, 24) if cfg.quick else (6, 12, 24, 48)


@PRECISE.register("infonce.sampled_softmax_loss_bias")
def _leg_ss_loss(cfg: CheckConfig) -> LegResult:
    ms = _ss_ms(cfg)
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    rates = []
    with workdps(cfg.dps):
        for case, (o, q) in enumerate(_SS_CASES):
            p, chi = _ss_chi2(o, q)
            res = []
            for m_ in ms:
                bias = mpf(_ss_table(case, m_, cfg.dps)[0])
                pred = float(
                    theory.sampled_softmax_loss_bias(
                        [float(x) for x in p], [float(x) for x in vec(q)], m_
                    )
                )
                if abs(pred + float(chi) / (2 * m_)) > 1e-14:
                    tally.fail(f"sampled_softmax_loss_bias(m={m_}) = {pred} != -chi2/2m")
                res.append(float(bias + chi / (2 * m_)))
                tally.holds(-bias, f"case {case}, m={m_}: E log Z_hat <= log Z (Jensen)")
            rate = _fit_rate(ms[-3:], res[-3:])
            rates.append(rate)
            tally.holds(0.35 - abs(rate + 2), f"case {case}: residual rate {rate:.3f} vs -2")
    return tally.result(
        "exact E log Z_hat - log Z over compositions of m proposals (C=3) vs -chi^2/(2m); "
        "residual rate fitted on the last three m",
        m=list(ms),
        fitted_rates=rates,
        predicted_rate=-2,
    )


@PRECISE.register("infonce.sampled_softmax_grad_bias")
def _leg_ss_grad(cfg: CheckConfig) -> LegResult:
    ms = _ss_ms(cfg)
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    rates = []
    with workdps(cfg.dps):
        for case, (o, q) in enumerate(_SS_CASES):
            p, chi = _ss_chi2(o, q)
            qv = vec(q)
            res = []
            for m_ in ms:
                grad = [mpf(g) for g in _ss_table(case, m_, cfg.dps)[1]]
                closed = [p[a] / m_ * (1 + chi - p[a] / qv[a]) for a in range(len(p))]
                for a in range(len(p)):
                    pred = float(
                        theory.sampled_softmax_grad_bias(
                            [float(x) for x in p], [float(x) for x in qv], m_, a
                        )
                    )
                    if abs(pred - float(closed[a])) > 1e-14:
                        tally.fail(
                            f"sampled_softmax_grad_bias(j={a}, m={m_}) = {pred} != {float(closed[a])}"
                        )
                # exact E p_hat sums to 1: the biases sum to 0
                tally.close(mp.fsum(grad), 0, f"case {case}, m={m_}: sum of biases")
                res.append(max(abs(float(g - c)) for g, c in zip(grad, closed, strict=True)))
            if max(res) == 0:  # q = p up to rounding: nothing to fit
                continue
            rate = _fit_rate(ms[-3:], res[-3:])
            rates.append(rate)
            tally.holds(0.35 - abs(rate + 2), f"case {case}: residual rate {rate:.3f} vs -2")
    return tally.result(
        "exact E p_hat - p over compositions of m proposals (C=3) vs (p_j/m)(1+chi^2-p_j/q_j); "
        "max-over-classes residual rate fitted on the last three m",
        m=list(ms),
        fitted_rates=rates,
        predicted_rate=-2,
    )


def _ss_random(rng: Any) -> tuple[list[Any], list[Any], int]:
    ncls = int(rng.integers(2, 6))
    return vec(rng.standard_normal(ncls) * 2), _simplex(rng, ncls, 3.0), int(rng.integers(1, 50))


@PRECISE.register("infonce.sampled_softmax_expansion")
def _leg_ss_expansion(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.sampled_softmax_expansion")
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(16, 5)):
            o, q, m_ = _ss_random(rng)
            tally.close(ss_loss_delta(o, q, m_), -ss_chi2(o, q) / (2 * m_), f"case {case}")
    return tally.result("-Var_q(W)/(2m (E_q W)^2) vs -chi^2(p||q)/(2m), random o, q, m")


@PRECISE.register("infonce.sampled_softmax_grad_expansion")
def _leg_ss_grad_expansion(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.sampled_softmax_grad_expansion")
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(12, 4)):
            o, q, m_ = _ss_random(rng)
            for a in range(len(o)):
                tally.close(
                    ss_grad_delta(o, q, m_, a), ss_grad_leading(o, q, m_, a), f"case {case} j={a}"
                )
    return tally.result(
        "second-order delta term of E[A/B] (moments of A, B under q) vs "
        "(p_j/m)(1 + chi^2 - p_j/q_j), random o, q, m"
    )


@PRECISE.register("infonce.sampled_softmax_unbiased_iff_q_eq_p")
def _leg_ss_if(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.sampled_softmax_unbiased_iff_q_eq_p")
    tally = Tally("precise", rtol=0, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(12, 4)):
            o, _, m_ = _ss_random(rng)
            p = softmax(o)
            for a in range(len(o)):
                tally.close(ss_grad_leading(o, p, m_, a), 0, f"case {case}, q = p, j={a}")
    return tally.result("leading gradient bias at q = p is 0 for every class (50 digits)")


@PRECISE.register("infonce.sampled_softmax_unbiased_only_if")
def _leg_ss_only_if(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.sampled_softmax_unbiased_only_if")
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(12, 4)):
            o, q, m_ = _ss_random(rng)
            _, _, p = _weights(o, q)
            bias = [ss_grad_leading(o, q, m_, a) for a in range(len(o))]
            weighted = mp.fsum(m_ * qa * ba / pa for qa, ba, pa in zip(q, bias, p, strict=True))
            pearson = mp.fsum((pa - qa) ** 2 / qa for pa, qa in zip(p, q, strict=True))
            gap = max(pa - qa for pa, qa in zip(p, q, strict=True))  # some p_l > q_l
            where = f"case {case} (C={len(o)}, max(p - q) = {float(gap):.3g})"
            tally.holds(gap, where + ": some p_l > q_l")
            tally.holds(weighted, where + ": sum_k (m q_k/p_k) b_k > 0")
            tally.close(weighted, pearson, where + ": = sum (p - q)^2/q")
            tally.holds(max(abs(x) for x in bias) - mpf("1e-30"), where + ": some b_k != 0")
    return tally.result(
        "random q != p: sum_k (m q_k/p_k) b_k = sum (p - q)^2/q > 0 and some leading bias "
        "is nonzero (50 digits)"
    )


def _ss_exact_leg(cfg: CheckConfig, cid: str, which: str) -> LegResult:
    rng = _rng(cfg, cid)
    tally = Tally("precise", rtol=0, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(6, 2)):
            o, _, _ = _ss_random(rng)
            o = o[:4]
            p = softmax(o)
            for m_ in (1, 2, 3, 5):
                loss, grad = sampled_softmax_exact(o, p, m_)
                if which == "loss":
                    tally.close(loss, 0, f"case {case}, q = p, m={m_}: loss bias")
                else:
                    for a, g in enumerate(grad):
                        tally.close(g, 0, f"case {case}, q = p, m={m_}: grad bias {a}")
    return tally.result(f"exact finite-m {which} bias at q = p (m = 1, 2, 3, 5; 50 digits)")


@PRECISE.register("infonce.sampled_softmax_exact_loss_at_q_eq_p")
def _leg_ss_exact_loss(cfg: CheckConfig) -> LegResult:
    return _ss_exact_leg(cfg, "infonce.sampled_softmax_exact_loss_at_q_eq_p", "loss")


@PRECISE.register("infonce.sampled_softmax_exact_grad_at_q_eq_p")
def _leg_ss_exact_grad(cfg: CheckConfig) -> LegResult:
    return _ss_exact_leg(cfg, "infonce.sampled_softmax_exact_grad_at_q_eq_p", "gradient")


def _ranking_cases(cfg: CheckConfig, cid: str) -> Iterator[tuple[str, Any, Any, Any, int, Any]]:
    rng = _rng(cfg, cid)
    for case in range(cfg.points(12, 4)):
        ncls = int(rng.integers(2, 5))
        kk = int(rng.integers(1, 4))
        p = _simplex(rng, ncls)
        q = _simplex(rng, ncls)
        c0 = mpf(float(rng.normal() * 3))
        star = [mp.log(a) + c0 for a in p]
        yield f"case {case} (C={ncls}, K={kk})", rng, p, q, kk, star


@PRECISE.register("infonce.ranking_nce_consistency")
def _leg_ranking(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=1e-35, atol=1e-35, dps=cfg.dps)
    with workdps(cfg.dps):
        for where, rng, p, q, kk, star in _ranking_cases(cfg, "infonce.ranking_nce_consistency"):
            j0, g0 = ranking_population(p, q, star, kk)
            for a, g in enumerate(g0):
                tally.close(g, 0, where + f": dJ/ds_{a} at s*")
            d = rng.standard_normal(len(p))
            dd = mp.fsum(g * mpf(x) for g, x in zip(g0, d, strict=True))
            tally.close(dd, 0, where + ": directional derivative at s*")
            j_shift, _ = ranking_population(p, q, [x + 5 for x in star], kk)
            tally.close(j_shift, j0, where + ": J(s* + c) = J(s*)")
    return tally.result(
        "exact population objective (compositions of the K noise labels): zero gradient and "
        "zero directional derivative at s* = log p + c, invariance in c"
    )


@PRECISE.register("infonce.ranking_nce_minimiser")
def _leg_ranking_min(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=1e-35, atol=1e-35, dps=cfg.dps)
    min_rise = None
    with workdps(cfg.dps):
        for where, rng, p, q, kk, star in _ranking_cases(cfg, "infonce.ranking_nce_minimiser"):
            j0, _ = ranking_population(p, q, star, kk)
            for u in range(3):
                d = rng.standard_normal(len(p)) * float(10 ** rng.uniform(-2, 0.5))
                d = d - d.mean()
                j1, _ = ranking_population(
                    p, q, [x + mpf(v) for x, v in zip(star, d, strict=True)], kk
                )
                rise = j1 - j0
                tally.holds(rise, where + f": J(s* + d_{u}) >= J(s*)")
                rel = float(rise / float((d**2).sum()))
                min_rise = rel if min_rise is None else min(min_rise, rel)
    return tally.result(
        "exact population objective at s* = log p + c and at random perturbations (50 digits)",
        min_rise_over_norm2=min_rise,
    )


@PRECISE.register("infonce.logit_gradient")
def _leg_logit_grad(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.logit_gradient")
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(8, 3)):
            nc = int(rng.integers(1, 6))
            t = float(10 ** rng.uniform(-1, 1))
            s = (rng.standard_normal(nc) * 3).tolist()
            lq = (rng.standard_normal(nc)).tolist() if case % 2 else None
            closed = [
                g / mpf(t)
                for g in ranking_nce_grad(
                    [[mpf(x) / mpf(t) for x in s]], None if lq is None else [lq]
                )[0]
            ]
            for a in range(nc):

                def fa(x: Any, a: int = a, s: Any = s, t: float = t, lq: Any = lq) -> Any:
                    row = [mpf(v) for v in s]
                    row[a] = x
                    return ranking_nce([[v / mpf(t) for v in row]], None if lq is None else [lq])

                tally.close(closed[a], mp.diff(fa, mpf(s[a])), f"case {case}, candidate {a}")
    return tally.result("(softmax - onehot)/t vs mpmath.diff of the oracle (with/without log q)")


@PRECISE.register("infonce.ranking_nce_temperature_gradient")
def _leg_ranking_tau(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.ranking_nce_temperature_gradient")
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(12, 4)):
            nc = int(rng.integers(1, 7))
            t = mpf(float(10 ** rng.uniform(-1, 1)))
            s = vec(rng.standard_normal(nc) * 3)
            lq = vec(rng.standard_normal(nc)) if case % 2 else [mp.zero] * nc

            def ft(tt: Any, s: Any = s, lq: Any = lq) -> Any:
                return ranking_nce([[x / tt for x in s]], [lq])

            tally.close(ranking_tau_grad(s, lq, t), mp.diff(ft, t), f"case {case} (n={nc})")
    return tally.result("(s_1 - sum_k P_k s_k)/t^2 vs mpmath.diff of the oracle in t")


def _embeddings(rng: Any, scale: float = 1.0) -> tuple[Any, Any, int, int]:
    b, d = int(rng.integers(1, 5)), int(rng.integers(1, 4))
    return rng.standard_normal((b, d)) * scale, rng.standard_normal((b, d)) * scale, b, d


def _query_grad_leg(cfg: CheckConfig, cid: str, kind: str) -> LegResult:
    """In-batch keys: the oracle's analytic query gradient (the closed form) vs mpmath.diff of
    the oracle value; dot similarity with key log q, cosine without."""
    rng = _rng(cfg, cid)
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(6, 2)):
            q, k, b, d = _embeddings(rng)
            kw: dict[str, Any] = {
                "temperature": float(10 ** rng.uniform(-1, 0.5)),
                "similarity_kind": kind,
            }
            if kind == "dot":
                kw["key_log_q"] = rng.standard_normal(b).tolist()
            closed = info_nce_grad_query(q, k, **kw)
            qm = mat(q)
            for a in range(b):
                for dd in range(d):

                    def fq(
                        x: Any, a: int = a, dd: int = dd, qm: Any = qm, k: Any = k, kw: Any = kw
                    ) -> Any:
                        qq = [list(r) for r in qm]
                        qq[a][dd] = x
                        return info_nce(qq, k, **kw)

                    tally.close(closed[a][dd], mp.diff(fq, qm[a][dd]), f"case {case} q[{a},{dd}]")
    return tally.result(f"analytic query gradient ({kind}, in-batch) vs mpmath.diff of the oracle")


@PRECISE.register("infonce.query_gradient")
def _leg_query_grad(cfg: CheckConfig) -> LegResult:
    return _query_grad_leg(cfg, "infonce.query_gradient", "dot")


@PRECISE.register("infonce.query_gradient_cosine")
def _leg_query_grad_cos(cfg: CheckConfig) -> LegResult:
    return _query_grad_leg(cfg, "infonce.query_gradient_cosine", "cosine")


@PRECISE.register("infonce.symmetric_mean_of_directions")
def _leg_symmetric(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "infonce.symmetric_mean_of_directions")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(8, 3)):
            b, d = int(rng.integers(1, 5)), int(rng.integers(1, 4))
            kind = ("cosine", "dot")[case % 2]
            t = float(10 ** rng.uniform(-1, 1))
            a_ = rng.standard_normal((b, d))
            b_ = rng.standard_normal((b, d))
            sym = symmetric_info_nce(a_, b_, temperature=t, similarity_kind=kind)
            ab = info_nce(a_, b_, temperature=t, similarity_kind=kind)
            ba = info_nce(b_, a_, temperature=t, similarity_kind=kind)
            tally.close(sym, (ab + ba) / 2, f"case {case} ({kind}) value")
            if case < 3:
                g = symmetric_info_nce_grad_a(a_, b_, temperature=t, similarity_kind=kind)
                am = mat(a_)
                for i_ in range(b):
                    for dd in range(d):

                        def fa(
                            x: Any,
                            i_: int = i_,
                            dd: int = dd,
                            am: Any = am,
                            b_: Any = b_,
                            t: float = t,
                            kind: str = kind,
                        ) -> Any:
                            aa = [list(r) for r in am]
                            aa[i_][dd] = x
                            return symmetric_info_nce(aa, b_, temperature=t, similarity_kind=kind)

                        gt = Tally("precise", rtol=1e-30, atol=1e-30)
                        ok = gt.close(g[i_][dd], mp.diff(fa, am[i_][dd]), "")
                        if not ok:
                            tally.fail(f"case {case}: symmetric gradient a[{i_},{dd}] {gt.failure}")
    return tally.result(
        "column-wise b->a direction vs the oracle's info_nce(b, a); analytic "
        "gradient in a vs mpmath.diff"
    )


def _tau_leg(cfg: CheckConfig, cid: str, loss: Any, closed: Any) -> LegResult:
    rng = _rng(cfg, cid)
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    with workdps(cfg.dps):
        for case in range(cfg.points(8, 3)):
            a_, b_, nb, _ = _embeddings(rng)
            t = mpf(float(10 ** rng.uniform(-1, 1)))

            def ft(tt: Any, a_: Any = a_, b_: Any = b_) -> Any:
                return loss(a_, b_, temperature=tt)

            tally.close(
                closed(a_, b_, t), mp.diff(ft, t), f"case {case} (B={nb}, t={float(t):.3g})"
            )
    return tally.result("closed-form dL/dt vs mpmath.diff of the oracle in t (cosine)")


@PRECISE.register("infonce.info_nce_temperature_gradient")
def _leg_info_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(cfg, "infonce.info_nce_temperature_gradient", info_nce, info_nce_tau_grad)


@PRECISE.register("infonce.symmetric_temperature_gradient")
def _leg_sym_tau(cfg: CheckConfig) -> LegResult:
    return _tau_leg(
        cfg, "infonce.symmetric_temperature_gradient", symmetric_info_nce, symmetric_tau_grad
    )


# ----------------------------------------------------------------------------- definitions

DEFINITION = LegRegistry("definition")

Sample = tuple[dict[Any, int], dict[Any, Any]]


def _u(rng: random.Random, lo: float = -2.0, hi: float = 2.0, n: int = 1) -> list[float]:
    return [rng.uniform(lo, hi) for _ in range(n)]


def _pos(rng: random.Random, n: int) -> list[float]:
    return [10 ** rng.uniform(-1, 1) for _ in range(n)]


def _prob(rng: random.Random, n: int) -> list[float]:
    """A point of the simplex with dyadic coordinates (multiples of 2^-12) that sum to 1
    exactly, in binary floating point and in SymPy: the definitions' facts (sum = 1) hold."""
    grid = 4096
    head = [rng.randint(grid // (4 * n), grid // n) for _ in range(n - 1)]
    return [h / grid for h in head] + [(grid - sum(head)) / grid]


def _joint_point(rng: random.Random, nx: int, ny: int) -> list[list[float]]:
    # dyadic coordinates summing to 1 exactly (see _prob)
    flat = _prob(rng, nx * ny)
    return [flat[r * ny : (r + 1) * ny] for r in range(nx)]


def _s_critic(rng: random.Random, row: bool = False) -> Sample:
    kk = rng.randint(1, 4)
    pt: dict[Any, Any] = {D.f: [_u(rng, -3, 3, kk) for _ in range(kk)]}
    if row:
        pt[D.i] = rng.randint(1, kk)
    return {D.K: kk}, pt


def _s_ranking(rng: random.Random) -> Sample:
    nn = rng.randint(1, 5)
    return {D.n: nn}, {D.s: _u(rng, -3, 3, nn), D.lq: _u(rng, -2, 0, nn), D.t: _pos(rng, 1)[0]}


def _s_embed(rng: random.Random, logq: bool = False) -> Sample:
    nb, nd = rng.randint(2, 3), rng.randint(1, 2)
    pt: dict[Any, Any] = {
        D.a: [_u(rng, -2, 2, nd) for _ in range(nb)],
        D.b: [_u(rng, -2, 2, nd) for _ in range(nb)],
        D.t: _pos(rng, 1)[0],
    }
    if logq:
        pt[D.lk] = _u(rng, -2, 0, nb)
    return {D.B: nb, D.D: nd}, pt


def _s_joint(
    rng: random.Random, with_k: bool = False, critic: bool = False, row: bool = False
) -> Sample:
    nx, ny = rng.randint(1, 2), rng.randint(1, 3)
    sizes = {D.NX: nx, D.NY: ny}
    pt: dict[Any, Any] = {D.P: _joint_point(rng, nx, ny)}
    if row:
        pt[D.xa] = rng.randint(1, nx)
    if with_k:  # K = 1 gives E[I_NCE] = 0 exactly, which a relative comparison cannot take
        sizes[D.K] = 2
    if critic:
        pt[D.f] = [_u(rng, -2, 2, ny) for _ in range(nx)]
    return sizes, pt


def _s_log_mean(rng: random.Random) -> Sample:
    size = rng.randint(1, 3)
    return {D.n: rng.randint(1, 4), D.N: size}, {D.w: _pos(rng, size), D.pi: _prob(rng, size)}


def _s_formal(rng: random.Random, big: Any) -> Sample:
    pt: dict[Any, Any] = {k_: rng.uniform(-1, 1) for k_ in D._KAPPAS}
    pt.update({D.mu: 10 ** rng.uniform(-0.5, 0.5), D.sigma2: _pos(rng, 1)[0], D.v: _pos(rng, 1)[0]})
    return {big: rng.randint(1, 50)}, pt


def _s_softmax(rng: random.Random, m_size: bool = False) -> Sample:
    ncls = rng.randint(1, 3 if m_size else 5)
    sizes = {D.C: ncls}
    pt: dict[Any, Any] = {
        D.o: _u(rng, -2, 2, ncls),
        D.q: _prob(rng, ncls),
        D.j: rng.randint(1, ncls),
    }
    if m_size:
        sizes[D.msym] = rng.randint(1, 3)
    else:
        pt[D.msym] = rng.randint(1, 40)
    return sizes, pt


def _s_ranking_pop(rng: random.Random) -> Sample:
    ncls = rng.randint(1, 3)
    sizes = {D.C: ncls, D.K: rng.randint(1, 2 if ncls == 3 else 3)}
    return sizes, {D.pw: _pos(rng, ncls), D.qw: _pos(rng, ncls), D.s: _u(rng, -2, 2, ncls)}


def _joint(pt: Any) -> list[list[Any]]:
    return mat(pt[D.P])


def _normalised(xs: Sequence[Any]) -> list[Any]:
    v_ = vec(xs)
    tot = mp.fsum(v_)
    return [x / tot for x in v_]


def _o_estimator(sz: Any, pt: Any) -> Any:
    f = mat(pt[D.f])
    kk = len(f)
    return mp.log(kk) - mp.fsum(_row_loss(f[r], r) for r in range(kk)) / kk


def _o_summand(sz: Any, pt: Any) -> Any:
    f, r = mat(pt[D.f]), int(pt[D.i]) - 1
    return mp.log(len(f)) - _row_loss(f[r], r)


def _o_ranking(sz: Any, pt: Any) -> Any:
    tt = mpf(pt[D.t])
    return ranking_nce([[mpf(x) / tt for x in pt[D.s]]], [pt[D.lq]])


def _o_ratio_mean(sz: Any, pt: Any) -> Any:
    joint = _joint(pt)
    px, py = marginals(joint)
    r = int(pt[D.xa]) - 1
    return mp.fsum(py[c_] * joint[r][c_] / (px[r] * py[c_]) for c_ in range(len(py)))


def _o_ratio_var(sz: Any, pt: Any) -> Any:
    joint = _joint(pt)
    px, py = marginals(joint)
    out = mp.zero
    for r in range(len(px)):
        rat = [joint[r][c_] / (px[r] * py[c_]) for c_ in range(len(py))]
        mean = mp.fsum(py[c_] * rat[c_] for c_ in range(len(py)))
        out += px[r] * mp.fsum(py[c_] * (rat[c_] - mean) ** 2 for c_ in range(len(py)))
    return out


def _o_ranking_pop(sz: Any, pt: Any) -> Any:
    p, q = _normalised(pt[D.pw]), _normalised(pt[D.qw])
    return ranking_population(p, q, vec(pt[D.s]), int(sz[D.K]))[0]


def _o_kappas(pt: Any) -> list[Any]:
    return [mpf(pt[k_]) for k_ in D._KAPPAS]


def _ss_args(pt: Any) -> tuple[list[Any], list[Any]]:
    return vec(pt[D.o]), vec(pt[D.q])


_DEFINITION_TABLE: dict[str, tuple[Any, Any, int]] = {
    # name: (sampler, oracle, points)
    "info_nce_estimator": (_s_critic, _o_estimator, 8),
    "info_nce_summand": (lambda rng: _s_critic(rng, row=True), _o_summand, 8),
    "ranking_nce_row": (_s_ranking, _o_ranking, 8),
    "info_nce": (
        _s_embed,
        lambda sz, pt: info_nce(pt[D.a], pt[D.b], temperature=pt[D.t]),
        6,
    ),
    "info_nce_dot_logq": (
        lambda rng: _s_embed(rng, logq=True),
        lambda sz, pt: info_nce(
            pt[D.a], pt[D.b], temperature=pt[D.t], similarity_kind="dot", key_log_q=pt[D.lk]
        ),
        6,
    ),
    "symmetric_info_nce": (
        _s_embed,
        lambda sz, pt: symmetric_info_nce(pt[D.a], pt[D.b], temperature=pt[D.t]),
        6,
    ),
    "mutual_information": (_s_joint, lambda sz, pt: mutual_information(_joint(pt)), 8),
    "chi2_dependence": (_s_joint, lambda sz, pt: chi2_dependence(_joint(pt)), 8),
    "ratio_mean": (lambda rng: _s_joint(rng, row=True), _o_ratio_mean, 8),
    "ratio_variance_average": (_s_joint, _o_ratio_var, 8),
    "expected_info_nce": (
        lambda rng: _s_joint(rng, with_k=True, critic=True),
        lambda sz, pt: expected_infonce_estimate(_joint(pt), mat(pt[D.f]), int(sz[D.K])),
        4,
    ),
    "optimal_critic_gap": (
        lambda rng: _s_joint(rng, with_k=True),
        lambda sz, pt: (
            mutual_information(_joint(pt))
            - expected_infonce_estimate(_joint(pt), _optimal_critic(_joint(pt)), int(sz[D.K]))
        ),
        4,
    ),
    "expected_s_log_s": (
        lambda rng: _s_joint(rng, with_k=True),
        lambda sz, pt: optimal_critic_gap_exact(_joint(pt), int(sz[D.K])),
        4,
    ),
    "expected_log_mean": (
        _s_log_mean,
        lambda sz, pt: expected_log_mean(vec(pt[D.w]), vec(pt[D.pi]), int(sz[D.n])),
        6,
    ),
    "delta_formal_log_mean": (
        lambda rng: _s_formal(rng, D.n),
        lambda sz, pt: formal_log_mean(pt[D.mu], pt[D.sigma2], _o_kappas(pt), int(sz[D.n])),
        8,
    ),
    "formal_gap_expansion": (
        lambda rng: _s_formal(rng, D.K),
        lambda sz, pt: formal_s_log_s(pt[D.v], _o_kappas(pt), int(sz[D.K])),
        8,
    ),
    "chi2_softmax_proposal": (_s_softmax, lambda sz, pt: ss_chi2(*_ss_args(pt)), 8),
    "ss_grad_bias_leading": (
        _s_softmax,
        lambda sz, pt: ss_grad_leading(*_ss_args(pt), pt[D.msym], int(pt[D.j]) - 1),
        8,
    ),
    "ss_loss_delta_term": (
        _s_softmax,
        lambda sz, pt: ss_loss_delta(*_ss_args(pt), pt[D.msym]),
        8,
    ),
    "ss_grad_delta_term": (
        _s_softmax,
        lambda sz, pt: ss_grad_delta(*_ss_args(pt), pt[D.msym], int(pt[D.j]) - 1),
        8,
    ),
    "sampled_log_z_bias": (
        lambda rng: _s_softmax(rng, m_size=True),
        lambda sz, pt: sampled_softmax_exact(*_ss_args(pt), int(sz[D.msym]))[0],
        4,
    ),
    "sampled_p_hat_bias": (
        lambda rng: _s_softmax(rng, m_size=True),
        lambda sz, pt: sampled_softmax_exact(*_ss_args(pt), int(sz[D.msym]))[1][int(pt[D.j]) - 1],
        4,
    ),
    "ranking_population": (_s_ranking_pop, _o_ranking_pop, 4),
}


def _register_definitions() -> None:
    defs = {d_.name: d_ for d_ in D.DEFINITIONS}
    missing = set(defs) ^ set(_DEFINITION_TABLE)
    if missing:
        raise RuntimeError(f"infonce definitions without a leg (or legs without one): {missing}")
    for name, (sampler, oracle_fn, pts) in _DEFINITION_TABLE.items():
        defn = defs[name]

        def leg(
            cfg: CheckConfig,
            defn: Any = defn,
            sampler: Any = sampler,
            oracle_fn: Any = oracle_fn,
            pts: int = pts,
        ) -> LegResult:
            return definition_leg(defn, sampler, oracle_fn, cfg, n=pts)

        DEFINITION.register(defn.id)(leg)


_register_definitions()


__all__ = [
    "DEFAULT_DPS",
    "DEFINITION",
    "PRECISE",
    "chi2_dependence",
    "compositions",
    "expected_estimate",
    "expected_infonce_estimate",
    "expected_log_mean",
    "formal_log_mean",
    "formal_s_log_s",
    "info_nce",
    "info_nce_grad_query",
    "info_nce_logits",
    "info_nce_tau_grad",
    "marginals",
    "mean_central_moments",
    "mutual_information",
    "optimal_critic_gap_exact",
    "ranking_nce",
    "ranking_nce_grad",
    "ranking_nce_rows",
    "ranking_population",
    "ranking_tau_grad",
    "sampled_softmax_exact",
    "similarity",
    "ss_chi2",
    "ss_grad_delta",
    "ss_grad_leading",
    "ss_loss_delta",
    "symmetric_info_nce",
    "symmetric_info_nce_grad_a",
    "symmetric_tau_grad",
]
