"""The :class:`Detector` interface shared by every detector family.

A detector is a ``torch.nn.Module`` whose ``forward(x)`` takes RGB images as float tensors in
[0, 1], shape (N, 3, H, W), and returns one logit per image, shape (N,); > 0 means synthetic.
All preprocessing (normalisation, resizing, cropping, patch averaging, fusion) lives inside
``forward`` so that gradients flow back to raw pixels and attack budgets are in pixel units.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Detector(nn.Module):
    """Base class. Subclasses implement ``forward``; what the detector is (paper, weights,
    differentiability, training recipe) lives on its registry card
    (:class:`fakebench.registry.DetectorCard`), the single source of truth.

    Attributes:
        card: the registry card; set by :func:`fakebench.detectors.create` and found by class
            for detectors built directly (``None`` for unregistered classes).
        differentiable: ``card.differentiable`` (True without a card); False for detectors whose
            score has no useful gradient, attacked by black-box attacks.
        threshold: decision threshold on the logit calibrated on validation data (0.0 when
            uncalibrated). Stored in the checkpoint config.
        registry_name / options: set by :func:`fakebench.detectors.create`, so that
            :meth:`save` / :func:`load` can rebuild the same architecture.
    """

    def __init__(self) -> None:
        super().__init__()
        self.registry_name: str = type(self).__name__.lower()
        self.options: dict[str, Any] = {}
        self.threshold: float = 0.0
        self.meta: dict[str, Any] = {}
        self._card: Any = None

    @property
    def card(self) -> Any:
        """This detector's :class:`~fakebench.registry.DetectorCard`, or None if unregistered."""
        if self._card is None:
            from . import card_for_class

            self._card = card_for_class(type(self))
        return self._card

    @card.setter
    def card(self, value: Any) -> None:
        self._card = value

    @property
    def resizes_to(self) -> int | None:
        """The side every input is resized to inside ``forward`` (None: images are used at their
        own size). The runner may then decode large JPEGs at a reduced scale, never below it."""
        return None

    @property
    def differentiable(self) -> bool:
        card = self.card
        return bool(card.differentiable) if card is not None else True

    @property
    def non_differentiable_reason(self) -> str:
        card = self.card
        return card.non_differentiable_reason if card is not None else ""

    # -- interface -------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def score(self, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Logits for a (possibly large) batch without building a graph; eval mode."""
        was = self.training
        self.eval()
        out = torch.cat([self(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
        self.train(was)
        return out

    def feature_layers(self) -> dict[str, nn.Module]:
        """Named internal layers usable by feature-space attacks (mimicry) and defenses."""
        return {}

    def preprocessing(self) -> dict[str, Any]:
        """What ``forward`` does to an image before the network, from the card's
        ``preprocessing_options`` (e.g. ``{"crop": 48}``; ``None`` = whole image)."""
        card = self.card
        return {k: getattr(self, k, self.options.get(k)) for k in getattr(card, "preprocessing_options", ())}

    # -- persistence -----------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {
            "detector": self.registry_name,
            "options": self.options,
            "preprocessing": self.preprocessing(),
            "threshold": float(self.threshold),
            "meta": self.meta,
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into ``directory``."""
        from safetensors.torch import save_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        save_file(state, str(d / WEIGHTS_FILE))
        (d / CONFIG_FILE).write_text(json.dumps(self.config_dict(), indent=2, sort_keys=True))
        return d


def check_rgb(x: torch.Tensor, name: str) -> None:
    """Raise ValueError unless ``x`` is an (N, 3, H, W) batch (``name``: the detector)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name}: expected (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")


def centre_crop(x: torch.Tensor, crop: int | None) -> torch.Tensor:
    """The centre ``crop`` x ``crop`` window of images larger than ``crop`` on either side
    (a side shorter than ``crop`` is kept whole); ``x`` itself when ``crop`` is None."""
    h, w = x.shape[-2:]
    if crop is None or (h <= crop and w <= crop):
        return x
    top, left = max((h - crop) // 2, 0), max((w - crop) // 2, 0)
    return x[..., top : top + min(crop, h), left : left + min(crop, w)]


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``; on any mismatch raise one clear line naming ``source``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:3]}{'...' if len(missing) > 3 else ''}")
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:3]}{'...' if len(unexpected) > 3 else ''}")
        raise CheckpointError(f"{source}: checkpoint does not match {type(model).__name__}: " + "; ".join(parts))
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(
                f"{source}: shape mismatch for {k!r}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
            )
    model.load_state_dict(state, strict=True)


def torch_load_safe(path: str | Path) -> Any:
    """``torch.load`` with ``weights_only=True`` (never unpickles arbitrary objects)."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: checkpoint file not found")
    if p.suffix == ".safetensors":
        from ..io import load_safetensors

        return load_safetensors(p)
    try:
        return torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, zip errors...
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{p}: cannot load safely with weights_only=True ({first})") from None


def strip_prefix(state: dict[str, torch.Tensor], prefixes: tuple[str, ...] = ("module.", "model.")) -> dict[str, torch.Tensor]:
    """Remove DataParallel / wrapper prefixes from state-dict keys."""
    out = {}
    for k, v in state.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p) :]
                break
        out[k] = v
    return out
