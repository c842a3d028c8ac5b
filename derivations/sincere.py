r"""SupCon (Khosla et al. 2020) and SINCERE (Feeney & Hughes): SymPy definitions and claims.

One anchor :math:`i` is fixed. Its similarities :math:`z_i^\top z_a` are split into

* positives :math:`s_p` (:math:`p=1..m`, :math:`m=|P(i)|\ge 1`, the other samples of its class);
* negatives :math:`u_n` (:math:`n=1..M`, :math:`M=|N(i)|\ge 0`, the samples of other classes),

and the logits are :math:`s_p/t`, :math:`u_n/t` at temperature :math:`t>0`. With
:math:`Z_P=\sum_p e^{s_p/t}`, :math:`Z_N=\sum_n e^{u_n/t}` and :math:`Z=Z_P+Z_N` (the
denominator over :math:`A(i)`, self excluded), Khosla et al. Eq. 2 / Eq. 3 and SINCERE read

.. math::
    \ell^{out} = -\frac1m\sum_p\log\frac{e^{s_p/t}}{Z},\qquad
    \ell^{in} = -\log\Big(\frac1m\sum_p\frac{e^{s_p/t}}{Z}\Big),\qquad
    \ell^{SINCERE} = -\frac1m\sum_p\log\frac{e^{s_p/t}}{e^{s_p/t}+Z_N}.

Softmax shares: :math:`P_a=e^{s_a/t}/Z` (over :math:`A(i)`), :math:`X_k=e^{s_k/t}/Z_P` (over the
positives), :math:`Q_k=e^{s_k/t}/(e^{s_k/t}+Z_N)` (SINCERE's per-pair softmax).

Every statement below is a SymPy relation over these :data:`DEFINITIONS` (sizes ``m``, ``M``
symbolic unless a claim is about a stated size); the engine applies each claim's tactic to it.
The KL-bound claims use the noise-contrastive setting of the research note §1.5 (one target
from :math:`p^+`, ``N`` noise samples from :math:`p^-`).
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from softnce_theory.derivations._claim import Claim, Definition
from softnce_theory.derivations.lemmas import GIBBS, JENSEN_LOG, LOG_TANGENT
from softnce_theory.derivations.tactics import (
    Both,
    Differentiate,
    Instances,
    LemmaUse,
    Reduction,
    Sign,
    Simplify,
    index_facts,
)

m = sp.Symbol("m", integer=True, positive=True)  # |P(i)|
m1 = sp.Symbol("m_1", integer=True, positive=True)  # |P(i)| - 1 where |P(i)| >= 2 is stated
M = sp.Symbol("M", integer=True, nonnegative=True)  # |N(i)|
M1 = sp.Symbol("M", integer=True, positive=True)  # |N(i)| where |N(i)| >= 1 is stated
p, q, k, n, j, a = sp.symbols("p q k n j a", integer=True)
s = sp.IndexedBase("s", real=True)  # similarities of the positives
u = sp.IndexedBase("u", real=True)  # similarities of the negatives
t = sp.Symbol("t", positive=True)  # temperature
t_b = sp.Symbol("t_b", positive=True)  # HobbitLong's base_temperature
c = sp.Symbol("c", real=True)  # HobbitLong's (detached) row shift of the logits

SOURCE_KHOSLA = "Khosla et al. 2020 (arXiv 2004.11362) Eq. 2/3, §3.2.3"
SOURCE_SINCERE = "Feeney & Hughes (arXiv 2309.14277 v4), SINCERE loss; research note §0"


# ----------------------------------------------------------------------------- definitions


def _e(x: Any, temp: Any = t) -> sp.Expr:
    return sp.exp(x / temp)


def z_pos(size: Any = m, temp: Any = t) -> sp.Expr:
    return sp.Sum(_e(s[p], temp), (p, 1, size))


def z_neg(size: Any = M, temp: Any = t) -> sp.Expr:
    return sp.Sum(_e(u[n], temp), (n, 1, size))


def z_all(mm: Any = m, MM: Any = M, temp: Any = t) -> sp.Expr:
    return z_pos(mm, temp) + z_neg(MM, temp)


def supcon_out(mm: Any = m, MM: Any = M) -> sp.Expr:
    """Khosla Eq. 2, one anchor: mean over positives of -log softmax over A(i)."""
    return -sp.Sum(sp.log(_e(s[p]) / z_all(mm, MM)), (p, 1, mm)) / mm


def supcon_in(mm: Any = m, MM: Any = M) -> sp.Expr:
    """Khosla Eq. 3, one anchor: -log of the mean positive softmax probability."""
    return -sp.log(sp.Sum(_e(s[p]) / z_all(mm, MM), (p, 1, mm)) / mm)


def sincere(mm: Any = m, MM: Any = M) -> sp.Expr:
    """SINCERE, one anchor: per positive pair the denominator is the pair plus negatives only."""
    return -sp.Sum(sp.log(_e(s[p]) / (_e(s[p]) + z_neg(MM))), (p, 1, mm)) / mm


def supcon_term(pp: Any = a) -> sp.Expr:
    r"""One SupCon term :math:`\ell_{ip}=-\log(e^{s_p/t}/Z)` (all positives in Z)."""
    return -sp.log(_e(s[pp]) / z_all())


def sincere_term(pp: Any = a) -> sp.Expr:
    r"""One SINCERE term :math:`-\log(e^{s_p/t}/(e^{s_p/t}+Z_N))`."""
    return -sp.log(_e(s[pp]) / (_e(s[pp]) + z_neg()))


def ntxent() -> sp.Expr:
    """InfoNCE / NT-Xent (SimCLR) of an anchor whose single positive has similarity s_1."""
    return -sp.log(_e(s[1]) / (_e(s[1]) + z_neg()))


def hobbitlong() -> sp.Expr:
    r"""HobbitLong's SupConLoss, one anchor: logits shifted by a row constant :math:`c` (the
    detached row max), :math:`-(t/t_b)\frac1m\sum_p[(s_p/t-c)-\log\sum_{a}e^{s_a/t-c}]`."""
    den = sp.Sum(sp.exp(s[q] / t - c), (q, 1, m)) + sp.Sum(sp.exp(u[n] / t - c), (n, 1, M))
    mean = sp.Sum((s[p] / t - c) - sp.log(den), (p, 1, m)) / m
    return -(t / t_b) * mean


# ----------------------------------------------------------------------------- growth, KL bound

s_c = sp.Symbol("s_c", real=True)  # similarity of the closest positive
s_o = sp.Symbol("s_o", real=True)  # common similarity of the other |P(i)| - 1 positives


def growth_denominator(mm: Any = m) -> sp.Expr:
    return _e(s_c) + (mm - 1) * _e(s_o) + z_neg()


def supcon_out_config(mm: Any = m) -> sp.Expr:
    r"""SupCon L_out of an anchor whose closest positive has similarity :math:`s_c` and whose
    other :math:`m-1` positives share the similarity :math:`s_o`."""
    den = growth_denominator(mm)
    return -(sp.log(_e(s_c) / den) + (mm - 1) * sp.log(_e(s_o) / den)) / mm


def repulsion_margin(mm: Any = m) -> sp.Expr:
    r""":math:`(m-1)(e^{s_c/t}-e^{s_o/t}) - Z_N`: the sign of SupCon's gradient on the closest
    positive in :func:`supcon_out_config`."""
    return (mm - 1) * (_e(s_c) - _e(s_o)) - z_neg()


def _scaled_gradient(mm: Any) -> sp.Expr:
    """|P| t D times SupCon's gradient on the closest positive (D > 0 its denominator)."""
    return mm * t * growth_denominator(mm) * sp.Derivative(supcon_out_config(mm), s_c)


N = sp.Symbol("N", integer=True, positive=True)  # number of noise samples
S = sp.Symbol("S", integer=True, positive=True)  # support size of p+ and p-
cnt = sp.Symbol("c", integer=True)  # how many noise samples hit the first support point
pp = sp.IndexedBase("p_plus", positive=True)  # p+ (target class)
pm = sp.IndexedBase("p_minus", positive=True)  # p- (noise: the other classes)
f = sp.IndexedBase("f", positive=True)  # critic values on the support


def jeffreys(size: Any = S) -> sp.Expr:
    r""":math:`D_J = KL(p^+\|p^-) + KL(p^-\|p^+)` on a support of ``size`` points."""
    return sp.Sum(pp[k] * sp.log(pp[k] / pm[k]), (k, 1, size)) + sp.Sum(
        pm[k] * sp.log(pm[k] / pp[k]), (k, 1, size)
    )


def nce_loss_two_point(nn: Any = N) -> sp.Expr:
    r""":math:`L(f)=\mathbb E[-\log f(x_0)/(f(x_0)+\sum_{n=1}^N f(x_n))]` for :math:`x_0\sim p^+`,
    :math:`x_1..x_N \sim p^-` iid on the two points {1, 2}: the noise enters through the number
    ``c`` of samples at point 1 (binomial)."""
    noise = cnt * f[1] + (nn - cnt) * f[2]
    inner = sp.Sum(
        sp.binomial(nn, cnt) * pm[1] ** cnt * pm[2] ** (nn - cnt) * sp.log((f[a] + noise) / f[a]),
        (cnt, 0, nn),
    )
    return sp.Sum(pp[a] * inner, (a, 1, 2))


def _two_point_facts() -> tuple[sp.Basic, ...]:
    """p+ and p- on the simplex of two points: p[2] = 1 - p[1] with 0 < p[1] < 1."""
    return (
        sp.Eq(pp[2], 1 - pp[1]),
        sp.Eq(pm[2], 1 - pm[1]),
        sp.Gt(1 - pp[1], 0),
        sp.Gt(1 - pm[1], 0),
    )


def _simplex_facts() -> tuple[sp.Basic, ...]:
    return (sp.Eq(sp.Sum(pp[k], (k, 1, S)), 1), sp.Eq(sp.Sum(pm[k], (k, 1, S)), 1))


def _kl_bound_statement() -> sp.Expr:
    return sp.Le(sp.log(N + 1) - nce_loss_two_point(), N / (N + 1) * jeffreys(2))


def _kl_n1_certificate() -> Reduction:
    r"""At N = 1: L(f) - log 2 + D_J/2 = (a_1 b_2 + a_2 b_1) [KL(pi || q) + Jensen gap], where
    pi_k = r_k/(r_1 + r_2) (r = p+/p-) is the posterior of the target's slot, q_k = f_k/(f_1 +
    f_2) the critic's, and the Jensen gap is log((r_1 + r_2)/2) - (log r_1 + log r_2)/2."""
    r = {1: pp[1] / pm[1], 2: pp[2] / pm[2]}
    weight = pp[1] * pm[2] + pp[2] * pm[1]
    post = sp.Lambda(k, (pp[k] / pm[k]) / (r[1] + r[2]))
    crit = sp.Lambda(k, f[k] / (f[1] + f[2]))
    return Reduction(
        uses=(
            LemmaUse(GIBBS, {"n": 2, "p": post, "q": crit}, factor=weight),
            LemmaUse(
                JENSEN_LOG,
                {"n": 2, "w": sp.Lambda(k, sp.Rational(1, 2)), "x": sp.Lambda(k, pp[k] / pm[k])},
                factor=weight,
            ),
        ),
        steps=("doit", "together", "factor_terms", "expand_log", "facts", "expand"),
    )


# ----------------------------------------------------------------------------- DEFINITIONS

_SIM = (s, u, t)

DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        name="supcon_out",
        family="sincere",
        build=supcon_out,
        sizes=(m, M),
        args=_SIM,
        source=SOURCE_KHOSLA + " (Eq. 2, one anchor)",
        doc=r"-\frac1m\sum_p\log(e^{s_p/t}/Z)",
    ),
    Definition(
        name="supcon_in",
        family="sincere",
        build=supcon_in,
        sizes=(m, M),
        args=_SIM,
        source=SOURCE_KHOSLA + " (Eq. 3, one anchor)",
        doc=r"-\log(\frac1m\sum_p e^{s_p/t}/Z)",
    ),
    Definition(
        name="sincere",
        family="sincere",
        build=sincere,
        sizes=(m, M),
        args=_SIM,
        source=SOURCE_SINCERE + " (one anchor)",
        doc=r"-\frac1m\sum_p\log(e^{s_p/t}/(e^{s_p/t}+Z_N))",
    ),
    Definition(
        name="supcon_term",
        family="sincere",
        build=supcon_term,
        sizes=(m, M),
        args=(*_SIM, a),
        source=SOURCE_KHOSLA + "; research note §0 (the term of one positive pair)",
        doc=r"-\log(e^{s_a/t}/Z)",
    ),
    Definition(
        name="sincere_term",
        family="sincere",
        build=sincere_term,
        sizes=(m, M),
        args=(*_SIM, a),
        source=SOURCE_SINCERE + " (the term of one positive pair)",
        doc=r"-\log(e^{s_a/t}/(e^{s_a/t}+Z_N))",
    ),
    Definition(
        name="ntxent",
        family="sincere",
        build=ntxent,
        sizes=(M,),
        args=_SIM,
        source="Chen et al. 2020 (SimCLR) NT-Xent; Oord et al. 2018 InfoNCE",
        doc=r"-\log(e^{s_1/t}/(e^{s_1/t}+Z_N))",
    ),
    Definition(
        name="hobbitlong",
        family="sincere",
        build=hobbitlong,
        sizes=(m, M),
        args=(*_SIM, t_b, c),
        source="HobbitLong/SupContrast losses.py SupConLoss (research note §2.1)",
        doc=r"-(t/t_b)\frac1m\sum_p[(s_p/t-c)-\log\sum_a e^{s_a/t-c}]",
    ),
    Definition(
        name="supcon_out_config",
        family="sincere",
        build=supcon_out_config,
        sizes=(m, M),
        args=(s_c, s_o, u, t),
        source=SOURCE_KHOSLA + " (Eq. 2 at one closest positive and m - 1 equal others)",
        doc=r"-\frac1m[\log(e^{s_c/t}/D)+(m-1)\log(e^{s_o/t}/D)]",
    ),
    Definition(
        name="nce_loss_two_point",
        family="sincere",
        build=nce_loss_two_point,
        sizes=(N,),
        args=(pp, pm, f),
        source="research note §1.5 (the NCE loss of the KL bound) on a two-point support",
        doc=r"\sum_a p^+_a\sum_c\binom Nc (p^-_1)^c(p^-_2)^{N-c}\log\frac{f_a+cf_1+(N-c)f_2}{f_a}",
    ),
    Definition(
        name="jeffreys",
        family="sincere",
        build=jeffreys,
        sizes=(S,),
        args=(pp, pm),
        source="Jeffreys divergence; research note §1.5",
        doc=r"KL(p^+\|p^-)+KL(p^-\|p^+)",
    ),
)


# ----------------------------------------------------------------------------- closed forms


def share(x: Any) -> sp.Expr:
    """P: softmax share of logit x/t over A(i)."""
    return _e(x) / z_all()


def q_share(x: Any) -> sp.Expr:
    """Q: SINCERE's per-pair share e^{x/t}/(e^{x/t} + Z_N)."""
    return _e(x) / (_e(x) + z_neg())


_D = ("delta_sums", "canon", "linear_sums", "cancel")


def _out_grad_statement() -> sp.Expr:
    return sp.And(
        sp.Eq(sp.Derivative(supcon_out(), s[k]), (share(s[k]) - 1 / m) / t),
        sp.Eq(sp.Derivative(supcon_out(), u[j]), share(u[j]) / t),
    )


def x_share(x: Any) -> sp.Expr:
    """X: softmax share of logit x/t over the positives only."""
    return _e(x) / z_pos()


def _sincere_grad_closed() -> tuple[sp.Expr, sp.Expr]:
    gp = (q_share(s[k]) - 1) / (m * t)
    gn = sp.Sum(_e(u[j]) / (_e(s[p]) + z_neg()), (p, 1, m)) / (m * t)
    return gp, gn


def _sincere_grad_statement() -> sp.Expr:
    gp, gn = _sincere_grad_closed()
    return sp.And(
        sp.Eq(sp.Derivative(sincere(), s[k]), gp), sp.Eq(sp.Derivative(sincere(), u[j]), gn)
    )


def _in_grad_statement() -> sp.Expr:
    return sp.And(
        sp.Eq(sp.Derivative(supcon_in(), s[k]), (share(s[k]) - x_share(s[k])) / t),
        sp.Eq(sp.Derivative(supcon_in(), u[j]), share(u[j]) / t),
    )


def _other_positive() -> tuple[sp.Basic, ...]:
    """q is a positive other than a: 1 <= a, q <= m and KroneckerDelta(a, q) = 0."""
    return (*index_facts(m, a, q), sp.Eq(sp.KroneckerDelta(a, q), 0))


_DQ = ("derivatives", "delta_sums", "facts", "canon", "linear_sums", "cancel")


# ----------------------------------------------------------------------------- inequalities


def _mean(fn: Any, size: Any = m) -> dict[str, Any]:
    """A Jensen instance over the positives: weights 1/size, values fn(k)."""
    return {"n": size, "w": lambda kk: 1 / size, "x": fn}


def _mean_of(fn: Any, size: Any = m) -> sp.Expr:
    return sp.Sum(fn(k) / size, (k, 1, size))


_LOGS = ("expand_log", "linear_sums", "factor_terms", "expand_log", "canon", "together")


def _in_le_out_tactic() -> Reduction:
    return Reduction(uses=(LemmaUse(JENSEN_LOG, _mean(lambda kk: share(s[kk]))),), steps=_LOGS)


def _lower_bound_tactic() -> Reduction:
    return Reduction(
        uses=(
            LemmaUse(JENSEN_LOG, _mean(lambda kk: share(s[kk]))),
            LemmaUse(LOG_TANGENT, {"u": z_pos() / z_all()}),
        ),
        extra=(z_neg() / z_all(),),
        steps=_LOGS,
    )


def _pair_ratio(mm: Any) -> Any:
    """x_k = (e^{s_k/t} + Z_N)/Z: SINCERE's denominator over SupCon's, for positive k."""
    return lambda kk: (_e(s[kk]) + z_neg()) / z_all(mm)


def _sincere_le_tactic(mm: Any = m) -> Reduction:
    x = _pair_ratio(mm)
    return Reduction(
        uses=(
            LemmaUse(JENSEN_LOG, _mean(x, mm)),
            LemmaUse(LOG_TANGENT, {"u": _mean_of(x, mm)}),
        ),
        extra=((mm - 1) * z_pos(mm) / (mm * z_all(mm)),),
        steps=_LOGS,
    )


def _sincere_nonneg_tactic() -> Reduction:
    return Reduction(
        uses=(
            LemmaUse(JENSEN_LOG, _mean(lambda kk: q_share(s[kk]))),
            LemmaUse(LOG_TANGENT, {"u": _mean_of(lambda kk: q_share(s[kk]))}),
        ),
        extra=(sp.Sum(z_neg() / (_e(s[k]) + z_neg()), (k, 1, m)) / m,),
        steps=(*_LOGS, "merge_sums", "cancel_summands", "linear_sums"),
    )


def _infonce_statement() -> sp.Expr:
    return sp.And(
        sp.Eq(sincere(1), ntxent()), sp.Eq(supcon_out(1), ntxent()), sp.Eq(supcon_in(1), ntxent())
    )


# ----------------------------------------------------------------------------- temperature


def _weighted(x: Any) -> sp.Expr:
    return x * _e(x)


def _out_tau_closed() -> sp.Expr:
    mean_pos = sp.Sum(s[p], (p, 1, m)) / m
    e_all = (sp.Sum(_weighted(s[p]), (p, 1, m)) + sp.Sum(_weighted(u[n]), (n, 1, M))) / z_all()
    return (mean_pos - e_all) / t**2


def _in_tau_closed() -> sp.Expr:
    e_pos = sp.Sum(_weighted(s[p]), (p, 1, m)) / z_pos()
    e_all = (sp.Sum(_weighted(s[p]), (p, 1, m)) + sp.Sum(_weighted(u[n]), (n, 1, M))) / z_all()
    return (e_pos - e_all) / t**2


def _sincere_tau_closed() -> sp.Expr:
    pair = (_weighted(s[p]) + sp.Sum(_weighted(u[n]), (n, 1, M))) / (_e(s[p]) + z_neg())
    return sp.Sum(s[p] - pair, (p, 1, m)) / (m * t**2)


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="sincere.supcon_out_gradient",
        family="sincere",
        kind="gradient",
        text="The SupCon L_out gradient is (P_k - 1/|P(i)|)/t in a positive similarity s_k and "
        "P_j/t in a negative one u_j (P the softmax share over A(i)).",
        statement=_out_grad_statement,
        source=SOURCE_KHOSLA + " (gradient); derived in research note §1.3",
        evidence=("symbolic", "precise", "production"),
        tactic=Both((Differentiate(steps=_D),) * 2),
        facts=lambda: (*index_facts(m, k), *index_facts(M, j)),
        uses=("supcon_out",),
    ),
    Claim(
        id="sincere.supcon_per_term_cross_gradient",
        family="sincere",
        kind="gradient",
        text="In SupCon the term l_ia of one positive pair has derivative P_q/t in every other "
        "positive similarity s_q (q != a).",
        statement=lambda: sp.Eq(sp.Derivative(supcon_term(a), s[q]), share(s[q]) / t),
        source="research note §1.3; Feeney & Hughes v4 abstract/teaser ('Repel')",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=_DQ),
        facts=_other_positive,
        uses=("supcon_term",),
    ),
    Claim(
        id="sincere.supcon_per_term_repulsion",
        family="sincere",
        kind="gradient",
        text="In SupCon every term l_ia pushes every other positive away: d l_ia/d s_q > 0 for "
        "q != a.",
        statement=lambda: sp.Gt(sp.Derivative(supcon_term(a), s[q]), 0),
        source="research note §1.3; Feeney & Hughes v4 abstract/teaser ('Repel')",
        evidence=("symbolic", "precise", "production"),
        tactic=Sign(steps=_DQ),
        facts=_other_positive,
        uses=("supcon_term",),
    ),
    Claim(
        id="sincere.sincere_gradient",
        family="sincere",
        kind="gradient",
        text="SINCERE's gradient is (Q_k - 1)/(|P(i)| t) in a positive similarity s_k and "
        "(1/(|P(i)| t)) sum_p e^{u_j/t}/(e^{s_p/t} + Z_N) in a negative one u_j "
        "(Q_k = e^{s_k/t}/(e^{s_k/t} + Z_N)).",
        statement=_sincere_grad_statement,
        source=SOURCE_SINCERE + "; derived in research note §1.3",
        evidence=("symbolic", "precise", "production"),
        tactic=Both((Differentiate(steps=_D),) * 2),
        facts=lambda: (*index_facts(m, k), *index_facts(M, j)),
        uses=("sincere",),
    ),
    Claim(
        id="sincere.no_same_class_repulsion",
        family="sincere",
        kind="gradient",
        text="In SINCERE the term of pair (i, a) does not move any other positive: "
        "d l_ia/d s_q = 0 for q != a.",
        statement=lambda: sp.Eq(sp.Derivative(sincere_term(a), s[q]), 0),
        source=SOURCE_SINCERE + "; v4 teaser ('Effect of a, b: None'); research note §1.3",
        evidence=("symbolic", "precise"),
        tactic=Differentiate(steps=_DQ),
        facts=_other_positive,
        uses=("sincere_term",),
    ),
    Claim(
        id="sincere.sincere_attracts_positives",
        family="sincere",
        kind="gradient",
        text="With at least one negative (|N(i)| >= 1), SINCERE's gradient in every positive "
        "similarity is < 0, for every |P(i)| >= 1: it never repels a positive, however many "
        "positives share the class.",
        statement=lambda: sp.Lt(sp.Derivative(sincere(m, M1), s[k]), 0),
        source=SOURCE_SINCERE + " ('never causes images from the same class to repel'); "
        "research note §1.3",
        evidence=("symbolic", "precise", "production"),
        tactic=Sign(steps=("derivatives", "delta_sums", "canon", "cancel")),
        facts=lambda: index_facts(m, k),
        uses=("sincere",),
        notes="split from no_same_class_repulsion and from supcon_repulsion_grows_with_positives "
        "('SINCERE's gradient stays negative'); with no negative the gradient is exactly 0",
    ),
    Claim(
        id="sincere.sincere_repels_negatives",
        family="sincere",
        kind="gradient",
        text="SINCERE's gradient in every negative similarity u_j is > 0.",
        statement=lambda: sp.Gt(sp.Derivative(sincere(), u[j]), 0),
        source=SOURCE_SINCERE + "; research note §1.3",
        evidence=("symbolic", "precise", "production"),
        tactic=Sign(steps=("derivatives", "delta_sums", "canon", "cancel")),
        facts=lambda: index_facts(M, j),
        uses=("sincere",),
    ),
    Claim(
        id="sincere.supcon_in_gradient",
        family="sincere",
        kind="gradient",
        text="The SupCon L_in gradient is (P_k - X_k)/t in a positive similarity s_k and P_j/t "
        "in a negative one u_j (X_k = e^{s_k/t}/Z_P the share among the positives).",
        statement=_in_grad_statement,
        source=SOURCE_KHOSLA + "; derived in research note §1.3",
        evidence=("symbolic", "precise", "production"),
        tactic=Both((Differentiate(steps=_D),) * 2),
        facts=lambda: (*index_facts(m, k), *index_facts(M, j)),
        uses=("supcon_in",),
    ),
    Claim(
        id="sincere.supcon_in_gradient_nonpositive",
        family="sincere",
        kind="gradient",
        text="SupCon L_in never repels a positive: its gradient in every positive similarity "
        "is <= 0.",
        statement=lambda: sp.Le(sp.Derivative(supcon_in(), s[k]), 0),
        source=SOURCE_KHOSLA + "; derived in research note §1.3",
        evidence=("symbolic", "precise", "production"),
        tactic=Sign(steps=("derivatives", "delta_sums", "canon", "cancel")),
        facts=lambda: index_facts(m, k),
        uses=("supcon_in",),
    ),
    Claim(
        id="sincere.supcon_in_le_out",
        family="sincere",
        kind="inequality",
        text="SupCon L_in <= L_out per anchor (Jensen's inequality).",
        statement=lambda: sp.Le(supcon_in(), supcon_out()),
        source=SOURCE_KHOSLA + " (inequality direction fixed in HobbitLong issues #61/#149)",
        evidence=("symbolic", "precise", "production"),
        tactic=_in_le_out_tactic(),
        uses=("supcon_in", "supcon_out"),
    ),
    Claim(
        id="sincere.sincere_le_supcon",
        family="sincere",
        kind="inequality",
        text="Per anchor, SINCERE's loss is at most SupCon's L_out (same temperature).",
        statement=lambda: sp.Le(sincere(), supcon_out()),
        source="derived in research note §1.4(1); SINCERE test_losses.py::test_sup",
        evidence=("symbolic", "precise", "production"),
        tactic=_sincere_le_tactic(),
        uses=("sincere", "supcon_out"),
        notes="equality at |P(i)| = 1 is sincere.equals_infonce_instance_labels; strictness for "
        "|P(i)| >= 2 is sincere.sincere_lt_supcon_multi_positive",
    ),
    Claim(
        id="sincere.sincere_lt_supcon_multi_positive",
        family="sincere",
        kind="inequality",
        text="Per anchor with |P(i)| >= 2 positives, SINCERE's loss is strictly below SupCon's "
        "L_out.",
        statement=lambda: sp.Lt(sincere(m1 + 1), supcon_out(m1 + 1)),
        source="derived in research note §1.4(1)",
        evidence=("symbolic", "precise"),
        tactic=_sincere_le_tactic(m1 + 1),
        uses=("sincere", "supcon_out"),
    ),
    Claim(
        id="sincere.supcon_out_lower_bound",
        family="sincere",
        kind="inequality",
        text="Every SupCon L_out anchor term is at least log |P(i)|.",
        statement=lambda: sp.Ge(supcon_out(), sp.log(m)),
        source="derived in research note §1.4(2)",
        evidence=("symbolic", "precise", "production"),
        tactic=_lower_bound_tactic(),
        uses=("supcon_out",),
    ),
    Claim(
        id="sincere.sincere_nonnegative",
        family="sincere",
        kind="inequality",
        text="Every SINCERE anchor term is >= 0 (its infimum; SupCon L_out's is log |P(i)|).",
        statement=lambda: sp.Ge(sincere(), 0),
        source="derived in research note §1.4(2)",
        evidence=("symbolic", "precise"),
        tactic=_sincere_nonneg_tactic(),
        uses=("sincere",),
    ),
    Claim(
        id="sincere.equals_infonce_instance_labels",
        family="sincere",
        kind="identity",
        text="Under instance labels (|P(i)| = 1) SINCERE, SupCon L_out and L_in all equal "
        "InfoNCE / NT-Xent (SimCLR).",
        statement=_infonce_statement,
        source="research note §1.4(1); SINCERE test_losses.py::test_self_sup",
        evidence=("symbolic", "precise", "production"),
        tactic=Both((Simplify(steps=("doit", "expand_log")),) * 3),
        uses=("sincere", "supcon_out", "supcon_in", "ntxent"),
    ),
    Claim(
        id="sincere.base_temperature_rescale",
        family="sincere",
        kind="identity",
        text="HobbitLong's SupConLoss per anchor (logits shifted by a row constant c, scaled "
        "by -t/t_base) equals t/t_base times SupCon L_out.",
        statement=lambda: sp.Eq(hobbitlong(), t / t_b * supcon_out()),
        source="HobbitLong/SupContrast losses.py (research note §2.1)",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(
            steps=(
                "expand_log",
                "expand",
                "linear_sums",
                "factor_terms",
                "expand_log",
                "canon",
                "expand",
            )
        ),
        uses=("hobbitlong", "supcon_out"),
        notes="HobbitLong counts anchors without positives as 0 in its mean; our losses leave "
        "them out (the production leg uses batches where every anchor has a positive)",
    ),
    Claim(
        id="sincere.base_temperature_gradient_rescale",
        family="sincere",
        kind="gradient",
        text="The gradient of HobbitLong's SupConLoss in a positive similarity s_k is "
        "(P_k - 1/|P(i)|)/t_base: t/t_base times SupCon L_out's.",
        statement=lambda: sp.Eq(sp.Derivative(hobbitlong(), s[k]), (share(s[k]) - 1 / m) / t_b),
        source="HobbitLong/SupContrast losses.py (research note §2.1)",
        evidence=("symbolic", "precise"),
        tactic=Differentiate(steps=_D),
        facts=lambda: index_facts(m, k),
        uses=("hobbitlong",),
    ),
    Claim(
        id="sincere.supcon_out_temperature_gradient",
        family="sincere",
        kind="gradient",
        text="dL_out/dt = (mean_p s_p - sum_a P_a s_a)/t^2: the mean positive similarity minus "
        "the P-weighted mean similarity over A(i), over t^2.",
        statement=lambda: sp.Eq(sp.Derivative(supcon_out(), t), _out_tau_closed()),
        source="derived here from Khosla Eq. 2 (learnable temperature)",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("linear_sums", "together")),
        uses=("supcon_out",),
    ),
    Claim(
        id="sincere.supcon_in_temperature_gradient",
        family="sincere",
        kind="gradient",
        text="dL_in/dt = (sum_k X_k s_k - sum_a P_a s_a)/t^2: the X-weighted mean positive "
        "similarity minus the P-weighted mean over A(i), over t^2.",
        statement=lambda: sp.Eq(sp.Derivative(supcon_in(), t), _in_tau_closed()),
        source="derived here from Khosla Eq. 3 (learnable temperature)",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("linear_sums", "together")),
        uses=("supcon_in",),
    ),
    Claim(
        id="sincere.sincere_temperature_gradient",
        family="sincere",
        kind="gradient",
        text="dL_SINCERE/dt = (1/(|P(i)| t^2)) sum_p [s_p - (s_p e^{s_p/t} + sum_n u_n "
        "e^{u_n/t})/(e^{s_p/t} + Z_N)].",
        statement=lambda: sp.Eq(sp.Derivative(sincere(), t), _sincere_tau_closed()),
        source="derived here from the SINCERE loss (learnable temperature)",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("together", "expand", "merge_sums", "cancel_summands")),
        uses=("sincere",),
    ),
    Claim(
        id="sincere.supcon_repulsion_threshold",
        family="sincere",
        kind="gradient",
        text="With the closest positive at similarity s_c and the other |P|-1 positives at a "
        "common s_o, SupCon's gradient on the closest positive is [(|P|-1)(e^{s_c/t} - "
        "e^{s_o/t}) - Z_N]/(|P| t D), D = e^{s_c/t} + (|P|-1)e^{s_o/t} + Z_N > 0: it repels "
        "that positive iff (|P|-1)(e^{s_c/t} - e^{s_o/t}) > Z_N.",
        statement=lambda: sp.Eq(
            sp.Derivative(supcon_out_config(), s_c),
            repulsion_margin() / (m * t * growth_denominator()),
        ),
        source="research note §1.3 table; Feeney & Hughes v4 abstract",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("together", "expand", "cancel")),
        uses=("supcon_out_config",),
    ),
    Claim(
        id="sincere.supcon_repulsion_grows_with_positives",
        family="sincere",
        kind="inequality",
        text="In the same configuration with s_c > s_o, |P| t D times SupCon's gradient on "
        "the closest positive (D > 0 its denominator) strictly increases from |P| to |P|+1: "
        "once repelled, the closest positive stays repelled as the class grows.",
        statement=lambda: sp.Gt(_scaled_gradient(m + 1) - _scaled_gradient(m), 0),
        source="Feeney & Hughes v4 abstract ('gets worse as the number of images sharing one "
        "class label increases'); research note §1.3 table",
        evidence=("symbolic", "precise", "production"),
        tactic=Sign(steps=("derivatives", "together", "expand", "cancel")),
        facts=lambda: (sp.Gt(_e(s_c) - _e(s_o), 0),),
        uses=("supcon_out_config",),
        notes="the hypothesis s_c > s_o enters as e^{s_c/t} > e^{s_o/t} (t > 0); SINCERE's "
        "side ('its gradient stays negative') is sincere.sincere_attracts_positives",
    ),
    Claim(
        id="sincere.kl_bound",
        family="sincere",
        kind="inequality",
        text="For p+ and p- on a two-point support, one target x_0 ~ p+, N >= 1 noise samples "
        "x_1..x_N iid ~ p- and every critic f > 0: log(N+1) - L(f) <= N/(N+1) D_J (D_J the "
        "Jeffreys divergence KL(p+||p-) + KL(p-||p+)).",
        statement=_kl_bound_statement,
        source="Feeney & Hughes v4 abstract (KL bound); proof and constant: research note §1.5",
        evidence=("symbolic", "precise"),
        tactic=Instances(values=({N: 1},), inner=_kl_n1_certificate()),
        facts=_two_point_facts,
        uses=("nce_loss_two_point", "jeffreys"),
        notes="checked, not proved: the general-N proof rests on the exchangeable-slot argument "
        "(the target at a uniformly random one of the N+1 slots makes L(f) a cross-entropy "
        "against the slot posterior), which is not a SymPy certificate; the engine proves the "
        "N = 1 instance by Gibbs + Jensen. The note states the bound for arbitrary p+/p-: the "
        "precise leg also checks 3- and 5-point supports and Gaussians (N up to 16)",
    ),
    Claim(
        id="sincere.kl_bound_jeffreys",
        family="sincere",
        kind="inequality",
        text="For p+, p- > 0 on a finite support, N/(N+1) D_J <= D_J (D_J >= 0 by Gibbs).",
        statement=lambda: sp.Le(N / (N + 1) * jeffreys(), jeffreys()),
        source="research note §1.5 (second inequality of the KL bound)",
        evidence=("symbolic", "precise"),
        tactic=Reduction(
            uses=(
                LemmaUse(GIBBS, {"n": S, "p": pp.__getitem__, "q": pm.__getitem__}, 1 / (N + 1)),
                LemmaUse(GIBBS, {"n": S, "p": pm.__getitem__, "q": pp.__getitem__}, 1 / (N + 1)),
            ),
            steps=("together",),
        ),
        facts=_simplex_facts,
        uses=("jeffreys",),
    ),
)
