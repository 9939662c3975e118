"""Shortcut audit: can something other than generator traces tell real from synthetic here?

Public datasets often separate their classes by accident: fakes of one size, reals of another;
reals as camera JPEGs with EXIF, fakes as PNGs; every fake in a frame whose colour depends on
its generator (Grommelt et al. 2024, "Fake or JPEG? Revealing common biases in generated image
detection datasets"). A detector trained or judged on such data scores AUC near 1 without
looking at a single generator trace.

:func:`audit` reads every image once (header, JPEG quantisation tables, EXIF, pixels) and
compares the classes on cheap features in four groups:

- ``metadata``: height, width, aspect ratio, pixel count, file format, JPEG quality estimated
  from the luminance/chrominance quantisation tables, EXIF present, colour mode (grey, alpha,
  16-bit);
- ``border``: mean colour and spread of a strip along each side (width 1/16 of the shorter
  side, at least 2 px), and the border ring minus the interior, per channel;
- ``colour``: per-channel mean and standard deviation, saturation mean / spread, fraction of
  clipped pixels.

It then fits trivial baselines, a standardised logistic regression on each group and on all of
them, and reports their cross-validated AUC (stratified k-fold, out-of-fold scores: no baseline
is judged on images it was fitted on). One above :data:`WARN_AUC` (0.8) is a warning: the
classes differ in something a detector may learn instead of the generator's traces.
"""

from __future__ import annotations

import io as _stdio
import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DataError, ImageLoadError
from ..io import DEFAULT_MAX_PIXELS, load_image
from .loaders import FAKE, REAL, Sample

log = logging.getLogger(__name__)

#: a baseline above this cross-validated AUC is reported as a shortcut
WARN_AUC = 0.8
GROUPS = ("metadata", "border", "colour")
_FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")


@lru_cache(maxsize=1)
def _reference_tables() -> np.ndarray:
    """(100, 2, 64) quantisation tables PIL's libjpeg writes at quality 1..100 (luma, chroma),
    in the order PIL reports them, so a file's tables compare entry by entry."""
    out = np.zeros((100, 2, 64), dtype=np.float64)
    img = Image.new("RGB", (16, 16), (128, 128, 128))
    for q in range(1, 101):
        buf = _stdio.BytesIO()
        img.save(buf, format="JPEG", quality=q)
        buf.seek(0)
        with Image.open(buf) as j:
            tabs = j.quantization
        out[q - 1, 0] = np.asarray(tabs[0], dtype=np.float64)
        out[q - 1, 1] = np.asarray(tabs.get(1, tabs[0]), dtype=np.float64)
    return out


def estimate_jpeg_quality(tables: dict[int, Sequence[int]]) -> int:
    """The IJG quality (1..100) whose standard tables are nearest (L1) to ``tables`` (PIL's
    ``Image.quantization``). Camera tables that are not scaled IJG tables get the nearest one."""
    ref = _reference_tables()
    luma = np.asarray(tables[0], dtype=np.float64)
    if luma.size != 64:
        return 0
    err = np.abs(ref[:, 0] - luma).sum(1)
    if 1 in tables and len(tables[1]) == 64:
        err += np.abs(ref[:, 1] - np.asarray(tables[1], dtype=np.float64)).sum(1)
    return int(np.argmin(err)) + 1


@dataclass
class FileFacts:
    """What the header says about one file (no pixels)."""

    fmt: str
    height: int
    width: int
    quality: int  # estimated JPEG quality; 0 when not a JPEG
    exif: bool
    mode: str
    qtable_key: str = ""  # hash of the quantisation tables ('' when not a JPEG)


def file_facts(path: str) -> FileFacts:
    """Format, size, JPEG quality, EXIF and mode from the header of ``path``."""
    try:
        with Image.open(path) as img:
            fmt = str(img.format or "?").upper()
            w, h = img.size
            q, key = 0, ""
            tabs = getattr(img, "quantization", None)
            if fmt == "JPEG" and tabs:
                q = estimate_jpeg_quality(tabs)
                key = format(zlib.crc32(np.asarray([v for k in sorted(tabs) for v in tabs[k]], dtype=np.int32)
                                        .tobytes()), "08x")
            try:
                exif = len(img.getexif()) > 0
            except (OSError, ValueError, SyntaxError, KeyError, TypeError):  # malformed EXIF: absent
                exif = False
            return FileFacts(fmt, int(h), int(w), q, exif, str(img.mode), key)
    except FileNotFoundError:
        raise ImageLoadError(path, "file not found") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # UnidentifiedImageError is an OSError
        raise ImageLoadError(path, f"cannot read the image header ({type(exc).__name__})") from None


def _metadata_features(f: FileFacts) -> list[float]:
    fmt = [1.0 if f.fmt == k else 0.0 for k in _FORMATS]
    return [float(f.height), float(f.width), f.width / max(f.height, 1), np.log(max(f.height * f.width, 1)),
            *fmt, float(f.quality), 1.0 if f.exif else 0.0, 1.0 if f.mode in ("L", "LA", "I", "I;16", "1") else 0.0,
            1.0 if f.mode in ("RGBA", "LA", "PA") else 0.0, 1.0 if f.mode.startswith("I") else 0.0]


METADATA_NAMES = ["height", "width", "aspect", "log_pixels", *[f"format_{k.lower()}" for k in _FORMATS],
                  "jpeg_quality", "exif", "greyscale", "alpha", "16bit"]
_SIDES = ("top", "bottom", "left", "right")
BORDER_NAMES = ([f"border_{s}_{c}" for s in _SIDES for c in "rgb"] + [f"border_{s}_std" for s in _SIDES]
                + [f"border_minus_inside_{c}" for c in "rgb"])
COLOUR_NAMES = ["mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "saturation_mean", "saturation_std",
                "clipped_fraction"]


def border_width(height: int, width: int) -> int:
    """Width of the border strips: 1/16 of the shorter side, at least 2 px (at most half)."""
    return int(max(1, min(max(2, min(height, width) // 16), min(height, width) // 2)))


def border_features(img: np.ndarray) -> list[float]:
    """Mean colour of a strip along each side, the strips' spread, border ring minus interior."""
    h, w = img.shape[:2]
    b = border_width(h, w)
    strips = (img[:b], img[h - b:], img[:, :b], img[:, w - b:])
    means = [float(v) for s in strips for v in s.reshape(-1, 3).mean(0)]
    stds = [float(s.std()) for s in strips]
    ring = np.ones((h, w), dtype=bool)
    ring[b:h - b, b:w - b] = False
    inside = img[~ring] if (~ring).any() else img.reshape(-1, 3)
    diff = [float(v) for v in img[ring].mean(0) - inside.mean(0)]
    return means + stds + diff


def colour_features(img: np.ndarray) -> list[float]:
    """Per-channel mean / std, saturation mean / std, fraction of clipped (0 or 1) values."""
    flat = img.reshape(-1, 3)
    mx, mn = flat.max(1), flat.min(1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-8), 0.0)
    clipped = float(((flat <= 0.0) | (flat >= 1.0)).mean())
    return [*map(float, flat.mean(0)), *map(float, flat.std(0)), float(sat.mean()), float(sat.std()), clipped]


@dataclass
class AuditReport:
    """Result of :func:`audit`. ``baselines`` maps group (and ``all``) to cross-validated AUC;
    ``features`` lists (name, group, real mean, fake mean, separation AUC) per feature, most
    separating first; ``comparisons`` holds per-class counts of categorical facts."""

    n_real: int
    n_fake: int
    bad: list[tuple[str, str]]
    baselines: dict[str, float]
    per_generator: dict[str, float]
    features: list[tuple[str, str, float, float, float]]
    comparisons: dict[str, dict[str, dict[str, int]]]
    warnings: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return bool(self.warnings)

    def summary_line(self) -> str:
        base = ", ".join(f"{k} {v:.2f}" for k, v in self.baselines.items())
        head = f"audit: {self.n_real} real / {self.n_fake} synthetic images; trivial-baseline AUC: {base}"
        if not self.flagged:
            return f"{head} (no shortcut above {WARN_AUC})"
        return f"{head}. WARNING: {self.warnings[0]}"

    def to_dict(self) -> dict[str, Any]:
        return {"n_real": self.n_real, "n_fake": self.n_fake, "bad": [list(b) for b in self.bad],
                "warn_auc": WARN_AUC, "baselines": self.baselines, "per_generator": self.per_generator,
                "features": [{"name": n, "group": g, "real_mean": r, "fake_mean": f, "auc": a}
                             for n, g, r, f, a in self.features],
                "comparisons": self.comparisons, "warnings": self.warnings}

    def to_markdown(self, top: int = 12) -> str:
        skipped = f", {len(self.bad)} unreadable (skipped)" if self.bad else ""
        lines = [f"# Shortcut audit\n\n{self.n_real} real and {self.n_fake} synthetic images{skipped}.\n"]
        lines += [f"**WARNING:** {w}\n" for w in self.warnings]
        lines += ["## Trivial baselines (logistic regression, cross-validated AUC)\n", "| features | AUC |",
                  "| --- | --- |"]
        lines += [f"| {k} | {v:.3f} |" for k, v in self.baselines.items()]
        if self.per_generator:
            lines += ["", "| generator vs reals (all features) | AUC |", "| --- | --- |"]
            lines += [f"| {k} | {v:.3f} |" for k, v in self.per_generator.items()]
        lines += ["", "## Most separating single features\n", "| feature | group | real mean | synthetic mean | AUC |",
                  "| --- | --- | --- | --- | --- |"]
        lines += [f"| {n} | {g} | {r:.4g} | {f:.4g} | {a:.3f} |" for n, g, r, f, a in self.features[:top]]
        lines += ["", "## Per-class counts\n"]
        for what, per in self.comparisons.items():
            for cls in ("real", "synthetic"):
                items = sorted(per.get(cls, {}).items(), key=lambda kv: -kv[1])
                shown = ", ".join(f"{k}: {v}" for k, v in items[:5]) + (" ..." if len(items) > 5 else "")
                lines.append(f"- {what}, {cls}: {shown or '-'}")
        return "\n".join(lines) + "\n"


def _cv_auc(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """Out-of-fold AUC of a standardised logistic regression (stratified k-fold, k <= 5)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ..metrics import auc

    k = int(min(5, np.bincount(y, minlength=2).min()))
    if k < 2:
        return float("nan")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores = cross_val_predict(model, np.nan_to_num(x), y, cv=folds, method="decision_function")
    return float(auc(y, scores))


def _subsample(samples: Sequence[Sample], max_per_class: int | None, seed: int) -> list[Sample]:
    if not max_per_class:
        return list(samples)
    rng = np.random.default_rng(seed)
    out: list[Sample] = []
    for label in (REAL, FAKE):
        cls = [s for s in samples if s.label == label]
        if len(cls) > max_per_class:
            keep = np.sort(rng.permutation(len(cls))[:max_per_class])
            cls = [cls[i] for i in keep]
        out += cls
    return sorted(out, key=lambda s: s.path)


def extract(samples: Sequence[Sample], max_pixels: int = DEFAULT_MAX_PIXELS
            ) -> tuple[dict[str, np.ndarray], list[FileFacts], list[int], list[tuple[str, str]]]:
    """Feature matrices per group, the header facts and indices of the readable samples, and
    ``(path, reason)`` of the unreadable ones (skipped)."""
    rows: dict[str, list[list[float]]] = {g: [] for g in GROUPS}
    facts: list[FileFacts] = []
    kept: list[int] = []
    bad: list[tuple[str, str]] = []
    for i, s in enumerate(samples):
        try:
            f = file_facts(s.path)
            img = load_image(s.path, max_pixels=max_pixels)
        except ImageLoadError as exc:
            log.warning("audit: skipping %s", exc)
            bad.append((s.path, exc.reason))
            continue
        rows["metadata"].append(_metadata_features(f))
        rows["border"].append(border_features(img))
        rows["colour"].append(colour_features(img))
        facts.append(f)
        kept.append(i)
    mats = {g: np.asarray(v, dtype=np.float64).reshape(len(kept), -1) for g, v in rows.items()}
    return mats, facts, kept, bad


def _count(values: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def audit(samples: Sequence[Sample], max_per_class: int | None = 500, seed: int = 0,
          max_pixels: int = DEFAULT_MAX_PIXELS) -> AuditReport:
    """Compare real and synthetic ``samples`` on cheap features and fit trivial baselines.

    ``max_per_class`` audits a seeded random subset of at most that many images per class
    (``None``: all). Unreadable files are skipped and listed in ``bad``.

    Raises:
        DataError: fewer than two readable images of either class.
    """
    from ..metrics import auc

    picked = _subsample(samples, max_per_class, seed)
    mats, facts, kept, bad = extract(picked, max_pixels)
    y = np.asarray([picked[i].label for i in kept], dtype=int)
    n_real, n_fake = int((y == REAL).sum()), int((y == FAKE).sum())
    if n_real < 2 or n_fake < 2:
        raise DataError(f"audit: needs at least 2 readable real and 2 synthetic images, got {n_real} real and "
                        f"{n_fake} synthetic")
    names = {"metadata": METADATA_NAMES, "border": BORDER_NAMES, "colour": COLOUR_NAMES}
    baselines = {g: _cv_auc(mats[g], y, seed) for g in GROUPS}
    everything = np.concatenate([mats[g] for g in GROUPS], 1)
    baselines["all"] = _cv_auc(everything, y, seed)

    feats = []
    for g in GROUPS:
        for j, n in enumerate(names[g]):
            col = mats[g][:, j]
            a = float(auc(y, col)) if np.ptp(col) > 0 else 0.5
            feats.append((n, g, float(col[y == REAL].mean()), float(col[y == FAKE].mean()), max(a, 1.0 - a)))
    feats.sort(key=lambda t: -t[4])

    gens = [picked[i].generator for i in kept]
    per_gen: dict[str, float] = {}
    distinct = sorted({g for g, lab in zip(gens, y) if lab == FAKE})
    if len(distinct) > 1:
        for gname in distinct:
            m = (y == REAL) | (np.asarray(gens) == gname)
            if int((y[m] == FAKE).sum()) >= 2:
                per_gen[gname] = _cv_auc(everything[m], y[m], seed)

    def by_class(values: Sequence[str]) -> dict[str, dict[str, int]]:
        return {"real": _count([v for v, lab in zip(values, y) if lab == REAL]),
                "synthetic": _count([v for v, lab in zip(values, y) if lab == FAKE])}

    comparisons = {
        "format": by_class([f.fmt for f in facts]),
        "size (HxW)": by_class([f"{f.height}x{f.width}" for f in facts]),
        "JPEG quality (estimated)": by_class([str(f.quality) if f.fmt == "JPEG" else "not JPEG" for f in facts]),
        "JPEG quantisation tables": by_class([f.qtable_key or "not JPEG" for f in facts]),
        "EXIF": by_class(["present" if f.exif else "absent" for f in facts]),
        "mode": by_class([f.mode for f in facts]),
    }
    warnings = []
    for g, v in sorted(baselines.items(), key=lambda kv: -kv[1]):
        if np.isfinite(v) and v > WARN_AUC:
            top = next((f for f in feats if g == "all" or f[1] == g), None)
            hint = f" (most separating: {top[0]}, real mean {top[2]:.4g} vs synthetic {top[3]:.4g})" if top else ""
            warnings.append(f"the {g} baseline separates real from synthetic with AUC {v:.3f} > {WARN_AUC}{hint}; "
                            "detector scores on this data may measure that, not generator traces")
    return AuditReport(n_real, n_fake, bad, baselines, per_gen, feats, comparisons, warnings)
