"""fakebench.metrics against scikit-learn / scikit-image, plus hand-built cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio
from sklearn import metrics as skm

from fakebench import metrics
from fakebench.errors import ConfigError, DataError


def cases():
    """Seeded (labels, scores): continuous, heavy ties, integer scores, perfect, inverted, tiny."""
    rng = np.random.default_rng(0)
    out = []
    y = rng.integers(0, 2, 300)
    out.append(("normal", y, rng.normal(y * 1.2 - 0.3, 1.0)))
    y = rng.integers(0, 2, 300)
    out.append(("rounded_ties", y, np.round(rng.normal(y * 1.0, 1.0), 0)))
    y = rng.integers(0, 2, 200)
    out.append(("three_values", y, rng.integers(-1, 2, 200).astype(float) + 0.5 * y))
    y = np.r_[np.zeros(50, int), np.ones(20, int)]
    out.append(("perfect", y, np.r_[rng.normal(-3, 1, 50), rng.normal(3, 0.5, 20)]))
    out.append(("inverted", y, -np.r_[rng.normal(-3, 1, 50), rng.normal(3, 0.5, 20)]))
    y = rng.integers(0, 2, 1000)
    out.append(("imbalanced", (rng.random(1000) < 0.05).astype(int), rng.normal(0, 1, 1000)))
    out.append(("tiny", np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.2, 0.9, -1.0, 0.2])))
    return out


CASES = cases()


@pytest.mark.parametrize("name, y, s", CASES, ids=[c[0] for c in CASES])
def test_ranking_metrics_match_sklearn(name, y, s):
    assert metrics.auc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert metrics.average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    fpr, tpr, _ = skm.roc_curve(y, s, drop_intermediate=False)
    for target in (0.0, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0):
        assert metrics.tpr_at_fpr(y, s, target) == pytest.approx(tpr[fpr <= target + 1e-12].max(), abs=1e-12)
    f2, t2, _ = metrics.roc_curve(y, s)
    np.testing.assert_allclose(f2, fpr)
    np.testing.assert_allclose(t2, tpr)


@pytest.mark.parametrize("name, y, s", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("threshold", [0.0, 0.2, -1.0])
def test_decision_metrics_match_sklearn(name, y, s, threshold):
    pred = (s > threshold).astype(int)
    assert metrics.accuracy(y, s, threshold) == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert metrics.balanced_accuracy(y, s, threshold) == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)


def test_threshold_equal_to_score_counts_as_real():
    assert metrics.accuracy([0, 1], [0.0, 0.0]) == 0.5
    assert metrics.accuracy([0, 1], [0.0, 1e-9]) == 1.0


def test_tpr_at_fpr_never_splits_a_tie_group():
    # one real and two fakes tied at the top: no ROC point between FPR 0 and 1/4
    y = np.array([0, 1, 1, 0, 0, 0, 1])
    s = np.array([5.0, 5.0, 5.0, 1.0, 0.0, -1.0, 2.0])
    assert metrics.tpr_at_fpr(y, s, 0.2) == 0.0
    assert metrics.tpr_at_fpr(y, s, 0.25) == 1.0
    assert metrics.auc(y, s) == pytest.approx(skm.roc_auc_score(y, s))


def brute_best_bacc(y, s):
    u = np.unique(s)
    cands = np.r_[u[0] - 1, (u[1:] + u[:-1]) / 2, u[-1]]
    return max(metrics.balanced_accuracy(y, s, t) for t in cands)


@pytest.mark.parametrize("name, y, s", CASES, ids=[c[0] for c in CASES])
def test_calibrate_threshold(name, y, s):
    t = metrics.calibrate_threshold(y, s, "balanced")
    assert metrics.balanced_accuracy(y, s, t) == pytest.approx(brute_best_bacc(y, s), abs=1e-12)
    t = metrics.calibrate_threshold(y, s, "fpr", target_fpr=0.05)
    fpr = np.mean(s[y == 0] > t)
    assert fpr <= 0.05 + 1e-12
    assert np.mean(s[y == 1] > t) == pytest.approx(metrics.tpr_at_fpr(y, s, 0.05), abs=1e-12)
    t = metrics.calibrate_threshold(y, s, "eer")
    fpr, fnr = np.mean(s[y == 0] > t), np.mean(s[y == 1] <= t)
    skf, skt, _ = skm.roc_curve(y, s, drop_intermediate=False)
    assert abs(fpr - fnr) == pytest.approx(np.min(np.abs(skf - (1 - skt))), abs=1e-12)
    assert not any(math.isclose(t, v) for v in np.unique(s))  # strictly between scores


def test_calibrated_threshold_separates_separable_scores():
    y = np.r_[np.zeros(5, int), np.ones(5, int)]
    s = np.r_[np.arange(5.0) - 10, np.arange(5.0) + 3]
    t = metrics.calibrate_threshold(y, s)
    assert -6 < t < 3 and metrics.balanced_accuracy(y, s, t) == 1.0
    with pytest.raises(ConfigError):
        metrics.calibrate_threshold(y, s, "youden")


def test_one_class_and_nan_give_nan_without_exceptions():
    y1, s = np.ones(6, int), np.linspace(-1, 1, 6)
    for fn in (metrics.auc, metrics.average_precision, metrics.balanced_accuracy, metrics.tpr_at_fpr,
               metrics.calibrate_threshold):
        assert math.isnan(fn(y1, s)), fn.__name__
        assert math.isnan(fn(np.zeros(6, int), s)), fn.__name__
        assert math.isnan(fn([], [])), fn.__name__
    assert metrics.accuracy(y1, s) == 0.5  # defined with one class
    assert math.isnan(metrics.accuracy([], []))
    assert math.isnan(metrics.auc([0, 1, 1], [0.1, np.nan, 0.3]))
    summary = metrics.summarize(y1, s, calibrated_threshold=0.0)
    assert math.isnan(summary["auc"]) and math.isnan(summary["tnr"]) and summary["tpr"] == 0.5
    assert summary["n_real"] == 0 and summary["n_fake"] == 6
    with pytest.raises(DataError):
        metrics.auc([0, 2], [0.1, 0.2])
    with pytest.raises(DataError):
        metrics.auc([0, 1], [0.1])


def test_infinite_scores_rank_correctly():
    y = np.array([0, 0, 1, 1])
    s = np.array([-np.inf, 0.0, np.inf, np.inf])
    assert metrics.auc(y, s) == 1.0 and metrics.tpr_at_fpr(y, s, 0.0) == 1.0
    t = metrics.calibrate_threshold(y, s)
    assert metrics.balanced_accuracy(y, s, t) == 1.0


def test_summarize_keys_and_values():
    name, y, s = CASES[0]
    out = metrics.summarize(y, s, threshold=0.0, calibrated_threshold=0.5)
    for key in ("auc", "ap", "acc", "bacc", "acc_cal", "bacc_cal", "tpr@1%fpr", "tpr@0.5%fpr", "tpr", "tnr",
                "tpr_cal", "tnr_cal", "n_real", "n_fake"):
        assert key in out
    assert "threshold" not in out  # the report sets the detector's own threshold
    assert out["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert out["acc_cal"] == pytest.approx(skm.accuracy_score(y, s > 0.5))
    assert out["tpr"] == pytest.approx(skm.recall_score(y, s > 0))
    assert out["tnr"] == pytest.approx(skm.recall_score(1 - y, s <= 0))
    assert out["n_real"] + out["n_fake"] == len(y) and isinstance(out["n_real"], int)
    assert all(isinstance(v, (float, int)) for v in out.values())
    assert math.isnan(metrics.summarize(y, s)["acc_cal"])


def test_attack_success_rate_hand_built():
    y = np.array([1, 1, 1, 1, 0, 0, 0])
    clean = np.array([2.0, 3.0, -1.0, 0.5, -2.0, 1.0, -0.5])
    adv = np.array([-1.0, 0.5, -2.0, 0.0, 3.0, 2.0, -0.1])
    ev = metrics.attack_success_rate(y, clean, adv, "evade")
    # fakes: after attack judged real = idx 0, 2, 3 (0.0 is not > 0) -> 3/4;
    # detected before = idx 0, 1, 3 -> of these 0 and 3 flipped -> 2/3
    assert ev == {"rate": 0.75, "rate_on_correct": pytest.approx(2 / 3), "n": 4, "n_correct": 3}
    sp = metrics.attack_success_rate(y, clean, adv, "spoof")
    # reals: judged fake after = idx 4, 5 -> 2/3; correct before = idx 4, 6 -> idx 4 flipped -> 1/2
    assert sp == {"rate": pytest.approx(2 / 3), "rate_on_correct": 0.5, "n": 3, "n_correct": 2}
    hi = metrics.attack_success_rate(y, clean, adv, "evade", threshold=1.0)
    assert hi["rate"] == 1.0 and hi["n_correct"] == 2 and hi["rate_on_correct"] == 1.0  # all adv <= 1
    none = metrics.attack_success_rate(np.zeros(3, int), np.zeros(3), np.zeros(3), "evade")
    assert none["n"] == 0 and math.isnan(none["rate"])
    with pytest.raises(ConfigError):
        metrics.attack_success_rate(y, clean, adv, "sideways")


def test_perturbation_norms_hand_built_and_psnr_vs_skimage():
    x = np.zeros((2, 3, 4, 5))
    a = x.copy()
    a[0, 0, 0, 0] = 3 / 255  # one pixel, one channel
    a[0, 2, 1, 1] = -0.4 / 255  # below half a grey level: not counted in l0
    a[0, :, 3, 4] = 0.1  # one pixel, all channels
    n = metrics.perturbation_norms(x, a)
    assert n["l0_count"].tolist() == [2, 0]
    np.testing.assert_allclose(n["l0"], [2 / 20, 0])
    np.testing.assert_allclose(n["l2"][0], math.sqrt((3 / 255) ** 2 + (0.4 / 255) ** 2 + 3 * 0.01))
    np.testing.assert_allclose(n["linf"], [0.1, 0])
    assert n["psnr"][1] == math.inf
    rng = np.random.default_rng(0)
    xr = rng.random((3, 3, 16, 16))
    xa = np.clip(xr + rng.normal(0, 0.02, xr.shape), 0, 1)
    n = metrics.perturbation_norms(torch.from_numpy(xr).float(), torch.from_numpy(xa).float())
    for i in range(3):
        assert n["psnr"][i] == pytest.approx(peak_signal_noise_ratio(xr[i], xa[i], data_range=1.0), abs=1e-4)
    np.testing.assert_allclose(n["linf"], np.abs(xa - xr).reshape(3, -1).max(1), atol=1e-6)
    assert metrics.perturbation_norms(xr[0], xa[0])["l2"].shape == (1,)
    with pytest.raises(ConfigError):
        metrics.perturbation_norms(xr, xa[:, :, :8])


def test_bootstrap_ci():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    s = rng.normal(y * 1.0, 1.0)
    lo, hi = metrics.bootstrap_ci(metrics.auc, y, s, n=200, seed=0)
    point = metrics.auc(y, s)
    assert lo < point < hi and 0.02 < hi - lo < 0.2
    assert metrics.bootstrap_ci(metrics.auc, y, s, n=200, seed=0) == (lo, hi)
    lo_s, hi_s = metrics.bootstrap_ci(metrics.auc, y[:80], s[:80], n=200, seed=0)
    assert hi_s - lo_s > hi - lo  # less data, wider interval
    assert all(math.isnan(v) for v in metrics.bootstrap_ci(metrics.auc, np.ones(5, int), np.arange(5.0), n=20))


def test_bootstrap_auc_ci_equals_the_generic_bootstrap():
    from fakebench.metrics import auc, bootstrap_auc_ci, bootstrap_ci

    rng = np.random.default_rng(3)
    y = np.r_[np.zeros(70), np.ones(50)].astype(int)
    s = np.round(rng.normal(0, 1, 120) + y, 1)  # rounded: many ties
    assert bootstrap_auc_ci(y, s, n=300, seed=5) == pytest.approx(bootstrap_ci(auc, y, s, n=300, seed=5), abs=1e-12)
    s[0] = np.nan  # falls back to the generic path
    assert bootstrap_auc_ci(y, s, n=20) == bootstrap_ci(auc, y, s, n=20)
