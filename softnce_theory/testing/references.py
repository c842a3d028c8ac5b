r"""Reference values and closed-form gradients for the audit contracts (mpmath).

The *values* the audit compares against come from the project's oracles in ``numerics/<family>``
(:func:`oracle_value`); every family also has a value and a closed-form gradient written here
from the papers' formulas (research notes), evaluated in mpmath at :data:`GRAD_DPS` digits with
log-space primitives. The closed forms are independent of both the oracles and the torch losses;
the kit's own tests check them against ``mpmath.diff`` of the oracles.

Contracts (inputs as NumPy float64 arrays; the loss is the mean over rows / valid anchors):

* ``soft_ce``: :math:`\ell_i=-\sum_c\alpha_{ic}\log\mathrm{softmax}(f_i)_c`;
  :math:`\partial L/\partial f_{ic}=(p_{ic}\sum_k\alpha_{ik}-\alpha_{ic})/N`.
* ``label_smoothing``: soft CE against :math:`(1-\varepsilon)e_y+\varepsilon/C` (torch).
* ``collision_ce``: :math:`\ell_i=-\log\sum_c y_{ic}\sigma_{ic}`;
  :math:`\partial L/\partial f_{ic}=(\sigma_{ic}-r_{ic})/N` with the posterior
  :math:`r_{ic}=y_{ic}\sigma_{ic}/\sum_k y_{ik}\sigma_{ik}`.
* ``soft_target_infonce``: :math:`S_{ij}=\langle\alpha_j,f_i/t-\log q\rangle`,
  :math:`\ell_i=\mathrm{LSE}_jS_{ij}-S_{ii}`;
  :math:`\partial L/\partial f_{ic}=(\sum_j w_{ij}\alpha_{jc}-\alpha_{ic})/(Nt)`,
  :math:`w_{ij}=\mathrm{softmax}_j S_{ij}` (Hugger & Uhlmann 2024, research note §1.4).
* ``infonce``: :math:`s_{ij}=\hat q_i\cdot\hat k_j/\tau`,
  :math:`\ell_i=\mathrm{LSE}_js_{ij}-s_{ii}`.
* ``supcon_out`` / ``supcon_in`` / ``sincere`` (Khosla et al. 2020 eq. 2/3; Feeney & Hughes):
  :math:`s_{ij}=\hat z_i\cdot\hat z_j/\tau`, mean over anchors with at least one positive; the
  gradients through the logits :math:`G_{ij}=\partial L/\partial s_{ij}` are those of the research
  note §1.3, then :math:`\partial L/\partial\hat z_j=\tau^{-1}\sum_a(G_{ja}+G_{aj})\hat z_a` and
  :math:`\partial L/\partial w=(I-\hat z\hat z^\top)\,\partial L/\partial\hat z/\|w\|`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from mpmath import mp

from softnce_theory.numerics._mp import lse, mpf, workdps

#: digits for the closed forms (compared at float64 tolerances)
GRAD_DPS = 40
#: digits for the oracle values
ORACLE_DPS = 50
NINF = mp.ninf

Array = np.ndarray
Grads = dict[str, Array]


def _m(x: Any) -> list[list[Any]]:
    """Exact conversion of a float array (or nested lists of floats or mpf) to mpf rows."""
    rows = x.tolist() if hasattr(x, "tolist") else x
    return [[mpf(v) for v in row] for row in rows]


def _v(x: Any) -> list[Any]:
    return [mpf(v) for v in (x.tolist() if hasattr(x, "tolist") else x)]


def _arr(rows: Sequence[Sequence[Any]]) -> Array:
    return np.array([[float(v) for v in r] for r in rows], dtype=np.float64)


def _logaddexp(a: Any, b: Any) -> Any:
    return lse([a, b])


def _safe_log(x: Any) -> Any:
    return NINF if x == 0 else mp.log(x)


# ----------------------------------------------------------------------------- logits families


def soft_ce(logits: Array, targets: Array) -> tuple[Any, Grads]:
    f, a = _m(logits), _m(targets)
    n = len(f)
    rows, grad = [], []
    for fi, ai in zip(f, a, strict=True):
        z = lse(fi)
        rows.append(-mp.fsum(ac * (x - z) for x, ac in zip(fi, ai, strict=True) if ac != 0))
        mass = mp.fsum(ai)
        grad.append([(mp.exp(x - z) * mass - ac) / n for x, ac in zip(fi, ai, strict=True)])
    return mp.fsum(rows) / n, {"logits": _arr(grad)}


def smoothed(labels: Array, c: int, eps: float) -> Array:
    e = float(eps)
    return (1 - e) * np.eye(c)[np.asarray(labels, dtype=np.int64)] + e / c


def label_smoothing(logits: Array, labels: Array, epsilon: float) -> tuple[Any, Grads]:
    f = _m(logits)
    c = len(f[0])
    e = mpf(epsilon)
    alpha = [
        [(1 - e) * (1 if k == y else 0) + e / c for k in range(c)]
        for y in np.asarray(labels).tolist()
    ]
    n = len(f)
    rows, grad = [], []
    for fi, ai in zip(f, alpha, strict=True):
        z = lse(fi)
        rows.append(-mp.fsum(ac * (x - z) for x, ac in zip(fi, ai, strict=True) if ac != 0))
        grad.append([(mp.exp(x - z) - ac) / n for x, ac in zip(fi, ai, strict=True)])
    return mp.fsum(rows) / n, {"logits": _arr(grad)}


def collision_ce(logits: Array, targets: Array) -> tuple[Any, Grads]:
    f, y = _m(logits), _m(targets)
    n = len(f)
    rows, grad = [], []
    for fi, yi in zip(f, y, strict=True):
        z = lse(fi)
        logsig = [x - z for x in fi]
        terms = [ls + mp.log(yc) if yc != 0 else NINF for ls, yc in zip(logsig, yi, strict=True)]
        m_ = lse(terms)
        rows.append(-m_)
        grad.append(
            [
                (mp.exp(ls) - (mp.exp(tc - m_) if tc != NINF else 0)) / n
                for ls, tc in zip(logsig, terms, strict=True)
            ]
        )
    return mp.fsum(rows) / n, {"logits": _arr(grad)}


def _sti_scores(f: list[list[Any]], a: list[list[Any]], logq: list[Any], t: Any) -> list[list[Any]]:
    out = []
    for fi in f:
        g = [x / t - lq for x, lq in zip(fi, logq, strict=True)]
        row = []
        for aj in a:
            # 0 * (-log 0) = 0: a class with no target mass contributes nothing
            row.append(mp.fsum(ac * gc for ac, gc in zip(aj, g, strict=True) if ac != 0))
        out.append(row)
    return out


def soft_target_infonce(
    logits: Array, targets: Array, noise_probs: Array, temperature: float
) -> tuple[Any, Grads]:
    f, a, t = _m(logits), _m(targets), mpf(temperature)
    logq = [_safe_log(x) for x in _v(noise_probs)]
    n, c = len(f), len(f[0])
    s = _sti_scores(f, a, logq, t)
    rows, grad = [], []
    for i, si in enumerate(s):
        z = lse(si)
        rows.append(z - si[i])
        w = [mp.exp(x - z) for x in si]
        grad.append(
            [(mp.fsum(w[j] * a[j][k] for j in range(n)) - a[i][k]) / (n * t) for k in range(c)]
        )
    return mp.fsum(rows) / n, {"logits": _arr(grad)}


# ----------------------------------------------------------------------------- embedding families


def _unit(w: list[list[Any]]) -> tuple[list[list[Any]], list[Any]]:
    norms = [mp.sqrt(mp.fsum(x * x for x in row)) for row in w]
    return [[x / r for x in row] for row, r in zip(w, norms, strict=True)], norms


def _dot(a: Sequence[Any], b: Sequence[Any]) -> Any:
    return mp.fsum(x * y for x, y in zip(a, b, strict=True))


def _backprop_unit(u: list[list[Any]], norms: list[Any], gu: list[list[Any]]) -> Array:
    """Gradient through ``u = w/||w||``: ``(I - u u^T) g / ||w||``."""
    out = []
    for ui, r, gi in zip(u, norms, gu, strict=True):
        proj = _dot(ui, gi)
        out.append([(g - x * proj) / r for x, g in zip(ui, gi, strict=True)])
    return _arr(out)


def infonce(query: Array, keys: Array, temperature: float) -> tuple[Any, Grads]:
    qu, qn = _unit(_m(query))
    ku, kn = _unit(_m(keys))
    t = mpf(temperature)
    n, d = len(qu), len(qu[0])
    s = [[_dot(qi, kj) / t for kj in ku] for qi in qu]
    rows = []
    g_s = []
    for i, si in enumerate(s):
        z = lse(si)
        rows.append(z - si[i])
        g_s.append([(mp.exp(x - z) - (1 if j == i else 0)) / n for j, x in enumerate(si)])
    gq = [[mp.fsum(g_s[i][j] * ku[j][k] for j in range(n)) / t for k in range(d)] for i in range(n)]
    gk = [[mp.fsum(g_s[i][j] * qu[i][k] for i in range(n)) / t for k in range(d)] for j in range(n)]
    return mp.fsum(rows) / n, {
        "query": _backprop_unit(qu, qn, gq),
        "keys": _backprop_unit(ku, kn, gk),
    }


def _supcon_like(
    embeddings: Array, labels: Array, temperature: float, variant: str
) -> tuple[Any, Grads]:
    u, norms = _unit(_m(embeddings))
    lab = np.asarray(labels).tolist()
    t = mpf(temperature)
    n, d = len(u), len(u[0])
    s = [[_dot(u[i], u[j]) / t for j in range(n)] for i in range(n)]
    g_s = [[mp.zero] * n for _ in range(n)]
    valid = [i for i in range(n) if any(lab[j] == lab[i] for j in range(n) if j != i)]
    if not valid:
        return mp.nan, {"embeddings": np.full((n, d), np.nan)}
    nv = len(valid)
    rows = []
    for i in valid:
        pos = [j for j in range(n) if j != i and lab[j] == lab[i]]
        neg = [j for j in range(n) if lab[j] != lab[i]]
        others = [j for j in range(n) if j != i]
        npos = len(pos)
        if variant in ("supcon_out", "supcon_in"):
            z = lse([s[i][a] for a in others])
            if variant == "supcon_out":
                rows.append(z - mp.fsum(s[i][p] for p in pos) / npos)
                target = {p: mpf(1) / npos for p in pos}
            else:
                zp = lse([s[i][p] for p in pos])
                rows.append(z - zp + mp.log(npos))
                target = {p: mp.exp(s[i][p] - zp) for p in pos}
            for a in others:
                g_s[i][a] += (mp.exp(s[i][a] - z) - target.get(a, 0)) / nv
        elif variant == "sincere":
            zn = lse([s[i][k] for k in neg]) if neg else NINF
            acc = []
            for p in pos:
                den = _logaddexp(s[i][p], zn)
                acc.append(den - s[i][p])
                g_s[i][p] += (mp.exp(s[i][p] - den) - 1) / (npos * nv)
                for k in neg:
                    g_s[i][k] += mp.exp(s[i][k] - den) / (npos * nv)
            rows.append(mp.fsum(acc) / npos)
        else:
            raise ValueError(f"unknown variant {variant!r}")
    gu = [
        [mp.fsum((g_s[j][a] + g_s[a][j]) * u[a][k] for a in range(n)) / t for k in range(d)]
        for j in range(n)
    ]
    return mp.fsum(rows) / nv, {"embeddings": _backprop_unit(u, norms, gu)}


def supcon_out(embeddings: Array, labels: Array, temperature: float) -> tuple[Any, Grads]:
    return _supcon_like(embeddings, labels, temperature, "supcon_out")


def supcon_in(embeddings: Array, labels: Array, temperature: float) -> tuple[Any, Grads]:
    return _supcon_like(embeddings, labels, temperature, "supcon_in")


def sincere(embeddings: Array, labels: Array, temperature: float) -> tuple[Any, Grads]:
    return _supcon_like(embeddings, labels, temperature, "sincere")


def ntxent_instance(embeddings: Array, labels: Array, temperature: float) -> Any:
    r"""SimCLR / NT-Xent with one positive per anchor: :math:`\mathrm{LSE}_{a\ne i}s_{ia}-s_{ip}`,
    mean over anchors that have a partner. The common value of L_out, L_in and SINCERE when every
    class has at most two members."""
    u, _ = _unit(_m(embeddings))
    lab = np.asarray(labels).tolist()
    t = mpf(temperature)
    n = len(u)
    rows = []
    for i in range(n):
        partners = [j for j in range(n) if j != i and lab[j] == lab[i]]
        if not partners:
            continue
        (p,) = partners
        s = [_dot(u[i], u[a]) / t for a in range(n) if a != i]
        rows.append(lse(s) - _dot(u[i], u[p]) / t)
    return mp.fsum(rows) / len(rows)


CLOSED_FORMS: dict[str, Callable[..., tuple[Any, Grads]]] = {
    "soft_ce": soft_ce,
    "label_smoothing": label_smoothing,
    "collision_ce": collision_ce,
    "soft_target_infonce": soft_target_infonce,
    "infonce": infonce,
    "supcon_out": supcon_out,
    "supcon_in": supcon_in,
    "sincere": sincere,
}


def closed_form(family: str, *args: Any) -> tuple[float, Grads]:
    """Value (as float) and closed-form gradients of ``family`` at :data:`GRAD_DPS` digits."""
    with workdps(GRAD_DPS):
        v, g = CLOSED_FORMS[family](*args)
        return float(v), g


# ----------------------------------------------------------------------------- oracle values

#: each family's oracle in ``numerics``: (module, function name, call adapter). A family whose
#: oracle module or function is missing falls back to :data:`CLOSED_FORMS` (and says so).
ORACLES: dict[str, tuple[str, str, Callable[[Any, tuple[Any, ...]], Any]]] = {
    "soft_ce": ("softnce_theory.numerics.cross_entropy", "soft_ce", lambda f, a: f(a[0], a[1], 1)),
    "label_smoothing": (
        "softnce_theory.numerics.cross_entropy",
        "label_smoothing_ce",
        lambda f, a: f(a[0], np.asarray(a[1]).tolist(), a[2], 1),
    ),
    "collision_ce": (
        "softnce_theory.numerics.collision_ce",
        "collision_ce",
        lambda f, a: f(a[0], a[1]),
    ),
    "soft_target_infonce": (
        "softnce_theory.numerics.soft_target_infonce",
        "loss",
        lambda f, a: f(a[0], a[1], a[2], a[3]),
    ),
    "infonce": (
        "softnce_theory.numerics.infonce",
        "info_nce",
        lambda f, a: f(a[0], a[1], temperature=a[2]),
    ),
    "supcon_out": (
        "softnce_theory.numerics.sincere",
        "supcon",
        lambda f, a: f(a[0], a[1], a[2], "out"),
    ),
    "supcon_in": (
        "softnce_theory.numerics.sincere",
        "supcon",
        lambda f, a: f(a[0], a[1], a[2], "in"),
    ),
    "sincere": ("softnce_theory.numerics.sincere", "sincere", lambda f, a: f(a[0], a[1], a[2])),
}


def _oracle_fn(
    family: str,
) -> tuple[Callable[..., Any], Callable[[Any, tuple[Any, ...]], Any], str] | None:
    spec = ORACLES.get(family)
    if spec is None:
        return None
    modname, fname, call = spec
    try:
        mod = importlib.import_module(modname)
    except ImportError:
        return None
    fn = getattr(mod, fname, None)
    if fn is None:
        return None
    return fn, call, f"{modname}.{fname}"


def reference_name(family: str) -> str:
    """Where the audit's reference values come from, for the report."""
    o = _oracle_fn(family)
    fallback = f"softnce_theory.testing.references.{CLOSED_FORMS[family].__name__}"
    src = o[2] if o else f"{fallback} (no numerics oracle)"
    return f"values: {src} at {ORACLE_DPS} digits; gradients: closed form at {GRAD_DPS} digits"


def oracle_value(family: str, *args: Any) -> tuple[float, str]:
    """The oracle's value (float, from :data:`ORACLE_DPS` digits) and the oracle's name."""
    o = _oracle_fn(family)
    with workdps(ORACLE_DPS):
        if o is not None:
            fn, call, name = o
            return float(call(fn, args)), name
        v, _ = CLOSED_FORMS[family](*args)
        return float(v), "softnce_theory.testing.references"


__all__ = [
    "CLOSED_FORMS",
    "GRAD_DPS",
    "ORACLES",
    "ORACLE_DPS",
    "closed_form",
    "ntxent_instance",
    "oracle_value",
    "reference_name",
    "smoothed",
]
