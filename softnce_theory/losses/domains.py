r"""The input domains of the built-in losses, declared once.

Each public loss of a built-in family has one :class:`~softnce_theory.domain.Domain` here: its
tensor arguments (named dimensions, dtypes, simplex rows, label ranges, what happens to NaN), its
scalar parameters and its edge policies. From that one declaration come

* the loss's **validation** and its ``ValueError`` messages: every dense, tiled and distributed
  path calls :meth:`Domain.validate <softnce_theory.domain.Domain.validate>` through
  :func:`softnce_theory.losses._common.check_inputs` (the scalar parameters through
  :func:`~softnce_theory.losses._common.check_param` with the same :class:`Param` objects);
  ``rules`` lists, in words, the few cross-argument rules a loss checks after it (a positive's
  offset, a paired layout, ...);
* the **engine's random points** (``Domain.sample``, the ``domain`` conformance check of every
  built-in family: accepted, finite, finite at the declared extremes);
* the audit's **Hypothesis strategies** (:func:`softnce_theory.testing.strategies.from_domain`);
* the **registry**: each built-in :class:`~softnce_theory.registry.Family` names these objects
  in ``domains`` (:mod:`softnce_theory._builtin`: the domain of loss ``f`` is ``F`` here, the
  loss name upper-cased; a test checks every declared loss has one).

The module imports neither torch nor sympy (the registry and ``softnce --help`` read it cheaply).
Dimension names: ``B`` the batch (rows, anchors), ``C`` the classes, ``D`` the embedding
dimension, ``V`` the views, ``K`` prototypes or score columns, ``M`` candidates or negatives.
"""

from __future__ import annotations

import math

from softnce_theory.domain import (
    NONNEGATIVE,
    POSITIVE,
    REALS,
    UNIT,
    Array,
    Domain,
    Interval,
    Labels,
    Param,
)

# ----------------------------------------------------------------------------- scalar params

_AT_LEAST_ONE = Interval(1.0, math.inf, low_closed=True)

#: softmax temperature :math:`\tau` (logits are similarities divided by it)
TEMPERATURE = Param(
    "temperature", POSITIVE, typical=(0.05, 2.0), extremes=(1e-3, 1e3), doc="tau > 0"
)
#: HobbitLong's :math:`\tau_{base}`: SupCon / SINCERE are scaled by :math:`\tau/\tau_{base}`
BASE_TEMPERATURE = Param("base_temperature", POSITIVE, typical=(0.05, 1.0), doc="tau_base > 0")
#: CLIP's :math:`\log(1/\tau)`; its temperature :math:`e^{-\mathrm{logit\_scale}}` must be a
#: finite number > 0 in the dtype it is computed in
LOGIT_SCALE = Param("logit_scale", REALS, typical=(0.0, 4.6), doc="log(1 / tau)")
#: label-smoothing weight :math:`\varepsilon` (torch's convention)
EPSILON = Param("epsilon", UNIT, extremes=(0.0, 1.0), doc="label smoothing weight in [0, 1]")
#: weight :math:`\lambda` of the self-labeling loss' fairness term
LAM = Param("lam", NONNEGATIVE, typical=(0.0, 5.0), extremes=(0.0, 1e3), doc="fairness weight")
#: relative stopping tolerance of the pseudo-label solvers
TOL = Param("tol", POSITIVE, typical=(1e-12, 1e-3), doc="relative tolerance > 0")
#: fixed step of the projected-gradient pseudo-label solver
STEP = Param("step", POSITIVE, typical=(0.1, 10.0), doc="step size > 0")
#: iteration cap of the pseudo-label solvers
MAX_ITER = Param("max_iter", _AT_LEAST_ONE, integer=True, typical=(1, 100))
#: every scalar parameter of the losses, by name
PARAMS: dict[str, Param] = {
    p.name: p
    for p in (TEMPERATURE, BASE_TEMPERATURE, LOGIT_SCALE, EPSILON, LAM, TOL, STEP, MAX_ITER)
}

# ----------------------------------------------------------------------------- tensors

_PROPAGATE = "propagate"  # NaN/inf in computed-on data flows to the loss (no hot-path check)


def logits(name: str = "logits", dims: tuple[str, str] = ("B", "C")) -> Array:
    """Unnormalised class scores; NaN/inf propagate to the loss."""
    return Array(name, dims, typical=(-5.0, 5.0), nonfinite=_PROPAGATE, doc="logits")


def simplex(
    name: str, dims: tuple[str, ...] = ("B", "C"), doc: str = "", required: bool = True
) -> Array:
    """Rows on the probability simplex (finite, >= 0, summing to 1 within sqrt(eps))."""
    return Array(
        name, dims, interval=UNIT, typical=(0.0, 1.0), simplex=True, required=required, doc=doc
    )


def embeddings(name: str = "embeddings", views: bool = False, dtype_of: str | None = None) -> Array:
    """Raw embeddings ``(B, D)`` (or ``(B, V, D)`` with ``views``); NaN/inf propagate."""
    dims = ("B", "V", "D") if views else ("B", "D")
    return Array(
        name,
        dims,
        optional=("V",) if views else (),
        nonfinite=_PROPAGATE,
        dtype_of=dtype_of,
        doc="embeddings (L2-normalised inside for cosine similarity)",
    )


_TARGETS = simplex("targets", doc="soft targets alpha: one probability row per sample")
_CLASS_LABELS = Labels("labels", ("B",), classes="C", doc="class indices in [0, C)")
_NOISE = Array(
    "noise_probs",
    ("C",),
    interval=UNIT,
    typical=(0.0, 1.0),
    simplex=True,
    same_device=False,
    required=False,
    doc="noise distribution q over classes (moved to the logits' device); None: uniform",
)
_SUPCON_LABELS = Labels("labels", ("B",), doc="class labels >= 0 (any integers)")

# ----------------------------------------------------------------------------- cross_entropy

SOFT_TARGET_CROSS_ENTROPY = Domain(
    arrays=(logits(), _TARGETS),
    params=(TEMPERATURE,),
    edges={"0 log 0": "a zero-target class contributes 0, also with a -inf logit"},
)
NLL_LOSS = Domain(arrays=(logits(), _CLASS_LABELS), params=(TEMPERATURE,))
LABEL_SMOOTHING_CROSS_ENTROPY = Domain(
    arrays=(logits(), _CLASS_LABELS),
    params=(EPSILON, TEMPERATURE),
    edges={"epsilon = 1": "the target is uniform: the loss is the uniform cross-entropy"},
)

# ----------------------------------------------------------------------------- collision_ce

COLLISION_CROSS_ENTROPY = Domain(
    arrays=(logits(), simplex("targets", doc="soft pseudo-labels y")),
    edges={"disjoint support": "sum_c y_c p_c underflows only when it is truly 0: log-space"},
)
SELF_LABELING_LOSS = Domain(
    arrays=(logits(), simplex("y", doc="pseudo-labels y: one probability row per sample")),
    params=(LAM,),
    rules=("lam is a number (a tensor that requires grad is refused: no gradient flows to it)",),
)
#: the pseudo-label solvers and objectives: predictions sigma and pseudo-labels y
PSEUDO_LABELS = Domain(
    arrays=(simplex("probs", doc="model predictions sigma"), simplex("y", doc="pseudo-labels")),
    params=(LAM,),
)
EM_PSEUDO_LABELS = Domain(
    arrays=(
        simplex("probs", doc="model predictions sigma"),
        simplex("y0", doc="initial y (default: probs)", required=False),
    ),
    params=(LAM, TOL, MAX_ITER),
)
PGD_PSEUDO_LABELS = Domain(
    arrays=EM_PSEUDO_LABELS.arrays,
    params=(LAM, STEP, TOL, MAX_ITER),
)

# ----------------------------------------------------------------------------- infonce

_QUERY = embeddings("query")
INFO_NCE = Domain(
    arrays=(
        _QUERY,
        embeddings("positive_key", dtype_of="query"),
        Array(
            "negative_keys",
            ("B", "M", "D"),
            optional=("B",),
            nonfinite=_PROPAGATE,
            dtype_of="query",
            required=False,
            doc="explicit negatives: (M, D) shared, or (B, M, D) per row (paired); None: "
            "in-batch negatives",
        ),
    ),
    params=(TEMPERATURE, LOGIT_SCALE),
    exclusive=(("temperature", "logit_scale"),),
    rules=(
        "negative_keys is (M, D) for negative_mode='unpaired' and (B, M, D) for 'paired'",
        "key_log_q broadcasts to (B,) and negative_log_q to (B, M): finite, on query's device "
        "(-inf means q = 0, which cannot have been sampled)",
    ),
    edges={"zero rows": "a zero embedding row has cosine similarity 0 with every row"},
)
SYMMETRIC_INFO_NCE = Domain(
    arrays=(embeddings("a"), embeddings("b", dtype_of="a")),
    params=(TEMPERATURE, LOGIT_SCALE),
    exclusive=(("temperature", "logit_scale"),),
)
RANKING_NCE = Domain(
    arrays=(logits("scores", ("B", "K")),),
    rules=("log_q broadcasts to scores' shape, finite, on scores' device",),
    edges={"-inf score": "a -inf score masks that candidate out"},
)

# ----------------------------------------------------------------------------- soft_target_infonce

SOFT_TARGET_INFO_NCE = Domain(
    arrays=(
        logits(),
        _TARGETS,
        _NOISE,
        simplex(
            "candidates", ("M", "C"), doc="candidate targets (default: targets)", required=False
        ),
    ),
    params=(TEMPERATURE,),
    rules=(
        "offset is an integer with 0 <= offset and offset + B <= M, and "
        "candidates[offset:offset+B] equals targets",
        "a class with noise_probs 0 carries no candidate mass (its score would be +inf)",
    ),
    edges={"q_c = 0": "0 log 0 := 0 for a class no candidate puts mass on"},
)
INFO_NCE_HARD_LABELS = Domain(
    arrays=(
        logits(),
        _CLASS_LABELS,
        _NOISE,
        Labels(
            "candidate_labels",
            ("M",),
            classes="C",
            required=False,
            doc="candidate classes (default: labels)",
        ),
    ),
    params=(TEMPERATURE,),
    rules=(
        "offset is an integer with 0 <= offset and offset + B <= M, and "
        "candidate_labels[offset:offset+B] equals labels",
        "a class with noise_probs 0 is not a candidate's class",
    ),
)
INFO_NCE_FROM_SCORES = Domain(
    arrays=(logits("scores", ("B", "K")), Labels("positives", ("B",), classes="K")),
)

# ----------------------------------------------------------------------------- sincere

SUPCON_LOSS = Domain(
    arrays=(embeddings(views=True), _SUPCON_LABELS),
    params=(TEMPERATURE, BASE_TEMPERATURE),
    edges={
        "no positive": "an anchor without a same-class partner contributes 0 and is left out "
        "of the mean",
    },
)
SINCERE_LOSS = Domain(
    arrays=SUPCON_LOSS.arrays,
    params=(TEMPERATURE, BASE_TEMPERATURE),
    edges={"no positive": "an anchor without a same-class partner contributes 0"},
)

# ----------------------------------------------------------------------------- aljundi

_PROTOTYPES = Array(
    "prototypes",
    ("K", "D"),
    nonfinite=_PROPAGATE,
    doc="one prototype per class (L2-normalised inside for cosine similarity)",
)
_PROTO_LABELS = Labels("labels", ("B",), classes="K", doc="class indices in [0, K)")
PROTOTYPE_CROSS_ENTROPY = Domain(
    arrays=(embeddings(), _PROTO_LABELS, _PROTOTYPES),
    params=(TEMPERATURE,),
)
ESUPCON_LOSS = Domain(
    arrays=(embeddings(views=True), _PROTO_LABELS, _PROTOTYPES),
    params=(TEMPERATURE,),
)

# ----------------------------------------------------------------------------- lower-level entries
# Public helpers outside the families' declared losses, declared the same way.

#: :func:`~softnce_theory.losses.sincere.supcon_from_logits` / ``sincere_from_logits``: a
#: square ``(B, B)`` logit matrix (both dimensions are ``B``)
FROM_LOGITS = Domain(arrays=(logits("logits", ("B", "B")), _SUPCON_LABELS))
#: :func:`~softnce_theory.losses.aljundi.prototype_predict`
PROTOTYPE_PREDICT = Domain(arrays=(embeddings(views=True), _PROTOTYPES), params=(TEMPERATURE,))
#: :func:`~softnce_theory.losses.aljundi.esupcon_formula`: anchors ``M`` against ``B`` samples
ESUPCON_FORMULA = Domain(
    arrays=(
        logits("sample_logits", ("M", "B")),
        Array("proto_logits", ("M", "K"), nonfinite=_PROPAGATE, dtype_of="sample_logits"),
        _PROTO_LABELS,
        Labels(
            "row_labels",
            ("M",),
            classes="K",
            required=False,
            doc="the anchors' labels (an anchor subset)",
        ),
    ),
    rules=(
        "without row_labels, sample_logits is square and offset is 0",
        "row_labels equals labels[offset:offset + M]",
    ),
)
