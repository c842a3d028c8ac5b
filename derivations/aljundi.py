"""Family aljundi: SymPy definitions and claims (to be written)."""

from derivations._claim import Claim

CLAIMS: tuple[Claim, ...] = ()
