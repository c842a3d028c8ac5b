"""Monte Carlo engine, part 1: statistics, samplers, exact small cases, predictions.

Statistical assertions use |z| <= 4.5 (per comparison false-alarm rate ~7e-6) with fixed seeds,
so they are deterministic in practice and still catch any bias larger than a few standard errors.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from mpmath import mp

from softnce_theory.numerics.montecarlo import SCENARIOS, Moments, make_config, run_scenario
from softnce_theory.numerics.montecarlo import exact as ex
from softnce_theory.numerics.montecarlo._sampling import (
    DiscreteLaw,
    chunk_seed,
    gamma,
    generator,
    normal,
)
from softnce_theory.numerics.montecarlo.mi import MIDiscrete, MIGaussian
from softnce_theory.numerics.montecarlo.nce import LogMeanExp, RankingNCE, SampledSoftmax
from softnce_theory.numerics.montecarlo.soft_target import SoftTarget, dirichlet_mgf, mixup_mgf
from softnce_theory.numerics.montecarlo.supcon import (
    SupConComposition,
    sincere_anchor,
    supcon_anchor,
)

CPU = torch.device("cpu")
ZMAX = 4.5


def _run(cfg, k, n=20_000, seed=3, **kw):
    return run_scenario(
        cfg, ks=[k], seed=seed, max_samples=n, chunk=1 << 16, device="cpu", **kw
    ).results[0]


def _assert_matches(res, exact_vals):
    for o, e in zip(res.outputs, exact_vals, strict=True):
        assert o.se > 0, o.name
        z = (o.estimate - e) / o.se
        assert abs(z) <= ZMAX, (
            f"{o.name}: MC {o.estimate:.6g} ± {o.se:.2g} vs exact {e:.6g} (z={z:.2f})"
        )
        zp = (o.plain_estimate - e) / o.plain_se
        assert abs(zp) <= ZMAX, f"{o.name} (plain): z={zp:.2f}"


# ------------------------------------------------------------------------------------------------
# statistics
# ------------------------------------------------------------------------------------------------
def test_moments_merge_equals_pooled_and_roundtrips_exactly():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(1000, 3)) * [1, 10, 0.1] + 5
    c = rng.normal(size=(1000, 3, 2))
    whole = Moments.from_samples(y, c)
    parts = [Moments.from_samples(y[i : i + 137], c[i : i + 137]) for i in range(0, 1000, 137)]
    merged = Moments.empty(3, 2)
    for p in parts:
        merged = merged.merge(p)
    assert merged.n == 1000
    for a, b in (
        (merged.mean_y, whole.mean_y),
        (merged.m_yy, whole.m_yy),
        (merged.m_yc, whole.m_yc),
    ):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(merged.m_cc, whole.m_cc, rtol=1e-12, atol=1e-12)
    back = Moments.from_json(merged.to_json())
    assert np.array_equal(back.pack(), merged.pack())  # bit-exact JSON round trip
    assert np.array_equal(Moments.unpack(merged.pack(), 3, 2).pack(), merged.pack())


def test_constant_column_has_exact_mean_and_zero_variance():
    y = np.full((50, 1), 0.1 + 0.2)
    m = Moments.from_samples(y, np.zeros((50, 1, 1)))
    assert m.mean_y[0] == 0.1 + 0.2 and m.m_yy[0] == 0.0


def test_control_variate_estimator_removes_linear_noise():
    rng = np.random.default_rng(1)
    c = rng.normal(size=20_000)  # exactly mean-zero control
    y = 2.0 + 3.0 * c + 0.01 * rng.normal(size=c.size)
    est = Moments.from_samples(y[:, None], c[:, None, None]).estimates(use_cv=True)
    assert abs(est.value[0] - 2.0) < 5 * math.sqrt(est.var[0] / c.size)
    assert est.vr[0] > 1e4
    plain = Moments.from_samples(y[:, None], c[:, None, None]).estimates(use_cv=False)
    assert plain.vr[0] == 1 and plain.value[0] == y.mean()


def test_chunk_seed_depends_on_every_coordinate():
    base = chunk_seed(1, "ranking_nce", 10, 0)
    others = {chunk_seed(2, "ranking_nce", 10, 0), chunk_seed(1, "supcon", 10, 0)}
    others |= {chunk_seed(1, "ranking_nce", 11, 0), chunk_seed(1, "ranking_nce", 10, 1)}
    assert base not in others and len(others) == 4 and 0 <= base < 2**63


# ------------------------------------------------------------------------------------------------
# samplers
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "probs",
    [
        (0.5, 0.3, 0.2),
        (0.0, 0.25, 0.0, 0.75, 0.0),
        tuple(np.full(7, 1 / 7)),
        tuple(np.r_[np.full(999, 1e-7), 1 - 999e-7]),  # many classes in one guide bucket
    ],
)
def test_discrete_law_inverts_the_cdf_exactly(probs):
    law = DiscreteLaw(probs, CPU, guide_bits=4)
    u = torch.rand(20_000, generator=generator(CPU, 5), dtype=torch.float64)
    cdf = law.cdf
    edges = torch.cat([cdf, cdf - 1e-17, torch.tensor([0.0, 1 - 2**-53], dtype=torch.float64)])
    u = torch.cat([u, edges.clamp(0, 1 - 2**-53)])
    want = torch.searchsorted(cdf, u, right=True)
    assert torch.equal(law.invert(u), want)
    p = torch.tensor(probs, dtype=torch.float64)
    assert not bool((p[law.invert(u)] == 0).any())  # zero-probability classes are never drawn


def test_multinomial_counts_sum_and_moments():
    q = (0.5, 0.3, 0.15, 0.05)
    law = DiscreteLaw(q, CPU)
    k, n = 40, 40_000
    cnt = law.counts(n, k, generator(CPU, 7)).numpy()
    assert np.all(cnt.sum(1) == k) and np.all(cnt >= 0) and np.all(cnt == np.round(cnt))
    qa = np.array(q)
    se = np.sqrt(k * qa * (1 - qa) / n)
    assert np.all(np.abs(cnt.mean(0) - k * qa) <= ZMAX * se)
    np.testing.assert_allclose(cnt.var(0), k * qa * (1 - qa), rtol=0.05)
    idx = law.sample((n, k), generator(CPU, 8))
    cnt2 = law.counts_from_indices(idx).numpy()
    assert np.all(cnt2.sum(1) == k)
    assert np.all(np.abs(cnt2.mean(0) - k * qa) <= ZMAX * se)


def test_gamma_and_normal_samplers_have_the_right_moments():
    g = generator(CPU, 11)
    z = normal((100_001,), g, CPU).numpy()
    assert z.shape == (100_001,)
    assert abs(z.mean()) < ZMAX / math.sqrt(z.size) and abs(z.var() - 1) < 0.02
    for a in (0.3, 0.8, 2.5):
        x = gamma(a, (40_000,), g, CPU).numpy()
        assert np.all(x > 0)
        assert abs(x.mean() - a) < ZMAX * math.sqrt(a / x.size)
        assert abs(x.var() / a - 1) < 0.08
    alpha = torch.tensor([0.5, 2.0], dtype=torch.float64)
    x = gamma(alpha, (20_000, 2), g, CPU).numpy()
    np.testing.assert_allclose(x.mean(0), [0.5, 2.0], rtol=0.03)


# ------------------------------------------------------------------------------------------------
# exact small cases vs Monte Carlo
# ------------------------------------------------------------------------------------------------
LOG3 = (0.5, -0.2, 0.1)
Q3 = (0.5, 0.3, 0.2)


@pytest.mark.parametrize("sampler", ["direct", "counts"])
@pytest.mark.parametrize("corr", [True, False])
def test_ranking_nce_matches_enumeration(sampler, corr):
    cfg = RankingNCE(
        sampler=sampler, log_q_correction=corr, data=(0.2, 0.5, 0.3), logits=LOG3, noise=Q3
    )
    _assert_matches(_run(cfg, 4), ex.ranking_nce_exact(cfg, 4))


@pytest.mark.parametrize("sampler", ["direct", "counts"])
def test_sampled_softmax_matches_enumeration(sampler):
    cfg = SampledSoftmax(sampler=sampler, logits=LOG3, noise=Q3)
    _assert_matches(_run(cfg, 3), ex.sampled_softmax_exact(cfg, 3))


def test_mi_discrete_matches_enumeration():
    cfg = MIDiscrete(joint=((0.3, 0.1, 0.05), (0.1, 0.35, 0.1)))
    _assert_matches(_run(cfg, 5, seed=4), ex.mi_discrete_exact(cfg, 5))
    res = _run(cfg, 1)  # I_NCE(1) = 0 exactly: the gap is I with zero variance
    assert res.outputs[0].se == 0 and res.outputs[0].estimate == pytest.approx(cfg.mi(), abs=1e-15)


def test_supcon_sincere_match_enumeration():
    cfg = SupConComposition(
        n_negatives=5,
        closest_logit=2.0,
        pos_values=(0.0, 1.0),
        pos_probs=(0.6, 0.4),
        neg_values=(-1.0, 0.5),
        neg_probs=(0.7, 0.3),
    )
    _assert_matches(_run(cfg, 3), ex.supcon_exact(cfg, 3))


def test_soft_target_mixup_matches_quadrature_at_k1():
    cfg = SoftTarget(logits=LOG3, noise=Q3)
    _assert_matches(_run(cfg, 1, n=8_000), ex.soft_target_mixup_exact_k1(cfg, nodes=24))


def test_log_mean_exp_matches_quadrature():
    cfg = LogMeanExp(sigma=0.7)
    _assert_matches(_run(cfg, 2), [ex.log_mean_exp_exact(cfg, 2)])


# ------------------------------------------------------------------------------------------------
# exact constants and predictions
# ------------------------------------------------------------------------------------------------
def test_dirichlet_mgf_reduces_to_kummer_for_two_classes():
    with mp.workdps(40):
        h = [mp.mpf("1.3"), mp.mpf("-0.4")]
        beta = [mp.mpf("0.7"), mp.mpf("2.2")]
        m, grad = dirichlet_mgf(h, beta)
        want = mp.exp(h[1]) * mp.hyp1f1(beta[0], beta[0] + beta[1], h[0] - h[1])
        assert abs(m / want - 1) < mp.mpf(10) ** -30
        d0 = mp.diff(lambda t: dirichlet_mgf([t, h[1]], beta)[0], h[0])
        assert abs(grad[0] / d0 - 1) < mp.mpf(10) ** -15


def test_mixup_mgf_matches_direct_quadrature():
    with mp.workdps(25):
        h = [mp.mpf("0.9"), mp.mpf("-0.5"), mp.mpf("0.2")]
        q = [mp.mpf("0.5"), mp.mpf("0.3"), mp.mpf("0.2")]
        b = mp.mpf("0.8")
        m, grad = mixup_mgf(h, q, b)
        dens = lambda lam: lam ** (b - 1) * (1 - lam) ** (b - 1) / mp.beta(b, b)  # noqa: E731
        want = mp.fsum(
            q[a]
            * q[c]
            * mp.quad(
                lambda lam, a=a, c=c: dens(lam) * mp.exp(lam * h[a] + (1 - lam) * h[c]), [0, 1]
            )
            for a in range(3)
            for c in range(3)
        )
        assert abs(m / want - 1) < mp.mpf(10) ** -12
        d1 = mp.diff(lambda t: mixup_mgf([h[0], t, h[2]], q, b)[0], h[1])
        assert abs(grad[1] / d1 - 1) < mp.mpf(10) ** -10


def test_sampled_softmax_first_order_prediction_is_minus_chi2_over_2m():
    cfg = SampledSoftmax()
    o = np.array(cfg.logits)
    p = np.exp(o - o.max())
    p /= p.sum()
    q = np.array(cfg.noise)
    chi2 = (p * p / q).sum() - 1
    preds = cfg.predictions(50)
    assert preds[0].first == pytest.approx(-chi2 / 100, rel=1e-12)
    g = p / 50 * (1 + chi2 - p / q)
    np.testing.assert_allclose([float(x.first or 0.0) for x in preds[1:]], g, rtol=1e-10)


def test_predictions_converge_to_measurement_at_large_k():
    """At K = 1000 the second-order prediction of the loss bias is within a few SE, and the
    first-order gradient prediction too (counts sampler: exact and fast)."""
    cfg = make_config("sampled_softmax", sampler="counts")
    res = _run(cfg, 1000, n=30_000)
    assert abs(res.outputs[0].z_second) <= ZMAX
    assert max(abs(o.z_first) for o in res.outputs[1:]) <= ZMAX
    assert min(o.variance_reduction for o in res.outputs) > 1000


def test_ranking_nce_gradient_bias_vanishes_at_the_truth():
    """Ranking NCE is consistent for any K (Ma & Collins): with the log-q correction and the
    positive drawn from softmax(o), E[grad L_K] = grad L_inf = 0, so the bias is 0 at every K."""
    cfg = make_config("ranking_nce", sampler="counts")
    res = _run(cfg, 7)
    for o in res.outputs[1:]:
        assert abs(o.pred_first) < 1e-15
        assert abs(o.estimate) <= ZMAX * o.se


def test_soft_target_limit_is_below_soft_ce_plus_constant():
    cfg = make_config("soft_target")
    cst = cfg.constants()
    assert cst["limit_mean_target"] < cst["soft_ce_mean_target_plus_const"]
    assert cst["log_M"] < cst["jensen_bound_log_sum_Ealpha_exp_g"]
    np.testing.assert_allclose(sum(cst["grad_limit"]), 1.0, rtol=1e-12)  # E[alpha W]/M sums to 1


def test_mi_gaussian_constants_and_ceiling():
    cfg = MIGaussian(rho=0.9, dim=3)
    assert cfg.mi() == pytest.approx(-1.5 * math.log(1 - 0.81))
    assert cfg.chi2() == pytest.approx((1 - 0.81) ** -3 - 1)
    res = _run(cfg, 8, n=4000)
    assert res.extras["i_nce"] <= math.log(8) + 1e-12  # the log K ceiling, I = 2.49 > log 8


# ------------------------------------------------------------------------------------------------
# SupCon / SINCERE formulas vs autograd of the definitions
# ------------------------------------------------------------------------------------------------
def test_supcon_sincere_closed_form_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    pos = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    neg = torch.randn(4, 7, generator=g, dtype=torch.float64)

    def supcon_def(p, n):
        allv = torch.cat([p, n], 1)
        return -(torch.log_softmax(allv, 1)[:, : p.shape[1]]).mean(1)

    def sincere_def(p, n):
        terms = [
            -torch.log_softmax(torch.cat([p[:, j : j + 1], n], 1), 1)[:, 0]
            for j in range(p.shape[1])
        ]
        return torch.stack(terms, 1).mean(1)

    for closed, definition in ((supcon_anchor, supcon_def), (sincere_anchor, sincere_def)):
        loss, grad = closed(pos.detach(), neg)
        ref = definition(pos, neg)
        (auto,) = torch.autograd.grad(ref.sum(), pos)
        torch.testing.assert_close(loss, ref.detach(), rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(grad, auto, rtol=1e-12, atol=1e-13)
    _, g_si = sincere_anchor(pos.detach(), neg)
    assert bool((g_si < 0).all())  # SINCERE never repels a positive


def test_supcon_repulsion_grows_with_batch_composition():
    cfg = make_config("supcon")
    run = run_scenario(cfg, ks=[2, 16], seed=0, max_samples=4000, device="cpu")
    g2, g16 = (r.output("supcon_grad_closest").estimate for r in run.results)
    s2, s16 = (r.output("sincere_grad_closest").estimate for r in run.results)
    assert 0 < g2 < g16  # SupCon repels the closest positive, more so with more positives
    assert s2 < 0 and s16 < 0 and abs(s16) < abs(s2)  # SINCERE attracts, ~1/|P|


# ------------------------------------------------------------------------------------------------
# configuration errors
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("ranking_nce", {"noise": (0.5, 0.5)}, "noise must have length"),
        ("ranking_nce", {"sampler": "fast"}, "sampler"),
        ("ranking_nce", {"bogus": 1}, "unknown parameter"),
        ("sampled_softmax", {"noise": (1.0,) + (0.0,) * 9}, "noise must be > 0"),
        ("soft_target", {"smoothing": 1.0}, "smoothing"),
        ("soft_target", {"targets": "cutmix"}, "targets"),
        ("mi_gaussian", {"rho": 1.0}, "rho"),
        ("mi_discrete", {"joint": ((0.5, 0.0), (0.5, 0.0))}, "no all-zero"),
        ("supcon", {"pos_values": (1.0,)}, "together"),
        ("nope", {}, "unknown scenario"),
    ],
)
def test_bad_configs_are_refused(name, params, match):
    with pytest.raises(ValueError, match=match):
        make_config(name, **params)


def test_run_argument_validation():
    cfg = make_config("log_mean_exp")
    for kw, match in (
        ({"ks": [0]}, "K must be"),
        ({"ks": [2, 2]}, "distinct"),
        ({"ks": [2], "max_samples": 1}, "max_samples"),
        ({"ks": [2], "target_rel": -1.0}, "target_rel"),
        ({"ks": [2], "device": "tpu"}, "device"),
    ):
        with pytest.raises(ValueError, match=match):
            run_scenario(cfg, **kw)


def test_every_scenario_runs_and_is_json_able():
    import json

    for name, cls in SCENARIOS.items():
        cfg = cls()
        k = 2 if name != "supcon" else 3
        run = run_scenario(
            cfg, ks=[k], seed=1, max_samples=64, min_samples=32, chunk=4096, device="cpu"
        )
        text = json.dumps(run.to_json(), allow_nan=False)
        assert json.loads(text)["results"][0]["n"] >= 32
        assert len(run.results[0].outputs) == len(cfg.output_names())
        assert all(p.first is None or math.isfinite(p.first) for p in cfg.predictions(k))
    assert mpmath.mp.dps == 15  # constants are computed under workdps, global precision untouched
