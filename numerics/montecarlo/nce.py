r"""Scenarios with discrete negatives: ranking NCE / InfoNCE, sampled softmax, and log-mean-exp.

Common notation: :math:`C` classes, logits :math:`o\in\mathbb R^C`, noise (proposal) distribution
:math:`q` (all :math:`q_c>0`), :math:`K` negatives :math:`y_1..y_K\overset{iid}\sim q` with class
counts :math:`N\sim\mathrm{Mult}(K,q)`. Every per-trial quantity below is a function of the counts,
so ``sampler="counts"`` (exact multinomial counts, :math:`O(C)` per trial) and
``sampler="direct"`` (materialise the K negatives, :math:`O(K)`) estimate the same expectations.

Ranking NCE / InfoNCE (Ma & Collins 2018; Hugger & Uhlmann 2024, §1.4 of the research notes)
--------------------------------------------------------------------------------------------
Scores :math:`s_c=o_c-\log q_c` (``log_q_correction=True``) or :math:`s_c=o_c`; weights
:math:`W_c=e^{s_c}`, :math:`\mu=\sum_c q_cW_c`, tilted distribution :math:`\pi_c=q_cW_c/\mu`.
The positive :math:`y_0\sim p` (``data``, default :math:`\mathrm{softmax}(o)`). Loss and limit

.. math::
    L_K=-s_{y_0}+\log\Big(W_{y_0}+\sum_{k=1}^K W_{y_k}\Big),\qquad
    L_K-\log K\;\to\;L_\infty=-s_{y_0}+\log\mu

(with the correction, :math:`L_\infty=\mathrm{CE}(o,y_0)+\log q_{y_0}`). Per trial the engine
records :math:`L_K-\log K-L_\infty=\log\big((W_{y_0}+\sum_cN_cW_c)/K\big)-\log\mu` and the
logit-gradient bias :math:`\hat\pi_c-\pi_c` with
:math:`\hat\pi_c=(W_{y_0}[c=y_0]+N_cW_c)/(W_{y_0}+\sum N W)` (the :math:`-[c=y_0]` terms of
:math:`\nabla L_K` and :math:`\nabla L_\infty` cancel).

*Predictions.* Loss: the delta method conditional on :math:`y_0` (the positive shifts the
mean of K i.i.d. weights by :math:`W_{y_0}/K`),
:math:`\sum_{y}p_y\,\mathrm{delta}(\mu+W_y/K,\sigma^2,\kappa_3,K)-\log\mu`, orders 1 and 2, with
``derivations.infonce.delta_method_log_mean``. Gradient, first order:
``sampled_softmax_grad_bias(pi, q, K, c)`` :math:`=\frac{\pi_c}{K}(1+\chi^2(\pi\|q)-\pi_c/q_c)`
plus the positive's deterministic shift :math:`(p_cW_c-\pi_c\,E_pW)/(K\mu)`.

*Control variates* (mean exactly 0): :math:`\varepsilon=\sum_cN_cW_c/(K\mu)-1`,
:math:`u_c=(N_c/K-q_c)W_c/\mu`, :math:`d_c=([y_0=c]-p_c)W_c/\mu`,
:math:`e=(W_{y_0}-E_pW)/\mu` -- the linear terms of the delta expansion.

Sampled softmax (Bengio & Senécal 2008; Jean et al. 2015; notes §6.6)
---------------------------------------------------------------------
:math:`m=K` samples from :math:`q`, :math:`\hat Z=\frac1m\sum_i e^{o_{y_i}}/q_{y_i}`,
:math:`L'=-o_t+\log\hat Z`, :math:`L=-o_t+\log Z`, :math:`p=\mathrm{softmax}(o)`. Bias of the loss
:math:`E\log\hat Z-\log Z\approx-\chi^2(p\|q)/(2m)` (``sampled_softmax_loss_bias``; second order:
``delta_method_log_mean``) and of the logit gradient
:math:`E\hat p_j-p_j\approx\frac{p_j}{m}(1+\chi^2-p_j/q_j)` (``sampled_softmax_grad_bias``).
Controls :math:`\varepsilon` and :math:`u_c` as above.

Log-mean-exp (notes §6.5)
-------------------------
:math:`W=e^{a}`, :math:`a\sim N(0,\sigma^2)`: :math:`E\log\frac1K\sum W_i-\log\mu` with
:math:`\mu=e^{\sigma^2/2}`, :math:`\mathrm{Var}W=(e^{\sigma^2}-1)e^{\sigma^2}`,
:math:`\kappa_3=(e^{\sigma^2}+2)(e^{\sigma^2}-1)^2e^{3\sigma^2/2}`. At :math:`\sigma=1` the notes
quote :math:`E\log Z_N=0.4241/0.4922/0.4995` for :math:`N=10/100/1000`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import mpmath
import numpy as np
import torch
import torch.nn.functional as F
from mpmath import mp

from softnce_theory.numerics.montecarlo._base import (
    Prediction,
    ScenarioConfig,
    check_distribution,
    check_finite_vector,
    register,
)
from softnce_theory.numerics.montecarlo._predict import DPS, delta_log_mean_bias, num, sym, syms
from softnce_theory.numerics.montecarlo._sampling import DiscreteLaw, normal


def _zipf(c: int) -> tuple[float, ...]:
    w = [1.0 / (i + 1) for i in range(c)]
    s = math.fsum(w)
    return tuple(x / s for x in w)


#: default 10-class logits and Zipf noise prior used by several scenarios
DEFAULT_LOGITS: tuple[float, ...] = (1.2, 0.9, 0.6, 0.3, 0.0, -0.3, -0.6, -0.9, -1.2, -1.5)
DEFAULT_NOISE: tuple[float, ...] = _zipf(10)
SAMPLERS = ("direct", "counts")


@dataclass(frozen=True)
class _DiscreteConst:
    w: list[Any]  # W_c (mpf)
    mu: Any
    sigma2: Any
    kappa3: Any
    pi: list[Any]
    p: list[Any]  # law of the positive (ranking) / softmax (sampled softmax)
    q: list[Any]
    ep_w: Any  # E_p W


def _softmax_mp(o: list[Any]) -> list[Any]:
    m = max(o)
    e = [mp.exp(x - m) for x in o]
    s = mp.fsum(e)
    return [x / s for x in e]


def _moments_mp(q: list[Any], w: list[Any]) -> tuple[Any, Any, Any]:
    mu = mp.fsum(qc * wc for qc, wc in zip(q, w, strict=True))
    s2 = mp.fsum(qc * (wc - mu) ** 2 for qc, wc in zip(q, w, strict=True))
    k3 = mp.fsum(qc * (wc - mu) ** 3 for qc, wc in zip(q, w, strict=True))
    return mu, s2, k3


class _DiscreteNegatives(ScenarioConfig):
    """Shared code: negatives from a discrete noise law, per-class weights W_c."""

    logits: tuple[float, ...]
    noise: tuple[float, ...]
    sampler: str

    def _validate_common(self) -> None:
        o = check_finite_vector("logits", self.logits)
        q = check_distribution("noise", self.noise, o.size, "logits")
        if np.any(q <= 0):
            raise ValueError("noise must be > 0 for every class (log q and 1/q are used)")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")

    @property
    def n_classes(self) -> int:
        return len(self.logits)

    def trial_cost(self, k: int) -> int:
        per_out = self.n_classes * (self.n_controls() + 2)
        return per_out + (k if self.sampler == "direct" else 2 * self.n_classes)

    def _counts(self, law: DiscreteLaw, n: int, k: int, gen: torch.Generator) -> torch.Tensor:
        if self.sampler == "counts":
            return law.counts(n, k, gen)
        return law.counts_from_indices(law.sample((n, k), gen))


@register
@dataclass(frozen=True)
class RankingNCE(_DiscreteNegatives):
    """Ranking NCE / InfoNCE over C classes, K negatives from ``noise``, positive from ``data``."""

    name: ClassVar[str] = "ranking_nce"
    default_ks: ClassVar[tuple[int, ...]] = (1, 10, 100, 1000, 10000)
    prediction_source: ClassVar[str] = (
        "derivations.infonce.delta_method_log_mean (conditional on the positive), "
        "sampled_softmax_grad_bias + positive shift"
    )

    logits: tuple[float, ...] = DEFAULT_LOGITS
    noise: tuple[float, ...] = DEFAULT_NOISE
    data: tuple[float, ...] | None = None
    log_q_correction: bool = True
    sampler: str = "direct"

    def validate(self) -> None:
        self._validate_common()
        if self.data is not None:
            check_distribution("data", self.data, self.n_classes, "logits")

    def output_names(self) -> tuple[str, ...]:
        return ("loss_bias", *[f"grad_bias[{c}]" for c in range(self.n_classes)])

    def n_controls(self) -> int:
        return 4

    def const(self) -> _DiscreteConst:
        def build() -> _DiscreteConst:
            with mp.workdps(DPS):
                o = [mp.mpf(x) for x in self.logits]
                q = [mp.mpf(x) for x in self.noise]
                s = (
                    [oc - mp.log(qc) for oc, qc in zip(o, q, strict=True)]
                    if self.log_q_correction
                    else o
                )
                w = [mp.exp(x) for x in s]
                mu, s2, k3 = _moments_mp(q, w)
                pi = [qc * wc / mu for qc, wc in zip(q, w, strict=True)]
                p = _softmax_mp(o) if self.data is None else [mp.mpf(x) for x in self.data]
                ep_w = mp.fsum(pc * wc for pc, wc in zip(p, w, strict=True))
                return _DiscreteConst(w, mu, s2, k3, pi, p, q, ep_w)

        return self.cached("const", build)

    def constants(self) -> dict[str, Any]:
        c = self.const()
        with mp.workdps(DPS):
            chi2 = mp.fsum(pi**2 / qc for pi, qc in zip(c.pi, c.q, strict=True)) - 1
            limit = mp.fsum(
                pc * (-mp.log(wc) + mp.log(c.mu)) for pc, wc in zip(c.p, c.w, strict=True) if pc > 0
            )
        return {
            "mu": float(c.mu),
            "cv2_weights": float(c.sigma2 / c.mu**2),
            "chi2_pi_q": float(chi2),
            "limit_mean_over_positive": float(limit),
            "pi": [float(x) for x in c.pi],
        }

    def prepare(self, k: int, device: torch.device) -> dict[str, Any]:
        c = self.const()
        w = [float(x / c.mu) for x in c.w]
        return {
            "noise": DiscreteLaw([float(x) for x in c.q], device),
            "data": DiscreteLaw([float(x) for x in c.p], device),
            "w": torch.tensor(w, dtype=torch.float64, device=device),
            "pi": torch.tensor([float(x) for x in c.pi], dtype=torch.float64, device=device),
            "q": torch.tensor([float(x) for x in c.q], dtype=torch.float64, device=device),
            "p": torch.tensor([float(x) for x in c.p], dtype=torch.float64, device=device),
            "ep_w": float(c.ep_w / c.mu),
        }

    def simulate(
        self, prep: dict[str, Any], k: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w, pi, q, p = prep["w"], prep["pi"], prep["q"], prep["p"]
        y0 = prep["data"].sample((n,), gen)
        counts = self._counts(prep["noise"], n, k, gen)
        nw = counts * w
        s = nw.sum(1)
        w0 = w[y0]
        onehot = F.one_hot(y0, self.n_classes).to(torch.float64)
        z = w0 + s
        loss = torch.log(z / k)
        grad = (onehot * w0.unsqueeze(1) + nw) / z.unsqueeze(1) - pi
        y = torch.cat([loss.unsqueeze(1), grad], dim=1)
        eps = s / k - 1.0
        u = (counts / k - q) * w
        dd = (onehot - p) * w
        e = w0 - prep["ep_w"]
        ctrl = torch.zeros((n, self.n_classes + 1, 4), dtype=torch.float64, device=w.device)
        ctrl[:, :, 0] = eps.unsqueeze(1)
        ctrl[:, 1:, 1] = u
        ctrl[:, 1:, 2] = dd
        ctrl[:, :, 3] = e.unsqueeze(1)
        return y, ctrl

    def predictions(self, k: int) -> list[Prediction]:
        from softnce_theory.derivations.infonce import sampled_softmax_grad_bias

        c = self.const()
        mu, s2, k3 = c.mu, c.sigma2, c.kappa3
        losses = []
        for order in (1, 2):
            tot = sum(
                sym(pc) * delta_log_mean_bias(mu + wc / k, s2, k3, k, order, mu)
                for pc, wc in zip(c.p, c.w, strict=True)
                if pc > 0
            )
            losses.append(num(tot))
        out = [Prediction(losses[0], losses[1])]
        pi_s, q_s = syms(c.pi), syms(c.q)
        for j in range(self.n_classes):
            shift = (c.p[j] * c.w[j] - c.pi[j] * c.ep_w) / (k * mu)
            out.append(Prediction(num(sampled_softmax_grad_bias(pi_s, q_s, k, j) + sym(shift))))
        return out


@register
@dataclass(frozen=True)
class SampledSoftmax(_DiscreteNegatives):
    """Sampled softmax with m = K proposal samples from ``noise`` (importance-weighted Z)."""

    name: ClassVar[str] = "sampled_softmax"
    default_ks: ClassVar[tuple[int, ...]] = (10, 100, 1000, 10000)
    k_meaning: ClassVar[str] = "number of sampled classes m"
    prediction_source: ClassVar[str] = (
        "derivations.infonce.sampled_softmax_loss_bias / delta_method_log_mean (2nd), "
        "sampled_softmax_grad_bias"
    )

    logits: tuple[float, ...] = DEFAULT_LOGITS
    noise: tuple[float, ...] = DEFAULT_NOISE
    sampler: str = "direct"

    def validate(self) -> None:
        self._validate_common()

    def output_names(self) -> tuple[str, ...]:
        return ("loss_bias", *[f"grad_bias[{c}]" for c in range(self.n_classes)])

    def n_controls(self) -> int:
        return 2

    def const(self) -> _DiscreteConst:
        def build() -> _DiscreteConst:
            with mp.workdps(DPS):
                o = [mp.mpf(x) for x in self.logits]
                q = [mp.mpf(x) for x in self.noise]
                w = [mp.exp(oc) / qc for oc, qc in zip(o, q, strict=True)]
                mu, s2, k3 = _moments_mp(q, w)  # mu = Z = sum exp(o)
                p = [qc * wc / mu for qc, wc in zip(q, w, strict=True)]
                return _DiscreteConst(w, mu, s2, k3, p, p, q, mu)

        return self.cached("const", build)

    def constants(self) -> dict[str, Any]:
        c = self.const()
        with mp.workdps(DPS):
            chi2 = mp.fsum(pc**2 / qc for pc, qc in zip(c.p, c.q, strict=True)) - 1
        return {"log_Z": float(mp.log(c.mu)), "chi2_p_q": float(chi2), "p": [float(x) for x in c.p]}

    def prepare(self, k: int, device: torch.device) -> dict[str, Any]:
        c = self.const()
        return {
            "noise": DiscreteLaw([float(x) for x in c.q], device),
            "w": torch.tensor([float(x / c.mu) for x in c.w], dtype=torch.float64, device=device),
            "p": torch.tensor([float(x) for x in c.p], dtype=torch.float64, device=device),
            "q": torch.tensor([float(x) for x in c.q], dtype=torch.float64, device=device),
        }

    def simulate(
        self, prep: dict[str, Any], k: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        w, p, q = prep["w"], prep["p"], prep["q"]
        counts = self._counts(prep["noise"], n, k, gen)
        nw = counts * w
        s = nw.sum(1)
        loss = torch.log(s / k)
        grad = nw / s.unsqueeze(1) - p
        y = torch.cat([loss.unsqueeze(1), grad], dim=1)
        ctrl = torch.zeros((n, self.n_classes + 1, 2), dtype=torch.float64, device=w.device)
        ctrl[:, :, 0] = (s / k - 1.0).unsqueeze(1)
        ctrl[:, 1:, 1] = (counts / k - q) * w
        return y, ctrl

    def predictions(self, k: int) -> list[Prediction]:
        from softnce_theory.derivations.infonce import (
            sampled_softmax_grad_bias,
            sampled_softmax_loss_bias,
        )

        c = self.const()
        p_s, q_s = syms(c.p), syms(c.q)
        out = [
            Prediction(
                num(sampled_softmax_loss_bias(p_s, q_s, k)),
                num(delta_log_mean_bias(c.mu, c.sigma2, c.kappa3, k, 2, c.mu)),
            )
        ]
        for j in range(self.n_classes):
            out.append(Prediction(num(sampled_softmax_grad_bias(p_s, q_s, k, j))))
        return out


@register
@dataclass(frozen=True)
class LogMeanExp(ScenarioConfig):
    """E log of the mean of K lognormal weights W = exp(sigma * a), a ~ N(0, 1)."""

    name: ClassVar[str] = "log_mean_exp"
    default_ks: ClassVar[tuple[int, ...]] = (10, 100, 1000, 10000)
    k_meaning: ClassVar[str] = "number of averaged weights N"
    prediction_source: ClassVar[str] = "derivations.infonce.delta_method_log_mean (orders 1, 2)"

    sigma: float = 1.0

    def validate(self) -> None:
        if not (math.isfinite(self.sigma) and 0 < self.sigma <= 3):
            raise ValueError(f"sigma must be in (0, 3], got {self.sigma!r}")

    def output_names(self) -> tuple[str, ...]:
        return ("loss_bias",)

    def n_controls(self) -> int:
        return 1

    def trial_cost(self, k: int) -> int:
        return k + 3

    def _moments(self) -> tuple[Any, Any, Any]:
        with mp.workdps(DPS):
            s2 = mp.mpf(self.sigma) ** 2
            mu = mp.exp(s2 / 2)
            var = (mp.exp(s2) - 1) * mp.exp(s2)
            k3 = (mp.exp(s2) + 2) * (mp.exp(s2) - 1) ** 2 * mp.exp(3 * s2 / 2)
            return mu, var, k3

    def constants(self) -> dict[str, Any]:
        mu, var, k3 = self._moments()
        return {"log_mu": float(mpmath.log(mu)), "var_w": float(var), "kappa3": float(k3)}

    def prepare(self, k: int, device: torch.device) -> dict[str, Any]:
        return {"device": device}

    def simulate(
        self, prep: dict[str, Any], k: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        a = normal((n, k), gen, prep["device"])
        w = a.mul_(self.sigma).sub_(0.5 * self.sigma**2).exp_()  # mean 1, in place
        zbar = w.sum(1) / k
        y = torch.log(zbar).unsqueeze(1)
        c = (zbar - 1.0).reshape(n, 1, 1)
        return y, c

    def predictions(self, k: int) -> list[Prediction]:
        mu, var, k3 = self._moments()
        return [
            Prediction(
                num(delta_log_mean_bias(mu, var, k3, k, 1, mu)),
                num(delta_log_mean_bias(mu, var, k3, k, 2, mu)),
            )
        ]

    def extras(self, k: int, value: np.ndarray, se: np.ndarray) -> dict[str, float]:
        return {"E_log_mean": float(value[0]) + self.sigma**2 / 2}
