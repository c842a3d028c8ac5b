r"""Aljundi et al. 2023 (arXiv 2211.03646): prototype CE and ESupCon (**reconstructed**).

The paper body was not available; the ESupCon form below is the one **reconstructed** in the
research note §3 from the Fig. 1 caption ("class weights (prototypes) form positive pairs with
corresponding class samples and negative pairs with other classes samples"). Every claim about
ESupCon is about this reconstructed formula (its ``source`` says so).

One anchor of class :math:`y` is fixed, with unit-norm embedding :math:`z` and unit-norm
prototypes :math:`w_c` (:math:`c=1..K`). Its similarities are

* prototype cosines :math:`\mathrm{cos}_c = z^\top w_c` (``cos[c]``);
* same-class sample similarities :math:`s_p` (:math:`p=1..m`, :math:`m=|P(i)|\ge 0`);
* other-class sample similarities :math:`u_n` (:math:`n=1..M`, :math:`M=|N(i)|\ge 0`),

and the logits are these over the temperature :math:`\tau>0`. With :math:`Z_K=\sum_c
e^{\mathrm{cos}_c/\tau}`, :math:`Z_P=\sum_pe^{s_p/\tau}`, :math:`Z_N=\sum_ne^{u_n/\tau}` and
:math:`Z=Z_P+Z_N+Z_K`:

.. math::
    \ell^{CE} = -\log\frac{e^{\mathrm{cos}_y/\tau}}{Z_K},\qquad
    \ell^{ESupCon} = \frac{-1}{m+1}\Big[\sum_p\log\frac{e^{s_p/\tau}}{Z}
        +\log\frac{e^{\mathrm{cos}_y/\tau}}{Z}\Big].

Softmax shares over the ESupCon contrast set: :math:`R_a = e^{a/\tau}/Z`.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from softnce_theory.derivations import cross_entropy as ce
from softnce_theory.derivations._claim import Claim, Definition
from softnce_theory.derivations.lemmas import JENSEN_LOG, LOG_TANGENT, SUM_GE_TERM
from softnce_theory.derivations.tactics import (
    Both,
    Differentiate,
    LemmaUse,
    Reduction,
    Sign,
    Simplify,
    index_facts,
)

K = sp.Symbol("K", integer=True, positive=True)  # number of classes / prototypes
m = sp.Symbol("m", integer=True, nonnegative=True)  # |P(i)|, may be 0 here
m1 = sp.Symbol("m", integer=True, positive=True)  # |P(i)| where |P(i)| >= 1 is stated
M = sp.Symbol("M", integer=True, nonnegative=True)  # |N(i)|
M1 = sp.Symbol("M", integer=True, positive=True)  # |N(i)| where |N(i)| >= 1 is stated
p, q, n, j, c, d, y, b, k = sp.symbols("p q n j c d y b k", integer=True)
tau = sp.Symbol("tau", positive=True)
cos = sp.IndexedBase("cos", real=True)  # cosines <z, w_c> to the prototypes
s = sp.IndexedBase("s", real=True)  # same-class sample similarities
u = sp.IndexedBase("u", real=True)  # other-class sample similarities

SOURCE = "Aljundi et al. 2023 (arXiv 2211.03646)"
RECON = SOURCE + ", reconstructed from the Fig. 1 caption (research note §3)"


# ----------------------------------------------------------------------------- definitions


def _e(x: Any) -> sp.Expr:
    return sp.exp(x / tau)


def z_proto() -> sp.Expr:
    return sp.Sum(_e(cos[c]), (c, 1, K))


def z_pos(mm: Any = m) -> sp.Expr:
    return sp.Sum(_e(s[p]), (p, 1, mm))


def z_neg(MM: Any = M) -> sp.Expr:
    return sp.Sum(_e(u[n]), (n, 1, MM))


def z_all(mm: Any = m, MM: Any = M) -> sp.Expr:
    return z_pos(mm) + z_neg(MM) + z_proto()


def prototype_ce() -> sp.Expr:
    """Cross-entropy of the cosine-softmax prototype classifier for the anchor's class y."""
    return -sp.log(_e(cos[y]) / z_proto())


def prototype_infonce() -> sp.Expr:
    """InfoNCE with query z and keys w_c: positive key w_y, every other prototype a negative."""
    pos = _e(cos[y])
    others = sp.Sum(_e(cos[c]) * (1 - sp.KroneckerDelta(c, y)), (c, 1, K))
    return -sp.log(pos / (pos + others))


def esupcon(mm: Any = m, MM: Any = M) -> sp.Expr:
    """Reconstructed ESupCon, one anchor: SupCon L_out over samples + prototypes, the own
    prototype an extra positive."""
    zz = z_all(mm, MM)
    terms = sp.Sum(sp.log(_e(s[p]) / zz), (p, 1, mm)) + sp.log(_e(cos[y]) / zz)
    return -terms / (mm + 1)


def esupcon_sample_term(bb: Any = b) -> sp.Expr:
    """The ESupCon term whose positive is the same-class sample ``bb``."""
    return -sp.log(_e(s[bb]) / z_all())


def esupcon_prototype_term() -> sp.Expr:
    """The ESupCon term whose positive is the anchor's own prototype."""
    return -sp.log(_e(cos[y]) / z_all())


_ALL = (s, u, cos, tau, y)

DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        name="prototype_ce",
        family="aljundi",
        build=prototype_ce,
        sizes=(K,),
        args=(cos, tau, y),
        source=SOURCE + " (prototype classifier, cosine softmax)",
        doc=r"-\log(e^{\cos_y/\tau}/\sum_c e^{\cos_c/\tau})",
    ),
    Definition(
        name="prototype_infonce",
        family="aljundi",
        build=prototype_infonce,
        sizes=(K,),
        args=(cos, tau, y),
        source="Oord et al. 2018 InfoNCE with the prototypes as keys; " + SOURCE,
        doc=r"-\log\frac{e^{\cos_y/\tau}}{e^{\cos_y/\tau}+\sum_{c\ne y}e^{\cos_c/\tau}}",
    ),
    Definition(
        name="esupcon",
        family="aljundi",
        build=esupcon,
        sizes=(m, M, K),
        args=_ALL,
        source=RECON,
        doc=r"\frac{-1}{m+1}[\sum_p\log(e^{s_p/\tau}/Z)+\log(e^{\cos_y/\tau}/Z)]",
    ),
    Definition(
        name="esupcon_sample_term",
        family="aljundi",
        build=esupcon_sample_term,
        sizes=(m, M, K),
        args=(*_ALL, b),
        source=RECON + " (the term of one same-class sample)",
        doc=r"-\log(e^{s_b/\tau}/Z)",
    ),
    Definition(
        name="esupcon_prototype_term",
        family="aljundi",
        build=esupcon_prototype_term,
        sizes=(m, M, K),
        args=_ALL,
        source=RECON + " (the term of the own prototype)",
        doc=r"-\log(e^{\cos_y/\tau}/Z)",
    ),
)


# ----------------------------------------------------------------------------- statements


def share(x: Any, mm: Any = m, MM: Any = M) -> sp.Expr:
    """R: softmax share of logit x/tau over ESupCon's contrast set (samples + prototypes)."""
    return _e(x) / z_all(mm, MM)


def proto_share(x: Any) -> sp.Expr:
    """p: softmax share of logit x/tau over the prototypes."""
    return _e(x) / z_proto()


def _ce_nll() -> sp.Expr:
    """The cross_entropy family's hard NLL (``-log_prob(y)``) at the logits cos_c / tau."""
    return (-ce.log_prob(y, tau)).subs(ce.C, K).xreplace({ce.f: cos})


def _cosine_statement() -> sp.Expr:
    return sp.And(sp.Eq(prototype_ce(), _ce_nll()), sp.Eq(prototype_infonce(), prototype_ce()))


def _es_grad_statement() -> sp.Expr:
    e = esupcon()
    return sp.And(
        sp.Eq(sp.Derivative(e, s[q]), (share(s[q]) - 1 / (m + 1)) / tau),
        sp.Eq(sp.Derivative(e, u[j]), share(u[j]) / tau),
        sp.Eq(sp.Derivative(e, cos[d]), (share(cos[d]) - sp.KroneckerDelta(d, y) / (m + 1)) / tau),
    )


def _cross_statement() -> sp.Expr:
    return sp.And(
        sp.Eq(sp.Derivative(esupcon_sample_term(), cos[y]), share(cos[y]) / tau),
        sp.Eq(sp.Derivative(esupcon_prototype_term(), s[q]), share(s[q]) / tau),
        sp.Eq(sp.Derivative(esupcon_sample_term(), s[q]), share(s[q]) / tau),
    )


def _repulsion_statement() -> sp.Expr:
    return sp.And(
        sp.Gt(sp.Derivative(esupcon_sample_term(), cos[y]), 0),
        sp.Gt(sp.Derivative(esupcon_prototype_term(), s[q]), 0),
        sp.Gt(sp.Derivative(esupcon_sample_term(), s[q]), 0),
    )


def _other_sample() -> tuple[sp.Basic, ...]:
    """b and q are two different same-class samples; y is a class."""
    return (*index_facts(m, b, q), *index_facts(K, y), sp.Eq(sp.KroneckerDelta(b, q), 0))


def _rest_of_prototypes() -> LemmaUse:
    """sum_c e^{cos_c/tau} - e^{cos_y/tau} >= 0 (the other prototypes), as a lemma instance."""
    return LemmaUse(SUM_GE_TERM, {"n": K, "a": lambda cc: _e(cos[cc]), "m": y})


_DS = ("derivatives", "delta_sums", "canon", "linear_sums", "cancel")
_LOGS = ("expand_log", "linear_sums", "factor_terms", "expand_log", "canon", "together")


def _attracts_own_tactic() -> Reduction:
    """-dCE/dcos_y = (Z_K - e^{cos_y/tau})/(tau Z_K) = sum_ge_term / (tau Z_K)."""
    use = _rest_of_prototypes()
    return Reduction(
        uses=(LemmaUse(use.lemma, use.instance, factor=1 / (tau * z_proto())),),
        steps=(*_DS[:-1], "together"),
    )


def _own_attracted_tactic() -> Reduction:
    """With m = 0: -dl/dcos_y = (Z - e^{cos_y/tau})/(tau Z), Z = Z_N + Z_K, i.e. the rest of
    the prototypes over tau Z plus Z_N/(tau Z) > 0 (one negative sample at least)."""
    zz = z_neg(M1) + z_proto()
    use = _rest_of_prototypes()
    return Reduction(
        uses=(LemmaUse(use.lemma, use.instance, factor=1 / (tau * zz)),),
        extra=(z_neg(M1) / (tau * zz),),
        steps=("derivatives", "delta_sums", "doit", *_DS[2:-1], "together"),
    )


def _no_positive_ge_ce_tactic() -> Reduction:
    """l(m=0) - CE = -log(Z_K/Z) = log_tangent(Z_K/Z) + Z_N/Z."""
    zz = z_neg() + z_proto()
    return Reduction(
        uses=(LemmaUse(LOG_TANGENT, {"u": z_proto() / zz}),),
        extra=(z_neg() / zz,),
        steps=("doit", *_LOGS),
    )


def _lower_bound_no_sample_tactic() -> Reduction:
    """l(m=0) = -log(e^{cos_y/tau}/Z) = log_tangent(e^{cos_y/tau}/Z) + (Z - e^{cos_y/tau})/Z."""
    zz = z_neg() + z_proto()
    use = _rest_of_prototypes()
    return Reduction(
        uses=(
            LemmaUse(LOG_TANGENT, {"u": _e(cos[y]) / zz}),
            LemmaUse(use.lemma, use.instance, factor=1 / zz),
        ),
        extra=(z_neg() / zz,),
        steps=("doit", *_LOGS),
    )


def _lower_bound_tactic() -> Reduction:
    r"""|P| = m >= 1: with x_p = e^{s_p/tau}/Z, x_0 = e^{cos_y/tau}/Z, X = mean_p x_p,

    l - log(m+1) = m/(m+1) J(x over p) + J2 - log V with V = (Z_P + e^{cos_y/tau})/Z, where the
    two-point Jensen gap J2 = log v - (m log X + log x_0)/(m+1), v = (m X + x_0)/(m+1), is
    m/(m+1) log_tangent(X/v) + 1/(m+1) log_tangent(x_0/v), and -log V = log_tangent(V) +
    (Z_N + rest of prototypes)/Z."""
    zz = z_all(m1)
    x_p = lambda kk: _e(s[kk]) / zz  # noqa: E731
    mean_x = sp.Sum(x_p(k) / m1, (k, 1, m1))
    x_0 = _e(cos[y]) / zz
    v = (m1 * mean_x + x_0) / (m1 + 1)  # the two-point Jensen gap as two tangent-line gaps
    rest = _rest_of_prototypes()
    return Reduction(
        uses=(
            LemmaUse(JENSEN_LOG, {"n": m1, "w": lambda kk: 1 / m1, "x": x_p}, m1 / (m1 + 1)),
            LemmaUse(LOG_TANGENT, {"u": mean_x / v}, m1 / (m1 + 1)),
            LemmaUse(LOG_TANGENT, {"u": x_0 / v}, 1 / (m1 + 1)),
            LemmaUse(LOG_TANGENT, {"u": (z_pos(m1) + _e(cos[y])) / zz}),
            LemmaUse(rest.lemma, rest.instance, factor=1 / zz),
        ),
        extra=(z_neg() / zz,),
        steps=_LOGS,
    )


def _ce_tau_closed() -> sp.Expr:
    mean_cos = sp.Sum(cos[c] * _e(cos[c]), (c, 1, K)) / z_proto()
    return (cos[y] - mean_cos) / tau**2


def _es_tau_closed() -> sp.Expr:
    mean_pos = (sp.Sum(s[p], (p, 1, m)) + cos[y]) / (m + 1)
    weighted = (
        sp.Sum(s[p] * _e(s[p]), (p, 1, m))
        + sp.Sum(u[n] * _e(u[n]), (n, 1, M))
        + sp.Sum(cos[c] * _e(cos[c]), (c, 1, K))
    )
    return (mean_pos - weighted / z_all()) / tau**2


# ----------------------------------------------------------------------------- claims

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="aljundi.prototype_ce_is_cosine_softmax_ce",
        family="aljundi",
        kind="identity",
        text="The prototype CE is the cross_entropy family's hard NLL at the cosine logits "
        "<z,w_k>/tau, and equals InfoNCE with query z and the class prototypes as keys "
        "(positive key w_y).",
        statement=_cosine_statement,
        source=SOURCE + " abstract ('probabilistic interpretation'); standard cosine softmax",
        evidence=("symbolic", "precise", "production"),
        tactic=Both((Simplify(steps=("linear_sums", "delta_sums", "canon", "expand_log")),) * 2),
        facts=lambda: index_facts(K, y),
        uses=("prototype_ce", "prototype_infonce"),
        notes="unit-norm z and w_k (normalize=True) make the logits cosines over tau; the NLL "
        "is cross_entropy.nll's formula (tied to its oracle by that family's definition leg)",
    ),
    Claim(
        id="aljundi.prototype_ce_gradient",
        family="aljundi",
        kind="gradient",
        text="The prototype CE gradient in the cosine to prototype d is (p_d - delta_dy)/tau "
        "(p the softmax over the prototypes).",
        statement=lambda: sp.Eq(
            sp.Derivative(prototype_ce(), cos[d]),
            (proto_share(cos[d]) - sp.KroneckerDelta(d, y)) / tau,
        ),
        source="standard softmax CE gradient, applied to " + SOURCE,
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("delta_sums", "canon", "linear_sums", "cancel")),
        facts=lambda: index_facts(K, d, y),
        uses=("prototype_ce",),
    ),
    Claim(
        id="aljundi.prototype_ce_attracts_own_prototype",
        family="aljundi",
        kind="gradient",
        text="The prototype CE never repels the anchor's own prototype: its gradient in cos_y "
        "is <= 0.",
        statement=lambda: sp.Le(sp.Derivative(prototype_ce(), cos[y]), 0),
        source="standard softmax CE gradient, applied to " + SOURCE,
        evidence=("symbolic", "precise", "production"),
        tactic=_attracts_own_tactic(),
        facts=lambda: index_facts(K, y),
        uses=("prototype_ce",),
        notes="split from prototype_ce_gradient; = 0 only with a single prototype (K = 1)",
    ),
    Claim(
        id="aljundi.prototype_ce_repels_other_prototypes",
        family="aljundi",
        kind="gradient",
        text="The prototype CE repels every other prototype: its gradient in cos_d, d != y, "
        "is > 0 (the other prototypes are the negative keys).",
        statement=lambda: sp.Gt(sp.Derivative(prototype_ce(), cos[d]), 0),
        source="standard softmax CE gradient, applied to " + SOURCE,
        evidence=("symbolic", "precise", "production"),
        tactic=Sign(steps=("derivatives", "delta_sums", "facts", "canon", "cancel")),
        facts=lambda: (*index_facts(K, d, y), sp.Eq(sp.KroneckerDelta(d, y), 0)),
        uses=("prototype_ce",),
        notes="split from prototype_ce_gradient",
    ),
    Claim(
        id="aljundi.esupcon_reduces_to_prototype_ce",
        family="aljundi",
        kind="identity",
        text="ESupCon equals the prototype CE when the batch offers no other sample "
        "(B = 1: |P(i)| = |N(i)| = 0).",
        statement=lambda: sp.Eq(esupcon(0, 0), prototype_ce()),
        source=RECON,
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("doit", "expand_log", "canon", "expand")),
        uses=("esupcon", "prototype_ce"),
        notes="prototypes are not anchors",
    ),
    Claim(
        id="aljundi.esupcon_no_same_class_sample",
        family="aljundi",
        kind="identity",
        text="An anchor without same-class samples (|P(i)| = 0) gets ESupCon = prototype CE + "
        "log((Z_K + Z_N)/Z_K) = prototype CE + log(1 + Z_N/Z_K).",
        statement=lambda: sp.Eq(
            esupcon(0, M), prototype_ce() + sp.log((z_proto() + z_neg()) / z_proto())
        ),
        source=RECON,
        evidence=("symbolic", "precise", "production"),
        tactic=Simplify(steps=("doit", "expand_log", "canon", "expand")),
        uses=("esupcon", "prototype_ce"),
        notes="split from esupcon_reduces_to_prototype_ce",
    ),
    Claim(
        id="aljundi.esupcon_no_same_class_sample_ge_ce",
        family="aljundi",
        kind="inequality",
        text="An anchor without same-class samples (|P(i)| = 0) has ESupCon >= prototype CE.",
        statement=lambda: sp.Ge(esupcon(0, M), prototype_ce()),
        source=RECON,
        evidence=("symbolic", "precise", "production"),
        tactic=_no_positive_ge_ce_tactic(),
        uses=("esupcon", "prototype_ce"),
        notes="split from esupcon_reduces_to_prototype_ce",
    ),
    Claim(
        id="aljundi.esupcon_logit_gradient",
        family="aljundi",
        kind="gradient",
        text="ESupCon's gradient is (R_q - 1/(|P(i)|+1))/tau in a same-class sample "
        "similarity, R_j/tau in an other-class one and (R_d - delta_dy/(|P(i)|+1))/tau in a "
        "prototype cosine (R the softmax share over samples and prototypes).",
        statement=_es_grad_statement,
        source=RECON + "; gradient as in research note §1.3",
        evidence=("symbolic", "precise", "production"),
        tactic=Both((Differentiate(steps=_DS[1:]),) * 3),
        facts=lambda: (*index_facts(m, q), *index_facts(M, j), *index_facts(K, d, y)),
        uses=("esupcon",),
    ),
    Claim(
        id="aljundi.esupcon_per_term_cross_gradient",
        family="aljundi",
        kind="gradient",
        text="In ESupCon the term of a same-class sample b has derivative R_y/tau in the own "
        "prototype's cosine and R_q/tau in every other same-class sample's similarity (q != "
        "b); the own-prototype term has R_q/tau in every same-class sample's.",
        statement=_cross_statement,
        source=RECON + "; repulsion analysis of research note §1.3 applied to it",
        evidence=("symbolic", "precise"),
        tactic=Both((Differentiate(steps=("delta_sums", "facts", "canon", "cancel")),) * 3),
        facts=_other_sample,
        uses=("esupcon_sample_term", "esupcon_prototype_term"),
    ),
    Claim(
        id="aljundi.esupcon_same_class_repulsion",
        family="aljundi",
        kind="gradient",
        text="In ESupCon every term pushes the other positives away: the term of a same-class "
        "sample b has a derivative > 0 in the own prototype's cosine and in every other "
        "same-class sample's similarity (q != b); the own-prototype term has a derivative "
        "> 0 in every same-class sample's.",
        statement=_repulsion_statement,
        source=RECON + "; repulsion analysis of research note §1.3 applied to it",
        evidence=("symbolic", "precise"),
        tactic=Both((Sign(steps=("derivatives", "delta_sums", "facts", "canon", "cancel")),) * 3),
        facts=_other_sample,
        uses=("esupcon_sample_term", "esupcon_prototype_term"),
        notes="the net gradient (repelled iff R > 1/(|P|+1)) is esupcon_logit_gradient",
    ),
    Claim(
        id="aljundi.esupcon_own_prototype_attracted_without_samples",
        family="aljundi",
        kind="gradient",
        text="Without same-class samples (|P(i)| = 0) and with at least one other-class sample, "
        "ESupCon's gradient in the own prototype's cosine is < 0: it is always attracted.",
        statement=lambda: sp.Lt(sp.Derivative(esupcon(0, M1), cos[y]), 0),
        source=RECON + "; research note §1.3",
        evidence=("symbolic", "precise", "production"),
        tactic=_own_attracted_tactic(),
        facts=lambda: index_facts(K, y),
        uses=("esupcon",),
        notes="split from esupcon_same_class_repulsion",
    ),
    Claim(
        id="aljundi.esupcon_lower_bound",
        family="aljundi",
        kind="inequality",
        text="Every ESupCon anchor term with |P(i)| >= 1 same-class samples is at least "
        "log(|P(i)| + 1).",
        statement=lambda: sp.Ge(esupcon(m1, M), sp.log(m1 + 1)),
        source=RECON + "; analogue of research note §1.4(2)",
        evidence=("symbolic", "precise", "production"),
        tactic=_lower_bound_tactic(),
        facts=lambda: index_facts(K, y),
        uses=("esupcon",),
        notes="|P(i)| = 0 is aljundi.esupcon_lower_bound_no_sample",
    ),
    Claim(
        id="aljundi.esupcon_lower_bound_no_sample",
        family="aljundi",
        kind="inequality",
        text="An ESupCon anchor term without same-class samples (|P(i)| = 0) is >= 0 = log 1.",
        statement=lambda: sp.Ge(esupcon(0, M), 0),
        source=RECON + "; analogue of research note §1.4(2)",
        evidence=("symbolic", "precise"),
        tactic=_lower_bound_no_sample_tactic(),
        facts=lambda: index_facts(K, y),
        uses=("esupcon",),
    ),
    Claim(
        id="aljundi.prototype_ce_temperature_gradient",
        family="aljundi",
        kind="gradient",
        text="d(prototype CE)/dtau = (cos_y - sum_c p_c cos_c)/tau^2.",
        statement=lambda: sp.Eq(sp.Derivative(prototype_ce(), tau), _ce_tau_closed()),
        source="derived here from the prototype CE (learnable temperature)",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("linear_sums", "together")),
        uses=("prototype_ce",),
    ),
    Claim(
        id="aljundi.esupcon_temperature_gradient",
        family="aljundi",
        kind="gradient",
        text="d(ESupCon)/dtau = ((sum_p s_p + cos_y)/(|P(i)|+1) - sum_a R_a a)/tau^2: the mean "
        "positive similarity minus the R-weighted mean over samples and prototypes.",
        statement=lambda: sp.Eq(sp.Derivative(esupcon(), tau), _es_tau_closed()),
        source=RECON + "; derived here (learnable temperature)",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("linear_sums", "together")),
        uses=("esupcon",),
    ),
)
