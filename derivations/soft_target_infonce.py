r"""Soft-target InfoNCE (Hugger & Uhlmann 2024, arXiv 2404.14076): definitions and claims.

The loss is fixed by the official code (research note §1.2-§1.3). One row: logits :math:`f_c`
(:math:`c = 1..C`), candidate targets :math:`\alpha_{jc}` (:math:`j = 1..M`), positive index
:math:`p`, temperature :math:`t`, noise probabilities :math:`q_c > 0`:

.. math::
    S_j = \sum_{c=1}^{C}\alpha_{jc}\,(f_c/t - \log q_c),\qquad
    \ell = \log\sum_{j=1}^{M} e^{S_j} - S_p .

The batch loss is the mean of :math:`\ell_i` over the :math:`N` local rows (positive of row
:math:`i` at ``offset + i``); the statements below are about one row.

Symbols: sizes ``C``, ``M``, ``R`` (support points of a discrete target law) and ``K`` (negatives)
are positive integers; ``IndexedBase`` entries carry their sign assumptions. Facts that hold *for
every* candidate (the simplex ``sum_c alpha[j, c] = 1``, a zero column ``alpha[j, z] = 0``) are
written with the Wild index ``j_`` (:data:`J`): the engine reads such an ``Eq`` fact as a schema,
true at every value of the Wild.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

import softnce_theory.derivations.cross_entropy as CE
from softnce_theory.derivations._claim import Claim, Definition
from softnce_theory.derivations.lemmas import LOG_TANGENT, get_lemma
from softnce_theory.derivations.tactics import (
    ComputeLimit,
    Differentiate,
    Exact,
    LemmaUse,
    Reduction,
    Simplify,
    index_facts,
)

FAMILY = "soft_target_infonce"

C = sp.Symbol("C", integer=True, positive=True)  # classes
M = sp.Symbol("M", integer=True, positive=True)  # candidates
R = sp.Symbol("R", integer=True, positive=True)  # support points of a discrete target law
K = sp.Symbol("K", integer=True, positive=True)  # negatives
c, j, m, p, r, n_, z = sp.symbols("c j m p r n z", integer=True)
y0 = sp.Symbol("y_0", integer=True)
f = CE.f  # IndexedBase("f", real=True): the logits of one row (shared with cross_entropy)
alpha = sp.IndexedBase("alpha", real=True)  # alpha[j, c]: candidate targets
alpha0 = sp.IndexedBase("alpha0", real=True)  # the positive's target (large-K form)
A = sp.IndexedBase("A", nonnegative=True)  # A[r, c]: support points of the target law
P = sp.IndexedBase("P", positive=True)  # their probabilities (the support has P_r > 0)
q = sp.IndexedBase("q", positive=True)  # noise probabilities
y = sp.IndexedBase("y", integer=True)  # hard labels of the candidates (1-based)
t = CE.t  # Symbol("t", positive=True)
kappa = sp.Symbol("kappa", real=True)
mu = sp.Symbol("mu", real=True)
eps = sp.Symbol("epsilon", positive=True)
pw = sp.Symbol("pi", positive=True)  # two-point law: P(alpha = A_1) = pi
J = sp.Wild("j")  # "for every candidate j" in schematic facts

Fn = Callable[..., Any]


# ----------------------------------------------------------------------------- definitions


def _logit(cc: Any) -> Any:
    return f[cc]


def _target(jj: Any, cc: Any) -> Any:
    return alpha[jj, cc]


def _noise(cc: Any) -> Any:
    return q[cc]


def score(
    jj: Any,
    targets: Fn = _target,
    logits: Fn = _logit,
    noise: Fn = _noise,
    temp: Any = t,
    classes: Any = C,
) -> sp.Expr:
    r""":math:`S_j = \sum_c \alpha_{jc}(f_c/t - \log q_c)` (``log q`` not divided by ``t``)."""
    return sp.Sum(targets(jj, c) * (logits(c) / temp - sp.log(noise(c))), (c, 1, classes))


def row_loss(
    targets: Fn = _target,
    logits: Fn = _logit,
    noise: Fn = _noise,
    temp: Any = t,
    pos: Any = p,
    cands: Any = M,
    classes: Any = C,
) -> sp.Expr:
    r"""Soft-target InfoNCE of one row, :math:`\log\sum_{j=1}^{M} e^{S_j} - S_p`."""

    def s(jj: Any) -> sp.Expr:
        return score(jj, targets, logits, noise, temp, classes)

    return sp.log(sp.Sum(sp.exp(s(j)), (j, 1, cands))) - s(pos)


def ranking_nce() -> sp.Expr:
    r"""Ma & Collins' ranking NCE of one row: :math:`-\log\big(e^{\bar s(y_p)}/\sum_j
    e^{\bar s(y_j)}\big)`, :math:`\bar s(y) = f_y/t - \log q_y`."""

    def sbar(jj: Any) -> sp.Expr:
        return f[y[jj]] / t - sp.log(q[y[jj]])

    return -sp.log(sp.exp(sbar(p)) / sp.Sum(sp.exp(sbar(j)), (j, 1, M)))


def _g(cc: Any) -> sp.Expr:
    return f[cc] / t - sp.log(q[cc])


def large_k_limit(
    a0: Fn = lambda cc: alpha0[cc],
    support: Fn = lambda rr, cc: A[rr, cc],
    probs: Fn = lambda rr: P[rr],
    points: Any = R,
) -> sp.Expr:
    r""":math:`-\langle\alpha_0, g\rangle + \log\sum_r P_r e^{\langle A_r, g\rangle}`,
    :math:`g = f/t - \log q`: the large-K limit of :math:`\ell_K - \log K` for negatives drawn
    from :math:`\sum_r P_r \delta_{A_r}` (research note §1.5)."""
    s0 = sp.Sum(a0(c) * _g(c), (c, 1, C))
    inner = sp.Sum(support(r, c) * _g(c), (c, 1, C))
    return -s0 + sp.log(sp.Sum(probs(r) * sp.exp(inner), (r, 1, points)))


def stratified_loss() -> sp.Expr:
    r"""The row loss on the candidate set {positive :math:`\alpha_0`} :math:`\cup` {:math:`K P_r`
    copies of :math:`A_r`} (identical candidates grouped):
    :math:`\log\big(e^{S_0} + K\sum_r P_r e^{\langle A_r, g\rangle}\big) - S_0`."""
    s0 = sp.Sum(alpha0[c] * _g(c), (c, 1, C))
    inner = sp.Sum(A[r, c] * _g(c), (c, 1, C))
    return sp.log(sp.exp(s0) + K * sp.Sum(P[r] * sp.exp(inner), (r, 1, R))) - s0


def expected_loss_two_point() -> sp.Expr:
    r""":math:`\mathbb E\,\ell_K` for a fixed positive :math:`\alpha_0` and :math:`K` i.i.d.
    negatives from :math:`\pi\,\delta_{A_1} + (1-\pi)\,\delta_{A_2}`: a binomial sum over the
    number :math:`n` of :math:`A_1` draws."""
    s0 = sp.Sum(alpha0[c] * _g(c), (c, 1, C))
    s1 = sp.Sum(A[1, c] * _g(c), (c, 1, C))
    s2 = sp.Sum(A[2, c] * _g(c), (c, 1, C))
    term = sp.log(sp.exp(s0) + n_ * sp.exp(s1) + (K - n_) * sp.exp(s2)) - s0
    return sp.Sum(sp.binomial(K, n_) * pw**n_ * (1 - pw) ** (K - n_) * term, (n_, 0, K))


def soft_ce() -> sp.Expr:
    r"""Soft-target CE of the positive's target, :math:`-\sum_c \alpha_{0c}\log
    \mathrm{softmax}(f/t)_c` (:func:`derivations.cross_entropy.soft_ce`)."""
    return CE.soft_ce(targets=alpha0, temp=t)


def nll() -> sp.Expr:
    r"""Hard-label CE, :math:`-\log\mathrm{softmax}(f/t)_{y_0}`."""
    return -CE.log_prob(y0, t)


_SRC = "Hugger & Uhlmann 2024 (arXiv 2404.14076), official code loss.py"

DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        name="soft_target_infonce",
        family=FAMILY,
        build=row_loss,
        sizes=(C, M),
        args=(f, alpha, q, t, p),
        source=f"{_SRC} (research note §1.2)",
        doc="log sum_j e^{S_j} - S_p, S_j = sum_c alpha_jc (f_c/t - log q_c)",
    ),
    Definition(
        name="ranking_nce",
        family=FAMILY,
        build=ranking_nce,
        sizes=(C, M),
        args=(f, y, q, t, p),
        source="Ma & Collins 2018 (arXiv 1809.01812), ranking objective",
        doc="-log(e^{sbar(y_p)} / sum_j e^{sbar(y_j)}), sbar(y) = f_y/t - log q_y",
    ),
    Definition(
        name="large_k_limit",
        family=FAMILY,
        build=large_k_limit,
        sizes=(C, R),
        args=(f, alpha0, A, P, q, t),
        source="research note §1.5",
        doc="-<alpha0, g> + log sum_r P_r e^{<A_r, g>}, g = f/t - log q",
    ),
    Definition(
        name="stratified_loss",
        family=FAMILY,
        build=stratified_loss,
        sizes=(C, R),
        args=(f, alpha0, A, P, q, t, K),
        source="research note §1.5 (the loss on a stratified candidate set)",
        doc="log(e^{S_0} + K sum_r P_r e^{<A_r, g>}) - S_0",
    ),
    Definition(
        name="expected_loss_two_point",
        family=FAMILY,
        build=expected_loss_two_point,
        sizes=(C, K),
        args=(f, alpha0, A, pw, q, t),
        source="research note §1.5 / §6.5 (finite-K expectation, two-point target law)",
        doc="sum_n binom(K, n) pi^n (1-pi)^(K-n) [log(e^{S0} + n e^{S1} + (K-n) e^{S2}) - S0]",
    ),
    Definition(
        name="soft_ce",
        family=FAMILY,
        build=soft_ce,
        sizes=(C,),
        args=(f, alpha0, t),
        source="Hugger & Uhlmann 2024 baseline SoftTargetCrossEntropy (research note §1.3)",
        doc="-sum_c alpha0_c log softmax(f/t)_c",
    ),
    Definition(
        name="nll",
        family=FAMILY,
        build=nll,
        sizes=(C,),
        args=(f, y0, t),
        source="standard (hard-label cross-entropy)",
        doc="-log softmax(f/t)_{y0}",
    ),
)


# ----------------------------------------------------------------------------- statements


def _one_hot(jj: Any, cc: Any) -> Any:
    return sp.KroneckerDelta(cc, y[jj])


def _one_hot_statement() -> sp.Expr:
    return sp.Eq(row_loss(targets=_one_hot), ranking_nce())


def _weights(jj: Any) -> sp.Expr:
    return sp.exp(score(jj)) / sp.Sum(sp.exp(score(j)), (j, 1, M))


def _grad_closed() -> sp.Expr:
    return (sp.Sum(_weights(j) * alpha[j, m], (j, 1, M)) - alpha[p, m]) / t


def _grad_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(row_loss(), f[m]), _grad_closed())


def _grad_sum_statement() -> sp.Expr:
    return sp.Eq(sp.Sum(sp.Derivative(row_loss(), f[m]), (m, 1, C)), 0)


def _tau_closed() -> sp.Expr:
    r""":math:`\partial\ell/\partial t = \big(\langle\alpha_p, f\rangle - \sum_j w_j
    \langle\alpha_j, f\rangle\big)/t^2`."""
    af_p = sp.Sum(alpha[p, c] * f[c], (c, 1, C))
    af_j = sp.Sum(alpha[j, c] * f[c], (c, 1, C))
    return (af_p - sp.Sum(_weights(j) * af_j, (j, 1, M))) / t**2


def _tau_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(row_loss(), t), _tau_closed())


def _shifted(cc: Any) -> Any:
    return f[cc] + kappa


def _shift_statement() -> sp.Expr:
    return sp.Eq(row_loss(logits=_shifted), row_loss())


def _curvature_closed() -> sp.Expr:
    r""":math:`\sum_j w_j(\mu_j - \bar\mu)^2/t^2` at the shifted logits, :math:`\mu_j =
    \sum_c\alpha_{jc}`, :math:`\bar\mu = \sum_j w_j\mu_j`."""

    def w(jj: Any) -> sp.Expr:
        return sp.exp(score(jj, logits=_shifted)) / sp.Sum(
            sp.exp(score(j, logits=_shifted)), (j, 1, M)
        )

    def mass(jj: Any) -> sp.Expr:
        return sp.Sum(alpha[jj, c], (c, 1, C))

    mbar = sp.Sum(w(j) * mass(j), (j, 1, M))
    return sp.Sum(w(j) * mass(j) ** 2, (j, 1, M)) / t**2 - mbar**2 / t**2


def _curvature_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(row_loss(logits=_shifted), kappa, 2), _curvature_closed())


def _uniform_statement() -> sp.Expr:
    return sp.Eq(row_loss(noise=lambda cc: 1 / C), row_loss(noise=lambda cc: sp.Integer(1)))


def _identical_statement() -> sp.Expr:
    return sp.Eq(row_loss(targets=lambda jj, cc: alpha0[cc]), sp.log(M))


def _single_statement() -> sp.Expr:
    return sp.Eq(row_loss(pos=1, cands=1), 0)


def _zero_noise_statement() -> sp.Expr:
    # q_eps = (1 - eps) q + eps e_z (q_z = 0), and the masked loss (the log q term of class z
    # dropped, 0 log 0 := 0), both written per class with KroneckerDelta exponents
    def q_eps(cc: Any) -> Any:
        d = sp.KroneckerDelta(cc, z)
        return ((1 - eps) * q[cc]) ** (1 - d) * eps**d

    def q_masked(cc: Any) -> Any:
        return q[cc] ** (1 - sp.KroneckerDelta(cc, z))

    return sp.Eq(row_loss(noise=q_eps), row_loss(noise=q_masked))


def _hard_limit_statement() -> sp.Expr:
    lim = large_k_limit(
        a0=lambda cc: sp.KroneckerDelta(cc, y0),
        support=lambda rr, cc: sp.KroneckerDelta(cc, rr),
        probs=lambda rr: q[rr],
        points=C,
    )
    return sp.Eq(lim, nll() + sp.log(q[y0]))


def _soft_bound_big() -> sp.Expr:
    return soft_ce() + sp.Sum(alpha0[c] * sp.log(q[c]), (c, 1, C))


def _soft_bound_statement() -> sp.Expr:
    return sp.Le(large_k_limit(), _soft_bound_big())


#: the witness: C = 2, t = 1, f = (1, 0), q = (1/2, 1/2), one soft support point (1/2, 1/2)
_WITNESS: dict[Any, Any] = {
    f[1]: 1,
    f[2]: 0,
    q[1]: sp.Rational(1, 2),
    q[2]: sp.Rational(1, 2),
    alpha0[1]: sp.Rational(1, 2),
    alpha0[2]: sp.Rational(1, 2),
    A[1, 1]: sp.Rational(1, 2),
    A[1, 2]: sp.Rational(1, 2),
    P[1]: 1,
    t: 1,
}


def _strict_witness_statement() -> sp.Expr:
    sizes = {C: 2, R: 1}
    lim = large_k_limit().xreplace(sizes).doit().xreplace(_WITNESS)
    big = _soft_bound_big().xreplace(sizes).doit().xreplace(_WITNESS)
    return sp.Lt(lim, big, evaluate=False)


def _limit_statement() -> sp.Expr:
    return sp.Eq(sp.Limit(stratified_loss() - sp.log(K), K, sp.oo), large_k_limit())


def _two_point(rr: Any) -> Any:
    return pw * sp.KroneckerDelta(rr, 1) + (1 - pw) * sp.KroneckerDelta(rr, 2)


def _rate_statement() -> sp.Expr:
    lim = large_k_limit(probs=_two_point, points=2)
    s0 = sp.Sum(alpha0[c] * _g(c), (c, 1, C))
    w1 = sp.exp(sp.Sum(A[1, c] * _g(c), (c, 1, C)))
    w2 = sp.exp(sp.Sum(A[2, c] * _g(c), (c, 1, C)))
    mean = pw * w1 + (1 - pw) * w2
    var = pw * (1 - pw) * (w1 - w2) ** 2
    coeff = sp.exp(s0) / mean - var / (2 * mean**2)
    # unevaluated: SymPy would otherwise try to compare the binomial sum with the O term
    lhs = sp.Add(expected_loss_two_point(), -sp.log(K), -lim, evaluate=False)
    rhs = sp.Add(coeff / K, sp.O(1 / K**2, (K, sp.oo)), evaluate=False)
    return sp.Eq(lhs, rhs, evaluate=False)


_i, _o, _w, _N = sp.symbols("i o w N", integer=True)


def _gather_statement() -> sp.Expr:
    # local row i of rank w, positive at offset o + i, against all M = N W gathered candidates;
    # the global batch's row N w + i
    return sp.Eq(row_loss(pos=_o + _i), row_loss(pos=_N * _w + _i))


def _nonneg_statement() -> sp.Expr:
    return sp.Ge(row_loss(), 0)


def _positive_statement() -> sp.Expr:
    return sp.Gt(row_loss(), 0)


# ----------------------------------------------------------------------------- facts


def _simplex_rows() -> tuple[sp.Basic, ...]:
    """Every candidate target on the simplex (the sign is not needed by these identities)."""
    return (sp.Eq(sp.Sum(alpha[J, c], (c, 1, C)), 1),)


def _pos_range() -> tuple[sp.Basic, ...]:
    return index_facts(M, p)


def _large_k_facts() -> tuple[sp.Basic, ...]:
    """alpha0 and every support point on the simplex, P a probability vector, E[alpha] = q."""
    return (
        sp.Eq(sp.Sum(alpha0[c], (c, 1, C)), 1),
        sp.Eq(sp.Sum(A[J, c], (c, 1, C)), 1),
        sp.Eq(sp.Sum(P[r], (r, 1, R)), 1),
        sp.Eq(sp.Sum(P[r] * A[r, J], (r, 1, R)), q[J]),
    )


def _zero_noise_facts() -> tuple[sp.Basic, ...]:
    return (
        *_simplex_rows(),
        sp.Eq(alpha[J, z], 0),
        sp.Lt(eps, 1),
        *index_facts(C, z),
    )


# ----------------------------------------------------------------------------- certificates


def _lse_partition() -> sp.Expr:
    return sp.Sum(sp.exp(score(j)), (j, 1, M))


def _row_bound(lemma_name: str) -> Reduction:
    r"""``ell = log X - S_p = log_tangent(e^{S_p}/X) + (X - e^{S_p})/X``, ``X = sum_j e^{S_j}``;
    the second term is ``1/X`` times the lemma ``sum_k a_k - a_p`` at ``a_k = e^{S_k}``."""
    x = _lse_partition()
    return Reduction(
        uses=(
            LemmaUse(LOG_TANGENT, {"u": sp.exp(score(p)) / x}),
            LemmaUse(
                get_lemma(lemma_name),
                {"n": M, "a": lambda kk: sp.exp(score(kk)), "m": p},
                1 / x,
            ),
        ),
        steps=("expand_log",),
    )


def _soft_bound_certificate() -> Reduction:
    r"""``big - small = log Z - log Y`` (``Z = sum_c e^{f_c/t}``, ``Y = sum_r P_r
    e^{<A_r, g>}``, alpha0 on the simplex) ``= log_tangent(Y/Z) + (Z - Y)/Z`` and, with
    ``E[alpha] = q``, ``Z = sum_r sum_c P_r A_rc e^{g_c}``, so ``Z - Y`` is the row-wise Jensen
    gap of exp at the weights ``A_r``."""
    zz = sp.Sum(sp.exp(f[c] / t), (c, 1, C))
    yy = sp.Sum(P[r] * sp.exp(sp.Sum(A[r, c] * _g(c), (c, 1, C))), (r, 1, R))
    return Reduction(
        uses=(
            LemmaUse(LOG_TANGENT, {"u": yy / zz}),
            LemmaUse(
                get_lemma("jensen_exp_rows"),
                {
                    "m": R,
                    "n": C,
                    "P": lambda rr: P[rr],
                    "w": lambda rr, cc: A[rr, cc],
                    "x": _g,
                },
                1 / zz,
            ),
        ),
        steps=("swap_sums", "expand_log", "linear_sums", "facts"),
    )


_SHIFT_STEPS = ("linear_sums", "facts", "split_exp", "linear_sums", "expand_log")


# ----------------------------------------------------------------------------- catalogue

_NOTE_PROD = "production legs check the batch loss (mean over rows), whose rows are this loss"

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id=f"{FAMILY}.one_hot_ranking_nce",
        family=FAMILY,
        kind="identity",
        text=(
            "With one-hot candidate targets alpha_j = e_{y_j} (1 <= y_j <= C), the soft-target "
            "InfoNCE row loss equals Ma & Collins' ranking NCE with the in-batch labels as noise "
            "and the -log q_y correction."
        ),
        statement=_one_hot_statement,
        source=f"{_SRC} class InfoNCE (research note §1.4.1); Ma & Collins 2018 (arXiv 1809.01812)",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("doit_delta", ("in_range", C, y[j], y[p]), "expand_log")),
        facts=lambda: index_facts(C, y[j], y[p]),
        uses=("soft_target_infonce", "ranking_nce"),
        notes="the facts on y[j] hold for every candidate j (the summation index)",
    ),
    Claim(
        id=f"{FAMILY}.gradient",
        family=FAMILY,
        kind="gradient",
        text=(
            "For one row, d ell / d f_m = (sum_j w_j alpha_jm - alpha_pm) / t with w_j = "
            "softmax_j(S_j), for any real candidate targets."
        ),
        statement=_grad_statement,
        source=f"derived in research note §1.4.5 ({_SRC})",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("doit_delta", ("in_range", C, m), "linear_sums")),
        facts=lambda: index_facts(C, m),
        uses=("soft_target_infonce",),
        notes="the batch mean over N rows adds the factor 1/N; " + _NOTE_PROD,
    ),
    Claim(
        id=f"{FAMILY}.gradient_zero_sum",
        family=FAMILY,
        kind="identity",
        text=(
            "When every candidate target sums to 1, the row gradient sums to zero over the "
            "classes: sum_m d ell / d f_m = 0."
        ),
        statement=_grad_sum_statement,
        source=f"research note §1.4.5 ({_SRC})",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(
            steps=(
                "doit_delta",
                ("in_range", C, m),
                "linear_sums",
                "swap_sums",
                "linear_sums",
                "facts",
            )
        ),
        facts=lambda: (*index_facts(C, m), *_simplex_rows()),
        uses=("soft_target_infonce",),
        notes="the facts on m hold on the summation range; split from `gradient`",
    ),
    Claim(
        id=f"{FAMILY}.temperature_gradient",
        family=FAMILY,
        kind="gradient",
        text=(
            "d ell / d t = (<alpha_p, f> - sum_j w_j <alpha_j, f>) / t^2 with w_j = "
            "softmax_j(S_j) (log q is not divided by t, so it does not enter)."
        ),
        statement=_tau_statement,
        source="derived here from the definition (learnable temperature; issue 14)",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("linear_sums",)),
        facts=lambda: (),
        uses=("soft_target_infonce",),
        notes=_NOTE_PROD,
    ),
    Claim(
        id=f"{FAMILY}.shift_invariance_equal_mass",
        family=FAMILY,
        kind="identity",
        text=(
            "If every candidate target has the same total mass mu (sum_c alpha_jc = mu for all "
            "j; on the simplex mu = 1), the row loss is unchanged by a shift f -> f + kappa 1."
        ),
        statement=_shift_statement,
        source=f"research note §1.4.2 (derived from {_SRC})",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=_SHIFT_STEPS),
        facts=lambda: (sp.Eq(sp.Sum(alpha[J, c], (c, 1, C)), mu),),
        uses=("soft_target_infonce",),
        notes=(
            "the 'if' half of the former shift_invariance_iff_equal_mass; the 'only if' half "
            "follows from shift_curvature_mass_variance"
        ),
    ),
    Claim(
        id=f"{FAMILY}.shift_curvature_mass_variance",
        family=FAMILY,
        kind="identity",
        text=(
            "Along a shift f -> f + kappa 1, d^2 ell / d kappa^2 = (sum_j w_j mu_j^2 - (sum_j "
            "w_j mu_j)^2) / t^2, the w-weighted variance of the candidate masses mu_j = "
            "sum_c alpha_jc over t^2 (w_j = softmax_j S_j at the shifted logits)."
        ),
        statement=_curvature_statement,
        source=f"research note §1.4.2 (derived from {_SRC})",
        evidence=("symbolic", "precise"),
        tactic=Differentiate(steps=("linear_sums",)),
        facts=lambda: (),
        uses=("soft_target_infonce",),
        notes=(
            "with every w_j > 0, the variance vanishes only if all masses are equal: the loss is "
            "invariant under all shifts only if the masses are equal (the precise leg also "
            "exhibits the loss changing when one mass is doubled)"
        ),
    ),
    Claim(
        id=f"{FAMILY}.uniform_noise_noop",
        family=FAMILY,
        kind="identity",
        text=(
            "When every candidate target sums to 1, the uniform noise distribution q = 1/C gives "
            "the same row loss as no log q correction (q = 1)."
        ),
        statement=_uniform_statement,
        source=f"research note §1.4.3 (derived from {_SRC})",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=_SHIFT_STEPS),
        facts=_simplex_rows,
        uses=("soft_target_infonce",),
    ),
    Claim(
        id=f"{FAMILY}.degenerate_batches",
        family=FAMILY,
        kind="identity",
        text=(
            "If all M candidate targets are identical, the row loss is log M for any logits, "
            "noise distribution and temperature."
        ),
        statement=_identical_statement,
        source=f"research note §1.4.4 (derived from {_SRC})",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("linear_sums", "expand_log")),
        facts=lambda: (),
        uses=("soft_target_infonce",),
    ),
    Claim(
        id=f"{FAMILY}.single_candidate_zero",
        family=FAMILY,
        kind="identity",
        text="With a single candidate (M = 1, the positive itself) the row loss is 0.",
        statement=_single_statement,
        source=f"research note §1.4.4 (derived from {_SRC})",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("doit", "expand_log")),
        facts=lambda: (),
        uses=("soft_target_infonce",),
        notes="split from degenerate_batches",
    ),
    Claim(
        id=f"{FAMILY}.large_k_hard_limit",
        family=FAMILY,
        kind="identity",
        text=(
            "With one-hot targets (alpha0 = e_{y0}) and negatives drawn from q (support points "
            "e_r with probabilities q_r, r = 1..C), the large-K limit -<alpha0, g> + log E "
            "e^{<alpha, g>} equals CE(f/t, y0) + log q_{y0}: CE plus a parameter-free constant."
        ),
        statement=_hard_limit_statement,
        source="derived in research note §1.5 (hard-target case)",
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("doit_delta", ("in_range", C, y0, r), "expand", "linear_sums")),
        facts=lambda: (*index_facts(C, y0), *index_facts(C, r)),
        uses=("large_k_limit", "nll"),
        notes=(
            "the facts on r hold on the summation range; that L_K - log K tends to this limit is "
            "large_k_limit_stratified"
        ),
    ),
    Claim(
        id=f"{FAMILY}.large_k_limit_stratified",
        family=FAMILY,
        kind="limit",
        text=(
            "On the candidate set {alpha0} plus K P_r copies of each support point A_r, "
            "L_K - log K tends to -<alpha0, g> + log sum_r P_r e^{<A_r, g>} as K -> infinity."
        ),
        statement=_limit_statement,
        source="research note §1.5",
        evidence=("symbolic", "precise", "production"),
        tactic=ComputeLimit(steps=("expand",)),
        facts=lambda: (),
        uses=("stratified_loss", "large_k_limit"),
        notes=(
            "the stratified set realises the empirical law exactly; for i.i.d. negatives the "
            "same limit holds almost surely (strong law of large numbers), not proved here"
        ),
    ),
    Claim(
        id=f"{FAMILY}.large_k_soft_below_soft_ce",
        family=FAMILY,
        kind="inequality",
        text=(
            "For targets on the simplex and a target law with E[alpha] = q, the large-K limit "
            "-<alpha0, g> + log E e^{<alpha, g>} is <= soft CE(f/t, alpha0) + <alpha0, log q>."
        ),
        statement=_soft_bound_statement,
        source="derived in research note §1.5 (soft-target case)",
        evidence=("symbolic", "precise", "production"),
        tactic=_soft_bound_certificate(),
        facts=_large_k_facts,
        uses=("large_k_limit", "soft_ce"),
        notes=(
            "equality for one-hot targets drawn from q is large_k_hard_limit; strictness in "
            "general is not claimed (equality also holds when g is constant on every support), "
            "see large_k_soft_strict_witness"
        ),
    ),
    Claim(
        id=f"{FAMILY}.large_k_soft_strict_witness",
        family=FAMILY,
        kind="inequality",
        text=(
            "The bound can be strict: at C = 2, t = 1, f = (1, 0), q = (1/2, 1/2) and the single "
            "soft target alpha0 = A_1 = (1/2, 1/2), P_1 = 1, the large-K limit (0) is < soft CE + "
            "<alpha0, log q> (log((1 + e)/2) - 1/2), so soft-target InfoNCE does not converge to "
            "soft-target CE plus a constant."
        ),
        statement=_strict_witness_statement,
        source="derived in research note §1.5 (soft-target case)",
        evidence=("symbolic", "precise"),
        tactic=Exact(steps=("doit",)),
        facts=lambda: (),
        uses=("large_k_limit", "soft_ce"),
    ),
    Claim(
        id=f"{FAMILY}.large_k_rate",
        family=FAMILY,
        kind="asymptotic",
        text=(
            "For K i.i.d. negatives from a two-point target law pi delta_{A_1} + (1 - pi) "
            "delta_{A_2}, E[L_K] - log K - L_inf = c/K + O(1/K^2) with c = e^{S_0}/mu - "
            "Var(e^S)/(2 mu^2), mu = E e^S, S = <alpha, g>."
        ),
        statement=_rate_statement,
        source=(
            "delta method (research note §6.5; Nowozin 2018) applied to the large-K form of "
            "research note §1.5"
        ),
        evidence=("precise",),
        uses=("expected_loss_two_point", "large_k_limit"),
        notes=(
            "no symbolic leg: the O(1/K^2) remainder of the binomial expectation is not derived; "
            "checked by exact enumeration at 50 digits"
        ),
    ),
    Claim(
        id=f"{FAMILY}.gathered_consistency",
        family=FAMILY,
        kind="algorithmic",
        text=(
            "A per-rank loss with all-gathered candidates and offset o = N w gives, for local "
            "row i of rank w, the global batch's row N w + i."
        ),
        statement=_gather_statement,
        source=(
            "official code loss.py / train_engine.py: concat_all_gather, labels arange(N) + "
            "N*rank (research note §5.2)"
        ),
        evidence=("production",),
        facts=lambda: (sp.Eq(_o, _N * _w),),
        uses=("soft_target_infonce",),
        notes=(
            "an implementation convention (equal local batch sizes, drop_last), checked on the "
            "production loss; the production leg also checks that the default candidates = "
            "targets, offset = 0 is the local loss"
        ),
    ),
    Claim(
        id=f"{FAMILY}.nonnegative",
        family=FAMILY,
        kind="inequality",
        text="Every row loss is >= 0 when the positive is one of the candidates (1 <= p <= M).",
        statement=_nonneg_statement,
        source=(
            "standard InfoNCE ceiling (van den Oord et al. 2018; Poole et al. 2019), research "
            "note §6.2-§6.3"
        ),
        evidence=("symbolic", "precise", "production"),
        tactic=_row_bound("sum_ge_term"),
        facts=_pos_range,
        uses=("soft_target_infonce",),
        notes="equivalently the InfoNCE mutual-information estimate log M - ell is <= log M",
    ),
    Claim(
        id=f"{FAMILY}.positive_several_candidates",
        family=FAMILY,
        kind="inequality",
        text="With M >= 2 candidates (and 1 <= p <= M) every row loss is > 0.",
        statement=_positive_statement,
        source="standard (research note §6.2); split from nonnegative",
        evidence=("symbolic", "precise", "production"),
        tactic=_row_bound("sum_gt_term"),
        facts=lambda: (*_pos_range(), sp.Ge(M, 2)),
        uses=("soft_target_infonce",),
    ),
    Claim(
        id=f"{FAMILY}.zero_noise_masking",
        family=FAMILY,
        kind="identity",
        text=(
            "For a class z on which no candidate puts mass (alpha_jz = 0, targets on the "
            "simplex), the loss with the log q term of class z dropped (the 0 log 0 := 0 "
            "policy) equals the loss at q_eps = (1 - eps) q + eps e_z (q_z = 0), for every eps "
            "in (0, 1)."
        ),
        statement=_zero_noise_statement,
        source=(
            "this library's zero-probability policy; the official code gives NaN (research "
            "note §5.3)"
        ),
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(
            steps=(
                "expand_log",
                "linear_sums",
                "doit_delta",
                ("in_range", C, z),
                "facts",
                "factor_terms",
                "expand_log",
            )
        ),
        facts=_zero_noise_facts,
        uses=("soft_target_infonce",),
        notes=(
            "q_eps and the masked q are written per class with KroneckerDelta exponents: "
            "q_eps,c = ((1 - eps) q_c)^(1 - delta_cz) eps^delta_cz, masked q_c^(1 - delta_cz); "
            "the value of q_z is irrelevant (alpha_jz = 0), in particular q_z = 0"
        ),
    ),
)
