"""De Rosa et al. (2024) attack settings, checked against the code they ran.

DI-FGSM against torchattacks' DIFGSM (their attack); presets; Robust FGSM (Hussain et al.
2021) and the DeepFool universal perturbation (Moosavi-Dezfooli et al. 2017) on the built-in
benchmark's CPU-sized cnnspot.
"""

from __future__ import annotations

import pytest
import torch

from fakebench import attacks
from fakebench.attacks.gradient import PRESETS, input_diversity
from fakebench.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.round(torch.rand(n, 3, size, size, generator=g) * 255) / 255
    return x, torch.tensor([1, 0] * (n // 2))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("size,rate", [(32, 0.9), (40, 0.9), (32, 330 / 299)])
def test_input_diversity_equals_torchattacks(tiny_detector, seed, size, rate):
    torchattacks = pytest.importorskip("torchattacks")
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(100 + seed))
    ref_atk = torchattacks.DIFGSM(tiny_detector, resize_rate=rate, diversity_prob=0.5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ref = ref_atk.input_diversity(x)
    ours = input_diversity(x, 0.5, rate, torch.Generator().manual_seed(seed))
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max()) <= 1e-5


@pytest.mark.parametrize("decay", [0.0, 1.0])
def test_di_fgsm_equals_torchattacks_difgsm(tiny_detector, two_class, decay):
    """The whole attack, same seed: the same transforms are drawn at every step, so the
    adversarial images agree (before fakebench's 8-bit rounding)."""
    torchattacks = pytest.importorskip("torchattacks")
    x, y = _data(4)
    x, y = x[y == 1], y[y == 1]
    eps, alpha, steps = 8 / 255, 2 / 255, 10
    ref_atk = torchattacks.DIFGSM(two_class(tiny_detector), eps=eps, alpha=alpha, steps=steps, decay=decay)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        ref = ref_atk(x, y)
    ours = attacks.create("di-fgsm", preset="derosa2024", momentum=decay, quantize=False).perturb(
        tiny_detector, x, y, torch.Generator().manual_seed(7)).x_adv
    assert float((ours - ref).abs().max()) <= 1e-5
    assert float((ours - x).abs().max()) > 4 / 255  # the attack moved the images


def test_derosa_presets_are_their_code_settings():
    pgd = attacks.create("pgd", preset="derosa2024").threat
    assert (pgd.norm, pgd.eps, pgd.step_size, pgd.steps, pgd.random_start) == ("linf", 8 / 255, 2 / 255, 10, True)
    l2 = attacks.create("pgd", preset="derosa2024-l2").threat
    assert (l2.norm, l2.eps, l2.step_size, l2.steps, l2.random_start) == ("l2", 8.0, 1.6, 10, False)
    di = attacks.create("di-fgsm", preset="derosa2024")
    assert (di.threat.eps, di.threat.steps, di.threat.step_size, di.threat.random_start) == (8 / 255, 10, 2 / 255, False)
    assert (di.resize_rate, di.p, di.interpolation, di.momentum) == (0.9, 0.5, "bilinear", 0.0)
    fgsm = attacks.create("fgsm", preset="derosa2024").threat  # the README's promise: the budget
    assert (fgsm.eps, fgsm.steps, fgsm.step_size) == (8 / 255, 1, 8 / 255)
    assert PRESETS["derosa2024-linf"] is PRESETS["derosa2024"]
    with pytest.raises(ConfigError, match="no setting for r-fgsm"):  # Tramèr's R+FGSM is not theirs
        attacks.create("r-fgsm", preset="derosa2024")
    with pytest.raises(ConfigError, match="no setting for di-fgsm"):
        attacks.create("di-fgsm", preset="derosa2024-l2")
