"""Social-network sharing simulation: resize (longest side) + JPEG re-encoding (+ optional crop).

One description per platform (:data:`PLATFORMS`) serves three uses:

- an attack / degradation: ``fakebench.attacks.create("share", platform="facebook")`` applies
  the real (PIL) codec through :mod:`fakebench.data.degrade` to every image;
- an EOT transform: ``{"op": "sharing", "platform": "x"}`` in a threat model's ``eot`` list
  uses the differentiable approximation :func:`eot_entries` (antialiased bilinear resize to the
  platform's longest side + kornia's differentiable JPEG over the platform's quality range);
- a training augmentation: :func:`share_np` on an (H, W, 3) numpy image (float in [0, 1] or
  uint8), or :func:`share` on a torch batch, optionally with the quality drawn from the
  platform's range (``jitter=True``).

Parameters and where they come from (sharing pipelines change without notice; these describe
uploads of full-size photos as a photo, not as a file/document):

- ``facebook``: longest side 2048 px (Facebook's stated maximum for high-quality photo uploads;
  measured e.g. 4340x3568 -> 2048x1684, blog.raastech.com 2013), JPEG quality 80, 4:2:0. The
  quality is OUR ESTIMATE: Facebook re-encodes adaptively and public measurements range from
  about 71 to 85 (quality 85 measured with ImageMagick in 2010, abrokenmold.net; lower
  adaptive values in forensic studies such as Moltisanti et al., ICIAP 2015, whose exact
  figures we could not re-check offline); the EOT / jitter range is [71, 85].
- ``x`` (alias ``twitter``): longest side 4096 px (measured 5120 -> 4096, phototacopodcast.com
  2020; Twitter engineer N. O'Brien's 2018-2020 upload notes as analysed by C. Erdmann,
  compress-or-die.com 2022), JPEG quality 85, 4:2:0 (O'Brien's notes as reported there; other
  guides say about 80). X may keep small, already-compliant JPEGs unchanged; we always
  re-encode. Range [80, 90] is our estimate.
- ``telegram``: longest side 1280 px and JPEG quality 87 (Telegram Desktop's photo
  preparation, ``Telegram/SourceFiles/storage/localimageloader.cpp``: ``PhotoSideLimit`` =
  1280, 2560 with the "send large photos" option; ``QImageWriter::setQuality(87)``,
  progressive; already-small JPEGs (<= 4 bits/pixel) are sent unchanged; measured 6000x4000 ->
  1280x853, ticktechtold.com 2022); 4:2:0 is the Qt/libjpeg default. Range [80, 92] is our
  estimate of client differences.

TrueFake (Dell'Anna, Montibeller, Boato 2025) shared its images through these three platforms
and reports the resulting quality factors; use its measured values where you have them (pass
``quality=`` / ``max_side=``) - we could not read them offline.

Images far smaller than the platform limit (the built-in benchmark's patches) are not resized
unless ``assume_side`` says how large the full picture was (a 256-px patch of a 4000-px photo
shared on Telegram is scaled by 1280 / 4000).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from . import degrade


@dataclass(frozen=True)
class Platform:
    """One platform's upload processing. ``quality_range`` is used by EOT and jitter."""

    name: str
    max_side: int
    quality: int
    quality_range: tuple[int, int]
    subsampling: str = "4:2:0"
    crop: float | None = None  # keep this fraction of each side (centre), None = no crop
    source: str = ""


PLATFORMS: dict[str, Platform] = {
    "facebook": Platform("facebook", 2048, 80, (71, 85), source="2048 px: Facebook upload limit (measured, "
                         "raastech 2013); q80: our estimate within measured 71-85"),
    "x": Platform("x", 4096, 85, (80, 90), source="4096 px measured (phototaco 2020); q85 per Twitter engineer "
                  "N. O'Brien's notes (compress-or-die 2022)"),
    "telegram": Platform("telegram", 1280, 87, (80, 92), source="Telegram Desktop localimageloader.cpp: side "
                         "limit 1280, JPEG quality 87"),
}
PLATFORMS["twitter"] = PLATFORMS["x"]


def get_platform(platform: str | Platform) -> Platform:
    if isinstance(platform, Platform):
        return platform
    if platform not in PLATFORMS:
        raise ConfigError(f"platform: {platform!r} is not one of {sorted(PLATFORMS)}")
    return PLATFORMS[platform]


def resize_factor(h: int, w: int, max_side: int, assume_side: int | None = None) -> float:
    """Scale the platform applies: ``max_side / longest side`` when larger, else 1. With
    ``assume_side`` the image is treated as part of a picture whose longest side was that."""
    longest = int(assume_side) if assume_side else max(h, w)
    return min(1.0, float(max_side) / float(longest))


def share(x: torch.Tensor, platform: str | Platform = "facebook", quality: int | None = None,
          max_side: int | None = None, crop: float | None = None, assume_side: int | None = None,
          jitter: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Simulate posting a batch (N, 3, H, W) in [0, 1] on ``platform`` with the real JPEG codec:
    downscale so the longest side fits (antialiased bilinear), centre-crop if asked, JPEG at the
    platform's quality and chroma subsampling. Overrides: ``quality``, ``max_side``, ``crop``
    (fraction of each side kept). ``jitter`` draws the quality from the platform's range (one
    value per call, from ``generator``). Output is 8-bit exact; its size may differ."""
    p = get_platform(platform)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"share: expected (N, 3, H, W) images, got {tuple(x.shape)}")
    q = int(quality if quality is not None else p.quality)
    if jitter and quality is None:
        lo, hi = p.quality_range
        q = int(torch.randint(lo, hi + 1, (1,), generator=generator))
    if not 1 <= q <= 100:
        raise ConfigError(f"quality: expected 1..100, got {q}")
    side = int(max_side if max_side is not None else p.max_side)
    h, w = x.shape[-2:]
    s = resize_factor(h, w, side, assume_side)
    if s < 1.0:
        x = degrade.resize(x, scale=s, interpolation="bilinear", antialias=True)
    frac = crop if crop is not None else p.crop
    if frac is not None and float(frac) < 1.0:
        if not 0 < float(frac) <= 1:
            raise ConfigError(f"crop: expected a fraction in (0, 1], got {frac!r}")
        hh, ww = x.shape[-2:]
        x = degrade.crop(x, (max(1, int(round(hh * frac))), max(1, int(round(ww * frac)))), center=True)
    return degrade.jpeg(x, q, subsampling=p.subsampling)


def share_np(img: np.ndarray, platform: str | Platform = "facebook", rng: np.random.Generator | None = None,
             jitter: bool = True, **kwargs: Any) -> np.ndarray:
    """Training augmentation: share one (H, W, 3) image (float in [0, 1] or uint8; the dtype
    is kept). With ``rng`` and ``jitter`` the quality is drawn from the platform's range."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"share_np: expected an (H, W, 3) image, got shape {img.shape}")
    as_uint8 = img.dtype == np.uint8
    arr = img.astype(np.float32) / 255.0 if as_uint8 else img.astype(np.float32)
    p = get_platform(platform)
    if jitter and rng is not None and "quality" not in kwargs:
        kwargs["quality"] = int(rng.integers(p.quality_range[0], p.quality_range[1] + 1))
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
    out = share(x, p, **kwargs)[0].permute(1, 2, 0).numpy()
    if as_uint8:
        return np.round(out * 255).astype(np.uint8)
    return out.astype(img.dtype if img.dtype in (np.float32, np.float64) else np.float32)


def eot_entries(platform: str | Platform, assume_side: int | None = None) -> list[dict[str, Any]]:
    """Differentiable approximation as :mod:`fakebench.attacks.eot` entries: resize to the
    platform's longest side (a no-op for smaller images unless ``assume_side``) then JPEG over
    the platform's quality range (kornia, 4:2:0)."""
    p = get_platform(platform)
    out: list[dict[str, Any]] = []
    if assume_side:
        out.append({"op": "resize", "scale": max(0.05, resize_factor(1, 1, p.max_side, assume_side))})
    else:
        out.append({"op": "resize", "max_side": int(p.max_side)})
    out.append({"op": "jpeg", "quality": [float(p.quality_range[0]), float(p.quality_range[1])]})
    return out

