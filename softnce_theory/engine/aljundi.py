"""Family aljundi: production legs and conformance checks (to be written)."""

from derivations import LegRegistry

PRODUCTION = LegRegistry("production")
CONFORMANCE = LegRegistry("production")
