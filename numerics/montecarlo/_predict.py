"""Glue between mpmath constants and the SymPy prediction functions of ``derivations``.

The predictions printed next to the measurements come from ``derivations.infonce``
(:func:`delta_method_log_mean`, :func:`sampled_softmax_loss_bias`,
:func:`sampled_softmax_grad_bias`, :func:`optimal_critic_gap`, :func:`chi2_divergence`). They are
called with 50-digit SymPy Floats built from mpmath constants, and the difference with
:math:`\\log\\mu` is formed in SymPy before converting to ``float``, so no cancellation is lost.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

DPS = 50


def sym(x: Any) -> sp.Float:
    """A 50-digit SymPy Float from an mpf / float / int."""
    return sp.Float(x, DPS) if not isinstance(x, sp.Basic) else x


def syms(xs: Any) -> list[sp.Float]:
    return [sym(x) for x in xs]


def num(expr: Any) -> float:
    """Evaluate a SymPy expression to a Python float (at 50 digits first)."""
    return float(sp.sympify(expr).evalf(DPS))


def delta_log_mean_bias(mu: Any, sigma2: Any, kappa3: Any, n: int, order: int, ref: Any) -> Any:
    r"""SymPy value of :math:`E\log\bar W_n - \log(\mathrm{ref})` by the delta method of
    ``derivations.infonce.delta_method_log_mean``."""
    from softnce_theory.derivations.infonce import delta_method_log_mean

    return delta_method_log_mean(sym(mu), sym(sigma2), sym(kappa3), n, order=order) - sp.log(
        sym(ref)
    )
