"""Named training recipes: the papers' augmentation and optimiser settings, and the CPU-sized
demo recipe, for ``fakebench train DETECTOR --recipe NAME`` / :func:`recipe_config`.

A recipe fills :class:`~fakebench.train.loop.TrainConfig` fields underneath the ones the caller
sets explicitly. Every recipe trains with the shared loop: Adam, binary cross-entropy on the
logit, early stopping on the validation AUC (``patience``), the best epoch's weights kept.
What each one takes from its paper, and what is fakebench's own reading, is in ``source``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    name: str
    detectors: tuple[str, ...]
    config: dict[str, Any]
    source: str
    #: what the user must supply for the full recipe (e.g. the ImageNet initialisation)
    needs: str = ""
    options: dict[str, Any] = field(default_factory=dict)


_IMAGENET = ("start from an ImageNet ResNet-50: --init resnet50-*.pth (torchvision state dict; the head is "
             "replaced)")
_WANG = {"blur_prob": 0.5, "jpeg_prob": 0.5, "crop": 224, "flip": True, "lr": 1e-4, "batch_size": 64}

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("wang2020", ("cnnspot",), _WANG,
           "Wang et al. 2020 (CNNDetection): Blur+JPEG (0.5): Gaussian blur sigma ~ U[0, 3] and JPEG quality "
           "~ U{30..100}, each with probability 0.5; random 224 crops, horizontal flips; Adam lr 1e-4, batch 64. "
           "Their lr drops 10x on a plateau; fakebench stops early instead", _IMAGENET),
    Recipe("wang2020-p0.1", ("cnnspot",), {**_WANG, "blur_prob": 0.1, "jpeg_prob": 0.1},
           "Wang et al. 2020, the Blur+JPEG (0.1) model: as wang2020 with probability 0.1", _IMAGENET),
    Recipe("grag2021", ("res50nodown",),
           {"blur_prob": 0.5, "jpeg_prob": 0.5, "rot90": True, "flip": True, "crop": 96, "lr": 1e-4, "batch_size": 64},
           "Gragnaniello et al. 2021: blur (p 0.5), JPEG (p 0.5), random 90-degree rotations and flips on "
           "ImageNet-initialised ResNet-50 without early downsampling; the crop (96), lr and batch are "
           "fakebench's reading, not checked against their training code (not released)", _IMAGENET),
    Recipe("corvi2023", ("res50nodown",),
           {"blur_prob": 0.5, "jpeg_prob": 0.5, "rot90": True, "flip": True, "crop": 96, "lr": 1e-4, "batch_size": 64},
           "Corvi et al. 2023 retrain Gragnaniello et al.'s network and procedure on latent-diffusion images: "
           "fakebench uses grag2021's augmentation (its reading)", _IMAGENET),
    Recipe("ojha2023", ("univfd",),
           {"blur_prob": 0.5, "jpeg_prob": 0.5, "crop": 224, "flip": True, "lr": 1e-4, "batch_size": 256},
           "Ojha et al. 2023 (UniversalFakeDetect): the linear head (N(0, 0.02) init) on the frozen CLIP ViT-L/14, "
           "AdamW lr 1e-4 with weight decay 0 (= Adam), batch 256, BCE, blur sigma ~ U[0, 3] and JPEG quality "
           "~ {30..100} each with probability 0.5, 224 crops, flips: features are computed per augmented view (no "
           "feature cache; train_probe is the cached logistic-regression fit on clean features). Their JPEG picks "
           "cv2 or PIL at random (fakebench: PIL) and their lr drops 10x at early-stop plateaus (fakebench stops)",
           "backbone_weights=<open_clip ViT-L-14-quickgelu OpenAI weights> (--det-opt)"),
    Recipe("cpu-demo", ("cnnspot", "res50nodown"),
           {"epochs": 12, "batch_size": 32, "lr": 1e-3, "schedule": "cosine", "blur_prob": 0.1, "jpeg_prob": 0.1,
            "crop": 48, "patience": 6},
           "fakebench's own CPU-sized recipe used by the demo (ResNet-10 width 16 on 64-px patches): 48-px crops, "
           "cosine lr from 1e-3, blur + JPEG at 0.1 (the demo's res50nodown sets both to 0)",
           options={"arch": "resnet10", "width": 16}),
)}


def get_recipe(name: str, detector: str | None = None) -> Recipe:
    """The recipe ``name``; a one-line ConfigError for an unknown name or another detector."""
    if name not in RECIPES:
        raise ConfigError(f"recipe: {name!r} is not one of {sorted(RECIPES)}")
    r = RECIPES[name]
    if detector is not None and detector not in r.detectors:
        raise ConfigError(f"recipe: {name!r} trains {', '.join(r.detectors)}, not {detector!r}")
    return r


def recipe_config(name: str, detector: str | None = None, **explicit: Any) -> Any:
    """A :class:`~fakebench.train.loop.TrainConfig` with recipe ``name``'s settings underneath
    ``explicit`` (fields set to None in ``explicit`` are ignored)."""
    from .loop import TrainConfig

    r = get_recipe(name, detector)
    return TrainConfig(**{**r.config, **{k: v for k, v in explicit.items() if v is not None}})
