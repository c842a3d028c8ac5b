r"""InfoNCE / ranking-NCE family: prediction formulas, SymPy definitions and claims.

Prediction functions (used by other modules; pure SymPy / pure Python, accept SymPy symbols or
plain numbers):

* :func:`delta_method_log_mean` -- second-order delta method for :math:`E\log\bar W_n`.
* :func:`chi2_divergence` -- :math:`\chi^2(p\|q) = \sum_j p_j^2/q_j - 1`.
* :func:`sampled_softmax_loss_bias` -- :math:`-\chi^2(p\|q)/(2m)`.
* :func:`sampled_softmax_grad_bias` -- :math:`(p_j/m)(1 + \chi^2 - p_j/q_j)`.
* :func:`optimal_critic_gap` -- :math:`\chi^2/(2K)`.

SymPy definitions (:data:`DEFINITIONS`, each tied to its mpmath oracle by a definition leg in
``numerics/infonce.py``): the InfoNCE estimate, the ranking-NCE row, in-batch InfoNCE from
embeddings (cosine, and dot with key log q), the symmetric (CLIP) loss, mutual information and
the chi^2 dependence of a joint on an N_X x N_Y support, the sampled-softmax quantities, the
formal (moment) expansions, and the expectations over i.i.d. samples. An expectation over
``K`` i.i.d. draws is a SymPy function (:class:`IIDExpectation` subclasses) that stays
symbolic for a symbolic ``K`` and expands into the explicit K-fold sum for an integer ``K``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sympy as sp

from softnce_theory.derivations._claim import Claim, Definition
from softnce_theory.derivations.lemmas import (
    JENSEN_LOG,
    LSE_GE_TERM,
    LSE_ROWS_GE_DIAGONAL,
    SUM_GE_TERM,
)
from softnce_theory.derivations.tactics import (
    Differentiate,
    Instances,
    LemmaUse,
    Reduction,
    Series,
    Simplify,
    index_facts,
)

# ---------------------------------------------------------------------------------------------
# Prediction functions
# ---------------------------------------------------------------------------------------------


def delta_method_log_mean(mu: Any, sigma2: Any, kappa3: Any, n: Any, order: int = 2) -> Any:
    r"""Delta-method expansion of :math:`E\log(\frac1n\sum_{i=1}^n W_i)` for i.i.d. :math:`W_i > 0`
    with mean :math:`\mu`, variance :math:`\sigma^2`, third cumulant :math:`\kappa_3`:

    .. math:: \log\mu - \frac{\sigma^2}{2n\mu^2}
              + \frac{1}{n^2}\Big(\frac{\kappa_3}{3\mu^3} - \frac{3\sigma^4}{4\mu^4}\Big)

    ``order=1`` keeps only the :math:`1/n` term. Source: Nowozin 2018 (ICLR, "Debiasing
    evidence approximations"), §3 asymptotic bias of the importance-weighted bound (recalled,
    research note §6.5); Burda et al. 2016 (IWAE). The claim ``infonce.delta_method_series``
    checks it against the formal expansion :func:`delta_formal_log_mean`.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    out = sp.log(mu) - sigma2 / (2 * n * mu**2)
    if order == 2:
        out = out + (kappa3 / (3 * mu**3) - sp.Rational(3, 4) * sigma2**2 / mu**4) / n**2
    return out


def chi2_divergence(p: Sequence[Any], q: Sequence[Any]) -> Any:
    r""":math:`\chi^2(p\|q) = \sum_j p_j^2/q_j - 1` (p, q distributions of equal length)."""
    if len(p) != len(q):
        raise ValueError(f"p and q must have equal length, got {len(p)} and {len(q)}")
    return sp.Add(*[sp.sympify(pj) ** 2 / sp.sympify(qj) for pj, qj in zip(p, q, strict=True)]) - 1


def sampled_softmax_loss_bias(p: Sequence[Any], q: Sequence[Any], m: Any) -> Any:
    r"""Leading bias of the sampled-softmax loss with :math:`m` proposal samples from :math:`q`
    (model distribution :math:`p`): :math:`-\chi^2(p\|q)/(2m)` (Bengio & Senécal 2008;
    Blanc & Rendle 2018)."""
    return -chi2_divergence(p, q) / (2 * sp.sympify(m))


def sampled_softmax_grad_bias(p: Sequence[Any], q: Sequence[Any], m: Any, j: int) -> Any:
    r"""Leading bias of the sampled-softmax logit-gradient, class ``j`` (0-based):
    :math:`\frac{p_j}{m}\big(1 + \chi^2(p\|q) - p_j/q_j\big)`."""
    pj, qj = sp.sympify(p[j]), sp.sympify(q[j])
    return pj / sp.sympify(m) * (1 + chi2_divergence(p, q) - pj / qj)


def optimal_critic_gap(chi2: Any, k: Any) -> Any:
    r"""Leading term of :math:`I(X;Y) - I_{NCE}(f^*)` with :math:`K` samples: :math:`\chi^2/(2K)`,
    where :math:`\chi^2 = \chi^2(p(x,y)\|p(x)p(y))`."""
    return sp.sympify(chi2) / (2 * sp.sympify(k))


# ---------------------------------------------------------------------------------------------
# Symbols
# ---------------------------------------------------------------------------------------------

K = sp.Symbol("K", integer=True, positive=True)  # batch size / number of samples
n = sp.Symbol("n", integer=True, positive=True)  # candidates of a ranking row; sample count of W
B = sp.Symbol("B", integer=True, positive=True)  # batch size of in-batch InfoNCE
D = sp.Symbol("D", integer=True, positive=True)  # embedding dimension
C = sp.Symbol("C", integer=True, positive=True)  # classes (sampled softmax, ranking NCE labels)
N = sp.Symbol("N", integer=True, positive=True)  # support size of W
NX = sp.Symbol("N_X", integer=True, positive=True)
NY = sp.Symbol("N_Y", integer=True, positive=True)
msym = sp.Symbol("m", integer=True, positive=True)  # proposal samples
i, j, k, l, m, y = sp.symbols("i j k l m y", integer=True)
d, e = sp.symbols("d e", integer=True)  # embedding coordinates
xa, yb, xa2, yb2 = sp.symbols("x y x' y'", integer=True)  # support points of X and Y
kz = sp.Symbol("k'", integer=True)  # the dummy of the softmax normaliser
kh = sp.Symbol("h", integer=True)  # the dummy of chi^2(p||q)
f = sp.IndexedBase("f", real=True)  # critic values f(x_i, y_j)
s = sp.IndexedBase("s", real=True)  # candidate scores
lq = sp.IndexedBase("lq", real=True)  # log noise probabilities log q
a = sp.IndexedBase("a", real=True)  # query / first-view embeddings a[i, d]
b = sp.IndexedBase("b", real=True)  # key / second-view embeddings b[j, d]
u = sp.IndexedBase("u", real=True)  # one shared key u[d]
lk = sp.IndexedBase("lk", real=True)  # log q of the in-batch keys
P = sp.IndexedBase("P", positive=True)  # joint p(x, y) on an N_X x N_Y support
o = sp.IndexedBase("o", real=True)  # logits of the full softmax
q = sp.IndexedBase("q", positive=True)  # proposal / noise distribution
w = sp.IndexedBase("w", positive=True)  # values of W
pi = sp.IndexedBase("pi", positive=True)  # probabilities of the values of W
pw = sp.IndexedBase("rho", positive=True)  # unnormalised p(.|x) of ranking NCE
qw = sp.IndexedBase("nu", positive=True)  # unnormalised noise q of ranking NCE
dv = sp.IndexedBase("delta", real=True)  # a direction in score space
t = sp.Symbol("t", positive=True)  # temperature
c = sp.Symbol("c", real=True)  # a constant shift
eps = sp.Symbol("epsilon", real=True)
mu = sp.Symbol("mu", positive=True)
sigma2 = sp.Symbol("sigma2", positive=True)
v = sp.Symbol("v", nonnegative=True)  # Var_{p(y)} r(x, .)
kappa3, kappa4, kappa5, kappa6 = sp.symbols("kappa3 kappa4 kappa5 kappa6", real=True)
chi2 = sp.Symbol("chi2", nonnegative=True)


def _at(fn: Any, *idx: Any) -> Any:
    """``fn`` at the indices: an ``IndexedBase`` is indexed, a ``Lambda`` is called."""
    if isinstance(fn, sp.IndexedBase):
        return fn[idx if len(idx) > 1 else idx[0]]
    return fn(*idx)


def _on_base(expr: Any, base: Any, fn: Callable[..., Any]) -> Any:
    """``expr`` with every ``base[...]`` replaced by ``fn(...)``."""
    return expr.replace(
        lambda z: isinstance(z, sp.Indexed) and z.base == base, lambda z: fn(*z.indices)
    )


# ---------------------------------------------------------------------------------------------
# Definitions: losses
# ---------------------------------------------------------------------------------------------


def info_nce_estimator(size: Any = K) -> Any:
    r"""Poole et al.'s :math:`I_{NCE}` for one batch of ``size`` pairs and critic ``f``:
    :math:`\frac1K\sum_i \log\frac{e^{f_{ii}}}{\frac1K\sum_j e^{f_{ij}}}`."""
    inner = sp.Sum(sp.exp(f[i, j]), (j, 1, size)) / size
    return sp.Sum(f[i, i] - sp.log(inner), (i, 1, size)) / size


def info_nce_summand(row: Any = i, size: Any = K) -> Any:
    r"""The ``row``-th summand :math:`\log\frac{e^{f_{ii}}}{\frac1K\sum_j e^{f_{ij}}}`."""
    return f[row, row] - sp.log(sp.Sum(sp.exp(f[row, j]), (j, 1, size)) / size)


def ranking_nce_row(num: Any = n, temp: Any = t) -> Any:
    r"""One row of ranking NCE with temperature: candidates :math:`1..n`, positive first,
    :math:`\bar s_k = s_k/t - \log q_k`, :math:`\ell = -\bar s_1 + \log\sum_k e^{\bar s_k}`."""
    return -(s[1] / temp - lq[1]) + sp.log(sp.Sum(sp.exp(s[k] / temp - lq[k]), (k, 1, num)))


def _ranking_p(m_: Any) -> Any:
    z = sp.Sum(sp.exp(s[k] / t - lq[k]), (k, 1, n))
    return sp.exp(s[m_] / t - lq[m_]) / z


def dot_sim(x: Any, z: Any, r: Any, col: Any) -> Any:
    r""":math:`\langle x_r, z_c\rangle = \sum_d x_{rd} z_{cd}`."""
    return sp.Sum(x[r, d] * z[col, d], (d, 1, D))


def cos_sim(x: Any, z: Any, r: Any, col: Any) -> Any:
    r""":math:`\langle x_r, z_c\rangle / (\|x_r\|\,\|z_c\|)`."""
    nx = sp.sqrt(sp.Sum(x[r, d] ** 2, (d, 1, D)))
    nz = sp.sqrt(sp.Sum(z[col, d] ** 2, (d, 1, D)))
    return dot_sim(x, z, r, col) / (nx * nz)


def info_nce(
    query: Any = a,
    keys: Any = b,
    temp: Any = t,
    sim: Callable[..., Any] = cos_sim,
    logq: Any = None,
) -> Any:
    r"""In-batch InfoNCE, mean over the ``B`` rows: logits
    :math:`z_{ij} = \mathrm{sim}(a_i, b_j)/t - \log q_j`, :math:`\ell_i = -z_{ii} + \log\sum_j
    e^{z_{ij}}` (``logq`` an ``IndexedBase`` of the keys' log q, or ``None``)."""

    def z(r: Any, col: Any) -> Any:
        return sim(query, keys, r, col) / temp - (0 if logq is None else logq[col])

    return sp.Sum(-z(i, i) + sp.log(sp.Sum(sp.exp(z(i, j)), (j, 1, B))), (i, 1, B)) / B


def symmetric_info_nce(x: Any = a, z: Any = b, temp: Any = t) -> Any:
    r"""CLIP's symmetric loss on :math:`S_{ij} = \cos(a_i, b_j)/t`: the mean of the row-wise
    cross-entropy (a -> b) and the column-wise cross-entropy (b -> a) of the same matrix."""
    rows = sp.Sum(
        -cos_sim(x, z, i, i) / temp + sp.log(sp.Sum(sp.exp(cos_sim(x, z, i, j) / temp), (j, 1, B))),
        (i, 1, B),
    )
    cols = sp.Sum(
        -cos_sim(x, z, j, j) / temp + sp.log(sp.Sum(sp.exp(cos_sim(x, z, i, j) / temp), (i, 1, B))),
        (j, 1, B),
    )
    return (rows + cols) / (2 * B)


# ---------------------------------------------------------------------------------------------
# Definitions: a joint on an N_X x N_Y support
# ---------------------------------------------------------------------------------------------


def p_x(x_: Any) -> Any:
    return sp.Sum(P[x_, yb2], (yb2, 1, NY))


def p_y(y_: Any) -> Any:
    return sp.Sum(P[xa2, y_], (xa2, 1, NX))


def ratio(x_: Any, y_: Any) -> Any:
    r""":math:`r(x, y) = p(x, y)/(p(x)p(y)) = p(y|x)/p(y)`; the optimal critic is
    :math:`f^* = \log r` (up to a function of x)."""
    return P[x_, y_] / (p_x(x_) * p_y(y_))


def mutual_information() -> Any:
    r""":math:`I(X;Y) = \sum_{x,y} p(x,y)\log\frac{p(x,y)}{p(x)p(y)}` with the marginals as
    sums of :math:`P`."""
    return sp.Sum(P[xa, yb] * sp.log(ratio(xa, yb)), (yb, 1, NY), (xa, 1, NX))


def chi2_dependence() -> Any:
    r""":math:`\chi^2(P_{XY}\|P_XP_Y) = \sum_{x,y} p(x,y)^2/(p(x)p(y)) - 1`."""
    return sp.Sum(P[xa, yb] ** 2 / (p_x(xa) * p_y(yb)), (yb, 1, NY), (xa, 1, NX)) - 1


def _joint_simplex() -> tuple[Any, ...]:
    return (sp.Eq(sp.Sum(P[xa, yb], (yb, 1, NY), (xa, 1, NX)), 1),)


# ---------------------------------------------------------------------------------------------
# Definitions: expectations over i.i.d. samples
# ---------------------------------------------------------------------------------------------


def _iid_sum(
    count: int,
    ranges: Sequence[Any],
    weight: Callable[..., Any],
    body: Callable[[list[tuple[Any, ...]]], Any],
    name: str,
) -> Any:
    """``sum over count i.i.d. draws`` of ``prod weight(draw) * body(draws)``: one nested
    ``Sum`` per coordinate of each draw, each coordinate ranging over ``1..size``."""
    draws = [
        tuple(sp.Dummy(f"{name}{r}_{c_}", integer=True) for c_ in range(len(ranges)))
        for r in range(1, count + 1)
    ]
    expr = sp.Mul(*[weight(*dr) for dr in draws]) * body(draws)
    for dr in reversed(draws):
        for dummy, size in reversed(list(zip(dr, ranges, strict=True))):
            if isinstance(size, sp.Integer):  # explicit terms (no Sum.doit on big summands)
                expr = sp.Add(*[expr.xreplace({dummy: r}) for r in range(1, int(size) + 1)])
            else:
                expr = sp.Sum(expr, (dummy, 1, size))
    return expr


class IIDExpectation(sp.Function):
    """An expectation over ``args[0]`` i.i.d. draws: symbolic for a symbolic count, the explicit
    K-fold sum (:meth:`expand_at`) once the count is a positive integer."""

    _tex = r"\mathbb{E}"

    @classmethod
    def eval(cls, *args: Any) -> Any:
        count = args[0]
        if isinstance(count, sp.Integer) and count >= 1:
            return cls.expand_at(int(count), *args[1:])
        return None

    @classmethod
    def expand_at(cls, count: int, *rest: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _latex(self, printer: Any) -> str:
        return self._tex.format(*[printer._print(x) for x in self.args])


class ExpectedInfoNCE(IIDExpectation):
    r""":math:`E[I_{NCE}]` over ``K`` i.i.d. pairs :math:`(x_r, y_r) \sim P` (an
    :math:`N_X\times N_Y` joint), critic ``f(x, y)`` (IndexedBase or Lambda)."""

    _tex = r"\mathbb{{E}}_{{(x_r, y_r) \sim {3},\ r \le {0}}}\big[I_{{NCE}}({4})\big]"

    @classmethod
    def eval(cls, K_: Any, nx: Any, ny: Any, joint: Any, critic: Any) -> Any:
        return super().eval(K_, nx, ny, joint, critic)

    @classmethod
    def expand_at(cls, count: int, nx: Any, ny: Any, joint: Any, critic: Any) -> Any:
        def body(dr: list[tuple[Any, ...]]) -> Any:
            terms = []
            for xr, yr in dr:
                den = sp.Add(*[sp.exp(_at(critic, xr, yc)) for _, yc in dr]) / count
                terms.append(_at(critic, xr, yr) - sp.log(den))
            return sp.Add(*terms) / count

        return _iid_sum(count, (nx, ny), lambda x_, y_: _at(joint, x_, y_), body, "xy")


class ExpectedSLogS(IIDExpectation):
    r""":math:`\sum_x p(x)\,E_{y_1..y_K \sim p(y)}[S\log S]`,
    :math:`S = \frac1K\sum_r r(x, y_r)` (``r`` the density ratio of the joint ``P``)."""

    _tex = r"\mathbb{{E}}_{{x}}\mathbb{{E}}_{{y_{{1..{0}}} \sim p(y)}}\big[S \log S\big]"

    @classmethod
    def eval(cls, K_: Any, nx: Any, ny: Any, joint: Any) -> Any:
        return super().eval(K_, nx, ny, joint)

    @classmethod
    def expand_at(cls, count: int, nx: Any, ny: Any, joint: Any) -> Any:
        x_ = sp.Dummy("x", integer=True)

        def body(dr: list[tuple[Any, ...]]) -> Any:
            sv = sp.Add(*[ratio(x_, yr) for (yr,) in dr]) / count
            return sv * sp.log(sv)

        inner = _iid_sum(count, (ny,), p_y, body, "y")
        outer = _iid_sum(1, (nx,), p_x, lambda dr: inner.xreplace({x_: dr[0][0]}), "x")
        return outer.xreplace({NX: nx, NY: ny, P: joint})


class ExpectedLogMean(IIDExpectation):
    r""":math:`E\log\frac1n\sum_{r=1}^n W_r` for :math:`W_r` i.i.d., :math:`W = w_k` with
    probability :math:`\pi_k` (``k = 1..N``)."""

    _tex = r"\mathbb{{E}}\log\Big(\frac{{1}}{{{0}}}\sum_{{r=1}}^{{{0}}} W_r\Big)"

    @classmethod
    def eval(cls, n_: Any, size: Any, vals: Any, probs: Any) -> Any:
        return super().eval(n_, size, vals, probs)

    @classmethod
    def expand_at(cls, count: int, size: Any, vals: Any, probs: Any) -> Any:
        def body(dr: list[tuple[Any, ...]]) -> Any:
            return sp.log(sp.Add(*[_at(vals, r) for (r,) in dr]) / count)

        return _iid_sum(count, (size,), lambda r: _at(probs, r), body, "k")


def _z_full(logits: Any = o, size: Any = C) -> Any:
    r""":math:`Z = \sum_{k'} e^{o_{k'}}` (its own dummy, so that substituting the class index
    of a softmax never renames it)."""
    return sp.Sum(sp.exp(logits[kz]), (kz, 1, size))


def softmax_p(j_: Any, logits: Any = o, size: Any = C) -> Any:
    r""":math:`p_j = e^{o_j}/\sum_k e^{o_k}`."""
    return sp.exp(logits[j_]) / _z_full(logits, size)


def _weight(s_: Any, logits: Any, prop: Any) -> Any:
    r"""Importance weight :math:`W = e^{o_s}/q_s` of a proposal draw ``s``."""
    return sp.exp(logits[s_]) / _at(prop, s_)


class SampledLogZBias(IIDExpectation):
    r""":math:`E\log\hat Z_m - \log Z`, :math:`\hat Z_m = \frac1m\sum_r e^{o_{s_r}}/q_{s_r}`,
    :math:`s_r` i.i.d. from ``q`` over ``C`` classes."""

    _tex = r"\mathbb{{E}}_{{s_{{1..{0}}} \sim {3}}}\log\hat Z_{{{0}}} - \log Z"

    @classmethod
    def eval(cls, m_: Any, size: Any, logits: Any, prop: Any) -> Any:
        return super().eval(m_, size, logits, prop)

    @classmethod
    def expand_at(cls, count: int, size: Any, logits: Any, prop: Any) -> Any:
        def body(dr: list[tuple[Any, ...]]) -> Any:
            return sp.log(sp.Add(*[_weight(r, logits, prop) for (r,) in dr]) / count)

        ev = _iid_sum(count, (size,), lambda r: _at(prop, r), body, "s")
        return ev - sp.log(_z_full(logits, size))


class SampledPHatBias(IIDExpectation):
    r""":math:`E\hat p_j - p_j` for the self-normalised estimate
    :math:`\hat p_j = \sum_r [s_r = j]\, W_{s_r} / \sum_r W_{s_r}`, :math:`W = e^{o_s}/q_s`."""

    _tex = r"\mathbb{{E}}_{{s_{{1..{0}}} \sim {3}}}\hat p_{{{4}}} - p_{{{4}}}"

    @classmethod
    def eval(cls, m_: Any, size: Any, logits: Any, prop: Any, j_: Any) -> Any:
        return super().eval(m_, size, logits, prop, j_)

    @classmethod
    def expand_at(cls, count: int, size: Any, logits: Any, prop: Any, j_: Any) -> Any:
        def body(dr: list[tuple[Any, ...]]) -> Any:
            ws = [_weight(r, logits, prop) for (r,) in dr]
            num = sp.Add(*[sp.KroneckerDelta(r, j_) * wr for (r,), wr in zip(dr, ws, strict=True)])
            return num / sp.Add(*ws)

        ev = _iid_sum(count, (size,), lambda r: _at(prop, r), body, "s")
        return ev - softmax_p(j_, logits, size)


class RankingPopulation(IIDExpectation):
    r"""Population ranking-NCE objective for one context, ``K`` noise labels:
    :math:`J(s) = E_{y_0\sim p}E_{y_{1..K}\sim q}\big[-\bar s_{y_0}
    + \log\sum_{r=0}^K e^{\bar s_{y_r}}\big]`, :math:`\bar s_y = s_y - \log q_y`, over ``C``
    labels (``p``, ``q``, ``s`` IndexedBase or Lambda)."""

    _tex = r"J_{{{0}}}({4})"

    @classmethod
    def eval(cls, K_: Any, size: Any, p_: Any, q_: Any, sc: Any) -> Any:
        return super().eval(K_, size, p_, q_, sc)

    @classmethod
    def expand_at(cls, count: int, size: Any, p_: Any, q_: Any, sc: Any) -> Any:
        y0 = sp.Dummy("y0", integer=True)

        def sbar(r: Any) -> Any:
            return _at(sc, r) - sp.log(_at(q_, r))

        def body(dr: list[tuple[Any, ...]]) -> Any:
            lse = sp.log(sp.exp(sbar(y0)) + sp.Add(*[sp.exp(sbar(r)) for (r,) in dr]))
            return -sbar(y0) + lse

        inner = _iid_sum(count, (size,), lambda r: _at(q_, r), body, "y")
        return _iid_sum(
            1, (size,), lambda r: _at(p_, r), lambda dr: inner.xreplace({y0: dr[0][0]}), "y0"
        )


# ---------------------------------------------------------------------------------------------
# Definitions: sampled softmax (C classes, logits o, proposal q, m samples)
# ---------------------------------------------------------------------------------------------


def chi2_softmax_proposal(prop: Any = q) -> Any:
    r""":math:`\chi^2(p\|q) = \sum_k p_k^2/q_k - 1` for :math:`p = \mathrm{softmax}(o)`."""
    return sp.Sum(softmax_p(kh) ** 2 / _at(prop, kh), (kh, 1, C)) - 1


def ss_grad_bias_leading(j_: Any = j, prop: Any = q) -> Any:
    r"""Leading gradient bias :math:`b_j = \frac{p_j}{m}(1 + \chi^2(p\|q) - p_j/q_j)`."""
    pj = softmax_p(j_)
    return pj / msym * (1 + chi2_softmax_proposal(prop) - pj / _at(prop, j_))


def ss_loss_delta_term() -> Any:
    r"""First-order delta-method term of :math:`E\log\hat Z_m - \log Z`:
    :math:`-\mathrm{Var}_q(W)/(2m\,(E_qW)^2)`, :math:`W = e^{o_s}/q_s`, :math:`s\sim q`."""
    ew = sp.Sum(q[k] * _weight(k, o, q), (k, 1, C))
    ew2 = sp.Sum(q[k] * _weight(k, o, q) ** 2, (k, 1, C))
    return -(ew2 - ew**2) / (2 * msym * ew**2)


def ss_grad_delta_term(j_: Any = j) -> Any:
    r"""Second-order delta-method term of :math:`E[\bar A_j/\bar B] - p_j` for the ratio of the
    means of :math:`A_j = [s = j]\,W_s/Z` and :math:`B = W_s/Z`, :math:`s\sim q`:
    :math:`\big(E A\,\mathrm{Var}B - E B\,\mathrm{Cov}(A, B)\big)/(m\,(E B)^3)` (the
    :math:`1/m` term of the Taylor expansion of :math:`\bar A/\bar B` around the means; the
    zeroth-order term :math:`E A / E B = p_j` is subtracted)."""
    z = _z_full()
    bb = _weight(k, o, q) / z
    aa = sp.KroneckerDelta(k, j_) * bb
    ea = sp.Sum(q[k] * aa, (k, 1, C))
    eb = sp.Sum(q[k] * bb, (k, 1, C))
    cov = sp.Sum(q[k] * aa * bb, (k, 1, C)) - ea * eb
    var = sp.Sum(q[k] * bb**2, (k, 1, C)) - eb**2
    return (ea * var - eb * cov) / (msym * eb**3)


def _simplex_q() -> tuple[Any, ...]:
    return (sp.Eq(sp.Sum(q[k], (k, 1, C)), 1),)


# ---------------------------------------------------------------------------------------------
# Definitions: formal (moment) expansions
# ---------------------------------------------------------------------------------------------


def _sample_mean_moments(h: Any, cumulants: dict[int, Any], order: int) -> dict[int, Any]:
    r"""Central moments :math:`E\bar\delta^r`, ``1 <= r <= order``, of the mean of ``1/h`` i.i.d.
    variables with cumulants ``cumulants[r]`` (``r >= 2``; the mean has cumulants
    :math:`\kappa_r h^{r-1}` and mean 0), by the moment-cumulant recursion
    :math:`m_r = \sum_{i=1}^{r}\binom{r-1}{i-1}\kappa_i m_{r-i}`, :math:`m_0 = 1`."""
    kap = {1: sp.Integer(0)}
    kap.update({r: cumulants[r] * h ** (r - 1) for r in range(2, order + 1)})
    mom: dict[int, Any] = {0: sp.Integer(1)}
    for r in range(1, order + 1):
        mom[r] = sp.expand(
            sum(sp.binomial(r - 1, a_ - 1) * kap[a_] * mom[r - a_] for a_ in range(1, r + 1))
        )
    del mom[0]
    return mom


_ORDER = 6  # Taylor / cumulant truncation of the formal expansions


def delta_formal_log_mean(order: int = _ORDER) -> Any:
    r"""Formal expansion of :math:`E\log\bar W_n` through Taylor order ``order``:
    :math:`\log\mu + \sum_{r=2}^{6}\frac{(-1)^{r-1}}{r\mu^r}E(\bar W_n-\mu)^r`, the central
    moments of the mean from the cumulants :math:`\sigma^2, \kappa_3, \dots, \kappa_6` of
    :math:`W` (the mean has cumulants :math:`\kappa_r n^{1-r}`)."""
    cum = {2: sigma2, 3: kappa3, 4: kappa4, 5: kappa5, 6: kappa6}
    mom = _sample_mean_moments(1 / n, cum, order)
    return sp.log(mu) + sp.Add(
        *[(-1) ** (r - 1) / (r * mu**r) * mom[r] for r in range(2, order + 1)]
    )


def formal_gap_expansion(order: int = _ORDER) -> Any:
    r"""Formal expansion of :math:`E[S\log S]`, :math:`S` the mean of ``K`` i.i.d. copies of
    :math:`r \ge 0` with mean 1, variance :math:`v` and cumulants :math:`\kappa_3..\kappa_6`:
    Taylor of :math:`\phi(s) = s\log s` at 1 (:math:`\phi(1) = 0`, :math:`\phi'(1) = 1`,
    :math:`\phi^{(r)}(1)/r! = (-1)^r/(r(r-1))`) through order ``order``, with the central
    moments of the mean."""
    cum = {2: v, 3: kappa3, 4: kappa4, 5: kappa5, 6: kappa6}
    mom = _sample_mean_moments(1 / K, cum, order)
    sv = sp.Symbol("s", positive=True)
    phi = sv * sp.log(sv)
    coeffs = [sp.diff(phi, sv, r).subs(sv, 1) / sp.factorial(r) for r in range(order + 1)]
    return sp.Add(*[coeffs[r] * mom[r] for r in range(2, order + 1)])


def info_nce_row_softmax(r: Any, col: Any, sim: Callable[..., Any] = cos_sim) -> Any:
    r""":math:`P_{ij} = e^{S_{ij}/t}/\sum_{j'} e^{S_{ij'}/t}` (row-wise softmax)."""
    return sp.exp(sim(a, b, r, col) / t) / sp.Sum(sp.exp(sim(a, b, r, j) / t), (j, 1, B))


def info_nce_col_softmax(r: Any, col: Any) -> Any:
    r""":math:`P^{col}_{ij} = e^{S_{ij}/t}/\sum_{i'} e^{S_{i'j}/t}` (column-wise softmax)."""
    return sp.exp(cos_sim(a, b, r, col) / t) / sp.Sum(sp.exp(cos_sim(a, b, i, col) / t), (i, 1, B))


def ratio_mean(x_: Any = xa) -> Any:
    r""":math:`E_{p(y)}\,r(x, y) = \sum_y p(y)\,r(x, y)`."""
    return sp.Sum(p_y(yb) * ratio(x_, yb), (yb, 1, NY))


def ratio_variance_average() -> Any:
    r""":math:`\sum_x p(x)\,\mathrm{Var}_{p(y)} r(x, \cdot)`, the variance written as
    :math:`E r^2 - (E r)^2`."""
    er2 = sp.Sum(p_y(yb) * ratio(xa, yb) ** 2, (yb, 1, NY))
    return sp.Sum(p_x(xa) * (er2 - ratio_mean(xa) ** 2), (xa, 1, NX))


def optimal_critic() -> Any:
    r""":math:`f^*(x, y) = \log r(x, y)` as a ``Lambda``."""
    return sp.Lambda((xa, yb), sp.log(ratio(xa, yb)))


def optimal_critic_gap_def() -> Any:
    r""":math:`I(X;Y) - E[I_{NCE}(f^*)]` over ``K`` i.i.d. pairs."""
    return mutual_information() - ExpectedInfoNCE(K, NX, NY, P, optimal_critic())


def _w_moments() -> tuple[Any, Any, Any]:
    r""":math:`\mu, \sigma^2, \kappa_3` of :math:`W` (values ``w``, probabilities ``pi``)."""
    m1 = sp.Sum(pi[k] * w[k], (k, 1, N))
    m2 = sp.Sum(pi[k] * (w[k] - m1) ** 2, (k, 1, N))
    m3 = sp.Sum(pi[k] * (w[k] - m1) ** 3, (k, 1, N))
    return m1, m2, m3


def _pi_simplex() -> tuple[Any, ...]:
    return (sp.Eq(sp.Sum(pi[k], (k, 1, N)), 1),)


def _ranking_p_dist() -> Any:
    return sp.Lambda(y, pw[y] / sp.Sum(pw[k], (k, 1, C)))


def _ranking_q_dist() -> Any:
    return sp.Lambda(y, qw[y] / sp.Sum(qw[k], (k, 1, C)))


def ranking_population(scores: Any = s) -> Any:
    r""":math:`J(s)` with :math:`p(y|x) = \rho_y/\sum\rho`, :math:`q = \nu/\sum\nu` (any positive
    distributions) and ``K`` noise labels."""
    return RankingPopulation(K, C, _ranking_p_dist(), _ranking_q_dist(), scores)


def _consistent_scores(direction: Any = 0) -> Any:
    r""":math:`s^*_y + \varepsilon\delta_y = \log p(y|x) + c + \varepsilon\delta_y`."""
    return sp.Lambda(y, sp.log(_ranking_p_dist()(y)) + c + direction)


# ---------------------------------------------------------------------------------------------
# Definitions
# ---------------------------------------------------------------------------------------------

_FAM = "infonce"
_KAPPAS = (kappa3, kappa4, kappa5, kappa6)


def _defn(
    name: str, build: Any, sizes: tuple[Any, ...], args: tuple[Any, ...], source: str, doc: str
) -> Definition:
    return Definition(
        name=name, family=_FAM, build=build, sizes=sizes, args=args, source=source, doc=doc
    )


DEFINITIONS: tuple[Definition, ...] = (
    _defn(
        "info_nce_estimator",
        info_nce_estimator,
        (K,),
        (f,),
        "Poole et al. 2019 (arXiv 1905.06922) §2.3",
        r"I_NCE = (1/K) sum_i log(e^{f_ii} / ((1/K) sum_j e^{f_ij}))",
    ),
    _defn(
        "info_nce_summand",
        info_nce_summand,
        (K,),
        (f, i),
        "Poole et al. 2019 (arXiv 1905.06922) §2.3",
        "the i-th summand of I_NCE",
    ),
    _defn(
        "ranking_nce_row",
        ranking_nce_row,
        (n,),
        (s, lq, t),
        "Ma & Collins 2018 (arXiv 1809.01812) §3",
        "-(s_1/t - log q_1) + log sum_k e^{s_k/t - log q_k}, positive first",
    ),
    _defn(
        "info_nce",
        info_nce,
        (B, D),
        (a, b, t),
        "van den Oord et al. 2018 (arXiv 1807.03748) eq. (4); in-batch keys",
        "mean_i -log softmax_j(cos(a_i, b_j)/t)_i",
    ),
    _defn(
        "info_nce_dot_logq",
        lambda: info_nce(sim=dot_sim, logq=lk),
        (B, D),
        (a, b, t, lk),
        "van den Oord et al. 2018 eq. (4); logQ correction (Yi et al. 2019)",
        "mean_i -log softmax_j(<a_i, b_j>/t - log q_j)_i",
    ),
    _defn(
        "symmetric_info_nce",
        symmetric_info_nce,
        (B, D),
        (a, b, t),
        "Radford et al. 2021 (CLIP, arXiv 2103.00020) Figure 3",
        "(row-wise CE + column-wise CE of cos(a_i, b_j)/t) / 2",
    ),
    _defn(
        "mutual_information",
        mutual_information,
        (NX, NY),
        (P,),
        "standard",
        "sum_{x,y} P log(P / (p(x) p(y)))",
    ),
    _defn(
        "chi2_dependence",
        chi2_dependence,
        (NX, NY),
        (P,),
        "standard",
        "sum_{x,y} P^2 / (p(x) p(y)) - 1",
    ),
    _defn("ratio_mean", ratio_mean, (NX, NY), (P, xa), "standard", "E_{p(y)} r(x, y)"),
    _defn(
        "ratio_variance_average",
        ratio_variance_average,
        (NX, NY),
        (P,),
        "standard",
        "sum_x p(x) Var_{p(y)} r(x, .)",
    ),
    _defn(
        "expected_info_nce",
        lambda: ExpectedInfoNCE(K, NX, NY, P, f),
        (K, NX, NY),
        (P, f),
        "Poole et al. 2019 §2.3",
        "E[I_NCE(f)] over K i.i.d. pairs from P",
    ),
    _defn(
        "optimal_critic_gap",
        optimal_critic_gap_def,
        (K, NX, NY),
        (P,),
        "Poole et al. 2019 §2.3; research note §6.4",
        "I(X;Y) - E[I_NCE(log r)]",
    ),
    _defn(
        "expected_s_log_s",
        lambda: ExpectedSLogS(K, NX, NY, P),
        (K, NX, NY),
        (P,),
        "research note §6.4",
        "E_x E_{y_1..K ~ p(y)}[S log S], S = mean of r(x, y_k)",
    ),
    _defn(
        "expected_log_mean",
        lambda: ExpectedLogMean(n, N, w, pi),
        (n, N),
        (w, pi),
        "Burda et al. 2016 (arXiv 1509.00519); Nowozin 2018",
        "E log mean(W_1..W_n)",
    ),
    _defn(
        "delta_formal_log_mean",
        delta_formal_log_mean,
        (n,),
        (mu, sigma2, *_KAPPAS),
        "Nowozin 2018 (ICLR) §3 (delta method)",
        "order-6 Taylor / cumulant expansion of E log mean(W_1..W_n)",
    ),
    _defn(
        "formal_gap_expansion",
        formal_gap_expansion,
        (K,),
        (v, *_KAPPAS),
        "research note §6.4 (delta method)",
        "order-6 Taylor / cumulant expansion of E[S log S], E r = 1",
    ),
    _defn(
        "chi2_softmax_proposal",
        chi2_softmax_proposal,
        (C,),
        (o, q),
        "Blanc & Rendle 2018 (arXiv 1712.00527) §3",
        "sum_k p_k^2/q_k - 1, p = softmax(o)",
    ),
    _defn(
        "ss_grad_bias_leading",
        ss_grad_bias_leading,
        (C,),
        (o, q, msym, j),
        "Bengio & Senécal 2008 §III; Blanc & Rendle 2018 §3",
        "(p_j/m)(1 + chi^2(p||q) - p_j/q_j)",
    ),
    _defn(
        "ss_loss_delta_term",
        ss_loss_delta_term,
        (C,),
        (o, q, msym),
        "Bengio & Senécal 2008 §III; research note §6.6",
        "-Var_q(W) / (2 m (E_q W)^2), W = e^{o_s}/q_s",
    ),
    _defn(
        "ss_grad_delta_term",
        ss_grad_delta_term,
        (C,),
        (o, q, msym, j),
        "research note §6.6 (second-order delta method of a ratio of means)",
        "(E A Var B - E B Cov(A, B)) / (m (E B)^3)",
    ),
    _defn(
        "sampled_log_z_bias",
        lambda: SampledLogZBias(msym, C, o, q),
        (msym, C),
        (o, q),
        "Bengio & Senécal 2008 §III",
        "E log Z_hat_m - log Z",
    ),
    _defn(
        "sampled_p_hat_bias",
        lambda: SampledPHatBias(msym, C, o, q, j),
        (msym, C),
        (o, q, j),
        "Bengio & Senécal 2008 §III; Blanc & Rendle 2018 §3",
        "E p_hat_j - p_j",
    ),
    _defn(
        "ranking_population",
        ranking_population,
        (K, C),
        (pw, qw, s),
        "Ma & Collins 2018 (arXiv 1809.01812) §3",
        "population ranking-NCE objective J(s)",
    ),
)


# ---------------------------------------------------------------------------------------------
# Statements
# ---------------------------------------------------------------------------------------------


def _log_k_statement() -> Any:
    return sp.Le(info_nce_estimator(), sp.log(K))


def _log_k_row_statement() -> Any:
    return sp.Le(info_nce_summand(), sp.log(K))


def _mi_bound_statement() -> Any:
    return sp.Le(ExpectedInfoNCE(K, NX, NY, P, f), mutual_information())


def _gap_asymptotic_statement() -> Any:
    return sp.Eq(optimal_critic_gap_def(), chi2_dependence() / (2 * K) + sp.O(K**-2, (K, sp.oo)))


def _gap_change_of_measure_statement() -> Any:
    return sp.Eq(optimal_critic_gap_def(), ExpectedSLogS(K, NX, NY, P))


def _ratio_mean_statement() -> Any:
    return sp.Eq(ratio_mean(), 1)


def _chi2_average_statement() -> Any:
    return sp.Eq(ratio_variance_average(), chi2_dependence())


def _gap_leading_statement() -> Any:
    return sp.Eq(formal_gap_expansion(), v / (2 * K) + sp.O(K**-2, (K, sp.oo)))


def _delta_series_statement() -> Any:
    return sp.Eq(
        delta_formal_log_mean(),
        delta_method_log_mean(mu, sigma2, kappa3, n) + sp.O(n**-3, (n, sp.oo)),
    )


def _delta_log_mean_statement() -> Any:
    m1, m2, m3 = _w_moments()
    return sp.Eq(
        ExpectedLogMean(n, N, w, pi),
        delta_method_log_mean(m1, m2, m3, n) + sp.O(n**-3, (n, sp.oo)),
    )


def _delta_jensen_statement() -> Any:
    return sp.Le(ExpectedLogMean(n, N, w, pi), sp.log(_w_moments()[0]))


def _delta_monotone_statement() -> Any:
    return sp.Le(ExpectedLogMean(n, N, w, pi), ExpectedLogMean(n + 1, N, w, pi))


def _ss_expansion_statement() -> Any:
    return sp.Eq(ss_loss_delta_term(), -chi2_softmax_proposal() / (2 * msym))


def _ss_grad_expansion_statement() -> Any:
    return sp.Eq(ss_grad_delta_term(), ss_grad_bias_leading())


def _ss_loss_statement() -> Any:
    return sp.Eq(
        SampledLogZBias(msym, C, o, q),
        -chi2_softmax_proposal() / (2 * msym) + sp.O(msym**-2, (msym, sp.oo)),
    )


def _ss_grad_statement() -> Any:
    return sp.Eq(
        SampledPHatBias(msym, C, o, q, j),
        ss_grad_bias_leading() + sp.O(msym**-2, (msym, sp.oo)),
    )


def _q_is_p() -> Any:
    return sp.Lambda(k, softmax_p(k))


def _ss_if_statement() -> Any:
    return sp.Eq(ss_grad_bias_leading(j, _q_is_p()), 0)


def _ss_weighted_bias() -> Any:
    return sp.Sum(msym * q[k] * ss_grad_bias_leading(k) / softmax_p(k), (k, 1, C))


def _ss_only_if_statement() -> Any:
    return sp.Gt(_ss_weighted_bias(), 0)


def _pearson_term(kk: Any) -> Any:
    return (softmax_p(kk) - q[kk]) ** 2 / q[kk]


def _ss_exact_loss_statement() -> Any:
    return sp.Eq(SampledLogZBias(msym, C, o, _q_is_p()), 0)


def _ss_exact_grad_statement() -> Any:
    return sp.Eq(SampledPHatBias(msym, C, o, _q_is_p(), j), 0)


def _ranking_stationary_statement() -> Any:
    moved = ranking_population(_consistent_scores(eps * dv[y]))
    return sp.Eq(sp.Subs(sp.Derivative(moved, eps), eps, 0), 0)


def _ranking_minimiser_statement() -> Any:
    return sp.Le(ranking_population(_consistent_scores()), ranking_population(s))


def _logit_gradient_closed() -> Any:
    return (_ranking_p(m) - sp.KroneckerDelta(m, 1)) / t


def _logit_gradient_statement() -> Any:
    return sp.Eq(sp.Derivative(ranking_nce_row(), s[m]), _logit_gradient_closed())


def _ranking_tau_closed() -> Any:
    r""":math:`\partial\ell/\partial t = (s_1 - \sum_k P_k s_k)/t^2`."""
    return (s[1] - sp.Sum(_ranking_p(k) * s[k], (k, 1, n))) / t**2


def _ranking_tau_statement() -> Any:
    return sp.Eq(sp.Derivative(ranking_nce_row(), t), _ranking_tau_closed())


def _dot_logq_softmax(r: Any, col: Any) -> Any:
    def z(rr: Any, cc: Any) -> Any:
        return dot_sim(a, b, rr, cc) / t - lk[cc]

    return sp.exp(z(r, col)) / sp.Sum(sp.exp(z(r, j)), (j, 1, B))


def _query_gradient_closed() -> Any:
    r""":math:`\frac{1}{Bt}\big(\sum_j P_{mj} b_{je} - b_{me}\big)`."""
    return (sp.Sum(_dot_logq_softmax(m, j) * b[j, e], (j, 1, B)) - b[m, e]) / (B * t)


def _query_gradient_statement() -> Any:
    return sp.Eq(sp.Derivative(info_nce(sim=dot_sim, logq=lk), a[m, e]), _query_gradient_closed())


def _norm(x: Any, r: Any) -> Any:
    return sp.sqrt(sp.Sum(x[r, d] ** 2, (d, 1, D)))


def _query_gradient_cosine_closed() -> Any:
    r""":math:`\frac{1}{Bt\|a_m\|}\sum_j (P_{mj} - \delta_{mj})
    (\hat b_{je} - \cos(a_m, b_j)\,\hat a_{me})`: the dot-product gradient in :math:`\hat a_m`
    projected by :math:`(I - \hat a_m\hat a_m^\top)/\|a_m\|`."""
    body = (info_nce_row_softmax(m, j) - sp.KroneckerDelta(m, j)) * (
        b[j, e] / _norm(b, j) - cos_sim(a, b, m, j) * a[m, e] / _norm(a, m)
    )
    return sp.Sum(body, (j, 1, B)) / (B * t * _norm(a, m))


def _query_gradient_cosine_statement() -> Any:
    return sp.Eq(sp.Derivative(info_nce(), a[m, e]), _query_gradient_cosine_closed())


def _uniform_logq_statement() -> Any:
    row = ranking_nce_row()
    return sp.Eq(_on_base(row, lq, lambda *_: c), _on_base(row, lq, lambda *_: 0))


def _identical_keys_statement() -> Any:
    return sp.Eq(_on_base(info_nce(), b, lambda r, col: u[col]), sp.log(B))


def _symmetric_statement() -> Any:
    return sp.Eq(symmetric_info_nce(), (info_nce(a, b) + info_nce(b, a)) / 2)


def _info_nce_tau_closed() -> Any:
    r""":math:`\frac{1}{Bt^2}\sum_i\big(S_{ii} - \sum_j P_{ij}S_{ij}\big)`."""
    inner = sp.Sum(info_nce_row_softmax(i, j) * cos_sim(a, b, i, j), (j, 1, B))
    return sp.Sum(cos_sim(a, b, i, i) - inner, (i, 1, B)) / (B * t**2)


def _info_nce_tau_statement() -> Any:
    return sp.Eq(sp.Derivative(info_nce(), t), _info_nce_tau_closed())


def _symmetric_tau_closed() -> Any:
    r""":math:`\frac{1}{2Bt^2}\big[\sum_i(S_{ii} - \sum_j P_{ij}S_{ij})
    + \sum_j(S_{jj} - \sum_i P^{col}_{ij}S_{ij})\big]`."""
    rows = sp.Sum(
        cos_sim(a, b, i, i) - sp.Sum(info_nce_row_softmax(i, j) * cos_sim(a, b, i, j), (j, 1, B)),
        (i, 1, B),
    )
    cols = sp.Sum(
        cos_sim(a, b, j, j) - sp.Sum(info_nce_col_softmax(i, j) * cos_sim(a, b, i, j), (i, 1, B)),
        (j, 1, B),
    )
    return (rows + cols) / (2 * B * t**2)


def _symmetric_tau_statement() -> Any:
    return sp.Eq(sp.Derivative(symmetric_info_nce(), t), _symmetric_tau_closed())


# ---------------------------------------------------------------------------------------------
# Claims
# ---------------------------------------------------------------------------------------------

_POOLE = "Poole et al. 2019 (arXiv 1905.06922) §2.3"
_OORD = "van den Oord et al. 2018 (arXiv 1807.03748)"
_SS = "Bengio & Senécal 2008 (IEEE TNN) §III; Blanc & Rendle 2018 (arXiv 1712.00527) §3"
_MA = "Ma & Collins 2018 (EMNLP, arXiv 1809.01812) §3"
_EXACT = "the exact expectation is a finite sum over the K-fold product space, which SymPy "
_RANKING_INSTANCES = ({C: 2, K: 1}, {C: 2, K: 2}, {C: 3, K: 1})


def _claim(
    cid: str, kind: Any, text: str, statement: Any, source: str, evidence: Any, **kw: Any
) -> Claim:
    return Claim(
        id=f"{_FAM}.{cid}",
        family=_FAM,
        kind=kind,
        text=text,
        statement=statement,
        source=source,
        evidence=evidence,
        **kw,
    )


CLAIMS: tuple[Claim, ...] = (
    _claim(
        "log_k_ceiling",
        "inequality",
        "For any real critic f on a batch of K >= 1 pairs, I_NCE(f) <= log K.",
        _log_k_statement,
        f"{_POOLE}; {_OORD} §2.3",
        ("symbolic", "precise", "production"),
        tactic=Reduction(
            uses=(
                LemmaUse(LSE_ROWS_GE_DIAGONAL, {"n": K, "X": sp.Lambda((i, j), f[i, j])}, 1 / K),
            ),
            steps=("expand_log", "linear_sums"),
        ),
        facts=lambda: (),
        uses=("info_nce_estimator",),
        notes="log K - I_NCE = (1/K) sum_i (log sum_j e^{f_ij} - f_ii): each row's log-sum-exp "
        "dominates its diagonal entry (lemma lse_rows_ge_diagonal).",
    ),
    _claim(
        "log_k_ceiling_row",
        "inequality",
        "For any real critic f and every row 1 <= i <= K, the i-th InfoNCE summand "
        "log(e^{f_ii} / ((1/K) sum_j e^{f_ij})) is <= log K.",
        _log_k_row_statement,
        _POOLE,
        ("symbolic", "precise"),
        tactic=Reduction(
            uses=(LemmaUse(LSE_GE_TERM, {"n": K, "x": sp.Lambda(j, f[i, j]), "m": i}),),
            steps=("expand_log",),
        ),
        facts=lambda: index_facts(K, i),
        uses=("info_nce_summand",),
    ),
    _claim(
        "mi_lower_bound",
        "inequality",
        "For any real critic f and any joint p(x, y) > 0 on a finite N_X x N_Y support, the "
        "expectation of I_NCE(f) over K i.i.d. pairs (any K >= 1) is <= I(X;Y).",
        _mi_bound_statement,
        f"{_POOLE}, eq. (12); {_OORD} §2.3",
        ("precise", "production"),
        facts=_joint_simplex,
        uses=("expected_info_nce", "mutual_information"),
        notes="No symbolic leg: " + _EXACT + "cannot write for a symbolic K (Poole et al.'s "
        "argument is a KL divergence on that space). Checked by exact enumeration (compositions "
        "of K over the joint's support) on small joints with random and scaled-optimal critics.",
    ),
    _claim(
        "optimal_critic_gap",
        "asymptotic",
        "With the optimal critic f* = log p(y|x)/p(y), I(X;Y) - E[I_NCE(f*)] over K i.i.d. "
        "pairs is chi^2(P_XY || P_X P_Y)/(2K) + O(K^-2) as K -> infinity (finite support).",
        _gap_asymptotic_statement,
        f"derived (research note §6.4); {_POOLE}",
        ("precise",),
        facts=_joint_simplex,
        uses=("optimal_critic_gap", "chi2_dependence"),
        notes="Checked: exact gap by enumeration for a 3x3 joint, K up to 48; the residual's "
        "fitted log-log rate is compared with -2. The symbolic pieces are separate claims: "
        "optimal_critic_gap_change_of_measure, optimal_critic_ratio_mean_one, "
        "optimal_critic_chi2_average and the formal expansion optimal_critic_gap_leading_term; "
        "the remainder of the expansion is not bounded symbolically.",
    ),
    _claim(
        "optimal_critic_gap_change_of_measure",
        "identity",
        "Change of measure: for any joint on a finite N_X x N_Y support and any K >= 1, "
        "I(X;Y) - E[I_NCE(f*)] = E_x E_{y_1..y_K i.i.d. p(y)}[S log S] with "
        "S = (1/K) sum_k p(x, y_k)/(p(x) p(y_k)).",
        _gap_change_of_measure_statement,
        f"derived (research note §6.4); {_POOLE}",
        ("symbolic", "precise"),
        tactic=Instances(({K: 1},), Simplify(steps=("linear_sums", "canon", "facts"))),
        facts=_joint_simplex,
        uses=("optimal_critic_gap", "expected_s_log_s"),
        notes="Symbolic leg at K = 1 only (symbolic support): the general step (the positive's "
        "p(y|x) = r p(y), then exchangeability of the K slots) acts on the K-fold product "
        "space. Precise leg: both sides by exact enumeration for K = 1..4.",
    ),
    _claim(
        "optimal_critic_ratio_mean_one",
        "identity",
        "For any joint on a finite N_X x N_Y support and every x, the density ratio "
        "r(x, y) = p(x, y)/(p(x) p(y)) has mean 1 under p(y): sum_y p(y) r(x, y) = 1.",
        _ratio_mean_statement,
        "standard (research note §6.4)",
        ("symbolic", "precise"),
        tactic=Simplify(steps=("linear_sums", "canon")),
        facts=lambda: (),
        uses=("ratio_mean",),
    ),
    _claim(
        "optimal_critic_chi2_average",
        "identity",
        "For any joint on a finite N_X x N_Y support, sum_x p(x) Var_{p(y)} r(x, .) = "
        "chi^2(P_XY || P_X P_Y), with r(x, y) = p(x, y)/(p(x) p(y)).",
        _chi2_average_statement,
        "standard (research note §6.4)",
        ("symbolic", "precise"),
        tactic=Simplify(steps=("linear_sums", "canon", "facts")),
        facts=_joint_simplex,
        uses=("ratio_variance_average", "chi2_dependence"),
    ),
    _claim(
        "optimal_critic_gap_leading_term",
        "asymptotic",
        "The formal expansion of E[S log S] (S the mean of K i.i.d. copies of r with mean 1, "
        "variance v and cumulants kappa_3..kappa_6; Taylor of s log s at 1 and the central "
        "moments of the mean, through order 6) is v/(2K) + O(K^-2).",
        _gap_leading_statement,
        "derived (research note §6.4) from the delta method (Nowozin 2018, ICLR)",
        ("symbolic", "precise"),
        tactic=Series(),
        facts=lambda: (),
        uses=("formal_gap_expansion",),
        notes="A statement about the formal (truncated) expansion, a polynomial in 1/K whose "
        "remainder SymPy bounds exactly. With optimal_critic_gap_change_of_measure, "
        "optimal_critic_ratio_mean_one (E r = 1) and optimal_critic_chi2_average "
        "(E_x v = chi^2) it gives the chi^2/(2K) leading term of the gap; that the true "
        "expectation has an O(K^-2) remainder is checked numerically (optimal_critic_gap).",
    ),
    _claim(
        "delta_method_series",
        "asymptotic",
        "The formal delta-method expansion of E log mean(W_1..W_n) (Taylor of log at mu and "
        "the central moments of the mean from the cumulants sigma^2, kappa_3..kappa_6, "
        "through order 6) is log mu - sigma^2/(2 n mu^2) + (kappa3/(3 mu^3) - "
        "3 sigma^4/(4 mu^4))/n^2 + O(n^-3).",
        _delta_series_statement,
        "Nowozin 2018 (ICLR, 'Debiasing evidence approximations') §3, asymptotic bias "
        "(recalled, research note §6.5); Burda et al. 2016 (arXiv 1509.00519)",
        ("symbolic", "precise"),
        tactic=Series(),
        facts=lambda: (),
        uses=("delta_formal_log_mean",),
        notes="A statement about the formal (truncated) expansion; the O(n^-3) remainder of the "
        "true expectation is checked numerically (delta_method_log_mean).",
    ),
    _claim(
        "delta_method_log_mean",
        "asymptotic",
        "For W > 0 discrete with finite support (values w_k, probabilities pi_k), "
        "E log mean(W_1..W_n) = log mu - sigma^2/(2 n mu^2) + (kappa3/(3 mu^3) - "
        "3 sigma^4/(4 mu^4))/n^2 + O(n^-3).",
        _delta_log_mean_statement,
        "Nowozin 2018 (ICLR, 'Debiasing evidence approximations') §3",
        ("precise",),
        facts=_pi_simplex,
        uses=("expected_log_mean",),
        notes="Checked: exact expectation over compositions of n; fitted residual rate vs -3.",
    ),
    _claim(
        "delta_method_jensen",
        "inequality",
        "For W > 0 discrete with finite support and any n >= 1, E log mean(W_1..W_n) <= log E W.",
        _delta_jensen_statement,
        "Jensen's inequality; Burda et al. 2016 (arXiv 1509.00519)",
        ("symbolic", "precise"),
        tactic=Instances(
            ({n: 1},),
            Reduction(
                uses=(
                    LemmaUse(
                        JENSEN_LOG, {"n": N, "w": sp.Lambda(k, pi[k]), "x": sp.Lambda(k, w[k])}
                    ),
                ),
                steps=("canon",),
            ),
        ),
        facts=_pi_simplex,
        uses=("expected_log_mean",),
        notes="Symbolic leg at n = 1 (symbolic support); for n >= 2 Jensen acts on the n-fold "
        "product space. Precise leg: exact expectations for n up to 64.",
    ),
    _claim(
        "delta_method_monotone",
        "inequality",
        "For W > 0 discrete with finite support, E log mean(W_1..W_n) is non-decreasing in n.",
        _delta_monotone_statement,
        "Burda et al. 2016 (arXiv 1509.00519) Theorem 1",
        ("precise",),
        facts=_pi_simplex,
        uses=("expected_log_mean",),
        notes="Checked: exact expectations over compositions of n, consecutive n.",
    ),
    _claim(
        "sampled_softmax_expansion",
        "identity",
        "The first-order delta-method term of E log Z_hat_m - log Z, "
        "-Var_q(W)/(2m (E_q W)^2) with W = e^{o_s}/q_s and s ~ q, equals "
        "-chi^2(p||q)/(2m) for p = softmax(o), any C classes and q on the simplex.",
        _ss_expansion_statement,
        f"{_SS}; derivation in research note §6.6",
        ("symbolic", "precise"),
        tactic=Simplify(steps=("linear_sums", "canon", "facts")),
        facts=_simplex_q,
        uses=("ss_loss_delta_term", "chi2_softmax_proposal"),
    ),
    _claim(
        "sampled_softmax_grad_expansion",
        "identity",
        "The second-order delta-method term of E p_hat_j - p_j, (E A Var B - E B Cov(A, B))/"
        "(m (E B)^3) with A = [s = j] W_s/Z, B = W_s/Z and s ~ q, equals "
        "(p_j/m)(1 + chi^2(p||q) - p_j/q_j) for every class 1 <= j <= C and q on the simplex.",
        _ss_grad_expansion_statement,
        f"{_SS}; derivation in research note §6.6",
        ("symbolic", "precise"),
        tactic=Simplify(steps=("delta_sums", "linear_sums", "canon", "facts")),
        facts=lambda: (*index_facts(C, j), *_simplex_q()),
        uses=("ss_grad_delta_term", "ss_grad_bias_leading"),
    ),
    _claim(
        "sampled_softmax_loss_bias",
        "asymptotic",
        "E log Z_hat_m - log Z = -chi^2(p||q)/(2m) + O(m^-2) for the importance-sampled "
        "partition function Z_hat_m = (1/m) sum_r e^{o_{s_r}}/q_{s_r}, s_r i.i.d. from q > 0.",
        _ss_loss_statement,
        _SS,
        ("precise",),
        facts=_simplex_q,
        uses=("sampled_log_z_bias", "chi2_softmax_proposal"),
        notes="Checked: exact expectation over compositions of m (C = 3); residual rate vs -2.",
    ),
    _claim(
        "sampled_softmax_grad_bias",
        "asymptotic",
        "E[p_hat_j] - p_j = (p_j/m)(1 + chi^2(p||q) - p_j/q_j) + O(m^-2) for the "
        "self-normalised importance-sampling estimate of the softmax (the logit-gradient term).",
        _ss_grad_statement,
        f"{_SS}; Rawat et al. 2019 (arXiv 1907.10747)",
        ("precise",),
        facts=lambda: (*index_facts(C, j), *_simplex_q()),
        uses=("sampled_p_hat_bias", "ss_grad_bias_leading"),
        notes="Checked: exact expectation over compositions of m (C = 3); residual rate vs -2.",
    ),
    _claim(
        "sampled_softmax_unbiased_iff_q_eq_p",
        "identity",
        "If q = p = softmax(o), the leading gradient bias (p_j/m)(1 + chi^2(p||q) - p_j/q_j) "
        "is 0 for every class j (any C, m): the 'if' direction.",
        _ss_if_statement,
        f"{_SS}; Rawat et al. 2019 (arXiv 1907.10747)",
        ("symbolic", "precise"),
        tactic=Simplify(steps=("linear_sums", "canon")),
        facts=lambda: (),
        uses=("ss_grad_bias_leading",),
        notes="The 'only if' direction is infonce.sampled_softmax_unbiased_only_if; exact "
        "unbiasedness at q = p for finite m is sampled_softmax_exact_loss_at_q_eq_p and "
        "sampled_softmax_exact_grad_at_q_eq_p.",
    ),
    _claim(
        "sampled_softmax_unbiased_only_if",
        "inequality",
        "If p_l > q_l for some class l (which holds whenever q != p on the simplex), then "
        "sum_k (m q_k/p_k) b_k > 0 for the leading gradient biases b_k = (p_k/m)(1 + "
        "chi^2(p||q) - p_k/q_k): they are not all 0.",
        _ss_only_if_statement,
        f"{_SS}; Rawat et al. 2019 (arXiv 1907.10747)",
        ("symbolic", "precise"),
        tactic=Reduction(
            uses=(LemmaUse(SUM_GE_TERM, {"n": C, "a": sp.Lambda(k, _pearson_term(k)), "m": l}),),
            extra=(_pearson_term(l),),
            steps=("expand", "linear_sums", "canon", "facts"),
        ),
        facts=lambda: (*index_facts(C, l), sp.Gt(softmax_p(l), q[l]), *_simplex_q()),
        uses=("ss_grad_bias_leading",),
        notes="sum_k (m q_k/p_k) b_k = chi^2(p||q) = sum_k (p_k - q_k)^2/q_k, which is >= "
        "its l-th term (p_l - q_l)^2/q_l > 0 (lemma sum_ge_term).",
    ),
    _claim(
        "sampled_softmax_exact_loss_at_q_eq_p",
        "identity",
        "At q = p = softmax(o) the sampled-softmax log-partition estimate is exactly unbiased "
        "for every m >= 1: E log Z_hat_m - log Z = 0 (any C).",
        _ss_exact_loss_statement,
        "Blanc & Rendle 2018 (arXiv 1712.00527) §3",
        ("symbolic", "precise"),
        tactic=Instances(
            ({msym: 1}, {msym: 2}, {msym: 3}), Simplify(steps=("linear_sums", "canon"))
        ),
        facts=lambda: (),
        uses=("sampled_log_z_bias",),
        notes="At q = p every weight e^{o_s}/q_s equals Z, so Z_hat_m = Z for every sample. "
        "Symbolic leg at m = 1, 2, 3 (symbolic C): " + _EXACT + "expands only for a fixed m. "
        "Precise leg: m = 1..5 at 50 digits.",
    ),
    _claim(
        "sampled_softmax_exact_grad_at_q_eq_p",
        "identity",
        "At q = p = softmax(o) the self-normalised estimate p_hat_j is exactly unbiased for "
        "every m >= 1 and every class 1 <= j <= C: E p_hat_j - p_j = 0.",
        _ss_exact_grad_statement,
        "Blanc & Rendle 2018 (arXiv 1712.00527) §3",
        ("symbolic", "precise"),
        tactic=Instances(
            ({msym: 1}, {msym: 2}, {msym: 3}),
            Simplify(
                steps=(
                    "linear_sums",
                    "delta_sums",
                    "linear_sums",
                    "delta_sums",
                    "linear_sums",
                    "canon",
                )
            ),
        ),
        facts=lambda: index_facts(C, j),
        uses=("sampled_p_hat_bias",),
        notes="At q = p, p_hat_j = n_j/m (n_j the draws of class j), whose mean is p_j. "
        "Symbolic leg at m = 1, 2, 3 (symbolic C); precise leg: m = 1..5 at 50 digits.",
    ),
    _claim(
        "ranking_nce_consistency",
        "identity",
        "For any C labels, K >= 1 noise samples and positive p(.|x), q, the population "
        "ranking-NCE objective J has zero directional derivative, in every direction delta, "
        "at s(x, y) = log p(y|x) + c(x).",
        _ranking_stationary_statement,
        _MA,
        ("symbolic", "precise", "production"),
        tactic=Instances(
            _RANKING_INSTANCES, Simplify(steps=("doit", "expand_log", "together", "cancel"))
        ),
        facts=lambda: (),
        uses=("ranking_population",),
        notes="Proved only at (C, K) in {(2,1), (2,2), (3,1)} (symbolic p, q, c, delta): J is "
        "an expectation over the (K+1)-fold label space, which SymPy expands only for fixed "
        "sizes. That the stationary point is the minimiser is ranking_nce_minimiser.",
    ),
    _claim(
        "ranking_nce_minimiser",
        "inequality",
        "For any C labels, K >= 1 and positive p(.|x), q, the population ranking-NCE objective "
        "satisfies J(log p(.|x) + c) <= J(s) for every score vector s.",
        _ranking_minimiser_statement,
        _MA,
        ("precise", "production"),
        facts=lambda: (),
        uses=("ranking_population",),
        notes="Checked: exact objective (compositions of the K noise labels) at s* and at "
        "random perturbations, at 50 digits and through the production loss. J is convex "
        "(logsumexp of affine maps minus a linear term), so stationarity "
        "(ranking_nce_consistency) implies minimality; that argument is not mechanised.",
    ),
    _claim(
        "logit_gradient",
        "gradient",
        "d/ds_m of the ranking-NCE / InfoNCE row with logits s/t - log q is "
        "(softmax_m - [m = 1])/t for every candidate 1 <= m <= n.",
        _logit_gradient_statement,
        f"standard (softmax cross-entropy gradient); {_OORD} eq. (4)",
        ("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("doit", ("in_range", n, m))),
        facts=lambda: index_facts(n, m),
        uses=("ranking_nce_row",),
    ),
    _claim(
        "ranking_nce_temperature_gradient",
        "gradient",
        "d/dt of the ranking-NCE row with logits s/t - log q is (s_1 - sum_k P_k s_k)/t^2, "
        "P = softmax(s/t - log q).",
        _ranking_tau_statement,
        "derived here (learnable temperature)",
        ("symbolic", "precise"),
        tactic=Differentiate(steps=("linear_sums", "expand", "canon")),
        facts=lambda: (),
        uses=("ranking_nce_row",),
        notes="The production ranking_nce takes scores (no temperature argument): no "
        "production leg.",
    ),
    _claim(
        "query_gradient",
        "gradient",
        "For in-batch InfoNCE with dot-product similarity and key log q (mean over B rows), "
        "dL/da_{me} = (1/(B t)) (sum_j P_mj b_je - b_me), P the row softmax of "
        "<a_m, b_j>/t - log q_j.",
        _query_gradient_statement,
        f"standard (chain rule); {_OORD} eq. (4)",
        ("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("delta_sums", "linear_sums", "delta_sums", "expand", "canon")),
        facts=lambda: (*index_facts(B, m), *index_facts(D, e)),
        uses=("info_nce_dot_logq",),
    ),
    _claim(
        "query_gradient_cosine",
        "gradient",
        "For in-batch InfoNCE with cosine similarity (nonzero embeddings, mean over B rows), "
        "dL/da_m = "
        "(1/(B t ||a_m||)) sum_j (P_mj - [m = j]) (b_j/||b_j|| - cos(a_m, b_j) a_m/||a_m||): "
        "the dot-product gradient in a_m/||a_m|| projected by (I - a_hat a_hat^T)/||a_m||.",
        _query_gradient_cosine_statement,
        f"standard (chain rule); {_OORD} eq. (4)",
        ("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("delta_sums", "linear_sums", "delta_sums", "expand", "canon")),
        facts=lambda: (*index_facts(B, m), *index_facts(D, e)),
        uses=("info_nce",),
        notes="Valid where every norm is nonzero (the production loss keeps a zero row at zero).",
    ),
    _claim(
        "uniform_log_q_noop",
        "identity",
        "A uniform noise distribution (log q = c for every candidate) leaves the ranking-NCE "
        "row loss unchanged, for any n and t.",
        _uniform_logq_statement,
        f"{_MA}; research note §1.4 item 3",
        ("symbolic", "production"),
        tactic=Simplify(steps=("expand_log",)),
        facts=lambda: (),
        uses=("ranking_nce_row",),
        notes="The production leg also checks info_nce with constant key/negative log q.",
    ),
    _claim(
        "identical_keys_log_b",
        "identity",
        "If all B keys are the same nonzero vector u, the in-batch InfoNCE loss (cosine) is "
        "exactly log B, whatever the (nonzero) queries and the temperature.",
        _identical_keys_statement,
        "standard; closed form used by lightly's NT-Xent tests (research note ecosystem §2.2)",
        ("symbolic", "production"),
        tactic=Simplify(steps=("linear_sums", "expand_log", "linear_sums")),
        facts=lambda: (),
        uses=("info_nce",),
        notes="The production leg also checks explicit negatives (log(M+1)) and the symmetric "
        "loss.",
    ),
    _claim(
        "symmetric_mean_of_directions",
        "identity",
        "The CLIP-style symmetric loss (row-wise plus column-wise cross-entropy of "
        "cos(a_i, b_j)/t, halved) equals (L(a->b) + L(b->a))/2, L the in-batch InfoNCE.",
        _symmetric_statement,
        "Radford et al. 2021 (CLIP, arXiv 2103.00020) Figure 3",
        ("symbolic", "precise", "production"),
        tactic=Simplify(steps=("canon",)),
        facts=lambda: (),
        uses=("symmetric_info_nce", "info_nce"),
    ),
    _claim(
        "info_nce_temperature_gradient",
        "gradient",
        "d/dt of in-batch InfoNCE (cosine, mean over B rows) is "
        "(1/(B t^2)) sum_i (S_ii - sum_j P_ij S_ij), S_ij = cos(a_i, b_j), P the row softmax "
        "of S/t.",
        _info_nce_tau_statement,
        "derived here (learnable temperature, CLIP convention)",
        ("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("linear_sums", "expand", "canon")),
        facts=lambda: (),
        uses=("info_nce",),
    ),
    _claim(
        "symmetric_temperature_gradient",
        "gradient",
        "d/dt of the symmetric InfoNCE (cosine) is (1/(2 B t^2)) [sum_i (S_ii - sum_j P_ij "
        "S_ij) + sum_j (S_jj - sum_i P^col_ij S_ij)], P / P^col the row / column softmax of "
        "S/t.",
        _symmetric_tau_statement,
        "derived here (learnable temperature, CLIP convention)",
        ("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("linear_sums", "expand", "canon")),
        facts=lambda: (),
        uses=("symmetric_info_nce",),
    ),
)
