"""Production torch losses, one module per family (see each module's docstring for formulas)."""
