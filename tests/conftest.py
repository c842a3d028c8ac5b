"""Hypothesis profiles: CI derives from Hypothesis' built-in ``ci`` profile (loaded when CI is set)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "softnce-ci",
    parent=settings.get_profile("ci"),
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "softnce-dev",
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "softnce-thorough", parent=settings.get_profile("softnce-dev"), max_examples=500
)
settings.load_profile(
    os.environ.get(
        "SOFTNCE_HYPOTHESIS_PROFILE", "softnce-ci" if os.environ.get("CI") else "softnce-dev"
    )
)
