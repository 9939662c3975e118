"""Training and evaluation transforms on single (H, W, 3) float images.

:class:`TrainTransform` is the CNNSpot augmentation recipe (Wang et al. 2020, "CNN-generated
images are surprisingly easy to spot... for now"): Gaussian blur with sigma ~ U[a, b] with
probability ``blur_prob``, then JPEG with quality ~ U{q0..q1} with probability ``jpeg_prob``
(both on the full image), then a random crop and a random horizontal flip. The degradations
come from :mod:`fakebench.data.degrade`, the same code the attacks use.

Transforms are called as ``t(img, rng)`` with a ``numpy.random.Generator`` and return a CHW
float32 array; the result depends only on the image and the generator's state.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from . import degrade


def _to_chw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.transpose(img, (2, 0, 1)), dtype=np.float32)


def pad_to(img: np.ndarray, size: int) -> np.ndarray:
    """Pad an (H, W, C) image symmetrically (mirror, edge repeated) so both sides are >= size."""
    h, w = img.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if ph == 0 and pw == 0:
        return img
    return np.pad(img, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="symmetric")


def _check_image(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim != 3 or a.shape[2] != 3:
        raise DataError(f"transform: expected an (H, W, 3) image, got shape {a.shape}")
    return a


def _check_crop(crop_size: int | None) -> int | None:
    if crop_size is None:
        return None
    if isinstance(crop_size, bool) or int(crop_size) != crop_size or int(crop_size) < 1:
        raise ConfigError(f"crop_size: expected a positive integer or None, got {crop_size!r}")
    return int(crop_size)


def _check_prob(name: str, p: object) -> None:
    try:
        ok = not isinstance(p, bool) and math.isfinite(float(p)) and 0.0 <= float(p) <= 1.0  # type: ignore[arg-type]
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ConfigError(f"{name}: expected a probability in [0, 1], got {p!r}")


def _crop_or_pad(img: np.ndarray, size: int, pad_if_needed: bool) -> np.ndarray:
    h, w = img.shape[:2]
    if h < size or w < size:
        if not pad_if_needed:
            raise DataError(f"image of {h}x{w} pixels is smaller than crop_size={size} (pad_if_needed=False)")
        img = pad_to(img, size)
    return img


class TrainTransform:
    """CNNSpot training augmentation (Wang et al. 2020): blur, JPEG, random crop, flip.

    Args:
        crop_size: side of the square random crop (None: keep the full image).
        blur_prob: probability of a Gaussian blur; sigma ~ U[blur_sigma] (pixels).
        blur_sigma: (low, high) range of sigma; Wang et al. use (0, 3).
        jpeg_prob: probability of a JPEG round trip; quality ~ U{jpeg_quality[0]..[1]}.
        jpeg_quality: inclusive (low, high) quality range; Wang et al. use (30, 100).
        flip: random horizontal flip with probability 1/2.
        pad_if_needed: pad (mirror) images smaller than ``crop_size``; else raise DataError.
        extra: optional further augmentation ``f(img, rng) -> img`` (e.g. social-network
            sharing, :func:`fakebench.attacks.sharing.share_np`), applied after JPEG with
            probability ``extra_prob``.
        rot90: rotate by a random multiple of 90 degrees (Gragnaniello et al. 2021), after the
            flip.

    Every call draws the same seven numbers from ``rng`` in the same order (blur coin, sigma,
    JPEG coin, quality, crop top, crop left, flip coin), whichever branches are taken; with
    ``extra`` set, one more coin follows (and ``extra`` draws what it needs after it); with
    ``rot90``, one more integer in 0..3 at the end.
    """

    def __init__(self, crop_size: int | None = None, blur_prob: float = 0.0, blur_sigma: Sequence[float] = (0.0, 3.0),
                 jpeg_prob: float = 0.0, jpeg_quality: Sequence[int] = (30, 100), flip: bool = True,
                 pad_if_needed: bool = True, extra: Any = None, extra_prob: float = 0.0, rot90: bool = False) -> None:
        self.crop_size = _check_crop(crop_size)
        for name, p in (("blur_prob", blur_prob), ("jpeg_prob", jpeg_prob), ("extra_prob", extra_prob)):
            _check_prob(name, p)
        if extra is not None and not callable(extra):
            raise ConfigError(f"extra: expected a callable f(img, rng) -> img, got {extra!r}")
        self.extra, self.extra_prob = extra, float(extra_prob)
        lo, hi = (float(v) for v in blur_sigma)
        degrade.check_sigma(lo), degrade.check_sigma(hi)
        if lo > hi:
            raise ConfigError(f"blur_sigma: low {lo} > high {hi}")
        qlo, qhi = (degrade.check_quality(q) for q in jpeg_quality)
        if qlo > qhi:
            raise ConfigError(f"jpeg_quality: low {qlo} > high {qhi}")
        self.blur_prob, self.blur_sigma = float(blur_prob), (lo, hi)
        self.jpeg_prob, self.jpeg_quality = float(jpeg_prob), (qlo, qhi)
        self.flip, self.pad_if_needed = bool(flip), bool(pad_if_needed)
        self.rot90 = bool(rot90)

    def __repr__(self) -> str:
        return (f"TrainTransform(crop_size={self.crop_size}, blur_prob={self.blur_prob}, blur_sigma={self.blur_sigma}, "
                f"jpeg_prob={self.jpeg_prob}, jpeg_quality={self.jpeg_quality}, flip={self.flip}, rot90={self.rot90})")

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a = _check_image(img)
        u = rng.random(7)  # fixed number of draws: branches never shift later randomness
        if u[0] < self.blur_prob:
            sigma = self.blur_sigma[0] + u[1] * (self.blur_sigma[1] - self.blur_sigma[0])
            a = degrade.blur_np(a, sigma)
        if u[2] < self.jpeg_prob:
            qlo, qhi = self.jpeg_quality
            quality = min(qhi, qlo + int(u[3] * (qhi - qlo + 1)))
            a = degrade.jpeg_np(np.clip(a, 0.0, 1.0), quality)
        if self.extra is not None and rng.random() < self.extra_prob:
            a = np.asarray(self.extra(np.clip(a, 0.0, 1.0).astype(np.float32), rng), dtype=np.float32)
        if self.crop_size is not None:
            s = self.crop_size
            a = _crop_or_pad(a, s, self.pad_if_needed)
            h, w = a.shape[:2]
            top, left = min(h - s, int(u[4] * (h - s + 1))), min(w - s, int(u[5] * (w - s + 1)))
            a = degrade.crop_np(a, s, top=top, left=left)
        if self.flip and u[6] < 0.5:
            a = a[:, ::-1]
        if self.rot90:
            a = np.rot90(a, int(rng.integers(4)))
        return _to_chw(a)


class EvalTransform:
    """Evaluation transform: optional crop (centre, or top-left with ``center=False``) of side
    ``crop_size``; images smaller than that are mirror-padded. No randomness (``rng`` ignored)."""

    def __init__(self, crop_size: int | None = None, center: bool = True, pad_if_needed: bool = True) -> None:
        self.crop_size = _check_crop(crop_size)
        self.center, self.pad_if_needed = bool(center), bool(pad_if_needed)

    def __repr__(self) -> str:
        return f"EvalTransform(crop_size={self.crop_size}, center={self.center})"

    def __call__(self, img: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        a = _check_image(img)
        if self.crop_size is not None:
            a = _crop_or_pad(a, self.crop_size, self.pad_if_needed)
            a = degrade.crop_np(a, self.crop_size, center=self.center)
        return _to_chw(a)
