"""DI-FGSM, R-FGSM, universal perturbation, presets; success vs eps and EOT on the benchmark."""

from __future__ import annotations

import pytest
import torch

from fakebench import attacks
from fakebench.attacks.gradient import PRESETS, input_diversity
from fakebench.errors import ConfigError


def _data(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.round(torch.rand(n, 3, size, size, generator=g) * 255) / 255
    return x, torch.tensor([1, 0] * (n // 2))


LINF = [("di-fgsm", {}), ("di-fgsm", {"momentum": 1.0, "p": 1.0}), ("r-fgsm", {}), ("r-fgsm", {"steps": 4}),
        ("sgd-uap", {"steps": 2}), ("uap", {"max_passes": 2}), ("pgd", {"preset": "derosa2024"})]


@pytest.mark.parametrize("name,opts", LINF)
@pytest.mark.parametrize("eps", [3.5 / 255, 0.02])
def test_linf_budget_after_8bit_rounding(tiny_detector, name, opts, eps):
    x, y = _data()
    adv = attacks.create(name, **{**opts, "eps": eps})(tiny_detector, x, y)
    d = (adv - x).abs()
    assert float(d.max()) <= eps + 1e-6
    assert torch.equal(torch.round(adv * 255) / 255, adv)
    assert torch.equal(adv[y == 0], x[y == 0])  # evade: real images untouched
    assert float(d[y == 1].max()) > 0


def test_preset_gives_the_paper_configuration_and_explicit_options_win():
    atk = attacks.create("di-fgsm", preset="derosa2024")
    t = atk.threat
    assert (t.eps, t.steps, t.step_size, t.norm) == (8 / 255, 10, 2 / 255, "linf")
    assert PRESETS["derosa2024"]["pgd"]["eps"] == 8 / 255
    t2 = attacks.create("pgd", preset="derosa2024", eps=4 / 255, direction="spoof").threat
    assert (t2.eps, t2.steps, t2.direction) == (4 / 255, 10, "spoof")
    assert attacks.create("uap", preset="derosa2024").threat.eps == 8 / 255
    with pytest.raises(ConfigError, match="preset"):
        attacks.create("pgd", preset="madry")
    with pytest.raises(ConfigError, match="di-fgsm"):
        attacks.create("di-fgsm", probability=0.5)


def test_input_diversity_shapes_and_probability():
    x = torch.rand(2, 3, 40, 40)
    g = torch.Generator().manual_seed(0)
    assert input_diversity(x, 0.0, 1.1, g) is x
    up = input_diversity(x, 1.0, 1.1, g)
    assert up.shape[-2:] == (44, 44)
    down = input_diversity(x, 1.0, 0.8, g)
    assert down.shape == x.shape
    border = torch.cat([down[..., 0, :], down[..., -1, :], down[..., :, 0], down[..., :, -1]], -1)
    assert float(border.abs().min()) == 0.0  # zero padding somewhere on the border


def test_di_fgsm_without_diversity_is_iterative_fgsm(tiny_detector):
    x, y = _data(4)
    opts = {"eps": 6 / 255, "steps": 5, "step_size": 1.5 / 255, "quantize": False}
    di = attacks.create("di-fgsm", p=0.0, **opts)(tiny_detector, x, y)
    pgd = attacks.create("pgd", **opts)(tiny_detector, x, y)
    assert torch.equal(di, pgd)
    di1 = attacks.create("di-fgsm", p=1.0, **opts)(tiny_detector, x, y)
    assert not torch.equal(di1, pgd)


def test_r_fgsm_is_a_random_sign_step_then_a_gradient_step(tiny_detector):
    x, y = _data(4)
    x = x.clamp(8 / 255, 1 - 8 / 255)  # keep away from [0, 1] clipping
    eps = 8 / 255
    atk = attacks.create("r-fgsm", eps=eps, quantize=False)  # alpha = eps / 2, one step of eps - alpha
    adv = atk(tiny_detector, x, y, torch.Generator().manual_seed(0))
    d = (adv - x)[y == 1].abs()
    # +-alpha then +-(eps - alpha) = 0 or +-eps, both present
    on = ((d - eps).abs() < 1e-6) | (d < 1e-6)
    assert bool(on.all())
    assert 0.2 < float((d > 1e-6).float().mean()) < 0.8
    again = atk(tiny_detector, x, y, torch.Generator().manual_seed(0))
    other = atk(tiny_detector, x, y, torch.Generator().manual_seed(1))
    assert torch.equal(adv, again) and not torch.equal(adv, other)
    with pytest.raises(ConfigError, match="alpha"):
        attacks.create("r-fgsm", eps=eps, alpha=2 * eps)


def test_sgd_uap_is_one_perturbation_shared_by_all_images(tiny_detector):
    x, y = _data(8, 32, seed=1)
    x = x.clamp(8 / 255, 1 - 8 / 255)
    atk = attacks.create("sgd-uap", eps=8 / 255, steps=3, quantize=False, seed=3)
    delta = atk.fit(tiny_detector, x, y)
    assert delta.shape == (3, 32, 32) and float(delta.abs().max()) <= 8 / 255 + 1e-7
    xt, yt = _data(6, 32, seed=2)
    xt = xt.clamp(8 / 255, 1 - 8 / 255)
    adv = atk(tiny_detector, xt, yt)
    d = (adv - xt)[yt == 1]
    assert torch.allclose(d, delta.expand_as(d), atol=1e-6)  # the same perturbation on every image
    # resized or tiled onto another size, the budget still holds
    big, yb = _data(2, 48, seed=4)
    for mode in ("resize", "tile"):
        a = attacks.create("sgd-uap", eps=8 / 255, steps=2, apply=mode)
        a.fit(tiny_detector, x, y)
        out = a(tiny_detector, big, yb)
        assert out.shape == big.shape and float((out - big).abs().max()) <= 8 / 255 + 1e-6
    tiled = a.perturbation(tiny_detector, (48, 48))
    assert torch.equal(tiled[:, :32, :32], a.fitted(tiny_detector)) and torch.equal(tiled[:, 32:, :16],
                                                                                     tiled[:, :16, :16])


def test_sgd_uap_fits_per_detector_and_beats_random_noise(tiny_detector):
    from fakebench import detectors

    x, y = _data(16, 32, seed=5)
    atk = attacks.create("sgd-uap", eps=8 / 255, steps=4, seed=0)
    atk.fit(tiny_detector, x, y)
    torch.manual_seed(1)
    other = detectors.create("cnnspot", arch="resnet10", width=8).eval()
    assert atk.fitted(other) is None
    atk(other, x, y)  # not fitted for this detector: fits on the batch itself
    assert atk.fitted(other) is not None and not torch.equal(atk.fitted(other), atk.fitted(tiny_detector))
    xt, yt = _data(16, 32, seed=6)
    fake = yt == 1
    with torch.no_grad():
        adv = atk(tiny_detector, xt, yt)
        noise = torch.randint(0, 2, (1, 3, 32, 32), generator=torch.Generator().manual_seed(0)) * 2 - 1
        rnd = (xt + noise * 8 / 255).clamp(0, 1)
        z0, z_uap, z_rnd = (tiny_detector(v)[fake] for v in (xt, adv, rnd))
    # on held-out images the universal direction lowers the synthetic score far more than noise
    assert float((z_uap - z0).mean()) < 3 * float((z_rnd - z0).mean()) - 1e-3
    assert float((z_uap - z0).mean()) < 0


def test_sgd_uap_fit_data_forms(tiny_detector):
    x, y = _data(8)
    atk = attacks.create("sgd-uap", steps=1, batch_size=3)
    d1 = atk.fit(tiny_detector, [(x[:4], y[:4], None), None, (x[4:], y[4:], None)])  # DataLoader-like batches
    assert d1.shape == (3, 32, 32)
    with pytest.raises(ConfigError, match="no images targeted"):
        atk.fit(tiny_detector, x[y == 0], y[y == 0])  # evade: only real images given
    with pytest.raises(ConfigError, match="uap"):
        attacks.create("sgd-uap", norm="l2")


# -- on the built-in benchmark with a trained detector ---------------------------------------

from _bench import asr, bench, scores  # noqa: E402,F401  (session fixture)


def test_success_rises_with_eps(bench):
    det, x, y = bench.detector, bench.fake_x, bench.fake_y
    rates = []
    for eps in (0.5 / 255, 1 / 255, 2 / 255, 8 / 255):
        adv = attacks.create("pgd", eps=eps, steps=10, step_size=eps / 4)(det, x, y)
        assert float((adv - x).abs().max()) <= eps + 1e-6
        rates.append(asr(det, adv))
    bench.record("pgd success vs eps (0.5,1,2,8)/255", rates)
    assert all(b >= a - 0.05 for a, b in zip(rates, rates[1:]))
    assert rates[-1] >= 0.5 and rates[-1] - rates[0] >= 0.4


def test_eot_through_jpeg_survives_real_jpeg(bench):
    from fakebench.data import degrade

    det, x, y = bench.detector, bench.fake_x, bench.fake_y
    opts = {"eps": 6 / 255, "steps": 10, "step_size": 1.5 / 255}
    plain = attacks.create("pgd", **opts)(det, x, y)
    eot = attacks.create("pgd", eot=[{"op": "jpeg", "quality": [70, 80]}], **opts)(det, x, y)
    jp_plain, jp_eot = degrade.jpeg(plain, 75), degrade.jpeg(eot, 75)
    only_jpeg, plain_after, eot_after = asr(det, degrade.jpeg(x, 75)), asr(det, jp_plain), asr(det, jp_eot)
    bench.record("success at 6/255 after JPEG q75: JPEG alone, plain PGD, EOT-JPEG PGD", [only_jpeg, plain_after, eot_after])
    assert only_jpeg <= 0.2  # JPEG alone does not fool the (JPEG-augmented) detector
    assert eot_after >= plain_after + 0.15
    z_plain, z_eot = scores(det, jp_plain), scores(det, jp_eot)
    assert float((z_eot < z_plain).float().mean()) >= 0.6  # lower synthetic score after JPEG on most images
