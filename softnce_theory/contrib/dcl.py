r"""DCL: the decoupled contrastive loss (Yeh et al. 2022), declared through the public API only.

Source: C.-H. Yeh, C.-Y. Hong, Y.-C. Hsu, T.-L. Liu, Y. Chen, Y. LeCun, "Decoupled Contrastive
Learning", ECCV 2022 (arXiv 2110.06848), §3. Equation numbers: (1) the InfoNCE/SimCLR loss,
(2) the negative sum :math:`U_{i,k}`, (3) Proposition 1 (the gradient) and (4) the NPC
multiplier :math:`q_B` as on the authors' project page; (6) the DCL loss as lightly's
``DCLLoss`` docstring cites it (the paper's text was not at hand to confirm that number, nor the
number of the DCLW weight, cited as "§3").

**Per row** (the :class:`~softnce_theory.registry.LossSpec`): a row holds the similarity of the
positive, :math:`s_0`, then those of the negatives :math:`s_1, \dots, s_M` (:math:`K = M + 1`
entries, any reals), and :math:`t > 0` is the temperature:

.. math::
    U = \sum_{j=1}^{M} e^{s_j/t}, \qquad
    \ell_{\mathrm{DCL}} = -\frac{s_0}{t} + \log U, \qquad
    \ell_{\mathrm{InfoNCE}} = -\frac{s_0}{t} + \log\big(e^{s_0/t} + U\big),

i.e. DCL is InfoNCE with the positive removed from the denominator (eq. 6 vs eq. 1). The NPC
multiplier is :math:`q_B = 1 - e^{s_0/t}/(e^{s_0/t} + U)` (eq. 4).

**Batch loss** :func:`dcl_loss` on two views ``z1``, ``z2`` of ``B`` samples (eq. 6 summed over
the views :math:`k \in \{1, 2\}` and the samples :math:`i`): each of the :math:`2B` embeddings
is an anchor whose positive is the other view of the same sample and whose :math:`2B - 2`
negatives are both views of every other sample (:math:`U_{i,k}`, eq. 2), with cosine
similarities (``normalize=True``). DCLW (§3) multiplies the positive term by the negative von
Mises-Fisher weight :math:`w_i = 2 - e^{s_i/\sigma} / \big(\tfrac1B\sum_{j} e^{s_j/\sigma}\big)`,
:math:`s_i = \langle z_i^{(1)}, z_i^{(2)} \rangle` (the paper uses :math:`\sigma = 0.5`); here
``w`` is differentiated like the rest of the formula (lightly's ``DCLWLoss`` treats it as a
constant: same values, other gradients; see ``docs/families/dcl.md``).

Claims (ids ``dcl.*``, statement-bound; :math:`M` symbolic): the DCL gradient in closed form
(no :math:`q_B`), Proposition 1 in similarity coordinates (every InfoNCE partial derivative is
:math:`q_B` times DCL's), the decomposition
:math:`\ell_{\mathrm{InfoNCE}} = \ell_{\mathrm{DCL}} + \log(1 + e^{s_0/t}/U)` and the strict bound
:math:`\ell_{\mathrm{InfoNCE}} > \ell_{\mathrm{DCL}}`. The engine derives the generic claims
(``dcl.generic.*``) from :data:`SPEC`.

Importing this module imports neither torch nor sympy nor mpmath (it is loaded by the
``softnce.families`` entry point on every registry lookup): they are imported where used, and
:data:`CLAIMS` / :data:`DEFINITIONS` are built on first access.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Iterator, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal

from softnce_theory.derivations import CheckConfig, Claim, Definition, LegRegistry, LegResult, Tally
from softnce_theory.derivations.tactics import Both, Differentiate, Reduction, Simplify
from softnce_theory.domain import POSITIVE, Array, Domain, Param
from softnce_theory.registry import Family, LossSpec

if TYPE_CHECKING:
    import torch

SOURCE = "Yeh et al. 2022, Decoupled Contrastive Learning, ECCV 2022 (arXiv 2110.06848), §3 eq. (6)"
ReductionName = Literal["mean", "sum", "none"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "none")
DPS = 50

# ----------------------------------------------------------------------------- domains

ROWS_DOMAIN = Domain(
    arrays=(
        Array(
            "x",
            ("B", "K"),
            min_sizes={"K": 2},
            doc="rows of similarities: the positive in column 0, then at least one negative",
        ),
    ),
    params=(Param("t", POSITIVE, typical=(0.05, 5.0), extremes=(1e-3, 1e3), doc="temperature"),),
    edges={"K = 1": "ValueError (no negative: the DCL denominator is an empty sum)"},
)

BATCH_DOMAIN = Domain(
    arrays=(
        Array("z1", ("B", "D"), min_sizes={"B": 2}, doc="first view, one embedding per row"),
        Array("z2", ("B", "D"), min_sizes={"B": 2}, doc="second view, paired row by row"),
    ),
    params=(
        Param("temperature", POSITIVE, typical=(0.05, 1.0), extremes=(1e-3, 1e3)),
        Param("sigma", POSITIVE, typical=(0.1, 2.0), doc="DCLW weight scale (paper: 0.5)"),
    ),
    edges={
        "B = 1": "ValueError (an anchor needs at least one other sample as a negative)",
        "zero row with normalize=True": "ValueError (cosine similarity undefined)",
    },
)


# ----------------------------------------------------------------------------- per row: spec


def definition(x: Sequence[Any], t: Any) -> Any:
    r"""SymPy: :math:`-x_0/t + \log\sum_{j\ge1} e^{x_j/t}` (eq. 6 for one anchor)."""
    import sympy as sp

    return -x[0] / t + sp.log(sum(sp.exp(v / t) for v in x[1:]))


def gradient(x: Sequence[Any], t: Any) -> list[Any]:
    r"""The claimed closed form: :math:`\partial_0 \ell = -1/t`,
    :math:`\partial_k \ell = e^{x_k/t} / (t \sum_{j\ge1} e^{x_j/t})` for :math:`k \ge 1`."""
    import sympy as sp

    u = sum(sp.exp(v / t) for v in x[1:])
    return [-1 / t] + [sp.exp(v / t) / (t * u) for v in x[1:]]


def dcl_row_oracle(s0: Any, negatives: Sequence[Any], t: Any) -> Any:
    r"""mpmath: :math:`\log\sum_{j\ge1} e^{(s_j - s_0)/t}` (eq. 6, the positive moved inside)."""
    import mpmath as mp

    return mp.log(mp.fsum(mp.exp((v - s0) / t) for v in negatives))


def infonce_row_oracle(s0: Any, negatives: Sequence[Any], t: Any) -> Any:
    r"""mpmath: :math:`\log(1 + \sum_{j\ge1} e^{(s_j - s_0)/t}) = -\log\mathrm{softmax}_0` (eq. 1)."""
    import mpmath as mp

    return mp.log(1 + mp.fsum(mp.exp((v - s0) / t) for v in negatives))


def npc_multiplier_oracle(s0: Any, negatives: Sequence[Any], t: Any) -> Any:
    r"""mpmath: :math:`q_B = U / (e^{s_0/t} + U)` (eq. 4, rewritten over the sum)."""
    import mpmath as mp

    r = mp.fsum(mp.exp((v - s0) / t) for v in negatives)
    return r / (1 + r)


def oracle(row: Sequence[Any], t: Any) -> Any:
    """The spec's oracle: :func:`dcl_row_oracle` of one row (positive first)."""
    return dcl_row_oracle(row[0], row[1:], t)


def _rows(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """:func:`dcl_rows` without validation (computed in at least float32)."""
    import torch

    xs = x.to(torch.promote_types(x.dtype, torch.float32))
    return torch.logsumexp((xs[:, 1:] - xs[:, :1]) / t, dim=1).to(x.dtype)


def dcl_rows(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    r"""Per-row DCL :math:`\ell_b = -x_{b0}/t + \log\sum_{j\ge1} e^{x_{bj}/t}` (Yeh et al. eq. 6).

    Evaluated as :math:`\mathrm{LSE}_{j\ge1}((x_{bj} - x_{b0})/t)` in at least float32.

    Args:
        x: ``(B, K)`` rows, the positive's similarity in column 0, ``K >= 2``.
        t: temperature ``> 0``, a number or a one-element tensor (which gets its gradient).

    Returns:
        The ``(B,)`` per-row losses, in the dtype of ``x``.
    """
    ROWS_DOMAIN.validate({"x": x, "t": t})
    return _rows(x, t)


SPEC = LossSpec(
    definition=definition,
    torch_fn=dcl_rows,
    domain=ROWS_DOMAIN,
    oracle=oracle,
    gradient=gradient,
    invariances=("logit_shift", "batch_permutation"),
)


# ----------------------------------------------------------------------------- batch loss


def dcl_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    *,
    temperature: float | torch.Tensor = 0.1,
    sigma: float | torch.Tensor | None = None,
    normalize: bool = True,
    reduction: ReductionName = "mean",
) -> torch.Tensor:
    r"""The DCL (or, with ``sigma``, DCLW) loss of two views, in-batch negatives, both directions.

    .. math::
        L = \sum_{k\in\{1,2\}} \sum_{i=1}^{B} \Big(-w_i \frac{s_{ii}^{(12)}}{t}
            + \log \sum_{l\in\{1,2\}} \sum_{j \ne i} e^{\langle z_i^{(k)}, z_j^{(l)}\rangle/t}\Big)

    (Yeh et al. 2022, eq. 6 summed over views and samples, with :math:`U_{i,k}` of eq. 2), where
    :math:`s_{ii}^{(12)} = \langle z_i^{(1)}, z_i^{(2)}\rangle` and :math:`w_i = 1` (DCL) or the
    DCLW weight :math:`w_i = 2 - e^{s_{ii}/\sigma} / (\frac1B \sum_j e^{s_{jj}/\sigma})` (§3;
    differentiated like the rest of the formula). Each anchor's loss is :func:`dcl_rows` of the
    row (positive, its :math:`2B - 2` negatives), so it is computed in log space.

    Args:
        z1, z2: ``(B, D)`` embeddings of the two views, row ``i`` of each from sample ``i``;
            same dtype and device, ``B >= 2``.
        temperature: :math:`t > 0` (default 0.1, lightly's default); a one-element tensor keeps
            its gradient.
        sigma: ``None`` for DCL, or the DCLW scale :math:`\sigma > 0` (the paper: 0.5); a tensor
            keeps its gradient.
        normalize: cosine similarity (default; every row must have a non-zero norm) or, with
            ``False``, the raw dot product.
        reduction: ``"mean"`` over the :math:`2B` anchors (default: :math:`L / 2B`, lightly's
            value), ``"sum"`` (:math:`L`, the paper's total) or ``"none"``: the ``(2B,)`` anchor
            losses, view-1 anchors first.

    Returns:
        The loss, in the dtype of ``z1`` (computed in at least float32).
    """
    import torch

    given: dict[str, Any] = {"z1": z1, "z2": z2, "temperature": temperature}
    if sigma is not None:
        given["sigma"] = sigma
    BATCH_DOMAIN.validate(given)
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize must be a bool, got {normalize!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if z2.dtype != z1.dtype or z2.device != z1.device:
        raise ValueError(
            f"z2 must have the dtype and device of z1 ({z1.dtype}, {z1.device}), got "
            f"{z2.dtype}, {z2.device}"
        )
    b = z1.shape[0]
    z = torch.cat([z1, z2]).to(torch.promote_types(z1.dtype, torch.float32))
    if normalize:
        norm = torch.linalg.vector_norm(z, dim=1, keepdim=True)
        zero = (norm[:, 0] == 0).nonzero()
        if zero.numel():
            i = int(zero[0])
            name, row = ("z1", i) if i < b else ("z2", i - b)
            raise ValueError(
                f"{name}: row {row} has norm 0; cosine similarity (normalize=True) needs "
                "non-zero rows"
            )
        z = z / norm
    n = 2 * b
    sim = z @ z.T
    idx = torch.arange(n, device=z.device)
    partner = (idx + b) % n
    keep = torch.ones(n, n, dtype=torch.bool, device=z.device)
    keep[idx, idx] = False
    keep[idx, partner] = False
    pos = sim[idx, partner]
    loss = _rows(torch.cat([pos[:, None], sim[keep].view(n, n - 2)], dim=1), temperature)
    if sigma is not None:
        a = pos[:b] / sigma
        w = 2 - torch.exp(a - torch.logsumexp(a, dim=0) + math.log(b))
        loss = loss - (w.repeat(2) - 1) * pos / temperature
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss.to(z1.dtype)


def dcl_batch_oracle(
    z1: Sequence[Sequence[Any]],
    z2: Sequence[Sequence[Any]],
    t: Any,
    sigma: Any = None,
    normalize: bool = True,
) -> list[Any]:
    """mpmath: the ``2B`` anchor losses of :func:`dcl_loss` (view-1 anchors first), straight
    from eqs. (2) and (6) and the DCLW weight, one anchor and one negative at a time."""
    import mpmath as mp

    views = [[[mp.mpf(v) for v in r] for r in z] for z in (z1, z2)]
    if normalize:
        views = [[[v / mp.sqrt(mp.fsum(u * u for u in r)) for v in r] for r in z] for z in views]
    b = len(views[0])

    def dot(a: list[Any], c: list[Any]) -> Any:
        return mp.fsum(x * y for x, y in zip(a, c, strict=True))

    tt = mp.mpf(t)
    s = [dot(views[0][i], views[1][i]) for i in range(b)]
    w = [mp.mpf(1)] * b
    if sigma is not None:
        mean = mp.fsum(mp.exp(v / sigma) for v in s) / b
        w = [2 - mp.exp(v / sigma) / mean for v in s]
    out = []
    for k in (0, 1):
        for i in range(b):
            a = views[k][i]
            u = mp.fsum(
                mp.exp(dot(a, views[v][j]) / tt) for v in (0, 1) for j in range(b) if j != i
            )
            out.append(-w[i] * s[i] / tt + mp.log(u))
    return out


# ----------------------------------------------------------------------------- symbolic: M


@functools.cache
def symbols() -> SimpleNamespace:
    """The symbols of the statements: ``M`` negatives (symbolic), positive ``s_0``, negatives
    ``s[1..M]``, temperature ``t``, ``U = sum_j exp(s_j / t)``."""
    import sympy as sp

    n = SimpleNamespace(sp=sp)
    n.M = sp.Symbol("M", integer=True, positive=True)
    n.j, n.m = sp.symbols("j m", integer=True)
    n.s0 = sp.Symbol("s_0", real=True)
    n.s = sp.IndexedBase("s", real=True)
    n.t = sp.Symbol("t", positive=True)
    n.U = sp.Sum(sp.exp(n.s[n.j] / n.t), (n.j, 1, n.M))
    return n


def dcl_expr() -> Any:
    r""":math:`-s_0/t + \log U` (eq. 6)."""
    n = symbols()
    return -n.s0 / n.t + n.sp.log(n.U)


def infonce_expr() -> Any:
    r""":math:`-s_0/t + \log(e^{s_0/t} + U)` (eq. 1)."""
    n = symbols()
    return -n.s0 / n.t + n.sp.log(n.sp.exp(n.s0 / n.t) + n.U)


def npc_expr() -> Any:
    r""":math:`q_B = 1 - e^{s_0/t}/(e^{s_0/t} + U)` (eq. 4)."""
    n = symbols()
    e = n.sp.exp(n.s0 / n.t)
    return 1 - e / (e + n.U)


def _gap() -> Any:
    r""":math:`\log(1 + e^{s_0/t}/U)`, what InfoNCE adds to DCL."""
    n = symbols()
    return n.sp.log(1 + n.sp.exp(n.s0 / n.t) / n.U)


def _neg_softmax() -> Any:
    r""":math:`e^{s_m/t} / (t U)`: the DCL gradient at a negative."""
    n = symbols()
    return n.sp.exp(n.s[n.m] / n.t) / (n.t * n.U)


def _st_gradient() -> Any:
    n = symbols()
    d = n.sp.Derivative
    return n.sp.And(
        n.sp.Eq(d(dcl_expr(), n.s0), -1 / n.t), n.sp.Eq(d(dcl_expr(), n.s[n.m]), _neg_softmax())
    )


def _st_npc() -> Any:
    n = symbols()
    d, q = n.sp.Derivative, npc_expr()
    return n.sp.And(
        n.sp.Eq(d(infonce_expr(), n.s0), -q / n.t),
        n.sp.Eq(d(infonce_expr(), n.s[n.m]), q * _neg_softmax()),
        n.sp.Eq(d(dcl_expr(), n.s0), -1 / n.t),
    )


def _index_facts() -> tuple[Any, ...]:
    from softnce_theory.derivations.tactics import index_facts

    n = symbols()
    return index_facts(n.M, n.m)


#: SymPy's And sorts its conjuncts, so every conjunct gets the same tactic: differentiate, then
#: resolve the KroneckerDelta sums (``1 <= m <= M`` from the facts)
_NEG = Differentiate(steps=("derivatives", "delta_sums"))


@functools.cache
def _catalogue() -> dict[str, tuple[Any, ...]]:
    n = symbols()
    args = (n.s0, n.s, n.t)
    defs = (
        Definition("dcl_row", "dcl", dcl_expr, (n.M,), args, SOURCE, "-s_0/t + log U"),
        Definition(
            "infonce_row",
            "dcl",
            infonce_expr,
            (n.M,),
            args,
            "Yeh et al. 2022 (arXiv 2110.06848) eq. (1) (SimCLR/InfoNCE)",
            "-s_0/t + log(exp(s_0/t) + U)",
        ),
        Definition(
            "npc_multiplier",
            "dcl",
            npc_expr,
            (n.M,),
            args,
            "Yeh et al. 2022 (arXiv 2110.06848) eq. (4)",
            "q_B = 1 - exp(s_0/t) / (exp(s_0/t) + U)",
        ),
    )
    claims = (
        Claim(
            id="dcl.gradient",
            family="dcl",
            kind="gradient",
            text="For any number M of negatives, d l_DCL/d s_0 = -1/t and d l_DCL/d s_m = "
            "exp(s_m/t)/(t U): the softmax over the negatives only, with no NPC multiplier.",
            statement=_st_gradient,
            source="derived here from Yeh et al. 2022 (arXiv 2110.06848) eq. (6); the paper's "
            "Prop. 1 / eq. (3) with q_B removed (§3)",
            evidence=("symbolic", "precise", "production"),
            tactic=Both((_NEG, _NEG)),
            facts=_index_facts,
            uses=("dcl_row",),
        ),
        Claim(
            id="dcl.npc_multiplier",
            family="dcl",
            kind="gradient",
            text="Negative-positive coupling: every partial derivative of InfoNCE in the "
            "similarities is q_B times DCL's (d/ds_0: -q_B/t vs -1/t; d/ds_m: q_B exp(s_m/t)/(tU) "
            "vs exp(s_m/t)/(tU)).",
            statement=_st_npc,
            source="Yeh et al. 2022 (arXiv 2110.06848) Prop. 1, eqs. (3)-(4), in similarity "
            "coordinates (the embedding gradients follow by the chain rule)",
            evidence=("symbolic", "precise", "production"),
            tactic=Both((_NEG, _NEG, _NEG)),
            facts=_index_facts,
            uses=("infonce_row", "dcl_row", "npc_multiplier"),
        ),
        Claim(
            id="dcl.infonce_decomposition",
            family="dcl",
            kind="identity",
            text="l_InfoNCE = l_DCL + log(1 + exp(s_0/t)/U) for any number M of negatives.",
            statement=lambda: symbols().sp.Eq(infonce_expr(), dcl_expr() + _gap()),
            source="derived here from Yeh et al. 2022 (arXiv 2110.06848) eqs. (1), (2) and (6)",
            evidence=("symbolic", "precise", "production"),
            tactic=Simplify(steps=("together", "expand_log")),
            uses=("infonce_row", "dcl_row"),
        ),
        Claim(
            id="dcl.infonce_upper_bound",
            family="dcl",
            kind="inequality",
            text="l_InfoNCE > l_DCL strictly: removing the positive from the denominator "
            "lowers the loss by log(1 + exp(s_0/t)/U) > 0.",
            statement=lambda: symbols().sp.Gt(infonce_expr(), dcl_expr()),
            source="derived here from Yeh et al. 2022 (arXiv 2110.06848) eqs. (1) and (6)",
            evidence=("symbolic", "precise", "production"),
            tactic=Reduction(uses=(), extra=(_gap(),), steps=("together", "expand_log")),
            uses=("infonce_row", "dcl_row"),
        ),
    )
    return {"DEFINITIONS": defs, "CLAIMS": claims}


def __getattr__(name: str) -> Any:
    """``CLAIMS`` and ``DEFINITIONS``, built (with SymPy) on first access."""
    if name in ("CLAIMS", "DEFINITIONS"):
        return _catalogue()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ----------------------------------------------------------------------------- numeric legs

DEFINITION = LegRegistry("definition")
PRECISE = LegRegistry("precise")
PRODUCTION = LegRegistry("production")
CONFORMANCE = LegRegistry("production")

Point = tuple[float, list[float], float]  # (s_0, negatives, t)


def _points(
    cfg: CheckConfig, key: str, full: int, quick: int, sizes: Sequence[int] = ()
) -> Iterator[Point]:
    """Seeded points: 1..6 negatives (or ``sizes`` in turn), similarities in [-3, 3], t in
    [0.03, 10] (log-uniform)."""
    rng = random.Random(cfg.seed_for(key))
    for i in range(cfg.points(full, quick)):
        m = sizes[i % len(sizes)] if sizes else rng.randint(1, 6)
        row = [rng.uniform(-3.0, 3.0) for _ in range(m + 1)]
        yield row[0], row[1:], 10 ** rng.uniform(-1.5, 1.0)


_ORACLES: dict[str, Callable[..., Any]] = {
    "dcl_row": dcl_row_oracle,
    "infonce_row": infonce_row_oracle,
    "npc_multiplier": npc_multiplier_oracle,
}


@functools.cache
def _definition_at(name: str, m: int) -> Callable[..., Any]:
    """The SymPy definition ``name`` at ``M = m`` (sum written out), lambdified to mpmath."""
    import sympy as sp

    n = symbols()
    defn = {d.name: d for d in _catalogue()["DEFINITIONS"]}[name]
    args = [n.s0, *(n.s[k] for k in range(1, m + 1)), n.t]
    fn: Callable[..., Any] = sp.lambdify(args, defn.build().subs(n.M, m).doit(), "mpmath")
    return fn


def _definition_leg(name: str, cfg: CheckConfig) -> LegResult:
    """The SymPy definition against its oracle at ``cfg.dps`` digits, at M = 1, 2, 4."""
    import mpmath as mp

    tally = Tally("definition", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    for s0, negs, t in _points(cfg, f"dcl.{name}", 6, 3, sizes=(1, 2, 4)):
        with mp.workdps(cfg.dps):
            a, ns, tt = mp.mpf(s0), [mp.mpf(v) for v in negs], mp.mpf(t)
            got = _definition_at(name, len(negs))(a, *ns, tt)
            want = _ORACLES[name](a, ns, tt)
            tally.close(got, want, f"dcl.{name} at M = {len(negs)}, {s0, negs, t}")
    return tally.result(f"SymPy definition vs its mpmath oracle at {cfg.dps} digits, M = 1, 2, 4")


for _name in _ORACLES:
    DEFINITION.register(f"dcl.{_name}")(functools.partial(_definition_leg, _name))


def _close_vec(tally: Tally, got: Sequence[Any], want: Sequence[Any], where: str) -> None:
    """``tally.close_normwise`` after a finiteness check of ``got`` (``close_normwise`` misses a
    NaN that is not the first entry: ``max`` never selects it)."""
    bad = [k for k, v in enumerate(got) if not math.isfinite(float(v))]
    if bad:
        tally.fail(f"{where}: entry {bad[0]} is {float(got[bad[0]])!r} (not finite)")
    else:
        tally.close_normwise(got, want, where)


def _mp_partials(f: Callable[..., Any], s0: Any, negs: list[Any], t: Any) -> list[Any]:
    """mpmath's numerical derivatives of ``f(s0, negs, t)`` in ``s0`` and each negative."""
    import mpmath as mp

    out = [mp.diff(lambda y: f(y, negs, t), s0)]
    for k in range(len(negs)):
        out.append(mp.diff(lambda y, k=k: f(s0, [*negs[:k], y, *negs[k + 1 :]], t), negs[k]))
    return out


@PRECISE.register("dcl.gradient")
def _gradient_precise(cfg: CheckConfig) -> LegResult:
    import mpmath as mp

    tally = Tally("precise", rtol=1e-30, atol=1e-35, dps=cfg.dps)
    for s0, negs, t in _points(cfg, "dcl.gradient", 8, 2):
        with mp.workdps(cfg.dps):
            a, ns, tt = mp.mpf(s0), [mp.mpf(v) for v in negs], mp.mpf(t)
            u = mp.fsum(mp.exp(v / tt) for v in ns)
            closed = [-1 / tt] + [mp.exp(v / tt) / (tt * u) for v in ns]
            _close_vec(tally, _mp_partials(dcl_row_oracle, a, ns, tt), closed, f"{s0, negs, t}")
    return tally.result("mpmath.diff of the DCL oracle vs the closed form, 50 digits")


@PRECISE.register("dcl.npc_multiplier")
def _npc_precise(cfg: CheckConfig) -> LegResult:
    import mpmath as mp

    tally = Tally("precise", rtol=1e-30, atol=1e-35, dps=cfg.dps)
    for s0, negs, t in _points(cfg, "dcl.npc_multiplier", 8, 2):
        with mp.workdps(cfg.dps):
            a, ns, tt = mp.mpf(s0), [mp.mpf(v) for v in negs], mp.mpf(t)
            q = npc_multiplier_oracle(a, ns, tt)
            u = mp.fsum(mp.exp(v / tt) for v in ns)
            want = [-q / tt] + [q * mp.exp(v / tt) / (tt * u) for v in ns] + [-1 / tt]
            got = _mp_partials(infonce_row_oracle, a, ns, tt)
            got.append(mp.diff(lambda y, ns=ns, tt=tt: dcl_row_oracle(y, ns, tt), a))
            _close_vec(tally, got, want, f"{s0, negs, t}")
    return tally.result("mpmath.diff of the InfoNCE / DCL oracles vs q_B times DCL's gradient")


@PRECISE.register("dcl.infonce_decomposition")
def _decomposition_precise(cfg: CheckConfig) -> LegResult:
    import mpmath as mp

    tally = Tally("precise", rtol=1e-40, atol=1e-45, dps=cfg.dps)
    for s0, negs, t in _points(cfg, "dcl.infonce_decomposition", 12, 3):
        with mp.workdps(cfg.dps):
            a, ns, tt = mp.mpf(s0), [mp.mpf(v) for v in negs], mp.mpf(t)
            gap = mp.log(1 + mp.exp(a / tt) / mp.fsum(mp.exp(v / tt) for v in ns))
            tally.close(
                infonce_row_oracle(a, ns, tt), dcl_row_oracle(a, ns, tt) + gap, f"{s0, negs, t}"
            )
    return tally.result("InfoNCE oracle vs DCL oracle + log(1 + exp(s_0/t)/U), 50 digits")


@PRECISE.register("dcl.infonce_upper_bound")
def _bound_precise(cfg: CheckConfig) -> LegResult:
    import mpmath as mp

    tally = Tally("precise", rtol=0.0, atol=0.0, dps=cfg.dps)
    for s0, negs, t in _points(cfg, "dcl.infonce_upper_bound", 12, 3):
        with mp.workdps(cfg.dps):
            a, ns, tt = mp.mpf(s0), [mp.mpf(v) for v in negs], mp.mpf(t)
            margin = infonce_row_oracle(a, ns, tt) - dcl_row_oracle(a, ns, tt)
            if margin > 0:
                tally.holds(margin, f"{s0, negs, t}")
            else:  # the claim is strict: a zero margin refutes it too
                tally.fail(f"{s0, negs, t}: InfoNCE - DCL = {margin} is not > 0")
    return tally.result("InfoNCE oracle - DCL oracle > 0, 50 digits")


def _rows_batch(cfg: CheckConfig, key: str, full: int, quick: int) -> Iterator[tuple[Any, float]]:
    """Seeded ``(3, M + 1)`` float64 row batches (positive first) and a temperature."""
    import numpy as np

    rng = np.random.default_rng(cfg.seed_for(key))
    for _ in range(cfg.points(full, quick)):
        m = int(rng.integers(1, 7))
        yield rng.uniform(-3.0, 3.0, size=(3, m + 1)), float(10 ** rng.uniform(-1.5, 1.0))


def _lse(a: Any) -> Any:
    """Row-wise log-sum-exp in NumPy (independent of the torch code under test)."""
    import numpy as np

    mx = a.max(axis=1, keepdims=True)
    return mx[:, 0] + np.log(np.exp(a - mx).sum(axis=1))


def _torch_values(x: Any, t: float) -> tuple[Any, Any, Any, Any]:
    """float64 InfoNCE rows (:func:`softnce_theory.losses.ranking_nce` of ``x/t``) and DCL rows
    (:func:`dcl_rows`), with the gradients of their sums w.r.t. ``x``."""
    import torch

    from softnce_theory.losses import ranking_nce

    xi = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    xd = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    inf = ranking_nce(xi / t, reduction="none")
    dcl = dcl_rows(xd, t)
    (gi,) = torch.autograd.grad(inf.sum(), xi)
    (gd,) = torch.autograd.grad(dcl.sum(), xd)
    return inf.detach().numpy(), dcl.detach().numpy(), gi.numpy(), gd.numpy()


@PRODUCTION.register("dcl.gradient")
def _gradient_production(cfg: CheckConfig) -> LegResult:
    import numpy as np

    tally = Tally("production", rtol=1e-12, atol=1e-14, dtype="float64")
    for x, t in _rows_batch(cfg, "dcl.gradient", 8, 2):
        _, _, _, g = _torch_values(x, t)
        neg = np.exp(x[:, 1:] / t - _lse(x[:, 1:] / t)[:, None]) / t
        for b in range(x.shape[0]):
            _close_vec(tally, g[b], [-1 / t, *neg[b]], f"row {x[b].tolist()}, t = {t!r}")
    return tally.result("autograd of dcl_rows (float64) vs the closed form in NumPy")


@PRODUCTION.register("dcl.npc_multiplier")
def _npc_production(cfg: CheckConfig) -> LegResult:
    import numpy as np

    tally = Tally("production", rtol=1e-12, atol=1e-14, dtype="float64")
    for x, t in _rows_batch(cfg, "dcl.npc_multiplier", 8, 2):
        _, _, gi, gd = _torch_values(x, t)
        lse_neg = _lse(x[:, 1:] / t)
        q = 1 / (1 + np.exp(x[:, 0] / t - lse_neg))  # U / (e^{s_0/t} + U)
        neg = np.exp(x[:, 1:] / t - lse_neg[:, None]) / t
        for b in range(x.shape[0]):
            want = [-q[b] / t, *(q[b] * neg[b]), -1 / t]
            got = [*gi[b], gd[b, 0]]
            _close_vec(tally, got, want, f"row {x[b].tolist()}, t = {t!r}")
    return tally.result("autograd of InfoNCE (ranking_nce) and dcl_rows vs q_B x DCL's gradient")


@PRODUCTION.register("dcl.infonce_decomposition")
def _decomposition_production(cfg: CheckConfig) -> LegResult:
    import numpy as np

    tally = Tally("production", rtol=1e-12, atol=1e-11, dtype="float64")
    for x, t in _rows_batch(cfg, "dcl.infonce_decomposition", 12, 3):
        inf, dcl, _, _ = _torch_values(x, t)
        gap = np.logaddexp(0.0, x[:, 0] / t - _lse(x[:, 1:] / t))
        tally.close_all(inf, dcl + gap, f"rows {x.tolist()}, t = {t!r}")
    return tally.result("InfoNCE (ranking_nce) vs dcl_rows + log(1 + exp(s_0/t)/U), float64")


@PRODUCTION.register("dcl.infonce_upper_bound")
def _bound_production(cfg: CheckConfig) -> LegResult:
    tally = Tally("production", rtol=0.0, atol=1e-11, dtype="float64")
    for x, t in _rows_batch(cfg, "dcl.infonce_upper_bound", 12, 3):
        inf, dcl, _, _ = _torch_values(x, t)
        for b in range(x.shape[0]):
            tally.holds(inf[b] - dcl[b], f"row {x[b].tolist()}, t = {t!r}")
    return tally.result("InfoNCE (ranking_nce) - dcl_rows >= 0 (float64, within 1e-11)")


@CONFORMANCE.register("dcl.dcl_loss")
def _conformance(cfg: CheckConfig) -> LegResult:
    """:func:`dcl_loss` (DCL and DCLW, cosine and dot) against :func:`dcl_batch_oracle`:
    anchor values, the three reductions, and the gradients w.r.t. the embeddings, a tensor
    temperature and a tensor sigma (mpmath.diff of the oracle's sum)."""
    import mpmath as mp
    import numpy as np
    import torch

    rng = np.random.default_rng(cfg.seed_for("dcl.dcl_loss"))
    tally = Tally("production", rtol=1e-11, atol=1e-12, dtype="float64", dps=cfg.dps)
    for k in range(cfg.points(4, 2)):
        b, d = int(rng.integers(2, 4)), int(rng.integers(1, 4))
        t = float(10 ** rng.uniform(-1.0, 0.3))
        sigma = None if k % 2 == 0 else float(rng.uniform(0.2, 2.0))
        normalize = k % 4 != 3
        z1, z2 = rng.standard_normal((b, d)), rng.standard_normal((b, d))
        if not normalize:
            z1, z2 = z1 / 2, z2 / 2
        tz1, tz2 = (torch.tensor(z, requires_grad=True) for z in (z1, z2))
        tt = torch.tensor(t, dtype=torch.float64, requires_grad=True)
        ts = None if sigma is None else torch.tensor(sigma, dtype=torch.float64, requires_grad=True)
        kw: dict[str, Any] = {"temperature": tt, "sigma": ts, "normalize": normalize}
        per = dcl_loss(tz1, tz2, reduction="none", **kw)
        where = f"case {k}: B={b}, D={d}, t={t:.4g}, sigma={sigma}, normalize={normalize}"
        with mp.workdps(cfg.dps):
            want = dcl_batch_oracle(z1.tolist(), z2.tolist(), t, sigma, normalize)
            tally.close_all(per.tolist(), want, where + ", anchors")
            mean = dcl_loss(tz1, tz2, **kw).item()
            tally.close(mean, mp.fsum(want) / (2 * b), where + ", mean")
            total_ = dcl_loss(tz1, tz2, reduction="sum", **kw).item()
            tally.close(total_, mp.fsum(want), where + ", sum")
            params = [*(tz1, tz2), tt, *([ts] if ts is not None else [])]
            grads = torch.autograd.grad(per.sum(), params, allow_unused=True)
            flat = [*z1.ravel(), *z2.ravel(), t, *([sigma] if sigma is not None else [])]

            def total(
                *v: Any, b: int = b, d: int = d, sg: Any = sigma, nz: bool = normalize
            ) -> Any:
                a1 = [list(v[i * d : (i + 1) * d]) for i in range(b)]
                a2 = [list(v[(b + i) * d : (b + i + 1) * d]) for i in range(b)]
                s = v[2 * b * d + 1] if sg is not None else None
                return mp.fsum(dcl_batch_oracle(a1, a2, v[2 * b * d], s, nz))

            point = [mp.mpf(float(v)) for v in flat]
            num = [
                mp.diff(total, point, tuple(int(j == i) for j in range(len(point))))
                for i in range(len(point))
            ]
            names = ["z1", "z2", "temperature", "sigma"]
            for name, g in zip(names, grads, strict=False):
                if g is None:
                    tally.fail(f"{where}: no gradient reached {name} (detached?)")
            got = [float(v) for g in grads for v in (g.ravel() if g is not None else [math.nan])]
            _close_vec(tally, got, num, where + ", gradient (z1, z2, temperature, sigma)")
    return tally.result("dcl_loss (float64) vs the mpmath batch oracle: values and gradients")


# ----------------------------------------------------------------------------- the family

FAMILY = Family(
    name="dcl",
    title="Decoupled contrastive loss (DCL, DCLW): InfoNCE without the positive in the denominator",
    source=SOURCE,
    claims=f"{__name__}:CLAIMS",
    definitions=f"{__name__}:DEFINITIONS",
    definition_legs=DEFINITION,
    precise=PRECISE,
    production=PRODUCTION,
    conformance=CONFORMANCE,
    losses={"dcl_loss": dcl_loss, "dcl_rows": dcl_rows},
    domains={"dcl_loss": BATCH_DOMAIN, "dcl_rows": ROWS_DOMAIN},
    spec=SPEC,
)

__all__ = [
    "BATCH_DOMAIN",
    "FAMILY",
    "ROWS_DOMAIN",
    "SPEC",
    "dcl_batch_oracle",
    "dcl_loss",
    "dcl_row_oracle",
    "dcl_rows",
    "infonce_row_oracle",
    "npc_multiplier_oracle",
]
