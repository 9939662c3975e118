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

Both resize the shorter side to the encoder's input size (224) with bicubic antialiased
interpolation, centre-crop it and normalise with the CLIP mean/std INSIDE ``forward``, with
torch ops, so gradients reach the raw pixels. The backbone is frozen and is NOT part of
``state_dict()``: ``save()`` writes only the linear head, and ``config.json`` records where the
backbone came from (a local weights file, a locally cached open_clip tag, or ``'random'`` +
``seed``), so ``detectors.load`` rebuilds it from the same source. Nothing is ever downloaded.

Probe training (:func:`train_probe`) embeds each image once and caches the features on disk
(:mod:`fakebench.detectors.feature_cache`), so refitting the head on the same images costs
only the linear fit.

open_clip is an optional dependency (``pip install 'fakebench[clip]'``), imported lazily.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
import time
import zipfile
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, ConfigError, DataError
from .base import Detector, load_state_dict_strict, strip_prefix, torch_load_safe
from .feature_cache import ExtractStats, FeatureCache, extract_cached, make_key, sha256_file

log = logging.getLogger(__name__)

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

    def fit_head(self, features: np.ndarray, labels: np.ndarray, **options: Any) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

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
    augmentation each with probability 0.5; :func:`train_probe` fits the same linear model
    by L2-regularised logistic regression on cached, standardised features instead."""

    registry_key = "univfd"
    feature_kind = "proj"
    l2_normalize = False

    def _official_head_state(self, obj: Any, path: str) -> dict[str, torch.Tensor]:
        state = _state_of_tensors(obj, path, "UnivFD fc_weights.pth: an nn.Linear state dict {'weight', 'bias'}")
        return strip_prefix(state, ("fc.",))

    def fit_head(self, features: np.ndarray, labels: np.ndarray, C: float = 1.0, max_iter: int = 5000,
                 seed: int = 0) -> dict[str, Any]:
        """L2-regularised logistic regression (strength 1/C) on standardised features; the
        standardisation is folded into the linear head, so C does not depend on the feature scale."""
        from sklearn.linear_model import LogisticRegression

        X = features.astype(np.float64)
        mu, sd = X.mean(0), X.std(0) + 1e-8
        clf = LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
        clf.fit((X - mu) / sd, labels)
        w = clf.coef_[0] / sd
        self.set_head(w, clf.intercept_[0] - float(w @ mu))
        self.meta["head"] = "probe:logistic"
        return {"method": "logistic", "C": C, "train_accuracy": float(clf.score((X - mu) / sd, labels))}


class CLIPDet(CLIPLinearDetector):
    """CLIPDet (Cozzolino et al., CVPRW 2024): L2-normalised next-to-last CLIP ViT-L/14
    features + linear SVM, calibrated to a log-likelihood ratio; LLR > 0 means synthetic.

    Official head file: ``weights.pth`` = ``{'model': {'fc.weight': (1, 1024), 'fc.bias': (1,)}}``
    (``module.`` prefixes accepted). :meth:`fit_head` trains ``sklearn.svm.LinearSVC`` and maps its
    margin m to an LLR by Platt scaling (our reading of "LLR output"): a, b are fitted by
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

    def fit_head(self, features: np.ndarray, labels: np.ndarray, C: float = 1.0, folds: int = 5,
                 seed: int = 0, max_iter: int = 10000) -> dict[str, Any]:
        """Linear SVM + Platt calibration to an LLR; sets the linear head (see class docstring)."""
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.svm import LinearSVC

        X, y = features.astype(np.float64), np.asarray(labels).astype(int)
        n1, n0 = int((y == 1).sum()), int((y == 0).sum())

        def svm() -> LinearSVC:
            return LinearSVC(C=C, max_iter=max_iter, random_state=seed)

        k = min(int(folds), n0, n1)
        if k >= 2:
            cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            margins = cross_val_predict(svm(), X, y, cv=cv, method="decision_function")
        else:  # too few pairs to cross-validate: calibrate on the training margins
            margins = svm().fit(X, y).decision_function(X)
        a, b = platt_fit(margins, y)
        if a <= 0:
            log.warning("clipdet: calibration slope %.3g <= 0 (no separation in cross-validation); using 1e-3", a)
            a = 1e-3
        final = svm().fit(X, y)
        prior = math.log(n1 / n0)
        self.set_head(a * final.coef_[0], a * final.intercept_[0] + b - prior)
        self.meta["head"] = "probe:linear-svm+platt-llr"
        self.meta["calibration"] = {"a": a, "b": b, "prior_log_odds": prior, "folds": k if k >= 2 else 0}
        return {"method": "linear-svm+platt", "C": C, "platt_a": a, "platt_b": b, "prior_log_odds": prior,
                "train_accuracy": float(final.score(X, y))}


def platt_fit(margins: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt (1999) scaling: (a, b) with P(fake | m) = sigmoid(a m + b), fitted by logistic
    regression on Platt's smoothed targets t+ = (N+ + 1)/(N+ + 2), t- = 1/(N- + 2), which keeps
    a finite on separable data."""
    from sklearn.linear_model import LogisticRegression

    m = np.asarray(margins, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(labels).astype(int)
    n1, n0 = int((y == 1).sum()), int((y == 0).sum())
    t = np.where(y == 1, (n1 + 1.0) / (n1 + 2.0), 1.0 / (n0 + 2.0))
    X2 = np.concatenate([m, m])
    y2 = np.concatenate([np.ones(len(m), int), np.zeros(len(m), int)])
    w2 = np.concatenate([t, 1.0 - t])
    lr = LogisticRegression(C=1e6, max_iter=1000).fit(X2, y2, sample_weight=w2)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


# --------------------------------------------------------------------------------------------
# probe training on cached features
# --------------------------------------------------------------------------------------------
def _paths_and_labels(images: Any, labels: Sequence[int] | None) -> tuple[list[Path], np.ndarray]:
    if isinstance(images, (str, Path)):
        try:
            from ..data import load_dataset
        except ImportError:
            raise ConfigError(f"{images}: loading a dataset folder needs fakebench.data; pass image paths + labels") from None
        images = load_dataset(images)
    items = list(images)
    if labels is not None:
        if len(labels) != len(items):
            raise DataError(f"train_probe: {len(items)} images but {len(labels)} labels")
        paths, ys = [Path(p) for p in items], [int(v) for v in labels]
    elif items and hasattr(items[0], "path") and hasattr(items[0], "label"):
        paths, ys = [Path(s.path) for s in items], [int(s.label) for s in items]
    elif items and all(isinstance(it, (tuple, list)) and len(it) == 2 for it in items):
        paths, ys = [Path(p) for p, _ in items], [int(v) for _, v in items]
    else:
        raise DataError("train_probe: pass image paths with labels=..., (path, label) pairs, or samples with .path/.label")
    bad = sorted({v for v in ys} - {0, 1})
    if bad:
        raise DataError(f"train_probe: labels must be 0 (real) or 1 (synthetic), got {bad}")
    return paths, np.asarray(ys, dtype=int)


def extract_features(det: CLIPLinearDetector, paths: Sequence[str | Path], cache: FeatureCache | None = None,
                     cache_dir: str | Path | None = None, batch_size: int = 16
                     ) -> tuple[np.ndarray, np.ndarray, ExtractStats]:
    """Features of image files through ``det``'s backbone, cached on disk.
    Returns (features (M, D), kept mask (N,), stats); see :func:`feature_cache.extract_cached`."""
    own = cache is None
    cache = cache if cache is not None else FeatureCache(cache_dir)
    try:
        was = det.training
        det.eval()
        try:
            return extract_cached(paths, det.feature_key(cache), det.embed_images, cache, batch_size)
        finally:
            det.train(was)
    finally:
        if own:
            cache.close()


def train_probe(det: CLIPLinearDetector, images: Any, labels: Sequence[int] | None = None, *,
                cache: FeatureCache | None = None, cache_dir: str | Path | None = None, batch_size: int = 16,
                **fit_options: Any) -> dict[str, Any]:
    """Fit ``det``'s linear head on frozen-backbone features of ``images`` (cached on disk).

    Args:
        det: a ``univfd`` or ``clipdet`` detector (its backbone is not changed).
        images: image paths (with ``labels``), ``(path, label)`` pairs, objects with ``.path``
            and ``.label`` (``fakebench.data.Sample``), or a dataset folder / manifest.
        labels: 0 real, 1 synthetic, aligned with ``images`` when those are plain paths.
        cache / cache_dir: the feature cache (default ``~/.cache/fakebench/features``).
        fit_options: passed to the family's ``fit_head`` (``C``, ``seed``, ...).

    Returns a report: method, train accuracy, images used, cache hits, computed, skipped files,
    feature and fit seconds. Unreadable images are skipped, never fatal.
    """
    if not isinstance(det, CLIPLinearDetector):
        raise ConfigError(f"train_probe: needs a CLIP probe detector (univfd, clipdet), got {type(det).__name__}")
    paths, y = _paths_and_labels(images, labels)
    feats, kept, stats = extract_features(det, paths, cache=cache, cache_dir=cache_dir, batch_size=batch_size)
    y = y[kept]
    if set(y.tolist()) != {0, 1}:
        raise DataError(f"train_probe: needs real (0) and synthetic (1) images; usable labels {sorted(set(y.tolist()))}")
    t0 = time.perf_counter()
    report = det.fit_head(feats, y, **fit_options)
    report.update({"n_images": len(paths), "n_used": int(kept.sum()), "n_real": int((y == 0).sum()),
                   "n_fake": int((y == 1).sum()), "cache_hits": stats.hits, "computed": stats.computed,
                   "skipped": list(stats.skipped), "feature_seconds": stats.seconds,
                   "fit_seconds": time.perf_counter() - t0})
    det.meta["probe"] = {k: report[k] for k in ("method", "n_real", "n_fake", "train_accuracy")}
    return report


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
            pretrained_head: str | None = None, model_config: dict[str, Any] | None = None, preprocess: str = "clip",
            seed: int = 0) -> CLIPLinearDetector:
    return _make(UnivFD, "univfd", model, backbone_weights, pretrained, pretrained_head, model_config, preprocess, seed)


def build_clipdet(model: str = "ViT-L-14", backbone_weights: str | None = None, pretrained: str | None = "commonpool_xl_s13b_b90k",
             pretrained_head: str | None = None, model_config: dict[str, Any] | None = None, preprocess: str = "clip",
             seed: int = 0) -> CLIPLinearDetector:
    return _make(CLIPDet, "clipdet", model, backbone_weights, pretrained, pretrained_head, model_config, preprocess, seed)

