"""R50-E2P (TrueFake, IJCNN 2025): the official key layout, the prototype scores layer against a
reference written from the paper's code, freeze, and training through ``fakebench train``."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torchvision.models import resnet50

from fakebench import detectors
from fakebench.errors import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread")


def reference_scores(z: torch.Tensor, centers: torch.Tensor, logsigmas: torch.Tensor) -> torch.Tensor:
    """The official ScoresLayer's arithmetic, written out with its 5-D shapes:
    out = z as [N, C, 1, 1]; diff = out[:, None] - centers[None, :, :, None, None] -> [N, K, C, 1, 1];
    sign of the sum over C; squared norm over C; relu'd log-sigmas; summed over K."""
    n, c = z.shape
    out = z.view(n, c, 1, 1)
    diff = out.unsqueeze(1) - centers[None, :, :, None, None]
    sign = torch.sign(torch.sum(diff, dim=2))
    sq = torch.sum(diff ** 2, dim=2)
    ls = torch.relu(logsigmas)
    part1 = sign * sq / (2 * torch.exp(2 * ls)).view(1, -1, 1, 1)
    part2 = (c * ls).view(1, -1, 1, 1)
    return (part1 + part2).sum(dim=(1, 2, 3))


def official_state_dict(num_centers: int = 3, seed: int = 0) -> tuple[dict[str, torch.Tensor], nn.Module]:
    """A state dict keyed like the official ImageClassifier('nodown', prototype): torchvision's
    resnet50 with a stride-1 conv1 and fc = Sequential(Linear(2048, 128), Dropout(0.5)) under
    ``backbone.``, plus ``proto.centers`` / ``proto.logsigmas``. Returns (state, the backbone)."""
    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        bb = resnet50(weights=None)
    bb.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=1, padding=3, bias=False)
    bb.fc = nn.Sequential(nn.Linear(2048, 128), nn.Dropout(0.5))
    with torch.no_grad():
        for m in bb.modules():
            if isinstance(m, nn.BatchNorm2d):  # non-trivial running statistics
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5)
    state = {f"backbone.{k}": v.clone() for k, v in bb.state_dict().items()}
    state["proto.centers"] = torch.randn(num_centers, 128, generator=g) * 0.5
    state["proto.logsigmas"] = torch.tensor([0.7, -0.3, 1.2][:num_centers])  # one negative: relu'd to 0
    return state, bb.eval()


def test_official_best_pt_loads_and_matches_the_reference(tmp_path):
    state, bb = official_state_dict()
    torch.save(state, tmp_path / "best.pt")
    det = detectors.create("r50e2p", num_centers=3, pretrained=str(tmp_path / "best.pt")).eval()
    assert set(det.state_dict()) == set(state)
    x = torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(1))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        z = bb((x - mean) / std)
        want = reference_scores(z, state["proto.centers"], state["proto.logsigmas"])
        got = det(x)
    assert got.shape == (2,)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    assert want.abs().min() > 1.0  # a non-trivial score, not two zeros agreeing
    # the layer itself on random embeddings, including both signs
    z = torch.randn(16, 128, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(det.proto(z), reference_scores(z, det.proto.centers, det.proto.logsigmas))


def test_official_checkpoint_of_another_layout_is_refused(tmp_path):
    state, _ = official_state_dict(num_centers=1)
    del state["proto.centers"]
    torch.save({"model": state}, tmp_path / "best.pt")
    with pytest.raises(CheckpointError, match="best.pt.*proto.centers"):
        detectors.create("r50e2p", pretrained=str(tmp_path / "best.pt"))


def test_stride_one_stem_and_freeze():
    det = detectors.create("r50e2p", arch="resnet10", width=8, freeze=True)
    assert det.backbone.conv1.stride == (1, 1) and det.backbone.maxpool.stride == 2
    trainable = {n for n, p in det.named_parameters() if p.requires_grad}
    assert trainable == {"backbone.fc.0.weight", "backbone.fc.0.bias", "proto.centers", "proto.logsigmas"}
    free = detectors.create("r50e2p", arch="resnet10", width=8, prototype=False)
    assert "head.weight" in dict(free.named_parameters()) and free(torch.rand(2, 3, 16, 16)).shape == (2,)


def test_train_r50e2p_on_truefake_ids_through_the_cli(tmp_path):
    from conftest import make_truefake_pattern_tree

    from fakebench.cli import main

    root = make_truefake_pattern_tree(tmp_path / "tf", n=8, size=32)
    out = tmp_path / "run"
    rc = main(["train", "r50e2p", "--data", str(root), "--format", "truefake", "--ids", "gan2:pre&real:pre",
               "--split-file", str(root / "split.json"), "--out", str(out), "--arch", "resnet10", "--width", "8",
               "--freeze", "--epochs", "1", "--max-steps", "3", "--batch-size", "2", "--crop", "16",
               "--no-progress"])
    assert rc == 0
    log = json.loads((out / "train_log.json").read_text())
    assert log["epochs"][0]["steps"] == 3
    assert (log["n_train"], log["n_val"]) == (8, 4)  # split.json's train / val of gan2:pre + realFFHQ:pre
    det = detectors.load(out)
    assert det.registry_name == "r50e2p" and det.freeze
    # frozen backbone unchanged, head moved (same seed -> same initial weights)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        before = detectors.create("r50e2p", arch="resnet10", width=8, freeze=True)
    torch.testing.assert_close(det.backbone.conv1.weight, before.backbone.conv1.weight)
    assert not torch.allclose(det.backbone.fc[0].weight, before.backbone.fc[0].weight)


def test_imagenet_start_loads_a_torchvision_resnet50_but_not_its_fc(tmp_path):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        tv = resnet50(weights=None).state_dict()
    torch.save(tv, tmp_path / "resnet50.pth")
    det = detectors.create("r50e2p", imagenet_weights=str(tmp_path / "resnet50.pth"))
    torch.testing.assert_close(det.backbone.conv1.weight, tv["conv1.weight"])  # copied, as the official new_conv
    torch.testing.assert_close(det.backbone.layer4[2].bn3.running_var, tv["layer4.2.bn3.running_var"])
    assert det.backbone.fc[0].weight.shape == (128, 2048)
    torch.save({k: v for k, v in tv.items() if not k.startswith("layer4")}, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="partial.pth"):
        detectors.create("r50e2p", imagenet_weights=str(tmp_path / "partial.pth"))
