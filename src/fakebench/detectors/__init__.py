"""Detectors: ``create(name, **options)``, ``load(dir)``, ``cards()``, ``register(card)``.

One family per module; each registered detector is described by one card in
:mod:`fakebench.detectors.cards`. Importing this package does not import torch: the cards are
plain data and a family's module is imported when one of its detectors is built.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError, ConfigError, FakebenchError
from ..registry import DetectorCard, Registry
from .cards import CARDS

if TYPE_CHECKING:  # pragma: no cover
    from .base import Detector

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

#: card modules of higher layers that add detectors (imported when the registry is first read)
BUILTIN_PLUGINS = ("fakebench.defenses.cards",)
REGISTRY: Registry[DetectorCard] = Registry("detector", builtin_plugins=BUILTIN_PLUGINS)
for _card in CARDS:
    REGISTRY.register(_card)


#: register a card (plugins, tests); the card of a name (one ConfigError line if unknown); every card
register, card, cards = REGISTRY.register, REGISTRY.card, REGISTRY.cards


def card_for_class(cls: type) -> DetectorCard | None:
    """The card whose factory is ``cls`` itself (for detectors built without :func:`create`)."""
    target = f"{cls.__module__}:{cls.__qualname__}"
    for c in REGISTRY.cards():
        if c.factory is cls or c.factory == target:
            return c
    return None


def create(name: str, **options: Any) -> "Detector":
    """Build a registered detector; remembers its card, name and options for :meth:`Detector.save`."""
    det = REGISTRY.create(name, **options)
    det.card = REGISTRY.card(name)
    det.registry_name = name
    det.options = dict(options)
    return det


def _read_config(d: Path) -> tuple[str, dict[str, Any], dict[str, Any]]:
    cfg_path = d / CONFIG_FILE
    if not cfg_path.exists():
        raise CheckpointError(f"{d}: not a fakebench checkpoint ({CONFIG_FILE} missing)")
    try:
        cfg = json.loads(cfg_path.read_text())
        name = cfg["detector"]
        options = dict(cfg.get("options", {}))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{cfg_path}: malformed config ({exc})") from None
    return name, options, cfg


def load(directory: str | Path, **overrides: Any) -> "Detector":
    """Load a detector saved by :meth:`Detector.save` (safetensors + config.json).

    ``overrides`` replace saved options that only change preprocessing (the card's
    ``preprocessing_options``, e.g. ``crop``); any other option raises one ConfigError line,
    since it would not apply to the saved weights."""
    from safetensors.torch import load_file

    from .base import load_state_dict_strict

    d = Path(directory)
    name, options, cfg = _read_config(d)
    if overrides:
        allowed = tuple(getattr(REGISTRY.card(name), "preprocessing_options", ()))
        refused = sorted(set(overrides) - set(allowed))
        if refused:
            can = f"only {', '.join(allowed)} can be changed" if allowed else "none can be changed"
            raise ConfigError(f"{d}: option(s) {', '.join(refused)} do not apply to a saved {name} checkpoint "
                              f"({can}; the rest is fixed by the weights)")
        options = {**options, **overrides}
    try:
        det = create(name, **options)
    except FakebenchError as exc:
        raise CheckpointError(f"{d / CONFIG_FILE}: {exc}") from None
    wpath = d / WEIGHTS_FILE
    if not wpath.exists():
        raise CheckpointError(f"{wpath}: weights file missing")
    load_state_dict_strict(det, load_file(str(wpath)), str(wpath))
    det.threshold = float(cfg.get("threshold", 0.0))
    det.meta = dict(cfg.get("meta", {}))
    det.eval()
    return det


entries = cards  # the earlier API's name


def __getattr__(name: str) -> Any:  # lazy: Detector and friends import torch
    if name in ("Detector", "load_state_dict_strict", "torch_load_safe", "strip_prefix"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["REGISTRY", "CONFIG_FILE", "WEIGHTS_FILE", "register", "card", "cards", "card_for_class", "create", "load",
           "entries", "ConfigError"]
