r"""Streaming moments in float64 with control variates: Welford/Chan merges, exact and ordered.

A Monte Carlo run produces, per trial, a vector :math:`y\in\mathbb R^d` (the measured outputs: a
loss bias, gradient-bias components, ...) and, per output :math:`j`, :math:`m` control variates
:math:`c_{j1..jm}` whose expectation is known exactly and has been subtracted (so
:math:`E c = 0`). :class:`Moments` keeps, for each output, the count :math:`n`, the means
:math:`\bar y_j, \bar c_j`, and the centred co-moments

.. math::
    M^{yy}_j=\sum_t (y_{tj}-\bar y_j)^2,\quad
    M^{yc}_{jk}=\sum_t (y_{tj}-\bar y_j)(c_{tjk}-\bar c_{jk}),\quad
    M^{cc}_{jkl}=\sum_t (c_{tjk}-\bar c_{jk})(c_{tjl}-\bar c_{jl}).

A chunk's moments are computed with two passes on data shifted by the chunk's first row (mean
first, then centred sums: the most accurate form); chunks are combined with Chan, Golub & LeVeque's pairwise update (1979; the batch form of
Welford's 1962 recurrence):

.. math::
    n=n_a+n_b,\ \delta=\bar x_b-\bar x_a,\ \bar x=\bar x_a+\delta\,n_b/n,\
    M^{xz}=M^{xz}_a+M^{xz}_b+\delta_x\delta_z\,n_an_b/n .

Floating-point addition is not associative, so bit-identical results require a fixed merge
order: the engine always folds chunk ``i`` into the running total after chunks ``0..i-1``
(:meth:`Moments.merge` is called in chunk-index order), whichever process computed it.

**Control-variate estimator** (regression form; e.g. Glasserman 2004, §4.1; Lavenberg & Welch
1981): per output, :math:`\hat\beta_j=(M^{cc}_j)^{+}M^{yc}_j` and

.. math::
    \hat\theta_j=\bar y_j-\hat\beta_j^\top\bar c_j,\qquad
    \hat\sigma^2_{j,\mathrm{res}}=\frac{M^{yy}_j-\hat\beta_j^\top M^{yc}_j}{n-1-r_j},
    \qquad \mathrm{SE}=\sqrt{\hat\sigma^2_{j,\mathrm{res}}/n},

with :math:`r_j` the rank of :math:`M^{cc}_j` (the pseudo-inverse drops controls that are
identically zero or collinear). Estimating :math:`\beta` from the same samples biases
:math:`\hat\theta` by :math:`O(1/n)`, negligible against the :math:`O(n^{-1/2})` standard error
for the sample sizes used here. The variance-reduction factor is
:math:`\hat\sigma^2_{\rm plain}/\hat\sigma^2_{\rm res}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: two-sided 95% normal quantile
Z95 = 1.959963984540054


@dataclass
class Moments:
    """Count, means and centred co-moments of outputs ``y`` (d,) and controls ``c`` (d, m)."""

    n: int
    mean_y: np.ndarray  # (d,)
    mean_c: np.ndarray  # (d, m)
    m_yy: np.ndarray  # (d,)
    m_yc: np.ndarray  # (d, m)
    m_cc: np.ndarray  # (d, m, m)

    @property
    def d(self) -> int:
        return int(self.mean_y.shape[0])

    @property
    def m(self) -> int:
        return int(self.mean_c.shape[1])

    @classmethod
    def empty(cls, d: int, m: int) -> Moments:
        return cls(
            0, np.zeros(d), np.zeros((d, m)), np.zeros(d), np.zeros((d, m)), np.zeros((d, m, m))
        )

    @classmethod
    def from_samples(cls, y: np.ndarray, c: np.ndarray) -> Moments:
        """Two-pass moments of one chunk: ``y`` (n, d), ``c`` (n, d, m), float64."""
        y = np.ascontiguousarray(y, dtype=np.float64)
        c = np.ascontiguousarray(c, dtype=np.float64)
        n = int(y.shape[0])
        if y.ndim != 2 or c.ndim != 3 or c.shape[:2] != y.shape:
            raise ValueError(f"expected y (n, d) and c (n, d, m), got {y.shape} and {c.shape}")
        if n == 0:
            return cls.empty(y.shape[1], c.shape[2])
        # shifted two-pass: the first row is subtracted before averaging, which removes most
        # cancellation and makes the moments of a constant column exact (mean = value, M = 0)
        ry, rc = y - y[0], c - c[0]
        my, mc = ry.mean(axis=0), rc.mean(axis=0)
        mean_y = y[0] + my
        mean_c = c[0] + mc
        dy = ry - my
        dc = rc - mc
        return cls(
            n,
            mean_y,
            mean_c,
            np.einsum("nj,nj->j", dy, dy),
            np.einsum("nj,njk->jk", dy, dc),
            np.einsum("njk,njl->jkl", dc, dc),
        )

    def merge(self, other: Moments) -> Moments:
        """Chan et al.'s exact pairwise merge (self first, then ``other``); returns a new object."""
        if other.n == 0:
            return self.copy()
        if self.n == 0:
            return other.copy()
        na, nb = float(self.n), float(other.n)
        n = na + nb
        f = na * nb / n
        dy = other.mean_y - self.mean_y
        dc = other.mean_c - self.mean_c
        return Moments(
            self.n + other.n,
            self.mean_y + dy * (nb / n),
            self.mean_c + dc * (nb / n),
            self.m_yy + other.m_yy + dy * dy * f,
            self.m_yc + other.m_yc + dy[:, None] * dc * f,
            self.m_cc + other.m_cc + dc[:, :, None] * dc[:, None, :] * f,
        )

    def copy(self) -> Moments:
        return Moments(
            self.n,
            self.mean_y.copy(),
            self.mean_c.copy(),
            self.m_yy.copy(),
            self.m_yc.copy(),
            self.m_cc.copy(),
        )

    # -- flat packing (collective communication) and JSON (checkpoints) ----------------------
    @staticmethod
    def packed_size(d: int, m: int) -> int:
        return 1 + d + d * m + d + d * m + d * m * m

    def pack(self) -> np.ndarray:
        return np.concatenate(
            [
                np.array([float(self.n)]),
                self.mean_y.ravel(),
                self.mean_c.ravel(),
                self.m_yy.ravel(),
                self.m_yc.ravel(),
                self.m_cc.ravel(),
            ]
        )

    @classmethod
    def unpack(cls, v: np.ndarray, d: int, m: int) -> Moments:
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (cls.packed_size(d, m),):
            raise ValueError(
                f"packed moments: expected {cls.packed_size(d, m)} values, got {v.shape}"
            )
        sizes = [1, d, d * m, d, d * m, d * m * m]
        parts = np.split(v, np.cumsum(sizes)[:-1])
        return cls(
            int(parts[0][0]),
            parts[1].copy(),
            parts[2].reshape(d, m).copy(),
            parts[3].copy(),
            parts[4].reshape(d, m).copy(),
            parts[5].reshape(d, m, m).copy(),
        )

    def to_json(self) -> dict[str, Any]:
        """Exact JSON form: Python's float repr round-trips float64 bit-for-bit."""
        return {"d": self.d, "m": self.m, "packed": [float(x) for x in self.pack()]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Moments:
        """Inverse of :meth:`to_json`; ``ValueError`` for anything but its exact layout (ints
        ``d``, ``m`` and a list of finite numbers; ``true`` is not a number here)."""
        if not isinstance(obj, dict):
            raise ValueError("stored moments must be an object")
        d, m, packed = obj.get("d"), obj.get("m"), obj.get("packed")
        for name, v in (("d", d), ("m", m)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 1 << 20:
                raise ValueError(f"stored moments: {name} must be a small integer >= 0")
        if not isinstance(packed, list) or not all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in packed
        ):
            raise ValueError("stored moments: packed must be a list of numbers")
        vals = np.array([float(x) for x in packed], dtype=np.float64)
        if not np.all(np.isfinite(vals)):
            raise ValueError("non-finite value in stored moments")
        return cls.unpack(vals, int(d), int(m))  # type: ignore[arg-type]  # checked above

    # -- estimates ---------------------------------------------------------------------------
    def estimates(self, use_cv: bool = True) -> Estimates:
        """Plain and control-variate estimates with standard errors, per output."""
        n = self.n
        d = self.d
        plain = self.mean_y.copy()
        plain_var = self.m_yy / (n - 1) if n > 1 else np.full(d, np.inf)
        if not use_cv or self.m == 0 or n < self.m + 3:
            return Estimates(n, plain, plain_var, plain, plain_var, np.ones(d))
        pinv = np.linalg.pinv(self.m_cc, rcond=1e-12, hermitian=True)  # (d, m, m)
        beta = np.einsum("jkl,jl->jk", pinv, self.m_yc)
        rank = np.linalg.matrix_rank(self.m_cc, hermitian=True, tol=None)
        rank = np.atleast_1d(rank)
        est = self.mean_y - np.einsum("jk,jk->j", beta, self.mean_c)
        resid = self.m_yy - np.einsum("jk,jk->j", beta, self.m_yc)
        resid = np.maximum(resid, 0.0)
        cv_var = resid / np.maximum(n - 1 - rank, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            vr = np.where(cv_var > 0, plain_var / cv_var, np.inf)
        return Estimates(n, plain, plain_var, est, cv_var, vr)


@dataclass
class Estimates:
    """Per-output estimates: plain mean and the control-variate mean, with sample variances."""

    n: int
    plain: np.ndarray
    plain_var: np.ndarray
    value: np.ndarray  # the reported estimate (CV when enabled)
    var: np.ndarray  # per-trial variance of the reported estimator
    vr: np.ndarray  # plain_var / var

    def se(self) -> np.ndarray:
        return np.sqrt(self.var / max(self.n, 1))

    def plain_se(self) -> np.ndarray:
        return np.sqrt(self.plain_var / max(self.n, 1))

    def half_width(self, z: float = Z95) -> np.ndarray:
        return z * self.se()


def finite_or_none(x: float) -> float | None:
    """JSON-friendly float: ``None`` for NaN/inf."""
    x = float(x)
    return x if math.isfinite(x) else None
