"""Detectors: ``create(name, **options)``, ``load(dir)``, ``cards()``, ``register(card)``.

One family per module; each registered detector is described by one card in
:mod:`fakebench.detectors.cards`. Importing this package does not import torch: the cards are
plain data and a family's module is imported when one of its detectors is built.
"""

from __future__ import annotations

import json
import math
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
    except (OSError, ValueError) as exc:  # not JSON, not UTF-8, unreadable
        raise CheckpointError(f"{cfg_path}: malformed config ({str(exc).splitlines()[0] if str(exc) else exc})"
                              ) from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{cfg_path}: malformed config (expected a JSON object, got {type(cfg).__name__})")
    name, options = cfg.get("detector"), cfg.get("options", {})
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"{cfg_path}: field 'detector': expected a registry name, got {name!r}")
    if not isinstance(options, dict):
        raise CheckpointError(f"{cfg_path}: field 'options': expected an object, got {type(options).__name__}")
    thr = cfg.get("threshold", 0.0)
    if isinstance(thr, bool) or not isinstance(thr, (int, float)) or not math.isfinite(thr):
        raise CheckpointError(f"{cfg_path}: field 'threshold': expected a finite number, got {thr!r}")
    if not isinstance(cfg.get("meta", {}), dict):
        raise CheckpointError(f"{cfg_path}: field 'meta': expected an object, got {type(cfg['meta']).__name__}")
    return name, dict(options), cfg


def load(directory: str | Path, **overrides: Any) -> "Detector":
    """Load a detector saved by :meth:`Detector.save` (safetensors + config.json).

    ``overrides`` replace saved options that only change preprocessing (the card's
    ``preprocessing_options``, e.g. ``crop``); any other option raises one ConfigError line,
    since it would not apply to the saved weights."""
    from ..io import load_safetensors
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
    except Exception as exc:  # noqa: BLE001 - the factory refusing the recorded options in its own words
        msg = str(exc).splitlines()[0] if str(exc) else ""
        raise CheckpointError(f"{d / CONFIG_FILE}: field 'options': {type(exc).__name__}: {msg}") from None
    wpath = d / WEIGHTS_FILE
    if not wpath.exists():
        raise CheckpointError(f"{wpath}: weights file missing")
    load_state_dict_strict(det, load_safetensors(wpath), str(wpath))
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
