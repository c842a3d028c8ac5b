"""``softnce plots``: every figure renders, its sidecar matches the closed forms (recomputed here
independently), gating refuses figures whose backing claims fail, training and rendering are
deterministic, and ``--from-json`` re-renders byte-identical output."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from softnce_theory.cli import main
from softnce_theory.derivations import LegResult
from softnce_theory.plots import GateError, _core, figure_names, get_figure, make

FIGURES = figure_names()

Z95 = 1.959963984540054
MAX_PNG_BYTES = 200_000


# ----------------------------------------------------------------------------- shared rendering


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every figure once, quick mode, png, with one shared claim cache (the expensive part)."""
    out = tmp_path_factory.mktemp("figures")
    cache: dict[str, Any] = {}
    paths = {
        name: make(name, out, ("png",), quick=True, seed=0, results_cache=cache) for name in FIGURES
    }
    sidecars = {name: json.loads((out / f"{name}.json").read_text()) for name in FIGURES}
    return {"out": out, "paths": paths, "sidecars": sidecars}


def data_of(rendered: dict[str, Any], name: str) -> dict[str, Any]:
    return rendered["sidecars"][name]["data"]


@pytest.mark.parametrize("name", FIGURES)
def test_figure_renders_with_sidecar(rendered: dict[str, Any], name: str) -> None:
    out: Path = rendered["out"]
    png = out / f"{name}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 10_000 < png.stat().st_size < MAX_PNG_BYTES
    side = rendered["sidecars"][name]
    fig = get_figure(name)
    assert side["figure"] == name and side["quick"] is True and side["seed"] == 0
    assert side["schema"] == "softnce-theory/figure/1"
    assert [c["id"] for c in side["claims"]] == list(fig.claims)
    assert all(c["status"] in ("proved", "checked") for c in side["claims"])
    assert all(c["legs"] for c in side["claims"])
    assert {"torch", "numpy", "matplotlib", "sympy", "mpmath", "softnce_theory"} <= set(
        side["versions"]
    )
    assert side["data"]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries


# ----------------------------------------------------------------------------- closed forms


def test_supcon_repulsion_matches_closed_forms(rendered: dict[str, Any]) -> None:
    d = data_of(rendered, "supcon_repulsion")
    s = d["setting"]
    ec, eo = math.exp(s["s_c"]), math.exp(s["s_o"])

    def grads(m: float, z_n: float) -> tuple[float, float, float]:
        p_c = ec / (ec + (m - 1) * eo + z_n)
        return p_c - 1 / m, p_c - ec / (ec + (m - 1) * eo), -z_n / (m * (ec + z_n))

    z_n = s["m_neg"] * math.exp(s["s_n"])
    for j, m in enumerate(d["sizes"]):
        want = grads(m, z_n)
        for key, w in zip(("out", "in", "sincere"), want, strict=True):
            assert d["autograd"][key][j] == pytest.approx(w, rel=1e-12, abs=1e-14)
    for j, m in enumerate(d["m_line"][::17]):
        want = grads(m, z_n)
        for key, w in zip(("out", "in", "sincere"), want, strict=True):
            assert d["lines"][key][j * 17] == pytest.approx(w, rel=1e-12, abs=1e-14)
    assert d["threshold"] == pytest.approx(1 + z_n / (ec - eo))
    for sw in d["sweep"]:
        for m, g in zip(d["sizes"], sw["points_out"], strict=True):
            assert g == pytest.approx(grads(m, sw["z_n"])[0], rel=1e-12, abs=1e-14)
            # sign as the claim predicts: repelled iff (m - 1)(e^{s_c} - e^{s_o}) > Z_N
            assert (g > 0) == ((m - 1) * (ec - eo) > sw["z_n"])


def test_collision_vs_shannon_matches_closed_forms(rendered: dict[str, Any]) -> None:
    d = data_of(rendered, "collision_vs_shannon")
    for cur in d["binary"]:
        t = cur["t"]
        for p, h2, h in zip(
            d["p_points"], cur["points"]["collision"], cur["points"]["shannon"], strict=True
        ):
            assert h2 == pytest.approx(-math.log(t * p + (1 - t) * (1 - p)), rel=1e-12)
            want = -sum(a * math.log(b) for a, b in ((t, p), (1 - t, 1 - p)) if a > 0)
            assert h == pytest.approx(want, rel=1e-12)
            if 0 < t < 1:  # Jensen: collision <= min(Shannon, reverse)
                rev = -(p * math.log(t) + (1 - p) * math.log(1 - t))
                assert h2 <= min(h, rev) + 1e-12
        if t == 0.5:
            assert all(v == pytest.approx(math.log(2)) for v in cur["lines"]["collision"])
        if t == 1.0:
            assert cur["lines"]["collision"] == pytest.approx(cur["lines"]["shannon"])
            assert all(v is None for v in cur["lines"]["reverse"])
    z = np.array(d["logits3"])
    sig = np.exp(z) / np.exp(z).sum()
    pts = zip(
        d["eps_points"],
        d["entropy_points"],
        d["grad_points"]["collision"],
        d["grad_points"]["shannon"],
        strict=True,
    )
    for e, h, gc, gs in pts:
        y = np.full(3, e / 3)
        y[0] += 1 - e
        assert h == pytest.approx(-sum(v * math.log(v) for v in y if v > 0), abs=1e-12)
        assert gc == pytest.approx(np.linalg.norm(sig - y * sig / (sig @ y)), abs=1e-12)
        assert gs == pytest.approx(np.linalg.norm(sig - y), abs=1e-12)
    assert d["eps_points"][0] == 0 and d["eps_points"][-1] == 1
    assert d["grad_points"]["collision"][-1] == pytest.approx(0, abs=1e-12)  # uniform target


def test_negatives_bias_predictions_and_estimates(rendered: dict[str, Any]) -> None:
    runs = {r["scenario"]: r for r in data_of(rendered, "negatives_bias")["runs"]}
    ss = runs["sampled_softmax"]
    o = np.array(ss["config"]["logits"])
    q = np.array(ss["config"]["noise"])
    p = np.exp(o - o.max())
    p /= p.sum()
    chi2 = float((p**2 / q).sum() - 1)
    j = ss["grad_class"]
    for k, first, g in zip(
        ss["dense_ks"], ss["loss_pred_first"], ss["grad_pred_first"], strict=True
    ):
        assert first == pytest.approx(-chi2 / (2 * k), rel=1e-10)
        assert g == pytest.approx(p[j] / k * (1 + chi2 - p[j] / q[j]), rel=1e-10)
    for run in runs.values():
        est = np.array(run["loss"]["estimate"])
        se = np.array(run["loss"]["se"])
        pred = dict(zip(run["ks"], run["loss_pred_second_at_ks"], strict=True))
        for k, e, s in zip(run["ks"], est, se, strict=True):
            if k >= 16:  # the expansion holds; the fixed-seed estimate agrees within 5 SE
                assert abs(e - pred[k]) <= 5 * s + 1e-3 * abs(pred[k]), (run["scenario"], k)
        ci = np.array([run["loss"]["ci_low"], run["loss"]["ci_high"]])
        assert np.allclose(ci[1] - est, Z95 * se, rtol=1e-6)


def _gap_closed(lam: float, eps: float, logits: list[float], t: float) -> float:
    """Delta = log sum_c e^{f_c/t} - log E e^{<alpha, g>}, written as an explicit double sum."""
    c = len(logits)
    g = [f / t + math.log(c) for f in logits]
    gbar = sum(g) / c
    m = math.fsum(
        math.exp(eps * gbar + (1 - eps) * (lam * ga + (1 - lam) * gb)) / c**2
        for ga in g
        for gb in g
    )
    return math.log(math.fsum(math.exp(f / t) for f in logits)) - math.log(m)


def test_soft_limit_gap_matches_closed_form(rendered: dict[str, Any]) -> None:
    d = data_of(rendered, "soft_limit_gap")
    f, t = d["logits"], d["temperature"]
    for cur in d["panel_a"]:
        for lam, v in list(zip(d["lam_line"], cur["line"], strict=True))[::10]:
            assert v == pytest.approx(_gap_closed(lam, cur["eps"], f, t), rel=1e-9, abs=1e-12)
            assert v >= -1e-12  # Jensen
        for lam, v, se in zip(d["lam_points"], cur["points"], cur["points_se"], strict=True):
            assert abs(v - _gap_closed(lam, cur["eps"], f, t)) <= 5 * se + 0.01
    for cur in d["panel_b"]:
        for eps, v in list(zip(d["eps_line"], cur["line"], strict=True))[::10]:
            assert v == pytest.approx(_gap_closed(cur["lam"], eps, f, t), rel=1e-9, abs=1e-12)
    one_hot = next(c for c in d["panel_a"] if c["eps"] == 0)
    assert one_hot["line"][-1] == pytest.approx(0, abs=1e-12)  # lambda = 1: one-hot, no gap
    assert min(min(c["line"]) for c in d["panel_b"] if c["lam"] < 1) > 0.1


def test_infonce_mi_bound_matches_closed_forms(rendered: dict[str, Any]) -> None:
    for case in data_of(rendered, "infonce_mi_bound")["cases"]:
        rho, dim = case["rho"], case["dim"]
        mi = -0.5 * dim * math.log(1 - rho * rho)
        chi2 = (1 - rho * rho) ** (-dim) - 1
        assert case["mi"] == pytest.approx(mi, rel=1e-12)
        assert case["chi2"] == pytest.approx(chi2, rel=1e-12)
        assert case["mc_mi"] == pytest.approx(mi, rel=1e-12)
        for k, gap, se, pred in zip(
            case["ks"], case["gap"], case["gap_se"], case["pred_first"], strict=True
        ):
            assert pred == pytest.approx(chi2 / (2 * k), rel=1e-10)
            i_nce = mi - gap
            assert i_nce <= math.log(k) + 4 * se + 1e-12  # log K ceiling
            assert gap >= -4 * se  # lower bound on the MI
            if k == 1:
                assert gap == pytest.approx(mi)  # I_NCE(1) = 0 exactly
            if k >= 32 and chi2 < 1:  # the 1/K expansion regime
                assert abs(gap - pred) <= 4 * se + 0.2 * pred


def test_sincere_kl_bound_holds_and_exact_n1(rendered: dict[str, Any]) -> None:
    d = data_of(rendered, "sincere_kl_bound")
    for cur in [*d["mc"], d["tempered"]]:
        n = cur["n_neg"]
        for dj, gap, se in zip(d["dj"], cur["gap"], cur["se"], strict=True):
            assert gap <= n / (n + 1) * dj + 4 * se
            assert gap <= math.log(n + 1) + 4 * se
    # N = 1 exact value: log 2 - E log(1 + e^W), W ~ N(-mu^2, 2 mu^2), by Gauss-Hermite here
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    for mu, v in list(zip(d["mu_line"], d["exact_n1"], strict=True))[::7]:
        w = -(mu**2) + math.sqrt(2) * mu * nodes
        e_loss = float((weights * np.logaddexp(0, w)).sum() / math.sqrt(2 * math.pi))
        assert v == pytest.approx(math.log(2) - e_loss, rel=1e-7, abs=1e-10)
    n1 = d["mc"][0]
    assert n1["n_neg"] == 1
    for mu, gap, se in zip(d["mus"], n1["gap"], n1["se"], strict=True):
        w = -(mu**2) + math.sqrt(2) * mu * nodes
        exact = math.log(2) - float((weights * np.logaddexp(0, w)).sum() / math.sqrt(2 * math.pi))
        assert abs(gap - exact) <= 5 * se


def test_em_vs_pgd_objective(rendered: dict[str, Any]) -> None:
    d = data_of(rendered, "em_vs_pgd")
    s = d["setting"]
    from softnce_theory.plots.em_vs_pgd import problem

    sig = problem(s["seed"]).numpy()
    # F at the default start y0 = sigma, recomputed in NumPy
    f0 = -np.log((sig * sig).sum(1)).mean() - s["lam"] * np.log(sig.mean(0)).mean()
    for run in d["runs"]:
        assert run["history"][0] == pytest.approx(f0, rel=1e-12)
        assert min(run["history"]) >= d["f_star"]
        assert run["name"] in d["timing"] and d["timing"][run["name"]]["seconds_total"] > 0
        assert len(run["steps"]) == len(run["history"])
    ems = [r for r in d["runs"] if r["kind"] in ("em", "em-plain")]
    assert len(ems) == 2
    for em in ems:  # EM is monotone (claim collision_ce.em_monotone), accelerated or not
        assert np.all(np.diff(np.array(em["history"])) <= 1e-13)
    assert d["reference"]["fw_gap"] < 1e-6
    assert any(r["left_domain"] for r in d["runs"])  # the too-large step is shown failing


def test_soft_target_toy_recovery(rendered: dict[str, Any]) -> None:
    d = data_of(rendered, "soft_target_toy")
    x = np.array(d["grid"])
    z = np.stack([-1.6 * x, 1.2 - 0.6 * x**2, 1.6 * x], -1)
    truth = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    assert np.allclose(d["truth"], truth, rtol=1e-12)
    kl = {}
    for name, m in d["models"].items():
        w, b = np.array(m["params"]["weight"]), np.array(m["params"]["bias"])
        logits = np.stack([x, x * x], -1) @ w.T + b
        rec = np.exp(logits - logits.max(-1, keepdims=True))
        rec /= rec.sum(-1, keepdims=True)
        assert np.allclose(m["recovered"], rec, rtol=1e-10, atol=1e-14)
        kl[name] = float((truth * np.log(truth / rec)).sum(-1).mean())
        assert m["mean_kl"] == pytest.approx(kl[name], rel=1e-8)
    # consistent losses recover p(y|x); soft-target InfoNCE does not (its limit is not soft CE)
    for name in ("hard_nll", "soft_ce", "hard_infonce"):
        assert kl[name] < 0.01
    assert kl["soft_infonce"] > 10 * max(kl["soft_ce"], kl["hard_nll"])


# ----------------------------------------------------------------------------- determinism


def test_toy_training_is_deterministic() -> None:
    from softnce_theory.plots.soft_target_toy import LOSSES, make_data, train

    data = make_data(512, seed=3)
    for name in LOSSES:
        a = train(name, data, seed=7, epochs=3, batch=128)
        b = train(name, data, seed=7, epochs=3, batch=128)
        assert a == b


def test_compute_is_deterministic_except_wall_time() -> None:
    fig = get_figure("em_vs_pgd")
    with _core.single_thread():
        a, b = fig.compute(True, 1), fig.compute(True, 1)
    a.pop("timing"), b.pop("timing")
    assert a == b
    fig = get_figure("negatives_bias")
    with _core.single_thread():
        assert fig.compute(True, 1) == fig.compute(True, 1)


def test_from_json_round_trip(rendered: dict[str, Any], tmp_path: Path) -> None:
    src: Path = rendered["out"]
    for name in ("supcon_repulsion", "em_vs_pgd"):
        rc = main(
            [
                "plots",
                name,
                "--from-json",
                str(src / f"{name}.json"),
                "--out",
                str(tmp_path),
                "--format",
                "png",
            ]
        )
        assert rc == 0
        assert (tmp_path / f"{name}.png").read_bytes() == (src / f"{name}.png").read_bytes()
        assert json.loads((tmp_path / f"{name}.json").read_text()) == rendered["sidecars"][name]


def test_vector_formats_are_deterministic(rendered: dict[str, Any], tmp_path: Path) -> None:
    side = rendered["out"] / "collision_vs_shannon.json"
    for sub in ("a", "b"):
        make("collision_vs_shannon", tmp_path / sub, ("pdf", "svg"), from_json=side)
    for fmt in ("pdf", "svg"):
        a = (tmp_path / "a" / f"collision_vs_shannon.{fmt}").read_bytes()
        assert a == (tmp_path / "b" / f"collision_vs_shannon.{fmt}").read_bytes()
        assert len(a) > 1000


# ----------------------------------------------------------------------------- gating


class _Override:
    """A leg registry with one claim's leg replaced (check_claim only calls ``get``)."""

    def __init__(self, base: Any, claim_id: str, fn: Any) -> None:
        self.base, self.claim_id, self.fn = base, claim_id, fn

    def get(self, claim_id: str) -> Any:
        return self.fn if claim_id == self.claim_id else self.base.get(claim_id)


def _failing(cfg: Any) -> LegResult:
    return LegResult(
        leg="production",
        outcome="fail",
        detail="planted failure",
        counterexample="planted counterexample at x = 0",
    )


def _raising(cfg: Any) -> LegResult:
    raise RuntimeError("planted crash")


def _plant(monkeypatch: pytest.MonkeyPatch, claim_id: str, fn: Any) -> None:
    real = _core._registries

    def patched() -> tuple[Any, Any]:
        precise, production = real()
        return precise, _Override(production, claim_id, fn)

    monkeypatch.setattr(_core, "_registries", patched)


def _plant_stale(out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    stale = [out / f"{name}.{ext}" for ext in ("png", "pdf", "svg", "json")]
    for p in stale:
        p.write_text("stale")
    return stale


@pytest.mark.parametrize(("fn", "status"), [(_failing, "refuted"), (_raising, "error")])
def test_refuted_or_erroring_claim_refuses_the_figure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fn: Any, status: str
) -> None:
    name = "collision_vs_shannon"
    _plant(monkeypatch, "collision_ce.jensen_bound", fn)
    stale = _plant_stale(tmp_path, name)
    with pytest.raises(GateError, match=rf"collision_ce.jensen_bound is {status}"):
        make(name, tmp_path, ("png",), quick=True)
    assert not any(p.exists() for p in stale)
    assert not list(tmp_path.iterdir())


def test_cli_refusal_exit_code_and_no_stale_files(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _plant(monkeypatch, "sincere.supcon_in_gradient_nonpositive", _failing)
    stale = _plant_stale(tmp_path, "supcon_repulsion")
    rc = main(
        ["plots", "supcon_repulsion", "collision_vs_shannon", "--out", str(tmp_path), "--quick"]
    )
    err = capsys.readouterr().err
    assert rc == 1
    assert "REFUSED" in err and "planted counterexample" in err
    assert not any(p.exists() for p in stale)
    # the other figure is still drawn
    assert (tmp_path / "collision_vs_shannon.png").exists()
    assert not (tmp_path / "supcon_repulsion.png").exists()


def test_from_json_refuses_a_sidecar_with_failing_claims(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    side = json.loads((rendered["out"] / "soft_limit_gap.json").read_text())
    side["claims"][0]["status"] = "refuted"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(side))
    with pytest.raises(GateError, match="failing claims"):
        make("soft_limit_gap", tmp_path / "out", from_json=bad)
    with pytest.raises(ValueError, match="holds figure"):
        make("em_vs_pgd", tmp_path / "out", from_json=rendered["out"] / "soft_limit_gap.json")


@pytest.mark.parametrize(
    "argv",
    [
        ["plots", "--format", "gif"],
        ["plots", "no_such_figure"],
        ["plots", "em_vs_pgd", "soft_limit_gap", "--from-json", "x.json"],
    ],
)
def test_cli_rejects_bad_options(argv: list[str], tmp_path: Path) -> None:
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())
