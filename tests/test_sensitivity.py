"""Sensitivity: deliberately wrong losses (tests/mutants/losses.py) must be caught by the audit.

Each mutant is a bug seen in the wild; ``MUTANTS`` names the family it is audited as and the
property expected to catch it. The default run checks that property only (fast); the slow run
audits each mutant with the full default suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from softnce_theory.testing.loader import load_target
from softnce_theory.testing.suite import check_loss

MODULE = Path(__file__).resolve().parent / "mutants" / "losses.py"


def _load(name: str):
    return load_target(f"{MODULE}:{name}")


MUTANTS: dict[str, tuple[str, str]] = _load("MUTANTS")

#: correct implementations of the same contracts (controls: the same properties must pass)
CONTROLS = {
    "sincere": "sincere_ok",
    "soft_target_infonce": "soft_target_infonce_ok",
    "soft_ce": None,  # the production loss
    "infonce": "infonce_ok",
    "label_smoothing": None,
}

#: the seven bug classes of the issue, each covered by at least one mutant
BUG_CLASSES = {
    "temperature applied twice": "sincere_temperature_twice",
    "other positives in the SINCERE denominator": "sincere_positives_in_denominator",
    "missing log-q correction": "soft_target_infonce_missing_logq",
    "wrong reduction": "soft_ce_sum_reduction",
    "detached term": "soft_ce_detached_normaliser",
    "exp-sum-log overflow at small tau": "infonce_exp_sum_log",
    "label smoothing eps/(C-1)": "label_smoothing_k_minus_1",
}


def test_every_bug_class_has_a_mutant():
    assert set(BUG_CLASSES.values()) <= set(MUTANTS)


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_is_caught(name):
    family, prop = MUTANTS[name]
    report = check_loss(_load(name), family, max_examples=25, properties=[prop], shrink_budget=2.0)
    (r,) = report.results
    assert r.status == "fail", f"{name} escaped {prop}:\n{report.table()}"
    assert r.counterexample is not None and r.discrepancy


def _control(family: str):
    name = CONTROLS[family]
    if name is not None:
        return _load(name)
    from softnce_theory.losses import cross_entropy as ce

    return {
        "soft_ce": ce.soft_target_cross_entropy,
        "label_smoothing": ce.label_smoothing_cross_entropy,
    }[family]


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_control_passes_the_catching_property(name):
    family, prop = MUTANTS[name]
    report = check_loss(_control(family), family, max_examples=25, properties=[prop])
    assert report.passed, report.table()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_fails_the_default_audit(name):
    family, prop = MUTANTS[name]
    report = check_loss(_load(name), family)
    assert prop in {r.name for r in report.failures}, report.table()
