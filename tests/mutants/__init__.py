"""Deliberately wrong (and reference-correct) losses used to test that the audit catches bugs."""
