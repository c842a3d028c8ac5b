"""``softnce audit``: target loading, exit codes, output, adapters and peer audits."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from softnce_theory.cli import main
from softnce_theory.testing import adapters as A
from tests.mutants import toy_family as TOY

HERE = Path(__file__).resolve().parent
MUTANTS = HERE / "mutants" / "losses.py"
HOBBIT = HERE / "mutants" / "hobbitlong_style.py"

has_pml = importlib.util.find_spec("pytorch_metric_learning") is not None
has_info_nce = importlib.util.find_spec("info_nce") is not None


def status(out: str, prop: str) -> str:
    """The result column of ``prop``'s line in the audit table."""
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == prop:
            return parts[2]
    raise AssertionError(f"no table line for {prop}:\n{out}")


def run(capsys, *argv):
    rc = main(["audit", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_production_loss_passes(capsys):
    rc, out, _ = run(
        capsys,
        "softnce_theory.losses.sincere:sincere_loss",
        "--family",
        "sincere",
        "--max-examples",
        "4",
    )
    assert rc == 0
    assert "13/13 properties pass" in out and "value_vs_oracle" in out and "low_precision" in out
    assert status(out, "declared_domain") == "PASS"


def test_file_path_target_failure_shows_counterexample(capsys):
    rc, out, _ = run(
        capsys,
        f"{MUTANTS}:sincere_positives_in_denominator",
        "--family",
        "sincere",
        "--max-examples",
        "10",
        "--property",
        "value_vs_oracle",
        "--property",
        "single_class_batch",
    )
    assert rc == 1
    assert "FAIL value_vs_oracle" in out and "FAIL single_class_batch" in out
    assert "minimal counterexample" in out and "labels = " in out and "discrepancy: value" in out


def test_json_output(capsys):
    rc, out, _ = run(
        capsys,
        f"{MUTANTS}:soft_ce_detached_normaliser",
        "--family",
        "soft_ce",
        "--max-examples",
        "10",
        "--property",
        "gradient_vs_closed_form",
        "--json",
    )
    assert rc == 1
    data = json.loads(out)
    assert data["schema"] == "softnce-theory/audit/1" and data["mode"] == "properties"
    assert data["passed"] is False and data["family"] == "soft_ce" and data["tier"] == "all"
    assert data["tiers"]["correctness"]["failed"] == ["gradient_vs_closed_form"]
    (r,) = data["results"]
    assert r["status"] == "fail" and r["tier"] == "correctness"
    assert isinstance(r["counterexample"]["logits"], list)
    d = r["discrepancy"]
    assert "gradient" in d["message"] and d["kind"] == "gradient" and d["measure"] == "normwise"
    assert d["error"] > d["tolerance"] > 0 and d["where"]["input"] == "logits"
    got, want = np.asarray(d["got"]), np.asarray(d["want"])
    assert got.shape == want.shape == np.asarray(r["counterexample"]["logits"]).shape
    assert d["error"] == pytest.approx(np.linalg.norm(got - want), rel=1e-12)
    assert d["max_abs_error"] == pytest.approx(np.abs(got - want).max(), rel=1e-12)


def test_kw_binds_keyword_arguments(capsys):
    rc, out, _ = run(
        capsys,
        "softnce_theory.losses.sincere:supcon_loss",
        "--family",
        "supcon_in",
        "--kw",
        "variant=in",
        "--max-examples",
        "4",
        "--property",
        "value_vs_oracle",
    )
    assert rc == 0 and "variant='in'" in out


@pytest.mark.parametrize(
    "target,message",
    [
        ("no_colon_here", "MODULE:CALLABLE"),
        ("os:system('touch x')", "dotted Python identifier"),
        ("__import__('os').system('x'):f", "dotted Python module name"),
        ("softnce_theory.no_such_module:f", "cannot import module"),
        ("softnce_theory.losses.sincere:no_such_fn", "has no attribute"),
        ("does/not/exist.py:f", "no such file"),
    ],
)
def test_bad_targets_exit_2(capsys, target, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(capsys, target, "--family", "sincere")
    assert rc == 2 and message in err
    assert not (tmp_path / "x").exists()  # nothing from the command line was executed


def test_usage_errors_exit_2(capsys):
    assert run(capsys, "softnce_theory.losses.sincere:sincere_loss")[0] == 2  # no --family
    rc, _, err = run(
        capsys,
        "softnce_theory.losses.sincere:sincere_loss",
        "--family",
        "sincere",
        "--max-examples",
        "0",
    )
    assert rc == 2 and "max-examples" in err
    rc, _, err = run(
        capsys, "torch.nn.functional:cross_entropy", "--family", "sincere", "--adapter", "torch-ce"
    )
    assert rc == 2 and "maps onto" in err


def test_missing_peer_package_gives_clear_message(capsys, monkeypatch):
    fake = A.Adapter("pml", ("sincere",), "no_such_peer_package_xyz", "no-such-peer", "x", A._pml)
    monkeypatch.setitem(A.ADAPTERS, "pml", fake)
    rc, _, err = run(
        capsys,
        "softnce_theory.losses.sincere:sincere_loss",
        "--family",
        "sincere",
        "--adapter",
        "pml",
    )
    assert rc == 2
    assert "needs the optional package 'no-such-peer'" in err and "pip install" in err


def test_list(capsys):
    from softnce_theory.registry import registry

    rc, out, _ = run(capsys, "--list")
    assert rc == 0
    for name in registry().contracts():
        assert f"\n{name}: fn(" in "\n" + out
    assert "\n  hobbitlong (supcon_out)" in out
    assert "- masked_logit [edge, robustness]" in out
    assert "- value_vs_oracle [oracle, correctness]" in out


# ----------------------------------------------------------------------------- tiers

#: soft-target CE as torch's documentation suggests: F.cross_entropy with probability targets,
#: and the hand-written log_softmax form
TORCH_DOCS_SOFT_CE = """
import torch.nn.functional as F


def soft_ce(logits, targets):
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
"""


@pytest.mark.parametrize("form", ["torch-ce", "log_softmax"])
def test_correct_soft_ce_fails_only_the_inf_logit_policy(capsys, tmp_path, form):
    if form == "torch-ce":
        target = ["torch.nn.functional:cross_entropy", "--adapter", "torch-ce"]
    else:
        (tmp_path / "docs_soft_ce.py").write_text(TORCH_DOCS_SOFT_CE)
        target = [f"{tmp_path / 'docs_soft_ce.py'}:soft_ce"]
    argv = [*target, "--family", "soft_ce", "--max-examples", "6"]
    rc, out, _ = run(capsys, *argv, "--tier", "correctness")
    assert rc == 0, out
    assert "FAIL masked_logit [robustness]" in out and "value nan is not finite" in out
    assert "verdict (--tier correctness): PASS" in out
    # the finding is listed in the robustness section, every correctness property passes
    correctness, robustness = out.split("[robustness policy", 1)
    assert "masked_logit" not in correctness.split("[correctness", 1)[1]
    assert status(robustness, "masked_logit") == "FAIL"
    for line in correctness.split("[correctness", 1)[1].splitlines()[1:]:
        assert line.split()[2] == "PASS", line
    rc, out, _ = run(capsys, *argv)  # --tier all (the default)
    assert rc == 1 and "verdict (--tier all): FAIL" in out
    rc, out, _ = run(capsys, *argv, "--tier", "correctness", "--json")
    data = json.loads(out)
    assert rc == 0 and data["passed"] is True and data["tier"] == "correctness"
    assert data["tiers"]["correctness"] == {
        "passed": True,
        "fails_run": True,
        "properties": 8,
        "failed": [],
    }
    assert data["tiers"]["robustness"]["failed"] == ["masked_logit"]
    assert data["tiers"]["robustness"]["fails_run"] is False


def test_correctness_failure_fails_every_tier(capsys):
    argv = [f"{MUTANTS}:soft_ce_sum_reduction", "--family", "soft_ce", "--max-examples", "5"]
    for tier in ("correctness", "all"):
        rc, out, _ = run(capsys, *argv, "--property", "value_vs_oracle", "--tier", tier)
        assert rc == 1 and "FAIL value_vs_oracle [correctness]" in out


def test_bad_tier_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        run(capsys, "softnce_theory.losses.sincere:sincere_loss", "--family", "sincere",
            "--tier", "robustness")  # fmt: skip
    assert exc.value.code == 2


# ----------------------------------------------------------------------------- plugin families


@pytest.fixture
def fresh_registry():
    yield from TOY.scoped_registry()


def test_plugin_family_generic_contract(capsys, fresh_registry):
    plugin = ["--plugin", "tests.mutants.toy_family"]
    rc, out, _ = run(capsys, *plugin, "--family", "toy_infonce", "--max-examples", "8")
    assert rc == 0, out
    assert "toy_infonce (the family's own torch_fn) as toy_infonce" in out
    assert "oracle generated from the definition: not independent" in out
    rc, out, _ = run(capsys, *plugin, "--family", "toy_infonce_oracle", "--max-examples", "8")
    assert rc == 0 and "not independent" not in out
    rc, out, _ = run(
        capsys,
        "tests.mutants.toy_family:toy_missing_t",
        *plugin,
        "--family",
        "toy_infonce",
        "--max-examples",
        "8",
        "--json",
    )
    data = json.loads(out)
    assert rc == 1 and data["reference_independent"] is False
    assert data["results"][0]["name"] == "value_vs_oracle"
    assert data["results"][0]["status"] == "fail"
    rc, out, _ = run(capsys, *plugin, "--list")
    assert rc == 0 and "toy_infonce: fn(x: Tensor[B, K], t: float) -> Tensor[B]" in out


def test_unknown_family_lists_plugin_families(capsys, fresh_registry):
    rc, _, err = run(capsys, "--plugin", "tests.mutants.toy_family", "--family", "bogus")
    assert rc == 2 and "--family must be one of" in err and "toy_infonce" in err
    rc, _, err = run(capsys, "--family", "soft_ce")  # a built-in contract needs a target
    assert rc == 2 and "target MODULE:CALLABLE is required" in err
    rc, _, err = run(capsys, "--plugin", "no_such_plugin_module_xyz", "--family", "soft_ce")
    assert rc == 2 and "--plugin" in err


def test_help_imports_neither_torch_nor_hypothesis():
    import subprocess
    import sys

    code = (
        "import sys, contextlib, io\n"
        "from softnce_theory.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try: main(['audit', '--help'])\n"
        "    except SystemExit: pass\n"
        "assert '--tier' in out.getvalue() and 'soft_ce' in out.getvalue()\n"
        "print([m for m in ('torch', 'hypothesis', 'sympy', 'mpmath', 'numpy') if m in sys.modules])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_file_with_sibling_import(tmp_path, capsys):
    (tmp_path / "helper_for_audit.py").write_text(
        "import torch\ndef lse(x):\n    return torch.logsumexp(x, -1)\n"
    )
    (tmp_path / "myloss.py").write_text(
        "from helper_for_audit import lse\n"
        "def soft_ce(logits, targets):\n"
        "    return (-(targets * (logits - lse(logits)[:, None])).sum(-1)).mean()\n"
    )
    rc, out, _ = run(
        capsys,
        f"{tmp_path / 'myloss.py'}:soft_ce",
        "--family",
        "soft_ce",
        "--max-examples",
        "5",
        "--property",
        "value_vs_oracle",
        "--property",
        "gradient_vs_closed_form",
    )
    assert rc == 0, out


# ----------------------------------------------------------------------------- peers


@pytest.mark.skipif(not has_pml, reason="pytorch-metric-learning not installed")
def test_pml_supcon_known_difference_single_class(capsys):
    rc, out, _ = run(
        capsys,
        "pytorch_metric_learning.losses:SupConLoss",
        "--family",
        "supcon_out",
        "--adapter",
        "pml",
        "--max-examples",
        "10",
        "--property",
        "value_vs_oracle",
        "--property",
        "singleton_anchors",
        "--property",
        "single_class_batch",
    )
    assert rc == 1
    assert status(out, "value_vs_oracle") == "PASS"
    assert status(out, "singleton_anchors") == "PASS"
    # no negatives: PML returns 0, L_out does not vanish
    assert "FAIL single_class_batch" in out and "value 0 vs oracle" in out


@pytest.mark.skipif(not has_pml, reason="pytorch-metric-learning not installed")
def test_pml_ntxent_per_anchor_is_sincere(capsys):
    rc, out, _ = run(
        capsys,
        "pytorch_metric_learning.losses:NTXentLoss",
        "--family",
        "sincere",
        "--adapter",
        "pml-per-anchor",
        "--max-examples",
        "10",
        "--property",
        "value_vs_oracle",
        "--property",
        "gradient_vs_closed_form",
        "--property",
        "singleton_anchors",
    )
    assert rc == 0, out


@pytest.mark.skipif(not has_pml, reason="pytorch-metric-learning not installed")
def test_pml_ntxent_default_reducer_averages_pairs(capsys):
    rc, out, _ = run(
        capsys,
        "pytorch_metric_learning.losses:NTXentLoss",
        "--family",
        "sincere",
        "--adapter",
        "pml",
        "--max-examples",
        "20",
        "--property",
        "identical_embeddings",
    )
    assert rc == 1 and "FAIL identical_embeddings" in out


@pytest.mark.skipif(not has_info_nce, reason="info-nce-pytorch not installed")
def test_info_nce_agrees(capsys):
    rc, out, _ = run(
        capsys,
        "info_nce:info_nce",
        "--family",
        "infonce",
        "--adapter",
        "info-nce",
        "--max-examples",
        "6",
    )
    assert rc == 0, out


def test_torch_cross_entropy_nan_on_masked_logit(capsys):
    rc, out, _ = run(
        capsys,
        "torch.nn.functional:cross_entropy",
        "--family",
        "soft_ce",
        "--adapter",
        "torch-ce",
        "--max-examples",
        "6",
        "--property",
        "value_vs_oracle",
        "--property",
        "masked_logit",
    )
    assert rc == 1
    assert status(out, "value_vs_oracle") == "PASS"
    assert "FAIL masked_logit" in out and "value nan is not finite" in out


def test_torch_label_smoothing_agrees(capsys):
    rc, out, _ = run(
        capsys,
        "torch.nn.functional:cross_entropy",
        "--family",
        "label_smoothing",
        "--adapter",
        "torch-label-smoothing",
        "--max-examples",
        "6",
    )
    assert rc == 0, out


def test_hobbitlong_style_adapter(capsys):
    rc, out, _ = run(
        capsys,
        f"{HOBBIT}:SupConLoss",
        "--family",
        "supcon_out",
        "--adapter",
        "hobbitlong",
        "--max-examples",
        "10",
        "--property",
        "instance_labels",
        "--property",
        "singleton_anchors",
    )
    # tau/base_tau is undone by the adapter (instance labels agree); anchors without positives
    # count as 0 in HobbitLong's mean
    assert rc == 1
    assert status(out, "instance_labels") == "PASS" and "FAIL singleton_anchors" in out


@pytest.mark.slow
@pytest.mark.parametrize(
    "target,family,adapter",
    [
        ("pytorch_metric_learning.losses:SupConLoss", "supcon_out", "pml"),
        ("pytorch_metric_learning.losses:SupConLoss", "supcon_out", "pml-per-anchor"),
        ("pytorch_metric_learning.losses:NTXentLoss", "sincere", "pml"),
        ("pytorch_metric_learning.losses:NTXentLoss", "sincere", "pml-per-anchor"),
        ("info_nce:info_nce", "infonce", "info-nce"),
        ("torch.nn.functional:cross_entropy", "soft_ce", "torch-ce"),
        ("torch.nn.functional:cross_entropy", "label_smoothing", "torch-label-smoothing"),
        (f"{HOBBIT}:SupConLoss", "supcon_out", "hobbitlong"),
    ],
)
def test_peer_audits_complete(capsys, target, family, adapter):
    """The full default peer audit runs to completion (the table in docs/audit.md)."""
    if "pytorch_metric_learning" in target and not has_pml:
        pytest.skip("pytorch-metric-learning not installed")
    if "info_nce" in target and not has_info_nce:
        pytest.skip("info-nce-pytorch not installed")
    rc, out, _ = run(capsys, target, "--family", family, "--adapter", adapter)
    assert rc in (0, 1) and "properties pass" in out
