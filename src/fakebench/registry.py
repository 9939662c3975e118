"""Cards and registries: the single source of truth about every detector and attack.

A *card* (in the spirit of timm's ``PretrainedCfg``) says everything fakebench knows about a
registered detector or attack without building it: name, one-line summary, paper, the weights
files it needs and where they come from, its path-valued options, input size, whether it is
differentiable, its default training recipe and whether the demo runs it. The factory is
named as ``"module:attribute"`` and imported only when the thing is built, so reading the
cards (``fakebench list``, the demo's skip lines, config path resolution) never imports torch.

Registering a new detector takes one new file (the implementation) and one registration::

    from fakebench.detectors import register
    from fakebench.registry import DetectorCard
    register(DetectorCard(name="mine", summary="...", paper="...", factory="my_pkg.mine:build"))

Modules named in the environment variable ``FAKEBENCH_PLUGINS`` (comma-separated) are imported
the first time a registry is read, so a plugin's cards reach the ``fakebench`` command too.
fakebench's own higher layers use the same mechanism (``builtin_plugins``): the defenses'
card module registers the defended detectors without the detector layer importing them.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, Mapping, TypeVar, Union

from .errors import ConfigError

Factory = Union[str, Callable[..., Any]]


@dataclass(frozen=True)
class WeightsFile:
    """One weights file a detector can load.

    Attributes:
        option: the constructor option that takes its path (``pretrained``, ``backbone_weights``, ...).
        file: the file's usual name (``blur_jpg_prob0.5.pth``).
        source: where it comes from (repository, download script, model hub name).
        required: True when the detector cannot run without it (CLIP backbones); False for
            optional official checkpoints of trainable detectors.
    """

    option: str
    file: str
    source: str
    required: bool = False


@dataclass(frozen=True)
class Card:
    """What every registered thing shares. ``factory`` is ``"module:attribute"`` or a callable."""

    name: str
    summary: str
    factory: Factory
    paper: str = ""
    #: option names whose values are files or folders (resolved against a config's folder)
    path_options: tuple[str, ...] = ()

    def load_factory(self) -> Callable[..., Any]:
        """The factory itself (imports its module on first use)."""
        if callable(self.factory):
            return self.factory
        module, _, attr = str(self.factory).partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        return obj


@dataclass(frozen=True)
class DetectorCard(Card):
    """A detector's card.

    Attributes:
        weights: files it loads (see :class:`WeightsFile`); ``weights_note`` adds free text
            (e.g. "no public checkpoint; train with ...").
        input_size: what ``forward`` does with the image size (whole image, tiles, resize to 224).
        differentiable: False when the score has no useful gradient (attack with black-box attacks).
        non_differentiable_reason: why, when not differentiable.
        recipe: default :class:`fakebench.train.TrainConfig` values for this family.
        demo: ``"trained"`` (the demo trains it), ``"clip"`` (the demo fits it when given CLIP
            weights) or ``""`` (not in the demo; ``demo_note`` says why).
        preprocessing_options: options that change only how images are prepared inside
            ``forward`` (crop, tiles), not the weights: a saved checkpoint may be loaded with
            other values (``options:`` of a ``checkpoint:`` detector); any other option is refused.
    """

    weights: tuple[WeightsFile, ...] = ()
    weights_note: str = ""
    input_size: str = "any"
    #: smallest image side (pixels) the detector's features are meaningful for (a CNN's total
    #: stride); smaller images are still scored, with a warning
    min_side: int = 32
    differentiable: bool = True
    non_differentiable_reason: str = ""
    recipe: Mapping[str, Any] = field(default_factory=dict)
    demo: str = ""
    demo_note: str = ""
    preprocessing_options: tuple[str, ...] = ()

    def weights_hint(self) -> str:
        """One line: which files, from where (empty when the detector needs none)."""
        parts = []
        for w in self.weights:
            need = "needs" if w.required else "optional official weights:"
            parts.append(f"{need} {w.file} ({w.option}=FILE) from {w.source}")
        if self.weights_note:
            parts.append(self.weights_note)
        return "; ".join(parts)


@dataclass(frozen=True)
class AttackCard(Card):
    """An attack's card: name, one-line summary, paper, factory and path-valued options. Whether
    it needs gradients is behaviour of the attack class (``Attack.needs_gradients``)."""


C = TypeVar("C", bound=Card)


class Registry(Generic[C]):
    """Maps a name to its card; builds through the card's (lazily imported) factory."""

    def __init__(self, kind: str, plugin_env: str = "FAKEBENCH_PLUGINS", builtin_plugins: Iterable[str] = ()) -> None:
        self.kind = kind
        self._cards: dict[str, C] = {}
        self._plugin_env = plugin_env
        self._builtin_plugins = tuple(builtin_plugins)
        self._plugins_loaded = False

    def register(self, card: C, replace: bool = False) -> C:
        """Add ``card``; a second card with the same name raises unless ``replace``."""
        if card.name in self._cards and not replace:
            raise ValueError(f"{self.kind} {card.name!r} registered twice")
        self._cards[card.name] = card
        return card

    def unregister(self, name: str) -> None:
        self._cards.pop(name, None)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for mod in self._builtin_plugins:  # fakebench's own higher layers (defenses): card modules, torch-free
            importlib.import_module(mod)
        for mod in filter(None, (m.strip() for m in os.environ.get(self._plugin_env, "").split(","))):
            try:
                importlib.import_module(mod)
            except ImportError as exc:
                raise ConfigError(f"{self._plugin_env}: cannot import plugin module {mod!r} ({exc})") from None

    def card(self, name: str) -> C:
        self._load_plugins()
        if name not in self._cards:
            known = ", ".join(sorted(self._cards)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r} (known: {known})")
        return self._cards[name]

    def cards(self) -> list[C]:
        self._load_plugins()
        return [self._cards[k] for k in sorted(self._cards)]

    def names(self) -> list[str]:
        return [c.name for c in self.cards()]

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._cards

    def create(self, name: str, **cfg: Any) -> Any:
        """Build ``name`` with options ``cfg``. Options the factory's signature does not accept
        give one :class:`ConfigError` line; errors raised inside the factory surface as they are."""
        card = self.card(name)
        factory = card.load_factory()
        check_options(factory, cfg, f"{self.kind} {name!r}")
        try:
            return factory(**cfg)
        except ConfigError as exc:  # name the thing being built (once); other errors surface unchanged
            if name in str(exc):
                raise
            raise ConfigError(f"{self.kind} {name!r}: {exc}") from None


def check_options(factory: Callable[..., Any], options: Mapping[str, Any], where: str) -> None:
    """Raise one ConfigError line when ``options`` do not fit ``factory``'s signature."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        return
    try:
        sig.bind(**options)
    except TypeError as exc:
        accepted = [p for p in sig.parameters if sig.parameters[p].kind not in (inspect.Parameter.VAR_KEYWORD,
                                                                                  inspect.Parameter.VAR_POSITIONAL)]
        raise ConfigError(f"{where}: bad options {sorted(options)}: {exc} (accepted: {', '.join(accepted)})") from None


def takes_parameter(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` has an explicit parameter ``name``."""
    try:
        return name in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


def register_all(registry: Registry[C], cards: Iterable[C]) -> None:
    for c in cards:
        registry.register(c)
