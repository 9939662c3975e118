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
               "--adv-steps", "2", "--adv-direction", "both", "--ema", "0.9"])
    assert rc == 0
    meta = json.loads((out / "config.json").read_text())["meta"]
    assert meta["defense"]["adv"]["kind"] == "trades" and meta["defense"]["adv"]["eps"] == pytest.approx(2 / 255)
    log = json.loads((out / "train_log.json").read_text())
    assert "val_robust_auc" in log["epochs"][0]  # epochs are chosen on attacked validation images
    assert log["config"]["ema"] == pytest.approx(0.9)
    rc = main(["train", "cnnspot", "--data", str(tiny_dataset), "--out", str(tmp_path / "bad"), "--adv", "pgd",
               "--adv-eps=-1/255", "--no-progress"])
    assert rc == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("fakebench: error: adv_eps:")


def test_weight_averaging_keeps_the_exponential_average_of_the_steps(tiny_dataset):
    """TrainConfig(ema=d): the kept weights are e_1 = w_1, e_k = d e_(k-1) + (1 - d) w_k over the
    weights after each optimiser step (parameters and batch-norm statistics). The objective
    records the weights before each step; its last call touches no parameter, so Adam skips
    them and the final weights equal the ones recorded last."""
    from fakebench.data import load_dataset
    from fakebench.train.loop import TrainConfig, build_trainable, fit

    samples = load_dataset(tiny_dataset)
    det = build_trainable("cnnspot", arch="resnet10", width=8)
    n_steps, snaps = 4, []

    def objective(model, x, y):
        snaps.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        if len(snaps) == n_steps:
            return torch.zeros((), requires_grad=True)
        return F.binary_cross_entropy_with_logits(model(x), y.float())

    cfg = TrainConfig(epochs=1, max_steps=n_steps, batch_size=4, lr=1e-2, crop=32, ema=0.6, progress=False)
    fit(det, samples[: len(samples) // 2 * 2], samples, cfg.resolved({}), objective=objective)
    weights = snaps[1:] + [snaps[-1]]  # w_1 .. w_N
    float_keys = [k for k, v in weights[0].items() if v.is_floating_point()]
    expect = {k: weights[0][k].clone() for k in float_keys}
    for w in weights[1:]:
        for k in float_keys:
            expect[k] = 0.6 * expect[k] + 0.4 * w[k]
    got = det.state_dict()
    assert max(float((got[k] - expect[k]).abs().max()) for k in float_keys) < 1e-5
    moved = max(float((weights[-1][k] - expect[k]).abs().max()) for k in float_keys)
    assert moved > 1e-4  # the average differs from the last weights: the test can tell them apart
    with pytest.raises(ConfigError, match="ema: expected a decay in"):
        TrainConfig(ema=1.0).resolved({})
