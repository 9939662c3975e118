"""Robust FGSM (Hussain, Neekhara, Jere, Koushanfar, McAuley, "Adversarial deepfakes:
evaluating vulnerability of deepfake detectors to adversarial examples", WACV 2021), the
attack De Rosa et al. (2024) call "RFGSM".

An iterative signed-gradient attack whose objective is an expectation over a FIXED set of
image transforms, each applied to the current adversarial image (the official code, from
which these facts are taken):

- the transforms: the identity; additive Gaussian noise (std 0.01, clamped to [0, 1]);
  Gaussian blur with 5x5 and 7x7 kernels at sigma 5 and 10 (zero padding, torchgeometry's
  ``GaussianBlur``; here kornia's ``gaussian_blur2d`` with ``border_type="constant"``, the
  same operation); translations by (+-10, +-10) and (20, 20), (20, -20), (-20, 10),
  (-20, -20) pixels with zero fill; down-and-up resizing by 0.1, 0.2, 0.3 (bilinear,
  ``align_corners=True``; the official code calls it ``compress_decompress``, it is not
  JPEG). 17 transforms in all; groups can be left out with ``transforms``.
- the loss: the mean over the transforms of the hinge ``max(z_label - z_target + kappa, 0)``
  on the two-logit view, i.e. the margin loss capped at ``kappa`` (official: 10);
- the step: ``x <- clip_eps(x + alpha * sign(grad))`` (official: alpha 1/255, eps 16/255,
  up to 100 iterations; De Rosa et al.: alpha 2/255, eps 8/255, 10 iterations);
- early stopping: an image is done as soon as EVERY transform of it is classified as the
  target class with probability at least ``confidence`` (official: 0.95), checked before
  each step.

These are Hussain et al.'s own operations, not fakebench's degradations: the blur kernels are
fixed-size (the ``blur`` degradation uses 4 sigma and reflect padding) and the resize is not
antialiased. For a one-logit detector the two-logit view is ``[0, z - threshold]`` (the
decision at the detector's calibrated threshold; De Rosa et al.'s networks return ``[0, z]``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Attack, ThreatModel, attack_loss, decision_threshold, push_sign
from .gradient import threat_from

#: transform groups of the official code (``transform_set``)
GROUPS = ("gauss_noise", "gauss_blur", "translation", "resize")
NOISE_STD = 0.01
BLURS = ((5, 5.0), (5, 10.0), (7, 5.0), (7, 10.0))  # (kernel size, sigma)
SHIFTS = ((10, 10), (10, -10), (-10, 10), (-10, -10), (20, 20), (20, -20), (-20, 10), (-20, -20))  # (x, y)
DOWNSIZE = (0.1, 0.2, 0.3)

Transform = Callable[[torch.Tensor, "torch.Generator | None"], torch.Tensor]


def translate(x: torch.Tensor, shift_x: int, shift_y: int) -> torch.Tensor:
    """Shift the content by (``shift_x``, ``shift_y``) pixels (right, down), zero fill."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (max(shift_x, 0), max(-shift_x, 0), max(shift_y, 0), max(-shift_y, 0)))
    top, left = max(-shift_y, 0), max(-shift_x, 0)
    return padded[..., top : top + h, left : left + w]


def down_up(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Bilinear (``align_corners=True``) resize by ``factor`` and back to the input size."""
    h, w = x.shape[-2:]
    small = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=True)
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=True)


def fixed_blur(x: torch.Tensor, kernel: int, sigma: float) -> torch.Tensor:
    """Gaussian blur with a ``kernel`` x ``kernel`` window, zero padding (torchgeometry's)."""
    from kornia.filters import gaussian_blur2d

    return gaussian_blur2d(x, (kernel, kernel), (sigma, sigma), border_type="constant")


def _noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    n = torch.randn(x.shape, generator=generator).to(x)
    return (x + NOISE_STD * n).clamp(0, 1)


def robust_transforms(groups: Sequence[str] = GROUPS) -> list[tuple[str, Transform]]:
    """The official transform list for ``groups`` (identity first): ``[(name, f(x, gen))]``."""
    bad = [g for g in groups if g not in GROUPS]
    if bad:
        raise ConfigError(f"transforms: {bad[0]!r} is not one of {list(GROUPS)}")
    out: list[tuple[str, Transform]] = [("identity", lambda x, g: x)]
    if "gauss_noise" in groups:
        out.append((f"noise{NOISE_STD:g}", _noise))
    if "gauss_blur" in groups:
        out += [(f"blur{k}s{s:g}", lambda x, g, k=k, s=s: fixed_blur(x, k, s)) for k, s in BLURS]
    if "translation" in groups:
        out += [(f"shift{sx:+d}{sy:+d}", lambda x, g, sx=sx, sy=sy: translate(x, sx, sy)) for sx, sy in SHIFTS]
    if "resize" in groups:
        out += [(f"down{f:g}", lambda x, g, f=f: down_up(x, f)) for f in DOWNSIZE]
    return out


class RobustFGSM(Attack):
    """Robust FGSM of Hussain et al. (WACV 2021); see the module docstring.

    ``threat``: ``eps`` (Linf), ``steps`` (= max_iter), ``step_size`` (= alpha), ``kappa``
    (hinge margin, logits). ``confidence``: the early-stopping probability. ``transforms``:
    the groups of :data:`GROUPS` to use. The result's ``info`` holds per sample
    ``iterations`` (steps taken) and ``all_fooled`` (stopped early: every transform fooled)."""

    name = "robust-fgsm"

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, confidence: float = 0.95,
                 transforms: Sequence[str] = GROUPS) -> None:
        super().__init__(threat, seed)
        if self.threat.norm != "linf":
            raise ConfigError(f"norm: robust-fgsm supports linf, got {self.threat.norm!r}")
        if self.threat.eot:
            raise ConfigError("eot: robust-fgsm optimises through its own fixed transforms (transforms=...)")
        if not 0.5 <= float(confidence) < 1:
            raise ConfigError(f"confidence: expected a probability in [0.5, 1), got {confidence!r}")
        self.confidence = float(confidence)
        self.groups = tuple(transforms)
        self.transforms = robust_transforms(self.groups)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "confidence": self.confidence, "transforms": list(self.groups)}

    def _margins(self, detector: torch.nn.Module, x: torch.Tensor, sign: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
        """(T, N) margins ``sign * (z - threshold)`` of every transform (> 0: fooled)."""
        thr = decision_threshold(detector)
        return torch.stack([sign * (detector(f(x, generator)) - thr) for _, f in self.transforms])

    def run(self, detector, x, y, generator):
        t = self.threat
        eps, alpha, kappa = float(t.eps), t.alpha, float(t.kappa)
        sign = push_sign(y, t.direction).to(x)
        logit_conf = float(torch.logit(torch.tensor(self.confidence, dtype=torch.float64)))
        adv = x.clone()
        active = torch.ones(len(x), dtype=torch.bool)
        iterations = torch.zeros(len(x), dtype=torch.long)
        queries = torch.zeros(len(x), dtype=torch.long)
        for _ in range(int(t.steps)):
            idx = active.nonzero().flatten()
            if len(idx) == 0:
                break
            xa = adv[idx].clone().requires_grad_(True)
            margins = self._margins(detector, xa, sign[idx], generator)
            queries[idx] += len(self.transforms)
            fooled = (margins.detach() >= logit_conf).all(0).cpu()  # P(target) >= confidence everywhere
            active[idx[fooled]] = False
            loss = attack_loss(margins, 1.0, "margin", kappa).mean(0).sum()  # mean hinge over transforms
            (grad,) = torch.autograd.grad(loss, xa)
            go = ~fooled
            if not bool(go.any()):
                break
            with torch.no_grad():
                step = xa[go] + alpha * grad[go].sign()
                delta = torch.clamp(step - x[idx[go]], -eps, eps)
                adv[idx[go]] = torch.clamp(x[idx[go]] + delta, 0, 1)
            iterations[idx[go]] += 1
        return adv.detach(), queries, {"iterations": iterations, "all_fooled": ~active}


def build_robust_fgsm(seed: int = 0, confidence: float = 0.95, transforms: Sequence[str] = GROUPS,
                      **options: Any) -> RobustFGSM:
    # Hussain et al.'s defaults; preset="derosa2024" gives De Rosa et al.'s eps 8/255, alpha 2/255, 10 steps
    defaults = {"eps": 16 / 255, "step_size": 1 / 255, "steps": 100, "kappa": 10.0, "loss": "margin"}
    return RobustFGSM(threat_from(options, defaults, attack="robust-fgsm"), seed=seed, confidence=confidence,
                      transforms=transforms)
