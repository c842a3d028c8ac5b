"""Monte Carlo engine, part 2: reproducibility, checkpoints, SIGKILL/resume, torchrun, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from softnce_theory.cli import main
from softnce_theory.numerics.montecarlo import (
    SCENARIOS,
    CheckpointError,
    Moments,
    make_config,
    run_scenario,
)
from softnce_theory.numerics.montecarlo.engine import _chunk_moments, trials_per_chunk

CPU = torch.device("cpu")
ROOT = Path(__file__).resolve().parents[1]


def _results(run):
    return json.loads(json.dumps(run.to_json()["results"]))


def _small(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "ks": [10, 100],
        "seed": 5,
        "chunk": 8192,
        "max_samples": 3000,
        "device": "cpu",
    }
    base.update(kw)
    return base


# ------------------------------------------------------------------------------------------------
# bit-identical invariances
# ------------------------------------------------------------------------------------------------
def test_chunk_order_does_not_change_the_bits(tmp_path):
    """Chunks computed in any order (here: reversed) and merged in index order give exactly the
    moments the engine stored."""
    cfg = make_config("ranking_nce")
    ck = tmp_path / "c.json"
    run_scenario(cfg, **_small(ks=[100]), checkpoint=ck)
    stored = json.loads(ck.read_text())["state"]["per_k"]["100"]
    t = trials_per_chunk(cfg, 100, 8192, 3000)
    n_chunks = stored["chunks_done"]
    prep = cfg.prepare(100, CPU)
    chunks = {i: _chunk_moments(cfg, prep, 100, 5, t, i, CPU) for i in reversed(range(n_chunks))}
    mom = Moments.empty(len(cfg.output_names()), cfg.n_controls())
    for i in range(n_chunks):
        mom = mom.merge(chunks[i])
    assert mom.to_json() == stored["moments"]


def test_thread_count_does_not_change_the_bits():
    cfg = make_config("soft_target")
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = run_scenario(cfg, **_small(ks=[30], max_samples=400))
        torch.set_num_threads(2)
        two = run_scenario(cfg, **_small(ks=[30], max_samples=400))
    finally:
        torch.set_num_threads(old)
    assert _results(one) == _results(two)


def test_same_seed_same_bits_other_seed_other_bits():
    cfg = make_config("mi_gaussian")
    a = run_scenario(cfg, **_small(ks=[16]))
    b = run_scenario(cfg, **_small(ks=[16]))
    c = run_scenario(cfg, **_small(ks=[16], seed=6))
    assert _results(a) == _results(b) and _results(a) != _results(c)


def test_chunk_size_changes_streams_but_not_the_estimate():
    """Different --chunk values give different random streams (so different bits) but
    statistically equivalent estimates."""
    cfg = make_config("sampled_softmax", sampler="direct")
    a = run_scenario(cfg, **_small(ks=[50], chunk=4096, max_samples=6000)).results[0]
    b = run_scenario(cfg, **_small(ks=[50], chunk=65536, max_samples=6000)).results[0]
    assert a.trials_per_chunk != b.trials_per_chunk
    for oa, ob in zip(a.outputs, b.outputs, strict=True):
        assert oa.estimate != ob.estimate
        assert abs(oa.estimate - ob.estimate) <= 4.5 * np.hypot(oa.se, ob.se)


def test_target_relative_ci_stops_the_run():
    cfg = make_config("ranking_nce", sampler="counts")
    res = run_scenario(cfg, ks=[1000], seed=1, target_rel=0.01, max_samples=10**7, device="cpu")
    r = res.results[0]
    o = r.outputs[0]
    assert r.stop_reason == "target"
    assert o.ci_high - o.estimate <= 0.01 * abs(o.estimate)
    assert r.n < 10**6
    off = run_scenario(cfg, ks=[1000], seed=1, max_samples=3000, cv=False, device="cpu").results[0]
    assert off.stop_reason == "max_samples" and off.outputs[0].variance_reduction is None
    assert off.outputs[0].estimate == off.outputs[0].plain_estimate


# ------------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------------
def test_resume_from_a_finished_checkpoint_gives_identical_numbers(tmp_path):
    cfg = make_config("supcon")
    ck = tmp_path / "s.json"
    first = run_scenario(cfg, **_small(ks=[2, 4], max_samples=600), checkpoint=ck)
    again = run_scenario(cfg, **_small(ks=[2, 4], max_samples=600), checkpoint=ck, resume=True)
    assert _results(first) == _results(again)
    assert again.timing["compute_seconds"] == pytest.approx(first.timing["compute_seconds"])
    # extending the sample budget continues the same chunk sequence
    more = run_scenario(cfg, **_small(ks=[2, 4], max_samples=1200), checkpoint=ck, resume=True)
    fresh = run_scenario(cfg, **_small(ks=[2, 4], max_samples=1200))
    assert _results(more) == _results(fresh)


def test_existing_checkpoint_is_not_overwritten_without_resume(tmp_path):
    cfg = make_config("log_mean_exp")
    ck = tmp_path / "x.json"
    run_scenario(cfg, **_small(ks=[4], max_samples=100), checkpoint=ck)
    with pytest.raises(CheckpointError, match="exists; pass resume"):
        run_scenario(cfg, **_small(ks=[4], max_samples=100), checkpoint=ck)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"seed": 6}, "seed"),
        ({"ks": [4, 8]}, "ks"),
        ({"chunk": 4096}, "chunk"),
        ({"cv": False}, "cv"),
        ({"config": {"sigma": 0.5}}, "config"),
        ({"scenario": "ranking_nce"}, "scenario"),
    ],
)
def test_mismatched_checkpoint_is_refused(tmp_path, change, match):
    ck = tmp_path / "m.json"
    run_scenario(make_config("log_mean_exp"), **_small(ks=[4], max_samples=100), checkpoint=ck)
    before = ck.read_bytes()
    kw = _small(ks=[4], max_samples=100)
    kw.update({k: v for k, v in change.items() if k not in ("config", "scenario")})
    if "scenario" in change:
        cfg = make_config(change["scenario"])
    else:
        cfg = make_config("log_mean_exp", **change.get("config", {}))
    with pytest.raises(CheckpointError, match=f"different run.*{match}"):
        run_scenario(cfg, **kw, checkpoint=ck, resume=True)
    assert ck.read_bytes() == before  # never merged, never rewritten


@pytest.mark.parametrize("damage", ["truncate", "digit", "garbage", "foreign", "version"])
def test_corrupt_checkpoint_is_refused(tmp_path, damage):
    cfg = make_config("log_mean_exp")
    ck = tmp_path / "c.json"
    run_scenario(cfg, **_small(ks=[4], max_samples=100), checkpoint=ck)
    text = ck.read_text()
    if damage == "truncate":
        ck.write_text(text[: len(text) // 2])
        match = "not valid JSON"
    elif damage == "digit":
        doc = json.loads(text)
        packed = doc["state"]["per_k"]["4"]["moments"]["packed"]
        packed[1] = packed[1] * (1 + 1e-9)
        ck.write_text(json.dumps(doc))
        match = "checksum"
    elif damage == "garbage":
        ck.write_bytes(b"\x00\xff" * 50)
        match = "corrupt|cannot read"
    elif damage == "foreign":
        ck.write_text(json.dumps({"hello": 1}))
        match = "not a softnce Monte Carlo checkpoint"
    else:
        doc = json.loads(text)
        doc["format_version"] = 99
        ck.write_text(json.dumps(doc))
        match = "format version"
    with pytest.raises(CheckpointError, match=match):
        run_scenario(cfg, **_small(ks=[4], max_samples=100), checkpoint=ck, resume=True)


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import softnce_theory.numerics.montecarlo.engine as engine
    from softnce_theory.numerics.montecarlo import make_config, run_scenario

    real_save = engine.save_checkpoint

    def slow_save(*args, **kwargs):  # widen the window between rounds so the kill lands mid-run
        real_save(*args, **kwargs)
        time.sleep(0.05)

    engine.save_checkpoint = slow_save
    cfg = make_config("ranking_nce")
    run_scenario(cfg, ks=[10, 300], seed=9, chunk=8192, max_samples=6000, min_samples=64,
                 device="cpu", checkpoint=sys.argv[1], resume=True)
    """
)


def test_sigkill_then_resume_gives_the_uninterrupted_numbers(tmp_path):
    ck = tmp_path / "kill.json"
    script = tmp_path / "job.py"
    script.write_text(_KILL_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(ck)], cwd=ROOT)
    killed_state = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if ck.exists():
                try:
                    state = json.loads(ck.read_text())["state"]["per_k"]
                except (json.JSONDecodeError, KeyError):  # pragma: no cover - rename is atomic
                    state = {}
                if state.get("300", {}).get("chunks_done", 0) > 0:
                    os.kill(proc.pid, signal.SIGKILL)
                    killed_state = state
                    break
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
    assert killed_state is not None, "the job finished before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    cfg = make_config("ranking_nce")
    kw: dict[str, Any] = {
        "ks": [10, 300],
        "seed": 9,
        "chunk": 8192,
        "max_samples": 6000,
        "min_samples": 64,
        "device": "cpu",
    }
    t_per = trials_per_chunk(cfg, 300, 8192, 6000)
    assert killed_state["300"]["chunks_done"] < 6000 // t_per  # really interrupted mid-K
    resumed = run_scenario(cfg, **kw, checkpoint=ck, resume=True)
    straight = run_scenario(cfg, **kw)
    assert _results(resumed) == _results(straight)


# ------------------------------------------------------------------------------------------------
# torch.distributed (gloo, 2 ranks) == 1 process
# ------------------------------------------------------------------------------------------------
def test_two_gloo_ranks_equal_one_process(tmp_path):
    out = tmp_path / "dist.json"
    args = ["mc", "ranking_nce", "--k", "10,300", "--max-samples", "3000", "--chunk", "16384",
            "--seed", "5", "--json", "--output", str(out)]  # fmt: skip
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "softnce_theory.cli", *args]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist_run = json.loads(out.read_text())
    assert dist_run["timing"]["world_size"] == 2
    single = run_scenario(
        make_config("ranking_nce"),
        ks=[10, 300],
        seed=5,
        chunk=16384,
        max_samples=3000,
        device="cpu",
    )
    assert dist_run["results"] == _results(single)


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------
def test_cli_json_smoke(capsys):
    rc = main(["mc", "sampled_softmax", "--k", "5,50", "--max-samples", "500", "--json",
               "-p", "sampler=counts", "--seed", "2"])  # fmt: skip
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    assert data["scenario"] == "sampled_softmax" and [r["k"] for r in data["results"]] == [5, 50]
    out0 = data["results"][0]["outputs"][0]
    assert out0["name"] == "loss_bias" and out0["pred_first"] < 0 and out0["ci"][0] <= out0["ci"][1]
    assert data["config"]["sampler"] == "counts"


def test_cli_table_and_errors(capsys, tmp_path):
    rc = main(["mc", "mi_discrete", "--k", "1,8", "--max-samples", "300", "--no-cv"])
    text = capsys.readouterr().out
    assert rc == 0 and "pred 1st" in text and "i_nce" in text
    assert main(["mc", "ranking_nce", "-p", "sampler=fast", "--max-samples", "50"]) == 2
    assert "sampler" in capsys.readouterr().err
    assert main(["mc", "ranking_nce", "--resume", "--max-samples", "50"]) == 2
    ck = tmp_path / "c.json"
    ck.write_text("{")
    assert (
        main(
            [
                "mc",
                "log_mean_exp",
                "--k",
                "3",
                "--max-samples",
                "50",
                "--checkpoint",
                str(ck),
                "--resume",
            ]
        )
        == 2
    )
    assert "corrupt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["mc", "ranking_nce", "--k", "0"])


def test_family_registry_declares_every_scenario():
    """Each scenario class the engine registers is declared by exactly one family, and each
    declaration resolves to the class of that name."""
    from softnce_theory.commands.mc import scenario_class
    from softnce_theory.registry import registry

    declared = registry().scenarios()
    assert set(SCENARIOS) <= set(declared)
    for name in declared:
        assert scenario_class(name).name == name
    with pytest.raises(ValueError, match="scenario must be one of"):
        scenario_class("no_such_scenario")
