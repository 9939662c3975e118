"""R50-E2P, the detector of the TrueFake paper.

Dell'Anna, Montibeller, Boato, "TrueFake: A Real World Case Dataset of Last Generation Fake
Images also Shared on Social Networks", IJCNN 2025 (MMLab-unitn/TrueFake-IJCNN25,
``detector/networks.py``, architecture ``nodown`` with ``--prototype``):

- a ResNet-50 whose first convolution has stride 1 (no early downsampling; unlike
  ``res50nodown`` the max-pool keeps torchvision's stride 2);
- its ``fc`` replaced by a 128-d linear embedding followed by dropout 0.5;
- a prototype scores layer: learned centres ``c_k`` (K x 128) and log-sigmas ``s_k``; with
  ``d_k = z - c_k`` and ``s'_k = relu(s_k)`` the logit is
  ``sum_k sign(sum_j d_kj) * |d_k|^2 / (2 exp(2 s'_k)) + 128 s'_k``.

``freeze`` trains the embedding and the prototypes only (the official launcher trains with
``--freeze --prototype``, one centre). The parameter names are the official ones
(``backbone.*``, ``backbone.fc.0.*``, ``proto.centers``, ``proto.logsigmas``), so the official
``best.pt`` (a plain ``model.state_dict()``) loads unchanged with ``pretrained=``.

fakebench deviations: without ``prototype`` the official ``nodown`` model outputs the 128-d
embedding (its training script then cannot compute the loss); fakebench adds one linear layer
``head`` (128 -> 1) there. ImageNet weights are never downloaded: ``imagenet_weights=`` takes a
local torchvision ResNet-50 state dict (the official code starts from ``ResNet50_Weights.DEFAULT``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from .base import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Detector,
    centre_crop,
    check_rgb,
    load_state_dict_strict,
    strip_prefix,
    torch_load_safe,
)
from .resnet import ResNetBackbone


class PrototypeScores(nn.Module):
    """The TrueFake prototype scores layer: (N, C) embeddings -> (N,) logits (see the module doc).
    Parameters ``centers`` (K, C) and ``logsigmas`` (K,) start at zero, as in the official code."""

    def __init__(self, input_dim: int, num_centers: int = 1) -> None:
        super().__init__()
        self.input_dim = int(input_dim)
        self.num_centers = int(num_centers)
        self.centers = nn.Parameter(torch.zeros(self.num_centers, self.input_dim))
        self.logsigmas = nn.Parameter(torch.zeros(self.num_centers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        d = z.reshape(len(z), 1, self.input_dim) - self.centers.unsqueeze(0)  # (N, K, C)
        side = torch.sign(d.sum(-1))  # which side of the centre the embedding lies on
        log_sigma = torch.relu(self.logsigmas)
        per_centre = side * d.pow(2).sum(-1) / (2 * torch.exp(2 * log_sigma)) + self.input_dim * log_sigma
        return per_centre.sum(1)


class R50E2P(Detector):
    """R50-E2P (TrueFake, IJCNN 2025). Input RGB in [0, 1]; ImageNet normalisation inside;
    whole images at their full resolution, as the official ``test.py`` (no resize, no crop;
    ``crop=`` centre-crops larger images if wanted).

    Args:
        arch, width: backbone (``resnet50`` / 64 is the paper's; smaller ones for CPU tests).
        embed_dim: the embedding size (128). dropout: after the embedding (0.5).
        prototype: the prototype scores layer (official); False: a linear head (fakebench's).
        num_centers: prototypes (1 in the paper's runs).
        freeze: only the embedding and the head train (``requires_grad`` off elsewhere).
    """

    def __init__(self, arch: str = "resnet50", width: int = 64, embed_dim: int = 128, dropout: float = 0.5,
                 prototype: bool = True, num_centers: int = 1, freeze: bool = False, crop: int | None = None) -> None:
        super().__init__()
        self.backbone = ResNetBackbone(arch, width, stride0=1, pool_stride=2)
        self.backbone.fc = nn.Sequential(nn.Linear(self.backbone.num_features, embed_dim), nn.Dropout(dropout))
        self.prototype = bool(prototype)
        if self.prototype:
            self.proto = PrototypeScores(embed_dim, num_centers)
        else:
            self.head = nn.Linear(embed_dim, 1)
        self.crop = crop
        self.freeze = bool(freeze)
        if self.freeze:
            for name, p in self.backbone.named_parameters():
                p.requires_grad_(name.startswith("fc."))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 128-d embedding (after dropout) of images in [0, 1]."""
        check_rgb(x, self.registry_name)
        x = centre_crop(x, self.crop)
        return self.backbone((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.embed(x)
        return self.proto(z) if self.prototype else self.head(z).squeeze(1)

    def feature_layers(self) -> dict[str, nn.Module]:
        n = self.backbone
        return {"stem": n.maxpool, "layer1": n.layer1, "layer2": n.layer2, "layer3": n.layer3, "layer4": n.layer4,
                "pool": n.avgpool, "embedding": n.fc}

    def load_official(self, path: str | Path) -> R50E2P:
        """Load the official ``best.pt`` (``model.state_dict()`` of ``ImageClassifier``; also
        accepted under a ``model`` / ``state_dict`` key, ``module.`` prefixes stripped). Strict:
        a missing or unexpected key (e.g. a checkpoint trained without ``--prototype``) raises
        CheckpointError naming the file."""
        obj = torch_load_safe(path)
        for key in ("model", "state_dict"):
            if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                obj = obj[key]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(f"{path}: expected a state dict (the official best.pt)")
        load_state_dict_strict(self, strip_prefix(obj, ("module.",)), str(path))
        return self

    def load_imagenet(self, path: str | Path) -> R50E2P:
        """Start from a torchvision ResNet-50 ImageNet state dict (its ``fc`` is dropped)."""
        state = {k: v for k, v in strip_prefix(torch_load_safe(path)).items() if not k.startswith("fc.")}
        own = {k: v for k, v in self.backbone.state_dict().items() if not k.startswith("fc.")}
        missing = sorted(set(own) - set(state))
        if missing:
            raise CheckpointError(f"{path}: not a torchvision ResNet state dict for this backbone (missing {missing[:3]})")
        load_state_dict_strict(self.backbone, {**self.backbone.state_dict(), **{k: state[k] for k in own}}, str(path))
        return self


def build_r50e2p(arch: str = "resnet50", width: int = 64, embed_dim: int = 128, dropout: float = 0.5,
                 prototype: bool = True, num_centers: int = 1, freeze: bool = False, crop: int | None = None,
                 pretrained: str | None = None, imagenet_weights: str | None = None) -> R50E2P:
    det = R50E2P(arch=arch, width=width, embed_dim=embed_dim, dropout=dropout, prototype=prototype,
                 num_centers=num_centers, freeze=freeze, crop=crop)
    if imagenet_weights:
        det.load_imagenet(imagenet_weights)
    if pretrained:
        det.load_official(pretrained)
    return det
