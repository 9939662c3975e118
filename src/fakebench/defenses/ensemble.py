"""Cross-family ensembles: several detectors judged as one, attacked as one.

Members are centred at their own thresholds (``z_i - t_i``) and combined by

- ``mean``: the mean centred logit;
- ``soft-or``: ``logit(1 - prod(1 - sigmoid(z_i - t_i)))``, the fusion rule of Cozzolino et al.
  (CVPRW 2024; :func:`fakebench.detectors.fusion.soft_or`), "synthetic if any member says so";
- ``vote``: the fraction of members that say synthetic, minus 1/2 (a majority vote; ties count
  as real). Its gradient is the mean centred logit's, divided by ``vote_temperature``
  (straight-through: the vote is a step function).

A non-differentiable member (the perspective analyzer) contributes its score without gradient
(BPDA with a zero derivative: the adaptive attack optimises through the other members and the
black-box attacks of the evaluation see the whole). A CNN + CLIP (+ perspective) ensemble must
be broken as a whole: the attack moves every member's score at once.
"""

from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn

from ..detectors.base import Detector
from ..detectors.fusion import soft_or
from ..errors import ConfigError
from .base import as_detector, spec_of

RULES = ("mean", "soft-or", "vote")


class Ensemble(Detector):
    """Members' centred logits combined by ``rule`` (see the module docstring)."""

    def __init__(self, members: Mapping[str, Any], rule: str = "mean", vote_temperature: float = 1.0) -> None:
        super().__init__()
        if rule not in RULES:
            raise ConfigError(f"rule: {rule!r} is not one of {', '.join(RULES)}")
        if len(members) < 2:
            raise ConfigError(f"members: an ensemble needs at least two detectors, got {len(members)}")
        self.members = nn.ModuleDict({str(k): as_detector(v, f"members.{k}") for k, v in members.items()})
        self.rule, self.vote_temperature = rule, float(vote_temperature)

    @property
    def differentiable(self) -> bool:
        return any(getattr(m, "differentiable", True) for m in self.members.values())

    @property
    def stochastic(self) -> bool:
        return any(getattr(m, "stochastic", False) for m in self.members.values())

    def reseed(self, seed: int) -> None:
        for m in self.members.values():
            if callable(getattr(m, "reseed", None)):
                m.reseed(seed)

    def centred(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K) member logits minus member thresholds; non-differentiable members detached."""
        cols = []
        for m in self.members.values():
            if getattr(m, "differentiable", True):
                cols.append(m(x) - m.threshold)
            else:
                with torch.no_grad():
                    cols.append((m(x) - m.threshold).to(x.dtype))
        return torch.stack(cols, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.centred(x)
        if self.rule == "mean":
            return c.mean(1)
        if self.rule == "soft-or":
            return soft_or(c, dim=1)
        vote = (c > 0).to(c).mean(1) - 0.5
        surrogate = c.mean(1) / self.vote_temperature
        return surrogate + (vote - surrogate).detach()

    def feature_layers(self) -> dict[str, nn.Module]:
        return {f"{name}.{k}": v for name, m in self.members.items() for k, v in m.feature_layers().items()}

    def spec_options(self) -> dict[str, Any]:
        return {"members": {k: spec_of(m) for k, m in self.members.items()}, "rule": self.rule,
                "vote_temperature": self.vote_temperature}

    def config_dict(self) -> dict[str, Any]:
        cfg = super().config_dict()
        cfg["options"] = self.spec_options()
        return cfg


def build_ensemble(members: Any = None, rule: str = "mean", vote_temperature: float = 1.0) -> Ensemble:
    """``members``: ``{name: checkpoint folder | {detector, options, threshold}}`` or a list of
    checkpoint folders (named after the folders)."""
    if isinstance(members, (list, tuple)):
        from pathlib import Path

        members = {Path(str(m)).name or f"m{i}": m for i, m in enumerate(members)}
    if not isinstance(members, Mapping):
        raise ConfigError("members: expected {name: checkpoint folder or {detector: NAME, options: ...}} or a list")
    return Ensemble(members, rule=rule, vote_temperature=vote_temperature)
