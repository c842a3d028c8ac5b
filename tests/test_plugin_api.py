"""The public extension API: a user package outside the repository declares a family, installs
an entry point, and is verified by the CLI; a wrong closed-form gradient is refuted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "examples" / "verify_your_own_loss"


def _install(tmp: Path, entry_points: str) -> Path:
    """Copy the user package to ``tmp`` and give it a dist-info with ``entry_points``, as
    ``pip install`` would (importlib.metadata finds it on ``sys.path``)."""
    site = tmp / "site"
    site.mkdir()
    shutil.copytree(FIXTURE / "softnce_user_family", site / "softnce_user_family")
    info = site / "softnce_user_family-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: softnce-user-family\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(entry_points)
    return site


def _softnce(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(site))
    return subprocess.run(
        [sys.executable, "-m", "softnce_theory.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _statuses(out: str) -> dict[str, dict]:
    data = json.loads(out)
    return {c["id"]: c for c in data["claims"]}


def test_entry_point_family_is_verified(tmp_path: Path) -> None:
    site = _install(tmp_path, "[softnce.families]\nuser_infonce = softnce_user_family:FAMILY\n")
    res = _softnce(site, "verify", "--family", "user_infonce", "--quick", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    claims = _statuses(res.stdout)
    want = {
        "value",
        "gradient",
        "closed_form_gradient",
        "low_precision",
        "extremes",
        "invariance.logit_shift",
        "invariance.batch_permutation",
    }
    assert {cid.split(".generic.", 1)[1] for cid in claims} == want
    assert all(c["status"] in ("proved", "checked") for c in claims.values())
    # the closed form is proved by the engine differentiating the definition itself
    assert claims["user_infonce.generic.closed_form_gradient"]["status"] == "proved"
    # every numeric leg looked at points; the oracle is the user's (independent)
    for c in claims.values():
        for leg in c["legs"]:
            if leg["leg"] != "symbolic":
                assert leg["n_points"] > 0
    # and the same family by --plugin (the entry point's object is registered once)
    res2 = _softnce(
        site,
        "claims",
        "--plugin",
        "softnce_user_family",
        "--family",
        "user_infonce",
        cwd=tmp_path,
    )
    assert res2.returncode == 0, res2.stderr
    assert "user_infonce.generic.closed_form_gradient" in res2.stdout


def test_wrong_closed_form_gradient_is_refuted_with_counterexample(tmp_path: Path) -> None:
    site = _install(tmp_path, "[softnce.families]\n")
    res = _softnce(
        site,
        "verify",
        "--plugin",
        "softnce_user_family.wrong",
        "--family",
        "user_infonce_wrong",
        "--quick",
        "--json",
        cwd=tmp_path,
    )
    assert res.returncode == 1, res.stderr
    claims = _statuses(res.stdout)
    bad = claims["user_infonce_wrong.generic.closed_form_gradient"]
    assert bad["status"] == "refuted"
    failing = [leg for leg in bad["legs"] if leg["outcome"] == "fail"]
    assert failing and all("row" in leg["counterexample"] for leg in failing)
    # only the wrong claim is refuted: the loss itself is right
    others = [c["status"] for cid, c in claims.items() if cid != bad["id"]]
    assert set(others) <= {"proved", "checked"}


def test_generated_oracle_is_marked_not_independent(tmp_path: Path) -> None:
    site = _install(tmp_path, "[softnce.families]\n")
    (site / "softnce_user_family" / "no_oracle.py").write_text(
        "import dataclasses\n"
        "from softnce_user_family import FAMILY, SPEC\n"
        "FAMILY = dataclasses.replace(FAMILY, name='user_no_oracle', "
        "spec=dataclasses.replace(SPEC, oracle=None))\n"
    )
    res = _softnce(
        site,
        "verify",
        "--plugin",
        "softnce_user_family.no_oracle",
        "--family",
        "user_no_oracle",
        "--quick",
        "--json",
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    claims = _statuses(res.stdout)
    value = claims["user_no_oracle.generic.value"]
    (leg,) = [leg for leg in value["legs"] if leg["leg"] == "production"]
    assert "not independent" in leg["detail"]
    assert not any(leg["leg"] == "definition" for c in claims.values() for leg in c["legs"])


def test_broken_entry_point_is_reported_not_fatal(tmp_path: Path) -> None:
    site = _install(tmp_path, "[softnce.families]\nbroken = softnce_user_family:NOPE\n")
    res = _softnce(site, "claims", "--family", "cross_entropy", cwd=tmp_path)
    assert res.returncode == 0
    assert "warning: entry point broken" in res.stderr


def test_unknown_plugin_and_family_are_usage_errors(tmp_path: Path) -> None:
    site = _install(tmp_path, "[softnce.families]\n")
    res = _softnce(site, "verify", "--plugin", "no_such_module_xyz", cwd=tmp_path)
    assert res.returncode == 2 and "--plugin" in res.stderr
    res = _softnce(site, "verify", "--family", "no_such_family", cwd=tmp_path)
    assert res.returncode == 2 and "--family must be one of" in res.stderr


def test_registry_rejects_a_second_family_of_the_same_name() -> None:
    from softnce_theory.registry import Family, Registry

    a = Family(name="x", title="x", source="s")
    reg = Registry([a])
    reg.register(a)  # the same object again: no-op
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Family(name="x", title="y", source="s"), "plugin m")
