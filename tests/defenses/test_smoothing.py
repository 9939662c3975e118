"""Randomized smoothing (Cohen et al. 2019) on a base whose smoothed classifier is known exactly.

The base is a linear one-logit detector (mean brightness minus 1/2), so the true smoothed
classifier's decision boundary is the hyperplane mean = 1/2 and the exact robust L2 radius of
an image is its distance to it: |mean - 1/2| sqrt(D). CERTIFY's radius must be a lower bound,
and no L2 attack inside 0.9 x the certified radius may flip a certified prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakebench import attacks
from fakebench.defenses.smoothing import ABSTAIN, Smoothed, certified_accuracy
from fakebench.detectors.base import Detector
from fakebench.errors import ConfigError

SIZE = 8
D = 3 * SIZE * SIZE


class Brightness(Detector):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 50.0 * (x.mean((1, 2, 3)) - 0.5)


def _images(n: int = 60, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    means = 0.5 + (torch.rand(n, generator=g) - 0.5) * 0.36  # 0.32 .. 0.68
    tex = (torch.rand(n, 3, SIZE, SIZE, generator=g) - 0.5) * 0.2
    tex = tex - tex.mean((1, 2, 3), keepdim=True)
    return (means.view(-1, 1, 1, 1) + tex).clamp(0, 1)


def test_certified_radius_is_a_lower_bound_and_attacks_inside_it_fail():
    x = _images()
    sm = Smoothed(Brightness(), sigma=0.25, n0=100, n=2000, alpha=0.001, mc_samples=32, seed=0).eval()
    cert = sm.certify(x)
    true_radius = (x.mean((1, 2, 3)) - 0.5).abs().numpy() * np.sqrt(D)
    certified = cert.prediction != ABSTAIN
    assert certified.sum() >= 50, "the test needs at least 50 certified images"
    assert np.all(cert.radius[certified] <= true_radius[certified] + 1e-6)  # a bound, never above the truth
    # and not a trivial one where the sample size does not cap it (n=2000 caps it at about 0.68)
    unsat = certified & (true_radius < 0.5)
    assert unsat.sum() >= 5 and np.median(cert.radius[unsat] / true_radius[unsat]) > 0.6
    truth = (x.mean((1, 2, 3)) > 0.5).long().numpy()
    assert np.all(cert.prediction[certified] == truth[certified])
    flips = 0
    for i in np.nonzero(certified)[0]:
        y = torch.tensor([int(cert.prediction[i])])
        atk = attacks.create("pgd", norm="l2", eps=0.9 * float(cert.radius[i]), steps=20, direction="both",
                             quantize=False, eot_samples=4)
        adv = atk(sm, x[i : i + 1], y, torch.Generator().manual_seed(int(i)))
        assert float((adv - x[i : i + 1]).norm()) <= 0.9 * cert.radius[i] + 1e-5
        pred = sm.predict(adv, n=2000)[0]
        flips += int(pred not in (int(cert.prediction[i]), ABSTAIN))
    print(f"[smoothing] {int(certified.sum())} certified of {len(x)}; median radius {np.median(cert.radius[certified]):.3f}"
          f" (true {np.median(true_radius[certified]):.3f}); flips at 0.9 R: {flips}")
    assert flips == 0
    acc = certified_accuracy(cert, truth, np.array([0.0, 0.25, 0.5]))
    assert acc[0] >= acc[1] >= acc[2] and acc[0] == pytest.approx(certified.mean())


def test_near_ties_abstain():
    x = torch.full((4, 3, SIZE, SIZE), 0.5)  # exactly on the boundary: p = 1/2
    sm = Smoothed(Brightness(), sigma=0.25, n0=100, n=500, alpha=0.001, seed=1).eval()
    assert (sm.certify(x).prediction == ABSTAIN).all()
    assert (sm.predict(x) == ABSTAIN).all()


def test_training_mode_is_gaussian_augmentation_and_options_are_checked():
    sm = Smoothed(Brightness(), sigma=0.5, seed=0)
    x = torch.full((256, 3, SIZE, SIZE), 0.6)
    sm.train()
    z = sm(x)  # one noisy copy per image: the base logit of x + N(0, sigma^2)
    assert float(z.std()) == pytest.approx(50 * 0.5 / np.sqrt(D), rel=0.2)
    with pytest.raises(ConfigError, match="n: the estimation samples"):
        Smoothed(Brightness(), n0=100, n=50)
    with pytest.raises(ConfigError, match="sigma"):
        Smoothed(Brightness(), sigma=0)
    with pytest.raises(ConfigError, match="alpha"):
        Smoothed(Brightness(), alpha=0.7)
