r"""Random-number plumbing: counter-based seeds, device choice, a fast exact discrete sampler.

**Seeds.** Every chunk gets its own generator, seeded from a hash of
``(seed, scenario, K, chunk index)`` (SHA-256, first 63 bits). A chunk's random numbers therefore
depend only on its coordinates, never on which process draws it or on what was drawn before, so
results are reproducible whatever the chunk order, the interruption points or the number of
workers (the counter-based idea of Salmon et al., SC'11, applied at chunk granularity). CPU
(MT19937) and CUDA (Philox) generators give different streams: results are reproducible per
device type.

**Discrete sampling.** :class:`DiscreteLaw` draws class indices by inversion with a guide table
(Chen 1974; Devroye 1986, §III.2.4): one uniform per draw, a table look-up and (almost always)
one comparison, all vectorised. ``counts`` draws whole count vectors
:math:`N\sim\mathrm{Mult}(K, q)` exactly through conditional binomials,
:math:`N_c\mid N_{<c}\sim\mathrm{Bin}\big(K-\sum_{c'<c}N_{c'},\,q_c/\sum_{c'\ge c}q_{c'}\big)`,
at :math:`O(C)` cost per trial instead of :math:`O(K)`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; otherwise ``torch.device(device)``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}")
    return dev


def f64(values: object, device: torch.device) -> torch.Tensor:
    """A float64 tensor on ``device``."""
    return torch.tensor(values, dtype=torch.float64, device=device)


def chunk_seed(seed: int, scenario: str, k: int, chunk: int) -> int:
    """63-bit seed for chunk ``chunk`` of the ``k`` run of ``scenario`` (counter-based)."""
    h = hashlib.sha256(f"softnce-mc|{int(seed)}|{scenario}|{int(k)}|{int(chunk)}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


class DiscreteLaw:
    """A distribution on ``{0..C-1}`` with vectorised inversion sampling and multinomial counts."""

    def __init__(self, probs: Sequence[float], device: torch.device, guide_bits: int = 12) -> None:
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 1 or p.size == 0 or np.any(p < 0) or not np.all(np.isfinite(p)):
            raise ValueError("probabilities must be a non-empty 1-D array of finite values >= 0")
        total = float(p.sum())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"probabilities must sum to 1, got {total!r}")
        p = p / total
        self.size = int(p.size)
        cdf = np.cumsum(p)
        cdf[-1] = 1.0
        last = int(np.flatnonzero(p > 0)[-1])
        cdf[last:] = 1.0  # classes after the last positive one can never be drawn
        big_l = 1 << max(guide_bits, int(np.ceil(np.log2(4 * self.size))))
        edges = np.arange(big_l + 1, dtype=np.float64) / big_l
        start = np.searchsorted(cdf, edges[:-1], side="right")  # first class with cdf > b/L
        stop = np.searchsorted(cdf, edges[1:], side="left")  # boundaries inside the bucket
        self.steps = int(max(0, int(np.max(stop - start))))
        self.big_l = big_l
        self.device = device
        self.cdf = torch.tensor(cdf, dtype=torch.float64, device=device)
        self.guide = torch.tensor(
            np.minimum(start, self.size - 1), dtype=torch.int64, device=device
        )
        tail = np.cumsum(p[::-1])[::-1]  # q_c + q_{c+1} + ...
        with np.errstate(divide="ignore", invalid="ignore"):
            cond = np.where(tail > 0, p / tail, 0.0)
        self.cond = [float(min(1.0, max(0.0, x))) for x in cond]
        self.probs = p

    def sample(self, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
        """Class indices of the given shape (int64): inversion of the CDF with a guide table."""
        u = torch.rand(shape, generator=gen, dtype=torch.float64, device=self.device)
        return self.invert(u)

    def invert(self, u: torch.Tensor) -> torch.Tensor:
        """Smallest ``c`` with ``cdf[c] > u`` for uniforms ``u`` in [0, 1)."""
        shape = u.shape
        flat = u.reshape(-1)
        # L is a power of two, so u * L is exact and < L for u < 1: no clamp needed
        b = (flat * self.big_l).to(torch.int64)
        idx = self.guide.index_select(0, b)
        for _ in range(self.steps):
            # (int64 += bool is a slow promotion path on CPU: cast first)
            idx += (self.cdf.index_select(0, idx) <= flat).to(torch.int64)
        return idx.reshape(shape)

    def counts(self, n: int, k: int, gen: torch.Generator) -> torch.Tensor:
        """``(n, C)`` float64 counts, each row ~ Multinomial(k, probs), by conditional binomials."""
        rem = torch.full((n,), float(k), dtype=torch.float64, device=self.device)
        cols = []
        for c in range(self.size - 1):
            pc = self.cond[c]
            if pc <= 0.0:
                cols.append(torch.zeros_like(rem))
                continue
            if pc >= 1.0:
                cols.append(rem.clone())
                rem = torch.zeros_like(rem)
                continue
            draw = torch.binomial(rem, torch.full_like(rem, pc), generator=gen)
            cols.append(draw)
            rem = rem - draw
        cols.append(rem)
        return torch.stack(cols, dim=1)

    def counts_from_indices(self, idx: torch.Tensor) -> torch.Tensor:
        """Per-row class counts ``(rows, C)`` float64 from indices ``(rows, k)``. The summands are
        ones, so the float64 sums are exact integers whatever the accumulation order (also with
        CUDA atomics): the result is deterministic on every device."""
        rows = idx.shape[0]
        out = torch.zeros((rows, self.size), dtype=torch.float64, device=idx.device)
        if idx.shape[1] == 0:
            return out
        ones = torch.ones((1, 1), dtype=torch.float64, device=idx.device).expand(idx.shape)
        return out.scatter_add_(1, idx, ones)


def normal(shape: tuple[int, ...], gen: torch.Generator, device: torch.device) -> torch.Tensor:
    r"""Standard normals (float64) by the Box–Muller transform of the generator's uniforms:
    :math:`r=\sqrt{-2\log(1-u_1)}`, :math:`z=(r\cos 2\pi u_2,\ r\sin 2\pi u_2)` (exact in law;
    about twice as fast as ``Tensor.normal_`` on CPU)."""
    n = 1
    for s in shape:
        n *= int(s)
    half = (n + 1) // 2
    u = torch.rand((2, half), generator=gen, dtype=torch.float64, device=device)
    r = torch.log1p(-u[0]).mul_(-2.0).sqrt_()
    theta = u[1].mul_(2.0 * math.pi)
    z = torch.empty((2, half), dtype=torch.float64, device=device)
    torch.mul(r, torch.cos(theta), out=z[0])
    torch.mul(r, theta.sin_(), out=z[1])
    return z.reshape(-1)[:n].reshape(shape)


def gamma(
    alpha: float | torch.Tensor, shape: tuple[int, ...], gen: torch.Generator, device: torch.device
) -> torch.Tensor:
    r"""Gamma(alpha, 1) variates (float64), vectorised Marsaglia & Tsang (2000) rejection sampler.

    For :math:`a\ge1`: :math:`d=a-\frac13`, :math:`c=1/\sqrt{9d}`, :math:`v=(1+cz)^3` with
    :math:`z\sim N(0,1)`, accepted when :math:`\log u<\frac{z^2}2+d-dv+d\log v`; return
    :math:`dv`. For :math:`a<1` the boost :math:`G_a=G_{a+1}U^{1/a}`. Rejected entries are redrawn
    in rounds (acceptance > 95%), in a fixed order, so the output is a deterministic function of
    the generator state. ``alpha`` is a float or a tensor broadcastable to ``shape`` (>= 0.1).
    """
    n = 1
    for s in shape:
        n *= int(s)
    a = torch.as_tensor(alpha, dtype=torch.float64, device=device).expand(shape).reshape(-1)
    boost = a < 1
    a1 = torch.where(boost, a + 1.0, a)
    d = a1 - 1.0 / 3.0
    c = torch.rsqrt(9.0 * d)
    out, ok = _mt_round(d, c, gen, device)  # first round on everything, no indexing
    idx = (~ok).nonzero().squeeze(1)
    while idx.numel() > 0:  # the few rejected entries, redrawn in order
        dd, cc = d[idx], c[idx]
        val, ok = _mt_round(dd, cc, gen, device)
        out[idx[ok]] = val[ok]
        idx = idx[~ok]
    if bool(boost.any()):
        u = torch.rand((n,), generator=gen, dtype=torch.float64, device=device)
        out = torch.where(boost, out * torch.pow(u, 1.0 / a), out)
    return out.reshape(shape)


def class_sums(idx: torch.Tensor, vals: torch.Tensor, n_classes: int) -> torch.Tensor:
    r"""Per-row class sums :math:`\sum_k v_{rk}[i_{rk}=c]`, shape ``(rows, C)``, float64.

    Deterministic on every device: ``scatter_add_`` on CPU (each row is accumulated in order by
    one thread), a one-hot product and an ordinary reduction on CUDA (no float atomics)."""
    rows = idx.shape[0]
    if idx.device.type == "cpu":
        out = torch.zeros((rows, n_classes), dtype=torch.float64, device=idx.device)
        return out.scatter_add_(1, idx, vals)
    classes = torch.arange(n_classes, device=idx.device)
    onehot = (idx.unsqueeze(-1) == classes).to(torch.float64)
    return (onehot * vals.unsqueeze(-1)).sum(1)


def _mt_round(
    d: torch.Tensor, c: torch.Tensor, gen: torch.Generator, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """One Marsaglia-Tsang proposal per entry: (value d*v, accepted mask)."""
    m = d.numel()
    z = normal((m,), gen, device)
    u = torch.rand((m,), generator=gen, dtype=torch.float64, device=device)
    t = 1.0 + c * z
    v = t * t * t
    ok = (t > 0) & (torch.log(u) < 0.5 * z * z + d - d * v + d * torch.log(v.clamp_min(1e-300)))
    return d * v, ok


_MALLOC_TUNED: list[bool] = []


def tune_glibc_malloc(threshold: int = 1 << 30) -> bool:
    """Keep freed large blocks in the heap instead of returning them to the OS (glibc only).

    Each chunk allocates and frees many multi-megabyte temporaries. By default glibc serves
    them with ``mmap`` and returns them with ``munmap``, so every temporary is page-faulted
    (and zeroed by the kernel) again: on CPU that costs several times the arithmetic. Raising
    ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` (``mallopt``; the same as the environment
    variables ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``) lets the allocator reuse
    them. This is process-wide (the process keeps its peak heap), so the library only does it
    when asked (``run_scenario(tune_malloc=True)``; the CLI and the benchmark ask by default).
    Returns True when applied (glibc found), False otherwise (a no-op elsewhere).
    """
    if _MALLOC_TUNED:
        return _MALLOC_TUNED[0]
    ok = False
    try:
        import ctypes
        import ctypes.util

        name = ctypes.util.find_library("c")
        if name:
            libc = ctypes.CDLL(name)
            m_trim_threshold, m_mmap_threshold = -1, -3
            ok = bool(libc.mallopt(m_mmap_threshold, threshold)) and bool(
                libc.mallopt(m_trim_threshold, 2 * threshold)
            )
    except (OSError, AttributeError):  # pragma: no cover - non-glibc platforms
        ok = False
    _MALLOC_TUNED.append(ok)
    return ok
