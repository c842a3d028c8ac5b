"""Guard the losses of ``my_loss.py`` with softnce-theory's ``softnce_audit`` pytest fixture.

The fixture is installed with the package (``pip install 'softnce-theory[testing]'``; pytest
finds it through the ``softnce`` plugin entry point, nothing to configure). Each call runs the
family's property suite -- values against 50-digit oracles, gradients against closed forms,
invariances, limits, edge cases, low precision -- and fails the test with the audit table
(shrunk counterexample and discrepancy) unless every property passes.
"""

from __future__ import annotations

import pytest
from my_loss import info_nce, info_nce_naive, soft_cross_entropy

from softnce_theory.testing import check_loss


def test_soft_cross_entropy(softnce_audit):
    report = softnce_audit(soft_cross_entropy, family="soft_ce")
    assert report.passed


@pytest.mark.softnce_audit(family="infonce", seed=1)
def test_info_nce(softnce_audit):
    softnce_audit(info_nce)  # family and seed come from the marker


def test_the_audit_catches_the_naive_info_nce():
    """The guard has teeth: the exp-sum-log version fails the extreme-temperature property."""
    report = check_loss(
        info_nce_naive, family="infonce", max_examples=10, properties=["extreme_temperature"]
    )
    assert not report.passed, report.table()
