r"""Soft-target InfoNCE (Hugger & Uhlmann 2024) with random soft targets: finite-K bias.

Setting (research notes ``soft_target_infonce.md`` §1.2, §1.5): one input with logits
:math:`f\in\mathbb R^C`, temperature :math:`t`, corrected logits :math:`g=f/t-\log q` (or
:math:`f/t` without the correction). Candidates are soft targets
:math:`\alpha_0,\dots,\alpha_K\overset{iid}\sim P_\alpha` -- the positive :math:`\alpha_0` and
:math:`K` negatives (here the positive is drawn from the same law, as for in-batch targets of
exchangeable samples) -- with scores :math:`S_j=\langle\alpha_j,g\rangle`,
:math:`W_j=e^{S_j}`. Then

.. math::
    L_K=-S_0+\log\sum_{j=0}^K W_j,\qquad
    L_K-\log K\to L_\infty=-\langle\alpha_0,g\rangle+\log M(g),\quad M(g)=E_\alpha e^{\langle\alpha,g\rangle}
    \quad(\S 1.5),

so per trial the engine records :math:`\log\big(\frac1K\sum_{j=0}^KW_j\big)-\log M(g)` and the
logit-gradient bias :math:`\frac1t\big(\sum_jW_j\alpha_{jc}/\sum_jW_j-\partial_c\log M(g)\big)`
(the :math:`-\alpha_{0c}/t` terms cancel).

Target laws :math:`P_\alpha` (``targets``), both followed by label smoothing
:math:`\alpha=(1-\varepsilon)\alpha'+\varepsilon/C`:

* ``"mixup"``: :math:`\alpha'=\lambda e_a+(1-\lambda)e_b`, :math:`a,b\overset{iid}\sim q`,
  :math:`\lambda\sim\mathrm{Beta}(\beta,\beta)` (``mixup_alpha``). Exact MGF with Kummer's function:
  :math:`E e^{\langle\alpha',h\rangle}=\sum_{a,b}q_aq_be^{h_b}\,{}_1F_1(\beta;2\beta;h_a-h_b)` and
  :math:`E[\lambda e^{\lambda z}]=\tfrac12\,{}_1F_1(\beta+1;2\beta+1;z)`.
* ``"dirichlet"``: :math:`\alpha'\sim\mathrm{Dir}(\beta_1..\beta_C)` (``concentration``). Exact
  MGF by the series :math:`E e^{\langle\alpha',h\rangle}=e^{\min h}\sum_n c_n/(\beta_0)_n` where
  :math:`\sum_n c_nt^n=\prod_c(1-t\,h'_c)^{-\beta_c}`, :math:`h'=h-\min h\ge0` (from the Dirichlet
  moment formula :math:`E\prod\alpha_c^{n_c}=\prod(\beta_c)_{n_c}/(\beta_0)_n`), with
  :math:`nc_n=\sum_{j\le n}P_jc_{n-j}`, :math:`P_j=\sum_c\beta_ch_c'^j`; all terms are positive
  (no cancellation). :math:`E[\alpha'_ce^{\langle\alpha',h\rangle}]=\frac{\beta_c}{\beta_0}
  E_{\mathrm{Dir}(\beta+e_c)}e^{\langle\alpha',h\rangle}`.

So :math:`M(g)`, :math:`\nabla\log M(g)` and the moments :math:`E W^j=M(jg)`,
:math:`E[\alpha_cW^j]=(\partial_cM)(jg)` are computed **exactly** at 50 digits with mpmath -- no
large auxiliary sample is needed.

Predictions. Loss (``derivations.infonce.delta_method_log_mean``, orders 1 and 2; the K+1
candidates are i.i.d.): :math:`E\log\frac1K\sum_0^KW_j-\log\mu=\log\frac{K+1}K+
\mathrm{delta}(\mu,\sigma^2,\kappa_3,K+1)-\log\mu`. Gradient (first-order self-normalised
importance sampling, this module): :math:`\frac1{t(K+1)}\big(a_c\,EW^2/\mu^3-E[\alpha_cW^2]/\mu^2\big)`
with :math:`a_c=E[\alpha_cW]`. Control variates: :math:`\sum_jW_j/((K+1)\mu)-1` and
:math:`\sum_jW_j\alpha_{jc}/((K+1)\mu)-a_c/\mu` (mean exactly 0).

Reported constants include the §1.5 comparison: the large-K limit for the mean target
:math:`-\langle E\alpha,g\rangle+\log M(g)` versus soft-target CE plus the constant
:math:`\langle E\alpha,\log q\rangle`; by Jensen the former is smaller (equal only for one-hot
targets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

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
from softnce_theory.numerics.montecarlo._predict import DPS, delta_log_mean_bias, num, sym
from softnce_theory.numerics.montecarlo._sampling import DiscreteLaw, class_sums, f64, gamma
from softnce_theory.numerics.montecarlo.nce import DEFAULT_LOGITS, DEFAULT_NOISE

TARGETS = ("mixup", "dirichlet")


# ------------------------------------------------------------------------------------------------
# exact moment generating functions (mpmath)
# ------------------------------------------------------------------------------------------------
def mixup_mgf(h: list[Any], q: list[Any], beta: Any) -> tuple[Any, list[Any]]:
    r""":math:`E e^{\langle\alpha',h\rangle}` and :math:`E[\alpha'_c e^{\langle\alpha',h\rangle}]`
    for :math:`\alpha'=\lambda e_a+(1-\lambda)e_b`, :math:`a,b\sim q`, :math:`\lambda\sim
    \mathrm{Beta}(\beta,\beta)`."""
    c = len(h)
    m = mp.zero
    grad = [mp.zero] * c
    for a in range(c):
        if q[a] == 0:
            continue
        for b in range(c):
            if q[b] == 0:
                continue
            z = h[a] - h[b]
            f0 = mp.hyp1f1(beta, 2 * beta, z)
            f1 = mp.hyp1f1(beta + 1, 2 * beta + 1, z) / 2  # E[lambda e^{lambda z}]
            wgt = q[a] * q[b] * mp.exp(h[b])
            m += wgt * f0
            grad[a] += wgt * f1
            grad[b] += wgt * (f0 - f1)
    return m, grad


def dirichlet_mgf(h: list[Any], beta: list[Any]) -> tuple[Any, list[Any]]:
    r""":math:`E e^{\langle\alpha',h\rangle}` and :math:`E[\alpha'_c e^{\langle\alpha',h\rangle}]`
    for :math:`\alpha'\sim\mathrm{Dir}(\beta)`, by the positive power series (module docstring)."""
    hmin = min(h)
    x = [hc - hmin for hc in h]
    b0 = mp.fsum(beta)
    xmax = max(x)
    eps = mp.mpf(10) ** (-mp.dps - 5)
    coeffs = [mp.one]
    powers = list(beta)  # beta_c * x_c^j, updated in place
    psums: list[Any] = []
    total = mp.one
    poch = mp.one  # (b0)_n
    n = 0
    while True:
        n += 1
        powers = [pw * xc for pw, xc in zip(powers, x, strict=True)]
        psums.append(mp.fsum(powers))
        cn = mp.fsum(psums[j - 1] * coeffs[n - j] for j in range(1, n + 1)) / n
        coeffs.append(cn)
        poch *= b0 + n - 1
        term = cn / poch
        total += term
        if n > xmax + 10 and term < eps * total:
            break
        if n > 20000:  # pragma: no cover - guards against a runaway series
            raise ArithmeticError("Dirichlet MGF series did not converge")
    scale = mp.exp(hmin)
    grad = []
    for bc, xc in zip(beta, x, strict=True):
        d = mp.zero
        acc = mp.zero
        poch1 = mp.one  # (b0 + 1)_n
        for i, cn in enumerate(coeffs):
            d = cn + xc * d
            if i > 0:
                poch1 *= b0 + i
            acc += d / poch1
        grad.append(bc / b0 * scale * acc)
    return scale * total, grad


@dataclass(frozen=True)
class _SoftConst:
    g: list[Any]
    mu: Any  # M(g)
    grad: list[Any]  # E[alpha_c W]
    ew2: Any
    ew3: Any
    grad2: list[Any]  # E[alpha_c W^2]
    mean_alpha: list[Any]


@register
@dataclass(frozen=True)
class SoftTarget(ScenarioConfig):
    """Soft-target InfoNCE with K negatives drawn from a soft-target law (mixup or Dirichlet)."""

    name: ClassVar[str] = "soft_target"
    default_ks: ClassVar[tuple[int, ...]] = (1, 10, 100, 1000)
    prediction_source: ClassVar[str] = (
        "loss: derivations.infonce.delta_method_log_mean over the K+1 i.i.d. candidates; "
        "gradient: first-order SNIS with exact soft-target moments (this module)"
    )

    logits: tuple[float, ...] = DEFAULT_LOGITS
    noise: tuple[float, ...] = DEFAULT_NOISE
    temperature: float = 1.0
    targets: str = "mixup"
    mixup_alpha: float = 0.8
    smoothing: float = 0.1
    concentration: tuple[float, ...] | None = None
    log_q_correction: bool = True

    @property
    def n_classes(self) -> int:
        return len(self.logits)

    def validate(self) -> None:
        o = check_finite_vector("logits", self.logits)
        q = check_distribution("noise", self.noise, o.size, "logits")
        if self.log_q_correction and np.any(q <= 0):
            raise ValueError("noise must be > 0 for every class when log_q_correction is on")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        if self.targets not in TARGETS:
            raise ValueError(f"targets must be one of {TARGETS}, got {self.targets!r}")
        if not (math.isfinite(self.mixup_alpha) and self.mixup_alpha > 0):
            raise ValueError(f"mixup_alpha must be > 0, got {self.mixup_alpha!r}")
        if not (0 <= self.smoothing < 1):
            raise ValueError(f"smoothing must be in [0, 1), got {self.smoothing!r}")
        if self.concentration is not None:
            b = check_finite_vector("concentration", self.concentration)
            if b.size != o.size or np.any(b < 0.1):
                raise ValueError(f"concentration must have length {o.size} and entries >= 0.1")

    def output_names(self) -> tuple[str, ...]:
        return ("loss_bias", *[f"grad_bias[{c}]" for c in range(self.n_classes)])

    def n_controls(self) -> int:
        return 2

    def trial_cost(self, k: int) -> int:
        per_candidate = 8 if self.targets == "mixup" else 3 * self.n_classes
        return per_candidate * (k + 1) + 4 * self.n_classes

    # -- exact constants --------------------------------------------------------------------
    def _beta(self) -> list[Any]:
        b = self.concentration if self.concentration is not None else (1.0,) * self.n_classes
        return [mp.mpf(x) for x in b]

    def _mgf(self, g: list[Any]) -> tuple[Any, list[Any]]:
        """M(g) and E[alpha_c e^{<alpha, g>}] including smoothing."""
        c = self.n_classes
        eps = mp.mpf(self.smoothing)
        h = [(1 - eps) * x for x in g]
        if self.targets == "mixup":
            m0, g0 = mixup_mgf(h, [mp.mpf(x) for x in self.noise], mp.mpf(self.mixup_alpha))
        else:
            m0, g0 = dirichlet_mgf(h, self._beta())
        shift = mp.exp(eps * mp.fsum(g) / c)
        m = shift * m0
        grad = [(1 - eps) * shift * gc + eps / c * m for gc in g0]
        return m, grad

    def const(self) -> _SoftConst:
        def build() -> _SoftConst:
            with mp.workdps(DPS):
                t = mp.mpf(self.temperature)
                g = [mp.mpf(x) / t for x in self.logits]
                if self.log_q_correction:
                    g = [gc - mp.log(mp.mpf(qc)) for gc, qc in zip(g, self.noise, strict=True)]
                mu, grad = self._mgf(g)
                ew2, grad2x = self._mgf([2 * x for x in g])
                ew3, _ = self._mgf([3 * x for x in g])
                mean_alpha, _ = self._mgf_mean()
                return _SoftConst(g, mu, grad, ew2, ew3, grad2x, mean_alpha)

        return self.cached("const", build)

    def _mgf_mean(self) -> tuple[list[Any], Any]:
        _, e_alpha = self._mgf([mp.zero] * self.n_classes)  # E[alpha] = grad of M at 0
        return e_alpha, None

    def constants(self) -> dict[str, Any]:
        c = self.const()
        with mp.workdps(DPS):
            t = mp.mpf(self.temperature)
            ft = [mp.mpf(x) / t for x in self.logits]
            lse = mp.log(mp.fsum(mp.exp(x) for x in ft))
            ea = c.mean_alpha
            logq = [mp.log(mp.mpf(x)) if x > 0 else mp.zero for x in self.noise]
            limit = -mp.fsum(a * x for a, x in zip(ea, c.g, strict=True)) + mp.log(c.mu)
            const_q = (
                mp.fsum(a * lq for a, lq in zip(ea, logq, strict=True))
                if self.log_q_correction
                else 0
            )
            soft_ce = -mp.fsum(a * x for a, x in zip(ea, ft, strict=True)) + lse
            jensen = mp.log(mp.fsum(a * mp.exp(x) for a, x in zip(ea, c.g, strict=True)))
        return {
            "log_M": float(mp.log(c.mu)),
            "limit_mean_target": float(limit),
            "soft_ce_mean_target_plus_const": float(soft_ce + const_q),
            "jensen_bound_log_sum_Ealpha_exp_g": float(jensen),
            "cv2_weights": float(c.ew2 / c.mu**2 - 1),
            "grad_limit": [float(x / c.mu / mp.mpf(self.temperature)) for x in c.grad],
            "mean_target": [float(x) for x in c.mean_alpha],
            "limit_method": "exact MGF (mpmath, 50 digits): "
            + ("Kummer 1F1" if self.targets == "mixup" else "Dirichlet power series"),
        }

    # -- simulation -------------------------------------------------------------------------
    def prepare(self, k: int, device: torch.device) -> dict[str, Any]:
        c = self.const()
        return {
            "g": f64([float(x) for x in c.g], device),
            "log_mu": float(mp.log(c.mu)),
            "a": f64([float(x / c.mu) for x in c.grad], device),
            "noise": DiscreteLaw(list(self.noise), device) if self.targets == "mixup" else None,
            "beta": f64([float(x) for x in self._beta()], device),
            "g_mean": float(mp.fsum(c.g) / self.n_classes),
            "device": device,
        }

    def sample_targets(
        self, prep: dict[str, Any], n: int, j: int, gen: torch.Generator
    ) -> torch.Tensor:
        """Dense ``(n, j, C)`` soft targets from the configured law (smoothing applied)."""
        c = self.n_classes
        if self.targets == "mixup":
            a, b, lam = self._mixup_parts(prep, n, j, gen)
            alpha = F.one_hot(a, c).to(torch.float64) * lam.unsqueeze(-1)
            alpha = alpha + F.one_hot(b, c).to(torch.float64) * (1 - lam).unsqueeze(-1)
        else:
            gam = gamma(prep["beta"], (n, j, c), gen, prep["device"])
            alpha = gam / gam.sum(-1, keepdim=True)
        if self.smoothing > 0:
            alpha = alpha * (1 - self.smoothing) + self.smoothing / c
        return alpha

    def _mixup_parts(
        self, prep: dict[str, Any], n: int, j: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        law: DiscreteLaw = prep["noise"]
        a = law.sample((n, j), gen)
        b = law.sample((n, j), gen)
        gam = gamma(float(self.mixup_alpha), (2, n, j), gen, prep["device"])
        lam = gam[0] / (gam[0] + gam[1])
        return a, b, lam

    def simulate(
        self, prep: dict[str, Any], k: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        c, eps, g = self.n_classes, self.smoothing, prep["g"]
        if self.targets == "mixup":
            # candidate 0 is the positive; no dense (n, K+1, C) tensor is needed
            a, b, lam = self._mixup_parts(prep, n, k + 1, gen)
            s = (1 - eps) * (lam * g[a] + (1 - lam) * g[b]) + eps * prep["g_mean"]
            w = torch.exp(s - prep["log_mu"])  # mean 1
            sw = w.sum(1)
            wl = w * lam
            wa = (class_sums(a, wl, c) + class_sums(b, w - wl, c)) * (1 - eps)
            wa = wa + (eps / c) * sw.unsqueeze(1)
        else:
            alpha = self.sample_targets(prep, n, k + 1, gen)
            s = (alpha * g).sum(-1)
            w = torch.exp(s - prep["log_mu"])
            sw = w.sum(1)
            wa = (w.unsqueeze(-1) * alpha).sum(1)  # (n, C)
        loss = torch.log(sw / k)
        grad = (wa / sw.unsqueeze(1) - prep["a"]) / self.temperature
        y = torch.cat([loss.unsqueeze(1), grad], dim=1)
        ctrl = torch.zeros((n, c + 1, 2), dtype=torch.float64, device=s.device)
        ctrl[:, :, 0] = (sw / (k + 1) - 1.0).unsqueeze(1)
        ctrl[:, 1:, 1] = wa / (k + 1) - prep["a"]
        return y, ctrl

    def predictions(self, k: int) -> list[Prediction]:
        import sympy as sp

        c = self.const()
        mu = c.mu
        with mp.workdps(DPS):
            var = c.ew2 - mu**2
            k3 = c.ew3 - 3 * mu * c.ew2 + 2 * mu**3
        shift = sp.log(sp.Rational(k + 1, k))
        loss = [num(delta_log_mean_bias(mu, var, k3, k + 1, o, mu) + shift) for o in (1, 2)]
        out = [Prediction(loss[0], loss[1])]
        with mp.workdps(DPS):
            t = mp.mpf(self.temperature)
            for j in range(self.n_classes):
                # E[alpha_c W^2] = grad of M at 2g (already E[alpha_c e^{<alpha,2g>}])
                b = (c.grad[j] * c.ew2 / mu**3 - c.grad2[j] / mu**2) / (k + 1) / t
                out.append(Prediction(num(sym(b))))
        return out
