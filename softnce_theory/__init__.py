"""softnce-theory: verified contrastive and noise-contrastive losses.

Layer 3 (the public face): production torch losses (:mod:`softnce_theory.losses`), the engine
that checks every claim on three legs (:mod:`softnce_theory.engine`), and the ``softnce`` CLI.
"""

__version__ = "0.1.0"
