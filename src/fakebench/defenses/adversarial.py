"""Adversarial training objectives for one-logit detectors: PGD-AT, TRADES, FGSM-RS.

Each objective is a callable ``objective(detector, x, y) -> loss`` for the shared training
loop (:func:`fakebench.train.fit` / :func:`fakebench.train.train_detector`, the ``objective``
hook), so augmentation (blur / JPEG / sharing / laundering), validation, early stopping and
threshold calibration stay the loop's. All are direction-aware: ``evade`` perturbs synthetic
images only (towards "real"), ``spoof`` real images only, ``both`` every image towards the other
class; untargeted images enter the loss clean.

- **PGD-AT** (Madry, Makelov, Schmidt, Tsipras, Vladu, ICLR 2018): train on the worst case found
  by ``steps`` of Linf PGD from a uniform random start inside the eps-ball (step
  ``2.5 eps / steps`` unless given). ``clean_weight`` > 0 mixes in the clean loss
  (``(1 - w) BCE(adv) + w BCE(clean)``; 0 = Madry's objective).
- **TRADES** (Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan, ICML 2019), binary form:
  ``BCE(z(x), y) + beta * KL(sigmoid(z(x)) || sigmoid(z(x')))`` where ``x'`` maximises the KL
  in the eps-ball (``steps`` sign steps from ``x + 0.001 N(0, I)``, the authors' start; beta 6
  is their CIFAR default). The KL of two Bernoulli distributions equals the softmax KL of the
  two-logit form ``[0, z]``; the gradient flows through both terms, as in the authors' code.
- **FGSM-RS** (Wong, Rice, Kolter, ICLR 2020, "Fast is better than free"): one FGSM step of
  ``alpha = 1.25 eps`` from a uniform random start, projected onto the eps-ball. Cheap, and
  prone to catastrophic overfitting (robustness to PGD vanishing within a few epochs); the
  history's per-epoch validation tells.

The inner maximisation runs with the detector in eval mode (batch-norm statistics frozen, as
TRADES' code does) and restores training mode for the update. Randomness comes from the
objective's own seeded generator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..attacks.base import ThreatModel, push_sign, target_mask
from ..attacks.gradient import PGD
from ..errors import ConfigError

KINDS = ("pgd", "trades", "fgsm-rs")


@dataclass
class AdvConfig:
    """What adversarial training does. Budgets in [0, 1] pixel units (Linf)."""

    kind: str = "pgd"
    eps: float = 4 / 255
    steps: int = 3
    step_size: float | None = None  # pgd / trades; default 2.5 eps / steps (trades: the same)
    direction: str = "both"
    beta: float = 6.0  # trades
    clean_weight: float = 0.0  # pgd / fgsm-rs: weight of the clean loss mixed in
    alpha: float | None = None  # fgsm-rs step; default 1.25 eps
    warmup: int = 0  # training steps over which eps (and the steps' size) ramp linearly from 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"adv: {self.kind!r} is not one of {', '.join(KINDS)}")
        for name in ("eps", "beta", "clean_weight"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v == v or v < 0:
                raise ConfigError(f"adv_{name}: expected a number >= 0, got {v!r}")
        if not 0 <= float(self.clean_weight) <= 1:
            raise ConfigError(f"adv_clean_weight: expected a number in [0, 1], got {self.clean_weight!r}")
        if self.eps <= 0 or self.eps > 1:
            raise ConfigError(f"adv_eps: expected 0 < eps <= 1, got {self.eps!r}")
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or int(self.steps) < 1:
            raise ConfigError(f"adv_steps: expected an integer >= 1, got {self.steps!r}")
        if self.direction not in ("evade", "spoof", "both"):
            raise ConfigError(f"adv_direction: {self.direction!r} is not evade, spoof or both")
        for name in ("step_size", "alpha"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
                raise ConfigError(f"adv_{name}: expected a positive number, got {v!r}")
        if isinstance(self.warmup, bool) or int(self.warmup) != self.warmup or int(self.warmup) < 0:
            raise ConfigError(f"adv_warmup: expected an integer >= 0, got {self.warmup!r}")
        self.steps, self.warmup = int(self.steps), int(self.warmup)


class AdversarialObjective:
    """``objective(detector, x, y)`` for the training loop (see the module docstring)."""

    def __init__(self, cfg: AdvConfig, seed: int = 0) -> None:
        self.cfg = cfg
        self.generator = torch.Generator().manual_seed(int(seed))
        self.calls = 0

    def eps_now(self) -> float:
        """The budget of the current step (ramped over ``warmup`` steps)."""
        w = self.cfg.warmup
        return float(self.cfg.eps) * (min(1.0, (self.calls + 1) / w) if w else 1.0)

    def _pgd(self) -> PGD:
        eps, cfg = self.eps_now(), self.cfg
        step = None if cfg.step_size is None else float(cfg.step_size) * eps / float(cfg.eps)
        return PGD(ThreatModel(direction=cfg.direction, norm="linf", eps=eps, steps=cfg.steps, step_size=step,
                               random_start=True, quantize=False))

    def val_attack(self, det: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The validation attack that picks the training epoch: 10-step PGD at the full budget in
        the training direction (seeded, so epochs are compared on the same draws)."""
        atk = PGD(ThreatModel(direction=self.cfg.direction, norm="linf", eps=float(self.cfg.eps), steps=10,
                              quantize=False))
        return atk.perturb(det, x, y, torch.Generator().manual_seed(0)).x_adv

    def describe(self) -> dict[str, Any]:
        return {"adv": asdict(self.cfg)}

    def __call__(self, det: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        kind = self.cfg.kind
        try:
            if kind == "pgd":
                return self._mix(det, x, y, self._pgd().perturb(det, x, y, self.generator).x_adv)
            if kind == "fgsm-rs":
                return self._mix(det, x, y, self._fgsm_rs(det, x, y))
            return self._trades(det, x, y)
        finally:
            self.calls += 1

    # -- pieces ------------------------------------------------------------------------------
    def _mix(self, det: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        w = float(self.cfg.clean_weight)
        loss = F.binary_cross_entropy_with_logits(det(x_adv.detach()), y.float())
        if w > 0:
            loss = (1 - w) * loss + w * F.binary_cross_entropy_with_logits(det(x), y.float())
        return loss

    def _fgsm_rs(self, det: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        eps = self.eps_now()
        alpha = float(self.cfg.alpha) * eps / float(self.cfg.eps) if self.cfg.alpha is not None else 1.25 * eps
        mask = target_mask(y, self.cfg.direction).view(-1, 1, 1, 1).to(x)
        delta = (torch.rand(x.shape, generator=self.generator) * 2 - 1).to(x) * eps * mask
        delta = ((x + delta).clamp(0, 1) - x).requires_grad_(True)
        was = det.training
        det.eval()
        try:
            loss = (push_sign(y, self.cfg.direction).to(x) * det(x + delta)).sum()
            (g,) = torch.autograd.grad(loss, delta)
        finally:
            det.train(was)
        delta = (delta.detach() + alpha * g.sign() * mask).clamp(-eps, eps)
        return (x + delta).clamp(0, 1)

    def _trades(self, det: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        eps = self.eps_now()
        step = float(cfg.step_size) * eps / float(cfg.eps) if cfg.step_size is not None else 2.5 * eps / cfg.steps
        mask = target_mask(y, cfg.direction).view(-1, 1, 1, 1).to(x)
        was = det.training
        det.eval()
        try:
            with torch.no_grad():
                p_nat = torch.sigmoid(det(x))
            x_adv = x + 0.001 * torch.randn(x.shape, generator=self.generator).to(x) * mask
            for _ in range(cfg.steps):
                x_adv = x_adv.detach().requires_grad_(True)
                kl = bernoulli_kl(p_nat, det(x_adv)).sum()
                (g,) = torch.autograd.grad(kl, x_adv)
                x_adv = x_adv.detach() + step * g.sign() * mask
                x_adv = torch.min(torch.max(x_adv, x - eps), x + eps).clamp(0, 1)
        finally:
            det.train(was)
        z_nat = det(x)
        robust = bernoulli_kl(torch.sigmoid(z_nat), det(x_adv.detach())).mean()
        return F.binary_cross_entropy_with_logits(z_nat, y.float()) + float(cfg.beta) * robust


def bernoulli_kl(p: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """KL(Bernoulli(p) || Bernoulli(sigmoid(z_q))) per sample, computed from the logit of q
    (stable): p log p/q + (1 - p) log (1 - p)/(1 - q)."""
    p = p.clamp(1e-7, 1 - 1e-7)
    log_q, log_1mq = F.logsigmoid(z_q), F.logsigmoid(-z_q)
    return p * (torch.log(p) - log_q) + (1 - p) * (torch.log1p(-p) - log_1mq)


def train_adversarial(detector_name: str, data: Any, out: Any, cfg: Any = None, adv: AdvConfig | None = None,
                      **detector_options: Any) -> tuple[Any, dict[str, Any]]:
    """:func:`fakebench.train.train_detector` with the adversarial objective ``adv`` (seeded by
    the training seed); the checkpoint's meta records the defense. A non-differentiable
    detector is refused with one line naming the ``adv`` option."""
    from .. import detectors
    from ..train import TrainConfig, train_detector

    adv = adv or AdvConfig()
    cfg = cfg or TrainConfig()
    card = detectors.card(detector_name)
    if not card.differentiable:
        raise ConfigError(f"adv: {adv.kind} adversarial training needs gradients, but {detector_name} is not "
                          f"differentiable ({card.non_differentiable_reason})")
    objective = AdversarialObjective(adv, seed=cfg.seed)
    det, hist = train_detector(detector_name, data, out, cfg, objective=objective, **detector_options)
    det.meta["defense"] = objective.describe()
    det.save(out)
    hist["defense"] = objective.describe()
    return det, hist
