"""Defense wrappers as detectors: semantics, gradients, BPDA, randomness, save / load."""

from __future__ import annotations

import pytest
import torch

from fakebench import detectors
from fakebench.defenses.ensemble import Ensemble
from fakebench.defenses.purification import Purified
from fakebench.errors import ConfigError


@pytest.fixture()
def base():
    torch.manual_seed(0)
    det = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    det.threshold = 0.1
    return det


def _x(n=4, size=32, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_jpeg_purifier_masks_gradients_unless_bpda(base):
    det = Purified(base, method="jpeg", quality=50).eval()
    x = _x().requires_grad_(True)
    (g,) = torch.autograd.grad(det(x).sum(), x)
    assert float(g.abs().max()) == 0.0  # what a naive attacker sees
    with det.bpda():
        (g,) = torch.autograd.grad(det(x).sum(), x)
    assert float(g.abs().max()) > 0  # straight through the codec
    assert det.has_bpda and not det.stochastic
    with torch.no_grad():
        from fakebench.data import degrade

        assert torch.allclose(det(x), base(degrade.jpeg(x.detach(), 50)))


def test_resize_pad_is_random_seeded_and_differentiable(base):
    det = Purified(base, method="resize-pad").eval()
    x = _x()
    det.reseed(3)
    a = det.purify(x)
    det.reseed(3)
    assert torch.equal(a, det.purify(x))  # same seed, same draws
    assert a.shape[-1] == round(32 * 331 / 299)
    assert not torch.equal(a, det.purify(x))  # the stream moves on
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(det(xr).sum(), xr)
    assert float(g.abs().max()) > 0 and det.stochastic


def test_purified_save_load_roundtrip(base, tmp_path):
    det = Purified(base, method="blur", sigma=0.8)
    det.registry_name, det.options = "purify", {}
    det.threshold = 0.3
    det.save(tmp_path / "p")
    back = detectors.load(tmp_path / "p")
    x = _x()
    with torch.no_grad():
        assert torch.allclose(back(x), det.eval()(x))
    assert back.base.threshold == pytest.approx(0.1) and back.threshold == pytest.approx(0.3)


def test_registry_builds_defenses_from_a_checkpoint(base, tmp_path):
    base.save(tmp_path / "base")
    det = detectors.create("purify", base=str(tmp_path / "base"), method="jpeg", quality=90)
    assert det.card.name == "purify" and det.base.threshold == pytest.approx(0.1)
    with pytest.raises(ConfigError, match="method"):
        detectors.create("purify", base=str(tmp_path / "base"), method="median")
    with pytest.raises(ConfigError, match="jpeg quality"):
        detectors.create("purify", base=str(tmp_path / "base"), method="jpeg", quality=500)
    with pytest.raises(ConfigError, match="base"):
        detectors.create("smoothed")


def test_ensemble_rules_and_non_differentiable_members(base):
    torch.manual_seed(1)
    other = detectors.create("res50nodown", arch="resnet10", width=8).eval()
    x = _x()
    with torch.no_grad():
        c = torch.stack([base(x) - base.threshold, other(x) - other.threshold], 1)
    mean = Ensemble({"a": base, "b": other}, rule="mean")
    vote = Ensemble({"a": base, "b": other}, rule="vote")
    soft = Ensemble({"a": base, "b": other}, rule="soft-or")
    with torch.no_grad():
        assert torch.allclose(mean(x), c.mean(1))
        assert torch.allclose(vote(x), (c > 0).float().mean(1) - 0.5)
        p = 1 - (1 - torch.sigmoid(c)).prod(1)
        assert torch.allclose(torch.sigmoid(soft(x)), p, atol=1e-5)
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(vote(xr).sum(), xr)
    assert float(g.abs().max()) > 0  # straight-through gradient of the vote
    persp = detectors.create("perspective")
    mixed = Ensemble({"cnn": base, "geo": persp}, rule="mean")
    assert mixed.differentiable and not persp.differentiable
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(mixed(xr).sum(), xr)
    (g_cnn,) = torch.autograd.grad((base(xr) / 2).sum(), xr)
    assert torch.allclose(g, g_cnn, atol=1e-6)  # the analyzer contributes a score, no gradient
    with pytest.raises(ConfigError, match="rule"):
        Ensemble({"a": base, "b": other}, rule="max")
    with pytest.raises(ConfigError, match="at least two"):
        Ensemble({"a": base}, rule="mean")


def test_unknown_defense_option_is_one_line_naming_it(base, tmp_path):
    base.save(tmp_path / "base")
    with pytest.raises(ConfigError, match=r"detector 'purify': bad options .*'methd'") as e:
        detectors.create("purify", base=str(tmp_path / "base"), methd="jpeg")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="detector 'smoothed': bad options"):
        detectors.create("smoothed", base=str(tmp_path / "base"), sigmaa=0.1)
