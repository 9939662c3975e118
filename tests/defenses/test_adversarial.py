"""Adversarial-training objectives: budgets, directions, TRADES' KL, bad options, the CLI."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from fakebench.defenses.adversarial import AdvConfig, AdversarialObjective, bernoulli_kl, train_adversarial
from fakebench.errors import ConfigError


def test_bernoulli_kl_is_the_two_logit_softmax_kl():
    p_logit, q_logit = torch.randn(50), torch.randn(50)
    two = lambda z: torch.stack([torch.zeros_like(z), z], 1)  # noqa: E731
    ref = F.kl_div(F.log_softmax(two(q_logit), 1), F.softmax(two(p_logit), 1), reduction="none").sum(1)
    assert torch.allclose(bernoulli_kl(torch.sigmoid(p_logit), q_logit), ref, atol=1e-5)
    assert float(bernoulli_kl(torch.sigmoid(p_logit), p_logit).abs().max()) < 1e-5


@pytest.mark.parametrize("kind", ["pgd", "trades", "fgsm-rs"])
def test_objectives_train_and_keep_the_budget_and_direction(tiny_detector, kind, monkeypatch):
    det = tiny_detector.train()
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1] * 4)
    seen = []
    real_forward = det.forward

    def spy(inp):
        seen.append(inp.detach().clone())
        return real_forward(inp)

    monkeypatch.setattr(det, "forward", spy)
    obj = AdversarialObjective(AdvConfig(kind=kind, eps=4 / 255, steps=2, direction="evade"), seed=0)
    loss = obj(det, x, y)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in det.parameters())
    trained_on = [s for s in seen if s.shape == x.shape]
    for s in trained_on:  # every input the detector saw stays in the budget; reals are never perturbed
        assert float((s - x).abs().max()) <= 4 / 255 + 1e-6
        assert torch.equal(s[y == 0], x[y == 0]) or kind == "trades" and float((s[y == 0] - x[y == 0]).abs().max()) == 0
    assert det.training  # the inner maximisation restores training mode


def test_eps_warmup_ramps_the_budget():
    obj = AdversarialObjective(AdvConfig(eps=4 / 255, warmup=4), seed=0)
    got = []
    for _ in range(6):
        got.append(obj.eps_now())
        obj.calls += 1
    assert got == pytest.approx([1 / 255, 2 / 255, 3 / 255, 4 / 255, 4 / 255, 4 / 255])


@pytest.mark.parametrize("bad, field", [({"eps": -1 / 255}, "adv_eps"), ({"kind": "madry"}, "adv: 'madry'"),
                                        ({"steps": 0}, "adv_steps"), ({"direction": "up"}, "adv_direction"),
                                        ({"clean_weight": 2}, "adv_clean_weight"), ({"beta": float("nan")}, "adv_beta")])
def test_bad_options_are_one_line_naming_the_field(bad, field):
    with pytest.raises(ConfigError, match=field):
        AdvConfig(**bad)


def test_non_differentiable_detector_is_refused(tiny_dataset, tmp_path):
    with pytest.raises(ConfigError, match="adv: pgd adversarial training needs gradients, but perspective"):
        train_adversarial("perspective", tiny_dataset, tmp_path / "x", adv=AdvConfig())


def test_cli_trains_adversarially_and_records_the_defense(tiny_dataset, tmp_path, capsys):
    from fakebench.cli import main

    out = tmp_path / "ck"
    rc = main(["train", "cnnspot", "--data", str(tiny_dataset), "--out", str(out), "--arch", "resnet10", "--width",
               "8", "--epochs", "1", "--crop", "0", "--no-progress", "--adv", "trades", "--adv-eps", "2/255",
               "--adv-steps", "2", "--adv-direction", "both"])
    assert rc == 0
    meta = json.loads((out / "config.json").read_text())["meta"]
    assert meta["defense"]["adv"]["kind"] == "trades" and meta["defense"]["adv"]["eps"] == pytest.approx(2 / 255)
    log = json.loads((out / "train_log.json").read_text())
    assert "val_robust_auc" in log["epochs"][0]  # epochs are chosen on attacked validation images
    rc = main(["train", "cnnspot", "--data", str(tiny_dataset), "--out", str(tmp_path / "bad"), "--adv", "pgd",
               "--adv-eps=-1/255", "--no-progress"])
    assert rc == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("fakebench: error: adv_eps:")
