"""What every defense wrapper shares: a base detector, its own seeded randomness, a BPDA switch.

A defense is itself a :class:`~fakebench.detectors.base.Detector`, so ``evaluate``, every
attack, ``transfer`` and the report work on it unchanged. ``base`` is given as a detector, a
fakebench checkpoint folder, or ``{"detector": NAME, "options": {...}}``; saving writes the
base's architecture into the wrapper's ``config.json`` and its weights into the wrapper's
``model.safetensors`` (under ``base.``), so a saved defense reloads without the original files.

Randomised defenses (``stochastic = True``) draw from their own generator: :meth:`reseed`
sets it (the runner and the robustness evaluation reseed per unit of work, so resumed runs
repeat uninterrupted ones). Defenses with non-differentiable parts implement them so that, as
deployed, gradients through them are zero (what a naive attacker sees), and
:meth:`bpda` switches them to the straight-through approximation (identity on the backward
pass; Athalye, Carlini, Wagner, ICML 2018) for adaptive attacks.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from ..detectors.base import Detector
from ..errors import ConfigError

#: options whose effect lives in the state dict (checkpoint paths), per base family
STATE_OPTIONS: dict[str, tuple[str, ...]] = {
    "res50nodown": ("pretrained",), "cnnspot": ("pretrained",), "univfd": ("pretrained_head",),
    "clipdet": ("pretrained_head",),
}


def spec_of(det: Detector) -> dict[str, Any]:
    """``{"detector", "options", "threshold"}`` that rebuild ``det`` (checkpoint paths dropped:
    the weights travel in the wrapper's state dict)."""
    drop = set(STATE_OPTIONS.get(det.registry_name, ()))
    if hasattr(det, "spec_options"):
        opts = det.spec_options()
    else:
        opts = {k: v for k, v in det.options.items() if k not in drop}
    return {"detector": det.registry_name, "options": opts, "threshold": float(det.threshold)}


def as_detector(spec: Any, what: str = "base") -> Detector:
    """A detector from a Detector, a checkpoint folder, or ``{"detector": NAME, "options": {...},
    "threshold": t}`` / ``{"checkpoint": DIR}``; one ConfigError line naming ``what`` otherwise."""
    from .. import detectors

    if isinstance(spec, Detector):
        return spec
    if isinstance(spec, (str, Path)):
        return detectors.load(spec)
    if isinstance(spec, Mapping):
        if "checkpoint" in spec:
            return detectors.load(spec["checkpoint"])
        if "detector" in spec:
            det = detectors.create(str(spec["detector"]), **dict(spec.get("options") or {}))
            det.threshold = float(spec.get("threshold", 0.0) or 0.0)
            return det
    raise ConfigError(f"{what}: expected a detector, a checkpoint folder or {{'detector': NAME, 'options': {{...}}}}, "
                      f"got {spec!r}")


class Defense(Detector):
    """A detector wrapped by a defense. Subclasses implement ``forward`` (usually through
    ``self.base``) and, when they add options, :meth:`defense_options`."""

    #: forward draws randomness: attack with EOT over it
    stochastic: bool = False

    def __init__(self, base: Any, seed: int = 0) -> None:
        super().__init__()
        self.base = as_detector(base)
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)
        self._bpda = False

    # -- randomness and BPDA ---------------------------------------------------------------
    def reseed(self, seed: int) -> None:
        """Restart the defense's random stream (the runner calls this per unit of work)."""
        self.generator.manual_seed(int(seed))
        inner = getattr(self.base, "reseed", None)
        if callable(inner):
            inner(seed)

    @property
    def has_bpda(self) -> bool:
        """True when some part is non-differentiable as deployed (BPDA changes the gradient)."""
        return False

    @contextmanager
    def bpda(self) -> Iterator["Defense"]:
        """Inside: non-differentiable parts pass gradients straight through (identity)."""
        was = self._bpda
        self._bpda = True
        try:
            yield self
        finally:
            self._bpda = was

    # -- the base's internals are the defense's ----------------------------------------------
    def feature_layers(self) -> dict[str, nn.Module]:
        return self.base.feature_layers()

    def defense_options(self) -> dict[str, Any]:  # pragma: no cover - subclasses
        return {}

    def spec_options(self) -> dict[str, Any]:
        return {"base": spec_of(self.base), "seed": self.seed, **self.defense_options()}

    def config_dict(self) -> dict[str, Any]:
        cfg = super().config_dict()
        cfg["options"] = self.spec_options()
        return cfg


def straight_through(x: torch.Tensor, y: torch.Tensor, bpda: bool) -> torch.Tensor:
    """The output of a non-differentiable ``x -> y`` as a graph node: with ``bpda`` the gradient
    passes straight through (identity), otherwise it is zero (what a naive attacker sees)."""
    y = y.detach()
    return x + (y - x).detach() if bpda else x * 0.0 + y
