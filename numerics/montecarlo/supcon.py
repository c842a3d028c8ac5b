r"""SupCon vs SINCERE batch composition: expected per-anchor loss and same-class gradient.

One anchor :math:`i` with :math:`|P|=K` same-class samples -- the *closest* positive at logit
:math:`s_*` (``closest_logit``) and :math:`K-1` others with random logits from a law
:math:`\mathcal D_+` -- and ``n_negatives`` :math:`N` different-class samples with logits from
:math:`\mathcal D_-` (normal or discrete laws). Logits are :math:`s_{ia}=z_i^\top z_a/\tau`.
Per-anchor losses, written directly here (research notes ``sincere_supcon_aljundi.md`` §0, §1.3;
Khosla et al. 2020 eq. 2; Feeney & Hughes, SINCERE):

.. math::
    \ell^{\rm SupCon}=\frac1K\sum_{p\in P}\Big[-s_p+\log\sum_{a\in A}e^{s_a}\Big],\qquad
    \ell^{\rm SINCERE}=\frac1K\sum_{p\in P}\Big[-s_p+\log\Big(e^{s_p}+\sum_{n\in N}e^{s_n}\Big)\Big],

with gradients with respect to a positive's logit
:math:`\partial\ell^{\rm SupCon}/\partial s_k=e^{s_k}/D-1/K` (:math:`D=\sum_{a\in A}e^{s_a}`;
positive = repulsion, when the positive holds more than its uniform share) and
:math:`\partial\ell^{\rm SINCERE}/\partial s_k=(Q_k-1)/K<0`,
:math:`Q_k=e^{s_k}/(e^{s_k}+\sum_ne^{s_n})` (always attraction).

Outputs (expected values, K = |P| on the grid): each loss, its gradient on the closest positive,
and the mean gradient over the K positives. The research note's table (50 negatives, closest
positive at logit 6) shows SupCon's repulsion on the closest positive growing with |P|
(+0.351, +0.596, +0.762, +0.712 for |P| = 2, 4, 16, 64) while SINCERE's gradient stays negative
and shrinks like 1/|P|.

Predictions (this module): **mean field** (first order) replaces the random sums
:math:`U=\sum_{q\ne *}e^{s_q}` and :math:`V=\sum_ne^{s_n}` by their means; the **second order**
adds the delta-method correction :math:`\tfrac12 f''(\bar D)\,\mathrm{Var}D` (e.g.
:math:`E\log D\approx\log\bar D-\mathrm{Var}D/(2\bar D^2)`,
:math:`E[e^{s_*}/D]\approx e^{s_*}(1/\bar D+\mathrm{Var}D/\bar D^3)`); expectations over a random
positive's own logit are exact (quadrature or sums). Control variates: :math:`(U-\bar U)/\bar D`,
:math:`(V-\bar V)/\bar D` and :math:`(\sum_{q\ne*}s_q-(K-1)E s_+)/K` (mean exactly 0).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from mpmath import mp

from softnce_theory.numerics.montecarlo._base import (
    Prediction,
    ScenarioConfig,
    check_distribution,
    register,
)
from softnce_theory.numerics.montecarlo._sampling import DiscreteLaw, normal

OUTPUTS = (
    "supcon_loss",
    "supcon_grad_closest",
    "supcon_grad_pos_mean",
    "sincere_loss",
    "sincere_grad_closest",
    "sincere_grad_pos_mean",
)


# ------------------------------------------------------------------------------------------------
# per-anchor losses in torch (closed-form gradients; tests compare them with autograd)
# ------------------------------------------------------------------------------------------------
def supcon_anchor(pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""SupCon :math:`\mathcal L_{out}` for one anchor per row: ``pos`` (n, K) positive logits,
    ``neg`` (n, N) negative logits. Returns the loss (n,) and :math:`\partial\ell/\partial s_p`
    (n, K) :math:`=\mathrm{softmax}_A(s)_p-1/K`."""
    allv = torch.cat([pos, neg], dim=1)
    lse = torch.logsumexp(allv, dim=1)
    loss = lse - pos.mean(1)
    grad = torch.exp(pos - lse.unsqueeze(1)) - 1.0 / pos.shape[1]
    return loss, grad


def sincere_anchor(pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""SINCERE for one anchor per row. Returns the loss (n,) and
    :math:`\partial\ell/\partial s_p=(Q_p-1)/K` (n, K)."""
    lneg = torch.logsumexp(neg, dim=1, keepdim=True)
    lden = torch.logaddexp(pos, lneg)
    loss = (lden - pos).mean(1)
    grad = (torch.exp(pos - lden) - 1.0) / pos.shape[1]
    return loss, grad


# ------------------------------------------------------------------------------------------------
# logit laws
# ------------------------------------------------------------------------------------------------
_HERMITE: list[tuple[list[Any], list[Any]]] = []


def _hermite_nodes(n: int = 96) -> tuple[list[Any], list[Any]]:
    """Probabilists' Gauss–Hermite rule (weights normalised to 1) for E f(Z), Z ~ N(0, 1);
    exact for polynomials of degree < 2n, ~1e-15 for the smooth integrands used here."""
    if not _HERMITE:
        x, w = np.polynomial.hermite_e.hermegauss(n)
        w = w / w.sum()
        _HERMITE.append(([mp.mpf(v) for v in x], [mp.mpf(v) for v in w]))
    return _HERMITE[0]


@dataclass(frozen=True)
class _Law:
    mean: float
    std: float
    values: tuple[float, ...] | None
    probs: tuple[float, ...] | None

    @property
    def discrete(self) -> bool:
        return self.values is not None

    def expect(self, f: Callable[[Any], Any]) -> Any:
        """E f(s): exact sum for a discrete law, Gauss–Hermite quadrature for the normal."""
        if self.values is not None and self.probs is not None:
            return mp.fsum(
                mp.mpf(p) * f(mp.mpf(v))
                for v, p in zip(self.values, self.probs, strict=True)
                if p > 0
            )
        m, s = mp.mpf(self.mean), mp.mpf(self.std)
        if s == 0:
            return f(m)
        nodes, weights = _hermite_nodes()
        return mp.fsum(w * f(m + s * x) for x, w in zip(nodes, weights, strict=True))

    def exp_moments(self) -> tuple[Any, Any, Any]:
        """E s, E e^s and Var e^s (closed form for the normal)."""
        if self.values is not None:
            es = self.expect(lambda s: s)
            m1 = self.expect(mp.exp)
            m2 = self.expect(lambda s: mp.exp(2 * s))
            return es, m1, m2 - m1**2
        m, s2 = mp.mpf(self.mean), mp.mpf(self.std) ** 2
        m1 = mp.exp(m + s2 / 2)
        return m, m1, mp.exp(2 * m + s2) * (mp.exp(s2) - 1)

    def sample(
        self, shape: tuple[int, ...], gen: torch.Generator, prep: Any, device: torch.device
    ) -> torch.Tensor:
        if self.values is not None:
            law, vals = prep
            return vals[law.sample(shape, gen)]
        return normal(shape, gen, device) * self.std + self.mean


@register
@dataclass(frozen=True)
class SupConComposition(ScenarioConfig):
    """SupCon vs SINCERE: one anchor, K same-class samples (incl. the closest), N negatives."""

    name: ClassVar[str] = "supcon"
    default_ks: ClassVar[tuple[int, ...]] = (1, 2, 4, 16, 64)
    quantity: ClassVar[str] = "value"
    k_meaning: ClassVar[str] = "|P|: same-class samples of the anchor (closest one included)"
    prediction_source: ClassVar[str] = (
        "mean-field (1st) and delta-method (2nd) composition, numerics.montecarlo.supcon"
    )

    n_negatives: int = 50
    closest_logit: float = 6.0
    pos_mean: float = 0.0
    pos_std: float = 1.0
    neg_mean: float = 0.0
    neg_std: float = 1.0
    pos_values: tuple[float, ...] | None = None
    pos_probs: tuple[float, ...] | None = None
    neg_values: tuple[float, ...] | None = None
    neg_probs: tuple[float, ...] | None = None

    def validate(self) -> None:
        if int(self.n_negatives) != self.n_negatives or self.n_negatives < 1:
            raise ValueError(f"n_negatives must be an integer >= 1, got {self.n_negatives!r}")
        for nm in ("closest_logit", "pos_mean", "pos_std", "neg_mean", "neg_std"):
            v = getattr(self, nm)
            if not math.isfinite(v) or (nm.endswith("std") and v < 0):
                raise ValueError(f"{nm} must be finite (and >= 0 for a std), got {v!r}")
        for side in ("pos", "neg"):
            vals, probs = getattr(self, f"{side}_values"), getattr(self, f"{side}_probs")
            if (vals is None) != (probs is None):
                raise ValueError(f"{side}_values and {side}_probs must be given together")
            if vals is not None:
                v = np.asarray(vals, dtype=np.float64)
                if v.ndim != 1 or not np.all(np.isfinite(v)):
                    raise ValueError(f"{side}_values must be a 1-D sequence of finite logits")
                check_distribution(f"{side}_probs", probs, v.size, f"{side}_values")

    def laws(self) -> tuple[_Law, _Law]:
        return (
            _Law(self.pos_mean, self.pos_std, self.pos_values, self.pos_probs),
            _Law(self.neg_mean, self.neg_std, self.neg_values, self.neg_probs),
        )

    def output_names(self) -> tuple[str, ...]:
        return OUTPUTS

    def n_controls(self) -> int:
        return 3

    def trial_cost(self, k: int) -> int:
        return 4 * (k + self.n_negatives) + 30

    def _moments(self) -> dict[str, float]:
        def build() -> dict[str, float]:
            lp, ln = self.laws()
            with mp.workdps(30):
                es_p, ee_p, ve_p = lp.exp_moments()
                _, ee_n, ve_n = ln.exp_moments()
            return {
                k: float(v)
                for k, v in (
                    ("es_p", es_p),
                    ("ee_p", ee_p),
                    ("ve_p", ve_p),
                    ("ee_n", ee_n),
                    ("ve_n", ve_n),
                )
            }

        return self.cached("moments", build)

    def prepare(self, k: int, device: torch.device) -> dict[str, Any]:
        lp, ln = self.laws()
        mo = self._moments()
        prep: dict[str, Any] = {
            "device": device,
            "dbar": math.exp(self.closest_logit)
            + (k - 1) * mo["ee_p"]
            + self.n_negatives * mo["ee_n"],
        }
        for side, law in (("pos", lp), ("neg", ln)):
            if law.values is not None and law.probs is not None:
                prep[side] = (
                    DiscreteLaw(list(law.probs), device),
                    torch.tensor(law.values, dtype=torch.float64, device=device),
                )
            else:
                prep[side] = None
        return prep

    def simulate(
        self, prep: dict[str, Any], k: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        lp, ln = self.laws()
        dev = prep["device"]
        mo = self._moments()
        others = lp.sample((n, k - 1), gen, prep["pos"], dev)
        neg = ln.sample((n, self.n_negatives), gen, prep["neg"], dev)
        closest = torch.full((n, 1), float(self.closest_logit), dtype=torch.float64, device=dev)
        pos = torch.cat([closest, others], dim=1)
        l_sc, g_sc = supcon_anchor(pos, neg)
        l_si, g_si = sincere_anchor(pos, neg)
        y = torch.stack([l_sc, g_sc[:, 0], g_sc.mean(1), l_si, g_si[:, 0], g_si.mean(1)], dim=1)
        dbar = prep["dbar"]
        u = (torch.exp(others).sum(1) - (k - 1) * mo["ee_p"]) / dbar
        v = (torch.exp(neg).sum(1) - self.n_negatives * mo["ee_n"]) / dbar
        lin = (others.sum(1) - (k - 1) * mo["es_p"]) / k
        c = torch.stack([u, v, lin], dim=1).unsqueeze(1).expand(n, len(OUTPUTS), 3)
        return y, c

    def predictions(self, k: int) -> list[Prediction]:
        lp, _ = self.laws()
        out: list[list[float]] = []
        with mp.workdps(30):
            m = self._moments()
            es_p, ee_p, ve_p = mp.mpf(m["es_p"]), mp.mpf(m["ee_p"]), mp.mpf(m["ve_p"])
            ee_n, ve_n = mp.mpf(m["ee_n"]), mp.mpf(m["ve_n"])
            n_neg = self.n_negatives
            s_star = mp.mpf(self.closest_logit)
            e_star = mp.exp(s_star)
            vbar, var_v = n_neg * ee_n, n_neg * ve_n
            dbar = e_star + (k - 1) * ee_p + vbar
            var_d = (k - 1) * ve_p + var_v
            kk = mp.mpf(k)
            # SupCon
            loss1 = mp.log(dbar) - (s_star + (k - 1) * es_p) / kk
            loss2 = loss1 - var_d / (2 * dbar**2)
            gc1 = e_star / dbar - 1 / kk
            gc2 = e_star * (1 / dbar + var_d / dbar**3) - 1 / kk
            gm1 = ((e_star + (k - 1) * ee_p) / dbar - 1) / kk
            ev_d = vbar / dbar - var_v / dbar**2 + vbar * var_d / dbar**3  # E[V/D], 2nd order
            gm2 = ((1 - ev_d) - 1) / kk

            # SINCERE: per-positive expectations over its own logit, V at mean (1st) / delta (2nd)
            def per_pos(s: Any, order: int) -> tuple[Any, Any]:
                a = mp.exp(s) + vbar
                loss = mp.log(a) - s
                q = mp.exp(s) / a
                if order == 2:
                    loss -= var_v / (2 * a**2)
                    q += mp.exp(s) * var_v / a**3
                return loss, q - 1

            res = []
            for order in (1, 2):
                l_star, g_star = per_pos(s_star, order)
                if k > 1:
                    l_oth = lp.expect(functools.partial(_first, per_pos, order))
                    g_oth = lp.expect(functools.partial(_second, per_pos, order))
                else:
                    l_oth = g_oth = mp.zero
                res.append(
                    (
                        (l_star + (k - 1) * l_oth) / kk,
                        g_star / kk,
                        (g_star + (k - 1) * g_oth) / kk**2,
                    )
                )
            out = [
                [float(loss1), float(loss2)],
                [float(gc1), float(gc2)],
                [float(gm1), float(gm2)],
                [float(res[0][0]), float(res[1][0])],
                [float(res[0][1]), float(res[1][1])],
                [float(res[0][2]), float(res[1][2])],
            ]
        return [Prediction(a, b) for a, b in out]

    def constants(self) -> dict[str, Any]:
        return {**self._moments(), "e_closest": math.exp(self.closest_logit)}


def _first(fn: Callable[[Any, int], tuple[Any, Any]], order: int, s: Any) -> Any:
    return fn(s, order)[0]


def _second(fn: Callable[[Any, int], tuple[Any, Any]], order: int, s: Any) -> Any:
    return fn(s, order)[1]
