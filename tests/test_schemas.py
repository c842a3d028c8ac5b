"""Every machine-readable output of ``softnce`` (verify, claims, mc, audit, bench, the figure
sidecars) names its schema in a top-level ``"schema"`` key and conforms to the JSON Schema
shipped in ``softnce_theory/schemas``; broken outputs are rejected.

The outputs are real: each command runs once, as a user runs it (the console script, in a
directory that is not the checkout), at its smallest settings."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from softnce_theory import schemas

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parents[1]
CHEAP_CLAIM = "sincere.supcon_in_gradient_nonpositive"  # passes its quick legs in ~0.03 s
#: the smallest benchmark (in-process, tiny sizes): options after ``softnce bench --``
TINY_BENCH = [
    "--in-process", "--silent", "--batch", "32", "--st-batch", "8", "--classes", "4",
    "--scaling", "16,32", "--big", "0", "--repeats", "1", "--dim", "4", "--agree-batch", "0",
]  # fmt: skip

#: schema kind -> the command line that prints it (stdout), or writes it to {out}
COMMANDS: dict[str, list[str]] = {
    "catalogue": ["claims", "--json"],
    "claims": ["verify", "--claim", CHEAP_CLAIM, "--quick", "--json", "--jobs", "1"],
    "mc": ["mc", "log_mean_exp", "--k", "1,2", "--max-samples", "64", "--min-samples", "16",
           "--json"],
    "audit": ["audit", "softnce_theory.losses.sincere:sincere_loss", "--family", "sincere",
              "--max-examples", "2", "--property", "value_vs_oracle", "--json"],
    "audit-distributed": ["audit", str(ROOT / "tests/mutants/distributed.py:infonce_no_offset"),
                          "--family", "infonce", "--world-size", "2", "--json"],
    "bench": ["bench", "--json", "{out}/bench.json", "--device", "cpu", "--", *TINY_BENCH,
              "--family", "sincere", "--family", "soft_target_infonce",
              "--scaling-family", "sincere"],
    "figure": ["plots", "soft_limit_gap", "--quick", "--out", "{out}"],
}  # fmt: skip
#: where a command that writes a file puts it
FILES = {"bench": "bench.json", "figure": "soft_limit_gap.json"}
#: the exit codes that are not an error (a failing audit is a verdict: 1)
OK_CODES = {"audit-distributed": (1,)}


def _softnce(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("softnce")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "softnce_theory.cli"]
    return subprocess.run(
        [*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, Any]]:
    """``output(kind)``: the parsed JSON of the command of ``kind``, run once (lazily)."""
    cache: dict[str, dict[str, Any]] = {}

    def get(kind: str) -> dict[str, Any]:
        if kind not in cache:
            d = tmp_path_factory.mktemp(kind)  # neither the checkout nor anything in it
            proc = _softnce([a.format(out=d) for a in COMMANDS[kind]], cwd=d)
            assert proc.returncode in (0, *OK_CODES.get(kind, ())), proc.stderr[-2000:]
            text = (d / FILES[kind]).read_text() if kind in FILES else proc.stdout
            cache[kind] = json.loads(text)
        return copy.deepcopy(cache[kind])

    return get


def _schema_id(kind: str) -> str:
    return {
        "catalogue": "softnce-theory/catalogue/1",
        "claims": "softnce-theory/claims/2",
        "mc": "softnce-theory/mc/1",
        "audit": "softnce-theory/audit/1",
        "audit-distributed": "softnce-theory/audit/1",
        "bench": "softnce-theory/bench/1",
        "figure": "softnce-theory/figure/1",
    }[kind]


# ----------------------------------------------------------------------------- the schema files


def test_every_schema_file_is_a_valid_draft_2020_12_schema() -> None:
    files = {p.name for p in Path(schemas.__file__).parent.glob("*.json")}
    assert files == {schemas.filename(sid) for sid in schemas.SCHEMAS}  # none missing, no orphan
    for sid in schemas.SCHEMAS:
        s = schemas.load(sid)
        assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema", sid
        jsonschema.Draft202012Validator.check_schema(s)
        assert s["properties"]["schema"] == {"const": sid} and "schema" in s["required"], sid
        assert s["title"] and s["description"], sid


def test_load_by_kind_is_the_newest_version() -> None:
    assert schemas.load("mc") == schemas.load("softnce-theory/mc/1")
    assert schemas.filename("claims") == "claims-2.json"
    with pytest.raises(ValueError, match="schema must be one of"):
        schemas.load("nope")


def test_schema_enums_follow_the_code() -> None:
    """The enumerations in the schemas are the code's: a new claim kind, leg, tier or Monte
    Carlo quantity must bump (or extend) the schema, not silently fail validation."""
    from softnce_theory.derivations import KINDS
    from softnce_theory.derivations._claim import LegName, Outcome, Status
    from softnce_theory.registry import registry, resolve
    from softnce_theory.testing.core import TIER_CHOICES, TIERS

    catalogue, claims = schemas.load("catalogue"), schemas.load("claims")
    assert catalogue["$defs"]["claim"]["properties"]["kind"]["enum"] == list(KINDS)
    cl = claims["$defs"]["claim"]["properties"]
    assert cl["kind"]["enum"] == list(KINDS)
    assert cl["status"]["enum"] == list(typing.get_args(Status))
    leg = claims["$defs"]["leg"]["properties"]
    assert leg["leg"]["enum"] == list(typing.get_args(LegName))
    assert leg["outcome"]["enum"] == list(typing.get_args(Outcome))
    audit = schemas.load("audit")["$defs"]
    assert audit["properties_mode"]["properties"]["tier"]["enum"] == list(TIER_CHOICES)
    assert audit["property"]["properties"]["tier"]["enum"] == list(TIERS)
    quantities = {resolve(ref).quantity for ref in registry().scenarios().values()}
    assert quantities <= set(schemas.load("mc")["properties"]["quantity"]["enum"])


# ----------------------------------------------------------------------------- real outputs


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_real_output_conforms_to_its_schema(
    output: Callable[[str], dict[str, Any]], kind: str
) -> None:
    data = output(kind)
    assert data["schema"] == _schema_id(kind)
    schemas.validate(data)  # raises on any violation


def _bench_mode(tmp_path: Path, mode: str, extra: list[str]) -> None:
    from softnce_theory.bench import losses

    js = tmp_path / f"{mode}.json"
    base = ["--silent", "--family", "sincere", "--dim", "4", "--repeats", "1"]
    assert losses.main([*base, *extra, "--json", str(js)]) == 0
    data = json.loads(js.read_text())
    assert data["schema"] == "softnce-theory/bench/1" and data["mode"] == mode
    schemas.validate(data)


def test_bench_dispatch_mode_conforms(tmp_path: Path) -> None:
    """(The roofline mode is validated by tests/test_tiled.py's roofline smoke test.)"""
    _bench_mode(tmp_path, "dispatch", ["--dispatch", "--dispatch-sizes", "16,32"])


@pytest.mark.slow
def test_bench_equivalence_mode_conforms(tmp_path: Path) -> None:
    _bench_mode(tmp_path, "equivalence", ["--equivalence", "--equivalence-trials", "1"])


# ----------------------------------------------------------------------------- broken outputs


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value


#: per kind: (path, wrong value): a wrong type, a value out of its enum or range, deep inside
BROKEN: dict[str, list[tuple[tuple[Any, ...], Any]]] = {
    "catalogue": [(("claims", 0, "kind"), "bogus"), (("claims", 0, "uses"), "a string")],
    "claims": [
        (("claims", 0, "legs", 0, "n_points"), "8"),
        (("claims", 0, "status"), "maybe"),
        (("summary", "proved"), -1),
        (("config", "quick"), "no"),
    ],
    "mc": [(("results", 0, "k"), 0), (("results", 0, "outputs", 0, "ci"), [0.0])],
    "audit": [(("results", 0, "status"), 1), (("passed",), "true")],
    "audit-distributed": [(("world_size",), 1), (("results", 0, "value"), "NaN")],
    "bench": [(("compare", 0, "B"), "64"), (("compare", 0, "status"), "fine")],
    "figure": [(("seed",), -1), (("claims", 0, "legs"), [])],
}


@pytest.mark.parametrize("kind", list(COMMANDS))
def test_broken_output_is_rejected(output: Callable[[str], dict[str, Any]], kind: str) -> None:
    sid = _schema_id(kind)
    required = schemas.load(sid)["required"]
    assert len(required) >= 2
    for key in required:  # every required top-level key
        data = output(kind)
        del data[key]
        with pytest.raises(ValueError, match=r"(required property|'schema' key)"):
            schemas.validate(data, None if key == "schema" else sid)
    for path, value in BROKEN[kind]:  # a wrong type or value, deep inside
        data = output(kind)
        _set(data, path, value)
        with pytest.raises(ValueError, match=sid):
            schemas.validate(data)
    data = output(kind)
    data["schema"] = sid.rsplit("/", 1)[0] + "/99"  # a version this package does not know
    with pytest.raises(ValueError, match="schema must be one of"):
        schemas.validate(data)


def test_bench_row_without_a_reason_is_rejected(output: Callable[[str], dict[str, Any]]) -> None:
    """A row that is not 'ok' must say why (a missing peer names the package)."""
    data = output("bench")
    row = data["compare"][0]
    row.update(status="unavailable")
    with pytest.raises(ValueError, match="reason"):
        schemas.validate(data)
    row["reason"] = "pytorch-metric-learning is not installed"
    schemas.validate(data)


def test_validate_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # import raises ImportError
    with pytest.raises(ModuleNotFoundError) as exc:
        schemas.validate({"schema": "softnce-theory/mc/1"})
    msg = str(exc.value)
    assert "'jsonschema'" in msg and "pip install jsonschema" in msg and "\n" not in msg
    assert schemas.load("mc")["title"]  # loading needs no jsonschema


def test_validate_refuses_an_object_without_a_schema_key() -> None:
    bad: list[Any] = [[], {"claims": []}, {"schema": 2}, {"schema": "other/claims/2"}]
    for obj in bad:
        with pytest.raises(ValueError, match="top-level 'schema' key"):
            schemas.validate(obj)
