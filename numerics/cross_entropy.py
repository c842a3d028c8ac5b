r"""mpmath oracles for the cross-entropy baselines, written from the formulas.

* soft-target CE: :math:`\ell_i=-\sum_c\alpha_{ic}\log\mathrm{softmax}(f_i/t)_c`, gradient
  :math:`\partial\ell_i/\partial f_{ic}=(p_{ic}\sum_k\alpha_{ik}-\alpha_{ic})/t`;
* label smoothing (torch convention): :math:`\alpha=(1-\varepsilon)e_y+\varepsilon/C`.

Inputs are nested lists / arrays of floats; outputs are mpf at the working precision
(:data:`numerics._mp.DEFAULT_DPS` = 50 digits unless the caller sets ``mp.dps``).
The log-softmax is evaluated as ``x - lse(x)`` so a logit gap of 1e4 keeps full precision.
"""

from __future__ import annotations

import random
from typing import Any

from mpmath import mp

import softnce_theory.derivations.cross_entropy as D
from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.numerics._definitions import definition_leg
from softnce_theory.numerics._mp import (
    DEFAULT_DPS,
    mat,
    mpf,
    neg_log_softmax,
    softmax,
    softmax_complement,
    vec,
    workdps,
    xlogy,
)

PRECISE = LegRegistry("precise")


def soft_ce_rows(logits: Any, targets: Any, t: Any = 1) -> list[Any]:
    """Per-row soft-target CE :math:`-\\sum_c \\alpha_c \\log\\mathrm{softmax}(f/t)_c`."""
    f, a, tt = mat(logits), mat(targets), mpf(t)
    out = []
    for fi, ai in zip(f, a, strict=True):
        nlp = neg_log_softmax([x / tt for x in fi])
        out.append(mp.fsum(0 if ac == 0 else ac * v for ac, v in zip(ai, nlp, strict=True)))
    return out


def soft_ce(logits: Any, targets: Any, t: Any = 1) -> Any:
    """Mean over rows of :func:`soft_ce_rows`."""
    rows = soft_ce_rows(logits, targets, t)
    return mp.fsum(rows) / len(rows)


def soft_ce_grad(logits: Any, targets: Any, t: Any = 1) -> list[list[Any]]:
    """Gradient of :func:`soft_ce` (mean over N rows) with respect to the logits:
    ``p_c * sum(alpha) - alpha_c = p_c * sum_{k != c} alpha_k - alpha_c * (1 - p_c)``, the second
    form avoiding the cancellation of ``p_c - 1`` when ``p_c`` is within 1e-50 of 1."""
    f, a, tt = mat(logits), mat(targets), mpf(t)
    n = len(f)
    grad = []
    for fi, ai in zip(f, a, strict=True):
        z = [x / tt for x in fi]
        p, q = softmax(z), softmax_complement(z)
        mass = mp.fsum(ai)
        grad.append(
            [(pc * (mass - ac) - ac * qc) / (tt * n) for pc, qc, ac in zip(p, q, ai, strict=True)]
        )
    return grad


def smoothed_targets(labels: list[int], num_classes: int, eps: Any) -> list[list[Any]]:
    """torch's label-smoothing target :math:`(1-\\varepsilon)e_y + \\varepsilon/C`."""
    e = mpf(eps)
    return [
        [(1 - e) * (1 if c == y else 0) + e / num_classes for c in range(num_classes)]
        for y in labels
    ]


def label_smoothing_ce(logits: Any, labels: list[int], eps: Any, t: Any = 1) -> Any:
    """Label-smoothed CE as the soft CE against :func:`smoothed_targets`."""
    c = len(mat(logits)[0])
    return soft_ce(logits, smoothed_targets(labels, c, eps), t)


def nll(logits: Any, labels: list[int], t: Any = 1) -> Any:
    """Mean hard-label NLL."""
    f, tt = mat(logits), mpf(t)
    rows = [neg_log_softmax([x / tt for x in fi])[y] for fi, y in zip(f, labels, strict=True)]
    return mp.fsum(rows) / len(f)


def entropy(p: list[Any]) -> Any:
    return -mp.fsum(xlogy(x, x) for x in p)


# ----------------------------------------------------------------------------- precise legs


def _random_case(rng: Any, n: int, c: int, scale: float) -> tuple[list[list[float]], list[int]]:
    logits = (rng.standard_normal((n, c)) * scale).tolist()
    labels = rng.integers(0, c, size=n).tolist()
    return logits, labels


@PRECISE.register("cross_entropy.label_smoothing_decomposition")
def _ls_decomposition(cfg: CheckConfig) -> LegResult:
    import numpy as np

    rng = np.random.default_rng(cfg.seed_for("cross_entropy.label_smoothing_decomposition"))
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(60)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 12))
            scale = float(10 ** rng.uniform(-2, 4))  # logits up to ~1e4
            logits, labels = _random_case(rng, n, c, scale)
            eps = float(rng.uniform(0, 1))
            lhs = label_smoothing_ce(logits, labels, eps)
            uniform = [[mpf(1) / c] * c for _ in range(n)]
            rhs = (1 - mpf(eps)) * nll(logits, labels) + mpf(eps) * soft_ce(logits, uniform)
            tally.close(lhs, rhs, f"point {k}: C={c}, eps={eps:.4g}, scale={scale:.3g}")
    return tally.result("CE_eps vs (1-eps)*CE + eps*uniform CE at 50 digits")


@PRECISE.register("cross_entropy.soft_ce_gradient")
def _soft_ce_gradient(cfg: CheckConfig) -> LegResult:
    """Closed form p*sum(alpha) - alpha against mpmath.diff of the oracle value."""
    import numpy as np

    rng = np.random.default_rng(cfg.seed_for("cross_entropy.soft_ce_gradient"))
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(12, 4)):
            c = int(rng.integers(2, 6))
            t = float(10 ** rng.uniform(-1, 1))
            logits = (rng.standard_normal(c) * 3).tolist()
            alpha = rng.dirichlet(np.ones(c)).tolist()
            closed = soft_ce_grad([logits], [alpha], t)[0]
            for j in range(c):

                def f_j(
                    x: Any,
                    j: int = j,
                    logits: list[float] = logits,
                    alpha: Any = alpha,
                    t: float = t,
                ) -> Any:
                    row = [mpf(v) for v in logits]
                    row[j] = x
                    return soft_ce([row], [alpha], t)

                numeric = mp.diff(f_j, mpf(logits[j]))
                tally.close(closed[j], numeric, f"point {k}, class {j}")
    return tally.result("closed-form gradient vs mpmath.diff (step method, +10 digits)")


def _fd_leg(cfg: CheckConfig, cid: str, closed: Any, wrt: str, simplex: bool) -> LegResult:
    """A closed-form derivative of the soft CE oracle against ``mpmath.diff`` of the oracle."""
    import numpy as np

    rng = np.random.default_rng(cfg.seed_for(cid))
    tally = Tally("precise", rtol=1e-30, atol=1e-30, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(12, 4)):
            c = int(rng.integers(2, 6))
            t = mpf(float(10 ** rng.uniform(-1, 1)))
            logits = vec((rng.standard_normal(c) * 3).tolist())
            alpha = vec(rng.uniform(0, 2, size=c))
            if simplex:  # exactly on the simplex at the working precision
                alpha = [a / mp.fsum(alpha) for a in alpha]
            for j in range(c) if wrt == "logit" else [None]:
                if j is None:

                    def f_t(tt: Any, logits: Any = logits, alpha: Any = alpha) -> Any:
                        return soft_ce([logits], [alpha], tt)

                    numeric = mp.diff(f_t, t)
                else:

                    def f_j(
                        x: Any, j: int = j, logits: Any = logits, alpha: Any = alpha, t: Any = t
                    ) -> Any:
                        row = list(logits)
                        row[j] = x
                        return soft_ce([row], [alpha], t)

                    numeric = mp.diff(f_j, logits[j])
                tally.close(closed(logits, alpha, t, j), numeric, f"point {k}, index {j}")
    return tally.result(f"closed form vs mpmath.diff of the oracle ({wrt})")


@PRECISE.register("cross_entropy.soft_ce_gradient_simplex")
def _soft_ce_gradient_simplex(cfg: CheckConfig) -> LegResult:
    """(p_m - alpha_m)/t for alpha on the simplex."""

    def closed(f: Any, a: Any, t: Any, j: int) -> Any:
        return (softmax([x / t for x in f])[j] - a[j]) / t

    return _fd_leg(cfg, "cross_entropy.soft_ce_gradient_simplex", closed, "logit", True)


@PRECISE.register("cross_entropy.soft_ce_temperature_gradient")
def _soft_ce_temperature_gradient(cfg: CheckConfig) -> LegResult:
    """(sum a f - sum(a) E_p[f]) / t^2 for arbitrary non-negative targets."""

    def closed(f: Any, a: Any, t: Any, j: Any) -> Any:
        p = softmax([x / t for x in f])
        ef = mp.fsum(pi * fi for pi, fi in zip(p, f, strict=True))
        af = mp.fsum(ai * fi for ai, fi in zip(a, f, strict=True))
        return (af - mp.fsum(a) * ef) / t**2

    return _fd_leg(cfg, "cross_entropy.soft_ce_temperature_gradient", closed, "t", False)


# ----------------------------------------------------------------------------- definitions

DEFINITION = LegRegistry("definition")


def _sample(rng: random.Random, *, eps: bool = False, label: bool = False, targets: bool = False):
    c = rng.randint(2, 5)
    point: dict[Any, Any] = {D.f: [rng.uniform(-5, 5) for _ in range(c)]}
    if targets:
        point[D.alpha] = [rng.uniform(0, 2) for _ in range(c)]  # not on the simplex: general
        point[D.t] = 10 ** rng.uniform(-1, 1)
    if eps:
        point[D.eps] = rng.uniform(0, 1)
    if label:
        point[D.y] = rng.randint(1, c)  # SymPy indices are 1-based
    return {D.C: c}, point


def _oracle_args(sizes: Any, pt: Any) -> tuple[list[Any], list[int]]:
    labels = [int(pt[D.y]) - 1] if D.y in pt else []
    return [pt[D.f]], labels


def _register_definitions() -> None:
    defs = {d.name: d for d in D.DEFINITIONS}

    def soft(sizes: Any, pt: Any) -> Any:
        return soft_ce([pt[D.f]], [pt[D.alpha]], pt[D.t])

    def smooth(sizes: Any, pt: Any) -> Any:
        f, lab = _oracle_args(sizes, pt)
        return label_smoothing_ce(f, lab, pt[D.eps])

    def nll_(sizes: Any, pt: Any) -> Any:
        f, lab = _oracle_args(sizes, pt)
        return nll(f, lab)

    def uniform(sizes: Any, pt: Any) -> Any:
        c = sizes[D.C]
        return soft_ce([pt[D.f]], [[mpf(1) / c] * c])

    table = {
        "soft_ce": (soft, {"targets": True}),
        "label_smoothing_ce": (smooth, {"eps": True, "label": True}),
        "nll": (nll_, {"label": True}),
        "uniform_ce": (uniform, {}),
    }
    for name, (oracle, opts) in table.items():
        defn = defs[name]

        def leg(cfg: CheckConfig, defn: Any = defn, oracle: Any = oracle, opts: Any = opts) -> Any:
            return definition_leg(defn, lambda rng: _sample(rng, **opts), oracle, cfg)

        DEFINITION.register(defn.id)(leg)


_register_definitions()


__all__ = [
    "DEFAULT_DPS",
    "DEFINITION",
    "PRECISE",
    "entropy",
    "label_smoothing_ce",
    "nll",
    "smoothed_targets",
    "soft_ce",
    "soft_ce_grad",
    "soft_ce_rows",
]
