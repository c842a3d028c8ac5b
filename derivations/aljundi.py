r"""Aljundi et al. 2023 (arXiv 2211.03646): prototype CE and ESupCon (**reconstructed**).

The paper body was not available; the ESupCon form below is the one **reconstructed** in the
research note §3 from the Fig. 1 caption ("class weights (prototypes) form positive pairs with
corresponding class samples and negative pairs with other classes samples").

One anchor :math:`i` of class :math:`y` is fixed, with unit-norm embedding :math:`z` and unit-norm
prototypes :math:`w_c` (:math:`c=1..K`). Its logits are

* prototype logits :math:`t_c=z^\top w_c/\tau` (``t[c]``), written ``cos[c]/tau`` where the
  cosine matters;
* same-class sample logits :math:`s_p` (:math:`p=1..m`, :math:`m=|P(i)|\ge 0`);
* other-class sample logits :math:`u_n` (:math:`n=1..M`, :math:`M=|N(i)|`).

With :math:`Z=\sum_pe^{s_p}+\sum_ne^{u_n}+\sum_ce^{t_c}`:

.. math::
    \ell^{CE} = -\log\frac{e^{t_y}}{\sum_c e^{t_c}},\qquad
    \ell^{ESupCon} = \frac{-1}{m+1}\Big[\sum_p\log\frac{e^{s_p}}{Z}+\log\frac{e^{t_y}}{Z}\Big].

Scopes as in :mod:`derivations.sincere` ("symbolic K, m, M": the index-set sizes stay symbols).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sympy as sp

from derivations import cross_entropy as ce
from derivations._claim import Claim, Proof
from derivations.sincere import (
    _log_concave,
    _opaque,
    linear_sums,
    logit_form,
    same,
)

K = sp.Symbol("K", integer=True, positive=True)  # number of classes / prototypes
m = sp.Symbol("m", integer=True, nonnegative=True)  # |P(i)|, may be 0 here
M = sp.Symbol("M", integer=True, nonnegative=True)  # |N(i)|
p, q, n, j, c, d, y, b = sp.symbols("p q n j c d y b", integer=True)
tau = sp.Symbol("tau", positive=True)
t = sp.IndexedBase("t", real=True)  # prototype logits
cos = sp.IndexedBase("cos", real=True)  # cosine similarities <z, w_c>/(|z||w_c|)
s = sp.IndexedBase("s", real=True)  # same-class sample logits
u = sp.IndexedBase("u", real=True)  # other-class sample logits
x = sp.IndexedBase("x", positive=True)  # softmax probabilities of the positives (Jensen)
x0 = sp.Symbol("x_0", positive=True)  # softmax probability of the own prototype

SOURCE = "Aljundi et al. 2023 (arXiv 2211.03646)"
RECON = SOURCE + ", reconstructed from the Fig. 1 caption (research note §3)"


def z_proto() -> sp.Expr:
    return sp.Sum(sp.exp(t[c]), (c, 1, K))


def z_pos() -> sp.Expr:
    return sp.Sum(sp.exp(s[p]), (p, 1, m))


def z_neg() -> sp.Expr:
    return sp.Sum(sp.exp(u[n]), (n, 1, M))


def z_all() -> sp.Expr:
    return z_pos() + z_neg() + z_proto()


def prototype_ce(logit: Callable[[Any], sp.Expr] = t.__getitem__) -> sp.Expr:
    """Cross-entropy of the prototype classifier for class y (``logit(c)`` gives t_c)."""
    return -sp.log(sp.exp(logit(y)) / sp.Sum(sp.exp(logit(c)), (c, 1, K)))


def cosine_logit(i: Any) -> sp.Expr:
    return cos[i] / tau


def esupcon() -> sp.Expr:
    """Reconstructed ESupCon, one anchor: SupCon L_out over samples + prototypes, the own
    prototype an extra positive."""
    terms = sp.Sum(sp.log(sp.exp(s[p]) / z_all()), (p, 1, m)) + sp.log(sp.exp(t[y]) / z_all())
    return -terms / (m + 1)


# ----------------------------------------------------------------------------- identities


def _keys_form() -> sp.Expr:
    """Prototype CE as InfoNCE with query z and keys w_c: positive key w_y, the rest negatives."""
    pos = sp.exp(cos[y] / tau)
    others = sp.Sum(sp.exp(cos[c] / tau) * (1 - sp.KroneckerDelta(c, y)), (c, 1, K))
    return -sp.log(pos / (pos + others))


def _nll_form() -> sp.Expr:
    """Hard NLL of the logits cos_c/tau, from the cross-entropy family's definitions."""
    return (-ce.log_prob(y, tau)).subs(ce.C, K).replace(ce.f, cos)


def _cosine_statement() -> sp.Expr:
    return sp.And(
        sp.Eq(prototype_ce(cosine_logit), _nll_form()),
        sp.Eq(_keys_form(), _nll_form()),
    )


def _prove_cosine() -> Proof:
    nll = logit_form(_nll_form().replace(ce.j, c))
    proto = logit_form(prototype_ce(cosine_logit))
    keys = logit_form(_keys_form())
    ok = same(proto, nll) and same(keys, nll)
    return Proof(
        proved=ok,
        method="cross_entropy's hard NLL at logits cos_c/tau, the prototype CE and the InfoNCE "
        "form with keys w_c (positive w_y, KroneckerDelta-split denominator) expanded and "
        "compared (cancel/simplify == 0)",
        scope="symbolic K",
        assumptions=("1 <= y <= K", "unit-norm z, w_c so t_c = cos_c / tau", "tau > 0"),
    )


def _ce_grad_closed() -> sp.Expr:
    return sp.exp(t[d]) / z_proto() - sp.KroneckerDelta(d, y)


def _ce_grad_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(prototype_ce(), t[d]), _ce_grad_closed())


def _prove_ce_grad() -> Proof:
    g = linear_sums(sp.diff(logit_form(prototype_ce()), t[d]))
    ok = same(g, _ce_grad_closed())
    # own prototype: p_y - 1 = -R/(e^{t_y} + R) <= 0 with R = sum_{c != y} e^{t_c}; others > 0
    e_y, rest = sp.Symbol("E_y", positive=True), sp.Symbol("R", nonnegative=True)
    own = _ce_grad_closed().subs(d, y).subs(z_proto(), e_y + rest).subs(sp.exp(t[y]), e_y)
    ok_own = same(own, -rest / (e_y + rest)) and bool((-rest / (e_y + rest)).is_nonpositive)
    pos_other = bool(_opaque(sp.exp(t[d]) / z_proto()).is_positive)
    return Proof(
        proved=ok and ok_own and pos_other,
        method="diff of the Sum with the delta collapsed, compared with p_d - delta_dy; "
        "p_y - 1 = -R/(e^{t_y} + R) <= 0 with R = sum_{c != y} e^{t_c}",
        scope="symbolic K",
        assumptions=("1 <= d, y <= K", "logits real"),
    )


def _reduction_statement() -> sp.Expr:
    return sp.And(
        sp.Eq(esupcon().subs({m: 0, M: 0}), prototype_ce()),
        sp.Eq(esupcon().subs(m, 0), prototype_ce() + sp.log(1 + z_neg() / z_proto())),
    )


def _prove_reduction() -> Proof:
    ok_b1 = same(logit_form(esupcon().subs({m: 0, M: 0})), logit_form(prototype_ce()))
    lhs = logit_form(esupcon().subs(m, 0))
    rhs = logit_form(prototype_ce()) + sp.log(sp.together(1 + z_neg() / z_proto()))
    ok_np = same(lhs, rhs)
    extra = sp.log(1 + sp.Symbol("S_N", nonnegative=True) / sp.Symbol("S_K", positive=True))
    return Proof(
        proved=ok_b1 and ok_np and bool(extra.is_nonnegative),
        method="substitute |P(i)| = 0 (and |N(i)| = 0), empty Sums evaluated, logs expanded, "
        "compared (cancel/simplify == 0); the extra term log(1 + Z_N/Z_K) >= 0",
        scope="symbolic K and M = |N(i)|",
        assumptions=("B = 1 for the equality (A(i) empty)", "reconstructed ESupCon form"),
    )


# ----------------------------------------------------------------------------- gradients


def _es_grad_closed() -> tuple[sp.Expr, sp.Expr, sp.Expr]:
    gs = sp.exp(s[q]) / z_all() - 1 / (m + 1)
    gu = sp.exp(u[j]) / z_all()
    gt = sp.exp(t[d]) / z_all() - sp.KroneckerDelta(d, y) / (m + 1)
    return gs, gu, gt


def _es_grad_statement() -> sp.Expr:
    gs, gu, gt = _es_grad_closed()
    e = esupcon()
    return sp.And(
        sp.Eq(sp.Derivative(e, s[q]), gs),
        sp.Eq(sp.Derivative(e, u[j]), gu),
        sp.Eq(sp.Derivative(e, t[d]), gt),
    )


def _prove_es_grad() -> Proof:
    gs, gu, gt = _es_grad_closed()
    form = logit_form(esupcon())
    ok = all(
        same(linear_sums(sp.diff(form, var)), want)
        for var, want in ((s[q], gs), (u[j], gu), (t[d], gt))
    )
    return Proof(
        proved=ok,
        method="diff of the Sums with deltas collapsed, compared with R - 1/(m+1) on the "
        "positives (samples and own prototype), R on the negatives (cancel/simplify == 0)",
        scope="symbolic K, m = |P(i)|, M = |N(i)|",
        assumptions=("1 <= q <= m, 1 <= j <= M, 1 <= d, y <= K", "reconstructed ESupCon form"),
    )


def _term(kind: str) -> sp.Expr:
    """One ESupCon term: a same-class sample ``b`` or the own prototype as the positive."""
    num = sp.exp(s[b]) if kind == "sample" else sp.exp(t[y])
    return -sp.log(num / z_all())


def _repulsion_statement() -> sp.Expr:
    _, _, gt = _es_grad_closed()
    return sp.And(
        sp.Eq(sp.Derivative(_term("sample"), t[y]), sp.exp(t[y]) / z_all()),
        sp.Eq(sp.Derivative(_term("prototype"), s[q]), sp.exp(s[q]) / z_all()),
        sp.Eq(sp.Derivative(esupcon().subs(m, 0), t[y]), gt.subs({d: y, m: 0})),
    )


def _prove_repulsion() -> Proof:
    # per term: the sample term (i, b) pushes the own prototype away, the prototype term pushes
    # every same-class sample away, and (i, b) pushes the other same-class samples q != b away
    g1 = linear_sums(sp.diff(logit_form(_term("sample")), t[y]))
    g2 = linear_sums(sp.diff(logit_form(_term("prototype")), s[q]))
    g3 = linear_sums(sp.diff(logit_form(_term("sample")), s[q])).subs(sp.KroneckerDelta(b, q), 0)
    oks = [
        same(g1, sp.exp(t[y]) / z_all()),
        same(g2, sp.exp(s[q]) / z_all()),
        same(g3, sp.exp(s[q]) / z_all()),
    ]
    positive = all(bool(_opaque(g).is_positive) for g in (g1, g2, g3))
    # no same-class sample (m = 0): the own prototype's net gradient R_y - 1 < 0 (attraction)
    g0 = linear_sums(sp.diff(logit_form(esupcon().subs(m, 0)), t[y]))
    z0 = z_neg() + z_proto()
    oks.append(same(g0, sp.exp(t[y]) / z0 - 1))
    e_y, rest = sp.Symbol("E_y", positive=True), sp.Symbol("R", positive=True)
    own = (e_y / (e_y + rest) - 1).cancel()  # R = Z_N + sum_{c != y} e^{t_c} > 0 (K >= 2)
    attract = same(own, -rest / (e_y + rest)) and bool(own.is_negative)
    return Proof(
        proved=all(oks) and positive and attract,
        method="cross derivatives of single terms compared with e^{.}/Z (cancel/simplify == 0) "
        "and positive with sums made opaque positive symbols; net sign from "
        "aljundi.esupcon_logit_gradient (R - 1/(m+1)); m = 0: own prototype R_y - 1 < 0",
        scope="symbolic K, m = |P(i)|, M = |N(i)|",
        assumptions=("reconstructed ESupCon form", "q != b same-class samples"),
    )


def _lower_bound_statement() -> sp.Expr:
    return sp.Ge(esupcon(), sp.log(m + 1))


def _prove_lower_bound() -> Proof:
    zz = z_all()
    es_in = -sp.log((z_pos() + sp.exp(t[y])) / zz / (m + 1))  # L_in analogue
    gap = sp.log((sp.Sum(x[p], (p, 1, m)) + x0) / (m + 1)) - (
        sp.Sum(sp.log(x[p]), (p, 1, m)) + sp.log(x0)
    ) / (m + 1)
    gap = gap.replace(
        lambda e: isinstance(e, sp.Indexed) and e.base == x, lambda e: sp.exp(s[e.indices[0]]) / zz
    ).subs(x0, sp.exp(t[y]) / zz)
    ok_jensen = same(logit_form(esupcon() - es_in), logit_form(gap))
    rest = logit_form(es_in) - sp.log(m + 1)
    ok_rest = same(rest, sp.log(sp.together(zz / (z_pos() + sp.exp(t[y])))))
    ok_ge = bool(
        sp.log(1 + sp.Symbol("R", nonnegative=True) / sp.Symbol("P", positive=True)).is_nonnegative
    )
    return Proof(
        proved=ok_jensen and ok_rest and ok_ge and _log_concave(),
        method="reduced to Jensen's inequality over the m + 1 positives (samples and own "
        "prototype): l - l_in equals the Jensen gap (cancel/simplify == 0); l_in - log(m+1) = "
        "log(Z/(Z_P + e^{t_y})) = log(1 + R/P) >= 0",
        scope="symbolic K, m = |P(i)|, M = |N(i)|",
        assumptions=("reconstructed ESupCon form",),
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="aljundi.prototype_ce_is_cosine_softmax_ce",
        family="aljundi",
        kind="identity",
        text="The prototype CE is the hard NLL of the cosine logits <z,w_k>/tau, i.e. InfoNCE "
        "with query z and the class prototypes as keys (positive key w_y).",
        statement=_cosine_statement,
        source=SOURCE + " abstract ('probabilistic interpretation'); standard cosine softmax",
        assumptions=("unit-norm z and w_k (normalize=True)",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_cosine,
    ),
    Claim(
        id="aljundi.prototype_ce_gradient",
        family="aljundi",
        kind="gradient",
        text="The prototype CE logit gradient is p_k - delta_ky: the own prototype is always "
        "attracted, every other prototype repelled (keys of a contrastive loss).",
        statement=_ce_grad_statement,
        source="standard softmax CE gradient, applied to " + SOURCE,
        assumptions=("tau > 0",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_ce_grad,
    ),
    Claim(
        id="aljundi.esupcon_reduces_to_prototype_ce",
        family="aljundi",
        kind="identity",
        text="ESupCon equals the prototype CE when the batch offers no other sample (B = 1); "
        "an anchor without same-class samples gets CE + log(1 + Z_N/Z_K) >= CE.",
        statement=_reduction_statement,
        source=RECON,
        assumptions=("reconstructed ESupCon form", "prototypes are not anchors"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_reduction,
    ),
    Claim(
        id="aljundi.esupcon_logit_gradient",
        family="aljundi",
        kind="gradient",
        text="ESupCon's logit gradient is R_iu - 1/(|P(i)|+1) on the positives (same-class "
        "samples and the own prototype) and R_iv > 0 on negatives (samples and prototypes).",
        statement=_es_grad_statement,
        source=RECON + "; gradient as in research note §1.3",
        assumptions=("reconstructed ESupCon form",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_es_grad,
    ),
    Claim(
        id="aljundi.esupcon_same_class_repulsion",
        family="aljundi",
        kind="gradient",
        text="ESupCon repels a same-class sample, or the anchor's own prototype, iff its "
        "softmax share exceeds 1/(|P(i)|+1) (each term pushes the other positives, prototype "
        "included, away); without same-class samples the own prototype is always attracted.",
        statement=_repulsion_statement,
        source=RECON + "; repulsion analysis of research note §1.3 applied to it",
        assumptions=("reconstructed ESupCon form",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_repulsion,
    ),
    Claim(
        id="aljundi.esupcon_lower_bound",
        family="aljundi",
        kind="inequality",
        text="Every ESupCon anchor term is at least log(|P(i)| + 1).",
        statement=_lower_bound_statement,
        source=RECON + "; analogue of research note §1.4(2)",
        assumptions=("reconstructed ESupCon form",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_lower_bound,
    ),
)
