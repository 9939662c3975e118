"""UnivFD as the official code runs it: CenterCrop(224) without resizing, and the released
MIT-licensed head ``fc_weights.pth`` (../shared/weights/univfd) in a ViT-L/14-shaped probe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from conftest import shared_dir

from fakebench import detectors
from fakebench.detectors import clip_backbone as backbone

pytestmark = pytest.mark.usefixtures("one_thread")

#: a tiny ViT whose encoder input is 224 px (like ViT-L/14's) and whose embedding has ViT-L/14's 768 dims
TINY_224 = {"embed_dim": 768, "vision_cfg": {"image_size": 224, "layers": 1, "width": 32, "patch_size": 56,
                                             "head_width": 16}}


def _fc_weights() -> Path:
    root = shared_dir()
    path = None if root is None else root / "weights" / "univfd" / "fc_weights.pth"
    if path is None or not path.is_file():
        pytest.skip("../shared/weights/univfd/fc_weights.pth not found (set FAKEBENCH_SHARED)")
    return path


def test_default_preprocessing_is_the_official_center_crop_on_a_256_px_image():
    from torchvision import transforms

    det = detectors.create("univfd", backbone_weights="random", model_config=TINY_224)
    assert det.preprocess == "center_crop"
    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    official = transforms.Normalize(backbone.CLIP_MEAN, backbone.CLIP_STD)(transforms.CenterCrop(224)(x))
    assert torch.equal(det.prepare(x), official)
    # a 256 x 320 image too: crop only, no resize
    x2 = torch.rand(1, 3, 256, 320)
    assert torch.equal(det.prepare(x2), transforms.Normalize(backbone.CLIP_MEAN, backbone.CLIP_STD)(
        transforms.CenterCrop(224)(x2)))
    # clipdet keeps CLIP's resize + crop
    assert detectors.create("clipdet", backbone_weights="random", model_config=TINY_224).preprocess == "clip"


def _check_head(det, path: Path, forward: bool = True) -> None:
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    assert sorted(state) == ["bias", "weight"] and tuple(state["weight"].shape) == (1, 768)
    assert torch.equal(det.head.weight.detach(), state["weight"]) and torch.equal(det.head.bias.detach(), state["bias"])
    assert det.meta["head"] == "official:fc_weights.pth"
    if not forward:
        return
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.allclose(det(x), det.features(x) @ state["weight"][0] + state["bias"], atol=1e-4)


def test_real_fc_weights_load_into_a_768_d_probe():
    path = _fc_weights()
    _check_head(detectors.create("univfd", backbone_weights="random", model_config=TINY_224, pretrained_head=str(path)),
                path)


@pytest.mark.slow
def test_real_fc_weights_load_into_a_random_vit_l14_tower():
    """The real architecture (ViT-L-14-quickgelu, ~300 M random parameters; ~17 s to build on one core)."""
    path = _fc_weights()
    det = detectors.create("univfd", backbone_weights="random", pretrained_head=str(path))
    assert det.feature_dim == 768 and det.image_size == 224
    assert det.arch["vision_cfg"]["width"] == 1024 and det.arch["vision_cfg"]["layers"] == 24
    _check_head(det, path, forward=False)  # a ViT-L forward on one core costs ~10 s; the head is what is checked
