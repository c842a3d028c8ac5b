r"""SupCon (Khosla et al. 2020) and SINCERE (Feeney & Hughes): SymPy definitions and claims.

One anchor :math:`i` is fixed. Its logits :math:`s_{ia}=z_i^\top z_a/\tau` are split into

* positives :math:`s_p` (:math:`p=1..m`, :math:`m=|P(i)|`, the other samples of the anchor's class);
* negatives :math:`u_n` (:math:`n=1..M`, :math:`M=|N(i)|`, the samples of other classes).

With :math:`Z_P=\sum_p e^{s_p}`, :math:`Z_N=\sum_n e^{u_n}` and :math:`Z=Z_P+Z_N` (the
denominator over :math:`A(i)`, self excluded), Khosla et al. Eq. 2 / Eq. 3 and SINCERE read

.. math::
    \ell^{out} = -\frac1m\sum_p\log\frac{e^{s_p}}{Z},\qquad
    \ell^{in} = -\log\Big(\frac1m\sum_p\frac{e^{s_p}}{Z}\Big),\qquad
    \ell^{SINCERE} = -\frac1m\sum_p\log\frac{e^{s_p}}{e^{s_p}+Z_N}.

Proof scopes: "symbolic m, M" means the index-set sizes stay symbols (``Sum`` over
``IndexedBase``); "abstracted sums" means partial sums of exponentials are replaced by positive
symbols, which covers every |P|, |N|. Inequalities are reduced to named lemmas (Jensen for the
concave log, Gibbs) and only the reduction is checked by SymPy; the ``method`` says so.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from derivations._claim import Claim, Proof
from derivations._sym import difference_is_zero

m = sp.Symbol("m", integer=True, positive=True)  # |P(i)|
M = sp.Symbol("M", integer=True, nonnegative=True)  # |N(i)|
p, q, k, n, j = sp.symbols("p q k n j", integer=True)
a = sp.Symbol("a", integer=True)  # the positive of one term l_ia
s = sp.IndexedBase("s", real=True)  # positive logits s_{ip}
u = sp.IndexedBase("u", real=True)  # negative logits s_{in}
x = sp.IndexedBase("x", positive=True)  # softmax probabilities P_{ip} (Jensen reductions)

# abstracted partial sums (positive reals): cover every |P| and |N|
E_p = sp.Symbol("E_p", positive=True)  # e^{s_p} of the term's own positive
E_k = sp.Symbol("E_k", positive=True)
R_q = sp.Symbol("R_q", nonnegative=True)  # sum over the other positives  q != p
S_P = sp.Symbol("S_P", positive=True)
S_N = sp.Symbol("S_N", nonnegative=True)
S_Npos = sp.Symbol("S_N", positive=True)  # at least one negative

SOURCE_KHOSLA = "Khosla et al. 2020 (arXiv 2004.11362) Eq. 2/3, §3.2.3"
SOURCE_SINCERE = "Feeney & Hughes (arXiv 2309.14277 v4), SINCERE loss; research note §0"


def z_pos() -> sp.Expr:
    return sp.Sum(sp.exp(s[p]), (p, 1, m))


def z_neg() -> sp.Expr:
    return sp.Sum(sp.exp(u[n]), (n, 1, M))


def z_all() -> sp.Expr:
    return z_pos() + z_neg()


def supcon_out() -> sp.Expr:
    """Khosla Eq. 2, one anchor: mean over positives of -log softmax over A(i)."""
    return -sp.Sum(sp.log(sp.exp(s[p]) / z_all()), (p, 1, m)) / m


def supcon_in() -> sp.Expr:
    """Khosla Eq. 3, one anchor: -log of the mean positive softmax probability."""
    return -sp.log(sp.Sum(sp.exp(s[p]) / z_all(), (p, 1, m)) / m)


def sincere() -> sp.Expr:
    """SINCERE, one anchor: per positive pair the denominator is the pair plus negatives only."""
    return -sp.Sum(sp.log(sp.exp(s[p]) / (sp.exp(s[p]) + z_neg())), (p, 1, m)) / m


def supcon_term(pp: Any = a) -> sp.Expr:
    r"""One SupCon term :math:`\ell_{ip}=-\log(e^{s_p}/Z)` (all positives in Z)."""
    return -sp.log(sp.exp(s[pp]) / z_all())


def sincere_term(pp: Any = a) -> sp.Expr:
    return -sp.log(sp.exp(s[pp]) / (sp.exp(s[pp]) + z_neg()))


def _rewrite_sum(S: sp.Sum) -> sp.Expr:
    """Linear rewriting of one ``Sum``: split sums of terms, pull index-free factors out,
    evaluate constant sums and collapse ``KroneckerDelta(i, k)`` to the ``k`` term (``k`` is
    assumed to lie in the summation range, as every claim states). Cheap and exact; avoids
    ``Sum.doit``'s Gosper machinery."""
    f, (i, a, b) = S.function, S.limits[0]
    width = b - a
    if width.is_Integer:  # explicit bounds: write the terms out
        return sp.Add(*[f.subs(i, a + v) for v in range(int(width) + 1)])
    out: sp.Expr = sp.Integer(0)
    for term in sp.Add.make_args(sp.expand(f)):
        c, dep = term.as_independent(i, as_Add=False)
        if dep == 1:
            out += c * (b - a + 1)
            continue
        deltas = [
            d
            for d in sp.Mul.make_args(dep)
            if isinstance(d, sp.KroneckerDelta) and i in d.free_symbols
        ]
        if deltas:
            d = deltas[0]
            other = d.args[0] if d.args[1] == i else d.args[1]
            out += c * (dep / d).subs(i, other)
            continue
        out += c * sp.Sum(dep, (i, a, b))
    return out


def linear_sums(expr: sp.Expr) -> sp.Expr:
    return expr.replace(lambda a: isinstance(a, sp.Sum), _rewrite_sum)


def logit_form(expr: sp.Expr) -> sp.Expr:
    """Expand logs of exponentials and pull constants out of sums (exact rewriting)."""
    e = linear_sums(sp.expand_log(expr, force=True))
    return sp.expand(sp.expand_log(e, force=True))


def _opaque(expr: sp.Expr) -> sp.Expr:
    """Replace every remaining ``Sum`` of exponentials by a positive symbol (they are > 0)."""
    sums = sorted(expr.atoms(sp.Sum), key=sp.default_sort_key)
    reps = {S: sp.Symbol(f"_S{c}", positive=True) for c, S in enumerate(sums)}
    return expr.xreplace(reps)


def same(a: sp.Expr, b: sp.Expr) -> bool:
    """Exact equality check: logs expanded, sums made opaque, rational functions cancelled;
    falls back to ``simplify`` (never numeric)."""
    d = _opaque(sp.expand_log(linear_sums(a - b), force=True))
    if sp.cancel(sp.expand(d)) == 0:
        return True
    return difference_is_zero(d, 0)


def _abstract(expr: sp.Expr, neg: sp.Symbol = S_N) -> sp.Expr:
    """Replace the full sums Z_P, Z_N by positive symbols."""
    return expr.subs({z_pos(): S_P, z_neg(): neg})


def _grad(expr: sp.Expr, var: Any) -> sp.Expr:
    """Derivative with respect to one indexed logit; deltas collapsed by :func:`linear_sums`."""
    return linear_sums(sp.diff(expr, var))


# ----------------------------------------------------------------------------- gradients


def _out_grad_closed() -> tuple[sp.Expr, sp.Expr]:
    return sp.exp(s[k]) / z_all() - 1 / m, sp.exp(u[j]) / z_all()


def _out_grad_statement() -> sp.Expr:
    gp, gn = _out_grad_closed()
    return sp.And(
        sp.Eq(sp.Derivative(supcon_out(), s[k]), gp), sp.Eq(sp.Derivative(supcon_out(), u[j]), gn)
    )


def _prove_out_grad() -> Proof:
    gp, gn = _out_grad_closed()
    form = logit_form(supcon_out())
    ok_p = same(_grad(form, s[k]), gp)
    ok_n = same(_grad(form, u[j]), gn)
    return Proof(
        proved=ok_p and ok_n,
        method="logs expanded, diff of the Sums, Piecewise resolved for 1<=k<=m, 1<=j<=M, "
        "simplify(diff - closed) == 0",
        scope="symbolic m = |P(i)|, M = |N(i)|",
        assumptions=("m >= 1", "logits real"),
    )


def _per_term_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(supcon_term(a), s[q]), sp.exp(s[q]) / z_all())


def _prove_per_term() -> Proof:
    form = logit_form(supcon_term(a))
    g = _grad(form, s[q]).subs(sp.KroneckerDelta(a, q), 0)  # q != a
    ok = same(g, sp.exp(s[q]) / z_all())
    positive = bool(_abstract(g.subs(sp.exp(s[q]), E_k)).is_positive)
    # net effect on positive k: (1/m) * sum_p d l_ip / d s_k = P_k - 1/m (one attracting term,
    # m - 1 repelling ones): repelled iff P_k > 1/m
    net = linear_sums(sp.Sum(_grad(form, s[k]).subs(a, p), (p, 1, m)) / m)
    ok_net = same(net, sp.exp(s[k]) / z_all() - 1 / m)
    return Proof(
        proved=ok and positive and ok_net,
        method="diff of the single term for q != p equals exp(s_q)/Z (simplify), positive with "
        "Z abstracted to a positive symbol; average over the m terms equals P_k - 1/m",
        scope="symbolic m = |P(i)|, M = |N(i)|",
        assumptions=("q != p, both positives of anchor i", "logits real"),
    )


def _sincere_grad_closed() -> tuple[sp.Expr, sp.Expr]:
    gp = (sp.exp(s[k]) / (sp.exp(s[k]) + z_neg()) - 1) / m
    gn = sp.Sum(sp.exp(u[j]) / (sp.exp(s[p]) + z_neg()), (p, 1, m)) / m
    return gp, gn


def _no_repulsion_statement() -> sp.Expr:
    gp, gn = _sincere_grad_closed()
    return sp.And(
        sp.Eq(sp.Derivative(sincere(), s[k]), gp),
        sp.Lt(gp, 0),
        sp.Eq(sp.Derivative(sincere_term(a), s[q]), 0),
        sp.Eq(sp.Derivative(sincere(), u[j]), gn),
    )


def _prove_no_repulsion() -> Proof:
    gp, gn = _sincere_grad_closed()
    form = logit_form(sincere())
    ok_p = same(_grad(form, s[k]), gp)
    ok_n = same(_grad(form, u[j]), gn)
    # sign: (Q - 1)/m = -Z_N / (m (e^{s_k} + Z_N)) < 0 as soon as one negative exists
    neg_form = -z_neg() / (m * (sp.exp(s[k]) + z_neg()))
    ok_form = same(gp, neg_form)
    sign = bool(neg_form.subs(z_neg(), S_Npos).subs(sp.exp(s[k]), E_k).is_negative)
    # cross term: the term of pair (i, p) does not contain any other positive logit s_q
    cross = _grad(logit_form(sincere_term(a)), s[q]).subs(sp.KroneckerDelta(a, q), 0)
    ok_cross = same(cross, sp.Integer(0))
    return Proof(
        proved=ok_p and ok_n and ok_form and sign and ok_cross,
        method="diff of the Sums with Piecewise resolved (simplify(diff - closed) == 0); "
        "(Q - 1)/m rewritten as -Z_N/(m(e^{s_k}+Z_N)) and negative with Z_N > 0; "
        "d l_ip / d s_q == 0 for q != p",
        scope="symbolic m = |P(i)|, M = |N(i)| (sign: M >= 1)",
        assumptions=("m >= 1", "strict sign needs at least one negative", "logits real"),
    )


def _in_grad_statement() -> sp.Expr:
    g = sp.exp(s[k]) / z_all() - sp.exp(s[k]) / z_pos()
    return sp.And(sp.Eq(sp.Derivative(supcon_in(), s[k]), g), sp.Le(g, 0))


def _prove_in_grad() -> Proof:
    closed = sp.exp(s[k]) / z_all() - sp.exp(s[k]) / z_pos()
    g = _grad(logit_form(supcon_in()), s[k])
    ok = same(g, closed)
    neg_form = -sp.exp(s[k]) * z_neg() / (z_all() * z_pos())
    ok_form = same(closed, neg_form)
    sign = bool(_abstract(neg_form).subs(sp.exp(s[k]), E_k).is_nonpositive)
    return Proof(
        proved=ok and ok_form and sign,
        method="diff of log m + log Z - log Z_P (simplify); rewritten as "
        "-e^{s_k} Z_N / (Z Z_P) <= 0 with sums abstracted to positive symbols",
        scope="symbolic m = |P(i)|, M = |N(i)|",
        assumptions=("m >= 1", "logits real", "= 0 iff no negatives"),
    )


# ----------------------------------------------------------------------------- inequalities


def _jensen_gap(xs: sp.IndexedBase = x, size: Any = m) -> sp.Expr:
    r""":math:`\log(\frac1m\sum x_p) - \frac1m\sum\log x_p \ge 0` (Jensen, log concave)."""
    return sp.log(sp.Sum(xs[p], (p, 1, size)) / size) - sp.Sum(sp.log(xs[p]), (p, 1, size)) / size


def _subs_probs(expr: sp.Expr, z: sp.Expr) -> sp.Expr:
    return expr.replace(
        lambda e: isinstance(e, sp.Indexed) and e.base == x,
        lambda e: sp.exp(s[e.indices[0]]) / z,
    )


def _log_concave() -> bool:
    y = sp.Symbol("y", positive=True)
    return bool(sp.diff(sp.log(y), y, 2).is_negative)


def _in_le_out_statement() -> sp.Expr:
    return sp.Le(supcon_in(), supcon_out())


def _prove_in_le_out() -> Proof:
    red = logit_form(supcon_out() - supcon_in()) - logit_form(_subs_probs(_jensen_gap(), z_all()))
    ok = same(red, sp.Integer(0))
    return Proof(
        proved=ok and _log_concave(),
        method="reduced to Jensen's inequality for the concave log: l_out - l_in equals the "
        "Jensen gap log(mean P_ip) - mean log P_ip at P_ip = e^{s_p}/Z (checked by expand/"
        "simplify); concavity from d^2 log / dy^2 = -1/y^2 < 0",
        scope="symbolic m = |P(i)|, M = |N(i)|",
        assumptions=("m >= 1", "logits real"),
    )


def _sincere_le_statement() -> sp.Expr:
    return sp.And(
        sp.Le(sincere_term(a), supcon_term(a)),
        sp.Eq(supcon_term(a) - sincere_term(a), sp.log(1 + R_q / (E_p + S_N))),
    )


def _prove_sincere_le() -> Proof:
    # term (i, p): SupCon denominator = e^{s_p} + R_q + Z_N with R_q = sum_{q != p} e^{s_q}
    out_t = -sp.log(E_p / (E_p + R_q + S_N))
    sin_t = -sp.log(E_p / (E_p + S_N))
    diff = out_t - sin_t
    closed = sp.log(1 + R_q / (E_p + S_N))
    ok = same(diff, sp.log(sp.together(1 + R_q / (E_p + S_N))))
    nonneg = bool(closed.is_nonnegative)
    r_pos = sp.Symbol("R_q", positive=True)
    strict = bool(closed.subs(R_q, r_pos).is_positive)
    equal_at_one = closed.subs(R_q, 0) == 0
    return Proof(
        proved=ok and nonneg and strict and equal_at_one,
        method="per term, l_out - l_sincere = log(1 + R_q/(e^{s_p} + Z_N)) (simplify) with "
        "R_q = sum_{q != p} e^{s_q}: >= 0, = 0 iff R_q = 0 iff |P(i)| = 1 (monotonicity of "
        "log: SINCERE's denominator is a subset of SupCon's)",
        scope="abstracted sums: every |P(i)| and |N(i)|",
        assumptions=("R_q is an empty sum iff |P(i)| = 1", "logits real"),
    )


def _lower_bound_statement() -> sp.Expr:
    return sp.Ge(supcon_out(), sp.log(m))


def _prove_lower_bound() -> Proof:
    # l_out >= l_in (Jensen, see sincere.supcon_in_le_out) and l_in - log m = log(1 + Z_N/Z_P)
    d = logit_form(supcon_in()) - sp.log(m)
    closed = sp.log(1 + z_neg() / z_pos())
    ok = same(d, sp.log(sp.together(1 + z_neg() / z_pos())))
    nonneg = bool(_abstract(closed).is_nonnegative)
    jensen = _prove_in_le_out().proved
    return Proof(
        proved=ok and nonneg and jensen,
        method="l_out >= l_in by Jensen (reduction checked as in sincere.supcon_in_le_out) and "
        "l_in - log m = log(1 + Z_N/Z_P) >= 0 (simplify, sums abstracted)",
        scope="symbolic m = |P(i)|, M = |N(i)|",
        assumptions=("m >= 1", "equality iff uniform positives and no negative mass"),
    )


# ----------------------------------------------------------------------------- identities


def _infonce_statement() -> sp.Expr:
    nt_xent = -sp.log(sp.exp(s[1]) / (sp.exp(s[1]) + z_neg()))
    return sp.And(
        sp.Eq(sincere().subs(m, 1), nt_xent),
        sp.Eq(supcon_out().subs(m, 1), nt_xent),
        sp.Eq(supcon_in().subs(m, 1), nt_xent),
    )


def _prove_infonce() -> Proof:
    # NT-Xent / InfoNCE for anchor i with its single partner: softmax over A(i) = {p} u N(i)
    nt_xent = logit_form(-sp.log(sp.exp(s[1]) / (sp.exp(s[1]) + z_neg())))
    oks = [same(logit_form(f().subs(m, 1)), nt_xent) for f in (sincere, supcon_out, supcon_in)]
    return Proof(
        proved=all(oks),
        method="substitute |P(i)| = 1, Sum.doit, simplify against the NT-Xent term",
        scope="|P(i)| = 1 (the claim's hypothesis), symbolic M = |N(i)|",
        assumptions=("instance labels: every anchor's only positive is its other view",),
    )


N_ = sp.Symbol("N", integer=True, positive=True)  # number of negatives in the NCE set
KLp = sp.Symbol("KL_plus", nonnegative=True)  # KL(p+ || p-)
KLm = sp.Symbol("KL_minus", nonnegative=True)  # KL(p- || p+)
L_f = sp.Symbol("L_f", real=True)
r = sp.IndexedBase("r", positive=True)
pi = sp.IndexedBase("pi", positive=True)
qq = sp.IndexedBase("q", positive=True)


def _kl_statement() -> sp.Expr:
    dj = KLp + KLm
    return sp.And(sp.Le(sp.log(N_ + 1) - L_f, N_ / (N_ + 1) * dj), sp.Le(N_ / (N_ + 1) * dj, dj))


def _prove_kl() -> Proof:
    jj, ll = sp.symbols("jj ll", integer=True)
    # (1) Gibbs: cross-entropy minus entropy of the slot posterior is a KL divergence
    ce = -sp.Sum(pi[jj] * sp.log(qq[jj]), (jj, 0, N_))
    ent = -sp.Sum(pi[jj] * sp.log(pi[jj]), (jj, 0, N_))
    kl = sp.Sum(pi[jj] * sp.log(pi[jj] / qq[jj]), (jj, 0, N_))
    gibbs = same(ce - ent, kl)
    # Bayes: the target-slot posterior is prop. to p+(x_j) prod_{l != j} p-(x_l); with the
    # leave-one-out product written through its defining property Q / p-(x_j) (Q the full
    # product, p- > 0) and p+ = r p-, it equals r_j / sum_l r_l (symbolic N)
    q_all = sp.Symbol("Q", positive=True)
    pm_ = sp.IndexedBase("p_minus", positive=True)

    def slot(i: Any) -> sp.Expr:
        return r[i] * pm_[i] * (q_all / pm_[i])

    posterior = slot(jj) / sp.Sum(slot(ll), (ll, 0, N_))
    bayes = same(posterior, r[jj] / sp.Sum(r[ll], (ll, 0, N_)))
    # (2) Jensen step: log sum_j r_j = log(N+1) + log(mean r) >= log(N+1) + mean log r
    split = sp.Sum(r[jj], (jj, 0, N_))
    ok_split = same(sp.log(split), sp.log(N_ + 1) + sp.log(split / (N_ + 1)))
    # (3) expectations: E[-log r_0] = -KL+, E[mean_j log r_j] = (KL+ - N KL-)/(N+1)
    lower = -KLp + sp.log(N_ + 1) + (KLp - N_ * KLm) / (N_ + 1)
    ok_alg = same(lower, sp.log(N_ + 1) - N_ / (N_ + 1) * (KLp + KLm))
    # (4) N/(N+1) D_J <= D_J: the slack is D_J/(N+1) >= 0
    slack = sp.cancel((KLp + KLm) - N_ / (N_ + 1) * (KLp + KLm))
    ok_last = same(slack, (KLp + KLm) / (N_ + 1)) and bool(slack.is_nonnegative)
    steps_ok = gibbs and bayes and ok_split and ok_alg and ok_last and _log_concave()
    # Not marked proved: the step that L(f) is a cross-entropy against the slot posterior needs
    # the target placed at a uniformly random slot (exchangeability of the N+1 slots), a
    # probabilistic argument SymPy does not check. Every algebraic step below is checked.
    return Proof(
        proved=False,
        detail="all algebraic steps checked by SymPy: "
        + ("yes" if steps_ok else "NO")
        + "; the exchangeable-slot (random position) step is not SymPy-checked, so the claim "
        "rests on the precise leg and is reported as checked",
        method="reduced to Gibbs' inequality (L(f) >= L(r): CE - entropy of the target-slot "
        "posterior = KL, checked for symbolic N; the posterior is r_j/sum r by Bayes, the "
        "leave-one-out product written as Q/p-(x_j), checked for symbolic N) and Jensen's "
        "inequality for the concave log (log sum r = log(N+1) + log mean r, checked); "
        "E_{p+} log r = KL+, E_{p-} log r = -KL- give log(N+1) - N/(N+1) D_J (simplify); "
        "D_J - N/(N+1) D_J = D_J/(N+1) >= 0",
        scope="symbolic N",
        assumptions=(
            "x_0 ~ p+, x_1..x_N iid ~ p-, critic f > 0",
            "KL(p+||p-), KL(p-||p+) finite",
            "symmetrisation over the N+1 exchangeable slots (standard)",
        ),
    )


m_real = sp.Symbol("m", positive=True)  # |P| treated as a real >= 1 for monotonicity
E_c = sp.Symbol("E_c", positive=True)  # e^{s_c}, the closest positive
E_o = sp.Symbol("E_o", positive=True)  # e^{s_o}, the other positives (all equal)


def _growth_grad() -> sp.Expr:
    return E_c / (E_c + (m_real - 1) * E_o + S_N) - 1 / m_real


def _growth_statement() -> sp.Expr:
    return sp.Equivalent(sp.Gt(_growth_grad(), 0), sp.Gt((m_real - 1) * (E_c - E_o), S_N))


def _prove_growth() -> Proof:
    g = _growth_grad()
    denom = m_real * (E_c + (m_real - 1) * E_o + S_N)
    core = (m_real - 1) * (E_c - E_o) - S_N
    ok = same(g * denom, core)
    denom_pos = bool(denom.subs(m_real, 1 + sp.Symbol("d", nonnegative=True)).is_positive)
    dcore = sp.diff(core, m_real)
    gap = sp.Symbol("g", positive=True)
    monotone = bool(dcore.subs(E_c, E_o + gap).is_positive)
    return Proof(
        proved=ok and denom_pos and monotone,
        method="m * D * (P_c - 1/m) == (m-1)(e^{s_c} - e^{s_o}) - Z_N (simplify) with m*D > 0, "
        "so the sign is that of a quantity increasing in m (derivative e^{s_c} - e^{s_o} > 0)",
        scope="m = |P(i)| as a real >= 1, other positives at a common logit s_o < s_c, Z_N >= 0",
        assumptions=("closest positive strictly ahead: s_c > s_o", "negatives' mass fixed"),
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="sincere.supcon_out_gradient",
        family="sincere",
        kind="gradient",
        text="The SupCon L_out logit gradient is P_ik - 1/|P(i)| on positives and P_in on "
        "negatives (softmax over A(i)).",
        statement=_out_grad_statement,
        source=SOURCE_KHOSLA + " (gradient); derived in research note §1.3",
        assumptions=("anchor with |P(i)| >= 1", "mean over positives, per anchor"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_out_grad,
    ),
    Claim(
        id="sincere.supcon_per_term_repulsion",
        family="sincere",
        kind="gradient",
        text="In SupCon every term l_ip pushes the other positives away "
        "(d l_ip/d s_iq = P_iq > 0); net, a positive k is repelled iff P_ik > 1/|P(i)|.",
        statement=_per_term_statement,
        source="research note §1.3; Feeney & Hughes v4 abstract/teaser ('Repel')",
        assumptions=("q != p both positives of anchor i",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_per_term,
    ),
    Claim(
        id="sincere.no_same_class_repulsion",
        family="sincere",
        kind="gradient",
        text="SINCERE's logit gradient is (Q^(k)_ik - 1)/|P(i)| < 0 on positives, "
        "(1/|P|) sum_p Q^(p)_in > 0 on negatives, and d l_ip/d s_iq = 0 for q != p.",
        statement=_no_repulsion_statement,
        source=SOURCE_SINCERE + "; derived in research note §1.3",
        assumptions=("anchor with |P(i)| >= 1", "strict sign needs |N(i)| >= 1"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_no_repulsion,
    ),
    Claim(
        id="sincere.supcon_in_gradient_nonpositive",
        family="sincere",
        kind="gradient",
        text="SupCon L_in never repels a positive at the logit level: d l_in/d s_ik = "
        "P_ik - X_ik <= 0 with X_ik = e^{s_ik}/sum_p e^{s_ip}.",
        statement=_in_grad_statement,
        source=SOURCE_KHOSLA + "; derived in research note §1.3",
        assumptions=("anchor with |P(i)| >= 1",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_in_grad,
    ),
    Claim(
        id="sincere.supcon_in_le_out",
        family="sincere",
        kind="inequality",
        text="SupCon L_in <= L_out per anchor (Jensen's inequality).",
        statement=_in_le_out_statement,
        source=SOURCE_KHOSLA + " (inequality direction fixed in HobbitLong issues #61/#149)",
        assumptions=("anchor with |P(i)| >= 1",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_in_le_out,
    ),
    Claim(
        id="sincere.sincere_le_supcon",
        family="sincere",
        kind="inequality",
        text="SINCERE <= SupCon L_out term by term, with equality iff |P(i)| = 1.",
        statement=_sincere_le_statement,
        source="derived in research note §1.4(1); SINCERE test_losses.py::test_sup",
        assumptions=("same temperature, base_temperature None",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_sincere_le,
    ),
    Claim(
        id="sincere.supcon_out_lower_bound",
        family="sincere",
        kind="inequality",
        text="Every SupCon L_out anchor term is at least log |P(i)| (SINCERE's infimum is 0).",
        statement=_lower_bound_statement,
        source="derived in research note §1.4(2)",
        assumptions=("anchor with |P(i)| >= 1",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_lower_bound,
    ),
    Claim(
        id="sincere.equals_infonce_instance_labels",
        family="sincere",
        kind="identity",
        text="Under instance labels (|P(i)| = 1) SINCERE, SupCon L_out and L_in all equal "
        "InfoNCE / NT-Xent (SimCLR).",
        statement=_infonce_statement,
        source="research note §1.4(1); SINCERE test_losses.py::test_self_sup",
        assumptions=("|P(i)| = 1 for every anchor",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_infonce,
    ),
    Claim(
        id="sincere.kl_bound",
        family="sincere",
        kind="inequality",
        text="For one target from p+ and N noise samples from p-, log(N+1) - L(f) <= "
        "N/(N+1) D_J <= D_J (Jeffreys divergence), for every critic f > 0.",
        statement=_kl_statement,
        source="Feeney & Hughes v4 abstract (KL bound); proof and constant: research note §1.5",
        assumptions=("x_0 ~ p+, x_1..x_N iid ~ p-", "finite KLs"),
        evidence=("symbolic", "precise"),
        prove=_prove_kl,
    ),
    Claim(
        id="sincere.supcon_repulsion_grows_with_positives",
        family="sincere",
        kind="inequality",
        text="With the other positives at a common logit below the closest one, SupCon repels "
        "the closest positive iff (|P|-1)(e^{s_c}-e^{s_o}) > Z_N: once repelled, it stays "
        "repelled as |P| grows; SINCERE's gradient on it stays negative.",
        statement=_growth_statement,
        source="Feeney & Hughes v4 abstract ('gets worse as the number of images sharing one "
        "class label increases'); research note §1.3 table",
        assumptions=("other positives at a common logit s_o < s_c", "negatives fixed"),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_growth,
    ),
    Claim(
        id="sincere.base_temperature_rescale",
        family="sincere",
        kind="identity",
        text="base_temperature multiplies the SupCon loss and its gradient by tau/tau_base, "
        "which reproduces HobbitLong's SupConLoss scale.",
        statement=lambda: sp.Eq(
            sp.Symbol("L_base"), sp.Symbol("tau") / sp.Symbol("tau_base") * sp.Symbol("L")
        ),
        source="HobbitLong/SupContrast losses.py (research note §2.1)",
        assumptions=("every anchor has a positive (HobbitLong counts positive-free anchors as 0)",),
        evidence=("production",),
    ),
)
