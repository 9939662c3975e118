"""Two-stage detector of Stable Diffusion image laundering (patch-averaged CNN scores).

Mandelli, Bestagini, Tubaro, "When synthetic traces hide real content: analysis of Stable
Diffusion image laundering", WIFS 2024 (arXiv 2407.10736). *Laundering* passes a real photo
through a latent-diffusion autoencoder (encode, decode, strength 0): the result carries the
generator's traces but real content. The paper's pipeline:

1. stage 1, real vs synthetic (laundered and fully synthetic are both synthetic);
2. stage 2, only for images stage 1 calls synthetic: fully synthetic (generated from noise or
   a text prompt) vs laundered.

Each stage scores many random patches of the image with one CNN and aggregates them. Facts of
the authors' code (github.com/polimi-ispl/synthetic-image-detection): images whose shorter side
is under 256 px are first upscaled (bilinear) to 256; 800 random 96x96 patches are drawn with a
fixed seed; the image score is the mean of the M highest patch scores of the class of
interest (M in [200, 600], 600 by default); the patch CNN is an EfficientNet-B4, ImageNet-
normalised. Here the patch scorer is the project's :class:`~fakebench.detectors.resnet.ResNetBackbone`
(small arch/width options, stem stride 1 by default so the fine traces survive), and all of it
-- resize, patch extraction, scoring, top-M mean -- happens inside ``forward`` and is
differentiable (``torch.topk`` passes gradients to the selected patches).

Sign conventions (fakebench: logit > 0 means synthetic):

* ``laundering-stage1``: > 0 synthetic (laundered or fully synthetic), < 0 real (as the paper);
* ``laundering-stage2``: > 0 FULLY synthetic, < 0 laundered (real content). The paper's stage-2
  score has the opposite sign (> 0 laundered); its top-M selection (the M patches most in
  favour of "laundered") is kept, i.e. here the M LOWEST patch logits are averaged.

:class:`LaunderingTwoStage` combines the two into the three-way verdict
``real`` / ``laundered`` / ``synthetic`` (:func:`two_stage_verdict`).
:func:`build_laundering_dataset` makes the three classes from the built-in benchmark (real
patches; the same patches through a TAESD-family round trip; fully synthetic patches decoded
by the same decoder from latents with no photograph behind them, drawn from a Gaussian latent
prior) and :func:`train_laundering` trains both stages with the shared trainer.

The official patch network, an ``efficientnet_pytorch`` B4, is ``arch="efficientnet_b4"``
(:mod:`fakebench.detectors.efficientnet`, equal to it within float rounding) and
``pretrained=`` loads the authors' checkpoint layout; the repository's README download links
were placeholders when checked, see ``weights_hint``. The default, a small ResNet, is the CPU
option.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from .base import IMAGENET_MEAN, IMAGENET_STD, Detector
from .resnet import ResNetBackbone

log = logging.getLogger(__name__)

REAL, LAUNDERED, SYNTHETIC = "real", "laundered", "synthetic"
VERDICTS = (REAL, LAUNDERED, SYNTHETIC)


class LaunderingStage(Detector):
    """One stage of the Mandelli et al. (WIFS 2024) laundering detector: a patch CNN whose image
    score aggregates M of ``num_patches`` patch logits.

    Args:
        arch, width, stride0: the patch scorer: ``"efficientnet_b4"``, the official network
            (:mod:`fakebench.detectors.efficientnet`; ``width``/``stride0`` unused; load the
            authors' checkpoint with ``pretrained=``), or the CPU option, a small
            :class:`ResNetBackbone` (``resnet18``, 32, 1 by default; ``resnet10`` with width 8
            is enough for CPU tests).
        patch: patch side in pixels (96 in the paper).
        num_patches: patches drawn per image (800 in the paper).
        M: how many of them are averaged (600 by default; the paper suggests 200-600). With
            ``M >= num_patches`` every patch counts (a plain mean).
        sampling: ``"random"`` (seeded, uniform positions, the paper's) or ``"grid"`` (an even
            grid of about ``num_patches`` positions).
        min_side: images whose shorter side is below this are upscaled to it first (bilinear;
            256 in the paper; 0 disables). Images smaller than ``patch`` are always upscaled
            to it.
        seed: seed of the random patch positions (fixed: the same image always gets the same
            score, which attacks and ``save``/``load`` need).
        residual: feed the backbone the noise residual ``10 * (x - mean3x3(x))`` (computed on
            the whole image, reflect-padded, before cutting patches) instead of ImageNet-
            normalised RGB. Not in the paper (their EfficientNet sees RGB); it makes the faint
            traces of an autoencoder decoder learnable from a few hundred patches in seconds,
            which the CPU-sized stage-1 training here needs.
        patch_batch: patches per backbone call (memory bound only; no effect on the result).

    Identical positions are scored once (an image of exactly ``patch`` pixels costs one patch),
    so the patch-sized crops used in training are cheap.
    """

    stage: ClassVar[int] = 0
    #: +1: average the M highest patch logits; -1: the M lowest (see the module docstring)
    _select_sign: ClassVar[int] = 1

    def __init__(self, arch: str = "resnet18", width: int = 32, stride0: int = 1, patch: int = 96,
                 num_patches: int = 800, M: int = 600, sampling: str = "random", min_side: int = 256,
                 seed: int = 21, patch_batch: int = 256, residual: bool = False, pretrained: str | None = None) -> None:
        super().__init__()
        if int(patch) < 8:
            raise ConfigError(f"patch: must be >= 8 pixels, got {patch}")
        if int(num_patches) < 1 or int(M) < 1:
            raise ConfigError(f"num_patches and M: must be >= 1, got {num_patches} and {M}")
        if sampling not in ("random", "grid"):
            raise ConfigError(f"sampling: must be 'random' or 'grid', got {sampling!r}")
        if int(min_side) < 0 or int(patch_batch) < 1:
            raise ConfigError(f"min_side must be >= 0 and patch_batch >= 1, got {min_side} and {patch_batch}")
        if arch == "efficientnet_b4":  # the official patch network
            from .efficientnet import EfficientNetB4Patch

            self.net: nn.Module = EfficientNetB4Patch()
        else:  # the CPU option: a small ResNet
            self.net = ResNetBackbone(arch, width, stride0)
        self.arch = arch
        self.patch, self.num_patches, self.M = int(patch), int(num_patches), int(M)
        self.sampling, self.min_side, self.seed = sampling, int(min_side), int(seed)
        self.patch_batch = int(patch_batch)
        self.residual = bool(residual)
        self._positions_cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if pretrained:
            self.load_official(pretrained)

    def config_dict(self) -> dict:
        cfg = super().config_dict()
        # the weights are in model.safetensors: reloading must not need the official file
        cfg["options"] = {k: v for k, v in cfg["options"].items() if k != "pretrained"}
        return cfg

    # -- geometry --------------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Upscale (bilinear) so the shorter side is at least ``max(min_side, patch)``."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.registry_name}: expected (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        target = max(self.min_side, self.patch)
        if min(h, w) < target:
            s = target / min(h, w)
            size = (max(target, round(h * s)), max(target, round(w * s)))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return x

    def positions(self, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-left corners for an (h, w) image already prepared: (unique (U, 2) long tensor,
        (K,) index of each drawn patch into the unique ones). Deterministic (``seed``)."""
        key = (int(h), int(w))
        if key not in self._positions_cache:
            p = self.patch
            ny, nx = h - p + 1, w - p + 1
            if self.sampling == "random":
                g = torch.Generator().manual_seed(self.seed)
                pos = torch.stack([torch.randint(0, ny, (self.num_patches,), generator=g),
                                   torch.randint(0, nx, (self.num_patches,), generator=g)], 1)
            else:
                rows = max(1, min(ny, round(math.sqrt(self.num_patches * ny / nx))))
                cols = max(1, min(nx, math.ceil(self.num_patches / rows)))
                ys = torch.linspace(0, ny - 1, rows).round().long()
                xs = torch.linspace(0, nx - 1, cols).round().long()
                pos = torch.cartesian_prod(ys, xs)
            uniq, inverse = torch.unique(pos, dim=0, return_inverse=True)
            self._positions_cache[key] = (uniq, inverse)
        return self._positions_cache[key]

    # -- scoring ---------------------------------------------------------------------------------
    def patch_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) logits of the K drawn patches (K = ``num_patches``, or the grid size)."""
        x = self.prepare(x)
        n, _, h, w = x.shape
        uniq, inverse = self.positions(h, w)
        p = self.patch
        if self.residual:
            xn = 10.0 * (x - F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), 3, 1))
        else:
            xn = (x - self.mean) / self.std
        scores = []
        step = max(1, self.patch_batch // max(n, 1))  # positions per backbone call
        for s in range(0, len(uniq), step):
            part = uniq[s:s + step].tolist()
            crops = torch.stack([xn[:, :, i:i + p, j:j + p] for i, j in part], 1)  # (N, u, 3, p, p)
            scores.append(self.net(crops.flatten(0, 1)).view(n, len(part)))
        return torch.cat(scores, 1)[:, inverse.to(x.device)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N,) image logits: mean of the M selected patch logits."""
        z = self.patch_logits(x)
        k = min(self.M, z.shape[1])
        if k >= z.shape[1]:
            return z.mean(1)
        sgn = float(self._select_sign)
        return sgn * torch.topk(sgn * z, k, dim=1).values.mean(1)

    def feature_layers(self) -> dict[str, nn.Module]:
        n = self.net
        if self.arch == "efficientnet_b4":
            return {**n.stages(), "pool": n.avgpool}
        return {"layer1": n.layer1, "layer2": n.layer2, "layer3": n.layer3, "layer4": n.layer4, "pool": n.avgpool}

    def load_official(self, path: str | Path) -> LaunderingStage:
        """Load the authors' checkpoint (``synth_vs_real.pth`` for stage 1,
        ``fully-synth_vs_laundered.pth`` for stage 2): ``{"net": {"efficientnet.*", "classifier.*"}}``
        of their ``EfficientNetGen`` B4 (``weights_only=True``). Needs ``arch="efficientnet_b4"``.
        The patch logit is their class-1 logit (stage 2: its negative, fakebench's sign)."""
        from .base import load_state_dict_strict, strip_prefix, torch_load_safe
        from .efficientnet import official_to_torchvision

        if self.arch != "efficientnet_b4":
            raise ConfigError(f"pretrained: the official checkpoint is an EfficientNet-B4; build with "
                              f"arch='efficientnet_b4' (got {self.arch!r}, the CPU option)")
        obj = torch_load_safe(path)
        if isinstance(obj, dict) and isinstance(obj.get("net"), dict):
            obj = obj["net"]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(f"{path}: expected the official {{'net': state_dict}} of an EfficientNet-B4")
        state = official_to_torchvision(strip_prefix(obj, ("module.", "model.")), self.net, str(path),
                                        head_sign=float(self._select_sign))
        load_state_dict_strict(self.net, state, str(path))
        self.meta["weights"] = f"official:{Path(path).name}"
        return self


class LaunderingStage1(LaunderingStage):
    """Stage 1 of Mandelli et al. (WIFS 2024): real (< 0) vs synthetic (> 0); the image score is
    the mean of the M highest patch logits."""

    stage = 1
    _select_sign = 1


class LaunderingStage2(LaunderingStage):
    """Stage 2 of Mandelli et al. (WIFS 2024): laundered (< 0) vs fully synthetic (> 0); meant
    for images stage 1 calls synthetic. The image score is the mean of the M LOWEST patch
    logits (the M patches most in favour of "laundered", as the authors' code selects)."""

    stage = 2
    _select_sign = -1


# ------------------------------------------------------------------------------------------------
# the three-way verdict


@torch.no_grad()
def two_stage_verdict(stage1: Detector, stage2: Detector, x: torch.Tensor, batch_size: int = 32) -> list[str]:
    """Three-way verdict per image: ``"real"`` when stage 1's logit is not above its
    ``threshold``; otherwise ``"synthetic"`` (fully synthetic) when stage 2's logit is above its
    threshold, else ``"laundered"`` (real content through a generator's autoencoder). Stage 2 is
    run only on the images stage 1 flags."""
    s1 = stage1.score(x, batch_size=batch_size)
    out = [REAL] * len(x)
    flagged = torch.nonzero(s1 > stage1.threshold).flatten()
    if len(flagged):
        s2 = stage2.score(x[flagged], batch_size=batch_size)
        for i, v in zip(flagged.tolist(), s2.tolist()):
            out[i] = SYNTHETIC if v > stage2.threshold else LAUNDERED
    return out


class LaunderingTwoStage(nn.Module):
    """Both stages together (Mandelli et al., WIFS 2024). ``forward(x)`` returns the (N, 2)
    logits ``[stage1, stage2]`` (both differentiable); :meth:`verdict` the three-way labels."""

    def __init__(self, stage1: Detector, stage2: Detector) -> None:
        super().__init__()
        self.stage1, self.stage2 = stage1, stage2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.stage1(x), self.stage2(x)], 1)

    def verdict(self, x: torch.Tensor, batch_size: int = 32) -> list[str]:
        return two_stage_verdict(self.stage1, self.stage2, x, batch_size)

    def save(self, directory: str | Path) -> Path:
        """``<dir>/stage1`` and ``<dir>/stage2``, each a fakebench checkpoint folder."""
        d = Path(directory)
        self.stage1.save(d / "stage1")
        self.stage2.save(d / "stage2")
        return d

    @classmethod
    def load(cls, directory: str | Path) -> "LaunderingTwoStage":
        from . import load

        d = Path(directory)
        return cls(load(d / "stage1"), load(d / "stage2")).eval()
