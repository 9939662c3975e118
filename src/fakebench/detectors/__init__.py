"""Detector registry: ``create(name, **options)``, ``load(dir)``, ``entries()``.

One family per module; importing this package registers all of them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CheckpointError
from ..registry import Registry
from .base import CONFIG_FILE, WEIGHTS_FILE, Detector, load_state_dict_strict

REGISTRY: Registry[Detector] = Registry("detector")
register = REGISTRY.register


def create(name: str, **options: Any) -> Detector:
    """Build a registered detector; remembers name and options for :meth:`Detector.save`."""
    det = REGISTRY.create(name, **options)
    det.registry_name = name
    det.options = dict(options)
    return det


def load(directory: str | Path) -> Detector:
    """Load a detector saved by :meth:`Detector.save` (safetensors + config.json)."""
    from safetensors.torch import load_file

    d = Path(directory)
    cfg_path = d / CONFIG_FILE
    if not cfg_path.exists():
        raise CheckpointError(f"{d}: not a fakebench checkpoint ({CONFIG_FILE} missing)")
    try:
        cfg = json.loads(cfg_path.read_text())
        name = cfg["detector"]
        options = dict(cfg.get("options", {}))
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{cfg_path}: malformed config ({exc})") from None
    det = create(name, **options)
    wpath = d / WEIGHTS_FILE
    if not wpath.exists():
        raise CheckpointError(f"{wpath}: weights file missing")
    load_state_dict_strict(det, load_file(str(wpath)), str(wpath))
    det.threshold = float(cfg.get("threshold", 0.0))
    det.meta = dict(cfg.get("meta", {}))
    det.eval()
    return det


def entries():
    return REGISTRY.entries()


# register families (import for side effects)
from . import resnet  # noqa: E402,F401
from . import clip, fusion  # noqa: E402,F401
from . import embeddings, faces, laundering  # noqa: E402,F401
from . import perspective  # noqa: E402,F401
