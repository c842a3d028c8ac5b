"""Family aljundi: mpmath oracle and precise legs (to be written)."""

from derivations import LegRegistry

PRECISE = LegRegistry("precise")
