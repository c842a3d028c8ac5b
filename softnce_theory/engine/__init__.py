"""The engine joining symbolic (derivations), precise (numerics) and production (torch) legs.

``softnce_theory/engine/<family>.py`` registers the production legs of that family's claims
(``PRODUCTION``) and its conformance checks against the oracles (``CONFORMANCE``); the family's
:class:`~softnce_theory.registry.Family` declaration points at them, and
:mod:`._catalogue` merges what the registered families declare.
"""

from softnce_theory._extras import require

require("softnce_theory.engine", "sympy", "mpmath", "scipy")


from softnce_theory.engine._catalogue import (  # noqa: E402
    all_claims,
    all_definitions,
    conformance_registry,
    definition_registry,
    families,
    get_claim,
    precise_registry,
    production_registry,
)
from softnce_theory.engine._core import (  # noqa: E402
    ClaimResult,
    check_claim,
    run_catalogue,
    run_conformance,
    run_definitions,
    run_lemmas,
    select_claims,
    status_of,
)

__all__ = [
    "ClaimResult",
    "all_claims",
    "all_definitions",
    "check_claim",
    "conformance_registry",
    "definition_registry",
    "families",
    "get_claim",
    "precise_registry",
    "production_registry",
    "run_catalogue",
    "run_conformance",
    "run_definitions",
    "run_lemmas",
    "select_claims",
    "status_of",
]
