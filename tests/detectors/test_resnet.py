"""cnnspot / res50nodown: interface, persistence, official checkpoint formats."""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision

from fakebench import detectors
from fakebench.detectors.base import IMAGENET_MEAN, IMAGENET_STD
from fakebench.errors import CheckpointError


@pytest.mark.parametrize("name", ["cnnspot", "res50nodown"])
@pytest.mark.parametrize("hw", [(32, 32), (37, 53)])
def test_forward_shape_and_gradient(name, hw):
    torch.manual_seed(0)
    det = detectors.create(name, arch="resnet10", width=8).eval()
    x = torch.rand(3, 3, *hw, requires_grad=True)
    y = det(x)
    assert y.shape == (3,)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert det.differentiable


@pytest.mark.parametrize("name", ["cnnspot", "res50nodown"])
def test_save_load_roundtrip_identical(tmp_path, name):
    torch.manual_seed(1)
    det = detectors.create(name, arch="resnet10", width=8).eval()
    # non-trivial batch-norm statistics
    det.train()
    with torch.no_grad():
        det(torch.rand(8, 3, 32, 32))
    det.eval()
    det.threshold = 0.37
    det.save(tmp_path / "ck")
    assert (tmp_path / "ck" / "model.safetensors").exists()
    back = detectors.load(tmp_path / "ck")
    x = torch.rand(4, 3, 40, 40)
    assert torch.equal(det(x), back(x))
    assert back.threshold == pytest.approx(0.37)
    assert back.registry_name == name and back.options == {"arch": "resnet10", "width": 8}


def _reference(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    m = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    s = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return model((x - m) / s).squeeze(1)


def test_cnnspot_official_format_matches_torchvision(tmp_path):
    """CNNDetection checkpoints: {'model': torchvision resnet50 state dict with fc (1, 2048)}."""
    torch.manual_seed(2)
    ref = torchvision.models.resnet50(num_classes=1).eval()
    path = tmp_path / "blur_jpg_prob0.5.pth"
    torch.save({"model": ref.state_dict(), "epoch": 3}, path)
    det = detectors.create("cnnspot", pretrained=str(path)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(det(x), _reference(ref, x), atol=1e-5)


def test_res50nodown_official_format_matches_strideless_resnet(tmp_path):
    """GANimageDetection / DMimageDetection: stride-1 conv1 and max-pool, {'model': state dict}."""
    torch.manual_seed(3)
    ref = torchvision.models.resnet50(num_classes=1)
    ref.conv1.stride = (1, 1)
    ref.maxpool.stride = 1
    ref.eval()
    path = tmp_path / "gandetection_resnet50nodown_stylegan2.pth"
    # official files were saved from DataParallel models in some releases: 'module.' prefixes
    torch.save({"model": {"module." + k: v for k, v in ref.state_dict().items()}}, path)
    det = detectors.create("res50nodown", pretrained=str(path)).eval()
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(det(x), _reference(ref, x), atol=1e-4)


def test_official_loader_rejects_wrong_state_dict(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"model": torchvision.models.resnet18(num_classes=1).state_dict()}, path)
    with pytest.raises(CheckpointError) as ei:
        detectors.create("cnnspot", pretrained=str(path))
    msg = str(ei.value)
    assert "wrong.pth" in msg and "\n" not in msg
    assert "missing keys" in msg or "shape mismatch" in msg


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_loading_never_unpickles_objects(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": Evil()}, f)
    with pytest.raises(CheckpointError) as ei:
        detectors.create("cnnspot", arch="resnet10", width=8, pretrained=str(path))
    assert "weights_only" in str(ei.value)


def test_res50nodown_tiles_large_inputs_by_area_weighted_mean():
    torch.manual_seed(4)
    det = detectors.create("res50nodown", arch="resnet10", width=8, tile_limit=40, tile=32).eval()
    x = torch.rand(1, 3, 48, 56)
    with torch.no_grad():
        got = det(x)
        tiles = [(x[..., i:i + 32, j:j + 32]) for i in (0, 32) for j in (0, 32)]
        logits = torch.stack([det._logits(t) for t in tiles], 1)
        w = torch.tensor([float(t.shape[-1] * t.shape[-2]) for t in tiles])
        assert torch.allclose(got, (logits * w).sum(1) / w.sum(), atol=1e-6)
        assert not torch.allclose(got, det._logits(x), atol=1e-6)


def test_registry_lists_families_with_papers():
    names = {e.name: e for e in detectors.entries()}
    assert "cnnspot" in names and "res50nodown" in names
    assert "2020" in names["cnnspot"].paper and "2021" in names["res50nodown"].paper
