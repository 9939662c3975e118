"""Universal attacks: one perturbation (or patch) fitted on a set, applied to every image.

:class:`UniversalAttack` holds what universal attacks share: fitting on a tensor, an
``(x, y)`` pair or an iterable of batches (a DataLoader of fakebench's ``(x, y, samples)``
batches works), or on a dataset named in the config (``fit_on=path``); one fitted state per
detector (a perturbation fitted on one detector is never applied to another); and, when
nothing was fitted, fitting on the first batch the attack is called with for that detector
(transductive; later batches reuse it). Pass ``fit_on`` for results that do not depend on the
order of batches.

:class:`UniversalPerturbation` (``uap``) is the universal adversarial perturbation of
Moosavi-Dezfooli, Fawzi, Fawzi, Frossard (CVPR 2017) computed by the stochastic
gradient-sign method of Shafahi, Najibi, Xu, Dickerson, Davis, Goldstein ("Universal
adversarial training", AAAI 2020): ``delta <- clip_eps(delta + step * sign(grad_delta mean
loss))`` over mini-batches of the fit set for ``steps`` epochs, as used against synthetic-
image detectors by De Rosa et al. (2024). Linf only.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Attack, ThreatModel, push_sign, target_mask
from .gradient import threat_from

log = logging.getLogger(__name__)

Data = Any  # Tensor | (Tensor, Tensor) | Iterable of those | path


def _as_batches(data: Data, y: torch.Tensor | None, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
    """Normalise fit data into a list of (x, y or None) batches of at most ``batch_size``."""
    if isinstance(data, torch.Tensor):
        if data.ndim != 4 or data.shape[1] != 3:
            raise ConfigError(f"fit data: expected (N, 3, H, W) images, got shape {tuple(data.shape)}")
        out = []
        for i in range(0, len(data), batch_size):
            out.append((data[i : i + batch_size], None if y is None else y[i : i + batch_size]))
        return out
    if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], torch.Tensor) \
            and isinstance(data[1], torch.Tensor) and data[1].ndim == 1:
        return _as_batches(data[0], data[1], batch_size)
    if isinstance(data, (str, Path)):
        raise ConfigError("fit data: pass a path as fit_on=..., or load it into a tensor first")
    out = []
    for item in data:  # an iterable of batches
        if item is None:  # fakebench's collate returns None for an all-bad batch
            continue
        if isinstance(item, torch.Tensor):
            out.extend(_as_batches(item, None, batch_size))
        elif isinstance(item, (tuple, list)) and item and isinstance(item[0], torch.Tensor):
            yy = item[1] if len(item) > 1 and isinstance(item[1], torch.Tensor) else None
            out.extend(_as_batches(item[0], yy, batch_size))
        else:
            raise ConfigError(f"fit data: batches must be tensors or (x, y, ...) tuples, got {type(item).__name__}")
    if not out:
        raise ConfigError("fit data: no images")
    return out


def load_fit_set(path: str | Path, split: str | None, limit: int | None, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Images of a dataset (any layout :func:`fakebench.data.load_dataset` reads), batched by
    size through the shared pipeline (:func:`fakebench.data.pipeline.iter_batches`).
    Undecodable files are skipped with a warning."""
    from ..data import load_dataset, select
    from ..data.pipeline import iter_batches

    samples = select(load_dataset(path), split=split, limit=limit)
    if not samples:
        raise ConfigError(f"fit_on: no samples in {path} (split={split!r})")
    return [(x.float(), y) for x, y, _, _ in iter_batches(samples, batch_size, bucket=True) if len(x)]


class UniversalAttack(Attack):
    """Base of attacks whose state (a perturbation, a patch) is fitted once per detector.

    Subclasses implement :meth:`_fit` (from targeted batches to a state tensor) and
    :meth:`_apply` (state to adversarial images)."""

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, batch_size: int = 32,
                 fit_on: str | None = None, fit_split: str | None = "train", fit_limit: int | None = 512) -> None:
        super().__init__(threat, seed)
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size: must be >= 1, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.fit_on, self.fit_split, self.fit_limit = fit_on, fit_split, fit_limit
        self._states: "weakref.WeakKeyDictionary[torch.nn.Module, torch.Tensor]" = weakref.WeakKeyDictionary()

    def params(self) -> dict[str, Any]:
        return {**super().params(), "batch_size": self.batch_size, "fit_on": None if self.fit_on is None else str(self.fit_on),
                "fit_split": self.fit_split, "fit_limit": self.fit_limit}

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, detector: torch.nn.Module, data: Data, y: torch.Tensor | None = None) -> torch.Tensor:
        """Fit on ``data`` (tensor, (x, y), or an iterable of batches) for ``detector`` and keep
        the result for later calls with that detector. With labels, only the images the
        threat model's direction targets are used (e.g. synthetic ones for ``evade``).
        Seeded by ``self.seed``. Returns the fitted state."""
        batches = []
        for xb, yb in _as_batches(data, y, self.batch_size):
            if yb is not None:
                keep = target_mask(yb, self.threat.direction)
                xb, yb = xb[keep], yb[keep]
                if len(xb) == 0:
                    continue
            batches.append((xb, yb))
        if not batches:
            raise ConfigError(f"fit data: no images targeted by direction {self.threat.direction!r}")
        was = detector.training
        detector.eval()
        try:
            state = self._fit(detector, batches, torch.Generator().manual_seed(self.seed))
        finally:
            detector.train(was)
        self._states[detector] = state.detach()
        return self._states[detector]

    def fitted(self, detector: torch.nn.Module) -> torch.Tensor | None:
        return self._states.get(detector)

    def _state_for(self, detector: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        state = self._states.get(detector)
        if state is None:
            if self.fit_on is not None:
                batches = load_fit_set(self.fit_on, self.fit_split, self.fit_limit, self.batch_size)
                dev = x.device
                state = self.fit(detector, [(xb.to(dev), yb.to(dev)) for xb, yb in batches])
            else:
                log.info("%s: no fitted state for this detector; fitting on the first batch (%d images)",
                         self.name, len(x))
                state = self.fit(detector, x, y)
        return state.to(x.device)

    def _batch_sign(self, y: torch.Tensor | None, n: int, like: torch.Tensor) -> torch.Tensor:
        if y is None:
            y = torch.ones(n, dtype=torch.long) if self.threat.direction != "spoof" else torch.zeros(n, dtype=torch.long)
        return push_sign(y, self.threat.direction).to(like)

    def _fit(self, detector: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor | None]],
             generator: torch.Generator) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def fit_perturbation(delta: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Adapt a (3, h, w) perturbation to an image size (H, W): ``resize`` (bilinear; values
    stay inside the Linf ball since bilinear weights are convex) or ``tile`` (repeat, crop).
    Differentiable. Returns (3, H, W)."""
    H, W = int(size[0]), int(size[1])
    if tuple(delta.shape[-2:]) == (H, W):
        return delta
    if mode == "tile":
        reps_h, reps_w = -(-H // delta.shape[-2]), -(-W // delta.shape[-1])
        return delta.repeat(1, reps_h, reps_w)[:, :H, :W]
    return F.interpolate(delta.unsqueeze(0), size=(H, W), mode="bilinear", align_corners=False).squeeze(0)


class UniversalPerturbation(UniversalAttack):
    """Universal adversarial perturbation (Moosavi-Dezfooli et al., CVPR 2017), fitted by
    stochastic gradient sign ascent (Shafahi et al., AAAI 2020) as in De Rosa et al. (2024).

    ``threat.steps`` = epochs over the fit set, ``threat.alpha`` = step per mini-batch,
    ``threat.eps`` = Linf bound. ``size`` (h, w) of the perturbation defaults to the size of
    the first fit batch; ``apply="resize"|"tile"`` adapts it to other image sizes."""

    name = "uap"

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, size: int | tuple[int, int] | None = None,
                 apply: str = "resize", **kwargs: Any) -> None:
        super().__init__(threat, seed, **kwargs)
        if self.threat.norm != "linf":
            raise ConfigError(f"norm: uap is implemented for linf, got {self.threat.norm!r}")
        if apply not in ("resize", "tile"):
            raise ConfigError(f"apply: {apply!r} is not 'resize' or 'tile'")
        if isinstance(size, int):
            size = (size, size)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.apply = apply

    def params(self) -> dict[str, Any]:
        return {**super().params(), "size": self.size, "apply": self.apply}

    def _fit(self, detector, batches, generator):
        t = self.threat
        eps, step = float(t.eps), t.alpha
        h, w = self.size or tuple(batches[0][0].shape[-2:])
        delta = torch.zeros(3, h, w, device=batches[0][0].device)
        for _ in range(max(int(t.steps), 1)):
            order = torch.randperm(len(batches), generator=generator)
            for bi in order.tolist():
                xb, yb = batches[bi]
                d = delta.clone().requires_grad_(True)
                xa = (xb + fit_perturbation(d, xb.shape[-2:], self.apply).unsqueeze(0)).clamp(0, 1)
                loss = self.loss(detector, xa, self._batch_sign(yb, len(xb), xb), generator).mean()
                (g,) = torch.autograd.grad(loss, d)
                with torch.no_grad():
                    delta = (delta + step * g.sign()).clamp(-eps, eps)
        return delta

    def perturbation(self, detector: torch.nn.Module, size: tuple[int, int]) -> torch.Tensor:
        """The fitted perturbation for ``detector`` adapted to (H, W); raises if not fitted."""
        state = self.fitted(detector)
        if state is None:
            raise ConfigError("uap: not fitted for this detector (call fit(detector, data) first)")
        return fit_perturbation(state, size, self.apply).clamp(-self.threat.eps, self.threat.eps)

    def run(self, detector, x, y, generator):
        state = self._state_for(detector, x, y)
        d = fit_perturbation(state, x.shape[-2:], self.apply).clamp(-self.threat.eps, self.threat.eps)
        return (x + d.unsqueeze(0)).clamp(0, 1), 0


def build_uap(seed: int = 0, size: int | list[int] | None = None, apply: str = "resize", batch_size: int = 32,
         fit_on: str | None = None, fit_split: str | None = "train", fit_limit: int | None = 512,
         **options: Any) -> UniversalPerturbation:
    if isinstance(size, list):
        size = (int(size[0]), int(size[1]))
    return UniversalPerturbation(threat_from(options), seed=seed, size=size, apply=apply, batch_size=batch_size,
                                 fit_on=fit_on, fit_split=fit_split, fit_limit=fit_limit)
