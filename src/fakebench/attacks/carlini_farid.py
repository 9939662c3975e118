"""Carlini & Farid, "Evading deepfake-image detectors with white- and black-box attacks",
CVPR Workshops 2020: the attack case studies against a CNNSpot-style detector.

Each is its own registered attack on the common threat model:

- ``cf-distortion``: distortion-minimising white-box attack: the smallest L2 change that
  flips the detector's decision, found as in Carlini & Wagner (S&P 2017): minimise
  ``||delta||_2^2 + c * max(kappa - s * (z - thr), 0)`` with Adam on the tanh
  parametrisation ``x' = (tanh(w) + 1) / 2`` and a per-image binary search over ``c``. Success
  is checked on the 8-bit-rounded candidate, so the returned PNG-exact image flips the
  decision. Per-sample L2 / L0 / Linf of the returned images are in the result's ``info``.
- ``cf-lossmax``: loss-maximising white-box attack: maximise the attacker's objective under a
  fixed tiny Linf budget (default 1/255: every pixel moves by at most one grey level, which the
  paper describes as flipping the lowest bit of each pixel; it reports AUC 0.95 -> 0.0005).
- ``cf-lsb``: the strict least-significant-bit version: a pixel may only have its lowest bit
  flipped (``v -> v XOR 1``), chosen where the flip agrees with the gradient (a relaxed
  sign-gradient ascent on the per-pixel flip amount, rounded at the end). Exact 8-bit result;
  every pixel changes by 0 or 1/255.
- ``cf-patch``: universal adversarial patch over ``fraction`` of the image area (paper: 1%,
  AUC -> 0.08), trained over a set with Adam at random positions (Brown et al. 2017 style) and
  pasted at random (seeded) positions; pixels outside the patch are never touched. The patch
  box of every image is in the result's ``info["box"]`` (top, left, height, width; -1 = untouched).
- ``cf-transfer``: black-box transfer: attack a surrogate detector (a fakebench checkpoint or
  a Detector) with a white-box attack (PGD by default) and hand the images to the target
  (paper: surrogate trained on different data, target AUC -> 0.22). No target query.

- ``cf-latent``: the latent-space case study: instead of pixels, the attacker changes the
  generator's latent so that the GENERATED image evades. Here the generator is the TAESD-family
  decoder fakebench has (``weights=DIR``, e.g. ../shared/weights/taef2): the fake's latent
  ``z0 = encode(x)`` is moved by signed-gradient steps on the attacker's objective of
  ``decode(z)``, projected onto ``||z - z0||_inf <= latent_eps`` (raw latent units; raw
  latents lie in about [-3, 3]); ``universal=True`` learns ONE latent offset shared by the
  batch, closer to the paper's StyleGAN experiment (a single offset added to every latent).
  The result's ``info`` reports per image ``psnr`` of the decoded adversarial image to the
  decoded original ``decode(z0)``, ``psnr_input`` to the attacked input, and
  ``latent_linf``. Deviation: the paper's generator is StyleGAN; there is no pixel budget
  (``norm`` is ``none``), the distance is in the latent.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from . import create_seeded
from .base import Attack, ThreatModel, push_sign, quantize_tensor, target_mask
from .gradient import PGD, threat_from
from .universal import UniversalAttack

PAPER = "Carlini & Farid, CVPR Workshops 2020"


def perturbation_report(x: torch.Tensor, adv: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample norms of ``adv - x`` ((N,) each): ``l2`` (over all values, [0, 1] units),
    ``linf``, ``l0`` (pixels whose value changed in any channel) and ``l0_fraction``."""
    d = (adv.detach().float() - x.detach().float()).flatten(2)  # (N, 3, H*W)
    changed = (d != 0).any(1)
    return {
        "l2": d.flatten(1).norm(dim=1),
        "linf": d.flatten(1).abs().amax(dim=1) if d.numel() else torch.zeros(len(x)),
        "l0": changed.sum(1),
        "l0_fraction": changed.float().mean(1),
    }


class _Reports:
    """Mixin: every result's ``info`` holds :func:`perturbation_report` of its images."""

    def finalize(self, detector, x, y, result):
        result = super().finalize(detector, x, y, result)  # type: ignore[misc]
        if result.x_adv.shape == x.shape:
            result.info.update(perturbation_report(x, result.x_adv))
        return result


def _threshold(detector: torch.nn.Module) -> float:
    return float(getattr(detector, "threshold", 0.0) or 0.0)


# -- distortion-minimising (C&W L2) --------------------------------------------------------

class CFDistortion(_Reports, Attack):
    """Distortion-minimising white-box attack (Carlini & Farid 2020, after Carlini & Wagner
    2017's L2 attack). ``threat.steps``: Adam iterations per binary-search step;
    ``threat.kappa``: required margin past the decision threshold (logit units);
    ``threat.eps`` > 0 caps the accepted L2 (0 = unbounded). Images for which no flipping
    change was found are returned unchanged (``success`` False in the result's ``info``)."""

    name = "cf-distortion"

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, binary_steps: int = 6,
                 c_init: float = 1.0, lr: float = 0.01) -> None:
        super().__init__(threat, seed)
        if self.threat.norm != "l2":
            raise ConfigError(f"norm: cf-distortion minimises L2, got {self.threat.norm!r}")
        if int(binary_steps) < 1:
            raise ConfigError(f"binary_steps: must be >= 1, got {binary_steps!r}")
        if not float(c_init) > 0 or not float(lr) > 0:
            raise ConfigError(f"c_init and lr: must be > 0, got c_init={c_init!r}, lr={lr!r}")
        self.binary_steps, self.c_init, self.lr = int(binary_steps), float(c_init), float(lr)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "binary_steps": self.binary_steps, "c_init": self.c_init, "lr": self.lr}

    def finalize(self, detector, x, y, result):
        result = super().finalize(detector, x, y, result)
        with torch.no_grad():
            z = detector(result.x_adv).float().cpu()
        s = push_sign(y, self.threat.direction).cpu()
        mask = target_mask(y, self.threat.direction).cpu()
        result.info["success"] = mask & (s * (z - _threshold(detector)) > 0)
        return result

    def run(self, detector, x, y, generator):
        t = self.threat
        n = len(x)
        sign = push_sign(y, t.direction).to(x)
        thr, kappa = _threshold(detector), float(t.kappa)
        quant = bool(t.quantize)
        w0 = torch.atanh((2 * x - 1).clamp(-1 + 1e-6, 1 - 1e-6))
        c = torch.full((n,), self.c_init, device=x.device)
        lo = torch.zeros(n, device=x.device)
        hi = torch.full((n,), float("inf"), device=x.device)
        best = x.clone()
        best_l2 = torch.full((n,), float("inf"), device=x.device)
        cap = float(t.eps) if t.eps > 0 else float("inf")
        queries = 0
        for _ in range(self.binary_steps):
            w = w0.clone().requires_grad_(True)
            opt = torch.optim.Adam([w], lr=self.lr)
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            for _ in range(max(int(t.steps), 1)):
                xa = (torch.tanh(w) + 1) / 2
                z = detector(xa)
                dist = (xa - x).flatten(1).pow(2).sum(1)
                f = torch.clamp(kappa - sign * (z - thr), min=0)
                loss = (dist + c * f).sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                queries += 1
                with torch.no_grad():
                    cand = quantize_tensor(xa) if quant else xa.detach()
                    zc = detector(cand) if quant else z.detach()
                    if quant:
                        queries += 1
                    ok = sign * (zc - thr) > (kappa if kappa > 0 else 0.0)
                    l2 = (cand - x).flatten(1).norm(dim=1)
                    better = ok & (l2 < best_l2) & (l2 <= cap)
                    best = torch.where(better.view(-1, 1, 1, 1), cand, best)
                    best_l2 = torch.where(better, l2, best_l2)
                    found |= ok
            # binary search on c (per image): success -> smaller c, failure -> larger c
            hi = torch.where(found, torch.minimum(hi, c), hi)
            lo = torch.where(found, lo, torch.maximum(lo, c))
            c = torch.where(torch.isinf(hi), c * 10, (lo + hi) / 2)
        return best, queries


def build_cf_distortion(seed: int = 0, binary_steps: int = 6, c_init: float = 1.0, lr: float = 0.01,
                   **options: Any) -> CFDistortion:
    threat = threat_from(options, {"norm": "l2", "eps": 0.0, "steps": 100})
    return CFDistortion(threat, seed=seed, binary_steps=binary_steps, c_init=c_init, lr=lr)


# -- loss-maximising (fixed tiny Linf budget) ----------------------------------------------

class CFLossMax(_Reports, PGD):
    """Loss-maximising white-box attack (Carlini & Farid 2020): maximise the attacker's
    objective under a fixed small Linf budget (default eps = 1/255, 20 steps of eps/4),
    returned on the 8-bit grid inside the budget."""

    name = "cf-lossmax"


def build_cf_lossmax(seed: int = 0, **options: Any) -> CFLossMax:
    threat = threat_from(options, {"eps": 1 / 255, "steps": 20, "norm": "linf"})
    if threat.step_size is None:
        threat.step_size = float(threat.eps) / 4 if threat.eps > 0 else None
    if threat.norm != "linf":
        raise ConfigError(f"norm: cf-lossmax is a linf attack, got {threat.norm!r}")
    return CFLossMax(threat, seed=seed)


# -- least significant bit ------------------------------------------------------------------

class CFLSB(_Reports, Attack):
    """Least-significant-bit attack (Carlini & Farid 2020): each 8-bit value ``v`` may only
    become ``v XOR 1``. The flip amount ``t`` in [0, 1] per value is optimised by
    sign-gradient ascent (``threat.steps`` steps of ``step``), then rounded to {0, 1}. Inputs
    off the 8-bit grid are rounded to it first."""

    name = "cf-lsb"

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, step: float = 0.25) -> None:
        super().__init__(threat, seed)
        if not 0 < float(step) <= 1:
            raise ConfigError(f"step: expected a number in (0, 1], got {step!r}")
        self.step = float(step)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "step": self.step}

    def run(self, detector, x, y, generator):
        sign = push_sign(y, self.threat.direction).to(x)
        x0 = quantize_tensor(x)
        v = torch.round(x0 * 255)
        flip = torch.where(torch.remainder(v, 2) == 0, 1.0, -1.0).to(x) / 255.0  # v XOR 1 - v
        tt = torch.zeros_like(x)
        steps = max(int(self.threat.steps), 1)
        for _ in range(steps):
            tt.requires_grad_(True)
            loss = self.loss(detector, x0 + tt * flip, sign, generator).sum()
            (g,) = torch.autograd.grad(loss, tt)
            with torch.no_grad():
                tt = (tt + self.step * g.sign()).clamp(0, 1)
        with torch.no_grad():
            adv = x0 + (tt >= 0.5).to(x) * flip
            adv = torch.round(adv * 255) / 255  # exact grid values
        return adv, steps * max(int(self.threat.eot_samples), 1)


def build_cf_lsb(seed: int = 0, step: float = 0.25, **options: Any) -> CFLSB:
    if "eps" in options or "norm" in options:
        raise ConfigError("cf-lsb: has a fixed budget (norm linf, eps 1/255); use cf-lossmax for other budgets")
    threat = threat_from(options, {"steps": 10})
    threat.norm, threat.eps, threat.quantize = "linf", 1 / 255, True
    return CFLSB(threat, seed=seed, step=step)


# -- universal adversarial patch -------------------------------------------------------------

def patch_side(h: int, w: int, fraction: float) -> int:
    """Side (pixels) of the square patch covering ``fraction`` of an (h, w) image (>= 1)."""
    return max(1, min(h, w, int(round(math.sqrt(fraction * h * w)))))


def _place(patch: torch.Tensor, h: int, w: int, top: int, left: int) -> torch.Tensor:
    s = patch.shape[-1]
    return F.pad(patch, (left, w - s - left, top, h - s - top))


class CFPatch(UniversalAttack):
    """Universal adversarial patch (Carlini & Farid 2020; Brown et al., "Adversarial patch",
    2017): a square covering ``fraction`` of the image (default 0.01), fitted on a set with
    Adam (``lr``) for ``threat.steps`` epochs at random positions, then pasted at a random
    (seeded) position of each attacked image, resized to the image's patch side. Fit with
    :meth:`fit` or ``fit_on=path`` (otherwise on the first batch seen)."""

    name = "cf-patch"

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, fraction: float = 0.01,
                 lr: float = 0.05, **kwargs: Any) -> None:
        super().__init__(threat, seed, **kwargs)
        if not 0 < float(fraction) <= 1:
            raise ConfigError(f"fraction: expected a number in (0, 1], got {fraction!r}")
        if not float(lr) > 0:
            raise ConfigError(f"lr: must be > 0, got {lr!r}")
        self.fraction, self.lr = float(fraction), float(lr)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "fraction": self.fraction, "lr": self.lr}

    def _positions(self, n: int, h: int, w: int, s: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        tops = torch.randint(0, h - s + 1, (n,), generator=generator)
        lefts = torch.randint(0, w - s + 1, (n,), generator=generator)
        return tops, lefts

    def _paste(self, x: torch.Tensor, patch: torch.Tensor, tops: torch.Tensor, lefts: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ones = torch.ones_like(patch[:1])
        canvas = torch.stack([_place(patch, h, w, int(t), int(l_)) for t, l_ in zip(tops, lefts)])
        mask = torch.stack([_place(ones, h, w, int(t), int(l_)) for t, l_ in zip(tops, lefts)])
        return x * (1 - mask) + canvas * mask

    def _sized(self, patch: torch.Tensor, s: int) -> torch.Tensor:
        if patch.shape[-1] == s:
            return patch
        return F.interpolate(patch.unsqueeze(0), size=(s, s), mode="bilinear", align_corners=False).squeeze(0)

    def _fit(self, detector, batches, generator):
        h, w = batches[0][0].shape[-2:]
        s0 = patch_side(h, w, self.fraction)
        dev = batches[0][0].device
        param = torch.rand(3, s0, s0, generator=generator).to(dev).requires_grad_(True)
        opt = torch.optim.Adam([param], lr=self.lr)
        for _ in range(max(int(self.threat.steps), 1)):
            for bi in torch.randperm(len(batches), generator=generator).tolist():
                xb, yb = batches[bi]
                hb, wb = xb.shape[-2:]
                s = patch_side(hb, wb, self.fraction)
                tops, lefts = self._positions(len(xb), hb, wb, s, generator)
                xa = self._paste(xb, self._sized(param.clamp(0, 1), s), tops, lefts)
                loss = -self.loss(detector, xa, self._batch_sign(yb, len(xb), xb), generator).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    param.clamp_(0, 1)
        return param.detach()

    def run(self, detector, x, y, generator):
        patch = self._state_for(detector, x, y)
        n, _, h, w = x.shape
        s = patch_side(h, w, self.fraction)
        p = self._sized(patch, s).clamp(0, 1)
        if self.threat.quantize:
            p = quantize_tensor(p)
        tops, lefts = self._positions(n, h, w, s, generator)
        boxes = torch.stack([tops, lefts, torch.full_like(tops, s), torch.full_like(tops, s)], 1)
        with torch.no_grad():
            return self._paste(x, p.to(x), tops, lefts), 0, {"box": boxes}

    def finalize(self, detector, x, y, result):
        """Pixels outside each image's patch box are never touched (also after 8-bit rounding);
        ``info["box"]`` is (top, left, height, width), -1 for untargeted images."""
        boxes = result.info.get("box", torch.full((len(x), 4), -1, dtype=torch.long))
        result.info["box"] = boxes
        inside = torch.zeros(len(x), 1, *x.shape[-2:], dtype=torch.bool, device=x.device)
        for i, (t, l_, hh, ww) in enumerate(boxes.tolist()):
            if t >= 0:
                inside[i, :, t : t + hh, l_ : l_ + ww] = True
        result.x_adv = torch.where(inside, result.x_adv, x)
        result.info.update(perturbation_report(x, result.x_adv))
        return result


def build_cf_patch(seed: int = 0, fraction: float = 0.01, lr: float = 0.05, batch_size: int = 32,
              fit_on: str | None = None, fit_split: str | None = "train", fit_limit: int | None = 512,
              **options: Any) -> CFPatch:
    threat = threat_from(options, {"steps": 10})
    threat.norm, threat.eps = "patch", 0.0  # the budget is the area (``fraction``), not a norm
    return CFPatch(threat, seed=seed, fraction=fraction, lr=lr, batch_size=batch_size, fit_on=fit_on,
                   fit_split=fit_split, fit_limit=fit_limit)


# -- black-box transfer ---------------------------------------------------------------------

class CFTransfer(_Reports, Attack):
    """Black-box transfer attack (Carlini & Farid 2020): run a white-box ``base`` attack on a
    ``surrogate`` detector and return its images for the target. The target is never
    queried (``queries`` = 0) and need not be differentiable."""

    name = "cf-transfer"
    needs_gradients = False

    def __init__(self, surrogate: torch.nn.Module, base: Attack, surrogate_ref: str | None = None, seed: int = 0) -> None:
        super().__init__(base.threat, seed)
        self.surrogate = surrogate.eval()
        self.base = base
        self.surrogate_ref = surrogate_ref or type(surrogate).__name__

    def params(self) -> dict[str, Any]:
        return {**self.base.params(), "surrogate": self.surrogate_ref,
                "base": getattr(self.base, "registry_name", self.base.name)}

    def run(self, detector, x, y, generator):
        sur = self.surrogate
        p = next(sur.parameters(), None)
        if p is not None and p.device != x.device:
            sur = sur.to(x.device)
        adv = self.base(sur, x, y, generator)
        return adv, 0


def _load_surrogate(surrogate: Any) -> tuple[torch.nn.Module, str]:
    if isinstance(surrogate, torch.nn.Module):
        name = getattr(surrogate, "registry_name", type(surrogate).__name__)
        return surrogate, f"{name}:{getattr(surrogate, 'options', {})}"
    if isinstance(surrogate, (str, Path)):
        from .. import detectors

        return detectors.load(surrogate), str(surrogate)
    raise ConfigError("surrogate: expected a fakebench checkpoint directory or a Detector, "
                      f"got {type(surrogate).__name__}")


def build_cf_transfer(surrogate: Any = None, base: str = "pgd", seed: int = 0, **options: Any) -> CFTransfer:
    if surrogate is None:
        raise ConfigError("cf-transfer: 'surrogate' is required (a fakebench checkpoint directory)")
    if base == "cf-transfer":
        raise ConfigError("cf-transfer: base cannot be cf-transfer")
    model, ref = _load_surrogate(surrogate)
    inner = create_seeded(base, seed, **options)
    if not inner.needs_gradients:
        raise ConfigError(f"cf-transfer: base {base!r} does not use the surrogate's gradients")
    return CFTransfer(model, inner, surrogate_ref=ref, seed=seed)


# -- latent-space attack -------------------------------------------------------------------

def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [0, 1]; inf where identical."""
    mse = (a.detach().float() - b.detach().float()).flatten(1).pow(2).mean(1)
    return 10 * torch.log10(1.0 / mse)


class CFLatent(Attack):
    """Carlini & Farid's latent-space attack with a TAESD-family decoder as the generator (see the
    module docstring). ``threat.steps`` / ``threat.step_size``: signed-gradient steps in the latent
    (default step ``2.5 * latent_eps / steps``); ``latent_eps``: the Linf radius around ``z0``."""

    name = "cf-latent"

    def __init__(self, tae: Any, threat: ThreatModel | None = None, seed: int = 0, latent_eps: float = 0.3,
                 universal: bool = False, describe: dict[str, Any] | None = None) -> None:
        super().__init__(threat, seed)
        if not float(latent_eps) > 0:
            raise ConfigError(f"latent_eps: must be > 0 (raw latent units), got {latent_eps!r}")
        self.tae, self.latent_eps, self.universal = tae, float(latent_eps), bool(universal)
        self.describe = describe or {}

    def params(self) -> dict[str, Any]:
        return {**super().params(), "latent_eps": self.latent_eps, "universal": self.universal, **self.describe}

    def run(self, detector, x, y, generator):
        from .laundering import _pad8

        t = self.threat
        eps = self.latent_eps
        alpha = float(t.step_size) if t.step_size is not None else 2.5 * eps / max(int(t.steps), 1)
        sign = push_sign(y, t.direction).to(x)
        tae = self.tae.to(x.device)
        xp, h, w = _pad8(x)
        with torch.no_grad():
            z0 = tae.encode(xp)
            original = tae.decode(z0)[..., :h, :w].to(x)
        delta = torch.zeros((1, *z0.shape[1:]) if self.universal else z0.shape, device=z0.device, dtype=z0.dtype)
        for _ in range(int(t.steps)):
            delta.requires_grad_(True)
            img = tae.decode(z0 + delta)[..., :h, :w].to(x)
            loss = self.loss(detector, img, sign, generator).sum()
            (g,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                delta = (delta + alpha * g.sign()).clamp(-eps, eps)
        with torch.no_grad():
            adv = tae.decode(z0 + delta)[..., :h, :w].to(x)
        info = {"psnr": psnr(adv, original), "psnr_input": psnr(adv, x),
                "latent_linf": (delta.detach().expand_as(z0)).flatten(1).abs().amax(1)}
        return adv, int(t.steps), info


def build_cf_latent(seed: int = 0, weights: str | None = None, latent_eps: float = 0.3, universal: bool = False,
                    **options: Any) -> CFLatent:
    from ..generators.tae import TinyAutoencoder
    from .laundering import tae_weights

    threat = threat_from(options, {"norm": "none", "eps": 0.0, "steps": 20})
    path = tae_weights(weights, "cf-latent")
    tae = TinyAutoencoder.from_dir(path).eval().requires_grad_(False)
    return CFLatent(tae, threat, seed=seed, latent_eps=latent_eps, universal=universal,
                    describe={"weights": str(path)})
