"""APGD (Croce & Hein 2020) against torchattacks' APGD on the same detector."""

from __future__ import annotations

import pytest
import torch

from fakebench import attacks
from fakebench.attacks.apgd import checkpoint_schedule
from fakebench.errors import ConfigError

ta = pytest.importorskip("torchattacks")




@pytest.fixture()
def detected(tiny_detector):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, 3, 32, 32, generator=g)
    with torch.no_grad():
        z = tiny_detector(x)
    keep = z > 0  # the detector calls these synthetic: evade targets that are correct at the start
    return tiny_detector, x[keep][:16], z[keep][:16]


def test_schedule_is_the_reference_integer_form():
    assert checkpoint_schedule(100) == (22, 3, 6)
    assert checkpoint_schedule(10) == (2, 1, 1)


@pytest.mark.parametrize("eps", [1 / 255, 2 / 255])
def test_apgd_agrees_with_torchattacks(detected, eps, two_class):
    """Same seed, same random start, same steps: the same samples are fooled and the images
    agree within 1e-5 (float rounding of the momentum combination)."""
    det, x, _ = detected
    y = torch.ones(len(x), dtype=torch.long)
    ours = attacks.create("apgd", eps=eps, steps=10, direction="evade", quantize=False, seed=0)
    res = ours.perturb(det, x, y, torch.Generator().manual_seed(0))
    ref = ta.APGD(two_class(det).eval(), norm="Linf", eps=eps, steps=10, n_restarts=1, seed=0, loss="ce")
    adv_ref = ref(x, y)
    with torch.no_grad():
        fooled_ref = two_class(det)(adv_ref).argmax(1) != 1
    fooled = res.info["fooled"]
    print(f"[apgd] eps {eps * 255:.0f}/255: fooled ours {int(fooled.sum())}/{len(x)}, torchattacks "
          f"{int(fooled_ref.sum())}/{len(x)}")
    assert 0 < int(fooled_ref.sum()) < len(x)  # an informative comparison: some but not all fall
    assert torch.equal(fooled, fooled_ref)
    assert float((res.x_adv[fooled] - adv_ref.detach()[fooled]).abs().max()) < 1e-5
    assert float((res.x_adv - x).abs().max()) <= eps + 1e-6


def test_apgd_at_least_as_strong_as_pgd_and_validates(detected):
    det, x, z = detected
    y = torch.ones(len(x), dtype=torch.long)
    apgd = attacks.create("apgd", eps=2 / 255, steps=20, direction="evade")(det, x, y)
    pgd = attacks.create("pgd", eps=2 / 255, steps=20, step_size=0.5 / 255, direction="evade")(det, x, y)
    with torch.no_grad():
        za, zp = det(apgd), det(pgd)
    assert float(za.mean()) <= float(zp.mean()) + 0.05
    assert float((apgd - x).abs().max()) <= 2 / 255 + 1e-6 and torch.equal(torch.round(apgd * 255) / 255, apgd)
    with pytest.raises(ConfigError, match="apgd supports"):
        attacks.create("apgd", norm="l0")
    with pytest.raises(ConfigError, match="rho"):
        attacks.create("apgd", rho=0)
