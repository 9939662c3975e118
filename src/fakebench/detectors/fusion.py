"""Score fusion of several detectors inside one differentiable ``forward``.

``clipdet+corvi``: Cozzolino, Poggi, Corvi, Nießner, Verdoliva, "Raising the Bar of
AI-generated Image Detection with CLIP", CVPRW 2024, fuse the LLR of their CLIP detector with
that of Corvi et al.'s ResNet-50 without early downsampling (ICASSP 2023) by the soft-OR rule
of their repository (``soft_or_prob``): with p_i = sigmoid(s_i), the fused probability is
1 - prod_i (1 - p_i), i.e. "synthetic if any member says so", returned as its logit:

    L = sum_i log sigmoid(-s_i) = log prod_i (1 - p_i);   s = log(1 - e^L) - L.

Each member keeps its own preprocessing (CLIPDet resizes to 224, Corvi sees the full image),
so an attack on the fused score attacks both at once through pixel-space gradients.

Persistence: the fused ``config.json`` holds each member's registry name and options (minus
options whose effect lives in the weights, such as ``pretrained`` checkpoint paths), and
``model.safetensors`` holds both members' weights under ``members.<name>.``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from . import card, create
from .base import Detector

#: options whose effect is captured by the state dict (checkpoint paths), per member family;
#: a member class may override with its own ``state_options`` attribute
STATE_OPTIONS: dict[str, tuple[str, ...]] = {
    "res50nodown": ("pretrained",),
    "cnnspot": ("pretrained",),
    "univfd": ("pretrained_head",),
    "clipdet": ("pretrained_head",),
}
#: official file layout of grip-unina/ClipBased-SyntheticImageDetection/weights
OFFICIAL_FILES = {"clipdet": "clipdet_latent10k_plus/weights.pth", "corvi": "Corvi2023/weights.pth"}


def _log1mexp(v: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(v)) for v < 0, accurate at both ends (Maechler 2012)."""
    near0 = v > -0.6931471805599453
    a = torch.log(-torch.expm1(torch.where(near0, v, torch.full_like(v, -1.0))))
    b = torch.log1p(-torch.exp(torch.where(near0, torch.full_like(v, -1.0), v)))
    return torch.where(near0, a, b)


def soft_or(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Soft-OR of logits along ``dim``: logit(1 - prod(1 - sigmoid(s_i))). Differentiable;
    finite for finite inputs (|s| up to ~80 in float32)."""
    log_q = F.logsigmoid(-logits).sum(dim)
    tiny = torch.finfo(logits.dtype).tiny
    log_q = log_q.clamp(max=-tiny)  # every member at -inf-ish: avoid log(0)
    return _log1mexp(log_q) - log_q


def member_config(det: Detector) -> dict[str, Any]:
    """Registry name + options that rebuild ``det``'s architecture (checkpoint paths removed)."""
    name = det.registry_name
    drop = set(getattr(type(det), "state_options", STATE_OPTIONS.get(name, ())))
    return {"detector": name, "options": {k: v for k, v in det.options.items() if k not in drop}}


class SoftORFusion(Detector):
    """Soft-OR fusion of member detectors' logits (Cozzolino et al., CVPRW 2024).

    Args:
        members: name -> detector; each sees the same (N, 3, H, W) input in [0, 1]."""


    def __init__(self, members: dict[str, Detector]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ConfigError(f"fusion: needs at least two members, got {sorted(members)}")
        self.members = nn.ModuleDict(members)

    @property
    def differentiable(self) -> bool:
        """Differentiable when every member is."""
        return all(getattr(m, "differentiable", True) for m in self.members.values())

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) logits of the K members, in ``members`` order."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.registry_name}: expected (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        return torch.stack([m(x) for m in self.members.values()], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_or(self.member_logits(x), dim=1)

    def feature_layers(self) -> dict[str, nn.Module]:
        return {f"{name}.{k}": v for name, m in self.members.items() for k, v in m.feature_layers().items()}

    def config_dict(self) -> dict[str, Any]:
        cfg = super().config_dict()
        cfg["options"] = {name: member_config(m)["options"] for name, m in self.members.items()}
        cfg["meta"] = {**cfg["meta"], "members": {name: {"detector": m.registry_name, "threshold": float(m.threshold),
                                                        "meta": m.meta} for name, m in self.members.items()}}
        return cfg


def fuse_clipdet_corvi(clipdet: Detector, corvi: Detector) -> SoftORFusion:
    """Fuse two already-built detectors (e.g. trained or loaded) into a savable ``clipdet+corvi``."""
    if clipdet.registry_name != "clipdet" or corvi.registry_name != "res50nodown":
        raise ConfigError(f"clipdet+corvi: members must be clipdet and res50nodown, got "
                          f"{clipdet.registry_name} and {corvi.registry_name}")
    det = SoftORFusion({"clipdet": clipdet, "corvi": corvi})
    det.registry_name = "clipdet+corvi"
    det.options = {"clipdet": member_config(clipdet)["options"], "corvi": member_config(corvi)["options"]}
    return det


def build_clipdet_corvi(clipdet: dict[str, Any] | None = None, corvi: dict[str, Any] | None = None,
                   weights_dir: str | None = None) -> SoftORFusion:
    """``clipdet`` / ``corvi``: options of ``create("clipdet")`` / ``create("res50nodown")``.
    ``weights_dir``: the official repository's ``weights/`` folder; loads
    ``clipdet_latent10k_plus/weights.pth`` and ``Corvi2023/weights.pth`` from it."""
    copt, ropt = dict(clipdet or {}), dict(corvi or {})
    if weights_dir is not None:
        root = Path(weights_dir).expanduser()
        for key, opts, opt_name in (("clipdet", copt, "pretrained_head"), ("corvi", ropt, "pretrained")):
            f = root / OFFICIAL_FILES[key]
            if not f.is_file():
                raise CheckpointError(f"{f}: missing; {card('clipdet+corvi').weights_hint()}")
            opts.setdefault(opt_name, str(f))
    return fuse_clipdet_corvi(create("clipdet", **copt), create("res50nodown", **ropt))


