"""Testing kit: Hypothesis strategies (and, later, property suites) for contrastive losses."""

from softnce_theory.testing import strategies

__all__ = ["strategies"]
