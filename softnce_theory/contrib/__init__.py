"""Families added through the public extension API only, exactly as a user's package would add
them (see ``docs/guides/verify-your-own-loss.md``): each module declares one
:class:`~softnce_theory.registry.Family` as ``FAMILY`` and is registered by one entry point in
the ``softnce.families`` group of ``pyproject.toml``. Nothing else in the toolkit names them.
"""
