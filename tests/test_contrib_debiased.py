"""The debiased contrastive loss family (softnce_theory.contrib.debiased), added through the
public extension API: the production losses against independent references, validation,
gradients, the claims through the engine, mutants that the engine / audit / Monte Carlo leg
must catch, and the bias expansion against an exact enumeration."""

from __future__ import annotations

import math
import random
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mpmath import mp

import softnce_theory.contrib.debiased as D
from softnce_theory.derivations import CheckConfig
from softnce_theory.registry import Family, LossSpec, scoped

CFG = CheckConfig()


def _rows(rng: random.Random, b: int, k: int) -> list[list[float]]:
    return [[rng.uniform(-1, 1) for _ in range(k)] for _ in range(b)]


def _oracle(row: list[float], t: float, tau: float) -> float:
    with mp.workdps(50):
        return float(D.oracle([mp.mpf(v) for v in row], mp.mpf(t), mp.mpf(tau)))


def _clip_binds(row: list[float], t: float, tau: float) -> bool:
    n = len(row) - 1
    mean = math.fsum(math.exp(v / t) for v in row[1:]) / n
    return (mean - tau * math.exp(row[0] / t)) / (1 - tau) < math.exp(-1 / t)


# ----------------------------------------------------------------------------- values


def test_rows_match_the_oracle_on_both_sides_of_the_clip() -> None:
    rng = random.Random(0)
    clipped = unclipped = 0
    for _ in range(60):
        k, t, tau = rng.randint(2, 8), rng.uniform(0.05, 2.0), rng.uniform(0, 0.9)
        rows = _rows(rng, 3, k)
        got = D.debiased_rows(torch.tensor(rows, dtype=torch.float64), t, tau)
        for row, g in zip(rows, got.tolist(), strict=True):
            want = _oracle(row, t, tau)
            assert g == pytest.approx(want, rel=1e-12, abs=1e-13), (row, t, tau)
            if _clip_binds(row, t, tau):
                clipped += 1
            else:
                unclipped += 1
    assert clipped >= 10 and unclipped >= 10  # both branches were exercised


def test_hand_computed_value() -> None:
    # y = (0.5, 0, 0.2), t = 1/2, tau = 0.1: s = (1, 0, 0.4), N = 2
    s0, s = 1.0, (0.0, 0.4)
    g = ((math.exp(s[0]) + math.exp(s[1])) / 2 - 0.1 * math.exp(s0)) / 0.9
    want = -math.log(math.exp(s0) / (math.exp(s0) + 2 * max(g, math.exp(-2.0))))
    got = D.debiased_rows(torch.tensor([[0.5, 0.0, 0.2]], dtype=torch.float64), 0.5, 0.1)
    assert float(got[0]) == pytest.approx(want, rel=1e-14)


def test_small_temperature_is_finite_where_the_direct_formula_overflows() -> None:
    x = torch.tensor([[0.9, 1.0, -1.0], [1.0, -1.0, -1.0]], dtype=torch.float32)
    t = 1e-3
    assert not torch.isfinite(torch.exp(x / t)).all()  # the authors' exp(sim / t) overflows
    got = D.debiased_rows(x, t, 0.1)
    assert torch.isfinite(got).all()
    for row, g in zip(x.double().tolist(), got.tolist(), strict=True):
        assert g == pytest.approx(_oracle(row, t, 0.1), rel=1e-6, abs=1e-6)


def _authors_formula(z1: torch.Tensor, z2: torch.Tensor, t: float, tau: float) -> torch.Tensor:
    """The per-anchor loss written directly from Chuang et al. Alg. 1 in float64: anchors
    cat(z1, z2), positive = the other view, negatives = every other row (N = 2B - 2)."""
    u = F.normalize(torch.cat([z1, z2]).double(), dim=1)
    b2 = u.shape[0]
    out = []
    for a in range(b2):
        p = (a + b2 // 2) % b2
        pos = math.exp(float(u[a] @ u[p]) / t)
        negs = [math.exp(float(u[a] @ u[j]) / t) for j in range(b2) if j not in (a, p)]
        n = len(negs)
        ng = max((sum(negs) - tau * n * pos) / (1 - tau), n * math.exp(-1 / t))
        out.append(-math.log(pos / (pos + ng)))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("tau", [0.0, 0.1, 0.6, 0.95])
def test_batch_loss_matches_the_authors_formula(tau: float) -> None:
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(5, 4, generator=g, dtype=torch.float64)
    z2 = z1 + 0.3 * torch.randn(5, 4, generator=g, dtype=torch.float64)
    want = _authors_formula(z1, z2, 0.5, tau)
    got = D.debiased_contrastive_loss(z1, z2, 0.5, tau, reduction="none")
    assert got.shape == (10,)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)
    mean = D.debiased_contrastive_loss(z1, z2, 0.5, tau)
    total = D.debiased_contrastive_loss(z1, z2, 0.5, tau, reduction="sum")
    assert float(mean) == pytest.approx(float(want.mean()), rel=1e-12)
    assert float(total) == pytest.approx(float(want.sum()), rel=1e-12)


def test_zero_prior_is_nt_xent() -> None:
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    u = F.normalize(torch.cat([z1, z2]).double(), dim=1)
    logits = (u @ u.T / 0.2).fill_diagonal_(-math.inf)
    target = (torch.arange(8) + 4) % 8
    want = F.cross_entropy(logits, target)
    got = D.debiased_contrastive_loss(z1.double(), z2.double(), 0.2, 0.0)
    assert float(got) == pytest.approx(float(want), rel=1e-12)


def test_two_samples_give_two_negatives_per_anchor() -> None:
    # B = 2: anchor 0 has positive 2 and negatives 1, 3 (N = 2B - 2 = 2)
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    z2 = torch.tensor([[1.0, 1.0], [-1.0, 0.0]], dtype=torch.float64)
    got = D.debiased_contrastive_loss(z1, z2, 1.0, 0.2, reduction="none")
    u = F.normalize(torch.cat([z1, z2]), dim=1)
    row = [float(u[0] @ u[2]), float(u[0] @ u[1]), float(u[0] @ u[3])]
    assert float(got[0]) == pytest.approx(_oracle(row, 1.0, 0.2), rel=1e-13)


def test_half_precision_is_computed_in_float32() -> None:
    rng = random.Random(3)
    x = torch.tensor(_rows(rng, 6, 5), dtype=torch.float16)
    got = D.debiased_rows(x, 0.1, 0.3)
    assert got.dtype == torch.float16
    ref = D.debiased_rows(x.double(), 0.1, 0.3)
    torch.testing.assert_close(got.double(), ref, rtol=2e-3, atol=2e-3)


# ----------------------------------------------------------------------------- gradients


def test_tensor_temperature_and_prior_keep_their_gradients() -> None:
    g = torch.Generator().manual_seed(4)
    z1 = torch.randn(3, 4, generator=g, dtype=torch.float64)
    z2 = torch.randn(3, 4, generator=g, dtype=torch.float64)

    def f(t: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        return D.debiased_contrastive_loss(z1, z2, t, tau)

    t = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    f(t, tau).backward()
    assert t.grad is not None and tau.grad is not None
    assert torch.autograd.gradcheck(f, (t.detach().requires_grad_(), tau.detach().requires_grad_()))


def test_gradients_match_finite_differences_on_rows() -> None:
    rng = random.Random(5)
    x = torch.tensor(_rows(rng, 4, 4), dtype=torch.float64, requires_grad=True)
    t = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    tau = torch.tensor(0.15, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, c: D.debiased_rows(a, b, c), (x, t, tau))


@pytest.mark.parametrize("t", [1e-3, 1e3])
@pytest.mark.parametrize("tau", [0.0, 0.99])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_value_and_gradients_at_the_extremes(t: float, tau: float, dtype: Any) -> None:
    rng = random.Random(6)
    x = torch.tensor([*_rows(rng, 5, 6), [-1.0] * 6, [1.0] * 6], dtype=dtype, requires_grad=True)
    tt = torch.tensor(t, dtype=dtype, requires_grad=True)
    tp = torch.tensor(tau, dtype=dtype, requires_grad=True)
    out = D.debiased_rows(x, tt, tp)
    out.sum().backward()
    for v in (out, x.grad, tt.grad, tp.grad):
        assert v is not None and torch.isfinite(v).all()


def test_tau_gradient_keeps_relative_precision_near_a_tie() -> None:
    # mean of the negatives' weights = e^{s0} (1 + d): d loss / d tau is proportional to d
    d = 1e-9
    x = torch.tensor([[0.0, math.log1p(d)]], dtype=torch.float64)
    tau = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    D.debiased_rows(x, 1.0, tau).sum().backward()
    # l = log(1 - 2 tau + e^r) - log(1 - tau), r = log(1 + d): dl/dtau(0) = (e^r - 1)/(1 + e^r)
    assert tau.grad is not None
    assert float(tau.grad) == pytest.approx(d / (2 + d), rel=1e-6)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": torch.zeros(2, 1)}, "dimension K must be >= 2"),
        ({"x": torch.full((2, 3), 1.5)}, "every entry must be in"),
        ({"x": torch.zeros(3)}, "x must have shape"),
        ({"t": 0.0}, "t must be"),
        ({"t": float("nan")}, "t must be"),
        ({"tau_plus": 1.0}, "tau_plus must lie in"),
        ({"tau_plus": -0.1}, "tau_plus must lie in"),
        ({"tau_plus": torch.zeros(2)}, "tau_plus must be a scalar"),
    ],
)
def test_rows_validation(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {"x": torch.zeros(2, 3), "t": 0.5, "tau_plus": 0.1, **kwargs}
    with pytest.raises(ValueError, match=match):
        D.debiased_rows(**args)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"z1": torch.zeros(1, 3), "z2": torch.zeros(1, 3)}, "dimension B must be >= 2"),
        ({"z2": torch.zeros(4, 3)}, "dimension B is 4"),
        ({"z2": torch.zeros(2, 5)}, "dimension D is 5"),
        ({"z1": torch.full((2, 3), math.inf)}, "z1 must be finite"),
        ({"z1": torch.zeros(2, 3, dtype=torch.int64)}, "z1 must have dtype"),
        ({"temperature": -1.0}, "temperature must be"),
        ({"tau_plus": 1.0}, "tau_plus must lie in"),
        ({"reduction": "avg"}, "reduction must be one of"),
    ],
)
def test_batch_validation(kwargs: dict[str, Any], match: str) -> None:
    args: dict[str, Any] = {
        "z1": torch.ones(2, 3),
        "z2": torch.ones(2, 3),
        "temperature": 0.5,
        "tau_plus": 0.1,
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        D.debiased_contrastive_loss(**args)


# ----------------------------------------------------------------------------- the claims


def test_every_claim_is_proved_or_checked() -> None:
    from softnce_theory.engine import check_claim, run_definitions

    with scoped(D.FAMILY):
        defs = run_definitions(CFG, [D.NAME])
        assert all(r.outcome == "pass" for r in defs.values()), defs
        results = {c.id: check_claim(c, CFG, definitions=defs) for c in D.FAMILY.all_claims()}
    status = {cid: r.status for cid, r in results.items()}
    assert all(s in ("proved", "checked") for s in status.values()), status
    for cid in (D.C_INFONCE, D.C_UNBIASED, D.C_CLIP):
        assert status[cid] == "proved", cid
    assert status[D.C_BIAS] == "checked"


def _spec_family(name: str, torch_fn: Callable[..., Any], **over: Any) -> Family:
    spec = LossSpec(
        definition=over.get("definition", D.definition),
        torch_fn=torch_fn,
        domain=D.ROWS_DOMAIN,
        oracle=over.get("oracle", D.oracle),
        sizes=(2, 3, 5),
    )
    return Family(name=name, title="mutant", source="test mutant of " + D.SOURCE, spec=spec)


def _no_prior_factor(x: torch.Tensor, t: Any, tau_plus: Any) -> torch.Tensor:
    """Mutant: g without the 1/(1 - tau+) factor (direct formula, float64)."""
    s = x / t
    n = x.shape[1] - 1
    g = torch.exp(s[:, 1:]).mean(1) - tau_plus * torch.exp(s[:, 0])
    g = torch.maximum(g, torch.exp(-1 / torch.as_tensor(t, dtype=x.dtype)))
    return torch.log(torch.exp(s[:, 0]) + n * g) - s[:, 0]


def _no_clip(x: torch.Tensor, t: Any, tau_plus: Any) -> torch.Tensor:
    """Mutant: the unclipped estimator (log of a negative number gives NaN)."""
    s = x / t
    n = x.shape[1] - 1
    g = (torch.exp(s[:, 1:]).mean(1) - tau_plus * torch.exp(s[:, 0])) / (1 - tau_plus)
    return torch.log(torch.exp(s[:, 0]) + n * g) - s[:, 0]


def _infonce_only(x: torch.Tensor, t: Any, tau_plus: Any) -> torch.Tensor:
    """Mutant: plain InfoNCE (tau+ ignored: an argument silently dropped)."""
    return torch.logsumexp(x / t, dim=1) - x[:, 0] / t


@pytest.mark.parametrize("mutant", [_no_prior_factor, _no_clip, _infonce_only])
def test_mutants_are_refuted_by_the_generic_value_claim(mutant: Callable[..., Any]) -> None:
    from softnce_theory.engine.generic import derive

    fam = _spec_family("debiased_mutant", mutant)
    leg = derive(fam).production.get("debiased_mutant.generic.value")
    assert leg is not None
    res = leg(CFG)
    assert res.outcome == "fail" and res.counterexample


@pytest.mark.parametrize("mutant", [_no_prior_factor, _no_clip, _infonce_only])
def test_mutants_fail_the_audit(mutant: Callable[..., Any]) -> None:
    from softnce_theory.testing import check_loss

    fam = _spec_family("debiased_mutant", mutant)
    with scoped(fam):
        report = check_loss(mutant, "debiased_mutant", properties=["value_vs_oracle"])
    assert not report.passed


def test_the_real_loss_passes_the_audit() -> None:
    from softnce_theory.testing import check_loss

    with scoped(D.FAMILY):
        report = check_loss(None, D.NAME, max_examples=25)
    assert report.passed, report


def test_a_definition_without_the_clip_is_caught_by_its_definition_leg() -> None:
    import sympy as sp

    from softnce_theory.engine.generic import derive

    def unclipped(x: list[Any], t: Any, tau_plus: Any) -> Any:
        n = len(x) - 1
        pos = sp.exp(x[0] / t)
        mean = sp.Add(*[sp.exp(v / t) for v in x[1:]]) / n
        return sp.log(pos + n * (mean - tau_plus * pos) / (1 - tau_plus)) - x[0] / t

    fam = _spec_family("debiased_mutant", D.debiased_rows, definition=unclipped)
    derived = derive(fam)
    outcomes = []
    for k in (2, 3, 5):
        leg = derived.definition_legs.get(f"debiased_mutant.loss_K{k}")
        assert leg is not None
        outcomes.append(leg(CheckConfig(seed=7)).outcome)
    assert "fail" in outcomes


# ----------------------------------------------------------------------------- Monte Carlo


def _exact_bias(
    sims: tuple[float, ...],
    pp: tuple[float, ...],
    pm: tuple[float, ...],
    tau: float,
    t: float,
    n: int,
) -> float:
    """E[loss_N] - log N - L_inf by enumerating every count vector of the N negatives
    (3 classes), the loss written directly (float64)."""
    from scipy.special import gammaln

    k = D.law_constants(sims, pp, pm, tau, t)
    w = np.array([float(v) for v in k.w])
    p = np.array([float(v) for v in k.p])
    n0, n1 = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    n2 = n - n0 - n1
    ok = n2 >= 0
    n2 = np.where(ok, n2, 0)
    with np.errstate(divide="ignore"):
        logp = (
            gammaln(n + 1) - gammaln(n0 + 1) - gammaln(n1 + 1) - gammaln(n2 + 1)
            + n0 * np.log(p[0]) + n1 * np.log(p[1]) + n2 * np.log(p[2])
        )  # fmt: skip
    pmf = np.where(ok, np.exp(logp), 0.0)
    mbar = (n0 * w[0] + n1 * w[1] + n2 * w[2]) / n
    total = 0.0
    for j, a in enumerate(pp):
        if a > 0:
            g = np.maximum((mbar - tau * w[j]) / (1 - tau), math.exp(-1 / t))
            total += a * float(np.sum(pmf * (np.log(w[j] / n + g) - sims[j] / t)))
    return total - float(k.limit)


LAW = ((0.8, 0.1, -0.5), (1.0, 0.0, 0.0), (0.0, 0.5, 0.5), 0.2, 0.5)


def _coefficients() -> tuple[float, float]:
    cs = D.bias_coefficients(*LAW)
    assert cs is not None
    return float(cs[0]), float(cs[1])


def test_bias_expansion_against_exact_enumeration() -> None:
    c1, c2 = _coefficients()
    resid = {}
    for n in (256, 512):
        beta = _exact_bias(*LAW, n)
        resid[n] = beta - c1 / n - c2 / n**2
        # the remainder is O(N^-3): far below the second-order term
        assert abs(resid[n]) < 0.2 * abs(c2) / n**2
    # and it scales like N^-3 (the coefficients agree within 20%)
    assert resid[512] * 512**3 == pytest.approx(resid[256] * 256**3, rel=0.2)


def test_bias_expansion_without_the_prior_variance_factor_is_off() -> None:
    c1, c2 = _coefficients()
    k = D.law_constants(*LAW)
    tau = LAW[3]
    u = float(k.u[0])
    # the mutant forgets (1 - tau)^-2 in the variance term of c1
    c1_wrong = c1 + float(k.sigma2_p) / (2 * u**2) * (1 / (1 - tau) ** 2 - 1)
    beta = _exact_bias(*LAW, 512)
    assert abs(beta - c1 / 512 - c2 / 512**2) < 0.1 * abs((c1_wrong - c1) / 512)


def test_mc_leg_catches_a_prediction_without_the_variance_factor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = D.DebiasedBias()
    ok, num = D.mc_bias_check(config, 256, 4096, seed=11)
    assert ok, num
    real = D.bias_coefficients

    def wrong(*args: Any) -> Any:
        c1, c2 = real(*args)  # type: ignore[misc]
        k = D.law_constants(*args)
        tau = args[3]
        extra = sum(
            a * k.sigma2_p / (2 * u**2) * (1 / (1 - tau) ** 2 - 1)
            for a, u in zip(args[1], k.u, strict=True)
            if a > 0
        )
        return c1 + extra, c2

    monkeypatch.setattr(D, "bias_coefficients", wrong)
    ok2, num2 = D.mc_bias_check(D.DebiasedBias(), 256, 4096, seed=11)
    assert not ok2, num2


def test_scenario_validation_and_outputs() -> None:
    cls = D.DebiasedBias
    with pytest.raises(ValueError, match="sims must be cosine"):
        cls(sims=(2.0, 0.0, 0.0, 0.0, 0.0, 0.0)).validate()
    with pytest.raises(ValueError, match="p_plus must be"):
        cls(p_plus=(0.5, 0.0, 0.0, 0.0, 0.0, 0.0)).validate()
    with pytest.raises(ValueError, match="p_minus must have length"):
        cls(p_minus=(1.0,)).validate()
    with pytest.raises(ValueError, match="tau_plus must be in"):
        cls(tau_plus=1.0).validate()
    with pytest.raises(ValueError, match="temperature must be"):
        cls(temperature=0.0).validate()
    cfg = cls()
    prep = cfg.prepare(8, torch.device("cpu"))
    y, c = cfg.simulate(prep, 8, 1000, torch.Generator().manual_seed(0))
    assert y.shape == (1000, 2) and c.shape == (1000, 2, 2)
    assert (y[:, 1] >= 0).all() and (y[:, 1] > 0).any()  # the clip binds sometimes at N = 8
    # classes of probability 0 are never drawn (class 0, 1 negatives only as false negatives)
    idx = D._draw(prep["cdf_plus"], (5000,), torch.Generator().manual_seed(1))
    assert set(idx.tolist()) == {0, 1}


@pytest.mark.slow
def test_mc_cli_runs() -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "softnce_theory.cli",
            "mc",
            "debiased_bias",
            "--plugin",
            "softnce_theory.contrib.debiased",
            "--k",
            "4,16,64",
            "--max-samples",
            "2000",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "loss_bias" in res.stdout


def test_registering_the_family_imports_nothing_heavy() -> None:
    code = (
        "import sys, softnce_theory.contrib.debiased as D; D.FAMILY; "
        "print(sorted(m for m in ('torch', 'sympy', 'mpmath') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
