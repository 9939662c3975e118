"""Thumbnails for the report's adversarial gallery, written by the runner into the run folder.

The store holds numbers only; the images the report shows live beside it, under
``<output>/gallery/<detector>/<attack>-<params hash>/``: for each image kept, ``<name>.orig.png``
(the clean image) and ``<name>.adv.png`` (the attacked one), both 8-bit PNG.

Which images: per (detector, attack, chunk) the ``k`` most and the ``k`` least affected of the
attacked images (those the attack's direction targets), where "affected" is how far the
attack pushed the score towards the wrong decision (down for a synthetic image, up for a real
one). The N most / least affected of the whole run are then among the kept ones for any
N <= k, whatever the chunking, so the report can pick them from the store's scores alone.

Thumbnails are *crops*, not downscaled copies: an image larger than ``THUMB_MAX`` on a side
is cut to its central ``THUMB_MAX`` x ``THUMB_MAX`` window at full resolution, so the
perturbation shown is the exact 8-bit ``x_adv - x`` of those pixels. Images whose attacked
version changed size (resize degradations) get no thumbnail.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import save_png, to_uint8

GALLERY_DIR = "gallery"
THUMB_MAX = 128


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:60] or "x"


def unit_dir(root: str | Path, detector: str, attack: str, params: str) -> Path:
    """Folder of one (detector, attack, params) unit's thumbnails under run folder ``root``."""
    h = hashlib.sha1(params.encode()).hexdigest()[:10]
    return Path(root) / GALLERY_DIR / _safe(detector) / f"{_safe(attack)}-{h}"


def thumb_name(sample: str) -> str:
    """File stem of a sample's thumbnails (readable part + hash of the full sample id)."""
    return f"{_safe(Path(sample).stem)}-{hashlib.sha1(sample.encode()).hexdigest()[:8]}"


def thumb_paths(root: str | Path, detector: str, attack: str, params: str, sample: str) -> tuple[Path, Path]:
    """``(orig, adv)`` thumbnail paths of one sample of one unit (they may not exist)."""
    d = unit_dir(root, detector, attack, params)
    n = thumb_name(sample)
    return d / f"{n}.orig.png", d / f"{n}.adv.png"


def center_crop(img: np.ndarray, size: int = THUMB_MAX) -> np.ndarray:
    """(H, W, 3) -> its central window of at most ``size`` x ``size`` pixels."""
    h, w = img.shape[:2]
    top, left = max((h - size) // 2, 0), max((w - size) // 2, 0)
    return img[top : top + size, left : left + size]


def pushed(label: int, score_clean: float, score_adv: float) -> float:
    """How far the attack moved the score towards the wrong decision (negative: away from it)."""
    return float(score_clean - score_adv) if label == 1 else float(score_adv - score_clean)


@dataclass
class GalleryPicker:
    """Keeps the ``k`` most and ``k`` least affected attacked images of one unit, as 8-bit crops."""

    k: int
    kept: dict[str, tuple[float, np.ndarray, np.ndarray]] = field(default_factory=dict)

    def offer(self, sample: str, push: float, x: np.ndarray, x_adv: np.ndarray) -> None:
        """``x``, ``x_adv``: (3, H, W) float in [0, 1] (same shape)."""
        if self.k <= 0 or not np.isfinite(push):
            return
        self.kept[sample] = (push, to_uint8(center_crop(np.transpose(x, (1, 2, 0)))),
                             to_uint8(center_crop(np.transpose(x_adv, (1, 2, 0)))))
        if len(self.kept) > 2 * self.k:
            order = sorted(self.kept, key=lambda s: (self.kept[s][0], s))
            for s in order[self.k : len(order) - self.k]:
                del self.kept[s]

    def write(self, root: str | Path, detector: str, attack: str, params: str) -> int:
        for sample, (_, orig, adv) in self.kept.items():
            p_orig, p_adv = thumb_paths(root, detector, attack, params, sample)
            save_png(p_orig, orig)
            save_png(p_adv, adv)
        return len(self.kept)
