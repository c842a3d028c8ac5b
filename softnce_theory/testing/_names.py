"""Family and adapter names, importable without torch (for the CLI parser and the plugin).

``tests/test_testing_kit.py`` checks that they match the registries in ``families`` and
``adapters``.
"""

FAMILY_NAMES: tuple[str, ...] = (
    "supcon_out",
    "supcon_in",
    "sincere",
    "infonce",
    "soft_target_infonce",
    "soft_ce",
    "collision_ce",
    "label_smoothing",
)

ADAPTER_NAMES: tuple[str, ...] = (
    "pml",
    "pml-per-anchor",
    "info-nce",
    "torch-ce",
    "torch-label-smoothing",
    "hobbitlong",
)
