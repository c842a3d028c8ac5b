r"""mpmath oracles for soft-target InfoNCE (Hugger & Uhlmann 2024, arXiv 2404.14076).

Written from the formula of the research note (§1.2), not from the torch code:

.. math::
    g_{ic} = f_{ic}/t - \log q_c,\qquad S_{ij} = \sum_c \alpha_{jc}\, g_{ic},\qquad
    \ell_i = \log\sum_{j=1}^{M} e^{S_{ij}} - S_{i,\pi(i)},\quad \pi(i) = \mathrm{offset} + i,

:math:`L = \frac1N\sum_i \ell_i`, and its gradient
:math:`\partial L/\partial f_{ic} =
\frac{1}{Nt}\bigl(\sum_j w_{ij}\alpha_{jc} - \alpha_{\pi(i)c}\bigr)`,
:math:`w_{ij} = \mathrm{softmax}_j S_{ij}`.

Conventions: ``noise_probs=None`` means **no correction term** (:math:`\log q \equiv 0`), which for
simplex candidates equals the uniform prior (claim ``uniform_noise_noop``); a class with
:math:`q_c = 0` is dropped when no candidate puts mass on it (:math:`0\cdot\log 0 := 0`) and is a
``ValueError`` otherwise.

Precision: :math:`\ell_i` is evaluated as :math:`\log\sum_j e^{d_{ij}}` with the gaps
:math:`d_{ij} = S_{ij} - S_{i\pi(i)} = \sum_c(\alpha_{jc}-\alpha_{\pi(i)c})g_{ic}` formed before
exponentiating and ``log1p`` when the positive dominates (an exact rearrangement), so a loss of
:math:`e^{-600}` next to scores of :math:`10^7` keeps all its digits at 50-digit precision; the
straight evaluation is :func:`loss_rows_direct` (checked against it in the gradient leg). The
gradient is likewise formed as :math:`\sum_j w_{ij}(\alpha_j - \alpha_{\pi(i)})`.

Also here: Ma & Collins' ranking NCE written as an independent loop (:func:`ranking_nce`), the
large-K limit :math:`-\langle\alpha_0,g\rangle + \log\mathbb E_\alpha e^{\langle\alpha,g\rangle}`
(:func:`large_k_limit`) and the exact expectation of :math:`\ell_K` for i.i.d. negatives from a
two-point target distribution (:func:`expected_loss_two_point`, binomial enumeration).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from mpmath import mp

import softnce_theory.derivations.soft_target_infonce as D
from softnce_theory.derivations import CheckConfig, LegRegistry, LegResult, Tally
from softnce_theory.numerics import cross_entropy as ce_oracle
from softnce_theory.numerics._definitions import definition_leg
from softnce_theory.numerics._mp import DEFAULT_DPS, lse, mat, mpf, vec, workdps

PRECISE = LegRegistry("precise")

# ----------------------------------------------------------------------------- oracle


def corrected_logits(
    logits: Any, noise_probs: Any | None, t: Any = 1
) -> tuple[list[list[Any]], list[bool]]:
    """:math:`g = f/t - \\log q` per row, and a per-class flag ``q_c == 0`` (those classes get
    no correction: they may only be used by candidates with zero mass there)."""
    f, tt = mat(logits), mpf(t)
    c = len(f[0])
    if noise_probs is None:
        logq = [mp.zero] * c
        zero = [False] * c
    else:
        q = vec(noise_probs)
        zero = [qc == 0 for qc in q]
        logq = [mp.zero if z else mp.log(qc) for qc, z in zip(q, zero, strict=True)]
    g = [[x / tt - lq for x, lq in zip(row, logq, strict=True)] for row in f]
    return g, zero


def _check_zero_mass(cands: list[list[Any]], zero: list[bool]) -> None:
    for j, a in enumerate(cands):
        for cls, (ac, z) in enumerate(zip(a, zero, strict=True)):
            if z and ac != 0:
                raise ValueError(
                    f"noise_probs[{cls}] is 0 but candidate {j} puts mass {float(ac):.3g} on it"
                )


def _setup(
    logits: Any, targets: Any, noise_probs: Any, t: Any, candidates: Any, offset: int
) -> tuple[list[list[Any]], list[list[Any]], list[int]]:
    g, zero = corrected_logits(logits, noise_probs, t)
    cands = mat(targets if candidates is None else candidates)
    _check_zero_mass(cands, zero)
    n = len(g)
    if offset < 0 or offset + n > len(cands):
        raise ValueError(f"offset {offset} out of range for N={n}, M={len(cands)}")
    return g, cands, [offset + i for i in range(n)]


def gap_rows(
    logits: Any,
    targets: Any,
    noise_probs: Any = None,
    t: Any = 1,
    candidates: Any = None,
    offset: int = 0,
) -> list[list[Any]]:
    """Score gaps :math:`d_{ij} = S_{ij} - S_{i\\pi(i)}
    = \\sum_c (\\alpha_{jc} - \\alpha_{\\pi(i)c}) g_{ic}`."""
    g, cands, pos = _setup(logits, targets, noise_probs, t, candidates, offset)
    out = []
    for gi, p in zip(g, pos, strict=True):
        ap = cands[p]
        out.append(
            [
                mp.fsum((ajc - apc) * gc for ajc, apc, gc in zip(aj, ap, gi, strict=True))
                for aj in cands
            ]
        )
    return out


def _row_loss(d: Sequence[Any], p: int) -> Any:
    top = max(d)
    if top > 0:
        return lse(d)
    # the positive (gap 0) is a maximum: log(1 + sum of the others), accurate when tiny
    return mp.log1p(mp.fsum(mp.exp(x) for j, x in enumerate(d) if j != p))


def loss_rows(
    logits: Any,
    targets: Any,
    noise_probs: Any = None,
    t: Any = 1,
    candidates: Any = None,
    offset: int = 0,
) -> list[Any]:
    """Per-row :math:`\\ell_i` (see the module docstring)."""
    d = gap_rows(logits, targets, noise_probs, t, candidates, offset)
    return [_row_loss(di, offset + i) for i, di in enumerate(d)]


def loss(
    logits: Any,
    targets: Any,
    noise_probs: Any = None,
    t: Any = 1,
    candidates: Any = None,
    offset: int = 0,
) -> Any:
    """Mean over local rows of :func:`loss_rows`."""
    rows = loss_rows(logits, targets, noise_probs, t, candidates, offset)
    return mp.fsum(rows) / len(rows)


def loss_rows_direct(
    logits: Any,
    targets: Any,
    noise_probs: Any = None,
    t: Any = 1,
    candidates: Any = None,
    offset: int = 0,
) -> list[Any]:
    """The formula as written: scores :math:`S_{ij}` first, then ``lse(S_i) - S_{i,pi(i)}``."""
    g, cands, pos = _setup(logits, targets, noise_probs, t, candidates, offset)
    out = []
    for gi, p in zip(g, pos, strict=True):
        s = [mp.fsum(ac * gc for ac, gc in zip(aj, gi, strict=True)) for aj in cands]
        out.append(lse(s) - s[p])
    return out


def grad(
    logits: Any,
    targets: Any,
    noise_probs: Any = None,
    t: Any = 1,
    candidates: Any = None,
    offset: int = 0,
) -> list[list[Any]]:
    """:math:`\\partial L/\\partial f_{ic} = \\frac{1}{Nt}\\sum_j w_{ij}(\\alpha_{jc} -
    \\alpha_{\\pi(i)c})` (equal to the note's form for :math:`\\sum_j w_{ij} = 1`)."""
    d = gap_rows(logits, targets, noise_probs, t, candidates, offset)
    cands = mat(targets if candidates is None else candidates)
    n, tt = len(d), mpf(t)
    out = []
    for i, di in enumerate(d):
        li = _row_loss(di, offset + i)
        w = [mp.exp(x - li) for x in di]
        ap = cands[offset + i]
        out.append(
            [
                mp.fsum(wj * (aj[c] - ap[c]) for wj, aj in zip(w, cands, strict=True)) / (n * tt)
                for c in range(len(ap))
            ]
        )
    return out


def weights(
    logits: Any,
    targets: Any,
    noise_probs: Any = None,
    t: Any = 1,
    candidates: Any = None,
    offset: int = 0,
) -> list[list[Any]]:
    """:math:`w_{ij} = \\mathrm{softmax}_j S_{ij}`."""
    d = gap_rows(logits, targets, noise_probs, t, candidates, offset)
    out = []
    for i, di in enumerate(d):
        li = _row_loss(di, offset + i)
        out.append([mp.exp(x - li) for x in di])
    return out


def ranking_nce(
    logits: Any,
    labels: Sequence[int],
    noise_probs: Any,
    t: Any = 1,
    candidate_labels: Sequence[int] | None = None,
    offset: int = 0,
) -> Any:
    r"""Ma & Collins (2018) ranking NCE, written as a loop over the noise labels.

    For input :math:`x_i` with true label :math:`y_{i0}` and noise labels :math:`y_{ik}` (here the
    other in-batch labels), with :math:`\bar s(x, y) = s(x, y) - \log p_N(y)` and
    :math:`s = f/t`: :math:`-\frac1N\sum_i \log\bigl(e^{\bar s(x_i,y_{i0})} / \sum_{k=0}^{K}
    e^{\bar s(x_i,y_{ik})}\bigr)`.
    """
    f, tt, pn = mat(logits), mpf(t), vec(noise_probs)
    cl = list(labels) if candidate_labels is None else list(candidate_labels)
    total = mp.zero
    for i, row in enumerate(f):
        y0 = cl[offset + i]

        def sbar(y: int, row: list[Any] = row) -> Any:
            return row[y] / tt - mp.log(pn[y])

        noise = [y for k, y in enumerate(cl) if k != offset + i]
        # -log(e^{sbar_0} / (e^{sbar_0} + sum_k e^{sbar_k})) = log(1 + sum_k e^{sbar_k - sbar_0});
        # mpmath's exponent range is unbounded, so no shift is needed, and log1p keeps a loss
        # of e^{-1000} exact
        total += mp.log1p(mp.fsum(mp.exp(sbar(y) - sbar(y0)) for y in noise))
    return total / len(f)


# ------------------------------------------------------------------- large-K (population) form


def large_k_limit(
    f_row: Any, alpha0: Any, support: Any, probs: Any, noise_probs: Any, t: Any = 1
) -> Any:
    r""":math:`-\langle\alpha_0, g\rangle + \log\sum_r p_r e^{\langle\alpha^{(r)}, g\rangle}` for
    negatives drawn from the discrete distribution :math:`\sum_r p_r\delta_{\alpha^{(r)}}`."""
    (g,), _ = corrected_logits([f_row], noise_probs, t)
    a0 = vec(alpha0)
    s = [mp.fsum(x * y for x, y in zip(a, g, strict=True)) for a in mat(support)]
    lp = [mp.log(p) for p in vec(probs)]
    return -mp.fsum(x * y for x, y in zip(a0, g, strict=True)) + lse(
        [x + y for x, y in zip(s, lp, strict=True)]
    )


def rate_coefficient(
    f_row: Any, alpha0: Any, support: Any, probs: Any, noise_probs: Any, t: Any = 1
) -> Any:
    r"""First-order coefficient :math:`c` of :math:`\mathbb E\ell_K - \log K - \ell_\infty = c/K +
    O(K^{-2})`: with :math:`W = e^{\langle\alpha, g\rangle}`, :math:`\mu = \mathbb E W`,
    :math:`\sigma^2 = \operatorname{Var} W`, :math:`c = e^{S_0}/\mu - \sigma^2/(2\mu^2)` (the
    positive's own term plus the delta-method bias of :math:`\log` of a sample mean, research note
    §6.5)."""
    (g,), _ = corrected_logits([f_row], noise_probs, t)
    s0 = mp.fsum(x * y for x, y in zip(vec(alpha0), g, strict=True))
    w = [mp.exp(mp.fsum(x * y for x, y in zip(a, g, strict=True))) for a in mat(support)]
    p = vec(probs)
    mu = mp.fsum(pi * wi for pi, wi in zip(p, w, strict=True))
    var = mp.fsum(pi * (wi - mu) ** 2 for pi, wi in zip(p, w, strict=True))
    return mp.exp(s0) / mu - var / (2 * mu**2)


def expected_loss_two_point(
    k: int, f_row: Any, alpha0: Any, support: Any, p: Any, noise_probs: Any, t: Any = 1
) -> Any:
    r""":math:`\mathbb E\,\ell_K` exactly, for :math:`K` i.i.d. negatives from
    :math:`p\,\delta_{\alpha^{(1)}} + (1-p)\,\delta_{\alpha^{(2)}}` and a fixed positive
    :math:`\alpha_0`: a sum over the binomial count :math:`n` of :math:`\alpha^{(1)}` draws of
    :math:`\log(e^{S_0} + n e^{S_1} + (K-n) e^{S_2}) - S_0`."""
    (g,), _ = corrected_logits([f_row], noise_probs, t)
    s0 = mp.fsum(x * y for x, y in zip(vec(alpha0), g, strict=True))
    s1, s2 = (mp.fsum(x * y for x, y in zip(a, g, strict=True)) for a in mat(support))
    # relative to e^{S_0}: log(1 + n e^{S_1-S_0} + (K-n) e^{S_2-S_0})
    e1, e2 = mp.exp(s1 - s0), mp.exp(s2 - s0)
    pp = mpf(p)
    pmf = (1 - pp) ** k  # P(n = 0)
    ratio = pp / (1 - pp)
    total = mp.zero
    for n in range(k + 1):
        if n:
            pmf = pmf * (k - n + 1) / n * ratio
        total += pmf * mp.log(1 + n * e1 + (k - n) * e2)
    return total


# ----------------------------------------------------------------------------- precise legs

FID = "soft_target_infonce"


def _rng(cfg: CheckConfig, name: str) -> np.random.Generator:
    return np.random.default_rng(cfg.seed_for(f"{FID}.{name}"))


def _simplex_mp(rows: Any) -> list[list[Any]]:
    """Rows normalised to sum to 1 exactly in mp (the float rows only sum to 1 within ~1e-16)."""
    out = []
    for r in mat(rows):
        s = mp.fsum(r)
        out.append([x / s for x in r])
    return out


def _targets(rng: np.random.Generator, m: int, c: int, kind: str | None = None) -> np.ndarray:
    kinds = ("onehot", "dirichlet", "mixup", "smoothed")
    kind = kind or kinds[int(rng.integers(len(kinds)))]
    y = rng.integers(0, c, size=m)
    eye = np.eye(c)
    if kind == "onehot":
        return eye[y]
    if kind == "mixup":
        lam = rng.beta(0.8, 0.8, size=(m, 1))
        return lam * eye[y] + (1 - lam) * eye[rng.integers(0, c, size=m)]
    if kind == "smoothed":
        return eye[y] * 0.9 + 0.1 / c
    return rng.dirichlet(np.full(c, 0.5), size=m)


def _case(rng: np.random.Generator, scale_max: float = 30.0) -> dict[str, Any]:
    n, c = int(rng.integers(1, 4)), int(rng.integers(2, 6))
    m = n + int(rng.integers(0, 3))
    off = int(rng.integers(0, m - n + 1))
    cands = _simplex_mp(_targets(rng, m, c))
    logits = rng.standard_normal((n, c)) * float(10 ** rng.uniform(-1, np.log10(scale_max)))
    q = rng.dirichlet(np.ones(c))
    t = float(10 ** rng.uniform(-1, 1))
    return {"n": n, "c": c, "m": m, "off": off, "cands": cands, "logits": logits, "q": q, "t": t}


def _loss_c(case: dict[str, Any], logits: Any = None, cands: Any = None, q: Any = "same") -> Any:
    return loss(
        case["logits"] if logits is None else logits,
        None,
        case["q"] if isinstance(q, str) else q,
        case["t"],
        candidates=case["cands"] if cands is None else cands,
        offset=case["off"],
    )


@PRECISE.register(f"{FID}.one_hot_ranking_nce")
def _one_hot_ranking(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "one_hot_ranking_nce")
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(24, 6)):
            n, c = int(rng.integers(1, 5)), int(rng.integers(2, 7))
            m = n + int(rng.integers(0, 3))
            off = int(rng.integers(0, m - n + 1))
            labels = rng.integers(0, c, size=m).tolist()
            logits = rng.standard_normal((n, c)) * float(10 ** rng.uniform(-1, 1.5))
            q = rng.dirichlet(np.ones(c))
            t = float(10 ** rng.uniform(-1, 1))
            onehot = [[1 if cls == y else 0 for cls in range(c)] for y in labels]
            got = loss(logits, None, q, t, candidates=onehot, offset=off)
            want = ranking_nce(logits, labels[off : off + n], q, t, labels, off)
            tally.close(got, want, f"case {k} (N={n}, M={m}, C={c}, t={t:.3g})")
    return tally.result("ST-InfoNCE oracle on one-hot targets vs an independent ranking-NCE loop")


@PRECISE.register(f"{FID}.gradient")
def _gradient(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "gradient")
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(6, 2)):
            case = _case(rng, scale_max=10.0)
            n, c = case["n"], case["c"]
            closed = grad(case["logits"], None, case["q"], case["t"], case["cands"], case["off"])
            numeric = []
            for i in range(n):
                for cls in range(c):

                    def f_ic(
                        x: Any, i: int = i, cls: int = cls, case: dict[str, Any] = case
                    ) -> Any:
                        rows = mat(case["logits"])
                        rows[i][cls] = x
                        return _loss_c(case, logits=rows)

                    numeric.append(mp.diff(f_ic, mpf(case["logits"][i][cls])))
            flat = [x for row in closed for x in row]
            tally.close_normwise(flat, numeric, f"case {k}: closed form vs mpmath.diff")
            direct = loss_rows_direct(
                case["logits"], None, case["q"], case["t"], case["cands"], case["off"]
            )
            accurate = loss_rows(
                case["logits"], None, case["q"], case["t"], case["cands"], case["off"]
            )
            tally.close_all(accurate, direct, f"case {k}: gap form vs direct lse(S) - S_pos")
    return tally.result(
        "closed form (1/(N t)) sum_j w_ij (alpha_j - alpha_pos) vs mpmath.diff of the oracle; "
        "oracle's gap evaluation vs the direct formula"
    )


@PRECISE.register(f"{FID}.shift_invariance_equal_mass")
def _shift(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "shift_invariance_equal_mass")
    tally = Tally("precise", rtol=1e-40, atol=1e-42, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(16, 4)):
            case = _case(rng)
            shifts = rng.standard_normal(case["n"]) * float(10 ** rng.uniform(-1, 3))
            shifted = [
                [mpf(x) + mpf(s) for x in row]
                for row, s in zip(case["logits"].tolist(), shifts, strict=True)
            ]
            # equal masses: the simplex, and a common non-unit mass mu
            mu = mpf(float(rng.uniform(0.2, 3.0))) if k % 2 else mpf(1)
            eq = [[mu * x for x in row] for row in case["cands"]]
            tally.close(
                _loss_c(case, logits=shifted, cands=eq), _loss_c(case, cands=eq), f"case {k}"
            )
    return tally.result("equal candidate masses: loss unchanged by per-row shifts up to 1e3")


def _row_case(rng: np.random.Generator, simplex: bool = True) -> dict[str, Any]:
    """One row (N = 1) with M candidates and the positive at ``off`` (index p = off + 1)."""
    c, m = int(rng.integers(2, 6)), int(rng.integers(1, 5))
    raw = _targets(rng, m, c)
    cands = _simplex_mp(raw) if simplex else mat((raw * rng.uniform(0.2, 3.0, (m, 1))).tolist())
    return {
        "c": c,
        "m": m,
        "off": int(rng.integers(m)),
        "cands": cands,
        "f": vec((rng.standard_normal(c) * float(10 ** rng.uniform(-1, 1))).tolist()),
        "q": vec(rng.dirichlet(np.ones(c)).tolist()),
        "t": mpf(float(10 ** rng.uniform(-1, 1))),
    }


def _row_loss_at(case: dict[str, Any], f: Any = None, t: Any = None) -> Any:
    return loss_rows(
        [case["f"] if f is None else f],
        None,
        case["q"],
        case["t"] if t is None else t,
        case["cands"],
        case["off"],
    )[0]


@PRECISE.register(f"{FID}.shift_curvature_mass_variance")
def _shift_curvature(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "shift_curvature_mass_variance")
    tally = Tally("precise", rtol=1e-25, atol=1e-40, dps=cfg.dps)
    n_changed = 0
    with workdps(cfg.dps):
        for k in range(cfg.points(12, 4)):
            case = _row_case(rng, simplex=False)  # unequal masses: a non-zero variance
            kap = mpf(float(rng.standard_normal()))

            def along(x: Any, case: dict[str, Any] = case) -> Any:
                return _row_loss_at(case, f=[fc + x for fc in case["f"]])

            numeric = mp.diff(along, kap, 2)
            w = weights(
                [[fc + kap for fc in case["f"]]],
                None,
                case["q"],
                case["t"],
                case["cands"],
                case["off"],
            )[0]
            mass = [mp.fsum(a) for a in case["cands"]]
            m1 = mp.fsum(wj * mj for wj, mj in zip(w, mass, strict=True))
            m2 = mp.fsum(wj * mj**2 for wj, mj in zip(w, mass, strict=True))
            closed = (m2 - m1**2) / case["t"] ** 2
            tally.close(closed, numeric, f"case {k}: M={case['m']}, kappa={float(kap):.3g}")
            # evidence for the 'only if' consequence: unequal masses, a large shift moves the loss
            if case["m"] >= 2 and max(mass) - min(mass) > mpf(10) ** -3:
                delta = max(abs(along(sg * 10**6 * case["t"]) - along(0)) for sg in (1, -1))
                tally.holds(delta - 1, f"case {k}: unequal masses, |dL| = {delta}")
                n_changed += 1
    return tally.result(
        "closed form sum_j w_j (mu_j - mubar)^2 / t^2 vs mpmath.diff (2nd order) of the oracle "
        "along f + kappa 1; unequal masses: a shift of +-1e6 t changes the loss by > 1",
        unequal_mass_cases=n_changed,
    )


@PRECISE.register(f"{FID}.gradient_zero_sum")
def _gradient_zero_sum(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "gradient_zero_sum")
    tally = Tally("precise", rtol=0, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(12, 4)):
            case = _row_case(rng)

            def along(x: Any, case: dict[str, Any] = case) -> Any:
                return _row_loss_at(case, f=[fc + x for fc in case["f"]])

            # sum_m d ell / d f_m is the derivative along the all-ones direction
            tally.close(mp.diff(along, 0), 0, f"case {k}: d/dkappa ell(f + kappa 1) at 0")
            closed = grad([case["f"]], None, case["q"], case["t"], case["cands"], case["off"])[0]
            tally.close(mp.fsum(closed), 0, f"case {k}: sum of the oracle gradient")
    return tally.result(
        "simplex candidates: mpmath.diff of the oracle along f + kappa 1 is 0, and the oracle "
        "gradient's class sum is 0 (50 digits)"
    )


@PRECISE.register(f"{FID}.temperature_gradient")
def _temperature_gradient(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "temperature_gradient")
    tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(12, 4)):
            case = _row_case(rng, simplex=bool(k % 2))
            w = weights([case["f"]], None, case["q"], case["t"], case["cands"], case["off"])[0]
            af = [
                mp.fsum(a * fc for a, fc in zip(aj, case["f"], strict=True)) for aj in case["cands"]
            ]
            closed = (af[case["off"]] - mp.fsum(wj * x for wj, x in zip(w, af, strict=True))) / (
                case["t"] ** 2
            )
            numeric = mp.diff(lambda tt, case=case: _row_loss_at(case, t=tt), case["t"])
            tally.close(closed, numeric, f"case {k}: M={case['m']}, t={float(case['t']):.3g}")
    return tally.result(
        "closed form (<alpha_p, f> - sum_j w_j <alpha_j, f>) / t^2 vs mpmath.diff of the oracle "
        "w.r.t. t (simplex and off-simplex targets)"
    )


@PRECISE.register(f"{FID}.uniform_noise_noop")
def _uniform(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "uniform_noise_noop")
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(16, 4)):
            case = _case(rng, scale_max=1e3)
            uni = [mpf(1) / case["c"]] * case["c"]
            tally.close(_loss_c(case, q=uni), _loss_c(case, q=None), f"case {k}")
    return tally.result("oracle with q = 1/C vs oracle with no log q term at all")


@PRECISE.register(f"{FID}.degenerate_batches")
def _degenerate(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "degenerate_batches")
    tally = Tally("precise", rtol=1e-45, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(16, 4)):
            case = _case(rng, scale_max=1e4)
            same = [case["cands"][0]] * case["m"]
            got = _loss_c(case, cands=same)
            tally.close(got, mp.log(case["m"]), f"case {k}: identical candidates, M={case['m']}")
    return tally.result("identical candidates give log M (oracle, 50 digits)")


@PRECISE.register(f"{FID}.single_candidate_zero")
def _single(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "single_candidate_zero")
    tally = Tally("precise", rtol=0, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(16, 4)):
            case = _row_case(rng, simplex=bool(k % 2))
            one = loss_rows([case["f"]], None, case["q"], case["t"], [case["cands"][0]])[0]
            tally.close(one, 0, f"case {k}: M = 1, C={case['c']}")
    return tally.result("a single candidate gives 0 (oracle; simplex and off-simplex targets)")


def _support_case(
    rng: np.random.Generator, c: int, r: int, hard: bool
) -> tuple[list[list[Any]], list[Any]]:
    if hard:
        sup = _simplex_mp(np.eye(c))
        probs = vec(rng.dirichlet(np.ones(c)))
    else:
        sup = _simplex_mp(_targets(rng, r, c, kind=("mixup", "dirichlet", "smoothed")[r % 3]))
        probs = vec(rng.dirichlet(np.ones(r)))
    return sup, probs


def _mean_target(sup: list[list[Any]], probs: list[Any]) -> list[Any]:
    return [mp.fsum(p * a[c] for p, a in zip(probs, sup, strict=True)) for c in range(len(sup[0]))]


@PRECISE.register(f"{FID}.large_k_hard_limit")
def _large_k_hard(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "large_k_hard_limit")
    tally = Tally("precise", rtol=1e-40, atol=1e-42, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(16, 4)):
            c = int(rng.integers(2, 8))
            sup, q = _support_case(rng, c, c, hard=True)  # candidates ~ q, one-hot
            f = rng.standard_normal(c) * float(10 ** rng.uniform(-1, 3))
            t = float(10 ** rng.uniform(-1, 1))
            y0 = int(rng.integers(c))
            lim = large_k_limit(f, sup[y0], sup, q, q, t)
            want = ce_oracle.nll([f.tolist()], [y0], t) + mp.log(q[y0])
            tally.close(lim, want, f"case {k} (C={c}, t={t:.3g})")
        # the finite-K expectation approaches it (exact binomial enumeration, C = 2)
        f2, q2 = [0.7, -0.4], [mpf("0.3"), mpf("0.7")]
        sup2 = [[1, 0], [0, 1]]
        lim2 = large_k_limit(f2, sup2[0], sup2, q2, q2)
        errs = []
        for kk in (64, 1024) if not cfg.quick else (64, 256):
            e = expected_loss_two_point(kk, f2, sup2[0], sup2, q2[0], q2) - mp.log(kk) - lim2
            errs.append(abs(e))
        tally.holds(errs[0] - errs[1], f"|E L_K - log K - limit| decreases: {errs}")
        tally.holds(mpf(1) / 64 - errs[1], f"within 1/64 at the largest K: {errs[-1]}")
    return tally.result(
        "limit -<e_y0, g> + log E_q e^{g_y} vs CE(f/t, y0) + log q_y0 (CE oracle); exact E L_K "
        "approaches it",
        gap_at_k=[float(e) for e in errs],
    )


@PRECISE.register(f"{FID}.large_k_soft_below_soft_ce")
def _large_k_soft(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "large_k_soft_below_soft_ce")
    tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=cfg.dps)
    min_soft_gap = mp.inf
    with workdps(cfg.dps):
        for k in range(cfg.points(16, 4)):
            c = int(rng.integers(2, 7))
            hard = k % 4 == 0
            r = int(rng.integers(2, 6))
            sup, probs = _support_case(rng, c, r, hard=hard)
            q = _mean_target(sup, probs)  # E[alpha] = q
            if any(x == 0 for x in q):
                continue
            f = rng.standard_normal(c) * float(10 ** rng.uniform(-1, 1.5))
            t = float(10 ** rng.uniform(-1, 1))
            a0 = sup[int(rng.integers(len(sup)))]
            lim = large_k_limit(f, a0, sup, probs, q, t)
            bound = ce_oracle.soft_ce([f.tolist()], [a0], t) + mp.fsum(
                a * mp.log(qc) for a, qc in zip(a0, q, strict=True) if a != 0
            )
            gap = bound - lim
            tally.holds(gap + mpf(10) ** -40, f"case {k}: {'one-hot' if hard else 'soft'}, {gap}")
            if not hard:
                min_soft_gap = min(min_soft_gap, gap)
        # the research note's example: mixup-like Beta(0.8, 0.8) pairs + smoothing, 10 classes
        c = 10
        m = cfg.points(200, 60)
        y1, y2 = rng.integers(0, c, size=m), rng.integers(0, c, size=m)
        lam = rng.beta(0.8, 0.8, size=(m, 1))
        eye = np.eye(c)
        sup_np = 0.9 * (lam * eye[y1] + (1 - lam) * eye[y2]) + 0.1 / c
        sup = _simplex_mp(sup_np)
        probs = [mpf(1) / m] * m
        q = _mean_target(sup, probs)
        f = rng.standard_normal(c) * 2
        lim = large_k_limit(f, sup[0], sup, probs, q)
        bound = ce_oracle.soft_ce([f.tolist()], [sup[0]], 1) + mp.fsum(
            a * mp.log(qc) for a, qc in zip(sup[0], q, strict=True)
        )
        tally.holds(bound - lim, f"mixup+smoothing example: gap {bound - lim}")
    return tally.result(
        "large-K limit <= soft CE + <alpha0, log q> with E[alpha] = q (oracles, 50 digits), "
        "one-hot and soft supports; min_soft_gap: the smallest gap over the soft cases",
        min_soft_gap=float(min_soft_gap),
        mixup_example={"limit": float(lim), "soft_ce_plus_const": float(bound)},
    )


def _rate_study(
    f: Any, a0: Any, sup: Any, p: Any, q: Any, ks: Sequence[int]
) -> tuple[list[Any], list[float], Any]:
    probs = [mpf(p), 1 - mpf(p)]
    lim = large_k_limit(f, a0, sup, probs, q)
    coef = rate_coefficient(f, a0, sup, probs, q)
    errs = [expected_loss_two_point(k, f, a0, sup, p, q) - mp.log(k) - lim for k in ks]
    slopes = [
        float(mp.log(abs(errs[i + 1] / errs[i])) / mp.log(mpf(ks[i + 1]) / ks[i]))
        for i in range(len(ks) - 1)
    ]
    return errs, slopes, coef


@PRECISE.register(f"{FID}.large_k_rate")
def _large_k_rate(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=0.02, atol=0, dps=cfg.dps)
    ks = [16, 64, 256, 1024] if not cfg.quick else [16, 64, 256]
    extra: dict[str, Any] = {}
    with workdps(cfg.dps):
        cases: dict[str, tuple[Any, Any, Any, Any, Any]] = {
            # hard targets, candidates drawn from q (C = 2)
            "hard": ([0.7, -0.4], [1, 0], [[1, 0], [0, 1]], "0.3", ["0.3", "0.7"]),
            # soft: two mixup-like targets over 3 classes, q = E[alpha]
            "soft": (
                [1.2, -0.3, 0.5],
                ["0.6", "0.4", "0"],
                [["0.6", "0.4", "0"], ["0", "0.3", "0.7"]],
                "0.5",
                ["0.3", "0.35", "0.35"],
            ),
        }
        for name, (f, a0, sup, p, q) in cases.items():
            errs, slopes, coef = _rate_study(f, vec(a0), mat(sup), mpf(p), vec(q), ks)
            k_last = ks[-1]
            # observed rate: log-log slope -> -1; K * error -> predicted coefficient
            tally.close(slopes[-1], -1.0, f"{name}: log-log slope between K={ks[-2]},{k_last}")
            tally.close(k_last * errs[-1], coef, f"{name}: K * (E L_K - log K - limit)")
            extra[name] = {
                "K": ks,
                "error": [float(e) for e in errs],
                "slopes": slopes,
                "K_times_error": [float(k * e) for k, e in zip(ks, errs, strict=True)],
                "predicted_coefficient": float(coef),
            }
    return tally.result(
        "exact E[L_K] (binomial enumeration, 50 digits) - log K - limit: log-log slope -1 and "
        "K * error -> e^{S0}/mu - Var(e^S)/(2 mu^2) within 2% at the largest K",
        **extra,
    )


@PRECISE.register(f"{FID}.nonnegative")
def _nonneg(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "nonnegative")
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(24, 6)):
            case = _case(rng, scale_max=1e4)
            rows = loss_rows(case["logits"], None, case["q"], case["t"], case["cands"], case["off"])
            for i, li in enumerate(rows):
                tally.holds(li, f"case {k} row {i}")
    return tally.result("every row loss >= 0 (oracle, logits up to 1e4)")


@PRECISE.register(f"{FID}.positive_several_candidates")
def _positive(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "positive_several_candidates")
    tally = Tally("precise", rtol=0, atol=0, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(24, 6)):
            case = _case(rng, scale_max=1e4)
            if case["m"] < 2:  # the claim is about M >= 2: add a candidate
                case["cands"] = case["cands"] + [case["cands"][0]]
                case["m"] += 1
            rows = loss_rows(case["logits"], None, case["q"], case["t"], case["cands"], case["off"])
            for i, li in enumerate(rows):
                # checked in mp, where a loss below 1e-308 is still > 0
                if li > 0:
                    tally.holds(li, f"case {k} row {i}")
                else:
                    tally.fail(f"case {k} row {i}: loss {li} is not > 0 with M = {case['m']}")
    return tally.result("every row loss > 0 (mpmath) when M >= 2, logits up to 1e4")


@PRECISE.register(f"{FID}.zero_noise_masking")
def _zero_noise(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "zero_noise_masking")
    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        for k in range(cfg.points(12, 3)):
            case = _case(rng, scale_max=1e3)
            c = case["c"] + 1  # add an unused class at a random position
            z = int(rng.integers(c))
            logits = np.insert(case["logits"], z, rng.standard_normal(case["n"]) * 5, axis=1)
            cands = [[*row[:z], mp.zero, *row[z:]] for row in case["cands"]]
            q = vec(np.insert(case["q"], z, 0.0))
            masked = loss(logits, None, q, case["t"], cands, case["off"])
            tally.close(masked, _loss_c(case), f"case {k}: masked == class removed")
            for eps in ("1e-30", "1e-3", "0.5"):
                e = mpf(eps)
                q_eps = [(1 - e) * x + (e if cls == z else 0) for cls, x in enumerate(q)]
                got = loss(logits, None, q_eps, case["t"], cands, case["off"])
                tally.close(masked, got, f"case {k}: masked == loss at q_eps, eps={eps}")
    return tally.result(
        "q_c = 0 on a class without candidate mass: masked loss == loss with the class removed "
        "== loss at (1-eps) q + eps e_c for eps in {1e-30, 1e-3, 0.5}"
    )


def stratified_candidates(alpha0: Any, support: Any, counts: Sequence[int]) -> list[list[Any]]:
    """The positive, then ``counts[r]`` copies of support point ``r`` (positive first)."""
    out = [list(vec(alpha0))]
    for a, n in zip(mat(support), counts, strict=True):
        out += [list(a) for _ in range(n)]
    return out


@PRECISE.register(f"{FID}.large_k_limit_stratified")
def _large_k_stratified(cfg: CheckConfig) -> LegResult:
    rng = _rng(cfg, "large_k_limit_stratified")
    tally = Tally("precise", rtol=1e-40, atol=1e-42, dps=cfg.dps)
    scales = (1, 4, 16) if cfg.quick else (1, 4, 16, 64)
    errs: list[float] = []
    with workdps(cfg.dps):
        for k in range(cfg.points(6, 2)):
            c, r = int(rng.integers(2, 5)), int(rng.integers(1, 4))
            sup = _simplex_mp(_targets(rng, r, c))
            base = [int(x) for x in rng.integers(1, 4, size=r)]
            probs = [mpf(b) / sum(base) for b in base]
            a0 = _simplex_mp(_targets(rng, 1, c))[0]
            f = rng.standard_normal(c) * 2
            q = vec(rng.dirichlet(np.ones(c)).tolist())
            t = float(10 ** rng.uniform(-0.5, 0.5))
            lim = large_k_limit(f, a0, sup, probs, q, t)
            (g,), _ = corrected_logits([f], q, t)
            s0 = mp.fsum(x * y for x, y in zip(a0, g, strict=True))
            mu = mp.exp(lim + s0)  # sum_r P_r e^{<A_r, g>}
            prev = mp.inf
            for sc in scales:
                counts = [b * sc for b in base]
                kk = sum(counts)
                cands = stratified_candidates(a0, sup, counts)
                got = loss_rows([f], None, q, t, cands, 0)[0] - mp.log(kk)
                err = got - lim
                # exactly log(1 + e^{S0} / (K mu)) > 0, and decreasing in K
                tally.close(err, mp.log1p(mp.exp(s0) / (kk * mu)), f"case {k} K={kk}")
                tally.holds(prev - err, f"case {k} K={kk}: error {err} decreases")
                prev = err
            errs.append(float(prev))
    return tally.result(
        "oracle loss on the explicit stratified candidate set, minus log K, minus the oracle "
        "large-K limit: equals log(1 + e^{S0}/(K mu)), decreasing to 0 as K grows",
        error_at_largest_k=errs,
    )


@PRECISE.register(f"{FID}.large_k_soft_strict_witness")
def _strict_witness(cfg: CheckConfig) -> LegResult:
    tally = Tally("precise", rtol=1e-45, atol=1e-45, dps=cfg.dps)
    with workdps(cfg.dps):
        half = mpf(1) / 2
        f, q, a0 = [1, 0], [half, half], [half, half]
        lim = large_k_limit(f, a0, [a0], [1], q, 1)
        bound = ce_oracle.soft_ce([f], [a0], 1) + mp.fsum(
            a * mp.log(x) for a, x in zip(a0, q, strict=True)
        )
        tally.close(lim, 0, "the limit at the witness")
        tally.close(bound, mp.log((1 + mp.e) / 2) - half, "soft CE + <alpha0, log q>")
        tally.holds(bound - lim, f"strict: gap {bound - lim}")
    return tally.result(
        "oracles at the witness: limit 0 < soft CE + <alpha0, log q> = log((1+e)/2) - 1/2",
        gap=float(bound - lim),
    )


# ----------------------------------------------------------------------------- definitions

DEFINITION = LegRegistry("definition")
_DEF_POINTS = 6  # points per definition leg (2 with --quick): 60-digit SymPy evaluation is slow


def _rand_sizes(rng: random.Random) -> tuple[int, int]:
    return rng.randint(2, 3), rng.randint(1, 3)


def _point_common(rng: random.Random, c: int) -> dict[Any, Any]:
    return {
        D.f: [rng.uniform(-4, 4) for _ in range(c)],
        D.q: [rng.uniform(0.05, 1.0) for _ in range(c)],  # positive, not normalised: general
        D.t: 10 ** rng.uniform(-0.7, 0.7),
    }


def _sample_loss(rng: random.Random) -> tuple[dict[Any, int], dict[Any, Any]]:
    c, m = _rand_sizes(rng)
    pt = _point_common(rng, c)
    pt[D.alpha] = [[rng.uniform(-1, 2) for _ in range(c)] for _ in range(m)]  # any real targets
    pt[D.p] = rng.randint(1, m)
    return {D.C: c, D.M: m}, pt


def _oracle_loss(sizes: Any, pt: Any) -> Any:
    return loss_rows([pt[D.f]], None, pt[D.q], pt[D.t], pt[D.alpha], int(pt[D.p]) - 1)[0]


def _sample_large_k(rng: random.Random) -> tuple[dict[Any, int], dict[Any, Any]]:
    c, r = _rand_sizes(rng)
    pt = _point_common(rng, c)
    pt[D.alpha0] = [rng.uniform(-1, 2) for _ in range(c)]
    pt[D.A] = [[rng.uniform(0, 1) for _ in range(c)] for _ in range(r)]
    pt[D.P] = [rng.uniform(0.05, 1) for _ in range(r)]
    return {D.C: c, D.R: r}, pt


def _oracle_large_k(sizes: Any, pt: Any) -> Any:
    return large_k_limit(pt[D.f], pt[D.alpha0], pt[D.A], pt[D.P], pt[D.q], pt[D.t])


def _sample_stratified(rng: random.Random) -> tuple[dict[Any, int], dict[Any, Any]]:
    sizes, pt = _sample_large_k(rng)
    counts = [rng.randint(1, 3) for _ in range(sizes[D.R])]
    kk = sum(counts)
    pt[D.K] = kk
    pt[D.P] = [mpf(n) / kk for n in counts]  # K P_r = counts[r] copies, exactly
    return sizes, pt


def _oracle_stratified(sizes: Any, pt: Any) -> Any:
    counts = [int(mp.nint(x * pt[D.K])) for x in pt[D.P]]
    cands = stratified_candidates(pt[D.alpha0], pt[D.A], counts)
    return loss_rows([pt[D.f]], None, pt[D.q], pt[D.t], cands, 0)[0]


def _sample_two_point(rng: random.Random) -> tuple[dict[Any, int], dict[Any, Any]]:
    c = 2
    pt = _point_common(rng, c)
    pt[D.alpha0] = [rng.uniform(-1, 2) for _ in range(c)]
    pt[D.A] = [[rng.uniform(0, 1) for _ in range(c)] for _ in range(2)]
    pt[D.pw] = rng.uniform(0.05, 0.95)
    return {D.C: c, D.K: rng.randint(1, 3)}, pt


def _oracle_two_point(sizes: Any, pt: Any) -> Any:
    return expected_loss_two_point(
        sizes[D.K], pt[D.f], pt[D.alpha0], pt[D.A], pt[D.pw], pt[D.q], pt[D.t]
    )


def _sample_soft_ce(rng: random.Random) -> tuple[dict[Any, int], dict[Any, Any]]:
    c = rng.randint(2, 5)
    return {D.C: c}, {
        D.f: [rng.uniform(-4, 4) for _ in range(c)],
        D.alpha0: [rng.uniform(-1, 2) for _ in range(c)],
        D.t: 10 ** rng.uniform(-0.7, 0.7),
    }


def _sample_nll(rng: random.Random) -> tuple[dict[Any, int], dict[Any, Any]]:
    c = rng.randint(2, 5)
    return {D.C: c}, {
        D.f: [rng.uniform(-4, 4) for _ in range(c)],
        D.y0: rng.randint(1, c),
        D.t: 10 ** rng.uniform(-0.7, 0.7),
    }


def _ranking_leg(cfg: CheckConfig) -> LegResult:
    """``ranking_nce`` has integer labels ``y[j]`` inside indices (``f[y[j]]``): the point's
    labels, sizes and positive index are substituted exactly (as Integers) into the SymPy
    definition before the generic evaluation."""
    defn = next(d for d in D.DEFINITIONS if d.name == "ranking_nce")
    state: dict[str, Any] = {}

    def sample(rng: random.Random) -> tuple[dict[Any, int], dict[Any, Any]]:
        c, m = _rand_sizes(rng)
        pt = _point_common(rng, c)
        state["labels"] = [rng.randint(1, c) for _ in range(m)]
        state["p"] = rng.randint(1, m)
        state["m"] = m
        return {D.C: c}, pt

    def build() -> Any:
        e = defn.build().xreplace({D.M: state["m"], D.p: state["p"]}).doit()
        return e.xreplace({D.y[i + 1]: lab for i, lab in enumerate(state["labels"])})

    def oracle(sizes: Any, pt: Any) -> Any:
        labels = [lab - 1 for lab in state["labels"]]
        off = state["p"] - 1
        return ranking_nce([pt[D.f]], [labels[off]], pt[D.q], pt[D.t], labels, off)

    return definition_leg(replace(defn, build=build), sample, oracle, cfg, n=_DEF_POINTS)


def _register_definitions() -> None:
    defs = {d.name: d for d in D.DEFINITIONS}
    table = {
        "soft_target_infonce": (_sample_loss, _oracle_loss),
        "large_k_limit": (_sample_large_k, _oracle_large_k),
        "stratified_loss": (_sample_stratified, _oracle_stratified),
        "expected_loss_two_point": (_sample_two_point, _oracle_two_point),
        "soft_ce": (
            _sample_soft_ce,
            lambda sz, pt: ce_oracle.soft_ce([pt[D.f]], [pt[D.alpha0]], pt[D.t]),
        ),
        "nll": (_sample_nll, lambda sz, pt: ce_oracle.nll([pt[D.f]], [int(pt[D.y0]) - 1], pt[D.t])),
    }
    for name, (sample, orc) in table.items():
        defn = defs[name]

        def leg(cfg: CheckConfig, defn: Any = defn, sample: Any = sample, orc: Any = orc) -> Any:
            n = 4 if defn.name in ("expected_loss_two_point", "stratified_loss") else _DEF_POINTS
            return definition_leg(defn, sample, orc, cfg, n=n)

        DEFINITION.register(defn.id)(leg)
    DEFINITION.register(defs["ranking_nce"].id)(_ranking_leg)


_register_definitions()


__all__ = [
    "DEFAULT_DPS",
    "DEFINITION",
    "PRECISE",
    "corrected_logits",
    "expected_loss_two_point",
    "gap_rows",
    "grad",
    "large_k_limit",
    "loss",
    "loss_rows",
    "loss_rows_direct",
    "ranking_nce",
    "rate_coefficient",
    "stratified_candidates",
    "weights",
]
