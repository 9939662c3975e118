"""PGD / FGSM: budgets, directions, and equivalence with torchattacks' PGD."""

from __future__ import annotations

import pytest
import torch

from fakebench import attacks


def _data(n=6, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.round(torch.rand(n, 3, size, size, generator=g) * 255) / 255
    y = torch.tensor([1, 0] * (n // 2))
    return x, y


@pytest.mark.parametrize("eps", [4 / 255, 3.5 / 255, 0.02])
def test_linf_budget_holds_after_8bit_rounding(tiny_detector, eps):
    x, y = _data()
    atk = attacks.create("pgd", eps=eps, steps=5, random_start=True, direction="evade")
    adv = atk(tiny_detector, x, y)
    d = (adv - x).abs()
    assert float(d.max()) <= eps + 1e-6
    assert torch.equal(torch.round(adv * 255) / 255, adv)  # on the 8-bit grid
    assert torch.equal(adv[y == 0], x[y == 0])  # evade touches only synthetic images
    assert float(d[y == 1].max()) > 0


def test_linf_budget_when_input_is_off_grid(tiny_detector):
    x, y = _data()
    x = (x + 0.3 / 255).clamp(0, 1)  # not on the 8-bit grid
    eps = 2 / 255
    adv = attacks.create("pgd", eps=eps, steps=3)(tiny_detector, x, y)
    assert float((adv - x).abs().max()) <= eps + 1e-6


@pytest.mark.parametrize("direction,sign", [("evade", -1), ("spoof", 1)])
def test_direction_moves_score_the_right_way(tiny_detector, direction, sign):
    x, y = _data(8)
    atk = attacks.create("pgd", eps=8 / 255, steps=10, step_size=2 / 255, direction=direction)
    adv = atk(tiny_detector, x, y)
    target = (y == 1) if direction == "evade" else (y == 0)
    with torch.no_grad():
        before, after = tiny_detector(x), tiny_detector(adv)
    assert bool((sign * (after - before))[target].min() > 0)
    assert torch.equal(after[~target], before[~target])
    assert atk.queries is not None and int(atk.queries[target][0]) == 10 and int(atk.queries[~target].sum()) == 0


def test_l2_budget_and_report(tiny_detector):
    x, y = _data()
    eps = 0.5
    atk = attacks.create("pgd", norm="l2", eps=eps, steps=5, step_size=0.2, quantize=False)
    adv = atk(tiny_detector, x, y)
    l2 = (adv - x).flatten(1).norm(dim=1)
    assert float(l2.max()) <= eps + 1e-5
    assert float(l2[y == 1].min()) > 0.1


def test_random_start_is_seeded(tiny_detector):
    x, y = _data()
    a = attacks.create("pgd", eps=4 / 255, steps=2, random_start=True)(tiny_detector, x, y, torch.Generator().manual_seed(5))
    b = attacks.create("pgd", eps=4 / 255, steps=2, random_start=True)(tiny_detector, x, y, torch.Generator().manual_seed(5))
    c = attacks.create("pgd", eps=4 / 255, steps=2, random_start=True)(tiny_detector, x, y, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


class TwoClass(torch.nn.Module):
    """One-logit detector as two-class logits [0, z] (class 1 = synthetic)."""

    def __init__(self, det):
        super().__init__()
        self.det = det

    def forward(self, x):
        z = self.det(x)
        return torch.stack([torch.zeros_like(z), z], 1)


@pytest.mark.parametrize("direction", ["evade", "spoof"])
def test_equivalent_to_torchattacks_pgd(tiny_detector, direction):
    torchattacks = pytest.importorskip("torchattacks")
    x, y = _data(8, size=32, seed=3)
    eps, alpha, steps = 8 / 255, 2 / 255, 10
    target = (y == 1) if direction == "evade" else (y == 0)
    ours = attacks.create("pgd", eps=eps, step_size=alpha, steps=steps, direction=direction, quantize=False)
    adv = ours(tiny_detector, x, y)
    ref = torchattacks.PGD(TwoClass(tiny_detector), eps=eps, alpha=alpha, steps=steps, random_start=False)
    ref_adv = ref(x[target], y[target])  # untargeted: away from the true class
    diff = (adv[target] - ref_adv).abs().max()
    assert float(diff) <= 1e-5
    assert float((adv[target] - x[target]).abs().max()) > 1 / 255  # the attack did something


def test_fgsm_is_one_step_of_eps(tiny_detector):
    x, y = _data()
    adv = attacks.create("fgsm", eps=2 / 255, quantize=False)(tiny_detector, x, y)
    d = (adv - x)[y == 1].abs()
    inside = (x[y == 1] > 2 / 255) & (x[y == 1] < 1 - 2 / 255)
    assert float(d.max()) <= 2 / 255 + 1e-6
    assert float(((d - 2 / 255).abs() < 1e-6)[inside].float().mean()) > 0.9


def test_bad_threat_model_is_one_clear_line():
    from fakebench.errors import ConfigError

    with pytest.raises(ConfigError, match="direction"):
        attacks.create("pgd", direction="sideways")
    with pytest.raises(ConfigError, match="pgd"):
        attacks.create("pgd", epsilon=3)
