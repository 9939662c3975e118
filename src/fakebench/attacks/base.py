"""The :class:`Attack` interface and its threat model.

``attack(detector, x, y) -> x_adv``: ``x`` is (N, 3, H, W) in [0, 1], ``y`` is (N,) with 1 =
synthetic, 0 = real. Budgets are in pixel units of the [0, 1] input (eps = 8/255 is eight grey
levels). Which samples are attacked follows ``direction``:

- ``evade``: synthetic images (y = 1) are pushed towards "real" (lower logit);
- ``spoof``: real images (y = 0) are pushed towards "synthetic" (higher logit);
- ``both``: every image is pushed towards the opposite of its label.

Samples outside the direction are returned unchanged. Degradations (JPEG, resize, blur) are
attacks with ``direction = "all"``: they touch every image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import torch

from ..errors import ConfigError

DIRECTIONS = ("evade", "spoof", "both", "all")
NORMS = ("linf", "l2", "l0", "patch", "none")


@dataclass
class ThreatModel:
    """What the attacker may do. Budgets in [0, 1] pixel units."""

    direction: str = "evade"
    norm: str = "linf"
    eps: float = 8 / 255
    steps: int = 10
    step_size: float | None = None  # default: 2.5 * eps / steps (Madry et al.)
    restarts: int = 1
    random_start: bool = False
    loss: str = "score"  # "score": push the logit; "margin": stop pushing past ``kappa``
    kappa: float = 0.0
    quantize: bool = True  # return images on the 8-bit grid (what a saved PNG holds), inside the linf/l2 budget
    eot: list[dict[str, Any]] = field(default_factory=list)  # transforms to optimise through
    eot_samples: int = 1

    def __post_init__(self) -> None:
        for name, typ in (("eps", float), ("steps", int), ("restarts", int), ("eot_samples", int), ("kappa", float)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (typ is int and int(v) != v):
                raise ConfigError(f"{name}: expected {'an integer' if typ is int else 'a number'}, got {v!r}")
            setattr(self, name, typ(v))
        if self.step_size is not None:
            if isinstance(self.step_size, bool) or not isinstance(self.step_size, (int, float)) or self.step_size <= 0:
                raise ConfigError(f"step_size: expected a positive number, got {self.step_size!r}")
            self.step_size = float(self.step_size)
        if not isinstance(self.eot, list):
            raise ConfigError(f"eot: expected a list of transforms, got {self.eot!r}")
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"direction: {self.direction!r} is not one of {DIRECTIONS}")
        if self.norm not in NORMS:
            raise ConfigError(f"norm: {self.norm!r} is not one of {NORMS}")
        if not (self.eps >= 0):  # NaN fails too; inf means unbounded (decision-based attacks)
            raise ConfigError(f"eps: must be >= 0, got {self.eps}")
        if not math.isfinite(self.kappa):
            raise ConfigError(f"kappa: must be a finite number, got {self.kappa}")
        if int(self.eot_samples) < 1:
            raise ConfigError(f"eot_samples: must be >= 1, got {self.eot_samples}")
        if int(self.steps) < 0:
            raise ConfigError(f"steps: must be >= 0, got {self.steps}")
        if self.loss not in ("score", "margin"):
            raise ConfigError(f"loss: {self.loss!r} is not 'score' or 'margin'")
        if self.restarts < 1:
            raise ConfigError(f"restarts: must be >= 1, got {self.restarts}")

    @property
    def alpha(self) -> float:
        return float(self.step_size) if self.step_size is not None else 2.5 * self.eps / max(int(self.steps), 1)


def target_mask(y: torch.Tensor, direction: str) -> torch.Tensor:
    """Boolean (N,) mask of the samples an attack with ``direction`` modifies."""
    y = y.long()
    if direction == "evade":
        return y == 1
    if direction == "spoof":
        return y == 0
    return torch.ones_like(y, dtype=torch.bool)


def push_sign(y: torch.Tensor, direction: str) -> torch.Tensor:
    """+1 where the attacker wants a higher logit (towards synthetic), -1 for lower. (N,) float."""
    y = y.float()
    if direction == "evade":
        return -torch.ones_like(y)
    if direction == "spoof":
        return torch.ones_like(y)
    return 1.0 - 2.0 * y  # opposite of the label


def decision_threshold(detector: Any) -> float:
    """The detector's decision threshold on its logit (``logit > threshold`` = synthetic):
    ``detector.threshold`` when it carries one (fakebench detectors calibrate it), else 0."""
    try:
        return float(getattr(detector, "threshold", 0.0) or 0.0)
    except (TypeError, ValueError):
        return 0.0


def attack_loss(logits: torch.Tensor, sign: torch.Tensor, loss: str = "score", kappa: float = 0.0,
                threshold: float = 0.0) -> torch.Tensor:
    """Per-sample loss the attacker maximises: ``sign * (logit - threshold)``; with
    ``loss="margin"`` capped at ``kappa``, i.e. the attacker stops pushing once the decision at
    ``threshold`` has flipped by a margin of ``kappa`` logits. (For ``score`` the threshold is a
    constant shift: the gradient is the same.)"""
    z = sign * (logits - threshold)
    if loss == "margin":
        z = torch.clamp(z, max=kappa)
    return z


def quantize_tensor(x: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit grid, staying float in [0, 1]."""
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0


def quantize_within_linf(x_adv: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Round ``x_adv`` to the 8-bit grid without leaving the Linf ball of radius ``eps`` around
    ``x``: the result is the nearest grid value inside [x - eps, x + eps] (clamped to [0, 1]).
    Where no grid value lies in the ball (``x`` off-grid and eps < 1/255) ``x`` is rounded."""
    q = quantize_tensor(x_adv)
    lo = torch.ceil(((x - eps).clamp(0, 1) * 255.0) - 1e-4) / 255.0
    hi = torch.floor(((x + eps).clamp(0, 1) * 255.0) + 1e-4) / 255.0
    ok = lo <= hi
    q = torch.where(ok, torch.minimum(torch.maximum(q, lo), hi), quantize_tensor(x))
    return q


def quantize_within_l2(x_adv: torch.Tensor, x: torch.Tensor, eps: float, max_rounds: int = 512) -> torch.Tensor:
    """Round ``x_adv`` to the 8-bit grid without leaving the L2 ball of radius ``eps`` around
    ``x`` (per sample). Plain rounding adds up to half a grey level per value, which can push
    the L2 norm past the budget (eps 0.1 -> 0.106 on 32x32 images). Start from the nearest grid
    point of ``x_adv``; while a sample is outside the ball, move values one grey level towards
    ``round(x)`` (the grid point nearest to ``x``), cheapest first (least added distance to
    ``x_adv`` per unit of squared distance to ``x`` removed), just enough to get inside; repeat.
    Where no grid point lies in the ball (``x`` off-grid and eps below ``||round(x) - x||``)
    the result is ``round(x)``."""
    xf = x.detach().double().clamp(0, 1).flatten(1) * 255.0  # grey levels
    af = x_adv.detach().double().clamp(0, 1).flatten(1) * 255.0
    r = torch.round(xf)
    q = torch.round(af)
    budget = (float(eps) * 255.0) ** 2
    for _ in range(max_rounds):
        excess = (q - xf).pow(2).sum(1) - budget
        out = excess > 0
        if not bool(out.any()):
            break
        qo, xo, ao, ro, ex = q[out], xf[out], af[out], r[out], excess[out]
        step = torch.sign(ro - qo)  # one grey level towards round(x); 0 where already there
        q2 = qo + step
        gain = (qo - xo).pow(2) - (q2 - xo).pow(2)  # squared distance to x removed
        cost = ((q2 - ao).pow(2) - (qo - ao).pow(2)).clamp_min(0)  # squared distance to x_adv added
        movable = (step != 0) & (gain > 0)
        ratio = torch.where(movable, cost / gain.clamp_min(1e-30), torch.full_like(gain, float("inf")))
        order = torch.argsort(ratio, dim=1)
        g_sorted = torch.gather(torch.where(movable, gain, torch.zeros_like(gain)), 1, order)
        before = torch.cumsum(g_sorted, 1) - g_sorted  # gain collected before each candidate
        take_sorted = (before < ex.view(-1, 1)) & (g_sorted > 0)
        take = torch.zeros_like(take_sorted).scatter(1, order, take_sorted)
        q[out] = torch.where(take, q2, qo)
    still = (q - xf).pow(2).sum(1) > budget
    q[still] = r[still]
    return (q / 255.0).to(x.dtype).view_as(x).contiguous()


def split_threat(options: dict[str, Any]) -> tuple[ThreatModel, dict[str, Any]]:
    """Split constructor keyword arguments into ThreatModel fields and the rest."""
    names = set(ThreatModel.__dataclass_fields__)
    threat = ThreatModel(**{k: v for k, v in options.items() if k in names})
    return threat, {k: v for k, v in options.items() if k not in names}


@dataclass
class AttackResult:
    """What one attack call computed.

    Attributes:
        x_adv: (N, 3, H, W) adversarial images in [0, 1] (untargeted samples unchanged; a
            size-changing degradation returns its own size).
        queries: (N,) long, model evaluations spent per sample (0 for untargeted samples).
        info: per-sample extras, each (N, ...) (e.g. ``distance`` of HopSkipJump, ``l2`` /
            ``success`` of the Carlini & Farid attacks, ``box`` of the patch attack, feature
            distances of mimicry); NaN (float), -1 (integer) or False (bool) where a sample was
            not targeted.
    """

    x_adv: torch.Tensor
    queries: torch.Tensor
    info: dict[str, torch.Tensor] = field(default_factory=dict)


def _scatter(values: torch.Tensor, idx: torch.Tensor, n: int) -> torch.Tensor:
    """(K, ...) values of the targeted samples ``idx`` -> (N, ...) with a 'not targeted' fill."""
    v = torch.as_tensor(values).detach().cpu()
    if v.dtype == torch.bool:
        full = torch.zeros((n, *v.shape[1:]), dtype=torch.bool)
    elif v.dtype.is_floating_point:
        full = torch.full((n, *v.shape[1:]), float("nan"), dtype=v.dtype)
    else:
        full = torch.full((n, *v.shape[1:]), -1, dtype=v.dtype)
    full[idx.cpu()] = v
    return full


class Attack:
    """Base class: subclasses implement :meth:`run` on the targeted samples only.

    :meth:`perturb` returns an :class:`AttackResult` (images, queries, per-sample extras);
    calling the attack returns just the images. Nothing about a call is kept on the object.
    """

    name: ClassVar[str] = "attack"
    needs_gradients: ClassVar[bool] = True

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0) -> None:
        self.threat = threat or ThreatModel()
        self.seed = int(seed)

    def loss(self, detector: torch.nn.Module, x_adv: torch.Tensor, sign: torch.Tensor,
             generator: torch.Generator | None = None) -> torch.Tensor:
        """Per-sample attacker objective (to maximise), averaged over the EOT transforms when
        the threat model lists any (``fakebench.attacks.eot``) and over ``eot_samples`` forward
        passes (randomised detectors). Measured from the detector's decision threshold
        (:func:`decision_threshold`), so the margin loss caps at ``kappa`` past the detector's
        actual decision."""
        return self.loss_and_margin(detector, x_adv, sign, generator)[0]

    def loss_and_margin(self, detector: torch.nn.Module, x_adv: torch.Tensor, sign: torch.Tensor,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective, margin): the objective of :meth:`loss` and the uncapped
        ``sign * (logit - threshold)`` (> 0: the decision is crossed), both averaged the same way."""
        t = self.threat
        thr = decision_threshold(detector)
        samples = max(int(t.eot_samples), 1)
        if not t.eot and samples == 1:
            z = detector(x_adv)
            return attack_loss(z, sign, t.loss, t.kappa, thr), sign * (z - thr)
        from .eot import apply_eot  # local import: EOT pulls in kornia

        total, margin = 0.0, 0.0
        for _ in range(samples):
            z = detector(apply_eot(x_adv, t.eot, generator) if t.eot else x_adv)
            total = total + attack_loss(z, sign, t.loss, t.kappa, thr)
            margin = margin + sign * (z - thr)
        return total / samples, margin / samples

    def params(self) -> dict[str, Any]:
        """JSON-able parameters that identify this attack configuration (store key)."""
        return {"threat": asdict(self.threat), "seed": self.seed}

    def __call__(self, detector: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """The adversarial images (``perturb(...).x_adv``)."""
        return self.perturb(detector, x, y, generator).x_adv

    def perturb(self, detector: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                generator: torch.Generator | None = None) -> AttackResult:
        """Attack the samples the threat model's direction targets; see :class:`AttackResult`.
        ``generator`` seeds the attack's randomness (default: a generator seeded with ``seed``)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"attack input must be (N, 3, H, W), got {tuple(x.shape)}")
        mask = target_mask(y, self.threat.direction)
        out = x.detach().clone()
        queries = torch.zeros(len(x), dtype=torch.long)
        info: dict[str, torch.Tensor] = {}
        if mask.any():
            if generator is None:
                generator = torch.Generator().manual_seed(self.seed)
            idx = mask.nonzero().flatten()
            was = detector.training
            detector.eval()
            try:
                adv, q, *extra = self.run(detector, x[idx].detach(), y[idx], generator)
            finally:
                detector.train(was)
            info = {k: _scatter(v, idx, len(x)) for k, v in (extra[0] if extra else {}).items()}
            adv = self._quantize(adv, x[idx])
            if adv.shape[1:] != x.shape[1:]:  # size-changing processing (resize): all-or-nothing
                if not bool(mask.all()):
                    raise ValueError(f"{self.name}: changes the image size, so it must touch every image")
                queries[:] = torch.as_tensor(q)
                return AttackResult(adv.detach().clamp(0, 1), queries, info)
            out[idx] = adv.detach().clamp(0, 1)
            queries[idx] = torch.as_tensor(q)
        return self.finalize(detector, x, y, AttackResult(out, queries, info))

    def _quantize(self, adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Round to the 8-bit grid inside the threat model's ball (when ``quantize``)."""
        if not self.threat.quantize:
            return adv
        eps = float(self.threat.eps)
        if self.threat.norm == "linf":
            return quantize_within_linf(adv, x, eps)
        if self.threat.norm == "l2" and 0 < eps < float("inf") and adv.shape == x.shape:
            return quantize_within_l2(adv, x, eps)  # eps 0 = unbounded (cf-distortion)
        return quantize_tensor(adv)

    def finalize(self, detector: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                 result: AttackResult) -> AttackResult:
        """Hook run on every call's full result (all N samples); the default returns it."""
        return result

    def run(self, detector: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
            generator: torch.Generator) -> tuple[Any, ...]:  # pragma: no cover
        """Attack every sample of ``x`` (all targeted). Returns ``(x_adv, queries per sample)``
        or ``(x_adv, queries, info)`` with ``info`` a dict of per-targeted-sample tensors."""
        raise NotImplementedError
