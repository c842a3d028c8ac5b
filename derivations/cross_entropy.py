r"""Cross-entropy baselines: soft-target CE, label smoothing (torch convention), hard NLL.

Symbols (symbolic number of classes :math:`C`): logits :math:`f_k`, temperature :math:`t`,
targets :math:`\alpha_k`, smoothing :math:`\varepsilon`, true class :math:`y`.
"""

from __future__ import annotations

import sympy as sp

from softnce_theory.derivations._claim import Claim, Definition
from softnce_theory.derivations.tactics import Differentiate, Simplify, index_facts

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


def _p(i: sp.Expr, temp: sp.Expr = t) -> sp.Expr:
    r""":math:`p_i = e^{f_i/t} / \sum_j e^{f_j/t}`."""
    return sp.exp(f[i] / temp) / sp.Sum(sp.exp(f[j] / temp), (j, 1, C))


# ----------------------------------------------------------------------------- definitions

DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        name="soft_ce",
        family="cross_entropy",
        build=soft_ce,
        sizes=(C,),
        args=(f, alpha, t),
        source="Hugger & Uhlmann 2024 baseline SoftTargetCrossEntropy (research note §1.4.5)",
        doc=r"-\sum_k \alpha_k \log\mathrm{softmax}(f/t)_k for one row",
    ),
    Definition(
        name="label_smoothing_ce",
        family="cross_entropy",
        build=label_smoothing_ce,
        sizes=(C,),
        args=(f, eps, y),
        source="Szegedy et al. 2016 §7; torch F.cross_entropy(label_smoothing)",
        doc="soft CE against (1-eps) e_y + eps/C, t = 1",
    ),
    Definition(
        name="nll",
        family="cross_entropy",
        build=lambda: -log_prob(y, 1),
        sizes=(C,),
        args=(f, y),
        source="standard (negative log-likelihood of the true class)",
        doc="-log softmax(f)_y",
    ),
    Definition(
        name="uniform_ce",
        family="cross_entropy",
        build=lambda: -sp.Sum(log_prob(k, 1) / C, (k, 1, C)),
        sizes=(C,),
        args=(f,),
        source="standard (CE against the uniform distribution)",
        doc="-(1/C) sum_k log softmax(f)_k",
    ),
)


# ----------------------------------------------------------------------------- statements


def _decomposition_statement() -> sp.Expr:
    nll_y = DEFINITIONS[2].build()
    uniform = DEFINITIONS[3].build()
    return sp.Eq(label_smoothing_ce(), (1 - eps) * nll_y + eps * uniform)


def _soft_ce_grad_closed() -> sp.Expr:
    return (_p(m) * sp.Sum(alpha[k], (k, 1, C)) - alpha[m]) / t


def _soft_ce_grad_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(soft_ce(), f[m]), _soft_ce_grad_closed())


def _soft_ce_grad_simplex_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(soft_ce(), f[m]), (_p(m) - alpha[m]) / t)


def _ls_grad_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(label_smoothing_ce(), f[m]), _p(m, 1) - smoothed(m))


def _soft_ce_tau_closed() -> sp.Expr:
    r""":math:`\partial\ell/\partial t = \big(\sum_k \alpha_k f_k
    - (\sum_k\alpha_k) \sum_j p_j f_j\big)/t^2`."""
    ef = sp.Sum(_p(j) * f[j], (j, 1, C))
    return (sp.Sum(alpha[k] * f[k], (k, 1, C)) - sp.Sum(alpha[k], (k, 1, C)) * ef) / t**2


def _soft_ce_tau_statement() -> sp.Expr:
    return sp.Eq(sp.Derivative(soft_ce(), t), _soft_ce_tau_closed())


def _simplex() -> tuple[sp.Basic, ...]:
    return (sp.Eq(sp.Sum(alpha[k], (k, 1, C)), 1),)


_SUM_STEPS = ("doit", "linear_sums")

CLAIMS: tuple[Claim, ...] = (
    Claim(
        id="cross_entropy.label_smoothing_decomposition",
        family="cross_entropy",
        kind="identity",
        text="Label-smoothed CE equals (1-eps)*NLL + eps*(CE against the uniform distribution).",
        statement=_decomposition_statement,
        source="Szegedy et al. 2016 (arXiv 1512.00567) §7; torch F.cross_entropy(label_smoothing)",
        evidence=("symbolic", "precise"),
        tactic=Simplify(steps=("expand", "doit", ("in_range", C, y), "doit", "linear_sums")),
        facts=lambda: index_facts(C, y),
        uses=("label_smoothing_ce", "nll", "uniform_ce"),
        notes="torch convention: eps/C also lands on the true class",
    ),
    Claim(
        id="cross_entropy.label_smoothing_gradient",
        family="cross_entropy",
        kind="gradient",
        text="The gradient of label-smoothed CE with respect to the logits is p - alpha.",
        statement=_ls_grad_statement,
        source="standard (softmax cross-entropy gradient); Müller et al. 2019 (arXiv 1906.02629)",
        evidence=("symbolic", "production"),
        tactic=Differentiate(
            steps=("doit", ("in_range", C, m, y), "doit", ("in_range", C, m, y), "linear_sums")
        ),
        facts=lambda: index_facts(C, m, y),
        uses=("label_smoothing_ce",),
    ),
    Claim(
        id="cross_entropy.soft_ce_gradient",
        family="cross_entropy",
        kind="gradient",
        text="The soft-target CE gradient is (p_m * sum(alpha) - alpha_m) / t for any targets.",
        statement=_soft_ce_grad_statement,
        source="standard; Hugger & Uhlmann 2024 baseline SoftTargetCrossEntropy (research note §1.4.5)",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("doit", ("in_range", C, m))),
        facts=lambda: index_facts(C, m),
        uses=("soft_ce",),
    ),
    Claim(
        id="cross_entropy.soft_ce_gradient_simplex",
        family="cross_entropy",
        kind="gradient",
        text="On the simplex (sum(alpha) = 1) the soft-target CE gradient is (p - alpha) / t.",
        statement=_soft_ce_grad_simplex_statement,
        source="standard; Hugger & Uhlmann 2024 baseline SoftTargetCrossEntropy (research note §1.4.5)",
        evidence=("symbolic", "precise"),
        tactic=Differentiate(steps=("doit", ("in_range", C, m), "facts")),
        facts=lambda: (*index_facts(C, m), *_simplex()),
        uses=("soft_ce",),
    ),
    Claim(
        id="cross_entropy.soft_ce_temperature_gradient",
        family="cross_entropy",
        kind="gradient",
        text="d(soft CE)/dt = (sum_k alpha_k f_k - sum(alpha) * E_p[f]) / t^2.",
        statement=_soft_ce_tau_statement,
        source="derived here from the soft-target CE (learnable temperature, CLIP convention)",
        evidence=("symbolic", "precise", "production"),
        tactic=Differentiate(steps=("derivatives", "linear_sums")),
        facts=lambda: (),
        uses=("soft_ce",),
    ),
)
