"""Standing fuzz of CLI misuse: a matrix of bad invocations over every ``softnce`` command.

Every case is a command line that must be refused with exit code 2 (usage or input error) and
exactly one line on stderr, without a traceback, naming the option, parameter or file at fault.
The expectations are written here by hand (code 2, the name to mention); nothing is computed by
the code under test. Each case starts from a *base* command line that would succeed quickly, so
that a bad value which is silently accepted shows up as exit 0 ("silent acceptance") rather
than hiding behind an unrelated refusal.

Classification (see ``docs/cli.md``): **raw traceback** (an exception escaped ``main()`` or
"Traceback" on stderr), **silent acceptance** (exit 0), **wrong exit code** (any other code
than 2, or an error that is not one line or does not name what it should).

The default run takes a deterministic slice (every case whose index in its group is a multiple
of 4); ``-m slow`` runs all of them, prints a summary line and writes the counts as JSON to
``$SOFTNCE_FUZZ_DIR`` (default: pytest's temporary directory).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import time
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from softnce_theory.cli import main

CHEAP_CLAIM = "sincere.supcon_in_gradient_nonpositive"


@dataclasses.dataclass(frozen=True)
class Case:
    group: str
    argv: tuple[str, ...]
    name: str | None  # what the one stderr line must mention (None: anything)
    quick: bool = False


# ----------------------------------------------------------------------------- the matrix


def _bases(d: Path) -> dict[str, list[str]]:
    """Command lines that succeed fast; each case adds one bad piece to one of them."""
    return {
        "verify": ["verify", "--claim", CHEAP_CLAIM, "--quick", "--no-conformance", "--json"],
        "claims": ["claims", "--json"],
        "plots": ["plots", "soft_limit_gap", "--quick", "--out", str(d / "figs")],
        "audit": [
            "audit",
            "softnce_theory.losses.sincere:sincere_loss",
            "--family",
            "sincere",
            "--max-examples",
            "1",
            "--property",
            "value_vs_oracle",
        ],
        "mc": [
            "mc",
            "log_mean_exp",
            "--k",
            "2",
            "--max-samples",
            "8",
            "--min-samples",
            "4",
            "--json",
        ],
        "bench": ["bench", "--quick"],
    }


#: values that are not a valid instance of a field type (JSON text, as given to ``-p``)
_WRONG: dict[str, tuple[str, ...]] = {
    "int": ("true", "false", "1.5", '"x"', "{}", "[]", "null", "[1]", "abc", "1e400"),
    "float": ("true", '"x"', "{}", "[1]", "null", "[[1]]", "abc", "[]"),
    "bool": ("1", "0", '"yes"', "null", "{}", "[true]", "abc"),
    "str": ("1", "true", "null", "{}", '["direct"]', '"bogus"', "2.5"),
    "vec": ("{}", '"x"', "5", "[true]", '["a"]', "[[1]]", "[null]", "abc", "true"),
    "table": ("{}", "[1]", '[["a"]]', "[[true]]", '"x"', "[[[1]]]", "5"),
}


def _kind(tp: Any) -> str:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = args[0]
    if tp in (int, float, bool, str):
        return tp.__name__
    inner = typing.get_args(tp)[0]
    return "table" if typing.get_origin(inner) is tuple else "vec"


def _param_cases(base: list[str]) -> list[Case]:
    from softnce_theory.numerics.montecarlo import SCENARIOS

    out = []
    for scen, cls in SCENARIOS.items():
        hints = typing.get_type_hints(cls)
        argv = [base[0], scen, *base[2:]]
        if scen == "supcon":
            argv[argv.index("--k") + 1] = "3"
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            for val in _WRONG[_kind(hints[f.name])]:
                out.append(Case("mc -p", (*argv, "-p", f"{f.name}={val}"), f.name))
        out.append(Case("mc -p", (*argv, "-p", "no_such_param=1"), "no_such_param"))
    for bad in ("noequals", "=1", "1x=2", " =3"):
        out.append(Case("mc -p", (*base, "-p", bad), "--param"))
    out.append(Case("mc -p", (*base, "-p", "sigma=1", "-p", "sigma=2"), "sigma"))
    out.append(Case("mc -p", (*base, "-p", "sigma=" + "[" * 100_000), "sigma"))
    out.append(Case("mc -p", (*base, "-p", "sigma=" + "9" * 5000), "sigma"))
    return out


def build_cases(d: Path) -> list[Case]:
    """Every case; files it needs are created under ``d``."""
    b = _bases(d)
    (d / "file").write_text("not a directory\n")
    (d / "adir").mkdir(exist_ok=True)
    (d / "bad.json").write_text("{not json")
    (d / "nan.json").write_text('{"figure": "soft_limit_gap", "seed": 0, "claims": [], '
                                '"data": {"x": NaN}}')  # fmt: skip
    (d / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (d / "other.json").write_text('{"figure": "em_vs_pgd", "seed": 0, "claims": [], "data": {}}')
    (d / "raises.py").write_text("raise RuntimeError('import-time failure')\n")
    (d / "syntax.py").write_text("def (:\n")
    (d / "notcallable.py").write_text("x = 3\n")
    missing = str(d / "missing" / "x.json")
    under_file = str(d / "file" / "x.json")
    cases: list[tuple[str, list[str], str | None]] = [
        ("global", [], None),
        ("global", ["--no-such-flag"], "--no-such-flag"),
        ("global", ["no-such-command"], "no-such-command"),
        ("global", ["--debug"], None),
    ]
    for cmd, base in b.items():
        cases.append((cmd, [*base, "--no-such-flag"], "--no-such-flag"))
        cases.append((cmd, [*base, "--debug=3"], "--debug"))
    v = b["verify"]
    cases += [("verify", [*v, "--family", "bogus"], "--family")]
    cases += [("verify", [*v, "--dps", x], "--dps") for x in ("abc", "10", "1000000", "", "1e3")]
    cases += [("verify", [*v, "--seed", x], "--seed") for x in ("-1", "abc", "1.5", "9" * 40)]
    cases += [
        ("verify", [*v, "--report", x], "--report") for x in (str(d / "file"), "", under_file)
    ]
    cases += [("verify", [*v, "--claim", "no.such.claim"], "no.such.claim")]
    c = b["claims"]
    cases += [("claims", [*c, "--kind", x], "--kind") for x in ("bogus", "", "Identity")]
    cases += [("claims", [*c, "--family", "bogus"], "--family")]
    p = b["plots"]
    cases += [
        ("plots", [*p, "--format", x], "--format") for x in ("gif", "", ",", "png,png", "png;svg")
    ]
    cases += [("plots", [*p[:1], "no_such_figure", *p[2:]], "no_such_figure")]
    cases += [("plots", [*p, "--out", x], "--out") for x in (str(d / "file"), under_file, "")]
    cases += [("plots", [*p, "--seed", x], "--seed") for x in ("-1", "x")]
    two = [p[0], p[1], "em_vs_pgd", *p[2:]]
    cases += [("plots", [*two, "--from-json", str(d / "bad.json")], "--from-json")]
    for f in ("missing.json", "adir", "bad.json", "nan.json", "deep.json", "other.json", "file"):
        cases.append(("plots", [*p, "--from-json", str(d / f)], "--from-json"))
    cases += [("plots", [*p, "--from-json", ""], "--from-json")]
    a = b["audit"]
    tail = a[2:]
    cases += [("audit", [a[0], x, *tail], None) for x in ("x", ":", "a:b c", "m:1bad", "",
                                                          "no_such_mod:fn")]  # fmt: skip
    for f, what in (("raises.py", "raises.py"), ("syntax.py", "syntax.py"),
                    ("missing.py", "missing.py"), ("adir", None)):  # fmt: skip
        cases.append(("audit", [a[0], f"{d / f}:fn", *tail], what))
    cases += [("audit", [a[0], f"{d / 'notcallable.py'}:x", *tail, "--kw", "a=1"], "callable")]
    cases += [("audit", [*a[:2], "--family", "bogus", *a[4:]], "--family")]
    cases += [("audit", [a[0], a[1], *a[4:]], "--family")]
    cases += [("audit", [*a, "--max-examples", x], "--max-examples") for x in ("0", "-1", "abc")]
    cases += [("audit", [*a, "--kw", x], "--kw") for x in ("=1", "1a=2", "novalue")]
    cases += [("audit", [*a, "--adapter", "bogus"], "--adapter")]
    cases += [("audit", [*a, "--property", "bogus"], "bogus")]
    cases += [("audit", [*a, "--seed", "x"], "--seed")]
    m = b["mc"]
    k_at = m.index("--k") + 1
    for x in ("0", "-1", "1.5", "abc", "", ",", "1e30", "nan", "inf", "1e16", "1,1", "1e12"):
        cases.append(("mc", [*m[:k_at], x, *m[k_at + 1 :]], "--k" if x != "1,1" else None))
    cases += [("mc", [*m[:1], "bogus", *m[2:]], "bogus")]
    cases += [
        ("mc", [*m, "--chunk", x], "--chunk") for x in ("0", "-1", "abc", "1e40", str(2**40), "2")
    ]
    cases += [("mc", [*m, "--max-samples", x], "max_samples") for x in ("1", "0", "-5")]
    cases += [("mc", [*m, "--max-samples", "x"], "--max-samples")]
    cases += [("mc", [*m, "--min-samples", x], "min_samples") for x in ("1", "-3")]
    cases += [("mc", [*m, "--target-ci", x], "target_ci") for x in ("0", "-1", "nan", "inf")]
    cases += [("mc", [*m, "--target-rel", x], "target_rel") for x in ("0", "nan")]
    cases += [("mc", [*m, "--device", x], "device") for x in ("bogus", "cuda:x", "")]
    cases += [("mc", [*m, "--seed", x], "--seed") for x in ("-1", "x", str(2**64))]
    cases += [("mc", [*m, "--resume"], "--resume")]
    cases += [
        ("mc", [*m, "--checkpoint", x], "checkpoint") for x in (str(d / "adir"), under_file, "")
    ]
    cases += [("mc", [*m, "--checkpoint", str(d / "adir"), "--resume"], "adir")]
    cases += [("mc", [*m, "--checkpoint", str(d / "bad.json"), "--resume"], "bad.json")]
    cases += [
        ("mc", [*m, "--output", x], "--output") for x in (missing, str(d / "adir"), under_file, "")
    ]
    n = b["bench"]
    cases += [("bench", [*n, "--json", x], "--json") for x in (missing, str(d / "adir"), "")]
    cases += [("bench", [*n, "--md", x], "--md") for x in (under_file, "")]
    cases += [("bench", [*n, "--device", "tpu"], "--device")]
    out = []
    seen: dict[str, int] = {}
    for group, argv, name in cases:
        i = seen[group] = seen.get(group, -1) + 1
        out.append(Case(group, tuple(argv), name, quick=i % 4 == 0))
    for i, case in enumerate(_param_cases(b["mc"])):
        out.append(dataclasses.replace(case, quick=i % 8 == 0))
    return out


# ----------------------------------------------------------------------------- running


@dataclasses.dataclass
class Outcome:
    case: Case
    rc: int | None
    stderr: str
    escaped: str | None  # an exception that escaped main()

    @property
    def verdict(self) -> str:
        if self.escaped is not None or "Traceback" in self.stderr:
            return "raw traceback"
        if self.rc == 0:
            return "silent acceptance"
        lines = self.stderr.strip().splitlines()
        named = self.case.name is None or (lines and self.case.name in lines[0])
        if self.rc != 2 or len(lines) != 1 or not named:
            return "wrong exit code"
        return "ok"


@contextlib.contextmanager
def _no_benchmark() -> Iterator[None]:
    """``bench`` would run for minutes when a bad value is accepted: a stub that succeeds at
    once stands in for the benchmark script (the CLI layer is what is fuzzed)."""
    from softnce_theory.commands import bench

    class Stub:
        @staticmethod
        def main(argv: list[str]) -> int:
            return 0

    real = bench._load
    bench._load = lambda: Stub  # type: ignore[assignment,return-value]
    try:
        yield
    finally:
        bench._load = real


def run_case(case: Case, cwd: Path) -> Outcome:
    err, out = io.StringIO(), io.StringIO()
    escaped = None
    rc: int | None = None
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), _no_benchmark():
            try:
                rc = main(list(case.argv))
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 2
            except BaseException as exc:  # any escape is what we count
                escaped = f"{type(exc).__name__}: {exc}"
    finally:
        os.chdir(old)
    return Outcome(case, rc, err.getvalue(), escaped)


def summarize(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    counts: dict[str, Any] = {"cases": len(outcomes)}
    for key in ("raw traceback", "silent acceptance", "wrong exit code"):
        counts[key.replace(" ", "_") + "s"] = sum(o.verdict == key for o in outcomes)
    counts["seconds"] = round(seconds, 1)
    counts["failures"] = [
        {
            "argv": list(o.case.argv)[:12],
            "verdict": o.verdict,
            "rc": o.rc,
            "stderr": o.stderr[-400:],
            "escaped": o.escaped,
        }
        for o in outcomes
        if o.verdict != "ok"
    ]
    return counts


def _report(counts: dict[str, Any], name: str, tmp: Path) -> str:
    where = Path(os.environ.get("SOFTNCE_FUZZ_DIR", tmp))
    where.mkdir(parents=True, exist_ok=True)
    (where / f"{name}.json").write_text(json.dumps(counts, indent=1) + "\n")
    return (
        f"{name}: {counts['cases']} cases, {counts['raw_tracebacks']} raw tracebacks, "
        f"{counts['silent_acceptances']} silent acceptances, {counts['wrong_exit_codes']} wrong "
        f"exit codes in {counts['seconds']} s ({where / (name + '.json')})"
    )


def _check(outcomes: list[Outcome]) -> None:
    bad = [o for o in outcomes if o.verdict != "ok"]
    assert not bad, "\n".join(
        f"{o.verdict}: {' '.join(o.case.argv)[:200]} -> rc={o.rc} "
        f"{(o.escaped or o.stderr)[-300:]!r}"
        for o in bad[:20]
    )


def test_cli_fuzz_default_slice(tmp_path: Path) -> None:
    cases = [c for c in build_cases(tmp_path) if c.quick]
    assert len(cases) >= 60
    assert {c.group for c in cases} >= {"global", "verify", "claims", "plots", "audit", "mc",
                                         "bench", "mc -p"}  # fmt: skip
    _check([run_case(c, tmp_path) for c in cases])


@pytest.mark.slow
def test_cli_fuzz_full(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.perf_counter()
    outcomes = [run_case(c, tmp_path) for c in build_cases(tmp_path)]
    counts = summarize(outcomes, time.perf_counter() - t0)
    line = _report(counts, "cli_fuzz", tmp_path)
    with capsys.disabled():
        print("\n" + line)
    _check(outcomes)


def test_fuzz_classifier_can_fail(tmp_path: Path) -> None:
    """The classifier is not vacuous: a good command is a silent acceptance, a raw crash is a
    traceback, a two-line error is a wrong exit code."""
    ok = run_case(Case("t", ("claims", "--kind", "identity"), None), tmp_path)
    assert ok.verdict == "silent acceptance"
    crash = Outcome(Case("t", (), None), None, "", "RuntimeError: x")
    assert crash.verdict == "raw traceback"
    assert Outcome(Case("t", (), "--k"), 2, "a\nb\n", None).verdict == "wrong exit code"
    assert Outcome(Case("t", (), "--k"), 2, "about --chunk\n", None).verdict == "wrong exit code"
    assert Outcome(Case("t", (), "--k"), 1, "about --k\n", None).verdict == "wrong exit code"
