"""Perspective-consistency detector: automatic vanishing-point analysis as a (non-learned,
non-differentiable) detector.

Farid, "Perspective (in)consistency of paint by text", arXiv 2206.14617 (2022): line
segments of parallel scene lines must meet at one vanishing point, and the vanishing points of
a scene must come from one plausible camera. The automatic mode
(:func:`fakebench.forensics.auto.analyze_perspective_auto`) detects segments (Canny +
probabilistic Hough, seeded), finds camera-consistent vanishing points (seeded RANSAC) and
measures the length fraction of segments that converge to none of them (``u`` in [0, 1];
segments pointing at two or more of them, such as the horizon itself, are not counted).

Output logit: ``gain * (u - offset)``; > 0 means "suspicious" (more unexplained line structure
than ``offset``). Images with fewer than ``min_segments`` detected segments carry no evidence
and get the neutral logit 0.0 (exactly on the decision boundary).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .base import Detector

#: logit of an image with too few line segments to decide
NEUTRAL_LOGIT = 0.0


class PerspectiveDetector(Detector):
    """Farid 2022 perspective analysis, automatic mode (see the module docstring).

    Args:
        seed: seeds the Hough transform and RANSAC (deterministic scores).
        offset: unexplained fraction mapped to logit 0 (default 0.15).
        gain: logit per unit of unexplained fraction (default 10).
        max_side: images are analysed at most this large (longer side, pixels).
        **auto: any other :class:`fakebench.forensics.auto.AutoConfig` field.
    """


    def __init__(self, seed: int = 0, offset: float = 0.15, gain: float = 10.0, max_side: int = 768, **auto: Any) -> None:
        super().__init__()
        from ..forensics.auto import AutoConfig

        if not np.isfinite(offset) or not np.isfinite(gain) or gain <= 0:
            raise ConfigError(f"perspective: offset must be finite and gain > 0, got offset={offset}, gain={gain}")
        try:
            self.cfg = AutoConfig(seed=int(seed), max_side=int(max_side), **auto)
        except TypeError as exc:
            raise ConfigError(f"perspective: unknown option ({exc})") from None
        self.offset = float(offset)
        self.gain = float(gain)

    def analyze(self, image: np.ndarray):  # -> PerspectiveResult
        """Full analysis of one (H, W, 3) float image in [0, 1]."""
        from ..forensics.auto import analyze_perspective_auto

        return analyze_perspective_auto(image, self.cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float in [0, 1] -> (N,) logits (float32, on x's device)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"perspective: expected (N, 3, H, W) images, got shape {tuple(x.shape)}")
        imgs = x.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
        out = []
        for im in imgs:
            res = self.analyze(im)
            out.append(self.gain * (res.score - self.offset) if res.decidable else NEUTRAL_LOGIT)
        return torch.tensor(out, dtype=torch.float32, device=x.device)
