"""The engine joining symbolic (derivations), precise (numerics) and production (torch) legs.

``softnce_theory/engine/<family>.py`` registers the production legs of that family's claims
(``PRODUCTION``) and its conformance checks against the oracles (``CONFORMANCE``).
"""

from softnce_theory.engine._core import (
    ClaimResult,
    check_claim,
    conformance_registry,
    production_registry,
    run_catalogue,
    run_conformance,
    run_definitions,
    run_lemmas,
    select_claims,
    status_of,
)

__all__ = [
    "ClaimResult",
    "check_claim",
    "conformance_registry",
    "production_registry",
    "run_catalogue",
    "run_conformance",
    "run_definitions",
    "run_lemmas",
    "select_claims",
    "status_of",
]
