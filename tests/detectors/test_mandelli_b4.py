"""Mandelli et al.'s official patch network: EfficientNet-B4 (arch="efficientnet_b4") and the loader
for the authors' checkpoint layout, checked against efficientnet_pytorch itself (the library
their code builds on) when it is installed."""

from __future__ import annotations

import pytest
import torch

from fakebench import detectors
from fakebench.detectors.efficientnet import EfficientNetB4Patch, tf_same_pads
from fakebench.errors import CheckpointError, ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_tf_same_pads_of_b4_at_380_px():
    assert tf_same_pads(380, 3, 2) == (0, 1) and tf_same_pads(95, 5, 2) == (2, 2) and tf_same_pads(24, 5, 2) == (1, 2)


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    """An official-layout checkpoint: efficientnet_pytorch's B4 with a 2-class classifier, as the
    authors' ``EfficientNetGen`` holds it, saved as ``{'net': state_dict}`` (random weights)."""
    ep = pytest.importorskip("efficientnet_pytorch")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        eff = ep.EfficientNet.from_name("efficientnet-b4").eval()
        classifier = torch.nn.Linear(eff._conv_head.out_channels, 2)
        with torch.no_grad():  # non-trivial batch-norm statistics so that eps and stats matter
            for m in eff.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 1.5)
    state = {f"efficientnet.{k}": v for k, v in eff.state_dict().items() if not k.startswith("_fc.")}
    state.update({f"classifier.{k}": v for k, v in classifier.state_dict().items()})
    path = tmp_path_factory.mktemp("mandelli") / "synth_vs_real.pth"
    torch.save({"net": state}, path)

    def reference(x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Their forward (features, pooling, dropout, classifier): the stage outputs
        (``extract_endpoints``) and the class-1 logit."""
        with torch.no_grad():
            f = eff._avg_pooling(eff.extract_features(x)).flatten(1)
            return eff.extract_endpoints(x), classifier(f)[:, 1]

    return path, reference


@pytest.mark.parametrize("stage,sign", [(1, 1.0), (2, -1.0)])
def test_official_checkpoint_gives_the_official_patch_scores(official_file, stage, sign):
    path, reference = official_file
    det = detectors.create(f"laundering-stage{stage}", arch="efficientnet_b4", pretrained=str(path), num_patches=1,
                           min_side=0, patch=96).eval()
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    ours = det.patch_logits(x)[:, 0]
    xn = (x - det.mean) / det.std
    ends, ref = reference(xn)
    net = det.net
    # efficientnet_pytorch's endpoints = torchvision's stage outputs 1, 2, 3, 5, 7, 8
    where = {"reduction_1": 1, "reduction_2": 2, "reduction_3": 3, "reduction_4": 5, "reduction_5": 7, "reduction_6": 8}

    def relative_errors() -> dict[str, float]:
        outs, h = {}, xn
        with torch.no_grad():
            for i, f in enumerate(net.features):
                h = f(h)
                outs[i] = h
        return {k: float((outs[i] - ends[k]).abs().max() / ends[k].abs().max()) for k, i in where.items()}

    errors = relative_errors()
    assert max(errors.values()) <= 1e-4, errors  # measured: 3e-7 .. 2e-6 relative, every stage
    assert torch.allclose(ours, sign * ref, atol=1e-5)
    assert isinstance(net, EfficientNetB4Patch) and sum(p.numel() for p in net.features.parameters()) > 17_000_000
    if stage == 1:  # without efficientnet_pytorch's asymmetric "same" pads the stem's stage is already off
        for conv in net._convs_in_order():
            conv._forward_pre_hooks.clear()
            conv.padding = ((conv.kernel_size[0] - 1) // 2,) * 2
        assert relative_errors()["reduction_1"] > 0.1  # measured 0.76 (random weights damp the later stages)
    assert det.meta["weights"] == "official:synth_vs_real.pth"
    assert "pretrained" not in det.config_dict()["options"]


def test_official_loader_errors_are_one_line(official_file, tmp_path):
    path, _ = official_file
    with pytest.raises(ConfigError, match="efficientnet_b4"):
        detectors.create("laundering-stage1", pretrained=str(path))  # the CPU ResNet cannot take it
    bad = tmp_path / "bad.pth"
    torch.save({"net": {"efficientnet._conv_stem.weight": torch.zeros(48, 3, 3, 3), "extra.w": torch.zeros(1)}}, bad)
    with pytest.raises(CheckpointError, match="bad.pth"):
        detectors.create("laundering-stage1", arch="efficientnet_b4", pretrained=str(bad))
