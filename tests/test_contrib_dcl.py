"""The DCL family (softnce_theory.contrib.dcl), used through the public API only.

Every expected value comes from an mpmath oracle written from Yeh et al. (2022) eqs. (2), (6)
and the DCLW weight, or from the engine/audit verdicts; mutants (the positive kept in the
denominator, a wrong closed-form gradient, a mistyped oracle, wrong statements, a detached
temperature) must be caught.
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from typing import Any

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
import torch

from softnce_theory.contrib import dcl as D
from softnce_theory.derivations import CheckConfig, Claim, LegRegistry, LegResult, Tally
from softnce_theory.derivations.tactics import Differentiate, Reduction, Simplify
from softnce_theory.engine import all_claims, check_claim, run_catalogue
from softnce_theory.registry import Family, scoped
from softnce_theory.testing import check_loss

QUICK = CheckConfig(quick=True)
PROVED = {
    "dcl.gradient",
    "dcl.npc_multiplier",
    "dcl.infonce_decomposition",
    "dcl.infonce_upper_bound",
    "dcl.generic.closed_form_gradient",
    "dcl.generic.invariance.logit_shift",
}


def _run(family: Family, cfg: CheckConfig = QUICK) -> tuple[dict[str, Any], dict, dict]:
    with scoped(family):
        claims = all_claims([family.name])
        res, defs, conf = run_catalogue(claims, cfg, families=[family.name])
    return {r.claim.id: r for r in res}, defs, conf


def _spec_only(name: str, **changes: Any) -> Family:
    """A family holding only a (mutated) copy of the DCL spec: its generic claims."""
    return Family(
        name=name,
        title="DCL mutant",
        source=D.SOURCE,
        spec=dataclasses.replace(D.SPEC, **changes),
    )


# ----------------------------------------------------------------------------- the engine


def test_every_claim_is_proved_or_checked() -> None:
    res, defs, conf = _run(D.FAMILY)
    status = {cid: r.status for cid, r in res.items()}
    assert {c for c, s in status.items() if s == "proved"} == PROVED, status
    assert set(status.values()) <= {"proved", "checked"}, status
    mine = {c.id for c in D.CLAIMS}
    assert mine <= PROVED
    for cid, r in res.items():
        legs = {leg.leg for leg in r.legs}
        if cid in mine:  # a symbolic proof, numeric legs on the same statement, definitions
            assert {"symbolic", "precise", "production", "definition"} <= legs, cid
            sym = r.leg("symbolic")
            assert sym is not None and sym.proof is not None, cid
            assert sym.proof.scope_kind == "general", cid
        for leg in r.legs:
            if leg.leg != "symbolic":
                assert leg.outcome == "pass" and leg.n_points > 0, (cid, leg)
    ids = {f"dcl.{n}" for n in ("dcl_row", "infonce_row", "npc_multiplier")}
    assert ids <= set(defs) and all(v.outcome == "pass" for v in defs.values()), defs
    assert conf["dcl.dcl_loss"].outcome == "pass" and conf["dcl.dcl_loss"].n_points > 0


def test_claims_name_their_definitions_and_cite_the_paper() -> None:
    names = {d.name for d in D.DEFINITIONS}
    for c in D.CLAIMS:
        assert c.uses and set(c.uses) <= names, c.id
        assert "2110.06848" in c.source, c.id
    npc = next(c for c in D.CLAIMS if c.id == "dcl.npc_multiplier")
    assert "Prop. 1" in npc.source and set(npc.uses) == names


def test_cli_verify_and_claims() -> None:
    base = [sys.executable, "-m", "softnce_theory.cli"]
    plug = ["--plugin", "softnce_theory.contrib.dcl", "--family", "dcl"]
    res = subprocess.run(
        [*base, "verify", *plug, "--quick", "--json"], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["summary"]["refuted"] == 0 and data["summary"]["error"] == 0
    assert {c["id"] for c in data["claims"] if c["status"] == "proved"} == PROVED


def test_module_import_is_light() -> None:
    code = (
        "import sys, softnce_theory.contrib.dcl as m\n"
        "assert m.FAMILY.name == 'dcl'\n"
        "print([k for k in ('torch', 'sympy', 'mpmath', 'numpy') if k in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- mutants


def _infonce_rows(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Mutant: the positive kept in the denominator (InfoNCE, not DCL)."""
    return torch.logsumexp((x - x[:, :1]) / t, dim=1)


def test_positive_in_the_denominator_is_caught_by_engine_and_audit() -> None:
    fam = _spec_only("dcl_mut_denominator", torch_fn=_infonce_rows)
    res, _, _ = _run(fam)
    bad = res["dcl_mut_denominator.generic.value"]
    assert bad.status == "refuted" and "row" in (bad.counterexample or "")
    assert res["dcl_mut_denominator.generic.gradient"].status == "refuted"
    with scoped(fam):
        report = check_loss(None, fam.name, max_examples=10)
    assert not report.passed
    assert not report["value_vs_oracle"].passed
    assert not report["gradient_vs_definition"].passed


def test_the_correct_rows_pass_the_audit() -> None:
    with scoped(D.FAMILY):
        report = check_loss(None, "dcl", max_examples=15)
    assert report.passed, report.summary()
    assert report.independent


def test_wrong_closed_form_gradient_is_refuted() -> None:
    def infonce_gradient(x: list[Any], t: Any) -> list[Any]:  # softmax over all entries
        z = sum(sp.exp(v / t) for v in x)
        return [(sp.exp(v / t) / z - (1 if k == 0 else 0)) / t for k, v in enumerate(x)]

    fam = _spec_only("dcl_mut_gradient", gradient=infonce_gradient)
    res, _, _ = _run(fam)
    bad = res["dcl_mut_gradient.generic.closed_form_gradient"]
    assert bad.status == "refuted"
    sym = bad.leg("symbolic")
    assert sym is not None and sym.outcome != "pass"
    assert "row" in (bad.counterexample or "")
    assert res["dcl_mut_gradient.generic.value"].status == "checked"  # the loss itself is right


def test_mistyped_oracle_fails_the_definition_legs() -> None:
    def oracle_with_positive(row: list[Any], t: Any) -> Any:
        return D.infonce_row_oracle(row[0], row[1:], t)

    res, defs, _ = _run(_spec_only("dcl_mut_oracle", oracle=oracle_with_positive))
    assert any(v.outcome == "fail" for v in defs.values())
    assert res["dcl_mut_oracle.generic.closed_form_gradient"].status == "refuted"


def _claim(cid: str, kind: str, statement: Any, tactic: Any) -> Claim:
    return Claim(
        id=f"dcl.{cid}",
        family="dcl",
        kind=kind,  # type: ignore[arg-type]
        text="a wrong statement",
        statement=statement,
        source="test",
        evidence=("symbolic", "precise"),
        tactic=tactic,
    )


def test_wrong_statements_are_not_proved() -> None:
    n = D.symbols()
    gap = sp.log(1 + sp.exp(n.s0 / n.t) / n.U)
    wrong = [
        _claim(
            "reversed_bound",
            "inequality",
            lambda: sp.Gt(D.dcl_expr(), D.infonce_expr()),
            Reduction(uses=(), extra=(gap,)),
        ),
        _claim(
            "wrong_gap",
            "identity",
            lambda: sp.Eq(D.infonce_expr(), D.dcl_expr() + sp.log(2 + sp.exp(n.s0 / n.t) / n.U)),
            Simplify(steps=("together", "expand_log")),
        ),
        _claim(  # the decoupled derivative attributed to InfoNCE (no q_B)
            "no_coupling",
            "gradient",
            lambda: sp.Eq(sp.Derivative(D.infonce_expr(), n.s0), -1 / n.t),
            Differentiate(steps=("derivatives", "delta_sums")),
        ),
    ]
    precise = LegRegistry("precise")

    @precise.register("dcl.reversed_bound")
    def _reversed(cfg: CheckConfig) -> LegResult:  # the oracles at 50 digits
        tally = Tally("precise", rtol=0.0, dps=50)
        with mp.workdps(50):
            for s0, negs in [(0.3, [-1.0, 0.5]), (-2.0, [1.0])]:
                margin = D.dcl_row_oracle(s0, negs, 0.5) - D.infonce_row_oracle(s0, negs, 0.5)
                tally.holds(margin, f"s_0 = {s0}, s = {negs}")
        return tally.result("DCL - InfoNCE > 0 at two points")

    for c in wrong:
        r = check_claim(c, QUICK, precise, LegRegistry("production"))
        sym = r.leg("symbolic")
        assert r.status != "proved" and sym is not None and sym.outcome != "pass", c.id
    r = check_claim(wrong[0], QUICK, precise, LegRegistry("production"))
    assert r.status == "refuted" and "violated" in (r.counterexample or "")


# ----------------------------------------------------------------------------- batch loss


def _oracle_grad(z1: np.ndarray, z2: np.ndarray, t: float, sigma: float | None) -> list[Any]:
    """d(sum of the oracle's anchor losses)/d(t, sigma) by mpmath.diff at 50 digits."""
    with mp.workdps(50):

        def f(tt: Any, ss: Any = None) -> Any:
            return mp.fsum(D.dcl_batch_oracle(z1.tolist(), z2.tolist(), tt, ss))

        if sigma is None:
            return [mp.diff(f, mp.mpf(t))]
        pt = [mp.mpf(t), mp.mpf(sigma)]
        return [mp.diff(f, pt, (1, 0)), mp.diff(f, pt, (0, 1))]


@pytest.mark.parametrize("sigma", [None, 0.5])
@pytest.mark.parametrize("normalize", [True, False])
def test_dcl_loss_matches_the_batch_oracle(sigma: float | None, normalize: bool) -> None:
    rng = np.random.default_rng(7)
    for b, d, t in [(2, 3, 0.1), (3, 2, 0.5), (5, 4, 2.0)]:
        z1, z2 = rng.standard_normal((b, d)), rng.standard_normal((b, d))
        got = D.dcl_loss(
            torch.tensor(z1),
            torch.tensor(z2),
            temperature=t,
            sigma=sigma,
            normalize=normalize,
            reduction="none",
        )
        assert got.shape == (2 * b,)
        with mp.workdps(50):
            want = D.dcl_batch_oracle(z1.tolist(), z2.tolist(), t, sigma, normalize)
        np.testing.assert_allclose(got.numpy(), [float(w) for w in want], rtol=1e-12, atol=1e-13)
        mean = D.dcl_loss(torch.tensor(z1), torch.tensor(z2), temperature=t, sigma=sigma,
                          normalize=normalize)  # fmt: skip
        assert float(mean) == pytest.approx(float(mp.fsum(want)) / (2 * b), rel=1e-12)


def test_dcl_loss_is_infonce_minus_the_positive_in_the_denominator() -> None:
    """Per anchor, NT-Xent (the positive in the denominator, written here in NumPy) exceeds
    DCL by exactly log(1 + e^{s_pos/t} / U) (claim dcl.infonce_decomposition, batch level)."""
    rng = np.random.default_rng(3)
    b, t = 4, 0.3
    z1, z2 = rng.standard_normal((b, 5)), rng.standard_normal((b, 5))
    z = np.concatenate([z1, z2])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    sim = z @ z.T / t
    dcl = D.dcl_loss(torch.tensor(z1), torch.tensor(z2), temperature=t, reduction="none").numpy()
    for a in range(2 * b):
        p = (a + b) % (2 * b)
        others = [sim[a, j] for j in range(2 * b) if j != a]  # NT-Xent: all but self
        negs = [sim[a, j] for j in range(2 * b) if j not in (a, p)]
        ntxent = np.logaddexp.reduce(others) - sim[a, p]
        gap = np.logaddexp(0.0, sim[a, p] - np.logaddexp.reduce(negs))
        assert ntxent == pytest.approx(dcl[a] + gap, rel=1e-12, abs=1e-13)
        assert dcl[a] < ntxent


@pytest.mark.parametrize("sigma", [None, 0.7])
def test_tensor_temperature_and_sigma_get_their_gradients(sigma: float | None) -> None:
    rng = np.random.default_rng(11)
    z1, z2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    tt = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    ts = None if sigma is None else torch.tensor(sigma, dtype=torch.float64, requires_grad=True)
    loss = D.dcl_loss(torch.tensor(z1), torch.tensor(z2), temperature=tt, sigma=ts,
                      reduction="sum")  # fmt: skip
    loss.backward()
    want = _oracle_grad(z1, z2, 0.4, sigma)
    assert tt.grad is not None and float(tt.grad) == pytest.approx(float(want[0]), rel=1e-10)
    if ts is not None:
        assert ts.grad is not None and float(ts.grad) == pytest.approx(float(want[1]), rel=1e-10)


def test_a_detached_temperature_fails_conformance(monkeypatch: pytest.MonkeyPatch) -> None:
    real = D.dcl_loss

    def detached(z1: torch.Tensor, z2: torch.Tensor, *, temperature: Any, **kw: Any) -> Any:
        return real(z1, z2, temperature=temperature.item(), **kw)

    monkeypatch.setattr(D, "dcl_loss", detached)
    res = D.CONFORMANCE.get("dcl.dcl_loss")(QUICK)  # type: ignore[misc]
    assert res.outcome == "fail" and "gradient" in (res.counterexample or "")


def test_ntxent_fails_conformance(monkeypatch: pytest.MonkeyPatch) -> None:
    def ntxent(z1: torch.Tensor, z2: torch.Tensor, *, temperature: Any, sigma: Any = None,
               normalize: bool = True, reduction: str = "mean") -> torch.Tensor:  # fmt: skip
        z = torch.cat([z1, z2])
        z = torch.nn.functional.normalize(z, dim=1) if normalize else z
        n, b = z.shape[0], z1.shape[0]
        sim = (z @ z.T) / temperature
        pos = sim[torch.arange(n), (torch.arange(n) + b) % n]
        sim = sim.masked_fill(torch.eye(n, dtype=torch.bool), -math.inf)
        loss = torch.logsumexp(sim, dim=1) - pos
        return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]

    monkeypatch.setattr(D, "dcl_loss", ntxent)
    res = D.CONFORMANCE.get("dcl.dcl_loss")(QUICK)  # type: ignore[misc]
    assert res.outcome == "fail" and "anchors" in (res.counterexample or "")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"z1": torch.zeros(3)}, r"^z1 must have shape \(B, D\)"),
        ({"z1": torch.randn(1, 4), "z2": torch.randn(1, 4)}, r"^z1: dimension B must be >= 2"),
        ({"z2": torch.randn(3, 5)}, r"^z2: dimension D is 5"),
        ({"z2": torch.randn(2, 4)}, r"^z2: dimension B is 2"),
        ({"z1": torch.full((3, 4), math.nan)}, r"^z1 must be finite"),
        ({"z2": torch.randn(3, 4, dtype=torch.float64)}, r"^z2 must have the dtype"),
        ({"z1": [[1.0, 2.0]]}, r"^z1 must be a torch.Tensor"),
        ({"temperature": 0.0}, r"^temperature must be finite and > 0"),
        ({"temperature": -1.0}, r"^temperature must be"),
        ({"temperature": math.inf}, r"^temperature must be"),
        ({"temperature": torch.tensor([0.1, 0.2])}, r"^temperature must be a scalar"),
        ({"sigma": 0.0}, r"^sigma must be finite and > 0"),
        ({"sigma": "0.5"}, r"^sigma must be a real number, got str"),
        ({"temperature": "0.1"}, r"^temperature must be a real number, got str"),
        ({"reduction": "avg"}, r"^reduction must be one of"),
        ({"normalize": 1}, r"^normalize must be a bool"),
        ({"z2": torch.zeros(3, 4)}, r"^z2: row 0 has norm 0"),
    ],
)
def test_bad_input_raises_a_value_error_naming_the_argument(kwargs: dict, match: str) -> None:
    args = {"z1": torch.randn(3, 4), "z2": torch.randn(3, 4), **kwargs}
    z1, z2 = args.pop("z1"), args.pop("z2")
    with pytest.raises(ValueError, match=match):
        D.dcl_loss(z1, z2, **args)


def test_rows_validation() -> None:
    with pytest.raises(ValueError, match=r"^x: dimension K must be >= 2"):
        D.dcl_rows(torch.randn(3, 1), 0.5)
    with pytest.raises(ValueError, match=r"^t must be finite and > 0"):
        D.dcl_rows(torch.randn(3, 2), 0.0)
    with pytest.raises(ValueError, match=r"^t must be a real number, got str"):
        D.dcl_rows(torch.randn(3, 2), "1")  # type: ignore[arg-type]


def test_zero_rows_are_fine_without_normalisation() -> None:
    z1, z2 = torch.zeros(2, 3), torch.zeros(2, 3)
    out = D.dcl_loss(z1, z2, normalize=False, reduction="none")
    assert torch.allclose(out, torch.full((4,), math.log(2.0)))  # U = 2 e^0, s_pos = 0


@pytest.mark.parametrize("t", [1e-3, 1e3])
@pytest.mark.parametrize("sigma", [None, 0.5])
def test_extreme_temperatures_stay_finite_and_exact(t: float, sigma: float | None) -> None:
    rng = np.random.default_rng(5)
    z1, z2 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    for dtype in (torch.float32, torch.float64):
        a = torch.tensor(z1, dtype=dtype, requires_grad=True)
        c = torch.tensor(z2, dtype=dtype, requires_grad=True)
        out = D.dcl_loss(a, c, temperature=t, sigma=sigma, reduction="none")
        out.sum().backward()
        assert torch.isfinite(out).all() and torch.isfinite(a.grad).all()  # type: ignore[arg-type]
        assert torch.isfinite(c.grad).all()  # type: ignore[arg-type]
    with mp.workdps(50):
        want = [float(w) for w in D.dcl_batch_oracle(z1.tolist(), z2.tolist(), t, sigma)]
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_low_precision_inputs_match_float64_on_the_same_inputs(dtype: torch.dtype) -> None:
    rng = np.random.default_rng(9)
    z1 = torch.tensor(rng.standard_normal((4, 8)), dtype=dtype)
    z2 = torch.tensor(rng.standard_normal((4, 8)), dtype=dtype)
    out = D.dcl_loss(z1, z2, temperature=0.05, reduction="none")
    ref = D.dcl_loss(z1.double(), z2.double(), temperature=0.05, reduction="none")
    assert out.dtype == dtype and torch.isfinite(out).all()
    # the same rounded inputs: float32 arithmetic (similarities to a few eps, scaled by 1/t)
    # and the final rounding to ``dtype``
    tol = torch.finfo(dtype).eps * ref.abs() + 16 * torch.finfo(torch.float32).eps / 0.05
    assert ((out.double() - ref).abs() <= tol).all()


# ----------------------------------------------------------------------------- peer


@pytest.mark.filterwarnings("ignore:To copy construct from a tensor:UserWarning")  # lightly's own
def test_lightly_dcl_conventions() -> None:
    """lightly's DCLLoss/DCLWLoss (when installed; checked with lightly 1.6.0): same values
    (mean over the 2B anchors), same DCL gradients; the DCLW gradients differ because lightly
    computes the weight from detached inputs (docs/families/dcl.md)."""
    from tests.peers import peer_module

    lightly = peer_module("lightly.loss.dcl_loss")
    rng = np.random.default_rng(1)
    z1 = torch.tensor(rng.standard_normal((6, 5)), requires_grad=True)
    z2 = torch.tensor(rng.standard_normal((6, 5)), requires_grad=True)
    ours = D.dcl_loss(z1, z2, temperature=0.2)
    theirs = lightly.DCLLoss(temperature=0.2)(z1, z2)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)
    grads = zip(
        torch.autograd.grad(ours, [z1, z2]), torch.autograd.grad(theirs, [z1, z2]), strict=True
    )
    for g, h in grads:
        assert torch.allclose(g, h, rtol=1e-10, atol=1e-12)
    ours_w = D.dcl_loss(z1, z2, temperature=0.2, sigma=0.5)
    theirs_w = lightly.DCLWLoss(temperature=0.2, sigma=0.5)(z1, z2)
    assert ours_w.item() == pytest.approx(theirs_w.item(), rel=1e-12)
    g_ours, g_theirs = (torch.autograd.grad(v, [z1])[0] for v in (ours_w, theirs_w))
    assert not torch.allclose(g_ours, g_theirs, rtol=1e-6, atol=1e-8)  # w: no stop-gradient here
