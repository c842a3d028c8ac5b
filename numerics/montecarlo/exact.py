r"""Exact expectations for small cases, to test the Monte Carlo engine against.

Written independently of the torch simulators (mpmath / NumPy, from the formulas):

* discrete negatives (ranking NCE, sampled softmax, InfoNCE MI): the per-trial outputs depend only
  on the class-count vector :math:`N\sim\mathrm{Mult}(K,q)`, so the expectation is a finite sum
  over the :math:`\binom{K+C-1}{C-1}` compositions of K, weighted by
  :math:`K!\prod_c q_c^{N_c}/N_c!` (and over the positive's class);
* SupCon / SINCERE with discrete logit laws: a sum over the compositions of the K-1 other
  positives and of the N negatives over the support points;
* soft-target InfoNCE with mixup targets at K = 1 (two candidates): Gauss–Jacobi quadrature in
  the two mixing weights (Beta(b, b) weight), summed over the class pairs;
* log-mean-exp of lognormal weights at K <= 2: Gauss–Hermite quadrature.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from mpmath import mp

from softnce_theory.numerics.montecarlo.mi import MIDiscrete
from softnce_theory.numerics.montecarlo.nce import LogMeanExp, RankingNCE, SampledSoftmax
from softnce_theory.numerics.montecarlo.soft_target import SoftTarget
from softnce_theory.numerics.montecarlo.supcon import SupConComposition

DPS = 30


def compositions(k: int, c: int) -> Iterator[tuple[int, ...]]:
    """All tuples of ``c`` non-negative integers summing to ``k``."""
    if c == 1:
        yield (k,)
        return
    for first in range(k + 1):
        for rest in compositions(k - first, c - 1):
            yield (first, *rest)


def multinomial_pmf(counts: Sequence[int], probs: Sequence[Any]) -> Any:
    """:math:`K!\\prod_c p_c^{n_c}/n_c!` at the current mpmath precision."""
    out = mp.factorial(sum(counts))
    for n, p in zip(counts, probs, strict=True):
        out *= mp.mpf(p) ** n / mp.factorial(n)
    return out


def ranking_nce_exact(cfg: RankingNCE, k: int) -> list[float]:
    """E[L_K - log K - L_inf] and E[pi_hat - pi] by enumeration (outputs of ``ranking_nce``)."""
    with mp.workdps(DPS):
        o = [mp.mpf(x) for x in cfg.logits]
        q = [mp.mpf(x) for x in cfg.noise]
        s = [oc - mp.log(qc) for oc, qc in zip(o, q, strict=True)] if cfg.log_q_correction else o
        w = [mp.exp(x) for x in s]
        mu = mp.fsum(qc * wc for qc, wc in zip(q, w, strict=True))
        pi = [qc * wc / mu for qc, wc in zip(q, w, strict=True)]
        if cfg.data is None:
            e = [mp.exp(x) for x in o]
            p = [x / mp.fsum(e) for x in e]
        else:
            p = [mp.mpf(x) for x in cfg.data]
        c = len(o)
        out = [mp.zero] * (c + 1)
        for counts in compositions(k, c):
            pr = multinomial_pmf(counts, q)
            sneg = mp.fsum(n * wc for n, wc in zip(counts, w, strict=True))
            for y0 in range(c):
                if p[y0] == 0:
                    continue
                z = w[y0] + sneg
                wt = pr * p[y0]
                out[0] += wt * (mp.log(z / k) - mp.log(mu))
                for j in range(c):
                    num = counts[j] * w[j] + (w[y0] if j == y0 else 0)
                    out[j + 1] += wt * (num / z - pi[j])
        return [float(x) for x in out]


def sampled_softmax_exact(cfg: SampledSoftmax, k: int) -> list[float]:
    """E[log Z_hat - log Z] and E[p_hat - p] by enumeration (outputs of ``sampled_softmax``)."""
    with mp.workdps(DPS):
        o = [mp.mpf(x) for x in cfg.logits]
        q = [mp.mpf(x) for x in cfg.noise]
        w = [mp.exp(oc) / qc for oc, qc in zip(o, q, strict=True)]
        z = mp.fsum(mp.exp(x) for x in o)
        p = [mp.exp(x) / z for x in o]
        c = len(o)
        out = [mp.zero] * (c + 1)
        for counts in compositions(k, c):
            pr = multinomial_pmf(counts, q)
            s = mp.fsum(n * wc for n, wc in zip(counts, w, strict=True))
            out[0] += pr * (mp.log(s / k) - mp.log(z))
            for j in range(c):
                out[j + 1] += pr * (counts[j] * w[j] / s - p[j])
        return [float(x) for x in out]


def mi_discrete_exact(cfg: MIDiscrete, k: int) -> list[float]:
    """E[I - (log r(x1, y1) - log Z_K)] by enumeration over (x1, y1) and negative counts."""
    with mp.workdps(DPS):
        p = [[mp.mpf(v) for v in row] for row in cfg.joint]
        tot = mp.fsum(v for row in p for v in row)
        p = [[v / tot for v in row] for row in p]
        px = [mp.fsum(row) for row in p]
        py = [mp.fsum(col) for col in zip(*p, strict=True)]
        r = [[p[i][j] / (px[i] * py[j]) for j in range(len(py))] for i in range(len(px))]
        gap = mp.zero
        comps = [(c, multinomial_pmf(c, py)) for c in compositions(k - 1, len(py))]
        for i in range(len(px)):
            for j in range(len(py)):
                if p[i][j] == 0:
                    continue
                for counts, pr in comps:
                    s = mp.fsum(n * r[i][jj] for jj, n in enumerate(counts))
                    gap += p[i][j] * pr * mp.log((r[i][j] + s) / k)
        # E[I - log r1 + log Z_K] = E log Z_K because E log r1 = I
        return [float(gap)]


def supcon_exact(cfg: SupConComposition, k: int) -> list[float]:
    """The six ``supcon`` outputs for discrete logit laws, by enumeration over compositions."""
    if (
        cfg.pos_values is None
        or cfg.neg_values is None
        or cfg.pos_probs is None
        or cfg.neg_probs is None
    ):
        raise ValueError("supcon_exact needs discrete laws (pos_values/probs and neg_values/probs)")
    with mp.workdps(DPS):
        pv = [mp.mpf(x) for x in cfg.pos_values]
        nv = [mp.mpf(x) for x in cfg.neg_values]
        s_star = mp.mpf(cfg.closest_logit)
        e_star = mp.exp(s_star)
        kk = mp.mpf(k)
        out = [mp.zero] * 6
        neg_comps = [
            (c, multinomial_pmf(c, cfg.neg_probs)) for c in compositions(cfg.n_negatives, len(nv))
        ]
        for pc in compositions(k - 1, len(pv)):
            ppr = multinomial_pmf(pc, cfg.pos_probs)
            u = mp.fsum(n * mp.exp(v) for n, v in zip(pc, pv, strict=True))
            ssum = mp.fsum(n * v for n, v in zip(pc, pv, strict=True))
            for nc, npr in neg_comps:
                wt = ppr * npr
                v_sum = mp.fsum(n * mp.exp(v) for n, v in zip(nc, nv, strict=True))
                d = e_star + u + v_sum
                sc_loss = mp.log(d) - (s_star + ssum) / kk
                sc_gc = e_star / d - 1 / kk
                sc_gm = ((e_star + u) / d - 1) / kk
                si_l = mp.log(e_star + v_sum) - s_star
                si_g = e_star / (e_star + v_sum) - 1
                si_gsum = si_g
                for n, v in zip(pc, pv, strict=True):
                    si_l += n * (mp.log(mp.exp(v) + v_sum) - v)
                    si_gsum += n * (mp.exp(v) / (mp.exp(v) + v_sum) - 1)
                vals = [sc_loss, sc_gc, sc_gm, si_l / kk, si_g / kk, si_gsum / kk**2]
                for idx, val in enumerate(vals):
                    out[idx] += wt * val
        return [float(x) for x in out]


def soft_target_mixup_exact_k1(cfg: SoftTarget, nodes: int = 40) -> list[float]:
    """The ``soft_target`` outputs at K = 1 (positive + one negative) for mixup targets, by
    Gauss–Jacobi quadrature over the two mixing weights and a sum over the class pairs."""
    from scipy.special import roots_jacobi

    if cfg.targets != "mixup":
        raise ValueError("soft_target_mixup_exact_k1 needs targets='mixup'")
    c = cfg.n_classes
    b = cfg.mixup_alpha
    x, wq = roots_jacobi(nodes, b - 1, b - 1)
    lam = (x + 1) / 2
    wq = wq / wq.sum()
    q = np.asarray(cfg.noise, dtype=np.float64)
    g = np.asarray(cfg.logits, dtype=np.float64) / cfg.temperature
    if cfg.log_q_correction:
        g = g - np.log(q)
    eps = cfg.smoothing
    # every candidate: (class a, class b, node) -> alpha vector (C,), probability weight
    cand_alpha = []
    cand_w = []
    eye = np.eye(c)
    for a, bb in itertools.product(range(c), range(c)):
        for lm, wt in zip(lam, wq, strict=True):
            al = lm * eye[a] + (1 - lm) * eye[bb]
            cand_alpha.append((1 - eps) * al + eps / c)
            cand_w.append(q[a] * q[bb] * wt)
    alpha = np.array(cand_alpha)  # (M, C)
    pw = np.array(cand_w)
    s = alpha @ g
    m_val = float(pw @ np.exp(s))
    grad_lim = (pw * np.exp(s)) @ alpha / m_val
    # pairs (positive, negative)
    s0, s1 = s[:, None], s[None, :]
    top = np.maximum(s0, s1)
    lse = top + np.log(np.exp(s0 - top) + np.exp(s1 - top))
    pair_w = pw[:, None] * pw[None, :]
    loss = float((pair_w * (lse - np.log(m_val))).sum())
    w0 = np.exp(s0 - lse)
    w1 = np.exp(s1 - lse)
    post = w0[..., None] * alpha[:, None, :] + w1[..., None] * alpha[None, :, :]
    grad = (np.einsum("ij,ijc->c", pair_w, post) - grad_lim) / cfg.temperature
    return [loss, *[float(v) for v in grad]]


def log_mean_exp_exact(cfg: LogMeanExp, k: int, nodes: int = 80) -> float:
    """E log((1/K) sum W_i) - log mu for lognormal W and K in {1, 2} (Gauss–Hermite)."""
    s = cfg.sigma
    if k == 1:
        return -(s**2) / 2
    if k != 2:
        raise ValueError("log_mean_exp_exact supports K = 1 or 2")
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    a, b = s * x[:, None], s * x[None, :]
    top = np.maximum(a, b)
    val = top + np.log((np.exp(a - top) + np.exp(b - top)) / 2)
    return float((w[:, None] * w[None, :] * val).sum() - s**2 / 2)
