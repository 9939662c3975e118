"""Benign degradations as attacks: JPEG, resize, blur (every image is touched).

These are the post-processing operations that real sharing applies and that forensic
detectors are known to be fragile to (Wang et al. 2020; Corvi et al. 2023). One implementation
in :mod:`fakebench.data.degrade` serves training augmentation and these attacks.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..data import degrade
from . import register
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


@register("jpeg", "JPEG re-compression at a given quality (PIL encoder, chroma subsampling 4:2:0)")
def _jpeg(quality: int = 75, subsampling: str = "4:2:0") -> Degradation:
    return Degradation("jpeg", degrade.jpeg, quality=int(quality), subsampling=subsampling)


@register("resize", "resize by a scale factor (optionally back to the original size)")
def _resize(scale: float = 0.5, restore: bool = False, interpolation: str = "bilinear") -> Degradation:
    return Degradation("resize", degrade.resize, scale=float(scale), restore=bool(restore), interpolation=interpolation)


@register("blur", "Gaussian blur with a given sigma (pixels)")
def _blur(sigma: float = 1.0) -> Degradation:
    return Degradation("blur", degrade.blur, sigma=float(sigma))
