"""Attack registry: ``create(name, **options)``; importing this package registers every family."""

from __future__ import annotations

from typing import Any

from ..registry import Registry
from .base import Attack, ThreatModel

REGISTRY: Registry[Attack] = Registry("attack")
register = REGISTRY.register


def create(name: str, **options: Any) -> Attack:
    atk = REGISTRY.create(name, **options)
    atk.registry_name = name  # type: ignore[attr-defined]
    atk.options = dict(options)  # type: ignore[attr-defined]
    return atk


def create_seeded(name: str, seed: int, **options: Any) -> Attack:
    """``create`` with ``seed`` passed only to attacks whose factory takes one (degradations
    such as ``jpeg`` or ``share`` are deterministic and take none)."""
    import inspect

    entry = {e.name: e for e in REGISTRY.entries()}.get(name)
    if entry is not None and "seed" in inspect.signature(entry.factory).parameters:
        options = {**options, "seed": seed}
    return create(name, **options)


def entries():
    return REGISTRY.entries()


from . import degradations, gradient  # noqa: E402,F401


class _Identity(Attack):
    name = "none"
    needs_gradients = False

    def params(self):
        return {}

    def run(self, detector, x, y, generator):
        return x, 0


@register("none", "no attack: the clean images (baseline row)")
def _none() -> Attack:
    return _Identity(ThreatModel(direction="all", norm="none", eps=0.0, steps=0, quantize=False))
from . import carlini_farid, sharing, universal  # noqa: E402,F401
from . import blackbox, laundering, mimicry  # noqa: E402,F401
