"""Detection and attack metrics, numpy in, python floats out.

Conventions: ``labels`` are 0 (real) / 1 (synthetic); ``scores`` are detector logits, larger
means more synthetic. A hard decision is ``score > threshold`` => synthetic (so a score equal
to the threshold counts as real). A metric that is undefined for the data (e.g. AUC with one
class only, or any NaN score) is ``float('nan')``; no exception is raised for that.

ROC ties: samples with equal scores are never separated. The ROC curve has one point per
distinct score (plus the origin), so a tie group moves the curve in one step, diagonally when
it mixes classes; AUC (trapezoids) then counts a tied (real, fake) pair as one half, as the
Mann-Whitney statistic and scikit-learn do. :func:`tpr_at_fpr` reads the curve at its points
only (no interpolation): the largest TPR among points with FPR <= target. This is the same
as taking ``roc_curve(..., drop_intermediate=False)`` from scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from .errors import ConfigError, DataError

_EPS = 1e-12  # slack when comparing rates with a target


# -- input handling ------------------------------------------------------------------------

def _arrays(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(y) != len(s):
        raise DataError(f"metrics: {len(y)} labels but {len(s)} scores")
    if len(y) and not np.isin(y, (0, 1)).all():
        bad = sorted(set(np.unique(y).tolist()) - {0, 1})[:5]
        raise DataError(f"metrics: labels must be 0 (real) or 1 (synthetic), found {bad}")
    return y.astype(np.int64), s


def _two_classes(y: np.ndarray, s: np.ndarray) -> bool:
    return bool(len(y)) and 0 < int(y.sum()) < len(y) and not np.isnan(s).any()


def _rate(mask: np.ndarray) -> float:
    return float(mask.mean()) if len(mask) else float("nan")


# -- ROC -----------------------------------------------------------------------------------

def roc_curve(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC points ``(fpr, tpr, score_cut)``, one per distinct score plus the origin.

    Point k predicts "synthetic" for ``score >= score_cut[k]`` (``score_cut[0] = +inf``).
    Both classes must be present (else DataError).
    """
    y, s = _arrays(labels, scores)
    if not _two_classes(y, s):
        raise DataError("roc_curve: needs both classes and no NaN scores")
    return _roc(y, s)


def _roc(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(-s, kind="mergesort")
    ss, ys = s[order], y[order]
    last = np.r_[np.flatnonzero(ss[1:] != ss[:-1]), len(ss) - 1]  # end of each tie group
    tps = np.cumsum(ys)[last].astype(np.float64)
    fps = (last + 1) - tps
    p, n = float(ys.sum()), float(len(ys) - ys.sum())
    return np.r_[0.0, fps / n], np.r_[0.0, tps / p], np.r_[np.inf, ss[last]]


def _decision_threshold(cuts: np.ndarray, k: int) -> float:
    """A threshold t with ``{score > t} == {score >= cuts[k]}`` for ROC point k."""
    d = cuts[1:]  # distinct scores, decreasing
    if k == 0:
        return float(d[0])  # nothing is > the maximum
    hi = float(d[k - 1])
    lo = float(d[k]) if k < len(d) else (hi - 1.0 if math.isfinite(hi) else -math.inf)
    mid = lo + (hi - lo) / 2.0
    return mid if (math.isfinite(mid) and lo <= mid < hi) else lo


def auc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve (ties count one half). NaN with one class."""
    y, s = _arrays(labels, scores)
    if not _two_classes(y, s):
        return float("nan")
    fpr, tpr, _ = _roc(y, s)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def average_precision(labels: Any, scores: Any) -> float:
    """Average precision, sum over distinct thresholds of (R_k - R_{k-1}) P_k (no
    interpolation; scikit-learn's definition). NaN with one class."""
    y, s = _arrays(labels, scores)
    if not _two_classes(y, s):
        return float("nan")
    fpr, tpr, _ = _roc(y, s)
    p, n = float(y.sum()), float(len(y) - y.sum())
    tps, fps = tpr[1:] * p, fpr[1:] * n
    precision = tps / (tps + fps)
    return float(np.sum(np.diff(tpr) * precision))


def tpr_at_fpr(labels: Any, scores: Any, fpr: float = 0.01) -> float:
    """Largest TPR over ROC points whose FPR is <= ``fpr`` (see the module docstring for
    ties). NaN with one class."""
    y, s = _arrays(labels, scores)
    if not _two_classes(y, s):
        return float("nan")
    f, t, _ = _roc(y, s)
    return float(t[f <= fpr + _EPS].max())


# -- hard decisions ------------------------------------------------------------------------

def accuracy(labels: Any, scores: Any, threshold: float = 0.0) -> float:
    """Fraction of correct decisions ``(score > threshold) == label``. NaN if empty."""
    y, s = _arrays(labels, scores)
    return _rate((s > threshold) == (y == 1))


def balanced_accuracy(labels: Any, scores: Any, threshold: float = 0.0) -> float:
    """Mean of TPR (synthetic detected) and TNR (real passed). NaN with one class."""
    y, s = _arrays(labels, scores)
    if not _two_classes(y, s):
        return float("nan")
    pred = s > threshold
    return float((pred[y == 1].mean() + (~pred[y == 0]).mean()) / 2.0)


def calibrate_threshold(labels: Any, scores: Any, method: str = "balanced", target_fpr: float = 0.05) -> float:
    """A logit threshold (decision ``score > t``) chosen on (labels, scores).

    - ``"balanced"``: maximizes balanced accuracy (Youden's J = TPR - FPR);
    - ``"fpr"``: largest TPR with FPR <= ``target_fpr``;
    - ``"eer"``: equal error rate, the ROC point minimizing |FPR - FNR|.

    Only ROC points are considered; among equally good points the one with the highest
    threshold wins. The returned value lies between two adjacent distinct scores (their
    midpoint), so tied samples stay on one side. NaN with one class.
    """
    if method not in ("balanced", "fpr", "eer"):
        raise ConfigError(f"calibrate_threshold method: expected balanced, fpr or eer, got {method!r}")
    if method == "fpr" and not (0.0 <= float(target_fpr) <= 1.0):
        raise ConfigError(f"target_fpr: expected a rate in [0, 1], got {target_fpr!r}")
    y, s = _arrays(labels, scores)
    if not _two_classes(y, s):
        return float("nan")
    f, t, cuts = _roc(y, s)
    if method == "balanced":
        k = int(np.argmax(t - f))
    elif method == "fpr":
        ok = np.flatnonzero(f <= float(target_fpr) + _EPS)
        k = int(ok[np.argmax(t[ok])])
    else:
        k = int(np.argmin(np.abs(f - (1.0 - t))))
    return _decision_threshold(cuts, k)


def threshold_at_fpr(real_scores: Any, fpr: float) -> float:
    """The lowest threshold (decision ``score > t``) that flags at most ``fpr`` of the real
    images' ``real_scores``: the midpoint below the ``floor(fpr n)`` highest scores (ties are
    kept on one side, so the realised rate may be lower, never higher)."""
    s = np.sort(np.asarray(real_scores, dtype=np.float64).ravel())
    if not len(s) or not np.isfinite(s).all():
        raise ConfigError("threshold_at_fpr: needs finite scores of at least one real image")
    if not 0.0 <= float(fpr) < 1.0:
        raise ConfigError(f"fpr: expected a rate in [0, 1), got {fpr!r}")
    allowed = int(np.floor(float(fpr) * len(s) + 1e-9))
    hi = s[len(s) - allowed] if allowed else np.inf
    lo = s[len(s) - allowed - 1]
    below = s[s < hi]
    lo = below[-1] if len(below) else lo  # ties at hi move below it
    return float(lo + (hi - lo) / 2) if np.isfinite(hi) else float(s[-1])


# -- attacks -------------------------------------------------------------------------------

def attack_success_rate(labels: Any, clean_scores: Any, adv_scores: Any, direction: str,
                        threshold: float = 0.0) -> dict[str, float | int]:
    """How often an attack flips the decision in its direction.

    - ``evade``: among synthetic samples, the fraction judged real after the attack
      (``adv <= threshold``);
    - ``spoof``: among real samples, the fraction judged synthetic after (``adv > threshold``);
    - ``both``: among all samples, the fraction judged wrongly after.

    ``rate_on_correct`` counts only the attacked samples that were decided correctly before
    the attack. Returns ``{"rate", "rate_on_correct", "n", "n_correct"}`` (rates NaN when
    there is nothing to count).
    """
    y, clean = _arrays(labels, clean_scores)
    _, adv = _arrays(labels, adv_scores)
    if direction == "evade":
        attacked = y == 1
    elif direction == "spoof":
        attacked = y == 0
    elif direction == "both":
        attacked = np.ones(len(y), dtype=bool)
    else:
        raise ConfigError(f"attack_success_rate direction: expected evade, spoof or both, got {direction!r}")
    wrong_after = (adv > threshold) != (y == 1)
    correct_before = (clean > threshold) == (y == 1)
    on_correct = attacked & correct_before
    return {"rate": _rate(wrong_after[attacked]), "rate_on_correct": _rate(wrong_after[on_correct]),
            "n": int(attacked.sum()), "n_correct": int(on_correct.sum())}


def _to_numpy(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor, without importing torch here
        a = a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def perturbation_norms(x: Any, x_adv: Any) -> dict[str, np.ndarray]:
    """Per-sample size of ``x_adv - x`` for (N, C, H, W) (or (C, H, W)) arrays/tensors in [0, 1].

    Returns arrays of shape (N,): ``l0`` fraction of pixels where any channel changed by more
    than 0.5/255 (i.e. the 8-bit value changes); ``l0_count`` the number of such pixels;
    ``l2`` Euclidean norm over all values; ``linf`` largest absolute change; ``psnr`` in dB
    for a peak of 1 (``inf`` when identical).
    """
    a, b = _to_numpy(x), _to_numpy(x_adv)
    if a.shape != b.shape:
        raise ConfigError(f"perturbation_norms: shapes differ, {a.shape} vs {b.shape}")
    if a.ndim == 3:
        a, b = a[None], b[None]
    if a.ndim != 4:
        raise ConfigError(f"perturbation_norms: expected (N, C, H, W) or (C, H, W), got {a.shape}")
    d = (b - a).reshape(len(a), a.shape[1], -1)
    changed = (np.abs(d) > 0.5 / 255.0).any(axis=1)
    mse = (d**2).mean(axis=(1, 2)) if d.size else np.zeros(len(a))
    with np.errstate(divide="ignore"):
        psnr = np.where(mse > 0, 10.0 * np.log10(1.0 / np.where(mse > 0, mse, 1.0)), np.inf)
    return {
        "l0": changed.mean(axis=1) if changed.shape[1] else np.zeros(len(a)),
        "l0_count": changed.sum(axis=1).astype(np.int64),
        "l2": np.sqrt((d**2).sum(axis=(1, 2))),
        "linf": np.abs(d).max(axis=(1, 2)) if d.shape[2] else np.zeros(len(a)),
        "psnr": psnr,
    }


# -- summaries -----------------------------------------------------------------------------

def summarize(labels: Any, scores: Any, threshold: float = 0.0, calibrated_threshold: float | None = None) -> dict[str, Any]:
    """The standard table row for one set of scores.

    Keys: ``auc``, ``ap``, ``acc``/``bacc``/``tpr``/``tnr`` at ``threshold``,
    ``acc_cal``/``bacc_cal``/``tpr_cal``/``tnr_cal`` at ``calibrated_threshold`` (NaN when it
    is None), ``tpr@1%fpr``, ``tpr@0.5%fpr``, ``n_real``, ``n_fake``.
    """
    y, s = _arrays(labels, scores)
    fake, real = y == 1, y == 0
    out: dict[str, Any] = {
        "auc": auc(y, s), "ap": average_precision(y, s),
        "acc": accuracy(y, s, threshold), "bacc": balanced_accuracy(y, s, threshold),
        "tpr": _rate(s[fake] > threshold), "tnr": _rate(s[real] <= threshold),
        "tpr@1%fpr": tpr_at_fpr(y, s, 0.01), "tpr@0.5%fpr": tpr_at_fpr(y, s, 0.005),
    }
    cal = calibrated_threshold
    if cal is None or not math.isfinite(float(cal)):
        out.update({"acc_cal": float("nan"), "bacc_cal": float("nan"), "tpr_cal": float("nan"),
                    "tnr_cal": float("nan")})
    else:
        out.update({"acc_cal": accuracy(y, s, cal), "bacc_cal": balanced_accuracy(y, s, cal),
                    "tpr_cal": _rate(s[fake] > cal), "tnr_cal": _rate(s[real] <= cal)})
    out.update({"n_real": int(real.sum()), "n_fake": int(fake.sum())})
    return out


def stratified_resamples(labels: Any, n: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Index arrays of ``n`` bootstrap resamples of ``labels``, each class resampled with
    replacement to its own size (so every resample has both classes whenever the data has)."""
    y = np.asarray(labels).reshape(-1)
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in (0, 1)]
    for _ in range(int(n)):
        yield np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups if len(g)])


def _percentiles(vals: list[float], alpha: float) -> tuple[float, float]:
    v = np.asarray(vals, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return float("nan"), float("nan")
    lo, hi = np.quantile(v, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


def _check_boot(n: int, alpha: float) -> None:
    if int(n) < 1 or not (0.0 < float(alpha) < 1.0):
        raise ConfigError(f"bootstrap_ci: need n >= 1 and 0 < alpha < 1, got n={n}, alpha={alpha}")


def bootstrap_ci(fn: Callable[[np.ndarray, np.ndarray], float], labels: Any, scores: Any, n: int = 1000,
                 alpha: float = 0.05, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` confidence interval of ``fn(labels, scores)``.

    Resampling is stratified by label (:func:`stratified_resamples`). Resamples where ``fn``
    is NaN are dropped; ``(nan, nan)`` if none is finite or the data is empty.
    """
    _check_boot(n, alpha)
    y, s = _arrays(labels, scores)
    if not len(y):
        return float("nan"), float("nan")
    return _percentiles([float(fn(y[idx], s[idx])) for idx in stratified_resamples(y, n, seed)], alpha)


def bootstrap_auc_ci(labels: Any, scores: Any, n: int = 1000, alpha: float = 0.05, seed: int = 0
                     ) -> tuple[float, float]:
    """:func:`bootstrap_ci` of :func:`auc`, the same resamples, computed from per-resample
    counts instead of re-sorting: a resample's AUC is the Mann-Whitney statistic over the
    tie groups of the original scores, ``sum_g P_g (N_below_g + N_g / 2) / (n_pos n_neg)``,
    with ``P_g``, ``N_g`` the resample's synthetic / real counts in group ``g`` (ties count one
    half, as in :func:`auc`). Scores with NaN fall back to :func:`bootstrap_ci`."""
    _check_boot(n, alpha)
    y, s = _arrays(labels, scores)
    if not _two_classes(y, s):
        return bootstrap_ci(auc, y, s, n=n, alpha=alpha, seed=seed)
    _, group = np.unique(s, return_inverse=True)
    g = int(group.max()) + 1
    pos, neg = y == 1, y == 0
    n_pos, n_neg = float(pos.sum()), float(neg.sum())
    vals = []
    for idx in stratified_resamples(y, n, seed):
        gp = group[idx][pos[idx]]
        gn = group[idx][neg[idx]]
        cp = np.bincount(gp, minlength=g).astype(np.float64)
        cn = np.bincount(gn, minlength=g).astype(np.float64)
        below = np.cumsum(cn) - cn
        vals.append(float(cp @ (below + 0.5 * cn)) / (n_pos * n_neg))
    return _percentiles(vals, alpha)


def bootstrap_diff_ci(stat_a: Callable[[np.ndarray], float], labels_a: Any, stat_b: Callable[[np.ndarray], float],
                      labels_b: Any | None = None, n: int = 1000, alpha: float = 0.05, seed: int = 0
                      ) -> tuple[float, float, float]:
    """``(diff, low, high)``: ``stat_b(all) - stat_a(all)`` and its percentile bootstrap interval.

    ``stat_x(idx)`` computes the statistic on the samples ``idx`` of its own data. Paired
    (``labels_b`` None: the same samples in the same order, e.g. two runs over one dataset):
    both statistics see the same stratified resample, so the interval reflects only how the
    two differ sample by sample (identical data give exactly ``(0, 0, 0)``). Unpaired: each
    side is resampled on its own.
    """
    _check_boot(n, alpha)
    ya = np.asarray(labels_a).reshape(-1)
    diff = float(stat_b(np.arange(len(ya if labels_b is None else np.asarray(labels_b).reshape(-1))))) - \
        float(stat_a(np.arange(len(ya))))
    if labels_b is None:
        vals = [float(stat_b(idx)) - float(stat_a(idx)) for idx in stratified_resamples(ya, n, seed)]
    else:
        yb = np.asarray(labels_b).reshape(-1)
        vals = [float(stat_b(ib)) - float(stat_a(ia)) for ia, ib in
                zip(stratified_resamples(ya, n, seed), stratified_resamples(yb, n, seed + 1))]
    lo, hi = _percentiles(vals, alpha)
    return diff, lo, hi
