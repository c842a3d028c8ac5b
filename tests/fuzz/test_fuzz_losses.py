"""Standing loss fuzz (issue 12): valid-input robustness and a bad-input matrix over every
public loss. How cases are generated and judged: ``_loss_cases.py`` (module docstring) and
``docs/robustness.md``.

* The default test command runs a deterministic slice: one sweep of every
  (loss, dtype, layout) combination, every 4th bad input and every 4th numpy-scalar case.
* ``-m slow`` runs the full fuzz (``SOFTNCE_FUZZ_ROUNDS`` sweeps, default 40, and the full
  bad-input matrix for 3 seeds), prints one summary line and writes the counts as JSON to
  ``$SOFTNCE_FUZZ_REPORT`` (default: ``fuzz_losses.json`` in pytest's tmp dir).
* The judge itself is tested on deliberately broken losses, so the suite can fail.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import _loss_cases as lc
import pytest
import torch
import torch.nn.functional as F

SEED = 12
SWEEP = len(lc.SPECS) * len(lc.DTYPES) * len(lc.LAYOUTS)


def _show(failures: list[str]) -> str:
    return f"{len(failures)} failures, first ones:\n" + "\n".join(failures[:15])


def test_every_public_loss_has_a_fuzz_case():
    assert lc.uncovered() == []
    public = set(lc.public_names())
    for spec in lc.SPECS.values():
        assert spec.name.split("[")[0] in public, spec.name
    assert set(lc.EXEMPT) <= public


def test_valid_inputs_slice():
    counts = lc.Counts()
    for case in lc.iter_valid(SEED, SWEEP):
        lc.run_valid(case, counts)
    assert counts.cases == SWEEP
    assert counts.failures == [], _show(counts.failures)
    assert counts.ok >= 0.8 * counts.cases  # the generators mostly stay in range


def test_bad_inputs_slice():
    counts = lc.BadCounts()
    for bad in lc.bad_cases(SEED)[::4]:
        lc.run_bad(bad, counts)
    for ok in lc.numpy_cases(SEED)[::4]:
        lc.run_numpy(ok, counts)
    assert counts.cases > 300 and counts.numpy_cases > 30
    assert counts.failures == [], _show(counts.failures)


# ----------------------------------------------------------------------------- the judge


def _fake(fn: Any, build: Any, **kw: Any) -> lc.Spec:
    return lc.Spec("fake", fn, build, {"x": "float", "temperature": "tau"}, "x", **kw)


def _x(g: lc.Gen) -> lc.Built:
    return {"x": lc.T(g.cast(g.rng.standard_normal((3, 4))), True)}, {"temperature": 0.1}


def _run(spec: lc.Spec, dtype: torch.dtype = torch.float16, build: Any = None) -> str:
    case = lc.valid_case(spec, 0, 0, dtype, "contiguous")
    return lc.run_valid(case, lc.Counts())


def test_judge_counts_nan_on_valid_input():
    spec = _fake(lambda x, temperature: (x * math.nan).sum(), _x)
    assert _run(spec) == "nonfinite"


def test_judge_counts_spurious_overflow_but_excuses_true_overflow():
    # float16: x * 1e6 truly exceeds 65504; (x * 1e6) / 1e6 does not, but overflows inside
    true = _fake(lambda x, temperature: (x * 1e6).sum(), _x)
    spurious = _fake(lambda x, temperature: ((x * 1e6) / 1e6).sum(), _x)
    assert _run(true) == "true_overflow"
    assert _run(spurious) == "nonfinite"
    assert _run(true, torch.float64) == "ok"


def test_judge_counts_raw_exceptions_and_false_rejections():
    def raw(x: torch.Tensor, temperature: float) -> torch.Tensor:
        raise RuntimeError("boom")

    def reject(x: torch.Tensor, temperature: float) -> torch.Tensor:
        raise ValueError("x must be nice")

    assert _run(_fake(raw, _x)) == "raw_exceptions"
    assert _run(_fake(reject, _x)) == "false_rejections"


def test_judge_catches_the_f_normalize_overflow():
    """The value check finds defect 4 (``F.normalize`` squares the norm) in float32."""

    def cos_loss(x: torch.Tensor, temperature: float) -> torch.Tensor:
        u = F.normalize(x.to(torch.promote_types(x.dtype, torch.float32)), dim=-1)
        s = u @ u.T / temperature
        return (torch.logsumexp(s, 1) - torch.diagonal(s)).mean().to(x.dtype)

    def huge(g: lc.Gen) -> lc.Built:
        return {"x": lc.T(g.cast(g.rng.standard_normal((3, 4)) * 1e25))}, {"temperature": 0.1}

    spec = _fake(cos_loss, huge, value_scale=lc.vs_cosine)
    assert _run(spec, torch.float32) == "inaccurate"


def test_bad_input_judge():
    base = {"x": torch.ones(2, 2)}

    def silent(x: Any, temperature: Any) -> torch.Tensor:
        return torch.zeros(())

    def raw(x: Any, temperature: Any) -> torch.Tensor:
        raise TypeError("unsupported")

    def unnamed(x: Any, temperature: Any) -> torch.Tensor:
        raise ValueError("bad value")

    def named(x: Any, temperature: Any) -> torch.Tensor:
        raise ValueError("temperature must be finite and > 0, got 0")

    want = {
        silent: "silent_acceptances",
        raw: "raw_exceptions",
        unnamed: "unnamed_value_errors",
        named: "named_value_errors",
    }
    for fn, verdict in want.items():
        case = lc.BadCase(_fake(fn, _x), "temperature", "0", base, {"temperature": 0.0})
        assert lc.run_bad(case, lc.BadCounts()) == verdict


@pytest.mark.parametrize(
    ("msg", "arg", "named"),
    [
        ("query must be 2-D", "query", True),
        ("negative_keys must be 2-D", "key", False),
        ("b must have the same dtype as a", "b", True),
        ("b must have the same dtype as a", "a", True),
        ("labels must be a torch.Tensor, got list", "a", False),
        ("tile must be None or an integer >= 0", "tile", True),
    ],
)
def test_names_arg_matches_whole_words(msg, arg, named):
    assert lc.names_arg(msg, arg) is named


# ----------------------------------------------------------------------------- the full run


@pytest.mark.slow
def test_full_fuzz_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    report: dict[str, Any]
    sweeps = int(os.environ.get("SOFTNCE_FUZZ_ROUNDS", "40"))
    report = lc.run_all(SEED, sweeps, bad_seeds=(SEED, SEED + 1, SEED + 2))
    seconds = report["seconds"]
    path = Path(os.environ.get("SOFTNCE_FUZZ_REPORT") or tmp_path / "fuzz_losses.json")
    path.write_text(json.dumps(report, indent=2))
    v, b = report["valid"], report["bad"]
    with capsys.disabled():
        print(
            f"\n[loss fuzz] valid: {v['cases']} cases, {v['nonfinite']} NaN/Inf "
            f"({v['true_overflow']} true overflows, {v['ill_conditioned']} rounding-amplified "
            f"excepted), {v['inaccurate']} wrong values, {v['raw_exceptions']} raw exceptions, "
            f"{v['false_rejections']} false rejections | bad: {b['cases']} cases, "
            f"{b['named_value_errors']} ValueError naming the argument, "
            f"{b['unnamed_value_errors']} unnamed, {b['raw_exceptions']} raw exceptions, "
            f"{b['silent_acceptances']} silent acceptances | numpy scalars: {b['numpy_cases']} "
            f"cases, {b['numpy_rejected']} rejected | {seconds} s -> {path}"
        )
    assert report["failures"] == [], _show(report["failures"])
