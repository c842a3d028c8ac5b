"""pytest plugin (entry point ``pytest11: softnce``): guard a loss in one short test.

Fixture ``softnce_audit``: a callable ``softnce_audit(fn, family=..., adapter=None,
max_examples=None, seed=None, properties=None, skip=(), tier=None, world_size=None)`` that runs
:func:`softnce_theory.testing.check_loss` and fails the test with the audit table (minimal
counterexample and discrepancy of every failing property) unless every property of the selected
tier passes (``tier="all"``, the default, or ``"correctness"``: robustness-policy findings are
then reported but do not fail the test). It returns the
:class:`~softnce_theory.testing.core.AuditReport`. With ``world_size=W`` it runs
the **distributed** audit instead (:func:`softnce_theory.testing.distributed.check_distributed`:
``fn`` on W gloo ranks, DDP's convention, bug diagnoses) and returns its
:class:`~softnce_theory.testing.distributed.DistributedReport`.

Marker ``@pytest.mark.softnce_audit(family=..., adapter=..., max_examples=..., seed=...,
tier=..., world_size=...)`` supplies defaults for the fixture's arguments in that test.

Precedence for ``max_examples``: the fixture argument, then ``--softnce-max-examples``, then the
marker, then the loaded Hypothesis profile's ``max_examples`` when a profile changed it from
Hypothesis' built-in default, else the kit's default (40). ``seed``: argument, then
``--softnce-seed``, then the marker, else 0. The audit always runs with its own explicit
settings (``deadline=None``, ``database=None``, fixed seed) and never loads or registers a
profile.

Importing this module is cheap: its module-level imports are the standard library and pytest
(the host that loads it); torch, Hypothesis, SymPy, mpmath and NumPy are imported only when a
test calls the fixture (``tests/test_testing_kit.py`` checks both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("softnce", "softnce-theory loss audit (softnce_audit fixture)")
    group.addoption(
        "--softnce-max-examples",
        type=int,
        default=None,
        help="Hypothesis examples per property for the softnce_audit fixture",
    )
    group.addoption(
        "--softnce-seed", type=int, default=None, help="seed for the softnce_audit fixture"
    )


def pytest_configure(config: Any) -> None:
    config.addinivalue_line(
        "markers",
        "softnce_audit(family=None, adapter=None, max_examples=None, seed=None, tier=None, "
        "world_size=None): defaults for the softnce_audit fixture in this test",
    )


def _profile_max_examples() -> int | None:
    """The loaded Hypothesis profile's ``max_examples`` if a profile set it, else ``None``."""
    from hypothesis import settings

    loaded = settings.default
    if loaded is None:
        return None
    current = loaded.max_examples
    builtin = settings.get_profile("default").max_examples
    return None if current == builtin else int(current)


@pytest.fixture
def softnce_audit(request: Any) -> Callable[..., Any]:
    """Audit a loss against a family contract; fail the test with the report on any failure."""
    marker = request.node.get_closest_marker("softnce_audit")
    mk: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        mk.setdefault("family", marker.args[0])
    opt_examples = request.config.getoption("--softnce-max-examples", default=None)
    opt_seed = request.config.getoption("--softnce-seed", default=None)

    def audit(
        fn: Callable[..., Any],
        family: str | None = None,
        *,
        adapter: str | None = None,
        max_examples: int | None = None,
        seed: int | None = None,
        properties: Sequence[str] | None = None,
        skip: Sequence[str] = (),
        tier: str | None = None,
        world_size: int | None = None,
    ) -> Any:
        from softnce_theory.testing.suite import DEFAULT_MAX_EXAMPLES, DEFAULT_SEED, check_loss

        fam = family or mk.get("family")
        if fam is None:
            raise ValueError("softnce_audit needs family=... (argument or marker)")
        n = max_examples or opt_examples or mk.get("max_examples") or _profile_max_examples()
        s = seed if seed is not None else opt_seed if opt_seed is not None else mk.get("seed")
        ws = world_size if world_size is not None else mk.get("world_size")
        if ws is not None:
            from softnce_theory.testing.distributed import check_distributed

            dreport = check_distributed(fn, fam, int(ws), seed=0 if s is None else int(s))
            if not dreport.passed:
                pytest.fail(dreport.table(), pytrace=False)
            return dreport
        report = check_loss(
            fn,
            fam,
            adapter=adapter or mk.get("adapter"),
            max_examples=int(n or DEFAULT_MAX_EXAMPLES),
            seed=DEFAULT_SEED if s is None else int(s),
            properties=properties,
            skip=skip,
            tier=tier or mk.get("tier") or "all",
        )
        if not report.passed:
            pytest.fail(report.table(), pytrace=False)
        return report

    return audit
