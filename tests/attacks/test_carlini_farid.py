"""Carlini & Farid (2020) attacks: exact budgets, reported norms, patch area, transfer."""

from __future__ import annotations

import pytest
import torch

from fakebench import attacks, detectors
from fakebench.attacks.carlini_farid import patch_side, perturbation_report
from fakebench.errors import ConfigError


def _data(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.round(torch.rand(n, 3, size, size, generator=g) * 255) / 255
    return x, torch.tensor([1, 0] * (n // 2))


def _grid(t):
    return torch.equal(torch.round(t * 255) / 255, t)


def test_lsb_moves_each_value_by_at_most_one_grey_level_and_only_its_low_bit(tiny_detector):
    x, y = _data(6)
    x[0, :, :4, :4] = 0.0  # saturated corners: the bit flip must stay inside [0, 1]
    x[2, :, :4, :4] = 1.0
    atk = attacks.create("cf-lsb", steps=8)
    res = atk.perturb(tiny_detector, x, y)
    adv = res.x_adv
    assert _grid(adv)
    assert float((adv - x).abs().max()) <= 1 / 255 + 1e-7
    v, va = torch.round(x * 255).long(), torch.round(adv * 255).long()
    assert set(torch.unique(v ^ va).tolist()) <= {0, 1}  # only the least significant bit differs
    assert torch.equal(adv[y == 0], x[y == 0])
    changed = float(res.info["l0_fraction"][y == 1].mean())
    assert 0.2 < changed <= 1.0
    with torch.no_grad():
        assert bool((tiny_detector(adv) - tiny_detector(x))[y == 1].max() < 0)  # every fake scores lower
    with pytest.raises(ConfigError, match="cf-lsb"):
        attacks.create("cf-lsb", eps=2 / 255)


@pytest.mark.parametrize("eps", [1 / 255, 2.5 / 255])
def test_lossmax_linf_budget_after_rounding(tiny_detector, eps):
    x, y = _data(6)
    atk = attacks.create("cf-lossmax", eps=eps, direction="both")
    res = atk.perturb(tiny_detector, x, y)
    adv = res.x_adv
    assert _grid(adv) and float((adv - x).abs().max()) <= eps + 1e-7
    with torch.no_grad():
        dz = tiny_detector(adv) - tiny_detector(x)
    assert bool((dz[y == 1] < 0).all()) and bool((dz[y == 0] > 0).all())
    assert torch.allclose(res.info["linf"], (adv - x).flatten(1).abs().amax(1))
    assert atk.threat.eps == eps and attacks.create("cf-lossmax").threat.eps == 1 / 255


def test_distortion_flips_every_decision_and_reports_the_true_norms(tiny_detector):
    x, y = _data(6)
    det = tiny_detector
    det.threshold = float(det(x).detach().median())  # a calibrated-looking threshold, not 0
    atk = attacks.create("cf-distortion", steps=40, binary_steps=4, lr=0.02, direction="both")
    res = atk.perturb(det, x, y)
    adv = res.x_adv
    assert _grid(adv)
    with torch.no_grad():
        z = det(adv)
    flipped = torch.where(y == 1, z <= det.threshold, z > det.threshold)
    assert torch.equal(res.info["success"], flipped)
    assert float(flipped.float().mean()) == 1.0
    d = (adv - x).flatten(1)
    assert torch.allclose(res.info["l2"], d.norm(dim=1), atol=1e-6)
    assert torch.equal(res.info["l0"], ((adv - x) != 0).any(1).flatten(1).sum(1))
    # minimal: far smaller than a PGD-L2 attack that flips at a generous budget
    pgd = attacks.create("pgd", norm="l2", eps=2.0, steps=10, step_size=0.4, direction="both")(det, x, y)
    assert float(res.info["l2"].mean()) < 0.5 * float((pgd - x).flatten(1).norm(dim=1).mean())


def test_distortion_returns_unchanged_images_it_cannot_flip_within_the_cap(tiny_detector):
    x, y = _data(4)
    tiny_detector.threshold = float(tiny_detector(x).detach().min()) - 5.0  # "real" needs a huge change
    atk = attacks.create("cf-distortion", steps=10, binary_steps=2, eps=0.05)
    res = atk.perturb(tiny_detector, x, y)
    adv = res.x_adv
    assert torch.equal(adv, x)
    assert not bool(res.info["success"].any()) and float(res.info["l2"].max()) == 0.0


def test_patch_touches_only_its_area(tiny_detector):
    x, y = _data(6, 64)
    x = x + 0.3 / 255  # off the 8-bit grid: rounding must not touch pixels outside the patch
    atk = attacks.create("cf-patch", steps=2, seed=1)
    res = atk.perturb(tiny_detector, x, y, torch.Generator().manual_seed(7))
    adv = res.x_adv
    s = patch_side(64, 64, 0.01)
    assert s == 6 and 0.005 < s * s / 64 ** 2 < 0.02  # ~1% of the image
    changed = (adv != x).any(1)  # (N, H, W)
    for i in range(len(x)):
        t, l_, h, w = res.info["box"][i].tolist()
        if y[i] == 0:
            assert t == -1 and not bool(changed[i].any())
            continue
        assert (h, w) == (s, s) and 0 <= t <= 64 - s and 0 <= l_ <= 64 - s
        outside = changed[i].clone()
        outside[t : t + h, l_ : l_ + w] = False
        assert not bool(outside.any())
        assert bool(changed[i, t : t + h, l_ : l_ + w].any())
        assert _grid(adv[i, :, t : t + h, l_ : l_ + w])
    assert torch.equal(res.info["l0"], changed.flatten(1).sum(1))


def test_patch_is_universal_and_positions_are_seeded(tiny_detector):
    x, y = _data(8, 64, seed=2)
    atk = attacks.create("cf-patch", steps=3, fraction=0.02, seed=0)
    patch = atk.fit(tiny_detector, x, y)
    xt, yt = _data(6, 64, seed=3)
    res = atk.perturb(tiny_detector, xt, yt, torch.Generator().manual_seed(1))
    a = res.x_adv
    boxes_a = res.info["box"].clone()
    res = atk.perturb(tiny_detector, xt, yt, torch.Generator().manual_seed(1))
    b = res.x_adv
    assert torch.equal(a, b) and torch.equal(res.info["box"], boxes_a)
    res = atk.perturb(tiny_detector, xt, yt, torch.Generator().manual_seed(2))
    assert not torch.equal(res.info["box"], boxes_a)
    q = torch.round(patch.clamp(0, 1) * 255) / 255
    for i in (yt == 1).nonzero().flatten().tolist():  # the same patch pasted in every image
        t, l_, h, w = boxes_a[i].tolist()
        assert torch.equal(a[i, :, t : t + h, l_ : l_ + w], q)
    # larger images get a proportionally larger patch
    big, yb = _data(2, 128)
    res = atk.perturb(tiny_detector, big, yb)
    assert int(res.info["box"][0, 2]) == patch_side(128, 128, 0.02) == 18


def test_transfer_runs_the_base_attack_on_the_surrogate(tiny_detector, tmp_path):
    x, y = _data(6)
    torch.manual_seed(3)
    sur = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    sur.save(tmp_path / "sur")
    atk = attacks.create("cf-transfer", surrogate=str(tmp_path / "sur"), eps=4 / 255, steps=5)
    assert not atk.needs_gradients
    res = atk.perturb(tiny_detector, x, y, torch.Generator().manual_seed(0))
    adv = res.x_adv
    direct = attacks.create("pgd", eps=4 / 255, steps=5)(sur, x, y, torch.Generator().manual_seed(0))
    assert torch.equal(adv, direct)  # exactly PGD on the surrogate, never the target's gradient
    assert int(res.queries.sum()) == 0 and float((adv - x).abs().max()) <= 4 / 255 + 1e-7
    assert atk.params()["surrogate"] == str(tmp_path / "sur")
    with pytest.raises(ConfigError, match="surrogate"):
        attacks.create("cf-transfer")
    with pytest.raises(ConfigError, match="does not use"):
        attacks.create("cf-transfer", surrogate=sur, base="jpeg")


def test_perturbation_report_matches_its_definition():
    x = torch.zeros(2, 3, 4, 4)
    adv = x.clone()
    adv[0, 1, 0, 0] = 0.5
    adv[0, 2, 0, 0] = 0.5
    adv[0, 0, 3, 3] = 0.25
    r = perturbation_report(x, adv)
    assert r["l0"].tolist() == [2, 0] and r["l0_fraction"].tolist() == [2 / 16, 0.0]
    assert abs(float(r["l2"][0]) - (0.5 ** 2 * 2 + 0.25 ** 2) ** 0.5) < 1e-6 and float(r["linf"][0]) == 0.5


# -- on the built-in benchmark with a trained detector ---------------------------------------

from _bench import asr, auc, bench, scores, train_config  # noqa: E402,F401  (session fixture)


def test_lsb_attack_lowers_auc(bench):
    """Carlini & Farid report AUC 0.95 -> 0.0005 for a full ResNet-50 on full-size images; the
    CPU-sized detector on 64-px patches is far less sensitive to one grey level (measured,
    seed 0: AUC 0.836 -> 0.812 with LSB flips), so this asserts a drop of at least 0.02 and the
    relative strength of LSB vs +-1 grey level, not a collapse."""
    det = bench.detector
    x, y = bench.x, bench.y
    z0 = scores(det, x)
    lsb = attacks.create("cf-lsb", steps=10)(det, x, y)  # evade: only synthetic images change
    pm1 = attacks.create("cf-lossmax", eps=1 / 255)(det, x, y)  # +-1 grey level, any direction
    z_lsb, z_pm1 = scores(det, lsb), scores(det, pm1)
    before, after, after_pm1 = auc(y, z0), auc(y, z_lsb), auc(y, z_pm1)
    fake = y == 1
    shift_lsb, shift_pm1 = float((z_lsb - z0)[fake].mean()), float((z_pm1 - z0)[fake].mean())
    bench.record("AUC clean -> LSB attack -> +-1/255 loss-max attack", [before, after, after_pm1])
    bench.record("mean synthetic logit shift: LSB, +-1/255 loss-max", [shift_lsb, shift_pm1])
    assert float((lsb - x).abs().max()) <= 1 / 255 + 1e-7
    assert before >= 0.7  # an informative detector (0.74-0.88 depending on the validation protocol and threads)
    assert after < before - 0.02 and after_pm1 < before - 0.02
    assert float(((z_lsb - z0)[fake] < 0).float().mean()) >= 0.9  # nearly every synthetic score drops
    assert shift_pm1 <= shift_lsb <= 0.25 * shift_pm1  # half the moves allowed: a good part of the effect


def test_transfer_is_weaker_than_white_box(bench, tmp_path_factory):
    """Measured (seed 0): white-box success 0.94, transfer 0.0 at 4/255 (and 0.0 at 8/255 from
    a surrogate trained on a separately built benchmark): between independently trained tiny
    CNNs on these patches the transferred perturbation lowers the target's mean logit no more
    than random +-eps noise does (1.49 -> 1.39 vs 1.37), in line with De Rosa et al.'s weak
    cross-model transfer. The assertion is the issue's (transfer below white-box)."""
    from fakebench.train import train_detector

    det, x, y = bench.detector, bench.fake_x, bench.fake_y
    # surrogate: same recipe, different seed, half the width, trained on the same benchmark
    sur_dir = tmp_path_factory.mktemp("surrogate")
    train_detector("cnnspot", bench.manifest, sur_dir, train_config(bench.side, seed=1, epochs=3), arch="resnet10", width=8)
    opts = {"eps": 4 / 255, "steps": 10, "step_size": 1 / 255}
    white = asr(det, attacks.create("pgd", **opts)(det, x, y))
    transfer = asr(det, attacks.create("cf-transfer", surrogate=str(sur_dir), **opts)(det, x, y))
    bench.record("success at 4/255: white-box PGD, transfer from surrogate", [white, transfer])
    assert white >= 0.8
    assert transfer <= white - 0.2
