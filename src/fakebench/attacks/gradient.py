"""Gradient attacks: FGSM, PGD (Linf and L2), DI-FGSM and R-FGSM.

PGD follows Madry et al. (ICLR 2018) as used against synthetic-image detectors by De Rosa,
Guillaro, Poggi, Cozzolino, Verdoliva (2024): a signed-gradient (Linf) or normalised-gradient
(L2) ascent on the attacker's objective, projected back onto the eps-ball and [0, 1] after
every step. For a one-logit detector the objective is ``sign * logit`` (``evade``: sign = -1),
which has the same gradient direction as the cross-entropy of the true class on the two-class
logits ``[0, z]`` that torchattacks uses; the Linf update order (step, project the
perturbation, clamp the image) is the same too, so results match it (tests hold this).

DI-FGSM (Xie et al. 2019) and R-FGSM (Tramèr et al. 2018) reuse the PGD loop through its
hooks. ``preset="derosa2024"`` (see :data:`PRESETS`) gives De Rosa et al.'s configuration
(eps 8/255, 10 steps, step 2/255) to pgd, di-fgsm, r-fgsm and uap. The universal
perturbation lives in :mod:`fakebench.attacks.universal`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Attack, ThreatModel, push_sign, split_threat
from .eot import validate_eot


def _l2_normalize(g: torch.Tensor) -> torch.Tensor:
    n = g.flatten(1).norm(dim=1).clamp_min(1e-12)
    return g / n.view(-1, 1, 1, 1)


def _project_l2(delta: torch.Tensor, eps: float) -> torch.Tensor:
    n = delta.flatten(1).norm(dim=1).clamp_min(1e-12)
    factor = torch.clamp(eps / n, max=1.0)
    return delta * factor.view(-1, 1, 1, 1)


class PGD(Attack):
    """Projected gradient descent (Madry et al. 2018; De Rosa et al. 2024 settings:
    eps 8/255, 10 steps, step 2/255). ``norm`` is ``linf`` or ``l2`` (others raise a
    ConfigError at construction); ``restarts`` keeps, per sample, the restart with the highest
    final objective (one extra forward per restart to measure it: ``queries`` = ``restarts *
    (steps * eot_samples + 1)`` when ``restarts > 1``). With ``quantize`` the L2 result is
    rounded inside the eps-ball (:func:`~fakebench.attacks.base.quantize_within_l2`).

    Subclasses change one step of the loop through three hooks: :meth:`_start` (initial
    point), :meth:`_objective` (what the gradient is taken of) and :meth:`_direction` (how the
    gradient becomes a step)."""

    name = "pgd"
    #: norms the update and projection implement; any other threat-model norm is refused
    #: when the attack is built (rather than silently run as L2)
    supported_norms: tuple[str, ...] = ("linf", "l2")

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0) -> None:
        super().__init__(threat, seed)
        if self.threat.norm not in self.supported_norms:
            supported = ", ".join(self.supported_norms)
            raise ConfigError(f"norm: {self.name} supports {supported}, got {self.threat.norm!r}")
        if not math.isfinite(float(self.threat.eps)):  # the step size (a fraction of eps) would be infinite
            raise ConfigError(f"eps: {self.name} needs a finite budget, got {self.threat.eps}")
        if int(self.threat.steps) < 1:  # zero steps would report the clean images as an attack
            raise ConfigError(f"steps: {self.name} needs at least 1 step, got {self.threat.steps} "
                              "(for no attack use 'attack: none')")

    def _start(self, x: torch.Tensor, generator: torch.Generator, random_start: bool) -> torch.Tensor:
        t = self.threat
        eps = float(t.eps)
        if random_start and eps > 0:
            if t.norm == "linf":
                noise = (torch.rand(x.shape, generator=generator) * 2 - 1) * eps
            else:
                g = torch.randn(x.shape, generator=generator)
                r = torch.rand(len(x), generator=generator).view(-1, 1, 1, 1)
                noise = _l2_normalize(g) * r * eps
            return (x + noise.to(x)).clamp(0, 1)
        return x.clone()

    def _objective(self, detector: torch.nn.Module, x_adv: torch.Tensor, sign: torch.Tensor,
                   generator: torch.Generator) -> torch.Tensor:
        return self.loss(detector, x_adv, sign, generator)

    def _direction(self, grad: torch.Tensor, state: dict[str, Any]) -> torch.Tensor:
        return grad.sign() if self.threat.norm == "linf" else _l2_normalize(grad)

    def _step_size(self) -> float:
        return self.threat.alpha

    def _one_run(self, detector: torch.nn.Module, x: torch.Tensor, sign: torch.Tensor,
                 generator: torch.Generator, random_start: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        t = self.threat
        eps, alpha = float(t.eps), self._step_size()
        x_adv = self._start(x, generator, random_start)
        state: dict[str, Any] = {}
        for _ in range(int(t.steps)):
            x_adv.requires_grad_(True)
            loss = self._objective(detector, x_adv, sign, generator).sum()
            (grad,) = torch.autograd.grad(loss, x_adv)
            with torch.no_grad():
                x_adv = x_adv + alpha * self._direction(grad, state)
                if t.norm == "linf":
                    delta = torch.clamp(x_adv - x, -eps, eps)
                else:
                    delta = _project_l2(x_adv - x, eps)
                x_adv = torch.clamp(x + delta, 0, 1)
        if int(t.restarts) == 1:  # no restart to compare against: skip the extra forward
            return x_adv.detach(), None
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
        per_restart = int(self.threat.steps) * max(int(self.threat.eot_samples), 1) + int(self.threat.restarts > 1)
        return best, per_restart * int(self.threat.restarts)


class FGSM(PGD):
    """Fast gradient sign method (Goodfellow et al., ICLR 2015): one step of size eps."""

    name = "fgsm"


#: Named configurations from papers, per attack; explicit options override them. A preset
#: names only the settings the paper's code fixes (the threat model); the attacks' own
#: defaults (DI-FGSM's diversity, Robust FGSM's transforms, the UAP's DeepFool settings) are
#: already the papers'.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # De Rosa, Guillaro, Poggi, Cozzolino, Verdoliva, "Exploring the adversarial robustness of
    # CLIP for AI-generated image detection" (2024), grip-unina/AdversarialRobustnessCLIP:
    # Linf PGD ("pgdI"): eps 8/255, step eps/4 = 2/255, 10 steps, uniform random start;
    # DI-FGSM: torchattacks.DIFGSM(eps 8/255, alpha 2/255, steps 10) with its defaults;
    # Robust FGSM (Hussain et al. 2021): max_iter 10, eps 8/255, alpha 2/255; UAP: Linf 8/255.
    # fgsm takes only the budget (De Rosa et al. do not run FGSM).
    "derosa2024": {
        "pgd": {"eps": 8 / 255, "steps": 10, "step_size": 2 / 255, "norm": "linf", "random_start": True},
        "fgsm": {"eps": 8 / 255, "norm": "linf"},
        "di-fgsm": {"eps": 8 / 255, "steps": 10, "step_size": 2 / 255, "norm": "linf", "random_start": False},
        "robust-fgsm": {"eps": 8 / 255, "steps": 10, "step_size": 2 / 255, "norm": "linf"},
        "uap": {"eps": 8 / 255, "norm": "linf"},
    },
    # their shipped configuration (configs/latent.yaml, attack "pgdE"): L2 PGD with eps 8 and step
    # eps/5 = 1.6, 10 steps, in the [0, 1] pixel units their code feeds it (ToTensor images, eps
    # not divided by 255); their L2 random start has radius 0, i.e. none.
    "derosa2024-l2": {
        "pgd": {"eps": 8.0, "steps": 10, "step_size": 1.6, "norm": "l2", "random_start": False},
    },
}
PRESETS["derosa2024-linf"] = PRESETS["derosa2024"]


def with_preset(options: dict[str, Any], attack: str | None = None) -> dict[str, Any]:
    """``options`` with ``preset`` (a :data:`PRESETS` name) expanded underneath the explicit
    ones, using the preset's settings for ``attack``; a preset without settings for that attack
    is a one-line ConfigError."""
    options = dict(options)
    preset = options.pop("preset", None)
    if preset is None:
        return options
    if preset not in PRESETS:
        raise ConfigError(f"preset: {preset!r} is not one of {sorted(PRESETS)}")
    if attack not in PRESETS[preset]:
        raise ConfigError(f"preset: {preset!r} has no setting for {attack or 'this attack'} "
                          f"(it covers {', '.join(PRESETS[preset])})")
    return {**PRESETS[preset][attack], **options}


def threat_from(options: dict[str, Any], defaults: dict[str, Any] | None = None,
                attack: str | None = None) -> ThreatModel:
    """Build the threat model from preset (``attack``'s settings) + defaults + explicit options;
    unknown keys raise a one-line ConfigError."""
    merged = {**(defaults or {}), **with_preset(options, attack)}
    threat, rest = split_threat(merged)
    if rest:
        raise ConfigError(f"unknown options {sorted(rest)}")
    if threat.eot:
        validate_eot(threat.eot)
    return threat


def build_pgd(seed: int = 0, **options: Any) -> PGD:
    return PGD(threat_from(options, attack="pgd"), seed=seed)


def build_fgsm(seed: int = 0, **options: Any) -> FGSM:
    options = with_preset(options, "fgsm")
    options = {**options, "steps": 1, "step_size": options.get("eps", 8 / 255)}
    return FGSM(threat_from(options), seed=seed)


# -- DI-FGSM --------------------------------------------------------------------------------

def input_diversity(x: torch.Tensor, p: float, resize_rate: float, generator: torch.Generator | None,
                    interpolation: str = "bilinear") -> torch.Tensor:
    """Xie et al. (CVPR 2019) diversity transform as torchattacks' ``DIFGSM.input_diversity``
    implements it (the version De Rosa et al. 2024 ran), differentiable in ``x``.

    With ``W`` the input width: for ``resize_rate < 1`` (torchattacks' default 0.9) the batch
    is resized to a random side ``rnd`` in ``[int(W * rate), W)`` and zero-padded at a random
    position back to ``W`` (output at the input size); for ``resize_rate > 1`` (Xie et al.'s
    330/299) ``rnd`` lies in ``[W, int(W * rate))`` and the canvas is ``int(W * rate)``. The
    draws come in torchattacks' order from ``generator`` (``rnd``, top, left, then the coin
    ``rand < p``), every call, whether or not the transform is applied: with the same seed the
    result equals torchattacks'. ``interpolation`` is ``bilinear`` (torchattacks) or ``nearest``
    (Xie et al.'s TensorFlow code). Non-square inputs (torchattacks handles only square ones)
    scale the height by the same factor."""
    _, _, h, w = x.shape
    if resize_rate < 1:  # rnd in [int(W * rate), W), canvas W
        small, big = int(w * resize_rate), w
    else:  # rnd in [W, int(W * rate)), canvas int(W * rate)
        small, big = w, int(w * resize_rate)
    if big <= small:
        return x
    rnd = int(torch.randint(low=small, high=big, size=(1,), generator=generator, dtype=torch.int32))
    canvas_h = big if h == w else max(1, round(h * big / w))
    rnd_h = rnd if h == w else min(canvas_h - 1, max(1, round(h * rnd / w)))
    top = int(torch.randint(low=0, high=max(canvas_h - rnd_h, 1), size=(1,), generator=generator, dtype=torch.int32))
    left = int(torch.randint(low=0, high=big - rnd, size=(1,), generator=generator, dtype=torch.int32))
    apply = float(torch.rand(1, generator=generator)) < p
    if not apply:
        return x
    align = False if interpolation != "nearest" else None
    rescaled = F.interpolate(x, size=(rnd_h, rnd), mode=interpolation, align_corners=align)
    return F.pad(rescaled, (left, big - rnd - left, top, canvas_h - rnd_h - top), value=0.0)


class DIFGSM(PGD):
    """Diverse-inputs iterative FGSM (Xie, Zhang, Zhou, Bai, Wang, Ren, Yuille, "Improving
    transferability of adversarial examples with input diversity", CVPR 2019) with
    torchattacks' ``DIFGSM`` defaults, as De Rosa et al. (2024) ran it: ``resize_rate`` 0.9
    (shrink, pad back to the input size), bilinear, ``p`` = diversity_prob 0.5, no random
    start. I-FGSM whose gradient is taken through :func:`input_diversity`; ``momentum`` > 0
    gives M-DI2-FGSM (torchattacks' ``decay``: accumulation of L1-normalised gradients, Dong
    et al. 2018). Xie et al.'s own setting is ``resize_rate=330/299, interpolation="nearest"``.
    The update is projected onto the eps-ball like PGD; EOT transforms apply after the
    diversity transform."""

    name = "di-fgsm"

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, p: float = 0.5,
                 resize_rate: float = 0.9, momentum: float = 0.0, interpolation: str = "bilinear") -> None:
        super().__init__(threat, seed)
        if not 0 <= float(p) <= 1:
            raise ConfigError(f"p: expected a probability in [0, 1], got {p!r}")
        if not 0 < float(resize_rate) <= 4 or float(resize_rate) == 1:
            raise ConfigError(f"resize_rate: expected a number in (0, 4] other than 1, got {resize_rate!r}")
        if float(momentum) < 0:
            raise ConfigError(f"momentum: must be >= 0, got {momentum!r}")
        if interpolation not in ("bilinear", "nearest", "bicubic"):
            raise ConfigError(f"interpolation: {interpolation!r} is not 'bilinear', 'nearest' or 'bicubic'")
        self.p, self.resize_rate, self.momentum = float(p), float(resize_rate), float(momentum)
        self.interpolation = interpolation

    def params(self) -> dict[str, Any]:
        return {**super().params(), "p": self.p, "resize_rate": self.resize_rate, "momentum": self.momentum,
                "interpolation": self.interpolation}

    def _objective(self, detector, x_adv, sign, generator):
        x_div = input_diversity(x_adv, self.p, self.resize_rate, generator, self.interpolation)
        return self.loss(detector, x_div, sign, generator)

    def _direction(self, grad, state):
        if self.momentum > 0:
            g = grad / grad.abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, 1, 1, 1)
            state["g"] = self.momentum * state.get("g", torch.zeros_like(g)) + g
            grad = state["g"]
        return super()._direction(grad, state)


# -- R-FGSM ---------------------------------------------------------------------------------

class RFGSM(PGD):
    """R+FGSM (Tramèr, Kurakin, Papernot, Goodfellow, Boneh, McDaniel, "Ensemble adversarial
    training: attacks and defenses", ICLR 2018): a random step ``alpha * sign(N(0, I))``
    (default alpha = eps / 2, the paper's eps=16, alpha=8 ratio) followed by a gradient-sign
    step of size ``eps - alpha``. ``steps > 1`` splits that budget into ``steps`` projected
    steps of ``(eps - alpha) / steps`` (unless ``step_size`` is set). Linf only."""

    name = "r-fgsm"
    supported_norms = ("linf",)

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, alpha: float | None = None) -> None:
        super().__init__(threat, seed)  # refuses norms other than linf
        eps = float(self.threat.eps)
        a = eps / 2 if alpha is None else float(alpha)
        if not 0 <= a <= eps:
            raise ConfigError(f"alpha: must lie in [0, eps={eps:.6g}], got {alpha!r}")
        self.rand_alpha = a

    def params(self) -> dict[str, Any]:
        return {**super().params(), "alpha": self.rand_alpha}

    def _start(self, x, generator, random_start):
        noise = torch.randn(x.shape, generator=generator).sign().to(x)
        return (x + self.rand_alpha * noise).clamp(0, 1)

    def _step_size(self) -> float:
        t = self.threat
        if t.step_size is not None:
            return float(t.step_size)
        return (float(t.eps) - self.rand_alpha) / max(int(t.steps), 1)


def build_difgsm(seed: int = 0, p: float = 0.5, resize_rate: float = 0.9, momentum: float = 0.0,
                 interpolation: str = "bilinear", **options: Any) -> DIFGSM:
    return DIFGSM(threat_from(options, attack="di-fgsm"), seed=seed, p=p, resize_rate=resize_rate, momentum=momentum,
                  interpolation=interpolation)


def build_rfgsm(seed: int = 0, alpha: float | None = None, **options: Any) -> RFGSM:
    return RFGSM(threat_from(options, {"steps": 1}, attack="r-fgsm"), seed=seed, alpha=alpha)
