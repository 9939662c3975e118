"""CLIP-based detectors: a frozen open_clip image encoder and one linear layer on its features.

- ``univfd``: Ojha, Li, Lee, "Towards Universal Fake Image Detectors that Generalize Across
  Generative Models", CVPR 2023. Frozen CLIP ViT-L/14 (OpenAI weights); the logit is a linear
  layer on the 768-d image embedding (the projected CLS token, not L2-normalised). The
  official head, ``pretrained_weights/fc_weights.pth`` of WisconsinAIVision/UniversalFakeDetect,
  is the state dict of that ``nn.Linear``: ``weight`` (1, 768) and ``bias`` (1,).
- ``clipdet``: Cozzolino, Poggi, Corvi, Nießner, Verdoliva, "Raising the Bar of AI-generated
  Image Detection with CLIP", CVPRW 2024. CLIP ViT-L/14 (the official release uses open_clip's
  LAION CommonPool.XL weights), features taken at the next-to-last layer (the pooled token
  BEFORE the image projection, 1024-d for ViT-L/14) and L2-normalised, then a linear SVM
  trained few-shot on real/fake pairs; the output is read as a log-likelihood ratio (LLR > 0:
  synthetic). The official head (grip-unina/ClipBased-SyntheticImageDetection,
  ``weights/clipdet_latent10k_plus/weights.pth``) is ``{'model': {'fc.weight': (1, 1024),
  'fc.bias': (1,)}}``.

``clipdet`` resizes the shorter side to the encoder's input size (224) with bicubic
antialiased interpolation and centre-crops it (``preprocess="clip"``); ``univfd`` centre-crops
224 px WITHOUT resizing by default (``preprocess="center_crop"``), the official evaluation's
``transforms.CenterCrop(224)`` (images with a side below 224, which that would zero-pad, are
resized as in ``"clip"`` first: fakebench's deviation). Both normalise with the CLIP mean/std
INSIDE ``forward``, with torch ops, so gradients reach the raw pixels. The backbone is frozen and is NOT part of
``state_dict()``: ``save()`` writes only the linear head, and ``config.json`` records where the
backbone came from (a local weights file, a locally cached open_clip tag, or ``'random'`` +
``seed``), so ``detectors.load`` rebuilds it from the same source. Nothing is ever downloaded.

The open_clip plumbing (preprocessing, building the tower offline, local weights) is in
:mod:`fakebench.detectors.clip_backbone`. The detectors hold no training code: probe training
(:func:`fakebench.train.probes.train_probe`) embeds each image once, caches the features on
disk (:mod:`fakebench.detectors.feature_cache`) and sets the head with :meth:`~CLIPLinearDetector.set_head`.

open_clip is an optional dependency (``pip install 'fakebench[clip]'``), imported lazily.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError
from .base import Detector, load_state_dict_strict, strip_prefix, torch_load_safe
from .clip_backbone import (
    CLIP_MEAN,
    CLIP_STD,
    PREPROCESS_MODES,
    PREPROCESS_VERSION,
    RANDOM,
    build_visual,
    clip_preprocess,
    load_visual_weights,
    resolve_pretrained,
    vision_config,
)
from .feature_cache import FeatureCache, make_key, sha256_file


# --------------------------------------------------------------------------------------------
# detectors
# --------------------------------------------------------------------------------------------
def _hint(who: str) -> str:
    from . import REGISTRY

    return REGISTRY.card(who).weights_hint() if who in REGISTRY else ""


class CLIPLinearDetector(Detector):
    """Shared implementation: frozen open_clip image tower -> (optional L2 norm) -> nn.Linear.

    Args:
        model: open_clip architecture name (``ViT-L-14``, ``ViT-L-14-quickgelu``, ...).
        backbone_weights: local open_clip weights file, or ``'random'`` (seeded random init,
            for tests and benchmarks). Takes precedence over ``pretrained``.
        pretrained: open_clip pretrained tag, used only if its file is already in the local
            Hugging Face cache (``$HF_HUB_CACHE``, ``$HF_HOME/hub``, ``~/.cache/huggingface/hub``).
        model_config: explicit open_clip model config dict (overrides ``model``'s), e.g. a tiny
            ViT for tests: ``{"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2,
            "width": 64, "patch_size": 8, "head_width": 32}}``.
        preprocess: ``"clip"`` (resize shorter side + centre crop) or ``"center_crop"``.
        seed: initialisation seed of a random backbone and of the head.
    """

    #: "proj": the CLIP image embedding; "pre_proj": the pooled token before the projection
    feature_kind: ClassVar[str] = "proj"
    l2_normalize: ClassVar[bool] = False
    registry_key: ClassVar[str] = ""

    def __init__(self, model: str, backbone_weights: str | None = None, pretrained: str | None = None,
                 model_config: dict[str, Any] | None = None, preprocess: str = "clip", seed: int = 0,
                 who: str = "clip") -> None:
        super().__init__()
        if preprocess not in PREPROCESS_MODES:
            raise ConfigError(f"preprocess: {preprocess!r} is not one of {PREPROCESS_MODES}")
        embed_dim, vision, quick_gelu = vision_config(model, model_config)
        size = vision.get("image_size", 224)
        if isinstance(size, (list, tuple)):
            if len(set(size)) != 1:
                raise ConfigError(f"model_config: non-square image_size {size} is not supported")
            size = size[0]
        if backbone_weights is None and pretrained is None:
            raise CheckpointError(f"{who}: no backbone: pass backbone_weights=<local open_clip weights file> "
                                  f"(or 'random'); {_hint(who)}")
        if backbone_weights == RANDOM:
            path = None
        elif backbone_weights is not None:
            path = Path(backbone_weights).expanduser()
            if not path.is_file():
                raise CheckpointError(f"{path}: backbone weights file not found; {_hint(who)}")
        else:
            path = resolve_pretrained(model, str(pretrained), who)
        visual = build_visual(embed_dim, vision, quick_gelu, seed)
        if path is not None:
            load_visual_weights(visual, path)
        if self.feature_kind == "pre_proj":
            proj = getattr(visual, "proj", None)
            if not isinstance(proj, torch.Tensor):
                raise ConfigError(f"{who}: next-to-last features need a ViT tower with a 'proj' matrix ({model})")
            dim = int(proj.shape[0])
            visual.proj = None
        else:
            dim = int(getattr(visual, "output_dim", embed_dim))
        visual.eval().requires_grad_(False)
        self._frozen = [visual]  # a list hides the frozen tower from state_dict() and parameters()
        self.image_size = int(size)
        self.preprocess = preprocess
        self.feature_dim = dim
        self.backbone_file = path
        self.arch = {"embed_dim": embed_dim, "vision_cfg": vision, "quick_gelu": quick_gelu}
        self._identity: str | None = None
        self.pre_head = nn.Identity()  # hook point: the features the head sees
        self.head = nn.Linear(dim, 1)
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            self.head.weight.normal_(0.0, 0.02, generator=gen)
            self.head.bias.zero_()
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    # -- module plumbing -------------------------------------------------------------------
    @property
    def resizes_to(self) -> int | None:
        """``image_size`` with the CLIP preprocessing (shorter side resized); None for
        ``center_crop``, which crops the image at its own scale."""
        return self.image_size if self.preprocess == "clip" else None

    @property
    def backbone(self) -> nn.Module:
        """The frozen open_clip image tower (always in eval mode, requires_grad False)."""
        return self._frozen[0]

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "CLIPLinearDetector":
        super()._apply(fn, *args, **kwargs)
        self._frozen[0]._apply(fn, *args, **kwargs)  # .to(device) / .half() reach the hidden tower
        return self

    def feature_layers(self) -> dict[str, nn.Module]:
        layers: dict[str, nn.Module] = {}
        blocks = getattr(getattr(self.backbone, "transformer", None), "resblocks", None)
        if blocks is not None:
            layers.update({f"block{i}": b for i, b in enumerate(blocks)})
        layers["features"] = self.pre_head
        return layers

    # -- scoring ---------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Resize/crop/normalise: (N, 3, H, W) in [0, 1] -> (N, 3, S, S) encoder input."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"{self.registry_name}: expected (N, 3, H, W) RGB in [0, 1], got {tuple(x.shape)}")
        return (clip_preprocess(x, self.image_size, self.preprocess) - self.mean) / self.std

    def embed(self, z: torch.Tensor) -> torch.Tensor:
        """Encoder input -> (N, D) features the head sees."""
        f = self.backbone(z)
        return F.normalize(f, dim=-1) if self.l2_normalize else f

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, D) features (differentiable w.r.t. ``x``)."""
        return self.embed(self.prepare(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pre_head(self.features(x))).squeeze(1)

    @torch.no_grad()
    def embed_images(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Decoded images (H, W, 3) float in [0, 1], any sizes -> (n, D) float32 features."""
        ref = self.head.weight
        z = torch.cat([self.prepare(torch.from_numpy(np.ascontiguousarray(im, dtype=np.float32))
                                    .permute(2, 0, 1)[None].to(device=ref.device, dtype=ref.dtype)) for im in images])
        return self.embed(z).float().cpu().numpy()

    # -- identity of the features (cache key) ----------------------------------------------
    def backbone_identity(self, cache: FeatureCache | None = None) -> str:
        """sha256 of the weights file (memoised in ``cache``), or of the tower's tensors."""
        if self._identity is None:
            if self.backbone_file is not None:
                self._identity = cache.file_sha256(self.backbone_file) if cache else sha256_file(self.backbone_file)
            else:
                h = hashlib.sha256()
                for k, v in sorted(self.backbone.state_dict().items()):
                    h.update(k.encode())
                    h.update(v.detach().cpu().contiguous().numpy().tobytes())
                self._identity = "tensors:" + h.hexdigest()
        return self._identity

    def feature_key(self, cache: FeatureCache | None = None) -> str:
        """Cache key of this detector's features: architecture, weights, layer, preprocessing."""
        return make_key(kind="clip-image-features", arch=self.arch, weights=self.backbone_identity(cache),
                        feature=self.feature_kind, l2=self.l2_normalize, preprocess=self.preprocess,
                        size=self.image_size, version=PREPROCESS_VERSION)

    # -- head ------------------------------------------------------------------------------
    def set_head(self, weight: np.ndarray | torch.Tensor, bias: float | np.ndarray | torch.Tensor) -> None:
        w = torch.as_tensor(np.asarray(weight, dtype=np.float32)).reshape(1, -1)
        if w.shape[1] != self.feature_dim:
            raise ValueError(f"head weight has {w.shape[1]} inputs, features have {self.feature_dim}")
        with torch.no_grad():
            self.head.weight.copy_(w.to(self.head.weight))
            self.head.bias.fill_(float(np.asarray(bias, dtype=np.float64).ravel()[0]))

    def _official_head_state(self, obj: Any, path: str) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def from_pretrained(cls, path: str | Path, **options: Any) -> "CLIPLinearDetector":
        """The registered detector with the paper's released head file ``path`` loaded;
        ``options`` as for :func:`fakebench.detectors.create` (``backbone_weights``, ...)."""
        from . import create

        return create(cls.registry_key, pretrained_head=str(path), **options)

    def load_official(self, path: str | Path) -> "CLIPLinearDetector":
        """Load the paper's released linear head (format: see the family's docstring)."""
        obj = torch_load_safe(path)
        load_state_dict_strict(self.head, self._official_head_state(obj, str(path)), str(path))
        self.meta["head"] = f"official:{Path(path).name}"
        return self

    def config_dict(self) -> dict[str, Any]:
        cfg = super().config_dict()
        # the head is in model.safetensors: reloading must not need the original head file
        cfg["options"] = {k: v for k, v in cfg["options"].items() if k != "pretrained_head"}
        return cfg


def _state_of_tensors(obj: Any, path: str, what: str) -> dict[str, torch.Tensor]:
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: expected {what}")
    return strip_prefix(obj, ("module.",))


class UnivFD(CLIPLinearDetector):
    """UnivFD (Ojha, Li, Lee, CVPR 2023): frozen CLIP ViT-L/14 + nn.Linear(768, 1).

    Official head file: ``fc_weights.pth`` = ``{'weight': (1, 768), 'bias': (1,)}``. Training
    recipe (official repository): Adam lr 1e-4, batch 256, 224 crops, blur and JPEG
    augmentation each with probability 0.5: ``fakebench train univfd --recipe ojha2023`` (the
    shared loop; features computed per augmented view, no cache).
    :func:`fakebench.train.probes.train_probe` is the fast alternative: L2-regularised logistic
    regression on cached, standardised features of the clean images
    (:func:`fakebench.train.probes.fit_univfd_head`)."""

    registry_key = "univfd"
    feature_kind = "proj"
    l2_normalize = False

    def _official_head_state(self, obj: Any, path: str) -> dict[str, torch.Tensor]:
        state = _state_of_tensors(obj, path, "UnivFD fc_weights.pth: an nn.Linear state dict {'weight', 'bias'}")
        return strip_prefix(state, ("fc.",))


class CLIPDet(CLIPLinearDetector):
    """CLIPDet (Cozzolino et al., CVPRW 2024): L2-normalised next-to-last CLIP ViT-L/14
    features + linear SVM, calibrated to a log-likelihood ratio; LLR > 0 means synthetic.

    Official head file: ``weights.pth`` = ``{'model': {'fc.weight': (1, 1024), 'fc.bias': (1,)}}``
    (``module.`` prefixes accepted). Probe training (:func:`fakebench.train.probes.fit_clipdet_head`)
    trains ``sklearn.svm.LinearSVC`` and maps its margin m to an LLR by Platt scaling (our reading of "LLR output"): a, b are fitted by
    logistic regression with Platt's smoothed targets on cross-validated margins, then the prior
    log-odds of the training set are removed: LLR = a m + b - log(n_fake / n_real). The SVM and
    the calibration fold into one linear layer, so the detector stays differentiable."""

    registry_key = "clipdet"
    feature_kind = "pre_proj"
    l2_normalize = True

    def _official_head_state(self, obj: Any, path: str) -> dict[str, torch.Tensor]:
        for wrapper in ("model", "state_dict", "net"):
            if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
                obj = obj[wrapper]
                break
        state = _state_of_tensors(obj, path, "CLIPDet weights.pth: {'model': {'fc.weight', 'fc.bias'}}")
        if not any(k.startswith("fc.") for k in state):
            raise CheckpointError(f"{path}: no 'fc.*' keys (expected CLIPDet weights.pth: {{'model': {{'fc.weight', "
                                  f"'fc.bias'}}}}, got {sorted(state)[:3]})")
        return {k[len("fc."):] if k.startswith("fc.") else k: v for k, v in state.items()}


# --------------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------------
def _make(cls: type[CLIPLinearDetector], who: str, model: str, backbone_weights: str | None, pretrained: str | None,
          pretrained_head: str | None, model_config: dict[str, Any] | None, preprocess: str,
          seed: int) -> CLIPLinearDetector:
    det = cls(model=model, backbone_weights=backbone_weights, pretrained=pretrained, model_config=model_config,
              preprocess=preprocess, seed=seed, who=who)
    if pretrained_head:
        det.load_official(pretrained_head)
    return det


def build_univfd(model: str = "ViT-L-14-quickgelu", backbone_weights: str | None = None, pretrained: str | None = "openai",
            pretrained_head: str | None = None, model_config: dict[str, Any] | None = None,
            preprocess: str = "center_crop", seed: int = 0) -> CLIPLinearDetector:
    return _make(UnivFD, "univfd", model, backbone_weights, pretrained, pretrained_head, model_config, preprocess, seed)


def build_clipdet(model: str = "ViT-L-14", backbone_weights: str | None = None, pretrained: str | None = "commonpool_xl_s13b_b90k",
             pretrained_head: str | None = None, model_config: dict[str, Any] | None = None, preprocess: str = "clip",
             seed: int = 0) -> CLIPLinearDetector:
    return _make(CLIPDet, "clipdet", model, backbone_weights, pretrained, pretrained_head, model_config, preprocess, seed)

