"""Attacks: ``create(name, **options)``, ``cards()``, ``register(card)``.

Each registered attack is described by one card in :mod:`fakebench.attacks.cards`. Importing
this package does not import torch; an attack family's module is imported when one of its
attacks is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..registry import AttackCard, Registry, takes_parameter
from .cards import CARDS

if TYPE_CHECKING:  # pragma: no cover
    from .base import Attack

REGISTRY: Registry[AttackCard] = Registry("attack")
for _card in CARDS:
    REGISTRY.register(_card)


#: register a card (plugins, tests); the card of a name (one ConfigError line if unknown); every card
register, card, cards = REGISTRY.register, REGISTRY.card, REGISTRY.cards


def create(name: str, **options: Any) -> "Attack":
    """Build a registered attack; remembers its name and options."""
    atk = REGISTRY.create(name, **options)
    atk.registry_name = name
    atk.options = dict(options)
    return atk


def create_seeded(name: str, seed: int, **options: Any) -> "Attack":
    """``create`` with ``seed`` passed only to attacks whose factory takes one (degradations
    such as ``jpeg`` or ``share`` are deterministic and take none)."""
    if takes_parameter(REGISTRY.card(name).load_factory(), "seed"):
        options = {**options, "seed": seed}
    return create(name, **options)


entries = cards  # the earlier API's name


def __getattr__(name: str) -> Any:  # lazy: the attack classes import torch
    if name in ("Attack", "AttackResult", "ThreatModel"):
        from . import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
