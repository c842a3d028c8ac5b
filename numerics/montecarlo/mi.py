r"""InfoNCE as a mutual-information estimator with the optimal critic: the finite-K gap.

With :math:`K` pairs :math:`(x_i,y_i)` from the joint and the optimal critic
:math:`f^*=\log r`, :math:`r(x,y)=p(y|x)/p(y)`, the per-anchor InfoNCE estimate is
:math:`\log r(x_1,y_1)-\log\frac1K\sum_{j=1}^Kr(x_1,y_j)` (van den Oord et al. 2018; Poole et al.
2019), where :math:`y_2..y_K` are independent of :math:`x_1` (marginally :math:`p(y)`). Hence

.. math::
    I_{\rm NCE}(K)\le\log K,\qquad
    I-I_{\rm NCE}(K)=E\log Z_K,\ Z_K=\tfrac1K\sum_{j=1}^Kr(x_1,y_j)
    =\frac{\chi^2(P_{XY}\|P_XP_Y)}{2K}+O(K^{-2})\quad(\text{notes }\S6.4).

Here **K is the batch size** (candidates per anchor, positive included); :math:`K=1` gives
:math:`I_{\rm NCE}=0` exactly. Per trial the engine records
:math:`I-\big(\log r(x_1,y_1)-\log Z_K\big)`, whose mean is the gap.

Control variates (mean exactly 0): :math:`\log r(x_1,y_1)-I`;
:math:`\big(\sum_{j\ge2}r(x_1,y_j)-(K-1)\big)/K` (since :math:`E_{p(y)}r(x,y)=1`); and
:math:`\big(r(x_1,y_1)-m_2(x_1)\big)/K` with :math:`m_2(x)=E_{p(y|x)}r(x,y)=E_{p(y)}r(x,y)^2`.

* ``mi_discrete``: a finite joint table. Predictions: first order
  ``derivations.infonce.optimal_critic_gap(chi2, K)`` with ``chi2_divergence``; second order:
  conditionally on :math:`(x_1,y_1)`, :math:`Z_K=\frac{K-1}K\big(\bar r_{K-1}+r_{11}/(K-1)\big)`
  and ``delta_method_log_mean`` (order 2) applied to the mean :math:`\bar r_{K-1}` of the
  :math:`K-1` negatives (:math:`\mu=1`, :math:`\sigma^2_x=m_2(x)-1`,
  :math:`\kappa_{3,x}=E_{p(y)}(r-1)^3`), averaged exactly over :math:`(x_1,y_1)`.
* ``mi_gaussian``: ``dim`` independent pairs of standard normals with correlation ``rho``:
  :math:`I=-\frac d2\log(1-\rho^2)`, :math:`1+\chi^2=(1-\rho^2)^{-d}` (Mehler's expansion),
  :math:`m_2(x)=(1-\rho^4)^{-d/2}\exp\big(\frac{\rho^2}{1+\rho^2}\|x\|^2\big)`. Prediction: first
  order only. With :math:`I>\log K` the log K ceiling dominates and the expansion is useless
  (it needs :math:`K\gg\chi^2\ge e^I-1`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from mpmath import mp

from softnce_theory.numerics.montecarlo._base import Prediction, ScenarioConfig, register
from softnce_theory.numerics.montecarlo._predict import DPS, delta_log_mean_bias, num, sym, syms
from softnce_theory.numerics.montecarlo._sampling import DiscreteLaw, f64, normal


def _default_joint() -> tuple[tuple[float, ...], ...]:
    x = np.arange(6)
    p = np.exp(1.5 * np.cos(2 * np.pi * (x[:, None] - x[None, :]) / 6))
    p = p * (1 + 0.15 * x[:, None]) * (1 + 0.1 * np.sqrt(x[None, :]))
    p = p / p.sum()
    return tuple(tuple(float(v) for v in row) for row in p)


#: 6x6 joint with I ~ 0.391 nats and chi^2 ~ 0.807 (close to the example of notes §6.4)
DEFAULT_JOINT = _default_joint()


class _MIBase(ScenarioConfig):
    quantity: ClassVar[str] = "bias"
    k_meaning: ClassVar[str] = "batch size K (candidates per anchor, positive included)"
    default_ks: ClassVar[tuple[int, ...]] = (1, 2, 8, 32, 128, 1024)

    def output_names(self) -> tuple[str, ...]:
        return ("mi_gap",)

    def n_controls(self) -> int:
        return 3

    def mi(self) -> float:
        raise NotImplementedError

    def extras(self, k: int, value: np.ndarray, se: np.ndarray) -> dict[str, float]:
        i = self.mi()
        return {
            "mi": i,
            "log_k": math.log(k),
            "i_nce": i - float(value[0]),
            "i_nce_se": float(se[0]),
            "ceiling_min_mi_logk": min(i, math.log(k)),
        }

    @staticmethod
    def _finish(
        log_r1: torch.Tensor, r1: torch.Tensor, s: torch.Tensor, m2: torch.Tensor, k: int, mi: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = log_r1.shape[0]
        if k == 1:  # I_NCE(1) = 0 exactly; avoid exp/log round-off
            y = torch.full((n, 1), mi, dtype=torch.float64, device=log_r1.device)
        else:
            y = (mi - (log_r1 - torch.log((r1 + s) / k))).unsqueeze(1)
        c = torch.stack([log_r1 - mi, (s - (k - 1)) / k, (r1 - m2) / k], dim=1).reshape(n, 1, 3)
        return y, c


@register
@dataclass(frozen=True)
class MIDiscrete(_MIBase):
    """InfoNCE with the optimal critic on a finite joint table ``joint[x][y]``."""

    name: ClassVar[str] = "mi_discrete"
    prediction_source: ClassVar[str] = (
        "derivations.infonce.optimal_critic_gap + chi2_divergence (1st); "
        "delta_method_log_mean conditional on (x1, y1) (2nd)"
    )

    joint: tuple[tuple[float, ...], ...] = DEFAULT_JOINT
    sampler: str = "direct"

    def validate(self) -> None:
        p = np.asarray(self.joint, dtype=np.float64)
        if p.ndim != 2 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0):
            raise ValueError("joint must be a 2-D table of finite probabilities >= 0")
        if abs(p.sum() - 1) > 1e-9:
            raise ValueError(f"joint must sum to 1, got {p.sum()!r}")
        if np.any(p.sum(1) <= 0) or np.any(p.sum(0) <= 0):
            raise ValueError("joint must have no all-zero row or column")
        if self.sampler not in ("direct", "counts"):
            raise ValueError(f"sampler must be 'direct' or 'counts', got {self.sampler!r}")

    def trial_cost(self, k: int) -> int:
        cy = len(self.joint[0])
        return 4 * cy + (k if self.sampler == "direct" else 2 * cy)

    def const(self) -> dict[str, Any]:
        def build() -> dict[str, Any]:
            with mp.workdps(DPS):
                p = [[mp.mpf(v) for v in row] for row in self.joint]
                tot = mp.fsum(v for row in p for v in row)
                p = [[v / tot for v in row] for row in p]
                px = [mp.fsum(row) for row in p]
                py = [mp.fsum(col) for col in zip(*p, strict=True)]
                r = [[p[i][j] / (px[i] * py[j]) for j in range(len(py))] for i in range(len(px))]
                mi = mp.fsum(
                    p[i][j] * mp.log(r[i][j])
                    for i in range(len(px))
                    for j in range(len(py))
                    if p[i][j] > 0
                )
                m2 = [
                    mp.fsum(p[i][j] / px[i] * r[i][j] for j in range(len(py)))
                    for i in range(len(px))
                ]
                k3 = [
                    mp.fsum(py[j] * (r[i][j] - 1) ** 3 for j in range(len(py)))
                    for i in range(len(px))
                ]
                return {"p": p, "px": px, "py": py, "r": r, "mi": mi, "m2": m2, "k3": k3}

        return self.cached("const", build)

    def mi(self) -> float:
        return float(self.const()["mi"])

    def chi2(self) -> float:
        from softnce_theory.derivations.infonce import chi2_divergence

        c = self.const()
        flat_p = [v for row in c["p"] for v in row]
        flat_q = [a * b for a in c["px"] for b in c["py"]]
        return num(chi2_divergence(syms(flat_p), syms(flat_q)))

    def constants(self) -> dict[str, Any]:
        return {"mi": self.mi(), "chi2": self.chi2()}

    def prepare(self, k: int, device: torch.device) -> dict[str, Any]:
        c = self.const()
        cond = np.array([[float(v / c["px"][i]) for v in row] for i, row in enumerate(c["p"])])
        cdf = np.cumsum(cond, axis=1)
        cdf[:, -1] = 1.0
        r = np.array([[float(v) for v in row] for row in c["r"]])
        with np.errstate(divide="ignore"):
            log_r = np.where(r > 0, np.log(np.where(r > 0, r, 1.0)), -np.inf)
        return {
            "x": DiscreteLaw([float(v) for v in c["px"]], device),
            "y": DiscreteLaw([float(v) for v in c["py"]], device),
            "cdf": f64(cdf, device),
            "r": f64(r, device),
            "log_r": f64(log_r, device),
            "m2": f64([float(v) for v in c["m2"]], device),
            "mi": float(c["mi"]),
        }

    def simulate(
        self, prep: dict[str, Any], k: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        xlaw: DiscreteLaw = prep["x"]
        ylaw: DiscreteLaw = prep["y"]
        x1 = xlaw.sample((n,), gen)
        u = torch.rand((n,), generator=gen, dtype=torch.float64, device=x1.device)
        cdf_rows = prep["cdf"][x1]
        y1 = (cdf_rows <= u.unsqueeze(1)).sum(1).clamp_(max=ylaw.size - 1)
        if self.sampler == "counts":
            counts = ylaw.counts(n, k - 1, gen)
        else:
            counts = ylaw.counts_from_indices(ylaw.sample((n, k - 1), gen))
        r_rows = prep["r"][x1]
        s = (counts * r_rows).sum(1)
        r1 = r_rows.gather(1, y1.unsqueeze(1)).squeeze(1)
        log_r1 = prep["log_r"][x1, y1]
        return self._finish(log_r1, r1, s, prep["m2"][x1], k, prep["mi"])

    def predictions(self, k: int) -> list[Prediction]:
        from softnce_theory.derivations.infonce import optimal_critic_gap

        c = self.const()
        first = num(optimal_critic_gap(sym(self.chi2()), k))
        if k == 1:
            return [Prediction(first, float(c["mi"]))]
        total = sp_log_ratio(k)
        for i, row in enumerate(c["p"]):
            s2 = c["m2"][i] - 1
            for j, pij in enumerate(row):
                if pij == 0:
                    continue
                mu = 1 + c["r"][i][j] / (k - 1)
                total += sym(pij) * delta_log_mean_bias(mu, s2, c["k3"][i], k - 1, 2, 1)
        return [Prediction(first, num(total))]


def sp_log_ratio(k: int) -> Any:
    import sympy as sp

    return sp.log(sp.Rational(k - 1, k))


@register
@dataclass(frozen=True)
class MIGaussian(_MIBase):
    """InfoNCE with the optimal critic on ``dim`` pairs of rho-correlated standard normals."""

    name: ClassVar[str] = "mi_gaussian"
    prediction_source: ClassVar[str] = "derivations.infonce.optimal_critic_gap (1st order)"

    rho: float = 0.5
    dim: int = 1

    def validate(self) -> None:
        if not (math.isfinite(self.rho) and 0 <= abs(self.rho) < 1):
            raise ValueError(f"rho must be in (-1, 1), got {self.rho!r}")
        if int(self.dim) != self.dim or self.dim < 1:
            raise ValueError(f"dim must be an integer >= 1, got {self.dim!r}")

    def trial_cost(self, k: int) -> int:
        return 4 * k * self.dim + 8 * self.dim

    def mi(self) -> float:
        return -0.5 * self.dim * math.log1p(-(self.rho**2))

    def chi2(self) -> float:
        with mp.workdps(DPS):
            return float((1 - mp.mpf(self.rho) ** 2) ** (-self.dim) - 1)

    def constants(self) -> dict[str, Any]:
        return {"mi": self.mi(), "chi2": self.chi2()}

    def prepare(self, k: int, device: torch.device) -> dict[str, Any]:
        return {"device": device}

    def _log_r(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rho = self.rho
        s2 = 1.0 - rho * rho
        c0 = -0.5 * math.log1p(-rho * rho)
        return (c0 - (y - rho * x) ** 2 / (2 * s2) + 0.5 * y * y).sum(-1)

    def simulate(
        self, prep: dict[str, Any], k: int, n: int, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        dev, d, rho = prep["device"], self.dim, self.rho
        x = normal((n, d), gen, dev)
        y1 = rho * x + math.sqrt(1 - rho * rho) * normal((n, d), gen, dev)
        yneg = normal((n, k - 1, d), gen, dev)
        log_r1 = self._log_r(x, y1)
        s = torch.exp(self._log_r(x.unsqueeze(1), yneg)).sum(1)
        r1 = torch.exp(log_r1)
        m2 = torch.exp((x * x).sum(1) * (rho * rho / (1 + rho * rho))) * (1 - rho**4) ** (-d / 2)
        return self._finish(log_r1, r1, s, m2, k, self.mi())

    def predictions(self, k: int) -> list[Prediction]:
        from softnce_theory.derivations.infonce import optimal_critic_gap

        return [Prediction(num(optimal_critic_gap(sym(self.chi2()), k)))]
