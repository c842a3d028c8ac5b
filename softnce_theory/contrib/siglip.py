r"""SigLIP: the pairwise sigmoid loss (Zhai et al. 2023), declared through the public API only.

Source: X. Zhai, B. Mustafa, A. Kolesnikov, L. Beyer, "Sigmoid Loss for Language Image
Pre-Training", ICCV 2023 (arXiv 2303.15343): §3.2 (the sigmoid loss, eq. (1), Algorithm 1, the
learnable temperature and bias and their initialisation) and §3.3 (the efficient "chunked"
implementation).

For L2-normalised image / text embeddings :math:`x_i, y_j` of a batch :math:`\mathcal B` the
logits are :math:`z_{ij} = t\,x_i\cdot y_j + b` (temperature :math:`t = e^{t'}`, initialised with
:math:`t' = \log 10`; bias :math:`b`, initialised with :math:`-10`), the labels
:math:`\ell_{ij} = 1` if :math:`i = j` else :math:`-1`, and (eq. 1; Algorithm 1 divides the sum
by ``n``, the batch size, **not** by :math:`|\mathcal B|^2`)

.. math::
    L = -\frac{1}{|\mathcal B|}\sum_{i}\sum_{j}\log\sigma(\ell_{ij} z_{ij}),
    \qquad -\log\sigma(u) = \operatorname{softplus}(-u) = \log(1 + e^{-u}).

Per row (the :class:`~softnce_theory.registry.LossSpec` of this family): a row ``x`` of
:math:`K` cosine similarities with the positive at index 0,

.. math::
    \ell(x; t, b) = \operatorname{softplus}\big(-(t x_0 + b)\big)
        + \sum_{j\ge 1}\operatorname{softplus}(t x_j + b),

so that :math:`L = \frac1{|\mathcal B|}\sum_i \ell(\text{row } i)`. Everything here is computed in
log space (``torch.logaddexp(u, 0)``, never ``log(1 + exp(u))``).

Public names: :func:`siglip_rows` (the per-row loss), :func:`siglip_loss` (the batch loss, dense
or tiled), :func:`oracle`, :func:`batch_oracle` (mpmath), :data:`ROWS_DOMAIN`,
:data:`BATCH_DOMAIN`, :data:`FAMILY`. The claims, definitions and legs (``CLAIMS``,
``DEFINITIONS``, ``DEFINITION_LEGS``, ``PRECISE``, ``PRODUCTION``) are built on first access, so
importing this module costs neither torch, sympy nor mpmath.
"""

from __future__ import annotations

import functools
import itertools
import operator
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from softnce_theory.domain import POSITIVE, REALS, Array, Domain, Interval, Param
from softnce_theory.registry import Family, LossSpec

if TYPE_CHECKING:
    import torch

SOURCE = (
    "Zhai et al. 2023, Sigmoid Loss for Language Image Pre-Training (ICCV 2023, arXiv 2303.15343), "
    "eq. (1) and Algorithm 1"
)
#: the paper's initialisation (§3.2): t = exp(t') with t' = log 10, and b = -10
T_INIT = 10.0
B_INIT = -10.0
#: digits of every mpmath reference
DPS = 50

_T = Param(
    "t",
    POSITIVE,
    typical=(0.5, 30.0),
    extremes=(1e-3, 1e3),
    doc="temperature (logit scale), t = exp(t'); the paper initialises t = 10",
)
_B = Param(
    "b",
    REALS,
    typical=(-15.0, 5.0),
    extremes=(-50.0, 50.0),
    doc="logit bias; the paper initialises b = -10",
)

#: the per-row loss: rows of cosine similarities in [-1, 1], the positive at index 0
ROWS_DOMAIN = Domain(
    arrays=(
        Array(
            "x",
            ("B", "K"),
            interval=Interval(-1.0, 1.0, low_closed=True, high_closed=True),
            typical=(-1.0, 1.0),
            min_sizes={"K": 1},
            doc="cosine similarities, the positive at index 0, K - 1 negatives after it",
        ),
    ),
    params=(_T, _B),
    edges={"K = 1": "a row with no negative: the loss is softplus(-(t x_0 + b))"},
)

#: the batch loss: paired embeddings (row i of img matches row i of txt)
BATCH_DOMAIN = Domain(
    arrays=(
        Array(
            "img", ("B", "D"), doc="image embeddings (L2-normalised inside unless normalize=False)"
        ),
        Array("txt", ("B", "D"), doc="text embeddings, paired with img row by row"),
    ),
    params=(_T, _B),
    edges={"zero embedding row": "ValueError under normalize=True (its cosine is undefined)"},
)


# ==================================================================================== definition


def definition(x: list[Any], t: Any, b: Any) -> Any:
    r"""The per-row loss in SymPy: :math:`\log(1+e^{-(t x_0+b)}) + \sum_{j\ge1}\log(1+e^{t x_j+b})`."""
    import sympy as sp

    return sp.log(1 + sp.exp(-(t * x[0] + b))) + sum(
        (sp.log(1 + sp.exp(t * v + b)) for v in x[1:]), sp.Integer(0)
    )


def gradient(x: list[Any], t: Any, b: Any) -> list[Any]:
    r"""The claimed closed form :math:`\partial\ell/\partial x_k = -t\,\ell_k\,\sigma(-\ell_k z_k)`:
    :math:`-t\,\sigma(-(t x_0+b))` for the positive, :math:`t\,\sigma(t x_j+b)` for a negative."""
    import sympy as sp

    def sig(v: Any) -> Any:
        return 1 / (1 + sp.exp(-v))

    return [-t * sig(-(t * x[0] + b))] + [t * sig(t * v + b) for v in x[1:]]


def _neg_log_sigmoid(v: Any) -> Any:
    """:math:`-\\log\\sigma(v) = \\log(1 + e^{-v})` in mpmath (``log1p``: no cancellation)."""
    import mpmath as mp

    return mp.log1p(mp.exp(-v))


def oracle(row: Sequence[Any], t: Any, b: Any) -> Any:
    r"""The per-row loss in mpmath, from eq. (1): :math:`-\sum_j \log\sigma(\ell_j (t x_j + b))`
    with :math:`\ell_0 = 1` and :math:`\ell_j = -1` otherwise."""
    import mpmath as mp

    return mp.fsum(_neg_log_sigmoid((1 if k == 0 else -1) * (t * v + b)) for k, v in enumerate(row))


def batch_oracle_sims(sims: Sequence[Sequence[Any]], t: Any, b: Any) -> Any:
    r"""Eq. (1) on a square matrix of similarities: :math:`-\frac1B\sum_{ij}\log\sigma(\ell_{ij}
    (t s_{ij} + b))` (mpmath, at the caller's precision)."""
    import mpmath as mp

    n = len(sims)
    return (
        mp.fsum(
            _neg_log_sigmoid((1 if i == j else -1) * (t * s + b))
            for i, r in enumerate(sims)
            for j, s in enumerate(r)
        )
        / n
    )


def cosine_matrix(img: Sequence[Sequence[float]], txt: Sequence[Sequence[float]]) -> list[Any]:
    """The cosine similarities of two lists of vectors in mpmath (exact inputs, working precision)."""
    import mpmath as mp

    def unit(v: Sequence[float]) -> list[Any]:
        w = [mp.mpf(a) for a in v]
        r = mp.sqrt(mp.fsum(a * a for a in w))
        return [a / r for a in w]

    u, v = [unit(a) for a in img], [unit(a) for a in txt]
    return [[mp.fsum(p * q for p, q in zip(a, c, strict=True)) for c in v] for a in u]


def batch_oracle(img: Any, txt: Any, t: Any, b: Any) -> Any:
    """:func:`batch_oracle_sims` of the cosine similarities of ``img`` and ``txt`` (nested lists
    or arrays of floats), at :data:`DPS` digits."""
    import mpmath as mp

    with mp.workdps(DPS):
        sims = cosine_matrix(_as_lists(img), _as_lists(txt))
        return batch_oracle_sims(sims, mp.mpf(float(t)), mp.mpf(float(b)))


def _as_lists(a: Any) -> list[list[float]]:
    if hasattr(a, "detach"):
        a = a.detach().double().cpu().tolist()
    return [[float(v) for v in r] for r in a]


# ========================================================================================= torch


def _softplus(u: torch.Tensor) -> torch.Tensor:
    r""":math:`\log(1 + e^{u})` in log space."""
    import torch

    return torch.logaddexp(u, u.new_zeros(()))


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    import torch

    return torch.promote_types(dtype, torch.float32)


def siglip_rows(x: torch.Tensor, t: Any = T_INIT, b: Any = B_INIT) -> torch.Tensor:
    r"""Per-row SigLIP losses of rows of cosine similarities, the positive at index 0.

    .. math::
        \ell_i = \operatorname{softplus}\big(-(t x_{i0} + b)\big)
               + \sum_{j\ge 1}\operatorname{softplus}(t x_{ij} + b)

    Source: Zhai et al. 2023 (arXiv 2303.15343) eq. (1), one row of the sum.

    Args:
        x: ``(B, K)`` floating tensor, entries in ``[-1, 1]``.
        t: temperature :math:`t > 0` (a number or a one-element tensor, whose gradient flows).
        b: bias (a number or a one-element tensor, whose gradient flows).

    Returns:
        ``(B,)`` losses, computed (and returned) in at least float32.

    Raises:
        ValueError: naming the argument, for any input outside :data:`ROWS_DOMAIN`.
    """
    ROWS_DOMAIN.validate({"x": x, "t": t, "b": b})
    x = x.to(_compute_dtype(x.dtype))
    z = _scalar(t, x) * x + _scalar(b, x)
    return _softplus(-z[:, 0]) + _softplus(z[:, 1:]).sum(dim=1)


def _scalar(v: Any, like: torch.Tensor) -> Any:
    """A validated parameter as a 0-d tensor of ``like``'s dtype (a tensor keeps its graph)."""
    if hasattr(v, "detach"):
        return v.reshape(()).to(dtype=like.dtype, device=like.device)
    return float(v)


def _check_tile(tile: Any) -> int:
    """``tile``: ``None`` or ``0`` (dense) or a positive tile edge."""
    if tile is None:
        return 0
    if isinstance(tile, bool):
        raise ValueError(f"tile must be None or an integer >= 0, got {tile!r}")
    try:
        k = operator.index(tile)
    except TypeError:
        raise ValueError(
            f"tile must be None or an integer >= 0, got {type(tile).__name__}"
        ) from None
    if k < 0:
        raise ValueError(f"tile must be None or an integer >= 0, got {k}")
    return int(k)


def siglip_loss(
    img: torch.Tensor,
    txt: torch.Tensor,
    t: Any = T_INIT,
    b: Any = B_INIT,
    tile: int | None = None,
    *,
    normalize: bool = True,
) -> torch.Tensor:
    r"""The SigLIP batch loss, eq. (1) of Zhai et al. 2023 (arXiv 2303.15343):

    .. math::
        L = -\frac{1}{B}\sum_{i=1}^{B}\sum_{j=1}^{B}\log\sigma\big(\ell_{ij}(t\,x_i\cdot y_j + b)\big),
        \qquad \ell_{ij} = 2[i = j] - 1,

    normalised by the batch size :math:`B` (Algorithm 1), not by the :math:`B^2` pairs.

    Args:
        img: ``(B, D)`` image embeddings; row ``i`` is paired with ``txt`` row ``i``.
        txt: ``(B, D)`` text embeddings, same dtype and device as ``img``.
        t: temperature :math:`t > 0` (the paper's :math:`e^{t'}`, initialised at 10); a number or
            a one-element tensor whose gradient flows (dense and tiled paths).
        b: bias (the paper initialises it at -10); a number or a one-element tensor.
        tile: ``None`` or ``0``: dense (the ``B x B`` logit matrix is formed); ``k > 0``: tiled,
            ``k x k`` blocks recomputed in the backward pass, so the extra memory is
            :math:`O(k^2 + B D)` instead of :math:`O(B^2)`; the paper's chunked implementation
            (§3.3) motivates it. ``None`` is dense because no dense/tiled crossover was measured
            for this loss.
        normalize: L2-normalise the rows first (as Algorithm 1 does); a row of norm 0 is then a
            ``ValueError`` (its cosine similarity is undefined). ``False``: the logits use the
            plain dot products.

    Returns:
        A 0-d tensor in at least float32.

    Raises:
        ValueError: naming the argument, for inputs outside :data:`BATCH_DOMAIN`, mismatched
            dtypes/devices, or a bad ``tile``.
    """
    import torch
    import torch.nn.functional as F

    BATCH_DOMAIN.validate({"img": img, "txt": txt, "t": t, "b": b})
    if txt.dtype != img.dtype or txt.device != img.device:
        raise ValueError(
            f"txt must have the dtype and device of img ({img.dtype}, {img.device}), got "
            f"({txt.dtype}, {txt.device})"
        )
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize must be a bool, got {type(normalize).__name__}")
    k = _check_tile(tile)
    dt = _compute_dtype(img.dtype)
    u, v = img.to(dt), txt.to(dt)
    if normalize:
        for name, w in (("img", u), ("txt", v)):
            if w.numel() and not bool((w.detach().norm(dim=1) > 0).all()):
                raise ValueError(
                    f"{name}: every row must have a non-zero norm under normalize=True (the "
                    "cosine similarity of a zero vector is undefined)"
                )
        u, v = F.normalize(u, dim=1), F.normalize(v, dim=1)
    tt, bb = _as_tensor(t, u), _as_tensor(b, u)
    n = u.shape[0]
    if k:
        out: torch.Tensor = _tiled_function().apply(u, v, tt, bb, k)
        return out
    z = tt * (u @ v.T) + bb
    eye = torch.eye(n, dtype=torch.bool, device=u.device)
    return _softplus(torch.where(eye, -z, z)).sum() / n


def _as_tensor(v: Any, like: torch.Tensor) -> torch.Tensor:
    import torch

    if isinstance(v, torch.Tensor):
        return v.reshape(()).to(dtype=like.dtype, device=like.device)
    return torch.tensor(float(v), dtype=like.dtype, device=like.device)


@functools.cache
def _tiled_function() -> Any:
    r"""The tiled autograd Function (built on first use, so importing this module needs no torch).

    Forward: :math:`\sum` over ``k x k`` tiles :math:`(I, J)` of
    :math:`\operatorname{softplus}(-\ell_{ij} z_{ij})`, divided by :math:`B`. Backward recomputes
    each tile: with :math:`G_{ij} = \frac{g}{B}\,(-\ell_{ij})\,\sigma(-\ell_{ij} z_{ij})` (the
    pair gradient, claim ``siglip.pair_gradient``),
    :math:`\partial/\partial x_I \mathrel{+}= t\,G\,y_J`,
    :math:`\partial/\partial y_J \mathrel{+}= t\,G^\top x_I`,
    :math:`\partial/\partial t \mathrel{+}= \sum G\odot S`, :math:`\partial/\partial b \mathrel{+}= \sum G`.
    """
    import torch

    def tiles(n: int, k: int) -> Any:
        for i0 in range(0, n, k):
            for j0 in range(0, n, k):
                yield i0, min(i0 + k, n), j0, min(j0 + k, n)

    def signed(z: torch.Tensor, i0: int, j0: int) -> torch.Tensor:
        """``-z`` on the diagonal pairs (i == j) inside the tile, ``z`` elsewhere."""
        r = torch.arange(z.shape[0], device=z.device)[:, None] + i0
        c = torch.arange(z.shape[1], device=z.device)[None, :] + j0
        return torch.where(r == c, -z, z)

    class SigLipTiled(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx: Any, u: torch.Tensor, v: torch.Tensor, t: torch.Tensor, b: torch.Tensor, k: int
        ) -> torch.Tensor:
            n = u.shape[0]
            total = u.new_zeros(())
            for i0, i1, j0, j1 in tiles(n, k):
                z = t * (u[i0:i1] @ v[j0:j1].T) + b
                total = total + _softplus(signed(z, i0, j0)).sum()
            ctx.save_for_backward(u, v, t, b)
            ctx.k = k
            return total / n

        @staticmethod
        def backward(ctx: Any, g: torch.Tensor) -> Any:
            u, v, t, b = ctx.saved_tensors
            k, n = ctx.k, u.shape[0]
            need_u, need_v, need_t, need_b = ctx.needs_input_grad[:4]
            gu = torch.zeros_like(u) if need_u else None
            gv = torch.zeros_like(v) if need_v else None
            gt = u.new_zeros(())
            gb = u.new_zeros(())
            scale = g / n
            for i0, i1, j0, j1 in tiles(n, k):
                s = u[i0:i1] @ v[j0:j1].T
                w = signed(t * s + b, i0, j0)  # -l z
                # d softplus(-l z)/dz = -l sigma(-l z): sigma(w) on the diagonal with sign -1
                sig = torch.sigmoid(w)
                grad = signed(sig, i0, j0) * scale  # G = -l sigma(-l z) g / B
                if gu is not None:
                    gu[i0:i1] += t * (grad @ v[j0:j1])
                if gv is not None:
                    gv[j0:j1] += t * (grad.T @ u[i0:i1])
                if need_t:
                    gt = gt + (grad * s).sum()
                if need_b:
                    gb = gb + grad.sum()
            return gu, gv, (gt if need_t else None), (gb if need_b else None), None

    return SigLipTiled


# ================================================================================ claims (lazy)


def _const(value: tuple[Any, ...]) -> Callable[[], tuple[Any, ...]]:
    """A claim's ``facts`` callable returning ``value``."""
    return lambda: value


class _DeferredTorch:
    """``torch``, imported on first attribute access."""

    def __getattr__(self, name: str) -> Any:
        import torch

        return getattr(torch, name)


_LAZY = ("CLAIMS", "DEFINITIONS", "DEFINITION_LEGS", "PRECISE", "PRODUCTION")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return _parts()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _parts() -> dict[str, Any]:
    """The SymPy definitions and claims with their numeric legs (sympy/mpmath/torch imported
    here, on first access)."""
    import mpmath as mp
    import sympy as sp

    if TYPE_CHECKING:
        import torch
    else:
        torch = _DeferredTorch()  # listing the claims imports no torch; running a leg does

    from softnce_theory.derivations import CheckConfig, Claim, Definition, LegRegistry, Tally
    from softnce_theory.derivations.tactics import (
        Both,
        ComputeLimit,
        Differentiate,
        Sign,
        Simplify,
        index_facts,
    )

    fam = "siglip"
    N = sp.Symbol("N", integer=True, positive=True)  # negatives per row: K = N + 1
    j, m = sp.symbols("j m", integer=True)
    p = sp.Symbol("p", real=True)  # the positive's similarity (x_0)
    nb = sp.IndexedBase("n", real=True)  # the negatives' similarities (x_1 .. x_N)
    t = sp.Symbol("t", positive=True)
    b = sp.Symbol("b", real=True)
    s, u, z, c = sp.symbols("s u z c", real=True)
    lab = sp.Symbol("ell", real=True)
    K = N + 1

    def softplus(v: Any) -> Any:
        return sp.log(1 + sp.exp(v))

    def sig(v: Any) -> Any:
        return 1 / (1 + sp.exp(-v))

    def pair(zz: Any, ll: Any) -> Any:
        r""":math:`-\log\sigma(\ell z)`, one pair of eq. (1)."""
        return softplus(-ll * zz)

    def row(pos: Any, neg: Callable[[Any], Any], tt: Any = t, bb: Any = b) -> Any:
        r"""One row of eq. (1) with symbolic size: positive ``pos``, negatives ``neg(j)``."""
        return softplus(-(tt * pos + bb)) + sp.Sum(softplus(tt * neg(j) + bb), (j, 1, N))

    R = row(p, lambda k: nb[k])
    Req = row(s, lambda k: s)  # every similarity of the row equal to s
    bstar = -t * s - sp.log(N)  # the optimal bias (claim siglip.optimal_bias)
    u_init = sp.Integer(int(B_INIT))  # the initial logit t * 0 + b of nearly orthogonal pairs

    def share(at: Any) -> Any:
        r"""The positive's share of the logit-gradient mass of a row whose logits all equal
        ``at``: :math:`|\partial_z \text{pair}(z, 1)| / (|\cdot| + N\,|\partial_z
        \text{pair}(z, -1)|)` (unevaluated derivatives of the pair definition)."""
        gp = -sp.Derivative(pair(u, 1), u)
        gn = sp.Derivative(pair(u, -1), u)
        e = gp / (gp + N * gn)
        return e if at is u else e.subs(u, at)

    Sm = sp.IndexedBase("S", real=True)  # the B x B similarity matrix
    Bsym = sp.Symbol("B", integer=True, positive=True)
    i_ = sp.Symbol("i", integer=True)
    eq1 = (
        sp.Sum(
            pair(t * Sm[i_, j] + b, 2 * sp.KroneckerDelta(i_, j) - 1), (j, 1, Bsym), (i_, 1, Bsym)
        )
        / Bsym
    )
    # the batch mean of the per-row loss: the positive S_ii, the negatives S_ij (j != i)
    eq1_rows = (
        sp.Sum(
            softplus(-(t * Sm[i_, i_] + b))
            + sp.Sum((1 - sp.KroneckerDelta(i_, j)) * softplus(t * Sm[i_, j] + b), (j, 1, Bsym)),
            (i_, 1, Bsym),
        )
        / Bsym
    )

    definitions = (
        Definition(
            name="pair_loss",
            family=fam,
            build=lambda: pair(z, lab),
            sizes=(),
            args=(z, lab),
            source=SOURCE,
            doc="-log sigma(ell z): one (image, text) pair, label ell = +1 / -1",
        ),
        Definition(
            name="row_loss",
            family=fam,
            build=lambda: R,
            sizes=(N,),
            args=(p, nb, t, b),
            source=SOURCE,
            doc="one row of eq. (1): softplus(-(t p + b)) + sum_j softplus(t n_j + b)",
        ),
        Definition(
            name="batch_loss",
            family=fam,
            build=lambda: eq1,
            sizes=(Bsym,),
            args=(Sm, t, b),
            source=SOURCE,
            doc="eq. (1): -(1/B) sum_ij log sigma(ell_ij (t S_ij + b)), ell_ij = 2[i = j] - 1",
        ),
    )

    # ------------------------------------------------------------------ statements
    grad_parts = (
        sp.Eq(sp.Derivative(R, p), -t * sig(-(t * p + b))),
        sp.Eq(sp.Derivative(R, nb[m]), t * sig(t * nb[m] + b)),
        sp.Eq(
            sp.Derivative(R, t),
            -p * sig(-(t * p + b)) + sp.Sum(nb[j] * sig(t * nb[j] + b), (j, 1, N)),
        ),
        sp.Eq(sp.Derivative(R, b), -sig(-(t * p + b)) + sp.Sum(sig(t * nb[j] + b), (j, 1, N))),
    )
    grad_steps = ("delta_sums", "merge_sums")
    statements: dict[str, Callable[[], Any]] = {
        "pair_gradient": lambda: sp.Eq(sp.Derivative(pair(z, lab), z), -lab * sig(-lab * z)),
        "row_gradient": lambda: sp.And(*grad_parts),
        "shift_bias": lambda: sp.Eq(
            row(p + c, lambda k: nb[k] + c), row(p, lambda k: nb[k], bb=b + t * c)
        ),
        "label_flip": lambda: sp.Eq(
            R - row(-p, lambda k: -nb[k], bb=-b),
            t * (sp.Sum(nb[j], (j, 1, N)) - p) + (N - 1) * b,
        ),
        "optimal_bias": lambda: sp.Eq(sp.Subs(sp.Derivative(Req, b), b, bstar), 0),
        "bias_convexity": lambda: sp.Gt(sp.Derivative(Req, b, 2), 0),
        "optimal_loss": lambda: sp.Eq(
            sp.Subs(Req, b, bstar), -sp.log(1 / K) - (K - 1) * sp.log(1 - 1 / K)
        ),
        "optimal_loss_limit": lambda: sp.Eq(
            sp.Limit(Req.subs(b, bstar).doit() - sp.log(K), N, sp.oo), 1
        ),
        "gradient_share": lambda: sp.Eq(share(u), 1 / (1 + N * sp.exp(u))),
        "balanced_at_optimum": lambda: sp.Eq(share(-sp.log(N)), sp.Rational(1, 2)),
        "init_share_limit": lambda: sp.Eq(sp.Limit(share(u_init), N, sp.oo), 0),
        "batch_loss": lambda: sp.Eq(eq1, eq1_rows),
    }

    table: list[tuple[str, str, str, tuple[str, ...], Any, tuple[Any, ...], tuple[str, ...]]] = [
        # (name, kind, text, evidence, tactic, facts, uses)
        (
            "pair_gradient",
            "gradient",
            "For one pair, d/dz [-log sigma(ell z)] = -ell sigma(-ell z) (for every real ell; "
            "the labels are ell = +1 / -1).",
            ("symbolic", "precise", "production"),
            Differentiate(steps=("simplify",)),
            (),
            ("pair_loss",),
        ),
        (
            "row_gradient",
            "gradient",
            "For a row of any size K = N + 1: d/dp = -t sigma(-(t p + b)), d/dn_m = t sigma(t n_m "
            "+ b) (1 <= m <= N), d/dt = -p sigma(-(t p + b)) + sum_j n_j sigma(t n_j + b), d/db = "
            "-sigma(-(t p + b)) + sum_j sigma(t n_j + b).",
            ("symbolic", "precise", "production"),
            Both(tuple(Differentiate(steps=grad_steps) for _ in grad_parts)),
            tuple(index_facts(N, m)),
            ("row_loss",),
        ),
        (
            "shift_bias",
            "identity",
            "Shifting every similarity of a row by c equals shifting the bias by t c: "
            "l(x + c; t, b) = l(x; t, b + t c). The loss is NOT invariant under a logit shift.",
            ("symbolic", "precise", "production"),
            Simplify(steps=("expand",)),
            (),
            ("row_loss",),
        ),
        (
            "label_flip",
            "identity",
            "Flipping the signs of the similarities and of the bias swaps the roles of the labels: "
            "l(x; t, b) - l(-x; t, -b) = t (sum_{j>=1} x_j - x_0) + (K - 2) b "
            "(from softplus(u) - softplus(-u) = u).",
            ("symbolic", "precise", "production"),
            Simplify(steps=("merge_sums", "linear_sums")),
            (),
            ("row_loss",),
        ),
        (
            "optimal_bias",
            "identity",
            "For a row whose K similarities all equal s, d l/d b vanishes at b* = -t s - log(K-1), "
            "i.e. sigma(t s + b*) = 1/K (for K >= 2).",
            ("symbolic", "precise", "production"),
            Simplify(steps=("doit",)),
            (),
            ("row_loss",),
        ),
        (
            "bias_convexity",
            "inequality",
            "The row loss is strictly convex in the bias (d^2 l / d b^2 > 0), so b* is its unique "
            "minimiser.",
            ("symbolic", "precise"),
            Sign(steps=("doit", "factor")),
            (),
            ("row_loss",),
        ),
        (
            "optimal_loss",
            "identity",
            "At b*, the row loss (all similarities equal) is K times the binary entropy of 1/K: "
            "-log(1/K) - (K-1) log(1 - 1/K).",
            ("symbolic", "precise", "production"),
            Simplify(steps=("doit",)),
            (),
            ("row_loss",),
        ),
        (
            "optimal_loss_limit",
            "limit",
            "The optimal row loss exceeds log K by (K-1) log(K/(K-1)) -> 1 as K -> infinity.",
            ("symbolic", "precise"),
            ComputeLimit(),
            (),
            ("row_loss",),
        ),
        (
            "gradient_share",
            "identity",
            "When every logit of a row equals u, the positive carries the fraction 1/(1 + (K-1) e^u) "
            "of the row's logit-gradient mass |d l/d z_0| / sum_j |d l/d z_j|.",
            ("symbolic", "precise", "production"),
            Simplify(steps=("derivatives", "simplify")),
            (),
            ("pair_loss",),
        ),
        (
            "balanced_at_optimum",
            "identity",
            "At the optimal bias (u = -log(K-1)) the positive carries exactly half of the "
            "logit-gradient mass, for every K >= 2.",
            ("symbolic", "precise", "production"),
            Simplify(steps=("doit", "simplify")),
            (),
            ("pair_loss",),
        ),
        (
            "init_share_limit",
            "limit",
            "At the paper's initialisation (t = 10, b = -10) and similarities 0 (u = -10), the "
            "positive's gradient share 1/(1 + (K-1) e^-10) tends to 0 as K -> infinity; it is 1/2 "
            "at K - 1 = e^10 (about 22026).",
            ("symbolic", "precise"),
            ComputeLimit(),
            (),
            ("pair_loss",),
        ),
        (
            "batch_loss",
            "algorithmic",
            "Eq. (1), normalised by 1/|B| (not 1/|B|^2), is the batch mean of the per-row loss "
            "(positive S_ii, negatives S_ij, j != i); siglip_loss computes it, dense and tiled "
            "(float64 vs mpmath at 50 digits), with d/dt and d/db the batch means of the closed "
            "forms of siglip.row_gradient.",
            ("precise", "production"),
            None,
            (),
            ("batch_loss",),
        ),
    ]
    claims = tuple(
        Claim(
            id=f"{fam}.{name}",
            family=fam,
            kind=kind,  # type: ignore[arg-type]
            text=text,
            statement=statements[name],
            source=SOURCE
            + (
                "; derived here (reconstructed from eq. (1), not stated in the paper)"
                if name not in ("pair_gradient", "batch_loss")
                else ""
            )
            + ("; bias init -10 motivated in §3.2" if "optimal" in name or "init" in name else ""),
            evidence=evidence,  # type: ignore[arg-type]
            tactic=tactic,
            facts=_const(facts) if facts else None,
            uses=uses,
        )
        for name, kind, text, evidence, tactic, facts, uses in table
    )

    # ------------------------------------------------------------------ numeric legs
    precise = LegRegistry("precise")
    production = LegRegistry("production")
    deflegs = LegRegistry("definition")

    def rng_for(cfg: CheckConfig, cid: str) -> random.Random:
        return random.Random(cfg.seed_for(cid))

    def sample_row(rng: random.Random, k: int) -> tuple[list[float], float, float]:
        return (
            [rng.uniform(-1, 1) for _ in range(k)],
            rng.uniform(*_T.typical_range()),
            rng.uniform(*_B.typical_range()),
        )

    def mp_row(row: Sequence[float], tt: float, bb: float) -> Any:
        return oracle([mp.mpf(v) for v in row], mp.mpf(tt), mp.mpf(bb))

    def mp_grads(row: Sequence[float], tt: float, bb: float) -> list[Any]:
        """mpmath's numerical derivative of the oracle: rows, then t, then b."""
        k = len(row)
        vals = [mp.mpf(v) for v in (*row, tt, bb)]

        def f(*a: Any) -> Any:
            return oracle(list(a[:k]), a[k], a[k + 1])

        return [mp.diff(f, vals, tuple(int(q == i) for q in range(k + 2))) for i in range(k + 2)]

    def closed_grads(row: Sequence[float], tt: float, bb: float) -> list[Any]:
        """The closed forms of siglip.row_gradient (rows, t, b) in mpmath."""
        T, Bb = mp.mpf(tt), mp.mpf(bb)
        zs = [T * mp.mpf(v) + Bb for v in row]
        sg = [1 / (1 + mp.exp(zs[0]))] + [1 / (1 + mp.exp(-w)) for w in zs[1:]]
        lab_ = [1] + [-1] * (len(row) - 1)
        gz = [-lv * sv for lv, sv in zip(lab_, sg, strict=True)]  # d l / d z_k
        return [
            *(T * g for g in gz),
            mp.fsum(g * mp.mpf(v) for g, v in zip(gz, row, strict=True)),
            mp.fsum(gz),
        ]

    def torch_rows(
        rows: list[list[float]], tt: float, bb: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        x = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
        T = torch.tensor(tt, dtype=torch.float64, requires_grad=True)
        Bb = torch.tensor(bb, dtype=torch.float64, requires_grad=True)
        out = siglip_rows(x, T, Bb)
        gx, gt, gb = torch.autograd.grad(out.sum(), [x, T, Bb])
        return out.detach(), gx, gt, gb

    def reg(registry: LegRegistry, name: str) -> Callable[[Callable[..., Any]], Any]:
        cid = f"{fam}.{name}"

        def deco(fn: Callable[..., Any]) -> Any:
            registry.register(cid)(functools.partial(fn, cid=cid))
            return fn

        return deco

    # -- definition legs: the SymPy definitions vs the mpmath oracles, 50 digits
    def write_out(expr: Any) -> Any:
        """Every ``Sum`` with integer limits written out term by term (what ``doit`` does for a
        finite sum, without its closed-form search; the ranges here are independent)."""

        def terms(sm: Any) -> Any:
            ranges = [range(int(lo), int(hi) + 1) for _, lo, hi in sm.limits]
            dummies = [lim[0] for lim in sm.limits]
            return sp.Add(
                *(
                    sm.function.xreplace(dict(zip(dummies, map(sp.Integer, at), strict=True)))
                    for at in itertools.product(*ranges)
                )
            )

        return expr.replace(lambda e: isinstance(e, sp.Sum), terms)

    @functools.cache
    def at_size(name: str, k: int) -> Callable[..., Any]:
        """The definition ``name`` written out at size ``k``, as an mpmath function of its
        entries (row: p, n_1..n_k, t, b; batch: S_11..S_kk row-major, t, b)."""
        if name == "row_loss":
            entries = [p, *(nb[q + 1] for q in range(k))]
            expr = write_out(definitions[1].build().xreplace({N: k}))
        else:
            entries = [Sm[q + 1, r + 1] for q in range(k) for r in range(k)]
            expr = write_out(definitions[2].build().xreplace({Bsym: k}))
        plain = [sp.Symbol(f"a{q}", real=True) for q in range(len(entries))]
        expr = expr.xreplace(dict(zip(entries, plain, strict=True)))
        fn: Callable[..., Any] = sp.lambdify([*plain, t, b], expr, "mpmath")
        return fn

    def def_leg(cfg: CheckConfig, *, did: str) -> Any:
        rng = random.Random(cfg.seed_for(did))
        tally = Tally("definition", rtol=1e-40, atol=1e-45, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(4, 2)):
                _, tt, bb = sample_row(rng, 1)
                if did.endswith("pair_loss"):
                    zz, ll = rng.uniform(-60, 60), rng.choice((-1, 1))
                    e = definitions[0].build().xreplace({z: sp.Float(zz, 60), lab: ll})
                    got = mp.mpf(sp.N(e, DPS + 10))
                    want = _neg_log_sigmoid(ll * mp.mpf(zz))
                    where = f"z={zz}, ell={ll}"
                elif did.endswith("batch_loss"):
                    k = rng.randint(1, 4)
                    sims = [[rng.uniform(-1, 1) for _ in range(k)] for _ in range(k)]
                    with mp.workdps(DPS + 10):
                        vals = [mp.mpf(v) for v in (*(v for r in sims for v in r), tt, bb)]
                        got = at_size("batch_loss", k)(*vals)
                    want = batch_oracle_sims(
                        [[mp.mpf(v) for v in r] for r in sims], mp.mpf(tt), mp.mpf(bb)
                    )
                    where = f"S={sims}, t={tt}, b={bb}"
                else:
                    k = rng.randint(1, 5)
                    rw = sample_row(rng, k + 1)[0]
                    with mp.workdps(DPS + 10):
                        got = at_size("row_loss", k)(*(mp.mpf(v) for v in (*rw, tt, bb)))
                    want = mp_row(rw, tt, bb)
                    where = f"row {rw}, t={tt}, b={bb}"
                tally.close(got, want, where)
        return tally.result("the SymPy definition vs the mpmath oracle (eq. 1), 50 digits")

    for d in definitions:
        deflegs.register(d.id)(functools.partial(def_leg, did=d.id))

    # -- siglip.pair_gradient
    @reg(precise, "pair_gradient")
    def _pair_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(8, 2)):
                zz, ll = mp.mpf(rng.uniform(-40, 40)), rng.choice((-1, 1))
                num = mp.diff(lambda w, ll=ll: _neg_log_sigmoid(ll * w), zz)
                tally.close(-ll / (1 + mp.exp(ll * zz)), num, f"z={zz}, ell={ll}")
        return tally.result("-ell sigma(-ell z) vs mpmath.diff of the pair oracle")

    @reg(production, "pair_gradient")
    def _pair_production(cfg: CheckConfig, cid: str) -> Any:
        # the per-row torch loss: d l/d x_k = t * (-ell_k sigma(-ell_k z_k)) (chain rule, dz/dx = t)
        rng = rng_for(cfg, cid)
        tally = Tally("production", rtol=1e-12, atol=1e-300, dtype="float64")
        for _ in range(cfg.points(6, 2)):
            rw, tt, bb = sample_row(rng, rng.randint(2, 6))
            _, gx, _, _ = torch_rows([rw], tt, bb)
            with mp.workdps(DPS):
                want = closed_grads(rw, tt, bb)[: len(rw)]
            tally.close_all(gx[0].tolist(), want, f"row {rw}, t={tt}, b={bb}")
        return tally.result("autograd of siglip_rows vs t * (-ell sigma(-ell z)), float64")

    # -- siglip.row_gradient
    @reg(precise, "row_gradient")
    def _row_grad_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(4, 1)):
                rw, tt, bb = sample_row(rng, rng.randint(1, 4))
                tally.close_normwise(
                    closed_grads(rw, tt, bb), mp_grads(rw, tt, bb), f"row {rw}, t={tt}, b={bb}"
                )
        return tally.result("closed forms (x, t, b) vs mpmath.diff of the row oracle, 50 digits")

    @reg(production, "row_gradient")
    def _row_grad_production(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("production", rtol=1e-12, atol=1e-300, dtype="float64")
        for _ in range(cfg.points(6, 2)):
            k = rng.randint(1, 6)
            rows = [sample_row(rng, k)[0] for _ in range(3)]
            _, tt, bb = sample_row(rng, 1)
            _, gx, gt, gb = torch_rows(rows, tt, bb)
            with mp.workdps(DPS):
                per = [closed_grads(r, tt, bb) for r in rows]
                for q, r in enumerate(rows):
                    tally.close_all(gx[q].tolist(), per[q][:k], f"d/dx, row {r}, t={tt}, b={bb}")
                tally.close(float(gt), mp.fsum(g[k] for g in per), f"d/dt at rows {rows}")
                tally.close(float(gb), mp.fsum(g[k + 1] for g in per), f"d/db at rows {rows}")
        return tally.result("autograd of siglip_rows (x, t, b) vs the closed forms, float64")

    # -- siglip.shift_bias
    @reg(precise, "shift_bias")
    def _shift_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(8, 2)):
                rw, tt, bb = sample_row(rng, rng.randint(1, 6))
                cc = mp.mpf(rng.uniform(-2, 2))
                T, Bb = mp.mpf(tt), mp.mpf(bb)
                lhs = oracle([mp.mpf(v) + cc for v in rw], T, Bb)
                tally.close(
                    lhs, oracle([mp.mpf(v) for v in rw], T, Bb + T * cc), f"row {rw}, c={cc}"
                )
        return tally.result("oracle(x + c; t, b) vs oracle(x; t, b + t c), 50 digits")

    @reg(production, "shift_bias")
    def _shift_production(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("production", rtol=1e-12, atol=1e-12, dtype="float64")
        for _ in range(cfg.points(6, 2)):
            k = rng.randint(1, 6)
            rows = [[rng.uniform(-0.5, 0.5) for _ in range(k)] for _ in range(3)]
            cc = rng.choice((-0.5, -0.25, 0.25, 0.5))  # exact in binary: x + c is exact
            _, tt, bb = sample_row(rng, 1)
            moved = siglip_rows(torch.tensor(rows, dtype=torch.float64) + cc, tt, bb)
            rebias = siglip_rows(torch.tensor(rows, dtype=torch.float64), tt, bb + tt * cc)
            unshifted = siglip_rows(torch.tensor(rows, dtype=torch.float64), tt, bb)
            tally.close_all(moved.tolist(), rebias.tolist(), f"rows {rows}, c={cc}, t={tt}, b={bb}")
            if bool(torch.allclose(moved, unshifted, rtol=1e-6)):
                tally.fail(f"rows {rows}: shifting by {cc} left the loss unchanged at t={tt}")
        return tally.result("siglip_rows(x + c; t, b) vs siglip_rows(x; t, b + t c), float64")

    # -- siglip.label_flip
    def flip_rhs(rw: Sequence[Any], T: Any, Bb: Any) -> Any:
        return T * (mp.fsum(rw[1:]) - rw[0]) + (len(rw) - 2) * Bb

    @reg(precise, "label_flip")
    def _flip_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(8, 2)):
                rw, tt, bb = sample_row(rng, rng.randint(1, 6))
                xs, T, Bb = [mp.mpf(v) for v in rw], mp.mpf(tt), mp.mpf(bb)
                lhs = oracle(xs, T, Bb) - oracle([-v for v in xs], T, -Bb)
                tally.close(lhs, flip_rhs(xs, T, Bb), f"row {rw}, t={tt}, b={bb}")
        return tally.result("oracle(x; t, b) - oracle(-x; t, -b) vs t(sum x_j - x_0) + (K-2) b")

    @reg(production, "label_flip")
    def _flip_production(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("production", rtol=0.0, atol=0.0, dtype="float64")
        eps = float(torch.finfo(torch.float64).eps)
        for _ in range(cfg.points(6, 2)):
            k = rng.randint(1, 6)
            rows = [sample_row(rng, k)[0] for _ in range(3)]
            _, tt, bb = sample_row(rng, 1)
            x = torch.tensor(rows, dtype=torch.float64)
            a, f = siglip_rows(x, tt, bb), siglip_rows(-x, tt, -bb)
            for q, r in enumerate(rows):
                with mp.workdps(DPS):
                    want = flip_rhs([mp.mpf(v) for v in r], mp.mpf(tt), mp.mpf(bb))
                got = float(a[q]) - float(f[q])
                bound = 16 * k * eps * (float(a[q]) + float(f[q]) + abs(tt) + abs(bb))
                tally.holds(bound - abs(got - float(want)), f"row {r}, t={tt}, b={bb}")
        return tally.result("siglip_rows(x) - siglip_rows(-x, b=-b) vs the identity, float64")

    # -- the optimal bias and the balance at initialisation
    def eq_row(k: int, ss: Any, T: Any, Bb: Any) -> Any:
        return oracle([ss] * k, T, Bb)

    def sample_eq(rng: random.Random) -> tuple[int, Any, Any]:
        return rng.randint(2, 40), mp.mpf(rng.uniform(-1, 1)), mp.mpf(rng.uniform(0.5, 30))

    @reg(precise, "optimal_bias")
    def _optb_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=0.0, atol=1e-40, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(6, 2)):
                k, ss, T = sample_eq(rng)
                bstar_ = -T * ss - mp.log(k - 1)

                def d_db(bb: Any, k: int = k, ss: Any = ss, T: Any = T) -> Any:
                    return mp.diff(lambda w: eq_row(k, ss, T, w), bb)

                tally.close(d_db(bstar_), 0, f"K={k}, s={ss}, t={T}: d/db at b*")
                # and d/db changes sign there (a minimum, with siglip.bias_convexity)
                tally.holds(d_db(bstar_ + 1) * -d_db(bstar_ - 1), f"K={k}: sign change at b*")
        return tally.result("mpmath.diff of the oracle in b at b* = -t s - log(K-1) vs 0")

    @reg(production, "optimal_bias")
    def _optb_production(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("production", rtol=0.0, atol=0.0, dtype="float64")
        for _ in range(cfg.points(6, 2)):
            k, ss, T = sample_eq(rng)
            bstar_f = float(-T * ss - mp.log(k - 1))
            _, _, _, gb = torch_rows([[float(ss)] * k], float(T), bstar_f)
            # rounding moves each logit by ~eps (|t s| + |b*|) and sigma' <= 1/4, over K terms
            eps = float(torch.finfo(torch.float64).eps)
            bound = 8 * eps * k * (1 + abs(float(T * ss)) + abs(bstar_f))
            tally.holds(bound - abs(float(gb)), f"K={k}, s={ss}, t={T}: d/db={float(gb)}")
            lo = siglip_rows(
                torch.tensor([[float(ss)] * k], dtype=torch.float64), float(T), bstar_f
            )
            for d in (-0.5, 0.5):
                other = siglip_rows(
                    torch.tensor([[float(ss)] * k], dtype=torch.float64), float(T), bstar_f + d
                )
                tally.holds(float(other[0] - lo[0]), f"K={k}: loss at b* + {d} below loss at b*")
        return tally.result("autograd d/db of siglip_rows at b* ~ 0 and a minimum, float64")

    @reg(precise, "bias_convexity")
    def _convex_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=0.0, atol=0.0, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(8, 2)):
                k, ss, T = sample_eq(rng)
                bb = mp.mpf(rng.uniform(-30, 10))
                d2 = mp.diff(lambda w, k=k, ss=ss, T=T: eq_row(k, ss, T, w), bb, 2)
                tally.holds(d2, f"K={k}, s={ss}, t={T}, b={bb}: d2={d2}")
        return tally.result("second derivative of the oracle in b (mpmath.diff) > 0")

    def opt_value(k: int) -> Any:
        kk = mp.mpf(k)
        return -mp.log(1 / kk) - (kk - 1) * mp.log(1 - 1 / kk)

    @reg(precise, "optimal_loss")
    def _optl_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=1e-40, atol=1e-40, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(8, 2)):
                k, ss, T = sample_eq(rng)
                got = eq_row(k, ss, T, -T * ss - mp.log(k - 1))
                tally.close(got, opt_value(k), f"K={k}, s={ss}, t={T}")
        return tally.result("oracle at b* vs K H(1/K), 50 digits")

    @reg(production, "optimal_loss")
    def _optl_production(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("production", rtol=1e-12, atol=0.0, dtype="float64")
        for _ in range(cfg.points(6, 2)):
            k, ss, T = sample_eq(rng)
            x = torch.tensor([[float(ss)] * k], dtype=torch.float64)
            got = siglip_rows(x, float(T), float(-T * ss - mp.log(k - 1)))
            tally.close(float(got[0]), opt_value(k), f"K={k}, s={ss}, t={T}")
        return tally.result("siglip_rows at b* vs K H(1/K), float64")

    def eq_row_big(n: Any) -> Any:
        """The oracle's terms at b* = -log N for a row of N (huge) equal negatives, s = 0,
        t = 1: the N identical negative terms are summed as N times one term."""
        bb = -mp.log(n)
        return _neg_log_sigmoid(bb) + n * _neg_log_sigmoid(-bb)

    @reg(precise, "optimal_loss_limit")
    def _optlim_precise(cfg: CheckConfig, cid: str) -> Any:
        # 1 - (K-1) log(K/(K-1)) lies in (0, 1/(2(K-1))]: the gap closes at rate 1/(2N)
        tally = Tally("precise", rtol=0.0, atol=0.0, dps=DPS)
        with mp.workdps(DPS):
            for e in range(1, cfg.points(12, 4) + 1):
                n = mp.mpf(10) ** e
                gap = 1 - (eq_row_big(n) - mp.log(n + 1))
                tally.holds(gap, f"N=1e{e}: gap {gap} > 0")
                tally.holds(1 / (2 * n) - gap, f"N=1e{e}: gap {gap} <= 1/(2N)")
        return tally.result("optimal loss - log K -> 1, with 0 < 1 - (.) <= 1/(2(K-1)), N = 10^e")

    def share_mp(n: Any, uu: Any) -> Any:
        """The positive's share from mpmath.diff of the pair oracle at logit uu."""
        gp = -mp.diff(lambda w: _neg_log_sigmoid(w), uu)
        gn = mp.diff(lambda w: _neg_log_sigmoid(-w), uu)
        return gp / (gp + n * gn)

    @reg(precise, "gradient_share")
    def _share_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(8, 2)):
                n, uu = mp.mpf(rng.randint(1, 40000)), mp.mpf(rng.uniform(-30, 10))
                tally.close(share_mp(n, uu), 1 / (1 + n * mp.exp(uu)), f"N={n}, u={uu}")
        return tally.result("gradient share from mpmath.diff of the pair oracle vs 1/(1+N e^u)")

    def torch_share(k: int, ss: float, tt: float, bb: float) -> float:
        _, gx, _, _ = torch_rows([[ss] * k], tt, bb)
        g = gx[0].abs()
        return float(g[0] / g.sum())

    @reg(production, "gradient_share")
    def _share_production(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("production", rtol=1e-12, atol=0.0, dtype="float64")
        for _ in range(cfg.points(6, 2)):
            k, ss, T = sample_eq(rng)
            bb = rng.uniform(-15, 5)
            with mp.workdps(DPS):
                want = 1 / (1 + (k - 1) * mp.exp(T * ss + bb))
            tally.close(torch_share(k, float(ss), float(T), bb), want, f"K={k}, s={ss}, t={T}")
        return tally.result("|dl/dx_0| / sum_k |dl/dx_k| of siglip_rows vs 1/(1+(K-1)e^u)")

    @reg(precise, "balanced_at_optimum")
    def _bal_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=1e-30, atol=1e-40, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(8, 2)):
                n = mp.mpf(rng.randint(1, 10**6))
                tally.close(share_mp(n, -mp.log(n)), mp.mpf(1) / 2, f"N={n}")
        return tally.result("gradient share at u = -log(K-1) (mpmath.diff of the oracle) vs 1/2")

    @reg(production, "balanced_at_optimum")
    def _bal_production(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("production", rtol=1e-12, atol=0.0, dtype="float64")
        for _ in range(cfg.points(6, 2)):
            k, ss, T = sample_eq(rng)
            bstar_f = float(-T * ss - mp.log(k - 1))
            tally.close(torch_share(k, float(ss), float(T), bstar_f), 0.5, f"K={k}, s={ss}, t={T}")
        return tally.result("gradient share of siglip_rows at b* vs 1/2, float64")

    @reg(precise, "init_share_limit")
    def _init_precise(cfg: CheckConfig, cid: str) -> Any:
        # share(N) <= e^10 / N -> 0, and share = 1/2 at N = e^10 (the crossover)
        tally = Tally("precise", rtol=1e-30, atol=0.0, dps=DPS)
        u0 = mp.mpf(B_INIT)  # t s + b with s = 0
        with mp.workdps(DPS):
            for e in range(1, cfg.points(12, 4) + 1):
                n = mp.mpf(10) ** e
                sh = share_mp(n, u0)
                tally.holds(mp.exp(-u0) / n - sh, f"N=1e{e}: share {sh} <= e^10/N")
            tally.close(share_mp(mp.exp(-u0), u0), mp.mpf(1) / 2, "N = e^10")
        return tally.result("positive gradient share at u = -10 vs the bound e^10/N, N = 10^e")

    # -- siglip.batch_loss
    @reg(precise, "batch_loss")
    def _batch_precise(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=DPS)
        with mp.workdps(DPS):
            for _ in range(cfg.points(6, 2)):
                n = rng.randint(1, 6)
                sims = [[mp.mpf(rng.uniform(-1, 1)) for _ in range(n)] for _ in range(n)]
                T, Bb = mp.mpf(rng.uniform(0.5, 30)), mp.mpf(rng.uniform(-15, 5))
                rows = [[r[i], *r[:i], *r[i + 1 :]] for i, r in enumerate(sims)]
                mean = mp.fsum(oracle(r, T, Bb) for r in rows) / n
                tally.close(batch_oracle_sims(sims, T, Bb), mean, f"S={sims}, t={T}, b={Bb}")
        return tally.result("eq. (1) vs the mean of the per-row oracle over the rows, 50 digits")

    @reg(production, "batch_loss")
    def _batch_production(cfg: CheckConfig, cid: str) -> Any:
        rng = rng_for(cfg, cid)
        tally = Tally("production", rtol=1e-12, atol=1e-13, dtype="float64")
        for q in range(cfg.points(4, 1)):
            n, dim = rng.randint(2, 7), rng.randint(2, 5)
            img = [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(n)]
            txt = [[rng.gauss(0, 1) for _ in range(dim)] for _ in range(n)]
            tt, bb = rng.uniform(0.5, 30), rng.uniform(-15, 5)
            with mp.workdps(DPS):
                S = cosine_matrix(img, txt)
                want = batch_oracle_sims(S, mp.mpf(tt), mp.mpf(bb))
                zs = [[mp.mpf(tt) * v + mp.mpf(bb) for v in r] for r in S]
                gz = [
                    [
                        (-1 / (1 + mp.exp(w)) if i == jj else 1 / (1 + mp.exp(-w)))
                        for jj, w in enumerate(r)
                    ]
                    for i, r in enumerate(zs)
                ]
                want_t = (
                    mp.fsum(
                        g * v
                        for gr, sr in zip(gz, S, strict=True)
                        for g, v in zip(gr, sr, strict=True)
                    )
                    / n
                )
                want_b = mp.fsum(g for gr in gz for g in gr) / n
            for tile in (None, 1, 2, 3, n):
                T = torch.tensor(tt, dtype=torch.float64, requires_grad=True)
                Bb = torch.tensor(bb, dtype=torch.float64, requires_grad=True)
                a = torch.tensor(img, dtype=torch.float64)
                y = torch.tensor(txt, dtype=torch.float64)
                out = siglip_loss(a, y, T, Bb, tile=tile)
                where = f"case {q} (B={n}, D={dim}, t={tt}, b={bb}), tile={tile}"
                tally.close(float(out.detach()), want, where + ": value")
                grads = (
                    torch.autograd.grad(out, [T, Bb], allow_unused=True)
                    if out.requires_grad
                    else (None, None)
                )
                for name, g, w in (("t", grads[0], want_t), ("b", grads[1], want_b)):
                    if g is None:
                        tally.fail(f"{where}: no gradient reached the tensor {name} (detached?)")
                    else:
                        tally.close(float(g), w, f"{where}: d/d{name}")
        return tally.result("siglip_loss dense/tiled vs eq. (1) / |B| (mpmath), value, d/dt, d/db")

    return {
        "CLAIMS": claims,
        "DEFINITIONS": definitions,
        "DEFINITION_LEGS": deflegs,
        "PRECISE": precise,
        "PRODUCTION": production,
    }


# ======================================================================================== family

_HERE = "softnce_theory.contrib.siglip"

SPEC = LossSpec(
    definition=definition,
    torch_fn=siglip_rows,
    domain=ROWS_DOMAIN,
    oracle=oracle,
    gradient=gradient,
    invariances=("batch_permutation",),  # NOT logit_shift: see the claim siglip.shift_bias
    sizes=(1, 2, 4),  # K = 1: a row with no negative
)

FAMILY = Family(
    name="siglip",
    title="SigLIP: pairwise sigmoid loss with learnable temperature and bias",
    source=SOURCE,
    claims=f"{_HERE}:CLAIMS",
    definitions=f"{_HERE}:DEFINITIONS",
    definition_legs=f"{_HERE}:DEFINITION_LEGS",
    precise=f"{_HERE}:PRECISE",
    production=f"{_HERE}:PRODUCTION",
    losses={"siglip_loss": f"{_HERE}:siglip_loss", "siglip_rows": f"{_HERE}:siglip_rows"},
    domains={"siglip_loss": BATCH_DOMAIN, "siglip_rows": ROWS_DOMAIN},
    spec=SPEC,
)

__all__ = [
    "BATCH_DOMAIN",
    "B_INIT",
    "FAMILY",
    "ROWS_DOMAIN",
    "SOURCE",
    "SPEC",
    "T_INIT",
    "batch_oracle",
    "batch_oracle_sims",
    "cosine_matrix",
    "definition",
    "gradient",
    "oracle",
    "siglip_loss",
    "siglip_rows",
]
