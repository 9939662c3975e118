"""Probe training for the CLIP detectors (:mod:`fakebench.detectors.clip`): the frozen
backbone embeds each image once (features cached on disk by
:mod:`fakebench.detectors.feature_cache`), then a linear head is fitted on the features and
written into the detector with :meth:`~fakebench.detectors.clip.CLIPLinearDetector.set_head`.

- ``univfd``: :func:`fit_univfd_head`, L2-regularised logistic regression on standardised
  features (the standardisation folded into the head);
- ``clipdet``: :func:`fit_clipdet_head`, a linear SVM whose margin is mapped to a
  log-likelihood ratio by Platt scaling (:func:`platt_fit`) on cross-validated margins, the
  training prior removed; SVM and calibration fold into the one linear head.

:func:`train_probe` picks the fit by detector type and reports images used, cache hits and
timings.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..detectors.clip import CLIPDet, CLIPLinearDetector, UnivFD
from ..detectors.feature_cache import ExtractStats, FeatureCache, extract_cached
from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# the linear fits
# --------------------------------------------------------------------------------------------
def platt_fit(margins: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt (1999) scaling: (a, b) with P(fake | m) = sigmoid(a m + b), fitted by logistic
    regression on Platt's smoothed targets t+ = (N+ + 1)/(N+ + 2), t- = 1/(N- + 2), which keeps
    a finite on separable data."""
    from sklearn.linear_model import LogisticRegression

    m = np.asarray(margins, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(labels).astype(int)
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    t = np.where(y == 1, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))
    X2 = np.concatenate([m, m])
    y2 = np.concatenate([np.ones(len(m), int), np.zeros(len(m), int)])
    w2 = np.concatenate([t, 1.0 - t])
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(X2, y2, sample_weight=w2)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def fit_univfd_head(det: CLIPLinearDetector, features: np.ndarray, labels: np.ndarray, C: float = 1.0,
                    max_iter: int = 5000, seed: int = 0) -> dict[str, Any]:
    """L2-regularised logistic regression (strength 1/C) on standardised features; the
    standardisation is folded into ``det``'s linear head, so C does not depend on the feature
    scale."""
    from sklearn.linear_model import LogisticRegression

    X = features.astype(np.float64)
    mu, sd = X.mean(0), X.std(0) + 1e-8
    clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    clf.fit((X - mu) / sd, labels)
    w = clf.coef_[0] / sd
    det.set_head(w, clf.intercept_[0] - float(w @ mu))
    det.meta["head"] = "probe:logistic"
    return {"method": "logistic", "C": C, "train_accuracy": float(clf.score((X - mu) / sd, labels))}


def _svm_margins(make_svm: Callable[[], Any], X: np.ndarray, y: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, int]:
    """Cross-validated SVM margins and the number of folds used (0: too few pairs to
    cross-validate, so the margins are the training ones)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    k = min(int(folds), int((y == 0).sum()), int((y == 1).sum()))
    if k >= 2:
        cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return cross_val_predict(make_svm(), X, y, cv=cv, method="decision_function"), k
    return make_svm().fit(X, y).decision_function(X), 0


def fit_clipdet_head(det: CLIPLinearDetector, features: np.ndarray, labels: np.ndarray, C: float = 1.0,
                     folds: int = 5, seed: int = 0, max_iter: int = 10000) -> dict[str, Any]:
    """Linear SVM + Platt calibration to an LLR, folded into ``det``'s linear head:
    LLR = a m + b - log(n_fake / n_real), with (a, b) from :func:`platt_fit` on cross-validated
    margins m (see :class:`fakebench.detectors.clip.CLIPDet`)."""
    from sklearn.svm import LinearSVC

    X, y = features.astype(np.float64), np.asarray(labels).astype(int)
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())

    def svm() -> LinearSVC:
        return LinearSVC(C=C, max_iter=max_iter, random_state=seed)

    margins, used_folds = _svm_margins(svm, X, y, folds, seed)
    a, b = platt_fit(margins, y)
    if a <= 0:
        log.warning("clipdet: calibration slope %.3g <= 0 (no separation in cross-validation); using 1e-3", a)
        a = 1e-3
    final = svm().fit(X, y)
    prior = math.log(n1 / n0)
    det.set_head(a * final.coef_[0], a * final.intercept_[0] + b - prior)
    det.meta["head"] = "probe:linear-svm+platt-llr"
    det.meta["calibration"] = {"a": a, "b": b, "prior_log_odds": prior, "folds": used_folds}
    return {"method": "linear-svm+platt", "C": C, "platt_a": a, "platt_b": b, "prior_log_odds": prior,
            "train_accuracy": float(final.score(X, y))}


#: the head fit of each CLIP probe family
HEAD_FITS: tuple[tuple[type[CLIPLinearDetector], Callable[..., dict[str, Any]]], ...] = (
    (UnivFD, fit_univfd_head),
    (CLIPDet, fit_clipdet_head),
)


def fit_head(det: CLIPLinearDetector, features: np.ndarray, labels: np.ndarray, **options: Any) -> dict[str, Any]:
    """Fit ``det``'s linear head with its family's fit (:data:`HEAD_FITS`); ``options`` go to it."""
    for cls, fit in HEAD_FITS:
        if isinstance(det, cls):
            return fit(det, features, labels, **options)
    raise ConfigError(f"train_probe: no head fit for {type(det).__name__} (known: "
                      f"{', '.join(cls.__name__ for cls, _ in HEAD_FITS)})")


# --------------------------------------------------------------------------------------------
# probe training on cached features
# --------------------------------------------------------------------------------------------
def _paths_and_labels(images: Any, labels: Sequence[int] | None) -> tuple[list[Path], np.ndarray]:
    if isinstance(images, (str, Path)):
        try:
            from ..data import load_dataset
        except ImportError:
            raise ConfigError(f"{images}: loading a dataset folder needs fakebench.data; pass image paths + labels") from None
        images = load_dataset(images)
    items = list(images)
    if labels is not None:
        if len(labels) != len(items):
            raise DataError(f"train_probe: {len(items)} images but {len(labels)} labels")
        paths, ys = [Path(p) for p in items], [int(v) for v in labels]
    elif items and hasattr(items[0], "path") and hasattr(items[0], "label"):
        paths, ys = [Path(s.path) for s in items], [int(s.label) for s in items]
    elif items and all(isinstance(it, (tuple, list)) and len(it) == 2 for it in items):
        paths, ys = [Path(p) for p, _ in items], [int(v) for _, v in items]
    else:
        raise DataError("train_probe: pass image paths with labels=..., (path, label) pairs, or samples with .path/.label")
    bad = sorted({v for v in ys} - {0, 1})
    if bad:
        raise DataError(f"train_probe: labels must be 0 (real) or 1 (synthetic), got {bad}")
    return paths, np.asarray(ys, dtype=int)


def extract_features(det: CLIPLinearDetector, paths: Sequence[str | Path], cache: FeatureCache | None = None,
                     cache_dir: str | Path | None = None, batch_size: int = 16
                     ) -> tuple[np.ndarray, np.ndarray, ExtractStats]:
    """Features of image files through ``det``'s backbone, cached on disk.
    Returns (features (M, D), kept mask (N,), stats); see :func:`feature_cache.extract_cached`."""
    own = cache is None
    cache = cache if cache is not None else FeatureCache(cache_dir)
    try:
        was = det.training
        det.eval()
        try:
            return extract_cached(paths, det.feature_key(cache), det.embed_images, cache, batch_size)
        finally:
            det.train(was)
    finally:
        if own:
            cache.close()


def train_probe(det: CLIPLinearDetector, images: Any, labels: Sequence[int] | None = None, *,
                cache: FeatureCache | None = None, cache_dir: str | Path | None = None, batch_size: int = 16,
                **fit_options: Any) -> dict[str, Any]:
    """Fit ``det``'s linear head on frozen-backbone features of ``images`` (cached on disk).

    Args:
        det: a ``univfd`` or ``clipdet`` detector (its backbone is not changed).
        images: image paths (with ``labels``), ``(path, label)`` pairs, objects with ``.path``
            and ``.label`` (``fakebench.data.Sample``), or a dataset folder / manifest.
        labels: 0 real, 1 synthetic, aligned with ``images`` when those are plain paths.
        cache / cache_dir: the feature cache (default ``~/.cache/fakebench/features``).
        fit_options: passed to the family's head fit (:func:`fit_univfd_head`,
            :func:`fit_clipdet_head`: ``C``, ``seed``, ...).

    Returns a report: method, train accuracy, images used, cache hits, computed, skipped files,
    feature and fit seconds. Unreadable images are skipped, never fatal.
    """
    if not isinstance(det, CLIPLinearDetector):
        raise ConfigError(f"train_probe: needs a CLIP probe detector (univfd, clipdet), got {type(det).__name__}")
    paths, y = _paths_and_labels(images, labels)
    feats, kept, stats = extract_features(det, paths, cache=cache, cache_dir=cache_dir, batch_size=batch_size)
    y = y[kept]
    if set(y.tolist()) != {0, 1}:
        raise DataError(f"train_probe: needs real (0) and synthetic (1) images; usable labels {sorted(set(y.tolist()))}")
    t0 = time.perf_counter()
    report = fit_head(det, feats, y, **fit_options)
    report.update({"n_images": len(paths), "n_used": int(kept.sum()), "n_real": int((y == 0).sum()),
                   "n_fake": int((y == 1).sum()), "cache_hits": stats.hits, "computed": stats.computed,
                   "skipped": list(stats.skipped), "feature_seconds": stats.seconds,
                   "fit_seconds": time.perf_counter() - t0})
    det.meta["probe"] = {k: report[k] for k in ("method", "n_real", "n_fake", "train_accuracy")}
    return report
