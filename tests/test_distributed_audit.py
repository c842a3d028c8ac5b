"""The distributed audit: passes correct implementations, catches and names every bug class.

Sensitivity: the buggy implementations of ``tests/mutants/distributed.py`` (one per bug class
reported in peer libraries) must fail with exactly their diagnosis, the correct controls
(including "the full global loss on every rank") must pass, on W = 2 and 3 ranks (4: slow).
The production distributed losses are audited as controls too. Plus the CLI option
``--world-size`` and the fixture's ``world_size=``.
"""

from __future__ import annotations

import functools

import pytest
import torch

from softnce_theory.cli import main
from softnce_theory.losses import distributed as D
from softnce_theory.testing.distributed import (
    DISTRIBUTED_FAMILIES,
    audit_cases,
    check_distributed,
    run_ranks,
)
from tests.mutants import distributed as M


def _ids(row: tuple[str, str, str | None]) -> str:
    return row[1]


def _sensitivity(world: int, row: tuple[str, str, str | None]) -> None:
    family, name, want = row
    report = check_distributed(getattr(M, name), family, world)
    assert report.error is None, report.table()
    if want is None:
        assert report.passed, report.table()
        assert not report.diagnoses
    else:
        assert not report.passed
        assert report.diagnoses == [want], report.table()


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("row", M.SENSITIVITY, ids=_ids)
def test_sensitivity(row, world):
    _sensitivity(world, row)


@pytest.mark.slow
@pytest.mark.parametrize("row", M.SENSITIVITY, ids=_ids)
def test_sensitivity_four_ranks(row):
    _sensitivity(4, row)


def _production(family: str, tile: int):
    if family == "sincere":
        return lambda e, y, t: D.sincere_loss(e, y, temperature=t, tile=tile)
    if family in ("supcon_out", "supcon_in"):
        v = family.split("_")[1]
        return lambda e, y, t: D.supcon_loss(e, y, temperature=t, variant=v, tile=tile)
    if family == "infonce":
        return lambda q, k, t: D.info_nce(q, k, temperature=t, tile=tile)
    return lambda f, a, q, t: D.soft_target_info_nce(f, a, q, temperature=t, tile=tile)


@pytest.mark.parametrize("tile", [0, 3])
@pytest.mark.parametrize("family", DISTRIBUTED_FAMILIES)
def test_production_distributed_losses_pass(family, tile):
    report = check_distributed(_production(family, tile), family, 3)
    assert report.passed, report.table()


def test_cases_cover_a_rank_without_positives():
    case = next(c for c in audit_cases("sincere", 3) if c.name == "rank1_without_positives")
    y = case.args["labels"]
    rank1 = y[4:8]
    assert all((y == v).sum() == 1 for v in rank1)


def test_user_error_is_reported():
    def broken(e, y, t):
        raise RuntimeError("boom")

    report = check_distributed(broken, "sincere", 2)
    assert not report.passed and report.error and "boom" in report.error + report.table()
    report = check_distributed(lambda e, y, t: e.sum(1), "sincere", 2)  # not a scalar
    assert not report.passed and "scalar" in (report.error or "")


def test_bad_arguments():
    with pytest.raises(ValueError, match="world_size"):
        check_distributed(M.sincere_ok, "sincere", 1)
    with pytest.raises(ValueError, match="family"):
        check_distributed(M.sincere_ok, "soft_ce", 2)


def test_run_ranks_returns_per_rank_results():
    def fn(rank, world, arg):
        t = torch.tensor([rank + arg])
        torch.distributed.all_reduce(t)
        return int(t)

    assert run_ranks(fn, 3, 10) == [33, 33, 33]


def test_cli_world_size(capsys):
    rc = main(
        [
            "audit",
            "tests/mutants/distributed.py:infonce_no_offset",
            "--family",
            "infonce",
            "--world-size",
            "2",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 1
    assert "positive index not offset by rank" in out and "W = 2" in out
    target = "tests/mutants/distributed.py:infonce_ok"
    rc = main(["audit", target, "--family", "infonce", "--world-size", "3", "--json"])
    out = capsys.readouterr().out
    assert rc == 0 and '"passed": true' in out


def test_cli_world_size_usage_errors(capsys):
    target = "tests/mutants/distributed.py:sincere_ok"
    rc = main(["audit", target, "--family", "soft_ce", "--world-size", "2"])
    assert rc == 2


def test_fixture_world_size(softnce_audit):
    report = softnce_audit(M.sincere_ok, family="sincere", world_size=2)
    assert report.passed and report.world_size == 2
    with pytest.raises(pytest.fail.Exception, match="negatives not gathered"):
        softnce_audit(M.sincere_local, family="sincere", world_size=2)


@pytest.mark.softnce_audit(family="infonce", world_size=3)
def test_fixture_marker_world_size(softnce_audit):
    report = softnce_audit(functools.partial(M.infonce_ok))
    assert report.world_size == 3
