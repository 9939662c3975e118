"""The open_clip image tower behind the CLIP detectors (:mod:`fakebench.detectors.clip`):
differentiable CLIP preprocessing, building a tower offline from an architecture name or an
explicit config, and loading its weights from local files only.

Nothing is ever downloaded: a pretrained tag resolves only to a file already in the local
Hugging Face cache, and a missing file raises one :class:`~fakebench.errors.CheckpointError`
line naming it. open_clip is an optional dependency (``pip install 'fakebench[clip]'``),
imported lazily.
"""

from __future__ import annotations

import copy
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from .base import load_state_dict_strict, strip_prefix, torch_load_safe

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: bump when :func:`clip_preprocess` changes its output: cached features are keyed by it
PREPROCESS_VERSION = 1
PREPROCESS_MODES = ("clip", "center_crop")
RANDOM = "random"


# --------------------------------------------------------------------------------------------
# preprocessing (differentiable)
# --------------------------------------------------------------------------------------------
def clip_preprocess(x: torch.Tensor, size: int, mode: str = "clip") -> torch.Tensor:
    """CLIP input geometry as torch ops: (N, 3, H, W) in [0, 1] -> (N, 3, size, size).

    ``mode="clip"``: resize the shorter side to ``size`` (bicubic, antialiased; the longer side
    to ``int(size * long / short)`` as torchvision's ``Resize(size)``), then centre-crop.
    ``mode="center_crop"``: centre-crop only (UnivFD's official evaluation of 256 px images);
    images with a side shorter than ``size`` are resized as in ``"clip"`` first.
    The resize output is clamped to [0, 1] (as an 8-bit resize would be)."""
    if mode not in PREPROCESS_MODES:
        raise ConfigError(f"preprocess: {mode!r} is not one of {PREPROCESS_MODES}")
    h, w = int(x.shape[-2]), int(x.shape[-1])
    short, long = min(h, w), max(h, w)
    if short != size and (mode == "clip" or short < size):
        new_long = int(size * long / short)
        hw = (size, new_long) if h <= w else (new_long, size)
        x = F.interpolate(x, size=hw, mode="bicubic", align_corners=False, antialias=True).clamp(0.0, 1.0)
        h, w = hw
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]


# --------------------------------------------------------------------------------------------
# open_clip backbone: build offline, load local weights only
# --------------------------------------------------------------------------------------------
def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError:
        raise ConfigError("CLIP detectors need open_clip: pip install 'fakebench[clip]'") from None
    return open_clip


def vision_config(model: str, model_config: dict[str, Any] | None = None) -> tuple[int, dict[str, Any], bool]:
    """(embed_dim, vision_cfg, quick_gelu) of an open_clip architecture name, or of an explicit
    ``model_config`` dict in open_clip's JSON format (``embed_dim``, ``vision_cfg``,
    optional ``quick_gelu``). Timm towers are forced to ``timm_model_pretrained=False``."""
    oc = _open_clip()
    if model_config is not None:
        cfg = copy.deepcopy(dict(model_config))
    else:
        cfg = oc.get_model_config(model)
        if cfg is None:
            raise ConfigError(f"model: {model!r} is not an open_clip architecture (e.g. ViT-L-14, ViT-B-16)")
    try:
        embed_dim, vision = int(cfg["embed_dim"]), dict(cfg["vision_cfg"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"model_config: needs 'embed_dim' and 'vision_cfg' (open_clip JSON format), got {sorted(cfg)}") from None
    if vision.get("timm_model_name"):
        vision["timm_model_pretrained"] = False  # never fetch timm weights
    return embed_dim, vision, bool(cfg.get("quick_gelu", False))


def build_visual(embed_dim: int, vision: dict[str, Any], quick_gelu: bool, seed: int = 0) -> nn.Module:
    """open_clip image tower with seeded random weights (no download, no text tower)."""
    oc = _open_clip()
    build = getattr(getattr(oc, "model", None), "_build_vision_tower", None)
    if build is None:  # pragma: no cover - very old / very new open_clip
        raise ConfigError("open_clip: this version has no model._build_vision_tower; install open_clip_torch>=2.24,<4")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        try:
            return build(embed_dim, vision, quick_gelu=quick_gelu)
        except TypeError as exc:
            raise ConfigError(f"model_config: open_clip rejected vision_cfg ({exc})") from None


def _hf_cache_roots() -> list[Path]:
    roots = []
    if os.environ.get("HF_HUB_CACHE"):
        roots.append(Path(os.environ["HF_HUB_CACHE"]))
    if os.environ.get("HF_HOME"):
        roots.append(Path(os.environ["HF_HOME"]) / "hub")
    roots.append(Path.home() / ".cache" / "huggingface" / "hub")
    return [r.expanduser() for r in roots]


def resolve_pretrained(model: str, tag: str, who: str) -> Path:
    """Local file of an open_clip pretrained tag, found ONLY in the local Hugging Face cache.

    Raises :class:`CheckpointError` naming the file and the Hugging Face repository when the
    file is not on this machine (fakebench never downloads)."""
    oc = _open_clip()
    cfg = oc.get_pretrained_cfg(model, tag) or {}
    hub = str(cfg.get("hf_hub", "")).strip("/")
    if not hub:
        known = oc.list_pretrained_tags_by_model(model)
        if not cfg:
            raise ConfigError(f"{who}: pretrained={tag!r} is not an open_clip tag of {model!r} (known: {known})")
        raise CheckpointError(f"{who}: open_clip tag {model}/{tag} has no Hugging Face file; pass backbone_weights=<local "
                              f"open_clip state dict (.safetensors or .bin)>")
    parts = hub.split("/")
    repo = "/".join(parts[:2])
    names = [parts[2]] if len(parts) > 2 and parts[2] else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    for root in _hf_cache_roots():
        snaps = root / ("models--" + repo.replace("/", "--")) / "snapshots"
        if not snaps.is_dir():
            continue
        for name in names:
            hits = sorted(snaps.glob(f"*/{name}"), key=lambda p: p.stat().st_mtime if p.exists() else 0, reverse=True)
            hits = [h for h in hits if h.exists()]
            if hits:
                return hits[0]
    raise CheckpointError(f"{who}: CLIP backbone {model}/{tag} is not on this machine and fakebench never downloads: "
                          f"supply backbone_weights=<{names[0]} from huggingface.co/{repo}> "
                          f"(or backbone_weights='random' for an untrained backbone)")


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.split("/", 1)[-1].startswith("code/") for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_visual_weights(visual: nn.Module, path: str | Path) -> None:
    """Load an open_clip CLIP state dict (full model with ``visual.*`` keys, or the image tower
    alone; ``.safetensors`` or a ``torch.load(weights_only=True)`` file) into ``visual``.
    Strict: any missing/unexpected key or shape raises one :class:`CheckpointError` line."""
    p = Path(path).expanduser()
    if p.exists() and p.suffix != ".safetensors" and _is_torchscript(p):
        raise CheckpointError(f"{p}: TorchScript archive (OpenAI's original .pt) is not loaded because it runs code; "
                              f"use open_clip_model.safetensors from huggingface.co/timm/vit_large_patch14_clip_224.openai")
    obj = torch_load_safe(p)
    for wrapper in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{p}: expected an open_clip state dict of tensors")
    state = strip_prefix(obj, ("module.",))
    if any(k.startswith("visual.") for k in state):
        state = {k[len("visual."):]: v for k, v in state.items() if k.startswith("visual.")}
    load_state_dict_strict(visual, state, str(p))
