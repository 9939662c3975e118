"""Benign degradations as attacks: JPEG, resize, blur (every image is touched).

These are the post-processing operations that real sharing applies and that forensic
detectors are known to be fragile to (Wang et al. 2020; Corvi et al. 2023). One implementation
in :mod:`fakebench.data.degrade` serves training augmentation and these attacks.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..data import degrade, sharing
from ..errors import ConfigError
from .base import Attack, ThreatModel


class Degradation(Attack):
    """Apply a fixed, non-adaptive processing ``fn(x, **kwargs)`` to every image."""

    needs_gradients = False

    def __init__(self, name: str, fn: Callable[..., torch.Tensor], **kwargs: Any) -> None:
        super().__init__(ThreatModel(direction="all", norm="none", eps=0.0, steps=0, quantize=False))
        self.name = name  # type: ignore[misc]
        self.fn = fn
        self.kwargs = kwargs

    def params(self) -> dict[str, Any]:
        return {"op": self.name, **self.kwargs}

    def run(self, detector, x, y, generator):
        return self.fn(x, **self.kwargs), 0


# the builders check every option when the attack is built (before any image is processed)

def build_jpeg(quality: int = 75, subsampling: str = "4:2:0") -> Degradation:
    degrade.check_subsampling(subsampling)
    return Degradation("jpeg", degrade.jpeg, quality=degrade.check_quality(quality), subsampling=subsampling)


def build_resize(scale: float = 0.5, restore: bool = False, interpolation: str = "bilinear") -> Degradation:
    if restore not in (True, False):
        raise ConfigError(f"resize restore: expected true or false, got {restore!r}")
    return Degradation("resize", degrade.resize, scale=degrade.check_scale(scale), restore=bool(restore),
                       interpolation=degrade.check_interpolation(interpolation))


def build_blur(sigma: float = 1.0) -> Degradation:
    return Degradation("blur", degrade.blur, sigma=degrade.check_sigma(sigma))


def build_share(platform: str = "facebook", quality: int | None = None, max_side: int | None = None,
           crop: float | None = None, assume_side: int | None = None):
    p = sharing.get_platform(platform)
    if quality is not None:
        degrade.check_quality(quality)
    for k, v in (("max_side", max_side), ("assume_side", assume_side)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ConfigError(f"share {k}: expected an integer >= 1, got {v!r}")
    if crop is not None and (isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0 < crop <= 1):
        raise ConfigError(f"share crop: expected a fraction in (0, 1], got {crop!r}")
    opts: dict[str, Any] = {"platform": p.name}
    for k, v in (("quality", quality), ("max_side", max_side), ("crop", crop), ("assume_side", assume_side)):
        if v is not None:
            opts[k] = v
    return Degradation("share", sharing.share, **opts)


class Identity(Attack):
    """The clean baseline: returns the images unchanged."""

    name = "none"
    needs_gradients = False

    def params(self) -> dict[str, Any]:
        return {}

    def run(self, detector, x, y, generator):
        return x, 0


def build_none() -> Attack:
    return Identity(ThreatModel(direction="all", norm="none", eps=0.0, steps=0, quantize=False))
