"""Universal attacks: one perturbation (or patch) fitted on a set, applied to every image.

:class:`UniversalAttack` holds what universal attacks share: fitting on a tensor, an
``(x, y)`` pair or an iterable of batches (a DataLoader of fakebench's ``(x, y, samples)``
batches works), or on a dataset named in the config (``fit_on=path``); one fitted state per
detector (a perturbation fitted on one detector is never applied to another); and, when
nothing was fitted, fitting on the first batch the attack is called with for that detector
(transductive; later batches reuse it). Pass ``fit_on`` for results that do not depend on the
order of batches.

:class:`DeepFoolUAP` (``uap``) is the universal adversarial perturbation of Moosavi-Dezfooli,
Fawzi, Fawzi, Frossard (CVPR 2017), DeepFool-based, as De Rosa et al. (2024) ran it
(grip-unina/AdversarialRobustnessCLIP, from qilong-zhang's PyTorch port): passes over the
shuffled fit images; for each image the current perturbation does not fool yet, a DeepFool
step (overshoot 0.02, at most 10 iterations) is added if DeepFool converged, and the sum is
projected onto the Linf ball (De Rosa et al.: 8/255); after each pass the fooling rate (the
fraction of held-out images whose decision changes) is measured; it stops when that rate
reaches ``1 - delta`` (delta 0.01) or after ``patience`` passes without a new best (their
``max_iter_uni`` = 2). The fit set is split as theirs: the first 80% for the passes, the last
20% for the fooling rate.

:class:`SGDUniversalPerturbation` (``sgd-uap``) is a different algorithm, kept under its own
name: the stochastic gradient-sign method of Shafahi, Najibi, Xu, Dickerson, Davis, Goldstein
("Universal adversarial training", AAAI 2020): ``delta <- clip_eps(delta + step *
sign(grad_delta mean loss))`` over mini-batches of the fit set for ``steps`` epochs.
"""

from __future__ import annotations

import logging
import weakref
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import Attack, ThreatModel, decision_threshold, push_sign, target_mask
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


class LinfUniversalPerturbation(UniversalAttack):
    """Base of the additive universal perturbations: one (3, h, w) tensor in the Linf ball per
    detector, adapted to each attacked image's size by ``apply`` (``resize``: bilinear, or
    ``tile``: repeat and crop; :func:`fit_perturbation`). ``size`` (h, w) defaults to the size
    of the first fit image."""

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, size: int | tuple[int, int] | None = None,
                 apply: str = "resize", **kwargs: Any) -> None:
        super().__init__(threat, seed, **kwargs)
        if self.threat.norm != "linf":
            raise ConfigError(f"norm: {self.name} is implemented for linf, got {self.threat.norm!r}")
        if apply not in ("resize", "tile"):
            raise ConfigError(f"apply: {apply!r} is not 'resize' or 'tile'")
        if isinstance(size, int):
            size = (size, size)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.apply = apply

    def params(self) -> dict[str, Any]:
        return {**super().params(), "size": self.size, "apply": self.apply}

    def perturbation(self, detector: torch.nn.Module, size: tuple[int, int]) -> torch.Tensor:
        """The fitted perturbation for ``detector`` adapted to (H, W); raises if not fitted."""
        state = self.fitted(detector)
        if state is None:
            raise ConfigError(f"{self.name}: not fitted for this detector (call fit(detector, data) first)")
        return fit_perturbation(state, size, self.apply).clamp(-self.threat.eps, self.threat.eps)

    def run(self, detector, x, y, generator):
        state = self._state_for(detector, x, y)
        d = fit_perturbation(state, x.shape[-2:], self.apply).clamp(-self.threat.eps, self.threat.eps)
        return (x + d.unsqueeze(0)).clamp(0, 1), 0


class SGDUniversalPerturbation(LinfUniversalPerturbation):
    """Universal perturbation fitted by stochastic gradient sign ascent (Shafahi et al., AAAI
    2020); not the DeepFool-based algorithm of Moosavi-Dezfooli et al. (that is ``uap``).

    ``threat.steps`` = epochs over the fit set, ``threat.alpha`` = step per mini-batch,
    ``threat.eps`` = Linf bound."""

    name = "sgd-uap"

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


def build_sgd_uap(seed: int = 0, size: int | list[int] | None = None, apply: str = "resize", batch_size: int = 32,
                  fit_on: str | None = None, fit_split: str | None = "train", fit_limit: int | None = 512,
                  **options: Any) -> SGDUniversalPerturbation:
    if isinstance(size, list):
        size = (int(size[0]), int(size[1]))
    return SGDUniversalPerturbation(threat_from(options), seed=seed, size=size, apply=apply, batch_size=batch_size,
                                    fit_on=fit_on, fit_split=fit_split, fit_limit=fit_limit)


def deepfool_binary(detector: torch.nn.Module, x: torch.Tensor, overshoot: float = 0.02,
                    max_iter: int = 10) -> tuple[torch.Tensor, int]:
    """DeepFool (Moosavi-Dezfooli, Fawzi, Frossard, CVPR 2016) for one image (1, 3, H, W) and a
    one-logit detector deciding at its threshold, i.e. the two-class DeepFool on ``[0, z - thr]``:
    step ``r_i = (|f| / ||w|| + 1e-4) w / ||w||`` with ``w`` the gradient of the other class's
    logit minus the current one's, from ``x + (1 + overshoot) r_tot``, until the decision flips
    or ``max_iter`` steps. Returns (``(1 + overshoot) r_tot``, number of steps) as theirs."""
    thr = decision_threshold(detector)
    with torch.no_grad():
        s0 = 1.0 if float(detector(x)[0]) > thr else -1.0
    r_tot = torch.zeros_like(x)
    xi, k = x, 0
    while k < max_iter:
        xi = xi.detach().requires_grad_(True)
        f = detector(xi)[0] - thr
        if (1.0 if float(f.detach()) > 0 else -1.0) != s0:
            break
        (grad,) = torch.autograd.grad(f, xi)
        with torch.no_grad():
            w = -s0 * grad  # gradient of (other logit - current logit)
            wn = w.norm().clamp_min(1e-12)
            r_tot = r_tot + (abs(float(f.detach())) / wn + 1e-4) * w / wn
            xi = x + (1 + overshoot) * r_tot
        k += 1
    return ((1 + overshoot) * r_tot).detach(), k


class DeepFoolUAP(LinfUniversalPerturbation):
    """Universal adversarial perturbation of Moosavi-Dezfooli et al. (CVPR 2017) with De Rosa et
    al.'s settings (see the module docstring). ``threat.eps``: the Linf radius. ``overshoot``,
    ``max_iter_df``: DeepFool's; ``delta``: stop at fooling rate ``1 - delta``; ``patience``:
    passes without a better fooling rate before stopping (their ``max_iter_uni``);
    ``max_passes``: a hard cap (theirs is unbounded); ``val_fraction``: the held-out tail of
    the fit set for the fooling rate; ``keep``: ``"last"`` (theirs: the perturbation after the
    last pass) or ``"best"`` (the pass with the best held-out fooling rate). The perturbation has the size of the first fit image
    (or ``size``); fit images of another size are resized to it; ``apply="resize"|"tile"``
    adapts it to each attacked image. :meth:`fit_report` gives the fooling rate per pass."""

    name = "uap"

    def __init__(self, threat: ThreatModel | None = None, seed: int = 0, size: int | tuple[int, int] | None = None,
                 apply: str = "resize", overshoot: float = 0.02, delta: float = 0.01, max_iter_df: int = 10,
                 patience: int = 2, max_passes: int = 20, val_fraction: float = 0.2, keep: str = "last",
                 **kwargs: Any) -> None:
        super().__init__(threat, seed, size=size, apply=apply, **kwargs)
        for name, v, lo in (("max_iter_df", max_iter_df, 2), ("patience", patience, 1), ("max_passes", max_passes, 1)):
            if isinstance(v, bool) or int(v) != v or int(v) < lo:
                raise ConfigError(f"{name}: expected an integer >= {lo}, got {v!r}")
        if not 0 <= float(overshoot) < 1:
            raise ConfigError(f"overshoot: expected a number in [0, 1), got {overshoot!r}")
        if not 0 <= float(delta) < 1:
            raise ConfigError(f"delta: expected a number in [0, 1), got {delta!r}")
        if not 0 < float(val_fraction) < 1:
            raise ConfigError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
        self.overshoot, self.delta = float(overshoot), float(delta)
        self.max_iter_df, self.patience, self.max_passes = int(max_iter_df), int(patience), int(max_passes)
        self.val_fraction = float(val_fraction)
        if keep not in ("last", "best"):
            raise ConfigError(f"keep: {keep!r} is not 'last' or 'best'")
        self.keep = keep
        self._reports: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, Any]] = weakref.WeakKeyDictionary()

    def params(self) -> dict[str, Any]:
        return {**super().params(), "overshoot": self.overshoot,
                "delta": self.delta, "max_iter_df": self.max_iter_df, "patience": self.patience,
                "max_passes": self.max_passes, "val_fraction": self.val_fraction, "keep": self.keep}

    def fit_report(self, detector: torch.nn.Module) -> dict[str, Any] | None:
        """``{"fooling_rate": [per pass], "n_fit": .., "n_val": ..}`` of the last fit for ``detector``."""
        return self._reports.get(detector)

    def _fit(self, detector, batches, generator):
        h, w = self.size or tuple(batches[0][0].shape[-2:])
        images = [xb[i : i + 1] if tuple(xb.shape[-2:]) == (h, w) else
                  F.interpolate(xb[i : i + 1], size=(h, w), mode="bilinear", align_corners=False, antialias=True)
                  for xb, _ in batches for i in range(len(xb))]
        n_val = max(1, int(len(images) * self.val_fraction)) if len(images) > 1 else 0
        fit_set, val_set = images[: len(images) - n_val], images[len(images) - n_val :] or images
        val = torch.cat(val_set)
        thr = decision_threshold(detector)
        with torch.no_grad():
            val_dec = torch.cat([detector(val[i : i + 64]) for i in range(0, len(val), 64)]) > thr
        eps = float(self.threat.eps)
        v = torch.zeros(1, 3, h, w, device=images[0].device)
        rates: list[float] = []
        best, stall, best_v = 0.0, 0, None
        fooling = 0.0
        while fooling < 1 - self.delta and stall < self.patience and len(rates) < self.max_passes:
            stall += 1
            for i in torch.randperm(len(fit_set), generator=generator).tolist():
                xi = fit_set[i]
                per = xi + v
                with torch.no_grad():
                    same = bool((detector(xi) > thr) == (detector(per) > thr))
                if same:
                    dr, k = deepfool_binary(detector, per, self.overshoot, self.max_iter_df)
                    if k < self.max_iter_df - 1:  # DeepFool converged
                        v = (v + dr).clamp(-eps, eps)
            with torch.no_grad():
                adv = (val + v).clamp(0, 1)
                dec = torch.cat([detector(adv[i : i + 64]) for i in range(0, len(adv), 64)]) > thr
            fooling = float((dec != val_dec).float().mean())
            rates.append(fooling)
            log.info("uap: pass %d, fooling rate %.3f on %d held-out images", len(rates), fooling, len(val))
            if fooling > best:
                best, stall, best_v = fooling, 0, v.clone()
        self._reports[detector] = {"fooling_rate": rates, "n_fit": len(fit_set), "n_val": len(val),
                                   "kept": self.keep}
        return (best_v if self.keep == "best" and best_v is not None else v)[0]


def build_uap(seed: int = 0, size: int | list[int] | None = None, apply: str = "resize", batch_size: int = 32,
              fit_on: str | None = None, fit_split: str | None = "train", fit_limit: int | None = 512,
              overshoot: float = 0.02, delta: float = 0.01, max_iter_df: int = 10, patience: int = 2,
              max_passes: int = 20, val_fraction: float = 0.2, keep: str = "last", **options: Any) -> DeepFoolUAP:
    if isinstance(size, list):
        size = (int(size[0]), int(size[1]))
    return DeepFoolUAP(threat_from(options, attack="uap"), seed=seed, size=size, apply=apply, batch_size=batch_size,
                       fit_on=fit_on, fit_split=fit_split, fit_limit=fit_limit, overshoot=overshoot, delta=delta,
                       max_iter_df=max_iter_df, patience=patience, max_passes=max_passes, val_fraction=val_fraction,
                       keep=keep)
