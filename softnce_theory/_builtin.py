"""The built-in family declarations (the only place that names them).

Each family's parts live in modules with the family's name in every layer:
``softnce_theory/derivations/<name>.py`` (claims, definitions), ``softnce_theory/numerics/<name>.py``
(oracle legs), ``softnce_theory/engine/<name>.py`` (production legs, conformance) and
``softnce_theory/losses/<name>.py`` (the losses). :func:`layers` builds those references, so a
declaration only names what is specific to the family.
"""

from __future__ import annotations

from typing import Any, TypedDict

from softnce_theory.registry import Family

_PLOTS = "softnce_theory.plots."
_MC = "softnce_theory.numerics.montecarlo."


def layers(name: str) -> dict[str, Any]:
    """References to a built-in family's parts in the three layers."""
    d, n, e = (f"softnce_theory.{layer}.{name}" for layer in ("derivations", "numerics", "engine"))
    return {
        "claims": f"{d}:CLAIMS",
        "definitions": f"{d}:DEFINITIONS",
        "definition_legs": f"{n}:DEFINITION",
        "precise": f"{n}:PRECISE",
        "production": f"{e}:PRODUCTION",
        "conformance": f"{e}:CONFORMANCE",
    }


class _Losses(TypedDict):
    losses: dict[str, Any]
    domains: dict[str, Any]


def losses(name: str, *functions: str) -> _Losses:
    """``losses`` and ``domains`` of a built-in family: each loss ``f`` of
    ``softnce_theory/losses/<name>.py`` and its input domain ``F`` (upper-cased) in
    :mod:`softnce_theory.losses.domains`."""
    return {
        "losses": {fn: f"softnce_theory.losses.{name}:{fn}" for fn in functions},
        "domains": {fn: f"softnce_theory.losses.domains:{fn.upper()}" for fn in functions},
    }


BUILTIN: tuple[Family, ...] = (
    Family(
        name="infonce",
        title="InfoNCE / NCE theory: the MI bound, the log K ceiling, finite-negative bias",
        source="van den Oord et al. 2018 (arXiv 1807.03748) eq. (4); Poole et al. 2019",
        **layers("infonce"),
        **losses("infonce", "info_nce", "symmetric_info_nce", "ranking_nce"),
        tiled=("infonce", "symmetric_infonce"),
        contracts=("infonce",),
        distributed=("infonce",),
        scenarios={
            "ranking_nce": _MC + "nce:RankingNCE",
            "sampled_softmax": _MC + "nce:SampledSoftmax",
            "log_mean_exp": _MC + "nce:LogMeanExp",
            "mi_discrete": _MC + "mi:MIDiscrete",
            "mi_gaussian": _MC + "mi:MIGaussian",
        },
        figures={
            "negatives_bias": _PLOTS + "negatives_bias",
            "infonce_mi_bound": _PLOTS + "infonce_mi_bound",
        },
    ),
    Family(
        name="soft_target_infonce",
        title="Soft-target InfoNCE",
        source="Hugger & Uhlmann 2024 (arXiv 2404.14076), eq. (6) and official code loss.py",
        **layers("soft_target_infonce"),
        **losses("soft_target_infonce", "soft_target_info_nce", "info_nce_hard_labels"),
        tiled=("soft_target_infonce",),
        contracts=("soft_target_infonce",),
        distributed=("soft_target_infonce",),
        scenarios={"soft_target": _MC + "soft_target:SoftTarget"},
        figures={
            "soft_limit_gap": _PLOTS + "soft_limit_gap",
            "soft_target_toy": _PLOTS + "soft_target_toy",
        },
    ),
    Family(
        name="cross_entropy",
        title="Cross-entropy baselines: soft CE, label smoothing, NLL",
        source="Hugger & Uhlmann 2024 baselines (SoftTargetCrossEntropy); Szegedy et al. 2016 §7",
        **layers("cross_entropy"),
        **losses(
            "cross_entropy",
            "soft_target_cross_entropy",
            "nll_loss",
            "label_smoothing_cross_entropy",
        ),
        contracts=("soft_ce", "label_smoothing"),
    ),
    Family(
        name="sincere",
        title="SupCon and SINCERE: same-class repulsion and the KL bound",
        source="Khosla et al. 2020 (arXiv 2004.11362) eq. 2/3; Feeney & Hughes (arXiv 2309.14277)",
        **layers("sincere"),
        **losses("sincere", "supcon_loss", "sincere_loss"),
        tiled=("supcon", "sincere"),
        contracts=("supcon_out", "supcon_in", "sincere"),
        distributed=("supcon_out", "supcon_in", "sincere"),
        scenarios={"supcon": _MC + "supcon:SupConComposition"},
        figures={
            "supcon_repulsion": _PLOTS + "supcon_repulsion",
            "sincere_kl_bound": _PLOTS + "sincere_kl_bound",
        },
    ),
    Family(
        name="aljundi",
        title="Prototype CE and ESupCon (reconstructed)",
        source="Aljundi et al. 2023 (arXiv 2211.03646), abstract and figure (reconstructed)",
        **layers("aljundi"),
        **losses("aljundi", "prototype_cross_entropy", "esupcon_loss"),
        tiled=("esupcon",),
    ),
    Family(
        name="collision_ce",
        title="Collision cross-entropy: the self-labeling loss and EM",
        source="Zhang & Boykov 2023 (arXiv 2303.07321)",
        **layers("collision_ce"),
        **losses("collision_ce", "collision_cross_entropy", "self_labeling_loss"),
        contracts=("collision_ce",),
        figures={
            "collision_vs_shannon": _PLOTS + "collision_vs_shannon",
            "em_vs_pgd": _PLOTS + "em_vs_pgd",
        },
    ),
)
