"""Layer 2: high-precision oracles (mpmath) and the Monte Carlo engine.

``numerics/<family>.py`` (installed as ``softnce_theory.numerics``) holds the mpmath reference
for each loss family, written straight from the paper's formula (not lambdified from SymPy,
sharing no code with the torch losses), plus the precise legs of that family's claims
(``PRECISE``) and its definition legs (``DEFINITION``). The family registry
(:mod:`softnce_theory.registry`) points at them. This package may import
``softnce_theory.derivations`` but never the rest of ``softnce_theory``.
"""
