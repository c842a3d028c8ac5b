r"""Debiased contrastive loss (Chuang et al. 2020), declared through the public extension API.

Source: C.-Y. Chuang, J. Robinson, L. Yen-Chen, A. Torralba, S. Jegelka, *Debiased Contrastive
Learning*, NeurIPS 2020 (arXiv 2007.00224), §3, and the authors' code (``chingyaoc/DCL``,
``main.py``). Equation numbers follow the arXiv version as recalled here (reconstructed: the paper
text was not available to re-check the numbering; the formulas were checked against the
authors' code).

The loss
--------
An anchor has one positive with cosine similarity :math:`y_0` and :math:`N` negatives
:math:`y_1..y_N`, all in :math:`[-1, 1]`; scores are :math:`s_k = y_k/t`. The negatives are drawn
from the data marginal :math:`p = \tau^+ p^+ + (1-\tau^+) p^-` (eq. 3), so some are in fact
positives; with class prior :math:`\tau^+` the debiased negative term is (eq. 6, Alg. 1)

.. math::
    g = \max\Big(\frac{1}{1-\tau^+}\Big(\frac1N\sum_{i=1}^N e^{s_i} - \tau^+ e^{s_0}\Big),\;
    e^{-1/t}\Big),\qquad
    \ell = -\log\frac{e^{s_0}}{e^{s_0} + N g}.

The clip :math:`e^{-1/t}` is the smallest value :math:`e^{s}` takes for a cosine similarity
(the paper's "theoretical minimum"). At :math:`\tau^+ = 0` the clip never binds on the domain and
:math:`\ell` is InfoNCE with :math:`N` negatives.

Computation (log space)
-----------------------
With :math:`r = \log\frac1N\sum_i e^{s_i} - s_0` (a ``logsumexp``) and
:math:`G = g\,e^{-s_0} = \max(U, C)`, :math:`U = (e^r - \tau^+)/(1-\tau^+)
= 1 + \mathrm{expm1}(r)/(1-\tau^+)`, :math:`C = e^{-(1 + y_0)/t} \le 1`, the loss is
:math:`\ell = \log(1 + N G)`:

* :math:`r \ge 0`: :math:`U \ge 1 \ge C`, the clip is inactive, and
  :math:`1 + NU = \frac{(1 + Ne^r)(1-\tau^+) + N\tau^+(e^r - 1)}{1-\tau^+}` gives
  :math:`\ell = \mathrm{softplus}(\log N + r) + \log\big(1 + \frac{\tau^+}{1-\tau^+}
  \frac{N(1 - e^{-r})}{e^{-r} + N}\big)` (``logaddexp``, ``expm1``, ``log1p``: only
  :math:`e^{-r} \le 1` is formed, nothing cancels);
* :math:`r < 0`: :math:`e^r < 1` cannot overflow and :math:`\ell = \log(1 + N\max(U, C))`
  (``log1p``; the max with the clip taken on :math:`G`, a bounded quantity).

Written with ``expm1(r)``, :math:`\partial\ell/\partial\tau^+` (proportional to
:math:`e^r - 1`) keeps its relative precision near :math:`r = 0`, where
:math:`\frac1N\sum_i e^{s_i} \approx e^{s_0}`. The one cancellation left is inherent:
:math:`U \to 0` when the mean of the negatives approaches :math:`\tau^+ e^{s_0}` (just above
the clip), where the loss is ill-conditioned in its inputs.

Both branches are finite everywhere (each is evaluated on a clamped :math:`r`), so no NaN
reaches the gradient; :math:`\tau^+` enters linearly in :math:`U`, so its gradient is finite at
:math:`\tau^+ = 0`. Half-precision inputs are computed in float32 and the result cast back.

Also here: the per-row :class:`~softnce_theory.registry.LossSpec` (rows of cosine similarities,
parameters ``t`` and ``tau_plus``), an mpmath oracle written in the authors' arrangement, the
two-view batch loss :func:`debiased_contrastive_loss`, a Monte Carlo scenario
(``debiased_bias``) and four claims. Heavy modules (torch, sympy, mpmath, the Monte Carlo
engine) are imported only when a part is used: registering the family costs no import.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from softnce_theory.derivations import CheckConfig, Claim, Definition, LegRegistry, LegResult, Tally
from softnce_theory.domain import Array, Domain, Interval, Param
from softnce_theory.registry import Family, LossSpec

if TYPE_CHECKING:
    import torch

NAME = "debiased"
_MOD = "softnce_theory.contrib.debiased"
SOURCE = (
    "Chuang et al. 2020, Debiased Contrastive Learning (NeurIPS; arXiv 2007.00224) §3, eq. (3), "
    "(6) and Algorithm 1; authors' code chingyaoc/DCL main.py"
)
DPS = 50

# ----------------------------------------------------------------------------------- domains

#: cosine similarities: the clip e^{-1/t} is their theoretical minimum
COSINE = Interval(-1.0, 1.0, low_closed=True, high_closed=True)
T_PARAM = Param(
    "t", Interval(0.0, math.inf), typical=(0.05, 2.0), extremes=(1e-3, 1e3), doc="temperature > 0"
)
TAU_PARAM = Param(
    "tau_plus",
    Interval(0.0, 1.0, low_closed=True),
    typical=(0.0, 0.5),
    extremes=(0.0, 0.99),
    doc="class prior tau+ in [0, 1)",
)

#: the per-row contract: x[:, 0] the positive's cosine similarity, x[:, 1:] the N negatives'
ROWS_DOMAIN = Domain(
    arrays=(
        Array(
            "x",
            ("B", "K"),
            interval=COSINE,
            typical=(-1.0, 1.0),
            min_sizes={"K": 2},
            doc="cosine similarities; column 0 the positive, columns 1..N the negatives",
        ),
    ),
    params=(T_PARAM, TAU_PARAM),
    edges={
        "clip": "g is clipped at e^{-1/t} (its minimum for cosine similarities), so the "
        "loss is finite even when tau_plus e^{s+} exceeds the negatives' mean",
        "tau_plus -> 1": "the 1/(1 - tau_plus) factor grows without bound; 1 is excluded",
    },
)

#: the batch loss: two views of B samples, temperature and class prior
BATCH_DOMAIN = Domain(
    arrays=(
        Array("z1", ("B", "D"), min_sizes={"B": 2}, doc="embeddings of the first view"),
        Array("z2", ("B", "D"), min_sizes={"B": 2}, doc="embeddings of the second view"),
    ),
    params=(
        Param("temperature", Interval(0.0, math.inf), typical=(0.05, 2.0), extremes=(1e-3, 1e3)),
        Param("tau_plus", Interval(0.0, 1.0, low_closed=True), typical=(0.0, 0.5)),
    ),
    edges={"zero rows": "a zero embedding has cosine similarity 0 with every other row"},
)

REDUCTIONS = ("mean", "sum", "none")

# ------------------------------------------------------------------------------ definition


def definition(x: list[Any], t: Any, tau_plus: Any) -> Any:
    r"""The per-row loss as a SymPy expression (``x[0]`` the positive, ``K = N + 1``):
    :math:`\log(e^{x_0/t} + N g) - x_0/t`, i.e. :math:`-\log\frac{e^{s_0}}{e^{s_0} + N g}`."""
    import sympy as sp

    n = len(x) - 1
    pos = sp.exp(x[0] / t)
    mean = sp.Add(*[sp.exp(v / t) for v in x[1:]]) / n
    g = clipped((mean - tau_plus * pos) / (1 - tau_plus), sp.exp(-1 / t))
    return sp.log(pos + n * g) - x[0] / t


def clipped(value: Any, floor: Any) -> Any:
    r""":math:`\max(\text{value}, \text{floor})` as a SymPy ``Piecewise`` whose tie goes to the
    unclipped branch: the derivative at the kink is the unclipped one, the convention of
    ``torch.clamp(Ng, min=...)`` in the authors' code (SymPy's ``Max`` would average the
    two one-sided derivatives there)."""
    import sympy as sp

    return sp.Piecewise((value, value >= floor), (floor, True))


def oracle(row: list[Any], t: Any, tau_plus: Any) -> Any:
    r"""The per-row loss in mpmath, in the authors' arrangement (independent of
    :func:`definition`): :math:`Ng = (\sum_i e^{s_i} - \tau^+ N e^{s_0})/(1-\tau^+)`, clamped
    below at :math:`N e^{-1/t}`, then :math:`-\log(e^{s_0}/(e^{s_0} + Ng))`."""
    from mpmath import mp

    n = len(row) - 1
    pos = mp.exp(row[0] / t)
    ng = (mp.fsum(mp.exp(v / t) for v in row[1:]) - tau_plus * n * pos) / (1 - tau_plus)
    ng = max(ng, n * mp.exp(-1 / t))
    return -mp.log(pos / (pos + ng))


def infonce_oracle(row: list[Any], t: Any) -> Any:
    r"""InfoNCE of one row in mpmath: :math:`-\log\mathrm{softmax}(y/t)_0`."""
    from mpmath import mp

    z = [v / t for v in row]
    m = max(z)
    return m + mp.log(mp.fsum(mp.exp(v - m) for v in z)) - z[0]


# ----------------------------------------------------------------------------------- torch


def _as_scalar(v: Any, like: torch.Tensor) -> torch.Tensor:
    """A 0-d tensor in ``like``'s dtype/device; a tensor keeps its autograd graph."""
    import torch

    if isinstance(v, torch.Tensor):
        return v.reshape(()).to(dtype=like.dtype, device=like.device)
    return torch.tensor(float(v), dtype=like.dtype, device=like.device)


def _row_losses(x: torch.Tensor, t: Any, tau_plus: Any) -> torch.Tensor:
    """Per-row debiased loss of cosine-similarity rows ``x`` (unvalidated; see the module
    docstring for the two branches). Computes in ``x``'s dtype."""
    import torch

    tt, tau = _as_scalar(t, x), _as_scalar(tau_plus, x)
    n = x.shape[1] - 1
    s = x / tt
    neg = s[:, 1:]
    m = neg.detach().amax(dim=1, keepdim=True)
    # log of the negatives' mean weight, shifted by their max: exactly m when all are equal
    r = (m + torch.log(torch.exp(neg - m).mean(dim=1, keepdim=True))).squeeze(1) - s[:, 0]
    # r >= 0: the clip is inactive (U >= 1 >= C); log space, e^{-r} <= 1
    rp = r.clamp(min=0.0)
    q = n * -torch.expm1(-rp) / (torch.exp(-rp) + n)
    big = torch.logaddexp(torch.zeros_like(rp), math.log(n) + rp)
    big = big + torch.log1p(tau / (1 - tau) * q)
    # r < 0: e^r < 1, G = max(U, C) is bounded by 1; C = e^{-1/t - s0} = e^{-(1 + y0)/t}
    u = 1 + torch.expm1(r.clamp(max=0.0)) / (1 - tau)
    log_c = -1 / tt - s[:, 0]
    with torch.no_grad():  # U >= C <=> r >= log(tau + (1 - tau) C); a tie keeps U (clamp's rule)
        keep = r >= torch.logaddexp(torch.log(tau), torch.log1p(-tau) + log_c)
    small = torch.log1p(n * torch.where(keep, u, torch.exp(log_c)))
    return torch.where(r >= 0, big, small)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    import torch

    return torch.promote_types(x.dtype, torch.float32)


def debiased_rows(x: torch.Tensor, t: Any, tau_plus: Any) -> torch.Tensor:
    r"""Per-row debiased contrastive loss of rows of cosine similarities (the spec's contract).

    Args:
        x: ``(B, K)`` cosine similarities in ``[-1, 1]``; column 0 is the positive
            :math:`y_0`, columns ``1..K-1`` the :math:`N = K - 1` negatives (``K >= 2``).
        t: temperature :math:`t > 0` (a float, or a one-element tensor that keeps its grad).
        tau_plus: class prior :math:`\tau^+ \in [0, 1)` (float or one-element tensor).

    Returns:
        ``(B,)`` losses :math:`-\log\frac{e^{s_0}}{e^{s_0} + N g}`, :math:`s = x/t`, with
        :math:`g` the clipped estimator (Chuang et al. 2020 eq. 6), in ``x``'s dtype.
    """
    ROWS_DOMAIN.validate({"x": x, "t": t, "tau_plus": tau_plus})
    dt = _compute_dtype(x)
    return _row_losses(x.to(dt), t, tau_plus).to(x.dtype)


def _unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm without overflow (a detached max-abs prescale); a zero row
    stays zero."""
    import torch

    m = x.detach().abs().amax(dim=-1, keepdim=True)
    y = x / torch.where(m > 0, m, torch.ones_like(m))
    nrm = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    return y / torch.where(nrm > 0, nrm, torch.ones_like(nrm))


def debiased_contrastive_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: Any,
    tau_plus: Any,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Debiased contrastive loss of two views (Chuang et al. 2020, Alg. 1; authors' code).

    The ``2B`` rows of ``cat(z1, z2)`` are L2-normalised; each is an anchor whose positive is
    the other view of the same sample and whose :math:`N = 2B - 2` negatives are all other rows
    (itself and its positive excluded), as in the authors' ``get_negative_mask``. Per anchor

    .. math::
        \ell = -\log\frac{e^{s^+}}{e^{s^+} + N g},\quad
        g = \max\Big(\frac{1}{1-\tau^+}\Big(\frac1N\sum_{i}e^{s^-_i} - \tau^+e^{s^+}\Big),
        e^{-1/t}\Big),\quad s = \cos/t .

    Args:
        z1, z2: ``(B, D)`` embeddings of the two views (``B >= 2``), any scale.
        temperature: :math:`t > 0` (float or one-element tensor; a tensor keeps its grad).
        tau_plus: class prior :math:`\tau^+ \in [0, 1)`; ``0`` gives the SimCLR/NT-Xent loss.
        reduction: ``"mean"`` (the authors' choice) over the ``2B`` anchors, ``"sum"`` or
            ``"none"`` (``(2B,)``: the anchors of ``z1`` first, then those of ``z2``).
    """
    import torch

    BATCH_DOMAIN.validate({"z1": z1, "z2": z2, "temperature": temperature, "tau_plus": tau_plus})
    if z1.shape != z2.shape:
        raise ValueError(f"z2 must have the shape of z1 {tuple(z1.shape)}, got {tuple(z2.shape)}")
    if z1.device != z2.device:
        raise ValueError(f"z2 must be on z1's device {z1.device}, got {z2.device}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    dt = torch.promote_types(torch.promote_types(z1.dtype, z2.dtype), torch.float32)
    u = _unit_rows(torch.cat([z1, z2]).to(dt))
    b2 = u.shape[0]
    b = b2 // 2
    sim = u @ u.T
    idx = torch.arange(b2, device=u.device)
    partner = (idx + b) % b2
    keep = torch.ones(b2, b2, dtype=torch.bool, device=u.device)
    keep[idx, idx] = False
    keep[idx, partner] = False
    rows = torch.cat([sim[idx, partner].unsqueeze(1), sim[keep].view(b2, b2 - 2)], dim=1)
    loss = _row_losses(rows, temperature, tau_plus)
    out = loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss
    return out.to(torch.promote_types(z1.dtype, z2.dtype))


# ---------------------------------------------------------------------- Monte Carlo scenario

#: default law: 6 item classes with the anchor's cosine similarity to each; the positive's
#: classes (0, 1) and the true negatives' classes (2..5) are disjoint
DEFAULT_SIMS: tuple[float, ...] = (0.9, 0.7, 0.3, 0.0, -0.3, -0.6)
DEFAULT_P_PLUS: tuple[float, ...] = (0.6, 0.4, 0.0, 0.0, 0.0, 0.0)
DEFAULT_P_MINUS: tuple[float, ...] = (0.0, 0.0, 0.25, 0.25, 0.25, 0.25)


@dataclass(frozen=True)
class LawConstants:
    r"""Constants of a discrete law (mpmath): weights :math:`w_c = e^{y_c/t}`, the marginal
    :math:`p`, :math:`\mu_\pm = E_{p^\pm}w`, :math:`\mu_p, \sigma_p^2` (mean, variance of
    :math:`w` under :math:`p`), the clip :math:`c = e^{-1/t}`, the limits
    :math:`u_j = (\mu_p - \tau^+ w_j)/(1-\tau^+)` of the unclipped estimator given a positive in
    class :math:`j`, and :math:`L_\infty = E_{p^+}[\log\max(u_j, c) - y_j/t]`."""

    w: list[Any]
    p: list[Any]
    mu_plus: Any
    mu_minus: Any
    mu_p: Any
    sigma2_p: Any
    clip: Any
    u: list[Any]
    limit: Any


def law_constants(
    sims: tuple[float, ...],
    p_plus: tuple[float, ...],
    p_minus: tuple[float, ...],
    tau_plus: float,
    temperature: float,
) -> LawConstants:
    """The :class:`LawConstants` of a law, at :data:`DPS` digits."""
    from mpmath import mp

    with mp.workdps(DPS):
        tau, t = mp.mpf(tau_plus), mp.mpf(temperature)
        pp, pm = [mp.mpf(v) for v in p_plus], [mp.mpf(v) for v in p_minus]
        w = [mp.exp(mp.mpf(y) / t) for y in sims]
        p = [tau * a + (1 - tau) * b for a, b in zip(pp, pm, strict=True)]
        mu_p = mp.fsum(pc * wc for pc, wc in zip(p, w, strict=True))
        var = mp.fsum(pc * (wc - mu_p) ** 2 for pc, wc in zip(p, w, strict=True))
        clip = mp.exp(-1 / t)
        u = [(mu_p - tau * wc) / (1 - tau) for wc in w]
        limit = mp.fsum(
            a * (mp.log(max(uj, clip)) - mp.mpf(y) / t)
            for a, uj, y in zip(pp, u, sims, strict=True)
            if a > 0
        )
        return LawConstants(
            w=w,
            p=p,
            mu_plus=mp.fsum(a * wc for a, wc in zip(pp, w, strict=True)),
            mu_minus=mp.fsum(b * wc for b, wc in zip(pm, w, strict=True)),
            mu_p=mu_p,
            sigma2_p=var,
            clip=clip,
            u=u,
            limit=limit,
        )


def bias_coefficients(
    sims: tuple[float, ...],
    p_plus: tuple[float, ...],
    p_minus: tuple[float, ...],
    tau_plus: float,
    temperature: float,
) -> tuple[Any, Any] | None:
    r""":math:`(c_1, c_2)` with :math:`E[\ell_N] - \log N - L_\infty = c_1/N + c_2/N^2 +
    O(N^{-3})` (the delta method, derived here; ``None`` when some positive's limit sits
    exactly on the clip, where the expansion does not apply).

    Given a positive in class :math:`j` (weight :math:`a = w_j`),
    :math:`\ell_N - \log N = \log(a/N + g_N) - s_j` with :math:`g_N = \max(\hat g_N, c)`,
    :math:`\hat g_N = u_j + \delta`, :math:`\delta = (\bar m_N - \mu_p)/(1-\tau^+)`, where
    :math:`\bar m_N` is the mean of :math:`N` i.i.d. weights: :math:`E\delta = 0`,
    :math:`E\delta^2 = V/N`, :math:`E\delta^3 = K_3/N^2`, :math:`E\delta^4 = 3V^2/N^2 +
    O(N^{-3})` with :math:`V = \sigma_p^2/(1-\tau^+)^2`, :math:`K_3 = \kappa_3/(1-\tau^+)^3`.
    Expanding :math:`\log(u_j + a/N + \delta)` to fourth order in :math:`\delta`, for
    :math:`u_j > c` (the clip's effect is exponentially small in :math:`N`):

    .. math::
        c_1 = \sum_j p^+_j\Big(\frac{a}{u} - \frac{V}{2u^2}\Big),\qquad
        c_2 = \sum_j p^+_j\Big(-\frac{a^2}{2u^2} + \frac{aV}{u^3} + \frac{K_3}{3u^3}
        - \frac{3V^2}{4u^4}\Big),

    and for :math:`u_j < c` (the clip binds with probability :math:`\to 1`) the terms
    :math:`a/c` and :math:`-a^2/(2c^2)`. The :math:`(1-\tau^+)^{-2}` in :math:`V` is the
    variance inflation of debiasing.
    """
    from mpmath import mp

    k = law_constants(sims, p_plus, p_minus, tau_plus, temperature)
    with mp.workdps(DPS):
        tau = mp.mpf(tau_plus)
        var = k.sigma2_p / (1 - tau) ** 2
        k3 = mp.fsum(pc * (wc - k.mu_p) ** 3 for pc, wc in zip(k.p, k.w, strict=True))
        k3 = k3 / (1 - tau) ** 3
        c1 = c2 = mp.mpf(0)
        for pj, a, u in zip(p_plus, k.w, k.u, strict=True):
            if pj == 0:
                continue
            if u == k.clip:
                return None
            if u > k.clip:
                t1 = a / u - var / (2 * u**2)
                t2 = -(a**2) / (2 * u**2) + a * var / u**3 + k3 / (3 * u**3)
                t2 -= 3 * var**2 / (4 * u**4)
            else:
                t1, t2 = a / k.clip, -(a**2) / (2 * k.clip**2)
            c1 += mp.mpf(pj) * t1
            c2 += mp.mpf(pj) * t2
        return c1, c2


def _check_law(name: str, p: tuple[float, ...], size: int) -> None:
    if len(p) != size:
        raise ValueError(f"{name} must have length {size} (the length of sims), got {len(p)}")
    if not all(math.isfinite(v) and v >= 0 for v in p) or abs(math.fsum(p) - 1) > 1e-9:
        raise ValueError(f"{name} must be probabilities (finite, >= 0) summing to 1, got {p}")


def _cdf(p: torch.Tensor) -> torch.Tensor:
    """The cumulative law, its last entry exactly 1."""
    c = p.cumsum(0)
    c[-1] = 1.0
    return c


def _draw(cdf: torch.Tensor, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """I.i.d. class indices by inversion: the first ``c`` with ``cdf[c] > u``, ``u ~ U[0, 1)``
    (a class of probability 0 is never drawn)."""
    import torch

    u = torch.rand(shape, generator=gen, dtype=cdf.dtype, device=cdf.device)
    return torch.searchsorted(cdf, u, right=True)


@functools.cache
def _scenario_class() -> type:
    """The ``debiased_bias`` scenario class (built on first use: it imports the MC engine)."""
    import torch
    from mpmath import mp

    from softnce_theory.numerics.montecarlo import Prediction, ScenarioConfig

    @dataclass(frozen=True)
    class DebiasedBias(ScenarioConfig):
        r"""Finite-:math:`N` bias of the debiased loss, negatives from a known discrete law.

        Per trial: the positive's class :math:`j \sim p^+`, :math:`N` negatives' classes
        i.i.d. from the marginal :math:`p = \tau^+p^+ + (1-\tau^+)p^-` (the negatives include
        false negatives at rate :math:`\tau^+`, the paper's sampling bias), the row
        :math:`(y_j, y_{i_1}, .., y_{i_N})` fed to the production loss. Outputs:

        * ``loss_bias``: :math:`\ell_N - \log N - L_\infty`; predictions :math:`c_1/N` and
          :math:`c_1/N + c_2/N^2` (:func:`bias_coefficients`);
        * ``clip_bias``: :math:`g_N - \hat g_N = \max(c - \hat g_N, 0)`, the clip's bias on
          the estimator; prediction its limit :math:`\sum_j p^+_j\max(c - u_j, 0)` (0 when no
          limit is clipped; the approach is exponentially fast).

        Controls (exact mean 0): :math:`(\bar m_N - \mu_p)/\mu_p`,
        :math:`(w_j - \mu_+)/\mu_+`.
        """

        name: ClassVar[str] = "debiased_bias"
        default_ks: ClassVar[tuple[int, ...]] = (4, 16, 64, 256)
        prediction_source: ClassVar[str] = (
            "softnce_theory.contrib.debiased.bias_coefficients (delta method, orders 1 and 2)"
        )
        k_meaning: ClassVar[str] = "number of negatives N (drawn from the data marginal p)"

        sims: tuple[float, ...] = DEFAULT_SIMS
        p_plus: tuple[float, ...] = DEFAULT_P_PLUS
        p_minus: tuple[float, ...] = DEFAULT_P_MINUS
        tau_plus: float = 0.1
        temperature: float = 0.5

        def validate(self) -> None:
            if not self.sims or not all(math.isfinite(v) and -1 <= v <= 1 for v in self.sims):
                raise ValueError(f"sims must be cosine similarities in [-1, 1], got {self.sims}")
            _check_law("p_plus", self.p_plus, len(self.sims))
            _check_law("p_minus", self.p_minus, len(self.sims))
            if not (math.isfinite(self.tau_plus) and 0 <= self.tau_plus < 1):
                raise ValueError(f"tau_plus must be in [0, 1), got {self.tau_plus!r}")
            if not (math.isfinite(self.temperature) and self.temperature > 0):
                raise ValueError(f"temperature must be finite and > 0, got {self.temperature!r}")

        def output_names(self) -> tuple[str, ...]:
            return ("loss_bias", "clip_bias")

        def n_controls(self) -> int:
            return 2

        def trial_cost(self, k: int) -> int:
            return 6 * (k + 1) + len(self.sims)

        def const(self) -> LawConstants:
            def build() -> LawConstants:
                return law_constants(
                    self.sims, self.p_plus, self.p_minus, self.tau_plus, self.temperature
                )

            out: LawConstants = self.cached("const", build)
            return out

        def constants(self) -> dict[str, Any]:
            k = self.const()
            cs = bias_coefficients(
                self.sims, self.p_plus, self.p_minus, self.tau_plus, self.temperature
            )
            live = [uj for a, uj in zip(self.p_plus, k.u, strict=True) if a > 0]
            return {
                "mu_plus": float(k.mu_plus),
                "mu_minus": float(k.mu_minus),
                "mu_p": float(k.mu_p),
                "sigma2_p": float(k.sigma2_p),
                "clip": float(k.clip),
                "g_limit_per_class": [float(v) for v in k.u],
                "min_clip_margin": float(min(live) / k.clip - 1),
                "L_inf": float(k.limit),
                "c1": None if cs is None else float(cs[0]),
                "c2": None if cs is None else float(cs[1]),
            }

        def prepare(self, k: int, device: torch.device) -> dict[str, Any]:
            c = self.const()

            def ten(v: list[Any] | tuple[float, ...]) -> torch.Tensor:
                return torch.tensor([float(a) for a in v], dtype=torch.float64, device=device)

            return {
                "sims": ten(self.sims),
                "w": ten(c.w),
                "cdf": _cdf(ten(c.p)),
                "cdf_plus": _cdf(ten(self.p_plus)),
                "mu_p": float(c.mu_p),
                "mu_plus": float(c.mu_plus),
                "limit": float(c.limit),
                "clip": float(c.clip),
            }

        def simulate(
            self, prep: dict[str, Any], k: int, n: int, gen: torch.Generator
        ) -> tuple[torch.Tensor, torch.Tensor]:
            sims, w = prep["sims"], prep["w"]
            jpos = _draw(prep["cdf_plus"], (n,), gen)
            ineg = _draw(prep["cdf"], (n, k), gen)
            rows = torch.cat([sims[jpos].unsqueeze(1), sims[ineg]], dim=1)
            loss = _row_losses(rows, self.temperature, self.tau_plus)
            mbar = w[ineg].mean(dim=1)
            wpos = w[jpos]
            ghat = (mbar - self.tau_plus * wpos) / (1 - self.tau_plus)
            y = torch.stack(
                [loss - math.log(k) - prep["limit"], (prep["clip"] - ghat).clamp(min=0.0)], dim=1
            )
            ctrl = torch.stack([mbar / prep["mu_p"] - 1, wpos / prep["mu_plus"] - 1], dim=1)
            return y, ctrl.unsqueeze(1).expand(n, 2, 2).contiguous()

        def predictions(self, k: int) -> list[Prediction]:
            cs = bias_coefficients(
                self.sims, self.p_plus, self.p_minus, self.tau_plus, self.temperature
            )
            c = self.const()
            with mp.workdps(DPS):
                clip = mp.fsum(
                    mp.mpf(a) * max(c.clip - uj, 0) for a, uj in zip(self.p_plus, c.u, strict=True)
                )
            loss = (
                Prediction(None)
                if cs is None
                else Prediction(float(cs[0] / k), float(cs[0] / k + cs[1] / k**2))
            )
            return [loss, Prediction(float(clip))]

        def extras(self, k: int, value: Any, se: Any) -> dict[str, float]:
            return {"N_times_loss_bias": float(k * value[0]), "N_times_se": float(k * se[0])}

    DebiasedBias.__module__ = _MOD
    DebiasedBias.__qualname__ = "DebiasedBias"
    return DebiasedBias


# ---------------------------------------------------------------------- symbols, definitions


@functools.cache
def _s() -> Any:
    """The SymPy symbols of the family's symbolic-size definitions."""
    import types

    import sympy as sp

    return types.SimpleNamespace(
        N=sp.Symbol("N", integer=True, positive=True),
        C=sp.Symbol("C", integer=True, positive=True),
        i=sp.Symbol("i", integer=True),
        j=sp.Symbol("j", integer=True),
        c=sp.Symbol("c", integer=True),
        # the lemma library's index symbol: facts about y[k], pm[k] match its conditions
        k=sp.Symbol("k", integer=True),
        t=sp.Symbol("t", positive=True),
        tau=sp.Symbol("tau_plus", nonnegative=True),
        b=sp.Symbol("b", positive=True),
        x=sp.IndexedBase("x", real=True),
        a=sp.IndexedBase("a", positive=True),
        y=sp.IndexedBase("y", real=True),
        v=sp.IndexedBase("v", positive=True),
        q=sp.IndexedBase("q", nonnegative=True),
        pp=sp.IndexedBase("p_plus", nonnegative=True),
        pm=sp.IndexedBase("p_minus", nonnegative=True),
        beta=sp.IndexedBase("beta", real=True),
    )


def _mean_neg(n: Any = None) -> Any:
    r""":math:`\frac1N\sum_{i=1}^N e^{x_i/t}`."""
    import sympy as sp

    s = _s()
    n = s.N if n is None else n
    return sp.Sum(sp.exp(s.x[s.i] / s.t), (s.i, 1, n)) / n


def _g(tau: Any) -> Any:
    import sympy as sp

    s = _s()
    pos = sp.exp(s.x[0] / s.t)
    return clipped((_mean_neg() - tau * pos) / (1 - tau), sp.exp(-1 / s.t))


def row_sym(tau: Any = None) -> Any:
    r"""The per-row loss with a symbolic number of negatives :math:`N` (``x[0]`` the positive):
    :math:`\log(e^{x_0/t} + N g) - x_0/t`."""
    import sympy as sp

    s = _s()
    tau = s.tau if tau is None else tau
    return sp.log(sp.exp(s.x[0] / s.t) + s.N * _g(tau)) - s.x[0] / s.t


def infonce_sym() -> Any:
    r"""InfoNCE with :math:`N` negatives: :math:`\log\sum_{k=0}^N e^{x_k/t} - x_0/t`."""
    import sympy as sp

    s = _s()
    neg = sp.Sum(sp.exp(s.x[s.i] / s.t), (s.i, 1, s.N))
    return sp.log(sp.exp(s.x[0] / s.t) + neg) - s.x[0] / s.t


def estimator_sym() -> Any:
    r"""The unclipped estimator from :math:`N` drawn weights :math:`a_i` and a positive weight
    :math:`b`: :math:`\hat g_N = (\frac1N\sum_i a_i - \tau^+ b)/(1-\tau^+)`."""
    import sympy as sp

    s = _s()
    return (sp.Sum(s.a[s.i], (s.i, 1, s.N)) / s.N - s.tau * s.b) / (1 - s.tau)


def law_mean_sym(q: Any = None, v: Any = None, c: Any = None) -> Any:
    r""":math:`E_q[v] = \sum_{c=1}^C q_c v_c` (``q``, ``v``: functions of the index)."""
    import sympy as sp

    s = _s()
    c = s.c if c is None else c
    qf = q if q is not None else (lambda ix: s.q[ix])
    vf = v if v is not None else (lambda ix: s.v[ix])
    return sp.Sum(qf(c) * vf(c), (c, 1, s.C))


def clip_sym() -> Any:
    r"""The clip :math:`e^{-1/t}`."""
    import sympy as sp

    return sp.exp(-1 / _s().t)


def first_order_sym() -> Any:
    r"""The first-order coefficient :math:`c_1` of the loss bias (unclipped limits), in the
    symbols of a law over :math:`C` classes: cosine similarities :math:`y`, :math:`p^\pm`."""
    import sympy as sp

    s = _s()
    c, j, tau = s.c, s.j, s.tau

    def w(ix: Any) -> Any:
        return sp.exp(s.y[ix] / s.t)

    def p(ix: Any) -> Any:
        return tau * s.pp[ix] + (1 - tau) * s.pm[ix]

    mu = law_mean_sym(p, w, c)
    sigma2 = law_mean_sym(p, lambda ix: w(ix) ** 2, c) - mu**2

    def u(ix: Any) -> Any:
        return (mu - tau * w(ix)) / (1 - tau)

    term = w(j) / u(j) - sigma2 / (2 * (1 - tau) ** 2 * u(j) ** 2)
    return sp.Sum(s.pp[j] * term, (j, 1, s.C))


@functools.cache
def _definitions() -> tuple[Definition, ...]:
    s = _s()

    def d(name: str, build: Any, sizes: tuple[Any, ...], args: tuple[Any, ...], doc: str) -> Any:
        return Definition(name, NAME, build, sizes, args, SOURCE, doc)

    return (
        d("row", row_sym, (s.N,), (s.x, s.t, s.tau), "per-row debiased loss, N negatives"),
        d("infonce_row", infonce_sym, (s.N,), (s.x, s.t), "InfoNCE with N negatives"),
        d("estimator", estimator_sym, (s.N,), (s.a, s.b, s.tau), "unclipped estimator g_hat_N"),
        d("law_mean", law_mean_sym, (s.C,), (s.q, s.v), "E_q[v] over C classes"),
        d("clip", clip_sym, (), (s.t,), "the clip e^{-1/t}"),
        d(
            "first_order_bias",
            first_order_sym,
            (s.C,),
            (s.y, s.pp, s.pm, s.t, s.tau),
            "first-order coefficient c1 of E[loss_N] - log N - L_inf",
        ),
    )


def _write_out(e: Any) -> Any:
    """Every ``Sum`` with integer bounds written out term by term (inner sums first): the
    definition of a finite sum, and much cheaper than ``doit``'s search for closed forms."""
    import sympy as sp

    if not isinstance(e, sp.Basic) or not e.args:
        return e
    e = e.func(*[_write_out(a) for a in e.args])
    if isinstance(e, sp.Sum) and all(lo.is_Integer and hi.is_Integer for _, lo, hi in e.limits):
        terms = [e.function]
        for v, lo, hi in e.limits:
            terms = [f.xreplace({v: sp.Integer(m)}) for f in terms for m in range(lo, hi + 1)]
        return sp.Add(*terms)
    return e


def _evaluate(expr: Any, sizes: dict[Any, int], point: dict[Any, Any]) -> Any:
    """A SymPy expression at integer ``sizes`` and ``point`` (IndexedBase -> {index: value},
    as the definition indexes it), evaluated at :data:`DPS` digits."""
    import mpmath
    import sympy as sp

    e = _write_out(expr.xreplace({k: sp.Integer(v) for k, v in sizes.items()}))
    reps: dict[Any, Any] = {}
    for key, val in point.items():
        if isinstance(key, sp.IndexedBase):
            for ix, vv in val.items():
                reps[key[ix]] = sp.Float(vv, DPS + 10)
        else:
            reps[key] = sp.Float(val, DPS + 10)
    out = sp.N(e.xreplace(reps), DPS + 5)
    if out.free_symbols:
        raise ValueError(f"no value for {sorted(map(str, out.free_symbols))}")
    return mpmath.mpf(sp.Float(out, DPS + 5)._mpf_)


def _randlaw(rng: random.Random, n: int, zeros: bool = True) -> list[float]:
    """A random probability vector with entries in multiples of 1/64 (exact in binary, so it
    sums to exactly 1 at any precision); some zeros when ``zeros``."""
    cells = [c for c in range(n) if not zeros or rng.random() > 0.3] or [rng.randrange(n)]
    counts = [0] * n
    for c in cells:
        counts[c] = 1
    for _ in range(64 - len(cells)):
        counts[rng.choice(cells)] += 1
    return [v / 64 for v in counts]


# ------------------------------------------------------------------------------------- legs

DEFINITION = LegRegistry("definition")
PRECISE = LegRegistry("precise")
PRODUCTION = LegRegistry("production")


def _definition_leg(
    did: str, build: Any, sample: Any, want: Any, cfg: CheckConfig, n: int = 4
) -> LegResult:
    from mpmath import mp

    rng = random.Random(cfg.seed_for(did))
    tally = Tally("definition", rtol=1e-40, atol=1e-45, dps=DPS)
    with mp.workdps(DPS + 10):
        for _ in range(cfg.points(n, 1)):
            sizes, point, args = sample(rng)
            tally.close(_evaluate(build(), sizes, point), want(*args), f"{did} at {args}")
    return tally.result(f"SymPy definition vs an independent mpmath oracle at {DPS} digits")


def _sample_row(rng: random.Random) -> tuple[dict[Any, int], dict[Any, Any], tuple[Any, ...]]:
    s = _s()
    n = rng.randint(1, 4)
    row = [rng.uniform(-1, 1) for _ in range(n + 1)]
    t, tau = rng.uniform(0.05, 2.0), rng.choice([0.0, rng.uniform(0, 0.9)])
    return {s.N: n}, {s.x: dict(enumerate(row)), s.t: t, s.tau: tau}, (row, t, tau)


def _mp(*vals: Any) -> list[Any]:
    from mpmath import mp

    return [mp.mpf(v) for v in vals]


@DEFINITION.register(f"{NAME}.row")
def _def_row(cfg: CheckConfig) -> LegResult:
    def want(row: list[float], t: float, tau: float) -> Any:
        return oracle(_mp(*row), *_mp(t, tau))

    return _definition_leg(f"{NAME}.row", row_sym, _sample_row, want, cfg)


@DEFINITION.register(f"{NAME}.infonce_row")
def _def_infonce(cfg: CheckConfig) -> LegResult:
    def want(row: list[float], t: float, tau: float) -> Any:
        return infonce_oracle(_mp(*row), _mp(t)[0])

    return _definition_leg(f"{NAME}.infonce_row", infonce_sym, _sample_row, want, cfg)


@DEFINITION.register(f"{NAME}.estimator")
def _def_estimator(cfg: CheckConfig) -> LegResult:
    from mpmath import mp

    s = _s()

    def sample(rng: random.Random) -> Any:
        n = rng.randint(1, 5)
        a = [rng.uniform(0.1, 5) for _ in range(n)]
        b, tau = rng.uniform(0.1, 5), rng.uniform(0, 0.9)
        pt = {s.a: {i + 1: v for i, v in enumerate(a)}, s.b: b, s.tau: tau}
        return {s.N: n}, pt, (a, b, tau)

    def want(a: list[float], b: float, tau: float) -> Any:
        av, bm, tm = _mp(*a), mp.mpf(b), mp.mpf(tau)
        return (mp.fsum(av) / len(av) - tm * bm) / (1 - tm)

    return _definition_leg(f"{NAME}.estimator", estimator_sym, sample, want, cfg)


@DEFINITION.register(f"{NAME}.law_mean")
def _def_law_mean(cfg: CheckConfig) -> LegResult:
    from mpmath import mp

    s = _s()

    def sample(rng: random.Random) -> Any:
        n = rng.randint(1, 5)
        q, v = _randlaw(rng, n), [rng.uniform(0.1, 5) for _ in range(n)]
        pt = {s.q: {i + 1: x for i, x in enumerate(q)}, s.v: {i + 1: x for i, x in enumerate(v)}}
        return {s.C: n}, pt, (q, v)

    def want(q: list[float], v: list[float]) -> Any:
        return mp.fsum(a * b for a, b in zip(_mp(*q), _mp(*v), strict=True))

    return _definition_leg(f"{NAME}.law_mean", law_mean_sym, sample, want, cfg)


@DEFINITION.register(f"{NAME}.clip")
def _def_clip(cfg: CheckConfig) -> LegResult:
    from mpmath import mp

    s = _s()

    def sample(rng: random.Random) -> Any:
        t = rng.uniform(0.01, 5)
        return {}, {s.t: t}, (t,)

    def want(t: float) -> Any:
        return 1 / mp.e ** (1 / mp.mpf(t))

    return _definition_leg(f"{NAME}.clip", clip_sym, sample, want, cfg)


@DEFINITION.register(f"{NAME}.first_order_bias")
def _def_first_order(cfg: CheckConfig) -> LegResult:
    s = _s()

    def sample(rng: random.Random) -> Any:
        while True:  # a law whose limits are all unclipped (the formula's case)
            n = rng.randint(2, 4)
            sims = tuple(rng.uniform(-1, 1) for _ in range(n))
            pp, pm = tuple(_randlaw(rng, n)), tuple(_randlaw(rng, n, zeros=False))
            t, tau = rng.uniform(0.3, 2.0), rng.uniform(0, 0.3)
            k = law_constants(sims, pp, pm, tau, t)
            if all(a == 0 or uj > k.clip for a, uj in zip(pp, k.u, strict=True)):
                break
        pt = {
            s.y: {i + 1: v for i, v in enumerate(sims)},
            s.pp: {i + 1: v for i, v in enumerate(pp)},
            s.pm: {i + 1: v for i, v in enumerate(pm)},
            s.t: t,
            s.tau: tau,
        }
        return {s.C: n}, pt, (sims, pp, pm, tau, t)

    def want(*args: Any) -> Any:
        cs = bias_coefficients(*args)
        assert cs is not None  # the sampled limits are unclipped
        return cs[0]

    return _definition_leg(f"{NAME}.first_order_bias", first_order_sym, sample, want, cfg)


# --- claim 1: InfoNCE at tau+ = 0 -----------------------------------------------------------

C_INFONCE = f"{NAME}.infonce_at_zero_prior"


def _random_rows(rng: random.Random, n_rows: int) -> tuple[list[list[float]], float]:
    k = rng.randint(2, 7)
    rows = [[rng.uniform(-1, 1) for _ in range(k)] for _ in range(n_rows)]
    return rows, rng.uniform(0.05, 2.0)


@PRECISE.register(C_INFONCE)
def _infonce_precise(cfg: CheckConfig) -> LegResult:
    from mpmath import mp

    rng = random.Random(cfg.seed_for(C_INFONCE))
    tally = Tally("precise", rtol=1e-45, atol=1e-48, dps=DPS)
    inactive = 0
    with mp.workdps(DPS):
        for _ in range(cfg.points(24, 6)):
            rows, t = _random_rows(rng, 1)
            row, tm = _mp(*rows[0]), mp.mpf(t)
            mean = mp.fsum(mp.exp(v / tm) for v in row[1:]) / (len(row) - 1)
            inactive += int(mean >= mp.exp(-1 / tm))  # the claim's hypothesis, at this point
            tally.close(oracle(row, tm, mp.mpf(0)), infonce_oracle(row, tm), f"row {rows[0]}")
    return tally.result(
        "the oracle at tau+ = 0 vs an InfoNCE oracle (log-sum-exp), 50 digits; the clip was "
        f"inactive at {inactive}/{tally.n} points (cosine rows: always)",
        inactive_points=inactive,
    )


@PRODUCTION.register(C_INFONCE)
def _infonce_production(cfg: CheckConfig) -> LegResult:
    import torch
    import torch.nn.functional as F

    rng = random.Random(cfg.seed_for(C_INFONCE) + 1)
    tally = Tally("production", rtol=1e-12, atol=1e-13, dtype="float64")
    for _ in range(cfg.points(12, 3)):
        rows, t = _random_rows(rng, 4)
        x = torch.tensor(rows, dtype=torch.float64)
        got = debiased_rows(x, t, 0.0)
        want = F.cross_entropy(x / t, torch.zeros(len(rows), dtype=torch.long), reduction="none")
        tally.close_all(got.tolist(), want.tolist(), f"rows {rows}, t = {t}")
    return tally.result("debiased_rows(x, t, 0) vs torch cross_entropy(x / t, 0), float64")


def _infonce_statement() -> Any:
    import sympy as sp

    return sp.Eq(row_sym(tau=0), infonce_sym())


def _infonce_facts() -> tuple[Any, ...]:
    import sympy as sp

    # the clip is inactive: max(mean e^{x_i/t}, e^{-1/t}) is the mean (at tau+ = 0 the
    # estimator is the plain mean; claim clip_inactive_in_the_limit shows it always holds for
    # cosine similarities, the empirical law of the negatives being a law on the simplex)
    return (sp.Eq(_g(0), _mean_neg()),)


# --- claim 2: unbiased estimator (eq. 3) ----------------------------------------------------

C_UNBIASED = f"{NAME}.estimator_unbiased"


def _unbiased_statement() -> Any:
    import sympy as sp

    s = _s()
    tau, c, j = s.tau, s.c, s.j
    # conjunct 1: the N-sample estimator is the mean of N one-draw estimators
    one = (s.a[s.i] - tau * s.b) / (1 - tau)
    means = sp.Eq(estimator_sym(), sp.Sum(one, (s.i, 1, s.N)) / s.N)
    # conjunct 2: one draw u ~ p = tau+ p+ + (1 - tau+) p-, positive term at its mean mu+
    mu_plus = sp.Sum(s.pp[j] * s.v[j], (j, 1, s.C))

    def draw(ix: Any) -> Any:
        return (s.v[ix] - tau * mu_plus) / (1 - tau)

    def marginal(ix: Any) -> Any:
        return tau * s.pp[ix] + (1 - tau) * s.pm[ix]

    lhs = law_mean_sym(marginal, draw, c)
    rhs = law_mean_sym(lambda ix: s.pm[ix], lambda ix: s.v[ix], c)
    return sp.And(means, sp.Eq(lhs, rhs))


def _simplex_facts() -> tuple[Any, ...]:
    import sympy as sp

    s = _s()
    return (
        sp.Eq(sp.Sum(s.pp[s.k], (s.k, 1, s.C)), 1),
        sp.Eq(sp.Sum(s.pm[s.k], (s.k, 1, s.C)), 1),
    )


@PRECISE.register(C_UNBIASED)
def _unbiased_precise(cfg: CheckConfig) -> LegResult:
    """(i) E_p[one-draw estimator] = E_{p-}[w] at random laws; (ii) E[g_hat_N] over the
    positive (from p+, its own weight: M = 1, as in the authors' code) and N i.i.d. negatives
    from p, by exact enumeration of every draw, equals E_{p-}[w]."""
    from mpmath import mp

    rng = random.Random(cfg.seed_for(C_UNBIASED))
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=DPS)
    with mp.workdps(DPS):
        for _ in range(cfg.points(6, 2)):
            n_cls, n = rng.randint(2, 4), rng.randint(1, 3)
            pp, pm = _mp(*_randlaw(rng, n_cls)), _mp(*_randlaw(rng, n_cls))
            w = _mp(*[rng.uniform(0.05, 8) for _ in range(n_cls)])
            tau = mp.mpf(rng.uniform(0, 0.9))
            p = [tau * a + (1 - tau) * b for a, b in zip(pp, pm, strict=True)]
            mu_minus = mp.fsum(b * v for b, v in zip(pm, w, strict=True))
            mu_plus = mp.fsum(a * v for a, v in zip(pp, w, strict=True))
            one = mp.fsum(pc * (v - tau * mu_plus) / (1 - tau) for pc, v in zip(p, w, strict=True))
            tally.close(one, mu_minus, f"one draw, C = {n_cls}, tau = {float(tau):.4g}")
            total = mp.mpf(0)
            for jp in range(n_cls):
                for draw in itertools.product(range(n_cls), repeat=n):
                    prob = pp[jp] * mp.fprod(p[c] for c in draw)
                    ghat = (mp.fsum(w[c] for c in draw) / n - tau * w[jp]) / (1 - tau)
                    total += prob * ghat
            tally.close(total, mu_minus, f"exact enumeration, C = {n_cls}, N = {n}")
    return tally.result("E[g_hat] vs E_{p-}[w]: one draw, and all draws enumerated (50 digits)")


# --- claim 3: the clip never binds in expectation ------------------------------------------

C_CLIP = f"{NAME}.clip_inactive_in_the_limit"


def _clip_statement() -> Any:
    import sympy as sp

    s = _s()
    mean = law_mean_sym(lambda ix: s.pm[ix], lambda ix: sp.exp(s.y[ix] / s.t), s.k)
    return sp.Ge(mean, clip_sym())


def _clip_facts() -> tuple[Any, ...]:
    import sympy as sp

    s = _s()
    return (sp.Eq(sp.Sum(s.pm[s.k], (s.k, 1, s.C)), 1), sp.Ge(s.y[s.k], -1))


def _clip_tactic() -> Any:
    import sympy as sp

    from softnce_theory.derivations.lemmas import EXP_TANGENT, JENSEN_EXP, SUM_NONNEG
    from softnce_theory.derivations.tactics import LemmaUse, Reduction

    s = _s()
    lift = sp.Sum(s.pm[s.k] * (s.y[s.k] + 1) / s.t, (s.k, 1, s.C))
    floor = sp.exp(-1 / s.t)
    return Reduction(
        uses=(
            # sum p e^{y/t} >= e^{sum p y / t}
            LemmaUse(
                JENSEN_EXP,
                {"n": s.C, "w": lambda ix: s.pm[ix], "x": lambda ix: s.y[ix] / s.t},
            ),
            # e^{-1/t} (e^V - 1 - V) >= 0, V = sum p (y + 1)/t = sum p y/t + 1/t
            LemmaUse(EXP_TANGENT, {"v": lift}, factor=floor),
            # e^{-1/t} V >= 0 since y >= -1
            LemmaUse(
                SUM_NONNEG,
                {"n": s.C, "a": lambda ix: s.pm[ix] * (s.y[ix] + 1) / s.t},
                factor=floor,
            ),
        ),
        steps=("linear_sums", "facts", "expand", "powsimp"),
    )


@PRECISE.register(C_CLIP)
def _clip_precise(cfg: CheckConfig) -> LegResult:
    from mpmath import mp

    rng = random.Random(cfg.seed_for(C_CLIP))
    tally = Tally("precise", rtol=0.0, atol=0.0, dps=DPS)
    with mp.workdps(DPS):
        for k in range(cfg.points(40, 10)):
            n = rng.randint(1, 6)
            law = _mp(*_randlaw(rng, n))
            sims = [rng.uniform(-1, 1) for _ in range(n)]
            if k % 4 == 0:  # at the edge: similarities at -1 (the margin is exactly 0)
                sims = [-1.0 if rng.random() < 0.7 else v for v in sims]
            t = mp.mpf(10 ** rng.uniform(-2, 1))
            mean = mp.fsum(a * mp.exp(mp.mpf(y) / t) for a, y in zip(law, sims, strict=True))
            tally.holds(mean - mp.exp(-1 / t), f"law {law}, sims {sims}, t = {float(t):.4g}")
    return tally.result("E_w[e^{y/t}] - e^{-1/t} >= 0 at 50 digits (edge cases at y = -1)")


# --- claim 4: the finite-N bias, first order (Monte Carlo) ---------------------------------

C_BIAS = f"{NAME}.bias_first_order"
#: N and trial counts of the Monte Carlo leg (full, quick)
MC_N = 256
MC_TRIALS = (4096, 512)
MC_Z = 3.0


def _bias_statement() -> Any:
    import sympy as sp

    s = _s()
    # evaluate=False: SymPy would try to absorb c1/N into the order term with a limit that its
    # Gruntz algorithm cannot take through the indexed law symbols
    rhs = sp.Add(first_order_sym() / s.N, sp.O(s.N**-2, (s.N, sp.oo)), evaluate=False)
    return sp.Eq(s.beta[s.N], rhs, evaluate=False)


def mc_bias_check(
    config: Any, n_neg: int, trials: int, seed: int, z: float = MC_Z
) -> tuple[bool, dict[str, Any]]:
    """Run the scenario at one ``N`` and compare the loss bias with the first-order
    prediction: passes when ``|estimate - prediction| <= z SE`` (control-variate SE). Returns
    (ok, numbers)."""
    from softnce_theory.numerics.montecarlo import run_scenario

    run = run_scenario(
        config,
        [n_neg],
        seed=seed,
        device="cpu",
        max_samples=trials,
        min_samples=trials,
        chunk=1 << 21,
    )
    o = run.result(n_neg).output("loss_bias")
    pred = o.pred_first
    ok = pred is not None and abs(o.estimate - pred) <= z * o.se
    return bool(ok), {
        "N": n_neg,
        "trials": run.result(n_neg).n,
        "estimate": o.estimate,
        "se": o.se,
        "prediction": pred,
        "z": o.z_first,
        "prediction_second": o.pred_second,
        "z_second": o.z_second,
        "variance_reduction": o.variance_reduction,
    }


@PRODUCTION.register(C_BIAS)
def _bias_production(cfg: CheckConfig) -> LegResult:
    config = _scenario_class()()
    k = config.const()
    live = [uj for a, uj in zip(config.p_plus, k.u, strict=True) if a > 0]
    if min(live) <= k.clip:
        raise ValueError("the default law must have unclipped limits (the statement's case)")
    trials = cfg.points(*MC_TRIALS)
    _, num = mc_bias_check(config, MC_N, trials, cfg.seed_for(C_BIAS))
    tally = Tally("production", rtol=0.0, atol=MC_Z * num["se"], dtype="float64")
    tally.close(num["estimate"], num["prediction"], f"N = {MC_N}, {num['trials']} trials")
    # non-vacuity: the bias itself is resolved (|prediction| > z SE), so a prediction of 0
    # (or one missing the 1/(1 - tau+)^2 variance factor) would fail
    tally.holds(abs(num["prediction"]) - MC_Z * num["se"], "bias resolved from 0")
    return tally.result(
        f"Monte Carlo E[loss_N] - log N - L_inf (production loss, float64, CV) vs c1/N at "
        f"N = {MC_N}, default law: {num['estimate']:.5g} +- {num['se']:.2g} (SE) vs "
        f"{num['prediction']:.5g}; one N only: evidence for the first-order term, the O(N^-2) "
        "remainder is not bounded by this leg",
        **num,
    )


# ------------------------------------------------------------------------------------ claims


@functools.cache
def _claims() -> tuple[Claim, ...]:
    from softnce_theory.derivations.tactics import Both, Simplify

    _UNBIASED_STEPS = Simplify(steps=("expand", "linear_sums", "facts", "cancel"))

    return (
        Claim(
            id=C_INFONCE,
            family=NAME,
            kind="identity",
            text="At tau+ = 0, when the clip is inactive (max(mean_i e^{s_i}, e^{-1/t}) is the "
            "mean), the debiased loss with N negatives is InfoNCE with the same N negatives "
            "(for any N, t). For cosine similarities the clip is never active at tau+ = 0 "
            "(see clip_inactive_in_the_limit).",
            statement=_infonce_statement,
            source=SOURCE + "; §3 (g reduces to the plain negative mean at tau+ = 0)",
            evidence=("symbolic", "precise", "production"),
            tactic=Simplify(steps=("facts",)),
            facts=_infonce_facts,
            uses=("row", "infonce_row"),
        ),
        Claim(
            id=C_UNBIASED,
            family=NAME,
            kind="identity",
            text="With negatives drawn from the data marginal p = tau+ p+ + (1 - tau+) p- and "
            "the positive term at its expectation, the unclipped estimator is unbiased for "
            "E_{p-}[e^{s}]: the N-sample estimator is the mean of N one-draw estimators, and "
            "E_{u ~ p}[(e^{s(u)} - tau+ E_{p+}[e^{s}])/(1 - tau+)] = E_{p-}[e^{s}].",
            statement=_unbiased_statement,
            source=SOURCE + "; eq. (3) p- = (p - tau+ p+)/tau-, integrated against e^{f^T f}",
            evidence=("symbolic", "precise"),
            # one tactic for both conjuncts (And sorts its arguments)
            tactic=Both((_UNBIASED_STEPS, _UNBIASED_STEPS)),
            facts=_simplex_facts,
            uses=("estimator", "law_mean"),
            notes="The precise leg also enumerates every draw (positive from p+ with its own "
            "weight, M = 1 as in the authors' code, and N negatives from p) for N <= 3: E[g_hat_N] "
            "= E_{p-}[e^s] exactly. By the law of large numbers g_hat_N -> E_{p-}[e^s] a.s. when "
            "the positive term is averaged (M -> infinity) as N -> infinity.",
        ),
        Claim(
            id=C_CLIP,
            family=NAME,
            kind="inequality",
            text="For any law on the simplex over cosine similarities y >= -1, "
            "E[e^{y/t}] >= e^{-1/t}. Hence the clip never binds at tau+ = 0 (the empirical law "
            "of the negatives), and the clipped estimator's N -> infinity limit "
            "max(E_{p-}[e^{s}], e^{-1/t}) is E_{p-}[e^{s}]: the asymptotic debiased loss "
            "(Lemma 1 / eq. 4) is unaffected by the clip.",
            statement=_clip_statement,
            source=SOURCE + "; the clip at the 'theoretical minimum' e^{-1/t} (§3, after eq. 6)",
            evidence=("symbolic", "precise"),
            tactic=_clip_tactic(),
            facts=_clip_facts,
            uses=("law_mean", "clip"),
        ),
        Claim(
            id=C_BIAS,
            family=NAME,
            kind="asymptotic",
            text="beta_N = E[loss_N] - log N - L_inf (positive from p+, N negatives i.i.d. from "
            "p, every limit u_j unclipped) is c1/N + O(N^-2), with c1 = sum_j p+_j (w_j/u_j - "
            "Var_p(w)/(2 (1 - tau+)^2 u_j^2)) (delta method, derived here). Checked by Monte "
            "Carlo at one N on the scenario's default law.",
            statement=_bias_statement,
            source=SOURCE + "; prediction derived here (delta method), not in the paper",
            evidence=("production",),
            uses=("first_order_bias",),
            notes=f"The leg runs the debiased_bias scenario (production loss) at N = {MC_N} and "
            "checks |estimate - c1/N| <= 3 SE and |c1/N| > 3 SE; see `softnce mc debiased_bias`.",
        ),
    )


def __getattr__(name: str) -> Any:
    """Lazy parts: the claims, the definitions and the scenario class import sympy/torch."""
    if name == "CLAIMS":
        return _claims()
    if name == "DEFINITIONS":
        return _definitions()
    if name == "DebiasedBias":
        return _scenario_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------------------------ family

SPEC = LossSpec(
    definition=definition,
    torch_fn=f"{_MOD}:debiased_rows",
    domain=ROWS_DOMAIN,
    oracle=oracle,
    invariances=("batch_permutation",),
    sizes=(2, 3, 5),
)

FAMILY = Family(
    name=NAME,
    title="Debiased contrastive loss (class-prior correction of sampled negatives)",
    source=SOURCE,
    claims=f"{_MOD}:CLAIMS",
    definitions=f"{_MOD}:DEFINITIONS",
    definition_legs=DEFINITION,
    precise=PRECISE,
    production=PRODUCTION,
    losses={
        "debiased_contrastive_loss": f"{_MOD}:debiased_contrastive_loss",
        "debiased_rows": f"{_MOD}:debiased_rows",
    },
    domains={"debiased_contrastive_loss": BATCH_DOMAIN, "debiased_rows": ROWS_DOMAIN},
    scenarios={"debiased_bias": f"{_MOD}:DebiasedBias"},
    spec=SPEC,
)

__all__ = [
    "BATCH_DOMAIN",
    "FAMILY",
    "ROWS_DOMAIN",
    "SPEC",
    "LawConstants",
    "bias_coefficients",
    "clipped",
    "debiased_contrastive_loss",
    "debiased_rows",
    "definition",
    "infonce_oracle",
    "law_constants",
    "mc_bias_check",
    "oracle",
]
