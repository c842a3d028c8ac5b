r"""Cross-entropy baselines: soft-target CE, label smoothing (torch convention), hard NLL.

Symbols (symbolic number of classes :math:`C`): logits :math:`f_k`, temperature :math:`t`,
targets :math:`\alpha_k`, smoothing :math:`\varepsilon`, true class :math:`y`.
"""

from __future__ import annotations

import sympy as sp

from derivations._claim import Claim, Proof
from derivations._sym import difference_is_zero, index_in_range

C = sp.Symbol("C", integer=True, positive=True)
k, j, m, y = sp.symbols("k j m y", integer=True)
f = sp.IndexedBase("f", real=True)
alpha = sp.IndexedBase("alpha", real=True)
t = sp.Symbol("t", positive=True)
eps = sp.Symbol("epsilon", real=True)


def log_partition(temp: sp.Expr = t) -> sp.Expr:
    return sp.log(sp.Sum(sp.exp(f[j] / temp), (j, 1, C)))


def log_prob(i: sp.Expr, temp: sp.Expr = t) -> sp.Expr:
    return f[i] / temp - log_partition(temp)


def soft_ce(targets: sp.IndexedBase = alpha, temp: sp.Expr = t) -> sp.Expr:
    r""":math:`-\sum_k \alpha_k \log\mathrm{softmax}(f/t)_k` for one row."""
    return -sp.Sum(targets[k] * log_prob(k, temp), (k, 1, C))


def smoothed(i: sp.Expr) -> sp.Expr:
    r"""torch's label-smoothing target :math:`(1-\varepsilon)\delta_{iy} + \varepsilon/C`."""
    return (1 - eps) * sp.KroneckerDelta(i, y) + eps / C


def label_smoothing_ce() -> sp.Expr:
    return -sp.Sum(smoothed(k) * log_prob(k, 1), (k, 1, C))


def _decomposition_statement() -> sp.Expr:
    rhs = (1 - eps) * (-log_prob(y, 1)) + eps * (-sp.Sum(log_prob(k, 1) / C, (k, 1, C)))
    return sp.Eq(label_smoothing_ce(), rhs)


def _prove_decomposition() -> Proof:
    st = _decomposition_statement()
    d = index_in_range(sp.expand(st.lhs - st.rhs).doit(), C, y).doit()
    ok = difference_is_zero(d, 0)
    return Proof(
        proved=ok,
        method="expand + Sum.doit, Piecewise resolved for 1<=y<=C, simplify(lhs - rhs) == 0",
        scope="symbolic C",
        assumptions=("C >= 1 integer", "1 <= y <= C", "epsilon real", "f real"),
    )


def _soft_ce_grad_closed() -> sp.Expr:
    z = sp.Sum(sp.exp(f[j] / t), (j, 1, C))
    return (sp.exp(f[m] / t) / z * sp.Sum(alpha[k], (k, 1, C)) - alpha[m]) / t


def _soft_ce_grad_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(soft_ce(), f[m]), _soft_ce_grad_closed())


def _prove_soft_ce_grad() -> Proof:
    g = index_in_range(sp.diff(soft_ce(), f[m]).doit(), C, m)
    ok = difference_is_zero(g, _soft_ce_grad_closed())
    return Proof(
        proved=ok,
        method="diff of the Sum, Piecewise resolved for 1<=m<=C, simplify(diff - closed) == 0",
        scope="symbolic C",
        assumptions=("C >= 1 integer", "1 <= m <= C", "t > 0", "f, alpha real"),
    )


def _ls_grad_statement() -> sp.Expr:
    p_m = sp.exp(f[m]) / sp.Sum(sp.exp(f[j]), (j, 1, C))
    return sp.Eq(sp.Derivative(label_smoothing_ce(), f[m]), p_m - smoothed(m))


def _prove_ls_grad() -> Proof:
    st = _ls_grad_statement()
    g = index_in_range(sp.diff(label_smoothing_ce(), f[m]).doit(), C, m, y).doit()
    g = index_in_range(g, C, m, y)
    ok = difference_is_zero(g, st.rhs)
    return Proof(
        proved=ok,
        method="diff, Sum.doit, Piecewise resolved for 1<=m,y<=C, simplify == 0",
        scope="symbolic C",
        assumptions=("C >= 1 integer", "1 <= m, y <= C", "epsilon real"),
    )


CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="cross_entropy.label_smoothing_decomposition",
        family="cross_entropy",
        kind="identity",
        text="Label-smoothed CE equals (1-eps)*CE + eps*(CE against the uniform distribution).",
        statement=_decomposition_statement,
        source="Szegedy et al. 2016 (arXiv 1512.00567) §7; torch F.cross_entropy(label_smoothing)",
        assumptions=("torch convention: eps/C also lands on the true class",),
        evidence=("symbolic", "precise"),
        prove=_prove_decomposition,
    ),
    Claim(
        id="cross_entropy.label_smoothing_gradient",
        family="cross_entropy",
        kind="gradient",
        text="The gradient of label-smoothed CE with respect to the logits is p - alpha.",
        statement=_ls_grad_statement,
        source="standard (softmax cross-entropy gradient); Müller et al. 2019 (arXiv 1906.02629)",
        assumptions=("t = 1", "alpha = (1-eps) e_y + eps/C"),
        evidence=("symbolic", "production"),
        prove=_prove_ls_grad,
    ),
    Claim(
        id="cross_entropy.soft_ce_gradient",
        family="cross_entropy",
        kind="gradient",
        text="The soft-target CE gradient is (p_m * sum(alpha) - alpha_m) / t; p - alpha on the simplex.",
        statement=_soft_ce_grad_statement,
        source="standard; Hugger & Uhlmann 2024 baseline SoftTargetCrossEntropy (research note §1.4.5)",
        assumptions=("t > 0",),
        evidence=("symbolic", "precise", "production"),
        prove=_prove_soft_ce_grad,
    ),
)
