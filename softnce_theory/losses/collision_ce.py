r"""Collision cross-entropy, the self-labeling loss and its pseudo-label solvers (EM and PGD).

Source: Zhang & Boykov, *Collision Cross-entropy for Soft Class Labels and Deep Clustering*
(arXiv 2303.07321; v1 titled *Collision Cross-entropy and EM Algorithm for Self-labeled
Classification*). The paper body was unavailable: the collision cross-entropy itself is stated in
the abstract, everything else here (self-labeling loss, EM M-step) is **reconstructed** in the
project's research note ``collision_ce.md`` (§1, §3) and marked as such below.

Notation: :math:`\sigma_i = \operatorname{softmax}(z_i)` is the prediction, :math:`y_i` a soft
(pseudo-)label on the simplex, :math:`N` rows, :math:`K` classes, :math:`u = \mathbf 1/K`,
:math:`\bar y = \frac1N\sum_i y_i`.

.. math::
    H_2(y, \sigma) = -\ln \sum_k y_k \sigma_k = -\ln \Pr(C = T),
    \qquad C \sim \sigma,\ T \sim y \text{ independent.}

Numerics (all in log space, at least float32):

* the value is :math:`-\ln(1 - d)` with :math:`d = \sum_k \sigma_k (1 - y_k) = \Pr(C \ne T)`
  (``log1p``) when :math:`d \le 1/2`, and otherwise a logsumexp of :math:`z + \ln y` shifted by
  the logit of the dominant collision class (so a logit gap of :math:`10^4` keeps full relative
  precision); exact zeros in :math:`y` are :math:`\ln 0 = -\infty` inside the logsumexp;
* the gradient is analytic (a custom autograd function): :math:`\sigma - \tilde y` with
  :math:`\tilde y = y\odot\sigma/\sigma^\top y`, evaluated as
  :math:`\sigma_k (P - y_k)/P` with :math:`P - y_k = (y_M - y_k) + \sum_j \sigma_j (y_j - y_M)`
  (:math:`M = \arg\max_k z_k`), which has no cancellation when :math:`\tilde y \approx \sigma`
  (one-hot target on a confident prediction, uniform target: exactly 0); and
  :math:`\partial H_2/\partial y_k = -\sigma_k/\sigma^\top y`, finite at :math:`y_k = 0`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from softnce_theory.losses import domains as D
from softnce_theory.losses._common import (
    Reduction,
    check_bool,
    check_float,
    check_inputs,
    check_int_param,
    check_number,
    check_reduction,
    compute_dtype,
    reduce,
    values_checked,
)

__all__ = [
    "CollisionCrossEntropy",
    "EMResult",
    "SelfLabelingLoss",
    "collision_cross_entropy",
    "em_pseudo_labels",
    "pgd_pseudo_labels",
    "project_simplex",
    "pseudo_label_gap",
    "pseudo_label_gradient",
    "pseudo_label_kkt_residual",
    "pseudo_label_objective",
    "self_labeling_loss",
]


# ----------------------------------------------------------------------------- H2 kernel


def _shifted(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Row-wise pieces of :math:`\\ln\\sum_k y_k e^{z_k}` shifted by its dominant term ``m``.

    Returns ``logy``, ``a = z - z_m``, ``logy_m``, ``t = a + logy - logy_m`` (so ``t_m = 0``),
    ``L = logsumexp(t)`` and ``dead`` (rows where ``y`` and ``softmax(z)`` have disjoint support).
    Forming ``z - z_m`` before adding ``log y`` keeps the relevant differences exact at
    ``|z| ~ 1e4`` (``z + log y`` would round at ``ulp(1e4) ~ 2e-12``).
    """
    logy = torch.log(y)
    m = torch.argmax(z + logy, dim=-1, keepdim=True)
    z_m = z.gather(-1, m)
    logy_m = logy.gather(-1, m)
    dead = torch.isneginf(z_m + logy_m).squeeze(-1)
    z_m = torch.where(torch.isfinite(z_m), z_m, torch.zeros_like(z_m))
    logy_m = torch.where(torch.isfinite(logy_m), logy_m, torch.zeros_like(logy_m))
    a = z - z_m
    t = a + (logy - logy_m)
    big_l = torch.logsumexp(t, dim=-1, keepdim=True)
    return logy, a, logy_m, t, big_l, dead


def _h2_rows(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-row :math:`H_2` (see the module docstring for the two branches)."""
    _, a, logy_m, _, big_l, dead = _shifted(z, y)
    sigma = torch.exp(torch.log_softmax(z, dim=-1))
    d = (sigma * (1 - y)).sum(-1)  # Pr(C != T), no cancellation
    near = -torch.log1p(-d.clamp(max=0.5))
    far = (torch.logsumexp(a, dim=-1, keepdim=True) - logy_m - big_l).squeeze(-1)
    far = torch.where(dead, torch.full_like(far, math.inf), far)
    return torch.where(d <= 0.5, near, far)


def _h2_grads(z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Analytic per-row gradients: ``(sigma - ytilde, -sigma / (sigma . y))``; 0 on dead rows."""
    _, a, logy_m, t, big_l, dead = _shifted(z, y)
    r = torch.exp(a - logy_m - big_l)  # sigma_k / P, exact-shift form
    ytilde = torch.exp(t - big_l)
    sigma = torch.exp(torch.log_softmax(z, dim=-1))
    top = torch.argmax(z, dim=-1, keepdim=True)
    y_top = y.gather(-1, top)
    p_minus_y = (y_top - y) + (sigma * (y - y_top)).sum(-1, keepdim=True)  # P - y_k
    accurate = r * p_minus_y
    gz = torch.where(torch.isfinite(accurate), accurate, sigma - ytilde)
    dead2 = dead.unsqueeze(-1)
    gz = torch.where(dead2, torch.zeros_like(gz), gz)
    gy = torch.where(dead2, torch.zeros_like(r), -r)
    return gz, gy


class _CollisionCE(torch.autograd.Function):
    """Per-row :math:`H_2` with the analytic (and twice differentiable) backward."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(z, y)
        return _h2_rows(z, y)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        z, y = ctx.saved_tensors
        gz, gy = _h2_grads(z, y)
        g = grad.unsqueeze(-1)
        dz = g * gz if ctx.needs_input_grad[0] else None
        dy = g * gy if ctx.needs_input_grad[1] else None
        return dz, dy


def _h2(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    dt = compute_dtype(logits, targets)
    out: torch.Tensor = _CollisionCE.apply(logits.to(dt), targets.to(dt))
    return out


def collision_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    r"""Collision cross-entropy of soft targets against softmax predictions.

    .. math::
        \ell_i = H_2(y_i, \sigma_i) = -\ln \sum_{k=1}^{K} y_{ik}\,\sigma_{ik},
        \qquad \sigma_i = \operatorname{softmax}(z_i)

    Source: Zhang & Boykov (2023), arXiv 2303.07321, abstract (the collision probability
    :math:`\Pr(C=T)`); research note ``collision_ce.md`` §1, §2.

    Args:
        logits: ``(N, K)`` logits :math:`z_i` (NaN/Inf propagate).
        targets: ``(N, K)`` rows on the simplex; exact zeros are allowed.
        reduction: ``"mean"`` over rows (default), ``"sum"`` or ``"none"``.
        validate: run the data-dependent simplex check (skipped under ``torch.compile``).

    Conventions:
        * exact zeros in ``targets`` give no NaN in the value or either gradient;
        * ``targets`` may require grad: :math:`\partial\ell_i/\partial y_{ik} =
          -\sigma_{ik}/\sigma_i^\top y_i` is defined (finite) at :math:`y_{ik} = 0` (it can
          overflow to ``-inf`` when :math:`\sigma_{ik}/\sigma_i^\top y_i > 10^{308}`);
        * **disjoint supports** (only possible with ``-inf`` logits) give ``+inf``; the gradient
          of such a row is set to 0 (the loss is infinite there, not differentiable);
        * with finite logits the value is finite even where :math:`\sigma` underflows in
          float64 (e.g. :math:`2\cdot10^4` at a logit gap of :math:`2\cdot10^4`);
        * second derivatives (double backward) are supported; with respect to ``targets``
          they need strictly positive targets;
        * one-hot targets give exactly Shannon CE; uniform targets give :math:`\ln K` and a
          zero gradient (exactly 0 in floating point).
    """
    check_inputs(D.COLLISION_CROSS_ENTROPY, validate, logits=logits, targets=targets)
    check_reduction(reduction)
    return reduce(_h2(logits, targets), reduction).to(logits.dtype)


def self_labeling_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    *,
    lam: float,
    reduction: Reduction = "mean",
    validate: bool = True,
) -> torch.Tensor:
    r"""Self-labeling loss: mean collision CE plus a reverse-KL fairness term (**reconstructed**).

    .. math::
        L(z, y) = \frac1N \sum_i H_2(y_i, \sigma_i) + \lambda\, \mathrm{KL}(u \,\|\, \bar y),
        \qquad \mathrm{KL}(u\|\bar y) = -\ln K - \frac1K \sum_k \ln \bar y_k

    Source: **reconstructed** in research note ``collision_ce.md`` §1 from the abstracts of
    arXiv 2303.07321 ("self-labeling loss combining collision cross entropy with basic clustering
    criteria is convex w.r.t. pseudo-labels") and the companion 2301.11405 (reverse KL,
    "stronger fairness"). The paper's exact fairness term is unverified; a **forward-KL variant**
    :math:`\lambda\,\mathrm{KL}(\bar y\|u)` (Jabi et al.) is also plausible and is *not* what this
    function computes.

    Reductions: the per-row loss is :math:`H_2(y_i,\sigma_i) + \lambda\,\mathrm{KL}(u\|\bar y)`
    (the batch term broadcast), so ``"mean"`` is :math:`L` above, ``"sum"`` is :math:`N L`, and
    ``"none"`` returns the ``(N,)`` vector whose mean is :math:`L`.

    A class with :math:`\bar y_k = 0` makes the fairness term ``+inf`` (it is a barrier);
    ``lam = 0`` drops the term altogether (the loss is then the mean collision CE).

    Accuracy: the collision-CE part keeps full relative precision; the fairness term needs the
    batch means :math:`\bar y_k` (and the rows' deviation from the simplex), whose rounding gives
    it an absolute error of a few :math:`\lambda\,\epsilon_{\text{mach}}` — visible in relative
    terms only near the loss's minimum (balanced, confident labels, :math:`L \lesssim 10^{-4}`),
    where the value is that ill-conditioned in its inputs anyway.
    """
    check_inputs(D.SELF_LABELING_LOSS, validate, logits=logits, y=y)
    lam_f = check_number(D.LAM, lam)
    check_reduction(reduction)
    h = _h2(logits, y)
    if lam_f != 0:  # lam = 0 drops the term (no 0 * inf = NaN for an empty class)
        h = h + lam_f * _kl_uniform_mean(y.to(h.dtype))
    return reduce(h, reduction).to(logits.dtype)


def _kl_uniform_mean(y: torch.Tensor) -> torch.Tensor:
    r""":math:`\mathrm{KL}(u\|\bar y) = \frac1K\sum_k [x_k - \ln(1 + x_k)] - \frac1K\sum_k x_k`
    with :math:`x_k = K\bar y_k - 1`. Each bracket is :math:`\ge 0`; :math:`\ln(1+x_k)` is
    ``log1p(x_k)`` for :math:`|x_k| < 1/2` (accurate near :math:`\bar y = u`, where the naive
    :math:`-\ln K - \mathrm{mean}\ln\bar y` cancels) and :math:`\ln(K\bar y_k)` otherwise.
    :math:`\frac1K\sum_k x_k = \sum_k\bar y_k - 1` is the rows' deviation from the simplex (0
    for exactly normalised rows)."""
    n, k = y.shape
    ky = y.sum(0) * (k / n)
    x = ky - 1
    small = x.abs() < 0.5
    log_ky = torch.where(
        small, torch.log1p(torch.where(small, x, torch.zeros_like(x))), torch.log(ky)
    )
    return (x - log_ky).mean() - (y.sum() - n) / n


class CollisionCrossEntropy(nn.Module):
    """Module form of :func:`collision_cross_entropy`."""

    def __init__(self, reduction: Reduction = "mean", *, validate: bool = True) -> None:
        super().__init__()
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return collision_cross_entropy(
            logits, targets, reduction=self.reduction, validate=self.validate
        )


class SelfLabelingLoss(nn.Module):
    """Module form of :func:`self_labeling_loss` (**reconstructed** loss)."""

    def __init__(self, lam: float, reduction: Reduction = "mean", *, validate: bool = True) -> None:
        super().__init__()
        self.lam = check_number(D.LAM, lam)
        check_reduction(reduction)
        self.reduction: Reduction = reduction
        self.validate = validate

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self_labeling_loss(
            logits, y, lam=self.lam, reduction=self.reduction, validate=self.validate
        )


# ----------------------------------------------------------------------------- pseudo-labels


@dataclass
class EMResult:
    """Result of a pseudo-label solver.

    ``y``: the ``(N, K)`` pseudo-labels (dtype of ``probs``); ``history``: the objective
    :math:`F` at the start and after every accepted iteration (``len == iterations + 1``);
    ``iterations``: accepted updates; ``converged``: the stopping rule fired before ``max_iter``;
    ``work``: for each ``history`` entry, the cumulative number of steps evaluated by then (E+M
    steps for EM, projected-gradient steps for PGD): the solver's cost, comparable across
    solvers. EM learns :math:`F(y)` from the E-step at ``y``, so its first entry is 1; an
    accelerated EM iteration costs two E+M steps plus one per backtrack.
    """

    y: torch.Tensor
    history: list[float] = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    work: list[int] = field(default_factory=list)


def _objective(logs: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """:math:`F(y) = -\\frac1N\\sum_i \\ln\\sigma_i^\\top y_i - \\lambda\\sum_k u_k\\ln\\bar y_k`."""
    fit = -torch.logsumexp(logs + torch.log(y), dim=-1).mean()
    if lam == 0:
        return fit
    return fit - lam * torch.log(y.mean(0)).mean()


def _gradient(sigma: torch.Tensor, logs: torch.Tensor, y: torch.Tensor, lam: float) -> torch.Tensor:
    """:math:`\\partial F/\\partial y_{ik} = -\\frac1N(\\sigma_{ik}/\\sigma_i^\\top y_i
    + \\lambda u_k/\\bar y_k)`."""
    return _objective_and_gradient(sigma, logs, y, lam)[1]


def _objective_and_gradient(
    sigma: torch.Tensor, logs: torch.Tensor, y: torch.Tensor, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """:math:`F(y)` and :math:`\\nabla F(y)` sharing the row logsumexp and the class means."""
    n, k = y.shape
    logp = torch.logsumexp(logs + torch.log(y), dim=-1, keepdim=True)  # ln sigma_i . y_i
    g = torch.exp(logs - logp)
    f = -logp.mean()
    if lam != 0:
        ybar = y.mean(0, keepdim=True)
        f = f - lam * torch.log(ybar).mean()
        g = g.add_((lam / k) / ybar)
    return f, g.div_(-n)


def _prepare(
    probs: object, y0: object, lam: float, validate: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    check_inputs(D.EM_PSEUDO_LABELS, validate, probs=probs, y0=y0)
    assert isinstance(probs, torch.Tensor)
    dt = compute_dtype(probs)
    sigma = probs.to(dt).contiguous()  # the solvers update iterates in place and flatten them
    if y0 is None:
        y = sigma.clone()
        yname = "probs (the default y0)"
    else:
        assert isinstance(y0, torch.Tensor)
        y = y0.to(dt).contiguous().clone()
        yname = "y0"
    if values_checked(validate):
        if bool(((sigma * y).sum(-1) <= 0).any()):
            raise ValueError(
                f"{yname} rows must overlap the probs rows (sigma_i . y_i > 0), else F = +inf"
            )
        if lam > 0 and bool((y.sum(0) <= 0).any()):
            raise ValueError(
                f"{yname} must give every class positive mass when lam > 0 "
                "(a class with mean 0 makes F = +inf and stays at 0)"
            )
    return sigma, torch.log(sigma), y


def _em_step(
    logs: torch.Tensor, ly: torch.Tensor, lam: float, floor: float, zeros: torch.Tensor | None
) -> tuple[torch.Tensor, float]:
    """One E+M step on ``ly = ln y`` (rows normalised): ``(ln M(y), F(y))``.

    E-step :math:`T_i = \\operatorname{softmax}(\\ln\\sigma_i + \\ln y_i)` (max-shifted; its
    log-normaliser is :math:`\\ln\\sigma_i^\\top y_i`, so :math:`F(y)` costs no extra pass),
    :math:`S = y/\\sum_j y_j`, M-step :math:`\\ln\\big((T + \\lambda N u S)/Z\\big)`. The
    returned logs are floored at ``floor`` (:math:`\\ln\\sqrt{\\text{tiny}}`, 1e-154 in
    float64), so every :math:`y_{ik} = e^{\\ln y_{ik}}` lies in :math:`[\\text{floor}, 1]`: the
    column sums neither overflow nor underflow and no subnormal is ever formed (subnormal
    arithmetic is ~100x slower on x86). ``zeros`` (the zeros of ``y0``) are kept at
    :math:`-\\infty`, exactly as the unfloored EM map keeps them.
    """
    n, k = ly.shape
    s = logs + ly
    m = s.amax(-1, keepdim=True)
    t = s.sub_(m).exp_()
    z = t.sum(-1, keepdim=True)
    f = -(z.log() + m).mean()  # -mean_i ln sigma_i . y_i
    t.div_(z)  # E-step, T
    if lam != 0:
        y = ly.exp()
        col = y.sum(0, keepdim=True)  # in [floor, N]: no overflow, no underflow
        f = f - (lam / k) * (col.log() - math.log(n)).sum()
        t = y.div_(col).mul_(lam * n / k).add_(t)  # T + lam N u S
        t.div_(t.sum(-1, keepdim=True))  # M-step
    out = t.log_().clamp_min_(floor)
    if zeros is not None:
        out.masked_fill_(zeros, -math.inf)
    return out, float(f)


def em_pseudo_labels(
    probs: torch.Tensor,
    *,
    lam: float,
    y0: torch.Tensor | None = None,
    tol: float = 1e-9,
    max_iter: int = 1000,
    accelerate: bool = True,
    validate: bool = True,
) -> EMResult:
    r"""EM (majorise-minimise) solver for the pseudo-labels of the self-labeling loss
    (**reconstructed**, research note ``collision_ce.md`` §3), SQUAREM-accelerated by default.

    Minimises over :math:`y_i \in \Delta_K` (``probs`` :math:`=\sigma` fixed)

    .. math::
        F(y) = -\frac1N \sum_i \ln \sigma_i^\top y_i - \lambda \sum_k u_k \ln \bar y_k ,

    which is :func:`self_labeling_loss` in :math:`y` up to the constant :math:`-\lambda\ln K`.
    One EM step :math:`y \mapsto M(y)`:

    * **E-step** (tight Jensen bounds): :math:`T_i = \sigma_i\odot y_i / \sigma_i^\top y_i`
      (a max-shifted softmax of :math:`\ln\sigma_i + \ln y_i`),
      :math:`S_{ik} = y_{ik}/\sum_j y_{jk}` (column-normalised :math:`y`);
    * **M-step** (closed form, Lagrange/Gibbs):
      :math:`y_{ik} \leftarrow (T_{ik} + \lambda N u_k S_{ik}) / (1 + \lambda N \sum_c u_c S_{ic})`
      (the denominator is evaluated as the row sum of the numerator, equal since
      :math:`\sum_k T_{ik} = 1`).

    Equivalently :math:`y_{ik} \leftarrow y_{ik}\,g_{ik}/\mu_i` with :math:`g = \nabla F`,
    :math:`\mu_i = \sum_k y_{ik} g_{ik}`: interior fixed points satisfy the KKT conditions.
    :math:`F` never increases; zeros of ``y0`` stay zero, so initialise in the interior
    (the default :math:`y^{(0)} = \sigma`) to reach the global optimum of the convex :math:`F`.
    The iterate is held as :math:`\ln y`, floored at :math:`\ln\sqrt{\text{tiny}}` (an entry
    below :math:`10^{-154}` in float64 is 0 for every purpose; the floor keeps the arithmetic
    free of subnormals and :math:`\ln 0`).

    ``accelerate=False`` iterates :math:`M`: one E+M step per iteration. Near an optimum on
    the boundary of the simplex (peaked :math:`\sigma`) that is slow: an entry that should
    vanish only shrinks by a constant factor per step, i.e. :math:`\ln y_{ik}` drifts
    linearly. ``accelerate=True`` (default) extrapolates the drift with SQUAREM (Varadhan &
    Roland 2008, *Scand. J. Stat.* 35:335, scheme S3) on :math:`x = \ln y`:
    :math:`x_1 = M(x_0)`, :math:`x_2 = M(x_1)`, :math:`r = x_1 - x_0`,
    :math:`v = x_2 - 2x_1 + x_0`, :math:`\alpha = \min(\max(\|r\|/\|v\|, 1), a_{max})`,
    :math:`x' = x_0 + 2\alpha r + \alpha^2 v` (rows renormalised); :math:`\alpha = 1` gives
    :math:`x' = x_2`, i.e. two plain EM steps. Safeguard: :math:`x'` is accepted only if
    :math:`F(x') \le F(x_1)`; otherwise :math:`\alpha` and :math:`a_{max}` are divided by 4
    and :math:`x'` recomputed, down to :math:`\alpha = 1` (:math:`F(x_2) \le F(x_1)` by the MM
    property), so the accepted :math:`F` never increases either. :math:`a_{max}` starts at 1
    and doubles after a full step (:math:`\alpha = a_{max}`) is accepted. An iteration costs
    two E+M steps, plus one per backtrack, counted in ``EMResult.work``.

    Stops when the relative decrease :math:`(F_{t-1} - F_t)/|F_{t-1}| \le` ``tol`` (an increase,
    possible only by rounding, also stops it) or after ``max_iter`` iterations. This is a stall
    test, not an optimality certificate; :func:`pseudo_label_gap` bounds
    :math:`F(y) - \min F`. Vectorised over the batch; one host sync per E+M step. Computes in
    ``compute_dtype(probs)`` (use float64 for tight tolerances).
    """
    lam_f = check_number(D.LAM, lam)
    tol_f = check_number(D.TOL, tol)
    n_iter = check_int_param(D.MAX_ITER, max_iter)
    check_bool(accelerate, "accelerate")
    _, logs, y = _prepare(probs, y0, lam_f, validate)
    floor = 0.5 * math.log(torch.finfo(y.dtype).tiny)
    ly = torch.log(y)
    zeros = torch.isneginf(ly)
    zmask = zeros if bool(zeros.any()) else None
    ly.clamp_min_(floor)
    if zmask is not None:
        ly.masked_fill_(zmask, -math.inf)

    def step(x: torch.Tensor) -> tuple[torch.Tensor, float]:
        return _em_step(logs, x, lam_f, floor, zmask)

    nxt, f = step(ly)
    history, work = [f], [1]
    converged = False
    a_max = 1.0
    for _ in range(n_iter):
        if not accelerate:
            ly = nxt
            nxt, f = step(ly)
            work.append(work[-1] + 1)
        else:
            l1 = nxt
            l2, f1 = step(l1)
            r, v = l1 - ly, l2 - l1
            v.sub_(r)
            if zmask is not None:  # -inf - -inf
                r.masked_fill_(zmask, 0.0)
                v.masked_fill_(zmask, 0.0)
            rr, vv = torch.stack(
                (torch.dot(r.reshape(-1), r.reshape(-1)), torch.dot(v.reshape(-1), v.reshape(-1)))
            ).tolist()
            alpha = min(max(math.sqrt(rr / vv) if vv > 0 else a_max, 1.0), a_max)
            steps = 2
            while True:
                if alpha == 1.0:
                    lx = l2
                else:
                    lx = torch.add(ly, r, alpha=2 * alpha).add_(v, alpha=alpha * alpha)
                    lx.sub_(torch.logsumexp(lx, dim=-1, keepdim=True)).clamp_min_(floor)
                    if zmask is not None:
                        lx.masked_fill_(zmask, -math.inf)
                nx, fx = step(lx)
                if alpha == 1.0 or (math.isfinite(fx) and fx <= f1):
                    break
                alpha, a_max, steps = max(1.0, alpha / 4), max(1.0, a_max / 4), steps + 1
            if alpha == a_max:
                a_max *= 2.0
            ly, nxt, f = lx, nx, fx
            work.append(work[-1] + steps)
        f_old = history[-1]
        history.append(f)
        if f_old - f <= tol_f * abs(f_old):
            converged = True
            break
    return EMResult(torch.exp(ly).to(probs.dtype), history, len(history) - 1, converged, work)


def project_simplex(v: torch.Tensor) -> torch.Tensor:
    r"""Exact Euclidean projection of each row (last dimension) onto the probability simplex.

    .. math:: \Pi(v) = \arg\min_{x \in \Delta_K} \|x - v\|_2 = \max(v - \theta, 0),

    with :math:`\theta = (\sum_{j\le\rho} v_{(j)} - 1)/\rho`, :math:`v_{(1)}\ge v_{(2)}\ge\dots`
    sorted and :math:`\rho = \max\{j : v_{(j)} - (\sum_{i\le j} v_{(i)} - 1)/j > 0\}`
    (sort-based algorithm; Held, Wolfe & Crowder 1974, Duchi et al. 2008). Vectorised over all
    leading dimensions, ``O(K log K)`` per row, no Python loop. NaN propagates.

    Numerics: computed in ``compute_dtype(v)`` (at least float32), returned in ``v``'s dtype,
    on the row shifted by its maximum, :math:`w = v - \max_k v_k`, since
    :math:`\Pi(v) = \Pi(v - c\mathbf 1)` for every constant :math:`c`. Without the shift,
    :math:`v_{(1)} - (v_{(1)} - 1)` rounds to 0 once :math:`v_{(1)}` exceeds :math:`2/\epsilon`
    (``[[3e8]]`` in float32 gave ``[[0.]]``); with it the largest entry is exactly 0 and the
    result keeps full relative precision.
    """
    check_float(v, "v")
    if v.dim() == 0 or v.shape[-1] == 0:
        raise ValueError(f"v must have a non-empty last dimension, got shape {tuple(v.shape)}")
    dt = compute_dtype(v)
    x = v.to(dt)
    w = x - x.amax(dim=-1, keepdim=True)  # <= 0, max exactly 0 (NaN rows stay NaN)
    u, _ = torch.sort(w, dim=-1, descending=True)
    css = u.cumsum(-1) - 1
    ind = torch.arange(1, v.shape[-1] + 1, dtype=dt, device=v.device)
    cond = (u - css / ind) > 0
    rho = cond.sum(-1, keepdim=True).clamp(min=1)  # cond is a prefix; rho >= 1 always holds
    theta = css.gather(-1, rho - 1) / rho.to(dt)
    return torch.clamp(w - theta, min=0).to(v.dtype)


def pgd_pseudo_labels(
    probs: torch.Tensor,
    *,
    lam: float,
    step: float,
    y0: torch.Tensor | None = None,
    tol: float = 1e-9,
    max_iter: int = 1000,
    validate: bool = True,
) -> EMResult:
    r"""Projected-gradient baseline for the same problem as :func:`em_pseudo_labels`.

    :math:`y \leftarrow \Pi_{\Delta}(y - \eta\,\nabla F(y))` row-wise with the exact simplex
    projection :func:`project_simplex` and a fixed step :math:`\eta` = ``step``. The gradient
    entries scale like :math:`1/N`, so a workable step scales like :math:`N`; too large a step
    oscillates or leaves the domain (:math:`\sigma_i^\top y_i = 0` or :math:`\bar y_k = 0`).

    Stops when :math:`|F_{t-1} - F_t| \le` ``tol`` :math:`\cdot |F_{t-1}|` (``converged=True``),
    after ``max_iter`` iterations, or when a step would make :math:`F` non-finite (that step is
    rejected and ``converged=False``). Unlike EM, :math:`F` need not decrease monotonically.
    """
    lam_f = check_number(D.LAM, lam)
    eta = check_number(D.STEP, step)
    tol_f = check_number(D.TOL, tol)
    n_iter = check_int_param(D.MAX_ITER, max_iter)
    sigma, logs, y = _prepare(probs, y0, lam_f, validate)
    f, g = _objective_and_gradient(sigma, logs, y, lam_f)
    history, work = [float(f)], [0]
    converged = False
    for _ in range(n_iter):
        y_new = project_simplex(y.add(g, alpha=-eta))
        f_t, g_new = _objective_and_gradient(sigma, logs, y_new, lam_f)
        f_new = float(f_t)
        if not math.isfinite(f_new):
            break
        f_old = history[-1]
        y, g = y_new, g_new
        history.append(f_new)
        work.append(work[-1] + 1)
        if abs(f_old - f_new) <= tol_f * abs(f_old):
            converged = True
            break
    return EMResult(y.to(probs.dtype), history, len(history) - 1, converged, work)


def _check_probs_y(probs: object, y: object, validate: bool) -> tuple[torch.Tensor, torch.Tensor]:
    check_inputs(D.PSEUDO_LABELS, validate, probs=probs, y=y)
    assert isinstance(probs, torch.Tensor) and isinstance(y, torch.Tensor)
    dt = compute_dtype(probs, y)
    return probs.to(dt), y.to(dt)


def pseudo_label_objective(
    probs: torch.Tensor, y: torch.Tensor, *, lam: float, validate: bool = True
) -> torch.Tensor:
    r"""The pseudo-label objective :math:`F(y)` of :func:`em_pseudo_labels` (**reconstructed**),
    a 0-d tensor in the compute dtype (``+inf`` outside its domain)."""
    lam_f = check_number(D.LAM, lam)
    sigma, yy = _check_probs_y(probs, y, validate)
    return _objective(torch.log(sigma), yy, lam_f)


def pseudo_label_gradient(
    probs: torch.Tensor, y: torch.Tensor, *, lam: float, validate: bool = True
) -> torch.Tensor:
    r""":math:`\nabla_y F`, entries :math:`-\frac1N(\sigma_{ik}/\sigma_i^\top y_i
    + \lambda u_k/\bar y_k)`."""
    lam_f = check_number(D.LAM, lam)
    sigma, yy = _check_probs_y(probs, y, validate)
    return _gradient(sigma, torch.log(sigma), yy, lam_f)


def pseudo_label_kkt_residual(
    probs: torch.Tensor, y: torch.Tensor, *, lam: float, validate: bool = True
) -> float:
    r"""Relative KKT residual of :math:`\min_{y_i\in\Delta_K} F(y)` at ``y``.

    With :math:`g = \nabla F` and :math:`\mu_i = \sum_k y_{ik} g_{ik}` (the multiplier that the
    KKT conditions force), returns
    :math:`\max_{i,k}\,[\,y_{ik}|g_{ik}-\mu_i| + \max(0, \mu_i - g_{ik})\,]/|\mu_i|`:
    complementary slackness plus dual feasibility; 0 exactly at a KKT point, which (:math:`F`
    convex, linear constraints) is a global minimiser.
    """
    lam_f = check_number(D.LAM, lam)
    sigma, yy = _check_probs_y(probs, y, validate)
    g = _gradient(sigma, torch.log(sigma), yy, lam_f)
    mu = (yy * g).sum(-1, keepdim=True)
    res = (yy * (g - mu).abs() + torch.clamp(mu - g, min=0)) / mu.abs()
    return float(res.max())


def pseudo_label_gap(
    probs: torch.Tensor, y: torch.Tensor, *, lam: float, validate: bool = True
) -> float:
    r"""Frank-Wolfe duality gap :math:`\sum_i(\mu_i - \min_k g_{ik})` with :math:`g = \nabla F`,
    :math:`\mu_i = \sum_k y_{ik}g_{ik}`: by convexity of :math:`F` it bounds the suboptimality,
    :math:`0 \le F(y) - \min F \le` gap (a certificate, not an estimate)."""
    lam_f = check_number(D.LAM, lam)
    sigma, yy = _check_probs_y(probs, y, validate)
    g = _gradient(sigma, torch.log(sigma), yy, lam_f)
    mu = (yy * g).sum(-1)
    return float((mu - g.min(-1).values).sum())
