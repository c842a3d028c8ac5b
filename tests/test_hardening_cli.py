"""Regression tests for the CLI / Monte Carlo / plots / audit defects of issue 12 (one test named
after each defect; items 5, 6, 7, 9, the CLI part of 10, and 12). Expected values are written
down here, never computed by the code under test."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from softnce_theory.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SOFTNCE = str(Path(sys.executable).with_name("softnce"))
CHEAP_CLAIM = "sincere.supcon_in_gradient_nonpositive"  # passes its quick legs in ~0.03 s


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``softnce argv`` in-process: (exit code, stdout, stderr); usage errors from argument
    parsing arrive as SystemExit and are returned as their code."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:
        rc = int(exc.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


def one_clean_line(err: str) -> str:
    """The single stderr line of an error exit (no traceback)."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# ============================================================================ item 5: audit


_SHADOWS = {
    "mpmath.py": "import pathlib; pathlib.Path(__file__).with_name('SHADOWED_mpmath').touch()\n",
    "numerics/__init__.py": (
        "import pathlib; pathlib.Path(__file__).parent.with_name('SHADOWED_numerics').touch()\n"
    ),
    "helpers.py": "SCALE = 1.0\n",
    "loss.py": (
        "import helpers  # a sibling import must keep working\n"
        "from softnce_theory.losses.sincere import sincere_loss\n\n"
        "def fn(embeddings, labels, *, temperature=0.1):\n"
        "    return helpers.SCALE * sincere_loss(embeddings, labels, temperature=temperature)\n"
    ),
}


def _plant_shadows(where: Path) -> None:
    for rel, text in _SHADOWS.items():
        (where / rel).parent.mkdir(parents=True, exist_ok=True)
        (where / rel).write_text(text)


def test_audit_sibling_mpmath_and_numerics_do_not_shadow_the_toolkit(tmp_path: Path) -> None:
    """A target file next to a fake ``mpmath.py`` and ``numerics/`` (and run from that
    directory) must be checked against the real oracle: the fakes are never imported."""
    _plant_shadows(tmp_path)
    argv = [SOFTNCE, "audit", "loss.py:fn", "--family", "sincere", "--max-examples", "2",
            "--property", "value_vs_oracle"]  # fmt: skip
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert not (tmp_path / "SHADOWED_mpmath").exists()
    assert not (tmp_path / "SHADOWED_numerics").exists()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "value_vs_oracle" in proc.stdout


def test_audit_loader_appends_user_dir_after_preloading_the_toolkit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In-process: the toolkit is imported while no user directory is on ``sys.path``, and the
    target's directory is appended, not put first."""
    from softnce_theory.testing import loader

    _plant_shadows(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = list(sys.path)
    seen: list[list[str]] = []
    real = loader.preload_toolkit

    def spy() -> None:
        seen.append(list(sys.path))
        real()

    monkeypatch.setattr(loader, "preload_toolkit", spy)
    assert callable(loader.load_target(f"{tmp_path}/loss.py:fn"))
    assert seen == [before]
    assert sys.path[: len(before)] == before and sys.path[-1] == str(tmp_path)
    assert not list(tmp_path.glob("SHADOWED_*"))


# ============================================================================ item 6: plots


@pytest.fixture
def fake_figure(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A cheap figure backed by one real claim; ``render`` fails on ``data["boom"]``."""
    import softnce_theory.plots as plots_pkg
    from softnce_theory.plots import _core

    def compute(quick: bool, seed: int) -> dict[str, Any]:
        return {"x": [0, 1, 2], "y": [1.0, 0.5, 0.25]}

    def render(data: dict[str, Any], mfig: Any) -> None:
        if data.get("boom"):
            raise KeyError("boom")
        mfig.add_subplot(1, 1, 1).plot(data["x"], data["y"])

    fig = _core.Figure("hardening_fake", "fake", (CHEAP_CLAIM,), compute, render, "caption")
    names = (*_core.figure_names(), fig.name)
    monkeypatch.setattr(_core, "figure_names", lambda: names)
    monkeypatch.setattr(plots_pkg, "figure_names", lambda: names)
    monkeypatch.setitem(_core._REGISTRY, fig.name, fig)
    return fig


def _plant_failing_leg(monkeypatch: pytest.MonkeyPatch) -> None:
    from softnce_theory.derivations import LegResult
    from softnce_theory.plots import _core

    real = _core._registries

    class Override:
        def __init__(self, base: Any) -> None:
            self.base = base

        def get(self, claim_id: str) -> Any:
            if claim_id != CHEAP_CLAIM:
                return self.base.get(claim_id)
            return lambda cfg: LegResult(leg="production", outcome="fail", detail="planted")

    monkeypatch.setattr(_core, "_registries", lambda: (real()[0], Override(real()[1])))


def _render_once(out: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, bytes]:
    rc, _, err = cli(capsys, "plots", "hardening_fake", "--out", str(out))
    assert rc == 0, err
    return {p.name: p.read_bytes() for p in out.iterdir()}


def _assert_untouched(out: Path, before: dict[str, bytes]) -> None:
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no temporaries either


def test_plots_from_json_rechecks_claims_instead_of_trusting_the_sidecar(
    fake_figure: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    before = _render_once(tmp_path / "a", capsys)
    side = json.loads(before["hardening_fake.json"])
    assert [c["id"] for c in side["claims"]] == [CHEAP_CLAIM]
    # an empty claim list renders, but the new sidecar holds the freshly checked evidence
    forged = dict(side, claims=[])
    src = tmp_path / "forged.json"
    src.write_text(json.dumps(forged))
    rc, _, err = cli(capsys, "plots", "hardening_fake", "--from-json", str(src), "--out",
                     str(tmp_path / "b"))  # fmt: skip
    assert rc == 0, err
    again = json.loads((tmp_path / "b" / "hardening_fake.json").read_text())
    assert [c["id"] for c in again["claims"]] == [CHEAP_CLAIM]
    assert again["claims"][0]["status"] in ("proved", "checked")
    # fabricated "proved" entries do not help when the engine refutes the backing claim
    src.write_text(json.dumps(dict(side, claims=[{"id": CHEAP_CLAIM, "status": "proved"}])))
    _plant_failing_leg(monkeypatch)
    rc, _, err = cli(capsys, "plots", "hardening_fake", "--from-json", str(src), "--out",
                     str(tmp_path / "c"))  # fmt: skip
    assert rc == 1 and "REFUSED" in err and CHEAP_CLAIM in err
    assert not (tmp_path / "c" / "hardening_fake.png").exists()
    assert src.exists()


def test_plots_nan_in_sidecar_data_leaves_no_fresh_png(
    fake_figure: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "d"
    before = _render_once(out, capsys)
    text = before["hardening_fake.json"].decode().replace('"y": [\n   1.0', '"y": [\n   NaN')
    assert "NaN" in text
    (tmp_path / "nan.json").write_text(text)
    rc, _, err = cli(capsys, "plots", "hardening_fake", "--from-json", str(tmp_path / "nan.json"),
                     "--out", str(out))  # fmt: skip
    assert rc == 2 and "NaN" in one_clean_line(err)
    _assert_untouched(out, before)


def test_plots_from_json_bad_data_keeps_input_sidecar_and_old_png(
    fake_figure: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--from-json d/x.json --out d`` with data that fail to render: nothing is deleted."""
    out = tmp_path / "d"
    before = _render_once(out, capsys)
    side = out / "hardening_fake.json"
    doc = json.loads(side.read_text())
    doc["data"]["boom"] = True
    side.write_text(json.dumps(doc))
    before["hardening_fake.json"] = side.read_bytes()
    rc, _, err = cli(capsys, "plots", "hardening_fake", "--from-json", str(side), "--out", str(out))
    assert rc == 1 and "FAILED" in err and "Traceback" not in err
    _assert_untouched(out, before)


def test_plots_write_is_all_or_nothing_when_a_format_fails(
    fake_figure: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    from softnce_theory.plots import _core

    out = tmp_path / "d"
    rc, _, err = cli(capsys, "plots", "hardening_fake", "--out", str(out), "--format", "png,svg")
    assert rc == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = _core._figure_bytes

    def svg_fails(mfig: Any, fmt: str) -> bytes:
        if fmt == "svg":
            raise RuntimeError("planted svg failure")
        return real(mfig, fmt)

    monkeypatch.setattr(_core, "_figure_bytes", svg_fails)
    rc, _, err = cli(capsys, "plots", "hardening_fake", "--out", str(out), "--format", "png,svg",
                     "--seed", "3")  # fmt: skip
    assert rc == 1 and "planted svg failure" in err
    _assert_untouched(out, before)


# ============================================================================ item 7: mc


def _mc(*extra: str) -> list[str]:
    return ["mc", "log_mean_exp", "--k", "3", "--max-samples", "8", "--min-samples", "4", *extra]


def test_mc_output_directory_is_checked_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import softnce_theory.numerics.montecarlo as mc

    def never(*a: Any, **k: Any) -> None:
        raise AssertionError("the run started although --output cannot be written")

    monkeypatch.setattr(mc, "run_scenario", never)
    for bad in (tmp_path / "nodir" / "x.json", tmp_path):
        rc, _, err = cli(capsys, *_mc("--output", str(bad)))
        assert rc == 2 and "--output" in one_clean_line(err)


def test_mc_unwritable_checkpoint_dir_gives_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "file").write_text("")
    rc, _, err = cli(capsys, *_mc("--checkpoint", str(tmp_path / "file" / "ck.json")))
    assert rc == 2 and "checkpoint" in one_clean_line(err)
    # a read-only directory (simulated: as root, chmod does not stop writes)
    import tempfile

    def denied(*a: Any, **k: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    ck = tmp_path / "ro" / "ck.json"
    rc, _, err = cli(capsys, *_mc("--checkpoint", str(ck)))
    line = one_clean_line(err)
    assert rc == 2 and str(ck) in line and "Permission denied" in line


def _limit_file_size() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))


def test_mc_file_size_limit_gives_one_line_error(tmp_path: Path) -> None:
    ck = tmp_path / "ck.json"
    proc = subprocess.run(
        [SOFTNCE, *_mc("--checkpoint", str(ck))],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    line = one_clean_line(proc.stderr)
    assert proc.returncode == 3, proc.stderr
    assert str(ck) in line and "File too large" in line
    assert not list(tmp_path.glob(".*.tmp"))


def test_mc_k_1e12_is_refused_up_front(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "mc", "log_mean_exp", "--k", "1e12")
    assert rc == 2 and "--k" in one_clean_line(err)
    # the counts sampler is O(C) per trial: K = 1e12 is fine there
    rc, out, err = cli(capsys, "mc", "ranking_nce", "--k", "1e12", "-p", "sampler=counts",
                       "--max-samples", "8", "--min-samples", "4", "--json")  # fmt: skip
    assert rc == 0, err
    assert json.loads(out)["results"][0]["k"] == 10**12


def test_mc_k_1e30_is_a_usage_error_not_a_typeerror(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "mc", "ranking_nce", "--k", "1e30")
    line = one_clean_line(err)
    assert rc == 2 and "--k" in line and "TypeError" not in line


def test_mc_chunk_bounds_memory_for_any_k() -> None:
    from softnce_theory.numerics.montecarlo import make_config, run_scenario

    cfg = make_config("log_mean_exp")  # trial_cost(K) = K + 3 elements
    with pytest.raises(ValueError, match="--chunk"):
        run_scenario(cfg, ks=[5000], chunk=4096, max_samples=8, min_samples=4, device="cpu")
    run = run_scenario(cfg, ks=[2045], chunk=4096, max_samples=8, min_samples=4, device="cpu")
    assert run.results[0].trials_per_chunk == 2  # 2 x 2048 elements = the bound


def test_mc_max_k_is_the_engines() -> None:
    from softnce_theory.commands import mc
    from softnce_theory.numerics.montecarlo import engine

    assert mc.MAX_K == engine.MAX_K == 10**15


def test_mc_stale_tmp_files_are_cleaned_on_resume(tmp_path: Path) -> None:
    from softnce_theory.numerics.montecarlo import make_config, run_scenario

    ck = tmp_path / "ck.json"
    stale = [tmp_path / ".ck.json.abc123.tmp", tmp_path / ".ck.json.zz9.tmp"]
    other = tmp_path / ".other.json.abc.tmp"
    for p in (*stale, other):
        p.write_text("{partial")
    kw: dict[str, Any] = {"ks": [3], "max_samples": 8, "min_samples": 4, "device": "cpu"}
    run_scenario(make_config("log_mean_exp"), checkpoint=ck, resume=True, **kw)
    assert not any(p.exists() for p in stale)
    assert other.exists()  # another file's temporaries are not ours to remove
    assert ck.exists()


def _checkpoint(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    from softnce_theory.numerics.montecarlo import make_config, run_scenario

    ck = tmp_path / "ck.json"
    kw: dict[str, Any] = {"ks": [3], "max_samples": 8, "min_samples": 4, "device": "cpu"}
    run_scenario(make_config("log_mean_exp"), checkpoint=ck, **kw)
    return ck, kw


def test_mc_deeply_nested_checkpoint_is_refused_naming_it(tmp_path: Path) -> None:
    from softnce_theory.numerics.montecarlo import CheckpointError, make_config, run_scenario

    ck, kw = _checkpoint(tmp_path)
    depth = 200_000
    ck.write_text('{"format": "softnce-mc-checkpoint", "x": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(CheckpointError, match="nested too deeply") as exc:
        run_scenario(make_config("log_mean_exp"), checkpoint=ck, resume=True, **kw)
    assert str(ck) in str(exc.value)


def _resign(doc: dict[str, Any]) -> str:
    """A deliberate edit: recompute the checksum as an attacker could."""
    import hashlib

    body = {k: doc[k] for k in ("format", "format_version", "identity", "settings", "state")}
    canon = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return json.dumps(dict(doc, sha256=hashlib.sha256(canon.encode()).hexdigest()))


@pytest.mark.parametrize(
    ("field", "value"),
    [("chunks_done", "7"), ("chunks_done", True), ("seconds", "slow"), ("moments", {"d": 1})],
)
def test_mc_bad_checkpoint_field_is_refused_naming_the_checkpoint(
    tmp_path: Path, field: str, value: Any
) -> None:
    from softnce_theory.numerics.montecarlo import CheckpointError, make_config, run_scenario

    ck, kw = _checkpoint(tmp_path)
    doc = json.loads(ck.read_text())
    doc["state"]["per_k"]["3"][field] = value
    ck.write_text(_resign(doc))
    with pytest.raises(CheckpointError, match=field) as exc:
        run_scenario(make_config("log_mean_exp"), checkpoint=ck, resume=True, **kw)
    assert str(ck) in str(exc.value)


def test_mc_checkpoint_checksum_policy_is_documented() -> None:
    text = (ROOT / "docs" / "montecarlo.md").read_text()
    assert "does **not** detect deliberate edits" in text


# ============================================================================ item 9: exit codes


def test_uncaught_error_is_exit_4_one_line_and_debug_shows_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from softnce_theory.commands import claims

    def boom(args: Any) -> int:
        raise RuntimeError("planted\nbug")

    monkeypatch.setattr(claims, "run", boom)
    rc, _, err = cli(capsys, "claims")
    line = one_clean_line(err)
    assert rc == 4 and "RuntimeError: planted bug" in line and "--debug" in line
    rc, _, err = cli(capsys, "claims", "--debug")
    assert rc == 4 and "Traceback" in err and "planted" in err
    rc, _, err = cli(capsys, "--debug", "claims")
    assert rc == 4 and "Traceback" in err


def test_keyboard_interrupt_is_exit_130_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from softnce_theory.commands import claims

    def interrupted(args: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(claims, "run", interrupted)
    rc, _, err = cli(capsys, "claims")
    assert rc == 130 and one_clean_line(err) == "softnce claims: interrupted"


def test_verify_report_on_an_existing_file_is_usage_error_not_refuted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "report"
    f.write_text("mine")
    rc, _, err = cli(capsys, "verify", "--report", str(f), "--claim", CHEAP_CLAIM)
    assert rc == 2 and "--report" in one_clean_line(err)
    assert f.read_text() == "mine"


def test_io_error_is_exit_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from softnce_theory.commands import claims

    def full(args: Any) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(claims, "run", full)
    rc, _, err = cli(capsys, "claims")
    assert rc == 3 and "No space left" in one_clean_line(err)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_documents_its_exit_codes_in_help(command: str) -> None:
    import argparse

    sub = next(
        a.choices[command]
        for a in build_parser()._actions
        if isinstance(a, argparse._SubParsersAction)
    )
    text = " ".join(sub.format_help().split())
    for code in ("0 success", "2 usage or input error", "3 I/O", "4 internal error", "130"):
        assert code in text, (command, code)
    assert "--debug" in text


def test_cli_doc_has_the_exit_code_table() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for row in ("| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 4 |", "| 130 |"):
        assert row in text


# ============================================================================ item 10 (CLI part)


def test_claims_kind_bogus_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = cli(capsys, "claims", "--kind", "bogus")
    assert rc == 2 and "--kind" in one_clean_line(err) and out == ""


def test_mc_param_dim_true_is_refused_not_taken_as_1(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "mc", "mi_gaussian", "-p", "dim=true", "--k", "2")
    line = one_clean_line(err)
    assert rc == 2 and "'dim'" in line and "integer" in line


@pytest.mark.parametrize(
    ("scenario", "param"),
    [
        ("mi_gaussian", 'dim="x"'),
        ("mi_gaussian", "rho=null"),
        ("mi_discrete", 'joint="x"'),
        ("ranking_nce", 'noise=["a"]'),
        ("ranking_nce", "logits=[1]"),
        ("log_mean_exp", "sigma=[1]"),
        ("ranking_nce", 'log_q_correction="yes"'),
    ],
)
def test_mc_param_errors_name_the_parameter(
    scenario: str, param: str, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = cli(capsys, "mc", scenario, "-p", param, "--k", "2")
    assert rc == 2 and param.split("=")[0] in one_clean_line(err)


def test_mc_param_logits_dict_is_a_clean_error(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = cli(capsys, "mc", "ranking_nce", "-p", "logits={}", "--k", "2")
    line = one_clean_line(err)
    assert rc == 2 and "'logits'" in line and "list of numbers" in line


# ============================================================================ item 12: bench
