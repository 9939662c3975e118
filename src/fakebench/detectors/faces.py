"""Faces in the wild: EfficientNet-B1 + two 2048-wide fully-connected layers, 512 px input.

Aniano Porcile, Gindi, Mundra, Verbus, Farid, "Finding AI-generated faces in the wild",
CVPR Workshops 2024 (arXiv 2311.08577). Facts taken from the paper: the input face image is
resized to 512x512; an EfficientNet-B1 (ImageNet-1k pre-trained) embeds it; the scoring stage is
two fully-connected layers of 2048 units with ReLU, dropout 0.8, and a final one-unit scoring
layer (a sigmoid there; here we return the logit, > 0 = AI-generated). Only the scoring layers
were trained (AdaGrad, lr 1e-4, mini-batch 32, up to 10,000 steps). Results are reported as the
true-positive rate at a 0.5 % false-positive rate: that is the detector's operating point
(:attr:`FacesInTheWild.operating_fpr`, :meth:`FacesInTheWild.calibrate_operating_point`).

Our reading, where the paper is silent: the dropout follows each hidden layer; the pooled
EfficientNet feature (1280-d) feeds the first hidden layer; with a randomly initialised backbone
(no ImageNet file given) the whole network is trained, since a frozen random backbone is useless
(in eval mode a freshly initialised EfficientNet passes almost no signal: its batch-norm
statistics are still the defaults; training, or one pass in train mode, sets them).
No public checkpoint exists (the model was LinkedIn's production model), so there is no official
loader; ``imagenet_weights`` takes a local torchvision ``efficientnet_b1`` state dict (nothing is
ever downloaded).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from .base import IMAGENET_MEAN, IMAGENET_STD, Detector, load_state_dict_strict, strip_prefix, torch_load_safe

log = logging.getLogger(__name__)


class FacesInTheWild(Detector):
    """EfficientNet-B1 face detector of Aniano Porcile et al. (CVPRW 2024).

    Args:
        input_size: side in pixels every input is resized to inside ``forward`` (512 in the
            paper; tests use 32-64 to stay cheap on CPU). Bilinear with antialiasing, so the
            resize is differentiable and attack budgets stay in input pixels.
        hidden: width of the two fully-connected layers (2048).
        dropout: dropout probability after each hidden layer (0.8).
        imagenet_weights: optional path to a torchvision ``efficientnet_b1`` state dict
            (``features.*`` keys; the ImageNet ``classifier.*`` is ignored). Loaded with
            ``weights_only=True`` or safetensors.
        freeze_backbone: train only the scoring layers (the paper's setting). ``None`` = freeze
            exactly when ``imagenet_weights`` is given. A frozen backbone stays in eval mode
            (batch-norm statistics fixed) even when the detector is put in training mode;
            gradients still flow through it to the pixels.
    """

    #: the paper's operating point: report TPR at this false-positive rate on real faces
    operating_fpr: ClassVar[float] = 0.005

    def __init__(self, input_size: int = 512, hidden: int = 2048, dropout: float = 0.8,
                 imagenet_weights: str | None = None, freeze_backbone: bool | None = None) -> None:
        super().__init__()
        from torchvision.models import efficientnet_b1

        if int(input_size) < 32:
            raise ConfigError(f"input_size: must be >= 32 pixels (EfficientNet downsamples 32x), got {input_size}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {dropout}")
        self.input_size = int(input_size)
        self.features = efficientnet_b1(weights=None).features  # random init: never downloads
        self.pool = nn.AdaptiveAvgPool2d(1)
        n_feat = 1280
        self.head = nn.Sequential(
            nn.Linear(n_feat, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if imagenet_weights:
            self.load_imagenet(imagenet_weights)
        self.frozen = bool(imagenet_weights) if freeze_backbone is None else bool(freeze_backbone)
        if self.frozen and not imagenet_weights:
            log.warning("faces-wild: freezing a randomly initialised backbone (no imagenet_weights): its features "
                        "carry almost no signal; only the scoring layers will learn")
        if self.frozen:
            for p in self.features.parameters():
                p.requires_grad_(False)

    # -- interface -----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "FacesInTheWild":
        super().train(mode)
        if self.frozen:
            self.features.eval()
        return self

    @property
    def resizes_to(self) -> int | None:
        return self.input_size

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 1280) pooled EfficientNet-B1 features (after resizing)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.registry_name}: expected (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return torch.flatten(self.pool(self.features((x - self.mean) / self.std)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x)).squeeze(1)

    def feature_layers(self) -> dict[str, nn.Module]:
        layers = {f"stage{i}": m for i, m in enumerate(self.features)}
        layers.update({"pool": self.pool, "hidden1": self.head[1], "hidden2": self.head[4]})
        return layers

    def config_dict(self) -> dict[str, Any]:
        """Checkpoint config without the ImageNet file path (its weights are in the checkpoint)
        and with the resolved freezing, so :func:`fakebench.detectors.load` needs no other file."""
        cfg = super().config_dict()
        opts = dict(cfg["options"])
        opts.pop("imagenet_weights", None)
        opts["freeze_backbone"] = self.frozen
        cfg["options"] = opts
        return cfg

    # -- weights ---------------------------------------------------------------------------------
    def load_imagenet(self, path: str | Path) -> "FacesInTheWild":
        """Load the ``features.*`` part of a torchvision ``efficientnet_b1`` state dict (a bare
        dict, or under ``state_dict`` / ``model``). Strict on the backbone: any missing or
        unexpected backbone key raises :class:`CheckpointError` naming the file."""
        obj = torch_load_safe(path)
        for key in ("state_dict", "model"):
            if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                obj = obj[key]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(f"{path}: expected a torchvision efficientnet_b1 state dict")
        state = strip_prefix(obj)
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        if not feats:
            raise CheckpointError(f"{path}: no 'features.*' keys (expected a torchvision efficientnet_b1 state dict)")
        load_state_dict_strict(self.features, feats, str(path))
        return self

    # -- operating point -------------------------------------------------------------------------
    def calibrate_operating_point(self, real_logits: Sequence[float] | np.ndarray | torch.Tensor,
                                  fpr: float | None = None) -> float:
        """Set :attr:`threshold` so that a fraction ``fpr`` (default :attr:`operating_fpr`, 0.5 %)
        of the given REAL faces' logits lie above it, and return it. Decide "AI-generated" when
        ``logit > threshold``; the TPR there is the paper's headline number."""
        s = np.sort(np.asarray(torch.as_tensor(real_logits).detach().cpu().numpy(), dtype=np.float64).ravel())
        if s.size == 0:
            raise ValueError("calibrate_operating_point: no real logits given")
        rate = self.operating_fpr if fpr is None else float(fpr)
        k = int(np.floor(rate * s.size))  # number of reals allowed above the threshold
        self.threshold = float(s[-1 - k]) if k < s.size else float(s[0])
        return self.threshold

