"""Sub-commands of the ``softnce`` CLI (one module each, see :mod:`softnce_theory.cli`)."""
