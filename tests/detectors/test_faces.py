"""faces-wild (Aniano Porcile et al., CVPRW 2024): interface, head, weights, operating point.

A small ``input_size`` keeps the EfficientNet-B1 cheap on CPU; the paper's 512 is the default.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from fakebench import detectors
from fakebench.detectors.base import IMAGENET_MEAN, IMAGENET_STD
from fakebench.detectors.faces import FacesInTheWild
from fakebench.errors import CheckpointError


pytestmark = pytest.mark.usefixtures("one_thread")


def _small(**kw):
    torch.manual_seed(0)
    return detectors.create("faces-wild", input_size=32, **kw)


def _calibrated(det, size=32):
    """Set the batch-norm statistics from one random batch: a freshly initialised EfficientNet
    in eval mode (default statistics) passes almost no signal, which would make the tests
    below vacuous."""
    bns = [m for m in det.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch sets the statistics
    det.train()
    with torch.no_grad():
        det(torch.rand(8, 3, size, size, generator=torch.Generator().manual_seed(5)))
    for m in bns:
        m.momentum = 0.1
    return det.eval()


def test_architecture_follows_the_paper():
    det = detectors.create("faces-wild")
    assert det.input_size == 512
    lin = [m for m in det.head if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [(1280, 2048), (2048, 2048), (2048, 1)]
    drops = [m.p for m in det.head if isinstance(m, torch.nn.Dropout)]
    assert drops == [0.8, 0.8]
    n_backbone = sum(p.numel() for p in det.features.parameters())
    assert 6.0e6 < n_backbone < 7.0e6  # EfficientNet-B1 without its ImageNet classifier (7.8 M with it)
    assert FacesInTheWild.operating_fpr == 0.005 and "efficientnet_b1" in detectors.card("faces-wild").weights_hint()


@pytest.mark.parametrize("hw", [(32, 32), (45, 61)])
def test_forward_shape_and_gradient(hw):
    det = _calibrated(_small())
    x = torch.rand(2, 3, *hw, requires_grad=True)
    y = det(x)
    assert y.shape == (2,)
    assert det.embed(x).std(0).mean() > 1e-3  # the score depends on the image
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert det.differentiable


def test_dropout_only_in_training_mode():
    det = _small()
    x = torch.rand(2, 3, 32, 32)
    det.eval()
    assert torch.equal(det(x), det(x))
    det.train()
    torch.manual_seed(1)
    a = det(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, det(x))


def test_save_load_roundtrip_identical(tmp_path):
    det = _calibrated(_small())
    det.threshold = 1.25
    det.save(tmp_path / "ck")
    back = detectors.load(tmp_path / "ck")
    x = torch.rand(3, 3, 50, 36)
    assert torch.equal(det(x), back(x))
    assert back.threshold == pytest.approx(1.25) and back.input_size == 32


def test_pgd_evasion_lowers_the_score():
    from fakebench import attacks

    det = _calibrated(_small())
    x = torch.rand(3, 3, 48, 48, generator=torch.Generator().manual_seed(6))
    x_adv = attacks.create("pgd", eps=4 / 255, steps=5, direction="evade")(det, x, torch.ones(3, dtype=torch.long))
    assert (x_adv - x).abs().max() <= 4 / 255 + 1e-6
    assert (det.score(x_adv) < det.score(x)).all()


def test_local_imagenet_weights_load_and_freeze(tmp_path):
    torch.manual_seed(3)
    ref = _calibrated(torchvision.models.efficientnet_b1(weights=None), size=64)
    path = tmp_path / "efficientnet_b1_imagenet.pth"
    torch.save(ref.state_dict(), path)  # torchvision format, classifier included (ignored)
    det = detectors.create("faces-wild", input_size=64, imagenet_weights=str(path)).eval()
    x = torch.rand(2, 3, 64, 64)
    m, s = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        want = torch.flatten(ref.avgpool(ref.features((x - m) / s)), 1)
        assert want.std(0).mean() > 1e-3
        assert torch.allclose(det.embed(x), want, atol=1e-4, rtol=1e-4)
    # the paper tunes only the scoring layers: backbone frozen, its batch norm kept in eval mode
    assert det.frozen and not any(p.requires_grad for p in det.features.parameters())
    assert all(p.requires_grad for p in det.head.parameters())
    det.train()
    assert not det.features.training and det.head.training
    # the checkpoint does not depend on the ImageNet file any more
    det.eval().save(tmp_path / "ck")
    path.unlink()
    back = detectors.load(tmp_path / "ck")
    assert back.frozen and torch.equal(back(x), det(x))


def test_imagenet_loader_rejects_other_state_dicts(tmp_path):
    path = tmp_path / "b0.pth"
    torch.save(torchvision.models.efficientnet_b0(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError) as ei:
        detectors.create("faces-wild", input_size=32, imagenet_weights=str(path))
    assert "b0.pth" in str(ei.value) and "\n" not in str(ei.value)


def test_operating_point_is_half_a_percent_fpr():
    det = _small()
    reals = np.random.default_rng(0).normal(size=2000)
    thr = det.calibrate_operating_point(reals)
    assert thr == det.threshold
    assert int((reals > thr).sum()) == 10  # 0.5% of 2000


def test_trains_with_the_shared_recipe(tmp_path, tiny_dataset):
    from fakebench.train import TrainConfig, train_detector

    recipe = detectors.card("faces-wild").recipe
    assert recipe["lr"] == 1e-4 and recipe["batch_size"] == 32
    torch.manual_seed(0)
    det, hist = train_detector("faces-wild", tiny_dataset, tmp_path / "out",
                               TrainConfig(epochs=1, max_steps=2, batch_size=8, progress=False, seed=0),
                               input_size=32, hidden=64)
    assert hist["epochs"][0]["steps"] == 2 and np.isfinite(hist["epochs"][0]["train_loss"])
    back = detectors.load(tmp_path / "out")
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(back(x), det(x))
