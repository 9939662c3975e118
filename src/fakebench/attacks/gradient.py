"""Gradient attacks: FGSM and PGD (Linf and L2).

PGD follows Madry et al. (ICLR 2018) as used against synthetic-image detectors by De Rosa,
Guillaro, Poggi, Cozzolino, Verdoliva (2024): a signed-gradient (Linf) or normalised-gradient
(L2) ascent on the attacker's objective, projected back onto the eps-ball and [0, 1] after
every step. For a one-logit detector the objective is ``sign * logit`` (``evade``: sign = -1),
which has the same gradient direction as the cross-entropy of the true class on the two-class
logits ``[0, z]`` that torchattacks uses; the Linf update order (step, project the
perturbation, clamp the image) is the same too, so results match it (tests hold this).
"""

from __future__ import annotations

from typing import Any

import torch

from . import register
from .base import Attack, push_sign, split_threat


def _l2_normalize(g: torch.Tensor) -> torch.Tensor:
    n = g.flatten(1).norm(dim=1).clamp_min(1e-12)
    return g / n.view(-1, 1, 1, 1)


def _project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    n = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = torch.clamp(eps / n, max=1.0)
    return delta * factor.view(-1, 1, 1, 1)


class PGD(Attack):
    """Projected gradient descent (Madry et al. 2018; De Rosa et al. 2024 settings:
    eps 8/255, 10 steps, step 2/255). ``norm`` is ``linf`` or ``l2``; ``restarts`` keeps, per
    sample, the restart with the highest final objective."""

    name = "pgd"
    paper = "Madry et al., ICLR 2018; settings of De Rosa et al., 2024"

    def _one_run(self, detector: torch.nn.Module, x: torch.Tensor, sign: torch.Tensor,
                 generator: torch.Generator, random_start: bool) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.threat
        eps, alpha = float(t.eps), t.alpha
        if random_start and eps > 0:
            if t.norm == "linf":
                noise = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
            else:
                g = torch.randn(x.shape, generator=generator)
                r = torch.rand(len(x), generator=generator).view(-1, 1, 1, 1)
                noise = _l2_normalize(g) * r * eps
            x_adv = (x + noise.to(x)).clamp(0, 1)
        else:
            x_adv = x.clone()
        for _ in range(int(t.steps)):
            x_adv.requires_grad_(True)
            loss = self.loss(detector, x_adv, sign, generator).sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                if t.norm == "linf":
                    x_adv = x_adv + alpha * grad.sign()
                    delta = torch.clamp(x_adv - x, -eps, eps)
                else:
                    x_adv = x_adv + alpha * _l2_normalize(grad)
                    delta = _project_l2(x_adv - x, eps)
                x_adv = torch.clamp(x + delta, 0, 1)
        with torch.no_grad():
            final = self.loss(detector, x_adv, sign, generator)
        return x_adv.detach(), final

    def run(self, detector, x, y, generator):
        sign = push_sign(y, self.threat.direction).to(x)
        best, best_loss = None, None
        for r in range(int(self.threat.restarts)):
            adv, loss = self._one_run(detector, x, sign, generator, self.threat.random_start or r > 0)
            if best is None:
                best, best_loss = adv, loss
            else:
                better = loss > best_loss
                best = torch.where(better.view(-1, 1, 1, 1), adv, best)
                best_loss = torch.where(better, loss, best_loss)
        per_restart = int(self.threat.steps) * max(int(self.threat.eot_samples), 1) + 1
        return best, per_restart * int(self.threat.restarts)


class FGSM(PGD):
    """Fast gradient sign method (Goodfellow et al., ICLR 2015): one step of size eps."""

    name = "fgsm"
    paper = "Goodfellow, Shlens, Szegedy, ICLR 2015"


@register("pgd", "projected gradient descent, Linf or L2 (De Rosa et al. 2024 settings: eps 8/255, 10 steps, step 2/255)",
          paper=PGD.paper)
def _pgd(seed: int = 0, **options: Any) -> PGD:
    threat, rest = split_threat(options)
    if rest:
        raise TypeError(f"unknown options {sorted(rest)}")
    return PGD(threat, seed=seed)


@register("fgsm", "fast gradient sign method (one step of size eps)", paper=FGSM.paper)
def _fgsm(seed: int = 0, **options: Any) -> FGSM:
    options = {**options, "steps": 1, "step_size": options.get("eps", 8 / 255)}
    threat, rest = split_threat(options)
    if rest:
        raise TypeError(f"unknown options {sorted(rest)}")
    return FGSM(threat, seed=seed)
