"""clipdet+corvi: soft-OR fusion rule, differentiability, persistence, official weights layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("open_clip")

from fakebench import attacks, detectors  # noqa: E402
from fakebench.detectors.fusion import SoftORFusion, fuse_clipdet_corvi, soft_or  # noqa: E402
from fakebench.detectors.resnet import ResNetBackbone  # noqa: E402
from fakebench.errors import CheckpointError, ConfigError  # noqa: E402

TINY = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32,
                                        "pool_type": "avg"}}
CLIP_OPTS = {"backbone_weights": "random", "model_config": TINY}
CORVI_OPTS = {"arch": "resnet10", "width": 8}


def fused(**kw) -> SoftORFusion:
    torch.manual_seed(0)
    return detectors.create("clipdet+corvi", clipdet={**CLIP_OPTS, **kw}, corvi=CORVI_OPTS).eval()


def _official_soft_or(s: np.ndarray) -> np.ndarray:
    """The repository's formula, written from its definition: -softminusinv(sum log_expit(-s))."""
    from scipy.special import log_expit

    y = log_expit(-s).sum(-1)
    return -(y - np.log(-np.expm1(y)))


def test_soft_or_is_one_minus_product_of_complements():
    rng = np.random.default_rng(0)
    s = rng.normal(0, 3, (50, 2))
    ours = soft_or(torch.from_numpy(s), dim=1).numpy()
    p = 1 / (1 + np.exp(-s))
    p_or = 1 - np.prod(1 - p, axis=1)
    assert np.allclose(1 / (1 + np.exp(-ours)), p_or, atol=1e-9)
    assert np.allclose(ours, _official_soft_or(s), atol=1e-9)
    # OR-like: at least as high as the highest member, and a silent member changes nothing
    assert (ours >= s.max(1) - 1e-9).all()
    one = torch.tensor([[1.3, -60.0]], dtype=torch.float64)
    assert soft_or(one).item() == pytest.approx(1.3, abs=1e-9)


def test_soft_or_extreme_scores_finite_with_finite_gradients():
    s = torch.tensor([[-100.0, -100.0], [100.0, 100.0], [-30.0, 30.0], [0.0, 0.0]], requires_grad=True)
    out = soft_or(s)
    assert torch.isfinite(out).all()
    assert out[1] > 90 and out[0] < -80
    out.sum().backward()
    assert torch.isfinite(s.grad).all() and (s.grad >= 0).all()


def test_fused_forward_is_soft_or_of_members_and_differentiable():
    det = fused()
    assert isinstance(det, SoftORFusion) and det.differentiable
    x = torch.rand(3, 3, 45, 38, requires_grad=True)
    out = det(x)
    assert out.shape == (3,)
    members = torch.stack([det.members["clipdet"](x), det.members["corvi"](x)], 1)
    assert torch.allclose(out, soft_or(members, 1), atol=1e-6)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert {"clipdet.features", "corvi.layer4"} <= set(det.feature_layers())


def test_save_load_roundtrip_identical_with_both_sub_configs(tmp_path):
    det = fused(seed=2)
    with torch.no_grad():
        det.members["clipdet"].head.weight.normal_()
        det.members["clipdet"].head.bias.fill_(-0.3)
        det.members["corvi"].net.fc.bias.fill_(0.7)
    det.save(tmp_path / "ck")
    import json

    cfg = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert cfg["detector"] == "clipdet+corvi"
    assert cfg["options"]["clipdet"]["seed"] == 2 and cfg["options"]["corvi"] == CORVI_OPTS
    back = detectors.load(tmp_path / "ck")
    x = torch.rand(2, 3, 40, 52)
    assert torch.equal(det(x), back(x))
    assert back.members["corvi"].registry_name == "res50nodown"


def _write_official_weights(root, clip_dim=64):
    """The official weights/ layout: CLIPDet head and Corvi2023 res50nodown, both {'model': ...}."""
    (root / "clipdet_latent10k_plus").mkdir(parents=True)
    (root / "Corvi2023").mkdir(parents=True)
    w, b = torch.randn(1, clip_dim), torch.randn(1)
    torch.save({"model": {"fc.weight": w, "fc.bias": b}}, root / "clipdet_latent10k_plus" / "weights.pth")
    torch.manual_seed(4)
    ref = ResNetBackbone("resnet10", 8, stride0=1)
    torch.save({"model": {"module." + k: v for k, v in ref.state_dict().items()}}, root / "Corvi2023" / "weights.pth")
    return w, b, ref


def test_weights_dir_loads_both_official_files_and_persists_without_them(tmp_path):
    w, b, ref = _write_official_weights(tmp_path / "weights")
    det = detectors.create("clipdet+corvi", clipdet=CLIP_OPTS, corvi=CORVI_OPTS,
                           weights_dir=str(tmp_path / "weights")).eval()
    assert torch.equal(det.members["clipdet"].head.weight, w)
    assert torch.equal(det.members["corvi"].net.conv1.weight, ref.conv1.weight)
    det.save(tmp_path / "ck")
    cfg = det.config_dict()
    assert "weights_dir" not in cfg["options"] and "pretrained" not in cfg["options"]["corvi"]
    assert "pretrained_head" not in cfg["options"]["clipdet"]
    import shutil

    shutil.rmtree(tmp_path / "weights")  # the checkpoint alone must suffice
    back = detectors.load(tmp_path / "ck")
    x = torch.rand(1, 3, 36, 36)
    assert torch.equal(det(x), back(x))


def test_weights_dir_missing_file_names_it(tmp_path):
    (tmp_path / "weights").mkdir()
    with pytest.raises(CheckpointError, match=r"clipdet_latent10k_plus/weights.pth: missing") as e:
        detectors.create("clipdet+corvi", clipdet=CLIP_OPTS, corvi=CORVI_OPTS, weights_dir=str(tmp_path / "weights"))
    assert "\n" not in str(e.value) and "ClipBased-SyntheticImageDetection" in str(e.value)


def test_fuse_existing_detectors_and_reject_wrong_members(tmp_path):
    clipdet = detectors.create("clipdet", **CLIP_OPTS).eval()
    corvi = detectors.create("res50nodown", **CORVI_OPTS).eval()
    det = fuse_clipdet_corvi(clipdet, corvi)
    det.save(tmp_path / "ck")
    x = torch.rand(2, 3, 33, 35)
    assert torch.equal(detectors.load(tmp_path / "ck")(x), det(x))
    with pytest.raises(ConfigError, match="res50nodown"):
        fuse_clipdet_corvi(clipdet, detectors.create("cnnspot", **CORVI_OPTS))


def test_pgd_evasion_lowers_fused_score():
    det = fused()
    with torch.no_grad():  # make both members lean "synthetic" so there is something to evade
        det.members["clipdet"].head.bias.fill_(1.0)
        det.members["corvi"].net.fc.bias.fill_(1.0)
    x = torch.rand(3, 3, 36, 36)
    y = torch.ones(3, dtype=torch.long)
    before = det.score(x)
    adv = attacks.create("pgd", eps=8 / 255, steps=5, direction="evade")(det, x, y)
    assert (det.score(adv) < before).all()
