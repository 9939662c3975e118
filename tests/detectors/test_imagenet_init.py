"""ImageNet initialisation of the ResNet detectors (CNNSpot / res50nodown start from an
ImageNet ResNet-50): a torchvision-format state dict with a 1000-class fc loads as the
backbone, and the head is replaced by a fresh one-logit head."""

from __future__ import annotations

import pytest
import torch

from fakebench import detectors
from fakebench.errors import CheckpointError, ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def imagenet_file(tmp_path_factory):
    """A torchvision ResNet-18 ImageNet classifier's state dict (random weights, the real key
    names and the 1000-class fc), saved as torchvision ships it (a bare state dict .pth)."""
    from torchvision.models import resnet18

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        net = resnet18(num_classes=1000)
    state = net.state_dict()
    assert state["fc.weight"].shape == (1000, 512)
    path = tmp_path_factory.mktemp("imagenet") / "resnet18-imagenet.pth"
    torch.save(state, path)
    return path, state


@pytest.mark.parametrize("name", ["cnnspot", "res50nodown"])
def test_torchvision_imagenet_state_dict_initialises_the_backbone_and_replaces_the_head(imagenet_file, name):
    path, state = imagenet_file
    det = detectors.create(name, arch="resnet18", imagenet=str(path))
    own = det.net.state_dict()
    body = [k for k in state if not k.startswith("fc.")]
    assert body and all(torch.equal(own[k], state[k]) for k in body)  # every backbone tensor from the file
    assert own["fc.weight"].shape == (1, 512) and own["fc.bias"].shape == (1,)  # one-logit head, not the file's
    assert float(own["fc.bias"].abs().max()) == 0 and 0.005 < float(own["fc.weight"].std()) < 0.05  # N(0, 0.02)
    assert det.meta["init"] == "imagenet:resnet18-imagenet.pth"
    assert det(torch.rand(2, 3, 32, 32)).shape == (2,)
    # the official-checkpoint loader still refuses the 1000-class head (a shape mismatch)
    with pytest.raises(CheckpointError, match="fc.weight"):
        detectors.create(name, arch="resnet18", pretrained=str(path))


def test_imagenet_init_refuses_another_architecture_with_one_line(imagenet_file):
    path, _ = imagenet_file
    with pytest.raises(CheckpointError, match="resnet18-imagenet.pth"):
        detectors.create("cnnspot", arch="resnet50", imagenet=str(path))


def test_training_starts_from_an_imagenet_file(imagenet_file, tmp_path):
    from conftest import make_tiny_dataset

    from fakebench.train import TrainConfig, train_detector
    from fakebench.train.loop import init_from

    path, state = imagenet_file
    manifest = make_tiny_dataset(tmp_path / "data", n_per_class=8)
    cfg = TrainConfig(epochs=1, max_steps=1, batch_size=8, crop=32, seed=0, progress=False, init=str(path), lr=1e-9)
    det, _ = train_detector("cnnspot", manifest, tmp_path / "out", cfg, arch="resnet18")
    # one step at lr 1e-9 leaves the backbone at the ImageNet weights (BN statistics move, weights do not)
    w = det.net.conv1.weight.detach()
    assert torch.allclose(w, state["conv1.weight"], atol=1e-6)
    reloaded = detectors.load(tmp_path / "out")  # the checkpoint does not need the ImageNet file any more
    assert "imagenet" not in reloaded.options
    with pytest.raises(ConfigError, match="ImageNet initialisation"):
        init_from(detectors.create("embedding-pca"), path)
